/*
 * fanout.c - fork-join: a parallel sum over an array, split in halves
 * until a piece is small, each half a task that the parent joins.
 */
#include <stdint.h>
#include <stdio.h>

#include "weft.h"

typedef struct {
    const long *v;
    long n;
    long sum;
} piece;

static void *sum_piece(void *arg)
{
    piece *p = arg;
    if (p->n <= 1024) {
        for (long i = 0; i < p->n; i++)
            p->sum += p->v[i];
        return NULL;
    }
    piece left = {p->v, p->n / 2, 0};
    piece right = {p->v + p->n / 2, p->n - p->n / 2, 0};
    weft_task t = WEFT_TASK_NULL;
    if (weft_spawn(NULL, &t, sum_piece, &left, NULL) != 0)
        sum_piece(&left); /* out of task slots: do it here */
    sum_piece(&right);
    if (t.id)
        weft_join(t, NULL);
    p->sum = left.sum + right.sum;
    return NULL;
}

static long data[1 << 20];

int main(void)
{
    long n = sizeof data / sizeof data[0], expect = 0;
    for (long i = 0; i < n; i++) {
        data[i] = i % 1000;
        expect += data[i];
    }
    weft_rt *rt;
    if (weft_rt_create(&rt, NULL) != 0)
        return 1;
    piece all = {data, n, 0};
    weft_rt_run(rt, sum_piece, &all, NULL);
    printf("sum = %ld (expected %ld)\n", all.sum, expect);
    weft_rt_destroy(rt);
    return all.sum == expect ? 0 : 1;
}
