/*
 * test_waitq.c - white-box test of the wait queue (sync/wait.h): one
 * pointer to the oldest node of a circular doubly linked ring. Random
 * pushes at either end, unlinks from anywhere (the timeout path), unlinks
 * of nodes already off the queue, and claims from the head, checked after
 * every step against an array that holds the queue in FIFO order: the
 * ring must hold exactly the model's nodes in order, both ways round.
 */
#include <stdlib.h>

#include "check.h"
#include "internal.h"
#include "sync/wait.h"

#define NODES 24

/* The ring of q equals model[0..len): forwards from head, backwards from
 * head->prev, every node on it queued and every other node not. */
static int ring_matches(weft_wlist_ *q, weft_wnode *const *model, int len,
                        weft_wnode *nodes)
{
    weft_wnode *h = q->head_;
    if (len == 0)
        return h == NULL && weft__wq_empty(q);
    if (!h || weft__wq_empty(q))
        return 0;
    weft_wnode *n = h;
    for (int i = 0; i < len; i++, n = n->next)
        if (n != model[i] || !n->queued)
            return 0;
    if (n != h)
        return 0;
    n = h->prev;
    for (int i = len - 1; i >= 0; i--, n = n->prev)
        if (n != model[i])
            return 0;
    int queued = 0;
    for (int i = 0; i < NODES; i++)
        queued += nodes[i].queued != 0;
    return queued == len;
}

TEST(unit, waitq_ring_matches_a_fifo_model)
{
    static weft_wait waits[NODES];
    weft_wnode nodes[NODES];
    weft_wnode *model[NODES];
    weft_wlist_ q = {NULL};
    int len = 0;
    unsigned seed = 12345;
    for (int i = 0; i < NODES; i++) {
        nodes[i] = (weft_wnode){.wait = &waits[i]};
        waits[i].solo = 1; /* a claim is a plain store */
    }
    for (int step = 0; step < 200000; step++) {
        int op = rand_r(&seed) % 4;
        weft_wnode *n = &nodes[rand_r(&seed) % NODES];
        if (op <= 1 && !n->queued) { /* push at the tail or the head */
            if (op == 0) {
                weft__wq_push(&q, n);
                model[len++] = n;
            } else {
                weft__wq_push_head(&q, n);
                for (int i = len++; i > 0; i--)
                    model[i] = model[i - 1];
                model[0] = n;
            }
        } else if (op == 2) { /* unlink, queued or not */
            int at = -1;
            for (int i = 0; i < len; i++)
                if (model[i] == n)
                    at = i;
            CHECK((at >= 0) == (n->queued != 0));
            weft__wq_unlink(&q, n);
            if (at >= 0) {
                for (int i = at; i + 1 < len; i++)
                    model[i] = model[i + 1];
                len--;
            }
        } else if (op == 3) { /* a waker's claim of the oldest */
            weft_wnode *got = weft__wq_claim(&q);
            CHECK(got == (len ? model[0] : NULL));
            if (len) {
                for (int i = 0; i + 1 < len; i++)
                    model[i] = model[i + 1];
                len--;
            }
        }
        CHECK(ring_matches(&q, model, len, nodes));
    }
}

TEST(unit, waitq_claim_list_takes_oldest_first_and_leaves_the_rest)
{
    static weft_wait waits[8];
    weft_wnode nodes[8];
    weft_wlist_ q = {NULL};
    for (int i = 0; i < 8; i++) {
        nodes[i] = (weft_wnode){.wait = &waits[i]};
        waits[i].solo = 1;
        weft__wq_push(&q, &nodes[i]);
    }
    weft_wnode *got = weft__wq_claim_list(&q, 5);
    for (int i = 0; i < 5; i++, got = got->next) {
        CHECK(got == &nodes[i]);
        CHECK(!nodes[i].queued);
    }
    CHECK(got == NULL);
    CHECK(q.head_ == &nodes[5]);
    got = weft__wq_claim_list(&q, 100);
    for (int i = 5; i < 8; i++, got = got->next)
        CHECK(got == &nodes[i]);
    CHECK(got == NULL);
    CHECK(weft__wq_empty(&q));
}
