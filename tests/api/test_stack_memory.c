/*
 * test_stack_memory.c - stacks above stack_keep go back to the kernel,
 * and weft_stats says how many stay resident. Measured as a user would:
 * the process's anonymous resident set (/proc/self/status) around 50,000
 * small-stack tasks that all ran (and were live at once), then ended.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "check.h"

enum { MEM_TASKS = 50000 };

/* RssAnon in bytes: stacks are anonymous memory; file pages (the test
 * binary, libraries) would only add noise. */
static long long rss_anon(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    CHECK_NOT_NULL(f);
    char line[256];
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "RssAnon: %lld kB", &kb) == 1)
            break;
    fclose(f);
    CHECK_CMP_INT(kb, >=, 0);
    return kb * 1024;
}

typedef struct mem_run {
    weft_event go;
    _Atomic uint32_t parked;
    weft_task t[MEM_TASKS];
    long long live; /* RssAnon with every task parked */
} mem_run;

static void *parks(void *arg)
{
    mem_run *m = arg;
    volatile unsigned char buf[256]; /* a frame of real use */
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)i;
    atomic_fetch_add_explicit(&m->parked, 1, memory_order_relaxed);
    CHECK_OK(weft_event_wait(&m->go));
    return (void *)(uintptr_t)(buf[7] + 1);
}

static void *spawn_all(void *arg)
{
    mem_run *m = arg;
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.stack = WEFT_STACK_SMALL;
    for (uint32_t i = 0; i < MEM_TASKS; i++) {
        CHECK_OK(weft_spawn(NULL, &m->t[i], parks, m, &a));
        if (i % 64 == 63)
            weft_yield();
    }
    /* Every task has run (and bound a stack of its own) once parked. */
    while (atomic_load_explicit(&m->parked, memory_order_relaxed) < MEM_TASKS)
        weft_yield();
    m->live = rss_anon();
    CHECK_OK(weft_event_set(&m->go));
    for (uint32_t i = 0; i < MEM_TASKS; i++) {
        void *r;
        CHECK_OK(weft_join(m->t[i], &r));
        CHECK_EQ_PTR(r, (void *)8);
    }
    return NULL;
}

/* One runtime with these small stacks and stack_keep: the stacks' memory
 * left resident after MEM_TASKS tasks ended (RssAnon growth minus the
 * slots' metadata), and the stats then. */
static long long kept_after(size_t small, size_t keep, weft_stats *st,
                            long long *grown)
{
    /* Normal pages only: the metadata's transparent huge pages would move
     * the resident set in 2 MiB steps, half the figure measured here. */
    CHECK_OK(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0));
    weft_config c;
    weft_config_default(&c);
    c.max_tasks = 65536;
    c.workers = 2;
    c.small_stack_size = small;
    c.stack_keep = keep;
    weft_rt *rt = test_rt_cfg(&c);
    /* No SIGURG from the monitor: an isolation would hand a worker to a
     * spare thread while memory is measured. (Its frame no longer lands
     * on a task's stack: sched/sigstack.c.) Polls here are long only
     * when the machine is busy. */
    test_policy_no_signals(rt);
    mem_run *m = calloc(1, sizeof *m);
    CHECK_NOT_NULL(m);
    CHECK_OK(weft_event_init(&m->go));
    long long r0 = rss_anon();
    test_run(rt, spawn_all, m);
    long long r1 = rss_anon();
    *st = test_stats(rt);
    /* Every stack was live at once, each one page (the task's frames and
     * task-local values fit in its top page), so the metadata of the
     * slots is what the live figure holds beyond them. */
    long long meta = m->live - r0 - (long long)MEM_TASKS * 4096;
    long long kept = r1 - r0 - meta;
    fprintf(stderr,
            "small %zu, keep %zu: RssAnon +%lld kB live, +%lld kB after "
            "(%lld B per ended task); metadata %lld kB, stacks %lld kB; "
            "stacks_released %" PRIu64 ", stacks_resident %" PRIu64 "\n",
            small, keep, (m->live - r0) >> 10, (r1 - r0) >> 10,
            (r1 - r0) / MEM_TASKS, meta >> 10, kept >> 10, st->stacks_released,
            st->stacks_resident);
    *grown = r1 - r0;
    CHECK_OK(weft_event_destroy(&m->go));
    free(m);
    test_rt_destroy_clean(rt);
    return kept;
}

static void ended_tasks_release(size_t small)
{
    const size_t keep = 1024, slack = 2 * 8; /* the workers' stack caches */
    if (TEST_SANITIZED) /* shadow memory and bigger frames */
        TEST_SKIP("RssAnon under a sanitizer is not the runtime's");
    weft_stats st0, st;
    long long grown0, grown;
    /* Keeping no stack: an ended task leaves only its slot's metadata
     * (about 130 bytes), no page of its stack. */
    long long base = kept_after(small, 0, &st0, &grown0);
    CHECK_CMP_U64(st0.stacks_resident, <=, slack + 1);
    CHECK_CMP_INT(grown0 / MEM_TASKS, <, 512);
    /* Keeping stack_keep stacks; less what the join phase itself adds
     * (queue links, wake-up records: about 350 kB), measured above. */
    long long kept = kept_after(small, keep, &st, &grown);
    /* Each figure is measured twice and the smaller kept: resident
     * memory that is not the kept stacks' only adds (the chaos build's
     * stalls, seed 601: 480 kB more in one run of the 1,024 kept stacks,
     * stacks_resident still 1,024; CI's mesh-mode tree once: 4,776 kB of
     * stack pages for 1,025 resident stacks, one page over the bound,
     * where 4,292-4,296 kB is usual), and stacks kept for real are in
     * both runs. */
    for (int rep = 1; rep < 2; rep++) {
        weft_stats s2;
        long long g2, b2 = kept_after(small, 0, &s2, &g2);
        CHECK_CMP_U64(s2.stacks_resident, <=, slack + 1);
        base = b2 < base ? b2 : base;
        long long k2 = kept_after(small, keep, &s2, &g2);
        CHECK_CMP_U64(s2.stacks_resident, <=, keep + slack + 1);
        kept = k2 < kept ? k2 : kept;
    }
    kept -= base;
    /* Every stack beyond stack_keep was given back, and what the stats
     * say is resident is what is: within 10% of stack_keep stacks. */
    CHECK_CMP_U64(st.stacks_resident, <=, keep + slack + 1);
    CHECK_CMP_U64(st.stacks_released, >=, MEM_TASKS - keep - slack - 1);
    CHECK_CMP_INT(kept, <=, (long long)keep * 4096 * 11 / 10);
    CHECK_CMP_INT(kept, >=, (long long)keep * 4096 / 2); /* kept for real */
}

/* Each stack one page: before, none was ever given back (4.2 KB of
 * RssAnon per ended task, stacks_released 0). */
TEST_T(api, stack_memory_small_4k_released, 120)
{
#ifdef WEFT_SWITCH_UCONTEXT
    /* swapcontext's frames need more than one page: the smallest stack
     * that runs these tasks there is two (each still one page resident). */
    ended_tasks_release(8192);
#else
    /* The chaos build's stall points call into libc (sched_yield) from
     * any ordered atomic, deep in weft: more than a page, as above. */
    ended_tasks_release(TEST_CHAOS ? 8192 : 4096);
#endif
}

/* Before, each released stack kept its bottom page, which the canary
 * reads had faulted in. */
TEST_T(api, stack_memory_small_16k_released, 120)
{
    ended_tasks_release(16 << 10);
}
