/*
 * kv_cmd.c - the commands of examples/kv.c and the output buffer their
 * replies go to (kv.h has what kv.c and this file share).
 *
 * Each command runs to its end without yielding but for the shard locks
 * of kv_store.h and, in MGET, a write of replies that passed
 * KV_OUT_FLUSH bytes; its arguments point into the connection's input
 * buffer, which nothing changes until the command returns. Replies are
 * appended to the connection's output buffer, which kv.c writes once per
 * batch of requests. Error words and reply shapes are those redis-server
 * 7.0.15 gave for the same requests when this was written (compared by
 * hand); tests/kv/e2e_test.c holds them byte for byte.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kv.h"
#include "kv_store.h"
#include "weft.h"

/* ---- replies ------------------------------------------------------------ */

static void put(struct kv_conn *c, const void *s, size_t n)
{
    if (c->olen + n > c->ocap) {
        size_t cap = c->ocap * 2;
        if (cap < c->olen + n)
            cap = c->olen + n;
        char *o = realloc(c->out, cap);
        if (o == NULL) {
            c->broken = 1;
            return;
        }
        c->out = o;
        c->ocap = cap;
    }
    memcpy(c->out + c->olen, s, n);
    c->olen += n;
}

static void put_str(struct kv_conn *c, const char *s)
{
    put(c, s, strlen(s));
}

/* "<prefix><n>\r\n": integers, bulk and array headers. */
static void put_num(struct kv_conn *c, char prefix, long long n)
{
    char b[32];
    int k = snprintf(b, sizeof b, "%c%lld\r\n", prefix, n);
    put(c, b, (size_t)k);
}

static void put_bulk(struct kv_conn *c, const char *s, size_t n)
{
    put_num(c, '$', (long long)n);
    put(c, s, n);
    put(c, "\r\n", 2);
}

/* The GET callback of kv_store_get: runs under the shard lock. */
static void put_value(void *ctx, const char *v, size_t n)
{
    put_bulk(ctx, v, n);
}

/* "-ERR <message>\r\n", the message on one line. */
void kv_put_err(struct kv_conn *c, const char *fmt, ...)
{
    char b[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof b)
        n = sizeof b - 1;
    for (int i = 0; i < n; i++) {
        if (b[i] == '\r' || b[i] == '\n')
            b[i] = ' ';
    }
    put(c, "-ERR ", 5);
    put(c, b, (size_t)n);
    put(c, "\r\n", 2);
}

/* Write the replies; a write that makes no progress for kv_cfg.timeout_ns fails.
 * 0 or -1 (close). */
int kv_flush(struct kv_conn *c)
{
    size_t off = 0;
    while (off < c->olen) {
        ssize_t n = weft_write_until(c->fd, c->out + off, c->olen - off,
                                     weft_now_ns() + kv_cfg.timeout_ns);
        if (n < 0)
            return -1;
        off += (size_t)n;
    }
    c->olen = 0;
    if (c->ocap > 4 * KV_OUT_FLUSH) {
        /* A big reply went out: give its memory back. */
        char *o = realloc(c->out, KV_OUT_INIT);
        if (o) {
            c->out = o;
            c->ocap = KV_OUT_INIT;
        }
    }
    return 0;
}

/* ---- commands ----------------------------------------------------------- */

/* A command's arguments: argv[i] is bytes [off, off + len) of base. */
struct args {
    const char *base;
    const struct resp_arg *v;
    size_t n;
};
#define A(i) (a->base + a->v[i].off)
#define L(i) (a->v[i].len)

static int is(const struct args *a, size_t i, const char *word)
{
    return L(i) == strlen(word) && strncasecmp(A(i), word, L(i)) == 0;
}

/* Each returns 0, or -1 when the connection must close (the runtime is
 * shutting down, or no memory). */
typedef int cmd_fn(struct kv_conn *c, const struct args *a, uint64_t now);

static int cmd_ping(struct kv_conn *c, const struct args *a, uint64_t now)
{
    if (a->n > 2)
        kv_put_err(c, "wrong number of arguments for 'ping' command");
    else if (a->n == 2)
        put_bulk(c, A(1), L(1));
    else
        put_str(c, "+PONG\r\n");
    return 0;
}

static int cmd_echo(struct kv_conn *c, const struct args *a, uint64_t now)
{
    put_bulk(c, A(1), L(1));
    return 0;
}

static int cmd_get(struct kv_conn *c, const struct args *a, uint64_t now)
{
    int r = kv_store_get(A(1), L(1), now, put_value, c);
    if (r < 0)
        return -1;
    if (r == 0)
        put_str(c, "$-1\r\n");
    return 0;
}

static int cmd_set(struct kv_conn *c, const struct args *a, uint64_t now)
{
    int flags = 0;
    size_t unit = 0, ttl_arg = 0; /* ns per unit of EX/PX, its argument */
    for (size_t i = 3; i < a->n; i++) {
        if (is(a, i, "nx") && !(flags & KV_SET_XX)) {
            flags |= KV_SET_NX;
        } else if (is(a, i, "xx") && !(flags & KV_SET_NX)) {
            flags |= KV_SET_XX;
        } else if (is(a, i, "keepttl") && !unit) {
            flags |= KV_SET_KEEPTTL;
        } else if ((is(a, i, "ex") || is(a, i, "px")) && !unit &&
                   !(flags & KV_SET_KEEPTTL) && i + 1 < a->n) {
            unit = is(a, i, "ex") ? 1000000000 : 1000000;
            ttl_arg = ++i;
        } else {
            kv_put_err(c, "syntax error");
            return 0;
        }
    }
    uint64_t expire = 0;
    if (unit) {
        long long t;
        if (!resp_strtoll(A(ttl_arg), L(ttl_arg), &t)) {
            kv_put_err(c, "value is not an integer or out of range");
            return 0;
        }
        if (t <= 0 || (uint64_t)t > (UINT64_MAX / 2 - now) / unit) {
            kv_put_err(c, "invalid expire time in 'set' command");
            return 0;
        }
        expire = now + (uint64_t)t * unit;
    }
    int r = kv_store_set(A(1), L(1), A(2), L(2), flags, expire, now);
    if (r < 0)
        return -1;
    put_str(c, r ? "+OK\r\n" : "$-1\r\n");
    return 0;
}

/* DEL and EXISTS: the number of keys (arguments) for which fn said 1. */
static int count_keys(struct kv_conn *c, const struct args *a, uint64_t now,
                      int (*fn)(const char *, size_t, uint64_t))
{
    long long n = 0;
    for (size_t i = 1; i < a->n; i++) {
        int r = fn(A(i), L(i), now);
        if (r < 0)
            return -1;
        n += r;
    }
    put_num(c, ':', n);
    return 0;
}

static int cmd_del(struct kv_conn *c, const struct args *a, uint64_t now)
{
    return count_keys(c, a, now, kv_store_del);
}

static int cmd_exists(struct kv_conn *c, const struct args *a, uint64_t now)
{
    return count_keys(c, a, now, kv_store_exists);
}

static int cmd_incr(struct kv_conn *c, const struct args *a, uint64_t now)
{
    long long v;
    int r = kv_store_incr(A(1), L(1), now, &v);
    if (r == -EINVAL)
        kv_put_err(c, "value is not an integer or out of range");
    else if (r == -ERANGE)
        kv_put_err(c, "increment or decrement would overflow");
    else if (r < 0)
        return -1;
    else
        put_num(c, ':', v);
    return 0;
}

static int cmd_mget(struct kv_conn *c, const struct args *a, uint64_t now)
{
    put_num(c, '*', (long long)a->n - 1);
    for (size_t i = 1; i < a->n; i++) {
        int r = kv_store_get(A(i), L(i), now, put_value, c);
        if (r < 0)
            return -1;
        if (r == 0)
            put_str(c, "$-1\r\n");
        /* Many big values: write as we go, outside any lock. */
        if (c->olen >= KV_OUT_FLUSH && kv_flush(c))
            return -1;
    }
    return 0;
}

static int cmd_mset(struct kv_conn *c, const struct args *a, uint64_t now)
{
    if (a->n % 2 == 0) {
        kv_put_err(c, "wrong number of arguments for 'mset' command");
        return 0;
    }
    for (size_t i = 1; i < a->n; i += 2) {
        if (kv_store_set(A(i), L(i), A(i + 1), L(i + 1), 0, 0, now) < 0)
            return -1;
    }
    put_str(c, "+OK\r\n");
    return 0;
}

static int cmd_dbsize(struct kv_conn *c, const struct args *a, uint64_t now)
{
    put_num(c, ':', (long long)kv_store_size());
    return 0;
}

static int cmd_quit(struct kv_conn *c, const struct args *a, uint64_t now)
{
    put_str(c, "+OK\r\n");
    c->quit = 1;
    return 0;
}

/* CONFIG GET: each parameter some pattern matches (glob, case-insensitive,
 * as Redis), once, as a name and a value; none is an empty array. */
static int cmd_config(struct kv_conn *c, const struct args *a, uint64_t now)
{
    if (!is(a, 1, "get")) {
        kv_put_err(c, "unknown subcommand '%.*s'. Try CONFIG HELP.",
                   (int)(L(1) < 128 ? L(1) : 128), A(1));
        return 0;
    }
    if (a->n < 3) {
        kv_put_err(c, "wrong number of arguments for 'config|get' command");
        return 0;
    }
    char v[4][24];
    snprintf(v[2], sizeof v[2], "%lu", kv_cfg.max_conn);
    snprintf(v[3], sizeof v[3], "%zu", kv_cfg.max_bulk);
    const char *names[] = {"save", "appendonly", "timeout", "maxclients",
                           "proto-max-bulk-len"};
    const char *vals[] = {"", "no", "0", v[2], v[3]};
    unsigned hit = 0, nhit = 0;
    for (size_t i = 2; i < a->n; i++) {
        char pat[128];
        if (L(i) >= sizeof pat || memchr(A(i), 0, L(i)))
            continue; /* longer than any name: matches none we have */
        memcpy(pat, A(i), L(i));
        pat[L(i)] = 0;
        for (unsigned k = 0; k < 5; k++) {
            if (!(hit & 1u << k) && !fnmatch(pat, names[k], FNM_CASEFOLD)) {
                hit |= 1u << k;
                nhit++;
            }
        }
    }
    put_num(c, '*', 2 * (long long)nhit);
    for (unsigned k = 0; k < 5; k++) {
        if (hit & 1u << k) {
            put_bulk(c, names[k], strlen(names[k]));
            put_bulk(c, vals[k], strlen(vals[k]));
        }
    }
    return 0;
}

/* arity as Redis counts it: the name included; negative: at least. */
static const struct command {
    const char *name;
    int arity;
    cmd_fn *fn;
} commands[] = {
    {"get", 2, cmd_get},    {"set", -3, cmd_set},
    {"ping", -1, cmd_ping}, {"echo", 2, cmd_echo},
    {"del", -2, cmd_del},   {"exists", -2, cmd_exists},
    {"incr", 2, cmd_incr},  {"mget", -2, cmd_mget},
    {"mset", -3, cmd_mset}, {"dbsize", 1, cmd_dbsize},
    {"quit", -1, cmd_quit}, {"config", -2, cmd_config},
};

/* Redis's words for an unknown command: the name, then the arguments
 * quoted, 128 bytes of them at most. */
static void unknown(struct kv_conn *c, const struct args *a)
{
    char b[400];
    int n = snprintf(b, sizeof b,
                     "unknown command '%.*s', with args beginning with: ",
                     (int)(L(0) < 128 ? L(0) : 128), A(0));
    long room = 128;
    for (size_t i = 1; i < a->n && room > 0; i++) {
        size_t k = L(i) < (size_t)room ? L(i) : (size_t)room;
        n += snprintf(b + n, sizeof b - (size_t)n, "'%.*s' ", (int)k, A(i));
        room -= (long)L(i) + 3;
    }
    kv_put_err(c, "%s", b);
}

int kv_run(struct kv_conn *c, const char *base)
{
    const struct args args = {base, c->p.argv, c->p.argc}, *a = &args;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const struct command *k = &commands[i];
        if (!is(a, 0, k->name))
            continue;
        if ((k->arity > 0 && a->n != (size_t)k->arity) ||
            (k->arity < 0 && a->n < (size_t)-k->arity)) {
            kv_put_err(c, "wrong number of arguments for '%s' command",
                       k->name);
            return 0;
        }
        return k->fn(c, a, weft_now_ns());
    }
    unknown(c, a);
    return 0;
}
