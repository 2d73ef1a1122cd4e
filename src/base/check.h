/*
 * check.h - debug assertions and the one way the library aborts.
 *
 * weft never aborts on bad input (that is an error code); it aborts only on
 * a broken invariant, after one line on stderr that starts with the module
 * name and names the task when one is known: "weft: stack: stack overflow
 * in task 'worker' (slot 17, 262144-byte stack)". weft__die formats that
 * line with no allocation and one write(2), so it is safe in a signal
 * handler.
 *
 * WEFT_DEBUG builds (the test builds) also check calling contexts and
 * state transitions with weft_assert; release builds compile them out.
 */
#ifndef WEFT_BASE_CHECK_H
#define WEFT_BASE_CHECK_H

#include "compiler.h"

/* Print "weft: <module>: <message>" (printf-style subset: %s %u %lu %zu
 * %x %lx %p) and abort. Only the first caller prints: one that comes while
 * another thread is dying waits for that abort (weft__die_wait), so the
 * process ends with one line and SIGABRT. Async-signal-safe. Any
 * context. */
weft_noreturn void weft__die(const char *module, const char *fmt, ...)
    __attribute__((cold, format(printf, 2, 3)));

/* 1 once some thread has entered weft__die: the process is about to
 * abort. Signal safe. */
int weft__dying(void);

/* Wait, never returning, for the thread in weft__die to abort the
 * process. Signal safe. */
weft_noreturn void weft__die_wait(void);

/* Format into buf like weft__die; returns the length. Signal-safe. */
size_t weft__fmt(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef WEFT_DEBUG
#define weft_assert(module, cond)                                              \
    do {                                                                       \
        if (weft_unlikely(!(cond)))                                            \
            weft__die(module, "%s:%u: assertion failed: %s", __FILE__,         \
                      (unsigned)__LINE__, #cond);                              \
    } while (0)
#else
#define weft_assert(module, cond) ((void)0)
#endif

#endif
