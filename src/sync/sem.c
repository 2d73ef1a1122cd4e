/*
 * sem.c - weft_sem, weft_wg and weft_event: counters and flags with a
 * FIFO queue of waiters (wait.h).
 *
 * Semaphore state: count << 2 | DEAD | WAITERS. WAITERS is set and cleared
 * only under the queue lock; wait and post without it are one CAS. A post
 * that sees WAITERS takes the queue lock and hands its unit to the first
 * waiter directly (the count does not move), so a waiter is never passed
 * by a newcomer. No lost wake-up, by the same argument as the mutex
 * (mutex.c): the waiter's RMW that sets WAITERS returns the count it
 * decides on, and a post whose CAS comes after that RMW fails and goes
 * through the queue lock, which the waiter holds until it has queued.
 *
 * Wait group: the count is one word changed by CAS; the change that
 * reaches zero then takes the queue lock and wakes every waiter. A waiter
 * reads the count under that lock before it queues, so either it reads
 * zero or the zeroing add's wake-all (which takes the lock after its CAS)
 * finds it queued.
 *
 * Event: set must be async-signal-safe, so it never spins on a lock that
 * the code it interrupted might hold. The queue lock is a bit (LOCK) of
 * the event's state word, beside SET and PENDING. set either takes the
 * lock with the same CAS that sets SET (then wakes every waiter itself),
 * or, finding it held, sets SET | PENDING and leaves: the holder's unlock
 * is a CAS that fails while PENDING is set, so the holder sees it and
 * wakes the waiters before it lets go. Waiters are woken through the
 * summary tree (weft__wait_wake_remote), never through the calling
 * worker's own queues, which a signal may have interrupted mid-update.
 */
#include <errno.h>
#include <limits.h>

#include "wait.h"

#define RLX memory_order_relaxed
#define ACQ memory_order_acquire
#define REL memory_order_release

/* ---- semaphores --------------------------------------------------------- */

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

/* ---- wait groups ------------------------------------------------------ */

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

/* ---- events ----------------------------------------------------------- */

enum { E_SET = 1, E_LOCK = 2, E_PENDING = 4 };

static inline int e_dead(uint32_t s)
{
    return (s & 0xffff0000u) == WEFT_DEAD32;
}

int weft_event_init(weft_event *e)
{
    if (!e)
        return -EINVAL;
    *e = (weft_event)WEFT_EVENT_INIT;
    return 0;
}

/* Take the lock bit; returns the state seen with it, or one with the dead
 * mark (lock not taken). Not from a signal handler. */
static uint32_t e_lock(_Atomic uint32_t *st)
{
    uint32_t s = atomic_load_explicit(st, RLX);
    for (unsigned spins = 0;; spins++) {
        if (e_dead(s))
            return s;
        /* Acquire: pairs with e_unlock's release. */
        if (!(s & E_LOCK) &&
            atomic_compare_exchange_weak_explicit(st, &s, s | E_LOCK, ACQ, RLX))
            return s | E_LOCK;
        if (s & E_LOCK) {
            if (spins < 100)
                weft_cpu_relax();
            else
                sched_yield();
            s = atomic_load_explicit(st, RLX);
        }
    }
}

/* Drop the lock bit, first serving any set that arrived while it was
 * held (PENDING). */
static void e_unlock(weft_event *e)
{
    _Atomic uint32_t *st = WEFT_A32(&e->state_);
    weft_wnode *wake = NULL, **tail = &wake;
    uint32_t s = atomic_load_explicit(st, RLX);
    for (;;) {
        if (s & E_PENDING) {
            if (!atomic_compare_exchange_weak_explicit(
                    st, &s, s & ~(uint32_t)E_PENDING, ACQ, RLX))
                continue; /* acquire: pairs with set's release */
            if (s & E_SET) {
                *tail = weft__wq_claim_list(&e->q_.list_, UINT_MAX);
                while (*tail)
                    tail = &(*tail)->next;
            }
            s &= ~(uint32_t)E_PENDING;
            continue;
        }
        /* Release: pairs with the next locker's acquire. */
        if (atomic_compare_exchange_weak_explicit(st, &s, s & ~(uint32_t)E_LOCK,
                                                  REL, RLX))
            break;
    }
    weft__wake_list(wake, 1);
}

int weft_event_destroy(weft_event *e)
{
    if (!e)
        return -EINVAL;
    _Atomic uint32_t *st = WEFT_A32(&e->state_);
    uint32_t s = e_lock(st);
    if (e_dead(s))
        return -EINVAL;
    if (!weft__wq_empty(&e->q_.list_)) {
        e_unlock(e);
        return -EBUSY;
    }
    /* Release: a set racing with destroy has set PENDING or SET; both
     * are harmless once dead (callers must not do that anyway). */
    atomic_store_explicit(st, WEFT_DEAD32, REL);
    return 0;
}

int weft_event_set(weft_event *e)
{
    if (!e)
        return -EINVAL;
    _Atomic uint32_t *st = WEFT_A32(&e->state_);
    uint32_t s = atomic_load_explicit(st, RLX);
    for (;;) {
        if (e_dead(s))
            return -EINVAL;
        if (s & E_SET)
            return 0; /* set already: its setter wakes the waiters */
        /* Free: take the lock with SET and wake waiters ourselves.
         * Held: leave SET | PENDING for the holder. acq_rel: acquire when
         * taking the lock (pairs with e_unlock's release), release so a
         * waiter that sees SET sees what we wrote before. */
        uint32_t n = s & E_LOCK ? s | E_SET | E_PENDING : s | E_SET | E_LOCK;
        if (atomic_compare_exchange_weak_explicit(st, &s, n,
                                                  memory_order_acq_rel, RLX))
            break;
    }
    if (s & E_LOCK)
        return 0;
    weft_wnode *all = weft__wq_claim_list(&e->q_.list_, UINT_MAX);
    e_unlock(e);
    weft__wake_list(all, 1);
    return 0;
}

int weft_event_reset(weft_event *e)
{
    if (!e)
        return -EINVAL;
    _Atomic uint32_t *st = WEFT_A32(&e->state_);
    uint32_t s = atomic_load_explicit(st, RLX);
    do {
        if (e_dead(s))
            return -EINVAL;
    } while (!atomic_compare_exchange_weak_explicit(
        st, &s, s & ~(uint32_t)E_SET, RLX, RLX));
    return 0;
}

int weft_event_is_set(const weft_event *e)
{
    if (!e)
        return 0;
    uint32_t s = atomic_load_explicit(WEFT_A32((void *)&e->state_), ACQ);
    return !e_dead(s) && (s & E_SET);
}

int weft_event_wait_until(weft_event *e, uint64_t deadline)
{
    if (!e)
        return -EINVAL;
    _Atomic uint32_t *st = WEFT_A32(&e->state_);
    /* Acquire: pairs with set's release. */
    uint32_t s = atomic_load_explicit(st, ACQ);
    if (e_dead(s))
        return -EINVAL;
    if (s & E_SET)
        return 0;
    weft_wait wt;
    weft_wnode node = {.wait = &wt};
    int r = weft__wait_init(&wt, deadline == WAIT_FOREVER, WEFT_WK_EVENT, e);
    if (r)
        return weft__wait_fini(&wt, r);
    s = e_lock(st);
    if (e_dead(s)) {
        r = -EINVAL;
        goto out;
    }
    if (s & E_SET) {
        e_unlock(e);
        goto out;
    }
    weft__wq_push(&e->q_.list_, &node);
    e_unlock(e);
    r = weft__wait_block(&wt, deadline);
    if (r < 0) { /* timed out or cancelled: still linked */
        if (!e_dead(e_lock(st))) {
            weft__wq_unlink(&e->q_.list_, &node);
            e_unlock(e);
        }
    }
out:
    return weft__wait_fini(&wt, r);
}

int weft_event_wait(weft_event *e)
{
    return weft_event_wait_until(e, WAIT_FOREVER);
}
