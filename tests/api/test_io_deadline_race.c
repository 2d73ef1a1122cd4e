/*
 * test_io_deadline_race.c - a read whose data arrives as its deadline
 * fires, then the next call: it gets its data or a timeout, and the call
 * after it, with no deadline on an open socket, is never cancelled.
 *
 * Why. In the io_uring backend a linked timeout that fires as its read
 * completes cancels the read by user_data, from task work the ring runs
 * at its next enter; the task had meanwhile reaped the data and queued
 * its next read with a record at the same stack address, so that read
 * came back -ECANCELED (no weft_close, no shutdown) in about half of the
 * rounds (found by a program written from weft.h; sched/uring.c,
 * SEQ_SHIFT). The same must hold through the poller. Each round: a plain
 * thread writes one byte at the deadline of the task's
 * weft_read_until(dl), and a second byte 300 us later, which a
 * weft_read with no deadline must get. Nothing may be lost either.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

enum { ROUNDS = 2000 };

typedef struct {
    int fd; /* the writer's end */
    _Atomic uint64_t target;
    _Atomic int go, stop;
    int cancelled, lost, timed_out;
} race;

static void *writer(void *arg)
{
    race *r = arg;
    for (;;) {
        while (!atomic_load(&r->go))
            if (atomic_load(&r->stop))
                return NULL;
        atomic_store(&r->go, 0);
        uint64_t t = atomic_load(&r->target);
        while (weft_now_ns() < t)
            ;
        CHECK_EQ_INT(write(r->fd, "a", 1), 1);
        while (weft_now_ns() < t + 300 * 1000)
            ;
        CHECK_EQ_INT(write(r->fd, "b", 1), 1);
    }
}

/* The reads, in a function of their own: the records of both calls sit
 * at the same stack depth, as in the program that found it. */
static ssize_t read_at(int fd, char *c, size_t n, uint64_t dl)
{
    return weft_read_until(fd, c, n, dl);
}

static void *reader(void *arg)
{
    race *r = arg;
    int sv[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    r->fd = sv[1];
    pthread_t th;
    CHECK_OK(pthread_create(&th, NULL, writer, r));
    for (int i = 0; i < ROUNDS; i++) {
        uint64_t dl = weft_now_ns() + 200 * 1000;
        atomic_store(&r->target, dl);
        atomic_store(&r->go, 1);
        char c[2];
        int have = 0;
        ssize_t n = read_at(sv[0], c, 1, dl);
        if (n == 1)
            have = 1;
        else if (n == -ETIMEDOUT)
            r->timed_out++;
        else
            CHECK_EQ_INT((int)n, 1);
        while (have < 2) {
            n = read_at(sv[0], c + have, (size_t)(2 - have), WEFT_NO_DEADLINE);
            if (n == -ECANCELED) {
                r->cancelled++;
                continue;
            }
            CHECK_CMP_INT((int)n, >, 0);
            have += (int)n;
        }
        if (c[0] != 'a' || c[1] != 'b')
            r->lost++;
    }
    atomic_store(&r->stop, 1);
    CHECK_OK(pthread_join(th, NULL));
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

static void run(int io)
{
    weft_rt *rt = test_rt_io(1, 64, io);
    race r = {0};
    test_run(rt, reader, &r);
    CHECK_EQ_INT(r.cancelled, 0);
    CHECK_EQ_INT(r.lost, 0);
    test_rt_destroy_clean(rt);
}

TEST_T(api, io_deadline_race_epoll, 60)
{
    run(WEFT_IO_EPOLL);
}

TEST_T(api, io_deadline_race_uring, 60)
{
    run(WEFT_IO_URING);
}
