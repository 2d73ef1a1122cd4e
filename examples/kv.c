/*
 * kv.c - a key-value server speaking the Redis protocol (RESP2), a task
 * per connection. Listens on 127.0.0.1:$PORT (default 6379) with $WORKERS
 * workers (default: weft's) and exits cleanly, status 0, on SIGTERM or
 * SIGINT, as examples/echo.c does.
 *
 *   PORT=6379 WORKERS=1 ./kv &
 *   redis-cli -p 6379 SET k v
 *   redis-benchmark -p 6379 -t set,get -P 16 -q
 *
 * Commands: PING [msg], ECHO msg, SET key value [NX|XX] [EX s|PX ms|
 * KEEPTTL], GET, DEL key..., EXISTS key..., INCR, MGET key..., MSET
 * key value..., DBSIZE, QUIT, CONFIG GET pattern... (save, appendonly,
 * timeout, maxclients and proto-max-bulk-len, answered as a Redis without
 * persistence would, so redis-benchmark does not warn). Names are
 * case-insensitive; errors are Redis 7's words. SET's GET option and
 * everything else are unknown.
 *
 * A connection's loop: read what has arrived into its input buffer, parse
 * every complete request in it (resp.h), run each, append each reply to
 * its output buffer, and write the replies of the whole batch in one write
 * (pipelining: 16 requests in one segment get 16 replies in one write).
 * The output buffer is written early only when it passes OUT_FLUSH bytes,
 * between commands and never with a shard's lock held, so a client that
 * reads slowly holds up only its own task.
 *
 * Memory per connection is bounded. The input buffer starts at IN_INIT
 * bytes and grows, for a request that does not fit, to what the parser
 * says the request needs (resp_need), which its limits bound: a bulk of at
 * most KV_MAX_BULK bytes (default 1 MiB; Redis's proto-max-bulk-len is 512
 * MiB), a request of at most 4 x KV_MAX_BULK + 64 KiB, at most
 * KV_MAX_ARGS (65536) arguments, inline lines of 64 KiB. A request over a
 * limit gets "-ERR Protocol error: ..." and the connection is closed. The
 * buffer goes back to IN_INIT once it is empty. The output buffer holds at
 * most OUT_FLUSH bytes plus one reply part (a value is at most
 * KV_MAX_BULK).
 *
 * Hostile clients. A request that has begun must be complete within
 * KV_READ_TIMEOUT_MS (default 10000) of the read that brought its first
 * byte, however slowly its bytes trickle in, or the connection is closed
 * (slowloris). A connection between requests may stay idle for ever, as
 * with Redis's default "timeout 0". A write that makes no progress for
 * the same time closes the connection too (a client that never reads). At
 * most KV_MAX_CONN (default 10000) connections are served at once; one
 * more gets "-ERR max number of clients reached" and is closed, and the
 * ones already open are served as before.
 *
 * Expiry: lazy (kv_store.h), plus a task that sweeps every KV_SWEEP_MS
 * (default 100; the tests set it long to see lazy expiry alone).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kv_store.h"
#include "resp.h"
#include "weft.h"

#define IN_INIT ((size_t)16 << 10)
#define OUT_INIT ((size_t)16 << 10)
#define OUT_FLUSH ((size_t)64 << 10)
#define SWEEP_BUDGET 256 /* buckets per shard per sweep */

/* Settings, from the environment, read before any task runs. */
static size_t max_bulk = RESP_DEFAULT_MAX_BULK;
static size_t max_args = RESP_DEFAULT_MAX_ARGS;
static unsigned long max_conn = 10000;
static uint64_t timeout_ns = 10000000000ull;
static uint64_t sweep_ns = 100000000ull; /* KV_SWEEP_MS, 100 ms */

static atomic_ulong live; /* connections being served */

struct conn {
    int fd;
    char *in; /* input: [start, end) not yet consumed */
    size_t cap, start, end;
    char *out; /* replies not yet written: [0, olen) */
    size_t olen, ocap;
    int broken; /* an output append failed: close */
    int quit;   /* QUIT: close after writing the replies */
    struct resp_parser p;
};

/* ---- replies ------------------------------------------------------------ */

static void put(struct conn *c, const void *s, size_t n)
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

static void put_str(struct conn *c, const char *s)
{
    put(c, s, strlen(s));
}

/* "<prefix><n>\r\n": integers, bulk and array headers. */
static void put_num(struct conn *c, char prefix, long long n)
{
    char b[32];
    int k = snprintf(b, sizeof b, "%c%lld\r\n", prefix, n);
    put(c, b, (size_t)k);
}

static void put_bulk(struct conn *c, const char *s, size_t n)
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
static void put_err(struct conn *c, const char *fmt, ...)
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

/* Write the replies; a write that makes no progress for timeout_ns fails.
 * 0 or -1 (close). */
static int flush(struct conn *c)
{
    size_t off = 0;
    while (off < c->olen) {
        ssize_t n = weft_write_until(c->fd, c->out + off, c->olen - off,
                                     weft_now_ns() + timeout_ns);
        if (n < 0)
            return -1;
        off += (size_t)n;
    }
    c->olen = 0;
    if (c->ocap > 4 * OUT_FLUSH) {
        /* A big reply went out: give its memory back. */
        char *o = realloc(c->out, OUT_INIT);
        if (o) {
            c->out = o;
            c->ocap = OUT_INIT;
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
typedef int cmd_fn(struct conn *c, const struct args *a, uint64_t now);

static int cmd_ping(struct conn *c, const struct args *a, uint64_t now)
{
    if (a->n > 2)
        put_err(c, "wrong number of arguments for 'ping' command");
    else if (a->n == 2)
        put_bulk(c, A(1), L(1));
    else
        put_str(c, "+PONG\r\n");
    return 0;
}

static int cmd_echo(struct conn *c, const struct args *a, uint64_t now)
{
    put_bulk(c, A(1), L(1));
    return 0;
}

static int cmd_get(struct conn *c, const struct args *a, uint64_t now)
{
    int r = kv_store_get(A(1), L(1), now, put_value, c);
    if (r < 0)
        return -1;
    if (r == 0)
        put_str(c, "$-1\r\n");
    return 0;
}

static int cmd_set(struct conn *c, const struct args *a, uint64_t now)
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
            put_err(c, "syntax error");
            return 0;
        }
    }
    uint64_t expire = 0;
    if (unit) {
        long long t;
        if (!resp_strtoll(A(ttl_arg), L(ttl_arg), &t)) {
            put_err(c, "value is not an integer or out of range");
            return 0;
        }
        if (t <= 0 || (uint64_t)t > (UINT64_MAX / 2 - now) / unit) {
            put_err(c, "invalid expire time in 'set' command");
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
static int count_keys(struct conn *c, const struct args *a, uint64_t now,
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

static int cmd_del(struct conn *c, const struct args *a, uint64_t now)
{
    return count_keys(c, a, now, kv_store_del);
}

static int cmd_exists(struct conn *c, const struct args *a, uint64_t now)
{
    return count_keys(c, a, now, kv_store_exists);
}

static int cmd_incr(struct conn *c, const struct args *a, uint64_t now)
{
    long long v;
    int r = kv_store_incr(A(1), L(1), now, &v);
    if (r == -EINVAL)
        put_err(c, "value is not an integer or out of range");
    else if (r == -ERANGE)
        put_err(c, "increment or decrement would overflow");
    else if (r < 0)
        return -1;
    else
        put_num(c, ':', v);
    return 0;
}

static int cmd_mget(struct conn *c, const struct args *a, uint64_t now)
{
    put_num(c, '*', (long long)a->n - 1);
    for (size_t i = 1; i < a->n; i++) {
        int r = kv_store_get(A(i), L(i), now, put_value, c);
        if (r < 0)
            return -1;
        if (r == 0)
            put_str(c, "$-1\r\n");
        /* Many big values: write as we go, outside any lock. */
        if (c->olen >= OUT_FLUSH && flush(c))
            return -1;
    }
    return 0;
}

static int cmd_mset(struct conn *c, const struct args *a, uint64_t now)
{
    if (a->n % 2 == 0) {
        put_err(c, "wrong number of arguments for 'mset' command");
        return 0;
    }
    for (size_t i = 1; i < a->n; i += 2) {
        if (kv_store_set(A(i), L(i), A(i + 1), L(i + 1), 0, 0, now) < 0)
            return -1;
    }
    put_str(c, "+OK\r\n");
    return 0;
}

static int cmd_dbsize(struct conn *c, const struct args *a, uint64_t now)
{
    put_num(c, ':', (long long)kv_store_size());
    return 0;
}

static int cmd_quit(struct conn *c, const struct args *a, uint64_t now)
{
    put_str(c, "+OK\r\n");
    c->quit = 1;
    return 0;
}

/* CONFIG GET: each parameter some pattern matches (glob, case-insensitive,
 * as Redis), once, as a name and a value; none is an empty array. */
static int cmd_config(struct conn *c, const struct args *a, uint64_t now)
{
    if (!is(a, 1, "get")) {
        put_err(c, "unknown subcommand '%.*s'. Try CONFIG HELP.",
                (int)(L(1) < 128 ? L(1) : 128), A(1));
        return 0;
    }
    if (a->n < 3) {
        put_err(c, "wrong number of arguments for 'config|get' command");
        return 0;
    }
    char v[4][24];
    snprintf(v[2], sizeof v[2], "%lu", max_conn);
    snprintf(v[3], sizeof v[3], "%zu", max_bulk);
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
static void unknown(struct conn *c, const struct args *a)
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
    put_err(c, "%s", b);
}

static int run(struct conn *c, const struct args *a)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const struct command *k = &commands[i];
        if (!is(a, 0, k->name))
            continue;
        if ((k->arity > 0 && a->n != (size_t)k->arity) ||
            (k->arity < 0 && a->n < (size_t)-k->arity)) {
            put_err(c, "wrong number of arguments for '%s' command", k->name);
            return 0;
        }
        return k->fn(c, a, weft_now_ns());
    }
    unknown(c, a);
    return 0;
}

/* ---- connections -------------------------------------------------------- */

/* Parse and run every complete request in the input buffer. 0, or -1 to
 * close (after writing what was answered, a protocol error included). */
static int serve_buffer(struct conn *c)
{
    for (;;) {
        size_t used;
        int r = resp_parse(&c->p, c->in + c->start, c->end - c->start, &used);
        if (r == RESP_CMD) {
            struct args a = {c->in + c->start, c->p.argv, c->p.argc};
            int bad = run(c, &a);
            c->start += used;
            if (bad || c->broken)
                return -1;
            if (c->quit)
                return 0;
            if (c->olen >= OUT_FLUSH && flush(c))
                return -1;
            continue;
        }
        c->start += used;
        if (r == RESP_ERR) {
            put_err(c, "%s", resp_error(&c->p));
            return -1;
        }
        return 0;
    }
}

/* Room to read into: compact the buffer, and grow it to what the request
 * in progress needs. -1 when it cannot grow (no memory). */
static int make_room(struct conn *c)
{
    if (c->start == c->end) {
        c->start = c->end = 0;
        if (c->cap > IN_INIT) {
            free(c->in); /* the big request is done: shrink */
            c->in = malloc(IN_INIT);
            c->cap = c->in ? IN_INIT : 0;
        }
        return c->in ? 0 : -1;
    }
    size_t pending = c->end - c->start, need = resp_need(&c->p);
    if (c->start > 0 && (c->end == c->cap || need > c->cap - c->start ||
                         c->start >= c->cap / 2)) {
        memmove(c->in, c->in + c->start, pending);
        c->start = 0;
        c->end = pending;
    }
    if (c->end < c->cap)
        return 0;
    /* Doubling, but never past what the limits let a request need. */
    size_t bound = c->p.max_request + RESP_MAX_COUNT_LINE;
    size_t cap = 2 * c->cap > need ? 2 * c->cap : need;
    if (cap > bound)
        cap = bound > need ? bound : need;
    if (cap <= c->cap)
        return -1; /* cannot happen: the parser stops such a request */
    char *in = realloc(c->in, cap);
    if (in == NULL)
        return -1;
    c->in = in;
    c->cap = cap;
    return 0;
}

static void *connection(void *arg)
{
    struct conn c = {.fd = (int)(intptr_t)arg};
    resp_init(&c.p);
    c.p.max_bulk = max_bulk;
    c.p.max_args = max_args;
    c.p.max_request = 4 * max_bulk + (64 << 10);
    c.in = malloc(IN_INIT);
    c.out = malloc(OUT_INIT);
    c.cap = IN_INIT;
    c.ocap = OUT_INIT;
    /* When the request in progress began (the read that brought its first
     * byte), or 0 between requests. */
    uint64_t begun = 0, read_at = 0;
    if (c.in == NULL || c.out == NULL)
        goto out;
    for (;;) {
        size_t before = c.start;
        int r = serve_buffer(&c);
        if (c.olen && flush(&c))
            break;
        if (r || c.quit)
            break;
        if (c.start == c.end)
            begun = 0;
        else if (c.start != before || begun == 0)
            begun = read_at; /* a new request began in the last read */
        if (make_room(&c))
            break;
        ssize_t n =
            weft_read_until(c.fd, c.in + c.end, c.cap - c.end,
                            begun ? begun + timeout_ns : WEFT_NO_DEADLINE);
        if (n <= 0)
            break; /* end of file, error, deadline or shutdown */
        read_at = weft_now_ns();
        c.end += (size_t)n;
    }
out:
    resp_free(&c.p);
    free(c.in);
    free(c.out);
    weft_close(c.fd);
    atomic_fetch_sub_explicit(&live, 1, memory_order_release);
    /* release: pairs with main's acquire load, which then frees what
     * this task used after it. */
    return NULL;
}

static void *acceptor(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    weft_spawn_attr at = WEFT_SPAWN_ATTR_INIT;
    at.flags = WEFT_DETACHED;
    at.name = "kv-conn";
    at.stack = WEFT_STACK_SMALL; /* 16 KiB: the buffers are on the heap */
    static const char full[] = "-ERR max number of clients reached\r\n";
    for (;;) {
        int fd = weft_accept(lfd, NULL, NULL, 0);
        if (fd == -ECANCELED)
            break; /* closed: shutting down */
        if (fd < 0) {
            /* EMFILE and the like: say so, and do not spin on it. */
            fprintf(stderr, "kv: accept: %s\n", weft_strerror(fd));
            weft_sleep_ns(10000000);
            continue;
        }
        /* Only this task adds to live, so the check cannot be overtaken. */
        if (atomic_load_explicit(&live, memory_order_relaxed) >= max_conn) {
            /* A new socket's send buffer is empty: one try is enough. */
            weft_write_until(fd, full, sizeof full - 1, 0);
            weft_close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
        if (weft_spawn(NULL, NULL, connection, (void *)(intptr_t)fd, &at)) {
            atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
            weft_close(fd);
        }
    }
    return NULL;
}

/* Expiry of keys nobody asks for; ends when the runtime shuts down. */
static void *sweeper(void *arg)
{
    while (weft_sleep_ns(sweep_ns) == 0) {
        if (kv_store_sweep(weft_now_ns(), SWEEP_BUDGET) < 0)
            break;
    }
    return NULL;
}

/* ---- start and stop ----------------------------------------------------- */

/* An unsigned decimal from the environment (default def), within
 * [lo, hi]; exits with a message on anything else. */
static unsigned long long env_num(const char *name, unsigned long long def,
                                  unsigned long long lo, unsigned long long hi)
{
    const char *s = getenv(name);
    if (s == NULL || *s == 0)
        return def;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || *s == '-' || v < lo || v > hi) {
        fprintf(stderr, "kv: %s=%s: want an integer in %llu..%llu\n", name, s,
                lo, hi);
        exit(2);
    }
    return v;
}

int main(void)
{
    unsigned port = (unsigned)env_num("PORT", 6379, 1, 65535);
    unsigned workers = (unsigned)env_num("WORKERS", 0, 0, 4096);
    max_bulk = env_num("KV_MAX_BULK", RESP_DEFAULT_MAX_BULK, 1, 1ull << 30);
    max_args = env_num("KV_MAX_ARGS", RESP_DEFAULT_MAX_ARGS, 1, 1u << 24);
    max_conn = env_num("KV_MAX_CONN", 10000, 1, 1000000);
    timeout_ns = env_num("KV_READ_TIMEOUT_MS", 10000, 1, 86400000) * 1000000ull;
    sweep_ns = env_num("KV_SWEEP_MS", 100, 1, 86400000) * 1000000ull;

    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    int err = kv_store_init();
    if (err) {
        fprintf(stderr, "kv: store: %s\n", strerror(-err));
        return 1;
    }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) ||
        listen(lfd, 4096)) {
        perror("kv: listen");
        return 1;
    }

    weft_config cfg;
    weft_config_default(&cfg);
    if (workers)
        cfg.workers = workers;
    /* A task per connection, the acceptor, the sweeper, and a margin. */
    if (cfg.max_tasks < max_conn + 16)
        cfg.max_tasks = (uint32_t)max_conn + 16;
    weft_rt *rt;
    if ((err = weft_rt_create(&rt, &cfg))) {
        fprintf(stderr, "kv: weft_rt_create: %s: %s\n", weft_strerror(err),
                weft_last_error());
        return 1;
    }
    weft_task acc, sw;
    if ((err = weft_spawn(rt, &acc, acceptor, (void *)(intptr_t)lfd, NULL)) ||
        (err = weft_spawn(rt, &sw, sweeper, NULL, NULL))) {
        fprintf(stderr, "kv: spawn: %s\n", weft_strerror(err));
        return 1;
    }
    fprintf(stderr, "kv: listening on 127.0.0.1:%u\n", port);

    int sig;
    sigwait(&stop, &sig);
    weft_close(lfd);
    weft_join(acc, NULL);
    /* Shutdown ends every wait with -ECANCELED: the sweeper's sleep, each
     * connection's read or write; each connection frees its buffers and
     * leaves live. Wait for that (bounded) so nothing is abandoned. */
    weft_rt_shutdown(rt);
    weft_join(sw, NULL);
    for (int i = 0;
         i < 5000 && atomic_load_explicit(&live, memory_order_acquire) != 0;
         i++)
        usleep(1000);
    while ((err = weft_rt_destroy(rt)) == -EBUSY)
        usleep(1000);
    kv_store_free();
    return err ? 1 : 0;
}
