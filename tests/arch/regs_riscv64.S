/*
 * regs_riscv64.S - register probes for tests/arch/test_switch_regs.c,
 * RV64 LP64D, RISC-V psABI (§1.1 "Register Convention": s0-s11, sp and
 * fs0-fs11 are preserved across calls; fcsr has thread storage duration,
 * which weft's port keeps per task).
 *
 *   void *regs_roundtrip(void **save, void *to, void *arg,
 *                        const uint64_t *in, uint64_t *out);
 *   void regs_fpctl(uint64_t *out);
 *   void regs_set_fpctl(const uint64_t *in);
 *   uintptr_t regs_call_sp(void);
 *   void regs_fp_entry(void *p);
 *
 * regs_roundtrip loads in[] into every callee-saved register and fcsr,
 * calls weft__ctx_switch(save, to, arg), and when that returns stores the
 * same registers into out[] and returns what the switch returned. Compiled
 * code cannot do this: it would keep its own values in those registers. The
 * probe is itself ABI-conforming (it restores its caller's registers and
 * fcsr), so C may call it like any function. ra is not probed: the call
 * into the switch overwrites it, and returning to the right place is what
 * proves it was saved. Array layout (index: register), shared with C:
 *
 *     in/out  0-11  s0-s11         12-23  fs0-fs11      24  fcsr
 *     out     25    sp before the switch                26  sp after it
 *
 * regs_fpctl stores the current fcsr as out[0]; regs_set_fpctl loads it
 * from in[0]. regs_call_sp returns the stack pointer of its caller, which
 * the psABI wants 16-byte aligned.
 *
 * regs_fp_entry is an entry for weft__ctx_make: p points to { uint64_t fp;
 * void **save; void **back; }; it stores the frame pointer (s0) it was
 * entered with in fp, then switches to *back, saving into *save, and is
 * never resumed.
 */
        .text

        .globl  regs_roundtrip
        .type   regs_roundtrip, @function
        .p2align 2
regs_roundtrip:
        .cfi_startproc
        addi    sp, sp, -224            /* the caller's registers */
        .cfi_def_cfa_offset 224
        sd      ra, 0(sp)
        .cfi_offset ra, -224
        sd      s0, 8(sp)
        sd      s1, 16(sp)
        sd      s2, 24(sp)
        sd      s3, 32(sp)
        sd      s4, 40(sp)
        sd      s5, 48(sp)
        sd      s6, 56(sp)
        sd      s7, 64(sp)
        sd      s8, 72(sp)
        sd      s9, 80(sp)
        sd      s10, 88(sp)
        sd      s11, 96(sp)
        fsd     fs0, 104(sp)
        fsd     fs1, 112(sp)
        fsd     fs2, 120(sp)
        fsd     fs3, 128(sp)
        fsd     fs4, 136(sp)
        fsd     fs5, 144(sp)
        fsd     fs6, 152(sp)
        fsd     fs7, 160(sp)
        fsd     fs8, 168(sp)
        fsd     fs9, 176(sp)
        fsd     fs10, 184(sp)
        fsd     fs11, 192(sp)
        frcsr   t0                      /* the caller's fcsr */
        sd      t0, 200(sp)
        sd      a4, 208(sp)             /* keep out across the switch */

        ld      t0, 192(a3)             /* in[24] */
        fscsr   t0
        ld      s0, 0(a3)               /* in[0..11] */
        ld      s1, 8(a3)
        ld      s2, 16(a3)
        ld      s3, 24(a3)
        ld      s4, 32(a3)
        ld      s5, 40(a3)
        ld      s6, 48(a3)
        ld      s7, 56(a3)
        ld      s8, 64(a3)
        ld      s9, 72(a3)
        ld      s10, 80(a3)
        ld      s11, 88(a3)
        fld     fs0, 96(a3)             /* in[12..23] */
        fld     fs1, 104(a3)
        fld     fs2, 112(a3)
        fld     fs3, 120(a3)
        fld     fs4, 128(a3)
        fld     fs5, 136(a3)
        fld     fs6, 144(a3)
        fld     fs7, 152(a3)
        fld     fs8, 160(a3)
        fld     fs9, 168(a3)
        fld     fs10, 176(a3)
        fld     fs11, 184(a3)
        sd      sp, 200(a4)             /* out[25]: sp before */
        call    weft__ctx_switch        /* a0-a2: ours as given */

        ld      t0, 208(sp)             /* out */
        sd      sp, 208(t0)             /* out[26]: sp after */
        sd      s0, 0(t0)               /* out[0..11] */
        sd      s1, 8(t0)
        sd      s2, 16(t0)
        sd      s3, 24(t0)
        sd      s4, 32(t0)
        sd      s5, 40(t0)
        sd      s6, 48(t0)
        sd      s7, 56(t0)
        sd      s8, 64(t0)
        sd      s9, 72(t0)
        sd      s10, 80(t0)
        sd      s11, 88(t0)
        fsd     fs0, 96(t0)             /* out[12..23] */
        fsd     fs1, 104(t0)
        fsd     fs2, 112(t0)
        fsd     fs3, 120(t0)
        fsd     fs4, 128(t0)
        fsd     fs5, 136(t0)
        fsd     fs6, 144(t0)
        fsd     fs7, 152(t0)
        fsd     fs8, 160(t0)
        fsd     fs9, 168(t0)
        fsd     fs10, 176(t0)
        fsd     fs11, 184(t0)
        frcsr   t1
        sd      t1, 192(t0)             /* out[24] */

        ld      t1, 200(sp)             /* the caller's fcsr */
        fscsr   t1
        ld      s0, 8(sp)               /* the caller's registers */
        ld      s1, 16(sp)
        ld      s2, 24(sp)
        ld      s3, 32(sp)
        ld      s4, 40(sp)
        ld      s5, 48(sp)
        ld      s6, 56(sp)
        ld      s7, 64(sp)
        ld      s8, 72(sp)
        ld      s9, 80(sp)
        ld      s10, 88(sp)
        ld      s11, 96(sp)
        fld     fs0, 104(sp)
        fld     fs1, 112(sp)
        fld     fs2, 120(sp)
        fld     fs3, 128(sp)
        fld     fs4, 136(sp)
        fld     fs5, 144(sp)
        fld     fs6, 152(sp)
        fld     fs7, 160(sp)
        fld     fs8, 168(sp)
        fld     fs9, 176(sp)
        fld     fs10, 184(sp)
        fld     fs11, 192(sp)
        ld      ra, 0(sp)
        .cfi_restore ra
        addi    sp, sp, 224
        .cfi_def_cfa_offset 0
        ret                             /* a0: what the switch returned */
        .cfi_endproc
        .size   regs_roundtrip, .-regs_roundtrip

        .globl  regs_fpctl
        .type   regs_fpctl, @function
        .p2align 2
regs_fpctl:
        .cfi_startproc
        frcsr   t0
        sd      t0, 0(a0)               /* out[0]: fcsr */
        ret
        .cfi_endproc
        .size   regs_fpctl, .-regs_fpctl

        .globl  regs_set_fpctl
        .type   regs_set_fpctl, @function
        .p2align 2
regs_set_fpctl:
        .cfi_startproc
        ld      t0, 0(a0)
        fscsr   t0                      /* fcsr = in[0] */
        ret
        .cfi_endproc
        .size   regs_set_fpctl, .-regs_set_fpctl

        .globl  regs_call_sp
        .type   regs_call_sp, @function
        .p2align 2
regs_call_sp:
        .cfi_startproc
        mv      a0, sp                  /* a call does not move sp */
        ret
        .cfi_endproc
        .size   regs_call_sp, .-regs_call_sp

        .globl  regs_fp_entry
        .type   regs_fp_entry, @function
        .p2align 2
regs_fp_entry:
        .cfi_startproc
        sd      s0, 0(a0)               /* p->fp = the frame pointer */
        ld      a1, 16(a0)
        ld      a1, 0(a1)               /* to = *p->back */
        ld      a0, 8(a0)               /* save = p->save */
        li      a2, 0                   /* arg = NULL */
        call    weft__ctx_switch
        ebreak                          /* never resumed */
        .cfi_endproc
        .size   regs_fp_entry, .-regs_fp_entry

        .section .note.GNU-stack,"",@progbits
