/*
 * test_tls.c - task-local storage: keys (process-wide, so exhaustion is
 * safe to test in this test's own process), per-task values, calling
 * context, bad keys, and destructors at task end.
 */
#include <stdatomic.h>

#include "check.h"

TEST(api, tls_key_exhaustion)
{
    weft_tls_key k[WEFT_TLS_KEYS];
    for (unsigned i = 0; i < WEFT_TLS_KEYS; i++) {
        CHECK_OK(weft_tls_key_create(&k[i], NULL));
        for (unsigned j = 0; j < i; j++)
            CHECK_NE_INT(k[i], k[j]);
    }
    weft_tls_key extra = 12345;
    CHECK_ERR(weft_tls_key_create(&extra, NULL), -EAGAIN);
    CHECK_EQ_INT(extra, 12345);
    CHECK_ERR(weft_tls_key_create(&extra, NULL), -EAGAIN);
}

TEST(api, tls_key_create_null)
{
    CHECK_ERR(weft_tls_key_create(NULL, NULL), -EINVAL);
    /* The failed call used no key. */
    for (unsigned i = 0; i < WEFT_TLS_KEYS; i++) {
        weft_tls_key k;
        CHECK_OK(weft_tls_key_create(&k, NULL));
    }
}

TEST(api, tls_outside_task)
{
    weft_tls_key k;
    CHECK_OK(weft_tls_key_create(&k, NULL));
    CHECK_NULL(weft_tls_get(k));
    CHECK_ERR(weft_tls_set(k, (void *)1), -EPERM);
    CHECK_NULL(weft_tls_get(k));
}

static weft_tls_key key;

static void *bad_keys(void *arg)
{
    (void)arg;
    CHECK_ERR(weft_tls_set(WEFT_TLS_KEYS, (void *)1), -EINVAL);
    CHECK_ERR(weft_tls_set(~0u, (void *)1), -EINVAL);
    CHECK_ERR(weft_tls_set(key + 1, (void *)1), -EINVAL); /* not created */
    CHECK_NULL(weft_tls_get(WEFT_TLS_KEYS));
    CHECK_NULL(weft_tls_get(~0u));
    CHECK_NULL(weft_tls_get(key + 1));
    CHECK_OK(weft_tls_set(key, (void *)1));
    CHECK_EQ_PTR(weft_tls_get(key), (void *)1);
    return NULL;
}

TEST(api, tls_bad_key)
{
    CHECK_OK(weft_tls_key_create(&key, NULL));
    CHECK_ERR(weft_tls_set(key + 1, (void *)1), -EINVAL);
    weft_rt *rt = test_rt(64);
    test_run(rt, bad_keys, NULL);
    test_rt_destroy_clean(rt);
}

static void *own_value(void *arg)
{
    CHECK_NULL(weft_tls_get(key)); /* every task starts with NULL */
    CHECK_OK(weft_tls_set(key, arg));
    for (int i = 0; i < 50; i++) {
        weft_yield();
        CHECK_EQ_PTR(weft_tls_get(key), arg);
        CHECK_OK(weft_tls_set(key, (void *)((uintptr_t)arg + 1)));
        weft_yield();
        CHECK_EQ_PTR(weft_tls_get(key), (void *)((uintptr_t)arg + 1));
        CHECK_OK(weft_tls_set(key, arg));
    }
    return weft_tls_get(key);
}

static void *per_task_main(void *arg)
{
    (void)arg;
    CHECK_OK(weft_tls_set(key, (void *)0x1000));
    weft_task t[8];
    for (uintptr_t i = 0; i < 8; i++) {
        weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
        a.stack = i % 2 ? WEFT_STACK_SMALL : WEFT_STACK_DEFAULT;
        CHECK_OK(
            weft_spawn(NULL, &t[i], own_value, (void *)(16 * (i + 1)), &a));
    }
    for (uintptr_t i = 0; i < 8; i++) {
        void *r;
        CHECK_OK(weft_join(t[i], &r));
        CHECK_EQ_PTR(r, (void *)(16 * (i + 1)));
    }
    CHECK_EQ_PTR(weft_tls_get(key), (void *)0x1000);
    return NULL;
}

TEST(api, tls_values_per_task)
{
    CHECK_OK(weft_tls_key_create(&key, NULL));
    weft_rt *rt = test_rt(64);
    test_run(rt, per_task_main, NULL);
    test_rt_destroy_clean(rt);
}

static void *set_and_end(void *arg)
{
    CHECK_OK(weft_tls_set(key, arg));
    return NULL;
}

static void *get_fresh(void *arg)
{
    (void)arg;
    return weft_tls_get(key);
}

static void *fresh_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++) {
        weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
        a.stack = i % 2 ? WEFT_STACK_SMALL : WEFT_STACK_DEFAULT;
        weft_task t;
        void *r = (void *)1;
        CHECK_OK(weft_spawn(NULL, &t, set_and_end, (void *)0xbad, &a));
        CHECK_OK(weft_join(t, NULL));
        /* The next task likely reuses the same hot stack. */
        CHECK_OK(weft_spawn(NULL, &t, get_fresh, NULL, &a));
        CHECK_OK(weft_join(t, &r));
        CHECK_NULL(r);
    }
    return NULL;
}

TEST(api, tls_fresh_in_each_task)
{
    CHECK_OK(weft_tls_key_create(&key, NULL));
    weft_rt *rt = test_rt(64);
    test_run(rt, fresh_main, NULL);
    test_rt_destroy_clean(rt);
}

/* Destructors: each non-NULL value once, in its task, at its end. */
static weft_tls_key dkey, nkey;
static _Atomic int dtor_calls;
static _Atomic uintptr_t dtor_value;
static _Atomic uint64_t dtor_task;

static void record_dtor(void *v)
{
    atomic_fetch_add(&dtor_calls, 1);
    atomic_store(&dtor_value, (uintptr_t)v);
    atomic_store(&dtor_task, weft_self().id);
}

static void *set_value(void *arg)
{
    CHECK_OK(weft_tls_set(nkey, (void *)0x77)); /* no destructor */
    if (arg)
        CHECK_OK(weft_tls_set(dkey, arg));
    weft_yield();
    return NULL;
}

static void *dtor_main(void *arg)
{
    (void)arg;
    weft_task t;
    CHECK_OK(weft_spawn(NULL, &t, set_value, (void *)0xabc0, NULL));
    CHECK_OK(weft_join(t, NULL));
    CHECK_EQ_INT(atomic_load(&dtor_calls), 1);
    CHECK_EQ_U64(atomic_load(&dtor_value), 0xabc0);
    CHECK_EQ_U64(atomic_load(&dtor_task), t.id);

    /* A NULL value gets no destructor call. */
    CHECK_OK(weft_spawn(NULL, &t, set_value, NULL, NULL));
    CHECK_OK(weft_join(t, NULL));
    CHECK_EQ_INT(atomic_load(&dtor_calls), 1);
    return NULL;
}

TEST(api, tls_destructor_runs_at_task_end)
{
    CHECK_OK(weft_tls_key_create(&nkey, NULL));
    CHECK_OK(weft_tls_key_create(&dkey, record_dtor));
    weft_rt *rt = test_rt(64);
    test_run(rt, dtor_main, NULL);
    test_rt_destroy_clean(rt);
}

/* A destructor that sets a value again is called again (bounded). */
static _Atomic int resets;

static void reset_dtor(void *v)
{
    atomic_fetch_add(&resets, 1);
    if ((uintptr_t)v < 3)
        CHECK_OK(weft_tls_set(dkey, (void *)((uintptr_t)v + 1)));
}

static void *set_one(void *arg)
{
    (void)arg;
    CHECK_OK(weft_tls_set(dkey, (void *)1));
    return (void *)5;
}

TEST(api, tls_destructor_may_set_again)
{
    CHECK_OK(weft_tls_key_create(&dkey, reset_dtor));
    weft_rt *rt = test_rt(64);
    CHECK_EQ_PTR(test_run(rt, set_one, NULL), (void *)5);
    CHECK_EQ_INT(atomic_load(&resets), 3); /* values 1, 2, 3 */
    test_rt_destroy_clean(rt);
}

/* A child run inline by its joiner (one worker: it stays in the parent's
 * LIFO slot) keeps its values in the joiner's frame, not at the top of
 * the shared stack: the parent's value survives; its destructor runs,
 * and then its result (which shares a word with the TLS pointer,
 * sched/task.h) reaches the joiner. A second inline child that sets
 * nothing starts with NULL and also returns its result. */
static void *inline_child(void *arg)
{
    CHECK_NULL(weft_tls_get(dkey));
    if (arg) {
        CHECK_OK(weft_tls_set(dkey, arg));
        CHECK_EQ_PTR(weft_tls_get(dkey), arg);
    }
    return (void *)0x5150;
}

static void *inline_parent(void *arg)
{
    (void)arg;
    CHECK_OK(weft_tls_set(dkey, (void *)2));
    for (uintptr_t v = 0; v < 2; v++) {
        weft_task t;
        void *r = NULL;
        CHECK_OK(weft_spawn(NULL, &t, inline_child, (void *)(v * 7), NULL));
        CHECK_OK(weft_join(t, &r));
        CHECK_EQ_PTR(r, (void *)0x5150);
        CHECK_EQ_PTR(weft_tls_get(dkey), (void *)2);
    }
    CHECK_EQ_INT(atomic_load(&resets), 1); /* the first child's, once */
    return NULL;
}

TEST(api, tls_inline_child_values_and_result)
{
    CHECK_OK(weft_tls_key_create(&dkey, reset_dtor));
    weft_rt *rt = test_rt_workers(64, 1);
    test_run(rt, inline_parent, NULL);
    CHECK_EQ_U64(test_stats(rt).inlined, 2);
    test_rt_destroy_clean(rt);
}
