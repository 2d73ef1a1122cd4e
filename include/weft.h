/*
 * weft.h - the whole public API of weft, an M:N stackful-task runtime.
 *
 * A task is an ordinary C function with its own stack. Many tasks run on a
 * few worker threads; a task that blocks in a weft call parks itself, never
 * its worker. Every call below states where it may be called from, whether
 * it blocks, and which errors it returns.
 *
 * Conventions
 * - A call that can fail returns 0 or a negative errno value; on failure it
 *   has no effect. weft_strerror() names every value.
 * - "Any thread" means a task, a worker, or a thread the runtime does not
 *   know (a "plain" thread). "Task only" calls return -EPERM elsewhere.
 * - Nothing in the library prints to stdout, exits, or aborts on bad input.
 *   Only a broken invariant (a detected stack overflow, corrupted state)
 *   aborts, after one line on stderr naming the module and the task.
 *
 * Migration: a task may resume on another worker (another OS thread) after
 * any call that can block or yield. The address of a _Thread_local
 * variable, pthread_self() and thread-affine locks are therefore only
 * stable between such calls; task-local storage (weft_tls_*) follows the
 * task.
 */
#ifndef WEFT_H
#define WEFT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(WEFT_BUILDING) && defined(__GNUC__)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

/* Old names kept working: they warn where the compiler can say so. */
#if defined(__GNUC__) && !defined(WEFT_BUILDING)
#define WEFT_DEPRECATED(msg) __attribute__((deprecated(msg)))
#else
#define WEFT_DEPRECATED(msg)
#endif

/* ---- Version -------------------------------------------------------------
 * Of this header; weft_version() is that of the library linked (they
 * differ when a program runs against another build). Semantic versioning;
 * CHANGELOG.md says what changed. */
#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 2
#define WEFT_VERSION_PATCH 0
#define WEFT_VERSION_HEX                                                       \
    ((WEFT_VERSION_MAJOR << 16) | (WEFT_VERSION_MINOR << 8) |                  \
     WEFT_VERSION_PATCH)

/* The library's version as WEFT_VERSION_HEX packs it, and as "0.2.0".
 * Any thread. */
WEFT_API unsigned weft_version(void);
WEFT_API const char *weft_version_string(void);

/* ---- Errors -------------------------------------------------------------
 * Returned negated: -EINVAL bad argument, -ENOMEM out of memory, -EAGAIN
 * capacity exhausted (max_tasks), -ESRCH stale or unknown task handle,
 * -EDEADLK a task joining itself, -EBUSY runtime still has tasks (or a
 * primitive still has waiters), -EPERM wrong calling context, -ECANCELED
 * runtime shutting down, -ETIMEDOUT deadline passed, -EPIPE channel
 * closed, -EOVERFLOW semaphore count limit. */

/* A sentence for an error code (positive or negative); never NULL. Any
 * thread. */
WEFT_API const char *weft_strerror(int err);

/* The code's symbolic name, "EINVAL" for -EINVAL or EINVAL, "0" for 0,
 * the C library's name for any other errno value (the descriptor calls
 * return theirs: "ECONNRESET", "EMFILE"), "UNKNOWN" otherwise; never
 * NULL. Any thread. */
WEFT_API const char *weft_err_name(int err);

/* Detail of the calling thread's last failed call among those that give
 * one: weft_rt_create (e.g. "WEFT_STACK_SIZE: not a size: '12q'") and the
 * policy calls (weft_policy_get, weft_policy_set, weft_policy_preset:
 * which field). Each of those calls clears it when it starts, so after a
 * success it is "", except after a successful weft_rt_create that sets up
 * stacks with canaries only: then a warning naming them (see "Stack
 * overflow"). Every other call leaves it as it was. Thread-local; the
 * string stays valid until the thread's next such call. Any thread. */
WEFT_API const char *weft_last_error(void);

/* ---- Runtime ------------------------------------------------------------ */

typedef struct weft_rt weft_rt;

/* Defaults: workers 0 (one per CPU the process may use: its affinity mask,
 * limited by a cgroup CPU quota), max_tasks 65536,
 * stack_size 256 KiB, small_stack_size 16 KiB, stack_keep 1024,
 * guard_pages 1. Limits (else -EINVAL from weft_rt_create): max_tasks
 * 1..16777216, and at least 63 per worker rounded up (workers <=
 * ceil(max_tasks / 63): each worker needs a leaf of 63 task slots, so
 * max_tasks 1 allows one worker, 64 two); stack_size a multiple of the page size, 16 KiB..1 GiB;
 * small_stack_size a multiple of 64, 1 KiB..stack_size (4 KiB.. with the
 * portable ucontext switcher; under 4 KiB only for tasks that call nothing
 * deep: 128 bytes go to task-local values);
 * guard_pages, pin and huge_pages 0 or 1; balance a WEFT_BALANCE_* value;
 * and the whole arena under 64 TiB of address space: max_tasks stacks of
 * each class, plus eight for each stack cache of a worker or spare
 * thread (24 x workers; 32 with one worker). */
typedef struct weft_config {
    unsigned workers;          /* worker threads; 0 = one per usable CPU */
    uint32_t max_tasks;        /* live task slots (spawned, not yet reaped) */
    size_t stack_size;         /* default stack class, bytes incl. guard */
    size_t small_stack_size;   /* WEFT_STACK_SMALL class, usable bytes (a
                                guard zone is added from a page up) */
    size_t stack_keep;         /* resident stacks kept hot before madvise */
    int guard_pages;           /* 1 = guard pages (lightweight: all stacks
                                of a page or more; else while the map
                                budget lasts), 0 = canaries only */
    int pin;                   /* 1 = pin each worker to one CPU, in
                                weft_topology.pin_order */
    int huge_pages;            /* 1 = back the arena's metadata (everything
                                but the stacks) with reserved huge pages
                                (MAP_HUGETLB) when the system has enough;
                                else, and with 0, transparent huge pages
                                are asked for (MADV_HUGEPAGE). See
                                weft_stats.huge_pages */
    int balance;               /* WEFT_BALANCE_STEAL (default) or
                                WEFT_BALANCE_MESH; see below */
    int policy;                /* WEFT_POLICY_BALANCED (default),
                                _AGGRESSIVE or _PERMISSIVE: the preset
                                weft_policy the runtime starts with
                                (WEFT_POLICY=aggressive|balanced|
                                permissive) */
    int fairness;              /* -1 = the preset's (WEFT_FAIR_DRR), else
                                a WEFT_FAIR_* value (WEFT_FAIRNESS=drr|
                                lottery|strict) */
    int preempt_all;           /* 1 = every task is preemptible, as if
                                spawned WEFT_PREEMPTIBLE
                                (WEFT_PREEMPT_ALL=0|1) */
    int dump_on_sigquit;       /* 1 = SIGQUIT writes weft_dump of every
                                runtime to stderr (WEFT_SIGQUIT_DUMP) */
    unsigned blocking_threads; /* cap on weft_block_on's threads, 1..65536
                                  (WEFT_BLOCKING_THREADS; default 512) */
    const char *trace;         /* path: record an execution trace from the
                                  start and write it there as Chrome
                                  trace-event JSON at weft_trace_stop or
                                  weft_rt_destroy (WEFT_TRACE; NULL none;
                                  docs/trace.md) */
    unsigned trace_ring_mb;    /* 0: trace rings of 16 MiB per worker that
                                  drop new events when full; 1..4096:
                                  flight recorder, the newest MiB per
                                  worker (WEFT_TRACE_RING) */
    int io;                    /* WEFT_IO_EPOLL (default), WEFT_IO_AUTO or
                                  WEFT_IO_URING: the backend of the
                                  descriptor calls (WEFT_IO=epoll|auto|
                                  uring; "File descriptors" below) */
    const char *bad_env;       /* set by weft_config_default to the first
                                  WEFT_* variable that did not parse;
                                  weft_rt_create then fails with -EINVAL */
} weft_config;

/* Balance modes. STEAL: idle workers steal from busy ones (Chase-Lev
 * deques). MESH: busy workers push work to less-loaded neighbours through
 * point-to-point mailboxes, same L3 group first (docs/mesh.md). Both pass
 * the same tests; the benchmarks say which wins where. */
enum { WEFT_BALANCE_STEAL = 0, WEFT_BALANCE_MESH = 1 };

/* I/O backends (weft_config.io, weft_stats.io_backend). EPOLL: the
 * runtime's epoll poller. URING: an io_uring per worker takes a task's
 * reads and writes of stream sockets and regular files ("File
 * descriptors"); weft_rt_create
 * fails with -ENOTSUP (weft_last_error says why) where it cannot be used.
 * AUTO: URING where it can be used, else EPOLL, with the reason in
 * weft_stats.io_fallback and weft_dump. */
enum { WEFT_IO_EPOLL = 0, WEFT_IO_AUTO = 1, WEFT_IO_URING = 2 };

/* Environment overrides applied by weft_config_default (each is validated
 * by weft_rt_create; a bad value is -EINVAL naming the variable):
 *   WEFT_WORKERS, WEFT_MAX_TASKS, WEFT_STACK_SIZE, WEFT_SMALL_STACK_SIZE,
 *   WEFT_STACK_KEEP, WEFT_GUARD_PAGES (0 or 1), WEFT_PIN (0 or 1),
 *   WEFT_HUGE_PAGES (0 or 1), WEFT_BALANCE ("steal" or "mesh"),
 *   WEFT_POLICY ("balanced", "aggressive" or "permissive"), WEFT_FAIRNESS
 *   ("drr", "lottery" or "strict"), WEFT_PREEMPT_ALL (0 or 1),
 *   WEFT_SIGQUIT_DUMP (0 or 1), WEFT_BLOCKING_THREADS, WEFT_TRACE (a
 *   path), WEFT_TRACE_RING (MiB), WEFT_IO ("epoll", "auto" or "uring").
 * Sizes accept a k/K, m/M or g/G suffix. */

/* Fill *cfg with defaults, then apply WEFT_* overrides. Any thread. */
WEFT_API void weft_config_default(weft_config *cfg);

/* Create a runtime and start its workers. cfg NULL = weft_config_default.
 * Errors: -EINVAL (bad field or environment value; weft_last_error() says
 * which), -ENOMEM, -EAGAIN (thread
 * creation failed). Any thread, a task of another runtime included. */
WEFT_API int weft_rt_create(weft_rt **out, const weft_config *cfg);

/* Ask the runtime to stop: from now on weft_spawn returns -ECANCELED,
 * every blocking call of a task of rt that would block returns -ECANCELED
 * (tasks already blocked are woken with it: joins, sleeps, every sync and
 * channel wait), and weft_rt_destroy no longer refuses a runtime with live
 * tasks. Tasks keep running until weft_rt_destroy. Idempotent. Any thread.
 * See docs/decisions/0002-shutdown.md. */
WEFT_API int weft_rt_shutdown(weft_rt *rt);

/* Stop the workers and release everything. -EBUSY while tasks are live
 * (spawned and not yet reaped) and shutdown was not asked. It cancels as
 * weft_rt_shutdown does, runs the tasks until none is inside a blocking
 * call, then stops each worker at its next switch; tasks that are queued
 * or parked then are abandoned: they never run again and their stacks are
 * unmapped with the arena (the runtime leaks nothing; what those tasks
 * held is the caller's). Afterwards no object outside rt (a mutex, event,
 * channel, another runtime's task) refers into it; plain threads and other
 * runtimes' tasks joining an abandoned task get -ECANCELED. A task that
 * never switches keeps its worker, and this call, waiting. -EPERM from a
 * worker thread. Plain threads only. */
WEFT_API int weft_rt_destroy(weft_rt *rt);

typedef void *(*weft_fn)(void *arg);

/* Run main(arg) as a task and block the calling plain thread until it
 * returns; *result (if not NULL) receives its return value. Errors as
 * weft_spawn, and -EPERM from a task. */
WEFT_API int weft_rt_run(weft_rt *rt, weft_fn main, void *arg, void **result);

/* ---- Tasks -------------------------------------------------------------- */

/* A value handle: slot index and generation. A handle to a finished and
 * reaped task is detected as stale (-ESRCH), never confused with a new
 * task in the same slot. The all-zero handle is never valid. */
typedef struct weft_task {
    uint64_t id;
} weft_task;

#define WEFT_TASK_NULL ((weft_task){0})

enum {
    WEFT_PRIO_CRITICAL = 0,
    WEFT_PRIO_HIGH = 4,
    WEFT_PRIO_NORMAL = 8,
    WEFT_PRIO_LOW = 12,
    WEFT_PRIO_MAX = 15
};

/* Stack overflow (docs/decisions/0010-overflow.md). Stacks of a page or
 * more (the default class; the small class when small_stack_size is a
 * page or more) have a guard zone of one page below them, which becomes a
 * guard page at the stack's first use: on Linux 6.13+ a lightweight guard
 * (no memory mapping, so every such stack gets one), on older kernels a
 * PROT_NONE page while the process's mapping budget lasts. A task that
 * overflows a guarded stack faults before it writes anything outside its
 * stack, and the process aborts after one line on stderr: "weft: stack:
 * stack overflow in task '<name>' (slot N, <size>-byte <class> stack,
 * guard page hit ...)". Other stacks are canary-only (guard_pages 0, a
 * small class under a page, or past the budget): an overflow is found
 * at the task's next switch-out if it overwrote the canary, or, if it
 * keeps going, when it runs into the fence page below its class or into
 * another stack's guard page; either way one line names the task and the
 * process aborts, but by then it may have overwritten the stacks below
 * its own (other tasks' frames). weft_stats.canary_only counts such
 * stacks; weft_rt_create says so in weft_last_error when it sets up
 * canary-only stacks. Two overflows at once print one line. The small
 * class's stack includes 128 bytes of task-local values. weft's own
 * signals (SIGURG for preemption and isolation, 3-4 KiB of frame with
 * AVX-512 state) never land on a task's stack: they run on the thread's
 * signal stack, and a preempted task keeps that one while it is switched
 * out. A signal the program itself handles without SA_ONSTACK does land
 * there. The scheduler's next decision when a task parks, yields or ends
 * runs on the task's stack (1.5 KiB and more: due timers and their
 * wake-ups), except for small-class tasks when the small class is under
 * 4 KiB, which leave it to the worker's own stack at the cost of one
 * more switch; the wait itself still runs on the task's stack (a task
 * parked in weft_read needed about 1 KiB). weft's own calls into shared
 * libraries are bound when the program starts (it is built with
 * -fno-plt), however the program is linked. The program's own calls are
 * not: in a program linked with lazy binding (no -z now), a task's first
 * call of a shared-library function runs glibc's resolver on the task's
 * stack, which saves the vector registers there (about 2.5 KiB with
 * AVX-512). Link programs whose tasks call such functions on stacks
 * under 4 KiB with -Wl,-z,now (or run them with LD_BIND_NOW=1), as
 * everything in weft's own build is.
 *
 * Stack classes for weft_spawn_attr.stack. */
#define WEFT_STACK_DEFAULT ((size_t)0)
#define WEFT_STACK_SMALL ((size_t)1)

enum {
    WEFT_DETACHED = 1u << 0,   /* reaped when it ends; cannot be joined */
    WEFT_PREEMPTIBLE = 1u << 1 /* may be preempted (see weft_preempt_*) */
};

typedef struct weft_spawn_attr {
    int priority;     /* 0..15, WEFT_PRIO_NORMAL by default */
    size_t stack;     /* WEFT_STACK_DEFAULT, WEFT_STACK_SMALL, or a size
                           in bytes, which must fit one of the two classes */
    unsigned flags;   /* WEFT_DETACHED | WEFT_PREEMPTIBLE */
    const char *name; /* for dumps and errors; copied (15 chars kept) */
} weft_spawn_attr;

#define WEFT_SPAWN_ATTR_INIT                                                   \
    {                                                                          \
        WEFT_PRIO_NORMAL, WEFT_STACK_DEFAULT, 0, NULL                          \
    }

/* Spawn fn(arg) as a task. rt NULL = the current task's runtime (-EPERM
 * outside a task). out may be NULL only with WEFT_DETACHED. attr NULL =
 * defaults. Never blocks; allocates nothing after weft_rt_create.
 * Errors: -EINVAL (bad attribute, NULL fn, NULL out without DETACHED),
 * -EAGAIN (max_tasks live), -ECANCELED (shutting down), -EPERM.
 * Any thread. */
WEFT_API int weft_spawn(weft_rt *rt, weft_task *out, weft_fn fn, void *arg,
                        const weft_spawn_attr *attr);

/* Wait for t to end and reap it; *result (if not NULL) gets its return
 * value. Parks a task, blocks a plain thread. A task is joined once; t may
 * belong to another runtime than the caller's.
 * Errors: -ESRCH (stale or unknown handle, e.g. already joined and reaped),
 * -EDEADLK (t is the calling task), -EINVAL (t is detached or another
 * joiner has claimed it), -ECANCELED (the calling task's runtime is shut
 * down and t had not ended: t is left detached, reaped when it ends; or
 * t's runtime was destroyed while this call waited for t: a join made
 * after that destroy finds no such runtime, -ESRCH).
 * Any thread. */
WEFT_API int weft_join(weft_task t, void **result);

/* Let t be reaped when it ends. Errors: -ESRCH (stale handle), -EINVAL
 * (already detached or claimed by a joiner). Any thread. */
WEFT_API int weft_detach(weft_task t);

/* Fork-join: run fa(a) and fb(b), possibly in parallel, and return when
 * both have returned; *ra and *rb (each may be NULL) get their results.
 * fa runs on the calling task at once; fb is offered to the other
 * workers, and if nobody has taken it when fa returns, the caller runs
 * it next, as a plain call (so a nest of weft_fork_join calls that
 * nobody steals from costs little more than the recursion: about 220
 * bytes of the caller's stack a level in an optimized build). fb becomes
 * a task of its own when someone else takes it first: another worker,
 * or the caller's own worker while fa is parked, yielding or preempted
 * (so when fa blocks, fb usually runs as a task). Such a task has the
 * caller's priority, stack class and preemptibility (not its
 * weft_preempt_disable count: that is per task), is named "fork", is
 * counted in
 * weft_stats.spawns and .forks_stolen, has no handle, and is gone (its
 * slot free, weft_stats.live down) when the call returns.
 * So fb may run as the caller or as another task: it must not rely on
 * weft_self, task-local values, or the worker it runs on, and fa must
 * not wait for something only fb does (it may run after fa, on the same
 * task: a deadlock). Either may block, yield, be preempted, or call
 * weft_fork_join again. While the caller waits for an fb that runs as a
 * task it is PARKED in "join" (weft_task_info, weft_dump) with no object.
 * The call is not a cancellation point (fa and fb see cancellation in
 * their own blocking calls) and waits for fb even when the calling task
 * is cancelled. On a plain thread fa then fb run on the caller, and
 * nothing is counted. Errors: -EINVAL (fa or fb NULL). Any thread. */
WEFT_API int weft_fork_join(weft_fn fa, void *a, weft_fn fb, void *b, void **ra,
                            void **rb);

/* Run fn(args[i]) for every i < n, possibly in parallel, and return when
 * all have returned; results[i] (results may be NULL) gets each result.
 * As weft_fork_join calls that split [0, n) in halves, the first half
 * run by the caller: the same rules for fn as for fb above, no task made
 * for a call that nobody else takes, log2(n) nested levels, n - 1 forks
 * (weft_stats.forks counts them). The order in which the calls run is
 * not defined. n = 0 does nothing.
 * Errors: -EINVAL (fn NULL, or args NULL with n > 0). Any thread. */
WEFT_API int weft_fork_n(size_t n, weft_fn fn, void *const *args,
                         void **results);

/* Let every other ready task run once, then continue. From a plain thread
 * it is sched_yield(). Any thread. */
WEFT_API void weft_yield(void);

/* The calling task, or WEFT_TASK_NULL outside a task. Any thread. */
WEFT_API weft_task weft_self(void);

/* The runtime of the calling task, or NULL outside a task. Any thread. */
WEFT_API weft_rt *weft_current(void);

/* Task-local storage. Keys are process-wide (WEFT_TLS_KEYS of them); each
 * task starts with every value NULL. A destructor, when given, runs in the
 * task when it ends, for each non-NULL value. -EAGAIN when keys run out,
 * -EINVAL for a bad key, -EPERM outside a task (set only; get returns
 * NULL there). */
#define WEFT_TLS_KEYS 16
typedef unsigned weft_tls_key;
WEFT_API int weft_tls_key_create(weft_tls_key *key, void (*dtor)(void *));
WEFT_API int weft_tls_set(weft_tls_key key, void *value);
WEFT_API void *weft_tls_get(weft_tls_key key);

/* ---- Time ----------------------------------------------------------------
 * Deadlines are absolute times on weft_now_ns()'s clock (CLOCK_MONOTONIC,
 * nanoseconds). Every blocking call below has an _until variant taking
 * one; it returns -ETIMEDOUT once the deadline has passed without the
 * wait being satisfied (a deadline already in the past still tries once
 * without blocking). WEFT_NO_DEADLINE means none. A timed-out call has no
 * effect. */
#define WEFT_NO_DEADLINE UINT64_MAX

/* Monotonic time in nanoseconds. Any thread, async-signal-safe. */
WEFT_API uint64_t weft_now_ns(void);

/* Sleep for ns nanoseconds / until a deadline. A task parks on a timer of
 * its worker; a plain thread sleeps in the kernel. Returns 0, or in a task
 * -ECANCELED when its runtime is shut down (weft_rt_shutdown). Any
 * thread. */
WEFT_API int weft_sleep_ns(uint64_t ns);
WEFT_API int weft_sleep_until(uint64_t deadline_ns);

/* ---- Synchronisation -----------------------------------------------------
 * Mutexes, condition variables, semaphores, wait groups and events. In a
 * task every wait parks the task, never its worker; on a plain thread it
 * blocks the thread (futex). A primitive may be shared by tasks of several
 * runtimes and plain threads at once. Waiters queue in FIFO order; the
 * record of a waiter lives on its own stack, so no wait allocates.
 *
 * Each type is plain memory: the _INIT macro or the _init call (never
 * fails) makes a usable object, and _destroy marks it dead. A destroyed
 * object is detected by every later call (-EINVAL) until its memory is
 * reused; _destroy refuses (-EBUSY) an object that is held or has waiters.
 * The fields are private.
 *
 * Errors common to all: -EINVAL (NULL or destroyed object), -ETIMEDOUT
 * (_until calls), -ECANCELED (a task whose runtime is shut down, when the
 * call would block: weft_rt_shutdown; a cancelled cond wait still returns
 * with its mutex held). */

typedef struct weft_wlist_ {
    void *head_;
} weft_wlist_;
typedef struct weft_waitq {
    uint32_t lock_;
    uint32_t pad_;
    weft_wlist_ list_;
} weft_waitq;
#define WEFT_WAITQ_INIT_                                                       \
    {                                                                          \
        0, 0,                                                                  \
        {                                                                      \
            NULL                                                               \
        }                                                                      \
    }

/* Mutex. Not recursive, not owner-checked beyond "is it locked".
 * Policy (documented in docs/sync.md): lock is one CAS when free. A
 * contended locker spins briefly, then queues FIFO and parks. Unlock wakes
 * the first waiter, which competes with newcomers (no convoy: a running
 * task can re-take a lock it just released without a switch). A waiter
 * that has waited over 1 ms switches the mutex to handoff mode: unlock
 * then passes ownership directly to the first waiter and newcomers queue
 * behind it (no starvation), until the queue empties or a waiter is served
 * within 1 ms. */
typedef struct weft_mutex {
    uint32_t state_;
    uint32_t pad_;
    weft_waitq q_;
} weft_mutex;
#define WEFT_MUTEX_INIT                                                        \
    {                                                                          \
        0, 0, WEFT_WAITQ_INIT_                                                 \
    }

WEFT_API int weft_mutex_init(weft_mutex *m);
/* -EBUSY while locked or waited on. */
WEFT_API int weft_mutex_destroy(weft_mutex *m);
WEFT_API int weft_mutex_lock(weft_mutex *m);
WEFT_API int weft_mutex_lock_until(weft_mutex *m, uint64_t deadline_ns);
/* -EBUSY when held. */
WEFT_API int weft_mutex_try_lock(weft_mutex *m);
WEFT_API int weft_mutex_trylock(weft_mutex *m)
    WEFT_DEPRECATED("use weft_mutex_try_lock");
/* -EPERM when not locked. Any thread may unlock (as with a semaphore). */
WEFT_API int weft_mutex_unlock(weft_mutex *m);

/* Condition variable, used with a weft_mutex the caller holds. Waiters
 * are woken in FIFO order. weft_cond_wait never returns without a signal,
 * a broadcast or (for _until) its deadline: weft adds no spurious wake-ups
 * of its own. Callers should still loop on their predicate, because
 * another locker may change it between the signal and the wake-up. A
 * signal or broadcast wakes only waiters already queued when it is called.
 * The mutex is re-acquired before every return, -ETIMEDOUT included; a
 * waiter that was signalled as its deadline passed returns 0 (the signal
 * is never lost). */
typedef struct weft_cond {
    uint32_t state_;
    uint32_t pad_;
    weft_waitq q_;
} weft_cond;
#define WEFT_COND_INIT                                                         \
    {                                                                          \
        0, 0, WEFT_WAITQ_INIT_                                                 \
    }

WEFT_API int weft_cond_init(weft_cond *c);
WEFT_API int weft_cond_destroy(weft_cond *c); /* -EBUSY with waiters */
WEFT_API int weft_cond_wait(weft_cond *c, weft_mutex *m);
WEFT_API int weft_cond_wait_until(weft_cond *c, weft_mutex *m,
                                  uint64_t deadline_ns);
WEFT_API int weft_cond_signal(weft_cond *c);
WEFT_API int weft_cond_broadcast(weft_cond *c);

/* Counting semaphore. post hands its unit straight to the first waiter
 * when there is one (FIFO, no barging past a queued waiter). */
typedef struct weft_sem {
    uint64_t state_;
    weft_waitq q_;
} weft_sem;
#define WEFT_SEM_INIT(value)                                                   \
    {                                                                          \
        (uint64_t)(value) << 2, WEFT_WAITQ_INIT_                               \
    }
#define WEFT_SEM_MAX ((uint64_t)1 << 60)

/* -EINVAL when value > WEFT_SEM_MAX. */
WEFT_API int weft_sem_init(weft_sem *s, uint64_t value);
WEFT_API int weft_sem_destroy(weft_sem *s); /* -EBUSY with waiters */
WEFT_API int weft_sem_wait(weft_sem *s);
WEFT_API int weft_sem_wait_until(weft_sem *s, uint64_t deadline_ns);
WEFT_API int weft_sem_try_wait(weft_sem *s); /* -EAGAIN when zero */
WEFT_API int weft_sem_trywait(weft_sem *s)
    WEFT_DEPRECATED("use weft_sem_try_wait");
/* -EOVERFLOW when the count would pass WEFT_SEM_MAX. */
WEFT_API int weft_sem_post(weft_sem *s);
WEFT_API uint64_t weft_sem_value(const weft_sem *s);

/* Wait group: a counter; wait blocks until it is zero. add(n) with a
 * negative n that would take it below zero is -EINVAL and changes
 * nothing. */
typedef struct weft_wg {
    int64_t count_;
    uint32_t state_;
    uint32_t pad_;
    weft_waitq q_;
} weft_wg;
#define WEFT_WG_INIT                                                           \
    {                                                                          \
        0, 0, 0, WEFT_WAITQ_INIT_                                              \
    }

WEFT_API int weft_wg_init(weft_wg *g);
WEFT_API int weft_wg_destroy(weft_wg *g); /* -EBUSY with waiters */
WEFT_API int weft_wg_add(weft_wg *g, int64_t n);
WEFT_API int weft_wg_done(weft_wg *g); /* weft_wg_add(g, -1) */
WEFT_API int weft_wg_wait(weft_wg *g);
WEFT_API int weft_wg_wait_until(weft_wg *g, uint64_t deadline_ns);

/* Event: a flag that waiters wait for. set wakes every waiter and lets
 * later waits through until reset. weft_event_set is callable from any
 * thread, including threads the runtime does not know, and from a signal
 * handler (it is async-signal-safe: it takes no lock a handler could
 * interrupt, see docs/sync.md). */
typedef struct weft_event {
    uint32_t state_;
    uint32_t pad_;
    weft_waitq q_;
} weft_event;
#define WEFT_EVENT_INIT                                                        \
    {                                                                          \
        0, 0, WEFT_WAITQ_INIT_                                                 \
    }

WEFT_API int weft_event_init(weft_event *e);
WEFT_API int weft_event_destroy(weft_event *e); /* -EBUSY with waiters */
WEFT_API int weft_event_set(weft_event *e);
WEFT_API int weft_event_reset(weft_event *e);
WEFT_API int weft_event_is_set(const weft_event *e);
WEFT_API int weft_event_wait(weft_event *e);
WEFT_API int weft_event_wait_until(weft_event *e, uint64_t deadline_ns);

/* ---- Channels ------------------------------------------------------------
 * A channel carries elements of a fixed size, copied in and out. Capacity
 * 0 is a rendezvous: a send completes only when a receiver takes the
 * element. Elements from one sender arrive in the order sent; blocked
 * senders and receivers are served FIFO.
 *
 * Close: later sends fail with -EPIPE, and so do senders blocked at the
 * time; receivers (blocked or later) drain what is buffered, then get
 * -EPIPE. A second close is -EPIPE.
 *
 * Errors: -EINVAL (NULL channel or element, destroyed channel in builds
 * with WEFT_DEBUG), -EPIPE (closed), -EAGAIN (try_ calls that would
 * block), -ETIMEDOUT (_until calls), -ECANCELED (as for the primitives
 * above). Any thread; blocking calls park a
 * task or block a plain thread. */
typedef struct weft_chan weft_chan;

/* elem_size 1..65536; capacity 0..2^31. Allocates the channel and its
 * buffer once. -EINVAL for a bad size, -ENOMEM. */
WEFT_API int weft_chan_create(weft_chan **out, size_t elem_size,
                              size_t capacity);
/* -EBUSY while tasks or threads are blocked on it (close it first and let
 * them return). Buffered elements are dropped. */
WEFT_API int weft_chan_destroy(weft_chan *ch);
WEFT_API int weft_chan_close(weft_chan *ch);
WEFT_API int weft_chan_send(weft_chan *ch, const void *elem);
WEFT_API int weft_chan_send_until(weft_chan *ch, const void *elem,
                                  uint64_t deadline_ns);
WEFT_API int weft_chan_try_send(weft_chan *ch, const void *elem);
WEFT_API int weft_chan_recv(weft_chan *ch, void *elem);
WEFT_API int weft_chan_recv_until(weft_chan *ch, void *elem,
                                  uint64_t deadline_ns);
WEFT_API int weft_chan_try_recv(weft_chan *ch, void *elem);
WEFT_API size_t weft_chan_len(const weft_chan *ch); /* buffered now */
WEFT_API size_t weft_chan_cap(const weft_chan *ch);

/* Select: complete exactly one of several channel operations. */
enum { WEFT_SEL_SEND = 1, WEFT_SEL_RECV = 2 };
typedef struct weft_sel_case {
    weft_chan *chan; /* NULL: the case is never ready (ignored) */
    int op;          /* WEFT_SEL_SEND or WEFT_SEL_RECV */
    void *elem;      /* element to send, or where to receive */
    int result;      /* out, for the chosen case: 0, or -EPIPE when it
                        completed because the channel is closed */
} weft_sel_case;

/* Wait until one case can complete, complete it, and return its index
 * (its .result says how). Among cases ready at once the choice is
 * uniformly random. n is at most 64. Errors: -EINVAL (bad case, n 0 or
 * over 64, all channels NULL for the blocking form), -ETIMEDOUT (_until),
 * -EAGAIN (try_: none ready). */
WEFT_API int weft_select(weft_sel_case *cases, size_t n);
WEFT_API int weft_select_until(weft_sel_case *cases, size_t n,
                               uint64_t deadline_ns);
WEFT_API int weft_try_select(weft_sel_case *cases, size_t n);

/* ---- Topology ----------------------------------------------------------
 * What weft found out about the machine, restricted to the CPUs the process
 * may run on (its affinity mask): logical CPUs, the physical cores they are
 * SMT threads of, the L3 groups (CPUs sharing one last-level cache: an AMD
 * CCX, an Intel socket), the NUMA nodes and the distances between them.
 * Read from hwloc when the library was built with it, else from sysfs;
 * what a source does not say is filled in as one group (one L3 group, one
 * node, distance 10).
 *
 * Cores, L3 groups, nodes and packages are numbered densely from 0, in the
 * order of their lowest allowed CPU. At most WEFT_TOPO_MAX_CPUS CPUs (OS numbers
 * 0..1023) and WEFT_TOPO_MAX_NODES nodes (OS numbers 0..63) are described;
 * CPUs numbered above are left out, and a machine with a node numbered
 * above is described as one node. */

#define WEFT_TOPO_MAX_CPUS 1024
#define WEFT_TOPO_MAX_NODES 64

typedef struct weft_cpu {
    unsigned os;      /* OS CPU number, as for sched_setaffinity */
    unsigned core;    /* physical core, 0..ncores-1 */
    unsigned smt;     /* rank among its core's allowed SMT threads, 0.. */
    unsigned l3;      /* L3 group, 0..nl3-1 */
    unsigned node;    /* NUMA node, 0..nnodes-1 */
    unsigned package; /* socket, 0..npackages-1 */
} weft_cpu;

typedef struct weft_topology {
    unsigned ncpus, ncores, nl3, nnodes, npackages; /* each >= 1 (0 only
                                                       if no allowed CPU is
                                                       below 1024) */
    const weft_cpu *cpus;      /* [ncpus], ascending OS number */
    const unsigned *node_os;   /* [nnodes]: each node's OS number (for
                                  mbind, numactl) */
    const uint8_t *distance;   /* [nnodes * nnodes], row-major: relative
                                  memory latency from node i to node j
                                  (ACPI SLIT: 10 = local; 20 when the
                                  source gives none) */
    const unsigned *pin_order; /* [ncpus]: with cfg.pin, worker w runs on
                                  cpus[pin_order[w % ncpus]]: one L3 group
                                  (nodes in order) filled before the next,
                                  one thread per core before SMT siblings */
    const char *source;        /* "hwloc" or "sysfs" */
    unsigned wait_hints;       /* WEFT_HINT_* the CPU offers user mode,
                                  detected at run time (CPUID, AT_HWCAP);
                                  the idle path uses none of them
                                  (docs/decisions/0006-wait-hints.md) */
} weft_topology;

/* weft_topology.wait_hints. */
enum {
    WEFT_HINT_WAITPKG = 1u << 0,  /* x86 umonitor/umwait/tpause (CPUID
                                     leaf 7, ECX bit 5) */
    WEFT_HINT_MONITORX = 1u << 1, /* AMD monitorx/mwaitx (CPUID
                                     0x80000001, ECX bit 29) */
    WEFT_HINT_WFE = 1u << 2,      /* aarch64 wfe/sev: architectural */
    WEFT_HINT_WFXT = 1u << 3      /* aarch64 wfet with a deadline
                                     (AT_HWCAP2 HWCAP2_WFXT) */
};

/* Point *out at the process's topology: found at the first call (or the
 * first weft_rt_create), from the affinity mask of that moment, then fixed
 * and valid for the life of the process. The first call reads sysfs or
 * runs hwloc (which allocates): make it from a plain thread or before a
 * runtime exists; weft_rt_create makes it, so a task's call never does.
 * -EINVAL when out is NULL. Never blocks after the first call. Any
 * thread. */
WEFT_API int weft_topology_get(const weft_topology **out);

/* ---- Observation (docs/observe.md) ------------------------------------- */

typedef struct weft_stats {
    uint64_t spawns;          /* tasks spawned */
    uint64_t finishes;        /* tasks that returned */
    uint64_t live;            /* slots in use (spawned, not reaped) */
    uint64_t switches;        /* context switches into tasks */
    uint64_t yields;          /* weft_yield calls that switched */
    uint64_t parks;           /* times a task parked */
    uint64_t steals;          /* tasks taken from another worker's deque */
    uint64_t steal_attempts;  /* victims looked at */
    uint64_t inlined;         /* joins that ran a not-yet-started child on
                                 the joiner's own stack */
    uint64_t forks;           /* weft_fork_join calls from tasks (and the
                                 n - 1 of each weft_fork_n) */
    uint64_t forks_stolen;    /* their fb that ran as a task of its own */
    uint64_t stacks_resident; /* stacks that may hold resident memory:
                                 touched and not given back (a small class
                                 under a page is never given back: its
                                 stacks share pages) */
    uint64_t stacks_released; /* stacks given back to the OS with madvise
                                 (every page of each, guard zone included) */
    uint64_t guarded_stacks;  /* stacks (both classes) protected by a guard
                                 page: an overflow faults at once */
    uint64_t canary_stacks;   /* stacks that wanted a guard page and got a
                                 canary only because the mapping budget ran
                                 out (guard_kind WEFT_GUARD_MPROTECT) */
    uint64_t guard_budget;    /* PROT_NONE guard pages the map-count budget
                                 still allows (spent only by
                                 WEFT_GUARD_MPROTECT guards) */
    uint64_t canary_only;     /* stacks handed out with a canary only, for
                                 any reason (guard_pages 0, a small class
                                 under a page, the budget): see "Stack
                                 overflow" above for what that promises */
    uint64_t guard_kind;      /* WEFT_GUARD_* below: how this process
                                 installs guard pages */
    uint64_t deflected;       /* mesh mode: tasks pushed to a neighbour */
    uint64_t mail_chunks;     /* mesh mode: mailbox chunks received */
    uint64_t huge_pages;      /* how the arena's metadata is backed:
                                 WEFT_HUGE_* below */
    /* Budgets and preemption (weft_policy). */
    uint64_t polls;       /* runs of a task between two switches */
    uint64_t wakes;       /* parked tasks made runnable */
    uint64_t slow_polls;  /* polls over slow_poll_ns */
    uint64_t violations;  /* polls over their budget */
    uint64_t preemptions; /* tasks switched out by the preemption signal */
    uint64_t isolations;  /* workers handed to a spare thread because
                             their task held them (weft_policy: the
                             Isolate tier) */
    uint64_t busy_ns;     /* worker time spent running tasks or looking
                             for them */
    uint64_t idle_ns;     /* worker time asleep */
    uint64_t workers;     /* worker threads (per-worker figures:
                             weft_stats_worker) */
    /* Descriptors (weft.h, "File descriptors"). */
    uint64_t io_waits;          /* times a task parked on a descriptor */
    uint64_t io_events;         /* readiness events the poller handled */
    uint64_t io_polls;          /* polls without blocking (busy workers,
                                   the monitor) */
    uint64_t io_blocking_polls; /* polls an idle worker blocked in */
    uint64_t blocking_calls;    /* weft_block_on calls run for tasks */
    uint64_t blocking_threads;  /* the blocking pool's threads now */
    uint64_t io_backend;        /* WEFT_IO_EPOLL or WEFT_IO_URING: what
                                   cfg.io chose at weft_rt_create */
    uint64_t io_fallback;       /* WEFT_IO_FB_* below: why the io_uring
                                   backend is not (or not everywhere) in
                                   use although cfg.io asked for it; 0 */
    uint64_t io_fallback_errno; /* the errno of that failure, 0 if none */
    uint64_t io_uring_ops;      /* operations the io_uring backend made */
} weft_stats;

/* weft_stats.io_fallback. */
enum {
    WEFT_IO_FB_NONE = 0,
    WEFT_IO_FB_NOT_BUILT = 1, /* built without liburing */
    WEFT_IO_FB_SETUP = 2,     /* io_uring_setup(2) failed (io_fallback_errno:
                                 ENOSYS no io_uring, EPERM a seccomp profile
                                 or kernel.io_uring_disabled, ENOMEM
                                 RLIMIT_MEMLOCK on old kernels) */
    WEFT_IO_FB_KERNEL = 3,    /* the kernel lacks an operation the backend
                                 needs (IORING_OP_FUTEX_WAIT: Linux 6.7) */
    WEFT_IO_FB_RING = 4       /* the backend is in use, but some worker's
                                 ring could not be made: that worker's
                                 calls went to the poller */
};

/* One worker's share of the counters of weft_stats (the fields that are
 * per worker; the others are 0). */
typedef weft_stats weft_worker_stats;

/* weft_stats.guard_kind. */
enum {
    WEFT_GUARD_LIGHT = 1,   /* MADV_GUARD_INSTALL (Linux 6.13+): no memory
                               mapping per guard, so every stack that can
                               have one gets one; no budget */
    WEFT_GUARD_MPROTECT = 2 /* PROT_NONE pages (older kernels): two
                               mappings each, within guard_budget */
};

/* weft_stats.huge_pages. */
enum {
    WEFT_HUGE_NONE = 0,    /* normal pages (the kernel refused the advice) */
    WEFT_HUGE_HUGETLB = 1, /* reserved huge pages (cfg.huge_pages = 1 and
                              the system had enough) */
    WEFT_HUGE_THP = 2      /* normal pages with MADV_HUGEPAGE accepted: the
                              kernel's transparent-huge-page mode decides
                              whether huge pages back them */
};

/* Snapshot of the counters; relaxed, may be slightly stale while tasks run.
 * Any thread. */
WEFT_API int weft_stats_get(weft_rt *rt, weft_stats *out);

/* The counters of worker i (0..workers-1). -EINVAL for a bad index. Any
 * thread. */
WEFT_API int weft_stats_worker(weft_rt *rt, unsigned i, weft_worker_stats *out);

/* Start the counters over: later snapshots count from now (live,
 * stacks_* and the other gauges are not counters and are kept). Any
 * thread. */
WEFT_API int weft_stats_reset(weft_rt *rt);

/* Task states as weft_task_info reports them. */
enum {
    WEFT_STATE_RUNNABLE = 1, /* queued, waiting for a worker */
    WEFT_STATE_RUNNING = 2,  /* on a worker now */
    WEFT_STATE_PARKED = 3,   /* blocked: see wait */
    WEFT_STATE_DONE = 4      /* returned, not yet joined */
};

typedef struct weft_task_info {
    int state;            /* WEFT_STATE_* */
    int priority;         /* 0..15 */
    int tier;             /* WEFT_TIER_* */
    unsigned flags;       /* WEFT_DETACHED | WEFT_PREEMPTIBLE */
    int worker;           /* the worker running it, or -1 */
    uint64_t cpu_ns;      /* CPU time in its polls so far */
    uint64_t polls;       /* its polls so far */
    uint64_t violations;  /* its polls over budget */
    const char *wait;     /* what it is parked on ("mutex", "chan recv",
                            "sleep", "join", ...), "" when not parked */
    const void *wait_obj; /* the object it waits on, or NULL */
    char name[16];        /* as given at spawn, "" if none */
} weft_task_info;

/* A snapshot of task t; racy by nature (the task keeps running). -ESRCH
 * for a stale handle. Any thread. */
WEFT_API int weft_task_info_get(weft_task t, weft_task_info *out);

/* ---- Execution trace (docs/trace.md) -----------------------------------
 * Which task ran on which worker when, parks with their reason, wakes
 * (waker -> woken), steals, preemptions, workers' sleeps, spawns and
 * ends, recorded per worker without locks into rings sized by
 * cfg.trace_ring_mb, written as Chrome trace-event JSON (Perfetto,
 * chrome://tracing, speedscope). cfg.trace / WEFT_TRACE=path records from
 * weft_rt_create on.
 * weft_trace_start: 0, -EALREADY (recording), -ENOMEM. Any thread.
 * weft_trace_stop: stop recording; with cfg.trace, write the file (0,
 *   -errno of the write); -ENOENT when not recording. Any thread.
 * weft_trace_dump: write what the rings hold now (recording or stopped)
 *   to f; 0, -ENOENT (never traced), -EIO, -ENOMEM. Any thread; not from
 *   a task of rt while it records (its own events would be cut). */
WEFT_API int weft_trace_start(weft_rt *rt);
WEFT_API int weft_trace_stop(weft_rt *rt);
WEFT_API int weft_trace_dump(weft_rt *rt, FILE *f);

/* Write every worker (what it runs, its counters) and every live task
 * (state, priority, tier, CPU time, where it is parked) to f, one line
 * each. Reads only; takes no lock that tasks take. Any thread. */
WEFT_API int weft_dump(weft_rt *rt, FILE *f);

/* ---- Priorities, fairness, budgets, preemption (docs/policy.md) ---------
 * Priority 0..15 (WEFT_PRIO_*, 0 most urgent) is set at spawn. Run queues
 * are banded: band = priority / 4 (critical, high, normal, low). Between
 * bands the policy's fairness rule decides which band runs next:
 *   WEFT_FAIR_DRR      deficit round robin (default): each band earns
 *                      band_weight[b] units of CPU time per round;
 *   WEFT_FAIR_LOTTERY  each decision draws a band with band_weight[b]
 *                      tickets (per-worker PRNG);
 *   WEFT_FAIR_STRICT   the most urgent non-empty band always runs first.
 * Under DRR and lottery every band with work makes progress.
 *
 * Budgets. Each poll (one run of a task between two switches; a weft_yield
 * that finds nothing else to run also ends one) is timed and
 * the task's CPU time accumulated. A poll longer than the task's budget
 * (quantum_ns x band_budget_pct[band] / 100) is a violation; a poll longer
 * than slow_poll_ns is slow; one shorter than good_poll_ns is good.
 *
 * Intervention tiers, per task, each a superset of the one before:
 *   MONITOR  counted in the stats;
 *   WARN     the warn callback is called once per escalation;
 *   YIELD    the task is asked to yield at its next cooperative point, and
 *            a preemptible task is preempted when its poll overruns;
 *   ISOLATE  the task's worker role is handed to a spare thread so that it
 *            cannot starve the other tasks; it comes back after behaving.
 *            The request is a signal (SIGURG) to the task's thread: a
 *            system call the kernel does not restart after a handler
 *            (nanosleep, poll, ...; signal(7)) may return EINTR, once.
 * tier[t] holds the rules for leaving tier t: promotion to t+1 when any
 * promotion threshold is reached (a zero threshold never fires), demotion
 * to t-1 at the end of a good poll when every demotion threshold is met.
 * Promotion thresholds are multiplied per band by band_threshold_pct[band]
 * / 100 (rounded up); demotion thresholds are not. */

enum { WEFT_FAIR_DRR = 0, WEFT_FAIR_LOTTERY = 1, WEFT_FAIR_STRICT = 2 };

enum {
    WEFT_TIER_MONITOR = 0,
    WEFT_TIER_WARN = 1,
    WEFT_TIER_YIELD = 2,
    WEFT_TIER_ISOLATE = 3,
    WEFT_TIERS = 4
};

#define WEFT_BANDS 4

typedef struct weft_tier_rule {
    /* Promotion to the next tier: when any one is reached, counted since
     * the task entered this tier (0 = this criterion never promotes). */
    uint32_t promote_violations; /* polls over budget */
    uint32_t promote_cpu_ms;     /* CPU time spent beyond the budget */
    uint32_t promote_slow_polls; /* polls over slow_poll_ns */
    /* Demotion to the tier before: when all are met (unused for tier 0). */
    uint32_t demote_good_polls; /* consecutive good polls */
    uint64_t demote_min_ns;     /* at least this long at this tier */
} weft_tier_rule;

typedef struct weft_policy {
    int fairness;                            /* WEFT_FAIR_* */
    uint64_t quantum_ns;                     /* budget of a normal-band
                                                poll (10 ms) */
    uint64_t latency_ns;                     /* preempt a preemptible task
                                                when runnable work on its
                                                worker has waited this long
                                                (2 ms; 0 = never) */
    uint64_t slow_poll_ns;                   /* a poll over this is slow */
    uint64_t good_poll_ns;                   /* a poll under this is good */
    uint32_t band_weight[WEFT_BANDS];        /* DRR shares / lottery
                                                tickets: 8, 4, 2, 1 */
    uint32_t band_budget_pct[WEFT_BANDS];    /* budget multiplier, percent:
                                                400, 200, 100, 50 */
    uint32_t band_threshold_pct[WEFT_BANDS]; /* threshold multiplier,
                                                percent: 400, 200, 100, 50 */
    weft_tier_rule tier[WEFT_TIERS];         /* [t]: leaving tier t; the
                                                promotion fields of the last
                                                tier must be 0 */
} weft_policy;

enum {
    WEFT_POLICY_BALANCED = 0, /* the default */
    WEFT_POLICY_AGGRESSIVE = 1,
    WEFT_POLICY_PERMISSIVE = 2
};

/* Fill *out with a preset. -EINVAL for an unknown preset or NULL. Any
 * thread. */
WEFT_API int weft_policy_preset(weft_policy *out, int preset);

/* The runtime's policy now. Any thread. */
WEFT_API int weft_policy_get(weft_rt *rt, weft_policy *out);

/* Validate *p and make it the runtime's policy; it applies from the next
 * scheduling decision and the next monitor tick. -EINVAL (nothing
 * changed) for a NULL argument, an unknown fairness rule, a zero
 * quantum, a weight or multiplier of 0 or over 10000, good_poll_ns over
 * slow_poll_ns or slow_poll_ns over quantum_ns, promotion thresholds that
 * fall as tiers rise (non-monotone), promotion thresholds on the last
 * tier, or another value out of its range (docs/policy.md: quantum 100 us
 * ..10 s, latency up to 10 s, slow_poll_ns not 0, counts up to 65535, CPU
 * up to 1 h, time at a tier up to 1 h); weft_last_error() says which. Any
 * thread. */
WEFT_API int weft_policy_set(weft_rt *rt, const weft_policy *p);

/* Called (on the monitor thread) once each time a task reaches the WARN
 * tier or above: its handle, its name ("" if none) and how long its
 * current or last poll has run. The default callback writes one line to
 * stderr. It must not block. NULL restores the default. Any thread. */
typedef void (*weft_warn_fn)(void *arg, weft_task t, const char *name,
                             uint64_t poll_ns);
WEFT_API int weft_set_warn_callback(weft_rt *rt, weft_warn_fn fn, void *arg);

/* Preemption. A task spawned WEFT_PREEMPTIBLE (or any task, with
 * cfg.preempt_all) that overruns its budget, or keeps runnable work on
 * its worker waiting longer than latency_ns, is switched out by a signal
 * (SIGURG) when the interrupted instruction is safe: in the program's own
 * code (never libc, the loader, other shared libraries or weft itself)
 * and outside a weft_preempt_disable() section, and never inside a
 * signal handler of the program's that runs on a signal stack
 * (SA_ONSTACK: weft installs one on every worker thread); install
 * handlers that may run long on a worker thread that way, since one on
 * the task's stack cannot be told from the task's own code, and the
 * code it interrupted may be weft's. Elsewhere it is asked to
 * yield at its next weft call. It resumes exactly where it was, possibly
 * on another worker thread, with its registers (vector registers too)
 * and signal mask intact. What a preemptible task must not hold across a
 * preemption point, i.e. anywhere outside a disable section: a
 * thread-affine lock (pthread mutexes, flockfile), the address of a
 * _Thread_local variable or pthread_self(): they belong to the worker
 * thread, which may change. Sections nest; they are per task. Task only
 * (no effect elsewhere). */
WEFT_API void weft_preempt_disable(void);
WEFT_API void weft_preempt_enable(void);

/* ---- File descriptors -----------------------------------------------------
 * Sockets, pipes and other pollable descriptors, read and written as
 * blocking calls that park only the calling task: the call is tried at
 * once and, when the descriptor is not ready (EAGAIN), the task parks
 * until the runtime's poller sees it ready, its deadline passes
 * (-ETIMEDOUT), the descriptor is closed with weft_close (-ECANCELED) or
 * its runtime is shut down (-ECANCELED). On a plain thread each call
 * blocks the thread, with the same deadline: a call with a deadline sets
 * O_NONBLOCK on the descriptor (as a task's first call does), so that
 * the call itself cannot block past it, and waits with poll(2).
 * Return values are those of the system call (a count, 0 at end of
 * file) or -errno; partial reads and writes are the caller's to loop on,
 * except in weft_write_all. Writes and sends never raise SIGPIPE, on
 * sockets or pipes (they fail with -EPIPE). Any thread.
 *
 * A descriptor comes under weft at its first use from a task: weft sets
 * O_NONBLOCK on it (for every user of the open file description) and,
 * at its first EAGAIN, registers it with the task's runtime's poller
 * (edge-triggered, tagged with a generation). Regular files are always
 * ready and never park on the poller: the call runs on the worker (use
 * weft_block_on for slow ones, or the io_uring backend below). Close a
 * descriptor that tasks have used with weft_close: it wakes every task parked on it with -ECANCELED, forgets the
 * registration in every runtime, then closes: at once when no weft call
 * on the number is in flight, else when the last one leaves (so the
 * number is never reused under a running call). A plain thread blocked
 * in a weft call on it is not woken: the descriptor stays open until
 * that call returns. A plain close() leaves
 * tasks parked on the number until their deadline or shutdown, and a
 * new file that reuses the number keeps O_NONBLOCK unset until
 * weft_fd_forget(fd) or weft_close.
 *
 * cfg.io WEFT_IO_URING or WEFT_IO_AUTO (WEFT_IO=uring|auto; "I/O
 * backends" above) sends a task's weft_read, weft_recv, weft_write,
 * weft_send and weft_write_all on a stream socket, and its weft_read,
 * weft_write, weft_pread and weft_pwrite on a regular file, through an
 * io_uring per worker instead (Linux 6.7+, built with liburing; a worker whose
 * ring cannot be made leaves its calls to the poller, and says so in
 * weft_stats.io_fallback): the call is queued in the worker's ring and
 * the task parks until it completes, with the same results, deadlines,
 * weft_close and shutdown as above (docs/decisions/0015-io-uring.md).
 * A task's weft_accept of a listening stream socket (flags SOCK_NONBLOCK
 * and SOCK_CLOEXEC only) takes connections that a multishot accept in a
 * worker's ring accepted: up to 64 (plus one reap's arrivals) may be
 * accepted ahead of the calls, and the peer's address is the new
 * socket's getpeername(2). The ring then holds the listening socket
 * open until weft_close or weft_fd_forget of it (or the runtime's
 * destroy): close(2) alone frees the number, not the socket. Those two
 * cancel the multishot and return once the ring has let the socket go
 * (its worker's next reap; they wait at most 1 s), so that a connect
 * after weft_close is refused as after close(2).
 * Everything else is the poller's. */
WEFT_API ssize_t weft_read(int fd, void *buf, size_t n);
WEFT_API ssize_t weft_read_until(int fd, void *buf, size_t n,
                                 uint64_t deadline_ns);
WEFT_API ssize_t weft_write(int fd, const void *buf, size_t n);
WEFT_API ssize_t weft_write_until(int fd, const void *buf, size_t n,
                                  uint64_t deadline_ns);
/* Writes all n bytes (looping over partial writes): n, or -errno with
 * *done (when not NULL) set to what was written before the error. */
WEFT_API ssize_t weft_write_all(int fd, const void *buf, size_t n,
                                size_t *done);
WEFT_API ssize_t weft_recv(int fd, void *buf, size_t n, int flags);
WEFT_API ssize_t weft_recv_until(int fd, void *buf, size_t n, int flags,
                                 uint64_t deadline_ns);
WEFT_API ssize_t weft_send(int fd, const void *buf, size_t n, int flags);
WEFT_API ssize_t weft_send_until(int fd, const void *buf, size_t n, int flags,
                                 uint64_t deadline_ns);
/* pread(2) and pwrite(2): at offset off (>= 0, else -EINVAL), the file
 * position untouched. A regular file goes through the io_uring backend
 * when it is in use (the task parks until the read or write completes:
 * a read that misses the page cache stops only the task); otherwise the
 * call runs on the calling thread, as weft_read does on a regular file.
 * On a pipe or a socket: -ESPIPE, as the system says. Any thread. */
WEFT_API ssize_t weft_pread(int fd, void *buf, size_t n, off_t off);
WEFT_API ssize_t weft_pread_until(int fd, void *buf, size_t n, off_t off,
                                  uint64_t deadline_ns);
WEFT_API ssize_t weft_pwrite(int fd, const void *buf, size_t n, off_t off);
WEFT_API ssize_t weft_pwrite_until(int fd, const void *buf, size_t n, off_t off,
                                   uint64_t deadline_ns);
/* Run fn(arg) on a thread of the runtime's blocking pool while the
 * calling task parks, and store its return value in *result (when not
 * NULL): for code that blocks its thread (regular-file I/O, getaddrinfo,
 * a library's blocking calls), which would otherwise stop a worker. The
 * pool's threads start on demand up to cfg.blocking_threads
 * (WEFT_BLOCKING_THREADS, default 512), retire after 10 s idle, and
 * block every signal; past the cap calls queue in FIFO order. fn may not
 * call weft's task-only functions (it runs on a plain thread; weft's
 * calls that work on plain threads are fine). 0, or -EINVAL (fn NULL),
 * -ENOMEM, -EAGAIN (no thread could be started), -ECANCELED (the
 * runtime was shut down before a thread took the call; a call that has
 * begun always runs to its end and its result is returned, since fn
 * may use the caller's stack). No deadline variant, for the same
 * reason: a running call cannot be left. weft_rt_destroy waits for
 * running calls. On a plain thread, fn runs at once on that thread.
 * Any thread. */
WEFT_API int weft_block_on(weft_fn fn, void *arg, void **result);

/* The vector, address and message forms, as readv(2), writev(2),
 * recvfrom(2), sendto(2), recvmsg(2) and sendmsg(2). */
struct iovec;
struct msghdr;
WEFT_API ssize_t weft_readv(int fd, const struct iovec *iov, int cnt);
WEFT_API ssize_t weft_readv_until(int fd, const struct iovec *iov, int cnt,
                                  uint64_t deadline_ns);
WEFT_API ssize_t weft_writev(int fd, const struct iovec *iov, int cnt);
WEFT_API ssize_t weft_writev_until(int fd, const struct iovec *iov, int cnt,
                                   uint64_t deadline_ns);
WEFT_API ssize_t weft_recvfrom(int fd, void *buf, size_t n, int flags,
                               struct sockaddr *addr, socklen_t *len);
WEFT_API ssize_t weft_recvfrom_until(int fd, void *buf, size_t n, int flags,
                                     struct sockaddr *addr, socklen_t *len,
                                     uint64_t deadline_ns);
WEFT_API ssize_t weft_sendto(int fd, const void *buf, size_t n, int flags,
                             const struct sockaddr *addr, socklen_t len);
WEFT_API ssize_t weft_sendto_until(int fd, const void *buf, size_t n, int flags,
                                   const struct sockaddr *addr, socklen_t len,
                                   uint64_t deadline_ns);
WEFT_API ssize_t weft_recvmsg(int fd, struct msghdr *msg, int flags);
WEFT_API ssize_t weft_recvmsg_until(int fd, struct msghdr *msg, int flags,
                                    uint64_t deadline_ns);
WEFT_API ssize_t weft_sendmsg(int fd, const struct msghdr *msg, int flags);
WEFT_API ssize_t weft_sendmsg_until(int fd, const struct msghdr *msg, int flags,
                                    uint64_t deadline_ns);
/* accept4(2): flags as accept4's; the new descriptor is always
 * O_NONBLOCK and O_CLOEXEC, and is under weft already. */
WEFT_API int weft_accept(int fd, struct sockaddr *addr, socklen_t *len,
                         int flags);
WEFT_API int weft_accept_until(int fd, struct sockaddr *addr, socklen_t *len,
                               int flags, uint64_t deadline_ns);
/* connect(2), waiting for the connection to complete: 0 or -errno. With
 * a deadline already past, no connection is started (-ETIMEDOUT); an
 * attempt its deadline ends is aborted (connect(2) to AF_UNSPEC: the
 * socket is unconnected again; a peer that had accepted it sees a
 * reset), so a timed-out call has no effect on the socket. */
WEFT_API int weft_connect(int fd, const struct sockaddr *addr, socklen_t len);
WEFT_API int weft_connect_until(int fd, const struct sockaddr *addr,
                                socklen_t len, uint64_t deadline_ns);
/* Wait until fd is ready for events (WEFT_FD_READ, WEFT_FD_WRITE, or
 * both): 0, or -ETIMEDOUT, -ECANCELED. For a library's own non-blocking
 * descriptors; readiness may be spurious (try the call, and wait again
 * on EAGAIN). A descriptor ready already returns 0 at once, whatever the
 * deadline (from a task this costs one poll(2) before it parks). */
#define WEFT_FD_READ 1
#define WEFT_FD_WRITE 2
WEFT_API int weft_fd_wait(int fd, int events, uint64_t deadline_ns);
/* Wake every task parked on fd with -ECANCELED, forget its registration
 * in every runtime, and close it: close(2)'s result, or 0 when a call in
 * flight on fd will close it as it leaves (above); -EBADF the second
 * time. */
WEFT_API int weft_close(int fd);
/* Forget fd's registration without closing it (it was closed by other
 * code, or is to be used outside weft from now on). */
WEFT_API int weft_fd_forget(int fd);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_H */
