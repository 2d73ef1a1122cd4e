/*
 * fuzz_model.c - libFuzzer harness: random sequences of channel, select,
 * mutex, semaphore, event, wait group and timed-wait operations, each
 * result compared with a small sequential reference model. Every input
 * runs twice: from a plain thread, and inside a task (so both blocking
 * paths, the futex one and the parked one, are taken: every wait that
 * would block has a deadline already past, which must try once and
 * return -ETIMEDOUT with no effect).
 *
 * Input: one byte per operation (op = byte % OPS, argument from the high
 * bits); the channel's capacity comes from the first byte.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"

#define CHECK(c)                                                               \
    do {                                                                       \
        if (!(c)) {                                                            \
            fprintf(stderr, "fuzz_model: %s:%d: %s (op %zu)\n", __FILE__,      \
                    __LINE__, #c, at);                                         \
            abort();                                                           \
        }                                                                      \
    } while (0)

enum {
    OP_SEND,
    OP_RECV,
    OP_SEND_PAST,
    OP_RECV_PAST,
    OP_SELECT,
    OP_CLOSE,
    OP_SEM_POST,
    OP_SEM_TRY,
    OP_SEM_PAST,
    OP_LOCK_TRY,
    OP_UNLOCK,
    OP_LOCK_PAST,
    OP_EV_SET,
    OP_EV_RESET,
    OP_EV_PAST,
    OP_WG_ADD,
    OP_WG_DONE,
    OP_WG_PAST,
    OPS
};

typedef struct run {
    const uint8_t *d;
    size_t n;
} run;

/* The reference model. */
typedef struct model {
    int ring[16];
    unsigned head, len, cap;
    int closed;
    uint64_t sem;
    int locked, set;
    int64_t wg;
} model;

static void play(const uint8_t *d, size_t n)
{
    size_t at = 0;
    model m = {.cap = n ? d[0] % 5 : 0};
    weft_chan *ch;
    /* A rendezvous channel (cap 0) with nobody on the other side never
     * completes; the model treats it as cap 0: every try would block. */
    CHECK(weft_chan_create(&ch, sizeof(int), m.cap) == 0);
    weft_sem sem;
    weft_mutex mu;
    weft_event ev;
    weft_wg wg;
    CHECK(weft_sem_init(&sem, 0) == 0);
    CHECK(weft_mutex_init(&mu) == 0);
    CHECK(weft_event_init(&ev) == 0);
    CHECK(weft_wg_init(&wg) == 0);
    for (at = 1; at < n; at++) {
        unsigned op = d[at] % OPS, arg = d[at] / OPS;
        int v = (int)arg, r;
        switch (op) {
        case OP_SEND:
        case OP_SEND_PAST:
            r = op == OP_SEND ? weft_chan_try_send(ch, &v)
                              : weft_chan_send_until(ch, &v, 0);
            if (m.closed)
                CHECK(r == -EPIPE);
            else if (m.len < m.cap) {
                CHECK(r == 0);
                m.ring[(m.head + m.len++) % 16] = v;
            } else
                CHECK(r == (op == OP_SEND ? -EAGAIN : -ETIMEDOUT));
            break;
        case OP_RECV:
        case OP_RECV_PAST: {
            int got = -1;
            r = op == OP_RECV ? weft_chan_try_recv(ch, &got)
                              : weft_chan_recv_until(ch, &got, 0);
            if (m.len) {
                CHECK(r == 0);
                CHECK(got == m.ring[m.head % 16]);
                m.head++;
                m.len--;
            } else if (m.closed)
                CHECK(r == -EPIPE);
            else
                CHECK(r == (op == OP_RECV ? -EAGAIN : -ETIMEDOUT));
            break;
        }
        case OP_SELECT: {
            int out = -1, in = v;
            weft_sel_case c[2] = {{ch, WEFT_SEL_RECV, &out, 0},
                                  {ch, WEFT_SEL_SEND, &in, 0}};
            r = weft_try_select(c, 2);
            int can_recv = m.len > 0 || m.closed;
            int can_send = m.closed || m.len < m.cap;
            if (!can_recv && !can_send) {
                CHECK(r == -EAGAIN);
            } else if (r == 0) {
                CHECK(can_recv);
                if (m.len) {
                    CHECK(c[0].result == 0 && out == m.ring[m.head % 16]);
                    m.head++;
                    m.len--;
                } else
                    CHECK(c[0].result == -EPIPE);
            } else {
                CHECK(r == 1 && can_send);
                if (m.closed)
                    CHECK(c[1].result == -EPIPE);
                else {
                    CHECK(c[1].result == 0);
                    m.ring[(m.head + m.len++) % 16] = in;
                }
            }
            break;
        }
        case OP_CLOSE:
            r = weft_chan_close(ch);
            CHECK(r == (m.closed ? -EPIPE : 0));
            m.closed = 1;
            break;
        case OP_SEM_POST:
            CHECK(weft_sem_post(&sem) == 0);
            m.sem++;
            break;
        case OP_SEM_TRY:
        case OP_SEM_PAST:
            r = op == OP_SEM_TRY ? weft_sem_try_wait(&sem)
                                 : weft_sem_wait_until(&sem, 0);
            if (m.sem) {
                CHECK(r == 0);
                m.sem--;
            } else
                CHECK(r == (op == OP_SEM_TRY ? -EAGAIN : -ETIMEDOUT));
            CHECK(weft_sem_value(&sem) == m.sem);
            break;
        case OP_LOCK_TRY:
        case OP_LOCK_PAST:
            r = op == OP_LOCK_TRY ? weft_mutex_try_lock(&mu)
                                  : weft_mutex_lock_until(&mu, 0);
            CHECK(r ==
                  (m.locked ? (op == OP_LOCK_TRY ? -EBUSY : -ETIMEDOUT) : 0));
            m.locked = 1;
            break;
        case OP_UNLOCK:
            r = weft_mutex_unlock(&mu);
            CHECK(r == (m.locked ? 0 : -EPERM));
            m.locked = 0;
            break;
        case OP_EV_SET:
            CHECK(weft_event_set(&ev) == 0);
            m.set = 1;
            break;
        case OP_EV_RESET:
            CHECK(weft_event_reset(&ev) == 0);
            m.set = 0;
            break;
        case OP_EV_PAST:
            r = weft_event_wait_until(&ev, 0);
            CHECK(r == (m.set ? 0 : -ETIMEDOUT));
            CHECK(weft_event_is_set(&ev) == m.set);
            break;
        case OP_WG_ADD:
            r = weft_wg_add(&wg, arg % 4);
            CHECK(r == 0);
            m.wg += arg % 4;
            break;
        case OP_WG_DONE:
            r = weft_wg_done(&wg);
            CHECK(r == (m.wg > 0 ? 0 : -EINVAL));
            if (m.wg > 0)
                m.wg--;
            break;
        case OP_WG_PAST:
            r = weft_wg_wait_until(&wg, 0);
            CHECK(r == (m.wg ? -ETIMEDOUT : 0));
            break;
        }
        CHECK(weft_chan_len(ch) == m.len);
    }
    /* Teardown: every object is free of waiters and can be destroyed. */
    if (m.locked)
        CHECK(weft_mutex_unlock(&mu) == 0);
    while (m.wg-- > 0)
        CHECK(weft_wg_done(&wg) == 0);
    CHECK(weft_mutex_destroy(&mu) == 0);
    CHECK(weft_sem_destroy(&sem) == 0);
    CHECK(weft_event_destroy(&ev) == 0);
    CHECK(weft_wg_destroy(&wg) == 0);
    CHECK(weft_chan_destroy(ch) == 0);
}

static void *in_task(void *arg)
{
    run *r = arg;
    play(r->d, r->n);
    return NULL;
}

static weft_rt *rt;

static void done(void)
{
    weft_rt_shutdown(rt);
    weft_rt_destroy(rt);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    if (n > 4096)
        return 0;
    if (!rt) {
        weft_config c;
        weft_config_default(&c);
        c.workers = 2;
        c.max_tasks = 64;
        if (weft_rt_create(&rt, &c))
            abort();
        atexit(done);
    }
    play(d, n);
    run r = {d, n};
    if (weft_rt_run(rt, in_task, &r, NULL))
        abort();
    return 0;
}
