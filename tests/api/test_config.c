/*
 * test_config.c - weft_config_default, WEFT_* environment overrides, and
 * weft_rt_create's validation of every field (black box, weft.h only).
 *
 * Each test runs in its own process, so setenv/unsetenv here cannot leak.
 * A failing create must leave *out untouched ("no effect on failure").
 */
#include <stdlib.h>

#include "check.h"

static const char *const env_vars[] = {
    "WEFT_WORKERS",    "WEFT_MAX_TASKS",
    "WEFT_STACK_SIZE", "WEFT_SMALL_STACK_SIZE",
    "WEFT_STACK_KEEP", "WEFT_GUARD_PAGES",
    "WEFT_PIN",        "WEFT_BALANCE",
    "WEFT_HUGE_PAGES",
};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof env_vars / sizeof env_vars[0]; i++)
        CHECK_EQ_INT(unsetenv(env_vars[i]), 0);
}

#define SENTINEL ((weft_rt *)(uintptr_t)0x5eed)

/* With `var=value` in the environment, both weft_rt_create(cfg NULL) and
 * weft_rt_create(&cfg from weft_config_default) fail with -EINVAL, name
 * `mention` in weft_last_error(), and leave *out alone. */
static void expect_env_rejected(const char *var, const char *value,
                                const char *mention)
{
    clear_env();
    CHECK_EQ_INT(setenv(var, value, 1), 0);
    weft_rt *rt = SENTINEL;
    CHECK_ERR(weft_rt_create(&rt, NULL), -EINVAL);
    CHECK_STR_CONTAINS(weft_last_error(), mention);
    CHECK_EQ_PTR(rt, SENTINEL);

    weft_config c;
    weft_config_default(&c);
    CHECK_ERR(weft_rt_create(&rt, &c), -EINVAL);
    CHECK_STR_CONTAINS(weft_last_error(), mention);
    CHECK_EQ_PTR(rt, SENTINEL);
}

/* weft_config_default reports `var` as the first unparsable variable. */
static void expect_bad_env(const char *var, const char *value)
{
    clear_env();
    CHECK_EQ_INT(setenv(var, value, 1), 0);
    weft_config c;
    weft_config_default(&c);
    CHECK_NOT_NULL(c.bad_env);
    CHECK_EQ_STR(c.bad_env, var);
    expect_env_rejected(var, value, var);
}

TEST(api, config_defaults)
{
    clear_env();
    weft_config c;
    memset(&c, 0xa5, sizeof c);
    weft_config_default(&c);
    CHECK_EQ_INT(c.workers, 0); /* one per usable CPU */
    CHECK_EQ_INT(c.pin, 0);
    CHECK_EQ_U64(c.max_tasks, 65536);
    CHECK_EQ_U64(c.stack_size, 256 * 1024);
    CHECK_EQ_U64(c.small_stack_size, 16 * 1024);
    CHECK_EQ_U64(c.stack_keep, 1024);
    CHECK_EQ_INT(c.guard_pages, 1);
    CHECK_EQ_INT(c.huge_pages, 0);
    CHECK_NULL(c.bad_env);
    weft_config_default(NULL); /* must not crash */
}

TEST(api, config_create_null_cfg)
{
    clear_env();
    weft_rt *rt = NULL;
    CHECK_OK(weft_rt_create(&rt, NULL));
    CHECK_NOT_NULL(rt);
    test_rt_destroy_clean(rt);
}

TEST(api, config_create_null_out)
{
    weft_config c;
    weft_config_default(&c);
    CHECK_ERR(weft_rt_create(NULL, &c), -EINVAL);
    CHECK_ERR(weft_rt_create(NULL, NULL), -EINVAL);
}

TEST(api, config_env_workers_bad)
{
    expect_bad_env("WEFT_WORKERS", "abc");
}

TEST(api, config_env_max_tasks_negative)
{
    expect_bad_env("WEFT_MAX_TASKS", "-1");
}

TEST(api, config_env_max_tasks_too_wide)
{
    expect_bad_env("WEFT_MAX_TASKS", "4294967296"); /* 2^32 */
}

TEST(api, config_env_stack_size_bad_suffix)
{
    expect_bad_env("WEFT_STACK_SIZE", "12q");
}

TEST(api, config_env_small_stack_size_empty)
{
    expect_bad_env("WEFT_SMALL_STACK_SIZE", "");
}

TEST(api, config_env_stack_keep_bad)
{
    expect_bad_env("WEFT_STACK_KEEP", "x");
}

TEST(api, config_env_size_malformed)
{
    static const char *const bad[] = {
        "1MB", "1 M", " 1M", "M", "0x10", "1.5M", "+1", "1k2", "99999999999G"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_bad_env("WEFT_STACK_SIZE", bad[i]);
}

TEST(api, config_env_suffix_on_count_rejected)
{
    /* WEFT_MAX_TASKS is a count, not a size: no suffix. */
    expect_bad_env("WEFT_MAX_TASKS", "4k");
}

TEST(api, config_env_guard_pages_out_of_range)
{
    /* Parses, so weft_config_default takes it; create rejects the value. */
    clear_env();
    CHECK_EQ_INT(setenv("WEFT_GUARD_PAGES", "2", 1), 0);
    weft_config c;
    weft_config_default(&c);
    CHECK_NULL(c.bad_env);
    CHECK_EQ_INT(c.guard_pages, 2);
    expect_env_rejected("WEFT_GUARD_PAGES", "2", "guard_pages");
}

TEST(api, config_env_huge_pages)
{
    clear_env();
    CHECK_EQ_INT(setenv("WEFT_HUGE_PAGES", "1", 1), 0);
    weft_config c;
    weft_config_default(&c);
    CHECK_NULL(c.bad_env);
    CHECK_EQ_INT(c.huge_pages, 1);
    /* Parses but out of range: create names the field and variable. */
    CHECK_EQ_INT(setenv("WEFT_HUGE_PAGES", "2", 1), 0);
    weft_config_default(&c);
    CHECK_NULL(c.bad_env);
    CHECK_EQ_INT(c.huge_pages, 2);
    expect_env_rejected("WEFT_HUGE_PAGES", "2", "huge_pages");
    expect_env_rejected("WEFT_HUGE_PAGES", "2", "WEFT_HUGE_PAGES");
    /* Does not parse: weft_config_default remembers it. */
    expect_bad_env("WEFT_HUGE_PAGES", "yes");
    expect_bad_env("WEFT_HUGE_PAGES", "-1");
    expect_bad_env("WEFT_HUGE_PAGES", "");
}

TEST(api, config_env_size_suffixes)
{
    static const struct {
        const char *v;
        size_t want;
    } ok[] = {{"256k", 256u << 10}, {"64K", 64u << 10}, {"1M", 1u << 20},
              {"2m", 2u << 20},     {"1G", 1u << 30},   {"1g", 1u << 30},
              {"65536", 65536}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        clear_env();
        CHECK_EQ_INT(setenv("WEFT_STACK_SIZE", ok[i].v, 1), 0);
        weft_config c;
        weft_config_default(&c);
        CHECK_NULL(c.bad_env);
        CHECK_EQ_U64(c.stack_size, ok[i].want);
    }
}

static void *answer(void *arg)
{
    return (void *)((uintptr_t)arg + 1);
}

TEST(api, config_env_overrides_used)
{
    clear_env();
    CHECK_EQ_INT(setenv("WEFT_WORKERS", "1", 1), 0);
    CHECK_EQ_INT(setenv("WEFT_MAX_TASKS", "64", 1), 0);
    CHECK_EQ_INT(setenv("WEFT_STACK_SIZE", "1M", 1), 0);
    CHECK_EQ_INT(setenv("WEFT_SMALL_STACK_SIZE", "256k", 1), 0);
    CHECK_EQ_INT(setenv("WEFT_STACK_KEEP", "8", 1), 0);
    CHECK_EQ_INT(setenv("WEFT_GUARD_PAGES", "0", 1), 0);
    weft_config c;
    weft_config_default(&c);
    CHECK_NULL(c.bad_env);
    CHECK_EQ_INT(c.workers, 1);
    CHECK_EQ_U64(c.max_tasks, 64);
    CHECK_EQ_U64(c.stack_size, 1u << 20);
    CHECK_EQ_U64(c.small_stack_size, 256u << 10);
    CHECK_EQ_U64(c.stack_keep, 8);
    CHECK_EQ_INT(c.guard_pages, 0);

    weft_rt *rt = NULL;
    CHECK_OK(weft_rt_create(&rt, NULL));
    CHECK_EQ_PTR(test_run(rt, answer, (void *)41), (void *)42);
    /* Guard pages off: no stack got one. */
    CHECK_EQ_U64(test_stats(rt).guarded_stacks, 0);
    test_rt_destroy_clean(rt);
}

/* Mutate one field of a default config and expect weft_rt_create to fail
 * with `err`, naming `field` in weft_last_error(). */
typedef void (*mutate_fn)(weft_config *);

static void expect_field_rejected(mutate_fn m, int err, const char *field)
{
    clear_env();
    weft_config c;
    weft_config_default(&c);
    m(&c);
    weft_rt *rt = SENTINEL;
    CHECK_ERR(weft_rt_create(&rt, &c), err);
    CHECK_STR_CONTAINS(weft_last_error(), field);
    CHECK_EQ_PTR(rt, SENTINEL);
}

static void max_tasks_0(weft_config *c)
{
    c->max_tasks = 0;
}
static void max_tasks_big(weft_config *c)
{
    c->max_tasks = (1u << 24) + 1;
}
static void stack_small(weft_config *c)
{
    c->stack_size = 12 << 10;
}
static void stack_unaligned(weft_config *c)
{
    c->stack_size = (64 << 10) + 64;
}
static void stack_big(weft_config *c)
{
    c->stack_size = (size_t)2 << 30;
}
static void small_tiny(weft_config *c)
{
    c->small_stack_size = 1024 - 64; /* one step under the minimum */
}
static void small_odd(weft_config *c)
{
    c->small_stack_size = 4096 + 32;
}
static void small_over(weft_config *c)
{
    c->small_stack_size = c->stack_size + 64;
}
static void guard_2(weft_config *c)
{
    c->guard_pages = 2;
}
static void guard_neg(weft_config *c)
{
    c->guard_pages = -1;
}
static void arena_huge(weft_config *c)
{
    c->max_tasks = 1u << 24;
    c->stack_size = (size_t)1 << 30;
}
static void workers_1025(weft_config *c)
{
    c->workers = 1025;
}
static void workers_over_leaves(weft_config *c)
{
    c->max_tasks = 63 * 2; /* two leaves: at most two workers */
    c->workers = 3;
}
static void pin_2(weft_config *c)
{
    c->pin = 2;
}
static void huge_2(weft_config *c)
{
    c->huge_pages = 2;
}
static void huge_neg(weft_config *c)
{
    c->huge_pages = -1;
}

TEST(api, config_max_tasks_zero)
{
    expect_field_rejected(max_tasks_0, -EINVAL, "max_tasks");
}

TEST(api, config_max_tasks_over_limit)
{
    expect_field_rejected(max_tasks_big, -EINVAL, "max_tasks");
}

TEST(api, config_stack_size_too_small)
{
    expect_field_rejected(stack_small, -EINVAL, "stack_size");
}

TEST(api, config_stack_size_not_page_multiple)
{
    expect_field_rejected(stack_unaligned, -EINVAL, "stack_size");
}

TEST(api, config_stack_size_too_big)
{
    expect_field_rejected(stack_big, -EINVAL, "stack_size");
}

TEST(api, config_small_stack_size_too_small)
{
    expect_field_rejected(small_tiny, -EINVAL, "small_stack_size");
}

TEST(api, config_small_stack_size_not_multiple_of_64)
{
    expect_field_rejected(small_odd, -EINVAL, "small_stack_size");
}

TEST(api, config_small_stack_size_over_stack_size)
{
    expect_field_rejected(small_over, -EINVAL, "small_stack_size");
}

TEST(api, config_guard_pages_two)
{
    expect_field_rejected(guard_2, -EINVAL, "guard_pages");
}

TEST(api, config_guard_pages_negative)
{
    expect_field_rejected(guard_neg, -EINVAL, "guard_pages");
}

TEST(api, config_huge_pages_two)
{
    expect_field_rejected(huge_2, -EINVAL, "huge_pages");
}

TEST(api, config_huge_pages_negative)
{
    expect_field_rejected(huge_neg, -EINVAL, "huge_pages");
}

TEST(api, config_arena_over_limit)
{
    expect_field_rejected(arena_huge, -EINVAL, "max_tasks");
}

TEST(api, config_workers_limits)
{
    /* Explicit counts must fit: at most 1024, and no more than there are
     * leaves of 63 task slots. The automatic count (0) is clamped. */
    expect_field_rejected(workers_1025, -EINVAL, "workers");
    expect_field_rejected(workers_over_leaves, -EINVAL, "workers");
    expect_field_rejected(pin_2, -EINVAL, "pin");
}

/* The smallest accepted sizes work end to end. */
static void *small_child(void *arg)
{
    return (void *)((uintptr_t)arg * 2);
}

static void *use_small(void *arg)
{
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.stack = WEFT_STACK_SMALL;
    weft_task t;
    void *r;
    CHECK_OK(weft_spawn(NULL, &t, small_child, arg, &a));
    CHECK_OK(weft_join(t, &r));
    return r;
}

TEST(api, config_minimum_sizes_work)
{
    clear_env();
    weft_config c;
    weft_config_default(&c);
    c.max_tasks = 1;
    c.stack_size = 16 << 10;
#ifdef WEFT_SWITCH_UCONTEXT
    c.small_stack_size = 4096; /* the ucontext switcher's minimum */
#else
    /* ASan's frames overrun 1 KiB here (by 1.4 KiB, into memory below the
     * small class, unseen until the fence below the class reported it):
     * the minimum holds for uninstrumented code only. */
    c.small_stack_size = TEST_ASAN ? 4096 : 1024;
#endif
    weft_rt *rt = test_rt_cfg(&c);
    /* The monitor's signals may reach the small task (chaos seed 624
     * stalled it long enough for one): their frames go on the thread's
     * signal stack, never on the 1 KiB stack (sched/sigstack.c). */
    /* max_tasks 1: the main task has the only slot. */
    CHECK_EQ_PTR(test_run(rt, answer, (void *)1), (void *)2);
    test_rt_destroy_clean(rt);

    c.max_tasks = 2;
    rt = test_rt_cfg(&c);
    CHECK_EQ_PTR(test_run(rt, use_small, (void *)21), (void *)42);
    test_rt_destroy_clean(rt);
}

TEST(api, config_env_out_of_range_names_variable)
{
    /* A value that parses but is out of range is reported with the
     * variable's name, not only the field's (DESIGN.md §1). */
    clear_env();
    setenv("WEFT_GUARD_PAGES", "2", 1);
    weft_config c;
    weft_config_default(&c);
    weft_rt *rt = NULL;
    CHECK_ERR(weft_rt_create(&rt, &c), -EINVAL);
    CHECK_STR_CONTAINS(weft_last_error(), "WEFT_GUARD_PAGES");
    CHECK_NULL(rt);
}

static void *noop(void *arg)
{
    return arg;
}

TEST(api, canary_stacks_counts_budget_fallbacks_only)
{
    /* guard_pages = 0 asks for canaries: they are not counted as
     * fallbacks from an exhausted mapping budget. */
    clear_env();
    weft_config c;
    weft_config_default(&c);
    c.max_tasks = 64;
    c.guard_pages = 0;
    weft_rt *rt = test_rt_cfg(&c);
    test_run(rt, noop, NULL);
    weft_stats st = test_stats(rt);
    CHECK_EQ_U64(st.canary_stacks, 0);
    CHECK_EQ_U64(st.guarded_stacks, 0);
    test_rt_destroy_clean(rt);
}

TEST(api, config_env_balance)
{
    clear_env();
    weft_config c;
    weft_config_default(&c);
    CHECK_EQ_INT(c.balance, WEFT_BALANCE_STEAL);
    CHECK_EQ_INT(setenv("WEFT_BALANCE", "mesh", 1), 0);
    weft_config_default(&c);
    CHECK_EQ_INT(c.balance, WEFT_BALANCE_MESH);
    CHECK_EQ_INT(setenv("WEFT_BALANCE", "steal", 1), 0);
    weft_config_default(&c);
    CHECK_EQ_INT(c.balance, WEFT_BALANCE_STEAL);
}

TEST(api, config_env_balance_bad)
{
    expect_env_rejected("WEFT_BALANCE", "push", "WEFT_BALANCE");
}

static void balance_2(weft_config *c)
{
    c->balance = 2;
}

TEST(api, config_balance_out_of_range)
{
    expect_field_rejected(balance_2, -EINVAL, "balance");
}
