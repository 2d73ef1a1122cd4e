/*
 * test_httpd_limits.c - examples/httpd.c against hostile clients, end to
 * end as in test_httpd.c: the per-request deadline against silent and
 * slow clients and against one that never reads its answers, the
 * connection cap, and SIGTERM with connections open.
 *
 * Timing: the server's deadline is set short (HTTPD_READ_TIMEOUT_MS)
 * where a test needs it. Bounds on how late a close may come are generous
 * (a loaded machine, sanitizer builds); bounds on how early are what tell
 * a per-request deadline from a per-read one.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "httpd_client.h"

/* HTTPD_READ_TIMEOUT_MS=500: a silent client and a client sending its
 * head a byte every 100 ms are both closed, near 500 ms after they
 * connected (a deadline per read would never close the second), while a
 * client making a request every 200 ms is served for longer than that. */
TEST_T(http, server_read_deadline, 60)
{
    unsigned ms = 500;
    ht_server s = ht_start(ms, 100);
    ht_client *quiet = ht_dial(s.port);
    ht_client *slow = ht_dial(s.port);
    ht_client *busy = ht_dial(s.port);
    uint64_t t0 = test_now_ms();
    const char *req = "GET /plaintext HTTP/1.1\r\n" H "X: slowly\r\n\r\n";
    long slow_at = -1, quiet_at = -1;
    ht_response r;
    for (size_t i = 0; test_now_ms() - t0 < 3000; i++) {
        if (slow_at < 0) {
            if (req[i] && send(slow->fd, req + i, 1, MSG_NOSIGNAL) != 1)
                slow_at = (long)(test_now_ms() - t0); /* reset */
            else if (ht_closed_within(slow, 0) >= 0)
                slow_at = (long)(test_now_ms() - t0);
        }
        if (quiet_at < 0 && ht_closed_within(quiet, 0) >= 0)
            quiet_at = (long)(test_now_ms() - t0);
        if (i % 2 == 0) {
            HT_SAY(busy, GET("/plaintext"));
            ht_expect(busy, &r, 200);
        }
        usleep(100000);
    }
    if (quiet_at < 0 || slow_at < 0)
        weft_check_fail(__FILE__, __LINE__,
                        "still open after 3 s: the silent client %s, the "
                        "slow one %s",
                        quiet_at < 0 ? "yes" : "no",
                        slow_at < 0 ? "yes" : "no");
    CHECK_CMP_INT(quiet_at, >=, (long)ms - 100);
    CHECK_CMP_INT(quiet_at, <=, (long)ms + 1500);
    CHECK_CMP_INT(slow_at, >=, (long)ms - 100);
    CHECK_CMP_INT(slow_at, <=, (long)ms + 1500);
    /* The busy one is still served. */
    HT_SAY(busy, GET("/json"));
    ht_expect(busy, &r, 200);
    ht_hang_up(quiet);
    ht_hang_up(slow);
    ht_hang_up(busy);
    ht_stop(&s);
}

/* HTTPD_READ_TIMEOUT_MS=500: a client that pipelines requests and never
 * reads the answers fills the server's send buffer; the server's write
 * waits until the deadline, then the connection is closed (the client's
 * sends fail), while another client is served meanwhile. */
TEST_T(http, server_client_that_does_not_read, 60)
{
    ht_server s = ht_start(500, 100);
    ht_client *c = ht_dial(s.port), *other = ht_dial(s.port);
    char batch[64 * 40];
    size_t n = 0;
    for (int i = 0; i < 64; i++)
        n += (size_t)snprintf(batch + n, sizeof batch - n, GET("/plaintext"));
    uint64_t t0 = test_now_ms(), stalled = 0;
    int gone = 0;
    ht_response r;
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
            HT_SAY(other, GET("/json"));
            ht_expect(other, &r, 200);
        }
    }
    CHECK(gone);
    CHECK(stalled != 0);
    /* Closed near the deadline after the stall, not at once. */
    CHECK_CMP_U64(test_now_ms() - stalled, <=, 5000);
    HT_SAY(other, GET("/plaintext"));
    ht_expect(other, &r, 200);
    ht_hang_up(c);
    ht_hang_up(other);
    ht_stop(&s);
}

/* HTTPD_MAX_CONN=2: a third connection is answered 503 and closed while
 * the two are served; once one leaves, a new one is served. */
TEST_T(http, server_connection_cap, 60)
{
    ht_server s = ht_start(10000, 2);
    ht_client *a = ht_dial(s.port), *b = ht_dial(s.port);
    ht_response r;
    char v[64];
    /* A round trip on each: both are accepted and counted. */
    HT_SAY(a, GET("/plaintext"));
    ht_expect(a, &r, 200);
    HT_SAY(b, GET("/plaintext"));
    ht_expect(b, &r, 200);
    for (int i = 0; i < 3; i++) {
        ht_client *x = ht_dial(s.port);
        ht_expect(x, &r, 503);
        CHECK_EQ_STR(ht_field(&r, "Connection", v, sizeof v), "close");
        CHECK_CMP_INT(ht_closed_within(x, 3000), >=, 0);
        ht_hang_up(x);
        HT_SAY(a, GET("/json"));
        ht_expect(a, &r, 200);
        ht_check_json(&r);
    }
    ht_hang_up(b);
    /* b's task ends when it reads the end of file: retry until then. */
    uint64_t until = test_now_ms() + 5000;
    for (;;) {
        ht_client *x = ht_dial(s.port);
        HT_SAY(x, GET("/plaintext"));
        /* Refused: a 503, or a reset that lost it (the request was
         * unread when the server closed). */
        int st = ht_hear(x, &r, 0) == 0 ? r.status : 0;
        ht_hang_up(x);
        if (st == 200)
            break;
        if (st != 0)
            CHECK_EQ_INT(st, 503);
        CHECK(test_now_ms() < until);
        usleep(20000);
    }
    ht_hang_up(a);
    ht_stop(&s);
}

/* SIGTERM with connections open (one idle, one mid-request, one with a
 * pipelined batch outstanding): exit 0 (checked by stop). */
TEST_T(http, server_sigterm_with_open_connections, 60)
{
    ht_server s = ht_start(10000, 100);
    ht_client *idle = ht_dial(s.port), *mid = ht_dial(s.port),
              *used = ht_dial(s.port);
    ht_response r;
    HT_SAY(used, GET("/plaintext"));
    ht_expect(used, &r, 200);
    HT_SAY(mid, "GET /plaintext HTTP/1.1\r\nHo");
    usleep(50000);
    ht_stop(&s);
    /* Every connection is closed by the exit. */
    CHECK_CMP_INT(ht_closed_within(idle, 3000), >=, 0);
    CHECK_CMP_INT(ht_closed_within(mid, 3000), >=, 0);
    CHECK_CMP_INT(ht_closed_within(used, 3000), >=, 0);
    ht_hang_up(idle);
    ht_hang_up(mid);
    ht_hang_up(used);
}
