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
 * Short reads. A read of a registered TCP socket that returned fewer
 * bytes than asked for took everything the socket held (tcp_recvmsg
 * stops only when its queue is empty or the buffer full), so the next
 * read would only say EAGAIN: that call waits first instead and saves
 * the system call, one of three per request-response round (Tokio's
 * PollEvented clears readiness on a short read for the same reason). No
 * data is stranded by it: any byte that arrives after the short read's
 * scan of the queue raises a new edge, and every edge either wakes the
 * queued waits, which then make the call, or sets the ready flag, which
 * the waiting call consumes before it parks and then makes the call.
 * So whenever data is there, a call starts after it arrived. That holds
 * only if the edge was not spent on something else in between: a
 * weft_fd_wait that a later event ended, say, after which the task's
 * next read would wait for an edge already taken. So the mark is a count,
 * not a flag (as Tokio's clear_readiness checks its tick): `drained`
 * keeps the record's count of read events (`rseq`, bumped under the
 * queue lock by every event of the generation) as it was just after the
 * short read, plus one, and a read waits first only while no event has
 * come since. Any edge taken since then was handled, so a call follows
 * it; one taken before that load either set the ready flag (nobody was
 * queued: the short reader itself was in its call), which the waiting
 * call consumes, or woke waits queued by other tasks, which make their
 * own calls. (The load follows the read(2) in program order; the system
 * call's return keeps it after the kernel's scan.) Data is
 * not all a read can find, though: a short read may also have taken the
 * peer's FIN (tcp_recvmsg eats it after the data) or left a socket error
 * pending, and then the next read returns 0 or the error at once, with
 * no edge to come if the event that told of it was the one that woke
 * this task before its read. So the read side's end is sticky, as
 * Tokio's read_closed is: an event with EPOLLRDHUP, EPOLLHUP or EPOLLERR
 * sets `closed` for the generation (under the queue lock, before the
 * wake-up it causes, so the woken task sees it), and a record with
 * `closed` never waits first. (Found by api.io_short_reads_odd_sizes_
 * lose_nothing under chaos: the EOF after the last bytes timed out.)
 * Only TCP (SO_PROTOCOL at registration): a pipe in packet mode, a
 * datagram or sequenced-packet socket and a Unix stream socket carrying
 * descriptors can all return short with more queued. The one TCP
 * exception is the urgent mark, where a read stops short with data
 * behind it (urgent data, SO_OOBINLINE off); those bytes are read at
 * the next edge. A deadline already past never waits first: it tries
 * the call.
 *
 * Closing. Every call holds a reference on its descriptor number for
 * its whole length (a process-wide word per number, `refs`, shared by
 * tasks of every runtime and plain threads), taken before it first
 * touches the descriptor (weft__io_run_ring). weft_close marks the word
 * CLOSING (new calls fail with -ECANCELED), bumps the generation under
 * both queue locks of the number in every runtime's table, wakes the
 * queued waits (which see the new generation and return -ECANCELED;
 * one that queues after the forget sees the mark under the same lock)
 * and removes the registration; the close(2) itself is made by whoever drops
 * the last reference: weft_close when no call was in flight, else the
 * last call to leave (as Go's poll.FD does). So no call of the old file
 * is still running when the number can be reused, and an event of the
 * old generation that a poller took before the removal finds a
 * generation that moved and is dropped, under the same lock: no wake-up
 * reaches the next file that reuses the number. A call that starts
 * after the close(2) uses whatever the number then is: that race is
 * the caller's, as with close(2) itself.
 */
#include "fd.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../base/clock.h"
#include "../base/error.h"
#include "../base/sysmark.h"
#include "../sched/poller.h"
#include "../sched/registry.h"
#include "../sched/uring.h"
#include "../sync/wait.h"

#define RLX memory_order_relaxed
#define ACQ memory_order_acquire
#define MAX_FDS (1u << 20)

enum { REC_NEW = 0, REC_NONBLOCK = 1, REC_REGISTERED = 2 };

/* fdrec.sock: what a descriptor is, for the io_uring backend. */
enum { KIND_UNKNOWN = 0, KIND_STREAM = 1, KIND_OTHER = 2, KIND_FILE = 3 };

typedef struct fddir {
    uint32_t ready; /* under q's lock */
    weft_waitq q;
} fddir;

typedef struct weft_fdrec {
    _Atomic uint32_t gen;   /* written under both queue locks */
    _Atomic uint32_t state; /* REC_*; REGISTERED under reg_lock */
    _Atomic uint32_t reg_lock;
    _Atomic uint32_t notsock;    /* send(2) said ENOTSOCK: write(2) it is */
    _Atomic uint32_t tcp;        /* a TCP socket: found at registration, read
                             after an acquire of state REGISTERED */
    _Atomic uint32_t drained;    /* a task's last read of it was short: rseq
                                 then + 1, else 0 ("Short reads") */
    _Atomic uint32_t closed;     /* an event said the read side ended (hang-
                                 up or error): no waiting first */
    _Atomic uint32_t rseq;       /* read events of this generation (written
                                 under dir[DIR_READ]'s lock) */
    _Atomic uint32_t sock;       /* KIND_*: what the uring path takes */
    _Atomic uint32_t uring_w;    /* worker id + 1 whose ring had its last
                                 io_uring operation, 0 none */
    _Atomic(weft_acceptq *) acq; /* a listener's queue (accept.c), made
                                    once for the number, kept */
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

/* ---- references on descriptor numbers (header, "Closing") --------------- */

#define CLOSING (UINT32_C(1) << 31)
static _Atomic(_Atomic uint32_t *) refs; /* [MAX_FDS], reserved once */

static _Atomic uint32_t *ref_word(int fd)
{
    if (fd < 0 || (uint32_t)fd >= MAX_FDS)
        return NULL;
    /* Acquire: pairs with the release CAS that published the array. */
    _Atomic uint32_t *a = atomic_load_explicit(&refs, ACQ);
    if (weft_unlikely(!a)) {
        weft__sys_enter();
        void *m =
            mmap(NULL, (size_t)MAX_FDS * sizeof *a, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        weft__sys_leave();
        if (m == MAP_FAILED)
            return NULL;
        _Atomic uint32_t *none = NULL;
        if (atomic_compare_exchange_strong_explicit(
                &refs, &none, (_Atomic uint32_t *)m, memory_order_release, ACQ))
            a = m;
        else {
            munmap(m, (size_t)MAX_FDS * sizeof *a);
            a = none;
        }
    }
    return &a[fd];
}

/* Take a reference for a call on fd: 0, or -ECANCELED while it closes,
 * -ENOMEM when the words cannot be mapped (a call made without its
 * reference could see its number reused under it; and its drop would
 * find the words mapped meanwhile, and take a reference it never had). */
static int ref_take(int fd)
{
    _Atomic uint32_t *w = ref_word(fd);
    if (!w) {
        if (fd < 0)
            return -EBADF;
        if ((uint32_t)fd < MAX_FDS)
            return weft__error_set(-ENOMEM,
                                   "descriptor references: mmap failed");
        return 0; /* past the words: no protection */
    }
    /* Acquire: pairs with the closer's release (its record changes). */
    if (weft_unlikely(atomic_fetch_add_explicit(w, 1, ACQ) & CLOSING)) {
        atomic_fetch_sub_explicit(w, 1, memory_order_release);
        return -ECANCELED;
    }
    return 0;
}

static void do_close(int fd, _Atomic uint32_t *w)
{
    atomic_store_explicit(w, 0, RLX); /* the number's next file: clean */
    weft__sys_enter();
    close(fd);
    weft__sys_leave();
}

/* Drop the call's reference; the last one out of a closing number
 * closes it. */
static void ref_drop(int fd)
{
    _Atomic uint32_t *w = ref_word(fd);
    if (!w)
        return;
    /* acq_rel: the last dropper sees the closer's mark and everything
     * the other callers did before they dropped. */
    if (atomic_fetch_sub_explicit(w, 1, memory_order_acq_rel) == (CLOSING | 1))
        do_close(fd, w);
}

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
            *err = weft__error_set(-ENOMEM,
                                   "the descriptor table: mmap of %zu bytes",
                                   sizeof(fdtab) + (size_t)cap * sizeof(fdrec));
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
    /* After the table left tabs: a weft_close on another thread finds
     * the queues only under tabs_lock (forget_all_). */
    weft__acceptq_rt_gone(rt);
    munmap(t, sizeof(fdtab) + (size_t)t->cap * sizeof(fdrec));
    rt->fdt = NULL;
}

static inline _Atomic uint32_t *qlock(fddir *d)
{
    return weft__wq_lock_word(&d->q);
}

/* ---- readiness ---------------------------------------------------------- */

static void dir_ready(fdrec *r, int d, uint32_t gen, int closed)
{
    fddir *x = &r->dir[d];
    weft__spin_lock(qlock(x));
    weft_wnode *list = NULL;
    if (atomic_load_explicit(&r->gen, RLX) == gen) {
        /* Before the wake-up: the woken task sees both ("Short
         * reads"). */
        if (closed)
            atomic_store_explicit(&r->closed, 1, RLX);
        if (d == DIR_READ)
            atomic_store_explicit(&r->rseq,
                                  atomic_load_explicit(&r->rseq, RLX) + 1, RLX);
        list = weft__wq_claim_list(&x->q.list_, UINT32_MAX);
        if (!list)
            x->ready = 1;
    }
    weft__spin_unlock(qlock(x));
    weft__wake_list(list, 0);
}

static void on_event(weft_rt *rt, uint64_t key, uint32_t ev)
{
    /* Acquire: pairs with table()'s release store, so the table's cap
     * and records are seen as made (TSan saw a poller read cap with no
     * order to the mmap that made it: a worker polled while another
     * task's first call was making the table). */
    fdtab *t = atomic_load_explicit((_Atomic(void *) *)&rt->fdt, ACQ);
    uint32_t fd = (uint32_t)key, gen = (uint32_t)(key >> 32);
    if (!t || fd >= t->cap)
        return;
    fdrec *r = &t->rec[fd];
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        dir_ready(r, DIR_READ, gen,
                  (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
    if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        dir_ready(r, DIR_WRITE, gen, 0);
}

static int closing(int fd);

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
    /* The caller holds the number's reference. A weft_close that marked
     * it meanwhile leaves the record NEW for the number's next file, whose
     * first call must set O_NONBLOCK again (with the record NONBLOCK, a
     * socket opened later on the number blocked its worker): forget takes
     * this lock after the mark, so either the mark is seen here or forget
     * comes after and resets the state itself. */
    weft__spin_lock(&r->reg_lock);
    int gone = closing(fd);
    uint32_t n = REC_NEW;
    if (!gone)
        atomic_compare_exchange_strong_explicit(&r->state, &n, REC_NONBLOCK,
                                                RLX, RLX);
    weft__spin_unlock(&r->reg_lock);
    if (gone) {
        *err = -ECANCELED;
        return NULL;
    }
    return r;
}

/* Register fd with rt's poller (once per generation). 0 or -errno. */
static int enroll(weft_rt *rt, fdrec *r, int fd)
{
    if (atomic_load_explicit(&r->state, ACQ) == REC_REGISTERED)
        return 0;
    weft__spin_lock(&r->reg_lock);
    /* Not for a number weft_close marked: its registration would outlive
     * the file, and the record say REGISTERED to the next one (as in
     * rec_of, forget takes this lock after the mark). */
    int err = closing(fd) ? -ECANCELED : 0;
    if (!err && atomic_load_explicit(&r->state, RLX) != REC_REGISTERED) {
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
        int proto = 0;
        socklen_t plen = sizeof proto;
        if (!err)
            atomic_store_explicit(
                &r->tcp,
                !getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &plen) &&
                    proto == IPPROTO_TCP,
                RLX);
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

/* The calling task waits until fd is ready in a direction of `dirs`
 * (bit d for direction d; both for weft_fd_wait with both events): 0
 * (retry the call), -ETIMEDOUT, -ECANCELED (closed, or shutdown), or
 * -errno.
 *
 * Both directions: one wait record with a node in each direction's queue,
 * as select links one record into several channels (sync/wait.h, "The
 * claim protocol"). The two queue locks are taken in forget's order, read
 * then write, and held together while the ready flags are read and the
 * nodes queued, so an edge of either direction either set its flag
 * before (consumed here: the call is retried) or finds a node queued
 * after. The first event claims the record and wakes the task; the other
 * direction's event then finds its node's claim taken, drops the node
 * and sets that direction's ready flag, so its edge is not lost either.
 * The woken task unlinks the node still queued (unlinking checks
 * `queued` under the lock) before its record leaves the stack. */
static int queue_wait(weft_rt *rt, fdrec *r, int fd, unsigned dirs,
                      uint64_t deadline, int polled)
{
    int err;
    uint32_t gen = atomic_load_explicit(&r->gen, ACQ);
    unsigned kind = dirs == 3u                ? WEFT_WK_FD_RW
                    : dirs == 1u << DIR_WRITE ? WEFT_WK_FD_WRITE
                                              : WEFT_WK_FD_READ;
    weft_wait wt;
    weft_wnode node[2] = {{.wait = &wt, .index = DIR_READ},
                          {.wait = &wt, .index = DIR_WRITE}};
    if ((err =
             weft__wait_init(&wt, 0, kind, (const void *)(uintptr_t)(fd + 1))))
        return weft__wait_fini(&wt, err);
    for (int d = 0; d < 2; d++)
        if (dirs & 1u << d)
            weft__spin_lock(qlock(&r->dir[d]));
    /* A weft_close marks the number, then forgets it under these locks
     * (gen moves, queued waits are woken): either it forgot before we
     * locked, and its mark is seen here, or it finds our nodes queued.
     * The generation alone missed a close that came between this call's
     * reference and the load of gen above: the call queued under the
     * new generation and was never woken. */
    if (atomic_load_explicit(&r->gen, RLX) != gen || closing(fd)) {
        err = -ECANCELED;
    } else if ((dirs & 1u << DIR_READ && r->dir[DIR_READ].ready) ||
               (dirs & 1u << DIR_WRITE && r->dir[DIR_WRITE].ready)) {
        /* Ready: the caller retries every call it waits for, so every
         * flag it waits on is consumed. */
        for (int d = 0; d < 2; d++)
            if (dirs & 1u << d)
                r->dir[d].ready = 0;
        err = 0;
    } else if (deadline != WEFT_NO_DEADLINE && deadline <= weft__clock_ns()) {
        /* Not ready and already past: no park, so not counted in
         * io_waits (weft_stats: tasks that parked on a descriptor). */
        err = -ETIMEDOUT;
    } else {
        for (int d = 0; d < 2; d++)
            if (dirs & 1u << d)
                weft__wq_push(&r->dir[d].q.list_, &node[d]);
        err = 1; /* queued */
    }
    for (int d = 1; d >= 0; d--)
        if (dirs & 1u << d)
            weft__spin_unlock(qlock(&r->dir[d]));
    if (err != 1)
        return weft__wait_fini(&wt, err);
    /* Only a wait whose edge comes from the poller makes the workers and
     * the monitor poll it (poller.c, "No lost readiness"); an accept
     * through the ring is woken by its worker's reap. Counting those
     * too made a worker whose only such wait was the acceptor's make an
     * empty epoll_wait every IO_TICK decisions: 30,411 of them against
     * 3,841 io_uring_enter in 2 s of echo under strace. */
    if (polled)
        atomic_fetch_add_explicit(&rt->poller.waiters, 1, RLX);
    atomic_fetch_add_explicit(&rt->poller.waits, 1, RLX);
    err = weft__wait_block(&wt, deadline);
    if (polled)
        atomic_fetch_sub_explicit(&rt->poller.waiters, 1, RLX);
    /* Timed out or cancelled: every node is still queued; woken: the
     * claimer popped its node, and the other direction's may be queued. */
    for (int d = 0; d < 2; d++)
        if (dirs & 1u << d && (err < 0 || dirs == 3u)) {
            weft__spin_lock(qlock(&r->dir[d]));
            weft__wq_unlink(&r->dir[d].q.list_, &node[d]);
            weft__spin_unlock(qlock(&r->dir[d]));
        }
    if (err >= 0 && atomic_load_explicit(&r->gen, ACQ) != gen)
        err = -ECANCELED; /* woken by weft_close */
    return weft__wait_fini(&wt, err);
}

static int task_wait(weft_rt *rt, fdrec *r, int fd, unsigned dirs,
                     uint64_t deadline)
{
    int err = enroll(rt, r, fd);
    return err ? err : queue_wait(rt, r, fd, dirs, deadline, 1);
}

int weft__fdrec_wait(weft_rt *rt, fdrec *r, int fd, int d, uint64_t deadline)
{
    return queue_wait(rt, r, fd, 1u << d, deadline, 0);
}

void weft__fdrec_wake(fdrec *r, int d, uint32_t gen)
{
    dir_ready(r, d, gen, 0);
}

/* A plain thread waits with poll(2) for events (POLLIN, POLLOUT) until
 * the deadline. */
static int thread_wait(int fd, short events, uint64_t deadline)
{
    struct pollfd p = {.fd = fd, .events = events};
    for (;;) {
        struct timespec ts, *tsp = NULL;
        uint64_t left = 0;
        if (deadline != WEFT_NO_DEADLINE) {
            /* A deadline in the past still polls once: a ready
             * descriptor is not a timeout. */
            uint64_t now = weft__clock_ns();
            left = now < deadline ? deadline - now : 0;
            ts.tv_sec = (time_t)(left / 1000000000u);
            ts.tv_nsec = (long)(left % 1000000000u);
            tsp = &ts;
        }
        int n = ppoll(&p, 1, tsp, NULL);
        if (n > 0)
            return (p.revents & POLLNVAL) ? -EBADF : 0;
        if (n < 0 && errno != EINTR)
            return -errno;
        if (n == 0 && tsp && !left)
            return -ETIMEDOUT;
    }
}

/* Wait for direction d of fd after an EAGAIN: 0 to retry, or -errno. */
static int wait_dir(weft_rt *rt, fdrec *r, int fd, int d, uint64_t deadline)
{
    if (r)
        return task_wait(rt, r, fd, 1u << d, deadline);
    return thread_wait(fd, d ? POLLOUT : POLLIN, deadline);
}

/* A plain thread's call with a deadline: set O_NONBLOCK on fd, as a
 * task's first call does (weft.h). Polling first and then making the
 * call on a blocking descriptor let the call block past the deadline: a
 * write of more than a pipe holds, a read whose data another reader took
 * first, a connect (found by programs written from weft.h: still blocked
 * seconds after a 100 ms deadline). 0 or -errno. */
static int plain_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK)))
        return -errno;
    return 0;
}

/* Is fd's number closing (weft_close began)? */
static int closing(int fd)
{
    _Atomic uint32_t *w = ref_word(fd);
    return w && (atomic_load_explicit(w, RLX) & CLOSING);
}

static int ring_run(weft_rt *rt, fdrec *r, int fd, const weft_ring_req *q,
                    uint64_t deadline, ssize_t *res);

/* The calls: try, and on EAGAIN wait and try again, holding a reference
 * on the number throughout. The reference comes first, before anything
 * touches the descriptor (the record's fcntl at a task's first call, the
 * ring's getsockopt): a weft_close made from then on leaves the close(2)
 * to this call. (Found by a program written from weft.h: a weft_close
 * that landed during a first call's fcntl closed at once, and the call
 * then read from, or wrote to, the next file on the number, every time.)
 * A plain thread's call with a deadline first sets O_NONBLOCK
 * (plain_nonblock), so that the call itself cannot block past the
 * deadline. */
ssize_t weft__io_run_ring(int fd, int d, uint64_t deadline, weft_io_call call,
                          void *args, const weft_ring_req *ring)
{
    int err = ref_take(fd);
    if (err)
        return err;
    weft_rt *rt = NULL;
    ssize_t res;
    fdrec *r = rec_of(fd, &rt, &err);
    if (err) {
        res = err;
        goto out;
    }
    if (ring && weft__uring_chosen() &&
        !ring_run(rt, r, fd, ring, deadline, &res))
        goto out;
    if (!r && deadline != WEFT_NO_DEADLINE && (err = plain_nonblock(fd))) {
        res = err;
        goto out;
    }
    /* The last read was short: wait first ("Short reads"), unless the
     * read side has ended or the deadline has passed (then the call is
     * tried once). */
    uint32_t mark =
        r && d == DIR_READ ? atomic_load_explicit(&r->drained, RLX) : 0;
    if (mark && mark - 1 == atomic_load_explicit(&r->rseq, RLX) &&
        !atomic_load_explicit(&r->closed, RLX) &&
        (deadline == WEFT_NO_DEADLINE || deadline > weft__clock_ns())) {
        atomic_store_explicit(&r->drained, 0, RLX);
        if ((err = task_wait(rt, r, fd, 1u << d, deadline))) {
            res = err;
            goto out;
        }
        if (closing(fd)) {
            res = -ECANCELED;
            goto out;
        }
    }
    for (;;) {
        weft__sys_enter();
        ssize_t n = call(fd, args, r);
        int e = errno;
        weft__sys_leave();
        if (n >= 0) {
            res = n;
            break;
        }
        if (e == EINTR)
            continue;
        if (e != EAGAIN && e != EWOULDBLOCK) {
            res = -e;
            break;
        }
        if ((err = wait_dir(rt, r, fd, d, deadline))) {
            res = err;
            break;
        }
        if (closing(fd)) {
            res = -ECANCELED;
            break;
        }
    }
out:
    ref_drop(fd);
    return res;
}

/* What fd is, asked once per record (reset when the number is a new
 * file: weft__io_fresh, forget). */
static uint32_t kind_of(int fd, fdrec *r)
{
    uint32_t k = atomic_load_explicit(&r->sock, RLX);
    if (weft_likely(k != KIND_UNKNOWN))
        return k;
    int type;
    socklen_t len = sizeof type;
    struct stat st;
    weft__sys_enter();
    if (!getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len))
        k = type == SOCK_STREAM ? KIND_STREAM : KIND_OTHER;
    else
        k = !fstat(fd, &st) && S_ISREG(st.st_mode) ? KIND_FILE : KIND_OTHER;
    weft__sys_leave();
    /* Kept for the generation, but not once weft_close marked the number
     * (under reg_lock, as rec_of's store): forget may have reset it
     * while getsockopt ran, and the next file on the number, a pipe say,
     * would be taken for this one (a read of it sent as recv: -ENOTSOCK;
     * found by a review's reproducer). */
    weft__spin_lock(&r->reg_lock);
    if (!closing(fd))
        atomic_store_explicit(&r->sock, k, RLX);
    weft__spin_unlock(&r->reg_lock);
    return k;
}

void weft__fdrec_ring_owner(fdrec *r, int wid)
{
    /* seq_cst store, then the ring's seq_cst load of the generation
     * (weft__uring_io, weft__uring_multi_accept): against forget's
     * seq_cst generation bump, then ring_forget's seq_cst exchange of
     * uring_w. In their single total order either this store comes
     * before that exchange (the closer tells the ring's worker) or the
     * bump comes before that load (no operation begins). */
    atomic_store_explicit(&r->uring_w, (uint32_t)wid, memory_order_seq_cst);
}

weft_fdrec *weft__fdrec_of(int fd, weft_rt **rt, int *err)
{
    return rec_of(fd, rt, err);
}

int weft__fdrec_stream(int fd, fdrec *r)
{
    return kind_of(fd, r) == KIND_STREAM;
}

_Atomic uint32_t *weft__fdrec_gen(fdrec *r)
{
    return &r->gen;
}

_Atomic(weft_acceptq *) *weft__fdrec_acceptq(fdrec *r)
{
    return &r->acq;
}

int weft__fd_ref_take(int fd)
{
    return ref_take(fd);
}

void weft__fd_ref_drop(int fd)
{
    ref_drop(fd);
}

int weft__fd_closing(int fd)
{
    return closing(fd);
}

/* The call through the io_uring backend, the reference held: 0 with
 * *res, or nonzero when the backend does not take it (a plain thread, a
 * descriptor it does not take, no ring on this worker): then the
 * poller's path does. */
static int ring_run(weft_rt *rt, fdrec *r, int fd, const weft_ring_req *q,
                    uint64_t deadline, ssize_t *res)
{
    if (!r || !rt->io_uring)
        return -ENOSYS;
    int op = q->op;
    uint32_t k = kind_of(fd, r);
    if (k == KIND_STREAM && q->off < 0) {
        /* read(2) and write(2) of a stream socket: recv and send. */
        if (op == WEFT_UOP_READ)
            op = WEFT_UOP_RECV;
        else if (op == WEFT_UOP_WRITE)
            op = WEFT_UOP_SEND;
    } else if (k != KIND_FILE || op == WEFT_UOP_RECV || op == WEFT_UOP_SEND)
        return -ENOSYS; /* the poller's path gives the system's answer */
    /* The generation, then the mark, both after the reference. A
     * weft_close whose mark came first was seen by ref_take. One whose
     * mark came after it cannot close(2) before this call leaves, and
     * either moves the generation after this read, so the operation is
     * of the old generation and the close cancels it (uring.c), or
     * before it: then its mark, made before the move (a seq_cst RMW,
     * which this acquire load read), is seen below, and nothing is
     * queued. */
    uint32_t gen = atomic_load_explicit(&r->gen, ACQ);
    if (closing(fd)) {
        *res = -ECANCELED;
        return 0;
    }
    weft__fdrec_ring_owner(r, weft__uring_self());
    int err = weft__uring_io(op, fd, q->buf, q->n, q->flags, q->off, deadline,
                             &r->gen, gen, res);
    if (!err && closing(fd))
        *res = -ECANCELED;
    return err;
}

/* After r's generation moved: the ring whose operation of r came last
 * is told, and cancels what is in flight of the old generation
 * (sched/uring.c). */
static void ring_forget(weft_rt *rt, fdrec *r)
{
    /* seq_cst: pairs with weft__fdrec_ring_owner's store (after the
     * generation bump: its header). */
    uint32_t uw =
        atomic_exchange_explicit(&r->uring_w, 0, memory_order_seq_cst);
    if (uw)
        weft__uring_closed(rt, (int)uw);
}

/* A number that accept(2) just returned is a new file: whatever the
 * record says of an older one that was closed outside weft is void. */
void weft__io_fresh(int fd)
{
    weft_caller me;
    int err;
    if (!weft__caller(&me))
        return;
    fdtab *t = table(me.rt, &err);
    if (!t || fd < 0 || (uint32_t)fd >= t->cap)
        return;
    fdrec *r = &t->rec[fd];
    weft_acceptq *q = atomic_load_explicit(&r->acq, ACQ);
    if (atomic_load_explicit(&r->state, RLX) != REC_NONBLOCK || q) {
        weft__spin_lock(&r->reg_lock);
        for (int d = 0; d < 2; d++)
            weft__spin_lock(qlock(&r->dir[d]));
        /* seq_cst: as forget's (the ring's pair, ring_forget). */
        atomic_fetch_add_explicit(&r->gen, 1, memory_order_seq_cst);
        r->dir[0].ready = r->dir[1].ready = 0;
        atomic_store_explicit(&r->notsock, 0, RLX);
        atomic_store_explicit(&r->tcp, 0, RLX);
        atomic_store_explicit(&r->drained, 0, RLX);
        atomic_store_explicit(&r->closed, 0, RLX);
        atomic_store_explicit(&r->rseq, 0, RLX);
        atomic_store_explicit(&r->sock, 0, RLX);
        atomic_store_explicit(&r->state, REC_NONBLOCK, RLX);
        for (int d = 1; d >= 0; d--)
            weft__spin_unlock(qlock(&r->dir[d]));
        weft__spin_unlock(&r->reg_lock);
        /* The number was a listener closed outside weft: what its
         * multishot accepted is closed, and the multishot cancelled
         * (as forget does). */
        if (q) {
            weft__acceptq_forget(q);
            ring_forget(me.rt, r);
        }
    }
}

/* weft_fd_wait from a task: is fd ready for ev already? 1 yes, 0 no,
 * -EBADF. The registration is edge-triggered and a wait sees only edges
 * that come after it is queued (or set the ready flag before): a
 * descriptor that was ready before, whose edge an earlier wait or call
 * took, gives none. weft's own calls wait only after EAGAIN, which the
 * edge model covers; a user's wait may come at any time, so it looks
 * first. (Found by a program written from weft.h: a second wait on a
 * writable socket, or on a socket with unread data, timed out; with no
 * deadline it would have parked for good.) Readiness that comes after
 * the look raises an edge, which the wait then takes. */
static int ready_now(int fd, short ev)
{
    struct pollfd p = {.fd = fd, .events = ev};
    weft__sys_enter();
    int n = poll(&p, 1, 0);
    weft__sys_leave();
    if (n <= 0)
        return 0;
    return (p.revents & POLLNVAL) ? -EBADF : 1;
}

int weft_fd_wait(int fd, int events, uint64_t deadline)
{
    if (!(events & (WEFT_FD_READ | WEFT_FD_WRITE)) ||
        (events & ~(WEFT_FD_READ | WEFT_FD_WRITE)))
        return -EINVAL;
    /* The reference first, as weft__io_run_ring's. */
    int err = ref_take(fd);
    if (err)
        return err;
    weft_rt *rt = NULL;
    fdrec *r = rec_of(fd, &rt, &err);
    short ev = (short)((events & WEFT_FD_READ ? POLLIN : 0) |
                       (events & WEFT_FD_WRITE ? POLLOUT : 0));
    if (err) {
        /* rec_of's error */
    } else if (!r) {
        err = thread_wait(fd, ev, deadline);
    } else if ((err = ready_now(fd, ev)) == 0) {
        err = task_wait(rt, r, fd,
                        (events & WEFT_FD_READ ? 1u << DIR_READ : 0) |
                            (events & WEFT_FD_WRITE ? 1u << DIR_WRITE : 0),
                        deadline);
    }
    ref_drop(fd);
    return err > 0 ? 0 : err;
}

void weft__fdrec_read(fdrec *r, ssize_t got, size_t asked)
{
    /* Acquire: pairs with enroll's release of REGISTERED (tcp). */
    if (r && got > 0 && (size_t)got < asked &&
        atomic_load_explicit(&r->state, ACQ) == REC_REGISTERED &&
        atomic_load_explicit(&r->tcp, RLX))
        atomic_store_explicit(&r->drained,
                              atomic_load_explicit(&r->rseq, RLX) + 1, RLX);
}

int weft__fdrec_notsock(const fdrec *r)
{
    return r && atomic_load_explicit(&r->notsock, RLX);
}

void weft__fdrec_set_notsock(fdrec *r, int fd)
{
    if (!r)
        return;
    /* Under reg_lock and not once closing, as kind_of's store. */
    weft__spin_lock(&r->reg_lock);
    if (!closing(fd))
        atomic_store_explicit(&r->notsock, 1, RLX);
    weft__spin_unlock(&r->reg_lock);
}

/* ---- closing ------------------------------------------------------------ */

/* End generation of fd in rt's table: waits woken (they return
 * -ECANCELED), registration removed. Under tabs_lock. */
/* 1 when a multishot accept of the number's old generation still holds
 * the listener in a ring (ring_release_wait). */
static int forget(weft_rt *rt, fdtab *t, int fd)
{
    fdrec *r = &t->rec[fd];
    /* Even a record no call has taken further than REC_NEW: a call may
     * hold the number's reference while it makes its record (rec_of's
     * fcntl), and its wait must then find the number closing under the
     * queue locks (queue_wait), which needs forget to take them after
     * the mark. */
    weft__spin_lock(&r->reg_lock);
    for (int d = 0; d < 2; d++)
        weft__spin_lock(qlock(&r->dir[d]));
    /* seq_cst: the io_uring backend's pair (uring_w, below). */
    atomic_fetch_add_explicit(&r->gen, 1, memory_order_seq_cst);
    weft_wnode *list[2];
    for (int d = 0; d < 2; d++) {
        r->dir[d].ready = 0;
        list[d] = weft__wq_claim_list(&r->dir[d].q.list_, UINT32_MAX);
    }
    int was = (int)atomic_load_explicit(&r->state, RLX);
    atomic_store_explicit(&r->state, REC_NEW, RLX);
    atomic_store_explicit(&r->notsock, 0, RLX);
    atomic_store_explicit(&r->tcp, 0, RLX);
    atomic_store_explicit(&r->drained, 0, RLX);
    atomic_store_explicit(&r->closed, 0, RLX);
    atomic_store_explicit(&r->rseq, 0, RLX);
    atomic_store_explicit(&r->sock, 0, RLX);
    for (int d = 1; d >= 0; d--)
        weft__spin_unlock(qlock(&r->dir[d]));
    weft__spin_unlock(&r->reg_lock);
    weft_acceptq *q = atomic_load_explicit(&r->acq, ACQ);
    int held = 0;
    if (q) {
        weft__acceptq_forget(q);
        held = weft__acceptq_holds(q, atomic_load_explicit(&r->gen, RLX));
    }
    ring_forget(rt, r);
    if (was == REC_REGISTERED) {
        struct epoll_event e = {0};
        weft__sys_enter();
        epoll_ctl(rt->poller.epfd, EPOLL_CTL_DEL, fd, &e);
        weft__sys_leave();
    }
    for (int d = 0; d < 2; d++)
        weft__wake_list(list[d], 0);
    return held;
}

/* Forget fd in every runtime's table (all: 1 forget, 0 look only); 1 when
 * a ring still holds a listener of its old generation. Queues are freed
 * only after their table left tabs (weft__io_rt_gone), so one found here
 * under tabs_lock is alive. */
static int forget_all_(int fd, int all)
{
    if (!atomic_load_explicit(&ntabs, RLX))
        return 0;
    int held = 0;
    weft__sys_enter();
    pthread_mutex_lock(&tabs_lock);
    for (uint32_t i = 0; i < WEFT_REGISTRY; i++) {
        weft_rt *rt = tabs[i];
        fdtab *t = rt ? rt->fdt : NULL;
        if (!t || (uint32_t)fd >= t->cap)
            continue;
        if (all) {
            held |= forget(rt, t, fd);
        } else {
            fdrec *r = &t->rec[fd];
            weft_acceptq *q = atomic_load_explicit(&r->acq, ACQ);
            held |=
                q && weft__acceptq_holds(q, atomic_load_explicit(&r->gen, RLX));
        }
    }
    pthread_mutex_unlock(&tabs_lock);
    weft__sys_leave();
    return held;
}

static int forget_all(int fd)
{
    return forget_all_(fd, 1);
}

/*
 * A listener's multishot accept (io/accept.c) holds the socket in the
 * kernel until its cancel completes, at the next reap of the ring's
 * worker (ring_forget wakes it when idle). weft_close and weft_fd_forget
 * wait for that, so that once they return the socket is closed and a
 * connect(2) is refused, as after close(2) of a listener nobody else
 * holds (Go's Close waits for its descriptor too). The wait sleeps (a
 * task parks, so the ring's worker may be its own), 10 us doubling to
 * 1 ms, and gives up after RELEASE_WAIT_NS: a worker that does not reap
 * for that long (a task that neither yields nor may be preempted) lets
 * the socket go at its next reap.
 */
#define RELEASE_WAIT_NS (1000ull * 1000 * 1000)

static void ring_release_wait(int fd)
{
    uint64_t t0 = weft_now_ns(), step = 10 * 1000;
    while (forget_all_(fd, 0) && weft_now_ns() - t0 < RELEASE_WAIT_NS) {
        if (weft_sleep_ns(step)) /* shut down: destroy cancels it */
            return;
        if (step < 1000 * 1000)
            step *= 2;
    }
}

int weft_fd_forget(int fd)
{
    if (fd < 0)
        return -EBADF;
    if (forget_all(fd))
        ring_release_wait(fd);
    return 0;
}

int weft_close(int fd)
{
    if (fd < 0)
        return -EBADF;
    _Atomic uint32_t *w = ref_word(fd);
    if (!w) { /* past the table: nothing can be in flight through it */
        int held = forget_all(fd);
        weft__sys_enter();
        int c = close(fd);
        int e = errno;
        weft__sys_leave();
        if (held)
            ring_release_wait(fd);
        return c ? -e : 0;
    }
    /* The mark, and a reference of our own while we forget the number
     * (the registration is removed before anyone closes it). acq_rel:
     * pairs with the callers' reference RMWs (header). */
    uint32_t v = atomic_load_explicit(w, RLX);
    do {
        if (v & CLOSING)
            return -EBADF; /* closed twice */
    } while (!atomic_compare_exchange_weak_explicit(w, &v, (v | CLOSING) + 1,
                                                    memory_order_acq_rel, RLX));
    int held = forget_all(fd);
    /* Drop our reference: with no call in flight we close now; else
     * the last call out does (ref_drop). */
    int c = 0, e = 0;
    if (atomic_fetch_sub_explicit(w, 1, memory_order_acq_rel) ==
        (CLOSING | 1)) {
        atomic_store_explicit(w, 0, RLX);
        weft__sys_enter();
        c = close(fd);
        e = errno;
        weft__sys_leave();
    }
    if (held)
        ring_release_wait(fd);
    return c ? -e : 0;
}
