/*
 * switch_aarch64_aapcs_elf.S - stack switch for AArch64, AAPCS64, ELF.
 *
 *   void *weft__ctx_switch(void **save, void *to, void *arg);
 *   void *weft__ctx_make(void *top, void (*entry)(void *));
 *
 * ABI: Procedure Call Standard for the Arm 64-bit Architecture (AAPCS64,
 * Arm IHI 0055), section "Machine Registers" (quoted by title: its number
 * moves between releases): x19-x29 and sp are callee-saved, x30 (lr) holds
 * the return address, and of v8-v15 only the low 64 bits (d8-d15) are
 * callee-saved; everything else (x0-x18, the upper halves of v8-v15,
 * v0-v7, v16-v31, NZCV) is caller-saved and needs no saving in a function
 * the compiler sees as a call. x18 is a temporary on Linux.
 *
 * FP control state, same section: FPCR "is a global register" whose
 * rounding-mode (22-23), flush-to-zero (24) and trap-enable (8-12) bits
 * change only through "specific support functions that affect the global
 * state of the application" (fesetround and friends), so an ordinary
 * function preserves it, and each task keeps its own as each thread does:
 * the switch saves and restores it. FPSR holds only cumulative exception
 * flags, which "are not preserved across a public interface and may have
 * any value on entry to a subroutine": it is not saved.
 *
 * Saved frame, at the stack pointer stored in *save (offsets in bytes,
 * two slots a row as one stp/ldp moves them):
 *
 *     +160  FPCR             +168  padding (keeps sp 16-byte aligned)
 *     +144  d14              +152  d15
 *     +128  d12              +136  d13
 *     +112  d10              +120  d11
 *     +96   d8               +104  d9
 *     +80   x27              +88   x28
 *     +64   x25              +72   x26
 *     +48   x23              +56   x24
 *     +32   x21              +40   x22
 *     +16   x19              +24   x20
 *     +0    x29 (fp)         +8    x30 (lr: where the switch was called)
 *     ^ saved stack pointer
 *
 * fp and lr sit at the bottom, as in the frame record of AAPCS64 "The
 * Frame Pointer", so a tool walking a suspended task starts from the pair
 * at *save. WEFT_CTX_FRAME in ctx.h is the size of this frame (176).
 *
 * Return by ret, as the x86_64 port does and for the same reason: ret goes
 * through lr, which the return-address predictor expects, where br would
 * leave the call's predictor entry unpopped.
 *
 * FPCR is written only when the entered context's value differs from the
 * one leaving, which is nearly never: writes to FPCR may be
 * self-synchronising (Linux's fpsimd_restore_fpcr skips them for that
 * reason), whereas the compare is one cycle on a value already in a
 * register. Not measured on hardware here (qemu only).
 *
 * A fresh frame from weft__ctx_make holds FPCR 0 (the Linux initial value:
 * round to nearest, no traps, no flush to zero), x29 = 0, x19 = entry, the
 * trampoline as lr and zeros elsewhere, so the first switch "returns" into
 * the trampoline with x0 = arg. The frame is placed so that the trampoline
 * starts with sp 16-byte aligned, which AAPCS64 requires at every public
 * interface (and the SP alignment check enforces on every sp access).
 */
        .text

/* void *weft__ctx_switch(void **save, void *to, void *arg)
 * x0 = save, x1 = to, x2 = arg. Returns arg in x0 (which is also the first
 * argument of a fresh entry). */
        .globl  weft__ctx_switch
        .hidden weft__ctx_switch
        .type   weft__ctx_switch, %function
        .p2align 4
weft__ctx_switch:
        .cfi_startproc
        .cfi_remember_state             /* the state at entry, see below */
        stp     x29, x30, [sp, #-176]!  /* open the frame; fp, lr */
        .cfi_def_cfa_offset 176
        .cfi_offset x29, -176
        .cfi_offset x30, -168
        stp     x19, x20, [sp, #16]     /* callee-saved integers */
        stp     x21, x22, [sp, #32]
        stp     x23, x24, [sp, #48]
        stp     x25, x26, [sp, #64]
        stp     x27, x28, [sp, #80]
        .cfi_offset x19, -160
        .cfi_offset x20, -152
        .cfi_offset x21, -144
        .cfi_offset x22, -136
        .cfi_offset x23, -128
        .cfi_offset x24, -120
        .cfi_offset x25, -112
        .cfi_offset x26, -104
        .cfi_offset x27, -96
        .cfi_offset x28, -88
        stp     d8, d9, [sp, #96]       /* low halves of v8-v15 */
        stp     d10, d11, [sp, #112]
        stp     d12, d13, [sp, #128]
        stp     d14, d15, [sp, #144]
        .cfi_offset d8, -80
        .cfi_offset d9, -72
        .cfi_offset d10, -64
        .cfi_offset d11, -56
        .cfi_offset d12, -48
        .cfi_offset d13, -40
        .cfi_offset d14, -32
        .cfi_offset d15, -24
        mrs     x9, fpcr                /* our FP control */
        str     x9, [sp, #160]
        mov     x10, sp                 /* str cannot take sp itself */
        str     x10, [x0]               /* *save = our stack pointer */

        /* From here on sp is the other context's, whose frame has the
         * same layout: the CFI above describes it too. */
        mov     sp, x1                  /* enter the other stack */
        ldr     x10, [sp, #160]         /* its FPCR */
        cmp     x10, x9                 /* the same as ours? */
        b.eq    1f                      /* yes (nearly always): no write */
        msr     fpcr, x10               /* no: install it */
1:      ldp     d8, d9, [sp, #96]       /* its d8-d15 */
        ldp     d10, d11, [sp, #112]
        ldp     d12, d13, [sp, #128]
        ldp     d14, d15, [sp, #144]
        ldp     x19, x20, [sp, #16]     /* its callee-saved integers */
        ldp     x21, x22, [sp, #32]
        ldp     x23, x24, [sp, #48]
        ldp     x25, x26, [sp, #64]
        ldp     x27, x28, [sp, #80]
        ldp     x29, x30, [sp], #176    /* fp, lr; close the frame */
        .cfi_restore_state              /* registers live again, CFA = sp */
        mov     x0, x2                  /* return arg to a resumed switch,
                                           pass it to a fresh entry */
        ret                             /* to lr: where `to` called us
                                           from; ret, not br: see the
                                           header */
        .cfi_endproc
        .size   weft__ctx_switch, .-weft__ctx_switch

/* First code run on a fresh stack. x0 = arg, x19 = entry, x29 = 0, sp
 * 16-byte aligned. */
        .type   weft_ctx_trampoline, %function
        .p2align 4
weft_ctx_trampoline:
        .cfi_startproc
        .cfi_undefined x30              /* end of stack for unwinders */
        blr     x19                     /* entry(arg); never returns */
        brk     #1000                   /* it returned: trap (the
                                           instruction __builtin_trap
                                           emits) */
        .cfi_endproc
        .size   weft_ctx_trampoline, .-weft_ctx_trampoline

/* void *weft__ctx_make(void *top, void (*entry)(void *))
 * x0 = top, x1 = entry. Returns the stack pointer of a fresh frame. */
        .globl  weft__ctx_make
        .hidden weft__ctx_make
        .type   weft__ctx_make, %function
        .p2align 4
weft__ctx_make:
        .cfi_startproc
        and     x9, x0, #-16            /* trampoline sp: 16-aligned */
        sub     x0, x9, #176            /* the frame drawn above */
        adr     x10, weft_ctx_trampoline /* its address, pc-relative */
        stp     xzr, x10, [x0, #0]      /* x29 = 0 ends the fp chain;
                                           lr = trampoline */
        stp     x1, xzr, [x0, #16]      /* x19 = entry, x20 */
        stp     xzr, xzr, [x0, #32]     /* x21, x22 */
        stp     xzr, xzr, [x0, #48]     /* x23, x24 */
        stp     xzr, xzr, [x0, #64]     /* x25, x26 */
        stp     xzr, xzr, [x0, #80]     /* x27, x28 */
        stp     xzr, xzr, [x0, #96]     /* d8, d9 */
        stp     xzr, xzr, [x0, #112]    /* d10, d11 */
        stp     xzr, xzr, [x0, #128]    /* d12, d13 */
        stp     xzr, xzr, [x0, #144]    /* d14, d15 */
        stp     xzr, xzr, [x0, #160]    /* FPCR 0: nearest, no traps, no
                                           flush to zero; padding */
        ret
        .cfi_endproc
        .size   weft__ctx_make, .-weft__ctx_make

        .section .note.GNU-stack,"",%progbits
