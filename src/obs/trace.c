/*
 * trace.c - weft_trace_start/stop/dump: the execution trace's rings
 * (sched/trace.h) written out as Chrome trace-event JSON, the format
 * Perfetto, chrome://tracing and speedscope read (docs/trace.md).
 *
 * Conversion happens only here, never while recording: every ring is
 * copied (each event checked whole by its seqlock), the events of all
 * rings are sorted by time, and one pass turns them into:
 *  - a complete event ("X", cat "poll") for each poll, on its worker's
 *    track (tid = worker id): from the RUN that started it to the next
 *    RUN of that worker, with how it ended (args.end: yield, park, done,
 *    none) and, for a park, what it waited for (args.wait). One worker
 *    runs one task at a time, so slices on a track never overlap;
 *  - a complete event "sleep" (cat "idle") for each sleep of a worker,
 *    which happens between polls;
 *  - instants ("i", thread scope) for wakes (cat "wake"), steals and
 *    preemptions, inside the slice running then or between slices;
 *  - a flow arrow (cat "wake": "s" on the waker's slice, "f" binding to
 *    the enclosing slice at the start of the woken task's next poll)
 *    for each wake made by a running task;
 *  - a task's life as an async pair ("b" at its spawn, "e" at its end,
 *    id slot.generation), closed at the trace's end if still running;
 *  - otherData: the counters of weft_stats over the trace (from its start
 *    to the writing), the events dropped, and the mode, so that
 *    tools/trace-check.py can match the two.
 * Events of the shared ring (plain threads, isolation identities) go on
 * a track of their own ("other threads"); isolated tasks' polls are not
 * drawn (their identities share that ring).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../base/clock.h"
#include "../sched/switch.h"
#include "../base/error.h"
#include "../base/spin.h"
#include "../sched/trace.h"
#include "obs.h"

#define RLX memory_order_relaxed
#define RING_BYTES ((size_t)16 << 20) /* per worker, normal mode */
#define NONE UINT32_MAX

typedef struct tev {
    weft_tev_copy e;
    uint32_t track; /* worker id, or nworkers for the shared ring */
    uint32_t seq;   /* order within its ring: ties keep it */
} tev;

static int by_time(const void *pa, const void *pb)
{
    const tev *a = pa, *b = pb;
    if (a->e.ts != b->e.ts)
        return a->e.ts < b->e.ts ? -1 : 1;
    if (a->track != b->track)
        return a->track < b->track ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static unsigned kind_of(const tev *t)
{
    return (unsigned)(t->e.head & 0xff);
}
static unsigned x_of(const tev *t)
{
    return (unsigned)(t->e.head >> 8 & 0xff);
}
static unsigned y_of(const tev *t)
{
    return (unsigned)(t->e.head >> 16 & 0xffff);
}
static uint32_t slot_of_ev(const tev *t)
{
    return (uint32_t)(t->e.head >> 32);
}

/* Copy every whole event of every ring. *n events in a malloc'd array. */
static tev *collect(weft_rt *rt, size_t *n, uint64_t *dropped)
{
    uint32_t rings = rt->nworkers + 1;
    size_t cap = 0;
    for (uint32_t i = 0; i < rings; i++)
        cap += (size_t)rt->trace_rings[i]->mask + 1;
    tev *v = malloc(cap * sizeof *v);
    if (!v)
        return NULL;
    size_t k = 0;
    *dropped = 0;
    for (uint32_t i = 0; i < rings; i++) {
        weft_tring *r = rt->trace_rings[i];
        uint64_t next = atomic_load_explicit(&r->next, RLX), size = r->mask + 1;
        uint64_t lo = next > size ? next - size : 0;
        uint64_t hi = r->wrap ? next : (next < size ? next : size);
        if (!r->wrap)
            lo = 0;
        *dropped += atomic_load_explicit(&r->dropped, RLX);
        for (uint64_t j = lo; j < hi; j++)
            if (weft__trace_get(r, j, &v[k].e)) {
                v[k].track = i;
                v[k].seq = (uint32_t)(j - lo);
                k++;
            }
    }
    qsort(v, k, sizeof *v, by_time);
    *n = k;
    return v;
}

/* Per track: the poll running and the sleep going on. */
typedef struct track {
    uint32_t slot; /* NONE: the scheduler */
    uint32_t gen;
    uint64_t start;
    char name[16];
    uint64_t sleep_from; /* 0: awake */
    unsigned sleep_poll;
} track;

/* Per slot: the flow of the wake not yet ended, and the open life. */
typedef struct slotinfo {
    uint64_t flow; /* flow id, 0 none */
    uint32_t flow_gen;
    uint32_t life; /* generation + 1 of the open async pair, 0 none */
} slotinfo;

typedef struct jout {
    FILE *f;
    int first;
    uint32_t pid;
} jout;

static void emit_head(jout *o)
{
    fputs(o->first ? "\n" : ",\n", o->f);
    o->first = 0;
}

static double us(uint64_t ts)
{
    return (double)(ts - 1) / 1000.0; /* ts is ns since the start + 1 */
}

/* A slice's duration from ts a to ts b, 1 ns short: slices that follow
 * each other on a track then never overlap once a viewer adds ts and dur
 * in floating point (speedscope refused 0.000000001-us overlaps). */
static double dur_us(uint64_t a, uint64_t b)
{
    return b > a ? (double)(b - a - 1) / 1000.0 : 0.0;
}

/* A task's label: "name #slot" or "task #slot". */
static void label(char *buf, size_t n, const char *name, uint32_t slot)
{
    if (name && name[0])
        snprintf(buf, n, "%s #%" PRIu32, name, slot);
    else
        snprintf(buf, n, "task #%" PRIu32, slot);
}

/* JSON-safe copy of a task name (at most 15 bytes). */
static void clean_name(char out[16], uint64_t w0, uint64_t w1)
{
    char b[16];
    memcpy(b, &w0, 8);
    memcpy(b + 8, &w1, 8);
    b[15] = 0;
    for (int i = 0; i < 16; i++) {
        unsigned char c = (unsigned char)b[i];
        out[i] = c && (c < 32 || c == '"' || c == '\\' || c > 126) ? '?' : b[i];
    }
}

static const char *end_name(unsigned why)
{
    switch (why) {
    case MSG_YIELD:
    case MSG_YBAND:
    case MSG_PREEMPT:
    case MSG_PBAND:
        return "yield";
    case MSG_PARK:
        return "park";
    case MSG_DEAD:
        return "done";
    default:
        return "none";
    }
}

/* Open a complete event ("X") on track tid from ts a to ts b; the caller
 * adds its args, if any, and the closing brace. */
static void slice(jout *o, const char *cat, const char *name, uint32_t tid,
                  uint64_t a, uint64_t b)
{
    emit_head(o);
    fprintf(o->f,
            "{\"ph\":\"X\",\"cat\":\"%s\",\"name\":\"%s\",\"pid\":%" PRIu32
            ",\"tid\":%" PRIu32 ",\"ts\":%.3f,\"dur\":%.3f",
            cat, name, o->pid, tid, us(a), dur_us(a, b));
}

static void end_poll(jout *o, track *t, uint32_t tid, uint64_t ts, unsigned why,
                     unsigned wk)
{
    if (t->slot == NONE)
        return;
    char lab[48];
    label(lab, sizeof lab, t->name, t->slot);
    slice(o, "poll", lab, tid, t->start, ts);
    fprintf(o->f,
            ",\"args\":{\"slot\":%" PRIu32 ",\"gen\":%" PRIu32
            ",\"end\":\"%s\"",
            t->slot, t->gen, end_name(why));
    if (why == MSG_PARK)
        fprintf(o->f, ",\"wait\":\"%s\"", weft__obs_wait_name(wk));
    fputs("}}", o->f);
    t->slot = NONE;
}

static void instant(jout *o, const char *cat, const char *name, uint32_t tid,
                    uint64_t ts, uint32_t slot, const char *extra)
{
    emit_head(o);
    fprintf(o->f,
            "{\"ph\":\"i\",\"s\":\"t\",\"cat\":\"%s\",\"name\":\"%s\","
            "\"pid\":%" PRIu32 ",\"tid\":%" PRIu32
            ",\"ts\":%.3f,\"args\":{\"slot\":%" PRIu32 "%s}}",
            cat, name, o->pid, tid, us(ts), slot, extra ? extra : "");
}

static void life(jout *o, char ph, uint32_t tid, uint64_t ts, uint32_t slot,
                 uint32_t gen, const char *extra)
{
    emit_head(o);
    fprintf(o->f,
            "{\"ph\":\"%c\",\"cat\":\"task\",\"name\":\"task #%" PRIu32
            "\",\"id\":\"0x%" PRIx32 ".%" PRIu32 "\",\"pid\":%" PRIu32
            ",\"tid\":%" PRIu32 ",\"ts\":%.3f%s}",
            ph, slot, slot, gen, o->pid, tid, us(ts), extra ? extra : "");
}

static void flow(jout *o, char ph, uint64_t id, uint32_t tid, uint64_t ts)
{
    emit_head(o);
    fprintf(o->f,
            "{\"ph\":\"%c\",\"cat\":\"wake\",\"name\":\"wake\",\"id\":%" PRIu64
            ",\"pid\":%" PRIu32 ",\"tid\":%" PRIu32 ",\"ts\":%.3f%s}",
            ph, id, o->pid, tid, us(ts), ph == 'f' ? ",\"bp\":\"e\"" : "");
}

static void stat_field(FILE *f, const char *name, uint64_t now, uint64_t base,
                       int last)
{
    fprintf(f, "\"%s\":%" PRIu64 "%s", name, now - base, last ? "" : ",");
}

static int write_json(weft_rt *rt, FILE *f)
{
    size_t n;
    uint64_t dropped;
    tev *v = collect(rt, &n, &dropped);
    if (!v)
        return -ENOMEM;
    uint32_t nw = rt->nworkers, max = rt->cfg.max_tasks;
    track *tr = malloc((nw + 1) * sizeof *tr);
    slotinfo *si = calloc(max, sizeof *si);
    if (!tr || !si) {
        free(v);
        free(tr);
        free(si);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i <= nw; i++)
        tr[i] = (track){.slot = NONE};
    jout o = {.f = f, .first = 1, .pid = rt->id};
    fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[", f);
    emit_head(&o);
    fprintf(f,
            "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%" PRIu32
            ",\"tid\":0,\"args\":{\"name\":\"weft runtime %" PRIu32 "\"}}",
            o.pid, rt->id);
    for (uint32_t i = 0; i <= nw; i++) {
        emit_head(&o);
        if (i < nw)
            fprintf(f,
                    "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%" PRIu32
                    ",\"tid\":%" PRIu32 ",\"args\":{\"name\":\"worker %" PRIu32
                    "\"}}",
                    o.pid, i, i);
        else
            fprintf(f,
                    "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%" PRIu32
                    ",\"tid\":%" PRIu32
                    ",\"args\":{\"name\":\"other threads\"}}",
                    o.pid, i);
    }
    /* A mark at the trace's start on every track: viewers that start a
     * track's clock at its first slice (speedscope) then line the
     * workers up. */
    for (uint32_t i = 0; i <= nw; i++) {
        emit_head(&o);
        fprintf(f,
                "{\"ph\":\"X\",\"cat\":\"mark\",\"name\":\"trace start\","
                "\"pid\":%" PRIu32 ",\"tid\":%" PRIu32
                ",\"ts\":0.000,\"dur\":0.000}",
                o.pid, i);
    }
    uint64_t flows = 0, last = 1;
    for (size_t k = 0; k < n; k++) {
        tev *e = &v[k];
        uint32_t tid = e->track, slot = slot_of_ev(e);
        track *t = &tr[tid];
        uint64_t ts = e->e.ts;
        char extra[160];
        last = ts;
        switch (kind_of(e)) {
        case WEFT_TEV_RUN:
            if (tid == nw)
                break; /* isolation identities share the ring: not drawn */
            if (x_of(e) == MSG_DEAD && t->slot != NONE &&
                si[t->slot].life == t->gen + 1) { /* its end */
                life(&o, 'e', tid, ts, t->slot, t->gen, NULL);
                si[t->slot].life = 0;
            }
            end_poll(&o, t, tid, ts, x_of(e), y_of(e));
            if (slot != NONE && slot < max) {
                t->slot = slot;
                t->gen = (uint32_t)e->e.a;
                t->start = ts;
                clean_name(t->name, e->e.b, e->e.c);
                if (si[slot].flow && si[slot].flow_gen == t->gen) {
                    flow(&o, 'f', si[slot].flow, tid, ts);
                    si[slot].flow = 0;
                }
            }
            break;
        case WEFT_TEV_SPAWN: {
            if (slot >= max)
                break;
            uint32_t g = x_of(e) | y_of(e) << 8;
            char nm[16];
            clean_name(nm, e->e.b, e->e.c);
            if (e->e.a)
                snprintf(extra, sizeof extra,
                         ",\"args\":{\"name\":\"%s\",\"parent\":%" PRIu64
                         ",\"parent_gen\":%" PRIu64 "}",
                         nm, (e->e.a & 0xffffffffu) - 1, e->e.a >> 32);
            else
                snprintf(extra, sizeof extra,
                         ",\"args\":{\"name\":\"%s\",\"parent\":null}", nm);
            life(&o, 'b', tid, ts, slot, g, extra);
            si[slot].life = g + 1;
            break;
        }
        case WEFT_TEV_END:
            if (slot < max && si[slot].life == (uint32_t)e->e.a + 1) {
                life(&o, 'e', tid, ts, slot, (uint32_t)e->e.a, NULL);
                si[slot].life = 0;
            }
            break;
        case WEFT_TEV_WAKE:
            if (e->e.b)
                snprintf(extra, sizeof extra, ",\"by\":%" PRIu64, e->e.b - 1);
            else
                extra[0] = 0;
            instant(&o, "wake", "wake", tid, ts, slot, extra);
            /* A flow from the waking task's slice to the woken one's
             * next; the arrow starts inside the waker's poll only. */
            if (e->e.b && tid < nw && t->slot == e->e.b - 1 && slot < max) {
                flow(&o, 's', ++flows, tid, ts);
                si[slot].flow = flows;
                si[slot].flow_gen = (uint32_t)e->e.a;
            }
            break;
        case WEFT_TEV_STEAL:
            snprintf(extra, sizeof extra, ",\"from\":%u", y_of(e));
            instant(&o, "steal", "steal", tid, ts, slot, extra);
            break;
        case WEFT_TEV_PREEMPT:
            instant(&o, "preempt", "preempt", tid, ts, slot, NULL);
            break;
        case WEFT_TEV_TIER: {
            static const char *const tiers[] = {"monitor", "warn", "yield",
                                                "isolate"};
            snprintf(extra, sizeof extra, ",\"tier\":\"%s\",\"ran_us\":%.3f",
                     x_of(e) < 4 ? tiers[x_of(e)] : "?",
                     (double)e->e.b / 1000.0);
            instant(&o, "tier", "tier", tid, ts, slot, extra);
            break;
        }
        case WEFT_TEV_ISOLATE:
            snprintf(extra, sizeof extra, ",\"thread\":%u", y_of(e));
            instant(&o, "isolate", "isolate", tid, ts, slot, extra);
            break;
        case WEFT_TEV_MAIL:
            snprintf(extra, sizeof extra, ",\"to\":%u,\"tasks\":%" PRIu64,
                     y_of(e), e->e.a);
            instant(&o, "mail", "mail", tid, ts, slot, extra);
            break;
        case WEFT_TEV_TIMER:
            instant(&o, "timer", "timer", tid, ts, slot, NULL);
            break;
        case WEFT_TEV_SLEEP:
            t->sleep_from = ts;
            t->sleep_poll = x_of(e);
            break;
        case WEFT_TEV_WAKEUP:
            if (t->sleep_from) {
                slice(&o, "idle", t->sleep_poll ? "sleep (poller)" : "sleep",
                      tid, t->sleep_from, ts);
                fputc('}', f);
                t->sleep_from = 0;
            }
            break;
        default:
            break;
        }
    }
    /* Close what is still open at the trace's end. */
    for (uint32_t i = 0; i < nw; i++)
        end_poll(&o, &tr[i], i, last, 0xff, 0);
    for (uint32_t s = 0; s < max; s++)
        if (si[s].life)
            life(&o, 'e', nw, last, s, si[s].life - 1, NULL);
    /* The counters over the trace, for tools/trace-check.py. */
    weft_stats now;
    weft__obs_totals(rt, weft__clock_ns(), 0, &now);
    const weft_stats *b = &rt->trace_base;
    fprintf(
        f,
        "\n],\"otherData\":{\"producer\":\"weft %d.%d.%d\",\"workers\":%" PRIu32
        ",\"mode\":\"%s\",\"events\":%zu,\"dropped\":%" PRIu64
        ",\"recording\":%u,\"stats\":{",
        WEFT_VERSION_MAJOR, WEFT_VERSION_MINOR, WEFT_VERSION_PATCH, nw,
        atomic_load_explicit(&rt->trace_wrap, RLX) ? "flight" : "ring", n,
        dropped, (unsigned)atomic_load_explicit(&rt->trace_on, RLX));
    stat_field(f, "spawns", now.spawns, b->spawns, 0);
    stat_field(f, "finishes", now.finishes, b->finishes, 0);
    stat_field(f, "parks", now.parks, b->parks, 0);
    stat_field(f, "wakes", now.wakes, b->wakes, 0);
    stat_field(f, "steals", now.steals, b->steals, 0);
    stat_field(f, "yields", now.yields, b->yields, 0);
    stat_field(f, "preemptions", now.preemptions, b->preemptions, 0);
    stat_field(f, "isolations", now.isolations, b->isolations, 1);
    fputs("}}}\n", f);
    free(v);
    free(tr);
    free(si);
    return ferror(f) ? -EIO : 0;
}

/* ---- the API ------------------------------------------------------------ */

/* The flight recorder written on a trigger (the monitor, sysmon.c):
 * cfg.trace's path, or weft-trace-PID.json, with -N before its .json
 * (the Nth such write), so that one trigger's file is not overwritten
 * by the next. */
static int flush(weft_rt *rt, const char *why)
{
    static _Atomic unsigned seq;
    char base[4096], path[4200];
    weft__spin_lock(&rt->trace_lock);
    if (!atomic_load_explicit(&rt->trace_on, RLX) ||
        !atomic_load_explicit(&rt->trace_wrap, RLX)) {
        weft__spin_unlock(&rt->trace_lock); /* stopped meanwhile */
        return 0;
    }
    if (rt->trace_path)
        snprintf(base, sizeof base, "%s", rt->trace_path);
    else
        snprintf(base, sizeof base, "weft-trace-%ld.json", (long)getpid());
    size_t n = strlen(base);
    if (n > 5 && !strcmp(base + n - 5, ".json"))
        base[n - 5] = 0;
    snprintf(path, sizeof path, "%s-%u.json", base,
             atomic_fetch_add_explicit(&seq, 1, RLX) + 1);
    FILE *f = fopen(path, "w");
    int err = f ? write_json(rt, f) : -errno;
    if (f && fclose(f) && !err)
        err = -EIO;
    weft__spin_unlock(&rt->trace_lock);
    fprintf(stderr, "weft: flight recorder %s %s (after %s)\n",
            err ? "NOT written to" : "written to", path, why);
    return err;
}

/* Start with rt's configured ring size and mode. Under trace_lock. */
static int begin(weft_rt *rt)
{
    size_t bytes = rt->cfg.trace_ring_mb ? (size_t)rt->cfg.trace_ring_mb << 20
                                         : RING_BYTES;
    weft_stats base;
    weft__obs_totals(rt, weft__clock_ns(), 0, &base);
    rt->trace_base = base; /* before any event, so under the same order */
    int err = weft__trace_start(rt, bytes, rt->cfg.trace_ring_mb != 0);
    /* Release: the writer's code and rt's trace fields before the
     * monitor's acquire load (sysmon.c, trace_triggers). */
    if (!err)
        atomic_store_explicit(&rt->trace_flush, flush, memory_order_release);
    return err;
}

int weft__obs_trace_begin(weft_rt *rt)
{
    weft__spin_lock(&rt->trace_lock);
    int err = begin(rt);
    weft__spin_unlock(&rt->trace_lock);
    return err;
}

int weft_trace_start(weft_rt *rt)
{
    if (!rt)
        return -EINVAL;
    return weft__obs_trace_begin(rt);
}

int weft_trace_stop(weft_rt *rt)
{
    if (!rt)
        return -EINVAL;
    weft__spin_lock(&rt->trace_lock);
    int err = weft__trace_stop(rt);
    if (!err && rt->trace_path) {
        FILE *f = fopen(rt->trace_path, "w");
        if (!f)
            err = weft__error_set(-errno, "trace: cannot write %s",
                                  rt->trace_path);
        else {
            err = write_json(rt, f);
            if (fclose(f) && !err)
                err = -EIO;
        }
    }
    weft__spin_unlock(&rt->trace_lock);
    return err;
}

int weft_trace_dump(weft_rt *rt, FILE *f)
{
    if (!rt || !f)
        return -EINVAL;
    weft__spin_lock(&rt->trace_lock);
    int err = rt->trace_rings ? write_json(rt, f) : -ENOENT;
    weft__spin_unlock(&rt->trace_lock);
    return err;
}
