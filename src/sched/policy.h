/*
 * policy.h - the runtime's weft_policy (a seqlock-protected copy), the warn
 * callback, and the per-task intervention-tier state machine
 * (sched/policy.c has the design).
 */
#ifndef WEFT_SCHED_POLICY_H
#define WEFT_SCHED_POLICY_H

#include <stdint.h>
#include <string.h>

#include "runtime.h"

/* Ranges weft__policy_check enforces beyond the rules in weft.h (so that
 * budgets, scaled thresholds and the tier state's counters cannot
 * overflow). */
#define WEFT_POLICY_QUANTUM_MIN 100000ULL       /* 100 us */
#define WEFT_POLICY_NS_MAX 10000000000ULL       /* 10 s: quantum, latency */
#define WEFT_POLICY_PCT_MAX 10000u              /* weights, multipliers */
#define WEFT_POLICY_COUNT_MAX 65535u            /* polls and violations */
#define WEFT_POLICY_CPU_MS_MAX 3600000u         /* 1 h */
#define WEFT_POLICY_MIN_NS_MAX 3600000000000ULL /* 1 h at a tier */

/* One task's tier state: 16 bytes, owned by whoever runs the tier
 * machine for the task (the monitor thread); calls on one state are
 * serialised by that caller. Counts since the task entered its tier;
 * all of them saturate. Layout:
 *   tier      WEFT_TIER_MONITOR..WEFT_TIER_ISOLATE
 *   flags     WEFT_TS_VIOL, WEFT_TS_SLOW: this poll's violation / slow
 *             poll was already counted by weft__tier_poll_running; kept
 *             across tier changes, cleared when the poll ends
 *   violations, slow   polls over budget / over slow_poll_ns
 *   good      consecutive good polls (a poll not good resets it)
 *   over_us   CPU time beyond the budget, microseconds
 *   since_ms  when the task entered the tier: the low 32 bits of now_ns
 *             / 1e6 (now_ns is the caller's monotonic clock). Time at
 *             the tier is (uint32_t)(now_ms - since_ms), exact for 49
 *             days; demote_min_ns is at most 1 h.
 * All zero is a task at MONITOR that entered it at time 0: callers set
 * since_ms with weft__tier_reset when a task starts. */
typedef struct weft_tier_state {
    uint8_t tier;
    uint8_t flags;
    uint16_t violations;
    uint16_t slow;
    uint16_t good;
    uint32_t over_us;
    uint32_t since_ms;
} weft_tier_state;

_Static_assert(sizeof(weft_tier_state) <= 16, "tier state: 16 bytes");

#define WEFT_TS_VIOL 0x01u
#define WEFT_TS_SLOW 0x02u

/* The budget of a poll in `band`: quantum_ns x band_budget_pct / 100.
 * Any thread. */
static inline uint64_t weft__policy_budget(const weft_policy *p, unsigned band)
{
    return p->quantum_ns * p->band_budget_pct[band] / 100;
}

/* 0 if *p is a valid policy, else -EINVAL with weft_last_error() naming
 * the field (rules: weft.h, weft_policy_set; docs/policy.md). Any
 * thread. */
int weft__policy_check(const weft_policy *p);

/* Set rt's policy from cfg.policy (a preset) and cfg.fairness (-1 = the
 * preset's), publish its fairness rule to the scheduler, and install the
 * default warn callback. cfg already validated. Creator only, before the
 * workers start. */
void weft__policy_init(struct weft_rt *rt);

/* Copy rt's current policy to *out; never blocks (retries while a writer
 * is mid-update). Any thread. */
void weft__policy_read(struct weft_rt *rt, weft_policy *out);

/* Report task t (name, its current or last poll's length) through rt's
 * warn callback, or the default line on stderr. Allocates nothing. The
 * monitor thread (any thread). */
void weft__policy_warn(struct weft_rt *rt, weft_task t, const char *name,
                       uint64_t poll_ns);

/* The tier state in rt->tiers[slot] if it is the task of generation
 * `gen`'s (1), else nothing (0). Relaxed: the monitor is its one writer.
 * Any thread. */
static inline int weft__tier_slot_get(struct weft_rt *rt, uint32_t slot,
                                      uint32_t gen, weft_tier_state *s)
{
    weft_tier_slot *t = &rt->tiers[slot];
    if (atomic_load_explicit(&t->gen, memory_order_relaxed) != gen + 1)
        return 0;
    uint64_t w[2] = {atomic_load_explicit(&t->w[0], memory_order_relaxed),
                     atomic_load_explicit(&t->w[1], memory_order_relaxed)};
    memcpy(s, w, sizeof *s);
    return 1;
}

/* A fresh state: MONITOR, counters 0, entered now. */
void weft__tier_reset(weft_tier_state *s, uint64_t now_ns);

/* A poll of poll_ns in `band` has ended at now_ns: count it (good, slow,
 * violation, CPU beyond budget) and promote or demote at most one tier.
 * seen != 0: weft__tier_poll_running was called for this poll, so the
 * violation and slow poll it counted (s->flags) are not counted again,
 * and the CPU beyond budget is what it accrued (call it once more with
 * the final length first to account the tail). The new tier if it
 * changed, else -1. Pure: no clock, no globals. Caller serialises. */
int weft__tier_poll_end(const weft_policy *p, unsigned band, weft_tier_state *s,
                        uint64_t poll_ns, uint64_t now_ns, int seen);

/* A poll in `band` is still running, poll_ns_so_far long, at now_ns:
 * count its violation and slow poll the first time it is over each
 * limit, accrue the CPU beyond budget since the last call (*accounted_ns
 * is the caller's per-poll scratch: 0 at poll start, updated here) and
 * promote at most one tier. The new tier if it changed, else -1. Pure.
 * Caller serialises. */
int weft__tier_poll_running(const weft_policy *p, unsigned band,
                            weft_tier_state *s, uint64_t poll_ns_so_far,
                            uint64_t now_ns, uint64_t *accounted_ns);

#endif
