/*
 * test_inject.c - every failure along weft_rt_create, injected one call
 * at a time (inject.h): the Nth mmap, mprotect, pthread_create or
 * allocation fails, for every N the create makes. Each time the create
 * must return the documented error (-ENOMEM or -EAGAIN) with a
 * weft_last_error naming what failed, leave no mapping and no file
 * descriptor behind (/proc/self/maps and /proc/self/fd as before), and
 * leave the process able to create a runtime again. Growth paths are
 * covered too: a stack whose guard cannot be installed runs on a canary,
 * and a spare thread the monitor cannot create leaves the runtime working.
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "inject.h"

/* Mappings of the process, but for the malloc heap, which grows (and
 * may be split by the kernel) as malloc pleases: what the library maps
 * itself is anonymous mmap memory, counted here. */
static int count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    CHECK_NOT_NULL(f);
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += !strstr(line, "[heap]");
    fclose(f);
    return n;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    CHECK_NOT_NULL(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static weft_config small_cfg(void)
{
    weft_config c;
    weft_config_default(&c);
    c.workers = 2;
    c.max_tasks = 1024;
    return c;
}

static void *nothing(void *arg)
{
    return arg;
}

/* A runtime from cfg works: runs a task, and is destroyed cleanly. */
static void works(const weft_config *cfg)
{
    weft_rt *rt;
    CHECK_OK(weft_rt_create(&rt, cfg));
    void *r;
    CHECK_OK(weft_rt_run(rt, nothing, (void *)7, &r));
    CHECK_EQ_PTR(r, (void *)7);
    CHECK_OK(weft_rt_destroy(rt));
}

/* Fail each call of kind k along weft_rt_create in turn; returns how
 * many points failed the create. */
static unsigned every_point(int k)
{
    weft_config cfg = small_cfg();
    works(&cfg); /* warm up: thread stacks cached, handlers installed */
    unsigned points = 0;
    for (unsigned n = 1; n < 200; n++) {
        int maps = count_maps(), fds = count_fds();
        fault_arm(k, n);
        weft_rt *rt = NULL;
        int err = weft_rt_create(&rt, &cfg);
        int fired = fault_fired(k);
        fault_arm(k, 0);
        if (!err) {
            CHECK_OK(weft_rt_destroy(rt));
            if (!fired)
                break; /* past the last call of this kind */
            /* A failure the create recovers from (an optional huge-page
             * mapping, a guard it can do without): fine. */
            continue;
        }
        CHECK(fired);
        points++;
        CHECK(err == -ENOMEM || err == -EAGAIN);
        const char *why = weft_last_error();
        CHECK(why[0] != '\0');
        fprintf(stderr, "# %s #%u: %s (%s)\n", fault_names[k], n,
                weft_err_name(err), why);
        /* Under a sanitizer its runtime maps memory of its own as threads
         * come and go (thread data, allocator regions): the mappings are
         * counted in the plain build only. */
        if (!TEST_SANITIZED)
            CHECK_CMP_INT(count_maps(), <=, maps);
        CHECK_EQ_INT(count_fds(), fds);
        works(&cfg); /* the process is still usable */
    }
    return points;
}

TEST_T(fault, inject_mmap_along_create, 60)
{
    CHECK_CMP_U64(every_point(FAULT_MMAP), >=, 1);
}

TEST_T(fault, inject_mprotect_along_create, 60)
{
    /* The class fences are mprotected only where the kernel has no
     * lightweight guards (mem/stack.c): there may be no point at all. */
    every_point(FAULT_MPROTECT);
}

TEST_T(fault, inject_pthread_create_along_create, 60)
{
    /* Two workers and the monitor. */
    CHECK_CMP_U64(every_point(FAULT_PTHREAD_CREATE), >=, 3);
}

TEST_T(fault, inject_alloc_along_create, 60)
{
    CHECK_CMP_U64(every_point(FAULT_CALLOC), >=, 1);
}
