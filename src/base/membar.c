/*
 * membar.c - the asymmetric barrier's slow side (see membar.h).
 */
#include "membar.h"

#include "check.h"

#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

int weft__membar_ok;

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void)
{
#if defined(__NR_membarrier) && !defined(WEFT_TSAN)
    long cmds = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
        syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0,
                0) == 0)
        weft__membar_ok = 1;
#endif
}

void weft__membar_init(void)
{
    pthread_once(&once, init);
}

void weft__membar_heavy(void)
{
#ifndef WEFT_TSAN
    atomic_thread_fence(memory_order_seq_cst);
#endif
#ifdef __NR_membarrier
    if (weft__membar_ok &&
        syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
        /* Registered, so this cannot fail; never leave the hot side
         * unordered if it does. */
        weft__die("membar", "membarrier failed after registration");
#endif
}
