/*
 * soak.c - build/bench/weft-soak: a mixed workload for a fixed time
 * (issue 18, part 3), written from weft.h alone.
 *
 *   weft-soak [--minutes M | --seconds S] [--interval S]
 *
 * Also SOAK_SECONDS and SOAK_INTERVAL in the environment (the flags win).
 * Default 1 minute. `make soak MINUTES=N` builds the Release tree and runs
 * it; fractional minutes are fine.
 *
 * What runs. One long-lived runtime takes rounds, back to back, each a
 * task (weft_rt_run) that runs at once and joins:
 *   - a spawn/join tree (depth 6, priorities by depth), each node
 *     returning its subtree's size;
 *   - four producers (one sending through weft_select over two channels)
 *     and two consumers selecting with a deadline over three channels of
 *     capacity 0, 1 and 8, closed when the producers are done;
 *   - a mutex-protected counter (lock, lock_until, try_lock), a bounded
 *     buffer on a mutex and two conds (cond_wait_until in the consumers),
 *     and a semaphore guarding at most three holders;
 *   - timers: sleeps and sleep_until, and _until calls on objects nobody
 *     will signal (sem, event, channel, a mutex the caller holds) that
 *     must time out, and not before their deadline;
 *   - short hogs at low priority: two WEFT_PREEMPTIBLE ones spinning 3 ms
 *     and two stubborn ones spinning 2 ms, counted down on a wait group.
 * Beside it a plain thread keeps spawning batches of tasks into the
 * runtime, waking them with an event and feeding them through a channel,
 * and posts a semaphore to a high-priority task to measure wake-up
 * latency (post to resume). After each round a short-lived runtime is
 * created and destroyed, in turn: cleanly (a tree, then weft_rt_destroy
 * must refuse a live task with -EBUSY, then succeed); or with tasks parked
 * on objects that outlive it (a mutex, cond, sem, wait group, event, two
 * channels, select, a sleep, a join within it and a join from the
 * long-lived runtime), then weft_rt_shutdown, then weft_rt_destroy either
 * after every cancelled task has reported -ECANCELED or at once (tasks
 * may then be abandoned). Afterwards the outliving objects must have no
 * waiter left (their _destroy succeeds) and still work.
 *
 * What it checks. Every call's result; every tree size, counter, sum and
 * message (each one received exactly once, in order per sender and
 * channel); sleeps and timeouts not early; that every task spawned
 * finished or (only after an abrupt destroy) was abandoned; that no
 * round or plain-thread batch stalls for 60 s (a lost task or wake-up:
 * the runtime is dumped and the soak exits). Each interval (a minute; a
 * quarter of the run when that is under two minutes) prints one line:
 * tasks done, messages, p99 wake-up latency, RSS, anonymous RSS and open
 * fds. The memory and fd baselines are taken at the end of the first
 * interval; later growth of RSS or of anonymous RSS (RssAnon: the heap,
 * stacks, the runtimes' arenas, without the file pages that come and go
 * with the page cache) over 5 %, or of open fds at all, fails (RSS is
 * not checked in ASan builds: see CHECK_RSS).
 * Exit status 0, or 1 on any failed check (3 on a stall).
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "weft.h"

/* ---- Checks and counters ------------------------------------------------ */

static _Atomic int failures;

static void fail(int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "weft-soak: FAIL (soak.c:%d): ", line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    atomic_fetch_add_explicit(&failures, 1, memory_order_relaxed);
}

/* Failures are recorded and the soak stops after the round; a check in a
 * task must not exit the process under the runtime's feet. */
#define CHECK(c) ((c) ? (void)0 : fail(__LINE__, "%s", #c))
#define CHECK_EQ(a, b)                                                         \
    do {                                                                       \
        long long a_ = (long long)(a), b_ = (long long)(b);                    \
        if (a_ != b_)                                                          \
            fail(__LINE__, "%s == %s: %lld != %lld", #a, #b, a_, b_);          \
    } while (0)
#define CHECK_RC(call) CHECK_EQ(call, 0)

/* Tasks spawned by the soak, tasks that returned, tasks left unrun by an
 * abrupt destroy. Every spawn is counted by spawn(), every return by
 * finish(): at the end spawned == finished + abandoned. Relaxed: read
 * after joins, or for the report line. */
static _Atomic uint64_t n_spawned, n_finished, n_abandoned, n_cancelled;
static _Atomic uint64_t n_msgs, n_warns;
/* Progress, watched by the watchdog: [0] rounds, [1] plain-thread
 * batches. */
static _Atomic uint64_t progress[2];

static void count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static void *finish(void *ret)
{
    count(&n_finished, 1);
    return ret;
}

static int spawn(weft_rt *rt, weft_task *t, weft_fn fn, void *arg, int prio,
                 size_t stack, unsigned flags)
{
    weft_spawn_attr a = {prio, stack, flags, NULL};
    int rc = weft_spawn(rt, t, fn, arg, &a);
    if (rc == 0)
        count(&n_spawned, 1);
    return rc;
}

/* weft_rt_run, counted as a spawn. */
static int run(weft_rt *r, weft_fn fn, void *arg, void **res)
{
    count(&n_spawned, 1);
    int rc = weft_rt_run(r, fn, arg, res);
    if (rc)
        atomic_fetch_sub(&n_spawned, 1);
    return rc;
}

/* Join and return the task's result as a long; failures are recorded. */
static long join(weft_task t)
{
    void *r = NULL;
    CHECK_RC(weft_join(t, &r));
    return (long)(intptr_t)r;
}

static uint64_t rnd(uint64_t *s) /* xorshift64 */
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void warned(void *arg, weft_task t, const char *name, uint64_t ns)
{
    count(&n_warns, 1);
}

/* ---- Wake-up latency: a histogram of microseconds ----------------------- */

#define LAT_BUCKETS 20001 /* 0..19999 us, then "20 ms or more" */
static _Atomic uint32_t lat_hist[LAT_BUCKETS];

static void lat_add(uint64_t ns)
{
    uint64_t us = ns / 1000;
    atomic_fetch_add_explicit(
        &lat_hist[us < LAT_BUCKETS ? us : LAT_BUCKETS - 1], 1,
        memory_order_relaxed);
}

/* p99 and the sample count since the last call, which starts over. */
static uint64_t lat_p99_reset(uint64_t *samples)
{
    static uint32_t snap[LAT_BUCKETS];
    uint64_t n = 0, seen = 0;
    for (int i = 0; i < LAT_BUCKETS; i++)
        n += snap[i] =
            atomic_exchange_explicit(&lat_hist[i], 0, memory_order_relaxed);
    *samples = n;
    for (int i = 0; i < LAT_BUCKETS; i++)
        if ((seen += snap[i]) * 100 >= n * 99 && n)
            return (uint64_t)i;
    return 0;
}

/* ---- Tree ---------------------------------------------------------------- */

#define TREE_DEPTH 6

static void *tree(void *arg)
{
    intptr_t depth = (intptr_t)arg;
    if (depth == 0)
        return finish((void *)1);
    weft_task kid[2];
    long size = 1;
    int prio = (int)((depth * 5) % (WEFT_PRIO_MAX + 1));
    for (int i = 0; i < 2; i++)
        CHECK_RC(spawn(NULL, &kid[i], tree, (void *)(depth - 1), prio,
                       WEFT_STACK_DEFAULT, 0));
    if (depth % 2)
        weft_yield();
    for (int i = 0; i < 2; i++)
        size += join(kid[i]);
    return finish((void *)(intptr_t)size);
}

/* ---- Channels and select ------------------------------------------------- */

#define PRODUCERS 4
#define CONSUMERS 2
#define PER_PRODUCER 256
#define NCHAN 3

typedef struct msg {
    uint32_t from, seq;
    uint64_t check; /* a function of from and seq */
} msg;

static struct chans {
    weft_chan *ch[NCHAN];
    _Atomic uint8_t seen[PRODUCERS][PER_PRODUCER];
} cw;

static uint64_t msg_check(uint32_t from, uint32_t seq)
{
    return ((uint64_t)from << 32 | seq) * 0x9e3779b97f4a7c15u;
}

static void *producer(void *arg)
{
    uint32_t p = (uint32_t)(intptr_t)arg;
    for (uint32_t s = 0; s < PER_PRODUCER; s++) {
        msg m = {p, s, msg_check(p, s)};
        if (p == 0) {
            /* Whichever of two channels takes it first. */
            weft_sel_case c[2] = {{cw.ch[0], WEFT_SEL_SEND, &m, -1},
                                  {cw.ch[2], WEFT_SEL_SEND, &m, -1}};
            int i = weft_select(c, 2);
            CHECK(i == 0 || i == 1);
            if (i == 0 || i == 1)
                CHECK_RC(c[i].result);
        } else if (s % 2) {
            CHECK_RC(weft_chan_send(cw.ch[p % NCHAN], &m));
        } else {
            uint64_t dl = weft_now_ns() + 60 * 1000000000ull;
            CHECK_RC(weft_chan_send_until(cw.ch[p % NCHAN], &m, dl));
        }
    }
    return finish(NULL);
}

/* Receives until every channel is closed and drained; checks each
 * message's payload, that it was not seen before, and that each sender's
 * messages come in order on each channel. Returns how many it took. */
static void *consumer(void *arg)
{
    int64_t last[PRODUCERS][NCHAN];
    for (int p = 0; p < PRODUCERS; p++)
        for (int c = 0; c < NCHAN; c++)
            last[p][c] = -1;
    msg m[NCHAN];
    weft_sel_case cs[NCHAN];
    for (int c = 0; c < NCHAN; c++)
        cs[c] = (weft_sel_case){cw.ch[c], WEFT_SEL_RECV, &m[c], -1};
    long got = 0;
    for (int open = NCHAN; open > 0;) {
        int i = weft_select_until(cs, NCHAN, weft_now_ns() + 20000000);
        if (i == -ETIMEDOUT)
            continue;
        if (i < 0 || i >= NCHAN) {
            fail(__LINE__, "select: %s", weft_err_name(i));
            break;
        }
        if (cs[i].result == -EPIPE) {
            cs[i].chan = NULL;
            open--;
            continue;
        }
        CHECK_RC(cs[i].result);
        msg *x = &m[i];
        if (x->from >= PRODUCERS || x->seq >= PER_PRODUCER ||
            x->check != msg_check(x->from, x->seq)) {
            fail(__LINE__, "corrupt message %u/%u", x->from, x->seq);
            continue;
        }
        CHECK_EQ(atomic_exchange(&cw.seen[x->from][x->seq], 1), 0);
        CHECK((int64_t)x->seq > last[x->from][i]);
        last[x->from][i] = x->seq;
        got++;
    }
    count(&n_msgs, (uint64_t)got);
    return finish((void *)got);
}

static void *chan_work(void *arg)
{
    static const size_t caps[NCHAN] = {0, 1, 8};
    for (int c = 0; c < NCHAN; c++)
        CHECK_RC(weft_chan_create(&cw.ch[c], sizeof(msg), caps[c]));
    memset(cw.seen, 0, sizeof cw.seen);
    weft_task p[PRODUCERS], c[CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++)
        CHECK_RC(spawn(NULL, &c[i], consumer, NULL, WEFT_PRIO_NORMAL,
                       WEFT_STACK_DEFAULT, 0));
    for (int i = 0; i < PRODUCERS; i++)
        CHECK_RC(spawn(NULL, &p[i], producer, (void *)(intptr_t)i,
                       WEFT_PRIO_HIGH + i, WEFT_STACK_DEFAULT, 0));
    for (int i = 0; i < PRODUCERS; i++)
        join(p[i]);
    for (int i = 0; i < NCHAN; i++)
        CHECK_RC(weft_chan_close(cw.ch[i]));
    long got = 0;
    for (int i = 0; i < CONSUMERS; i++)
        got += join(c[i]);
    CHECK_EQ(got, PRODUCERS * PER_PRODUCER);
    for (int i = 0; i < NCHAN; i++)
        CHECK_RC(weft_chan_destroy(cw.ch[i]));
    return finish(NULL);
}

/* ---- Mutex, cond, semaphore ---------------------------------------------- */

#define LOCKERS 6
#define LOCKS_EACH 500
#define BB_ITEMS 300 /* per producer; two producers, two consumers */
#define SEM_UNITS 3
#define SEM_USERS 8

static struct syncs {
    weft_mutex m;
    long counter;  /* under m */
    weft_mutex bm; /* the bounded buffer's lock */
    weft_cond not_empty, not_full;
    int buf[4], head, len; /* under bm */
    long taken, sum;       /* under bm */
    weft_sem sem;
    _Atomic int holders;
} sw = {.m = WEFT_MUTEX_INIT,
        .bm = WEFT_MUTEX_INIT,
        .not_empty = WEFT_COND_INIT,
        .not_full = WEFT_COND_INIT};

static void *locker(void *arg)
{
    uint64_t s = (uint64_t)(intptr_t)arg * 7919 + 1;
    for (int i = 0; i < LOCKS_EACH; i++) {
        switch (rnd(&s) % 3) {
        case 0:
            CHECK_RC(weft_mutex_lock(&sw.m));
            break;
        case 1:
            CHECK_RC(weft_mutex_lock_until(&sw.m,
                                           weft_now_ns() + 60 * 1000000000ull));
            break;
        default:
            while (weft_mutex_try_lock(&sw.m) == -EBUSY)
                weft_yield();
        }
        long v = sw.counter;
        if (i % 64 == 0)
            weft_yield(); /* hold it across a switch now and then */
        sw.counter = v + 1;
        CHECK_RC(weft_mutex_unlock(&sw.m));
    }
    return finish(NULL);
}

static void *bb_producer(void *arg)
{
    for (int i = 1; i <= BB_ITEMS; i++) {
        CHECK_RC(weft_mutex_lock(&sw.bm));
        while (sw.len == 4)
            CHECK_RC(weft_cond_wait(&sw.not_full, &sw.bm));
        sw.buf[(sw.head + sw.len++) % 4] = i;
        CHECK_RC(weft_cond_signal(&sw.not_empty));
        CHECK_RC(weft_mutex_unlock(&sw.bm));
    }
    return finish(NULL);
}

static void *bb_consumer(void *arg)
{
    CHECK_RC(weft_mutex_lock(&sw.bm));
    for (;;) {
        while (sw.len == 0 && sw.taken < 2 * BB_ITEMS) {
            int rc = weft_cond_wait_until(&sw.not_empty, &sw.bm,
                                          weft_now_ns() + 5000000);
            CHECK(rc == 0 || rc == -ETIMEDOUT);
        }
        if (sw.taken == 2 * BB_ITEMS)
            break;
        sw.sum += sw.buf[sw.head];
        sw.head = (sw.head + 1) % 4;
        sw.len--;
        if (++sw.taken == 2 * BB_ITEMS)
            CHECK_RC(weft_cond_broadcast(&sw.not_empty));
        CHECK_RC(weft_cond_signal(&sw.not_full));
    }
    CHECK_RC(weft_mutex_unlock(&sw.bm));
    return finish(NULL);
}

static void *sem_user(void *arg)
{
    uint64_t s = (uint64_t)(intptr_t)arg * 104729 + 3;
    for (int i = 0; i < 100; i++) {
        switch (rnd(&s) % 3) {
        case 0:
            CHECK_RC(weft_sem_wait(&sw.sem));
            break;
        case 1:
            CHECK_RC(weft_sem_wait_until(&sw.sem,
                                         weft_now_ns() + 60 * 1000000000ull));
            break;
        default:
            while (weft_sem_try_wait(&sw.sem) == -EAGAIN)
                weft_yield();
        }
        int h = atomic_fetch_add(&sw.holders, 1) + 1;
        CHECK(h >= 1 && h <= SEM_UNITS);
        if (i % 8 == 0)
            weft_yield();
        atomic_fetch_sub(&sw.holders, 1);
        CHECK_RC(weft_sem_post(&sw.sem));
    }
    return finish(NULL);
}

static void *sync_work(void *arg)
{
    enum { N = LOCKERS + 4 + SEM_USERS };
    weft_task t[N];
    int n = 0;
    sw.counter = 0;
    sw.head = sw.len = 0;
    sw.taken = sw.sum = 0;
    CHECK_RC(weft_sem_init(&sw.sem, SEM_UNITS));
    for (int i = 0; i < LOCKERS; i++)
        CHECK_RC(spawn(NULL, &t[n++], locker, (void *)(intptr_t)i, 4 + i,
                       WEFT_STACK_DEFAULT, 0));
    for (int i = 0; i < 2; i++) {
        CHECK_RC(spawn(NULL, &t[n++], bb_producer, NULL, WEFT_PRIO_NORMAL,
                       WEFT_STACK_DEFAULT, 0));
        CHECK_RC(spawn(NULL, &t[n++], bb_consumer, NULL, WEFT_PRIO_LOW,
                       WEFT_STACK_DEFAULT, 0));
    }
    for (int i = 0; i < SEM_USERS; i++)
        CHECK_RC(spawn(NULL, &t[n++], sem_user, (void *)(intptr_t)i,
                       i % (WEFT_PRIO_MAX + 1), WEFT_STACK_DEFAULT, 0));
    for (int i = 0; i < n; i++)
        join(t[i]);
    CHECK_EQ(sw.counter, LOCKERS * LOCKS_EACH);
    CHECK_EQ(sw.sum, 2 * (BB_ITEMS * (BB_ITEMS + 1) / 2));
    CHECK_EQ(weft_sem_value(&sw.sem), SEM_UNITS);
    CHECK_RC(weft_sem_destroy(&sw.sem));
    return finish(NULL);
}

/* ---- Timers and deadlines ------------------------------------------------ */

#define TIMERS 8

/* A deadline-bound call returned: it must not be before the deadline. */
static void not_early(uint64_t deadline, int line)
{
    uint64_t now = weft_now_ns();
    if (now < deadline)
        fail(line, "woke %llu ns before its deadline",
             (unsigned long long)(deadline - now));
}

static void *timer_task(void *arg)
{
    uint64_t s = (uint64_t)(intptr_t)arg * 31337 + 5;
    weft_sem sem = WEFT_SEM_INIT(0);
    weft_event ev = WEFT_EVENT_INIT;
    weft_mutex own = WEFT_MUTEX_INIT;
    weft_chan *ch;
    int x;
    CHECK_RC(weft_chan_create(&ch, sizeof x, 1));
    CHECK_RC(weft_mutex_lock(&own));
    for (int i = 0; i < 6; i++) {
        uint64_t d = weft_now_ns() + rnd(&s) % 2000000;
        switch (i) {
        case 0:
            CHECK_RC(weft_sleep_until(d));
            break;
        case 1: {
            uint64_t t0 = weft_now_ns(), ns = rnd(&s) % 1000000;
            CHECK_RC(weft_sleep_ns(ns));
            d = t0 + ns;
            break;
        }
        case 2:
            CHECK_EQ(weft_sem_wait_until(&sem, d), -ETIMEDOUT);
            break;
        case 3:
            CHECK_EQ(weft_event_wait_until(&ev, d), -ETIMEDOUT);
            break;
        case 4:
            CHECK_EQ(weft_chan_recv_until(ch, &x, d), -ETIMEDOUT);
            break;
        default: /* not recursive: our own lock times out */
            CHECK_EQ(weft_mutex_lock_until(&own, d), -ETIMEDOUT);
        }
        not_early(d, __LINE__);
    }
    /* A deadline already past tries once without blocking. */
    CHECK_EQ(weft_sem_wait_until(&sem, weft_now_ns() - 1), -ETIMEDOUT);
    CHECK_RC(weft_mutex_unlock(&own));
    CHECK_RC(weft_chan_destroy(ch));
    return finish(NULL);
}

/* ---- Hogs ------------------------------------------------------------------ */

static weft_wg hog_wg = WEFT_WG_INIT;

/* Spin without calling weft (nor, mostly, libc), so that preemption can
 * land in this code. */
static void spin_ms(uint64_t ms)
{
    uint64_t end = weft_now_ns() + ms * 1000000;
    volatile uint64_t x = 0;
    do {
        for (int i = 0; i < 20000; i++)
            x = x * 6364136223846793005u + 1442695040888963407u;
    } while (weft_now_ns() < end);
}

static void *hog(void *arg)
{
    spin_ms((uint64_t)(intptr_t)arg);
    CHECK_RC(weft_wg_done(&hog_wg));
    return finish(NULL);
}

/* ---- One round in the long-lived runtime --------------------------------- */

static void *round_main(void *arg)
{
    weft_task t[3 + TIMERS];
    int n = 0;
    CHECK_RC(weft_wg_add(&hog_wg, 4));
    for (int i = 0; i < 4; i++) {
        unsigned fl = WEFT_DETACHED | (i < 2 ? WEFT_PREEMPTIBLE : 0);
        CHECK_RC(spawn(NULL, NULL, hog, (void *)(intptr_t)(i < 2 ? 3 : 2),
                       WEFT_PRIO_LOW + i, WEFT_STACK_DEFAULT, fl));
    }
    CHECK_RC(spawn(NULL, &t[n++], tree, (void *)TREE_DEPTH, WEFT_PRIO_NORMAL,
                   WEFT_STACK_DEFAULT, 0));
    CHECK_RC(spawn(NULL, &t[n++], chan_work, NULL, WEFT_PRIO_NORMAL,
                   WEFT_STACK_DEFAULT, 0));
    CHECK_RC(spawn(NULL, &t[n++], sync_work, NULL, WEFT_PRIO_NORMAL,
                   WEFT_STACK_DEFAULT, 0));
    for (int i = 0; i < TIMERS; i++)
        CHECK_RC(spawn(NULL, &t[n++], timer_task, (void *)(intptr_t)i, i * 2,
                       WEFT_STACK_SMALL, 0));
    CHECK_EQ(join(t[0]), (2 << TREE_DEPTH) - 1);
    for (int i = 1; i < n; i++)
        join(t[i]);
    CHECK_RC(weft_wg_wait_until(&hog_wg, weft_now_ns() + 60 * 1000000000ull));
    return finish(NULL);
}

/* ---- The plain thread: spawns, wakes, feeds, probes ---------------------- */

#define BATCH 8

static weft_rt *rt;
static _Atomic int stop_plain;
static weft_sem probe_sem = WEFT_SEM_INIT(0);
static _Atomic uint64_t probe_at; /* when posted; 0 once the prober took it */

static void *prober(void *arg)
{
    while (weft_sem_wait(&probe_sem) == 0) {
        uint64_t at = atomic_exchange(&probe_at, 0);
        if (at == UINT64_MAX)
            break; /* told to stop */
        lat_add(weft_now_ns() - at);
    }
    return finish(NULL);
}

static struct batch {
    weft_event go;
    weft_chan *ch; /* long, capacity 2 */
} bt;

static void *batch_task(void *arg)
{
    CHECK_RC(weft_event_wait(&bt.go));
    long v = 0;
    CHECK_RC(weft_chan_recv(bt.ch, &v));
    count(&n_msgs, 1);
    return finish((void *)(intptr_t)(v * 2));
}

static void *plain_thread(void *arg)
{
    weft_task t[BATCH];
    for (unsigned it = 0; !atomic_load(&stop_plain); it++) {
        /* A wake-up probe every millisecond, one in flight at a time. */
        uint64_t expect = 0;
        if (atomic_compare_exchange_strong(&probe_at, &expect, weft_now_ns()))
            CHECK_RC(weft_sem_post(&probe_sem));
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
        if (it % 10)
            continue;
        /* A batch: spawned from here, released by an event, fed through
         * a channel, joined from here. */
        CHECK_RC(weft_event_reset(&bt.go));
        for (int i = 0; i < BATCH; i++)
            CHECK_RC(
                spawn(rt, &t[i], batch_task, NULL, i * 2, WEFT_STACK_SMALL, 0));
        CHECK_RC(weft_event_set(&bt.go));
        for (long v = 1; v <= BATCH; v++)
            CHECK_RC(weft_chan_send(bt.ch, &v));
        long sum = 0;
        for (int i = 0; i < BATCH; i++)
            sum += join(t[i]);
        CHECK_EQ(sum, BATCH * (BATCH + 1));
        count(&progress[1], 1);
    }
    return NULL;
}

/* ---- Short-lived runtimes ------------------------------------------------- */

/* Objects that outlive every short-lived runtime. */
static weft_mutex g_mutex = WEFT_MUTEX_INIT;
static weft_cond g_cond = WEFT_COND_INIT;
static weft_sem g_sem = WEFT_SEM_INIT(0);
static weft_wg g_wg = WEFT_WG_INIT;
static weft_event g_event = WEFT_EVENT_INIT;
static weft_chan *g_recv, *g_send; /* rendezvous: nobody on the far side */

enum {
    B_MUTEX,
    B_COND,
    B_SEM,
    B_WG,
    B_EVENT,
    B_RECV,
    B_SEND,
    B_SELECT,
    B_SLEEP,
    B_TARGET1, /* event wait; joined by B_JOIN */
    B_JOIN,
    B_TARGET2, /* event wait; joined from the long-lived runtime */
    B_KINDS
};

#define PENDING 1 /* result[] before the task has one */

static struct blocked {
    weft_mutex cm; /* the cond waiter's mutex */
    weft_task t[B_KINDS];
    _Atomic int result[B_KINDS];
} bl;

static void *blocked_task(void *arg)
{
    int k = (int)(intptr_t)arg, rc = 0, x = 0;
    switch (k) {
    case B_MUTEX:
        rc = weft_mutex_lock(&g_mutex);
        if (rc == 0)
            weft_mutex_unlock(&g_mutex);
        break;
    case B_COND:
        CHECK_RC(weft_mutex_lock(&bl.cm));
        rc = weft_cond_wait(&g_cond, &bl.cm);
        CHECK_RC(weft_mutex_unlock(&bl.cm)); /* held even when cancelled */
        break;
    case B_SEM:
        rc = weft_sem_wait(&g_sem);
        break;
    case B_WG:
        rc = weft_wg_wait(&g_wg);
        break;
    case B_EVENT:
    case B_TARGET1:
    case B_TARGET2:
        rc = weft_event_wait(&g_event);
        break;
    case B_RECV:
        rc = weft_chan_recv(g_recv, &x);
        break;
    case B_SEND:
        rc = weft_chan_send(g_send, &x);
        break;
    case B_SELECT: {
        weft_sel_case c[2] = {{g_recv, WEFT_SEL_RECV, &x, -1},
                              {g_send, WEFT_SEL_SEND, &x, -1}};
        rc = weft_select(c, 2);
        break;
    }
    case B_SLEEP:
        rc = weft_sleep_ns(3600 * 1000000000ull);
        break;
    case B_JOIN: {
        void *r = NULL;
        rc = weft_join(bl.t[B_TARGET1], &r);
        /* The target may end (cancelled itself) before the join is. */
        if (rc == 0 && (intptr_t)r != -ECANCELED)
            fail(__LINE__, "joined target returned %ld", (long)(intptr_t)r);
        if (rc == 0)
            rc = -ECANCELED;
        break;
    }
    }
    finish(NULL);
    atomic_store(&bl.result[k], rc); /* last: a recorded task has returned */
    return (void *)(intptr_t)rc;
}

/* The long-lived runtime's task that joins B_TARGET2 across runtimes.
 * weft_rt_destroy promises it the target's result or -ECANCELED however
 * the destroy races the target's end, and no access to the destroyed
 * runtime afterwards. */
static void *cross_joiner(void *arg)
{
    void *r = NULL;
    int rc = weft_join(bl.t[B_TARGET2], &r);
    if (rc == 0)
        CHECK_EQ((intptr_t)r, -ECANCELED);
    else
        CHECK_EQ(rc, -ECANCELED); /* abandoned by an abrupt destroy */
    return finish(NULL);
}

static weft_rt *small_rt(unsigned workers)
{
    weft_config cfg;
    weft_config_default(&cfg);
    cfg.workers = workers;
    cfg.max_tasks = 256;
    weft_rt *r = NULL;
    int rc = weft_rt_create(&r, &cfg);
    if (rc) {
        fail(__LINE__, "weft_rt_create: %s (%s)", weft_strerror(rc),
             weft_last_error());
        return NULL;
    }
    CHECK_RC(weft_set_warn_callback(r, warned, NULL));
    return r;
}

/* Wait (plain thread) until t is parked: up to 30 s. */
static void wait_parked(weft_task t, const char *what)
{
    uint64_t until = weft_now_ns() + 30 * 1000000000ull;
    weft_task_info in;
    while (weft_task_info_get(t, &in) == 0 && in.state != WEFT_STATE_PARKED) {
        if (weft_now_ns() > until) {
            fail(__LINE__, "%s task never parked (state %d)", what, in.state);
            return;
        }
        struct timespec nap = {0, 100000};
        nanosleep(&nap, NULL);
    }
}

static void clean_runtime(void)
{
    weft_rt *r = small_rt(1 + (unsigned)(rand() % 2));
    if (!r)
        return;
    void *size = NULL;
    CHECK_RC(run(r, tree, (void *)4, &size));
    CHECK_EQ((intptr_t)size, 31);
    weft_task t;
    CHECK_RC(spawn(r, &t, blocked_task, (void *)B_EVENT, WEFT_PRIO_NORMAL,
                   WEFT_STACK_SMALL, 0));
    /* A live task and no shutdown: refused, and nothing changed. */
    CHECK_EQ(weft_rt_destroy(r), -EBUSY);
    CHECK_RC(weft_event_set(&g_event));
    CHECK_EQ(join(t), 0);
    CHECK_RC(weft_event_reset(&g_event));
    CHECK_RC(weft_rt_destroy(r));
}

/* Park one task on each outliving object, shut down, destroy (after the
 * cancellations are reported, or at once), then prove the objects clean. */
static void cancelled_runtime(int abrupt)
{
    weft_rt *r = small_rt(1 + (unsigned)(rand() % 2));
    if (!r)
        return;
    CHECK_RC(weft_mutex_lock(&g_mutex)); /* B_MUTEX waits on this thread */
    CHECK_RC(weft_wg_add(&g_wg, 1));
    CHECK_RC(weft_mutex_init(&bl.cm));
    for (int k = 0; k < B_KINDS; k++) {
        atomic_store(&bl.result[k], PENDING);
        int joined = k == B_TARGET1 || k == B_TARGET2;
        CHECK_RC(spawn(r, &bl.t[k], blocked_task, (void *)(intptr_t)k,
                       k % (WEFT_PRIO_MAX + 1), WEFT_STACK_DEFAULT,
                       joined ? 0 : WEFT_DETACHED));
    }
    weft_task cj;
    CHECK_RC(spawn(rt, &cj, cross_joiner, NULL, WEFT_PRIO_HIGH,
                   WEFT_STACK_SMALL, 0));
    for (int k = 0; k < B_KINDS; k++)
        wait_parked(bl.t[k], "blocked");
    wait_parked(cj, "cross-joiner");

    CHECK_RC(weft_rt_shutdown(r));
    if (!abrupt) {
        /* Tasks keep running until destroy: each reports, then returns. */
        uint64_t until = weft_now_ns() + 30 * 1000000000ull;
        for (int k = 0; k < B_KINDS; k++)
            while (atomic_load(&bl.result[k]) == PENDING &&
                   weft_now_ns() < until) {
                struct timespec nap = {0, 100000};
                nanosleep(&nap, NULL);
            }
        join(cj); /* B_TARGET2 ended: the join must have its result */
    }
    CHECK_RC(weft_rt_destroy(r));
    if (abrupt)
        join(cj);

    for (int k = 0; k < B_KINDS; k++) {
        int rc = atomic_load(&bl.result[k]);
        if (rc == PENDING && abrupt) {
            count(&n_abandoned, 1);
        } else if (rc != -ECANCELED) {
            fail(__LINE__, "blocked task %d: %s, not ECANCELED", k,
                 rc == PENDING ? "no result" : weft_err_name(rc));
        } else {
            count(&n_cancelled, 1);
        }
    }
    /* Nothing may still wait on the objects, and they must work. An
     * abandoned cond waiter may have been left holding bl.cm. */
    CHECK_RC(weft_event_set(&g_event));
    CHECK_RC(weft_sem_post(&g_sem));
    CHECK_RC(weft_cond_signal(&g_cond));
    CHECK_RC(weft_mutex_unlock(&g_mutex));
    CHECK_RC(weft_mutex_try_lock(&g_mutex));
    CHECK_RC(weft_mutex_unlock(&g_mutex));
    CHECK_RC(weft_wg_done(&g_wg));
    CHECK_RC(weft_sem_try_wait(&g_sem));
    if (weft_mutex_try_lock(&bl.cm) == -EBUSY)
        CHECK(abrupt);
    CHECK_RC(weft_mutex_unlock(&bl.cm));
    CHECK_RC(weft_mutex_destroy(&bl.cm));
    CHECK_RC(weft_cond_destroy(&g_cond));
    CHECK_RC(weft_sem_destroy(&g_sem));
    CHECK_RC(weft_wg_destroy(&g_wg));
    CHECK_RC(weft_event_destroy(&g_event));
    CHECK_RC(weft_chan_destroy(g_recv));
    CHECK_RC(weft_chan_destroy(g_send));
    weft_cond_init(&g_cond);
    weft_sem_init(&g_sem, 0);
    weft_wg_init(&g_wg);
    weft_event_init(&g_event);
    CHECK_RC(weft_chan_create(&g_recv, sizeof(int), 0));
    CHECK_RC(weft_chan_create(&g_send, sizeof(int), 0));
}

/* ---- Watchdog ------------------------------------------------------------- */

#define STALL_S 60

/* A round takes tens of milliseconds and a batch about ten: either one
 * standing still for a minute is a lost task or wake-up. */
static void *watchdog(void *arg)
{
    static const char *what[2] = {"round", "plain-thread batch"};
    uint64_t last[2] = {0, 0}, at[2];
    at[0] = at[1] = weft_now_ns();
    for (;;) {
        sleep(1);
        for (int i = 0; i < 2; i++) {
            uint64_t p = atomic_load(&progress[i]), now = weft_now_ns();
            if (p != last[i]) {
                last[i] = p;
                at[i] = now;
            } else if (now - at[i] > STALL_S * 1000000000ull) {
                fprintf(stderr,
                        "weft-soak: FAIL: no %s has ended for %d s (a lost "
                        "task or wake-up); the long-lived runtime:\n",
                        what[i], STALL_S);
                weft_dump(rt, stderr);
                fflush(stderr);
                _exit(3);
            }
        }
    }
    return NULL;
}

/* ---- Resources ------------------------------------------------------------ */

typedef struct usage {
    long rss_kb, anon_kb, fds;
} usage;

static usage measure(void)
{
    usage u = {-1, -1, 0};
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        while (fgets(line, sizeof line, f)) {
            sscanf(line, "VmRSS: %ld", &u.rss_kb);
            sscanf(line, "RssAnon: %ld", &u.anon_kb);
        }
        fclose(f);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            u.fds += e->d_name[0] != '.';
        closedir(d);
        u.fds--; /* the directory's own */
    }
    return u;
}

/* ASan's allocator keeps freed blocks in a quarantine (256 MiB by
 * default) before reuse, so RSS grows by design while channels come and
 * go: the memory checks are off in such builds (fds are still checked). */
#if defined(__SANITIZE_ADDRESS__)
#define CHECK_RSS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CHECK_RSS 0
#endif
#endif
#ifndef CHECK_RSS
#define CHECK_RSS 1
#endif

/* ---- Main ----------------------------------------------------------------- */

static double arg_or_env(int argc, char **argv, const char *flag,
                         const char *env, double dflt)
{
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], flag))
            return atof(argv[i + 1]);
    const char *s = getenv(env);
    return s && *s ? atof(s) : dflt;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i += 2)
        if (strcmp(argv[i], "--minutes") && strcmp(argv[i], "--seconds") &&
            strcmp(argv[i], "--interval")) {
            fprintf(stderr, "usage: weft-soak [--minutes M | --seconds S] "
                            "[--interval S]\n");
            return 2;
        }
    double secs = 60 * arg_or_env(argc, argv, "--minutes", "", 1.0);
    secs = arg_or_env(argc, argv, "--seconds", "SOAK_SECONDS", secs);
    double ivl = secs >= 120 ? 60 : secs / 4;
    ivl = arg_or_env(argc, argv, "--interval", "SOAK_INTERVAL", ivl);
    if (!(secs > 0) || !(ivl > 0)) {
        fprintf(stderr, "weft-soak: the duration and interval must be > 0\n");
        return 2;
    }
    srand(1);

    weft_config cfg;
    weft_config_default(&cfg);
    int rc = weft_rt_create(&rt, &cfg);
    if (rc) {
        fprintf(stderr, "weft-soak: weft_rt_create: %s (%s)\n",
                weft_strerror(rc), weft_last_error());
        return 2;
    }
    CHECK_RC(weft_set_warn_callback(rt, warned, NULL));
    CHECK_RC(weft_event_init(&bt.go));
    CHECK_RC(weft_chan_create(&bt.ch, sizeof(long), 2));
    CHECK_RC(weft_chan_create(&g_recv, sizeof(int), 0));
    CHECK_RC(weft_chan_create(&g_send, sizeof(int), 0));
    weft_task probe;
    CHECK_RC(
        spawn(rt, &probe, prober, NULL, WEFT_PRIO_HIGH, WEFT_STACK_SMALL, 0));
    pthread_t plain, dog;
    if (pthread_create(&plain, NULL, plain_thread, NULL) ||
        pthread_create(&dog, NULL, watchdog, NULL)) {
        fprintf(stderr, "weft-soak: pthread_create failed\n");
        return 2;
    }
    pthread_detach(dog);
    weft_stats st;
    CHECK_RC(weft_stats_get(rt, &st));
    printf("weft-soak: %.0f s, a line every %.0f s, %llu workers%s\n", secs,
           ivl, (unsigned long long)st.workers,
           CHECK_RSS ? "" : " (ASan: RSS not checked)");
    fflush(stdout);

    uint64_t t0 = weft_now_ns(), end = t0 + (uint64_t)(secs * 1e9);
    uint64_t next = t0 + (uint64_t)(ivl * 1e9);
    usage base = {0};
    int intervals = 0;
    for (uint64_t r = 0; !atomic_load(&failures); r++) {
        void *ok = NULL;
        CHECK_RC(run(rt, round_main, NULL, &ok));
        switch (r % 3) {
        case 0:
            clean_runtime();
            break;
        default:
            cancelled_runtime(r % 3 == 2);
        }
        count(&progress[0], 1);
        uint64_t now = weft_now_ns();
        if (now < next && now < end)
            continue;
        /* One line per interval; the last may be short. */
        uint64_t samples, p99 = lat_p99_reset(&samples);
        usage u = measure();
        uint64_t spawned = atomic_load(&n_spawned);
        uint64_t done = atomic_load(&n_finished);
        uint64_t gone = atomic_load(&n_abandoned);
        printf(
            "soak: %4.0fs rounds %-6llu tasks %-9llu msgs %-9llu "
            "live %-3llu cancelled %-5llu abandoned %-4llu "
            "p99_wake %lluus (%llu) rss %.1fMiB anon %.1fMiB fds %ld "
            "warns %llu\n",
            (now - t0) / 1e9, (unsigned long long)r + 1,
            (unsigned long long)done, (unsigned long long)atomic_load(&n_msgs),
            (unsigned long long)(spawned - done - gone),
            (unsigned long long)atomic_load(&n_cancelled),
            (unsigned long long)gone, (unsigned long long)p99,
            (unsigned long long)samples, u.rss_kb / 1024.0, u.anon_kb / 1024.0,
            u.fds, (unsigned long long)atomic_load(&n_warns));
        fflush(stdout);
        /* Between rounds only the prober and one plain-thread batch of
         * tasks may be live. */
        CHECK(spawned - done - gone <= 1 + BATCH);
        if (++intervals == 1) {
            base = u;
        } else {
            if (CHECK_RSS && u.rss_kb * 100 > base.rss_kb * 105)
                fail(__LINE__, "RSS grew over 5%%: %ld -> %ld KiB", base.rss_kb,
                     u.rss_kb);
            if (CHECK_RSS && u.anon_kb * 100 > base.anon_kb * 105)
                fail(__LINE__, "anonymous RSS grew over 5%%: %ld -> %ld KiB",
                     base.anon_kb, u.anon_kb);
            if (u.fds > base.fds)
                fail(__LINE__, "open fds grew: %ld -> %ld", base.fds, u.fds);
        }
        next += (uint64_t)(ivl * 1e9);
        if (now >= end)
            break;
    }
    if (atomic_load(&failures)) {
        fprintf(stderr, "weft-soak: %d failed checks\n",
                atomic_load(&failures));
        fflush(stdout);
        _exit(1); /* tasks may be stuck: no orderly teardown */
    }

    atomic_store(&stop_plain, 1);
    pthread_join(plain, NULL);
    atomic_store(&probe_at, UINT64_MAX);
    CHECK_RC(weft_sem_post(&probe_sem));
    join(probe);
    CHECK_RC(weft_stats_get(rt, &st));
    CHECK_EQ(st.live, 0);
    CHECK_RC(weft_rt_destroy(rt));
    CHECK_EQ(atomic_load(&n_spawned),
             atomic_load(&n_finished) + atomic_load(&n_abandoned));
    CHECK_RC(weft_chan_destroy(bt.ch));
    CHECK_RC(weft_chan_destroy(g_recv));
    CHECK_RC(weft_chan_destroy(g_send));
    if (intervals < 2)
        printf("soak: fewer than two intervals: RSS and fds not compared\n");
    int f = atomic_load(&failures);
    printf("soak: %s: %llu tasks, %llu messages, %d failed checks\n",
           f ? "FAIL" : "ok", (unsigned long long)atomic_load(&n_finished),
           (unsigned long long)atomic_load(&n_msgs), f);
    return f ? 1 : 0;
}
