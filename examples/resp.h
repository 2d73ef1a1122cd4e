/*
 * resp.h - an incremental, bounded parser of Redis protocol (RESP2)
 * requests, for examples/kv.c and its tests (tests/kv/resp_test.c,
 * tests/fuzz/fuzz_resp.c). It knows bytes and limits only: no sockets, no
 * store, no weft.
 *
 * What it accepts. A request is either a multibulk array of bulk strings,
 * "*<n>\r\n" then n times "$<len>\r\n<len bytes>\r\n", or an inline command:
 * one line ended by "\n" (a "\r" before it is dropped), split on spaces and
 * tabs, where an argument may be "double quoted" (escapes \" \\ \n \r \t
 * \b \a and \xHH) or 'single quoted' (escape \'), and a closing quote must
 * be followed by a space or the end of the line. A multibulk count of zero
 * or less and an empty inline line are skipped, as Redis does. Counts are
 * strict decimal integers (no sign but a leading '-', no leading zero, no
 * space) ended by exactly "\r\n"; a bulk must be followed by exactly
 * "\r\n".
 *
 * Incremental. The caller keeps the unparsed bytes of its connection in
 * one buffer and calls resp_parse with the bytes from the start of the
 * first unparsed request to the end of what has arrived. The parser
 * remembers how far into the current request it got (offsets, never
 * pointers, so the caller may move or grow the buffer between calls), so
 * a request that arrives a byte at a time costs linear time, and a request
 * split across calls at any byte parses exactly as the whole one does:
 * every decision (a command, an error, "need more") depends only on the
 * bytes, and a decision that later bytes could change is "need more".
 * The fuzz harness checks both properties.
 *
 * Bounded. Nothing here buffers bytes; the caller's buffer only has to
 * hold one request at a time, and the limits bound that request before its
 * bytes arrive: a bulk longer than max_bulk, a multibulk count over
 * max_args, a request whose declared bulks would take it over max_request
 * bytes, an inline line longer than max_inline, or a count line longer
 * than RESP_MAX_COUNT_LINE is a protocol error. The only allocation is the
 * argument vector, which grows with the arguments that have arrived (not
 * the count announced) up to max_args, and shrinks back to
 * RESP_ARGV_KEEP entries at the next request after a big one.
 *
 * Errors are Redis's wording after "-ERR " ("Protocol error: invalid bulk
 * length", ...); after one the connection is to be closed: the parser
 * stays in its error state and returns the same error again.
 */
#ifndef KV_RESP_H
#define KV_RESP_H

#include <stddef.h>

/* Defaults of the limits. max_bulk is Redis's proto-max-bulk-len, which is
 * 512 MiB there; 1 MiB here, so a client can make the server hold at most
 * a few MiB per connection (kv.c's KV_MAX_BULK changes it). */
#define RESP_DEFAULT_MAX_BULK ((size_t)1 << 20)
#define RESP_DEFAULT_MAX_ARGS ((size_t)1 << 16)
#define RESP_DEFAULT_MAX_INLINE ((size_t)64 << 10)
#define RESP_MAX_COUNT_LINE 32 /* "*<n>\r\n" or "$<len>\r\n", bytes */
#define RESP_ARGV_KEEP 64      /* argument slots kept between requests */

enum resp_status {
    RESP_CMD = 1,  /* a complete command: argc and argv are set */
    RESP_NEED = 0, /* no complete command in the bytes given */
    RESP_ERR = -1  /* protocol error (or no memory): see resp_error */
};

/* One argument: bytes [off, off + len) of the buffer given to the call
 * that returned RESP_CMD. */
struct resp_arg {
    size_t off, len;
};

/* Parser state. Set the limits (resp_init gives the defaults) before the
 * first call; everything else is the parser's. One per connection; not
 * shared between threads. */
struct resp_parser {
    size_t max_bulk;    /* longest bulk string accepted, bytes */
    size_t max_args;    /* largest multibulk count, and most inline args */
    size_t max_inline;  /* longest inline line, "\r\n" excluded */
    size_t max_request; /* most bytes of one multibulk request */

    size_t argc;           /* arguments of the command returned */
    struct resp_arg *argv; /* argc of them, valid until the next call */

    /* Progress through the current request, relative to its first byte. */
    int state;         /* where in the request (resp.c) */
    size_t pos;        /* bytes of the request parsed so far */
    long long nargs;   /* the multibulk count announced */
    long long bulk;    /* length of the bulk being read */
    size_t argv_cap;   /* slots allocated in argv */
    const char *error; /* message once in the error state, else NULL */
    char msg[48];      /* a message with a byte in it ("got 'x'") */
};

/* Default limits, max_request 4 x max_bulk + 64 KiB; argv empty. */
void resp_init(struct resp_parser *p);
/* Release argv. The parser may be reused after resp_init. */
void resp_free(struct resp_parser *p);

/* Parse the first request of buf[0, len), which starts with the first
 * byte not yet consumed (the caller's bytes as they were at the last call,
 * plus any that have arrived since, possibly moved). Returns RESP_CMD, with
 * p->argc and p->argv set, RESP_NEED or RESP_ERR. *used gets the bytes
 * consumed from the front of buf: the command returned and any skipped
 * empty requests before it (with RESP_NEED or RESP_ERR: the skipped ones
 * only; the bytes of an unfinished or bad request are not consumed).
 * Argument offsets count from buf, whatever earlier calls consumed.
 * Inline arguments with quotes are unescaped in place, so buf is
 * written. */
int resp_parse(struct resp_parser *p, char *buf, size_t len, size_t *used);

/* The error message of the error state ("Protocol error: ..."), or NULL. */
const char *resp_error(const struct resp_parser *p);

/* The least number of bytes the current request needs in all (from its
 * first byte), as far as the bytes parsed so far tell: a caller growing
 * its buffer for a big bulk can grow it once. */
size_t resp_need(const struct resp_parser *p);

/* A strict decimal integer of s[0, n), by the rules counts follow (an
 * optional '-', digits, no leading zero, no "-0", fits a long long), which
 * are also Redis's for a number argument or an INCR'd value: 1 if it
 * parsed (*out set), else 0. */
int resp_strtoll(const char *s, size_t n, long long *out);

#endif /* KV_RESP_H */
