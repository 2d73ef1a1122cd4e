/*
 * atomic.h - the atomics vocabulary: <stdatomic.h> with explicit orders
 * only (STYLE.md practice 7), a CPU relax hint for spin loops, and
 * tagged-pointer helpers.
 */
#ifndef WEFT_BASE_ATOMIC_H
#define WEFT_BASE_ATOMIC_H

#include <stdatomic.h>
#include <stdint.h>

#define weft_load_relaxed(p) atomic_load_explicit(p, memory_order_relaxed)
#define weft_store_relaxed(p, v)                                               \
    atomic_store_explicit(p, v, memory_order_relaxed)

/* A hint to the core that this is a spin-wait iteration. */
static inline void weft_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#elif defined(__riscv)
    __asm__ __volatile__(".insn i 0x0F, 0, x0, x0, 0x010" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

/* Tagged pointers: objects that travel through a tagged word are at least
 * 8-byte aligned, so the low 3 bits carry a small state. */
#define WEFT_TAG_MASK ((uintptr_t)7)
static inline uintptr_t weft_tag(const void *p, uintptr_t tag)
{
    return (uintptr_t)p | tag;
}
static inline void *weft_untag(uintptr_t w)
{
    return (void *)(w & ~WEFT_TAG_MASK);
}
static inline uintptr_t weft_tagof(uintptr_t w)
{
    return w & WEFT_TAG_MASK;
}

#endif
