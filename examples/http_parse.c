/*
 * http_parse.c - the request-head parser of examples/httpd.c (contract and
 * grammar decisions in http_parse.h).
 *
 * Design: one state machine over bytes, one byte per step, resumable at
 * any byte because everything it remembers is in struct http_parser: the
 * state, the position reached and the offsets of the element being read
 * (its start, and for a header line the end of its name and its value
 * with surrounding whitespace trimmed). Nothing is decided from bytes
 * after the one being consumed, so where the input is cut cannot matter.
 *
 * Rejected: re-scanning the buffer from its start at each call (simple,
 * but a client sending its head a byte at a time costs O(n^2) for n up to
 * HTTP_MAX_HEAD), and a table of every header line (the server needs four
 * fields, and a table is either allocated or a second bound to police).
 * The four it needs (Host, Connection, Content-Length, Transfer-Encoding)
 * are decoded at their line's end from the caller's buffer, where the
 * contract keeps them.
 *
 * Invariant: p->pos <= HTTP_MAX_HEAD while the state is not final, so
 * every offset fits in 32 bits and the bound is checked before each byte
 * is consumed: a head of exactly HTTP_MAX_HEAD bytes is accepted, one
 * byte more is refused, whatever the cuts.
 */
#include "http_parse.h"

#include <string.h>

/* States; the request-line states are the ones an overflow reports as
 * 414 (http_parse.h). */
enum {
    S_LEAD,     /* empty lines before the request line */
    S_LEAD_LF,  /* CR of such a line seen */
    S_METHOD,   /* method: token, from mark */
    S_TARGET0,  /* first byte of the target */
    S_TARGET,   /* target, from mark */
    S_VERSION,  /* "HTTP/1.1", from mark */
    S_RL_LF,    /* CR of the request line seen; version ends at value_end */
    S_LINE,     /* start of a header line, or of the empty line */
    S_NAME,     /* field name, from mark */
    S_OWS,      /* whitespace after the colon */
    S_VALUE,    /* field value: [value_off, value_end) so far */
    S_FIELD_LF, /* CR of a header line seen */
    S_END_LF,   /* CR of the empty line seen */
    S_DONE,     /* final: p->req is the request */
    S_ERROR     /* final: p->status is the answer */
};

/* p->flags */
enum {
    F_CLOSE = 1, /* a Connection field listed "close" */
    F_KEEP = 2,  /* ... "keep-alive" */
    F_CL = 4,    /* a Content-Length field was seen */
    F_TE = 8     /* a Transfer-Encoding field was seen */
};

void http_parse_init(http_parser *p)
{
    memset(p, 0, sizeof *p);
    p->state = S_LEAD;
}

/* tchar of RFC 9110 section 5.6.2: what tokens (methods, field names)
 * are made of. */
static int tchar(unsigned c)
{
    if ((unsigned)((c | 0x20) - 'a') < 26 || (unsigned)(c - '0') < 10)
        return 1;
    return c != 0 && c < 0x80 && strchr("!#$%&'*+-.^_`|~", (int)c);
}

/* field-vchar: VCHAR or obs-text (RFC 9110 section 5.5). */
static int vchar(unsigned c)
{
    return (c > 0x20 && c < 0x7f) || c >= 0x80;
}

/* s[0..n) equals the lower-case word w, ignoring ASCII case. */
static int is_word(const char *s, size_t n, const char *w)
{
    if (n != strlen(w))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned c = (unsigned char)s[i];
        if (c - 'A' < 26)
            c |= 0x20;
        if (c != (unsigned char)w[i])
            return 0;
    }
    return 1;
}

static int fail(http_parser *p, unsigned status)
{
    p->state = S_ERROR;
    p->status = (uint16_t)status;
    return HTTP_ERROR;
}

/* The request line's version, buf[mark..value_end): 0, or the status to
 * answer. */
static unsigned version(http_parser *p, const char *buf)
{
    const char *v = buf + p->mark;
    if (p->value_end - p->mark != 8 || memcmp(v, "HTTP/", 5) != 0 ||
        (unsigned)(v[5] - '0') > 9 || v[6] != '.' || (unsigned)(v[7] - '0') > 9)
        return 400;
    if (v[5] != '1')
        return 505;
    p->req.minor = v[7] != '0';
    return 0;
}

/* Connection: a comma-separated list of tokens with optional whitespace;
 * only "close" and "keep-alive" mean anything here. */
static void connection(http_parser *p, const char *v, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (is_word(v + start, i - start, "close"))
            p->flags |= F_CLOSE;
        else if (is_word(v + start, i - start, "keep-alive"))
            p->flags |= F_KEEP;
    }
}

/* Content-Length: 1*DIGIT; a value over HTTP_MAX_BODY is kept as
 * HTTP_MAX_BODY + 1 (413 at the head's end). 0, or 400. */
static unsigned content_length(http_parser *p, const char *v, size_t n)
{
    if (n == 0)
        return 400;
    uint32_t cl = 0;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned)(v[i] - '0') > 9)
            return 400;
        cl = cl > HTTP_MAX_BODY ? cl : cl * 10 + (uint32_t)(v[i] - '0');
    }
    if (cl > HTTP_MAX_BODY)
        cl = HTTP_MAX_BODY + 1;
    if ((p->flags & F_CL) && cl != p->req.content_length)
        return 400;
    p->flags |= F_CL;
    p->req.content_length = cl;
    return 0;
}

/* A complete header line: name buf[mark..name_end), value
 * buf[value_off..value_end). 0, or the status to answer. */
static unsigned field(http_parser *p, const char *buf)
{
    const char *name = buf + p->mark, *v = buf + p->value_off;
    size_t nlen = p->name_end - p->mark, vlen = p->value_end - p->value_off;
    if (is_word(name, nlen, "host")) {
        if (p->hosts < 2)
            p->hosts++;
    } else if (is_word(name, nlen, "connection")) {
        connection(p, v, vlen);
    } else if (is_word(name, nlen, "content-length")) {
        return content_length(p, v, vlen);
    } else if (is_word(name, nlen, "transfer-encoding")) {
        p->flags |= F_TE;
    }
    return 0;
}

/* The empty line ending the head was consumed. */
static int head_end(http_parser *p)
{
    if (p->hosts > 1 || (p->req.minor == 1 && p->hosts == 0))
        return fail(p, 400);
    if (p->flags & F_TE)
        return fail(p, 501);
    if (p->req.content_length > HTTP_MAX_BODY)
        return fail(p, 413);
    if (p->req.minor == 1)
        p->req.keep_alive = !(p->flags & F_CLOSE);
    else
        p->req.keep_alive = (p->flags & F_KEEP) && !(p->flags & F_CLOSE);
    p->req.head_len = p->pos;
    p->state = S_DONE;
    return HTTP_DONE;
}

int http_parse(http_parser *p, const char *buf, size_t len)
{
    if (p->state == S_DONE)
        return HTTP_DONE;
    if (p->state == S_ERROR)
        return HTTP_ERROR;
    unsigned err;
    while (p->pos < len) {
        if (p->pos == HTTP_MAX_HEAD)
            return fail(p, p->state <= S_LEAD_LF ? 400
                           : p->state <= S_RL_LF ? 414
                                                 : 431);
        unsigned c = (unsigned char)buf[p->pos];
        uint32_t at = p->pos++;
        switch (p->state) {
        case S_LEAD:
            if (c == '\r')
                p->state = S_LEAD_LF;
            else if (tchar(c)) {
                p->mark = at;
                p->state = S_METHOD;
            } else if (c != '\n')
                return fail(p, 400);
            break;
        case S_LEAD_LF:
            if (c != '\n')
                return fail(p, 400);
            p->state = S_LEAD;
            break;
        case S_METHOD:
            if (c == ' ') {
                p->req.method_off = p->mark;
                p->req.method_len = at - p->mark;
                p->state = S_TARGET0;
            } else if (!tchar(c))
                return fail(p, 400);
            break;
        case S_TARGET0:
            if (c <= 0x20 || c >= 0x7f)
                return fail(p, 400);
            p->mark = at;
            p->state = S_TARGET;
            break;
        case S_TARGET:
            if (c == ' ') {
                p->req.target_off = p->mark;
                p->req.target_len = at - p->mark;
                p->mark = p->pos;
                p->state = S_VERSION;
            } else if (c < 0x20 || c >= 0x7f)
                return fail(p, 400);
            break;
        case S_VERSION:
            if (c == '\r' || c == '\n') {
                p->value_end = at;
                if ((err = version(p, buf)))
                    return fail(p, err);
                p->state = c == '\r' ? S_RL_LF : S_LINE;
            } else if (at - p->mark >= 8)
                return fail(p, 400);
            break;
        case S_RL_LF:
        case S_FIELD_LF:
            if (c != '\n')
                return fail(p, 400);
            if (p->state == S_FIELD_LF && (err = field(p, buf)))
                return fail(p, err);
            p->state = S_LINE;
            break;
        case S_LINE:
            if (c == '\r')
                p->state = S_END_LF;
            else if (c == '\n')
                return head_end(p);
            else if (tchar(c)) {
                p->mark = at;
                p->state = S_NAME;
            } else
                return fail(p, 400); /* obs-fold, or not a name */
            break;
        case S_NAME:
            if (c == ':') {
                p->name_end = at;
                p->value_off = p->value_end = p->pos;
                p->state = S_OWS;
            } else if (!tchar(c))
                return fail(p, 400);
            break;
        case S_OWS:
        case S_VALUE:
            if (c == ' ' || c == '\t') {
                if (p->state == S_OWS)
                    p->value_off = p->value_end = p->pos;
            } else if (vchar(c)) {
                if (p->state == S_OWS)
                    p->value_off = at;
                p->value_end = p->pos;
                p->state = S_VALUE;
            } else if (c == '\r') {
                p->state = S_FIELD_LF;
            } else if (c == '\n') {
                if ((err = field(p, buf)))
                    return fail(p, err);
                p->state = S_LINE;
            } else
                return fail(p, 400);
            break;
        case S_END_LF:
            if (c != '\n')
                return fail(p, 400);
            return head_end(p);
        }
    }
    return HTTP_MORE;
}
