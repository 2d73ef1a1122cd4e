/*
 * sysmon.c - the monitor thread: one per runtime, outside the workers, as
 * Go's sysmon. It keeps the coarse clock that polls are timed on, spots
 * polls that run long, counts them, and asks for preemption.
 *
 * Why a thread and not the workers themselves. A worker busy in a long
 * poll executes none of weft's code, so only another thread can notice.
 * Per-switch clock reads would let workers time every poll exactly, but
 * cost more than the switch itself (worker.c, poll accounting); instead
 * the monitor stores the time in each worker's coarse_ns every tick, workers charge
 * each poll the ticks it spans, and the monitor watches each worker's
 * poll sequence number (st.switches + st.fast_yields, written by the
 * owner anyway): a number unchanged since the last tick means the same
 * poll still runs. So a long poll is measured by the monitor, at no cost
 * to the switch.
 *
 * Judging a poll by its thread's time (docs/decisions/0009). Wall time
 * since the monitor first saw a poll is not what the task took: on a
 * machine whose CPUs are shared with other processes, or a container
 * throttled by its CPU quota, the kernel takes the CPU from the worker's
 * thread for milliseconds (a whole quota period, 100 ms by default), and
 * a poll of a few microseconds of work looked like a hog: it was counted
 * slow and over budget, warned about, escalated, preempted, isolated.
 * So, for a poll the monitor sees at two looks or more, it reads the
 * clocks of the thread running it (w->thr; isolation moves workers
 * between threads) and counts as the poll's time only what that thread
 * ran (its CPU clock) or, blocked in the kernel at both readings (a
 * system call: the task holds the worker all the same), the time
 * between less its waits for a CPU (run_delay in schedstat). Time spent
 * runnable but off the CPU counts for nothing. Rejected: wall time less
 * run_delay alone, since the kernel adds a wait to run_delay only once
 * it is over: a thread waiting now looks as if it ran; the CPU clock
 * alone, which never isolates a task blocked in a system call.
 * Costs: the reads (about 2 + 4 us: a clock_gettime on the thread's CPU
 * clock and /proc/self/task/TID/stat, and schedstat when blocked) are
 * made only for polls seen at two looks, and the switch path is
 * unchanged. The first look has no reading to start from, so up to a
 * tick of the poll's time before the first reading is counted as run
 * (a preemptible task's thread is read at its first look, since the
 * wait behind it is judged from the next one). Without /proc the
 * monitor times polls in wall time, as it did before.
 *
 * Tick. Half the smaller of the quantum and the latency target, within
 * 0.2..5 ms: with the defaults (10 ms, 2 ms), 1 ms. When every worker is
 * asleep there is nothing to watch: the monitor looks again after 10 ms
 * (Go's sysmon backs off to the same), so a poll that starts as the
 * runtime wakes is seen at most 10 ms late. Those looks cost about 40 us
 * of CPU each on this project's VMs (100 a second: 4 ms/s, bench
 * idle_cpu), so once no task has run for DEEP_AFTER (100 ms) the
 * monitor sleeps with no timeout, and the first worker to leave idle
 * wakes it (weft__sysmon_kick; the proof is at the sleep). Waking the
 * monitor on every exit from idle was tried and rejected: on this 2-core
 * machine the extra thread made runnable on the wake-up path took the
 * `wakeup` benchmark's p50 (2 ms idle gaps) from 7 to 34 us. Only the
 * first task after 100 ms of silence pays that now. A worker leaving
 * idle brings its own coarse clock up to date (idle.c, weft__idle_wait).
 *
 * What it does with a long poll, per worker and tick:
 *  - counts it slow once it has run over slow_poll_ns, and a violation
 *    once over the task's budget (quantum x its band's budget percent):
 *    the monitor is the only writer of those two counters;
 *  - runs the tier machine (policy.c) on it: weft__tier_poll_running
 *    while it runs, weft__tier_poll_end (seen) when it is over; warns on
 *    each promotion to WARN or above; a task at YIELD or above that
 *    overruns its budget is asked to yield at its next cooperative point
 *    (yield_req); at ISOLATE its worker is handed to another thread
 *    (iso_req, isolate.c). The per-task tier state lives in rt->tiers,
 *    tagged with the task's generation; the monitor is its only writer.
 *    Tasks above MONITOR are tracked for demotion: their polls that the
 *    monitor never saw running long are good polls;
 *  - asks for preemption of a preemptible task (WEFT_PREEMPTIBLE or
 *    cfg.preempt_all) when it has overrun its budget, or when work on its
 *    worker has waited close to the latency target behind it: a due
 *    timer (waiting since its deadline) or tasks in the worker's deque or
 *    in the runtime's shared queues (waiting since the monitor first saw
 *    them), less the time the task's thread was off the CPU meanwhile.
 *    Preempting at the last tick before the target passes keeps
 *    the wait under it. The request names the poll (preempt_req = its
 *    sequence number + 1) and is delivered with SIGURG (preempt.c); it is
 *    repeated every tick while that poll runs and work waits, since the
 *    handler refuses while the task is in libc or weft's code.
 *
 * The monitor also hands workers whose thread kept an isolated task to
 * spare threads (weft__thr_adopt_orphans), every tick.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../base/clock.h"
#include "../base/futex.h"
#include "policy.h"
#include "runtime.h"
#include "wake.h"
#include "thrclock.h"

#define RLX memory_order_relaxed
#define MS ((uint64_t)1000000)
#define IDLE_SLEEP (10 * MS)  /* between looks while every worker sleeps */
#define DEEP_AFTER (100 * MS) /* no task ran this long: sleep until kicked */

/* rt->mon_sleep. */
enum { MON_AWAKE = 0, MON_NAP = 1, MON_DEEP = WEFT_MON_DEEP };

/* A reading of a worker thread's clocks, and the files it is read from
 * (thrclock.h). */
typedef weft_thr_sample thr_sample;
typedef weft_thr_files mon_thr;

/* The monitor's view of one worker. Monitor only. */
typedef struct mon_worker {
    uint64_t seq;        /* poll sequence number seen last tick */
    uint32_t slot1;      /* task running then, slot + 1 */
    uint32_t counted;    /* COUNT_* already counted for this poll */
    uint64_t since;      /* first tick this poll was seen */
    uint64_t ran;        /* how long it had run at the last look: time
                            its thread ran or was blocked ("Judging a
                            poll by its thread's time") */
    uint64_t lost;       /* time since the first reading not charged
                            to it: its thread was off the CPU */
    uint64_t last_t;     /* wall time up to which ran is counted */
    uint32_t thr1;       /* rt->thr index + 1 of the last reading, 0 if
                            there is none for this poll */
    thr_sample last;     /* that reading */
    uint64_t wait_since; /* first tick queued work was seen behind it */
    uint64_t wait_lost;  /* `lost` then */
    uint64_t due_lost;   /* `lost` when a due timer was first seen */
    int due_seen;        /* a due timer has been seen in this poll */
    uint64_t sent;       /* last request sent for this poll */
    uint64_t made;       /* spawns + wakes on the worker at the tick
                            before this poll was first seen */
    uint64_t made_last;  /* the same, at the last tick */
    uint64_t accounted;  /* the tier machine's scratch for this poll */
    int tiered;          /* the tier machine has seen this poll */
} mon_worker;

enum { COUNT_SLOW = 1, COUNT_VIOLATION = 2 };

/* Tasks above MONITOR, watched for demotion: each tick, the polls they
 * made since the last look that the monitor did not see running long are
 * good polls (a poll shorter than a tick is never seen). Bounded: a task
 * that finds the list full is still escalated, but is demoted only when
 * it next runs long enough to be seen. */
#define TRACK_MAX 256
typedef struct tracked {
    uint32_t slot, gen;  /* gen + 1; 0 = free entry */
    uint64_t polls;      /* its poll count at the last look */
    uint32_t long_polls; /* polls seen running long since then */
} tracked;

struct weft_mon {
    tracked track[TRACK_MAX];
    uint32_t ntrack;
    mon_thr *thr;   /* [rt->nthr] */
    mon_worker w[]; /* [nworkers] */
};

static uint32_t task_gen(weft_rt *rt, uint32_t slot)
{
    return weft_ts_gen(atomic_load_explicit(&rt->hot[slot].state, RLX));
}

/* The task's tier state, fresh if it belongs to an earlier occupant of
 * the slot. Monitor only (its one writer). */
static void tier_load(weft_rt *rt, uint32_t slot, weft_tier_state *s,
                      uint64_t now)
{
    if (!weft__tier_slot_get(rt, slot, task_gen(rt, slot), s))
        weft__tier_reset(s, now);
}

static void tier_store(weft_rt *rt, uint32_t slot, const weft_tier_state *s)
{
    weft_tier_slot *c = &rt->tiers[slot];
    uint64_t w[2] = {0, 0};
    memcpy(w, s, sizeof *s);
    atomic_store_explicit(&c->w[0], w[0], RLX);
    atomic_store_explicit(&c->w[1], w[1], RLX);
    atomic_store_explicit(&c->gen, task_gen(rt, slot) + 1, RLX);
}

static tracked *track_find(struct weft_mon *m, uint32_t slot, uint32_t gen)
{
    for (uint32_t i = 0; i < m->ntrack; i++)
        if (m->track[i].slot == slot && m->track[i].gen == gen + 1)
            return &m->track[i];
    return NULL;
}

static void track_add(weft_rt *rt, struct weft_mon *m, uint32_t slot)
{
    uint32_t gen = task_gen(rt, slot);
    if (track_find(m, slot, gen) || m->ntrack == TRACK_MAX)
        return;
    m->track[m->ntrack++] =
        (tracked){slot, gen + 1, weft__task_polls(&rt->hot[slot]), 0};
}

static unsigned band_of(uint64_t st)
{
    return (unsigned)((st >> WEFT_TS_PRIO_SHIFT) & 15) / 4;
}

/* A promotion to `tier` of the task in `slot`: warn once per escalation
 * to WARN or above. */
static void promoted(weft_rt *rt, uint32_t slot, int tier, uint64_t ran)
{
    if (weft__tracing(rt))
        weft__trace_event(rt, NULL, WEFT_TEV_TIER, slot, (unsigned)tier, 0,
                          weft__task_hgen(rt, slot), ran);
    if (tier < WEFT_TIER_WARN)
        return;
    weft_task t = weft__handle(rt->id, slot, weft__task_hgen(rt, slot));
    char name[16];
    weft__task_name(rt, slot, name);
    weft__policy_warn(rt, t, name, ran);
}

/* Demotions: good polls of the tracked tasks (see TRACK_MAX). */
static void demote_pass(weft_rt *rt, const weft_policy *p, uint64_t now)
{
    struct weft_mon *m = rt->mon;
    for (uint32_t i = 0; i < m->ntrack;) {
        tracked *k = &m->track[i];
        uint64_t st = atomic_load_explicit(&rt->hot[k->slot].state, RLX);
        weft_tier_state s;
        if (weft_ts_gen(st) + 1 != k->gen ||
            weft_ts_state(st) == WEFT_TS_DONE ||
            weft_ts_state(st) == WEFT_TS_FREE) {
            m->track[i] = m->track[--m->ntrack]; /* it has ended */
            continue;
        }
        uint64_t polls = weft__task_polls(&rt->hot[k->slot]);
        uint64_t good = polls - k->polls;
        good = good > k->long_polls ? good - k->long_polls : 0;
        k->polls = polls;
        k->long_polls = 0;
        tier_load(rt, k->slot, &s, now);
        uint64_t cap = WEFT_POLICY_COUNT_MAX;
        for (uint64_t g = 0; g < good && g < cap && s.tier; g++)
            weft__tier_poll_end(p, band_of(st), &s, 0, now, 0);
        tier_store(rt, k->slot, &s);
        if (!s.tier) {
            m->track[i] = m->track[--m->ntrack];
            continue;
        }
        i++;
    }
}

static uint64_t tick_of(const weft_policy *p)
{
    uint64_t t = p->quantum_ns;
    if (p->latency_ns && p->latency_ns < t)
        t = p->latency_ns;
    t /= 2;
    if (t < MS / 5)
        t = MS / 5;
    if (t > 5 * MS)
        t = 5 * MS;
    return t;
}

static uint64_t less(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

/* Has work been queued on w, or for anyone, that w's long poll holds up?
 * Racy reads; a false answer costs one tick. */
static uint64_t made_ready(weft_worker *w)
{
    return atomic_load_explicit(&w->st.spawns, RLX) +
           atomic_load_explicit(&w->st.wakes, RLX);
}

static int work_queued(weft_rt *rt, weft_worker *w, mon_worker *m)
{
    if (atomic_load_explicit(&w->dq.bottom, RLX) >
        atomic_load_explicit(&w->dq.top, RLX))
        return 1;
    /* Tasks the running task spawned or woke during its poll went to
     * its worker's LIFO slot or band queues, which only the owner reads:
     * its counters tell. They count from the tick before the poll was
     * first seen, so a task made ready then by the poll before counts
     * too: if the handler then finds nothing to run (preempt_none), the
     * count starts over. */
    uint64_t made = made_ready(w);
    if (made != m->made) {
        if (atomic_load_explicit(&w->preempt_none, RLX) != m->seq + 1)
            return 1;
        m->made = made;
    }
    if (rt->nworkers == 1 || atomic_load_explicit(&rt->idle, RLX) == 0)
        return weft__inject_len(&rt->inject) || weft__summary_any(&rt->sum);
    return 0;
}

/* ---- judging a poll by its thread's time (header) ----------------------- */

/* Read the clocks of the thread in rt->thr[k] (it runs a worker's poll,
 * so it has not exited: only the monitor joins threads, and the
 * destroyer after the monitor stops). 0 if they cannot be read. */
static int thread_read(weft_rt *rt, uint32_t k, thr_sample *s)
{
    return weft__thr_read(&rt->mon->thr[k],
                          atomic_load_explicit(&rt->thr[k].tid, RLX),
                          rt->thr[k].th, s);
}

/* Add to m->ran the time the poll's thread ran or was blocked between
 * m's last reading and s (thread k), and to m->lost the rest. */
static void account(mon_worker *m, const thr_sample *s, uint32_t k,
                    uint64_t tick)
{
    uint64_t wall = s->t0 > m->last_t ? s->t0 - m->last_t : 0, d;
    if (m->thr1 != k + 1) {
        /* No reading to start from: what it did since the monitor first
         * saw it is unknown; at most a tick is counted. */
        d = wall < tick ? wall : tick;
    } else {
        d = s->cpu > m->last.cpu ? s->cpu - m->last.cpu : 0;
        /* Blocked at both readings (a system call): the time between,
         * less the waits for a CPU it had if it woke meanwhile. */
        if (s->blocked && m->last.blocked) {
            uint64_t rd =
                s->delay > m->last.delay ? s->delay - m->last.delay : 0;
            if (wall > rd && wall - rd > d)
                d = wall - rd;
        }
        m->lost += wall > d ? wall - d : 0;
    }
    m->ran += d;
    m->last = *s;
    m->last_t = s->t1;
    m->thr1 = k + 1;
}

static void request(weft_rt *rt, weft_worker *w, _Atomic uint64_t *req,
                    uint64_t seq)
{
#ifdef WEFT_TSAN
    /* TSan defers asynchronous signals to its next interceptor, whose
     * frames (and weft's below them) the handler would then switch away
     * from or rename: no preemption or isolation in TSan builds (the
     * tests that need them skip there). */
    (void)rt;
    (void)w;
    (void)req;
    (void)seq;
#else
    /* Release: pairs with the handler's acquire load. */
    atomic_store_explicit(req, seq + 1, memory_order_release);
    pthread_kill(weft__thr_of(rt, w), SIGURG);
#endif
}

/* The previous poll on w ended: close it in the tier machine. */
static void poll_over(weft_rt *rt, const weft_policy *p, uint64_t now,
                      mon_worker *m)
{
    if (!m->tiered)
        return;
    uint32_t slot = m->slot1 - 1;
    uint64_t st = atomic_load_explicit(&rt->hot[slot].state, RLX);
    if (weft_ts_gen(st) + 1 ==
        atomic_load_explicit(&rt->tiers[slot].gen, RLX)) {
        weft_tier_state s;
        tier_load(rt, slot, &s, now);
        weft__tier_poll_end(p, band_of(st), &s, m->ran, now, 1);
        tier_store(rt, slot, &s);
        tracked *k = track_find(rt->mon, slot, weft_ts_gen(st));
        if (k)
            k->long_polls++;
    }
    m->tiered = 0;
}

/* A new poll (or none) on w since the last look: close the old one and
 * start watching this one (run: its slot + 1, seq: its number, k: the
 * thread running it). */
static void poll_begin(weft_rt *rt, const weft_policy *p, uint64_t now,
                       weft_worker *w, mon_worker *m, uint32_t run,
                       uint64_t seq, uint32_t k)
{
    poll_over(rt, p, now, m);
    m->seq = seq;
    m->slot1 = run;
    m->since = m->last_t = now;
    m->ran = m->lost = 0;
    m->thr1 = 0;
    m->wait_since = 0;
    m->due_seen = 0;
    m->counted = 0;
    m->sent = 0;
    m->accounted = 0;
    m->made = m->made_last;
    m->made_last = made_ready(w);
    /* A preemptible task may be preempted for the work waiting behind it
     * from its next look on: its thread is read from the start, so that
     * time off the CPU is never blamed on it. Other polls are first read
     * at their second look (header). */
    thr_sample now_s;
    if (run &&
        (atomic_load_explicit(&rt->hot[run - 1].state, RLX) &
         WEFT_TS_PREEMPTIBLE) &&
        thread_read(rt, k, &now_s) && weft__poll_seq(w) == seq) {
        m->last = now_s;
        m->last_t = now_s.t1;
        m->thr1 = k + 1;
    }
}

/* The running poll of task `slot` has run `ran` ns of its thread's time:
 * count it slow and over budget (once each), and, when it is either, run
 * the tier machine on it. *s gets the task's tier state (MONITOR when
 * the machine did not run). */
static void judge(weft_rt *rt, const weft_policy *p, uint64_t now,
                  weft_worker *w, mon_worker *m, uint32_t slot, unsigned band,
                  uint64_t ran, weft_tier_state *s)
{
    uint64_t budget = weft__policy_budget(p, band);
    if (ran > p->slow_poll_ns && !(m->counted & COUNT_SLOW)) {
        m->counted |= COUNT_SLOW;
        atomic_store_explicit(&w->st.slow_polls,
                              atomic_load_explicit(&w->st.slow_polls, RLX) + 1,
                              RLX);
    }
    int violation = 0;
    if (ran > budget && !(m->counted & COUNT_VIOLATION)) {
        m->counted |= COUNT_VIOLATION;
        violation = 1;
        atomic_store_explicit(&w->st.violations,
                              atomic_load_explicit(&w->st.violations, RLX) + 1,
                              RLX);
    }
    s->tier = WEFT_TIER_MONITOR;
    if (ran <= p->slow_poll_ns && ran <= budget)
        return;
    tier_load(rt, slot, s, now);
    _Atomic uint32_t *v = &rt->tiers[slot].violations;
    if (atomic_load_explicit(&rt->tiers[slot].gen, RLX) !=
        task_gen(rt, slot) + 1)
        atomic_store_explicit(v, 0, RLX); /* the task's first */
    if (violation)
        atomic_store_explicit(v, atomic_load_explicit(v, RLX) + 1, RLX);
    int t = weft__tier_poll_running(p, band, s, ran, now, &m->accounted);
    tier_store(rt, slot, s);
    m->tiered = 1;
    if (t > 0) {
        track_add(rt, rt->mon, slot);
        promoted(rt, slot, t, ran);
    }
}

/* A preemptible task's poll: preempt it when work waits behind it close
 * to the latency target, or when it is over budget; isolate it at the
 * Isolate tier when work waits and preemption keeps failing. */
static void act_preemptible(weft_rt *rt, const weft_policy *p, uint64_t tick,
                            uint64_t now, weft_worker *w, mon_worker *m,
                            uint64_t seq, uint64_t ran, uint64_t budget,
                            unsigned tier)
{
    /* The wait this task causes is the part of it during which its
     * thread ran: while the kernel gives the CPU to others, preempting
     * it would make no one wait less. So each wait is less the time
     * lost since the monitor first saw it. */
    uint64_t waited = 0, due = weft__timer_next(&w->timers);
    if (due <= now) {
        if (!m->due_seen)
            m->due_seen = 1, m->due_lost = m->lost;
        waited = less(now - due, m->lost - m->due_lost);
    } else {
        m->due_seen = 0;
    }
    if (work_queued(rt, w, m)) {
        if (!m->wait_since)
            m->wait_since = now, m->wait_lost = m->lost;
        uint64_t q = less(now - m->wait_since, m->lost - m->wait_lost);
        if (q > waited)
            waited = q;
    }
    int late = p->latency_ns && (waited || due <= now) &&
               waited + tick >= p->latency_ns;
    /* Over budget with nothing seen waiting: there may be tasks in the
     * worker's private queues (yield queue); ask once per budget, not
     * every tick. A preemptible task that reached the Isolate tier while
     * work waits behind it keeps refusing (it is always in libc, say):
     * it is isolated. One that runs on because nothing else wants its
     * worker is left alone (giving it away would serve no one). */
    int over = ran > budget && (!m->sent || now - m->sent >= budget);
    if (tier >= WEFT_TIER_ISOLATE && late && ran > 2 * budget &&
        (!m->sent || now - m->sent >= tick)) {
        m->sent = now;
        request(rt, w, &w->iso_req, seq);
    } else if (late || over) {
        m->sent = now;
        request(rt, w, &w->preempt_req, seq);
    }
}

static void watch(weft_rt *rt, const weft_policy *p, uint64_t tick,
                  uint64_t now, weft_worker *w, mon_worker *m)
{
    /* Acquire: pairs with poll_turn's release store (worker.c). It also
     * makes the thread running the poll visible: that thread stored its
     * tid and w->thr (isolate.c, thread_main) before its first poll. */
    uint32_t run = atomic_load_explicit(&w->running, memory_order_acquire);
    uint64_t seq = weft__poll_seq(w);
    uint32_t k = atomic_load_explicit(&w->thr, RLX);
    if (!run || seq != m->seq || run != m->slot1) {
        poll_begin(rt, p, now, w, m, run, seq, k);
        return;
    }
    m->made_last = made_ready(w);
    /* Time the poll by its thread's clocks. The reading must be of this
     * poll: the thread may have ended it meanwhile (then the next look
     * closes it). Without a reading (no /proc), wall time. */
    thr_sample now_s;
    int have = thread_read(rt, k, &now_s);
    if (weft__poll_seq(w) != seq ||
        atomic_load_explicit(&w->running, RLX) != run)
        return;
    if (have) {
        now = now_s.t0;
        account(m, &now_s, k, tick);
    } else {
        m->ran += now > m->last_t ? now - m->last_t : 0;
        m->last_t = now;
        m->thr1 = 0;
    }
    uint32_t slot = run - 1;
    uint64_t ran = m->ran;
    uint64_t st = atomic_load_explicit(&rt->hot[slot].state, RLX);
    unsigned band = band_of(st);
    uint64_t budget = weft__policy_budget(p, band);
    weft_tier_state s;
    judge(rt, p, now, w, m, slot, band, ran, &s);
    if (st & WEFT_TS_PREEMPTIBLE) {
        act_preemptible(rt, p, tick, now, w, m, seq, ran, budget, s.tier);
        return;
    }
    /* Not preemptible. Yield tier: asked to yield at its next cooperative
     * point; Isolate tier: its worker goes to another thread. */
    if (s.tier >= WEFT_TIER_YIELD && ran > budget)
        atomic_store_explicit(&w->yield_req, seq + 1, RLX);
    if (s.tier >= WEFT_TIER_ISOLATE && (!m->sent || now - m->sent >= tick)) {
        m->sent = now;
        request(rt, w, &w->iso_req, seq);
    }
}

/* Context switches into tasks so far, all workers. O(workers), on an idle
 * runtime's look only. */
static uint64_t switches(weft_rt *rt)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < rt->nworkers; i++)
        n += atomic_load_explicit(&rt->workers[i].st.switches, RLX);
    return n;
}

/* The flight recorder is written out on SIGQUIT (obs/dump.c sets
 * trace_req and kicks the monitor) and after an isolation, here: on the
 * monitor's thread, where a file can be written (not in the handler),
 * by obs/trace.c's writer. The monitor watches no poll meanwhile. */
static void trace_triggers(weft_rt *rt, uint64_t *isolations)
{
    uint64_t iso = atomic_load_explicit(&rt->isolations, RLX);
    int isolated = iso != *isolations;
    *isolations = iso;
    /* Acquire: pairs with weft__obs_trace_begin's release store. The
     * writer itself checks, under its lock, that a flight recorder is
     * still on. */
    int (*flush)(weft_rt *, const char *) =
        atomic_load_explicit(&rt->trace_flush, memory_order_acquire);
    if (!flush || !atomic_load_explicit(&rt->trace_on, RLX))
        return;
    if (atomic_exchange_explicit(&rt->trace_req, 0, RLX))
        flush(rt, "SIGQUIT");
    else if (isolated)
        flush(rt, "an isolation");
}

static void *sysmon_main(void *arg)
{
    weft_rt *rt = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals go to others */
    weft_policy p;
    uint64_t idle_since = 0; /* since when no task has run */
    uint64_t seen = 0;       /* switches() at that look */
    weft_watchdog wd = {0};  /* WEFT_DEBUG builds (watchdog.c) */
    uint64_t wd_bound = weft__watchdog_bound_ns();
    uint64_t isolations = 0; /* rt->isolations at the last look */
    while (!atomic_load_explicit(&rt->mon_stop, memory_order_acquire)) {
        trace_triggers(rt, &isolations);
        weft__policy_read(rt, &p);
        uint64_t tick = tick_of(&p), now = weft__clock_ns();
        for (uint32_t i = 0; i < rt->nworkers; i++)
            atomic_store_explicit(&rt->workers[i].coarse_ns, now, RLX);
        /* Isolated tasks' polls are timed on their identity's clock. */
        int isolated = 0;
        for (uint32_t i = 0; i < rt->nthr; i++)
            if (atomic_load_explicit(&rt->iso[i].iso_busy, RLX)) {
                atomic_store_explicit(&rt->iso[i].coarse_ns, now, RLX);
                isolated = 1;
            }
        if (atomic_load_explicit(&rt->idle, RLX) == rt->nworkers) {
            /* Nothing to watch: a longer sleep (header), and after
             * DEEP_AFTER of quiet with no isolated task running either, a
             * sleep with no end until a worker wakes (weft__sysmon_kick)
             * or the destroyer does. Quiet means no task ran since the
             * last look, not merely every worker asleep at each look:
             * the `wakeup` benchmark wakes a task every 2 ms, always
             * between two looks, and with "asleep at each look" every
             * one of its wake-ups also woke the monitor (p50 4-8 -> 11-17
             * us, measured). */
            uint64_t sw = switches(rt);
            if (!idle_since || sw != seen)
                idle_since = now, seen = sw;
            int deep = !isolated && now - idle_since >= DEEP_AFTER;
            uint32_t how = deep ? MON_DEEP : MON_NAP;
            /* The watchdog looks whenever every worker sleeps, and
             * shortens the sleep with no end to a tenth of its bound so
             * that it looks again (watchdog.c). */
            uint64_t until = deep ? 0 : now + IDLE_SLEEP;
            if (wd_bound) {
                weft__watchdog_look(rt, &wd, now);
                if (deep)
                    until = now + wd_bound / 10;
            }
            /* seq_cst store, then seq_cst load of idle: pairs with
             * weft__sysmon_kick's caller, which decrements idle (seq_cst)
             * and then loads mon_sleep (seq_cst). In their single total
             * order either the worker's load follows our store (it sees
             * MON_DEEP and wakes us) or its decrement precedes our load of
             * idle (we see a worker awake and do not sleep): never both
             * missed. A nap ends by itself and needs no re-check. */
            atomic_store_explicit(&rt->mon_sleep, how, memory_order_seq_cst);
            if ((!deep ||
                 atomic_load_explicit(&rt->idle, memory_order_seq_cst) ==
                     rt->nworkers) &&
                !atomic_load_explicit(&rt->mon_stop, RLX))
                weft__futex_wait(&rt->mon_sleep, how, until);
            atomic_store_explicit(&rt->mon_sleep, MON_AWAKE, RLX);
            continue;
        }
        idle_since = 0;
        weft__thr_adopt_orphans(rt);
        for (uint32_t i = 0; i < rt->nworkers; i++)
            watch(rt, &p, tick, now, &rt->workers[i], &rt->mon->w[i]);
        demote_pass(rt, &p, now);
        weft__poller_nap(rt, tick);
    }
    return NULL;
}

int weft__sysmon_start(weft_rt *rt)
{
    rt->mon =
        calloc(1, sizeof(struct weft_mon) + rt->nworkers * sizeof(mon_worker));
    if (!rt->mon)
        return -ENOMEM;
    rt->mon->thr = calloc(rt->nthr, sizeof(mon_thr));
    if (!rt->mon->thr) {
        free(rt->mon);
        rt->mon = NULL;
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < rt->nthr; i++)
        weft__thr_files_init(&rt->mon->thr[i]);
    for (uint32_t i = 0; i < rt->nworkers; i++)
        atomic_store_explicit(&rt->workers[i].coarse_ns, weft__clock_ns(), RLX);
    weft__preempt_init();
    if (pthread_create(&rt->mon_thread, NULL, sysmon_main, rt)) {
        free(rt->mon->thr);
        free(rt->mon);
        rt->mon = NULL;
        return -EAGAIN;
    }
    rt->mon_started = 1;
    return 0;
}

void weft__sysmon_kick(weft_rt *rt)
{
    uint32_t deep = MON_DEEP;
    if (atomic_compare_exchange_strong_explicit(&rt->mon_sleep, &deep,
                                                MON_AWAKE, RLX, RLX))
        weft__futex_wake(&rt->mon_sleep, 1);
}

void weft__sysmon_stop_preemptible(weft_rt *rt, uint32_t started)
{
    for (int round = 0; round < 1000; round++) {
        int left = 0;
        for (uint32_t i = 0; i < started; i++) {
            weft_worker *w = &rt->workers[i];
            uint32_t run = atomic_load_explicit(&w->running, RLX);
            if (!run || !(atomic_load_explicit(&rt->hot[run - 1].state, RLX) &
                          WEFT_TS_PREEMPTIBLE))
                continue;
            left = 1;
            /* The worker's thread exists until the destroyer joins it
             * (pthread_kill on one that has exited is harmless then).
             * The handler switches to the scheduler loop, which exits
             * (weft__worker_preempt). */
            request(rt, w, &w->preempt_req, weft__poll_seq(w));
        }
        if (!left)
            return;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

void weft__sysmon_stop(weft_rt *rt)
{
    if (!rt->mon_started)
        return;
    /* Release: pairs with the monitor's acquire load of mon_stop. */
    atomic_store_explicit(&rt->mon_stop, 1, memory_order_release);
    atomic_store_explicit(&rt->mon_sleep, 0, RLX);
    weft__futex_wake(&rt->mon_sleep, 1);
    pthread_join(rt->mon_thread, NULL);
    rt->mon_started = 0;
    for (uint32_t i = 0; i < rt->nthr; i++)
        weft__thr_files_close(&rt->mon->thr[i]);
    free(rt->mon->thr);
    free(rt->mon);
    rt->mon = NULL;
}
