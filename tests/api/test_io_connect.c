/*
 * test_io_connect.c - weft_connect_until and weft.h's "A timed-out call
 * has no effect": a deadline already past starts no connection, and an
 * attempt that its deadline ends is aborted, from a task and from a
 * plain thread, whatever the socket's blocking mode.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

#define MS 1000000ull

/* A loopback listener (non-blocking, to count its queue), its address. */
static int listener(struct sockaddr_in *a, int backlog)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    CHECK(l >= 0);
    *a = (struct sockaddr_in){.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof *a;
    CHECK_OK(bind(l, (struct sockaddr *)a, sizeof *a));
    CHECK_OK(listen(l, backlog));
    CHECK_OK(getsockname(l, (struct sockaddr *)a, &n));
    return l;
}

static int connected(int s)
{
    struct sockaddr_in peer;
    socklen_t n = sizeof peer;
    return getpeername(s, (struct sockaddr *)&peer, &n) == 0;
}

typedef struct {
    struct sockaddr_in a;
    int l, blocking;
    int r, r2, conn;
} cc_ctx;

/* A deadline already past: -ETIMEDOUT, and no connection made (before,
 * the first try started one, which the listener then accepted). */
static void *past(void *arg)
{
    cc_ctx *c = arg;
    int s = socket(AF_INET, SOCK_STREAM | (c->blocking ? 0 : SOCK_NONBLOCK), 0);
    c->r = weft_connect_until(s, (struct sockaddr *)&c->a, sizeof c->a, 1);
    usleep(20000);
    c->conn = connected(s);
    /* The socket is as it was: connecting it now works. */
    c->r2 = weft_connect(s, (struct sockaddr *)&c->a, sizeof c->a);
    weft_close(s);
    return NULL;
}

TEST(api, io_connect_past_deadline_makes_no_connection)
{
    weft_rt *rt = test_rt(64);
    for (int plain = 0; plain < 2; plain++)
        for (int blocking = 0; blocking < 2; blocking++) {
            cc_ctx c = {.blocking = blocking};
            c.l = listener(&c.a, 16);
            if (plain)
                past(&c);
            else
                test_run(rt, past, &c);
            CHECK_EQ_INT(c.r, -ETIMEDOUT);
            CHECK_EQ_INT(c.conn, 0);
            CHECK_OK(c.r2);
            /* Exactly the second attempt's connection is queued. */
            int one = accept(c.l, NULL, NULL);
            CHECK(one >= 0);
            CHECK_EQ_INT(accept(c.l, NULL, NULL), -1);
            CHECK_EQ_INT(errno, EAGAIN);
            close(one);
            close(c.l);
        }
    test_rt_destroy_clean(rt);
}

/* A listener whose queue is full drops SYNs: the attempt stays in
 * progress until its deadline, which aborts it (before, a plain thread's
 * connect on a blocking socket blocked for seconds past the deadline,
 * and a task's attempt went on after -ETIMEDOUT: the SYN sent again a
 * second later found room and connected). */
typedef struct {
    struct sockaddr_in a;
    int s, r, ms;
} ip_ctx;

static void *in_progress(void *arg)
{
    ip_ctx *c = arg;
    uint64_t t0 = weft_now_ns();
    c->r = weft_connect_until(c->s, (struct sockaddr *)&c->a, sizeof c->a,
                              t0 + 100 * MS);
    c->ms = (int)((weft_now_ns() - t0) / MS);
    return NULL;
}

TEST(api, io_connect_deadline_aborts_the_attempt)
{
    weft_rt *rt = test_rt(64);
    struct sockaddr_in a;
    int l = listener(&a, 0);
    int fill[4];
    for (int i = 0; i < 4; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fill[i], (struct sockaddr *)&a, sizeof a);
    }
    usleep(50000);
    int s[4];
    for (int k = 0; k < 4; k++) { /* task or thread, blocking or not */
        int plain = k & 1, blocking = k >> 1;
        ip_ctx c = {.a = a};
        c.s = s[k] =
            socket(AF_INET, SOCK_STREAM | (blocking ? 0 : SOCK_NONBLOCK), 0);
        if (plain)
            in_progress(&c);
        else
            test_run(rt, in_progress, &c);
        CHECK_EQ_INT(c.r, -ETIMEDOUT);
        CHECK_CMP_INT(c.ms, <, 2000);
        CHECK_EQ_INT(connected(s[k]), 0);
    }
    /* Room in the queue, and time for a SYN to be sent again (1 s). */
    for (int i = 0; i < 4; i++)
        close(fill[i]);
    int got;
    while ((got = accept(l, NULL, NULL)) >= 0)
        close(got);
    usleep(1500000);
    for (int k = 0; k < 4; k++) {
        CHECK_EQ_INT(connected(s[k]), 0);
        weft_close(s[k]);
    }
    close(l);
    test_rt_destroy_clean(rt);
}
