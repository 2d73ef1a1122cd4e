/*
 * accept_rate.c - `accept_rate`: new connections through weft_accept
 * (issue 15: a multishot accept in the io_uring backend), the poller's
 * path against the ring's.
 *
 * A runtime with all workers serves a loopback listener: one acceptor
 * task takes each connection and spawns a detached task (small stack)
 * that reads one byte, writes it back and closes. The clients are
 * CLIENTS threads of a child process forked before any runtime exists;
 * each makes connections one after another (connect, write a byte, read
 * it back, close), N per repetition (2,000 x BENCH_SCALE each). The
 * runtime is made with cfg.io = WEFT_IO_EPOLL, then WEFT_IO_URING
 * (skipped, with the reason, where weft_rt_create says it cannot be).
 * Two lines per backend, each the median of five repetitions after a
 * warm-up:
 *  - accept_rate_{epoll,uring}: wall time of a repetition over the
 *    connections made, ns/op (the clients' own system calls are in it);
 *  - accept_cpu_{epoll,uring}: the server process's CPU time (user and
 *    system, getrusage) over the connections, ns/op: what the server
 *    pays per connection, which is where the two paths differ.
 * Lower is better for both.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define CLIENTS 4

typedef struct {
    int lfd;
    struct sockaddr_in addr;
    long per_client;
    _Atomic int bad;
    int cmd, res; /* pipes to and from the client process */
    double cpu[BENCH_REPS + 1];
    int ncpu;
} ar_ctx;

static void *conn_task(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char b;
    if (weft_read(fd, &b, 1) == 1)
        weft_write(fd, &b, 1);
    weft_close(fd);
    return NULL;
}

static void *acceptor(void *arg)
{
    ar_ctx *c = arg;
    weft_spawn_attr at = WEFT_SPAWN_ATTR_INIT;
    at.flags = WEFT_DETACHED;
    at.stack = WEFT_STACK_SMALL;
    for (;;) {
        int fd = weft_accept(c->lfd, NULL, NULL, 0);
        if (fd == -ECANCELED)
            return NULL;
        if (fd < 0) {
            atomic_store(&c->bad, 1);
            continue;
        }
        if (weft_spawn(NULL, NULL, conn_task, (void *)(intptr_t)fd, &at)) {
            atomic_store(&c->bad, 1);
            weft_close(fd);
        }
    }
}

static void *client(void *arg)
{
    ar_ctx *c = arg;
    for (long i = 0; i < c->per_client; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        char b = 'x', back = 0;
        if (fd < 0 ||
            connect(fd, (struct sockaddr *)&c->addr, sizeof c->addr) ||
            write(fd, &b, 1) != 1 || read(fd, &back, 1) != 1 || back != b)
            atomic_store(&c->bad, 1);
        if (fd >= 0)
            close(fd);
    }
    return NULL;
}

/* The client process: a repetition per command byte, until 'q'. */
static void client_process(ar_ctx *c)
{
    char cmd;
    while (read(c->cmd, &cmd, 1) == 1 && cmd != 'q') {
        pthread_t th[CLIENTS];
        for (int i = 0; i < CLIENTS; i++)
            if (pthread_create(&th[i], NULL, client, c))
                atomic_store(&c->bad, 1);
        for (int i = 0; i < CLIENTS; i++)
            pthread_join(th[i], NULL);
        char r = atomic_load(&c->bad) ? 'x' : 'o';
        if (write(c->res, &r, 1) != 1)
            break;
    }
    _exit(0);
}

static double cpu_ns(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return ((double)u.ru_utime.tv_sec + (double)u.ru_stime.tv_sec) * 1e9 +
           ((double)u.ru_utime.tv_usec + (double)u.ru_stime.tv_usec) * 1e3;
}

static double trial(void *arg, int *ok)
{
    ar_ctx *c = arg;
    double n = (double)CLIENTS * (double)c->per_client;
    double t0 = bench_now_ns(), u0 = cpu_ns();
    char r = 0;
    if (write(c->cmd, "g", 1) != 1 || read(c->res, &r, 1) != 1 || r != 'o')
        *ok = 0;
    double dt = bench_now_ns() - t0;
    if (c->ncpu <= BENCH_REPS)
        c->cpu[c->ncpu++] = (cpu_ns() - u0) / n;
    if (atomic_load(&c->bad))
        *ok = 0;
    return dt / n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int listener(struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof *addr;
    if (bind(fd, (struct sockaddr *)addr, sizeof *addr) ||
        getsockname(fd, (struct sockaddr *)addr, &sl) || listen(fd, 4096)) {
        close(fd);
        return -1;
    }
    return fd;
}

int bench_accept_rate(void)
{
    static const char *const io_name[] = {"epoll", "uring"};
    int workers = bench_workers(), rc = 0;
    for (int way = 0; way < 2; way++) {
        ar_ctx c = {.per_client = bench_scaled(2000)};
        c.lfd = listener(&c.addr);
        int to[2], from[2];
        if (c.lfd < 0 || pipe(to) || pipe(from)) {
            fprintf(stderr, "accept_rate: no listener or pipes\n");
            return 1;
        }
        /* The clients' process, forked before the runtime (no threads
         * of weft's in it). */
        pid_t kid = fork();
        if (kid == 0) {
            close(to[1]);
            close(from[0]);
            close(c.lfd);
            c.cmd = to[0];
            c.res = from[1];
            client_process(&c);
        }
        close(to[0]);
        close(from[1]);
        c.cmd = to[1];
        c.res = from[0];
        weft_config cfg;
        weft_config_default(&cfg);
        cfg.workers = (unsigned)workers;
        cfg.max_tasks = 4096;
        cfg.io = way ? WEFT_IO_URING : WEFT_IO_EPOLL;
        weft_rt *rt = NULL;
        int err = kid < 0 ? -errno : weft_rt_create(&rt, &cfg);
        weft_task acc;
        int ok = !err && !weft_spawn(rt, &acc, acceptor, &c, NULL);
        double v = ok ? bench_median(trial, &c, &ok) : 0;
        close(c.cmd); /* the client process ends */
        if (kid > 0)
            waitpid(kid, NULL, 0);
        close(c.res);
        if (err) {
            fprintf(stderr, "accept_rate_%s: skipped: %s\n", io_name[way],
                    weft_last_error());
            close(c.lfd);
            continue;
        }
        bench_verbose_stats(rt);
        weft_close(c.lfd); /* ends the acceptor's weft_accept */
        if (ok)
            weft_join(acc, NULL);
        weft_rt_destroy(rt);
        /* The CPU figure of the same five timed repetitions. */
        double cpu = 0;
        if (c.ncpu == BENCH_REPS + 1) {
            qsort(c.cpu + 1, BENCH_REPS, sizeof c.cpu[0], cmp_double);
            cpu = c.cpu[1 + BENCH_REPS / 2];
        }
        char name[48];
        snprintf(name, sizeof name, "accept_rate_%s", io_name[way]);
        rc |= bench_report(name, workers, v, "ns/op", ok);
        snprintf(name, sizeof name, "accept_cpu_%s", io_name[way]);
        rc |= bench_report(name, workers, cpu, "ns/op", ok && cpu > 0);
    }
    return rc;
}
