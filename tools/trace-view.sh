#!/bin/sh
# tools/trace-view.sh TRACE.json OUT.png - open a Chrome trace-event JSON
# file (e.g. weft's tracer output, or tools/trace-sample.json) in the real
# speedscope viewer, offline, in headless chromium, and save a screenshot.
#
# Installs on demand, nothing inside the repo:
#   - npm package speedscope@$SPEEDSCOPE_VERSION into
#     ${XDG_CACHE_HOME:-$HOME/.cache}/weft-speedscope (only when absent);
#   - Debian package chromium, with apt-get, only when missing and run as
#     root; otherwise it says what is missing and exits 2.
# speedscope's static build is opened from file:// and given the trace the
# way its own CLI (`speedscope FILE`) does: a script that calls
# speedscope.loadFileFromBase64, named by #localProfilePath= (speedscope
# refuses #profileURL= on file://, so no HTTP server is needed).
#
# speedscope shows one thread (pid/tid) at a time: the lowest tid by
# default; TRACE_VIEW_TID=N keeps only thread N's events.
# Other knobs: TRACE_VIEW_MODE=time-ordered|left-heavy|sandwich,
# TRACE_VIEW_TITLE=text, TRACE_VIEW_BUDGET=ms (virtual time, default 5000).
# speedscope's import warnings (e.g. overlapping slices on one tid) are
# printed to stderr. Exit: 0 shown, 1 speedscope rejected the trace,
# 2 usage or a missing tool.
set -eu

SPEEDSCOPE_VERSION=${SPEEDSCOPE_VERSION:-1.25.0}
[ $# -eq 2 ] || { echo "usage: $0 TRACE.json OUT.png" >&2; exit 2; }
trace=$1 out=$2
[ -r "$trace" ] || { echo "trace-view: cannot read $trace" >&2; exit 2; }

cache=${XDG_CACHE_HOME:-$HOME/.cache}/weft-speedscope
html=$cache/node_modules/speedscope/dist/release/index.html
if [ ! -f "$html" ]; then
    command -v npm >/dev/null 2>&1 || { echo "trace-view: npm is missing" >&2; exit 2; }
    echo "trace-view: installing speedscope@$SPEEDSCOPE_VERSION into $cache" >&2
    mkdir -p "$cache"
    npm install --prefix "$cache" --no-audit --no-fund --no-update-notifier \
        --loglevel=error "speedscope@$SPEEDSCOPE_VERSION" >&2 || exit 2
fi
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "trace-view: chromium is missing (as root: apt-get install chromium)" >&2
        exit 2
    fi
    echo "trace-view: installing chromium" >&2
    { apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >&2 || exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -n "${TRACE_VIEW_TID:-}" ]; then
    # Keep the metadata and the one thread's events.
    node -e '
        const fs = require("fs"), [f, tid, o] = process.argv.slice(1);
        const j = JSON.parse(fs.readFileSync(f, "utf8"));
        const ev = (Array.isArray(j) ? j : j.traceEvents)
            .filter(e => e.ph === "M" || String(e.tid) === tid);
        fs.writeFileSync(o, JSON.stringify({traceEvents: ev}));
    ' "$trace" "$TRACE_VIEW_TID" "$tmp/trace.json"
else
    cp "$trace" "$tmp/trace.json"
fi
# alert() would hang headless chromium: record its text in the DOM instead.
# The file name given to speedscope is plain "trace.json" on purpose: it
# picks some importers by name (*.chrome.json, Trace-YYYYMMDDTHHMMSS...).
{
    printf 'window.alert = function (m) { document.documentElement.setAttribute("data-alert", String(m)); };\n'
    printf 'speedscope.loadFileFromBase64("trace.json", "'
    base64 "$tmp/trace.json" | tr -d '\n'
    printf '");\n'
} >"$tmp/load.js"

hash="localProfilePath=$tmp/load.js&view=${TRACE_VIEW_MODE:-time-ordered}"
if [ -n "${TRACE_VIEW_TITLE:-}" ]; then
    hash="$hash&title=$(node -p 'encodeURIComponent(process.argv[1])' "$TRACE_VIEW_TITLE")"
fi
timeout 120 chromium --headless --no-sandbox --disable-gpu \
    --enable-unsafe-swiftshader --hide-scrollbars --user-data-dir="$tmp/profile" \
    --enable-logging=stderr --v=0 \
    --window-size=1600,900 --virtual-time-budget="${TRACE_VIEW_BUDGET:-5000}" \
    --screenshot="$out" --dump-dom "file://$html#$hash" \
    >"$tmp/dom.html" 2>"$tmp/log" || {
    echo "trace-view: chromium failed (exit $?):" >&2
    tail -n 20 "$tmp/log" >&2
    exit 1
}

sed -n 's/^.*:CONSOLE:[0-9]*\] "\(\(ts=[^:]*: \)*\(Tried to end\|Frame \|Ignoring\|Failed to load\).*\)", source: .*/trace-view: speedscope: \1/p' \
    "$tmp/log" >&2
alert=$(sed -n 's/.*data-alert="\([^"]*\)".*/\1/p' "$tmp/dom.html")
if [ -n "$alert" ]; then
    echo "trace-view: speedscope: $alert" >&2
    exit 1
elif grep -q 'Something went wrong' "$tmp/dom.html"; then
    echo "trace-view: speedscope failed to import $trace" >&2
    exit 1
elif ! grep -q '<title>.* - speedscope</title>' "$tmp/dom.html"; then
    echo "trace-view: speedscope did not show the trace (see $out)" >&2
    exit 1
fi
echo "trace-view: wrote $out" >&2
