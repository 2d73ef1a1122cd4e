/*
 * chan.c - channels (select is select.c; both share chan.h).
 *
 * A channel is a spin lock, a ring of `cap` elements, and two FIFO queues
 * of blocked parties (wait.h): senders, each node pointing at the element
 * it sends, and receivers, each pointing at where its element goes. The
 * structure follows Go's runtime/chan.go: a sender that finds a queued
 * receiver copies straight into the receiver's buffer (on its stack) and
 * wakes it; a receiver that finds the ring full takes the ring's head and
 * moves the first blocked sender's element into the freed place, so
 * elements from one sender keep their order. Every copy is done by the
 * party that holds the lock while the other is blocked and claimed, so
 * both buffers are alive (wait.h, lifetime).
 *
 * Invariants under the lock: count <= cap; receivers queue only while
 * count == 0 and no sender queues; senders queue only while count == cap
 * and no receiver queues (queued nodes whose claim has failed may linger
 * until popped or unlinked, and are skipped). Closed: no node of either
 * queue remains claimable once close has run.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../base/sysmark.h"
#include "chan.h"

#define RLX memory_order_relaxed
#define MAX_ELEM 65536u

int weft_chan_create(weft_chan **out, size_t esize, size_t cap)
{
    if (!out || esize == 0 || esize > MAX_ELEM || cap > ((size_t)1 << 31))
        return -EINVAL;
    weft_chan *ch = malloc(sizeof *ch + esize * cap);
    if (!ch)
        return -ENOMEM;
    memset(ch, 0, sizeof *ch);
    ch->esize = (uint32_t)esize;
    ch->cap = (uint32_t)cap;
    atomic_store_explicit(&ch->magic, CHAN_MAGIC, RLX);
    *out = ch;
    return 0;
}

#ifdef WEFT_DEBUG
/* Debug builds keep the last destroyed channels' memory (marked dead)
 * before freeing it, so that a use after destroy is reported as -EINVAL
 * rather than reading freed memory, as long as it comes within the next
 * QUARANTINE destroys. */
#define QUARANTINE 256
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static weft_chan *quarantine[QUARANTINE];
static unsigned q_next;

static void release(weft_chan *ch)
{
    weft__sys_enter();
    pthread_mutex_lock(&q_lock);
    weft_chan *old = quarantine[q_next];
    quarantine[q_next] = ch;
    q_next = (q_next + 1) % QUARANTINE;
    pthread_mutex_unlock(&q_lock);
    free(old);
    weft__sys_leave();
}
#else
static void release(weft_chan *ch)
{
    free(ch);
}
#endif

int weft_chan_destroy(weft_chan *ch)
{
    if (weft__chan_bad(ch))
        return -EINVAL;
    weft__chan_lock(ch);
    if (!weft__wq_empty(&ch->sendq) || !weft__wq_empty(&ch->recvq)) {
        weft__chan_unlock(ch);
        return -EBUSY;
    }
    atomic_store_explicit(&ch->magic, CHAN_DEAD, RLX);
    weft__chan_unlock(ch);
    release(ch);
    return 0;
}

size_t weft_chan_len(const weft_chan *ch)
{
    return weft__chan_bad(ch)
               ? 0
               : (size_t)atomic_load_explicit(&((weft_chan *)ch)->count, RLX);
}

size_t weft_chan_cap(const weft_chan *ch)
{
    return weft__chan_bad(ch) ? 0 : (size_t)ch->cap;
}

/* Element copy; the common sizes compile to a move or two. */
static inline void copy(void *d, const void *s, uint32_t n)
{
    switch (n) {
    case 8:
        memcpy(d, s, 8);
        break;
    case 4:
        memcpy(d, s, 4);
        break;
    case 16:
        memcpy(d, s, 16);
        break;
    default:
        memcpy(d, s, n);
    }
}

/* Element i of the ring, for i < 2 * cap (a position past head). */
static inline char *slot_at(weft_chan *ch, uint32_t i)
{
    if (i >= ch->cap)
        i -= ch->cap;
    return (char *)(ch + 1) + (size_t)i * ch->esize;
}

/*
 * Try a send or receive with the lock held. Returns 1 when the operation
 * completed (*res: 0, or -EPIPE when the channel is closed) and sets
 * *wake to the blocked party it completed with (to be woken after the
 * unlock), or 0 when it would block.
 */
int weft__chan_try_send(weft_chan *ch, const void *elem, int *res,
                        weft_wait **wake)
{
    *wake = NULL;
    if (weft__chan_closed(ch)) {
        *res = -EPIPE;
        return 1;
    }
    weft_wnode *r = weft__wq_claim(&ch->recvq);
    *res = 0;
    if (r) {
        copy(r->elem, elem, ch->esize);
        r->wait->result = 0;
        *wake = r->wait;
        return 1;
    }
    uint32_t n = atomic_load_explicit(&ch->count, RLX);
    if (n < ch->cap) {
        copy(slot_at(ch, ch->head + n), elem, ch->esize);
        atomic_store_explicit(&ch->count, n + 1, RLX);
        return 1;
    }
    return 0;
}

int weft__chan_try_recv(weft_chan *ch, void *out, int *res, weft_wait **wake)
{
    *wake = NULL;
    *res = 0;
    uint32_t n = atomic_load_explicit(&ch->count, RLX);
    if (n) {
        copy(out, slot_at(ch, ch->head), ch->esize);
        ch->head = ch->head + 1 == ch->cap ? 0 : ch->head + 1;
        weft_wnode *s = weft__wq_claim(&ch->sendq);
        if (s) { /* the ring was full: the first blocked sender moves in */
            copy(slot_at(ch, ch->head + n - 1), s->elem, ch->esize);
            s->wait->result = 0;
            *wake = s->wait;
        } else {
            atomic_store_explicit(&ch->count, n - 1, RLX);
        }
        return 1;
    }
    weft_wnode *s = weft__wq_claim(&ch->sendq);
    if (s) { /* rendezvous */
        copy(out, s->elem, ch->esize);
        s->wait->result = 0;
        *wake = s->wait;
        return 1;
    }
    if (weft__chan_closed(ch)) {
        *res = -EPIPE;
        return 1;
    }
    return 0;
}

/* One send or receive, blocking until `deadline` (WAIT_FOREVER: none;
 * 0 with `try`: never block). */
static int chan_op(weft_chan *ch, int send, void *elem, uint64_t deadline,
                   int try)
{
    if (weft__chan_bad(ch) || !elem)
        return -EINVAL;
    int res;
    weft_wait *peer;
    weft__chan_lock(ch);
    int done = send ? weft__chan_try_send(ch, elem, &res, &peer)
                    : weft__chan_try_recv(ch, elem, &res, &peer);
    if (done || try) {
        weft__chan_unlock(ch);
        if (peer)
            weft__wait_wake(peer);
        return done ? res : -EAGAIN;
    }
    weft_wait wt;
    weft_wnode node = {.wait = &wt, .elem = elem};
    int r = weft__wait_init(&wt, deadline == WAIT_FOREVER ? WAIT_SOLO : 0,
                            send ? WEFT_WK_CHAN_SEND : WEFT_WK_CHAN_RECV, ch);
    if (r) {
        weft__chan_unlock(ch);
        return weft__wait_fini(&wt, r);
    }
    weft_wlist_ *q = send ? &ch->sendq : &ch->recvq;
    weft__wq_push(q, &node);
    weft__chan_unlock(ch);
    r = weft__wait_block(&wt, deadline);
    if (r < 0) { /* timed out or cancelled: still linked */
        weft__chan_lock(ch);
        weft__wq_unlink(q, &node);
        weft__chan_unlock(ch);
    } else {
        r = wt.result;
    }
    return weft__wait_fini(&wt, r);
}

int weft_chan_send(weft_chan *ch, const void *elem)
{
    return chan_op(ch, 1, (void *)elem, WAIT_FOREVER, 0);
}

int weft_chan_send_until(weft_chan *ch, const void *elem, uint64_t deadline)
{
    return chan_op(ch, 1, (void *)elem, deadline, 0);
}

int weft_chan_try_send(weft_chan *ch, const void *elem)
{
    return chan_op(ch, 1, (void *)elem, 0, 1);
}

int weft_chan_recv(weft_chan *ch, void *elem)
{
    return chan_op(ch, 0, elem, WAIT_FOREVER, 0);
}

int weft_chan_recv_until(weft_chan *ch, void *elem, uint64_t deadline)
{
    return chan_op(ch, 0, elem, deadline, 0);
}

int weft_chan_try_recv(weft_chan *ch, void *elem)
{
    return chan_op(ch, 0, elem, 0, 1);
}

int weft_chan_close(weft_chan *ch)
{
    if (weft__chan_bad(ch))
        return -EINVAL;
    weft__chan_lock(ch);
    if (weft__chan_closed(ch)) {
        weft__chan_unlock(ch);
        return -EPIPE;
    }
    atomic_store_explicit(&ch->magic, CHAN_CLOSED, RLX);
    /* Every blocked party ends with -EPIPE: receivers (the ring is empty
     * while any queue) and senders. */
    weft_wnode *q[2] = {weft__wq_claim_list(&ch->recvq, UINT_MAX),
                        weft__wq_claim_list(&ch->sendq, UINT_MAX)};
    for (int k = 0; k < 2; k++)
        for (weft_wnode *n = q[k]; n; n = n->next)
            n->wait->result = -EPIPE;
    weft__chan_unlock(ch);
    weft__wake_list(q[0], 0);
    weft__wake_list(q[1], 0);
    return 0;
}
