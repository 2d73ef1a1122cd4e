/*
 * test_obs.c - observation: the counters add up (spawns, polls, yields,
 * parks, wakes), per-worker figures sum to the totals, weft_stats_reset
 * starts the counters over but keeps the gauges, weft_task_info reports
 * running, runnable, parked (with what on) and done tasks and -ESRCH for
 * stale handles, weft_dump lists every live task and worker, and SIGQUIT
 * dumps when the config asks.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

/* ---- helpers ------------------------------------------------------------ */

static weft_task spawn_named(weft_fn fn, void *arg, const char *name, int prio)
{
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.name = name;
    a.priority = prio;
    weft_task t;
    CHECK_OK(weft_spawn(NULL, &t, fn, arg, &a));
    return t;
}

/* Yield (task) or sleep (thread) until t is PARKED; fails after 10 s. */
static void wait_parked(weft_task t)
{
    uint64_t end = test_now_ms() + 10000;
    weft_task_info ti;
    for (;;) {
        CHECK_OK(weft_task_info_get(t, &ti));
        if (ti.state == WEFT_STATE_PARKED)
            return;
        CHECK_CMP_U64(test_now_ms(), <, end);
        if (weft_current())
            weft_yield();
        else
            usleep(1000);
    }
}

static weft_stats worker_stats(weft_rt *rt, unsigned i)
{
    weft_worker_stats s;
    CHECK_OK(weft_stats_worker(rt, i, &s));
    return s;
}

/* ---- counters ------------------------------------------------------------ */

enum { N = 4, K = 50, M = 20 };

static void *yielder(void *arg)
{
    (void)arg;
    for (int i = 0; i < K; i++)
        weft_yield();
    return NULL;
}

static void *sem_taker(void *arg)
{
    for (int i = 0; i < M; i++)
        CHECK_OK(weft_sem_wait(arg));
    return NULL;
}

static void *counted_workload(void *arg)
{
    weft_rt *rt = arg;
    weft_task t[N];
    for (int i = 0; i < N; i++)
        CHECK_OK(weft_spawn(NULL, &t[i], yielder, NULL, NULL));
    for (int i = 0; i < N; i++)
        CHECK_OK(weft_join(t[i], NULL));
    /* M park/wake rounds: the taker parks on the semaphore, we post. */
    weft_sem s;
    CHECK_OK(weft_sem_init(&s, 0));
    weft_stats before = test_stats(rt);
    weft_task taker = spawn_named(sem_taker, &s, "taker", WEFT_PRIO_NORMAL);
    for (int i = 0; i < M; i++) {
        wait_parked(taker);
        CHECK_OK(weft_sem_post(&s));
    }
    CHECK_OK(weft_join(taker, NULL));
    weft_stats after = test_stats(rt);
    CHECK_CMP_U64(after.parks - before.parks, >=, M);
    CHECK_CMP_U64(after.wakes - before.wakes, >=, M);
    CHECK_OK(weft_sem_destroy(&s));
    return NULL;
}

TEST(api, obs_counters_add_up)
{
    /* One worker: every yield has another task to switch to while the
     * yielders share it. */
    weft_rt *rt = test_rt_workers(64, 1);
    test_run(rt, counted_workload, rt);
    weft_stats s = test_stats(rt);
    CHECK_EQ_U64(s.live, 0);
    CHECK_EQ_U64(s.spawns, s.finishes + s.live);
    CHECK_EQ_U64(s.spawns, 1 + N + 1);
    CHECK_CMP_U64(s.polls, >=, s.spawns);
    CHECK_CMP_U64(s.polls, >=, s.switches);
    CHECK_CMP_U64(s.yields, >=, K);
    CHECK_CMP_U64(s.yields, <=, (uint64_t)N * K + 100 * M);
    CHECK_CMP_U64(s.parks, >=, M);
    CHECK_CMP_U64(s.wakes, >=, M);
    CHECK_CMP_U64(s.wakes, <=, s.parks); /* only PARKED tasks are woken */
    CHECK_EQ_U64(s.steals, 0);           /* nobody to steal from */
    CHECK_EQ_U64(s.workers, 1);
    /* Polls are timed in wall time, so a loaded machine or a sanitizer
     * may make some slow: only their consistency is certain. Every poll
     * over budget (10 ms) is also slow (over 5 ms); nothing here is
     * preemptible. */
    CHECK_CMP_U64(s.slow_polls, >=, s.violations);
    CHECK_CMP_U64(s.slow_polls, <=, s.polls);
    CHECK_EQ_U64(s.preemptions, 0);
    CHECK_CMP_U64(s.busy_ns, >, 0);
    test_rt_destroy_clean(rt);
}

static void *spread(void *arg)
{
    (void)arg;
    weft_task t[16];
    for (int i = 0; i < 16; i++)
        CHECK_OK(weft_spawn(NULL, &t[i], yielder, NULL, NULL));
    for (int i = 0; i < 16; i++)
        CHECK_OK(weft_join(t[i], NULL));
    return NULL;
}

static void *plain_wakes_main(void *arg)
{
    weft_event *e = arg;
    CHECK_OK(weft_event_wait(e));
    return NULL;
}

TEST(api, obs_per_worker_sums_to_totals)
{
    uint64_t t0 = test_now_ms(); /* before the workers start */
    weft_rt *rt = test_rt_workers(256, 2);
    test_run(rt, spread, NULL);
    /* A wake from a plain thread: counted in the runtime's share. */
    weft_event e;
    CHECK_OK(weft_event_init(&e));
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, plain_wakes_main, &e, NULL));
    wait_parked(t);
    CHECK_OK(weft_event_set(&e));
    CHECK_OK(weft_join(t, NULL));
    CHECK_OK(weft_event_destroy(&e));

    /* Idle workers may still count steal attempts: bracket the totals
     * between two per-worker sums. */
    weft_stats a[2], b[2];
    for (unsigned i = 0; i < 2; i++)
        a[i] = worker_stats(rt, i);
    weft_stats tot = test_stats(rt);
    for (unsigned i = 0; i < 2; i++)
        b[i] = worker_stats(rt, i);
    uint64_t wall_ns = (test_now_ms() - t0 + 1) * 1000000;
#define SUM(x, f) ((x)[0].f + (x)[1].f)
#define BRACKET(f)                                                             \
    do {                                                                       \
        CHECK_CMP_U64(SUM(a, f), <=, tot.f);                                   \
        CHECK_CMP_U64(tot.f, <=, SUM(b, f));                                   \
    } while (0)
    BRACKET(polls);
    BRACKET(switches);
    BRACKET(yields);
    BRACKET(parks);
    BRACKET(finishes);
    BRACKET(steals);
    BRACKET(steal_attempts);
    BRACKET(inlined);
    BRACKET(slow_polls);
    BRACKET(violations);
    BRACKET(preemptions);
    /* Plain threads' share: the two spawns from this thread, and at
     * least the one wake by weft_event_set above. */
    CHECK_EQ_U64(tot.spawns, SUM(a, spawns) + 2);
    CHECK_CMP_U64(tot.wakes, >=, SUM(a, wakes) + 1);
    CHECK_EQ_U64(tot.spawns, 1 + 16 + 1);
    CHECK_EQ_U64(tot.finishes, tot.spawns);
    CHECK_CMP_U64(tot.polls, >=, tot.spawns);
    for (unsigned i = 0; i < 2; i++) {
        CHECK_EQ_U64(a[i].live, 0); /* gauges are 0 per worker */
        CHECK_EQ_U64(a[i].workers, 0);
        CHECK_CMP_U64(a[i].busy_ns + a[i].idle_ns, <=, wall_ns);
        CHECK_CMP_U64(b[i].busy_ns + b[i].idle_ns, >=,
                      a[i].busy_ns + a[i].idle_ns);
    }
    CHECK_EQ_U64(tot.busy_ns + tot.idle_ns <= 2 * wall_ns, 1);
    weft_worker_stats ws;
    CHECK_ERR(weft_stats_worker(rt, 2, &ws), -EINVAL);
    CHECK_ERR(weft_stats_worker(rt, 0, NULL), -EINVAL);
    CHECK_ERR(weft_stats_worker(NULL, 0, &ws), -EINVAL);
    test_rt_destroy_clean(rt);
}

TEST(api, obs_idle_time_counted)
{
    weft_rt *rt = test_rt_workers(64, 1);
    test_run(rt, yielder, NULL);
    usleep(50 * 1000); /* the worker sleeps meanwhile */
    weft_stats s = test_stats(rt);
    CHECK_CMP_U64(s.idle_ns, >=, 20 * 1000000);
    CHECK_CMP_U64(s.idle_ns + s.busy_ns, >=, 50 * 1000000);
    test_rt_destroy_clean(rt);
}

/* ---- reset ------------------------------------------------------------- */

static void *event_waiter(void *arg)
{
    CHECK_OK(weft_event_wait(arg));
    return NULL;
}

static void *reset_main(void *arg)
{
    weft_rt *rt = arg;
    weft_event e;
    CHECK_OK(weft_event_init(&e));
    weft_task w = spawn_named(event_waiter, &e, "waiter", WEFT_PRIO_NORMAL);
    wait_parked(w);
    for (int i = 0; i < 20; i++)
        weft_yield();
    weft_stats s0 = test_stats(rt);
    CHECK_CMP_U64(s0.spawns, >=, 2);
    CHECK_CMP_U64(s0.polls, >, 0);
    CHECK_OK(weft_stats_reset(rt));
    weft_stats s1 = test_stats(rt);
    CHECK_EQ_U64(s1.spawns, 0);
    CHECK_EQ_U64(s1.finishes, 0);
    CHECK_EQ_U64(s1.parks, 0);
    CHECK_EQ_U64(s1.wakes, 0);
    CHECK_EQ_U64(s1.yields, 0);
    CHECK_EQ_U64(s1.switches, 0);
    CHECK_EQ_U64(s1.polls, 0);
    CHECK_EQ_U64(s1.inlined, 0);
    CHECK_CMP_U64(s1.busy_ns, <, s0.busy_ns + 1);
    for (unsigned i = 0; i < s1.workers; i++)
        CHECK_EQ_U64(worker_stats(rt, i).polls, 0);
    /* Gauges stay. */
    CHECK_EQ_U64(s1.live, 2);
    CHECK_EQ_U64(s1.live, s0.live);
    CHECK_EQ_U64(s1.workers, s0.workers);
    CHECK_EQ_U64(s1.guard_budget, s0.guard_budget);
    CHECK_EQ_U64(s1.huge_pages, s0.huge_pages);
    CHECK_EQ_U64(s1.stacks_resident, s0.stacks_resident);
    CHECK_EQ_U64(s1.guarded_stacks, s0.guarded_stacks);
    /* Counting resumes from the reset. */
    weft_task t[3];
    for (int i = 0; i < 3; i++)
        CHECK_OK(weft_spawn(NULL, &t[i], yielder, NULL, NULL));
    for (int i = 0; i < 3; i++)
        CHECK_OK(weft_join(t[i], NULL));
    CHECK_OK(weft_event_set(&e));
    CHECK_OK(weft_join(w, NULL));
    weft_stats s2 = test_stats(rt);
    CHECK_EQ_U64(s2.spawns, 3);
    CHECK_EQ_U64(s2.finishes, 4); /* the three and the waiter */
    CHECK_EQ_U64(s2.live, 1);
    CHECK_CMP_U64(s2.wakes, >=, 1);
    CHECK_CMP_U64(s2.polls, >=, 4);
    CHECK_OK(weft_event_destroy(&e));
    return NULL;
}

TEST(api, obs_reset_counters_not_gauges)
{
    weft_rt *rt = test_rt_workers(64, 1);
    test_run(rt, reset_main, rt);
    CHECK_ERR(weft_stats_reset(NULL), -EINVAL);
    /* At quiescence a reset leaves every task counter at 0 (the clean
     * teardown below compares spawns with finishes). */
    CHECK_OK(weft_stats_reset(rt));
    weft_stats s = test_stats(rt);
    CHECK_EQ_U64(s.spawns, 0);
    CHECK_EQ_U64(s.finishes, 0);
    CHECK_EQ_U64(s.polls, 0);
    CHECK_EQ_U64(s.live, 0);
    test_rt_destroy_clean(rt);
}

/* ---- task info ----------------------------------------------------------- */

static weft_mutex mu = WEFT_MUTEX_INIT;

static void *mutex_locker(void *arg)
{
    (void)arg;
    CHECK_OK(weft_mutex_lock(&mu));
    CHECK_OK(weft_mutex_unlock(&mu));
    return NULL;
}

static void *chan_receiver(void *arg)
{
    int v;
    CHECK_OK(weft_chan_recv(arg, &v));
    CHECK_EQ_INT(v, 42);
    return NULL;
}

static void *task_info_main(void *arg)
{
    (void)arg;
    weft_task_info ti;
    /* Running: the caller itself, on worker 0. */
    CHECK_OK(weft_task_info_get(weft_self(), &ti));
    CHECK_EQ_INT(ti.state, WEFT_STATE_RUNNING);
    CHECK_EQ_INT(ti.worker, 0);
    CHECK_EQ_STR(ti.name, "main-obs");
    CHECK_EQ_STR(ti.wait, "");
    CHECK_NULL(ti.wait_obj);
    CHECK_EQ_INT(ti.priority, 5);
    CHECK_EQ_INT(ti.tier, WEFT_TIER_MONITOR);

    /* Runnable: spawned on this (only) worker, not yet run. */
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.name = "locker";
    a.priority = 3;
    weft_task lk;
    CHECK_OK(weft_mutex_lock(&mu));
    CHECK_OK(weft_spawn(NULL, &lk, mutex_locker, NULL, &a));
    CHECK_OK(weft_task_info_get(lk, &ti));
    CHECK_EQ_INT(ti.state, WEFT_STATE_RUNNABLE);
    CHECK_EQ_INT(ti.worker, -1);
    CHECK_EQ_INT(ti.priority, 3);
    CHECK_EQ_STR(ti.name, "locker");

    /* Parked on the mutex. */
    wait_parked(lk);
    CHECK_OK(weft_task_info_get(lk, &ti));
    CHECK_EQ_STR(ti.wait, "mutex");
    CHECK_EQ_PTR(ti.wait_obj, &mu);
    CHECK_EQ_INT(ti.worker, -1);
    CHECK_CMP_U64(ti.polls, <=, 1000000); /* read as the budget code left it */
    CHECK_OK(weft_mutex_unlock(&mu));

    /* Parked on a channel. */
    weft_chan *ch;
    CHECK_OK(weft_chan_create(&ch, sizeof(int), 0));
    weft_task rx = spawn_named(chan_receiver, ch, "rx", WEFT_PRIO_NORMAL);
    wait_parked(rx);
    CHECK_OK(weft_task_info_get(rx, &ti));
    CHECK_EQ_STR(ti.wait, "chan recv");
    CHECK_EQ_PTR(ti.wait_obj, ch);
    int v = 42;
    CHECK_OK(weft_chan_send(ch, &v));

    /* Done, not joined: DONE, no wait. */
    uint64_t end = test_now_ms() + 10000;
    do {
        CHECK_OK(weft_task_info_get(rx, &ti));
        weft_yield();
    } while (ti.state != WEFT_STATE_DONE && test_now_ms() < end);
    CHECK_EQ_INT(ti.state, WEFT_STATE_DONE);
    CHECK_EQ_STR(ti.wait, "");
    CHECK_EQ_STR(ti.name, "rx");

    /* Joined: the handle is stale. */
    CHECK_OK(weft_join(rx, NULL));
    CHECK_ERR(weft_task_info_get(rx, &ti), -ESRCH);
    CHECK_OK(weft_join(lk, NULL));
    CHECK_ERR(weft_task_info_get(lk, &ti), -ESRCH);
    CHECK_OK(weft_chan_destroy(ch));
    return NULL;
}

static void *info_spawner(void *arg)
{
    weft_rt *rt = arg;
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.name = "main-obs";
    a.priority = 5;
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, task_info_main, NULL, &a));
    CHECK_OK(weft_join(t, NULL));
    return NULL;
}

TEST(api, obs_task_info_states)
{
    weft_rt *rt = test_rt_workers(64, 1);
    test_run(rt, info_spawner, rt);
    test_rt_destroy_clean(rt);
}

static void *sleeper(void *arg)
{
    (void)arg;
    CHECK_OK(weft_sleep_ns(500 * 1000000ull));
    return NULL;
}

static void *joiner(void *arg)
{
    weft_task *t = arg;
    CHECK_OK(weft_join(*t, NULL));
    return NULL;
}

static void *sleep_join_main(void *arg)
{
    (void)arg;
    weft_task_info ti;
    weft_task s = spawn_named(sleeper, NULL, "sleeper", WEFT_PRIO_NORMAL);
    /* Started before the joiner joins: a join of a child that has not
     * started runs it inline, and the joiner is then not parked. */
    wait_parked(s);
    weft_task j = spawn_named(joiner, &s, "joiner", WEFT_PRIO_NORMAL);
    wait_parked(j);
    CHECK_OK(weft_task_info_get(s, &ti));
    CHECK_EQ_STR(ti.wait, "sleep");
    CHECK_OK(weft_task_info_get(j, &ti));
    CHECK_EQ_STR(ti.wait, "join");
    CHECK_NOT_NULL(ti.wait_obj);
    CHECK_OK(weft_join(j, NULL));
    return NULL;
}

TEST(api, obs_task_info_sleep_join)
{
    weft_rt *rt = test_rt_workers(64, 2);
    test_run(rt, sleep_join_main, NULL);
    test_rt_destroy_clean(rt);
}

static weft_event inline_ev;
static _Atomic uint64_t inline_child;

static void *inline_parent(void *arg)
{
    (void)arg;
    weft_task c;
    CHECK_OK(weft_spawn(NULL, &c, event_waiter, &inline_ev, NULL));
    atomic_store(&inline_child, c.id);
    CHECK_OK(weft_join(c, NULL)); /* not started: runs it inline */
    return NULL;
}

TEST(api, obs_task_info_inline_join)
{
    /* One worker: the child stays in the parent's LIFO slot, so the join
     * runs it on the parent's stack; it parks there, with the parent's
     * frames beneath it. The parent is reported parked in "join". */
    weft_rt *rt = test_rt_workers(64, 1);
    CHECK_OK(weft_event_init(&inline_ev));
    weft_task p;
    CHECK_OK(weft_spawn(rt, &p, inline_parent, NULL, NULL));
    uint64_t end = test_now_ms() + 10000;
    while (!atomic_load(&inline_child) && test_now_ms() < end)
        usleep(1000);
    weft_task c = {atomic_load(&inline_child)};
    wait_parked(c);
    weft_task_info ti;
    CHECK_OK(weft_task_info_get(c, &ti));
    CHECK_EQ_STR(ti.wait, "event");
    CHECK_OK(weft_task_info_get(p, &ti));
    CHECK_EQ_INT(ti.state, WEFT_STATE_PARKED);
    CHECK_EQ_STR(ti.wait, "join");
    CHECK_NOT_NULL(ti.wait_obj);
    CHECK_OK(weft_event_set(&inline_ev));
    CHECK_OK(weft_join(p, NULL));
    CHECK_EQ_U64(test_stats(rt).inlined, 1);
    CHECK_OK(weft_event_destroy(&inline_ev));
    test_rt_destroy_clean(rt);
}

TEST(api, obs_task_info_errors)
{
    weft_rt *rt = test_rt(64);
    weft_task t;
    weft_task_info ti;
    CHECK_OK(weft_spawn(rt, &t, yielder, NULL, NULL));
    CHECK_ERR(weft_task_info_get(t, NULL), -EINVAL);
    CHECK_OK(weft_join(t, NULL));
    CHECK_ERR(weft_task_info_get(t, &ti), -ESRCH);
    CHECK_ERR(weft_task_info_get(WEFT_TASK_NULL, &ti), -ESRCH);
    CHECK_ERR(weft_dump(NULL, stderr), -EINVAL);
    CHECK_ERR(weft_dump(rt, NULL), -EINVAL);
    test_rt_destroy_clean(rt);
    /* A destroyed runtime's handles are stale too. */
    CHECK_ERR(weft_task_info_get(t, &ti), -ESRCH);
}

/* ---- dump ---------------------------------------------------------------- */

static int count_lines(const char *s, const char *prefix)
{
    int n = 0;
    size_t k = strlen(prefix);
    for (const char *p = s; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (!strncmp(p, prefix, k))
            n++;
    return n;
}

/* The first line of `text` that starts with `prefix` and contains
 * `needle`, copied into buf; fails the test if there is none. */
static const char *line_with(const char *text, const char *prefix,
                             const char *needle, char *buf, size_t size)
{
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        CHECK_CMP_U64(n, <, size);
        memcpy(buf, p, n);
        buf[n] = '\0';
        if (!strncmp(buf, prefix, strlen(prefix)) && strstr(buf, needle))
            return buf;
        p += n + (p[n] == '\n');
    }
    weft_check_fail(__FILE__, __LINE__, "no line \"%s...%s...\" in:\n%s",
                    prefix, needle, text);
}

typedef struct dump_ctx {
    weft_rt *rt;
    weft_chan *ch;
    weft_event *e;
} dump_ctx;

static void *dump_main(void *arg)
{
    dump_ctx *d = arg;
    weft_task rx = spawn_named(chan_receiver, d->ch, "dump-rx", 2);
    weft_task ev[3];
    for (int i = 0; i < 3; i++)
        ev[i] = spawn_named(event_waiter, d->e, "dump-ev", WEFT_PRIO_NORMAL);
    wait_parked(rx);
    for (int i = 0; i < 3; i++)
        wait_parked(ev[i]);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK_NOT_NULL(f);
    CHECK_OK(weft_dump(d->rt, f));
    fclose(f);
    weft_stats s = test_stats(d->rt);

    char hdr[64], buf[512];
    snprintf(hdr, sizeof hdr, "weft rt=");
    CHECK_EQ_INT(strncmp(text, hdr, strlen(hdr)), 0);
    snprintf(hdr, sizeof hdr, " workers=%" PRIu64 " live=%" PRIu64, s.workers,
             s.live);
    CHECK_STR_CONTAINS(text, hdr);
    CHECK_EQ_INT(count_lines(text, "worker "), (int)s.workers);
    CHECK_EQ_INT(count_lines(text, "task "), (int)s.live);
    CHECK_EQ_INT(count_lines(text, "total "), 1);
    snprintf(hdr, sizeof hdr, "end rt=");
    CHECK_STR_CONTAINS(text, hdr);
    snprintf(hdr, sizeof hdr, " tasks=%" PRIu64 "\n", s.live);
    CHECK_STR_CONTAINS(text, hdr);

    /* The receiver: parked on the channel, its address, its priority. */
    line_with(text, "task ", "name=[dump-rx]", buf, sizeof buf);
    char want[96];
    snprintf(want, sizeof want, " wait=[chan recv %p]", (void *)d->ch);
    CHECK_STR_CONTAINS(buf, want);
    CHECK_STR_CONTAINS(buf, " parked worker=- prio=2 ");
    /* This task: running, on its worker. */
    line_with(text, "task ", "name=[dump-main]", buf, sizeof buf);
    CHECK_STR_CONTAINS(buf, " running worker=");
    CHECK_STR_CONTAINS(buf, " wait=[-] ");
    /* Three event waiters. */
    snprintf(want, sizeof want, "wait=[event %p] name=[dump-ev]", (void *)d->e);
    int evs = 0;
    for (const char *p = text; (p = strstr(p, want)); p++)
        evs++;
    CHECK_EQ_INT(evs, 3);
    /* Some worker runs us. */
    CHECK_STR_CONTAINS(text, " running task=");
    free(text);

    int v = 42;
    CHECK_OK(weft_chan_send(d->ch, &v));
    CHECK_OK(weft_event_set(d->e));
    CHECK_OK(weft_join(rx, NULL));
    for (int i = 0; i < 3; i++)
        CHECK_OK(weft_join(ev[i], NULL));
    return NULL;
}

static void *dump_spawner(void *arg)
{
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.name = "dump-main";
    weft_task t;
    CHECK_OK(weft_spawn(NULL, &t, dump_main, arg, &a));
    CHECK_OK(weft_join(t, NULL));
    return NULL;
}

TEST(api, obs_dump_lists_tasks)
{
    weft_rt *rt = test_rt_workers(128, 2);
    weft_event e;
    CHECK_OK(weft_event_init(&e));
    dump_ctx d = {.rt = rt, .e = &e};
    CHECK_OK(weft_chan_create(&d.ch, sizeof(int), 0));
    test_run(rt, dump_spawner, &d);
    CHECK_OK(weft_chan_destroy(d.ch));
    CHECK_OK(weft_event_destroy(&e));
    /* Quiescent: no tasks, every worker idle or asleep. */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK_OK(weft_dump(rt, f));
    fclose(f);
    CHECK_EQ_INT(count_lines(text, "task "), 0);
    CHECK_EQ_INT(count_lines(text, "worker "), 2);
    CHECK(!strstr(text, " running"));
    CHECK_STR_CONTAINS(text, " tasks=0\n");
    free(text);
    test_rt_destroy_clean(rt);
}

/* ---- SIGQUIT ------------------------------------------------------------- */

static void sigquit_child(void *arg)
{
    (void)arg;
    struct sigaction before, during, after;
    sigaction(SIGQUIT, NULL, &before);
    CHECK(before.sa_handler == SIG_DFL);
    setenv("WEFT_SIGQUIT_DUMP", "1", 1);
    weft_rt *rt = test_rt_workers(64, 2);
    sigaction(SIGQUIT, NULL, &during);
    CHECK(during.sa_handler != SIG_DFL);
    weft_event e;
    CHECK_OK(weft_event_init(&e));
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.name = "quitme";
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, event_waiter, &e, &a));
    wait_parked(t);
    fprintf(stderr, "event=%p\n", (void *)&e);
    fflush(stderr);
    CHECK_EQ_INT(raise(SIGQUIT), 0); /* the handler runs, we go on */
    CHECK_OK(weft_event_set(&e));
    CHECK_OK(weft_join(t, NULL));
    CHECK_OK(weft_event_destroy(&e));
    test_rt_destroy_clean(rt);
    sigaction(SIGQUIT, NULL, &after);
    CHECK(after.sa_handler == SIG_DFL); /* the previous one again */
    fprintf(stderr, "child done\n");
}

TEST(api, obs_sigquit_dump)
{
    test_child c;
    test_fork_capture(sigquit_child, NULL, 20, &c);
    CHECK(WIFEXITED(c.status));
    if (WEXITSTATUS(c.status) != 0)
        weft_check_fail(__FILE__, __LINE__, "child failed: %s", c.err);
    CHECK_STR_CONTAINS(c.err, "child done");
    CHECK_STR_CONTAINS(c.err, "weft rt=");
    CHECK_EQ_INT(count_lines(c.err, "worker "), 2);
    char ev[64], want[128], buf[512];
    const char *p = strstr(c.err, "event=");
    CHECK_NOT_NULL(p);
    sscanf(p, "event=%63s", ev);
    snprintf(want, sizeof want, " parked worker=- prio=8 ");
    line_with(c.err, "task ", "name=[quitme]", buf, sizeof buf);
    CHECK_STR_CONTAINS(buf, want);
    snprintf(want, sizeof want, " wait=[event %s]", ev);
    CHECK_STR_CONTAINS(buf, want);
    CHECK_STR_CONTAINS(c.err, " tasks=1\n");
}

static void no_sigquit_child(void *arg)
{
    (void)arg;
    unsetenv("WEFT_SIGQUIT_DUMP");
    weft_rt *rt = test_rt_workers(64, 1);
    struct sigaction sa;
    sigaction(SIGQUIT, NULL, &sa);
    CHECK(sa.sa_handler == SIG_DFL); /* not asked: not installed */
    test_rt_destroy_clean(rt);
}

TEST(api, obs_sigquit_only_when_asked)
{
    test_child c;
    test_fork_capture(no_sigquit_child, NULL, 20, &c);
    CHECK(WIFEXITED(c.status));
    if (WEXITSTATUS(c.status) != 0)
        weft_check_fail(__FILE__, __LINE__, "child failed: %s", c.err);
}

/* ---- task info never shows the entry argument as polls ---------------- */

/* A new user's finding: while a tree of tasks runs, snapshots of leaves
 * read RUNNING with polls equal to the leaf's spawn argument (a stack
 * address), since the count shares a word with the argument until the
 * task starts. A leaf here polls at most 3 times (two yields). */
enum { INFO_RING = 256, INFO_SPAWNERS = 4, INFO_LEAVES = 20000 };
static _Atomic uint64_t info_ring[INFO_RING];
static _Atomic int info_done;

static void *tip_leaf(void *arg)
{
    volatile char *p = arg; /* the spawner's stack: a big value */
    (void)p;
    weft_yield();
    weft_yield();
    return NULL;
}

static void *tip_spawner(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    char here[64];
    for (unsigned i = 0; i < INFO_LEAVES; i++) {
        weft_task t[4];
        for (int k = 0; k < 4; k++) {
            CHECK_OK(weft_spawn(NULL, &t[k], tip_leaf, here + k, NULL));
            atomic_store(&info_ring[(id * 4 + k + i * 16) % INFO_RING],
                         t[k].id);
        }
        for (int k = 0; k < 4; k++)
            CHECK_OK(weft_join(t[k], NULL));
    }
    return NULL;
}

static void *tip_observer(void *arg)
{
    uint64_t *seen = arg;
    for (unsigned i = 0; !atomic_load(&info_done); i++) {
        weft_task t = {atomic_load(&info_ring[i % INFO_RING])};
        weft_task_info ti;
        if (!t.id || weft_task_info_get(t, &ti))
            continue;
        seen[0]++;
        CHECK_CMP_U64(ti.polls, <=, 3);
        if (ti.state == WEFT_STATE_RUNNING)
            seen[1]++;
    }
    return NULL;
}

static void *tip_tree(void *arg)
{
    (void)arg;
    weft_task s[INFO_SPAWNERS];
    for (uintptr_t i = 0; i < INFO_SPAWNERS; i++)
        CHECK_OK(weft_spawn(NULL, &s[i], tip_spawner, (void *)i, NULL));
    for (int i = 0; i < INFO_SPAWNERS; i++)
        CHECK_OK(weft_join(s[i], NULL));
    return NULL;
}

TEST_T(api, task_info_polls_never_the_argument, 60)
{
    weft_rt *rt = test_rt(4096);
    atomic_store(&info_done, 0);
    uint64_t seen[2] = {0, 0};
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, tip_observer, seen), 0);
    test_run(rt, tip_tree, NULL);
    atomic_store(&info_done, 1);
    CHECK_EQ_INT(pthread_join(th, NULL), 0);
    fprintf(stderr, "# snapshots %" PRIu64 ", running %" PRIu64 "\n", seen[0],
            seen[1]);
    CHECK_CMP_U64(seen[0], >, 1000);
    test_rt_destroy_clean(rt);
}
