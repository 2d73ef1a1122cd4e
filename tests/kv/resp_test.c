/*
 * resp_test.c - unit test of examples/resp.c, the RESP2 request parser of
 * examples/kv.c: commands and their bytes, the same results whatever the
 * split of the input into reads (every split point, and a byte at a time),
 * pipelining, inline commands and their quoting, each limit, malformed
 * input and the error state. Prints TAP; exits 1 on any failure.
 *
 * Every parse goes through run(), which feeds the input in the chunks
 * given to a buffer that keeps only the unconsumed bytes, moved to a fresh
 * allocation of exactly their size before each call (so a parser that
 * kept a pointer, or read past what it was given, is caught by ASan), and
 * writes down every command and the final state as one string.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

static int failures, checks;

#define CHECK_STR(got, want) check_str(__LINE__, #got, (got), (want))
#define CHECK(cond) check_true(__LINE__, #cond, (cond))

static void check_str(int line, const char *what, const char *got,
                      const char *want)
{
    checks++;
    if (strcmp(got, want) != 0) {
        failures++;
        printf("# line %d: %s\n#   got:  \"%s\"\n#   want: \"%s\"\n", line,
               what, got, want);
    }
}

static void check_true(int line, const char *what, int ok)
{
    checks++;
    if (!ok) {
        failures++;
        printf("# line %d: failed: %s\n", line, what);
    }
}

struct limits {
    size_t bulk, args, inl, req;
};
static const struct limits dflt = {0, 0, 0, 0}; /* resp_init's */

/* Append printable s[0, n) to out, other bytes as \xHH. */
static void esc(char *out, size_t cap, const char *s, size_t n)
{
    size_t o = strlen(out);
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
    }
    out[o] = 0;
}

/* Parse in[0, n) fed in the chunks ending at cuts[0..ncut) (then the
 * rest), and describe the outcome: each command as [arg|arg|...], then
 * NEED, or ERR:<message>. */
static char *run(const char *in, size_t n, const size_t *cuts, size_t ncut,
                 struct limits lim)
{
    static char out[1 << 16];
    struct resp_parser p;
    resp_init(&p);
    if (lim.bulk)
        p.max_bulk = lim.bulk;
    if (lim.args)
        p.max_args = lim.args;
    if (lim.inl)
        p.max_inline = lim.inl;
    if (lim.req)
        p.max_request = lim.req;
    out[0] = 0;
    char *pend = NULL; /* unconsumed bytes */
    size_t plen = 0, fed = 0;
    int r = RESP_NEED;
    for (size_t k = 0; k <= ncut && r != RESP_ERR; k++) {
        size_t upto = k < ncut ? cuts[k] : n;
        if (upto < fed)
            continue;
        char *b = malloc(plen + (upto - fed) + 1);
        if (plen)
            memcpy(b, pend, plen);
        memcpy(b + plen, in + fed, upto - fed);
        plen += upto - fed;
        fed = upto;
        free(pend);
        pend = b;
        for (;;) {
            /* Exactly plen bytes: a fresh copy each call. */
            char *c = malloc(plen ? plen : 1);
            if (plen)
                memcpy(c, pend, plen);
            size_t used = 999999;
            r = resp_parse(&p, c, plen, &used);
            CHECK(used <= plen);
            if (r == RESP_CMD) {
                CHECK(p.argc > 0);
                strcat(out, "[");
                for (size_t i = 0; i < p.argc; i++) {
                    CHECK(p.argv[i].off + p.argv[i].len <= used);
                    if (i)
                        strcat(out, "|");
                    esc(out, sizeof out, c + p.argv[i].off, p.argv[i].len);
                }
                strcat(out, "]");
            }
            memmove(pend, pend + used, plen - used);
            plen -= used;
            free(c);
            if (r != RESP_CMD)
                break;
        }
    }
    if (r == RESP_ERR) {
        strcat(out, "ERR:");
        strcat(out, resp_error(&p));
    } else {
        strcat(out, "NEED");
    }
    free(pend);
    resp_free(&p);
    return out;
}

static char *whole(const char *in, struct limits lim)
{
    return run(in, strlen(in), NULL, 0, lim);
}

/* The outcome fed whole; and checks that it is the same split at every
 * byte and fed a byte at a time. */
static char *any_split(const char *in, size_t n, struct limits lim)
{
    static char want[1 << 16];
    snprintf(want, sizeof want, "%s", run(in, n, NULL, 0, lim));
    for (size_t cut = 0; cut <= n; cut++) {
        char *got = run(in, n, &cut, 1, lim);
        if (strcmp(got, want) != 0) {
            printf("# split at %zu differs\n", cut);
            CHECK_STR(got, want);
            break;
        }
    }
    size_t *every = malloc((n + 1) * sizeof *every);
    for (size_t i = 0; i <= n; i++)
        every[i] = i;
    CHECK_STR(run(in, n, every, n + 1, lim), want);
    free(every);
    return want;
}

static char *splits(const char *in, struct limits lim)
{
    return any_split(in, strlen(in), lim);
}

static void test_multibulk(void)
{
    CHECK_STR(splits("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n", dflt),
              "[SET|k|value]NEED");
    /* Binary-safe: CR, LF and NUL inside a bulk. */
    CHECK_STR(any_split("*2\r\n$3\r\nGET\r\n$4\r\na\r\n\0\r\n", 23, dflt),
              "[GET|a\\x0d\\x0a\\x00]NEED");
    CHECK_STR(splits("*1\r\n$0\r\n\r\n", dflt), "[]NEED");
    /* An unfinished request is "need more", consuming nothing. */
    CHECK_STR(splits("*2\r\n$3\r\nGET\r\n$1\r\n", dflt), "NEED");
    CHECK_STR(splits("*2\r\n$3\r\nGET\r\n$1\r\nk\r", dflt), "NEED");
    /* Empty requests are skipped, as Redis does. */
    CHECK_STR(splits("*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n", dflt), "[PING]NEED");
    /* ... also when the request after them arrives in several reads: its
     * arguments are placed from its own first byte, not from the skipped
     * bytes' (found by fuzz-resp). */
    CHECK_STR(splits("\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", dflt),
              "[SET|k|v]NEED");
    CHECK_STR(splits("*0\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n", dflt),
              "[ECHO|hi]NEED");
}

static void test_pipeline(void)
{
    char in[2048] = "";
    char want[2048] = "";
    for (int i = 0; i < 16; i++) {
        char one[64];
        snprintf(one, sizeof one, "*2\r\n$3\r\nGET\r\n$3\r\nk%02d\r\n", i);
        strcat(in, one);
        snprintf(one, sizeof one, "[GET|k%02d]", i);
        strcat(want, one);
    }
    strcat(in, "PING\r\n*1\r\n$4\r\nPI"); /* inline, then a partial one */
    strcat(want, "[PING]NEED");
    CHECK_STR(splits(in, dflt), want);
}

static void test_inline(void)
{
    CHECK_STR(splits("SET k v\r\n", dflt), "[SET|k|v]NEED");
    CHECK_STR(splits("  get \t k  \n", dflt), "[get|k]NEED");
    CHECK_STR(splits("\r\n\nPING\r\n", dflt), "[PING]NEED");
    CHECK_STR(splits("SET \"a b\" 'c d'\r\n", dflt), "[SET|a b|c d]NEED");
    CHECK_STR(splits("ECHO \"\\x41\\n\\\"\\\\\" 'it\\'s'\r\n", dflt),
              "[ECHO|A\\x0a\"\\x5c|it's]NEED");
    CHECK_STR(splits("ECHO \"\"\r\n", dflt), "[ECHO|]NEED");
    CHECK_STR(splits("ECHO \"abc\r\n", dflt),
              "ERR:Protocol error: unbalanced quotes in request");
    CHECK_STR(splits("ECHO \"abc\"d\r\n", dflt),
              "ERR:Protocol error: unbalanced quotes in request");
    CHECK_STR(splits("ECHO 'abc\r\n", dflt),
              "ERR:Protocol error: unbalanced quotes in request");
    /* A line without its end yet. */
    CHECK_STR(splits("PING", dflt), "NEED");
}

static void test_limits(void)
{
    struct limits l = {.bulk = 8, .args = 3, .inl = 10, .req = 64};
    /* A bulk of the limit is fine; one byte more is refused from its
     * header alone, before its bytes arrive. */
    CHECK_STR(splits("*1\r\n$8\r\n12345678\r\n", l), "[12345678]NEED");
    CHECK_STR(splits("*1\r\n$9\r\n", l),
              "ERR:Protocol error: invalid bulk length");
    CHECK_STR(whole("*1\r\n$1048577\r\n", dflt),
              "ERR:Protocol error: invalid bulk length");
    CHECK_STR(whole("*1\r\n$1048576\r\n", dflt), "NEED");
    /* Counts. */
    CHECK_STR(splits("*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", l),
              "[a|b|c]NEED");
    CHECK_STR(splits("*4\r\n", l),
              "ERR:Protocol error: invalid multibulk length");
    CHECK_STR(whole("*65537\r\n", dflt),
              "ERR:Protocol error: invalid multibulk length");
    /* The whole request: 3 x 8-byte bulks would pass 64 bytes... */
    struct limits r = {.bulk = 40, .args = 10, .req = 64};
    CHECK_STR(splits("*2\r\n$30\r\n", r), "NEED");
    CHECK_STR(
        splits("*2\r\n$30\r\n123456789012345678901234567890\r\n$30\r\n", r),
        "ERR:Protocol error: request too big");
    /* Inline lines: 10 bytes are fine, 11 are not, with or without their
     * end arrived. */
    CHECK_STR(splits("PING 67890\r\n", l), "[PING|67890]NEED");
    CHECK_STR(splits("PING 678901\r\n", l),
              "ERR:Protocol error: too big inline request");
    CHECK_STR(splits("PING 67890\r", l), "NEED");
    CHECK_STR(splits("PING 6789012", l),
              "ERR:Protocol error: too big inline request");
    CHECK_STR(splits("a b c d\r\n", l),
              "ERR:Protocol error: too many arguments");
    /* Count lines are 32 bytes at most: 32 are parsed (a number out of
     * range here), 33 are too long. */
    CHECK_STR(splits("*10000000000000000000000000000\r\n", dflt),
              "ERR:Protocol error: invalid multibulk length");
    CHECK_STR(splits("*1\r\n$10000000000000000000000000000\r\n", dflt),
              "ERR:Protocol error: invalid bulk length");
    CHECK_STR(splits("*00000000000000000000000000000001", dflt),
              "ERR:Protocol error: too big mbulk count string");
    CHECK_STR(splits("*1\r\n$00000000000000000000000000000001", dflt),
              "ERR:Protocol error: too big bulk count string");
}

static void test_malformed(void)
{
    CHECK_STR(splits("*1\r\n+3\r\nabc\r\n", dflt),
              "ERR:Protocol error: expected '$', got '+'");
    CHECK_STR(splits("*x\r\n", dflt),
              "ERR:Protocol error: invalid multibulk length");
    CHECK_STR(splits("*01\r\n", dflt),
              "ERR:Protocol error: invalid multibulk length");
    CHECK_STR(splits("*1\n$1\r\na\r\n", dflt),
              "ERR:Protocol error: invalid multibulk length");
    CHECK_STR(splits("*1\r\n$-1\r\n", dflt),
              "ERR:Protocol error: invalid bulk length");
    CHECK_STR(splits("*1\r\n$+1\r\n", dflt),
              "ERR:Protocol error: invalid bulk length");
    CHECK_STR(splits("*1\r\n$3\r\nabcXY", dflt),
              "ERR:Protocol error: expected CRLF after bulk");
    /* What came before an error was handed out; the error is sticky. */
    CHECK_STR(splits("PING\r\n*1\r\n$x\r\nPING\r\n", dflt),
              "[PING]ERR:Protocol error: invalid bulk length");
    struct resp_parser p;
    resp_init(&p);
    char bad[] = "*y\r\n", good[] = "PING\r\n";
    size_t used;
    CHECK(resp_parse(&p, bad, 4, &used) == RESP_ERR);
    CHECK(resp_parse(&p, good, 6, &used) == RESP_ERR && used == 0);
    CHECK(resp_error(&p) != NULL);
    resp_free(&p);
}

/* The argument vector grows with the arguments that arrive, not the count
 * announced, and shrinks after a big request. */
static void test_argv(void)
{
    struct resp_parser p;
    resp_init(&p);
    size_t used;
    char big[] = "*60000\r\n$1\r\na\r\n";
    CHECK(resp_parse(&p, big, strlen(big), &used) == RESP_NEED);
    CHECK(p.argv_cap <= 8);
    resp_free(&p);
    resp_init(&p);
    size_t n = 1000;
    char *in = malloc(16 + n * 7);
    size_t len = (size_t)sprintf(in, "*%zu\r\n", n);
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(in + len, "$1\r\nx\r\n");
    CHECK(resp_parse(&p, in, len, &used) == RESP_CMD && p.argc == n);
    CHECK(used == len);
    char ping[] = "PING\r\n";
    CHECK(resp_parse(&p, ping, 6, &used) == RESP_CMD && p.argc == 1);
    CHECK(p.argv_cap <= RESP_ARGV_KEEP);
    free(in);
    resp_free(&p);
}

static void test_strtoll(void)
{
    long long v = 7;
    CHECK(resp_strtoll("0", 1, &v) && v == 0);
    CHECK(resp_strtoll("-12", 3, &v) && v == -12);
    CHECK(resp_strtoll("9223372036854775807", 19, &v) &&
          v == 9223372036854775807LL);
    CHECK(resp_strtoll("-9223372036854775808", 20, &v) &&
          v == -9223372036854775807LL - 1);
    CHECK(!resp_strtoll("9223372036854775808", 19, &v));
    CHECK(!resp_strtoll("", 0, &v));
    CHECK(!resp_strtoll("-", 1, &v));
    CHECK(!resp_strtoll("-0", 2, &v));
    CHECK(!resp_strtoll("01", 2, &v));
    CHECK(!resp_strtoll("+1", 2, &v));
    CHECK(!resp_strtoll(" 1", 2, &v));
    CHECK(!resp_strtoll("1a", 2, &v));
}

int main(void)
{
    struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"multibulk", test_multibulk}, {"pipeline", test_pipeline},
        {"inline", test_inline},       {"limits", test_limits},
        {"malformed", test_malformed}, {"argv", test_argv},
        {"strtoll", test_strtoll},
    };
    size_t n = sizeof tests / sizeof tests[0];
    printf("1..%zu\n", n);
    for (size_t i = 0; i < n; i++) {
        int before = failures;
        tests[i].fn();
        printf("%sok %zu - resp.%s\n", failures == before ? "" : "not ", i + 1,
               tests[i].name);
    }
    printf("# %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
