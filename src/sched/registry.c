/*
 * registry.c - the process's runtimes by id, so that a task handle (which
 * carries an 8-bit runtime id, sched/task.h) can be resolved from any
 * thread: weft_join and weft_detach take no runtime argument.
 *
 * Ids are claimed by CAS in a fixed table at weft_rt_create and released
 * at weft_rt_destroy (or a failed create); a handle of a destroyed runtime
 * resolves to NULL, so -ESRCH. It lives in the scheduler's layer because
 * handles are resolved there (task.c) and by observation (obs/dump.c);
 * only rt/ adds and removes.
 */
#include "registry.h"
#include "runtime.h"

static struct weft_rt *_Atomic registry[WEFT_REGISTRY];

struct weft_rt *weft__rt_by_id(uint32_t id)
{
    /* Acquire: pairs with the release CAS in weft__registry_add, so the
     * runtime's fields are visible to whoever resolves a handle. */
    return id && id < WEFT_REGISTRY
               ? atomic_load_explicit(&registry[id], memory_order_acquire)
               : NULL;
}

uint32_t weft__registry_add(struct weft_rt *rt)
{
    for (uint32_t i = 1; i < WEFT_REGISTRY; i++) {
        struct weft_rt *none = NULL;
        /* Release: pairs with weft__rt_by_id's acquire. */
        if (atomic_compare_exchange_strong_explicit(&registry[i], &none, rt,
                                                    memory_order_release,
                                                    memory_order_relaxed))
            return i;
    }
    return 0;
}

void weft__registry_remove(struct weft_rt *rt)
{
    /* seq_cst: the destroyer's store of the Dekker pair with
     * weft__cancel_hold (a holder's increment, then weft__registry_has);
     * as a release it also orders whatever the destroyer did before
     * ahead of the slot's next owner. Readers that found rt before this
     * store are the destroyer's to wait for (cancel.c; obs/dump.c for
     * SIGQUIT). */
    atomic_store_explicit(&registry[rt->id], NULL, memory_order_seq_cst);
}

int weft__registry_has(struct weft_rt *rt)
{
    return atomic_load_explicit(&registry[rt->id], memory_order_seq_cst) == rt;
}
