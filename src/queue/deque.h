/*
 * deque.h - a worker's Chase-Lev work-stealing deque of 32-bit task slot
 * indices: the owner pushes and takes at the bottom (LIFO), thieves steal
 * at the top (FIFO). A fixed power-of-two ring: a full push fails and the
 * owner moves half of the ring to the global queue (DESIGN.md §9: a
 * growable buffer needs safe reclamation).
 *
 * An entry may instead be a job: a pointer the owner pushed with
 * weft__deque_push_job (a fork record of sched/fork.c, on its task's
 * stack). Its entry is WEFT_DEQUE_JOB | position, and the pointer sits in
 * jobs[position], written before the entry and published by the same
 * release of bottom; a thief reads it before its CAS on top, as it reads
 * the entry (the same argument covers both: the owner rewrites position
 * p only after top has passed it). Slot indices stay below 2^24
 * (rt/config.c), so no slot looks like a job.
 */
#ifndef WEFT_QUEUE_DEQUE_H
#define WEFT_QUEUE_DEQUE_H

#include <stdatomic.h>
#include <stdint.h>

#include "../base/compiler.h"

#define WEFT_DEQUE_CAP 256u
#define WEFT_DEQUE_EMPTY UINT32_MAX
#define WEFT_DEQUE_ABORT (UINT32_MAX - 1)
#define WEFT_DEQUE_JOB UINT32_C(0x80000000)

/* Is entry x a job (not a slot, not EMPTY or ABORT)? */
static inline int weft__deque_is_job(uint32_t x)
{
    return (x & ~(WEFT_DEQUE_CAP - 1)) == WEFT_DEQUE_JOB;
}

typedef struct weft_deque {
    /* Thieves write top; the owner writes bottom: separate lines. */
    weft_aligned(WEFT_CACHELINE) _Atomic int64_t top;
    weft_aligned(WEFT_CACHELINE) _Atomic int64_t bottom;
    weft_aligned(WEFT_CACHELINE) _Atomic uint32_t buf[WEFT_DEQUE_CAP];
    _Atomic(void *) jobs[WEFT_DEQUE_CAP]; /* a job entry's pointer */
} weft_deque;

/* Push x at the bottom; 0, or -1 when full. Owner only. Inline: it is on
 * every spawn. See deque.c for the orders. */
static inline int weft__deque_push(weft_deque *d, uint32_t x)
{
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
    int64_t t = atomic_load_explicit(&d->top, memory_order_acquire); /* pairs
                           with the thieves' CAS on top: the slot we are
                           about to overwrite was read by its thief */
    if (b - t >= (int64_t)WEFT_DEQUE_CAP)
        return -1;
    atomic_store_explicit(&d->buf[b & (WEFT_DEQUE_CAP - 1)], x,
                          memory_order_relaxed);
    /* Release: pairs with weft__deque_steal's acquire load of bottom. */
    atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
    return 0;
}

/* Push job pointer p at the bottom: returns its index (what
 * weft__deque_take_job wants), or -1 when full. Owner only. */
static inline int64_t weft__deque_push_job(weft_deque *d, void *p)
{
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
    int64_t t = atomic_load_explicit(&d->top, memory_order_acquire); /* as
                                                                   push's */
    if (b - t >= (int64_t)WEFT_DEQUE_CAP)
        return -1;
    uint32_t pos = (uint32_t)b & (WEFT_DEQUE_CAP - 1);
    atomic_store_explicit(&d->jobs[pos], p, memory_order_relaxed);
    atomic_store_explicit(&d->buf[pos], WEFT_DEQUE_JOB | pos,
                          memory_order_relaxed);
    /* Release: pairs with weft__deque_steal's acquire load of bottom (the
     * pointer and the entry, and what the record holds). */
    atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
    return b;
}

/* Take from the bottom; WEFT_DEQUE_EMPTY if empty. Owner only. */
uint32_t weft__deque_take(weft_deque *d);

/* The pointer of job entry x, which the owner has just taken or grabbed
 * (before its next push, which may reuse the position). Owner only. */
static inline void *weft__deque_job(weft_deque *d, uint32_t x)
{
    return atomic_load_explicit(&d->jobs[x & (WEFT_DEQUE_CAP - 1)],
                                memory_order_relaxed);
}

/* Put entry x, just taken by the owner, back at the bottom; a job keeps
 * its pointer (a take of the last entry moves top, so x may land at
 * another position than the one it names). Cannot fail: the take made
 * room. Owner only. */
static inline void weft__deque_put_back(weft_deque *d, uint32_t x)
{
    if (weft__deque_is_job(x))
        (void)weft__deque_push_job(d, weft__deque_job(d, x));
    else
        (void)weft__deque_push(d, x);
}

/* Take back job p pushed at index i, if it is still the bottom entry
 * and no thief takes it first: 1 (it is the caller's again), else 0 (it
 * was taken, or it is not at the bottom: the caller waits for whoever
 * has it or will take it). Owner only. Inline: weft_fork_join's path. */
static inline int weft__deque_take_job(weft_deque *d, int64_t i, void *p)
{
    uint32_t pos = (uint32_t)i & (WEFT_DEQUE_CAP - 1);
    /* The owner wrote all three: relaxed loads see its own stores. The
     * entry at i may be another one now (p was taken by the owner's run
     * loop, which pushed more since), hence the two checks. */
    if (atomic_load_explicit(&d->bottom, memory_order_relaxed) != i + 1 ||
        atomic_load_explicit(&d->buf[pos], memory_order_relaxed) !=
            (WEFT_DEQUE_JOB | pos) ||
        atomic_load_explicit(&d->jobs[pos], memory_order_relaxed) != p)
        return 0;
    /* Now it is weft__deque_take on the bottom entry, which is p's,
     * inline and with the entry already known (deque.c has the race and
     * its orders): publish bottom = i, then read top. */
    atomic_exchange_explicit(&d->bottom, i, memory_order_seq_cst);
    int64_t t = atomic_load_explicit(&d->top, memory_order_seq_cst);
    if (t < i)
        return 1; /* others remain above top: i is ours */
    int won = 0;
    if (t == i) /* the last entry: whoever moves top past it owns it */
        won = atomic_compare_exchange_strong_explicit(
            &d->top, &t, t + 1, memory_order_seq_cst, memory_order_relaxed);
    /* t > i: a thief took it (top passed i). Either way the deque is
     * empty now: bottom back above top. */
    atomic_store_explicit(&d->bottom, i + 1, memory_order_relaxed);
    return won;
}

/* Steal from the top; WEFT_DEQUE_EMPTY, WEFT_DEQUE_ABORT (lost a race:
 * retry or move on), or an entry; for a job entry, *job is its pointer.
 * Any thread. */
uint32_t weft__deque_steal(weft_deque *d, void **job);

/* Move up to n of the oldest items (from the top) into out[]; returns how
 * many. Owner only (used when a push finds the ring full). */
uint32_t weft__deque_grab(weft_deque *d, uint32_t *out, uint32_t n);

/* Owner's cheap emptiness hint: may say "non-empty" when a thief just
 * emptied it, never "empty" when the owner pushed. Owner only. */
static inline int weft__deque_maybe_nonempty(weft_deque *d)
{
    return atomic_load_explicit(&d->bottom, memory_order_relaxed) >
           atomic_load_explicit(&d->top, memory_order_relaxed);
}

#endif
