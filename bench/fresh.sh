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
    BENCH_MODES=$mode "$bin" "$@" 2>/dev/null | grep '^BENCH ' |
        sed "s/^/proc=$i /" >>"$log" || true
    i=$((i + 1))
done

awk '
function field(s, k,   i, m, a) {
    m = split(s, a, " ")
    for (i = 1; i <= m; i++)
        if (index(a[i], k "=") == 1)
            return substr(a[i], length(k) + 2)
    return ""
}
{
    key = field($0, "name") " " field($0, "impl") " " field($0, "workers")
    if (!(key in unit)) { order[++nk] = key; unit[key] = field($0, "unit") }
    vals[key] = vals[key] " " field($0, "value")
    if (field($0, "check") != "ok") bad[key] = 1
}
END {
    printf "%-28s %4s %10s %10s %10s %8s  %s\n", "workload impl", "w",
        "min", "median", "max", "max/min", "unit"
    for (k = 1; k <= nk; k++) {
        key = order[k]; split(key, kw, " ")
        m = split(vals[key], a, " ")
        for (i = 2; i <= m; i++)
            for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) {
                t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
            }
        med = m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
        ratio = a[1] + 0 > 0 ? a[m] / a[1] : 0
        note = (key in bad) ? " (a check failed)" : ""
        printf "%-28s %4s %10.4g %10.4g %10.4g %8.2f  %s%s\n",
            kw[1] " " kw[2], kw[3], a[1], med, a[m], ratio, unit[key], note
    }
}' "$log"
echo "fresh.sh: $n processes, raw lines in $log"
