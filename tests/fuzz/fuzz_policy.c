/*
 * fuzz_policy.c - libFuzzer harness: weft_policy_set validation. The
 * input's bytes overwrite a preset policy; weft_policy_set on a live
 * runtime must return 0 or -EINVAL with a detail naming the field, and
 * leave the runtime's policy unchanged on -EINVAL and equal to the input
 * on 0 (weft_policy_get reads it back byte for byte).
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"

static weft_rt *rt;

static void done(void)
{
    weft_rt_shutdown(rt);
    weft_rt_destroy(rt);
}

/* The policy's fields, not its padding (fairness is followed by four
 * bytes of it). */
static int same(const weft_policy *a, const weft_policy *b)
{
    return a->fairness == b->fairness && a->quantum_ns == b->quantum_ns &&
           a->latency_ns == b->latency_ns &&
           a->slow_poll_ns == b->slow_poll_ns &&
           a->good_poll_ns == b->good_poll_ns &&
           !memcmp(a->band_weight, b->band_weight, sizeof a->band_weight) &&
           !memcmp(a->band_budget_pct, b->band_budget_pct,
                   sizeof a->band_budget_pct) &&
           !memcmp(a->band_threshold_pct, b->band_threshold_pct,
                   sizeof a->band_threshold_pct) &&
           !memcmp(a->tier, b->tier, sizeof a->tier);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    if (!rt) {
        weft_config c;
        weft_config_default(&c);
        c.workers = 1;
        c.max_tasks = 64;
        if (weft_rt_create(&rt, &c))
            __builtin_trap();
        atexit(done);
    }
    weft_policy p, before, after;
    if (weft_policy_preset(&p, n ? d[0] % 3 : 0))
        __builtin_trap();
    if (n)
        memcpy(&p, d + 1, n - 1 < sizeof p ? n - 1 : sizeof p);
    assert(weft_policy_get(rt, &before) == 0);
    int r = weft_policy_set(rt, &p);
    /* The detail now: weft_policy_get clears it when it starts. */
    int detail = weft_last_error()[0] != '\0';
    assert(weft_policy_get(rt, &after) == 0);
    if (r) {
        assert(r == -EINVAL);
        assert(detail);
        assert(same(&before, &after));
        return 0;
    }
    /* Accepted: the rules weft.h states hold, and it is what is in use. */
    assert(p.quantum_ns > 0);
    assert(p.good_poll_ns <= p.slow_poll_ns && p.slow_poll_ns <= p.quantum_ns);
    for (int b = 0; b < WEFT_BANDS; b++)
        assert(p.band_weight[b] >= 1 && p.band_weight[b] <= 10000);
    assert(same(&p, &after));
    return 0;
}
