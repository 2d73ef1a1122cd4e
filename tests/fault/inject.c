/*
 * inject.c - the wrappers behind inject.h. Each counts the calls of its
 * kind while armed and fails the chosen one; otherwise it is the real
 * call (__real_*, which the linker binds to the library function).
 */
#include "inject.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>

#include "../internal.h"
#include "../../src/base/clock.h"
#include "../../src/base/sysmark.h"

static void check_mark(void *caller);

const char *const fault_names[FAULT_KINDS] = {
    "mmap",    "mprotect",      "pthread_create", "calloc",
    "madvise", "epoll_create1", "eventfd"};

static _Atomic unsigned target[FAULT_KINDS], calls[FAULT_KINDS];
static _Atomic int fired[FAULT_KINDS], sticky[FAULT_KINDS];

void fault_arm(int k, unsigned n)
{
    atomic_store(&target[k], 0);
    atomic_store(&calls[k], 0);
    atomic_store(&fired[k], 0);
    atomic_store(&sticky[k], 0);
    atomic_store(&target[k], n);
}

void fault_arm_from(int k, unsigned n)
{
    fault_arm(k, 0);
    atomic_store(&sticky[k], 1);
    atomic_store(&target[k], n);
}

unsigned fault_calls(int k)
{
    return atomic_load(&calls[k]);
}

int fault_fired(int k)
{
    return atomic_load(&fired[k]);
}

/* 1 when this call of kind k is the one to fail. */
static int hit(int k)
{
    unsigned t = atomic_load_explicit(&target[k], memory_order_relaxed);
    if (!t)
        return 0;
    unsigned c = atomic_fetch_add(&calls[k], 1) + 1;
    if (c != t && !(atomic_load(&sticky[k]) && c > t))
        return 0;
    atomic_store(&fired[k], 1);
    return 1;
}

void *__real_mmap(void *a, size_t n, int prot, int fl, int fd, off_t off);
void *__wrap_mmap(void *a, size_t n, int prot, int fl, int fd, off_t off)
{
    if (hit(FAULT_MMAP)) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    return __real_mmap(a, n, prot, fl, fd, off);
}

int __real_mprotect(void *a, size_t n, int prot);
int __wrap_mprotect(void *a, size_t n, int prot)
{
    check_mark(__builtin_return_address(0));
    if (hit(FAULT_MPROTECT)) {
        errno = ENOMEM;
        return -1;
    }
    return __real_mprotect(a, n, prot);
}

int __real_pthread_create(pthread_t *t, const pthread_attr_t *a,
                          void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a,
                          void *(*fn)(void *), void *arg)
{
    if (hit(FAULT_PTHREAD_CREATE))
        return EAGAIN;
    return __real_pthread_create(t, a, fn, arg);
}

void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size)
{
    if (hit(FAULT_CALLOC)) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_calloc(n, size);
}

void *__real_aligned_alloc(size_t align, size_t size);
void *__wrap_aligned_alloc(size_t align, size_t size)
{
    if (hit(FAULT_CALLOC)) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_aligned_alloc(align, size);
}

int __real_epoll_create1(int flags);
int __wrap_epoll_create1(int flags)
{
    if (hit(FAULT_EPOLL_CREATE1)) {
        errno = EMFILE;
        return -1;
    }
    return __real_epoll_create1(flags);
}

int __real_eventfd(unsigned init, int flags);
int __wrap_eventfd(unsigned init, int flags)
{
    if (hit(FAULT_EVENTFD)) {
        errno = EMFILE;
        return -1;
    }
    return __real_eventfd(init, flags);
}

/* ---- fcntl: a hook before F_SETFL ------------------------------------ */

int __real_fcntl(int fd, int cmd, ...);

static void (*_Atomic fcntl_fn)(int, int, void *);
static void *_Atomic fcntl_arg;

void fault_fcntl_hook(void (*fn)(int fd, int cmd, void *arg), void *arg)
{
    atomic_store(&fcntl_arg, arg);
    atomic_store(&fcntl_fn, fn);
}

int __wrap_fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *x = va_arg(ap, void *); /* as glibc's fcntl takes it */
    va_end(ap);
    void (*fn)(int, int, void *) = atomic_load(&fcntl_fn);
    if (fn && cmd == F_SETFL)
        fn(fd, cmd, atomic_load(&fcntl_arg));
    return __real_fcntl(fd, cmd, x);
}

/* ---- getsockopt: a hook before SOL_SOCKET ones ------------------------ */

int __real_getsockopt(int fd, int level, int opt, void *v, socklen_t *len);

static void (*_Atomic gso_fn)(int, int, void *);
static void *_Atomic gso_arg;

void fault_getsockopt_hook(void (*fn)(int fd, int opt, void *arg), void *arg)
{
    atomic_store(&gso_arg, arg);
    atomic_store(&gso_fn, fn);
}

int __wrap_getsockopt(int fd, int level, int opt, void *v, socklen_t *len)
{
    void (*fn)(int, int, void *) = atomic_load(&gso_fn);
    if (fn && level == SOL_SOCKET)
        fn(fd, opt, atomic_load(&gso_arg));
    return __real_getsockopt(fd, level, opt, v, len);
}

/* ---- the system-call mark -------------------------------------------- */

extern char __start_weft_text[], __stop_weft_text[];
static _Atomic unsigned unmarked;
static void *_Atomic unmarked_at;

void fault_unmarked_reset(void)
{
    atomic_store(&unmarked, 0);
    atomic_store(&unmarked_at, NULL);
}

unsigned fault_unmarked(void **last_caller)
{
    if (last_caller)
        *last_caller = atomic_load(&unmarked_at);
    return atomic_load(&unmarked);
}

/* A call from `caller`: count it if weft's code made it, unmarked, while
 * a task runs on this thread. weft__clock_ns_user (weft_now_ns) reads
 * the clock unmarked on purpose: its own few bytes are let through. */
static void check_mark(void *caller)
{
    uintptr_t pc = (uintptr_t)caller;
    if (weft__sys_depth() || pc < (uintptr_t)__start_weft_text ||
        pc >= (uintptr_t)__stop_weft_text)
        return;
    if (pc - (uintptr_t)weft__clock_ns_user < 64)
        return;
    weft_worker *w = weft__worker_self();
    if (!w || !w->current)
        return;
    atomic_fetch_add(&unmarked, 1);
    atomic_store(&unmarked_at, caller);
}

#define CHECK_MARK() check_mark(__builtin_return_address(0))

int __real_sched_yield(void);
int __wrap_sched_yield(void)
{
    CHECK_MARK();
    return __real_sched_yield();
}

int __real_clock_gettime(clockid_t c, struct timespec *ts);
int __wrap_clock_gettime(clockid_t c, struct timespec *ts)
{
    CHECK_MARK();
    return __real_clock_gettime(c, ts);
}

int __real_pthread_mutex_lock(pthread_mutex_t *m);
int __wrap_pthread_mutex_lock(pthread_mutex_t *m)
{
    CHECK_MARK();
    return __real_pthread_mutex_lock(m);
}

int __real_madvise(void *a, size_t n, int advice);
int __wrap_madvise(void *a, size_t n, int advice)
{
    CHECK_MARK();
    if (hit(FAULT_MADVISE)) {
        errno = ENOMEM;
        return -1;
    }
    return __real_madvise(a, n, advice);
}
