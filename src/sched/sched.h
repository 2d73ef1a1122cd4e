/*
 * sched.h - the whole scheduler in one include, for the layers above it
 * (rt/, obs/) and white-box tests: each module has its own header, and
 * the scheduler's own files include only the ones they use. sync/
 * includes park.h alone.
 */
#ifndef WEFT_SCHED_SCHED_H
#define WEFT_SCHED_SCHED_H

#include "cancel.h"
#include "evtrace.h"
#include "isolate.h"
#include "mesh.h"
#include "preempt.h"
#include "registry.h"
#include "runtime.h"
#include "sysmon.h"
#include "task.h"
#include "timer.h"
#include "wake.h"
#include "worker.h"

#endif
