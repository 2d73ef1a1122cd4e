#include "inject.h"

#include "../base/sysmark.h"

#define RLX memory_order_relaxed

void weft__inject_init(weft_inject *q, _Atomic uint32_t *link)
{
    pthread_mutex_init(&q->lock, NULL);
    q->head = q->tail = 0;
    q->link = link;
    atomic_store_explicit(&q->len, 0, RLX);
}

void weft__inject_destroy(weft_inject *q)
{
    pthread_mutex_destroy(&q->lock);
}

void weft__inject_push(weft_inject *q, const uint32_t *slots, uint32_t n)
{
    if (!n)
        return;
    for (uint32_t i = 0; i + 1 < n; i++)
        atomic_store_explicit(&q->link[slots[i]], slots[i + 1] + 1, RLX);
    atomic_store_explicit(&q->link[slots[n - 1]], 0, RLX);
    weft__sys_enter(); /* the lock may wait in the kernel */
    pthread_mutex_lock(&q->lock);
    if (q->tail)
        atomic_store_explicit(&q->link[q->tail - 1], slots[0] + 1, RLX);
    else
        q->head = slots[0] + 1;
    q->tail = slots[n - 1] + 1;
    /* seq_cst: a worker about to sleep re-reads len after announcing
     * itself (sched/worker.c, the no-lost-wake-up argument). */
    atomic_fetch_add_explicit(&q->len, n, memory_order_seq_cst);
    pthread_mutex_unlock(&q->lock);
    weft__sys_leave();
}

uint32_t weft__inject_pop(weft_inject *q, uint32_t *out, uint32_t n)
{
    if (!weft__inject_len(q))
        return 0;
    uint32_t k = 0;
    weft__sys_enter(); /* the lock may wait in the kernel */
    pthread_mutex_lock(&q->lock);
    while (k < n && q->head) {
        uint32_t s = q->head - 1;
        out[k++] = s;
        q->head = atomic_load_explicit(&q->link[s], RLX);
    }
    if (!q->head)
        q->tail = 0;
    atomic_fetch_sub_explicit(&q->len, k, RLX);
    pthread_mutex_unlock(&q->lock);
    weft__sys_leave();
    return k;
}
