/*
 * runq.h - a worker's own run queues, as static inlines shared by the
 * files of the worker (worker.c, switch.c, bands.c, steal.c, mesh.c,
 * idle.c, isolate.c, task.c): the deque push and its overflow, the one
 * intrusive slot FIFO behind the yield queue and the bands' yield queues,
 * the band helpers; and the calls those files make into each other.
 *
 * Why inlines in a header: these run on every switch, spawn and unpark.
 * Out of line, each would be a call on those paths (the worker was one
 * translation unit, and callgrind counts hold it to that cost). Everything
 * here is owner-only (the worker's own thread) unless it says otherwise.
 */
#ifndef WEFT_SCHED_RUNQ_H
#define WEFT_SCHED_RUNQ_H

#include "../base/bits.h"
#include "cancel.h"
#include "registry.h"
#include "runtime.h"
#include "wake.h"

#define RLX memory_order_relaxed
#define LIFO_MAX 3   /* consecutive LIFO-slot runs before it yields */
#define FAIR_TICK 61 /* every so many decisions, injection queue first */
#define IO_TICK 8    /* and every so many, descriptors polled (poller.c) */
#define INJECT_BATCH 32
#define BAND_NORMAL WEFT_BAND_NORMAL
/* The band bits of a state word, and their value for the normal band. */
#define TS_BAND (UINT64_C(3) << (WEFT_TS_PRIO_SHIFT + 2))
#define TS_NORMAL ((uint64_t)BAND_NORMAL << (WEFT_TS_PRIO_SHIFT + 2))

static inline uint32_t slot_of(weft_rt *rt, weft_tcb *t)
{
    return (uint32_t)(t - rt->hot);
}

static inline uint32_t wslot_of(weft_worker *w, weft_tcb *t)
{
    return (uint32_t)(t - w->hot);
}

static inline void stat_inc(_Atomic uint64_t *c)
{
    /* Owner-only counter: a relaxed load and store, no RMW. */
    atomic_store_explicit(c, atomic_load_explicit(c, RLX) + 1, RLX);
}

/* ---- the slot FIFO ------------------------------------------------------
 *
 * The yield queue and each band's yield queue: tasks linked through
 * rt->link by slot + 1 (0 ends the list), owner-only, so plain fields and
 * relaxed links suffice. */

static inline void slotq_push(_Atomic uint32_t *link, weft_slotq *q,
                              uint32_t slot)
{
    atomic_store_explicit(&link[slot], 0, RLX);
    if (q->tail)
        atomic_store_explicit(&link[q->tail - 1], slot + 1, RLX);
    else
        q->head = slot + 1;
    q->tail = slot + 1;
}

static inline int64_t slotq_pop(_Atomic uint32_t *link, weft_slotq *q)
{
    uint32_t h = q->head;
    if (!h)
        return -1;
    q->head = atomic_load_explicit(&link[h - 1], RLX);
    if (!q->head)
        q->tail = 0;
    return h - 1;
}

/* The normal band's yield queue. It holds started tasks only (a stack
 * pointer saved): weft_yield's fast path switches to its head without
 * binding a stack (worker.c). */
static inline void yq_push(weft_worker *w, uint32_t slot)
{
    WEFT_EVW(w, slot, WEFT_EV_YQ);
    slotq_push(w->link, &w->yq, slot);
}

static inline int64_t yq_pop(weft_worker *w)
{
    return slotq_pop(w->link, &w->yq);
}

/* ---- the deque ---------------------------------------------------------- */

/* Push onto the deque when the ring is full (worker.c). */
void weft__worker_push_overflow(weft_worker *w, uint32_t slot);

/* Job entry x, just taken or grabbed from w's deque d, as a task to run,
 * or -1 (sched/fork.c). Owner only. (worker.c) */
int64_t weft__worker_claim(weft_worker *w, weft_deque *d, uint32_t x);

/* The fork records among x[0..n), just grabbed from w's deque, made
 * tasks in place; returns how many entries are left. Owner only.
 * (worker.c) */
uint32_t weft__worker_claim_grabbed(weft_worker *w, uint32_t *x, uint32_t n);

static inline void push_local(weft_worker *w, uint32_t slot)
{
    WEFT_EVW(w, slot, WEFT_EV_DQ);
    if (weft_unlikely(weft__deque_push(&w->dq, slot) < 0))
        weft__worker_push_overflow(w, slot);
}

/*
 * New stealable work on this worker's deque: wake an idle worker unless
 * one is already searching (it will find the work, and wakes a successor
 * when it does: see weft__idle_wait). At most one worker is woken per burst, so
 * a spawn loop does not stampede the sleepers.
 *
 * No fence here, unlike weft__wake_one: work on a worker's own deque
 * cannot be lost (its owner runs it), so a sleeper that announced itself
 * just as we pushed costs parallelism, not progress, and the next push
 * wakes it. Foreign submissions (signal bits, the injection queue), which
 * no running worker owns, take the fenced path. Owner only.
 */
static inline void notify(weft_worker *w)
{
    weft_rt *rt = w->rt;
    if (rt->nworkers > 1 && atomic_load_explicit(&rt->idle, RLX) &&
        !atomic_load_explicit(&rt->searching, RLX))
        weft__wake_one(rt);
}

/* ---- bands (bands.c) ---------------------------------------------------- */

/* The band of task t: priority / 4, bits 10-11 of the state word. */
static inline int band_of(weft_tcb *t)
{
    return (int)(atomic_load_explicit(&t->state, RLX) >>
                 (WEFT_TS_PRIO_SHIFT + 2)) &
           3;
}

/* The deque of band b != normal. */
static inline weft_deque *xdq(weft_worker *w, int b)
{
    return &w->bdq[b < BAND_NORMAL ? b : b - 1];
}

/* Band b (not normal) may hold tasks now. Owner only. */
static inline void mark_band(weft_worker *w, int b)
{
    if (w->xbands & (1u << b))
        return;
    if (!w->xbands)
        w->fair.band_cur = -1; /* the multi-band accounting starts afresh */
    w->xbands |= 1u << b;
    atomic_store_explicit(&w->xpub, w->xbands, RLX);
}

static inline void unmark_band(weft_worker *w, int b)
{
    w->xbands &= ~(1u << b);
    atomic_store_explicit(&w->xpub, w->xbands, RLX);
}

/* Queue `slot` of band b (not normal) on its deque (bands.c). */
void weft__bands_push(weft_worker *w, uint32_t slot, int b);

/* Queue `slot` in its band. Owner only. */
static inline void push_band(weft_worker *w, uint32_t slot)
{
    int b = band_of(&w->hot[slot]);
    if (weft_likely(b == BAND_NORMAL))
        push_local(w, slot);
    else
        weft__bands_push(w, slot, b);
}

static inline void byq_push(weft_worker *w, int b, uint32_t slot)
{
    WEFT_EVW(w, slot, WEFT_EV_BYQ);
    slotq_push(w->link, &w->byq[b], slot);
    mark_band(w, b);
}

static inline int64_t byq_pop(weft_worker *w, int b)
{
    return slotq_pop(w->link, &w->byq[b]);
}

/* A task made runnable by a thread that is no worker of its runtime. */
static inline void signal_task(weft_rt *rt, uint32_t slot)
{
    WEFT_EV(rt, slot, WEFT_EV_SIG);
    if (weft__summary_signal(&rt->sum, slot))
        weft__wake_one(rt);
}

/* xorshift32 (Marsaglia 2003): the victim order of a thief. Owner only. */
static inline uint32_t next_rand(weft_worker *w)
{
    uint32_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return w->rng = x;
}

/* ---- calls between the worker's files -------------------------------- */

/* worker.c: take a batch from the injection queue, or one leaf of
 * signalled tasks: return the first, queue the rest; -1 when none. */
int64_t weft__worker_from_inject(weft_worker *w);
int64_t weft__worker_from_summary(weft_worker *w);
/* worker.c: make w the calling thread's worker (NULL: none). */
void weft__worker_set_self(weft_worker *w);
/* worker.c: switch w's running task out as a yield if anything else is
 * ready here; 0 if nothing is (or its band's turn goes on), -1 if no
 * spare signal stack is free (sigstack.c), 1 once it has been resumed.
 * Signal handler on w's thread (preempt.c decides). */
int weft__worker_preempt(weft_worker *w);

/* bands.c: copy the fairness rule when it changed; the banded run order
 * (yband: the yielder's band, or -1; returns -2 for "the yielder goes
 * on"). */
void weft__bands_sync(weft_worker *w);
int64_t weft__bands_find(weft_worker *w, int yband);

/* steal.c: steal one task; publish or clear the yield bit; move yielded
 * tasks where idle workers can steal them. */
int64_t weft__steal_take(weft_worker *w);
void weft__steal_publish(weft_worker *w, int want);
void weft__steal_share(weft_worker *w);

/* mesh.c: publish staged chunks; balance after a push; the fairness
 * tick's part; take the incoming chunks; going idle (ask for work);
 * leaving idle with work (stop asking). */
void weft__mesh_flush(weft_worker *w);
void weft__mesh_balance(weft_worker *w);
void weft__mesh_tick(weft_worker *w);
int64_t weft__mesh_from_mail(weft_worker *w);
void weft__mesh_idle(weft_worker *w);
void weft__mesh_fed(weft_worker *w);

/* idle.c: wake worker v if it sleeps (1 if so; the caller did the RMW on
 * rt->idle); spin, then sleep until woken or a timer is due. */
int weft__idle_wake(weft_worker *v);
void weft__idle_wait(weft_worker *w);

/* isolate.c: the isolated task has left for good: hand back what is left
 * on its identity. */
void weft__isolate_retire(weft_worker *iso);

#endif
