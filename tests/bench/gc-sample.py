#!/usr/bin/python3
"""Guest side of `make bench`: watches a tracker's entry count while its entries expire,
run inside the namespace that holds them (ip netns exec).

  gc-sample.py TRACKER EXPIRE_AT DEADLINE SAMPLES_FILE [INTERVAL]

TRACKER is nf (reads /proc/sys/net/netfilter/nf_conntrack_count) or rct (the first column
of /proc/net/stat/rust_conntrack, hex). EXPIRE_AT is the wall-clock time (time.time())
when the last entry is due to expire, DEADLINE when to give up. The count is read every
INTERVAL seconds (default 0.002) until it reaches 0 or the deadline passes. Every change
of the count goes to SAMPLES_FILE ("seconds-since-EXPIRE_AT count"). Prints one line of
"key=value" pairs:

  start_count   the count at the first sample
  at_expiry     the count at EXPIRE_AT (-1: sampling started after it)
  first_drop    seconds from EXPIRE_AT to the first decrease (negative: before it)
  zero          seconds from EXPIRE_AT to the count reaching 0 (-1: not reached)
  final_count   the last count read
  max_gap_ms    the longest interval between two consecutive samples while entries were
                being removed (from the first decrease until 0): how long the sampler, a
                user process on the same (only) CPU, could not run
  burst_ms      the longest run of back-to-back samples that each saw the count fall:
                a continuous stretch of collector activity
  burst_removed entries removed in that run
  max_drop      the most entries removed between two consecutive samples
  samples       how many reads were made
"""
import sys
import time


def reader(tracker):
    if tracker == "nf":
        path = "/proc/sys/net/netfilter/nf_conntrack_count"

        def read():
            with open(path) as f:
                return int(f.read())
    elif tracker == "rct":
        path = "/proc/net/stat/rust_conntrack"

        def read():
            with open(path) as f:
                f.readline()
                return int(f.readline().split()[0], 16)
    else:
        sys.exit("gc-sample: tracker must be nf or rct")
    return read


def main():
    tracker, expire_at, deadline, samples_file = sys.argv[1:5]
    interval = float(sys.argv[5]) if len(sys.argv) > 5 else 0.002
    expire_at, deadline = float(expire_at), float(deadline)
    read = reader(tracker)
    max_samples = int((deadline - time.time()) / interval) + 10
    out = open(samples_file, "w")
    now = time.time()
    count = read()
    start_count = count
    prev_t, prev_c = now, count
    out.write("%.4f %d\n" % (now - expire_at, count))
    at_expiry = -1 if now > expire_at else None
    first_drop = None
    zero = None
    max_gap = 0.0
    burst_start = None
    burst_removed = 0
    best_burst = (0.0, 0)
    max_drop = 0
    samples = 1
    while samples < max_samples and count > 0:
        time.sleep(interval)
        now = time.time()
        if now > deadline:
            break
        count = read()
        samples += 1
        if at_expiry is None and now >= expire_at:
            at_expiry = prev_c
        if count != prev_c:
            out.write("%.4f %d\n" % (now - expire_at, count))
        if count < prev_c:
            if first_drop is None:
                first_drop = now - expire_at
            if burst_start is None:
                burst_start = prev_t
                burst_removed = 0
            burst_removed += prev_c - count
            max_drop = max(max_drop, prev_c - count)
            span = now - burst_start
            if span > best_burst[0]:
                best_burst = (span, burst_removed)
        else:
            burst_start = None
        if first_drop is not None:
            max_gap = max(max_gap, now - prev_t)
        if count == 0:
            zero = now - expire_at
        prev_t, prev_c = now, count
    out.close()
    if at_expiry is None:
        at_expiry = count
    print("start_count=%d at_expiry=%d first_drop=%s zero=%s final_count=%d max_gap_ms=%.1f "
          "burst_ms=%.1f burst_removed=%d max_drop=%d samples=%d" % (
              start_count, at_expiry,
              "%.3f" % first_drop if first_drop is not None else "none",
              "%.3f" % zero if zero is not None else "-1",
              count, max_gap * 1000, best_burst[0] * 1000, best_burst[1], max_drop, samples))


main()
