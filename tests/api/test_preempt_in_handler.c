/*
 * test_preempt_in_handler.c - no preemption inside a signal handler of
 * the program's own: the task is switched out only once the handler has
 * returned, and the next task on the thread has the thread's own signal
 * mask.
 *
 * Why. The monitor's SIGURG that lands while a program's handler runs
 * saw the handler's PC, the program's text, and preempted: the code the
 * handler had interrupted may be weft's (a SIGPROF handler of 3 ms once
 * caught weft_mutex_unlock holding its queue's spin lock, and the
 * process hung), and the next task on that thread ran with the
 * handler's mask (SIGPROF blocked: a profiler stopped sampling it).
 * Found by a program written from weft.h. Now a mask that blocks more
 * than the worker started with, or a stack pointer off the task's stack,
 * refuses (sched/preempt.c, in_program_handler).
 *
 * How. One worker. A preemptible task raises SIGALRM, whose handler
 * (SA_ONSTACK, so on the thread's signal stack) spins 60 ms with
 * SIGALRM blocked, then spins 60 ms in its own code. Another task
 * yields until the first has raised; it runs again only once the first
 * is preempted, and then looks at its signal mask: SIGALRM must not be
 * blocked, and the handler must have finished.
 *
 * Skipped under ThreadSanitizer (tests/preempt_util.h).
 */
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "check.h"
#include "preempt_util.h"

#define MS 1000000ull

static _Atomic int raised, handled, blocked_seen, checked;

static void spin_ms(uint64_t ms)
{
    uint64_t end = weft_now_ns() + ms * MS;
    volatile uint64_t x = 0;
    while (weft_now_ns() < end)
        x++;
}

static void on_alarm(int sig)
{
    (void)sig;
    spin_ms(60);
    atomic_store(&handled, 1);
}

static void *raiser(void *arg)
{
    (void)arg;
    atomic_store(&raised, 1);
    raise(SIGALRM);
    spin_ms(60);
    return NULL;
}

static void *looker(void *arg)
{
    (void)arg;
    while (!atomic_load(&raised))
        weft_yield();
    weft_yield(); /* back only once the raiser is switched out */
    sigset_t cur;
    CHECK_OK(pthread_sigmask(SIG_BLOCK, NULL, &cur));
    atomic_store(&blocked_seen, sigismember(&cur, SIGALRM));
    atomic_store(&checked, atomic_load(&handled) ? 1 : 2);
    return NULL;
}

static void *two(void *arg)
{
    (void)arg;
    weft_spawn_attr pa = WEFT_SPAWN_ATTR_INIT;
    pa.flags = WEFT_PREEMPTIBLE;
    weft_task a, b;
    CHECK_OK(weft_spawn(NULL, &b, looker, NULL, NULL));
    weft_yield(); /* the looker is yielding */
    CHECK_OK(weft_spawn(NULL, &a, raiser, NULL, &pa));
    CHECK_OK(weft_join(a, NULL));
    CHECK_OK(weft_join(b, NULL));
    return NULL;
}

TEST_T(api, preempt_waits_for_program_handler, 60)
{
    skip_tsan();
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    CHECK_OK(sigaction(SIGALRM, &sa, &old));
    weft_config cfg;
    weft_config_default(&cfg);
    cfg.workers = 1;
    cfg.max_tasks = 64;
    weft_rt *rt = test_rt_cfg(&cfg);
    test_run(rt, two, NULL);
    weft_stats st = test_stats(rt);
    CHECK_CMP_U64(st.preemptions, >=, 1);
    /* The looker ran after the handler, with the thread's own mask. */
    CHECK_EQ_INT(atomic_load(&checked), 1);
    CHECK_EQ_INT(atomic_load(&blocked_seen), 0);
    test_rt_destroy_clean(rt);
    CHECK_OK(sigaction(SIGALRM, &old, NULL));
}
