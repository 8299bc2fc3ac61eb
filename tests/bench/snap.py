#!/usr/bin/python3
"""Guest side of `make bench`: one snapshot of the receiving namespace's counters, run
inside that namespace (ip netns exec). Prints "key value" lines:

  rx                    packets received by DEV (its rx_packets)
  ip.InDelivers         IPv4 datagrams delivered to a protocol (/proc/net/snmp)
  udp.InDatagrams, udp.RcvbufErrors, udp.NoPorts, udp.InErrors
  tcp.InSegs, tcp.OutSegs, tcp.InErrs, tcp.OutRsts
  tcpext.<counter>      PruneCalled, TCPRcvQDrop, TCPOFOQueue, TCPOFODrop, TCPZeroWindowDrop
                        (/proc/net/netstat)
  nf.count              /proc/sys/net/netfilter/nf_conntrack_count (if loaded)
  nf.<column>           /proc/net/stat/nf_conntrack, every column summed over CPUs
  rct.<column>          /proc/net/stat/rust_conntrack, likewise (if loaded)

  snap.py DEV
"""
import sys


def stat_sums(path, prefix):
    try:
        with open(path) as f:
            lines = f.read().split("\n")
    except OSError:
        return
    header = lines[0].split()
    sums = [0] * len(header)
    for line in lines[1:]:
        cols = line.split()
        if len(cols) != len(header):
            continue
        for i, c in enumerate(cols):
            sums[i] += int(c, 16)
    if header and header[0] == "entries":
        # The entries column is the namespace's count repeated on every CPU's row.
        rows = sum(1 for line in lines[1:] if len(line.split()) == len(header))
        sums[0] = sums[0] // max(rows, 1)
    for name, value in zip(header, sums):
        print("%s.%s %d" % (prefix, name, value))


def snmp(proto, prefix, keys, path="/proc/net/snmp"):
    with open(path) as f:
        rows = [line.split() for line in f if line.startswith(proto + ":")]
    if len(rows) < 2:
        return
    values = dict(zip(rows[0][1:], rows[1][1:]))
    for k in keys:
        print("%s.%s %s" % (prefix, k, values.get(k, 0)))


def main():
    dev = sys.argv[1]
    with open("/sys/class/net/%s/statistics/rx_packets" % dev) as f:
        print("rx %s" % f.read().strip())
    snmp("Ip", "ip", ["InReceives", "InDelivers", "InDiscards"])
    snmp("Udp", "udp", ["InDatagrams", "RcvbufErrors", "NoPorts", "InErrors"])
    snmp("Tcp", "tcp", ["InSegs", "OutSegs", "InErrs", "OutRsts"])
    snmp("TcpExt", "tcpext", ["PruneCalled", "TCPRcvQDrop", "TCPOFOQueue", "TCPOFODrop",
                                "TCPZeroWindowDrop"],
         "/proc/net/netstat")
    try:
        with open("/proc/sys/net/netfilter/nf_conntrack_count") as f:
            print("nf.count %s" % f.read().strip())
    except OSError:
        pass
    stat_sums("/proc/net/stat/nf_conntrack", "nf")
    stat_sums("/proc/net/stat/rust_conntrack", "rct")


main()
