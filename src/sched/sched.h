/*
 * sched.h - the runtime's scheduler state: the runtime object, its
 * workers, and the calls the rest of the library makes into the scheduler.
 *
 * Everything here lives in the runtime's one arena mapping (mem/arena.h):
 * the runtime header, the worker array, the summary and reservation words,
 * the TCB arrays, the per-slot queue links, the stack metadata and the
 * stacks. After weft_rt_create nothing is allocated.
 */
#ifndef WEFT_SCHED_SCHED_H
#define WEFT_SCHED_SCHED_H

#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#include "../base/compiler.h"
#include "../mem/stack.h"
#include "../mem/summary.h"
#include "../queue/deque.h"
#include "../queue/inject.h"
#include "../queue/mailbox.h"
#include "task.h"
#include "timer.h"

/* Per-worker counters: written by the owner only (plain increments of
 * relaxed atomics compile to ordinary adds), read by weft_stats_get. */
typedef struct weft_wstats {
    _Atomic uint64_t spawns, finishes, reaps, switches, yields, parks;
    _Atomic uint64_t fast_yields; /* yields by the fast path: each is also
                                     a switch */
    _Atomic uint64_t steals, steal_attempts;
    _Atomic uint64_t inlined;            /* joins that ran the child inline */
    _Atomic uint64_t deflected, mail_in; /* mesh: tasks sent, received */
    /* Budgets (sched/budget.c): polls are counted by switches and
     * fast_yields; these by the worker at the end of a poll, or by the
     * monitor (preemptions are counted by the worker that preempts). */
    _Atomic uint64_t slow_polls, violations, preemptions;
    _Atomic uint64_t wakes;            /* unparks done on this worker */
    _Atomic uint64_t busy_ns, idle_ns; /* updated when the worker sleeps
                                          and wakes */
} weft_wstats;

#define WEFT_BAND_NORMAL (WEFT_PRIO_NORMAL / 4)

#define WEFT_MESH_STAGED 8 /* destinations with a half-filled chunk */

typedef struct weft_worker {
    /* Owner-only. The first line is the yield fast path's working set
     * (worker.c, weft_yield): keep it within 64 bytes. */
    weft_aligned(WEFT_CACHELINE) struct weft_rt *rt;
    weft_tcb *hot;          /* rt->hot, one dependent load closer */
    _Atomic uint32_t *link; /* rt->link, likewise */
    _Atomic uint64_t *top1; /* the summary's top word when it has only
                                  one (most configs), else NULL */
    weft_tcb *current;      /* task running now; NULL in the scheduler */
    union {
        uint64_t lifo_xbands; /* both below: the yield fast path tests
                                 them with one compare */
        struct {
            uint32_t lifo;   /* slot + 1 of the LIFO-slot task, 0 = none */
            uint32_t xbands; /* bands other than normal whose queues may
                                hold tasks (bit b: band b); 0 = the
                                single-band fast paths apply */
        };
    };
    uint32_t cur_slot;         /* its slot */
    uint32_t yq_head, yq_tail; /* yield queue through rt->link, slot + 1 */
    uint8_t lifo_runs;         /* consecutive runs taken from the LIFO slot */
    uint8_t fair_countdown;    /* decisions until the injection queue is
                                  looked at first (fairness) */

    weft_wstats st;            /* counters: owner writes, stats reads */
    _Atomic uint64_t *yroot;   /* root word over this worker's leaf */
    _Atomic uint64_t *yleaf;   /* this worker's leaf word */
    uint64_t ytop_bit;         /* its leaf's root word's bit in *top1 */
    uint64_t yroot_bit;        /* its leaf's bit in *yroot */
    uint32_t id;               /* 0..workers-1 */
    uint32_t find_cursor;      /* rotating start in the summary tree */
    uint32_t resv_hint;        /* leaf to reserve slots from first */
    uint32_t leaf;             /* the leaf this worker reserved: its yield
                                  bit, and its first choice for slots */
    int yield_published;       /* its yield bit is set (see worker.c) */
    uint32_t rng;              /* xorshift state for victim order */
    void *sched_sp;            /* the scheduler context (thread stack) */
    void *sched_fiber;         /* its TSan fiber */
    weft_stack_cache cache[2]; /* hot stacks: [0] default, [1] small */
    void *sched_stack_lo;      /* the thread stack, for ASan's fiber API */
    size_t sched_stack_size;
    pthread_t thread;
    char *altstack; /* signal stack (arena) */

    /* Mesh mode (worker.c), owner-only. */
    uint32_t *order;     /* other workers, nearest (same L3) first */
    uint32_t ngroup;     /* how many of them share this worker's L3 */
    uint32_t threshold;  /* load above which new work is deflected */
    uint32_t high_ticks; /* consecutive fairness ticks above it */
    uint32_t feed; /* tasks per chunk for a hungry neighbour (mesh_balance) */
    uint32_t fed;  /* hungry feeds since the last fairness tick */
    uint32_t nstaged; /* destinations with a staged chunk */
    uint32_t staged[WEFT_MESH_STAGED];
    _Atomic uint32_t load; /* published load level (read by producers) */

    /* Priority bands other than normal (worker.c, "bands"), owner-only;
     * the normal band is lifo, dq and the yield queue above. */
    uint32_t byq_head[WEFT_BANDS], byq_tail[WEFT_BANDS]; /* [NORMAL] unused */
    int fair_rule;                    /* copy of rt->fair_rule */
    uint32_t fair_gen;                /* rt->fair_gen it was copied at */
    uint32_t fair_weight[WEFT_BANDS]; /* copy of rt->fair_weight (>= 1) */
    int64_t deficit[WEFT_BANDS];      /* DRR: ns each band may still run */
    int band_cur;                     /* DRR: band whose turn it is, or -1 */
    uint32_t drr_next;                /* DRR: the round's position */
    int64_t turn_def0;                /* DRR: its deficit when the turn began */
    uint64_t turn_wall0, turn_cpu0;   /* DRR: clocks when the turn began */

    /* Shared line: set by wakers, slept on by the owner. */
    weft_aligned(WEFT_CACHELINE) _Atomic uint32_t sleep; /* 1: asleep or
                                                            about to be */
    _Atomic uint32_t xpub; /* xbands, published for thieves (a hint) */
    weft_deque dq;
    weft_deque bdq[WEFT_BANDS - 1]; /* bands 0, 1, 3 (worker.c, xdq) */

    /* Timers of tasks waiting with a deadline (timer.h): armed and fired
     * by the owner, cancelled by anyone, on a line of their own. */
    weft_aligned(WEFT_CACHELINE) weft_theap timers;

    /* Mesh mode: which sources have published chunks for this worker.
     * Producers set bits, the owner exchanges them to 0. */
    weft_aligned(WEFT_CACHELINE) _Atomic uint64_t inbox_top;
    _Atomic uint64_t inbox[16]; /* bit s%64 of word s/64: source s */
} weft_worker;

_Static_assert(offsetof(weft_worker, st) <= WEFT_CACHELINE,
               "the yield fast path's fields must share one cache line");

/* A waiter record, on the waiting side's own stack: a task (parks) or a
 * plain thread (futex). At least 8-byte aligned: it travels through tagged
 * words. */
typedef struct weft_waiter {
    struct weft_rt *rt;
    weft_tcb *task;         /* NULL for a plain thread */
    uint32_t slot;          /* the task's slot */
    _Atomic uint32_t futex; /* plain thread: 0 waiting, 1 woken */
} weft_waiter;

struct weft_rt {
    /* Read-mostly: set at creation (the flags once, at the end). */
    weft_config cfg;
    uint32_t id;    /* registry id, 1..255 */
    uint32_t epoch; /* added to generations in handles (rt.c) */
    uint32_t nworkers;
    weft_worker *workers;
    weft_summary sum;
    weft_tcb *hot;          /* [max_tasks] */
    weft_tcb_cold *cold;    /* [max_tasks] */
    _Atomic uint32_t *link; /* [max_tasks] queue links */
    void *arena;
    size_t arena_size;
    int huge_pages; /* WEFT_HUGE_*: how the metadata is backed (arena.c) */
    _Atomic int stopping; /* weft_rt_destroy: workers exit; read on every
                             scheduling decision off the yield fast path */
    _Atomic int shutdown; /* weft_rt_shutdown: no new spawns */
    int mesh;             /* cfg.balance == WEFT_BALANCE_MESH */
    weft_mbox *mbox;      /* mesh: [dst * nworkers + src] */

    /* Written by whoever uses them; each block on its own lines. */
    weft_aligned(WEFT_CACHELINE) weft_stack_pool pool[2]; /* [0] default,
                                                     [1] small class */
    weft_aligned(WEFT_CACHELINE) weft_inject inject;
    weft_aligned(WEFT_CACHELINE) _Atomic uint32_t idle; /* workers asleep */
    _Atomic uint32_t searching; /* workers spinning for work (worker.c) */
    weft_aligned(WEFT_CACHELINE) _Atomic uint64_t ext_spawns; /* by plain
                                                                 threads */
    _Atomic uint64_t ext_reaps; /* reaps by plain threads */
    _Atomic uint32_t ext_hint;  /* reservation hint for plain threads */
    /* Mesh mode: idle workers that want work (bit i%64 of word i/64). */
    weft_aligned(WEFT_CACHELINE) _Atomic uint64_t hungry[16];

    /* Fairness between priority bands (weft_policy.fairness and
     * band_weight), set by weft__sched_set_fairness; workers copy it on
     * their fairness tick when fair_gen has changed. Read-mostly. */
    weft_aligned(WEFT_CACHELINE) _Atomic uint32_t fair_gen;
    _Atomic int fair_rule;                    /* WEFT_FAIR_* */
    _Atomic uint32_t fair_weight[WEFT_BANDS]; /* DRR shares, tickets */
};

/* Make (rule, weight) the fairness rule between bands. Not called
 * concurrently with itself (weft_policy_set serialises). Any thread. */
void weft__sched_set_fairness(struct weft_rt *rt, int rule,
                              const uint32_t weight[WEFT_BANDS]);

/* The worker the calling thread is, or NULL. Never inlined, and re-read
 * after any call that can switch: a task may resume on another worker
 * (DESIGN.md §9, thread-local storage and migration). Any thread. */
weft_worker *weft__worker_self(void);

/* Registry: runtime by id, for handles. Any thread. */
struct weft_rt *weft__rt_by_id(uint32_t id);

/* Run the scheduler loop of worker w on the calling thread until the
 * runtime stops. Worker thread only. */
void weft__worker_loop(weft_worker *w);

/* Make a RUNNABLE task (new or unparked) runnable somewhere: the calling
 * worker's LIFO slot when called on a worker of rt, else its signal bit
 * plus a wake-up. Any thread. */
void weft__sched_ready(struct weft_rt *rt, uint32_t slot);

/* weft__sched_ready for a task of w's own runtime, called on w: into the
 * LIFO slot (the previous occupant moves to the deque). Owner worker. */
void weft__sched_ready_local(weft_worker *w, uint32_t slot);

/* Run task `slot` inline, on the calling task's stack, if it has never
 * run, wants the same stack class, and is still this worker's to give:
 * in its LIFO slot or at the bottom of its deque. It runs with its own
 * identity (weft_self, its TLS, its blocking: if it parks, the caller's
 * frames park with it). Returns 1 once it has returned (result stored,
 * finish counted; the caller reaps it), 0 if it could not be taken. The
 * caller holds JOINED on it. Task only. */
int weft__sched_run_inline(weft_worker *w, uint32_t slot);

/* Park the calling task until weft__task_unpark; may return spuriously
 * (callers loop on their condition). Task only; switches. */
void weft__task_park(void);

/* Wake a parked task; idempotent, harmless on a running or finished one.
 * gen is the generation as its handle shows it (weft__handle_gen). Any
 * thread. */
void weft__task_unpark(struct weft_rt *rt, uint32_t slot, uint32_t gen);

/* As weft__task_unpark, but never touches the calling worker's own queues
 * (the task is signalled through the summary tree): safe in a signal
 * handler. Any thread. */
void weft__task_unpark_remote(struct weft_rt *rt, uint32_t slot, uint32_t gen);

/* The generation a handle to task `slot` shows now. Any thread. */
uint32_t weft__task_hgen(struct weft_rt *rt, uint32_t slot);

/* Block the caller until weft__waiter_wake(w) (task: parks; thread:
 * futex). Any thread. */
void weft__waiter_wait(weft_waiter *w);

/* Wake w's owner. After this call w may already be gone: it copies what
 * it needs first. Any thread. */
void weft__waiter_wake(weft_waiter *w);

/* Mesh mode: each worker's neighbour order from the L3 group of every
 * worker (group_of[i]; NULL: all in one group). Nearest first: same group,
 * then the others; each list starts after the worker itself, so workers
 * spread their deflections. Creator (and white-box tests) only, before
 * tasks run. */
void weft__mesh_set_groups(struct weft_rt *rt, const uint32_t *group_of);

#define WEFT_MESH_THRESHOLD 64 /* initial deflection threshold (tasks) */

/* Wake one sleeping worker if any. Any thread. */
void weft__wake_one(struct weft_rt *rt);

/* Bytes at the top of every stack kept for task-local values. */
#define WEFT_TLS_BYTES (WEFT_TLS_KEYS * sizeof(void *))
/* Per-worker alternate signal stack (stack-overflow reports). */
#define WEFT_ALTSTACK ((size_t)64 * 1024)

/* Finish the calling task's own work: TLS destructors, then store
 * `result`. Task only. */
void weft__task_exit(void *result);

/* Switch away from the finished calling task for good. Task only. */
weft_noreturn void weft__task_switch_dead(void);

/* Complete the end of task `t` after its stack was left: release the
 * stack, publish DONE (or reap if detached), wake the joiner. Runs in
 * after_switch on worker w. */
void weft__task_finish(weft_worker *w, weft_tcb *t, uint32_t slot);

/* The second half of weft__task_finish, for a task whose stack was handed
 * to its successor instead of released: publish DONE (or reap), wake the
 * joiner. Owner worker; t must never run again. */
void weft__task_publish_end(weft_worker *w, weft_tcb *t, uint32_t slot);

#endif
