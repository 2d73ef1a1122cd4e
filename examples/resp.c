/*
 * resp.c - the RESP2 request parser of resp.h (which has its contract:
 * what is accepted, the limits, the incremental promise).
 *
 * A request is parsed by a small state machine whose position is an
 * offset from the request's first byte, so the caller's buffer may move
 * between calls:
 *
 *   START  -> COUNT  ("*": the multibulk count line)
 *          -> INLINE (anything else: one line)
 *   COUNT  -> HEADER (count > 0), START (count <= 0: skipped)
 *   HEADER -> DATA   (a "$<len>\r\n" line)
 *   DATA   -> HEADER (more arguments), DONE (the last one)
 *   INLINE -> DONE, START (an empty line: skipped)
 *   DONE   -> START  (at the next call: the command was handed out)
 *   any    -> ERROR  (sticky)
 *
 * Why each decision depends only on the bytes: a line is looked for only
 * in a window of fixed length from its first byte (RESP_MAX_COUNT_LINE
 * for counts, max_inline + 2 for inline lines); "no end of line in the
 * window" is an error only once the whole window has arrived, and "need
 * more" before. Limits on a bulk are checked on its header line, before
 * its bytes arrive. The one scan that could be quadratic, looking for the
 * end of a long inline line that arrives a byte at a time, resumes where
 * the last call stopped (pos).
 */
#include "resp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { START, COUNT, HEADER, DATA, INLINE, DONE, ERROR };

void resp_init(struct resp_parser *p)
{
    memset(p, 0, sizeof *p);
    p->max_bulk = RESP_DEFAULT_MAX_BULK;
    p->max_args = RESP_DEFAULT_MAX_ARGS;
    p->max_inline = RESP_DEFAULT_MAX_INLINE;
    p->max_request = 4 * RESP_DEFAULT_MAX_BULK + (64 << 10);
    p->state = START;
}

void resp_free(struct resp_parser *p)
{
    free(p->argv);
    p->argv = NULL;
    p->argv_cap = 0;
    p->argc = 0;
}

const char *resp_error(const struct resp_parser *p)
{
    return p->error;
}

size_t resp_need(const struct resp_parser *p)
{
    if (p->state == DATA)
        return p->pos + (size_t)p->bulk + 2;
    return p->pos + 1;
}

static int fail(struct resp_parser *p, const char *msg)
{
    p->state = ERROR;
    p->error = msg;
    return RESP_ERR;
}

int resp_strtoll(const char *s, size_t n, long long *out)
{
    size_t i = 0;
    int neg = 0;
    unsigned long long v = 0, lim = (unsigned long long)9223372036854775807LL;
    if (n == 0 || n > 20)
        return 0;
    if (s[0] == '-') {
        neg = 1;
        i = 1;
        lim += 1; /* LLONG_MIN's magnitude */
        if (n == 1)
            return 0;
    }
    if (s[i] == '0')
        return n == 1 ? (*out = 0, 1) : 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (lim - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    /* v <= lim, so the negation of a magnitude of 2^63 is exact. */
    *out = neg ? (long long)(0 - v) : (long long)v;
    return 1;
}

/* A count line "<c><digits>\r\n" at buf[at, len): its value in *v and its
 * length in *n. 1 parsed, 0 need more, -1 too long (no "\r" within the
 * window), -2 not a valid number or no "\n" after the "\r". */
static int count_line(const char *buf, size_t at, size_t len, long long *v,
                      size_t *n)
{
    size_t end =
        len - at < RESP_MAX_COUNT_LINE - 1 ? len - at : RESP_MAX_COUNT_LINE - 1;
    const char *cr = memchr(buf + at + 1, '\r', end > 0 ? end - 1 : 0);
    if (cr == NULL)
        return end == RESP_MAX_COUNT_LINE - 1 ? -1 : 0;
    size_t i = (size_t)(cr - (buf + at));
    if (at + i + 1 >= len)
        return 0;
    if (buf[at + i + 1] != '\n' || !resp_strtoll(buf + at + 1, i - 1, v))
        return -2;
    *n = i + 2;
    return 1;
}

/* Room for one more argument in argv, growing it up to want slots. */
static int argv_room(struct resp_parser *p, size_t want)
{
    if (p->argc < p->argv_cap)
        return 0;
    size_t cap = p->argv_cap ? 2 * p->argv_cap : 8;
    if (cap > want)
        cap = want;
    if (cap <= p->argc)
        cap = p->argc + 1;
    struct resp_arg *a = realloc(p->argv, cap * sizeof *a);
    if (a == NULL)
        return -1;
    p->argv = a;
    p->argv_cap = cap;
    return 0;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Split the inline line buf[at, at + n) into arguments, unescaping quoted
 * ones in place. RESP_CMD with argc > 0, RESP_NEED for a blank line (the
 * caller skips it), RESP_ERR. */
static int split_inline(struct resp_parser *p, char *buf, size_t at, size_t n)
{
    size_t r = at, end = at + n;
    p->argc = 0;
    for (;;) {
        while (r < end && is_blank(buf[r]))
            r++;
        if (r == end)
            return p->argc ? RESP_CMD : RESP_NEED;
        if (p->argc == p->max_args)
            return fail(p, "Protocol error: too many arguments");
        if (argv_room(p, p->max_args))
            return fail(p, "out of memory");
        size_t w = r, start = r;
        char quote = 0;
        if (buf[r] == '"' || buf[r] == '\'')
            quote = buf[r++];
        for (;;) {
            if (r == end) {
                if (quote)
                    return fail(p, "Protocol error: unbalanced quotes in "
                                   "request");
                break;
            }
            char c = buf[r];
            if (!quote) {
                if (is_blank(c))
                    break;
                buf[w++] = c;
                r++;
            } else if (c == quote) {
                r++;
                if (r < end && !is_blank(buf[r]))
                    return fail(p, "Protocol error: unbalanced quotes in "
                                   "request");
                break;
            } else if (c == '\\' && r + 1 < end) {
                char e = buf[r + 1];
                if (quote == '\'') {
                    /* Only \' is an escape in single quotes. */
                    buf[w++] = e == '\'' ? '\'' : '\\';
                    r += e == '\'' ? 2 : 1;
                    continue;
                }
                int h1, h2;
                if (e == 'x' && r + 3 < end && (h1 = hexval(buf[r + 2])) >= 0 &&
                    (h2 = hexval(buf[r + 3])) >= 0) {
                    buf[w++] = (char)(h1 * 16 + h2);
                    r += 4;
                    continue;
                }
                buf[w++] = e == 'n'   ? '\n'
                           : e == 'r' ? '\r'
                           : e == 't' ? '\t'
                           : e == 'b' ? '\b'
                           : e == 'a' ? '\a'
                                      : e;
                r += 2;
            } else {
                buf[w++] = c;
                r++;
            }
        }
        p->argv[p->argc].off = start;
        p->argv[p->argc].len = w - start;
        p->argc++;
    }
}

/* Back to START for a new request: drop a big argv. */
static void reset(struct resp_parser *p)
{
    if (p->argv_cap > RESP_ARGV_KEEP) {
        free(p->argv);
        p->argv = NULL;
        p->argv_cap = 0;
    }
    p->state = START;
    p->pos = 0;
    p->argc = 0;
}

int resp_parse(struct resp_parser *p, char *buf, size_t len, size_t *used)
{
    size_t base = 0; /* bytes of skipped empty requests */
    long long v;
    size_t n;
    int r;
    *used = 0;
    if (p->state == ERROR)
        return RESP_ERR;
    if (p->state == DONE)
        reset(p);
    for (;;) {
        char *b = buf + base;
        size_t avail = len - base;
        switch (p->state) {
        case START:
            if (avail == 0)
                return RESP_NEED;
            p->state = b[0] == '*' ? COUNT : INLINE;
            p->pos = 0;
            break;
        case COUNT:
            r = count_line(b, 0, avail, &v, &n);
            if (r == 0)
                return RESP_NEED;
            if (r == -1)
                return fail(p, "Protocol error: too big mbulk count string");
            if (r == -2 || v > (long long)p->max_args)
                return fail(p, "Protocol error: invalid multibulk length");
            if (v <= 0) {
                base += n;
                *used = base;
                reset(p);
                break;
            }
            p->nargs = v;
            p->pos = n;
            p->argc = 0;
            p->state = HEADER;
            break;
        case HEADER:
            if (p->pos == avail)
                return RESP_NEED;
            if (b[p->pos] != '$') {
                unsigned char c = (unsigned char)b[p->pos];
                snprintf(p->msg, sizeof p->msg,
                         "Protocol error: expected '$', got '%c'",
                         c >= 0x20 && c < 0x7f ? c : '?');
                return fail(p, p->msg);
            }
            r = count_line(b, p->pos, avail, &v, &n);
            if (r == 0)
                return RESP_NEED;
            if (r == -1)
                return fail(p, "Protocol error: too big bulk count string");
            if (r == -2 || v < 0 || (unsigned long long)v > p->max_bulk)
                return fail(p, "Protocol error: invalid bulk length");
            if (p->pos + n + (size_t)v + 2 > p->max_request)
                return fail(p, "Protocol error: request too big");
            p->pos += n;
            p->bulk = v;
            p->state = DATA;
            break;
        case DATA:
            if (avail - p->pos < (size_t)p->bulk + 2)
                return RESP_NEED;
            if (b[p->pos + p->bulk] != '\r' || b[p->pos + p->bulk + 1] != '\n')
                return fail(p, "Protocol error: expected CRLF after bulk");
            if (argv_room(p, (size_t)p->nargs))
                return fail(p, "out of memory");
            /* From the request's first byte: earlier calls may have had
             * skipped requests before it (another base). */
            p->argv[p->argc].off = p->pos;
            p->argv[p->argc].len = (size_t)p->bulk;
            p->argc++;
            p->pos += (size_t)p->bulk + 2;
            if (p->argc < (size_t)p->nargs) {
                p->state = HEADER;
                break;
            }
            p->state = DONE;
            *used = base + p->pos;
            for (size_t i = 0; i < p->argc; i++)
                p->argv[i].off += base;
            return RESP_CMD;
        case INLINE: {
            size_t win = p->max_inline + 2;
            size_t end = avail < win ? avail : win;
            char *nl = memchr(b + p->pos, '\n', end - p->pos);
            if (nl == NULL) {
                if (avail >= win)
                    return fail(p, "Protocol error: too big inline request");
                p->pos = end;
                return RESP_NEED;
            }
            size_t line = (size_t)(nl - b), cut = line;
            if (cut > 0 && b[cut - 1] == '\r')
                cut--;
            if (cut > p->max_inline)
                return fail(p, "Protocol error: too big inline request");
            r = split_inline(p, buf, base, cut);
            if (r == RESP_ERR)
                return r;
            base += line + 1;
            *used = base;
            if (r == RESP_NEED) {
                reset(p);
                break;
            }
            p->state = DONE;
            return RESP_CMD;
        }
        default:
            return fail(p, "Protocol error: bad parser state");
        }
    }
}
