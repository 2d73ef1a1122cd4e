/*
 * fuzz_http.c - libFuzzer harness: examples/http_parse.c, the request
 * parser of examples/httpd.c. The input is a stream of pipelined requests
 * (after a two-byte seed); it is parsed as the server does (request after
 * request, each body skipped), first whole, then arriving in pieces whose
 * ends the seed chooses, and both runs must give the same outcomes. Each
 * parse call gets a heap copy of exactly the bytes it may read, so ASan
 * reports any read past them; every outcome is checked against the
 * contract of http_parse.h (offsets inside the head, a method that is a
 * token, limits held, statuses from the documented set).
 *
 * Input: [seed: 2 bytes][request bytes...].
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"

#define MAX_OUT 64

typedef struct outcome {
    int ret;
    unsigned status;
    http_request req;
} outcome;

/* The contract's promises about one result. */
static void check(const http_parser *p, int r, const char *buf, size_t len)
{
    if (r == HTTP_ERROR) {
        unsigned s = p->status;
        assert(s == 400 || s == 413 || s == 414 || s == 431 || s == 501 ||
               s == 505);
        return;
    }
    if (r == HTTP_MORE) {
        assert(len <= HTTP_MAX_HEAD);
        return;
    }
    const http_request *q = &p->req;
    assert(q->head_len <= len && q->head_len <= HTTP_MAX_HEAD);
    assert(q->method_len > 0 && q->target_len > 0);
    assert(q->method_off + q->method_len < q->target_off);
    assert(q->target_off + q->target_len < q->head_len);
    assert(q->content_length <= HTTP_MAX_BODY);
    assert(q->minor <= 1 && q->keep_alive <= 1);
    for (uint32_t i = 0; i < q->target_len; i++) {
        unsigned char c = (unsigned char)buf[q->target_off + i];
        assert(c > 0x20 && c < 0x7f);
    }
    assert(buf[q->head_len - 1] == '\n');
}

/* Parse in[0..n) as the server does, the bytes arriving in pieces of
 * sizes drawn from *rng (all at once when rng is NULL). */
static int drive(const uint8_t *in, size_t n, uint32_t *rng, outcome *out)
{
    size_t off = 0, skip = 0, avail = 0;
    int k = 0;
    http_parser p;
    http_parse_init(&p);
    while (k < MAX_OUT) {
        if (rng) {
            /* xorshift32: pieces of 1..64 bytes, sometimes far more. */
            *rng ^= *rng << 13;
            *rng ^= *rng >> 17;
            *rng ^= *rng << 5;
            size_t step = (*rng & 0x300) == 0x300 ? (*rng >> 16) : (*rng & 63);
            avail = avail + step + 1 < n ? avail + step + 1 : n;
        } else {
            avail = n;
        }
        for (;;) {
            size_t d = skip < avail - off ? skip : avail - off;
            off += d;
            skip -= d;
            if (skip)
                break;
            size_t len = avail - off;
            char *copy = malloc(len ? len : 1);
            memcpy(copy, in + off, len);
            int r = http_parse(&p, copy, len);
            check(&p, r, copy, len);
            free(copy);
            if (r == HTTP_MORE)
                break;
            out[k].ret = r;
            out[k].status = r == HTTP_ERROR ? p.status : 0;
            out[k].req = r == HTTP_DONE ? p.req : (http_request){0};
            if (++k == MAX_OUT || r == HTTP_ERROR)
                return k;
            off += p.req.head_len;
            skip = p.req.content_length;
            http_parse_init(&p);
        }
        if (avail == n)
            return k;
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
           x->keep_alive == y->keep_alive;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    if (n < 2)
        return 0;
    uint32_t rng = (uint32_t)d[0] << 8 | d[1] | 0x10000;
    d += 2;
    n -= 2;
    outcome whole[MAX_OUT], cut[MAX_OUT];
    memset(whole, 0, sizeof whole);
    memset(cut, 0, sizeof cut);
    int kw = drive(d, n, NULL, whole);
    int kc = drive(d, n, &rng, cut);
    assert(kw == kc);
    for (int i = 0; i < kw; i++)
        assert(same(&whole[i], &cut[i]));
    return 0;
}
