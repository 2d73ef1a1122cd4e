/*
 * wait.h - what every blocking primitive is built from: a wait record on
 * the waiter's stack, queue nodes that link it into a primitive's FIFO
 * queue, the queue's spin lock, and one blocking call for tasks (park,
 * with a timer for deadlines) and plain threads (futex).
 *
 * The claim protocol. A wait may sit in several queues at once (select),
 * may time out, and must be completed exactly once. So each wait has a
 * claim word: 0 while open; a waker that pops one of its nodes CASes it to
 * (node index + 1) and, only if that succeeds, completes the operation
 * for it (copies data, sets the result) and then wakes it; a waiter whose
 * deadline passes CASes it to WAIT_TIMEOUT and, only if that succeeds,
 * removes its nodes and reports -ETIMEDOUT. Whoever loses the CAS backs
 * off: a waker drops the node and tries the next one; a waiter waits
 * (without deadline) for the wake-up that the winner is about to send.
 * A popped node whose claim fails is simply discarded: its waiter is done
 * with it or about to unlink it (unlinking checks `queued`, under the
 * queue's lock).
 *
 * Lifetime. The record lives on the waiter's stack. A waker may use it
 * until it sets the woken flag (weft__waiter_wake, release); the waiter
 * returns only after seeing that flag (acquire) or after winning the claim
 * with WAIT_TIMEOUT and unlinking its nodes under the queues' locks. So
 * no queue and no waker holds a pointer to a record that has gone.
 */
#ifndef WEFT_SYNC_WAIT_H
#define WEFT_SYNC_WAIT_H

#include <stdatomic.h>
#include <stdint.h>

#include "../base/atomic.h"
#include "../base/spin.h"
#include "../sched/park.h"
#include "weft.h"

#define WAIT_TIMEOUT UINT32_MAX
#define WAIT_FOREVER UINT64_MAX /* deadline: none */

typedef struct weft_wait {
    weft_waiter w;          /* who waits, and the woken flag */
    _Atomic uint32_t claim; /* 0, node index + 1, or WAIT_TIMEOUT */
    int result;             /* set by the claimer: 0, -EPIPE, ... */
    uint32_t flags;         /* primitive-specific, set by the claimer */
    uint32_t solo;          /* one node, no deadline, a plain thread: no
                               one races a waker's claim, which is then a
                               plain store */
    _Atomic uint8_t *inw;   /* the task's wait kind, its in-wait flag
                               (sched/cancel.c), while this wait is open
                               and cancellable; NULL for threads and
                               nested waits */
    uint64_t since;         /* when it first queued (mutex policy) */
    unsigned kind;          /* WEFT_WK_*: what it waits on, for dumps */
    const void *obj;        /* the primitive, for dumps */
} weft_wait;

typedef struct weft_wnode {
    struct weft_wnode *next, *prev;
    weft_wait *wait;
    void *elem;     /* channels: the waiter's element */
    uint32_t index; /* its case index (select), else 0 */
    uint32_t queued;
} weft_wnode;

#define WAIT_SOLO 1 /* weft__wait_init: see below */
#define WAIT_NESTED                                                            \
    2 /* inside an open wait of the same task (cond_wait
                         taking its mutex back): not cancelled, and its
                         init and fini leave the in-wait flag alone */

/* Fill in who is waiting: the calling task, or the calling thread. SOLO in
 * flags: the wait has one node and no deadline, and its owner never closes
 * it itself (see weft__wait_claim; tasks never get it, since cancellation
 * may close their waits). NESTED: as above. kind (WEFT_WK_*, sched/task.h) and obj say what
 * it waits on: a task records them while it is blocked in
 * weft__wait_block, for weft_task_info and weft_dump. Returns 0, or
 * -ECANCELED when the calling task's runtime is shut down: then the caller
 * links nothing. Any thread. */
int weft__wait_init(weft_wait *wt, int flags, unsigned kind, const void *obj);

/* End a wait begun by weft__wait_init, whatever init returned: the
 * caller's result r, once nothing of the wait is linked and no lock is
 * held. Returns r; after -ECANCELED it yields first (sched/cancel.c). May
 * switch. */
int weft__wait_cancelled_end(void);
static inline int weft__wait_fini(weft_wait *wt, int r)
{
    if (wt->inw)
        /* Release: as weft__wait_leave (sched/cancel.c). */
        atomic_store_explicit(wt->inw, WEFT_WK_NONE, memory_order_release);
    return weft_likely(r != -ECANCELED) ? r : weft__wait_cancelled_end();
}

/* Block until the wait is claimed and woken (0), or until deadline_ns
 * (WAIT_FOREVER = none; one in the past times out at once) passes and the
 * caller wins the claim (-ETIMEDOUT), or the calling task's runtime
 * cancels its waits and the caller wins the claim (-ECANCELED). On an
 * error its nodes are still linked: the caller unlinks them. Any thread. */
int weft__wait_block(weft_wait *wt, uint64_t deadline_ns);

/* A waker's claim of node n (under its queue's lock): a CAS, or for a solo
 * wait, which only this waker can end, a plain store. */
static inline int weft__wait_claim(weft_wnode *n)
{
    if (n->wait->solo) {
        atomic_store_explicit(&n->wait->claim, 1, memory_order_relaxed);
        return 1;
    }
    uint32_t open = 0;
    /* acq_rel: pairs with the waiter's timeout CAS on the same word, so
     * exactly one wins. */
    return atomic_compare_exchange_strong_explicit(
        &n->wait->claim, &open, n->index + 1, memory_order_acq_rel,
        memory_order_relaxed);
}

/* The winner's wake-up; after it the record may be gone. */
static inline void weft__wait_wake(weft_wait *wt)
{
    weft__waiter_wake(&wt->w);
}

/* As weft__wait_wake, but safe in a signal handler (no worker-local
 * queue is touched). */
void weft__wait_wake_remote(weft_wait *wt);

/* ---- queues (a weft_waitq's list_): the caller holds its lock -------
 *
 * A queue is one pointer, its oldest node; the nodes form a circular
 * doubly linked ring, so the newest is head->prev. One word rather than
 * head and tail keeps every primitive that embeds a queue small: a
 * channel is two queues and 24 bytes, 40 in all, which malloc serves
 * from a 48-byte chunk (a parked receiver's channel is part of what each
 * parked task costs, bench `memory`, decisions/0016). Invariants: head_
 * is NULL or a node with queued == 1 whose ring holds exactly the queued
 * nodes of this queue in FIFO order; a node off every queue has
 * queued == 0 and links that mean nothing. */

static inline void weft__wq_push(weft_wlist_ *q, weft_wnode *n)
{
    weft_wnode *h = q->head_;
    if (h) { /* between the newest and the oldest */
        n->prev = h->prev;
        n->next = h;
        h->prev->next = n;
        h->prev = n;
    } else {
        n->next = n->prev = n;
        q->head_ = n;
    }
    n->queued = 1;
}

static inline void weft__wq_push_head(weft_wlist_ *q, weft_wnode *n)
{
    weft__wq_push(q, n);
    q->head_ = n; /* the ring's newest becomes its oldest */
}

static inline void weft__wq_unlink(weft_wlist_ *q, weft_wnode *n)
{
    if (!n->queued)
        return;
    if (n->next == n) {
        q->head_ = NULL;
    } else {
        n->prev->next = n->next;
        n->next->prev = n->prev;
        if (q->head_ == n)
            q->head_ = n->next;
    }
    n->queued = 0;
}

static inline int weft__wq_empty(const weft_wlist_ *q)
{
    return q->head_ == NULL;
}

/* Claim up to `max` nodes of q, oldest first, as a list through their
 * `next` links (they are off the queue); NULL when none. Under q's lock. */
weft_wnode *weft__wq_claim_list(weft_wlist_ *q, unsigned max);

/* Wake every wait of a claimed list, oldest first (remote: as
 * weft__wait_wake_remote). After the lock is dropped. */
void weft__wake_list(weft_wnode *n, int remote);

/* Pop nodes until one is claimed; NULL when none is left. */
static inline weft_wnode *weft__wq_claim(weft_wlist_ *q)
{
    weft_wnode *n;
    while ((n = q->head_)) {
        weft__wq_unlink(q, n);
        if (weft__wait_claim(n))
            return n;
    }
    return NULL;
}

/* The public structs keep their words as plain integers (the header is
 * also C++); the library accesses them atomically through these. */
#define WEFT_A32(p) ((_Atomic uint32_t *)(void *)(p))
#define WEFT_A64(p) ((_Atomic uint64_t *)(void *)(p))
#define WEFT_AI64(p) ((_Atomic int64_t *)(void *)(p))

static inline _Atomic uint32_t *weft__wq_lock_word(weft_waitq *q)
{
    return WEFT_A32(&q->lock_);
}

/* Marks a destroyed object in its state word (mutex.c, cond.c, wg.c,
 * event.c). */
#define WEFT_DEAD32 UINT32_C(0xdead0000)
static inline int weft__dead32(uint32_t s)
{
    return (s & 0xffff0000u) == WEFT_DEAD32;
}

#endif
