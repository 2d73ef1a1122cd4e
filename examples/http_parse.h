/*
 * http_parse.h - an incremental, bounded parser of HTTP/1.1 request heads
 * (RFC 9112), for examples/httpd.c. It owns the grammar of one request:
 * its request line, its header fields and what the server must know from
 * them (method, target, version, persistence, body length); the server
 * owns the socket, the buffer and the answers.
 *
 * Incremental: the caller keeps the bytes of the request it is reading
 * contiguous in its own buffer (it may move them, since every result is an
 * offset from the request's first byte) and calls http_parse with all the
 * bytes it has so far, from that first byte. The parser resumes where the
 * previous call stopped: each byte is looked at once, so a request split
 * across reads at any byte gives the same result as the request whole, and
 * a client sending a byte at a time costs the server O(1) per byte. At the
 * end of each header line the line's bytes are read again from the buffer
 * (that is why they must stay there) to decode the fields it recognises.
 *
 * Bounded: no allocation, no recursion; the state is this small struct.
 * A head (request line, header fields and the empty line, with any empty
 * lines before the request line) longer than HTTP_MAX_HEAD bytes is
 * refused: 414 while the request line is still being read, 431 after.
 *
 * Bodies: a Content-Length up to HTTP_MAX_BODY is honoured: the parser
 * reports it, and the caller reads and drops (or uses) that many bytes
 * after the head before the next request begins. Larger is refused with
 * 413. Transfer-Encoding (chunked or any other coding) is refused with
 * 501, as RFC 9112 section 6.1 asks of a server that does not implement
 * the coding; it is checked before Content-Length, so the two together
 * can never be read two ways (request smuggling).
 *
 * Strictness, each a 400: a method that is not a token; a target with a
 * byte outside 0x21-0x7e; anything but one space between the three parts
 * of the request line; a version that is not "HTTP/" digit "." digit (a
 * major version other than 1 is 505); a field name that is not a token or
 * is followed by whitespace before its colon; obs-fold (a line starting
 * with whitespace); a control byte in a field value; a bare CR; a
 * Content-Length that is not all digits, or two that differ; an HTTP/1.1
 * request with no Host field, and any request with two. A lone LF is
 * taken as a line end (RFC 9112 section 2.2 allows it), and empty lines
 * before the request line are skipped (section 2.2 again).
 *
 * Persistence (RFC 9112 section 9.3): HTTP/1.1 stays open unless a
 * Connection field lists "close"; HTTP/1.0 closes unless one lists
 * "keep-alive" (and none "close").
 */
#ifndef HTTP_PARSE_H
#define HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEAD 8192      /* bytes of a request head, at most */
#define HTTP_MAX_BODY (1 << 20) /* bytes of a Content-Length, at most */

/* http_parse's results. */
enum {
    HTTP_ERROR = -1, /* not a request: answer p->status, then close */
    HTTP_MORE = 0,   /* a prefix of a request head: call again with more */
    HTTP_DONE = 1    /* the head is complete: see p->req */
};

/* What a complete head says. Offsets count from the first byte given to
 * http_parse (empty lines before the request line included). */
typedef struct http_request {
    uint32_t method_off, method_len; /* e.g. "GET" */
    uint32_t target_off, target_len; /* e.g. "/plaintext?x=1" */
    uint32_t head_len;               /* the head's bytes: the body, or the
                                        next request, starts here */
    uint32_t content_length;         /* the body's bytes (0 if none) */
    uint8_t minor;                   /* 0 or 1: HTTP/1.0 or HTTP/1.1 (a
                                        higher minor version reads as 1) */
    uint8_t keep_alive;              /* 1: the connection stays open */
} http_request;

/* The parser of one request; http_parse_init before each request. Owned
 * by one caller (a connection); nothing in it is shared. */
typedef struct http_parser {
    uint32_t pos;       /* bytes consumed so far */
    uint32_t mark;      /* where the current element began */
    uint32_t name_end;  /* a header line: end of its name */
    uint32_t value_off; /* a header line: its value, OWS trimmed, */
    uint32_t value_end; /* [value_off, value_end) */
    uint8_t state;      /* internal (http_parse.c) */
    uint8_t flags;      /* fields seen, Connection tokens (http_parse.c) */
    uint8_t hosts;      /* Host fields seen, saturating at 2 */
    uint16_t status;    /* after HTTP_ERROR: the status code to answer */
    http_request req;   /* after HTTP_DONE: the request */
} http_parser;

/* Start a parser over for a new request. Any thread. */
void http_parse_init(http_parser *p);

/* Parse buf[0..len), all the bytes of this request received so far (and
 * possibly more after it: pipelined requests are not looked at). len
 * must not shrink between calls for one request, and the bytes already
 * given must not change. Returns HTTP_DONE (p->req holds the request),
 * HTTP_MORE, or HTTP_ERROR (p->status holds 400, 413, 414, 431, 501 or
 * 505); DONE and ERROR are final until http_parse_init. Any thread; does
 * not allocate or block. */
int http_parse(http_parser *p, const char *buf, size_t len);

#endif
