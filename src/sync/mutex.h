/*
 * mutex.h - what cond.c needs of the mutex beyond weft.h.
 */
#ifndef WEFT_SYNC_MUTEX_H
#define WEFT_SYNC_MUTEX_H

#include "weft.h"

/* Take m back at the end of a cond wait, whatever happens: not
 * cancellable, inside the cond wait's own open wait (WAIT_NESTED,
 * wait.h). Task or thread that released m in weft_cond_wait_until. */
void weft__mutex_relock(weft_mutex *m);

#endif
