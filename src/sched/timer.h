/*
 * timer.h - per-worker timers: a task waiting with a deadline arms one on
 * the worker it runs on; the worker fires it (unparks the task) when the
 * deadline passes, from its scheduling loop or when it wakes from an idle
 * sleep that it timed to its earliest deadline.
 *
 * Why a 4-ary min-heap (and not a timing wheel). Arm and cancel are
 * O(log4 n) with exact order and no tick: an idle worker sleeps exactly
 * until its earliest deadline, which a heap gives in O(1), and there is no
 * cascading or per-tick work while timers wait. A hierarchical wheel is
 * O(1) to arm but needs a tick or a scan to find the next deadline, and
 * cascades entries as time passes; with one timer per waiting task
 * (at most max_tasks per worker) the heap's depth stays small: 9 levels
 * for 10^5 timers. Four children per node halve the depth of a binary
 * heap, and with 16-byte entries the four children of a node share one
 * 64-byte line, so a sift-down touches one line per level. Go's runtime
 * made the same choice (runtime/time.go).
 *
 * Cross-worker cancel. A task may be woken (by a channel, say) and resume
 * on another worker before its timer fires; it cancels from there. Each
 * heap therefore has a spin lock (per worker, never global), taken by the
 * owner to arm and fire and by anyone to cancel. A timer records the
 * worker whose heap holds it and its index there (both under that lock).
 */
#ifndef WEFT_SCHED_TIMER_H
#define WEFT_SCHED_TIMER_H

#include <stdatomic.h>
#include <stdint.h>

struct weft_worker;
struct weft_waiter;

typedef struct weft_timer {
    uint64_t deadline;
    struct weft_worker *owner; /* the heap it was armed on */
    struct weft_waiter *who;   /* the task to unpark (its wait record) */
    uint32_t idx;              /* heap position; under owner's lock */
    _Atomic uint32_t fired;    /* 1 once popped by its owner */
} weft_timer;

typedef struct weft_theap_ent {
    uint64_t deadline;
    weft_timer *t;
} weft_theap_ent;

/* A worker's heap. `lock` and `next` are shared (cancel from any worker,
 * idle check); the array is in the arena, max_tasks entries. */
typedef struct weft_theap {
    _Atomic uint32_t lock;
    uint32_t n;            /* entries; under lock */
    _Atomic uint64_t next; /* earliest deadline, UINT64_MAX when empty */
    weft_theap_ent *e;
} weft_theap;

void weft__theap_init(weft_theap *h, weft_theap_ent *storage);

/* Arm t for the task of wait record `who` on worker w's heap. Owner
 * worker (a task running on w). */
void weft__timer_arm(struct weft_worker *w, weft_timer *t, uint64_t deadline,
                     struct weft_waiter *who);

/* Disarm t if it has not fired. Any thread; t must have been armed. */
void weft__timer_cancel(weft_timer *t);

/* Fire every timer of w due at `now`: unpark its task. Owner worker. */
void weft__timer_run(struct weft_worker *w, uint64_t now);

/* Earliest deadline on w's heap, UINT64_MAX when none. Any thread. */
static inline uint64_t weft__timer_next(const weft_theap *h)
{
    return atomic_load_explicit(&h->next, memory_order_relaxed);
}

#endif
