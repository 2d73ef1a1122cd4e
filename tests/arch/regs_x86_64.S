/*
 * regs_x86_64.S - register probes for tests/arch/test_switch_regs.c,
 * x86_64, System V psABI (§3.2.1 "Registers": rbx, rbp, r12-r15, rsp, the
 * MXCSR control bits and the x87 control word are callee-saved).
 *
 *   void *regs_roundtrip(void **save, void *to, void *arg,
 *                        const uint64_t *in, uint64_t *out);
 *   void regs_fpctl(uint64_t *out);
 *   void regs_set_fpctl(const uint64_t *in);
 *   uintptr_t regs_call_sp(void);
 *   void regs_fp_entry(void *p);
 *
 * regs_roundtrip loads in[] into every callee-saved register and the FP
 * control registers, calls weft__ctx_switch(save, to, arg), and when that
 * returns stores the same registers into out[] and returns what the switch
 * returned. Compiled code cannot do this: it would keep its own values in
 * those registers. The probe is itself ABI-conforming (it restores its
 * caller's registers and control words), so C may call it like any
 * function. Array layout (index: register), shared with the C side:
 *
 *     in/out  0 rbx   1 rbp   2 r12   3 r13   4 r14   5 r15
 *             6 MXCSR (low 32 bits)   7 x87 control word (low 16 bits)
 *     out     8 rsp before the switch 9 rsp after it
 *
 * regs_fpctl stores the current MXCSR and x87 control word as out[0..1];
 * regs_set_fpctl loads them from in[0..1]. regs_call_sp returns the stack
 * pointer of its caller at the call instruction, which the ABI wants
 * 16-byte aligned.
 *
 * regs_fp_entry is an entry for weft__ctx_make: p points to { uint64_t fp;
 * void **save; void **back; }; it stores the frame pointer (rbp) it was
 * entered with in fp, then switches to *back, saving into *save, and is
 * never resumed.
 */
        .text

        .globl  regs_roundtrip
        .type   regs_roundtrip, @function
        .p2align 4
regs_roundtrip:
        .cfi_startproc
        pushq   %rbp                    /* the caller's registers */
        .cfi_adjust_cfa_offset 8
        .cfi_offset rbp, -16
        pushq   %rbx
        .cfi_adjust_cfa_offset 8
        .cfi_offset rbx, -24
        pushq   %r12
        .cfi_adjust_cfa_offset 8
        .cfi_offset r12, -32
        pushq   %r13
        .cfi_adjust_cfa_offset 8
        .cfi_offset r13, -40
        pushq   %r14
        .cfi_adjust_cfa_offset 8
        .cfi_offset r14, -48
        pushq   %r15
        .cfi_adjust_cfa_offset 8
        .cfi_offset r15, -56
        subq    $24, %rsp               /* out, MXCSR, x87 CW; rsp is now
                                           16-aligned for the call */
        .cfi_adjust_cfa_offset 24
        movq    %r8, (%rsp)             /* keep out across the switch */
        stmxcsr 8(%rsp)                 /* the caller's MXCSR */
        fnstcw  12(%rsp)                /* and x87 control word */

        ldmxcsr 48(%rcx)                /* in[6] */
        fldcw   56(%rcx)                /* in[7] */
        movq    0(%rcx), %rbx           /* in[0..5] */
        movq    8(%rcx), %rbp
        movq    16(%rcx), %r12
        movq    24(%rcx), %r13
        movq    32(%rcx), %r14
        movq    40(%rcx), %r15
        movq    %rsp, 64(%r8)           /* out[8]: rsp before */
        call    weft__ctx_switch        /* rdi, rsi, rdx: ours as given */

        movq    (%rsp), %rcx            /* out */
        movq    %rsp, 72(%rcx)          /* out[9]: rsp after */
        movq    %rbx, 0(%rcx)           /* out[0..5] */
        movq    %rbp, 8(%rcx)
        movq    %r12, 16(%rcx)
        movq    %r13, 24(%rcx)
        movq    %r14, 32(%rcx)
        movq    %r15, 40(%rcx)
        movq    $0, 48(%rcx)            /* out[6]: MXCSR, upper half 0 */
        stmxcsr 48(%rcx)
        movq    $0, 56(%rcx)            /* out[7]: x87 CW, the rest 0 */
        fnstcw  56(%rcx)

        ldmxcsr 8(%rsp)                 /* the caller's control words */
        fldcw   12(%rsp)
        addq    $24, %rsp
        .cfi_adjust_cfa_offset -24
        popq    %r15                    /* the caller's registers */
        .cfi_adjust_cfa_offset -8
        popq    %r14
        .cfi_adjust_cfa_offset -8
        popq    %r13
        .cfi_adjust_cfa_offset -8
        popq    %r12
        .cfi_adjust_cfa_offset -8
        popq    %rbx
        .cfi_adjust_cfa_offset -8
        popq    %rbp
        .cfi_adjust_cfa_offset -8
        ret                             /* rax: what the switch returned */
        .cfi_endproc
        .size   regs_roundtrip, .-regs_roundtrip

        .globl  regs_fpctl
        .type   regs_fpctl, @function
        .p2align 4
regs_fpctl:
        .cfi_startproc
        movq    $0, 0(%rdi)             /* out[0]: MXCSR */
        stmxcsr 0(%rdi)
        movq    $0, 8(%rdi)             /* out[1]: x87 control word */
        fnstcw  8(%rdi)
        ret
        .cfi_endproc
        .size   regs_fpctl, .-regs_fpctl

        .globl  regs_set_fpctl
        .type   regs_set_fpctl, @function
        .p2align 4
regs_set_fpctl:
        .cfi_startproc
        ldmxcsr 0(%rdi)                 /* MXCSR = in[0] */
        fldcw   8(%rdi)                 /* x87 control word = in[1] */
        ret
        .cfi_endproc
        .size   regs_set_fpctl, .-regs_set_fpctl

        .globl  regs_call_sp
        .type   regs_call_sp, @function
        .p2align 4
regs_call_sp:
        .cfi_startproc
        leaq    8(%rsp), %rax           /* above our return address */
        ret
        .cfi_endproc
        .size   regs_call_sp, .-regs_call_sp

        .globl  regs_fp_entry
        .type   regs_fp_entry, @function
        .p2align 4
regs_fp_entry:
        .cfi_startproc
        movq    %rbp, 0(%rdi)           /* p->fp = the frame pointer */
        subq    $8, %rsp                /* 16-aligned for the call */
        .cfi_adjust_cfa_offset 8
        movq    16(%rdi), %rsi
        movq    (%rsi), %rsi            /* to = *p->back */
        movq    8(%rdi), %rdi           /* save = p->save */
        xorl    %edx, %edx              /* arg = NULL */
        call    weft__ctx_switch
        ud2                             /* never resumed */
        .cfi_endproc
        .size   regs_fp_entry, .-regs_fp_entry

        .section .note.GNU-stack,"",@progbits
