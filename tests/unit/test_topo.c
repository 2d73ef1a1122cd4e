/*
 * test_topo.c - the topology (src/sched/topo.c): the sysfs parser on
 * captured trees (tests/data/topo/: a 2-L3-group AMD-like layout and a
 * 2-node layout) field by field, restriction to an affinity mask, missing
 * files, the pin order, the live machine against `lscpu -p`, and cfg.pin
 * placing each worker on its CPU.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "../internal.h"
#include "../../src/sched/topo.h"

#ifndef WEFT_TEST_DATA
#error "WEFT_TEST_DATA (tests/data) must be defined by the build"
#endif
#define TREE(name) WEFT_TEST_DATA "/topo/" name

/* Parse a captured tree for the CPUs listed in cpus[0..n). */
static weft_topo *parse(const char *root, const unsigned *cpus, unsigned n)
{
    weft_topo *t = malloc(sizeof *t);
    CHECK_NOT_NULL(t);
    memset(t, 0xa5, sizeof *t); /* no field may be left unwritten */
    cpu_set_t set;
    CPU_ZERO(&set);
    for (unsigned i = 0; i < n; i++)
        CPU_SET(cpus[i], &set);
    weft__topo_sysfs(t, root, &set);
    return t;
}

static weft_topo *parse_first(const char *root, unsigned n)
{
    unsigned cpus[WEFT_TOPO_CPUS];
    for (unsigned i = 0; i < n; i++)
        cpus[i] = i;
    return parse(root, cpus, n);
}

/* Every field of every CPU against a row of {os, core, smt, l3, node,
 * package}. */
static void check_cpus(const weft_topology *t, const unsigned (*want)[6],
                       unsigned n)
{
    CHECK_EQ_INT(t->ncpus, n);
    for (unsigned i = 0; i < n; i++) {
        const weft_cpu *c = &t->cpus[i];
        CHECK_EQ_INT(c->os, want[i][0]);
        CHECK_EQ_INT(c->core, want[i][1]);
        CHECK_EQ_INT(c->smt, want[i][2]);
        CHECK_EQ_INT(c->l3, want[i][3]);
        CHECK_EQ_INT(c->node, want[i][4]);
        CHECK_EQ_INT(c->package, want[i][5]);
    }
}

static void check_pin(const weft_topology *t, const unsigned *want_os)
{
    for (unsigned i = 0; i < t->ncpus; i++)
        CHECK_EQ_INT(t->cpus[t->pin_order[i]].os, want_os[i]);
}

TEST(unit, topo_sysfs_two_l3_groups)
{
    weft_topo *t = parse_first(TREE("amd16"), 16);
    const weft_topology *p = &t->pub;
    CHECK_EQ_STR(p->source, "sysfs");
    CHECK_EQ_INT(p->ncores, 8);
    CHECK_EQ_INT(p->nl3, 2);
    CHECK_EQ_INT(p->nnodes, 1);
    CHECK_EQ_INT(p->npackages, 1);
    CHECK_EQ_INT(p->node_os[0], 0);
    CHECK_EQ_INT(p->distance[0], 10);
    /* Core k is CPUs k and k+8; CCX 0 holds cores 0-3. */
    unsigned want[16][6];
    for (unsigned c = 0; c < 16; c++) {
        unsigned core = c % 8;
        unsigned row[6] = {c, core, c / 8, core / 4, 0, 0};
        memcpy(want[c], row, sizeof row);
    }
    check_cpus(p, want, 16);
    free(t);
}

TEST(unit, topo_sysfs_two_nodes)
{
    weft_topo *t = parse_first(TREE("numa2"), 8);
    const weft_topology *p = &t->pub;
    CHECK_EQ_STR(p->source, "sysfs");
    CHECK_EQ_INT(p->ncores, 4);
    CHECK_EQ_INT(p->nl3, 2);
    CHECK_EQ_INT(p->nnodes, 2);
    CHECK_EQ_INT(p->npackages, 2);
    CHECK_EQ_INT(p->node_os[0], 0);
    CHECK_EQ_INT(p->node_os[1], 1);
    CHECK_EQ_INT(p->distance[0], 10);
    CHECK_EQ_INT(p->distance[1], 21);
    CHECK_EQ_INT(p->distance[2], 21);
    CHECK_EQ_INT(p->distance[3], 10);
    /* Package p holds CPUs 2p, 2p+1 and their siblings 2p+4, 2p+5;
     * core_id repeats across packages, cores must not. */
    static const unsigned want[8][6] = {
        {0, 0, 0, 0, 0, 0}, {1, 1, 0, 0, 0, 0}, {2, 2, 0, 1, 1, 1},
        {3, 3, 0, 1, 1, 1}, {4, 0, 1, 0, 0, 0}, {5, 1, 1, 0, 0, 0},
        {6, 2, 1, 1, 1, 1}, {7, 3, 1, 1, 1, 1},
    };
    check_cpus(p, want, 8);
    static const unsigned pin[8] = {0, 1, 4, 5, 2, 3, 6, 7};
    check_pin(p, pin);
    free(t);
}

TEST(unit, topo_sysfs_affinity_subset)
{
    /* Only CPUs 1, 2, 3 and 5 allowed: cores, groups and nodes are
     * renumbered over what is left, and 5 is 1's sibling. */
    static const unsigned cpus[] = {1, 2, 3, 5};
    weft_topo *t = parse(TREE("numa2"), cpus, 4);
    const weft_topology *p = &t->pub;
    CHECK_EQ_INT(p->ncores, 3);
    CHECK_EQ_INT(p->nl3, 2);
    CHECK_EQ_INT(p->nnodes, 2);
    CHECK_EQ_INT(p->distance[1], 21);
    static const unsigned want[4][6] = {
        {1, 0, 0, 0, 0, 0},
        {2, 1, 0, 1, 1, 1},
        {3, 2, 0, 1, 1, 1},
        {5, 0, 1, 0, 0, 0},
    };
    check_cpus(p, want, 4);
    static const unsigned pin[4] = {1, 5, 2, 3};
    check_pin(p, pin);
    free(t);
}

TEST(unit, topo_sysfs_missing_files)
{
    /* No tree at all: every CPU its own core, one L3 group, one node at
     * distance 10. */
    weft_topo *t = parse_first(TREE("does-not-exist"), 3);
    const weft_topology *p = &t->pub;
    CHECK_EQ_INT(p->ncpus, 3);
    CHECK_EQ_INT(p->ncores, 3);
    CHECK_EQ_INT(p->nl3, 1);
    CHECK_EQ_INT(p->nnodes, 1);
    CHECK_EQ_INT(p->npackages, 1);
    CHECK_EQ_INT(p->distance[0], 10);
    static const unsigned want[3][6] = {
        {0, 0, 0, 0, 0, 0}, {1, 1, 0, 0, 0, 0}, {2, 2, 0, 0, 0, 0}};
    check_cpus(p, want, 3);
    /* CPUs the tree does not have are described the same way. */
    static const unsigned cpus[] = {3, 20};
    free(t);
    t = parse(TREE("amd16"), cpus, 2);
    CHECK_EQ_INT(t->pub.ncpus, 2);
    CHECK_EQ_INT(t->pub.ncores, 2);
    CHECK_EQ_INT(t->pub.nl3, 2); /* CPU 3's CCX, and "unknown" */
    CHECK_EQ_INT(t->pub.cpus[1].os, 20);
    free(t);
}

TEST(unit, topo_pin_order_fills_one_l3_group_first)
{
    weft_topo *t = parse_first(TREE("amd16"), 16);
    /* CCX 0: one thread per core (0-3), then their siblings (8-11); then
     * CCX 1 the same way. */
    static const unsigned pin[16] = {0, 1, 2, 3, 8,  9,  10, 11,
                                     4, 5, 6, 7, 12, 13, 14, 15};
    check_pin(&t->pub, pin);
    /* The property itself: the first 8 workers share one L3 group, and
     * no core gets a second worker before every core of the group has
     * one. */
    for (unsigned i = 0; i < 16; i++) {
        const weft_cpu *c = &t->pub.cpus[t->pub.pin_order[i]];
        CHECK_EQ_INT(c->l3, i / 8);
        CHECK_EQ_INT(c->smt, (i % 8) / 4);
    }
    free(t);
}

/* ---- the live machine against lscpu ---------------------------------- */

typedef struct {
    long core, socket, node, l3; /* -1 when lscpu leaves it empty */
    int seen;
} lscpu_row;

/* Split s at ',' and ':' into at most n fields (empty ones kept). */
static int fields(char *s, char **f, int n)
{
    int k = 0;
    f[k++] = s;
    for (; *s && k < n; s++) {
        if (*s == ',' || *s == ':') {
            *s = 0;
            f[k++] = s + 1;
        }
    }
    return k;
}

static long num(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return end == s ? -1 : v;
}

/* rows[cpu] from `lscpu -p=CPU,CORE,SOCKET,NODE,CACHE`; 0 when lscpu
 * cannot run. *has_l3: the cache columns include an L3. */
static int run_lscpu(lscpu_row *rows, int *has_l3)
{
    FILE *f = popen("lscpu -p=CPU,CORE,SOCKET,NODE,CACHE 2>/dev/null", "r");
    if (!f)
        return 0;
    char line[512], *fl[32];
    int l3_col = -1, any = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (line[0] == '#') {
            if (!strncmp(line, "# CPU", 5)) {
                int n = fields(line + 2, fl, 32);
                for (int i = 0; i < n; i++)
                    if (!strcmp(fl[i], "L3"))
                        l3_col = i;
            }
            continue;
        }
        int n = fields(line, fl, 32);
        long cpu = num(fl[0]);
        if (n < 4 || cpu < 0 || cpu >= WEFT_TOPO_CPUS)
            continue;
        lscpu_row *r = &rows[cpu];
        r->core = num(fl[1]);
        r->socket = num(fl[2]);
        r->node = num(fl[3]);
        r->l3 = l3_col >= 0 && l3_col < n ? num(fl[l3_col]) : -1;
        r->seen = 1;
        any = 1;
    }
    int status = pclose(f);
    *has_l3 = l3_col >= 0;
    return any && status == 0;
}

/* Same CPUs as lscpu lists within the affinity mask; two CPUs share a
 * core, an L3 group or a node in t exactly when they do in lscpu. */
static void check_against_lscpu(const weft_topology *t, const lscpu_row *rows,
                                int has_l3)
{
    cpu_set_t set;
    CHECK_EQ_INT(sched_getaffinity(0, sizeof set, &set), 0);
    unsigned allowed = 0;
    for (unsigned c = 0; c < WEFT_TOPO_CPUS; c++)
        allowed += CPU_ISSET(c, &set) && rows[c].seen;
    CHECK_EQ_INT(t->ncpus, allowed);
    for (unsigned i = 0; i < t->ncpus; i++) {
        const weft_cpu *a = &t->cpus[i];
        CHECK(CPU_ISSET(a->os, &set));
        CHECK(rows[a->os].seen);
        for (unsigned j = 0; j < t->ncpus; j++) {
            const weft_cpu *b = &t->cpus[j];
            const lscpu_row *ra = &rows[a->os], *rb = &rows[b->os];
            int core = ra->core == rb->core && ra->socket == rb->socket;
            CHECK_EQ_INT(a->core == b->core, core);
            CHECK_EQ_INT(a->package == b->package, ra->socket == rb->socket);
            /* An empty NODE column: the kernel has no NUMA; one node. */
            CHECK_EQ_INT(a->node == b->node, ra->node == rb->node);
            if (has_l3)
                CHECK_EQ_INT(a->l3 == b->l3, ra->l3 == rb->l3);
        }
    }
    if (!has_l3)
        CHECK_EQ_INT(t->nl3, 1);
}

TEST(unit, topo_live_matches_lscpu)
{
    static lscpu_row rows[WEFT_TOPO_CPUS];
    int has_l3;
    if (!run_lscpu(rows, &has_l3))
        TEST_SKIP("lscpu not available");
    const weft_topology *t;
    CHECK_OK(weft_topology_get(&t));
#ifdef WEFT_HAVE_HWLOC
    CHECK_EQ_STR(t->source, "hwloc");
#else
    CHECK_EQ_STR(t->source, "sysfs");
#endif
    check_against_lscpu(t, rows, has_l3);
    /* The sysfs parser on the live /sys, whichever source the process
     * uses. */
    cpu_set_t set;
    CHECK_EQ_INT(sched_getaffinity(0, sizeof set, &set), 0);
    weft_topo *s = malloc(sizeof *s);
    CHECK_NOT_NULL(s);
    weft__topo_sysfs(s, "/sys", &set);
    check_against_lscpu(&s->pub, rows, has_l3);
    /* Both sources agree on the numbering, not only the grouping. */
    CHECK_EQ_INT(s->pub.ncpus, t->ncpus);
    CHECK_EQ_INT(s->pub.nnodes, t->nnodes);
    for (unsigned i = 0; i < t->ncpus; i++) {
        CHECK_EQ_INT(s->pub.cpus[i].os, t->cpus[i].os);
        CHECK_EQ_INT(s->pub.cpus[i].core, t->cpus[i].core);
        CHECK_EQ_INT(s->pub.cpus[i].smt, t->cpus[i].smt);
        CHECK_EQ_INT(s->pub.cpus[i].l3, t->cpus[i].l3);
        CHECK_EQ_INT(s->pub.cpus[i].node, t->cpus[i].node);
        CHECK_EQ_INT(s->pub.pin_order[i], t->pin_order[i]);
    }
    for (unsigned i = 0; i < t->nnodes * t->nnodes; i++)
        CHECK_EQ_INT(s->pub.distance[i], t->distance[i]);
    free(s);
    CHECK_ERR(weft_topology_get(NULL), -EINVAL);
}

/* ---- cfg.pin ----------------------------------------------------------- */

/* Each worker a task runs on is pinned to exactly the CPU its id gets in
 * the pin order. */
static void *where_am_i(void *arg)
{
    const weft_topology *t = arg;
    weft_worker *w = weft__worker_self();
    CHECK_NOT_NULL(w);
    cpu_set_t set;
    CHECK_EQ_INT(sched_getaffinity(0, sizeof set, &set), 0);
    CHECK_EQ_INT(CPU_COUNT(&set), 1);
    unsigned want = t->cpus[t->pin_order[w->id % t->ncpus]].os;
    CHECK(CPU_ISSET(want, &set));
    return (void *)(uintptr_t)(1u << w->id);
}

static void *spread(void *arg)
{
    uintptr_t seen = 0;
    for (int round = 0; round < 200 && seen != 3; round++) {
        weft_task k[8];
        for (int i = 0; i < 8; i++)
            CHECK_OK(weft_spawn(NULL, &k[i], where_am_i, arg, NULL));
        for (int i = 0; i < 8; i++) {
            void *r;
            CHECK_OK(weft_join(k[i], &r));
            seen |= (uintptr_t)r;
        }
        seen |= (uintptr_t)where_am_i(arg);
    }
    return (void *)seen;
}

TEST(unit, topo_pin_workers)
{
    const weft_topology *t;
    CHECK_OK(weft_topology_get(&t));
    weft_config c;
    weft_config_default(&c);
    c.workers = 2;
    c.max_tasks = 256;
    c.pin = 1;
    weft_rt *rt = test_rt_cfg(&c);
    void *seen = test_run(rt, spread, (void *)t);
    /* Every task checked its own worker; both workers must have run one
     * (the joiner itself runs on one). */
    CHECK_CMP_U64((uintptr_t)seen, !=, 0);
    test_rt_destroy_clean(rt);
}

/* ---- wait hints against /proc/cpuinfo ----------------------------------- */

/* Does the first "flags" line of /proc/cpuinfo list `flag`? -1 when there
 * is no such line (not x86, or no procfs). */
static int cpuinfo_flag(const char *flag)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return -1;
    char line[8192];
    int found = -1;
    while (found < 0 && fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5))
            continue;
        found = 0;
        for (char *tok = strtok(strchr(line, ':') + 1, " \t\n"); tok;
             tok = strtok(NULL, " \t\n"))
            found |= !strcmp(tok, flag);
    }
    fclose(f);
    return found;
}

TEST(unit, topo_wait_hints_match_the_cpu)
{
    const weft_topology *t;
    CHECK_OK(weft_topology_get(&t));
    fprintf(stderr, "# wait hints: %s%s%s%s%s\n",
            t->wait_hints & WEFT_HINT_WAITPKG ? "waitpkg " : "",
            t->wait_hints & WEFT_HINT_MONITORX ? "monitorx " : "",
            t->wait_hints & WEFT_HINT_WFE ? "wfe " : "",
            t->wait_hints & WEFT_HINT_WFXT ? "wfxt " : "",
            t->wait_hints ? "" : "none");
#if defined(__x86_64__) || defined(__i386__)
    int w = cpuinfo_flag("waitpkg"), m = cpuinfo_flag("monitorx");
    if (w < 0)
        TEST_SKIP("no flags line in /proc/cpuinfo");
    /* The kernel lists what CPUID says (qemu-user runs x86 only as the
     * host, so this is the host's CPU either way). */
    CHECK_EQ_INT(!!(t->wait_hints & WEFT_HINT_WAITPKG), w);
    CHECK_EQ_INT(!!(t->wait_hints & WEFT_HINT_MONITORX), m);
    CHECK_EQ_INT(t->wait_hints & (WEFT_HINT_WFE | WEFT_HINT_WFXT), 0);
#elif defined(__aarch64__)
    CHECK(t->wait_hints & WEFT_HINT_WFE);
    CHECK_EQ_INT(t->wait_hints & (WEFT_HINT_WAITPKG | WEFT_HINT_MONITORX), 0);
#else
    CHECK_EQ_INT(t->wait_hints, 0);
#endif
}

/* ---- mesh mode's groups from the topology ----------------------------- */

/* Pinned workers (cfg.pin) take the pin order: on the two-CCX tree the
 * first 8 share CCX 0, the next ones CCX 1. Mesh mode's neighbour order,
 * its group sizes and its hunger words (one per group) must follow. */
TEST(unit, topo_mesh_groups_follow_pin_order)
{
    weft_topo *t = parse_first(TREE("amd16"), 16);
    weft_config c;
    weft_config_default(&c);
    c.workers = 12;
    c.max_tasks = 4096;
    c.balance = WEFT_BALANCE_MESH;
    weft_rt *rt = test_rt_cfg(&c);
    weft__mesh_groups_from_topology(rt, &t->pub);
    CHECK_EQ_INT(atomic_load(&rt->nhwords), 2);
    uint64_t bits[2] = {0, 0};
    for (uint32_t i = 0; i < 12; i++) {
        uint32_t g = i < 8 ? 0 : 1;
        weft_worker *w = &rt->workers[i];
        CHECK_EQ_INT(w->ngroup, g == 0 ? 7 : 3);
        for (uint32_t d = 0; d < 11; d++) /* group mates first */
            CHECK_EQ_INT(w->order[d] < 8 ? 0 : 1, d < w->ngroup ? g : !g);
        CHECK_EQ_INT(rt->hword[i], g);
        CHECK_EQ_U64(bits[g] & (UINT64_C(1) << rt->hbit[i]), 0);
        bits[g] |= UINT64_C(1) << rt->hbit[i];
    }
    test_rt_destroy_clean(rt);
    free(t);
}
