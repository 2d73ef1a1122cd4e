/*
 * bits.h - bit-scan helpers for the 64-bit bitmap words of the summary tree
 * and the reservation maps.
 */
#ifndef WEFT_BASE_BITS_H
#define WEFT_BASE_BITS_H

#include <stdint.h>

/* Index of the lowest set bit; w must be non-zero. */
static inline unsigned weft_ctz64(uint64_t w)
{
    return (unsigned)__builtin_ctzll(w);
}

/* Lowest set bit of w at or after bit `from` (wrapping), or 64 if w == 0.
 * The rotating start keeps low bits from being favoured (DESIGN.md §5). */
static inline unsigned weft_next_bit(uint64_t w, unsigned from)
{
    if (!w)
        return 64;
    uint64_t hi = w & (~UINT64_C(0) << (from & 63));
    return weft_ctz64(hi ? hi : w);
}

static inline unsigned weft_popcount64(uint64_t w)
{
    return (unsigned)__builtin_popcountll(w);
}

#endif
