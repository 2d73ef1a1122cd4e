#!/bin/sh
# tools/fuzz.sh [SECONDS] - build the libFuzzer harnesses (tests/fuzz/)
# with clang and run each for SECONDS (default 30) from a copy of its seed
# corpus (tests/fuzz/corpus/NAME; new inputs go to the copy, not the
# repository). Installs clang with apt-get when it is missing and we are
# root; without clang it says so and does nothing. A crash leaves the
# input in build-fuzz/crash-* and exits non-zero: make it a regression
# test (add the input to the seed corpus and fix the cause).
set -e
secs=${1:-30}
cd "$(dirname "$0")/.."
if ! command -v clang >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang \
        >/dev/null 2>&1 || true
fi
if ! command -v clang >/dev/null 2>&1; then
    echo "fuzz: clang not installed: fuzzing skipped"
    exit 0
fi
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DWEFT_FUZZ=ON -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
for h in config policy model http resp; do
    work=build-fuzz/corpus-$h
    rm -rf "$work"
    cp -r "tests/fuzz/corpus/$h" "$work"
    # The HTTP parser's limits are at 8 KiB: inputs must reach past them.
    maxlen=""
    [ "$h" = http ] && maxlen=-max_len=12288
    (cd build-fuzz &&
        "./tests/fuzz/fuzz-$h" -max_total_time="$secs" -print_final_stats=1 \
            $maxlen "corpus-$h" 2>fuzz-$h.log) || {
        tail -30 "build-fuzz/fuzz-$h.log"
        echo "fuzz: fuzz-$h found a crash (build-fuzz/crash-*)"
        exit 1
    }
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' \
        "build-fuzz/fuzz-$h.log")
    echo "fuzz: fuzz-$h ${secs} s, $runs executions, corpus $(ls "$work" |
        wc -l) inputs, no crash"
done
