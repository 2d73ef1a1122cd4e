/*
 * summary.h - the active summary tree and the reservation maps
 * (DESIGN.md §5). The words live in the runtime's arena; this module only
 * sees their addresses and knows nothing of tasks or workers beyond slot
 * and leaf numbers.
 *
 * Slot s lives in leaf s / 63 at bit s % 63. A leaf word's bits 0-62 are
 * the signal bits of its slots; bit 63 is reserved for the yield bit of the
 * worker that owns the leaf. Root word j bit k is set while leaf 64j+k is
 * non-zero, and top word t bit k while root word 64t+k is non-zero (an
 * upper bit may also be left set over an empty word for a while, until a
 * finder clears it: summary.c, "Stale upper bits"): the top level lets a
 * worker learn "nothing is signalled" from one word for up to 258,048
 * slots (five words for a million), instead of scanning every root word.
 *
 * Beside it, the reservation maps: resv[leaf] has bit b set while slot
 * 63*leaf+b is reserved (bit 63 and bits past max_tasks are set forever),
 * and avail[j] bit k is set while leaf 64j+k has a free slot. These two are
 * the task-slot allocator: no free list, no lock.
 */
#ifndef WEFT_MEM_SUMMARY_H
#define WEFT_MEM_SUMMARY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define WEFT_LEAF_SLOTS 63u

/* Of the free slots b (non-zero) of a leaf, the one a reserver takes
 * first (a one-bit mask): the lowest even one, else the lowest. Hot TCBs
 * are 32 bytes, two to a cache line (slots 2k and 2k+1), and tasks made
 * one after another are the ones most likely to run at once on different
 * workers (a spawner's and its thieves', yielders spawned together):
 * lowest-first put them two to a line, and every switch of one took the
 * line from the other's worker. Even-first gives each of 32 consecutive
 * slots a line of its own (docs/decisions/0013, "A shared line"). */
static inline uint64_t weft__slot_pick(uint64_t b)
{
    uint64_t even = b & UINT64_C(0x5555555555555555);
    uint64_t from = even ? even : b;
    return from & -from;
}
#define WEFT_LEAF_SIGNALS ((UINT64_C(1) << 63) - 1)
#define WEFT_LEAF_YIELD (UINT64_C(1) << 63)

typedef struct weft_summary {
    _Atomic uint64_t *top;   /* top_count words over the root words */
    _Atomic uint64_t *root;  /* root_count words over the leaf words */
    _Atomic uint64_t *leaf;  /* leaf_count signal words */
    _Atomic uint64_t *avail; /* root_count words: leaf has a free slot */
    _Atomic uint64_t *resv;  /* leaf_count words: reserved slots */
    _Atomic uint64_t *wmap;  /* root_count words: leaf reserved by a
                                worker (for its yield bit) */
    uint32_t max_tasks;
    uint32_t leaf_count;
    uint32_t root_count;
    uint32_t top_count;
} weft_summary;

/* Word counts for a given max_tasks (all derived; see arena.c). */
static inline uint32_t weft__summary_leaves(uint32_t max_tasks)
{
    return (max_tasks + WEFT_LEAF_SLOTS - 1) / WEFT_LEAF_SLOTS;
}
static inline uint32_t weft__summary_roots(uint32_t leaves)
{
    return (leaves + 63) / 64;
}
static inline uint32_t weft__summary_tops(uint32_t roots)
{
    return (roots + 63) / 64;
}

/* Set the word counts for max_tasks (leaf, root, top). */
void weft__summary_size(weft_summary *s, uint32_t max_tasks);

/* Bytes the words of a sized summary take, laid out in the order of
 * DESIGN.md §3 (top, root, leaf words, then the reservation maps), each
 * array on its own cache lines. */
size_t weft__summary_bytes(const weft_summary *s);

/* Point the word arrays of a sized summary into mem (line aligned, zeroed,
 * weft__summary_bytes long). */
void weft__summary_place(weft_summary *s, void *mem);

/* Initialise freshly mapped (zeroed) words: mark bits past max_tasks and
 * every leaf's bit 63 reserved, set avail. Creator only. */
void weft__summary_init(weft_summary *s);

/* Set slot's signal bit. Returns 1 when this made its leaf non-zero (the
 * caller then wakes one sleeping worker), 0 otherwise, including when the
 * bit was already set: a repeated signal costs one atomic OR. Any thread,
 * including foreign ones; signal safe. */
int weft__summary_signal(weft_summary *s, uint32_t slot);

/* Take every signal bit of leaf `leaf` at once; returns them (bits 0-62).
 * Each set bit is returned to exactly one taker. A leaf found empty under
 * a set root bit has that stale bit cleared (summary.c, "Stale upper
 * bits"). Any thread. */
uint64_t weft__summary_take(weft_summary *s, uint32_t leaf);

/* Find a leaf with signals, scanning from a rotating start `*cursor` (the
 * caller's, updated). Returns the leaf number or UINT32_MAX if the tree
 * shows none. The leaf may turn out empty (a stale root bit, which the
 * caller's weft__summary_take then clears); stale top bits over empty
 * root words are cleared on the way. Any thread. */
uint32_t weft__summary_find(weft_summary *s, uint32_t *cursor);

/* Cheap check before weft__summary_find: does any top word show a
 * signal? Relaxed; the sleep protocol re-checks under its fences. Any
 * thread. */
static inline int weft__summary_any(const weft_summary *s)
{
    for (uint32_t i = 0; i < s->top_count; i++)
        if (atomic_load_explicit(&s->top[i], memory_order_relaxed))
            return 1;
    return 0;
}

/* Set / clear the yield bit (63) of leaf l: set when the owning worker's
 * yield queue becomes non-empty, cleared when it drains. Set returns 1 if
 * that made the leaf non-zero (the caller may wake a worker). Any thread
 * (in practice the owning worker). */
int weft__summary_yield_set(weft_summary *s, uint32_t l);
void weft__summary_yield_clear(weft_summary *s, uint32_t l);

/* Reserve a leaf for a worker (its yield bit, and where it reserves task
 * slots first): `want` if free, else the lowest free one; -EAGAIN when
 * every leaf is taken. Release aborts on a leaf not reserved. Any
 * thread. */
int64_t weft__summary_reserve_worker(weft_summary *s, uint32_t want);
void weft__summary_release_worker(weft_summary *s, uint32_t leaf);

/* Reserve a free slot, preferring leaf *hint (updated to the leaf used).
 * Returns the slot, or -EAGAIN when all max_tasks are reserved (the maps
 * are left as they were). Any thread. */
int64_t weft__summary_reserve(weft_summary *s, uint32_t *hint);

/* 1 if slot is reserved in the map (a snapshot). Any thread. */
static inline int weft__summary_reserved(const weft_summary *s, uint32_t slot)
{
    return (atomic_load_explicit(&s->resv[slot / WEFT_LEAF_SLOTS],
                                 memory_order_relaxed) >>
            (slot % WEFT_LEAF_SLOTS)) &
           1;
}

/* Release a reserved slot. Aborts if it was not reserved. Any thread. */
void weft__summary_release(weft_summary *s, uint32_t slot);

/* The same for up to n slots of one leaf at once (a worker's slot cache,
 * sched/slots.c): returns their bits in leaf *hint (slot = *hint * 63 +
 * bit), updating *hint to the leaf used, or 0 when all max_tasks are
 * reserved. Release gives back bits of leaf l, all reserved (else it
 * aborts). Any thread. */
uint64_t weft__summary_reserve_batch(weft_summary *s, uint32_t *hint,
                                     unsigned n);
void weft__summary_release_batch(weft_summary *s, uint32_t l, uint64_t bits);

#ifdef WEFT_DEBUG
/* Test-only (debug builds): when set, called with a WEFT_SUMHOOK_* point
 * at the two windows of the stale-bit races (see
 * summary.c, "Stale upper bits"), so that a test can run the other side
 * of the race there, or widen the window with a delay. Set it only while
 * no other thread uses a tree. */
enum {
    WEFT_SUMHOOK_CLIMB,   /* signal: the leaf went 0 -> non-zero, the
                             root bit is not set yet */
    WEFT_SUMHOOK_CLEARED, /* clear_up: the upper bit is cleared, the
                             word below not re-read yet */
    WEFT_SUMHOOK_RESTORE, /* clear_up: the word below was seen non-zero,
                             the upper bit is not restored yet */
};
extern void (*weft__summary_hook)(int point);
#endif

/* OR of every summary word (top, root, leaf, yield bits included): zero
 * when nothing is signalled, no yield queue is flagged and finders have
 * cleared any stale upper bit. For tests and idle checks; not atomic as
 * a whole. */
uint64_t weft__summary_snapshot(const weft_summary *s);

#endif
