#!/bin/sh
# tools/layers.sh [BUILD_DIR] - check that src/ is layered (docs/design.md,
# "Layers"): each folder may include headers of, and call functions
# defined in, its own layer and the layers below it, never above.
#
#   base, arch  <  mem  <  queue  <  sched  <  sync  <  io  <  obs  <  rt
#
# Includes are read from the sources; calls from the object files of
# BUILD_DIR (default build-test): every weft_/weft__ symbol an object file
# of layer L uses must be defined by an object file of a layer <= L.
# Exits 1 and lists each breach.
set -eu
cd "$(dirname "$0")/.."
build=${1:-build-test}
rank() {
    case $1 in
    base | arch) echo 0 ;; mem) echo 1 ;; queue) echo 2 ;; sched) echo 3 ;;
    sync) echo 4 ;; io) echo 5 ;; obs) echo 6 ;; rt) echo 7 ;; *) echo 99 ;;
    esac
}
bad=0
for f in $(find src -name '*.[ch]' | sort); do
    from=$(echo "$f" | cut -d/ -f2)
    for inc in $(sed -n 's|^#include "\.\./\([a-z]*\)/.*|\1|p' "$f"); do
        if [ "$(rank "$inc")" -gt "$(rank "$from")" ]; then
            echo "layers: $f includes a header of $inc/ (above $from/)"
            bad=1
        fi
    done
done
# sync/ reaches the scheduler through park.h alone (docs/design.md).
for f in $(find src/sync -name '*.[ch]' | sort); do
    for inc in $(sed -n 's|^#include "\.\./sched/\(.*\)"|\1|p' "$f"); do
        if [ "$inc" != park.h ]; then
            echo "layers: $f includes sched/$inc (sync/ may include only sched/park.h)"
            bad=1
        fi
    done
done
objdir=$build/CMakeFiles/weft_obj.dir/src
if [ -d "$objdir" ]; then
    defs=$(mktemp)
    for o in $(find "$objdir" -name '*.o'); do
        layer=$(echo "$o" | sed 's|.*/src/\([a-z]*\)/.*|\1|')
        nm --defined-only "$o" | awk -v r="$(rank "$layer")" -v l="$layer" \
            '$3 ~ /^weft_/ {print $3, r, l}'
    done | sort -u >"$defs"
    for o in $(find "$objdir" -name '*.o' | sort); do
        layer=$(echo "$o" | sed 's|.*/src/\([a-z]*\)/.*|\1|')
        r=$(rank "$layer")
        for sym in $(nm --undefined-only "$o" | awk '$2 ~ /^weft_/ {print $2}'); do
            d=$(awk -v s="$sym" '$1 == s {print $2, $3; exit}' "$defs")
            [ -n "$d" ] || continue
            if [ "${d% *}" -gt "$r" ]; then
                echo "layers: ${o#"$objdir"/} ($layer/) calls $sym of ${d#* }/"
                bad=1
            fi
        done
    done
    rm -f "$defs"
else
    echo "layers: no objects in $objdir: calls not checked" >&2
    exit 1
fi
[ "$bad" = 0 ] && echo "layers: includes and calls point down"
exit "$bad"
