/*
 * active_summary.c - the summary tree alone (src/mem/summary.c), without a
 * runtime, at 1, 2 and 4 threads. Scenarios:
 *
 *   uniform  each thread signals slots spread over every leaf and takes
 *            whatever leaf the tree shows it (its own or others')
 *   hot      the same with every slot in one leaf (63 slots)
 *   yield    each thread owns a leaf (reserve_worker) and per operation
 *            sets its yield bit, signals a slot of its leaf, takes it and
 *            clears the yield bit
 *   churn    reserve and release task slots as fast as possible
 *
 * Value: wall time / operations, ns (an operation is one signal and its
 * take, or one reserve and its release). Checks: every signal is taken
 * exactly once (a per-slot pending flag is set before signalling and
 * exchanged back on take: a take that finds it clear is a double or
 * phantom take), every reserved slot was free (a per-slot owner flag), and
 * at the end the summary snapshot is zero and all slots are free.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/mem/arena.h"
#include "../src/mem/summary.h"
#include "bench.h"

#define MAX_THREADS 4

typedef struct {
    weft_summary s;
    void *mem;
    size_t size;
    _Atomic uint8_t *flag; /* per slot: pending signal / reserved */
    const char *scenario;
    int threads;
    long ops; /* per thread */
    _Atomic long taken, sent, bad;
    pthread_barrier_t start;
} world;

static void world_init(world *w, uint32_t max_tasks)
{
    weft__summary_size(&w->s, max_tasks);
    size_t words = weft__summary_bytes(&w->s);
    w->size = words + max_tasks;
    char *m = weft__arena_map(w->size);
    if (!m) {
        perror("active_summary: mmap");
        exit(2);
    }
    w->mem = m;
    weft__summary_place(&w->s, m);
    w->flag = (_Atomic uint8_t *)(m + words);
    weft__summary_init(&w->s);
}

/* Take one leaf the tree shows; returns bits taken (checked). */
static long take_some(world *w, uint32_t *cursor)
{
    uint32_t l = weft__summary_find(&w->s, cursor);
    if (l == UINT32_MAX)
        return 0;
    uint64_t bits = weft__summary_take(&w->s, l);
    long n = 0;
    for (; bits; bits &= bits - 1, n++) {
        uint32_t slot = l * WEFT_LEAF_SLOTS + (uint32_t)__builtin_ctzll(bits);
        if (atomic_exchange_explicit(&w->flag[slot], 0, memory_order_acq_rel) !=
            1)
            atomic_fetch_add(&w->bad, 1);
    }
    return n;
}

typedef struct {
    world *w;
    int id;
} arg_t;

static void *signal_thread(void *p)
{
    arg_t *a = p;
    world *w = a->w;
    int hot = strcmp(w->scenario, "hot") == 0;
    uint32_t span = hot ? WEFT_LEAF_SLOTS : w->s.max_tasks;
    uint32_t cursor = (uint32_t)a->id * 977, k = (uint32_t)a->id;
    long sent = 0, taken = 0;
    pthread_barrier_wait(&w->start);
    for (long i = 0; i < w->ops; i++) {
        /* Own slots are k == id (mod threads); step over leaves. */
        k = (k + (uint32_t)w->threads * 67) % span;
        k -= k % (uint32_t)w->threads;
        uint32_t slot = k + (uint32_t)a->id;
        if (slot >= span)
            slot = (uint32_t)a->id;
        if (atomic_load_explicit(&w->flag[slot], memory_order_acquire) == 0) {
            atomic_store_explicit(&w->flag[slot], 1, memory_order_relaxed);
            weft__summary_signal(&w->s, slot);
            sent++;
        }
        if ((i & 7) == 7)
            taken += take_some(w, &cursor);
    }
    atomic_fetch_add(&w->sent, sent);
    atomic_fetch_add(&w->taken, taken);
    return NULL;
}

static void *yield_thread(void *p)
{
    arg_t *a = p;
    world *w = a->w;
    int64_t leaf = weft__summary_reserve_worker(&w->s, UINT32_MAX);
    if (leaf < 0) {
        atomic_fetch_add(&w->bad, 1);
        return NULL;
    }
    uint32_t cursor = (uint32_t)leaf, base = (uint32_t)leaf * WEFT_LEAF_SLOTS;
    long sent = 0, taken = 0;
    pthread_barrier_wait(&w->start);
    for (long i = 0; i < w->ops; i++) {
        uint32_t slot = base + (uint32_t)(i % WEFT_LEAF_SLOTS);
        if (slot >= w->s.max_tasks)
            slot = base;
        weft__summary_yield_set(&w->s, (uint32_t)leaf);
        if (atomic_load_explicit(&w->flag[slot], memory_order_acquire) == 0) {
            atomic_store_explicit(&w->flag[slot], 1, memory_order_relaxed);
            weft__summary_signal(&w->s, slot);
            sent++;
        }
        taken += take_some(w, &cursor);
        weft__summary_yield_clear(&w->s, (uint32_t)leaf);
    }
    weft__summary_release_worker(&w->s, (uint32_t)leaf);
    atomic_fetch_add(&w->sent, sent);
    atomic_fetch_add(&w->taken, taken);
    return NULL;
}

static void *churn_thread(void *p)
{
    arg_t *a = p;
    world *w = a->w;
    uint32_t hint = (uint32_t)a->id * 16, held[8];
    pthread_barrier_wait(&w->start);
    for (long i = 0; i < w->ops; i += 8) {
        for (int j = 0; j < 8; j++) {
            int64_t s = weft__summary_reserve(&w->s, &hint);
            if (s < 0 || atomic_exchange(&w->flag[s], 1) != 0)
                atomic_fetch_add(&w->bad, 1);
            held[j] = s < 0 ? 0 : (uint32_t)s;
        }
        for (int j = 0; j < 8; j++) {
            atomic_store(&w->flag[held[j]], 0);
            weft__summary_release(&w->s, held[j]);
        }
    }
    atomic_fetch_add(&w->sent, w->ops);
    atomic_fetch_add(&w->taken, w->ops);
    return NULL;
}

static double trial(void *p, int *ok)
{
    world *w = p;
    atomic_store(&w->sent, 0);
    atomic_store(&w->taken, 0);
    void *(*fn)(void *) = strcmp(w->scenario, "yield") == 0   ? yield_thread
                          : strcmp(w->scenario, "churn") == 0 ? churn_thread
                                                              : signal_thread;
    pthread_t th[MAX_THREADS];
    arg_t args[MAX_THREADS];
    pthread_barrier_init(&w->start, NULL, (unsigned)w->threads + 1);
    for (int i = 0; i < w->threads; i++) {
        args[i] = (arg_t){w, i};
        pthread_create(&th[i], NULL, fn, &args[i]);
    }
    pthread_barrier_wait(&w->start);
    double t0 = bench_now_ns();
    for (int i = 0; i < w->threads; i++)
        pthread_join(th[i], NULL);
    double t1 = bench_now_ns();
    pthread_barrier_destroy(&w->start);
    /* Drain what is still signalled, then everything must be zero. */
    uint32_t cursor = 0;
    long rest, drained = 0;
    while ((rest = take_some(w, &cursor)) > 0)
        drained += rest;
    if (atomic_load(&w->sent) != atomic_load(&w->taken) + drained ||
        atomic_load(&w->bad) || weft__summary_snapshot(&w->s) != 0) {
        fprintf(stderr,
                "active_summary.%s/%d: sent %ld, taken %ld + %ld drained, "
                "%ld bad takes, snapshot %#llx\n",
                w->scenario, w->threads, atomic_load(&w->sent),
                atomic_load(&w->taken), drained, atomic_load(&w->bad),
                (unsigned long long)weft__summary_snapshot(&w->s));
        *ok = 0;
    }
    for (uint32_t l = 0; l < w->s.leaf_count; l++) {
        uint64_t resv = atomic_load(&w->s.resv[l]);
        uint64_t want = WEFT_LEAF_YIELD;
        for (uint32_t b = 0; b < WEFT_LEAF_SLOTS; b++)
            if (l * WEFT_LEAF_SLOTS + b >= w->s.max_tasks)
                want |= UINT64_C(1) << b;
        if (resv != want)
            *ok = 0;
    }
    return (t1 - t0) / (double)(w->ops * w->threads);
}

int bench_active_summary(void)
{
    static const char *scenarios[] = {"uniform", "hot", "yield", "churn"};
    static const int threads[] = {1, 2, 4};
    int rc = 0;
    for (int si = 0; si < 4; si++) {
        for (int ti = 0; ti < 3; ti++) {
            world w = {.scenario = scenarios[si], .threads = threads[ti]};
            w.ops = bench_scaled(1000000);
            world_init(&w, 65536);
            int ok = 1;
            double v = bench_median(trial, &w, &ok);
            char name[64];
            snprintf(name, sizeof name, "active_summary.%s", scenarios[si]);
            rc |= bench_report(name, threads[ti], v, "ns/op", ok);
            weft__arena_unmap(w.mem, w.size);
        }
    }
    return rc;
}
