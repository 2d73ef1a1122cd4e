/*
 * preempt.c - switching a task out from a signal handler: the SIGURG
 * handler, the map of code where that is safe, and preemption-disabled
 * sections.
 *
 * Problem. A task that computes without calling weft keeps its worker: a
 * cooperative scheduler never gets control back. The monitor thread
 * (sysmon.c) sees such a poll and sends SIGURG to the worker's thread;
 * the handler runs on the thread's signal stack (SA_ONSTACK: a frame of
 * 3-4 KiB never lands on a task's stack, which may be a 1 KiB small one;
 * sigstack.c) and, when it is safe, switches the task out right there,
 * as a yield. The kernel has saved every register of the interrupted
 * code, vector registers and the FP control words included, and the
 * signal mask, in the signal frame; the switch saves only what a call
 * saves. The task keeps that signal stack while it is switched out, and
 * the thread takes a spare (sigstack.c). When the task is resumed,
 * possibly on another worker thread, the switch returns into the
 * handler, the handler returns, and sigreturn restores the frame: the
 * task continues exactly where it was, on its own stack.
 *
 * When is it safe. Only when the interrupted instruction is in code that
 * holds no runtime state in registers or locks: the program's own text
 * (the main executable's executable segments, found with dl_iterate_phdr
 * at start-up), minus weft's own code, and the vDSO (clock_gettime: no
 * lock, no state; a read interrupted there retries) unless weft's own
 * code is in it (base/sysmark.h: weft marks every system call and vDSO
 * read it makes, since weft frames below the call may hold a worker's
 * state). Never in libc (it may hold the
 * malloc lock or stdio's), the loader or any other shared
 * library but the vDSO, and never in weft itself: weft code caches its worker in
 * registers and holds spin locks. weft's code is told apart by its
 * section: tools/weft-text.sh moves every weft object's .text into
 * weft_text, and the linker brackets it with __start_weft_text and
 * __stop_weft_text wherever weft is linked (shared, static or as
 * objects). Elsewhere the handler sets the worker's yield request, which
 * the task honours at its next cooperative point, and the monitor sends
 * the signal again at its next tick (a loop that calls into libc is
 * caught when it is back in its own code).
 *
 * What else must hold. The task must be preemptible (WEFT_PREEMPTIBLE or
 * cfg.preempt_all) and outside weft_preempt_disable(); the request must
 * still be for the poll now running (preempt_req names the poll by its
 * sequence number: a signal that arrives after the task switched is
 * stale and ignored).
 *
 * Two details of returning on another thread. (1) SA_NODEFER: the handler
 * is entered without SIGURG blocked, so the thread it switches away from
 * does not keep SIGURG blocked while it runs other tasks; a second
 * SIGURG during the handler finds the PC in weft code and only sets the
 * yield request. sigreturn then restores the mask saved in the frame,
 * the task's own. (2) sigreturn also reinstalls the alternate signal
 * stack saved in the frame, which was the first thread's; the handler
 * names the stack the task brought, which becomes the resuming thread's
 * (weft__sigstack_adopt), as Go's runtime rewrites the stack in the
 * frame for its signal stacks.
 *
 * Other SIGURGs. The handler acts only on signals sent by this process
 * with tgkill (si_code SI_TKILL, si_pid our pid); any other SIGURG (a
 * socket's out-of-band data) goes to the handler installed before, if
 * any.
 */
#include <errno.h>
#include <link.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#include "../base/clock.h"
#include "../base/compiler.h"
#include "../base/sysmark.h"
#include "../base/uctx.h"
#include "runq.h"

extern const char __start_weft_text[] __attribute__((weak));
extern const char __stop_weft_text[] __attribute__((weak));

#define MAX_RANGES 16
static struct {
    uintptr_t lo, hi;
} ranges[MAX_RANGES]; /* the main program's code; written once */
static int nranges;
static struct sigaction old_urg;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static struct {
    uintptr_t lo, hi;
} vdso[4]; /* the vDSO's code; written once */
static int nvdso;

/* The first object dl_iterate_phdr reports is the main program; the
 * vDSO is the one whose ELF header the kernel names in AT_SYSINFO_EHDR. */
static int phdr_scan(struct dl_phdr_info *info, size_t size, void *data)
{
    int *first = data;
    uintptr_t ehdr = (uintptr_t)getauxval(AT_SYSINFO_EHDR);
    int is_vdso = 0;
    (void)size;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type == PT_LOAD && p->p_offset == 0 && ehdr &&
            info->dlpi_addr + p->p_vaddr == ehdr)
            is_vdso = 1;
    }
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &info->dlpi_phdr[i];
        if (p->p_type != PT_LOAD || !(p->p_flags & PF_X))
            continue;
        uintptr_t lo = info->dlpi_addr + p->p_vaddr, hi = lo + p->p_memsz;
        if (*first && nranges < MAX_RANGES) {
            ranges[nranges].lo = lo;
            ranges[nranges++].hi = hi;
        } else if (is_vdso && nvdso < 4) {
            vdso[nvdso].lo = lo;
            vdso[nvdso++].hi = hi;
        }
    }
    *first = 0;
    return 0;
}

int weft__preempt_pc_safe(uintptr_t pc)
{
    if (pc >= (uintptr_t)__start_weft_text && pc < (uintptr_t)__stop_weft_text)
        return 0;
    for (int i = 0; i < nranges; i++)
        if (pc >= ranges[i].lo && pc < ranges[i].hi)
            return 1;
    /* The vDSO (clock_gettime) holds no lock and no state: safe, unless
     * weft's own code is the one reading the clock (base/sysmark.h). */
    for (int i = 0; i < nvdso; i++)
        if (pc >= vdso[i].lo && pc < vdso[i].hi)
            return !weft__sys_depth();
    return 0;
}

int weft__preempt_uc_safe(void *uc)
{
    return weft__preempt_pc_safe(weft__uc_pc(uc));
}

/*
 * Isolation (isolate.c) needs less than preemption: the task is not
 * switched out, only its thread's identity changes, so code that holds
 * no worker state may go on. That is the program's own code, as for
 * preemption, and a blocking system call the program made, never one
 * weft made (the mark of base/sysmark.h is up: weft frames below may
 * hold the worker, which would go on with two threads): a restartable
 * call interrupted by the signal has its PC rewound to the syscall
 * instruction (x86_64: 0f 05, with the call number back in rax). weft
 * itself makes no blocking call from a task (tasks park), except that a
 * futex wait must be the program's (a pthread lock or condition): weft
 * only wakes futexes from tasks. Other ISAs: the program's code only.
 */
#if defined(__x86_64__)
/* A byte of the interrupted code: text, not an object of the program's,
 * so not AddressSanitizer's to check (a unit test hands a PC inside a
 * small array). */
__attribute__((no_sanitize_address)) static unsigned char
code_byte(const unsigned char *p)
{
    return *p;
}
#endif

int weft__isolate_uc_ok(void *ucv)
{
    /* A system call weft made (base/sysmark.h): weft frames below it may
     * hold the worker that the isolation would hand to another thread. */
    if (weft__sys_depth())
        return 0;
    uintptr_t pc = weft__uc_pc(ucv);
    if (pc >= (uintptr_t)__start_weft_text && pc < (uintptr_t)__stop_weft_text)
        return 0;
    if (weft__preempt_pc_safe(pc))
        return 1;
#if defined(__x86_64__)
    ucontext_t *uc = ucv;
    const unsigned char *ip = (const unsigned char *)pc;
    if (!pc)
        return 0;
    long nr = (long)uc->uc_mcontext.gregs[REG_RAX];
    /* A call the signal ended with EINTR, one the kernel never restarts
     * (signal(7): nanosleep, clock_nanosleep, poll, epoll_wait, ...): the
     * PC is just past the syscall instruction, rax -EINTR. Refused, the
     * monitor asked again every tick, and a task sleeping in
     * clock_nanosleep saw EINTR from 215 of 216 calls in 500 ms (found
     * by a program written from weft.h). Isolated, the thread leaves
     * the worker, and the monitor stops asking: one EINTR. The bytes
     * before the PC are read only then (code_byte). */
    if (ip[0] != 0x0f || ip[1] != 0x05)
        return nr == -EINTR && (pc & 4095) >= 2 && code_byte(ip - 2) == 0x0f &&
               code_byte(ip - 1) == 0x05;
    if (nr == SYS_futex) {
        long op = (long)uc->uc_mcontext.gregs[REG_RSI] & 0x7f;
        return op == 0 /* WAIT */ || op == 9 /* WAIT_BITSET */ ||
               op == 6 /* LOCK_PI */ || op == 11 /* WAIT_REQUEUE_PI */ ||
               op == 13 /* LOCK_PI2 */;
    }
    return nr >= 0;
#else
    return 0;
#endif
}

static void on_urg(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;
    if (si && si->si_code == SI_TKILL && si->si_pid == getpid()) {
        weft__preempt_here(uc);
    } else if ((old_urg.sa_flags & SA_SIGINFO) && old_urg.sa_sigaction) {
        old_urg.sa_sigaction(sig, si, uc);
    } else if (old_urg.sa_handler != SIG_DFL && old_urg.sa_handler != SIG_IGN &&
               old_urg.sa_handler) {
        old_urg.sa_handler(sig);
    }
    errno = saved;
}

static void init_once(void)
{
    int first = 1;
    dl_iterate_phdr(phdr_scan, &first);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_urg;
    /* SA_ONSTACK: the frame never lands on a task's stack (sigstack.c). */
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGURG, &sa, &old_urg);
}

void weft__preempt_init(void)
{
    pthread_once(&once, init_once);
}

/* ---- disabled sections ------------------------------------------------ */

void weft_preempt_disable(void)
{
    weft_worker *w = weft__worker_self();
    if (!w || !w->current)
        return;
    /* The handler runs on this thread and reads the count of the task
     * running here: a compiler barrier orders the store before the code
     * the section protects. */
    w->rt->cold[w->cur_slot].nopreempt++;
    __asm__ __volatile__("" ::: "memory");
}

void weft_preempt_enable(void)
{
    weft_worker *w = weft__worker_self();
    if (!w || !w->current)
        return;
    weft_tcb_cold *c = &w->rt->cold[w->cur_slot];
    __asm__ __volatile__("" ::: "memory");
    if (c->nopreempt && --c->nopreempt == 0 &&
        atomic_load_explicit(&w->yield_req, memory_order_relaxed) ==
            weft__poll_seq(w) + 1)
        weft_yield(); /* a preemption was refused meanwhile */
}

/* ---- the decision ---------------------------------------------------- */

/*
 * The SIGURG handler's work, on the interrupted task's stack (the header
 * says why that is safe and what it relies on). The request must name
 * the poll running now; the task must be preemptible and outside a
 * disabled section; the interrupted instruction must be in the program's
 * own code. Then the task is switched out as a yield, to the back of
 * this worker's yield queue, if anything else is ready. Signal handler
 * on a worker's thread.
 */
/*
 * Inside a handler of the program's own? The interrupted PC is then the
 * handler's, in the program's text, but the code the handler interrupted
 * may be weft's, holding a lock or the worker: a SIGPROF handler that
 * spun 3 ms let a preemption switch out a task in weft_mutex_unlock with
 * the queue's spin lock held, and the next task on that thread took the
 * handler's signal mask (found by a program written from weft.h). A
 * handler installed with SA_ONSTACK runs on the thread's signal stack:
 * a stack pointer off the task's stack refuses the preemption or
 * isolation (the task is asked again at its next cooperative point and
 * by the monitor). A handler on the task's own stack cannot be told from
 * the task's code (its mask cannot tell either: a task may block signals
 * itself, and preemption keeps its mask); weft.h asks for SA_ONSTACK.
 */
static int in_program_handler(weft_worker *w, void *ucv)
{
    /* The running task's stack (an inline child runs on its joiner's,
     * whose index it carries), its guard zone or canary included. */
    weft_rt *rt = w->rt;
    uint32_t st = rt->cold[w->cur_slot].stack;
    if (!st)
        return 0;
    int cls =
        (atomic_load_explicit(&w->current->state, RLX) & WEFT_TS_SMALL) ? 1 : 0;
    const weft_stack_pool *p = &rt->pool[cls];
    uintptr_t lo = (uintptr_t)(p->base + (size_t)(st - 1) * p->stride);
    uintptr_t hi = (uintptr_t)weft__stack_top(p, st - 1);
    uintptr_t sp = weft__uc_sp(ucv);
    return sp < lo || sp > hi;
}

/* Refused: the task yields at its next cooperative point (yield_req),
 * and the monitor asks again at its next tick. */
static void refuse(weft_worker *w, uint64_t seq)
{
    atomic_store_explicit(&w->yield_req, seq + 1, RLX);
    stat_inc(&w->st.preempt_refused);
}

void weft__preempt_here(void *uc)
{
    weft_worker *w = weft__worker_self();
    if (!w || !w->current || w->iso_of)
        return;
    uint64_t seq = weft__poll_seq(w);
    if (weft_unlikely(in_program_handler(w, uc))) {
        if (atomic_load_explicit(&w->iso_req, memory_order_acquire) ==
                seq + 1 ||
            atomic_load_explicit(&w->preempt_req, memory_order_acquire) ==
                seq + 1)
            refuse(w, seq);
        return;
    }
    /* Acquire: pairs with the monitor's release store of the request. */
    if (atomic_load_explicit(&w->iso_req, memory_order_acquire) == seq + 1) {
        atomic_store_explicit(&w->iso_req, 0, RLX);
        if (!weft__isolate_uc_ok(uc) || !weft__isolate_here(w))
            stat_inc(&w->st.preempt_refused); /* the monitor asks again */
        return;
    }
    if (atomic_load_explicit(&w->preempt_req, memory_order_acquire) != seq + 1)
        return; /* stale: that poll has ended */
    atomic_store_explicit(&w->preempt_req, 0, RLX);
    weft_tcb *cur = w->current;
    weft_rt *rt = w->rt;
    if (!(atomic_load_explicit(&cur->state, RLX) & WEFT_TS_PREEMPTIBLE))
        return;
    if (rt->cold[w->cur_slot].nopreempt || !weft__preempt_uc_safe(uc)) {
        refuse(w, seq); /* not here */
        return;
    }
    /* The signal stack this frame is on, which the task keeps while it
     * is switched out (sigstack.c). */
    char *mine = weft__sigstack_current(w);
    int r = weft__worker_preempt(w);
    if (r < 0) { /* no spare signal stack: as a refusal */
        refuse(w, seq);
        return;
    }
    if (!r) { /* nothing else is ready, or its band's turn goes on */
        atomic_store_explicit(&w->preempt_none, seq + 1, RLX);
        return;
    }
    /* Resumed, maybe on another thread: this stack becomes that
     * thread's signal stack, and sigreturn installs it. */
    weft__sigstack_adopt(weft__worker_self(), mine, uc);
}
