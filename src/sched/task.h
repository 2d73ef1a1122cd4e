/*
 * task.h - the task control block and its packed state word.
 *
 * A TCB is split hot/cold (DESIGN.md §3). The hot part, 32 bytes, is what
 * every switch touches; the cold part is what spawn, join and dumps touch.
 * Both live in arena arrays indexed by slot.
 *
 * State word (64 bits, one CAS per change):
 *
 *     bits 0-2   state        (enum below)
 *     bit  3     WAKE         an unpark arrived while the task was not
 *                             parked; its next park returns at once
 *     bit  4     DETACHED     reaped when it ends
 *     bit  5     JOINED       a joiner has claimed it
 *     bit  6     SMALL        runs on a small-class stack
 *     bit  7     PREEMPTIBLE  (recorded for the preemption issue)
 *     bits 8-11  priority     0..15
 *     bit  12    CANARY       default-class stack with a canary (the
 *                             guard budget ran out); checked on switch-out
 *     bits 13-39 unused
 *     bits 40-63 generation   of the slot, +1 each time it is freed
 *
 * States, who owns the task (and its stack) in each, and what may follow:
 *
 *     FREE      nobody; the slot is not reserved      -> RUNNABLE (spawn)
 *     RUNNABLE  the scheduler: queued, or running on  -> PARKED (its own
 *               exactly one worker                       switch-out only),
 *                                                        DONE
 *     PARKED    whoever will unpark it; stack holds   -> RUNNABLE (unpark)
 *               its saved context
 *     DONE      its joiner (or, detached, the worker  -> FREE (reap)
 *               that finished it); its stack is freed
 *
 * "Queued" and "running" share one state on purpose: a yield or a queue
 * move then needs no atomic operation at all; only park, unpark, finish
 * and reap change the word. A task is published as PARKED or DONE only
 * after its stack has been left (sched/switch.h, after_switch), so no
 * worker can resume a context that is still live elsewhere.
 */
#ifndef WEFT_SCHED_TASK_H
#define WEFT_SCHED_TASK_H

#include <stdatomic.h>
#include <stdint.h>

#include "../base/compiler.h"
#include "weft.h"

enum {
    WEFT_TS_FREE = 0,
    WEFT_TS_RUNNABLE = 1,
    WEFT_TS_PARKED = 2,
    WEFT_TS_DONE = 3,
};

/* cold.joiner once the finisher took it (task.c, "The joiner slot"). */
#define WEFT_JOINER_DONE ((uintptr_t)1)
#define WEFT_TS_MASK UINT64_C(7)
#define WEFT_TS_WAKE (UINT64_C(1) << 3)
#define WEFT_TS_DETACHED (UINT64_C(1) << 4)
#define WEFT_TS_JOINED (UINT64_C(1) << 5)
#define WEFT_TS_SMALL (UINT64_C(1) << 6)
#define WEFT_TS_PREEMPTIBLE (UINT64_C(1) << 7)
#define WEFT_TS_CANARY (UINT64_C(1) << 12)
#define WEFT_TS_PRIO_SHIFT 8
#define WEFT_TS_GEN_SHIFT 40
#define WEFT_TS_GEN_MASK (~UINT64_C(0) << WEFT_TS_GEN_SHIFT)
#define WEFT_TS_GEN_ONE (UINT64_C(1) << WEFT_TS_GEN_SHIFT)

static inline unsigned weft_ts_state(uint64_t s)
{
    return (unsigned)(s & WEFT_TS_MASK);
}
static inline uint32_t weft_ts_gen(uint64_t s)
{
    return (uint32_t)(s >> WEFT_TS_GEN_SHIFT);
}

/* Hot part: the switch path's working set. */
typedef struct weft_tcb {
    void *sp;   /* saved stack pointer; NULL before first run.
                                Written by the worker running the task */
    weft_fn fn; /* entry; set at spawn, cleared once it has started
                   (weft__task_started): NULL tells readers that the
                   word below holds polls. Atomic accesses only */
    union {
        void *arg;              /* its argument, until it first runs */
        _Atomic uint64_t polls; /* from then on: its polls (runs between
                                   two switches), counted by the worker
                                   running it at each switch-out; read
                                   racily by weft_task_info */
    };
    _Atomic uint64_t state; /* the word above; any thread, by CAS */
} weft_tcb;

_Static_assert(sizeof(weft_tcb) <= 32, "hot TCB must fit 32 bytes");

/* The task t has read its entry and argument and starts with `polls`
 * polls: the word is a poll count from now on. The clear of fn comes
 * after the count's store (release), so a reader that sees fn NULL
 * (acquire, weft__task_polls) never reads the argument as a count. Its
 * starter only. */
static inline void weft__task_started(weft_tcb *t, uint64_t polls)
{
    atomic_store_explicit(&t->polls, polls, memory_order_relaxed);
    __atomic_store_n(&t->fn, (weft_fn)0, __ATOMIC_RELEASE); /* pairs with
                                                      weft__task_polls */
}

/* t's polls, 0 before it starts. Any thread (racy: the caller checks the
 * generation afterwards). */
static inline uint64_t weft__task_polls(weft_tcb *t)
{
    /* Acquire: pairs with weft__task_started's release. */
    if (__atomic_load_n(&t->fn, __ATOMIC_ACQUIRE))
        return 0;
    return atomic_load_explicit(&t->polls, memory_order_relaxed);
}

/* Cold part. */
typedef struct weft_tcb_cold {
    void *result;              /* return value; written before DONE */
    _Atomic uintptr_t joiner;  /* tagged: 0, a waiter, or
                                  WEFT_JOINER_DONE */
    uint32_t stack;            /* bound stack index + 1; 0 = none. Owner:
                                 the worker running the task */
    _Atomic uint8_t wait_kind; /* WEFT_WK_*: where it waits (below); also
                                  the in-wait flag of sched/cancel.c */
    uint8_t pad_;
    uint16_t nopreempt; /* weft_preempt_disable depth; the task itself
                           writes, its worker's SIGURG handler reads
                           (same thread) */
    void **tls;         /* task-local values (on its stack) or NULL */
    void **tls_area;    /* where they go when first set, if not at the top
                        of its own stack (a task run inline by its joiner
                        has no stack of its own); NULL otherwise */
    union {
        char name[16]; /* for errors and dumps; NUL-terminated. Written
                          by the spawner and read by the monitor and
                          dumps: through name_w, as relaxed atomic words
                          (weft__name_set/get), so that a stale read of a
                          reused slot is no data race */
        uint64_t name_w[2];
    };
    /* Accounting (sched/worker.c, sysmon.c); read racily by
     * weft_task_info. */
    _Atomic uint64_t cpu_ns; /* CPU time of its polls: the worker running
                                it adds the ticks each poll spans */
    /* Where it waits (wait_kind above, WEFT_WK_* below), written by the
     * task itself with relaxed stores, read racily by weft_task_info and
     * weft_dump. */
    const void *_Atomic wait_obj; /* its object, or NULL */
#ifdef WEFT_TSAN
    void *san_fiber; /* its TSan fiber */
#endif
} weft_tcb_cold;

/* Every task costs its cold part in resident memory while it lives
 * (bench memory): 72 bytes outside TSan builds (56 before budgets and
 * wait records), and its tier slot 24 more. */
#ifndef WEFT_TSAN
_Static_assert(sizeof(weft_tcb_cold) <= 72, "cold TCB grew");
#endif

/*
 * Where a task waits (cold.wait_kind). Each blocking primitive records its
 * kind and object before it links a wait record anywhere, and clears the
 * kind once nothing of the wait is linked (sync/wait.c, weft_join; a
 * joiner also while its child runs inline on its stack, sched/task.c,
 * as JOIN_INLINE). So the kind is also the task's in-wait flag, which
 * shutdown and destroy read (sched/cancel.c: entering is a Dekker store
 * against the shutdown word). The task writes them itself (relaxed
 * atomics, for the racy readers weft_task_info and weft_dump; the clear
 * is a release for the destroyer). A reader may see the kind of one wait
 * with the object of the next: both are hints. A PARKED task with
 * WEFT_WK_NONE parked without saying why ("park").
 */
enum {
    WEFT_WK_NONE = 0,
    WEFT_WK_MUTEX,
    WEFT_WK_COND,
    WEFT_WK_SEM,
    WEFT_WK_WG,
    WEFT_WK_EVENT,
    WEFT_WK_CHAN_SEND,
    WEFT_WK_CHAN_RECV,
    WEFT_WK_SELECT,
    WEFT_WK_SLEEP,
    WEFT_WK_JOIN,
    WEFT_WK_PARK,
    WEFT_WK_FD_READ, /* a descriptor (io/fd.c); obj: fd + 1 */
    WEFT_WK_FD_WRITE,
    WEFT_WK_FD_RW,       /* either direction (weft_fd_wait with both) */
    WEFT_WK_BLOCKING,    /* weft_block_on (io/blocking.c); obj: the function */
    WEFT_WK_JOIN_INLINE, /* running the joined child on its own stack:
                            shown as "join", but nothing is linked */
    WEFT_WK_COUNT
};

/* Does a task whose wait kind is k have a wait record linked somewhere,
 * or about to (sched/cancel.c)? */
static inline int weft__wk_links(unsigned k)
{
    return k != WEFT_WK_NONE && k != WEFT_WK_JOIN_INLINE;
}

/* Record (kind, obj) as what the task of cold part c waits on; (NONE,
 * NULL) clears it. The task itself only. */
static inline void weft__cold_wait_set(weft_tcb_cold *c, unsigned kind,
                                       const void *obj)
{
    atomic_store_explicit(&c->wait_obj, obj, memory_order_relaxed);
    atomic_store_explicit(&c->wait_kind, (uint8_t)kind, memory_order_relaxed);
}

/* A task's tier state and violations, in an array of their own beside the
 * cold TCBs (rt->tiers): only the monitor writes them, and spawn never
 * touches them, since they are tagged with the task's generation. */
typedef struct weft_tier_slot {
    _Atomic uint64_t w[2];       /* its weft_tier_state (sched/policy.h) */
    _Atomic uint32_t gen;        /* the task's generation + 1: valid */
    _Atomic uint32_t violations; /* its polls over budget */
} weft_tier_slot;

/* Set / copy out a task's name (see weft_tcb_cold.name). Any thread. */
static inline void weft__name_set(weft_tcb_cold *c, const char *name)
{
    union {
        char b[16];
        uint64_t w[2];
    } u = {{0}};
    for (int i = 0; name && name[i] && i < 15; i++)
        u.b[i] = name[i];
    __atomic_store_n(&c->name_w[0], u.w[0], __ATOMIC_RELAXED);
    __atomic_store_n(&c->name_w[1], u.w[1], __ATOMIC_RELAXED);
}
static inline void weft__name_get(const weft_tcb_cold *c, char out[16])
{
    union {
        char b[16];
        uint64_t w[2];
    } u;
    u.w[0] = __atomic_load_n(&c->name_w[0], __ATOMIC_RELAXED);
    u.w[1] = __atomic_load_n(&c->name_w[1], __ATOMIC_RELAXED);
    for (int i = 0; i < 16; i++)
        out[i] = u.b[i];
    out[15] = '\0';
}

/* The TSan fiber of the stack a task runs on; nothing in other builds. */
static inline void *weft__cold_fiber(const weft_tcb_cold *c)
{
#ifdef WEFT_TSAN
    return c->san_fiber;
#else
    (void)c;
    return NULL;
#endif
}
static inline void weft__cold_set_fiber(weft_tcb_cold *c, void *f)
{
#ifdef WEFT_TSAN
    c->san_fiber = f;
#else
    (void)c;
    (void)f;
#endif
}

/* A handle packs: bits 0-31 slot, 32-55 generation (24 bits), 56-63
 * runtime id (1..255) from the process's runtime registry. */
static inline weft_task weft__handle(uint32_t rtid, uint32_t slot, uint32_t gen)
{
    weft_task t = {(uint64_t)rtid << 56 | (uint64_t)(gen & 0xffffff) << 32 |
                   slot};
    return t;
}
static inline uint32_t weft__handle_rt(weft_task t)
{
    return (uint32_t)(t.id >> 56);
}
static inline uint32_t weft__handle_slot(weft_task t)
{
    return (uint32_t)t.id;
}
static inline uint32_t weft__handle_gen(weft_task t)
{
    return (uint32_t)(t.id >> 32) & 0xffffff;
}

#endif
