/*
 * uring.c - a worker's io_uring (uring.h): the io_uring backend of the
 * descriptor calls, chosen by WEFT_IO=uring (docs/decisions/0015-io-
 * uring.md). It takes read, recv, write and send of stream sockets and
 * read and write of regular files from tasks, with their deadlines as
 * linked timeouts, and multishot accepts (io/accept.c); everything else
 * (other descriptors, the other calls, plain threads) stays on the
 * poller.
 *
 * The ring. One per worker, made by the first task that makes a call on
 * that worker, with SINGLE_ISSUER and DEFER_TASKRUN when the kernel has
 * them (then only the worker's thread enters the ring, and completions
 * are run only when it asks for them: no task_work interrupts it). Only
 * the worker's thread touches it: the task that writes a submission runs
 * on that thread, and weft code is never preempted (weft_text), so the
 * write is not interleaved with the worker's own use of the ring.
 *
 * An operation. Its record (weft_uop) lives on the parked task's stack:
 * the task fills a submission whose user_data is the record, links the
 * record into the ring's list and parks until the record says done. Each
 * completion stores the result, then done (release), then unparks the
 * task (the park's WAKE bit covers an unpark that comes first).
 *
 * A multishot (weft__uring_multi_accept). Its record is on the heap, not
 * a stack: it outlives the task that armed it. Its user_data is tagged
 * (TAG_MULTI, the low bit), and each completion goes to its handler,
 * which belongs to the layer above (io/accept.c: push the descriptor,
 * wake the takers); the last one (no IORING_CQE_F_MORE) unlinks and
 * frees it. It is in the ring's list like any operation, with the
 * listener's generation, so the close scan and the shutdown cancel-all
 * below cancel it too. A reap counts each multishot completion as a
 * task woken, whatever the handler did, so that the idle path that
 * reaped it looks for work again before it sleeps: the handler's
 * wake-ups go onto this worker's queues, and a worker that slept on
 * them would leave them there until its next completion.
 *
 * When it reaps. Submissions wait in the ring and go to the kernel, and
 * completions are reaped, with one io_uring_enter: on the worker's
 * fairness tick (every FAIR_TICK decisions) and when it goes idle, not
 * every IO_TICK as the poller is polled: in echo (1 worker, 100
 * connections) reaping every IO_TICK gave 111-113k msg/s against
 * 124k without, at the same p99 (0.77-0.90 ms): each reap is a system
 * call, and the tasks it wakes run before the next one anyway. A worker
 * whose task does not switch reaps nothing until it is preempted; no
 * other thread may enter the ring (the monitor, which polls the epoll
 * instance for such workers, cannot).
 *
 * Sleeping. An idle worker with operations in flight must stay able to
 * reap them, so it sleeps in io_uring_enter, not on its futex. The
 * wake-up protocol of idle.c stays as it is: the worker arms, in its
 * ring, a futex wait on its own `sleep` word with the value 1 (the
 * kernel checks the value when the wait is armed, as futex(2) does; Linux
 * 6.7's IORING_OP_FUTEX_WAIT), and weft__idle_wake's futex wake of that
 * word completes it. So the proof in idle.c holds word for word: the
 * futex wait has moved into the ring. A wait armed for one sleep and not
 * ended (the worker woke for a completion) stays armed: every wake of the
 * word wakes all its waiters (idle.c, rt.c), so such a wait never takes
 * a wake-up meant for the thread's own futex wait; a later wake ends it,
 * which is then a spurious round of a later sleep.
 * (stress.io_new_work_while_workers_sleep_with_reads_in_flight hangs in
 * two runs of two when a wake wakes one waiter.) A worker that also holds
 * the poller's blocker role arms a poll of the epoll instance, whose
 * eventfd weft__poller_kick writes: readiness and kicks reach it too.
 *
 * Cancelling. Shutdown: the task raises its in-wait flag before it
 * queues anything (weft__wait_enter, the Dekker pair of cancel.c), so
 * either it sees the shutdown and queues nothing, or the canceller's
 * wake-up runs it on some worker while the op is in flight; the ring's
 * own worker, at its next reap, sees the shutdown and queues a cancel of
 * every operation after those begun (ANY | ALL), and the task returns
 * the op's -ECANCELED. The task, woken while its op is in flight,
 * tells that worker as a close does (below): it may be asleep in its
 * ring while the task runs on another. weft_close: the descriptor's generation moves
 * (io/fd.c), then rt->uring_closes, and the ring's worker (recorded per
 * descriptor) is woken by the RMW on idle, as weft__wake_one wakes; at
 * its next reap, or in its re-check before it sleeps, each worker whose
 * count is behind scans its list and cancels every op of an old
 * generation. An op that begins after the close either saw the new
 * generation (the check just before it is queued, on the ring's thread,
 * with no scan between) or is in the list before the count moves, and
 * the scan finds it. A scan costs the worker's ops in flight, once per
 * reap in which closes happened (not once per close).
 */
#include "uring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../base/clock.h"
#include "../base/env.h"
#include "../base/sysmark.h"
#include "park.h"
#include "runq.h"
#include "worker.h"

/* The WEFT_IO_FB_* reasons: a word for weft_dump, a phrase for
 * weft_last_error. */
static const struct {
    const char *name, *text;
} fb[] = {
    {"none", "none"},
    {"not_built", "weft was built without liburing"},
    {"setup", "io_uring_setup failed"},
    {"kernel", "the kernel lacks IORING_OP_FUTEX_WAIT (Linux 6.7)"},
    {"ring", "a worker's ring could not be made"},
};

static int fb_index(int why)
{
    return why >= 0 && why < (int)(sizeof fb / sizeof fb[0]) ? why : 0;
}

const char *weft__uring_fb_text(int why)
{
    return fb[fb_index(why)].text;
}

const char *weft__uring_fb_name(int why)
{
    return fb[fb_index(why)].name;
}

#ifdef WEFT_HAVE_URING
#include <liburing.h>
#include <linux/futex.h>
#include <poll.h>

#define RLX memory_order_relaxed

#ifndef IORING_OP_FUTEX_WAIT_NR
#define IORING_OP_FUTEX_WAIT_NR 51 /* Linux 6.7 uapi */
#endif
#define FUTEX2_SIZE_U32_ 0x02
#define FUTEX2_PRIVATE_ 128

#define TAG_IGNORE ((uint64_t)1) /* a linked timeout's own completion */
#define TAG_FUTEX ((uint64_t)2)  /* the idle futex wait */
#define TAG_EPOLL ((uint64_t)3)  /* the poll of the epoll instance */
#define TAG_MULTI ((uint64_t)1)  /* low bit of a multishot's record */
/* A submission's user_data is its record's address, tagged with the
 * ring's count of submissions in bits 56-62 (user addresses are under
 * 2^56 on every ISA this builds for). Why: a linked timeout that fires as
 * its operation completes cancels that operation by user_data, from task
 * work that DEFER_TASKRUN runs at the ring's next enter. By then the
 * completion may have been reaped and the task, at the same stack depth,
 * may have queued its next operation with a record at the same address:
 * the timeout cancelled it (-ECANCELED, no close, no shutdown: 976 of
 * 2,000 rounds of a read whose data came at its deadline followed by a
 * read without one; found by a program written from weft.h). The tag
 * makes the next operation's user_data differ. */
#define SEQ_SHIFT 56
#define SEQ_MASK ((uint64_t)0x7f)
#define ADDR_MASK ((UINT64_C(1) << SEQ_SHIFT) - 1)
#define RING_ENTRIES 256

typedef struct weft_uop {
    struct weft_uop *next, *prev; /* the ring's list of operations in
                                     flight; owner only */
    weft_uring_multi_fn multi;    /* a multishot's handler (heap record,
                                     user_data tagged MULTI), else NULL */
    void *arg;                    /* its argument */
    struct weft_rt *rt;
    uint32_t slot, gen;            /* the task, to unpark */
    const _Atomic uint32_t *fdgen; /* the descriptor's generation word */
    uint32_t fgen;                 /* its value when the op began */
    int res;
    int cancelled; /* a cancel was submitted for it */
    uint64_t data; /* its user_data (new_data) */
    _Atomic uint32_t done;
    struct __kernel_timespec ts;
} weft_uop;

typedef struct weft_uring {
    struct io_uring ring;
    uint32_t inflight;    /* operations submitted or waiting, not reaped */
    uint32_t fresh;       /* of those, begun since the last cancel-all */
    uint32_t seen_closes; /* rt->uring_closes at the last scan */
    weft_uop *ops;        /* in flight, newest first */
    int futex_armed, epoll_armed;
    uint32_t seq; /* submissions of records: user_data's tag */
} weft_uring;

/* Whether some runtime of the process uses the backend: io/fd.c's first
 * test on every call, before it looks the runtime up. */
static _Atomic int chosen;

int weft__uring_chosen(void)
{
    return atomic_load_explicit(&chosen, RLX);
}

void weft__uring_note_use(void)
{
    atomic_store_explicit(&chosen, 1, RLX);
}

/* Make a ring as the backend needs it: SINGLE_ISSUER and DEFER_TASKRUN
 * when the kernel has them (Linux 6.1), else plain; and the futex wait
 * in the ring (Linux 6.7), which is what lets the worker sleep in it:
 * without, no ring. WEFT_IO_FB_NONE, or the reason and *err. */
static int ring_make(struct io_uring *ring, int *err)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    int e = io_uring_queue_init_params(RING_ENTRIES, ring, &p);
    if (e) {
        memset(&p, 0, sizeof p);
        e = io_uring_queue_init_params(RING_ENTRIES, ring, &p);
    }
    if (e) {
        *err = -e;
        return WEFT_IO_FB_SETUP;
    }
    struct io_uring_probe *pr = io_uring_get_probe_ring(ring);
    int ok = pr && io_uring_opcode_supported(pr, IORING_OP_FUTEX_WAIT_NR);
    if (pr)
        io_uring_free_probe(pr);
    if (!ok) {
        io_uring_queue_exit(ring);
        *err = ENOSYS;
        return WEFT_IO_FB_KERNEL;
    }
    *err = 0;
    return WEFT_IO_FB_NONE;
}

/* The probe's answer: reason + 1 (0 not asked yet) and its errno. Two
 * threads that ask at once both probe, and agree. */
static _Atomic int probed, probed_errno;

int weft__uring_probe(int *err)
{
    int r = atomic_load_explicit(&probed, memory_order_acquire);
    if (!r) {
        struct io_uring ring;
        int e;
        int why = ring_make(&ring, &e);
        if (why == WEFT_IO_FB_NONE)
            io_uring_queue_exit(&ring);
        atomic_store_explicit(&probed_errno, e, RLX);
        /* Release: pairs with the acquire load above (the errno). */
        atomic_store_explicit(&probed, why + 1, memory_order_release);
        r = why + 1;
    }
    *err = atomic_load_explicit(&probed_errno, RLX);
    return r - 1;
}

static weft_uring *ring_of(weft_worker *w)
{
    if (weft_likely(w->uring != NULL))
        return w->uring == (void *)1 ? NULL : w->uring;
    /* An isolated task's calls go to the poller: a ring of its identity
     * would be reaped by nobody once the task parks and the identity
     * retires. */
    if (w->iso_of) {
        w->uring = (void *)1;
        return NULL;
    }
    int why = WEFT_IO_FB_RING, err = ENOMEM;
    weft__sys_enter(); /* libc: not preempted (base/sysmark.h) */
    weft_uring *u = calloc(1, sizeof *u);
    if (u)
        why = ring_make(&u->ring, &err);
    if (why != WEFT_IO_FB_NONE)
        free(u);
    weft__sys_leave();
    if (why != WEFT_IO_FB_NONE) {
        w->uring = (void *)1;
        /* Seen by weft_stats: this worker's calls go to the poller. */
        atomic_store_explicit(&w->rt->io_fallback_errno, err, RLX);
        atomic_store_explicit(&w->rt->io_fallback, WEFT_IO_FB_RING, RLX);
        return NULL;
    }
    w->uring = u;
    return u;
}

/* w's ring if it has one made, else NULL. */
static inline weft_uring *ring_made(weft_worker *w)
{
    return w->uring == (void *)1 ? NULL : w->uring;
}

static struct io_uring_sqe *sqe_of(weft_uring *u)
{
    struct io_uring_sqe *s = io_uring_get_sqe(&u->ring);
    if (weft_unlikely(!s)) {
        /* Full: submit what waits (the worker's thread: weft code is
         * not preempted, and liburing's is called with preemption
         * off). */
        weft_preempt_disable();
        weft__sys_enter();
        io_uring_submit(&u->ring);
        weft__sys_leave();
        weft_preempt_enable();
        s = io_uring_get_sqe(&u->ring);
    }
    return s;
}

/* The user_data of o's submission, kept in o->data: its address, a
 * multishot's tagged MULTI, and the ring's sequence tag (SEQ_SHIFT). */
static inline uint64_t new_data(weft_uring *u, weft_uop *o)
{
    uint64_t a = (uint64_t)(uintptr_t)o | (o->multi ? TAG_MULTI : 0);
    u->seq++;
    o->data = a | (u->seq & SEQ_MASK) << SEQ_SHIFT;
    return o->data;
}

static void link_op(weft_uring *u, weft_uop *o)
{
    o->prev = NULL;
    o->next = u->ops;
    if (u->ops)
        u->ops->prev = o;
    u->ops = o;
}

static void unlink_op(weft_uring *u, weft_uop *o)
{
    if (o->prev)
        o->prev->next = o->next;
    else
        u->ops = o->next;
    if (o->next)
        o->next->prev = o->prev;
}

int weft__uring_io(int op, int fd, void *buf, size_t n, int flags, int64_t off,
                   uint64_t deadline, const _Atomic uint32_t *fdgen,
                   uint32_t fgen, ssize_t *res)
{
    weft_caller me;
    if (!weft__caller(&me))
        return -ENOSYS;
    weft_worker *w = weft__worker_self();
    weft_uring *u = ring_of(w);
    if (!u)
        return -ENOSYS;
    if (deadline != WEFT_NO_DEADLINE && deadline <= weft__clock_ns())
        return -ENOSYS; /* try once: the poller's path does */
    unsigned kind = op == WEFT_UOP_RECV || op == WEFT_UOP_READ
                        ? WEFT_WK_FD_READ
                        : WEFT_WK_FD_WRITE;
    /* The in-wait flag before anything is queued (cancel.c): after a
     * shutdown nothing is. */
    if (weft__wait_enter(me.rt, me.slot, kind,
                         (const void *)(uintptr_t)(fd + 1))) {
        *res = -ECANCELED;
        return 0;
    }
    /* Closed since the caller read the generation: no operation. The
     * check and the queueing below run on the ring's thread with no
     * scan between them (weft code is not preempted), so a close either
     * moved the generation before this load (seen here) or bumps
     * rt->uring_closes after the operation is in the list, and the
     * scan that follows finds it. */
    /* seq_cst: the load of io/fd.c's pair (weft__io_uring_run). */
    if (atomic_load_explicit(fdgen, memory_order_seq_cst) != fgen) {
        weft__wait_leave(me.rt, me.slot);
        *res = -ECANCELED;
        return 0;
    }
    struct io_uring_sqe *s = sqe_of(u);
    if (!s) {
        weft__wait_leave(me.rt, me.slot);
        return -ENOSYS;
    }
    weft_uop o;
    o.multi = NULL;
    o.rt = me.rt;
    o.slot = me.slot;
    o.gen = weft__task_hgen(me.rt, me.slot);
    o.fdgen = fdgen;
    o.fgen = fgen;
    o.res = 0;
    o.cancelled = 0;
    atomic_store_explicit(&o.done, 0, RLX);
    switch (op) {
    case WEFT_UOP_RECV:
        io_uring_prep_recv(s, fd, buf, n, flags);
        break;
    case WEFT_UOP_SEND:
        io_uring_prep_send(s, fd, buf, n, flags | MSG_NOSIGNAL);
        break;
    case WEFT_UOP_READ: /* off -1: at the file position */
        io_uring_prep_read(s, fd, buf, (unsigned)n, (uint64_t)off);
        break;
    default:
        io_uring_prep_write(s, fd, buf, (unsigned)n, (uint64_t)off);
        break;
    }
    io_uring_sqe_set_data64(s, new_data(u, &o));
    stat_inc(&w->st.uring_ops);
    u->inflight++;
    u->fresh++;
    link_op(u, &o);
    if (deadline != WEFT_NO_DEADLINE) {
        struct io_uring_sqe *t = sqe_of(u);
        if (t) {
            s->flags |= IOSQE_IO_LINK;
            o.ts.tv_sec = (long long)(deadline / 1000000000u);
            o.ts.tv_nsec = (long long)(deadline % 1000000000u);
            io_uring_prep_link_timeout(t, &o.ts, IORING_TIMEOUT_ABS);
            io_uring_sqe_set_data64(t, TAG_IGNORE);
        }
    }
    atomic_fetch_add_explicit(&me.rt->poller.waits, 1, RLX);
    /* Until the completion, whatever else unparks it. A shutdown's
     * wake-up may run this task on another worker while the ring's own
     * sleeps: it is told as a close tells it (weft__uring_closed, whose
     * re-check before sleeping has no lost wake-up), and its next reap
     * sees the shutdown and cancels (cancels, below). Acquire: pairs
     * with drain's release store of done (the result). */
    int owner = (int)w->id + 1;
    while (!atomic_load_explicit(&o.done, memory_order_acquire)) {
        weft__task_park();
        if (weft__wait_cancelled(me.rt) &&
            !atomic_load_explicit(&o.done, memory_order_acquire))
            weft__uring_closed(me.rt, owner);
    }
    weft__wait_leave(me.rt, me.slot);
    if (o.res == -ECANCELED && deadline != WEFT_NO_DEADLINE &&
        weft__clock_ns() >= deadline)
        o.res = -ETIMEDOUT;
    *res = o.res;
    return 0;
}

int weft__uring_multi_accept(int fd, const _Atomic uint32_t *fdgen,
                             uint32_t fgen, weft_uring_multi_fn fn, void *arg)
{
    weft_worker *w = weft__worker_self();
    if (!w || !w->current)
        return -ENOSYS;
    weft_uring *u = ring_of(w);
    if (!u)
        return -ENOSYS;
    weft__sys_enter(); /* libc: not preempted (base/sysmark.h) */
    weft_uop *o = calloc(1, sizeof *o);
    weft__sys_leave();
    if (!o)
        return -ENOMEM;
    /* As weft__uring_io's check: a close either moved the generation
     * before this load, or finds the record in the list (the scan). */
    /* seq_cst: the load of io's pair (the descriptor's uring_w). */
    struct io_uring_sqe *s = NULL;
    if (atomic_load_explicit(fdgen, memory_order_seq_cst) == fgen)
        s = sqe_of(u);
    if (!s) {
        weft__sys_enter();
        free(o);
        weft__sys_leave();
        return atomic_load_explicit(fdgen, RLX) == fgen ? -ENOSYS : -ECANCELED;
    }
    o->multi = fn;
    o->arg = arg;
    o->rt = w->rt;
    o->fdgen = fdgen;
    o->fgen = fgen;
    io_uring_prep_multishot_accept(s, fd, NULL, NULL,
                                   SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(s, new_data(u, o));
    stat_inc(&w->st.uring_ops);
    u->inflight++;
    u->fresh++;
    link_op(u, o);
    /* Submitted now, while the caller still holds the number's
     * reference: the kernel takes the file the number names when it
     * reads the submission, and after the caller leaves the number may be
     * closed and name another file by the worker's next reap. */
    weft__sys_enter();
    io_uring_submit(&u->ring);
    weft__sys_leave();
    return (int)w->id + 1;
}

/* A completion of the multishot o: to its handler. The last one (no
 * F_MORE) ends the operation; a handler that asks for a stop gets a
 * cancel (its completion is then the last). */
static void multi_done(weft_uring *u, weft_uop *o, const struct io_uring_cqe *c)
{
    int more = (c->flags & IORING_CQE_F_MORE) != 0;
    int stop = o->multi(o->arg, c->res, more, o->fgen);
    if (!more) {
        unlink_op(u, o);
        u->inflight--;
        free(o); /* the reaper's thread: weft code, under the mark */
    } else if (stop && !o->cancelled) {
        struct io_uring_sqe *s = io_uring_get_sqe(&u->ring);
        if (s) { /* else asked again at its next completion */
            io_uring_prep_cancel64(s, o->data, 0);
            io_uring_sqe_set_data64(s, TAG_IGNORE);
            o->cancelled = 1;
        }
    }
}

int weft__uring_busy(weft_worker *w)
{
    weft_uring *u = ring_made(w);
    return u && (u->inflight || io_uring_sq_ready(&u->ring));
}

/* Hand out every completion waiting; the number of tasks woken. */
static int drain(weft_worker *w, weft_uring *u)
{
    struct io_uring_cqe *c;
    unsigned head, n = 0;
    int woken = 0;
    w->wake_fifo = 1; /* FIFO behind the LIFO slot (worker.c) */
    io_uring_for_each_cqe(&u->ring, head, c)
    {
        n++;
        uint64_t d = c->user_data;
        if (d == TAG_IGNORE)
            continue;
        if (d == TAG_FUTEX) {
            u->futex_armed = 0;
            continue;
        }
        if (d == TAG_EPOLL) {
            u->epoll_armed = 0;
            continue;
        }
        d &= ADDR_MASK;
        if (d & TAG_MULTI) {
            /* Its handler may have woken tasks (onto this worker's
             * queues): counted, so that the idle path looks again
             * before it sleeps. */
            multi_done(u, (weft_uop *)(uintptr_t)(d & ~TAG_MULTI), c);
            woken++;
            continue;
        }
        weft_uop *o = (weft_uop *)(uintptr_t)d;
        unlink_op(u, o);
        struct weft_rt *rt = o->rt;
        uint32_t slot = o->slot, gen = o->gen;
        o->res = c->res;
        /* Release: pairs with the task's acquire load; after it the
         * record may be gone. */
        atomic_store_explicit(&o->done, 1, memory_order_release);
        u->inflight--;
        weft__task_unpark(rt, slot, gen);
        woken++;
    }
    w->wake_fifo = 0;
    io_uring_cq_advance(&u->ring, n);
    (void)w;
    return woken;
}

/* Cancels this worker owes: every operation begun before a shutdown
 * (one cancel-all after them), and every one whose descriptor
 * weft_close closed (a scan of the list when rt->uring_closes moved).
 * A cancel is queued behind what it cancels, so it is submitted with or
 * after it. */
static void cancels(weft_worker *w, weft_uring *u)
{
    weft_rt *rt = w->rt;
    if (weft_unlikely(u->fresh && weft__wait_cancelled(rt))) {
        struct io_uring_sqe *s = io_uring_get_sqe(&u->ring);
        if (s) {
            io_uring_prep_cancel64(
                s, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
            io_uring_sqe_set_data64(s, TAG_IGNORE);
            u->fresh = 0;
        }
    }
    uint32_t c = atomic_load_explicit(&rt->uring_closes, memory_order_acquire);
    if (weft_unlikely(c != u->seen_closes)) {
        u->seen_closes = c;
        for (weft_uop *o = u->ops; o; o = o->next)
            if (!o->cancelled &&
                atomic_load_explicit(o->fdgen, RLX) != o->fgen) {
                struct io_uring_sqe *s = io_uring_get_sqe(&u->ring);
                if (!s) {
                    u->seen_closes = c - 1; /* again at the next reap */
                    break;
                }
                io_uring_prep_cancel64(s, o->data, 0);
                io_uring_sqe_set_data64(s, TAG_IGNORE);
                o->cancelled = 1;
            }
    }
}

/*
 * Isolation. The ring is made with SINGLE_ISSUER (and DEFER_TASKRUN,
 * whose completions are run only when the issuer enters): a worker moved
 * to another thread by isolation got EEXIST from every io_uring_enter,
 * its submissions never reached the kernel and its tasks never woke,
 * while its idle path spun on the error (found by a program written
 * from weft.h: a task blocked in pthread_join for 150 ms, then a read).
 * So a worker whose ring is idle leaves it to the isolation identity,
 * which frees it when it retires, and makes a new one on its next
 * thread; a worker whose ring has operations in flight is not isolated
 * (the monitor asks again at its next tick; only this thread can reap
 * those completions, and it runs the task until it yields, as without
 * isolation). Runs in the SIGURG handler on the ring's thread, which
 * was running the task's own code: the ring's fields are the owner's.
 */
int weft__uring_isolate(weft_worker *w, weft_worker *iso)
{
    weft_uring *u = ring_made(w);
    if (!u)
        return 1;
    if (u->inflight || io_uring_sq_ready(&u->ring))
        return 0;
    if (iso) {
        iso->uring_old = u;
        w->uring = NULL;
    }
    return 1;
}

void weft__uring_retire(weft_worker *iso)
{
    weft_uring *u = iso->uring_old;
    if (!u)
        return;
    iso->uring_old = NULL;
    io_uring_queue_exit(&u->ring);
    free(u);
}

int weft__uring_self(void)
{
    weft_worker *w = weft__worker_self();
    return w && w->current && ring_of(w) ? (int)w->id + 1 : 0;
}

int weft__uring_reap_self(void)
{
    /* The ring is the worker's thread's, and so is this task's code (the
     * header: weft code is not preempted), as when it queues an op. */
    weft_worker *w = weft__worker_self();
    return w && w->current && ring_made(w) ? weft__uring_reap(w) : 0;
}

void weft__uring_closed(weft_rt *rt, int wid)
{
    /* Release: pairs with cancels' acquire load (the generation moved
     * before). */
    atomic_fetch_add_explicit(&rt->uring_closes, 1, memory_order_release);
    /* The RMW on idle, as weft__wake_one's (idle.c): either the worker's
     * re-check before it sleeps sees the new count, or this sees it
     * asleep and wakes it. */
    if (wid > 0 && (uint32_t)wid <= rt->nworkers &&
        atomic_fetch_add_explicit(&rt->idle, 0, memory_order_acq_rel))
        weft__idle_wake(&rt->workers[wid - 1]);
}

int weft__uring_closes_seen(weft_worker *w)
{
    weft_uring *u = ring_made(w);
    if (!u)
        return 1;
    /* Acquire: as cancels' load (the generation moved before). */
    uint32_t c =
        atomic_load_explicit(&w->rt->uring_closes, memory_order_acquire);
    if (c == u->seen_closes)
        return 1;
    /* Nothing in flight (the list is the owner's, and this is the owner):
     * no operation of a closed descriptor to cancel; one queued later
     * checks its descriptor's generation itself (weft__uring_io). Without
     * this an idle worker whose ring had nothing left to reap saw the
     * count move after any weft_close and never slept (about one CPU,
     * found by a program written from weft.h). */
    if (!u->ops) {
        u->seen_closes = c;
        return 1;
    }
    return 0;
}

int weft__uring_reap(weft_worker *w)
{
    weft_uring *u = ring_made(w);
    if (!u)
        return 0;
    cancels(w, u);
    weft__sys_enter();
    io_uring_submit_and_get_events(&u->ring);
    weft__sys_leave();
    return drain(w, u);
}

void weft__uring_sleep(weft_worker *w, int blocker, uint64_t deadline)
{
    weft_uring *u = ring_made(w);
    if (!u)
        return;
    if (!u->futex_armed) {
        struct io_uring_sqe *s = io_uring_get_sqe(&u->ring);
        if (s) {
            io_uring_prep_rw(IORING_OP_FUTEX_WAIT_NR, s,
                             FUTEX2_SIZE_U32_ | FUTEX2_PRIVATE_,
                             (void *)&w->sleep, 0, 1);
            s->addr3 = FUTEX_BITSET_MATCH_ANY;
            io_uring_sqe_set_data64(s, TAG_FUTEX);
            u->futex_armed = 1;
        }
    }
    if (blocker && !u->epoll_armed) {
        struct io_uring_sqe *s = io_uring_get_sqe(&u->ring);
        if (s) {
            io_uring_prep_poll_add(s, w->rt->poller.epfd, POLLIN);
            io_uring_sqe_set_data64(s, TAG_EPOLL);
            u->epoll_armed = 1;
        }
    }
    cancels(w, u);
    struct __kernel_timespec ts, *tsp = NULL;
    if (deadline) {
        uint64_t now = weft__clock_ns();
        uint64_t d = deadline > now ? deadline - now : 0;
        ts.tv_sec = (long long)(d / 1000000000u);
        ts.tv_nsec = (long long)(d % 1000000000u);
        tsp = &ts;
    }
    struct io_uring_cqe *c;
    weft__sys_enter();
    io_uring_submit_and_wait_timeout(&u->ring, &c, 1, tsp, NULL);
    weft__sys_leave();
    drain(w, u);
    if (blocker)
        weft__poller_poll_blocker(w->rt, &w->pollev);
}

void weft__uring_destroy(weft_worker *w)
{
    weft_uring *u = ring_made(w);
    w->uring = NULL;
    if (!u)
        return;
    /* Multishots: the completions no reap took go to their handlers (an
     * accepted descriptor must reach someone who closes it), then each
     * still armed gets its last call. Only those: a task's record was on
     * a stack that is gone. No io_uring_enter: this is not the ring's
     * thread. */
    struct io_uring_cqe *c;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&u->ring, head, c)
    {
        n++;
        uint64_t d = c->user_data;
        if (d > TAG_EPOLL && (d & TAG_MULTI)) {
            weft_uop *o = (weft_uop *)(uintptr_t)(d & ADDR_MASK & ~TAG_MULTI);
            int more = (c->flags & IORING_CQE_F_MORE) != 0;
            if (!more)
                o->cancelled = 2; /* ended: its last call is this */
            o->multi(o->arg, c->res, more, o->fgen);
        }
    }
    io_uring_cq_advance(&u->ring, n);
    for (weft_uop *o = u->ops, *next; o; o = next) {
        next = o->next;
        if (o->multi) {
            if (o->cancelled != 2)
                o->multi(o->arg, -ECANCELED, 0, o->fgen);
            free(o);
        }
    }
    io_uring_queue_exit(&u->ring);
    free(u);
}

#else /* no liburing */

int weft__uring_probe(int *err)
{
    *err = 0;
    return WEFT_IO_FB_NOT_BUILT;
}
int weft__uring_chosen(void)
{
    return 0;
}
void weft__uring_note_use(void)
{
}
int weft__uring_io(int op, int fd, void *buf, size_t n, int flags, int64_t off,
                   uint64_t deadline_ns, const _Atomic uint32_t *fdgen,
                   uint32_t fgen, ssize_t *res)
{
    (void)op, (void)fd, (void)buf, (void)n, (void)flags, (void)off,
        (void)deadline_ns, (void)fdgen, (void)fgen, (void)res;
    return -ENOSYS;
}
int weft__uring_closes_seen(struct weft_worker *w)
{
    (void)w;
    return 1;
}
int weft__uring_busy(struct weft_worker *w)
{
    (void)w;
    return 0;
}
int weft__uring_reap(struct weft_worker *w)
{
    (void)w;
    return 0;
}
void weft__uring_sleep(struct weft_worker *w, int blocker, uint64_t d)
{
    (void)w, (void)blocker, (void)d;
}
void weft__uring_destroy(struct weft_worker *w)
{
    (void)w;
}
int weft__uring_self(void)
{
    return 0;
}
int weft__uring_reap_self(void)
{
    return 0;
}
int weft__uring_isolate(struct weft_worker *w, struct weft_worker *iso)
{
    (void)w, (void)iso;
    return 1;
}
void weft__uring_retire(struct weft_worker *iso)
{
    (void)iso;
}
int weft__uring_multi_accept(int fd, const _Atomic uint32_t *fdgen,
                             uint32_t fgen, weft_uring_multi_fn fn, void *arg)
{
    (void)fd, (void)fdgen, (void)fgen, (void)fn, (void)arg;
    return -ENOSYS;
}
void weft__uring_closed(struct weft_rt *rt, int wid)
{
    (void)rt, (void)wid;
}
#endif
