/*
 * runner.c - run the registered tests, each in a forked child with its own
 * timeout, and report in TAP.
 *
 * Usage: weft-tests [-v] [--list] [NAME-OR-PREFIX ...]
 *   With arguments, only tests whose name equals or starts with one of
 *   them run ("api." runs the api group, "api.spawn_join" one test).
 *   -v prints the output of passing tests too, and each test's time;
 *   --list prints the names.
 *   WEFT_TEST_TIMEOUT_SCALE=<factor> multiplies every timeout (sanitizer
 *   builds already scale them: ASan x3, TSan x5).
 *
 * Why a child per test: a test may crash, hang, change the environment or
 * use process-wide state (TLS keys, the stack-overflow handler, the guard
 * budget); none of that may leak into the next test or take the runner
 * down. The child gets its own process group, so a timeout kills whatever
 * it forked too. Its stdout and stderr go to a memfd that the runner
 * prints, as TAP comments, when the test fails (always with -v).
 *
 * Results: exit 0 passes, exit 77 is a skip (the reason travels through a
 * shared page), anything else fails. The last line is exactly
 * "N passed, N failed" plus ", N skipped" when some were; the exit status
 * is 1 when any test failed or no test matched.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../check.h"

#define MAX_TESTS 1024
#define SKIP_EXIT 77
#define REASON_BYTES 512

static const weft_test *tests[MAX_TESTS];
static unsigned ntests;
static char *skip_reason; /* shared page: the child's TEST_SKIP reason */

void weft_test_register(const weft_test *t)
{
    if (ntests == MAX_TESTS) {
        fprintf(stderr, "weft-tests: more than %d tests\n", MAX_TESTS);
        _exit(2);
    }
    tests[ntests++] = t;
}

_Noreturn void weft_test_skip(const char *reason)
{
    if (skip_reason) {
        strncpy(skip_reason, reason ? reason : "", REASON_BYTES - 1);
        skip_reason[REASON_BYTES - 1] = '\0';
    }
    fflush(NULL);
    _exit(SKIP_EXIT);
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const weft_test *const *)a)->name,
                  (*(const weft_test *const *)b)->name);
}

static int selected(const char *name, int argc, char **argv, int first)
{
    if (first >= argc)
        return 1;
    for (int i = first; i < argc; i++)
        if (strncmp(name, argv[i], strlen(argv[i])) == 0)
            return 1;
    return 0;
}

static double timeout_scale(void)
{
    double s = 1.0;
    if (TEST_ASAN)
        s = 3.0;
    if (TEST_TSAN)
        s = 5.0;
    const char *e = getenv("WEFT_TEST_TIMEOUT_SCALE");
    if (e && atof(e) > 0)
        s = atof(e);
    return s;
}

/* Print the child's captured output as TAP comment lines. */
static void print_output(int fd)
{
    char buf[4096];
    ssize_t n;
    off_t off = 0;
    int bol = 1;
    while ((n = pread(fd, buf, sizeof buf, off)) > 0) {
        off += n;
        for (ssize_t i = 0; i < n; i++) {
            if (bol)
                fputs("# ", stdout);
            putchar(buf[i]);
            bol = buf[i] == '\n';
        }
    }
    if (!bol)
        putchar('\n');
}

static int capture_fd(void)
{
    int fd = memfd_create("weft-test-output", MFD_CLOEXEC);
    if (fd < 0) {
        FILE *f = tmpfile();
        fd = f ? dup(fileno(f)) : -1;
        if (f)
            fclose(f);
    }
    return fd;
}

/* Wait for pid up to `secs` seconds; SIGCHLD is blocked in the runner.
 * Returns 0 with *status set, or -1 on timeout (the group is killed). */
static int wait_child(pid_t pid, double secs, int *status)
{
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR) {
            *status = 255 << 8; /* lost the child: report a failure */
            return 0;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        double left = secs - ((double)(now.tv_sec - start.tv_sec) +
                              (double)(now.tv_nsec - start.tv_nsec) / 1e9);
        if (left <= 0) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            waitpid(pid, status, 0);
            return -1;
        }
        /* A bounded wait: SIGCHLD ends it early; never sleep past 100 ms
         * so a signal that arrived before the wait is not a problem. */
        double step = left < 0.1 ? left : 0.1;
        struct timespec ts = {(time_t)step,
                              (long)((step - (time_t)step) * 1e9)};
        sigtimedwait(&chld, NULL, &ts);
    }
}

static void child_main(const weft_test *t, int out)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setpgid(0, 0);
    dup2(out, STDOUT_FILENO);
    dup2(out, STDERR_FILENO);
    setvbuf(stderr, NULL, _IONBF, 0);
    t->fn();
    fflush(NULL);
    exit(0); /* exit, not _exit: sanitizers' leak checks run at exit */
}

typedef enum { R_PASS, R_FAIL, R_SKIP } result;

static result run_one(const weft_test *t, unsigned k, double scale, int verbose)
{
    int out = capture_fd();
    skip_reason[0] = '\0';
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        printf("not ok %u - %s # fork: %s\n", k, t->name, strerror(errno));
        return R_FAIL;
    }
    if (pid == 0)
        child_main(t, out);
    setpgid(pid, pid);
    int status = 0;
    double secs = t->timeout_s * scale;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int timed_out = wait_child(pid, secs, &status) < 0;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    kill(-pid, SIGKILL); /* whatever the test forked and left behind */

    result r;
    char why[128] = "";
    if (timed_out) {
        r = R_FAIL;
        snprintf(why, sizeof why, " # timeout after %.0f s", secs);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        r = R_PASS;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == SKIP_EXIT) {
        r = R_SKIP;
    } else if (WIFEXITED(status)) {
        r = R_FAIL;
        snprintf(why, sizeof why, " # exit status %d", WEXITSTATUS(status));
    } else {
        r = R_FAIL;
        snprintf(why, sizeof why, " # killed by signal %d (%s)",
                 WTERMSIG(status), strsignal(WTERMSIG(status)));
    }
    if (r == R_FAIL || verbose)
        print_output(out);
    if (r == R_SKIP)
        printf("ok %u - %s # SKIP %s\n", k, t->name, skip_reason);
    else
        printf("%s %u - %s%s\n", r == R_PASS ? "ok" : "not ok", k, t->name,
               why);
    if (verbose)
        printf("# %.3f s\n", (double)(t1.tv_sec - t0.tv_sec) +
                                 (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    fflush(stdout);
    close(out);
    return r;
}

int main(int argc, char **argv)
{
    int verbose = 0, list = 0, first = 1;
    for (; first < argc && argv[first][0] == '-'; first++) {
        if (!strcmp(argv[first], "-v"))
            verbose = 1;
        else if (!strcmp(argv[first], "--list"))
            list = 1;
        else {
            fprintf(stderr, "usage: %s [-v] [--list] [NAME-OR-PREFIX ...]\n",
                    argv[0]);
            return 2;
        }
    }
    qsort(tests, ntests, sizeof tests[0], by_name);
    const weft_test *run[MAX_TESTS];
    unsigned n = 0;
    for (unsigned i = 0; i < ntests; i++)
        if (selected(tests[i]->name, argc, argv, first))
            run[n++] = tests[i];
    if (list) {
        for (unsigned i = 0; i < n; i++)
            printf("%s\n", run[i]->name);
        return 0;
    }
    if (!n) {
        fprintf(stderr, "weft-tests: no test matches\n");
        return 1;
    }
    skip_reason = mmap(NULL, REASON_BYTES, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (skip_reason == MAP_FAILED) {
        perror("weft-tests: mmap");
        return 1;
    }
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);

    double scale = timeout_scale();
    unsigned passed = 0, failed = 0, skipped = 0;
    printf("1..%u\n", n);
    fflush(stdout);
    for (unsigned i = 0; i < n; i++) {
        switch (run_one(run[i], i + 1, scale, verbose)) {
        case R_PASS:
            passed++;
            break;
        case R_FAIL:
            failed++;
            break;
        case R_SKIP:
            skipped++;
            break;
        }
    }
    if (skipped)
        printf("%u passed, %u failed, %u skipped\n", passed, failed, skipped);
    else
        printf("%u passed, %u failed\n", passed, failed);
    return failed ? 1 : 0;
}
