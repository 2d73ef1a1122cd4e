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

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#include "../base/compiler.h"
#include "../base/membar.h"
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
} weft_wstats;

/* The weft_policy copied as 64-bit words (sched/policy.c). */
#define WEFT_POLICY_WORDS ((sizeof(weft_policy) + 7) / 8)

#define WEFT_BAND_NORMAL (WEFT_PRIO_NORMAL / 4)

#define WEFT_MESH_STAGED 8 /* destinations with a half-filled chunk */

/* An intrusive FIFO of task slots linked through rt->link (runq.h):
 * slot + 1 of its first and last task, 0 when empty. Owner-only. */
typedef struct weft_slotq {
    uint32_t head, tail;
} weft_slotq;

/* The thread a worker runs on, as the worker sees it: the scheduler
 * context (the thread's own stack) and the signal stack. An isolation
 * identity takes its worker's whole (isolate.c). Owner-only. */
typedef struct weft_wctx {
    void *sched_sp;    /* the scheduler context (thread stack) */
    void *sched_fiber; /* its TSan fiber */
    void *stack_lo;    /* the thread stack, for ASan's fiber API */
    size_t stack_size;
    char *altstack; /* signal stack of the thread running it (arena) */
} weft_wctx;

/* Mesh mode's state on one worker (mesh.c). Owner-only, except `load`,
 * which producers read. */
typedef struct weft_wmesh {
    uint32_t threshold;  /* load above which new work is deflected */
    uint32_t high_ticks; /* consecutive fairness ticks above it */
    uint32_t feed; /* tasks per chunk for a hungry neighbour (mesh_balance) */
    uint32_t fed;  /* hungry feeds since the last fairness tick */
    uint32_t gate; /* pushes above the threshold to let pass before the
                      next look for a target (mesh_balance) */
    uint32_t nstaged; /* destinations with a staged chunk */
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
    _Atomic uint32_t handoff;      /* 1: its thread kept an isolated task and
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
    uint32_t id;                   /* 0..workers-1 */
    uint32_t find_cursor;          /* rotating start in the summary tree */
    uint32_t resv_hint;            /* leaf to reserve slots from first */
    uint32_t leaf;                 /* the leaf this worker reserved: its yield
                                  bit, and its first choice for slots */
    int yield_published;           /* its yield bit is set (steal.c) */
    uint32_t rng;                  /* xorshift state for victim order */
    weft_wctx ctx;                 /* the thread it runs on */
    weft_stack_cache cache[2];     /* hot stacks: [0] default, [1] small */
    uint64_t start_ns; /* when it was started; set before its thread is */
    _Atomic uint64_t sleep_since; /* owner: when it went to sleep, 0 while
                                     awake (read by obs/stats.c) */

    /* Neighbours (mesh.c, weft__mesh_set_groups), owner-only. */
    uint32_t *order; /* other workers, nearest (same L3) first */
    uint32_t ngroup; /* how many of them share this worker's L3 */
    weft_wmesh mesh; /* mesh mode's state */

    /* Priority bands other than normal (bands.c), owner-only;
     * the normal band is lifo, dq and the yield queue above. */
    weft_slotq byq[WEFT_BANDS]; /* yield queues; [NORMAL] unused */
    weft_wfair fair;            /* the rule between bands, the DRR round */

    /* Shared line: set by wakers, slept on by the owner. */
    weft_aligned(WEFT_CACHELINE) _Atomic uint32_t sleep; /* 1: asleep or
                                                            about to be */
    _Atomic uint32_t xpub; /* xbands, published for thieves (a hint) */
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

/* A waiter record, on the waiting side's own stack: a task (parks) or a
 * plain thread (futex). At least 8-byte aligned: it travels through tagged
 * words. */
typedef struct weft_waiter {
    struct weft_rt *rt;
    weft_tcb *task;         /* NULL for a plain thread */
    uint32_t slot;          /* the task's slot */
    _Atomic uint32_t futex; /* plain thread: 0 waiting, 1 woken */
    int cancelled;          /* a join: the joined task's runtime was
                               destroyed under it (written before the
                               flag's release) */
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
    weft_tier_slot *tiers;  /* [max_tasks]: the monitor's (sysmon.c) */
    _Atomic uint32_t *link; /* [max_tasks] queue links */
    void *arena;
    size_t arena_size;
    int huge_pages; /* WEFT_HUGE_*: how the metadata is backed (arena.c) */
    _Atomic int stopping; /* weft_rt_destroy: workers exit; read on every
                             scheduling decision off the yield fast path */
    _Atomic int shutdown; /* weft_rt_shutdown: no new spawns */
    int mesh;             /* cfg.balance == WEFT_BALANCE_MESH */
    uint64_t spawn_bits;  /* state bits every task gets at spawn:
                             WEFT_TS_PREEMPTIBLE with cfg.preempt_all */
    weft_mbox *mbox;      /* mesh: [dst * nworkers + src] */

    /* Written by whoever uses them; each block on its own lines. */
    weft_aligned(WEFT_CACHELINE) weft_stack_pool pool[2]; /* [0] default,
                                                     [1] small class */
    weft_aligned(WEFT_CACHELINE) weft_inject inject;
    weft_aligned(WEFT_CACHELINE) _Atomic uint32_t idle; /* workers asleep */
    _Atomic uint32_t searching; /* workers spinning for work (idle.c) */
    weft_aligned(WEFT_CACHELINE) _Atomic uint64_t ext_spawns; /* by plain
                                                                 threads */
    _Atomic uint64_t ext_reaps;    /* reaps by plain threads */
    _Atomic uint64_t ext_wakes;    /* wakes by plain threads, other runtimes'
                                   workers and signal handlers */
    _Atomic uint32_t ext_hint;     /* reservation hint for plain threads */
    _Atomic uint32_t ext_inflight; /* wakers from outside the runtime
                                      between setting a record's flag and
                                      the end of their unpark (cancel.c) */
    /* Mesh mode: idle workers that want work. Worker i is bit hbit[i] of
     * word hword[i]; with up to 16 L3 groups of up to 64 workers each
     * group has a word (and a line) of its own, so workers going hungry
     * contend only within their group (tools/meshsim.py, 64 workers in 8
     * groups: one spawner per group 39 -> 3.6 ms with the hunger-word
     * variants); else word i/64 (weft__mesh_set_groups). */
    struct {
        weft_aligned(WEFT_CACHELINE) _Atomic uint64_t bits;
    } hungry[16];
    /* Relaxed atomics: written before the workers start, and again only
     * by white-box tests regrouping a running runtime. */
    _Atomic uint32_t nhwords;     /* words in use */
    _Atomic uint16_t hword[1024]; /* WORKERS_LIMIT (rt/config.c) */
    _Atomic uint8_t hbit[1024];

    /* Fairness between priority bands (weft_policy.fairness and
     * band_weight), set by weft__sched_set_fairness; workers copy it on
     * their fairness tick when fair_gen has changed. Read-mostly. */
    weft_aligned(WEFT_CACHELINE) _Atomic uint32_t fair_gen;
    _Atomic int fair_rule;                    /* WEFT_FAIR_* */
    _Atomic uint32_t fair_weight[WEFT_BANDS]; /* DRR shares, tickets */

    /* The monitor thread (sysmon.c). */
    weft_aligned(WEFT_CACHELINE) _Atomic uint32_t
        mon_sleep;        /* 1: the monitor naps while every worker
                             sleeps; 2 (WEFT_MON_DEEP): it sleeps until
                             woken (futex word: the first worker to leave
                             idle, or the destroyer, wakes it) */
    _Atomic int mon_stop; /* weft_rt_destroy: the monitor exits */
    int mon_started;
    pthread_t mon_thread;
    struct weft_mon *mon; /* its per-worker view; monitor only */

    /* Threads (isolate.c): the workers' threads and the spares that take
     * over a worker whose thread an isolated task keeps. */
    struct weft_thr *thr; /* [nthr] */
    uint32_t nthr;        /* nworkers + spares */
    weft_worker *iso;     /* [nthr] isolation identities */
    sigset_t thr_mask;    /* signal mask of weft_rt_create's caller,
                             which every thread of the runtime takes
                             (spares are created by the monitor, which
                             blocks everything) */
    weft_aligned(WEFT_CACHELINE) _Atomic uint64_t isolations; /* handoffs */
    /* Policy (sched/policy.c): the weft_policy as words under a seqlock,
     * and the warn callback under the same sequence. Writers hold
     * pol_lock; readers never block. Read-mostly. */
    weft_aligned(WEFT_CACHELINE) _Atomic uint32_t pol_seq; /* odd: a
                                                             writer is
                                                             mid-update */
    _Atomic uint32_t pol_lock;     /* spin lock (base/spin.h): writers */
    _Atomic(weft_warn_fn) warn_fn; /* NULL = the default line */
    void *_Atomic warn_arg;
    _Atomic uint64_t pol_words[WEFT_POLICY_WORDS]; /* the weft_policy's
                                                      bytes */
    /* Observation (obs/stats.c): the counters as they were at the last
     * weft_stats_reset, [i] for worker i and [nworkers] for the plain
     * threads' share; under obs_lock (a spin lock no task path takes). */
    weft_aligned(WEFT_CACHELINE) _Atomic uint32_t obs_lock;
    int obs_sigquit;      /* cfg.dump_on_sigquit took effect (obs/dump.c) */
    weft_stats *obs_base; /* [nworkers + 1], in the arena */
};

/* The generation a handle to a task with state word s shows: the slot's
 * generation plus the runtime's epoch (rt.c), 24 bits. Any thread. */
static inline uint32_t weft__hgen(const struct weft_rt *rt, uint64_t s)
{
    return (weft_ts_gen(s) + rt->epoch) & 0xffffff;
}

/* Make (rule, weight) the fairness rule between bands. Not called
 * concurrently with itself (weft_policy_set serialises). Any thread. */
void weft__sched_set_fairness(struct weft_rt *rt, int rule,
                              const uint32_t weight[WEFT_BANDS]);

/* The poll sequence number of w: moves at every switch into a task. Any
 * thread (relaxed). */
static inline uint64_t weft__poll_seq(weft_worker *w)
{
    return atomic_load_explicit(&w->st.switches, memory_order_relaxed) +
           atomic_load_explicit(&w->st.fast_yields, memory_order_relaxed);
}

/* Start and stop the monitor thread of rt (sysmon.c). Creator / destroyer
 * only. start returns 0 or -EAGAIN. */
int weft__sysmon_start(struct weft_rt *rt);
void weft__sysmon_stop(struct weft_rt *rt);
/* A worker has left idle: wake the monitor if it sleeps with no timeout
 * (sysmon.c). Call after the seq_cst decrement of rt->idle, when a
 * seq_cst load of rt->mon_sleep reads WEFT_MON_DEEP. */
void weft__sysmon_kick(struct weft_rt *rt);
#define WEFT_MON_DEEP 2

/* Install the SIGURG handler and find the program's text (preempt.c).
 * Idempotent; plain thread (weft_rt_create). */
void weft__preempt_init(void);

/* Is pc in code where a task may be switched out by a signal: the main
 * program's text, outside weft's own? Async-signal-safe. */
int weft__preempt_pc_safe(uintptr_t pc);

/* Called by the SIGURG handler on a worker's thread, on the interrupted
 * task's stack: switch the running task out if the monitor asked for it
 * and it is safe (preempt.c). uc is the handler's ucontext. Signal
 * handler only. */
void weft__preempt_here(void *uc);

/* The SIGURG handler's own part of weft__preempt_here's check: may the
 * interrupted context (uc) be switched out? (preempt.c) */
int weft__preempt_uc_safe(void *uc);

/* Point uc's saved alternate signal stack at the calling worker's: the
 * handler may return on another thread than the one it was entered on
 * (preempt.c). */
void weft__preempt_fix_uc(void *uc, weft_worker *w);

/* The worker the calling thread is, or NULL. Never inlined, and re-read
 * after any call that can switch: a task may resume on another worker
 * (DESIGN.md §9, thread-local storage and migration). Any thread. */
weft_worker *weft__worker_self(void);

/* Registry: runtime by id, for handles. Any thread. */
struct weft_rt *weft__rt_by_id(uint32_t id);

/* Run the scheduler loop of worker w on the calling thread until the
 * runtime stops (returns 0), or until the thread, having kept an isolated
 * task, is done with it (returns 1: the thread may serve another worker).
 * Worker thread only. */
int weft__worker_loop(weft_worker *w);

/* One OS thread of a runtime (isolate.c). */
typedef struct weft_thr {
    pthread_t th; /* set before anyone signals it */
    struct weft_rt *rt;
    char *altstack;         /* its signal stack (arena) */
    _Atomic uint32_t cmd;   /* futex word: 0 idle in the pool, k + 1 run
                                worker k, THR_EXIT; the monitor (or the
                                destroyer) sets, the thread waits */
    _Atomic uint32_t state; /* THR_* */
    _Atomic int tid;        /* kernel thread id */
    int started;            /* pthread_create succeeded; creator */
} weft_thr;

enum { THR_NONE = 0, THR_RUN = 1, THR_POOL = 2, THR_GONE = 3 };
#define THR_EXIT UINT32_MAX

/* Create the thread of worker i. -EAGAIN on failure. Creator. */
int weft__thr_start_worker(struct weft_rt *rt, uint32_t i);

/* Stop and join every thread of rt (stopping is set). Destroyer. */
void weft__thr_stop_all(struct weft_rt *rt);

/* Allocate / free the thread table and isolation identities. */
int weft__thr_init(struct weft_rt *rt, char *altstacks);
void weft__thr_fini(struct weft_rt *rt);

/* The monitor's tick: give a thread to every worker whose thread left
 * with an isolated task; create spares as needed, up to the bound.
 * Monitor only. */
void weft__thr_handoffs(struct weft_rt *rt);

/* The pthread running worker w now (for signals). Any thread. */
pthread_t weft__thr_of(struct weft_rt *rt, weft_worker *w);

/* Signal handler on w's thread, interrupted context safe to leave (see
 * preempt.c): the thread keeps the running task under an isolation
 * identity and gives up w, which the monitor hands to a spare thread.
 * Returns 0 if no identity was free. (isolate.c) */
int weft__isolate_here(weft_worker *w);

/* An isolation identity claimed for / released by the calling thread;
 * release lowers nothing: restore_priority says whether the thread's
 * priority could be raised back (isolate.c). */
weft_worker *weft__iso_claim(struct weft_rt *rt);
void weft__iso_release(weft_worker *iso);
int weft__thr_restore_priority(void);
void weft__thr_lower_priority(void);

/* May the interrupted context be given a new identity (isolation): not
 * in weft's code; in the program's own code or blocked in a system call
 * the program made (preempt.c). Signal safe. */
int weft__isolate_uc_ok(void *uc);

/* Make a RUNNABLE task (new or unparked) runnable somewhere: the calling
 * worker's LIFO slot when called on a worker of rt, else its signal bit
 * plus a wake-up. Any thread. */
void weft__sched_ready(struct weft_rt *rt, uint32_t slot);

/* weft__sched_ready for a task of w's own runtime, called on w: into the
 * LIFO slot (the previous occupant moves to the deque). Owner worker. */
void weft__sched_ready_local(weft_worker *w, uint32_t slot);

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

/* Wake w's owner. After this call w may already be gone: it copies what
 * it needs first. Any thread. */
void weft__waiter_wake(weft_waiter *w);

/* Mesh mode: each worker's neighbour order from the L3 group of every
 * worker (group_of[i]; NULL: all in one group). Nearest first: same group,
 * then the others; each list starts after the worker itself, so workers
 * spread their deflections. Creator (and white-box tests) only, before
 * tasks run. */
void weft__mesh_set_groups(struct weft_rt *rt, const uint32_t *group_of);

/* The same from a topology: with cfg.pin, worker i runs on
 * t->cpus[t->pin_order[i % t->ncpus]] (isolate.c), in that CPU's L3
 * group. Creator (and white-box tests) only. */
void weft__mesh_groups_from_topology(struct weft_rt *rt,
                                     const weft_topology *t);

#define WEFT_MESH_THRESHOLD 64 /* initial deflection threshold (tasks) */

/* Cancellation (cancel.c). enter: the calling task (slot of rt) is about
 * to link a wait record of kind (WEFT_WK_*) on obj somewhere; -ECANCELED
 * if rt is shut down (then nothing may be linked). leave: its record is
 * unlinked for good. Task only. */
static inline int weft__wait_enter(struct weft_rt *rt, uint32_t slot,
                                   unsigned kind, const void *obj)
{
    weft_tcb_cold *c = &rt->cold[slot];
    atomic_store_explicit(&c->wait_obj, obj, memory_order_relaxed);
    /* Store, barrier, load: the task's half of the Dekker pair with
     * weft__cancel_waits (cancel.c), whose half is the heavy barrier. */
    atomic_store_explicit(&c->wait_kind, (uint8_t)kind, memory_order_relaxed);
    weft__membar_light();
    if (weft_likely(!atomic_load_explicit(&rt->shutdown, memory_order_relaxed)))
        return 0;
    atomic_store_explicit(&c->wait_kind, WEFT_WK_NONE, memory_order_release);
    return -ECANCELED;
}
static inline void weft__wait_leave(struct weft_rt *rt, uint32_t slot)
{
    /* Release: pairs with weft__cancel_drain's acquire load; what the
     * task saw of its waker (the flag, and so the waker's ext_inflight
     * increment) happens before the destroyer's next reads. */
    atomic_store_explicit(&rt->cold[slot].wait_kind, WEFT_WK_NONE,
                          memory_order_release);
}

/* Is rt cancelling its tasks' waits (weft_rt_shutdown)? Any thread. */
static inline int weft__wait_cancelled(struct weft_rt *rt)
{
    return atomic_load_explicit(&rt->shutdown, memory_order_relaxed);
}

/* Shutdown: mark rt shut down and wake every task blocked in a wait, so
 * that it sees the cancellation. Any thread. */
void weft__cancel_waits(struct weft_rt *rt);

/* Destroyer, workers still running: wait until no task of rt is in a
 * wait. Then, workers stopped: wake joiners from outside rt of its
 * abandoned tasks with -ECANCELED (task.c), and wait for wakers from
 * outside rt still in flight. Plain thread. */
void weft__cancel_drain(struct weft_rt *rt);
void weft__task_cancel_joiners(struct weft_rt *rt);
void weft__cancel_settle(struct weft_rt *rt);

/* As weft__waiter_wake, but safe in a signal handler (no worker-local
 * queue is touched). Any thread. */
void weft__waiter_wake_remote(weft_waiter *w);

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
