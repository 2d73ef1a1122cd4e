/*
 * thrclock.c - reading another thread's clocks (thrclock.h): its CPU
 * clock with pthread_getcpuclockid, its state from /proc/self/task/TID/
 * stat, and its run_delay from schedstat. Costs about 2 us, plus 4 us
 * for schedstat when the thread is blocked (measured on this project's
 * VMs); the monitor reads only polls it has seen at two looks.
 */
#include "thrclock.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../base/clock.h"

void weft__thr_files_init(weft_thr_files *f)
{
    f->tid = 0;
    f->stat = f->schedstat = -1;
}

void weft__thr_files_close(weft_thr_files *f)
{
    if (f->stat >= 0)
        close(f->stat);
    if (f->schedstat >= 0)
        close(f->schedstat);
    weft__thr_files_init(f);
}

/* The file at `fd` from its start, NUL-terminated; 0 on failure. */
static int read_file(int fd, char *buf, size_t size)
{
    ssize_t n = pread(fd, buf, size - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    return 1;
}

/* f's files for thread tid, opened the first time that thread is read:
 * thread entries are reused by new threads, and a new tid opens new
 * files. 0 if its stat file cannot be opened. */
static int files_for(weft_thr_files *f, int tid)
{
    if (f->tid != tid) {
        char path[64];
        weft__thr_files_close(f);
        snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
        f->stat = open(path, O_RDONLY | O_CLOEXEC);
        snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", tid);
        f->schedstat = open(path, O_RDONLY | O_CLOEXEC);
        f->tid = tid;
    }
    return f->stat >= 0;
}

int weft__thr_read(weft_thr_files *f, int tid, pthread_t th, weft_thr_sample *s)
{
    clockid_t cid;
    struct timespec ts;
    char buf[512];
    if (!files_for(f, tid) || pthread_getcpuclockid(th, &cid))
        return 0;
    s->t0 = weft__clock_ns();
    if (clock_gettime(cid, &ts) || !read_file(f->stat, buf, sizeof buf))
        return 0;
    /* "tid (comm) S ...": the name may hold ')' and spaces. */
    const char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || !p[2])
        return 0;
    s->cpu = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    s->blocked = p[2] == 'S' || p[2] == 'D';
    s->delay = 0;
    /* A thread that is not waiting for a CPU has its run_delay complete
     * (the kernel adds a wait when the wait ends). */
    if (s->blocked && f->schedstat >= 0 &&
        read_file(f->schedstat, buf, sizeof buf)) {
        char *e;
        strtoull(buf, &e, 10); /* CPU time, as the kernel last updated it */
        s->delay = strtoull(e, NULL, 10);
    }
    s->t1 = weft__clock_ns();
    return 1;
}
