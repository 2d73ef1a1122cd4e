/*
 * test_fork_join.c - weft_fork_join as weft.h describes it: both results,
 * fa on the caller, fb taken back and run as a plain call when nobody took
 * it, or run as a task of its own when a thief or the worker's run loop
 * took it (fa yielding, spinning, parking, moving to another worker), run
 * by the caller when no task can be made (max_tasks), the caller shown
 * waiting in "join" meanwhile, an inline fb preempted like its caller,
 * and the plain-thread and error cases.
 */
#include <stdatomic.h>

#include "check.h"
#include "preempt_util.h"

static void *plus_one(void *arg)
{
    return (void *)((uintptr_t)arg + 1);
}

static void *times_two(void *arg)
{
    return (void *)((uintptr_t)arg * 2);
}

/* ---- results, errors, plain threads ------------------------------------- */

static void *results_main(void *arg)
{
    (void)arg;
    for (uintptr_t i = 0; i < 1000; i++) {
        void *ra = NULL, *rb = NULL;
        CHECK_OK(weft_fork_join(plus_one, (void *)i, times_two, (void *)i, &ra,
                                &rb));
        CHECK_EQ_PTR(ra, (void *)(i + 1));
        CHECK_EQ_PTR(rb, (void *)(i * 2));
    }
    CHECK_OK(weft_fork_join(plus_one, NULL, times_two, NULL, NULL, NULL));
    CHECK_ERR(weft_fork_join(NULL, NULL, times_two, NULL, NULL, NULL), -EINVAL);
    CHECK_ERR(weft_fork_join(plus_one, NULL, NULL, NULL, NULL, NULL), -EINVAL);
    return NULL;
}

TEST(api, fork_join_results_and_errors)
{
    weft_rt *rt = test_rt(256);
    weft_stats s0 = test_stats(rt);
    test_run(rt, results_main, NULL);
    weft_stats s1 = test_stats(rt);
    CHECK_EQ_U64(s1.forks - s0.forks, 1001);
    test_rt_destroy_clean(rt);
}

static _Atomic int order[2], order_n;

static void *note_a(void *arg)
{
    order[atomic_fetch_add(&order_n, 1)] = 'a';
    return arg;
}

static void *note_b(void *arg)
{
    order[atomic_fetch_add(&order_n, 1)] = 'b';
    return arg;
}

TEST(api, fork_join_on_a_plain_thread_runs_fa_then_fb)
{
    void *ra = NULL, *rb = NULL;
    CHECK_OK(weft_fork_join(note_a, (void *)1, note_b, (void *)2, &ra, &rb));
    CHECK_EQ_PTR(ra, (void *)1);
    CHECK_EQ_PTR(rb, (void *)2);
    CHECK_EQ_INT(order_n, 2);
    CHECK_EQ_INT(order[0], 'a');
    CHECK_EQ_INT(order[1], 'b');
}

/* ---- a fork-join tree ---------------------------------------------------- */

typedef struct fib_arg {
    int n;
    uint64_t r;
} fib_arg;

static void *fib(void *arg)
{
    fib_arg *a = arg;
    if (a->n < 2) {
        a->r = (uint64_t)a->n;
        return arg;
    }
    fib_arg x = {a->n - 1, 0}, y = {a->n - 2, 0};
    void *ra, *rb;
    CHECK_OK(weft_fork_join(fib, &y, fib, &x, &ra, &rb));
    CHECK_EQ_PTR(ra, &y);
    CHECK_EQ_PTR(rb, &x);
    a->r = x.r + y.r;
    return arg;
}

static void fib_tree(unsigned workers)
{
    weft_rt *rt = test_rt_workers(1u << 12, workers);
    fib_arg a = {TEST_SANITIZED ? 20 : 25, 0};
    weft_stats s0 = test_stats(rt);
    test_run(rt, fib, &a);
    weft_stats s1 = test_stats(rt);
    uint64_t x = 0, y = 1;
    for (int i = 0; i < a.n; i++) {
        uint64_t z = x + y;
        x = y;
        y = z;
    }
    CHECK_EQ_U64(a.r, x);
    /* Every call with n >= 2 forks once: fib(n + 1) - 1 of them. */
    CHECK_EQ_U64(s1.forks - s0.forks, y - 1); /* y = fib(n + 1) */
    /* Each fb that ran as a task was spawned as one (plus the main). */
    CHECK_EQ_U64(s1.spawns - s0.spawns, s1.forks_stolen - s0.forks_stolen + 1);
    test_rt_destroy_clean(rt);
}

TEST(api, fork_join_tree_one_worker)
{
    fib_tree(1);
}

TEST(api, fork_join_tree_two_workers)
{
    fib_tree(2);
}

TEST(api, fork_join_tree_four_workers)
{
    fib_tree(4);
}

/* ---- fb taken by someone else ------------------------------------------ */

typedef struct took {
    _Atomic int ran;
    _Atomic(weft_task) fb_self;
} took;

static void *fb_mark(void *arg)
{
    took *t = arg;
    atomic_store(&t->fb_self, weft_self());
    atomic_store(&t->ran, 1);
    return (void *)7;
}

/* fa yields until fb has run: on one worker, the run loop must take fb
 * from the deque and run it as a task (else this never returns). */
static void *fa_yield_until(void *arg)
{
    took *t = arg;
    while (!atomic_load(&t->ran))
        weft_yield();
    return (void *)3;
}

/* fa spins, without a call into weft, until fb has run or 10 s passed:
 * another worker must steal fb (or the monitor preempt the spin). */
static void *fa_spin_until(void *arg)
{
    took *t = arg;
    uint64_t t0 = weft_now_ns();
    while (!atomic_load(&t->ran) && weft_now_ns() - t0 < 10000000000ull)
        ;
    return (void *)3;
}

static void *taken_main(void *arg)
{
    weft_fn fa = (weft_fn)arg;
    took t = {0};
    void *ra = NULL, *rb = NULL;
    CHECK_OK(weft_fork_join(fa, &t, fb_mark, &t, &ra, &rb));
    CHECK_EQ_INT(atomic_load(&t.ran), 1);
    CHECK_EQ_PTR(ra, (void *)3);
    CHECK_EQ_PTR(rb, (void *)7);
    weft_task fb_self = atomic_load(&t.fb_self);
    CHECK(fb_self.id != 0 && fb_self.id != weft_self().id); /* a task */
    return NULL;
}

static void taken(unsigned workers, weft_fn fa)
{
    weft_rt *rt = test_rt_workers(64, workers);
    weft_stats s0 = test_stats(rt);
    test_run(rt, taken_main, (void *)fa);
    weft_stats s1 = test_stats(rt);
    CHECK_EQ_U64(s1.forks_stolen - s0.forks_stolen, 1);
    test_rt_destroy_clean(rt);
}

TEST(api, fork_join_fb_taken_by_the_run_loop_while_fa_yields)
{
    taken(1, fa_yield_until);
}

TEST(api, fork_join_fb_stolen_while_fa_spins)
{
    taken(2, fa_spin_until);
}

/* fa parks (a sleep) several times, so the caller may come back on
 * another worker: whoever takes fb runs it; the caller finds it gone and
 * waits. Results hold either way. */
static void *fa_sleepy(void *arg)
{
    for (int i = 0; i < 3; i++)
        weft_sleep_ns(200000);
    return arg;
}

static void *sleepy_main(void *arg)
{
    (void)arg;
    for (uintptr_t i = 0; i < 50; i++) {
        void *ra = NULL, *rb = NULL;
        CHECK_OK(weft_fork_join(fa_sleepy, (void *)i, plus_one, (void *)i, &ra,
                                &rb));
        CHECK_EQ_PTR(ra, (void *)i);
        CHECK_EQ_PTR(rb, (void *)(i + 1));
    }
    return NULL;
}

TEST(api, fork_join_fa_parks_and_moves)
{
    weft_rt *rt = test_rt_workers(64, 2);
    weft_stats s0 = test_stats(rt);
    test_run(rt, sleepy_main, NULL);
    weft_stats s1 = test_stats(rt);
    /* While fa sleeps its worker is idle: fb was taken each time. */
    CHECK_EQ_U64(s1.forks_stolen - s0.forks_stolen, 50);
    test_rt_destroy_clean(rt);
}

/* ---- no task can be made: the caller runs fb ----------------------------- */

static _Atomic int hold_release;

static void *holder(void *arg)
{
    (void)arg;
    while (!atomic_load(&hold_release))
        weft_yield();
    return NULL;
}

static void *fa_yield_some(void *arg)
{
    for (int i = 0; i < 20; i++)
        weft_yield();
    return arg;
}

static void *full_main(void *arg)
{
    (void)arg;
    weft_task h[7];
    for (int i = 0; i < 7; i++) /* with the main: all 8 slots live */
        CHECK_OK(weft_spawn(NULL, &h[i], holder, NULL, NULL));
    weft_task extra;
    CHECK_ERR(weft_spawn(NULL, &extra, holder, NULL, NULL), -EAGAIN);
    took t = {0};
    void *ra = NULL, *rb = NULL;
    CHECK_OK(weft_fork_join(fa_yield_some, (void *)5, fb_mark, &t, &ra, &rb));
    CHECK_EQ_PTR(ra, (void *)5);
    CHECK_EQ_PTR(rb, (void *)7);
    /* It ran on the caller, after fa. */
    CHECK_EQ_U64(atomic_load(&t.fb_self).id, weft_self().id);
    atomic_store(&hold_release, 1);
    for (int i = 0; i < 7; i++)
        CHECK_OK(weft_join(h[i], NULL));
    return NULL;
}

TEST(api, fork_join_with_no_slot_left_runs_fb_on_the_caller)
{
    weft_rt *rt = test_rt_workers(8, 1);
    test_run(rt, full_main, NULL);
    weft_stats s = test_stats(rt);
    CHECK_EQ_U64(s.forks, 1);
    CHECK_EQ_U64(s.forks_stolen, 0);
    test_rt_destroy_clean(rt);
}

/* ---- observed while it waits ------------------------------------------- */

typedef struct gated {
    weft_event go;
    _Atomic int started;
} gated;

static void *fb_gated(void *arg)
{
    gated *g = arg;
    atomic_store(&g->started, 1);
    CHECK_OK(weft_event_wait(&g->go));
    return (void *)9;
}

static void *fa_until_started(void *arg)
{
    gated *g = arg;
    while (!atomic_load(&g->started))
        weft_yield();
    return NULL;
}

static void *gated_main(void *arg)
{
    gated *g = arg;
    void *rb = NULL;
    CHECK_OK(weft_fork_join(fa_until_started, g, fb_gated, g, NULL, &rb));
    CHECK_EQ_PTR(rb, (void *)9);
    return NULL;
}

TEST(api, fork_join_waiting_caller_shows_join)
{
    weft_rt *rt = test_rt_workers(64, 2);
    gated g = {0};
    CHECK_OK(weft_event_init(&g.go));
    weft_task m;
    CHECK_OK(weft_spawn(rt, &m, gated_main, &g, NULL));
    CHECK_EQ_INT(test_wait_parked(m, "join"), 0);
    CHECK_OK(weft_event_set(&g.go));
    CHECK_OK(weft_join(m, NULL));
    CHECK_OK(weft_event_destroy(&g.go));
    test_rt_destroy_clean(rt);
}

/* ---- an inline fb is preempted like its caller --------------------------- */

static _Atomic int spin_stop;

static void *fb_spin(void *arg)
{
    (void)arg;
    uint64_t t0 = weft_now_ns();
    while (!atomic_load_explicit(&spin_stop, memory_order_relaxed) &&
           weft_now_ns() - t0 < 10000000000ull)
        ;
    atomic_store(&((took *)arg)->fb_self, weft_self());
    return NULL;
}

static void *stopper(void *arg)
{
    (void)arg;
    atomic_store(&spin_stop, 1);
    return NULL;
}

static void *nothing(void *arg)
{
    return arg;
}

static void *preempt_main(void *arg)
{
    (void)arg;
    weft_task s;
    took t = {0};
    /* The stopper waits in the LIFO slot; only a preemption of the
     * spinning fb, which runs on this task, lets it run. */
    CHECK_OK(weft_spawn(NULL, &s, stopper, NULL, NULL));
    CHECK_OK(weft_fork_join(nothing, NULL, fb_spin, &t, NULL, NULL));
    CHECK_EQ_INT(atomic_load(&spin_stop), 1);
    CHECK_EQ_U64(atomic_load(&t.fb_self).id, weft_self().id);
    CHECK_OK(weft_join(s, NULL));
    return NULL;
}

TEST(api, fork_join_inline_fb_is_preempted)
{
    skip_tsan();
    weft_rt *rt = rt1();
    static const weft_spawn_attr pre = {WEFT_PRIO_NORMAL, WEFT_STACK_DEFAULT,
                                        WEFT_PREEMPTIBLE, "forker"};
    weft_task m;
    CHECK_OK(weft_spawn(rt, &m, preempt_main, NULL, &pre));
    CHECK_OK(weft_join(m, NULL));
    weft_stats s = test_stats(rt);
    CHECK_CMP_U64(s.preemptions, >=, 1);
    test_rt_destroy_clean(rt);
}

/* ---- fa joins a child whose join looks at the deque ---------------------- */

/* The child parks first, so the join in fa finds it in no queue: the
 * inline join takes the deque's bottom entry, the fork record (the last
 * entry: the take moves top), and must put it back as a record. Whoever
 * takes it then (the run loop, or the other worker) runs fb, which lets
 * the child end. */
typedef struct older {
    weft_event go;
    _Atomic int started;
    weft_task child;
} older;

static void *child_waits(void *arg)
{
    older *o = arg;
    atomic_store(&o->started, 1);
    CHECK_OK(weft_event_wait(&o->go));
    return (void *)4;
}

static void *fa_join_child(void *arg)
{
    older *o = arg;
    void *r = NULL;
    CHECK_OK(weft_join(o->child, &r));
    return r;
}

static void *fb_release(void *arg)
{
    older *o = arg;
    CHECK_OK(weft_event_set(&o->go));
    return (void *)5;
}

static void *older_main(void *arg)
{
    (void)arg;
    for (int round = 0; round < 200; round++) {
        older o = {0};
        CHECK_OK(weft_event_init(&o.go));
        CHECK_OK(weft_spawn(NULL, &o.child, child_waits, &o, NULL));
        while (!atomic_load(&o.started))
            weft_yield();
        void *ra = NULL, *rb = NULL;
        CHECK_OK(weft_fork_join(fa_join_child, &o, fb_release, &o, &ra, &rb));
        CHECK_EQ_PTR(ra, (void *)4);
        CHECK_EQ_PTR(rb, (void *)5);
        CHECK_OK(weft_event_destroy(&o.go));
    }
    return NULL;
}

TEST(api, fork_join_fa_joins_a_parked_child_one_worker)
{
    weft_rt *rt = test_rt_workers(64, 1);
    test_run(rt, older_main, NULL);
    test_rt_destroy_clean(rt);
}

TEST(api, fork_join_fa_joins_a_parked_child_two_workers)
{
    weft_rt *rt = test_rt_workers(64, 2);
    test_run(rt, older_main, NULL);
    test_rt_destroy_clean(rt);
}

/* ---- weft_fork_n ----------------------------------------------------------- */

static _Atomic uint8_t fn_ran[100000];

static void *fn_mark(void *arg)
{
    uintptr_t i = (uintptr_t)arg;
    if (atomic_fetch_add(&fn_ran[i], 1))
        CHECK(!"a call ran twice");
    return (void *)(i * 3);
}

static void fork_n_check(size_t n)
{
    static void *args[100000], *res[100000];
    for (size_t i = 0; i < n; i++) {
        args[i] = (void *)(uintptr_t)i;
        res[i] = NULL;
        atomic_store(&fn_ran[i], 0);
    }
    CHECK_OK(weft_fork_n(n, fn_mark, args, res));
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ_INT(atomic_load(&fn_ran[i]), 1);
        CHECK_EQ_PTR(res[i], (void *)(uintptr_t)(i * 3));
    }
}

static void *fork_n_main(void *arg)
{
    (void)arg;
    size_t sizes[] = {1, 2, 3, 10, 1000, 100000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        fork_n_check(sizes[k]);
    CHECK_OK(weft_fork_n(0, fn_mark, NULL, NULL));
    void *one[1] = {(void *)(uintptr_t)5};
    atomic_store(&fn_ran[5], 0);
    CHECK_OK(weft_fork_n(1, fn_mark, one, NULL)); /* results NULL */
    CHECK_EQ_INT(atomic_load(&fn_ran[5]), 1);
    CHECK_ERR(weft_fork_n(3, NULL, one, NULL), -EINVAL);
    CHECK_ERR(weft_fork_n(3, fn_mark, NULL, NULL), -EINVAL);
    return NULL;
}

TEST(api, fork_n_runs_each_call_once)
{
    weft_rt *rt = test_rt_workers(1u << 12, 2);
    weft_stats s0 = test_stats(rt);
    test_run(rt, fork_n_main, NULL);
    weft_stats s1 = test_stats(rt);
    /* n calls take n - 1 forks. */
    CHECK_EQ_U64(s1.forks - s0.forks,
                 0 + 1 + 2 + 9 + 999 + 99999 + 0 /* n = 1 at the end */);
    test_rt_destroy_clean(rt);
}

TEST(api, fork_n_on_a_plain_thread)
{
    fork_n_check(1000);
}

/* ---- a stolen fb's task is gone when the call returns ------------------- */

/* fb's task is reaped before weft_fork_join returns: weft_stats.live no
 * longer counts it, max_tasks has its slot back, and weft_rt_destroy
 * right after the last join does not find it live (it said -EBUSY in
 * the gap, found by a program written from weft.h). */
static _Atomic int fb_started;

static void *fb_start(void *arg)
{
    atomic_store(&fb_started, 1);
    return arg;
}

static void *fa_until_fb_started(void *arg)
{
    uint64_t t0 = weft_now_ns();
    while (!atomic_load(&fb_started) && weft_now_ns() - t0 < 10000000000ull)
        ;
    return arg;
}

static void *gone_main(void *arg)
{
    weft_rt *rt = arg;
    int rounds = TEST_SANITIZED ? 300 : 3000;
    for (int i = 0; i < rounds; i++) {
        atomic_store(&fb_started, 0);
        CHECK_OK(weft_fork_join(fa_until_fb_started, NULL, fb_start, NULL, NULL,
                                NULL));
        weft_stats s;
        CHECK_OK(weft_stats_get(rt, &s));
        CHECK_EQ_U64(s.live, 1); /* this task alone */
    }
    return NULL;
}

TEST(api, fork_join_stolen_fb_task_is_reaped_when_it_returns)
{
    weft_rt *rt = test_rt_workers(64, 2);
    weft_stats s0 = test_stats(rt);
    test_run(rt, gone_main, rt);
    weft_stats s1 = test_stats(rt);
    CHECK_CMP_U64(s1.forks_stolen - s0.forks_stolen, >, 0);
    test_rt_destroy_clean(rt);
}
