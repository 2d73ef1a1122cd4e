/*
 * policy.c - the runtime's weft_policy: presets, validation, the copy the
 * scheduler and the monitor read while it may change, and the warn
 * callback (DESIGN.md §6, docs/policy.md). The per-task intervention
 * tiers that the policy drives are tier.c.
 *
 * The problem. weft_policy_set may be called from any thread at any time,
 * while workers (the fairness rule, budgets) and the monitor thread (every
 * threshold, every few milliseconds) read the policy. A reader must never
 * block behind a writer: the monitor cannot stall, and a worker reading on
 * a scheduling decision cannot park. A reader must also never see half of
 * one policy and half of another: validation holds for whole policies
 * (good_poll_ns <= slow_poll_ns <= quantum_ns, monotone thresholds), and a
 * mix of two valid ones can break it.
 *
 * Rejected. A mutex around the policy blocks readers. One atomic per
 * field gives the mixes. A pointer swapped to a fresh copy (RCU style)
 * needs allocation and a grace period to free the old copy; nothing is
 * allocated after weft_rt_create. Two copies flipped by an index still
 * need readers to say when they are done with the old one.
 *
 * Chosen: a sequence lock over a copy of the policy kept as 64-bit words
 * (struct weft_rt, "Policy"). Writers (weft_policy_set, the warn callback
 * setter) take a spin lock, make the sequence odd, store the words, and
 * make it even again. A reader loads the sequence, copies the words, and
 * retries when the sequence was odd or has changed. The words are
 * atomics, not plain memory, so the reader's overlap with a writer is not
 * a data race (Boehm, "Can seqlocks get along with programming language
 * memory models?", 2012). Boehm's fence-based form (relaxed words between
 * a release fence and an acquire fence) is not used: TSan does not model
 * fences and GCC rejects them under -fsanitize=thread. Instead each word
 * is stored with release and loaded with acquire (plain moves on x86; on
 * weaker machines a few dozen ordered accesses per read, made by the
 * monitor, by workers when the policy changed, and by weft_policy_get),
 * and TSan sees every edge. The warn callback's function and argument
 * live under the same sequence, so the monitor never calls a new function
 * with an old argument; what the caller wrote behind the argument is
 * published by the release store of the argument itself.
 *
 * Presets (weft_policy_preset). Balanced (the default) warns on the
 * first poll over budget, asks the task to yield after a second one (or
 * 20 ms beyond budget), and isolates it after three more (or 50 ms): a
 * task stuck in one endless poll at normal priority is isolated about
 * 80 ms after it started. Aggressive halves the quantum and the climbing
 * thresholds, for latency-bound services; permissive doubles the
 * quantum and raises the thresholds severalfold, for batch work where
 * long polls are expected.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "../base/atomic.h"
#include "../base/check.h"
#include "../base/error.h"
#include "../base/spin.h"
#include "policy.h"

#define RLX memory_order_relaxed
/* The seqlock's data words. A store is a release so that the odd sequence
 * stored before it is visible to a reader whose acquire load (DATA_LD)
 * reads it; the acquire also keeps the reader's second load of the
 * sequence after its data loads. Together: a reader that sees any word
 * of an update in progress sees the sequence changed, and retries. */
#define DATA_ST memory_order_release /* pairs with DATA_LD */
#define DATA_LD memory_order_acquire /* pairs with DATA_ST */
#define MS 1000000ULL

/* ---- presets ---------------------------------------------------------- */

#define BANDS                                                                  \
    .band_weight = {8, 4, 2, 1}, .band_budget_pct = {400, 200, 100, 50},       \
    .band_threshold_pct = {400, 200, 100, 50}

/* Promotion (violations, CPU ms beyond budget, slow polls), then demotion
 * (consecutive good polls, milliseconds at the tier). */
#define RULE(v, cpu, slow, good, min_ms)                                       \
    {                                                                          \
        (v), (cpu), (slow), (good), (uint64_t)(min_ms)*MS                      \
    }

static const weft_policy presets[3] = {
    [WEFT_POLICY_BALANCED] =
        {
            .fairness = WEFT_FAIR_DRR,
            .quantum_ns = 10 * MS,
            .latency_ns = 2 * MS,
            .slow_poll_ns = 5 * MS,
            .good_poll_ns = 1 * MS,
            BANDS,
            .tier = {RULE(1, 10, 8, 0, 0), RULE(2, 20, 16, 100, 1000),
                     RULE(3, 50, 32, 200, 2000), RULE(0, 0, 0, 500, 5000)},
        },
    [WEFT_POLICY_AGGRESSIVE] =
        {
            .fairness = WEFT_FAIR_DRR,
            .quantum_ns = 5 * MS,
            .latency_ns = 1 * MS,
            .slow_poll_ns = 2 * MS,
            .good_poll_ns = MS / 2,
            BANDS,
            .tier = {RULE(1, 5, 4, 0, 0), RULE(1, 10, 8, 200, 2000),
                     RULE(2, 20, 16, 500, 5000), RULE(0, 0, 0, 1000, 10000)},
        },
    [WEFT_POLICY_PERMISSIVE] =
        {
            .fairness = WEFT_FAIR_DRR,
            .quantum_ns = 20 * MS,
            .latency_ns = 5 * MS,
            .slow_poll_ns = 10 * MS,
            .good_poll_ns = 2 * MS,
            BANDS,
            .tier = {RULE(3, 50, 32, 0, 0), RULE(5, 100, 64, 50, 500),
                     RULE(10, 200, 128, 100, 1000), RULE(0, 0, 0, 200, 2000)},
        },
};

int weft_policy_preset(weft_policy *out, int preset)
{
    weft__error_clear();
    if (!out)
        return weft__error_set(-EINVAL, "out: NULL");
    if (preset < WEFT_POLICY_BALANCED || preset > WEFT_POLICY_PERMISSIVE)
        return weft__error_set(
            -EINVAL, "preset: %d is not a WEFT_POLICY_* preset", preset);
    memcpy(out, &presets[preset], sizeof *out); /* padding included */
    return 0;
}

/* ---- validation ------------------------------------------------------- */

static int check_pct(const char *field, const uint32_t v[WEFT_BANDS])
{
    for (int b = 0; b < WEFT_BANDS; b++)
        if (v[b] == 0 || v[b] > WEFT_POLICY_PCT_MAX)
            return weft__error_set(-EINVAL,
                                   "%s[%d]: %" PRIu32 " is not in 1..%u", field,
                                   b, v[b], WEFT_POLICY_PCT_MAX);
    return 0;
}

static int check_rule(const weft_tier_rule *r, int t)
{
    static const char *const what[3] = {"promote_violations", "promote_cpu_ms",
                                        "promote_slow_polls"};
    const uint32_t v[3] = {r->promote_violations, r->promote_cpu_ms,
                           r->promote_slow_polls};
    const uint32_t max[3] = {WEFT_POLICY_COUNT_MAX, WEFT_POLICY_CPU_MS_MAX,
                             WEFT_POLICY_COUNT_MAX};
    for (int k = 0; k < 3; k++) {
        if (v[k] > max[k])
            return weft__error_set(-EINVAL,
                                   "tier[%d].%s: %" PRIu32 " is over %" PRIu32,
                                   t, what[k], v[k], max[k]);
        if (v[k] && t == WEFT_TIERS - 1)
            return weft__error_set(-EINVAL,
                                   "tier[%d].%s: %" PRIu32 " on the last "
                                   "tier (must be 0)",
                                   t, what[k], v[k]);
    }
    if (r->demote_good_polls > WEFT_POLICY_COUNT_MAX)
        return weft__error_set(
            -EINVAL, "tier[%d].demote_good_polls: %" PRIu32 " is over %u", t,
            r->demote_good_polls, WEFT_POLICY_COUNT_MAX);
    if (r->demote_min_ns > WEFT_POLICY_MIN_NS_MAX)
        return weft__error_set(
            -EINVAL,
            "tier[%d].demote_min_ns: %" PRIu64 " is over %" PRIu64 " (1 h)", t,
            r->demote_min_ns, (uint64_t)WEFT_POLICY_MIN_NS_MAX);
    return 0;
}

/* Nonzero promotion thresholds must not fall as tiers rise; a zero (never
 * promotes) is skipped: it is compared with neither neighbour. */
static int check_monotone(const weft_policy *p)
{
    static const char *const what[3] = {"promote_violations", "promote_cpu_ms",
                                        "promote_slow_polls"};
    for (int k = 0; k < 3; k++) {
        uint32_t last = 0;
        int last_t = 0;
        for (int t = 0; t < WEFT_TIERS - 1; t++) {
            const weft_tier_rule *r = &p->tier[t];
            uint32_t v = k == 0   ? r->promote_violations
                         : k == 1 ? r->promote_cpu_ms
                                  : r->promote_slow_polls;
            if (!v)
                continue;
            if (v < last)
                return weft__error_set(-EINVAL,
                                       "tier[%d].%s: %" PRIu32
                                       " is below tier[%d]'s %" PRIu32
                                       " (thresholds must not fall as "
                                       "tiers rise)",
                                       t, what[k], v, last_t, last);
            last = v;
            last_t = t;
        }
    }
    return 0;
}

int weft__policy_check(const weft_policy *p)
{
    if (!p)
        return weft__error_set(-EINVAL, "policy: NULL");
    if (p->fairness < WEFT_FAIR_DRR || p->fairness > WEFT_FAIR_STRICT)
        return weft__error_set(
            -EINVAL, "fairness: %d is not a WEFT_FAIR_* rule", p->fairness);
    if (p->quantum_ns < WEFT_POLICY_QUANTUM_MIN ||
        p->quantum_ns > WEFT_POLICY_NS_MAX)
        return weft__error_set(
            -EINVAL, "quantum_ns: %" PRIu64 " is not in %" PRIu64 "..%" PRIu64,
            p->quantum_ns, (uint64_t)WEFT_POLICY_QUANTUM_MIN,
            (uint64_t)WEFT_POLICY_NS_MAX);
    if (p->latency_ns > WEFT_POLICY_NS_MAX)
        return weft__error_set(-EINVAL,
                               "latency_ns: %" PRIu64 " is over %" PRIu64,
                               p->latency_ns, (uint64_t)WEFT_POLICY_NS_MAX);
    if (p->slow_poll_ns == 0)
        return weft__error_set(-EINVAL, "slow_poll_ns: 0");
    if (p->slow_poll_ns > p->quantum_ns)
        return weft__error_set(-EINVAL,
                               "slow_poll_ns: %" PRIu64
                               " is over quantum_ns (%" PRIu64 ")",
                               p->slow_poll_ns, p->quantum_ns);
    if (p->good_poll_ns > p->slow_poll_ns)
        return weft__error_set(-EINVAL,
                               "good_poll_ns: %" PRIu64
                               " is over slow_poll_ns (%" PRIu64 ")",
                               p->good_poll_ns, p->slow_poll_ns);
    int err = check_pct("band_weight", p->band_weight);
    if (!err)
        err = check_pct("band_budget_pct", p->band_budget_pct);
    if (!err)
        err = check_pct("band_threshold_pct", p->band_threshold_pct);
    for (int t = 0; !err && t < WEFT_TIERS; t++)
        err = check_rule(&p->tier[t], t);
    return err ? err : check_monotone(p);
}

/* ---- the seqlock ------------------------------------------------------ */

/* Writers: take pol_lock and make the sequence odd. Any thread. */
static void write_begin(weft_rt *rt)
{
    weft__spin_lock(&rt->pol_lock);
    uint32_t s = atomic_load_explicit(&rt->pol_seq, RLX);
    /* Relaxed: the data stores that follow are releases (DATA_ST), which
     * keep this store before them. */
    atomic_store_explicit(&rt->pol_seq, s + 1, RLX);
}

/* Make the sequence even again and unlock. pol_lock held. */
static void write_end(weft_rt *rt)
{
    uint32_t s = atomic_load_explicit(&rt->pol_seq, RLX);
    /* Release: pairs with the readers' acquire load of pol_seq, so a
     * reader that sees the even value sees every word stored before. */
    atomic_store_explicit(&rt->pol_seq, s + 1, memory_order_release);
}

/* Store *p's bytes as words. pol_lock held, sequence odd. */
static void put_words(weft_rt *rt, const weft_policy *p)
{
    uint64_t w[WEFT_POLICY_WORDS] = {0};
    memcpy(w, p, sizeof *p);
    for (size_t i = 0; i < WEFT_POLICY_WORDS; i++)
        atomic_store_explicit(&rt->pol_words[i], w[i], DATA_ST);
}

/* Readers: the sequence before a copy, once it is even. */
static uint32_t read_begin(weft_rt *rt)
{
    for (;;) {
        /* Acquire: pairs with write_end's release store. */
        uint32_t s = atomic_load_explicit(&rt->pol_seq, memory_order_acquire);
        if (!(s & 1))
            return s;
        weft_cpu_relax();
    }
}

/* 1 if the copy made since read_begin returned s is whole. */
static int read_ok(weft_rt *rt, uint32_t s)
{
    /* Relaxed: the data loads before it were acquires (DATA_LD), which
     * keep it after them. */
    return atomic_load_explicit(&rt->pol_seq, RLX) == s;
}

void weft__policy_read(weft_rt *rt, weft_policy *out)
{
    uint64_t w[WEFT_POLICY_WORDS];
    uint32_t s;
    do {
        s = read_begin(rt);
        for (size_t i = 0; i < WEFT_POLICY_WORDS; i++)
            w[i] = atomic_load_explicit(&rt->pol_words[i], DATA_LD);
    } while (!read_ok(rt, s));
    memcpy(out, w, sizeof *out);
}

/* Publish p (valid) and hand its fairness rule to the scheduler, in the
 * writers' order: two concurrent setters leave the scheduler with the
 * rule of the policy that stays. Any thread. */
static void publish(weft_rt *rt, const weft_policy *p)
{
    write_begin(rt);
    put_words(rt, p);
    write_end(rt);
    weft__sched_set_fairness(rt, p->fairness, p->band_weight);
    weft__spin_unlock(&rt->pol_lock);
}

void weft__policy_init(weft_rt *rt)
{
    weft_assert("policy", rt->cfg.policy >= WEFT_POLICY_BALANCED &&
                              rt->cfg.policy <= WEFT_POLICY_PERMISSIVE);
    weft_policy p;
    memcpy(&p, &presets[rt->cfg.policy], sizeof p);
    if (rt->cfg.fairness >= 0)
        p.fairness = rt->cfg.fairness;
    atomic_store_explicit(&rt->warn_fn, NULL, RLX);
    atomic_store_explicit(&rt->warn_arg, NULL, RLX);
    publish(rt, &p);
}

int weft_policy_get(weft_rt *rt, weft_policy *out)
{
    weft__error_clear();
    if (!rt)
        return weft__error_set(-EINVAL, "rt: NULL");
    if (!out)
        return weft__error_set(-EINVAL, "out: NULL");
    weft__policy_read(rt, out);
    return 0;
}

int weft_policy_set(weft_rt *rt, const weft_policy *p)
{
    weft__error_clear();
    if (!rt)
        return weft__error_set(-EINVAL, "rt: NULL");
    if (!p)
        return weft__error_set(-EINVAL, "policy: NULL");
    /* Validate and publish one copy, so a caller changing *p meanwhile
     * cannot slip an unchecked value in. Bytes, padding included: what
     * weft_policy_get returns compares equal to what was set. */
    weft_policy copy;
    memcpy(&copy, p, sizeof copy);
    int err = weft__policy_check(&copy);
    if (err)
        return err;
    publish(rt, &copy);
    return 0;
}

/* ---- warn ------------------------------------------------------------- */

int weft_set_warn_callback(weft_rt *rt, weft_warn_fn fn, void *arg)
{
    if (!rt)
        return weft__error_set(-EINVAL, "rt: NULL");
    write_begin(rt);
    atomic_store_explicit(&rt->warn_fn, fn, DATA_ST);
    atomic_store_explicit(&rt->warn_arg, fn ? arg : NULL, DATA_ST);
    write_end(rt);
    weft__spin_unlock(&rt->pol_lock);
    return 0;
}

/* The default: one line on stderr, formatted without allocation and
 * written with one write(2). */
static void warn_default(weft_task t, const char *name, uint64_t poll_ns)
{
    char line[160];
    size_t n =
        weft__fmt(line, sizeof line - 1,
                  "weft: task '%s' (slot %u) ran %lu.%u ms without "
                  "yielding",
                  name, weft__handle_slot(t), (unsigned long)(poll_ns / MS),
                  (unsigned)(poll_ns / (MS / 10) % 10));
    line[n++] = '\n';
    ssize_t unused = write(2, line, n);
    (void)unused;
}

void weft__policy_warn(weft_rt *rt, weft_task t, const char *name,
                       uint64_t poll_ns)
{
    weft_warn_fn fn;
    void *arg;
    uint32_t s;
    do {
        s = read_begin(rt);
        fn = atomic_load_explicit(&rt->warn_fn, DATA_LD);
        arg = atomic_load_explicit(&rt->warn_arg, DATA_LD);
    } while (!read_ok(rt, s));
    if (!name)
        name = "";
    if (fn)
        fn(arg, t, name, poll_ns);
    else
        warn_default(t, name, poll_ns);
}
