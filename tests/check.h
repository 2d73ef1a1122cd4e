/*
 * check.h - the test registry, assertion macros and runtime helpers.
 *
 * Every test is one function per behaviour, declared with TEST(group, name)
 * and registered before main() by a constructor into the runner's table
 * (tests/runner/runner.c). Its full name is "group.name", so a prefix such
 * as "api." selects a group. The runner runs each test in a forked child
 * with its own timeout (TEST_T gives one in seconds; TEST uses
 * TEST_TIMEOUT_DEFAULT), so a test may change the environment, create
 * process-wide TLS keys, or crash without affecting the others.
 *
 * The CHECK macros evaluate each operand once and, on failure, print both
 * sides with file:line and end the test process: they may be used on any
 * thread, including inside a task on a worker. TEST_SKIP ends the test as
 * skipped, with a reason the runner prints after "# SKIP".
 *
 * A test that creates a runtime ends with test_rt_destroy_clean(), which
 * proves the runtime clean (STYLE.md practice 12): no live task, every
 * summary word zero, weft_rt_destroy returns 0, and the arena is unmapped.
 */
#ifndef WEFT_TESTS_CHECK_H
#define WEFT_TESTS_CHECK_H

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "weft.h"

/* ---- registry ----------------------------------------------------------- */

typedef struct weft_test {
    const char *name; /* "group.name" */
    void (*fn)(void);
    unsigned timeout_s; /* before sanitizer scaling */
    const char *file;
    int line;
} weft_test;

#define TEST_TIMEOUT_DEFAULT 30

/* Called by the constructors TEST expands to. */
void weft_test_register(const weft_test *t);

#define TEST_T(group, name, secs)                                              \
    static void test_##group##_##name(void);                                   \
    static const weft_test test_desc_##group##_##name = {                      \
        #group "." #name, test_##group##_##name, (secs), __FILE__, __LINE__};  \
    __attribute__((constructor)) static void test_reg_##group##_##name(void)   \
    {                                                                          \
        weft_test_register(&test_desc_##group##_##name);                       \
    }                                                                          \
    static void test_##group##_##name(void)

#define TEST(group, name) TEST_T(group, name, TEST_TIMEOUT_DEFAULT)

/* ---- sanitizer detection ------------------------------------------------ */

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_TSAN 1
#endif
#endif
#ifndef TEST_ASAN
#define TEST_ASAN 0
#endif
#ifndef TEST_TSAN
#define TEST_TSAN 0
#endif
#define TEST_SANITIZED (TEST_ASAN || TEST_TSAN)

/* The chaos build (-DWEFT_CHAOS=ON): every ordered atomic of the library
 * may stall its thread (spin or sched_yield), by design. */
#ifdef WEFT_CHAOS
#define TEST_CHAOS 1
#else
#define TEST_CHAOS 0
#endif

/* ---- failure and skip --------------------------------------------------- */

/* Print "file:line: message" to stderr, flush, and end the test process
 * as failed. Any thread. */
_Noreturn void weft_check_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* End the test process as skipped. Any thread. */
_Noreturn void weft_test_skip(const char *reason);
#define TEST_SKIP(reason) weft_test_skip(reason)

/* "EINVAL" for -EINVAL or EINVAL, "0" for 0, else "E?". */
const char *weft_test_errname(int err);

/* ---- assertions --------------------------------------------------------- */

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            weft_check_fail(__FILE__, __LINE__, "CHECK(%s) failed", #cond);    \
    } while (0)

/* The _S forms take the operands' spellings, so that a macro argument
 * (atomic_load, say) is shown as written, not expanded. */

/* Integers compared as intmax_t (signed quantities, small counts). */
#define CHECK_CMP_INT_S(a, op, b, sa, sb)                                      \
    do {                                                                       \
        intmax_t ca_ = (intmax_t)(a), cb_ = (intmax_t)(b);                     \
        if (!(ca_ op cb_))                                                     \
            weft_check_fail(__FILE__, __LINE__,                                \
                            "CHECK(%s %s %s) failed: %jd %s %jd", sa, #op, sb, \
                            ca_, #op, cb_);                                    \
    } while (0)
#define CHECK_CMP_INT(a, op, b) CHECK_CMP_INT_S(a, op, b, #a, #b)
#define CHECK_EQ_INT(a, b) CHECK_CMP_INT_S(a, ==, b, #a, #b)
#define CHECK_NE_INT(a, b) CHECK_CMP_INT_S(a, !=, b, #a, #b)

/* Unsigned 64-bit quantities (counters, sizes, words). */
#define CHECK_CMP_U64_S(a, op, b, sa, sb)                                      \
    do {                                                                       \
        uint64_t ca_ = (uint64_t)(a), cb_ = (uint64_t)(b);                     \
        if (!(ca_ op cb_))                                                     \
            weft_check_fail(__FILE__, __LINE__,                                \
                            "CHECK(%s %s %s) failed: %" PRIu64 " (0x%" PRIx64  \
                            ") %s %" PRIu64 " (0x%" PRIx64 ")",                \
                            sa, #op, sb, ca_, ca_, #op, cb_, cb_);             \
    } while (0)
#define CHECK_CMP_U64(a, op, b) CHECK_CMP_U64_S(a, op, b, #a, #b)
#define CHECK_EQ_U64(a, b) CHECK_CMP_U64_S(a, ==, b, #a, #b)

#define CHECK_CMP_PTR_S(a, op, b, sa, sb)                                      \
    do {                                                                       \
        const void *ca_ = (const void *)(a), *cb_ = (const void *)(b);         \
        if (!(ca_ op cb_))                                                     \
            weft_check_fail(__FILE__, __LINE__,                                \
                            "CHECK(%s %s %s) failed: %p %s %p", sa, #op, sb,   \
                            ca_, #op, cb_);                                    \
    } while (0)
#define CHECK_CMP_PTR(a, op, b) CHECK_CMP_PTR_S(a, op, b, #a, #b)
#define CHECK_EQ_PTR(a, b) CHECK_CMP_PTR_S(a, ==, b, #a, #b)
#define CHECK_NE_PTR(a, b) CHECK_CMP_PTR_S(a, !=, b, #a, #b)
#define CHECK_NULL(a) CHECK_CMP_PTR_S(a, ==, NULL, #a, "NULL")
#define CHECK_NOT_NULL(a) CHECK_CMP_PTR_S(a, !=, NULL, #a, "NULL")

#define CHECK_EQ_STR(a, b)                                                     \
    do {                                                                       \
        const char *ca_ = (a), *cb_ = (b);                                     \
        if (!ca_ || !cb_ || strcmp(ca_, cb_) != 0)                             \
            weft_check_fail(__FILE__, __LINE__,                                \
                            "CHECK(%s == %s) failed: \"%s\" != \"%s\"", #a,    \
                            #b, ca_ ? ca_ : "(null)", cb_ ? cb_ : "(null)");   \
    } while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                        \
    do {                                                                       \
        const char *ch_ = (hay), *cn_ = (needle);                              \
        if (!ch_ || !strstr(ch_, cn_))                                         \
            weft_check_fail(__FILE__, __LINE__,                                \
                            "CHECK(%s contains %s) failed: \"%s\" does not "   \
                            "contain \"%s\"",                                  \
                            #hay, #needle, ch_ ? ch_ : "(null)", cn_);         \
    } while (0)

/* A weft call's result against an expected error code (0 or -Exxx); the
 * message names both codes and shows weft_last_error(). */
#define CHECK_ERR(expr, expect)                                                \
    do {                                                                       \
        int ce_got_ = (expr), ce_want_ = (expect);                             \
        if (ce_got_ != ce_want_)                                               \
            weft_check_fail(__FILE__, __LINE__,                                \
                            "%s returned %d (%s: %s), expected %d (%s: %s); "  \
                            "weft_last_error: \"%s\"",                         \
                            #expr, ce_got_, weft_test_errname(ce_got_),        \
                            weft_strerror(ce_got_), ce_want_,                  \
                            weft_test_errname(ce_want_),                       \
                            weft_strerror(ce_want_), weft_last_error());       \
    } while (0)
#define CHECK_OK(expr) CHECK_ERR(expr, 0)

/* ---- runtime helpers ---------------------------------------------------- */

/* A runtime with the default config (environment included) but max_tasks
 * slots; fails the test if it cannot be created. Plain thread. */
weft_rt *test_rt(uint32_t max_tasks);

/* The same with exactly `workers` workers (0 = automatic): for tests whose
 * scenario needs tasks to share one worker, or a given count. */
weft_rt *test_rt_workers(uint32_t max_tasks, unsigned workers);

/* A runtime from an explicit config; fails the test on error. */
weft_rt *test_rt_cfg(const weft_config *cfg);
/* A runtime of `workers` workers and max_tasks slots with I/O backend
 * `io` (WEFT_IO_*); the test is skipped where WEFT_IO_URING cannot run
 * (weft_rt_create's -ENOTSUP). */
weft_rt *test_rt_io(unsigned workers, uint32_t max_tasks, int io);

/* No signal from rt's monitor: no preemption (latency 0) and no tier
 * promotion, which a long poll, as on a loaded machine or in the chaos
 * build, would otherwise draw. For tests that measure what a preemption
 * or an isolation would disturb. */
void test_policy_no_signals(weft_rt *rt);

/* Wait (polling, up to 10 s, else the test fails) until task t is
 * parked, on `wait` (weft_task_info's wait string) when not NULL; 0
 * then, -1 if t ended or its handle went stale first. */
int test_wait_parked(weft_task t, const char *wait);

/* weft_rt_run(rt, fn, arg), checked; returns main's result. */
void *test_run(weft_rt *rt, weft_fn fn, void *arg);

/* Current stats, checked. Any thread. */
weft_stats test_stats(weft_rt *rt);

/* Wait (up to timeout_ms) until stats.live == live; fails the test
 * otherwise. For detached tasks, which are reaped asynchronously. Plain
 * thread or task (it yields while waiting). */
void test_wait_live(weft_rt *rt, uint64_t live, unsigned timeout_ms);

/* Prove rt idle and clean, then destroy it: live == 0, the summary tree
 * all zero once the worker is idle (white-box), weft_rt_destroy == 0 and
 * no mapping left in the arena's range. Plain thread. */
void test_rt_destroy_clean(weft_rt *rt);

/* Monotonic milliseconds. */
uint64_t test_now_ms(void);

/* Open descriptors of this process: the entries of /proc/self/fd (the
 * directory's own descriptor, open while it is read, included). Compare
 * two counts to prove that a runtime, or a test, left no descriptor
 * behind. Any thread. */
int test_count_fds(void);
/* The highest open descriptor number of the process (/proc/self/fd). */
int test_highest_fd(void);

/* ---- child processes ---------------------------------------------------- */

/* Result of test_fork_capture: how the child ended and its stderr. */
typedef struct test_child {
    int status;     /* as from waitpid */
    char err[8192]; /* captured stderr, NUL-terminated (truncated) */
} test_child;

/* Fork; run fn(arg) in the child with stderr captured through a pipe,
 * then _exit(0) if it returns. Wait up to timeout_s for it (killed with
 * SIGKILL past that, which the status shows). Plain thread, before any
 * runtime exists in the calling process (fork copies only this thread). */
void test_fork_capture(void (*fn)(void *), void *arg, unsigned timeout_s,
                       test_child *out);

#endif
