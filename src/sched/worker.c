/*
 * worker.c - a worker's run loop, its run order, and every context switch.
 *
 * Problem. A switch between two tasks should cost what the hardware
 * charges for saving and restoring the callee-saved registers, plus the
 * few loads that pick the next task. Going through a scheduler context
 * (task -> scheduler -> task) doubles that, so a task that yields, parks or
 * ends switches straight to the next task when there is one, and to the
 * worker's scheduler context (its thread stack) only when there is none.
 *
 * Finishing a switch-out. A task that parks or ends cannot publish that
 * itself: until its registers are saved and its stack is left, another
 * worker must not resume it, and a dead task's stack must not be reused.
 * So every switch carries a message to the context it enters: the task
 * that left, tagged with what it did (YIELD, PARK, DEAD). The entered side
 * runs after_switch() first thing and completes the departure: it queues
 * a yielder, publishes a parker as PARKED (or requeues it when a wake-up
 * raced with the park), releases a dead task's stack and publishes it as
 * DONE. This is Go's "park_m on g0" without the trip through g0.
 *
 * Run order (DESIGN.md §4), each step only when the previous found
 * nothing: the LIFO slot (bounded to LIFO_MAX consecutive runs), the
 * deque, the signalled tasks of the summary tree, the yield queue, the
 * injection queue, then stealing from another worker's deque (not for a
 * yield: the yielder is itself runnable); every FAIR_TICK-th decision
 * looks at the injection queue first so it is never starved, and shares
 * yielded tasks when workers sleep. Mailboxes (mesh mode) come later.
 *
 * Sleeping (the no-lost-wake-up argument). A worker with nothing to do
 * announces itself: sleep = 1, then an RMW idle += 1. It then re-checks
 * every place work can appear from another thread (summary top words,
 * the injection queue, every deque, the stop flag) and futex-waits on
 * `sleep` only if all are empty. A producer publishes its work, then does
 * an RMW idle += 0 and, if it read non-zero, clears some sleeper's `sleep`
 * (CAS 1 -> 0) and wakes it. The two RMWs on `idle` are ordered in its
 * modification order, and each reads the other's value or a later one:
 * - the sleeper's RMW first: the producer's RMW (acquire) reads a value
 *   from the sleeper's release sequence, so it sees idle >= 1 and the
 *   sleep = 1 stored before it, and wakes the worker (a futex wait on a
 *   word already 0 returns at once);
 * - the producer's RMW first: the sleeper's RMW (acquire) reads from it,
 *   so the producer's publication happens-before the sleeper's re-check,
 *   which sees the work and does not sleep.
 * Either way no work is left with every worker asleep. The edge is on a
 * variable, not a stand-alone fence, so ThreadSanitizer sees it too
 * (DESIGN.md §9). tests/unit/test_summary.c wakes parked tasks 10^6 times
 * from plain threads, and tests/stress the same across workers: a lost
 * wake-up hangs them.
 *
 * Wake-ups for new work on a worker's own deque (notify) skip the RMW:
 * see notify() for why that is safe.
 */
#include "sched.h"

#include <sched.h>
#include <signal.h>
#include <string.h>

#include "../arch/ctx.h"
#include "../arch/fiber_san.h"
#include "../base/atomic.h"
#include "../base/bits.h"
#include "../base/check.h"
#include "../base/clock.h"
#include "../base/futex.h"

#define RLX memory_order_relaxed
#define LIFO_MAX 3   /* consecutive LIFO-slot runs before it yields */
#define FAIR_TICK 61 /* every so many decisions, injection queue first */
#define INJECT_BATCH 32
#define SPIN_ROUNDS 64

/* Sanitizer builds take the general switch path, which carries the
 * fiber annotations. */
#if defined(WEFT_ASAN) || defined(WEFT_TSAN)
#define WEFT_SANITIZED 1
#else
#define WEFT_SANITIZED 0
#endif

/* Messages carried by a switch: the task that left | what it did. Hot
 * TCBs are 32 bytes in a cache-aligned array, so 5 low bits are free. */
enum { MSG_NONE = 0, MSG_YIELD = 1, MSG_PARK = 2, MSG_DEAD = 3 };
#define MSG_MASK ((uintptr_t)31)

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

/* ---- queues ------------------------------------------------------------ */

/* Push onto the deque; a full ring moves its older half to the injection
 * queue in one batch and retries. Owner only. */
weft_noinline static void push_overflow(weft_worker *w, uint32_t slot)
{
    while (weft__deque_push(&w->dq, slot) < 0) {
        uint32_t half[WEFT_DEQUE_CAP / 2];
        uint32_t n = weft__deque_grab(&w->dq, half, WEFT_DEQUE_CAP / 2);
        weft__inject_push(&w->rt->inject, half, n);
        weft__wake_one(w->rt);
    }
}

static inline void push_local(weft_worker *w, uint32_t slot)
{
    if (weft_unlikely(weft__deque_push(&w->dq, slot) < 0))
        push_overflow(w, slot);
}

/*
 * New stealable work on this worker's deque: wake an idle worker unless
 * one is already searching (it will find the work, and wakes a successor
 * when it does: see idle()). At most one worker is woken per burst, so
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

static void yq_push(weft_worker *w, uint32_t slot)
{
    atomic_store_explicit(&w->link[slot], 0, RLX);
    if (w->yq_tail)
        atomic_store_explicit(&w->link[w->yq_tail - 1], slot + 1, RLX);
    else
        w->yq_head = slot + 1;
    w->yq_tail = slot + 1;
}

static int64_t yq_pop(weft_worker *w)
{
    uint32_t h = w->yq_head;
    if (!h)
        return -1;
    w->yq_head = atomic_load_explicit(&w->link[h - 1], RLX);
    if (!w->yq_head)
        w->yq_tail = 0;
    return h - 1;
}

/* Take a batch from the injection queue: run the first, queue the rest. */
weft_noinline static int64_t from_inject(weft_worker *w)
{
    uint32_t got[INJECT_BATCH];
    uint32_t n = weft__inject_pop(&w->rt->inject, got, INJECT_BATCH);
    if (!n)
        return -1;
    for (uint32_t i = n - 1; i > 0; i--)
        push_local(w, got[i]);
    if (n > 1)
        notify(w);
    return got[0];
}

/* Take one leaf of signalled tasks: run the first, queue the rest. */
weft_noinline static int64_t from_summary(weft_worker *w)
{
    weft_summary *s = &w->rt->sum;
    uint32_t leaf = weft__summary_find(s, &w->find_cursor);
    if (leaf == UINT32_MAX)
        return -1;
    uint64_t bits = weft__summary_take(s, leaf);
    if (!bits)
        return -1;
    uint32_t first = leaf * WEFT_LEAF_SLOTS + weft_ctz64(bits);
    if (bits & (bits - 1)) {
        for (bits &= bits - 1; bits; bits &= bits - 1)
            push_local(w, leaf * WEFT_LEAF_SLOTS + weft_ctz64(bits));
        notify(w);
    }
    return first;
}

/*
 * The yield bit (summary.h) tells other workers that this one has yielded
 * tasks. It matters only to a worker that could take them, so it is
 * published on the fairness tick when the yield queue is non-empty and
 * some worker is idle (publishing it then wakes one), and cleared on the
 * tick or before sleeping otherwise. It is not kept exact on every empty
 * <-> non-empty change of the queue: two tasks yielding to each other
 * flip it on every switch, and that cost six atomic RMWs per switch
 * (measured: switch 6.5 -> 38 ns); publishing on every tick regardless of
 * idle workers cost 0.7 ns per switch in the owner's fast-path check. A
 * stale bit costs a thief one look at an empty queue; a late one delays a
 * steal by at most FAIR_TICK decisions. Owner only.
 */
weft_noinline static void publish_yield(weft_worker *w, int want)
{
    if (want == w->yield_published)
        return;
    if (want) {
        if (weft__summary_yield_set(&w->rt->sum, w->leaf))
            weft__wake_one(w->rt);
    } else
        weft__summary_yield_clear(&w->rt->sum, w->leaf);
    w->yield_published = want;
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

/*
 * Steal one task from another worker's deque, visiting victims in a
 * random rotation (so thieves spread over victims instead of all hitting
 * worker 0). A lost CAS race (ABORT) is retried on the same victim a few
 * times: the deque was not empty. Signalled tasks of every worker are
 * already visible to this worker through the summary tree, which
 * find_work reads before it gets here. Owner only.
 */
weft_noinline static int64_t steal(weft_worker *w)
{
    weft_rt *rt = w->rt;
    uint32_t n = rt->nworkers, start = next_rand(w) % n;
    for (uint32_t i = 0; i < n; i++) {
        weft_worker *v = &rt->workers[(start + i) % n];
        if (v == w)
            continue;
        stat_inc(&w->st.steal_attempts);
        for (int tries = 0; tries < 4; tries++) {
            uint32_t x = weft__deque_steal(&v->dq);
            if (x == WEFT_DEQUE_EMPTY)
                break;
            if (x != WEFT_DEQUE_ABORT) {
                stat_inc(&w->st.steals);
                return x;
            }
        }
    }
    return -1;
}

/* The yield queue is owner-only; when other workers sit idle, yielded
 * tasks move to the deque, where they can be stolen. Owner only. */
weft_noinline static void share_yielded(weft_worker *w)
{
    int64_t s;
    int moved = 0;
    while ((s = yq_pop(w)) >= 0) {
        push_local(w, (uint32_t)s);
        moved = 1;
    }
    if (moved)
        weft__wake_one(w->rt);
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

/* The next task to run on w, or -1. The common cases (LIFO slot, deque,
 * yield queue, nothing signalled) stay in this frame; the rest are
 * out-of-line calls so the fast path needs no saved registers. Owner
 * only. */
static inline int64_t find_local(weft_worker *w);

/* find_local, then steal. For a task that parks or ends, and the
 * scheduler loop. */
static inline int64_t find_work(weft_worker *w)
{
    int64_t s = find_local(w);
    if (s >= 0 || w->rt->nworkers == 1 ||
        atomic_load_explicit(&w->rt->stopping, RLX))
        return s;
    return steal(w);
}

/* Everything but stealing. A yielding task uses this alone: it is itself
 * runnable, so if nothing else is local it simply continues; stealing on
 * each such yield cost yield_many 2x in failed attempts on victims whose
 * tasks sat in their private yield queues (measured: 1.2 M attempts for
 * 2 steals). Idle workers get yielded tasks through share_yielded. */
static inline int64_t find_local(weft_worker *w)
{
    int64_t s;
    /* Stopping: every caller then switches to the scheduler loop, which
     * exits; weft_rt_destroy also sets a summary bit so that the yield
     * fast path, which does not come here, is diverted (rt.c). */
    if (weft_unlikely(atomic_load_explicit(&w->rt->stopping, RLX)))
        return -1;
    if (weft_unlikely(w->fair_countdown-- <= 1)) { /* <= : a zeroed worker
                                                       must tick, not wrap */
        w->fair_countdown = FAIR_TICK;
        poll_timers(w);
        int others_idle = atomic_load_explicit(&w->rt->idle, RLX) != 0;
        publish_yield(w, w->yq_head != 0 && others_idle);
        if (others_idle && w->yq_head)
            share_yielded(w);
        if ((s = from_inject(w)) >= 0)
            return s;
    }
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
        if (x != WEFT_DEQUE_EMPTY)
            return x;
    }
    if (weft_unlikely(weft__summary_any(&w->rt->sum)) &&
        (s = from_summary(w)) >= 0)
        return s;
    if ((s = yq_pop(w)) >= 0)
        return s;
    return weft__inject_len(&w->rt->inject) ? from_inject(w) : -1;
}

/* Anything another thread may have made runnable for this worker: the
 * injection queue, signal bits, another worker's deque, or the stop flag.
 * O(workers), on the way to sleep only. */
static int has_foreign_work(weft_worker *w)
{
    weft_rt *rt = w->rt;
    if (weft__inject_len(&rt->inject))
        return 1;
    if (weft__summary_any(&rt->sum))
        return 1;
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        weft_deque *d = &rt->workers[i].dq;
        if (atomic_load_explicit(&d->bottom, RLX) >
            atomic_load_explicit(&d->top, RLX))
            return 1;
    }
    return atomic_load_explicit(&rt->stopping, RLX);
}

/* ---- switching ---------------------------------------------------------- */

static inline void after_switch(weft_worker *w, uintptr_t msg);
static void task_entry(void *msg);

/* Give task t (first run) a stack and a fresh frame. Owner worker. */
weft_noinline static void bind_stack(weft_worker *w, weft_tcb *t, uint32_t slot)
{
    weft_rt *rt = w->rt;
    uint64_t st = atomic_load_explicit(&t->state, RLX);
    int cls = (st & WEFT_TS_SMALL) ? 1 : 0;
    weft_stack_pool *p = &rt->pool[cls];
    int64_t i = weft__stack_get(p, &w->cache[cls]);
    if (weft_unlikely(i < 0)) /* max_tasks stacks per class: impossible */
        weft__die("stack", "no stack left for task slot %u", slot);
    rt->cold[slot].stack = (uint32_t)i + 1;
    atomic_store_explicit(&p->owner[i], slot + 1, RLX);
    if (!cls && (atomic_load_explicit(&p->flags[i], RLX) & WEFT_STK_CANARY))
        atomic_fetch_or_explicit(&t->state, WEFT_TS_CANARY, RLX);
    weft__cold_set_fiber(&rt->cold[slot], weft__stack_fiber(p, (uint32_t)i));
    t->sp = weft__ctx_make(weft__stack_top(p, (uint32_t)i) - WEFT_TLS_BYTES,
                           task_entry);
}

weft_cold static void canary_dead(weft_worker *w, weft_tcb *t)
{
    weft_rt *rt = w->rt;
    uint32_t slot = slot_of(rt, t);
    int cls = (atomic_load_explicit(&t->state, RLX) & WEFT_TS_SMALL) ? 1 : 0;
    weft__die("stack",
              "stack overflow in task '%s' (slot %u, %lu-byte %s stack, "
              "canary overwritten)",
              rt->cold[slot].name, slot, (unsigned long)rt->pool[cls].size,
              cls ? "small" : "default");
}

/* Switch-out check of a canary-protected stack. */
weft_noinline static void check_canary(weft_worker *w, weft_tcb *from)
{
    weft_rt *rt = w->rt;
    uint32_t i = rt->cold[slot_of(rt, from)].stack - 1;
    int cls = (atomic_load_explicit(&from->state, RLX) & WEFT_TS_SMALL) ? 1 : 0;
    if (!weft__stack_canary_ok(&rt->pool[cls], i))
        canary_dead(w, from);
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
    void **save = from ? &from->sp : &w->sched_sp;
    void *to_sp, *fiber;
    const void *bottom = NULL;
    size_t size = 0;
    if (from && weft_unlikely(atomic_load_explicit(&from->state, RLX) &
                              (WEFT_TS_SMALL | WEFT_TS_CANARY)))
        check_canary(w, from);
    if (to >= 0) {
        weft_tcb *t = &rt->hot[to];
        if (weft_unlikely(!t->sp))
            bind_stack(w, t, (uint32_t)to);
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
        to_sp = w->sched_sp;
        fiber = w->sched_fiber;
#ifdef WEFT_ASAN
        bottom = w->sched_stack_lo;
        size = w->sched_stack_size;
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

/* Everything a task does between its first switch-in and its end, in a
 * function that returns, so sanitizers see balanced frames. */
weft_noinline static void task_run(uintptr_t msg)
{
    weft_worker *w = weft__worker_self();
    after_switch(w, msg);
    weft_tcb *t = w->current;
    weft__task_exit(t->fn(t->arg));
}

/* First code of every task, on its fresh stack. It never returns, so it
 * is left out of TSan's instrumentation: its frame would otherwise stay
 * on the shadow stack of the stack's fiber, one per task the stack ever
 * ran, until TSan's depot overflows. */
WEFT_NO_TSAN static void task_entry(void *msg)
{
    weft_san_finish_switch(NULL);
    task_run((uintptr_t)msg);
    weft__task_switch_dead();
}

weft_noinline static void after_switch_slow(weft_worker *w, uintptr_t msg);

/* Complete the departure of the task that just left (see the header).
 * A yield, the common case, is handled inline. */
static inline void after_switch(weft_worker *w, uintptr_t msg)
{
    if ((msg & MSG_MASK) == MSG_YIELD)
        yq_push(w, wslot_of(w, (weft_tcb *)(msg & ~MSG_MASK)));
    else if (msg)
        after_switch_slow(w, msg);
}

static void after_switch_slow(weft_worker *w, uintptr_t msg)
{
    weft_rt *rt = w->rt;
    weft_tcb *prev = (weft_tcb *)(msg & ~MSG_MASK);
    uint32_t slot = slot_of(rt, prev);
    switch (msg & MSG_MASK) {
    case MSG_PARK: {
        uint64_t s = atomic_load_explicit(&prev->state, RLX);
        for (;;) {
            if (s & WEFT_TS_WAKE) {
                /* An unpark raced with the park: consume it, stay
                 * runnable. */
                if (atomic_compare_exchange_weak_explicit(
                        &prev->state, &s, s & ~WEFT_TS_WAKE, RLX, RLX)) {
                    push_local(w, slot);
                    notify(w);
                    return;
                }
                continue;
            }
            uint64_t n = (s & ~WEFT_TS_MASK) | WEFT_TS_PARKED;
            /* Release: the parked context (saved registers, stack) is
             * complete before an unparker's acquire CAS sees PARKED. */
            if (atomic_compare_exchange_weak_explicit(
                    &prev->state, &s, n, memory_order_release, RLX))
                return;
        }
    }
    case MSG_DEAD:
        weft__task_finish(w, prev, slot);
        return;
    }
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
weft_noinline static void yield_slow(weft_worker *w)
{
    int64_t next = find_local(w);
    if (next < 0 && !atomic_load_explicit(&w->rt->stopping, RLX))
        return; /* nothing else is ready */
    stat_inc(&w->st.yields);
    weft_tcb *cur = w->current;
    switch_ctx(w, cur, next, (uintptr_t)cur | MSG_YIELD);
}

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
    uint32_t head = w->yq_head;
    if (weft_unlikely(WEFT_SANITIZED || w->fair_countdown <= 1 || w->lifo ||
                      !head || !w->top1 || others_signalled(w) ||
                      weft__deque_maybe_nonempty(&w->dq) ||
                      (atomic_load_explicit(&cur->state, RLX) &
                       (WEFT_TS_SMALL | WEFT_TS_CANARY)))) {
        yield_slow(w);
        return;
    }
    w->fair_countdown--;
    w->lifo_runs = 0;
    uint32_t next = head - 1;
    weft_tcb *t = &w->hot[next];
    w->yq_head = atomic_load_explicit(&w->link[next], RLX);
    if (!w->yq_head)
        w->yq_tail = 0;
    w->current = t;
    w->cur_slot = next;
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
                &cur->state, &s, s & ~WEFT_TS_WAKE, memory_order_acquire, RLX))
            return;
    }
    stat_inc(&w->st.parks);
    switch_ctx(w, cur, find_work(w), (uintptr_t)cur | MSG_PARK);
}

#if defined(WEFT_CTX_HAS_START) && !WEFT_SANITIZED
/*
 * Stack handoff. The task that just ended is abandoned, not suspended:
 * when the next task has never run and wants the same stack class, it
 * simply starts on the ended task's stack (weft__ctx_start resets the
 * stack pointer to its top). That skips the register save, the stack
 * release and get, and building a fresh frame; spawn-heavy work (spawn,
 * chained_spawn, fork-join leaves) then runs on one hot stack. The ended
 * task's end is published while still on the stack, which is safe
 * because the stack is not released: it changes owner.
 */
weft_noreturn static void handoff(weft_worker *w, weft_tcb *cur, uint32_t slot,
                                  uint32_t next)
{
    weft_rt *rt = w->rt;
    if (atomic_load_explicit(&cur->state, RLX) &
        (WEFT_TS_SMALL | WEFT_TS_CANARY))
        check_canary(w, cur);
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
    weft__task_publish_end(w, cur, slot);
    w->current = t;
    w->cur_slot = next;
    stat_inc(&w->st.switches);
    weft__ctx_start(weft__stack_top(&rt->pool[cls], i) - WEFT_TLS_BYTES,
                    task_entry, NULL);
}
#endif

WEFT_NO_TSAN void weft__task_switch_dead(void)
{
    weft_worker *w = weft__worker_self();
    weft_tcb *cur = w->current;
    int64_t next = find_work(w);
#if defined(WEFT_CTX_HAS_START) && !WEFT_SANITIZED
    if (next >= 0 && !w->hot[next].sp &&
        !((atomic_load_explicit(&w->hot[next].state, RLX) ^
           atomic_load_explicit(&cur->state, RLX)) &
          WEFT_TS_SMALL))
        handoff(w, cur, w->cur_slot, (uint32_t)next);
#endif
    switch_ctx(w, cur, next, (uintptr_t)cur | MSG_DEAD);
    weft__die("worker", "a finished task was resumed");
}

void weft__sched_ready_local(weft_worker *w, uint32_t slot)
{
    uint32_t old = w->lifo;
    w->lifo = slot + 1;
    if (old) {
        push_local(w, old - 1);
        notify(w);
    }
}

void weft__sched_ready(weft_rt *rt, uint32_t slot)
{
    weft_worker *w = weft__worker_self();
    if (w && w->rt == rt) {
        weft__sched_ready_local(w, slot);
        return;
    }
    if (weft__summary_signal(&rt->sum, slot))
        weft__wake_one(rt);
}

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
int weft__sched_run_inline(weft_worker *w, uint32_t slot)
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
            return 0;
        uint32_t x = weft__deque_take(&w->dq);
        if (x == WEFT_DEQUE_EMPTY)
            return 0;
        if (x != slot) {
            push_local(w, x); /* not ours: back where it was */
            return 0;
        }
    }
    if (t->sp || ((atomic_load_explicit(&t->state, RLX) ^
                   atomic_load_explicit(&parent->state, RLX)) &
                  WEFT_TS_SMALL)) {
        push_local(w, slot); /* started before, or another stack class */
        return 0;
    }
    weft_tcb_cold *c = &rt->cold[slot], *pc = &rt->cold[pslot];
    void *tls[WEFT_TLS_KEYS];
    c->stack = pc->stack;
    weft__cold_set_fiber(c, weft__cold_fiber(pc));
    c->tls_area = tls;
    w->current = t;
    w->cur_slot = slot;
    stat_inc(&w->st.inlined);
    void *r = t->fn(t->arg);
    if (c->tls)
        weft__task_exit(r); /* its TLS destructors, then its result */
    else
        c->result = r;
    w = weft__worker_self(); /* it may have parked and moved */
    c->stack = 0;
    weft__cold_set_fiber(c, NULL);
    c->tls = NULL;
    c->tls_area = NULL;
    stat_inc(&w->st.finishes);
    w->current = parent;
    w->cur_slot = pslot;
    return 1;
}

/* ---- the loop ------------------------------------------------------- */

void weft__wake_one(weft_rt *rt)
{
    /* acq_rel RMW: pairs with the sleeper's RMW on idle (header). */
    if (!atomic_fetch_add_explicit(&rt->idle, 0, memory_order_acq_rel))
        return;
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        weft_worker *v = &rt->workers[i];
        uint32_t one = 1;
        if (atomic_load_explicit(&v->sleep, RLX) == 1 &&
            atomic_compare_exchange_strong_explicit(&v->sleep, &one, 0, RLX,
                                                    RLX)) {
            weft__futex_wake(&v->sleep, 1);
            return;
        }
    }
}

/*
 * Nothing to run: search (spin, watching for work anywhere) for a short
 * bound, then sleep. While searching the worker counts in rt->searching,
 * which tells notify() that new work will be found without a wake-up. A
 * searcher that finds work and was the last one wakes a successor, since
 * where one task appeared more may follow (Go's resetspinning); the chain
 * stops at the first worker that finds nothing. The spin is bounded
 * (DESIGN.md §9: unbounded stealing spins burn idle CPU).
 */
static void idle(weft_worker *w)
{
    weft_rt *rt = w->rt;
    publish_yield(w, 0); /* the yield queue is empty when idle */
    atomic_fetch_add_explicit(&rt->searching, 1, RLX);
    for (int i = 0; i < SPIN_ROUNDS; i++) {
        if (has_foreign_work(w)) {
            if (atomic_fetch_sub_explicit(&rt->searching, 1, RLX) == 1 &&
                atomic_load_explicit(&rt->idle, RLX))
                weft__wake_one(rt);
            return;
        }
        weft_cpu_relax();
    }
    atomic_fetch_sub_explicit(&rt->searching, 1, RLX);
    atomic_store_explicit(&w->sleep, 1, RLX);
    /* acq_rel RMW: pairs with weft__wake_one's RMW on idle (header). */
    atomic_fetch_add_explicit(&rt->idle, 1, memory_order_acq_rel);
    /* Sleep until woken, or until this worker's earliest timer: only its
     * own tasks arm timers on it, and they do so while it is awake, so
     * the deadline read here cannot move earlier while it sleeps. */
    uint64_t next = weft__timer_next(&w->timers);
    if (!has_foreign_work(w))
        while (atomic_load_explicit(&w->sleep, RLX) == 1 &&
               !atomic_load_explicit(&rt->stopping, RLX))
            if (weft__futex_wait(&w->sleep, 1, next == UINT64_MAX ? 0 : next) <
                0)
                break; /* a timer is due */
    atomic_store_explicit(&w->sleep, 0, RLX);
    atomic_fetch_sub_explicit(&rt->idle, 1, RLX);
}

void weft__worker_loop(weft_worker *w)
{
    tls_worker = w;
    w->fair_countdown = FAIR_TICK;
    w->sched_fiber = weft_tsan_current();
    stack_t ss = {.ss_sp = w->altstack, .ss_size = WEFT_ALTSTACK};
    sigaltstack(&ss, NULL);
#ifdef WEFT_ASAN
    pthread_attr_t a;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        void *lo;
        size_t sz;
        pthread_attr_getstack(&a, &lo, &sz);
        w->sched_stack_lo = lo;
        w->sched_stack_size = sz;
        pthread_attr_destroy(&a);
    }
#endif
    while (!atomic_load_explicit(&w->rt->stopping, memory_order_acquire)) {
        poll_timers(w);
        int64_t s = find_work(w);
        if (s >= 0)
            switch_ctx(w, NULL, s, MSG_NONE);
        else
            idle(w);
    }
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, NULL);
    tls_worker = NULL;
}
