/*
 * inject.h - the global injection queue: tasks from deque overflow, taken
 * by any worker in batches. A FIFO linked through a per-slot link array
 * (in the arena), so it stores nothing but slot indices and needs no
 * memory of its own.
 *
 * It takes a short mutex per batch (not per task): measured against a
 * spinlock in docs/decisions/0004-injection-queue.md; spawns from plain
 * threads bypass it through the summary tree's signal bits.
 */
#ifndef WEFT_QUEUE_INJECT_H
#define WEFT_QUEUE_INJECT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

typedef struct weft_inject {
    pthread_mutex_t lock;
    uint32_t head, tail;    /* slot + 1, 0 = none; under lock */
    _Atomic uint32_t *link; /* next slot + 1 per slot (arena) */
    _Atomic uint64_t len;   /* written under lock, read without it */
} weft_inject;

void weft__inject_init(weft_inject *q, _Atomic uint32_t *link);
void weft__inject_destroy(weft_inject *q);

/* Append n slots in order. Any thread. */
void weft__inject_push(weft_inject *q, const uint32_t *slots, uint32_t n);

/* Take up to n slots from the head into out[]; returns how many. Any
 * thread. */
uint32_t weft__inject_pop(weft_inject *q, uint32_t *out, uint32_t n);

/* Relaxed hint; the caller re-checks under its own protocol. */
static inline uint64_t weft__inject_len(weft_inject *q)
{
    return atomic_load_explicit(&q->len, memory_order_relaxed);
}

#endif
