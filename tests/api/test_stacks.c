/*
 * test_stacks.c - stack classes: the small class runs tasks, a requested
 * size picks the smallest class that fits, the default class takes deep
 * recursion, and many live stacks keep their contents across switches.
 */
#include <stdatomic.h>

#include "check.h"
#include "internal.h"

static uint32_t checksum(const volatile unsigned char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static void *small_work(void *arg)
{
    volatile unsigned char buf[4096];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 7 + (uintptr_t)arg);
    uint32_t before = checksum(buf, sizeof buf);
    weft_yield();
    CHECK_EQ_U64(checksum(buf, sizeof buf), before);
    return (void *)(uintptr_t)before;
}

static void *small_main(void *arg)
{
    (void)arg;
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.stack = WEFT_STACK_SMALL;
    weft_task t[16];
    for (uintptr_t i = 0; i < 16; i++)
        CHECK_OK(weft_spawn(NULL, &t[i], small_work, (void *)i, &a));
    for (uintptr_t i = 0; i < 16; i++) {
        void *r;
        CHECK_OK(weft_join(t[i], &r));
        CHECK_NE_PTR(r, NULL);
    }
    return NULL;
}

TEST(api, stack_small_class_runs)
{
    weft_rt *rt = test_rt(64);
    test_run(rt, small_main, NULL);
    test_rt_destroy_clean(rt);
}

/* White-box: the class a task runs on is its state word's SMALL bit. */
static void *report_small(void *arg)
{
    (void)arg;
    return (void *)(uintptr_t)((test_self_state() & WEFT_TS_SMALL) ? 1 : 0);
}

static int runs_small(size_t stack)
{
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.stack = stack;
    weft_task t;
    void *r;
    CHECK_OK(weft_spawn(NULL, &t, report_small, NULL, &a));
    CHECK_OK(weft_join(t, &r));
    return (int)(uintptr_t)r;
}

static void *class_main(void *arg)
{
    (void)arg;
    CHECK_EQ_INT(runs_small(WEFT_STACK_DEFAULT), 0);
    CHECK_EQ_INT(runs_small(WEFT_STACK_SMALL), 1);
    CHECK_EQ_INT(runs_small(2), 1);
    CHECK_EQ_INT(runs_small(1024), 1);
    CHECK_EQ_INT(runs_small(8 << 10), 1);
    CHECK_EQ_INT(runs_small(16 << 10), 0); /* no room left in 16 KiB */
    CHECK_EQ_INT(runs_small(64 << 10), 0);
    CHECK_EQ_INT(runs_small(200 << 10), 0);
    return NULL;
}

TEST(api, stack_size_picks_class)
{
    weft_config c;
    weft_config_default(&c);
    c.max_tasks = 64;
    c.stack_size = 256 << 10;
    c.small_stack_size = 16 << 10;
    weft_rt *rt = test_rt_cfg(&c);
    test_run(rt, class_main, NULL);
    test_rt_destroy_clean(rt);
}

/* About 100 KiB of frames on the default 256 KiB stack. */
__attribute__((noinline)) static uint32_t recurse(int depth)
{
    volatile unsigned char buf[1024];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(depth + i);
    uint32_t h = depth > 1 ? recurse(depth - 1) : 0;
    return h + checksum(buf, sizeof buf);
}

static void *deep(void *arg)
{
    int depth = (int)(uintptr_t)arg;
    uint32_t a = recurse(depth);
    weft_yield();
    uint32_t b = recurse(depth);
    CHECK_EQ_U64(a, b);
    return (void *)(uintptr_t)a;
}

static void *deep_main(void *arg)
{
    (void)arg;
    weft_task t[4];
    for (int i = 0; i < 4; i++)
        CHECK_OK(weft_spawn(NULL, &t[i], deep, (void *)100, NULL));
    void *r0 = NULL;
    for (int i = 0; i < 4; i++) {
        void *r;
        CHECK_OK(weft_join(t[i], &r));
        if (i == 0)
            r0 = r;
        CHECK_EQ_PTR(r, r0);
    }
    return NULL;
}

TEST(api, stack_deep_recursion_default_class)
{
    weft_config c;
    weft_config_default(&c);
    c.max_tasks = 64;
    c.stack_size = 256 << 10;
    weft_rt *rt = test_rt_cfg(&c);
    test_run(rt, deep_main, NULL);
    test_rt_destroy_clean(rt);
}

/* Thousands of live tasks, each keeping a pattern of its own on its
 * stack across many switches: no stack is shared or clobbered. */
enum { MANY = 5000, MANY_YIELDS = 4 };

static void *keep_pattern(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    volatile unsigned char buf[512];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(id * 31 + i * 17);
    uint32_t sum = checksum(buf, sizeof buf);
    for (int y = 0; y < MANY_YIELDS; y++) {
        weft_yield();
        CHECK_EQ_U64(checksum(buf, sizeof buf), sum);
        CHECK_EQ_U64(buf[0], (unsigned char)(id * 31));
    }
    return (void *)(uintptr_t)sum;
}

static void *many_main(void *arg)
{
    (void)arg;
    static weft_task t[MANY];
    for (uintptr_t i = 0; i < MANY; i++) {
        weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
        a.stack = i % 3 == 0 ? WEFT_STACK_SMALL : WEFT_STACK_DEFAULT;
        CHECK_OK(weft_spawn(NULL, &t[i], keep_pattern, (void *)i, &a));
        if (i % 100 == 0)
            weft_yield();
    }
    for (uintptr_t i = 0; i < MANY; i++) {
        volatile unsigned char buf[512];
        for (size_t k = 0; k < sizeof buf; k++)
            buf[k] = (unsigned char)(i * 31 + k * 17);
        void *r;
        CHECK_OK(weft_join(t[i], &r));
        CHECK_EQ_U64((uintptr_t)r, checksum(buf, sizeof buf));
    }
    return NULL;
}

TEST_T(api, stack_many_tasks_keep_contents, 60)
{
    weft_rt *rt = test_rt(8192);
    test_run(rt, many_main, NULL);
    weft_stats st = test_stats(rt);
    CHECK_EQ_U64(st.spawns, MANY + 1);
    test_rt_destroy_clean(rt);
}

/* ---- 1 KiB small stacks: the scheduler's decisions stay off them --------- */

/* A small-class task that parks, yields and ends on a 1 KiB stack. Its
 * own calls fit (the memory bench's tasks park in a receive in about 700
 * bytes), but the next decision (find_work: due timers and the wake-ups
 * they make) did not: a task sleeping in weft_sleep_ns overflowed a
 * 1,536-byte stack. With the decision made on the worker's stack
 * (worker.c, "Small stacks") these run clean; before, "stack overflow
 * ... canary overwritten" and an abort. */
static _Atomic long tiny_done;

static void *tiny_task(void *arg)
{
    uintptr_t i = (uintptr_t)arg;
    for (int k = 0; k < 40; k++) {
        weft_sleep_ns(1000 + ((i + (uintptr_t)k) % 7) * 1000);
        if (k % 5 == 0)
            weft_yield();
    }
    atomic_fetch_add(&tiny_done, 1);
    return NULL;
}

static void *tiny_main(void *arg)
{
    (void)arg;
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.flags = WEFT_DETACHED;
    a.stack = WEFT_STACK_SMALL;
    for (uintptr_t i = 0; i < 1000; i++)
        CHECK_OK(weft_spawn(NULL, NULL, tiny_task, (void *)i, &a));
    while (atomic_load(&tiny_done) < 1000)
        weft_sleep_ns(1000000);
    return NULL;
}

static void tiny_stacks(unsigned workers)
{
#ifdef WEFT_SWITCH_UCONTEXT
    TEST_SKIP("no small class under 4 KiB with the ucontext switcher");
#endif
    if (TEST_SANITIZED || TEST_CHAOS)
        TEST_SKIP("sanitizer and chaos frames need more than 1 KiB");
    weft_config c;
    weft_config_default(&c);
    c.workers = workers;
    c.max_tasks = 2048;
    c.small_stack_size = 1024;
    weft_rt *rt = test_rt_cfg(&c);
    atomic_store(&tiny_done, 0);
    test_run(rt, tiny_main, NULL);
    test_wait_live(rt, 0, 10000);
    test_rt_destroy_clean(rt);
}

TEST(api, stack_1k_small_class_sleeps_yields_ends_one_worker)
{
    tiny_stacks(1);
}

TEST(api, stack_1k_small_class_sleeps_yields_ends_two_workers)
{
    tiny_stacks(2);
}
