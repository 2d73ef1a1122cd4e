/*
 * inject.h - the fault-injection seam (test-only). The test binary is
 * linked with -Wl,--wrap for each call below (tests/CMakeLists.txt), so
 * every call the library's objects make goes through a wrapper that
 * passes it on, or, once armed, fails the Nth call with the errno the
 * kernel or libc would give: mmap ENOMEM, mprotect ENOMEM, pthread_create
 * EAGAIN, calloc and aligned_alloc ENOMEM, madvise ENOMEM, epoll_create1
 * and eventfd EMFILE; fcntl and getsockopt only run a test's hook (below). Nothing of
 * this is in the library itself.
 */
#ifndef WEFT_TESTS_INJECT_H
#define WEFT_TESTS_INJECT_H

enum {
    FAULT_MMAP,
    FAULT_MPROTECT,
    FAULT_PTHREAD_CREATE,
    FAULT_CALLOC, /* calloc and aligned_alloc */
    FAULT_MADVISE,
    FAULT_EPOLL_CREATE1,
    FAULT_EVENTFD,
    FAULT_KINDS
};

extern const char *const fault_names[FAULT_KINDS];

/* Fail the nth call (1-based) of kind k from now on; n 0 disarms. */
void fault_arm(int k, unsigned n);

/* Fail the nth call of kind k and every one after it, until disarmed
 * with fault_arm(k, 0). */
void fault_arm_from(int k, unsigned n);

/* Calls of kind k since it was armed; whether the armed call failed. */
unsigned fault_calls(int k);
int fault_fired(int k);

/* The system-call mark (src/base/sysmark.h), checked: calls into the
 * kernel or libc (sched_yield, clock_gettime, pthread_mutex_lock,
 * madvise, mprotect) that weft's own code makes while a task runs on the
 * calling thread must be marked, or a preemption or isolation could land
 * inside weft. The wrappers count the unmarked ones since the last reset
 * and keep the last one's caller (an address in weft's text).
 * weft_now_ns's clock read is the one call that needs no mark (it holds
 * no state), and is not counted. */
void fault_unmarked_reset(void);
unsigned fault_unmarked(void **last_caller);

/* fcntl(2) as the library makes it, with a hook: once set, fn(fd, cmd,
 * arg) runs before each F_SETFL the library's objects make, before the
 * real call (a test's way to act while a weft call is inside its first
 * use of a descriptor: fd.c, rec_of). NULL clears it. */
void fault_fcntl_hook(void (*fn)(int fd, int cmd, void *arg), void *arg);

/* getsockopt(2) likewise: fn(fd, optname, arg) before each SOL_SOCKET
 * getsockopt the library's objects make (fd.c's kind_of asks SO_TYPE). */
void fault_getsockopt_hook(void (*fn)(int fd, int opt, void *arg), void *arg);

#endif
