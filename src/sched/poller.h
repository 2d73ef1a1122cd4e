/*
 * poller.h - the runtime's readiness poller (poller.c): one epoll
 * instance per runtime, made at the first file descriptor a task waits
 * on, which the workers poll without blocking on their fairness tick,
 * and every IO_TICK decisions between (runq.h), an idle worker blocks
 * in instead of its futex, and the monitor polls when nobody else has
 * for WEFT_POLL_GAP_NS.
 *
 * The poller knows nothing of file descriptors' waiters: each event's
 * 64-bit key goes to the handler the layer above registered
 * (io/fd.c), which wakes the tasks through the ordinary unpark path.
 */
#ifndef WEFT_SCHED_POLLER_H
#define WEFT_SCHED_POLLER_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/epoll.h>

struct weft_rt;
struct weft_worker;

/* Longest a ready descriptor waits for a poll while every worker runs
 * one task that does not switch: the monitor polls when nobody has for
 * this long (Go: 10 ms), waking up to 4000 times a second then. While
 * workers poll on their own it looks less often (poller.c, "The
 * monitor's nap"). */
#define WEFT_POLL_GAP_NS 250000ull

/* The handler of one event: key as registered, events as epoll gives
 * them. Called on the polling thread (a worker, or the monitor). */
typedef void (*weft_poll_fn)(struct weft_rt *rt, uint64_t key, uint32_t events);

/* One poll's events. A worker's lives in its struct, not on the stack
 * its decisions run on, which is the parked task's (sched/worker.c,
 * find_local): a small stack (1 KiB) could not hold 64 events. */
#define WEFT_POLL_BATCH 64
typedef struct weft_poll_events {
    struct epoll_event ev[WEFT_POLL_BATCH];
} weft_poll_events;

enum { WEFT_POLLER_NONE = 0, WEFT_POLLER_MAKING, WEFT_POLLER_READY };

typedef struct weft_poller {
    _Atomic uint32_t state;     /* WEFT_POLLER_*: made once, at first use */
    int epfd;                   /* the epoll instance; valid when READY */
    int evfd;                   /* eventfd that ends a blocking poll */
    weft_poll_fn fn;            /* the handler of events (io/fd.c) */
    _Atomic uint32_t waiters;   /* tasks waiting on descriptors now */
    _Atomic uint32_t blocker;   /* worker id + 1 blocked in epoll_wait,
                                   0 none */
    _Atomic uint64_t last_poll; /* when some thread last polled (ns) */
    uint64_t nap_ns;            /* the monitor's step between looks while
                                   tasks wait (0: not yet); monitor only */
    uint64_t nap_polls;         /* `polls` at its last look; monitor only */
    _Atomic uint64_t polls, blocking_polls, events; /* counters */
    _Atomic uint64_t waits; /* tasks that parked on a descriptor */
} weft_poller;

/* Make rt's poller if it has none: 0, or -errno (the epoll instance or
 * the eventfd could not be made). fn handles its events. Any thread. */
int weft__poller_ensure(struct weft_rt *rt, weft_poll_fn fn);

/* Close the poller's descriptors. Destroyer, after the workers and the
 * monitor have stopped. */
void weft__poller_destroy(struct weft_rt *rt);

/* Poll without blocking into buf and hand every event to the handler;
 * the number of events. Any thread of rt (worker or monitor), each with
 * a buf of its own. */
int weft__poller_poll(struct weft_rt *rt, weft_poll_events *buf);

/* Is polling worth a system call: a task waits on a descriptor and no
 * worker is blocked in the poller. Any thread. */
static inline int weft__poller_wanted(struct weft_poller *p)
{
    return atomic_load_explicit(&p->waiters, memory_order_relaxed) &&
           !atomic_load_explicit(&p->blocker, memory_order_relaxed);
}

/* The blocker's poll without blocking (it slept elsewhere, in its
 * io_uring, sched/uring.c): hands out the events, drains the eventfd and
 * gives up the blocker role. */
void weft__poller_poll_blocker(struct weft_rt *rt, weft_poll_events *buf);

/* Idle worker w: if tasks wait on descriptors and no other worker is
 * blocked in the poller, become the blocker: 1 (then the caller sleeps
 * in weft__poller_block instead of its futex), else 0. */
int weft__poller_take(struct weft_rt *rt, struct weft_worker *w);

/* The blocker's sleep: epoll_wait until an event, the eventfd (a
 * wake-up, weft__poller_kick), or deadline_ns (0: none); handles the
 * events and gives up the blocker role. */
void weft__poller_block(struct weft_rt *rt, uint64_t deadline_ns);

/* The monitor's sleep of `tick` ns between looks at busy workers: while
 * tasks wait on descriptors and no worker blocks in the poller, it polls
 * whenever nobody has for WEFT_POLL_GAP_NS meanwhile. Monitor only. */
void weft__poller_nap(struct weft_rt *rt, uint64_t tick);

/* End a blocking poll (a wake-up for the blocker). Any thread. */
void weft__poller_kick(struct weft_rt *rt);

#endif
