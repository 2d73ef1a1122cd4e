/*
 * httpd_client.c - the helpers of the http tests (httpd_client.h): start
 * and stop examples/httpd as a child process, and talk to it over plain
 * sockets with a bounded wait on every read.
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
#include "httpd_client.h"

#ifndef WEFT_HTTPD_BIN
#error "WEFT_HTTPD_BIN: the path of examples/httpd (tests/CMakeLists.txt)"
#endif

/* ---- the server --------------------------------------------------------- */

/* Start httpd with HTTPD_READ_TIMEOUT_MS=timeout_ms and
 * HTTPD_MAX_CONN=max_conn, and wait for its "listening" line. */
ht_server ht_start(unsigned timeout_ms, unsigned max_conn)
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
    ht_server s = {.pid = pid, .port = 0, .err = pfd[0]};
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
void ht_stop(ht_server *s)
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

/* Connect to 127.0.0.1:port (TCP_NODELAY); each read on it waits at
 * most 5 s. */
ht_client *ht_dial(int port)
{
    ht_client *c = calloc(1, sizeof *c);
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

void ht_hang_up(ht_client *c)
{
    close(c->fd);
    free(c);
}

void ht_say(ht_client *c, const char *s, size_t n)
{
    while (n) {
        ssize_t k = send(c->fd, s, n, MSG_NOSIGNAL);
        CHECK_CMP_INT(k, >, 0);
        s += k;
        n -= (size_t)k;
    }
}

/* A field's value in r->head ("" if absent); case-insensitive name. */
const char *ht_field(const ht_response *r, const char *name, char *out,
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
int ht_hear(ht_client *c, ht_response *r, int head_only)
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
                head_only
                    ? 0
                    : strtoul(ht_field(r, "Content-Length", cl, sizeof cl),
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
void ht_expect(ht_client *c, ht_response *r, int status)
{
    if (ht_hear(c, r, 0))
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
long ht_closed_within(ht_client *c, unsigned ms)
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

/* The fields every answer carries: Server, and Date (IMF-fixdate, now
 * within 5 s, its weekday right). */
void ht_check_common(const ht_response *r)
{
    char v[128];
    CHECK_EQ_STR(ht_field(r, "Server", v, sizeof v), "weft");
    /* Date: IMF-fixdate, now (within 5 s). */
    ht_field(r, "Date", v, sizeof v);
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

void ht_check_plaintext(const ht_response *r)
{
    char v[64];
    CHECK_EQ_INT(r->status, 200);
    CHECK(strncmp(r->head, "HTTP/1.1 200 OK\r\n", 17) == 0);
    ht_check_common(r);
    CHECK_EQ_STR(ht_field(r, "Content-Type", v, sizeof v), "text/plain");
    CHECK_EQ_STR(ht_field(r, "Content-Length", v, sizeof v), "13");
    CHECK_EQ_STR(r->body, "Hello, World!");
}

void ht_check_json(const ht_response *r)
{
    char v[64];
    CHECK_EQ_INT(r->status, 200);
    ht_check_common(r);
    CHECK_EQ_STR(ht_field(r, "Content-Type", v, sizeof v), "application/json");
    CHECK_EQ_STR(ht_field(r, "Content-Length", v, sizeof v), "27");
    CHECK_EQ_STR(r->body, "{\"message\":\"Hello, World!\"}");
}
