/*
 * test_sysmark.c - the preemption and isolation handlers refuse while
 * weft's own code is in a system call or the vDSO (src/base/sysmark.h),
 * and accept the same place when the program made the call.
 */
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <ucontext.h>

#include "check.h"
#include "internal.h"
#include "../../src/base/sysmark.h"

TEST(unit, isolation_refused_in_a_marked_system_call)
{
#if defined(__x86_64__)
    /* An interrupted context whose PC is at a syscall instruction (0f 05)
     * outside weft's text, with sched_yield's number in rax: the shape of
     * a signal landing in a blocking call. */
    static const unsigned char insn[] = {0x0f, 0x05};
    ucontext_t uc;
    memset(&uc, 0, sizeof uc);
    uc.uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)insn;
    uc.uc_mcontext.gregs[REG_RAX] = SYS_sched_yield;
    CHECK_EQ_INT(weft__isolate_uc_ok(&uc), 1); /* the program's call */
    weft__sys_enter();
    CHECK_EQ_INT(weft__isolate_uc_ok(&uc), 0); /* weft's */
    weft__sys_enter();
    weft__sys_leave();
    CHECK_EQ_INT(weft__isolate_uc_ok(&uc), 0); /* nested: still weft's */
    weft__sys_leave();
    CHECK_EQ_INT(weft__isolate_uc_ok(&uc), 1);
#else
    TEST_SKIP("x86_64 only: other ISAs never isolate in a system call");
#endif
}

TEST(unit, preemption_refused_in_the_vdso_under_the_mark)
{
    uintptr_t vdso = (uintptr_t)getauxval(AT_SYSINFO_EHDR);
    if (!vdso)
        TEST_SKIP("no vDSO");
    weft__preempt_init(); /* finds the vDSO's executable segment */
    /* The vDSO's one load segment starts at its ELF header and is
     * executable; a PC a little past the header is in it. */
    uintptr_t pc = vdso + 0x400;
    if (!weft__preempt_pc_safe(pc))
        TEST_SKIP("the vDSO's text does not cover its first page here");
    weft__sys_enter();
    CHECK_EQ_INT(weft__preempt_pc_safe(pc), 0);
    weft__sys_leave();
    CHECK_EQ_INT(weft__preempt_pc_safe(pc), 1);
}
