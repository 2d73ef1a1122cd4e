/*
 * test_policy.c - weft_policy_preset, weft_policy_get/set and
 * weft_set_warn_callback through weft.h: the presets, every kind of bad
 * policy rejected with -EINVAL and nothing changed, and policies set
 * while tasks run.
 */
#include <stdatomic.h>

#include "check.h"

#define MS 1000000ULL

static weft_policy preset(int which)
{
    weft_policy p;
    CHECK_OK(weft_policy_preset(&p, which));
    return p;
}

/* A runtime with one worker and the given preset. */
static weft_rt *rt_with(int which, int fairness)
{
    weft_config cfg;
    weft_config_default(&cfg);
    cfg.workers = 2;
    cfg.max_tasks = 256;
    cfg.policy = which;
    cfg.fairness = fairness;
    return test_rt_cfg(&cfg);
}

static void check_same(const weft_policy *a, const weft_policy *b,
                       const char *what)
{
    if (memcmp(a, b, sizeof *a))
        weft_check_fail(__FILE__, __LINE__,
                        "%s: policies differ (quantum %" PRIu64 " vs %" PRIu64
                        ", fairness %d vs %d)",
                        what, a->quantum_ns, b->quantum_ns, a->fairness,
                        b->fairness);
}

TEST(api, policy_preset_errors)
{
    weft_policy p;
    CHECK_ERR(weft_policy_preset(NULL, WEFT_POLICY_BALANCED), -EINVAL);
    CHECK_ERR(weft_policy_preset(&p, -1), -EINVAL);
    CHECK_ERR(weft_policy_preset(&p, 3), -EINVAL);
    CHECK_STR_CONTAINS(weft_last_error(), "preset");
    CHECK_OK(weft_policy_preset(&p, WEFT_POLICY_PERMISSIVE));
}

TEST(api, policy_runtime_starts_with_config_preset)
{
    for (int which = 0; which < 3; which++) {
        weft_rt *rt = rt_with(which, -1);
        weft_policy got, want = preset(which);
        CHECK_OK(weft_policy_get(rt, &got));
        check_same(&got, &want, "preset");
        test_rt_destroy_clean(rt);
    }
    weft_rt *rt = rt_with(WEFT_POLICY_AGGRESSIVE, WEFT_FAIR_LOTTERY);
    weft_policy got, want = preset(WEFT_POLICY_AGGRESSIVE);
    want.fairness = WEFT_FAIR_LOTTERY;
    CHECK_OK(weft_policy_get(rt, &got));
    check_same(&got, &want, "preset with cfg.fairness");
    test_rt_destroy_clean(rt);
}

/* One bad policy: a mutation of balanced and the field the error names. */
typedef struct bad_case {
    const char *field;
    void (*mutate)(weft_policy *p);
} bad_case;

#define BAD(name, body)                                                        \
    static void bad_##name(weft_policy *p)                                     \
    {                                                                          \
        body;                                                                  \
    }
BAD(zero_quantum, p->quantum_ns = 0)
BAD(tiny_quantum,
    (p->quantum_ns = 1000, p->slow_poll_ns = 500, p->good_poll_ns = 100))
BAD(huge_quantum, p->quantum_ns = 11000 * MS)
BAD(huge_latency, p->latency_ns = 11000 * MS)
BAD(fair_high, p->fairness = 3)
BAD(fair_neg, p->fairness = -1)
BAD(weight_zero, p->band_weight[2] = 0)
BAD(weight_big, p->band_weight[0] = 10001)
BAD(budget_zero, p->band_budget_pct[3] = 0)
BAD(budget_big, p->band_budget_pct[1] = 10001)
BAD(thresh_zero, p->band_threshold_pct[0] = 0)
BAD(thresh_big, p->band_threshold_pct[3] = 20000)
BAD(slow_zero, (p->slow_poll_ns = 0, p->good_poll_ns = 0))
BAD(good_over_slow, p->good_poll_ns = p->slow_poll_ns + 1)
BAD(slow_over_quantum, p->slow_poll_ns = p->quantum_ns + 1)
BAD(viol_falls, p->tier[2].promote_violations = 1)
BAD(cpu_falls, p->tier[1].promote_cpu_ms = 5)
BAD(slow_falls,
    (p->tier[1].promote_slow_polls = 0, p->tier[2].promote_slow_polls = 4))
BAD(last_viol, p->tier[3].promote_violations = 9)
BAD(last_cpu, p->tier[3].promote_cpu_ms = 100)
BAD(last_slow, p->tier[3].promote_slow_polls = 1)
BAD(count_big, p->tier[2].promote_violations = 70000)
BAD(cpu_big, p->tier[2].promote_cpu_ms = 4000000)
BAD(good_polls_big, p->tier[1].demote_good_polls = 65536)
BAD(min_ns_big, p->tier[3].demote_min_ns = 3601000 * MS)

static const bad_case bad[] = {
    {"quantum_ns", bad_zero_quantum},
    {"quantum_ns", bad_tiny_quantum},
    {"quantum_ns", bad_huge_quantum},
    {"latency_ns", bad_huge_latency},
    {"fairness", bad_fair_high},
    {"fairness", bad_fair_neg},
    {"band_weight[2]", bad_weight_zero},
    {"band_weight[0]", bad_weight_big},
    {"band_budget_pct[3]", bad_budget_zero},
    {"band_budget_pct[1]", bad_budget_big},
    {"band_threshold_pct[0]", bad_thresh_zero},
    {"band_threshold_pct[3]", bad_thresh_big},
    {"slow_poll_ns", bad_slow_zero},
    {"good_poll_ns", bad_good_over_slow},
    {"slow_poll_ns", bad_slow_over_quantum},
    {"tier[2].promote_violations", bad_viol_falls},
    {"tier[1].promote_cpu_ms", bad_cpu_falls},
    {"tier[2].promote_slow_polls", bad_slow_falls},
    {"tier[3].promote_violations", bad_last_viol},
    {"tier[3].promote_cpu_ms", bad_last_cpu},
    {"tier[3].promote_slow_polls", bad_last_slow},
    {"tier[2].promote_violations", bad_count_big},
    {"tier[2].promote_cpu_ms", bad_cpu_big},
    {"tier[1].demote_good_polls", bad_good_polls_big},
    {"tier[3].demote_min_ns", bad_min_ns_big},
};

TEST(api, policy_set_rejects_bad_and_changes_nothing)
{
    weft_rt *rt = rt_with(WEFT_POLICY_PERMISSIVE, -1);
    const weft_policy before = preset(WEFT_POLICY_PERMISSIVE);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        weft_policy p = preset(WEFT_POLICY_BALANCED), after;
        bad[i].mutate(&p);
        int err = weft_policy_set(rt, &p);
        if (err != -EINVAL || !strstr(weft_last_error(), bad[i].field))
            weft_check_fail(__FILE__, __LINE__, "case %zu (%s): %d, \"%s\"", i,
                            bad[i].field, err, weft_last_error());
        CHECK_OK(weft_policy_get(rt, &after));
        check_same(&after, &before, bad[i].field);
    }
    /* The untouched balanced preset is accepted: the cases above fail
     * for their mutation alone. */
    weft_policy ok = preset(WEFT_POLICY_BALANCED), got;
    CHECK_OK(weft_policy_set(rt, &ok));
    CHECK_OK(weft_policy_get(rt, &got));
    check_same(&got, &ok, "balanced");
    test_rt_destroy_clean(rt);
}

TEST(api, policy_null_arguments)
{
    weft_rt *rt = rt_with(WEFT_POLICY_BALANCED, -1);
    weft_policy p = preset(WEFT_POLICY_BALANCED);
    CHECK_ERR(weft_policy_set(NULL, &p), -EINVAL);
    CHECK_ERR(weft_policy_set(rt, NULL), -EINVAL);
    CHECK_ERR(weft_policy_get(NULL, &p), -EINVAL);
    CHECK_ERR(weft_policy_get(rt, NULL), -EINVAL);
    CHECK_ERR(weft_set_warn_callback(NULL, NULL, NULL), -EINVAL);
    CHECK_OK(weft_set_warn_callback(rt, NULL, NULL));
    test_rt_destroy_clean(rt);
}

/* Accepted limits: zero latency (never preempt for latency), good ==
 * slow == quantum, zero promotion thresholds, weights at 10000. */
TEST(api, policy_set_accepts_edges)
{
    weft_rt *rt = rt_with(WEFT_POLICY_BALANCED, -1);
    weft_policy p = preset(WEFT_POLICY_BALANCED), got;
    p.latency_ns = 0;
    p.quantum_ns = 100000;
    p.slow_poll_ns = p.good_poll_ns = p.quantum_ns;
    p.band_weight[0] = p.band_budget_pct[0] = p.band_threshold_pct[0] = 10000;
    for (int t = 0; t < WEFT_TIERS - 1; t++)
        p.tier[t].promote_violations = p.tier[t].promote_slow_polls = 0;
    p.fairness = WEFT_FAIR_STRICT;
    CHECK_OK(weft_policy_set(rt, &p));
    CHECK_OK(weft_policy_get(rt, &got));
    check_same(&got, &p, "edges");
    test_rt_destroy_clean(rt);
}

/* ---- set while running -------------------------------------------------- */

enum { SPINNERS = 8, ROUNDS = 2000 };

static _Atomic int spins_done;

static void *spinner(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++)
        weft_yield();
    atomic_fetch_add(&spins_done, 1);
    return NULL;
}

/* Tasks of every band keep yielding while policies (and fairness rules)
 * change under them, set from a task; each set is read back at once. */
static void *switch_policies(void *arg)
{
    weft_rt *rt = arg;
    weft_task t[SPINNERS];
    for (int i = 0; i < SPINNERS; i++) {
        weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
        a.priority = (i * 4) % 16;
        CHECK_OK(weft_spawn(rt, &t[i], spinner, NULL, &a));
    }
    for (int k = 0; atomic_load(&spins_done) < SPINNERS || k < 30; k++) {
        weft_policy p = preset(k % 3), got;
        p.fairness = (k / 3) % 3;
        p.band_weight[k % WEFT_BANDS] = 1 + (uint32_t)k % 100;
        CHECK_OK(weft_policy_set(rt, &p));
        CHECK_OK(weft_policy_get(rt, &got));
        check_same(&got, &p, "set while running");
        weft_yield();
    }
    for (int i = 0; i < SPINNERS; i++)
        CHECK_OK(weft_join(t[i], NULL));
    return NULL;
}

TEST(api, policy_set_while_running)
{
    weft_rt *rt = rt_with(WEFT_POLICY_BALANCED, -1);
    test_run(rt, switch_policies, rt);
    CHECK_EQ_INT(atomic_load(&spins_done), SPINNERS);
    /* From a plain thread too, after the tasks. */
    weft_policy p = preset(WEFT_POLICY_AGGRESSIVE), got;
    CHECK_OK(weft_policy_set(rt, &p));
    CHECK_OK(weft_policy_get(rt, &got));
    check_same(&got, &p, "plain thread");
    test_rt_destroy_clean(rt);
}
