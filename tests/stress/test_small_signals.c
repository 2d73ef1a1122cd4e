/*
 * test_small_signals.c - the monitor's signals and 1 KiB stacks: tasks
 * parked on small stacks keep their frames while tasks on the stacks
 * above theirs are preempted and isolated again and again.
 *
 * Why. A signal's frame is 3-4 KiB on an AVX-512 machine. SIGURG was
 * delivered on the interrupted task's own stack, so a preemption or an
 * isolation request that reached a task on a 1 KiB stack (packed, canary
 * only) wrote its frame over the stacks below, which hold parked tasks'
 * saved frames: those crashed when resumed (bench memory, part
 * memory_million, about one run in two on a loaded machine; the monitor
 * signals long polls, and on a loaded machine polls look long). Now
 * every signal of weft's is delivered on the thread's signal stack and
 * a preempted task keeps that one (sched/sigstack.c).
 *
 * How. One worker, small stacks of 1 KiB (the minimum; ASan's frames
 * need 8 KiB, the ucontext switcher 4 KiB). PARKERS tasks take the low
 * stacks and park on an event, each holding a pattern in its frame; then
 * hogs on the stacks above them spin: preemptible ones, which the
 * monitor preempts for each other (work waits behind each), and a
 * stubborn one, which spins until it has been isolated (tiers lowered
 * so that it climbs on little CPU, as in test_preempt_stress.c). Each
 * hog checks a pattern of its own across its signals too. Then the parkers are woken and check
 * theirs. Without the fix the first signal to a hog overwrote the
 * parkers' frames and its own canary: an abort (canary overwritten) or a
 * SIGSEGV in a parker.
 *
 * Skipped under ThreadSanitizer (tests/preempt_util.h).
 */
#include <stdatomic.h>

#include "check.h"
#include "preempt_util.h"

#define MS 1000000ull
enum { PARKERS = 48, PREEMPTIBLE_HOGS = 3, ROUNDS = 3 };

static weft_event go;
static _Atomic int parked;

static uint64_t pattern(uintptr_t seed, int k)
{
    return (seed + 1) * 0x9e3779b97f4a7c15ull ^ (uint64_t)k << 56;
}

/* Holds a pattern in its frame across its park. 1 if it is intact. */
static void *parker(void *arg)
{
    volatile uint64_t keep[4];
    uintptr_t seed = (uintptr_t)arg;
    for (int k = 0; k < 4; k++)
        keep[k] = pattern(seed, k);
    atomic_fetch_add(&parked, 1);
    CHECK_OK(weft_event_wait(&go));
    int ok = 1;
    for (int k = 0; k < 4; k++)
        ok &= keep[k] == pattern(seed, k);
    return (void *)(uintptr_t)ok;
}

static weft_rt *the_rt;
static _Atomic int stop;

static uint64_t isolations(void)
{
    weft_stats st;
    CHECK_OK(weft_stats_get(the_rt, &st));
    return st.isolations;
}

/* Spins `ms` of wall time in its own code, where a signal may switch it
 * out (ms 0: until told to stop, 5 s at most); 1 if its frame's pattern
 * held. Nothing deep on a 1 KiB stack: no weft call in the loop but the
 * clock. */
static void *hog(void *arg)
{
    volatile uint64_t keep[4];
    uintptr_t ms = (uintptr_t)arg;
    for (int k = 0; k < 4; k++)
        keep[k] = pattern(ms, k);
    uint64_t t0 = weft_now_ns(), x = 0;
    while (ms ? weft_now_ns() - t0 < ms * MS
              : !atomic_load_explicit(&stop, memory_order_relaxed) &&
                    weft_now_ns() - t0 < 5000 * MS)
        for (int i = 0; i < 10000; i++)
            x = x * 6364136223846793005ull + 1442695040888963407ull;
    int ok = x != 1;
    for (int k = 0; k < 4; k++)
        ok &= keep[k] == pattern(ms, k);
    return (void *)(uintptr_t)ok;
}

static void *small_main(void *arg)
{
    (void)arg;
    weft_spawn_attr sa = WEFT_SPAWN_ATTR_INIT;
    sa.stack = WEFT_STACK_SMALL;
    weft_task p[PARKERS], h[PREEMPTIBLE_HOGS + 1];
    atomic_store(&parked, 0);
    CHECK_OK(weft_event_init(&go));
    for (int i = 0; i < PARKERS; i++)
        CHECK_OK(weft_spawn(NULL, &p[i], parker, (void *)(uintptr_t)i, &sa));
    while (atomic_load(&parked) < PARKERS)
        weft_yield();
    /* The hogs' stacks are above the parkers': a frame on a hog's stack
     * went down over theirs. */
    weft_spawn_attr pa = sa;
    pa.flags = WEFT_PREEMPTIBLE;
    for (int i = 0; i < PREEMPTIBLE_HOGS; i++)
        CHECK_OK(
            weft_spawn(NULL, &h[i], hog, (void *)(uintptr_t)(80 + i), &pa));
    /* The stubborn hog holds the only worker until it is isolated (on a
     * loaded machine its thread gets a share of a CPU, and it climbs the
     * tiers on CPU time); then this task runs again, on the worker's
     * new thread, and stops it. */
    atomic_store(&stop, 0);
    uint64_t iso0 = isolations();
    CHECK_OK(weft_spawn(NULL, &h[PREEMPTIBLE_HOGS], hog, NULL, &sa));
    uint64_t t0 = weft_now_ns();
    while (isolations() == iso0 && weft_now_ns() - t0 < 5000 * MS)
        weft_sleep_ns(MS);
    atomic_store(&stop, 1);
    for (int i = 0; i <= PREEMPTIBLE_HOGS; i++) {
        void *ok;
        CHECK_OK(weft_join(h[i], &ok));
        CHECK_EQ_INT((uintptr_t)ok, 1);
    }
    CHECK_OK(weft_event_set(&go));
    for (int i = 0; i < PARKERS; i++) {
        void *ok;
        CHECK_OK(weft_join(p[i], &ok));
        CHECK_EQ_INT((uintptr_t)ok, 1);
    }
    CHECK_OK(weft_event_destroy(&go));
    return NULL;
}

TEST_T(stress, small_stacks_keep_frames_through_signals, 120)
{
    skip_tsan();
    weft_config cfg;
    weft_config_default(&cfg);
    cfg.workers = 1;
    cfg.max_tasks = 256;
#ifdef WEFT_SWITCH_UCONTEXT
    cfg.small_stack_size = 4096; /* the ucontext switcher's minimum */
#else
    cfg.small_stack_size = TEST_ASAN ? 8192 : 1024;
#endif
    weft_rt *rt = test_rt_cfg(&cfg);
    the_rt = rt;
    weft_policy pol;
    CHECK_OK(weft_policy_get(rt, &pol));
    for (int t = WEFT_TIER_MONITOR; t < WEFT_TIER_ISOLATE; t++)
        pol.tier[t].promote_cpu_ms = 5 * (uint32_t)(t + 1);
    CHECK_OK(weft_policy_set(rt, &pol));
    for (int round = 0; round < ROUNDS; round++)
        test_run(rt, small_main, NULL);
    weft_stats st = test_stats(rt);
    /* Signals did reach tasks on small stacks. */
    CHECK_CMP_U64(st.preemptions, >=, 1);
    CHECK_CMP_U64(st.isolations, >=, 1);
    test_rt_destroy_clean(rt);
}
