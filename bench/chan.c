/*
 * chan.c - the channel workloads.
 *
 * `pingpong`: two tasks pass a counter through two rendezvous channels
 * (capacity 0), N = 1,000,000 round trips; each side adds one, so after N
 * round trips it must read 2N (as the Go and Tokio peers check). Run at 1
 * worker and at all workers. Value: ns per round trip (two sends, two
 * receives, and whatever parks and wake-ups they need).
 *
 * `skynet_chan`: skynet as Go's original and the Go peer write it: every
 * node is a detached task that reports its sum to its parent through a
 * channel; a parent makes one channel of capacity 10 (so no child waits
 * to deliver), spawns its 10 children, receives 10 values and sends the
 * total up. The root reports through a channel of capacity 1. All
 * workers, value: total ms, root must equal 499,999,500,000 (10^6
 * leaves; depth follows BENCH_SCALE as for `skynet`). The tasks use the
 * small stack class: a node needs a few hundred bytes of stack, and each
 * goroutine of the Go peer starts on a small stack too.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"

/* ---- pingpong --------------------------------------------------------- */

typedef struct {
    weft_rt *rt;
    long n;
    weft_chan *ping, *pong;
    uint64_t final;
    int err;
} pp_ctx;

static void *ponger(void *arg)
{
    pp_ctx *c = arg;
    for (long i = 0; i < c->n; i++) {
        uint64_t t;
        if (weft_chan_recv(c->ping, &t) || (t++, weft_chan_send(c->pong, &t)))
            c->err = 1;
    }
    return NULL;
}

static void *pinger(void *arg)
{
    pp_ctx *c = arg;
    uint64_t t = 0;
    for (long i = 0; i < c->n; i++) {
        t++;
        if (weft_chan_send(c->ping, &t) || weft_chan_recv(c->pong, &t))
            c->err = 1;
    }
    c->final = t;
    return NULL;
}

static double pp_trial(void *p, int *ok)
{
    pp_ctx *c = p;
    weft_task a, b;
    c->final = 0;
    c->err = 0;
    double t0 = bench_now_ns();
    if (weft_spawn(c->rt, &a, ponger, c, NULL) ||
        weft_spawn(c->rt, &b, pinger, c, NULL)) {
        *ok = 0;
        return 0;
    }
    weft_join(a, NULL);
    weft_join(b, NULL);
    double t1 = bench_now_ns();
    if (c->err || c->final != 2 * (uint64_t)c->n)
        *ok = 0;
    return (t1 - t0) / (double)c->n;
}

int bench_pingpong(void)
{
    int workers = bench_workers(), rc = 0;
    int counts[2] = {1, workers};
    for (int i = 0; i < (workers > 1 ? 2 : 1); i++) {
        int ok = 1;
        pp_ctx c = {bench_rt((unsigned)counts[i], 0),
                    bench_scaled(1000000),
                    NULL,
                    NULL,
                    0,
                    0};
        if (weft_chan_create(&c.ping, sizeof(uint64_t), 0) ||
            weft_chan_create(&c.pong, sizeof(uint64_t), 0)) {
            fprintf(stderr, "weft-bench: pingpong: weft_chan_create failed\n");
            exit(2);
        }
        double v = bench_median(pp_trial, &c, &ok);
        bench_verbose_stats(c.rt);
        weft_chan_destroy(c.ping);
        weft_chan_destroy(c.pong);
        weft_rt_destroy(c.rt);
        rc |= bench_report("pingpong", counts[i], v, "ns/op", ok);
    }
    return rc;
}

/* ---- skynet_chan ------------------------------------------------------ */

typedef struct sk_arg {
    weft_chan *out; /* the parent's channel */
    uint64_t num;
    int level, depth;
} sk_arg;

static const weft_spawn_attr sk_attr = {WEFT_PRIO_NORMAL, WEFT_STACK_SMALL,
                                        WEFT_DETACHED, NULL};

static void *sk_node(void *arg)
{
    /* Copy the argument: it lives in the parent's frame, which may end as
     * soon as this node has sent its sum. */
    sk_arg a = *(sk_arg *)arg;
    uint64_t sum = 0;
    if (a.level == a.depth) {
        sum = a.num;
    } else {
        weft_chan *kids;
        sk_arg kid[10];
        if (weft_chan_create(&kids, sizeof(uint64_t), 10)) {
            sum = UINT64_MAX; /* poisons the root: check=FAIL */
            weft_chan_send(a.out, &sum);
            return NULL;
        }
        for (int i = 0; i < 10; i++) {
            kid[i] =
                (sk_arg){kids, a.num * 10 + (uint64_t)i, a.level + 1, a.depth};
            /* Out of task slots: run the child here; it only sends into
             * the buffered channel, which has room for all ten. */
            if (weft_spawn(NULL, NULL, sk_node, &kid[i], &sk_attr))
                sk_node(&kid[i]);
        }
        /* Receive all ten even after a failure, so that no child still
         * uses the channel when it is destroyed. */
        int bad = 0;
        for (int i = 0; i < 10; i++) {
            uint64_t v = 0;
            if (weft_chan_recv(kids, &v) || v == UINT64_MAX)
                bad = 1;
            sum += v;
        }
        if (weft_chan_destroy(kids) || bad)
            sum = UINT64_MAX;
    }
    weft_chan_send(a.out, &sum);
    return NULL;
}

typedef struct {
    weft_rt *rt;
    int depth;
} sk_ctx;

static double sk_trial(void *p, int *ok)
{
    sk_ctx *c = p;
    uint64_t leaves = 1;
    for (int i = 0; i < c->depth; i++)
        leaves *= 10;
    uint64_t expect = leaves * (leaves - 1) / 2, sum = 0;
    weft_chan *root;
    if (weft_chan_create(&root, sizeof(uint64_t), 1)) {
        *ok = 0;
        return 0;
    }
    sk_arg a = {root, 0, 0, c->depth};
    double t0 = bench_now_ns();
    /* The root is spawned from this plain thread, which then blocks on
     * the root channel, as the Go peer's main goroutine does. */
    if (weft_spawn(c->rt, NULL, sk_node, &a, &sk_attr) ||
        weft_chan_recv(root, &sum))
        *ok = 0;
    double t1 = bench_now_ns();
    if (sum != expect)
        *ok = 0;
    weft_chan_destroy(root);
    return (t1 - t0) / 1e6;
}

int bench_skynet_chan(void)
{
    int workers = bench_workers(), ok = 1;
    int d = (int)lround(6 + log10(bench_scale()));
    sk_ctx c = {bench_rt((unsigned)workers, 1u << 20), d < 1   ? 1
                                                       : d > 8 ? 8
                                                               : d};
    double v = bench_median(sk_trial, &c, &ok);
    bench_verbose_stats(c.rt);
    /* Detached tasks may still be finishing after the root has sent. */
    weft_stats s;
    while (!weft_stats_get(c.rt, &s) && s.live)
        weft_sleep_ns(100000);
    weft_rt_destroy(c.rt);
    return bench_report("skynet_chan", workers, v, "ms", ok);
}
