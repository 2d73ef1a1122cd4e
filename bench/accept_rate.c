/*
 * accept_rate.c - `accept_rate`: new connections per second through
 * weft_accept (issue 15: a multishot accept in the io_uring backend),
 * the poller's path against the ring's.
 *
 * A runtime with all workers serves a loopback listener: one acceptor
 * task takes each connection and spawns a detached task that reads one
 * byte, writes it back and closes. CLIENTS plain threads each make
 * connections one after another (connect, write a byte, read it back,
 * close), N per repetition (2,000 x BENCH_SCALE each). The runtime is
 * made with cfg.io = WEFT_IO_EPOLL, then WEFT_IO_URING (skipped, with
 * the reason, where weft_rt_create says it cannot be). Value: wall time
 * of a repetition over the connections made, ns/op (lower is better);
 * median of five after a warm-up. Lines: accept_rate_{epoll,uring}. The
 * clients' own system calls are in the figure, the same for both.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

#define CLIENTS 4

typedef struct {
    int lfd;
    struct sockaddr_in addr;
    long per_client;
    _Atomic int bad;
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

static double trial(void *arg, int *ok)
{
    ar_ctx *c = arg;
    pthread_t th[CLIENTS];
    double t0 = bench_now_ns();
    for (int i = 0; i < CLIENTS; i++)
        if (pthread_create(&th[i], NULL, client, c))
            *ok = 0;
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(th[i], NULL);
    double dt = bench_now_ns() - t0;
    if (atomic_load(&c->bad))
        *ok = 0;
    return dt / ((double)CLIENTS * (double)c->per_client);
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
    static const char *const name[] = {"accept_rate_epoll",
                                       "accept_rate_uring"};
    int workers = bench_workers(), rc = 0;
    for (int way = 0; way < 2; way++) {
        weft_config cfg;
        weft_config_default(&cfg);
        cfg.workers = (unsigned)workers;
        cfg.max_tasks = 4096;
        cfg.io = way ? WEFT_IO_URING : WEFT_IO_EPOLL;
        weft_rt *rt;
        int err = weft_rt_create(&rt, &cfg);
        if (err) {
            fprintf(stderr, "%s: skipped: %s\n", name[way], weft_last_error());
            continue;
        }
        ar_ctx c = {.per_client = bench_scaled(2000)};
        c.lfd = listener(&c.addr);
        weft_task acc;
        int ok = c.lfd >= 0 && !weft_spawn(rt, &acc, acceptor, &c, NULL);
        double v = ok ? bench_median(trial, &c, &ok) : 0;
        bench_verbose_stats(rt);
        if (c.lfd >= 0) {
            weft_close(c.lfd); /* ends the acceptor's weft_accept */
            if (ok)
                weft_join(acc, NULL);
        }
        weft_rt_destroy(rt);
        rc |= bench_report(name[way], workers, v, "ns/op", ok);
    }
    return rc;
}
