/*
 * topo.c - what the machine looks like: CPUs, cores, L3 groups, NUMA nodes
 * and their distances, restricted to the process's affinity mask
 * (DESIGN.md §7; docs/decisions/0005-topology.md).
 *
 * Sources. hwloc, when the library was built with it (WEFT_HAVE_HWLOC),
 * knows the most machines and the quirks of their firmware; without it
 * sysfs says enough on Linux:
 *   devices/system/cpu/cpuN/topology/thread_siblings_list   the SMT core
 *   devices/system/cpu/cpuN/topology/core_id, physical_package_id
 *   devices/system/cpu/cpuN/cache/indexK/{level,type,shared_cpu_list}
 *   devices/system/node/nodeM/{cpulist,distance}
 * Each source only yields keys per CPU (topo.h, weft_topo_raw) and
 * distances by OS node number; one common step (finish) numbers cores, L3
 * groups, nodes and packages densely in the order of their lowest CPU,
 * ranks SMT threads, builds the distance matrix and the pin order. Both
 * sources thus describe a machine the same way, and the sysfs parser takes
 * a root directory so tests run it on captured trees.
 *
 * Rejected: libnuma (nodes only, no caches); /proc/cpuinfo (no cache
 * sharing, format differs per ISA); CPUID (x86 only, and it describes the
 * CPU, not what the kernel lets us run on).
 *
 * Degrading. A file that is missing or does not parse leaves its fact
 * unknown rather than failing: a CPU with no sibling list is its own core,
 * CPUs with no L3 share one group, no node directory is one node, no
 * distance is 10 local and 20 remote (Linux's defaults).
 *
 * Limits. Everything lives in fixed arrays (no allocation, the process's
 * description is static): CPUs 0..WEFT_TOPO_MAX_CPUS-1, which is glibc's
 * cpu_set_t, and nodes 0..WEFT_TOPO_MAX_NODES-1; a node numbered beyond
 * makes the whole machine one node (a partial matrix would mislead).
 *
 * Pin order (cfg.pin). Workers are placed so that the first ones share an
 * L3 group: by node, then L3 group, then SMT rank, then core. One L3 group
 * is filled before the next (tasks that migrate between its workers keep
 * their cache lines), and within it one thread per physical core comes
 * before any SMT sibling (siblings share a core's execution units).
 */
#include "topo.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#elif defined(__aarch64__)
#include <sys/auxv.h>
#endif

#ifdef WEFT_HAVE_HWLOC
#include <hwloc.h>
#endif

#define UNKNOWN_CORE (1LL << 40) /* + OS CPU number: a core of its own */

/* ---- numbering (every source) ----------------------------------------- */

/* The dense number of `key` among keys[0..*n), appending it when new. */
static unsigned dense(long long *keys, unsigned *n, long long key)
{
    for (unsigned i = 0; i < *n; i++)
        if (keys[i] == key)
            return i;
    keys[*n] = key;
    return (*n)++;
}

static uint64_t pin_key(const weft_cpu *c)
{
    return (uint64_t)c->node << 48 | (uint64_t)c->l3 << 32 |
           (uint64_t)c->smt << 16 | c->core;
}

/* Turn t->raw[0..n) (ascending OS number) and t->raw_dist into the public
 * description. Keys fit: at most WEFT_TOPO_CPUS of each kind. */
static void finish(weft_topo *t, unsigned n, const char *source)
{
    long long(*keys)[WEFT_TOPO_CPUS] = t->keys;
    unsigned ncore = 0, nl3 = 0, nnode = 0, npkg = 0;
    memset(t->count, 0, sizeof t->count);
    for (unsigned i = 0; i < n; i++) {
        const weft_topo_raw *r = &t->raw[i];
        weft_cpu *c = &t->cpu[i];
        c->os = r->os;
        c->core = dense(keys[0], &ncore, r->core);
        c->l3 = dense(keys[1], &nl3, r->l3);
        c->node = dense(keys[2], &nnode, r->node);
        c->package = dense(keys[3], &npkg, r->pkg);
        c->smt = t->count[c->core]++;
        t->node_os[c->node] = r->node;
    }
    for (unsigned i = 0; i < nnode; i++) {
        for (unsigned j = 0; j < nnode; j++) {
            uint8_t d = t->raw_dist[t->node_os[i]][t->node_os[j]];
            t->dist[i * nnode + j] = d ? d : i == j ? 10 : 20;
        }
    }
    /* Insertion sort by pin_key: one-time, n <= 1024. */
    for (unsigned i = 0; i < n; i++) {
        unsigned j = i;
        for (; j > 0 && pin_key(&t->cpu[t->pin[j - 1]]) > pin_key(&t->cpu[i]);
             j--)
            t->pin[j] = t->pin[j - 1];
        t->pin[j] = i;
    }
    t->pub = (weft_topology){
        .ncpus = n,
        .ncores = ncore,
        .nl3 = nl3,
        .nnodes = nnode,
        .npackages = npkg,
        .cpus = t->cpu,
        .node_os = t->node_os,
        .distance = t->dist,
        .pin_order = t->pin,
        .source = source,
    };
}

/* ---- sysfs ------------------------------------------------------------ */

/* Read root/<fmt...> into t->buf; its length, or -1 when it cannot be
 * read. */
static int readf(weft_topo *t, const char *root, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int readf(weft_topo *t, const char *root, const char *fmt, ...)
{
    char path[512];
    int k = snprintf(path, sizeof path, "%s/", root);
    va_list ap;
    va_start(ap, fmt);
    int m = k > 0 && (size_t)k < sizeof path
                ? vsnprintf(path + k, sizeof path - (size_t)k, fmt, ap)
                : -1;
    va_end(ap);
    if (m < 0 || (size_t)(k + m) >= sizeof path)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t len = read(fd, t->buf, sizeof t->buf - 1);
    close(fd);
    if (len < 0)
        return -1;
    t->buf[len] = 0;
    return (int)len;
}

/* A number at *s (decimal), advancing *s; -1 when there is none. */
static long long number(const char **s)
{
    char *end;
    if (**s < '0' || **s > '9')
        return -1;
    unsigned long long v = strtoull(*s, &end, 10);
    *s = end;
    return v > (1ULL << 40) ? -1 : (long long)v;
}

/* Parse a CPU list ("0-3,8,10-11\n") into *set (CPUs past its size are
 * dropped); the lowest CPU listed, or -1 when empty or malformed. */
static long long cpulist(const char *s, cpu_set_t *set)
{
    long long first = -1;
    CPU_ZERO(set);
    while (*s && *s != '\n') {
        long long a = number(&s), b = a;
        if (*s == '-') {
            s++;
            b = number(&s);
        }
        if (a < 0 || b < a)
            return -1;
        for (long long c = a; c <= b && c < WEFT_TOPO_CPUS; c++)
            CPU_SET((int)c, set);
        if (first < 0 || a < first)
            first = a;
        if (*s == ',')
            s++;
        else if (*s && *s != '\n')
            return -1;
    }
    return first;
}

/* The value of a file holding one number; -1 when absent or malformed. */
static long long readnum(weft_topo *t, const char *root, const char *fmt,
                         unsigned cpu, unsigned idx)
{
    if (readf(t, root, fmt, cpu, idx) < 0)
        return -1;
    const char *s = t->buf;
    if (*s == '-') /* physical_package_id is -1 on some firmware */
        return -1;
    return number(&s);
}

static long long l3_key(weft_topo *t, const char *root, unsigned cpu)
{
    const char *dir = "devices/system/cpu/cpu%u/cache/index%u/";
    char fmt[96];
    cpu_set_t set;
    for (unsigned i = 0; i < 16; i++) {
        snprintf(fmt, sizeof fmt, "%slevel", dir);
        if (readnum(t, root, fmt, cpu, i) != 3)
            continue;
        snprintf(fmt, sizeof fmt, "%stype", dir);
        if (readf(t, root, fmt, cpu, i) < 0 ||
            !strncmp(t->buf, "Instruction", 11))
            continue;
        snprintf(fmt, sizeof fmt, "%sshared_cpu_list", dir);
        if (readf(t, root, fmt, cpu, i) >= 0)
            return cpulist(t->buf, &set);
    }
    return -1;
}

static long long core_key(weft_topo *t, const char *root, unsigned cpu,
                          long long pkg)
{
    const char *dir = "devices/system/cpu/cpu%u/topology/";
    char fmt[96];
    cpu_set_t set;
    snprintf(fmt, sizeof fmt, "%sthread_siblings_list", dir);
    long long k = -1;
    if (readf(t, root, fmt, cpu) >= 0)
        k = cpulist(t->buf, &set);
    if (k >= 0)
        return k;
    /* No sibling list: a core id is unique within its package. */
    snprintf(fmt, sizeof fmt, "%score_id", dir);
    long long id = readnum(t, root, fmt, cpu, 0);
    if (id >= 0 && id < (1 << 20) && pkg >= 0 && pkg < (1 << 16))
        return (1LL << 36) + (pkg << 20) + id;
    return UNKNOWN_CORE + cpu;
}

/* OS node numbers listed under root/devices/system/node, ascending, into
 * ids[]; their count, or -1 when one is beyond WEFT_TOPO_NODES. */
static int node_ids(const char *root, unsigned *ids)
{
    char path[512];
    int n = 0;
    if ((size_t)snprintf(path, sizeof path, "%s/devices/system/node", root) >=
        sizeof path)
        return 0;
    DIR *d = opendir(path);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *s = e->d_name;
        if (strncmp(s, "node", 4))
            continue;
        s += 4;
        long long id = number(&s);
        if (id < 0 || *s)
            continue;
        if (id >= WEFT_TOPO_NODES) {
            n = -1;
            break;
        }
        int j = n++;
        for (; j > 0 && ids[j - 1] > id; j--)
            ids[j] = ids[j - 1];
        ids[j] = (unsigned)id;
    }
    closedir(d);
    return n;
}

/* Nodes of the CPUs in t->raw[0..n) and the distances between them. */
static void sysfs_nodes(weft_topo *t, const char *root, unsigned n)
{
    unsigned ids[WEFT_TOPO_NODES];
    int nn = node_ids(root, ids);
    for (int i = 0; i < nn; i++) {
        cpu_set_t set;
        if (readf(t, root, "devices/system/node/node%u/cpulist", ids[i]) < 0 ||
            cpulist(t->buf, &set) < 0)
            continue;
        for (unsigned c = 0; c < n; c++)
            if (CPU_ISSET(t->raw[c].os, &set))
                t->raw[c].node = ids[i];
        /* One row: the distance to every node, in ascending node order. */
        if (readf(t, root, "devices/system/node/node%u/distance", ids[i]) < 0)
            continue;
        const char *s = t->buf;
        for (int j = 0; j < nn; j++) {
            while (*s == ' ')
                s++;
            long long d = number(&s);
            if (d < 1 || d > 255)
                break;
            t->raw_dist[ids[i]][ids[j]] = (uint8_t)d;
        }
    }
}

void weft__topo_sysfs(weft_topo *t, const char *root, const cpu_set_t *allowed)
{
    unsigned n = 0;
    memset(t->raw_dist, 0, sizeof t->raw_dist);
    for (unsigned c = 0; c < WEFT_TOPO_CPUS; c++) {
        if (!CPU_ISSET(c, allowed))
            continue;
        weft_topo_raw *r = &t->raw[n++];
        const char *fmt = "devices/system/cpu/cpu%u/topology/"
                          "physical_package_id";
        r->os = c;
        r->node = 0;
        r->pkg = readnum(t, root, fmt, c, 0);
        r->core = core_key(t, root, c, r->pkg);
        r->l3 = l3_key(t, root, c);
    }
    sysfs_nodes(t, root, n);
    finish(t, n, "sysfs");
}

/* ---- hwloc ------------------------------------------------------------ */

#ifdef WEFT_HAVE_HWLOC
static long long first_pu(hwloc_obj_t o)
{
    return o && o->cpuset ? hwloc_bitmap_first(o->cpuset) : -1;
}

static void hwloc_distances(weft_topo *t, hwloc_topology_t h)
{
    struct hwloc_distances_s *d;
    unsigned nr = 1;
    if (hwloc_distances_get_by_type(h, HWLOC_OBJ_NUMANODE, &nr, &d,
                                    HWLOC_DISTANCES_KIND_MEANS_LATENCY, 0) ||
        !nr)
        return;
    for (unsigned i = 0; i < d->nbobjs; i++) {
        for (unsigned j = 0; j < d->nbobjs; j++) {
            unsigned a = d->objs[i]->os_index, b = d->objs[j]->os_index;
            hwloc_uint64_t v = d->values[i * d->nbobjs + j];
            if (a < WEFT_TOPO_NODES && b < WEFT_TOPO_NODES && v && v < 256)
                t->raw_dist[a][b] = (uint8_t)v;
        }
    }
    hwloc_distances_release(h, d);
}

/* Does the kernel describe CPU c's caches? When it does not (a VM whose
 * hypervisor hides them), hwloc reads CPUID instead, which there may
 * describe nothing real: under Firecracker on an AMD EPYC it gave each
 * of two vCPUs an L3 of its own of 508 MiB. Its L3 is then unknown, as
 * the sysfs source says (one group), and both sources agree. */
static int kernel_has_caches(unsigned c)
{
    char path[64];
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%u/cache", c);
    return access(path, F_OK) == 0;
}

int weft__topo_hwloc(weft_topo *t, const cpu_set_t *allowed)
{
    hwloc_topology_t h;
    if (hwloc_topology_init(&h))
        return -EIO;
    if (hwloc_topology_load(h)) {
        hwloc_topology_destroy(h);
        return -EIO;
    }
    unsigned n = 0;
    int far_node = 0;
    memset(t->raw_dist, 0, sizeof t->raw_dist);
    for (unsigned c = 0; c < WEFT_TOPO_CPUS; c++) {
        if (!CPU_ISSET(c, allowed))
            continue;
        hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(h, c), node = NULL;
        weft_topo_raw *r = &t->raw[n++];
        r->os = c;
        r->core =
            pu ? first_pu(hwloc_get_ancestor_obj_by_type(h, HWLOC_OBJ_CORE, pu))
               : -1;
        if (r->core < 0)
            r->core = UNKNOWN_CORE + c;
        r->l3 = pu && kernel_has_caches(c)
                    ? first_pu(hwloc_get_ancestor_obj_by_type(
                          h, HWLOC_OBJ_L3CACHE, pu))
                    : -1;
        hwloc_obj_t pkg =
            pu ? hwloc_get_ancestor_obj_by_type(h, HWLOC_OBJ_PACKAGE, pu)
               : NULL;
        r->pkg = pkg ? (long long)pkg->logical_index : 0;
        /* hwloc 2 hangs NUMA nodes beside the CPUs, not above them. */
        while (
            (node = hwloc_get_next_obj_by_type(h, HWLOC_OBJ_NUMANODE, node)) &&
            !hwloc_bitmap_isset(node->cpuset, c))
            ;
        r->node = node ? node->os_index : 0;
        far_node |= r->node >= WEFT_TOPO_NODES;
    }
    if (far_node) {
        for (unsigned i = 0; i < n; i++)
            t->raw[i].node = 0;
    } else {
        hwloc_distances(t, h);
    }
    hwloc_topology_destroy(h);
    finish(t, n, "hwloc");
    return 0;
}
#else
int weft__topo_hwloc(weft_topo *t, const cpu_set_t *allowed)
{
    (void)t;
    (void)allowed;
    return -ENOSYS;
}
#endif

/* ---- hardware wait hints --------------------------------------------- */

/* What the CPU offers user mode for waiting on a cache line, from CPUID
 * or the kernel's hwcaps: reported, never assumed, and not used by the
 * idle path (docs/decisions/0006-wait-hints.md). */
unsigned weft__wait_hints(void)
{
    unsigned h = 0;
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        if (c & (1u << 5))
            h |= WEFT_HINT_WAITPKG;
    }
    if ((unsigned)__get_cpuid_max(0x80000000u, NULL) >= 0x80000001u) {
        __cpuid(0x80000001u, a, b, c, d);
        if (c & (1u << 29))
            h |= WEFT_HINT_MONITORX;
    }
    (void)a, (void)b, (void)d;
#elif defined(__aarch64__)
    h |= WEFT_HINT_WFE;
#ifdef AT_HWCAP2
    if (getauxval(AT_HWCAP2) & (UINT64_C(1) << 31)) /* HWCAP2_WFXT */
        h |= WEFT_HINT_WFXT;
#endif
#endif
    return h;
}

/* ---- the process's topology ------------------------------------------- */

static weft_topo proc;
static pthread_once_t proc_once = PTHREAD_ONCE_INIT;

static void discover(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set)) {
        long k = sysconf(_SC_NPROCESSORS_ONLN);
        CPU_ZERO(&set);
        for (long c = 0; c < (k > 0 ? k : 1) && c < WEFT_TOPO_CPUS; c++)
            CPU_SET((int)c, &set);
    }
    if (weft__topo_hwloc(&proc, &set))
        weft__topo_sysfs(&proc, "/sys", &set);
    proc.pub.wait_hints = weft__wait_hints();
}

int weft_topology_get(const weft_topology **out)
{
    if (!out)
        return -EINVAL;
    pthread_once(&proc_once, discover);
    *out = &proc.pub;
    return 0;
}
