#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""'make bench', step 2: docs/performance.md and its plots from the results.

usage: bench/perfdoc.py RESULTS TEMPLATE OUT PLOTS

RESULTS is the directory bench/run.sh filled (machine.json, SCENARIO.N.json,
SCENARIO.skipped); TEMPLATE the hand-written text with @@NAME@@ lines where
the measured parts go; OUT the Markdown to write; PLOTS the directory for
the gnuplot plots (PNG and SVG), linked from OUT relative to it.
Only the Python standard library and gnuplot are needed.
"""

import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile


def load(path):
    with open(path) as f:
        return json.load(f)


def runs(results, name):
    """The JSON objects of SCENARIO.1.json, SCENARIO.2.json... in run order."""
    out = []
    for p in glob.glob(os.path.join(results, name + ".*.json")):
        tail = p[len(os.path.join(results, name)) + 1:-len(".json")]
        if tail.isdigit():
            out.append((int(tail), load(p)))
    return [o for _, o in sorted(out, key=lambda t: t[0])]


def skipped(results, name):
    p = os.path.join(results, name + ".skipped")
    if os.path.exists(p):
        with open(p) as f:
            return f.read().strip()
    return None


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ns(v):
    """A duration in ns, with a unit that keeps 3 significant digits."""
    if v is None:
        return "-"
    if v < 1e3:
        return "%.0f ns" % v if v >= 100 else "%.1f ns" % v
    if v < 1e6:
        return "%.1f µs" % (v / 1e3) if v < 1e5 else "%.0f µs" % (v / 1e3)
    if v < 1e9:
        return "%.2f ms" % (v / 1e6)
    return "%.2f s" % (v / 1e9)


def shown_ns(v):
    """A duration as ns() shows it, back in ns: targets are judged on what the
    tables show (a p50 of 2 clock steps of 10.015 ns reads "20.0 ns")."""
    num, unit = ns(v).split()
    return float(num) * {"ns": 1, "µs": 1e3, "ms": 1e6, "s": 1e9}[unit]


def rate(v):
    if v is None:
        return "-"
    if v >= 1e6:
        return "%.2f M" % (v / 1e6)
    if v >= 1e3:
        return "%.1f k" % (v / 1e3)
    return "%.0f" % v


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


def bold(row):
    return ["**%s**" % c if c not in ("", "-") else c for c in row]


class Doc:
    def __init__(self, results, plots, out):
        self.results = results
        self.plots = plots
        self.rel = os.path.relpath(plots, os.path.dirname(os.path.abspath(out)))
        self.machine = load(os.path.join(results, "machine.json"))
        self.peers = None
        p = os.path.join(results, "peers.json")
        if os.path.exists(p):
            self.peers = load(p)
        self.gnuplot = shutil.which("gnuplot")
        self.made = []

    # ---- plots ---------------------------------------------------------
    def plot(self, name, script, data):
        """Render script (gnuplot, after a terminal line) to PLOTS/name.png and .svg."""
        if not self.gnuplot:
            raise SystemExit("perfdoc: gnuplot not found (apt-get install gnuplot-nox)")
        os.makedirs(self.plots, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            for fname, text in data.items():
                with open(os.path.join(tmp, fname), "w") as f:
                    f.write(text)
            for term, ext in (("pngcairo size 900,540 font 'sans,10'", "png"),
                              ("svg size 900,540 dynamic font 'sans,10'", "svg")):
                out = os.path.join(os.path.abspath(self.plots), name + "." + ext)
                full = ("set terminal %s noenhanced\nset output '%s'\n%s\n"
                        % (term, out, script))
                subprocess.run([self.gnuplot], input=full, text=True, cwd=tmp, check=True)
        self.made.append(name)
        return "![%s](%s/%s.svg)\n\n(PNG: [%s/%s.png](%s/%s.png))" % (
            name, self.rel, name, self.rel, name, self.rel, name)

    # ---- sections ------------------------------------------------------
    def MACHINE(self):
        m = self.machine
        rows = [
            ("CPUs (`nproc`)", m["nproc"]),
            ("CPU model", m["cpu"]),
            ("kernel", m["kernel"]),
            ("memory", m["memory"]),
            ("file system of the benchmark directory", "`%s`" % m["filesystem"]),
            ("disk", m["disk"]),
            ("compiler", "%s, `%s`" % (m["compiler"], m["cflags"] or "default CFLAGS")),
            ("walrec", "%s (commit %s)" % (m["walrec"], m["commit"] or "unknown")),
            ("date", m["date"]),
            ("load average at start / end", "%s / %s" % (m["loadavg_start"],
                                                          m.get("loadavg_end", "?"))),
        ]
        text = table(["", ""], rows)
        text += ("\n\nA small virtual machine varies from run to run even when nothing "
                 "else runs on it (its host's other guests, the virtual disk): single "
                 "runs of the same binary differ by up to 4x in throughput, and the "
                 "tails (p99.99, max) mostly show the machine, as the recorder's "
                 "\"machine's longest stall\" column does. Every figure is a median "
                 "of %s runs (interleaved across systems for the peer comparison), "
                 "and the individual runs are listed where they are few; the load "
                 "average above says whether other jobs shared the CPUs." % m["runs"])
        if m.get("quick") == "1":
            text += ("\n\n**These results come from `BENCH_QUICK=1` (tiny counts): "
                     "they check the pipeline, not the machine.**")
        return text

    def _runs_table(self, name, cols):
        rs = runs(self.results, name)
        why = skipped(self.results, name)
        if not rs:
            return None, "Not measured: %s." % (why or "no results")
        rows = []
        for i, r in enumerate(rs, 1):
            rows.append([i] + [f(r) for _, f, _ in cols])
        medrow = ["median"]
        for _, f, key in cols:
            if key is None:
                medrow.append("")
                continue
            v = med([r.get(key) for r in rs])
            medrow.append(f({key: v}) if v is not None else "-")
        rows.append(bold(medrow))
        return rs, table(["run"] + [h for h, _, _ in cols], rows)

    def APPEND(self):
        cols = [
            ("events/s", lambda r: rate(r.get("events_per_s")), "events_per_s"),
            ("p50", lambda r: ns(r.get("p50_ns")), "p50_ns"),
            ("p99", lambda r: ns(r.get("p99_ns")), "p99_ns"),
            ("p99.9", lambda r: ns(r.get("p999_ns")), "p999_ns"),
            ("p99.99", lambda r: ns(r.get("p9999_ns")), "p9999_ns"),
            ("max", lambda r: ns(r.get("max_ns")), "max_ns"),
            ("mean", lambda r: ns(r.get("mean_ns")), "mean_ns"),
            ("seal", lambda r: ns(r.get("seal_ns_avg")), "seal_ns_avg"),
            ("open_new", lambda r: ns((r.get("open_new_ms_avg") or 0) * 1e6),
             "open_new_ms_avg"),
        ]
        rs, text = self._runs_table("append", cols)
        if not rs:
            return text
        r0 = rs[0]
        text = ("Each run: %s events per pass, segments of %s blocks, %s rotations "
                "over both passes; timer overhead %s subtracted, tick clock step %s.\n\n"
                % ("{:,}".format(r0["events"]), r0.get("blocks_per_segment"),
                   r0.get("rotations"), ns(med([r.get("timer_overhead_ns") for r in rs])),
                   ns(med([r.get("clock_step_ns") for r in rs])))) + text
        return text

    def RECORDER(self):
        cols = [
            ("events/s", lambda r: rate(r.get("events_per_s")), "events_per_s"),
            ("p50", lambda r: ns(r.get("p50_ns")), "p50_ns"),
            ("p99", lambda r: ns(r.get("p99_ns")), "p99_ns"),
            ("p99.9", lambda r: ns(r.get("p999_ns")), "p999_ns"),
            ("p99.99", lambda r: ns(r.get("p9999_ns")), "p9999_ns"),
            ("max", lambda r: ns(r.get("max_ns")), "max_ns"),
            ("rotations", lambda r: r.get("rotations", "-"), None),
            ("waited for the preparer", lambda r: r.get("rotation_waits", "-"), None),
            ("waited for the flusher", lambda r: r.get("stage_waits", "-"), None),
            ("machine's longest stall", lambda r: ns(r.get("machine_max_gap_ns")),
             "machine_max_gap_ns"),
        ]
        rs, text = self._runs_table("recorder", cols)
        if not rs:
            return text
        return ("Each run: %s events per pass, %s-block segments.\n\n"
                % ("{:,}".format(rs[0]["events"]), rs[0].get("blocks"))) + text

    def DURABLE(self):
        rs = runs(self.results, "durable")
        if not rs:
            return "Not measured: %s." % (skipped(self.results, "durable") or "no results")
        ks = [x["k"] for x in rs[0]["results"]]
        rows = []
        for i, r in enumerate(rs, 1):
            row = [i, ns(r.get("baseline_fdatasync_p50_ns"))]
            for x in r["results"]:
                row += [rate(x["events_per_s"]), ns(x["ack_p50_ns"])]
            rows.append(row)
        medrow = ["median", ns(med([r.get("baseline_fdatasync_p50_ns") for r in rs]))]
        for j in range(len(ks)):
            medrow += [rate(med([r["results"][j]["events_per_s"] for r in rs])),
                       ns(med([r["results"][j]["ack_p50_ns"] for r in rs]))]
        rows.append(bold(medrow))
        head = ["run", "pwrite+fdatasync p50"]
        for k in ks:
            head += ["K=%d events/s" % k, "K=%d ack p50" % k]
        return table(head, rows)

    def _targets(self, items):
        """items: (text, value or None, ok(value)); one line saying which are met."""
        parts = []
        for text, v, ok in items:
            if v is None:
                parts.append("%s (not measured)" % text)
            else:
                parts.append("%s (%s)" % (text, "met" if ok(v) else "**not met**"))
        return "Targets, judged on the medians above as shown: " + "; ".join(parts) + "."

    def APPEND_TARGETS(self):
        rs = runs(self.results, "append")
        g = lambda k: med([r.get(k) for r in rs]) if rs else None
        return self._targets([
            (">= 35 M events/s", g("events_per_s"), lambda v: v >= 35e6),
            ("p50 <= 20 ns", g("p50_ns"), lambda v: shown_ns(v) <= 20),
            ("p99.9 <= 250 ns", g("p999_ns"), lambda v: shown_ns(v) <= 250)])

    def RECORDER_TARGETS(self):
        rs = runs(self.results, "recorder")
        g = lambda k: med([r.get(k) for r in rs]) if rs else None
        return self._targets([
            (">= 30 M events/s", g("events_per_s"), lambda v: v >= 30e6),
            ("p99.99 <= 5 µs", g("p9999_ns"), lambda v: shown_ns(v) <= 5e3),
            ("max <= 200 µs", g("max_ns"), lambda v: shown_ns(v) <= 200e3)])

    def DURABLE_TARGETS(self):
        rs = runs(self.results, "durable")
        base = med([r.get("baseline_fdatasync_p50_ns") for r in rs]) if rs else None

        def k(n, key):
            vals = [x[key] for r in rs for x in r["results"] if x["k"] == n]
            return med(vals) if vals else None
        k1 = k(1, "ack_p50_ns") if rs else None
        return self._targets([
            ("K=1 ack p50 <= 1.5× the baseline", (k1 / base) if k1 and base else None,
             lambda v: v <= 1.5),
            ("K=256 >= 1 M events/s", k(256, "events_per_s") if rs else None,
             lambda v: v >= 1e6)])

    def IPC_TARGETS(self):
        one = self._ipc_points().get(1, [])
        paced = runs(self.results, "ipc-rate")
        dur = runs(self.results, "ipc-durable")
        m = lambda rs, key: med([r.get(key) for r in rs]) if rs else None
        ack, base = m(dur, "ack_p50_ns"), m(dur, "baseline_fdatasync_p50_ns")
        return self._targets([
            ("one producer >= 20 M events/s", m(one, "events_per_s"), lambda v: v >= 20e6),
            ("producer append p50 <= 20 ns", m(one, "producer_p50_ns"),
             lambda v: shown_ns(v) <= 20),
            ("producer append p99.9 <= 300 ns", m(one, "producer_p999_ns"),
             lambda v: shown_ns(v) <= 300),
            ("append to log p50 <= 2 µs (paced, busy-polling)", m(paced, "e2e_p50_ns"),
             lambda v: shown_ns(v) <= 2000),
            ("durable ack p50 <= 1.5× the baseline", (ack / base) if ack and base else None,
             lambda v: v <= 1.5)])

    def _ipc_points(self):
        """{producers: [run objects]} from ipc.pP.N.json (or one file with a results list)."""
        pts = {}
        for p in glob.glob(os.path.join(self.results, "ipc.p*.json")):
            o = load(p)
            items = o.get("results") if isinstance(o.get("results"), list) else [o]
            for it in items:
                n = it.get("producers")
                if n is not None:
                    pts.setdefault(int(n), []).append(it)
        return pts

    def IPC(self):
        pts = self._ipc_points()
        if not pts:
            return "Not measured: %s." % (skipped(self.results, "ipc") or "no results")
        rows = []
        for n in sorted(pts):
            rs = pts[n]
            rows.append([n, len(rs), rate(med([r.get("events_per_s") for r in rs])),
                         ns(med([r.get("producer_p50_ns") for r in rs])),
                         ns(med([r.get("producer_p999_ns") for r in rs])),
                         ns(med([r.get("e2e_p50_ns") for r in rs]))])
        text = table(["producers", "runs", "events/s", "producer append p50",
                      "producer append p99.9", "append to log p50"], rows)
        paced = runs(self.results, "ipc-rate")
        if paced:
            text += ("\n\nAt a given load (one producer paced at %s events/s, the drain "
                     "thread busy-polling, %d runs): append to log p50 %s, p99 %s; "
                     "producer append p50 %s, p99.9 %s." % (
                         rate(med([r.get("rate_per_producer") for r in paced])), len(paced),
                         ns(med([r.get("e2e_p50_ns") for r in paced])),
                         ns(med([r.get("e2e_p99_ns") for r in paced])),
                         ns(med([r.get("producer_p50_ns") for r in paced])),
                         ns(med([r.get("producer_p999_ns") for r in paced]))))
        dur = runs(self.results, "ipc-durable")
        if dur:
            ack = med([r.get("ack_p50_ns") for r in dur])
            base = med([r.get("baseline_fdatasync_p50_ns") for r in dur])
            idle = med([r.get("baseline_drain_cpu_fdatasync_p50_ns") for r in dur])
            ratio = lambda b: " (%.2f×)" % (ack / b) if ack and b else ""
            text += ("\n\nDurable acknowledgement across processes (one producer, "
                     "`--durable-every 1`, %d runs, the drain thread on the CPU that "
                     "takes the disk's completions): `walrec_producer_wait_durable` p50 "
                     "%s, beside a pwrite + fdatasync p50 of %s measured by the producer "
                     "in the same runs%s" % (len(dur), ns(ack), ns(base), ratio(base)))
            if idle:
                text += (" and of %s on the drain's CPU before each run, nothing else "
                         "running%s" % (ns(idle), ratio(idle)))
            text += "."
        # Single-writer peers for scale: what one thread gets without walrec.
        refs = []
        for sysname, mode in (("write", "nosync"), ("sqlite", "wal-off-txn1"),
                              ("leveldb", "sync-false"), ("rocksdb", "sync-false")):
            r = self._peer(sysname, mode)
            if r:
                refs.append(("%s %s (1 thread)" % (sysname, mode), r["events_per_s"]))
        xs = sorted(pts)
        data = "".join("%d %g\n" % (n, med([r.get("events_per_s") for r in pts[n]]))
                       for n in xs)
        script = ["set title 'Throughput vs producer processes (64-byte events)'",
                  "set xlabel 'producer processes'", "set ylabel 'events/s'",
                  "set logscale y", "set grid", "set key below",
                  "set xrange [0.5:%g]" % (max(xs) + 0.5), "set xtics (%s)" %
                  ", ".join(str(x) for x in xs)]
        plots = ["'ipc.dat' using 1:2 with linespoints lw 2 pt 7 title 'walrec (channel)'"]
        for i, (label, v) in enumerate(refs):
            plots.append("%g with lines dt %d lw 1.5 title '%s'" % (v, i + 2, label))
        script.append("plot " + ", \\\n  ".join(plots))
        img = self.plot("ipc-throughput", "\n".join(script), {"ipc.dat": data})
        return text + "\n\n" + img

    def REPLAY(self):
        rs = runs(self.results, "replay")
        if not rs:
            return "Not measured: %s." % (skipped(self.results, "replay") or "no results")
        keys = [("hot_events_per_s", "hot events/s", rate),
                ("cold_events_per_s", "cold events/s", rate),
                ("seek_p99_ns", "seek p99", ns),
                ("boundary_p99_ns", "segment boundary p99", ns)]
        rows = [[i] + [f(r.get(k)) for k, _, f in keys] for i, r in enumerate(rs, 1)]
        rows.append(bold(["median"] + [f(med([r.get(k) for r in rs])) for k, _, f in keys]))
        return table(["run"] + [h for _, h, _ in keys], rows)

    def IDLE(self):
        p = os.path.join(self.results, "idle.json")
        if not os.path.exists(p):
            return "Not measured: %s." % (skipped(self.results, "idle") or "no results")
        o = load(p)
        rows = [[r["process"], "%.1f s" % r["seconds"], "%.2f ms" % r["cpu_ms"],
                 "%.3f %%" % r["cpu_percent"], "%.1f" % r["wakeups_per_s"], r["threads"]]
                for r in o["results"] if r.get("ok")]
        return table(["recorder", "window", "CPU time", "of one core", "wakeups/s",
                      "threads"], rows)

    def TELEMETRY(self):
        p = os.path.join(self.results, "telemetry.json")
        if not os.path.exists(p):
            return "Not measured: %s." % (skipped(self.results, "telemetry") or "no results")
        o = load(p)
        rows = [["events/s (wall clock)", rate(o.get("events_per_s_without_reader")),
                 rate(o.get("events_per_s_with_reader")), "%.3f" % o.get("ratio", 0)],
                ["events per producer CPU second", rate(o.get("events_per_cpu_s_without_reader")),
                 rate(o.get("events_per_cpu_s_with_reader")), "%.3f" % o.get("ratio_cpu", 0)]]
        text = ("%s producer(s), %s events per run, %s pairs of runs (medians), snapshots "
                "every %s, the reader at %.0f copies a second.\n\n" % (
                    o.get("producers"), "{:,}".format(o.get("events", 0)), o.get("pairs"),
                    ns(o.get("snapshot_interval_ns")), o.get("reader_reads_per_s", 0)))
        return text + table(["", "without reader", "with a 1 kHz reader", "ratio"], rows)

    def _peer(self, system, mode):
        if not self.peers:
            return None
        for r in self.peers["results"]:
            if r["system"] == system and r["mode"] == mode and r.get("runs_ok"):
                return r
        return None

    def PEERS(self):
        if not self.peers:
            return "Not measured: %s." % (skipped(self.results, "peers") or "no results")
        pr = self.peers
        ratios = {(x["system"], x["mode"]): x for x in pr.get("ratios", [])}
        rows = []
        for r in pr["results"]:
            if not r.get("runs_ok"):
                rows.append([r["system"], r["mode"], "failed: " + r.get("error", "")] +
                            [""] * 7)
                continue
            x = ratios.get((r["system"], r["mode"]))
            ack = "durable" if r["durable"] else "accepted"
            rows.append([
                r["system"], "`%s`" % r["mode"], ack, r["batch"],
                "{:,}".format(r["records"]), rate(r["events_per_s"]), ns(r["p50_ns"]),
                ns(r["p99_ns"]), ns(r["p999_ns"]),
                ("%.2f× (%s)" % (x["throughput_ratio"], x["walrec_mode"])) if x else "",
            ])
        text = ("%d-byte records; no-sync cases %s records per pass, durable cases %s "
                "syncs per pass (K × %s records, at most %s); medians of %s interleaved "
                "runs; in `%s` (%s).\n\n" % (
                    pr["record_bytes"], "{:,}".format(pr["events"]),
                    "{:,}".format(pr["syncs"]), "{:,}".format(pr["syncs"]),
                    "{:,}".format(pr["events"]), pr["runs"], pr["dir"],
                    pr["filesystem"]))
        text += table(["system", "mode", "ack", "K", "records", "events/s", "p50", "p99",
                       "p99.9", "walrec ÷ peer (events/s)"], rows)
        for s in pr.get("skipped", []):
            text += "\n\nSkipped %s: %s." % (s["system"], s["reason"])
        return text

    def PLOT_APPEND(self):
        """Append latency percentiles, walrec beside the no-sync peers."""
        series = []
        ap = runs(self.results, "append")
        if ap:
            series.append(("walrec SegmentWriter append",
                           [med([r.get(k) for r in ap]) for k in
                            ("p50_ns", "p99_ns", "p999_ns", "p9999_ns")]))
        rc = runs(self.results, "recorder")
        if rc:
            series.append(("walrec recorder append",
                           [med([r.get(k) for r in rc]) for k in
                            ("p50_ns", "p99_ns", "p999_ns", "p9999_ns")]))
        for system, mode, label in (("write", "nosync", "write() per record"),
                                    ("sqlite", "wal-off-txn1", "SQLite WAL, sync OFF"),
                                    ("leveldb", "sync-false", "LevelDB sync=false"),
                                    ("rocksdb", "sync-false", "RocksDB sync=false")):
            r = self._peer(system, mode)
            if r:
                series.append((label, [r["p50_ns"], r["p99_ns"], r["p999_ns"],
                                       r["p9999_ns"]]))
        if not series:
            return "No append results to plot."
        data = ""
        for i, q in enumerate(("p50", "p99", "p99.9", "p99.99")):
            data += "%s %s\n" % (q, " ".join("%g" % max(s[1][i] or 0.5, 0.5)
                                             for s in series))
        script = ["set title 'Append latency percentiles, one 64-byte record (no sync)'",
                  "set ylabel 'ns (log scale)'", "set logscale y", "set grid ytics",
                  "set style data histograms", "set style histogram clustered gap 1",
                  "set style fill solid 0.8 border -1", "set boxwidth 0.9",
                  "set key below", "set yrange [1:*]"]
        plots = ["'append.dat' using %d:xtic(1) title '%s'" % (i + 2, s[0])
                 for i, s in enumerate(series)]
        script.append("plot " + ", \\\n  ".join(plots))
        return self.plot("append-latency", "\n".join(script), {"append.dat": data})

    def PLOT_DURABLE(self):
        """Durable acknowledgement latency (p50) vs records per sync."""
        if not self.peers:
            return "No peer results to plot."
        families = [("walrec", "walrec append + walrec_recorder_sync",
                     lambda k: "sync-%d" % k),
                    ("write", "write() + fdatasync", lambda k: "fdatasync-%d" % k),
                    ("sqlite", "SQLite WAL, synchronous=FULL", lambda k: "wal-full-txn%d" % k),
                    ("leveldb", "LevelDB sync=true",
                     lambda k: "sync-true" if k == 1 else "sync-true-batch%d" % k),
                    ("rocksdb", "RocksDB sync=true",
                     lambda k: "sync-true" if k == 1 else "sync-true-batch%d" % k)]
        data = {}
        plots = []
        for system, label, mode in families:
            lines = ""
            for k in (1, 16, 256):
                r = self._peer(system, mode(k))
                if r:
                    lines += "%d %g %g\n" % (k, r["p50_ns"] / 1e3, r["p99_ns"] / 1e3)
            if lines:
                fname = "durable-%s.dat" % system
                data[fname] = lines
                plots.append("'%s' using 1:2 with linespoints lw 2 pt 7 title '%s'"
                             % (fname, label))
        script = ["set title 'Durable acknowledgement latency (p50) vs records per sync'",
                  "set xlabel 'records per sync or commit (K)'",
                  "set ylabel 'µs from the first record to the acknowledgement'",
                  "set logscale x 2", "set xtics (1, 16, 256)", "set grid",
                  "set logscale y", "set key below", "set xrange [0.8:320]"]
        script.append("plot " + ", \\\n  ".join(plots))
        return self.plot("durable-ack", "\n".join(script), data)

    def COMMAND(self):
        m = self.machine
        return ("Regenerate with `make bench` in a build directory (needs python3 and "
                "gnuplot: `apt-get install python3 gnuplot-nox`; for the peers "
                "`libsqlite3-dev libleveldb-dev librocksdb-dev` before `configure`). "
                "It runs every scenario of `walrec bench --help` with `--json` into "
                "`bench-results/` (benchmark data in `bench-data/`, on the disk of the "
                "build directory, or `make bench BENCH_WORKDIR=DIR`), %s runs each "
                "(`BENCH_RUNS=N`), then writes this file and the plots in "
                "`docs/plots/` from `bench/performance.md.tmpl`." % m["runs"])


def main(argv):
    if len(argv) != 5:
        sys.stderr.write(__doc__)
        return 2
    results, template, out, plots = argv[1:]
    doc = Doc(results, plots, out)
    lines = []
    with open(template) as f:
        for line in f:
            s = line.strip()
            if s.startswith("@@") and s.endswith("@@") and len(s) > 4:
                fn = getattr(doc, s[2:-2], None)
                if fn is None:
                    raise SystemExit("perfdoc: %s: unknown section %s" % (template, s))
                lines.append(fn() + "\n")
            else:
                lines.append(line)
    with open(out + ".tmp", "w") as f:
        f.write("".join(lines))
    os.replace(out + ".tmp", out)
    print("perfdoc: wrote %s and %d plots in %s" % (out, len(doc.made), plots))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
