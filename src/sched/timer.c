/*
 * timer.c - the per-worker 4-ary timer heap (see timer.h for the choice).
 *
 * Invariants, all under h->lock: e[0..n) is a min-heap on deadline
 * (e[i].deadline >= e[(i - 1) / 4].deadline); for each entry,
 * e[i].t->idx == i and e[i].t->owner is this heap's worker; a popped or
 * cancelled timer is in no heap. h->next mirrors e[0].deadline (or
 * UINT64_MAX) so the owner can test "anything due?" without the lock.
 *
 * Firing. The owner pops due timers under the lock, marks each fired
 * (release: its waiter acquires it after waking) and copies the task to
 * unpark; it unparks after dropping the lock, so the lock is never held
 * across scheduler calls. Once `fired` is set the waiter may return and
 * its record (on its stack) vanish: nothing reads the timer after that
 * store. A waiter that has been woken by something else first cancels
 * under the same lock; a cancel that finds the timer fired does nothing,
 * and the fire's unpark then reaches a task that is running or parked on
 * something else: a spurious wake-up, which every wait loop tolerates.
 */
#include "timer.h"

#include "../base/atomic.h"
#include "../base/spin.h"
#include "runtime.h"
#include "wake.h"

#define RLX memory_order_relaxed

static void lock(weft_theap *h)
{
    weft__spin_lock(&h->lock);
}

/* Publish the earliest deadline, then release. */
static void unlock(weft_theap *h)
{
    atomic_store_explicit(&h->next, h->n ? h->e[0].deadline : UINT64_MAX, RLX);
    weft__spin_unlock(&h->lock);
}

void weft__theap_init(weft_theap *h, weft_theap_ent *storage)
{
    atomic_store_explicit(&h->lock, 0, RLX);
    h->n = 0;
    atomic_store_explicit(&h->next, UINT64_MAX, RLX);
    h->e = storage;
}

static inline void put(weft_theap *h, uint32_t i, weft_theap_ent x)
{
    h->e[i] = x;
    x.t->idx = i;
}

static void sift_up(weft_theap *h, uint32_t i, weft_theap_ent x)
{
    while (i) {
        uint32_t p = (i - 1) / 4;
        if (h->e[p].deadline <= x.deadline)
            break;
        put(h, i, h->e[p]);
        i = p;
    }
    put(h, i, x);
}

static void sift_down(weft_theap *h, uint32_t i, weft_theap_ent x)
{
    for (;;) {
        uint32_t c = 4 * i + 1, best = c;
        if (c >= h->n)
            break;
        uint32_t end = c + 4 < h->n ? c + 4 : h->n;
        for (uint32_t k = c + 1; k < end; k++)
            if (h->e[k].deadline < h->e[best].deadline)
                best = k;
        if (h->e[best].deadline >= x.deadline)
            break;
        put(h, i, h->e[best]);
        i = best;
    }
    put(h, i, x);
}

/* Remove entry i. */
static void remove_at(weft_theap *h, uint32_t i)
{
    weft_theap_ent last = h->e[--h->n];
    if (i == h->n)
        return;
    if (i && h->e[(i - 1) / 4].deadline > last.deadline)
        sift_up(h, i, last);
    else
        sift_down(h, i, last);
}

void weft__timer_arm(weft_worker *w, weft_timer *t, uint64_t deadline,
                     weft_waiter *who)
{
    weft_theap *h = &w->timers;
    t->deadline = deadline;
    t->owner = w;
    t->who = who;
    atomic_store_explicit(&t->fired, 0, RLX);
    lock(h);
    h->n++;
    sift_up(h, h->n - 1, (weft_theap_ent){deadline, t});
    unlock(h);
}

void weft__timer_cancel(weft_timer *t)
{
    weft_theap *h = &t->owner->timers;
    /* Acquire: pairs with the release in weft__timer_run; a fired timer
     * is out of the heap for good. */
    if (atomic_load_explicit(&t->fired, memory_order_acquire))
        return;
    lock(h);
    if (!atomic_load_explicit(&t->fired, RLX))
        remove_at(h, t->idx);
    unlock(h);
}

void weft__timer_run(weft_worker *w, uint64_t now)
{
    weft_theap *h = &w->timers;
    enum { BATCH = 32 };
    struct {
        weft_rt *rt;
        uint32_t slot, gen;
    } due[BATCH];
    for (;;) {
        if (weft__timer_next(h) > now)
            return;
        uint32_t n = 0;
        lock(h);
        while (h->n && h->e[0].deadline <= now && n < BATCH) {
            weft_timer *t = h->e[0].t;
            remove_at(h, 0);
            weft_waiter *who = t->who;
            due[n].rt = who->rt;
            due[n].slot = who->slot;
            due[n].gen = weft__task_hgen(who->rt, who->slot);
            n++;
            /* Release: pairs with the waiter's acquire load; after this
             * store the record may be gone. */
            atomic_store_explicit(&t->fired, 1, memory_order_release);
        }
        unlock(h);
        for (uint32_t i = 0; i < n; i++) {
            if (weft_unlikely(atomic_load_explicit(&w->tracing, RLX)))
                weft__trace_event(due[i].rt, w, WEFT_TEV_TIMER, due[i].slot, 0,
                                  0, due[i].gen, 0);
            weft__task_unpark(due[i].rt, due[i].slot, due[i].gen);
        }
        if (n < BATCH)
            return;
    }
}
