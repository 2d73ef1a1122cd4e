/*
 * echo.c - a TCP echo server, a task per connection: it writes back every
 * byte it reads. Listens on 127.0.0.1:$PORT (default 7777) with $WORKERS
 * workers (default: weft's), and exits cleanly on SIGTERM or SIGINT.
 *
 *   PORT=7777 WORKERS=1 ./echo
 *
 * How it stops: the signals are blocked before the runtime is made (its
 * threads take the creator's mask), and the main thread waits for one
 * with sigwait. It then closes the listening socket with weft_close,
 * which ends the acceptor's weft_accept with -ECANCELED, and shuts the
 * runtime down, which ends every connection's pending read the same way.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "weft.h"

static void *connection(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    for (;;) {
        ssize_t n = weft_read(fd, buf, sizeof buf);
        if (n <= 0 || weft_write_all(fd, buf, (size_t)n, NULL) < 0)
            break;
    }
    weft_close(fd);
    return NULL;
}

static void *acceptor(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.flags = WEFT_DETACHED;
    a.stack = WEFT_STACK_SMALL; /* 16 KiB: a connection needs little */
    for (;;) {
        int fd = weft_accept(lfd, NULL, NULL, 0);
        if (fd == -ECANCELED)
            break; /* closed: shutting down */
        if (fd < 0) {
            /* EMFILE and the like: say so, and do not spin on it. */
            fprintf(stderr, "echo: accept: %s\n", weft_strerror(fd));
            weft_sleep_ns(10000000);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (weft_spawn(NULL, NULL, connection, (void *)(intptr_t)fd, &a)) {
            weft_close(fd);
        }
    }
    return NULL;
}

int main(void)
{
    const char *p = getenv("PORT"), *w = getenv("WORKERS");
    int port = p ? atoi(p) : 7777;
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) ||
        listen(lfd, 4096)) {
        perror("echo: listen");
        return 1;
    }

    weft_config cfg;
    weft_config_default(&cfg);
    if (w && atoi(w) > 0)
        cfg.workers = (unsigned)atoi(w);
    weft_rt *rt;
    int err = weft_rt_create(&rt, &cfg);
    if (err) {
        fprintf(stderr, "echo: weft_rt_create: %s\n", weft_strerror(err));
        return 1;
    }
    weft_task acc;
    if ((err = weft_spawn(rt, &acc, acceptor, (void *)(intptr_t)lfd, NULL))) {
        fprintf(stderr, "echo: spawn: %s\n", weft_strerror(err));
        return 1;
    }
    fprintf(stderr, "echo: listening on 127.0.0.1:%d\n", port);

    int sig;
    sigwait(&stop, &sig);
    weft_close(lfd);
    weft_join(acc, NULL);
    weft_rt_shutdown(rt);
    /* Detached connection tasks end on their cancelled reads. */
    while ((err = weft_rt_destroy(rt)) == -EBUSY)
        usleep(1000);
    return err ? 1 : 0;
}
