/*
 * test_io_close_race.c - weft_close while a call on the number has begun
 * but not yet parked: weft.h says the close(2) then waits for the last
 * call to leave, "so the number is never reused under a running call".
 *
 * The window is a task's first call on a descriptor, which sets
 * O_NONBLOCK (fd.c, rec_of): the test's fcntl hook (tests/fault/inject.h)
 * holds the task there while a plain thread calls weft_close and opens a
 * new socket pair, which takes the lowest free numbers. Before the fix the
 * call took its reference only after that fcntl: the close was made at
 * once, the new pair reused the number, and the call read the new
 * socket's data (read) or wrote into it (write), every time. Now the
 * close waits for the call, which returns -ECANCELED, and the new socket
 * is untouched. Then the number's next file must start afresh: a task's
 * read on it sets O_NONBLOCK again and is woken by its data (a record
 * left NONBLOCK or REGISTERED would skip both). Each backend.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "fault/inject.h"

typedef struct {
    int fd;
    int write; /* the call: a write (1) or a read (0) */
    _Atomic int in_call, closed;
    ssize_t res;
} cr_ctx;

/* In the task, inside its first call's fcntl(F_SETFL) on c->fd: tell
 * the test, and wait (2 s at most) until it has closed and reopened. */
static void hold_in_fcntl(int fd, int cmd, void *arg)
{
    cr_ctx *c = arg;
    (void)cmd;
    if (fd != c->fd || atomic_load(&c->in_call))
        return;
    atomic_store(&c->in_call, 1);
    for (int i = 0; i < 20000 && !atomic_load(&c->closed); i++)
        usleep(100);
}

static void *first_call(void *arg)
{
    cr_ctx *c = arg;
    static char big[1 << 20];
    char small[64];
    c->res = c->write ? weft_write(c->fd, big, sizeof big)
                      : weft_read(c->fd, small, sizeof small);
    return NULL;
}

static void *read_one(void *arg)
{
    int fd = *(int *)arg;
    char b[8] = {0};
    ssize_t n = weft_read(fd, b, sizeof b);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(memcmp(b, "new", 3), 0);
    return NULL;
}

static void close_in_first_call(int io, int write)
{
    weft_rt *rt = test_rt_io(1, 64, io);
    int old[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, old));
    cr_ctx c = {.fd = old[0], .write = write};
    if (write) { /* full: the write must wait */
        static char fill[4096];
        while (send(c.fd, fill, sizeof fill, MSG_DONTWAIT) > 0)
            ;
    }
    fault_fcntl_hook(hold_in_fcntl, &c);
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, first_call, &c, NULL));
    for (int i = 0; i < 20000 && !atomic_load(&c.in_call); i++)
        usleep(100);
    CHECK_EQ_INT(atomic_load(&c.in_call), 1);
    CHECK_OK(weft_close(c.fd));
    int fresh[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fresh));
    if (!write)
        CHECK_EQ_INT(send(fresh[1], "NEWDATA", 7, 0), 7);
    atomic_store(&c.closed, 1);
    CHECK_OK(weft_join(t, NULL));
    fault_fcntl_hook(NULL, NULL);
    CHECK_EQ_INT(c.res, -ECANCELED);
    /* The new pair is untouched: its data unread, nothing written. */
    char got[64];
    int reader = write ? fresh[1] : fresh[0];
    ssize_t n = recv(reader, got, sizeof got, MSG_DONTWAIT);
    CHECK_EQ_INT(n, write ? -1 : 7);
    close(fresh[0]);
    close(fresh[1]);
    close(old[1]);
    /* The number's next file (the call's leaving closed the old one). */
    int next[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, next));
    CHECK_EQ_INT(next[0], old[0]);
    CHECK_EQ_INT(fcntl(next[0], F_GETFL) & O_NONBLOCK, 0);
    CHECK_OK(weft_spawn(rt, &t, read_one, &next[0], NULL));
    usleep(20000); /* parked, most runs */
    CHECK_EQ_INT(send(next[1], "new", 3, 0), 3);
    CHECK_OK(weft_join(t, NULL));
    CHECK(fcntl(next[0], F_GETFL) & O_NONBLOCK);
    CHECK_OK(weft_close(next[0]));
    close(next[1]);
    test_rt_destroy_clean(rt);
}

TEST_T(api, io_close_in_first_read_epoll, 30)
{
    close_in_first_call(WEFT_IO_EPOLL, 0);
}

TEST_T(api, io_close_in_first_write_epoll, 30)
{
    close_in_first_call(WEFT_IO_EPOLL, 1);
}

TEST_T(api, io_close_in_first_read_uring, 30)
{
    close_in_first_call(WEFT_IO_URING, 0);
}

TEST_T(api, io_close_in_first_write_uring, 30)
{
    close_in_first_call(WEFT_IO_URING, 1);
}
