/*
 * test_select.c - weft_select: uniform choice among ready cases, deadlines
 * that leave nothing behind, try_select, exactly-one completion, mixed
 * send and receive cases, closed channels, bad input.
 */
#include <stdlib.h>

#include "sync_util.h"

/* ---- fairness ---------------------------------------------------------- */

static long fair_rounds(void)
{
    return TEST_SANITIZED ? 20000 : 100000;
}

/* All k receive cases ready every round (cap-1 channels kept full). */
static void *recv_fairness(void *arg)
{
    size_t k = (uintptr_t)arg;
    weft_chan *ch[4];
    uint64_t got[4], cnt[4] = {0};
    weft_sel_case c[4];
    for (size_t i = 0; i < k; i++) {
        CHECK_OK(weft_chan_create(&ch[i], sizeof(uint64_t), 1));
        c[i] = (weft_sel_case){ch[i], WEFT_SEL_RECV, &got[i], 1};
    }
    long rounds = fair_rounds();
    for (long r = 0; r < rounds; r++) {
        for (size_t i = 0; i < k; i++)
            if (weft_chan_len(ch[i]) == 0) {
                uint64_t v = (uint64_t)r << 8 | i;
                CHECK_OK(weft_chan_try_send(ch[i], &v));
            }
        int idx = weft_select(c, k);
        CHECK_CMP_INT(idx, >=, 0);
        CHECK_CMP_INT(idx, <, (int)k);
        CHECK_EQ_INT(c[idx].result, 0);
        CHECK_EQ_U64(got[idx] & 0xff, (uint64_t)idx);
        cnt[idx]++;
    }
    double mean = (double)rounds / (double)k;
    fprintf(stderr, "select recv shares, %zu cases, %ld rounds:", k, rounds);
    for (size_t i = 0; i < k; i++)
        fprintf(stderr, " %" PRIu64 " (%.3f)", cnt[i],
                (double)cnt[i] / (double)rounds);
    fprintf(stderr, "\n");
    for (size_t i = 0; i < k; i++) {
        double dev = ((double)cnt[i] - mean) / mean;
        if (dev > 0.10 || dev < -0.10)
            weft_check_fail(__FILE__, __LINE__,
                            "case %zu chosen %" PRIu64 " times, mean %.0f", i,
                            cnt[i], mean);
    }
    for (size_t i = 0; i < k; i++)
        CHECK_OK(weft_chan_destroy(ch[i]));
    return NULL;
}

TEST_T(api, select_fairness_2_cases, 60)
{
    weft_rt *rt = test_rt_workers(256, 2);
    test_run(rt, recv_fairness, (void *)2);
    test_rt_destroy_clean(rt);
}

TEST_T(api, select_fairness_3_cases, 60)
{
    weft_rt *rt = test_rt_workers(256, 2);
    test_run(rt, recv_fairness, (void *)3);
    test_rt_destroy_clean(rt);
}

TEST_T(api, select_fairness_4_cases, 60)
{
    weft_rt *rt = test_rt_workers(256, 2);
    test_run(rt, recv_fairness, (void *)4);
    test_rt_destroy_clean(rt);
}

/* Send cases, all ready (cap-1 channels kept empty), plus NULL cases that
 * must never be chosen; from a plain thread. */
TEST_T(api, select_fairness_send_cases_plain_thread, 60)
{
    enum { K = 3 };
    weft_chan *ch[K];
    uint64_t val[K], cnt[K + 2] = {0};
    weft_sel_case c[K + 2];
    for (size_t i = 0; i < K; i++) {
        CHECK_OK(weft_chan_create(&ch[i], sizeof(uint64_t), 1));
        val[i] = i;
    }
    c[0] = (weft_sel_case){NULL, WEFT_SEL_SEND, &val[0], 0};
    for (size_t i = 0; i < K; i++)
        c[i + 1] = (weft_sel_case){ch[i], WEFT_SEL_SEND, &val[i], 1};
    c[K + 1] = (weft_sel_case){NULL, WEFT_SEL_RECV, &val[0], 0};
    long rounds = fair_rounds();
    for (long r = 0; r < rounds; r++) {
        int idx = weft_select(c, K + 2);
        CHECK_CMP_INT(idx, >=, 1);
        CHECK_CMP_INT(idx, <=, K);
        CHECK_EQ_INT(c[idx].result, 0);
        cnt[idx]++;
        uint64_t v;
        CHECK_OK(weft_chan_try_recv(ch[idx - 1], &v));
        CHECK_EQ_U64(v, (uint64_t)idx - 1);
        for (size_t i = 0; i < K; i++)
            CHECK_EQ_U64(weft_chan_len(ch[i]), 0);
    }
    double mean = (double)rounds / K;
    fprintf(stderr, "select send shares, %d cases, %ld rounds:", K, rounds);
    for (size_t i = 1; i <= K; i++)
        fprintf(stderr, " %" PRIu64, cnt[i]);
    fprintf(stderr, "\n");
    for (size_t i = 1; i <= K; i++) {
        double dev = ((double)cnt[i] - mean) / mean;
        CHECK(dev <= 0.10 && dev >= -0.10);
    }
    for (size_t i = 0; i < K; i++)
        CHECK_OK(weft_chan_destroy(ch[i]));
}

/* ---- deadlines and try ------------------------------------------------- */

static void *select_times_out(void *arg)
{
    weft_chan **ch = arg; /* [0] cap 0, [1] cap 1 and full */
    uint64_t a, b = 3;
    weft_sel_case c[2] = {{ch[0], WEFT_SEL_RECV, &a, 1},
                          {ch[1], WEFT_SEL_SEND, &b, 1}};
    uint64_t t0 = weft_now_ns();
    CHECK_ERR(weft_select_until(c, 2, t0 + 20 * SU_MS), -ETIMEDOUT);
    uint64_t dt = weft_now_ns() - t0;
    CHECK_CMP_U64(dt, >=, 20 * SU_MS);
    CHECK_CMP_U64(dt, <, 2000 * SU_MS * SU_SLOW);
    CHECK_EQ_U64(weft_chan_len(ch[1]), 1); /* the send had no effect */
    return NULL;
}

static void select_timeout_case(int in_task)
{
    weft_rt *rt = test_rt_workers(256, 2);
    weft_chan *ch[2];
    CHECK_OK(weft_chan_create(&ch[0], sizeof(uint64_t), 0));
    CHECK_OK(weft_chan_create(&ch[1], sizeof(uint64_t), 1));
    uint64_t v = 1;
    CHECK_OK(weft_chan_send(ch[1], &v));
    if (in_task)
        su_join(su_spawn(rt, select_times_out, ch));
    else
        select_times_out(ch);
    /* No node left behind on either channel. */
    CHECK_ERR(weft_chan_try_send(ch[0], &v), -EAGAIN);
    CHECK_OK(weft_chan_destroy(ch[0]));
    CHECK_OK(weft_chan_destroy(ch[1]));
    su_check_no_timers(rt);
    test_rt_destroy_clean(rt);
}

TEST(api, select_until_timeout_leaves_nothing_task)
{
    select_timeout_case(1);
}

TEST(api, select_until_timeout_leaves_nothing_thread)
{
    select_timeout_case(0);
}

TEST(api, try_select_eagain)
{
    weft_chan *a, *b;
    CHECK_OK(weft_chan_create(&a, sizeof(uint64_t), 0));
    CHECK_OK(weft_chan_create(&b, sizeof(uint64_t), 1));
    uint64_t x = 1, y = 2;
    CHECK_OK(weft_chan_send(b, &y));
    weft_sel_case c[2] = {{a, WEFT_SEL_RECV, &x, 1}, {b, WEFT_SEL_SEND, &x, 1}};
    CHECK_ERR(weft_try_select(c, 2), -EAGAIN);
    CHECK_EQ_U64(weft_chan_len(b), 1);
    /* Ready: returns at once. */
    c[1].op = WEFT_SEL_RECV;
    CHECK_EQ_INT(weft_try_select(c, 2), 1);
    CHECK_EQ_INT(c[1].result, 0);
    CHECK_EQ_U64(x, 2);
    CHECK_OK(weft_chan_destroy(a));
    CHECK_OK(weft_chan_destroy(b));
}

/* ---- exactly one completion -------------------------------------------- */

enum { ONE_K = 3 };
static weft_chan *one_ch[ONE_K];
static _Atomic int one_sent[ONE_K];

static void *one_selector(void *arg)
{
    (void)arg;
    uint64_t got[ONE_K];
    weft_sel_case c[ONE_K];
    for (int i = 0; i < ONE_K; i++)
        c[i] = (weft_sel_case){one_ch[i], WEFT_SEL_RECV, &got[i], 1};
    int idx = weft_select(c, ONE_K);
    CHECK_CMP_INT(idx, >=, 0);
    CHECK_EQ_INT(c[idx].result, 0);
    CHECK_EQ_U64(got[idx], 100 + (uint64_t)idx);
    return (void *)(uintptr_t)(idx + 1);
}

static void *one_sender(void *arg)
{
    int i = (int)(uintptr_t)arg;
    uint64_t v = 100 + (uint64_t)i;
    CHECK_OK(weft_chan_send(one_ch[i], &v));
    atomic_store(&one_sent[i], 1);
    return NULL;
}

static void exactly_one_case(size_t cap)
{
    weft_rt *rt = test_rt_workers(256, 2);
    for (int i = 0; i < ONE_K; i++) {
        CHECK_OK(weft_chan_create(&one_ch[i], sizeof(uint64_t), cap));
        atomic_store(&one_sent[i], 0);
    }
    weft_task sel = su_spawn(rt, one_selector, NULL);
    WAIT_FOR(test_stats(rt).parks >= 1);
    pthread_t th[ONE_K];
    for (int i = 0; i < ONE_K; i++)
        th[i] = su_thread(one_sender, (void *)(uintptr_t)i);
    int won = (int)(uintptr_t)su_join(sel) - 1;
    su_sleep_ms(30);
    if (cap == 0) {
        /* Only the chosen sender completed; the others still wait. */
        for (int i = 0; i < ONE_K; i++)
            CHECK_EQ_INT(atomic_load(&one_sent[i]), i == won);
    } else {
        /* The others buffered their elements; nothing was taken. */
        for (int i = 0; i < ONE_K; i++) {
            CHECK_EQ_INT(atomic_load(&one_sent[i]), 1);
            CHECK_EQ_U64(weft_chan_len(one_ch[i]), i == won ? 0 : 1);
        }
    }
    for (int i = 0; i < ONE_K; i++) {
        if (i == won)
            continue;
        uint64_t v;
        CHECK_OK(weft_chan_recv(one_ch[i], &v));
        CHECK_EQ_U64(v, 100 + (uint64_t)i);
    }
    for (int i = 0; i < ONE_K; i++) {
        su_thread_join(th[i]);
        uint64_t v;
        CHECK_ERR(weft_chan_try_recv(one_ch[i], &v), -EAGAIN);
        CHECK_OK(weft_chan_destroy(one_ch[i]));
    }
    test_rt_destroy_clean(rt);
}

TEST(api, select_completed_by_exactly_one_sender_rendezvous)
{
    exactly_one_case(0);
}

TEST(api, select_completed_by_exactly_one_sender_buffered)
{
    exactly_one_case(1);
}

/* ---- mixed send and receive cases ------------------------------------- */

static weft_chan *mx_a, *mx_b; /* a: cap 1, full (send case blocks);
                                  b: cap 0 (recv case blocks) */

static void *mx_selector(void *arg)
{
    (void)arg;
    uint64_t out = 222, in = 0;
    weft_sel_case c[2] = {{mx_a, WEFT_SEL_SEND, &out, 1},
                          {mx_b, WEFT_SEL_RECV, &in, 1}};
    int idx = weft_select(c, 2);
    CHECK_CMP_INT(idx, >=, 0);
    CHECK_EQ_INT(c[idx].result, 0);
    if (idx == 1)
        CHECK_EQ_U64(in, 333);
    return (void *)(uintptr_t)(idx + 1);
}

static void mixed_case(int complete_send)
{
    weft_rt *rt = test_rt_workers(256, 2);
    CHECK_OK(weft_chan_create(&mx_a, sizeof(uint64_t), 1));
    CHECK_OK(weft_chan_create(&mx_b, sizeof(uint64_t), 0));
    uint64_t v = 111;
    CHECK_OK(weft_chan_send(mx_a, &v));
    weft_task sel = su_spawn(rt, mx_selector, NULL);
    WAIT_FOR(test_stats(rt).parks >= 1);
    if (complete_send) {
        CHECK_OK(weft_chan_recv(mx_a, &v)); /* frees a's slot */
        CHECK_EQ_U64(v, 111);
        CHECK_EQ_U64((uintptr_t)su_join(sel), 1);
        CHECK_EQ_U64(weft_chan_len(mx_a), 1);
        CHECK_OK(weft_chan_recv(mx_a, &v));
        CHECK_EQ_U64(v, 222);
        CHECK_ERR(weft_chan_try_send(mx_b, &v), -EAGAIN); /* b untouched */
    } else {
        v = 333;
        CHECK_OK(weft_chan_send(mx_b, &v));
        CHECK_EQ_U64((uintptr_t)su_join(sel), 2);
        CHECK_EQ_U64(weft_chan_len(mx_a), 1); /* the send case did not run */
        CHECK_OK(weft_chan_recv(mx_a, &v));
        CHECK_EQ_U64(v, 111);
        CHECK_ERR(weft_chan_try_recv(mx_a, &v), -EAGAIN);
    }
    CHECK_OK(weft_chan_destroy(mx_a));
    CHECK_OK(weft_chan_destroy(mx_b));
    test_rt_destroy_clean(rt);
}

TEST(api, select_mixed_send_case_completes)
{
    mixed_case(1);
}

TEST(api, select_mixed_recv_case_completes)
{
    mixed_case(0);
}

/* ---- closed channels --------------------------------------------------- */

TEST(api, select_closed_case_epipe)
{
    weft_chan *a, *b;
    CHECK_OK(weft_chan_create(&a, sizeof(uint64_t), 0));
    CHECK_OK(weft_chan_create(&b, sizeof(uint64_t), 0));
    CHECK_OK(weft_chan_close(a));
    uint64_t x = 0, y = 0;
    weft_sel_case c[2] = {{a, WEFT_SEL_RECV, &x, 1}, {b, WEFT_SEL_RECV, &y, 1}};
    CHECK_EQ_INT(weft_select(c, 2), 0);
    CHECK_EQ_INT(c[0].result, -EPIPE);
    c[0].op = WEFT_SEL_SEND;
    c[0].result = 1;
    CHECK_EQ_INT(weft_try_select(c, 2), 0);
    CHECK_EQ_INT(c[0].result, -EPIPE);
    CHECK_OK(weft_chan_destroy(a));
    CHECK_OK(weft_chan_destroy(b));
}

static weft_chan *cl_a, *cl_b;

static void *cl_selector(void *arg)
{
    (void)arg;
    uint64_t x = 0, y = 0;
    weft_sel_case c[2] = {{cl_a, WEFT_SEL_RECV, &x, 1},
                          {cl_b, WEFT_SEL_SEND, &y, 1}};
    CHECK_EQ_INT(weft_select(c, 2), 0);
    CHECK_EQ_INT(c[0].result, -EPIPE);
    return NULL;
}

TEST(api, select_blocked_woken_by_close_epipe)
{
    weft_rt *rt = test_rt_workers(256, 2);
    CHECK_OK(weft_chan_create(&cl_a, sizeof(uint64_t), 0));
    CHECK_OK(weft_chan_create(&cl_b, sizeof(uint64_t), 0));
    weft_task t = su_spawn(rt, cl_selector, NULL);
    WAIT_FOR(test_stats(rt).parks >= 1);
    CHECK_ERR(weft_chan_destroy(cl_b), -EBUSY);
    CHECK_OK(weft_chan_close(cl_a));
    su_join(t);
    uint64_t v;
    CHECK_ERR(weft_chan_try_recv(cl_b, &v), -EAGAIN); /* its node is gone */
    CHECK_OK(weft_chan_destroy(cl_a));
    CHECK_OK(weft_chan_destroy(cl_b));
    test_rt_destroy_clean(rt);
}

/* ---- bad input --------------------------------------------------------- */

TEST(api, select_bad_input)
{
    uint64_t v = 0;
    weft_sel_case none[2] = {{NULL, WEFT_SEL_RECV, &v, 0},
                             {NULL, WEFT_SEL_SEND, &v, 0}};
    CHECK_ERR(weft_select(none, 2), -EINVAL); /* would block forever */
    CHECK_ERR(weft_try_select(none, 2), -EAGAIN);
    uint64_t t0 = weft_now_ns();
    CHECK_ERR(weft_select_until(none, 2, t0 + 10 * SU_MS), -ETIMEDOUT);
    CHECK_CMP_U64(weft_now_ns() - t0, >=, 10 * SU_MS);
    CHECK_ERR(weft_select(NULL, 1), -EINVAL);
    CHECK_ERR(weft_select_until(NULL, 1, 1), -EINVAL);
    CHECK_ERR(weft_try_select(NULL, 1), -EINVAL);

    weft_chan *ch;
    CHECK_OK(weft_chan_create(&ch, sizeof(uint64_t), 1));
    weft_sel_case c[65];
    for (int i = 0; i < 65; i++)
        c[i] = (weft_sel_case){ch, WEFT_SEL_SEND, &v, 1};
    CHECK_ERR(weft_select(c, 0), -EINVAL);
    CHECK_ERR(weft_try_select(c, 0), -EINVAL);
    CHECK_ERR(weft_select(c, 65), -EINVAL);
    CHECK_ERR(weft_try_select(c, 65), -EINVAL);
    CHECK_EQ_U64(weft_chan_len(ch), 0);
    int idx = weft_select(c, 64); /* 64 is allowed */
    CHECK_CMP_INT(idx, >=, 0);
    CHECK_CMP_INT(idx, <, 64);
    CHECK_EQ_U64(weft_chan_len(ch), 1);
    CHECK_OK(weft_chan_try_recv(ch, &v));
    weft_sel_case bad_op = {ch, 3, &v, 1};
    CHECK_ERR(weft_try_select(&bad_op, 1), -EINVAL);
    CHECK_ERR(weft_select(&bad_op, 1), -EINVAL);
    weft_sel_case bad_elem = {ch, WEFT_SEL_SEND, NULL, 1};
    CHECK_ERR(weft_try_select(&bad_elem, 1), -EINVAL);
    CHECK_ERR(weft_select_until(&bad_elem, 1, weft_now_ns() + SU_MS), -EINVAL);
    CHECK_EQ_U64(weft_chan_len(ch), 0);
    CHECK_OK(weft_chan_destroy(ch));
}
