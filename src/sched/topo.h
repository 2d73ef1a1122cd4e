/*
 * topo.h - the machine's topology: CPUs, cores, L3 groups, NUMA nodes.
 *
 * One weft_topo holds a whole description in fixed-size arrays (no
 * allocation; WEFT_TOPO_MAX_CPUS and WEFT_TOPO_MAX_NODES in weft.h bound
 * it) and the public weft_topology pointing into them. The process keeps
 * one, filled once (weft_topology_get); tests fill their own from captured
 * sysfs trees.
 */
#ifndef WEFT_SCHED_TOPO_H
#define WEFT_SCHED_TOPO_H

#include <sched.h>
#include <stdint.h>

#include "weft.h"

#define WEFT_TOPO_CPUS WEFT_TOPO_MAX_CPUS
#define WEFT_TOPO_NODES WEFT_TOPO_MAX_NODES

/* What a source says about one allowed CPU, as keys that are equal for
 * CPUs in the same core, L3 group or package; topo.c numbers them. */
typedef struct weft_topo_raw {
    unsigned os;    /* OS CPU number */
    unsigned node;  /* OS node number (0 when unknown) */
    long long core; /* e.g. lowest CPU of its SMT siblings */
    long long l3;   /* e.g. lowest CPU sharing its L3; -1 unknown */
    long long pkg;  /* package id */
} weft_topo_raw;

typedef struct weft_topo {
    weft_topology pub; /* points into the arrays below */
    weft_cpu cpu[WEFT_TOPO_CPUS];
    unsigned pin[WEFT_TOPO_CPUS];
    unsigned node_os[WEFT_TOPO_NODES];
    uint8_t dist[WEFT_TOPO_NODES * WEFT_TOPO_NODES];

    /* Scratch for the sources, kept here rather than on the stack (the
     * first call may come from a task's small stack). */
    weft_topo_raw raw[WEFT_TOPO_CPUS];
    uint8_t raw_dist[WEFT_TOPO_NODES][WEFT_TOPO_NODES]; /* by OS node
                                                          number; 0 unknown */
    long long keys[4][WEFT_TOPO_CPUS]; /* core, l3, node, package keys,
                                          by dense number */
    unsigned count[WEFT_TOPO_CPUS];    /* threads seen per core */
    char buf[8192];                    /* one sysfs file */
} weft_topo;

/* Describe the CPUs of `allowed` from a sysfs tree under `root` ("/sys" on
 * a live system; tests pass captured trees). Never fails: missing files
 * make one L3 group, one node, each CPU its own core. Any thread. */
void weft__topo_sysfs(weft_topo *t, const char *root, const cpu_set_t *allowed);

/* WEFT_HINT_* of this CPU (weft_topology.wait_hints). */
unsigned weft__wait_hints(void);

/* The same from hwloc; -ENOSYS when built without it, -EIO when hwloc
 * cannot load the topology. Any thread. */
int weft__topo_hwloc(weft_topo *t, const cpu_set_t *allowed);

#endif
