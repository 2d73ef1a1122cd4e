/*
 * ceiling_server.c - the least a server can do for ../shared/peers/net's
 * echo and http workloads: one thread, one epoll instance, edge-triggered,
 * a read and a send per readiness event, no runtime and no parser beyond
 * finding each request's end. Not a server anyone should run: it answers
 * every request with the plaintext response, whatever it asks.
 *
 *   PORT=N weft-ceiling-server echo|http
 *
 * What it is for: a figure no server with the same system calls can beat
 * on this machine, run beside weft and the peers by bench/net_cpu.sh or
 * by bench.sh (`--weft-echo "build/bench/weft-ceiling-server echo"`).
 * When it, Tokio and weft all land within a few per cent of each other,
 * the client is the bottleneck, not the servers (docs/decisions/
 * 0017-net-ceiling.md). It makes the same calls per request as weft's
 * epoll backend (a short read is taken as draining the socket, fd.c
 * "Short reads"), so weft's distance to it is the runtime's own cost.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 65536
#define EVENTS 256

static const char answer[] = "HTTP/1.1 200 OK\r\n"
                             "Server: ceiling\r\n"
                             "Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n"
                             "Content-Type: text/plain\r\n"
                             "Content-Length: 13\r\n"
                             "\r\n"
                             "Hello, World!";

static char in[BUF];
static char out[BUF / 16 * sizeof answer]; /* a request is >= 16 bytes */

/* The responses to the requests that end in in[0..n): one per "\r\n\r\n"
 * (a request split across reads is not handled: wrk's are not). */
static size_t http(size_t n)
{
    size_t o = 0;
    for (char *p = in; (p = memmem(p, (size_t)(in + n - p), "\r\n\r\n", 4));
         p += 4) {
        memcpy(out + o, answer, sizeof answer - 1);
        o += sizeof answer - 1;
    }
    return o;
}

int main(int argc, char **argv)
{
    const char *port = getenv("PORT");
    int is_http = argc > 1 && strcmp(argv[1], "http") == 0;
    if (!port || argc < 2 || (!is_http && strcmp(argv[1], "echo") != 0)) {
        fprintf(stderr, "usage: PORT=N weft-ceiling-server echo|http\n");
        return 2;
    }
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)atoi(port)),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 4096)) {
        perror("ceiling-server: listen");
        return 1;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event e = {.events = EPOLLIN, .data.fd = l}, ev[EVENTS];
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &e);
    for (;;) {
        int n = epoll_wait(ep, ev, EVENTS, -1);
        for (int i = 0; i < n; i++) {
            int fd = ev[i].data.fd;
            if (fd == l) {
                int c;
                while ((c = accept4(l, NULL, NULL,
                                    SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event ce = {.events = EPOLLIN | EPOLLET,
                                             .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
                continue;
            }
            for (;;) {
                ssize_t k = read(fd, in, sizeof in);
                if (k <= 0) {
                    if (k == 0 || errno != EAGAIN)
                        close(fd);
                    break;
                }
                if (is_http) {
                    size_t o = http((size_t)k);
                    if (o && send(fd, out, o, MSG_NOSIGNAL) < 0)
                        break;
                } else if (send(fd, in, (size_t)k, MSG_NOSIGNAL) < 0) {
                    break;
                }
                if (k < (ssize_t)sizeof in)
                    break; /* a short read took everything there was */
            }
        }
    }
}
