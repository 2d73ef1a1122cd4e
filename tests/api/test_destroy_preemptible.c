/*
 * test_destroy_preemptible.c - weft_rt_shutdown and weft_rt_destroy
 * return while preemptible tasks spin forever without calling weft.
 *
 * Why. The destroy stops the monitor first (it signals worker threads,
 * which must exist), then waits for each worker to stop at its next
 * switch. A preemptible task that never calls weft switches only when
 * the monitor preempts it: with the monitor gone, the destroy waited
 * forever (found by a program written from weft.h: 2 endless
 * preemptible tasks on one worker, 3 hangs in 3 runs). Now the
 * destroyer preempts them itself (sysmon.c, stop_preemptible).
 *
 * Skipped under ThreadSanitizer (tests/preempt_util.h).
 */
#include <stdatomic.h>
#include <unistd.h>

#include "check.h"
#include "preempt_util.h"

static void *endless(void *arg)
{
    volatile uint64_t x = (uintptr_t)arg;
    for (;;)
        x = x * 3 + 1;
    return NULL;
}

static void destroy_with_hogs(unsigned workers, int hogs)
{
    skip_tsan();
    weft_config cfg;
    weft_config_default(&cfg);
    cfg.workers = workers;
    cfg.max_tasks = 256;
    weft_rt *rt = NULL;
    CHECK_OK(weft_rt_create(&rt, &cfg));
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.flags = WEFT_PREEMPTIBLE | WEFT_DETACHED;
    for (int i = 0; i < hogs; i++)
        CHECK_OK(weft_spawn(rt, NULL, endless, (void *)(uintptr_t)(i + 1), &a));
    usleep(200 * 1000);
    weft_stats st;
    CHECK_OK(weft_stats_get(rt, &st));
    CHECK_CMP_U64(st.preemptions, >=, 1);
    uint64_t t0 = weft_now_ns();
    CHECK_OK(weft_rt_shutdown(rt));
    CHECK_OK(weft_rt_destroy(rt));
    /* Each is preempted within a few of the destroyer's 1 ms rounds. */
    CHECK_CMP_U64(weft_now_ns() - t0, <, 5000000000ull);
}

TEST_T(api, destroy_returns_with_preemptible_hogs_one_worker, 60)
{
    destroy_with_hogs(1, 2);
}

TEST_T(api, destroy_returns_with_preemptible_hogs_two_workers, 60)
{
    destroy_with_hogs(2, 16);
}
