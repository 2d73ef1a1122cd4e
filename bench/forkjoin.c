/*
 * forkjoin.c - the fork-join trees: `skynet` (a node at level < depth
 * runs its 10 children with weft_fork_n, which offers each to other
 * workers as a task and runs the rest itself, as the peers' scopes and
 * task groups do; a leaf returns its ordinal; the root must equal the sum
 * of 0 .. 10^depth - 1; `skynet_spawn`: the same tree with weft_spawn
 * and weft_join per child) and `fib` (fib(n),
 * every call with n >= 2 offers fib(n-1) as a task, computes fib(n-2)
 * itself and joins the child: weft_fork_join, as rayon's join; and
 * `fib_spawn`, the same tree with weft_spawn + weft_join, a handle per
 * node). Sizes follow BENCH_SCALE as the peers' do: skynet's depth is
 * 6 + log10(scale), fib's n is 30 + log_phi(scale). Values: total ms. fib
 * also runs at one worker, for the 1 -> N speedup.
 */
#include <math.h>
#include <stdint.h>

#include "bench.h"

static int skynet_depth(void)
{
    int d = (int)lround(6 + log10(bench_scale()));
    return d < 1 ? 1 : d > 8 ? 8 : d;
}

static int fib_n(void)
{
    int n = (int)lround(30 + log(bench_scale()) / log((1 + sqrt(5.0)) / 2));
    return n < 2 ? 2 : n > 40 ? 40 : n;
}

typedef struct node {
    int level, depth;
    uint64_t ordinal, sum;
} node;

static void *skynet(void *arg)
{
    node *n = arg;
    if (n->level == n->depth) {
        n->sum = n->ordinal;
        return NULL;
    }
    node kid[10];
    void *args[10];
    for (int i = 0; i < 10; i++) {
        kid[i] = (node){n->level + 1, n->depth, n->ordinal * 10 + i, 0};
        args[i] = &kid[i];
    }
    weft_fork_n(10, skynet, args, NULL);
    n->sum = 0;
    for (int i = 0; i < 10; i++)
        n->sum += kid[i].sum;
    return NULL;
}

static void *skynet_spawn(void *arg)
{
    node *n = arg;
    if (n->level == n->depth) {
        n->sum = n->ordinal;
        return NULL;
    }
    node kid[10];
    weft_task t[10];
    for (int i = 0; i < 10; i++) {
        kid[i] = (node){n->level + 1, n->depth, n->ordinal * 10 + i, 0};
        if (weft_spawn(NULL, &t[i], skynet_spawn, &kid[i], NULL) != 0) {
            t[i] = WEFT_TASK_NULL;
            skynet_spawn(&kid[i]); /* out of slots: run it here */
        }
    }
    /* Join newest first: the last child spawned is in the LIFO slot, the
     * one before it at the bottom of the deque, and so on, so each join
     * can run its child inline unless a thief took it (the peers' waits
     * are order-free too: task_group.wait, a WaitGroup, rayon scopes). */
    n->sum = 0;
    for (int i = 9; i >= 0; i--) {
        if (t[i].id)
            weft_join(t[i], NULL);
        n->sum += kid[i].sum;
    }
    return NULL;
}

typedef struct {
    weft_rt *rt;
    int depth, n;
    int spawn; /* the weft_spawn + weft_join shape (skynet_spawn, fib_spawn) */
} ctx;

static double skynet_trial(void *p, int *ok)
{
    ctx *c = p;
    node root = {0, c->depth, 0, 0};
    uint64_t leaves = 1, expect;
    for (int i = 0; i < c->depth; i++)
        leaves *= 10;
    expect = leaves * (leaves - 1) / 2;
    double t0 = bench_now_ns();
    if (weft_rt_run(c->rt, c->spawn ? skynet_spawn : skynet, &root, NULL))
        *ok = 0;
    double t1 = bench_now_ns();
    if (root.sum != expect)
        *ok = 0;
    return (t1 - t0) / 1e6;
}

typedef struct {
    int n;
    uint64_t r;
} fib_arg;

static void *fib(void *arg)
{
    fib_arg *a = arg;
    if (a->n < 2) {
        a->r = (uint64_t)a->n;
        return NULL;
    }
    fib_arg x = {a->n - 1, 0}, y = {a->n - 2, 0};
    weft_fork_join(fib, &y, fib, &x, NULL, NULL);
    a->r = x.r + y.r;
    return NULL;
}

static void *fib_spawn(void *arg)
{
    fib_arg *a = arg;
    if (a->n < 2) {
        a->r = (uint64_t)a->n;
        return NULL;
    }
    fib_arg x = {a->n - 1, 0}, y = {a->n - 2, 0};
    weft_task t;
    if (weft_spawn(NULL, &t, fib_spawn, &x, NULL) != 0) {
        t = WEFT_TASK_NULL;
        fib_spawn(&x);
    }
    fib_spawn(&y);
    if (t.id)
        weft_join(t, NULL);
    a->r = x.r + y.r;
    return NULL;
}

static double fib_trial(void *p, int *ok)
{
    ctx *c = p;
    fib_arg a = {c->n, 0};
    uint64_t x = 0, y = 1;
    for (int i = 0; i < c->n; i++) {
        uint64_t z = x + y;
        x = y;
        y = z;
    }
    double t0 = bench_now_ns();
    if (weft_rt_run(c->rt, c->spawn ? fib_spawn : fib, &a, NULL))
        *ok = 0;
    double t1 = bench_now_ns();
    if (a.r != x)
        *ok = 0;
    return (t1 - t0) / 1e6;
}

static int skynet_run(const char *name, int spawn)
{
    int workers = bench_workers(), ok = 1;
    ctx c = {bench_rt((unsigned)workers, 1u << 20), skynet_depth(), 0, spawn};
    double v = bench_median(skynet_trial, &c, &ok);
    bench_verbose_stats(c.rt);
    weft_rt_destroy(c.rt);
    return bench_report(name, workers, v, "ms", ok);
}

int bench_skynet(void)
{
    return skynet_run("skynet", 0);
}

int bench_skynet_spawn(void)
{
    return skynet_run("skynet_spawn", 1);
}

static int fib_run(const char *name, int spawn)
{
    int workers = bench_workers(), rc = 0;
    int counts[2] = {1, workers};
    for (int i = 0; i < (workers > 1 ? 2 : 1); i++) {
        int ok = 1;
        ctx c = {bench_rt((unsigned)counts[i], 1u << 20), 0, fib_n(), spawn};
        double v = bench_median(fib_trial, &c, &ok);
        bench_verbose_stats(c.rt);
        weft_rt_destroy(c.rt);
        rc |= bench_report(name, counts[i], v, "ms", ok);
    }
    return rc;
}

int bench_fib(void)
{
    return fib_run("fib", 0);
}

int bench_fib_spawn(void)
{
    return fib_run("fib_spawn", 1);
}
