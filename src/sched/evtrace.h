/*
 * evtrace.h - in WEFT_DEBUG builds, the last few scheduling events of
 * each task slot (made ready into which queue, taken, switched in,
 * parked, unparked), so that the watchdog (watchdog.c) can say how a lost
 * task got lost. Release builds compile none of it.
 *
 * One ring of WEFT_EV_RING words per slot, in the arena; each word is
 * (global sequence << 24 | calling worker << 16 | worker whose queue
 * << 8 | event). Writers are whoever
 * moves the task (relaxed: this is a diagnostic, read after the fact by
 * the watchdog while every worker sleeps). The global sequence orders
 * events of different slots.
 */
#ifndef WEFT_SCHED_EVTRACE_H
#define WEFT_SCHED_EVTRACE_H

#include <stdatomic.h>
#include <stdint.h>

#define WEFT_EV_RING 8

typedef struct weft_evring {
    _Atomic uint64_t ev[WEFT_EV_RING];
    _Atomic uint32_t n;
    uint32_t pad_;
} weft_evring;

enum {
    WEFT_EV_LIFO = 1,  /* into a worker's LIFO slot */
    WEFT_EV_DQ,        /* pushed onto a normal deque */
    WEFT_EV_BDQ,       /* pushed onto a band deque */
    WEFT_EV_YQ,        /* onto the yield queue */
    WEFT_EV_BYQ,       /* onto a band yield queue */
    WEFT_EV_SIG,       /* signalled in the summary tree */
    WEFT_EV_SUMTAKE,   /* taken from the summary tree */
    WEFT_EV_INJ,       /* pushed onto the injection queue */
    WEFT_EV_INJTAKE,   /* taken from the injection queue */
    WEFT_EV_STOLEN,    /* stolen */
    WEFT_EV_IN,        /* switched in */
    WEFT_EV_PARKED,    /* published PARKED */
    WEFT_EV_PARKWAKE,  /* park raced with an unpark: requeued */
    WEFT_EV_PARKSHORT, /* weft__task_park consumed a WAKE */
    WEFT_EV_UNPARK,    /* PARKED -> RUNNABLE by an unpark */
    WEFT_EV_WAKEBIT,   /* unpark of a RUNNABLE task: WAKE set */
    WEFT_EV_INLINE,    /* run inline by its joiner */
    WEFT_EV_DEAD,      /* finished */
    WEFT_EV_MAIL,      /* sent to another worker's mailbox (mesh) */
    WEFT_EV_OUT,       /* switched out */
    WEFT_EV_COUNT
};

struct weft_rt;
#ifdef WEFT_DEBUG
struct weft_worker;
/* Event ev of slot, on worker w's queues (NULL: none in particular). */
void weft__ev(struct weft_rt *rt, uint32_t slot, unsigned ev,
              const struct weft_worker *w);
/* The ring of slot as text into buf, oldest first. */
void weft__ev_text(struct weft_rt *rt, uint32_t slot, char *buf, unsigned n);
#define WEFT_EV(rt, slot, ev) weft__ev((rt), (slot), (ev), NULL)
#define WEFT_EVW(w, slot, ev) weft__ev((w)->rt, (slot), (ev), (w))
#else
#define WEFT_EV(rt, slot, ev) ((void)0)
#define WEFT_EVW(w, slot, ev) ((void)0)
#endif

#endif
