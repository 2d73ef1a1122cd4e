/*
 * rt.c - create, run, shut down and destroy a runtime. The registry that
 * resolves task handles is sched/registry.c; the stack-overflow reporter
 * is overflow.c.
 *
 * Arena order (DESIGN.md §3): the runtime header and its workers, summary
 * words (top, root, leaf), reservation maps (avail, resv); then the arrays
 * that every live task touches, side by side: the hot and cold TCB arrays,
 * per-slot queue links, each stack's flags and owner; then stack free-list
 * links (and TSan fibers, in TSan builds only), timer heaps, mesh
 * mailboxes, stats baselines (obs/stats.c), signal stacks. That much, the
 * metadata, is padded to whole huge pages and backed by them when the
 * system allows (mem/arena.c). Then, on normal pages, the default-class
 * and small-class stacks (page aligned), and above them the per-slot
 * arrays that only some tasks touch (names, tier slots). Only the header,
 * the worker array and the summary words are written at creation;
 * everything else is touched when first used.
 *
 * Why this order: a huge page is resident as a whole once any byte of it
 * is touched, so live tasks cost the huge pages their arrays span. An
 * array that every task touches belongs with the others, so that they
 * span as few huge pages as their bytes need; an array that only some
 * tasks touch would make a whole huge page resident for one entry (2 MiB
 * for the tier slot of a task the monitor tracks), where a normal page
 * costs 4 KiB (docs/decisions/0016-memory-per-task.md).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../base/check.h"
#include "../base/error.h"
#include "../base/futex.h"
#include "../base/membar.h"
#include "../base/clock.h"
#include "../mem/arena.h"
#include "../sched/uring.h"
#include "../sched/policy.h"
#include "../obs/obs.h"
#include "../sched/topo.h"
#include "../io/blocking.h"
#include "../io/fd.h"
#include "rt.h"

#define RLX memory_order_relaxed
/* Bytes per stack of weft_stack_pool.san: TSan builds only. */
#ifdef WEFT_TSAN
#define SAN_FIBER_BYTES sizeof(void *)
#else
#define SAN_FIBER_BYTES 0
#endif

/* ---- create ----------------------------------------------------------- */

typedef struct layout {
    size_t rt, workers, sum, hot, cold, names, tiers, link, evr;
    size_t next[2], flags[2], owner[2], san[2], timers, mbox, order, alt, obs;
    size_t meta, fence[2], stacks[2], total;
} layout;

static void plan(const weft_config *c, const weft_summary *s, size_t page,
                 layout *l)
{
    weft_arena_plan p = {0};
    size_t line = WEFT_CACHELINE, n = c->max_tasks;
    l->rt = weft__arena_add(&p, sizeof(weft_rt), line);
    l->workers = weft__arena_add(&p, c->workers * sizeof(weft_worker), line);
    l->sum = weft__arena_add(&p, weft__summary_bytes(s), line);
    /* What every live task touches, side by side ("Arena order"). */
    l->hot = weft__arena_add(&p, n * sizeof(weft_tcb), line);
    l->cold = weft__arena_add(&p, n * sizeof(weft_tcb_cold), line);
    l->link = weft__arena_add(&p, n * 4, line);
    size_t ns = weft__stacks_per_class(c);
    for (int k = 0; k < 2; k++) {
        l->flags[k] = weft__arena_add(&p, ns, line);
        l->owner[k] = weft__arena_add(&p, ns * 4, line);
    }
    /* Dense once used, but not by every task: free-list links (a stack
     * handed out from the bump index has none) and TSan fibers. */
    for (int k = 0; k < 2; k++) {
        l->next[k] = weft__arena_add(&p, ns * 4, line);
        l->san[k] = weft__arena_add(&p, ns * SAN_FIBER_BYTES, line);
    }
#ifdef WEFT_DEBUG
    l->evr = weft__arena_add(&p, n * sizeof(weft_evring), line);
#endif
    /* Timer heaps: one per worker, room for every task's timer. */
    l->timers =
        weft__arena_add(&p, c->workers * n * sizeof(weft_theap_ent), line);
    /* Mesh mode: an N x N matrix of mailboxes and each worker's
     * neighbour order. */
    size_t nw = c->workers, mesh = c->balance == WEFT_BALANCE_MESH;
    l->mbox = weft__arena_add(&p, mesh ? nw * nw * sizeof(weft_mbox) : 0, line);
    l->order = weft__arena_add(&p, nw * nw * 4, line);
    /* Stats baselines (obs/stats.c): one per worker, one for plain
     * threads. */
    l->obs = weft__arena_add(&p, (c->workers + 1) * sizeof(weft_stats), line);
    /* Signal stacks: one per thread, the workers' and the spares'
     * (isolate.c: at most max(workers, 2) spares), and the pool that
     * preempted tasks take theirs from (sched/sigstack.c). */
    uint32_t nthr = c->workers + (c->workers < 2 ? 2 : c->workers);
    l->alt = weft__arena_add(
        &p, weft__sigstack_count(nthr, c->max_tasks) * WEFT_ALTSTACK, page);
    l->meta = weft__arena_add(&p, 0, weft__arena_huge_size());
    /* Each class behind a fence page (mem/stack.h): an overflow that no
     * guard stopped stays in its class. */
    l->fence[0] = weft__arena_add(&p, page, page);
    l->stacks[0] = weft__arena_add(&p, ns * c->stack_size, page);
    l->fence[1] = weft__arena_add(&p, page, page);
    l->stacks[1] = weft__arena_add(
        &p, ns * weft__stack_stride(c->small_stack_size, 1, page), page);
    /* Sparse per-slot arrays, on normal pages above the stacks (where no
     * overflow reaches): a named task's name, a tracked task's tier
     * slot. */
    l->names = weft__arena_add(&p, n * sizeof(weft_task_name), page);
    l->tiers = weft__arena_add(&p, n * sizeof(weft_tier_slot), line);
    l->total = weft__arena_add(&p, 0, page);
}

/* Stop the workers, each at its next switch: tasks switching after this
 * point go to the scheduler loop, which exits. The summary bit diverts
 * the yield fast path, which checks only the summary, into the path that
 * reads `stopping`. */
static void stop_workers(weft_rt *rt, uint32_t started)
{
    /* The monitor first: it signals worker threads, which must exist. */
    weft__sysmon_stop(rt);
    atomic_store_explicit(&rt->stopping, 1, memory_order_release);
    if (started)
        weft__summary_yield_set(&rt->sum, rt->workers[0].leaf);
    for (uint32_t i = 0; i < started; i++) {
        weft_worker *w = &rt->workers[i];
        atomic_store_explicit(&w->sleep, 0, RLX);
        weft__futex_wake(&w->sleep, INT_MAX); /* and its ring's (idle.c) */
    }
    weft__poller_kick(rt); /* a worker asleep in the poller */
    /* A preemptible task that never calls weft: preempted out of its
     * worker, whose join below would wait for it forever. */
    weft__sysmon_stop_preemptible(rt, started);
    weft__thr_stop_all(rt);
    /* A trace still recording ends here, written to cfg.trace's path:
     * every thread has stopped, and the counters it is checked against
     * (which read the isolation identities) are still there. Errors are
     * weft_trace_stop's to report, not the destroy's. */
    if (atomic_load_explicit(&rt->trace_on, RLX))
        (void)weft_trace_stop(rt);
    weft__thr_fini(rt);
}

/* Say in weft_last_error which stacks will have canaries only: their
 * overflow may overwrite other stacks before it is reported (weft.h,
 * "Stack overflow"). The guard kind is known: the fences probed it. */
static void warn_canaries(weft_rt *rt)
{
    const weft_config *c = &rt->cfg;
    uint64_t want = (uint64_t)c->max_tasks * (rt->pool[1].paged ? 2 : 1);
    if (!c->guard_pages)
        weft__error_set(0, "stacks: guard_pages 0: every stack has a canary "
                           "only");
    else if (!rt->pool[1].paged)
        weft__error_set(0,
                        "stacks: small_stack_size %zu is under a page: "
                        "small stacks have a canary only",
                        c->small_stack_size);
    else if (weft__stack_guard_kind() == WEFT_GUARD_KIND_MPROTECT &&
             weft__stack_guard_budget() < want)
        weft__error_set(0,
                        "stacks: no lightweight guards (Linux < 6.13): "
                        "guard pages for %llu more stacks, canaries past "
                        "that",
                        (unsigned long long)weft__stack_guard_budget());
}

/* Step 1 of create: the runtime header, laid out in the arena at a (plan,
 * above): its fields, the summary tree, the stack pools and their fences,
 * the injection queue, mesh mode's neighbours and the policy. Nothing
 * runs yet. 0, or an error with weft_last_error set. */
static int place(weft_rt *rt, const weft_config *cfg, const layout *l, char *a,
                 const weft_summary *sum, size_t page, int huge,
                 const weft_topology *topo)
{
    rt->cfg = *cfg;
    rt->nworkers = cfg->workers;
    rt->workers = (weft_worker *)(a + l->workers);
    rt->arena = a;
    rt->arena_size = l->total;
    rt->huge_pages = huge;
    rt->sum = *sum;
    weft__summary_init(&rt->sum);
    rt->hot = (weft_tcb *)(a + l->hot);
    rt->cold = (weft_tcb_cold *)(a + l->cold);
    rt->names = (weft_task_name *)(a + l->names);
    rt->tiers = (weft_tier_slot *)(a + l->tiers);
    rt->link = (_Atomic uint32_t *)(a + l->link);
#ifdef WEFT_DEBUG
    rt->evr = (weft_evring *)(a + l->evr);
#endif
    for (int k = 0; k < 2; k++) {
        weft_stack_pool *p = &rt->pool[k];
        p->base = a + l->stacks[k];
        p->size = k ? cfg->small_stack_size : cfg->stack_size;
        p->count = (uint32_t)weft__stacks_per_class(cfg);
        p->small = k;
        p->want_guard = cfg->guard_pages;
        p->page = page;
        p->keep = cfg->stack_keep;
        p->next = (_Atomic uint32_t *)(a + l->next[k]);
        p->flags = (_Atomic uint8_t *)(a + l->flags[k]);
        p->owner = (_Atomic uint32_t *)(a + l->owner[k]);
        p->san = (void **)(a + l->san[k]);
        weft__stack_pool_init(p);
        int err = weft__stack_fence(a + l->fence[k], page);
        if (err)
            return weft__error_set(err,
                                   "stacks: cannot protect the fence page");
    }
    weft__inject_init(&rt->inject, rt->link);
    rt->mesh = cfg->balance == WEFT_BALANCE_MESH;
    rt->mbox = rt->mesh ? (weft_mbox *)(a + l->mbox) : NULL;
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        rt->workers[i].order =
            (uint32_t *)(a + l->order) + (size_t)i * cfg->workers;
        rt->workers[i].mesh.threshold = WEFT_MESH_THRESHOLD;
    }
    /* Mesh neighbours by L3 group. Known only for pinned workers (cfg.pin:
     * worker i on the topology's pin_order[i], isolate.c); unpinned ones
     * float over the allowed CPUs and count as one group. */
    if (rt->mesh && cfg->pin)
        weft__mesh_groups_from_topology(rt, topo);
    else
        weft__mesh_set_groups(rt, NULL);
    /* The preset policy (cfg.policy, cfg.fairness) and its fairness rule,
     * before any worker makes a scheduling decision. */
    weft__policy_init(rt);
    rt->obs_base = (weft_stats *)(a + l->obs);
    rt->spawn_bits = cfg->preempt_all ? WEFT_TS_PREEMPTIBLE : 0;
    rt->small_tiny = cfg->small_stack_size < 4096;
    return 0;
}

/* Step 2: give rt an id in the registry (handles resolve through it) and
 * an epoch. 0 or -EAGAIN. */
static int enroll(weft_rt *rt)
{
    /* Before the registry publishes rt: the SIGQUIT handler reads
     * obs_sigquit after its acquire look-up. */
    if (rt->cfg.dump_on_sigquit)
        weft__obs_sigquit_add(rt);
    uint32_t id = weft__registry_add(rt);
    if (!id)
        return weft__error_set(-EAGAIN, "runtimes: %u already exist",
                               WEFT_REGISTRY - 1);
    rt->id = id;
    /* Registry ids are reused; the epoch keeps a destroyed runtime's
     * handles stale in its successor (same id, same slots, generations
     * from 0 again). Golden-ratio steps spread successive epochs over the
     * 24-bit generation space. */
    static _Atomic uint32_t epochs;
    rt->epoch =
        (atomic_fetch_add_explicit(&epochs, 1, RLX) * 0x9e3779u) & 0xffffff;
    return 0;
}

/* Worker i's own state before its thread starts: its home leaf of the
 * summary tree, its timer heap. 0 or -EINVAL. */
static int worker_init(weft_rt *rt, uint32_t i, weft_theap_ent *timers)
{
    weft_worker *w = &rt->workers[i];
    w->rt = rt;
    w->hot = rt->hot;
    w->link = rt->link;
    w->top1 = rt->sum.top_count == 1 ? rt->sum.top : NULL;
    w->id = i;
    w->rng = 2654435761u * (i + 1) | 1;
    /* Home leaves 8 apart: eight 8-byte words fill a cache line, and
     * every spawn and reap does an RMW on its leaf's reservation word;
     * neighbours' words on one line cost fib at 2 workers 1.7x its
     * 1-worker time (measured). Wraps when leaves are few. */
    uint32_t want = (i * 8) % rt->sum.leaf_count;
    if (i * 8 >= rt->sum.leaf_count)
        want = i % rt->sum.leaf_count;
    int64_t leaf = weft__summary_reserve_worker(&rt->sum, want);
    if (leaf < 0) /* config_check keeps workers <= leaf_count */
        return weft__error_set(-EINVAL, "workers: no leaf left");
    w->leaf = (uint32_t)leaf;
    w->yroot = &rt->sum.root[leaf / 64];
    w->yleaf = &rt->sum.leaf[leaf];
    w->yroot_bit = UINT64_C(1) << (leaf % 64);
    w->ytop_bit = UINT64_C(1) << ((leaf / 64) % 64);
    w->resv_hint = (uint32_t)leaf;
    w->start_ns = weft__clock_ns();
    weft__theap_init(&w->timers, timers);
    return 0;
}

/* Step 3: the workers' threads, then the monitor. *started counts the
 * worker threads running (for the unwinding). 0 or an error. */
static int start(weft_rt *rt, const layout *l, char *a, uint32_t *started)
{
    int err;
    for (*started = 0; *started < rt->nworkers; (*started)++) {
        uint32_t i = *started;
        if ((err = worker_init(rt, i,
                               (weft_theap_ent *)(a + l->timers) +
                                   (size_t)i * rt->cfg.max_tasks)))
            return err;
        if (weft__thr_start_worker(rt, i))
            return weft__error_set(-EAGAIN, "workers: cannot create thread");
    }
    if ((err = weft__sysmon_start(rt)))
        return weft__error_set(err, "monitor: cannot start its thread");
    return 0;
}

int weft_rt_create(weft_rt **out, const weft_config *cfg_in)
{
    weft__error_clear();
    if (!out)
        return weft__error_set(-EINVAL, "out: NULL");
    weft_config cfg;
    if (cfg_in)
        cfg = *cfg_in;
    else
        weft_config_default(&cfg);
    int err = weft__config_check(&cfg);
    if (err)
        return err;
    /* The I/O backend (cfg.io): the kernel is asked once per process
     * (sched/uring.c). */
    int io_err = 0, io_why = WEFT_IO_FB_NONE;
    if (cfg.io != WEFT_IO_EPOLL)
        io_why = weft__uring_probe(&io_err);
    if (cfg.io == WEFT_IO_URING && io_why != WEFT_IO_FB_NONE)
        return weft__error_set(
            -ENOTSUP, "io (WEFT_IO): uring asked for, but %s%s%s%s",
            weft__uring_fb_text(io_why), io_err ? " (" : "",
            io_err ? strerror(io_err) : "", io_err ? ")" : "");
    weft__overflow_init();
    weft__membar_init(); /* sched/cancel.c's wait entry */
    /* Find the topology now, on the creating thread: a task's later
     * weft_topology_get then never runs the discovery on its stack. */
    const weft_topology *topo;
    weft_topology_get(&topo);

    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    weft_summary sum;
    weft__summary_size(&sum, cfg.max_tasks);
    layout l;
    plan(&cfg, &sum, page, &l);
    int huge;
    char *a = weft__arena_map_meta(l.total, l.meta, cfg.huge_pages, &huge);
    if (!a)
        return weft__error_set(-ENOMEM, "arena: cannot reserve %zu bytes",
                               l.total);
    weft__summary_place(&sum, a + l.sum);
    weft_rt *rt = (weft_rt *)(a + l.rt);
    if ((err = place(rt, &cfg, &l, a, &sum, page, huge, topo)))
        goto fail_place;
    rt->io_uring = cfg.io != WEFT_IO_EPOLL && io_why == WEFT_IO_FB_NONE;
    atomic_store_explicit(&rt->io_fallback, io_why, memory_order_relaxed);
    atomic_store_explicit(&rt->io_fallback_errno, io_err, memory_order_relaxed);
    if (rt->io_uring)
        weft__uring_note_use();
    if ((err = enroll(rt)))
        goto fail_enroll;
    if ((err = weft__thr_init(rt, a + l.alt))) {
        weft__error_set(err, "threads: no memory for the thread table");
        goto fail_thr;
    }
    /* The execution trace from the start (cfg.trace, cfg.trace_ring_mb):
     * before the workers, so their first polls are in it. */
    rt->cfg.trace = NULL;
    if (cfg.trace && !(rt->trace_path = strdup(cfg.trace))) {
        err = weft__error_set(-ENOMEM, "trace: the path");
        goto fail_trace;
    }
    rt->cfg.trace = rt->trace_path;
    if ((cfg.trace || cfg.trace_ring_mb) && (err = weft__obs_trace_begin(rt)))
        goto fail_trace;
    uint32_t started;
    if ((err = start(rt, &l, a, &started)))
        goto fail_start;
    warn_canaries(rt);
    *out = rt;
    return 0;

fail_start:
    stop_workers(rt, started); /* frees the thread table too */
    goto fail_thr;
fail_trace:
    weft__thr_fini(rt);
fail_thr:
    weft__trace_free(rt);
    free(rt->trace_path);
    weft__registry_remove(rt);
fail_enroll:
    weft__obs_rt_gone(rt);
    weft__inject_destroy(&rt->inject);
fail_place:
    weft__arena_unmap(a, l.total);
    return err;
}

/* ---- shutdown, destroy, run ----------------------------------------- */

int weft_rt_shutdown(weft_rt *rt)
{
    if (!rt)
        return -EINVAL;
    /* Refuse spawns, and end every wait of a task of rt with -ECANCELED
     * (sched/cancel.c). Idempotent: a second scan only wakes tasks that
     * block and see the cancellation at once anyway. */
    weft__cancel_waits(rt);
    return 0;
}

int weft_rt_destroy(weft_rt *rt)
{
    if (!rt)
        return -EINVAL;
    if (weft__worker_self())
        return -EPERM;
    if (weft__obs_live(rt) && !atomic_load_explicit(&rt->shutdown, RLX))
        return -EBUSY;
    /* Nothing outside rt may point into it once it is unmapped
     * (sched/cancel.c): the workers run the cancelled tasks until each
     * has left its waits; then, stopped, joiners from outside of the
     * tasks they abandon are woken, and wakers and joiners from outside
     * still in flight are waited for. */
    weft__cancel_waits(rt);
    weft__cancel_drain(rt);
    stop_workers(rt, rt->nworkers);
    /* Release: pairs with an outside joiner's acquire load (task.c). */
    atomic_store_explicit(&rt->abandoned, 1, memory_order_release);
    weft__task_cancel_joiners(rt);
    weft__registry_remove(rt); /* then no new holder (cancel.c) */
    weft__cancel_settle(rt);
    weft__blocking_rt_gone(rt); /* running weft_block_on jobs end first:
                                   they may write to task stacks */
    uint64_t guards = 0;
    for (int k = 0; k < 2; k++) {
        for (uint32_t i = 0; i < rt->nworkers; i++)
            weft__stack_drain(&rt->pool[k], &rt->workers[i].cache[k]);
        weft__stack_pool_fini(&rt->pool[k]);
        guards += atomic_load_explicit(&rt->pool[k].guarded, RLX);
    }
    for (uint32_t i = 0; i < rt->nworkers; i++)
        weft__uring_destroy(&rt->workers[i]); /* sched/uring.c */
    weft__io_rt_gone(rt);     /* its descriptors' table (io/fd.c) */
    weft__poller_destroy(rt); /* the epoll instance and the eventfd */
    weft__obs_rt_gone(rt);    /* no SIGQUIT dump still reads it */
    weft__inject_destroy(&rt->inject);
    weft__trace_free(rt);
    free(rt->trace_path);
    weft__arena_unmap(rt->arena, rt->arena_size);
    weft__stack_guards_return(guards); /* their mappings are gone */
    return 0;
}

int weft_rt_run(weft_rt *rt, weft_fn main, void *arg, void **result)
{
    if (!rt || !main)
        return -EINVAL;
    if (weft__worker_self())
        return -EPERM;
    weft_task t;
    int err = weft_spawn(rt, &t, main, arg, NULL);
    if (err)
        return err;
    return weft_join(t, result);
}
