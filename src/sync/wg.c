/*
 * wg.c - weft_wg, the wait group: a count that waiters wait to see reach
 * zero, with a FIFO queue of waiters (wait.h).
 *
 * The count is one word changed by CAS; the change that reaches zero then
 * takes the queue lock and wakes every waiter. A waiter reads the count
 * under that lock before it queues, so either it reads zero or the
 * zeroing add's wake-all (which takes the lock after its CAS) finds it
 * queued.
 */
#include <errno.h>
#include <limits.h>

#include "wait.h"

#define RLX memory_order_relaxed
#define ACQ memory_order_acquire
#define REL memory_order_release

int weft_wg_init(weft_wg *g)
{
    if (!g)
        return -EINVAL;
    *g = (weft_wg)WEFT_WG_INIT;
    return 0;
}

int weft_wg_destroy(weft_wg *g)
{
    if (!g)
        return -EINVAL;
    _Atomic uint32_t *l = weft__wq_lock_word(&g->q_);
    weft__spin_lock(l);
    int r = 0;
    if (atomic_load_explicit(WEFT_A32(&g->state_), RLX))
        r = -EINVAL;
    else if (!weft__wq_empty(&g->q_.list_))
        r = -EBUSY;
    else
        atomic_store_explicit(WEFT_A32(&g->state_), 1, RLX);
    weft__spin_unlock(l);
    return r;
}

int weft_wg_add(weft_wg *g, int64_t delta)
{
    if (!g || atomic_load_explicit(WEFT_A32(&g->state_), RLX))
        return -EINVAL;
    _Atomic int64_t *c = WEFT_AI64(&g->count_);
    int64_t v = atomic_load_explicit(c, RLX);
    do {
        if ((delta < 0 && v + delta < 0) ||
            (delta > 0 && v > INT64_MAX - delta))
            return -EINVAL;
        /* acq_rel: the zeroing add's release pairs with waiters' acquire
         * loads, and it acquires every earlier done(). */
    } while (!atomic_compare_exchange_weak_explicit(c, &v, v + delta,
                                                    memory_order_acq_rel, RLX));
    if (v + delta == 0 && delta != 0) {
        _Atomic uint32_t *l = weft__wq_lock_word(&g->q_);
        weft__spin_lock(l);
        weft_wnode *all = weft__wq_claim_list(&g->q_.list_, UINT_MAX);
        weft__spin_unlock(l);
        weft__wake_list(all, 0);
    }
    return 0;
}

int weft_wg_done(weft_wg *g)
{
    return weft_wg_add(g, -1);
}

int weft_wg_wait_until(weft_wg *g, uint64_t deadline)
{
    if (!g)
        return -EINVAL;
    _Atomic int64_t *c = WEFT_AI64(&g->count_);
    _Atomic uint32_t *l = weft__wq_lock_word(&g->q_);
    if (atomic_load_explicit(WEFT_A32(&g->state_), RLX))
        return -EINVAL;
    /* Acquire: pairs with the zeroing add's release. */
    if (!atomic_load_explicit(c, ACQ))
        return 0;
    weft_wait wt;
    weft_wnode node = {.wait = &wt};
    int r = weft__wait_init(&wt, deadline == WAIT_FOREVER, WEFT_WK_WG, g);
    if (r)
        return weft__wait_fini(&wt, r);
    weft__spin_lock(l);
    if (!atomic_load_explicit(c, ACQ)) {
        weft__spin_unlock(l);
        goto out;
    }
    weft__wq_push(&g->q_.list_, &node);
    weft__spin_unlock(l);
    r = weft__wait_block(&wt, deadline);
    if (r < 0) { /* timed out or cancelled: still linked */
        weft__spin_lock(l);
        weft__wq_unlink(&g->q_.list_, &node);
        weft__spin_unlock(l);
    }
out:
    return weft__wait_fini(&wt, r);
}

int weft_wg_wait(weft_wg *g)
{
    return weft_wg_wait_until(g, WAIT_FOREVER);
}
