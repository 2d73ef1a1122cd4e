/*
 * fd.h - the descriptor layer inside: the mechanism (fd.c: tables,
 * readiness, waits, references, closing) as the calls (calls.c) and the
 * runtime's destroyer use it. The public calls are in weft.h, "File
 * descriptors".
 */
#ifndef WEFT_IO_FD_H
#define WEFT_IO_FD_H

#include <stdatomic.h>
#include <stdint.h>

#include "weft.h"

/* The directions of a descriptor. */
enum { DIR_READ = 0, DIR_WRITE = 1 };

/* A descriptor's record in a runtime's table (fd.c); NULL for a call
 * from a plain thread. */
typedef struct weft_fdrec weft_fdrec;

/* One system call on fd with its arguments: its result, or -1 and
 * errno. */
typedef ssize_t (*weft_io_call)(int fd, void *args, weft_fdrec *r);

/* A read or write that the io_uring backend may make instead of the
 * call (sched/uring.h's op): it takes stream sockets (RECV, SEND; READ
 * and WRITE at off -1 are recv and send with no flags) and regular files
 * (READ and WRITE, at off, or at the file position when off is -1). */
typedef struct {
    int op;
    void *buf;
    size_t n;
    int flags;
    int64_t off;
} weft_ring_req;

/* Make the call on fd, and on EAGAIN wait for direction dir (until
 * deadline_ns) and make it again; through the io_uring backend instead
 * when it is chosen and takes `ring` (NULL: never). Holds a reference on
 * the number throughout, taken before anything touches the descriptor
 * (fd.c, "Closing"). The call's result or -errno. Any thread. */
ssize_t weft__io_run_ring(int fd, int dir, uint64_t deadline_ns,
                          weft_io_call call, void *args,
                          const weft_ring_req *ring);

static inline ssize_t weft__io_run(int fd, int dir, uint64_t deadline_ns,
                                   weft_io_call call, void *args)
{
    return weft__io_run_ring(fd, dir, deadline_ns, call, args, NULL);
}

/* fd is a new file (accept(2) just returned it): reset its record. */
void weft__io_fresh(int fd);

/* A task's read of fd returned `got` of `asked` bytes (calls.c, after
 * read, readv and recv without MSG_PEEK): a short one on a TCP socket
 * makes the next read wait first (fd.c, "Short reads"). */
void weft__fdrec_read(weft_fdrec *r, ssize_t got, size_t asked);

/* send(2) said ENOTSOCK for fd: write(2) it is, from now on. */
int weft__fdrec_notsock(const weft_fdrec *r);
void weft__fdrec_set_notsock(weft_fdrec *r, int fd);

/* ---- for the io_uring backend's accept (accept.c) ----
 * A listener's queue of accepted descriptors. */
typedef struct weft_acceptq weft_acceptq;

/* weft_accept through the ring: 0 with *res the new descriptor or
 * -errno, or -ENOSYS when the backend does not take it (not chosen, a
 * plain thread, not a listening stream socket, flags other than
 * SOCK_NONBLOCK and SOCK_CLOEXEC, no ring): then the poller's path.
 * The caller holds a reference on the number (weft__fd_ref_take). */
int weft__io_uring_accept(int fd, int flags, uint64_t deadline_ns, int *res);

/* The listener's generation moved (weft_close, weft_fd_forget, or its
 * number is a new file): what its queue holds is closed. Any thread. */
void weft__acceptq_forget(weft_acceptq *q);

/* 1 while a multishot accept armed for a generation other than gen (an
 * older one: a listener since closed or forgotten) is armed on q, and so
 * holds that socket open in the kernel. Any thread. */
int weft__acceptq_holds(weft_acceptq *q, uint32_t gen);

/* rt is being destroyed, its rings already (their last handler calls
 * made): its queues are closed and freed. Destroyer. */
void weft__acceptq_rt_gone(weft_rt *rt);

/* fd.c's record as accept.c uses it: the task's record of fd (NULL
 * with *err 0 for a plain thread; rec_of); whether fd is a stream
 * socket; the generation word; the number's queue slot; the ring that
 * holds r's operations (worker id + 1: its seq_cst store, before the
 * ring checks the generation); a wait for direction d without
 * registering with the poller (the queue and ready flag only), and the
 * wake-up of that direction's waits, or its ready flag, for generation
 * gen. */
weft_fdrec *weft__fdrec_of(int fd, weft_rt **rt, int *err);
int weft__fdrec_stream(int fd, weft_fdrec *r);
_Atomic uint32_t *weft__fdrec_gen(weft_fdrec *r);
_Atomic(weft_acceptq *) *weft__fdrec_acceptq(weft_fdrec *r);
void weft__fdrec_ring_owner(weft_fdrec *r, int wid);
int weft__fdrec_wait(weft_rt *rt, weft_fdrec *r, int fd, int d,
                     uint64_t deadline_ns);
void weft__fdrec_wake(weft_fdrec *r, int d, uint32_t gen);

/* The reference a call holds on fd's number (fd.c, "Closing"): 0 or
 * -errno; its drop; and whether weft_close has begun on it. */
int weft__fd_ref_take(int fd);
void weft__fd_ref_drop(int fd);
int weft__fd_closing(int fd);

/* rt is being destroyed (its workers and monitor stopped, its tasks'
 * waits ended): forget its table of descriptors. Destroyer. */
void weft__io_rt_gone(weft_rt *rt);

#endif
