#!/bin/sh
# tools/weft-text.sh OBJCOPY COMPILER ARGS... - the compile launcher of
# weft's own objects (CMake's RULE_LAUNCH_COMPILE on weft_obj): run the
# compiler, then rename the object's .text to weft_text. The linker keeps
# that section whole and defines __start_weft_text / __stop_weft_text
# around it, which is how the preemption signal handler tells the
# runtime's own code from the program's (src/sched/preempt.c): a task is
# never switched out by a signal while it runs weft code, whether weft is
# linked as a shared library, a static one, or as objects (the tests).
# weft_obj is compiled with -fno-reorder-functions and
# -fno-reorder-blocks-and-partition, so .text is its only code section.
objcopy=$1
shift
"$@" || exit $?
out=
prev=
for a in "$@"; do
    [ "$prev" = "-o" ] && out=$a
    prev=$a
done
[ -n "$out" ] || exit 0
exec "$objcopy" --rename-section .text=weft_text "$out"
