/*
 * blocking.c - weft_block_on: blocking code (regular-file I/O,
 * getaddrinfo, a library that blocks) run on a bounded pool of plain
 * threads while the calling task parks, so its worker goes on running
 * other tasks (Tokio's spawn_blocking, Go's entersyscall hand-off done
 * explicitly).
 *
 * One pool per runtime, made at the first call from one of its tasks
 * (a runtime that never blocks has no pool and no thread). Its threads
 * start on demand, one when a job is queued and no thread is idle, up to
 * cfg.blocking_threads (WEFT_BLOCKING_THREADS, default 512 as Tokio's
 * max_blocking_threads); past the cap jobs queue in FIFO order. A thread
 * idle for weft__blocking_keep_ns (10 s, Tokio's keep_alive) retires. The threads block
 * every signal, so process-directed signals (SIGQUIT, SIGINT, weft's
 * SIGURG) go to the program's own threads and the workers as before.
 *
 * The job record lives on the parked task's stack: the function, its
 * argument, its result, and a wait record (sync/wait.h) with one node
 * that the pool thread claims when the function returns. Nothing
 * cancels a running function, and its argument and result may point
 * into the task's stack, so the task never leaves weft_block_on while
 * its job runs:
 *  - woken by the pool thread (it won the claim): the job is done;
 *  - cancelled (its runtime shut down, it won the claim): under the pool
 *    lock, a job still queued is unlinked and never runs (-ECANCELED);
 *    a job already taken by a thread is waited for, parked in a second
 *    wait that cancellation does not end (WAIT_NESTED): under the pool
 *    lock the task either sees `done` or leaves that wait's node in
 *    `late`, and the thread, having lost the first claim, sets `done`
 *    and takes `late` under the same lock, then wakes it. (It yielded in
 *    a loop until `done` before: a task then spun on its worker for as
 *    long as the job ran, found by a program written from weft.h.)
 * weft_rt_destroy waits for every running job (weft__blocking_rt_gone,
 * called before any stack is released), so a task abandoned in that
 * wait still has its stack while the thread writes the result.
 *
 * The queue is a mutex and a condition variable: a call that costs a
 * system call or more anyway, made from the parked task's worker and
 * the pool's threads, never from the scheduler's hot paths.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/error.h"
#include "../base/sysmark.h"
#include "../sync/wait.h"
#include "blocking.h"

#define RLX memory_order_relaxed
/* An idle thread retires after this long (10 s; tests shorten it). */
_Atomic uint64_t weft__blocking_keep_ns = 10000000000ull;

typedef struct bjob {
    struct bjob *next;
    weft_fn fn;
    void *arg, *ret;
    weft_wait wt;
    weft_wnode node;  /* claimed by the thread that ran the job */
    _Atomic int done; /* the thread lost the claim: it is done with us */
    int taken;        /* a thread took it off the queue (under lock) */
    weft_wnode *late; /* the cancelled task's second wait (under lock) */
} bjob;

/* A pool thread's record: joined by whoever takes the pool's lock next
 * after it retires (so no thread outlives weft_rt_destroy). */
typedef struct bthread {
    struct bthread *next;
    pthread_t th;
} bthread;

typedef struct weft_bpool {
    pthread_mutex_t lock;
    pthread_cond_t work; /* a job queued, or the pool is closing */
    pthread_cond_t gone; /* the last thread left */
    bjob *head, *tail;   /* queued jobs, FIFO */
    bthread *retired;    /* threads that left, to be joined */
    unsigned threads, idle, cap;
    int closing;
    _Atomic uint64_t calls;    /* jobs run from tasks */
    _Atomic uint32_t nthreads; /* threads, for weft_stats */
} weft_bpool;

static pthread_mutex_t make_lock = PTHREAD_MUTEX_INITIALIZER;

/* rt's pool, made at first use; NULL when it cannot be (-errno in *err). */
static weft_bpool *pool_of(weft_rt *rt, int *err)
{
    /* Acquire: pairs with the release store below. */
    weft_bpool *p = atomic_load_explicit(&rt->bpool, memory_order_acquire);
    if (p)
        return p;
    weft__sys_enter();
    pthread_mutex_lock(&make_lock);
    p = atomic_load_explicit(&rt->bpool, RLX);
    if (!p && (p = calloc(1, sizeof *p))) {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->work, &ca);
        pthread_cond_init(&p->gone, NULL);
        pthread_condattr_destroy(&ca);
        p->cap = rt->cfg.blocking_threads;
        /* Release: the pool's fields before its pointer. */
        atomic_store_explicit(&rt->bpool, p, memory_order_release);
    }
    pthread_mutex_unlock(&make_lock);
    weft__sys_leave();
    if (!p)
        *err = -ENOMEM;
    return p;
}

/* A pool thread: run queued jobs; retire after weft__blocking_keep_ns idle, or when the
 * pool closes and the queue is empty. */
static void *pool_main(void *arg)
{
    bthread *self = arg;
    weft_bpool *p = *(weft_bpool **)(self + 1);
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    pthread_mutex_lock(&p->lock);
    for (;;) {
        bjob *j = p->head;
        if (!j) {
            if (p->closing)
                break;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t until = (uint64_t)ts.tv_sec * 1000000000u +
                             (uint64_t)ts.tv_nsec +
                             atomic_load_explicit(&weft__blocking_keep_ns, RLX);
            ts.tv_sec = (time_t)(until / 1000000000u);
            ts.tv_nsec = (long)(until % 1000000000u);
            p->idle++;
            int r = pthread_cond_timedwait(&p->work, &p->lock, &ts);
            p->idle--;
            if (r == ETIMEDOUT && !p->head)
                break;
            continue;
        }
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        j->taken = 1;
        pthread_mutex_unlock(&p->lock);
        j->ret = j->fn(j->arg);
        atomic_fetch_add_explicit(&p->calls, 1, RLX);
        if (weft__wait_claim(&j->node)) {
            weft__wait_wake(&j->wt); /* after this, j may be gone */
        } else {
            pthread_mutex_lock(&p->lock);
            weft_wnode *late = j->late;
            /* Release: the result before the flag (pairs with the
             * cancelled task's acquire load). */
            atomic_store_explicit(&j->done, 1, memory_order_release);
            pthread_mutex_unlock(&p->lock);
            /* Nothing else ends that wait: the claim is ours. */
            if (late && weft__wait_claim(late))
                weft__wait_wake(late->wait); /* j may be gone */
        }
        pthread_mutex_lock(&p->lock);
    }
    p->threads--;
    atomic_store_explicit(&p->nthreads, p->threads, RLX);
    self->next = p->retired;
    p->retired = self;
    if (!p->threads)
        pthread_cond_signal(&p->gone);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Join the threads that retired. Under p->lock: each has left it for
 * good (its last act was to unlock). */
static void reap(weft_bpool *p)
{
    while (p->retired) {
        bthread *t = p->retired;
        p->retired = t->next;
        pthread_join(t->th, NULL);
        free(t);
    }
}

/* Start a pool thread: 0 or an errno. Under p->lock. */
static int start(weft_bpool *p)
{
    bthread *t = malloc(sizeof *t + sizeof p);
    if (!t)
        return ENOMEM;
    *(weft_bpool **)(t + 1) = p;
    int e = pthread_create(&t->th, NULL, pool_main, t);
    if (e)
        free(t);
    return e;
}

/* Queue j, waking an idle thread or starting one. Under p->lock. 0, or
 * -EAGAIN when no thread exists and none can be started (j not queued). */
static int submit(weft_bpool *p, bjob *j)
{
    reap(p);
    if (!p->idle && p->threads < p->cap) {
        int e = start(p);
        if (!e) {
            p->threads++;
            atomic_store_explicit(&p->nthreads, p->threads, RLX);
        } else if (!p->threads) {
            return weft__error_set(-EAGAIN, "weft_block_on: pthread_create: %s",
                                   strerror(e));
        }
        /* else: the threads there are will take it */
    }
    j->next = NULL;
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    if (p->idle)
        pthread_cond_signal(&p->work);
    return 0;
}

/* Unlink j from the queue if no thread took it: 1 if unlinked. Under
 * p->lock. */
static int unqueue(weft_bpool *p, bjob *j)
{
    if (j->taken)
        return 0;
    bjob **pp = &p->head, *prev = NULL;
    while (*pp != j)
        prev = *pp, pp = &(*pp)->next;
    *pp = j->next;
    if (p->tail == j)
        p->tail = prev;
    return 1;
}

int weft_block_on(weft_fn fn, void *arg, void **result)
{
    if (!fn)
        return -EINVAL;
    weft_caller me;
    if (!weft__caller(&me)) { /* a plain thread: block it */
        void *r = fn(arg);
        if (result)
            *result = r;
        return 0;
    }
    int err = 0;
    weft_bpool *p = pool_of(me.rt, &err);
    if (!p)
        return err;
    bjob j = {.fn = fn, .arg = arg};
    j.node.wait = &j.wt;
    if ((err = weft__wait_init(&j.wt, 0, WEFT_WK_BLOCKING, (const void *)fn)))
        return weft__wait_fini(&j.wt, err);
    weft__sys_enter();
    pthread_mutex_lock(&p->lock);
    err = p->closing ? -ECANCELED : submit(p, &j);
    pthread_mutex_unlock(&p->lock);
    weft__sys_leave();
    if (err)
        return weft__wait_fini(&j.wt, err);
    err = weft__wait_block(&j.wt, WAIT_FOREVER);
    if (err) { /* cancelled, and we won the claim */
        weft__sys_enter();
        pthread_mutex_lock(&p->lock);
        int never = unqueue(p, &j);
        pthread_mutex_unlock(&p->lock);
        weft__sys_leave();
        err = weft__wait_fini(&j.wt, never ? err : 0);
        if (never)
            return err;
        /* Taken before the cancellation: wait for its end (the header). */
        weft_wait late;
        weft_wnode ln = {.wait = &late};
        weft__wait_init(&late, WAIT_NESTED, WEFT_WK_BLOCKING, (const void *)fn);
        weft__sys_enter();
        pthread_mutex_lock(&p->lock);
        /* Acquire: pairs with the thread's release store of done. */
        int running = !atomic_load_explicit(&j.done, memory_order_acquire);
        if (running)
            j.late = &ln;
        pthread_mutex_unlock(&p->lock);
        weft__sys_leave();
        if (running)
            weft__wait_block(&late, WAIT_FOREVER);
        /* A nested wait leaves the kind it recorded: clear it. */
        weft__caller_wait_set(&me, WEFT_WK_NONE, NULL);
    } else {
        weft__wait_fini(&j.wt, 0);
    }
    if (result)
        *result = j.ret;
    return 0;
}

void weft__blocking_stats(weft_rt *rt, uint64_t *calls, uint64_t *threads)
{
    weft_bpool *p = atomic_load_explicit(&rt->bpool, memory_order_acquire);
    *calls = p ? atomic_load_explicit(&p->calls, RLX) : 0;
    *threads = p ? atomic_load_explicit(&p->nthreads, RLX) : 0;
}

void weft__blocking_rt_gone(weft_rt *rt)
{
    weft_bpool *p = atomic_load_explicit(&rt->bpool, memory_order_acquire);
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->closing = 1;
    /* Jobs still queued belong to tasks that were cancelled and are
     * abandoned now: none will run (their tasks never read them). */
    p->head = p->tail = NULL;
    pthread_cond_broadcast(&p->work);
    while (p->threads)
        pthread_cond_wait(&p->gone, &p->lock);
    reap(p);
    pthread_mutex_unlock(&p->lock);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->gone);
    pthread_mutex_destroy(&p->lock);
    free(p);
    atomic_store_explicit(&rt->bpool, NULL, RLX);
}
