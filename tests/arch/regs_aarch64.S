/*
 * regs_aarch64.S - register probes for tests/arch/test_switch_regs.c,
 * AArch64, AAPCS64 ("Machine Registers": x19-x29, sp and d8-d15 are
 * callee-saved; FPCR is global state an ordinary function preserves).
 *
 *   void *regs_roundtrip(void **save, void *to, void *arg,
 *                        const uint64_t *in, uint64_t *out);
 *   void regs_fpctl(uint64_t *out);
 *   void regs_set_fpctl(const uint64_t *in);
 *   uintptr_t regs_call_sp(void);
 *   void regs_fp_entry(void *p);
 *
 * regs_roundtrip loads in[] into every callee-saved register and FPCR,
 * calls weft__ctx_switch(save, to, arg), and when that returns stores the
 * same registers into out[] and returns what the switch returned. Compiled
 * code cannot do this: it would keep its own values in those registers. The
 * probe is itself ABI-conforming (it restores its caller's registers and
 * FPCR), so C may call it like any function. x30 is not probed: the bl
 * into the switch overwrites it, and returning to the right place is what
 * proves it was saved. Array layout (index: register), shared with C:
 *
 *     in/out  0-10  x19-x29        11-18  d8-d15        19  FPCR
 *     out     20    sp before the switch                21  sp after it
 *
 * regs_fpctl stores the current FPCR as out[0]; regs_set_fpctl loads it
 * from in[0]. regs_call_sp returns the stack pointer of its caller, which
 * AAPCS64 wants 16-byte aligned.
 *
 * regs_fp_entry is an entry for weft__ctx_make: p points to { uint64_t fp;
 * void **save; void **back; }; it stores the frame pointer (x29) it was
 * entered with in fp, then switches to *back, saving into *save, and is
 * never resumed.
 */
        .text

        .globl  regs_roundtrip
        .type   regs_roundtrip, %function
        .p2align 4
regs_roundtrip:
        .cfi_startproc
        stp     x29, x30, [sp, #-176]!  /* the caller's registers */
        .cfi_def_cfa_offset 176
        .cfi_offset x29, -176
        .cfi_offset x30, -168
        stp     x19, x20, [sp, #16]
        stp     x21, x22, [sp, #32]
        stp     x23, x24, [sp, #48]
        stp     x25, x26, [sp, #64]
        stp     x27, x28, [sp, #80]
        stp     d8, d9, [sp, #96]
        stp     d10, d11, [sp, #112]
        stp     d12, d13, [sp, #128]
        stp     d14, d15, [sp, #144]
        mrs     x9, fpcr                /* the caller's FPCR */
        stp     x9, x4, [sp, #160]      /* and out, kept across the
                                           switch */

        ldr     x9, [x3, #152]          /* in[19] */
        msr     fpcr, x9
        ldp     x19, x20, [x3, #0]      /* in[0..10] */
        ldp     x21, x22, [x3, #16]
        ldp     x23, x24, [x3, #32]
        ldp     x25, x26, [x3, #48]
        ldp     x27, x28, [x3, #64]
        ldr     x29, [x3, #80]
        ldp     d8, d9, [x3, #88]       /* in[11..18] */
        ldp     d10, d11, [x3, #104]
        ldp     d12, d13, [x3, #120]
        ldp     d14, d15, [x3, #136]
        mov     x9, sp
        str     x9, [x4, #160]          /* out[20]: sp before */
        bl      weft__ctx_switch        /* x0-x2: ours as given */

        ldr     x9, [sp, #168]          /* out */
        mov     x10, sp
        str     x10, [x9, #168]         /* out[21]: sp after */
        stp     x19, x20, [x9, #0]      /* out[0..10] */
        stp     x21, x22, [x9, #16]
        stp     x23, x24, [x9, #32]
        stp     x25, x26, [x9, #48]
        stp     x27, x28, [x9, #64]
        str     x29, [x9, #80]
        stp     d8, d9, [x9, #88]       /* out[11..18] */
        stp     d10, d11, [x9, #104]
        stp     d12, d13, [x9, #120]
        stp     d14, d15, [x9, #136]
        mrs     x10, fpcr
        str     x10, [x9, #152]         /* out[19] */

        ldr     x10, [sp, #160]         /* the caller's FPCR */
        msr     fpcr, x10
        ldp     d8, d9, [sp, #96]       /* the caller's registers */
        ldp     d10, d11, [sp, #112]
        ldp     d12, d13, [sp, #128]
        ldp     d14, d15, [sp, #144]
        ldp     x19, x20, [sp, #16]
        ldp     x21, x22, [sp, #32]
        ldp     x23, x24, [sp, #48]
        ldp     x25, x26, [sp, #64]
        ldp     x27, x28, [sp, #80]
        ldp     x29, x30, [sp], #176
        .cfi_restore x29
        .cfi_restore x30
        .cfi_def_cfa_offset 0
        ret                             /* x0: what the switch returned */
        .cfi_endproc
        .size   regs_roundtrip, .-regs_roundtrip

        .globl  regs_fpctl
        .type   regs_fpctl, %function
        .p2align 4
regs_fpctl:
        .cfi_startproc
        mrs     x9, fpcr
        str     x9, [x0]                /* out[0]: FPCR */
        ret
        .cfi_endproc
        .size   regs_fpctl, .-regs_fpctl

        .globl  regs_set_fpctl
        .type   regs_set_fpctl, %function
        .p2align 4
regs_set_fpctl:
        .cfi_startproc
        ldr     x9, [x0]
        msr     fpcr, x9                /* FPCR = in[0] */
        ret
        .cfi_endproc
        .size   regs_set_fpctl, .-regs_set_fpctl

        .globl  regs_call_sp
        .type   regs_call_sp, %function
        .p2align 4
regs_call_sp:
        .cfi_startproc
        mov     x0, sp                  /* bl does not move sp */
        ret
        .cfi_endproc
        .size   regs_call_sp, .-regs_call_sp

        .globl  regs_fp_entry
        .type   regs_fp_entry, %function
        .p2align 4
regs_fp_entry:
        .cfi_startproc
        str     x29, [x0]               /* p->fp = the frame pointer */
        ldr     x1, [x0, #16]
        ldr     x1, [x1]                /* to = *p->back */
        ldr     x0, [x0, #8]            /* save = p->save */
        mov     x2, xzr                 /* arg = NULL */
        bl      weft__ctx_switch
        brk     #1000                   /* never resumed */
        .cfi_endproc
        .size   regs_fp_entry, .-regs_fp_entry

        .section .note.GNU-stack,"",%progbits
