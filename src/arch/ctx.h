/*
 * ctx.h - the stack-switch contract every ISA port implements.
 *
 * A context is a suspended stack: all a port keeps of it is the stack
 * pointer, because a switch pushes the callee-saved state onto the stack it
 * leaves and pops it from the stack it enters. Switching is therefore an
 * ordinary function call from the compiler's point of view: the caller-saved
 * registers are dead across it by the ABI, and the port saves exactly the
 * callee-saved set (integer, floating point, and the FP control state the
 * ABI says a callee must preserve). No system call, no signal mask.
 *
 * weft__ctx_switch(save, to, arg)
 *   Saves the running context on its own stack, stores its stack pointer in
 *   *save, switches to the context whose stack pointer is `to`, and returns
 *   there. The value returned in the resumed context is `arg` of the switch
 *   that resumed it: the scheduler passes "the task that just left" through
 *   it, so the resumed side can finish that task's switch-out (DESIGN.md §4:
 *   a task is published as parked or dead only after its stack is left).
 *
 * weft__ctx_make(top, entry)
 *   Lays a first frame at the top of a fresh stack and returns the stack
 *   pointer to pass as `to`. The first switch to it calls entry(arg) with
 *   the switch's `arg`, on a stack aligned as the ABI requires for a call,
 *   with the frame-pointer chain ended (an unwinder stops there). entry must
 *   never return: the trampoline traps if it does.
 *
 * weft__ctx_start(top, entry, arg)   (ports that define WEFT_CTX_HAS_START)
 *   Abandons the running context: sets the stack pointer to `top` (aligned
 *   down as the ABI requires), loads the default FP control state (as a
 *   fresh frame has it), ends the frame-pointer chain and calls
 *   entry(arg). It never returns. The scheduler uses it to start a task
 *   that has never run on the stack of the task that just ended, which
 *   then needs no save, no stack release and no fresh frame.
 *
 * Each port's frame layout is drawn in its .S file; the sizes below are the
 * part C relies on (how much of a stack a fresh frame uses) and are checked
 * against the ports by tests/arch.
 *
 * Calling context: any thread, with `to` a context not running anywhere
 * else. Not signal safe in general (the scheduler decides that).
 */
#ifndef WEFT_ARCH_CTX_H
#define WEFT_ARCH_CTX_H

#if defined(WEFT_SWITCH_UCONTEXT)
#define WEFT_CTX_FRAME 0 /* ucontext keeps its state in a heap-free slot */
#elif defined(__x86_64__)
#define WEFT_CTX_FRAME 64 /* 6 GPRs, MXCSR + x87 CW, return address */
#define WEFT_CTX_HAS_START 1
#elif defined(__aarch64__)
#define WEFT_CTX_FRAME 176 /* x19-x30, d8-d15, FPCR, pad */
#elif defined(__riscv) && __riscv_xlen == 64
#define WEFT_CTX_FRAME 208 /* ra, s0-s11, fs0-fs11, fcsr */
#else
#error "weft: no context switch for this ISA; build with -DWEFT_SWITCH=ucontext"
#endif

#ifndef __ASSEMBLER__
void *weft__ctx_switch(void **save, void *to, void *arg);
void *weft__ctx_make(void *top, void (*entry)(void *));
#ifdef WEFT_CTX_HAS_START
_Noreturn void weft__ctx_start(void *top, void (*entry)(void *), void *arg);
#endif
#endif

#endif
