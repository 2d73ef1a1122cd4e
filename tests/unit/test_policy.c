/*
 * test_policy.c - white-box tests of sched/policy.c: the presets, the
 * tier machine driven with a fake clock (escalation by violations, by CPU
 * time within one endless poll, by slow polls; demotion after good polls
 * and time at the tier; band multipliers; no double counting between the
 * monitor's view of a running poll and its end), the seqlock under a
 * concurrent writer, and the warn callback.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "check.h"
#include "internal.h"
#include "sched/policy.h"

#define MS 1000000ULL
#define US 1000ULL

enum { CRIT = 0, HIGH = 1, NORMAL = 2, LOW = 3 };

static weft_policy preset(int which)
{
    weft_policy p;
    CHECK_OK(weft_policy_preset(&p, which));
    return p;
}

/* A fresh state entered at `now`. */
static weft_tier_state fresh(uint64_t now)
{
    weft_tier_state s;
    weft__tier_reset(&s, now);
    return s;
}

TEST(unit, policy_presets_valid_and_distinct)
{
    weft_policy p[3];
    for (int i = 0; i < 3; i++) {
        p[i] = preset(i);
        CHECK_OK(weft__policy_check(&p[i]));
        /* Every tier but the last can climb on CPU time alone: a task in
         * one endless poll has a single violation. */
        for (int t = 0; t < WEFT_TIERS - 1; t++)
            CHECK_CMP_INT(p[i].tier[t].promote_cpu_ms, >, 0);
    }
    CHECK(memcmp(&p[0], &p[1], sizeof p[0]) != 0);
    CHECK(memcmp(&p[0], &p[2], sizeof p[0]) != 0);
    CHECK(memcmp(&p[1], &p[2], sizeof p[0]) != 0);
    /* The balanced defaults the issue fixes. */
    weft_policy b = p[WEFT_POLICY_BALANCED];
    CHECK_EQ_INT(b.fairness, WEFT_FAIR_DRR);
    CHECK_EQ_U64(b.quantum_ns, 10 * MS);
    CHECK_EQ_U64(b.latency_ns, 2 * MS);
    const uint32_t w[4] = {8, 4, 2, 1}, pct[4] = {400, 200, 100, 50};
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(b.band_weight[i], w[i]);
        CHECK_EQ_INT(b.band_budget_pct[i], pct[i]);
        CHECK_EQ_INT(b.band_threshold_pct[i], pct[i]);
    }
    /* Aggressive climbs sooner than balanced, permissive later. */
    CHECK_CMP_U64(p[WEFT_POLICY_AGGRESSIVE].quantum_ns, <, b.quantum_ns);
    CHECK_CMP_U64(p[WEFT_POLICY_PERMISSIVE].quantum_ns, >, b.quantum_ns);
}

TEST(unit, policy_state_fits_16_bytes)
{
    CHECK_CMP_INT(sizeof(weft_tier_state), <=, 16);
}

TEST(unit, policy_budget_by_band)
{
    weft_policy p = preset(WEFT_POLICY_BALANCED);
    CHECK_EQ_U64(weft__policy_budget(&p, CRIT), 40 * MS);
    CHECK_EQ_U64(weft__policy_budget(&p, HIGH), 20 * MS);
    CHECK_EQ_U64(weft__policy_budget(&p, NORMAL), 10 * MS);
    CHECK_EQ_U64(weft__policy_budget(&p, LOW), 5 * MS);
}

TEST(unit, policy_check_names_the_field)
{
    weft_policy p = preset(WEFT_POLICY_BALANCED);
    p.tier[2].promote_slow_polls = 10; /* below tier[1]'s 16 */
    CHECK_ERR(weft__policy_check(&p), -EINVAL);
    CHECK_STR_CONTAINS(weft_last_error(), "tier[2].promote_slow_polls");
    /* A zero threshold is skipped, not compared: 8, 0, 32 is monotone,
     * 8, 0, 4 is not. */
    p.tier[1].promote_slow_polls = 0;
    p.tier[2].promote_slow_polls = 4;
    CHECK_ERR(weft__policy_check(&p), -EINVAL);
    CHECK_STR_CONTAINS(weft_last_error(), "below tier[0]");
    p.tier[2].promote_slow_polls = 32;
    CHECK_OK(weft__policy_check(&p));
}

/* Monitor -> Warn -> Yield -> Isolate by violations alone: balanced,
 * normal band (budget 10 ms): thresholds 1, 2, 3 violations. */
TEST(unit, policy_escalate_by_violations)
{
    weft_policy p = preset(WEFT_POLICY_BALANCED);
    weft_tier_state s = fresh(0);
    uint64_t now = 1000 * MS;
    /* 11 ms polls: each a violation, 1 ms beyond budget: CPU never
     * reaches the 20 or 50 ms thresholds first. */
    const int want[] = {
        WEFT_TIER_WARN, -1, WEFT_TIER_YIELD, -1, -1, WEFT_TIER_ISOLATE, -1, -1};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        now += 11 * MS;
        int got = weft__tier_poll_end(&p, NORMAL, &s, 11 * MS, now, 0);
        if (got != want[i])
            weft_check_fail(__FILE__, __LINE__, "poll %zu: tier %d, want %d", i,
                            got, want[i]);
    }
    CHECK_EQ_INT(s.tier, WEFT_TIER_ISOLATE);
    CHECK_EQ_INT(s.violations, 2); /* counted since entering ISOLATE */
}

/* A task that never yields: one endless poll, seen by the monitor every
 * 2 ms. Its single violation takes it to WARN; CPU beyond budget then
 * takes it to YIELD 20 ms later and to ISOLATE 50 ms after that. */
TEST(unit, policy_escalate_by_cpu_in_one_poll)
{
    weft_policy p = preset(WEFT_POLICY_BALANCED);
    uint64_t start = 5000 * MS, acc = 0;
    weft_tier_state s = fresh(start);
    uint64_t at[WEFT_TIERS] = {0};
    for (uint64_t run = 2 * MS; run <= 200 * MS; run += 2 * MS) {
        int t = weft__tier_poll_running(&p, NORMAL, &s, run, start + run, &acc);
        CHECK_EQ_U64(acc, run);
        if (t >= 0) {
            CHECK_EQ_INT(at[t], 0); /* each tier reached once */
            at[t] = run;
        }
    }
    CHECK_EQ_U64(at[WEFT_TIER_WARN], 12 * MS); /* first look over 10 ms */
    CHECK_EQ_U64(at[WEFT_TIER_YIELD], 32 * MS);
    CHECK_EQ_U64(at[WEFT_TIER_ISOLATE], 82 * MS);
    CHECK_EQ_INT(s.tier, WEFT_TIER_ISOLATE);
    /* The poll's violation was counted once, at MONITOR. */
    CHECK_EQ_INT(s.violations, 0);
    CHECK_EQ_U64(s.over_us, (200 - 82) * 1000);
    /* Its end, reported as seen, counts nothing more. */
    CHECK_EQ_INT(
        weft__tier_poll_end(&p, NORMAL, &s, 201 * MS, start + 201 * MS, 1), -1);
    CHECK_EQ_INT(s.violations, 0);
    CHECK_EQ_INT(s.slow, 0);
    CHECK_EQ_INT(s.flags, 0);
}

/* Slow polls (over 5 ms, under the 10 ms budget): thresholds 8, 16, 32. */
TEST(unit, policy_escalate_by_slow_polls)
{
    weft_policy p = preset(WEFT_POLICY_BALANCED);
    weft_tier_state s = fresh(0);
    uint64_t now = 0;
    int changes = 0, at[3] = {0};
    for (int i = 1; i <= 100; i++) {
        now += 6 * MS;
        int t = weft__tier_poll_end(&p, NORMAL, &s, 6 * MS, now, 0);
        if (t >= 0) {
            CHECK_CMP_INT(changes, <, 3);
            CHECK_EQ_INT(t, changes + 1);
            at[changes++] = i;
        }
    }
    CHECK_EQ_INT(changes, 3);
    CHECK_EQ_INT(at[0], 8);
    CHECK_EQ_INT(at[1], 8 + 16);
    CHECK_EQ_INT(at[2], 8 + 16 + 32);
    CHECK_EQ_INT(s.violations, 0);
    CHECK_EQ_U64(s.over_us, 0);
}

/* Demotion from WARN (balanced: 100 consecutive good polls and 1 s at
 * the tier) needs both; a poll that is not good starts the count again;
 * a violation on the way is not a demotion either. */
TEST(unit, policy_demotion_needs_good_polls_and_time)
{
    weft_policy p = preset(WEFT_POLICY_BALANCED);
    weft_tier_state s = fresh(0);
    uint64_t t0 = 7000 * MS, now = t0;
    CHECK_EQ_INT(weft__tier_poll_end(&p, NORMAL, &s, 11 * MS, now, 0),
                 WEFT_TIER_WARN);
    /* 200 good polls within 200 ms: enough polls, not enough time. */
    for (int i = 0; i < 200; i++) {
        now += MS;
        CHECK_EQ_INT(weft__tier_poll_end(&p, NORMAL, &s, MS / 2, now, 0), -1);
    }
    CHECK_EQ_INT(s.good, 200);
    /* 2 s later, a poll of 2 ms (neither good nor slow) resets the run. */
    now = t0 + 2000 * MS;
    CHECK_EQ_INT(weft__tier_poll_end(&p, NORMAL, &s, 2 * MS, now, 0), -1);
    CHECK_EQ_INT(s.good, 0);
    for (int i = 0; i < 99; i++)
        CHECK_EQ_INT(weft__tier_poll_end(&p, NORMAL, &s, MS / 2, now, 0), -1);
    /* The 100th consecutive good poll, with time served: demoted. */
    CHECK_EQ_INT(weft__tier_poll_end(&p, NORMAL, &s, MS / 2, now, 0),
                 WEFT_TIER_MONITOR);
    CHECK_EQ_INT(s.good, 0);
    CHECK_EQ_U64(s.since_ms, now / MS);
    /* At MONITOR good polls demote nothing further. */
    for (int i = 0; i < 1000; i++)
        CHECK_EQ_INT(
            weft__tier_poll_end(&p, NORMAL, &s, MS / 2, now + 5000 * MS, 0),
            -1);
}

/* Enough good polls early, and the time passes later: demotion comes
 * at the first good poll once both hold, one tier at a time, each tier
 * with its own rule (ISOLATE 500 polls / 5 s, YIELD 200 / 2 s, WARN
 * 100 / 1 s). */
TEST(unit, policy_demotion_one_tier_at_a_time)
{
    weft_policy p = preset(WEFT_POLICY_BALANCED);
    weft_tier_state s = fresh(0);
    uint64_t now = 0, acc = 0;
    /* One endless poll up to ISOLATE (82 ms, see above). */
    for (uint64_t run = 2 * MS; run <= 90 * MS; run += 2 * MS)
        weft__tier_poll_running(&p, NORMAL, &s, run, now + run, &acc);
    CHECK_EQ_INT(s.tier, WEFT_TIER_ISOLATE);
    now += 90 * MS;
    weft__tier_poll_end(&p, NORMAL, &s, 90 * MS, now, 1);
    CHECK_EQ_INT(s.tier, WEFT_TIER_ISOLATE);
    const uint32_t polls[] = {500, 200, 100};
    const uint64_t min_ms[] = {5000, 2000, 1000};
    for (int k = 0; k < 3; k++) {
        uint64_t entered = (uint64_t)s.since_ms * MS;
        for (uint32_t i = 1; i < polls[k]; i++)
            CHECK_EQ_INT(weft__tier_poll_end(&p, NORMAL, &s, 100 * US, now, 0),
                         -1);
        /* Polls enough now but for one; time short by 1 ms. */
        now = entered + (min_ms[k] - 1) * MS;
        CHECK_EQ_INT(weft__tier_poll_end(&p, NORMAL, &s, 100 * US, now, 0), -1);
        now += MS;
        CHECK_EQ_INT(weft__tier_poll_end(&p, NORMAL, &s, 100 * US, now, 0),
                     WEFT_TIER_ISOLATE - 1 - k);
    }
    CHECK_EQ_INT(s.tier, WEFT_TIER_MONITOR);
}

/* The same polls in different bands: the budget and the thresholds
 * follow band_budget_pct and band_threshold_pct. */
TEST(unit, policy_band_multipliers)
{
    weft_policy p = preset(WEFT_POLICY_BALANCED);
    /* 15 ms polls: violations at NORMAL (budget 10 ms), none at HIGH
     * (20 ms) or CRIT (40 ms). */
    weft_tier_state n = fresh(0), h = fresh(0), c = fresh(0);
    for (int i = 0; i < 50; i++) {
        weft__tier_poll_end(&p, NORMAL, &n, 15 * MS, 0, 0);
        weft__tier_poll_end(&p, HIGH, &h, 15 * MS, 0, 0);
        weft__tier_poll_end(&p, CRIT, &c, 15 * MS, 0, 0);
    }
    CHECK_EQ_INT(n.tier, WEFT_TIER_ISOLATE);
    /* Slow polls (over 5 ms) still count, against thresholds x2 at HIGH
     * (16, 32, 64) and x4 at CRIT (32, 64, 128): 50 polls reach YIELD at
     * HIGH (16 + 32 = 48) and WARN at CRIT (32). */
    CHECK_EQ_INT(h.tier, WEFT_TIER_YIELD);
    CHECK_EQ_INT(c.tier, WEFT_TIER_WARN);
    CHECK_EQ_INT(h.violations + c.violations, 0);

    /* 6 ms polls: not violations at NORMAL (only slow: 8 to WARN); at LOW
     * (budget 5 ms) violations against halved thresholds: 1, 1, 2
     * (rounded up from 0.5, 1, 1.5). */
    weft_tier_state lo = fresh(0), no = fresh(0);
    const int want[] = {WEFT_TIER_WARN, WEFT_TIER_YIELD, -1, WEFT_TIER_ISOLATE};
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(weft__tier_poll_end(&p, LOW, &lo, 6 * MS, 0, 0), want[i]);
        CHECK_EQ_INT(weft__tier_poll_end(&p, NORMAL, &no, 6 * MS, 0, 0), -1);
    }

    /* One endless poll at CRIT: budget 40 ms, and its one violation is
     * under the scaled threshold (4); CPU beyond budget x4 (40 ms) takes
     * it to WARN at 80 ms, where NORMAL got there at 12 ms. */
    weft_tier_state e = fresh(0);
    uint64_t acc = 0, warn_at = 0;
    for (uint64_t run = 2 * MS; run <= 100 * MS && !warn_at; run += 2 * MS)
        if (weft__tier_poll_running(&p, CRIT, &e, run, run, &acc) ==
            WEFT_TIER_WARN)
            warn_at = run;
    CHECK_EQ_U64(warn_at, 80 * MS);
}

/* The monitor counts a running poll's violation and slow poll once; the
 * poll's end, reported as seen, does not count them again, but counts
 * what the monitor did not see. */
TEST(unit, policy_seen_avoids_double_count)
{
    weft_policy p = preset(WEFT_POLICY_BALANCED);
    p.tier[0].promote_violations = 2; /* room to count at MONITOR */
    p.tier[0].promote_cpu_ms = 0;
    p.tier[0].promote_slow_polls = 0;
    CHECK_OK(weft__policy_check(&p));

    weft_tier_state s = fresh(0);
    uint64_t acc = 0;
    CHECK_EQ_INT(weft__tier_poll_running(&p, NORMAL, &s, 12 * MS, 0, &acc), -1);
    /* A second look at the same poll counts nothing new. */
    CHECK_EQ_INT(weft__tier_poll_running(&p, NORMAL, &s, 14 * MS, 0, &acc), -1);
    CHECK_EQ_INT(s.violations, 1);
    CHECK_EQ_INT(s.slow, 1);
    CHECK_EQ_U64(s.over_us, 4000);
    CHECK_EQ_INT(weft__tier_poll_end(&p, NORMAL, &s, 15 * MS, 0, 1), -1);
    CHECK_EQ_INT(s.violations, 1);
    CHECK_EQ_INT(s.slow, 1);
    CHECK_EQ_U64(s.over_us, 4000); /* the tail is the caller's to add */
    CHECK_EQ_INT(s.tier, WEFT_TIER_MONITOR);

    /* The same poll not seen: counted at its end, and that is the
     * second violation. */
    weft_tier_state u = s;
    CHECK_EQ_INT(weft__tier_poll_end(&p, NORMAL, &u, 15 * MS, 0, 0),
                 WEFT_TIER_WARN);

    /* Seen while still under budget (4 ms) but ending over it: the end
     * counts the violation and its 5 ms beyond budget; the slow poll was
     * not seen either. */
    weft_tier_state v = fresh(0);
    acc = 0;
    CHECK_EQ_INT(weft__tier_poll_running(&p, NORMAL, &v, 4 * MS, 0, &acc), -1);
    CHECK_EQ_INT(v.violations + v.slow, 0);
    CHECK_EQ_INT(weft__tier_poll_end(&p, NORMAL, &v, 15 * MS, 0, 1), -1);
    CHECK_EQ_INT(v.violations, 1);
    CHECK_EQ_INT(v.slow, 1);
    CHECK_EQ_U64(v.over_us, 5000);

    /* A new poll (accounted 0) forgets the flags of one whose end was
     * never reported. */
    weft_tier_state w = fresh(0);
    acc = 0;
    weft__tier_poll_running(&p, NORMAL, &w, 12 * MS, 0, &acc);
    acc = 0;
    CHECK_EQ_INT(weft__tier_poll_running(&p, NORMAL, &w, 12 * MS, 0, &acc),
                 WEFT_TIER_WARN);
}

/* ---- the seqlock ------------------------------------------------------ */

static _Atomic int stop_readers;
static _Atomic uint64_t reads;

typedef struct reader_arg {
    weft_rt *rt;
    weft_policy a, b;
} reader_arg;

static void *reader(void *arg)
{
    reader_arg *r = arg;
    while (!atomic_load(&stop_readers)) {
        weft_policy got;
        weft__policy_read(r->rt, &got);
        if (memcmp(&got, &r->a, sizeof got) && memcmp(&got, &r->b, sizeof got))
            weft_check_fail(__FILE__, __LINE__,
                            "read a policy that was never set (quantum "
                            "%" PRIu64 ", fairness %d)",
                            got.quantum_ns, got.fairness);
        atomic_fetch_add(&reads, 1);
    }
    return NULL;
}

/* Readers racing a writer that flips between two policies only ever see
 * one or the other, whole. */
TEST(unit, policy_readers_see_whole_policies)
{
    weft_rt *rt = test_rt_workers(64, 1);
    reader_arg r = {.rt = rt,
                    .a = preset(WEFT_POLICY_AGGRESSIVE),
                    .b = preset(WEFT_POLICY_PERMISSIVE)};
    r.b.fairness = WEFT_FAIR_LOTTERY;
    CHECK_OK(weft_policy_set(rt, &r.a));
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        CHECK_EQ_INT(pthread_create(&th[i], NULL, reader, &r), 0);
    uint64_t end = test_now_ms() + 300;
    unsigned sets = 0;
    while (test_now_ms() < end || atomic_load(&reads) < 1000) {
        CHECK_OK(weft_policy_set(rt, sets++ % 2 ? &r.a : &r.b));
        CHECK_OK(weft_set_warn_callback(rt, NULL, NULL));
    }
    atomic_store(&stop_readers, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    /* The scheduler got the rule of the policy that stayed. */
    weft_policy last;
    CHECK_OK(weft_policy_get(rt, &last));
    CHECK_EQ_INT(atomic_load(&rt->fair_rule), last.fairness);
    CHECK_EQ_INT(atomic_load(&rt->pol_seq) % 2, 0);
    test_rt_destroy_clean(rt);
}

TEST(unit, policy_init_from_config)
{
    weft_config cfg;
    weft_config_default(&cfg);
    cfg.workers = 1;
    cfg.max_tasks = 64;
    cfg.policy = WEFT_POLICY_PERMISSIVE;
    cfg.fairness = WEFT_FAIR_STRICT;
    weft_rt *rt = test_rt_cfg(&cfg);
    weft_policy want = preset(WEFT_POLICY_PERMISSIVE), got;
    want.fairness = WEFT_FAIR_STRICT;
    weft__policy_read(rt, &got);
    CHECK(memcmp(&got, &want, sizeof got) == 0);
    CHECK_EQ_INT(atomic_load(&rt->fair_rule), WEFT_FAIR_STRICT);
    for (int b = 0; b < WEFT_BANDS; b++)
        CHECK_EQ_INT(atomic_load(&rt->fair_weight[b]), want.band_weight[b]);
    test_rt_destroy_clean(rt);
}

/* ---- warn ------------------------------------------------------------- */

typedef struct warn_log {
    int calls;
    weft_task t;
    char name[32];
    uint64_t poll_ns;
} warn_log;

static void on_warn(void *arg, weft_task t, const char *name, uint64_t poll_ns)
{
    warn_log *l = arg;
    l->calls++;
    l->t = t;
    snprintf(l->name, sizeof l->name, "%s", name);
    l->poll_ns = poll_ns;
}

static void warn_child(void *arg)
{
    int replace = (int)(uintptr_t)arg;
    weft_rt *rt = test_rt_workers(64, 1);
    weft_task t = {((uint64_t)rt->id << 56) | 7};
    warn_log log = {0};
    if (replace) {
        CHECK_OK(weft_set_warn_callback(rt, on_warn, &log));
        weft__policy_warn(rt, t, "spinner", 25345678);
        CHECK_EQ_INT(log.calls, 1);
        CHECK_EQ_U64(log.t.id, t.id);
        CHECK_EQ_STR(log.name, "spinner");
        CHECK_EQ_U64(log.poll_ns, 25345678);
        weft__policy_warn(rt, t, NULL, 1);
        CHECK_EQ_INT(log.calls, 2);
        CHECK_EQ_STR(log.name, "");
        /* NULL restores the default: stderr, not the callback. */
        CHECK_OK(weft_set_warn_callback(rt, NULL, &log));
    }
    weft__policy_warn(rt, t, "spinner", 25345678);
    weft__policy_warn(rt, t, NULL, 3 * MS);
    CHECK_EQ_INT(log.calls, replace ? 2 : 0);
    test_rt_destroy_clean(rt);
}

TEST(unit, policy_warn_default_line)
{
    test_child ch;
    test_fork_capture(warn_child, (void *)0, 20, &ch);
    CHECK(WIFEXITED(ch.status) && WEXITSTATUS(ch.status) == 0);
    CHECK_STR_CONTAINS(ch.err, "weft: task 'spinner' (slot 7) ran 25.3 ms "
                               "without yielding\n");
    CHECK_STR_CONTAINS(ch.err, "weft: task '' (slot 7) ran 3.0 ms without "
                               "yielding\n");
}

TEST(unit, policy_warn_callback_replaced_and_restored)
{
    test_child ch;
    test_fork_capture(warn_child, (void *)1, 20, &ch);
    CHECK(WIFEXITED(ch.status) && WEXITSTATUS(ch.status) == 0);
    /* Only the two calls after the restore reached stderr. */
    const char *first = strstr(ch.err, "ran 25.3 ms");
    CHECK_NOT_NULL(first);
    CHECK_NULL(strstr(first + 1, "ran 25.3 ms"));
    CHECK_STR_CONTAINS(ch.err, "ran 3.0 ms");
    CHECK_NULL(strstr(ch.err, "ran 0.0 ms")); /* the 1 ns call went to
                                                 the callback */
}
