/*
 * chaos.c - the chaos points of the chaos build (chaos.h): a seeded,
 * per-thread choice to stall before an ordered atomic.
 */
#ifdef WEFT_CHAOS
#include "chaos.h"

#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "atomic.h"
#include "env.h"
#include "sysmark.h"

/* The process seed, 0 until chosen; a thread's stream is the seed mixed
 * with its number in the order threads first reach a point. These use
 * the builtins directly: the macros would recurse into the chaos. */
static uint64_t seed;
static unsigned seeded, threads;
static _Thread_local uint64_t rng;

static void choose_seed(void)
{
    uint64_t s = 0;
    const char *v = getenv("WEFT_CHAOS_SEED");
    if (!v || weft__env_parse_u64(v, 0, &s) || !s) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^
            (uint64_t)getpid() << 32 ^ (uint64_t)ts.tv_sec;
        s |= 1;
    }
    uint64_t none = 0;
    if (__atomic_compare_exchange_n(&seed, &none, s, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
        /* One line, by hand: async-signal-safe and no stdio. */
        char buf[64] = "weft: chaos seed ";
        size_t n = 17, k = 0;
        char d[24];
        do
            d[k++] = (char)('0' + s % 10);
        while ((s /= 10));
        while (k)
            buf[n++] = d[--k];
        buf[n++] = '\n';
        ssize_t w = write(2, buf, n);
        (void)w;
    }
    __atomic_store_n(&seeded, 1, __ATOMIC_RELEASE);
}

void weft__chaos(int o)
{
    if (o == __ATOMIC_RELAXED)
        return;
    if (!rng) {
        if (!__atomic_load_n(&seeded, __ATOMIC_ACQUIRE))
            choose_seed();
        uint64_t t = __atomic_add_fetch(&threads, 1, __ATOMIC_RELAXED);
        rng = __atomic_load_n(&seed, __ATOMIC_ACQUIRE) ^
              t * 0xbf58476d1ce4e5b9ull;
        rng |= 1;
    }
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    unsigned r = (unsigned)(rng >> 32);
    if ((r & 127) == 0) { /* 1 in 128: spin up to 1,023 relax hints */
        for (unsigned i = (r >> 8) & 1023; i; i--)
            weft_cpu_relax();
    } else if ((r & 2047) == 1) { /* 1 in 2048: give the CPU away */
        weft__sys_enter();        /* inside weft code (sysmark.h) */
        sched_yield();
        weft__sys_leave();
    }
}
#endif
