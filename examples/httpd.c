/*
 * httpd.c - an HTTP/1.1 server, a task per connection (issue 15). It owns
 * the sockets, each connection's buffers and deadline, the routes and the
 * answers; the grammar of a request is http_parse.c's.
 *
 *   GET /plaintext  200 "Hello, World!"               text/plain
 *   GET /json       200 {"message":"Hello, World!"}   application/json
 *   (HEAD answers the same heads without bodies; another method on these
 *   two paths is 405, any other path 404; a request http_parse refuses
 *   gets its status: 400, 413, 414, 431, 501 or 505, and the connection
 *   is closed.)
 *
 *   PORT=8080 WORKERS=1 ./httpd &
 *   wrk -t1 -c64 -d5s http://127.0.0.1:8080/plaintext
 *
 * Environment: PORT (default 8080; 0 picks a free port, which the
 * "listening" line on stderr names), WORKERS (default: weft's),
 * HTTPD_READ_TIMEOUT_MS (default 10000), HTTPD_MAX_CONN (default 10000).
 * Exits 0 on SIGTERM or SIGINT, as examples/echo.c does: the signals are
 * blocked before the runtime is made, the main thread sigwaits, closes
 * the listener with weft_close (ending the acceptor's weft_accept) and
 * shuts the runtime down (ending every connection's pending call).
 *
 * A connection: read into a fixed buffer, answer every complete request
 * it holds, in order, into a fixed output buffer, and write that once
 * before reading again, so pipelined requests that arrived together are
 * answered by one write (wrk's pipelined test sends 16 per write). Keep-
 * alive is http_parse's verdict (HTTP/1.1 unless "Connection: close";
 * HTTP/1.0 only with "keep-alive"). A request's body (Content-Length, at
 * most HTTP_MAX_BODY) is read and dropped: no route here takes one.
 *
 * Hostile clients, each bounded:
 * - Time. Each connection has one deadline, HTTPD_READ_TIMEOUT_MS after
 *   it opened or after its last batch of complete requests; every read
 *   and write waits until that deadline at most. A client that sends
 *   nothing, sends its head a byte at a time (slowloris), or stops
 *   reading its answers is closed when it passes. The deadline is per
 *   request, not per read, so a byte every second does not extend it.
 * - Memory. A connection is one fixed struct (IN_SIZE + OUT_SIZE bytes
 *   and the parser: 24 KiB), allocated once when accepted, and a small
 *   stack (16 KiB). A head that does not fit HTTP_MAX_HEAD (< IN_SIZE)
 *   is refused by the parser, so the input buffer can never fill with an
 *   incomplete head.
 * - Count. Past HTTPD_MAX_CONN live connections, a new one is answered
 *   503 with a single non-blocking write (it may be lost if the client
 *   has already sent data, which makes the close a reset) and closed at
 *   once; the open ones are served as before.
 *
 * Closing after an answer the client may not have read (an error, or
 * "Connection: close" with requests behind it) shuts the write side down
 * first and reads what is left for up to a second: closing with unread
 * input makes Linux send a reset, which can destroy the answer in the
 * client's receive queue before it reads it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_parse.h"
#include "weft.h"

#define IN_SIZE 16384  /* a connection's input buffer: > HTTP_MAX_HEAD */
#define OUT_SIZE 8192  /* its output buffer: many answers per write */
#define ANSWER_MAX 512 /* the longest answer this server writes */
#define LINGER_NS 1000000000ull /* reading what is left before a close */

/* Set by main before the runtime starts, read-only afterwards. */
static uint64_t timeout_ns;    /* HTTPD_READ_TIMEOUT_MS, in ns */
static unsigned long max_conn; /* HTTPD_MAX_CONN */

/* Live connections: incremented by the acceptor only (so its check and
 * increment need no CAS), decremented by each connection as it ends on
 * any worker. Relaxed: the count orders nothing else, and the cap is a
 * bound on resources, for which a connection ending an instant before it
 * is seen is no error. */
static atomic_ulong live;

/* One connection, owned by its task. in[off..len) are bytes not yet
 * consumed: the current request's, from its first byte (http_parse's
 * contract), and any pipelined after it. */
typedef struct conn {
    int fd;
    uint32_t off, len; /* in[]: consumed up to off, filled up to len */
    uint32_t outlen;   /* out[]: answers not yet written */
    uint64_t deadline; /* for every read and write: weft_now_ns() clock */
    http_parser p;     /* the request at in[off] */
    char in[IN_SIZE];
    char out[OUT_SIZE];
} conn;

/* ---- Date ---------------------------------------------------------------
 * IMF-fixdate (RFC 9110 section 5.6.7), e.g. "Sun, 06 Nov 1994 08:49:37
 * GMT", formatted at most once a second per worker thread. A per-thread
 * cache needs no lock and cannot be read half-written, which a shared one
 * refreshed by any worker could. Its address belongs to the worker
 * thread, and a task can move to another between weft calls, so the
 * cache is reached only in date_copy, which makes no weft call, is never
 * inlined into a caller that does (the compiler may keep the address
 * across those), and holds off preemption while it runs. */

#define DATE_LEN 29

/* v as n decimal digits, zero-padded. */
static void digits(char *out, int64_t v, int n)
{
    while (n--) {
        out[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* The date of unix time t, by the civil-from-days arithmetic of the
 * proleptic Gregorian calendar (no locale, no time-zone files, no lock
 * as gmtime_r takes). */
static void imf_fixdate(char *out, time_t t)
{
    static const char wday[] = "ThuFriSatSunMonTueWed"; /* day 0: Thu */
    static const char mon[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    int64_t days = t / 86400, secs = t % 86400;
    int64_t z = days + 719468; /* days since 0000-03-01 */
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = yoe + era * 400 + (m <= 2);
    int w = (int)(days % 7);
    memcpy(out, wday + 3 * w, 3);
    memcpy(out + 3, ", ", 2);
    digits(out + 5, d, 2);
    out[7] = ' ';
    memcpy(out + 8, mon + 3 * (m - 1), 3);
    out[11] = ' ';
    digits(out + 12, y, 4);
    out[16] = ' ';
    digits(out + 17, secs / 3600, 2);
    out[19] = ':';
    digits(out + 20, secs / 60 % 60, 2);
    out[22] = ':';
    digits(out + 23, secs % 60, 2);
    memcpy(out + 25, " GMT", 4);
}

static _Thread_local time_t date_sec = -1; /* when date_str was made */
static _Thread_local char date_str[DATE_LEN + 1];

/* Copy the date of now to dst (DATE_LEN bytes). A connection's task; no
 * weft call but the preemption pair. */
__attribute__((noinline)) static void date_copy(char *dst)
{
    weft_preempt_disable();
    time_t now = time(NULL);
    if (now != date_sec) {
        imf_fixdate(date_str, now);
        date_sec = now;
    }
    memcpy(dst, date_str, DATE_LEN);
    weft_preempt_enable();
}

/* ---- Answers ------------------------------------------------------------ */

static void put(conn *c, const char *s, size_t n)
{
    memcpy(c->out + c->outlen, s, n);
    c->outlen += (uint32_t)n;
}

#define PUTS(c, lit) put((c), lit, sizeof lit - 1)

static const char *reason(unsigned status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 505:
        return "HTTP Version Not Supported";
    }
    return "Error";
}

/* Append one answer (at most ANSWER_MAX bytes; the caller made room).
 * keep: the connection stays open, minor: the request's HTTP/1.minor
 * (an HTTP/1.0 client that asked to keep the connection is told it is
 * kept; HTTP/1.1 keeps it unless told otherwise). */
static void answer(conn *c, unsigned status, const char *type, const char *body,
                   size_t blen, int head_only, int keep, int minor)
{
    PUTS(c, "HTTP/1.1 ");
    digits(c->out + c->outlen, status, 3);
    c->outlen += 3;
    PUTS(c, " ");
    const char *r = reason(status);
    put(c, r, strlen(r));
    PUTS(c, "\r\nServer: weft\r\nDate: ");
    date_copy(c->out + c->outlen);
    c->outlen += DATE_LEN;
    PUTS(c, "\r\nContent-Type: ");
    put(c, type, strlen(type));
    PUTS(c, "\r\nContent-Length: ");
    int len = 1;
    for (size_t v = blen; v >= 10; v /= 10)
        len++;
    digits(c->out + c->outlen, (int64_t)blen, len);
    c->outlen += (uint32_t)len;
    PUTS(c, "\r\n");
    if (status == 405)
        PUTS(c, "Allow: GET, HEAD\r\n");
    if (!keep)
        PUTS(c, "Connection: close\r\n");
    else if (minor == 0)
        PUTS(c, "Connection: keep-alive\r\n");
    PUTS(c, "\r\n");
    if (!head_only)
        put(c, body, blen);
}

/* An error answer: its reason phrase is its body; the connection closes. */
static void answer_error(conn *c, unsigned status)
{
    char body[64];
    int n = snprintf(body, sizeof body, "%s\n", reason(status));
    answer(c, status, "text/plain", body, (size_t)n, 0, 0, 1);
}

static const char hello[] = "Hello, World!";
static const char json[] = "{\"message\":\"Hello, World!\"}";

/* Route request q: append its answer. */
static void route(conn *c, const http_request *q)
{
    const char *m = c->in + c->off + q->method_off;
    const char *t = c->in + c->off + q->target_off;
    size_t tlen = q->target_len;
    /* The absolute form, "http://host/path", which a server must accept
     * (RFC 9112 section 3.2.2): its path is the route. */
    const char *scheme = tlen > 3 ? memmem(t, tlen, "://", 3) : NULL;
    if (scheme && t[0] != '/') {
        const char *host = scheme + 3;
        const char *path = memchr(host, '/', tlen - (size_t)(host - t));
        tlen = path ? tlen - (size_t)(path - t) : 0;
        t = path ? path : host;
    }
    const char *query = memchr(t, '?', tlen);
    if (query)
        tlen = (size_t)(query - t);
    int get = q->method_len == 3 && memcmp(m, "GET", 3) == 0;
    int head = q->method_len == 4 && memcmp(m, "HEAD", 4) == 0;
    const char *type, *body;
    size_t blen;
    if (tlen == 10 && memcmp(t, "/plaintext", 10) == 0) {
        type = "text/plain", body = hello, blen = sizeof hello - 1;
    } else if (tlen == 5 && memcmp(t, "/json", 5) == 0) {
        type = "application/json", body = json, blen = sizeof json - 1;
    } else {
        answer(c, 404, "text/plain", "Not Found\n", 10, head, q->keep_alive,
               q->minor);
        return;
    }
    if (get || head)
        answer(c, 200, type, body, blen, head, q->keep_alive, q->minor);
    else
        answer(c, 405, "text/plain", "Method Not Allowed\n", 19, 0,
               q->keep_alive, q->minor);
}

/* ---- The connection ----------------------------------------------------- */

/* Write out[] whole before the deadline: 0, or -errno. */
static int flush(conn *c)
{
    uint32_t done = 0;
    while (done < c->outlen) {
        ssize_t n = weft_write_until(c->fd, c->out + done, c->outlen - done,
                                     c->deadline);
        if (n < 0)
            return (int)n;
        done += (uint32_t)n;
    }
    c->outlen = 0;
    return 0;
}

/* How serve ended. */
enum { END_CLOSE, END_LINGER };

/* Serve requests until the connection is to be closed. May park. */
static int serve(conn *c)
{
    uint32_t skip = 0; /* body bytes of the last request still to drop */
    c->deadline = weft_now_ns() + timeout_ns;
    http_parse_init(&c->p);
    for (;;) {
        /* Answer every complete request buffered, in order. */
        int served = 0, end = -1;
        while (end < 0) {
            uint32_t k = skip < c->len - c->off ? skip : c->len - c->off;
            c->off += k;
            skip -= k;
            if (skip)
                break;
            int r = http_parse(&c->p, c->in + c->off, c->len - c->off);
            if (r == HTTP_MORE)
                break;
            if (c->outlen > OUT_SIZE - ANSWER_MAX) {
                c->deadline = weft_now_ns() + timeout_ns;
                if (flush(c))
                    return END_CLOSE;
            }
            if (r == HTTP_ERROR) {
                answer_error(c, c->p.status);
                end = END_LINGER;
                break;
            }
            route(c, &c->p.req);
            served = 1;
            c->off += c->p.req.head_len;
            skip = c->p.req.content_length;
            if (!c->p.req.keep_alive)
                end = END_LINGER;
            http_parse_init(&c->p);
        }
        if (served || end >= 0)
            c->deadline = weft_now_ns() + timeout_ns;
        if (c->outlen && flush(c))
            return END_CLOSE;
        if (end >= 0)
            return end;
        /* Keep the unconsumed bytes at the buffer's start, so the rest
         * of the buffer is free to read into: they are a partial request
         * (or nothing), never more than HTTP_MAX_HEAD bytes. */
        if (c->off) {
            memmove(c->in, c->in + c->off, c->len - c->off);
            c->len -= c->off;
            c->off = 0;
        }
        ssize_t n = weft_read_until(c->fd, c->in + c->len, IN_SIZE - c->len,
                                    c->deadline);
        if (n <= 0)
            return END_CLOSE; /* end of file, deadline, error, shutdown */
        c->len += (uint32_t)n;
    }
}

static void *connection(void *arg)
{
    conn *c = arg;
    if (serve(c) == END_LINGER && shutdown(c->fd, SHUT_WR) == 0) {
        uint64_t until = weft_now_ns() + LINGER_NS;
        while (weft_read_until(c->fd, c->in, IN_SIZE, until) > 0)
            ;
    }
    weft_close(c->fd);
    free(c);
    atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
    return NULL;
}

/* Over the cap: one attempt at a 503 without parking (deadline 0), then
 * close. */
static void refuse(int fd)
{
    static const char msg[] = "HTTP/1.1 503 Service Unavailable\r\n"
                              "Server: weft\r\nContent-Length: 0\r\n"
                              "Connection: close\r\n\r\n";
    weft_write_until(fd, msg, sizeof msg - 1, 0);
    weft_close(fd);
}

static void *acceptor(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.flags = WEFT_DETACHED;
    a.stack = WEFT_STACK_SMALL; /* 16 KiB: the buffers are in the conn */
    for (;;) {
        int fd = weft_accept(lfd, NULL, NULL, 0);
        if (fd == -ECANCELED || fd == -EBADF)
            break; /* closed: shutting down */
        if (fd == -ECONNABORTED || fd == -EINTR)
            continue; /* the client left first: nothing to do */
        if (fd < 0) {
            /* EMFILE and the like: say so, and do not spin on it. */
            fprintf(stderr, "httpd: accept: %s\n", weft_strerror(fd));
            weft_sleep_ns(10000000);
            continue;
        }
        if (atomic_load_explicit(&live, memory_order_relaxed) >= max_conn) {
            refuse(fd);
            continue;
        }
        conn *c = malloc(sizeof *c);
        if (!c) {
            refuse(fd);
            continue;
        }
        c->fd = fd;
        c->off = c->len = c->outlen = 0;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
        if (weft_spawn(NULL, NULL, connection, c, &a)) {
            atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
            free(c);
            refuse(fd);
        }
    }
    return NULL;
}

/* ---- Start and stop ----------------------------------------------------- */

/* Environment variable name as an integer in [lo, hi], or def when unset;
 * anything else ends the program. */
static unsigned long env_num(const char *name, unsigned long def,
                             unsigned long lo, unsigned long hi)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return def;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || *s == '-' || v < lo || v > hi) {
        fprintf(stderr, "httpd: %s=%s: not a number in %lu..%lu\n", name, s, lo,
                hi);
        exit(2);
    }
    return v;
}

int main(void)
{
    unsigned long port = env_num("PORT", 8080, 0, 65535);
    unsigned long workers = env_num("WORKERS", 0, 0, 1024);
    timeout_ns =
        env_num("HTTPD_READ_TIMEOUT_MS", 10000, 1, 86400000) * 1000000ull;
    max_conn = env_num("HTTPD_MAX_CONN", 10000, 1, 1000000);

    /* Enough descriptors for the cap, when the hard limit allows. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof addr;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) ||
        listen(lfd, 4096) ||
        getsockname(lfd, (struct sockaddr *)&addr, &alen)) {
        perror("httpd: listen");
        return 1;
    }

    weft_config cfg;
    weft_config_default(&cfg);
    if (workers)
        cfg.workers = (unsigned)workers;
    if (cfg.max_tasks < max_conn + 2) /* the connections and the acceptor */
        cfg.max_tasks = (uint32_t)max_conn + 2;
    weft_rt *rt;
    int err = weft_rt_create(&rt, &cfg);
    if (err) {
        fprintf(stderr, "httpd: weft_rt_create: %s: %s\n", weft_strerror(err),
                weft_last_error());
        return 1;
    }
    weft_task acc;
    if ((err = weft_spawn(rt, &acc, acceptor, (void *)(intptr_t)lfd, NULL))) {
        fprintf(stderr, "httpd: spawn: %s\n", weft_strerror(err));
        return 1;
    }
    fprintf(stderr, "httpd: listening on 127.0.0.1:%d\n",
            (int)ntohs(addr.sin_port));

    int sig;
    sigwait(&stop, &sig);
    weft_close(lfd);
    weft_join(acc, NULL);
    weft_rt_shutdown(rt);
    /* Detached connection tasks end on their cancelled reads and writes. */
    while ((err = weft_rt_destroy(rt)) == -EBUSY)
        usleep(1000);
    return err ? 1 : 0;
}
