/*
 * env.h - strict parsing of WEFT_* environment variables.
 *
 * A value is a decimal number with an optional k/m/g suffix (powers of
 * 1024) for sizes; nothing else on the line, no sign, no overflow. A value
 * that does not parse is an error the caller reports with the variable's
 * name; it is never silently ignored.
 */
#ifndef WEFT_BASE_ENV_H
#define WEFT_BASE_ENV_H

#include <stdint.h>

/* Parse s as an unsigned number (with_suffix: k/m/g allowed). Returns 0 and
 * sets *out, or -EINVAL. Any thread. */
int weft__env_parse_u64(const char *s, int with_suffix, uint64_t *out);

#endif
