/*
 * fd.c - blocking calls on file descriptors that park only the task
 * (weft.h, "File descriptors"), on the runtime's poller (sched/poller.c).
 *
 * The table. Each runtime that a task has used descriptors from has a
 * table indexed by descriptor number (max: RLIMIT_NOFILE's hard limit,
 * at most 2^20), reserved with MAP_NORESERVE at first use, so its memory
 * is only what the numbers in use touch. A record holds the number's
 * generation (bumped by weft_close and weft_fd_forget), how far weft has
 * taken it (O_NONBLOCK set; registered with the epoll instance), and per
 * direction a ready flag and a FIFO queue of waits (sync/wait.h).
 *
 * Readiness and waits, per direction. The registration is edge-
 * triggered with key (generation << 32 | fd). On an event for a live
 * generation the handler takes the direction's queue lock and wakes
 * every queued wait (each retries its call), or, when none is queued,
 * sets the ready flag. A task whose call returned EAGAIN takes the same
 * lock: it consumes a set ready flag (and retries at once) or queues
 * itself and parks. The flag is what carries an edge that arrives
 * between a task's EAGAIN and its queueing: no edge is lost, at worst a
 * retry is spurious (as in Go's pollDesc).
 *
 * Closing. weft_close bumps the generation under both queue locks of
 * the number in every runtime's table, wakes the queued waits (which
 * see the new generation and return -ECANCELED), removes the
 * registration and closes. An event of the old generation that a poller
 * took before the removal finds a generation that moved and is dropped,
 * under the same lock: no wake-up reaches the next file that reuses the
 * number.
 */
#include "fd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../base/clock.h"
#include "../base/sysmark.h"
#include "../sched/poller.h"
#include "../sched/registry.h"
#include "../sync/wait.h"

#define RLX memory_order_relaxed
#define ACQ memory_order_acquire
#define MAX_FDS (1u << 20)

enum { REC_NEW = 0, REC_NONBLOCK = 1, REC_REGISTERED = 2 };
enum { DIR_READ = 0, DIR_WRITE = 1 };

typedef struct fddir {
    uint32_t ready; /* under q's lock */
    weft_waitq q;
} fddir;

typedef struct fdrec {
    _Atomic uint32_t gen;   /* written under both queue locks */
    _Atomic uint32_t state; /* REC_*; REGISTERED under reg_lock */
    _Atomic uint32_t reg_lock;
    uint32_t notsock; /* send(2) said ENOTSOCK: write(2) it is */
    fddir dir[2];
} fdrec;

typedef struct fdtab {
    uint32_t cap;
    fdrec *rec;
} fdtab;

/* Runtimes with a table, for weft_close from anywhere. A runtime leaves
 * before its table is unmapped (weft__io_rt_gone), under the lock. */
static pthread_mutex_t tabs_lock = PTHREAD_MUTEX_INITIALIZER;
static weft_rt *tabs[WEFT_REGISTRY];
static _Atomic uint32_t ntabs; /* a hint: 0 means no table anywhere */

static void on_event(weft_rt *rt, uint64_t key, uint32_t ev);

/* rt's table, made with its poller at first use; NULL when they cannot
 * be made (errno in *err). */
static fdtab *table(weft_rt *rt, int *err)
{
    /* Acquire: pairs with the release store below. */
    fdtab *t = atomic_load_explicit((_Atomic(void *) *)&rt->fdt, ACQ);
    if (weft_likely(t))
        return t;
    if ((*err = weft__poller_ensure(rt, on_event)))
        return NULL;
    weft__sys_enter();
    pthread_mutex_lock(&tabs_lock);
    t = atomic_load_explicit((_Atomic(void *) *)&rt->fdt, ACQ);
    if (!t) {
        struct rlimit rl;
        uint32_t cap = MAX_FDS;
        if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_max < cap)
            cap = (uint32_t)rl.rlim_max;
        void *m = mmap(NULL, sizeof(fdtab) + (size_t)cap * sizeof(fdrec),
                       PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) {
            *err = -ENOMEM;
        } else {
            t = m;
            t->cap = cap;
            t->rec = (fdrec *)(t + 1);
            for (uint32_t i = 0; i < WEFT_REGISTRY; i++)
                if (!tabs[i]) {
                    tabs[i] = rt;
                    break;
                }
            atomic_fetch_add_explicit(&ntabs, 1, RLX);
            /* Release: the table's header before its pointer. */
            atomic_store_explicit((_Atomic(void *) *)&rt->fdt, t,
                                  memory_order_release);
        }
    }
    pthread_mutex_unlock(&tabs_lock);
    weft__sys_leave();
    return t;
}

void weft__io_rt_gone(weft_rt *rt)
{
    fdtab *t = rt->fdt;
    if (!t)
        return;
    pthread_mutex_lock(&tabs_lock);
    for (uint32_t i = 0; i < WEFT_REGISTRY; i++)
        if (tabs[i] == rt)
            tabs[i] = NULL;
    atomic_fetch_sub_explicit(&ntabs, 1, RLX);
    pthread_mutex_unlock(&tabs_lock);
    munmap(t, sizeof(fdtab) + (size_t)t->cap * sizeof(fdrec));
    rt->fdt = NULL;
}

static inline _Atomic uint32_t *qlock(fddir *d)
{
    return weft__wq_lock_word(&d->q);
}

/* ---- readiness ---------------------------------------------------------- */

static void dir_ready(fdrec *r, int d, uint32_t gen)
{
    fddir *x = &r->dir[d];
    weft__spin_lock(qlock(x));
    weft_wnode *list = NULL;
    if (atomic_load_explicit(&r->gen, RLX) == gen) {
        list = weft__wq_claim_list(&x->q.list_, UINT32_MAX);
        if (!list)
            x->ready = 1;
    }
    weft__spin_unlock(qlock(x));
    weft__wake_list(list, 0);
}

static void on_event(weft_rt *rt, uint64_t key, uint32_t ev)
{
    fdtab *t = rt->fdt;
    uint32_t fd = (uint32_t)key, gen = (uint32_t)(key >> 32);
    if (!t || fd >= t->cap)
        return;
    fdrec *r = &t->rec[fd];
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        dir_ready(r, DIR_READ, gen);
    if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        dir_ready(r, DIR_WRITE, gen);
}

/* ---- the record of a descriptor -------------------------------------------
 * A call from a task: the record of fd in its runtime's table, with
 * O_NONBLOCK set (once per generation). NULL with *err for a plain thread
 * (*err 0) or an error. */
static fdrec *rec_of(int fd, weft_rt **rtp, int *err)
{
    weft_caller me;
    *err = 0;
    if (!weft__caller(&me))
        return NULL;
    fdtab *t = table(me.rt, err);
    if (!t)
        return NULL;
    if (fd < 0 || (uint32_t)fd >= t->cap) {
        *err = -EBADF;
        return NULL;
    }
    fdrec *r = &t->rec[fd];
    *rtp = me.rt;
    if (weft_likely(atomic_load_explicit(&r->state, ACQ) != REC_NEW))
        return r;
    weft__sys_enter();
    int fl = fcntl(fd, F_GETFL);
    int bad = fl < 0 ||
              (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0);
    *err = bad ? -errno : 0;
    weft__sys_leave();
    if (bad)
        return NULL;
    uint32_t n = REC_NEW;
    atomic_compare_exchange_strong_explicit(&r->state, &n, REC_NONBLOCK, RLX,
                                            RLX);
    return r;
}

/* Register fd with rt's poller (once per generation). 0 or -errno. */
static int enroll(weft_rt *rt, fdrec *r, int fd)
{
    if (atomic_load_explicit(&r->state, ACQ) == REC_REGISTERED)
        return 0;
    weft__spin_lock(&r->reg_lock);
    int err = 0;
    if (atomic_load_explicit(&r->state, RLX) != REC_REGISTERED) {
        uint64_t key =
            (uint64_t)atomic_load_explicit(&r->gen, RLX) << 32 | (uint32_t)fd;
        struct epoll_event e = {.events =
                                    EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                .data.u64 = key};
        weft__sys_enter();
        if (epoll_ctl(rt->poller.epfd, EPOLL_CTL_ADD, fd, &e) &&
            (errno != EEXIST ||
             epoll_ctl(rt->poller.epfd, EPOLL_CTL_MOD, fd, &e)))
            err = -errno;
        weft__sys_leave();
        if (!err)
            /* Release: pairs with the acquire load above. */
            atomic_store_explicit(&r->state, REC_REGISTERED,
                                  memory_order_release);
    }
    weft__spin_unlock(&r->reg_lock);
    return err;
}

/* ---- waiting ------------------------------------------------------------ */

/* The calling task waits until fd is ready in direction d: 0 (retry the
 * call), -ETIMEDOUT, -ECANCELED (closed, or shutdown), or -errno. */
static int task_wait(weft_rt *rt, fdrec *r, int fd, int d, uint64_t deadline)
{
    int err = enroll(rt, r, fd);
    if (err)
        return err;
    uint32_t gen = atomic_load_explicit(&r->gen, ACQ);
    fddir *x = &r->dir[d];
    weft_wait wt;
    weft_wnode node = {.wait = &wt};
    if ((err = weft__wait_init(&wt, 0, d ? WEFT_WK_FD_WRITE : WEFT_WK_FD_READ,
                               (const void *)(uintptr_t)(fd + 1))))
        return weft__wait_fini(&wt, err);
    weft__spin_lock(qlock(x));
    if (atomic_load_explicit(&r->gen, RLX) != gen) {
        weft__spin_unlock(qlock(x));
        return weft__wait_fini(&wt, -ECANCELED);
    }
    if (x->ready) {
        x->ready = 0;
        weft__spin_unlock(qlock(x));
        return weft__wait_fini(&wt, 0);
    }
    weft__wq_push(&x->q.list_, &node);
    weft__spin_unlock(qlock(x));
    atomic_fetch_add_explicit(&rt->poller.waiters, 1, RLX);
    err = weft__wait_block(&wt, deadline);
    atomic_fetch_sub_explicit(&rt->poller.waiters, 1, RLX);
    if (err < 0) { /* timed out or cancelled: still queued */
        weft__spin_lock(qlock(x));
        weft__wq_unlink(&x->q.list_, &node);
        weft__spin_unlock(qlock(x));
    } else if (atomic_load_explicit(&r->gen, ACQ) != gen) {
        err = -ECANCELED; /* woken by weft_close */
    }
    return weft__wait_fini(&wt, err);
}

/* A plain thread waits with poll(2) until the deadline. */
static int thread_wait(int fd, int d, uint64_t deadline)
{
    struct pollfd p = {.fd = fd, .events = d ? POLLOUT : POLLIN};
    for (;;) {
        struct timespec ts, *tsp = NULL;
        if (deadline != WEFT_NO_DEADLINE) {
            uint64_t now = weft__clock_ns();
            if (now >= deadline)
                return -ETIMEDOUT;
            ts.tv_sec = (time_t)((deadline - now) / 1000000000u);
            ts.tv_nsec = (long)((deadline - now) % 1000000000u);
            tsp = &ts;
        }
        int n = ppoll(&p, 1, tsp, NULL);
        if (n > 0)
            return (p.revents & POLLNVAL) ? -EBADF : 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

/* Wait for direction d of fd after an EAGAIN: 0 to retry, or -errno. */
static int wait_dir(weft_rt *rt, fdrec *r, int fd, int d, uint64_t deadline)
{
    if (r)
        return task_wait(rt, r, fd, d, deadline);
    return thread_wait(fd, d, deadline);
}

static inline int again(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK;
}

/* The calls: try, and on EAGAIN wait and try again. A plain thread
 * waits first when it has a deadline: its descriptor may be blocking. */
#define IO_LOOP(d, deadline, call)                                             \
    do {                                                                       \
        weft_rt *rt = NULL;                                                    \
        int err;                                                               \
        fdrec *r = rec_of(fd, &rt, &err);                                      \
        if (err)                                                               \
            return err;                                                        \
        if (!r && (deadline) != WEFT_NO_DEADLINE &&                            \
            (err = thread_wait(fd, d, deadline)))                              \
            return err;                                                        \
        for (;;) {                                                             \
            weft__sys_enter();                                                 \
            ssize_t n_ = (call);                                               \
            weft__sys_leave();                                                 \
            if (n_ >= 0)                                                       \
                return n_;                                                     \
            if (errno == EINTR)                                                \
                continue;                                                      \
            if (!again())                                                      \
                return -errno;                                                 \
            if ((err = wait_dir(rt, r, fd, d, deadline)))                      \
                return err;                                                    \
        }                                                                      \
    } while (0)

ssize_t weft_read_until(int fd, void *buf, size_t n, uint64_t deadline)
{
    IO_LOOP(DIR_READ, deadline, read(fd, buf, n));
}

ssize_t weft_read(int fd, void *buf, size_t n)
{
    return weft_read_until(fd, buf, n, WEFT_NO_DEADLINE);
}

ssize_t weft_recv_until(int fd, void *buf, size_t n, int flags,
                        uint64_t deadline)
{
    IO_LOOP(DIR_READ, deadline, recv(fd, buf, n, flags));
}

ssize_t weft_recv(int fd, void *buf, size_t n, int flags)
{
    return weft_recv_until(fd, buf, n, flags, WEFT_NO_DEADLINE);
}

ssize_t weft_send_until(int fd, const void *buf, size_t n, int flags,
                        uint64_t deadline)
{
    IO_LOOP(DIR_WRITE, deadline, send(fd, buf, n, flags | MSG_NOSIGNAL));
}

ssize_t weft_send(int fd, const void *buf, size_t n, int flags)
{
    return weft_send_until(fd, buf, n, flags, WEFT_NO_DEADLINE);
}

/* write(2), as send(2) without SIGPIPE on a socket. */
static ssize_t write_nosig(int fd, const void *buf, size_t n, fdrec *r)
{
    if (!r || !r->notsock) {
        ssize_t k = send(fd, buf, n, MSG_NOSIGNAL);
        if (k >= 0 || errno != ENOTSOCK)
            return k;
        if (r)
            r->notsock = 1; /* a pipe or a file: write(2) from now on */
    }
    return write(fd, buf, n);
}

ssize_t weft_write_until(int fd, const void *buf, size_t n, uint64_t deadline)
{
    IO_LOOP(DIR_WRITE, deadline, write_nosig(fd, buf, n, r));
}

ssize_t weft_write(int fd, const void *buf, size_t n)
{
    return weft_write_until(fd, buf, n, WEFT_NO_DEADLINE);
}

ssize_t weft_write_all(int fd, const void *buf, size_t n, size_t *done)
{
    size_t off = 0;
    while (off < n) {
        ssize_t k = weft_write(fd, (const char *)buf + off, n - off);
        if (k < 0) {
            if (done)
                *done = off;
            return k;
        }
        off += (size_t)k;
    }
    if (done)
        *done = off;
    return (ssize_t)n;
}

/* A number that accept(2) just returned is a new file: whatever the
 * record says of an older one that was closed outside weft is void. */
static void fresh(int fd)
{
    weft_caller me;
    int err;
    if (!weft__caller(&me))
        return;
    fdtab *t = table(me.rt, &err);
    if (!t || fd < 0 || (uint32_t)fd >= t->cap)
        return;
    fdrec *r = &t->rec[fd];
    if (atomic_load_explicit(&r->state, RLX) != REC_NONBLOCK) {
        weft__spin_lock(&r->reg_lock);
        for (int d = 0; d < 2; d++)
            weft__spin_lock(qlock(&r->dir[d]));
        atomic_fetch_add_explicit(&r->gen, 1, RLX);
        r->dir[0].ready = r->dir[1].ready = 0;
        r->notsock = 0;
        atomic_store_explicit(&r->state, REC_NONBLOCK, RLX);
        for (int d = 1; d >= 0; d--)
            weft__spin_unlock(qlock(&r->dir[d]));
        weft__spin_unlock(&r->reg_lock);
    }
}

int weft_accept_until(int fd, struct sockaddr *addr, socklen_t *len, int flags,
                      uint64_t deadline)
{
    weft_rt *rt = NULL;
    int err;
    fdrec *r = rec_of(fd, &rt, &err);
    if (err)
        return err;
    if (!r && deadline != WEFT_NO_DEADLINE &&
        (err = thread_wait(fd, DIR_READ, deadline)))
        return err;
    for (;;) {
        weft__sys_enter();
        int c = accept4(fd, addr, len, flags | SOCK_NONBLOCK | SOCK_CLOEXEC);
        weft__sys_leave();
        if (c >= 0) {
            fresh(c);
            return c;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (!again())
            return -errno; /* EMFILE included: returned, not spun on */
        if ((err = wait_dir(rt, r, fd, DIR_READ, deadline)))
            return err;
    }
}

int weft_accept(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    return weft_accept_until(fd, addr, len, flags, WEFT_NO_DEADLINE);
}

int weft_connect_until(int fd, const struct sockaddr *addr, socklen_t len,
                       uint64_t deadline)
{
    weft_rt *rt = NULL;
    int err;
    fdrec *r = rec_of(fd, &rt, &err);
    if (err)
        return err;
    weft__sys_enter();
    int c = connect(fd, addr, len);
    weft__sys_leave();
    if (!c)
        return 0;
    if (errno != EINPROGRESS && errno != EINTR && !again())
        return -errno;
    if ((err = wait_dir(rt, r, fd, DIR_WRITE, deadline)))
        return err;
    int so = 0;
    socklen_t sl = sizeof so;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl))
        return -errno;
    if (so == EINPROGRESS || so == EALREADY) /* not yet: a spurious edge */
        return weft_connect_until(fd, addr, len, deadline);
    return -so;
}

int weft_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    return weft_connect_until(fd, addr, len, WEFT_NO_DEADLINE);
}

int weft_fd_wait(int fd, int events, uint64_t deadline)
{
    if (!(events & (WEFT_FD_READ | WEFT_FD_WRITE)) ||
        (events & ~(WEFT_FD_READ | WEFT_FD_WRITE)))
        return -EINVAL;
    weft_rt *rt = NULL;
    int err;
    fdrec *r = rec_of(fd, &rt, &err);
    if (err)
        return err;
    if (!r) {
        struct pollfd p = {.fd = fd,
                           .events =
                               (short)((events & WEFT_FD_READ ? POLLIN : 0) |
                                       (events & WEFT_FD_WRITE ? POLLOUT : 0))};
        for (;;) {
            struct timespec ts, *tsp = NULL;
            if (deadline != WEFT_NO_DEADLINE) {
                uint64_t now = weft__clock_ns();
                if (now >= deadline)
                    return -ETIMEDOUT;
                ts.tv_sec = (time_t)((deadline - now) / 1000000000u);
                ts.tv_nsec = (long)((deadline - now) % 1000000000u);
                tsp = &ts;
            }
            int n = ppoll(&p, 1, tsp, NULL);
            if (n > 0)
                return (p.revents & POLLNVAL) ? -EBADF : 0;
            if (n < 0 && errno != EINTR)
                return -errno;
        }
    }
    /* Both directions: wait for reading, which an error or hang-up also
     * ends; a caller that wants either tries both calls. */
    return task_wait(rt, r, fd, (events & WEFT_FD_READ) ? DIR_READ : DIR_WRITE,
                     deadline);
}

/* ---- closing ------------------------------------------------------------ */

/* End generation of fd in rt's table: waits woken (they return
 * -ECANCELED), registration removed. Under tabs_lock. */
static void forget(weft_rt *rt, fdtab *t, int fd)
{
    fdrec *r = &t->rec[fd];
    if (atomic_load_explicit(&r->state, ACQ) == REC_NEW)
        return;
    weft__spin_lock(&r->reg_lock);
    for (int d = 0; d < 2; d++)
        weft__spin_lock(qlock(&r->dir[d]));
    atomic_fetch_add_explicit(&r->gen, 1, RLX);
    weft_wnode *list[2];
    for (int d = 0; d < 2; d++) {
        r->dir[d].ready = 0;
        list[d] = weft__wq_claim_list(&r->dir[d].q.list_, UINT32_MAX);
    }
    int was = (int)atomic_load_explicit(&r->state, RLX);
    atomic_store_explicit(&r->state, REC_NEW, RLX);
    r->notsock = 0;
    for (int d = 1; d >= 0; d--)
        weft__spin_unlock(qlock(&r->dir[d]));
    weft__spin_unlock(&r->reg_lock);
    if (was == REC_REGISTERED) {
        struct epoll_event e = {0};
        weft__sys_enter();
        epoll_ctl(rt->poller.epfd, EPOLL_CTL_DEL, fd, &e);
        weft__sys_leave();
    }
    for (int d = 0; d < 2; d++)
        weft__wake_list(list[d], 0);
}

int weft_fd_forget(int fd)
{
    if (fd < 0)
        return -EBADF;
    if (!atomic_load_explicit(&ntabs, RLX))
        return 0;
    weft__sys_enter();
    pthread_mutex_lock(&tabs_lock);
    for (uint32_t i = 0; i < WEFT_REGISTRY; i++) {
        weft_rt *rt = tabs[i];
        fdtab *t = rt ? rt->fdt : NULL;
        if (t && (uint32_t)fd < t->cap)
            forget(rt, t, fd);
    }
    pthread_mutex_unlock(&tabs_lock);
    weft__sys_leave();
    return 0;
}

int weft_close(int fd)
{
    int err = weft_fd_forget(fd);
    if (err)
        return err;
    weft__sys_enter();
    int c = close(fd);
    weft__sys_leave();
    return c ? -errno : 0;
}
