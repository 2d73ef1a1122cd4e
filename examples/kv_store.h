/*
 * kv_store.h - the key-value store of examples/kv.c: string keys to string
 * values with an optional expiry time, in KV_SHARDS hash tables, each
 * under its own weft mutex. It knows nothing of the protocol; kv.c turns
 * its results into replies.
 *
 * Times are weft_now_ns() nanoseconds (monotonic); an expiry of 0 is none.
 * A key whose time has come is gone for every call from then on: each call
 * that finds it removes it (lazy expiry), and kv_store_sweep, which kv.c
 * calls from a task every 100 ms, removes those nobody asks for.
 *
 * Calls that take a shard's lock may park the calling task; from a task
 * whose runtime is shut down they may fail with -ECANCELED (the lock would
 * have blocked). Each call is atomic for its key; nothing spans keys (an
 * MSET of keys in two shards is two steps, unlike Redis's).
 */
#ifndef KV_STORE_H
#define KV_STORE_H

#include <stddef.h>
#include <stdint.h>

#define KV_SHARDS 64

/* Flags of kv_store_set. */
enum {
    KV_SET_NX = 1,     /* only if the key does not exist */
    KV_SET_XX = 2,     /* only if it does */
    KV_SET_KEEPTTL = 4 /* keep the key's expiry (ignore the one given) */
};

/* Make the store, with a random hash key (SipHash-1-3) so that clients
 * cannot choose keys that collide. 0 or -errno. Before any other call. */
int kv_store_init(void);
/* Free every entry. No call may be running. */
void kv_store_free(void);

/* Call fn(ctx, value, len) with key's value under the shard's lock (fn
 * must not block), and return 1; 0 when there is no such key. */
int kv_store_get(const char *key, size_t klen, uint64_t now,
                 void (*fn)(void *ctx, const char *v, size_t vlen), void *ctx);
/* Set key to the value, expiring at expire (0: never). 1 set, 0 not set
 * (NX or XX said no), -ENOMEM, -ECANCELED. */
int kv_store_set(const char *key, size_t klen, const char *v, size_t vlen,
                 int flags, uint64_t expire, uint64_t now);
/* 1 removed, 0 there was none; -ECANCELED. */
int kv_store_del(const char *key, size_t klen, uint64_t now);
/* 1 exists, 0 not; -ECANCELED. */
int kv_store_exists(const char *key, size_t klen, uint64_t now);
/* Add 1 to the integer value of key (0 when there is none), keeping its
 * expiry: 0 with *out the new value, -EINVAL (not an integer), -ERANGE
 * (would overflow), -ENOMEM, -ECANCELED. */
int kv_store_incr(const char *key, size_t klen, uint64_t now, long long *out);
/* Keys held, expired ones not yet removed included (as Redis's DBSIZE). */
size_t kv_store_size(void);
/* Remove expired keys: in each shard that has keys with an expiry, look at
 * up to budget buckets from where the last sweep stopped. The number
 * removed, or -ECANCELED. */
long kv_store_sweep(uint64_t now, size_t budget);

#endif /* KV_STORE_H */
