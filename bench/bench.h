/*
 * bench.h - the harness every weft benchmark uses: sizes from the
 * environment (BENCH_SCALE, BENCH_WORKERS), one warm-up then the median of
 * five timed repetitions, and the BENCH line of ../shared/BENCHMARKS.md.
 */
#ifndef WEFT_BENCH_H
#define WEFT_BENCH_H

#include <stdint.h>

#include "weft.h"

#define BENCH_REPS 5

/* One timed repetition: returns the workload's value (e.g. ns/op) and
 * clears *ok if its result did not verify. */
typedef double (*bench_trial_fn)(void *ctx, int *ok);

double bench_now_ns(void);

/* Balance mode for runtimes the benchmarks create (bench_rt): -1 = the
 * environment's (WEFT_BALANCE), else WEFT_BALANCE_STEAL or _MESH. */
extern int bench_balance;
long bench_scaled(long n); /* n x BENCH_SCALE, at least 1 */
double bench_scale(void);
int bench_workers(void); /* BENCH_WORKERS, default: online CPUs */

/* Warm-up + median of BENCH_REPS. */
double bench_median(bench_trial_fn fn, void *ctx, int *ok);

/* Record and print one result line. Returns 0, or 1 if !ok. */
int bench_report(const char *name, int workers, double value, const char *unit,
                 int ok);

/* The same with an implementation name of the caller's (for figures
 * that are not weft's: bench/calib.c). */
int bench_report_impl(const char *name, const char *impl, int workers,
                      double value, const char *unit, int ok);

/* Create a runtime with `workers` workers and room for max_tasks tasks;
 * exits with a message on failure (a benchmark cannot run without it). */
weft_rt *bench_rt(unsigned workers, uint32_t max_tasks);

/* A runtime for n tasks (max_tasks at least n + 64) with small stacks of
 * `small` bytes unless WEFT_SMALL_STACK_SIZE names a size (0: the
 * default); *cfg gets the config used. Exits like bench_rt. */
weft_rt *bench_rt_sized(unsigned workers, long n, size_t small,
                        weft_config *cfg);

/* With BENCH_VERBOSE set, print the runtime's counters on stderr. */
void bench_verbose_stats(weft_rt *rt);

/* A one-shot flag a task sets and a plain thread waits for. */
typedef struct bench_done {
    _Atomic int set;
} bench_done;
void bench_done_reset(bench_done *d);
void bench_done_signal(bench_done *d);
void bench_done_wait(bench_done *d);

/* Workloads: each returns 0, or 1 if a check failed. */
int bench_switch(void);
int bench_spawn(void);
int bench_spawn_detached(void);
int bench_chained_spawn(void);
int bench_yield_many(void);
int bench_active_summary(void);
int bench_skynet(void);
int bench_skynet_spawn(void);
int bench_wakeup(void);
int bench_io_wakeup(void);
int bench_file_read(void);
int bench_accept_rate(void);
int bench_idle_cpu(void);
int bench_fib(void);
int bench_fib_spawn(void);
int bench_pingpong(void);
int bench_skynet_chan(void);
int bench_memory(void);
int bench_calib(void);
int bench_idle_connections(void);
int bench_mutex_contended(void);
int bench_timer_churn(void);
int bench_preempt(void);
int bench_fairness(void);

#endif
