/*
 * stats.c - weft_stats_get, weft_stats_worker, weft_stats_reset.
 *
 * The counters are per worker (sched.h, weft_wstats) and written only by
 * their worker, as a relaxed load and store: no atomic RMW on the hot
 * path, and no false sharing, since each worker's counters sit on its own
 * lines. A snapshot sums them with relaxed loads, so it may be slightly
 * stale and its fields need not be mutually consistent while tasks run;
 * at quiescence it is exact. Work done by plain threads (spawns, wakes)
 * goes to the runtime's own relaxed atomics (ext_*), counted with an RMW
 * since any thread may write them.
 *
 * Derived figures. polls (runs of a task between two switches) = switches
 * into tasks (the yield fast path's included) + joins that ran a child
 * inline: every spawned task is polled at least once before it ends, so
 * at quiescence polls >= spawns. Busy and idle time: a worker reads the
 * clock only around its sleep (sched/idle.c) and adds the time to
 * idle_ns; while it sleeps, sleep_since says since when. Idle time is
 * then idle_ns plus the current sleep, and busy time is the wall time
 * since the worker started minus idle time, computed here, so the switch
 * path never reads the clock for it.
 *
 * Reset. Since only the owner may write its counters (another writer would
 * race its load-and-store), weft_stats_reset does not zero them: it saves
 * a baseline (rt->obs_base, one weft_stats per worker plus one for the
 * plain threads' share) that later snapshots subtract, under obs_lock, a
 * spin lock taken only here and by weft_dump. Subtraction saturates at 0,
 * because a racy snapshot may read a counter a little behind its baseline.
 * Gauges (live, stacks_*, guard_*, huge_pages, workers,
 * blocking_threads) are states,
 * not counters, and are never reset; live is always counted from the
 * runtime's start.
 */
#include <errno.h>
#include <string.h>

#include "../base/clock.h"
#include "../base/spin.h"
#include "../io/blocking.h"
#include "obs.h"

#define RLX memory_order_relaxed

/* The counters of weft_stats that start over at a reset. */
#define COUNTERS(X)                                                            \
    X(spawns)                                                                  \
    X(finishes)                                                                \
    X(switches)                                                                \
    X(yields)                                                                  \
    X(parks)                                                                   \
    X(steals)                                                                  \
    X(steal_attempts)                                                          \
    X(inlined)                                                                 \
    X(forks)                                                                   \
    X(forks_stolen)                                                            \
    X(deflected)                                                               \
    X(mail_chunks)                                                             \
    X(polls)                                                                   \
    X(wakes)                                                                   \
    X(slow_polls)                                                              \
    X(violations)                                                              \
    X(preemptions)                                                             \
    X(busy_ns)                                                                 \
    X(idle_ns)                                                                 \
    X(isolations)                                                              \
    X(io_waits)                                                                \
    X(io_events)                                                               \
    X(io_polls)                                                                \
    X(io_blocking_polls)                                                       \
    X(blocking_calls)                                                          \
    X(io_uring_ops)

static inline uint64_t ld(_Atomic uint64_t *p)
{
    return atomic_load_explicit(p, RLX);
}

static void sub_base(weft_stats *o, const weft_stats *b)
{
#define SUB(f) o->f = o->f > b->f ? o->f - b->f : 0;
    COUNTERS(SUB)
#undef SUB
}

static void add(weft_stats *t, const weft_stats *o)
{
#define ADD(f) t->f += o->f;
    COUNTERS(ADD)
#undef ADD
}

/* Worker w's counters since it started. */
static void worker_raw(weft_worker *w, uint64_t now, weft_stats *o)
{
    weft_wstats *s = &w->st;
    memset(o, 0, sizeof *o);
    uint64_t fast = ld(&s->fast_yields); /* each is a switch and a yield */
    o->spawns = ld(&s->spawns);
    o->finishes = ld(&s->finishes);
    o->switches = ld(&s->switches) + fast;
    o->yields = ld(&s->yields) + fast;
    o->parks = ld(&s->parks);
    o->steals = ld(&s->steals);
    o->steal_attempts = ld(&s->steal_attempts);
    o->inlined = ld(&s->inlined);
    o->forks = ld(&s->forks);
    o->forks_stolen = ld(&s->forks_stolen);
    o->deflected = ld(&s->deflected);
    o->mail_chunks = ld(&s->mail_in);
    o->polls = o->switches + o->inlined;
    o->wakes = ld(&s->wakes);
    o->slow_polls = ld(&s->slow_polls);
    o->violations = ld(&s->violations);
    o->preemptions = ld(&s->preemptions);
    o->io_uring_ops = ld(&s->uring_ops);
    uint64_t idle = ld(&s->idle_ns);
    uint64_t since = atomic_load_explicit(&w->sleep_since, RLX);
    if (since && now > since)
        idle += now - since; /* asleep now: the current sleep so far */
    uint64_t total = now > w->start_ns ? now - w->start_ns : 0;
    if (idle > total)
        idle = total;
    o->idle_ns = idle;
    o->busy_ns = total - idle;
}

/* The plain threads' share since the runtime started. */
static void ext_raw(weft_rt *rt, weft_stats *o)
{
    memset(o, 0, sizeof *o);
    o->spawns = ld(&rt->ext_spawns);
    o->wakes = ld(&rt->ext_wakes);
    o->isolations = ld(&rt->isolations);
    o->io_waits = ld(&rt->poller.waits);
    o->io_events = ld(&rt->poller.events);
    o->io_polls = ld(&rt->poller.polls);
    o->io_blocking_polls = ld(&rt->poller.blocking_polls);
    uint64_t threads;
    weft__blocking_stats(rt, &o->blocking_calls, &threads);
}

uint64_t weft__obs_live(weft_rt *rt)
{
    uint64_t spawned = ld(&rt->ext_spawns), reaped = ld(&rt->ext_reaps);
    for (unsigned i = 0; i < rt->nworkers + rt->nthr; i++) {
        weft_worker *w =
            i < rt->nworkers ? &rt->workers[i] : &rt->iso[i - rt->nworkers];
        spawned += ld(&w->st.spawns);
        reaped += ld(&w->st.reaps);
    }
    return spawned > reaped ? spawned - reaped : 0;
}

int weft__obs_lock(weft_rt *rt, int try)
{
    if (try)
        return weft__spin_trylock(&rt->obs_lock);
    weft__spin_lock(&rt->obs_lock);
    return 1;
}

void weft__obs_unlock(weft_rt *rt)
{
    weft__spin_unlock(&rt->obs_lock);
}

void weft__obs_worker(weft_rt *rt, unsigned i, uint64_t now, int base,
                      weft_stats *o)
{
    worker_raw(&rt->workers[i], now, o);
    if (base)
        sub_base(o, &rt->obs_base[i]);
}

void weft__obs_totals(weft_rt *rt, uint64_t now, int base, weft_stats *o)
{
    weft_stats one;
    memset(o, 0, sizeof *o);
    for (unsigned i = 0; i < rt->nworkers; i++) {
        weft__obs_worker(rt, i, now, base, &one);
        add(o, &one);
    }
    ext_raw(rt, &one);
    if (base)
        sub_base(&one, &rt->obs_base[rt->nworkers]);
    add(o, &one);
    /* Isolation identities (sched/isolate.c): what isolated tasks did
     * on them (counters only; not covered by weft_stats_reset). */
    for (unsigned i = 0; i < rt->nthr; i++) {
        worker_raw(&rt->iso[i], 0, &one);
        one.busy_ns = one.idle_ns = 0;
        add(o, &one);
    }

    /* Gauges, never reset. live counts from the start. */
    o->live = weft__obs_live(rt);
    for (int k = 0; k < 2; k++) {
        weft_stack_pool *p = &rt->pool[k];
        o->stacks_resident += atomic_load_explicit(&p->resident, RLX);
        o->stacks_released += atomic_load_explicit(&p->released, RLX);
        o->guarded_stacks += atomic_load_explicit(&p->guarded, RLX);
        o->canary_stacks += atomic_load_explicit(&p->canaried, RLX);
        o->canary_only += atomic_load_explicit(&p->unguarded, RLX);
    }
    o->guard_budget = weft__stack_guard_budget();
    o->guard_kind = (uint64_t)weft__stack_guard_kind();
    o->huge_pages = (uint64_t)rt->huge_pages;
    o->workers = rt->nworkers;
    uint64_t calls;
    weft__blocking_stats(rt, &calls, &o->blocking_threads);
    o->io_backend = rt->io_uring ? WEFT_IO_URING : WEFT_IO_EPOLL;
    o->io_fallback = (uint64_t)atomic_load_explicit(&rt->io_fallback, RLX);
    o->io_fallback_errno =
        (uint64_t)atomic_load_explicit(&rt->io_fallback_errno, RLX);
}

int weft_stats_get(weft_rt *rt, weft_stats *o)
{
    if (!rt || !o)
        return -EINVAL;
    uint64_t now = weft__clock_ns();
    weft__obs_lock(rt, 0);
    weft__obs_totals(rt, now, 1, o);
    weft__obs_unlock(rt);
    return 0;
}

int weft_stats_worker(weft_rt *rt, unsigned i, weft_worker_stats *o)
{
    if (!rt || !o || i >= rt->nworkers)
        return -EINVAL;
    uint64_t now = weft__clock_ns();
    weft__obs_lock(rt, 0);
    weft__obs_worker(rt, i, now, 1, o);
    weft__obs_unlock(rt);
    return 0;
}

int weft_stats_reset(weft_rt *rt)
{
    if (!rt)
        return -EINVAL;
    weft__obs_lock(rt, 0);
    uint64_t now = weft__clock_ns();
    for (unsigned i = 0; i < rt->nworkers; i++)
        worker_raw(&rt->workers[i], now, &rt->obs_base[i]);
    ext_raw(rt, &rt->obs_base[rt->nworkers]);
    weft__obs_unlock(rt);
    return 0;
}
