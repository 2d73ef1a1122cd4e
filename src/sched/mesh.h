/*
 * mesh.h - what the creator tells mesh mode (mesh.c): each worker's
 * neighbours.
 */
#ifndef WEFT_SCHED_MESH_H
#define WEFT_SCHED_MESH_H

#include <stdint.h>

#include "topo.h"

struct weft_rt;

/* Mesh mode: each worker's neighbour order from the L3 group of every
 * worker (group_of[i]; NULL: all in one group). Nearest first: same group,
 * then the others; each list starts after the worker itself, so workers
 * spread their deflections. Creator (and white-box tests) only, before
 * tasks run. */
void weft__mesh_set_groups(struct weft_rt *rt, const uint32_t *group_of);

/* The same from a topology: with cfg.pin, worker i runs on
 * t->cpus[t->pin_order[i % t->ncpus]] (isolate.c), in that CPU's L3
 * group. Creator (and white-box tests) only. */
void weft__mesh_groups_from_topology(struct weft_rt *rt,
                                     const weft_topology *t);

#define WEFT_MESH_THRESHOLD 64 /* initial deflection threshold (tasks) */

#endif
