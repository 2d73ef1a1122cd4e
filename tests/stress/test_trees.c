/*
 * test_trees.c - random trees of tasks: each node spawns a seed-determined
 * number of children (random stack class and priority, some detached),
 * yields at random, joins its joinable children, and returns a digest of
 * its subtree. The same digests computed by plain recursion must match,
 * so a result delivered to the wrong joiner, a lost task or a task run
 * twice shows up (provenance). A detached node adds its digest to a
 * shared sum instead, checked once every task is reaped.
 *
 * A node's identity travels in its argument (seed with the depth in the
 * low bits), so no task reads another task's stack.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"

enum { MAX_DEPTH = 6, MAX_FANOUT = 4 };

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static int fanout(uint64_t seed, int depth)
{
    if (depth >= MAX_DEPTH)
        return 0;
    return (int)(mix(seed ^ 0x1111) % (MAX_FANOUT + (depth < 2 ? 1 : 0)));
}

static int is_detached(uint64_t seed, int depth)
{
    return depth > 0 && mix(seed ^ 0x2222) % 5 == 0;
}

static uint64_t child_seed(uint64_t seed, int i)
{
    return mix(seed * 31 + (uint64_t)i + 1) & ~UINT64_C(7);
}

/* Plain recursion: the digest a node computes over itself and its
 * joinable children; detached subtrees add theirs to *det_sum. */
static uint64_t expect(uint64_t seed, int depth, uint64_t *det_sum,
                       uint64_t *det_n, uint64_t *nodes)
{
    uint64_t d = mix(seed);
    *nodes += 1;
    for (int i = 0; i < fanout(seed, depth); i++) {
        uint64_t cs = child_seed(seed, i);
        uint64_t cd = expect(cs, depth + 1, det_sum, det_n, nodes);
        if (is_detached(cs, depth + 1)) {
            *det_sum += cd;
            *det_n += 1;
        } else {
            d += mix(cd + (uint64_t)i);
        }
    }
    return d;
}

static _Atomic uint64_t det_sum, det_count, node_count;

static void *run_node(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg & ~UINT64_C(7);
    int depth = (int)((uintptr_t)arg & 7);
    uint64_t rnd = mix(seed ^ 0x3333);
    int n = fanout(seed, depth);
    weft_task t[MAX_FANOUT + 1];
    atomic_fetch_add_explicit(&node_count, 1, memory_order_relaxed);
    for (int i = 0; i < n; i++) {
        uint64_t cs = child_seed(seed, i);
        weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
        a.stack =
            (mix(cs ^ 0x4444) & 1) ? WEFT_STACK_SMALL : WEFT_STACK_DEFAULT;
        a.priority = (int)(mix(cs ^ 0x5555) % 16);
        if (is_detached(cs, depth + 1))
            a.flags = WEFT_DETACHED;
        CHECK_OK(weft_spawn(NULL, &t[i], run_node,
                            (void *)(uintptr_t)(cs | (uint64_t)(depth + 1)),
                            &a));
        if ((rnd >> i) & 1)
            weft_yield();
    }
    for (int y = 0; y < (int)(rnd >> 8 & 3); y++)
        weft_yield();
    uint64_t d = mix(seed);
    for (int i = 0; i < n; i++) {
        uint64_t cs = child_seed(seed, i);
        if (is_detached(cs, depth + 1))
            continue; /* reaped when it ends; it reports itself */
        void *r;
        CHECK_OK(weft_join(t[i], &r));
        d += mix((uint64_t)(uintptr_t)r + (uint64_t)i);
    }
    if (is_detached(seed, depth)) {
        atomic_fetch_add(&det_sum, d);
        atomic_fetch_add(&det_count, 1);
    }
    return (void *)(uintptr_t)d;
}

typedef struct forest {
    uint64_t first_seed;
    int trees;
    uint64_t det_sum, det_n, nodes; /* expected, accumulated */
} forest;

static void *grow(void *arg)
{
    forest *f = arg;
    for (int k = 0; k < f->trees; k++) {
        uint64_t seed = mix(f->first_seed + (uint64_t)k) & ~UINT64_C(7);
        uint64_t want = expect(seed, 0, &f->det_sum, &f->det_n, &f->nodes);
        weft_task t;
        void *r;
        CHECK_OK(weft_spawn(NULL, &t, run_node, (void *)(uintptr_t)seed, NULL));
        CHECK_OK(weft_join(t, &r));
        CHECK_EQ_U64((uint64_t)(uintptr_t)r, want);
    }
    return NULL;
}

TEST_T(stress, random_trees, 60)
{
    weft_rt *rt = test_rt(16384);
    forest f = {.first_seed = 12345, .trees = 2000};
    test_run(rt, grow, &f);
    test_wait_live(rt, 0, 30000);
    CHECK_CMP_U64(f.nodes, >, 20000); /* the trees are not trivial */
    CHECK_EQ_U64(atomic_load(&node_count), f.nodes);
    CHECK_EQ_U64(atomic_load(&det_count), f.det_n);
    CHECK_EQ_U64(atomic_load(&det_sum), f.det_sum);
    CHECK_EQ_U64(test_stats(rt).spawns, f.nodes + 1);
    test_rt_destroy_clean(rt);
}

/* Several plain threads grow forests in one runtime at once: each runs
 * its trees through weft_spawn/weft_join from outside. */
static weft_rt *shared_rt;

static void *thread_forest(void *arg)
{
    forest *f = arg;
    for (int k = 0; k < f->trees; k++) {
        uint64_t seed = mix(f->first_seed + (uint64_t)k) & ~UINT64_C(7);
        uint64_t want = expect(seed, 0, &f->det_sum, &f->det_n, &f->nodes);
        weft_task t;
        void *r;
        CHECK_OK(
            weft_spawn(shared_rt, &t, run_node, (void *)(uintptr_t)seed, NULL));
        CHECK_OK(weft_join(t, &r));
        CHECK_EQ_U64((uint64_t)(uintptr_t)r, want);
    }
    return NULL;
}

TEST_T(stress, random_trees_from_plain_threads, 60)
{
    enum { T = 4 };
    shared_rt = test_rt(16384);
    forest f[T];
    pthread_t th[T];
    for (int i = 0; i < T; i++) {
        f[i] = (forest){.first_seed = 1000u * (uint64_t)(i + 1), .trees = 500};
        CHECK_EQ_INT(pthread_create(&th[i], NULL, thread_forest, &f[i]), 0);
    }
    uint64_t nodes = 0, dn = 0, ds = 0;
    for (int i = 0; i < T; i++) {
        CHECK_EQ_INT(pthread_join(th[i], NULL), 0);
        nodes += f[i].nodes;
        dn += f[i].det_n;
        ds += f[i].det_sum;
    }
    test_wait_live(shared_rt, 0, 30000);
    CHECK_EQ_U64(atomic_load(&node_count), nodes);
    CHECK_EQ_U64(atomic_load(&det_count), dn);
    CHECK_EQ_U64(atomic_load(&det_sum), ds);
    test_rt_destroy_clean(shared_rt);
}
