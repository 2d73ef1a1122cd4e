/*
 * test_priority.c - priority bands (worker.c, "bands"): strict order,
 * stealing the most urgent band first, DRR and lottery shares (polls and
 * time) within 10 % of the band weights, progress of every band while the
 * critical band is saturated, switching the rule while running, and the
 * priority range at spawn.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"

static const uint32_t w8421[WEFT_BANDS] = {8, 4, 2, 1};
static const int prio_of_band[WEFT_BANDS] = {WEFT_PRIO_CRITICAL, WEFT_PRIO_HIGH,
                                             WEFT_PRIO_NORMAL, WEFT_PRIO_LOW};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time of the calling thread (the worker running the task): the
 * shares are of CPU time, and a worker thread preempted by the kernel in
 * the middle of a poll must not count as its band's time. */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static weft_rt *rt_fair(unsigned workers, int rule)
{
    weft_config c;
    weft_config_default(&c);
    c.max_tasks = 256;
    c.workers = workers;
    c.fairness = rule;
    return test_rt_cfg(&c);
}

static int spawn_prio(weft_task *t, weft_fn fn, void *arg, int prio)
{
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.priority = prio;
    return weft_spawn(NULL, t, fn, arg, &a);
}

/* ---- strict order ----------------------------------------------------- */

static _Atomic int order_log[16], order_len;

static void *log_self(void *arg)
{
    int k = atomic_fetch_add(&order_len, 1);
    order_log[k] = (int)(uintptr_t)arg;
    return NULL;
}

enum { N1, N2, L, C, N3, H, NSTRICT };

static void *strict_root(void *arg)
{
    (void)arg;
    static const int prio[NSTRICT] = {WEFT_PRIO_NORMAL, WEFT_PRIO_NORMAL,
                                      WEFT_PRIO_LOW,    WEFT_PRIO_CRITICAL,
                                      WEFT_PRIO_NORMAL, WEFT_PRIO_HIGH};
    weft_task t[NSTRICT];
    /* All queued before any runs (one worker, no switch until the join):
     * the critical one after two normal ones, a normal one after it. */
    for (int i = 0; i < NSTRICT; i++)
        CHECK_OK(spawn_prio(&t[i], log_self, (void *)(uintptr_t)i, prio[i]));
    CHECK_OK(weft_join(t[C], NULL));
    for (int i = 0; i < NSTRICT; i++)
        if (i != C)
            CHECK_OK(weft_join(t[i], NULL));
    return NULL;
}

TEST(api, priority_strict_order)
{
    weft_rt *rt = rt_fair(1, WEFT_FAIR_STRICT);
    atomic_store(&order_len, 0);
    test_run(rt, strict_root, NULL);
    CHECK_EQ_INT(atomic_load(&order_len), NSTRICT);
    CHECK_EQ_INT(order_log[0], C);
    CHECK_EQ_INT(order_log[1], H);
    CHECK_EQ_INT(order_log[NSTRICT - 1], L);
    test_rt_destroy_clean(rt);
}

/* ---- stealing: most urgent band first --------------------------------- */

static _Atomic int spin_running, spin_release, stolen_len;
static _Atomic int stolen_log[16];

static void *spinner(void *arg)
{
    (void)arg;
    atomic_store(&spin_running, 1);
    uint64_t end = now_ns() + 10000000000ull;
    while (!atomic_load(&spin_release) && now_ns() < end)
        ;
    return NULL;
}

static void *log_stolen(void *arg)
{
    int k = atomic_fetch_add(&stolen_len, 1);
    stolen_log[k] = (int)(uintptr_t)arg;
    return NULL;
}

enum { S_P2, S_P3, S_L, S_H, S_C, S_NA, NSTEAL };

static void *steal_root(void *arg)
{
    (void)arg;
    weft_task p, t[NSTEAL];
    /* Occupy the other worker: the spinner is pushed out of the LIFO
     * slot by the next spawn and stolen, or, in mesh mode, fed to the
     * other worker once two tasks are queued here (a sleeping neighbour
     * is fed only then). */
    CHECK_OK(weft_spawn(NULL, &p, spinner, NULL, NULL));
    CHECK_OK(weft_spawn(NULL, &t[S_P2], log_stolen, (void *)S_P2, NULL));
    CHECK_OK(weft_spawn(NULL, &t[S_P3], log_stolen, (void *)S_P3, NULL));
    uint64_t end = now_ns() + 10000000000ull;
    while (!atomic_load(&spin_running) && now_ns() < end)
        ;
    CHECK(atomic_load(&spin_running));
    static const int prio[NSTEAL] = {0,
                                     0,
                                     WEFT_PRIO_LOW,
                                     WEFT_PRIO_HIGH,
                                     WEFT_PRIO_CRITICAL,
                                     WEFT_PRIO_NORMAL};
    for (int i = S_L; i < NSTEAL; i++)
        CHECK_OK(spawn_prio(&t[i], log_stolen, (void *)(uintptr_t)i, prio[i]));
    /* Queued here: C, H, L in their bands; P2, P3 on the deque; NA in
     * the LIFO slot (not stealable). Keep this worker busy while the
     * other one, released, steals the five stealable ones. */
    atomic_store(&spin_release, 1);
    end = now_ns() + 10000000000ull;
    while (atomic_load(&stolen_len) < NSTEAL - 1 && now_ns() < end)
        ;
    CHECK_EQ_INT(atomic_load(&stolen_len), NSTEAL - 1);
    CHECK_OK(weft_join(p, NULL));
    for (int i = 0; i < NSTEAL; i++)
        CHECK_OK(weft_join(t[i], NULL));
    return NULL;
}

TEST(api, priority_steal_highest_band_first)
{
    weft_rt *rt = rt_fair(2, WEFT_FAIR_DRR);
    atomic_store(&spin_running, 0);
    atomic_store(&spin_release, 0);
    atomic_store(&stolen_len, 0);
    test_run(rt, steal_root, NULL);
    CHECK_EQ_INT(stolen_log[0], S_C);
    CHECK_EQ_INT(stolen_log[1], S_H);
    CHECK(stolen_log[2] == S_P2 || stolen_log[2] == S_P3);
    CHECK(stolen_log[3] == S_P2 || stolen_log[3] == S_P3);
    CHECK_EQ_INT(stolen_log[4], S_L);
    test_rt_destroy_clean(rt);
}

/* ---- shares ----------------------------------------------------------- */

/* CPU-bound yielders, each poll POLL_NS of thread CPU time (long enough
 * that what TSan costs per switch does not dominate); per band: polls and
 * the time measured inside the polls. */
enum { PER_BAND = 2, POLL_NS = 40000 };

typedef struct share_run {
    _Atomic long polls[WEFT_BANDS];
    _Atomic uint64_t ns[WEFT_BANDS];
    _Atomic long total;
    _Atomic int stop; /* or when set */
} share_run;

typedef struct share_task {
    share_run *r;
    int band;
} share_task;

static void *share_worker(void *arg)
{
    share_task *st = arg;
    share_run *r = st->r;
    for (;;) {
        if (atomic_load_explicit(&r->stop, memory_order_relaxed))
            break;
        uint64_t t0 = cpu_ns(), t1;
        do
            t1 = cpu_ns();
        while (t1 - t0 < POLL_NS);
        atomic_fetch_add_explicit(&r->polls[st->band], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&r->ns[st->band], t1 - t0,
                                  memory_order_relaxed);
        atomic_fetch_add_explicit(&r->total, 1, memory_order_relaxed);
        weft_yield();
    }
    return NULL;
}

/* Spawn PER_BAND yielders per band from this (plain) thread. */
static void share_spawn(weft_rt *rt, share_run *r, share_task *st, weft_task *t,
                        int per_band0)
{
    int k = 0;
    for (int b = 0; b < WEFT_BANDS; b++)
        for (int i = 0; i < (b ? PER_BAND : per_band0); i++, k++) {
            weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
            a.priority = prio_of_band[b];
            st[k] = (share_task){r, b};
            CHECK_OK(weft_spawn(rt, &t[k], share_worker, &st[k], &a));
        }
}

static void wait_polls(share_run *r, long n)
{
    long target = atomic_load(&r->total) + n;
    uint64_t end = now_ns() + 90000000000ull; /* a loaded machine */
    while (atomic_load(&r->total) < target && now_ns() < end)
        usleep(500);
    CHECK_CMP_INT(atomic_load(&r->total), >=, target);
}

static void snap(share_run *r, long out[WEFT_BANDS])
{
    for (int b = 0; b < WEFT_BANDS; b++)
        out[b] = atomic_load(&r->polls[b]);
}

/* 1 when a band's share is off by more than 10%: printed, not failed
 * (the caller makes the trial again). */
static int check_shares(share_run *r, const char *rule)
{
    int off = 0;
    long polls = 0;
    uint64_t ns = 0;
    for (int b = 0; b < WEFT_BANDS; b++) {
        polls += atomic_load(&r->polls[b]);
        ns += atomic_load(&r->ns[b]);
    }
    for (int b = 0; b < WEFT_BANDS; b++) {
        double want = w8421[b] / 15.0;
        double ps = (double)atomic_load(&r->polls[b]) / (double)polls;
        double ts = (double)atomic_load(&r->ns[b]) / (double)ns;
        fprintf(stderr, "%s band %d: polls %.4f, time %.4f, configured %.4f\n",
                rule, b, ps, ts, want);
        if (ps / want < 0.9 || ps / want > 1.1 || ts / want < 0.9 ||
            ts / want > 1.1) {
            fprintf(stderr,
                    "%s: band %d: poll share %.4f, time share %.4f, "
                    "configured %.4f: off by more than 10%%\n",
                    rule, b, ps, ts, want);
            off = 1;
        }
    }
    return off;
}

static int shares_trial(int rule, const char *name)
{
    weft_rt *rt = rt_fair(1, rule);
    static share_run r;
    memset(&r, 0, sizeof r);
    share_task st[WEFT_BANDS * PER_BAND];
    weft_task t[WEFT_BANDS * PER_BAND];
    share_spawn(rt, &r, st, t, PER_BAND);
    /* Measure 10^5 polls of the steady state: not the first ones, which
     * bind stacks (milliseconds each under TSan, charged to their band). */
    long p0[WEFT_BANDS];
    uint64_t n0[WEFT_BANDS];
    wait_polls(&r, 5000);
    for (int b = 0; b < WEFT_BANDS; b++) {
        p0[b] = atomic_load(&r.polls[b]);
        n0[b] = atomic_load(&r.ns[b]);
    }
    wait_polls(&r, 100000);
    atomic_store(&r.stop, 1);
    for (int k = 0; k < WEFT_BANDS * PER_BAND; k++)
        CHECK_OK(weft_join(t[k], NULL));
    for (int b = 0; b < WEFT_BANDS; b++) {
        atomic_store(&r.polls[b], atomic_load(&r.polls[b]) - p0[b]);
        atomic_store(&r.ns[b], atomic_load(&r.ns[b]) - n0[b]);
    }
    int off = check_shares(&r, name);
    test_rt_destroy_clean(rt);
    return off;
}

/* A trial with a share off by more than 10% is made again, up to three
 * in all: the host of this project's VMs stops a CPU for 100 ms now and
 * then, and the thread's CPU clock runs on across the stop (decision
 * 0009), so a 40 us poll it lands in is charged 100 ms, a tenth of a
 * band's time in a trial (3 of 120 runs failed so here under heavy load). A
 * rule that gives the wrong shares fails every trial. */
static void shares_under(int rule, const char *name)
{
    int off = 0;
    for (int trial = 0; trial < 3 && (off = shares_trial(rule, name)); trial++)
        ;
    CHECK_EQ_INT(off, 0);
}

/* Group "shares": CTest runs it alone (RUN_SERIAL, tests/CMakeLists.txt).
 * Beside a second test binary on the 2 CPUs these failed in 3-4 of 6
 * runs: a spinning thread's own CPU clock can stand still under such
 * contention on this project's VMs (decision 0009), so a 40 us poll ran
 * 80 ms and the time shares skewed. The checks are the same. */
TEST_T(shares, priority_drr, 120)
{
    shares_under(WEFT_FAIR_DRR, "drr");
}

TEST_T(shares, priority_lottery, 120)
{
    shares_under(WEFT_FAIR_LOTTERY, "lottery");
}

/* ---- progress with the critical band saturated ------------------------ */

static void progress_under(int rule, const char *name)
{
    weft_rt *rt = rt_fair(1, rule);
    static share_run r;
    memset(&r, 0, sizeof r);
    enum { CRIT = 6 };
    share_task st[CRIT + 3 * PER_BAND];
    weft_task t[CRIT + 3 * PER_BAND];
    share_spawn(rt, &r, st, t, CRIT);
    wait_polls(&r, 20000);
    atomic_store(&r.stop, 1);
    for (int k = 0; k < CRIT + 3 * PER_BAND; k++)
        CHECK_OK(weft_join(t[k], NULL));
    long total = atomic_load(&r.total);
    /* Every band progresses, at no less than half its configured share
     * (shares are per band, not per task). */
    for (int b = 1; b < WEFT_BANDS; b++) {
        long want = (long)(total * (double)w8421[b] / 15.0);
        if (atomic_load(&r.polls[b]) < want / 2)
            weft_check_fail(__FILE__, __LINE__,
                            "%s: band %d made %ld of %ld polls, configured "
                            "share %ld",
                            name, b, atomic_load(&r.polls[b]), total, want);
    }
    test_rt_destroy_clean(rt);
}

TEST_T(api, priority_progress_drr, 120)
{
    progress_under(WEFT_FAIR_DRR, "drr");
}

TEST_T(api, priority_progress_lottery, 120)
{
    progress_under(WEFT_FAIR_LOTTERY, "lottery");
}

/* ---- switching the rule while running --------------------------------- */

TEST_T(api, priority_switch_rule_live, 120)
{
    weft_rt *rt = rt_fair(1, WEFT_FAIR_DRR);
    static share_run r;
    memset(&r, 0, sizeof r);
    share_task st[WEFT_BANDS * PER_BAND];
    weft_task t[WEFT_BANDS * PER_BAND];
    share_spawn(rt, &r, st, t, PER_BAND);
    long a[WEFT_BANDS], b[WEFT_BANDS];

    /* DRR: every band runs (after the first polls, which bind stacks:
     * slow under sanitizers, and charged to their bands). */
    wait_polls(&r, 20000);
    snap(&r, a);
    wait_polls(&r, 5000);
    snap(&r, b);
    for (int k = 0; k < WEFT_BANDS; k++)
        CHECK_CMP_INT(b[k] - a[k], >, 0);

    /* Strict: after the switch settles (one fairness tick), only the
     * critical band runs. */
    weft__sched_set_fairness(rt, WEFT_FAIR_STRICT, w8421);
    wait_polls(&r, 1000);
    snap(&r, a);
    wait_polls(&r, 5000);
    snap(&r, b);
    CHECK_CMP_INT(b[0] - a[0], >=, 5000);
    for (int k = 1; k < WEFT_BANDS; k++)
        CHECK_EQ_INT(b[k] - a[k], 0);

    /* Lottery with all the tickets on the low band: it dominates. */
    static const uint32_t low_heavy[WEFT_BANDS] = {1, 1, 1, 97};
    weft__sched_set_fairness(rt, WEFT_FAIR_LOTTERY, low_heavy);
    wait_polls(&r, 1000);
    snap(&r, a);
    wait_polls(&r, 10000);
    snap(&r, b);
    CHECK_CMP_INT(b[3] - a[3], >, 8 * (b[0] - a[0]));

    atomic_store(&r.stop, 1);
    for (int k = 0; k < WEFT_BANDS * PER_BAND; k++)
        CHECK_OK(weft_join(t[k], NULL));
    test_rt_destroy_clean(rt);
}

/* ---- the priority range --------------------------------------------- */

static void *nothing(void *arg)
{
    return arg;
}

TEST(api, priority_out_of_range_einval)
{
    weft_rt *rt = rt_fair(1, -1);
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    weft_task t;
    a.priority = WEFT_PRIO_MAX + 1;
    CHECK_ERR(weft_spawn(rt, &t, nothing, NULL, &a), -EINVAL);
    a.priority = -1;
    CHECK_ERR(weft_spawn(rt, &t, nothing, NULL, &a), -EINVAL);
    for (int p = 0; p <= WEFT_PRIO_MAX; p++) {
        a.priority = p;
        CHECK_OK(weft_spawn(rt, &t, nothing, NULL, &a));
        CHECK_OK(weft_join(t, NULL));
    }
    test_rt_destroy_clean(rt);
}
