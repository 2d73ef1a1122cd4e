/*
 * watchdog.c - in WEFT_DEBUG builds, a task that is ready but not run
 * while every worker sleeps is reported and the process aborts, instead
 * of hanging silently until a test's or CI's timeout.
 *
 * A scheduler's worst bug is a lost wake-up: a task made RUNNABLE (queued
 * in a deque, a LIFO slot, a yield or band queue, the injection queue, a
 * mailbox, or signalled through the summary tree) while every worker goes
 * to sleep without seeing it. Nothing then runs it, and nothing says so.
 *
 * The check runs on the monitor (sysmon.c) while every worker sleeps and
 * no task has switched in since its last look. A suspect is a task whose
 * state word is RUNNABLE while no worker or isolation identity runs it
 * and it is not a parent waiting on an inline join (its child parked with
 * its frames: it stays RUNNABLE and is in no queue, by design). A suspect
 * is reported only when the same task (slot and generation) is still one
 * after the bound, with no switch anywhere in between: a wake-up in
 * flight (a plain thread between setting RUNNABLE and waking a worker)
 * lasts microseconds. The bound is WEFT_WATCHDOG_MS (default 5000; 0
 * turns the check off). The report names the task, its state word, its
 * summary-tree bits and every queue that holds it (read racily: the
 * workers are asleep).
 *
 * While the check is on, the monitor's sleep with no end (sysmon.c, deep
 * sleep) ends after the bound instead, so that it looks again; a kick
 * still wakes it at once. Release builds compile none of this.
 */
#include <stdio.h>
#include <stdlib.h>

#include "../base/check.h"
#include "../base/env.h"
#include "sched.h"

#define RLX memory_order_relaxed
#define MS 1000000ull

uint64_t weft__watchdog_bound_ns(void)
{
#ifdef WEFT_DEBUG
    static _Atomic uint64_t bound; /* ns + 1 once read; 0 not yet */
    uint64_t b = atomic_load_explicit(&bound, RLX);
    if (!b) {
        uint64_t ms = 5000;
        const char *s = getenv("WEFT_WATCHDOG_MS");
        if (s && weft__env_parse_u64(s, 0, &ms))
            ms = 5000;
        b = ms * MS + 1;
        atomic_store_explicit(&bound, b, RLX);
    }
    return b - 1;
#else
    return 0;
#endif
}

/* The first suspect from slot `from` on, as slot + 1, or 0. */
static uint32_t suspect(weft_rt *rt, uint32_t from, uint64_t *state)
{
    for (uint32_t slot = from; slot < rt->cfg.max_tasks; slot++) {
        uint64_t s = atomic_load_explicit(&rt->hot[slot].state, RLX);
        if (weft_ts_state(s) != WEFT_TS_RUNNABLE ||
            atomic_load_explicit(&rt->cold[slot].wait_kind, RLX) ==
                WEFT_WK_JOIN_INLINE ||
            weft__slot_running(rt, slot) != -1)
            continue;
        *state = s;
        return slot + 1;
    }
    return 0;
}

/* Where slot is queued, as text into buf. */
static void where(weft_rt *rt, uint32_t slot, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = '\0';
#define SAY(...)                                                               \
    do {                                                                       \
        if (k < n)                                                             \
            k += (size_t)snprintf(buf + k, n - k, __VA_ARGS__);                \
    } while (0)
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        weft_worker *w = &rt->workers[i];
        if (w->lifo == slot + 1)
            SAY(" worker %u's LIFO slot;", i);
        weft_deque *dqs[WEFT_BANDS];
        dqs[0] = &w->dq;
        for (int b = 0; b < WEFT_BANDS - 1; b++)
            dqs[b + 1] = &w->bdq[b];
        for (int d = 0; d < WEFT_BANDS; d++) {
            int64_t t = atomic_load_explicit(&dqs[d]->top, RLX);
            int64_t bt = atomic_load_explicit(&dqs[d]->bottom, RLX);
            for (int64_t j = t; j < bt && j - t < WEFT_DEQUE_CAP; j++)
                if (atomic_load_explicit(&dqs[d]->buf[j & (WEFT_DEQUE_CAP - 1)],
                                         RLX) == slot)
                    SAY(" worker %u's %s deque;", i, d ? "band" : "normal");
        }
        uint32_t heads[1 + WEFT_BANDS];
        heads[0] = w->yq.head;
        for (int b = 0; b < WEFT_BANDS; b++)
            heads[b + 1] = w->byq[b].head;
        for (int h = 0; h < 1 + WEFT_BANDS; h++)
            for (uint32_t x = heads[h], steps = 0;
                 x && steps < rt->cfg.max_tasks; steps++) {
                if (x == slot + 1)
                    SAY(" worker %u's %s yield queue;", i,
                        h ? "band" : "normal");
                x = atomic_load_explicit(&rt->link[x - 1], RLX);
            }
    }
    if (atomic_load_explicit(&rt->inject.len, RLX))
        SAY(" the injection queue holds %llu;",
            (unsigned long long)atomic_load_explicit(&rt->inject.len, RLX));
    uint32_t leaf = slot / 64;
    SAY(" summary leaf %u %#llx, root %#llx, top %#llx", leaf,
        (unsigned long long)atomic_load_explicit(&rt->sum.leaf[leaf], RLX),
        (unsigned long long)atomic_load_explicit(&rt->sum.root[leaf / 64], RLX),
        (unsigned long long)atomic_load_explicit(&rt->sum.top[(leaf / 64) / 64],
                                                 RLX));
#undef SAY
}

void weft__watchdog_look(weft_rt *rt, weft_watchdog *wd, uint64_t now,
                         uint64_t switches)
{
    uint64_t bound = weft__watchdog_bound_ns();
    if (!bound)
        return;
    uint64_t s = 0;
    uint32_t got = suspect(rt, 0, &s);
    if (!got || switches != wd->switches || got != wd->slot1 ||
        s != wd->state) {
        /* Nothing, or something new: start over. */
        wd->slot1 = got;
        wd->state = s;
        wd->since = now;
        wd->switches = switches;
        return;
    }
    if (now - wd->since < bound ||
        atomic_load_explicit(&rt->idle, RLX) != rt->nworkers)
        return;
    char name[16], buf[512];
    weft__name_get(&rt->cold[got - 1], name);
    where(rt, got - 1, buf, sizeof buf);
    weft__die("watchdog",
              "task '%s' (slot %u, state 0x%lx) ready for %lu ms while "
              "every worker sleeps (a lost wake-up):%s",
              name, got - 1, (unsigned long)s,
              (unsigned long)((now - wd->since) / MS), buf);
}
