/*
 * mutex.c - weft_mutex (weft_cond is cond.c).
 *
 * Mutex state word (bits): LOCKED, WAITERS (the queue may be non-empty:
 * set and cleared only under the queue lock), HANDOFF (handoff mode), or
 * WEFT_DEAD32 once destroyed. Lock is one CAS 0 -> LOCKED; unlock is one
 * CAS LOCKED -> 0; anything else takes the slow paths.
 *
 * Policy (the header states it for users; Go's sync.Mutex follows the
 * same two modes). Normal mode: unlock clears LOCKED and wakes the first
 * waiter, which then competes with running lockers. A running task can
 * thus re-take a lock it just released without a switch (no convoy),
 * while queued waiters keep their FIFO order among themselves (a woken
 * waiter that loses goes back to the head). Handoff mode: a waiter that
 * has waited over HANDOFF_NS when it loses switches the mutex to handoff;
 * then unlock leaves LOCKED set and passes ownership to the first waiter,
 * and newcomers queue behind it. The mode ends when a waiter is served
 * within HANDOFF_NS or the queue empties. No waiter starves: in handoff
 * mode each unlock serves the head.
 *
 * No lost wake-up. A locker sets WAITERS with an RMW under the queue lock
 * and looks at LOCKED in the value that RMW returns. Unlock's fast CAS
 * expects exactly LOCKED, so it fails once WAITERS is set and the
 * unlocker takes the queue lock, after the locker queued. If the
 * unlocker's CAS came first, the locker's RMW sees LOCKED clear and takes
 * the lock instead of queueing.
 */
#include <errno.h>
#include <limits.h>

#include "../base/clock.h"
#include "mutex.h"
#include "wait.h"

#define RLX memory_order_relaxed
#define ACQ memory_order_acquire
#define REL memory_order_release

enum { LOCKED = 1, WAITERS = 2, HANDOFF = 4 };
enum { SERVED_HANDOFF = 1 }; /* weft_wait.flags: ownership was passed */
#define HANDOFF_NS 1000000u
#define SPINS 64

static inline int dead(uint32_t s)
{
    return weft__dead32(s);
}

int weft_mutex_init(weft_mutex *m)
{
    if (!m)
        return -EINVAL;
    *m = (weft_mutex)WEFT_MUTEX_INIT;
    return 0;
}

int weft_mutex_destroy(weft_mutex *m)
{
    if (!m)
        return -EINVAL;
    uint32_t s = 0;
    if (atomic_compare_exchange_strong_explicit(WEFT_A32(&m->state_), &s,
                                                WEFT_DEAD32, RLX, RLX))
        return 0;
    return dead(s) ? -EINVAL : -EBUSY;
}

static inline int try_acquire(_Atomic uint32_t *st)
{
    uint32_t s = atomic_load_explicit(st, RLX);
    /* Acquire: pairs with unlock's release. */
    while (!(s & (LOCKED | HANDOFF)) && !dead(s))
        if (atomic_compare_exchange_weak_explicit(st, &s, s | LOCKED, ACQ, RLX))
            return 1;
    return 0;
}

int weft_mutex_try_lock(weft_mutex *m)
{
    if (!m)
        return -EINVAL;
    _Atomic uint32_t *st = WEFT_A32(&m->state_);
    if (try_acquire(st))
        return 0;
    return dead(atomic_load_explicit(st, RLX)) ? -EINVAL : -EBUSY;
}

int weft_mutex_trylock(weft_mutex *m) /* the old name (CHANGELOG.md) */
{
    return weft_mutex_try_lock(m);
}

/* Take the queue lock. */
static inline _Atomic uint32_t *qlock(weft_mutex *m)
{
    _Atomic uint32_t *l = weft__wq_lock_word(&m->q_);
    weft__spin_lock(l);
    return l;
}

/* lock_slow's queued part: queue, block, compete, until it holds m or
 * the wait ends in an error (its node unlinked). */
static int lock_queued(weft_mutex *m, weft_wait *wt, weft_wnode *node,
                       uint64_t deadline)
{
    _Atomic uint32_t *st = WEFT_A32(&m->state_);
    int requeue = 0;
    for (;;) {
        _Atomic uint32_t *l = qlock(m);
        uint32_t s = atomic_fetch_or_explicit(st, WAITERS, ACQ);
        if (dead(s)) { /* the stray WAITERS bit leaves it dead */
            weft__spin_unlock(l);
            return -EINVAL;
        }
        /* Free (between an unlock and its woken waiter's retry, or a
         * handoff mode that ended with the queue): take it. Spinners may
         * race us, hence the CAS; WAITERS stays set if others queue. */
        s |= WAITERS;
        while (!(s & LOCKED)) {
            uint32_t n = s | LOCKED;
            if (weft__wq_empty(&m->q_.list_))
                n &= ~(uint32_t)WAITERS;
            /* Acquire: pairs with unlock's release. */
            if (atomic_compare_exchange_weak_explicit(st, &s, n, ACQ, RLX)) {
                weft__spin_unlock(l);
                return 0;
            }
        }
        if (!wt->since)
            wt->since = weft__clock_ns();
        atomic_store_explicit(&wt->claim, 0, RLX);
        atomic_store_explicit(&wt->w.futex, 0, RLX);
        wt->flags = 0;
        if (requeue)
            weft__wq_push_head(&m->q_.list_, node);
        else
            weft__wq_push(&m->q_.list_, node);
        weft__spin_unlock(l);

        int r = weft__wait_block(wt, deadline);
        if (r < 0) { /* timed out or cancelled: still linked */
            l = qlock(m);
            weft__wq_unlink(&m->q_.list_, node);
            if (weft__wq_empty(&m->q_.list_))
                atomic_fetch_and_explicit(st, ~(uint32_t)(WAITERS | HANDOFF),
                                          RLX);
            weft__spin_unlock(l);
            return r;
        }
        if (wt->flags & SERVED_HANDOFF) {
            /* Ours, LOCKED never cleared. Leave handoff mode when it is no
             * longer needed. */
            if (weft__clock_ns() - wt->since < HANDOFF_NS)
                atomic_fetch_and_explicit(st, ~(uint32_t)HANDOFF, RLX);
            return 0;
        }
        /* Woken to compete. */
        if (try_acquire(st))
            return 0;
        if (deadline != WAIT_FOREVER && weft__clock_ns() >= deadline)
            return -ETIMEDOUT; /* the holder will wake the next waiter */
        if (weft__clock_ns() - wt->since >= HANDOFF_NS)
            atomic_fetch_or_explicit(st, HANDOFF, RLX);
        requeue = 1;
    }
}

/* Spin a little, then queue (flags: WAIT_NESTED or 0). */
static int lock_slow(weft_mutex *m, uint64_t deadline, int flags)
{
    _Atomic uint32_t *st = WEFT_A32(&m->state_);
    /* Spin only when the holder may be running elsewhere. */
    int spins = weft__spin_useful() ? SPINS : 0;
    for (int i = 0; i < spins; i++) {
        uint32_t s = atomic_load_explicit(st, RLX);
        if (dead(s))
            return -EINVAL;
        if (s & HANDOFF)
            break;
        if (!(s & LOCKED) && try_acquire(st))
            return 0;
        weft_cpu_relax();
    }
    weft_wait wt;
    weft_wnode node = {.wait = &wt};
    if (deadline == WAIT_FOREVER)
        flags |= WAIT_SOLO;
    int r = weft__wait_init(&wt, flags, WEFT_WK_MUTEX, m);
    if (!r)
        r = lock_queued(m, &wt, &node, deadline);
    return weft__wait_fini(&wt, r);
}

int weft_mutex_lock_until(weft_mutex *m, uint64_t deadline)
{
    if (!m)
        return -EINVAL;
    uint32_t s = 0;
    /* Acquire: pairs with unlock's release. */
    if (weft_likely(atomic_compare_exchange_strong_explicit(
            WEFT_A32(&m->state_), &s, LOCKED, ACQ, RLX)))
        return 0;
    return lock_slow(m, deadline, 0);
}

int weft_mutex_lock(weft_mutex *m)
{
    return weft_mutex_lock_until(m, WAIT_FOREVER);
}

static int unlock_slow(weft_mutex *m)
{
    _Atomic uint32_t *st = WEFT_A32(&m->state_);
    uint32_t s = atomic_load_explicit(st, RLX);
    for (;;) {
        if (dead(s))
            return -EINVAL;
        if (!(s & LOCKED))
            return -EPERM;
        if (s & WAITERS)
            break;
        /* Release: pairs with the next locker's acquire. */
        if (atomic_compare_exchange_weak_explicit(
                st, &s, s & ~(uint32_t)(LOCKED | HANDOFF), REL, RLX))
            return 0;
    }
    _Atomic uint32_t *l = qlock(m);
    weft_wnode *n = weft__wq_claim(&m->q_.list_);
    uint32_t clear = weft__wq_empty(&m->q_.list_) ? WAITERS : 0;
    s = atomic_load_explicit(st, RLX);
    if (n && (s & HANDOFF)) {
        n->wait->flags = SERVED_HANDOFF; /* LOCKED stays: it is theirs */
        if (clear)
            atomic_fetch_and_explicit(st, ~(uint32_t)(clear | HANDOFF), RLX);
    } else {
        if (!n)
            clear |= HANDOFF;
        /* Release: pairs with the next locker's acquire. */
        atomic_fetch_and_explicit(st, ~(uint32_t)(LOCKED | clear), REL);
    }
    weft__spin_unlock(l);
    if (n)
        weft__wait_wake(n->wait);
    return 0;
}

int weft_mutex_unlock(weft_mutex *m)
{
    if (!m)
        return -EINVAL;
    uint32_t s = LOCKED;
    /* Release: pairs with the next locker's acquire. */
    if (weft_likely(atomic_compare_exchange_strong_explicit(
            WEFT_A32(&m->state_), &s, 0, REL, RLX)))
        return 0;
    return unlock_slow(m);
}

/* Take m back after a cond wait, whatever happens: a cond wait returns
 * with its mutex held, also when it was cancelled. Inside the cond wait's
 * own open wait (WAIT_NESTED): shutdown does not end it, and the
 * destroyer waits for it (sched/cancel.c). */
void weft__mutex_relock(weft_mutex *m)
{
    uint32_t s = 0;
    /* Acquire: pairs with unlock's release. */
    if (!atomic_compare_exchange_strong_explicit(WEFT_A32(&m->state_), &s,
                                                 LOCKED, ACQ, RLX))
        lock_slow(m, WAIT_FOREVER, WAIT_NESTED);
}
