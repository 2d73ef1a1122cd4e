/*
 * switch_ucontext.c - the stack-switch contract of ctx.h on <ucontext.h>.
 *
 * The portable fallback (WEFT_SWITCH=ucontext) for an ISA without an
 * assembly port, and a second implementation the register test in
 * tests/arch can hold the ports against. getcontext, makecontext and
 * swapcontext are POSIX.1-2001 (withdrawn in 2008; glibc has them, musl
 * users need libucontext). glibc's swapcontext saves every callee-saved register and the FP
 * control state of the ABI (x86_64: MXCSR and the x87 environment; aarch64:
 * FPCR and FPSR; riscv64: fcsr), but also the signal mask, with a system
 * call at every switch: that is why this is the fallback and not the
 * default.
 *
 * Design. ctx.h deals in one pointer per context. Here it points to a
 * `frame` on the context's own stack: a ucontext_t and the slot through
 * which the switch that resumes the context hands over `arg`. A suspended
 * context's frame is a local of its weft__ctx_switch call; a fresh
 * context's frame is placed just below `top` by weft__ctx_make. Nothing is
 * allocated, nothing is global.
 *
 * Why arg travels in the frame rather than in a _Thread_local: a task
 * suspended on one thread may resume on another, and a compiler may keep a
 * thread-local's address (thread pointer plus offset, or what
 * __tls_get_addr returned) in a callee-saved register across the
 * swapcontext call, so the resumed side would read the first thread's
 * variable (docs/hacking.md, migration). A frame moves with its stack.
 *
 * glibc's opt-in CET shadow stacks are not supported: makecontext would
 * size a shadow stack from uc_stack, whose extent weft__ctx_make does not
 * know.
 *
 * A fresh context runs `trampoline` first, which resets the floating-point
 * environment to its default (fesetenv(FE_DFL_ENV), from libm) because the
 * ucontext it starts from carries the FP state of whoever called
 * weft__ctx_make, and a fresh frame of the assembly ports holds the
 * default. makecontext passes only int arguments, so the frame's address
 * reaches the trampoline as two 32-bit halves.
 *
 * Stack use: a fresh frame takes sizeof(struct frame) bytes below `top`
 * (rounded to 64-byte alignment), and each suspended context keeps one
 * struct frame in its weft__ctx_switch call; with glibc that is about 1 KiB
 * on x86_64 and riscv64 and 4.5 KiB on aarch64, whose mcontext_t reserves
 * 4 KiB for the FP/SIMD and SVE records.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* getcontext and friends under -std=c11 */
#endif

#include <errno.h>
#include <fenv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include "ctx.h"

/* One context's saved state; lives on that context's stack. */
struct frame {
    ucontext_t uc;         /* registers, signal mask: swapcontext's */
    void *arg;             /* written by the switch that resumes it */
    void (*entry)(void *); /* fresh frames only: what the first run calls */
};

/* A fresh frame is aligned down to this, which covers ucontext_t's
 * strictest member (16 on aarch64, where mcontext_t is 16-aligned). */
#define FRAME_ALIGN 64
_Static_assert(_Alignof(struct frame) <= FRAME_ALIGN,
               "FRAME_ALIGN must cover struct frame");

/* A broken invariant: one stderr line, then abort. err is an errno value
 * or 0. */
static _Noreturn void die(const char *what, int err)
{
    if (err)
        fprintf(stderr, "arch: %s: %s\n", what, strerror(err));
    else
        fprintf(stderr, "arch: %s\n", what);
    abort();
}

/* First function run by a fresh context, on its stack; `hi` and `lo` are
 * the halves of its frame's address. Never returns. */
static void trampoline(unsigned hi, unsigned lo)
{
    uint64_t at = (uint64_t)hi << 32 | lo;
    struct frame *f = (struct frame *)(uintptr_t)at;

    /* Cannot fail with FE_DFL_ENV on glibc or musl. */
    (void)fesetenv(FE_DFL_ENV);
    f->entry(f->arg);
    die("a context's entry returned", 0);
}

/* Calling context: any thread; `to` not running anywhere (ctx.h). */
void *weft__ctx_switch(void **save, void *to, void *arg)
{
    struct frame self;
    struct frame *next = to;

    /* The resumed side reads arg from its own frame: see the header. */
    next->arg = arg;
    /* No stack to describe (see weft__ctx_make); sanitizers' swapcontext
     * interceptors read it when this context is resumed. */
    self.uc.uc_stack.ss_sp = NULL;
    self.uc.uc_stack.ss_size = 0;
    *save = &self;
    if (swapcontext(&self.uc, &next->uc) != 0)
        die("swapcontext", errno); /* only on bad pointers */
    /* Resumed, maybe on another thread: self.arg was set by our resumer. */
    return self.arg;
}

/* Calling context: any thread; the stack below `top` is unused. */
void *weft__ctx_make(void *top, void (*entry)(void *))
{
    uintptr_t at =
        ((uintptr_t)top - sizeof(struct frame)) & ~(uintptr_t)(FRAME_ALIGN - 1);
    struct frame *f = (struct frame *)at;

    /* makecontext requires a ucontext initialised by getcontext. */
    if (getcontext(&f->uc) != 0)
        die("getcontext", errno);
    f->uc.uc_link = NULL; /* never used: trampoline does not return */
    /* makecontext uses uc_stack only for the initial stack pointer,
     * ss_sp + ss_size, and the stack's extent is not known here: name the
     * top with an empty span rather than invent a size (a sanitizer's
     * swapcontext interceptor would clear shadow memory over it). */
    f->uc.uc_stack.ss_sp = f;
    f->uc.uc_stack.ss_size = 0;
    f->arg = NULL;
    f->entry = entry;
    /* void (*)(void) is the type makecontext wants; casting to it is the
     * one function-pointer cast C compilers accept without warning. */
    makecontext(&f->uc, (void (*)(void))trampoline, 2,
                (unsigned)((uint64_t)at >> 32), (unsigned)at);
    return f;
}
