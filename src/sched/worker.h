/*
 * worker.h - the worker: its per-worker state (weft_worker, split by
 * concern into sub-structs) and the calls that make tasks ready on it.
 * The code is in worker.c and the files it names.
 */
#ifndef WEFT_SCHED_WORKER_H
#define WEFT_SCHED_WORKER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/compiler.h"
#include "../mem/stack.h"
#include "../queue/deque.h"
#include "poller.h"
#include "task.h"
#include "trace.h"
#include "timer.h"

struct weft_rt;

/* Per-worker counters: written by the owner only (plain increments of
 * relaxed atomics compile to ordinary adds), read by weft_stats_get. */
typedef struct weft_wstats {
    _Atomic uint64_t spawns, finishes, reaps, switches, yields, parks;
    _Atomic uint64_t fast_yields; /* yields by the fast path: each is also
                                     a switch */
    _Atomic uint64_t steals, steal_attempts;
    _Atomic uint64_t inlined;             /* joins that ran the child inline */
    _Atomic uint64_t forks, forks_stolen; /* weft_fork_join (fork.c) */
    _Atomic uint64_t deflected, mail_in;  /* mesh: tasks sent, received */
    /* Budgets (sysmon.c, worker.c): polls are counted by switches and
     * fast_yields; these by the worker at the end of a poll, or by the
     * monitor (preemptions are counted by the worker that preempts). */
    _Atomic uint64_t slow_polls, violations, preemptions;
    _Atomic uint64_t preempt_refused;  /* requests the handler turned down
                                         (unsafe PC, disabled section):
                                         not in weft_stats, for tests */
    _Atomic uint64_t wakes;            /* unparks done on this worker that
                                          made a PARKED task runnable */
    _Atomic uint64_t busy_ns, idle_ns; /* idle_ns: time asleep, added when
                                          the worker wakes (idle.c);
                                          busy_ns is not written:
                                          obs/stats.c derives busy time
                                          from start_ns and idle_ns */
    _Atomic uint64_t uring_ops;        /* operations its io_uring made */
    _Atomic uint64_t kept_yields;      /* yields that found nothing else to run:
                                     each ends a poll (worker.c); not in
                                     weft_stats (they are no switch) */
} weft_wstats;

#define WEFT_BAND_NORMAL (WEFT_PRIO_NORMAL / 4)

#define WEFT_MESH_STAGED 8 /* destinations with a half-filled chunk */

/* An intrusive FIFO of task slots linked through rt->link (runq.h):
 * slot + 1 of its first and last task, 0 when empty. Owner-only. */
typedef struct weft_slotq {
    uint32_t head, tail;
} weft_slotq;

/* The thread a worker runs on, as the worker sees it: the scheduler
 * context (the thread's own stack). Its signal stack is the thread's
 * (weft_thr, sigstack.c). An isolation identity takes its worker's whole
 * (isolate.c). Owner-only. */
typedef struct weft_wctx {
    void *sched_sp;    /* the scheduler context (thread stack) */
    void *sched_fiber; /* its TSan fiber */
    void *stack_lo;    /* the thread stack, for ASan's fiber API */
    size_t stack_size;
} weft_wctx;

/* A worker's view of its runtime, the first three words of its first
 * line; and who it is. An isolation identity takes both whole from the
 * worker it is split from (isolate.c), as it takes its thread context.
 * The worker keeps them as anonymous members too (w->rt, w->id), so the
 * hot paths read them as before. */
typedef struct weft_wview {
    struct weft_rt *rt;
    weft_tcb *hot;
    _Atomic uint32_t *link;
} weft_wview;

typedef struct weft_wident {
    uint32_t id, resv_hint, leaf, rng;
} weft_wident;

/* Mesh mode's state on one worker (mesh.c). Owner-only, except `load`,
 * which producers read. */
typedef struct weft_wmesh {
    uint32_t threshold;  /* load above which new work is deflected */
    uint32_t high_ticks; /* consecutive fairness ticks above it */
    uint32_t feed;       /* tasks per chunk for a hungry neighbour */
    uint32_t fed;        /* hungry feeds since the last fairness tick */
    uint32_t gate;       /* pushes above the threshold to let pass before
                            the next look for a target */
    uint32_t nstaged;    /* destinations with a staged chunk */
    uint32_t staged[WEFT_MESH_STAGED];
    _Atomic uint32_t load; /* published load level (read by producers) */
} weft_wmesh;

/* Fairness between bands on one worker (bands.c): the rule as last
 * copied from the runtime, and the deficit-round-robin round.
 * Owner-only. */
typedef struct weft_wfair {
    int rule;                       /* copy of rt->fair_rule */
    uint32_t gen;                   /* rt->fair_gen it was copied at */
    uint32_t weight[WEFT_BANDS];    /* copy of rt->fair_weight (>= 1) */
    int64_t deficit[WEFT_BANDS];    /* DRR: ns each band may still run */
    int band_cur;                   /* DRR: band whose turn it is, or -1 */
    uint32_t drr_next;              /* DRR: the round's position */
    int64_t turn_def0;              /* DRR: its deficit when the turn began */
    uint64_t turn_wall0, turn_cpu0; /* DRR: clocks when the turn began */
} weft_wfair;

typedef struct weft_worker {
    /* Owner-only. The first line is the yield fast path's working set
     * (worker.c, weft_yield): keep it within 64 bytes. */
    weft_aligned(WEFT_CACHELINE) union {
        weft_wview view; /* the three below as one, for isolation's copy */
        struct {
            struct weft_rt *rt;
            weft_tcb *hot;          /* rt->hot, one dependent load closer */
            _Atomic uint32_t *link; /* rt->link, likewise */
        };
    };
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
    uint32_t cur_slot;      /* its slot */
    weft_slotq yq;          /* yield queue (runq.h) */
    uint8_t lifo_runs;      /* consecutive runs taken from the LIFO slot */
    uint8_t fair_countdown; /* decisions until the injection queue is
                                  looked at first (fairness) */

    /* Second line: `running` and the switch counters, both written on
     * every switch. */
    _Atomic uint32_t running; /* slot + 1 of the task on this worker, 0
                                  in the scheduler: the owner's relaxed
                                  store beside `current`, read racily by
                                  weft_task_info and weft_dump */
    _Atomic uint32_t tracing; /* 1 while `trace` below is set: the one
                                 test the switch path makes (in the
                                 padding before st) */
    weft_wstats st;           /* counters: owner writes, stats reads */
    /* Budgets and preemption (sysmon.c, preempt.c). A poll is one run of
     * a task between two switches; the poll sequence number is
     * st.switches + st.fast_yields. */
    uint64_t poll_t0;              /* coarse_ns when the running poll
                                     began; owner */
    _Atomic uint64_t coarse_ns;    /* the monitor's clock, stored every
                                     tick (sysmon.c), read at every
                                     switch */
    _Atomic uint64_t yield_req;    /* poll sequence number + 1 of a poll
                                   the monitor asked to yield at its
                                   next cooperative point (a refused
                                   preemption, the Yield tier); 0 none.
                                   The monitor or the handler stores */
    _Atomic uint64_t preempt_none; /* poll sequence number + 1 of a poll
                                      whose preemption found nothing
                                      else to run; the handler stores,
                                      the monitor reads (relaxed) */
    _Atomic uint64_t iso_req;      /* poll sequence number + 1 of the poll the
                                 monitor asks to isolate; as preempt_req */
    _Atomic uint32_t orphaned;     /* 1: its thread kept an isolated task and
                                 left it; the monitor gives it another
                                 (isolate.c). Release/acquire pair */
    _Atomic uint32_t thr;          /* index in rt->thr of the thread running
                                 it, stored by that thread */
    struct weft_worker *iso_of;    /* an isolation identity (isolate.c): the
                                   worker it was split from; NULL for a
                                   real worker. Owner */
    _Atomic uint32_t iso_busy;     /* isolation identity in use */
    _Atomic uint64_t preempt_req;  /* poll sequence number + 1 of the poll
                                     the monitor asks to preempt; 0 none.
                                     The monitor stores (release), the
                                     SIGURG handler on the owner takes */
    _Atomic uint64_t *yroot;       /* root word over this worker's leaf */
    _Atomic uint64_t *yleaf;       /* this worker's leaf word */
    uint64_t ytop_bit;             /* its leaf's root word's bit in *top1 */
    uint64_t yroot_bit;            /* its leaf's bit in *yroot */
    union {
        weft_wident ident; /* the four below as one, for isolation */
        struct {
            uint32_t id;        /* 0..workers-1 */
            uint32_t resv_hint; /* leaf to reserve slots from first */
            uint32_t leaf;      /* the leaf this worker reserved: its
                                   yield bit, and its first choice for
                                   slots */
            uint32_t rng;       /* xorshift state for victim order */
        };
    };
    /* The slot cache (slots.c): slots this worker reserved in the map
     * and has not handed out, bits sc_bits of leaf sc_leaf. The owner
     * uses them between weft__slot_enter and weft__slot_leave (sc_busy
     * set); a reclaimer empties sc_bits when sc_busy is clear. */
    _Atomic uint64_t sc_bits;
    _Atomic uint32_t sc_leaf;
    _Atomic uint8_t sc_busy;
    uint32_t find_cursor;      /* rotating start in the summary tree */
    int yield_published;       /* its yield bit is set (steal.c) */
    weft_wctx ctx;             /* the thread it runs on */
    weft_stack_cache cache[2]; /* hot stacks: [0] default, [1] small */
    uint64_t start_ns; /* when it was started; set before its thread is */
    _Atomic uint64_t sleep_since; /* owner: when it went to sleep, 0 while
                                     awake (read by obs/stats.c) */
    /* The execution trace's ring of this worker (sched/trace.h), NULL
     * while not tracing. */
    weft_tring *_Atomic trace;

    /* Neighbours (mesh.c, weft__mesh_set_groups), owner-only. */
    uint32_t *order; /* other workers, nearest (same L3) first */
    uint32_t ngroup; /* how many of them share this worker's L3 */
    weft_wmesh mesh; /* mesh mode's state */

    /* Priority bands other than normal (bands.c), owner-only;
     * the normal band is lifo, dq and the yield queue above. */
    weft_slotq byq[WEFT_BANDS]; /* yield queues; [NORMAL] unused */
    weft_wfair fair;            /* the rule between bands, the DRR round */
    weft_poll_events pollev;    /* the fairness tick's poll (poller.h) */
    uint8_t wake_fifo; /* 1 while it hands out readiness or completions:
                          the tasks they displace from the LIFO slot go
                          to the FIFO yield queue (worker.c) */
    void *uring;       /* its io_uring (uring.c), made at first use; NULL none
                    yet, (void *)1 cannot be made. Owner only */
    void *uring_old;   /* an isolation identity's: the ring of the worker it
                          took the task from, freed at its retire
                          (uring.c, weft__uring_isolate) */

    /* Shared line: set by wakers, slept on by the owner. */
    weft_aligned(WEFT_CACHELINE) _Atomic uint32_t sleep; /* 1: asleep or
                                                            about to be */
    _Atomic uint32_t in_poll; /* 1: asleep in the poller, not the futex
                                 (poller.c); stored before sleep */
    _Atomic uint32_t xpub;    /* xbands, published for thieves (a hint) */
    weft_deque dq;
    weft_deque bdq[WEFT_BANDS - 1]; /* bands 0, 1, 3 (runq.h, xdq) */

    /* Timers of tasks waiting with a deadline (timer.h): armed and fired
     * by the owner, cancelled by anyone, on a line of their own. */
    weft_aligned(WEFT_CACHELINE) weft_theap timers;

    /* Mesh mode: which sources have published chunks for this worker.
     * Producers set bits, the owner exchanges them to 0. */
    weft_aligned(WEFT_CACHELINE) _Atomic uint64_t inbox_top;
    _Atomic uint64_t inbox[16]; /* bit s%64 of word s/64: source s */
} weft_worker;

_Static_assert(offsetof(weft_worker, running) <= WEFT_CACHELINE,
               "the yield fast path's fields must share one cache line");
_Static_assert(offsetof(weft_worker, st) + offsetof(weft_wstats, fast_yields) +
                       8 <=
                   2 * WEFT_CACHELINE,
               "running and the switch counters must share the second line");

/* The poll sequence number of w: moves at every switch into a task, and
 * at every yield that found nothing else to run. Any thread (relaxed). */
static inline uint64_t weft__poll_seq(weft_worker *w)
{
    return atomic_load_explicit(&w->st.switches, memory_order_relaxed) +
           atomic_load_explicit(&w->st.fast_yields, memory_order_relaxed) +
           atomic_load_explicit(&w->st.kept_yields, memory_order_relaxed);
}

/* The worker the calling thread is, or NULL. Never inlined, and re-read
 * after any call that can switch: a task may resume on another worker
 * (DESIGN.md §9, thread-local storage and migration). Any thread. */
weft_worker *weft__worker_self(void);

/* Run the scheduler loop of worker w on the calling thread until the
 * runtime stops (returns 0), or until the thread, having kept an isolated
 * task, is done with it (returns 1: the thread may serve another worker).
 * Worker thread only. */
int weft__worker_loop(weft_worker *w);

/* Make a RUNNABLE task (new or unparked) runnable somewhere: the calling
 * worker's LIFO slot when called on a worker of rt, else its signal bit
 * plus a wake-up. Any thread. */
void weft__sched_ready(struct weft_rt *rt, uint32_t slot);

/* weft__sched_ready for a task of w's own runtime, called on w: into the
 * LIFO slot (the previous occupant moves to the deque). Owner worker. */
void weft__sched_ready_local(weft_worker *w, uint32_t slot);

/* Wake one sleeping worker if any (idle.c). Any thread. */
void weft__wake_one(struct weft_rt *rt);

/* Make (rule, weight) the fairness rule between bands. Not called
 * concurrently with itself (weft_policy_set serialises). Any thread. */
void weft__sched_set_fairness(struct weft_rt *rt, int rule,
                              const uint32_t weight[WEFT_BANDS]);

#endif
