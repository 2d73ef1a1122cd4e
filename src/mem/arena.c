#include "arena.h"

#include <sys/mman.h>

size_t weft__arena_add(weft_arena_plan *p, size_t size, size_t align)
{
    size_t off = (p->size + align - 1) & ~(align - 1);
    p->size = off + size;
    return off;
}

void *weft__arena_map(size_t size)
{
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

void weft__arena_unmap(void *base, size_t size)
{
    munmap(base, size);
}
