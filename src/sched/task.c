/*
 * task.c - a task's life: spawn, run to its end, join or detach, reap.
 * Park and unpark are wake.c; task-local storage is tls.c.
 *
 * Reaping. A slot is freed (generation + 1, reservation bit released)
 * exactly once, by whoever the state word names: the joiner (JOINED set),
 * weft_detach on a DONE task, or the finishing worker when DETACHED was
 * set first. JOINED and DETACHED exclude each other, and the CAS that
 * sets either also sees whether the task is already DONE.
 *
 * The joiner slot. A joiner registers a waiter record (on its own stack)
 * by CAS 0 -> record in cold.joiner. The finisher first exchanges the
 * slot to WEFT_JOINER_DONE, then publishes DONE, then wakes the record it got.
 * Order matters twice. (1) The exchange comes before DONE: once DONE is
 * visible a joiner may reap and the slot may be reused at once, so the
 * finisher must not touch cold.joiner after it. (2) A joiner that lost
 * the registration race (it saw WEFT_JOINER_DONE) waits for DONE, which follows
 * within the finisher's next few instructions. A registered joiner waits
 * for its record's flag, not for DONE, so its record stays alive until the
 * finisher is done with it (weft__waiter_wake copies what it needs before
 * setting the flag).
 */
#include <errno.h>
#include <string.h>

#include "../arch/fiber_san.h"
#include "../base/atomic.h"
#include "../base/check.h"
#include "../base/futex.h"
#include "../base/spin.h"
#include "fork.h"
#include "runq.h"
#include "slots.h"

#define RLX memory_order_relaxed
#define ACQ memory_order_acquire
#define REL memory_order_release
#define ACQ_REL memory_order_acq_rel

/* The generation a handle shows for state word s: the slot's generation
 * plus the runtime's epoch, so a runtime that reuses a destroyed one's
 * registry id and slots does not give old handles a new meaning. */
static inline uint32_t hgen(const weft_rt *rt, uint64_t s)
{
    return weft__hgen(rt, s);
}

/* ---- spawn ------------------------------------------------------------- */

static int check_attr(const weft_rt *rt, const weft_spawn_attr *a,
                      uint64_t *bits)
{
    *bits = (uint64_t)WEFT_PRIO_NORMAL << WEFT_TS_PRIO_SHIFT;
    if (!a)
        return 0;
    if (a->priority < 0 || a->priority > WEFT_PRIO_MAX)
        return -EINVAL;
    if (a->flags & ~(unsigned)(WEFT_DETACHED | WEFT_PREEMPTIBLE))
        return -EINVAL;
    *bits = (uint64_t)a->priority << WEFT_TS_PRIO_SHIFT;
    if (a->stack == WEFT_STACK_SMALL)
        *bits |= WEFT_TS_SMALL;
    else if (a->stack != WEFT_STACK_DEFAULT) {
        /* A size picks the smallest class that fits it. */
        size_t usable_small = weft__stack_usable(&rt->pool[1]) - WEFT_TLS_BYTES;
        size_t usable = weft__stack_usable(&rt->pool[0]) - WEFT_TLS_BYTES;
        if (a->stack <= usable_small)
            *bits |= WEFT_TS_SMALL;
        else if (a->stack > usable)
            return -EINVAL;
    }
    if (a->flags & WEFT_DETACHED)
        *bits |= WEFT_TS_DETACHED;
    if (a->flags & WEFT_PREEMPTIBLE)
        *bits |= WEFT_TS_PREEMPTIBLE;
    return 0;
}

/* The trace's SPAWN event: the child and who spawned it (a task of rt,
 * or 0). */
weft_cold weft_noinline static void trace_spawn(weft_rt *rt, weft_worker *w,
                                                uint32_t slot, uint64_t gen)
{
    uint64_t parent = 0;
    if (w && w->rt == rt && w->current)
        parent =
            (w->cur_slot + UINT64_C(1)) |
            (uint64_t)hgen(rt, atomic_load_explicit(&w->current->state, RLX))
                << 32;
    weft_tring *r = weft__trace_ring(rt, w);
    uint32_t g = hgen(rt, gen);
    uint64_t nw[2];
    weft__name_words(&rt->names[slot],
                     atomic_load_explicit(&rt->hot[slot].state, RLX), nw);
    if (r) /* the name was set above: it goes with the spawn */
        weft__trace_put(r, WEFT_TEV_SPAWN, slot, g & 0xff, g >> 8, parent,
                        nw[0], nw[1]);
}

/* Reserve a slot and make it a RUNNABLE task that runs fn(arg), with
 * state bits `bits` and name `name`; count and trace the spawn. Returns
 * the slot (not yet queued) or -EAGAIN; *gen is its generation. w: the
 * caller's worker or NULL; any runtime. Inline: weft_spawn is a hot
 * path (callgrind). */
static inline __attribute__((always_inline)) int64_t
task_new(weft_rt *rt, weft_worker *w, int mine, weft_fn fn, void *arg,
         uint64_t bits, const char *name, uint64_t *gen_out)
{
    int64_t slot = weft__slot_take(rt, w);
    if (slot < 0)
        return -EAGAIN;
    weft_tcb *t = &rt->hot[slot];
    weft_tcb_cold *c = &rt->cold[slot];
    uint64_t gen = atomic_load_explicit(&t->state, RLX) & WEFT_TS_GEN_MASK;
    /* A slot handed out is reserved in the map and free (slots.c). */
    weft_assert("slots", weft_ts_state(atomic_load_explicit(&t->state, RLX)) ==
                                 WEFT_TS_FREE &&
                             weft__summary_reserved(&rt->sum, (uint32_t)slot));
    /* Relaxed atomic stores of sp (also weft__switch_bind): weft_task_info
     * reads it from other threads to tell whether the task has run. */
    __atomic_store_n(&t->sp, NULL, __ATOMIC_RELAXED);
    __atomic_store_n(&t->fn, fn, __ATOMIC_RELAXED); /* read racily by
                                                        weft__task_polls */
    /* arg shares its word with the poll count, which the monitor reads
     * (racily, then checks the generation): an atomic store, so that the
     * two never race as plain and atomic accesses. */
    atomic_store_explicit(&t->polls, (uint64_t)(uintptr_t)arg, RLX);
    c->tls = NULL; /* and result (sched/task.h) */
    c->stack = 0;
    atomic_store_explicit(&c->cpu_ns, 0, RLX);
    c->nopreempt = 0;
    bits |= rt->spawn_bits; /* cfg.preempt_all */
    weft__cold_wait_set(c, WEFT_WK_NONE, NULL);
    bits |= weft__name_set(&rt->names[slot], name);
    /* Relaxed: the task is handed over by a queue push or a signal bit,
     * both release operations. */
    atomic_store_explicit(&t->state, gen | bits | WEFT_TS_RUNNABLE, RLX);
    /* The trace's test on a line the counter's increment writes. */
    if (mine) {
        stat_inc(&w->st.spawns);
        if (weft_unlikely(atomic_load_explicit(&w->tracing, RLX)))
            trace_spawn(rt, w, (uint32_t)slot, gen);
    } else {
        atomic_fetch_add_explicit(&rt->ext_spawns, 1, RLX);
        if (weft__tracing(rt))
            trace_spawn(rt, w, (uint32_t)slot, gen);
    }
    *gen_out = gen;
    return slot;
}

int64_t weft__task_new(weft_rt *rt, weft_worker *w, weft_fn fn, void *arg,
                       uint64_t bits, const char *name)
{
    uint64_t gen;
    return task_new(rt, w, w && w->rt == rt, fn, arg, bits, name, &gen);
}

int weft_spawn(weft_rt *rt, weft_task *out, weft_fn fn, void *arg,
               const weft_spawn_attr *attr)
{
    weft_worker *w = weft__worker_self();
    if (!rt) {
        if (!w || !w->current)
            return -EPERM;
        rt = w->rt;
    }
    uint64_t bits;
    int err = check_attr(rt, attr, &bits);
    if (err)
        return err;
    if (!fn || (!out && !(bits & WEFT_TS_DETACHED)))
        return -EINVAL;
    if (atomic_load_explicit(&rt->shutdown, RLX))
        return -ECANCELED;
    uint64_t gen;
    int mine = w && w->rt == rt;
    int64_t slot =
        task_new(rt, w, mine, fn, arg, bits, attr ? attr->name : NULL, &gen);
    if (slot < 0)
        return (int)slot;
    if (out)
        *out = weft__handle(rt->id, (uint32_t)slot, hgen(rt, gen));
    if (mine)
        weft__sched_ready_local(w, (uint32_t)slot);
    else
        weft__sched_ready(rt, (uint32_t)slot);
    return 0;
}

/* ---- the end of a task ---------------------------------------------- */

/* The trace's END event of slot. */
weft_cold weft_noinline static void trace_end(weft_rt *rt, weft_worker *w,
                                              uint32_t slot)
{
    uint64_t s = atomic_load_explicit(&rt->hot[slot].state, RLX);
    weft__trace_event(rt, w, WEFT_TEV_END, slot, 0, 0, hgen(rt, s), 0);
}

void weft__task_exit(void *result)
{
    weft__tls_finish()->result = result;
}

/* w: the calling thread's worker, or NULL on a plain thread. */
static void count_reap(weft_rt *rt, weft_worker *w)
{
    if (w && w->rt == rt)
        stat_inc(&w->st.reaps);
    else
        atomic_fetch_add_explicit(&rt->ext_reaps, 1, RLX);
}

/* Move the slot's generation on and free it (slots.c); w as reap's. */
static inline void free_slot(weft_rt *rt, uint32_t slot, weft_worker *w)
{
    weft_tcb *t = &rt->hot[slot];
    uint64_t s = atomic_load_explicit(&t->state, RLX);
    /* Release: pairs with stale-handle readers' acquire loads; the slot's
     * release (slots.c, summary.c) hands it to the next reserver. */
    atomic_store_explicit(&t->state, (s & WEFT_TS_GEN_MASK) + WEFT_TS_GEN_ONE,
                          REL);
    weft__slot_give(rt, w, slot);
}

/* Free a DONE slot whose reaping the caller owns. Any thread; w is the
 * caller's worker (weft__worker_self), passed in because the callers
 * already have it. */
static void reap(weft_rt *rt, uint32_t slot, weft_worker *w)
{
    atomic_store_explicit(&rt->cold[slot].joiner, 0, RLX);
    free_slot(rt, slot, w);
    count_reap(rt, w);
}

void weft__task_finish(weft_worker *w, weft_tcb *t, uint32_t slot)
{
    weft_rt *rt = w->rt;
    weft_tcb_cold *c = &rt->cold[slot];
    int cls = (atomic_load_explicit(&t->state, RLX) & WEFT_TS_SMALL) ? 1 : 0;
    weft__stack_put(&rt->pool[cls], &w->cache[cls], c->stack - 1);
    c->stack = 0;
    weft__cold_set_fiber(c, NULL); /* it stays with the stack */
    weft__task_publish_end(w, t, slot);
}

void weft__task_publish_end(weft_worker *w, weft_tcb *t, uint32_t slot)
{
    weft_rt *rt = w->rt;
    weft_tcb_cold *c = &rt->cold[slot];
    stat_inc(&w->st.finishes);
    /* No trace hook here: the switch away from a finished task records
     * the end (RUN with MSG_DEAD, trace.h); a hook here cost this
     * function its leaf shape (callgrind spawn +14 instructions a task). */

    uint64_t s = atomic_load_explicit(&t->state, RLX);
    if (s & WEFT_TS_DETACHED) {
        /* DETACHED is final and excludes joiners, so nobody else may claim
         * this slot: no joiner exchange, no CAS. A racing stale unpark at
         * most loses its WAKE bit, which means nothing on a dead task. */
        /* A claimed fork record's task: its caller waits in
         * weft_fork_join, told only once the slot is free, so that what
         * it sees after (live, max_tasks, a destroy) no longer counts this
         * task. The record is the result, read before the slot can be
         * reused. */
        void *f = (s & WEFT_TS_FORK) ? c->result : NULL;
        reap(rt, slot, w);
        if (weft_unlikely(f != NULL))
            weft__fork_done(f);
        return;
    }
    uintptr_t j = atomic_exchange_explicit(&c->joiner, WEFT_JOINER_DONE,
                                           ACQ_REL); /* pairs with the
                                                  joiner's registering CAS */
    for (;;) {
        if (s & WEFT_TS_DETACHED) { /* weft_detach won the race */
            reap(rt, slot, w);
            return;
        }
        uint64_t n = (s & ~(WEFT_TS_MASK | WEFT_TS_WAKE)) | WEFT_TS_DONE;
        /* Release: result and the stack release happen-before a joiner's
         * acquire load that sees DONE. */
        if (atomic_compare_exchange_weak_explicit(&t->state, &s, n, REL, RLX))
            break;
    }
    if (j && j != WEFT_JOINER_DONE)
        weft__waiter_wake((weft_waiter *)j);
}

/* ---- inline join ------------------------------------------------------- */

/*
 * Inline join (DESIGN.md §4, the fork-join runtimes' trick). A task that
 * joins a child it spawned which has not started yet, and is still in this
 * worker's LIFO slot or at the bottom of its deque (so no thief has it),
 * runs the child's function right here instead of parking: no stack to
 * bind, no switch, no wake-up. The child keeps its identity: w->current
 * names it while it runs, so weft_self, task-local storage, stats and
 * blocking are its own. It shares the caller's stack (and stack index,
 * fiber, canary), so if it parks, the caller's frames below it park with
 * it, and both resume together, possibly on another worker: everything
 * after the call re-reads the worker. Only a child of the same stack class
 * is taken, so stack checks stay valid.
 */
static weft_worker *run_inline(weft_worker *w, uint32_t slot)
{
    weft_rt *rt = w->rt;
    weft_tcb *t = &w->hot[slot], *parent = w->current;
    uint32_t pslot = w->cur_slot;
    /* Take it first: until it is ours, a thief may be starting it, and
     * its fields are not ours to read. */
    if (w->lifo == slot + 1) {
        w->lifo = 0;
    } else {
        if (!weft__deque_maybe_nonempty(&w->dq))
            return NULL;
        uint32_t x = weft__deque_take(&w->dq);
        if (x == WEFT_DEQUE_EMPTY)
            return NULL;
        if (x != slot) {
            /* Not ours: back where it was. (A fork record that moved
             * this way is not its parent's to take back: the parent
             * waits for whoever takes it, fork.c.) */
            if (weft__deque_is_job(x))
                weft__deque_put_back(&w->dq, x);
            else
                push_local(w, x);
            return NULL;
        }
    }
    if (t->sp || ((atomic_load_explicit(&t->state, RLX) ^
                   atomic_load_explicit(&parent->state, RLX)) &
                  WEFT_TS_SMALL)) {
        push_local(w, slot); /* started before, or another stack class */
        return NULL;
    }
    weft_tcb_cold *c = &rt->cold[slot], *pc = &rt->cold[pslot];
    void *tls[WEFT_TLS_KEYS];
    c->stack = pc->stack;
    weft__cold_set_fiber(c, weft__cold_fiber(pc));
    c->tls = weft__tls_area(tls);
    /* The parent waits for the child on its own stack: for observers it
     * is parked in a join (obs/dump.c), though its state stays RUNNABLE.
     * Its cold line is already loaded (pc->stack above). */
    weft__cold_wait_set(pc, WEFT_WK_JOIN_INLINE, t);
    w->current = t;
    w->cur_slot = slot;
    atomic_store_explicit(&w->running, slot + 1, RLX);
    stat_inc(&w->st.inlined);
    WEFT_EV(rt, slot, WEFT_EV_INLINE);
    /* One poll of the child, timed with its parent's. */
    weft_fn fn = __atomic_load_n(&t->fn, __ATOMIC_RELAXED);
    void *arg = t->arg;
    weft__task_started(t, 1);
    void *r = fn(arg);
    if (weft__tls_values(c))
        weft__task_exit(r); /* its TLS destructors, then its result */
    else
        c->result = r;
    w = weft__worker_self(); /* it may have parked and moved */
    weft__cold_wait_set(pc, WEFT_WK_NONE, NULL);
    c->stack = 0;
    weft__cold_set_fiber(c, NULL);
    stat_inc(&w->st.finishes);
    if (weft_unlikely(atomic_load_explicit(&w->tracing, RLX)))
        trace_end(rt, w, slot);
    w->current = parent;
    w->cur_slot = pslot;
    atomic_store_explicit(&w->running, pslot + 1, RLX);
    return w;
}

/* ---- handles ----------------------------------------------------------- */

/* Resolve a handle: runtime, slot, and the state word if the generation
 * matches. Returns 0 or -ESRCH. */
static int resolve(weft_task h, weft_worker *w, weft_rt **rt, uint32_t *slot,
                   uint64_t *s)
{
    /* The caller's own runtime needs no registry look-up. */
    *rt = w && w->rt->id == weft__handle_rt(h)
              ? w->rt
              : weft__rt_by_id(weft__handle_rt(h));
    *slot = weft__handle_slot(h);
    if (!*rt || *slot >= (*rt)->cfg.max_tasks)
        return -ESRCH;
    /* Acquire: pairs with finish's release (DONE) and reap's release. */
    *s = atomic_load_explicit(&(*rt)->hot[*slot].state, ACQ);
    if (weft_ts_state(*s) == WEFT_TS_FREE ||
        hgen(*rt, *s) != weft__handle_gen(h))
        return -ESRCH;
    return 0;
}

/* A join that will not wait any longer (its runtime is cancelling, or the
 * caller's wait was cancelled after it unregistered): the caller holds
 * JOINED on t, and no joiner record of its is registered. If t has ended,
 * take its result and reap it (0); else hand it over as DETACHED, so that
 * its finisher reaps it (-ECANCELED). The finisher's CAS loop
 * (weft__task_publish_end) sees either our DETACHED or we see its DONE. */
static int join_give_up(weft_rt *rt, uint32_t slot, void **result)
{
    weft_tcb *t = &rt->hot[slot];
    uint64_t s = atomic_load_explicit(&t->state, ACQ);
    for (;;) {
        if (weft_ts_state(s) == WEFT_TS_DONE) {
            if (result)
                *result = rt->cold[slot].result;
            reap(rt, slot, weft__worker_self());
            return 0;
        }
        /* acq_rel: pairs with the finisher's release CAS to DONE. */
        if (atomic_compare_exchange_weak_explicit(
                &t->state, &s, (s & ~WEFT_TS_JOINED) | WEFT_TS_DETACHED,
                ACQ_REL, ACQ)) {
            weft_yield(); /* a switch point, as any cancelled call
                             (sched/cancel.c) */
            return -ECANCELED;
        }
    }
}

/* Wait on the registered record `me` for t's finisher (or, for a joiner
 * from outside t's runtime, its destroyer). A task whose own runtime
 * cancels its waits takes its record back if the finisher has not taken
 * it yet (CAS on the joiner word against the finisher's exchange) and
 * gives up. Returns 0 when woken, 1 when it took its record back. */
static int join_wait(weft_rt *rt, uint32_t slot, weft_waiter *me)
{
    _Atomic uintptr_t *jw = &rt->cold[slot].joiner;
    /* Acquire: pairs with waiter_wake's release store of the flag. */
    while (!atomic_load_explicit(&me->futex, ACQ)) {
        if (!me->task) {
            weft__futex_wait(&me->futex, 0, 0);
            continue;
        }
        if (weft__wait_cancelled(me->rt)) {
            uintptr_t mine = (uintptr_t)me;
            /* acq_rel: pairs with the finisher's exchange; whoever moves
             * the word first owns the record. */
            if (atomic_compare_exchange_strong_explicit(jw, &mine, 0, ACQ_REL,
                                                        ACQ))
                return 1;
            /* The finisher has it: its wake-up is on the way. */
        }
        weft__task_park();
    }
    return 0;
}

static int join(weft_task h, void **result, weft_worker *w, weft_rt *rt,
                uint32_t slot, uint64_t s);

int weft_join(weft_task h, void **result)
{
    weft_rt *rt;
    uint32_t slot;
    uint64_t s;
    weft_worker *w = weft__worker_self();
    if (resolve(h, w, &rt, &slot, &s))
        return -ESRCH;
    if (w && w->current && w->rt == rt && w->cur_slot == slot)
        return -EDEADLK;
    /* A joiner from outside t's runtime (a plain thread, another
     * runtime's task) touches that runtime until its reap: it holds it,
     * so that weft_rt_destroy waits for it (cancel.c, "Joiners from
     * outside"). */
    if (w && w->rt == rt)
        return join(h, result, w, rt, slot, s);
    if (weft__cancel_hold(rt))
        return -ESRCH; /* its runtime is being destroyed */
    int r = join(h, result, w, rt, slot, s);
    weft__cancel_release(rt);
    return r;
}

static int join(weft_task h, void **result, weft_worker *w, weft_rt *rt,
                uint32_t slot, uint64_t s)
{
    weft_tcb *t = &rt->hot[slot];
    for (;;) {
        if (s & (WEFT_TS_JOINED | WEFT_TS_DETACHED))
            return -EINVAL;
        if (atomic_compare_exchange_weak_explicit(&t->state, &s,
                                                  s | WEFT_TS_JOINED, ACQ, ACQ))
            break;
        if (weft_ts_state(s) == WEFT_TS_FREE ||
            hgen(rt, s) != weft__handle_gen(h))
            return -ESRCH;
    }
    weft_worker *now;
    if (weft_ts_state(s) != WEFT_TS_DONE && w && w->current && w->rt == rt &&
        (now = run_inline(w, slot))) {
        /* It ran to its end inside this call; we hold JOINED, so nobody
         * else looks at it: reap it ourselves, on the worker the join is
         * on now (it may have parked and moved), a worker of rt. Nobody
         * registered as its joiner (that needs JOINED), so the joiner
         * word is still 0: reap's store of it is skipped. */
        if (result)
            *result = rt->cold[slot].result;
        free_slot(rt, slot, now);
        stat_inc(&now->st.reaps);
        return 0;
    }
    if (weft_ts_state(s) != WEFT_TS_DONE) {
        /* The record names the joiner in its own runtime, which may not
         * be t's (a task of one runtime joining a task of another). */
        weft_waiter me = {.rt = rt};
        if (w && w->current) {
            me.rt = w->rt;
            me.task = w->current;
            me.slot = w->cur_slot;
            if (weft__wait_enter(me.rt, me.slot, WEFT_WK_JOIN, t))
                return join_give_up(rt, slot, result);
        }
        uintptr_t expect = 0;
        if (atomic_compare_exchange_strong_explicit(
                &rt->cold[slot].joiner, &expect, (uintptr_t)&me, ACQ_REL,
                ACQ)) { /* pairs with the finisher's exchange */
            int took_back = join_wait(rt, slot, &me);
            if (me.task)
                weft__wait_leave(me.rt, me.slot);
            if (took_back)
                return join_give_up(rt, slot, result);
            if (me.cancelled) /* t's runtime was destroyed: it is gone */
                return -ECANCELED;
        } else if (me.task) {
            weft__wait_leave(me.rt, me.slot);
        }
        /* Woken, or the finisher is between its exchange and DONE: DONE
         * is at most a few instructions away. Or the runtime was stopped
         * and its destroyer took the joiner word of a task it abandons
         * (weft__task_cancel_joiners): DONE never comes. */
        for (int spins = 0;
             weft_ts_state(atomic_load_explicit(&t->state, ACQ)) !=
             WEFT_TS_DONE;
             spins++) {
            /* Acquire: pairs with the destroyer's release store. */
            if (atomic_load_explicit(&rt->abandoned, ACQ))
                return -ECANCELED;
            weft__spin_backoff((unsigned)spins);
        }
    }
    if (result)
        *result = rt->cold[slot].result;
    reap(rt, slot, weft__worker_self()); /* w may be stale: the join
                                                  may have parked and moved */
    return 0;
}

int weft_detach(weft_task h)
{
    weft_rt *rt;
    uint32_t slot;
    uint64_t s;
    if (resolve(h, weft__worker_self(), &rt, &slot, &s))
        return -ESRCH;
    weft_tcb *t = &rt->hot[slot];
    for (;;) {
        if (s & (WEFT_TS_JOINED | WEFT_TS_DETACHED))
            return -EINVAL;
        if (weft_ts_state(s) == WEFT_TS_DONE) {
            if (atomic_compare_exchange_weak_explicit(
                    &t->state, &s, s | WEFT_TS_DETACHED, ACQ, ACQ)) {
                reap(rt, slot, weft__worker_self());
                return 0;
            }
        } else if (atomic_compare_exchange_weak_explicit(
                       &t->state, &s, s | WEFT_TS_DETACHED, ACQ_REL, ACQ)) {
            return 0;
        }
        if (weft_ts_state(s) == WEFT_TS_FREE ||
            hgen(rt, s) != weft__handle_gen(h))
            return -ESRCH;
    }
}

weft_task weft_self(void)
{
    weft_worker *w = weft__worker_self();
    if (!w || !w->current)
        return WEFT_TASK_NULL;
    uint64_t s = atomic_load_explicit(&w->current->state, RLX);
    return weft__handle(w->rt->id, w->cur_slot, hgen(w->rt, s));
}

weft_rt *weft_current(void)
{
    weft_worker *w = weft__worker_self();
    return w && w->current ? w->rt : NULL;
}
