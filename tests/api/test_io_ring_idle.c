/*
 * test_io_ring_idle.c - an idle runtime sleeps after weft_close of
 * descriptors that were read through the io_uring backend.
 *
 * Why. A weft_close moves the runtime's count of closes, which tells the
 * ring that held the descriptor's operations to look for some to cancel
 * (sched/uring.c). A worker whose ring had nothing in flight any more
 * never brought its count up to date, so its idle path saw "a close to
 * act on" forever and never slept: about one CPU burned by an idle
 * process (found by a program written from weft.h). Here 8 tasks on 2
 * workers each read a byte through the ring, their sockets are closed
 * with weft_close, and the process's CPU time over the next 500 ms of
 * idleness must stay far under what a spinning worker burns.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

#define MS 1000000ull

static uint64_t cpu_ns(void)
{
    struct rusage u;
    CHECK_OK(getrusage(RUSAGE_SELF, &u));
    return ((uint64_t)u.ru_utime.tv_sec + (uint64_t)u.ru_stime.tv_sec) *
               1000000000ull +
           ((uint64_t)u.ru_utime.tv_usec + (uint64_t)u.ru_stime.tv_usec) *
               1000ull;
}

static void *read_one(void *arg)
{
    char c;
    CHECK_EQ_INT((int)weft_read((int)(intptr_t)arg, &c, 1), 1);
    return NULL;
}

static uint64_t burned;

static void *idle_main(void *arg)
{
    (void)arg;
    int sv[8][2];
    weft_task t[8];
    for (int i = 0; i < 8; i++) {
        CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv[i]));
        CHECK_OK(weft_spawn(NULL, &t[i], read_one, (void *)(intptr_t)sv[i][0],
                            NULL));
    }
    CHECK_OK(weft_sleep_ns(20 * MS)); /* parked in the rings */
    for (int i = 0; i < 8; i++)
        CHECK_EQ_INT((int)write(sv[i][1], "x", 1), 1);
    for (int i = 0; i < 8; i++)
        CHECK_OK(weft_join(t[i], NULL));
    for (int i = 0; i < 8; i++) {
        CHECK_OK(weft_close(sv[i][0]));
        close(sv[i][1]);
    }
    CHECK_OK(weft_sleep_ns(50 * MS));
    uint64_t c0 = cpu_ns();
    CHECK_OK(weft_sleep_ns(500 * MS));
    burned = cpu_ns() - c0;
    return NULL;
}

TEST_T(api, io_ring_idle_after_close_sleeps, 60)
{
    weft_rt *rt = test_rt_io(2, 64, WEFT_IO_URING);
    test_run(rt, idle_main, NULL);
    weft_stats st = test_stats(rt);
    CHECK_CMP_U64(st.io_uring_ops, >=, 8);
    /* A spinning worker: ~500 ms of CPU; an idle one: the monitor's
     * ticks, a few ms. */
    CHECK_CMP_U64(burned, <, 150 * MS);
    test_rt_destroy_clean(rt);
}
