/*
 * fork.c - weft_fork_join: run two functions, possibly in parallel, at
 * the cost of a function call when nobody else is free to take one
 * (docs/decisions/0013-fork-join.md, "A join without a handle").
 *
 * weft_spawn + weft_join already run a not-yet-started child inline
 * (task.c, "Inline join"), but a spawned child is a task from the start:
 * a slot, a TCB written, a handle anyone may join or detach (so the claim
 * on it is a CAS). A fork that its own parent takes back needs none of
 * that, as rayon's join shows: the parent pushes a pointer to a record
 * on its own stack, runs the first function, and pops the record back
 * and calls the second. Only a record someone else takes becomes a task.
 *
 * The parent (weft_fork_join, on a task):
 *   1. writes the record {fb, b} on its stack and pushes its address on
 *      its worker's deque as a job entry (queue/deque.h), then wakes an
 *      idle worker if one sleeps and none searches (notify, as a spawn);
 *   2. runs fa(a);
 *   3. if it is still on the same worker and the record is the deque's
 *      bottom entry, takes it back (weft__deque_take_job: the deque's own
 *      take, which decides a race with a thief for the last entry) and
 *      calls fb(b): done, nothing else touched;
 *   4. else someone took the record, or will (a thief, the worker's run
 *      loop while the parent was parked or preempted, the deque's
 *      overflow), and called weft__fork_claim: the parent waits for the
 *      word to say DONE (fb ran as a task, which has ended and whose slot
 *      is reaped: its result is in the record) or REFUSED (no task could
 *      be made: the parent calls fb(b) itself). DONE comes after the reap
 *      (WEFT_TS_FORK, task.c's end of a task), so that once the call
 *      returns the task no longer counts: not in weft_stats.live, not
 *      against max_tasks, not as a live task to weft_rt_destroy (which
 *      said -EBUSY in the gap, found by a program written from weft.h).
 *
 * Invariants.
 * - A record is in at most one deque entry, pushed once; it leaves it by
 *   the parent's take (3) or one claimer's take, steal or grab (4); the
 *   deque's protocol gives each entry to exactly one side.
 * - The parent does not return before the entry has left the deque and,
 *   if claimed, the claimer is done with the record: in (4) it waits for
 *   DONE or REFUSED, written by the claimer's last access to the record
 *   (the task it became reads fn and arg before it runs fb, and the
 *   exchange to DONE after its reap is the last touch). So no deque entry
 *   and no task ever points at a dead frame.
 * - A claimed record's task inherits the parent's priority, stack class
 *   and preemptibility, and is detached: nothing can observe it but the
 *   word.
 *
 * The word. 0 (PENDING), DONE, REFUSED, or the address of the parent's
 * waiter record (a weft_waiter on its stack, aligned, so never 1 or 2).
 * The parent that must wait CASes 0 -> its record (release: the record's
 * fields, for the claimer's acquire exchange) and parks until the
 * record's flag is set; the claimer's side exchanges the word to DONE or
 * REFUSED (acq_rel: release for the result, acquire for the record) and
 * wakes the record it got, if any. No lost wake-up: exactly one of the
 * CAS and the exchange comes first in the word's modification order. If
 * the CAS is first, the exchange returns the record and wakes it, and
 * the parent's loop on the flag (weft__waiter_wake's release store,
 * parking again after a spurious return) sees it; if the exchange is
 * first, the CAS fails and the parent reads DONE or REFUSED from it.
 * `stress.fork_join_*` races the two sides on two and four workers.
 *
 * Where the record is not pushed. On a plain thread (no workers to share
 * with) fa then fb run on the caller. A task of another band than normal,
 * or of an isolated worker, claims its own record at once (a spawned task
 * in all but name, waited for through the word): the deques those use
 * carry slots only, and both are rare. A full deque (256 entries: the
 * worker has plenty to share) runs both on the caller. Mesh mode pushes
 * records like the others; its sends to neighbours (mesh.c) claim them.
 */
#include <errno.h>

#include "fork.h"
#include "runq.h"
#include "wake.h"

#define RLX memory_order_relaxed
#define ACQ memory_order_acquire
#define REL memory_order_release
#define ACQ_REL memory_order_acq_rel

#define WEFT_FORK_PENDING ((uintptr_t)0)
#define WEFT_FORK_DONE ((uintptr_t)1)
#define WEFT_FORK_REFUSED ((uintptr_t)2)

/* The state bits a claimed record's task inherits from its parent. */
#define INHERIT                                                                \
    ((UINT64_C(15) << WEFT_TS_PRIO_SHIFT) | WEFT_TS_SMALL | WEFT_TS_PREEMPTIBLE)

/* The body of a claimed record's task: its result is the record, which
 * the task's end hands to weft__fork_done once the slot is reaped. */
static void *fork_run(void *p)
{
    weft_fork *f = p;
    f->result = f->fn(f->arg);
    return f;
}

void weft__fork_done(void *p)
{
    weft_fork *f = p;
    /* acq_rel: release for the result and the reap (the parent's acquire
     * load of the word); acquire for the parent's waiter record (its
     * release CAS). After this the record may be gone. */
    uintptr_t x = atomic_exchange_explicit(&f->word, WEFT_FORK_DONE, ACQ_REL);
    if (x > WEFT_FORK_REFUSED)
        weft__waiter_wake((weft_waiter *)x);
}

int64_t weft__fork_claim(weft_worker *w, weft_fork *f)
{
    weft_rt *rt = w->rt;
    int64_t slot = -1;
    if (!atomic_load_explicit(&rt->shutdown, RLX))
        /* Named, so that dumps and the monitor's warnings say what it
         * is: it has no handle of its own. */
        slot =
            weft__task_new(rt, w, fork_run, f, f->bits | WEFT_TS_FORK, "fork");
    if (slot >= 0) {
        stat_inc(&w->st.forks_stolen);
        return slot;
    }
    /* Its parent runs it. The remote wake-up: the callers are a run
     * loop's steps, which may already have passed the LIFO slot that a
     * local wake-up would fill. */
    uintptr_t x =
        atomic_exchange_explicit(&f->word, WEFT_FORK_REFUSED, ACQ_REL);
    if (x > WEFT_FORK_REFUSED)
        weft__waiter_wake_remote((weft_waiter *)x);
    return -1;
}

/* Step 4: wait until the record's claimer says DONE or REFUSED, and
 * return fb's result. Not a cancellation point: the record is on this
 * frame. Task only. */
weft_noinline static void *fork_wait(weft_fork *f)
{
    weft_worker *w = weft__worker_self();
    weft_waiter me = {.rt = w->rt, .task = w->current, .slot = w->cur_slot};
    uintptr_t x = WEFT_FORK_PENDING;
    /* Release: pairs with the claimer's acq_rel exchange (me's fields);
     * acquire on failure: pairs with its release (the result). */
    if (atomic_compare_exchange_strong_explicit(&f->word, &x, (uintptr_t)&me,
                                                REL, ACQ)) {
        weft_tcb_cold *c = &me.rt->cold[me.slot];
        /* For observers a join; nothing they may cancel is linked. */
        weft__cold_wait_set(c, WEFT_WK_FORK, NULL);
        /* Acquire: pairs with weft__waiter_wake's release of the flag. */
        while (!atomic_load_explicit(&me.futex, ACQ))
            weft__task_park();
        weft__cold_wait_set(c, WEFT_WK_NONE, NULL);
        x = atomic_load_explicit(&f->word, ACQ); /* pairs with the
                                                     exchange */
    }
    if (x == WEFT_FORK_REFUSED)
        return f->fn(f->arg);
    return f->result;
}

int weft_fork_join(weft_fn fa, void *a, weft_fn fb, void *b, void **ra,
                   void **rb)
{
    if (!fa || !fb)
        return -EINVAL;
    weft_worker *w = weft__worker_self();
    void *x, *y;
    if (weft_unlikely(!w || !w->current)) {
        x = fa(a);
        y = fb(b);
        goto out;
    }
    stat_inc(&w->st.forks);
    weft_fork f; /* result: written only by the task it may become */
    f.fn = fb;
    f.arg = b;
    atomic_init(&f.word, WEFT_FORK_PENDING);
    weft_deque *d = &w->dq;
    uint64_t s = atomic_load_explicit(&w->current->state, RLX);
    f.bits = (s & INHERIT) | WEFT_TS_DETACHED;
    int64_t i = -1;
    if (weft_likely((s & TS_BAND) == TS_NORMAL && !w->iso_of)) {
        i = weft__deque_push_job(d, &f);
        if (weft_unlikely(i < 0)) { /* full: plenty to share already */
            x = fa(a);
            y = fb(b);
            goto out;
        }
        notify(w);
    } else {
        int64_t slot = weft__fork_claim(w, &f);
        if (slot >= 0)
            weft__sched_ready_local(w, (uint32_t)slot);
    }
    x = fa(a);
    w = weft__worker_self(); /* fa may have parked and moved */
    if (i >= 0 && &w->dq == d && weft__deque_take_job(d, i, &f))
        y = fb(b);
    else
        y = fork_wait(&f);
out:
    if (ra)
        *ra = x;
    if (rb)
        *rb = y;
    return 0;
}

/* ---- weft_fork_n: n calls as halves ------------------------------------- */

/* fn over args[lo, hi), split in halves by weft_fork_join (rayon's
 * par_iter does the same): the left half runs here, the right one is
 * offered; log2(n) frames deep at most. */
typedef struct span {
    weft_fn fn;
    void *const *args;
    void **results;
    size_t lo, hi;
} span;

static void *run_span(void *p)
{
    span *s = p;
    if (s->hi - s->lo == 1) {
        void *r = s->fn(s->args[s->lo]);
        if (s->results)
            s->results[s->lo] = r;
        return NULL;
    }
    size_t mid = s->lo + (s->hi - s->lo) / 2;
    span left = {s->fn, s->args, s->results, s->lo, mid};
    span right = {s->fn, s->args, s->results, mid, s->hi};
    weft_fork_join(run_span, &left, run_span, &right, NULL, NULL);
    return NULL;
}

int weft_fork_n(size_t n, weft_fn fn, void *const *args, void **results)
{
    if (!fn || (n && !args))
        return -EINVAL;
    if (!n)
        return 0;
    span all = {fn, args, results, 0, n};
    run_span(&all);
    return 0;
}
