/*
 * sem.c - weft_sem: a counter with a FIFO queue of waiters (wait.h).
 *
 * Semaphore state: count << 2 | DEAD | WAITERS. WAITERS is set and cleared
 * only under the queue lock; wait and post without it are one CAS. A post
 * that sees WAITERS takes the queue lock and hands its unit to the first
 * waiter directly (the count does not move), so a waiter is never passed
 * by a newcomer. No lost wake-up, by the same argument as the mutex
 * (mutex.c): the waiter's RMW that sets WAITERS returns the count it
 * decides on, and a post whose CAS comes after that RMW fails and goes
 * through the queue lock, which the waiter holds until it has queued.
 */
#include <errno.h>
#include <limits.h>

#include "wait.h"

#define RLX memory_order_relaxed
#define ACQ memory_order_acquire
#define REL memory_order_release

enum { S_WAITERS = 1, S_DEAD = 2 };
#define S_ONE UINT64_C(4)

int weft_sem_init(weft_sem *s, uint64_t value)
{
    if (!s || value > WEFT_SEM_MAX)
        return -EINVAL;
    *s = (weft_sem)WEFT_SEM_INIT(value);
    return 0;
}

int weft_sem_destroy(weft_sem *s)
{
    if (!s)
        return -EINVAL;
    _Atomic uint32_t *l = weft__wq_lock_word(&s->q_);
    weft__spin_lock(l);
    int r = 0;
    uint64_t v = atomic_load_explicit(WEFT_A64(&s->state_), RLX);
    if (v & S_DEAD)
        r = -EINVAL;
    else if (!weft__wq_empty(&s->q_.list_))
        r = -EBUSY;
    else
        atomic_store_explicit(WEFT_A64(&s->state_), S_DEAD, RLX);
    weft__spin_unlock(l);
    return r;
}

int weft_sem_try_wait(weft_sem *s)
{
    if (!s)
        return -EINVAL;
    _Atomic uint64_t *st = WEFT_A64(&s->state_);
    uint64_t v = atomic_load_explicit(st, RLX);
    /* Acquire: pairs with post's release. A queued waiter is not passed:
     * with WAITERS set the count is 0 (post hands units to waiters). */
    while (v >= S_ONE && !(v & S_DEAD))
        if (atomic_compare_exchange_weak_explicit(st, &v, v - S_ONE, ACQ, RLX))
            return 0;
    return v & S_DEAD ? -EINVAL : -EAGAIN;
}

int weft_sem_trywait(weft_sem *s) /* the old name (CHANGELOG.md) */
{
    return weft_sem_try_wait(s);
}

int weft_sem_wait_until(weft_sem *s, uint64_t deadline)
{
    int r = weft_sem_try_wait(s);
    if (r != -EAGAIN)
        return r;
    _Atomic uint64_t *st = WEFT_A64(&s->state_);
    _Atomic uint32_t *l = weft__wq_lock_word(&s->q_);
    weft_wait wt;
    weft_wnode node = {.wait = &wt};
    if ((r = weft__wait_init(&wt, deadline == WAIT_FOREVER, WEFT_WK_SEM, s)))
        return weft__wait_fini(&wt, r);
    weft__spin_lock(l);
    uint64_t v = atomic_fetch_or_explicit(st, S_WAITERS, ACQ) | S_WAITERS;
    for (;;) {
        if (v & S_DEAD) {
            weft__spin_unlock(l);
            r = -EINVAL;
            goto out;
        }
        if (v < S_ONE)
            break;
        uint64_t n = v - S_ONE;
        if (weft__wq_empty(&s->q_.list_))
            n &= ~(uint64_t)S_WAITERS;
        /* Acquire: pairs with post's release. */
        if (atomic_compare_exchange_weak_explicit(st, &v, n, ACQ, RLX)) {
            weft__spin_unlock(l);
            r = 0;
            goto out;
        }
    }
    weft__wq_push(&s->q_.list_, &node);
    weft__spin_unlock(l);
    r = weft__wait_block(&wt, deadline);
    if (r < 0) { /* timed out or cancelled: still linked */
        weft__spin_lock(l);
        weft__wq_unlink(&s->q_.list_, &node);
        if (weft__wq_empty(&s->q_.list_))
            atomic_fetch_and_explicit(st, ~(uint64_t)S_WAITERS, RLX);
        weft__spin_unlock(l);
    }
out:
    return weft__wait_fini(&wt, r);
}

int weft_sem_wait(weft_sem *s)
{
    return weft_sem_wait_until(s, WAIT_FOREVER);
}

int weft_sem_post(weft_sem *s)
{
    if (!s)
        return -EINVAL;
    _Atomic uint64_t *st = WEFT_A64(&s->state_);
    uint64_t v = atomic_load_explicit(st, RLX);
    while (!(v & (S_WAITERS | S_DEAD))) {
        if ((v >> 2) >= WEFT_SEM_MAX)
            return -EOVERFLOW;
        /* Release: pairs with the waiter's acquire. */
        if (atomic_compare_exchange_weak_explicit(st, &v, v + S_ONE, REL, RLX))
            return 0;
    }
    if (v & S_DEAD)
        return -EINVAL;
    _Atomic uint32_t *l = weft__wq_lock_word(&s->q_);
    weft__spin_lock(l);
    weft_wnode *n = weft__wq_claim(&s->q_.list_);
    int r = 0;
    if (n) {
        if (weft__wq_empty(&s->q_.list_))
            atomic_fetch_and_explicit(st, ~(uint64_t)S_WAITERS, RLX);
    } else {
        v = atomic_load_explicit(st, RLX);
        for (;;) {
            if (v & S_DEAD) {
                r = -EINVAL;
                break;
            }
            if ((v >> 2) >= WEFT_SEM_MAX) {
                r = -EOVERFLOW;
                break;
            }
            /* Release: pairs with the waiter's acquire. */
            if (atomic_compare_exchange_weak_explicit(
                    st, &v, (v & ~(uint64_t)S_WAITERS) + S_ONE, REL, RLX))
                break;
        }
    }
    weft__spin_unlock(l);
    if (n)
        weft__wait_wake(n->wait); /* release on its flag: the unit's
                                     hand-over */
    return r;
}

uint64_t weft_sem_value(const weft_sem *s)
{
    if (!s)
        return 0;
    uint64_t v = atomic_load_explicit(WEFT_A64((void *)&s->state_), RLX);
    return v & S_DEAD ? 0 : v >> 2;
}
