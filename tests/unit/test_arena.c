/*
 * test_arena.c - huge pages for the arena's metadata (src/mem/arena.c):
 * the arena starts on a huge-page boundary, the metadata before the stacks
 * is one mapping advised MADV_HUGEPAGE (or backed by MAP_HUGETLB), the
 * stacks are not, and weft_stats.huge_pages says which, checked against
 * the kernel's own view in /proc/self/smaps. cfg.huge_pages = 1 on a
 * system without reserved huge pages falls back quietly.
 */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../check.h"
#include "../internal.h"
#include "../../src/mem/arena.h"

/* The mapping holding addr, from /proc/self/smaps: its bounds and its
 * VmFlags line (" rd wr ... hg"). 0 when addr is not mapped. */
static int vma_of(const void *addr, uintptr_t *lo, uintptr_t *hi, char *flags,
                  size_t cap)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    CHECK_NOT_NULL(f);
    char line[512];
    int in = 0, found = 0;
    uintptr_t a = (uintptr_t)addr;
    while (fgets(line, sizeof line, f)) {
        unsigned long s, e;
        if (sscanf(line, "%lx-%lx ", &s, &e) == 2) {
            in = s <= a && a < e;
            if (in) {
                *lo = s;
                *hi = e;
            }
        } else if (in && !strncmp(line, "VmFlags:", 8)) {
            snprintf(flags, cap, "%s", line + 8);
            flags[strcspn(flags, "\n")] = 0;
            strncat(flags, " ", cap - strlen(flags) - 1);
            found = 1;
            break;
        }
    }
    fclose(f);
    return found;
}

static int has_flag(const char *flags, const char *flag)
{
    char want[8];
    snprintf(want, sizeof want, " %s ", flag);
    return strstr(flags, want) != NULL;
}

static long read_long(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = -1;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

static int thp_available(void)
{
    return access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) == 0;
}

/* The runtime's metadata mapping matches what stats report. */
static void check_metadata(weft_rt *rt, int asked_hugetlb)
{
    size_t hs = weft__arena_huge_size();
    /* The stack area starts with the default class's fence page
     * (mem/stack.h), right below its first stack. */
    char *base = rt->arena, *stacks = rt->pool[0].base - rt->pool[0].page;
    CHECK_EQ_U64((uintptr_t)base % hs, 0);
    CHECK_EQ_U64((uintptr_t)(stacks - base) % hs, 0);
    uint64_t huge = test_stats(rt).huge_pages;
    if (!asked_hugetlb || read_long("/proc/sys/vm/nr_hugepages") == 0)
        CHECK_NE_INT(huge, WEFT_HUGE_HUGETLB);
    if (huge != WEFT_HUGE_HUGETLB)
        CHECK_EQ_INT(huge, thp_available() ? WEFT_HUGE_THP : WEFT_HUGE_NONE);

    uintptr_t lo, hi;
    char flags[512];
    CHECK(vma_of(base, &lo, &hi, flags, sizeof flags));
    CHECK_EQ_U64(lo, (uintptr_t)base);
    if (huge == WEFT_HUGE_HUGETLB) {
        /* One hugetlb mapping, exactly the metadata. */
        CHECK(has_flag(flags, "ht"));
        CHECK_EQ_U64(hi, (uintptr_t)stacks);
    } else if (huge == WEFT_HUGE_THP) {
        /* Advised up to the stacks, not beyond. */
        CHECK(has_flag(flags, "hg"));
        CHECK_EQ_U64(hi, (uintptr_t)stacks);
    } else {
        CHECK(!has_flag(flags, "hg"));
    }
    CHECK(vma_of(stacks, &lo, &hi, flags, sizeof flags));
    CHECK(!has_flag(flags, "hg"));
    CHECK(!has_flag(flags, "ht"));
}

static void *touch(void *arg)
{
    return arg;
}

TEST(unit, arena_metadata_transparent_huge_pages)
{
    unsetenv("WEFT_HUGE_PAGES");
    weft_config c;
    weft_config_default(&c);
    c.max_tasks = 4096;
    weft_rt *rt = test_rt_cfg(&c);
    test_run(rt, touch, NULL);
    check_metadata(rt, 0);
    test_rt_destroy_clean(rt);
}

TEST(unit, arena_hugetlb_or_quiet_fallback)
{
    /* With no reserved huge pages (the usual case) MAP_HUGETLB is refused
     * and the metadata falls back to advised normal pages; with some, it
     * may get them. Either way stats and smaps agree, and it runs. */
    CHECK_EQ_INT(setenv("WEFT_HUGE_PAGES", "1", 1), 0);
    weft_config c;
    weft_config_default(&c);
    CHECK_EQ_INT(c.huge_pages, 1);
    c.max_tasks = 4096;
    weft_rt *rt = test_rt_cfg(&c);
    test_run(rt, touch, NULL);
    check_metadata(rt, 1);
    test_rt_destroy_clean(rt);
}

TEST(unit, arena_map_meta_refused_hugetlb_keeps_range)
{
    /* A refused MAP_HUGETLB must leave the whole reservation mapped and
     * usable: write every page of it, then unmap and find nothing. */
    if (read_long("/proc/sys/vm/nr_hugepages") != 0)
        TEST_SKIP("huge pages are reserved: the refusal is not provoked");
    size_t hs = weft__arena_huge_size(), page = (size_t)getpagesize();
    size_t meta = 2 * hs, size = meta + 16 * page;
    int huge = -1;
    char *a = weft__arena_map_meta(size, meta, 1, &huge);
    CHECK_NOT_NULL(a);
    CHECK_EQ_U64((uintptr_t)a % hs, 0);
    CHECK_NE_INT(huge, WEFT_HUGE_HUGETLB);
    for (size_t off = 0; off < size; off += page)
        a[off] = 1;
    uintptr_t lo, hi;
    char flags[512];
    CHECK(vma_of(a + size - 1, &lo, &hi, flags, sizeof flags));
    weft__arena_unmap(a, size);
    CHECK(!vma_of(a, &lo, &hi, flags, sizeof flags));
    CHECK(!vma_of(a + size - 1, &lo, &hi, flags, sizeof flags));
}
