/*
 * mailbox.h - a single-producer single-consumer ring of chunks of task
 * slot indices: mesh mode's point-to-point link from one worker to another
 * (DESIGN.md §7; sched/mesh.c).
 *
 * The producer fills the chunk at the ring's tail in place (it owns every
 * slot from tail up to head + RING) and publishes it, whole, with one
 * release store of tail. The consumer reads every published chunk (acquire
 * load of tail) and hands slots back with one release store of head. So
 * one atomic store moves up to WEFT_CHUNK tasks, and the only line the two
 * sides share while busy is the chunk itself, written once and read once.
 * head and tail live on separate lines; each side caches the other's index
 * and reloads it only when its cache says full (producer) or empty
 * (consumer) - Lamport's ring with the cached-index refinement of
 * FastForward / MCRingBuffer.
 *
 * Invariants: head <= tail <= head + WEFT_MBOX_RING (as 64-bit counts);
 * chunk[i % RING] for head <= i < tail is published and immutable until
 * head passes it; the chunk at tail is the producer's staging area, whose
 * n the consumer never reads before tail covers it.
 */
#ifndef WEFT_QUEUE_MAILBOX_H
#define WEFT_QUEUE_MAILBOX_H

#include <stdatomic.h>
#include <stdint.h>

#include "../base/compiler.h"

#define WEFT_CHUNK 31     /* indices per chunk: chunk = 128 bytes */
#define WEFT_MBOX_RING 8u /* chunks per ring (power of two) */

typedef struct weft_chunk {
    uint32_t n;
    uint32_t idx[WEFT_CHUNK];
} weft_chunk;

typedef struct weft_mbox {
    /* Producer's line. */
    weft_aligned(WEFT_CACHELINE) _Atomic uint64_t tail;
    uint64_t head_cache; /* producer's view of head */
    /* Consumer's line. */
    weft_aligned(WEFT_CACHELINE) _Atomic uint64_t head;
    uint64_t tail_cache; /* consumer's view of tail */
    weft_aligned(WEFT_CACHELINE) weft_chunk chunk[WEFT_MBOX_RING];
} weft_mbox;

/* The staging chunk, or NULL when the ring is full. Producer only. */
static inline weft_chunk *weft__mbox_stage(weft_mbox *m)
{
    uint64_t t = atomic_load_explicit(&m->tail, memory_order_relaxed);
    if (t - m->head_cache >= WEFT_MBOX_RING) {
        /* Acquire: pairs with the consumer's release of head; the chunk
         * we are about to overwrite has been read. */
        m->head_cache = atomic_load_explicit(&m->head, memory_order_acquire);
        if (t - m->head_cache >= WEFT_MBOX_RING)
            return NULL;
    }
    return &m->chunk[t % WEFT_MBOX_RING];
}

/* Publish the staging chunk (its n >= 1). Producer only. */
static inline void weft__mbox_publish(weft_mbox *m)
{
    uint64_t t = atomic_load_explicit(&m->tail, memory_order_relaxed);
    /* Release: pairs with weft__mbox_next's acquire of tail. */
    atomic_store_explicit(&m->tail, t + 1, memory_order_release);
}

/* The oldest published chunk, or NULL. Consumer only; release it with
 * weft__mbox_done before asking for the next. */
static inline weft_chunk *weft__mbox_next(weft_mbox *m)
{
    uint64_t h = atomic_load_explicit(&m->head, memory_order_relaxed);
    if (h == m->tail_cache) {
        /* Acquire: pairs with weft__mbox_publish's release. */
        m->tail_cache = atomic_load_explicit(&m->tail, memory_order_acquire);
        if (h == m->tail_cache)
            return NULL;
    }
    return &m->chunk[h % WEFT_MBOX_RING];
}

static inline void weft__mbox_done(weft_mbox *m)
{
    uint64_t h = atomic_load_explicit(&m->head, memory_order_relaxed);
    /* Release: pairs with weft__mbox_stage's acquire of head. */
    atomic_store_explicit(&m->head, h + 1, memory_order_release);
}

/* Published and not yet consumed (racy hint). Any thread. */
static inline int weft__mbox_pending(weft_mbox *m)
{
    return atomic_load_explicit(&m->tail, memory_order_relaxed) !=
           atomic_load_explicit(&m->head, memory_order_relaxed);
}

#endif
