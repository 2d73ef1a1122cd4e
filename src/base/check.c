/*
 * check.c - the abort path: a tiny signal-safe formatter and weft__die.
 *
 * stdio is neither signal-safe nor allocation-free, and the stack-overflow
 * handler runs on a small alternate stack, so the line is formatted by hand
 * into a fixed buffer and written with one write(2).
 */
#include "check.h"

#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

static void put(char *buf, size_t cap, size_t *n, char c)
{
    if (*n + 1 < cap)
        buf[*n] = c;
    (*n)++;
}

static void put_num(char *buf, size_t cap, size_t *n, uint64_t v, unsigned base)
{
    char tmp[24];
    int k = 0;
    do {
        tmp[k++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (k)
        put(buf, cap, n, tmp[--k]);
}

static size_t vfmt(char *buf, size_t cap, const char *f, va_list ap)
{
    size_t n = 0;
    for (; *f; f++) {
        if (*f != '%') {
            put(buf, cap, &n, *f);
            continue;
        }
        f++;
        int lng = 0;
        while (*f == 'l' || *f == 'z') {
            lng = 1;
            f++;
        }
        switch (*f) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            for (s = s ? s : "(null)"; *s; s++)
                put(buf, cap, &n, *s);
            break;
        }
        case 'u':
            put_num(buf, cap, &n,
                    lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 10);
            break;
        case 'd': {
            long v = lng ? va_arg(ap, long) : va_arg(ap, int);
            if (v < 0) {
                put(buf, cap, &n, '-');
                v = -v;
            }
            put_num(buf, cap, &n, (uint64_t)v, 10);
            break;
        }
        case 'x':
            put_num(buf, cap, &n,
                    lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 16);
            break;
        case 'p':
            put(buf, cap, &n, '0');
            put(buf, cap, &n, 'x');
            put_num(buf, cap, &n, (uintptr_t)va_arg(ap, void *), 16);
            break;
        default:
            put(buf, cap, &n, '%');
            if (*f)
                put(buf, cap, &n, *f);
            else
                f--;
        }
    }
    if (cap)
        buf[n < cap ? n : cap - 1] = '\0';
    return n < cap ? n : cap - 1;
}

size_t weft__fmt(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = vfmt(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}

/* Set by the first thread in weft__die. Relaxed: it orders nothing, it
 * only elects the one thread that prints and aborts. */
static atomic_int dying;
/* 1 on the thread that won `dying`: a fault of its own while it reports
 * (its stack was the one that overflowed) must not wait for itself. */
static _Thread_local int dying_here;

int weft__dying(void)
{
    return atomic_load_explicit(&dying, memory_order_relaxed);
}

void weft__die_wait(void)
{
    /* Two stack overflows at once (two workers) used to print two lines,
     * or let the second thread's fault take the default SIGSEGV action
     * before the first one's abort. The abort kills every thread. */
    if (dying_here) {
        /* The reporter faulted while it formatted its line: on a small
         * stack that had overflowed, the second worker's report then
         * waited here for it and the process hung silently (3 of 9 runs
         * of two 1 KiB overflows at once; found by a program written
         * from weft.h). A fixed line, then the abort. */
        static const char m[] = "weft: a fault while reporting a fault\n";
        ssize_t unused = write(2, m, sizeof m - 1);
        (void)unused;
        abort();
    }
    sigset_t keep;
    sigfillset(&keep);
    sigdelset(&keep, SIGABRT);
    for (;;)
        sigsuspend(&keep);
}

void weft__die(const char *module, const char *fmt, ...)
{
    if (atomic_exchange_explicit(&dying, 1, memory_order_relaxed))
        weft__die_wait();
    dying_here = 1;
    /* Not on the stack: the reporter may be on the small stack that
     * overflowed (the switch-out's canary check). Only the thread that
     * won `dying` writes it. */
    static char line[512];
    size_t n = weft__fmt(line, sizeof line, "weft: %s: ", module);
    va_list ap;
    va_start(ap, fmt);
    n += vfmt(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    line[n++] = '\n';
    ssize_t unused = write(2, line, n);
    (void)unused;
    abort();
}
