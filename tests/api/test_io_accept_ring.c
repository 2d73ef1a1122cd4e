/*
 * test_io_accept_ring.c - weft_accept through the io_uring backend (a
 * multishot accept per listener, io/accept.c): every connection taken
 * exactly once by acceptors on several workers, with the peer's address;
 * the descriptor limit returned, not spun on; weft_close and the
 * runtime's destroy with connections accepted and not yet taken close
 * them (no descriptor left open); a listener nobody takes from holds a
 * bounded number. Each test runs with cfg.io = WEFT_IO_URING and skips
 * where the backend cannot run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

#define MS 1000000ull

static weft_rt *ring_rt(unsigned workers)
{
    return test_rt_io(workers, 256, WEFT_IO_URING);
}

static int listener(struct sockaddr_in *addr, int backlog)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_CMP_INT(fd, >=, 0);
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_OK(bind(fd, (struct sockaddr *)addr, sizeof *addr));
    socklen_t sl = sizeof *addr;
    CHECK_OK(getsockname(fd, (struct sockaddr *)addr, &sl));
    CHECK_OK(listen(fd, backlog));
    return fd;
}

static int dial(const struct sockaddr_in *addr)
{
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_CMP_INT(c, >=, 0);
    CHECK_OK(connect(c, (const struct sockaddr *)addr, sizeof *addr));
    return c;
}

/* ---- many acceptors, many connections --------------------------------------
 * ACC_TASKS tasks on two workers accept ACC_CONNS connections that
 * ACC_THREADS plain threads make; each client sends its index as 4 bytes
 * and waits for them back. Every connection is taken exactly once, the
 * address weft_accept gives is the client's own (its local port), and the
 * ring made the accepts (weft_stats.io_uring_ops). */

enum { ACC_TASKS = 4, ACC_THREADS = 4, ACC_CONNS = 2000 };

typedef struct {
    int lfd;
    struct sockaddr_in addr;
    _Atomic uint32_t seen[ACC_CONNS];
    _Atomic uint32_t taken, bad_addr;
    _Atomic int stop;
} acc_ctx;

typedef struct {
    acc_ctx *c;
    unsigned from, n;
} acc_thr;

static void *acc_client(void *arg)
{
    acc_thr *t = arg;
    for (unsigned i = t->from; i < t->from + t->n; i++) {
        int fd = dial(&t->c->addr);
        struct sockaddr_in me;
        socklen_t ml = sizeof me;
        CHECK_OK(getsockname(fd, (struct sockaddr *)&me, &ml));
        uint32_t v[2] = {i, me.sin_port}, back = 0;
        CHECK_EQ_INT(write(fd, v, 8), 8);
        CHECK_EQ_INT(read(fd, &back, 4), 4);
        CHECK_EQ_U64(back, i);
        close(fd);
    }
    return NULL;
}

static void *acc_task(void *arg)
{
    acc_ctx *c = arg;
    for (;;) {
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        int fd = weft_accept_until(c->lfd, (struct sockaddr *)&peer, &len, 0,
                                   weft_now_ns() + 50 * MS);
        if (fd == -ETIMEDOUT) {
            if (atomic_load(&c->stop))
                return NULL;
            continue;
        }
        CHECK_CMP_INT(fd, >=, 0);
        uint32_t v[2] = {0, 0};
        CHECK_EQ_INT(weft_read(fd, v, 8), 8);
        CHECK_CMP_U64(v[0], <, ACC_CONNS);
        CHECK_EQ_U64(atomic_fetch_add(&c->seen[v[0]], 1), 0);
        /* The client's own end is the peer weft_accept named. */
        if (len != sizeof peer || peer.sin_family != AF_INET ||
            peer.sin_addr.s_addr != htonl(INADDR_LOOPBACK) ||
            peer.sin_port != v[1])
            atomic_fetch_add(&c->bad_addr, 1);
        CHECK_EQ_INT(weft_write(fd, v, 4), 4);
        CHECK_OK(weft_close(fd));
        atomic_fetch_add(&c->taken, 1);
    }
}

TEST_T(api, io_ring_accept_many_acceptors, 60)
{
    int fds0 = test_count_fds();
    weft_rt *rt = ring_rt(2);
    acc_ctx *c = calloc(1, sizeof *c);
    CHECK_NOT_NULL(c);
    c->lfd = listener(&c->addr, 128);
    weft_task t[ACC_TASKS];
    for (int i = 0; i < ACC_TASKS; i++)
        CHECK_OK(weft_spawn(rt, &t[i], acc_task, c, NULL));
    pthread_t th[ACC_THREADS];
    acc_thr a[ACC_THREADS];
    for (unsigned i = 0; i < ACC_THREADS; i++) {
        a[i] = (acc_thr){c, i * (ACC_CONNS / ACC_THREADS),
                         ACC_CONNS / ACC_THREADS};
        CHECK_OK(pthread_create(&th[i], NULL, acc_client, &a[i]));
    }
    for (unsigned i = 0; i < ACC_THREADS; i++)
        CHECK_OK(pthread_join(th[i], NULL));
    atomic_store(&c->stop, 1);
    for (int i = 0; i < ACC_TASKS; i++)
        CHECK_OK(weft_join(t[i], NULL));
    CHECK_EQ_U64(atomic_load(&c->taken), ACC_CONNS);
    for (unsigned i = 0; i < ACC_CONNS; i++)
        CHECK_EQ_U64(atomic_load(&c->seen[i]), 1);
    CHECK_EQ_U64(atomic_load(&c->bad_addr), 0);
    /* Accepts, reads and writes: the ring's. */
    CHECK_CMP_U64(test_stats(rt).io_uring_ops, >=, 2 * ACC_CONNS);
    CHECK_OK(weft_close(c->lfd));
    test_rt_destroy_clean(rt);
    free(c);
    CHECK_EQ_INT(test_count_fds(), fds0);
}

/* ---- connections accepted ahead, and what ends them ----------------------
 * A task's accept that times out arms the multishot; then NCLI clients
 * connect and the ring accepts them with nobody taking them. weft_close
 * of the listener closes them (each client reads its end of file); so
 * does the runtime's destroy. Without either, they would stay open in
 * the process (counted in /proc/self/fd). */

enum { NCLI = 20 };

typedef struct {
    int lfd;
} arm_ctx;

static void *arm_task(void *arg)
{
    arm_ctx *a = arg;
    CHECK_EQ_INT(
        weft_accept_until(a->lfd, NULL, NULL, 0, weft_now_ns() + 2 * MS),
        -ETIMEDOUT);
    return NULL;
}

/* Wait (up to 5 s) until the process's count of open descriptors stays
 * for 100 ms at `want`, or for 300 ms at another count; the count it
 * settled at. */
static int settle_fds(int want)
{
    uint64_t t0 = test_now_ms(), since = test_now_ms();
    int last = test_count_fds();
    while (test_now_ms() - t0 < 5000) {
        usleep(10000);
        int n = test_count_fds();
        if (n != last) {
            last = n;
            since = test_now_ms();
        } else if (test_now_ms() - since >= (n == want ? 100u : 300u))
            break;
    }
    return last;
}

static void accepted_ahead(int by_destroy)
{
    int fds0 = test_count_fds();
    weft_rt *rt = ring_rt(1);
    struct sockaddr_in addr;
    arm_ctx a = {listener(&addr, 64)};
    test_run(rt, arm_task, &a);
    int base = test_count_fds();
    int cl[NCLI];
    for (int i = 0; i < NCLI; i++)
        cl[i] = dial(&addr);
    /* The clients' ends, and the server's ends the ring accepted. */
    CHECK_EQ_INT(settle_fds(base + 2 * NCLI), base + 2 * NCLI);
    if (by_destroy) {
        test_rt_destroy_clean(rt);
        CHECK_EQ_INT(test_count_fds(), fds0 + 1 + NCLI);
    } else {
        CHECK_OK(weft_close(a.lfd));
        CHECK_EQ_INT(settle_fds(base - 1 + NCLI), base - 1 + NCLI);
    }
    for (int i = 0; i < NCLI; i++) {
        struct pollfd p = {.fd = cl[i], .events = POLLIN};
        CHECK_EQ_INT(poll(&p, 1, 5000), 1);
        char b;
        ssize_t n = read(cl[i], &b, 1);
        CHECK(n == 0 || (n < 0 && errno == ECONNRESET));
        close(cl[i]);
    }
    if (by_destroy)
        close(a.lfd);
    else
        test_rt_destroy_clean(rt);
    CHECK_EQ_INT(test_count_fds(), fds0);
}

TEST_T(api, io_ring_accept_close_ends_the_queued, 60)
{
    accepted_ahead(0);
}

TEST_T(api, io_ring_accept_destroy_ends_the_queued, 60)
{
    accepted_ahead(1);
}

/* ---- bounded ahead ---------------------------------------------------------
 * With nobody taking, the ring stops accepting ahead at HIGH (64,
 * io/accept.c) plus what the kernel accepted in the reap that reached
 * it; the rest wait in the kernel's backlog. MANY clients connect, one
 * every 2 ms; then a task takes every connection, each exactly once: the
 * queue's, then the backlog's (the multishot armed again). Without the
 * stop the ring takes all MANY ahead. */

enum { MANY = 300, AHEAD_MAX = MANY / 2 };

typedef struct {
    int lfd;
    int got[MANY];
    int n;
} take_ctx;

static void *take_task(void *arg)
{
    take_ctx *t = arg;
    for (t->n = 0; t->n < MANY; t->n++) {
        t->got[t->n] =
            weft_accept_until(t->lfd, NULL, NULL, 0, weft_now_ns() + 5000 * MS);
        CHECK_CMP_INT(t->got[t->n], >=, 0);
    }
    return NULL;
}

TEST_T(api, io_ring_accept_ahead_is_bounded, 60)
{
    int fds0 = test_count_fds();
    weft_rt *rt = ring_rt(1);
    struct sockaddr_in addr;
    arm_ctx a = {listener(&addr, MANY)};
    test_run(rt, arm_task, &a);
    int base = test_count_fds();
    static int cl[MANY];
    for (int i = 0; i < MANY; i++) {
        cl[i] = dial(&addr);
        usleep(2000);
    }
    int n = settle_fds(-1) - base - MANY; /* settled: accepted ahead */
    fprintf(stderr, "# %d of %d connections accepted ahead\n", n, MANY);
    CHECK_CMP_INT(n, >=, 1);
    CHECK_CMP_INT(n, <=, AHEAD_MAX);
    static take_ctx t;
    t.lfd = a.lfd;
    test_run(rt, take_task, &t);
    /* Each client's connection once: write its index, read it back on
     * the server's end it names. */
    static char seen[MANY];
    for (int i = 0; i < MANY; i++)
        CHECK_EQ_INT(write(cl[i], &i, sizeof i), (int)sizeof i);
    for (int i = 0; i < MANY; i++) {
        int v = -1;
        struct pollfd p = {.fd = t.got[i], .events = POLLIN};
        CHECK_EQ_INT(poll(&p, 1, 5000), 1);
        CHECK_EQ_INT(read(t.got[i], &v, sizeof v), (int)sizeof v);
        CHECK(v >= 0 && v < MANY && !seen[v]);
        seen[v] = 1;
        CHECK_OK(weft_close(t.got[i]));
        close(cl[i]);
    }
    CHECK_OK(weft_close(a.lfd));
    test_rt_destroy_clean(rt);
    CHECK_EQ_INT(test_count_fds(), fds0);
}

/* ---- the descriptor limit ----------------------------------------------------
 * The process has two numbers free under its limit when the multishot
 * is armed; they are then taken and a client connects. The ring's
 * accept fails with EMFILE, and weft_accept returns -EMFILE: the first
 * call once the completion came (it may park for it), the next ones at
 * once without parking (nothing armed: each call's own accept4(2) says
 * EMFILE). With numbers free again the connection is accepted. (The
 * kernel reads the limit when the multishot is armed: one armed before
 * the limit was lowered accepts past it.) */

enum { EMFILE_CALLS = 200 };

typedef struct {
    int lfd;
    uint64_t worst_ns, polls;
    int first, got;
    int sv[2];
} mf_ctx;

static uint64_t my_polls(void)
{
    weft_task_info ti;
    CHECK_OK(weft_task_info_get(weft_self(), &ti));
    return ti.polls;
}

/* The worker's ring made (an operation through it), before the limit. */
static void *ring_task(void *arg)
{
    mf_ctx *c = arg;
    char b = 'x';
    CHECK_EQ_INT(weft_write(c->sv[0], &b, 1), 1);
    CHECK_EQ_INT(weft_read(c->sv[1], &b, 1), 1);
    return NULL;
}

static void *mf_task(void *arg)
{
    mf_ctx *c = arg;
    c->first =
        weft_accept_until(c->lfd, NULL, NULL, 0, weft_now_ns() + 5000 * MS);
    c->polls = my_polls();
    for (int i = 0; i < EMFILE_CALLS; i++) {
        uint64_t t0 = weft_now_ns();
        int r =
            weft_accept_until(c->lfd, NULL, NULL, 0, weft_now_ns() + 300 * MS);
        uint64_t dt = weft_now_ns() - t0;
        if (r != -EMFILE)
            fprintf(stderr, "# first %d; call %d: %d\n", c->first, i, r);
        CHECK_EQ_INT(r, -EMFILE);
        if (dt > c->worst_ns)
            c->worst_ns = dt;
    }
    c->polls = my_polls() - c->polls;
    return NULL;
}

static void *mf_after(void *arg)
{
    mf_ctx *c = arg;
    c->got =
        weft_accept_until(c->lfd, NULL, NULL, 0, weft_now_ns() + 5000 * MS);
    return NULL;
}

/* dup(fd) into fill[] until EMFILE (at most cap numbers). */
static void fill_up(int fd, int *fill, int *n, int cap)
{
    for (;;) {
        int f = dup(fd);
        if (f < 0) {
            CHECK_EQ_INT(errno, EMFILE);
            return;
        }
        CHECK_CMP_INT(*n, <, cap);
        fill[(*n)++] = f;
    }
}

TEST_T(api, io_ring_accept_emfile_is_returned, 60)
{
    int fds0 = test_count_fds();
    weft_rt *rt = ring_rt(1);
    struct sockaddr_in addr;
    mf_ctx c = {.lfd = listener(&addr, 16)};
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c.sv));
    test_run(rt, ring_task, &c);
    int cl = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_CMP_INT(cl, >=, 0);
    /* A limit two numbers past the highest open one, and every number
     * under it taken. */
    struct rlimit saved;
    CHECK_OK(getrlimit(RLIMIT_NOFILE, &saved));
    int high = test_highest_fd();
    int *fill = calloc((size_t)high + 4, sizeof *fill), nfill = 0;
    CHECK_NOT_NULL(fill);
    struct rlimit low = {(rlim_t)high + 3, saved.rlim_max};
    CHECK_OK(setrlimit(RLIMIT_NOFILE, &low));
    fill_up(cl, fill, &nfill, high + 3);
    /* Two numbers free for the arming (its accept4 must say EAGAIN, not
     * EMFILE; a sanitizer may open a file meanwhile), then every number
     * taken again. */
    CHECK_CMP_INT(nfill, >=, 2);
    close(fill[--nfill]);
    close(fill[--nfill]);
    arm_ctx a = {c.lfd};
    test_run(rt, arm_task, &a); /* accept4 says EAGAIN: armed */
    fill_up(cl, fill, &nfill, high + 3);
    CHECK_OK(connect(cl, (struct sockaddr *)&addr, sizeof addr));
    test_run(rt, mf_task, &c);
    CHECK_OK(setrlimit(RLIMIT_NOFILE, &saved));
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    free(fill);
    fprintf(stderr,
            "# first %d; then %d calls, slowest %" PRIu64 " us, %" PRIu64
            " polls\n",
            c.first, EMFILE_CALLS, c.worst_ns / 1000, c.polls);
    CHECK_EQ_INT(c.first, -EMFILE);
    CHECK_EQ_U64(c.polls, 0); /* never parked */
    CHECK_CMP_U64(c.worst_ns, <, 100 * MS);
    test_run(rt, mf_after, &c);
    CHECK_CMP_INT(c.got, >=, 0);
    CHECK_OK(weft_close(c.got));
    close(cl);
    CHECK_OK(weft_close(c.sv[0]));
    CHECK_OK(weft_close(c.sv[1]));
    CHECK_OK(weft_close(c.lfd));
    test_rt_destroy_clean(rt);
    CHECK_EQ_INT(test_count_fds(), fds0);
}

/* ---- one connection at a time ------------------------------------------------
 * A plain thread connects, says a byte, waits (2 s at most) for it back
 * and hangs up, SEQ times; one acceptor task (no deadline) and the
 * connection's task on one worker. The worker goes idle between
 * connections, so the multishot's completion is often what its idle
 * path reaps before it sleeps: a wake-up the handler made there must
 * not be slept through (it was: the reap counted only the completions
 * of tasks' own operations, and the acceptor, runnable, waited for the
 * next connection). */

enum { SEQ = 2000 };

typedef struct {
    int lfd;
    _Atomic int served;
} seq_ctx;

static void *seq_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char b;
    if (weft_read(fd, &b, 1) == 1)
        CHECK_EQ_INT(weft_write(fd, &b, 1), 1);
    CHECK_OK(weft_close(fd));
    return NULL;
}

static void *seq_acceptor(void *arg)
{
    seq_ctx *c = arg;
    for (;;) {
        int fd = weft_accept(c->lfd, NULL, NULL, 0);
        if (fd == -ECANCELED)
            return NULL; /* the listener closed */
        CHECK_CMP_INT(fd, >=, 0);
        weft_spawn_attr at = WEFT_SPAWN_ATTR_INIT;
        at.flags = WEFT_DETACHED;
        CHECK_OK(weft_spawn(NULL, NULL, seq_conn, (void *)(intptr_t)fd, &at));
        atomic_fetch_add(&c->served, 1);
    }
}

TEST_T(api, io_ring_accept_one_at_a_time, 120)
{
    int fds0 = test_count_fds();
    weft_rt *rt = ring_rt(1);
    struct sockaddr_in addr;
    seq_ctx c = {.lfd = listener(&addr, 16)};
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, seq_acceptor, &c, NULL));
    for (int i = 0; i < SEQ; i++) {
        int fd = dial(&addr);
        char b = (char)i, back = 0;
        CHECK_EQ_INT(write(fd, &b, 1), 1);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 2000) != 1)
            weft_check_fail(__FILE__, __LINE__,
                            "connection %d: no answer within 2 s", i);
        CHECK_EQ_INT(read(fd, &back, 1), 1);
        CHECK_EQ_INT(back, b);
        close(fd);
    }
    CHECK_OK(weft_close(c.lfd));
    CHECK_OK(weft_join(t, NULL));
    CHECK_EQ_INT(atomic_load(&c.served), SEQ);
    test_rt_destroy_clean(rt);
    CHECK_EQ_INT(test_count_fds(), fds0);
}

/* ---- weft_close means closed -----------------------------------------------
 * A listener whose multishot is armed (an accept timed out on it) is
 * closed with weft_close, by a plain thread, and by a task on the ring's
 * own worker (which must let the worker reap while it waits); a
 * connect(2) right after is refused, as after close(2) of a listener
 * nobody holds. Without the wait for the cancel (fd.c,
 * ring_release_wait) the ring still held the socket and the connect
 * succeeded. weft_fd_forget then close(2) does the same. */

enum { CLOSE_ROUNDS = 20 };

typedef struct {
    int lfd;
    struct sockaddr_in addr;
    int refused;
} cr_ctx;

static int is_refused(const struct sockaddr_in *addr)
{
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_CMP_INT(c, >=, 0);
    int r = connect(c, (const struct sockaddr *)addr, sizeof *addr);
    int e = errno;
    close(c);
    return r < 0 && e == ECONNREFUSED;
}

static void *close_in_task(void *arg)
{
    cr_ctx *c = arg;
    CHECK_OK(weft_close(c->lfd));
    c->refused = is_refused(&c->addr);
    return NULL;
}

enum { BY_THREAD, BY_TASK, BY_FORGET };

static void close_refuses(int how)
{
    weft_rt *rt = ring_rt(1);
    for (int round = 0; round < CLOSE_ROUNDS; round++) {
        cr_ctx c = {0};
        c.lfd = listener(&c.addr, 16);
        arm_ctx a = {c.lfd};
        test_run(rt, arm_task, &a); /* the multishot stays armed */
        if (how == BY_TASK) {
            test_run(rt, close_in_task, &c);
        } else {
            if (how == BY_FORGET) {
                CHECK_OK(weft_fd_forget(c.lfd));
                CHECK_OK(close(c.lfd));
            } else {
                CHECK_OK(weft_close(c.lfd));
            }
            c.refused = is_refused(&c.addr);
        }
        CHECK_EQ_INT(c.refused, 1);
    }
    test_rt_destroy_clean(rt);
}

TEST_T(api, io_ring_accept_close_refuses_at_once_thread, 60)
{
    close_refuses(BY_THREAD);
}

TEST_T(api, io_ring_accept_close_refuses_at_once_task, 60)
{
    close_refuses(BY_TASK);
}

TEST_T(api, io_ring_accept_forget_refuses_at_once, 60)
{
    close_refuses(BY_FORGET);
}

/* ---- an acceptor through the ring does not make the poller poll ----------
 * The only task waiting is an acceptor parked on the multishot's queue:
 * its wake-up comes from the ring's reap, so neither the busy worker
 * (every IO_TICK decisions) nor the monitor (every WEFT_POLL_GAP_NS)
 * may poll the epoll instance for it. It did: the wait counted in the
 * poller's waiters, and echo's worker made 30,411 empty epoll_wait
 * calls against 3,841 io_uring_enter in 2 s. A yielder makes YIELDS
 * decisions and sleeps, then a connection shows the acceptor still
 * works. */

enum { YIELDS = 20000 };

typedef struct {
    int lfd;
    int got;
} quiet_ctx;

static void *quiet_acceptor(void *arg)
{
    quiet_ctx *c = arg;
    int fd = weft_accept(c->lfd, NULL, NULL, 0);
    c->got = fd >= 0;
    if (fd >= 0)
        CHECK_OK(weft_close(fd));
    return NULL;
}

static void *quiet_yielder(void *arg)
{
    (void)arg;
    for (int i = 0; i < YIELDS; i++)
        weft_yield();
    weft_sleep_ns(20 * MS);
    return NULL;
}

TEST_T(api, io_ring_accept_waiter_does_not_poll, 60)
{
    weft_rt *rt = ring_rt(1);
    struct sockaddr_in addr;
    quiet_ctx c = {.lfd = listener(&addr, 16)};
    weft_task t;
    CHECK_OK(weft_spawn(rt, &t, quiet_acceptor, &c, NULL));
    weft_stats st;
    for (int i = 0;; i++) { /* until the acceptor has parked */
        CHECK_OK(weft_stats_get(rt, &st));
        if (st.io_waits >= 1)
            break;
        CHECK_CMP_INT(i, <, 10000);
        usleep(1000);
    }
    uint64_t polls = st.io_polls + st.io_blocking_polls;
    test_run(rt, quiet_yielder, NULL);
    CHECK_OK(weft_stats_get(rt, &st));
    CHECK_EQ_U64(st.io_polls + st.io_blocking_polls, polls);
    close(dial(&addr));
    CHECK_OK(weft_join(t, NULL));
    CHECK_EQ_INT(c.got, 1);
    CHECK_OK(weft_close(c.lfd));
    test_rt_destroy_clean(rt);
}

/* ---- a past deadline sees what the ring completed -------------------------
 * weft.h: "a deadline already in the past still tries once". The
 * multishot is armed (an accept timed out), a client connects, and the
 * task keeps its worker busy for 20 ms (usleep: the worker reaps nothing
 * meanwhile); an accept with a deadline long past must return the
 * connection the multishot took. It said -ETIMEDOUT, three rounds of
 * three (found by a program written from weft.h), while a weft_sleep_ns
 * in place of the usleep, or the poller's backend, gave the connection. */

typedef struct {
    int lfd;
    struct sockaddr_in addr;
    int got[3];
} past_ctx;

static void *past_acceptor(void *arg)
{
    past_ctx *c = arg;
    CHECK_EQ_INT(
        weft_accept_until(c->lfd, NULL, NULL, 0, weft_now_ns() + 2 * MS),
        -ETIMEDOUT);
    for (int i = 0; i < 3; i++) {
        int cl = dial(&c->addr);
        usleep(20000);
        c->got[i] = weft_accept_until(c->lfd, NULL, NULL, 0, 1);
        if (c->got[i] >= 0)
            CHECK_OK(weft_close(c->got[i]));
        close(cl);
    }
    return NULL;
}

TEST_T(api, io_ring_accept_past_deadline_reaps, 60)
{
    weft_rt *rt = ring_rt(1);
    past_ctx c = {.lfd = listener(&c.addr, 16)};
    test_run(rt, past_acceptor, &c);
    for (int i = 0; i < 3; i++)
        CHECK_CMP_INT(c.got[i], >=, 0);
    CHECK_OK(weft_close(c.lfd));
    test_rt_destroy_clean(rt);
}
