/*
 * fd.h - the descriptor layer's part that the runtime's destroyer calls
 * (fd.c; the public calls are in weft.h, "File descriptors").
 */
#ifndef WEFT_IO_FD_H
#define WEFT_IO_FD_H

#include "weft.h"

/* rt is being destroyed (its workers and monitor stopped, its tasks'
 * waits ended): forget its table of descriptors. Destroyer. */
void weft__io_rt_gone(weft_rt *rt);

#endif
