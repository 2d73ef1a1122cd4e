#!/bin/sh
# tools/ctest.sh DIR SANITIZER [cmake args...]
# Configure DIR with WEFT_SANITIZE=SANITIZER, build it, run CTest.
set -e
dir=$1
san=$2
shift 2
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DWEFT_SANITIZE="$san" "$@" >/dev/null
cmake --build "$dir" -j"$(nproc 2>/dev/null || echo 2)"
run=""
if [ "$san" = thread ]; then
    # TSan maps its shadow at fixed addresses that the kernel's default
    # mmap randomisation can collide with; run without ASLR.
    if setarch "$(uname -m)" -R true 2>/dev/null; then
        run="setarch $(uname -m) -R"
    fi
    export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
fi
if [ "$san" = address ]; then
    export ASAN_OPTIONS="detect_leaks=1 ${ASAN_OPTIONS:-}"
    export UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1 ${UBSAN_OPTIONS:-}"
fi
echo "== ctest in $dir (sanitizer: ${san:-none})"
cd "$dir"
$run ctest --output-on-failure -j2
