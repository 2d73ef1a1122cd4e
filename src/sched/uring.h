/*
 * uring.h - a worker's io_uring (uring.c): the io_uring backend of the
 * descriptor calls (issue 15), chosen by cfg.io (WEFT_IO=uring|auto). A ring per
 * worker, made at the first call a task makes on it; the task writes its
 * submission from its own stack record and parks; the worker submits
 * and reaps in batches, on its fairness tick and when it goes idle, and an
 * idle worker with operations in flight sleeps in io_uring_enter, its
 * futex wait armed in the ring (IORING_OP_FUTEX_WAIT), so that the
 * wake-up protocol of idle.c holds unchanged.
 *
 * Built only with liburing (WEFT_HAVE_URING); without it every call
 * here says "not available" and the epoll poller does the work.
 */
#ifndef WEFT_SCHED_URING_H
#define WEFT_SCHED_URING_H

#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <sys/types.h>

struct weft_worker;
struct weft_rt;

/* The operations the backend makes: recv(2) and send(2) of a stream
 * socket; pread(2) and pwrite(2) of a regular file (offset -1: at the
 * file position, as read(2) and write(2)). */
enum { WEFT_UOP_RECV, WEFT_UOP_SEND, WEFT_UOP_READ, WEFT_UOP_WRITE };

/* Can this process use the backend? The kernel is asked once (a ring
 * made with the flags and the operations the backend needs, then
 * closed): WEFT_IO_FB_NONE, or the WEFT_IO_FB_* reason it cannot, with
 * the errno in *err. Any thread. */
int weft__uring_probe(int *err);

/* What a WEFT_IO_FB_* reason means, in a few words; and its one-word
 * name (weft_dump's io_fallback=). Signal safe. */
const char *weft__uring_fb_text(int why);
const char *weft__uring_fb_name(int why);

/* Does any runtime of the process use the backend? A runtime that does
 * calls weft__uring_note_use at its creation, before any call can
 * reach it. Any thread. */
int weft__uring_chosen(void);
void weft__uring_note_use(void);

/* The calling task makes operation op on fd (buf, n, flags as recv(2)
 * or send(2) take them, off as pread(2) and pwrite(2) do, -1 for the
 * file position) in its worker's ring and parks until it
 * completes or deadline_ns passes (WEFT_NO_DEADLINE: none). Sets *res
 * to the count or -errno (-ETIMEDOUT at the deadline) and returns 0;
 * returns -ENOSYS when the caller is not a task or has no ring (then
 * the caller uses the poller). Task only. */
int weft__uring_io(int op, int fd, void *buf, size_t n, int flags, int64_t off,
                   uint64_t deadline_ns, const _Atomic uint32_t *fdgen,
                   uint32_t fgen, ssize_t *res);

/* A multishot operation's handler: called with each completion's
 * result (for accept, a new descriptor or -errno), `more` 0 on the last
 * one (the operation has ended), and the descriptor generation it was
 * armed for. A nonzero return asks that the operation be cancelled (a
 * last completion follows). Runs on the ring's worker's thread in its
 * reap (weft code: not preempted), or at the runtime's destroy, where
 * every multishot still armed gets a last call with -ECANCELED. */
typedef int (*weft_uring_multi_fn)(void *arg, int res, int more, uint32_t fgen);

/* Arm a multishot accept(2) of the listener fd (each accepted
 * descriptor O_NONBLOCK | O_CLOEXEC) in the calling task's worker's
 * ring; it is cancelled like an operation of the generation fgen of
 * *fdgen (weft__uring_closed, shutdown). Its completions go to fn(arg,
 * ...) until the last. The worker's id + 1 (what weft__uring_closed
 * takes), or -ENOSYS (not a task, or no ring), -ECANCELED (the
 * generation moved), -ENOMEM. Task only. */
int weft__uring_multi_accept(int fd, const _Atomic uint32_t *fdgen,
                             uint32_t fgen, weft_uring_multi_fn fn, void *arg);

/* Has w scanned its operations since the last weft_close of a
 * descriptor that the backend used (rt->uring_closes)? Owner only: its
 * idle re-check, so that a close that finds it about to sleep is
 * handled before it sleeps. */
int weft__uring_closes_seen(struct weft_worker *w);

/* Does w's ring have operations in flight or waiting to be submitted?
 * Owner only. */
int weft__uring_busy(struct weft_worker *w);

/* Submit w's waiting operations and reap its completions without
 * blocking; the number of tasks woken. Owner only. */
int weft__uring_reap(struct weft_worker *w);

/* The idle worker w sleeps in its ring (instead of its futex) until a
 * completion, a futex wake of w->sleep, readiness on the runtime's
 * poller when `blocker` (w holds the poller's blocker role), or
 * deadline_ns (0: none). Owner only, in idle.c's sleep protocol. */
void weft__uring_sleep(struct weft_worker *w, int blocker,
                       uint64_t deadline_ns);

/* Isolation (isolate.c) is about to move worker w to another thread and
 * leave its task on this one, under the identity iso. A ring made with
 * SINGLE_ISSUER only ever takes submissions from the thread that made
 * it. 1: go on; w's ring, if it had one, idle, is left to iso (freed by
 * weft__uring_retire) and w makes a new one on its next thread. 0:
 * refuse the isolation, w's ring has operations in flight, whose
 * completions only this thread can reap. This thread, in the handler. */
int weft__uring_isolate(struct weft_worker *w, struct weft_worker *iso);

/* Free what weft__uring_isolate left to iso. Its thread, at retire. */
void weft__uring_retire(struct weft_worker *iso);

/* The calling task's worker's id + 1, its ring made if it had none;
 * 0 for a plain thread or a worker whose ring cannot be made. */
int weft__uring_self(void);

/* The calling task's worker reaps its ring now (when it has one), and
 * the number of completions handed out: for a call whose deadline has
 * passed, so that what the kernel has already completed, a connection a
 * multishot accept took while the task kept the worker busy, is its
 * answer (io/accept.c). 0 on a plain thread. */
int weft__uring_reap_self(void);

/* A descriptor whose operations may be in flight in the ring of worker
 * wid - 1 (0: none known) changed generation (weft_close): the workers
 * scan their operations and cancel those of old generations. Any
 * thread, after the generation moved. */
void weft__uring_closed(struct weft_rt *rt, int wid);

/* Close w's ring. Destroyer, after w has stopped. */
void weft__uring_destroy(struct weft_worker *w);

#endif
