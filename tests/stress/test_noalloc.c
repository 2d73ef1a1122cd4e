/*
 * test_noalloc.c - after weft_rt_create returns, spawning, running,
 * yielding, parking, joining and finishing tasks allocate nothing from the
 * heap (DESIGN.md §3), on any thread.
 *
 * The test binary interposes malloc and its relatives: this file defines
 * them, forwarding to glibc's __libc_* entry points, and counts calls
 * while `counting` is set. The definitions are in the executable, so they
 * take precedence over libc's for every caller in the process (libc's own
 * internal calls included). Sanitizer runtimes interpose malloc
 * themselves, and a second interposer would hand ASan/TSan memory to
 * glibc's free; in those builds the definitions are compiled out and the
 * test skips.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include <unistd.h>

#include "check.h"

#if !TEST_SANITIZED && defined(__GLIBC__)
#define INTERPOSE 1

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

static _Atomic int counting;
static _Atomic uint64_t allocs, frees;

static inline void count(_Atomic uint64_t *c)
{
    if (atomic_load_explicit(&counting, memory_order_relaxed))
        atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

void *malloc(size_t n)
{
    count(&allocs);
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
    count(&allocs);
    return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
    count(&allocs);
    return __libc_realloc(p, n);
}

void free(void *p)
{
    if (p)
        count(&frees);
    __libc_free(p);
}

void *memalign(size_t a, size_t n)
{
    count(&allocs);
    return __libc_memalign(a, n);
}

void *aligned_alloc(size_t a, size_t n)
{
    count(&allocs);
    return __libc_memalign(a, n);
}

int posix_memalign(void **out, size_t a, size_t n)
{
    count(&allocs);
    if (a < sizeof(void *) || (a & (a - 1)))
        return EINVAL;
    void *p = __libc_memalign(a, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

enum { TASKS = 100000, BATCH = 100 };

static void *leaf(void *arg)
{
    weft_yield();
    return arg;
}

static void *parker(void *arg)
{
    /* Joins its sibling: parks until it ends. */
    weft_task t = {(uint64_t)(uintptr_t)arg};
    void *r;
    CHECK_OK(weft_join(t, &r));
    return r;
}

static void *workload(void *arg)
{
    (void)arg;
    weft_task t[BATCH];
    weft_spawn_attr small = WEFT_SPAWN_ATTR_INIT;
    small.stack = WEFT_STACK_SMALL;
    weft_spawn_attr det = WEFT_SPAWN_ATTR_INIT;
    det.flags = WEFT_DETACHED;
    for (uintptr_t done = 0; done < TASKS; done += BATCH) {
        for (uintptr_t i = 0; i < BATCH; i++) {
            if (i % 10 == 9) /* parks joining t[i - 2] */
                CHECK_OK(weft_spawn(NULL, &t[i], parker,
                                    (void *)(uintptr_t)t[i - 2].id, NULL));
            else if (i % 10 == 8)
                CHECK_OK(weft_spawn(NULL, NULL, leaf, NULL, &det));
            else
                CHECK_OK(weft_spawn(NULL, &t[i], leaf, (void *)i,
                                    i % 2 ? &small : NULL));
        }
        weft_yield();
        for (uintptr_t i = 0; i < BATCH; i++) {
            if (i % 10 == 8 || i % 10 == 7)
                continue; /* detached; 7 is joined by its parker */
            void *r;
            CHECK_OK(weft_join(t[i], &r));
            CHECK_EQ_PTR(r, (void *)(i % 10 == 9 ? i - 2 : i));
        }
    }
    return NULL;
}

#else
#define INTERPOSE 0
#endif

TEST_T(stress, no_heap_allocation_after_create, 60)
{
    if (!INTERPOSE)
        TEST_SKIP("malloc interposition is off in sanitizer builds");
#if INTERPOSE
    weft_rt *rt = test_rt(4096);
    atomic_store(&counting, 1);
    void *r = NULL;
    int err = weft_rt_run(rt, workload, NULL, &r);
    weft_stats st;
    int serr = weft_stats_get(rt, &st);
    atomic_store(&counting, 0);
    CHECK_OK(err);
    CHECK_OK(serr);
    CHECK_EQ_U64(st.spawns, TASKS + 1);
    CHECK_EQ_U64(atomic_load(&allocs), 0);
    CHECK_EQ_U64(atomic_load(&frees), 0);
    /* The detached leaves of the last batch may still be queued on the
     * other worker when the main task returns (mesh mode pushes them
     * there): let them end before the clean-teardown check. */
    for (int i = 0; i < 5000 && test_stats(rt).live; i++)
        usleep(1000);
    test_rt_destroy_clean(rt);
#endif
}

TEST(stress, malloc_interposition_counts)
{
    /* The counter above can fail: prove it sees an allocation. */
    if (!INTERPOSE)
        TEST_SKIP("malloc interposition is off in sanitizer builds");
#if INTERPOSE
    atomic_store(&counting, 1);
    void *volatile p = malloc(32);
    free(p);
    atomic_store(&counting, 0);
    CHECK_EQ_U64(atomic_load(&allocs), 1);
    CHECK_EQ_U64(atomic_load(&frees), 1);
#endif
}
