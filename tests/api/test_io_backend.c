/*
 * test_io_backend.c - the choice of I/O backend (weft_config.io, WEFT_IO;
 * weft.h, "I/O backends"): epoll serves every call; uring takes a task's
 * socket reads and writes or fails weft_rt_create with -ENOTSUP; auto is
 * uring where uring would be, else epoll with its reason in weft_stats
 * and weft_dump. Each runtime's choice is its own (two side by side).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

static weft_rt *rt_with_io(int io, int *err)
{
    weft_config c;
    weft_config_default(&c);
    c.workers = 1;
    c.max_tasks = 64;
    c.io = io;
    weft_rt *rt = NULL;
    *err = weft_rt_create(&rt, &c);
    return rt;
}

typedef struct {
    int sv[2];
} sock_pair;

/* A task reads what a second task writes on a Unix stream socket pair:
 * the calls the io_uring backend takes. */
static void *echo_reader(void *arg)
{
    sock_pair *p = arg;
    char b[8];
    CHECK_EQ_INT(weft_read(p->sv[0], b, sizeof b), 5);
    CHECK(memcmp(b, "hello", 5) == 0);
    return NULL;
}

static void *echo_writer(void *arg)
{
    sock_pair *p = arg;
    CHECK_EQ_INT(weft_write(p->sv[1], "hello", 5), 5);
    return NULL;
}

static void *one_exchange(void *arg)
{
    sock_pair *p = arg;
    weft_task r, w;
    CHECK_OK(weft_spawn(NULL, &r, echo_reader, p, NULL));
    weft_yield(); /* the reader first: it parks in its call */
    CHECK_OK(weft_spawn(NULL, &w, echo_writer, p, NULL));
    CHECK_OK(weft_join(r, NULL));
    CHECK_OK(weft_join(w, NULL));
    return NULL;
}

/* One exchange on rt; the io_uring operations it made. */
static uint64_t exchange(weft_rt *rt)
{
    sock_pair p;
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, p.sv));
    uint64_t before = test_stats(rt).io_uring_ops;
    test_run(rt, one_exchange, &p);
    uint64_t ops = test_stats(rt).io_uring_ops - before;
    CHECK_OK(weft_close(p.sv[0]));
    CHECK_OK(weft_close(p.sv[1]));
    return ops;
}

static char *dump_of(weft_rt *rt)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK_NOT_NULL(f);
    CHECK_OK(weft_dump(rt, f));
    fclose(f);
    return buf;
}

TEST(api, io_backend_epoll_auto_uring)
{
    int err;
    /* epoll: whatever the kernel has, no ring is used. */
    weft_rt *ep = rt_with_io(WEFT_IO_EPOLL, &err);
    CHECK_OK(err);
    weft_stats s = test_stats(ep);
    CHECK_EQ_U64(s.io_backend, WEFT_IO_EPOLL);
    CHECK_EQ_U64(s.io_fallback, WEFT_IO_FB_NONE);
    CHECK_EQ_U64(exchange(ep), 0);
    char *d = dump_of(ep);
    CHECK(strstr(d, " io_backend=epoll") != NULL);
    CHECK(strstr(d, "io_fallback=") == NULL);
    free(d);

    /* auto: the kernel decides, and uring agrees with it. */
    weft_rt *au = rt_with_io(WEFT_IO_AUTO, &err);
    CHECK_OK(err);
    s = test_stats(au);
    weft_rt *ur = rt_with_io(WEFT_IO_URING, &err);
    if (s.io_backend == WEFT_IO_URING) {
        CHECK_EQ_U64(s.io_fallback, WEFT_IO_FB_NONE);
        CHECK_OK(err);
        /* A read and a write, each one operation of the ring (the
         * read parks first, so it is not served at once by the try). */
        CHECK_CMP_U64(exchange(au), >=, 2);
        CHECK_CMP_U64(exchange(ur), >=, 2);
        CHECK_EQ_U64(test_stats(ur).io_backend, WEFT_IO_URING);
        d = dump_of(au);
        CHECK(strstr(d, " io_backend=uring") != NULL);
        free(d);
        /* The epoll runtime beside them still uses none. */
        CHECK_EQ_U64(exchange(ep), 0);
        test_rt_destroy_clean(ur);
    } else {
        CHECK_EQ_U64(s.io_backend, WEFT_IO_EPOLL);
        CHECK(s.io_fallback == WEFT_IO_FB_NOT_BUILT ||
              s.io_fallback == WEFT_IO_FB_SETUP ||
              s.io_fallback == WEFT_IO_FB_KERNEL);
        CHECK(s.io_fallback != WEFT_IO_FB_SETUP || s.io_fallback_errno != 0);
        CHECK_EQ_U64(exchange(au), 0);
        d = dump_of(au);
        CHECK(strstr(d, " io_backend=epoll io_uring_ops=0 io_fallback=") !=
              NULL);
        free(d);
        /* uring, asked for where it cannot be had, is an error that
         * says why. */
        CHECK_EQ_INT(err, -ENOTSUP);
        CHECK(ur == NULL);
        CHECK(strstr(weft_last_error(), "uring asked for") != NULL);
    }
    test_rt_destroy_clean(au);
    test_rt_destroy_clean(ep);
}

TEST(api, io_backend_from_the_environment)
{
    /* WEFT_IO's three words and nothing else. */
    const char *words[] = {"epoll", "auto", "uring"};
    char *old = getenv("WEFT_IO") ? strdup(getenv("WEFT_IO")) : NULL;
    for (int i = 0; i < 3; i++) {
        CHECK_OK(setenv("WEFT_IO", words[i], 1));
        weft_config c;
        weft_config_default(&c);
        CHECK_EQ_INT(c.io, i);
        CHECK(c.bad_env == NULL);
    }
    CHECK_OK(setenv("WEFT_IO", "io_uring", 1));
    weft_config c;
    weft_config_default(&c);
    weft_rt *rt = NULL;
    CHECK_ERR(weft_rt_create(&rt, &c), -EINVAL);
    CHECK(strstr(weft_last_error(), "WEFT_IO") != NULL);
    c.bad_env = NULL;
    c.io = 3;
    CHECK_ERR(weft_rt_create(&rt, &c), -EINVAL);
    CHECK(strstr(weft_last_error(), "io (WEFT_IO)") != NULL);
    if (old) {
        CHECK_OK(setenv("WEFT_IO", old, 1));
        free(old);
    } else {
        CHECK_OK(unsetenv("WEFT_IO"));
    }
}
