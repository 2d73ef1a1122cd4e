/*
 * test_stack.c - white-box tests of mem/stack.c on pools built by hand
 * (no runtime): hot-first reuse, release above the high-water mark, guard
 * pages, canaries, and the fall-back to canaries when the process's guard
 * budget runs out.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"

static size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* A pool of `count` stacks of `size` bytes over a fresh reservation. */
static void pool_make(weft_stack_pool *p, int small, int want_guard,
                      uint32_t count, size_t size, size_t keep)
{
    memset(p, 0, sizeof *p);
    p->page = page_size();
    p->size = size;
    p->count = count;
    p->small = small;
    p->want_guard = want_guard;
    p->keep = keep;
    weft__stack_pool_init(p); /* sets the stride */
    size_t len = (count * p->stride + p->page - 1) & ~(p->page - 1);
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    CHECK(m != MAP_FAILED);
    p->base = m;
    p->next = calloc(count, sizeof *p->next);
    p->flags = calloc(count, sizeof *p->flags);
    p->owner = calloc(count, sizeof *p->owner);
    p->san = calloc(count, sizeof *p->san);
    CHECK(p->next && p->flags && p->owner && p->san);
}

static void pool_free(weft_stack_pool *p)
{
    weft__stack_pool_fini(p);
    munmap(p->base, (p->count * p->stride + p->page - 1) & ~(p->page - 1));
    free((void *)p->next);
    free((void *)p->flags);
    free((void *)p->owner);
    free(p->san);
}

static uint8_t flags_of(weft_stack_pool *p, int64_t i)
{
    return atomic_load(&p->flags[i]);
}

TEST(unit, stack_fresh_in_order_until_exhausted)
{
    weft_stack_pool p;
    pool_make(&p, 1, 0, 4, 4096, 100);
    for (int64_t i = 0; i < 4; i++)
        CHECK_EQ_INT(weft__stack_get(&p, NULL), i);
    CHECK_EQ_INT(weft__stack_get(&p, NULL), -1);
    weft__stack_put(&p, NULL, 2);
    CHECK_EQ_INT(weft__stack_get(&p, NULL), 2);
    CHECK_EQ_INT(weft__stack_get(&p, NULL), -1);
    pool_free(&p);
}

TEST(unit, stack_pool_reuse_hot_first)
{
    weft_stack_pool p;
    pool_make(&p, 0, 0, 16, 64 << 10, 100);
    int64_t a = weft__stack_get(&p, NULL), b = weft__stack_get(&p, NULL);
    CHECK_NE_INT(a, b);
    weft__stack_put(&p, NULL, (uint32_t)a);
    CHECK_EQ_INT(weft__stack_get(&p, NULL), a);
    /* LIFO: the most recently returned comes back first. */
    weft__stack_put(&p, NULL, (uint32_t)a);
    weft__stack_put(&p, NULL, (uint32_t)b);
    CHECK_EQ_INT(weft__stack_get(&p, NULL), b);
    CHECK_EQ_INT(weft__stack_get(&p, NULL), a);
    /* A fresh stack only once none is free. */
    CHECK_EQ_INT(weft__stack_get(&p, NULL), 2);
    pool_free(&p);
}

TEST(unit, stack_cache_reuse_hot_first)
{
    weft_stack_pool p;
    weft_stack_cache c = {0};
    pool_make(&p, 0, 0, 64, 64 << 10, 100);
    int64_t a = weft__stack_get(&p, &c);
    weft__stack_put(&p, &c, (uint32_t)a);
    CHECK_EQ_INT(c.n, 1);
    CHECK_EQ_INT(weft__stack_get(&p, &c), a);
    CHECK_EQ_INT(c.n, 0);

    /* A full cache spills to the pool; drain returns the rest. */
    int64_t s[WEFT_STACK_CACHE + 2];
    for (int i = 0; i < WEFT_STACK_CACHE + 2; i++)
        s[i] = weft__stack_get(&p, &c);
    uint32_t bump = atomic_load(&p.bump);
    for (int i = 0; i < WEFT_STACK_CACHE + 2; i++)
        weft__stack_put(&p, &c, (uint32_t)s[i]);
    CHECK_EQ_INT(c.n, WEFT_STACK_CACHE);
    /* Cache first (last put first). */
    CHECK_EQ_INT(weft__stack_get(&p, &c), s[WEFT_STACK_CACHE - 1]);
    weft__stack_drain(&p, &c);
    CHECK_EQ_INT(c.n, 0);
    /* Everything else is back in the pool: getting all of it takes no
     * fresh stack, and each comes back once. */
    uint64_t seen = 0;
    for (int i = 0; i < WEFT_STACK_CACHE + 1; i++) {
        int64_t k = weft__stack_get(&p, NULL);
        CHECK(k >= 0 && k < 64);
        CHECK(!(seen & (UINT64_C(1) << k)));
        seen |= UINT64_C(1) << k;
    }
    CHECK_EQ_U64(atomic_load(&p.bump), bump);
    pool_free(&p);
}

static int resident(void *addr)
{
    unsigned char v = 0;
    CHECK_EQ_INT(mincore(addr, page_size(), &v), 0);
    return v & 1;
}

TEST(unit, stack_released_above_keep)
{
    weft_stack_pool p;
    size_t pg = page_size();
    pool_make(&p, 0, 0, 8, 64 << 10, 1);
    int64_t s[3];
    char *touch[3];
    for (int i = 0; i < 3; i++) {
        s[i] = weft__stack_get(&p, NULL);
        touch[i] = weft__stack_top(&p, (uint32_t)s[i]) - pg;
        memset(touch[i], 0xab, pg);
        CHECK(resident(touch[i]));
    }
    CHECK_EQ_U64(atomic_load(&p.resident), 3);
    CHECK_EQ_U64(atomic_load(&p.released), 0);

    weft__stack_put(&p, NULL, (uint32_t)s[0]); /* 3 > keep: released */
    CHECK_EQ_U64(atomic_load(&p.released), 1);
    CHECK_EQ_U64(atomic_load(&p.resident), 2);
    CHECK(!resident(touch[0]));
    CHECK_EQ_INT(touch[0][0], 0);
    CHECK(!(flags_of(&p, s[0]) & WEFT_STK_RESIDENT));

    weft__stack_put(&p, NULL, (uint32_t)s[1]); /* 2 > keep: released */
    CHECK_EQ_U64(atomic_load(&p.released), 2);
    CHECK_EQ_U64(atomic_load(&p.resident), 1);

    weft__stack_put(&p, NULL, (uint32_t)s[2]); /* 1 == keep: kept */
    CHECK_EQ_U64(atomic_load(&p.released), 2);
    CHECK_EQ_U64(atomic_load(&p.resident), 1);
    CHECK(resident(touch[2]));
    CHECK_EQ_INT((unsigned char)touch[2][0], 0xab);

    /* Reuse: the kept stack first; a released one counts again. */
    CHECK_EQ_INT(weft__stack_get(&p, NULL), s[2]);
    CHECK_EQ_U64(atomic_load(&p.resident), 1);
    CHECK_EQ_INT(weft__stack_get(&p, NULL), s[1]);
    CHECK_EQ_U64(atomic_load(&p.resident), 2);
    pool_free(&p);
}

static int in_maps_with_perms(const void *addr, const char *perms)
{
    FILE *f = fopen("/proc/self/maps", "r");
    CHECK_NOT_NULL(f);
    char line[512];
    int hit = 0;
    while (!hit && fgets(line, sizeof line, f)) {
        unsigned long a, b;
        char pr[8];
        if (sscanf(line, "%lx-%lx %7s", &a, &b, pr) == 3 &&
            a <= (uintptr_t)addr && (uintptr_t)addr < b)
            hit = !strcmp(pr, perms);
    }
    fclose(f);
    return hit;
}

static void write_byte(void *addr)
{
    *(volatile char *)addr = 1;
}

/* PROT_NONE guards, as on kernels without MADV_GUARD_INSTALL (forced
 * here; stack_light_guard_page covers the other kind). */
TEST(unit, stack_guard_page)
{
    weft_stack_pool p;
    size_t pg = page_size();
    weft__stack_light_guards(0);
    pool_make(&p, 0, 1, 4, 64 << 10, 100);
    uint64_t budget = weft__stack_guard_budget();
    CHECK_CMP_U64(budget, >, 0);
    int64_t i = weft__stack_get(&p, NULL);
    uint8_t f = flags_of(&p, i);
    CHECK(f & WEFT_STK_GUARDED);
    CHECK(!(f & WEFT_STK_CANARY));
    CHECK_EQ_U64(atomic_load(&p.guarded), 1);
    CHECK_EQ_U64(atomic_load(&p.canaried), 0);
    CHECK_EQ_U64(weft__stack_guard_budget(), budget - 1);

    char *lo = p.base + (size_t)i * p.size;
    CHECK_EQ_PTR(weft__stack_bottom(&p, (uint32_t)i), lo + pg);
    CHECK(in_maps_with_perms(lo, "---p"));
    CHECK(in_maps_with_perms(lo + pg, "rw-p"));
    CHECK_EQ_INT(weft__stack_find_guard(&p, lo), i);
    CHECK_EQ_INT(weft__stack_find_guard(&p, lo + pg - 1), i);
    CHECK_EQ_INT(weft__stack_find_guard(&p, lo + pg), -1);
    /* Below the pool: the fence, no stack's zone. */
    CHECK_EQ_INT(weft__stack_find_guard(&p, p.base - 1), WEFT_STACK_FENCE);
    CHECK_EQ_INT(weft__stack_canary_ok(&p, (uint32_t)i), 1);

    /* Reuse keeps the guard without a second mprotect or budget use. */
    weft__stack_put(&p, NULL, (uint32_t)i);
    CHECK_EQ_INT(weft__stack_get(&p, NULL), i);
    CHECK_EQ_U64(atomic_load(&p.guarded), 1);
    CHECK_EQ_U64(weft__stack_guard_budget(), budget - 1);

    /* Writing the usable bottom is fine; writing the guard page faults. */
    test_child ch;
    test_fork_capture(write_byte, lo + pg, 10, &ch);
    CHECK(WIFEXITED(ch.status) && WEXITSTATUS(ch.status) == 0);
    test_fork_capture(write_byte, lo + pg - 1, 10, &ch);
    if (WIFSIGNALED(ch.status)) {
        CHECK_EQ_INT(WTERMSIG(ch.status), SIGSEGV);
    } else {
        /* Sanitizers catch SIGSEGV themselves, report, and exit. */
        CHECK(TEST_SANITIZED);
        CHECK_NE_INT(WEXITSTATUS(ch.status), 0);
        CHECK_STR_CONTAINS(ch.err, "SEGV");
    }
    pool_free(&p);
}

TEST(unit, stack_canary_when_guard_off)
{
    weft_stack_pool p;
    pool_make(&p, 0, 0, 4, 64 << 10, 100);
    uint64_t budget = weft__stack_guard_budget();
    int64_t i = weft__stack_get(&p, NULL);
    uint8_t f = flags_of(&p, i);
    CHECK(f & WEFT_STK_CANARY);
    CHECK(!(f & WEFT_STK_GUARDED));
    CHECK_EQ_U64(atomic_load(&p.guarded), 0);
    CHECK_EQ_U64(weft__stack_guard_budget(), budget); /* none taken */
    char *bottom = weft__stack_bottom(&p, (uint32_t)i);
    CHECK(in_maps_with_perms(bottom - 1, "rw-p")); /* no guard page */
    CHECK_EQ_INT(weft__stack_canary_ok(&p, (uint32_t)i), 1);
    bottom[3] ^= 0x40; /* the lowest usable bytes are the task's to use */
    CHECK_EQ_INT(weft__stack_canary_ok(&p, (uint32_t)i), 1);
    bottom[-3] ^= 0x40; /* an overflow reaching just below them */
    CHECK_EQ_INT(weft__stack_canary_ok(&p, (uint32_t)i), 0);
    /* Handing the stack out again re-arms its canary. */
    weft__stack_put(&p, NULL, (uint32_t)i);
    CHECK_EQ_INT(weft__stack_get(&p, NULL), i);
    CHECK_EQ_INT(weft__stack_canary_ok(&p, (uint32_t)i), 1);
    pool_free(&p);
}

TEST(unit, stack_small_class_canary)
{
    weft_stack_pool p;
    pool_make(&p, 1, 1, 8, 2048, 100);
    uint64_t budget = weft__stack_guard_budget();
    int64_t a = weft__stack_get(&p, NULL), b = weft__stack_get(&p, NULL);
    CHECK_EQ_U64(weft__stack_guard_budget(), budget); /* never guarded */
    CHECK(flags_of(&p, a) & WEFT_STK_CANARY);
    CHECK(!(flags_of(&p, a) & WEFT_STK_GUARDED));
    CHECK_EQ_U64(atomic_load(&p.canaried), 0); /* counts default class */
    char *lo = p.base + (size_t)b * p.size;
    CHECK_EQ_PTR(weft__stack_bottom(&p, (uint32_t)b), lo + 16);
    CHECK_EQ_INT(weft__stack_find_guard(&p, lo), b);
    CHECK_EQ_INT(weft__stack_find_guard(&p, lo + 15), b);
    CHECK_EQ_INT(weft__stack_find_guard(&p, lo + 16), -1);
    /* b's overflow runs down into a's top; b's canary catches it. */
    CHECK_EQ_INT(weft__stack_canary_ok(&p, (uint32_t)b), 1);
    lo[0] ^= 1;
    CHECK_EQ_INT(weft__stack_canary_ok(&p, (uint32_t)b), 0);
    CHECK_EQ_INT(weft__stack_canary_ok(&p, (uint32_t)a), 1);
    pool_free(&p);
}

TEST_T(unit, stack_guard_budget_exhausted_falls_back_to_canary, 120)
{
    /* Use up the process's guard budget on a pool of tiny stacks, then
     * the next default-class stack gets a canary and is counted. */
    weft__stack_light_guards(0); /* the budget is PROT_NONE guards' */
    uint64_t budget = weft__stack_guard_budget();
    if (budget > 60000)
        TEST_SKIP("vm.max_map_count too large to exhaust quickly");
    weft_stack_pool p;
    size_t pg = page_size();
    uint32_t n = (uint32_t)budget + 3;
    pool_make(&p, 0, 1, n, 2 * pg, 100);
    for (uint32_t k = 0; k < budget; k++) {
        int64_t i = weft__stack_get(&p, NULL);
        CHECK_EQ_INT(i, k);
        if (!(flags_of(&p, i) & WEFT_STK_GUARDED))
            weft_check_fail(__FILE__, __LINE__,
                            "stack %u of %" PRIu64 " not guarded", k, budget);
    }
    CHECK_EQ_U64(weft__stack_guard_budget(), 0);
    CHECK_EQ_U64(atomic_load(&p.guarded), budget);
    for (int k = 0; k < 3; k++) {
        int64_t i = weft__stack_get(&p, NULL);
        CHECK(flags_of(&p, i) & WEFT_STK_CANARY);
        CHECK(!(flags_of(&p, i) & WEFT_STK_GUARDED));
        CHECK_EQ_INT(weft__stack_canary_ok(&p, (uint32_t)i), 1);
    }
    CHECK_EQ_U64(atomic_load(&p.canaried), 3);
    pool_free(&p);
}

TEST(unit, stack_small_page_sized_zero_canary)
{
    /* A small stack of a page or more is laid out like a default one
     * (mem/stack.h): without a guard page (guard_pages 0 here) the top 64
     * bytes of its guard zone are a canary that is never written, only
     * read as zero (so nothing there is written to make it resident:
     * bench memory_small shows the figure; mincore cannot, it counts the
     * shared zero page as present). */
    weft_stack_pool p;
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    pool_make(&p, 1, 0, 8, 4 * pg, 100);
    CHECK_EQ_U64(p.stride, 5 * pg); /* 4 usable pages, the zone added */
    int64_t i = weft__stack_get(&p, NULL);
    char *lo = p.base + (size_t)i * p.stride;
    char *bottom = weft__stack_bottom(&p, (uint32_t)i);
    CHECK_EQ_PTR(bottom, lo + pg);
    CHECK_EQ_U64(weft__stack_top(&p, (uint32_t)i) - bottom, 4 * pg);
    for (int k = 1; k <= 64; k++)
        CHECK_EQ_INT(bottom[-k], 0); /* nothing written */
    CHECK_EQ_INT(weft__stack_canary_ok(&p, (uint32_t)i), 1);
    bottom[-5] ^= 0x20; /* an overflow reaching it */
    CHECK_EQ_INT(weft__stack_canary_ok(&p, (uint32_t)i), 0);
    weft__stack_put(&p, NULL, (uint32_t)i); /* handed out again: re-armed */
    CHECK_EQ_INT(weft__stack_get(&p, NULL), i);
    CHECK_EQ_INT(weft__stack_canary_ok(&p, (uint32_t)i), 1);
    pool_free(&p);
}

/* Lightweight guard pages (MADV_GUARD_INSTALL): every paged stack of both
 * classes gets one, without a mapping of its own or the budget. */
static void light_guard_case(int small, size_t size)
{
    weft_stack_pool p;
    size_t pg = page_size();
    pool_make(&p, small, 1, 4, size, 100);
    uint64_t budget = weft__stack_guard_budget();
    int64_t i = weft__stack_get(&p, NULL);
    if (weft__stack_guard_kind() != WEFT_GUARD_KIND_LIGHT)
        TEST_SKIP("kernel has no MADV_GUARD_INSTALL (Linux < 6.13)");
    CHECK(flags_of(&p, i) & WEFT_STK_GUARDED);
    CHECK_EQ_U64(atomic_load(&p.guarded), 1);
    CHECK_EQ_U64(atomic_load(&p.unguarded), 0);
    CHECK_EQ_U64(weft__stack_guard_budget(), budget); /* none spent */
    char *lo = p.base + (size_t)i * p.stride;
    CHECK_EQ_PTR(weft__stack_bottom(&p, (uint32_t)i), lo + pg);
    CHECK(in_maps_with_perms(lo, "rw-p")); /* no mapping split */
    CHECK_EQ_INT(weft__stack_find_guard(&p, lo), i);
    CHECK_EQ_INT(weft__stack_find_guard(&p, lo + pg), -1);
    CHECK_EQ_INT(weft__stack_find_guard(&p, p.base - 1), WEFT_STACK_FENCE);
    /* Releasing the stack (keep 0) leaves its guard in place. */
    p.keep = 0;
    weft__stack_put(&p, NULL, (uint32_t)i);
    CHECK_EQ_U64(atomic_load(&p.released), 1);
    CHECK_EQ_INT(weft__stack_get(&p, NULL), i);
    test_child ch;
    test_fork_capture(write_byte, lo + pg, 10, &ch);
    CHECK(WIFEXITED(ch.status) && WEXITSTATUS(ch.status) == 0);
    test_fork_capture(write_byte, lo + pg - 1, 10, &ch);
    if (WIFSIGNALED(ch.status)) {
        CHECK_EQ_INT(WTERMSIG(ch.status), SIGSEGV);
    } else {
        CHECK(TEST_SANITIZED);
        CHECK_NE_INT(WEXITSTATUS(ch.status), 0);
        CHECK_STR_CONTAINS(ch.err, "SEGV");
    }
    pool_free(&p);
}

TEST(unit, stack_light_guard_page)
{
    light_guard_case(0, 64 << 10);
}

TEST(unit, stack_small_class_light_guard_page)
{
    light_guard_case(1, 16 << 10);
}

/* Release gives back every page a stack made resident: the bottom pages
 * of a small stack of one page, and the guard zone of a canary-only
 * stack, which the canary reads fault in (on kernels that back read
 * faults with fresh pages). */
static void released_whole(int small, int want_guard, size_t size)
{
    weft_stack_pool p;
    size_t pg = page_size();
    pool_make(&p, small, want_guard, 4, size, 0);
    int64_t i = weft__stack_get(&p, NULL);
    char *lo = p.base + (size_t)i * p.stride;
    char *top = weft__stack_top(&p, (uint32_t)i);
    memset(top - 256, 0x5a, 256);
    memset(weft__stack_bottom(&p, (uint32_t)i), 0x5a, 16);
    CHECK_EQ_INT(weft__stack_canary_ok(&p, (uint32_t)i), 1);
    weft__stack_put(&p, NULL, (uint32_t)i);
    CHECK_EQ_U64(atomic_load(&p.released), 1);
    CHECK_EQ_U64(atomic_load(&p.resident), 0);
    int guarded = flags_of(&p, i) & WEFT_STK_GUARDED;
    for (char *q = guarded ? lo + pg : lo; q < top; q += pg)
        CHECK(!resident(q));
    pool_free(&p);
}

TEST(unit, stack_release_small_one_page)
{
    released_whole(1, 1, 4096 > page_size() ? page_size() : 4096);
    released_whole(1, 0, page_size());
}

TEST(unit, stack_release_canary_zone)
{
    released_whole(0, 0, 64 << 10);
    released_whole(1, 0, 16 << 10);
}

/* A small class under a page shares pages between stacks: nothing is
 * given back, and the stats say it stays resident. */
TEST(unit, stack_packed_small_never_released)
{
    weft_stack_pool p;
    pool_make(&p, 1, 1, 8, 1024, 0);
    CHECK_EQ_INT(p.paged, 0);
    int64_t i = weft__stack_get(&p, NULL);
    weft__stack_put(&p, NULL, (uint32_t)i);
    CHECK_EQ_U64(atomic_load(&p.released), 0);
    CHECK_EQ_U64(atomic_load(&p.resident), 1);
    CHECK_EQ_U64(atomic_load(&p.unguarded), 1);
    pool_free(&p);
}
