/*
 * test_watchdog.c - in WEFT_DEBUG builds a task left ready while every
 * worker sleeps (a lost wake-up) is reported by name and the process
 * aborts, instead of hanging (sched/watchdog.c). The lost wake-up is made
 * by hand: a parked task's state word is set RUNNABLE without queueing
 * it or signalling the summary tree (white-box).
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"

static weft_event never;

static void *parks(void *arg)
{
    (void)arg;
    weft_event_wait(&never);
    return NULL;
}

/* Keeps the runtime busy in bursts: the workers wake, switch and sleep
 * again every 2 ms, as a server's would between requests. */
static void *ticks(void *arg)
{
    (void)arg;
    while (weft_sleep_ns(2000000) == 0)
        ;
    return NULL;
}

/* lose: 1 makes the wake-up lost; 2 also, while another task keeps
 * running (the loss must be seen even though tasks switch in between);
 * 0 leaves the task parked (a control: a parked task is not a
 * suspect). */
static void child(void *arg)
{
    int lose = (int)(intptr_t)arg;
    setenv("WEFT_WATCHDOG_MS", "300", 1);
    CHECK_OK(weft_event_init(&never));
    weft_config cfg;
    weft_config_default(&cfg);
    cfg.workers = 2;
    cfg.max_tasks = 256;
    weft_rt *rt;
    CHECK_OK(weft_rt_create(&rt, &cfg));
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.name = "forgotten";
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, parks, NULL, &a));
    weft_task tick;
    if (lose == 2)
        CHECK_OK(weft_spawn(rt, &tick, ticks, NULL, NULL));
    weft_task_info ti;
    do {
        usleep(1000);
        CHECK_OK(weft_task_info_get(t, &ti));
    } while (ti.state != WEFT_STATE_PARKED);
    if (lose) {
        _Atomic uint64_t *st = &rt->hot[t.id & 0xffffffff].state;
        uint64_t s = atomic_load(st);
        CHECK(atomic_compare_exchange_strong(
            st, &s, (s & ~WEFT_TS_MASK) | WEFT_TS_RUNNABLE));
    }
    sleep(3); /* the monitor goes idle after 100 ms, then 300 ms more */
    fprintf(stderr, "no report\n");
    if (lose)
        _exit(0); /* the test fails: no abort */
    CHECK_OK(weft_rt_shutdown(rt));
    CHECK_OK(weft_rt_destroy(rt));
}

TEST_T(fault, watchdog_reports_lost_wakeup, 20)
{
#ifndef WEFT_DEBUG
    TEST_SKIP("a WEFT_DEBUG build only");
#endif
    test_child ch;
    test_fork_capture(child, (void *)1, 15, &ch);
    fprintf(stderr, "# %s", ch.err);
    CHECK(strstr(ch.err, "watchdog") != NULL);
    CHECK(strstr(ch.err, "'forgotten'") != NULL);
    CHECK(strstr(ch.err, "lost wake-up") != NULL);
    CHECK(WIFSIGNALED(ch.status));
    CHECK_EQ_INT(WTERMSIG(ch.status), SIGABRT);
}

TEST_T(fault, watchdog_reports_lost_wakeup_while_others_run, 20)
{
#ifndef WEFT_DEBUG
    TEST_SKIP("a WEFT_DEBUG build only");
#endif
    test_child ch;
    test_fork_capture(child, (void *)2, 15, &ch);
    fprintf(stderr, "# %s", ch.err);
    CHECK(strstr(ch.err, "'forgotten'") != NULL);
    CHECK(strstr(ch.err, "lost wake-up") != NULL);
    CHECK(WIFSIGNALED(ch.status));
    CHECK_EQ_INT(WTERMSIG(ch.status), SIGABRT);
}

TEST_T(fault, watchdog_quiet_on_parked_task, 20)
{
#ifndef WEFT_DEBUG
    TEST_SKIP("a WEFT_DEBUG build only");
#endif
    test_child ch;
    test_fork_capture(child, (void *)0, 15, &ch);
    CHECK(strstr(ch.err, "watchdog") == NULL);
    CHECK(WIFEXITED(ch.status));
    CHECK_EQ_INT(WEXITSTATUS(ch.status), 0);
}
