/*
 * summary.c - the active summary tree and the reservation maps.
 *
 * Problem. A wake-up must cost one or two atomic operations from any
 * thread, never allocate, never be lost and never be delivered twice, and a
 * worker must learn cheaply whether anything is signalled. Queues of woken
 * tasks fail the first two (a foreign thread would need a lock or a node).
 *
 * Design. Each task slot has one signal bit; setting it is the wake-up.
 * Bits are grouped 63 to a leaf word, leaves 64 to a root word, roots 64 to
 * a top word. An upper bit says "the word below may be non-zero": it is
 * set whenever that word is non-zero (never missing, or a wake-up is
 * lost), and may be set over an empty word for a while (stale, below).
 * A signaller sets its bit with one fetch_or and climbs only when it
 * turned a word from zero to non-zero; a taker exchanges a whole leaf's
 * bits away and climbs only when it emptied it. Bits are taken by atomic
 * RMWs, so each set bit is handed to exactly one taker.
 *
 * The race (clearing an upper bit). A taker that empties a leaf must clear
 * the leaf's root bit; a signaller may meanwhile set a bit in the now-empty
 * leaf, see old == 0 and set the root bit, and the taker's clear could then
 * erase that set, leaving a non-zero leaf under a clear root bit: a lost
 * wake-up. Resolution: after clearing the root bit the taker re-reads the
 * leaf and sets the root bit again if the leaf is non-zero. Proof: the
 * root RMWs are totally ordered. If the signaller's root OR (B) precedes
 * the taker's AND (D), D reads B's value with acquire, B is a release that
 * follows the signaller's leaf OR (A), so A happens-before the taker's
 * re-read (E), which therefore sees the bit and restores the root bit. If
 * D precedes B, B leaves the root bit set. Either way the leaf stays
 * visible. The same argument covers root -> top, and the reservation maps'
 * "leaf full" transitions (see reserve/release below).
 *
 * The restore is itself a zero -> non-zero transition of the root word
 * and is published upwards like one (clear_up's REFILLED): between the
 * taker's clear and its restore, a second taker may have found the root
 * word zero and cleared its top bit, while the signaller that refilled
 * the leaf found the restored root bit set and did not climb. Without
 * that, the leaf's bits sat under a clear top bit for good (found by the
 * `hot` scenario of bench/active_summary at 4 threads).
 *
 * Stale upper bits. Nothing above keeps an upper bit from outliving the
 * word below, and two interleavings leave one set over an empty word:
 * - the climb comes late: a signaller turns leaf L from 0 to non-zero; a
 *   taker that found L through a root bit not yet cleared by another
 *   taker takes the new bit, clears L's root bit and, the root word
 *   being empty, its top bit; then the signaller climbs and sets both
 *   again, over an empty L;
 * - the restore comes late: taker T1 empties L and clears its root bit;
 *   a signaller refills L and climbs; T1 re-reads L (non-zero); taker T2
 *   empties L, clears the root bit and the top bit; then T1 restores the
 *   root bit (REFILLED) and the top bit, over an empty L.
 * Left alone, such a bit stays until L is filled and emptied again: a
 * runtime whose tasks have all ended keeps a non-zero tree, and its idle
 * workers never sleep (weft__summary_any shows work). Exact bits would
 * need a re-check after every climb on the signal path, and a loop of
 * clears and restores in clear_up. Instead an upper bit is a hint: it is
 * never missing, it may be stale, and whoever finds it stale clears it.
 * weft__summary_take on a leaf that is empty under a set root bit runs
 * leaf_emptied, and weft__summary_find clears a top bit over an empty
 * root word, both through clear_up. Its re-check does not depend on who
 * emptied the word below, so the proof above holds for these clears too:
 * a clear racing with a signal is restored, and a live word never loses
 * its bit. These clears may be left stale by the same races; every stale
 * bit is then a set top bit or sits under one (a non-zero root word
 * always has one), so weft__summary_any stays true and idle workers keep
 * finding and clearing until the tree is exact: a worker sleeps only on
 * zero top words. tools/summarysim.py runs every interleaving of these
 * word steps for a few threads and checks both claims.
 *
 * Orders: signal's leaf OR is a release, paired with the acquire of the
 * taker's exchange, so whatever the signaller wrote before signalling (the
 * task's state) is visible to the worker that takes the bit. Upper-level
 * RMWs are acq_rel for the proof above.
 */
#include "summary.h"

#include <errno.h>

#include "../base/bits.h"
#include "../base/check.h"
#include "../base/compiler.h"

#define ACQ_REL memory_order_acq_rel
#define ACQ memory_order_acquire
#define REL memory_order_release
#define RLX memory_order_relaxed

#ifdef WEFT_DEBUG
void (*weft__summary_hook)(int point);
#define HOOK(point)                                                            \
    do {                                                                       \
        if (weft__summary_hook)                                                \
            weft__summary_hook(point);                                         \
    } while (0)
#else
#define HOOK(point) ((void)0)
#endif

void weft__summary_size(weft_summary *s, uint32_t max_tasks)
{
    s->max_tasks = max_tasks;
    s->leaf_count = weft__summary_leaves(max_tasks);
    s->root_count = weft__summary_roots(s->leaf_count);
    s->top_count = weft__summary_tops(s->root_count);
}

/* The six arrays in layout order, with their lengths in words. */
static void arrays(weft_summary *s, _Atomic uint64_t ***f, uint32_t *n)
{
    _Atomic uint64_t **fields[6] = {&s->top,   &s->root, &s->leaf,
                                    &s->avail, &s->resv, &s->wmap};
    uint32_t counts[6] = {s->top_count,  s->root_count, s->leaf_count,
                          s->root_count, s->leaf_count, s->root_count};
    for (int i = 0; i < 6; i++) {
        f[i] = fields[i];
        n[i] = counts[i];
    }
}

#define LINE_WORDS 8 /* 64-byte lines */

size_t weft__summary_bytes(const weft_summary *s)
{
    _Atomic uint64_t **f[6];
    uint32_t n[6];
    size_t words = 0;
    arrays((weft_summary *)s, f, n);
    for (int i = 0; i < 6; i++)
        words += (n[i] + LINE_WORDS - 1) / LINE_WORDS * LINE_WORDS;
    return words * 8;
}

void weft__summary_place(weft_summary *s, void *mem)
{
    _Atomic uint64_t **f[6];
    uint32_t n[6];
    _Atomic uint64_t *p = mem;
    arrays(s, f, n);
    for (int i = 0; i < 6; i++) {
        *f[i] = p;
        p += (n[i] + LINE_WORDS - 1) / LINE_WORDS * LINE_WORDS;
    }
}

void weft__summary_init(weft_summary *s)
{
    uint32_t leaves = s->leaf_count;
    for (uint32_t l = 0; l < leaves; l++) {
        uint64_t w = WEFT_LEAF_YIELD; /* bit 63 is never a slot */
        uint32_t first = l * WEFT_LEAF_SLOTS;
        for (uint32_t b = 0; b < WEFT_LEAF_SLOTS; b++)
            if (first + b >= s->max_tasks)
                w |= UINT64_C(1) << b;
        /* Only the last leaf has slots past max_tasks; the rest start 0. */
        if (w != WEFT_LEAF_YIELD)
            atomic_store_explicit(&s->resv[l], w, RLX);
        else
            atomic_store_explicit(&s->resv[l], WEFT_LEAF_YIELD, RLX);
    }
    for (uint32_t j = 0; j < s->root_count; j++) {
        uint32_t n = leaves - j * 64 < 64 ? leaves - j * 64 : 64;
        uint64_t w = n == 64 ? ~UINT64_C(0) : (UINT64_C(1) << n) - 1;
        atomic_store_explicit(&s->avail[j], w, RLX);
    }
}

/* Set bit b of *w; returns 1 when *w was zero. */
static int set_up(_Atomic uint64_t *w, uint64_t bit)
{
    return atomic_fetch_or_explicit(w, bit, ACQ_REL) == 0; /* pairs with
                                                    clear_up's AND */
}

/* What clear_up did to the word. */
enum { KEPT = 0, EMPTIED = 1, REFILLED = 2 };

/* Clear `bit` of *w after the word below (`below`) was emptied; restore it
 * if `below` became non-zero meanwhile (the race in the header comment).
 * Returns EMPTIED when *w became zero and stayed so (the caller clears
 * the level above), REFILLED when the restore turned *w from zero back to
 * non-zero (the caller must publish that upwards like any other zero to
 * non-zero transition: between our clear and our restore, another taker
 * may have seen *w zero and cleared the level above, and the signaller
 * that refilled `below` saw our restored bit and did not climb), KEPT
 * otherwise. */
static int clear_up(_Atomic uint64_t *w, uint64_t bit, _Atomic uint64_t *below,
                    uint64_t below_mask)
{
    uint64_t old = atomic_fetch_and_explicit(w, ~bit, ACQ_REL); /* pairs
                                                with set_up's OR */
    HOOK(WEFT_SUMHOOK_CLEARED);
    if (atomic_load_explicit(below, ACQ) & below_mask) {
        HOOK(WEFT_SUMHOOK_RESTORE);
        if (atomic_fetch_or_explicit(w, bit, ACQ_REL) == 0)
            return REFILLED;
        return KEPT;
    }
    return (old & ~bit) == 0 ? EMPTIED : KEPT;
}

/* Leaf l just became zero: clear its root bit, and the root's top bit
 * if the root word emptied too (each with the re-check of clear_up). */
static void leaf_emptied(weft_summary *s, uint32_t l)
{
    uint32_t r = l / 64;
    uint64_t tbit = UINT64_C(1) << (r % 64);
    switch (clear_up(&s->root[r], UINT64_C(1) << (l % 64), &s->leaf[l],
                     ~UINT64_C(0))) {
    case EMPTIED:
        /* The top word has nothing above it: a REFILLED top needs no
         * further publication. */
        clear_up(&s->top[r / 64], tbit, &s->root[r], ~UINT64_C(0));
        break;
    case REFILLED:
        set_up(&s->top[r / 64], tbit);
        break;
    }
}

/* Leaf l just became non-zero: publish it upwards. */
static void leaf_filled(weft_summary *s, uint32_t l)
{
    if (set_up(&s->root[l / 64], UINT64_C(1) << (l % 64)))
        set_up(&s->top[l / 4096], UINT64_C(1) << ((l / 64) % 64));
}

int weft__summary_signal(weft_summary *s, uint32_t slot)
{
    uint32_t l = slot / WEFT_LEAF_SLOTS;
    uint64_t bit = UINT64_C(1) << (slot % WEFT_LEAF_SLOTS);
    /* Release: the task's state written before the signal is visible to
     * the taker (pairs with weft__summary_take's acquire exchange). */
    uint64_t old = atomic_fetch_or_explicit(&s->leaf[l], bit, REL);
    if (old & WEFT_LEAF_SIGNALS)
        return 0;
    if (!old) { /* a set yield bit already published the leaf */
        HOOK(WEFT_SUMHOOK_CLIMB);
        leaf_filled(s, l);
    }
    return 1;
}

uint64_t weft__summary_take(weft_summary *s, uint32_t l)
{
    /* Acquire: pairs with the release OR in weft__summary_signal. The
     * yield bit is left in place. */
    uint64_t old =
        atomic_fetch_and_explicit(&s->leaf[l], WEFT_LEAF_YIELD, ACQ_REL);
    uint64_t got = old & WEFT_LEAF_SIGNALS;
    /* We emptied it, or found it empty under a set root bit: a stale bit
     * ("Stale upper bits" above), which we clear like an emptier. The
     * load is only a filter: clear_up's RMWs carry the proof. */
    if (got ? !(old & WEFT_LEAF_YIELD)
            : !old && (atomic_load_explicit(&s->root[l / 64], RLX) &
                       (UINT64_C(1) << (l % 64))))
        leaf_emptied(s, l);
    return got;
}

int weft__summary_yield_set(weft_summary *s, uint32_t l)
{
    /* Release: the yield queue's contents are published before the bit
     * (pairs with the acquire of a thief's take or load). */
    uint64_t old =
        atomic_fetch_or_explicit(&s->leaf[l], WEFT_LEAF_YIELD, ACQ_REL);
    if (old)
        return 0;
    leaf_filled(s, l);
    return 1;
}

void weft__summary_yield_clear(weft_summary *s, uint32_t l)
{
    uint64_t old =
        atomic_fetch_and_explicit(&s->leaf[l], ~WEFT_LEAF_YIELD, ACQ_REL);
    if (old == WEFT_LEAF_YIELD)
        leaf_emptied(s, l);
}

/* Try to reserve leaf l for a worker. */
static int claim_leaf(weft_summary *s, uint32_t l)
{
    uint64_t bit = UINT64_C(1) << (l % 64);
    return !(atomic_fetch_or_explicit(&s->wmap[l / 64], bit, ACQ_REL) & bit);
}

int64_t weft__summary_reserve_worker(weft_summary *s, uint32_t want)
{
    if (want < s->leaf_count && claim_leaf(s, want))
        return want;
    for (uint32_t j = 0; j < s->root_count; j++) {
        uint64_t w = atomic_load_explicit(&s->wmap[j], RLX);
        for (;;) {
            uint64_t free_bits = ~w;
            uint32_t n = s->leaf_count - j * 64;
            if (n < 64)
                free_bits &= (UINT64_C(1) << n) - 1;
            if (!free_bits)
                break;
            uint64_t bit = free_bits & -free_bits;
            if (atomic_compare_exchange_weak_explicit(&s->wmap[j], &w, w | bit,
                                                      ACQ_REL, RLX))
                return (int64_t)j * 64 + weft_ctz64(bit);
        }
    }
    return -EAGAIN;
}

void weft__summary_release_worker(weft_summary *s, uint32_t leaf)
{
    uint64_t bit = UINT64_C(1) << (leaf % 64);
    uint64_t old =
        atomic_fetch_and_explicit(&s->wmap[leaf / 64], ~bit, ACQ_REL);
    if (weft_unlikely(!(old & bit)))
        weft__die("summary", "release of worker leaf %u, not reserved", leaf);
}

uint32_t weft__summary_find(weft_summary *s, uint32_t *cursor)
{
    uint32_t start = *cursor % s->leaf_count;
    uint32_t tstart = start / 4096;
    for (uint32_t i = 0; i <= s->top_count; i++) {
        uint32_t t = (tstart + i) % s->top_count;
        uint64_t tw = atomic_load_explicit(&s->top[t], RLX);
        unsigned from = i == 0 ? (start / 64) % 64 : 0;
        while (tw) {
            unsigned tb = weft_next_bit(tw, from);
            uint32_t r = t * 64 + tb;
            uint64_t rw = atomic_load_explicit(&s->root[r], RLX);
            if (rw) {
                unsigned lb = weft_next_bit(rw, r == start / 64 ? start : 0);
                uint32_t l = r * 64 + lb;
                *cursor = l + 1;
                return l;
            }
            /* A top bit over an empty root word is stale ("Stale upper
             * bits" above): clear it, with the re-check of clear_up. */
            clear_up(&s->top[t], UINT64_C(1) << tb, &s->root[r], ~UINT64_C(0));
            tw &= ~(UINT64_C(1) << tb);
        }
    }
    return UINT32_MAX;
}

/*
 * Reservation. A slot is reserved by CAS-setting a zero bit of its leaf's
 * resv word. The leaf that becomes full clears its avail bit, then re-reads
 * resv and sets the avail bit again if a release made room meanwhile; a
 * release that turns a full leaf non-full sets the avail bit. This is
 * clear_up/set_up with "full" in the role of "empty", and the same proof
 * applies.
 */
#define FULL (~UINT64_C(0))

/* Take up to n free slots of leaf l, lowest first: their bits (slot
 * l * 63 + bit), 0 when the leaf is full. */
static inline uint64_t take_in_leaf(weft_summary *s, uint32_t l, unsigned n)
{
    uint64_t w = atomic_load_explicit(&s->resv[l], RLX);
    while (w != FULL) {
        uint64_t got = 0, free_bits = ~w;
        for (unsigned i = 0; i < n && free_bits; i++) {
            uint64_t bit = weft__slot_pick(free_bits);
            got |= bit;
            free_bits &= ~bit;
        }
        /* Acquire: pairs with the release of a slot (fetch_and below), so
         * the slot's previous user's writes (its TCB) happen-before ours. */
        if (atomic_compare_exchange_weak_explicit(&s->resv[l], &w, w | got, ACQ,
                                                  RLX)) {
            if ((w | got) == FULL) {
                uint64_t abit = UINT64_C(1) << (l % 64);
                uint64_t old = atomic_fetch_and_explicit(
                    &s->avail[l / 64], ~abit, ACQ_REL); /* pairs with the
                                            release's fetch_or below */
                (void)old;
                if (atomic_load_explicit(&s->resv[l], ACQ) != FULL)
                    atomic_fetch_or_explicit(&s->avail[l / 64], abit, ACQ_REL);
            }
            return got;
        }
    }
    return 0;
}

static inline uint64_t reserve_n(weft_summary *s, uint32_t *hint, unsigned n)
{
    if (*hint >= s->leaf_count)
        *hint = 0;
    uint32_t l = *hint;
    uint64_t got = take_in_leaf(s, l, n);
    if (weft_likely(got))
        return got;
    /* The hint leaf is full: look for a leaf with room, from the hint on. */
    uint32_t r0 = l / 64;
    for (uint32_t i = 0; i <= s->root_count; i++) {
        uint32_t r = (r0 + i) % s->root_count;
        uint64_t aw = atomic_load_explicit(&s->avail[r], ACQ);
        while (aw) {
            uint32_t cand = r * 64 + weft_ctz64(aw);
            got = take_in_leaf(s, cand, n);
            if (got) {
                *hint = cand;
                return got;
            }
            aw &= aw - 1;
        }
    }
    /* A releaser sets a leaf's avail bit just after the fetch_and that
     * made room: for as long as it is descheduled between the two, the
     * leaf has room and no avail bit. Before answering "full", read every
     * leaf (a runtime at max_tasks pays this on a failing reserve only;
     * without it, spawns failed with -EAGAIN while slots were free:
     * stress.slots_reclaim_races_spawns_and_reaps). */
    for (uint32_t i = 0; i < s->leaf_count; i++) {
        got = take_in_leaf(s, i, n);
        if (got) {
            *hint = i;
            return got;
        }
    }
    return 0;
}

int64_t weft__summary_reserve(weft_summary *s, uint32_t *hint)
{
    uint64_t got = reserve_n(s, hint, 1);
    if (!got)
        return -EAGAIN;
    return (int64_t)*hint * WEFT_LEAF_SLOTS + weft_ctz64(got);
}

uint64_t weft__summary_reserve_batch(weft_summary *s, uint32_t *hint,
                                     unsigned n)
{
    return reserve_n(s, hint, n);
}

void weft__summary_release_batch(weft_summary *s, uint32_t l, uint64_t bits)
{
    /* Release: the slots' last users' writes happen-before the next
     * reserver's (pairs with the acquire CAS in take_in_leaf and the
     * queue that hands the new task over). */
    uint64_t old = atomic_fetch_and_explicit(&s->resv[l], ~bits, ACQ_REL);
    if (weft_unlikely((old & bits) != bits))
        weft__die("summary", "release of slot %u, which is not reserved",
                  l * WEFT_LEAF_SLOTS + weft_ctz64(bits & ~old));
    if (old == FULL)
        atomic_fetch_or_explicit(&s->avail[l / 64], UINT64_C(1) << (l % 64),
                                 ACQ_REL); /* pairs with take_in_leaf's
                                              fetch_and */
}

void weft__summary_release(weft_summary *s, uint32_t slot)
{
    weft__summary_release_batch(s, slot / WEFT_LEAF_SLOTS,
                                UINT64_C(1) << (slot % WEFT_LEAF_SLOTS));
}

uint64_t weft__summary_snapshot(const weft_summary *s)
{
    uint64_t acc = 0;
    for (uint32_t i = 0; i < s->top_count; i++)
        acc |= atomic_load_explicit(&s->top[i], ACQ);
    for (uint32_t i = 0; i < s->root_count; i++)
        acc |= atomic_load_explicit(&s->root[i], ACQ);
    for (uint32_t i = 0; i < s->leaf_count; i++)
        acc |= atomic_load_explicit(&s->leaf[i], ACQ);
    return acc;
}
