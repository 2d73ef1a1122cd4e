/*
 * arena.c - mapping the runtime's one reservation (arena.h).
 *
 * Huge pages for the metadata. The metadata (everything before the stacks:
 * runtime header, workers, summary words, TCBs, queue links, stack maps)
 * is read on every scheduling decision from every worker; with 4 KiB pages
 * a large runtime's working set spans many TLB entries. The arena therefore
 * starts on a huge-page boundary and the metadata region, padded by the
 * caller to whole huge pages, is
 *   - asked for with MAP_HUGETLB when the caller says so (cfg.huge_pages):
 *     the pages come from the pool the administrator reserved
 *     (/proc/sys/vm/nr_hugepages). Mapped without MAP_NORESERVE, so the
 *     kernel reserves every page at mmap time or refuses: a MAP_NORESERVE
 *     hugetlb mapping would SIGBUS on first touch when the pool is empty;
 *   - otherwise, or when that is refused, advised MADV_HUGEPAGE, which
 *     transparent huge pages in "madvise" mode (the common default) need.
 * Both fall back quietly; the outcome is reported in weft_stats.huge_pages.
 * The stacks stay on normal pages: they are guarded, released with
 * MADV_DONTNEED and mostly sparse, all of which want 4 KiB granularity.
 */
#include "arena.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

#include "weft.h"

#define RW (PROT_READ | PROT_WRITE)
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)

size_t weft__arena_add(weft_arena_plan *p, size_t size, size_t align)
{
    size_t off = (p->size + align - 1) & ~(align - 1);
    p->size = off + size;
    return off;
}

void *weft__arena_map(size_t size)
{
    void *m = mmap(NULL, size, RW, ANON | MAP_NORESERVE, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

void weft__arena_unmap(void *base, size_t size)
{
    munmap(base, size);
}

/* Relaxed: every thread computes the same value; a race only repeats the
 * read of /proc/meminfo. */
static _Atomic size_t huge_size;

size_t weft__arena_huge_size(void)
{
    size_t hs = atomic_load_explicit(&huge_size, memory_order_relaxed);
    if (hs)
        return hs;
    hs = (size_t)2 << 20;
    FILE *f = fopen("/proc/meminfo", "re");
    if (f) {
        char line[128];
        unsigned long kib;
        while (fgets(line, sizeof line, f)) {
            if (sscanf(line, "Hugepagesize: %lu kB", &kib) == 1) {
                if (kib >= 4 && !(kib & (kib - 1)) && kib <= (1ul << 30))
                    hs = (size_t)kib << 10;
                break;
            }
        }
        fclose(f);
    }
    atomic_store_explicit(&huge_size, hs, memory_order_relaxed);
    return hs;
}

/* Replace [base, base + meta) of our own reservation by reserved huge
 * pages; 1 when done. A refusal (empty pool: ENOMEM) comes from the
 * reservation, which Linux makes before it touches the old mapping, so the
 * range is still ours. Should a kernel have unmapped it anyway, it is
 * mapped again; MAP_FIXED_NOREPLACE never clobbers a mapping another
 * thread placed in the gap meanwhile. */
static int hugetlb_over(char *base, size_t meta)
{
    void *h = mmap(base, meta, RW, ANON | MAP_FIXED | MAP_HUGETLB, -1, 0);
    if (h == base)
        return 1;
#ifdef MAP_FIXED_NOREPLACE
    void *again =
        mmap(base, meta, RW, ANON | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    /* A kernel before 4.17 takes the flag as a hint: the range was still
     * mapped and this landed elsewhere. */
    if (again != MAP_FAILED && again != base)
        munmap(again, meta);
#endif
    return 0;
}

void *weft__arena_map_meta(size_t size, size_t meta, int hugetlb, int *huge)
{
    size_t hs = weft__arena_huge_size();
    /* Reserve one huge page more, then trim to a huge-page boundary. */
    char *m = mmap(NULL, size + hs, RW, ANON | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    uintptr_t lo = (uintptr_t)m, a = (lo + hs - 1) & ~(uintptr_t)(hs - 1);
    if (a > lo)
        munmap(m, a - lo);
    if (lo + hs > a)
        munmap((char *)a + size, lo + hs - a);
    char *base = (char *)a;
    *huge = WEFT_HUGE_NONE;
    if (meta && hugetlb && hugetlb_over(base, meta))
        *huge = WEFT_HUGE_HUGETLB;
    else if (meta && madvise(base, meta, MADV_HUGEPAGE) == 0)
        *huge = WEFT_HUGE_THP;
    return base;
}
