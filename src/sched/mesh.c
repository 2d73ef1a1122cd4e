/*
 * mesh.c - mesh mode: balancing by pushing work to neighbours, with its
 * parts of the fairness tick, of going idle and of the run order.
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
 * rt->idle, then checks its inbox (has_foreign_work, idle.c). The argument of
 * idle.c applies unchanged, with the inbox in place of the deques.
 */
#include "runq.h"

#include "../base/bits.h"

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
static void wake_worker(weft_rt *rt, weft_worker *v)
{
    /* acq_rel RMW: pairs with the sleeper's RMW on idle (idle.c). */
    if (atomic_fetch_add_explicit(&rt->idle, 0, memory_order_acq_rel))
        weft__idle_wake(v);
}

/* Publish w's staged chunk for dst and tell dst. Owner only. */
static void mesh_publish(weft_worker *w, uint32_t dst)
{
    weft_worker *v = &w->rt->workers[dst];
    weft__mbox_publish(mbox_to(w, dst));
    /* Release: pairs with the owner's acquire exchange in
     * weft__mesh_from_mail; the ring's tail was released before. */
    atomic_fetch_or_explicit(&v->inbox[w->id / 64], UINT64_C(1) << (w->id % 64),
                             memory_order_release);
    atomic_fetch_or_explicit(&v->inbox_top, UINT64_C(1) << (w->id / 64),
                             memory_order_release);
    wake_worker(w->rt, v);
}

weft_noinline void weft__mesh_flush(weft_worker *w)
{
    for (uint32_t i = 0; i < w->mesh.nstaged; i++)
        mesh_publish(w, w->mesh.staged[i]);
    w->mesh.nstaged = 0;
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
    while (k < w->mesh.nstaged && w->mesh.staged[k] != dst)
        k++;
    if (k == w->mesh.nstaged) { /* a fresh chunk */
        if (w->mesh.nstaged == WEFT_MESH_STAGED)
            weft__mesh_flush(w), k = 0;
        c = weft__mbox_stage(mbox_to(w, dst)); /* the same chunk */
        c->n = 0;
        w->mesh.staged[w->mesh.nstaged++] = dst;
    }
    c->idx[c->n++] = slot;
    stat_inc(&w->st.deflected);
    if (!batch || c->n == WEFT_CHUNK) {
        mesh_publish(w, dst);
        w->mesh.staged[k] = w->mesh.staged[--w->mesh.nstaged];
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
            if (2 * atomic_load_explicit(&v->mesh.load, RLX) <
                w->mesh.threshold)
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
    /* Fork records leave as tasks (fork.c), before the next push reuses
     * their positions. */
    k = weft__worker_claim_grabbed(w, got, k);
    uint32_t i = 0;
    while (i < k && mesh_stage(w, v, got[i], i + 1 < k))
        i++;
    uint32_t sent = i;
    for (; i < k; i++) /* its ring is full: keep them */
        push_local(w, got[i]);
    if (sent && weft_unlikely(atomic_load_explicit(&w->tracing, RLX)))
        weft__trace_event(w->rt, w, WEFT_TEV_MAIL, got[0], 0, v, sent, 0);
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
        uint32_t want = w->mesh.feed ? w->mesh.feed : 1,
                 share = load / (weft_popcount64(got) + 1);
        if (share > want)
            share = want;
        if (!share)
            share = 1;
        w->mesh.fed++;
        if (want < WEFT_CHUNK)
            w->mesh.feed = want * 2 < WEFT_CHUNK ? want * 2 : WEFT_CHUNK;
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
weft_noinline void weft__mesh_balance(weft_worker *w)
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
    if (load < w->mesh.threshold || weft__inject_len(&rt->inject))
        return;
    /* After a look that found no one, let threshold/4 pushes pass before
     * the next: a look reads other workers' lines. */
    if (w->mesh.gate) {
        w->mesh.gate--;
        return;
    }
    if ((v = mesh_target(w, w->cur_slot)) < 0 ||
        !mesh_send(w, (uint32_t)v,
                   load / 2 < WEFT_CHUNK ? load / 2 : WEFT_CHUNK))
        w->mesh.gate = w->mesh.threshold / 4;
}

/* Fairness tick: publish the load level, adapt the threshold, and when
 * workers sleep, send them part of the backlog. Owner only. */
weft_noinline void weft__mesh_tick(weft_worker *w)
{
    if (!w->mesh.fed) /* no feeds for a tick: back to one task per feed */
        w->mesh.feed = 1;
    w->mesh.fed = 0;
    uint32_t load = dq_size(w);
    atomic_store_explicit(&w->mesh.load, load, RLX);
    if (load > w->mesh.threshold) {
        if (++w->mesh.high_ticks >= MESH_HIGH_TICKS) {
            w->mesh.threshold = w->mesh.threshold / 2 > MESH_MIN_THRESHOLD
                                    ? w->mesh.threshold / 2
                                    : MESH_MIN_THRESHOLD;
            w->mesh.high_ticks = 0;
        }
    } else {
        w->mesh.high_ticks = 0;
    }
    /* An idle neighbour gets half the backlog, or one yielded task (as
     * weft__steal_share gives thieves in steal mode). */
    if (mesh_any_hungry(w->rt) && (load >= 2 || w->yq.head)) {
        int64_t v = mesh_hungry(w, load + (w->yq.head != 0));
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
weft_noinline int64_t weft__mesh_from_mail(weft_worker *w)
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
    atomic_store_explicit(&w->mesh.load, dq_size(w), RLX);
    /* More than one arrived: the rest are queued here and stealable.
     * Wake a sleeper as steal mode would, or they wait for this worker
     * even if its first task runs for long (measured: a hang with a
     * spinning task fed two at a time). */
    if (dq_size(w) || w->xbands)
        notify(w);
    return first;
}

/* w goes idle: flush what is staged, publish no load, keep work local
 * longer next time, and ask for work. Owner only. */
void weft__mesh_idle(weft_worker *w)
{
    weft_rt *rt = w->rt;
    if (w->mesh.nstaged)
        weft__mesh_flush(w);
    atomic_store_explicit(&w->mesh.load, 0, RLX);
    if (w->mesh.threshold < MESH_MAX_THRESHOLD)
        w->mesh.threshold *= 2;
    if (rt->nworkers > 1) /* ask for work (relaxed: a hint) */
        atomic_fetch_or_explicit(hunger_word(rt, w->id), hunger_bit(rt, w->id),
                                 RLX);
}

/* w found work: no longer hungry. Owner only. */
void weft__mesh_fed(weft_worker *w)
{
    _Atomic uint64_t *word = hunger_word(w->rt, w->id);
    uint64_t bit = hunger_bit(w->rt, w->id);
    if (atomic_load_explicit(word, RLX) & bit)
        atomic_fetch_and_explicit(word, ~bit, RLX);
}
