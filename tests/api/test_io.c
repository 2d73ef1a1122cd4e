/*
 * test_io.c - blocking calls on descriptors that park only the task
 * (weft.h, "File descriptors"; src/io/fd.c, src/sched/poller.c).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

#define MS 1000000ull

/* Wait until task t is parked (in the call under test, not before it). */
static void until_parked(weft_task t)
{
    weft_task_info ti;
    uint64_t t0 = weft_now_ns();
    do {
        usleep(200);
        CHECK_OK(weft_task_info_get(t, &ti));
        if (ti.state == WEFT_STATE_DONE)
            return; /* the caller's checks say what it got */
        CHECK_CMP_U64(weft_now_ns() - t0, <, 10000 * MS);
    } while (ti.state != WEFT_STATE_PARKED);
}

/* A pipe (kind 0) or a connected pair of Unix stream sockets (kind 1):
 * the io_uring backend (WEFT_IO=uring) takes reads and writes of stream
 * sockets, the poller those of pipes, so each test below that makes
 * one runs with both. */
static void make_pair(int kind, int p[2])
{
    if (kind)
        CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, p));
    else
        CHECK_OK(pipe(p));
}

/* ---- a pipe: a task parked in weft_read, woken by a plain thread ------ */

typedef struct {
    int p[2];
    _Atomic int parked;
    char got;
    ssize_t r;
} pipe_ctx;

static void *reader(void *arg)
{
    pipe_ctx *c = arg;
    atomic_store(&c->parked, 1);
    c->r = weft_read(c->p[0], &c->got, 1);
    return NULL;
}

TEST(api, io_read_parks_task_plain_thread_wakes_it)
{
    weft_rt *rt = test_rt_workers(64, 1);
    pipe_ctx c = {.got = 0};
    CHECK_OK(pipe(c.p));
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, reader, &c, NULL));
    until_parked(t); /* the one worker goes idle in the poller */
    usleep(5000);
    /* The worker is free: another task runs meanwhile. */
    weft_task_info ti;
    CHECK_OK(weft_task_info_get(t, &ti));
    CHECK_EQ_INT(ti.state, WEFT_STATE_PARKED);
    CHECK(strstr(ti.wait, "fd read") != NULL);
    CHECK_EQ_INT(write(c.p[1], "x", 1), 1);
    CHECK_OK(weft_join(t, NULL));
    CHECK_EQ_INT(c.r, 1);
    CHECK_EQ_INT(c.got, 'x');
    close(c.p[0]);
    close(c.p[1]);
    test_rt_destroy_clean(rt);
}

/* ---- deadlines ---------------------------------------------------------- */

typedef struct {
    int fd;
    uint64_t late_ns;
    ssize_t r;
} dl_ctx;

static void *read_deadline(void *arg)
{
    dl_ctx *c = arg;
    char b;
    /* The best of five: the figure is the runtime's, not a busy host's
     * (bench/ measures the distribution). */
    c->late_ns = UINT64_MAX;
    for (int i = 0; i < 5; i++) {
        uint64_t dl = weft_now_ns() + 5 * MS;
        c->r = weft_read_until(c->fd, &b, 1, dl);
        uint64_t late = weft_now_ns() - dl;
        CHECK_EQ_INT(c->r, -ETIMEDOUT);
        if (late < c->late_ns)
            c->late_ns = late;
    }
    return NULL;
}

TEST(api, io_read_deadline_expires_on_time)
{
    weft_rt *rt = test_rt_workers(64, 2);
    for (int kind = 0; kind < 2; kind++) {
        int p[2];
        make_pair(kind, p);
        dl_ctx c = {p[0], 0, 0};
        test_run(rt, read_deadline, &c);
        CHECK_EQ_INT(c.r, -ETIMEDOUT);
        fprintf(stderr, "# %s: late by %llu us\n", kind ? "socket" : "pipe",
                (unsigned long long)(c.late_ns / 1000));
        /* Within 1 ms of the deadline (sanitizers slow every step). */
        if (!TEST_SANITIZED)
            CHECK_CMP_U64(c.late_ns, <, 1 * MS);
        /* A deadline in the past: at once, without blocking. */
        char b;
        CHECK_EQ_INT(weft_read_until(p[0], &b, 1, weft_now_ns() - 1),
                     -ETIMEDOUT);
        CHECK_OK(weft_close(p[0])); /* its number is reused next */
        close(p[1]);
    }
    test_rt_destroy_clean(rt);
}

/* ---- weft_close wakes a parked task ------------------------------------ */

typedef struct {
    int p[2];
    _Atomic int parked;
    ssize_t r;
} close_ctx;

static void *parked_reader(void *arg)
{
    close_ctx *c = arg;
    char b;
    atomic_store(&c->parked, 1);
    c->r = weft_read(c->p[0], &b, 1);
    return NULL;
}

typedef struct {
    close_ctx *c;
    weft_task reader;
} closer_ctx;

static void *closer(void *arg)
{
    closer_ctx *k = arg;
    weft_task_info ti;
    do {
        CHECK_OK(weft_sleep_ns(MS));
        CHECK_OK(weft_task_info_get(k->reader, &ti));
    } while (ti.state != WEFT_STATE_PARKED);
    CHECK_OK(weft_close(k->c->p[0]));
    return NULL;
}

TEST(api, io_close_wakes_parked_reader_from_task_and_thread)
{
    weft_rt *rt = test_rt_workers(64, 2);
    for (int run = 0; run < 4; run++) {
        int from_task = !(run & 1);
        close_ctx c = {.parked = 0};
        make_pair(run >> 1, c.p);
        weft_task r, k;
        CHECK_OK(weft_spawn(rt, &r, parked_reader, &c, NULL));
        if (from_task) {
            closer_ctx kc = {&c, r};
            CHECK_OK(weft_spawn(rt, &k, closer, &kc, NULL));
            CHECK_OK(weft_join(k, NULL));
        } else {
            until_parked(r);
            CHECK_OK(weft_close(c.p[0]));
        }
        CHECK_OK(weft_join(r, NULL));
        CHECK_EQ_INT(c.r, -ECANCELED);
        close(c.p[1]);
    }
    test_rt_destroy_clean(rt);
}

/* ---- TCP echo over loopback -------------------------------------------- */

#define CONNS 200
#define ROUNDS 20

typedef struct {
    int lfd;
    struct sockaddr_in addr;
    _Atomic long echoed;
} echo_ctx;

static void *serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[64];
    for (;;) {
        ssize_t n = weft_read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        CHECK_EQ_INT(weft_write_all(fd, buf, (size_t)n, NULL), n);
    }
    CHECK_OK(weft_close(fd));
    return NULL;
}

static void *acceptor(void *arg)
{
    echo_ctx *c = arg;
    for (int i = 0; i < CONNS; i++) {
        int fd = weft_accept(c->lfd, NULL, NULL, 0);
        CHECK_CMP_INT(fd, >=, 0);
        weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
        a.flags = WEFT_DETACHED;
        CHECK_OK(weft_spawn(NULL, NULL, serve_conn, (void *)(intptr_t)fd, &a));
    }
    return NULL;
}

static void *client(void *arg)
{
    echo_ctx *c = arg;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_CMP_INT(fd, >=, 0);
    CHECK_OK(weft_connect(fd, (struct sockaddr *)&c->addr, sizeof c->addr));
    for (int r = 0; r < ROUNDS; r++) {
        char out[16], in[16];
        int n = snprintf(out, sizeof out, "m%d", r);
        CHECK_EQ_INT(weft_write_all(fd, out, (size_t)n, NULL), n);
        size_t got = 0;
        while (got < (size_t)n) {
            ssize_t k = weft_read(fd, in + got, (size_t)n - got);
            CHECK_CMP_INT(k, >, 0);
            got += (size_t)k;
        }
        CHECK(memcmp(in, out, (size_t)n) == 0);
        atomic_fetch_add(&c->echoed, 1);
    }
    CHECK_OK(weft_close(fd));
    return NULL;
}

static void *echo_main(void *arg)
{
    echo_ctx *c = arg;
    weft_task a, cl[CONNS];
    CHECK_OK(weft_spawn(NULL, &a, acceptor, c, NULL));
    for (int i = 0; i < CONNS; i++)
        CHECK_OK(weft_spawn(NULL, &cl[i], client, c, NULL));
    for (int i = 0; i < CONNS; i++)
        CHECK_OK(weft_join(cl[i], NULL));
    CHECK_OK(weft_join(a, NULL));
    return NULL;
}

TEST_T(api, io_tcp_echo_tasks, 60)
{
    int fds0 = test_count_fds();
    weft_rt *rt = test_rt(4096);
    echo_ctx c = {.echoed = 0};
    c.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_CMP_INT(c.lfd, >=, 0);
    c.addr.sin_family = AF_INET;
    c.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c.addr.sin_port = 0;
    CHECK_OK(bind(c.lfd, (struct sockaddr *)&c.addr, sizeof c.addr));
    socklen_t sl = sizeof c.addr;
    CHECK_OK(getsockname(c.lfd, (struct sockaddr *)&c.addr, &sl));
    CHECK_OK(listen(c.lfd, 1024));
    test_run(rt, echo_main, &c);
    CHECK_EQ_INT(atomic_load(&c.echoed), CONNS * ROUNDS);
    CHECK_OK(weft_close(c.lfd));
    test_wait_live(rt, 0, 5000);
    test_rt_destroy_clean(rt);
    /* The poller's epoll and eventfd too. */
    CHECK_EQ_INT(test_count_fds(), fds0);
}

/* ---- destroy with tasks parked on descriptors --------------------------- */

TEST(api, io_destroy_with_parked_readers_releases_fds)
{
    int fds0 = test_count_fds();
    weft_rt *rt = test_rt_workers(64, 2);
    close_ctx c[8];
    weft_task t[8];
    for (int i = 0; i < 8; i++) {
        memset(&c[i], 0, sizeof c[i]);
        make_pair(i & 1, c[i].p);
        CHECK_OK(weft_spawn(rt, &t[i], parked_reader, &c[i], NULL));
    }
    for (int i = 0; i < 8; i++)
        until_parked(t[i]);
    CHECK_OK(weft_rt_shutdown(rt));
    for (int i = 0; i < 8; i++) {
        CHECK_OK(weft_join(t[i], NULL));
        CHECK_EQ_INT(c[i].r, -ECANCELED);
    }
    CHECK_OK(weft_rt_destroy(rt));
    for (int i = 0; i < 8; i++) {
        close(c[i].p[0]);
        close(c[i].p[1]);
    }
    CHECK_EQ_INT(test_count_fds(), fds0);
}

/* ---- plain threads: the same calls block the thread -------------------- */

TEST(api, io_plain_thread_calls_and_deadline)
{
    int p[2];
    CHECK_OK(pipe(p));
    char b = 0;
    uint64_t t0 = weft_now_ns();
    CHECK_EQ_INT(weft_read_until(p[0], &b, 1, t0 + 5 * MS), -ETIMEDOUT);
    CHECK_CMP_U64(weft_now_ns() - t0, >=, 5 * MS);
    CHECK_EQ_INT(weft_write(p[1], "y", 1), 1);
    CHECK_EQ_INT(weft_read_until(p[0], &b, 1, weft_now_ns() + 1000 * MS), 1);
    CHECK_EQ_INT(b, 'y');
    CHECK_OK(weft_fd_wait(p[1], WEFT_FD_WRITE, WEFT_NO_DEADLINE));
    CHECK_EQ_INT(weft_fd_wait(p[0], 0, WEFT_NO_DEADLINE), -EINVAL);
    CHECK_OK(weft_close(p[0]));
    CHECK_OK(weft_close(p[1]));
}

/* A plain thread's deadline holds on a descriptor that was blocking:
 * polling first and then making the call let the call block past it (a
 * write of more than the pipe holds; a read whose byte another reader
 * took; a connect), found by programs written from weft.h. */
typedef struct {
    int fd;
    ssize_t r;
    uint64_t took;
} pt_ctx;

static void *plain_reader(void *arg)
{
    pt_ctx *c = arg;
    char b;
    uint64_t t0 = weft_now_ns();
    c->r = weft_read_until(c->fd, &b, 1, t0 + 100 * MS);
    c->took = weft_now_ns() - t0;
    return NULL;
}

TEST(api, io_plain_thread_deadline_holds_on_blocking_descriptors)
{
    static char big[200000];
    int p[2];
    CHECK_OK(pipe(p));
    /* More than the pipe holds, nobody reading: the part that fits. */
    uint64_t t0 = weft_now_ns();
    ssize_t w = weft_write_until(p[1], big, sizeof big, t0 + 100 * MS);
    CHECK_CMP_INT(w, >, 0);
    CHECK_CMP_INT(w, <, (ssize_t)sizeof big);
    CHECK_CMP_U64(weft_now_ns() - t0, <, 2000 * MS);
    /* Full now: the deadline, not a block. */
    t0 = weft_now_ns();
    CHECK_EQ_INT(weft_write_until(p[1], big, 1, t0 + 50 * MS), -ETIMEDOUT);
    CHECK_CMP_U64(weft_now_ns() - t0, <, 2000 * MS);
    CHECK_OK(weft_close(p[0]));
    CHECK_OK(weft_close(p[1]));
    /* Two readers, one byte: the one that finds it gone times out. */
    CHECK_OK(pipe(p));
    pt_ctx a = {.fd = p[0]}, b = {.fd = p[0]};
    pthread_t ta, tb;
    CHECK_OK(pthread_create(&ta, NULL, plain_reader, &a));
    CHECK_OK(pthread_create(&tb, NULL, plain_reader, &b));
    usleep(20000);
    CHECK_EQ_INT(write(p[1], "z", 1), 1);
    CHECK_OK(pthread_join(ta, NULL));
    CHECK_OK(pthread_join(tb, NULL));
    CHECK_EQ_INT(a.r + b.r, 1 - ETIMEDOUT);
    CHECK_CMP_U64(a.took, <, 2000 * MS);
    CHECK_CMP_U64(b.took, <, 2000 * MS);
    CHECK_OK(weft_close(p[0]));
    CHECK_OK(weft_close(p[1]));
}

/* ---- half close and reset ---------------------------------------------- */

typedef struct {
    int s[2];
    ssize_t eof, reset_w;
} hc_ctx;

static void *half_close(void *arg)
{
    hc_ctx *c = arg;
    char b[8];
    /* The peer shuts its writing side: our parked read sees end of file,
     * and we can still write back. */
    c->eof = weft_read(c->s[0], b, sizeof b);
    CHECK_EQ_INT(weft_write(c->s[0], "bye", 3), 3);
    /* The peer closes: writing fails with -EPIPE, never SIGPIPE. */
    CHECK_OK(weft_sleep_ns(5 * MS));
    ssize_t r;
    do
        r = weft_write(c->s[0], "x", 1);
    while (r == 1);
    c->reset_w = r;
    return NULL;
}

TEST(api, io_half_close_and_peer_gone)
{
    weft_rt *rt = test_rt_workers(64, 2);
    hc_ctx c = {.eof = -1};
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c.s));
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, half_close, &c, NULL));
    usleep(5000);
    CHECK_OK(shutdown(c.s[1], SHUT_WR));
    char b[8];
    CHECK_EQ_INT(read(c.s[1], b, sizeof b), 3);
    close(c.s[1]);
    CHECK_OK(weft_join(t, NULL));
    CHECK_EQ_INT(c.eof, 0);
    CHECK_EQ_INT(c.reset_w, -EPIPE);
    CHECK_OK(weft_close(c.s[0]));
    test_rt_destroy_clean(rt);
}

/* ---- fd reuse: no wake-up of an old file reaches the new one ------------ */

typedef struct {
    int fd;
    ssize_t r;
    uint64_t wait_ns; /* its deadline, from when it starts */
} reuse_ctx;

static void *reuse_reader(void *arg)
{
    reuse_ctx *c = arg;
    char b;
    c->r = weft_read_until(c->fd, &b, 1, weft_now_ns() + c->wait_ns);
    return NULL;
}

TEST_T(api, io_fd_reuse_gets_no_stale_wakeup, 60)
{
    weft_rt *rt = test_rt_workers(64, 2);
    for (int i = 0; i < 100; i++) {
        int p[2], q[2];
        CHECK_OK(pipe(p));
        reuse_ctx old = {p[0], 0, 10000 * MS};
        weft_task t;
        CHECK_OK(weft_spawn(rt, &t, reuse_reader, &old, NULL));
        until_parked(t); /* in its read: the close is not its race */
        /* Readiness in flight while the number is closed and reused. */
        CHECK_EQ_INT(write(p[1], "z", 1), 1);
        CHECK_OK(weft_close(p[0]));
        CHECK_OK(pipe(q)); /* q[0] takes p[0]'s number, mostly */
        CHECK_OK(weft_join(t, NULL));
        if (!(old.r == 1 || old.r == -ECANCELED))
            fprintf(stderr, "# round %d: old reader got %zd\n", i, old.r);
        CHECK(old.r == 1 || old.r == -ECANCELED);
        reuse_ctx neu = {q[0], 0, 20 * MS};
        CHECK_OK(weft_spawn(rt, &t, reuse_reader, &neu, NULL));
        CHECK_OK(weft_join(t, NULL));
        CHECK_EQ_INT(neu.r, -ETIMEDOUT); /* nothing was written to it */
        close(p[1]);
        CHECK_OK(weft_close(q[0]));
        close(q[1]);
    }
    test_rt_destroy_clean(rt);
}

/* ---- stats and dumps name a task parked on a descriptor ----------------- */

TEST(api, io_stats_and_dump)
{
    weft_rt *rt = test_rt_workers(64, 1);
    pipe_ctx c = {.got = 0};
    CHECK_OK(pipe(c.p));
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, reader, &c, NULL));
    until_parked(t);
    usleep(5000);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK_OK(weft_dump(rt, f));
    fclose(f);
    char want[32];
    snprintf(want, sizeof want, "wait=[fd %d read]", c.p[0]);
    CHECK(strstr(buf, want) != NULL);
    free(buf);
    CHECK_EQ_INT(write(c.p[1], "x", 1), 1);
    CHECK_OK(weft_join(t, NULL));
    weft_stats s = test_stats(rt);
    CHECK_CMP_U64(s.io_waits, >=, 1);
    CHECK_CMP_U64(s.io_events, >=, 1);
    CHECK_CMP_U64(s.io_blocking_polls, >=, 1);
    close(c.p[0]);
    close(c.p[1]);
    test_rt_destroy_clean(rt);
}

/* ---- a wake from a descriptor displaces a task never run ----------------
 * A task woken by the poller takes the LIFO slot, and the task it
 * displaces goes to the yield queue (worker.c, ready_local). That task may
 * be one just spawned and never run, and weft_yield's fast path, which
 * takes the yield queue's head, must start it as any switch does: it
 * switched to a null stack pointer (a segfault in CI's 10k-connection
 * echo test, through the yield after a refused preemption). One worker:
 * readers parked on pipes, a yielder that keeps the yield queue non-empty,
 * and main, which each round makes a reader's pipe readable, spawns a
 * child (into the LIFO slot) and yields until the child has run. */

enum { FRESH_READERS = 8, FRESH_ROUNDS = 3000 };

typedef struct {
    int p[FRESH_READERS][2];
    _Atomic int children, stop;
    _Atomic uint64_t bytes;
} fresh_ctx;

typedef struct {
    fresh_ctx *c;
    int fd;
} fresh_arg;

static void *fresh_reader(void *arg)
{
    fresh_ctx *c = ((fresh_arg *)arg)->c;
    int fd = ((fresh_arg *)arg)->fd;
    char b[16];
    ssize_t n;
    while ((n = weft_read(fd, b, sizeof b)) > 0)
        atomic_fetch_add(&c->bytes, (uint64_t)n);
    CHECK_EQ_INT(n, 0);
    return NULL;
}

static void *fresh_child(void *arg)
{
    atomic_fetch_add(&((fresh_ctx *)arg)->children, 1);
    return NULL;
}

static void *fresh_yielder(void *arg)
{
    fresh_ctx *c = arg;
    while (!atomic_load(&c->stop))
        weft_yield();
    return NULL;
}

static void *fresh_main(void *arg)
{
    fresh_ctx *c = arg;
    fresh_arg ra[FRESH_READERS];
    weft_task r[FRESH_READERS], y;
    for (int i = 0; i < FRESH_READERS; i++) {
        CHECK_OK(pipe(c->p[i]));
        ra[i].c = c;
        ra[i].fd = c->p[i][0];
        CHECK_OK(weft_spawn(NULL, &r[i], fresh_reader, &ra[i], NULL));
    }
    CHECK_OK(weft_spawn(NULL, &y, fresh_yielder, c, NULL));
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.flags = WEFT_DETACHED;
    for (int k = 0; k < FRESH_ROUNDS; k++) {
        CHECK_EQ_INT(write(c->p[k % FRESH_READERS][1], "x", 1), 1);
        CHECK_OK(weft_spawn(NULL, NULL, fresh_child, c, &a));
        while (atomic_load(&c->children) <= k)
            weft_yield();
    }
    atomic_store(&c->stop, 1);
    CHECK_OK(weft_join(y, NULL));
    for (int i = 0; i < FRESH_READERS; i++)
        CHECK_OK(close(c->p[i][1]));
    for (int i = 0; i < FRESH_READERS; i++) {
        CHECK_OK(weft_join(r[i], NULL));
        CHECK_OK(weft_close(c->p[i][0]));
    }
    return NULL;
}

TEST_T(api, io_wake_displaces_a_fresh_task_then_yield, 60)
{
    fresh_ctx c;
    memset(&c, 0, sizeof c);
    weft_rt *rt = test_rt_workers(64, 1);
    test_run(rt, fresh_main, &c);
    CHECK_EQ_INT(atomic_load(&c.children), FRESH_ROUNDS);
    CHECK_EQ_U64(atomic_load(&c.bytes), FRESH_ROUNDS);
    test_wait_live(rt, 0, 10000);
    test_rt_destroy_clean(rt);
}
