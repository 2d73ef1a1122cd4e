/*
 * test_errors.c - weft_strerror names every documented error code, either
 * sign, and never returns NULL.
 */
#include <limits.h>

#include "check.h"

static const int documented[] = {EINVAL,    EAGAIN, ESRCH,   EDEADLK,
                                 EBUSY,     EPERM,  ENOTSUP, ECANCELED,
                                 ETIMEDOUT, EPIPE,  ENOMEM};
#define NDOC (sizeof documented / sizeof documented[0])

TEST(api, strerror_names_documented_codes)
{
    for (size_t i = 0; i < NDOC; i++) {
        const char *neg = weft_strerror(-documented[i]);
        const char *pos = weft_strerror(documented[i]);
        CHECK_NOT_NULL(neg);
        CHECK(neg[0] != '\0');
        CHECK(strcmp(neg, "unknown error") != 0);
        CHECK_EQ_STR(neg, pos);
    }
}

TEST(api, strerror_names_are_distinct)
{
    for (size_t i = 0; i < NDOC; i++)
        for (size_t j = i + 1; j < NDOC; j++)
            CHECK(strcmp(weft_strerror(-documented[i]),
                         weft_strerror(-documented[j])) != 0);
}

TEST(api, strerror_unknown)
{
    static const int unknown[] = {9999, -9999, EIO, -EIO, INT_MAX, -INT_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        CHECK_EQ_STR(weft_strerror(unknown[i]), "unknown error");
    CHECK_NOT_NULL(weft_strerror(0));
}

TEST(api, strerror_int_min)
{
    /* Any int is a valid argument, including one whose negation
     * overflows (UBSan builds catch a naive -err). */
    CHECK_EQ_STR(weft_strerror(INT_MIN), "unknown error");
}

TEST(api, last_error_empty_initially)
{
    CHECK_NOT_NULL(weft_last_error());
    CHECK_EQ_STR(weft_last_error(), "");
}
