/*
 * select.c - weft_select over channels (chan.h).
 *
 * Select (Go's selectgo, simplified). The channels of all cases are locked
 * together, in address order (duplicates once), so no other party can
 * complete a case while select looks at them and queues on them. Pass 1
 * visits the cases in a random order and completes the first that is
 * ready. Otherwise one wait record gets a node in every case's queue, all
 * locks are dropped, and the select blocks; the first waker to claim the
 * record completes that case (the claim value names it). Afterwards
 * select locks them all again to unlink the nodes that are left.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "chan.h"

#define MAX_CASES 64

static _Thread_local uint32_t sel_rng;

static uint32_t rnd(void)
{
    uint32_t x = sel_rng;
    if (!x)
        x = (uint32_t)(uintptr_t)&x | 1;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return sel_rng = x;
}

/* Lock the distinct channels in `order` (sorted), or unlock them. */
static void lock_all(weft_chan **order, size_t k)
{
    for (size_t i = 0; i < k; i++)
        weft__chan_lock(order[i]);
}

static void unlock_all(weft_chan **order, size_t k)
{
    for (size_t i = k; i-- > 0;)
        weft__chan_unlock(order[i]);
}

static int select_impl(weft_sel_case *c, size_t n, uint64_t deadline, int try)
{
    if (!c || n == 0 || n > MAX_CASES)
        return -EINVAL;
    weft_chan *order[MAX_CASES];
    uint8_t perm[MAX_CASES];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!c[i].chan)
            continue;
        if (weft__chan_bad(c[i].chan) || !c[i].elem ||
            (c[i].op != WEFT_SEL_SEND && c[i].op != WEFT_SEL_RECV))
            return -EINVAL;
        /* insertion sort by address, duplicates once */
        size_t j = k;
        while (j > 0 && (uintptr_t)order[j - 1] > (uintptr_t)c[i].chan)
            j--;
        if (j > 0 && order[j - 1] == c[i].chan)
            continue;
        memmove(&order[j + 1], &order[j], (k - j) * sizeof order[0]);
        order[j] = c[i].chan;
        k++;
    }
    if (!k) {
        if (try)
            return -EAGAIN;
        if (deadline == WAIT_FOREVER)
            return -EINVAL;                 /* would block forever */
        int r = weft_sleep_until(deadline); /* -ECANCELED or 0 */
        return r ? r : -ETIMEDOUT;
    }
    /* A random permutation of the cases (Fisher-Yates): the pass-1 order,
     * so that ready cases are chosen uniformly. */
    for (size_t i = 0; i < n; i++) {
        size_t j = rnd() % (i + 1);
        perm[i] = perm[j];
        perm[j] = (uint8_t)i;
    }

    lock_all(order, k);
    for (size_t t = 0; t < n; t++) {
        size_t i = perm[t];
        if (!c[i].chan)
            continue;
        int res;
        weft_wait *peer;
        int done = c[i].op == WEFT_SEL_SEND
                       ? weft__chan_try_send(c[i].chan, c[i].elem, &res, &peer)
                       : weft__chan_try_recv(c[i].chan, c[i].elem, &res, &peer);
        if (done) {
            unlock_all(order, k);
            if (peer)
                weft__wait_wake(peer);
            c[i].result = res;
            return (int)i;
        }
    }
    if (try) {
        unlock_all(order, k);
        return -EAGAIN;
    }
    weft_wait wt;
    weft_wnode nodes[n]; /* n <= MAX_CASES; sized to n for small stacks */
    int r = weft__wait_init(&wt, 0, WEFT_WK_SELECT, c); /* several nodes */
    if (r) {
        unlock_all(order, k);
        return weft__wait_fini(&wt, r);
    }
    for (size_t i = 0; i < n; i++) {
        nodes[i].queued = 0;
        if (!c[i].chan)
            continue;
        nodes[i].wait = &wt;
        nodes[i].elem = c[i].elem;
        nodes[i].index = (uint32_t)i;
        weft__wq_push(c[i].op == WEFT_SEL_SEND ? &c[i].chan->sendq
                                               : &c[i].chan->recvq,
                      &nodes[i]);
    }
    unlock_all(order, k);
    r = weft__wait_block(&wt, deadline);
    lock_all(order, k);
    for (size_t i = 0; i < n; i++)
        if (c[i].chan)
            weft__wq_unlink(c[i].op == WEFT_SEL_SEND ? &c[i].chan->sendq
                                                     : &c[i].chan->recvq,
                            &nodes[i]);
    unlock_all(order, k);
    if (weft__wait_fini(&wt, r) < 0) /* timed out or cancelled */
        return r;
    /* Acquire: pairs with the claimer's CAS (its result write follows
     * under the same channel lock, published by the wake's release). */
    uint32_t won = atomic_load_explicit(&wt.claim, memory_order_acquire) - 1;
    c[won].result = wt.result;
    return (int)won;
}

int weft_select(weft_sel_case *cases, size_t n)
{
    return select_impl(cases, n, WAIT_FOREVER, 0);
}

int weft_select_until(weft_sel_case *cases, size_t n, uint64_t deadline)
{
    return select_impl(cases, n, deadline, 0);
}

int weft_try_select(weft_sel_case *cases, size_t n)
{
    return select_impl(cases, n, 0, 1);
}
