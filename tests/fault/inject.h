/*
 * inject.h - the fault-injection seam (test-only). The test binary is
 * linked with -Wl,--wrap for each call below (tests/CMakeLists.txt), so
 * every call the library's objects make goes through a wrapper that
 * passes it on, or, once armed, fails the Nth call with the errno the
 * kernel or libc would give: mmap ENOMEM, mprotect ENOMEM, pthread_create
 * EAGAIN, calloc and aligned_alloc ENOMEM. Nothing of this is in the
 * library itself.
 */
#ifndef WEFT_TESTS_INJECT_H
#define WEFT_TESTS_INJECT_H

enum {
    FAULT_MMAP,
    FAULT_MPROTECT,
    FAULT_PTHREAD_CREATE,
    FAULT_CALLOC, /* calloc and aligned_alloc */
    FAULT_KINDS
};

extern const char *const fault_names[FAULT_KINDS];

/* Fail the nth call (1-based) of kind k from now on; n 0 disarms. */
void fault_arm(int k, unsigned n);

/* Calls of kind k since it was armed; whether the armed call failed. */
unsigned fault_calls(int k);
int fault_fired(int k);

#endif
