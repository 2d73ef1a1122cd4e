/*
 * arena.h - the one reservation a runtime owns.
 *
 * A runtime's memory is planned as a list of regions (size, alignment),
 * laid out in order in one mmap(MAP_NORESERVE) reservation: the kernel
 * commits pages only when touched, so a runtime sized for a million tasks
 * costs address space, not memory, until tasks run. Regions are page- or
 * line-aligned as asked. The caller (rt/rt.c) decides the order (DESIGN.md
 * §3): summary words, reservation maps, TCBs, then stacks. The metadata
 * before the stacks may sit on huge pages (arena.c).
 */
#ifndef WEFT_MEM_ARENA_H
#define WEFT_MEM_ARENA_H

#include <stddef.h>

typedef struct weft_arena_plan {
    size_t size; /* running total */
} weft_arena_plan;

/* Add a region of `size` bytes aligned to `align` (a power of two);
 * returns its offset. */
size_t weft__arena_add(weft_arena_plan *p, size_t size, size_t align);

/* Map the planned size; NULL on failure (errno set). Creator only. */
void *weft__arena_map(size_t size);
void weft__arena_unmap(void *base, size_t size);

/* The huge page size (the system's default hugetlb size, else 2 MiB): the
 * alignment of the arena and of the end of its metadata. Any thread. */
size_t weft__arena_huge_size(void);

/* Map the planned size starting on a huge-page boundary, its first `meta`
 * bytes (a multiple of weft__arena_huge_size()) on huge pages: reserved
 * ones (MAP_HUGETLB) when `hugetlb` and the system has them, else advised
 * MADV_HUGEPAGE; *huge gets the outcome, a WEFT_HUGE_* value (weft.h).
 * NULL on failure (errno set). Creator only. */
void *weft__arena_map_meta(size_t size, size_t meta, int hugetlb, int *huge);

#endif
