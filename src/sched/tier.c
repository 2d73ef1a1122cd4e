/*
 * tier.c - the per-task intervention tiers (DESIGN.md §6, docs/policy.md):
 * the pure state machine the monitor (sysmon.c) and the workers drive
 * with a policy (policy.c).
 *
 * The tier machine. Each task carries a 16-byte weft_tier_state
 * (policy.h). Two pure functions advance it: weft__tier_poll_end for a
 * finished poll and weft__tier_poll_running for a poll the monitor finds
 * still running. Neither reads a clock nor any global, so tests drive them
 * with a fake clock. Rules (docs/policy.md has the table):
 * - A poll is a violation when longer than the band's budget (quantum_ns
 *   x band_budget_pct / 100), slow when longer than slow_poll_ns, good
 *   when shorter than good_poll_ns. Each poll counts at most once as a
 *   violation and once as slow, whichever function sees it first: the
 *   state's flags remember what weft__tier_poll_running counted.
 * - CPU beyond the budget accrues in microseconds while the poll runs
 *   (monitor) or at its end, so that a task which never yields, and so
 *   has a single endless poll with a single violation, still climbs every
 *   tier: that is what promote_cpu_ms is for, and every preset sets it on
 *   every tier.
 * - Promotion from tier t when any nonzero promotion threshold of
 *   tier[t], multiplied by band_threshold_pct / 100 (rounded up, capped at
 *   the counters' range), is reached. At most one tier per call.
 * - Demotion from tier t >= 1 at the end of a good poll when the task has
 *   had demote_good_polls consecutive good polls (0 counts as 1) and has
 *   been at tier t for demote_min_ns. Demotion thresholds are not scaled
 *   by band: a multiplier expresses tolerance, and being slower to forgive
 *   a critical task would invert it.
 * - Every change of tier resets the counters and the time at the tier.
 *
 */
#include <stdint.h>

#include "policy.h"

#define MS 1000000ULL

static uint16_t inc16(uint16_t v)
{
    return v == UINT16_MAX ? v : (uint16_t)(v + 1);
}

static uint32_t add32(uint32_t v, uint64_t d)
{
    return d >= (uint64_t)(UINT32_MAX - v) ? UINT32_MAX : (uint32_t)(v + d);
}

/* A count threshold scaled by band: rounded up, so a nonzero threshold
 * stays nonzero; capped at what the 16-bit counters can reach. */
static uint32_t scale_count(uint32_t thr, uint32_t pct)
{
    uint64_t v = ((uint64_t)thr * pct + 99) / 100;
    return v > UINT16_MAX ? UINT16_MAX : (uint32_t)v;
}

/* A CPU threshold (ms) scaled by band, in microseconds, capped at what
 * the 32-bit accumulator can reach. */
static uint32_t scale_cpu_us(uint32_t ms, uint32_t pct)
{
    uint64_t v = (uint64_t)ms * pct * 10; /* ms x 1000 x pct / 100 */
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static int promote_due(const weft_policy *p, unsigned band,
                       const weft_tier_state *s)
{
    if (s->tier >= WEFT_TIERS - 1)
        return 0;
    const weft_tier_rule *r = &p->tier[s->tier];
    uint32_t pct = p->band_threshold_pct[band];
    return (r->promote_violations &&
            s->violations >= scale_count(r->promote_violations, pct)) ||
           (r->promote_cpu_ms &&
            s->over_us >= scale_cpu_us(r->promote_cpu_ms, pct)) ||
           (r->promote_slow_polls &&
            s->slow >= scale_count(r->promote_slow_polls, pct));
}

/* At the end of a good poll (s->good already counts it). */
static int demote_due(const weft_policy *p, const weft_tier_state *s,
                      uint64_t now_ns)
{
    if (s->tier == WEFT_TIER_MONITOR)
        return 0;
    const weft_tier_rule *r = &p->tier[s->tier];
    uint32_t at_ms = (uint32_t)(now_ns / MS) - s->since_ms; /* modular */
    return s->good >= r->demote_good_polls &&
           (uint64_t)at_ms * MS >= r->demote_min_ns;
}

/* Move to `tier`: counters and the time at the tier start again; the
 * current poll's flags stay (it is still the same poll). */
static int enter(weft_tier_state *s, unsigned tier, uint64_t now_ns)
{
    s->tier = (uint8_t)tier;
    s->violations = 0;
    s->slow = 0;
    s->good = 0;
    s->over_us = 0;
    s->since_ms = (uint32_t)(now_ns / MS);
    return (int)tier;
}

void weft__tier_reset(weft_tier_state *s, uint64_t now_ns)
{
    memset(s, 0, sizeof *s);
    s->since_ms = (uint32_t)(now_ns / MS);
}

int weft__tier_poll_end(const weft_policy *p, unsigned band, weft_tier_state *s,
                        uint64_t poll_ns, uint64_t now_ns, int seen)
{
    uint64_t budget = weft__policy_budget(p, band);
    unsigned counted = seen ? s->flags : 0;
    s->flags = 0;
    int good = poll_ns < p->good_poll_ns;
    if (poll_ns > budget && !(counted & WEFT_TS_VIOL)) {
        /* Not seen over budget while running, so none of its CPU beyond
         * budget was accrued either (the two go together there). */
        s->violations = inc16(s->violations);
        s->over_us = add32(s->over_us, poll_ns / 1000 - budget / 1000);
    }
    if (poll_ns > p->slow_poll_ns && !(counted & WEFT_TS_SLOW))
        s->slow = inc16(s->slow);
    s->good = good ? inc16(s->good) : 0;
    if (promote_due(p, band, s))
        return enter(s, s->tier + 1u, now_ns);
    if (good && demote_due(p, s, now_ns))
        return enter(s, s->tier - 1u, now_ns);
    return -1;
}

int weft__tier_poll_running(const weft_policy *p, unsigned band,
                            weft_tier_state *s, uint64_t poll_ns_so_far,
                            uint64_t now_ns, uint64_t *accounted_ns)
{
    uint64_t budget = weft__policy_budget(p, band);
    uint64_t from = *accounted_ns;
    if (from == 0)
        s->flags = 0; /* a new poll: flags of an unfinished one are stale */
    if (poll_ns_so_far > budget && !(s->flags & WEFT_TS_VIOL)) {
        s->flags |= WEFT_TS_VIOL;
        s->violations = inc16(s->violations);
    }
    if (poll_ns_so_far > p->slow_poll_ns && !(s->flags & WEFT_TS_SLOW)) {
        s->flags |= WEFT_TS_SLOW;
        s->slow = inc16(s->slow);
    }
    /* Accrue [max(from, budget), so_far) in whole microseconds of the
     * poll's time line, so successive calls add up exactly. */
    uint64_t lo = from > budget ? from : budget;
    if (poll_ns_so_far > lo)
        s->over_us = add32(s->over_us, poll_ns_so_far / 1000 - lo / 1000);
    if (poll_ns_so_far > from)
        *accounted_ns = poll_ns_so_far;
    if (promote_due(p, band, s))
        return enter(s, s->tier + 1u, now_ns);
    return -1;
}
