/*
 * stack.c - stack classes, guard pages, canaries and hot reuse.
 *
 * Reuse order. Spawning must not fault in fresh memory when warm memory
 * is free: a worker keeps its last few freed stacks in a private cache
 * (no atomics) and takes from it first; past that, stacks go to a shared
 * Treiber stack (LIFO, so the most recently used come back first) whose
 * head carries a 32-bit tag against ABA. Stacks never handed out are
 * past a bump index, so creating a runtime touches no per-stack memory.
 *
 * High-water mark. When a stack goes back to the shared pool while more
 * than `keep` stacks may be resident, its usable pages are returned with
 * madvise(MADV_DONTNEED); the next user faults them in zeroed.
 *
 * What is released. A paged stack gives back everything from its guard
 * zone up (the zone of a canary-only stack is made resident by the canary
 * reads on kernels that back read faults with fresh pages, as this
 * project's do; a guarded zone holds nothing). A packed small stack (under
 * a page) shares its pages with its neighbours and is never given back:
 * it stays counted in `resident`, which therefore never overstates what
 * was returned (docs/decisions/0010-overflow.md).
 *
 * Guard pages. A stack whose task overflows must fault before it writes
 * into another stack. MADV_GUARD_INSTALL (Linux 6.13) marks the page in
 * the page tables without splitting the arena's mapping, so every paged
 * stack can have one; older kernels get PROT_NONE pages, two mappings
 * each, within a budget taken from vm.max_map_count. The kind is probed
 * at the first install; EINVAL means the kernel lacks it.
 *
 * Flags. A stack's flags are written only by whoever holds the stack (the
 * worker that got it, or the creator) and read by the stack-overflow
 * handler, hence atomic bytes with relaxed access.
 */
#include "stack.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "../arch/fiber_san.h"
#include "../base/check.h"
#include "../base/sysmark.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13 uapi; older headers lack it */
#endif

#define CANARY UINT64_C(0x5745465453544b21) /* "WEFTSTK!" */
#define CANARY_BYTES 16
#define RLX memory_order_relaxed

static _Atomic int64_t guard_budget = -1; /* -1: not computed yet */
/* WEFT_GUARD_KIND_LIGHT until MADV_GUARD_INSTALL failed once with EINVAL,
 * then WEFT_GUARD_KIND_MPROTECT. Only ever moves to MPROTECT (or back, by
 * the test hook); relaxed: each install checks its own result. */
static _Atomic int guard_kind = WEFT_GUARD_KIND_LIGHT;

static int64_t count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    int64_t n = 0;
    int c;
    while ((c = getc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static int64_t compute_budget(void)
{
    int64_t max = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        long long v;
        if (fscanf(f, "%lld", &v) == 1)
            max = v;
        fclose(f);
    }
    int64_t used = count_maps();
    /* Leave room for the program's own mappings (libraries, malloc
     * arenas, thread stacks) to grow: a quarter of the limit, at least
     * 1024. Each guard page costs two mappings. */
    int64_t spare = max / 4 > 1024 ? max / 4 : 1024;
    int64_t room = max - (used < 0 ? 1024 : used) - spare;
    return room > 0 ? room / 2 : 0;
}

uint64_t weft__stack_guard_budget(void)
{
    int64_t b = atomic_load_explicit(&guard_budget, RLX);
    if (b < 0) {
        int64_t want = compute_budget(), expect = -1;
        atomic_compare_exchange_strong_explicit(&guard_budget, &expect, want,
                                                RLX, RLX);
        b = atomic_load_explicit(&guard_budget, RLX);
    }
    return (uint64_t)b;
}

void weft__stack_guards_return(uint64_t n)
{
    if (n)
        atomic_fetch_add_explicit(&guard_budget, (int64_t)n, RLX);
}

/* Take one guard page from the process-wide budget. */
static int take_guard(void)
{
    int64_t b = (int64_t)weft__stack_guard_budget();
    while (b > 0)
        if (atomic_compare_exchange_weak_explicit(&guard_budget, &b, b - 1, RLX,
                                                  RLX))
            return 1;
    return 0;
}

int weft__stack_guard_kind(void)
{
    return atomic_load_explicit(&guard_kind, RLX);
}

void weft__stack_light_guards(int on)
{
    atomic_store_explicit(&guard_kind,
                          on ? WEFT_GUARD_KIND_LIGHT : WEFT_GUARD_KIND_MPROTECT,
                          RLX);
}

/* A lightweight guard on [addr, addr + len): 1 done, 0 the kernel has none
 * (the kind falls back to PROT_NONE for good), -1 another failure. */
static int light_guard(void *addr, size_t len)
{
    if (atomic_load_explicit(&guard_kind, RLX) != WEFT_GUARD_KIND_LIGHT)
        return 0;
    weft__sys_enter(); /* a task's switch may get here (sysmark.h) */
    int r = madvise(addr, len, MADV_GUARD_INSTALL);
    weft__sys_leave();
    if (r == 0)
        return 1;
    if (errno != EINVAL)
        return -1;
    atomic_store_explicit(&guard_kind, WEFT_GUARD_KIND_MPROTECT, RLX);
    return 0;
}

int weft__stack_fence(void *addr, size_t page)
{
    int r = light_guard(addr, page);
    if (r > 0)
        return 0;
    return mprotect(addr, page, PROT_NONE) == 0 ? 0 : -errno;
}

size_t weft__stack_stride(size_t size, int small, size_t page)
{
    if (!small)
        return size;
    if (size < page)
        return size;
    return ((size + page - 1) & ~(page - 1)) + page;
}

void weft__stack_pool_init(weft_stack_pool *p)
{
    p->paged = !p->small || p->size >= p->page;
    p->stride = weft__stack_stride(p->size, p->small, p->page);
    atomic_store_explicit(&p->head, 0, RLX);
    atomic_store_explicit(&p->bump, 0, RLX);
    if (p->want_guard && p->paged)
        weft__stack_guard_budget();
}

/* Bytes below a stack's usable bottom: its guard zone, or its canary. */
static inline size_t zone_bytes(const weft_stack_pool *p)
{
    return p->paged ? p->page : CANARY_BYTES;
}

char *weft__stack_bottom(const weft_stack_pool *p, uint32_t i)
{
    return p->base + (size_t)i * p->stride + zone_bytes(p);
}

/*
 * Canaries. A packed small stack (under a page) has a written canary word
 * at its bottom: that page is shared with neighbouring stacks and resident
 * anyway. A paged stack without a guard page keeps its guard zone
 * unprotected but unused, and its canary is the top ZERO_CANARY bytes of
 * the zone, which must read as zero: nothing is ever written there, so
 * where the kernel maps reads of an untouched anonymous page to its shared
 * zero page the zone costs no memory. Not every kernel does: on this
 * project's VMs (Linux 6.18) reading one byte of each of 10^5 fresh pages
 * grew the resident set by 4 KiB a page, so there each canary-only stack
 * costs a page more than a guarded one while it is in use, and release
 * must give that page back too (pool_push). A written canary would cost
 * that page everywhere. The price: an overflow that writes only zeros over
 * those bytes goes unseen.
 */
#define ZERO_CANARY 64

/* 1: a written canary word; 0: a zero zone that is never written. */
static inline int written_canary(const weft_stack_pool *p)
{
    return !p->paged;
}

static inline int zero_bytes(const weft_stack_pool *p)
{
    return p->paged ? ZERO_CANARY : CANARY_BYTES;
}

static _Atomic uint64_t *canary_at(const weft_stack_pool *p, uint32_t i)
{
    char *lo = p->base + (size_t)i * p->stride;
    return (_Atomic uint64_t *)(p->paged ? lo + p->page - ZERO_CANARY : lo);
}

int weft__stack_canary_ok(const weft_stack_pool *p, uint32_t i)
{
    if (!(atomic_load_explicit(&p->flags[i], RLX) & WEFT_STK_CANARY))
        return 1;
    _Atomic uint64_t *c = canary_at(p, i);
    if (written_canary(p))
        return atomic_load_explicit(c, RLX) == CANARY;
    uint64_t any = 0;
    for (int k = 0; k < zero_bytes(p) / 8; k++)
        any |= atomic_load_explicit(&c[k], RLX);
    return any == 0;
}

/* A guard page at the bottom of paged stack i: 1 installed, 0 none. */
static int install_guard(weft_stack_pool *p, uint32_t i)
{
    char *lo = p->base + (size_t)i * p->stride;
    int r = light_guard(lo, p->page);
    if (r)
        return r > 0;
    if (!take_guard())
        return 0;
    weft__sys_enter(); /* a task's switch may get here (sysmark.h) */
    r = mprotect(lo, p->page, PROT_NONE);
    weft__sys_leave();
    return r == 0;
}

/* First use of stack i: guard page if wanted and possible, else canary. */
static void first_use(weft_stack_pool *p, uint32_t i)
{
    uint8_t f = WEFT_STK_USED;
    if (p->paged && p->want_guard && install_guard(p, i)) {
        f |= WEFT_STK_GUARDED;
        atomic_fetch_add_explicit(&p->guarded, 1, RLX);
    } else {
        f |= WEFT_STK_CANARY;
        atomic_fetch_add_explicit(&p->unguarded, 1, RLX);
        if (p->paged && p->want_guard) /* the budget ran out */
            atomic_fetch_add_explicit(&p->canaried, 1, RLX);
    }
    atomic_store_explicit(&p->flags[i], f, RLX);
}

static void make_ready(weft_stack_pool *p, uint32_t i)
{
    uint8_t f = atomic_load_explicit(&p->flags[i], RLX);
    if (weft_unlikely(!(f & WEFT_STK_USED))) {
        first_use(p, i);
        f = atomic_load_explicit(&p->flags[i], RLX);
    }
    if (!(f & WEFT_STK_RESIDENT)) {
        atomic_store_explicit(&p->flags[i], f | WEFT_STK_RESIDENT, RLX);
        atomic_fetch_add_explicit(&p->resident, 1, RLX);
    }
    if ((f & WEFT_STK_CANARY) && written_canary(p))
        atomic_store_explicit(canary_at(p, i), CANARY, RLX);
    else if ((f & WEFT_STK_CANARY) && !weft__stack_canary_ok(p, i))
        for (int k = 0; k < zero_bytes(p) / 8; k++) /* re-arm (only after an
                                       overflow: the check alone reads) */
            atomic_store_explicit(&canary_at(p, i)[k], 0, RLX);
}

static int64_t pool_pop(weft_stack_pool *p)
{
    /* Acquire: pairs with the release CAS in pool_push, so next[i] as
     * written by the pusher is visible. */
    uint64_t h = atomic_load_explicit(&p->head, memory_order_acquire);
    while ((uint32_t)h) {
        uint32_t i = (uint32_t)h - 1;
        uint64_t n =
            ((h >> 32) + 1) << 32 | atomic_load_explicit(&p->next[i], RLX);
        if (atomic_compare_exchange_weak_explicit(
                &p->head, &h, n, memory_order_acquire, memory_order_acquire))
            return i;
    }
    uint32_t b = atomic_fetch_add_explicit(&p->bump, 1, RLX);
    if (b < p->count)
        return b;
    atomic_fetch_sub_explicit(&p->bump, 1, RLX);
    return -1;
}

static void pool_push(weft_stack_pool *p, uint32_t i)
{
    /* Packed stacks share pages: never released, still resident. */
    if (p->paged && atomic_load_explicit(&p->resident, RLX) > p->keep) {
        uint8_t f = atomic_load_explicit(&p->flags[i], RLX);
        /* A guarded zone holds nothing (and a PROT_NONE one stays out of
         * the call); a canary-only zone was read, and may be resident. */
        char *lo = (f & WEFT_STK_GUARDED) ? weft__stack_bottom(p, i)
                                          : p->base + (size_t)i * p->stride;
        char *hi = weft__stack_top(p, i);
        weft__sys_enter(); /* on a task's switch (sysmark.h) */
        int r = madvise(lo, (size_t)(hi - lo), MADV_DONTNEED);
        weft__sys_leave();
        if (r == 0) {
            atomic_fetch_add_explicit(&p->released, 1, RLX);
            atomic_store_explicit(&p->flags[i], f & ~WEFT_STK_RESIDENT, RLX);
            atomic_fetch_sub_explicit(&p->resident, 1, RLX);
        }
    }
    uint64_t h = atomic_load_explicit(&p->head, RLX);
    do {
        atomic_store_explicit(&p->next[i], (uint32_t)h, RLX);
        /* Release: publishes next[i] to pool_pop's acquire. */
    } while (!atomic_compare_exchange_weak_explicit(
        &p->head, &h, ((h >> 32) + 1) << 32 | (i + 1), memory_order_release,
        RLX));
}

int64_t weft__stack_get(weft_stack_pool *p, weft_stack_cache *c)
{
    int64_t i;
    if (c && c->n)
        i = c->idx[--c->n];
    else if ((i = pool_pop(p)) < 0)
        return -1;
    make_ready(p, (uint32_t)i);
    /* A finished task leaves the frames that were live at its last switch
     * (entry, exit, switch) poisoned for ASan; they are all near the top,
     * since every deeper frame returned before the task could end. */
    char *top = weft__stack_top(p, (uint32_t)i);
    size_t n = (size_t)(top - weft__stack_bottom(p, (uint32_t)i));
    n = n < ((size_t)16 << 10) ? n : ((size_t)16 << 10);
    weft_san_unpoison(top - n, n);
    (void)top;
    return i;
}

void weft__stack_put(weft_stack_pool *p, weft_stack_cache *c, uint32_t i)
{
    atomic_store_explicit(&p->owner[i], 0, RLX);
    if (c && c->n < WEFT_STACK_CACHE) {
        c->idx[c->n++] = i;
        return;
    }
    pool_push(p, i);
}

void *weft__stack_fiber(weft_stack_pool *p, uint32_t i)
{
#ifdef WEFT_TSAN
    if (!p->san[i])
        p->san[i] = weft_tsan_create();
    return p->san[i];
#else
    (void)p;
    (void)i;
    return NULL;
#endif
}

void weft__stack_pool_fini(weft_stack_pool *p)
{
#ifdef WEFT_TSAN
    uint32_t n = atomic_load_explicit(&p->bump, RLX);
    for (uint32_t i = 0; i < n && i < p->count; i++)
        if (p->san[i])
            weft_tsan_destroy(p->san[i]);
#elif defined(WEFT_ASAN)
    /* The frames of tasks that never returned, or that ended, leave
     * their redzones poisoned in ASan's shadow, and munmap does not
     * clear it: the next mapping at these addresses (another runtime's
     * metadata) then read as a stack-buffer-underflow (found by a
     * program that made and destroyed runtimes in a row). Only stacks
     * ever handed out can hold poison: those below the bump mark. */
    uint32_t n = atomic_load_explicit(&p->bump, RLX);
    if (n > p->count)
        n = p->count;
    weft_san_unpoison(p->base, (size_t)n * p->stride);
#else
    (void)p;
#endif
}

void weft__stack_drain(weft_stack_pool *p, weft_stack_cache *c)
{
    while (c->n)
        pool_push(p, c->idx[--c->n]);
}

int64_t weft__stack_find_guard(const weft_stack_pool *p, const void *addr)
{
    uintptr_t a = (uintptr_t)addr, b = (uintptr_t)p->base;
    if (a < b && a >= b - p->page)
        return WEFT_STACK_FENCE;
    if (a < b || a >= b + (uintptr_t)p->count * p->stride)
        return -1;
    uint32_t i = (uint32_t)((a - b) / p->stride);
    uintptr_t off = (a - b) % p->stride;
    return off < zone_bytes(p) ? (int64_t)i : -1;
}
