/*
 * uctx.h - the interrupted context's program counter and stack pointer,
 * from a signal handler's ucontext, for each ISA weft builds for: the
 * preemption handler (sched/preempt.c) judges where a task was stopped,
 * the overflow handler (rt/overflow.c) whose stack faulted. 0 on an ISA
 * not listed (callers treat it as "unknown": never safe to preempt, only
 * guard-zone hits recognised).
 */
#ifndef WEFT_BASE_UCTX_H
#define WEFT_BASE_UCTX_H

#include <stdint.h>
#include <ucontext.h>

static inline uintptr_t weft__uc_pc(void *ucv)
{
    ucontext_t *uc = ucv;
#if defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (uintptr_t)uc->uc_mcontext.pc;
#elif defined(__riscv)
    return (uintptr_t)uc->uc_mcontext.__gregs[REG_PC];
#else
    (void)uc;
    return 0;
#endif
}

static inline uintptr_t weft__uc_sp(void *ucv)
{
    ucontext_t *uc = ucv;
#if defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    return (uintptr_t)uc->uc_mcontext.sp;
#elif defined(__riscv)
    return (uintptr_t)uc->uc_mcontext.__gregs[REG_SP];
#else
    (void)uc;
    return 0;
#endif
}

#endif
