/*
 * worker.c - a worker's hot path: its run order, the switch, yield, park,
 * exit, the ready path, and the loop.
 *
 * Problem. A switch between two tasks should cost what the hardware
 * charges for saving and restoring the callee-saved registers, plus the
 * few loads that pick the next task. Going through a scheduler context
 * (task -> scheduler -> task) doubles that, so a task that yields, parks or
 * ends switches straight to the next task when there is one, and to the
 * worker's scheduler context (its thread stack) only when there is none.
 *
 * Every switch carries a message to the context it enters: the task that
 * left and what it did. The entered side completes the departure
 * (after_switch, switch.h; the argument is in switch.c).
 *
 * Run order (DESIGN.md §4), each step only when the previous found
 * nothing: the LIFO slot (bounded to LIFO_MAX consecutive runs), the
 * deque, the signalled tasks of the summary tree, the yield queue, the
 * injection queue, then stealing from another worker's deque (not for a
 * yield: the yielder is itself runnable); every FAIR_TICK-th decision
 * looks at the injection queue first so it is never starved, and shares
 * yielded tasks when workers sleep. In mesh mode the incoming mailboxes
 * come after the deque, and stealing is the last resort (mesh.c).
 *
 * The rest of the worker, by concern: the cold half of switching
 * (binding a stack, canaries, finishing a park or an exit) in switch.c;
 * the owner-only queues in runq.h; fairness between bands and the banded
 * run order in bands.c; stealing in steal.c; mesh mode in mesh.c;
 * spinning, sleeping and waking (the no-lost-wake-up argument) in idle.c;
 * the preemption decision in preempt.c; isolation in isolate.c; the
 * inline join in task.c.
 */
#include "switch.h"

#include <sched.h>
#include <signal.h>
#include <string.h>

#include "../arch/ctx.h"
#include "../arch/fiber_san.h"
#include "../base/atomic.h"
#include "../base/bits.h"
#include "../base/check.h"
#include "../base/clock.h"
#include "fork.h"
#include "uring.h"

/* Sanitizer builds take the general switch path, which carries the
 * fiber annotations. */
#if defined(WEFT_ASAN) || defined(WEFT_TSAN)
#define WEFT_SANITIZED 1
#else
#define WEFT_SANITIZED 0
#endif

/* initial-exec: the library is position-independent, and the default
 * TLS model for that calls __tls_get_addr on every access. */
static _Thread_local weft_worker *tls_worker
    __attribute__((tls_model("initial-exec")));

weft_noinline weft_worker *weft__worker_self(void)
{
    /* The volatile read and the barrier keep the compiler from caching
     * this thread's worker across a switch (the task may have migrated). */
    __asm__ __volatile__("" ::: "memory");
    return *(weft_worker *volatile *)&tls_worker;
}

void weft__worker_set_self(weft_worker *w)
{
    tls_worker = w;
}

/*
 * Poll accounting. Every switch ends the running task's poll and starts
 * the next one's. Reading a clock there would cost more than the switch
 * itself (rdtsc is ~40 cycles on this kind of machine; measured 11.6 ns
 * against a 14 ns switch), so polls are timed on the monitor's coarse
 * clock (w->coarse_ns, stored every tick by sysmon.c): a poll is charged
 * the ticks it spans. Summed over many polls this is unbiased (a poll of
 * d ns crosses a tick boundary with probability d / tick and is then
 * charged one tick); a single poll is exact to one tick. Long polls are
 * the monitor's business: it watches each worker's poll sequence number
 * and times a poll that spans its ticks (sysmon.c). Owner worker.
 */
/* The poll of `from` spans a tick: charge the ticks to it. */
weft_noinline static void poll_tick(weft_worker *w, weft_tcb *from,
                                    uint64_t now)
{
    weft_tcb_cold *c = &w->rt->cold[from - w->hot];
    /* The clock has two writers (the monitor, and the worker waking from
     * idle): it may step back by a little, which charges nothing. */
    if (now > w->poll_t0)
        atomic_store_explicit(
            &c->cpu_ns,
            atomic_load_explicit(&c->cpu_ns, RLX) + now - w->poll_t0, RLX);
    w->poll_t0 = now;
}

static inline __attribute__((always_inline)) void
poll_turn(weft_worker *w, weft_tcb *from, uint32_t to_slot1, uintptr_t why,
          int traced)
{
    /* The execution trace: one load of a line this function writes
     * anyway, and a predictable branch, when off. weft_yield's fast path
     * passes traced = 0 (a call there would cost it callee-saved
     * registers: callgrind switch +7.5%; a test of `tracing` among its
     * conditions, +2.6%): while tracing, the worker keeps itself off that
     * path by clearing its top1 (weft__trace_run) as isolation does, and
     * takes it back on its fairness tick once the trace has stopped. */
    if (traced && weft_unlikely(atomic_load_explicit(&w->tracing, RLX)))
        weft__trace_run(w, from, to_slot1, why);
    uint64_t now = atomic_load_explicit(&w->coarse_ns, RLX);
    if (from) {
        atomic_store_explicit(&from->polls,
                              atomic_load_explicit(&from->polls, RLX) + 1, RLX);
        if (weft_unlikely(now != w->poll_t0))
            poll_tick(w, from, now);
    } else {
        w->poll_t0 = now;
    }
    /* Release: pairs with the monitor's acquire load of running, so what
     * the task's spawner wrote (its name) is visible to the monitor's
     * warning. A plain store on x86_64. */
    atomic_store_explicit(&w->running, to_slot1, memory_order_release);
}

/* ---- queues ------------------------------------------------------------ */

/* The fork records among x[0..n), grabbed from w's deque, made tasks
 * (fork.c) in place; returns how many entries are left (a record no
 * task could be made for is its parent's to run). Owner only. */
weft_noinline uint32_t weft__worker_claim_grabbed(weft_worker *w, uint32_t *x,
                                                  uint32_t n)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        int64_t s = x[i];
        if (weft__deque_is_job(x[i]) &&
            (s = weft__worker_claim(w, &w->dq, x[i])) < 0)
            continue;
        x[k++] = (uint32_t)s;
    }
    return k;
}

/* Push onto the deque; a full ring moves its older half to the injection
 * queue in one batch and retries. Owner only. */
weft_noinline void weft__worker_push_overflow(weft_worker *w, uint32_t slot)
{
    while (weft__deque_push(&w->dq, slot) < 0) {
        uint32_t half[WEFT_DEQUE_CAP / 2];
        uint32_t n = weft__deque_grab(&w->dq, half, WEFT_DEQUE_CAP / 2);
        /* Fork records leave as tasks: the queue holds slots. One OR a
         * task (it vectorizes) when there is none. */
        uint32_t any = 0;
        for (uint32_t i = 0; i < n; i++)
            any |= half[i];
        if (weft_unlikely(any & WEFT_DEQUE_JOB))
            n = weft__worker_claim_grabbed(w, half, n);
        for (uint32_t i = 0; i < n; i++)
            WEFT_EV(w->rt, half[i], WEFT_EV_INJ);
        if (n) {
            weft__inject_push(&w->rt->inject, half, n);
            weft__wake_one(w->rt);
        }
    }
}

/* Job entry x, just taken or grabbed from w's deque d, as a task to run
 * (fork.c), or -1: its parent runs it. Owner only. */
weft_noinline int64_t weft__worker_claim(weft_worker *w, weft_deque *d,
                                         uint32_t x)
{
    return weft__fork_claim(w, weft__deque_job(d, x));
}

/* Take a batch from the injection queue: run the first, queue the rest. */
weft_noinline int64_t weft__worker_from_inject(weft_worker *w)
{
    uint32_t got[INJECT_BATCH];
    uint32_t n = weft__inject_pop(&w->rt->inject, got, INJECT_BATCH);
    if (!n)
        return -1;
    for (uint32_t i = 0; i < n; i++)
        WEFT_EV(w->rt, got[i], WEFT_EV_INJTAKE);
    for (uint32_t i = n - 1; i > 0; i--)
        push_band(w, got[i]);
    if (n > 1)
        notify(w);
    return got[0];
}

/* Take one leaf of signalled tasks: run the first, queue the rest. */
weft_noinline int64_t weft__worker_from_summary(weft_worker *w)
{
    weft_summary *s = &w->rt->sum;
    uint32_t leaf = weft__summary_find(s, &w->find_cursor);
    if (leaf == UINT32_MAX)
        return -1;
    uint64_t bits = weft__summary_take(s, leaf);
    if (!bits)
        return -1;
    uint32_t first = leaf * WEFT_LEAF_SLOTS + weft_ctz64(bits);
#ifdef WEFT_DEBUG
    for (uint64_t b = bits; b; b &= b - 1)
        WEFT_EV(w->rt, leaf * WEFT_LEAF_SLOTS + weft_ctz64(b), WEFT_EV_SUMTAKE);
#endif
    if (bits & (bits - 1)) {
        for (bits &= bits - 1; bits; bits &= bits - 1)
            push_band(w, leaf * WEFT_LEAF_SLOTS + weft_ctz64(bits));
        notify(w);
    }
    return first;
}

/* The LIFO slot's task has run LIFO_MAX times in a row: it waits its
 * turn in the deque like the others. */
weft_noinline static void lifo_expire(weft_worker *w, uint32_t slot)
{
    push_local(w, slot);
}

/* Fire w's due timers. The clock is read only when a timer is armed. */
static inline void poll_timers(weft_worker *w)
{
    uint64_t next = weft__timer_next(&w->timers);
    if (weft_unlikely(next != UINT64_MAX) && next <= weft__clock_ns())
        weft__timer_run(w, weft__clock_ns());
}

/* The next task to run on w, or -1 (-2: the yielding task goes on). The
 * common cases (LIFO slot, deque, yield queue, nothing signalled) stay in
 * this frame; the rest are out-of-line calls so the fast path needs no
 * saved registers. `yband`: the band of the yielding task, or -1. Owner
 * only. */
static inline int64_t find_local(weft_worker *w, int yband);

/* find_local, then steal. For a task that parks or ends, and the
 * scheduler loop. */
static inline __attribute__((always_inline)) int64_t find_work(weft_worker *w)
{
    if (weft_unlikely(w->iso_of))
        return -1; /* an isolated task: to its thread's old frame */
    int64_t s = find_local(w, -1);
    /* Mesh mode steals too, as the last resort: pushes happen only when
     * a worker makes a scheduling decision, so a task that runs long
     * without one strands its worker's queue while neighbours starve
     * (measured: mutex_contended_fairness, 7 of 8 tasks never ran in
     * 400 ms). Everything pushed is taken before anything is stolen. */
    if (s >= 0 || w->rt->nworkers == 1 ||
        atomic_load_explicit(&w->rt->stopping, RLX))
        return s;
    return weft__steal_take(w);
}

/* Everything but stealing. A yielding task uses this alone: it is itself
 * runnable, so if nothing else is local it simply continues; stealing on
 * each such yield cost yield_many 2x in failed attempts on victims whose
 * tasks sat in their private yield queues (measured: 1.2 M attempts for
 * 2 steals). Idle workers get yielded tasks through weft__steal_share. */
/* s, taken by a single-band step, if it is of the normal band; else it
 * goes to its band and the banded order decides. */
weft_noinline static int64_t route_xband(weft_worker *w, uint32_t s, int yband)
{
    weft__bands_push(w, s, band_of(&w->hot[s]));
    return weft__bands_find(w, yband);
}

static inline int64_t routed(weft_worker *w, int64_t s, int yband)
{
    if (s < 0 || weft_likely(band_of(&w->hot[s]) == BAND_NORMAL))
        return s;
    return route_xband(w, (uint32_t)s, yband);
}

static inline __attribute__((always_inline)) int64_t find_local(weft_worker *w,
                                                                int yband)
{
    int64_t s;
    /* Stopping: every caller then switches to the scheduler loop, which
     * exits; weft_rt_destroy also sets a summary bit so that the yield
     * fast path, which does not come here, is diverted (rt.c). */
    if (weft_unlikely(atomic_load_explicit(&w->rt->stopping, RLX)))
        return -1;
    uint32_t countdown = w->fair_countdown--;
    if (weft_unlikely(countdown <= 1)) { /* <= : a zeroed worker must
                                            tick, not wrap */
        w->fair_countdown = FAIR_TICK;
        /* The yield fast path back after a trace (poll_turn). */
        if (weft_unlikely(!w->top1) && !w->iso_of &&
            !atomic_load_explicit(&w->tracing, RLX) &&
            w->rt->sum.top_count == 1)
            w->top1 = w->rt->sum.top;
        weft__bands_sync(w);
        poll_timers(w);
        /* Descriptors: a poll without blocking, when tasks wait on some
         * and no idle worker blocks in the poller (poller.c). */
        if (weft_unlikely(weft__poller_wanted(&w->rt->poller)))
            weft__poller_poll(w->rt, &w->pollev);
        /* Its io_uring's operations submitted, completions reaped
         * (uring.c, "When it reaps"). */
        if (weft_unlikely(w->uring != NULL) && weft__uring_busy(w))
            weft__uring_reap(w);
        if (w->rt->mesh)
            weft__mesh_tick(w);
        int others_idle = atomic_load_explicit(&w->rt->idle, RLX) != 0;
        int yielded = w->yq.head || w->xbands;
        weft__steal_publish(w, yielded && others_idle);
        if (others_idle && yielded)
            weft__steal_share(w);
        if ((s = weft__worker_from_inject(w)) >= 0)
            return routed(w, s, yband);
    } else if (weft_unlikely(countdown % IO_TICK == 0) &&
               weft_unlikely(weft__poller_wanted(&w->rt->poller)) &&
               !w->rt->mesh) {
        /* Between fairness ticks, every IO_TICK-th decision polls too
         * while tasks wait on descriptors (poller.c, "Who polls"); not
         * in mesh mode, where the tasks it wakes go through mailboxes
         * that are flushed on the fairness tick. (Its io_uring is
         * reaped on the fairness tick and when idle only: uring.c.) */
        weft__poller_poll(w->rt, &w->pollev);
    }
    /* More than one band may have work: the banded order (a yielder of
     * another band than normal counts as one). */
    if (weft_unlikely(w->xbands || (yband >= 0 && yband != BAND_NORMAL)))
        return weft__bands_find(w, yband);
    if (w->lifo) {
        s = w->lifo - 1;
        w->lifo = 0;
        if (weft_likely(w->lifo_runs < LIFO_MAX)) {
            w->lifo_runs++;
            return s;
        }
        lifo_expire(w, (uint32_t)s);
    }
    w->lifo_runs = 0;
    if (weft__deque_maybe_nonempty(&w->dq)) {
        uint32_t x = weft__deque_take(&w->dq);
        if (weft_likely(x < WEFT_DEQUE_JOB))
            return x;
        if (x != WEFT_DEQUE_EMPTY &&
            (s = weft__worker_claim(w, &w->dq, x)) >= 0)
            return s;
    }
    if (w->rt->mesh) {
        if (w->mesh.nstaged)
            weft__mesh_flush(w);
        if (atomic_load_explicit(&w->inbox_top, RLX) &&
            (s = weft__mesh_from_mail(w)) >= 0)
            return routed(w, s, yband);
    }
    if (weft_unlikely(weft__summary_any(&w->rt->sum)) &&
        (s = weft__worker_from_summary(w)) >= 0)
        return routed(w, s, yband);
    /* The steps above may have queued tasks of other bands. */
    if (weft_unlikely(w->xbands))
        return weft__bands_find(w, yband);
    if ((s = yq_pop(w)) >= 0)
        return s;
    return weft__inject_len(&w->rt->inject)
               ? routed(w, weft__worker_from_inject(w), yband)
               : -1;
}

/* Switch from the running context (task `from`, or the scheduler when
 * NULL) to task slot `to` (or the scheduler when negative), carrying
 * `msg`. Returns when the leaving context is resumed. Owner worker. */
/* Always inlined: in the one caller that never returns
 * (weft__task_switch_dead, kept out of TSan's instrumentation) an
 * out-of-line, instrumented copy would leave one TSan frame per ended
 * task on the stack's fiber. */
static inline __attribute__((always_inline)) void
switch_ctx(weft_worker *w, weft_tcb *from, int64_t to, uintptr_t msg)
{
    weft_rt *rt = w->rt;
    void **save = from ? &from->sp : &w->ctx.sched_sp;
    void *to_sp, *fiber;
    const void *bottom = NULL;
    size_t size = 0;
    if (from && weft_unlikely(atomic_load_explicit(&from->state, RLX) &
                              (WEFT_TS_SMALL | WEFT_TS_CANARY)))
        weft__switch_check_canary(w, from);
    poll_turn(w, from, to >= 0 ? (uint32_t)to + 1 : 0, msg & MSG_MASK, 1);
    if (from)
        WEFT_EVW(w, slot_of(rt, from), WEFT_EV_OUT);
    if (to >= 0) {
        weft_tcb *t = &rt->hot[to];
        WEFT_EVW(w, (uint32_t)to, WEFT_EV_IN);
        if (weft_unlikely(!t->sp))
            weft__switch_bind(w, t, (uint32_t)to);
        w->current = t;
        w->cur_slot = (uint32_t)to;
        to_sp = t->sp;
        fiber = weft__cold_fiber(&rt->cold[to]);
        stat_inc(&w->st.switches);
#ifdef WEFT_ASAN
        int cls =
            (atomic_load_explicit(&t->state, RLX) & WEFT_TS_SMALL) ? 1 : 0;
        uint32_t si = rt->cold[to].stack - 1;
        bottom = weft__stack_bottom(&rt->pool[cls], si);
        size = (size_t)(weft__stack_top(&rt->pool[cls], si) - (char *)bottom);
#endif
    } else {
        w->current = NULL;
        to_sp = w->ctx.sched_sp;
        fiber = w->ctx.sched_fiber;
#ifdef WEFT_ASAN
        bottom = w->ctx.stack_lo;
        size = w->ctx.stack_size;
#endif
    }
    (void)bottom;
    (void)size;
    (void)fiber;
    void *fake = NULL;
    (void)fake;
    weft_san_start_switch((msg & MSG_MASK) == MSG_DEAD ? NULL : &fake, bottom,
                          size);
    weft_tsan_switch(fiber);
    uintptr_t got = (uintptr_t)weft__ctx_switch(save, to_sp, (void *)msg);
    weft_san_finish_switch(fake);
    if (got)
        after_switch(weft__worker_self(), got);
}

/* ---- what tasks call ------------------------------------------------- */

/* Does the summary show anything for this worker to take, other than its
 * own yield bit? Only valid with a single top word (w->top1). The owner
 * wrote its own words last, so the three loads hit its cache. */
static inline int others_signalled(weft_worker *w)
{
    uint64_t t = atomic_load_explicit(w->top1, RLX);
    if (weft_likely(!t))
        return 0;
    return t != w->ytop_bit ||
           atomic_load_explicit(w->yroot, RLX) != w->yroot_bit ||
           atomic_load_explicit(w->yleaf, RLX) != WEFT_LEAF_YIELD;
}

/* The general yield: any run-order step may supply the next task. */
/*
 * Small stacks. A task that parks, yields or ends makes the next decision
 * (find_work: due timers and their wake-ups, a poll, a steal) on its own
 * stack, which saves a switch to the scheduler loop and back. That chain
 * needs about 1.5 KiB more than the wait itself (a task sleeping in
 * weft_sleep_ns overflowed a 1,536-byte stack, Release and Debug alike),
 * so on a small class under 4 KiB (rt->small_tiny) a small-class task
 * switches to the scheduler loop instead, which decides on the worker's
 * own stack: one switch more a park for those tasks only. State word s.
 */
static inline int off_stack(weft_worker *w, uint64_t s)
{
    return (s & WEFT_TS_SMALL) && w->rt->small_tiny;
}

weft_noinline static void yield_slow(weft_worker *w)
{
    weft_tcb *cur = w->current;
    int band = band_of(cur);
    /* An isolated task's yield ends its isolation: to its thread's old
     * frame (isolate.c). A task on a tiny stack goes to the scheduler
     * loop, which queues it and decides ("Small stacks"). */
    int to_loop =
        w->iso_of || off_stack(w, atomic_load_explicit(&cur->state, RLX));
    int64_t next = to_loop ? -1 : find_local(w, band);
    if (next < 0 && !to_loop && !atomic_load_explicit(&w->rt->stopping, RLX)) {
        /* Nothing else is ready, or its band's turn goes on: the task
         * goes on, but its poll ends here as if it had switched. A task
         * that yields is no hog, whatever its yield finds: timed as one
         * endless poll, a lone yielder was warned "ran 80 ms without
         * yielding" and isolated, and under strict fairness so was a
         * critical task that yields while a low band waits (found by
         * programs written from weft.h). */
        poll_turn(w, cur, w->cur_slot + 1, MSG_YIELD, 0);
        stat_inc(&w->st.kept_yields);
        return;
    }
    stat_inc(&w->st.yields);
    switch_ctx(w, cur, next,
               (uintptr_t)cur | (band == BAND_NORMAL ? MSG_YIELD : MSG_YBAND));
}

/* The fast path below tests "normal band, no small stack, no canary"
 * with one xor and one and (TS_BAND, TS_NORMAL: runq.h). */

/*
 * weft_yield's fast path covers the steady state of yielding tasks: the
 * next task is the head of the yield queue and nothing earlier in the run
 * order has work. It keeps no value live across the switch (everything is
 * re-read after it), so it needs no callee-saved registers of its own and
 * the switch's register save is the only one paid. Anything else goes to
 * yield_slow, which follows the whole run order.
 */
void weft_yield(void)
{
    weft_worker *w = weft__worker_self();
    if (weft_unlikely(!w || !w->current)) {
        sched_yield();
        return;
    }
    weft_tcb *cur = w->current;
    uint32_t head = w->yq.head;
    if (weft_unlikely(WEFT_SANITIZED || w->fair_countdown <= 1 ||
                      w->lifo_xbands || !head || !w->top1 ||
                      others_signalled(w) ||
                      weft__deque_maybe_nonempty(&w->dq) ||
                      ((atomic_load_explicit(&cur->state, RLX) ^ TS_NORMAL) &
                       (WEFT_TS_SMALL | WEFT_TS_CANARY | TS_BAND)))) {
        yield_slow(w);
        return;
    }
    w->fair_countdown--;
    w->lifo_runs = 0;
    uint32_t next = head - 1;
    weft_tcb *t = &w->hot[next];
    WEFT_EVW(w, next, WEFT_EV_IN);
    WEFT_EVW(w, w->cur_slot, WEFT_EV_OUT);
    w->yq.head = atomic_load_explicit(&w->link[next], RLX);
    if (!w->yq.head)
        w->yq.tail = 0;
    w->current = t;
    w->cur_slot = next;
    poll_turn(w, cur, head, MSG_YIELD, 0);
    stat_inc(&w->st.fast_yields);
    uintptr_t got = (uintptr_t)weft__ctx_switch(
        &cur->sp, t->sp, (void *)((uintptr_t)cur | MSG_YIELD));
    if (got)
        after_switch(weft__worker_self(), got);
}

void weft__task_park(void)
{
    weft_worker *w = weft__worker_self();
    weft_tcb *cur = w->current;
    uint64_t s = atomic_load_explicit(&cur->state, RLX);
    if (s & WEFT_TS_WAKE) {
        /* A wake-up is pending: consume it instead of parking. Acquire:
         * pairs with the unparker's CAS, so what it published before
         * waking us is visible. */
        if (atomic_compare_exchange_strong_explicit(
                &cur->state, &s, s & ~WEFT_TS_WAKE, memory_order_acquire,
                RLX)) {
            WEFT_EV(w->rt, w->cur_slot, WEFT_EV_PARKSHORT);
            return;
        }
    }
    stat_inc(&w->st.parks);
    switch_ctx(w, cur, weft_unlikely(off_stack(w, s)) ? -1 : find_work(w),
               (uintptr_t)cur | MSG_PARK);
}

#if defined(WEFT_CTX_HAS_START) && !WEFT_SANITIZED
/*
 * Stack bequest. The task that just ended is abandoned, not suspended:
 * when the next task has never run and wants the same stack class, it
 * simply starts on the ended task's stack (weft__ctx_start resets the
 * stack pointer to its top). That skips the register save, the stack
 * release and get, and building a fresh frame; spawn-heavy work (spawn,
 * chained_spawn, fork-join leaves) then runs on one hot stack. The ended
 * task's end is published while still on the stack, which is safe
 * because the stack is not released: it changes owner.
 */
weft_noreturn static void bequeath(weft_worker *w, weft_tcb *cur, uint32_t slot,
                                   uint32_t next)
{
    weft_rt *rt = w->rt;
    if (atomic_load_explicit(&cur->state, RLX) &
        (WEFT_TS_SMALL | WEFT_TS_CANARY))
        weft__switch_check_canary(w, cur);
    weft_tcb_cold *c = &rt->cold[slot], *n = &rt->cold[next];
    weft_tcb *t = &w->hot[next];
    int cls = (atomic_load_explicit(&t->state, RLX) & WEFT_TS_SMALL) ? 1 : 0;
    uint32_t i = c->stack - 1;
    n->stack = i + 1;
    weft__cold_set_fiber(n, weft__cold_fiber(c));
    c->stack = 0;
    atomic_store_explicit(&rt->pool[cls].owner[i], next + 1, RLX);
    if (weft_unlikely(atomic_load_explicit(&cur->state, RLX) & WEFT_TS_CANARY))
        atomic_fetch_or_explicit(&t->state, WEFT_TS_CANARY, RLX);
    poll_turn(w, cur, next + 1, MSG_DEAD, 1);
    WEFT_EV(rt, next, WEFT_EV_IN);
    weft__task_publish_end(w, cur, slot);
    w->current = t;
    w->cur_slot = next;
    stat_inc(&w->st.switches);
    weft__ctx_start(weft__stack_top(&rt->pool[cls], i) - WEFT_TLS_BYTES,
                    weft__switch_entry, NULL);
}
#endif

WEFT_NO_TSAN void weft__task_switch_dead(void)
{
    weft_worker *w = weft__worker_self();
    weft_tcb *cur = w->current;
    int64_t next =
        weft_unlikely(off_stack(w, atomic_load_explicit(&cur->state, RLX)))
            ? -1
            : find_work(w);
#if defined(WEFT_CTX_HAS_START) && !WEFT_SANITIZED
    if (next >= 0 && !w->hot[next].sp &&
        !((atomic_load_explicit(&w->hot[next].state, RLX) ^
           atomic_load_explicit(&cur->state, RLX)) &
          WEFT_TS_SMALL))
        bequeath(w, cur, w->cur_slot, (uint32_t)next);
#endif
    switch_ctx(w, cur, next, (uintptr_t)cur | MSG_DEAD);
    weft__die("worker", "a finished task was resumed");
}

/* A task of another band than normal made ready on w: its band's deque,
 * where the band order sees it. */
weft_noinline static void ready_xband(weft_worker *w, uint32_t slot)
{
    weft__bands_push(w, slot, band_of(&w->hot[slot]));
    notify(w);
}

/* Always inlined (here and into weft__sched_ready): out of line, the
 * band check made it a call of its own on every unpark (measured with
 * callgrind: pingpong +2.4 M instructions per 120 k round trips). */
/* The LIFO slot's previous task goes to the deque. Out of line, so that
 * the common case (an empty slot) saves no register (callgrind:
 * weft__sched_ready_local 19 -> 11 instructions a call). */
weft_noinline static void lifo_spill(weft_worker *w, uint32_t slot)
{
    push_local(w, slot);
    if (weft_unlikely(w->rt->mesh))
        weft__mesh_balance(w);
    else
        notify(w);
}

static inline __attribute__((always_inline)) void ready_local(weft_worker *w,
                                                              uint32_t slot)
{
    if (weft_unlikely(w->iso_of)) { /* never queued on an isolated task */
        signal_task(w->rt, slot);
        return;
    }
    /* The LIFO slot holds normal-band tasks only. */
    if (weft_unlikely((atomic_load_explicit(&w->hot[slot].state, RLX) &
                       TS_BAND) != TS_NORMAL)) {
        ready_xband(w, slot);
        return;
    }
    uint32_t old = w->lifo;
    WEFT_EVW(w, slot, WEFT_EV_LIFO);
    w->lifo = slot + 1;
    /* Wakes from descriptors (the poller's events, the ring's
     * completions: wake_fifo): the task the newest displaces goes to the
     * tail of the FIFO yield queue, not the deque's bottom, which the
     * owner also takes from. With the deque, each poll's batch went on
     * top of older wakes, and under steady load the oldest waited until
     * it drained: httpd (wrk, 256 connections, 1 worker) had p99 5.4-48.7
     * ms and maxima of 50-116 ms; with the queue 3.3-5.5 ms and 12-13 ms
     * (one 103 ms), at the same 83-86k req/s; at 2 workers 68.8-72.5k
     * req/s against 54.0-55.8k, p99 6.2-6.6 against 19.6-57.1 ms. The
     * queue is shared with idle workers on the fairness tick (steal.c).
     * Tokio and Go do the same: one LIFO slot before a FIFO queue.
     * Not a task never run (no stack pointer yet: spawned into the slot):
     * the yield queue holds started tasks only, because weft_yield's fast
     * path switches to its head as it is; one switched to a null stack
     * pointer (api.io_wake_displaces_a_fresh_task_then_yield). Checking
     * here, on the wake path, and not in that fast path: callgrind, switch
     * +2.4% and yield_many +1.3% with the check there. */
    if (old) {
        if (weft_unlikely(w->wake_fifo) && w->hot[old - 1].sp)
            yq_push(w, old - 1);
        else
            lifo_spill(w, old - 1);
    }
}

void weft__sched_ready_local(weft_worker *w, uint32_t slot)
{
    ready_local(w, slot);
}

void weft__sched_ready(weft_rt *rt, uint32_t slot)
{
    weft_worker *w = weft__worker_self();
    if (w && w->rt == rt) {
        ready_local(w, slot);
        return;
    }
    signal_task(rt, slot);
}

/* ---- preemption (preempt.c decides) --------------------------------- */

int weft__worker_preempt(weft_worker *w)
{
    weft_tcb *cur = w->current;
    /* The task will leave with the signal stack its handler runs on: the
     * thread needs a spare before it runs anything else (sigstack.c). */
    if (!weft__sigstack_reserve(w))
        return -1;
    poll_timers(w); /* the due timer may be why it is preempted */
    int band = band_of(cur);
    int64_t next = find_local(w, band);
    /* Stopping: find_local has nothing, and the task goes to the
     * scheduler loop, which exits (sysmon.c, stop_preemptible). */
    if (next < 0 && !atomic_load_explicit(&w->rt->stopping, RLX)) {
        /* nothing else is ready, or its band's turn goes on */
        weft__sigstack_unreserve(w);
        return 0;
    }
    stat_inc(&w->st.preemptions);
    stat_inc(&w->st.yields);
    if (weft__tracing(w->rt))
        weft__trace_event(w->rt, w, WEFT_TEV_PREEMPT, w->cur_slot, 0, 0, 0, 0);
    weft__sigstack_leave(w); /* the entered side installs the spare */
    switch_ctx(w, cur, next,
               (uintptr_t)cur |
                   (band == BAND_NORMAL ? MSG_PREEMPT : MSG_PBAND));
    return 1;
}

/* ---- the loop ------------------------------------------------------- */

int weft__worker_loop(weft_worker *w)
{
    tls_worker = w;
    w->fair_countdown = FAIR_TICK;
    w->fair.band_cur = -1;
    weft__bands_sync(w);
    w->ctx.sched_fiber = weft_tsan_current();
#ifdef WEFT_ASAN
    pthread_attr_t a;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        void *lo;
        size_t sz;
        pthread_attr_getstack(&a, &lo, &sz);
        w->ctx.stack_lo = lo;
        w->ctx.stack_size = sz;
        pthread_attr_destroy(&a);
    }
#endif
    while (!atomic_load_explicit(&w->rt->stopping, memory_order_acquire)) {
        if (weft_unlikely(tls_worker != w)) {
            /* This thread kept an isolated task, which has now switched
             * out: w has another thread (isolate.c). */
            weft__isolate_retire(tls_worker);
            return 1;
        }
        poll_timers(w);
        int64_t s = find_work(w);
        if (s >= 0 && w->rt->mesh) /* fed: no longer hungry */
            weft__mesh_fed(w);
        if (s >= 0)
            switch_ctx(w, NULL, s, MSG_NONE);
        else
            weft__idle_wait(w);
    }
    tls_worker = NULL;
    return 0;
}
