/*
 * fiber_san.h - tell AddressSanitizer and ThreadSanitizer about stack
 * switches, so that both see each task as its own stack/fiber and report
 * real bugs instead of false alarms. In a plain build every hook is empty
 * and costs nothing.
 *
 * ASan: before a switch, __sanitizer_start_switch_fiber(&save, bottom,
 * size) names the stack being entered; after it, on the entered stack,
 * __sanitizer_finish_switch_fiber(save, ...) completes it. A context that
 * will never resume (a finished task) passes NULL as `save` so its fake
 * stack is freed.
 * TSan: each context is a TSan fiber (__tsan_create_fiber); the switch is
 * announced with __tsan_switch_to_fiber before the stack changes.
 */
#ifndef WEFT_ARCH_FIBER_SAN_H
#define WEFT_ARCH_FIBER_SAN_H

#include <stddef.h>

#include "../base/compiler.h"

#ifdef WEFT_ASAN
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom,
                                    size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save,
                                     const void **bottom_old, size_t *size_old);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#define weft_san_start_switch(save, bottom, size)                              \
    __sanitizer_start_switch_fiber(save, bottom, size)
#define weft_san_finish_switch(save)                                           \
    __sanitizer_finish_switch_fiber(save, NULL, NULL)
#define weft_san_unpoison(p, n) __asan_unpoison_memory_region(p, n)
#else
#define weft_san_start_switch(save, bottom, size) ((void)0)
#define weft_san_finish_switch(save) ((void)0)
#define weft_san_unpoison(p, n) ((void)0)
#endif

#ifdef WEFT_TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#define weft_tsan_current() __tsan_get_current_fiber()
#define weft_tsan_create() __tsan_create_fiber(0)
#define weft_tsan_destroy(f) __tsan_destroy_fiber(f)
#define weft_tsan_switch(f) __tsan_switch_to_fiber(f, 0)
#else
#define weft_tsan_current() NULL
#define weft_tsan_create() NULL
#define weft_tsan_destroy(f) ((void)(f))
#define weft_tsan_switch(f) ((void)(f))
#endif

#endif
