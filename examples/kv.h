/*
 * kv.h - what examples/kv.c (connections) and kv_cmd.c (commands) share:
 * the settings, a connection's state, and the calls between the two.
 */
#ifndef KV_H
#define KV_H

#include <stddef.h>
#include <stdint.h>

#include "resp.h"

#define KV_OUT_INIT ((size_t)16 << 10)  /* output buffer, at first */
#define KV_OUT_FLUSH ((size_t)64 << 10) /* written early past this */

/* From the environment (kv.c's main), before any task runs; read-only
 * after. */
struct kv_settings {
    size_t max_bulk;        /* KV_MAX_BULK */
    size_t max_args;        /* KV_MAX_ARGS */
    unsigned long max_conn; /* KV_MAX_CONN */
    uint64_t timeout_ns;    /* KV_READ_TIMEOUT_MS: a request, or a write */
    uint64_t sweep_ns;      /* KV_SWEEP_MS */
};
extern struct kv_settings kv_cfg;

/* A connection: only its own task touches it. */
struct kv_conn {
    int fd;
    char *in; /* input: [start, end) not yet consumed */
    size_t cap, start, end;
    char *out; /* replies not yet written: [0, olen) */
    size_t olen, ocap;
    int broken; /* an output append failed: close */
    int quit;   /* QUIT: close after writing the replies */
    struct resp_parser p;
};

/* Run the command the parser just returned (c->p.argc, c->p.argv, whose
 * offsets are from base), its reply appended to c's output. 0, or -1 when
 * the connection must close (its runtime shuts down, no memory, a write
 * failed). Its task only; may park. */
int kv_run(struct kv_conn *c, const char *base);
/* Append "-ERR <message>\r\n", the message made one line. */
void kv_put_err(struct kv_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Write c's output; a write that makes no progress for kv_cfg.timeout_ns
 * fails. 0, or -1 (close). Its task only; parks. */
int kv_flush(struct kv_conn *c);

#endif /* KV_H */
