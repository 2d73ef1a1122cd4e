/*
 * task.h - the task control block and its packed state word.
 *
 * A TCB is split hot/cold (DESIGN.md §3). The hot part, 32 bytes, is what
 * every switch touches; the cold part is what spawn, join and dumps touch.
 * Both live in arena arrays indexed by slot.
 *
 * What a parked task costs. Every live task makes its entries of the
 * arrays its spawn writes resident: hot (32), cold (40), its queue link
 * (4) and its stack's flags and owner (5). A task's optional data lives
 * elsewhere and costs only the tasks that use it: a name in the names
 * array (flagged by the NAMED bit, so spawn of an unnamed task never
 * touches it), task-local values at the top of its own stack (tls.c),
 * tier state in the monitor's array, tagged with the generation. The
 * arrays that every task touches are laid out next to each other, apart
 * from those it may not (rt/rt.c), since the metadata sits on huge pages:
 * an array between two touched ones costs its huge pages too
 * (docs/decisions/0016-memory-per-task.md).
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
 *     bit  13    NAMED        spawned with a name: it is in the slot's
 *                             entry of the names array (weft_task_name);
 *                             without it the name is empty
 *     bits 14-39 unused
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
#define WEFT_TS_NAMED (UINT64_C(1) << 13)
/* A claimed fork record's task (sched/fork.c): detached, its result is
 * the record, which it signals once its slot is reaped. */
#define WEFT_TS_FORK (UINT64_C(1) << 14)
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
    /* One word for what the task needs while it runs and what its
     * joiner needs once it has ended: its TLS destructors have run
     * (weft__tls_finish) before the result is stored, and nothing reads
     * tls after that. Spawn clears both. */
    union {
        void **tls;   /* task-local values: NULL (none set), the values'
                         array (at the top of its own stack), or, tagged
                         with bit 0, where they go when first set for a
                         task run inline by its joiner (no stack of its
                         own; tls.c). The task itself only */
        void *result; /* its return value; written before DONE */
    };
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

/* cold.tls for a task whose values, once set, go to `area` (a task run
 * inline on its joiner's stack). Its starter. */
static inline void **weft__tls_area(void **area)
{
    return (void **)((uintptr_t)area | 1);
}

/* The task's values' array, or NULL while none has been set. The task
 * itself. */
static inline void **weft__tls_values(const weft_tcb_cold *c)
{
    uintptr_t v = (uintptr_t)c->tls;
    return (v & 1) ? NULL : (void **)v;
}

/* Every task costs its cold part in resident memory while it lives (see
 * "What a parked task costs" above); its tier slot only once the monitor
 * tracks it. */
#ifndef WEFT_TSAN
_Static_assert(sizeof(weft_tcb_cold) <= 40, "cold TCB grew");
#endif

/* A task's name (for errors, dumps and traces; NUL-terminated, at most 15
 * characters) in the names array, indexed by slot. Written by the spawner
 * of a named task only (NAMED in its state word) before the task is
 * handed over; read by the monitor, dumps, traces and the overflow
 * reporter as relaxed atomic words, so that a stale read of a reused slot
 * is no data race. */
typedef struct weft_task_name {
    uint64_t w[2];
} weft_task_name;

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
    WEFT_WK_FORK,        /* weft_fork_join waiting for its second half,
                            which another worker took (sched/fork.c):
                            shown as "join"; nothing cancellable is
                            linked */
    WEFT_WK_COUNT
};

/* Does a task whose wait kind is k have a wait record linked somewhere,
 * or about to (sched/cancel.c)? */
static inline int weft__wk_links(unsigned k)
{
    return k != WEFT_WK_NONE && k != WEFT_WK_JOIN_INLINE && k != WEFT_WK_FORK;
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

/* Set n to name (NULL: empty); returns WEFT_TS_NAMED when the name is
 * not empty, for the state word, else 0 and n is not touched. The
 * spawner. */
static inline uint64_t weft__name_set(weft_task_name *n, const char *name)
{
    if (!name || !name[0])
        return 0;
    union {
        char b[16];
        uint64_t w[2];
    } u = {{0}};
    for (int i = 0; name[i] && i < 15; i++)
        u.b[i] = name[i];
    __atomic_store_n(&n->w[0], u.w[0], __ATOMIC_RELAXED);
    __atomic_store_n(&n->w[1], u.w[1], __ATOMIC_RELAXED);
    return WEFT_TS_NAMED;
}

/* The name's two words for state word s (zeros without NAMED). Any
 * thread, racily: the caller checks the generation if it must. Signal
 * safe. */
static inline void weft__name_words(const weft_task_name *n, uint64_t s,
                                    uint64_t w[2])
{
    w[0] = w[1] = 0;
    if (s & WEFT_TS_NAMED) {
        w[0] = __atomic_load_n(&n->w[0], __ATOMIC_RELAXED);
        w[1] = __atomic_load_n(&n->w[1], __ATOMIC_RELAXED);
    }
}

/* Copy out the name for state word s, NUL-terminated. As above. */
static inline void weft__name_get(const weft_task_name *n, uint64_t s,
                                  char out[16])
{
    union {
        char b[16];
        uint64_t w[2];
    } u;
    weft__name_words(n, s, u.w);
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
