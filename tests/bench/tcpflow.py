#!/usr/bin/python3
# One TCP connection for the established-flow TCP figure of `make bench` (tests/bench/bench.sh):
#
#   tcpflow.py server ADDR PORT READY   in the receiving namespace: accepts connections and
#                                       reads them to the end, discarding (so the window
#                                       stays open); touches READY once listening
#   tcpflow.py connect SRC SPORT DST DPORT
#                                       in the sending namespace: a three-way handshake
#                                       from a raw socket, then prints "SEQ ACK": the
#                                       sequence number of the next data byte and the
#                                       acknowledgement number that goes with it
#
# The sender has no socket of its own: a packet generator (trafgen) continues the stream
# from SEQ with ACK, so the sending namespace must drop what comes back (bench.sh drops it
# in prerouting; an AF_PACKET socket still sees the SYN-ACK).
import os, select, socket, struct, sys, signal, time

ISN = 1000  # the sender's initial sequence number: far from any wrap
RCVBUF = 64 << 20  # the server's SO_RCVBUF (net.core.rmem_max must allow it)
WSCALE = b"\x01\x03\x03\x07"  # NOP, window scale 7: the SYN's only option


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def segment(src, dst, sport, dport, seq, ack, flags, options=b""):
    doff = (20 + len(options)) // 4
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, doff << 4, flags, 65535, 0, 0) + options
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(hdr))
    c = csum(pseudo + hdr)
    return hdr[:16] + struct.pack("!H", c) + hdr[18:]


def server(addr, port, ready):
    signal.alarm(7200)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # A receive buffer (and, with window scaling, a window) that holds a whole run even
    # while this reader waits for the CPU: the sender never retransmits, so a segment
    # dropped for want of room would stall the stream and put both trackers out of window.
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    ls.bind((addr, int(port)))
    ls.listen(64)
    open(ready, "w").close()
    conns = []
    buf = bytearray(1 << 20)
    while True:
        r, _, _ = select.select([ls] + conns, [], [])
        for s in r:
            if s is ls:
                c, _ = ls.accept()
                conns.append(c)
            elif s.recv_into(buf) == 0:
                conns.remove(s)
                s.close()


def connect(src, sport, dst, dport):
    sport, dport = int(sport), int(dport)
    signal.alarm(20)
    # ETH_P_ALL: taps see a packet before any hook that drops it.
    cap = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0003))
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    syn = segment(src, dst, sport, dport, ISN, 0, 0x02, WSCALE)
    for attempt in range(5):
        raw.sendto(syn, (dst, 0))
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            r, _, _ = select.select([cap], [], [], 0.1)
            if not r:
                continue
            p, (_, proto, _, _, _) = cap.recvfrom(2048)
            if proto != 0x0800 or len(p) < 20:
                continue
            ihl = (p[0] & 15) * 4
            if len(p) < ihl + 20 or p[9] != 6 or p[12:16] != socket.inet_aton(dst):
                continue
            sp, dp, seq, ack, _, flags = struct.unpack("!HHIIBB", p[ihl : ihl + 14])
            if (sp, dp) != (dport, sport) or flags & 0x12 != 0x12 or ack != ISN + 1:
                continue
            raw.sendto(segment(src, dst, sport, dport, ISN + 1, seq + 1, 0x10), (dst, 0))
            print(ISN + 1, (seq + 1) & 0xFFFFFFFF)
            return
    sys.exit("tcpflow: no SYN-ACK from %s:%d" % (dst, dport))


if __name__ == "__main__":
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role == "server" and len(sys.argv) == 5:
        server(*sys.argv[2:])
    elif role == "connect" and len(sys.argv) == 6:
        connect(*sys.argv[2:])
    else:
        sys.exit(__doc__ or "usage: tcpflow.py server ADDR PORT READY | connect SRC SPORT DST DPORT")
