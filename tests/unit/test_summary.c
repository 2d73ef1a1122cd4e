/*
 * test_summary.c - the active summary tree and the reservation maps
 * (src/mem/summary.c): a model test against a plain reference, exhaustion,
 * misuse, a multi-threaded exactly-once stress, the stale-bit races
 * played step by step through the debug hook (finders must clear what
 * they leave), and wake-ups of parked tasks from plain threads through
 * the runtime.
 */
#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "../check.h"
#include "../internal.h"
#include "../../src/base/atomic.h"
#include "../../src/mem/arena.h"

/* A summary in its own mapping, laid out like the runtime's. */
typedef struct {
    weft_summary s;
    char *mem;
    size_t size;
} tree;

static void tree_init(tree *t, uint32_t max_tasks)
{
    memset(t, 0, sizeof *t);
    weft__summary_size(&t->s, max_tasks);
    t->size = weft__summary_bytes(&t->s);
    t->mem = weft__arena_map(t->size);
    CHECK_NOT_NULL(t->mem);
    weft__summary_place(&t->s, t->mem);
    weft__summary_init(&t->s);
}

static void tree_fini(tree *t)
{
    weft__arena_unmap(t->mem, t->size);
}

static uint64_t ld(_Atomic uint64_t *p)
{
    return atomic_load_explicit(p, memory_order_relaxed);
}

/* ---- the model -------------------------------------------------------- */

typedef struct {
    uint8_t *signal;   /* per slot */
    uint8_t *reserved; /* per slot */
    uint8_t *yield;    /* per leaf */
} model;

/* Every word of the tree must follow from the model. */
static void check_against(tree *t, const model *m, long step)
{
    weft_summary *s = &t->s;
    for (uint32_t l = 0; l < s->leaf_count; l++) {
        uint64_t want = m->yield[l] ? WEFT_LEAF_YIELD : 0,
                 resv = WEFT_LEAF_YIELD;
        int has_free = 0;
        for (uint32_t b = 0; b < WEFT_LEAF_SLOTS; b++) {
            uint32_t slot = l * WEFT_LEAF_SLOTS + b;
            if (slot >= s->max_tasks) {
                resv |= UINT64_C(1) << b;
                continue;
            }
            if (m->signal[slot])
                want |= UINT64_C(1) << b;
            if (m->reserved[slot])
                resv |= UINT64_C(1) << b;
            else
                has_free = 1;
        }
        if (ld(&s->leaf[l]) != want || ld(&s->resv[l]) != resv)
            weft_check_fail(
                __FILE__, __LINE__,
                "step %ld leaf %u: signal word %#" PRIx64 " (want %#" PRIx64
                "), resv %#" PRIx64 " (want %#" PRIx64 ")",
                step, l, ld(&s->leaf[l]), want, ld(&s->resv[l]), resv);
        uint64_t rbit = UINT64_C(1) << (l % 64);
        CHECK_EQ_INT(!!(ld(&s->root[l / 64]) & rbit), want != 0);
        CHECK_EQ_INT(!!(ld(&s->avail[l / 64]) & rbit), has_free);
    }
    for (uint32_t r = 0; r < s->root_count; r++)
        CHECK_EQ_INT(!!(ld(&s->top[r / 64]) & (UINT64_C(1) << (r % 64))),
                     ld(&s->root[r]) != 0);
}

static void model_run(uint32_t max_tasks, long steps, unsigned seed)
{
    tree t;
    tree_init(&t, max_tasks);
    weft_summary *s = &t.s;
    model m = {calloc(max_tasks, 1), calloc(max_tasks, 1),
               calloc(s->leaf_count, 1)};
    CHECK(m.signal && m.reserved && m.yield);
    uint32_t hint = 0, cursor = 0;
    srand(seed);
    for (long step = 0; step < steps; step++) {
        uint32_t slot = (uint32_t)rand() % max_tasks;
        uint32_t leaf = slot / WEFT_LEAF_SLOTS;
        switch (rand() % 6) {
        case 0: { /* signal: 1 when the leaf had no signal before */
            int want = !(ld(&s->leaf[leaf]) & WEFT_LEAF_SIGNALS);
            CHECK_EQ_INT(weft__summary_signal(s, slot), want);
            m.signal[slot] = 1;
            break;
        }
        case 1: { /* find + take: must return exactly the model's bits */
            uint32_t l = weft__summary_find(s, &cursor);
            int any = 0;
            for (uint32_t i = 0; i < max_tasks; i++)
                any |= m.signal[i];
            if (l == UINT32_MAX) {
                CHECK_EQ_INT(any, 0);
                break;
            }
            uint64_t got = weft__summary_take(s, l);
            for (uint32_t b = 0; b < WEFT_LEAF_SLOTS; b++) {
                uint32_t i = l * WEFT_LEAF_SLOTS + b;
                int bit = !!(got & (UINT64_C(1) << b));
                CHECK_EQ_INT(bit, i < max_tasks ? m.signal[i] : 0);
                if (i < max_tasks)
                    m.signal[i] = 0;
            }
            break;
        }
        case 2: { /* reserve */
            int64_t r = weft__summary_reserve(s, &hint);
            int free_any = 0;
            for (uint32_t i = 0; i < max_tasks; i++)
                free_any |= !m.reserved[i];
            if (r < 0) {
                CHECK_EQ_INT(r, -EAGAIN);
                CHECK_EQ_INT(free_any, 0);
            } else {
                CHECK_CMP_INT(r, <, max_tasks);
                CHECK_EQ_INT(m.reserved[r], 0);
                m.reserved[r] = 1;
            }
            break;
        }
        case 3: /* release a reserved slot */
            if (m.reserved[slot]) {
                weft__summary_release(s, slot);
                m.reserved[slot] = 0;
            }
            break;
        case 4: /* yield bit on */
            weft__summary_yield_set(s, leaf);
            m.yield[leaf] = 1;
            break;
        case 5: /* yield bit off */
            weft__summary_yield_clear(s, leaf);
            m.yield[leaf] = 0;
            break;
        }
        check_against(&t, &m, step);
    }
    /* Drain: then the snapshot must be zero. */
    for (uint32_t l = 0; l < s->leaf_count; l++) {
        weft__summary_take(s, l);
        weft__summary_yield_clear(s, l);
    }
    CHECK_EQ_U64(weft__summary_snapshot(s), 0);
    free(m.signal);
    free(m.reserved);
    free(m.yield);
    tree_fini(&t);
}

TEST(unit, summary_model_small)
{
    /* 8 leaves, one root and top word; a partial last leaf. */
    model_run(500, TEST_SANITIZED ? 20000 : 100000, 1);
}

TEST(unit, summary_model_two_tops)
{
    /* 300,000 slots: 4762 leaves, 75 root words, 2 top words. Fewer steps:
     * each step re-checks every word. */
    model_run(300000, TEST_SANITIZED ? 100 : 600, 2);
}

TEST(unit, summary_exhaustion)
{
    tree t;
    uint32_t n = 200;
    tree_init(&t, n);
    uint8_t seen[200] = {0};
    uint32_t hint = 1;
    for (uint32_t i = 0; i < n; i++) {
        int64_t r = weft__summary_reserve(&t.s, &hint);
        CHECK_CMP_INT(r, >=, 0);
        CHECK_CMP_INT(r, <, n);
        CHECK_EQ_INT(seen[r], 0);
        seen[r] = 1;
    }
    uint64_t before[4];
    for (uint32_t l = 0; l < 4; l++)
        before[l] = ld(&t.s.resv[l]);
    uint64_t avail = ld(&t.s.avail[0]);
    CHECK_EQ_INT(weft__summary_reserve(&t.s, &hint), -EAGAIN);
    for (uint32_t l = 0; l < 4; l++)
        CHECK_EQ_U64(ld(&t.s.resv[l]), before[l]);
    CHECK_EQ_U64(ld(&t.s.avail[0]), avail);
    CHECK_EQ_U64(avail, 0);
    weft__summary_release(&t.s, 137);
    CHECK_EQ_INT(weft__summary_reserve(&t.s, &hint), 137);
    tree_fini(&t);
}

TEST(unit, summary_reserve_prefers_hint_leaf)
{
    tree t;
    tree_init(&t, 63 * 10);
    uint32_t hint = 7;
    for (int i = 0; i < 63; i++)
        CHECK_EQ_INT(weft__summary_reserve(&t.s, &hint) / 63, 7);
    /* Leaf 7 is full: the next comes from elsewhere and moves the hint. */
    int64_t r = weft__summary_reserve(&t.s, &hint);
    CHECK_CMP_INT(r / 63, !=, 7);
    CHECK_EQ_INT(hint, r / 63);
    tree_fini(&t);
}

/* Slots handed out one after another get hot TCBs on separate cache
 * lines (two 32-byte TCBs a line: slots 2k and 2k+1) while a leaf has
 * slots of one parity left: of 63, the 32 even bits first, each a line
 * of its own, then the odd ones; in batches too. Lowest-first gave
 * consecutive tasks shared lines (decisions/0013, "A shared line"). */
TEST(unit, summary_reserve_spreads_cache_lines)
{
    tree t;
    tree_init(&t, 63 * 4);
    uint32_t hint = 1; /* leaf 1: slots 63..125, odd slot numbers first */
    uint8_t line[64] = {0};
    for (int i = 0; i < 32; i++) {
        int64_t r = weft__summary_reserve(&t.s, &hint);
        CHECK_EQ_INT(r / 63, 1);
        CHECK_EQ_INT((r - 63) % 2, 0);
        CHECK_EQ_INT(line[r / 2 - 31], 0);
        line[r / 2 - 31] = 1;
    }
    for (int i = 0; i < 31; i++)
        CHECK_EQ_INT((weft__summary_reserve(&t.s, &hint) - 63) % 2, 1);
    hint = 2;
    uint64_t b = weft__summary_reserve_batch(&t.s, &hint, 8);
    CHECK_EQ_U64(b, UINT64_C(0x5555));
    CHECK_EQ_U64(weft__slot_pick(UINT64_C(0xa)), UINT64_C(0x2));
    CHECK_EQ_U64(weft__slot_pick(UINT64_C(0xc)), UINT64_C(0x4));
    tree_fini(&t);
}

static void release_unreserved(void *arg)
{
    tree *t = arg;
    weft__summary_release(&t->s, 5);
}

TEST(unit, summary_release_unreserved_aborts)
{
    tree t;
    tree_init(&t, 100);
    test_child c;
    test_fork_capture(release_unreserved, &t, 10, &c);
    CHECK(WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGABRT);
    CHECK_STR_CONTAINS(c.err, "weft: summary: release of slot 5");
    tree_fini(&t);
}

TEST(unit, summary_worker_leaves)
{
    tree t;
    tree_init(&t, 63 * 70 + 1); /* 71 leaves: two words of the map */
    uint8_t seen[71] = {0};
    for (int i = 0; i < 71; i++) {
        int64_t l = weft__summary_reserve_worker(&t.s, UINT32_MAX);
        CHECK_CMP_INT(l, >=, 0);
        CHECK_CMP_INT(l, <, 71);
        CHECK_EQ_INT(seen[l], 0);
        seen[l] = 1;
    }
    CHECK_EQ_INT(weft__summary_reserve_worker(&t.s, UINT32_MAX), -EAGAIN);
    weft__summary_release_worker(&t.s, 66);
    CHECK_EQ_INT(weft__summary_reserve_worker(&t.s, UINT32_MAX), 66);
    tree_fini(&t);
}

TEST(unit, summary_find_rotates)
{
    tree t;
    tree_init(&t, 63 * 64);
    /* One signal in each of leaves 3, 20 and 40: successive finds from a
     * moving cursor visit all three, not the lowest again and again. */
    uint32_t leaves[3] = {3, 20, 40}, cursor = 0;
    for (int i = 0; i < 3; i++)
        weft__summary_signal(&t.s, leaves[i] * 63);
    uint8_t hit[64] = {0};
    for (int i = 0; i < 3; i++)
        hit[weft__summary_find(&t.s, &cursor)] = 1;
    CHECK(hit[3] && hit[20] && hit[40]);
    /* A cursor past leaf 40 wraps to leaf 3. */
    cursor = 41;
    CHECK_EQ_INT(weft__summary_find(&t.s, &cursor), 3);
    tree_fini(&t);
}

/* ---- concurrent exactly-once ----------------------------------------- */

typedef struct {
    tree t;
    _Atomic uint8_t *pending;
    _Atomic long sent, taken, bad;
    _Atomic int signallers_left;
    long per_thread;
} stress;

static void *signaller(void *p)
{
    stress *x = p;
    static _Atomic unsigned next_id;
    unsigned id = atomic_fetch_add(&next_id, 1);
    uint32_t n = x->t.s.max_tasks, k = id;
    long sent = 0;
    for (long i = 0; i < x->per_thread; i++) {
        k = (k * 1103515245u + 12345u) % n;
        uint32_t slot = k - k % 2 + (id & 1); /* two signallers, own slots */
        if (slot >= n)
            continue;
        if (atomic_load_explicit(&x->pending[slot], memory_order_acquire))
            continue;
        atomic_store_explicit(&x->pending[slot], 1, memory_order_relaxed);
        weft__summary_signal(&x->t.s, slot);
        sent++;
    }
    atomic_fetch_add(&x->sent, sent);
    atomic_fetch_sub(&x->signallers_left, 1);
    return NULL;
}

static long take_round(stress *x, uint32_t *cursor)
{
    uint32_t l = weft__summary_find(&x->t.s, cursor);
    if (l == UINT32_MAX)
        return -1;
    uint64_t bits = weft__summary_take(&x->t.s, l);
    long n = 0;
    for (; bits; bits &= bits - 1, n++) {
        uint32_t slot = l * WEFT_LEAF_SLOTS + (uint32_t)__builtin_ctzll(bits);
        if (atomic_exchange_explicit(&x->pending[slot], 0,
                                     memory_order_acq_rel) != 1)
            atomic_fetch_add(&x->bad, 1);
    }
    return n;
}

/* A stress run over a tree of `slots` slots, per_thread operations each. */
static void stress_init(stress *x, uint32_t slots, long per_thread)
{
    x->per_thread = per_thread;
    tree_init(&x->t, slots);
    x->pending = calloc(slots, 1);
    CHECK_NOT_NULL(x->pending);
}

/* Every signal taken exactly once (by the threads, or `drained` after
 * them), nothing left in the tree; then free the run. */
static void stress_finish(stress *x, long drained)
{
    CHECK_EQ_INT(atomic_load(&x->bad), 0);
    CHECK_EQ_INT(atomic_load(&x->taken) + drained, atomic_load(&x->sent));
    CHECK_EQ_U64(weft__summary_snapshot(&x->t.s), 0);
    free((void *)x->pending);
    tree_fini(&x->t);
}

static void *taker(void *p)
{
    stress *x = p;
    uint32_t cursor = (uint32_t)(uintptr_t)&cursor % 1000;
    long taken = 0, r;
    while (atomic_load(&x->signallers_left) > 0)
        if ((r = take_round(x, &cursor)) > 0)
            taken += r;
    while ((r = take_round(x, &cursor)) >= 0)
        taken += r;
    atomic_fetch_add(&x->taken, taken);
    return NULL;
}

TEST_T(unit, summary_concurrent_exactly_once, 120)
{
    /* Two signallers and two takers, 10^7 signal attempts in all (10^6
     * under sanitizers); every signal taken exactly once, nothing left. */
    static stress x;
    stress_init(&x, 4096, TEST_SANITIZED ? 500000 : 5000000);
    atomic_store(&x.signallers_left, 2);
    pthread_t th[4];
    pthread_create(&th[0], NULL, signaller, &x);
    pthread_create(&th[1], NULL, signaller, &x);
    pthread_create(&th[2], NULL, taker, &x);
    pthread_create(&th[3], NULL, taker, &x);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CHECK_CMP_INT(atomic_load(&x.sent), >, 0);
    stress_finish(&x, 0);
}

/* Four threads that each signal their own slots of one leaf and take
 * whatever the tree shows: the most contended case for the upper bits
 * (two takers emptying the same words while a signaller refills them). */
typedef struct {
    stress *x;
    uint32_t id;
} mixed_arg;

static void *mixed(void *p)
{
    mixed_arg *a = p;
    stress *x = a->x;
    uint32_t cursor = a->id, k = a->id;
    long sent = 0, taken = 0, r;
    for (long i = 0; i < x->per_thread; i++) {
        k = (k + 4) % 60; /* slots id, id+4, ... < 63 */
        if (!atomic_load_explicit(&x->pending[k], memory_order_acquire)) {
            atomic_store_explicit(&x->pending[k], 1, memory_order_relaxed);
            weft__summary_signal(&x->t.s, k);
            sent++;
        }
        if ((i & 3) == 3 && (r = take_round(x, &cursor)) > 0)
            taken += r;
    }
    atomic_fetch_add(&x->sent, sent);
    atomic_fetch_add(&x->taken, taken);
    return NULL;
}

TEST_T(unit, summary_concurrent_hot_leaf, 120)
{
    /* 4 x 2.5 x 10^6 operations on one leaf (10^6 in all under
     * sanitizers); this is the case that once lost a root->top bit. */
    static stress x;
    stress_init(&x, 63, TEST_SANITIZED ? 250000 : 2500000);
    pthread_t th[4];
    mixed_arg a[4];
    for (uint32_t i = 0; i < 4; i++) {
        a[i] = (mixed_arg){&x, i};
        pthread_create(&th[i], NULL, mixed, &a[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    uint32_t cursor = 0;
    long r, drained = 0;
    while ((r = take_round(&x, &cursor)) >= 0)
        drained += r;
    stress_finish(&x, drained);
}

/* ---- stale upper bits (summary.c, "Stale upper bits") ----------------- */

#ifdef WEFT_DEBUG
/* The other side of each race, run from the hook in the race's window. */
static tree *sh_tree;
static int sh_step;

/* Drive finders over the tree, as idle workers do, until it shows
 * nothing (at most `rounds` looks); then every word must be zero. */
static void finders_clear(weft_summary *s, int rounds)
{
    uint32_t cursor = 0, l = 0;
    for (int i = 0;
         i < rounds && (l = weft__summary_find(s, &cursor)) != UINT32_MAX; i++)
        CHECK_EQ_U64(weft__summary_take(s, l), 0); /* nothing signalled */
    CHECK_EQ_U64(weft__summary_snapshot(s), 0);
    CHECK_EQ_INT(l, UINT32_MAX);
}

/* The late climb: a taker takes the new bit before its signaller climbs. */
static void late_climb_hook(int point)
{
    if (point == WEFT_SUMHOOK_CLIMB && sh_step++ == 0)
        CHECK_EQ_U64(weft__summary_take(&sh_tree->s, 0), UINT64_C(1) << 5);
}

TEST(unit, summary_stale_late_climb_cleared)
{
    tree t;
    tree_init(&t, 126);
    sh_tree = &t;
    sh_step = 0;
    weft__summary_hook = late_climb_hook;
    CHECK_EQ_INT(weft__summary_signal(&t.s, 5), 1);
    weft__summary_hook = NULL;
    CHECK_EQ_INT(sh_step, 1);
    /* The climb set root and top bits over the leaf the taker emptied. */
    CHECK_EQ_U64(ld(&t.s.leaf[0]), 0);
    finders_clear(&t.s, 4);
    tree_fini(&t);
}

/* The late restore: taker T1 (the test) empties leaf 0 and clears its
 * root bit; a signaller refills it (CLEARED); T1 sees it non-zero, and
 * before T1 restores the root bit, taker T2 empties the leaf and clears
 * the root and top bits (RESTORE); then T1 restores both. */
static void late_restore_hook(int point)
{
    if (point == WEFT_SUMHOOK_CLEARED && sh_step == 0) {
        sh_step = 1;
        CHECK_EQ_INT(weft__summary_signal(&sh_tree->s, 7), 1);
    } else if (point == WEFT_SUMHOOK_RESTORE && sh_step == 1) {
        sh_step = 2;
        CHECK_EQ_U64(weft__summary_take(&sh_tree->s, 0), UINT64_C(1) << 7);
    }
}

TEST(unit, summary_stale_late_restore_cleared)
{
    tree t;
    tree_init(&t, 126);
    sh_tree = &t;
    sh_step = 0;
    CHECK_EQ_INT(weft__summary_signal(&t.s, 3), 1);
    weft__summary_hook = late_restore_hook;
    CHECK_EQ_U64(weft__summary_take(&t.s, 0), UINT64_C(1) << 3);
    weft__summary_hook = NULL;
    CHECK_EQ_INT(sh_step, 2);
    CHECK_EQ_U64(ld(&t.s.leaf[0]), 0);
    finders_clear(&t.s, 4);
    tree_fini(&t);
}

/* A stale top bit over an empty root word, made by hand: find clears it
 * and reports nothing. A stale bit must never hide a live one: a leaf
 * signalled behind it is still found. */
TEST(unit, summary_stale_top_cleared_live_kept)
{
    tree t;
    tree_init(&t, 64 * 63 + 63); /* two root words */
    /* Root word 1 is empty under its top bit; leaf 2 is empty under its
     * root bit (root word 0, whose top bit is exact). */
    atomic_store(&t.s.top[0], UINT64_C(1) << 1 | 1);
    atomic_store(&t.s.root[0], UINT64_C(1) << 2);
    CHECK_EQ_INT(weft__summary_signal(&t.s, 3 * 63 + 1), 1); /* leaf 3 */
    uint32_t cursor = 0;
    CHECK_EQ_INT(weft__summary_find(&t.s, &cursor), 2);
    CHECK_EQ_U64(weft__summary_take(&t.s, 2), 0);
    CHECK_EQ_INT(weft__summary_find(&t.s, &cursor), 3);
    CHECK_EQ_U64(weft__summary_take(&t.s, 3), 2);
    finders_clear(&t.s, 4);
    tree_fini(&t);
}
#endif

/* ---- wake-ups of parked tasks from plain threads ---------------------- */

#define WAKE_TASKS 4

typedef struct {
    weft_rt *rt;
    weft_task h[WAKE_TASKS];
    _Atomic long posted[WAKE_TASKS], seen[WAKE_TASKS];
    _Atomic int started;
    long rounds;
} wakeup;

typedef struct {
    wakeup *x;
    int i;
} wake_arg;

/* A task that parks until its plain thread posts, `rounds` times. */
static void *parker(void *p)
{
    wake_arg *a = p;
    wakeup *x = a->x;
    atomic_fetch_add(&x->started, 1);
    for (long r = 1; r <= x->rounds; r++) {
        while (atomic_load_explicit(&x->posted[a->i], memory_order_acquire) < r)
            weft__task_park();
        atomic_store_explicit(&x->seen[a->i], r, memory_order_release);
    }
    return NULL;
}

/* The plain thread: post, unpark, wait until the task saw it. */
static void *waker(void *p)
{
    wake_arg *a = p;
    wakeup *x = a->x;
    weft_task h = x->h[a->i];
    for (long r = 1; r <= x->rounds; r++) {
        atomic_store_explicit(&x->posted[a->i], r, memory_order_release);
        weft__task_unpark(x->rt, weft__handle_slot(h), weft__handle_gen(h));
        while (atomic_load_explicit(&x->seen[a->i], memory_order_acquire) < r)
            sched_yield();
    }
    return NULL;
}

TEST_T(unit, summary_wake_from_plain_threads, 300)
{
    /* 4 tasks x 250,000 rounds = 10^6 wake-ups from 4 plain threads (10^5
     * under sanitizers). A lost wake-up hangs the test (timeout); every
     * round is seen exactly once, in order. */
    wakeup x = {.rounds = TEST_SANITIZED ? 25000 : 250000};
    x.rt = test_rt(64);
    wake_arg args[WAKE_TASKS];
    for (int i = 0; i < WAKE_TASKS; i++) {
        args[i] = (wake_arg){&x, i};
        CHECK_OK(weft_spawn(x.rt, &x.h[i], parker, &args[i], NULL));
    }
    pthread_t th[WAKE_TASKS];
    for (int i = 0; i < WAKE_TASKS; i++)
        pthread_create(&th[i], NULL, waker, &args[i]);
    for (int i = 0; i < WAKE_TASKS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < WAKE_TASKS; i++) {
        CHECK_OK(weft_join(x.h[i], NULL));
        CHECK_EQ_INT(atomic_load(&x.seen[i]), x.rounds);
    }
    weft_stats st = test_stats(x.rt);
    /* Each round parks at most once more than it is woken. */
    CHECK_CMP_U64(st.parks, <=, 2 * WAKE_TASKS * (uint64_t)x.rounds + 8);
    test_rt_destroy_clean(x.rt);
}

/* ---- the reservation map under batches (sched/slots.c) ---------------- */

/* Threads reserve single slots and batches of up to 8 from rotating hint
 * leaves, hold them a moment and give them back singly or as a batch, on
 * four leaves. Afterwards every slot must be free and reservable: the
 * avail bits never claim a leaf with room is full (a leaf lost from
 * avail is invisible to every reserver whose hint is elsewhere). */
typedef struct {
    tree *t;
    uint32_t id;
    long rounds;
} batch_arg;

static void *batcher(void *p)
{
    batch_arg *a = p;
    weft_summary *s = &a->t->s;
    uint32_t rng = a->id * 2654435761u + 1;
    for (long i = 0; i < a->rounds; i++) {
        rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
        uint32_t hint = rng % s->leaf_count;
        unsigned n = 1 + (rng >> 8) % 8;
        uint64_t got = weft__summary_reserve_batch(s, &hint, n);
        if (!got)
            continue;
        CHECK_CMP_INT(__builtin_popcountll(got), <=, (int)n);
        for (int k = 0; k < (int)(rng >> 16) % 8; k++)
            weft_cpu_relax();
        if (rng & (1u << 24)) {
            weft__summary_release_batch(s, hint, got);
        } else {
            while (got) {
                weft__summary_release(s, hint * WEFT_LEAF_SLOTS +
                                             (uint32_t)__builtin_ctzll(got));
                got &= got - 1;
            }
        }
    }
    return NULL;
}

TEST_T(unit, summary_batches_never_hide_a_leaf, 120)
{
    tree t;
    uint32_t n = 4 * WEFT_LEAF_SLOTS;
    tree_init(&t, n);
    pthread_t th[8];
    batch_arg a[8];
    for (uint32_t i = 0; i < 8; i++) {
        a[i] = (batch_arg){&t, i, TEST_SANITIZED ? 200000 : 2000000};
        pthread_create(&th[i], NULL, batcher, &a[i]);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    for (uint32_t l = 0; l < t.s.leaf_count; l++) {
        CHECK_EQ_U64(ld(&t.s.resv[l]), WEFT_LEAF_YIELD);
        CHECK(ld(&t.s.avail[0]) & (UINT64_C(1) << l));
    }
    uint32_t hint = 0;
    for (uint32_t i = 0; i < n; i++)
        CHECK_CMP_INT(weft__summary_reserve(&t.s, &hint), >=, 0);
    CHECK_EQ_INT(weft__summary_reserve(&t.s, &hint), -EAGAIN);
    tree_fini(&t);
}
