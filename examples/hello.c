/*
 * hello.c - the smallest complete weft program: a main task spawns ten
 * workers, each yields a few times, and main joins them and sums their
 * results.
 */
#include <stdint.h>
#include <stdio.h>

#include "weft.h"

static void *child(void *arg)
{
    intptr_t n = (intptr_t)arg;
    for (int i = 0; i < 3; i++)
        weft_yield(); /* let the siblings run */
    return (void *)(n * n);
}

static void *main_task(void *arg)
{
    (void)arg;
    weft_task kids[10];
    for (intptr_t i = 0; i < 10; i++) {
        weft_spawn_attr attr = WEFT_SPAWN_ATTR_INIT;
        attr.name = "child";
        if (weft_spawn(NULL, &kids[i], child, (void *)i, &attr) != 0)
            return (void *)-1;
    }
    intptr_t sum = 0;
    for (int i = 0; i < 10; i++) {
        void *r;
        weft_join(kids[i], &r);
        sum += (intptr_t)r;
    }
    return (void *)sum;
}

int main(void)
{
    weft_rt *rt;
    int err = weft_rt_create(&rt, NULL);
    if (err) {
        fprintf(stderr, "weft_rt_create: %s (%s)\n", weft_strerror(err),
                weft_last_error());
        return 1;
    }
    void *sum;
    err = weft_rt_run(rt, main_task, NULL, &sum);
    if (err) {
        fprintf(stderr, "weft_rt_run: %s\n", weft_strerror(err));
        return 1;
    }
    printf("sum of squares 0..9 = %ld\n", (long)(intptr_t)sum);
    weft_rt_destroy(rt);
    return (intptr_t)sum == 285 ? 0 : 1;
}
