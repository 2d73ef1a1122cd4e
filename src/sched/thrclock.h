/*
 * thrclock.h - another thread's clocks, as the monitor reads them to
 * judge a poll by the time its thread ran (sysmon.c, "Judging a poll by
 * its thread's time"; docs/decisions/0009): the thread's CPU clock,
 * whether it is blocked in the kernel, and its wait for a CPU.
 */
#ifndef WEFT_SCHED_THRCLOCK_H
#define WEFT_SCHED_THRCLOCK_H

#include <pthread.h>
#include <stdint.h>

/* One reading of a thread's clocks. */
typedef struct weft_thr_sample {
    uint64_t t0, t1; /* the monotonic clock before and after the reads */
    uint64_t cpu;    /* the thread's CPU clock */
    uint64_t delay;  /* its run_delay (schedstat): time spent runnable
                        but off the CPU, as of its last switch-in; read
                        only when blocked */
    int blocked;     /* asleep in the kernel (state S or D) */
} weft_thr_sample;

/* The /proc files of one thread, kept open between readings. */
typedef struct weft_thr_files {
    int tid;             /* the thread they were opened for; 0 none */
    int stat, schedstat; /* /proc/self/task/TID/..., -1 if not open */
} weft_thr_files;

void weft__thr_files_init(weft_thr_files *f);
void weft__thr_files_close(weft_thr_files *f);

/* Read the clocks of thread `th` (kernel id `tid`), which must not have
 * exited, into s; f's files are (re)opened when tid changed. 0 if they
 * cannot be read (no /proc, say). One caller at a time per f. */
int weft__thr_read(weft_thr_files *f, int tid, pthread_t th,
                   weft_thr_sample *s);

#endif
