/*
 * test_io_stress.c - readiness arriving while the workers go to sleep
 * (sched/poller.c, "No lost wake-up"): a plain thread and a task play
 * ping-pong over two pipes, the thread sometimes pausing so that every
 * worker reaches its sleep (in the poller or on its futex) just as the
 * next byte arrives. A lost wake-up hangs a round: each read has a 5 s
 * deadline, which fails the test instead. The _sockets variants use Unix
 * stream sockets, which the io_uring backend takes (WEFT_IO=uring,
 * sched/uring.c): completions arriving as the workers go to sleep in
 * their rings. Then two tests of the ring's own promises: workers asleep
 * in their rings are woken for new work (the futex wait armed in the
 * ring), and weft_close ends an operation whether it was queued,
 * submitted or about to be.
 */
#include <sys/socket.h>
#include <pthread.h>
#include <stdatomic.h>
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

static void pair(int sockets, int p[2])
{
    if (sockets)
        CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, p));
    else
        CHECK_OK(pipe(p));
}

static void run(unsigned workers, int sockets)
{
    weft_rt *rt = test_rt_workers(64, workers);
    pp_ctx c = {.done = 0};
    pair(sockets, c.ping);
    pair(sockets, c.pong);
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
    run(1, 0);
}

TEST_T(stress, io_readiness_while_workers_sleep_2, 120)
{
    run(2, 0);
}

TEST_T(stress, io_readiness_while_workers_sleep_sockets_1, 120)
{
    run(1, 1);
}

TEST_T(stress, io_readiness_while_workers_sleep_sockets_2, 120)
{
    run(2, 1);
}

/* ---- new work for workers that sleep with operations in flight ---------
 * Each round a task parks in a read of a socket (so an idle worker sleeps
 * in its ring), a plain thread writes the byte that ends it, and then
 * spawns and joins a task that does nothing, pausing now and then so that
 * the workers are asleep when the spawn comes: in their rings while a
 * read is in flight, on their futexes once none is (a futex wait the
 * ring armed for an earlier sleep must not take that wake-up). A lost
 * wake-up hangs a join, and the test's time limit fails it. */

static void *one_read(void *arg)
{
    char b;
    CHECK_EQ_INT(weft_read(*(int *)arg, &b, 1), 1);
    return NULL;
}

static void *nothing(void *arg)
{
    return arg;
}

TEST_T(stress, io_new_work_while_workers_sleep_with_reads_in_flight, 120)
{
    weft_rt *rt = test_rt_workers(64, 2);
    int p[2];
    pair(1, p);
    uint64_t x = 88172645463325252ull;
    long n = ROUNDS / 4;
    for (long i = 0; i < n; i++) {
        weft_task r, t;
        CHECK_OK(weft_spawn(rt, &r, one_read, &p[0], NULL));
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        if ((x & 15) == 0)
            usleep((useconds_t)(x >> 59));
        CHECK_EQ_INT(write(p[1], "x", 1), 1);
        CHECK_OK(weft_join(r, NULL));
        if ((x & 48) == 0)
            usleep((useconds_t)(x >> 59));
        CHECK_OK(weft_spawn(rt, &t, nothing, NULL, NULL));
        CHECK_OK(weft_join(t, NULL));
    }
    CHECK_OK(weft_close(p[0]));
    close(p[1]);
    test_rt_destroy_clean(rt);
}

/* ---- weft_close against a read at every stage -------------------------
 * A task reads a socket nobody writes; a plain thread closes it once the
 * task has parked, at once or after a random pause. With the io_uring
 * backend the task parks before its read reaches the kernel, so the
 * close finds the read queued in the ring and not yet submitted,
 * submitted, or in flight; with the poller, queued on the descriptor.
 * The read must end with -ECANCELED every time; a read left waiting hangs
 * the join, and the test's time limit fails it. (A close before the call
 * took its reference is the caller's race, weft.h: the number may be
 * reused by then, which ThreadSanitizer reports; so not that.) */

static void *close_reader(void *arg)
{
    char b;
    return (void *)(intptr_t)weft_read(*(int *)arg, &b, 1);
}

TEST_T(stress, io_close_ends_reads_at_every_stage, 120)
{
    weft_rt *rt = test_rt_workers(64, 2);
    uint64_t x = 88172645463325252ull;
    long n = ROUNDS / 20;
    for (long i = 0; i < n; i++) {
        int p[2];
        pair(1, p);
        int fd = p[0];
        weft_task t;
        CHECK_OK(weft_spawn(rt, &t, close_reader, &fd, NULL));
        weft_task_info ti;
        do
            CHECK_OK(weft_task_info_get(t, &ti));
        while (ti.state != WEFT_STATE_PARKED);
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        if (x & 1)
            usleep((useconds_t)(x >> 57));
        CHECK_OK(weft_close(fd));
        void *r;
        CHECK_OK(weft_join(t, &r));
        CHECK_EQ_INT((intptr_t)r, -ECANCELED);
        close(p[1]);
    }
    test_rt_destroy_clean(rt);
}
