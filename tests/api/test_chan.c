/*
 * test_chan.c - weft_chan: per-sender order, rendezvous, buffering,
 * try_ and _until calls, the close rules, destroy, bad input, many
 * senders and receivers across workers with checked totals, and traffic
 * between tasks and plain threads in every direction.
 */
#include <stdlib.h>

#include "sync_util.h"

#define TAG(sender, seq) ((uint64_t)(sender) << 32 | (uint32_t)(seq))

/* ---- per-sender order --------------------------------------------------- */

enum { ORD_SENDERS = 4 };
static weft_chan *ord_ch;
static long ord_per;

static void *ord_sender(void *arg)
{
    uint32_t id = (uint32_t)(uintptr_t)arg;
    for (long i = 0; i < ord_per; i++) {
        uint64_t v = TAG(id, i);
        CHECK_OK(weft_chan_send(ord_ch, &v));
        if (i % 16 == 0)
            weft_yield();
    }
    return NULL;
}

static void *ord_receiver(void *arg)
{
    (void)arg;
    long next[ORD_SENDERS + 1] = {0};
    for (long k = 0; k < ord_per * (ORD_SENDERS + 1); k++) {
        uint64_t v;
        CHECK_OK(weft_chan_recv(ord_ch, &v));
        uint32_t id = (uint32_t)(v >> 32), seq = (uint32_t)v;
        CHECK_CMP_U64(id, <=, ORD_SENDERS);
        if ((long)seq != next[id])
            weft_check_fail(__FILE__, __LINE__,
                            "sender %u: got seq %u, expected %ld", id, seq,
                            next[id]);
        next[id]++;
    }
    return NULL;
}

static void order_case(size_t cap)
{
    weft_rt *rt = test_rt_workers(256, 2);
    ord_per = TEST_SANITIZED ? 2000 : 10000;
    CHECK_OK(weft_chan_create(&ord_ch, sizeof(uint64_t), cap));
    weft_task r = su_spawn(rt, ord_receiver, NULL);
    weft_task s[ORD_SENDERS];
    for (uintptr_t i = 0; i < ORD_SENDERS; i++)
        s[i] = su_spawn(rt, ord_sender, (void *)i);
    ord_sender((void *)(uintptr_t)ORD_SENDERS); /* and a plain thread */
    for (int i = 0; i < ORD_SENDERS; i++)
        su_join(s[i]);
    su_join(r);
    CHECK_EQ_U64(weft_chan_len(ord_ch), 0);
    CHECK_OK(weft_chan_destroy(ord_ch));
    test_rt_destroy_clean(rt);
}

TEST_T(api, chan_per_sender_order_buffered, 60)
{
    order_case(8);
}

TEST_T(api, chan_per_sender_order_rendezvous, 60)
{
    order_case(0);
}

/* ---- rendezvous -------------------------------------------------------- */

static _Atomic int rv_sent;

static void *rv_sender(void *arg)
{
    uint64_t v = 42;
    CHECK_OK(weft_chan_send((weft_chan *)arg, &v));
    atomic_store(&rv_sent, 1);
    return NULL;
}

static void rendezvous_case(int task_sender)
{
    weft_rt *rt = test_rt_workers(256, 2);
    weft_chan *ch;
    CHECK_OK(weft_chan_create(&ch, sizeof(uint64_t), 0));
    CHECK_EQ_U64(weft_chan_cap(ch), 0);
    atomic_store(&rv_sent, 0);
    weft_task t = WEFT_TASK_NULL;
    pthread_t th = 0;
    if (task_sender)
        t = su_spawn(rt, rv_sender, ch);
    else
        th = su_thread(rv_sender, ch);
    su_sleep_ms(50);
    CHECK_EQ_INT(atomic_load(&rv_sent), 0); /* no receiver yet */
    CHECK_EQ_U64(weft_chan_len(ch), 0);
    uint64_t v = 0;
    CHECK_OK(weft_chan_recv(ch, &v));
    CHECK_EQ_U64(v, 42);
    if (task_sender)
        su_join(t);
    else
        su_thread_join(th);
    CHECK_EQ_INT(atomic_load(&rv_sent), 1);
    CHECK_ERR(weft_chan_try_recv(ch, &v), -EAGAIN);
    CHECK_OK(weft_chan_destroy(ch));
    test_rt_destroy_clean(rt);
}

TEST(api, chan_rendezvous_send_waits_for_receiver_task)
{
    rendezvous_case(1);
}

TEST(api, chan_rendezvous_send_waits_for_receiver_thread)
{
    rendezvous_case(0);
}

TEST(api, chan_rendezvous_try_calls)
{
    weft_chan *ch;
    CHECK_OK(weft_chan_create(&ch, 4, 0));
    uint32_t v = 7;
    CHECK_ERR(weft_chan_try_send(ch, &v), -EAGAIN);
    CHECK_ERR(weft_chan_try_recv(ch, &v), -EAGAIN);
    CHECK_OK(weft_chan_destroy(ch));
}

/* ---- buffered ----------------------------------------------------------- */

TEST(api, chan_buffered_len_cap_try)
{
    weft_chan *ch;
    CHECK_OK(weft_chan_create(&ch, sizeof(uint32_t), 4));
    CHECK_EQ_U64(weft_chan_cap(ch), 4);
    CHECK_EQ_U64(weft_chan_len(ch), 0);
    uint32_t v;
    CHECK_ERR(weft_chan_try_recv(ch, &v), -EAGAIN);
    /* Several laps round the ring. */
    uint32_t next_in = 0, next_out = 0;
    for (int lap = 0; lap < 5; lap++) {
        while (weft_chan_len(ch) < 4) {
            v = next_in++;
            CHECK_OK(weft_chan_try_send(ch, &v));
        }
        v = 999;
        CHECK_ERR(weft_chan_try_send(ch, &v), -EAGAIN);
        CHECK_EQ_U64(weft_chan_len(ch), 4);
        for (int k = 0; k < 3; k++) {
            CHECK_OK(weft_chan_try_recv(ch, &v));
            CHECK_EQ_U64(v, next_out++);
        }
        CHECK_EQ_U64(weft_chan_len(ch), 1);
    }
    CHECK_OK(weft_chan_recv(ch, &v));
    CHECK_EQ_U64(v, next_out++);
    CHECK_ERR(weft_chan_try_recv(ch, &v), -EAGAIN);
    /* Blocking calls that need not block. */
    v = 5;
    CHECK_OK(weft_chan_send(ch, &v));
    CHECK_OK(weft_chan_send_until(ch, &v, weft_now_ns() + SU_MS));
    CHECK_OK(weft_chan_recv_until(ch, &v, weft_now_ns() + SU_MS));
    CHECK_OK(weft_chan_recv(ch, &v));
    CHECK_EQ_U64(weft_chan_len(ch), 0);
    CHECK_OK(weft_chan_destroy(ch));
}

/* An element of the maximum size, and odd sizes, copied faithfully. */
TEST(api, chan_element_sizes)
{
    static unsigned char big[65536], out[65536];
    weft_chan *ch;
    CHECK_OK(weft_chan_create(&ch, sizeof big, 2));
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (unsigned char)(i * 7 + 3);
    CHECK_OK(weft_chan_send(ch, big));
    CHECK_OK(weft_chan_recv(ch, out));
    CHECK_EQ_INT(memcmp(big, out, sizeof big), 0);
    CHECK_OK(weft_chan_destroy(ch));
    CHECK_OK(weft_chan_create(&ch, 3, 5));
    for (int i = 0; i < 5; i++) {
        unsigned char e[3] = {(unsigned char)i, (unsigned char)(i + 1),
                              (unsigned char)(i + 2)};
        CHECK_OK(weft_chan_try_send(ch, e));
    }
    for (int i = 0; i < 5; i++) {
        unsigned char e[3];
        CHECK_OK(weft_chan_try_recv(ch, e));
        CHECK(e[0] == i && e[1] == i + 1 && e[2] == i + 2);
    }
    CHECK_OK(weft_chan_destroy(ch));
}

/* ---- deadlines ---------------------------------------------------------- */

static void *until_calls(void *arg)
{
    weft_chan *ch = arg; /* cap 1, holding one element */
    uint64_t v = 77, t0 = weft_now_ns();
    CHECK_ERR(weft_chan_send_until(ch, &v, t0 + 20 * SU_MS), -ETIMEDOUT);
    uint64_t dt = weft_now_ns() - t0;
    CHECK_CMP_U64(dt, >=, 20 * SU_MS);
    CHECK_CMP_U64(dt, <, 2000 * SU_MS * SU_SLOW);
    CHECK_EQ_U64(weft_chan_len(ch), 1);
    CHECK_OK(weft_chan_recv(ch, &v));
    CHECK_EQ_U64(v, 1);
    t0 = weft_now_ns();
    CHECK_ERR(weft_chan_recv_until(ch, &v, t0 + 20 * SU_MS), -ETIMEDOUT);
    dt = weft_now_ns() - t0;
    CHECK_CMP_U64(dt, >=, 20 * SU_MS);
    CHECK_CMP_U64(dt, <, 2000 * SU_MS * SU_SLOW);
    /* The timed-out send had no effect. */
    CHECK_ERR(weft_chan_try_recv(ch, &v), -EAGAIN);
    v = 1;
    CHECK_OK(weft_chan_send(ch, &v));
    return NULL;
}

TEST(api, chan_send_recv_until_timeout)
{
    weft_rt *rt = test_rt_workers(256, 2);
    weft_chan *ch;
    CHECK_OK(weft_chan_create(&ch, sizeof(uint64_t), 1));
    uint64_t v = 1;
    CHECK_OK(weft_chan_send(ch, &v));
    su_join(su_spawn(rt, until_calls, ch)); /* task */
    until_calls(ch);                        /* plain thread */
    CHECK_OK(weft_chan_destroy(ch));        /* no node left behind */
    su_check_no_timers(rt);
    test_rt_destroy_clean(rt);
}

TEST(api, chan_rendezvous_send_until_timeout_no_effect)
{
    weft_chan *ch;
    CHECK_OK(weft_chan_create(&ch, sizeof(uint64_t), 0));
    uint64_t v = 5;
    CHECK_ERR(weft_chan_send_until(ch, &v, weft_now_ns() + 10 * SU_MS),
              -ETIMEDOUT);
    CHECK_ERR(weft_chan_try_recv(ch, &v), -EAGAIN);
    CHECK_ERR(weft_chan_recv_until(ch, &v, weft_now_ns() + 10 * SU_MS),
              -ETIMEDOUT);
    CHECK_OK(weft_chan_destroy(ch));
}

/* ---- close -------------------------------------------------------------- */

TEST(api, chan_close_drains_then_epipe)
{
    weft_chan *ch;
    CHECK_OK(weft_chan_create(&ch, sizeof(uint64_t), 4));
    for (uint64_t i = 0; i < 3; i++)
        CHECK_OK(weft_chan_send(ch, &i));
    CHECK_OK(weft_chan_close(ch));
    uint64_t v = 9;
    CHECK_ERR(weft_chan_send(ch, &v), -EPIPE);
    CHECK_ERR(weft_chan_try_send(ch, &v), -EPIPE);
    CHECK_ERR(weft_chan_send_until(ch, &v, weft_now_ns() + SU_MS), -EPIPE);
    CHECK_EQ_U64(weft_chan_len(ch), 3);
    for (uint64_t i = 0; i < 3; i++) {
        CHECK_OK(weft_chan_recv(ch, &v));
        CHECK_EQ_U64(v, i);
    }
    CHECK_ERR(weft_chan_recv(ch, &v), -EPIPE);
    CHECK_ERR(weft_chan_try_recv(ch, &v), -EPIPE);
    CHECK_ERR(weft_chan_recv_until(ch, &v, weft_now_ns() + SU_MS), -EPIPE);
    CHECK_ERR(weft_chan_close(ch), -EPIPE);
    CHECK_OK(weft_chan_destroy(ch));
}

static void *recv_expect_epipe(void *arg)
{
    uint64_t v;
    CHECK_ERR(weft_chan_recv((weft_chan *)arg, &v), -EPIPE);
    return NULL;
}

static void *send_expect_epipe(void *arg)
{
    uint64_t v = 1234;
    CHECK_ERR(weft_chan_send((weft_chan *)arg, &v), -EPIPE);
    return NULL;
}

TEST(api, chan_close_wakes_blocked_receivers)
{
    weft_rt *rt = test_rt_workers(256, 2);
    weft_chan *ch;
    CHECK_OK(weft_chan_create(&ch, sizeof(uint64_t), 2));
    weft_task t[3];
    for (int i = 0; i < 3; i++)
        t[i] = su_spawn(rt, recv_expect_epipe, ch);
    pthread_t th = su_thread(recv_expect_epipe, ch);
    WAIT_FOR(test_stats(rt).parks >= 3);
    su_sleep_ms(10);
    CHECK_ERR(weft_chan_destroy(ch), -EBUSY);
    CHECK_OK(weft_chan_close(ch));
    for (int i = 0; i < 3; i++)
        su_join(t[i]);
    su_thread_join(th);
    CHECK_OK(weft_chan_destroy(ch));
    test_rt_destroy_clean(rt);
}

static void close_senders_case(size_t cap)
{
    weft_rt *rt = test_rt_workers(256, 2);
    weft_chan *ch;
    CHECK_OK(weft_chan_create(&ch, sizeof(uint64_t), cap));
    uint64_t v = 55;
    if (cap)
        CHECK_OK(weft_chan_send(ch, &v)); /* full */
    weft_task t[3];
    for (int i = 0; i < 3; i++)
        t[i] = su_spawn(rt, send_expect_epipe, ch);
    pthread_t th = su_thread(send_expect_epipe, ch);
    WAIT_FOR(test_stats(rt).parks >= 3);
    su_sleep_ms(10);
    CHECK_ERR(weft_chan_destroy(ch), -EBUSY);
    CHECK_OK(weft_chan_close(ch));
    for (int i = 0; i < 3; i++)
        su_join(t[i]);
    su_thread_join(th);
    if (cap) { /* the buffered element survives the close */
        v = 0;
        CHECK_OK(weft_chan_recv(ch, &v));
        CHECK_EQ_U64(v, 55);
    }
    CHECK_ERR(weft_chan_recv(ch, &v), -EPIPE); /* nothing from the senders */
    CHECK_OK(weft_chan_destroy(ch));
    test_rt_destroy_clean(rt);
}

TEST(api, chan_close_wakes_blocked_senders_buffered)
{
    close_senders_case(1);
}

TEST(api, chan_close_wakes_blocked_senders_rendezvous)
{
    close_senders_case(0);
}

/* ---- destroy and bad input --------------------------------------------- */

TEST(api, chan_destroy_with_waiter_ebusy)
{
    weft_rt *rt = test_rt_workers(256, 2);
    weft_chan *ch;
    CHECK_OK(weft_chan_create(&ch, sizeof(uint64_t), 0));
    weft_task t = su_spawn(rt, recv_expect_epipe, ch);
    WAIT_FOR(test_stats(rt).parks >= 1);
    CHECK_ERR(weft_chan_destroy(ch), -EBUSY);
    CHECK_OK(weft_chan_close(ch));
    su_join(t);
    CHECK_OK(weft_chan_destroy(ch));
    test_rt_destroy_clean(rt);
}

TEST(api, chan_destroy_drops_buffered)
{
    weft_chan *ch;
    CHECK_OK(weft_chan_create(&ch, sizeof(uint64_t), 4));
    uint64_t v = 1;
    CHECK_OK(weft_chan_send(ch, &v));
    CHECK_OK(weft_chan_send(ch, &v));
    CHECK_OK(weft_chan_destroy(ch)); /* no waiters: allowed */
}

TEST(api, chan_use_after_destroy_einval)
{
    weft_chan *ch;
    CHECK_OK(weft_chan_create(&ch, sizeof(uint64_t), 2));
    CHECK_OK(weft_chan_destroy(ch));
    uint64_t v = 1;
    CHECK_ERR(weft_chan_send(ch, &v), -EINVAL);
    CHECK_ERR(weft_chan_send_until(ch, &v, weft_now_ns() + SU_MS), -EINVAL);
    CHECK_ERR(weft_chan_try_send(ch, &v), -EINVAL);
    CHECK_ERR(weft_chan_recv(ch, &v), -EINVAL);
    CHECK_ERR(weft_chan_recv_until(ch, &v, weft_now_ns() + SU_MS), -EINVAL);
    CHECK_ERR(weft_chan_try_recv(ch, &v), -EINVAL);
    CHECK_ERR(weft_chan_close(ch), -EINVAL);
    CHECK_ERR(weft_chan_destroy(ch), -EINVAL);
    CHECK_EQ_U64(weft_chan_len(ch), 0);
    CHECK_EQ_U64(weft_chan_cap(ch), 0);
    weft_sel_case c = {ch, WEFT_SEL_RECV, &v, 0};
    CHECK_ERR(weft_try_select(&c, 1), -EINVAL);
}

TEST(api, chan_bad_input_einval)
{
    weft_chan *ch = NULL;
    CHECK_ERR(weft_chan_create(&ch, 0, 4), -EINVAL);
    CHECK_ERR(weft_chan_create(&ch, 65537, 0), -EINVAL);
    CHECK_ERR(weft_chan_create(&ch, 8, ((size_t)1 << 31) + 1), -EINVAL);
    CHECK_ERR(weft_chan_create(NULL, 8, 4), -EINVAL);
    CHECK_NULL(ch);
    CHECK_OK(weft_chan_create(&ch, 65536, 0));
    CHECK_OK(weft_chan_destroy(ch));
    CHECK_OK(weft_chan_create(&ch, 1, 1));
    uint8_t b = 1;
    CHECK_ERR(weft_chan_send(ch, NULL), -EINVAL);
    CHECK_ERR(weft_chan_send_until(ch, NULL, WEFT_NO_DEADLINE), -EINVAL);
    CHECK_ERR(weft_chan_try_send(ch, NULL), -EINVAL);
    CHECK_EQ_U64(weft_chan_len(ch), 0);
    CHECK_OK(weft_chan_send(ch, &b));
    CHECK_ERR(weft_chan_recv(ch, NULL), -EINVAL);
    CHECK_ERR(weft_chan_recv_until(ch, NULL, WEFT_NO_DEADLINE), -EINVAL);
    CHECK_ERR(weft_chan_try_recv(ch, NULL), -EINVAL);
    CHECK_EQ_U64(weft_chan_len(ch), 1); /* untouched */
    CHECK_OK(weft_chan_destroy(ch));
    CHECK_ERR(weft_chan_destroy(NULL), -EINVAL);
    CHECK_ERR(weft_chan_close(NULL), -EINVAL);
    CHECK_ERR(weft_chan_send(NULL, &b), -EINVAL);
    CHECK_ERR(weft_chan_send_until(NULL, &b, 1), -EINVAL);
    CHECK_ERR(weft_chan_try_send(NULL, &b), -EINVAL);
    CHECK_ERR(weft_chan_recv(NULL, &b), -EINVAL);
    CHECK_ERR(weft_chan_recv_until(NULL, &b, 1), -EINVAL);
    CHECK_ERR(weft_chan_try_recv(NULL, &b), -EINVAL);
    CHECK_EQ_U64(weft_chan_len(NULL), 0);
    CHECK_EQ_U64(weft_chan_cap(NULL), 0);
}

/* ---- many senders and receivers ---------------------------------------- */

enum { MP_S = 4, MP_R = 4 };
static weft_chan *mp_ch;
static long mp_per;
static _Atomic uint64_t mp_count, mp_sum;
static _Atomic uint8_t *mp_seen;

static void *mp_sender(void *arg)
{
    uint64_t id = (uintptr_t)arg;
    for (long i = 0; i < mp_per; i++) {
        uint64_t v = id * (uint64_t)mp_per + (uint64_t)i;
        CHECK_OK(weft_chan_send(mp_ch, &v));
    }
    return NULL;
}

static void *mp_receiver(void *arg)
{
    (void)arg;
    uint64_t v, n = 0, sum = 0;
    int r;
    while ((r = weft_chan_recv(mp_ch, &v)) == 0) {
        CHECK_CMP_U64(v, <, (uint64_t)(MP_S + 1) * (uint64_t)mp_per);
        if (atomic_exchange(&mp_seen[v], 1))
            weft_check_fail(__FILE__, __LINE__,
                            "element %" PRIu64 " received twice", v);
        n++;
        sum += v;
    }
    CHECK_ERR(r, -EPIPE);
    atomic_fetch_add(&mp_count, n);
    atomic_fetch_add(&mp_sum, sum);
    return NULL;
}

static void mpmc_case(size_t cap, unsigned workers)
{
    weft_rt *rt = test_rt_workers(256, workers);
    mp_per = TEST_SANITIZED ? 2000 : 20000;
    uint64_t total = (uint64_t)(MP_S + 1) * (uint64_t)mp_per;
    mp_seen = calloc(total, 1);
    CHECK_NOT_NULL(mp_seen);
    atomic_store(&mp_count, 0);
    atomic_store(&mp_sum, 0);
    CHECK_OK(weft_chan_create(&mp_ch, sizeof(uint64_t), cap));
    weft_task s[MP_S], r[MP_R];
    for (uintptr_t i = 0; i < MP_R; i++)
        r[i] = su_spawn(rt, mp_receiver, NULL);
    pthread_t tr = su_thread(mp_receiver, NULL);
    for (uintptr_t i = 0; i < MP_S; i++)
        s[i] = su_spawn(rt, mp_sender, (void *)i);
    pthread_t ts = su_thread(mp_sender, (void *)(uintptr_t)MP_S);
    for (int i = 0; i < MP_S; i++)
        su_join(s[i]);
    su_thread_join(ts);
    CHECK_OK(weft_chan_close(mp_ch));
    for (int i = 0; i < MP_R; i++)
        su_join(r[i]);
    su_thread_join(tr);
    CHECK_EQ_U64(atomic_load(&mp_count), total);
    CHECK_EQ_U64(atomic_load(&mp_sum), total * (total - 1) / 2);
    CHECK_OK(weft_chan_destroy(mp_ch));
    free((void *)mp_seen);
    test_rt_destroy_clean(rt);
}

TEST_T(api, chan_mpmc_totals_buffered_2_workers, 60)
{
    mpmc_case(16, 2);
}

TEST_T(api, chan_mpmc_totals_rendezvous_2_workers, 60)
{
    mpmc_case(0, 2);
}

TEST_T(api, chan_mpmc_totals_buffered_4_workers, 60)
{
    mpmc_case(3, 4);
}

/* ---- tasks and plain threads ------------------------------------------- */

enum { XN = 5000 };

static void *x_send(void *arg)
{
    weft_chan *ch = arg;
    for (uint64_t i = 0; i < XN; i++)
        CHECK_OK(weft_chan_send(ch, &i));
    return NULL;
}

static void *x_recv(void *arg)
{
    weft_chan *ch = arg;
    for (uint64_t i = 0; i < XN; i++) {
        uint64_t v;
        CHECK_OK(weft_chan_recv(ch, &v));
        CHECK_EQ_U64(v, i);
    }
    return (void *)1;
}

/* kinds: 't' task, 'p' plain thread. */
static void cross_case(char sender, char receiver, size_t cap)
{
    weft_rt *rt = test_rt_workers(256, 2);
    weft_chan *ch;
    CHECK_OK(weft_chan_create(&ch, sizeof(uint64_t), cap));
    weft_task ts = WEFT_TASK_NULL, tr = WEFT_TASK_NULL;
    pthread_t ps = 0, pr = 0;
    if (receiver == 't')
        tr = su_spawn(rt, x_recv, ch);
    else
        pr = su_thread(x_recv, ch);
    if (sender == 't')
        ts = su_spawn(rt, x_send, ch);
    else
        ps = su_thread(x_send, ch);
    if (sender == 't')
        su_join(ts);
    else
        su_thread_join(ps);
    void *ok = receiver == 't' ? su_join(tr) : su_thread_join(pr);
    CHECK_EQ_U64((uintptr_t)ok, 1);
    CHECK_OK(weft_chan_destroy(ch));
    test_rt_destroy_clean(rt);
}

TEST(api, chan_thread_to_task)
{
    cross_case('p', 't', 0);
    cross_case('p', 't', 4);
}

TEST(api, chan_task_to_thread)
{
    cross_case('t', 'p', 0);
    cross_case('t', 'p', 4);
}

TEST(api, chan_thread_to_thread)
{
    cross_case('p', 'p', 0);
    cross_case('p', 'p', 4);
}

TEST(api, chan_task_to_task)
{
    cross_case('t', 't', 0);
    cross_case('t', 't', 4);
}
