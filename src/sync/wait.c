/*
 * wait.c - blocking for tasks and plain threads, with deadlines (the
 * sleeps and the clock are time.c).
 *
 * A task blocks by parking. With a deadline it first arms a timer on its
 * current worker (the record on its stack, timer.h); whichever comes
 * first, the waker's claim or the timer, unparks it. Parks may return
 * spuriously (task.c), so the loop re-checks the woken flag and the
 * timer's fired flag each time. A plain thread blocks on the woken flag
 * with a futex whose timeout is the deadline itself (absolute
 * CLOCK_MONOTONIC, the same clock as weft_now_ns).
 *
 * No lost wake-up: the waker sets the flag (release) before unparking or
 * futex-waking; the waiter checks the flag (acquire) after every return
 * from park or futex wait. An unpark that arrives before the park is kept
 * as the task's WAKE bit (task.c), and a futex wake before the wait is
 * caught by the futex's own value check (flag no longer 0).
 */
#include "wait.h"

#include <errno.h>
#include <time.h>

#include "../base/clock.h"
#include "../base/futex.h"

#define RLX memory_order_relaxed
#define ACQ memory_order_acquire

int weft__wait_init(weft_wait *wt, int flags, unsigned kind, const void *obj)
{
    weft_caller me;
    int task = weft__caller(&me);
    atomic_store_explicit(&wt->w.futex, 0, RLX);
    atomic_store_explicit(&wt->claim, 0, RLX);
    wt->w.cancelled = 0;
    wt->w.rt = me.rt;
    wt->w.task = me.task;
    wt->w.slot = me.slot;
    wt->result = 0;
    wt->flags = 0;
    wt->since = 0;
    wt->kind = kind;
    wt->obj = obj;
    wt->inw = NULL;
    /* A task's wait may be ended by its own cancellation, which races
     * the waker's claim: no solo shortcut for tasks. */
    wt->solo = task ? 0 : (uint32_t)(flags & WAIT_SOLO);
    if (!task)
        return 0;
    if (flags & WAIT_NESTED) {
        /* Inside its caller's wait, which entered already and keeps the
         * in-wait flag up: only say where we wait now. */
        weft__caller_wait_set(&me, kind, obj);
        return 0;
    }
    /* Cancellation (sched/cancel.c): say we are about to link a record
     * before we do; a shut-down runtime's tasks never block. */
    if (weft__wait_enter(me.rt, me.slot, kind, obj))
        return -ECANCELED;
    wt->inw = weft__caller_wait_flag(&me);
    return 0;
}

int weft__wait_cancelled_end(void)
{
    /* A cancelled call is a switch point: a task that loops on calls
     * that fail with -ECANCELED still lets weft_rt_destroy stop its
     * worker (sched/cancel.c), as the waits it replaces did. */
    weft_yield();
    return -ECANCELED;
}

/* Try to end the wait by timeout (or cancellation); 1 when we won the
 * claim. */
static int time_out(weft_wait *wt)
{
    uint32_t open = 0;
    /* acq_rel: pairs with weft__wait_claim. */
    return atomic_compare_exchange_strong_explicit(
        &wt->claim, &open, WAIT_TIMEOUT, memory_order_acq_rel, RLX);
}

static int block_thread(weft_wait *wt, uint64_t deadline)
{
    /* Acquire: pairs with weft__waiter_wake's release. */
    /* The futex call takes 0 as "no deadline". */
    uint64_t fdl = deadline == WAIT_FOREVER ? 0 : deadline ? deadline : 1;
    while (!atomic_load_explicit(&wt->w.futex, ACQ)) {
        if (weft__futex_wait(&wt->w.futex, 0, fdl) == -ETIMEDOUT &&
            !atomic_load_explicit(&wt->w.futex, ACQ)) {
            if (time_out(wt))
                return -ETIMEDOUT;
            fdl = 0; /* claimed meanwhile: its wake-up is coming */
        }
    }
    return 0;
}

static int block_task(weft_wait *wt, uint64_t deadline);

int weft__wait_block(weft_wait *wt, uint64_t deadline)
{
    /* A task's cold TCB says where it waits from weft__wait_init to
     * weft__wait_fini. */
    return wt->w.task ? block_task(wt, deadline) : block_thread(wt, deadline);
}

static int block_task(weft_wait *wt, uint64_t deadline)
{
    weft_timer tm;
    int armed = 0, cancel = wt->inw != NULL;
    while (!atomic_load_explicit(&wt->w.futex, ACQ)) { /* pairs with
                                                          waiter_wake */
        /* Checked before every park (sched/cancel.c, "No lost
         * cancellation"). Like a timeout, the cancellation must win the
         * claim; if a waker won it, its wake-up is coming. */
        if (cancel && weft__wait_cancelled(wt->w.rt)) {
            if (time_out(wt)) {
                if (armed)
                    weft__timer_cancel(&tm);
                return -ECANCELED;
            }
            cancel = 0;
            deadline = WAIT_FOREVER;
            continue;
        }
        if (deadline != WAIT_FOREVER) {
            int due;
            if (!armed) {
                due = weft__clock_ns() >= deadline;
                if (!due) {
                    weft__timer_arm_here(&tm, deadline, &wt->w);
                    armed = 1;
                }
            } else {
                /* Acquire: pairs with weft__timer_run's release. */
                due = atomic_load_explicit(&tm.fired, ACQ);
            }
            if (due) {
                if (time_out(wt)) {
                    if (armed)
                        weft__timer_cancel(&tm);
                    return -ETIMEDOUT;
                }
                deadline = WAIT_FOREVER; /* claimed meanwhile: wait for
                                            its wake-up */
                cancel = 0;
                continue;
            }
        }
        weft__task_park();
    }
    if (armed)
        weft__timer_cancel(&tm);
    return 0;
}

weft_wnode *weft__wq_claim_list(weft_wlist_ *q, unsigned max)
{
    weft_wnode *head = NULL, **tail = &head, *n;
    while (max-- && (n = weft__wq_claim(q))) {
        n->next = NULL; /* off the queue: the link is free */
        *tail = n;
        tail = &n->next;
    }
    return head;
}

void weft__wake_list(weft_wnode *n, int remote)
{
    while (n) {
        weft_wnode *next = n->next; /* before the wake: n may vanish */
        if (remote)
            weft__wait_wake_remote(n->wait);
        else
            weft__wait_wake(n->wait);
        n = next;
    }
}

void weft__wait_wake_remote(weft_wait *wt)
{
    weft__waiter_wake_remote(&wt->w);
}
