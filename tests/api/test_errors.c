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
    static const int unknown[] = {9999, -9999, INT_MAX, -INT_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        CHECK_EQ_STR(weft_strerror(unknown[i]), "unknown error");
    CHECK_NOT_NULL(weft_strerror(0));
}

TEST(api, strerror_system_codes_named)
{
    /* The descriptor calls return whatever errno their system call gave;
     * those are named too, either sign, never as "unknown error". */
    static const int sys[] = {EIO, ECONNRESET, EMFILE};
    for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++) {
        CHECK(strcmp(weft_strerror(-sys[i]), "unknown error") != 0);
        CHECK_EQ_STR(weft_strerror(-sys[i]), weft_strerror(sys[i]));
        CHECK(strcmp(weft_err_name(-sys[i]), "UNKNOWN") != 0);
    }
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

/* ---- names and versions ------------------------------------------------- */

TEST(api, err_name_of_every_code)
{
    static const struct {
        int code;
        const char *name;
    } t[] = {{EINVAL, "EINVAL"},       {ENOMEM, "ENOMEM"},
             {EAGAIN, "EAGAIN"},       {ESRCH, "ESRCH"},
             {EDEADLK, "EDEADLK"},     {EBUSY, "EBUSY"},
             {EPERM, "EPERM"},         {ENOTSUP, "ENOTSUP"},
             {ECANCELED, "ECANCELED"}, {ETIMEDOUT, "ETIMEDOUT"},
             {EPIPE, "EPIPE"},         {EOVERFLOW, "EOVERFLOW"}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        CHECK_EQ_STR(weft_err_name(-t[i].code), t[i].name);
        CHECK_EQ_STR(weft_err_name(t[i].code), t[i].name);
    }
    CHECK_EQ_STR(weft_err_name(0), "0");
    CHECK_EQ_STR(weft_err_name(-12345), "UNKNOWN");
    CHECK_EQ_STR(weft_err_name(-2147483647 - 1), "UNKNOWN");
    /* What the descriptor calls return, named too. */
    CHECK_EQ_STR(weft_err_name(-ECONNRESET), "ECONNRESET");
    CHECK_EQ_STR(weft_err_name(-EMFILE), "EMFILE");
    CHECK(strcmp(weft_strerror(-EMFILE), "unknown error") != 0);
    CHECK_EQ_STR(weft_strerror(-12345), "unknown error");
}

TEST(api, version_matches_header)
{
    CHECK_EQ_INT(weft_version(), WEFT_VERSION_HEX);
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", WEFT_VERSION_MAJOR,
             WEFT_VERSION_MINOR, WEFT_VERSION_PATCH);
    CHECK_EQ_STR(weft_version_string(), want);
}

/* The old spellings of the try calls keep working (CHANGELOG.md). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
TEST(api, old_try_names_still_work)
{
    weft_mutex m = WEFT_MUTEX_INIT;
    CHECK_OK(weft_mutex_trylock(&m));
    CHECK_ERR(weft_mutex_trylock(&m), -EBUSY);
    CHECK_OK(weft_mutex_unlock(&m));
    weft_sem s;
    CHECK_OK(weft_sem_init(&s, 1));
    CHECK_OK(weft_sem_trywait(&s));
    CHECK_ERR(weft_sem_trywait(&s), -EAGAIN);
}
#pragma GCC diagnostic pop

/* weft_last_error: cleared by the next call that gives details, kept by
 * others. */
TEST(api, last_error_set_and_cleared)
{
    weft_policy p;
    CHECK_ERR(weft_policy_preset(&p, 999), -EINVAL);
    CHECK(strstr(weft_last_error(), "preset") != NULL);
    weft_mutex m = WEFT_MUTEX_INIT;
    CHECK_OK(weft_mutex_try_lock(&m)); /* gives no detail: leaves it */
    CHECK(strstr(weft_last_error(), "preset") != NULL);
    CHECK_OK(weft_policy_preset(&p, WEFT_POLICY_BALANCED));
    CHECK_EQ_STR(weft_last_error(), "");
}
