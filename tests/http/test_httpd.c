/*
 * test_httpd.c - examples/httpd.c end to end, its protocol: each test
 * starts the server binary (httpd_client.h), talks to it over plain
 * sockets and stops it with SIGTERM, which must end it with status 0
 * (under ASan, with no leak). What is checked: the answers and their
 * headers, keep-alive, pipelining and its order, a request cut into
 * one-byte writes, bodies skipped, and closing (Connection: close,
 * HTTP/1.0, errors). The limits against hostile clients are in
 * test_httpd_limits.c.
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

TEST_T(http, server_plaintext_and_json, 60)
{
    ht_server s = ht_start(10000, 100);
    ht_client *c = ht_dial(s.port);
    ht_response r;
    char v[64];
    HT_SAY(c, GET("/plaintext"));
    ht_expect(c, &r, 200);
    ht_check_plaintext(&r);
    CHECK_EQ_STR(ht_field(&r, "Connection", v, sizeof v), "");
    HT_SAY(c, GET("/json"));
    ht_expect(c, &r, 200);
    ht_check_json(&r);
    /* A query does not change the route, nor the absolute form. */
    HT_SAY(c, GET("/plaintext?x=1"));
    ht_expect(c, &r, 200);
    ht_check_plaintext(&r);
    HT_SAY(c, GET("http://t/json?y"));
    ht_expect(c, &r, 200);
    ht_check_json(&r);
    HT_SAY(c, GET("http://t"));
    ht_expect(c, &r, 404);
    ht_hang_up(c);
    ht_stop(&s);
}

TEST_T(http, server_404_405_head_keep_the_connection, 60)
{
    ht_server s = ht_start(10000, 100);
    ht_client *c = ht_dial(s.port);
    ht_response r;
    char v[64];
    HT_SAY(c, GET("/nope"));
    ht_expect(c, &r, 404);
    ht_check_common(&r);
    HT_SAY(c, GET("/plaintext/"));
    ht_expect(c, &r, 404);
    HT_SAY(c, "POST /plaintext HTTP/1.1\r\n" H "Content-Length: 0\r\n\r\n");
    ht_expect(c, &r, 405);
    CHECK_EQ_STR(ht_field(&r, "Allow", v, sizeof v), "GET, HEAD");
    /* HEAD: the GET's fields, no body (the next response would not
     * parse if one had been sent). */
    HT_SAY(c, "HEAD /json HTTP/1.1\r\n" H "\r\n");
    CHECK_EQ_INT(ht_hear(c, &r, 1), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_STR(ht_field(&r, "Content-Length", v, sizeof v), "27");
    HT_SAY(c, GET("/plaintext"));
    ht_expect(c, &r, 200);
    ht_check_plaintext(&r);
    ht_hang_up(c);
    ht_stop(&s);
}

TEST_T(http, server_400_and_closes, 60)
{
    ht_server s = ht_start(10000, 100);
    static const char *const bad[] = {
        "GET / HTTP/1.1\r\n" H "Bad Header: x\r\n\r\n",
        "GET /plaintext HTTP/1.1\r\n\r\n", /* no Host */
        "GET  /plaintext HTTP/1.1\r\n" H "\r\n",
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", /* TLS */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ht_client *c = ht_dial(s.port);
        ht_response r;
        char v[64];
        /* A good request first: it is answered, then the bad one. */
        HT_SAY(c, GET("/plaintext"));
        HT_SAY(c, bad[i]);
        ht_expect(c, &r, 200);
        ht_expect(c, &r, 400);
        ht_check_common(&r);
        CHECK_EQ_STR(ht_field(&r, "Connection", v, sizeof v), "close");
        CHECK_CMP_INT(ht_closed_within(c, 3000), >=, 0);
        ht_hang_up(c);
    }
    ht_stop(&s);
}

TEST_T(http, server_431_414_413_501_and_close, 60)
{
    ht_server s = ht_start(10000, 100);
    size_t big = 9000; /* over the server's 8 KiB */
    char *req = malloc(big + 256);
    CHECK_NOT_NULL(req);
    /* Fields over 8 KiB: 431. */
    int n = snprintf(req, 256, "GET /plaintext HTTP/1.1\r\n" H "X: ");
    memset(req + n, 'x', big);
    strcpy(req + n + big, "\r\n\r\n");
    ht_client *c = ht_dial(s.port);
    ht_response r;
    ht_say(c, req, strlen(req));
    ht_expect(c, &r, 431);
    CHECK_CMP_INT(ht_closed_within(c, 3000), >=, 0);
    ht_hang_up(c);
    /* A target over 8 KiB: 414. */
    memset(req, 'a', big);
    memcpy(req, "GET /", 5);
    strcpy(req + big, " HTTP/1.1\r\n" H "\r\n");
    c = ht_dial(s.port);
    ht_say(c, req, strlen(req));
    ht_expect(c, &r, 414);
    CHECK_CMP_INT(ht_closed_within(c, 3000), >=, 0);
    ht_hang_up(c);
    free(req);
    c = ht_dial(s.port);
    HT_SAY(c,
           "POST /plaintext HTTP/1.1\r\n" H "Content-Length: 99999999\r\n\r\n");
    ht_expect(c, &r, 413);
    CHECK_CMP_INT(ht_closed_within(c, 3000), >=, 0);
    ht_hang_up(c);
    c = ht_dial(s.port);
    HT_SAY(c, "POST /plaintext HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\n"
              "\r\n0\r\n\r\n");
    ht_expect(c, &r, 501);
    CHECK_CMP_INT(ht_closed_within(c, 3000), >=, 0);
    ht_hang_up(c);
    c = ht_dial(s.port);
    HT_SAY(c, "GET /plaintext HTTP/2.0\r\n" H "\r\n");
    ht_expect(c, &r, 505);
    CHECK_CMP_INT(ht_closed_within(c, 3000), >=, 0);
    ht_hang_up(c);
    ht_stop(&s);
}

TEST_T(http, server_keep_alive, 60)
{
    ht_server s = ht_start(10000, 100);
    ht_client *c = ht_dial(s.port);
    ht_response r;
    for (int i = 0; i < 5; i++) {
        HT_SAY(c, GET("/plaintext"));
        ht_expect(c, &r, 200);
        ht_check_plaintext(&r);
    }
    /* Still open: nothing more, and no close, for a while. */
    CHECK_EQ_INT(ht_closed_within(c, 300), -1);
    HT_SAY(c, GET("/json"));
    ht_expect(c, &r, 200);
    ht_hang_up(c);
    ht_stop(&s);
}

static const char *const paths[3] = {"/plaintext", "/json", "/nope"};

/* k pipelined GETs cycling through paths[], into buf: their length. */
static size_t batch(char *buf, size_t cap, int k)
{
    size_t n = 0;
    for (int i = 0; i < k; i++)
        n += (size_t)snprintf(buf + n, cap - n, "GET %s HTTP/1.1\r\n" H "\r\n",
                              paths[i % 3]);
    CHECK_CMP_U64(n, <, cap);
    return n;
}

/* Read the k answers of batch(k), in order. */
static void hear_batch(ht_client *c, int k)
{
    ht_response r;
    for (int i = 0; i < k; i++) {
        CHECK_EQ_INT(ht_hear(c, &r, 0), 0);
        if (i % 3 == 0)
            ht_check_plaintext(&r);
        else if (i % 3 == 1)
            ht_check_json(&r);
        else
            CHECK_EQ_INT(r.status, 404);
    }
}

TEST_T(http, server_pipelined_16_in_order, 60)
{
    ht_server s = ht_start(10000, 100);
    ht_client *c = ht_dial(s.port);
    static char all[16384];
    size_t n = batch(all, sizeof all, 16);
    ht_say(c, all, n); /* one write */
    hear_batch(c, 16);
    /* Again, cut in the middle of a request. */
    ht_say(c, all, n / 2 + 7);
    usleep(50000);
    ht_say(c, all + n / 2 + 7, n - n / 2 - 7);
    hear_batch(c, 16);
    /* 300 in one write: their answers outgrow the server's output buffer
     * (8 KiB), which is written out as it fills. */
    n = batch(all, sizeof all, 300);
    ht_say(c, all, n);
    hear_batch(c, 300);
    ht_hang_up(c);
    ht_stop(&s);
}

TEST_T(http, server_request_in_one_byte_writes, 60)
{
    ht_server s = ht_start(10000, 100);
    ht_client *c = ht_dial(s.port);
    const char *req = "GET /plaintext HTTP/1.1\r\n" H "Accept: */*\r\n\r\n";
    for (size_t i = 0; req[i]; i++) {
        ht_say(c, req + i, 1);
        usleep(2000);
    }
    ht_response r;
    ht_expect(c, &r, 200);
    ht_check_plaintext(&r);
    ht_hang_up(c);
    ht_stop(&s);
}

TEST_T(http, server_connection_close, 60)
{
    ht_server s = ht_start(10000, 100);
    ht_client *c = ht_dial(s.port);
    ht_response r;
    char v[64];
    /* A request behind the closing one is not answered. */
    HT_SAY(c, "GET /plaintext HTTP/1.1\r\n" H
              "Connection: close\r\n\r\n" GET("/json"));
    ht_expect(c, &r, 200);
    ht_check_plaintext(&r);
    CHECK_EQ_STR(ht_field(&r, "Connection", v, sizeof v), "close");
    CHECK_CMP_INT(ht_closed_within(c, 3000), >=, 0);
    ht_hang_up(c);
    /* HTTP/1.0: closed unless it asks; kept when it does, and told so. */
    c = ht_dial(s.port);
    HT_SAY(c, "GET /plaintext HTTP/1.0\r\n\r\n");
    ht_expect(c, &r, 200);
    ht_check_plaintext(&r);
    CHECK_EQ_STR(ht_field(&r, "Connection", v, sizeof v), "close");
    CHECK_CMP_INT(ht_closed_within(c, 3000), >=, 0);
    ht_hang_up(c);
    c = ht_dial(s.port);
    HT_SAY(c, "GET /json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    ht_expect(c, &r, 200);
    ht_check_json(&r);
    CHECK_EQ_STR(ht_field(&r, "Connection", v, sizeof v), "keep-alive");
    CHECK_EQ_INT(ht_closed_within(c, 300), -1);
    HT_SAY(c, "GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    ht_expect(c, &r, 200);
    ht_hang_up(c);
    ht_stop(&s);
}

TEST_T(http, server_body_is_skipped, 60)
{
    ht_server s = ht_start(10000, 100);
    ht_client *c = ht_dial(s.port);
    ht_response r;
    /* The body looks like a request: it must not be taken for one. */
    HT_SAY(c, "GET /plaintext HTTP/1.1\r\n" H "Content-Length: 22\r\n\r\n"
              "GET /nope HTTP/1.1\r\n\r\n" GET("/json"));
    ht_expect(c, &r, 200);
    ht_check_plaintext(&r);
    ht_expect(c, &r, 200);
    ht_check_json(&r);
    /* A body arriving after its head, in pieces. */
    HT_SAY(c, "GET /json HTTP/1.1\r\n" H "Content-Length: 10\r\n\r\n");
    ht_expect(c, &r, 200);
    HT_SAY(c, "01234");
    usleep(20000);
    HT_SAY(c, "56789" GET("/plaintext"));
    ht_expect(c, &r, 200);
    ht_check_plaintext(&r);
    ht_hang_up(c);
    ht_stop(&s);
}
