/*
 * test_mn.c - many workers: the deque under thieves, random task trees at
 * 1, 2, 4 and 8 workers, wake-ups handed around a ring of tasks across
 * workers (a lost one hangs), idle CPU, shutdown under load, and spawning
 * from eight plain threads at once.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"

/* ---- the deque: one owner, three thieves ------------------------------ */

typedef struct {
    weft_deque *d;
    _Atomic uint8_t *seen;
    _Atomic int done;
    _Atomic long taken, bad;
} deque_run;

static void count(deque_run *r, uint32_t x, long *mine)
{
    if (atomic_fetch_add_explicit(&r->seen[x], 1, memory_order_relaxed))
        atomic_fetch_add(&r->bad, 1);
    (*mine)++;
}

static void *thief(void *p)
{
    deque_run *r = p;
    long mine = 0;
    for (;;) {
        void *job;
        uint32_t x = weft__deque_steal(r->d, &job);
        if (x == WEFT_DEQUE_EMPTY) {
            if (atomic_load(&r->done))
                break;
            continue;
        }
        if (x != WEFT_DEQUE_ABORT)
            count(r, x, &mine);
    }
    atomic_fetch_add(&r->taken, mine);
    return NULL;
}

TEST_T(stress, deque_owner_vs_thieves, 180)
{
    /* 10^7 items (10^6 under sanitizers): the owner pushes and takes at
     * the bottom, three thieves steal at the top; each item is taken
     * exactly once. */
    const uint32_t n = TEST_SANITIZED ? 1000000 : 10000000;
    deque_run r = {0};
    r.d = aligned_alloc(WEFT_CACHELINE, sizeof *r.d);
    r.seen = calloc(n, 1);
    CHECK(r.d && r.seen);
    memset(r.d, 0, sizeof *r.d);
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, thief, &r);
    long mine = 0;
    for (uint32_t i = 0; i < n; i++) {
        while (weft__deque_push(r.d, i) < 0) {
            uint32_t x = weft__deque_take(r.d);
            if (x != WEFT_DEQUE_EMPTY)
                count(&r, x, &mine);
        }
        if (i % 3 == 0) {
            uint32_t x = weft__deque_take(r.d);
            if (x != WEFT_DEQUE_EMPTY)
                count(&r, x, &mine);
        }
    }
    uint32_t x;
    while ((x = weft__deque_take(r.d)) != WEFT_DEQUE_EMPTY)
        count(&r, x, &mine);
    atomic_store(&r.done, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ_INT(atomic_load(&r.bad), 0);
    CHECK_EQ_INT(atomic_load(&r.taken) + mine, n);
    for (uint32_t i = 0; i < n; i += 9973)
        CHECK_EQ_INT(r.seen[i], 1);
    free((void *)r.seen);
    free(r.d);
}

/* Job entries (fork records, queue/deque.h): the owner pushes a record,
 * sometimes slots above it that it takes back, then takes the record
 * back with weft__deque_take_job, as weft_fork_join does; three thieves
 * steal. Each record leaves exactly once, a thief gets the pointer that
 * was pushed with its entry, and take_job never takes back a record a
 * thief has, or one that is not the bottom entry. */
static uint64_t mix(uint64_t x);

/* Room for n more pushes? Owner only. */
static int deque_room(weft_deque *d, int64_t n)
{
    return atomic_load(&d->bottom) - atomic_load(&d->top) + n <=
           (int64_t)WEFT_DEQUE_CAP;
}

typedef struct job_run {
    weft_deque *d;
    _Atomic uint8_t *seen; /* per record */
    uint32_t *rec;         /* record i holds i */
    uint32_t n;
    _Atomic long taken, bad;
    _Atomic int done;
} job_run;

static void job_count(job_run *r, void *p, long *mine)
{
    uint32_t *q = p;
    if (q < r->rec || q >= r->rec + r->n || *q != (uint32_t)(q - r->rec) ||
        atomic_fetch_add_explicit(&r->seen[*q], 1, memory_order_relaxed))
        atomic_fetch_add(&r->bad, 1);
    (*mine)++;
}

static void *job_thief(void *p)
{
    job_run *r = p;
    long mine = 0;
    for (;;) {
        void *job = NULL;
        uint32_t x = weft__deque_steal(r->d, &job);
        if (x == WEFT_DEQUE_EMPTY) {
            if (atomic_load(&r->done))
                break;
            continue;
        }
        if (x == WEFT_DEQUE_ABORT)
            continue;
        if (weft__deque_is_job(x))
            job_count(r, job, &mine);
        else if (x != 7u) /* the owner's filler slots are all 7 */
            atomic_fetch_add(&r->bad, 1);
    }
    atomic_fetch_add(&r->taken, mine);
    return NULL;
}

TEST_T(stress, deque_jobs_owner_vs_thieves, 180)
{
    const uint32_t n = TEST_SANITIZED ? 300000 : 3000000;
    job_run r = {0};
    r.n = n;
    r.d = aligned_alloc(WEFT_CACHELINE, sizeof *r.d);
    r.seen = calloc(n, 1);
    r.rec = malloc(n * sizeof *r.rec);
    CHECK(r.d && r.seen && r.rec);
    memset(r.d, 0, sizeof *r.d);
    for (uint32_t i = 0; i < n; i++)
        r.rec[i] = i;
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, job_thief, &r);
    long mine = 0, back = 0;
    uint64_t seed = 1;
    for (uint32_t i = 0; i < n; i++) {
        seed = mix(seed + i);
        /* Records left to slow thieves: keep room for this round. */
        while (!deque_room(r.d, 8)) {
            uint32_t x = weft__deque_take(r.d);
            if (x != WEFT_DEQUE_EMPTY && weft__deque_is_job(x))
                job_count(&r, weft__deque_job(r.d, x), &mine);
        }
        int64_t at = weft__deque_push_job(r.d, &r.rec[i]);
        CHECK(at >= 0);
        /* Slots above it, taken back (or stolen) before the take_job. */
        uint32_t above = (uint32_t)(seed % 4 == 0 ? seed % 3 + 1 : 0);
        for (uint32_t k = 0; k < above; k++)
            CHECK(weft__deque_push(r.d, 7u) == 0);
        if (seed % 16 == 1) { /* take_job while slots are above: refused */
            if (above)
                CHECK(!weft__deque_take_job(r.d, at, &r.rec[i]));
        }
        if (!above && seed % 8 == 3) {
            /* Taken and put back (an inline join that found another
             * entry): a thief that gets it later must get its pointer,
             * though taking the last entry moved top. */
            uint32_t x = weft__deque_take(r.d);
            if (x == WEFT_DEQUE_EMPTY)
                continue; /* a thief has it */
            CHECK(weft__deque_is_job(x));
            CHECK(weft__deque_job(r.d, x) == &r.rec[i]);
            weft__deque_put_back(r.d, x);
            if (seed % 3 == 0) /* left to the thieves (or the final drain) */
                continue;
            x = weft__deque_take(r.d);
            if (x != WEFT_DEQUE_EMPTY) {
                CHECK(weft__deque_is_job(x));
                job_count(&r, weft__deque_job(r.d, x), &mine);
            }
            continue;
        }
        for (uint32_t k = 0; k < above; k++) {
            uint32_t x = weft__deque_take(r.d);
            if (x == WEFT_DEQUE_EMPTY)
                break;
            if (weft__deque_is_job(x)) { /* ours: thieves took the rest */
                job_count(&r, weft__deque_job(r.d, x), &mine);
                goto next;
            }
            CHECK(x == 7u);
        }
        if (weft__deque_take_job(r.d, at, &r.rec[i])) {
            job_count(&r, &r.rec[i], &mine);
            back++;
        }
    next:;
    }
    uint32_t x;
    while ((x = weft__deque_take(r.d)) != WEFT_DEQUE_EMPTY)
        if (weft__deque_is_job(x)) /* left to the thieves, not taken */
            job_count(&r, weft__deque_job(r.d, x), &mine);
    atomic_store(&r.done, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ_INT(atomic_load(&r.bad), 0);
    CHECK_EQ_INT(atomic_load(&r.taken) + mine, n);
    CHECK(back > 0 && atomic_load(&r.taken) > 0); /* both sides won some */
    for (uint32_t i = 0; i < n; i += 9973)
        CHECK_EQ_INT(r.seen[i], 1);
    free((void *)r.seen);
    free(r.rec);
    free(r.d);
}

/* ---- random trees at several worker counts ---------------------------- */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x9e3779b97f4a7c15ULL;
    x ^= x >> 29;
    return x;
}

/* A node: yields a seed-chosen number of times, spawns 0-4 children,
 * joins them (in random order), returns the digest of its subtree. */
static void *tree_node(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg;
    int depth = (int)(seed & 7);
    uint64_t digest = mix(seed);
    int kids = depth < 6 ? (int)(mix(seed ^ 1) % 5) : 0;
    weft_task t[4];
    for (int y = (int)(mix(seed ^ 2) % 3); y > 0; y--)
        weft_yield();
    for (int i = 0; i < kids && i < 4; i++) {
        uint64_t cs = (mix(seed * 7 + (uint64_t)i) & ~UINT64_C(7)) |
                      (uint64_t)(depth + 1);
        CHECK_OK(
            weft_spawn(NULL, &t[i], tree_node, (void *)(uintptr_t)cs, NULL));
    }
    int n = kids < 4 ? kids : 4, first = (int)(mix(seed ^ 3) % 4);
    for (int k = 0; k < n; k++) {
        void *r;
        CHECK_OK(weft_join(t[(first + k) % n], &r));
        digest += (uint64_t)(uintptr_t)r;
    }
    return (void *)(uintptr_t)digest;
}

static uint64_t tree_expect(uint64_t seed)
{
    int depth = (int)(seed & 7);
    uint64_t digest = mix(seed);
    int kids = depth < 6 ? (int)(mix(seed ^ 1) % 5) : 0;
    for (int i = 0; i < kids && i < 4; i++)
        digest += tree_expect((mix(seed * 7 + (uint64_t)i) & ~UINT64_C(7)) |
                              (uint64_t)(depth + 1));
    return digest;
}

static void trees_at(unsigned workers)
{
    weft_rt *rt = test_rt_workers(1u << 15, workers);
    int trees = TEST_SANITIZED ? 10 : 60;
    for (int k = 0; k < trees; k++) {
        uint64_t seed = mix((uint64_t)k + 99) & ~UINT64_C(7);
        void *r;
        weft_task t;
        CHECK_OK(weft_spawn(rt, &t, tree_node, (void *)(uintptr_t)seed, NULL));
        CHECK_OK(weft_join(t, &r));
        CHECK_EQ_U64((uint64_t)(uintptr_t)r, tree_expect(seed));
    }
    test_rt_destroy_clean(rt);
}

TEST_T(stress, trees_1_worker, 120)
{
    trees_at(1);
}
TEST_T(stress, trees_2_workers, 120)
{
    trees_at(2);
}
TEST_T(stress, trees_4_workers, 120)
{
    trees_at(4);
}
TEST_T(stress, trees_8_workers, 120)
{
    trees_at(8);
}

/* ---- a ring of tasks handing a token around, across workers ------------ */

#define RING 16

typedef struct {
    weft_rt *rt;
    weft_task h[RING];
    _Atomic long token; /* whose turn: token % RING */
    long rounds;
    _Atomic int ready;
} ring;

typedef struct {
    ring *r;
    int i;
} ring_arg;

static void *ring_task(void *p)
{
    ring_arg *a = p;
    ring *r = a->r;
    while (atomic_load(&r->ready) < RING)
        weft_yield();
    for (;;) {
        long t;
        while ((t = atomic_load_explicit(&r->token, memory_order_acquire)) %
                       RING !=
                   a->i &&
               t < r->rounds)
            weft__task_park();
        if (t >= r->rounds)
            break;
        atomic_store_explicit(&r->token, t + 1, memory_order_release);
        weft_task next = r->h[(a->i + 1) % RING];
        weft__task_unpark(r->rt, weft__handle_slot(next),
                          weft__handle_gen(next));
    }
    /* Wake the others so they see the end. */
    for (int k = 0; k < RING; k++)
        weft__task_unpark(r->rt, weft__handle_slot(r->h[k]),
                          weft__handle_gen(r->h[k]));
    return NULL;
}

TEST_T(stress, ring_wakeups_across_workers, 180)
{
    /* 16 tasks on 4 workers pass a token 10^6 times (10^5 under
     * sanitizers), each pass an unpark of the next task, which is often
     * on another worker or asleep: a lost wake-up stops the ring and the
     * test times out. */
    static ring r;
    r.rounds = TEST_SANITIZED ? 100000 : 1000000;
    r.rt = test_rt_workers(1024, 4);
    static ring_arg a[RING];
    for (int i = 0; i < RING; i++) {
        a[i] = (ring_arg){&r, i};
        CHECK_OK(weft_spawn(r.rt, &r.h[i], ring_task, &a[i], NULL));
        atomic_fetch_add(&r.ready, 1);
    }
    for (int i = 0; i < RING; i++)
        CHECK_OK(weft_join(r.h[i], NULL));
    CHECK_EQ_INT(atomic_load(&r.token), r.rounds);
    test_rt_destroy_clean(r.rt);
}

/* ---- idle CPU ------------------------------------------------------------ */

static void *nothing(void *arg)
{
    return arg;
}

static double cpu_ms(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec * 1e3 + u.ru_utime.tv_usec / 1e3 +
           u.ru_stime.tv_sec * 1e3 + u.ru_stime.tv_usec / 1e3;
}

TEST(stress, idle_runtime_uses_under_1_percent_cpu)
{
    /* Every worker sleeps once there is nothing to do: over 1 s of
     * idleness the process uses under 10 ms of CPU (1 % of one CPU). */
    if (TEST_SANITIZED)
        TEST_SKIP("sanitizer runtimes run background threads of their own");
    weft_rt *rt = test_rt_workers(256, 4);
    test_run(rt, nothing, NULL);
    usleep(50 * 1000); /* let the search spins run out */
    double before = cpu_ms();
    usleep(1000 * 1000);
    double used = cpu_ms() - before;
    fprintf(stderr, "# idle CPU over 1 s: %.2f ms\n", used);
    CHECK_CMP_INT((long)(used * 100), <, 1000);
    test_rt_destroy_clean(rt);
}

/* ---- shutdown under load ----------------------------------------------- */

static _Atomic int stop_spinning;

static void *yielder_forever(void *arg)
{
    while (!atomic_load(&stop_spinning))
        weft_yield();
    return arg;
}

static void *parker_forever(void *arg)
{
    for (;;)
        weft__task_park(); /* nobody unparks it */
    return arg;
}

static void *spawner_forever(void *arg)
{
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.flags = WEFT_DETACHED;
    while (weft_spawn(NULL, NULL, nothing, NULL, &a) != -ECANCELED)
        weft_yield();
    return arg;
}

TEST_T(stress, shutdown_under_load, 60)
{
    /* Yielding, parked and spawning tasks on 4 workers: shutdown then
     * destroy returns promptly and leaves nothing mapped (ASan's leak
     * check covers the heap). */
    weft_rt *rt = test_rt_workers(4096, 4);
    weft_spawn_attr a = WEFT_SPAWN_ATTR_INIT;
    a.flags = WEFT_DETACHED;
    for (int i = 0; i < 64; i++) {
        CHECK_OK(weft_spawn(rt, NULL, yielder_forever, NULL, &a));
        CHECK_OK(weft_spawn(rt, NULL, parker_forever, NULL, &a));
    }
    CHECK_OK(weft_spawn(rt, NULL, spawner_forever, NULL, &a));
    usleep(100 * 1000);
    CHECK_ERR(weft_rt_destroy(rt), -EBUSY);
    uint64_t t0 = test_now_ms();
    CHECK_OK(weft_rt_shutdown(rt));
    CHECK_ERR(weft_spawn(rt, NULL, nothing, NULL, &a), -ECANCELED);
    CHECK_OK(weft_rt_destroy(rt));
    CHECK_CMP_INT(test_now_ms() - t0, <, 5000);
    atomic_store(&stop_spinning, 1);
}

/* ---- spawning from eight plain threads at once ------------------------- */

typedef struct {
    weft_rt *rt;
    _Atomic long sum;
} eight;

static void *add_one(void *arg)
{
    eight *e = *(eight **)arg;
    atomic_fetch_add(&e->sum, 1);
    return NULL;
}

static void *plain_spawner(void *arg)
{
    eight *e = arg;
    eight *self = e;
    int n = TEST_SANITIZED ? 500 : 5000;
    weft_task t[16];
    for (int i = 0; i < n; i += 16) {
        for (int k = 0; k < 16; k++)
            CHECK_OK(weft_spawn(e->rt, &t[k], add_one, &self, NULL));
        for (int k = 0; k < 16; k++)
            CHECK_OK(weft_join(t[k], NULL));
    }
    return NULL;
}

TEST_T(stress, spawn_from_eight_plain_threads, 120)
{
    static eight e;
    e.rt = test_rt_workers(4096, 2);
    pthread_t th[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, plain_spawner, &e);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    int n = TEST_SANITIZED ? 512 : 5008; /* rounded up to 16 */
    CHECK_EQ_INT(atomic_load(&e.sum), 8L * n);
    test_rt_destroy_clean(e.rt);
}

/* ---- pinning ------------------------------------------------------------- */

static void *cpus_of_my_thread(void *arg)
{
    (void)arg;
    cpu_set_t set;
    CHECK_EQ_INT(pthread_getaffinity_np(pthread_self(), sizeof set, &set), 0);
    return (void *)(intptr_t)CPU_COUNT(&set);
}

TEST(stress, pinned_workers_run_on_one_cpu)
{
    /* cfg.pin: each worker thread is bound to one CPU of the process's
     * affinity mask, so a task sees a one-CPU mask on whichever worker
     * it runs. */
    weft_config cfg;
    weft_config_default(&cfg);
    cfg.max_tasks = 256;
    cfg.pin = 1;
    weft_rt *rt = test_rt_cfg(&cfg);
    for (int i = 0; i < 8; i++)
        CHECK_EQ_INT((intptr_t)test_run(rt, cpus_of_my_thread, NULL), 1);
    test_rt_destroy_clean(rt);
}
