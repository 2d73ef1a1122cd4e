/*
 * test_io_vec.c - the vector, address and message forms of the
 * descriptor calls (weft.h, "File descriptors"): weft_readv/_writev,
 * weft_recvfrom/_sendto, weft_recvmsg/_sendmsg park only the task, keep
 * the system calls' semantics, and never raise SIGPIPE.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "check.h"

#define MS 1000000ull

typedef struct {
    int fd;
    char got[64];
    ssize_t r;
    struct sockaddr_in from;
} vctx;

static void *readv_task(void *arg)
{
    vctx *c = arg;
    struct iovec v[2] = {{c->got, 5}, {c->got + 5, sizeof c->got - 5}};
    c->r = weft_readv_until(c->fd, v, 2, weft_now_ns() + 5000 * MS);
    return NULL;
}

TEST(api, io_readv_writev_park_and_join_vectors)
{
    weft_rt *rt = test_rt(64);
    int sv[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    vctx c = {.fd = sv[0]};
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, readv_task, &c, NULL));
    /* The reader parks: nothing to read yet (waited for, not slept on:
     * TSan once took over 20 ms to get the task there). */
    CHECK_OK(test_wait_parked(t, NULL));
    struct iovec w[3] = {{"hel", 3}, {"lo, ", 4}, {"vectors", 7}};
    CHECK_EQ_INT(weft_writev(sv[1], w, 3), 14); /* a plain thread */
    CHECK_OK(weft_join(t, NULL));
    CHECK_EQ_INT(c.r, 14);
    CHECK(memcmp(c.got, "hello, vectors", 14) == 0);
    CHECK_CMP_U64(test_stats(rt).io_waits, >=, 1);
    /* writev on a pipe (not a socket) from a task, and a peer gone:
     * -EPIPE, no SIGPIPE (the process would die of it). */
    close(sv[0]);
    weft_close(sv[1]);
    int p[2];
    CHECK_OK(pipe(p));
    close(p[0]);
    struct iovec one = {"x", 1};
    CHECK_EQ_INT(weft_writev(p[1], &one, 1), -EPIPE);
    CHECK_EQ_INT(weft_write(p[1], "x", 1), -EPIPE);
    close(p[1]);
    test_rt_destroy_clean(rt);
}

static void *recvfrom_task(void *arg)
{
    vctx *c = arg;
    socklen_t len = sizeof c->from;
    c->r = weft_recvfrom_until(c->fd, c->got, sizeof c->got, 0,
                               (struct sockaddr *)&c->from, &len,
                               weft_now_ns() + 5000 * MS);
    return NULL;
}

static int udp_bound(struct sockaddr_in *a)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK_CMP_INT(s, >=, 0);
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_OK(bind(s, (struct sockaddr *)a, sizeof *a));
    socklen_t l = sizeof *a;
    CHECK_OK(getsockname(s, (struct sockaddr *)a, &l));
    return s;
}

TEST(api, io_recvfrom_sendto_udp)
{
    weft_rt *rt = test_rt(64);
    struct sockaddr_in ra, sa;
    int r = udp_bound(&ra), s = udp_bound(&sa);
    vctx c = {.fd = r};
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, recvfrom_task, &c, NULL));
    usleep(20000);
    CHECK_EQ_INT(
        weft_sendto(s, "datagram", 8, 0, (struct sockaddr *)&ra, sizeof ra), 8);
    CHECK_OK(weft_join(t, NULL));
    CHECK_EQ_INT(c.r, 8);
    CHECK(memcmp(c.got, "datagram", 8) == 0);
    CHECK_EQ_INT(c.from.sin_port, sa.sin_port); /* the sender's address */
    /* Nothing sent, and the socket closed under the parked task:
     * -ECANCELED. */
    c.r = 0;
    CHECK_OK(weft_spawn(rt, &t, recvfrom_task, &c, NULL));
    /* Parked, not merely started (a call that begins after the close
     * rightly gets -EBADF: chaos seed 418 delayed the task past a 1 ms
     * sleep). */
    CHECK_OK(test_wait_parked(t, NULL));
    CHECK_OK(weft_close(r)); /* wakes the parked task */
    CHECK_OK(weft_join(t, NULL));
    CHECK_EQ_INT(c.r, -ECANCELED);
    weft_close(s);
    test_rt_destroy_clean(rt);
}

static void *recvmsg_task(void *arg)
{
    vctx *c = arg;
    struct iovec v[2] = {{c->got, 3}, {c->got + 3, 8}};
    struct msghdr m = {.msg_iov = v, .msg_iovlen = 2};
    c->r = weft_recvmsg_until(c->fd, &m, 0, weft_now_ns() + 5000 * MS);
    return NULL;
}

static void *sendmsg_task(void *arg)
{
    int fd = *(int *)arg;
    struct iovec v[2] = {{"msg", 3}, {"-parts", 6}};
    struct msghdr m = {.msg_iov = v, .msg_iovlen = 2};
    return (void *)(intptr_t)weft_sendmsg(fd, &m, 0);
}

TEST(api, io_recvmsg_sendmsg_between_tasks)
{
    weft_rt *rt = test_rt(64);
    int sv[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
    vctx c = {.fd = sv[0]};
    weft_task t, u;
    CHECK_OK(weft_spawn(rt, &t, recvmsg_task, &c, NULL));
    usleep(20000);
    CHECK_OK(weft_spawn(rt, &u, sendmsg_task, &sv[1], NULL));
    void *sent;
    CHECK_OK(weft_join(u, &sent));
    CHECK_OK(weft_join(t, NULL));
    CHECK_EQ_INT((intptr_t)sent, 9);
    CHECK_EQ_INT(c.r, 9);
    CHECK(memcmp(c.got, "msg-parts", 9) == 0);
    /* The peer gone: sendmsg says -EPIPE, with no SIGPIPE. */
    weft_close(sv[0]);
    CHECK_OK(weft_spawn(rt, &u, sendmsg_task, &sv[1], NULL));
    CHECK_OK(weft_join(u, &sent));
    CHECK_EQ_INT((intptr_t)sent, -EPIPE);
    weft_close(sv[1]);
    test_rt_destroy_clean(rt);
}

static void *connect_task(void *arg)
{
    struct sockaddr_in *a = arg;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int r = weft_connect(s, (struct sockaddr *)a, sizeof *a);
    weft_close(s);
    return (void *)(intptr_t)r;
}

TEST(api, io_connect_refused_is_returned)
{
    weft_rt *rt = test_rt(64);
    /* A port nobody listens on: bind one, then close it. */
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CHECK_OK(bind(s, (struct sockaddr *)&a, sizeof a));
    socklen_t l = sizeof a;
    CHECK_OK(getsockname(s, (struct sockaddr *)&a, &l));
    close(s);
    CHECK_EQ_INT((intptr_t)test_run(rt, connect_task, &a), -ECONNREFUSED);
    test_rt_destroy_clean(rt);
}

/* ---- a blocking pipe's reader leaves while a plain thread writes ------- */

static int gone_pipe[2];

static void *close_reader_later(void *arg)
{
    (void)arg;
    usleep(50000);
    close(gone_pipe[0]);
    return NULL;
}

/* A plain thread's write to a blocking pipe blocks part way (more than
 * the pipe holds); the reader's close ends it with a partial count and
 * raises SIGPIPE at the same time. That SIGPIPE was delivered once the
 * mask came back, killing the process (exit status 141, found by a
 * program written from weft.h). Now: weft_write returns the partial
 * count, weft_write_all -EPIPE with *done, and the process lives. */
TEST(api, io_plain_write_to_a_pipe_whose_reader_leaves_raises_no_sigpipe)
{
    static char big[200000];
    struct sigaction dfl = {.sa_handler = SIG_DFL}, old;
    CHECK_OK(sigaction(SIGPIPE, &dfl, &old));
    for (int all = 0; all < 2; all++) {
        CHECK_OK(pipe(gone_pipe));
        pthread_t th;
        CHECK_OK(pthread_create(&th, NULL, close_reader_later, NULL));
        size_t done = 0;
        ssize_t r = all ? weft_write_all(gone_pipe[1], big, sizeof big, &done)
                        : weft_write(gone_pipe[1], big, sizeof big);
        CHECK_OK(pthread_join(th, NULL));
        if (all) {
            CHECK_EQ_INT(r, -EPIPE);
            CHECK_CMP_U64(done, >, 0);
            CHECK_CMP_U64(done, <, sizeof big);
        } else {
            CHECK_CMP_INT(r, >, 0);
            CHECK_CMP_INT(r, <, (ssize_t)sizeof big);
        }
        close(gone_pipe[1]);
    }
    CHECK_OK(sigaction(SIGPIPE, &old, NULL));
}

/* writev(2)'s answer to a bad count is EINVAL; on a socket weft_writev
 * goes through sendmsg(2), which said EMSGSIZE. */
TEST(api, io_writev_bad_count_is_einval)
{
    int sv[2], p[2];
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    CHECK_OK(pipe(p));
    struct iovec one = {"x", 1};
    int bad[2] = {-1, IOV_MAX + 1};
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(weft_writev(sv[0], &one, bad[i]), -EINVAL);
        CHECK_EQ_INT(weft_writev(p[1], &one, bad[i]), -EINVAL);
    }
    CHECK_EQ_INT(weft_writev(sv[0], &one, 1), 1);
    for (int i = 0; i < 2; i++) {
        CHECK_OK(weft_close(sv[i]));
        CHECK_OK(weft_close(p[i]));
    }
}
