#!/bin/sh
# tools/funclen.sh [N] - functions in src/ longer than N lines (default
# 120), longest first: "lines file:line name". A function is counted from
# its opening line at column 0 to the closing brace at column 0.
n=${1:-120}
for f in $(find src -name '*.c' | sort); do
    awk -v f="$f" '
        /^[a-zA-Z_].*\(/ && !/;$/ { name = $0; start = NR }
        /^}/ && start { len = NR - start + 1;
            sub(/\(.*/, "", name); k = split(name, w, /[ *]+/);
            print len, f ":" start, w[k]; start = 0 }
    ' "$f"
done | sort -rn | awk -v n="$n" '$1 > n'
