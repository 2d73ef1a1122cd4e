/*
 * accept.c - weft_accept through the io_uring backend: one multishot
 * accept per listener and runtime, and the queue of descriptors it
 * accepted, from which tasks on any worker take (docs/decisions/0015-
 * io-uring.md, "Accept").
 *
 * Why. Through the poller an accept costs a wake-up and an accept4(2)
 * per connection, and a burst of connections sends every accepting
 * task to the kernel in turn. A multishot accept is armed once and
 * posts a completion per connection, with the descriptor already made,
 * to the ring of the worker that armed it; the connection is taken from
 * memory.
 *
 * The queue (weft_acceptq, one per descriptor number and runtime, made
 * at the first accept through the ring and kept until the runtime's
 * destroy) holds the descriptors of the listener's current generation:
 * the multishot's handler (on_accept, on the ring's worker) pushes one
 * only when the record's generation is still the one the multishot was
 * armed for, else closes it; weft_close, weft_fd_forget and a new file
 * on the number move the generation first, then close what the queue
 * holds (weft__acceptq_forget). Both sides do that under the queue's
 * lock, so a descriptor is either pushed before the close empties the
 * queue or sees the new generation: none is left behind, none is
 * handed out from a closed listener.
 *
 * Taking one. A task locks the queue: a descriptor there is its answer;
 * else an error the multishot ended with (EMFILE, say: returned once,
 * not spun on); else it waits on the listener's read queue of waits
 * (fd.c), as a call that got EAGAIN does, but without registering the
 * listener with the poller: the handler, after it pushed, wakes those
 * waits or, when none is queued, sets the read direction's ready flag,
 * which a task consumes before it parks. A push that the task's look at
 * the queue missed came after it unlocked, so its wake-up comes after
 * too and finds the task queued or the flag set: no wake-up is lost.
 *
 * Arming. The task that finds no multishot armed (none yet, or the last
 * ended: an error, a cancel) and fewer than LOW descriptors queued arms
 * one in its worker's ring; when it found the queue empty it first makes
 * one accept4(2) itself, so that a connection already waiting, or the
 * descriptor limit (EMFILE, at once and without parking, as through the
 * poller), is its answer, and only EAGAIN arms. It arms with the same generation check and the same
 * record of which ring holds it (uring_w) as a read through the ring, so
 * weft_close cancels it by the same proof (uring.c). A handler that
 * sees HIGH descriptors queued asks for a cancel: a listener that no
 * task accepts from holds at most HIGH descriptors plus what the kernel
 * had accepted when the cancel landed, and the rest wait in the
 * kernel's backlog, as with accept4(2). The handler's last call
 * (no more completions) clears `armed` and wakes the waits, so that one
 * of them arms again.
 *
 * What it changes for the caller. The flags may be SOCK_NONBLOCK and
 * SOCK_CLOEXEC only (others go the poller's way, where accept4 judges
 * them); the descriptor is both, as every weft_accept's is. The peer's
 * address comes from getpeername(2) when asked for (a multishot's one
 * address buffer would be overwritten by the next connection); a peer
 * that has already reset gets a zero-length address. A listener held by
 * a multishot stays open in the kernel until weft_close or
 * weft_fd_forget (or the runtime's destroy) cancels it: close(2) alone
 * frees the number, not the socket (weft.h says so). weft_close and
 * weft_fd_forget return only once the cancel has completed
 * (weft__acceptq_holds, fd.c's ring_release_wait).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../base/spin.h"
#include "../base/sysmark.h"
#include "../sched/runtime.h"
#include "../sched/uring.h"
#include "fd.h"

#define RLX memory_order_relaxed

enum {
    HIGH = 64, /* queued: the handler asks the multishot to stop */
    LOW = 16   /* queued, under: a taker arms one again */
};

struct weft_acceptq {
    _Atomic uint32_t lock;
    weft_fdrec *r; /* the listener's record */
    weft_rt *rt;
    int *fd; /* queued descriptors, [head, n) */
    uint32_t head, n, cap;
    int err;   /* an error the multishot ended with, or 0 */
    int armed; /* a multishot of generation armed_gen is armed */
    uint32_t armed_gen;
    /* (generation + 1) << 1 | listening: the answer of SO_ACCEPTCONN for
     * that generation, 0 none yet; one word, read without the lock (a
     * writer stores a whole answer; two for one generation agree). */
    _Atomic uint64_t listen;
    struct weft_acceptq *next; /* every queue of the process (qs) */
};

/* Every queue, for the destroyer; made and freed under qs_lock. */
static pthread_mutex_t qs_lock = PTHREAD_MUTEX_INITIALIZER;
static weft_acceptq *qs;

static void close_fd(int fd)
{
    weft__sys_enter();
    close(fd);
    weft__sys_leave();
}

/* Push fd on q (its lock held): 0, or -1 when it cannot grow. */
static int push(weft_acceptq *q, int fd)
{
    if (q->n == q->cap) {
        if (q->head) {
            memmove(q->fd, q->fd + q->head,
                    (size_t)(q->n - q->head) * sizeof *q->fd);
            q->n -= q->head;
            q->head = 0;
        } else {
            uint32_t cap = q->cap ? q->cap * 2 : HIGH;
            weft__sys_enter(); /* libc: not preempted (base/sysmark.h) */
            int *a = realloc(q->fd, (size_t)cap * sizeof *a);
            weft__sys_leave();
            if (!a)
                return -1;
            q->fd = a;
            q->cap = cap;
        }
    }
    q->fd[q->n++] = fd;
    return 0;
}

/* The multishot's handler (uring.h): a connection, an error, or its
 * end. */
static int on_accept(void *arg, int res, int more, uint32_t fgen)
{
    weft_acceptq *q = arg;
    int stale = -1, wake = 0, stop = 0;
    weft__spin_lock(&q->lock);
    uint32_t gen = atomic_load_explicit(weft__fdrec_gen(q->r), RLX);
    if (res >= 0) {
        if (gen != fgen || push(q, res))
            stale = res;
        else {
            wake = 1;
            stop = q->n - q->head >= HIGH;
        }
    } else if (gen == fgen && res != -ECANCELED) {
        q->err = res;
        wake = 1;
    }
    int ended = 0;
    if (!more && q->armed && q->armed_gen == fgen) {
        q->armed = 0; /* a waiting task arms again */
        ended = 1;
    }
    weft__spin_unlock(&q->lock);
    if (stale >= 0)
        close_fd(stale); /* of a listener closed since, or no memory */
    /* The waits of the current generation: woken for what was pushed,
     * and when the multishot they relied on ended, whatever its
     * generation, so that one of them arms again. */
    if ((wake && gen == fgen) || ended)
        weft__fdrec_wake(q->r, DIR_READ, gen);
    return stop || gen != fgen;
}

/* The listener's queue in this runtime, made at first use; NULL when
 * fd is not a listening socket (for this generation) or no memory. */
static weft_acceptq *queue_of(weft_rt *rt, weft_fdrec *r, int fd, uint32_t gen)
{
    _Atomic(weft_acceptq *) *slot = weft__fdrec_acceptq(r);
    /* Acquire: pairs with the release store below (the queue made). */
    weft_acceptq *q = atomic_load_explicit(slot, memory_order_acquire);
    if (weft_unlikely(!q)) {
        weft__sys_enter();
        pthread_mutex_lock(&qs_lock);
        q = atomic_load_explicit(slot, memory_order_acquire);
        if (!q && (q = calloc(1, sizeof *q))) {
            q->r = r;
            q->rt = rt;
            q->next = qs;
            qs = q;
            atomic_store_explicit(slot, q, memory_order_release);
        }
        pthread_mutex_unlock(&qs_lock);
        weft__sys_leave();
        if (!q)
            return NULL;
    }
    uint64_t l = atomic_load_explicit(&q->listen, RLX);
    int listening = (int)(l & 1);
    if (weft_unlikely(l >> 1 != (uint64_t)gen + 1)) {
        int on = 0;
        socklen_t len = sizeof on;
        weft__sys_enter();
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len))
            on = 0;
        weft__sys_leave();
        listening = on != 0;
        atomic_store_explicit(
            &q->listen, ((uint64_t)gen + 1) << 1 | (uint64_t)listening, RLX);
    }
    return listening ? q : NULL;
}

/* The caller holds a reference on fd's number (calls.c, from before
 * this first touches the descriptor: fd.c, weft__io_run_ring). */
int weft__io_uring_accept(int fd, int flags, uint64_t deadline, int *res)
{
    if (!weft__uring_chosen() || (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)))
        return -ENOSYS;
    weft_rt *rt = NULL;
    int err;
    weft_fdrec *r = weft__fdrec_of(fd, &rt, &err);
    if (err) {
        *res = err; /* as the poller's path would say */
        return 0;
    }
    if (!r || !rt->io_uring || !weft__fdrec_stream(fd, r))
        return -ENOSYS;
    _Atomic uint32_t *gp = weft__fdrec_gen(r);
    uint32_t gen = atomic_load_explicit(gp, memory_order_acquire);
    /* The generation, then the mark, after the caller's reference (as
     * fd.c's ring_run): a weft_close that moved the generation before
     * that load is seen here, so nothing is cached or armed for a
     * generation whose close has already looked at the queue. */
    if (weft__fd_closing(fd)) {
        *res = -ECANCELED;
        return 0;
    }
    weft_acceptq *q = queue_of(rt, r, fd, gen);
    if (!q)
        return -ENOSYS;
    int c, reaped = 0;
    for (;;) {
        int arm = 0;
        weft__spin_lock(&q->lock);
        uint32_t left = q->n - q->head;
        if (left) {
            c = q->fd[q->head++];
            if (!--left)
                q->head = q->n = 0;
        } else if (q->err) {
            c = q->err;
            q->err = 0;
        } else {
            c = -EAGAIN;
        }
        /* A multishot armed for an older generation (its listener was
         * closed; its cancel may not have landed) does not hold off
         * this one's. */
        if ((!q->armed || q->armed_gen != gen) && left < LOW &&
            (c >= 0 || c == -EAGAIN)) {
            arm = 1;
            q->armed = 1;
            q->armed_gen = gen;
        }
        weft__spin_unlock(&q->lock);
        if (arm && c == -EAGAIN) {
            /* Nothing armed: a connection already waiting, or an error
             * (EMFILE at the descriptor limit), is the call's answer at
             * once, as accept4(2) gives it; only EAGAIN arms. */
            weft__sys_enter();
            do
                c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            while (c < 0 && (errno == ECONNABORTED || errno == EINTR));
            c = c >= 0 ? c : -errno;
            weft__sys_leave();
            if (c == -EWOULDBLOCK)
                c = -EAGAIN;
            if (c != -EAGAIN) {
                weft__spin_lock(&q->lock);
                if (q->armed_gen == gen)
                    q->armed = 0;
                weft__spin_unlock(&q->lock);
                break;
            }
        }
        if (arm) {
            weft__fdrec_ring_owner(r, weft__uring_self());
            int wid = weft__uring_multi_accept(fd, gp, gen, on_accept, q);
            if (wid < 0) {
                weft__spin_lock(&q->lock);
                if (q->armed_gen == gen)
                    q->armed = 0;
                weft__spin_unlock(&q->lock);
                /* Tasks that found it armed and wait for its
                 * connections: one of them arms in its own ring, or takes
                 * the poller's path itself. (Their waits do not make the
                 * poller poll: nothing else would wake them.) */
                weft__fdrec_wake(r, DIR_READ, gen);
                if (c == -EAGAIN && wid != -ECANCELED) {
                    /* No ring on this worker, or no memory: the
                     * poller's path. */
                    return -ENOSYS;
                }
                if (c == -EAGAIN)
                    c = -ECANCELED;
            }
        }
        if (c != -EAGAIN)
            break;
        /* A deadline already past tries once: with what the ring has
         * completed, too. A task that kept its worker busy (a blocking
         * call, a long computation) found the queue empty though the
         * multishot had taken a connection long before, its completion
         * not yet reaped (found by a program written from weft.h). */
        if (!reaped && deadline != WEFT_NO_DEADLINE &&
            deadline <= weft_now_ns()) {
            reaped = 1;
            if (weft__uring_reap_self())
                continue;
        }
        if ((err = weft__fdrec_wait(rt, r, fd, DIR_READ, deadline))) {
            c = err;
            break;
        }
        if (weft__fd_closing(fd)) {
            c = -ECANCELED;
            break;
        }
    }
    *res = c;
    return 0;
}

/* Close what q holds (its lock not held). */
static void drain(weft_acceptq *q)
{
    for (;;) {
        int fd = -1;
        weft__spin_lock(&q->lock);
        if (q->head < q->n)
            fd = q->fd[q->head++];
        else
            q->head = q->n = 0;
        q->err = 0;
        weft__spin_unlock(&q->lock);
        if (fd < 0)
            return;
        close_fd(fd);
    }
}

void weft__acceptq_forget(weft_acceptq *q)
{
    drain(q);
}

int weft__acceptq_holds(weft_acceptq *q, uint32_t gen)
{
    weft__spin_lock(&q->lock);
    /* One multishot at a time: a newer generation's is armed only after
     * this one's last call cleared `armed` (on_accept). */
    int held = q->armed && q->armed_gen != gen;
    weft__spin_unlock(&q->lock);
    return held;
}

void weft__acceptq_rt_gone(weft_rt *rt)
{
    pthread_mutex_lock(&qs_lock);
    for (weft_acceptq **p = &qs; *p;) {
        weft_acceptq *q = *p;
        if (q->rt != rt) {
            p = &q->next;
            continue;
        }
        *p = q->next;
        drain(q);
        free(q->fd);
        free(q);
    }
    pthread_mutex_unlock(&qs_lock);
}
