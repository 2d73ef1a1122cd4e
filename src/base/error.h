/*
 * error.h - the per-thread detail behind weft_last_error().
 */
#ifndef WEFT_BASE_ERROR_H
#define WEFT_BASE_ERROR_H

/* Record a detail line for weft_last_error() and return err (negative).
 * Not signal safe (formats with vsnprintf). Any thread. */
int weft__error_set(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void weft__error_clear(void);

#endif
