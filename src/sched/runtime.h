/*
 * runtime.h - the runtime object (struct weft_rt): what one runtime owns,
 * from its configuration and workers to its arena's arrays, and the
 * waiter record that wake-ups travel in. The inlines here read it; the
 * calls of each scheduler module are in that module's header, and
 * sched.h includes them all.
 *
 * Everything here lives in the runtime's one arena mapping (mem/arena.h):
 * the runtime header, the worker array, the summary and reservation words,
 * the TCB arrays, the per-slot queue links, the stack metadata and the
 * stacks. After weft_rt_create nothing is allocated.
 */
#ifndef WEFT_SCHED_RUNTIME_H
#define WEFT_SCHED_RUNTIME_H

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
#include "evtrace.h"
#include "isolate.h"
#include "poller.h"
#include "preempt.h"
#include "sysmon.h"
#include "task.h"
#include "timer.h"
#include "worker.h"

/* The weft_policy copied as 64-bit words (sched/policy.c). */
#define WEFT_POLICY_WORDS ((sizeof(weft_policy) + 7) / 8)

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
    weft_evring *evr;       /* [max_tasks] in WEFT_DEBUG builds, else
                               NULL (evtrace.h) */
    weft_tcb_cold *cold;    /* [max_tasks] */
    weft_task_name *names;  /* [max_tasks]: named tasks' names only
                               (sched/task.h, NAMED) */
    weft_tier_slot *tiers;  /* [max_tasks]: the monitor's (sysmon.c) */
    _Atomic uint32_t *link; /* [max_tasks] queue links */
    void *arena;
    size_t arena_size;
    int huge_pages; /* WEFT_HUGE_*: how the metadata is backed (arena.c) */
    _Atomic int stopping;   /* weft_rt_destroy: workers exit; read on every
                             scheduling decision off the yield fast path */
    _Atomic int shutdown;   /* weft_rt_shutdown: no new spawns */
    _Atomic int abandoned;  /* weft_rt_destroy stopped the workers: tasks
                              left never end (cancel.c); the destroyer
                              stores (release), outside joiners load */
    _Atomic int sc_reclaim; /* reclaimers of slot caches at work
                               (slots.c); read on every spawn and reap */
    _Atomic uint64_t sc_reclaims; /* reclaims done (slots.c; tests) */
    _Atomic uint32_t sc_lock;     /* one reclaimer at a time (slots.c) */
    int mesh;                     /* cfg.balance == WEFT_BALANCE_MESH */
    /* The io_uring backend is in use (cfg.io and the kernel: rt.c);
     * if not, or not on every worker, why (weft_stats.io_fallback, a
     * WEFT_IO_FB_*) and its errno: set at creation, or by a worker whose
     * ring could not be made (uring.c). */
    int io_uring;
    _Atomic int io_fallback, io_fallback_errno;
    /* The small class is under 4 KiB: a small-class task that parks,
     * yields or ends leaves the next decision to the scheduler loop's
     * stack instead of making it on its own (worker.c, "Small stacks"). */
    int small_tiny;
    uint64_t spawn_bits; /* state bits every task gets at spawn:
                             WEFT_TS_PREEMPTIBLE with cfg.preempt_all */
    weft_mbox *mbox;     /* mesh: [dst * nworkers + src] */

    /* Written by whoever uses them; each block on its own lines. */
    weft_aligned(WEFT_CACHELINE) weft_stack_pool pool[2]; /* [0] default,
                                                     [1] small class */
    weft_aligned(WEFT_CACHELINE) weft_inject inject;
    /* Readiness of file descriptors (poller.c), made at first use. */
    weft_aligned(WEFT_CACHELINE) weft_poller poller;
    void *fdt; /* io/fd.c's table of descriptors, NULL until first use */
    _Atomic uint32_t uring_closes; /* weft_close of descriptors the io_uring
                                      backend used: workers scan their
                                      operations when it moves (uring.c) */
    _Atomic(struct weft_bpool *) bpool; /* io/blocking.c's pool, NULL
                                           until first use */

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
    char *sigstk;         /* [nsig] signal stacks of WEFT_ALTSTACK bytes
                             (arena; sigstack.c) */
    uint32_t nsig;
    _Atomic uint64_t *sigfree; /* bitmap: 1 = in the pool; any thread's
                                  SIGURG handler or its switch */
    weft_aligned(WEFT_CACHELINE) _Atomic uint64_t
        isolations; /* workers given away */
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
    /* The execution trace (sched/trace.c, obs/trace.c). trace_on and
     * trace_other are read by the hooks (relaxed test, acquire load of
     * the ring); the rest is the tracing caller's. */
    weft_aligned(WEFT_CACHELINE) _Atomic uint32_t trace_on;
    weft_tring *_Atomic trace_other; /* plain threads' and isolation
                                        identities' ring */
    weft_tring **trace_rings;        /* [nworkers + 1], from the first
                                        start to the destroy */
    uint64_t trace_t0;               /* the trace's start (ns) */
    _Atomic int trace_wrap;          /* flight recorder */
    char *trace_path;      /* cfg.trace: written at stop and destroy */
    size_t trace_ring_mb;  /* cfg.trace_ring_mb */
    weft_stats trace_base; /* weft_stats at the start */
    /* Flight recorder's writes the monitor makes (sysmon.c): on SIGQUIT
     * (the dump handler sets trace_req) and after an isolation. The
     * writer is obs/trace.c's, registered at the start (the monitor is
     * below the JSON in the layers). */
    _Atomic uint32_t trace_req;
    _Atomic(int (*)(struct weft_rt *rt, const char *why)) trace_flush;
    /* Serialises weft_trace_start/stop/dump and the monitor's writes
     * (obs/trace.c): a spin lock no task path takes. */
    _Atomic uint32_t trace_lock;
};

/* Is rt recording a trace? The hooks' test. Any thread. */
static inline int weft__tracing(const struct weft_rt *rt)
{
    return weft_unlikely(atomic_load_explicit(&((struct weft_rt *)rt)->trace_on,
                                              memory_order_relaxed));
}

/* trace.c: record an event of a hook running on worker w (NULL: not one
 * of rt's), and poll_turn's out-of-line part. */
void weft__trace_event(struct weft_rt *rt, weft_worker *w, unsigned kind,
                       uint32_t slot, unsigned x, unsigned y, uint64_t a,
                       uint64_t b);
void weft__trace_run(weft_worker *w, weft_tcb *from, uint32_t to_slot1,
                     uintptr_t why);

/* The generation a handle to a task with state word s shows: the slot's
 * generation plus the runtime's epoch (rt.c), 24 bits. Any thread. */
static inline uint32_t weft__hgen(const struct weft_rt *rt, uint64_t s)
{
    return (weft_ts_gen(s) + rt->epoch) & 0xffffff;
}

/* Where task `slot` of rt runs now, read racily: a worker's index, -2 on
 * an isolation identity's thread (isolate.c), -1 on none. Any thread
 * (weft_task_info, weft_dump, the watchdog). */
static inline int weft__slot_running(struct weft_rt *rt, uint32_t slot)
{
    for (uint32_t i = 0; i < rt->nworkers; i++)
        if (atomic_load_explicit(&rt->workers[i].running,
                                 memory_order_relaxed) == slot + 1)
            return (int)i;
    for (uint32_t i = 0; i < rt->nthr; i++)
        if (atomic_load_explicit(&rt->iso[i].iso_busy, memory_order_relaxed) &&
            atomic_load_explicit(&rt->iso[i].running, memory_order_relaxed) ==
                slot + 1)
            return -2;
    return -1;
}

/* The name of the task in slot (empty when it has none), as of now: a
 * stale name of a reused slot unless the caller checks the generation.
 * Any thread; signal safe. */
static inline void weft__task_name(const struct weft_rt *rt, uint32_t slot,
                                   char out[16])
{
    weft__name_get(
        &rt->names[slot],
        atomic_load_explicit(&rt->hot[slot].state, memory_order_relaxed), out);
}

/* Bytes at the top of every stack kept for task-local values. */
#define WEFT_TLS_BYTES (WEFT_TLS_KEYS * sizeof(void *))
/* Each signal stack: a thread's (every handler of weft's runs on it) or
 * a preempted task's (sched/sigstack.c). */
#define WEFT_ALTSTACK ((size_t)64 * 1024)

/* Reserve a slot and make it a runnable task running fn(arg) with state
 * bits `bits` (WEFT_TS_*: priority, class, DETACHED...) and name `name`
 * (NULL: none), counted as a spawn; the caller queues it
 * (weft__sched_ready*) or runs it. Returns the slot or -EAGAIN
 * (max_tasks live). w: the caller's worker or NULL. Any thread.
 * (task.c) */
int64_t weft__task_new(struct weft_rt *rt, weft_worker *w, weft_fn fn,
                       void *arg, uint64_t bits, const char *name);

/* Finish the calling task's own work: TLS destructors, then store
 * `result`. Task only. */
void weft__task_exit(void *result);

/* Run the calling task's TLS destructors (tls.c) and return its cold
 * TCB (it may have moved worker meanwhile). Task only. */
weft_tcb_cold *weft__tls_finish(void);

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
