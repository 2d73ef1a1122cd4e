/*
 * config.c - defaults, WEFT_* environment overrides, and validation.
 *
 * weft_config_default cannot fail, so a variable that does not parse is
 * remembered in cfg->bad_env and weft_rt_create reports it (-EINVAL, with
 * the variable's name and value in weft_last_error()): a typo in the
 * environment is never silently ignored.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../base/env.h"
#include "../base/error.h"
#include "rt.h"

#define MAX_TASKS_LIMIT (UINT32_C(1) << 24)
#define WORKERS_LIMIT 1024u
#define ARENA_LIMIT ((uint64_t)64 << 40)
/* The portable ucontext switcher keeps a ucontext_t (about 1 KiB on
 * x86_64, more elsewhere) on every parked task's stack. */
#ifdef WEFT_SWITCH_UCONTEXT
#define SMALL_STACK_MIN 4096u
#define SMALL_STACK_MIN_TEXT "4 KiB"
#else
#define SMALL_STACK_MIN 1024u
#define SMALL_STACK_MIN_TEXT "1 KiB"
#endif

static const struct {
    const char *name;
    int suffix;
    size_t off;
    int width; /* 4: unsigned / uint32_t / int, 8: size_t */
} vars[] = {
    {"WEFT_WORKERS", 0, offsetof(weft_config, workers), 4},
    {"WEFT_MAX_TASKS", 0, offsetof(weft_config, max_tasks), 4},
    {"WEFT_STACK_SIZE", 1, offsetof(weft_config, stack_size), 8},
    {"WEFT_SMALL_STACK_SIZE", 1, offsetof(weft_config, small_stack_size), 8},
    {"WEFT_STACK_KEEP", 0, offsetof(weft_config, stack_keep), 8},
    {"WEFT_GUARD_PAGES", 0, offsetof(weft_config, guard_pages), 4},
    {"WEFT_PIN", 0, offsetof(weft_config, pin), 4},
    {"WEFT_HUGE_PAGES", 0, offsetof(weft_config, huge_pages), 4},
    {"WEFT_PREEMPT_ALL", 0, offsetof(weft_config, preempt_all), 4},
    {"WEFT_SIGQUIT_DUMP", 0, offsetof(weft_config, dump_on_sigquit), 4},
    {"WEFT_BLOCKING_THREADS", 0, offsetof(weft_config, blocking_threads), 4},
    {"WEFT_TRACE_RING", 0, offsetof(weft_config, trace_ring_mb), 4},
};

/* Variables that take a name: each maps its words onto an int field. */
static const struct {
    const char *name;
    size_t off;
    const char *words[4]; /* words[i] sets the field to i */
} named[] = {
    {"WEFT_BALANCE", offsetof(weft_config, balance), {"steal", "mesh"}},
    {"WEFT_POLICY",
     offsetof(weft_config, policy),
     {"balanced", "aggressive", "permissive"}},
    {"WEFT_FAIRNESS",
     offsetof(weft_config, fairness),
     {"drr", "lottery", "strict"}},
    {"WEFT_IO", offsetof(weft_config, io), {"epoll", "auto", "uring"}},
};

/* cgroup v2 "cpu.max" ("max 100000" or "QUOTA PERIOD"), else v1's
 * cfs_quota_us / cfs_period_us: the CPUs' worth of time this process may
 * use, rounded up; 0 when unlimited or unknown. */
static unsigned cgroup_cpus(void)
{
    long long quota = -1, period = 0;
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (f) {
        char q[32];
        if (fscanf(f, "%31s %lld", q, &period) == 2 && strcmp(q, "max"))
            quota = atoll(q);
        fclose(f);
    } else if ((f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "r"))) {
        if (fscanf(f, "%lld", &quota) != 1)
            quota = -1;
        fclose(f);
        if ((f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "r"))) {
            if (fscanf(f, "%lld", &period) != 1)
                period = 0;
            fclose(f);
        }
    }
    if (quota <= 0 || period <= 0)
        return 0;
    return (unsigned)((quota + period - 1) / period);
}

unsigned weft__config_cpus(void)
{
    cpu_set_t set;
    unsigned n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = (unsigned)CPU_COUNT(&set);
    if (!n) {
        long k = sysconf(_SC_NPROCESSORS_ONLN);
        n = k > 0 ? (unsigned)k : 1;
    }
    unsigned q = cgroup_cpus();
    return q && q < n ? q : n;
}

void weft_config_default(weft_config *cfg)
{
    if (!cfg)
        return;
    *cfg = (weft_config){
        .workers = 0,
        .max_tasks = UINT32_C(1) << 16,
        .stack_size = (size_t)256 << 10,
        .small_stack_size = (size_t)16 << 10,
        .stack_keep = 1024,
        .guard_pages = 1,
        .huge_pages = 0,
        .balance = WEFT_BALANCE_STEAL,
        .policy = WEFT_POLICY_BALANCED,
        .fairness = -1,
        .preempt_all = 0,
        .dump_on_sigquit = 0,
        .blocking_threads = 512,
        .trace = NULL,
        .trace_ring_mb = 0,
        .io = WEFT_IO_EPOLL,
        .bad_env = NULL,
    };
    /* A path: taken as it is (an empty one means none). */
    const char *tr = getenv("WEFT_TRACE");
    if (tr && *tr)
        cfg->trace = tr;
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i].name);
        uint64_t x;
        if (!v)
            continue;
        if (weft__env_parse_u64(v, vars[i].suffix, &x) ||
            (vars[i].width == 4 && x > UINT32_MAX)) {
            if (!cfg->bad_env)
                cfg->bad_env = vars[i].name;
            continue;
        }
        char *field = (char *)cfg + vars[i].off;
        if (vars[i].width == 4)
            *(uint32_t *)field = (uint32_t)x;
        else
            *(size_t *)field = (size_t)x;
    }
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        const char *v = getenv(named[i].name);
        if (!v)
            continue;
        int k = 0;
        while (k < 4 && !(named[i].words[k] && !strcmp(v, named[i].words[k])))
            k++;
        if (k < 4)
            *(int *)((char *)cfg + named[i].off) = k;
        else if (!cfg->bad_env)
            cfg->bad_env = named[i].name;
    }
}

/* Every message names the field and its WEFT_* variable: a value that
 * parses but is out of range may have come from either (DESIGN.md §1). */
int weft__config_check(weft_config *c)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (c->bad_env)
        return weft__error_set(-EINVAL, "%s: cannot parse '%s'", c->bad_env,
                               getenv(c->bad_env) ? getenv(c->bad_env) : "");
    if (c->workers == 0) {
        /* Automatic: one per usable CPU, but no more than there are
         * leaves (a runtime with very few task slots still starts). An
         * explicit count that does not fit is an error below. */
        c->workers = weft__config_cpus();
        uint32_t leaves = weft__summary_leaves(c->max_tasks ? c->max_tasks : 1);
        if (c->workers > leaves)
            c->workers = leaves;
    }
    if (c->workers > WORKERS_LIMIT)
        return weft__error_set(-EINVAL, "workers (WEFT_WORKERS): %u exceeds %u",
                               c->workers, WORKERS_LIMIT);
    if (c->max_tasks < 1 || c->max_tasks > MAX_TASKS_LIMIT)
        return weft__error_set(-EINVAL,
                               "max_tasks (WEFT_MAX_TASKS): %u not in 1..%u",
                               c->max_tasks, MAX_TASKS_LIMIT);
    if (c->workers > weft__summary_leaves(c->max_tasks))
        return weft__error_set(
            -EINVAL,
            "workers (WEFT_WORKERS): %u exceeds leaf_count %u (each "
            "worker needs a leaf of 63 task slots)",
            c->workers, weft__summary_leaves(c->max_tasks));
    if (c->stack_size % page || c->stack_size < ((size_t)16 << 10) ||
        c->stack_size > ((size_t)1 << 30))
        return weft__error_set(
            -EINVAL,
            "stack_size (WEFT_STACK_SIZE): %zu is not a multiple of the "
            "page size in 16 KiB..1 GiB",
            c->stack_size);
    if (c->small_stack_size % 64 || c->small_stack_size < SMALL_STACK_MIN ||
        c->small_stack_size > c->stack_size)
        return weft__error_set(-EINVAL,
                               "small_stack_size (WEFT_SMALL_STACK_SIZE): %zu "
                               "is not a multiple of "
                               "64 in " SMALL_STACK_MIN_TEXT "..stack_size",
                               c->small_stack_size);
    if (c->balance != WEFT_BALANCE_STEAL && c->balance != WEFT_BALANCE_MESH)
        return weft__error_set(
            -EINVAL, "balance (WEFT_BALANCE): %d is not steal (0) or mesh (1)",
            c->balance);
    if (c->policy < WEFT_POLICY_BALANCED || c->policy > WEFT_POLICY_PERMISSIVE)
        return weft__error_set(-EINVAL,
                               "policy (WEFT_POLICY): %d is not a "
                               "WEFT_POLICY_* preset",
                               c->policy);
    if (c->fairness < -1 || c->fairness > WEFT_FAIR_STRICT)
        return weft__error_set(-EINVAL,
                               "fairness (WEFT_FAIRNESS): %d is not -1 or "
                               "a WEFT_FAIR_* rule",
                               c->fairness);
    if (c->preempt_all != 0 && c->preempt_all != 1)
        return weft__error_set(
            -EINVAL, "preempt_all (WEFT_PREEMPT_ALL): %d is not 0 or 1",
            c->preempt_all);
    if (c->dump_on_sigquit != 0 && c->dump_on_sigquit != 1)
        return weft__error_set(
            -EINVAL, "dump_on_sigquit (WEFT_SIGQUIT_DUMP): %d is not 0 or 1",
            c->dump_on_sigquit);
    if (c->blocking_threads < 1 || c->blocking_threads > 65536)
        return weft__error_set(-EINVAL,
                               "blocking_threads (WEFT_BLOCKING_THREADS): %u "
                               "not in 1..65536",
                               c->blocking_threads);
    if (c->io < WEFT_IO_EPOLL || c->io > WEFT_IO_URING)
        return weft__error_set(-EINVAL,
                               "io (WEFT_IO): %d is not epoll (0), auto (1) "
                               "or uring (2)",
                               c->io);
    if (c->trace_ring_mb > 4096)
        return weft__error_set(-EINVAL,
                               "trace_ring_mb (WEFT_TRACE_RING): %u not in "
                               "0..4096",
                               c->trace_ring_mb);
    if (c->trace && !*c->trace)
        return weft__error_set(-EINVAL, "trace (WEFT_TRACE): an empty path");
    if (c->pin != 0 && c->pin != 1)
        return weft__error_set(-EINVAL, "pin (WEFT_PIN): %d is not 0 or 1",
                               c->pin);
    if (c->huge_pages != 0 && c->huge_pages != 1)
        return weft__error_set(-EINVAL,
                               "huge_pages (WEFT_HUGE_PAGES): %d is not 0 or 1",
                               c->huge_pages);
    if (c->guard_pages != 0 && c->guard_pages != 1)
        return weft__error_set(
            -EINVAL, "guard_pages (WEFT_GUARD_PAGES): %d is not 0 or 1",
            c->guard_pages);
    /* Strides, not sizes: a paged small stack has a guard zone added. */
    if (weft__stacks_per_class(c) *
            (c->stack_size + weft__stack_stride(c->small_stack_size, 1, page)) >
        ARENA_LIMIT)
        return weft__error_set(
            -EINVAL,
            "max_tasks (WEFT_MAX_TASKS): %u stacks of %zu + %zu bytes "
            "exceed the 64 TiB arena limit",
            c->max_tasks, c->stack_size, c->small_stack_size);
    return 0;
}
