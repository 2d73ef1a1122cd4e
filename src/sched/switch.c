/*
 * switch.c - the cold half of switching: binding a stack to a task's
 * first run, stack canaries, the code every task starts in, and finishing
 * a park or an exit. The hot half (the switch itself, the yield fast
 * path, the stack bequest) is in worker.c.
 *
 * Finishing a switch-out. A task that parks or ends cannot publish that
 * itself: until its registers are saved and its stack is left, another
 * worker must not resume it, and a dead task's stack must not be reused.
 * So every switch carries a message to the context it enters: the task
 * that left, tagged with what it did (YIELD, YBAND, PARK, DEAD,
 * PREEMPT, PBAND; switch.h). The entered side runs after_switch() first
 * thing and completes the departure: it queues a yielder (a preempted
 * one once the thread has a signal stack again, sigstack.c), publishes a
 * parker as PARKED (or requeues it when a wake-up raced with the park),
 * releases a dead task's stack and publishes it as DONE. This is Go's
 * "park_m on g0" without the trip through g0.
 */
#include "switch.h"

#include "../arch/ctx.h"
#include "../arch/fiber_san.h"
#include "../base/atomic.h"
#include "../base/check.h"

/* Give task t (first run) a stack and a fresh frame. Owner worker. */
weft_noinline void weft__switch_bind(weft_worker *w, weft_tcb *t, uint32_t slot)
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
    __atomic_store_n(
        &t->sp,
        weft__ctx_make(weft__stack_top(p, (uint32_t)i) - WEFT_TLS_BYTES,
                       weft__switch_entry),
        __ATOMIC_RELAXED);
}

weft_cold static void canary_dead(weft_worker *w, weft_tcb *t)
{
    weft_rt *rt = w->rt;
    uint32_t slot = slot_of(rt, t);
    int cls = (atomic_load_explicit(&t->state, RLX) & WEFT_TS_SMALL) ? 1 : 0;
    char name[16];
    weft__task_name(rt, slot, name);
    weft__die("stack",
              "stack overflow in task '%s' (slot %u, %lu-byte %s stack, "
              "canary overwritten)",
              name, slot, (unsigned long)rt->pool[cls].size,
              cls ? "small" : "default");
}

/* Switch-out check of a canary-protected stack. */
weft_noinline void weft__switch_check_canary(weft_worker *w, weft_tcb *from)
{
    weft_rt *rt = w->rt;
    uint32_t i = rt->cold[slot_of(rt, from)].stack - 1;
    int cls = (atomic_load_explicit(&from->state, RLX) & WEFT_TS_SMALL) ? 1 : 0;
    if (!weft__stack_canary_ok(&rt->pool[cls], i))
        canary_dead(w, from);
}

/* Everything a task does between its first switch-in and its end, in a
 * function that returns, so sanitizers see balanced frames. */
weft_noinline static void task_run(uintptr_t msg)
{
    weft_worker *w = weft__worker_self();
    after_switch(w, msg);
    weft_tcb *t = w->current;
    weft_fn fn = __atomic_load_n(&t->fn, __ATOMIC_RELAXED);
    void *arg = t->arg;
    weft__task_started(t, 0); /* arg is read: polls now */
    weft__task_exit(fn(arg));
}

/* First code of every task, on its fresh stack. It never returns, so it
 * is left out of TSan's instrumentation: its frame would otherwise stay
 * on the shadow stack of the stack's fiber, one per task the stack ever
 * ran, until TSan's depot overflows. */
WEFT_NO_TSAN void weft__switch_entry(void *msg)
{
    weft_san_finish_switch(NULL);
    task_run((uintptr_t)msg);
    weft__task_switch_dead();
}

/* The preempted task left with this thread's signal stack, which holds
 * its signal frame: the spare it reserved becomes the thread's, signals
 * are unblocked (sigstack.c), and it is queued as a yielder. Out of line:
 * in weft__switch_finish its calls cost every park a register save
 * (callgrind: pingpong +1.2%). */
weft_noinline static void preempted(weft_worker *w, weft_tcb *prev,
                                    uintptr_t why)
{
    weft__sigstack_install(w);
    if (why == MSG_PREEMPT)
        yq_push(w, wslot_of(w, prev));
    else
        byq_push(w, band_of(prev), wslot_of(w, prev));
}

void weft__switch_finish(weft_worker *w, uintptr_t msg)
{
    weft_rt *rt = w->rt;
    weft_tcb *prev = (weft_tcb *)(msg & ~MSG_MASK);
    uint32_t slot = slot_of(rt, prev);
    switch (msg & MSG_MASK) {
    case MSG_YBAND:
        byq_push(w, band_of(prev), wslot_of(w, prev));
        return;
    case MSG_PREEMPT:
    case MSG_PBAND:
        preempted(w, prev, msg & MSG_MASK);
        return;
    case MSG_PARK: {
        uint64_t s = atomic_load_explicit(&prev->state, RLX);
        for (;;) {
            if (s & WEFT_TS_WAKE) {
                /* An unpark raced with the park: consume it, stay
                 * runnable. Acquire: pairs with the unparkers' release
                 * CAS that set WAKE (wake.c): what they published
                 * before it reaches the task, which runs after the
                 * push. */
                if (atomic_compare_exchange_weak_explicit(
                        &prev->state, &s, s & ~WEFT_TS_WAKE,
                        memory_order_acquire, RLX)) {
                    WEFT_EVW(w, slot, WEFT_EV_PARKWAKE);
                    push_band(w, slot);
                    notify(w);
                    return;
                }
                continue;
            }
            uint64_t n = (s & ~WEFT_TS_MASK) | WEFT_TS_PARKED;
            /* Release: the parked context (saved registers, stack) is
             * complete before an unparker's acquire CAS sees PARKED. */
            if (atomic_compare_exchange_weak_explicit(
                    &prev->state, &s, n, memory_order_release, RLX)) {
                WEFT_EVW(w, slot, WEFT_EV_PARKED);
                return;
            }
        }
    }
    case MSG_DEAD:
        WEFT_EV(rt, slot, WEFT_EV_DEAD);
        weft__task_finish(w, prev, slot);
        return;
    }
}
