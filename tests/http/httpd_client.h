/*
 * httpd_client.h - what the http tests share (httpd_client.c): the
 * server binary started as a child on a free port and stopped with
 * SIGTERM (its exit checked), a client over plain sockets, and checks of
 * the answers every test expects. Each call fails the test (check.h) on
 * anything unexpected; no read waits more than 5 s.
 */
#ifndef WEFT_TESTS_HTTPD_CLIENT_H
#define WEFT_TESTS_HTTPD_CLIENT_H

#include <stddef.h>
#include <string.h>
#include <sys/types.h>

typedef struct ht_server {
    pid_t pid;
    int port;
    int err; /* read end of its stderr */
} ht_server;

typedef struct ht_client {
    int fd;
    size_t len;      /* bytes in buf not yet taken by a response */
    char buf[65536]; /* what was read */
} ht_client;

typedef struct ht_response {
    int status;
    char head[4096]; /* status line and fields, NUL-terminated */
    char body[512];  /* NUL-terminated */
    size_t blen;
} ht_response;

/* Start httpd with HTTPD_READ_TIMEOUT_MS=timeout_ms and
 * HTTPD_MAX_CONN=max_conn, and wait for its "listening" line. */
ht_server ht_start(unsigned timeout_ms, unsigned max_conn);

/* SIGTERM; the server must exit 0 within 10 s. */
void ht_stop(ht_server *s);

/* Connect to 127.0.0.1:port (TCP_NODELAY); each read on it waits at
 * most 5 s. */
ht_client *ht_dial(int port);

/* Close and free. */
void ht_hang_up(ht_client *c);

/* Send all n bytes (blocking). */
void ht_say(ht_client *c, const char *s, size_t n);

/* A field's value in r->head ("" if absent); case-insensitive name. */
const char *ht_field(const ht_response *r, const char *name, char *out,
                     size_t cap);

/* Read one response (a head, then Content-Length bytes of body; a HEAD
 * request's response has none: head_only). 0, or -1 at end of file or
 * on a reset before a byte of it; fails the test if it takes over 5 s. */
int ht_hear(ht_client *c, ht_response *r, int head_only);

/* Read a response, which must have the given status. */
void ht_expect(ht_client *c, ht_response *r, int status);

/* Wait up to ms for the server to close: end of file or a reset, with
 * no byte before it. Returns how long it took (ms), or -1 if the
 * connection was still open. */
long ht_closed_within(ht_client *c, unsigned ms);

/* The fields every answer carries: Server, and Date (IMF-fixdate, now
 * within 5 s, its weekday right). */
void ht_check_common(const ht_response *r);

/* A 200 with the body, Content-Type and Content-Length of /plaintext,
 * of /json. */
void ht_check_plaintext(const ht_response *r);
void ht_check_json(const ht_response *r);

#define HT_SAY(c, s) ht_say((c), (s), strlen(s))

/* A Host field, and a complete GET of path. */
#define H "Host: t\r\n"
#define GET(path) "GET " path " HTTP/1.1\r\n" H "\r\n"

#endif
