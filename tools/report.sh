#!/usr/bin/env bash
# report.sh - `make report`: runs the benchmarks and writes
# docs/benchmarks.md, with SVG plots in docs/benchmarks/.
#
#   tools/report.sh                      run weft-bench, then the peers
#   REPORT_INPUT=FILE tools/report.sh    use FILE's BENCH lines; run nothing
#
# 1. The BENCH lines (format: ../shared/BENCHMARKS.md): build/bench/weft-bench
#    (`make report` builds it, Release), then `bash $PEERS/run.sh` when
#    $PEERS/run.sh exists (PEERS: default ../shared/peers). BENCH_SCALE and
#    BENCH_WORKERS pass through to both. With REPORT_INPUT, the lines of
#    that file instead: a saved weft-bench or peers output, or an earlier
#    docs/benchmarks.md, which ends with the lines it was made from.
# 2. The machine and run (CPUs, CPU model, kernel, date, weft's commit,
#    how long each part ran) become `# report-context:` lines ahead of the
#    BENCH lines. A REPORT_INPUT that has such lines keeps its own; one
#    without gets this machine's, marked as such.
# 3. tools/report-plot.py writes the report: tables of every workload with
#    every implementation and the ratio to weft, and plots drawn by gnuplot
#    (Debian gnuplot-nox, installed with apt-get when missing and run as
#    root; otherwise the report says why it has no plots).
# 4. Every SVG is converted to PNG with rsvg-convert (librsvg2-bin, installed
#    likewise) into ${TMPDIR:-/tmp}/weft-report-png, to check that it
#    renders; the PNGs stay out of the tree.
#
# REPORT_OUT (default docs/benchmarks.md) names the report; the plots go in
# the folder of the same name without .md, whose old SVGs are removed
# first. Exits non-zero, after writing the report, when a benchmark run
# failed (a check, a crash, a peer's build) or a plot did not render.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
peers=${PEERS:-../shared/peers}
input=${REPORT_INPUT:-}
out=${REPORT_OUT:-docs/benchmarks.md}
svgdir=${out%.md}
bench=build/bench/weft-bench
pngdir=${TMPDIR:-/tmp}/weft-report-png

work=$(mktemp -d "${TMPDIR:-/tmp}/weft-report.XXXXXX")
trap 'rm -rf "$work"' EXIT
status=0
problems=()

say() { echo "report: $*" >&2; }

# minutes and seconds, from a count of seconds
duration() { printf '%d min %02d s' $(($1 / 60)) $(($1 % 60)); }

# need COMMAND PACKAGE: true when COMMAND is there or apt-get installed it.
need() {
    command -v "$1" >/dev/null 2>&1 && return 0
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null ||
            return 1
        sudo=(sudo -n)
    fi
    say "installing $2 (for $1)"
    export DEBIAN_FRONTEND=noninteractive
    local apt=("${sudo[@]}" apt-get -y -qq -o DPkg::Lock::Timeout=600)
    { "${apt[@]}" install "$2" ||
        { "${apt[@]}" update && "${apt[@]}" install "$2"; }; } >&2 || true
    command -v "$1" >/dev/null 2>&1
}

# context KEY VALUE: one `# report-context:` line.
context() { printf '# report-context: %s: %s\n' "$1" "$2"; }

# The machine this script runs on, and the commit of the work tree.
machine() {
    local cpu commit changed dirs
    cpu=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo 2>/dev/null |
        head -n 1)
    context "CPUs (nproc)" "$(nproc)"
    context "CPU model" "${cpu:-unknown ($(uname -m))}"
    context "Kernel (uname -r)" "$(uname -r)"
    context "Memory" "$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' \
        /proc/meminfo 2>/dev/null)"
    context "Date" "$(date '+%Y-%m-%d %H:%M:%S %Z')"
    context "Load average before" "$(cut -d' ' -f1-3 /proc/loadavg)"
    commit=$(git log -1 --format='%h (%cs) %s' 2>/dev/null) ||
        commit="unknown (not a git work tree)"
    [ ${#commit} -le 90 ] || commit="${commit:0:87}..."
    # Changes to the report's own files do not change what was measured.
    changed=$(git status --porcelain -- . ":!$out" ":!$svgdir" 2>/dev/null |
        cut -c4-) || true
    if [ -n "$changed" ]; then
        # shellcheck disable=SC2001  # one top-level folder per line
        dirs=$(sed 's|/.*|/|' <<<"$changed" | sort -u | paste -sd' ')
        commit="$commit; plus uncommitted changes"
        commit="$commit ($(wc -l <<<"$changed") paths, in $dirs)"
    fi
    context "weft commit" "$commit"
    context "BENCH_SCALE" "${BENCH_SCALE:-1 (default)}"
    context "BENCH_WORKERS" "${BENCH_WORKERS:-default: the CPUs}"
}

# --- 1 and 2: the BENCH lines, after their context ---------------------------
lines=$work/lines
if [ -n "$input" ]; then
    [ -r "$input" ] || { say "cannot read REPORT_INPUT=$input"; exit 2; }
    say "BENCH lines from $input; running nothing"
    if grep -q '^# report-context:' "$input"; then
        cp "$input" "$lines"
    else
        {
            context "Input" "REPORT_INPUT=$input; the machine below made the report, it did not necessarily run the benchmarks"
            machine
            cat "$input"
        } >"$lines"
    fi
else
    [ -x "$bench" ] || { say "no $bench: run \`make report\`"; exit 2; }
    machine >"$lines"
    say "running $bench (its progress follows)"
    start=$SECONDS
    rc=0
    "$bench" >"$work/weft.out" || rc=$?
    took=$((SECONDS - start))
    context "weft-bench" "$bench (Release), $(duration $took), exit status $rc" \
        >>"$lines"
    [ "$rc" -eq 0 ] || { status=1; problems+=("weft-bench exited with $rc"); }

    if [ -f "$peers/run.sh" ]; then
        say "running the peers: $peers/run.sh"
        start=$SECONDS
        rc=0
        bash "$peers/run.sh" >"$work/peers.out" || rc=$?
        took=$((SECONDS - start))
        context "Peers" "$peers/run.sh, $(duration $took), exit status $rc" \
            >>"$lines"
        [ "$rc" -eq 0 ] ||
            { status=1; problems+=("the peers' run.sh exited with $rc"); }
    else
        say "no $peers/run.sh: weft only"
        : >"$work/peers.out"
        context "Peers" "not run: no $peers/run.sh" >>"$lines"
    fi
    cat "$work/weft.out" "$work/peers.out" >>"$lines"
fi

# --- 3: the report and its plots ---------------------------------------------
export GNUPLOT="" REPORT_NO_PLOTS=""
if need gnuplot gnuplot-nox; then
    GNUPLOT=$(command -v gnuplot)
else
    REPORT_NO_PLOTS="gnuplot is missing and could not be installed (Debian package gnuplot-nox; installed by this script only when run as root or with sudo)"
    say "no plots: $REPORT_NO_PLOTS"
fi
mkdir -p "$(dirname "$out")"
rm -f "$svgdir"/*.svg
python3 tools/report-plot.py "$lines" "$out" "$svgdir" ||
    { status=1; problems+=("a plot failed (see above)"); }

# --- 4: does every SVG render? -------------------------------------------------
svgs=("$svgdir"/*.svg)
if [ ! -e "${svgs[0]}" ]; then
    svgs=()
elif need rsvg-convert librsvg2-bin; then
    rm -rf "$pngdir"
    mkdir -p "$pngdir"
    for svg in "${svgs[@]}"; do
        png=$pngdir/$(basename "${svg%.svg}").png
        if ! rsvg-convert -o "$png" "$svg" || [ ! -s "$png" ]; then
            status=1
            problems+=("$svg does not render")
        fi
    done
    say "every SVG converted to PNG, for a look: $pngdir"
else
    say "rsvg-convert missing (librsvg2-bin): the SVGs were not checked"
fi

say "wrote $out and ${#svgs[@]} plots in $svgdir/"
if [ "$status" -ne 0 ]; then
    for p in "${problems[@]}"; do say "but: $p"; done
fi
exit $status
