/*
 * test_fork_join.c - weft_fork_join's races (sched/fork.c): the caller
 * taking its record back against thieves and its own worker's run loop,
 * the record's word (a claimer's DONE or REFUSED against the caller's
 * waiter record), and refusals when max_tasks is nearly reached, all at
 * once. Random trees whose leaves yield, park, spin or return at once;
 * every leaf must run exactly once and every node see both results.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "check.h"

typedef struct tree {
    _Atomic uint8_t *ran; /* per leaf */
    uint32_t leaves;
} tree;

typedef struct node {
    tree *t;
    uint32_t lo, hi; /* the leaves [lo, hi) */
    uint64_t sum;    /* of the leaf numbers */
} node;

static uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x9e3779b97f4a7c15ULL;
    x ^= x >> 29;
    return x;
}

static void *walk(void *arg)
{
    node *n = arg;
    if (n->hi - n->lo == 1) {
        if (atomic_fetch_add_explicit(&n->t->ran[n->lo], 1,
                                      memory_order_relaxed))
            CHECK(!"a leaf ran twice");
        switch (mix(n->lo) % 8) {
        case 0:
            weft_yield();
            break;
        case 1:
            weft_sleep_ns(1000);
            break;
        case 2: {
            uint64_t t0 = weft_now_ns();
            while (weft_now_ns() - t0 < 2000)
                ;
            break;
        }
        default:
            break;
        }
        n->sum = n->lo;
        return arg;
    }
    uint32_t mid = n->lo + (n->hi - n->lo) / 2;
    node a = {n->t, n->lo, mid, 0}, b = {n->t, mid, n->hi, 0};
    void *ra = NULL, *rb = NULL;
    CHECK_OK(weft_fork_join(walk, &a, walk, &b, &ra, &rb));
    CHECK(ra == &a && rb == &b);
    n->sum = a.sum + b.sum;
    return arg;
}

static void trees(unsigned workers, uint32_t max_tasks)
{
    weft_rt *rt = test_rt_workers(max_tasks, workers);
    uint32_t leaves = TEST_SANITIZED ? 6000 : 100000;
    int rounds = TEST_SANITIZED ? 2 : 5;
    tree t = {calloc(leaves, 1), leaves};
    CHECK(t.ran);
    weft_stats s0 = test_stats(rt);
    for (int r = 0; r < rounds; r++) {
        memset((void *)t.ran, 0, leaves);
        node root = {&t, 0, leaves, 0};
        test_run(rt, walk, &root);
        CHECK_EQ_U64(root.sum, (uint64_t)leaves * (leaves - 1) / 2);
        for (uint32_t i = 0; i < leaves; i++)
            if (t.ran[i] != 1)
                CHECK_EQ_INT(t.ran[i], 1);
    }
    weft_stats s1 = test_stats(rt);
    CHECK_EQ_U64(s1.forks - s0.forks, (uint64_t)rounds * (leaves - 1));
    if (workers > 1) /* yields, sleeps and idle workers make thieves */
        CHECK_CMP_U64(s1.forks_stolen - s0.forks_stolen, >, 0);
    free((void *)t.ran);
    test_rt_destroy_clean(rt);
}

TEST_T(stress, fork_join_trees_two_workers, 120)
{
    trees(2, 1u << 14);
}

TEST_T(stress, fork_join_trees_four_workers, 120)
{
    trees(4, 1u << 14);
}

/* Few slots (4 workers need 252): claims are refused now and then (the
 * caller runs fb). */
TEST_T(stress, fork_join_trees_few_slots, 120)
{
    trees(4, 252);
}
