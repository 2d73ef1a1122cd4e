/*
 * test_io_isolated.c - descriptor calls after isolation: a worker that
 * the monitor moved to another thread (a task held it past the Isolate
 * tier) still serves its tasks' reads, in both backends.
 *
 * Why. With io_uring, the worker's ring (SINGLE_ISSUER) refused every
 * io_uring_enter from the worker's new thread (EEXIST): the read's
 * submission never reached the kernel, the task never woke, and the
 * worker's idle path spun. Through the poller, a task that had gone on
 * under the isolation identity and then parked on a descriptor was left
 * with nobody blocked in the poller (every worker asleep): its data sat
 * in the socket until the deadline (-ETIMEDOUT). Both found by a
 * program written from weft.h.
 *
 * How. One worker, tiers lowered so that a task spinning 300 ms is
 * isolated. The main task reads a byte (the ring is made), joins the
 * spinner, then reads with a 2 s deadline a byte a plain thread writes
 * 10 ms later: it must get it, well before the deadline; then a task
 * spawned after the isolation (on the worker's new thread) does the
 * same.
 *
 * Skipped under ThreadSanitizer (tests/preempt_util.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "preempt_util.h"

#define MS 1000000ull

static int sv[2];

static void *spinner(void *arg)
{
    (void)arg;
    uint64_t end = weft_now_ns() + 300 * MS;
    volatile uint64_t x = 0;
    while (weft_now_ns() < end)
        x++;
    return NULL;
}

static void *late_writer(void *arg)
{
    (void)arg;
    usleep(10 * 1000);
    CHECK_EQ_INT((int)write(sv[1], "z", 1), 1);
    return NULL;
}

static uint64_t took, took_task;

/* The same read from a task spawned after the isolation: it runs on the
 * worker's new thread, through its ring in the uring backend. */
static void *reader(void *arg)
{
    (void)arg;
    pthread_t th;
    CHECK_OK(pthread_create(&th, NULL, late_writer, NULL));
    uint64_t t0 = weft_now_ns();
    char c;
    CHECK_EQ_INT((int)weft_read_until(sv[0], &c, 1, t0 + 2000 * MS), 1);
    took_task = weft_now_ns() - t0;
    CHECK_OK(pthread_join(th, NULL));
    return NULL;
}

static void *iso_main(void *arg)
{
    weft_rt *rt = arg;
    char c;
    CHECK_EQ_INT((int)write(sv[1], "a", 1), 1);
    CHECK_EQ_INT((int)weft_read(sv[0], &c, 1), 1);
    weft_task h;
    CHECK_OK(weft_spawn(NULL, &h, spinner, NULL, NULL));
    CHECK_OK(weft_join(h, NULL));
    weft_stats st;
    CHECK_OK(weft_stats_get(rt, &st));
    CHECK_CMP_U64(st.isolations, >=, 1);
    pthread_t th;
    CHECK_OK(pthread_create(&th, NULL, late_writer, NULL));
    uint64_t t0 = weft_now_ns();
    CHECK_EQ_INT((int)weft_read_until(sv[0], &c, 1, t0 + 2000 * MS), 1);
    took = weft_now_ns() - t0;
    CHECK_OK(pthread_join(th, NULL));
    weft_task r;
    CHECK_OK(weft_spawn(NULL, &r, reader, NULL, NULL));
    CHECK_OK(weft_join(r, NULL));
    return NULL;
}

static void run(int io)
{
    skip_tsan();
    weft_rt *rt = test_rt_io(1, 64, io);
    weft_policy pol;
    CHECK_OK(weft_policy_get(rt, &pol));
    for (int t = WEFT_TIER_MONITOR; t < WEFT_TIER_ISOLATE; t++)
        pol.tier[t].promote_cpu_ms = 5 * (uint32_t)(t + 1);
    CHECK_OK(weft_policy_set(rt, &pol));
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    test_run(rt, iso_main, rt);
    /* The byte came 10 ms in: anything near the deadline is the bug. */
    CHECK_CMP_U64(took, <, 1000 * MS);
    CHECK_CMP_U64(took_task, <, 1000 * MS);
    test_rt_destroy_clean(rt);
    close(sv[0]);
    close(sv[1]);
}

TEST_T(api, io_read_after_isolation_epoll, 60)
{
    run(WEFT_IO_EPOLL);
}

TEST_T(api, io_read_after_isolation_uring, 60)
{
    run(WEFT_IO_URING);
}
