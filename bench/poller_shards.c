/*
 * poller_shards.c - the measurement behind "one epoll instance per
 * runtime" (docs/decisions/0012-io.md, "One poller per runtime or per
 * worker"): what sharing one instance among the threads that poll it
 * costs against one instance per thread, in the two operations the
 * runtime does with it, on this machine.
 *
 * Plain epoll and pthreads, no weft: the difference between the designs
 * at the kernel is only which epoll instance (and so which ready list and
 * lock) a registration's wake-up and a poll go through. T threads (1 to
 * the CPU count, each pinned to a CPU), each with P = 64 Unix stream
 * socket pairs whose reading ends are registered edge-triggered (EPOLLIN,
 * as io/fd.c registers them, with EPOLLOUT and EPOLLRDHUP):
 *  - poller_event: each thread, round after round, writes a byte to the
 *    far end of each of its pairs (the wake-up, ep_poll_callback, taking
 *    the instance's lock) and then polls without blocking, 64 events at
 *    a time, reading each event's byte, until a poll returns none. With
 *    one shared instance a thread also takes other threads' events, as a
 *    runtime's workers do. Value: CPU-ns per event (threads x seconds /
 *    events), lower is better;
 *  - poller_empty: each thread polls without blocking, with nothing
 *    ready (a busy worker's poll on its fairness tick). Value: ns per
 *    poll.
 * impl=shared (one instance for all threads) or impl=per_thread; workers
 * = T. Each figure is the best of 3 runs of 0.3 s (x BENCH_SCALE).
 *
 * Built as its own program (bench/CMakeLists.txt): `build/bench/
 * weft-poller-shards`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PAIRS 64
#define MAXT 64

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct {
    int ep;        /* the instance this thread polls */
    int rd[PAIRS]; /* registered reading ends */
    int wr[PAIRS]; /* far ends, written to */
    int cpu;       /* pinned here */
    int mode;      /* 0 events, 1 empty polls */
    uint64_t ops;  /* events handled, or polls made */
    int fail;
} thr;

static atomic_int go, stop;

static void *run(void *arg)
{
    thr *t = arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(t->cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    while (!atomic_load(&go))
        ;
    struct epoll_event ev[64];
    char b[64];
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        if (t->mode == 1) {
            if (epoll_wait(t->ep, ev, 64, 0) != 0)
                t->fail = 1;
            t->ops++;
            continue;
        }
        for (int i = 0; i < PAIRS; i++)
            if (write(t->wr[i], "x", 1) != 1)
                t->fail = 1;
        for (;;) {
            int n = epoll_wait(t->ep, ev, 64, 0);
            if (n <= 0)
                break;
            for (int i = 0; i < n; i++)
                if (read(ev[i].data.fd, b, sizeof b) < 0 && errno != EAGAIN)
                    t->fail = 1;
            t->ops += (uint64_t)n;
        }
    }
    return NULL;
}

/* One run: CPU-ns per operation, or -1. */
static double one(int nthr, int shared, int mode, uint64_t span)
{
    thr t[MAXT];
    pthread_t id[MAXT];
    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    int common = shared ? epoll_create1(EPOLL_CLOEXEC) : -1;
    memset(t, 0, sizeof t);
    for (int k = 0; k < nthr; k++) {
        t[k].ep = shared ? common : epoll_create1(EPOLL_CLOEXEC);
        t[k].cpu = k % ncpu;
        t[k].mode = mode;
        for (int i = 0; i < PAIRS; i++) {
            int p[2];
            if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p))
                return -1;
            t[k].rd[i] = p[0];
            t[k].wr[i] = p[1];
            struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP |
                                              EPOLLET,
                                    .data.fd = p[0]};
            if (epoll_ctl(t[k].ep, EPOLL_CTL_ADD, p[0], &e))
                return -1;
        }
    }
    /* The registrations' first EPOLLOUT edges: taken before timing. */
    struct epoll_event ev[64];
    for (int k = 0; k < nthr; k++)
        while (epoll_wait(t[k].ep, ev, 64, 0) > 0)
            ;
    atomic_store(&go, 0);
    atomic_store(&stop, 0);
    for (int k = 0; k < nthr; k++)
        pthread_create(&id[k], NULL, run, &t[k]);
    uint64_t t0 = now_ns();
    atomic_store(&go, 1);
    struct timespec ts = {(time_t)(span / 1000000000u),
                          (long)(span % 1000000000u)};
    nanosleep(&ts, NULL);
    atomic_store(&stop, 1);
    uint64_t ops = 0;
    int fail = 0;
    for (int k = 0; k < nthr; k++) {
        pthread_join(id[k], NULL);
        ops += t[k].ops;
        fail |= t[k].fail;
    }
    uint64_t el = now_ns() - t0;
    for (int k = 0; k < nthr; k++) {
        for (int i = 0; i < PAIRS; i++) {
            close(t[k].rd[i]);
            close(t[k].wr[i]);
        }
        if (!shared)
            close(t[k].ep);
    }
    if (shared)
        close(common);
    if (fail || !ops)
        return -1;
    return (double)el * nthr / (double)ops;
}

int main(void)
{
    const char *s = getenv("BENCH_SCALE");
    double scale = s && atof(s) > 0 ? atof(s) : 1.0;
    uint64_t span = (uint64_t)(300e6 * scale);
    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu > MAXT)
        ncpu = MAXT;
    static const char *const names[] = {"poller_event", "poller_empty"};
    for (int mode = 0; mode < 2; mode++)
        for (int nthr = 1; nthr <= ncpu; nthr *= 2)
            for (int shared = 1; shared >= 0; shared--) {
                if (nthr == 1 && !shared)
                    continue; /* the same thing */
                double best = -1;
                for (int r = 0; r < 3; r++) {
                    double v = one(nthr, shared, mode, span);
                    if (v < 0) {
                        best = -1;
                        break;
                    }
                    if (best < 0 || v < best)
                        best = v;
                }
                printf("BENCH name=%s impl=%s workers=%d value=%.1f unit=ns "
                       "check=%s\n",
                       names[mode], shared ? "shared" : "per_thread", nthr,
                       best < 0 ? 0.0 : best, best < 0 ? "FAIL" : "ok");
            }
    return 0;
}
