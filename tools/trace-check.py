#!/usr/bin/env python3
"""trace-check.py - check a weft execution trace (Chrome trace-event JSON).

    python3 tools/trace-check.py TRACE.json [--no-counts]

Checks, and exits 1 naming the first failures, that:
  - complete slices ("X") on each track (pid, tid) nest: a slice starting
    inside another ends inside it (Perfetto's rule);
  - every flow start ("s") lies on a slice of its track, and every flow has
    exactly one end ("f") lying on a slice of its track (bp "e": the
    enclosing slice);
  - every task life ("b"/"e" of cat "task", by id) is opened once and
    closed once, the close not before the open;
  - unless --no-counts, or the trace dropped events or is a flight
    recording: the events match the weft_stats the runtime wrote beside
    them (otherData.stats, counted over the same span): spawns = task
    lives, parks = polls that ended in a park, yields = polls that ended
    in a yield, wakes, steals and preemptions = their instants.
Standard library only.
"""
import json
import sys
from collections import Counter, defaultdict

EPS = 0.0015  # us: the file's timestamps have 3 decimals


def fail(errors, msg):
    if len(errors) < 20:
        errors.append(msg)
    else:
        errors.append(None)


def on_a_slice(slices, ts):
    """Is ts within one of the sorted (start, end) slices?"""
    lo, hi = 0, len(slices)
    while lo < hi:  # last slice starting at or before ts
        mid = (lo + hi) // 2
        if slices[mid][0] <= ts + EPS:
            lo = mid + 1
        else:
            hi = mid
    i = lo - 1
    # Nested slices: walk back over those that start before ts.
    while i >= 0:
        s, e = slices[i]
        if s - EPS <= ts <= e + EPS:
            return True
        if i > 0 and slices[i - 1][1] < s:
            break
        i -= 1
    return False


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2])
        return 2
    counts_wanted = "--no-counts" not in argv[2:]
    with open(argv[1]) as f:
        doc = json.load(f)
    events = doc["traceEvents"] if isinstance(doc, dict) else doc
    other = doc.get("otherData", {}) if isinstance(doc, dict) else {}
    errors = []
    slices = defaultdict(list)
    flows = defaultdict(lambda: {"s": [], "f": []})
    lives = defaultdict(list)
    seen = Counter()
    for ev in events:
        ph = ev.get("ph")
        key = (ev.get("pid"), ev.get("tid"))
        seen[ph] += 1
        if ph == "X":
            if ev["dur"] < 0:
                fail(errors, "slice with a negative duration: %r" % ev)
            slices[key].append((ev["ts"], ev["ts"] + ev["dur"], ev))
        elif ph in ("s", "f"):
            flows[ev["id"]][ph].append((key, ev["ts"], ev))
        elif ph in ("b", "e") and ev.get("cat") == "task":
            lives[ev["id"]].append((ph, ev["ts"]))

    # Nesting, per track.
    spans = {}
    for key, sl in slices.items():
        sl.sort(key=lambda x: (x[0], -x[1]))
        stack = []
        # Exact float comparisons, as viewers make them (speedscope
        # ends a slice at ts + dur and refuses one that starts before).
        for s, e, ev in sl:
            while stack and stack[-1] <= s:
                stack.pop()
            if stack and e > stack[-1]:
                fail(errors, "track %r: slice %s at %.3f ends after the "
                     "slice it starts in (%.3f > %.3f)"
                     % (key, ev.get("name"), s, e, stack[-1]))
            stack.append(e)
        spans[key] = [(s, e) for s, e, _ in sl]

    # Flows.
    for fid, fl in flows.items():
        if len(fl["s"]) != 1 or len(fl["f"]) > 1:
            fail(errors, "flow %r: %d starts, %d ends"
                 % (fid, len(fl["s"]), len(fl["f"])))
            continue
        for ph in ("s", "f"):
            for key, ts, ev in fl[ph]:
                if not on_a_slice(spans.get(key, []), ts):
                    fail(errors, "flow %r: its %s at %.3f on track %r is on "
                         "no slice" % (fid, ph, ts, key))
    open_flows = sum(1 for fl in flows.values() if not fl["f"])

    # Task lives.
    for tid, marks in lives.items():
        phs = [m[0] for m in marks]
        if phs.count("b") > 1 or phs.count("e") != 1:
            fail(errors, "task %s: opened %d times, closed %d times"
                 % (tid, phs.count("b"), phs.count("e")))
        elif "b" in phs and marks[phs.index("e")][1] + EPS < \
                marks[phs.index("b")][1]:
            fail(errors, "task %s: closed before it was opened" % tid)

    # Counts against weft_stats.
    polls_end = Counter(ev["args"].get("end") for sl in slices.values()
                        for _, _, ev in sl if ev.get("cat") == "poll")
    inst = Counter(ev.get("cat") for ev in events if ev.get("ph") == "i")
    got = {
        "spawns": sum(1 for m in lives.values() if m and
                      any(p == "b" for p, _ in m)),
        "parks": polls_end["park"],
        "yields": polls_end["yield"],
        "wakes": inst["wake"],
        "steals": inst["steal"],
        "preemptions": inst["preempt"],
    }
    stats = other.get("stats", {})
    exact = (other.get("dropped", 0) == 0 and other.get("mode") == "ring"
             and not other.get("recording", 0))
    if counts_wanted and stats and exact:
        for k, v in got.items():
            if k in stats and stats[k] != v:
                fail(errors, "%s: %d in the trace, %d in weft_stats"
                     % (k, v, stats[k]))
    elif counts_wanted and not stats:
        fail(errors, "no otherData.stats to compare with")

    n_slices = sum(len(s) for s in slices.values())
    print("trace-check: %s: %d events, %d slices on %d tracks, %d flows "
          "(%d without an end), %d task lives; counts %s: %s"
          % (argv[1], len(events), n_slices, len(slices), len(flows),
             open_flows, len(lives),
             "compared" if counts_wanted and stats and exact else
             "not compared",
             " ".join("%s=%d" % kv for kv in sorted(got.items()))))
    if errors:
        for e in errors:
            print("trace-check: FAIL: " + (e or "(more failures)"))
        return 1
    print("trace-check: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
