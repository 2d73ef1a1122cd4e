/*
 * slowclients.c - many hostile clients held against an HTTP server on
 * 127.0.0.1, for bench/hostile.sh (issue 15, item 5): the load that must
 * not take the good clients' throughput or latency from them.
 *
 *   slowclients -p PORT [-n N] [-d SECS] [-s SKIP] [-r RAMP_MS] [-q]
 *
 * Hostile mode (the default): N connections (default 1000), half of them
 * slowloris (a request head sent a byte at a time, one byte a second, a
 * head that never ends) and half silent (connected, nothing sent). A
 * connection the server closes (its read deadline) is opened again at
 * once, so N stay attached for the whole run of SECS seconds (default
 * 10). The first connections are spread over RAMP_MS (default 1000):
 * opened all at once, they would reach their deadline at once and come
 * back as one burst of N connects every deadline.
 *
 * Quiet mode (-q): N silent connections, none opened again; once all N
 * are connected "slowclients: connected N" is printed (and flushed), and
 * they are held until SECS pass or SIGTERM: the state in which the
 * server's memory per connection is measured.
 *
 * At the end one line on stdout:
 *
 *   slowclients: mode=hostile n=N secs=S open_avg=A open_min=M closes=C
 *       refused=R errors=E life_ms_avg=L
 *
 * counted from SKIP seconds after the start (default 0) to the end, so
 * that a caller's measurement window excludes the ramp: open_avg and
 * open_min, the connections connected at each 50 ms tick (the mean and
 * the smallest); closes, the connections the server closed (end of file
 * or reset), and life_ms_avg their mean time from connected to closed;
 * refused, connects refused (ECONNREFUSED) or answered 503 (the server's
 * connection cap); errors, other failed connects (out of ports or
 * descriptors; retried after 100 ms).
 *
 * Plain POSIX and Linux epoll, one thread, no weft: the client must cost
 * little beside the load generator it shares a CPU with. It mostly sleeps
 * in epoll_wait; the timers are a scan of the slots every tick.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 50     /* timer resolution, and the open-count sample */
#define BYTE_MS 1000   /* a slowloris client's time between two bytes */
#define RETRY_MS 100   /* a failed connect's wait before the next */
#define MAX_N 1000000u /* the largest N taken */

/* A slot is one hostile client, its connection opened again and again. */
enum { IDLE, CONNECTING, OPEN, DONE };

typedef struct slot {
    int fd;             /* -1 unless CONNECTING or OPEN */
    unsigned char st;   /* IDLE (connect at next), CONNECTING, OPEN, DONE */
    unsigned char slow; /* sends a head a byte at a time */
    uint32_t sent;      /* bytes of the endless head sent on this connection */
    uint64_t next;      /* IDLE: when to connect; OPEN and slow: next byte */
    uint64_t opened;    /* when the connect completed */
} slot;

/* The slowloris head: a request line, then header lines without end (the
 * server refuses a head over its limit, HTTP_MAX_HEAD, long before a byte
 * a second gets there; its deadline comes first). */
static const char head[] = "GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\n";
static const char more[] = "X-Slow: a\r\n";

static volatile sig_atomic_t stop; /* set by SIGTERM or SIGINT */

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The byte at position i of the slowloris head. */
static char head_byte(uint32_t i)
{
    if (i < sizeof head - 1)
        return head[i];
    return more[(i - (sizeof head - 1)) % (sizeof more - 1)];
}

static struct {
    struct sockaddr_in addr;
    int ep;
    int quiet;
    int counting; /* past SKIP: the counters below run */
    unsigned long closes, refused, errors;
    uint64_t life_ms; /* sum over the closes counted */
} g;

/* Start a non-blocking connect for s; on a failure at once, count it and
 * leave s IDLE for a retry (in either mode: a client never connected is
 * not a close). */
static void dial(slot *s, uint64_t now)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        g.errors += g.counting;
        s->next = now + RETRY_MS;
        return;
    }
    int r = connect(fd, (struct sockaddr *)&g.addr, sizeof g.addr);
    if (r < 0 && errno != EINPROGRESS) {
        if (errno == ECONNREFUSED)
            g.refused += g.counting;
        else
            g.errors += g.counting;
        close(fd);
        s->next = now + RETRY_MS;
        return;
    }
    s->fd = fd;
    s->st = CONNECTING;
}

/* Register s's descriptor for the events of its state. */
static void watch(slot *s, uint32_t idx, int op, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.u32 = idx};
    if (epoll_ctl(g.ep, op, s->fd, &ev)) {
        perror("slowclients: epoll_ctl");
        exit(1);
    }
}

/* End s's connection; open another at next (when reopen), else never.
 * One due now is dialled at once rather than on the next tick, so that a
 * hostile client is away from the server for as little as it can be. */
static void drop(slot *s, uint32_t idx, uint64_t now, uint64_t next, int reopen)
{
    close(s->fd); /* also leaves the epoll set */
    s->fd = -1;
    s->sent = 0;
    s->st = reopen ? IDLE : DONE;
    s->next = next;
    if (reopen && next <= now) {
        dial(s, now);
        if (s->st == CONNECTING)
            watch(s, idx, EPOLL_CTL_ADD, EPOLLOUT);
    }
}

/* The server closed s (or reset it, or answered it): count it, drop it,
 * and in hostile mode open another at once. */
static void closed_by_server(slot *s, uint32_t idx, uint64_t now, int was_503)
{
    if (g.counting) {
        if (was_503) {
            g.refused++;
        } else {
            g.closes++;
            g.life_ms += now - s->opened;
        }
    }
    /* Refused: after a pause, not in a loop against the cap. */
    drop(s, idx, now, was_503 ? now + RETRY_MS : now, !g.quiet);
}

/* The outcome of s's connect, now that it is writable. */
static void connected(slot *s, uint32_t idx, uint64_t now)
{
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        if (err == ECONNREFUSED)
            g.refused += g.counting;
        else
            g.errors += g.counting;
        drop(s, idx, now, now + RETRY_MS, 1);
        return;
    }
    s->st = OPEN;
    s->opened = now;
    s->next = now; /* a slowloris client's first byte goes at once */
    watch(s, idx, EPOLL_CTL_MOD, EPOLLIN | EPOLLRDHUP);
}

/* s is readable: the server answered (a 503 when over its cap), closed
 * or reset it. Anything else it sends is read and dropped. */
static void readable(slot *s, uint32_t idx, uint64_t now)
{
    char buf[512];
    ssize_t n = recv(s->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
        if (n >= 12 && memcmp(buf, "HTTP/1.1 503", 12) == 0)
            closed_by_server(s, idx, now, 1);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    closed_by_server(s, idx, now, 0);
}

/* Wait up to timeout ms for events and handle them: how many there were,
 * or -1 when interrupted. */
static int poll_events(slot *slots, struct epoll_event *evs, int max,
                       int timeout)
{
    int k = epoll_wait(g.ep, evs, max, timeout);
    if (k < 0 && errno != EINTR) {
        perror("slowclients: epoll_wait");
        exit(1);
    }
    uint64_t now = now_ms();
    for (int j = 0; j < k; j++) {
        uint32_t idx = evs[j].data.u32;
        slot *s = &slots[idx];
        if (s->st == CONNECTING)
            connected(s, idx, now);
        else if (s->st == OPEN)
            readable(s, idx, now);
    }
    return k;
}

static unsigned long arg_num(const char *opt, const char *s, unsigned long lo,
                             unsigned long hi)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || !*s || *s == '-' || v < lo || v > hi) {
        fprintf(stderr, "slowclients: %s %s: not a number in %lu..%lu\n", opt,
                s, lo, hi);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    unsigned long port = 0, n = 1000, secs = 10, skip = 0, ramp = 1000;
    int opt;
    while ((opt = getopt(argc, argv, "p:n:d:s:r:q")) != -1) {
        switch (opt) {
        case 'p':
            port = arg_num("-p", optarg, 1, 65535);
            break;
        case 'n':
            n = arg_num("-n", optarg, 1, MAX_N);
            break;
        case 'd':
            secs = arg_num("-d", optarg, 1, 86400);
            break;
        case 's':
            skip = arg_num("-s", optarg, 0, 86400);
            break;
        case 'r':
            ramp = arg_num("-r", optarg, 0, 3600000);
            break;
        case 'q':
            g.quiet = 1;
            break;
        default:
            fprintf(stderr, "usage: slowclients -p PORT [-n N] [-d SECS] "
                            "[-s SKIP] [-r RAMP_MS] [-q]\n");
            return 2;
        }
    }
    if (!port) {
        fprintf(stderr, "slowclients: -p PORT is needed\n");
        return 2;
    }

    /* A descriptor per client and a few more, when the hard limit allows. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < n + 16)
        fprintf(stderr,
                "slowclients: %lu descriptors at most, %lu clients asked\n",
                (unsigned long)rl.rlim_cur, n);

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    g.addr.sin_family = AF_INET;
    g.addr.sin_port = htons((uint16_t)port);
    g.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g.ep = epoll_create1(EPOLL_CLOEXEC);
    slot *slots = calloc(n, sizeof *slots);
    struct epoll_event *evs = calloc(n, sizeof *evs);
    if (g.ep < 0 || !slots || !evs) {
        perror("slowclients");
        return 1;
    }
    uint64_t t0 = now_ms(), end = t0 + secs * 1000, from = t0 + skip * 1000;
    for (unsigned long i = 0; i < n; i++) {
        slots[i].fd = -1;
        slots[i].st = IDLE;
        slots[i].slow = !g.quiet && (i & 1);
        slots[i].next = t0 + ramp * i / n;
    }

    unsigned long samples = 0, open_min = n, announced = 0;
    double open_sum = 0;
    uint64_t tick = t0;
    while (!stop) {
        uint64_t now = now_ms();
        if (now >= end)
            break;
        g.counting = now >= from;
        if (now >= tick) {
            /* Events first: a connection the server closed was dialled
             * again as its close was read, and a connect on loopback
             * completes at once but shows at the next poll; a sample
             * taken before that poll would count each reconnect as a
             * gap. A few passes, not a loop: a server that closes every
             * connection as it accepts it would never let one end. */
            for (int pass = 0; pass < 3; pass++)
                if (poll_events(slots, evs, (int)n, 0) <= 0)
                    break;
            now = now_ms();
            /* Connect who is due, send each slowloris client's byte that
             * is due, and sample how many are connected. */
            unsigned long open = 0;
            for (unsigned long i = 0; i < n; i++) {
                slot *s = &slots[i];
                if (s->st == IDLE && s->next <= now) {
                    dial(s, now);
                    if (s->st == CONNECTING)
                        watch(s, (uint32_t)i, EPOLL_CTL_ADD, EPOLLOUT);
                } else if (s->st == OPEN && s->slow && s->next <= now) {
                    char b = head_byte(s->sent);
                    ssize_t w = send(s->fd, &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
                    if (w == 1) {
                        s->sent++;
                        s->next = now + BYTE_MS;
                    } else if (w < 0 && errno != EAGAIN) {
                        closed_by_server(s, (uint32_t)i, now, 0);
                    }
                }
                open += s->st == OPEN;
            }
            if (g.counting) {
                samples++;
                open_sum += (double)open;
                if (open < open_min)
                    open_min = open;
            }
            if (g.quiet && !announced && open == n) {
                printf("slowclients: connected %lu\n", n);
                fflush(stdout);
                announced = 1;
            }
            tick = now + TICK_MS;
        }
        poll_events(slots, evs, (int)n, (int)(tick - now));
    }

    double secs_counted = (double)(now_ms() - (from > t0 ? from : t0)) / 1e3;
    printf("slowclients: mode=%s n=%lu secs=%.1f open_avg=%.1f open_min=%lu "
           "closes=%lu refused=%lu errors=%lu life_ms_avg=%.0f\n",
           g.quiet ? "quiet" : "hostile", n, secs_counted,
           samples ? open_sum / (double)samples : 0.0, samples ? open_min : 0,
           g.closes, g.refused, g.errors,
           g.closes ? (double)g.life_ms / (double)g.closes : 0.0);
    return 0;
}
