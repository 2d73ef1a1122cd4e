/*
 * test_io_stress.c - readiness arriving while the workers go to sleep
 * (sched/poller.c, "No lost wake-up"): a plain thread and a task play
 * ping-pong over two pipes, the thread sometimes pausing so that every
 * worker reaches its sleep (in the poller or on its futex) just as the
 * next byte arrives. A lost wake-up hangs a round: each read has a 5 s
 * deadline, which fails the test instead.
 */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"

/* 10^5 rounds (sanitizers: 10^4, slower steps); WEFT_TEST_IO_ROUNDS=N
 * runs N instead (the 10^6-round run, by hand). */
static long rounds(void)
{
    const char *e = getenv("WEFT_TEST_IO_ROUNDS");
    if (e && atol(e) > 0)
        return atol(e);
    return TEST_SANITIZED ? 10000 : 100000;
}
#define ROUNDS rounds()

typedef struct {
    int ping[2], pong[2];
    long done;
} pp_ctx;

static void *ponger(void *arg)
{
    pp_ctx *c = arg;
    for (long i = 0; i < ROUNDS; i++) {
        char b;
        ssize_t r =
            weft_read_until(c->ping[0], &b, 1, weft_now_ns() + 5000000000ull);
        CHECK_EQ_INT(r, 1);
        CHECK_EQ_INT(weft_write(c->pong[1], &b, 1), 1);
        c->done++;
    }
    return NULL;
}

static void run(unsigned workers)
{
    weft_rt *rt = test_rt_workers(64, workers);
    pp_ctx c = {.done = 0};
    CHECK_OK(pipe(c.ping));
    CHECK_OK(pipe(c.pong));
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, ponger, &c, NULL));
    uint64_t x = 88172645463325252ull;
    for (long i = 0; i < ROUNDS; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        if ((x & 63) == 0) /* now and then: long enough to sleep */
            usleep((useconds_t)(x >> 58));
        char b = (char)i;
        CHECK_EQ_INT(write(c.ping[1], &b, 1), 1);
        /* The thread's own read, through weft: ppoll with a deadline. */
        ssize_t r =
            weft_read_until(c.pong[0], &b, 1, weft_now_ns() + 5000000000ull);
        CHECK_EQ_INT(r, 1);
    }
    CHECK_OK(weft_join(t, NULL));
    CHECK_EQ_INT(c.done, ROUNDS);
    weft_stats s = test_stats(rt);
    fprintf(stderr,
            "# %u workers: %ld rounds, %llu waits, %llu events, %llu "
            "blocking polls, %llu polls\n",
            workers, ROUNDS, (unsigned long long)s.io_waits,
            (unsigned long long)s.io_events,
            (unsigned long long)s.io_blocking_polls,
            (unsigned long long)s.io_polls);
    for (int k = 0; k < 2; k++) {
        close(c.ping[k]);
        close(c.pong[k]);
    }
    test_rt_destroy_clean(rt);
}

TEST_T(stress, io_readiness_while_workers_sleep_1, 120)
{
    run(1);
}

TEST_T(stress, io_readiness_while_workers_sleep_2, 120)
{
    run(2);
}
