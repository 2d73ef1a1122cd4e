/*
 * calls.c - the descriptor calls of weft.h ("File descriptors"): each is
 * one system call that weft__io_run (fd.c) tries, and retries after
 * waiting for readiness on EAGAIN, holding a reference on the number.
 * Writes never raise SIGPIPE. On a socket: MSG_NOSIGNAL, and write(2)
 * and writev(2) go through send(2) and sendmsg(2) until the descriptor
 * turns out not to be a socket. On a pipe or anything else: SIGPIPE is
 * blocked on the calling thread for the call, and one the call raised
 * (thread-directed, so pending on this thread alone) is taken back
 * before the mask is restored; the call fails with -EPIPE as on a
 * socket. Two more system calls per write, on pipes only.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fd.h"
#include "../base/sysmark.h"
#include "../sched/uring.h"

typedef struct {
    void *buf;
    size_t n;
    int flags;
} rw_args;

/* ---- SIGPIPE on descriptors that are not sockets ---------------------- */

typedef ssize_t (*plain_write)(int fd, const void *a, size_t n);

static ssize_t write_plain(int fd, const void *buf, size_t n)
{
    return write(fd, buf, n);
}

static ssize_t writev_plain(int fd, const void *iov, size_t cnt)
{
    return writev(fd, iov, (int)cnt);
}

/* w(fd, a, n), a write of `bytes` bytes in all, with no SIGPIPE
 * delivered for it. A write the reader's leaving interrupted raises
 * SIGPIPE too: with -EPIPE when nothing was written, or with a partial
 * count when the writer was blocked part way (a blocking pipe written
 * from a plain thread), so both take back a SIGPIPE this call raised. */
static ssize_t no_sigpipe(plain_write w, int fd, const void *a, size_t n,
                          size_t bytes)
{
    sigset_t pipe, old, pend;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, &old);
    int was = sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE);
    ssize_t k = w(fd, a, n);
    int e = errno;
    if (((k < 0 && e == EPIPE) || (k >= 0 && (size_t)k < bytes)) && !was &&
        !sigismember(&old, SIGPIPE)) {
        static const struct timespec zero = {0, 0};
        /* None pending (a short write for want of room): EAGAIN. */
        while (sigtimedwait(&pipe, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    if (!sigismember(&old, SIGPIPE))
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return k;
}

/* ---- read, write, recv, send ------------------------------------------ */

static ssize_t call_read(int fd, void *a, weft_fdrec *r)
{
    rw_args *x = a;
    ssize_t k = read(fd, x->buf, x->n);
    weft__fdrec_read(r, k, x->n);
    return k;
}

static ssize_t call_recv(int fd, void *a, weft_fdrec *r)
{
    rw_args *x = a;
    ssize_t k = recv(fd, x->buf, x->n, x->flags);
    if (!(x->flags & (MSG_PEEK | MSG_OOB))) /* a peek leaves the data */
        weft__fdrec_read(r, k, x->n);
    return k;
}

static ssize_t call_send(int fd, void *a, weft_fdrec *r)
{
    rw_args *x = a;
    (void)r;
    return send(fd, x->buf, x->n, x->flags | MSG_NOSIGNAL);
}

/* write(2), as send(2) without SIGPIPE on a socket. */
static ssize_t call_write(int fd, void *a, weft_fdrec *r)
{
    rw_args *x = a;
    if (!weft__fdrec_notsock(r)) {
        ssize_t k = send(fd, x->buf, x->n, MSG_NOSIGNAL);
        if (k >= 0 || errno != ENOTSOCK)
            return k;
        weft__fdrec_set_notsock(r, fd); /* a pipe or a file: write(2) now */
    }
    return no_sigpipe(write_plain, fd, x->buf, x->n, x->n);
}

ssize_t weft_read_until(int fd, void *buf, size_t n, uint64_t deadline)
{
    weft_ring_req q = {WEFT_UOP_READ, buf, n, 0, -1};
    rw_args a = {buf, n, 0};
    return weft__io_run_ring(fd, DIR_READ, deadline, call_read, &a, &q);
}

ssize_t weft_read(int fd, void *buf, size_t n)
{
    return weft_read_until(fd, buf, n, WEFT_NO_DEADLINE);
}

ssize_t weft_recv_until(int fd, void *buf, size_t n, int flags,
                        uint64_t deadline)
{
    weft_ring_req q = {WEFT_UOP_RECV, buf, n, flags, -1};
    rw_args a = {buf, n, flags};
    return weft__io_run_ring(fd, DIR_READ, deadline, call_recv, &a, &q);
}

ssize_t weft_recv(int fd, void *buf, size_t n, int flags)
{
    return weft_recv_until(fd, buf, n, flags, WEFT_NO_DEADLINE);
}

ssize_t weft_send_until(int fd, const void *buf, size_t n, int flags,
                        uint64_t deadline)
{
    weft_ring_req q = {WEFT_UOP_SEND, (void *)buf, n, flags, -1};
    rw_args a = {(void *)buf, n, flags};
    return weft__io_run_ring(fd, DIR_WRITE, deadline, call_send, &a, &q);
}

ssize_t weft_send(int fd, const void *buf, size_t n, int flags)
{
    return weft_send_until(fd, buf, n, flags, WEFT_NO_DEADLINE);
}

ssize_t weft_write_until(int fd, const void *buf, size_t n, uint64_t deadline)
{
    weft_ring_req q = {WEFT_UOP_WRITE, (void *)buf, n, 0, -1};
    rw_args a = {(void *)buf, n, 0};
    return weft__io_run_ring(fd, DIR_WRITE, deadline, call_write, &a, &q);
}

ssize_t weft_write(int fd, const void *buf, size_t n)
{
    return weft_write_until(fd, buf, n, WEFT_NO_DEADLINE);
}

/* ---- pread, pwrite -------------------------------------------------------
 * At an offset, without the file position: regular files through the
 * io_uring backend when it is in use (the task parks until the ring's
 * completion), else the system call on the calling thread (a regular
 * file is always "ready"); on anything else the system's answer
 * (ESPIPE on a pipe or socket). */

typedef struct {
    void *buf;
    size_t n;
    off_t off;
} prw_args;

static ssize_t call_pread(int fd, void *a, weft_fdrec *r)
{
    prw_args *x = a;
    (void)r;
    return pread(fd, x->buf, x->n, x->off);
}

static ssize_t call_pwrite(int fd, void *a, weft_fdrec *r)
{
    prw_args *x = a;
    (void)r;
    return pwrite(fd, x->buf, x->n, x->off);
}

ssize_t weft_pread_until(int fd, void *buf, size_t n, off_t off,
                         uint64_t deadline)
{
    if (off < 0)
        return -EINVAL;
    weft_ring_req q = {WEFT_UOP_READ, buf, n, 0, (int64_t)off};
    prw_args a = {buf, n, off};
    return weft__io_run_ring(fd, DIR_READ, deadline, call_pread, &a, &q);
}

ssize_t weft_pread(int fd, void *buf, size_t n, off_t off)
{
    return weft_pread_until(fd, buf, n, off, WEFT_NO_DEADLINE);
}

ssize_t weft_pwrite_until(int fd, const void *buf, size_t n, off_t off,
                          uint64_t deadline)
{
    if (off < 0)
        return -EINVAL;
    weft_ring_req q = {WEFT_UOP_WRITE, (void *)buf, n, 0, (int64_t)off};
    prw_args a = {(void *)buf, n, off};
    return weft__io_run_ring(fd, DIR_WRITE, deadline, call_pwrite, &a, &q);
}

ssize_t weft_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    return weft_pwrite_until(fd, buf, n, off, WEFT_NO_DEADLINE);
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

/* ---- vectors, addresses and messages ------------------------------- */

typedef struct {
    const struct iovec *iov;
    int cnt;
} vec_args;

static ssize_t call_readv(int fd, void *a, weft_fdrec *r)
{
    vec_args *x = a;
    ssize_t k = readv(fd, x->iov, x->cnt);
    if (k > 0) {
        size_t asked = 0;
        for (int i = 0; i < x->cnt; i++)
            asked += x->iov[i].iov_len;
        weft__fdrec_read(r, k, asked);
    }
    return k;
}

/* writev(2), as sendmsg(2) without SIGPIPE on a socket. */
static ssize_t call_writev(int fd, void *a, weft_fdrec *r)
{
    vec_args *x = a;
    if (x->cnt < 0 || x->cnt > IOV_MAX) { /* sendmsg(2) would say EMSGSIZE */
        errno = EINVAL;
        return -1;
    }
    if (!weft__fdrec_notsock(r)) {
        struct msghdr m = {.msg_iov = (struct iovec *)x->iov,
                           .msg_iovlen = (size_t)x->cnt};
        ssize_t k = sendmsg(fd, &m, MSG_NOSIGNAL);
        if (k >= 0 || errno != ENOTSOCK)
            return k;
        weft__fdrec_set_notsock(r, fd);
    }
    size_t bytes = 0;
    for (int i = 0; i < x->cnt; i++)
        bytes += x->iov[i].iov_len;
    return no_sigpipe(writev_plain, fd, x->iov, (size_t)x->cnt, bytes);
}

ssize_t weft_readv_until(int fd, const struct iovec *iov, int cnt,
                         uint64_t deadline)
{
    vec_args a = {iov, cnt};
    return weft__io_run(fd, DIR_READ, deadline, call_readv, &a);
}

ssize_t weft_readv(int fd, const struct iovec *iov, int cnt)
{
    return weft_readv_until(fd, iov, cnt, WEFT_NO_DEADLINE);
}

ssize_t weft_writev_until(int fd, const struct iovec *iov, int cnt,
                          uint64_t deadline)
{
    vec_args a = {iov, cnt};
    return weft__io_run(fd, DIR_WRITE, deadline, call_writev, &a);
}

ssize_t weft_writev(int fd, const struct iovec *iov, int cnt)
{
    return weft_writev_until(fd, iov, cnt, WEFT_NO_DEADLINE);
}

typedef struct {
    void *buf;
    size_t n;
    int flags;
    struct sockaddr *addr; /* const for sendto */
    socklen_t *alen;       /* recvfrom's in-out length */
    socklen_t slen;        /* sendto's length */
} addr_args;

static ssize_t call_recvfrom(int fd, void *a, weft_fdrec *r)
{
    addr_args *x = a;
    (void)r;
    return recvfrom(fd, x->buf, x->n, x->flags, x->addr, x->alen);
}

static ssize_t call_sendto(int fd, void *a, weft_fdrec *r)
{
    addr_args *x = a;
    (void)r;
    return sendto(fd, x->buf, x->n, x->flags | MSG_NOSIGNAL, x->addr, x->slen);
}

ssize_t weft_recvfrom_until(int fd, void *buf, size_t n, int flags,
                            struct sockaddr *addr, socklen_t *len,
                            uint64_t deadline)
{
    addr_args a = {buf, n, flags, addr, len, 0};
    return weft__io_run(fd, DIR_READ, deadline, call_recvfrom, &a);
}

ssize_t weft_recvfrom(int fd, void *buf, size_t n, int flags,
                      struct sockaddr *addr, socklen_t *len)
{
    return weft_recvfrom_until(fd, buf, n, flags, addr, len, WEFT_NO_DEADLINE);
}

ssize_t weft_sendto_until(int fd, const void *buf, size_t n, int flags,
                          const struct sockaddr *addr, socklen_t len,
                          uint64_t deadline)
{
    addr_args a = {(void *)buf, n, flags, (struct sockaddr *)addr, NULL, len};
    return weft__io_run(fd, DIR_WRITE, deadline, call_sendto, &a);
}

ssize_t weft_sendto(int fd, const void *buf, size_t n, int flags,
                    const struct sockaddr *addr, socklen_t len)
{
    return weft_sendto_until(fd, buf, n, flags, addr, len, WEFT_NO_DEADLINE);
}

typedef struct {
    struct msghdr *msg;
    int flags;
} msg_args;

static ssize_t call_recvmsg(int fd, void *a, weft_fdrec *r)
{
    msg_args *x = a;
    (void)r;
    return recvmsg(fd, x->msg, x->flags);
}

static ssize_t call_sendmsg(int fd, void *a, weft_fdrec *r)
{
    msg_args *x = a;
    (void)r;
    return sendmsg(fd, x->msg, x->flags | MSG_NOSIGNAL);
}

ssize_t weft_recvmsg_until(int fd, struct msghdr *msg, int flags,
                           uint64_t deadline)
{
    msg_args a = {msg, flags};
    return weft__io_run(fd, DIR_READ, deadline, call_recvmsg, &a);
}

ssize_t weft_recvmsg(int fd, struct msghdr *msg, int flags)
{
    return weft_recvmsg_until(fd, msg, flags, WEFT_NO_DEADLINE);
}

ssize_t weft_sendmsg_until(int fd, const struct msghdr *msg, int flags,
                           uint64_t deadline)
{
    msg_args a = {(struct msghdr *)msg, flags};
    return weft__io_run(fd, DIR_WRITE, deadline, call_sendmsg, &a);
}

ssize_t weft_sendmsg(int fd, const struct msghdr *msg, int flags)
{
    return weft_sendmsg_until(fd, msg, flags, WEFT_NO_DEADLINE);
}

/* ---- accept and connect ---------------------------------------------- */

typedef struct {
    struct sockaddr *addr;
    socklen_t *len;
    int flags;
} acc_args;

static ssize_t call_accept(int fd, void *a, weft_fdrec *r)
{
    acc_args *x = a;
    (void)r;
    for (;;) {
        int c = accept4(fd, x->addr, x->len,
                        x->flags | SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c >= 0 || errno != ECONNABORTED)
            return c; /* EMFILE included: returned, not spun on */
    }
}

int weft_accept_until(int fd, struct sockaddr *addr, socklen_t *len, int flags,
                      uint64_t deadline)
{
    /* The reference first, as weft__io_run_ring takes it (fd.c): the
     * ring's path touches the descriptor before it waits. The poller's
     * path takes a second one of its own. */
    int u = weft__fd_ref_take(fd);
    if (u)
        return u;
    if (!weft__io_uring_accept(fd, flags, deadline, &u)) {
        /* The ring's multishot took it (io/accept.c): the peer's
         * address is asked of the new socket. */
        if (u >= 0) {
            weft__io_fresh(u);
            if (addr && len) {
                weft__sys_enter();
                if (getpeername(u, addr, len))
                    *len = 0; /* the peer has reset already */
                weft__sys_leave();
            }
        }
        weft__fd_ref_drop(fd);
        return u;
    }
    acc_args a = {addr, len, flags};
    ssize_t c = weft__io_run(fd, DIR_READ, deadline, call_accept, &a);
    if (c >= 0)
        weft__io_fresh((int)c);
    weft__fd_ref_drop(fd);
    return (int)c;
}

int weft_accept(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    return weft_accept_until(fd, addr, len, flags, WEFT_NO_DEADLINE);
}

typedef struct {
    const struct sockaddr *addr;
    socklen_t len;
    int started; /* connect(2) was made: now only its outcome */
} conn_args;

/* The first call starts the connection; after a wait for writability,
 * SO_ERROR says how it went (EINPROGRESS: not yet, wait again). */
static ssize_t call_connect(int fd, void *a, weft_fdrec *r)
{
    conn_args *x = a;
    (void)r;
    if (!x->started) {
        x->started = 1;
        if (!connect(fd, x->addr, x->len))
            return 0;
        if (errno == EINPROGRESS)
            errno = EAGAIN;
        return -1;
    }
    int so = 0;
    socklen_t sl = sizeof so;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl))
        return -1;
    if (so == EINPROGRESS || so == EALREADY) {
        errno = EAGAIN;
        return -1;
    }
    if (so) {
        errno = so;
        return -1;
    }
    /* No error yet and no connection either (a wake-up that was not
     * the connection's end): wait again. */
    struct sockaddr_storage peer;
    socklen_t pl = sizeof peer;
    if (getpeername(fd, (struct sockaddr *)&peer, &pl)) {
        if (errno == ENOTCONN)
            errno = EAGAIN;
        return -1;
    }
    return 0;
}

/* "A timed-out call has no effect" (weft.h, Time), which a connection
 * attempt cannot keep once started: so a deadline already past starts
 * none (-ETIMEDOUT at once), and an attempt the deadline ends is aborted
 * with a connect(2) to AF_UNSPEC (on Linux, TCP's disconnect: the socket
 * is unconnected again; a peer that had already accepted it sees a
 * reset). */
int weft_connect_until(int fd, const struct sockaddr *addr, socklen_t len,
                       uint64_t deadline)
{
    if (deadline != WEFT_NO_DEADLINE && deadline <= weft_now_ns())
        return fd < 0 ? -EBADF : -ETIMEDOUT;
    conn_args a = {addr, len, 0};
    int r = (int)weft__io_run(fd, DIR_WRITE, deadline, call_connect, &a);
    if (r == -ETIMEDOUT && a.started) {
        struct sockaddr none = {.sa_family = AF_UNSPEC};
        int e = errno;
        (void)connect(fd, &none, sizeof none);
        errno = e;
    }
    return r;
}

int weft_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    return weft_connect_until(fd, addr, len, WEFT_NO_DEADLINE);
}
