/*
 * trace.h - the execution trace's recorder: fixed-size binary events in
 * ring buffers, written with no lock and no allocation; obs/trace.c turns
 * them into Chrome trace-event JSON only when a trace is written out
 * (docs/trace.md).
 *
 * Rings. One per worker (its scheduling: which task ran when, parks,
 * wakes it made, steals, sleeps), one for everything else (plain threads'
 * spawns and wakes, isolation identities). A worker's ring has one writer
 * at a time, the thread running that worker; the index is still taken
 * with a fetch_add, so that the same code serves the shared ring and the
 * hand-over of a worker between threads (isolation) needs no care. That
 * RMW is on a line only that worker writes: uncontended.
 *
 * Two modes. Normal: a full ring drops new events and counts them (a
 * worker never waits for a reader). Flight recorder (wrap): the ring
 * keeps the newest events, overwriting the oldest.
 *
 * Readers run while writers may write (weft_trace_dump of a running
 * runtime), so each event is a seqlock of its own (Boehm, "Can seqlocks
 * get along with programming language memory models?", MSPC 2012): the
 * writer stores ts = 0, a release fence, the fields (relaxed), then the
 * real ts (release); a reader loads ts (acquire), the fields, an acquire
 * fence, and ts again, and keeps the event only when both ts agree and
 * are non-zero. A torn or half-written event is skipped, never misread.
 *
 * Cost. Off: one load of w->trace (a line every switch writes anyway) and
 * a predictable branch per switch; nothing on the other hooks but the
 * same test. On: a clock read (vDSO) and five stores per event.
 */
#ifndef WEFT_SCHED_TRACE_H
#define WEFT_SCHED_TRACE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/clock.h"
#include "../base/compiler.h"

/* Event kinds. Fields: slot (32 bits), x (8), y (16), a, b, c (64). */
enum {
    WEFT_TEV_RUN = 1, /* the worker now runs `slot` (UINT32_MAX: its
                         scheduler); x: how the previous poll ended
                         (MSG_*), y: the wait kind (WEFT_WK_*) it parked
                         in; a: slot's handle generation; b, c: name */
    WEFT_TEV_SPAWN,   /* slot spawned; x | y << 8: its generation (24
                         bits); a: parent slot + 1 (0: a plain thread) |
                         parent generation << 32; b, c: its name */
    WEFT_TEV_END,     /* slot's task returned while run inline by its
                         joiner; a: generation (a task that ran on a
                         stack of its own ends with the RUN that follows
                         it, x = MSG_DEAD) */
    WEFT_TEV_WAKE,    /* slot made runnable by an unpark; a: generation;
                         b: the waking task's slot + 1, 0 if none */
    WEFT_TEV_STEAL,   /* slot stolen; y: the victim worker */
    WEFT_TEV_PREEMPT, /* the running task `slot` preempted */
    WEFT_TEV_SLEEP,   /* the worker goes to sleep; x: 1 in the poller */
    WEFT_TEV_WAKEUP,  /* the worker is awake again */
    WEFT_TEV_TIER,    /* the monitor promoted slot to tier x (policy.h);
                         a: generation, b: the poll's time so far (ns) */
    WEFT_TEV_ISOLATE, /* slot's worker given to another thread (y) */
    WEFT_TEV_MAIL,    /* mesh: a chunk of `a` tasks sent to worker y, the
                         first being slot */
    WEFT_TEV_TIMER,   /* a timer of slot fired (it is woken next) */
    WEFT_TEV_COUNT
};

/* Track of the shared ring's events. */
#define WEFT_TRACK_OTHER 0xffffu

typedef struct weft_tev {
    _Atomic uint64_t ts;   /* ns since the trace's start + 1; 0: being
                              written */
    _Atomic uint64_t head; /* kind | x << 8 | y << 16 | slot << 32 */
    _Atomic uint64_t a, b, c;
} weft_tev;

typedef struct weft_tring {
    _Atomic uint64_t next;    /* events reserved so far */
    _Atomic uint64_t dropped; /* events lost to a full ring (normal mode) */
    uint64_t mask;            /* capacity - 1 (a power of two) */
    uint64_t t0;              /* the trace's start (weft__clock_ns) */
    uint32_t wrap;            /* 1: flight recorder */
    uint32_t track;           /* worker id, or WEFT_TRACK_OTHER */
    weft_tev ev[];
} weft_tring;

/* Record one event in r. Any thread. */
static inline void weft__trace_put(weft_tring *r, unsigned kind, uint32_t slot,
                                   unsigned x, unsigned y, uint64_t a,
                                   uint64_t b, uint64_t c)
{
    uint64_t i;
    if (!r->wrap &&
        atomic_load_explicit(&r->next, memory_order_relaxed) > r->mask) {
        atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
        return;
    }
    i = atomic_fetch_add_explicit(&r->next, 1, memory_order_relaxed);
    if (!r->wrap && i > r->mask) {
        atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
        return;
    }
    weft_tev *e = &r->ev[i & r->mask];
    uint64_t now = weft__clock_ns();
    atomic_store_explicit(&e->ts, 0, memory_order_relaxed);
    /* Release fence: the 0 above is seen before any field below by a
     * reader that sees a field (the reader's acquire fence, header). */
#ifndef WEFT_TSAN /* TSan models no fences (and GCC refuses them) */
    atomic_thread_fence(memory_order_release);
#endif
    atomic_store_explicit(&e->head,
                          kind | (uint64_t)(x & 0xff) << 8 |
                              (uint64_t)(y & 0xffff) << 16 |
                              (uint64_t)slot << 32,
                          memory_order_relaxed);
    atomic_store_explicit(&e->a, a, memory_order_relaxed);
    atomic_store_explicit(&e->b, b, memory_order_relaxed);
    atomic_store_explicit(&e->c, c, memory_order_relaxed);
    /* Release: publishes the fields to the reader's acquire load of ts. */
    atomic_store_explicit(&e->ts, now - r->t0 + 1, memory_order_release);
}

/* A copy of one event, as a reader got it. */
typedef struct weft_tev_copy {
    uint64_t ts, head, a, b, c;
} weft_tev_copy;

/* Copy event slot k of r into *out: 1 if it held a whole event. */
static inline int weft__trace_get(weft_tring *r, uint64_t k, weft_tev_copy *out)
{
    weft_tev *e = &r->ev[k & r->mask];
    uint64_t ts = atomic_load_explicit(&e->ts, memory_order_acquire);
    if (!ts)
        return 0;
    out->head = atomic_load_explicit(&e->head, memory_order_relaxed);
    out->a = atomic_load_explicit(&e->a, memory_order_relaxed);
    out->b = atomic_load_explicit(&e->b, memory_order_relaxed);
    out->c = atomic_load_explicit(&e->c, memory_order_relaxed);
    /* Acquire fence: the field loads above happen before the reload of
     * ts; pairs with the writer's release fence (header). */
#ifndef WEFT_TSAN
    atomic_thread_fence(memory_order_acquire);
#endif
    out->ts = ts;
    return atomic_load_explicit(&e->ts, memory_order_relaxed) == ts;
}

struct weft_rt;
struct weft_worker;

/* Start recording into rings of ring_bytes each (rounded down to a power
 * of two events), wrapping when wrap: 0 or -ENOMEM / -EALREADY. Rings are
 * made at the first start and kept until weft__trace_free. Any thread. */
int weft__trace_start(struct weft_rt *rt, size_t ring_bytes, int wrap);
/* Stop recording: hooks see no ring from now on (writers already inside
 * one finish their event; the rings stay mapped). 0, or -ENOENT when not
 * recording. */
int weft__trace_stop(struct weft_rt *rt);
/* Unmap the rings. Destroyer, after the workers have stopped. */
void weft__trace_free(struct weft_rt *rt);

/* The ring a caller on worker w (NULL: not one of rt's workers) writes
 * to, or NULL when not recording. */
struct weft_tring *weft__trace_ring(struct weft_rt *rt, struct weft_worker *w);

#endif
