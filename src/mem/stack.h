/*
 * stack.h - task stacks: two classes carved from the arena, guard pages or
 * canaries, hot-first reuse, and release of cold memory above a high-water
 * mark. Knows nothing of tasks: a stack is an index into its class.
 *
 * Layout of one stack of the default class (size bytes, page aligned):
 *     [ guard page | usable ...................................... top ]
 * The guard page is PROT_NONE while the process's mapping budget lasts
 * (each guarded stack splits the arena mapping: two more VMAs against
 * vm.max_map_count); past the budget the page stays unprotected and
 * unused, its top 64 bytes must read zero (a canary that is never written,
 * so the page never becomes resident; stack.c), and the pool counts it. A
 * small-class stack (several per page) always has a written canary:
 *     [ canary 16 B | usable ...................................... top ]
 * Canaries are checked at every switch-out of their task (sched/worker.c).
 */
#ifndef WEFT_MEM_STACK_H
#define WEFT_MEM_STACK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define WEFT_STACK_CACHE 8 /* hot stacks a worker keeps per class */

enum {
    WEFT_STK_USED = 1,     /* has been handed out at least once */
    WEFT_STK_GUARDED = 2,  /* its guard page is PROT_NONE */
    WEFT_STK_CANARY = 4,   /* protected by a canary word */
    WEFT_STK_RESIDENT = 8, /* may hold resident pages */
};

typedef struct weft_stack_pool {
    char *base;                /* first stack */
    size_t size;               /* bytes per stack, including guard or canary */
    uint32_t count;            /* stacks in the class */
    int small;                 /* 1: small class (canary only, no guard page) */
    int want_guard;            /* config: guard pages while the budget lasts */
    size_t page;               /* system page size */
    size_t keep;               /* resident stacks kept before madvise */
    _Atomic uint32_t *next;    /* free-list links (arena); a stalled popper may
                              read one being rewritten: atomic, relaxed */
    _Atomic uint8_t *flags;    /* WEFT_STK_* per stack; see stack.c */
    _Atomic uint32_t *owner;   /* slot + 1 of the task bound, 0 = none */
    void **san;                /* TSan fiber of each stack (TSan builds):
                                  one per stack, reused by its tasks */
    _Atomic uint64_t head;     /* Treiber top: tag << 32 | (index + 1) */
    _Atomic uint32_t bump;     /* stacks at or above never handed out */
    _Atomic uint64_t resident; /* stacks that may hold resident pages */
    _Atomic uint64_t released; /* madvise(DONTNEED) calls done */
    _Atomic uint64_t guarded;  /* stacks with a guard page */
    _Atomic uint64_t canaried; /* default stacks that fell back to canary */
} weft_stack_pool;

/* A worker's cache of hot stacks of one class; owner worker only. */
typedef struct weft_stack_cache {
    uint32_t n;
    uint32_t idx[WEFT_STACK_CACHE];
} weft_stack_cache;

/* Guard pages the process may still create (shared by all runtimes),
 * computed on first use from vm.max_map_count and the current map count. */
uint64_t weft__stack_guard_budget(void);

/* Give back n guard pages whose mappings are gone (the runtime's arena
 * was unmapped). Without this each runtime created and destroyed in a
 * process spent the budget for good: a second runtime of 100,000 tasks got
 * no guard page at all (bench memory: 24,558 guarded stacks, then 0). */
void weft__stack_guards_return(uint64_t n);

/* Creator only. */
void weft__stack_pool_init(weft_stack_pool *p);

/* Hand out a stack (cache first, then the pool's hot end, then a fresh
 * one), set up its guard page or canary on first use. Returns its index,
 * or -1 when the class is exhausted. Owner worker of `c`. */
int64_t weft__stack_get(weft_stack_pool *p, weft_stack_cache *c);

/* Give a stack back (its task has left it for good). Owner worker of `c`;
 * c may be NULL (return straight to the pool; any thread). */
void weft__stack_put(weft_stack_pool *p, weft_stack_cache *c, uint32_t i);

/* TSan fiber of stack i (created on first use), or NULL outside TSan
 * builds. Holder of the stack. */
void *weft__stack_fiber(weft_stack_pool *p, uint32_t i);

/* Destroy the pool's TSan fibers (runtime teardown). Creator only. */
void weft__stack_pool_fini(weft_stack_pool *p);

/* Return cached stacks to the pool (worker exit). */
void weft__stack_drain(weft_stack_pool *p, weft_stack_cache *c);

static inline char *weft__stack_top(const weft_stack_pool *p, uint32_t i)
{
    return p->base + (size_t)(i + 1) * p->size;
}

/* Lowest usable byte (above the guard page or the canary). */
char *weft__stack_bottom(const weft_stack_pool *p, uint32_t i);

/* 1 while the canary (if any) is intact. Any thread. */
int weft__stack_canary_ok(const weft_stack_pool *p, uint32_t i);

/* If addr lies in the guard page or canary of stack i of this pool,
 * return i, else -1. Signal safe. */
int64_t weft__stack_find_guard(const weft_stack_pool *p, const void *addr);

#endif
