# lines.awk - functions the benchmark scripts' awk programs share
# (bench/fresh.sh, bench/modes.sh): read a field of a BENCH line, sort a
# list of values, take its median. Included as program text:
#   awk "$(cat bench/lines.awk)"'...the script's own program...'

# The value of field k (k=value) of BENCH line s, or "".
function field(s, k,   i, n, a) {
    n = split(s, a, " ")
    for (i = 1; i <= n; i++)
        if (index(a[i], k "=") == 1)
            return substr(a[i], length(k) + 2)
    return ""
}

# Split the space-separated numbers of list into a[1..n], ascending;
# returns n.
function sorted(list, a,   n, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++)
        for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) {
            t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
        }
    return n
}

# The median of such a list.
function median(list,   n, a) {
    n = sorted(list, a)
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
