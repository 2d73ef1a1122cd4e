#!/usr/bin/env python3
"""report-plot.py - docs/benchmarks.md and its SVG plots, from BENCH lines.

    report-plot.py INPUT OUT.md SVGDIR

Called by tools/report.sh (`make report`), which gathers INPUT: lines
`# report-context: <key>: <value>` (the machine, the commit, the run; shown
in that order in the report's first table), then BENCH lines as
../shared/BENCHMARKS.md defines them:

    BENCH name=X impl=Y workers=N value=V unit=U check=ok

Anything else in INPUT is ignored, so a saved weft-bench output, or the
report itself (it ends with the lines it was made from), can be INPUT.
Lines whose check is not ok, and lines missing a field, are left out and
listed in the report; when one implementation has two lines for the same
workload and worker count, the last wins (as in peers/compare.sh).

Every ratio is value / weft's value for the same workload at the same worker
count (at weft's largest worker count when weft has no line at that count,
which the tables mark). Lower is better for every unit except the
throughputs req/s and msg/s; `ratio` (fairness) is best at 1.0.

Plots are written by gnuplot (the GNUPLOT environment variable names it;
unset or empty: no plots, and REPORT_NO_PLOTS says why in the report) as
SVGDIR/<name>.svg: one horizontal bar chart per workload that has a peer,
one for weft-mesh against weft on weft's own workloads, fib's scaling over
worker counts, and the latency percentiles. Python 3 standard library only.
"""
import math
import os
import re
import subprocess
import sys
import tempfile

# Workloads in the order ../shared/BENCHMARKS.md lists them; others follow
# in the order they first appear.
ORDER = ("switch spawn skynet fib pingpong yield_many chained_spawn memory "
         "preempt http_plaintext http_plaintext_p99 http_pipelined "
         "http_pipelined_p99 kv_set kv_get echo echo_p99").split()

# What each compared workload measures, for headings and plot titles.
WHAT = {
    "switch": "ns per switch between two tasks, one worker",
    "spawn": "ns per empty task spawned and finished",
    "skynet": "total time of the skynet tree (10^6 leaves)",
    "fib": "total time of fib(30), a task per call",
    "pingpong": "ns per round trip over two rendezvous channels",
    "yield_many": "ns per yield, 2 × workers tasks",
    "chained_spawn": "ns per link of a spawn chain",
    "memory": "resident bytes per blocked task",
    "preempt": "p99 lateness of a 1 ms sleeper beside a hog, one worker",
    "http_plaintext": "HTTP plaintext requests per second",
    "http_pipelined": "pipelined HTTP requests per second",
    "kv_set": "RESP SET requests per second",
    "kv_get": "RESP GET requests per second",
    "echo": "echo round trips per second",
}

# BENCHMARKS.md: "compare with go's skynet".
ALSO_COMPARE = {"skynet_chan": ("skynet", "go")}

# Workloads whose values are latency percentiles (the latency plot).
LATENCY_RE = re.compile(r"(_p\d+$)|(^preempt)")

FIELDS = ("name", "impl", "workers", "value", "unit", "check")

COLOUR = {"weft": "#d95f02", "weft-mesh": "#fdae6b", "serial": "#969696"}
PEER_COLOUR = "#3182bd"
# Marker colours and point types for the latency plot, one per impl.
SERIES_COLOURS = ["#d95f02", "#e6ab02", "#1b9e77", "#7570b3", "#e7298a",
                  "#66a61e", "#a6761d", "#1f78b4", "#666666", "#b2182b",
                  "#2166ac", "#35978f"]
POINT_TYPES = [7, 5, 9, 11, 13, 15, 4, 6, 8, 10, 12, 14]


class Line:
    def __init__(self, f, text, seq):
        self.seq, self.text = seq, text   # seq: its line number in INPUT
        self.name, self.impl, self.unit = f["name"], f["impl"], f["unit"]
        self.workers = int(f["workers"])
        self.value = float(f["value"])
        if not math.isfinite(self.value):
            raise ValueError("value is not a finite number")


def parse(path):
    """Returns (context, lines, skipped): context as [(key, value)], lines
    as [Line] (one per workload, workers and impl), skipped as
    [(text, reason)] in input order."""
    context, lines, skipped = [], {}, []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for seq, raw in enumerate(fh):
            text = raw.strip()
            m = re.match(r"#\s*report-context:\s*([^:]+?):\s*(.*)$", text)
            if m:
                context.append((m.group(1), m.group(2)))
                continue
            m = re.search(r"(?:^|[\s`])BENCH\s+(name=[^`|]*)", text)
            if not m:
                continue
            text = "BENCH " + m.group(1).strip()
            f = dict(t.split("=", 1) for t in text.split() if "=" in t)
            missing = [k for k in FIELDS if not f.get(k)]
            if missing:
                skipped.append((seq, text, "no " + ", ".join(missing)))
                continue
            if f["check"] != "ok":
                skipped.append((seq, text, "check=" + f["check"]))
                continue
            try:
                line = Line(f, text, seq)
            except ValueError as e:
                skipped.append((seq, text,
                                "unreadable workers or value (%s)" % e))
                continue
            key = (line.name, line.workers, line.impl)
            if key in lines:
                old = lines.pop(key)
                skipped.append((old.seq, old.text,
                                "a later line of the same impl, workload "
                                "and workers replaces it"))
            lines[key] = line
    return context, list(lines.values()), [s[1:] for s in sorted(skipped)]


# --- values, ratios, directions ---------------------------------------------

def direction(unit):
    """'higher', 'lower' or 'exact' (best at 1.0) is better."""
    if unit == "ratio":
        return "exact"
    num, _, den = unit.partition("/")
    if den == "s" and num not in ("ns", "us", "ms", "s"):
        return "higher"   # req/s, msg/s; ms/s (CPU time per second) is not
    return "lower"


BETTER = {"lower": "lower is better", "higher": "higher is better",
          "exact": "1.0 is exact"}


def fmt(v):
    """A value as a person reads it: 4 significant digits, thousands
    separated, no exponent."""
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return "{:,.0f}".format(v)
    if abs(v) < 1e-3:
        return "%.2e" % v
    return "%.4g" % v


def fmt_ratio(r):
    """A ratio to weft: 2 decimals, 2 significant digits below 0.1."""
    if r is None:
        return "-"
    if r >= 100:
        return "%.0f" % r
    return "%.2f" % r if r >= 0.1 else "%.2g" % r


class Workload:
    """The lines of one workload name, and weft's lines among them."""

    def __init__(self, name, lines):
        self.name, self.lines = name, lines
        self.weft = {l.workers: l for l in lines if l.impl == "weft"}
        self.unit = lines[0].unit
        self.dir = direction(self.unit)

    def base(self, line):
        """weft's line to divide `line` by, and whether its worker count
        differs from line's."""
        if line.workers in self.weft:
            return self.weft[line.workers], False
        if self.weft:
            return self.weft[max(self.weft)], True
        return None, False

    def ratio(self, line):
        b, _ = self.base(line)
        if not b or b.value <= 0 or b.unit != line.unit:
            return None   # no weft line to divide by, or not comparable
        return line.value / b.value

    def has_peer(self):
        return any(not l.impl.startswith("weft") for l in self.lines)

    def sort_key(self, line):
        """Worker count, then best first."""
        v = line.value
        if self.dir == "higher":
            v = -v
        elif self.dir == "exact":
            v = abs(v - 1)
        return (line.workers, v)

    def label(self, line):
        many = len({l.workers for l in self.lines}) > 1
        return "%s (%d %s)" % (line.impl, line.workers,
                               "worker" if line.workers == 1 else "workers") \
            if many else line.impl


def group(lines):
    """The lines as [Workload], in ORDER and then as they came."""
    names = []
    for l in lines:
        if l.name not in names:
            names.append(l.name)
    rank = {n: i for i, n in enumerate(ORDER)}
    names.sort(key=lambda n: rank.get(n, len(ORDER)))   # stable
    return [Workload(n, [l for l in lines if l.name == n]) for n in names]


# --- gnuplot ------------------------------------------------------------------

def q(s):
    """A gnuplot double-quoted string."""
    s = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + s + '"'


def preamble(svg, width, height, title):
    return "\n".join([
        "set encoding utf8",
        "set terminal svg size %d,%d dynamic noenhanced "
        "font 'DejaVu Sans,13' background rgb 'white'" % (width, height),
        "set output " + q(svg),
        "set title " + q(title) + " font ',14'",
        "set border 3 lc rgb '#555555'",
        "set tics nomirror",
        ""])


def log_range(ratios, room):
    """A log axis range holding every ratio and 1, with `room` (a factor)
    to the right for the labels; whole decades at the left."""
    lo = min(ratios + [1.0]) / 1.5
    hi = max(ratios + [1.0]) * room
    return 10 ** math.floor(math.log10(lo)), hi


def hbar(svg, title, bars, width=900):
    """A horizontal bar chart of ratios to weft; bars: [(label, ratio,
    colour, group)], first on top, a thin line between groups. Log scale
    when the ratios span a decade or more."""
    rs = [b[1] for b in bars]
    log = max(rs + [1.0]) / min(rs + [1.0]) >= 10
    if log:
        lo, hi = log_range(rs, 3)
    else:
        lo, hi = 0, max(rs + [1.0]) * 1.2
    n = len(bars)
    s = preamble(svg, width, 150 + 34 * n, title)
    s += "set xlabel %s\n" % q("ratio to weft (weft = 1, dashed line%s)" % (
        "; log scale" if log else ""))
    s += "set logscale x\nset mxtics 10\n" if log else ""
    s += "set xrange [%g:%g]\n" % (lo, hi)
    s += "set yrange [%g:%g]\n" % (n - 0.5, -0.5)
    s += "set ytics scale 0\nset grid xtics lc rgb '#dddddd'\nunset key\n"
    s += "set style fill solid 0.9 border rgb '#333333'\n"
    # The line at 1 goes behind the bars; the ratios go over it.
    s += ("set arrow from 1, graph 0 to 1, graph 1 nohead dt 2 lw 1.5 "
          "lc rgb '#333333' back\n")
    s += "set style textbox opaque noborder margins 1,1\n"
    for i in range(1, n):
        if bars[i][3] != bars[i - 1][3]:
            s += ("set arrow from graph 0, first %g to graph 1, first %g "
                  "nohead lc rgb '#999999' dt 3 back\n" % (i - 0.5, i - 0.5))
    s += "$bars << EOD\n"
    for i, (label, r, colour, _) in enumerate(bars):
        s += '%d %s %.6g %d %s\n' % (i, q(label), r, int(colour[1:], 16),
                                    q(fmt_ratio(r)))
    s += "EOD\n"
    s += ("plot $bars using (%g):1:(%g):3:($1-0.36):($1+0.36):4:ytic(2) "
          "with boxxyerror lc rgb variable, \\\n"
          "     $bars using 3:1:5 with labels left offset char 0.3,0 "
          "boxed font ',12'\n" % (lo, lo))
    return s


def colour(impl):
    return COLOUR.get(impl, PEER_COLOUR)


def chart_workload(w, svg):
    bars = []
    for l in sorted(w.lines, key=w.sort_key):
        r = w.ratio(l)
        if r is None or r <= 0:
            continue
        bars.append(("%s   %s %s" % (w.label(l), fmt(l.value), l.unit),
                     r, colour(l.impl), l.workers))
    if len(bars) < 2:
        return None
    what = WHAT.get(w.name, w.unit)
    title = "%s: %s\nvalue / weft's value, %s" % (w.name, what,
                                                   BETTER[w.dir])
    return hbar(svg, title, bars)


def chart_own(ws, svg):
    """weft's own workloads: every line that is not weft's, against weft."""
    shown = [(w, l) for w in ws if not LATENCY_RE.search(w.name)
             for l in sorted(w.lines, key=w.sort_key)
             if l.impl != "weft" and (w.ratio(l) or 0) > 0]
    impls = sorted({l.impl for _, l in shown})
    if not shown:
        return None
    bars = []
    for w, l in shown:
        b, _ = w.base(l)
        mark = {"higher": " [higher is better]",
                "exact": " [1.0 is exact]"}.get(w.dir, "")
        bars.append(("%s%s (%dw): %s vs %s %s%s" % (
            "" if len(impls) == 1 else l.impl + " ", w.name, l.workers,
            fmt(l.value), fmt(b.value), l.unit, mark),
            w.ratio(l), colour(l.impl), 0))
    title = ("weft's own workloads (no peer): %s / weft\n"
             "lower is better, except where a row says otherwise" % (
                 impls[0] if len(impls) == 1 else "other"))
    return hbar(svg, title, bars, 1000)


def chart_latency(ws, svg):
    """The latency percentiles, each workload a row, each impl a marker."""
    rows, impls, pts = [], [], []
    for w in sorted(ws, key=lambda w: not w.name.startswith("preempt")):
        if not LATENCY_RE.search(w.name) or not w.weft:
            continue
        for wk in sorted(w.weft):
            base = w.weft[wk]
            if base.value <= 0:
                continue
            here = [l for l in w.lines if l.workers == wk or
                    (l.impl != "weft" and w.base(l)[0] is base)]
            rows.append("%s%s (weft %s %s)" % (
                w.name, ", %dw" % wk if len(w.weft) > 1 else "",
                fmt(base.value), base.unit))
            for l in here:
                if l.value <= 0:
                    continue
                if l.impl not in impls:
                    impls.append(l.impl)
                pts.append((len(rows) - 1, l.impl, l.value / base.value))
    if len(rows) < 1 or len(impls) < 2:
        return None
    impls.sort(key=lambda i: (not i.startswith("weft"), i))
    n, k = len(rows), len(impls)
    step = min(0.7 / k, 0.12)
    lo, hi = log_range([r for _, _, r in pts], 2)
    s = preamble(svg, 980, 170 + 46 * n,
                 "Latency percentiles: value / weft's value, lower is better"
                 "\npreempt*: p99 lateness of a sleeper beside a hog; "
                 "*_p50, *_p99: wake-up (or request) latency")
    s += "set xlabel %s\n" % q("ratio to weft (weft = 1, dashed; log scale)")
    s += "set logscale x\nset mxtics 10\nset xrange [%g:%g]\n" % (lo, hi)
    s += "set yrange [%g:%g]\n" % (n - 0.5, -0.5)
    s += "set ytics scale 0 (%s)\n" % ", ".join(
        "%s %d" % (q(r), i) for i, r in enumerate(rows))
    s += "set grid xtics lc rgb '#dddddd'\n"
    for i in range(1, n):
        s += ("set arrow from graph 0, first %g to graph 1, first %g nohead "
              "lc rgb '#eeeeee' back\n" % (i - 0.5, i - 0.5))
    s += ("set arrow from 1, graph 0 to 1, graph 1 nohead dt 2 lw 1.5 "
          "lc rgb '#333333' back\n")
    s += "set key outside right top Left reverse samplen 1 spacing 1.2\n"
    plots = []
    for j, impl in enumerate(impls):
        s += "$s%d << EOD\n" % j
        for row, i2, r in pts:
            if i2 == impl:
                s += "%.6g %g\n" % (r, row + (j - (k - 1) / 2) * step)
        s += "EOD\n"
        plots.append("$s%d using 1:2 with points pt %d ps 1.4 lc rgb '%s' "
                     "title %s" % (j, POINT_TYPES[j % len(POINT_TYPES)],
                                   SERIES_COLOURS[j % len(SERIES_COLOURS)],
                                   q(impl)))
    s += "plot " + ", \\\n     ".join(plots) + "\n"
    return s


def chart_scaling(w, svg):
    """fib over weft's worker counts, against weft at its fewest."""
    counts = sorted(w.weft)
    if len(counts) < 2:
        return None
    base = w.weft[counts[0]]
    series = [("weft", [(c, w.weft[c]) for c in counts])]
    mesh = {l.workers: l for l in w.lines if l.impl == "weft-mesh"}
    if mesh:
        # Mesh at one worker is steal mode: weft-bench reports it once.
        pts = [(c, mesh.get(c) or w.weft[c]) for c in counts
               if c in mesh or c == counts[0]]
        series.append(("weft-mesh (%d worker%s: weft's)" % (
            counts[0], "" if counts[0] == 1 else "s"), pts))
    ys = [l.value / base.value for _, p in series for _, l in p]
    ys += [counts[0] / c for c in counts]
    s = preamble(svg, 860, 480,
                 "%s: time at N workers / weft's time at %d worker%s\n"
                 "lower is better; perfect scaling (dashed) is %d/N" % (
                     w.name, counts[0], "" if counts[0] == 1 else "s",
                     counts[0]))
    s += "set xlabel 'workers'\nset ylabel 'ratio to weft at %d'\n" % counts[0]
    s += "set xtics (%s)\n" % ", ".join("'%d' %d" % (c, c) for c in counts)
    pad = (counts[-1] - counts[0]) * 0.15
    s += "set xrange [%g:%g]\n" % (counts[0] - pad, counts[-1] + pad * 2.2)
    s += "set yrange [0:%g]\n" % (max(ys) * 1.25)
    s += "set grid ytics lc rgb '#dddddd'\n"
    s += "set key bottom left box opaque\n"
    s += "$ideal << EOD\n" + "".join(
        "%d %g\n" % (c, counts[0] / c) for c in counts) + "EOD\n"
    plots = ["$ideal using 1:2 with lines dt 2 lw 2 lc rgb '#777777' "
             "title 'perfect scaling'"]
    for j, (title, pts) in enumerate(series):
        c = ["#d95f02", "#1b9e77"][j % 2]
        s += "$f%d << EOD\n" % j
        for x, l in pts:
            # weft-mesh's first point is weft's, labelled already.
            label = "" if j and l.impl == "weft" else "  %.2f (%s %s)" % (
                l.value / base.value, fmt(l.value), l.unit)
            s += "%d %.6g %s\n" % (x, l.value / base.value, q(label))
        s += "EOD\n"
        plots.append("$f%d using 1:2 with linespoints pt 7 ps 1.4 lw 2 "
                     "lc rgb '%s' title %s" % (j, c, q(title)))
        plots.append("$f%d using 1:2:3 with labels left offset 0,%g "
                     "font ',11' tc rgb '%s' notitle" % (
                         j, 0.9 if j == 0 else -0.9, c))
    s += "plot " + ", \\\n     ".join(plots) + "\n"
    return s


def render(charts, svgdir, gnuplot):
    """Runs gnuplot on each (file stem, script); returns {stem: error}."""
    errors = {}
    with tempfile.TemporaryDirectory(prefix="weft-report-") as tmp:
        for stem, script in charts:
            gp = os.path.join(tmp, stem + ".gp")
            with open(gp, "w", encoding="utf-8") as fh:
                fh.write(script)
            r = subprocess.run([gnuplot, gp], capture_output=True, text=True)
            svg = os.path.join(svgdir, stem + ".svg")
            if r.returncode != 0 or not os.path.exists(svg):
                errors[stem] = (r.stderr.strip().splitlines() or ["?"])[-1]
                if os.path.exists(svg):
                    os.remove(svg)   # half written
    return errors


# --- markdown -----------------------------------------------------------------

def table(head, rows):
    """A markdown table; columns of numbers (or -) are right-aligned."""
    num = re.compile(r"^(-|[\d.,]+(e[-+]\d+)?%?( †)?)$")
    right = [all(num.match(r[i]) for r in rows) for i in range(len(head))]
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join("---:" if r else "---" for r in right) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def workload_table(w):
    rows, shifted = [], False
    for l in sorted(w.lines, key=w.sort_key):
        b, other = w.base(l)
        r = fmt_ratio(w.ratio(l))
        if other and r != "-":
            r += " †"
            shifted = True
        impl = "**%s**" % l.impl if l.impl == "weft" else l.impl
        rows.append([impl, str(l.workers), fmt(l.value), l.unit, r])
    s = table(["impl", "workers", "value", "unit", "÷ weft"], rows)
    if shifted:
        s += ("\n† weft has no line at that worker count: divided by weft at "
              "%d workers.\n" % max(w.weft))
    return s


def summary_table(compared):
    rows = []
    for w in compared:
        for wk in sorted(w.weft):
            base = w.weft[wk]
            peers = [l for l in w.lines if l.workers == wk and
                     not l.impl.startswith("weft") and l.impl != "serial"]
            mesh = [l for l in w.lines
                    if l.workers == wk and l.impl == "weft-mesh"]
            if not peers:
                continue
            ranked = sorted([base] + peers, key=w.sort_key)
            best = ranked[0] if ranked[0] is not base else ranked[1]
            rows.append([w.name, str(wk), w.unit, BETTER[w.dir],
                         fmt(base.value),
                         fmt_ratio(w.ratio(mesh[0])) if mesh else "-",
                         best.impl if best is not base else "-",
                         fmt_ratio(w.ratio(best)),
                         "%d of %d" % (ranked.index(base) + 1, len(ranked))])
    return table(["workload", "workers", "unit", "better", "weft",
                  "÷ weft: weft-mesh", "best peer", "÷ weft: best peer",
                  "weft's place"], rows)


def own_table(ws):
    impls = []
    for w in ws:
        for l in w.lines:
            if l.impl != "weft" and l.impl not in impls:
                impls.append(l.impl)
    head = ["workload", "workers", "unit", "weft"]
    for i in impls:
        head += [i, "÷ weft"]
    rows = []
    for w in ws:
        for wk in sorted({l.workers for l in w.lines}):
            by = {l.impl: l for l in w.lines if l.workers == wk}
            row = [w.name, str(wk), w.unit + ("" if w.dir == "lower" else
                                              " (%s)" % BETTER[w.dir]),
                   fmt(by["weft"].value) if "weft" in by else "-"]
            for i in impls:
                row += [fmt(by[i].value), fmt_ratio(w.ratio(by[i]))] \
                    if i in by else ["-", "-"]
            rows.append(row)
    return table(head, rows)


def main(argv):
    if len(argv) != 4:
        sys.exit(__doc__.split("\n\n")[1])
    src, out_md, svgdir = argv[1:]
    context, lines, skipped = parse(src)
    ws = group(lines)
    compared = [w for w in ws if w.has_peer()]
    own = [w for w in ws if not w.has_peer()]
    byname = {w.name: w for w in ws}
    rel = os.path.relpath(svgdir, os.path.dirname(os.path.abspath(out_md)))
    gnuplot = os.environ.get("GNUPLOT", "")
    no_plots = os.environ.get("REPORT_NO_PLOTS", "") or \
        ("" if gnuplot else "no gnuplot")

    # The charts, each with its SVG file stem.
    charts = []   # [(stem, script)]

    def chart(stem, make, *args):
        """Adds the chart make(*args, svg) unless it has nothing to show."""
        if no_plots:
            return None
        script = make(*args, os.path.join(svgdir, stem + ".svg"))
        if not script:
            return None
        charts.append((stem, script))
        return stem

    plotted = {w.name: chart(w.name, chart_workload, w) for w in compared}
    fib = byname.get("fib")
    scaling = chart("fib-scaling", chart_scaling, fib) if fib else None
    latency = chart("latency", chart_latency, ws)
    own_plot = chart("weft-own", chart_own, own)

    errors = {}
    if charts:
        os.makedirs(svgdir, exist_ok=True)
        errors = render(charts, svgdir, gnuplot)

    def image(stem, alt):
        if not stem:
            return ""
        if stem in errors:
            return "(plot %s.svg failed: %s)\n\n" % (stem, errors[stem])
        return "![%s](%s/%s.svg)\n\n" % (alt, rel, stem)

    md = []
    put = md.append
    put("# weft benchmarks\n\n"
        "Generated by `make report` (`tools/report.sh`); do not edit by "
        "hand. The workloads and the BENCH line format are those of "
        "`../shared/BENCHMARKS.md`; weft's lines come from "
        "`build/bench/weft-bench` (`weft` is the default balance mode, "
        "steal; `weft-mesh` the mesh mode), the peers' from "
        "`../shared/peers/run.sh`.\n\n"
        "Every ratio is **value ÷ weft's value** for the same workload at "
        "the same worker count, so that runs on different machines can be "
        "compared. Lower is better for every unit except the throughputs "
        "`req/s` and `msg/s`; for those a ratio above 1 is more throughput "
        "than weft. The plots show the same ratios, with weft at 1.\n\n"
        "To rebuild this page from the lines at its end, without running "
        "anything: `REPORT_INPUT=docs/benchmarks.md make report`.\n\n")

    put("## Machine and run\n\n")
    put(table(["", ""], [[k, v] for k, v in context]) if context else
        "(no context lines in the input)\n")
    put("\n")
    if no_plots:
        put("**No plots**: %s.\n\n" % no_plots)

    if compared:
        put("## Summary\n\n"
            "weft (steal mode) against the peers, one row per workload and "
            "worker count that has a peer line. *Best peer* is the best "
            "implementation other than weft's two modes and `serial` (a "
            "plain loop, no tasks; it is in the tables); *weft's place* "
            "counts weft and those peers at that worker count.\n\n")
        put(summary_table(compared) + "\n")

        put("## Workloads with peers\n\n"
            "Each table: best first within a worker count.\n\n")
        for w in compared:
            put("### %s\n\n*%s*: `%s`, %s.\n\n" % (
                w.name, WHAT.get(w.name, "see BENCHMARKS.md"), w.unit,
                BETTER[w.dir]))
            put(image(plotted.get(w.name), w.name + ", ratio to weft"))
            put(workload_table(w) + "\n")

    put("## fib: scaling over workers\n\n")
    if not fib:
        put("No `fib` lines in the input.\n\n")
    elif len(fib.weft) < 2:
        put("weft has `fib` lines at workers=%s only (the BENCH lines' "
            "`workers=` field), so there is no scaling to show. weft-bench "
            "runs fib at 1 worker and at BENCH_WORKERS workers (default: "
            "the CPUs), one line only when the two are equal.\n\n" % (
                ", ".join(str(c) for c in sorted(fib.weft)) or "none"))
    else:
        c = sorted(fib.weft)
        peers = sorted({l.workers for l in fib.lines if l.impl != "serial"
                        and not l.impl.startswith("weft")})
        put("weft's `fib` lines are at workers=%s (their `workers=` field); "
            "each is divided by weft's time at %d. weft-mesh at one worker "
            "is weft's steal mode (weft-bench reports it once).%s\n\n" % (
                ", ".join(map(str, c)), c[0],
                " The peers ran at workers=%s only: they are in the fib "
                "table above." % ", ".join(map(str, peers)) if peers else ""))
        put(image(scaling, "fib scaling"))
        rows = []
        for wk in c:
            rows.append([str(wk), fmt(fib.weft[wk].value),
                         "%.2f" % (fib.weft[wk].value / fib.weft[c[0]].value),
                         "%.2f" % (fib.weft[c[0]].value / fib.weft[wk].value),
                         "%.0f%%" % (100 * fib.weft[c[0]].value * c[0] /
                                     fib.weft[wk].value / wk)])
        put(table(["workers", "weft, " + fib.unit, "÷ weft at %d" % c[0],
                   "speed-up", "efficiency"], rows) + "\n")

    put("## Latency percentiles\n\n"
        "`preempt` and `preempt_isolate`: the 99th percentile of how late a "
        "task sleeping 1 ms at a time wakes beside a hog that never yields "
        "(one worker); `*_p50` / `*_p99`: weft's wake-up latencies "
        "(`bench/wakeup.c`, `bench/io_wakeup.c`), and the network "
        "servers' request latencies when their lines are in the input "
        "(`peers/net/bench.sh`). Each row is divided by "
        "weft's value, which the row's label gives.\n\n")
    put(image(latency, "latency percentiles, ratio to weft") or
        ("" if no_plots else "(fewer than two implementations: no plot)\n\n"))

    if own:
        put("## weft's own workloads\n\n"
            "No peer has these (`../shared/BENCHMARKS.md`, *weft's own "
            "workloads*). The plot shows every implementation against weft, "
            "except the latency percentiles, which are in the plot "
            "above.\n\n")
        put(image(own_plot, "weft's own workloads, ratio to weft"))
        put(own_table(own) + "\n")
        for name, (other, impl) in ALSO_COMPARE.items():
            a, b = byname.get(name), byname.get(other)
            g = b and [l for l in b.lines if l.impl == impl]
            if a and a.weft and g:
                wl = a.weft[max(a.weft)]
                put("`%s`, as BENCHMARKS.md says, compares with %s's `%s`: "
                    "%s %s at %d workers, %s × weft's `%s`.\n\n" % (
                        name, impl, other, fmt(g[0].value), g[0].unit,
                        g[0].workers, fmt_ratio(g[0].value / wl.value)
                        if wl.value > 0 else "-", name))

    put("## Lines left out\n\n")
    if skipped:
        put("These lines are not in the tables or plots:\n\n")
        put(table(["line", "why"], [["`%s`" % t, r] for t, r in skipped]))
        put("\n")
    else:
        put("None: every BENCH line had check=ok.\n\n")

    put("## The BENCH lines\n\n<details><summary>%d lines this report was "
        "made from</summary>\n\n```\n" % len(lines))
    for k, v in context:
        put("# report-context: %s: %s\n" % (k, v))
    for l in lines:
        put(l.text + "\n")
    put("```\n\n</details>\n")

    os.makedirs(os.path.dirname(os.path.abspath(out_md)), exist_ok=True)
    with open(out_md, "w", encoding="utf-8") as fh:
        fh.write("".join(md))
    if not lines:
        print("report-plot: no usable BENCH lines in " + src, file=sys.stderr)
        return 1
    for stem, err in errors.items():
        print("report-plot: %s.svg: %s" % (stem, err), file=sys.stderr)
    print("report-plot: %d lines (%d left out), %d plots" % (
        len(lines), len(skipped), len(charts) - len(errors)),
        file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
