/*
 * kv_store.c - the sharded hash table of kv_store.h.
 *
 * Why shards: one lock for the whole store would make every connection
 * task queue on it; with KV_SHARDS tables, each behind a weft mutex, two
 * commands contend only when their keys land in the same shard. A weft
 * mutex (not a pthread one) because a contended locker must park its
 * task, not its worker. No lock is held across anything that can wait
 * but the lock itself: kv.c copies a value out under the lock and writes
 * it to the socket after.
 *
 * A key's 64-bit SipHash-1-3 (keyed with random bytes at start, so a
 * client cannot aim many keys at one bucket) picks the shard with its top
 * bits and the bucket with its low bits. Each shard chains its buckets;
 * an entry is one allocation holding key and value, replaced whole by a
 * SET or an INCR. A shard doubles its bucket array when it holds more
 * keys than buckets, rehashing under its lock (a pause for that shard
 * only, proportional to its size).
 *
 * Expiry: an entry carries its expiry time; every lookup that meets an
 * expired entry unlinks and frees it, so an expired key is never seen.
 * The sweep walks a bounded number of buckets per shard per call, from a
 * cursor kept per shard, and only in shards whose count of keys with an
 * expiry (volatile) is not zero; so an idle store with no expiring keys
 * costs the sweep 64 loads, and one with many is cleaned a slice at a
 * time without holding a shard's lock for long.
 */
#define _GNU_SOURCE
#include "kv_store.h"
#include "resp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/random.h>

#include "weft.h"

struct entry {
    struct entry *next; /* bucket chain */
    uint64_t hash;
    uint64_t expire; /* weft_now_ns() time, 0 = never */
    size_t klen, vlen;
    char data[]; /* key then value */
};

struct shard {
    weft_mutex mu;      /* guards every field below */
    struct entry **tab; /* mask + 1 bucket heads */
    size_t mask;
    atomic_size_t count;      /* entries; read without the lock by DBSIZE */
    atomic_size_t volatile_n; /* entries with an expiry; read without the
                                 lock by the sweep, to skip the shard */
    size_t cursor;            /* next bucket the sweep looks at */
    char pad[64];             /* keep neighbours' locks off this line */
};

static struct shard shards[KV_SHARDS];
static uint64_t sipkey[2];

/* ---- SipHash-1-3 (Aumasson and Bernstein, "SipHash: a fast short-input
 * PRF", 2012): one compression round per word, three finalization. */

static uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

#define SIPROUND                                                               \
    do {                                                                       \
        v0 += v1;                                                              \
        v1 = rotl(v1, 13);                                                     \
        v1 ^= v0;                                                              \
        v0 = rotl(v0, 32);                                                     \
        v2 += v3;                                                              \
        v3 = rotl(v3, 16);                                                     \
        v3 ^= v2;                                                              \
        v0 += v3;                                                              \
        v3 = rotl(v3, 21);                                                     \
        v3 ^= v0;                                                              \
        v2 += v1;                                                              \
        v1 = rotl(v1, 17);                                                     \
        v1 ^= v2;                                                              \
        v2 = rotl(v2, 32);                                                     \
    } while (0)

static uint64_t siphash13(const char *s, size_t n)
{
    uint64_t v0 = sipkey[0] ^ 0x736f6d6570736575ULL;
    uint64_t v1 = sipkey[1] ^ 0x646f72616e646f6dULL;
    uint64_t v2 = sipkey[0] ^ 0x6c7967656e657261ULL;
    uint64_t v3 = sipkey[1] ^ 0x7465646279746573ULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t i, words = n / 8;
    for (i = 0; i < words; i++, p += 8) {
        uint64_t m = 0;
        for (int j = 7; j >= 0; j--)
            m = (m << 8) | p[j]; /* little-endian, whatever the host */
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)n << 56;
    for (i = 0; i < n % 8; i++)
        b |= (uint64_t)p[i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

int kv_store_init(void)
{
    if (getrandom(sipkey, sizeof sipkey, 0) != (ssize_t)sizeof sipkey)
        return -errno;
    for (int i = 0; i < KV_SHARDS; i++) {
        struct shard *s = &shards[i];
        weft_mutex_init(&s->mu);
        s->mask = 15;
        s->tab = calloc(s->mask + 1, sizeof *s->tab);
        if (s->tab == NULL) {
            kv_store_free();
            return -ENOMEM;
        }
    }
    return 0;
}

void kv_store_free(void)
{
    for (int i = 0; i < KV_SHARDS; i++) {
        struct shard *s = &shards[i];
        for (size_t b = 0; s->tab && b <= s->mask; b++) {
            for (struct entry *e = s->tab[b], *n; e; e = n) {
                n = e->next;
                free(e);
            }
        }
        free(s->tab);
        s->tab = NULL;
        atomic_store_explicit(&s->count, 0, memory_order_relaxed);
        atomic_store_explicit(&s->volatile_n, 0, memory_order_relaxed);
    }
}

/* Add d to a counter written only under its shard's lock (so a load and a
 * store are enough) and read without it (so both are atomic, relaxed: a
 * reader wants a recent value, nothing ordered with it). */
static void add(atomic_size_t *a, int d)
{
    size_t v = atomic_load_explicit(a, memory_order_relaxed);
    atomic_store_explicit(a, v + (size_t)(ptrdiff_t)d, memory_order_relaxed);
}

static size_t get(atomic_size_t *a)
{
    return atomic_load_explicit(a, memory_order_relaxed);
}

static struct shard *shard_of(uint64_t h)
{
    return &shards[h >> 58]; /* 64 = 2^6 shards */
}

/* Unlink and free *link's entry. Shard lock held. */
static void drop(struct shard *s, struct entry **link)
{
    struct entry *e = *link;
    *link = e->next;
    add(&s->count, -1);
    if (e->expire)
        add(&s->volatile_n, -1);
    free(e);
}

/* The link that points at key's live entry, or at the NULL ending its
 * chain; an expired entry met on the way is dropped. Shard lock held. */
static struct entry **find(struct shard *s, uint64_t h, const char *key,
                           size_t klen, uint64_t now)
{
    struct entry **link = &s->tab[h & s->mask];
    while (*link) {
        struct entry *e = *link;
        if (e->expire && e->expire <= now) {
            drop(s, link);
            continue;
        }
        if (e->hash == h && e->klen == klen && !memcmp(e->data, key, klen))
            return link;
        link = &e->next;
    }
    return link;
}

/* Double the bucket array when it holds more keys than buckets; on no
 * memory the table just stays as it is. Shard lock held. */
static void maybe_grow(struct shard *s)
{
    if (get(&s->count) <= s->mask + 1)
        return;
    size_t nmask = 2 * s->mask + 1;
    struct entry **nt = calloc(nmask + 1, sizeof *nt);
    if (nt == NULL)
        return;
    for (size_t b = 0; b <= s->mask; b++) {
        for (struct entry *e = s->tab[b], *n; e; e = n) {
            n = e->next;
            e->next = nt[e->hash & nmask];
            nt[e->hash & nmask] = e;
        }
    }
    free(s->tab);
    s->tab = nt;
    s->mask = nmask;
}

static struct entry *make(uint64_t h, const char *key, size_t klen,
                          const char *v, size_t vlen, uint64_t expire)
{
    struct entry *e = malloc(sizeof *e + klen + vlen);
    if (e == NULL)
        return NULL;
    e->hash = h;
    e->expire = expire;
    e->klen = klen;
    e->vlen = vlen;
    memcpy(e->data, key, klen);
    memcpy(e->data + klen, v, vlen);
    return e;
}

/* Put e in place of *link's entry (or at the chain's end). Lock held. */
static void put(struct shard *s, struct entry **link, struct entry *e)
{
    struct entry *old = *link;
    if (old) {
        e->next = old->next;
        if (old->expire)
            add(&s->volatile_n, -1);
        free(old);
    } else {
        e->next = NULL;
        add(&s->count, 1);
    }
    *link = e;
    if (e->expire)
        add(&s->volatile_n, 1);
    if (!old)
        maybe_grow(s);
}

int kv_store_get(const char *key, size_t klen, uint64_t now,
                 void (*fn)(void *ctx, const char *v, size_t vlen), void *ctx)
{
    uint64_t h = siphash13(key, klen);
    struct shard *s = shard_of(h);
    int err = weft_mutex_lock(&s->mu);
    if (err)
        return err;
    struct entry *e = *find(s, h, key, klen, now);
    if (e)
        fn(ctx, e->data + e->klen, e->vlen);
    weft_mutex_unlock(&s->mu);
    return e != NULL;
}

int kv_store_set(const char *key, size_t klen, const char *v, size_t vlen,
                 int flags, uint64_t expire, uint64_t now)
{
    uint64_t h = siphash13(key, klen);
    struct shard *s = shard_of(h);
    int err = weft_mutex_lock(&s->mu);
    if (err)
        return err;
    struct entry **link = find(s, h, key, klen, now);
    int ret = 1;
    if (((flags & KV_SET_NX) && *link) || ((flags & KV_SET_XX) && !*link)) {
        ret = 0;
    } else {
        if ((flags & KV_SET_KEEPTTL) && *link)
            expire = (*link)->expire;
        else if (flags & KV_SET_KEEPTTL)
            expire = 0;
        struct entry *e = make(h, key, klen, v, vlen, expire);
        if (e)
            put(s, link, e);
        else
            ret = -ENOMEM;
    }
    weft_mutex_unlock(&s->mu);
    return ret;
}

int kv_store_del(const char *key, size_t klen, uint64_t now)
{
    uint64_t h = siphash13(key, klen);
    struct shard *s = shard_of(h);
    int err = weft_mutex_lock(&s->mu);
    if (err)
        return err;
    struct entry **link = find(s, h, key, klen, now);
    int ret = *link != NULL;
    if (ret)
        drop(s, link);
    weft_mutex_unlock(&s->mu);
    return ret;
}

int kv_store_exists(const char *key, size_t klen, uint64_t now)
{
    uint64_t h = siphash13(key, klen);
    struct shard *s = shard_of(h);
    int err = weft_mutex_lock(&s->mu);
    if (err)
        return err;
    int ret = *find(s, h, key, klen, now) != NULL;
    weft_mutex_unlock(&s->mu);
    return ret;
}

int kv_store_incr(const char *key, size_t klen, uint64_t now, long long *out)
{
    uint64_t h = siphash13(key, klen);
    struct shard *s = shard_of(h);
    int err = weft_mutex_lock(&s->mu);
    if (err)
        return err;
    struct entry **link = find(s, h, key, klen, now);
    long long v = 0;
    uint64_t expire = 0;
    int ret = 0;
    if (*link) {
        struct entry *e = *link;
        expire = e->expire;
        if (!resp_strtoll(e->data + e->klen, e->vlen, &v))
            ret = -EINVAL;
        else if (v == 9223372036854775807LL)
            ret = -ERANGE;
    }
    if (ret == 0) {
        char num[24];
        int n = snprintf(num, sizeof num, "%lld", v + 1);
        struct entry *e = make(h, key, klen, num, (size_t)n, expire);
        if (e) {
            put(s, link, e);
            *out = v + 1;
        } else {
            ret = -ENOMEM;
        }
    }
    weft_mutex_unlock(&s->mu);
    return ret;
}

size_t kv_store_size(void)
{
    size_t n = 0;
    for (int i = 0; i < KV_SHARDS; i++) {
        /* Without the lock: DBSIZE is a snapshot anyway. */
        n += get(&shards[i].count);
    }
    return n;
}

long kv_store_sweep(uint64_t now, size_t budget)
{
    long removed = 0;
    for (int i = 0; i < KV_SHARDS; i++) {
        struct shard *s = &shards[i];
        if (get(&s->volatile_n) == 0)
            continue;
        int err = weft_mutex_lock(&s->mu);
        if (err)
            return err;
        size_t n = budget < s->mask + 1 ? budget : s->mask + 1;
        for (size_t k = 0; k < n; k++) {
            size_t b = s->cursor++ & s->mask;
            struct entry **link = &s->tab[b];
            while (*link) {
                if ((*link)->expire && (*link)->expire <= now) {
                    drop(s, link);
                    removed++;
                } else {
                    link = &(*link)->next;
                }
            }
        }
        weft_mutex_unlock(&s->mu);
    }
    return removed;
}
