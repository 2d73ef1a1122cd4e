/*
 * stack.h - task stacks: two classes carved from the arena, guard pages or
 * canaries, hot-first reuse, and release of cold memory above a high-water
 * mark. Knows nothing of tasks: a stack is an index into its class.
 *
 * Layout of one "paged" stack (the default class, and the small class when
 * small_stack_size is a page or more), stride bytes, page aligned:
 *     [ guard zone (a page) | usable ........................... top ]
 * The default class's stride is stack_size (the guard zone is part of it);
 * the small class's is small_stack_size rounded up to pages plus the guard
 * zone, so a small task gets at least the size asked for. The guard zone is
 * a guard page, installed at the stack's first use: a lightweight guard
 * (MADV_GUARD_INSTALL, Linux 6.13+: no memory mapping, no budget) where
 * the kernel has it, else PROT_NONE while the process's mapping budget
 * lasts (each splits the arena mapping: two more VMAs against
 * vm.max_map_count). Without a guard (guard_pages 0, or past that budget)
 * the zone stays unprotected and unused, and its top 64 bytes must read
 * zero (a canary that is never written; stack.c).
 * A small class under a page packs stacks back to back (stride = size),
 * with a written canary and no guard:
 *     [ canary 16 B | usable ...................................... top ]
 * Canaries are checked at every switch-out of their task (sched/switch.c).
 * Below each class's first stack lies a fence page (guarded like the
 * stacks, or PROT_NONE): an overflow that no guard stopped never runs out
 * of its class into the other class or the runtime's metadata.
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
    char *base;                 /* first stack */
    size_t size;                /* bytes per stack as configured (reports) */
    size_t stride;              /* bytes from one stack to the next, guard
                                  zone or canary included */
    uint32_t count;             /* stacks in the class */
    int small;                  /* 1: small class */
    int paged;                  /* 1: page-aligned, a guard zone below each
                                  stack; 0: packed, written canaries */
    int want_guard;             /* config: guard pages while the budget lasts */
    size_t page;                /* system page size */
    size_t keep;                /* resident stacks kept before madvise */
    _Atomic uint32_t *next;     /* free-list links (arena); a stalled popper may
                              read one being rewritten: atomic, relaxed */
    _Atomic uint8_t *flags;     /* WEFT_STK_* per stack; see stack.c */
    _Atomic uint32_t *owner;    /* slot + 1 of the task bound, 0 = none */
    void **san;                 /* TSan fiber of each stack (TSan builds):
                                  one per stack, reused by its tasks; no
                                  room is laid out for it in others */
    _Atomic uint64_t head;      /* Treiber top: tag << 32 | (index + 1) */
    _Atomic uint32_t bump;      /* stacks at or above never handed out */
    _Atomic uint64_t resident;  /* stacks that may hold resident pages */
    _Atomic uint64_t released;  /* madvise(DONTNEED) calls done */
    _Atomic uint64_t guarded;   /* stacks with a guard page */
    _Atomic uint64_t canaried;  /* stacks that wanted a guard page and fell
                                  back to a canary (the budget ran out) */
    _Atomic uint64_t unguarded; /* stacks handed out with a canary only,
                                   for any reason */
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

/* Bytes from one stack of a class to the next, for `size` bytes asked
 * (small: 1 for the small class). Any thread. */
size_t weft__stack_stride(size_t size, int small, size_t page);

/* Kinds of guard page this process installs (weft_stats.guard_kind). */
enum {
    WEFT_GUARD_KIND_LIGHT = 1,   /* MADV_GUARD_INSTALL: no mapping */
    WEFT_GUARD_KIND_MPROTECT = 2 /* PROT_NONE: two VMAs, budgeted */
};

/* Which kind first_use installs: probed once per process (the first
 * install), WEFT_GUARD_KIND_LIGHT until a probe failed. Any thread. */
int weft__stack_guard_kind(void);

/* Test hook: 0 makes every later guard a PROT_NONE one (as on kernels
 * before 6.13), 1 lets the probe run again. Before any runtime exists. */
void weft__stack_light_guards(int on);

/* Protect the fence page at addr (below a class's first stack): a
 * lightweight guard where possible, else PROT_NONE (outside the budget:
 * a runtime has two). 0 or -errno. Creator only. */
int weft__stack_fence(void *addr, size_t page);

/* Creator only; p->size, small, page set: fills stride and paged. */
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
    return p->base + (size_t)(i + 1) * p->stride;
}

/* Lowest usable byte (above the guard zone or the canary). */
char *weft__stack_bottom(const weft_stack_pool *p, uint32_t i);

/* Usable bytes of each stack of the pool (above its guard zone or
 * canary). Any thread. */
static inline size_t weft__stack_usable(const weft_stack_pool *p)
{
    return (size_t)(weft__stack_top(p, 0) - weft__stack_bottom(p, 0));
}

/* 1 while the canary (if any) is intact. Any thread. */
int weft__stack_canary_ok(const weft_stack_pool *p, uint32_t i);

/* If addr lies in the guard zone or canary of stack i of this pool,
 * return i; in the fence below the pool, WEFT_STACK_FENCE; else -1.
 * Signal safe. */
#define WEFT_STACK_FENCE ((int64_t)-2)
int64_t weft__stack_find_guard(const weft_stack_pool *p, const void *addr);

#endif
