/*
 * cond.c - weft_cond: condition variables over weft_mutex.
 *
 * A waiter queues its node under the cond's queue lock before it releases
 * the mutex, so a signal sent by the next holder finds it; signal and
 * broadcast claim nodes FIFO (wait.h). A cond wait returns with its mutex
 * held whatever its result: the mutex is taken back inside the cond
 * wait's own open wait (weft__mutex_relock, a WAIT_NESTED lock that
 * shutdown does not cancel; sched/cancel.c). A waiter that finds it did
 * not hold the mutex undoes its queueing, and if a signal chose it
 * meanwhile, passes the signal on so it is not lost.
 */
#include <errno.h>
#include <limits.h>

#include "mutex.h"
#include "wait.h"

#define RLX memory_order_relaxed

int weft_cond_init(weft_cond *c)
{
    if (!c)
        return -EINVAL;
    *c = (weft_cond)WEFT_COND_INIT;
    return 0;
}

int weft_cond_destroy(weft_cond *c)
{
    if (!c)
        return -EINVAL;
    _Atomic uint32_t *l = weft__wq_lock_word(&c->q_);
    weft__spin_lock(l);
    int r = 0;
    if (weft__dead32(atomic_load_explicit(WEFT_A32(&c->state_), RLX)))
        r = -EINVAL;
    else if (!weft__wq_empty(&c->q_.list_))
        r = -EBUSY;
    else
        atomic_store_explicit(WEFT_A32(&c->state_), WEFT_DEAD32, RLX);
    weft__spin_unlock(l);
    return r;
}

int weft_cond_wait_until(weft_cond *c, weft_mutex *m, uint64_t deadline)
{
    if (!c || !m)
        return -EINVAL;
    _Atomic uint32_t *l = weft__wq_lock_word(&c->q_);
    weft_wait wt;
    weft_wnode node = {.wait = &wt};
    /* Closed by its owner on error, so never solo; cancelled before it
     * queues: m is still held. */
    int r = weft__wait_init(&wt, 0, WEFT_WK_COND, c);
    if (r)
        return weft__wait_fini(&wt, r);
    weft__spin_lock(l);
    if (weft__dead32(atomic_load_explicit(WEFT_A32(&c->state_), RLX))) {
        weft__spin_unlock(l);
        r = -EINVAL;
        goto out;
    }
    /* Queued before the mutex is released: a signal sent by the next
     * holder finds us. */
    weft__wq_push(&c->q_.list_, &node);
    weft__spin_unlock(l);
    r = weft_mutex_unlock(m);
    if (r) { /* the caller did not hold m: undo */
        weft__spin_lock(l);
        weft__wq_unlink(&c->q_.list_, &node);
        weft__spin_unlock(l);
        if (!weft__wait_claim(&node)) {
            /* A signal chose us meanwhile: take its wake-up and pass the
             * signal on, so it is not lost. */
            weft__wait_block(&wt, WAIT_FOREVER);
            weft_cond_signal(c);
        }
        goto out;
    }
    r = weft__wait_block(&wt, deadline);
    if (r < 0) { /* timed out or cancelled: still linked */
        weft__spin_lock(l);
        weft__wq_unlink(&c->q_.list_, &node);
        weft__spin_unlock(l);
    }
    weft__mutex_relock(m);
out:
    return weft__wait_fini(&wt, r);
}

int weft_cond_wait(weft_cond *c, weft_mutex *m)
{
    return weft_cond_wait_until(c, m, WAIT_FOREVER);
}

static int wake(weft_cond *c, int all)
{
    if (!c)
        return -EINVAL;
    _Atomic uint32_t *l = weft__wq_lock_word(&c->q_);
    weft__spin_lock(l);
    if (weft__dead32(atomic_load_explicit(WEFT_A32(&c->state_), RLX))) {
        weft__spin_unlock(l);
        return -EINVAL;
    }
    weft_wnode *got = weft__wq_claim_list(&c->q_.list_, all ? UINT_MAX : 1);
    weft__spin_unlock(l);
    weft__wake_list(got, 0);
    return 0;
}

int weft_cond_signal(weft_cond *c)
{
    return wake(c, 0);
}

int weft_cond_broadcast(weft_cond *c)
{
    return wake(c, 1);
}
