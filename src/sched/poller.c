/*
 * poller.c - the runtime's readiness poller (poller.h): one epoll
 * instance per runtime, edge-triggered registrations made by io/fd.c,
 * and an eventfd that ends a blocking poll.
 *
 * Who polls, and when (docs/decisions/0012-io.md):
 *  - an idle worker, when tasks wait on descriptors, blocks in epoll_wait
 *    instead of its futex, one worker at a time (the blocker); its
 *    timeout is its earliest timer, at nanosecond resolution with
 *    epoll_pwait2 (Linux 5.11+), else rounded up to a millisecond;
 *  - a busy worker polls without blocking every IO_TICK (8) decisions
 *    (runq.h) when tasks wait and nobody blocks in the poller. Every 61,
 *    its fairness tick, left p99 at 2.1 ms in echo (1 worker, 100
 *    connections): most events were then taken by the monitor, whose
 *    wake-ups reach the worker only when its own queues are empty;
 *    every 8: 0.83-1.1 ms, at 3-5% of the throughput. Not in mesh
 *    mode: its wakes of other workers' tasks wait in mailboxes until
 *    the fairness tick (io_wakeup_busy p50 39-43 -> 91-141 us);
 *  - the monitor polls without blocking when nobody has for
 *    WEFT_POLL_GAP_NS (sysmon.c), so that ready descriptors never wait
 *    behind tasks that do not switch (Go's gap is 10 ms, golang/go#51651).
 *
 * The monitor's nap. To poll within WEFT_POLL_GAP_NS of the last poll
 * the monitor must look that often, and 4000 wake-ups a second on the
 * CPU a busy worker runs on cost that worker 10% of its echo throughput
 * (102-104k against 114-116k msg/s with looks every 1 ms). So the step
 * between looks starts at the gap and doubles, up to the monitor's tick,
 * each time it finds that others polled at least twice since its last
 * look (so at least twice as often as it looks); it falls back to the
 * gap as soon as the monitor has to poll itself. (Workers that yield
 * every 100 us poll every 800 us: less often than that, so io_wakeup's
 * busy case keeps the gap. Its p50 is 14-31 us in most runs, was 16-17,
 * and about 105 us in some runs, which is not explained yet.) While
 * every worker runs a task that does not switch, the monitor polls every
 * WEFT_POLL_GAP_NS; when workers that polled stop switching, the first
 * poll comes within one tick (1 ms by default) and the gap holds again.
 * Events go to the handler io/fd.c registered, which wakes the tasks
 * parked on the descriptor through the ordinary unpark path: on a worker,
 * into its own queues; on the monitor, through the summary tree.
 *
 * No lost wake-up for the blocker. A worker that blocks in the poller
 * follows the sleep protocol of idle.c (sleep = 1, the RMW on idle, the
 * re-check of every place work can appear) and marks itself in_poll
 * before it stores sleep (release). A waker that takes its wake-up
 * (weft__idle_wake: the CAS of sleep 1 -> 0, acquire) therefore sees
 * in_poll and writes the eventfd instead of waking the futex. The eventfd
 * is registered level-triggered and only the blocker reads it, so a
 * write made before the blocker reaches epoll_wait makes that call
 * return at once: the futex's "value changed" check, in another form.
 * A kick that finds the blocker gone (a stale in_poll) leaves the
 * eventfd readable; the next blocker's first poll returns at once and
 * drains it: one spurious round, never a lost one.
 *
 * No lost readiness. While a task waits on a descriptor (waiters > 0)
 * either a worker is the blocker, or some worker is awake: the last
 * worker to go idle tries to become the blocker, and fails only while
 * a blocker still holds the role; that blocker is on its way out of
 * the poll and back to its loop, where going idle again makes it the
 * blocker. While any worker is awake the monitor watches, and polls
 * within WEFT_POLL_GAP_NS of the last poll.
 */
#include "poller.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "../base/atomic.h"
#include "../base/clock.h"
#include "../base/error.h"
#include "../base/sysmark.h"
#include "runtime.h"

#define RLX memory_order_relaxed
#define EVFD_KEY UINT64_MAX
#define BATCH WEFT_POLL_BATCH

int weft__poller_ensure(weft_rt *rt, weft_poll_fn fn)
{
    weft_poller *p = &rt->poller;
    uint32_t st = atomic_load_explicit(&p->state, memory_order_acquire);
    while (st != WEFT_POLLER_READY) {
        uint32_t none = WEFT_POLLER_NONE;
        /* Acquire on success is not needed (we make it); the maker's
         * release store of READY pairs with the loads above and below. */
        if (st == WEFT_POLLER_NONE &&
            atomic_compare_exchange_strong_explicit(
                &p->state, &none, WEFT_POLLER_MAKING, RLX, RLX)) {
            weft__sys_enter();
            int ep = epoll_create1(EPOLL_CLOEXEC);
            int ev = ep < 0 ? -1 : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            int err = ep < 0 || ev < 0 ? -errno : 0;
            struct epoll_event e = {.events = EPOLLIN, .data.u64 = EVFD_KEY};
            if (!err && epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e))
                err = -errno;
            weft__sys_leave();
            if (err) {
                weft__error_set(err, "the poller: %s: %s",
                                ep < 0   ? "epoll_create1"
                                : ev < 0 ? "eventfd"
                                         : "epoll_ctl",
                                strerror(-err));
                if (ev >= 0)
                    close(ev);
                if (ep >= 0)
                    close(ep);
                atomic_store_explicit(&p->state, WEFT_POLLER_NONE, RLX);
                return err;
            }
            p->epfd = ep;
            p->evfd = ev;
            p->fn = fn;
            /* Release: the descriptors and the handler are set before
             * anyone sees READY (pairs with the acquire loads). */
            atomic_store_explicit(&p->state, WEFT_POLLER_READY,
                                  memory_order_release);
            return 0;
        }
        weft_cpu_relax(); /* another thread is making it: a few calls */
        st = atomic_load_explicit(&p->state, memory_order_acquire);
    }
    return 0;
}

void weft__poller_destroy(weft_rt *rt)
{
    weft_poller *p = &rt->poller;
    if (atomic_load_explicit(&p->state, memory_order_acquire) !=
        WEFT_POLLER_READY)
        return;
    close(p->evfd);
    close(p->epfd);
    atomic_store_explicit(&p->state, WEFT_POLLER_NONE, RLX);
}

/* Hand events to the handler; the blocker also drains the eventfd. On a
 * worker, the tasks they wake queue in FIFO order behind the LIFO slot
 * (worker.c, ready_local: "Wakes from descriptors"). */
static int handle(weft_rt *rt, struct epoll_event *ev, int n, int blocker)
{
    weft_poller *p = &rt->poller;
    int got = 0;
    weft_worker *me = weft__worker_self(); /* NULL on the monitor */
    if (me)
        me->wake_fifo = 1;
    for (int i = 0; i < n; i++) {
        if (ev[i].data.u64 == EVFD_KEY) {
            if (blocker) {
                uint64_t x;
                weft__sys_enter();
                ssize_t r = read(p->evfd, &x, sizeof x);
                weft__sys_leave();
                (void)r;
            }
            continue;
        }
        p->fn(rt, ev[i].data.u64, ev[i].events);
        got++;
    }
    if (me)
        me->wake_fifo = 0;
    if (got)
        atomic_fetch_add_explicit(&p->events, (uint64_t)got, RLX);
    return got;
}

/* One poll without blocking, its events handed out (the blocker's poll
 * also drains the eventfd). */
static int poll_now(weft_rt *rt, weft_poll_events *buf, int blocker)
{
    weft_poller *p = &rt->poller;
    atomic_store_explicit(&p->last_poll, weft__clock_ns(), RLX);
    atomic_fetch_add_explicit(&p->polls, 1, RLX);
    weft__sys_enter();
    int n = epoll_wait(p->epfd, buf->ev, BATCH, 0);
    weft__sys_leave();
    return n > 0 ? handle(rt, buf->ev, n, blocker) : 0;
}

int weft__poller_poll(weft_rt *rt, weft_poll_events *buf)
{
    if (atomic_load_explicit(&rt->poller.state, memory_order_acquire) !=
        WEFT_POLLER_READY)
        return 0;
    return poll_now(rt, buf, 0);
}

void weft__poller_poll_blocker(weft_rt *rt, weft_poll_events *buf)
{
    poll_now(rt, buf, 1);
    atomic_store_explicit(&rt->poller.blocker, 0, RLX);
}

int weft__poller_take(weft_rt *rt, weft_worker *w)
{
    weft_poller *p = &rt->poller;
    if (atomic_load_explicit(&p->state, memory_order_acquire) !=
            WEFT_POLLER_READY ||
        !atomic_load_explicit(&p->waiters, RLX))
        return 0;
    uint32_t none = 0;
    return atomic_compare_exchange_strong_explicit(&p->blocker, &none,
                                                   w->id + 1, RLX, RLX);
}

/* epoll_pwait2 (nanosecond timeout) when the kernel has it; 0 unknown,
 * 1 yes, -1 no. */
static _Atomic int have_pwait2;

static int wait_until(weft_poller *p, struct epoll_event *ev, uint64_t deadline)
{
    int ms = -1;
    struct timespec ts, *tsp = NULL;
    if (deadline) {
        uint64_t now = weft__clock_ns();
        uint64_t d = deadline > now ? deadline - now : 0;
        ts.tv_sec = (time_t)(d / 1000000000u);
        ts.tv_nsec = (long)(d % 1000000000u);
        tsp = &ts;
        ms = (int)((d + 999999) / 1000000); /* rounded up */
    }
    if (atomic_load_explicit(&have_pwait2, RLX) >= 0) {
        int n = epoll_pwait2(p->epfd, ev, BATCH, tsp, NULL);
        if (n >= 0 || errno != ENOSYS) {
            atomic_store_explicit(&have_pwait2, 1, RLX);
            return n;
        }
        atomic_store_explicit(&have_pwait2, -1, RLX);
    }
    return epoll_wait(p->epfd, ev, BATCH, ms);
}

void weft__poller_block(weft_rt *rt, uint64_t deadline)
{
    weft_poller *p = &rt->poller;
    struct epoll_event ev[BATCH];
    atomic_fetch_add_explicit(&p->blocking_polls, 1, RLX);
    weft__sys_enter();
    int n = wait_until(p, ev, deadline);
    weft__sys_leave();
    atomic_store_explicit(&p->last_poll, weft__clock_ns(), RLX);
    if (n > 0)
        handle(rt, ev, n, 1);
    atomic_store_explicit(&p->blocker, 0, RLX);
}

void weft__poller_kick(weft_rt *rt)
{
    weft_poller *p = &rt->poller;
    if (atomic_load_explicit(&p->state, memory_order_acquire) !=
        WEFT_POLLER_READY)
        return;
    uint64_t one = 1;
    weft__sys_enter();
    ssize_t r = write(p->evfd, &one, sizeof one);
    weft__sys_leave();
    (void)r;
}

void weft__poller_nap(weft_rt *rt, uint64_t tick)
{
    weft_poller *p = &rt->poller;
    uint64_t end = weft__clock_ns() + tick;
    if (p->nap_ns < WEFT_POLL_GAP_NS)
        p->nap_ns = WEFT_POLL_GAP_NS;
    for (;;) {
        uint64_t now = weft__clock_ns();
        if (weft__poller_wanted(p)) {
            /* The header, "The monitor's nap". */
            uint64_t others =
                atomic_load_explicit(&p->polls, RLX) - p->nap_polls;
            if (now - atomic_load_explicit(&p->last_poll, RLX) >=
                WEFT_POLL_GAP_NS) {
                weft_poll_events buf; /* the monitor's own thread stack */
                weft__poller_poll(rt, &buf);
                p->nap_ns = WEFT_POLL_GAP_NS;
            } else if (others >= 2 && p->nap_ns < tick) {
                p->nap_ns *= 2;
            }
            p->nap_polls = atomic_load_explicit(&p->polls, RLX);
        }
        if (now >= end)
            return;
        uint64_t d = end - now;
        if (weft__poller_wanted(p) && d > p->nap_ns)
            d = p->nap_ns;
        struct timespec ts = {0, (long)d};
        nanosleep(&ts, NULL);
    }
}
