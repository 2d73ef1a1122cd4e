/*
 * steal.c - work stealing: victim choice, and making yielded tasks
 * stealable when other workers sit idle.
 *
 * Stealing is the last step of the run order (worker.c): a worker whose
 * own queues, the summary tree and the injection queue are empty takes one
 * task from the top of another worker's Chase-Lev deque (queue/deque.c),
 * visiting victims in a random rotation so thieves spread out, the most
 * urgent band any victim advertises first. A yield never steals: the
 * yielder is itself runnable. Yielded tasks sit in an owner-only queue,
 * so on the fairness tick a worker that sees idle workers moves them to
 * its deque (weft__steal_share) and publishes its yield bit in the
 * summary tree (weft__steal_publish).
 */
#include "fork.h"
#include "runq.h"

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
weft_noinline void weft__steal_publish(weft_worker *w, int want)
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

/*
 * Steal one task from another worker's deque, visiting victims in a
 * random rotation (so thieves spread over victims instead of all hitting
 * worker 0). A lost CAS race (ABORT) is retried on the same victim a few
 * times: the deque was not empty. Signalled tasks of every worker are
 * already visible to this worker through the summary tree, which
 * find_work reads before it gets here. Owner only.
 */
weft_noinline int64_t weft__steal_take(weft_worker *w)
{
    weft_rt *rt = w->rt;
    uint32_t n = rt->nworkers, start = next_rand(w) % n;
    /* Highest band first: the other bands' deques only of victims whose
     * published xbands (a hint: a stale bit costs one look at an empty
     * deque, a late one a steal in the wrong order) say they may hold
     * some; one load per victim when nobody has any. */
    uint32_t any = 0;
    for (uint32_t i = 0; i < n; i++)
        any |= atomic_load_explicit(&rt->workers[i].xpub, RLX);
    for (int b = 0; b < WEFT_BANDS; b++) {
        if (b != BAND_NORMAL && !(any & (1u << b)))
            continue;
        for (uint32_t i = 0; i < n; i++) {
            weft_worker *v = &rt->workers[(start + i) % n];
            if (v == w)
                continue;
            if (b != BAND_NORMAL &&
                !(atomic_load_explicit(&v->xpub, RLX) & (1u << b)))
                continue;
            weft_deque *d = b == BAND_NORMAL ? &v->dq : xdq(v, b);
            stat_inc(&w->st.steal_attempts);
            for (int tries = 0; tries < 4; tries++) {
                void *job = NULL;
                uint32_t x = weft__deque_steal(d, &job);
                if (x == WEFT_DEQUE_EMPTY)
                    break;
                if (x != WEFT_DEQUE_ABORT) {
                    stat_inc(&w->st.steals);
                    /* A fork record becomes a task here (fork.c); one
                     * no task could be made for is its parent's to run:
                     * on to the next victim. */
                    if (weft__deque_is_job(x)) {
                        int64_t s = weft__fork_claim(w, job);
                        if (s < 0)
                            break;
                        x = (uint32_t)s;
                    }
                    if (weft_unlikely(atomic_load_explicit(&w->tracing, RLX)))
                        weft__trace_event(w->rt, w, WEFT_TEV_STEAL, x, 0, v->id,
                                          0, 0);
                    WEFT_EVW(v, x, WEFT_EV_STOLEN);
                    return x;
                }
            }
        }
    }
    return -1;
}

/* The yield queue is owner-only; when other workers sit idle, yielded
 * tasks move to the deque, where they can be stolen. Owner only. */
weft_noinline void weft__steal_share(weft_worker *w)
{
    int64_t s;
    int moved = 0;
    while ((s = yq_pop(w)) >= 0) {
        push_local(w, (uint32_t)s);
        moved = 1;
    }
    for (int b = 0; w->xbands && b < WEFT_BANDS; b++)
        while (b != BAND_NORMAL && (s = byq_pop(w, b)) >= 0) {
            weft__bands_push(w, (uint32_t)s, b);
            moved = 1;
        }
    if (moved)
        weft__wake_one(w->rt);
}
