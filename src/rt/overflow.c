/*
 * overflow.c - the stack-overflow reporter: a process-wide SIGSEGV/SIGBUS
 * handler that says whose stack overflowed.
 *
 * Stack overflow (docs/decisions/0010-overflow.md). A stack's guard page
 * faults on overflow; a canary-only stack's overflow runs on into the
 * stacks below it until it faults on a guard page or on its class's fence
 * (mem/stack.h). Every worker runs with an alternate signal stack, and a
 * process-wide SIGSEGV/SIGBUS handler (installed once, chaining to the
 * previous one for faults that are not ours) decides whose overflow it
 * is: first the task running on the faulting thread, when the fault is in
 * its own guard zone or its stack pointer has left its stack for the
 * stack area below (the canary-only case, which a guard or fence of
 * another stack stopped: that stack's owner is a bystander); then the
 * owner of the guard zone hit, in every registered runtime
 * (sched/registry.c). It prints one line naming the task and aborts. Two
 * overflows at once (two workers) print one line: weft__die lets one
 * thread through and parks the others, and a fault that is not ours while
 * a report is under way parks too instead of restoring the default
 * action, which would kill the process by SIGSEGV before the report's
 * abort.
 */
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>

#include "../base/check.h"
#include "../base/uctx.h"
#include "rt.h"

#define RLX memory_order_relaxed

static struct sigaction old_segv, old_bus;
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;

weft_noreturn static void report(weft_rt *rt, int cls, uint32_t owner,
                                 const char *how, uintptr_t below)
{
    weft_stack_pool *p = &rt->pool[cls];
    char name[16] = "?";
    if (owner)
        weft__task_name(rt, owner - 1, name);
    weft__die("stack",
              "stack overflow in task '%s' (slot %u, %lu-byte %s stack, %s "
              "%lu bytes below its bottom)",
              name, owner ? owner - 1 : 0, (unsigned long)p->size,
              cls ? "small" : "default", how, (unsigned long)below);
}

/* The task running on this thread, if the fault is its overflow: the
 * address is in its guard zone, or its stack pointer has left its stack
 * downwards but is still in the runtime's stack area (a canary-only
 * stack's overflow that ran over other stacks). Signal safe. */
static void own_overflow(void *addr, uintptr_t sp)
{
    weft_worker *w = weft__worker_self();
    weft_tcb *t = w ? w->current : NULL;
    if (!t)
        return;
    weft_rt *rt = w->rt;
    uint32_t slot = w->cur_slot, s = rt->cold[slot].stack;
    if (!s)
        return;
    int cls = (atomic_load_explicit(&t->state, RLX) & WEFT_TS_SMALL) ? 1 : 0;
    weft_stack_pool *p = &rt->pool[cls];
    uintptr_t a = (uintptr_t)addr;
    uintptr_t bottom = (uintptr_t)weft__stack_bottom(p, s - 1);
    uintptr_t lo = (uintptr_t)p->base + (size_t)(s - 1) * p->stride;
    uintptr_t area = (uintptr_t)rt->pool[0].base - rt->pool[0].page;
    int guarded =
        atomic_load_explicit(&p->flags[s - 1], RLX) & WEFT_STK_GUARDED;
    if (a >= lo && a < bottom)
        report(rt, cls, slot + 1,
               guarded ? "guard page hit" : "canary zone hit", bottom - a);
    if (sp && sp < bottom && sp >= area && a < bottom && a >= area)
        report(rt, cls, slot + 1,
               "canary only: ran over the stacks below it to a fault",
               bottom - a);
}

/* A fault in the fence below class cls of rt: if this thread runs a
 * task of that runtime and class, that task overran into it (the fence
 * lies below every stack of the class). Signal safe. */
static void fence_task(weft_rt *rt, int cls, void *addr)
{
    weft_worker *w = weft__worker_self();
    weft_tcb *t = w ? w->current : NULL;
    if (!t || w->rt != rt ||
        ((atomic_load_explicit(&t->state, RLX) & WEFT_TS_SMALL) ? 1 : 0) != cls)
        return;
    uint32_t slot = w->cur_slot, s = rt->cold[slot].stack;
    if (!s)
        return;
    uintptr_t bottom = (uintptr_t)weft__stack_bottom(&rt->pool[cls], s - 1);
    report(rt, cls, slot + 1,
           "canary only: ran over the stacks below it into the class's "
           "fence,",
           bottom - (uintptr_t)addr);
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    own_overflow(si->si_addr, weft__uc_sp(uc));
    for (uint32_t id = 1; id < WEFT_REGISTRY; id++) {
        weft_rt *rt = weft__rt_by_id(id);
        if (!rt)
            continue;
        for (int cls = 0; cls < 2; cls++) {
            weft_stack_pool *p = &rt->pool[cls];
            int64_t i = weft__stack_find_guard(p, si->si_addr);
            if (i == -1)
                continue;
            if (i == WEFT_STACK_FENCE) {
                /* The thread's own task of that class, when it runs one
                 * (its stack pointer may already be past the area's
                 * bound own_overflow checks): name it. */
                fence_task(rt, cls, si->si_addr);
                weft__die("stack",
                          "stack overflow ran into the fence below the %s "
                          "stacks (fault at %p)",
                          cls ? "small" : "default", si->si_addr);
            }
            uint32_t owner = atomic_load_explicit(&p->owner[i], RLX);
            uintptr_t bottom = (uintptr_t)weft__stack_bottom(p, (uint32_t)i);
            report(rt, cls, owner, "guard zone hit",
                   bottom - (uintptr_t)si->si_addr);
        }
    }
    /* A report is under way on another thread, and this fault may be its
     * damage: wait for its abort rather than die by SIGSEGV first. */
    if (weft__dying())
        weft__die_wait();
    /* Not ours: hand it to whoever was there before. */
    struct sigaction *old = sig == SIGSEGV ? &old_segv : &old_bus;
    if (old->sa_flags & SA_SIGINFO) {
        old->sa_sigaction(sig, si, uc);
    } else if (old->sa_handler != SIG_IGN && old->sa_handler != SIG_DFL) {
        old->sa_handler(sig);
    } else {
        /* Default action: restore it and return; the fault repeats. */
        sigaction(sig, old, NULL);
    }
}

static void install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
}

void weft__overflow_init(void)
{
    pthread_once(&handler_once, install_handler);
}
