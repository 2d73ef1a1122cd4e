/*
 * test_http_parse.c - examples/http_parse.c, the request parser of
 * examples/httpd.c: the grammar it accepts and refuses (http_parse.h),
 * its limits, pipelined requests with bodies, and that where the input is
 * cut never matters.
 *
 * Every input is parsed by drive(), which does what the server does:
 * requests one after another, each body skipped, the bytes arriving in
 * pieces. Each parse call gets a heap copy of exactly the bytes given,
 * so ASan sees a read past them. An input is checked whole, then cut at
 * every byte (two pieces), then a byte at a time, and each run must give
 * the outcomes of the whole one.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "http_parse.h"

/* What one request gave. */
typedef struct outcome {
    int ret;         /* HTTP_DONE, HTTP_ERROR, or HTTP_MORE at the end */
    unsigned status; /* after HTTP_ERROR */
    http_request req;
    char method[16], target[64]; /* copies (cut to fit) */
} outcome;

#define MAX_OUT 8

/* Parse in[0..n) request after request as the bytes arrive: the first
 * piece ends at cut[0], the next at cut[1], ..., the last at n. At most
 * MAX_OUT outcomes; returns their number. */
static int drive(const char *in, size_t n, const size_t *cut, size_t ncut,
                 outcome *out)
{
    size_t off = 0, skip = 0, avail = 0, next = 0;
    int k = 0;
    http_parser p;
    http_parse_init(&p);
    while (k < MAX_OUT) {
        avail = next < ncut ? cut[next++] : n;
        for (;;) {
            size_t d = skip < avail - off ? skip : avail - off;
            off += d;
            skip -= d;
            if (skip)
                break;
            size_t len = avail - off;
            char *copy = malloc(len ? len : 1);
            CHECK_NOT_NULL(copy);
            memcpy(copy, in + off, len);
            int r = http_parse(&p, copy, len);
            outcome *o = &out[k];
            memset(o, 0, sizeof *o);
            o->ret = r;
            if (r == HTTP_DONE) {
                o->req = p.req;
                size_t ml = p.req.method_len, tl = p.req.target_len;
                memcpy(o->method, copy + p.req.method_off, ml < 15 ? ml : 15);
                memcpy(o->target, copy + p.req.target_off, tl < 63 ? tl : 63);
            }
            free(copy);
            if (r == HTTP_MORE)
                break;
            k++;
            if (r == HTTP_ERROR) {
                out[k - 1].status = p.status;
                return k;
            }
            off += p.req.head_len;
            skip = p.req.content_length;
            http_parse_init(&p);
            if (k == MAX_OUT)
                return k;
        }
        if (avail == n) {
            if (off < n || skip) /* an incomplete request at the end */
                out[k++].ret = HTTP_MORE;
            return k;
        }
    }
    return k;
}

/* Field by field: padding bytes are not part of a result. */
static int same(const outcome *a, const outcome *b)
{
    const http_request *x = &a->req, *y = &b->req;
    return a->ret == b->ret && a->status == b->status &&
           x->method_off == y->method_off && x->method_len == y->method_len &&
           x->target_off == y->target_off && x->target_len == y->target_len &&
           x->head_len == y->head_len &&
           x->content_length == y->content_length && x->minor == y->minor &&
           x->keep_alive == y->keep_alive && !strcmp(a->method, b->method) &&
           !strcmp(a->target, b->target);
}

static void check_same(const outcome *a, int na, const outcome *b, int nb,
                       const char *how, size_t at)
{
    if (na != nb)
        weft_check_fail(__FILE__, __LINE__, "%s %zu: %d outcomes, whole: %d",
                        how, at, nb, na);
    for (int i = 0; i < na; i++)
        if (!same(&a[i], &b[i]))
            weft_check_fail(__FILE__, __LINE__,
                            "%s %zu: outcome %d differs from the whole "
                            "input's (ret %d/%d status %u/%u target "
                            "\"%s\"/\"%s\")",
                            how, at, i, b[i].ret, a[i].ret, b[i].status,
                            a[i].status, b[i].target, a[i].target);
}

/* Parse in[0..n) whole into out, check that every cut gives the same,
 * and return the number of outcomes. */
static int parse_all(const char *in, size_t n, outcome *out)
{
    int k = drive(in, n, NULL, 0, out);
    outcome o2[MAX_OUT];
    for (size_t c = 1; c < n; c++) {
        memset(o2, 0, sizeof o2);
        check_same(out, k, o2, drive(in, n, &c, 1, o2), "cut at", c);
    }
    size_t *cuts = malloc((n ? n : 1) * sizeof *cuts);
    CHECK_NOT_NULL(cuts);
    for (size_t c = 0; c < n; c++)
        cuts[c] = c + 1;
    memset(o2, 0, sizeof o2);
    check_same(out, k, o2, drive(in, n, cuts, n, o2), "bytewise, n =", n);
    free(cuts);
    return k;
}

/* One request, complete: its outcome. */
static outcome one(const char *in)
{
    outcome o[MAX_OUT];
    memset(o, 0, sizeof o);
    int k = parse_all(in, strlen(in), o);
    CHECK_CMP_INT(k, >=, 1);
    return o[0];
}

/* The status a malformed request gets. */
static unsigned refused(const char *in)
{
    outcome o = one(in);
    if (o.ret != HTTP_ERROR)
        weft_check_fail(__FILE__, __LINE__,
                        "not refused (ret %d, target \"%s\"): \"%s\"", o.ret,
                        o.target, in);
    return o.status;
}

#define H "Host: a\r\n"

TEST(http, parse_simple_get)
{
    const char *in = "GET /plaintext HTTP/1.1\r\n" H "\r\n";
    outcome o = one(in);
    CHECK_EQ_INT(o.ret, HTTP_DONE);
    CHECK_EQ_STR(o.method, "GET");
    CHECK_EQ_STR(o.target, "/plaintext");
    CHECK_EQ_INT(o.req.minor, 1);
    CHECK_EQ_INT(o.req.keep_alive, 1);
    CHECK_EQ_INT(o.req.content_length, 0);
    CHECK_EQ_INT(o.req.head_len, strlen(in));
    CHECK_EQ_INT(o.req.method_off, 0);
    CHECK_EQ_INT(o.req.target_off, 4);
}

TEST(http, parse_prefix_is_more)
{
    const char *in = "GET /plaintext HTTP/1.1\r\n" H "\r\n";
    for (size_t n = 0; n < strlen(in); n++) {
        http_parser p;
        http_parse_init(&p);
        CHECK_EQ_INT(http_parse(&p, in, n), HTTP_MORE);
    }
}

TEST(http, parse_versions_and_persistence)
{
    outcome o = one("GET / HTTP/1.0\r\n\r\n");
    CHECK_EQ_INT(o.ret, HTTP_DONE);
    CHECK_EQ_INT(o.req.minor, 0);
    CHECK_EQ_INT(o.req.keep_alive, 0);
    o = one("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    CHECK_EQ_INT(o.req.keep_alive, 1);
    o = one("GET / HTTP/1.0\r\nConnection: Upgrade ,\tKeep-Alive\r\n\r\n");
    CHECK_EQ_INT(o.req.keep_alive, 1);
    o = one("GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close"
            "\r\n\r\n");
    CHECK_EQ_INT(o.req.keep_alive, 0);
    o = one("GET / HTTP/1.1\r\n" H "Connection: close\r\n\r\n");
    CHECK_EQ_INT(o.ret, HTTP_DONE);
    CHECK_EQ_INT(o.req.keep_alive, 0);
    o = one("GET / HTTP/1.1\r\n" H "connection: keep-alive, CLOSE\r\n\r\n");
    CHECK_EQ_INT(o.req.keep_alive, 0);
    /* Tokens are whole: "closed" is not "close". */
    o = one("GET / HTTP/1.1\r\n" H "Connection: closed\r\n\r\n");
    CHECK_EQ_INT(o.req.keep_alive, 1);
    /* A later minor version reads as 1.1. */
    o = one("GET / HTTP/1.7\r\n" H "\r\n");
    CHECK_EQ_INT(o.ret, HTTP_DONE);
    CHECK_EQ_INT(o.req.minor, 1);
    CHECK_EQ_INT(refused("GET / HTTP/2.0\r\n" H "\r\n"), 505);
    CHECK_EQ_INT(refused("GET / HTTP/0.9\r\n\r\n"), 505);
}

TEST(http, parse_lenient_where_the_rfc_allows)
{
    /* A lone LF ends a line; empty lines before the request are skipped. */
    outcome o = one("GET /a HTTP/1.1\nHost: a\n\n");
    CHECK_EQ_INT(o.ret, HTTP_DONE);
    CHECK_EQ_STR(o.target, "/a");
    const char *lead = "\r\n\n\r\nGET /b HTTP/1.1\r\n" H "\r\n";
    o = one(lead);
    CHECK_EQ_INT(o.ret, HTTP_DONE);
    CHECK_EQ_INT(o.req.method_off, 5);
    CHECK_EQ_STR(o.target, "/b");
    CHECK_EQ_INT(o.req.head_len, strlen(lead));
    /* Any token is a method (case matters to the server, not here). */
    o = one("get /c HTTP/1.1\r\n" H "\r\n");
    CHECK_EQ_STR(o.method, "get");
    /* Targets in every form; values with inner and outer whitespace,
     * empty values, obs-text. */
    o = one("GET /json?x=1&y=%20 HTTP/1.1\r\n" H "\r\n");
    CHECK_EQ_STR(o.target, "/json?x=1&y=%20");
    o = one("OPTIONS * HTTP/1.1\r\n" H "\r\n");
    CHECK_EQ_STR(o.target, "*");
    o = one("GET http://a/b HTTP/1.1\r\nhOsT:a\r\nX:   a b  \t\r\nY:\r\n"
            "Z: \xe2\x9c\x93\r\n\r\n");
    CHECK_EQ_INT(o.ret, HTTP_DONE);
    CHECK_EQ_STR(o.target, "http://a/b");
    /* Host may be empty (RFC 9112 section 3.2). */
    CHECK_EQ_INT(one("GET / HTTP/1.1\r\nHost:\r\n\r\n").ret, HTTP_DONE);
}

TEST(http, parse_refuses_malformed)
{
    static const char *const bad[] = {
        "GET  / HTTP/1.1\r\n" H "\r\n",           /* two spaces */
        "GET /  HTTP/1.1\r\n" H "\r\n",           /* two spaces */
        "GET / HTTP/1.1 \r\n" H "\r\n",           /* trailing space */
        " GET / HTTP/1.1\r\n" H "\r\n",           /* leading space */
        "GET\t/ HTTP/1.1\r\n" H "\r\n",           /* tab separator */
        "G(T / HTTP/1.1\r\n" H "\r\n",            /* not a token */
        "GET / http/1.1\r\n" H "\r\n",            /* name is case-sensitive */
        "GET / HTTP/1.\r\n" H "\r\n",             /* short version */
        "GET / HTTP/1.10\r\n" H "\r\n",           /* long version */
        "GET / HTTP/11\r\n" H "\r\n",             /* no dot */
        "GET / HTTP/a.1\r\n" H "\r\n",            /* not a digit */
        "GET /\r\n\r\n",                          /* HTTP/0.9 */
        "GET /\x7f HTTP/1.1\r\n" H "\r\n",        /* DEL in target */
        "GET /\xc3\xa9 HTTP/1.1\r\n" H "\r\n",    /* non-ASCII target */
        "GET / HTTP/1.1\r" H "\r\n",              /* bare CR */
        "GET / HTTP/1.1\r\n" H "\r\r\n",          /* bare CR at the end */
        "GET / HTTP/1.1\r\n" H "X: a\rb\r\n\r\n", /* bare CR in a value */
        "GET / HTTP/1.1\r\n" H "Bad Name: x\r\n\r\n",
        "GET / HTTP/1.1\r\n" H "X : x\r\n\r\n", /* space before colon */
        "GET / HTTP/1.1\r\n" H ": x\r\n\r\n",   /* empty name */
        "GET / HTTP/1.1\r\n" H "NoColon\r\n\r\n",
        "GET / HTTP/1.1\r\n" H "X: a\r\n b\r\n\r\n", /* obs-fold */
        "GET / HTTP/1.1\r\n" H "X: a\x01"
        "b\r\n\r\n",                               /* control byte */
        "GET / HTTP/1.1\r\n" H "X: a\x7f\r\n\r\n", /* DEL */
        "GET / HTTP/1.1\r\n\r\n",                  /* 1.1 without Host */
        "GET / HTTP/1.1\r\n" H H "\r\n",           /* two Hosts */
        "GET / HTTP/1.0\r\n" H H "\r\n",           /* two Hosts */
        "GET / HTTP/1.1\r\n" H "Content-Length: 5a\r\n\r\n",
        "GET / HTTP/1.1\r\n" H "Content-Length: -1\r\n\r\n",
        "GET / HTTP/1.1\r\n" H "Content-Length: +1\r\n\r\n",
        "GET / HTTP/1.1\r\n" H "Content-Length:\r\n\r\n",
        "GET / HTTP/1.1\r\n" H "Content-Length: 5, 5\r\n\r\n",
        "GET / HTTP/1.1\r\n" H "Content-Length: 5\r\nContent-Length: 6\r\n"
        "\r\n",
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", /* a TLS hello */
    };
    /* NUL in the target and in a value (strlen would stop at them). */
    static const char nul1[] = "GET /\0 HTTP/1.1\r\n" H "\r\n";
    static const char nul2[] = "GET / HTTP/1.1\r\n" H "X: a\0b\r\n\r\n";
    outcome o[MAX_OUT];
    CHECK_EQ_INT(parse_all(nul1, sizeof nul1 - 1, o), 1);
    CHECK_EQ_INT(o[0].ret, HTTP_ERROR);
    CHECK_EQ_INT(o[0].status, 400);
    CHECK_EQ_INT(parse_all(nul2, sizeof nul2 - 1, o), 1);
    CHECK_EQ_INT(o[0].ret, HTTP_ERROR);
    CHECK_EQ_INT(o[0].status, 400);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned st = refused(bad[i]);
        if (st != 400)
            weft_check_fail(__FILE__, __LINE__, "bad[%zu]: status %u, not 400",
                            i, st);
    }
}

TEST(http, parse_bodies)
{
    const char *in = "POST /p HTTP/1.1\r\n" H "Content-Length: 5\r\n\r\nhello";
    outcome o = one(in);
    CHECK_EQ_INT(o.ret, HTTP_DONE);
    CHECK_EQ_INT(o.req.content_length, 5);
    CHECK_EQ_INT(o.req.head_len, strlen(in) - 5);
    /* The same value twice, and surrounding whitespace, are fine. */
    o = one("POST /p HTTP/1.1\r\n" H "Content-Length:  7 \r\n"
            "content-length: 0007\r\n\r\n");
    CHECK_EQ_INT(o.ret, HTTP_DONE);
    CHECK_EQ_INT(o.req.content_length, 7);
    char big[128];
    snprintf(big, sizeof big,
             "POST / HTTP/1.1\r\n" H "Content-Length: %d\r\n\r\n",
             HTTP_MAX_BODY);
    o = one(big);
    CHECK_EQ_INT(o.ret, HTTP_DONE);
    CHECK_EQ_INT(o.req.content_length, HTTP_MAX_BODY);
    snprintf(big, sizeof big,
             "POST / HTTP/1.1\r\n" H "Content-Length: %d\r\n\r\n",
             HTTP_MAX_BODY + 1);
    CHECK_EQ_INT(refused(big), 413);
    CHECK_EQ_INT(refused("POST / HTTP/1.1\r\n" H
                         "Content-Length: 99999999999999999999999\r\n\r\n"),
                 413);
    /* Transfer codings are not implemented, with or without a length. */
    CHECK_EQ_INT(refused("POST / HTTP/1.1\r\n" H
                         "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
                 501);
    CHECK_EQ_INT(refused("POST / HTTP/1.1\r\n" H "Content-Length: 3\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n"),
                 501);
}

/* A head of exactly n bytes: a request line, Host, and one field padded
 * to fit. */
static char *head_of(size_t n)
{
    const char *pre = "GET / HTTP/1.1\r\n" H "X: ";
    const char *post = "\r\n\r\n";
    size_t fixed = strlen(pre) + strlen(post);
    CHECK_CMP_U64(n, >, fixed);
    char *s = malloc(n + 1);
    CHECK_NOT_NULL(s);
    strcpy(s, pre);
    memset(s + strlen(pre), 'x', n - fixed);
    strcpy(s + n - strlen(post), post);
    return s;
}

TEST_T(http, parse_head_limit, 120)
{
    char *s = head_of(HTTP_MAX_HEAD);
    outcome o = one(s);
    CHECK_EQ_INT(o.ret, HTTP_DONE);
    CHECK_EQ_INT(o.req.head_len, HTTP_MAX_HEAD);
    free(s);
    s = head_of(HTTP_MAX_HEAD + 1);
    CHECK_EQ_INT(refused(s), 431);
    free(s);
    /* Many small fields over the limit. */
    size_t n = 0, cap = 2 * HTTP_MAX_HEAD;
    s = malloc(cap);
    CHECK_NOT_NULL(s);
    n += (size_t)snprintf(s, cap, "GET / HTTP/1.1\r\n" H);
    while (n < HTTP_MAX_HEAD + 100)
        n += (size_t)snprintf(s + n, cap - n, "F%zu: v\r\n", n);
    snprintf(s + n, cap - n, "\r\n");
    CHECK_EQ_INT(refused(s), 431);
    /* A request line over the limit is 414, empty lines over it 400. */
    size_t over = HTTP_MAX_HEAD + 64;
    memset(s, 'a', over);
    s[over] = '\0';
    memcpy(s, "GET /", 5);
    CHECK_EQ_INT(refused(s), 414);
    for (size_t i = 0; i < over; i += 2)
        memcpy(s + i, "\r\n", 2);
    CHECK_EQ_INT(refused(s), 400);
    free(s);
}

TEST(http, parse_pipelined_requests_with_bodies)
{
    /* A head of exactly the limit between others: the bytes after a
     * complete head do not count against it. */
    char *max = head_of(HTTP_MAX_HEAD);
    size_t cap = HTTP_MAX_HEAD + 512;
    char *in = malloc(cap);
    CHECK_NOT_NULL(in);
    snprintf(in, cap,
             "GET /one HTTP/1.1\r\n" H "\r\n"
             "POST /two HTTP/1.1\r\n" H "Content-Length: 11\r\n\r\n"
             "GET /x HTTP" /* the body */
             "%sGET /four HTTP/1.0\r\n\r\n"
             "GET /five HTTP/1.1\r\n",
             max);
    outcome o[MAX_OUT];
    memset(o, 0, sizeof o);
    /* Cut at every byte: 8 KiB squared steps, with a copy each. */
    int k = parse_all(in, strlen(in), o);
    CHECK_EQ_INT(k, 5);
    CHECK_EQ_STR(o[0].target, "/one");
    CHECK_EQ_STR(o[1].target, "/two");
    CHECK_EQ_INT(o[1].req.content_length, 11);
    CHECK_EQ_INT(o[2].ret, HTTP_DONE);
    CHECK_EQ_INT(o[2].req.head_len, HTTP_MAX_HEAD);
    CHECK_EQ_STR(o[3].target, "/four");
    CHECK_EQ_INT(o[3].req.keep_alive, 0);
    CHECK_EQ_INT(o[4].ret, HTTP_MORE); /* the fifth is incomplete */
    free(in);
    free(max);
}

TEST(http, parse_final_results_stay)
{
    const char *in = "GET / HTTP/1.1\r\n" H "\r\nGARBAGE";
    http_parser p;
    http_parse_init(&p);
    CHECK_EQ_INT(http_parse(&p, in, strlen(in)), HTTP_DONE);
    outcome a = {.ret = HTTP_DONE, .req = p.req};
    CHECK_EQ_INT(http_parse(&p, in, strlen(in)), HTTP_DONE);
    outcome b = {.ret = HTTP_DONE, .req = p.req};
    CHECK(same(&a, &b));
    CHECK_EQ_INT(p.req.head_len, strlen(in) - strlen("GARBAGE"));
    in = "GET  / HTTP/1.1\r\n";
    http_parse_init(&p);
    CHECK_EQ_INT(http_parse(&p, in, strlen(in)), HTTP_ERROR);
    CHECK_EQ_INT(p.status, 400);
    CHECK_EQ_INT(http_parse(&p, in, strlen(in)), HTTP_ERROR);
    CHECK_EQ_INT(p.status, 400);
}
