/*
 * calls.c - the descriptor calls of weft.h ("File descriptors"): each is
 * one system call that weft__io_run (fd.c) tries, and retries after
 * waiting for readiness on EAGAIN, holding a reference on the number.
 * Sends never raise SIGPIPE: MSG_NOSIGNAL, and write(2) goes through
 * send(2) until the descriptor turns out not to be a socket.
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fd.h"

typedef struct {
    void *buf;
    size_t n;
    int flags;
} rw_args;

static ssize_t call_read(int fd, void *a, weft_fdrec *r)
{
    rw_args *x = a;
    (void)r;
    return read(fd, x->buf, x->n);
}

static ssize_t call_recv(int fd, void *a, weft_fdrec *r)
{
    rw_args *x = a;
    (void)r;
    return recv(fd, x->buf, x->n, x->flags);
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
        weft__fdrec_set_notsock(r); /* a pipe or a file: write(2) now */
    }
    return write(fd, x->buf, x->n);
}

ssize_t weft_read_until(int fd, void *buf, size_t n, uint64_t deadline)
{
    rw_args a = {buf, n, 0};
    return weft__io_run(fd, DIR_READ, deadline, call_read, &a);
}

ssize_t weft_read(int fd, void *buf, size_t n)
{
    return weft_read_until(fd, buf, n, WEFT_NO_DEADLINE);
}

ssize_t weft_recv_until(int fd, void *buf, size_t n, int flags,
                        uint64_t deadline)
{
    rw_args a = {buf, n, flags};
    return weft__io_run(fd, DIR_READ, deadline, call_recv, &a);
}

ssize_t weft_recv(int fd, void *buf, size_t n, int flags)
{
    return weft_recv_until(fd, buf, n, flags, WEFT_NO_DEADLINE);
}

ssize_t weft_send_until(int fd, const void *buf, size_t n, int flags,
                        uint64_t deadline)
{
    rw_args a = {(void *)buf, n, flags};
    return weft__io_run(fd, DIR_WRITE, deadline, call_send, &a);
}

ssize_t weft_send(int fd, const void *buf, size_t n, int flags)
{
    return weft_send_until(fd, buf, n, flags, WEFT_NO_DEADLINE);
}

ssize_t weft_write_until(int fd, const void *buf, size_t n, uint64_t deadline)
{
    rw_args a = {(void *)buf, n, 0};
    return weft__io_run(fd, DIR_WRITE, deadline, call_write, &a);
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
    acc_args a = {addr, len, flags};
    ssize_t c = weft__io_run(fd, DIR_READ, deadline, call_accept, &a);
    if (c >= 0)
        weft__io_fresh((int)c);
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
    return 0;
}

int weft_connect_until(int fd, const struct sockaddr *addr, socklen_t len,
                       uint64_t deadline)
{
    conn_args a = {addr, len, 0};
    return (int)weft__io_run(fd, DIR_WRITE, deadline, call_connect, &a);
}

int weft_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    return weft_connect_until(fd, addr, len, WEFT_NO_DEADLINE);
}
