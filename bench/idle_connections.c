/*
 * idle_connections.c - `idle_connections`: N = 10,000 (x BENCH_SCALE)
 * connected, idle TCP sockets, each with a task parked in weft_read on
 * its server end: what an idle connection costs in memory and in CPU.
 *
 * All workers. RLIMIT_NOFILE is raised first: both limits to 2 x N plus
 * the descriptors the process needs besides, when the hard limit is lower
 * and the process may raise it (CAP_SYS_RESOURCE), and the soft limit to
 * the hard one; when that is still too low, N is scaled down to fit and
 * the N used is printed on stderr. (It is done before the first weft_read:
 * the runtime's descriptor table is as large as the hard limit when it is
 * made.) A listener on 127.0.0.1:0; the bench thread makes each client end
 * with a plain socket(2) and blocking connect(2), accepts the server end
 * with a plain accept4(2), and spawns one joinable task per server end on
 * the small stack class (attribute .stack = WEFT_STACK_SMALL, as memory.c
 * asks for it), which calls weft_read on it and parks (its first call sets
 * O_NONBLOCK, gets EAGAIN, registers the descriptor with the runtime's
 * epoll instance and parks). Parked means weft_stats.io_waits has grown by
 * N and live is N.
 *
 * Stack size. small_stack_size is IC_SMALL_STACK, 2 KiB, unless
 * WEFT_SMALL_STACK_SIZE names another: not memory.c's 1 KiB, which
 * overflows here. A task that parks runs the scheduler's next decision on
 * its own stack (sched/worker.c, find_local), and every FAIR_TICK-th one
 * polls the descriptors while tasks wait on them and no worker blocks in
 * the poller, as while the connections are made, and wakes the tasks the
 * events name. The poll's batch of events lives in the worker, not on
 * that stack (sched/poller.h): with it on the stack 1664 bytes overflowed
 * and 1792 did not; without it 1088 does not, 1024 does. And the first
 * call of each libc function from a task, resolved lazily through the
 * PLT, saves the vector state on the task's stack
 * (_dl_runtime_resolve_xsavec, about 2.5 KiB with AVX-512): even 4 KiB
 * overflowed. So weft-bench is linked with -z now (bench/CMakeLists.txt),
 * as distributions' hardened builds are.
 *
 * Values (single measurements, as `memory`'s):
 *  - idle_connections_rss, B/conn: growth of the resident set (VmRSS, the
 *    second field of /proc/self/statm, as memory.c reads it) from after
 *    the runtime and the listener were made until every task is parked,
 *    divided by N. It counts what weft holds per connection (the task's
 *    slot and stack, the descriptor table's records of both numbers,
 *    since client and server ends take turns in the number space), not
 *    the benchmark's own arrays (touched before the first reading). With
 *    BENCH_VERBOSE the mappings that grew most are printed on stderr;
 *  - idle_connections_kernel, B/conn: growth of the kernel's slab memory
 *    (Slab: in /proc/meminfo, reclaimable and not) over the same span,
 *    divided by N. Both ends of each connection live in this process, so
 *    it counts two sockets (TCP sock, socket inode, dentry, file each)
 *    and the epoll item of the server end: a server alone pays a little
 *    over half. System-wide and in whole slab pages, so noisy when
 *    anything else on the machine allocates or frees (a compiler's
 *    dentries, TIME_WAIT sockets expiring). The growth of the caches
 *    involved in objects in use (/proc/slabinfo, when readable) and
 *    /proc/net/sockstat's TCP line are printed on stderr;
 *  - idle_connections_cpu, ms/s: CPU time (user + system) of the
 *    process less that of the measuring thread (CLOCK_PROCESS_CPUTIME_ID
 *    less CLOCK_THREAD_CPUTIME_ID: what getrusage's RUSAGE_SELF and
 *    RUSAGE_THREAD add up, without their tick sampling), over a window
 *    of 1 s (x BENCH_SCALE, at least 100 ms) with every task parked, after 200 ms to settle (the monitor
 *    goes into its sleep without timeout after 100 ms without a task:
 *    sched/sysmon.c), per second: the runtime's threads, as idle_cpu
 *    counts them. The measuring thread's own wake-up costs 0.15-0.5 ms
 *    on this project's VMs; the whole-process figure, each thread's CPU
 *    time (schedstat) and context switches (status) over the window and
 *    the poller's counters are printed on stderr: what woke up, how often.
 *
 * Then the client ends are closed; every task must get end of file
 * (weft_read returns 0) and is joined; the server ends are reset
 * (SO_LINGER 0: no TIME_WAIT sockets for the next run to see expire) and
 * closed with weft_close, and the runtime is destroyed.
 *
 * check=ok needs every connection and spawn to succeed, every task to be
 * seen parked and still parked after the window, the resident set to
 * grow, every task to return 0 and be joined, and the runtime to be
 * destroyed cleanly; for the cpu line also a figure under 10 ms/s (as
 * idle_cpu).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define IC_CONNS 10000
#define IC_SMALL_STACK 2048 /* see the header: 1 KiB is too small here */
/* Descriptors beyond those open before the connections: the poller's
 * epoll and eventfd, the /proc files read here, a margin; and two per
 * worker, which the monitor may open (sched/thrclock.c). */
#define IC_SLACK 16

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size, res;
    int n = f ? fscanf(f, "%ld %ld", &size, &res) : 0;
    if (f)
        fclose(f);
    return n == 2 ? res * sysconf(_SC_PAGESIZE) : -1;
}

/* A field of /proc/meminfo, in bytes; -1 if absent. */
static long meminfo_bytes(const char *key)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    long v = -1;
    size_t k = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, k) && line[k] == ':') {
            v = atol(line + k + 1) * 1024;
            break;
        }
    if (f)
        fclose(f);
    return v;
}

/* The slab caches a socket and its epoll registration use. */
static const char *const caches[] = {
    "TCP",           "sock_inode_cache", "filp",        "dentry",
    "eventpoll_epi", "eventpoll_pwq",    "kmalloc-64",  "kmalloc-128",
    "kmalloc-192",   "kmalloc-256",      "kmalloc-512", "kmalloc-1k"};
#define NCACHES (int)(sizeof caches / sizeof caches[0])

/* Bytes of objects in use in each cache (active_objs x objsize: a cache
 * with free objects in its slabs grows by objects, not pages); 0 if
 * /proc/slabinfo is unreadable (it needs root). */
static int slab_sample(long out[NCACHES])
{
    memset(out, 0, NCACHES * sizeof out[0]);
    FILE *f = fopen("/proc/slabinfo", "r");
    if (!f)
        return 0;
    char line[512], name[64];
    long active, num, size;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%63s %ld %ld %ld", name, &active, &num, &size) == 4)
            for (int i = 0; i < NCACHES; i++)
                if (!strcmp(name, caches[i]))
                    out[i] = active * size;
    fclose(f);
    return 1;
}

static void sockstat_line(char *buf, size_t n)
{
    FILE *f = fopen("/proc/net/sockstat", "r");
    char line[256];
    snprintf(buf, n, "?");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "TCP:", 4)) {
            line[strcspn(line, "\n")] = 0;
            snprintf(buf, n, "%s", line);
            break;
        }
    if (f)
        fclose(f);
}

/* With BENCH_VERBOSE: the mappings whose resident set grew most between
 * two readings of /proc/self/smaps (where the bytes per connection are). */
#define IC_MAXMAP 4096
typedef struct {
    unsigned long start, end;
    long rss;
    char name[64];
} map_sample;

static int maps_sample(map_sample *m)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int n = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long a, b;
        long kb;
        int off = 0;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &a, &b, &off) == 2 &&
            off > 0) {
            if (n == IC_MAXMAP)
                break;
            m[n].start = a;
            m[n].end = b;
            m[n].rss = 0;
            line[strcspn(line, "\n")] = 0;
            snprintf(m[n].name, sizeof m[n].name, "%s", line + off);
            n++;
        } else if (n && sscanf(line, "Rss: %ld kB", &kb) == 1) {
            m[n - 1].rss = kb * 1024;
        }
    }
    if (f)
        fclose(f);
    return n;
}

/* Prints (and consumes: b's entries are zeroed) the six largest. */
static void maps_report(const map_sample *a, int na, map_sample *b, int nb,
                        long conns)
{
    for (int k = 0; k < 6; k++) {
        int best = -1;
        long bestd = 0;
        for (int j = 0; j < nb; j++) {
            long before = 0;
            for (int i = 0; i < na; i++)
                if (a[i].start == b[j].start)
                    before = a[i].rss;
            if (b[j].rss - before > bestd)
                best = j, bestd = b[j].rss - before;
        }
        if (best < 0)
            break;
        fprintf(stderr,
                "    mapping %lx (%lu KiB) %s: rss %+ld B, %.0f B/conn\n",
                b[best].start, (b[best].end - b[best].start) / 1024,
                b[best].name[0] ? b[best].name : "[anon]", bestd,
                (double)bestd / (double)conns);
        b[best].rss = 0;
        b[best].start = 0; /* matches no earlier mapping now */
    }
}

/* CPU time (user + system) of the process (CLOCK_PROCESS_CPUTIME_ID) or
 * of the calling thread (CLOCK_THREAD_CPUTIME_ID), in ms. Not getrusage:
 * its user/system split is sampled at ticks and scaled, and for
 * RUSAGE_THREAD the running thread's time since its last tick or switch
 * is left out, so the two differed by 0.4 ms over an idle second. */
static double cpu_ms(clockid_t clk)
{
    struct timespec ts;
    if (clock_gettime(clk, &ts))
        return -1;
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Per-thread CPU time and context switches, for the stderr report. */
#define IC_MAXTHR 256
typedef struct {
    long tid;
    char comm[32];
    unsigned long long ns, vol, invol;
} thr_sample;

static int threads_sample(thr_sample *t)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && n < IC_MAXTHR) {
        if (e->d_name[0] == '.')
            continue;
        thr_sample *s = &t[n];
        memset(s, 0, sizeof *s);
        s->tid = atol(e->d_name);
        char path[300], line[256];
        snprintf(path, sizeof path, "/proc/self/task/%s/schedstat", e->d_name);
        FILE *f = fopen(path, "r");
        if (f) {
            if (fscanf(f, "%llu", &s->ns) != 1)
                s->ns = 0;
            fclose(f);
        }
        snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
        if ((f = fopen(path, "r"))) {
            while (fgets(line, sizeof line, f)) {
                if (!strncmp(line, "Name:", 5))
                    sscanf(line + 5, "%31s", s->comm);
                else if (!strncmp(line, "voluntary_ctxt_switches:", 24))
                    s->vol = strtoull(line + 24, NULL, 10);
                else if (!strncmp(line, "nonvoluntary_ctxt_switches:", 27))
                    s->invol = strtoull(line + 27, NULL, 10);
            }
            fclose(f);
        }
        n++;
    }
    if (d)
        closedir(d);
    return n;
}

static void threads_report(const thr_sample *a, int na, const thr_sample *b,
                           int nb, double secs)
{
    long self = (long)syscall(SYS_gettid);
    for (int j = 0; j < nb; j++) {
        const thr_sample *x = NULL;
        for (int i = 0; i < na; i++)
            if (a[i].tid == b[j].tid)
                x = &a[i];
        if (!x)
            continue;
        unsigned long long sw = (b[j].vol - x->vol) + (b[j].invol - x->invol);
        fprintf(stderr,
                "    thread %ld %-15s%s: cpu %.3f ms, %llu switches "
                "(%.1f/s, %llu involuntary)\n",
                b[j].tid, b[j].comm, b[j].tid == self ? " (bench)" : "",
                (double)(b[j].ns - x->ns) / 1e6, sw, (double)sw / secs,
                b[j].invol - x->invol);
    }
}

/* Descriptors open now (less the directory's own). */
static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    long n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n > 0 ? n - 1 : 0;
}

/* Raise RLIMIT_NOFILE for n connections (two descriptors each) on top of
 * the `slack` more that the process needs; the n that fits. */
static long fit_nofile(long n, long slack)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl))
        return n;
    rlim_t need = (rlim_t)(2 * n + slack);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        struct rlimit up = {need, need}; /* needs CAP_SYS_RESOURCE */
        if (!setrlimit(RLIMIT_NOFILE, &up))
            rl = up;
    }
    if (rl.rlim_cur != rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        long m = ((long)rl.rlim_cur - slack) / 2;
        if (m < 1)
            m = 1;
        fprintf(stderr,
                "  idle_connections: RLIMIT_NOFILE %llu (hard) is too low for "
                "%ld connections: N = %ld\n",
                (unsigned long long)rl.rlim_cur, n, m);
        n = m;
    }
    return n;
}

static void *reader(void *arg)
{
    char b;
    ssize_t r = weft_read((int)(intptr_t)arg, &b, 1);
    return (void *)(intptr_t)(r == 0 ? 0 : r < 0 ? r : -1000);
}

static int wait_parked(weft_rt *rt, uint64_t waits0, long n)
{
    for (int i = 0; i < 60000; i++) {
        weft_stats s;
        if (!weft_stats_get(rt, &s) && s.io_waits >= waits0 + (uint64_t)n &&
            s.live == (uint64_t)n)
            return 1;
        usleep(1000);
    }
    return 0;
}

int bench_idle_connections(void)
{
    int workers = bench_workers(), ok = 1;
    long n = bench_scaled(IC_CONNS);

    weft_config cfg;
    weft_rt *rt = bench_rt_sized((unsigned)workers, n, IC_SMALL_STACK, &cfg);
    int err;
    weft_spawn_attr attr = WEFT_SPAWN_ATTR_INIT;
    attr.stack = WEFT_STACK_SMALL;
    attr.name = "conn";

    int lis = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    if (lis < 0 || bind(lis, (struct sockaddr *)&sa, sizeof sa) ||
        listen(lis, SOMAXCONN) ||
        getsockname(lis, (struct sockaddr *)&sa, &sl)) {
        perror("weft-bench: idle_connections: listener");
        exit(2);
    }

    /* Before the first weft_read: the descriptor table's size is the
     * hard limit when it is made. */
    n = fit_nofile(n, open_fds() + 2L * workers + IC_SLACK);

    int *cli = malloc((size_t)n * sizeof *cli);
    int *srv = malloc((size_t)n * sizeof *srv);
    weft_task *t = malloc((size_t)n * sizeof *t);
    thr_sample *ta = malloc(2 * IC_MAXTHR * sizeof *ta), *tb = ta + IC_MAXTHR;
    if (!cli || !srv || !t || !ta) {
        fprintf(stderr, "weft-bench: idle_connections: out of memory\n");
        exit(2);
    }
    /* Touched now: the benchmark's own arrays are not the connections'. */
    memset(cli, -1, (size_t)n * sizeof *cli);
    memset(srv, -1, (size_t)n * sizeof *srv);
    memset(t, 0, (size_t)n * sizeof *t);
    memset(ta, 0, 2 * IC_MAXTHR * sizeof *ta);

    weft_stats s0;
    weft_stats_get(rt, &s0);
    long slab_cache0[NCACHES], slab_cache1[NCACHES];
    int verbose = getenv("BENCH_VERBOSE") != NULL;
    map_sample *ma = verbose ? calloc(2 * IC_MAXMAP, sizeof *ma) : NULL;
    int nma = ma ? maps_sample(ma) : 0;
    int have_slabinfo = slab_sample(slab_cache0);
    long slab0 = meminfo_bytes("Slab");
    long rss0 = rss_bytes();

    long made = 0;
    for (long i = 0; i < n; i++) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof sa)) {
            fprintf(stderr, "weft-bench: idle_connections: connect %ld: %s\n",
                    i, strerror(errno));
            if (c >= 0)
                close(c);
            ok = 0;
            break;
        }
        int sv = accept4(lis, NULL, NULL, SOCK_CLOEXEC);
        if (sv < 0) {
            fprintf(stderr, "weft-bench: idle_connections: accept %ld: %s\n", i,
                    strerror(errno));
            close(c);
            ok = 0;
            break;
        }
        cli[i] = c;
        srv[i] = sv;
        if ((err =
                 weft_spawn(rt, &t[i], reader, (void *)(intptr_t)sv, &attr))) {
            fprintf(stderr, "weft-bench: idle_connections: spawn %ld: %s\n", i,
                    weft_strerror(err));
            ok = 0;
            break;
        }
        made++;
    }
    if (!wait_parked(rt, s0.io_waits, made))
        ok = 0;
    long rss1 = rss_bytes();
    int nmb = ma ? maps_sample(ma + IC_MAXMAP) : 0;
    long slab1 = meminfo_bytes("Slab");
    slab_sample(slab_cache1);
    char sock1[300];
    sockstat_line(sock1, sizeof sock1);

    /* Idle CPU: settle, then a window with every task parked. */
    struct timespec settle = {0, 200000000};
    nanosleep(&settle, NULL);
    long win_ms = bench_scaled(1000);
    if (win_ms < 100)
        win_ms = 100;
    struct timespec win = {win_ms / 1000, (win_ms % 1000) * 1000000};
    weft_stats wa, wb;
    weft_stats_get(rt, &wa);
    int na = threads_sample(ta);
    /* Process, then this thread; at the end the other way round: the
     * process's span holds the thread's, so the difference counts
     * nothing of this thread but the two clock reads' edges. */
    double w0 = bench_now_ns(), p0 = cpu_ms(CLOCK_PROCESS_CPUTIME_ID),
           m0 = cpu_ms(CLOCK_THREAD_CPUTIME_ID);
    nanosleep(&win, NULL);
    double m1 = cpu_ms(CLOCK_THREAD_CPUTIME_ID),
           p1 = cpu_ms(CLOCK_PROCESS_CPUTIME_ID), w1 = bench_now_ns();
    int nb = threads_sample(tb);
    weft_stats_get(rt, &wb);
    double secs = (w1 - w0) / 1e9;
    double cpu = ((p1 - p0) - (m1 - m0)) / secs;
    if (p0 < 0 || m0 < 0 || p1 < 0 || m1 < 0)
        ok = 0;

    /* Still parked after the window? Nothing may have woken them. */
    weft_stats s1;
    if (weft_stats_get(rt, &s1) || s1.live != (uint64_t)made)
        ok = 0;

    for (long i = 0; i < made; i++)
        close(cli[i]);
    long eof = 0;
    for (long i = 0; i < made; i++) {
        void *res = (void *)1;
        if ((err = weft_join(t[i], &res)) == 0 && res == NULL)
            eof++;
        else if (eof == i) /* the first failure only */
            fprintf(stderr,
                    "weft-bench: idle_connections: task %ld: join %d, "
                    "result %ld\n",
                    i, err, (long)(intptr_t)res);
    }
    /* Reset, not FIN: no TIME_WAIT sockets left behind for the next
     * run's slab reading (the client ends, in FIN_WAIT2, take the RST). */
    struct linger lg = {1, 0};
    for (long i = 0; i < made; i++) {
        setsockopt(srv[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        weft_close(srv[i]);
    }
    close(lis);
    if (made != n || eof != made || rss0 <= 0 || rss1 <= rss0)
        ok = 0;

    double per_rss = made ? (double)(rss1 - rss0) / (double)made : 0;
    double per_kernel =
        made && slab0 > 0 && slab1 > 0 ? (double)(slab1 - slab0) / made : 0;
    fprintf(stderr,
            "  idle_connections: N %ld, small_stack_size %zu, rss %+ld B, "
            "Slab %+ld B, %s\n",
            made, cfg.small_stack_size, rss1 - rss0, slab1 - slab0, sock1);
    if (have_slabinfo && made) {
        fprintf(stderr, "    slab growth per connection:");
        long sum = 0;
        for (int i = 0; i < NCACHES; i++) {
            long d = slab_cache1[i] - slab_cache0[i];
            sum += d;
            if (d)
                fprintf(stderr, " %s %.0f", caches[i], (double)d / made);
        }
        fprintf(stderr, " (sum %.0f B)\n", (double)sum / made);
    }
    fprintf(stderr,
            "    idle window %.0f ms: cpu %.3f ms (process %.3f, this "
            "thread %.3f); io_polls %llu, blocking polls %llu, io_events "
            "%llu, switches %llu, wakes %llu\n",
            secs * 1e3, (p1 - p0) - (m1 - m0), p1 - p0, m1 - m0,
            (unsigned long long)(wb.io_polls - wa.io_polls),
            (unsigned long long)(wb.io_blocking_polls - wa.io_blocking_polls),
            (unsigned long long)(wb.io_events - wa.io_events),
            (unsigned long long)(wb.switches - wa.switches),
            (unsigned long long)(wb.wakes - wa.wakes));
    threads_report(ta, na, tb, nb, secs);
    if (ma && made)
        maps_report(ma, nma, ma + IC_MAXMAP, nmb, made);
    free(ma);
    bench_verbose_stats(rt);
    if (weft_rt_destroy(rt))
        ok = 0;
    free(cli);
    free(srv);
    free(t);
    free(ta);
    return bench_report("idle_connections_rss", workers, per_rss, "B/conn",
                        ok) |
           bench_report("idle_connections_kernel", workers, per_kernel,
                        "B/conn", ok) |
           bench_report("idle_connections_cpu", workers, cpu, "ms/s",
                        ok && cpu < 10);
}
