/*
 * compiler.h - compiler hints shared by every layer.
 *
 * Cache-line size: 64 bytes is the coherence unit on every target weft
 * supports (x86_64, aarch64 server parts, riscv64). Anything written by one
 * thread and read by others goes on its own line (DESIGN.md §4).
 */
#ifndef WEFT_BASE_COMPILER_H
#define WEFT_BASE_COMPILER_H

#include <assert.h>
#include <stddef.h>

#define WEFT_CACHELINE 64
#define weft_likely(x) __builtin_expect(!!(x), 1)
#define weft_unlikely(x) __builtin_expect(!!(x), 0)
#define weft_aligned(n) __attribute__((aligned(n)))
#define weft_noinline __attribute__((noinline))
#define weft_unused __attribute__((unused))
#define weft_cold __attribute__((cold, noinline))
#define weft_noreturn _Noreturn

/* Round x up to a multiple of the power of two a. */
#define weft_align_up(x, a) (((x) + ((a)-1)) & ~((__typeof__(x))(a)-1))

#define WEFT_STATIC_ASSERT(c, m) _Static_assert(c, m)

#if defined(__SANITIZE_ADDRESS__)
#define WEFT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define WEFT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#endif

/* Functions that never return (a task's entry and exit) stay out of
 * TSan's function-entry instrumentation. */
#ifdef WEFT_TSAN
#define WEFT_NO_TSAN __attribute__((no_sanitize_thread))
#else
#define WEFT_NO_TSAN
#endif

#endif
