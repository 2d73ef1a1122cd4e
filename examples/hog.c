/*
 * hog.c - what weft does about a task that will not yield. One worker
 * runs a ticker (sleeps 1 ms, counts) beside two hogs that compute for
 * 300 ms without a single weft call: one spawned WEFT_PREEMPTIBLE, which
 * the monitor preempts whenever the ticker's timer has waited close to
 * the latency target, and one that is not, which climbs the intervention
 * tiers (the warn callback reports each step) until its worker is handed
 * to a spare thread. Meanwhile weft_dump shows every task: the hog
 * running, the ticker parked in its sleep, main parked in a join.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "weft.h"

static _Atomic int stop;
static _Atomic long ticks;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *ticker(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        weft_sleep_ns(1000000);
        atomic_fetch_add(&ticks, 1);
    }
    return NULL;
}

static void *hog(void *arg)
{
    (void)arg;
    uint64_t t0 = now_ns(), x = 1;
    while (now_ns() - t0 < 300000000u)
        for (int i = 0; i < 10000; i++)
            x = x * 6364136223846793005u + 1442695040888963407u;
    return (void *)(uintptr_t)(x & 1);
}

static void on_warn(void *arg, weft_task t, const char *name, uint64_t ns)
{
    (void)arg;
    weft_task_info ti;
    int tier = weft_task_info_get(t, &ti) == 0 ? ti.tier : -1;
    printf("warned: task '%s' has run %.1f ms without yielding (tier %d)\n",
           name, (double)ns / 1e6, tier);
}

static void *run_hog(const char *name, unsigned flags)
{
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.name = name;
    a.flags = flags;
    weft_task h;
    long before = atomic_load(&ticks);
    if (weft_spawn(NULL, &h, hog, NULL, &a))
        return (void *)-1;
    weft_yield(); /* the hog takes the worker */
    weft_join(h, NULL);
    printf("%s: the ticker ticked %ld times during its 300 ms\n", name,
           atomic_load(&ticks) - before);
    return NULL;
}

static void *dumper(void *arg)
{
    weft_rt *rt = arg;
    weft_sleep_ns(150000000);
    weft_dump(rt, stdout);
    return NULL;
}

static void *main_task(void *arg)
{
    weft_rt *rt = arg;
    weft_spawn_attr ta = WEFT_SPAWN_ATTR_INIT;
    ta.name = "ticker";
    weft_task t;
    if (weft_spawn(NULL, &t, ticker, NULL, &ta))
        return (void *)-1;
    weft_yield();
    run_hog("preemptible", WEFT_PREEMPTIBLE);
    weft_task d;
    weft_spawn(NULL, &d, dumper, rt, NULL); /* dumps halfway through */
    run_hog("stubborn", 0);
    weft_join(d, NULL);
    atomic_store(&stop, 1);
    weft_join(t, NULL);
    return NULL;
}

int main(void)
{
    weft_config cfg;
    weft_config_default(&cfg);
    cfg.workers = 1;
    weft_rt *rt;
    int err = weft_rt_create(&rt, &cfg);
    if (err) {
        fprintf(stderr, "%s: %s\n", weft_strerror(err), weft_last_error());
        return 1;
    }
    weft_set_warn_callback(rt, on_warn, NULL);
    weft_rt_run(rt, main_task, rt, NULL);
    weft_stats st;
    weft_stats_get(rt, &st);
    printf("preemptions %llu, isolations %llu, violations %llu\n",
           (unsigned long long)st.preemptions,
           (unsigned long long)st.isolations,
           (unsigned long long)st.violations);
    return weft_rt_destroy(rt);
}
