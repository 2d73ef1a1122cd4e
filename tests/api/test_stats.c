/*
 * test_stats.c - weft_stats_get: spawns, finishes and live relate as
 * documented (live = spawned and not reaped; finished tasks stay live
 * until joined), and yields count only yields that switched.
 */
#include <stdatomic.h>

#include "check.h"
#include "internal.h"

static _Atomic int ran;

static void *run_once(void *arg)
{
    atomic_fetch_add(&ran, 1);
    return arg;
}

enum { N = 10 };

static void *spawn_finish_live(void *arg)
{
    weft_rt *rt = arg;
    weft_stats s0 = test_stats(rt);
    CHECK_EQ_U64(s0.spawns, 1); /* this task */
    CHECK_EQ_U64(s0.finishes, 0);
    CHECK_EQ_U64(s0.live, 1);
    weft_task t[N];
    for (uintptr_t i = 0; i < N; i++)
        CHECK_OK(weft_spawn(NULL, &t[i], run_once, (void *)i, NULL));
    weft_stats s1 = test_stats(rt);
    CHECK_EQ_U64(s1.spawns, N + 1);
    CHECK_EQ_U64(s1.live, N + 1);
    /* Let them all run and end; they stay live until joined. */
    uint64_t end = test_now_ms() + 10000;
    while (test_stats(rt).finishes < N && test_now_ms() < end)
        weft_yield();
    weft_stats s2 = test_stats(rt);
    CHECK_EQ_INT(atomic_load(&ran), N);
    CHECK_EQ_U64(s2.finishes, N);
    CHECK_EQ_U64(s2.live, N + 1);
    CHECK_EQ_U64(s2.spawns, s2.finishes + 1); /* + this task */
    for (int i = 0; i < N; i++) {
        CHECK_OK(weft_join(t[i], NULL));
        CHECK_EQ_U64(test_stats(rt).live, N - i);
    }
    return NULL;
}

TEST(api, stats_spawns_finishes_live)
{
    weft_rt *rt = test_rt(64);
    weft_stats s = test_stats(rt);
    CHECK_EQ_U64(s.spawns, 0);
    CHECK_EQ_U64(s.finishes, 0);
    CHECK_EQ_U64(s.live, 0);
    test_run(rt, spawn_finish_live, rt);
    s = test_stats(rt);
    CHECK_EQ_U64(s.spawns, N + 1);
    CHECK_EQ_U64(s.finishes, N + 1);
    CHECK_EQ_U64(s.live, 0);
    CHECK_CMP_U64(s.switches, >=, N + 1); /* each task was switched in */
    test_rt_destroy_clean(rt);
}

enum { K = 1000 };

static void *yield_k(void *arg)
{
    (void)arg;
    for (int i = 0; i < K; i++)
        weft_yield();
    return NULL;
}

static void *ping_pong(void *arg)
{
    weft_rt *rt = arg;
    weft_stats before = test_stats(rt);
    weft_task t;
    CHECK_OK(weft_spawn(NULL, &t, yield_k, NULL, NULL));
    yield_k(NULL);
    CHECK_OK(weft_join(t, NULL));
    weft_stats after = test_stats(rt);
    uint64_t y = after.yields - before.yields;
    /* Both tasks yield K times; while both are alive each yield switches
     * to the other. */
    CHECK_CMP_U64(y, >=, 2 * K - 2);
    CHECK_CMP_U64(y, <=, 2 * K);
    CHECK_CMP_U64(after.switches - before.switches, >=, y);
    return NULL;
}

TEST(api, stats_yields_counted)
{
    /* One worker: each yield switches to the other task only while both
     * share it (on two, the idle worker may steal the child). */
    weft_rt *rt = test_rt_workers(64, 1);
    test_run(rt, ping_pong, rt);
    test_rt_destroy_clean(rt);
}

static void *lone_yield(void *arg)
{
    weft_rt *rt = arg;
    weft_stats before = test_stats(rt);
    for (int i = 0; i < 100; i++)
        weft_yield();
    weft_stats after = test_stats(rt);
    /* Nothing else was ready: no yield switched. */
    CHECK_EQ_U64(after.yields, before.yields);
    CHECK_EQ_U64(after.switches, before.switches);
    return NULL;
}

TEST(api, stats_lone_yield_not_counted)
{
    weft_rt *rt = test_rt(64);
    test_run(rt, lone_yield, rt);
    test_rt_destroy_clean(rt);
}

TEST(api, stats_bad_arguments)
{
    weft_rt *rt = test_rt(64);
    CHECK_ERR(weft_stats_get(rt, NULL), -EINVAL);
    weft_stats st;
    CHECK_ERR(weft_stats_get(NULL, &st), -EINVAL);
    test_rt_destroy_clean(rt);
}

static void *nothing(void *arg)
{
    return arg;
}

TEST(api, stats_guard_pages_counted)
{
    weft_config c;
    weft_config_default(&c);
    c.max_tasks = 64;
    c.guard_pages = 1;
    weft_rt *rt = test_rt_cfg(&c);
    test_run(rt, nothing, NULL);
    weft_stats st = test_stats(rt);
    CHECK_CMP_U64(st.guard_budget, >, 0);
    CHECK_EQ_U64(st.guarded_stacks, 1);
    CHECK_EQ_U64(st.canary_stacks, 0);
    CHECK_CMP_U64(st.stacks_resident, >=, 1);
    test_rt_destroy_clean(rt);
}

/* The guard budget is the process's: a runtime's guard pages go back to it
 * when the runtime is destroyed, so a later runtime gets them again. */
TEST(api, stats_guard_budget_returned_at_destroy)
{
    /* The budget is spent by PROT_NONE guards only: force them, as on a
     * kernel without MADV_GUARD_INSTALL (stats_light_guards_no_budget). */
    weft__stack_light_guards(0);
    weft_config c;
    weft_config_default(&c);
    c.max_tasks = 64;
    c.guard_pages = 1;
    weft_rt *rt = test_rt_cfg(&c);
    uint64_t b0 = test_stats(rt).guard_budget;
    test_run(rt, nothing, NULL);
    weft_stats st = test_stats(rt);
    CHECK_EQ_U64(st.guarded_stacks, 1);
    CHECK_EQ_U64(st.guard_budget, b0 - 1);
    test_rt_destroy_clean(rt);
    rt = test_rt_cfg(&c);
    CHECK_EQ_U64(test_stats(rt).guard_budget, b0);
    test_run(rt, nothing, NULL);
    CHECK_EQ_U64(test_stats(rt).guarded_stacks, 1);
    test_rt_destroy_clean(rt);
}

/* Lightweight guards (Linux 6.13+) cost no mapping: every stack of both
 * classes gets one and the budget is untouched. */
static void *small_nothing(void *arg)
{
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.stack = WEFT_STACK_SMALL;
    weft_task t;
    CHECK_OK(weft_spawn(NULL, &t, nothing, arg, &a));
    CHECK_OK(weft_join(t, NULL));
    return NULL;
}

TEST(api, stats_light_guards_no_budget)
{
    weft_config c;
    weft_config_default(&c);
    c.max_tasks = 64;
    c.guard_pages = 1;
    weft_rt *rt = test_rt_cfg(&c);
    uint64_t b0 = test_stats(rt).guard_budget;
    test_run(rt, small_nothing, NULL);
    weft_stats st = test_stats(rt);
    if (st.guard_kind != WEFT_GUARD_LIGHT) {
        test_rt_destroy_clean(rt);
        TEST_SKIP("kernel has no MADV_GUARD_INSTALL (Linux < 6.13)");
    }
    CHECK_EQ_U64(st.guarded_stacks, 2); /* main's default, one small */
    CHECK_EQ_U64(st.canary_only, 0);
    CHECK_EQ_U64(st.canary_stacks, 0);
    CHECK_EQ_U64(st.guard_budget, b0);
    test_rt_destroy_clean(rt);
}

/* weft_rt_create says when stacks will have canaries only. */
TEST(api, create_warns_of_canary_only_stacks)
{
    weft_config c;
    weft_config_default(&c);
    c.max_tasks = 64;
    c.guard_pages = 0;
    weft_rt *rt = test_rt_cfg(&c);
    CHECK_STR_CONTAINS(weft_last_error(), "canary only");
    test_rt_destroy_clean(rt);
    c.guard_pages = 1;
#ifndef WEFT_SWITCH_UCONTEXT /* no small class under 4 KiB there */
    c.small_stack_size = 2048;
    rt = test_rt_cfg(&c);
    CHECK_STR_CONTAINS(weft_last_error(), "small stacks have a canary only");
    test_rt_destroy_clean(rt);
#endif
    c.small_stack_size = 16 << 10;
    rt = test_rt_cfg(&c);
    if (test_stats(rt).guard_kind == WEFT_GUARD_LIGHT)
        CHECK_EQ_INT(weft_last_error()[0], '\0'); /* all guarded */
    test_rt_destroy_clean(rt);
}
