/*
 * dump.c - weft_task_info_get, weft_dump, and the SIGQUIT dump.
 *
 * Everything here reads state that others write, without taking a lock a
 * task path takes: state words and published per-worker words with
 * relaxed (or, for a handle's generation, acquire) loads, a task's name
 * and wait record as the task or its spawner left them. The result is a
 * snapshot that may be a little inconsistent while tasks run (a task seen
 * PARKED with the wait record of its next wait, a worker's counters a few
 * events apart); it is exact at quiescence.
 *
 * Running or runnable. The state word does not tell a queued task from a
 * running one (sched/task.h: one state on purpose). Each worker publishes
 * the slot it runs (weft_worker.running, one relaxed owner store per
 * switch, on the line the switch counters already dirty), and a RUNNABLE
 * task that some worker publishes is reported RUNNING on it.
 *
 * Inline joins. A task whose join runs the child on its own stack
 * (sched/task.c, run_inline) stays RUNNABLE in its state
 * word, but it is blocked on the child as surely as a parked joiner: it
 * records a "join" wait for the time, and is reported PARKED in "join"
 * while no worker runs it.
 *
 * Live tasks are found by scanning every slot's state word up to
 * max_tasks: O(max_tasks), which a dump can afford, and no list that
 * spawn would have to maintain.
 *
 * Output. One formatter serves weft_dump (stdio) and the SIGQUIT handler
 * (write(2) to fd 2): it formats into a small buffer by hand, without
 * printf, so it is async-signal-safe. Line format: docs/observe.md.
 *
 * SIGQUIT. When a runtime is created with cfg.dump_on_sigquit the handler
 * is installed (the first such runtime saves the previous disposition; the
 * last one destroyed restores it). The handler dumps every live runtime
 * that asked, in the handler itself: the dump takes no lock (only a try of
 * each runtime's baseline lock: if the interrupted thread holds it, that
 * runtime's counters are shown since its start) and allocates nothing.
 * Unlike Go, the process continues afterwards. A runtime being destroyed
 * leaves the registry first and then waits (weft__obs_rt_gone) until no
 * handler is running, so a handler never reads an unmapped arena: a
 * handler announces itself (sq_active) before it reads the registry, and
 * the destroyer reads sq_active after clearing its registry entry, with a
 * seq_cst fence on each side (store-then-load on both sides: acquire and
 * release alone would let both loads miss the other store).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "../base/clock.h"
#include "obs.h"
#include "../sched/policy.h"
#include "../sched/uring.h"

#define RLX memory_order_relaxed

static const char *const wait_names[WEFT_WK_COUNT] = {
    [WEFT_WK_NONE] = "park",
    [WEFT_WK_MUTEX] = "mutex",
    [WEFT_WK_COND] = "cond",
    [WEFT_WK_SEM] = "sem",
    [WEFT_WK_WG] = "wg",
    [WEFT_WK_EVENT] = "event",
    [WEFT_WK_CHAN_SEND] = "chan send",
    [WEFT_WK_CHAN_RECV] = "chan recv",
    [WEFT_WK_SELECT] = "select",
    [WEFT_WK_SLEEP] = "sleep",
    [WEFT_WK_JOIN] = "join",
    [WEFT_WK_PARK] = "park",
    [WEFT_WK_JOIN_INLINE] = "join",
    [WEFT_WK_FORK] = "join",
    [WEFT_WK_FD_READ] = "fd read",
    [WEFT_WK_FD_WRITE] = "fd write",
    [WEFT_WK_FD_RW] = "fd read write",
    [WEFT_WK_BLOCKING] = "blocking",
};

const char *weft__obs_wait_name(unsigned k)
{
    return k < WEFT_WK_COUNT && wait_names[k] ? wait_names[k] : "?";
}

/* ---- task info --------------------------------------------------------- */

/* Fill *o for slot `slot` of rt, whose state word was s (not FREE).
 * Returns 0, or -ESRCH when the slot changed hands while it was read.
 * Any thread, signal safe. */
static int task_snapshot(weft_rt *rt, uint32_t slot, uint64_t s,
                         weft_task_info *o)
{
    weft_tcb_cold *c = &rt->cold[slot];
    memset(o, 0, sizeof *o);
    o->worker = -1;
    o->wait = "";
    o->priority = (int)((s >> WEFT_TS_PRIO_SHIFT) & 15);
    if (s & WEFT_TS_DETACHED)
        o->flags |= WEFT_DETACHED;
    if (s & WEFT_TS_PREEMPTIBLE)
        o->flags |= WEFT_PREEMPTIBLE;
    switch (weft_ts_state(s)) {
    case WEFT_TS_PARKED: {
        o->state = WEFT_STATE_PARKED;
        unsigned k = atomic_load_explicit(&c->wait_kind, RLX);
        o->wait = wait_names[k < WEFT_WK_COUNT ? k : WEFT_WK_NONE];
        o->wait_obj = atomic_load_explicit(&c->wait_obj, RLX);
        break;
    }
    case WEFT_TS_DONE:
        o->state = WEFT_STATE_DONE;
        break;
    default:
        /* On a worker, or on the thread of an isolation identity
         * (sched/isolate.c, -2): running, on no worker. */
        o->worker = weft__slot_running(rt, slot);
        o->state = o->worker == -1 ? WEFT_STATE_RUNNABLE : WEFT_STATE_RUNNING;
        if (o->worker < 0)
            o->worker = -1;
        unsigned k = atomic_load_explicit(&c->wait_kind, RLX);
        if (o->state == WEFT_STATE_RUNNABLE &&
            (k == WEFT_WK_JOIN || k == WEFT_WK_JOIN_INLINE)) {
            /* Joining a child that runs inline on its stack (header). */
            o->state = WEFT_STATE_PARKED;
            o->wait = wait_names[WEFT_WK_JOIN];
            o->wait_obj = atomic_load_explicit(&c->wait_obj, RLX);
        }
    }
    /* Tier and violations: the monitor's, when they are this task's
     * (sched/sysmon.c tags them with the generation). */
    o->tier = WEFT_TIER_MONITOR;
    o->violations = 0;
    weft_tier_state ts;
    if (weft__tier_slot_get(rt, slot, weft_ts_gen(s), &ts)) {
        o->tier = ts.tier;
        o->violations = atomic_load_explicit(&rt->tiers[slot].violations, RLX);
    }
    o->cpu_ns = atomic_load_explicit(&c->cpu_ns, RLX);
    /* Polls share the word of the entry argument until the task first
     * runs (sched/task.h): 0 before that. */
    o->polls = weft__task_polls(&rt->hot[slot]);
    /* The name is plain memory, written by the spawner before the task
     * was handed over; copied racily and forced to end. */
    weft__name_get(&rt->names[slot], s, o->name);
    /* Still the same task? Its generation moves on when it is reaped.
     * Acquire fence: the reads above come before this one (a seqlock
     * reader's order; the writer's side is reap's release and the next
     * spawner's reservation). */
#ifndef WEFT_TSAN /* TSan models no fences (and GCC refuses them) */
    atomic_thread_fence(memory_order_acquire);
#endif
    uint64_t again = atomic_load_explicit(&rt->hot[slot].state, RLX);
    if ((again ^ s) & WEFT_TS_GEN_MASK || weft_ts_state(again) == WEFT_TS_FREE)
        return -ESRCH;
    return 0;
}

int weft_task_info_get(weft_task t, weft_task_info *out)
{
    if (!out)
        return -EINVAL;
    /* As task.c resolves handles: registry, slot range, generation. */
    weft_rt *rt = weft__rt_by_id(weft__handle_rt(t));
    uint32_t slot = weft__handle_slot(t);
    if (!rt || slot >= rt->cfg.max_tasks)
        return -ESRCH;
    /* Acquire: pairs with the finisher's release (DONE) and reap's
     * release, as in task.c's resolve. */
    uint64_t s =
        atomic_load_explicit(&rt->hot[slot].state, memory_order_acquire);
    if (weft_ts_state(s) == WEFT_TS_FREE ||
        weft__hgen(rt, s) != weft__handle_gen(t))
        return -ESRCH;
    return task_snapshot(rt, slot, s, out);
}

/* ---- a signal-safe line writer ---------------------------------------- */

typedef struct out {
    FILE *f; /* stdio target, or NULL: write(2) to fd */
    int fd;
    int err;
    size_t n;
    char buf[512];
} out;

static void flush(out *o)
{
    if (o->f) {
        if (o->n && fwrite(o->buf, 1, o->n, o->f) != o->n)
            o->err = 1;
    } else {
        for (size_t done = 0; done < o->n;) {
            ssize_t k = write(o->fd, o->buf + done, o->n - done);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                o->err = 1;
                break;
            }
            done += (size_t)k;
        }
    }
    o->n = 0;
}

static void put_c(out *o, char c)
{
    if (o->n == sizeof o->buf)
        flush(o);
    o->buf[o->n++] = c;
}

static void put_s(out *o, const char *s)
{
    while (*s)
        put_c(o, *s++);
}

static void put_u(out *o, uint64_t v)
{
    char d[20];
    int k = 0;
    do
        d[k++] = (char)('0' + v % 10);
    while ((v /= 10));
    while (k)
        put_c(o, d[--k]);
}

static void put_x(out *o, uintptr_t v)
{
    char d[2 * sizeof v];
    int k = 0;
    do
        d[k++] = "0123456789abcdef"[v & 15];
    while ((v >>= 4));
    put_s(o, "0x");
    while (k)
        put_c(o, d[--k]);
}

/* " key=value" */
static void put_kv(out *o, const char *key, uint64_t v)
{
    put_c(o, ' ');
    put_s(o, key);
    put_c(o, '=');
    put_u(o, v);
}

/* " key=[text]": brackets hold values that may contain spaces; characters
 * that would break the line or the brackets are shown as '?'. */
static void put_bracket(out *o, const char *key, const char *s)
{
    put_c(o, ' ');
    put_s(o, key);
    put_s(o, "=[");
    for (; *s; s++)
        put_c(o, (*s < 32 || *s == ']' || *s == 127) ? '?' : *s);
    put_c(o, ']');
}

/* ---- the dump ---------------------------------------------------------- */

static const char *state_name(int st)
{
    switch (st) {
    case WEFT_STATE_RUNNABLE:
        return "runnable";
    case WEFT_STATE_RUNNING:
        return "running";
    case WEFT_STATE_PARKED:
        return "parked";
    default:
        return "done";
    }
}

static void put_counters(out *o, const weft_stats *s)
{
    put_kv(o, "polls", s->polls);
    put_kv(o, "spawns", s->spawns);
    put_kv(o, "steals", s->steals);
    put_kv(o, "steal_attempts", s->steal_attempts);
    put_kv(o, "yields", s->yields);
    put_kv(o, "parks", s->parks);
    put_kv(o, "wakes", s->wakes);
    put_kv(o, "slow_polls", s->slow_polls);
    put_kv(o, "violations", s->violations);
    put_kv(o, "preemptions", s->preemptions);
    put_kv(o, "busy_ms", s->busy_ns / 1000000);
    put_kv(o, "idle_ms", s->idle_ns / 1000000);
}

static void dump_worker(out *o, weft_rt *rt, unsigned i, uint64_t now, int base)
{
    weft_worker *w = &rt->workers[i];
    weft_stats s;
    weft__obs_worker(rt, i, now, base, &s);
    uint32_t run = atomic_load_explicit(&w->running, RLX);
    put_s(o, "worker ");
    put_u(o, i);
    if (run) {
        char name[16];
        weft__task_name(rt, run - 1, name);
        put_s(o, " running");
        put_kv(o, "task", run - 1);
        put_bracket(o, "name", name);
    } else if (atomic_load_explicit(&w->sleep_since, RLX)) {
        put_s(o, " asleep");
    } else {
        put_s(o, " idle");
    }
    put_counters(o, &s);
    put_c(o, '\n');
}

static void dump_task(out *o, weft_rt *rt, uint32_t slot,
                      const weft_task_info *ti)
{
    put_s(o, "task ");
    put_u(o, slot);
    put_c(o, ' ');
    put_s(o, state_name(ti->state));
    put_s(o, " worker=");
    if (ti->worker < 0)
        put_c(o, '-');
    else
        put_u(o, (unsigned)ti->worker);
    put_kv(o, "prio", (unsigned)ti->priority);
    put_kv(o, "tier", (unsigned)ti->tier);
    put_kv(o, "cpu_ms", ti->cpu_ns / 1000000);
    put_kv(o, "polls", ti->polls);
    put_kv(o, "violations", ti->violations);
    put_s(o, " wait=[");
    if (ti->state == WEFT_STATE_PARKED &&
        (ti->wait == wait_names[WEFT_WK_FD_READ] ||
         ti->wait == wait_names[WEFT_WK_FD_WRITE] ||
         ti->wait == wait_names[WEFT_WK_FD_RW])) {
        /* A descriptor: its number (the object is fd + 1, io/fd.c), then
         * the direction(s) the name ends with. */
        put_s(o, "fd ");
        put_u(o, (uintptr_t)ti->wait_obj - 1);
        put_s(o, ti->wait + 2);
    } else if (ti->state == WEFT_STATE_PARKED) {
        put_s(o, ti->wait);
        if (ti->wait_obj) {
            put_c(o, ' ');
            put_x(o, (uintptr_t)ti->wait_obj);
        }
        /* A join's object is the joined task's TCB: name its slot. */
        const weft_tcb *j = ti->wait_obj;
        if (ti->wait == wait_names[WEFT_WK_JOIN] && j >= rt->hot &&
            j < rt->hot + rt->cfg.max_tasks) {
            put_s(o, " task=");
            put_u(o, (uint64_t)(j - rt->hot));
        }
    } else {
        put_c(o, '-');
    }
    put_c(o, ']');
    put_bracket(o, "name", ti->name);
    put_c(o, '\n');
}

static const char *fair_name(int rule)
{
    return rule == WEFT_FAIR_LOTTERY  ? "lottery"
           : rule == WEFT_FAIR_STRICT ? "strict"
                                      : "drr";
}

/* Dump rt to o. in_signal: only try the baseline lock. */
static void dump_rt(out *o, weft_rt *rt, int in_signal)
{
    uint64_t now = weft__clock_ns();
    int base = weft__obs_lock(rt, in_signal);
    weft_stats tot;
    weft__obs_totals(rt, now, base, &tot);
    put_s(o, "weft");
    put_kv(o, "rt", rt->id);
    put_kv(o, "workers", rt->nworkers);
    put_kv(o, "live", tot.live);
    put_kv(o, "max_tasks", rt->cfg.max_tasks);
    put_s(o, " fairness=");
    put_s(o, fair_name(atomic_load_explicit(&rt->fair_rule, RLX)));
    put_s(o, base ? " counters=since_reset" : " counters=since_start");
    put_c(o, '\n');
    put_s(o, "total");
    put_counters(o, &tot);
    put_kv(o, "io_waits", tot.io_waits);
    put_kv(o, "io_events", tot.io_events);
    put_kv(o, "io_polls", tot.io_polls + tot.io_blocking_polls);
    put_kv(o, "blocking_calls", tot.blocking_calls);
    put_kv(o, "blocking_threads", tot.blocking_threads);
    /* The I/O backend, and why not io_uring when cfg.io asked for it
     * (weft_stats.io_fallback; weft.h). */
    put_s(o, tot.io_backend == WEFT_IO_URING ? " io_backend=uring"
                                             : " io_backend=epoll");
    put_kv(o, "io_uring_ops", tot.io_uring_ops);
    if (tot.io_fallback) {
        put_s(o, " io_fallback=");
        put_s(o, weft__uring_fb_name((int)tot.io_fallback));
        put_kv(o, "io_fallback_errno", tot.io_fallback_errno);
    }
    put_c(o, '\n');
    for (unsigned i = 0; i < rt->nworkers; i++)
        dump_worker(o, rt, i, now, base);
    if (base)
        weft__obs_unlock(rt);
    uint64_t tasks = 0;
    for (uint32_t slot = 0; slot < rt->cfg.max_tasks; slot++) {
        uint64_t s = atomic_load_explicit(&rt->hot[slot].state, RLX);
        weft_task_info ti;
        if (weft_ts_state(s) == WEFT_TS_FREE || task_snapshot(rt, slot, s, &ti))
            continue;
        dump_task(o, rt, slot, &ti);
        tasks++;
    }
    put_s(o, "end");
    put_kv(o, "rt", rt->id);
    put_kv(o, "tasks", tasks);
    put_c(o, '\n');
    flush(o);
}

int weft_dump(weft_rt *rt, FILE *f)
{
    if (!rt || !f)
        return -EINVAL;
    out o = {.f = f};
    dump_rt(&o, rt, 0);
    if (fflush(f) || o.err)
        return -EIO;
    return 0;
}

/* ---- SIGQUIT ------------------------------------------------------------ */

static pthread_mutex_t sq_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned sq_users;          /* runtimes that asked; under sq_lock */
static struct sigaction sq_old;    /* the disposition before; sq_lock */
static _Atomic unsigned sq_active; /* handlers running now */

static void on_sigquit(int sig)
{
    (void)sig;
    int saved = errno;
    atomic_fetch_add_explicit(&sq_active, 1, RLX);
    /* seq_cst: orders our announcement before the registry loads below;
     * pairs with the fence in weft__obs_rt_gone (header). */
    atomic_thread_fence(memory_order_seq_cst);
    for (uint32_t id = 1; id < WEFT_REGISTRY; id++) {
        weft_rt *rt = weft__rt_by_id(id);
        if (rt && rt->obs_sigquit) {
            out o = {.fd = 2};
            dump_rt(&o, rt, 1);
            /* A flight recorder is written by the monitor, not here (a
             * file, a sort: not async-signal-safe; sysmon.c). */
            if (atomic_load_explicit(&rt->trace_on, RLX) &&
                atomic_load_explicit(&rt->trace_wrap, RLX)) {
                atomic_store_explicit(&rt->trace_req, 1, RLX);
                weft__sysmon_kick(rt);
            }
        }
    }
    /* Release: our reads of the arena happen before the destroyer's
     * acquire load that sees the count drop, and so before the unmap. */
    atomic_fetch_sub_explicit(&sq_active, 1, memory_order_release);
    errno = saved;
}

void weft__obs_sigquit_add(weft_rt *rt)
{
    pthread_mutex_lock(&sq_lock);
    if (!sq_users++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigquit;
        sa.sa_flags = SA_RESTART | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGQUIT, &sa, &sq_old);
    }
    rt->obs_sigquit = 1;
    pthread_mutex_unlock(&sq_lock);
}

void weft__obs_rt_gone(weft_rt *rt)
{
    if (!rt->obs_sigquit)
        return;
    /* seq_cst: orders the caller's registry clear before the load of
     * sq_active; pairs with the fence in on_sigquit (header). */
    atomic_thread_fence(memory_order_seq_cst);
    /* Acquire: pairs with the handler's release decrement. */
    while (atomic_load_explicit(&sq_active, memory_order_acquire))
        sched_yield();
    pthread_mutex_lock(&sq_lock);
    if (!--sq_users)
        sigaction(SIGQUIT, &sq_old, NULL);
    pthread_mutex_unlock(&sq_lock);
}
