#!/usr/bin/python3
"""Where the time of a packet goes, per tracker: the host's perf samples of the VM (`make
bench` with BENCH_PROFILE=1) split by measured run and by function, in nanoseconds per
packet: established-flow packets, TCP segments and new flows (part A's runs) and
new-flow packets (part B's fills, against part A's no-tracker run over new tuples).

  profile.py RUN_DIR VMLINUX

RUN_DIR holds perf.data (sampled on CLOCK_REALTIME, as the guest's clock reads) and
bench/raw.tsv (each run's start and end, packets and time) and bench/sections.txt (where
the modules' code lay). VMLINUX is the UML kernel binary (its symbols are the process's
own). A function's share of a run's samples times that run's ns per packet is its cost;
the tables show each configuration's median over its runs, and the difference from the
run without a tracker: what the tracker adds, function by function. Prints Markdown.
"""
import bisect
import collections
import os
import re
import statistics
import subprocess
import sys


def symbols_of(path, sections):
    """[(start, end, name)] of the functions of an ELF file, per section name."""
    out = subprocess.run(["objdump", "-t", path], capture_output=True, text=True).stdout
    by_sec = collections.defaultdict(list)
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 6 or parts[-3] not in sections:
            continue
        try:
            addr, size = int(parts[0], 16), int(parts[-2], 16)
        except ValueError:
            continue
        if size:
            by_sec[parts[-3]].append((addr, addr + size, parts[-1]))
    return by_sec


def demangle(name):
    """A short name for a Rust v0 symbol: its last identifiers (length-prefixed), without
    the crate's; other names as they are."""
    if not name.startswith("_R"):
        return name
    idents, i, generic_at = [], 2, None
    while i < len(name):
        if name.startswith("Cs", i):
            # A crate's disambiguator: base-62 digits up to "_".
            i = name.find("_", i) + 1 or len(name)
            continue
        m = re.match(r"(\d+)", name[i:])
        if not m:
            i += 1
            continue
        n, j = int(m.group(1)), i + len(m.group(1))
        if name.startswith("_", j):
            # A back-reference or disambiguator (base 62, ends with "_"), no identifier.
            i = j + 1
            continue
        word = name[j:j + n]
        if n and len(word) == n and re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", word):
            idents.append(word)
            i = j + n
            # A generic function's arguments follow its name ("I...E"): name the function,
            # with the last identifier of its arguments.
            if name.startswith("_RI") and generic_at is None and name.startswith("I", i):
                generic_at = len(idents)
        else:
            i = j
    skip = ("rust_conntrack_rs", "core", "kernel")
    if generic_at is not None:
        fn = [w for w in idents[:generic_at] if w not in skip][-2:]
        return "%s<%s>" % ("::".join(fn), idents[-1])
    idents = [w for w in idents if w not in skip]
    return "::".join(idents[-3:]) if idents else name


class Resolver:
    def __init__(self, vmlinux, sections_file):
        self.ranges = []  # (start, end, label)
        kern = symbols_of(vmlinux, {".text"})
        for a, b, n in kern.get(".text", []):
            self.ranges.append((a, b, n))
        self.loads = []  # (time, [(start, end, label)])
        per_load = collections.defaultdict(list)
        if os.path.exists(sections_file):
            with open(sections_file) as f:
                for line in f:
                    p = line.split()
                    if len(p) == 5:
                        per_load[(p[0], p[1], p[2])].append((p[3], int(p[4], 16)))
        cache = {}
        for (t, mod, ko), secs in sorted(per_load.items(), key=lambda kv: float(kv[0][0])):
            if ko not in cache:
                cache[ko] = symbols_of(ko, {s for s, _ in secs}) if os.path.exists(ko) else {}
            rs = []
            for sec, base in secs:
                for a, b, n in cache[ko].get(sec, []):
                    rs.append((base + a, base + b, "%s [%s]" % (demangle(n), mod)))
            rs.sort()
            self.loads.append((float(t), mod, ([r[0] for r in rs], rs)))
        self.ranges.sort()
        self.starts = [r[0] for r in self.ranges]

    def resolve(self, t, ip):
        # The modules loaded at time t: the latest load of each before t.
        latest = {}
        for lt, mod, rs in self.loads:
            if lt <= t:
                latest[mod] = rs
        for starts, rs in latest.values():
            i = bisect.bisect_right(starts, ip) - 1
            if i >= 0 and rs[i][0] <= ip < rs[i][1]:
                return rs[i][2]
        i = bisect.bisect_right(self.starts, ip) - 1
        if i >= 0 and self.ranges[i][0] <= ip < self.ranges[i][1]:
            return self.ranges[i][2]
        return "(other)"


def read_runs(bdir):
    """Measured runs as (kind, cfg, t0, t1, ns per unit): kind "est" for part A's
    established-flow runs (ns per packet, every configuration), "tcp" for its TCP runs
    (ns per segment), "newa" for its paired new-flow runs (ns per packet, every packet a new
    tuple), "new" for the new-flow runs of part B (ns per packet: part A's no-tracker run
    over the same kind of tuples as "none", part B's fills as the tracker's)."""
    vals = collections.defaultdict(list)
    with open(os.path.join(bdir, "raw.tsv")) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) == 5:
                vals[(p[0], p[1], p[2], p[3])].append(p[4])
    runs = []

    def add(kind, cfg, times, usec, pkts):
        for i, tt in enumerate(times):
            t0, t1 = (float(x) for x in tt.split(","))
            if i < len(usec) and i < len(pkts) and float(pkts[i]) > 0:
                runs.append((kind, cfg, t0, t1, float(usec[i]) * 1000.0 / float(pkts[i])))

    for (rnd, part, cfg, metric), v in vals.items():
        if part == "A" and metric in ("est_t", "tcp_t", "newa_t"):
            key = metric[: -len("_t")]
            add(key, cfg, v, vals.get((rnd, part, cfg, key + "_usec"), []),
                vals.get((rnd, part, cfg, key + "_pkts"), []))
        elif part == "A" and metric == "newflow_t":
            add("new", cfg, v, vals.get((rnd, part, cfg, "newflow_usec"), []),
                vals.get((rnd, part, cfg, "newflow_pkts"), []))
        elif part == "B" and metric.startswith("fill_t_"):
            size = metric[len("fill_t_"):]
            # Per packet sent, as the no-tracker run's (every packet a new tuple).
            add("new", cfg, v, vals.get((rnd, part, cfg, "fill_usec_" + size), []),
                vals.get((rnd, part, cfg, "fill_new_" + size), []))
    return runs


def main():
    run_dir, vmlinux = sys.argv[1:3]
    bdir = os.path.join(run_dir, "bench")
    runs = read_runs(bdir)
    res = Resolver(vmlinux, os.path.join(bdir, "sections.txt"))
    out = subprocess.run(["perf", "script", "-i", os.path.join(run_dir, "perf.data"),
                          "-F", "time,ip", "--ns"], capture_output=True, text=True).stdout
    samples = []
    for line in out.splitlines():
        p = line.replace(":", " ").split()
        if len(p) >= 2:
            try:
                samples.append((float(p[0]), int(p[1], 16)))
            except ValueError:
                pass
    samples.sort()
    times = [s[0] for s in samples]
    print()
    print("## Where the time goes (host perf profile, BENCH_PROFILE=1)")
    section(res, samples, times, [r[1:] for r in runs if r[0] == "est"],
            "established flow (part A)", "packet")
    section(res, samples, times, [r[1:] for r in runs if r[0] == "tcp"],
            "TCP established flow (part A)", "segment")
    section(res, samples, times, [r[1:] for r in runs if r[0] == "newa"],
            "new flows, paired (part A)", "new flow")
    section(res, samples, times, [r[1:] for r in runs if r[0] == "new"],
            "new flows (part B's fills; no tracker: part A's new-flow run)", "new entry")


def section(res, samples, times, runs, title, unit):
    """Prints the profile of RUNS, (cfg, t0, t1, ns per unit) each."""
    # cfg -> function -> [ns per unit, one per run]
    cost = collections.defaultdict(lambda: collections.defaultdict(list))
    nruns = collections.Counter()
    for cfg, t0, t1, nspp in runs:
        lo, hi = bisect.bisect_left(times, t0), bisect.bisect_right(times, t1)
        window = samples[lo:hi]
        if len(window) < 100:
            continue
        nruns[cfg] += 1
        counts = collections.Counter(res.resolve(t, ip) for t, ip in window)
        for fn, c in counts.items():
            cost[cfg][fn].append(nspp * c / len(window))

    def med(cfg, fn):
        v = cost[cfg].get(fn, [])
        # A run with no sample in fn counts as 0.
        v = v + [0.0] * (nruns[cfg] - len(v))
        return statistics.median(v) if v else 0.0

    print()
    print("### %s" % (title[:1].upper() + title[1:]))
    print()
    if not nruns:
        print("No run had enough samples (is perf allowed to sample the VM?).")
        return
    print("Samples of the VM's main process (cpu-clock, 2 kHz) inside each measured run, by "
          "function; a function's share of its run's samples times the run's ns/%s, median "
          "over the runs (n: %s). Added: against the runs without a tracker. "
          "`[module]` marks module code; other names are the kernel's." %
          (unit, ", ".join("%s %d" % (c, nruns[c]) for c in sorted(nruns))))
    for cfg in ("ours", "nf"):
        if cfg not in nruns:
            continue
        fns = set(cost[cfg]) | set(cost["none"])
        added = sorted(((med(cfg, fn) - med("none", fn), fn) for fn in fns), reverse=True)
        total = statistics.median([r[3] for r in runs if r[0] == cfg])
        base = statistics.median([r[3] for r in runs if r[0] == "none"]) if nruns["none"] else 0
        print()
        print("#### %s: %.0f ns/%s, %.0f added over no tracker" %
              ("rust_conntrack" if cfg == "ours" else "nf_conntrack", total, unit, total - base))
        print()
        print("| function | ns/%s | added |" % unit)
        print("|---|---|---|")
        shown = 0
        for d, fn in added:
            if shown == 20 or d < 1.0:
                break
            print("| `%s` | %.1f | %+.1f |" % (fn, med(cfg, fn), d))
            shown += 1
        mod = sum(med(cfg, fn) for fn in cost[cfg] if fn.endswith("]"))
        print("| all module code (`[...]`) | %.1f | |" % mod)


if __name__ == "__main__":
    main()
