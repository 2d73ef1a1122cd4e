#!/bin/sh
# lazy_binding.sh ARCHIVE OBJDUMP NM - fails when the library calls a
# function it does not define through the PLT (an R_X86_64_PLT32
# relocation to an undefined symbol). Such a call is bound lazily in a
# program linked without -z now, and glibc's resolver then saves the vector
# registers (2.5-3 KiB) on the calling stack at its first call: on a
# task's small stack, an overflow into the next one (CMakeLists.txt,
# -fno-plt; docs/decisions/0010-overflow.md, "Lazy binding"). x86_64 only.
set -eu
a=$1 objdump=$2 nm=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$nm" --defined-only "$a" 2>/dev/null | awk 'NF == 3 { print $3 }' |
    sort -u > "$tmp/defined"
"$objdump" -r "$a" | awk '$2 ~ /PLT32/ { print $3 }' |
    sed 's/[-+]0x[0-9a-f]*$//' | sort -u > "$tmp/called"
n=$(wc -l < "$tmp/called")
[ "$n" -gt 0 ] || { echo "lazy_binding: no calls found in $a: the check sees nothing" >&2; exit 1; }
comm -23 "$tmp/called" "$tmp/defined" > "$tmp/lazy"
if [ -s "$tmp/lazy" ]; then
    echo "lazy_binding: $a calls these through the PLT (lazily bound):" >&2
    cat "$tmp/lazy" >&2
    exit 1
fi
echo "lazy_binding: $n functions called through PLT32 relocations, all defined in the library"
