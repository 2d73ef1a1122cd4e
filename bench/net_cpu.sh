#!/bin/bash
# net_cpu.sh - the server's CPU time per request, beside its throughput,
# for servers loaded by the same clients as ../shared/peers/net/bench.sh.
#
#   bash bench/net_cpu.sh [-n ROUNDS] [-s SECONDS] WORKLOAD NAME=CMD...
#
#   WORKLOAD  echo | http_plaintext | http_pipelined
#   NAME=CMD  a server: CMD is run by bash -c with PORT and WORKERS=1 in its
#             environment, pinned to CPU 0 (taskset -c 0), in a process
#             group of its own; stopped with SIGTERM to that group
#
# Why. On a machine with two CPUs, bench.sh's client (wrk -t1, or
# echoload's one thread) runs on the other CPU and is the bottleneck for
# every fast server: CPU 1 is 99.5-100% busy for weft, Tokio and a 60-line
# epoll loop alike, which all land within a few per cent of each other
# (docs/decisions/0017-net-ceiling.md). Throughput then says how fast the
# client is; what the server spends per request still says how good the
# server is, and is what would become throughput on a machine where the
# client has CPUs to spare. So this reads the server process's own CPU
# time (utime + stime of every thread, /proc/PID/stat) over the load and
# divides it by the requests the client completed. The servers are
# interleaved, one run each per round (default 3 rounds of 4 s), because
# these shared machines drift by tens of per cent within minutes; the
# median over rounds is given, with the range.
#
# Clients: wrk from Debian's package (installed when missing and root),
# with ../shared/peers/net/pipeline.lua for http_pipelined; echoload is
# built from ../shared/peers/net/echoload.c (PEERS overrides the path).
#
# Output: a line per run, then per server
#   BENCH name=WORKLOAD_cpu impl=NAME workers=1 value=US unit=us
#   BENCH name=WORKLOAD impl=NAME workers=1 value=RATE unit=req/s|msg/s
# (medians; the CPU figure is lower-is-better, the rate higher-is-better).
set -euo pipefail

rounds=3
secs=4
while [ $# -gt 0 ]; do
    case "$1" in
    -n) rounds=$2; shift 2 ;;
    -s) secs=$2; shift 2 ;;
    *) break ;;
    esac
done
[ $# -ge 2 ] || {
    echo "usage: net_cpu.sh [-n ROUNDS] [-s SECONDS] echo|http_plaintext|http_pipelined NAME=CMD..." >&2
    exit 2
}
wl=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
peers=${PEERS:-$here/../../shared/peers}
work=$(mktemp -d /tmp/weft-netcpu.XXXXXX)
trap 'rm -rf "$work"' EXIT

case "$wl" in
echo)
    unit=msg/s
    [ -f "$peers/net/echoload.c" ] || { echo "net_cpu.sh: no $peers/net/echoload.c" >&2; exit 2; }
    cc -O2 -o "$work/echoload" "$peers/net/echoload.c" -lpthread
    ;;
http_plaintext | http_pipelined)
    unit=req/s
    if ! command -v wrk >/dev/null 2>&1; then
        [ "$(id -u)" -eq 0 ] || { echo "net_cpu.sh: wrk not installed" >&2; exit 2; }
        apt-get install -y -qq wrk >/dev/null
    fi
    ;;
*) echo "net_cpu.sh: unknown workload $wl" >&2; exit 2 ;;
esac

ticks=$(getconf CLK_TCK)

# The CPU time, in clock ticks, of process $1 and all its threads.
cpu_of() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# run NAME CMD: one loaded run; prints "NAME RATE US_PER_OP".
run() {
    local name=$1 cmd=$2 port pid c0 c1 count
    port=$((18000 + RANDOM % 1000))
    PORT=$port WORKERS=1 setsid taskset -c 0 bash -c "exec $cmd" \
        >"$work/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do # up to 20 s for the port to answer
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    c0=$(cpu_of $pid)
    case "$wl" in
    echo)
        taskset -c 1 "$work/echoload" "$port" 100 64 "$secs" >"$work/client.out"
        count=$(sed -n 's/.*roundtrips=\([0-9]*\).*/\1/p' "$work/client.out")
        ;;
    http_plaintext)
        taskset -c 1 wrk -t1 -c256 -d"${secs}s" \
            "http://127.0.0.1:$port/plaintext" >"$work/client.out"
        count=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$work/client.out")
        ;;
    http_pipelined)
        taskset -c 1 wrk -t1 -c256 -d"${secs}s" -s "$peers/net/pipeline.lua" \
            "http://127.0.0.1:$port/plaintext" -- 16 >"$work/client.out"
        count=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$work/client.out")
        ;;
    esac
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "net_cpu.sh: $name exited during the load:" >&2
        cat "$work/server.log" >&2
        return 1
    fi
    c1=$(cpu_of $pid)
    kill -TERM -- -"$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [ -z "$count" ] || [ "$count" -eq 0 ]; then
        echo "net_cpu.sh: $name completed no requests" >&2
        return 1
    fi
    awk -v n="$name" -v d="$count" -v c=$((c1 - c0)) -v t="$ticks" -v s="$secs" \
        'BEGIN { printf "%s %.1f %.3f\n", n, d / s, c / t * 1e6 / d }'
}

: >"$work/runs"
for r in $(seq "$rounds"); do
    for spec in "$@"; do
        line=$(run "${spec%%=*}" "${spec#*=}")
        read -r n rate us <<<"$line"
        printf 'round %d: %s %s %s, %s us/op\n' "$r" "$n" "$rate" "$unit" "$us"
        echo "$line" >>"$work/runs"
    done
done

# Medians and ranges per server, in the order given.
for spec in "$@"; do
    name=${spec%%=*}
    awk -v n="$name" -v wl="$wl" -v unit="$unit" '
        $1 == n { r[++k] = $2; c[k] = $3 }
        function med(a, k,   i, j, t) {
            for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++)
                if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
            return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
        }
        END {
            if (!k) exit
            printf "# %s %s: cpu %.3f-%.3f us/op, rate %.0f-%.0f %s over %d runs\n",
                n, wl, cmin(c, k), cmax(c, k), cmin(r, k), cmax(r, k), unit, k
            printf "BENCH name=%s_cpu impl=%s workers=1 value=%.3f unit=us\n", wl, n, med(c, k)
            printf "BENCH name=%s impl=%s workers=1 value=%.1f unit=%s\n", wl, n, med(r, k), unit
        }
        function cmin(a, k,   i, m) { m = a[1]; for (i = 2; i <= k; i++) if (a[i] < m) m = a[i]; return m }
        function cmax(a, k,   i, m) { m = a[1]; for (i = 2; i <= k; i++) if (a[i] > m) m = a[i]; return m }
    ' "$work/runs"
done
