/*
 * chan.h - the channel structure and the calls chan.c and select.c share.
 */
#ifndef WEFT_SYNC_CHAN_H
#define WEFT_SYNC_CHAN_H

#include "wait.h"

#define CHAN_MAGIC UINT32_C(0x6368616e)
#define CHAN_CLOSED UINT32_C(0x6368616f)
#define CHAN_DEAD UINT32_C(0xdeadc4a7)

/* 40 bytes, so that with malloc's header it takes one 48-byte chunk: a
 * parked receiver's channel is part of what each parked task costs
 * (bench memory, decisions/0016). The ring follows the struct. */
struct weft_chan {
    _Atomic uint32_t lock;
    _Atomic uint32_t magic; /* CHAN_MAGIC, CHAN_CLOSED, CHAN_DEAD */
    uint32_t esize;
    uint32_t cap;
    uint32_t head;          /* ring index of the oldest element */
    _Atomic uint32_t count; /* elements in the ring (read unlocked by len) */
    weft_wlist_ sendq, recvq;
};

_Static_assert(sizeof(struct weft_chan) <= 40, "weft_chan must stay small");

static inline int weft__chan_bad(const weft_chan *ch)
{
    uint32_t m = ch ? atomic_load_explicit(&((weft_chan *)ch)->magic,
                                           memory_order_relaxed)
                    : 0;
    return m != CHAN_MAGIC && m != CHAN_CLOSED;
}

/* Under the lock. */
static inline int weft__chan_closed(weft_chan *ch)
{
    return atomic_load_explicit(&ch->magic, memory_order_relaxed) ==
           CHAN_CLOSED;
}

static inline void weft__chan_lock(weft_chan *ch)
{
    weft__spin_lock(&ch->lock);
}

static inline void weft__chan_unlock(weft_chan *ch)
{
    weft__spin_unlock(&ch->lock);
}

/* Complete a send (receive) of elem if the channel can take (give) one
 * now: 1 with *res set (0, or -EPIPE when closed) and *wake the blocked
 * party to wake after the lock is dropped (or NULL); 0 when it would
 * block. Under ch's lock. */
int weft__chan_try_send(weft_chan *ch, const void *elem, int *res,
                        weft_wait **wake);
int weft__chan_try_recv(weft_chan *ch, void *out, int *res, weft_wait **wake);

#endif
