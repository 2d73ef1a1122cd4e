/*
 * chan.c - channels and select.
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
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "wait.h"

#define RLX memory_order_relaxed
#define CHAN_MAGIC UINT32_C(0x6368616e)
#define CHAN_CLOSED UINT32_C(0x6368616f)
#define CHAN_DEAD UINT32_C(0xdeadc4a7)
#define MAX_ELEM 65536u
#define MAX_CASES 64

/* 56 bytes, so that with malloc's header it takes one 64-byte chunk: a
 * parked receiver's channel is part of what each parked task costs
 * (bench memory). The ring follows the struct. */
struct weft_chan {
    _Atomic uint32_t lock;
    _Atomic uint32_t magic; /* CHAN_MAGIC, CHAN_CLOSED, CHAN_DEAD */
    uint32_t esize;
    uint32_t cap;
    uint32_t head;          /* ring index of the oldest element */
    _Atomic uint32_t count; /* elements in the ring (read unlocked by len) */
    weft_wlist_ sendq, recvq;
};

_Static_assert(sizeof(struct weft_chan) <= 56, "weft_chan must stay small");

static inline int bad(const weft_chan *ch)
{
    uint32_t m = ch ? atomic_load_explicit(&((weft_chan *)ch)->magic, RLX) : 0;
    return m != CHAN_MAGIC && m != CHAN_CLOSED;
}

/* Under the lock. */
static inline int closed(weft_chan *ch)
{
    return atomic_load_explicit(&ch->magic, RLX) == CHAN_CLOSED;
}

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
    pthread_mutex_lock(&q_lock);
    weft_chan *old = quarantine[q_next];
    quarantine[q_next] = ch;
    q_next = (q_next + 1) % QUARANTINE;
    pthread_mutex_unlock(&q_lock);
    free(old);
}
#else
static void release(weft_chan *ch)
{
    free(ch);
}
#endif

static inline void lock(weft_chan *ch)
{
    weft__spin_lock(&ch->lock);
}

static inline void unlock(weft_chan *ch)
{
    weft__spin_unlock(&ch->lock);
}

int weft_chan_destroy(weft_chan *ch)
{
    if (bad(ch))
        return -EINVAL;
    lock(ch);
    if (!weft__wq_empty(&ch->sendq) || !weft__wq_empty(&ch->recvq)) {
        unlock(ch);
        return -EBUSY;
    }
    atomic_store_explicit(&ch->magic, CHAN_DEAD, RLX);
    unlock(ch);
    release(ch);
    return 0;
}

size_t weft_chan_len(const weft_chan *ch)
{
    return bad(ch)
               ? 0
               : (size_t)atomic_load_explicit(&((weft_chan *)ch)->count, RLX);
}

size_t weft_chan_cap(const weft_chan *ch)
{
    return bad(ch) ? 0 : (size_t)ch->cap;
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
static int try_send(weft_chan *ch, const void *elem, int *res, weft_wait **wake)
{
    *wake = NULL;
    if (closed(ch)) {
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

static int try_recv(weft_chan *ch, void *out, int *res, weft_wait **wake)
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
    if (closed(ch)) {
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
    if (bad(ch) || !elem)
        return -EINVAL;
    int res;
    weft_wait *peer;
    lock(ch);
    int done = send ? try_send(ch, elem, &res, &peer)
                    : try_recv(ch, elem, &res, &peer);
    if (done || try) {
        unlock(ch);
        if (peer)
            weft__wait_wake(peer);
        return done ? res : -EAGAIN;
    }
    weft_wait wt;
    weft_wnode node = {.wait = &wt, .elem = elem};
    int r = weft__wait_init(&wt, deadline == WAIT_FOREVER ? WAIT_SOLO : 0,
                            send ? WEFT_WK_CHAN_SEND : WEFT_WK_CHAN_RECV, ch);
    if (r) {
        unlock(ch);
        return weft__wait_fini(&wt, r);
    }
    weft_wlist_ *q = send ? &ch->sendq : &ch->recvq;
    weft__wq_push(q, &node);
    unlock(ch);
    r = weft__wait_block(&wt, deadline);
    if (r < 0) { /* timed out or cancelled: still linked */
        lock(ch);
        weft__wq_unlink(q, &node);
        unlock(ch);
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
    if (bad(ch))
        return -EINVAL;
    lock(ch);
    if (closed(ch)) {
        unlock(ch);
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
    unlock(ch);
    weft__wake_list(q[0], 0);
    weft__wake_list(q[1], 0);
    return 0;
}

/* ---- select ------------------------------------------------------------ */

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
        lock(order[i]);
}

static void unlock_all(weft_chan **order, size_t k)
{
    for (size_t i = k; i-- > 0;)
        unlock(order[i]);
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
        if (bad(c[i].chan) || !c[i].elem ||
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
                       ? try_send(c[i].chan, c[i].elem, &res, &peer)
                       : try_recv(c[i].chan, c[i].elem, &res, &peer);
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
