/*
 * worker.c - a worker's run loop, its run order, and every context switch.
 *
 * Problem. A switch between two tasks should cost what the hardware
 * charges for saving and restoring the callee-saved registers, plus the
 * few loads that pick the next task. Going through a scheduler context
 * (task -> scheduler -> task) doubles that, so a task that yields, parks or
 * ends switches straight to the next task when there is one, and to the
 * worker's scheduler context (its thread stack) only when there is none.
 *
 * Finishing a switch-out. A task that parks or ends cannot publish that
 * itself: until its registers are saved and its stack is left, another
 * worker must not resume it, and a dead task's stack must not be reused.
 * So every switch carries a message to the context it enters: the task
 * that left, tagged with what it did (YIELD, PARK, DEAD). The entered side
 * runs after_switch() first thing and completes the departure: it queues
 * a yielder, publishes a parker as PARKED (or requeues it when a wake-up
 * raced with the park), releases a dead task's stack and publishes it as
 * DONE. This is Go's "park_m on g0" without the trip through g0.
 *
 * Run order (DESIGN.md §4), each step only when the previous found
 * nothing: the LIFO slot (bounded to LIFO_MAX consecutive runs), the
 * deque, the signalled tasks of the summary tree, the yield queue, the
 * injection queue, then stealing from another worker's deque (not for a
 * yield: the yielder is itself runnable); every FAIR_TICK-th decision
 * looks at the injection queue first so it is never starved, and shares
 * yielded tasks when workers sleep. In mesh mode the incoming mailboxes
 * come after the deque, and stealing is the last resort (see "mesh
 * mode").
 *
 * Sleeping (the no-lost-wake-up argument). A worker with nothing to do
 * announces itself: sleep = 1, then an RMW idle += 1. It then re-checks
 * every place work can appear from another thread (summary top words,
 * the injection queue, every deque, the stop flag) and futex-waits on
 * `sleep` only if all are empty. A producer publishes its work, then does
 * an RMW idle += 0 and, if it read non-zero, clears some sleeper's `sleep`
 * (CAS 1 -> 0) and wakes it. The two RMWs on `idle` are ordered in its
 * modification order, and each reads the other's value or a later one:
 * - the sleeper's RMW first: the producer's RMW (acquire) reads a value
 *   from the sleeper's release sequence, so it sees idle >= 1 and the
 *   sleep = 1 stored before it, and wakes the worker (a futex wait on a
 *   word already 0 returns at once);
 * - the producer's RMW first: the sleeper's RMW (acquire) reads from it,
 *   so the producer's publication happens-before the sleeper's re-check,
 *   which sees the work and does not sleep.
 * Either way no work is left with every worker asleep. The edge is on a
 * variable, not a stand-alone fence, so ThreadSanitizer sees it too
 * (DESIGN.md §9). tests/unit/test_summary.c wakes parked tasks 10^6 times
 * from plain threads, and tests/stress the same across workers: a lost
 * wake-up hangs them.
 *
 * Wake-ups for new work on a worker's own deque (notify) skip the RMW:
 * see notify() for why that is safe.
 *
 * Bands (priorities, DESIGN.md §6). Priority 0..15 lives in the state
 * word (bits 8-11); band = priority / 4 (critical, high, normal, low).
 * The structures above (LIFO slot, deque, yield queue) are the normal
 * band's; each other band has its own Chase-Lev deque (bdq, stealable)
 * and its own yield queue (byq, owner-only, through the same rt->link),
 * and w->xbands has bit b set while band b's queues may hold tasks. The
 * LIFO slot takes normal-band tasks only; every other way in (spawn,
 * unpark, the summary tree, the injection queue, mailboxes, a park that
 * raced with its wake-up, a yield) queues a task by its band. While
 * xbands is 0 and the running task is of the normal band, nothing
 * changes: the run order above applies; the yield fast path tests lifo
 * and xbands with one 64-bit compare (they share a word) and adds one xor
 * (the band bits join the test of the state word it already loads), the
 * same instruction count as before; the ready path checks the band bits
 * of the task it queues. Otherwise find_banded chooses a band
 * among those with work (a yielder's band counts, as if it were queued
 * behind its band-mates) by the rule, rt->fair_rule, which each worker
 * copies on its fairness tick when rt->fair_gen moved:
 *  - deficit round robin (default): a band earns band_weight x 250 us of
 *    CPU time per round and keeps the worker while it has deficit left;
 *    each poll is charged its duration (monotonic clock), and each turn
 *    is settled in thread CPU time when it ends (pick_band); clocks are
 *    read only on this multi-band path;
 *  - lottery: a draw from the worker's xorshift, band_weight tickets per
 *    band with work;
 *  - strict: the most urgent band with work.
 * Within a band: its deque (newest first, as the deque), then its yield
 * queue. A thief takes from the most urgent band any victim has (each
 * worker publishes xbands in xpub, a hint), then normal, then low.
 * Single-band work of another band than normal (everything CRITICAL,
 * say) is correct but takes the general path: no LIFO slot, no yield
 * fast path (docs/decisions/0007-bands.md).
 */
#include "sched.h"

#include <sched.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "../arch/ctx.h"
#include "../arch/fiber_san.h"
#include "../base/atomic.h"
#include "../base/bits.h"
#include "../base/check.h"
#include "../base/clock.h"
#include "../base/futex.h"

#define RLX memory_order_relaxed
#define LIFO_MAX 3   /* consecutive LIFO-slot runs before it yields */
#define FAIR_TICK 61 /* every so many decisions, injection queue first */
#define INJECT_BATCH 32
#define SPIN_ROUNDS 64

/* Sanitizer builds take the general switch path, which carries the
 * fiber annotations. */
#if defined(WEFT_ASAN) || defined(WEFT_TSAN)
#define WEFT_SANITIZED 1
#else
#define WEFT_SANITIZED 0
#endif

/* Messages carried by a switch: the task that left | what it did. Hot
 * TCBs are 32 bytes in a cache-aligned array, so 5 low bits are free. */
enum {
    MSG_NONE = 0,
    MSG_YIELD = 1, /* a normal-band task yielded: the yield queue */
    MSG_PARK = 2,
    MSG_DEAD = 3,
    MSG_YBAND = 4 /* a task of another band yielded: its band's queue */
};
#define MSG_MASK ((uintptr_t)31)

/* initial-exec: the library is position-independent, and the default
 * TLS model for that calls __tls_get_addr on every access. */
static _Thread_local weft_worker *tls_worker
    __attribute__((tls_model("initial-exec")));

weft_noinline weft_worker *weft__worker_self(void)
{
    /* The volatile read and the barrier keep the compiler from caching
     * this thread's worker across a switch (the task may have migrated). */
    __asm__ __volatile__("" ::: "memory");
    return *(weft_worker *volatile *)&tls_worker;
}

static inline uint32_t slot_of(weft_rt *rt, weft_tcb *t)
{
    return (uint32_t)(t - rt->hot);
}

static inline uint32_t wslot_of(weft_worker *w, weft_tcb *t)
{
    return (uint32_t)(t - w->hot);
}

static inline void stat_inc(_Atomic uint64_t *c)
{
    /* Owner-only counter: a relaxed load and store, no RMW. */
    atomic_store_explicit(c, atomic_load_explicit(c, RLX) + 1, RLX);
}

/*
 * Poll accounting. Every switch ends the running task's poll and starts
 * the next one's. Reading a clock there would cost more than the switch
 * itself (rdtsc is ~40 cycles on this kind of machine; measured 11.6 ns
 * against a 14 ns switch), so polls are timed on the monitor's coarse
 * clock (w->coarse_ns, stored every tick by sysmon.c): a poll is charged
 * the ticks it spans. Summed over many polls this is unbiased (a poll of
 * d ns crosses a tick boundary with probability d / tick and is then
 * charged one tick); a single poll is exact to one tick. Long polls are
 * the monitor's business: it watches each worker's poll sequence number
 * and times a poll that spans its ticks (sysmon.c). Owner worker.
 */
/* The poll of `from` spans a tick: charge the ticks to it. */
weft_noinline static void poll_tick(weft_worker *w, weft_tcb *from,
                                    uint64_t now)
{
    weft_tcb_cold *c = &w->rt->cold[from - w->hot];
    /* The clock has two writers (the monitor, and the worker waking from
     * idle): it may step back by a little, which charges nothing. */
    if (now > w->poll_t0)
        atomic_store_explicit(
            &c->cpu_ns,
            atomic_load_explicit(&c->cpu_ns, RLX) + now - w->poll_t0, RLX);
    w->poll_t0 = now;
}

static inline __attribute__((always_inline)) void
poll_turn(weft_worker *w, weft_tcb *from, uint32_t to_slot1)
{
    uint64_t now = atomic_load_explicit(&w->coarse_ns, RLX);
    if (from) {
        atomic_store_explicit(&from->polls,
                              atomic_load_explicit(&from->polls, RLX) + 1, RLX);
        if (weft_unlikely(now != w->poll_t0))
            poll_tick(w, from, now);
    } else {
        w->poll_t0 = now;
    }
    /* Release: pairs with the monitor's acquire load of running, so what
     * the task's spawner wrote (its name) is visible to the monitor's
     * warning. A plain store on x86_64. */
    atomic_store_explicit(&w->running, to_slot1, memory_order_release);
}

static void signal_task(weft_rt *rt, uint32_t slot);
static void iso_retire(weft_worker *iso);

/* ---- queues ------------------------------------------------------------ */

/* Push onto the deque; a full ring moves its older half to the injection
 * queue in one batch and retries. Owner only. */
weft_noinline static void push_overflow(weft_worker *w, uint32_t slot)
{
    while (weft__deque_push(&w->dq, slot) < 0) {
        uint32_t half[WEFT_DEQUE_CAP / 2];
        uint32_t n = weft__deque_grab(&w->dq, half, WEFT_DEQUE_CAP / 2);
        weft__inject_push(&w->rt->inject, half, n);
        weft__wake_one(w->rt);
    }
}

static inline void push_local(weft_worker *w, uint32_t slot)
{
    if (weft_unlikely(weft__deque_push(&w->dq, slot) < 0))
        push_overflow(w, slot);
}

/*
 * New stealable work on this worker's deque: wake an idle worker unless
 * one is already searching (it will find the work, and wakes a successor
 * when it does: see idle()). At most one worker is woken per burst, so
 * a spawn loop does not stampede the sleepers.
 *
 * No fence here, unlike weft__wake_one: work on a worker's own deque
 * cannot be lost (its owner runs it), so a sleeper that announced itself
 * just as we pushed costs parallelism, not progress, and the next push
 * wakes it. Foreign submissions (signal bits, the injection queue), which
 * no running worker owns, take the fenced path. Owner only.
 */
static inline void notify(weft_worker *w)
{
    weft_rt *rt = w->rt;
    if (rt->nworkers > 1 && atomic_load_explicit(&rt->idle, RLX) &&
        !atomic_load_explicit(&rt->searching, RLX))
        weft__wake_one(rt);
}

static void yq_push(weft_worker *w, uint32_t slot)
{
    atomic_store_explicit(&w->link[slot], 0, RLX);
    if (w->yq_tail)
        atomic_store_explicit(&w->link[w->yq_tail - 1], slot + 1, RLX);
    else
        w->yq_head = slot + 1;
    w->yq_tail = slot + 1;
}

static int64_t yq_pop(weft_worker *w)
{
    uint32_t h = w->yq_head;
    if (!h)
        return -1;
    w->yq_head = atomic_load_explicit(&w->link[h - 1], RLX);
    if (!w->yq_head)
        w->yq_tail = 0;
    return h - 1;
}

/* ---- bands (see "bands" below) ----------------------------------------- */

#define BAND_NORMAL WEFT_BAND_NORMAL
#define DRR_UNIT_NS 250000 /* DRR quantum per unit of band weight */
#define DRR_DEBT 8         /* most quanta a band's deficit may owe */

/* The band of task t: priority / 4, bits 10-11 of the state word. */
static inline int band_of(weft_tcb *t)
{
    return (int)(atomic_load_explicit(&t->state, RLX) >>
                 (WEFT_TS_PRIO_SHIFT + 2)) &
           3;
}

/* The deque of band b != normal. */
static inline weft_deque *xdq(weft_worker *w, int b)
{
    return &w->bdq[b < BAND_NORMAL ? b : b - 1];
}

/* Band b (not normal) may hold tasks now. Owner only. */
static inline void mark_band(weft_worker *w, int b)
{
    if (w->xbands & (1u << b))
        return;
    if (!w->xbands)
        w->band_cur = -1; /* the multi-band accounting starts afresh */
    w->xbands |= 1u << b;
    atomic_store_explicit(&w->xpub, w->xbands, RLX);
}

static inline void unmark_band(weft_worker *w, int b)
{
    w->xbands &= ~(1u << b);
    atomic_store_explicit(&w->xpub, w->xbands, RLX);
}

/* Queue `slot` of band b (not normal) on its deque; a full ring moves its
 * older half to the injection queue, as push_overflow. Owner only. */
weft_noinline static void push_xband(weft_worker *w, uint32_t slot, int b)
{
    weft_deque *d = xdq(w, b);
    while (weft__deque_push(d, slot) < 0) {
        uint32_t half[WEFT_DEQUE_CAP / 2];
        uint32_t n = weft__deque_grab(d, half, WEFT_DEQUE_CAP / 2);
        weft__inject_push(&w->rt->inject, half, n);
        weft__wake_one(w->rt);
    }
    mark_band(w, b);
}

/* Queue `slot` in its band. Owner only. */
static inline void push_band(weft_worker *w, uint32_t slot)
{
    int b = band_of(&w->hot[slot]);
    if (weft_likely(b == BAND_NORMAL))
        push_local(w, slot);
    else
        push_xband(w, slot, b);
}

static void byq_push(weft_worker *w, int b, uint32_t slot)
{
    atomic_store_explicit(&w->link[slot], 0, RLX);
    if (w->byq_tail[b])
        atomic_store_explicit(&w->link[w->byq_tail[b] - 1], slot + 1, RLX);
    else
        w->byq_head[b] = slot + 1;
    w->byq_tail[b] = slot + 1;
    mark_band(w, b);
}

static int64_t byq_pop(weft_worker *w, int b)
{
    uint32_t h = w->byq_head[b];
    if (!h)
        return -1;
    w->byq_head[b] = atomic_load_explicit(&w->link[h - 1], RLX);
    if (!w->byq_head[b])
        w->byq_tail[b] = 0;
    return h - 1;
}

/* Take a batch from the injection queue: run the first, queue the rest. */
weft_noinline static int64_t from_inject(weft_worker *w)
{
    uint32_t got[INJECT_BATCH];
    uint32_t n = weft__inject_pop(&w->rt->inject, got, INJECT_BATCH);
    if (!n)
        return -1;
    for (uint32_t i = n - 1; i > 0; i--)
        push_band(w, got[i]);
    if (n > 1)
        notify(w);
    return got[0];
}

/* Take one leaf of signalled tasks: run the first, queue the rest. */
weft_noinline static int64_t from_summary(weft_worker *w)
{
    weft_summary *s = &w->rt->sum;
    uint32_t leaf = weft__summary_find(s, &w->find_cursor);
    if (leaf == UINT32_MAX)
        return -1;
    uint64_t bits = weft__summary_take(s, leaf);
    if (!bits)
        return -1;
    uint32_t first = leaf * WEFT_LEAF_SLOTS + weft_ctz64(bits);
    if (bits & (bits - 1)) {
        for (bits &= bits - 1; bits; bits &= bits - 1)
            push_band(w, leaf * WEFT_LEAF_SLOTS + weft_ctz64(bits));
        notify(w);
    }
    return first;
}

/*
 * The yield bit (summary.h) tells other workers that this one has yielded
 * tasks. It matters only to a worker that could take them, so it is
 * published on the fairness tick when the yield queue is non-empty and
 * some worker is idle (publishing it then wakes one), and cleared on the
 * tick or before sleeping otherwise. It is not kept exact on every empty
 * <-> non-empty change of the queue: two tasks yielding to each other
 * flip it on every switch, and that cost six atomic RMWs per switch
 * (measured: switch 6.5 -> 38 ns); publishing on every tick regardless of
 * idle workers cost 0.7 ns per switch in the owner's fast-path check. A
 * stale bit costs a thief one look at an empty queue; a late one delays a
 * steal by at most FAIR_TICK decisions. Owner only.
 */
weft_noinline static void publish_yield(weft_worker *w, int want)
{
    if (want == w->yield_published)
        return;
    if (want) {
        if (weft__summary_yield_set(&w->rt->sum, w->leaf))
            weft__wake_one(w->rt);
    } else
        weft__summary_yield_clear(&w->rt->sum, w->leaf);
    w->yield_published = want;
}

/* xorshift32 (Marsaglia 2003): the victim order of a thief. Owner only. */
static inline uint32_t next_rand(weft_worker *w)
{
    uint32_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return w->rng = x;
}

/*
 * Steal one task from another worker's deque, visiting victims in a
 * random rotation (so thieves spread over victims instead of all hitting
 * worker 0). A lost CAS race (ABORT) is retried on the same victim a few
 * times: the deque was not empty. Signalled tasks of every worker are
 * already visible to this worker through the summary tree, which
 * find_work reads before it gets here. Owner only.
 */
weft_noinline static int64_t steal(weft_worker *w)
{
    weft_rt *rt = w->rt;
    uint32_t n = rt->nworkers, start = next_rand(w) % n;
    /* Highest band first: the other bands' deques only of victims whose
     * published xbands (a hint: a stale bit costs one look at an empty
     * deque, a late one a steal in the wrong order) say they may hold
     * some; one load per victim when nobody has any. */
    uint32_t any = 0;
    for (uint32_t i = 0; i < n; i++)
        any |= atomic_load_explicit(&rt->workers[i].xpub, RLX);
    for (int b = 0; b < WEFT_BANDS; b++) {
        if (b != BAND_NORMAL && !(any & (1u << b)))
            continue;
        for (uint32_t i = 0; i < n; i++) {
            weft_worker *v = &rt->workers[(start + i) % n];
            if (v == w)
                continue;
            if (b != BAND_NORMAL &&
                !(atomic_load_explicit(&v->xpub, RLX) & (1u << b)))
                continue;
            weft_deque *d = b == BAND_NORMAL ? &v->dq : xdq(v, b);
            stat_inc(&w->st.steal_attempts);
            for (int tries = 0; tries < 4; tries++) {
                uint32_t x = weft__deque_steal(d);
                if (x == WEFT_DEQUE_EMPTY)
                    break;
                if (x != WEFT_DEQUE_ABORT) {
                    stat_inc(&w->st.steals);
                    return x;
                }
            }
        }
    }
    return -1;
}

/* ---- mesh mode --------------------------------------------------------
 *
 * The other school of balancing (DESIGN.md §7, docs/mesh.md): instead of
 * idle workers pulling work, busy ones push it. Each ordered pair of
 * workers has an SPSC mailbox (queue/mailbox.h). Work moves on two
 * occasions, both when a worker queues new work:
 *  - a neighbour is hungry (went idle and said so in rt->hungry): it gets
 *    the oldest queued task, nearest neighbour (same L3 group) first;
 *  - the worker's load is at or above its threshold: the oldest queued
 *    task goes to a neighbour whose published load is under half the
 *    threshold, same group first, picked by a hash of the spawning task
 *    (one flow's work tends to go the same way).
 * The oldest tasks, as a thief would take: in fork-join work they are the
 * largest pieces, and the newer ones are about to be joined by a parent
 * still running here (each one sent away turns an inline join into a
 * park; sending half the backlog to every hungry neighbour cost skynet 5x,
 * measured). So a feed is one task, growing to a full chunk only while
 * feeds keep coming within one fairness tick (a flat spawn loop); above
 * the threshold, half the backlog up to a chunk. A chunk (one
 * task, or a batch from the fairness tick) is published at once with one
 * release store: it never waits for a later decision of the sender, which
 * may run inline joins for a long time without deciding anything. The
 * destination's inbox bit is set and the destination woken if it sleeps.
 * No cache line is written by more than two workers, except the inbox and
 * hunger words.
 *
 * The threshold adapts: a worker above it for MESH_HIGH_TICKS fairness
 * ticks in a row halves it (down to MESH_MIN_THRESHOLD: shed work earlier
 * under sustained load); a worker that goes idle doubles it (up to
 * MESH_MAX_THRESHOLD: keep work local when there is little of it).
 *
 * No lost wake-up: a producer publishes (release store of the ring's
 * tail), sets the inbox bits, then does the RMW on rt->idle and wakes the
 * destination if it sleeps; a sleeper stores sleep = 1, does its RMW on
 * rt->idle, then checks its inbox (has_foreign_work). The argument of the
 * header applies unchanged, with the inbox in place of the deques.
 */
#define MESH_HIGH_TICKS 4
#define MESH_MIN_THRESHOLD 8
#define MESH_MAX_THRESHOLD 128 /* under the deque's capacity */
#define MESH_PROBES 8          /* neighbours one threshold look reads */

/* Worker v's hunger word and bit. */
static inline _Atomic uint64_t *hunger_word(weft_rt *rt, uint32_t v)
{
    return &rt->hungry[atomic_load_explicit(&rt->hword[v], RLX)].bits;
}

static inline uint64_t hunger_bit(weft_rt *rt, uint32_t v)
{
    return UINT64_C(1) << atomic_load_explicit(&rt->hbit[v], RLX);
}

void weft__mesh_set_groups(weft_rt *rt, const uint32_t *group_of)
{
    uint32_t n = rt->nworkers;
    for (uint32_t i = 0; i < n; i++) {
        weft_worker *w = &rt->workers[i];
        uint32_t k = 0;
        for (int pass = 0; pass < 2; pass++)
            for (uint32_t d = 1; d < n; d++) {
                uint32_t j = (i + d) % n;
                int same = !group_of || group_of[j] == group_of[i];
                if (same == !pass)
                    w->order[k++] = j;
                if (!pass && same)
                    w->ngroup = k;
            }
        if (!group_of)
            w->ngroup = n - 1;
        else {
            w->ngroup = 0;
            for (uint32_t d = 0; d < n - 1; d++)
                w->ngroup += group_of[w->order[d]] == group_of[i];
        }
    }
    /* Hunger words: one per group when there are at most 16 groups
     * (numbered densely from 0) of at most 64 workers; else by id. */
    uint32_t ngroups = 0, fits = group_of != NULL;
    uint32_t count[16] = {0};
    for (uint32_t i = 0; fits && i < n; i++) {
        if (group_of[i] >= 16 || ++count[group_of[i]] > 64)
            fits = 0;
        else if (group_of[i] + 1 > ngroups)
            ngroups = group_of[i] + 1;
    }
    /* A white-box test regroups a running runtime whose idle workers
     * already said they were hungry: they keep saying so. */
    uint8_t was[1024];
    for (uint32_t i = 0; i < n; i++)
        was[i] = atomic_load_explicit(&rt->nhwords, RLX) &&
                 (atomic_load_explicit(hunger_word(rt, i), RLX) &
                  hunger_bit(rt, i)) != 0;
    for (uint32_t k = 0; k < 16; k++)
        atomic_store_explicit(&rt->hungry[k].bits, 0, RLX);
    uint32_t rank[16] = {0};
    for (uint32_t i = 0; i < n; i++) {
        atomic_store_explicit(&rt->hword[i],
                              (uint16_t)(fits ? group_of[i] : i / 64), RLX);
        atomic_store_explicit(
            &rt->hbit[i], (uint8_t)(fits ? rank[group_of[i]]++ : i % 64), RLX);
    }
    atomic_store_explicit(&rt->nhwords, fits ? ngroups : (n + 63) / 64, RLX);
    for (uint32_t i = 0; i < n; i++)
        if (was[i])
            atomic_fetch_or_explicit(hunger_word(rt, i), hunger_bit(rt, i),
                                     RLX);
}

void weft__mesh_groups_from_topology(weft_rt *rt, const weft_topology *t)
{
    uint32_t group_of[1024];
    for (uint32_t i = 0; i < rt->nworkers; i++)
        group_of[i] = t->ncpus ? t->cpus[t->pin_order[i % t->ncpus]].l3 : 0;
    weft__mesh_set_groups(rt, group_of);
}

static inline weft_mbox *mbox_to(weft_worker *w, uint32_t dst)
{
    return &w->rt->mbox[(size_t)dst * w->rt->nworkers + w->id];
}

static inline uint32_t dq_size(weft_worker *w)
{
    int64_t d = atomic_load_explicit(&w->dq.bottom, RLX) -
                atomic_load_explicit(&w->dq.top, RLX);
    return d > 0 ? (uint32_t)d : 0;
}

/* Wake worker v if it sleeps (see the argument above). Any thread. */
static int wake_sleeper(weft_worker *v);

static void wake_worker(weft_rt *rt, weft_worker *v)
{
    /* acq_rel RMW: pairs with the sleeper's RMW on idle (header). */
    if (atomic_fetch_add_explicit(&rt->idle, 0, memory_order_acq_rel))
        wake_sleeper(v);
}

/* Publish w's staged chunk for dst and tell dst. Owner only. */
static void mesh_publish(weft_worker *w, uint32_t dst)
{
    weft_worker *v = &w->rt->workers[dst];
    weft__mbox_publish(mbox_to(w, dst));
    /* Release: pairs with the owner's acquire exchange in from_mail; the
     * ring's tail was released before. */
    atomic_fetch_or_explicit(&v->inbox[w->id / 64], UINT64_C(1) << (w->id % 64),
                             memory_order_release);
    atomic_fetch_or_explicit(&v->inbox_top, UINT64_C(1) << (w->id / 64),
                             memory_order_release);
    wake_worker(w->rt, v);
}

weft_noinline static void mesh_flush(weft_worker *w)
{
    for (uint32_t i = 0; i < w->nstaged; i++)
        mesh_publish(w, w->staged[i]);
    w->nstaged = 0;
}

/* Stage `slot` for worker dst; 0 when its ring is full. With `batch`
 * more tasks follow for the same chunk; without, the chunk goes now. A
 * chunk never waits for a later decision of w: w may run inline joins for
 * a long time without deciding anything, and a staged task whose parent
 * joins it would wait with it (measured: fib at 2 workers 23 -> 344 ms).
 * Owner only. */
static int mesh_stage(weft_worker *w, uint32_t dst, uint32_t slot, int batch)
{
    weft_chunk *c = weft__mbox_stage(mbox_to(w, dst));
    if (!c)
        return 0;
    uint32_t k = 0;
    while (k < w->nstaged && w->staged[k] != dst)
        k++;
    if (k == w->nstaged) { /* a fresh chunk */
        if (w->nstaged == WEFT_MESH_STAGED)
            mesh_flush(w), k = 0;
        c = weft__mbox_stage(mbox_to(w, dst)); /* the same chunk */
        c->n = 0;
        w->staged[w->nstaged++] = dst;
    }
    c->idx[c->n++] = slot;
    stat_inc(&w->st.deflected);
    if (!batch || c->n == WEFT_CHUNK) {
        mesh_publish(w, dst);
        w->staged[k] = w->staged[--w->nstaged];
    }
    return 1;
}

/* The position in w's order of the nearest worker from position `from`
 * on whose hunger bit is set, or n when none (one load per worker, of
 * words w mostly has in its cache). Owner only. */
static uint32_t next_hungry(weft_worker *w, uint32_t from)
{
    weft_rt *rt = w->rt;
    uint32_t n = rt->nworkers - 1, i = from;
    while (i < n && !(atomic_load_explicit(hunger_word(rt, w->order[i]), RLX) &
                      hunger_bit(rt, w->order[i])))
        i++;
    return i;
}

/* Will w (with `load` queued) feed worker v? A sleeping one only when w
 * has more than one task queued: a sleeping CPU can take milliseconds to
 * wake (measured here: a task sent to a sleeping worker first ran 3-4 ms
 * later), and w's last queued task is better run by w itself soon than by
 * a neighbour that may wake late. */
static inline int feeds_sleeper(weft_rt *rt, uint32_t v, uint32_t load)
{
    return load >= 2 || !atomic_load_explicit(&rt->workers[v].sleep, RLX);
}

/* Claim one hungry neighbour, nearest first; -1 when none. Owner only. */
static int64_t mesh_hungry(weft_worker *w, uint32_t load)
{
    weft_rt *rt = w->rt;
    uint32_t n = rt->nworkers - 1;
    for (uint32_t i = next_hungry(w, 0); i < n; i = next_hungry(w, i + 1)) {
        uint32_t v = w->order[i];
        uint64_t bit = hunger_bit(rt, v);
        if (feeds_sleeper(rt, v, load) &&
            (atomic_fetch_and_explicit(hunger_word(rt, v), ~bit, RLX) & bit))
            return v;
    }
    return -1;
}

/* A neighbour for overflow work of flow `flow`: published load under half
 * of w's threshold, nearest group first; -1 when none. At most
 * MESH_PROBES neighbours are looked at (w's group first, then others
 * from the flow's hash), so a look costs O(1) lines however many workers
 * there are. Owner only. */
static int64_t mesh_target(weft_worker *w, uint32_t flow)
{
    weft_rt *rt = w->rt;
    uint32_t n = rt->nworkers - 1, h = flow * 2654435761u, probes = 0;
    uint32_t part[2][2] = {{0, w->ngroup}, {w->ngroup, n - w->ngroup}};
    for (int p = 0; p < 2; p++) {
        uint32_t base = part[p][0], cnt = part[p][1];
        for (uint32_t i = 0; i < cnt; i++) {
            weft_worker *v = &rt->workers[w->order[base + (h + i) % cnt]];
            if (2 * atomic_load_explicit(&v->load, RLX) < w->threshold)
                return v->id;
            if (++probes == MESH_PROBES)
                return -1;
        }
    }
    return -1;
}

/* Is any worker hungry? One load per hunger word (per L3 group). */
static inline int mesh_any_hungry(weft_rt *rt)
{
    uint32_t words = atomic_load_explicit(&rt->nhwords, RLX);
    for (uint32_t k = 0; k < words; k++)
        if (atomic_load_explicit(&rt->hungry[k].bits, RLX))
            return 1;
    return 0;
}

/* Send up to `want` of w's oldest queued tasks to v as one chunk. */
static uint32_t mesh_send(weft_worker *w, uint32_t v, uint32_t want)
{
    /* A full ring first: grabbing a chunk's worth and putting it all back
     * cost a flat spawn loop 545 instructions a task (callgrind), on
     * every spawn while the neighbour's ring stayed full. */
    if (!weft__mbox_stage(mbox_to(w, v)))
        return 0;
    uint32_t got[WEFT_CHUNK];
    uint32_t k =
        weft__deque_grab(&w->dq, got, want < WEFT_CHUNK ? want : WEFT_CHUNK);
    uint32_t i = 0;
    while (i < k && mesh_stage(w, v, got[i], i + 1 < k))
        i++;
    uint32_t sent = i;
    for (; i < k; i++) /* its ring is full: keep them */
        push_local(w, got[i]);
    return sent;
}

/*
 * Feed the hungry workers of the nearest hunger word that has any (w's
 * own L3 group first): claim them all with one exchange and share the
 * backlog among them, each getting up to `feed` tasks and no more than
 * its share (load / (claimed + 1): w keeps one). One task per feed at
 * first; feeds that keep coming within one fairness tick (a flat spawn
 * loop keeps neighbours hungry) double it, up to a chunk. Rare feeds
 * (fork-join) stay at one task: half the backlog turned inline joins into
 * parks (skynet 5x), one per feed cost flat spawning 1.5 M chunks per run
 * (spawn 1.5x steal mode). Claiming one neighbour per feed kept a
 * group's hungry workers queueing on their word, fed one at a time
 * (tools/meshsim.py, 64 workers in 8 groups, one spawner per group:
 * 26 ms against steal mode's 3.7; claiming the group at once: 3.6). A
 * claimed worker that gets nothing (w ran out of tasks, or it sleeps and
 * w has only one: see mesh_hungry) gets its bit back. Returns whether
 * any word had a hungry worker. Owner only.
 */
static int mesh_feed(weft_worker *w, uint32_t load)
{
    weft_rt *rt = w->rt;
    uint32_t n = rt->nworkers - 1;
    for (uint32_t i = next_hungry(w, 0); i < n; i = next_hungry(w, i + 1)) {
        _Atomic uint64_t *word = hunger_word(rt, w->order[i]);
        uint64_t got = atomic_exchange_explicit(word, 0, RLX);
        if (!got)
            continue;
        uint32_t want = w->feed ? w->feed : 1,
                 share = load / (weft_popcount64(got) + 1);
        if (share > want)
            share = want;
        if (!share)
            share = 1;
        w->fed++;
        if (want < WEFT_CHUNK)
            w->feed = want * 2 < WEFT_CHUNK ? want * 2 : WEFT_CHUNK;
        uint64_t back = 0;
        /* Nearest first: w's order, from the start (a worker before
         * position i may have gone hungry since it was looked at). */
        for (uint32_t j = 0; j < n && got; j++) {
            uint32_t u = w->order[j];
            uint64_t bit = hunger_bit(rt, u);
            if (hunger_word(rt, u) != word || !(got & bit))
                continue;
            got &= ~bit;
            uint32_t left = dq_size(w);
            if (!left || !feeds_sleeper(rt, u, left))
                back |= bit;
            else
                mesh_send(w, u, share < left ? share : left);
        }
        /* got: bits of no other worker (w's own, stale): dropped. */
        if (back)
            atomic_fetch_or_explicit(word, back, RLX);
        return 1;
    }
    return 0;
}

/* New work has been queued on w (see above). Owner only. */
weft_noinline static void mesh_balance(weft_worker *w)
{
    weft_rt *rt = w->rt;
    uint32_t load = dq_size(w);
    if (rt->nworkers == 1 || !load)
        return;
    int64_t v = -1;
    if (mesh_any_hungry(rt) && mesh_feed(w, load))
        return;
    /* Above the threshold the backlog is large by definition: shed a
     * chunk's worth (one task per chunk cost a flat spawn loop a transfer
     * per task). Not while overflow waits in the shared injection queue
     * (a deque that filled up spilled its older half there): every worker
     * that runs dry takes from it, so shedding more only moves fresh
     * tasks between busy workers. Measured on a flat spawn loop of 10^6
     * tasks at 2 workers: the spawner's neighbour, fed a chunk every 31
     * spawns, ran the spawner's newest tasks, their slots and TCB lines
     * went back and forth between the two, and the loop took 108 ns a
     * task against steal mode's 75-90 (spawn phase alone 55-70 vs 20-30
     * ns); with the check 71-99, as steal mode. */
    if (load < w->threshold || weft__inject_len(&rt->inject))
        return;
    /* After a look that found no one, let threshold/4 pushes pass before
     * the next: a look reads other workers' lines. */
    if (w->gate) {
        w->gate--;
        return;
    }
    if ((v = mesh_target(w, w->cur_slot)) < 0 ||
        !mesh_send(w, (uint32_t)v,
                   load / 2 < WEFT_CHUNK ? load / 2 : WEFT_CHUNK))
        w->gate = w->threshold / 4;
}

/* Fairness tick: publish the load level, adapt the threshold, and when
 * workers sleep, send them part of the backlog. Owner only. */
weft_noinline static void mesh_tick(weft_worker *w)
{
    if (!w->fed) /* no feeds for a tick: back to one task per feed */
        w->feed = 1;
    w->fed = 0;
    uint32_t load = dq_size(w);
    atomic_store_explicit(&w->load, load, RLX);
    if (load > w->threshold) {
        if (++w->high_ticks >= MESH_HIGH_TICKS) {
            w->threshold = w->threshold / 2 > MESH_MIN_THRESHOLD
                               ? w->threshold / 2
                               : MESH_MIN_THRESHOLD;
            w->high_ticks = 0;
        }
    } else {
        w->high_ticks = 0;
    }
    /* An idle neighbour gets half the backlog, or one yielded task (as
     * share_yielded gives thieves in steal mode). */
    if (mesh_any_hungry(w->rt) && (load >= 2 || w->yq_head)) {
        int64_t v = mesh_hungry(w, load + (w->yq_head != 0));
        if (v >= 0 && load >= 2) {
            mesh_send(w, (uint32_t)v, load / 2);
        } else if (v >= 0) {
            int64_t y = yq_pop(w);
            if (y >= 0 && !mesh_stage(w, (uint32_t)v, (uint32_t)y, 0))
                yq_push(w, (uint32_t)y);
        }
        return;
    }
    /* No evening-out between busy workers here: sending half a backlog
     * to a lighter but busy neighbour on the tick cost skynet_chan 64 ->
     * 120 ms (77k tasks moved, each send then waking its parent on the
     * other worker); busy workers shed work only above the threshold. */
}

/* Take every chunk sent to w: run the first task, queue the rest. Sources
 * are visited from w's own id upwards, so with workers numbered by L3
 * group (pinning fills one group first) nearer sources come first. */
weft_noinline static int64_t from_mail(weft_worker *w)
{
    weft_rt *rt = w->rt;
    /* Acquire: pairs with mesh_publish's release fetch_or. */
    uint64_t top =
        atomic_exchange_explicit(&w->inbox_top, 0, memory_order_acquire);
    if (!top)
        return -1;
    uint32_t n = rt->nworkers, words = (n + 63) / 64;
    int64_t first = -1;
    for (uint32_t k = 0; k < words; k++) {
        uint32_t wd = (w->id / 64 + k) % words;
        if (!(top & (UINT64_C(1) << wd)))
            continue;
        uint64_t bits =
            atomic_exchange_explicit(&w->inbox[wd], 0, memory_order_acquire);
        for (; bits; bits &= bits - 1) {
            uint32_t src = wd * 64 + weft_ctz64(bits);
            weft_mbox *m = &rt->mbox[(size_t)w->id * n + src];
            weft_chunk *c;
            while ((c = weft__mbox_next(m))) {
                for (uint32_t i = 0; i < c->n; i++) {
                    if (first < 0)
                        first = c->idx[i];
                    else
                        push_band(w, c->idx[i]);
                }
                stat_inc(&w->st.mail_in);
                weft__mbox_done(m);
            }
        }
    }
    atomic_store_explicit(&w->load, dq_size(w), RLX);
    /* More than one arrived: the rest are queued here and stealable.
     * Wake a sleeper as steal mode would, or they wait for this worker
     * even if its first task runs for long (measured: a hang with a
     * spinning task fed two at a time). */
    if (dq_size(w) || w->xbands)
        notify(w);
    return first;
}

/* The yield queue is owner-only; when other workers sit idle, yielded
 * tasks move to the deque, where they can be stolen. Owner only. */
weft_noinline static void share_yielded(weft_worker *w)
{
    int64_t s;
    int moved = 0;
    while ((s = yq_pop(w)) >= 0) {
        push_local(w, (uint32_t)s);
        moved = 1;
    }
    for (int b = 0; w->xbands && b < WEFT_BANDS; b++)
        while (b != BAND_NORMAL && (s = byq_pop(w, b)) >= 0) {
            push_xband(w, (uint32_t)s, b);
            moved = 1;
        }
    if (moved)
        weft__wake_one(w->rt);
}

/* The LIFO slot's task has run LIFO_MAX times in a row: it waits its
 * turn in the deque like the others. */
weft_noinline static void lifo_expire(weft_worker *w, uint32_t slot)
{
    push_local(w, slot);
}

/* Fire w's due timers. The clock is read only when a timer is armed. */
static inline void poll_timers(weft_worker *w)
{
    uint64_t next = weft__timer_next(&w->timers);
    if (weft_unlikely(next != UINT64_MAX) && next <= weft__clock_ns())
        weft__timer_run(w, weft__clock_ns());
}

/* Copy the fairness rule and weights when they changed. Owner only. */
static void fair_sync(weft_worker *w)
{
    weft_rt *rt = w->rt;
    /* Acquire: pairs with the release fetch_add in
     * weft__sched_set_fairness, so the rule and weights it stored before
     * are the ones read here (or newer ones: then fair_gen moved again and
     * the next tick copies them again). */
    uint32_t g = atomic_load_explicit(&rt->fair_gen, memory_order_acquire);
    if (g == w->fair_gen)
        return;
    w->fair_gen = g;
    w->fair_rule = atomic_load_explicit(&rt->fair_rule, RLX);
    for (int b = 0; b < WEFT_BANDS; b++) {
        uint32_t x = atomic_load_explicit(&rt->fair_weight[b], RLX);
        w->fair_weight[b] = x ? x : 1;
    }
}

/* End the DRR turn of w->band_cur, if any: charge it the CPU time `cpu`
 * - turn_cpu0. Owner only. */
static void drr_close(weft_worker *w, uint64_t cpu)
{
    int b = w->band_cur;
    if (b < 0)
        return;
    int64_t q = (int64_t)w->fair_weight[b] * DRR_UNIT_NS;
    w->deficit[b] = w->turn_def0 - (int64_t)(cpu - w->turn_cpu0);
    if (w->deficit[b] < -DRR_DEBT * q)
        w->deficit[b] = -DRR_DEBT * q;
    w->band_cur = -1;
}

/* No DRR turn from here on (one band, another rule, idle). Owner only. */
static inline void drr_stop(weft_worker *w)
{
    if (w->band_cur >= 0)
        drr_close(w, weft__thread_cpu_ns());
}

/* Which band of `mask` (bands with runnable work, more than one) runs
 * next, by the worker's rule. Owner only. */
static int pick_band(weft_worker *w, uint32_t mask)
{
    if (w->fair_rule == WEFT_FAIR_STRICT) {
        drr_stop(w);
        return weft_ctz64(mask);
    }
    if (w->fair_rule == WEFT_FAIR_LOTTERY) {
        uint32_t total = 0, r;
        for (int b = 0; b < WEFT_BANDS; b++)
            if (mask & (1u << b))
                total += w->fair_weight[b];
        r = next_rand(w) % total;
        drr_stop(w);
        for (int b = 0;; b++)
            if (mask & (1u << b)) {
                if (r < w->fair_weight[b])
                    return b;
                r -= w->fair_weight[b];
            }
    }
    /* DRR in CPU time. A band's turn lasts while its deficit, less the
     * time since the turn began, is positive: that is read from the
     * monotonic clock (vDSO, tens of ns), so each poll is charged its
     * duration. When the turn ends, the band is charged the thread's CPU
     * time over the turn instead (one CPU-clock read per turn, not per
     * poll): time the kernel took the worker away is then nobody's, which
     * matters on an oversubscribed machine (measured: the low band got
     * 1.15-1.2x its share at load 9 on 2 cores with wall time alone).
     * Then the round moves to the next band with work, crediting it a
     * quantum (band_weight x DRR_UNIT_NS). A band without work loses its
     * deficit (classic DRR: idleness earns no credit). An overrun carries
     * over as a negative deficit, so shares hold for polls up to
     * DRR_DEBT quanta (2 ms for the low band, 16 ms for critical; longer
     * ones are the budgets' business, DESIGN.md §6). The bound keeps one
     * enormous poll from silencing its band for many rounds (measured
     * under TSan: the first poll of a task, binding its stack and fiber,
     * costs ~6 ms of CPU; unbounded, the low band then sat out 90 ms). */
    uint64_t now = weft__clock_ns();
    int b = w->band_cur;
    if (b >= 0 && (mask & (1u << b)) &&
        w->turn_def0 - (int64_t)(now - w->turn_wall0) > 0)
        return b; /* its turn goes on */
    uint64_t cpu = weft__thread_cpu_ns();
    drr_close(w, cpu);
    for (int k = 0; k < WEFT_BANDS; k++)
        if (!(mask & (1u << k)))
            w->deficit[k] = 0;
    for (;;) {
        b = (int)(w->drr_next++ % WEFT_BANDS);
        if (!(mask & (1u << b)))
            continue;
        w->deficit[b] += (int64_t)w->fair_weight[b] * DRR_UNIT_NS;
        if (w->deficit[b] > 0)
            break;
    }
    w->band_cur = b;
    w->turn_def0 = w->deficit[b];
    w->turn_wall0 = now;
    w->turn_cpu0 = cpu;
    return b;
}

/* Take the next task of band b: for normal the LIFO slot, the deque,
 * then the yield queue; for the others their deque, then their yield
 * queue. -1 when empty (its bit is then cleared). Owner only. */
static int64_t take_band(weft_worker *w, int b)
{
    int64_t s;
    if (b == BAND_NORMAL) {
        w->lifo_runs = 0;
        if (w->lifo) {
            s = w->lifo - 1;
            w->lifo = 0;
            return s;
        }
        if (weft__deque_maybe_nonempty(&w->dq)) {
            uint32_t x = weft__deque_take(&w->dq);
            if (x != WEFT_DEQUE_EMPTY)
                return x;
        }
        return yq_pop(w);
    }
    weft_deque *d = xdq(w, b);
    s = -1;
    if (weft__deque_maybe_nonempty(d)) {
        uint32_t x = weft__deque_take(d);
        if (x != WEFT_DEQUE_EMPTY)
            s = x;
    }
    if (s < 0)
        s = byq_pop(w, b);
    if (!w->byq_head[b] && !weft__deque_maybe_nonempty(d))
        unmark_band(w, b);
    return s;
}

/* The run order when more than one band may have work (w->xbands, or a
 * yielder not of the normal band): gather what other threads made
 * runnable into its band, then choose a band by the rule and take its
 * next task. `yband` is the yielding task's band (it competes as if
 * queued at the end of its band) or -1; -2 means "the yielder goes on".
 * Owner only. */
weft_noinline static int64_t find_banded(weft_worker *w, int yband)
{
    weft_rt *rt = w->rt;
    int64_t s;
    if (rt->mesh) {
        if (w->nstaged)
            mesh_flush(w);
        if (atomic_load_explicit(&w->inbox_top, RLX) && (s = from_mail(w)) >= 0)
            push_band(w, (uint32_t)s);
    }
    if (weft_unlikely(weft__summary_any(&rt->sum)) &&
        (s = from_summary(w)) >= 0)
        push_band(w, (uint32_t)s);
    for (;;) {
        uint32_t mask = w->xbands;
        if (w->lifo || weft__deque_maybe_nonempty(&w->dq) || w->yq_head)
            mask |= 1u << BAND_NORMAL;
        if (yband >= 0)
            mask |= 1u << yband;
        if (!mask) {
            drr_stop(w);
            if (weft__inject_len(&rt->inject) && (s = from_inject(w)) >= 0) {
                push_band(w, (uint32_t)s);
                continue;
            }
            return -1;
        }
        int b;
        if (!(mask & (mask - 1))) { /* one band: no rule, no clock */
            drr_stop(w);            /* (but once, to end a turn) */
            b = weft_ctz64(mask);
        } else {
            b = pick_band(w, mask);
        }
        if ((s = take_band(w, b)) >= 0)
            return s;
        if (b == yband) /* only the yielder itself in its band */
            return -2;
        /* Empty after all (stolen, or a stale bit now cleared): again. */
    }
}

/* The next task to run on w, or -1 (-2: the yielding task goes on). The
 * common cases (LIFO slot, deque, yield queue, nothing signalled) stay in
 * this frame; the rest are out-of-line calls so the fast path needs no
 * saved registers. `yband`: the band of the yielding task, or -1. Owner
 * only. */
static inline int64_t find_local(weft_worker *w, int yband);

/* find_local, then steal. For a task that parks or ends, and the
 * scheduler loop. */
static inline __attribute__((always_inline)) int64_t find_work(weft_worker *w)
{
    if (weft_unlikely(w->iso_of))
        return -1; /* an isolated task: to its thread's old frame */
    int64_t s = find_local(w, -1);
    /* Mesh mode steals too, as the last resort: pushes happen only when
     * a worker makes a scheduling decision, so a task that runs long
     * without one strands its worker's queue while neighbours starve
     * (measured: mutex_contended_fairness, 7 of 8 tasks never ran in
     * 400 ms). Everything pushed is taken before anything is stolen. */
    if (s >= 0 || w->rt->nworkers == 1 ||
        atomic_load_explicit(&w->rt->stopping, RLX))
        return s;
    return steal(w);
}

/* Everything but stealing. A yielding task uses this alone: it is itself
 * runnable, so if nothing else is local it simply continues; stealing on
 * each such yield cost yield_many 2x in failed attempts on victims whose
 * tasks sat in their private yield queues (measured: 1.2 M attempts for
 * 2 steals). Idle workers get yielded tasks through share_yielded. */
/* s, taken by a single-band step, if it is of the normal band; else it
 * goes to its band and the banded order decides. */
weft_noinline static int64_t route_xband(weft_worker *w, uint32_t s, int yband)
{
    push_xband(w, s, band_of(&w->hot[s]));
    return find_banded(w, yband);
}

static inline int64_t routed(weft_worker *w, int64_t s, int yband)
{
    if (s < 0 || weft_likely(band_of(&w->hot[s]) == BAND_NORMAL))
        return s;
    return route_xband(w, (uint32_t)s, yband);
}

static inline __attribute__((always_inline)) int64_t find_local(weft_worker *w,
                                                                int yband)
{
    int64_t s;
    /* Stopping: every caller then switches to the scheduler loop, which
     * exits; weft_rt_destroy also sets a summary bit so that the yield
     * fast path, which does not come here, is diverted (rt.c). */
    if (weft_unlikely(atomic_load_explicit(&w->rt->stopping, RLX)))
        return -1;
    if (weft_unlikely(w->fair_countdown-- <= 1)) { /* <= : a zeroed worker
                                                       must tick, not wrap */
        w->fair_countdown = FAIR_TICK;
        fair_sync(w);
        poll_timers(w);
        if (w->rt->mesh)
            mesh_tick(w);
        int others_idle = atomic_load_explicit(&w->rt->idle, RLX) != 0;
        int yielded = w->yq_head || w->xbands;
        publish_yield(w, yielded && others_idle);
        if (others_idle && yielded)
            share_yielded(w);
        if ((s = from_inject(w)) >= 0)
            return routed(w, s, yband);
    }
    /* More than one band may have work: the banded order (a yielder of
     * another band than normal counts as one). */
    if (weft_unlikely(w->xbands || (yband >= 0 && yband != BAND_NORMAL)))
        return find_banded(w, yband);
    if (w->lifo) {
        s = w->lifo - 1;
        w->lifo = 0;
        if (weft_likely(w->lifo_runs < LIFO_MAX)) {
            w->lifo_runs++;
            return s;
        }
        lifo_expire(w, (uint32_t)s);
    }
    w->lifo_runs = 0;
    if (weft__deque_maybe_nonempty(&w->dq)) {
        uint32_t x = weft__deque_take(&w->dq);
        if (x != WEFT_DEQUE_EMPTY)
            return x;
    }
    if (w->rt->mesh) {
        if (w->nstaged)
            mesh_flush(w);
        if (atomic_load_explicit(&w->inbox_top, RLX) && (s = from_mail(w)) >= 0)
            return routed(w, s, yband);
    }
    if (weft_unlikely(weft__summary_any(&w->rt->sum)) &&
        (s = from_summary(w)) >= 0)
        return routed(w, s, yband);
    /* The steps above may have queued tasks of other bands. */
    if (weft_unlikely(w->xbands))
        return find_banded(w, yband);
    if ((s = yq_pop(w)) >= 0)
        return s;
    return weft__inject_len(&w->rt->inject) ? routed(w, from_inject(w), yband)
                                            : -1;
}

/* Anything another thread may have made runnable for this worker: the
 * injection queue, signal bits, another worker's deque, or the stop flag.
 * O(workers), on the way to sleep only. */
static int has_foreign_work(weft_worker *w)
{
    weft_rt *rt = w->rt;
    if (weft__inject_len(&rt->inject))
        return 1;
    if (weft__summary_any(&rt->sum))
        return 1;
    if (rt->mesh && atomic_load_explicit(&w->inbox_top, RLX))
        return 1;
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        weft_deque *d = &rt->workers[i].dq;
        if (atomic_load_explicit(&d->bottom, RLX) >
            atomic_load_explicit(&d->top, RLX))
            return 1;
        for (int b = 0; b < WEFT_BANDS - 1; b++) {
            d = &rt->workers[i].bdq[b];
            if (atomic_load_explicit(&d->bottom, RLX) >
                atomic_load_explicit(&d->top, RLX))
                return 1;
        }
    }
    return atomic_load_explicit(&rt->stopping, RLX);
}

/* ---- switching ---------------------------------------------------------- */

static inline void after_switch(weft_worker *w, uintptr_t msg);
static void task_entry(void *msg);

/* Give task t (first run) a stack and a fresh frame. Owner worker. */
weft_noinline static void bind_stack(weft_worker *w, weft_tcb *t, uint32_t slot)
{
    weft_rt *rt = w->rt;
    uint64_t st = atomic_load_explicit(&t->state, RLX);
    int cls = (st & WEFT_TS_SMALL) ? 1 : 0;
    weft_stack_pool *p = &rt->pool[cls];
    int64_t i = weft__stack_get(p, &w->cache[cls]);
    if (weft_unlikely(i < 0)) /* max_tasks stacks per class: impossible */
        weft__die("stack", "no stack left for task slot %u", slot);
    rt->cold[slot].stack = (uint32_t)i + 1;
    atomic_store_explicit(&p->owner[i], slot + 1, RLX);
    if (!cls && (atomic_load_explicit(&p->flags[i], RLX) & WEFT_STK_CANARY))
        atomic_fetch_or_explicit(&t->state, WEFT_TS_CANARY, RLX);
    weft__cold_set_fiber(&rt->cold[slot], weft__stack_fiber(p, (uint32_t)i));
    __atomic_store_n(
        &t->sp,
        weft__ctx_make(weft__stack_top(p, (uint32_t)i) - WEFT_TLS_BYTES,
                       task_entry),
        __ATOMIC_RELAXED);
}

weft_cold static void canary_dead(weft_worker *w, weft_tcb *t)
{
    weft_rt *rt = w->rt;
    uint32_t slot = slot_of(rt, t);
    int cls = (atomic_load_explicit(&t->state, RLX) & WEFT_TS_SMALL) ? 1 : 0;
    weft__die("stack",
              "stack overflow in task '%s' (slot %u, %lu-byte %s stack, "
              "canary overwritten)",
              rt->cold[slot].name, slot, (unsigned long)rt->pool[cls].size,
              cls ? "small" : "default");
}

/* Switch-out check of a canary-protected stack. */
weft_noinline static void check_canary(weft_worker *w, weft_tcb *from)
{
    weft_rt *rt = w->rt;
    uint32_t i = rt->cold[slot_of(rt, from)].stack - 1;
    int cls = (atomic_load_explicit(&from->state, RLX) & WEFT_TS_SMALL) ? 1 : 0;
    if (!weft__stack_canary_ok(&rt->pool[cls], i))
        canary_dead(w, from);
}

/* Switch from the running context (task `from`, or the scheduler when
 * NULL) to task slot `to` (or the scheduler when negative), carrying
 * `msg`. Returns when the leaving context is resumed. Owner worker. */
/* Always inlined: in the one caller that never returns
 * (weft__task_switch_dead, kept out of TSan's instrumentation) an
 * out-of-line, instrumented copy would leave one TSan frame per ended
 * task on the stack's fiber. */
static inline __attribute__((always_inline)) void
switch_ctx(weft_worker *w, weft_tcb *from, int64_t to, uintptr_t msg)
{
    weft_rt *rt = w->rt;
    void **save = from ? &from->sp : &w->sched_sp;
    void *to_sp, *fiber;
    const void *bottom = NULL;
    size_t size = 0;
    if (from && weft_unlikely(atomic_load_explicit(&from->state, RLX) &
                              (WEFT_TS_SMALL | WEFT_TS_CANARY)))
        check_canary(w, from);
    poll_turn(w, from, to >= 0 ? (uint32_t)to + 1 : 0);
    if (to >= 0) {
        weft_tcb *t = &rt->hot[to];
        if (weft_unlikely(!t->sp))
            bind_stack(w, t, (uint32_t)to);
        w->current = t;
        w->cur_slot = (uint32_t)to;
        to_sp = t->sp;
        fiber = weft__cold_fiber(&rt->cold[to]);
        stat_inc(&w->st.switches);
#ifdef WEFT_ASAN
        int cls =
            (atomic_load_explicit(&t->state, RLX) & WEFT_TS_SMALL) ? 1 : 0;
        uint32_t si = rt->cold[to].stack - 1;
        bottom = weft__stack_bottom(&rt->pool[cls], si);
        size = (size_t)(weft__stack_top(&rt->pool[cls], si) - (char *)bottom);
#endif
    } else {
        w->current = NULL;
        to_sp = w->sched_sp;
        fiber = w->sched_fiber;
#ifdef WEFT_ASAN
        bottom = w->sched_stack_lo;
        size = w->sched_stack_size;
#endif
    }
    (void)bottom;
    (void)size;
    (void)fiber;
    void *fake = NULL;
    (void)fake;
    weft_san_start_switch((msg & MSG_MASK) == MSG_DEAD ? NULL : &fake, bottom,
                          size);
    weft_tsan_switch(fiber);
    uintptr_t got = (uintptr_t)weft__ctx_switch(save, to_sp, (void *)msg);
    weft_san_finish_switch(fake);
    if (got)
        after_switch(weft__worker_self(), got);
}

/* Everything a task does between its first switch-in and its end, in a
 * function that returns, so sanitizers see balanced frames. */
weft_noinline static void task_run(uintptr_t msg)
{
    weft_worker *w = weft__worker_self();
    after_switch(w, msg);
    weft_tcb *t = w->current;
    weft_fn fn = __atomic_load_n(&t->fn, __ATOMIC_RELAXED);
    void *arg = t->arg;
    weft__task_started(t, 0); /* arg is read: polls now */
    weft__task_exit(fn(arg));
}

/* First code of every task, on its fresh stack. It never returns, so it
 * is left out of TSan's instrumentation: its frame would otherwise stay
 * on the shadow stack of the stack's fiber, one per task the stack ever
 * ran, until TSan's depot overflows. */
WEFT_NO_TSAN static void task_entry(void *msg)
{
    weft_san_finish_switch(NULL);
    task_run((uintptr_t)msg);
    weft__task_switch_dead();
}

weft_noinline static void after_switch_slow(weft_worker *w, uintptr_t msg);

/* Complete the departure of the task that just left (see the header).
 * A yield, the common case, is handled inline. */
static inline void after_switch(weft_worker *w, uintptr_t msg)
{
    if ((msg & MSG_MASK) == MSG_YIELD)
        yq_push(w, wslot_of(w, (weft_tcb *)(msg & ~MSG_MASK)));
    else if (msg)
        after_switch_slow(w, msg);
}

static void after_switch_slow(weft_worker *w, uintptr_t msg)
{
    weft_rt *rt = w->rt;
    weft_tcb *prev = (weft_tcb *)(msg & ~MSG_MASK);
    uint32_t slot = slot_of(rt, prev);
    switch (msg & MSG_MASK) {
    case MSG_YBAND:
        byq_push(w, band_of(prev), wslot_of(w, prev));
        return;
    case MSG_PARK: {
        uint64_t s = atomic_load_explicit(&prev->state, RLX);
        for (;;) {
            if (s & WEFT_TS_WAKE) {
                /* An unpark raced with the park: consume it, stay
                 * runnable. */
                if (atomic_compare_exchange_weak_explicit(
                        &prev->state, &s, s & ~WEFT_TS_WAKE, RLX, RLX)) {
                    push_band(w, slot);
                    notify(w);
                    return;
                }
                continue;
            }
            uint64_t n = (s & ~WEFT_TS_MASK) | WEFT_TS_PARKED;
            /* Release: the parked context (saved registers, stack) is
             * complete before an unparker's acquire CAS sees PARKED. */
            if (atomic_compare_exchange_weak_explicit(
                    &prev->state, &s, n, memory_order_release, RLX))
                return;
        }
    }
    case MSG_DEAD:
        weft__task_finish(w, prev, slot);
        return;
    }
}

/* ---- what tasks call ------------------------------------------------- */

/* Does the summary show anything for this worker to take, other than its
 * own yield bit? Only valid with a single top word (w->top1). The owner
 * wrote its own words last, so the three loads hit its cache. */
static inline int others_signalled(weft_worker *w)
{
    uint64_t t = atomic_load_explicit(w->top1, RLX);
    if (weft_likely(!t))
        return 0;
    return t != w->ytop_bit ||
           atomic_load_explicit(w->yroot, RLX) != w->yroot_bit ||
           atomic_load_explicit(w->yleaf, RLX) != WEFT_LEAF_YIELD;
}

/* The general yield: any run-order step may supply the next task. */
weft_noinline static void yield_slow(weft_worker *w)
{
    weft_tcb *cur = w->current;
    int band = band_of(cur);
    /* An isolated task's yield ends its isolation: to its thread's old
     * frame (isolate.c). */
    int64_t next = w->iso_of ? -1 : find_local(w, band);
    if (next < 0 && !atomic_load_explicit(&w->rt->stopping, RLX) && !w->iso_of)
        return; /* nothing else is ready, or its band's turn goes on */
    stat_inc(&w->st.yields);
    switch_ctx(w, cur, next,
               (uintptr_t)cur | (band == BAND_NORMAL ? MSG_YIELD : MSG_YBAND));
}

/* The band bits of the state word, and their value for the normal band:
 * the fast path below tests "normal band, no small stack, no canary" with
 * one xor and one and. */
#define TS_BAND (UINT64_C(3) << (WEFT_TS_PRIO_SHIFT + 2))
#define TS_NORMAL ((uint64_t)BAND_NORMAL << (WEFT_TS_PRIO_SHIFT + 2))

/*
 * weft_yield's fast path covers the steady state of yielding tasks: the
 * next task is the head of the yield queue and nothing earlier in the run
 * order has work. It keeps no value live across the switch (everything is
 * re-read after it), so it needs no callee-saved registers of its own and
 * the switch's register save is the only one paid. Anything else goes to
 * yield_slow, which follows the whole run order.
 */
void weft_yield(void)
{
    weft_worker *w = weft__worker_self();
    if (weft_unlikely(!w || !w->current)) {
        sched_yield();
        return;
    }
    weft_tcb *cur = w->current;
    uint32_t head = w->yq_head;
    if (weft_unlikely(WEFT_SANITIZED || w->fair_countdown <= 1 ||
                      w->lifo_xbands || !head || !w->top1 ||
                      others_signalled(w) ||
                      weft__deque_maybe_nonempty(&w->dq) ||
                      ((atomic_load_explicit(&cur->state, RLX) ^ TS_NORMAL) &
                       (WEFT_TS_SMALL | WEFT_TS_CANARY | TS_BAND)))) {
        yield_slow(w);
        return;
    }
    w->fair_countdown--;
    w->lifo_runs = 0;
    uint32_t next = head - 1;
    weft_tcb *t = &w->hot[next];
    w->yq_head = atomic_load_explicit(&w->link[next], RLX);
    if (!w->yq_head)
        w->yq_tail = 0;
    w->current = t;
    w->cur_slot = next;
    poll_turn(w, cur, head);
    stat_inc(&w->st.fast_yields);
    uintptr_t got = (uintptr_t)weft__ctx_switch(
        &cur->sp, t->sp, (void *)((uintptr_t)cur | MSG_YIELD));
    if (got)
        after_switch(weft__worker_self(), got);
}

void weft__task_park(void)
{
    weft_worker *w = weft__worker_self();
    weft_tcb *cur = w->current;
    uint64_t s = atomic_load_explicit(&cur->state, RLX);
    if (s & WEFT_TS_WAKE) {
        /* A wake-up is pending: consume it instead of parking. Acquire:
         * pairs with the unparker's CAS, so what it published before
         * waking us is visible. */
        if (atomic_compare_exchange_strong_explicit(
                &cur->state, &s, s & ~WEFT_TS_WAKE, memory_order_acquire, RLX))
            return;
    }
    stat_inc(&w->st.parks);
    switch_ctx(w, cur, find_work(w), (uintptr_t)cur | MSG_PARK);
}

#if defined(WEFT_CTX_HAS_START) && !WEFT_SANITIZED
/*
 * Stack handoff. The task that just ended is abandoned, not suspended:
 * when the next task has never run and wants the same stack class, it
 * simply starts on the ended task's stack (weft__ctx_start resets the
 * stack pointer to its top). That skips the register save, the stack
 * release and get, and building a fresh frame; spawn-heavy work (spawn,
 * chained_spawn, fork-join leaves) then runs on one hot stack. The ended
 * task's end is published while still on the stack, which is safe
 * because the stack is not released: it changes owner.
 */
weft_noreturn static void handoff(weft_worker *w, weft_tcb *cur, uint32_t slot,
                                  uint32_t next)
{
    weft_rt *rt = w->rt;
    if (atomic_load_explicit(&cur->state, RLX) &
        (WEFT_TS_SMALL | WEFT_TS_CANARY))
        check_canary(w, cur);
    weft_tcb_cold *c = &rt->cold[slot], *n = &rt->cold[next];
    weft_tcb *t = &w->hot[next];
    int cls = (atomic_load_explicit(&t->state, RLX) & WEFT_TS_SMALL) ? 1 : 0;
    uint32_t i = c->stack - 1;
    n->stack = i + 1;
    weft__cold_set_fiber(n, weft__cold_fiber(c));
    c->stack = 0;
    atomic_store_explicit(&rt->pool[cls].owner[i], next + 1, RLX);
    if (weft_unlikely(atomic_load_explicit(&cur->state, RLX) & WEFT_TS_CANARY))
        atomic_fetch_or_explicit(&t->state, WEFT_TS_CANARY, RLX);
    poll_turn(w, cur, next + 1);
    weft__task_publish_end(w, cur, slot);
    w->current = t;
    w->cur_slot = next;
    stat_inc(&w->st.switches);
    weft__ctx_start(weft__stack_top(&rt->pool[cls], i) - WEFT_TLS_BYTES,
                    task_entry, NULL);
}
#endif

WEFT_NO_TSAN void weft__task_switch_dead(void)
{
    weft_worker *w = weft__worker_self();
    weft_tcb *cur = w->current;
    int64_t next = find_work(w);
#if defined(WEFT_CTX_HAS_START) && !WEFT_SANITIZED
    if (next >= 0 && !w->hot[next].sp &&
        !((atomic_load_explicit(&w->hot[next].state, RLX) ^
           atomic_load_explicit(&cur->state, RLX)) &
          WEFT_TS_SMALL))
        handoff(w, cur, w->cur_slot, (uint32_t)next);
#endif
    switch_ctx(w, cur, next, (uintptr_t)cur | MSG_DEAD);
    weft__die("worker", "a finished task was resumed");
}

/* A task of another band than normal made ready on w: its band's deque,
 * where the band order sees it. */
weft_noinline static void ready_xband(weft_worker *w, uint32_t slot)
{
    push_xband(w, slot, band_of(&w->hot[slot]));
    notify(w);
}

/* Always inlined (here and into weft__sched_ready): out of line, the
 * band check made it a call of its own on every unpark (measured with
 * callgrind: pingpong +2.4 M instructions per 120 k round trips). */
/* The LIFO slot's previous task goes to the deque. Out of line, so that
 * the common case (an empty slot) saves no register (callgrind:
 * weft__sched_ready_local 19 -> 11 instructions a call). */
weft_noinline static void lifo_spill(weft_worker *w, uint32_t slot)
{
    push_local(w, slot);
    if (weft_unlikely(w->rt->mesh))
        mesh_balance(w);
    else
        notify(w);
}

static inline __attribute__((always_inline)) void ready_local(weft_worker *w,
                                                              uint32_t slot)
{
    if (weft_unlikely(w->iso_of)) { /* never queued on an isolated task */
        signal_task(w->rt, slot);
        return;
    }
    /* The LIFO slot holds normal-band tasks only. */
    if (weft_unlikely((atomic_load_explicit(&w->hot[slot].state, RLX) &
                       TS_BAND) != TS_NORMAL)) {
        ready_xband(w, slot);
        return;
    }
    uint32_t old = w->lifo;
    w->lifo = slot + 1;
    if (old)
        lifo_spill(w, old - 1);
}

void weft__sched_ready_local(weft_worker *w, uint32_t slot)
{
    ready_local(w, slot);
}

void weft__sched_ready(weft_rt *rt, uint32_t slot)
{
    weft_worker *w = weft__worker_self();
    if (w && w->rt == rt) {
        ready_local(w, slot);
        return;
    }
    signal_task(rt, slot);
}

/*
 * Inline join (DESIGN.md §4, the fork-join runtimes' trick). A task that
 * joins a child it spawned which has not started yet, and is still in this
 * worker's LIFO slot or at the bottom of its deque (so no thief has it),
 * runs the child's function right here instead of parking: no stack to
 * bind, no switch, no wake-up. The child keeps its identity: w->current
 * names it while it runs, so weft_self, task-local storage, stats and
 * blocking are its own. It shares the caller's stack (and stack index,
 * fiber, canary), so if it parks, the caller's frames below it park with
 * it, and both resume together, possibly on another worker: everything
 * after the call re-reads the worker. Only a child of the same stack class
 * is taken, so stack checks stay valid.
 */
int weft__sched_run_inline(weft_worker *w, uint32_t slot)
{
    weft_rt *rt = w->rt;
    weft_tcb *t = &w->hot[slot], *parent = w->current;
    uint32_t pslot = w->cur_slot;
    /* Take it first: until it is ours, a thief may be starting it, and
     * its fields are not ours to read. */
    if (w->lifo == slot + 1) {
        w->lifo = 0;
    } else {
        if (!weft__deque_maybe_nonempty(&w->dq))
            return 0;
        uint32_t x = weft__deque_take(&w->dq);
        if (x == WEFT_DEQUE_EMPTY)
            return 0;
        if (x != slot) {
            push_local(w, x); /* not ours: back where it was */
            return 0;
        }
    }
    if (t->sp || ((atomic_load_explicit(&t->state, RLX) ^
                   atomic_load_explicit(&parent->state, RLX)) &
                  WEFT_TS_SMALL)) {
        push_local(w, slot); /* started before, or another stack class */
        return 0;
    }
    weft_tcb_cold *c = &rt->cold[slot], *pc = &rt->cold[pslot];
    void *tls[WEFT_TLS_KEYS];
    c->stack = pc->stack;
    weft__cold_set_fiber(c, weft__cold_fiber(pc));
    c->tls_area = tls;
    /* The parent waits for the child on its own stack: for observers it
     * is parked in a join (obs/dump.c), though its state stays RUNNABLE.
     * Its cold line is already loaded (pc->stack above). */
    weft__cold_wait_set(pc, WEFT_WK_JOIN_INLINE, t);
    w->current = t;
    w->cur_slot = slot;
    atomic_store_explicit(&w->running, slot + 1, RLX);
    stat_inc(&w->st.inlined);
    /* One poll of the child, timed with its parent's. */
    weft_fn fn = __atomic_load_n(&t->fn, __ATOMIC_RELAXED);
    void *arg = t->arg;
    weft__task_started(t, 1);
    void *r = fn(arg);
    if (c->tls)
        weft__task_exit(r); /* its TLS destructors, then its result */
    else
        c->result = r;
    w = weft__worker_self(); /* it may have parked and moved */
    weft__cold_wait_set(pc, WEFT_WK_NONE, NULL);
    c->stack = 0;
    weft__cold_set_fiber(c, NULL);
    c->tls = NULL;
    c->tls_area = NULL;
    stat_inc(&w->st.finishes);
    w->current = parent;
    w->cur_slot = pslot;
    atomic_store_explicit(&w->running, pslot + 1, RLX);
    return 1;
}

/* ---- preemption (preempt.c) ------------------------------------------ */

/*
 * The SIGURG handler's work, on the interrupted task's stack (preempt.c
 * says why that is safe and what it relies on). The request must name
 * the poll running now; the task must be preemptible and outside a
 * disabled section; the interrupted instruction must be in the program's
 * own code. Then the task is switched out as a yield, to the back of
 * this worker's yield queue, if anything else is ready. Signal handler
 * on a worker's thread.
 */
void weft__preempt_here(void *uc)
{
    weft_worker *w = weft__worker_self();
    if (!w || !w->current || w->iso_of)
        return;
    uint64_t seq = weft__poll_seq(w);
    /* Acquire: pairs with the monitor's release store of the request. */
    if (atomic_load_explicit(&w->iso_req, memory_order_acquire) == seq + 1) {
        atomic_store_explicit(&w->iso_req, 0, RLX);
        if (!weft__isolate_uc_ok(uc) || !weft__isolate_here(w))
            stat_inc(&w->st.preempt_refused); /* the monitor asks again */
        return;
    }
    if (atomic_load_explicit(&w->preempt_req, memory_order_acquire) != seq + 1)
        return; /* stale: that poll has ended */
    atomic_store_explicit(&w->preempt_req, 0, RLX);
    weft_tcb *cur = w->current;
    weft_rt *rt = w->rt;
    if (!(atomic_load_explicit(&cur->state, RLX) & WEFT_TS_PREEMPTIBLE))
        return;
    if (rt->cold[w->cur_slot].nopreempt || !weft__preempt_uc_safe(uc)) {
        /* Not here: at its next cooperative point; the monitor also
         * tries again at its next tick. */
        atomic_store_explicit(&w->yield_req, seq + 1, RLX);
        stat_inc(&w->st.preempt_refused);
        return;
    }
    poll_timers(w); /* the due timer may be why it is preempted */
    int band = band_of(cur);
    int64_t next = find_local(w, band);
    if (next < 0) { /* nothing else is ready, or its band's turn goes on */
        atomic_store_explicit(&w->preempt_none, seq + 1, RLX);
        return;
    }
    stat_inc(&w->st.preemptions);
    stat_inc(&w->st.yields);
    switch_ctx(w, cur, next,
               (uintptr_t)cur | (band == BAND_NORMAL ? MSG_YIELD : MSG_YBAND));
    /* Resumed, maybe on another worker thread: sigreturn must install
     * that thread's signal stack, not the one it was delivered on. */
    weft__preempt_fix_uc(uc, weft__worker_self());
}

/* ---- isolation (isolate.c) ------------------------------------------- */

int weft__isolate_here(weft_worker *w)
{
    weft_rt *rt = w->rt;
    weft_worker *iso = weft__iso_claim(rt);
    if (!iso)
        return 0;
    /* The identity the task goes on with: w's view of the runtime,
     * w's scheduler frame on this thread (where the task's next switch
     * lands), and queues of its own, which stay empty (nothing is queued
     * on an isolation identity; see weft__sched_ready_local). */
    iso->rt = rt;
    iso->hot = w->hot;
    iso->link = w->link;
    iso->top1 = NULL; /* keeps weft_yield off its fast path */
    iso->current = w->current;
    iso->cur_slot = w->cur_slot;
    iso->lifo = iso->lifo_runs = iso->yq_head = iso->yq_tail = 0;
    iso->xbands = 0;
    iso->fair_countdown = FAIR_TICK;
    iso->id = w->id;
    iso->leaf = w->leaf;
    iso->resv_hint = w->resv_hint;
    iso->rng = w->rng;
    iso->sched_sp = w->sched_sp;
    iso->sched_fiber = w->sched_fiber;
    iso->sched_stack_lo = w->sched_stack_lo;
    iso->sched_stack_size = w->sched_stack_size;
    iso->altstack = w->altstack;
    iso->order = w->order;
    iso->poll_t0 = w->poll_t0;
    atomic_store_explicit(&iso->coarse_ns,
                          atomic_load_explicit(&w->coarse_ns, RLX), RLX);
    atomic_store_explicit(&iso->running, w->cur_slot + 1, RLX);
    atomic_store_explicit(&iso->thr, atomic_load_explicit(&w->thr, RLX), RLX);
    iso->iso_of = w;
    tls_worker = iso;
    weft__thr_lower_priority();
    w->current = NULL;
    atomic_store_explicit(&w->running, 0, RLX);
    atomic_fetch_add_explicit(&rt->isolations, 1, RLX);
    /* Release: pairs with the monitor's acquire load of handoff: what
     * this thread wrote to w is visible to w's next thread. */
    atomic_store_explicit(&w->handoff, 1, memory_order_release);
    return 1;
}

/* A task made runnable by a thread that is no worker of its runtime. */
static void signal_task(weft_rt *rt, uint32_t slot)
{
    if (weft__summary_signal(&rt->sum, slot))
        weft__wake_one(rt);
}

/* The isolated task has switched out to this thread's old scheduler
 * frame: hand whatever is left on the identity back to the runtime and
 * release it. Thread of the isolation identity, tls_worker == iso. */
static void iso_retire(weft_worker *iso)
{
    weft_rt *rt = iso->rt;
    tls_worker = NULL;            /* unparks from here go through the summary */
    weft__thr_restore_priority(); /* the rest is the runtime's work */
    if (iso->lifo)
        signal_task(rt, iso->lifo - 1);
    iso->lifo = 0;
    uint32_t x;
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
    weft__iso_release(iso);
}

/* ---- fairness between bands ------------------------------------------ */

void weft__sched_set_fairness(weft_rt *rt, int rule,
                              const uint32_t weight[WEFT_BANDS])
{
    atomic_store_explicit(&rt->fair_rule, rule, RLX);
    for (int b = 0; b < WEFT_BANDS; b++)
        atomic_store_explicit(&rt->fair_weight[b], weight[b], RLX);
    /* Release: pairs with the acquire load of fair_gen by a worker that
     * then copies rule and weights. A worker racing with two updates may
     * copy a mix; it copies again at its next tick, as fair_gen moved. */
    atomic_fetch_add_explicit(&rt->fair_gen, 1, memory_order_release);
}

/* ---- the loop ------------------------------------------------------- */

/* Wake v if it sleeps (it takes the wake-up: sleep 1 -> 0); 1 if so. The
 * caller has done the RMW on rt->idle (header). Any thread. */
static int wake_sleeper(weft_worker *v)
{
    uint32_t one = 1;
    if (atomic_load_explicit(&v->sleep, RLX) != 1 ||
        !atomic_compare_exchange_strong_explicit(&v->sleep, &one, 0, RLX, RLX))
        return 0;
    weft__futex_wake(&v->sleep, 1);
    return 1;
}

void weft__wake_one(weft_rt *rt)
{
    /* acq_rel RMW: pairs with the sleeper's RMW on idle (header). */
    if (!atomic_fetch_add_explicit(&rt->idle, 0, memory_order_acq_rel))
        return;
    for (uint32_t i = 0; i < rt->nworkers; i++)
        if (wake_sleeper(&rt->workers[i]))
            return;
}

/*
 * Nothing to run: search (spin, watching for work anywhere) for a short
 * bound, then sleep. While searching the worker counts in rt->searching,
 * which tells notify() that new work will be found without a wake-up. A
 * searcher that finds work and was the last one wakes a successor, since
 * where one task appeared more may follow (Go's resetspinning); the chain
 * stops at the first worker that finds nothing. The spin is bounded
 * (DESIGN.md §9: unbounded stealing spins burn idle CPU).
 */
static void idle(weft_worker *w)
{
    weft_rt *rt = w->rt;
    publish_yield(w, 0); /* the yield queue is empty when idle */
    w->band_cur = -1;    /* idle time is no band's */
    if (rt->mesh) {
        if (w->nstaged)
            mesh_flush(w);
        atomic_store_explicit(&w->load, 0, RLX);
        if (w->threshold < MESH_MAX_THRESHOLD)
            w->threshold *= 2;
        if (rt->nworkers > 1) /* ask for work (relaxed: a hint) */
            atomic_fetch_or_explicit(hunger_word(rt, w->id),
                                     hunger_bit(rt, w->id), RLX);
    }
    atomic_fetch_add_explicit(&rt->searching, 1, RLX);
    for (int i = 0; i < SPIN_ROUNDS; i++) {
        if (has_foreign_work(w)) {
            if (atomic_fetch_sub_explicit(&rt->searching, 1, RLX) == 1 &&
                atomic_load_explicit(&rt->idle, RLX))
                weft__wake_one(rt);
            return;
        }
        weft_cpu_relax();
    }
    atomic_fetch_sub_explicit(&rt->searching, 1, RLX);
    atomic_store_explicit(&w->sleep, 1, RLX);
    /* acq_rel RMW: pairs with weft__wake_one's RMW on idle (header). */
    atomic_fetch_add_explicit(&rt->idle, 1, memory_order_acq_rel);
    /* Sleep until woken, or until this worker's earliest timer: only its
     * own tasks arm timers on it, and they do so while it is awake, so
     * the deadline read here cannot move earlier while it sleeps. */
    uint64_t next = weft__timer_next(&w->timers);
    if (!has_foreign_work(w)) {
        /* Idle time: the clock is read here, around the sleep, and
         * nowhere on the switch path (obs/stats.c derives busy time). */
        uint64_t t0 = weft__clock_ns();
        atomic_store_explicit(&w->sleep_since, t0, RLX);
        while (atomic_load_explicit(&w->sleep, RLX) == 1 &&
               !atomic_load_explicit(&rt->stopping, RLX))
            if (weft__futex_wait(&w->sleep, 1, next == UINT64_MAX ? 0 : next) <
                0)
                break; /* a timer is due */
        uint64_t t1 = weft__clock_ns(), slept = t1 - t0;
        atomic_store_explicit(&w->st.idle_ns,
                              atomic_load_explicit(&w->st.idle_ns, RLX) + slept,
                              RLX);
        atomic_store_explicit(&w->sleep_since, 0, RLX);
        /* The monitor may have slept longer than a tick (all idle,
         * sysmon.c): its clock is brought up to date here, so polls are
         * not timed on a stale one. */
        atomic_store_explicit(&w->coarse_ns, t1, RLX);
    }
    atomic_store_explicit(&w->sleep, 0, RLX);
    /* seq_cst RMW, then seq_cst load: pairs with the monitor's store of
     * WEFT_MON_DEEP and its load of idle before it sleeps (sysmon.c). */
    atomic_fetch_sub_explicit(&rt->idle, 1, memory_order_seq_cst);
    if (weft_unlikely(
            atomic_load_explicit(&rt->mon_sleep, memory_order_seq_cst) ==
            WEFT_MON_DEEP))
        weft__sysmon_kick(rt);
}

int weft__worker_loop(weft_worker *w)
{
    tls_worker = w;
    w->fair_countdown = FAIR_TICK;
    w->band_cur = -1;
    fair_sync(w);
    w->sched_fiber = weft_tsan_current();
#ifdef WEFT_ASAN
    pthread_attr_t a;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        void *lo;
        size_t sz;
        pthread_attr_getstack(&a, &lo, &sz);
        w->sched_stack_lo = lo;
        w->sched_stack_size = sz;
        pthread_attr_destroy(&a);
    }
#endif
    while (!atomic_load_explicit(&w->rt->stopping, memory_order_acquire)) {
        if (weft_unlikely(tls_worker != w)) {
            /* This thread kept an isolated task, which has now switched
             * out: w has another thread (isolate.c). */
            iso_retire(tls_worker);
            return 1;
        }
        poll_timers(w);
        int64_t s = find_work(w);
        if (s >= 0 && w->rt->mesh) { /* fed: no longer hungry */
            _Atomic uint64_t *word = hunger_word(w->rt, w->id);
            uint64_t bit = hunger_bit(w->rt, w->id);
            if (atomic_load_explicit(word, RLX) & bit)
                atomic_fetch_and_explicit(word, ~bit, RLX);
        }
        if (s >= 0)
            switch_ctx(w, NULL, s, MSG_NONE);
        else
            idle(w);
    }
    tls_worker = NULL;
    return 0;
}
