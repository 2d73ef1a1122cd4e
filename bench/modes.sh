#!/bin/sh
# modes.sh - steal mode beside mesh mode, over several rounds.
#
#   sh bench/modes.sh [-n ROUNDS] [-b weft-bench] [workload...]
#
# Runs weft-bench ROUNDS times (default 5), each round measuring both
# modes one after the other in one process, steal first in odd rounds and
# mesh first in even ones (the second runtime of a process can measure
# differently: wakeup_p99 was 1.35x in mesh, always second, over 15
# rounds, and 0.4-2.5x in separate processes), and
# prints, per multi-worker line, the median of each mode over the rounds,
# the median of the per-round ratios mesh/steal, and their range. One run
# on this shared 2-core machine is not enough: several workloads are
# bimodal (where the tasks land decides the figure) and the host's noise
# moves absolute figures by 2x between minutes; the per-round ratio
# compares two measurements taken seconds apart.
#
# Default workloads: every multi-worker workload of BENCHMARKS.md that
# weft-bench runs in both modes. The raw BENCH lines are kept in
# $MODES_LOG (default: a temporary file, named at the end).
set -eu

rounds=5
bin=build/bench/weft-bench
while [ $# -gt 0 ]; do
    case "$1" in
    -n) rounds=$2; shift 2 ;;
    -b) bin=$2; shift 2 ;;
    *) break ;;
    esac
done
[ $# -gt 0 ] || set -- spawn skynet fib yield_many chained_spawn pingpong \
    skynet_chan memory mutex_contended wakeup idle_cpu
[ -x "$bin" ] || { echo "modes.sh: no $bin (make run builds it)" >&2; exit 2; }
log=${MODES_LOG:-$(mktemp /tmp/weft-modes.XXXXXX)}
: >"$log"

r=1
while [ "$r" -le "$rounds" ]; do
    order=steal,mesh
    [ $((r % 2)) -eq 0 ] && order=mesh,steal
    BENCH_MODES=$order "$bin" "$@" 2>/dev/null | grep '^BENCH ' |
        sed "s/^/round=$r /" >>"$log" || true
    r=$((r + 1))
done

# round=R BENCH name=N impl=I workers=W value=V unit=U check=C
awk "$(cat "$(dirname "$0")/lines.awk")"'
{
    rd = field($0, "round"); name = field($0, "name"); impl = field($0, "impl")
    w = field($0, "workers"); v = field($0, "value"); u = field($0, "unit")
    if (w + 0 < 2 && name != "idle_cpu") next
    key = name " " w
    if (!(key in unit)) { order[++nk] = key; unit[key] = u }
    vals[key, impl] = vals[key, impl] " " v
    val[key, impl, rd] = v
    if (field($0, "check") != "ok") bad[key] = 1
    if (rd > maxr) maxr = rd
}
END {
    printf "%-18s %3s %12s %12s %8s %15s  %s\n", "workload", "w",
        "steal", "mesh", "ratio", "ratio range", "unit"
    for (i = 1; i <= nk; i++) {
        key = order[i]; split(key, kw, " ")
        rl = ""; lo = 1e300; hi = -1e300
        for (r = 1; r <= maxr; r++) {
            s = val[key, "weft", r]; m = val[key, "weft-mesh", r]
            if (s == "" || m == "" || s + 0 == 0) continue
            q = m / s; rl = rl " " q
            if (q < lo) lo = q
            if (q > hi) hi = q
        }
        if (rl == "") { # no ratio (a steal figure of 0): the medians alone
            printf "%-18s %3s %12.4g %12.4g %8s %15s  %s%s\n", kw[1], kw[2],
                median(vals[key, "weft"]), median(vals[key, "weft-mesh"]),
                "-", "-", unit[key], (key in bad) ? "  CHECK FAILED" : ""
            continue
        }
        printf "%-18s %3s %12.4g %12.4g %8.3f %7.3f-%-7.3f  %s%s\n", kw[1],
            kw[2], median(vals[key, "weft"]), median(vals[key, "weft-mesh"]),
            median(rl), lo, hi, unit[key], (key in bad) ? "  CHECK FAILED" : ""
    }
}' "$log"
echo "(${rounds} rounds; BENCH lines in $log)"
