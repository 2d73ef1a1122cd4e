/*
 * sigstack.c - signal stacks: one installed on every thread of a runtime,
 * and the ones preempted tasks take with them.
 *
 * Problem. A signal handler runs on the stack the kernel builds its frame
 * on, and that frame is large: every register of the interrupted code,
 * the vector state included, 3.4 KiB on an AVX-512 machine
 * (AT_MINSIGSTKSZ 3376), more with AMX. SIGURG (preemption and
 * isolation, preempt.c) used to be delivered on the interrupted task's
 * own stack, which may be a 1 KiB small stack packed between its
 * neighbours with a canary only (mem/stack.c): the frame went 2-3 KiB
 * below its bottom, over the stacks below, which hold parked tasks'
 * frames and the wait records linked into wait queues. Found with the
 * bench `memory`, part memory_million (10^6 tasks parked on one event,
 * 1 KiB stacks), on a loaded machine: a task's poll stalled in a page
 * fault was timed at 80-100 ms, climbed to the Isolate tier and drew
 * SIGURG; the frame (siginfo, ucontext, 2.4 KiB of XSAVE state) landed
 * over the three stacks below; the SIGSEGV came later, in weft_event_set
 * walking a wait record whose pointer the siginfo had overwritten
 * (docs/decisions/0010-overflow.md, "Signal frames"). A guard page would
 * only have turned that into a report: no 1 KiB stack holds a frame.
 *
 * Chosen. SIGURG is installed with SA_ONSTACK like SIGSEGV, so no signal
 * of weft's ever builds its frame on a task's stack: the kernel puts it
 * at the top of the thread's signal stack. Most handlers return there
 * (stale request, refusal, isolation, nothing else to run). Preemption
 * does not: it switches the task out from inside the handler, and the
 * task resumes later, maybe on another thread, by returning from the
 * handler. Its frame must survive until then, so the task keeps the
 * signal stack its frame is on, and the thread takes a spare one from the
 * runtime's pool before it runs anything else; the task, resumed on some
 * thread, makes the stack it is on that thread's signal stack and gives
 * the thread's previous one back to the pool (sigreturn installs the
 * stack named in the frame: weft__sigstack_adopt points it at that one).
 * So every signal stack is, at any time, installed on one thread, held by
 * one preempted task, or in the pool; a stack's frame is never written
 * over. Tasks' stacks hold only what their own code pushes.
 *
 * The two windows. After the preempted task has left its stack and until
 * the thread has installed the spare, a signal would be delivered on the
 * stack the task holds, over its frame; between giving a thread's stack
 * back and the sigreturn that installs the one the task brought, a signal
 * would be delivered on a stack another thread may have taken. So the
 * preempting side blocks every signal before the switch and the entered
 * side unblocks it after the install (weft__switch_finish, MSG_PREEMPT),
 * and the resuming side blocks every signal before giving its stack back,
 * which the sigreturn's restore of the task's own mask ends. Both windows
 * run a few lines of weft's code; a fault there (a bug in weft) would
 * end the process by the default action, without the overflow report.
 * The portable ucontext switcher restores the entered context's mask in
 * swapcontext, which leaves the first window open there (decisions/0010).
 *
 * Bounds. The pool holds up to WEFT_SIGSTACK_SPARE stacks (no more than
 * max_tasks), address space only until a preemption touches one (about
 * three pages each). When it is empty a preemption is refused like one in
 * libc: the task is asked to yield at its next cooperative point and the
 * monitor asks again at its next tick. Rejected: copying the frame to the
 * task's stack when it fits (each ISA's frame layout and its sigreturn by
 * hand, and still nothing for the small stacks); a stack per task
 * (max_tasks x 64 KiB of address space, 10^6 tasks: 64 GiB); refusing
 * signals to tasks on small stacks from the monitor (it cannot know which
 * task a signal will interrupt: the worker switches meanwhile).
 *
 * Everything here runs in the SIGURG handler or on the switch that leaves
 * it, and is async-signal-safe: a lock-free bitmap, sigaltstack and
 * pthread_sigmask.
 */
#include <signal.h>
#include <stdlib.h>
#include <ucontext.h>

#include "../base/bits.h"
#include "runtime.h"

#define RLX memory_order_relaxed

uint32_t weft__sigstack_count(uint32_t nthr, uint32_t max_tasks)
{
    uint32_t spare =
        max_tasks < WEFT_SIGSTACK_SPARE ? max_tasks : WEFT_SIGSTACK_SPARE;
    return nthr + spare;
}

int weft__sigstack_init(weft_rt *rt, char *base)
{
    uint32_t n = weft__sigstack_count(rt->nthr, rt->cfg.max_tasks);
    uint32_t words = (n + 63) / 64;
    rt->sigfree = calloc(words, sizeof *rt->sigfree);
    if (!rt->sigfree)
        return -1;
    rt->sigstk = base;
    rt->nsig = n;
    /* The first nthr belong to the threads (weft__thr_init); the rest
     * are the pool. */
    for (uint32_t i = rt->nthr; i < n; i++)
        atomic_fetch_or_explicit(&rt->sigfree[i / 64], UINT64_C(1) << (i % 64),
                                 RLX);
    return 0;
}

void weft__sigstack_fini(weft_rt *rt)
{
    free(rt->sigfree);
    rt->sigfree = NULL;
}

/* Take a stack from the pool; NULL when it is empty. Acquire: pairs with
 * put's release, so that the stack's last user is done with it. */
static char *take(weft_rt *rt)
{
    uint32_t words = (rt->nsig + 63) / 64;
    for (uint32_t k = 0; k < words; k++) {
        uint64_t v = atomic_load_explicit(&rt->sigfree[k], RLX);
        while (v) {
            uint64_t bit = v & -v;
            if (atomic_compare_exchange_weak_explicit(
                    &rt->sigfree[k], &v, v & ~bit, memory_order_acquire, RLX))
                return rt->sigstk +
                       ((size_t)k * 64 + weft_ctz64(bit)) * WEFT_ALTSTACK;
        }
    }
    return NULL;
}

static void put(weft_rt *rt, char *s)
{
    size_t i = (size_t)(s - rt->sigstk) / WEFT_ALTSTACK;
    /* Release: pairs with take's acquire. */
    atomic_fetch_or_explicit(&rt->sigfree[i / 64], UINT64_C(1) << (i % 64),
                             memory_order_release);
}

/* The thread running identity w (a worker, or an isolation identity,
 * which keeps its thread's index). */
static weft_thr *thr_of(weft_worker *w)
{
    return &w->rt->thr[atomic_load_explicit(&w->thr, RLX)];
}

char *weft__sigstack_current(weft_worker *w)
{
    return thr_of(w)->altstack;
}

int weft__sigstack_reserve(weft_worker *w)
{
    weft_thr *t = thr_of(w);
    t->spare = take(w->rt);
    return t->spare != NULL;
}

void weft__sigstack_unreserve(weft_worker *w)
{
    weft_thr *t = thr_of(w);
    put(w->rt, t->spare);
    t->spare = NULL;
}

void weft__sigstack_leave(weft_worker *w)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &thr_of(w)->mask);
}

void weft__sigstack_install(weft_worker *w)
{
    weft_thr *t = thr_of(w);
    stack_t ss = {.ss_sp = t->spare, .ss_size = WEFT_ALTSTACK};
    sigaltstack(&ss, NULL);
    t->altstack = t->spare;
    t->spare = NULL;
    pthread_sigmask(SIG_SETMASK, &t->mask, NULL);
}

void weft__sigstack_adopt(weft_worker *w, char *mine, void *ucv)
{
    weft_thr *t = thr_of(w);
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* until the sigreturn */
    if (t->altstack != mine) {
        put(w->rt, t->altstack);
        t->altstack = mine;
    }
    ucontext_t *uc = ucv;
    uc->uc_stack.ss_sp = mine;
    uc->uc_stack.ss_size = WEFT_ALTSTACK;
    uc->uc_stack.ss_flags = 0;
}
