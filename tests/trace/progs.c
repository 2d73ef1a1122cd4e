/*
 * progs.c - weft-trace-progs: small programs written from weft.h alone,
 * traced from the runtime's creation (cfg.trace = argv[2]) and written at
 * weft_rt_destroy, for tools/trace-check.py (tests/CMakeLists.txt runs
 * both). Each prints its weft_stats beside the trace, and its own count
 * of what it did, so the checker's comparison has a third witness.
 *
 *   weft-trace-progs skynet|pingpong|preempt TRACE.json
 *
 * skynet: a 4-level tree of 10-way spawns and joins (11,111 tasks).
 * pingpong: two tasks bouncing a message over two channels 20,000 times.
 * preempt: a preemptible task spinning 40 ms while another yields on the
 * same workers: the monitor preempts the spinner.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"

static void *node(void *arg)
{
    uintptr_t depth = (uintptr_t)arg;
    if (depth == 0)
        return (void *)1;
    weft_task t[10];
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.name = depth == 1 ? "leaf" : "node";
    for (int i = 0; i < 10; i++)
        if (weft_spawn(NULL, &t[i], node, (void *)(depth - 1), &a))
            abort();
    uintptr_t sum = 0;
    for (int i = 0; i < 10; i++) {
        void *r;
        if (weft_join(t[i], &r))
            abort();
        sum += (uintptr_t)r;
    }
    return (void *)sum;
}

enum { ROUNDS = 20000 };

static weft_chan *ping, *pong;

static void *ponger(void *arg)
{
    (void)arg;
    uint32_t x;
    for (int i = 0; i < ROUNDS; i++)
        if (weft_chan_recv(ping, &x) || weft_chan_send(pong, &x))
            abort();
    return NULL;
}

static void *pinger(void *arg)
{
    (void)arg;
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.name = "ponger";
    weft_task t;
    if (weft_spawn(NULL, &t, ponger, NULL, &a))
        abort();
    for (uint32_t i = 0; i < ROUNDS; i++) {
        uint32_t x = i;
        if (weft_chan_send(ping, &x) || weft_chan_recv(pong, &x) || x != i)
            abort();
    }
    return weft_join(t, NULL) ? (void *)1 : NULL;
}

static void *spinner(void *arg)
{
    uint64_t end = weft_now_ns() + (uint64_t)(uintptr_t)arg;
    while (weft_now_ns() < end)
        ;
    return NULL;
}

static void *yielder(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2000; i++) {
        weft_yield();
        weft_sleep_ns(10000);
    }
    return NULL;
}

static void *preempt_main(void *arg)
{
    (void)arg;
    weft_spawn_attr sa = WEFT_SPAWN_ATTR_INIT, ya = WEFT_SPAWN_ATTR_INIT;
    sa.flags = WEFT_PREEMPTIBLE;
    sa.name = "spinner";
    ya.name = "yielder";
    weft_task s[2], y[2];
    for (int i = 0; i < 2; i++) {
        if (weft_spawn(NULL, &s[i], spinner, (void *)(uintptr_t)40000000,
                       &sa) ||
            weft_spawn(NULL, &y[i], yielder, NULL, &ya))
            abort();
    }
    for (int i = 0; i < 2; i++)
        if (weft_join(s[i], NULL) || weft_join(y[i], NULL))
            abort();
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s skynet|pingpong|preempt TRACE.json\n",
                argv[0]);
        return 2;
    }
    weft_config cfg;
    weft_config_default(&cfg);
    cfg.trace = argv[2];
    if (!getenv("WEFT_WORKERS"))
        cfg.workers = 2;
    weft_rt *rt;
    int err = weft_rt_create(&rt, &cfg);
    if (err) {
        fprintf(stderr, "weft_rt_create: %s\n", weft_strerror(err));
        return 1;
    }
    void *r = NULL;
    if (!strcmp(argv[1], "skynet")) {
        err = weft_rt_run(rt, node, (void *)(uintptr_t)4, &r);
        if (!err && (uintptr_t)r != 10000)
            err = -1;
    } else if (!strcmp(argv[1], "pingpong")) {
        if (weft_chan_create(&ping, sizeof(uint32_t), 0) ||
            weft_chan_create(&pong, sizeof(uint32_t), 0))
            return 1;
        err = weft_rt_run(rt, pinger, NULL, &r);
        if (!err && r)
            err = -1;
    } else if (!strcmp(argv[1], "preempt")) {
        err = weft_rt_run(rt, preempt_main, NULL, &r);
    } else {
        fprintf(stderr, "unknown program %s\n", argv[1]);
        return 2;
    }
    weft_stats st;
    weft_stats_get(rt, &st);
    printf("%s: err=%d spawns=%llu parks=%llu wakes=%llu steals=%llu "
           "yields=%llu preemptions=%llu\n",
           argv[1], err, (unsigned long long)st.spawns,
           (unsigned long long)st.parks, (unsigned long long)st.wakes,
           (unsigned long long)st.steals, (unsigned long long)st.yields,
           (unsigned long long)st.preemptions);
    if (!strcmp(argv[1], "pingpong")) {
        weft_chan_destroy(ping);
        weft_chan_destroy(pong);
    }
    int derr = weft_rt_destroy(rt);
    if (derr)
        fprintf(stderr, "weft_rt_destroy: %s\n", weft_strerror(derr));
    return err || derr ? 1 : 0;
}
