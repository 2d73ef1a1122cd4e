/*
 * test_httpd.c - examples/httpd.c end to end: each test starts the server
 * binary (WEFT_HTTPD_BIN) on a port of its choosing (PORT=0, read back
 * from its "listening" line), talks to it over plain sockets, and stops
 * it with SIGTERM, which must end it with status 0 (under ASan, with no
 * leak) within a few seconds. What is checked: the answers and their
 * headers, keep-alive, pipelining and its order, a request cut into
 * one-byte writes, closing (Connection: close, HTTP/1.0, errors), the
 * per-request deadline against slow and silent clients and against one
 * that never reads its answers, and the connection cap.
 *
 * Timing: the server's deadline is set short (HTTPD_READ_TIMEOUT_MS)
 * where a test needs it and long elsewhere; every client read has its own
 * timeout, so a server that never answers fails the test instead of
 * hanging it. Bounds on how late a close may come are generous (a loaded
 * machine, sanitizer builds); bounds on how early are what tell a
 * per-request deadline from a per-read one.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#ifndef WEFT_HTTPD_BIN
#error "WEFT_HTTPD_BIN: the path of examples/httpd (tests/CMakeLists.txt)"
#endif

/* ---- the server --------------------------------------------------------- */

typedef struct server {
    pid_t pid;
    int port;
    int err; /* read end of its stderr */
} server;

/* Start httpd with HTTPD_READ_TIMEOUT_MS=timeout_ms and
 * HTTPD_MAX_CONN=max_conn, and wait for its "listening" line. */
static server start(unsigned timeout_ms, unsigned max_conn)
{
    int pfd[2];
    CHECK_EQ_INT(pipe(pfd), 0);
    pid_t pid = fork();
    CHECK_CMP_INT(pid, >=, 0);
    if (pid == 0) {
        char t[32], m[32];
        snprintf(t, sizeof t, "%u", timeout_ms);
        snprintf(m, sizeof m, "%u", max_conn);
        setenv("PORT", "0", 1);
        setenv("WORKERS", "2", 1);
        setenv("HTTPD_READ_TIMEOUT_MS", t, 1);
        setenv("HTTPD_MAX_CONN", m, 1);
        dup2(pfd[1], 2);
        close(pfd[0]);
        close(pfd[1]);
        execl(WEFT_HTTPD_BIN, "httpd", (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    server s = {.pid = pid, .port = 0, .err = pfd[0]};
    char line[512];
    size_t n = 0;
    uint64_t until = test_now_ms() + 20000;
    while (!s.port) {
        struct pollfd p = {.fd = s.err, .events = POLLIN};
        int left = (int)(until - test_now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0)
            weft_check_fail(__FILE__, __LINE__, "httpd did not start: %.*s",
                            (int)n, line);
        ssize_t r = read(s.err, line + n, sizeof line - 1 - n);
        if (r <= 0)
            weft_check_fail(__FILE__, __LINE__, "httpd exited: %.*s", (int)n,
                            line);
        n += (size_t)r;
        line[n] = '\0';
        const char *at = strstr(line, "listening on 127.0.0.1:");
        if (at && strchr(at, '\n'))
            s.port = atoi(at + strlen("listening on 127.0.0.1:"));
    }
    return s;
}

/* SIGTERM; the server must exit 0 within 10 s. */
static void stop(server *s)
{
    CHECK_EQ_INT(kill(s->pid, SIGTERM), 0);
    int st = 0;
    uint64_t until = test_now_ms() + 10000;
    pid_t r;
    while ((r = waitpid(s->pid, &st, WNOHANG)) == 0 && test_now_ms() < until)
        usleep(5000);
    if (r == 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &st, 0);
        weft_check_fail(__FILE__, __LINE__,
                        "httpd still running 10 s after "
                        "SIGTERM");
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char err[4096];
        ssize_t n = read(s->err, err, sizeof err - 1);
        err[n > 0 ? n : 0] = '\0';
        weft_check_fail(__FILE__, __LINE__,
                        "httpd ended with status 0x%x after SIGTERM: %s", st,
                        err);
    }
    close(s->err);
}

/* ---- a client ----------------------------------------------------------- */

typedef struct client {
    int fd;
    size_t len;      /* bytes in buf not yet taken by a response */
    char buf[65536]; /* what was read */
} client;

typedef struct response {
    int status;
    char head[4096]; /* status line and fields, NUL-terminated */
    char body[512];  /* NUL-terminated */
    size_t blen;
} response;

/* Each read waits at most 5 s. */
static client *dial(int port)
{
    client *c = calloc(1, sizeof *c);
    CHECK_NOT_NULL(c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK_CMP_INT(c->fd, >=, 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ_INT(connect(c->fd, (struct sockaddr *)&a, sizeof a), 0);
    return c;
}

static void hang_up(client *c)
{
    close(c->fd);
    free(c);
}

static void say(client *c, const char *s, size_t n)
{
    while (n) {
        ssize_t k = send(c->fd, s, n, MSG_NOSIGNAL);
        CHECK_CMP_INT(k, >, 0);
        s += k;
        n -= (size_t)k;
    }
}

#define SAY(c, s) say((c), (s), strlen(s))

/* A field's value in r->head ("" if absent); case-insensitive name. */
static const char *field(const response *r, const char *name, char *out,
                         size_t cap)
{
    size_t nl = strlen(name);
    out[0] = '\0';
    for (const char *l = strstr(r->head, "\r\n"); l && l[2];
         l = strstr(l + 2, "\r\n")) {
        if (strncasecmp(l + 2, name, nl) == 0 && l[2 + nl] == ':') {
            const char *v = l + 3 + nl, *e = strstr(v, "\r\n");
            while (*v == ' ')
                v++;
            size_t n = (size_t)((e ? e : v + strlen(v)) - v);
            n = n < cap - 1 ? n : cap - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return out;
        }
    }
    return out;
}

/* Read one response (a head, then Content-Length bytes of body; a HEAD
 * request's response has none: head_only). 0, or -1 at end of file or
 * on a reset before a byte of it; fails the test if it takes over 5 s. */
static int hear(client *c, response *r, int head_only)
{
    memset(r, 0, sizeof *r);
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end) {
            size_t hl = (size_t)(end - c->buf) + 4;
            CHECK_CMP_U64(hl, <, sizeof r->head);
            memcpy(r->head, c->buf, hl);
            char cl[32];
            size_t blen =
                head_only ? 0
                          : strtoul(field(r, "Content-Length", cl, sizeof cl),
                                    NULL, 10);
            CHECK_CMP_U64(blen, <, sizeof r->body);
            if (c->len >= hl + blen) {
                memcpy(r->body, c->buf + hl, blen);
                r->blen = blen;
                CHECK_EQ_INT(sscanf(r->head, "HTTP/1.1 %d ", &r->status), 1);
                memmove(c->buf, c->buf + hl + blen, c->len - hl - blen);
                c->len -= hl + blen;
                return 0;
            }
        }
        CHECK_CMP_U64(c->len, <, sizeof c->buf);
        ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            weft_check_fail(__FILE__, __LINE__,
                            "no complete response within 5 s: %.*s",
                            (int)c->len, c->buf);
        if (n <= 0 && c->len == 0)
            return -1;
        if (n <= 0)
            weft_check_fail(__FILE__, __LINE__,
                            "connection ended inside a response: %.*s",
                            (int)c->len, c->buf);
        c->len += (size_t)n;
    }
}

/* Read a response, which must have the given status. */
static void expect(client *c, response *r, int status)
{
    if (hear(c, r, 0))
        weft_check_fail(__FILE__, __LINE__,
                        "no response (expected %d): the connection ended",
                        status);
    if (r->status != status)
        weft_check_fail(__FILE__, __LINE__, "status %d, expected %d: %s",
                        r->status, status, r->head);
}

/* Wait up to ms for the server to close: end of file or a reset, with
 * no byte before it. Returns how long it took (ms), or -1 if the
 * connection was still open. */
static long closed_within(client *c, unsigned ms)
{
    uint64_t t0 = test_now_ms();
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (poll(&p, 1, (int)ms) <= 0)
        return -1;
    char b[256];
    ssize_t n = recv(c->fd, b, sizeof b, MSG_DONTWAIT);
    if (n > 0)
        weft_check_fail(__FILE__, __LINE__,
                        "%zd bytes instead of a close: "
                        "%.*s",
                        n, (int)n, b);
    if (n < 0 && errno != ECONNRESET)
        weft_check_fail(__FILE__, __LINE__, "recv: %s", strerror(errno));
    return (long)(test_now_ms() - t0);
}

#define H "Host: t\r\n"
#define GET(path) "GET " path " HTTP/1.1\r\n" H "\r\n"

/* The plaintext body and the fields every answer carries. */
static void check_common(const response *r)
{
    char v[128];
    CHECK_EQ_STR(field(r, "Server", v, sizeof v), "weft");
    /* Date: IMF-fixdate, now (within 5 s). */
    field(r, "Date", v, sizeof v);
    CHECK_EQ_INT(strlen(v), 29);
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        weft_check_fail(__FILE__, __LINE__, "Date not IMF-fixdate: \"%s\"", v);
    long skew = (long)(timegm(&tm) - time(NULL));
    CHECK_CMP_INT(labs(skew), <=, 5);
    /* The weekday is the date's (strptime does not check it). */
    char again[64];
    strftime(again, sizeof again, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    CHECK_EQ_STR(v, again);
}

static void check_plaintext(const response *r)
{
    char v[64];
    CHECK_EQ_INT(r->status, 200);
    CHECK(strncmp(r->head, "HTTP/1.1 200 OK\r\n", 17) == 0);
    check_common(r);
    CHECK_EQ_STR(field(r, "Content-Type", v, sizeof v), "text/plain");
    CHECK_EQ_STR(field(r, "Content-Length", v, sizeof v), "13");
    CHECK_EQ_STR(r->body, "Hello, World!");
}

static void check_json(const response *r)
{
    char v[64];
    CHECK_EQ_INT(r->status, 200);
    check_common(r);
    CHECK_EQ_STR(field(r, "Content-Type", v, sizeof v), "application/json");
    CHECK_EQ_STR(field(r, "Content-Length", v, sizeof v), "27");
    CHECK_EQ_STR(r->body, "{\"message\":\"Hello, World!\"}");
}

/* ---- tests -------------------------------------------------------------- */

TEST_T(http, server_plaintext_and_json, 60)
{
    server s = start(10000, 100);
    client *c = dial(s.port);
    response r;
    char v[64];
    SAY(c, GET("/plaintext"));
    expect(c, &r, 200);
    check_plaintext(&r);
    CHECK_EQ_STR(field(&r, "Connection", v, sizeof v), "");
    SAY(c, GET("/json"));
    expect(c, &r, 200);
    check_json(&r);
    /* A query does not change the route, nor the absolute form. */
    SAY(c, GET("/plaintext?x=1"));
    expect(c, &r, 200);
    check_plaintext(&r);
    SAY(c, GET("http://t/json?y"));
    expect(c, &r, 200);
    check_json(&r);
    SAY(c, GET("http://t"));
    expect(c, &r, 404);
    hang_up(c);
    stop(&s);
}

TEST_T(http, server_404_405_head_keep_the_connection, 60)
{
    server s = start(10000, 100);
    client *c = dial(s.port);
    response r;
    char v[64];
    SAY(c, GET("/nope"));
    expect(c, &r, 404);
    check_common(&r);
    SAY(c, GET("/plaintext/"));
    expect(c, &r, 404);
    SAY(c, "POST /plaintext HTTP/1.1\r\n" H "Content-Length: 0\r\n\r\n");
    expect(c, &r, 405);
    CHECK_EQ_STR(field(&r, "Allow", v, sizeof v), "GET, HEAD");
    /* HEAD: the GET's fields, no body (the next response would not
     * parse if one had been sent). */
    SAY(c, "HEAD /json HTTP/1.1\r\n" H "\r\n");
    CHECK_EQ_INT(hear(c, &r, 1), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_STR(field(&r, "Content-Length", v, sizeof v), "27");
    SAY(c, GET("/plaintext"));
    expect(c, &r, 200);
    check_plaintext(&r);
    hang_up(c);
    stop(&s);
}

TEST_T(http, server_400_and_closes, 60)
{
    server s = start(10000, 100);
    static const char *const bad[] = {
        "GET / HTTP/1.1\r\n" H "Bad Header: x\r\n\r\n",
        "GET /plaintext HTTP/1.1\r\n\r\n", /* no Host */
        "GET  /plaintext HTTP/1.1\r\n" H "\r\n",
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", /* TLS */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        client *c = dial(s.port);
        response r;
        char v[64];
        /* A good request first: it is answered, then the bad one. */
        SAY(c, GET("/plaintext"));
        SAY(c, bad[i]);
        expect(c, &r, 200);
        expect(c, &r, 400);
        check_common(&r);
        CHECK_EQ_STR(field(&r, "Connection", v, sizeof v), "close");
        CHECK_CMP_INT(closed_within(c, 3000), >=, 0);
        hang_up(c);
    }
    stop(&s);
}

TEST_T(http, server_431_414_413_501_and_close, 60)
{
    server s = start(10000, 100);
    size_t big = 9000; /* over the server's 8 KiB */
    char *req = malloc(big + 256);
    CHECK_NOT_NULL(req);
    /* Fields over 8 KiB: 431. */
    int n = snprintf(req, 256, "GET /plaintext HTTP/1.1\r\n" H "X: ");
    memset(req + n, 'x', big);
    strcpy(req + n + big, "\r\n\r\n");
    client *c = dial(s.port);
    response r;
    say(c, req, strlen(req));
    expect(c, &r, 431);
    CHECK_CMP_INT(closed_within(c, 3000), >=, 0);
    hang_up(c);
    /* A target over 8 KiB: 414. */
    memset(req, 'a', big);
    memcpy(req, "GET /", 5);
    strcpy(req + big, " HTTP/1.1\r\n" H "\r\n");
    c = dial(s.port);
    say(c, req, strlen(req));
    expect(c, &r, 414);
    CHECK_CMP_INT(closed_within(c, 3000), >=, 0);
    hang_up(c);
    free(req);
    c = dial(s.port);
    SAY(c, "POST /plaintext HTTP/1.1\r\n" H "Content-Length: 99999999\r\n\r\n");
    expect(c, &r, 413);
    CHECK_CMP_INT(closed_within(c, 3000), >=, 0);
    hang_up(c);
    c = dial(s.port);
    SAY(c, "POST /plaintext HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n"
           "\r\n0\r\n\r\n");
    expect(c, &r, 501);
    CHECK_CMP_INT(closed_within(c, 3000), >=, 0);
    hang_up(c);
    c = dial(s.port);
    SAY(c, "GET /plaintext HTTP/2.0\r\n" H "\r\n");
    expect(c, &r, 505);
    CHECK_CMP_INT(closed_within(c, 3000), >=, 0);
    hang_up(c);
    stop(&s);
}

TEST_T(http, server_keep_alive, 60)
{
    server s = start(10000, 100);
    client *c = dial(s.port);
    response r;
    for (int i = 0; i < 5; i++) {
        SAY(c, GET("/plaintext"));
        expect(c, &r, 200);
        check_plaintext(&r);
    }
    /* Still open: nothing more, and no close, for a while. */
    CHECK_EQ_INT(closed_within(c, 300), -1);
    SAY(c, GET("/json"));
    expect(c, &r, 200);
    hang_up(c);
    stop(&s);
}

TEST_T(http, server_pipelined_16_in_order, 60)
{
    server s = start(10000, 100);
    client *c = dial(s.port);
    char all[4096];
    size_t n = 0;
    static const char *const paths[3] = {"/plaintext", "/json", "/nope"};
    for (int i = 0; i < 16; i++)
        n += (size_t)snprintf(all + n, sizeof all - n,
                              "GET %s HTTP/1.1\r\n" H "\r\n", paths[i % 3]);
    say(c, all, n); /* one write */
    response r;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 16; i++) {
            CHECK_EQ_INT(hear(c, &r, 0), 0);
            if (i % 3 == 0)
                check_plaintext(&r);
            else if (i % 3 == 1)
                check_json(&r);
            else
                CHECK_EQ_INT(r.status, 404);
        }
        /* Again, with the next batch cut in the middle of a request. */
        say(c, all, n / 2 + 7);
        usleep(50000);
        say(c, all + n / 2 + 7, n - n / 2 - 7);
    }
    hang_up(c);
    stop(&s);
}

TEST_T(http, server_request_in_one_byte_writes, 60)
{
    server s = start(10000, 100);
    client *c = dial(s.port);
    const char *req = "GET /plaintext HTTP/1.1\r\n" H "Accept: */*\r\n\r\n";
    for (size_t i = 0; req[i]; i++) {
        say(c, req + i, 1);
        usleep(2000);
    }
    response r;
    expect(c, &r, 200);
    check_plaintext(&r);
    hang_up(c);
    stop(&s);
}

TEST_T(http, server_connection_close, 60)
{
    server s = start(10000, 100);
    client *c = dial(s.port);
    response r;
    char v[64];
    /* A request behind the closing one is not answered. */
    SAY(c, "GET /plaintext HTTP/1.1\r\n" H
           "Connection: close\r\n\r\n" GET("/json"));
    expect(c, &r, 200);
    check_plaintext(&r);
    CHECK_EQ_STR(field(&r, "Connection", v, sizeof v), "close");
    CHECK_CMP_INT(closed_within(c, 3000), >=, 0);
    hang_up(c);
    /* HTTP/1.0: closed unless it asks; kept when it does, and told so. */
    c = dial(s.port);
    SAY(c, "GET /plaintext HTTP/1.0\r\n\r\n");
    expect(c, &r, 200);
    check_plaintext(&r);
    CHECK_EQ_STR(field(&r, "Connection", v, sizeof v), "close");
    CHECK_CMP_INT(closed_within(c, 3000), >=, 0);
    hang_up(c);
    c = dial(s.port);
    SAY(c, "GET /json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    expect(c, &r, 200);
    check_json(&r);
    CHECK_EQ_STR(field(&r, "Connection", v, sizeof v), "keep-alive");
    CHECK_EQ_INT(closed_within(c, 300), -1);
    SAY(c, "GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    expect(c, &r, 200);
    hang_up(c);
    stop(&s);
}

TEST_T(http, server_body_is_skipped, 60)
{
    server s = start(10000, 100);
    client *c = dial(s.port);
    response r;
    /* The body looks like a request: it must not be taken for one. */
    SAY(c, "GET /plaintext HTTP/1.1\r\n" H "Content-Length: 22\r\n\r\n"
           "GET /nope HTTP/1.1\r\n\r\n" GET("/json"));
    expect(c, &r, 200);
    check_plaintext(&r);
    expect(c, &r, 200);
    check_json(&r);
    /* A body arriving after its head, in pieces. */
    SAY(c, "GET /json HTTP/1.1\r\n" H "Content-Length: 10\r\n\r\n");
    expect(c, &r, 200);
    SAY(c, "01234");
    usleep(20000);
    SAY(c, "56789" GET("/plaintext"));
    expect(c, &r, 200);
    check_plaintext(&r);
    hang_up(c);
    stop(&s);
}

/* HTTPD_READ_TIMEOUT_MS=500: a silent client and a client sending its
 * head a byte every 100 ms are both closed, near 500 ms after they
 * connected (a deadline per read would never close the second), while a
 * client making a request every 200 ms is served for longer than that. */
TEST_T(http, server_read_deadline, 60)
{
    unsigned ms = 500;
    server s = start(ms, 100);
    client *quiet = dial(s.port);
    client *slow = dial(s.port);
    client *busy = dial(s.port);
    uint64_t t0 = test_now_ms();
    const char *req = "GET /plaintext HTTP/1.1\r\n" H "X: slowly\r\n\r\n";
    long slow_at = -1, quiet_at = -1;
    response r;
    for (size_t i = 0; test_now_ms() - t0 < 3000; i++) {
        if (slow_at < 0) {
            if (req[i] && send(slow->fd, req + i, 1, MSG_NOSIGNAL) != 1)
                slow_at = (long)(test_now_ms() - t0); /* reset */
            else if (closed_within(slow, 0) >= 0)
                slow_at = (long)(test_now_ms() - t0);
        }
        if (quiet_at < 0 && closed_within(quiet, 0) >= 0)
            quiet_at = (long)(test_now_ms() - t0);
        if (i % 2 == 0) {
            SAY(busy, GET("/plaintext"));
            expect(busy, &r, 200);
        }
        usleep(100000);
    }
    CHECK_CMP_INT(quiet_at, >=, (long)ms - 100);
    CHECK_CMP_INT(quiet_at, <=, (long)ms + 1500);
    CHECK_CMP_INT(slow_at, >=, (long)ms - 100);
    CHECK_CMP_INT(slow_at, <=, (long)ms + 1500);
    /* The busy one is still served. */
    SAY(busy, GET("/json"));
    expect(busy, &r, 200);
    hang_up(quiet);
    hang_up(slow);
    hang_up(busy);
    stop(&s);
}

/* HTTPD_READ_TIMEOUT_MS=500: a client that pipelines requests and never
 * reads the answers fills the server's send buffer; the server's write
 * waits until the deadline, then the connection is closed (the client's
 * sends fail), while another client is served meanwhile. */
TEST_T(http, server_client_that_does_not_read, 60)
{
    server s = start(500, 100);
    client *c = dial(s.port), *other = dial(s.port);
    char batch[64 * 40];
    size_t n = 0;
    for (int i = 0; i < 64; i++)
        n += (size_t)snprintf(batch + n, sizeof batch - n, GET("/plaintext"));
    uint64_t t0 = test_now_ms(), stalled = 0;
    int gone = 0;
    response r;
    while (!gone && test_now_ms() - t0 < 20000) {
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        if (poll(&p, 1, 100) == 1 && (p.revents & POLLOUT)) {
            ssize_t k = send(c->fd, batch, n, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (k < 0 && errno != EAGAIN)
                gone = 1; /* reset: the server closed */
        } else if (p.revents & (POLLERR | POLLHUP)) {
            gone = 1;
        } else if (!stalled) {
            stalled = test_now_ms(); /* both buffers full */
            SAY(other, GET("/json"));
            expect(other, &r, 200);
        }
    }
    CHECK(gone);
    CHECK(stalled != 0);
    /* Closed near the deadline after the stall, not at once. */
    CHECK_CMP_U64(test_now_ms() - stalled, <=, 5000);
    SAY(other, GET("/plaintext"));
    expect(other, &r, 200);
    hang_up(c);
    hang_up(other);
    stop(&s);
}

/* HTTPD_MAX_CONN=2: a third connection is answered 503 and closed while
 * the two are served; once one leaves, a new one is served. */
TEST_T(http, server_connection_cap, 60)
{
    server s = start(10000, 2);
    client *a = dial(s.port), *b = dial(s.port);
    response r;
    char v[64];
    /* A round trip on each: both are accepted and counted. */
    SAY(a, GET("/plaintext"));
    expect(a, &r, 200);
    SAY(b, GET("/plaintext"));
    expect(b, &r, 200);
    for (int i = 0; i < 3; i++) {
        client *x = dial(s.port);
        expect(x, &r, 503);
        CHECK_EQ_STR(field(&r, "Connection", v, sizeof v), "close");
        CHECK_CMP_INT(closed_within(x, 3000), >=, 0);
        hang_up(x);
        SAY(a, GET("/json"));
        expect(a, &r, 200);
        check_json(&r);
    }
    hang_up(b);
    /* b's task ends when it reads the end of file: retry until then. */
    uint64_t until = test_now_ms() + 5000;
    for (;;) {
        client *x = dial(s.port);
        SAY(x, GET("/plaintext"));
        /* Refused: a 503, or a reset that lost it (the request was
         * unread when the server closed). */
        int st = hear(x, &r, 0) == 0 ? r.status : 0;
        hang_up(x);
        if (st == 200)
            break;
        if (st != 0)
            CHECK_EQ_INT(st, 503);
        CHECK(test_now_ms() < until);
        usleep(20000);
    }
    hang_up(a);
    stop(&s);
}

/* SIGTERM with connections open (one idle, one mid-request, one with a
 * pipelined batch outstanding): exit 0 (checked by stop). */
TEST_T(http, server_sigterm_with_open_connections, 60)
{
    server s = start(10000, 100);
    client *idle = dial(s.port), *mid = dial(s.port), *used = dial(s.port);
    response r;
    SAY(used, GET("/plaintext"));
    expect(used, &r, 200);
    SAY(mid, "GET /plaintext HTTP/1.1\r\nHo");
    usleep(50000);
    stop(&s);
    /* Every connection is closed by the exit. */
    CHECK_CMP_INT(closed_within(idle, 3000), >=, 0);
    CHECK_CMP_INT(closed_within(mid, 3000), >=, 0);
    CHECK_CMP_INT(closed_within(used, 3000), >=, 0);
    hang_up(idle);
    hang_up(mid);
    hang_up(used);
}
