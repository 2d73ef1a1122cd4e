/*
 * switch_riscv64_lp64d_elf.S - stack switch for RV64, LP64D ABI, ELF.
 *
 *   void *weft__ctx_switch(void **save, void *to, void *arg);
 *   void *weft__ctx_make(void *top, void (*entry)(void *));
 *
 * ABI: RISC-V ELF psABI 1.0, "Calling Convention", §1.1 "Register
 * Convention": ra, sp, s0-s11 and, under LP64D, fs0-fs11 (all 64 bits) are
 * preserved across calls; everything else (t*, a*, ft*, fa*, the vector
 * state) is not and needs no saving in a function the compiler sees as a
 * call. gp and tp are not the callee's to save: gp is constant for the
 * program, tp belongs to the thread, and tasks move between threads.
 *
 * FP control state, same section: "The Floating-Point Control and Status
 * Register (fcsr) must have thread storage duration in accordance with C11
 * section 7.6". So it is neither caller- nor callee-saved: it belongs to
 * the thread of execution, like C11's floating-point environment (control
 * modes and status flags together). A weft task is a thread of execution to
 * its code, so each task keeps its own fcsr: the switch saves and restores
 * the whole register, the dynamic rounding mode frm (bits 5-7) and the
 * accrued exception flags fflags (bits 0-4) alike. Keeping frm alone would
 * let flags raised by one task appear in another's fetestexcept; it would
 * cost the same (one csrr, one csrw).
 *
 * Saved frame, at the stack pointer stored in *save (offsets in bytes):
 *
 *     +200  fcsr               (frm and fflags)
 *     +192  fs11
 *      ...                     (+104 + 8 * n holds fs<n>)
 *     +104  fs0
 *     +96   s11
 *      ...                     (+8 + 8 * n holds s<n>, n = 1..11)
 *     +16   s1
 *     +8    ra                 (where the switch was called from)
 *     +0    s0 (fp)            <- saved stack pointer
 *
 * WEFT_CTX_FRAME in ctx.h is the size of this frame (208, a multiple of 16
 * already: no padding). s0 and ra sit at the bottom so that the pair reads
 * as the psABI's frame record (fp - 16: previous fp, fp - 8: ra) for
 * fp = *save + 16: a tool walking a suspended task starts there.
 *
 * Return by ret (jalr x0, 0(ra)), which the return-address stack predicts,
 * as on the other ports.
 *
 * fcsr is written unconditionally, as MXCSR is on x86_64. Whether
 * skipping an unchanged value pays, as it may for FPCR on aarch64, depends
 * on the core and was not measured (only qemu was available).
 *
 * A fresh frame from weft__ctx_make holds fcsr 0 (round to nearest, ties
 * to even; no flags: the Linux initial value), s0 = 0, s1 = entry, the
 * trampoline as ra and zeros elsewhere, so the first switch "returns" into
 * the trampoline with a0 = arg. The frame is placed so that the trampoline
 * starts with sp 16-byte aligned, as the psABI requires at every procedure
 * entry ("Integer Calling Convention": the stack pointer shall be aligned
 * to a 128-bit boundary upon procedure entry).
 */
        .text

/* void *weft__ctx_switch(void **save, void *to, void *arg)
 * a0 = save, a1 = to, a2 = arg. Returns arg in a0 (which is also the first
 * argument of a fresh entry). */
        .globl  weft__ctx_switch
        .hidden weft__ctx_switch
        .type   weft__ctx_switch, @function
        .p2align 4
weft__ctx_switch:
        .cfi_startproc
        .cfi_remember_state             /* the state at entry, see below */
        addi    sp, sp, -208            /* open the frame */
        .cfi_def_cfa_offset 208
        sd      s0, 0(sp)               /* frame pointer */
        sd      ra, 8(sp)               /* return address */
        sd      s1, 16(sp)              /* callee-saved integers */
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
        .cfi_offset s0, -208
        .cfi_offset ra, -200
        .cfi_offset s1, -192
        .cfi_offset s2, -184
        .cfi_offset s3, -176
        .cfi_offset s4, -168
        .cfi_offset s5, -160
        .cfi_offset s6, -152
        .cfi_offset s7, -144
        .cfi_offset s8, -136
        .cfi_offset s9, -128
        .cfi_offset s10, -120
        .cfi_offset s11, -112
        fsd     fs0, 104(sp)            /* callee-saved doubles */
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
        .cfi_offset fs0, -104
        .cfi_offset fs1, -96
        .cfi_offset fs2, -88
        .cfi_offset fs3, -80
        .cfi_offset fs4, -72
        .cfi_offset fs5, -64
        .cfi_offset fs6, -56
        .cfi_offset fs7, -48
        .cfi_offset fs8, -40
        .cfi_offset fs9, -32
        .cfi_offset fs10, -24
        .cfi_offset fs11, -16
        frcsr   t0                      /* our fcsr: frm and fflags */
        sd      t0, 200(sp)
        sd      sp, 0(a0)               /* *save = our stack pointer */

        /* From here on sp is the other context's, whose frame has the
         * same layout: the CFI above describes it too. */
        mv      sp, a1                  /* enter the other stack */
        ld      t0, 200(sp)             /* its fcsr */
        fscsr   t0
        fld     fs0, 104(sp)            /* its callee-saved doubles */
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
        ld      s1, 16(sp)              /* its callee-saved integers */
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
        ld      ra, 8(sp)               /* its return address */
        ld      s0, 0(sp)               /* its frame pointer */
        addi    sp, sp, 208             /* close the frame */
        .cfi_restore_state              /* registers live again, CFA = sp */
        mv      a0, a2                  /* return arg to a resumed switch,
                                           pass it to a fresh entry */
        ret                             /* to where `to` called us from */
        .cfi_endproc
        .size   weft__ctx_switch, .-weft__ctx_switch

/* First code run on a fresh stack. a0 = arg, s1 = entry, s0 = 0, sp
 * 16-byte aligned. */
        .type   weft_ctx_trampoline, @function
        .p2align 4
weft_ctx_trampoline:
        .cfi_startproc
        .cfi_undefined ra               /* end of stack for unwinders */
        jalr    s1                      /* entry(arg); never returns */
        ebreak                          /* it returned: trap (the
                                           instruction __builtin_trap
                                           emits) */
        .cfi_endproc
        .size   weft_ctx_trampoline, .-weft_ctx_trampoline

/* void *weft__ctx_make(void *top, void (*entry)(void *))
 * a0 = top, a1 = entry. Returns the stack pointer of a fresh frame. */
        .globl  weft__ctx_make
        .hidden weft__ctx_make
        .type   weft__ctx_make, @function
        .p2align 4
weft__ctx_make:
        .cfi_startproc
        andi    a0, a0, -16             /* trampoline sp: 16-aligned */
        addi    a0, a0, -208            /* the frame drawn above */
        lla     t0, weft_ctx_trampoline /* its address, pc-relative */
        sd      zero, 0(a0)             /* s0 = 0 ends the fp chain */
        sd      t0, 8(a0)               /* ra = trampoline */
        sd      a1, 16(a0)              /* s1 = entry */
        sd      zero, 24(a0)            /* s2 */
        sd      zero, 32(a0)            /* s3 */
        sd      zero, 40(a0)            /* s4 */
        sd      zero, 48(a0)            /* s5 */
        sd      zero, 56(a0)            /* s6 */
        sd      zero, 64(a0)            /* s7 */
        sd      zero, 72(a0)            /* s8 */
        sd      zero, 80(a0)            /* s9 */
        sd      zero, 88(a0)            /* s10 */
        sd      zero, 96(a0)            /* s11 */
        sd      zero, 104(a0)           /* fs0 = +0.0 */
        sd      zero, 112(a0)           /* fs1 */
        sd      zero, 120(a0)           /* fs2 */
        sd      zero, 128(a0)           /* fs3 */
        sd      zero, 136(a0)           /* fs4 */
        sd      zero, 144(a0)           /* fs5 */
        sd      zero, 152(a0)           /* fs6 */
        sd      zero, 160(a0)           /* fs7 */
        sd      zero, 168(a0)           /* fs8 */
        sd      zero, 176(a0)           /* fs9 */
        sd      zero, 184(a0)           /* fs10 */
        sd      zero, 192(a0)           /* fs11 */
        sd      zero, 200(a0)           /* fcsr 0: nearest even, no
                                           flags */
        ret
        .cfi_endproc
        .size   weft__ctx_make, .-weft__ctx_make

        .section .note.GNU-stack,"",@progbits
