/*
 * test_switch_regs.c - conformance test of a stack switch (src/arch/ctx.h).
 *
 * What a switch must keep is invisible to compiled code, which never knows
 * which of its registers hold values across a call: a port that forgets
 * r13 or the rounding mode passes any test written in plain C until the
 * optimiser happens to keep something there. So the register tests use
 * probes in assembly (regs_<isa>.S): regs_roundtrip loads chosen patterns
 * into every callee-saved integer and FP register and a chosen FP control
 * value (rounding mode, flush-to-zero), switches away, and when resumed
 * stores what the registers hold. The context switched to does the same
 * with other patterns before switching back, so a register the port does
 * not save comes back holding the other side's value; C compares, and
 * prints both sides of every mismatch.
 *
 * Those patterns cross the switch four ways: main to a fresh context and
 * back, main to a suspended context and back, and twice the other way.
 * The other tests cover the rest of ctx.h's contract: `arg` in both
 * directions and into a fresh entry, the default FP control state of a
 * fresh context, stack alignment at entry for every misalignment of `top`,
 * the fresh frame's size against WEFT_CTX_FRAME, the end of the frame
 * chain (fp = 0 at entry, the unwinder's stop at the trampoline), 1000
 * contexts interleaved round-robin, and deep recursion on a context's
 * stack while it is suspended at the bottom. The ucontext build skips the
 * three tests about weft's own frames.
 *
 * The program needs only the switch (one .S of src/arch or
 * switch_ucontext.c) and its probe file, so .ci/cross.sh builds it with
 * cross compilers and runs it under qemu-user. Each test runs in a forked
 * child with a time limit, so a port that crashes fails one test, not the
 * run. Output is TAP; the exit status is non-zero if any test failed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE under -std=c11 */
#endif

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <unwind.h>

#include "ctx.h"

/* The probes of regs_<isa>.S; their header describes the array layout. */
void *regs_roundtrip(void **save, void *to, void *arg, const uint64_t *in,
                     uint64_t *out);
void regs_fpctl(uint64_t *out);
void regs_set_fpctl(const uint64_t *in);
uintptr_t regs_call_sp(void);
void regs_fp_entry(void *p);

/*
 * Per ISA: the registers the probe covers (the last NCTL are FP control
 * state), which bits of each control register the port must keep, the
 * default a fresh context starts with, and four control values (main's two
 * rounds, then the peer's two), all distinct and none the default.
 */
#if defined(__x86_64__)
#define NREG 8
#define NCTL 2
static const char *const reg_name[NREG] = {
    "rbx", "rbp", "r12", "r13", "r14", "r15", "mxcsr", "x87 cw",
};
/* MXCSR bits 0-5 are exception flags, which the ABI does not preserve. */
static const uint64_t ctl_mask[NCTL] = {0xffc0, 0xffff};
static const uint64_t ctl_default[NCTL] = {0x1f80, 0x037f};
static const uint64_t ctl_pattern[4][NCTL] = {
    {0x7f80, 0x0f7f}, /* toward zero; x87 toward zero, extended */
    {0x5f80, 0x0b7f}, /* upward; x87 upward, extended */
    {0xbfc0, 0x067f}, /* downward, FTZ, DAZ; x87 downward, double */
    {0x9fc0, 0x007f}, /* nearest, FTZ, DAZ; x87 nearest, single */
};
#elif defined(__aarch64__)
#define NREG 20
#define NCTL 1
static const char *const reg_name[NREG] = {
    "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28",
    "x29", "d8",  "d9",  "d10", "d11", "d12", "d13", "d14", "d15", "fpcr",
};
static const uint64_t ctl_mask[NCTL] = {UINT64_MAX};
static const uint64_t ctl_default[NCTL] = {0};
/* Only RMode (22-23) and FZ (24): AAPCS64 lets nothing else change, and
 * trap-enable bits read as zero on cores without trapping. */
static const uint64_t ctl_pattern[4][NCTL] = {
    {0x00c00000}, /* toward zero */
    {0x00400000}, /* toward +inf */
    {0x01800000}, /* toward -inf, flush to zero */
    {0x01000000}, /* nearest, flush to zero */
};
#elif defined(__riscv) && __riscv_xlen == 64
#define NREG 25
#define NCTL 1
static const char *const reg_name[NREG] = {
    "s0",  "s1",  "s2",  "s3",  "s4",   "s5",   "s6",   "s7",  "s8",
    "s9",  "s10", "s11", "fs0", "fs1",  "fs2",  "fs3",  "fs4", "fs5",
    "fs6", "fs7", "fs8", "fs9", "fs10", "fs11", "fcsr",
};
/* The port keeps the whole fcsr, flags included: see its header. */
static const uint64_t ctl_mask[NCTL] = {0xff};
static const uint64_t ctl_default[NCTL] = {0};
static const uint64_t ctl_pattern[4][NCTL] = {
    {0x21}, /* frm RTZ, flag NX */
    {0x62}, /* frm RUP, flag UF */
    {0x50}, /* frm RDN, flag NV */
    {0x84}, /* frm RMM, flag OF */
};
#else
#error "tests/arch: no register probe for this ISA"
#endif

#define NGPR (NREG - NCTL) /* registers compared bit for bit */
#define NOUT (NREG + 2)    /* and the stack pointer before and after */

#define PAGE 4096
#define STACK_SIZE (256 * 1024)

/* ------------------------------------------------------------------ */
/* Stacks: anonymous mappings with a guard page below, as weft's own. */

struct stack {
    char *map;  /* the mapping, guard page first */
    size_t len; /* its length */
    char *top;  /* one past the highest usable byte */
};

static int stack_new(struct stack *s, size_t size)
{
    s->len = size + PAGE;
    s->map = mmap(NULL, s->len, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (s->map == MAP_FAILED) {
        perror("# mmap");
        return -1;
    }
    if (mprotect(s->map, PAGE, PROT_NONE) != 0) {
        perror("# mprotect");
        munmap(s->map, s->len);
        return -1;
    }
    s->top = s->map + s->len;
    return 0;
}

static void stack_free(struct stack *s)
{
    munmap(s->map, s->len);
}

/* ------------------------------------------------------------------ */
/* Register patterns and their comparison. */

/* splitmix64's finaliser: distinct, full-width, not zero. */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

/* Pattern set `which` (0-1: main's rounds, 2-3: the peer's). */
static void pattern(uint64_t *in, int which)
{
    for (int k = 0; k < NGPR; k++)
        in[k] = mix((uint64_t)which << 8 | (uint64_t)k);
    for (int k = 0; k < NCTL; k++)
        in[NGPR + k] = ctl_pattern[which][k];
}

/* Compares what regs_roundtrip stored with what it loaded; prints every
 * difference. Returns the number of differences. */
static int check_regs(const char *who, const uint64_t *in, const uint64_t *out)
{
    int bad = 0;

    for (int k = 0; k < NREG; k++) {
        uint64_t mask = k < NGPR ? UINT64_MAX : ctl_mask[k - NGPR];
        if (((in[k] ^ out[k]) & mask) == 0)
            continue;
        printf("# %s: reg %s: expected 0x%016" PRIx64 " got 0x%016" PRIx64 "\n",
               who, reg_name[k], in[k], out[k]);
        bad++;
    }
    if (out[NREG] != out[NREG + 1]) {
        printf("# %s: sp: expected 0x%016" PRIx64 " got 0x%016" PRIx64 "\n",
               who, out[NREG], out[NREG + 1]);
        bad++;
    }
    return bad;
}

static int check_ptr(const char *what, const void *expected, const void *got)
{
    if (expected == got)
        return 0;
    printf("# %s: expected %p got %p\n", what, expected, got);
    return 1;
}

/* ------------------------------------------------------------------ */
/* The register scenario: main and a peer context, two round trips each. */

#define TOKEN(n) ((void *)(uintptr_t)(0x7e570000u + (n)))

static void *main_sp, *peer_sp;
static uint64_t pat[4][NREG];
static uint64_t out_main[2][NOUT], out_peer[2][NOUT];
static void *main_ret[3], *peer_ret[2], *peer_arg;
static uint64_t peer_ctl[NCTL]; /* FP control state at the peer's entry */

static void peer_entry(void *arg)
{
    peer_arg = arg;
    regs_fpctl(peer_ctl);
    peer_ret[0] =
        regs_roundtrip(&peer_sp, main_sp, TOKEN(10), pat[2], out_peer[0]);
    peer_ret[1] =
        regs_roundtrip(&peer_sp, main_sp, TOKEN(11), pat[3], out_peer[1]);
    weft__ctx_switch(&peer_sp, main_sp, TOKEN(12));
    abort(); /* never resumed */
}

/* Runs the whole exchange; the tests below each check one part of it. */
static int run_scenario(void)
{
    struct stack st;

    if (stack_new(&st, STACK_SIZE) != 0)
        return -1;
    for (int w = 0; w < 4; w++)
        pattern(pat[w], w);
    /* Made under pattern 3's control state: a fresh context must not
     * inherit the FP state of whoever made it (ucontext would). */
    uint64_t ctl[NCTL];
    regs_fpctl(ctl);
    regs_set_fpctl(&pat[3][NGPR]);
    void *fresh = weft__ctx_make(st.top, peer_entry);
    regs_set_fpctl(ctl);
    /* To a fresh context; the peer's first round trip brings us back. */
    main_ret[0] =
        regs_roundtrip(&main_sp, fresh, TOKEN(0), pat[0], out_main[0]);
    /* To the suspended peer; its second round trip brings us back. */
    main_ret[1] =
        regs_roundtrip(&main_sp, peer_sp, TOKEN(1), pat[1], out_main[1]);
    /* Let the peer check its second round trip; it ends here. */
    main_ret[2] = weft__ctx_switch(&main_sp, peer_sp, TOKEN(2));
    stack_free(&st);
    return 0;
}

static int test_regs_main(void)
{
    if (run_scenario() != 0)
        return 1;
    int bad = check_regs("main, to a fresh context", pat[0], out_main[0]);
    bad += check_regs("main, to a suspended context", pat[1], out_main[1]);
    bad += check_ptr("main: first switch returned", TOKEN(10), main_ret[0]);
    bad += check_ptr("main: second switch returned", TOKEN(11), main_ret[1]);
    bad += check_ptr("main: third switch returned", TOKEN(12), main_ret[2]);
    return bad != 0;
}

static int test_regs_peer(void)
{
    if (run_scenario() != 0)
        return 1;
    int bad = check_regs("peer, first round trip", pat[2], out_peer[0]);
    bad += check_regs("peer, second round trip", pat[3], out_peer[1]);
    bad += check_ptr("peer: first switch returned", TOKEN(1), peer_ret[0]);
    bad += check_ptr("peer: second switch returned", TOKEN(2), peer_ret[1]);
    return bad != 0;
}

static int test_fresh_arg(void)
{
    if (run_scenario() != 0)
        return 1;
    return check_ptr("entry's argument", TOKEN(0), peer_arg);
}

/* The peer was made under pattern 3's control values and entered from
 * pattern 0's: a fresh context must start from the default whatever both
 * were. */
static int test_fresh_fpctl(void)
{
    int bad = 0;

    if (run_scenario() != 0)
        return 1;
    for (int k = 0; k < NCTL; k++) {
        if (((peer_ctl[k] ^ ctl_default[k]) & ctl_mask[k]) == 0)
            continue;
        printf("# fresh context: reg %s: expected 0x%016" PRIx64
               " got 0x%016" PRIx64 "\n",
               reg_name[NGPR + k], ctl_default[k], peer_ctl[k]);
        bad++;
    }
    return bad != 0;
}

/* ------------------------------------------------------------------ */
/* arg in both directions, odd values included. */

#define ECHO_KEY ((uintptr_t)0x5a5a5a5a5a5a5a5au)

static void *echo_main_sp, *echo_sp;

/* Answers every switch with its arg xor ECHO_KEY. */
static void echo_entry(void *arg)
{
    for (;;)
        arg = weft__ctx_switch(&echo_sp, echo_main_sp,
                               (void *)((uintptr_t)arg ^ ECHO_KEY));
}

static int test_arg_roundtrip(void)
{
    struct stack st;
    int local, bad = 0;
    void *const vals[] = {
        NULL,
        (void *)1,
        (void *)UINTPTR_MAX,
        (void *)(UINTPTR_MAX / 2 + 1), /* top bit only */
        &local,
        (void *)&main_sp, /* a static object */
    };

    if (stack_new(&st, STACK_SIZE) != 0)
        return 1;
    void *to = weft__ctx_make(st.top, echo_entry);
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        void *got = weft__ctx_switch(&echo_main_sp, to, vals[i]);
        char what[64];
        snprintf(what, sizeof what, "switch %zu returned", i);
        bad += check_ptr(what, (void *)((uintptr_t)vals[i] ^ ECHO_KEY), got);
        to = echo_sp;
    }
    stack_free(&st);
    return bad != 0;
}

/* ------------------------------------------------------------------ */
/* Stack alignment at entry, and the size of a fresh frame. */

static void *align_main_sp, *align_sp;
static uintptr_t align_call_sp, align_local;

static void align_entry(void *arg)
{
    _Alignas(16) volatile char local[16];

    local[0] = 0;
    align_local = (uintptr_t)local;
    /* The compiler aligns calls assuming the ABI's alignment at entry,
     * so a misaligned entry shows as a misaligned call here. */
    align_call_sp = regs_call_sp();
    weft__ctx_switch(&align_sp, align_main_sp, arg);
    abort(); /* never resumed */
}

static int test_entry_alignment(void)
{
    struct stack st;
    int bad = 0;

    if (stack_new(&st, STACK_SIZE) != 0)
        return 1;
    for (int off = 0; off < 16; off++) {
        void *to = weft__ctx_make(st.top - off, align_entry);
        align_call_sp = align_local = 1;
        weft__ctx_switch(&align_main_sp, to, NULL);
        if (align_call_sp % 16 != 0) {
            printf("# top - %d: sp at a call in entry: expected 16-byte "
                   "aligned got 0x%" PRIxPTR "\n",
                   off, align_call_sp);
            bad++;
        }
        if (align_local % 16 != 0) {
            printf("# top - %d: _Alignas(16) local: expected 16-byte "
                   "aligned got 0x%" PRIxPTR "\n",
                   off, align_local);
            bad++;
        }
    }
    stack_free(&st);
    return bad != 0;
}

static int test_frame_size(void)
{
    struct stack st;
    int bad = 0;

    if (stack_new(&st, STACK_SIZE) != 0)
        return 1;
    for (int off = 0; off < 16; off++) {
        uintptr_t top = (uintptr_t)(st.top - off);
        uintptr_t sp = (uintptr_t)weft__ctx_make(st.top - off, align_entry);
        uintptr_t used = (top & ~(uintptr_t)15) - sp;
        if (used != WEFT_CTX_FRAME) {
            printf("# top - %d: fresh frame size: expected %d "
                   "(WEFT_CTX_FRAME) got %" PRIuPTR "\n",
                   off, WEFT_CTX_FRAME, used);
            bad++;
            break; /* the same for every offset, most likely */
        }
    }
    stack_free(&st);
    return bad != 0;
}

/* ------------------------------------------------------------------ */
/* The end of the frame chain: fp = 0 at entry, and the unwinder's stop at
 * the trampoline (its end-of-stack marker). */

static void *fp_main_sp, *fp_sp;
static struct {
    uint64_t fp; /* the frame pointer regs_fp_entry was entered with */
    void **save; /* where it saves its stack pointer */
    void **back; /* where main's stack pointer is */
} fp_probe = {1, &fp_sp, &fp_main_sp};

static int test_fp_chain_end(void)
{
    struct stack st;
    int bad = 0;

    if (stack_new(&st, STACK_SIZE) != 0)
        return 1;
    weft__ctx_switch(&fp_main_sp, weft__ctx_make(st.top, regs_fp_entry),
                     &fp_probe);
    if (fp_probe.fp != 0) {
        printf("# frame pointer at entry: expected 0 got 0x%016" PRIx64 "\n",
               fp_probe.fp);
        bad++;
    }
    stack_free(&st);
    return bad != 0;
}

static void *unwind_main_sp, *unwind_sp;
static int unwind_frames;
static _Unwind_Reason_Code unwind_rc;

static _Unwind_Reason_Code unwind_step(struct _Unwind_Context *uc, void *p)
{
    int *frames = p;

    (void)uc;
    /* Without the marker the walk runs on into garbage or loops. */
    return ++*frames > 64 ? _URC_NORMAL_STOP : _URC_NO_REASON;
}

static void unwind_entry(void *arg)
{
    unwind_rc = _Unwind_Backtrace(unwind_step, &unwind_frames);
    weft__ctx_switch(&unwind_sp, unwind_main_sp, arg);
    abort(); /* never resumed */
}

static int test_unwind_end(void)
{
    struct stack st;
    int bad = 0;

    if (stack_new(&st, STACK_SIZE) != 0)
        return 1;
    /* Garbage above top: a walk past the trampoline would read it. */
    char *top = st.top - 64;
    memset(top, 0x5a, 64);
    weft__ctx_switch(&unwind_main_sp, weft__ctx_make(top, unwind_entry), NULL);
    if (unwind_rc != _URC_END_OF_STACK) {
        printf("# _Unwind_Backtrace: expected %d (end of stack) got %d\n",
               _URC_END_OF_STACK, unwind_rc);
        bad++;
    }
    if (unwind_frames < 1 || unwind_frames > 8) {
        printf("# frames walked: expected 1 to 8 got %d\n", unwind_frames);
        bad++;
    }
    stack_free(&st);
    return bad != 0;
}

/* ------------------------------------------------------------------ */
/* Many contexts interleaved. */

#define RR_N 1000
#define RR_ROUNDS 100
#define RR_STACK (64 * 1024)
#define RR_CANARY 64

static void *rr_main_sp;
static void *rr_sp[RR_N];
static int rr_bad; /* mismatches seen by the contexts */

/* Its id, a counter and a canary live on its own stack (volatile: in
 * memory, not registers); each resume checks them and answers with
 * id and counter, which main checks. */
static void rr_entry(void *arg)
{
    volatile uintptr_t id = (uintptr_t)arg;
    volatile uintptr_t count = 0;
    volatile unsigned char canary[RR_CANARY];

    for (int i = 0; i < RR_CANARY; i++)
        canary[i] = (unsigned char)(id * 7 + (uintptr_t)i);
    for (;;) {
        void *got = weft__ctx_switch(&rr_sp[id], rr_main_sp,
                                     (void *)(id << 16 | count));
        count++;
        if ((uintptr_t)got != count && rr_bad++ < 5)
            printf("# context %" PRIuPTR ": round: expected %" PRIuPTR
                   " got %" PRIuPTR "\n",
                   (uintptr_t)id, (uintptr_t)count, (uintptr_t)got);
        for (int i = 0; i < RR_CANARY; i++) {
            unsigned char want = (unsigned char)(id * 7 + (uintptr_t)i);
            if (canary[i] != want && rr_bad++ < 5)
                printf("# context %" PRIuPTR ": canary[%d]: expected %u "
                       "got %u\n",
                       (uintptr_t)id, i, want, canary[i]);
        }
    }
}

static int test_many_contexts(void)
{
    size_t len = (size_t)RR_N * RR_STACK;
    char *map = mmap(NULL, len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    int bad = 0;

    if (map == MAP_FAILED) {
        perror("# mmap");
        return 1;
    }
    for (uintptr_t i = 0; i < RR_N; i++)
        rr_sp[i] = weft__ctx_make(map + (i + 1) * RR_STACK, rr_entry);
    for (uintptr_t r = 0; r < RR_ROUNDS; r++) {
        for (uintptr_t i = 0; i < RR_N; i++) {
            /* The first switch is the entry's argument: the id. */
            void *arg = (void *)(r == 0 ? i : r);
            uintptr_t got =
                (uintptr_t)weft__ctx_switch(&rr_main_sp, rr_sp[i], arg);
            if (got != (i << 16 | r) && bad++ < 5)
                printf("# round %" PRIuPTR ", context %" PRIuPTR
                       ": expected 0x%" PRIxPTR " got 0x%" PRIxPTR "\n",
                       r, i, i << 16 | r, got);
        }
    }
    munmap(map, len);
    if (rr_bad)
        printf("# %d mismatches inside the contexts\n", rr_bad);
    return bad != 0 || rr_bad != 0;
}

/* ------------------------------------------------------------------ */
/* Deep recursion on a context's stack, suspended at the bottom. */

#define DEEP_LEVELS 64
#define DEEP_FRAME 1024

static void *deep_main_sp, *deep_sp;
static char *deep_top;
static uintptr_t deep_used;
static unsigned deep_bad;

/* Each level fills 1 KiB of its frame, recurses, then checks the fill:
 * the check after the return is what keeps this a real recursion. */
__attribute__((noinline)) static unsigned deep(unsigned level)
{
    volatile unsigned char buf[DEEP_FRAME];
    unsigned bad = 0;

    for (unsigned i = 0; i < DEEP_FRAME; i++)
        buf[i] = (unsigned char)(level * 31 + i);
    if (level + 1 < DEEP_LEVELS) {
        bad += deep(level + 1);
    } else {
        deep_used = (uintptr_t)deep_top - regs_call_sp();
        weft__ctx_switch(&deep_sp, deep_main_sp, TOKEN(1));
    }
    for (unsigned i = 0; i < DEEP_FRAME; i++)
        bad += buf[i] != (unsigned char)(level * 31 + i);
    return bad;
}

static void deep_entry(void *arg)
{
    (void)arg;
    deep_bad = deep(0);
    weft__ctx_switch(&deep_sp, deep_main_sp, TOKEN(2));
    abort(); /* never resumed */
}

/* main's own frames while the deep context is suspended. */
__attribute__((noinline)) static unsigned scribble(unsigned n)
{
    volatile unsigned char buf[DEEP_FRAME];

    memset((void *)buf, 0xa5, sizeof buf);
    return n ? buf[n % DEEP_FRAME] + scribble(n - 1) : buf[0];
}

static int test_deep_recursion(void)
{
    struct stack st;
    int bad = 0;

    if (stack_new(&st, STACK_SIZE) != 0)
        return 1;
    deep_top = st.top;
    void *to = weft__ctx_make(st.top, deep_entry);
    bad += check_ptr("switch into the recursion returned", TOKEN(1),
                     weft__ctx_switch(&deep_main_sp, to, NULL));
    (void)scribble(16);
    bad += check_ptr("resuming the recursion returned", TOKEN(2),
                     weft__ctx_switch(&deep_main_sp, deep_sp, NULL));
    if (deep_bad) {
        printf("# bytes changed in the suspended frames: expected 0 "
               "got %u\n",
               deep_bad);
        bad++;
    }
    if (deep_used < DEEP_LEVELS * DEEP_FRAME) {
        printf("# stack used: expected at least %d got %" PRIuPTR "\n",
               DEEP_LEVELS * DEEP_FRAME, deep_used);
        bad++;
    }
    stack_free(&st);
    return bad != 0;
}

/* ------------------------------------------------------------------ */
/* Runner: each test in a forked child with a time limit; TAP out. */

#ifdef WEFT_SWITCH_UCONTEXT
#define ASM_ONLY "ucontext: no frame of weft's own"
#else
#define ASM_ONLY NULL
#endif

static const struct {
    const char *name;
    int (*fn)(void);
    const char *skip; /* non-NULL: why this build skips it */
} tests[] = {
    {"callee-saved registers and FP control survive (main side)",
     test_regs_main, NULL},
    {"callee-saved registers and FP control survive (peer side)",
     test_regs_peer, NULL},
    {"a fresh entry receives the switch's arg", test_fresh_arg, NULL},
    {"a fresh context starts with the default FP control state",
     test_fresh_fpctl, NULL},
    {"each switch returns the arg of the switch that resumed it",
     test_arg_roundtrip, NULL},
    {"entry runs on an ABI-aligned stack for any top", test_entry_alignment,
     NULL},
    {"a fresh frame uses WEFT_CTX_FRAME bytes", test_frame_size, ASM_ONLY},
    {"a fresh entry sees the frame-pointer chain ended", test_fp_chain_end,
     ASM_ONLY},
    {"the unwinder stops at the trampoline", test_unwind_end, ASM_ONLY},
    {"1000 contexts, 100 round-robin rounds", test_many_contexts, NULL},
    {"64 KiB recursion on a context stack, suspended at the bottom",
     test_deep_recursion, NULL},
};

#define TIME_LIMIT 60 /* seconds per test; qemu-user included */

int main(void)
{
    int n = (int)(sizeof tests / sizeof tests[0]);
    int failed = 0;

    printf("1..%d\n", n);
    for (int i = 0; i < n; i++) {
        if (tests[i].skip) {
            printf("ok %d - %s # SKIP %s\n", i + 1, tests[i].name,
                   tests[i].skip);
            continue;
        }
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            alarm(TIME_LIMIT);
            int rc = tests[i].fn();
            fflush(stdout);
            _exit(rc);
        }
        int status = 0;
        if (pid < 0 || waitpid(pid, &status, 0) != pid) {
            perror("# fork/waitpid");
            status = -1;
        } else if (WIFSIGNALED(status)) {
            printf("# died of signal %d\n", WTERMSIG(status));
        }
        int ok = pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
        printf("%s %d - %s\n", ok ? "ok" : "not ok", i + 1, tests[i].name);
        failed += !ok;
    }
    fflush(stdout);
    return failed != 0;
}
