/*
 * bench.c - harness and entry point of build/bench/weft-bench.
 *
 *   weft-bench [workload...]     every workload when none is named
 *
 * Prints a readable table, then the BENCH lines (stdout). Exits non-zero
 * if any check failed. Multi-worker workloads use BENCH_WORKERS workers
 * (default: the CPUs this process may use); `switch` uses one.
 */
#include "bench.h"

#include <linux/futex.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

double bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

double bench_scale(void)
{
    const char *s = getenv("BENCH_SCALE");
    double v = (s && *s) ? atof(s) : 1.0;
    return v > 0 ? v : 1.0;
}

long bench_scaled(long n)
{
    long v = (long)(n * bench_scale() + 0.5);
    return v < 1 ? 1 : v;
}

int bench_workers(void)
{
    const char *s = getenv("BENCH_WORKERS");
    int w = (s && *s) ? atoi(s) : 0;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return w >= 1 ? w : n < 1 ? 1 : (int)n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(bench_trial_fn fn, void *ctx, int *ok)
{
    double v[BENCH_REPS];
    fn(ctx, ok); /* warm-up */
    for (int i = 0; i < BENCH_REPS; i++) {
        v[i] = fn(ctx, ok);
        if (getenv("BENCH_VERBOSE"))
            fprintf(stderr, "  run %d: %.3f\n", i, v[i]);
    }
    qsort(v, BENCH_REPS, sizeof v[0], cmp_double);
    return v[BENCH_REPS / 2];
}

/* The balance mode runtimes are created in: -1 = the environment's. */
int bench_balance = -1;

static struct {
    char line[256];
    char impl[16];
    char name[48];
    int workers;
    double value;
    char unit[16];
    int ok;
} results[128];
static int nresults;

int bench_report(const char *name, int workers, double value, const char *unit,
                 int ok)
{
    /* Mesh mode at one worker is steal mode: not reported twice. */
    if (bench_balance == WEFT_BALANCE_MESH && workers == 1)
        return !ok;
    return bench_report_impl(
        name, bench_balance == WEFT_BALANCE_MESH ? "weft-mesh" : "weft",
        workers, value, unit, ok);
}

int bench_report_impl(const char *name, const char *impl, int workers,
                      double value, const char *unit, int ok)
{
    if (nresults < 128) {
        snprintf(results[nresults].impl, sizeof results[0].impl, "%s", impl);
        snprintf(results[nresults].name, sizeof results[0].name, "%s", name);
        snprintf(results[nresults].unit, sizeof results[0].unit, "%s", unit);
        results[nresults].workers = workers;
        results[nresults].value = value;
        results[nresults].ok = ok;
        nresults++;
    }
    return !ok;
}

static weft_rt *create_or_exit(weft_config *cfg)
{
    if (bench_balance >= 0)
        cfg->balance = bench_balance;
    weft_rt *rt;
    int err = weft_rt_create(&rt, cfg);
    if (err) {
        fprintf(stderr, "weft-bench: weft_rt_create: %s (%s)\n",
                weft_strerror(err), weft_last_error());
        exit(2);
    }
    return rt;
}

weft_rt *bench_rt(unsigned workers, uint32_t max_tasks)
{
    weft_config cfg;
    weft_config_default(&cfg);
    cfg.workers = workers;
    if (max_tasks > cfg.max_tasks)
        cfg.max_tasks = max_tasks;
    return create_or_exit(&cfg);
}

weft_rt *bench_rt_sized(unsigned workers, long n, size_t small,
                        weft_config *cfg)
{
    weft_config_default(cfg);
    cfg->workers = workers;
    if ((uint64_t)n + 64 > cfg->max_tasks)
        cfg->max_tasks = (uint32_t)n + 64;
    if (small && !getenv("WEFT_SMALL_STACK_SIZE"))
        cfg->small_stack_size = small;
    return create_or_exit(cfg);
}

void bench_verbose_stats(weft_rt *rt)
{
    weft_stats s;
    if (!getenv("BENCH_VERBOSE") || weft_stats_get(rt, &s))
        return;
    fprintf(stderr,
            "  stats: spawns %llu inlined %llu steals %llu/%llu parks %llu "
            "switches %llu yields %llu deflected %llu chunks %llu\n",
            (unsigned long long)s.spawns, (unsigned long long)s.inlined,
            (unsigned long long)s.steals, (unsigned long long)s.steal_attempts,
            (unsigned long long)s.parks, (unsigned long long)s.switches,
            (unsigned long long)s.yields, (unsigned long long)s.deflected,
            (unsigned long long)s.mail_chunks);
    for (unsigned i = 0; i < s.workers; i++) {
        weft_worker_stats ws;
        if (weft_stats_worker(rt, i, &ws))
            break;
        fprintf(stderr,
                "    worker %u: switches %llu steals %llu/%llu deflected %llu "
                "chunks %llu busy %.1f ms idle %.1f ms\n",
                i, (unsigned long long)ws.switches,
                (unsigned long long)ws.steals,
                (unsigned long long)ws.steal_attempts,
                (unsigned long long)ws.deflected,
                (unsigned long long)ws.mail_chunks, ws.busy_ns / 1e6,
                ws.idle_ns / 1e6);
    }
}

void bench_done_reset(bench_done *d)
{
    atomic_store(&d->set, 0);
}

void bench_done_signal(bench_done *d)
{
    atomic_store_explicit(&d->set, 1, memory_order_release);
    syscall(SYS_futex, &d->set, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void bench_done_wait(bench_done *d)
{
    while (!atomic_load_explicit(&d->set, memory_order_acquire))
        syscall(SYS_futex, &d->set, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
}

static const struct {
    const char *name;
    int (*run)(void);
} workloads[] = {
    {"switch", bench_switch},
    {"spawn", bench_spawn},
    {"spawn_detached", bench_spawn_detached},
    {"skynet", bench_skynet},
    {"skynet_spawn", bench_skynet_spawn},
    {"fib", bench_fib},
    {"fib_spawn", bench_fib_spawn},
    {"yield_many", bench_yield_many},
    {"chained_spawn", bench_chained_spawn},
    {"active_summary", bench_active_summary},
    {"pingpong", bench_pingpong},
    {"skynet_chan", bench_skynet_chan},
    {"memory", bench_memory},
    {"idle_connections", bench_idle_connections},
    {"mutex_contended", bench_mutex_contended},
    {"timer_churn", bench_timer_churn},
    {"wakeup", bench_wakeup},
    {"io_wakeup", bench_io_wakeup},
    {"file_read", bench_file_read},
    {"accept_rate", bench_accept_rate},
    {"idle_cpu", bench_idle_cpu},
    {"preempt", bench_preempt},
    {"fairness", bench_fairness},
    {"calib", bench_calib},
};
#define NWORKLOADS (int)(sizeof workloads / sizeof workloads[0])

/* Workloads that run at one worker only, or without a runtime: nothing
 * to compare between balance modes. */
static int single_mode(const char *name)
{
    return !strcmp(name, "switch") || !strcmp(name, "calib") ||
           !strcmp(name, "active_summary") || !strcmp(name, "timer_churn") ||
           !strcmp(name, "preempt") || !strcmp(name, "fairness") ||
           !strcmp(name, "file_read") || !strcmp(name, "accept_rate");
}

int main(int argc, char **argv)
{
    int rc = 0, ran = 0;
    /* BENCH_MODES: "steal", "mesh", "steal,mesh" (default) or "mesh,steal":
     * the balance modes to run every multi-worker workload in, in that
     * order (issue 7: both, in one run, as impl=weft and impl=weft-mesh;
     * bench/modes.sh alternates the order between rounds, since the
     * second runtime of a process can measure differently). */
    const char *modes = getenv("BENCH_MODES");
    if (!modes)
        modes = "steal,mesh";
    const char *ps = strstr(modes, "steal"), *pm = strstr(modes, "mesh");
    int mesh_first = pm && (!ps || pm < ps);
    for (int k = 0; k < 2; k++) {
        int m = mesh_first ? !k : k;
        const char *mode = m ? "mesh" : "steal";
        if (!strstr(modes, mode))
            continue;
        bench_balance = m ? WEFT_BALANCE_MESH : WEFT_BALANCE_STEAL;
        for (int i = 0; i < NWORKLOADS; i++) {
            int want = argc < 2;
            for (int a = 1; a < argc; a++)
                want |= strcmp(argv[a], workloads[i].name) == 0;
            if (want && m && single_mode(workloads[i].name))
                want = 0;
            if (want) {
                fprintf(stderr, "# weft-bench: %s (%s)\n", workloads[i].name,
                        mode);
                rc |= workloads[i].run();
                ran++;
            }
        }
    }
    for (int a = 1; a < argc; a++) {
        int known = 0;
        for (int i = 0; i < NWORKLOADS; i++)
            known |= strcmp(argv[a], workloads[i].name) == 0;
        if (!known) {
            fprintf(stderr, "weft-bench: unknown workload '%s'\n", argv[a]);
            rc = 2;
        }
    }
    if (!ran)
        return rc;
    printf("%-24s %-10s %8s %14s %-8s %s\n", "workload", "impl", "workers",
           "value", "unit", "check");
    for (int i = 0; i < nresults; i++)
        printf("%-24s %-10s %8d %14.2f %-8s %s\n", results[i].name,
               results[i].impl, results[i].workers, results[i].value,
               results[i].unit, results[i].ok ? "ok" : "FAIL");
    printf("\n");
    /* %.4g, but never an exponent (B/task reaches 5 digits). */
    for (int i = 0; i < nresults; i++)
        printf("BENCH name=%s impl=%s workers=%d value=%.*g unit=%s "
               "check=%s\n",
               results[i].name, results[i].impl, results[i].workers,
               results[i].value >= 1e4 ? 15 : 4,
               results[i].value >= 1e4
                   ? (double)(long long)(results[i].value + 0.5)
                   : results[i].value,
               results[i].unit, results[i].ok ? "ok" : "FAIL");
    return rc;
}
