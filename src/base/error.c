/*
 * error.c - the table behind weft_strerror and the thread-local detail
 * behind weft_last_error (STYLE.md practice 9: one table).
 */
#include "error.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "weft.h"

#define E(c, text)                                                             \
    {                                                                          \
        c, #c, text                                                            \
    }
static const struct {
    int code;
    const char *name, *text;
} table[] = {
    {0, "0", "success"},
    E(EINVAL, "invalid argument"),
    E(ENOMEM, "out of memory"),
    E(EAGAIN, "capacity exhausted (max_tasks), or would block (try_)"),
    E(ESRCH, "stale or unknown task handle"),
    E(EDEADLK, "a task cannot join itself"),
    E(EBUSY, "still in use (live tasks, waiters, held lock)"),
    E(EPERM, "not allowed in this calling context"),
    E(ENOTSUP, "not supported in this build or version"),
    E(ECANCELED, "runtime is shutting down"),
    E(ETIMEDOUT, "deadline passed"),
    E(EPIPE, "channel closed"),
    E(EOVERFLOW, "semaphore count limit reached"),
};
#undef E

/* The table's row for err (either sign), or -1. */
static int row(int err)
{
    if (err == INT_MIN)
        return -1;
    if (err < 0)
        err = -err;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].code == err)
            return (int)i;
    return -1;
}

/* Codes outside the table: the descriptor calls return whatever errno
 * their system call gave (ECONNRESET, EMFILE, ...), named by the C
 * library (glibc 2.32: strerrordesc_np, strerrorname_np, thread-safe). */
#if defined(__GLIBC__) && defined(__GLIBC_PREREQ)
#if __GLIBC_PREREQ(2, 32)
#define HAVE_ERRNAME 1
#endif
#endif

static int magnitude(int err)
{
    return err == INT_MIN ? 0 : err < 0 ? -err : err;
}

const char *weft_strerror(int err)
{
    int i = row(err);
    if (i >= 0)
        return table[i].text;
#ifdef HAVE_ERRNAME
    const char *s = magnitude(err) ? strerrordesc_np(magnitude(err)) : NULL;
    if (s)
        return s;
#endif
    return "unknown error";
}

const char *weft_err_name(int err)
{
    int i = row(err);
    if (i >= 0)
        return table[i].name;
#ifdef HAVE_ERRNAME
    const char *s = magnitude(err) ? strerrorname_np(magnitude(err)) : NULL;
    if (s)
        return s;
#endif
    return "UNKNOWN";
}

#define STR_(x) #x
#define STR(x) STR_(x)

unsigned weft_version(void)
{
    return WEFT_VERSION_HEX;
}

const char *weft_version_string(void)
{
    return STR(WEFT_VERSION_MAJOR) "." STR(WEFT_VERSION_MINOR) "." STR(
        WEFT_VERSION_PATCH);
}

static _Thread_local char detail[256];

int weft__error_set(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return err;
}

void weft__error_clear(void)
{
    detail[0] = '\0';
}

const char *weft_last_error(void)
{
    return detail;
}
