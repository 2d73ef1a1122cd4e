/*
 * fuzz_resp.c - libFuzzer harness: examples/resp.c, the RESP2 request
 * parser of the kv example. Each input is parsed twice, fed whole and fed
 * in chunks cut at points the input chooses, the way a connection gets it
 * from reads; both must give the same commands, argument for argument,
 * and end the same way (need more, or the same protocol error). Every
 * call must also keep its promises: consumed bytes within those given,
 * arguments within the command, within the limits.
 *
 * Input: byte 0 picks the limits (odd: tiny ones, so inputs reach them;
 * even: the defaults), byte 1 the number of cuts (0-7), then two bytes
 * per cut (an offset, taken modulo the length), then the request bytes.
 * The parser gets a fresh allocation of exactly the unconsumed bytes at
 * every call, so a read past them or a pointer kept across calls is an
 * ASan report.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

/* A growing record of the commands a run produced. */
struct rec {
    unsigned char *p;
    size_t len, cap;
};

static void rec_put(struct rec *r, const void *s, size_t n)
{
    if (r->len + n > r->cap) {
        r->cap = 2 * (r->len + n) + 64;
        r->p = realloc(r->p, r->cap);
        if (r->p == NULL)
            abort();
    }
    memcpy(r->p + r->len, s, n);
    r->len += n;
}

static void die(const char *what)
{
    fprintf(stderr, "fuzz_resp: %s\n", what);
    abort();
}

static void limits(struct resp_parser *p, int tiny)
{
    resp_init(p);
    if (tiny) {
        p->max_bulk = 16;
        p->max_args = 4;
        p->max_inline = 24;
        p->max_request = 80;
    }
}

/* Feed in[0, n) in chunks ending at cuts[0..ncut) (sorted), recording
 * each command; the final status is returned and the error message, if
 * any, copied to err. */
static int run(const uint8_t *in, size_t n, const size_t *cuts, size_t ncut,
               int tiny, struct rec *out, char *err, size_t errcap)
{
    struct resp_parser p;
    limits(&p, tiny);
    char *pend = NULL;
    size_t plen = 0, fed = 0;
    int r = RESP_NEED;
    for (size_t k = 0; k <= ncut && r != RESP_ERR; k++) {
        size_t upto = k < ncut ? cuts[k] : n;
        char *b = malloc(plen + (upto - fed) + 1);
        if (b == NULL)
            abort();
        if (plen)
            memcpy(b, pend, plen);
        memcpy(b + plen, in + fed, upto - fed);
        plen += upto - fed;
        fed = upto;
        free(pend);
        pend = b;
        for (;;) {
            char *c = malloc(plen ? plen : 1);
            if (c == NULL)
                abort();
            memcpy(c, pend, plen);
            size_t used = (size_t)-1;
            r = resp_parse(&p, c, plen, &used);
            if (used > plen)
                die("consumed more than it was given");
            if (r == RESP_CMD) {
                if (p.argc == 0 || p.argc > p.max_args)
                    die("argument count out of range");
                rec_put(out, &p.argc, sizeof p.argc);
                for (size_t i = 0; i < p.argc; i++) {
                    const struct resp_arg *a = &p.argv[i];
                    if (a->off > used || a->len > used - a->off)
                        die("argument outside the command");
                    if (a->len > p.max_bulk && a->len > p.max_inline)
                        die("argument over the limits");
                    rec_put(out, &a->len, sizeof a->len);
                    rec_put(out, c + a->off, a->len);
                }
            } else if (r == RESP_ERR) {
                if (resp_error(&p) == NULL)
                    die("error without a message");
            } else if (r != RESP_NEED) {
                die("unknown status");
            }
            memmove(pend, pend + used, plen - used);
            plen -= used;
            free(c);
            if (r != RESP_CMD)
                break;
        }
    }
    snprintf(err, errcap, "%s", r == RESP_ERR ? resp_error(&p) : "");
    free(pend);
    resp_free(&p);
    return r;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    if (n < 2)
        return 0;
    int tiny = d[0] & 1;
    size_t ncut = d[1] % 8;
    if (n < 2 + 2 * ncut)
        return 0;
    const uint8_t *in = d + 2 + 2 * ncut;
    size_t len = n - 2 - 2 * ncut;
    size_t cuts[8];
    for (size_t i = 0; i < ncut; i++)
        cuts[i] = (size_t)(d[2 + 2 * i] | d[3 + 2 * i] << 8) % (len + 1);
    qsort(cuts, ncut, sizeof cuts[0], cmp_size);

    struct rec a = {0}, b = {0};
    char ea[64], eb[64];
    int ra = run(in, len, NULL, 0, tiny, &a, ea, sizeof ea);
    int rb = run(in, len, cuts, ncut, tiny, &b, eb, sizeof eb);
    if (ra != rb || a.len != b.len || (a.len && memcmp(a.p, b.p, a.len)) ||
        strcmp(ea, eb) != 0) {
        fprintf(stderr,
                "whole: %d \"%s\" %zu bytes of commands; cut: %d "
                "\"%s\" %zu bytes\n",
                ra, ea, a.len, rb, eb, b.len);
        die("whole and cut inputs parse differently");
    }
    free(a.p);
    free(b.p);
    return 0;
}
