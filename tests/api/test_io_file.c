/*
 * test_io_file.c - regular files: weft_pread, weft_pwrite, and weft_read
 * and weft_write at the file position, from tasks and plain threads, in
 * both backends (weft.h, "File descriptors"; with io_uring, a task's
 * calls on a regular file go through its worker's ring).
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

/* The byte at offset i of the test file: no two neighbours alike. */
static char byte_at(uint64_t i)
{
    return (char)('a' + (i * 7 + i / 4096) % 26);
}

enum { FILE_BYTES = 1 << 20, FILE_TASKS = 64, FILE_READS = 200 };

/* An unlinked temporary file of FILE_BYTES, filled with byte_at. */
static int test_file(void)
{
    char path[] = "/tmp/weft-test-file-XXXXXX";
    int fd = mkstemp(path);
    CHECK_CMP_INT(fd, >=, 0);
    CHECK_OK(unlink(path));
    char *b = malloc(FILE_BYTES);
    CHECK_NOT_NULL(b);
    for (uint64_t i = 0; i < FILE_BYTES; i++)
        b[i] = byte_at(i);
    CHECK_EQ_INT(write(fd, b, FILE_BYTES), FILE_BYTES);
    free(b);
    CHECK_EQ_INT(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

static void check_bytes(const char *b, uint64_t off, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] != byte_at(off + i))
            weft_check_fail(__FILE__, __LINE__,
                            "byte %llu of the file: got '%c', want '%c'",
                            (unsigned long long)(off + i), b[i],
                            byte_at(off + i));
}

typedef struct {
    int fd;
    _Atomic uint64_t bytes;
    _Atomic uint32_t seeds;
} file_ctx;

/* Random reads of odd sizes at odd offsets, some past the end. */
static void *random_reader(void *arg)
{
    file_ctx *c = arg;
    uint32_t x = (atomic_fetch_add(&c->seeds, 1) + 1) * 2654435761u;
    char b[9000];
    for (int k = 0; k < FILE_READS; k++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        uint64_t off = x % (FILE_BYTES + 4096);
        size_t n = 1 + (x >> 8) % sizeof b;
        ssize_t got = weft_pread(c->fd, b, n, (off_t)off);
        size_t want = off >= FILE_BYTES      ? 0
                      : off + n > FILE_BYTES ? FILE_BYTES - off
                                             : n;
        CHECK_EQ_INT(got, (ssize_t)want);
        check_bytes(b, off, want);
        atomic_fetch_add(&c->bytes, (uint64_t)got);
    }
    return NULL;
}

static void *file_main(void *arg)
{
    file_ctx *c = arg;
    /* The file position: weft_pread leaves it, weft_read moves it. */
    CHECK_EQ_INT(lseek(c->fd, 100, SEEK_SET), 100);
    char b[64];
    CHECK_EQ_INT(weft_pread(c->fd, b, 10, 5000), 10);
    check_bytes(b, 5000, 10);
    CHECK_EQ_INT(lseek(c->fd, 0, SEEK_CUR), 100);
    CHECK_EQ_INT(weft_read(c->fd, b, 20), 20);
    check_bytes(b, 100, 20);
    CHECK_EQ_INT(lseek(c->fd, 0, SEEK_CUR), 120);
    /* At the end: 0, as pread(2). Bad offset: -EINVAL. */
    CHECK_EQ_INT(weft_pread(c->fd, b, 10, FILE_BYTES), 0);
    CHECK_EQ_INT(weft_pread(c->fd, b, 10, -1), -EINVAL);
    /* A deadline already past: the call is still made (the file is
     * ready), as on any descriptor. */
    CHECK_EQ_INT(weft_pread_until(c->fd, b, 10, 7, 1), 10);
    check_bytes(b, 7, 10);
    /* Writes at an offset and at the position, read back. */
    char w[16];
    for (int i = 0; i < 16; i++)
        w[i] = byte_at(200000 + (uint64_t)i);
    CHECK_EQ_INT(weft_pwrite(c->fd, w, 16, 200000), 16);
    CHECK_EQ_INT(lseek(c->fd, 0, SEEK_CUR), 120);
    CHECK_EQ_INT(lseek(c->fd, 300000, SEEK_SET), 300000);
    for (int i = 0; i < 16; i++)
        w[i] = byte_at(300000 + (uint64_t)i);
    CHECK_EQ_INT(weft_write(c->fd, w, 16), 16);
    CHECK_EQ_INT(lseek(c->fd, 0, SEEK_CUR), 300016);
    CHECK_EQ_INT(pread(c->fd, b, 16, 200000), 16);
    check_bytes(b, 200000, 16);
    CHECK_EQ_INT(pread(c->fd, b, 16, 300000), 16);
    check_bytes(b, 300000, 16);
    /* A pipe has no offsets: the system's answer. */
    int p[2];
    CHECK_OK(pipe(p));
    CHECK_EQ_INT(weft_pread(p[0], b, 1, 0), -ESPIPE);
    CHECK_EQ_INT(weft_pwrite(p[1], "x", 1, 0), -ESPIPE);
    CHECK_OK(weft_close(p[0]));
    CHECK_OK(weft_close(p[1]));
    /* Many tasks at once. */
    weft_task t[FILE_TASKS];
    for (int i = 0; i < FILE_TASKS; i++)
        CHECK_OK(weft_spawn(NULL, &t[i], random_reader, c, NULL));
    for (int i = 0; i < FILE_TASKS; i++)
        CHECK_OK(weft_join(t[i], NULL));
    return NULL;
}

static void file_test(int io)
{
    weft_config cfg;
    weft_config_default(&cfg);
    cfg.workers = 2;
    cfg.max_tasks = 256;
    cfg.io = io;
    weft_rt *rt = test_rt_cfg(&cfg);
    file_ctx c = {.fd = test_file()};
    test_run(rt, file_main, &c);
    CHECK_CMP_U64(atomic_load(&c.bytes), >, 0);
    /* From a plain thread too (never the ring). */
    char b[32];
    CHECK_EQ_INT(weft_pread(c.fd, b, 32, 4090), 32);
    check_bytes(b, 4090, 32);
    weft_stats s = test_stats(rt);
    if (s.io_backend == WEFT_IO_URING)
        /* Every task's call on the file was an operation of a ring:
         * main's 5 (not the bad offset's, not the past deadline's) and
         * the readers' FILE_READS each. */
        CHECK_CMP_U64(s.io_uring_ops, >=,
                      5 + (uint64_t)FILE_TASKS * FILE_READS);
    else
        CHECK_EQ_U64(s.io_uring_ops, 0);
    CHECK_OK(weft_close(c.fd));
    test_rt_destroy_clean(rt);
}

TEST_T(api, io_file_pread_pwrite_epoll, 60)
{
    file_test(WEFT_IO_EPOLL);
}

TEST_T(api, io_file_pread_pwrite_auto, 60)
{
    file_test(WEFT_IO_AUTO);
}
