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
 * The check runs on the monitor (sysmon.c) whenever it finds every worker
 * asleep. A suspect is a task whose state word is RUNNABLE while no
 * worker or isolation identity runs it and it is not a parent waiting on
 * an inline join. The monitor follows each suspect (weft__watchdog_look
 * says how) and reports one that has not run for the bound,
 * WEFT_WATCHDOG_MS (default 5000; 0 turns the check off), when it finds
 * every worker asleep again. Other tasks may run meanwhile: a task lost
 * while the rest of the runtime goes on (the soak found one) is caught as
 * well as one lost in a quiet runtime. The report names the task, its
 * state word, its summary-tree bits and every queue that holds it (read
 * racily: the workers are asleep).
 *
 * While the check is on, the monitor's sleep with no end (sysmon.c, deep
 * sleep) ends after the bound instead, so that it looks again; a kick
 * still wakes it at once. Release builds compile none of this.
 */
#include <stdio.h>
#include <stdlib.h>

#include "../base/check.h"
#include "../base/env.h"
#include "runtime.h"

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

/* Is slot a suspect now: RUNNABLE, run by no worker or isolation
 * identity, and not a parent waiting on an inline join (its child parked
 * with its frames: it stays RUNNABLE and is in no queue, by design). */
static int suspect(weft_rt *rt, uint32_t slot, uint64_t *state)
{
    uint64_t s = atomic_load_explicit(&rt->hot[slot].state, RLX);
    if (weft_ts_state(s) != WEFT_TS_RUNNABLE ||
        atomic_load_explicit(&rt->cold[slot].wait_kind, RLX) ==
            WEFT_WK_JOIN_INLINE ||
        weft__slot_running(rt, slot) != -1)
        return 0;
    *state = s;
    return 1;
}

/* Where slot is queued, as text into buf. It reads the workers' own
 * queues, which only their owners write: racily, on purpose (a report of
 * a lost task, not a decision), so ThreadSanitizer is told not to look;
 * the workers are asleep, bar the one in the poller. */
WEFT_NO_TSAN static void where(weft_rt *rt, uint32_t slot, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = '\0';
#define SAY(...)                                                               \
    do {                                                                       \
        if (k < n)                                                             \
            k += (size_t)snprintf(buf + k, n - k, __VA_ARGS__);                \
    } while (0)
    for (uint32_t i = 0; i < rt->nworkers + rt->nthr; i++) {
        /* The workers, then the isolation identities in use (as
         * nworkers + k). */
        weft_worker *w =
            i < rt->nworkers ? &rt->workers[i] : &rt->iso[i - rt->nworkers];
        if (i >= rt->nworkers && !atomic_load_explicit(&w->iso_busy, RLX))
            continue;
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
    uint32_t leaf = slot / WEFT_LEAF_SLOTS;
    SAY(" summary leaf %u %#llx, root %#llx, top %#llx", leaf,
        (unsigned long long)atomic_load_explicit(&rt->sum.leaf[leaf], RLX),
        (unsigned long long)atomic_load_explicit(&rt->sum.root[leaf / 64], RLX),
        (unsigned long long)atomic_load_explicit(&rt->sum.top[(leaf / 64) / 64],
                                                 RLX));
#undef SAY
}

/* The entry for slot, or a free one (slot1 0), or NULL when full. */
static weft_suspect *entry(weft_watchdog *wd, uint32_t slot)
{
    weft_suspect *free = NULL;
    for (int i = 0; i < WEFT_WATCHDOG_SUSPECTS; i++) {
        if (wd->s[i].slot1 == slot + 1)
            return &wd->s[i];
        if (!wd->s[i].slot1 && !free)
            free = &wd->s[i];
    }
    return free;
}

static weft_noreturn void report(weft_rt *rt, const weft_suspect *e,
                                 uint64_t now)
{
    char name[16], buf[512], evs[512];
    uint32_t slot = e->slot1 - 1;
    weft__task_name(rt, slot, name);
    where(rt, slot, buf, sizeof buf);
#ifdef WEFT_DEBUG
    weft__ev_text(rt, slot, evs, sizeof evs);
#else
    evs[0] = '\0';
#endif
    weft__die("watchdog",
              "task '%s' (slot %u, state 0x%lx, polls %lu) ready and not run "
              "for %lu ms, and now every worker sleeps (a lost wake-up):%s; "
              "its last events (sequence:event@calling worker->worker whose "
              "queue):%s",
              name, slot, (unsigned long)e->state, (unsigned long)e->polls,
              (unsigned long)((now - e->since) / MS), buf, evs);
}

/*
 * A suspect is followed by slot, state word and poll count: while all
 * three stay the same the task has not run (a run moves its poll count;
 * a park, an end or a new spawn in the slot moves its state word), even
 * if other tasks keep the workers busy in between. It is reported when
 * that has lasted the bound and, at this look, every worker sleeps: a
 * worker is then not merely busy elsewhere (a long poll, a strict band
 * order), and no queue holding the task is being looked at. A wake-up in
 * flight (a plain thread between setting RUNNABLE and waking a worker)
 * lasts microseconds, not the bound. Up to WEFT_WATCHDOG_SUSPECTS
 * are followed at once (the looks are made while every worker sleeps, so
 * few tasks are ready then). O(max_tasks) per look: a look is made at
 * most ten times per bound.
 */
void weft__watchdog_look(weft_rt *rt, weft_watchdog *wd, uint64_t now)
{
    uint64_t bound = weft__watchdog_bound_ns();
    if (!bound || now - wd->last < bound / 10)
        return;
    wd->last = now;
    /* Forget entries that are no longer the same suspect. */
    for (int i = 0; i < WEFT_WATCHDOG_SUSPECTS; i++) {
        weft_suspect *e = &wd->s[i];
        uint64_t s;
        if (e->slot1 && (!suspect(rt, e->slot1 - 1, &s) || s != e->state ||
                         weft__task_polls(&rt->hot[e->slot1 - 1]) != e->polls))
            e->slot1 = 0;
    }
    for (uint32_t slot = 0; slot < rt->cfg.max_tasks; slot++) {
        uint64_t s;
        if (!suspect(rt, slot, &s))
            continue;
        weft_suspect *e = entry(wd, slot);
        if (!e)
            break; /* full: the followed ones are checked below */
        if (!e->slot1)
            *e = (weft_suspect){slot + 1, s, weft__task_polls(&rt->hot[slot]),
                                now};
    }
    /* Acquire: pairs with each sleeper's acq_rel RMW on idle (idle.c), so
     * what the workers wrote before they slept is seen below. */
    if (atomic_load_explicit(&rt->idle, memory_order_acquire) != rt->nworkers)
        return;
    for (int i = 0; i < WEFT_WATCHDOG_SUSPECTS; i++)
        if (wd->s[i].slot1 && now - wd->s[i].since >= bound)
            report(rt, &wd->s[i], now);
}

/* ---- the event rings (evtrace.h) ----------------------------------------- */

#ifdef WEFT_DEBUG
static _Atomic uint64_t ev_seq;

static unsigned ev_who(const weft_rt *rt, const weft_worker *w)
{
    return !w || w->rt != rt ? 255 : w->iso_of ? 100 + w->id : w->id;
}

void weft__ev(weft_rt *rt, uint32_t slot, unsigned ev, const weft_worker *q)
{
    unsigned who = ev_who(rt, weft__worker_self());
    unsigned tgt = q ? ev_who(rt, q) : 254;
    weft_evring *r = &rt->evr[slot];
    uint64_t seq = atomic_fetch_add_explicit(&ev_seq, 1, RLX);
    uint32_t i = atomic_fetch_add_explicit(&r->n, 1, RLX);
    atomic_store_explicit(&r->ev[i % WEFT_EV_RING],
                          seq << 24 | (uint64_t)(who & 0xff) << 16 |
                              (uint64_t)(tgt & 0xff) << 8 | ev,
                          RLX);
}

void weft__ev_text(weft_rt *rt, uint32_t slot, char *buf, unsigned n)
{
    static const char *const names[WEFT_EV_COUNT] = {
        "?",      "lifo",     "dq",        "bdq",     "yq",      "byq",
        "sig",    "sumtake",  "inj",       "injtake", "stolen",  "in",
        "parked", "parkwake", "parkshort", "unpark",  "wakebit", "inline",
        "dead",   "mail",     "out"};
    weft_evring *r = &rt->evr[slot];
    uint32_t end = atomic_load_explicit(&r->n, RLX);
    uint32_t start = end > WEFT_EV_RING ? end - WEFT_EV_RING : 0;
    unsigned k = 0;
    buf[0] = '\0';
    for (uint32_t i = start; i < end && k < n; i++) {
        uint64_t e = atomic_load_explicit(&r->ev[i % WEFT_EV_RING], RLX);
        unsigned ev = (unsigned)(e & 0xff), tgt = (unsigned)(e >> 8 & 0xff),
                 who = (unsigned)(e >> 16 & 0xff);
        k += (unsigned)snprintf(buf + k, n - k, " %llu:%s@%u",
                                (unsigned long long)(e >> 24),
                                ev < WEFT_EV_COUNT ? names[ev] : "?", who);
        if (tgt != 254 && k < n)
            k += (unsigned)snprintf(buf + k, n - k, "->%u", tgt);
    }
}
#endif
