/*
 * test_sync_stress.c - deadlines racing wake-ups. Short deadlines make
 * timeouts race claims all the time (wait.h, the claim protocol): a call
 * either completes (its peer's effect happened exactly once) or times out
 * with no effect. Conservation checks catch a double completion, a lost
 * element or a lost unit; a lost wake-up hangs (runner timeout). Tasks on
 * two workers and plain threads take part. Last, wake-ups from a plain
 * thread must leave the summary tree all zero once the runtime is idle.
 */
#include <stdlib.h>

#include "sync_util.h"

static uint32_t xs(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* ---- channel send_until / recv_until ------------------------------------ */

enum { CT_SEND = 5, CT_RECV = 5 };
static weft_chan *ct_ch[2];
static long ct_per;
static _Atomic int ct_stop;
static _Atomic uint64_t ct_sent_n, ct_sent_sum, ct_recv_n, ct_recv_sum;
static _Atomic uint64_t ct_timeouts;
static int ct_select; /* use select on both channels */

static void *ct_sender(void *arg)
{
    uint32_t id = (uint32_t)(uintptr_t)arg, rng = id * 2654435761u + 1;
    uint64_t n = 0, sum = 0, to = 0;
    for (long i = 0; i < ct_per; i++) {
        uint64_t v = (uint64_t)id << 32 | (uint64_t)i;
        uint64_t dl = weft_now_ns() + xs(&rng) % 200000;
        int r;
        if (ct_select) {
            weft_sel_case c[2] = {{ct_ch[0], WEFT_SEL_SEND, &v, 1},
                                  {ct_ch[1], WEFT_SEL_SEND, &v, 1}};
            r = weft_select_until(c, 2, dl);
            if (r >= 0) {
                CHECK_EQ_INT(c[r].result, 0);
                r = 0;
            }
        } else {
            r = weft_chan_send_until(ct_ch[i & 1], &v, dl);
        }
        if (r == 0) {
            n++;
            sum += v;
        } else {
            CHECK_ERR(r, -ETIMEDOUT);
            to++;
        }
    }
    atomic_fetch_add(&ct_sent_n, n);
    atomic_fetch_add(&ct_sent_sum, sum);
    atomic_fetch_add(&ct_timeouts, to);
    return NULL;
}

static void *ct_receiver(void *arg)
{
    uint32_t rng = (uint32_t)(uintptr_t)arg * 40503u + 7;
    uint64_t n = 0, sum = 0;
    for (;;) {
        uint64_t v, w;
        uint64_t dl = weft_now_ns() + xs(&rng) % 200000;
        int r;
        if (ct_select) {
            weft_sel_case c[2] = {{ct_ch[0], WEFT_SEL_RECV, &v, 1},
                                  {ct_ch[1], WEFT_SEL_RECV, &w, 1}};
            r = weft_select_until(c, 2, dl);
            if (r >= 0) {
                CHECK_EQ_INT(c[r].result, 0);
                if (r == 1)
                    v = w;
                r = 0;
            }
        } else {
            r = weft_chan_recv_until(ct_ch[rng & 1], &v, dl);
        }
        if (r == 0) {
            n++;
            sum += v;
        } else {
            CHECK_ERR(r, -ETIMEDOUT);
            if (atomic_load(&ct_stop))
                break;
        }
    }
    atomic_fetch_add(&ct_recv_n, n);
    atomic_fetch_add(&ct_recv_sum, sum);
    return NULL;
}

static void chan_timeout_race(size_t cap, int use_select)
{
    weft_rt *rt = test_rt_workers(256, 2);
    ct_per = TEST_SANITIZED ? 1500 : 15000;
    ct_select = use_select;
    atomic_store(&ct_stop, 0);
    atomic_store(&ct_sent_n, 0);
    atomic_store(&ct_sent_sum, 0);
    atomic_store(&ct_recv_n, 0);
    atomic_store(&ct_recv_sum, 0);
    atomic_store(&ct_timeouts, 0);
    for (int i = 0; i < 2; i++)
        CHECK_OK(weft_chan_create(&ct_ch[i], sizeof(uint64_t), cap));
    weft_task s[CT_SEND - 1], r[CT_RECV - 1];
    for (uintptr_t i = 0; i < CT_RECV - 1; i++)
        r[i] = su_spawn(rt, ct_receiver, (void *)(i + 1));
    pthread_t pr = su_thread(ct_receiver, (void *)(uintptr_t)CT_RECV);
    for (uintptr_t i = 0; i < CT_SEND - 1; i++)
        s[i] = su_spawn(rt, ct_sender, (void *)(i + 1));
    ct_sender((void *)(uintptr_t)CT_SEND); /* the main thread sends too */
    for (int i = 0; i < CT_SEND - 1; i++)
        su_join(s[i]);
    /* Every send has returned; receivers drain what is buffered. */
    atomic_store(&ct_stop, 1);
    for (int i = 0; i < CT_RECV - 1; i++)
        su_join(r[i]);
    su_thread_join(pr);
    uint64_t left = 0, v;
    for (int i = 0; i < 2; i++)
        while (weft_chan_try_recv(ct_ch[i], &v) == 0) {
            atomic_fetch_add(&ct_recv_n, 1);
            atomic_fetch_add(&ct_recv_sum, v);
            left++;
        }
    fprintf(stderr,
            "cap %zu%s: %" PRIu64 " delivered, %" PRIu64
            " sends timed out, %" PRIu64 " left buffered\n",
            cap, use_select ? " (select)" : "", atomic_load(&ct_sent_n),
            atomic_load(&ct_timeouts), left);
    CHECK_EQ_U64(atomic_load(&ct_recv_n), atomic_load(&ct_sent_n));
    CHECK_EQ_U64(atomic_load(&ct_recv_sum), atomic_load(&ct_sent_sum));
    CHECK_EQ_U64(atomic_load(&ct_sent_n) + atomic_load(&ct_timeouts),
                 (uint64_t)CT_SEND * (uint64_t)ct_per);
    CHECK_CMP_U64(atomic_load(&ct_sent_n), >, 0);
    for (int i = 0; i < 2; i++)
        CHECK_OK(weft_chan_destroy(ct_ch[i])); /* no node left behind */
    su_check_no_timers(rt);
    test_rt_destroy_clean(rt);
}

TEST_T(stress, chan_until_timeout_races_rendezvous, 90)
{
    chan_timeout_race(0, 0);
}

TEST_T(stress, chan_until_timeout_races_buffered, 90)
{
    chan_timeout_race(2, 0);
}

TEST_T(stress, select_until_timeout_races_rendezvous, 90)
{
    chan_timeout_race(0, 1);
}

/* ---- semaphore wait_until racing post ----------------------------------- */

static weft_sem st_s;
static long st_posts;
static _Atomic int st_stop;
static _Atomic uint64_t st_got;

static void *st_poster(void *arg)
{
    (void)arg;
    for (long i = 0; i < st_posts; i++) {
        CHECK_OK(weft_sem_post(&st_s));
        if (i % 32 == 0)
            weft_yield();
    }
    return NULL;
}

static void *st_waiter(void *arg)
{
    uint32_t rng = (uint32_t)(uintptr_t)arg * 7919u + 1;
    uint64_t got = 0;
    for (;;) {
        int r = weft_sem_wait_until(&st_s, weft_now_ns() + xs(&rng) % 100000);
        if (r == 0)
            got++;
        else {
            CHECK_ERR(r, -ETIMEDOUT);
            if (atomic_load(&st_stop))
                break;
        }
    }
    atomic_fetch_add(&st_got, got);
    return NULL;
}

TEST_T(stress, sem_wait_until_races_post, 90)
{
    weft_rt *rt = test_rt_workers(256, 2);
    CHECK_OK(weft_sem_init(&st_s, 0));
    st_posts = TEST_SANITIZED ? 5000 : 50000;
    atomic_store(&st_stop, 0);
    atomic_store(&st_got, 0);
    weft_task w[4], p[2];
    for (uintptr_t i = 0; i < 4; i++)
        w[i] = su_spawn(rt, st_waiter, (void *)(i + 1));
    pthread_t pw = su_thread(st_waiter, (void *)9);
    for (int i = 0; i < 2; i++)
        p[i] = su_spawn(rt, st_poster, NULL);
    st_poster(NULL);
    for (int i = 0; i < 2; i++)
        su_join(p[i]);
    atomic_store(&st_stop, 1);
    for (int i = 0; i < 4; i++)
        su_join(w[i]);
    su_thread_join(pw);
    uint64_t got = atomic_load(&st_got), left = weft_sem_value(&st_s);
    fprintf(stderr, "sem: %" PRIu64 " taken by waits, %" PRIu64 " left\n", got,
            left);
    CHECK_EQ_U64(got + left, 3 * (uint64_t)st_posts);
    CHECK_OK(weft_sem_destroy(&st_s));
    su_check_no_timers(rt);
    test_rt_destroy_clean(rt);
}

/* ---- mutex lock_until racing unlock --------------------------------------- */

static weft_mutex mt_m;
static uint64_t mt_counter; /* under mt_m */
static long mt_iters;
static _Atomic uint64_t mt_ok;

static void *mt_locker(void *arg)
{
    uint32_t rng = (uint32_t)(uintptr_t)arg * 2246822519u + 3;
    uint64_t ok = 0;
    for (long i = 0; i < mt_iters; i++) {
        int r = weft_mutex_lock_until(&mt_m, weft_now_ns() + xs(&rng) % 50000);
        if (r == -ETIMEDOUT)
            continue;
        CHECK_OK(r);
        uint64_t v = mt_counter;
        if (i % 5 == 0)
            weft_yield();
        mt_counter = v + 1;
        ok++;
        CHECK_OK(weft_mutex_unlock(&mt_m));
    }
    atomic_fetch_add(&mt_ok, ok);
    return NULL;
}

TEST_T(stress, mutex_lock_until_races_unlock, 90)
{
    weft_rt *rt = test_rt_workers(256, 2);
    CHECK_OK(weft_mutex_init(&mt_m));
    mt_iters = TEST_SANITIZED ? 3000 : 30000;
    mt_counter = 0;
    atomic_store(&mt_ok, 0);
    weft_task t[6];
    for (uintptr_t i = 0; i < 6; i++)
        t[i] = su_spawn(rt, mt_locker, (void *)(i + 1));
    pthread_t th = su_thread(mt_locker, (void *)7);
    for (int i = 0; i < 6; i++)
        su_join(t[i]);
    su_thread_join(th);
    fprintf(stderr, "mutex: %" PRIu64 " of %ld lock_until calls succeeded\n",
            atomic_load(&mt_ok), 7 * mt_iters);
    CHECK_EQ_U64(mt_counter, atomic_load(&mt_ok));
    CHECK_EQ_INT(su_wq_len(&mt_m.q_), 0);
    CHECK_OK(weft_mutex_try_lock(&mt_m)); /* free, not lost */
    CHECK_OK(weft_mutex_unlock(&mt_m));
    CHECK_OK(weft_mutex_destroy(&mt_m));
    su_check_no_timers(rt);
    test_rt_destroy_clean(rt);
}

/* ---- cond wait_until racing signal ---------------------------------------- */

static weft_mutex cs_m = WEFT_MUTEX_INIT;
static weft_cond cs_c = WEFT_COND_INIT;
static long cs_items, cs_taken; /* under cs_m */
static long cs_total;
static _Atomic int cs_stop;

static void *cs_consumer(void *arg)
{
    uint32_t rng = (uint32_t)(uintptr_t)arg * 97u + 1;
    CHECK_OK(weft_mutex_lock(&cs_m));
    for (;;) {
        while (cs_items == 0 && !atomic_load(&cs_stop)) {
            int r = weft_cond_wait_until(&cs_c, &cs_m,
                                         weft_now_ns() + xs(&rng) % 100000);
            if (r)
                CHECK_ERR(r, -ETIMEDOUT);
        }
        if (cs_items == 0)
            break;
        cs_items--;
        cs_taken++;
    }
    CHECK_OK(weft_mutex_unlock(&cs_m));
    return NULL;
}

TEST_T(stress, cond_wait_until_races_signal, 90)
{
    weft_rt *rt = test_rt_workers(256, 2);
    cs_total = TEST_SANITIZED ? 5000 : 50000;
    atomic_store(&cs_stop, 0);
    weft_task t[4];
    for (uintptr_t i = 0; i < 4; i++)
        t[i] = su_spawn(rt, cs_consumer, (void *)(i + 1));
    pthread_t th = su_thread(cs_consumer, (void *)5);
    for (long i = 0; i < cs_total; i++) {
        CHECK_OK(weft_mutex_lock(&cs_m));
        cs_items++;
        CHECK_OK(weft_cond_signal(&cs_c));
        CHECK_OK(weft_mutex_unlock(&cs_m));
    }
    /* Every item is taken eventually, without a broadcast. */
    for (;;) {
        CHECK_OK(weft_mutex_lock(&cs_m));
        long left = cs_items;
        CHECK_OK(weft_mutex_unlock(&cs_m));
        if (!left)
            break;
        su_sleep_ms(1);
    }
    atomic_store(&cs_stop, 1);
    for (int i = 0; i < 4; i++)
        su_join(t[i]);
    su_thread_join(th);
    CHECK_EQ_INT(cs_taken, cs_total);
    CHECK_OK(weft_cond_destroy(&cs_c));
    CHECK_OK(weft_mutex_destroy(&cs_m));
    su_check_no_timers(rt);
    test_rt_destroy_clean(rt);
}

/* ---- wake-ups from a plain thread leave the summary exact ---------------- */

/* A plain thread wakes tasks through the summary tree while both workers
 * look for them there; after each round, with every task parked again
 * and the workers idle, the tree must become all zero. An upper bit left
 * over an empty word (mem/summary.c, "Stale upper bits") kept the
 * snapshot non-zero after every task had ended, and idle workers
 * spinning. Debug builds widen the windows of those races with a random
 * delay at the summary's hook points. */
enum { SW_TASKS = 3 };
static weft_sem sw_go[SW_TASKS];
static _Atomic uint64_t sw_done;
static _Atomic int sw_stop;

static void *sw_task(void *arg)
{
    weft_sem *go = arg;
    for (;;) {
        CHECK_OK(weft_sem_wait(go));
        if (atomic_load(&sw_stop))
            return NULL;
        atomic_fetch_add(&sw_done, 1);
    }
}

#ifdef WEFT_DEBUG
/* Spin 0..~20 us: long enough for another thread to act in the window. */
static void sw_delay(int point)
{
    static _Thread_local uint32_t rng;
    (void)point;
    if (!rng)
        rng = (uint32_t)(uintptr_t)&rng | 1;
    uint64_t end = weft_now_ns() + xs(&rng) % 20000;
    while (weft_now_ns() < end)
        ;
}
#endif

TEST_T(stress, summary_exact_after_foreign_wakeups, 60)
{
#ifdef WEFT_DEBUG
    weft__summary_hook = sw_delay;
#endif
    weft_rt *rt = test_rt_workers(256, 2);
    atomic_store(&sw_done, 0);
    atomic_store(&sw_stop, 0);
    weft_task t[SW_TASKS];
    for (int i = 0; i < SW_TASKS; i++) {
        CHECK_OK(weft_sem_init(&sw_go[i], 0));
        t[i] = su_spawn(rt, sw_task, &sw_go[i]);
    }
    uint64_t end = weft_now_ns() + 3000 * SU_MS, rounds = 0;
    while (weft_now_ns() < end) {
        for (int i = 0; i < SW_TASKS; i++)
            CHECK_OK(weft_sem_post(&sw_go[i]));
        rounds++;
        while (atomic_load(&sw_done) < rounds * SW_TASKS)
            sched_yield();
        /* Every task has been taken from the tree and has run; the
         * workers go idle, clearing any stale bit they see on the way.
         * The bound is test_rt_destroy_clean's: a loaded machine may keep
         * the workers off the CPU for a while. */
        uint64_t quiet = weft_now_ns() + 2000 * SU_MS, snap;
        while ((snap = weft__summary_snapshot(&rt->sum)) != 0 &&
               weft_now_ns() < quiet)
            sched_yield();
        if (snap)
            weft_check_fail(
                __FILE__, __LINE__,
                "round %" PRIu64 ": summary left at %#" PRIx64 " (top %#" PRIx64
                ", root %#" PRIx64 ", leaf %#" PRIx64 ")",
                rounds, snap, atomic_load(&rt->sum.top[0]),
                atomic_load(&rt->sum.root[0]), atomic_load(&rt->sum.leaf[0]));
    }
    atomic_store(&sw_stop, 1);
    for (int i = 0; i < SW_TASKS; i++) {
        CHECK_OK(weft_sem_post(&sw_go[i]));
        su_join(t[i]);
        CHECK_OK(weft_sem_destroy(&sw_go[i]));
    }
    fprintf(stderr, "%" PRIu64 " rounds of %d wake-ups\n", rounds, SW_TASKS);
    test_rt_destroy_clean(rt);
#ifdef WEFT_DEBUG
    weft__summary_hook = NULL;
#endif
}
