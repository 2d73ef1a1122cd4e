/*
 * fuzz_config.c - libFuzzer harness: the WEFT_* environment and
 * weft_config validation. The input sets WEFT_* variables to arbitrary
 * strings and then overwrites config fields with arbitrary values; the
 * check must return 0 or -EINVAL with a detail, and a config it accepts
 * must be within every limit weft.h documents.
 *
 * Input: records of [variable index byte][value bytes up to '\n'], then
 * after a 0xff byte, raw bytes over the fields of weft_config.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt/rt.h"
#include "weft.h"

static const char *const names[] = {"WEFT_WORKERS",     "WEFT_MAX_TASKS",
                                    "WEFT_STACK_SIZE",  "WEFT_SMALL_STACK_SIZE",
                                    "WEFT_STACK_KEEP",  "WEFT_GUARD_PAGES",
                                    "WEFT_PIN",         "WEFT_HUGE_PAGES",
                                    "WEFT_PREEMPT_ALL", "WEFT_SIGQUIT_DUMP",
                                    "WEFT_BALANCE",     "WEFT_POLICY",
                                    "WEFT_FAIRNESS",    "WEFT_TRACE_RING",
                                    "WEFT_TRACE",       "WEFT_IO"};
#define NV (sizeof names / sizeof names[0])

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    for (size_t i = 0; i < NV; i++)
        unsetenv(names[i]);
    size_t i = 0;
    while (i < n && d[i] != 0xff) {
        const char *name = names[d[i++] % NV];
        char v[64];
        size_t k = 0;
        while (i < n && d[i] != '\n' && d[i] != 0xff && k < sizeof v - 1) {
            v[k++] = d[i] ? (char)d[i] : '0';
            i++;
        }
        v[k] = '\0';
        if (i < n && d[i] == '\n')
            i++;
        setenv(name, v, 1);
    }
    weft_config c;
    weft_config_default(&c);
    if (i < n) { /* raw field bytes after 0xff */
        i++;
        size_t m = n - i < sizeof c ? n - i : sizeof c;
        const char *bad = c.bad_env, *trace = c.trace;
        memcpy(&c, d + i, m);
        c.bad_env = bad; /* pointers: not the fuzzer's to choose */
        c.trace = trace;
    }
    int r = weft__config_check(&c);
    if (r) {
        assert(r == -EINVAL);
        assert(weft_last_error()[0] != '\0');
        return 0;
    }
    /* Accepted: within every documented limit. */
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    assert(c.workers >= 1 && c.workers <= 1024);
    assert(c.max_tasks >= 1 && c.max_tasks <= 16777216);
    assert(c.stack_size % page == 0);
    assert(c.stack_size >= 16 * 1024 && c.stack_size <= ((size_t)1 << 30));
    assert(c.small_stack_size % 64 == 0);
    assert(c.small_stack_size >= 1024 && c.small_stack_size <= c.stack_size);
    assert(c.guard_pages == 0 || c.guard_pages == 1);
    assert(c.pin == 0 || c.pin == 1);
    assert(c.huge_pages == 0 || c.huge_pages == 1);
    assert(c.balance == WEFT_BALANCE_STEAL || c.balance == WEFT_BALANCE_MESH);
    assert(c.trace_ring_mb <= 4096);
    assert(c.io == WEFT_IO_EPOLL || c.io == WEFT_IO_AUTO ||
           c.io == WEFT_IO_URING);
    assert(!c.trace || c.trace[0]);
    assert((unsigned __int128)c.max_tasks *
               (c.stack_size + c.small_stack_size + 2 * page) <
           ((unsigned __int128)64 << 40));
    return 0;
}
