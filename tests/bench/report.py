#!/usr/bin/python3
"""Host side of `make bench`: turns the guest's raw figures (tests/bench/bench.sh) into
the results table (Markdown) and the cost-against-table-size plot.

  report.py RUN_DIR HOST_INFO OUT_MD OUT_PNG

RUN_DIR is the VM run's output directory (RUN_DIR/bench/raw.tsv, notes.txt, meta.txt);
HOST_INFO has "key: value" lines from scripts/bench (date, CPU model, load samples...).
Every figure is a median over the runs with their min and max; differences ("added
cost") are taken run by run within a round, then summarised. bench/README.md explains
each row.
"""
import collections
import os
import math
import statistics
import sys


def load_raw(path):
    data = collections.defaultdict(list)  # (round, part, config, metric) -> [values]
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 5:
                continue
            rnd, part, cfg, metric, value = parts
            data[(rnd, part, cfg, metric)].append(value)
    return data


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


class Stat:
    def __init__(self, values):
        self.values = [v for v in values if v is not None]

    def ok(self):
        return bool(self.values)

    def med(self):
        return statistics.median(self.values) if self.values else None

    def fmt(self, digits=0, scale=1.0, unit=""):
        if not self.values:
            return "n/a"
        f = "%%.%df" % digits
        med = f % (self.med() * scale)
        if len(self.values) == 1:
            return "%s%s (1 run)" % (med, unit)
        return "%s%s (%s–%s, n=%d)" % (med, unit, f % (min(self.values) * scale),
                                       f % (max(self.values) * scale), len(self.values))


def median_ci(values, level=0.95):
    """A distribution-free interval for the median: the order statistics x(k), x(n+1-k)
    with k the largest rank such that P(Binomial(n, 1/2) < k) <= (1 - level) / 2. None
    when n is too small for any such k (n < 6 at 95 %)."""
    xs = sorted(values)
    n = len(xs)
    alpha = (1.0 - level) / 2.0
    cdf, k = 0.0, 0
    for j in range(n + 1):
        # P(B <= j)
        cdf += math.comb(n, j) / 2.0 ** n
        if cdf > alpha:
            break
        k = j + 1
    if k < 1:
        return None
    return xs[k - 1], xs[n - k]


def fmt_ci(st, digits=0):
    """Median [95 % interval] (min–max, n): for the differences the ratios are made of."""
    if not st.ok():
        return "n/a"
    f = "%%.%df" % digits
    ci = median_ci(st.values)
    inner = "[%s…%s] " % (f % ci[0], f % ci[1]) if ci else ""
    return "%s %s(%s–%s, n=%d)" % (f % st.med(), inner, f % min(st.values),
                                    f % max(st.values), len(st.values))


def ratio(a, b, digits=2):
    if not a.ok() or not b.ok() or not b.med():
        return "—"
    return "%.*f" % (digits, a.med() / b.med())


def read_kv(path):
    kv = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if ": " in line:
                    k, v = line.rstrip("\n").split(": ", 1)
                    kv[k] = v
    return kv


def main():
    run_dir, host_info, out_md, out_png = sys.argv[1:5]
    bdir = os.path.join(run_dir, "bench")
    data = load_raw(os.path.join(bdir, "raw.tsv"))
    meta = read_kv(os.path.join(bdir, "meta.txt"))
    host = read_kv(host_info)
    notes = []
    if os.path.exists(os.path.join(bdir, "notes.txt")):
        with open(os.path.join(bdir, "notes.txt")) as f:
            notes = [line.rstrip("\n") for line in f if line.strip()]

    rounds_a = sorted({k[0] for k in data if k[1] == "A"})
    rounds_b = sorted({k[0] for k in data if k[1] == "B"})

    def get(rnd, part, cfg, metric):
        return data.get((rnd, part, cfg, metric), [])

    # ns per packet of each run; keyed per round for pairing.
    def ns_runs(rnd, part, cfg, usec_key, pkts_key):
        us = get(rnd, part, cfg, usec_key)
        pk = get(rnd, part, cfg, pkts_key)
        out = []
        for u, p in zip(us, pk):
            u, p = num(u), num(p)
            if u and p:
                out.append(u * 1000.0 / p)
        return out

    # --- part A: one established flow -------------------------------------------------
    abl = sorted({k[2] for k in data if k[1] == "A" and k[2].startswith("abl-")})
    cfgs = ["none", "nf", "ours", "both"] + abl

    # KEY "est" (UDP, pktgen) or "tcp" (trafgen): ns per packet of every run of each
    # configuration, and the median of each pass, for the paired differences.
    def part_a_runs(key):
        runs = {c: [] for c in cfgs}
        per_round = {}
        for r in rounds_a:
            per_round[r] = {}
            for c in cfgs:
                v = ns_runs(r, "A", c, key + "_usec", key + "_pkts")
                runs[c] += v
                if v:
                    per_round[r][c] = statistics.median(v)
        return runs, per_round

    a_ns, a_per_round = part_a_runs("est")
    tcp_ns, tcp_per_round = part_a_runs("tcp")
    newa_ns, newa_per_round = part_a_runs("newa")

    def diffs(a, b, per_round=None):
        per_round = a_per_round if per_round is None else per_round
        out = []
        for r in rounds_a:
            pr = per_round[r]
            if a in pr and b in pr:
                out.append(pr[a] - pr[b])
        return out

    # The ratio pass by pass (ours' added cost over nf's, same pass), and each tracker's
    # added cost from the odd-numbered and from the even-numbered passes apart: two
    # interleaved halves of one run, whose agreement is what the estimator can repeat.
    def ratios(per_round):
        out = []
        for r in rounds_a:
            pr = per_round[r]
            if all(c in pr for c in ("none", "nf", "ours")) and pr["nf"] > pr["none"]:
                out.append((pr["ours"] - pr["none"]) / (pr["nf"] - pr["none"]))
        return out

    def halves(a, b, per_round):
        def half(rs):
            v = [per_round[r][a] - per_round[r][b] for r in rs
                 if a in per_round[r] and b in per_round[r]]
            return statistics.median(v) if v else None
        return half(rounds_a[0::2]), half(rounds_a[1::2])

    def fmt_halves(h):
        odd, even = h
        if odd is None or even is None:
            return "n/a"
        mid = (odd + even) / 2
        spread = abs(odd - even) / 2 / mid * 100 if mid else float("nan")
        return "%.0f / %.0f (±%.1f %%)" % (odd, even, spread)

    ns = {c: Stat(a_ns[c]) for c in cfgs}
    pps = {c: Stat([1e9 / v for v in a_ns[c]]) for c in cfgs}
    added = {"nf": Stat(diffs("nf", "none")), "ours": Stat(diffs("ours", "none"))}
    on_top = {"nf": Stat(diffs("both", "ours")), "ours": Stat(diffs("both", "nf"))}
    both_added = Stat(diffs("both", "none"))
    tcp = {c: Stat(tcp_ns[c]) for c in cfgs}
    tcp_added = {t: Stat(diffs(t, "none", tcp_per_round)) for t in ("nf", "ours")}
    tcp_on_top = {"nf": Stat(diffs("both", "ours", tcp_per_round)),
                  "ours": Stat(diffs("both", "nf", tcp_per_round))}

    newa = {c: Stat(newa_ns[c]) for c in cfgs}
    newa_added = {t: Stat(diffs(t, "none", newa_per_round)) for t in ("nf", "ours")}
    # Entries created per second of pktgen's run, run by run.
    newa_rate = {}
    for t in ("nf", "ours"):
        rates = []
        for r in rounds_a:
            for n, u in zip(get(r, "A", t, "newa_new"), get(r, "A", t, "newa_usec")):
                n, u = num(n), num(u)
                if n and u:
                    rates.append(n * 1e6 / u)
        newa_rate[t] = Stat(rates)
    newa_pkts = sorted({int(num(v)) for r in rounds_a for v in get(r, "A", "none", "newa_pkts")
                        if num(v)})

    newflow_none = []
    for r in rounds_a:
        newflow_none += ns_runs(r, "A", "none", "newflow_usec", "newflow_pkts")
    newflow_none = Stat(newflow_none)

    # --- part B: one tracker, large tables ---------------------------------------------
    sizes = sorted({int(k[3].split("_")[-1]) for k in data
                    if k[1] == "B" and k[3].startswith("est_usec_")})
    big = sizes[-1] if sizes else 0
    b_ns = {(t, s): [] for t in ("nf", "ours") for s in sizes}
    for r in rounds_b:
        for t in ("nf", "ours"):
            for s in sizes:
                b_ns[(t, s)] += ns_runs(r, "B", t, "est_usec_%d" % s, "est_pkts_%d" % s)
    b_stat = {k: Stat(v) for k, v in b_ns.items()}

    # New flows: entries created over the time pktgen took, all fills of a round together.
    rate = {}
    ns_new = {}
    entries_made = {}
    for t in ("nf", "ours"):
        rates, per, made = [], [], []
        for r in rounds_b:
            new = sum(num(v) or 0 for s in sizes for v in get(r, "B", t, "fill_new_%d" % s))
            usec = sum(num(v) or 0 for s in sizes for v in get(r, "B", t, "fill_usec_%d" % s))
            if new and usec:
                rates.append(new * 1e6 / usec)
                per.append(usec * 1000.0 / new)
                made.append(new)
        rate[t], ns_new[t], entries_made[t] = Stat(rates), Stat(per), Stat(made)
    new_added = {t: Stat([v - newflow_none.med() for v in ns_new[t].values])
                 if newflow_none.ok() else Stat([]) for t in ("nf", "ours")}

    # Memory at the largest size: slabinfo "name active num objsize perslab pages : ...".
    mem = {}
    for t in ("nf", "ours"):
        objsize, per_obj, per_page, delta = [], [], [], []
        for r in rounds_b:
            line = get(r, "B", t, "slabinfo")
            entries = [num(v) for v in get(r, "B", t, "mem_entries")]
            dkb = [num(v) for v in get(r, "B", t, "meminfo_slab_delta_kb")]
            if not line or not entries or not entries[0]:
                continue
            f = line[0].split(",")
            try:
                num_objs, osize, pages = int(f[2]), int(f[3]), int(f[5])
                num_slabs = int(f[f.index("slabdata") + 2])
            except (ValueError, IndexError):
                continue
            objsize.append(osize)
            per_obj.append(num_objs * osize / entries[0])
            per_page.append(num_slabs * pages * 4096 / entries[0])
            if dkb and dkb[0] is not None:
                delta.append(dkb[0] * 1024 / entries[0])
        # The size of entries with a large tracker state: nf_conn has one size, ours are the
        # wide objects of a second cache.
        wide = []
        for r in rounds_b:
            line = get(r, "B", t, "slabinfo_wide" if t == "ours" else "slabinfo")
            try:
                wide.append(int(line[0].split(",")[3]))
            except (IndexError, ValueError):
                continue
        mem[t] = {"objsize": Stat(objsize), "per_obj": Stat(per_obj),
                  "per_page": Stat(per_page), "delta": Stat(delta), "wide": Stat(wide)}
    nf_buckets = ours_buckets = None
    try:
        nf_buckets = int(meta.get("nf_conntrack", "").split()[0])
    except (ValueError, IndexError):
        pass
    try:
        ours_buckets = int(meta.get("rust_conntrack", "").split("loaded: ")[1].split()[0])
    except (ValueError, IndexError):
        pass

    # GC.
    gc = {}
    for t in ("nf", "ours"):
        g = collections.defaultdict(list)
        for r in rounds_b:
            for key in ("zero", "first_drop", "max_gap_ms", "burst_ms", "max_drop",
                        "at_expiry", "start_count", "final_count", "spread_s"):
                for v in get(r, "B", t, "gc_" + key):
                    g[key].append(num(v))
        zero = [z for z in g["zero"] if z is not None and z >= 0]
        drain = [z - d for z, d in zip(g["zero"], g["first_drop"])
                 if z is not None and d is not None and z >= 0]
        # From the first entry's expiry (the first fill's start + timeout) to empty.
        total = [z + s for z, s in zip(g["zero"], g["spread_s"])
                 if z is not None and s is not None and z >= 0]
        gc[t] = {"zero": Stat(zero), "drain": Stat(drain), "total": Stat(total),
                 "gap": Stat(g["max_gap_ms"]), "drop": Stat(g["max_drop"]),
                 "at_expiry": Stat(g["at_expiry"]), "start": Stat(g["start_count"]),
                 "missed": sum(1 for z in g["zero"] if z is not None and z < 0)}

    # --- the table ----------------------------------------------------------------------
    rows = []

    def row(label, nf, ours, r="—"):
        rows.append("| %s | %s | %s | %s |" % (label, nf, ours, r))

    def pair(label, a, b, digits=0, scale=1.0, unit="", rdigits=2):
        row(label, a.fmt(digits, scale, unit), b.fmt(digits, scale, unit), ratio(b, a, rdigits))

    def repeat_rows(n, unit, per_round):
        """The ratio pass by pass, and each added cost from interleaved halves (1e', 1e'')."""
        row("%s'. ratio of the added costs pass by pass (ours / nf)" % n, "—", "—",
            fmt_ci(Stat(ratios(per_round)), 2))
        row("%s''. added ns/%s, odd / even passes (half the difference)" % (n, unit),
            fmt_halves(halves("nf", "none", per_round)),
            fmt_halves(halves("ours", "none", per_round)), "—")

    row("**1. Established flow** (one UDP flow, 60 B, pktgen over veth)", "", "", "")
    row("1a. no tracker (reference): Mpps", pps["none"].fmt(3, 1e-6), "same runs", "—")
    row("1b. no tracker (reference): ns/packet", ns["none"].fmt(0), "same runs", "—")
    pair("1c. tracker alone: Mpps", pps["nf"], pps["ours"], 3, 1e-6)
    pair("1d. tracker alone: ns/packet", ns["nf"], ns["ours"])
    row("1e. tracker alone: **added ns/packet** over no tracker", fmt_ci(added["nf"]),
        fmt_ci(added["ours"]), ratio(added["ours"], added["nf"]))
    repeat_rows("1e", "packet", a_per_round)
    row("1f. both trackers loaded: ns/packet", ns["both"].fmt(0), "same runs", "—")
    row("1g. both trackers loaded: added ns/packet over no tracker", both_added.fmt(0),
        "same runs", "—")
    row("1h. added ns/packet on top of the other tracker (both − other alone)",
        fmt_ci(on_top["nf"]), fmt_ci(on_top["ours"]), ratio(on_top["ours"], on_top["nf"]))
    if tcp["none"].ok():
        row("**1i. TCP established flow** (one connection per measurement, opened through the "
            "trackers; 16-byte in-order segments from trafgen over veth into a reading socket, "
            "its ACKs back through the trackers)", "", "", "")
        row("1i. no tracker (reference): ns/segment", tcp["none"].fmt(0), "same runs", "—")
        pair("1i. tracker alone: ns/segment", tcp["nf"], tcp["ours"])
        row("1i. tracker alone: **added ns/segment** over no tracker", fmt_ci(tcp_added["nf"]),
            fmt_ci(tcp_added["ours"]), ratio(tcp_added["ours"], tcp_added["nf"]))
        repeat_rows("1i", "segment", tcp_per_round)
        row("1i. added ns/segment on top of the other tracker (both − other alone)",
            fmt_ci(tcp_on_top["nf"]), fmt_ci(tcp_on_top["ours"]),
            ratio(tcp_on_top["ours"], tcp_on_top["nf"]))
    else:
        row("1i. TCP established flow", "not measured", "not measured (BENCH_TCP_PKTS=0)", "—")
    if abl:
        row("**1j. Ablation** (experimental builds, each without one cost, in the same passes; "
            "ours: ns/packet of the build; ratio column: ns saved against the real module, "
            "paired per pass)", "", "", "")
    for c in abl:
        saved = Stat(diffs("ours", c))
        row("1j. ablation `%s`: ns/packet" % c[len("abl-"):], "—", ns[c].fmt(0),
            "saves " + fmt_ci(saved))
    row("**2. New flows** (distinct tuples until the table holds %s)" % format(big, ","), "", "", "")
    pair("2a. new entries per second", rate["nf"], rate["ours"], 0)
    pair("2b. ns per new-flow packet", ns_new["nf"], ns_new["ours"])
    pair("2c. added ns per new flow over no tracker (%s ns/packet for the same tuples)"
         % (("%.0f" % newflow_none.med()) if newflow_none.ok() else "n/a"),
         new_added["nf"], new_added["ours"])
    pair("2d. entries created per round (of %s sent)" % format(big, ","),
         entries_made["nf"], entries_made["ours"], 0, rdigits=3)
    if newa["none"].ok():
        row("**2e. New flows, paired** (part A: %s new tuples per run into an empty table, "
            "the configurations back to back in every pass, as 1e)"
            % "/".join(format(n, ",") for n in newa_pkts), "", "", "")
        row("2e. no tracker (reference): ns/packet", newa["none"].fmt(0), "same runs", "—")
        pair("2e. new entries per second", newa_rate["nf"], newa_rate["ours"], 0)
        row("2e. tracker alone: **added ns per new flow** over no tracker",
            fmt_ci(newa_added["nf"]), fmt_ci(newa_added["ours"]),
            ratio(newa_added["ours"], newa_added["nf"]))
        repeat_rows("2e", "new flow", newa_per_round)
    row("**3. Lookup cost against table size** (established flow, ns/packet)", "", "", "")
    pair("3a. empty table (1d)", ns["nf"], ns["ours"])
    for s in sizes:
        pair("3. with %s idle entries" % format(s, ","), b_stat[("nf", s)], b_stat[("ours", s)])
    if sizes:
        def change(t):
            lo, hi = b_stat[(t, sizes[0])], b_stat[(t, big)]
            if lo.ok() and hi.ok():
                return "%+.1f %%" % ((hi.med() / lo.med() - 1) * 100)
            return "n/a"
        row("3z. change %s → %s entries (medians)" % (format(sizes[0], ","), format(big, ",")),
            change("nf"), change("ours"), "—")
    row("**4. Memory** at %s entries" % format(big, ","), "", "", "")
    pair("4a. slab object size, bytes", mem["nf"]["objsize"], mem["ours"]["objsize"])
    pair("4a'. slab object size of an entry with a TCP, SCTP or DCCP state, bytes",
         mem["nf"]["wide"], mem["ours"]["wide"])
    pair("4b. slab bytes per live entry (num_objs × objsize / entries)",
         mem["nf"]["per_obj"], mem["ours"]["per_obj"], 1)
    pair("4c. slab pages per live entry (num_slabs × pages × 4096 / entries)",
         mem["nf"]["per_page"], mem["ours"]["per_page"], 1)
    pair("4d. all slab memory (/proc/meminfo Slab) added per entry",
         mem["nf"]["delta"], mem["ours"]["delta"], 1)
    if nf_buckets and ours_buckets:
        row("4e. bucket array (8-byte heads), MiB",
            "%.1f (%s buckets)" % (nf_buckets * 8 / 2**20, format(nf_buckets, ",")),
            "%.1f (%s buckets)" % (ours_buckets * 8 / 2**20, format(ours_buckets, ",")),
            "%.2f" % (ours_buckets / nf_buckets))
    row("**5. GC** of %s unreplied UDP entries (30 s timeout), wall-clock" % format(big, ","),
        "", "", "")
    def gc_cell(t):
        cell = gc[t]["zero"].fmt(1)
        if gc[t]["missed"]:
            cell += "; **not empty %s s after it in %d round(s)**" % (
                meta.get("settings", "").split("GC wait ")[-1].split()[0], gc[t]["missed"])
        return cell
    row("5a. s from the last entry's expiry to an empty table", gc_cell("nf"), gc_cell("ours"),
        ratio(gc["ours"]["zero"], gc["nf"]["zero"]) if not (gc["nf"]["missed"] or gc["ours"]["missed"])
        else "—")
    pair("5b. s from the first entry's expiry to an empty table", gc["nf"]["total"],
         gc["ours"]["total"], 1)
    pair("5c. s from the first removal seen to an empty table", gc["nf"]["drain"],
         gc["ours"]["drain"], 1)
    row("5d. entries left when the last one expired", gc["nf"]["at_expiry"].fmt(0),
        gc["ours"]["at_expiry"].fmt(0))
    pair("5e. longest stall of a 2 ms sampler while entries were removed, ms",
         gc["nf"]["gap"], gc["ours"]["gap"], 1)
    pair("5f. most entries removed between two samples (one pass)", gc["nf"]["drop"],
         gc["ours"]["drop"], 0)

    # --- host load -------------------------------------------------------------------------
    # host-load.txt: epoch load1 vm_cpu_ns vm_wait_ns (cpuN_busy cpuN_total)...
    load, waits = [], []  # waits: (epoch, run-queue wait ns of the VM's main process)
    cpu_busy = {}
    lf = host.get("load_samples")
    if lf and os.path.exists(lf):
        first = last = None
        with open(lf) as f:
            for line in f:
                p = line.split()
                if len(p) < 6:
                    continue
                load.append(float(p[1]))
                if p[3] != "-":
                    waits.append((float(p[0]), int(p[3])))
                cur = [int(x) for x in p[4:]]
                if first is None:
                    first = cur
                last = cur
        # Each CPU's busy share over the whole run.
        if first is not None and len(first) == len(last):
            for cpu in range(len(last) // 2):
                dt = last[2 * cpu + 1] - first[2 * cpu + 1]
                if dt > 0:
                    cpu_busy[cpu] = (last[2 * cpu] - first[2 * cpu]) / dt
    load_s = Stat(load)
    pinned = host.get("pinned_cpu", "?")
    busy_txt = ", ".join("CPU%d %.0f %% busy" % (c, 100 * v) for c, v in sorted(cpu_busy.items()))

    def wait_at(t):
        """The VM's cumulative run-queue wait at time t, interpolated (None outside)."""
        if len(waits) < 2 or t < waits[0][0] or t > waits[-1][0]:
            return None
        lo, hi = 0, len(waits) - 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if waits[mid][0] <= t:
                lo = mid
            else:
                hi = mid
        (t0, w0), (t1, w1) = waits[lo], waits[hi]
        return w0 + (w1 - w0) * ((t - t0) / (t1 - t0) if t1 > t0 else 0)

    def wait_share(window):
        try:
            a, b = (float(x) for x in window.split(","))
        except ValueError:
            return None
        wa, wb = wait_at(a), wait_at(b)
        if wa is None or wb is None or b <= a:
            return None
        return (wb - wa) / ((b - a) * 1e9)

    run_waits = collections.defaultdict(list)  # part -> shares of its measured runs
    for (rnd, part, cfg, metric), vals in data.items():
        if metric.endswith("_t") or "_t_" in metric:
            for v in vals:
                w = wait_share(v)
                if w is not None:
                    run_waits[part].append(w)
    vm_wait = None
    if len(waits) >= 2 and waits[-1][0] > waits[0][0]:
        vm_wait = (waits[-1][1] - waits[0][1]) / ((waits[-1][0] - waits[0][0]) * 1e9)

    def wait_txt(part):
        w = run_waits.get(part, [])
        if not w:
            return "n/a"
        bad = sum(1 for x in w if x > 0.05)
        return "median %.1f %%, max %.1f %%; %d of %d runs above 5 %%" % (
            statistics.median(w) * 100, max(w) * 100, bad, len(w))
    contention = [
        "- the VM's CPU wait (run-queue time of its main process, where the guest kernel runs "
        "pktgen and the trackers; another process on CPU %s took the CPU): %s over the whole run; "
        "during the measured pktgen runs: part A (one flow) %s, part B (large tables) %s"
        % (pinned, "%.1f %%" % (vm_wait * 100) if vm_wait is not None else "n/a",
           wait_txt("A"), wait_txt("B"))]

    # --- write -------------------------------------------------------------------------------
    out = []
    out.append("# rust_conntrack benchmark, %s" % host.get("date", "?"))
    out.append("")
    out.append("- kernel: %s; module %s" % (meta.get("kernel", "?"), meta.get("module", "?")))
    out.append("- rust_conntrack: %s" % meta.get("rust_conntrack", "?"))
    out.append("- nf_conntrack: %s" % meta.get("nf_conntrack", "?"))
    out.append("- host: %s, %s CPUs; the VM pinned to CPU %s; source %s" % (
        host.get("cpu", "?"), host.get("nproc", "?"), pinned, host.get("source", "?")))
    out.append("- host load during the run (sampled every %s s): 1-min load average %s; over the run %s" % (
        host.get("load_interval", "?"), load_s.fmt(2), busy_txt or "no CPU samples"))
    out += contention
    out.append("- settings: %s" % meta.get("settings", "?"))
    out.append("- `make bench` wall time: %s (VM %s, guest script %s); VM status %s" % (
        host.get("wall", "?"), host.get("vm_wall", "?"), meta.get("duration", "?"),
        host.get("vm_status", "?")))
    out.append("")
    out.append("Each cell: median (min–max, n = runs). Ratio: ours / nf_conntrack of the medians "
               "(for ns, bytes and seconds lower is better; for Mpps and entries per second "
               "higher is better). What each row means and how it is measured: "
               "[README.md](README.md).")
    out.append("")
    out.append("| figure | nf_conntrack | rust_conntrack | ours / nf |")
    out.append("|---|---|---|---|")
    out += rows
    out.append("")
    out.append("![cost against table size](cost-vs-table-size.png)")
    out.append("")
    out.append("## Notes from the run")
    out.append("")
    if notes:
        # "round R: text" lines, grouped by text with the rounds they came from.
        where = collections.OrderedDict()
        for n in notes:
            head, _, text = n.partition(": ")
            if not head.startswith("round ") or not text:
                head, text = "", n
            where.setdefault(text, []).append(head.replace("round ", ""))
        for text, rnds in where.items():
            rnds = [r for r in rnds if r]
            out.append("- %s%s" % (text, " (round %s)" % ", ".join(rnds) if rnds else ""))
    else:
        out.append("- none: no drops, no insert failures, every entry created")
    if host.get("vm_status", "0") != "0":
        out.append("- the VM run ended with status %s (97: a kernel splat in the guest log, see %s/dmesg.log)"
                   % (host.get("vm_status"), run_dir))
    out.append("")
    out.append("Raw figures: `%s`." % os.path.relpath(bdir, os.path.dirname(os.path.dirname(os.path.abspath(out_md)))))
    with open(out_md, "w") as f:
        f.write("\n".join(out) + "\n")

    plot(out_png, sizes, ns, b_stat, host.get("date", ""))


def plot(path, sizes, ns, b_stat, date):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        plot_gnuplot(path, sizes, ns, b_stat)
        return
    labels = ["empty"] + [format(s, ",") for s in sizes]
    x = list(range(len(labels)))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    none = ns["none"]
    for ax, sub in zip(axes, (False, True)):
        base = none.med() if (sub and none.ok()) else 0.0
        for t, name, style in (("nf", "nf_conntrack", "o-"), ("ours", "rust_conntrack", "s-")):
            pts = [ns[t]] + [b_stat[(t, s)] for s in sizes]
            xs, ys, lo, hi = [], [], [], []
            for i, st in enumerate(pts):
                if st.ok():
                    xs.append(i)
                    ys.append(st.med() - base)
                    lo.append(st.med() - min(st.values))
                    hi.append(max(st.values) - st.med())
            ax.errorbar(xs, ys, yerr=[lo, hi], fmt=style, capsize=4, label=name)
        if not sub and none.ok():
            ax.axhline(none.med(), color="grey", linestyle="--",
                       label="no tracker (%.0f ns)" % none.med())
        ax.set_xticks(x)
        ax.set_xticklabels(labels)
        ax.set_xlabel("idle entries in the table")
        ax.set_ylabel("ns per packet" + (" added over no tracker" if sub else ""))
        ax.set_title(("added cost" if sub else "cost") + " per packet, established UDP flow")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("rust_conntrack vs nf_conntrack, UML, pktgen 60 B UDP over veth %s" % date,
                 fontsize=10)
    fig.text(0.5, 0.005, "median with min–max bars; 'empty' from part A (one flow), "
             "the others from part B (one tracker at a time)", ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    fig.savefig(path, dpi=110)


def plot_gnuplot(path, sizes, ns, b_stat):
    """The same medians and ranges with gnuplot, when matplotlib is missing."""
    import shutil
    import subprocess
    import tempfile
    if not shutil.which("gnuplot"):
        print("report: neither matplotlib nor gnuplot: no plot", file=sys.stderr)
        return
    labels = ["empty"] + [str(s) for s in sizes]
    with tempfile.NamedTemporaryFile("w", suffix=".dat", delete=False) as f:
        for i, lab in enumerate(labels):
            cols = [str(i), lab]
            for t in ("nf", "ours"):
                st = ns[t] if i == 0 else b_stat[(t, sizes[i - 1])]
                cols += ["%.1f %.1f %.1f" % (st.med(), min(st.values), max(st.values))
                         if st.ok() else "NaN NaN NaN"]
            f.write(" ".join(cols) + "\n")
        dat = f.name
    none = ns["none"].med() if ns["none"].ok() else 0
    script = (
        "set terminal png size 900,420; set output '%s';"
        "set title 'ns per packet, established UDP flow'; set xlabel 'idle entries';"
        "set ylabel 'ns per packet'; set yrange [0:*]; set xrange [-0.5:%d.5];"
        "plot '%s' using 1:3:4:5:xtic(2) with yerrorlines title 'nf_conntrack',"
        " '' using 1:6:7:8 with yerrorlines title 'rust_conntrack',"
        " %f with lines dashtype 2 title 'no tracker'" % (path, len(labels) - 1, dat, none))
    subprocess.run(["gnuplot", "-e", script], check=False)
    os.unlink(dat)


main()
