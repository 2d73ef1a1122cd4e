/*
 * helpers.c - what check.h promises besides the registry: the failure
 * path, error-code names, runtime helpers and the clean-teardown proof,
 * a count of open descriptors, and a fork-with-captured-stderr helper
 * for tests that expect a crash.
 */
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../check.h"
#include "../internal.h"

_Noreturn void weft_check_fail(const char *file, int line, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s:%d: %s\n", file, line, msg);
    fflush(NULL);
    _exit(1);
}

const char *weft_test_errname(int err)
{
    static const struct {
        int code;
        const char *name;
    } names[] = {
        {0, "0"},
        {EINVAL, "EINVAL"},
        {ENOMEM, "ENOMEM"},
        {EAGAIN, "EAGAIN"},
        {ESRCH, "ESRCH"},
        {EDEADLK, "EDEADLK"},
        {EBUSY, "EBUSY"},
        {EPERM, "EPERM"},
        {ENOTSUP, "ENOTSUP"},
        {ECANCELED, "ECANCELED"},
        {ETIMEDOUT, "ETIMEDOUT"},
        {EPIPE, "EPIPE"},
    };
    if (err < 0)
        err = -err;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].code == err)
            return names[i].name;
    return "E?";
}

uint64_t test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Open descriptors, less the monitor's: it opens a thread's
 * /proc/self/task/TID/{stat,schedstat} the first time it times one of
 * its polls (sched/thrclock.c), whenever that is, and closes them at the
 * destroy; counted, they made a test's count move by 2 at a random
 * moment (api.io_ring_accept_close_ends_the_queued under ASan). */
int test_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    CHECK_NOT_NULL(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') /* "." and ".." */
            continue;
        char path[300], to[64];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t k = readlink(path, to, sizeof to - 1);
        if (k > 0) {
            to[k] = 0;
            if (!strncmp(to, "/proc/", 6) && strstr(to, "/task/"))
                continue;
        }
        n++;
    }
    closedir(d);
    return n;
}

int test_highest_fd(void)
{
    DIR *d = opendir("/proc/self/fd");
    CHECK_NOT_NULL(d);
    int high = -1;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && atoi(e->d_name) > high)
            high = atoi(e->d_name);
    closedir(d);
    return high;
}

weft_rt *test_rt_cfg(const weft_config *cfg)
{
    weft_rt *rt = NULL;
    CHECK_OK(weft_rt_create(&rt, cfg));
    CHECK_NOT_NULL(rt);
    return rt;
}

weft_rt *test_rt_io(unsigned workers, uint32_t max_tasks, int io)
{
    weft_config cfg;
    weft_config_default(&cfg);
    cfg.workers = workers;
    cfg.max_tasks = max_tasks;
    cfg.io = io;
    weft_rt *rt = NULL;
    int err = weft_rt_create(&rt, &cfg);
    if (err == -ENOTSUP)
        TEST_SKIP("the io_uring backend cannot run here");
    CHECK_OK(err);
    return rt;
}

void test_policy_no_signals(weft_rt *rt)
{
    weft_policy pol;
    CHECK_OK(weft_policy_get(rt, &pol));
    pol.latency_ns = 0;
    for (int t = 0; t < WEFT_TIERS; t++) {
        pol.tier[t].promote_violations = 0;
        pol.tier[t].promote_cpu_ms = 0;
        pol.tier[t].promote_slow_polls = 0;
    }
    CHECK_OK(weft_policy_set(rt, &pol));
}

int test_wait_parked(weft_task t, const char *wait)
{
    uint64_t t0 = weft_now_ns();
    weft_task_info ti;
    while (weft_task_info_get(t, &ti) == 0) {
        if (ti.state == WEFT_STATE_DONE)
            return -1;
        if (ti.state == WEFT_STATE_PARKED && (!wait || !strcmp(ti.wait, wait)))
            return 0;
        CHECK_CMP_U64(weft_now_ns() - t0, <, UINT64_C(10000000000));
        usleep(20);
    }
    return -1;
}

weft_rt *test_rt_workers(uint32_t max_tasks, unsigned workers)
{
    weft_config c;
    weft_config_default(&c);
    c.max_tasks = max_tasks;
    c.workers = workers;
    return test_rt_cfg(&c);
}

/* WEFT_TEST_WORKERS=N: runtimes the tests make with the default worker
 * count get N workers instead, as many as their max_tasks allows (each
 * worker needs a leaf of 63 slots): .ci/run runs the chaos build with
 * more workers than CPUs this way. */
weft_rt *test_rt(uint32_t max_tasks)
{
    weft_config c;
    weft_config_default(&c);
    c.max_tasks = max_tasks;
    const char *e = getenv("WEFT_TEST_WORKERS");
    if (e && atoi(e) > 0) {
        unsigned n = (unsigned)atoi(e), leaves = (max_tasks + 62) / 63;
        c.workers = n < leaves ? n : leaves;
    }
    return test_rt_cfg(&c);
}

void *test_run(weft_rt *rt, weft_fn fn, void *arg)
{
    void *result = NULL;
    CHECK_OK(weft_rt_run(rt, fn, arg, &result));
    return result;
}

weft_stats test_stats(weft_rt *rt)
{
    weft_stats st;
    CHECK_OK(weft_stats_get(rt, &st));
    return st;
}

void test_wait_live(weft_rt *rt, uint64_t live, unsigned timeout_ms)
{
    uint64_t end = test_now_ms() + timeout_ms;
    weft_stats st = test_stats(rt);
    while (st.live != live && test_now_ms() < end) {
        if (weft_current())
            weft_yield();
        else
            usleep(200);
        st = test_stats(rt);
    }
    CHECK_EQ_U64(st.live, live);
}

/* Does any mapping of this process overlap [lo, hi)? */
static int mapped_in(uintptr_t lo, uintptr_t hi)
{
    FILE *f = fopen("/proc/self/maps", "r");
    CHECK_NOT_NULL(f);
    char line[512];
    int hit = 0;
    while (!hit && fgets(line, sizeof line, f)) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx", &a, &b) == 2 && a < hi && b > lo)
            hit = 1;
    }
    fclose(f);
    return hit;
}

/* Print every non-zero word of the summary tree, so that a failed
 * "summary is zero" check says which level holds the bit: a signal bit
 * left in a leaf, or an upper bit over an empty word. */
static void dump_summary(const weft_summary *s)
{
    static const char *const level[3] = {"top", "root", "leaf"};
    _Atomic uint64_t *const words[3] = {s->top, s->root, s->leaf};
    const uint32_t count[3] = {s->top_count, s->root_count, s->leaf_count};
    for (int k = 0; k < 3; k++)
        for (uint32_t i = 0; i < count[k]; i++) {
            uint64_t v = atomic_load(&words[k][i]);
            if (v)
                fprintf(stderr, "summary %s[%u] = %#" PRIx64 "\n", level[k], i,
                        v);
        }
}

void test_rt_destroy_clean(weft_rt *rt)
{
    CHECK_NOT_NULL(rt);
    CHECK_EQ_PTR(weft_current(), NULL); /* plain thread only */
    weft_stats st = test_stats(rt);
    CHECK_EQ_U64(st.live, 0);
    CHECK_EQ_U64(st.spawns, st.finishes);

    /* The summary is zero once the worker is idle; give it a moment to
     * get there (it may still be finishing the last switch). */
    uint64_t end = test_now_ms() + 2000, snap;
    while ((snap = weft__summary_snapshot(&rt->sum)) != 0 &&
           test_now_ms() < end)
        usleep(500);
    if (snap)
        dump_summary(&rt->sum);
    CHECK_EQ_U64(snap, 0);

    /* No slot reserved but free ones in workers' slot caches
     * (sched/slots.c): each leaf holds only its permanent bits (63, and
     * those past max_tasks in the last leaf) and cached ones, and no
     * cached slot is outside the map. */
    const weft_summary *s = &rt->sum;
    for (uint32_t l = 0; l < s->leaf_count; l++) {
        uint64_t perm = WEFT_LEAF_YIELD;
        for (uint32_t b = 0; b < WEFT_LEAF_SLOTS; b++)
            if (l * WEFT_LEAF_SLOTS + b >= s->max_tasks)
                perm |= UINT64_C(1) << b;
        uint64_t cached = weft__slots_cached(rt, l);
        CHECK_EQ_U64(cached & perm, 0);
        CHECK_EQ_U64(atomic_load(&s->resv[l]), perm | cached);
    }

    uintptr_t lo = (uintptr_t)rt->arena, hi = lo + rt->arena_size;
    CHECK_OK(weft_rt_destroy(rt));
    CHECK(!mapped_in(lo, hi));
}

void test_fork_capture(void (*fn)(void *), void *arg, unsigned timeout_s,
                       test_child *out)
{
    int p[2];
    memset(out, 0, sizeof *out);
    CHECK_EQ_INT(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK_CMP_INT(pid, >=, 0);
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        close(p[0]);
        dup2(p[1], STDERR_FILENO);
        close(p[1]);
        fn(arg);
        _exit(0);
    }
    close(p[1]);
    size_t n = 0;
    uint64_t end = test_now_ms() + (uint64_t)timeout_s * 1000;
    int done = 0, killed = 0;
    while (!done) {
        uint64_t now = test_now_ms();
        if (now >= end && !killed) {
            kill(pid, SIGKILL);
            killed = 1;
        }
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        int r = poll(&pf, 1, killed ? 1000 : (int)(end - now));
        if (r <= 0)
            continue;
        char tmp[1024];
        ssize_t k = read(p[0], tmp, sizeof tmp);
        if (k <= 0) {
            done = 1; /* EOF: the child (and anything it forked) is gone */
            break;
        }
        size_t room = sizeof out->err - 1 - n;
        size_t take = (size_t)k < room ? (size_t)k : room;
        memcpy(out->err + n, tmp, take);
        n += take;
    }
    out->err[n] = '\0';
    close(p[0]);
    CHECK_EQ_INT(waitpid(pid, &out->status, 0), pid);
}
