/*
 * registry.h - runtimes by id (registry.c), for task handles, which
 * name their runtime by its id.
 */
#ifndef WEFT_SCHED_REGISTRY_H
#define WEFT_SCHED_REGISTRY_H

#include <stdint.h>

struct weft_rt;

/* The registry (registry.c): runtimes by id, 1..WEFT_REGISTRY-1, for
 * handles. by_id: any thread (NULL when none). add: returns the id, 0 when
 * the table is full; remove: frees rt's id. Creator / destroyer. */
#define WEFT_REGISTRY 256
struct weft_rt *weft__rt_by_id(uint32_t id);
uint32_t weft__registry_add(struct weft_rt *rt);
void weft__registry_remove(struct weft_rt *rt);
/* Is rt still registered? A seq_cst load, the partner of remove's
 * seq_cst store (cancel.c, weft__cancel_hold). Any thread. */
int weft__registry_has(struct weft_rt *rt);

#endif
