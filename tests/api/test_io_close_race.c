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
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
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

/* Number num is free: the close of its old file has happened. Another
 * thread may hold it for a moment meanwhile (the monitor opens a
 * thread's /proc stat file to time a long poll, and open(2) takes the
 * lowest free number; under TSan in CI it held it once): asked again for
 * up to 2 s. */
static void check_free(int num)
{
    int i = 0;
    while (fcntl(num, F_GETFD) != -1 && i++ < 2000)
        usleep(1000);
    CHECK_EQ_INT(fcntl(num, F_GETFD), -1);
    CHECK_EQ_INT(errno, EBADF);
}

/* Move the descriptor fd onto number num (free, or fd itself): the
 * number's next file. */
static int onto(int fd, int num)
{
    if (fd != num) {
        CHECK_EQ_INT(dup3(fd, num, O_CLOEXEC), num);
        close(fd);
    }
    return num;
}

/* A connected pair, its first end on number num. */
static void pair_on(int num, int out[2])
{
    check_free(num);
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, out));
    if (out[1] == num) { /* the lowest free number went to the other end */
        int t = out[0];
        out[0] = out[1];
        out[1] = t;
    }
    out[0] = onto(out[0], num);
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
    pair_on(old[0], next);
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

/* ---- the io_uring backend: a close while the call asks what fd is ---------
 * The ring's paths ask getsockopt(SO_TYPE) at a number's first call
 * (fd.c, kind_of): the hook holds the task there while the number is
 * closed (found by a review, with reproducers).
 * A read: the kind it then learnt was kept for the number's next file,
 * a pipe, whose read went out as recv and failed with -ENOTSOCK.
 * An accept: it read the generation after the close had moved it, and
 * armed a multishot for it that no close would cancel: the closed
 * listener's port kept accepting, and the next listener on the number
 * was taken for armed (its accepts timed out, or saw -EBADF). */

static void hold_in_getsockopt(int fd, int opt, void *arg)
{
    cr_ctx *c = arg;
    if (fd != c->fd || opt != SO_TYPE || atomic_load(&c->in_call))
        return;
    atomic_store(&c->in_call, 1);
    for (int i = 0; i < 20000 && !atomic_load(&c->closed); i++)
        usleep(100);
}

static void *ring_read(void *arg)
{
    cr_ctx *c = arg;
    char b[16];
    c->res = weft_read_until(c->fd, b, sizeof b, weft_now_ns() + 2000000000ull);
    return NULL;
}

/* Hold a task running fn(c) in its getsockopt(SO_TYPE) on c->fd, close
 * the number meanwhile, and let it go: its result. */
static ssize_t close_in_kind(weft_rt *rt, cr_ctx *c, void *(*fn)(void *))
{
    fault_getsockopt_hook(hold_in_getsockopt, c);
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, fn, c, NULL));
    for (int i = 0; i < 20000 && !atomic_load(&c->in_call); i++)
        usleep(100);
    CHECK_EQ_INT(atomic_load(&c->in_call), 1);
    CHECK_OK(weft_close(c->fd));
    atomic_store(&c->closed, 1);
    CHECK_OK(weft_join(t, NULL));
    fault_getsockopt_hook(NULL, NULL);
    return c->res;
}

TEST_T(api, io_ring_close_while_kind_is_asked_read, 30)
{
    weft_rt *rt = test_rt_io(1, 64, WEFT_IO_URING);
    int sv[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
    cr_ctx c = {.fd = sv[0]};
    CHECK_EQ_INT(close_in_kind(rt, &c, ring_read), -ECANCELED);
    close(sv[1]);
    int p[2];
    check_free(sv[0]);
    CHECK_OK(pipe2(p, O_CLOEXEC));
    if (p[1] == sv[0]) { /* keep the write end off the number */
        int w = fcntl(p[1], F_DUPFD_CLOEXEC, sv[0] + 1);
        close(p[1]);
        p[1] = w;
    }
    p[0] = onto(p[0], sv[0]); /* the number's next file */
    CHECK_EQ_INT(write(p[1], "hello", 5), 5);
    cr_ctx d = {.fd = p[0]};
    test_run(rt, ring_read, &d);
    CHECK_EQ_INT(d.res, 5);
    CHECK_OK(weft_close(p[0]));
    close(p[1]);
    test_rt_destroy_clean(rt);
}

static int tcp_listener(struct sockaddr_in *a)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_CMP_INT(fd, >=, 0);
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_OK(bind(fd, (struct sockaddr *)a, sizeof *a));
    socklen_t sl = sizeof *a;
    CHECK_OK(getsockname(fd, (struct sockaddr *)a, &sl));
    CHECK_OK(listen(fd, 16));
    return fd;
}

static void *ring_accept(void *arg)
{
    cr_ctx *c = arg;
    c->res = weft_accept_until(c->fd, NULL, NULL, 0,
                               weft_now_ns() + (c->write ? 1000000000ull : 1));
    if (c->res >= 0)
        CHECK_OK(weft_close((int)c->res));
    return NULL;
}

TEST_T(api, io_ring_close_while_kind_is_asked_accept, 30)
{
    weft_rt *rt = test_rt_io(1, 64, WEFT_IO_URING);
    for (int past = 0; past < 2; past++) { /* a deadline past, then 1 s */
        struct sockaddr_in a1, a2;
        int l1 = tcp_listener(&a1);
        cr_ctx c = {.fd = l1, .write = past};
        CHECK_EQ_INT(close_in_kind(rt, &c, ring_accept), -ECANCELED);
        usleep(20000); /* the ring's worker reaps what it would */
        /* Closed means closed: nobody holds the old listener. */
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK_EQ_INT(connect(s, (struct sockaddr *)&a1, sizeof a1), -1);
        CHECK_EQ_INT(errno, ECONNREFUSED);
        close(s);
        /* The next listener on the number accepts, twice. */
        check_free(l1);
        int l2 = onto(tcp_listener(&a2), l1); /* the number's next */
        for (int k = 0; k < 2; k++) {
            s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            CHECK_OK(connect(s, (struct sockaddr *)&a2, sizeof a2));
            cr_ctx d = {.fd = l2, .write = 1};
            test_run(rt, ring_accept, &d);
            CHECK_CMP_INT(d.res, >=, 0);
            close(s);
        }
        CHECK_OK(weft_close(l2));
    }
    test_rt_destroy_clean(rt);
}
