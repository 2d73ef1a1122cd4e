/*
 * switch.h - the message a switch carries, and finishing the departure
 * it names (switch.c has the argument). Internal to the worker's files.
 */
#ifndef WEFT_SCHED_SWITCH_H
#define WEFT_SCHED_SWITCH_H

#include "runq.h"

/* Messages carried by a switch: the task that left | what it did. Hot
 * TCBs are 32 bytes in a cache-aligned array, so 5 low bits are free. */
enum {
    MSG_NONE = 0,
    MSG_YIELD = 1, /* a normal-band task yielded: the yield queue */
    MSG_PARK = 2,
    MSG_DEAD = 3,
    MSG_YBAND = 4,   /* a task of another band yielded: its band's queue */
    MSG_PREEMPT = 5, /* a normal-band task was preempted: the yield queue,
                        after the thread's spare signal stack is
                        installed (sigstack.c) */
    MSG_PBAND = 6    /* the same, a task of another band */
};
#define MSG_MASK ((uintptr_t)31)

/* switch.c: give task t (first run) a stack and a fresh frame; check a
 * canary-protected stack at a switch-out; the first code of every task;
 * the departures other than a yield. Owner worker. */
void weft__switch_bind(weft_worker *w, weft_tcb *t, uint32_t slot);
void weft__switch_check_canary(weft_worker *w, weft_tcb *from);
void weft__switch_entry(void *msg);
void weft__switch_finish(weft_worker *w, uintptr_t msg);

/* Complete the departure of the task that just left (switch.c's header).
 * A yield, the common case, is handled inline. */
static inline void after_switch(weft_worker *w, uintptr_t msg)
{
    if ((msg & MSG_MASK) == MSG_YIELD)
        yq_push(w, wslot_of(w, (weft_tcb *)(msg & ~MSG_MASK)));
    else if (msg)
        weft__switch_finish(w, msg);
}

#endif
