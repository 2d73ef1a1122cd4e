/*
 * tls.c - task-local storage: keys shared by all runtimes, values in the
 * task's cold TCB, which follow the task across workers (a
 * _Thread_local would not). The values' array sits at the top of the
 * task's stack (WEFT_TLS_BYTES, sched/runtime.h), or, for a task run
 * inline on its joiner's stack, in an area of the joiner's frame, which
 * the inline run leaves tagged in cold.tls (sched/task.h); it is written
 * only when the first value is set, so a task that sets none touches
 * neither. Destructors run when the task ends, up to four rounds, as
 * POSIX does for threads.
 */
#include <string.h>

#include "../base/atomic.h"
#include "runq.h"

#define ACQ memory_order_acquire
#define REL memory_order_release

static struct {
    _Atomic unsigned count;
    void (*_Atomic dtor[WEFT_TLS_KEYS])(void *);
} keys;

weft_tcb_cold *weft__tls_finish(void)
{
    weft_worker *w = weft__worker_self();
    weft_rt *rt = w->rt;
    weft_tcb_cold *c = &rt->cold[w->cur_slot];
    /* Destructors may set values again; four rounds, as POSIX allows. */
    for (int round = 0; weft__tls_values(c) && round < 4; round++) {
        int any = 0;
        for (unsigned k = 0; k < WEFT_TLS_KEYS; k++) {
            void (*d)(void *) = atomic_load_explicit(&keys.dtor[k], ACQ);
            void *v = c->tls[k];
            if (d && v) {
                c->tls[k] = NULL;
                d(v);
                any = 1;
            }
        }
        if (!any)
            break;
        w = weft__worker_self(); /* a destructor may have switched */
        c = &w->rt->cold[w->cur_slot];
    }
    return c;
}

int weft_tls_key_create(weft_tls_key *key, void (*dtor)(void *))
{
    if (!key)
        return -EINVAL;
    unsigned k = atomic_fetch_add_explicit(&keys.count, 1, RLX);
    if (k >= WEFT_TLS_KEYS) {
        atomic_fetch_sub_explicit(&keys.count, 1, RLX);
        return -EAGAIN;
    }
    /* Release: pairs with weft__task_exit's acquire load of the dtor. */
    atomic_store_explicit(&keys.dtor[k], dtor, REL);
    *key = k;
    return 0;
}

int weft_tls_set(weft_tls_key key, void *value)
{
    if (key >= atomic_load_explicit(&keys.count, RLX) || key >= WEFT_TLS_KEYS)
        return -EINVAL;
    weft_worker *w = weft__worker_self();
    if (!w || !w->current)
        return -EPERM;
    weft_rt *rt = w->rt;
    weft_tcb_cold *c = &rt->cold[w->cur_slot];
    if (!weft__tls_values(c)) {
        int cls =
            (atomic_load_explicit(&w->current->state, RLX) & WEFT_TS_SMALL) ? 1
                                                                            : 0;
        void **area =
            c->tls ? (void **)((uintptr_t)c->tls & ~(uintptr_t)1)
                   : (void **)(weft__stack_top(&rt->pool[cls], c->stack - 1) -
                               WEFT_TLS_BYTES);
        memset(area, 0, WEFT_TLS_BYTES);
        c->tls = area;
    }
    c->tls[key] = value;
    return 0;
}

void *weft_tls_get(weft_tls_key key)
{
    weft_worker *w = weft__worker_self();
    if (key >= WEFT_TLS_KEYS || !w || !w->current)
        return NULL;
    void **tls = weft__tls_values(&w->rt->cold[w->cur_slot]);
    return tls ? tls[key] : NULL;
}
