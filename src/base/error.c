/*
 * error.c - the table behind weft_strerror and the thread-local detail
 * behind weft_last_error (STYLE.md practice 9: one table).
 */
#include "error.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>

#include "weft.h"

static const struct {
    int code;
    const char *text;
} table[] = {
    {0, "success"},
    {EINVAL, "invalid argument"},
    {ENOMEM, "out of memory"},
    {EAGAIN, "capacity exhausted (max_tasks), or would block (try_)"},
    {ESRCH, "stale or unknown task handle"},
    {EDEADLK, "a task cannot join itself"},
    {EBUSY, "still in use (live tasks, waiters, held lock)"},
    {EPERM, "not allowed in this calling context"},
    {ENOTSUP, "not supported in this build or version"},
    {ECANCELED, "runtime is shutting down"},
    {ETIMEDOUT, "deadline passed"},
    {EPIPE, "channel closed"},
    {EOVERFLOW, "semaphore count limit reached"},
};

const char *weft_strerror(int err)
{
    if (err == INT_MIN)
        return "unknown error";
    if (err < 0)
        err = -err;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].code == err)
            return table[i].text;
    return "unknown error";
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
