/*
 * membar.h - an asymmetric store-load barrier: a fast side that pays a
 * compiler barrier and a slow side that pays a system call.
 *
 * A Dekker handshake (each side stores its flag, then loads the other's)
 * needs a full fence on both sides, and on x86 that is a locked
 * instruction costing ~10 ns. When one side is hot (a task entering a
 * wait, sched/cancel.c) and the other is rare (weft_rt_shutdown), Linux's
 * membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) lets the rare side force a
 * full barrier on every running thread of the process instead: after it
 * returns, each thread has either not yet passed its compiler barrier (so
 * its later load sees the rare side's store) or had its earlier store
 * made visible. This is the use membarrier(2) documents. Measured on
 * pingpong (1 worker, 2 waits per op): a seq_cst store in the wait entry
 * cost ~12 ns per op.
 *
 * When the kernel lacks it (before 4.14, or a seccomp filter refuses it),
 * both sides fall back to seq_cst fences. TSan builds use seq_cst
 * accesses instead: TSan models neither membarrier nor fences.
 */
#ifndef WEFT_BASE_MEMBAR_H
#define WEFT_BASE_MEMBAR_H

#include <stdatomic.h>
#include <stdint.h>

#include "compiler.h"

/* 1 once weft__membar_init registered the process for expedited
 * membarriers; written once before any runtime exists (pthread_once),
 * read-only after. */
extern int weft__membar_ok;

/* Register the process if the kernel can (idempotent). Plain thread,
 * weft_rt_create. */
void weft__membar_init(void);

/* The hot side of a Dekker pair: store v to *flag, then load *word,
 * ordered (store before load) against another thread's store of *word,
 * weft__membar_heavy, load of *flag. A compiler barrier between them when
 * the process is registered, else a seq_cst fence; under TSan, which
 * neither models nor (GCC) accepts fences, seq_cst accesses. Any
 * thread. */
static inline int weft__membar_store_load(_Atomic uint8_t *flag, uint8_t v,
                                          _Atomic int *word)
{
#ifdef WEFT_TSAN
    atomic_store_explicit(flag, v, memory_order_seq_cst);
    return atomic_load_explicit(word, memory_order_seq_cst);
#else
    atomic_store_explicit(flag, v, memory_order_relaxed);
    if (weft_likely(weft__membar_ok))
        atomic_signal_fence(memory_order_seq_cst);
    else
        atomic_thread_fence(memory_order_seq_cst);
    return atomic_load_explicit(word, memory_order_relaxed);
#endif
}

/* The rare side: a full barrier on every thread of the process. Any
 * thread; may sleep in the kernel. */
void weft__membar_heavy(void);

#endif
