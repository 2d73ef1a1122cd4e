/*
 * test_spawn.c - weft_spawn, weft_join and weft_detach: results, handle
 * validation, every documented error, and capacity (max_tasks).
 *
 * Tasks that must stay alive while the test pokes at them wait on a flag
 * with weft_yield (hold_until_released), so nothing depends on timing.
 */
#include <stdatomic.h>
#include <unistd.h>

#include "check.h"

static _Atomic int release_flag;

/* Yield until release_flag is set; returns arg. */
static void *hold_until_released(void *arg)
{
    while (!atomic_load(&release_flag))
        weft_yield();
    return arg;
}

static void *plus_one(void *arg)
{
    return (void *)((uintptr_t)arg + 1);
}

static void *nothing(void *arg)
{
    (void)arg;
    return NULL;
}

/* ---- results ------------------------------------------------------------ */

static void *spawn_join_main(void *arg)
{
    (void)arg;
    uintptr_t sum = 0;
    for (uintptr_t i = 0; i < 100; i++) {
        weft_task t;
        void *r = NULL;
        CHECK_OK(weft_spawn(NULL, &t, plus_one, (void *)i, NULL));
        CHECK_NE_INT(t.id, 0);
        CHECK_OK(weft_join(t, &r));
        CHECK_EQ_PTR(r, (void *)(i + 1));
        sum += (uintptr_t)r;
    }
    return (void *)sum;
}

TEST(api, spawn_join_result)
{
    weft_rt *rt = test_rt(4096);
    CHECK_EQ_PTR(test_run(rt, spawn_join_main, NULL), (void *)5050);
    test_rt_destroy_clean(rt);
}

static void *spawn_many_then_join(void *arg)
{
    (void)arg;
    enum { N = 500 };
    weft_task t[N];
    for (uintptr_t i = 0; i < N; i++)
        CHECK_OK(weft_spawn(NULL, &t[i], plus_one, (void *)(i * 3), NULL));
    for (uintptr_t i = 0; i < N; i++) {
        void *r;
        CHECK_OK(weft_join(t[i], &r));
        CHECK_EQ_PTR(r, (void *)(i * 3 + 1));
    }
    return NULL;
}

TEST(api, spawn_batch_then_join_each_result)
{
    weft_rt *rt = test_rt(4096);
    test_run(rt, spawn_many_then_join, NULL);
    test_rt_destroy_clean(rt);
}

static void *join_null_result(void *arg)
{
    (void)arg;
    weft_task t;
    CHECK_OK(weft_spawn(NULL, &t, plus_one, NULL, NULL));
    CHECK_OK(weft_join(t, NULL));
    return NULL;
}

TEST(api, join_result_may_be_null)
{
    weft_rt *rt = test_rt(64);
    test_run(rt, join_null_result, NULL);
    test_rt_destroy_clean(rt);
}

TEST(api, spawn_join_from_plain_thread)
{
    weft_rt *rt = test_rt(64);
    weft_task t;
    void *r;
    CHECK_OK(weft_spawn(rt, &t, plus_one, (void *)7, NULL));
    CHECK_OK(weft_join(t, &r));
    CHECK_EQ_PTR(r, (void *)8);
    test_rt_destroy_clean(rt);
}

/* ---- handles ------------------------------------------------------------ */

static void *join_twice(void *arg)
{
    (void)arg;
    weft_task t;
    CHECK_OK(weft_spawn(NULL, &t, plus_one, NULL, NULL));
    CHECK_OK(weft_join(t, NULL));
    CHECK_ERR(weft_join(t, NULL), -ESRCH);
    CHECK_ERR(weft_detach(t), -ESRCH);
    /* The slot is reused by the next spawn; the old handle stays stale. */
    weft_task u;
    CHECK_OK(weft_spawn(NULL, &u, hold_until_released, NULL, NULL));
    CHECK_NE_INT(u.id, t.id);
    CHECK_ERR(weft_join(t, NULL), -ESRCH);
    CHECK_ERR(weft_detach(t), -ESRCH);
    atomic_store(&release_flag, 1);
    CHECK_OK(weft_join(u, NULL));
    return NULL;
}

TEST(api, join_stale_handle)
{
    weft_rt *rt = test_rt(64);
    test_run(rt, join_twice, NULL);
    test_rt_destroy_clean(rt);
}

TEST(api, join_null_handle)
{
    CHECK_ERR(weft_join(WEFT_TASK_NULL, NULL), -ESRCH);
    CHECK_ERR(weft_detach(WEFT_TASK_NULL), -ESRCH);
    weft_rt *rt = test_rt(64);
    CHECK_ERR(weft_join(WEFT_TASK_NULL, NULL), -ESRCH);
    CHECK_ERR(weft_detach(WEFT_TASK_NULL), -ESRCH);
    test_rt_destroy_clean(rt);
}

TEST(api, join_garbage_handles)
{
    weft_rt *rt = test_rt(64);
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, plus_one, NULL, NULL));
    /* The same handle with every single bit flipped is never valid (it
     * names another runtime, another slot, or another generation). */
    for (int b = 0; b < 64; b++) {
        weft_task bad = {t.id ^ (UINT64_C(1) << b)};
        CHECK_ERR(weft_join(bad, NULL), -ESRCH);
        CHECK_ERR(weft_detach(bad), -ESRCH);
    }
    weft_task ones = {~UINT64_C(0)};
    CHECK_ERR(weft_join(ones, NULL), -ESRCH);
    CHECK_OK(weft_join(t, NULL));
    test_rt_destroy_clean(rt);
}

/* A finished, unjoined task's handle once its runtime is gone (destroy
 * after shutdown abandons it). */
static weft_task finished_orphan(void)
{
    weft_rt *rt = test_rt(64);
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, plus_one, NULL, NULL));
    uint64_t end = test_now_ms() + 10000;
    while (test_stats(rt).finishes < 1 && test_now_ms() < end)
        usleep(100);
    CHECK_EQ_U64(test_stats(rt).finishes, 1);
    CHECK_OK(weft_rt_shutdown(rt));
    CHECK_OK(weft_rt_destroy(rt));
    return t;
}

TEST(api, join_handle_of_destroyed_runtime)
{
    weft_task t = finished_orphan();
    CHECK_ERR(weft_join(t, NULL), -ESRCH);
    CHECK_ERR(weft_detach(t), -ESRCH);
}

TEST(api, handle_of_destroyed_runtime_not_confused_with_new_task)
{
    /* A new runtime may take the old one's place; the old handle must
     * still be stale, not name the new runtime's task in the same slot. */
    weft_task old = finished_orphan();
    weft_rt *rt = test_rt(64);
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, hold_until_released, (void *)3, NULL));
    CHECK_ERR(weft_detach(old), -ESRCH);
    CHECK_ERR(weft_join(old, NULL), -ESRCH);
    atomic_store(&release_flag, 1);
    void *r;
    CHECK_OK(weft_join(t, &r));
    CHECK_EQ_PTR(r, (void *)3);
    test_rt_destroy_clean(rt);
}

static void *self_join(void *arg)
{
    (void)arg;
    CHECK_ERR(weft_join(weft_self(), NULL), -EDEADLK);
    return (void *)1;
}

TEST(api, join_self_deadlock)
{
    weft_rt *rt = test_rt(64);
    CHECK_EQ_PTR(test_run(rt, self_join, NULL), (void *)1);
    test_rt_destroy_clean(rt);
}

/* ---- one joiner --------------------------------------------------------- */

static _Atomic int joiner_started;

static void *join_it(void *arg)
{
    weft_task t = *(weft_task *)arg;
    void *r = NULL;
    atomic_store(&joiner_started, 1);
    CHECK_OK(weft_join(t, &r));
    return r;
}

static void *second_joiner(void *arg)
{
    (void)arg;
    weft_task target, first;
    CHECK_OK(weft_spawn(NULL, &target, hold_until_released, (void *)5, NULL));
    CHECK_OK(weft_spawn(NULL, &first, join_it, &target, NULL));
    while (!atomic_load(&joiner_started))
        weft_yield();
    /* The first joiner claims the target in the same step that it
     * publishes joiner_started (no switch in between); a few more yields
     * cover a joiner running on another worker. */
    for (int i = 0; i < 100; i++)
        weft_yield();
    CHECK_ERR(weft_join(target, NULL), -EINVAL);
    CHECK_ERR(weft_detach(target), -EINVAL);
    atomic_store(&release_flag, 1);
    void *r;
    CHECK_OK(weft_join(first, &r));
    CHECK_EQ_PTR(r, (void *)5);
    CHECK_ERR(weft_join(target, NULL), -ESRCH);
    return NULL;
}

TEST(api, join_second_joiner_rejected)
{
    weft_rt *rt = test_rt(64);
    test_run(rt, second_joiner, NULL);
    test_rt_destroy_clean(rt);
}

/* ---- detach ------------------------------------------------------------- */

static void *join_detached(void *arg)
{
    weft_rt *rt = arg;
    weft_task t;
    CHECK_OK(weft_spawn(NULL, &t, hold_until_released, NULL, NULL));
    CHECK_OK(weft_detach(t));
    CHECK_ERR(weft_join(t, NULL), -EINVAL);
    CHECK_ERR(weft_detach(t), -EINVAL);
    CHECK_EQ_U64(test_stats(rt).live, 2);
    atomic_store(&release_flag, 1);
    test_wait_live(rt, 1, 10000); /* reaped once it ends; main remains */
    CHECK_ERR(weft_join(t, NULL), -ESRCH);
    return NULL;
}

TEST(api, join_detached_rejected_and_reaped)
{
    weft_rt *rt = test_rt(64);
    test_run(rt, join_detached, rt);
    test_rt_destroy_clean(rt);
}

static _Atomic int finished_flag;

static void *mark_finished(void *arg)
{
    atomic_store(&finished_flag, 1);
    return arg;
}

static void *detach_after_end(void *arg)
{
    weft_rt *rt = arg;
    weft_task t;
    CHECK_OK(weft_spawn(NULL, &t, mark_finished, NULL, NULL));
    while (!atomic_load(&finished_flag))
        weft_yield();
    /* It has returned; wait until its end is published (finishes). */
    uint64_t end = test_now_ms() + 10000;
    while (test_stats(rt).finishes < 1 && test_now_ms() < end)
        weft_yield();
    CHECK_EQ_U64(test_stats(rt).finishes, 1);
    CHECK_EQ_U64(test_stats(rt).live, 2);
    CHECK_OK(weft_detach(t)); /* reaps it at once */
    CHECK_EQ_U64(test_stats(rt).live, 1);
    CHECK_ERR(weft_join(t, NULL), -ESRCH);
    CHECK_ERR(weft_detach(t), -ESRCH);
    return NULL;
}

TEST(api, detach_finished_task_reaps_it)
{
    weft_rt *rt = test_rt(64);
    test_run(rt, detach_after_end, rt);
    test_rt_destroy_clean(rt);
}

static _Atomic int detached_ran;

static void *count_run(void *arg)
{
    (void)arg;
    weft_yield();
    atomic_fetch_add(&detached_ran, 1);
    return NULL;
}

static void *spawn_detached(void *arg)
{
    weft_rt *rt = arg;
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.flags = WEFT_DETACHED;
    for (int i = 0; i < 50; i++)
        CHECK_OK(weft_spawn(NULL, NULL, count_run, NULL, &a));
    weft_task t;
    CHECK_OK(weft_spawn(NULL, &t, count_run, NULL, &a)); /* out allowed */
    CHECK_ERR(weft_join(t, NULL), -EINVAL);
    test_wait_live(rt, 1, 10000);
    CHECK_EQ_INT(atomic_load(&detached_ran), 51);
    return NULL;
}

TEST(api, spawn_detached_runs_and_is_reaped)
{
    weft_rt *rt = test_rt(128);
    test_run(rt, spawn_detached, rt);
    test_rt_destroy_clean(rt);
}

TEST(api, detach_from_plain_thread)
{
    weft_rt *rt = test_rt(64);
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, hold_until_released, NULL, NULL));
    CHECK_OK(weft_detach(t));
    CHECK_ERR(weft_detach(t), -EINVAL);
    atomic_store(&release_flag, 1);
    test_wait_live(rt, 0, 10000);
    test_rt_destroy_clean(rt);
}

/* ---- bad arguments ------------------------------------------------------ */

/* Every rejected spawn has no effect: no slot used, nothing counted. */
static void expect_spawn_rejected(weft_rt *rt, weft_rt *arg_rt, weft_task *out,
                                  weft_fn fn, const weft_spawn_attr *a, int err)
{
    weft_stats before = test_stats(rt);
    weft_task keep = {0x1234};
    if (out)
        *out = keep;
    CHECK_ERR(weft_spawn(arg_rt, out, fn, NULL, a), err);
    if (out)
        CHECK_EQ_U64(out->id, keep.id);
    weft_stats after = test_stats(rt);
    CHECK_EQ_U64(after.spawns, before.spawns);
    CHECK_EQ_U64(after.live, before.live);
}

static void *bad_args(void *arg)
{
    weft_rt *rt = arg;
    weft_task t;
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    expect_spawn_rejected(rt, NULL, &t, NULL, NULL, -EINVAL);
    expect_spawn_rejected(rt, NULL, NULL, nothing, NULL, -EINVAL);
    expect_spawn_rejected(rt, NULL, NULL, nothing, &a, -EINVAL);
    a.priority = 16;
    expect_spawn_rejected(rt, NULL, &t, nothing, &a, -EINVAL);
    a.priority = -1;
    expect_spawn_rejected(rt, NULL, &t, nothing, &a, -EINVAL);
    a.priority = WEFT_PRIO_NORMAL;
    a.flags = 1u << 2;
    expect_spawn_rejected(rt, NULL, &t, nothing, &a, -EINVAL);
    a.flags = 1u << 31;
    expect_spawn_rejected(rt, NULL, &t, nothing, &a, -EINVAL);
    a.flags = 0;
    /* Larger than the default class can hold (guard page and task-local
     * storage take part of stack_size). */
    a.stack = 256 << 10;
    expect_spawn_rejected(rt, NULL, &t, nothing, &a, -EINVAL);
    a.stack = SIZE_MAX;
    expect_spawn_rejected(rt, NULL, &t, nothing, &a, -EINVAL);
    /* The same through an explicit runtime argument. */
    a.stack = WEFT_STACK_DEFAULT;
    a.priority = 99;
    expect_spawn_rejected(rt, rt, &t, nothing, &a, -EINVAL);
    return NULL;
}

TEST(api, spawn_bad_arguments)
{
    weft_config c;
    weft_config_default(&c);
    c.max_tasks = 64;
    c.stack_size = 256 << 10;
    weft_rt *rt = test_rt_cfg(&c);
    test_run(rt, bad_args, rt);
    /* And from a plain thread. */
    expect_spawn_rejected(rt, rt, NULL, nothing, NULL, -EINVAL);
    expect_spawn_rejected(rt, rt, NULL, NULL, NULL, -EINVAL);
    test_rt_destroy_clean(rt);
}

static void *good_attrs(void *arg)
{
    (void)arg;
    static const int prios[] = {0, WEFT_PRIO_HIGH, WEFT_PRIO_NORMAL,
                                WEFT_PRIO_LOW, WEFT_PRIO_MAX};
    for (size_t i = 0; i < sizeof prios / sizeof prios[0]; i++) {
        weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
        a.priority = prios[i];
        a.flags = WEFT_PREEMPTIBLE;
        a.name = "a-name-longer-than-fifteen-chars";
        a.stack = 128 << 10;
        weft_task t;
        void *r;
        CHECK_OK(weft_spawn(NULL, &t, plus_one, (void *)i, &a));
        CHECK_OK(weft_join(t, &r));
        CHECK_EQ_PTR(r, (void *)(i + 1));
    }
    return NULL;
}

TEST(api, spawn_valid_attributes)
{
    weft_rt *rt = test_rt(64);
    test_run(rt, good_attrs, NULL);
    test_rt_destroy_clean(rt);
}

TEST(api, spawn_null_rt_outside_task)
{
    weft_task t;
    CHECK_ERR(weft_spawn(NULL, &t, nothing, NULL, NULL), -EPERM);
    weft_rt *rt = test_rt(64);
    CHECK_ERR(weft_spawn(NULL, &t, nothing, NULL, NULL), -EPERM);
    CHECK_EQ_U64(test_stats(rt).spawns, 0);
    test_rt_destroy_clean(rt);
}

static void *spawn_into_current(void *arg)
{
    weft_rt *rt = arg;
    CHECK_EQ_PTR(weft_current(), rt);
    weft_task t;
    void *r;
    CHECK_OK(weft_spawn(NULL, &t, plus_one, (void *)1, NULL));
    CHECK_OK(weft_join(t, &r));
    CHECK_EQ_PTR(r, (void *)2);
    CHECK_EQ_U64(test_stats(rt).spawns, 2);
    return NULL;
}

TEST(api, spawn_null_rt_inside_task)
{
    weft_rt *rt = test_rt(64);
    test_run(rt, spawn_into_current, rt);
    test_rt_destroy_clean(rt);
}

/* ---- capacity ----------------------------------------------------------- */

enum { CAP = 8 };

static void *fill_up(void *arg)
{
    weft_rt *rt = arg;
    weft_task t[CAP];
    int n = 0, err;
    while ((err = weft_spawn(NULL, &t[n], hold_until_released,
                             (void *)(uintptr_t)(n + 100), NULL)) == 0) {
        n++;
        CHECK_CMP_INT(n, <, CAP);
    }
    CHECK_ERR(err, -EAGAIN);
    /* The main task holds one slot; every other slot is spawnable. */
    CHECK_EQ_INT(n, CAP - 1);
    CHECK_EQ_U64(test_stats(rt).live, CAP);
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.flags = WEFT_DETACHED;
    CHECK_ERR(weft_spawn(NULL, NULL, nothing, NULL, &a), -EAGAIN);

    atomic_store(&release_flag, 1);
    for (int i = 0; i < n; i++) {
        void *r;
        CHECK_OK(weft_join(t[i], &r));
        CHECK_EQ_PTR(r, (void *)(uintptr_t)(i + 100));
    }
    /* Nothing was lost: every slot is spawnable again. */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < CAP - 1; i++)
            CHECK_OK(
                weft_spawn(NULL, &t[i], plus_one, (void *)(uintptr_t)i, NULL));
        CHECK_ERR(weft_spawn(NULL, &t[CAP - 1], nothing, NULL, NULL), -EAGAIN);
        for (int i = 0; i < CAP - 1; i++) {
            void *r;
            CHECK_OK(weft_join(t[i], &r));
            CHECK_EQ_PTR(r, (void *)(uintptr_t)(i + 1));
        }
    }
    return NULL;
}

TEST(api, spawn_max_tasks_exhaustion)
{
    weft_rt *rt = test_rt(CAP);
    test_run(rt, fill_up, rt);
    test_rt_destroy_clean(rt);
}

TEST(api, spawn_max_tasks_exhaustion_plain_thread)
{
    weft_rt *rt = test_rt(CAP);
    weft_task t[CAP];
    for (int i = 0; i < CAP; i++)
        CHECK_OK(weft_spawn(rt, &t[i], hold_until_released, NULL, NULL));
    weft_task extra;
    CHECK_ERR(weft_spawn(rt, &extra, nothing, NULL, NULL), -EAGAIN);
    CHECK_ERR(weft_rt_run(rt, nothing, NULL, NULL), -EAGAIN);
    atomic_store(&release_flag, 1);
    for (int i = 0; i < CAP; i++)
        CHECK_OK(weft_join(t[i], NULL));
    CHECK_OK(weft_rt_run(rt, nothing, NULL, NULL));
    test_rt_destroy_clean(rt);
}
