/*
 * isolate.c - threads, and handing a worker to another thread when its
 * task will not let go of it.
 *
 * Problem. A task that computes for long and cannot be preempted (not
 * preemptible, or always inside libc), or that blocks its thread in a
 * system call, holds its worker: the worker's queued tasks, its due
 * timers and its mailboxes wait behind it, however many other cores are
 * idle. Go solves the system-call case by handing the P (the scheduling
 * context: run queue, timers) to another OS thread while the M (the
 * thread) stays with the goroutine (runtime/proc.go, handoffp). weft
 * does the same for both cases: the worker struct (queues, leaf,
 * timers, mailboxes: the role) moves to a spare thread, and the task
 * keeps the old thread.
 *
 * Mechanism. Threads and workers are separate: every thread runs
 * thread_main, which waits for a command (run worker k) and runs that
 * worker's loop. When a task reaches the Isolate tier (sysmon.c), the
 * monitor asks its worker's thread, by SIGURG (preempt.c), to let go of
 * the worker. The handler, when the interrupted code holds no worker
 * state (not in weft's code: see weft__isolate_uc_ok), switches the
 * thread's identity from the worker to an isolation identity (a
 * weft_worker of its own with empty queues, weft__isolate_here), lowers
 * the thread's OS priority (nice 19), and publishes the worker as
 * handed off. At its next tick the monitor gives the worker to a pooled
 * spare thread (creating one if none waits, up to the bound), which runs
 * its loop from a fresh frame: everything queued there runs again.
 *
 * The isolated task goes on on its thread. Everything it does through
 * weft works under the isolation identity, except that nothing is ever
 * queued on it: tasks it spawns or wakes are signalled through the
 * summary tree (worker.c, weft__sched_ready_local). When it yields,
 * parks or ends, the thread switches to its old scheduler frame, which
 * notices that it is no longer its worker's thread, hands anything left
 * on the identity back to the runtime (a task woken during the park,
 * fires its timer if it parked with a deadline), releases the identity,
 * raises its priority back, and returns to the pool. If the priority
 * cannot be raised back (unprivileged threads may not lower their nice
 * value), the thread exits instead: the pool never holds a thread at
 * nice 19.
 *
 * Bounds. At most nworkers spare threads (at least 2) exist besides the
 * workers' own: the table has nworkers + spares entries, each with an
 * isolation identity and a signal stack (sigstack.c). When none is
 * free, the worker waits for one (the monitor retries every tick).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../base/clock.h"
#include "../base/futex.h"
#include "../base/check.h"
#include "poller.h"
#include "runq.h"
#include "uring.h"

#define RLX memory_order_relaxed
#define ISO_TIMERS                                                             \
    8 /* only the isolated task arms timers on its
                        identity, one at a time */

/* cfg.pin: worker w runs on one CPU, in the topology's pin order (L3
 * group by L3 group, cores before SMT siblings; sched/topo.c). Quiet when
 * the CPU is no longer allowed. */
static void pin_worker(weft_worker *w)
{
    const weft_topology *t;
    cpu_set_t one;
    if (weft_topology_get(&t) || !t->ncpus)
        return;
    CPU_ZERO(&one);
    CPU_SET(t->cpus[t->pin_order[w->id % t->ncpus]].os, &one);
    pthread_setaffinity_np(pthread_self(), sizeof one, &one);
}

static void *thread_main(void *arg)
{
    weft_thr *t = arg;
    weft_rt *rt = t->rt;
    atomic_store_explicit(&t->tid, (int)syscall(SYS_gettid), RLX);
    pthread_sigmask(SIG_SETMASK, &rt->thr_mask, NULL);
    /* t->altstack is this thread's from here on (sigstack.c): a thread
     * that left with an isolated task and exited passes the one it had
     * last to the next thread of its entry. */
    stack_t ss = {.ss_sp = t->altstack, .ss_size = WEFT_ALTSTACK};
    sigaltstack(&ss, NULL);
    for (;;) {
        uint32_t c;
        /* Acquire: pairs with the release CAS that gave the command. */
        while ((c = atomic_load_explicit(&t->cmd, memory_order_acquire)) == 0)
            weft__futex_wait(&t->cmd, 0, 0);
        if (c == THR_EXIT)
            break;
        weft_worker *w = &rt->workers[c - 1];
        atomic_store_explicit(&w->thr, (uint32_t)(t - rt->thr), RLX);
        if (rt->cfg.pin)
            pin_worker(w);
        if (!weft__worker_loop(w))
            break; /* the runtime stops */
        /* Done with an isolated task: back to the pool, at normal
         * priority only, and not if the destroyer has told it to exit
         * meanwhile (its exchange to THR_EXIT makes this CAS fail: no
         * lost exit, even for a thread slowed down at nice 19). */
        if (!weft__thr_restore_priority()) {
            atomic_store_explicit(&t->state, THR_GONE, RLX);
            break;
        }
        if (!atomic_compare_exchange_strong_explicit(&t->cmd, &c, 0, RLX, RLX))
            break;
        /* Release: pairs with the monitor's acquire load of state; it
         * then sees cmd == 0. */
        atomic_store_explicit(&t->state, THR_POOL, memory_order_release);
    }
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, NULL);
    return NULL;
}

static int start(weft_thr *t, uint32_t worker)
{
    atomic_store_explicit(&t->cmd, worker + 1, RLX);
    atomic_store_explicit(&t->state, THR_RUN, RLX);
    if (pthread_create(&t->th, NULL, thread_main, t)) {
        atomic_store_explicit(&t->state, THR_NONE, RLX);
        return -EAGAIN;
    }
    t->started = 1;
    return 0;
}

int weft__thr_start_worker(weft_rt *rt, uint32_t i)
{
    return start(&rt->thr[i], i);
}

pthread_t weft__thr_of(weft_rt *rt, weft_worker *w)
{
    return rt->thr[atomic_load_explicit(&w->thr, RLX)].th;
}

int weft__thr_init(weft_rt *rt, char *altstacks)
{
    uint32_t spares = rt->nworkers < 2 ? 2 : rt->nworkers;
    rt->nthr = rt->nworkers + spares;
    pthread_sigmask(SIG_SETMASK, NULL, &rt->thr_mask);
    rt->thr = calloc(rt->nthr, sizeof(weft_thr));
    rt->iso = aligned_alloc(WEFT_CACHELINE, rt->nthr * sizeof(weft_worker));
    if (!rt->thr || !rt->iso) {
        free(rt->thr);
        free(rt->iso);
        return -ENOMEM;
    }
    memset(rt->iso, 0, rt->nthr * sizeof(weft_worker));
    if (weft__sigstack_init(rt, altstacks)) {
        free(rt->thr);
        free(rt->iso);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < rt->nthr; i++) {
        rt->thr[i].rt = rt;
        rt->thr[i].altstack = altstacks + (size_t)i * WEFT_ALTSTACK;
        weft_theap_ent *e = calloc(ISO_TIMERS, sizeof(weft_theap_ent));
        if (!e) {
            while (i--)
                free(rt->iso[i].timers.e);
            weft__sigstack_fini(rt);
            free(rt->thr);
            free(rt->iso);
            return -ENOMEM;
        }
        weft__theap_init(&rt->iso[i].timers, e);
    }
    for (uint32_t i = 0; i < rt->nworkers; i++)
        atomic_store_explicit(&rt->workers[i].thr, i, RLX);
    return 0;
}

void weft__thr_fini(weft_rt *rt)
{
    for (uint32_t i = 0; i < rt->nthr; i++)
        free(rt->iso[i].timers.e);
    weft__sigstack_fini(rt);
    free(rt->iso);
    free(rt->thr);
    rt->iso = NULL; /* a trace stopped after this touches none */
    rt->thr = NULL;
}

void weft__thr_stop_all(weft_rt *rt)
{
    for (uint32_t i = 0; i < rt->nthr; i++) {
        weft_thr *t = &rt->thr[i];
        if (!t->started)
            continue;
        /* Every thread is told to exit: a pooled one waits on cmd; one
         * running a worker leaves its loop on `stopping` and then finds
         * THR_EXIT instead of going back to the pool (thread_main). The
         * monitor, the only other writer of cmd, has stopped. */
        atomic_store_explicit(&t->cmd, THR_EXIT, RLX);
        weft__futex_wake(&t->cmd, 1);
    }
    for (uint32_t i = 0; i < rt->nthr; i++)
        if (rt->thr[i].started) {
            pthread_join(rt->thr[i].th, NULL);
            rt->thr[i].started = 0;
        }
}

/* A thread for worker k: a pooled one, else a new one. Monitor only (the
 * one assigner). */
static int give_thread(weft_rt *rt, uint32_t k)
{
    for (uint32_t i = 0; i < rt->nthr; i++) {
        weft_thr *t = &rt->thr[i];
        uint32_t zero = 0;
        /* Acquire: pairs with thread_main's release store of POOL. */
        if (atomic_load_explicit(&t->state, memory_order_acquire) == THR_POOL &&
            atomic_compare_exchange_strong_explicit(
                &t->cmd, &zero, k + 1, memory_order_release, RLX)) {
            atomic_store_explicit(&t->state, THR_RUN, RLX);
            weft__futex_wake(&t->cmd, 1);
            return 0;
        }
    }
    for (uint32_t i = 0; i < rt->nthr; i++) {
        weft_thr *t = &rt->thr[i];
        if (!t->started)
            return start(t, k);
        if (atomic_load_explicit(&t->state, RLX) == THR_GONE) {
            pthread_join(t->th, NULL); /* it has exited: reuse its entry */
            t->started = 0;
            return start(t, k);
        }
    }
    return -EAGAIN;
}

void weft__thr_adopt_orphans(weft_rt *rt)
{
    for (uint32_t k = 0; k < rt->nworkers; k++) {
        weft_worker *w = &rt->workers[k];
        /* Acquire: pairs with weft__isolate_here's release store: the
         * worker's state as its old thread left it is visible to the
         * thread we give it to (through this thread's release CAS). */
        if (atomic_load_explicit(&w->orphaned, memory_order_acquire) &&
            give_thread(rt, k) == 0)
            atomic_store_explicit(&w->orphaned, 0, RLX);
    }
}

weft_worker *weft__iso_claim(weft_rt *rt)
{
    for (uint32_t i = 0; i < rt->nthr; i++) {
        uint32_t zero = 0;
        if (atomic_compare_exchange_strong_explicit(
                &rt->iso[i].iso_busy, &zero, 1, memory_order_acquire, RLX))
            return &rt->iso[i];
    }
    return NULL;
}

void weft__iso_release(weft_worker *iso)
{
    iso->iso_of = NULL;
    /* Release: pairs with weft__iso_claim's acquire CAS. */
    atomic_store_explicit(&iso->iso_busy, 0, memory_order_release);
}

/* The thread that keeps an isolated task runs at the lowest priority:
 * what it computes must not take a core from the worker's new thread.
 * setpriority with a thread id acts on that thread alone (Linux). */
static _Thread_local int lowered,
    old_nice __attribute__((tls_model("initial-exec")));

void weft__thr_lower_priority(void)
{
    if (lowered)
        return;
    errno = 0;
    int n = getpriority(PRIO_PROCESS, 0);
    if (errno == 0 && setpriority(PRIO_PROCESS, 0, 19) == 0) {
        old_nice = n;
        lowered = 1;
    }
}

int weft__thr_restore_priority(void)
{
    if (!lowered)
        return 1;
    if (setpriority(PRIO_PROCESS, 0, old_nice) != 0)
        return 0;
    lowered = 0;
    return 1;
}

/* ---- the worker's half: taking a new identity, and giving it back --- */

int weft__isolate_here(weft_worker *w)
{
    weft_rt *rt = w->rt;
    /* A ring with operations in flight stays with this thread, and so
     * does the worker (uring.c, "Isolation"). */
    if (!weft__uring_isolate(w, NULL))
        return 0;
    weft_worker *iso = weft__iso_claim(rt);
    if (!iso)
        return 0;
    weft__uring_isolate(w, iso);
    /* The identity the task goes on with: w's view of the runtime,
     * w's scheduler frame on this thread (where the task's next switch
     * lands), and queues of its own, which stay empty (nothing is queued
     * on an isolation identity; see weft__sched_ready_local). */
    iso->view = w->view;
    iso->ident = w->ident;
    iso->ctx = w->ctx;
    iso->top1 = NULL; /* keeps weft_yield off its fast path */
    iso->current = w->current;
    iso->cur_slot = w->cur_slot;
    iso->lifo = iso->lifo_runs = 0;
    iso->yq = (weft_slotq){0, 0};
    iso->xbands = 0;
    iso->fair_countdown = FAIR_TICK;
    iso->order = w->order;
    iso->poll_t0 = w->poll_t0;
    atomic_store_explicit(&iso->coarse_ns,
                          atomic_load_explicit(&w->coarse_ns, RLX), RLX);
    atomic_store_explicit(&iso->running, w->cur_slot + 1, RLX);
    atomic_store_explicit(&iso->thr, atomic_load_explicit(&w->thr, RLX), RLX);
    iso->iso_of = w;
    weft__worker_set_self(iso);
    weft__thr_lower_priority();
    w->current = NULL;
    atomic_store_explicit(&w->running, 0, RLX);
    atomic_fetch_add_explicit(&rt->isolations, 1, RLX);
    if (weft__tracing(rt))
        weft__trace_event(rt, w, WEFT_TEV_ISOLATE, iso->cur_slot, 0,
                          atomic_load_explicit(&iso->thr, RLX), 0, 0);
    /* Release: pairs with the monitor's acquire load of orphaned: what
     * this thread wrote to w is visible to w's next thread. */
    atomic_store_explicit(&w->orphaned, 1, memory_order_release);
    return 1;
}

/* The isolated task has switched out to this thread's old scheduler
 * frame: hand whatever is left on the identity back to the runtime and
 * release it. Thread of the isolation identity, whose worker it now is. */
void weft__isolate_retire(weft_worker *iso)
{
    weft_rt *rt = iso->rt;
    weft__worker_set_self(NULL);  /* unparks from here go through the summary */
    weft__thr_restore_priority(); /* the rest is the runtime's work */
    if (iso->lifo)
        signal_task(rt, iso->lifo - 1);
    iso->lifo = 0;
    uint32_t x;
    /* No fork record is ever pushed here (fork.c): slots only. */
    while ((x = weft__deque_take(&iso->dq)) != WEFT_DEQUE_EMPTY)
        signal_task(rt, x);
    int64_t y;
    while ((y = yq_pop(iso)) >= 0)
        signal_task(rt, (uint32_t)y);
    for (int b = 0; b < WEFT_BANDS; b++) {
        if (b == BAND_NORMAL)
            continue;
        while ((x = weft__deque_take(xdq(iso, b))) != WEFT_DEQUE_EMPTY)
            signal_task(rt, x);
        while ((y = byq_pop(iso, b)) >= 0)
            signal_task(rt, (uint32_t)y);
    }
    iso->xbands = 0;
    /* Its task may have parked on a descriptor while every worker slept:
     * nobody would block in the poller for it (poller.c, "Who polls").
     * Before the timers below, which may be that wait's deadline. */
    if (weft__poller_wanted(&rt->poller))
        weft__wake_one(rt);
    /* A timer its task armed before parking with a deadline: it is
     * fired from here, the only thread that owns this heap. */
    uint64_t next;
    while ((next = weft__timer_next(&iso->timers)) != UINT64_MAX &&
           !atomic_load_explicit(&rt->stopping, RLX)) {
        uint64_t now = weft__clock_ns();
        if (next > now) {
            struct timespec ts = {
                0, (long)(next - now < 1000000 ? next - now : 1000000)};
            nanosleep(&ts, NULL);
            continue;
        }
        weft__timer_run(iso, now);
    }
    for (int k = 0; k < 2; k++)
        weft__stack_drain(&rt->pool[k], &iso->cache[k]);
    weft__uring_retire(iso);
    weft__iso_release(iso);
}
