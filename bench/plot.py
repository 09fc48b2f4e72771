#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Charts for bench/*.sh --plot (gnuplot, PNG).

    bench/plot.py POINTS OUTDIR [PREFIX]

POINTS is a tab-separated file the benchmark appended to, one point a line:

    qd    TITLE  SERIES  QD       IOPS      -> "IOPS vs queue depth" lines,
                                               one chart per TITLE
    lat   TITLE  SERIES  LABEL    MICROSECS -> latency bars (LABEL: p50, p99,
                                               p99.9, mean...), grouped by
                                               SERIES, one chart per TITLE
    bar   TITLE  SERIES  LABEL    VALUE     -> throughput bars (IOPS, GiB/s...)
                                               grouped by SERIES; TITLE ends
                                               with its unit in brackets,
                                               e.g. "... (Gbit/s)", which
                                               becomes the y axis label

X of a qd point is a queue depth (a positive integer); Y is a number, or "-"
for a point the benchmark could not measure (left out of the chart).

Every series of a chart was measured in the same run (that is what the
benchmarks guarantee), so the charts compare like with like. Prints the PNG
paths it wrote. Needs gnuplot (gnuplot-nox).
"""
import collections
import os
import re
import subprocess
import sys
import textwrap


def slug(s):
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")


def esc(s):
    return s.replace("\\", "\\\\").replace('"', '\\"')


def title_cmd(title):
    """a title longer than the chart is wide goes on two or more lines"""
    return 'set title "%s"' % "\\n".join(esc(l) for l in textwrap.wrap(title, 100))


def unit_of(title):
    m = re.search(r"\(([^()]+)\)\s*$", title)
    return m.group(1) if m else None


def read_points(path):
    charts = collections.OrderedDict()
    for n, line in enumerate(open(path), 1):
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        f = line.split("\t")
        if len(f) != 5 or f[0] not in ("qd", "lat", "bar"):
            raise SystemExit("%s:%d: expected KIND TITLE SERIES X Y, tab-separated, "
                             "KIND qd, lat or bar" % (path, n))
        if not all(f[1:4]):
            raise SystemExit("%s:%d: empty TITLE, SERIES or X" % (path, n))
        if f[0] == "qd" and not (f[3].isdigit() and int(f[3]) > 0):
            raise SystemExit("%s:%d: queue depth %r is not a positive integer" % (path, n, f[3]))
        if f[0] == "bar" and not unit_of(f[1]):
            raise SystemExit("%s:%d: a bar chart's title ends with its unit, e.g. "
                             "\"... (GiB/s)\"" % (path, n))
        if f[4] in ("-", ""):
            continue    # a point the benchmark could not measure
        try:
            y = float(f[4])
        except ValueError:
            raise SystemExit("%s:%d: value %r is neither a number nor \"-\"" % (path, n, f[4]))
        if y != y or y < 0:
            raise SystemExit("%s:%d: value %r is not a number >= 0" % (path, n, f[4]))
        charts.setdefault((f[0], f[1]), collections.OrderedDict()).setdefault(f[2], []).append((f[3], y))
    return charts


def qd_chart(title, series, out):
    data, plots = [], []
    for i, (name, pts) in enumerate(series.items()):
        pts = sorted((int(x), y) for x, y in pts)
        data.append("\n".join("%d %g" % (x, y / 1000.0) for x, y in pts))
        plots.append('"-" using 1:2 with linespoints lw 2 pt %d title "%s"' % (5 + i, esc(name)))
    script = "\n".join([
        'set terminal pngcairo noenhanced size 900,560 font "sans,10"',
        'set output "%s"' % esc(out),
        title_cmd(title),
        'set ylabel "thousand IOPS"', 'set format x "QD%g"',
        "set logscale x 2", "set grid", "set key below height 1", "set yrange [0:*]",
        "set offsets 0, 0, graph 0.08, 0",
        "set format y '%g'",
        "plot " + ", ".join(plots),
    ]) + "\n" + "\ne\n".join(data) + "\ne\n"
    return script


def lat_chart(title, series, out, ylabel="latency (us)"):
    scale = 1.0
    if ylabel == "IOPS":
        scale, ylabel = 1000.0, "thousand IOPS"
    labels = []
    for pts in series.values():
        for x, _ in pts:
            if x not in labels:
                labels.append(x)
    rows = []
    for name, pts in series.items():
        vals = dict(pts)
        rows.append('"%s" %s' % (esc(name), " ".join("%g" % (vals[l] / scale) if l in vals else "nan"
                                                       for l in labels)))
    plots = ['"-" using %d:xtic(1) title "%s"' % (i + 2, esc(l)) for i, l in enumerate(labels)]
    # values spanning more than 30x (p50 beside p99.9, a disk beside RAM) would
    # leave the small bars invisible on a linear axis
    ys = [y / scale for pts in series.values() for _, y in pts if y > 0]
    logy = ys and max(ys) / min(ys) > 30
    yaxis = ["set logscale y", "set yrange [%g:*]" % (min(ys) / 2)] if logy else ["set yrange [0:*]"]
    script = "\n".join([
        'set terminal pngcairo noenhanced size 900,560 font "sans,10"',
        'set output "%s"' % esc(out),
        title_cmd(title),
        'set ylabel "%s%s"' % (esc(ylabel), ", log scale" if logy else ""), "set grid ytics",
        "set style data histograms", "set style histogram clustered gap 1",
        "set style fill solid 0.8 border -1", "set boxwidth 0.9"] + yaxis + [
        "set format y '%g'",
        "set offsets 0, 0, graph 0.08, 0",
        "set xtics rotate by -20", "set key outside right top",
        "plot " + ", ".join(plots),
    ]) + "\n" + "".join("\n".join(rows) + "\ne\n" for _ in labels)
    return script


def main():
    if len(sys.argv) not in (3, 4):
        raise SystemExit(__doc__)
    points, outdir = sys.argv[1], sys.argv[2]
    prefix = sys.argv[3] if len(sys.argv) == 4 else "bench"
    os.makedirs(outdir, exist_ok=True)
    charts = read_points(points)
    if not charts:
        raise SystemExit("no points in %s" % points)
    # one gnuplot for all the charts (a start costs ~0.3 s here); a chart it
    # could not write fails the whole run, naming the chart
    scripts, outs = [], []
    for (kind, title), series in charts.items():
        out = os.path.join(outdir, "%s-%s-%s.png" % (prefix, kind, slug(title)))
        if os.path.exists(out):
            os.remove(out)
        if kind == "qd":
            scripts.append(qd_chart(title, series, out))
        elif kind == "lat":
            scripts.append(lat_chart(title, series, out))
        else:
            scripts.append(lat_chart(title, series, out, unit_of(title)))
        outs.append((title, out))
    p = subprocess.run(["gnuplot"], input="reset\nunset output\n".join(scripts) + "unset output\n",
                       text=True, capture_output=True)
    for title, out in outs:
        if p.returncode != 0 or not os.path.exists(out) or os.path.getsize(out) == 0:
            raise SystemExit("gnuplot failed for %s: %s" % (title, p.stderr.strip()))
    for _, out in outs:
        print(out)

if __name__ == "__main__":
    main()
