#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Charts for docs/performance.md, drawn from the numbers of its own tables
# (no benchmark is run).
#
#   scripts/render-perf-charts.sh            check, then render docs/img/*.png
#   scripts/render-perf-charts.sh --update   after editing a table: rewrite its
#                                            docs/perf-data/*.tsv, its charts and the
#                                            chart block under it, then check
#   scripts/render-perf-charts.sh --check DIR   check only, rendering into DIR
#                                            (tests/functional/bench_plot.sh)
#   --only STEM[,STEM...]                    with any of the above: only these
#                                            chart blocks (the rest is still
#                                            checked for structure and images)
#
# A table with charts is followed (blank lines between allowed) by a block
#     <!-- chart: STEM -->  ![title](img/STEM-....png) ...  caption  <!-- end chart -->
# The points of docs/perf-data/STEM.tsv (bench/plot.py's input format) are
# what the extractor named STEM below reads from that table. The check fails
# when a data file's numbers differ from its table's, when a block does not
# follow a table, when a data file has no block (or a block no data file or
# extractor), when bench/plot.py cannot render a data file, when a block
# does not list exactly the charts its data file renders, or when
# performance.md references an image docs/img does not have.
# Needs gnuplot and /usr/bin/python3.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
exec /usr/bin/python3 - "$TOP" "$@" <<'PY'
import glob, importlib.util, os, re, shutil, subprocess, sys, tempfile

TOP = sys.argv[1]
args = sys.argv[2:]
DOC = os.path.join(TOP, "docs/performance.md")
DATA = os.path.join(TOP, "docs/perf-data")
IMG = os.path.join(TOP, "docs/img")
spec = importlib.util.spec_from_file_location("plot", os.path.join(TOP, "bench/plot.py"))
plot = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plot)


# ---- reading the tables -------------------------------------------------------------------
def num(s):
    """'8 453' -> 8453, '43.0 K (1.22x)' -> 43000, '**-6.9**' -> -6.9; None for '-'."""
    s = s.replace("**", "").strip()
    m = re.match(r"^(-?[0-9][0-9 \u202f\u00a0]*(?:\.[0-9]+)?)\s*(K\b)?", s)
    if not m:
        return None
    v = float(re.sub(r"[ \u202f\u00a0]", "", m.group(1)))
    return v * 1000 if m.group(2) else v


def pair(s):
    """'50.4/101.9' -> (50.4, 101.9)"""
    a, b = s.split("/")
    return num(a), num(b)


def ratio_of(s):
    m = re.search(r"\(([0-9.]+)x\)", s.replace("**", ""))
    return float(m.group(1)) if m else None


def unit_value(s, unit):
    """the number written just before UNIT in S ('... 14.6 GiB/s' -> 14.6)"""
    m = re.findall(r"([0-9][0-9.]*)\s*" + re.escape(unit), s)
    if not m:
        raise ValueError("no '%s' value in %r" % (unit, s))
    return float(m[-1])


class Table:
    def __init__(self, lines):
        rows = [[c.strip() for c in l.strip().strip("|").split("|")] for l in lines]
        self.head = rows[0]
        self.rows = [r for r in rows[1:] if not all(re.fullmatch(r":?-+:?", c) for c in r)]

    def row(self, key):
        for r in self.rows:
            if r[0] == key:
                return r
        raise KeyError("no row %r" % key)

    def col(self, name):
        return self.head.index(name)


# ---- one extractor per table: yields (kind, title, series, x, y) ----------------------------
def baseline(date, latkind):
    def ex(t):
        place = "fio on CPU 0"
        for r in t.rows:
            target, engine, qd = r[0], r[1], int(num(r[2]))
            if engine == "io_uring":
                yield "qd", "fio io_uring 4 KiB random read, %s (%s)" % (place, date), target, qd, num(r[3])
            if qd == 1:
                for lab, c in (("p50", 4), ("p99", 5), ("p99.9", 6)):
                    yield ("lat", "4 KiB random read QD1 %s, %s (%s)" % (latkind, place, date),
                           "%s %s" % (target, engine), lab, num(r[c]))
    return ex


def shm(t):
    place = "nvlendd CPU 1, clients and fio CPU 0"
    for r in t.rows:
        backing, io, qd, clients = r[0], r[1], r[2], r[3]
        if clients != "1":
            continue
        base = "io_uring " + ("tmpfs" if backing == "RAM bdev" else backing)
        if "," not in backing:
            t_qd = "4 KiB %s, one client, %s (2026-12-06)" % (io, place)
            yield "qd", t_qd, "nvlend shm, " + backing, int(qd), num(r[7])
            if backing != "RAM bdev":
                yield "qd", t_qd, base, int(qd), num(r[4])
        if qd == "1":
            t_lat = ("4 KiB %s QD1 latency, %s unless the row says same CPU (2026-12-06)"
                     % (io, place))
            if "," not in backing and backing != "RAM bdev":
                b50, b99 = pair(r[5])
                yield "lat", t_lat, base, "p50", b50
                yield "lat", t_lat, base, "p99", b99
            s50, s99 = pair(r[8])
            yield "lat", t_lat, "nvlend shm, " + backing, "p50", s50
            yield "lat", t_lat, "nvlend shm, " + backing, "p99", s99


def brick(t):
    place = "nvlendd CPU 0, clients CPU 1"
    r = t.rows[3]
    yield ("bar", "brick one-sided write over shm vs memcpy, 16 x 2 MiB, %s (2026-11-22) (GiB/s)" % place,
           "brick one-sided write", "16 x 2 MiB blocks", unit_value(r[1], "GiB/s"))
    yield ("bar", "brick one-sided write over shm vs memcpy, 16 x 2 MiB, %s (2026-11-22) (GiB/s)" % place,
           "memcpy 2 MiB huge pages", "16 x 2 MiB blocks", unit_value(r[2], "GiB/s"))
    t_bw = "brick 2 MiB over tcp, QD1, vs iperf3, %s (2026-11-22) (Gbit/s)" % place
    for i, op in ((4, "WRITE"), (5, "READ")):
        yield "bar", t_bw, "brick tcp", op, unit_value(t.rows[i][1], "Gbit/s")
        yield "bar", t_bw, "iperf3 one stream", op, unit_value(t.rows[i][2], "Gbit/s")
    t_lat = "brick 4 KiB QD1 over tcp vs a TCP ping-pong, %s (2026-11-22)" % place
    for i, op in ((6, "READ"), (7, "WRITE")):
        p50, avg = pair(t.rows[i][1].replace("us", ""))
        yield "lat", t_lat, "brick " + op, "p50", p50
        yield "lat", t_lat, "brick " + op, "avg", avg
        p50, avg = pair(t.rows[i][2].split(":")[1].replace("us", ""))
        yield "lat", t_lat, "ping-pong, %s's shape" % op, "p50", p50
        yield "lat", t_lat, "ping-pong, %s's shape" % op, "avg", avg
    t_cyc = "brick alloc+map+write 2 MiB+flush+unmap cycle, %s (2026-11-22)" % place
    for i, name in ((0, "shm, memory tier"), (1, "tcp, memory tier"), (2, "shm, disk directory")):
        cell = t.rows[i][1]
        scale = 1000.0 if cell.endswith("ms") else 1.0
        p50, avg = pair(re.sub(r"\s*(ms|us)$", "", cell))
        yield "lat", t_cyc, name, "p50", p50 * scale
        yield "lat", t_cyc, name, "avg", avg * scale


def nbd_hold(t):
    place = "split: nvlendd CPU 1, fio CPU 0; same: both CPU 0"
    peer = {"ram": "nbdkit memory", "file": "nbdkit file"}
    for backing in ("ram", "file"):
        for rw in ("randread", "randwrite"):
            title = "NBD 4 KiB %s, %s export, fio nbd engine (%s) (2026-12-06)" % (rw, backing, place)
            for qd in (1, 32):
                r = t.row("%s %s QD%d" % (backing, rw, qd))
                for c, pl in ((1, "split"), (2, "split, nohold"), (3, "same CPU"), (4, "same CPU, nohold")):
                    yield "qd", title, "nvlend %s" % pl, qd, num(r[c])
                for c, pl in ((1, "split"), (3, "same CPU")):
                    # the peer, measured in the same run, is in the table as the ratio
                    yield ("qd", title, "%s %s (IOPS / ratio)" % (peer[backing], pl), qd,
                           round(num(r[c]) / ratio_of(r[c])))


def nbd_old(place):
    def ex(t):
        for rw in ("randread", "randwrite"):
            for r in t.rows:
                for qd in (1, 32):
                    yield ("qd", "NBD 4 KiB %s, fio nbd engine, %s (older run)" % (rw, place), r[0], qd,
                           num(r[t.col("%s QD%d" % (rw, qd))]))
    return ex


def attach(t):
    place = "nvlendd CPU 1, attach and fio CPU 0"
    def parts(cell):
        iops, mibs, lat = [c.strip() for c in cell.split(",")]
        return num(iops), num(mibs), pair(lat)
    for r in t.rows:
        for side, c in (("file directly", 1), ("attached (fuse)", 2)):
            iops, mibs, (p50, p99) = parts(r[c])
            if r[0].startswith("4 KiB random read, QD"):
                qd = int(r[0].split("QD")[1])
                yield "qd", "4 KiB random read, attached vs the file directly, %s" % place, side, qd, iops
                if qd == 1:
                    t_lat = "4 KiB random read QD1 clat, %s" % place
                    yield "lat", t_lat, side, "p50", p50
                    yield "lat", t_lat, side, "p99", p99
            if r[0].startswith("128 KiB"):
                yield ("bar", "128 KiB sequential QD8, %s (MiB/s)" % place, side,
                       r[0].split()[3].rstrip(","), mibs)


def tcp(date):
    def ex(t):
        place = "target CPU 1, clients CPU 0"
        for c in (1, 2, 3):
            series = t.head[c]
            for key, rw in (("randread QD1 p50/p99 (us)", "read"), ("randwrite QD1 p50/p99 (us)", "write")):
                p50, p99 = pair(t.row(key)[c])
                t_lat = "4 KiB QD1 latency, loopback, %s (%s)" % (place, date)
                yield "lat", t_lat, series, rw + " p50", p50
                yield "lat", t_lat, series, rw + " p99", p99
            for q, qs in (("1 queue", "1 queue"), ("4 queues", "4 queues")):
                for rw in ("randread", "randwrite"):
                    v = num(t.row("%s QD32 IOPS, %s" % (rw, q))[c])
                    if v is not None:
                        yield ("bar", "4 KiB QD32, loopback, %s (%s) (IOPS)" % (place, date), series,
                               "%s, %s" % (rw, qs), v)
            for key, q in (("128 KiB seq read GB/s QD8, 1 queue", "1 queue"),
                           ("128 KiB seq read GB/s QD8, 4 q", "4 queues")):
                v = num(t.row(key)[c])
                if v is not None:
                    yield ("bar", "128 KiB sequential read QD8, loopback, %s (%s) (GB/s)" % (place, date),
                           series, q, v)
    return ex


def rdma(t):
    title = "NVMe/RDMA 4 KiB QD32, kernel nvme-rdma + fio, QEMU TCG guest, soft-RoCE, unpinned (2026-12-07) (IOPS)"
    for r in t.rows:
        yield "bar", title, "kernel nvmet-rdma", r[0], num(r[1])
        yield "bar", title, "nvlend RDMA", r[0], num(r[2])


def spdk(t):
    place = "target CPU 1, spdk_nvme_perf CPU 0"
    for r in t.rows:
        name, s, n = r[0], num(r[1]), num(r[2])
        if name.endswith("IOPS"):
            title, lab = "4 KiB QD32 over NVMe/TCP, medians of 5 rounds, %s (2026-12-07) (IOPS)" % place, name.split(",")[0]
            kind = "bar"
        elif name.endswith("MiB/s"):
            title, lab = "128 KiB read QD32 over NVMe/TCP, medians of 5 rounds, %s (2026-12-07) (MiB/s)" % place, "128 KiB read QD32"
            kind = "bar"
        else:
            title, lab = "4 KiB random read QD1 average latency over NVMe/TCP, %s (2026-12-07)" % place, "avg"
            kind = "lat"
        yield kind, title, "SPDK nvmf_tgt", lab, s
        yield kind, title, "nvlendd", lab, n


# STEM: (extractor, the command that measured the table)
CHARTS = {
    "baseline-2026-11-22": (baseline("2026-11-22", "clat"), "bench/baseline.sh"),
    "baseline-2026-12-06": (baseline("2026-12-06", "total latency"), "bench/baseline.sh"),
    "shm-2026-12-06": (shm, "BENCH_RUNTIME=5 BENCH_RAMP=1 bench/shm.sh"),
    "brick-2026-11-22": (brick, "bench/brick.sh"),
    "nbd-2026-12-06": (nbd_hold, "PLACEMENT=split bench/nbd.sh and bench/nbd.sh"),
    "nbd-older-same": (nbd_old("server and fio CPU 0"), "bench/nbd.sh"),
    "nbd-older-split": (nbd_old("server CPU 1, fio CPU 0"), "PLACEMENT=split bench/nbd.sh"),
    "attach": (attach, "QUEUES=2 bench/attach.sh"),
    "tcp-2026-12-05": (tcp("2026-12-05"), "RUNTIME=3 bench/tcp.sh"),
    "tcp-2026-11-22": (tcp("2026-11-22"), "RUNTIME=3 bench/tcp.sh"),
    "rdma-2026-12-07": (rdma, "RUNTIME=8 bench/rdma.sh"),
    "spdk-2026-12-07": (spdk, "DRIVERS=spdk_nvme_perf ROUNDS=5 RUNTIME=2 bench/spdk.sh"),
}


# ---- the document ---------------------------------------------------------------------------
def blocks(lines):
    """{stem: (table_lines, start, end)}: each chart block and the table right above it"""
    out, errs = {}, []
    for i, l in enumerate(lines):
        m = re.fullmatch(r"<!-- chart: (\S+) -->", l.strip())
        if not m:
            continue
        stem = m.group(1)
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "<!-- end chart -->"), None)
        if end is None:
            errs.append("chart block %s has no <!-- end chart -->" % stem)
            continue
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        k = j
        while k >= 0 and lines[k].lstrip().startswith("|"):
            k -= 1
        if k == j:
            errs.append("chart block %s does not follow a table" % stem)
            continue
        if stem in out:
            errs.append("two chart blocks for %s" % stem)
        out[stem] = (lines[k + 1:j + 1], i, end)
    return out, errs


def fmt(v):
    return "%.10g" % v


def points_text(stem, pts, cmd):
    head = ["# Chart data for docs/performance.md: the numbers of the table above the",
            "# <!-- chart: %s --> block, as bench/plot.py points (KIND TITLE SERIES X Y)." % stem,
            "# Measured by %s; not re-measured here. Written by" % cmd,
            "# scripts/render-perf-charts.sh --update; checked against the table by",
            "# tests/functional/bench_plot.sh."]
    return "\n".join(head + ["\t".join([k, t, s, str(x), fmt(y)]) for k, t, s, x, y in pts]) + "\n"


def read_tsv(path):
    pts = []
    for l in open(path):
        l = l.rstrip("\n")
        if l and not l.startswith("#"):
            k, t, s, x, y = l.split("\t")
            pts.append((k, t, s, x, float(y)))
    return pts


def render(path, outdir, stem):
    p = subprocess.run([sys.executable, os.path.join(TOP, "bench/plot.py"), path, outdir, stem],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return None, p.stderr.strip() or p.stdout.strip()
    return [os.path.basename(x) for x in p.stdout.split()], None


def block_text(stem, pts, names, cmd):
    titles = {}
    for k, t, *_ in pts:
        titles["%s-%s-%s.png" % (stem, k, plot.slug(t))] = t
    out = ["<!-- chart: %s -->" % stem]
    out += ["![%s](img/%s)" % (titles.get(n, n), n) for n in names]
    out += ["", "*Drawn from the numbers of the table above ([data](perf-data/%s.tsv), "
            "`scripts/render-perf-charts.sh`), not from a new run; measured by `%s`.*" % (stem, cmd),
            "<!-- end chart -->"]
    return out


def main():
    update = "--update" in args
    check_dir = args[args.index("--check") + 1] if "--check" in args else None
    only = set(args[args.index("--only") + 1].split(",")) if "--only" in args else None
    lines = open(DOC).read().split("\n")
    found, errs = blocks(lines)
    for stem in found:
        if stem not in CHARTS:
            errs.append("chart block %s: no extractor in scripts/render-perf-charts.sh" % stem)
    for stem in CHARTS:
        if stem not in found:
            errs.append("no <!-- chart: %s --> block in docs/performance.md" % stem)
    for f in glob.glob(os.path.join(DATA, "*.tsv")):
        if os.path.basename(f)[:-4] not in found:
            errs.append("%s: no chart block uses it" % os.path.relpath(f, TOP))
    outdir = check_dir or tempfile.mkdtemp(prefix="perf-charts.")
    os.makedirs(outdir, exist_ok=True)
    # later blocks first, so that rewriting one keeps the line numbers of the others
    for stem, (tlines, start, end) in sorted(found.items(), key=lambda kv: -kv[1][1]):
        if stem not in CHARTS or (only and stem not in only):
            continue
        ex, cmd = CHARTS[stem]
        try:
            want = [(k, t, s, str(x), float(y)) for k, t, s, x, y in ex(Table(tlines)) if y is not None]
        except (ValueError, KeyError, IndexError, TypeError, ZeroDivisionError) as e:
            errs.append("%s: cannot read its table: %r" % (stem, e))
            continue
        path = os.path.join(DATA, stem + ".tsv")
        if update:
            os.makedirs(DATA, exist_ok=True)
            open(path, "w").write(points_text(stem, want, cmd))
        if not os.path.exists(path):
            errs.append("%s missing" % os.path.relpath(path, TOP))
            continue
        have = read_tsv(path)
        key = lambda p: p[:4]
        hd, wd = {key(p): p[4] for p in have}, {key(p): p[4] for p in want}
        diff = ["%s: %s in the data file, %s in the table" % (" / ".join(k),
                fmt(hd[k]) if k in hd else "nothing", fmt(wd[k]) if k in wd else "nothing")
                for k in sorted(set(hd) | set(wd))
                if k not in hd or k not in wd or abs(hd[k] - wd[k]) > 1e-9 * max(1.0, abs(wd[k]))]
        if diff or len(have) != len(want):
            errs.append("%s.tsv does not match its table (--update rewrites it):\n    %s"
                        % (stem, "\n    ".join(diff[:8] or ["duplicate points"])))
            continue
        names, err = render(path, outdir, stem)
        if err:
            errs.append("%s.tsv: bench/plot.py failed: %s" % (stem, err))
            continue
        block = block_text(stem, want, names, cmd)
        if update:
            for old in glob.glob(os.path.join(IMG, stem + "-*.png")):
                os.remove(old)
            os.makedirs(IMG, exist_ok=True)
            for n in names:
                shutil.copy(os.path.join(outdir, n), os.path.join(IMG, n))
            lines[start:end + 1] = block
        elif lines[start:end + 1] != block:
            errs.append("chart block %s is not what its data renders (--update rewrites it)" % stem)
        committed = sorted(os.path.basename(p) for p in glob.glob(os.path.join(IMG, stem + "-*.png")))
        for n in sorted(set(names) - set(committed)):
            errs.append("docs/img/%s: rendered from %s.tsv, not in docs/img" % (n, stem))
        for n in sorted(set(committed) - set(names)):
            errs.append("docs/img/%s: no chart of %s.tsv renders it (stale)" % (n, stem))
    if update:
        open(DOC, "w").write("\n".join(lines))
    text = "\n".join(lines)
    for ref in re.findall(r"\]\((img/[^)\s]+)\)", text):
        if not os.path.exists(os.path.join(TOP, "docs", ref)):
            errs.append("docs/performance.md references %s, which does not exist" % ref)
    for ref in re.findall(r"\]\((perf-data/[^)\s]+)\)", text):
        if not os.path.exists(os.path.join(TOP, "docs", ref)):
            errs.append("docs/performance.md references %s, which does not exist" % ref)
    if not check_dir:
        shutil.rmtree(outdir, ignore_errors=True)
    for e in errs:
        print("render-perf-charts: " + e, file=sys.stderr)
    if errs:
        sys.exit(1)
    print("%d chart blocks, %d charts: data files match their tables" % (
        len(found), sum(len(glob.glob(os.path.join(IMG, s + "-*.png")))
                        for s in found if not only or s in only)))


main()
PY
