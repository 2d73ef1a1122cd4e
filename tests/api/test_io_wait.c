/*
 * test_io_wait.c - weft_fd_wait with both events (weft.h: "Wait until fd
 * is ready for events (WEFT_FD_READ, WEFT_FD_WRITE, or both)"): ready for
 * either ends the wait, from a task as from a plain thread; the other
 * direction's edge is not lost; deadlines and weft_close end it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

#define MS 1000000ull

/* A connected Unix stream pair, non-blocking, with small buffers. */
static void pair(int sv[2])
{
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    int small = 4096;
    for (int i = 0; i < 2; i++) {
        CHECK_OK(
            setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &small, sizeof small));
        CHECK_OK(fcntl(sv[i], F_SETFL, fcntl(sv[i], F_GETFL) | O_NONBLOCK));
    }
}

/* Write to fd until it says EAGAIN: its send side is full. */
static void fill(int fd)
{
    char buf[1024] = {0};
    while (write(fd, buf, sizeof buf) > 0)
        ;
    CHECK_EQ_INT(errno, EAGAIN);
}

/* Read fd (the peer of a filled end) until it says EAGAIN. */
static void drain(int fd)
{
    char buf[4096];
    while (read(fd, buf, sizeof buf) > 0)
        ;
}

typedef struct {
    int sv[2];
    int r, r2;
    uint64_t took_ns;
} wctx;

/* ---- writable, nothing to read: the wait ends at once ------------------- */

static void *wait_both_writable(void *arg)
{
    wctx *c = arg;
    uint64_t t0 = weft_now_ns();
    /* Before the fix the task waited for reading only, and this timed
     * out after the 2 s although the socket was writable throughout. */
    c->r = weft_fd_wait(c->sv[0], WEFT_FD_READ | WEFT_FD_WRITE,
                        weft_now_ns() + 2000 * MS);
    c->took_ns = weft_now_ns() - t0;
    return NULL;
}

TEST(api, io_fd_wait_both_ends_when_writable)
{
    weft_rt *rt = test_rt_workers(256, 2);
    wctx c;
    pair(c.sv);
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, wait_both_writable, &c, NULL));
    CHECK_OK(weft_join(t, NULL));
    CHECK_EQ_INT(c.r, 0);
    CHECK_CMP_U64(c.took_ns, <, 1000 * MS);
    /* A plain thread: the same promise, through poll(2). */
    CHECK_OK(weft_fd_wait(c.sv[0], WEFT_FD_READ | WEFT_FD_WRITE,
                          weft_now_ns() + 2000 * MS));
    CHECK_OK(weft_close(c.sv[0]));
    close(c.sv[1]);
    test_rt_destroy_clean(rt);
}

/* ---- neither: parked; either direction wakes it ------------------------- */

static void *wait_both_then_write(void *arg)
{
    wctx *c = arg;
    c->r =
        weft_fd_wait(c->sv[0], WEFT_FD_READ | WEFT_FD_WRITE, WEFT_NO_DEADLINE);
    /* Woken for reading: take the byte. Then the test drains the peer,
     * and the write side's edge must reach this wait too (the node left
     * in the write queue was unlinked, and the edge is not lost). */
    char b;
    if (c->r == 0 && weft_read(c->sv[0], &b, 1) != 1)
        c->r = -1000;
    c->r2 = weft_fd_wait(c->sv[0], WEFT_FD_WRITE, weft_now_ns() + 5000 * MS);
    return NULL;
}

TEST(api, io_fd_wait_both_woken_by_read_then_write)
{
    weft_rt *rt = test_rt_workers(256, 1);
    wctx c;
    pair(c.sv);
    fill(c.sv[0]);
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, wait_both_then_write, &c, NULL));
    CHECK_OK(test_wait_parked(t, "fd read write"));
    /* weft_dump names the descriptor and both directions. */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(f != NULL);
    CHECK_OK(weft_dump(rt, f));
    fclose(f);
    char want[64];
    snprintf(want, sizeof want, "wait=[fd %d read write]", c.sv[0]);
    CHECK(strstr(text, want) != NULL);
    free(text);
    CHECK_EQ_INT(write(c.sv[1], "x", 1), 1);
    CHECK_OK(test_wait_parked(t, "fd write"));
    drain(c.sv[1]);
    CHECK_OK(weft_join(t, NULL));
    CHECK_EQ_INT(c.r, 0);
    CHECK_EQ_INT(c.r2, 0);
    CHECK_OK(weft_close(c.sv[0]));
    close(c.sv[1]);
    test_rt_destroy_clean(rt);
}

static void *wait_both(void *arg)
{
    wctx *c = arg;
    c->r =
        weft_fd_wait(c->sv[0], WEFT_FD_READ | WEFT_FD_WRITE, WEFT_NO_DEADLINE);
    return NULL;
}

TEST(api, io_fd_wait_both_woken_by_write_space)
{
    weft_rt *rt = test_rt_workers(256, 2);
    wctx c;
    pair(c.sv);
    fill(c.sv[0]);
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, wait_both, &c, NULL));
    CHECK_OK(test_wait_parked(t, "fd read write"));
    drain(c.sv[1]);
    CHECK_OK(weft_join(t, NULL));
    CHECK_EQ_INT(c.r, 0);
    CHECK_OK(weft_close(c.sv[0]));
    close(c.sv[1]);
    test_rt_destroy_clean(rt);
}

/* ---- deadline and close ------------------------------------------------- */

static void *wait_both_deadline(void *arg)
{
    wctx *c = arg;
    uint64_t t0 = weft_now_ns();
    c->r = weft_fd_wait(c->sv[0], WEFT_FD_READ | WEFT_FD_WRITE, t0 + 50 * MS);
    c->took_ns = weft_now_ns() - t0;
    /* Both nodes were unlinked: a second wait, ended by weft_close
     * from the test's thread, finds clean queues (ASan would see a
     * node of the first left on this stack). */
    c->r2 =
        weft_fd_wait(c->sv[0], WEFT_FD_READ | WEFT_FD_WRITE, WEFT_NO_DEADLINE);
    return NULL;
}

TEST(api, io_fd_wait_both_deadline_then_close)
{
    weft_rt *rt = test_rt_workers(256, 2);
    wctx c;
    pair(c.sv);
    fill(c.sv[0]);
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, wait_both_deadline, &c, NULL));
    usleep(100000); /* past the first wait's deadline */
    CHECK_OK(test_wait_parked(t, "fd read write"));
    CHECK_OK(weft_close(c.sv[0]));
    CHECK_OK(weft_join(t, NULL));
    CHECK_EQ_INT(c.r, -ETIMEDOUT);
    CHECK_CMP_U64(c.took_ns, >=, 50 * MS);
    CHECK_EQ_INT(c.r2, -ECANCELED);
    close(c.sv[1]);
    test_rt_destroy_clean(rt);
}

/* ---- ready already: every wait ends at once ------------------------------
 * The registration is edge-triggered; a descriptor that is ready and
 * whose edge an earlier wait took gives no new one. A second wait for
 * writing on a writable socket, and a wait for reading with data left
 * unread, timed out after their 200 ms (found by a program written from
 * weft.h; with no deadline they would have parked for good), and a past
 * deadline on a ready descriptor said -ETIMEDOUT. Each backend. */

static void *wait_ready_again(void *arg)
{
    wctx *c = arg;
    uint64_t t0 = weft_now_ns(), soon = t0 + 200 * MS;
    c->r = 0;
    for (int i = 0; i < 3 && !c->r; i++) /* the first also registers */
        c->r = weft_fd_wait(c->sv[0], WEFT_FD_WRITE, soon);
    CHECK_EQ_INT(write(c->sv[1], "xy", 2), 2);
    for (int i = 0; i < 3 && !c->r; i++) /* unread data stays readable */
        c->r = weft_fd_wait(c->sv[0], WEFT_FD_READ, soon);
    if (!c->r)
        c->r = weft_fd_wait(c->sv[0], WEFT_FD_READ, 1); /* long past */
    if (!c->r)
        c->r = weft_fd_wait(c->sv[0], WEFT_FD_WRITE, 1);
    c->took_ns = weft_now_ns() - t0;
    /* Not ready: a past deadline still says so. */
    char b[2];
    CHECK_EQ_INT(weft_read(c->sv[0], b, 2), 2);
    c->r2 = weft_fd_wait(c->sv[0], WEFT_FD_READ, 1);
    return NULL;
}

static void fd_wait_ready_again(int io)
{
    weft_rt *rt = test_rt_io(1, 64, io);
    wctx c;
    pair(c.sv);
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, wait_ready_again, &c, NULL));
    CHECK_OK(weft_join(t, NULL));
    CHECK_EQ_INT(c.r, 0);
    CHECK_CMP_U64(c.took_ns, <, 100 * MS);
    CHECK_EQ_INT(c.r2, -ETIMEDOUT);
    CHECK_OK(weft_close(c.sv[0]));
    close(c.sv[1]);
    test_rt_destroy_clean(rt);
}

TEST(api, io_fd_wait_ready_already_epoll)
{
    fd_wait_ready_again(WEFT_IO_EPOLL);
}

TEST(api, io_fd_wait_ready_already_uring)
{
    fd_wait_ready_again(WEFT_IO_URING);
}
