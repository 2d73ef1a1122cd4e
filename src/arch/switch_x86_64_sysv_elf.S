/*
 * switch_x86_64_sysv_elf.S - stack switch for x86_64, System V ABI, ELF.
 *
 *   void *weft__ctx_switch(void **save, void *to, void *arg);
 *   void *weft__ctx_make(void *top, void (*entry)(void *));
 *
 * ABI: System V AMD64 psABI 1.0, §3.2.1 "Registers": rbx, rbp, r12-r15 and
 * rsp are callee-saved; the MXCSR control bits and the x87 control word are
 * callee-saved too; everything else (xmm0-15 included) is caller-saved and
 * needs no saving in a function the compiler sees as a call. The
 * direction flag is clear at every call and return by the same ABI.
 *
 * Saved frame, at the stack pointer stored in *save (offsets in bytes):
 *
 *     +56  return address     (where the switch was called from)
 *     +48  rbp
 *     +40  rbx
 *     +32  r12
 *     +24  r13
 *     +16  r14
 *     +8   r15
 *     +4   x87 control word   (16 bits, 2 bytes of padding above)
 *     +0   MXCSR              (32 bits)   <- saved stack pointer
 *
 * WEFT_CTX_FRAME in ctx.h is the size of this frame (64).
 *
 * Return by ret. The switch returns with ret, which the CPU predicts from
 * its return-stack buffer: the address pushed by the call into this
 * switch. That is right whenever the resumed context was suspended from
 * the same call site, which is the common case in weft (every yield,
 * park and exit goes through one inlined switch path). Boost.Context ends
 * with pop + jmp instead, which suits a raw ping-pong between two
 * different call sites (measured here: 4.7 ns vs 10.5 ns per switch for
 * such a ping-pong) but leaves the call's return-stack entry unpopped, so
 * every later ret of the task mispredicts: weft's `switch` benchmark went
 * from 8.5 ns (ret) to 17 ns (pop + jmp).
 *
 * The control words are restored unconditionally: skipping ldmxcsr/fldcw
 * when unchanged would save 0.35 ns, but the comparison reloads two
 * narrower stores as one word, and that store-forwarding stall costs more.
 *
 * A fresh frame from weft__ctx_make holds the default control words (MXCSR
 * 0x1f80, x87 CW 0x037f), rbp = 0, r12 = entry, and the trampoline as the
 * return address, so the first switch "returns" into the trampoline with
 * rdi = arg. The frame is placed so that the trampoline starts with rsp
 * 16-byte aligned; its call then gives entry the alignment of a called
 * function (rsp + 8 aligned).
 */
        .text

/* void *weft__ctx_switch(void **save, void *to, void *arg)
 * rdi = save, rsi = to, rdx = arg. Returns arg in rax (and rdi, for the
 * trampoline). */
        .globl  weft__ctx_switch
        .hidden weft__ctx_switch
        .type   weft__ctx_switch, @function
        .p2align 4
weft__ctx_switch:
        .cfi_startproc
        pushq   %rbp                    /* callee-saved integers */
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $8, %rsp                /* room for the control words */
        stmxcsr (%rsp)                  /* MXCSR control/status */
        fnstcw  4(%rsp)                 /* x87 control word */
        movq    %rsp, (%rdi)            /* *save = our stack pointer */

        movq    %rsi, %rsp              /* enter the other stack */
        ldmxcsr (%rsp)                  /* its MXCSR */
        fldcw   4(%rsp)                 /* its x87 control word */
        addq    $8, %rsp
        popq    %r15                    /* its callee-saved integers */
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        movq    %rdx, %rax              /* return arg to a resumed switch */
        movq    %rdx, %rdi              /* and pass it to a fresh entry */
        ret                             /* to where `to` called us from;
                                           ret, not pop+jmp: see the
                                           header */
        .cfi_endproc
        .size   weft__ctx_switch, .-weft__ctx_switch

/* First code run on a fresh stack. rdi = arg, r12 = entry, rbp = 0. */
        .type   weft_ctx_trampoline, @function
        .p2align 4
weft_ctx_trampoline:
        .cfi_startproc
        .cfi_undefined rip              /* end of stack for unwinders */
        callq   *%r12                   /* entry(arg); never returns */
        ud2                             /* it returned: trap */
        .cfi_endproc
        .size   weft_ctx_trampoline, .-weft_ctx_trampoline

/* void *weft__ctx_make(void *top, void (*entry)(void *))
 * rdi = top, rsi = entry. Returns the stack pointer of a fresh frame. */
        .globl  weft__ctx_make
        .hidden weft__ctx_make
        .type   weft__ctx_make, @function
        .p2align 4
weft__ctx_make:
        .cfi_startproc
        movq    %rdi, %rax
        andq    $-16, %rax              /* trampoline rsp: 16-aligned */
        subq    $64, %rax               /* the frame drawn above */
        movl    $0x1f80, (%rax)         /* MXCSR: all masked, nearest */
        movl    $0x037f, 4(%rax)        /* x87 CW: masked, double ext. */
        movq    $0, 8(%rax)             /* r15 */
        movq    $0, 16(%rax)            /* r14 */
        movq    $0, 24(%rax)            /* r13 */
        movq    %rsi, 32(%rax)          /* r12 = entry */
        movq    $0, 40(%rax)            /* rbx */
        movq    $0, 48(%rax)            /* rbp = 0 ends the fp chain */
        leaq    weft_ctx_trampoline(%rip), %rcx
        movq    %rcx, 56(%rax)          /* return address */
        ret
        .cfi_endproc
        .size   weft__ctx_make, .-weft__ctx_make

/* void weft__ctx_start(void *top, void (*entry)(void *), void *arg)
 * rdi = top, rsi = entry, rdx = arg. Never returns. */
        .globl  weft__ctx_start
        .hidden weft__ctx_start
        .type   weft__ctx_start, @function
        .p2align 4
weft__ctx_start:
        .cfi_startproc
        .cfi_undefined rip              /* end of stack for unwinders */
        movq    %rdi, %rsp
        andq    $-16, %rsp              /* aligned before the call, so
                                           entry sees rsp + 8 aligned */
        ldmxcsr weft_ctx_default_fp(%rip)   /* MXCSR 0x1f80 */
        fldcw   weft_ctx_default_fp+4(%rip) /* x87 CW 0x037f */
        xorl    %ebp, %ebp              /* end the frame-pointer chain */
        movq    %rdx, %rdi              /* entry(arg) */
        callq   *%rsi
        ud2                             /* entry returned: trap */
        .cfi_endproc
        .size   weft__ctx_start, .-weft__ctx_start

        .section .rodata
        .p2align 3
        .type   weft_ctx_default_fp, @object
weft_ctx_default_fp:
        .long   0x1f80                  /* MXCSR: all masked, nearest */
        .short  0x037f                  /* x87 CW: masked, double ext. */
        .short  0
        .size   weft_ctx_default_fp, 8

        .section .note.GNU-stack,"",@progbits
