/*
 * test_trace.c - the execution trace's API and rings (docs/trace.md):
 * start/stop/dump errors, the flight recorder keeping only the newest
 * events when its ring wraps, and a full ring dropping (and counting)
 * events instead of holding up a worker. Whole traces are checked by
 * tools/trace-check.py (CTest entries trace-*).
 */
#include <glob.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"

enum { ROUNDS = 20000 };

/* Two tasks of the given name bounce a message `rounds` times. */
typedef struct bounce {
    weft_chan *a, *b;
    int rounds;
} bounce;

static void *echoer(void *arg)
{
    bounce *x = arg;
    int v;
    for (int i = 0; i < x->rounds; i++) {
        CHECK_OK(weft_chan_recv(x->a, &v));
        CHECK_OK(weft_chan_send(x->b, &v));
    }
    return NULL;
}

static void bounce_run(const char *name, int rounds)
{
    bounce x = {.rounds = rounds};
    CHECK_OK(weft_chan_create(&x.a, sizeof(int), 0));
    CHECK_OK(weft_chan_create(&x.b, sizeof(int), 0));
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.name = name;
    weft_task t;
    CHECK_OK(weft_spawn(NULL, &t, echoer, &x, &a));
    for (int i = 0; i < rounds; i++) {
        int v = i;
        CHECK_OK(weft_chan_send(x.a, &v));
        CHECK_OK(weft_chan_recv(x.b, &v));
        CHECK_EQ_INT(v, i);
    }
    CHECK_OK(weft_join(t, NULL));
    CHECK_OK(weft_chan_destroy(x.a));
    CHECK_OK(weft_chan_destroy(x.b));
}

static void *old_then_new(void *arg)
{
    (void)arg;
    bounce_run("old", ROUNDS);
    bounce_run("new", ROUNDS);
    return NULL;
}

/* A restarted trace records: RESTART_ROUNDS of "new" are enough to see
 * it, and keep the test's dump (of rings of 16 MiB a worker) small under
 * ASan, where converting ROUNDS' worth took most of its time limit. */
enum { RESTART_ROUNDS = 2000 };

static void *new_only(void *arg)
{
    (void)arg;
    bounce_run("new", RESTART_ROUNDS);
    return NULL;
}

/* The dump of rt's trace as a string (malloc'd). */
static char *dump_text(weft_rt *rt)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK_NOT_NULL(f);
    CHECK_OK(weft_trace_dump(rt, f));
    CHECK_EQ_INT(fclose(f), 0);
    return buf;
}

static unsigned count(const char *s, const char *what)
{
    unsigned n = 0;
    for (const char *p = s; (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

TEST_T(api, trace_start_stop_dump_errors, 30)
{
    weft_rt *rt = test_rt(2);
    CHECK_EQ_INT(weft_trace_dump(rt, stderr), -ENOENT); /* never traced */
    CHECK_EQ_INT(weft_trace_stop(rt), -ENOENT);
    CHECK_OK(weft_trace_start(rt));
    CHECK_EQ_INT(weft_trace_start(rt), -EALREADY);
    CHECK_OK(weft_trace_stop(rt)); /* no path: nothing written */
    CHECK_EQ_INT(weft_trace_stop(rt), -ENOENT);
    CHECK_EQ_INT(weft_trace_start(NULL), -EINVAL);
    CHECK_EQ_INT(weft_trace_dump(rt, NULL), -EINVAL);
    /* Started again, it records again (a restart resets the rings). */
    CHECK_OK(weft_trace_start(rt));
    test_run(rt, new_only, NULL);
    CHECK_OK(weft_trace_stop(rt));
    char *s = dump_text(rt);
    CHECK_CMP_INT(count(s, "\"name\":\"new #"), >=, RESTART_ROUNDS);
    free(s);
    test_rt_destroy_clean(rt);
}

/* Flight recorder: 1 MiB per worker holds 16,384 events; two phases of
 * 80,000 switches each: only the newest remain, so the second phase's
 * tasks are there and the first's are gone. */
TEST_T(api, trace_flight_recorder_keeps_the_newest, 60)
{
    weft_config cfg;
    weft_config_default(&cfg);
    cfg.workers = 2;
    cfg.trace_ring_mb = 1;
    weft_rt *rt = test_rt_cfg(&cfg);
    test_run(rt, old_then_new, NULL);
    char *s = dump_text(rt);
    unsigned old = count(s, "\"name\":\"old #"),
             new = count(s, "\"name\":\"new #");
    fprintf(stderr, "# flight recorder: %u old polls, %u new polls kept\n", old,
            new);
    CHECK_EQ_INT(old, 0);
    CHECK_CMP_INT(new, >, 1000);
    CHECK_NOT_NULL(strstr(s, "\"mode\":\"flight\""));
    free(s);
    test_rt_destroy_clean(rt);
}

/* A full ring drops and counts: rings of 64 events, 40,000 switches. The
 * run completes (no worker waits for room), and the drops are counted. */
TEST_T(api, trace_full_ring_drops_and_counts, 60)
{
    weft_rt *rt = test_rt(2);
    CHECK_OK(weft__trace_start(rt, 64 * sizeof(weft_tev), 0));
    test_run(rt, old_then_new, NULL);
    CHECK_OK(weft__trace_stop(rt));
    uint64_t dropped = 0, kept = 0;
    for (uint32_t i = 0; i <= rt->nworkers; i++) {
        dropped += atomic_load(&rt->trace_rings[i]->dropped);
        uint64_t next = atomic_load(&rt->trace_rings[i]->next);
        kept += next < 64 ? next : 64;
    }
    fprintf(stderr, "# %llu events kept, %llu dropped\n",
            (unsigned long long)kept, (unsigned long long)dropped);
    CHECK_CMP_U64(dropped, >, 4 * ROUNDS);
    CHECK_CMP_U64(kept, <=, 64 * (uint64_t)(rt->nworkers + 1));
    char *s = dump_text(rt);
    CHECK_NULL(strstr(s, "\"dropped\":0,")); /* said in the file */
    free(s);
    test_rt_destroy_clean(rt);
}

/* Flight recorder written on SIGQUIT (with cfg.dump_on_sigquit), by the
 * monitor: a file <path without .json>-N.json appears, whole. */
TEST_T(api, trace_flight_recorder_written_on_sigquit, 60)
{
    char base[64], pattern[80];
    snprintf(base, sizeof base, "/tmp/weft-test-trace-%ld.json",
             (long)getpid());
    snprintf(pattern, sizeof pattern, "/tmp/weft-test-trace-%ld-*.json",
             (long)getpid());
    weft_config cfg;
    weft_config_default(&cfg);
    cfg.workers = 2;
    cfg.trace_ring_mb = 1;
    cfg.trace = base;
    cfg.dump_on_sigquit = 1;
    weft_rt *rt = test_rt_cfg(&cfg);
    test_run(rt, old_then_new, NULL);
    CHECK_EQ_INT(raise(SIGQUIT), 0);
    glob_t g = {0};
    uint64_t end = test_now_ms() + 20000;
    while (glob(pattern, 0, NULL, &g) != 0 && test_now_ms() < end) {
        globfree(&g);
        usleep(10000);
    }
    CHECK_EQ_INT((int)g.gl_pathc, 1);
    /* Written whole: wait until the writer's last line is there. */
    char *text = NULL;
    for (;;) {
        FILE *f = fopen(g.gl_pathv[0], "r");
        CHECK_NOT_NULL(f);
        free(text);
        text = calloc(1, 1 << 26);
        size_t n = fread(text, 1, (1 << 26) - 1, f);
        fclose(f);
        if ((n && strstr(text, "\"otherData\"")) || test_now_ms() > end)
            break;
        usleep(10000);
    }
    CHECK_NOT_NULL(strstr(text, "\"mode\":\"flight\""));
    CHECK_NOT_NULL(strstr(text, "\"name\":\"new #"));
    free(text);
    unlink(g.gl_pathv[0]);
    globfree(&g);
    test_rt_destroy_clean(rt);
    unlink(base); /* written at the destroy */
}
