/*
 * kv.c - a key-value server speaking the Redis protocol (RESP2), a task
 * per connection: this file has the connections, the acceptor, the
 * expiry task, start and stop; kv_cmd.c the commands and their replies,
 * kv_store.c the store, resp.c the request parser. Listens on 127.0.0.1:$PORT (default 6379) with $WORKERS
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
 * The output buffer is written early only when it passes KV_OUT_FLUSH
 * bytes,
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
 * most KV_OUT_FLUSH bytes plus one reply part (a value is at most
 * KV_MAX_BULK), and goes back to KV_OUT_INIT after a big reply. An idle
 * connection holds IN_INIT + KV_OUT_INIT bytes and a small (16 KiB) stack.
 *
 * Hostile clients. A request that has begun must be complete within
 * KV_READ_TIMEOUT_MS (default 10000) of the read that brought its first
 * byte, however slowly its bytes trickle in, or the connection is closed
 * (slowloris). A connection between requests may stay idle for ever, as
 * with Redis's default "timeout 0". A write that makes no progress for
 * the same time closes the connection too (a client that never reads). At
 * most KV_MAX_CONN (default 10000) connections are served at once; one
 * more gets "-ERR max number of clients reached" and is closed, and the
 * ones already open are served as before. The soft limit on descriptors
 * is raised to fit the cap (up to the hard limit; a warning if short).
 *
 * Expiry: lazy (kv_store.h), plus a task that sweeps every KV_SWEEP_MS
 * (default 100; the tests set it long to see lazy expiry alone).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kv.h"
#include "kv_store.h"
#include "resp.h"
#include "weft.h"

#define IN_INIT ((size_t)16 << 10)
#define SWEEP_BUDGET 256 /* buckets per shard per sweep */

/* Settings, from the environment, read before any task runs. */
struct kv_settings kv_cfg = {
    .max_bulk = RESP_DEFAULT_MAX_BULK,
    .max_args = RESP_DEFAULT_MAX_ARGS,
    .max_conn = 10000,
    .timeout_ns = 10000000000ull,
    .sweep_ns = 100000000ull,
};

static atomic_ulong live; /* connections being served */

/* ---- connections -------------------------------------------------------- */

/* Parse and run every complete request in the input buffer. 0, or -1 to
 * close (after writing what was answered, a protocol error included). */
static int serve_buffer(struct kv_conn *c)
{
    for (;;) {
        size_t used;
        int r = resp_parse(&c->p, c->in + c->start, c->end - c->start, &used);
        if (r == RESP_CMD) {
            int bad = kv_run(c, c->in + c->start);
            c->start += used;
            if (bad || c->broken)
                return -1;
            if (c->quit)
                return 0;
            if (c->olen >= KV_OUT_FLUSH && kv_flush(c))
                return -1;
            continue;
        }
        c->start += used;
        if (r == RESP_ERR) {
            kv_put_err(c, "%s", resp_error(&c->p));
            return -1;
        }
        return 0;
    }
}

/* Room to read into: compact the buffer, and grow it to what the request
 * in progress needs. -1 when it cannot grow (no memory). */
static int make_room(struct kv_conn *c)
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
    struct kv_conn c = {.fd = (int)(intptr_t)arg};
    resp_init(&c.p);
    c.p.max_bulk = kv_cfg.max_bulk;
    c.p.max_args = kv_cfg.max_args;
    c.p.max_request = 4 * kv_cfg.max_bulk + (64 << 10);
    c.in = malloc(IN_INIT);
    c.out = malloc(KV_OUT_INIT);
    c.cap = IN_INIT;
    c.ocap = KV_OUT_INIT;
    /* When the request in progress began (the read that brought its first
     * byte), or 0 between requests. */
    uint64_t begun = 0, read_at = 0;
    if (c.in == NULL || c.out == NULL)
        goto out;
    for (;;) {
        size_t before = c.start;
        int r = serve_buffer(&c);
        if (c.olen && kv_flush(&c))
            break;
        if (r || c.quit)
            break;
        if (c.start == c.end)
            begun = 0;
        else if (c.start != before || begun == 0)
            begun = read_at; /* a new request began in the last read */
        if (make_room(&c))
            break;
        ssize_t n = weft_read_until(c.fd, c.in + c.end, c.cap - c.end,
                                    begun ? begun + kv_cfg.timeout_ns
                                          : WEFT_NO_DEADLINE);
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
        if (atomic_load_explicit(&live, memory_order_relaxed) >=
            kv_cfg.max_conn) {
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
    while (weft_sleep_ns(kv_cfg.sweep_ns) == 0) {
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

/* A descriptor per connection: raise the soft limit on descriptors
 * towards want (at most the hard limit), or the cap could never be
 * reached and accept would fail with EMFILE first (as Redis does for
 * maxclients). */
static void raise_fd_limit(unsigned long want)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) || r.rlim_cur >= want)
        return;
    r.rlim_cur =
        r.rlim_max != RLIM_INFINITY && r.rlim_max < want ? r.rlim_max : want;
    if (setrlimit(RLIMIT_NOFILE, &r))
        getrlimit(RLIMIT_NOFILE, &r);
    if (r.rlim_cur < want)
        fprintf(stderr,
                "kv: %lu connections need %lu descriptors; the limit is %lu\n",
                kv_cfg.max_conn, want, (unsigned long)r.rlim_cur);
}

int main(void)
{
    unsigned port = (unsigned)env_num("PORT", 6379, 1, 65535);
    unsigned workers = (unsigned)env_num("WORKERS", 0, 0, 4096);
    kv_cfg.max_bulk =
        env_num("KV_MAX_BULK", RESP_DEFAULT_MAX_BULK, 1, 1ull << 30);
    kv_cfg.max_args =
        env_num("KV_MAX_ARGS", RESP_DEFAULT_MAX_ARGS, 1, 1u << 24);
    kv_cfg.max_conn = env_num("KV_MAX_CONN", 10000, 1, 1000000);
    kv_cfg.timeout_ns =
        env_num("KV_READ_TIMEOUT_MS", 10000, 1, 86400000) * 1000000ull;
    kv_cfg.sweep_ns = env_num("KV_SWEEP_MS", 100, 1, 86400000) * 1000000ull;
    raise_fd_limit(kv_cfg.max_conn + 64);

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
    if (cfg.max_tasks < kv_cfg.max_conn + 16)
        cfg.max_tasks = (uint32_t)kv_cfg.max_conn + 16;
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
