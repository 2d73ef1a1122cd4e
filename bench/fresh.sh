#!/bin/sh
# fresh.sh - one workload in N fresh processes: min, median and max.
#
#   sh bench/fresh.sh [-n PROCESSES] [-b weft-bench] [-m steal|mesh] workload...
#
# A figure that depends on where a process's memory and threads happen to
# land (issue 16: spawn was 64 ns in one run and 150 ns minutes later,
# yield_many 12-31 ns, skynet_chan 89-164 ms) does not show in repeated
# measurements inside one process. This runs weft-bench once per process,
# N times (default 9), one mode (default steal), and prints per BENCH line
# the min, median and max over the processes, and max / min. Two modes
# show as a ratio near 2 with a median near one end. The raw lines are
# kept in $FRESH_LOG (default: a temporary file, named at the end).
#
# Each process also runs `calib` first (bench/calib.c: a weft-free serial
# recursion timed on each CPU), and a last table lists every process's
# figures side by side: when a slow process has a slow calibration too,
# the machine was slow then, not the runtime (docs/decisions/0013).
set -eu

n=9
bin=build/bench/weft-bench
mode=steal
while [ $# -gt 0 ]; do
    case "$1" in
    -n) n=$2; shift 2 ;;
    -b) bin=$2; shift 2 ;;
    -m) mode=$2; shift 2 ;;
    *) break ;;
    esac
done
[ $# -gt 0 ] || { echo "usage: fresh.sh [-n N] [-b BIN] [-m MODE] workload..." >&2; exit 2; }
[ -x "$bin" ] || { echo "fresh.sh: no $bin (make run builds it)" >&2; exit 2; }
log=${FRESH_LOG:-$(mktemp /tmp/weft-fresh.XXXXXX)}
: >"$log"

i=1
while [ "$i" -le "$n" ]; do
    BENCH_MODES=$mode "$bin" calib "$@" 2>/dev/null | grep '^BENCH ' |
        sed "s/^/proc=$i /" >>"$log" || true
    i=$((i + 1))
done

awk "$(cat "$(dirname "$0")/lines.awk")"'
{
    key = field($0, "name") " " field($0, "impl") " " field($0, "workers")
    if (!(key in unit)) { order[++nk] = key; unit[key] = field($0, "unit") }
    vals[key] = vals[key] " " field($0, "value")
    p = field($0, "proc"); pv[p, key] = field($0, "value"); if (p + 0 > np) np = p + 0
    if (field($0, "check") != "ok") bad[key] = 1
}
END {
    printf "%-28s %4s %10s %10s %10s %8s  %s\n", "workload impl", "w",
        "min", "median", "max", "max/min", "unit"
    for (k = 1; k <= nk; k++) {
        key = order[k]; split(key, kw, " ")
        m = sorted(vals[key], a)
        med = median(vals[key])
        ratio = a[1] + 0 > 0 ? a[m] / a[1] : 0
        note = (key in bad) ? " (a check failed)" : ""
        printf "%-28s %4s %10.4g %10.4g %10.4g %8.2f  %s%s\n",
            kw[1] " " kw[2], kw[3], a[1], med, a[m], ratio, unit[key], note
    }
    printf "\nper process:"
    for (k = 1; k <= nk; k++) {
        split(order[k], kw, " ")
        printf " %s/%s", kw[1], kw[3]
    }
    printf "\n"
    for (p = 1; p <= np; p++) {
        printf "proc %-6s", p
        for (k = 1; k <= nk; k++)
            printf " %s", ((p, order[k]) in pv) ? pv[p, order[k]] : "-"
        printf "\n"
    }
}' "$log"
echo "fresh.sh: $n processes, raw lines in $log"
