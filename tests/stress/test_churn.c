/*
 * test_churn.c - a million spawn/finish cycles with no memory growth after
 * the first pass: stacks are reused hot-first, nothing is allocated per
 * task, and guard pages are not re-created (the map count stays put).
 *
 * Pass 1 (10^5 cycles) warms everything up; pass 2 (9 x 10^5) must leave
 * VmSize and the number of mappings exactly where pass 1 left them, and
 * VmRSS within a small bound. Sanitizer builds run the same counts (about
 * ten seconds under TSan); their RSS bound is looser because the
 * sanitizers' own bookkeeping (TSan's shadow and trace memory, ASan's
 * quarantine) grows with the number of operations.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "check.h"

enum { BATCH = 32 };

typedef struct mem {
    uint64_t vm_kib, rss_kib, maps;
} mem;

static uint64_t status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    CHECK_NOT_NULL(f);
    char line[256];
    uint64_t v = 0;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':')
            v = strtoull(line + n + 1, NULL, 10);
    fclose(f);
    return v;
}

static uint64_t map_count(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    CHECK_NOT_NULL(f);
    uint64_t n = 0;
    int c;
    while ((c = getc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static mem measure(void)
{
    mem m = {status_kib("VmSize"), status_kib("VmRSS"), map_count()};
    return m;
}

static _Atomic uint64_t result_sum;

static void *leaf(void *arg)
{
    uintptr_t v = (uintptr_t)arg;
    if (v % 7 == 0)
        weft_yield();
    return (void *)(v ^ 0x5a5a);
}

/* cycles spawn/finish cycles: alternately one at a time (spawn, join)
 * and BATCH in flight, mixing stack classes and detached tasks. */
static void *churn(void *arg)
{
    uint64_t cycles = (uint64_t)(uintptr_t)arg, done = 0, sum = 0;
    weft_task t[BATCH];
    weft_spawn_attr small = WEFT_SPAWN_ATTR_INIT;
    small.stack = WEFT_STACK_SMALL;
    weft_spawn_attr det = WEFT_SPAWN_ATTR_INIT;
    det.flags = WEFT_DETACHED;
    while (done < cycles) {
        for (int i = 0; i < BATCH; i++) {
            void *r;
            uintptr_t v = done + (uintptr_t)i;
            CHECK_OK(weft_spawn(NULL, &t[0], leaf, (void *)v,
                                i % 2 ? &small : NULL));
            CHECK_OK(weft_join(t[0], &r));
            CHECK_EQ_U64((uintptr_t)r, v ^ 0x5a5a);
            sum += (uintptr_t)r;
        }
        for (int i = 0; i < BATCH; i++) {
            uintptr_t v = done + BATCH + (uintptr_t)i;
            if (i % 8 == 7) {
                CHECK_OK(weft_spawn(NULL, NULL, leaf, (void *)v, &det));
                sum += v ^ 0x5a5a; /* counted as if joined */
            } else {
                CHECK_OK(weft_spawn(NULL, &t[i], leaf, (void *)v,
                                    i % 3 ? NULL : &small));
            }
        }
        for (int i = 0; i < BATCH; i++) {
            if (i % 8 == 7)
                continue;
            void *r;
            CHECK_OK(weft_join(t[i], &r));
            CHECK_EQ_U64((uintptr_t)r, (done + BATCH + (uintptr_t)i) ^ 0x5a5a);
            sum += (uintptr_t)r;
        }
        done += 2 * BATCH;
    }
    atomic_fetch_add(&result_sum, sum);
    return (void *)(uintptr_t)done;
}

static uint64_t expected_sum(uint64_t cycles)
{
    uint64_t s = 0;
    for (uint64_t v = 0; v < cycles; v++)
        s += v ^ 0x5a5a;
    return s;
}

static void churn_million(unsigned workers)
{
    const uint64_t first = 100000, total = 1000000;
    weft_rt *rt = test_rt_workers(4096, workers);
    uint64_t done1 =
        (uint64_t)(uintptr_t)test_run(rt, churn, (void *)(uintptr_t)first);
    test_wait_live(rt, 0, 10000);
    mem m1 = measure();
    uint64_t done2 = (uint64_t)(uintptr_t)test_run(
        rt, churn, (void *)(uintptr_t)(total - done1));
    test_wait_live(rt, 0, 10000);
    mem m2 = measure();
    CHECK_CMP_U64(done1 + done2, >=, total);

    /* The sum of every result proves each task ran once, with its own
     * argument (provenance); cycles are numbered from 0 in each pass. */
    CHECK_EQ_U64(atomic_load(&result_sum),
                 expected_sum(done1) + expected_sum(done2));
    weft_stats st = test_stats(rt);
    CHECK_EQ_U64(st.spawns, done1 + done2 + 2);
    CHECK_EQ_U64(st.finishes, st.spawns);
    /* Hot-first reuse: only about a batch of stacks was ever touched. */
    CHECK_CMP_U64(st.stacks_resident, <=, 4 * BATCH);

    /* On one worker the same stacks come back in the same order, so not
     * even a guard page is added after the first pass. With several, how
     * many stacks are in use at the peak depends on timing, and a stack
     * used for the first time gets a guard page (two more mappings): the
     * map count may grow by that, the address space may not. */
    if (workers == 1)
        CHECK_EQ_U64(m2.maps, m1.maps);
    else
        CHECK_CMP_U64(m2.maps, <=, m1.maps + 2 * 4 * BATCH);
    /* weft maps nothing after the first pass; a sanitizer's runtime maps
     * metadata of its own for addresses it meets for the first time,
     * which several workers reach in a timing-dependent order. */
    if (workers == 1 || !TEST_SANITIZED)
        CHECK_EQ_U64(m2.vm_kib, m1.vm_kib);
    else
        CHECK_CMP_U64(m2.vm_kib, <=, m1.vm_kib + 64 * 1024);
    uint64_t rss_slack = TEST_SANITIZED ? 64 * 1024 : 1024; /* KiB */
    CHECK_CMP_U64(m2.rss_kib, <=, m1.rss_kib + rss_slack);
    test_rt_destroy_clean(rt);
}

TEST_T(stress, churn_million_no_memory_growth, 30)
{
    churn_million(1);
}

TEST_T(stress, churn_million_all_workers, 30)
{
    churn_million(0);
}
