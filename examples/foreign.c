/*
 * foreign.c - plain threads hand work to a runtime: four pthreads each
 * spawn tasks into it and join them, blocking only themselves.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "weft.h"

static weft_rt *rt;

static void *work(void *arg)
{
    intptr_t x = (intptr_t)arg;
    weft_yield();
    return (void *)(x + 1);
}

static void *producer(void *arg)
{
    intptr_t base = (intptr_t)arg, total = 0;
    for (intptr_t i = 0; i < 1000; i++) {
        weft_task t;
        void *r;
        if (weft_spawn(rt, &t, work, (void *)(base + i), NULL) != 0 ||
            weft_join(t, &r) != 0)
            return (void *)-1;
        total += (intptr_t)r;
    }
    return (void *)total;
}

int main(void)
{
    if (weft_rt_create(&rt, NULL) != 0)
        return 1;
    pthread_t th[4];
    for (intptr_t i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, producer, (void *)(i * 1000));
    intptr_t total = 0, expect = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        total += (intptr_t)r;
    }
    for (intptr_t i = 0; i < 4000; i++)
        expect += i + 1;
    printf("total = %ld (expected %ld)\n", (long)total, (long)expect);
    weft_rt_destroy(rt);
    return total == expect ? 0 : 1;
}
