/*
 * event.c - weft_event: a flag that waiters wait to see set, with a FIFO
 * queue of waiters (wait.h).
 *
 * Set must be async-signal-safe, so it never spins on a lock that the
 * code it interrupted might hold. The queue lock is a bit (LOCK) of the
 * event's state word, beside SET and PENDING. set either takes the lock
 * with the same CAS that sets SET (then wakes every waiter itself), or,
 * finding it held, sets SET | PENDING and leaves: the holder's unlock is a
 * CAS that fails while PENDING is set, so the holder sees it and wakes
 * the waiters before it lets go. Waiters are woken through the summary
 * tree (weft__wait_wake_remote), never through the calling worker's own
 * queues, which a signal may have interrupted mid-update.
 */
#include <errno.h>
#include <limits.h>

#include "../base/sysmark.h"
#include "wait.h"

#define RLX memory_order_relaxed
#define ACQ memory_order_acquire
#define REL memory_order_release

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
            else {
                weft__sys_enter();
                sched_yield();
                weft__sys_leave();
            }
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
