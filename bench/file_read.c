/*
 * file_read.c - `file_read`: 4 KiB reads at random offsets of a 256 MiB
 * file by 64 tasks (issue 15): the io_uring backend against the blocking
 * pool, and against the plain call on the worker.
 *
 * The file is made in $BENCH_FILE_DIR (default /tmp), filled with a
 * pattern that names each 8-byte word's offset, and unlinked at the end.
 * All workers; 64 tasks on the default stacks each make R reads of 4 KiB
 * at 4 KiB-aligned random offsets, each checked (length and the first
 * word). Three ways, each its own runtime:
 *  - uring:  weft_pread on a runtime with cfg.io = WEFT_IO_URING (the
 *            task parks; its worker's ring makes the read). Skipped, with
 *            the reason on stderr, where weft_rt_create says it cannot be.
 *  - pool:   weft_block_on(pread) on an epoll runtime: the read runs on
 *            a thread of the blocking pool while the task parks.
 *  - direct: weft_pread on an epoll runtime: pread(2) on the worker.
 * Warm: the file in the page cache (it was just written), R = 1,000 (x
 * BENCH_SCALE). Cold: posix_fadvise(POSIX_FADV_DONTNEED) drops the
 * file's pages before each repetition, so reads go to the device, R = 16
 * (x BENCH_SCALE, at least 1): there direct stalls its worker for every
 * read, which is what the other two avoid. Value: wall time of a
 * repetition over the reads made, ns/op (lower is better); median of
 * five after a warm-up. Lines: file_read_{uring,pool,direct} and
 * file_read_cold_{uring,pool,direct}.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define FILE_SIZE ((off_t)256 << 20)
#define BLOCK 4096
#define NTASKS 64

enum { WAY_URING, WAY_POOL, WAY_DIRECT };

typedef struct {
    int fd;
    int way;
    long reads; /* per task */
    int cold;
    _Atomic int bad;
    _Atomic uint32_t seeds;
} fr_ctx;

typedef struct {
    int fd;
    void *buf;
    off_t off;
    ssize_t got;
} pread_job;

static void *pread_on_pool(void *arg)
{
    pread_job *j = arg;
    j->got = pread(j->fd, j->buf, BLOCK, j->off);
    return NULL;
}

static void *reader(void *arg)
{
    fr_ctx *c = arg;
    uint64_t x = (atomic_fetch_add(&c->seeds, 1) + 1) * 0x9e3779b97f4a7c15u;
    char buf[BLOCK];
    for (long k = 0; k < c->reads; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        off_t off = (off_t)(x % (uint64_t)(FILE_SIZE / BLOCK)) * BLOCK;
        ssize_t got;
        if (c->way == WAY_POOL) {
            pread_job j = {c->fd, buf, off, -1};
            if (weft_block_on(pread_on_pool, &j, NULL))
                got = -1;
            else
                got = j.got;
        } else {
            got = weft_pread(c->fd, buf, BLOCK, off);
        }
        uint64_t w;
        memcpy(&w, buf, sizeof w);
        if (got != BLOCK || w != (uint64_t)off)
            atomic_store(&c->bad, 1);
    }
    return NULL;
}

typedef struct {
    weft_rt *rt;
    fr_ctx *c;
} fr_trial;

static double trial(void *arg, int *ok)
{
    fr_trial *t = arg;
    fr_ctx *c = t->c;
    if (c->cold)
        posix_fadvise(c->fd, 0, 0, POSIX_FADV_DONTNEED);
    weft_task h[NTASKS];
    double t0 = bench_now_ns();
    for (int i = 0; i < NTASKS; i++)
        if (weft_spawn(t->rt, &h[i], reader, c, NULL))
            *ok = 0;
    for (int i = 0; i < NTASKS; i++)
        if (weft_join(h[i], NULL))
            *ok = 0;
    double dt = bench_now_ns() - t0;
    if (atomic_load(&c->bad))
        *ok = 0;
    return dt / ((double)NTASKS * (double)c->reads);
}

/* The file, made and filled: each 8-byte word holds its own offset. */
static int make_file(char *path, size_t len)
{
    const char *dir = getenv("BENCH_FILE_DIR");
    snprintf(path, len, "%s/weft-bench-file-XXXXXX", dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    size_t chunk = 1 << 20;
    uint64_t *b = malloc(chunk);
    if (!b) {
        close(fd);
        return -1;
    }
    for (off_t off = 0; off < FILE_SIZE; off += (off_t)chunk) {
        for (size_t i = 0; i < chunk / 8; i++)
            b[i] = (uint64_t)off + i * 8;
        if (write(fd, b, chunk) != (ssize_t)chunk) {
            free(b);
            close(fd);
            return -1;
        }
    }
    free(b);
    fsync(fd); /* clean pages: DONTNEED can drop them */
    return fd;
}

static const char *const way_name[] = {"uring", "pool", "direct"};

int bench_file_read(void)
{
    char path[512];
    int fd = make_file(path, sizeof path);
    if (fd < 0) {
        fprintf(stderr, "file_read: cannot make the 256 MiB file: %s\n",
                strerror(errno));
        return 1;
    }
    int workers = bench_workers(), rc = 0;
    for (int cold = 0; cold < 2; cold++) {
        for (int way = WAY_URING; way <= WAY_DIRECT; way++) {
            weft_config cfg;
            weft_config_default(&cfg);
            cfg.workers = (unsigned)workers;
            cfg.max_tasks = 1024;
            cfg.io = way == WAY_URING ? WEFT_IO_URING : WEFT_IO_EPOLL;
            weft_rt *rt;
            int err = weft_rt_create(&rt, &cfg);
            if (err) {
                fprintf(stderr, "file_read_%s%s: skipped: %s\n",
                        cold ? "cold_" : "", way_name[way], weft_last_error());
                continue;
            }
            fr_ctx c = {.fd = fd, .way = way, .cold = cold};
            c.reads = bench_scaled(cold ? 16 : 1000);
            fr_trial t = {rt, &c};
            int ok = 1;
            double v = bench_median(trial, &t, &ok);
            bench_verbose_stats(rt);
            weft_rt_destroy(rt);
            char name[64];
            snprintf(name, sizeof name, "file_read_%s%s", cold ? "cold_" : "",
                     way_name[way]);
            rc |= bench_report(name, workers, v, "ns/op", ok);
        }
    }
    close(fd);
    unlink(path);
    return rc;
}
