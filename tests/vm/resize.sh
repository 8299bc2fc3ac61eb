#!/bin/bash
# Resizing the table at run time (run by scripts/test on um-debug): writes to
# /proc/sys/net/rust_conntrack/buckets under traffic, as nf_conntrack_hash_resize takes
# writes to nf_conntrack_buckets.
#  - a flood runs from A to B all along: 300 UDP flows, each sending every 0.2 s and
#    echoed by B, one UDP flow sending as fast as it can, one TCP stream, and in the
#    initial netns new UDP flows on lo all the time (inserts, early drop and the collector
#    racing with the resizes);
#  - the table is resized 1024 -> 16384 -> 128 -> 65536 -> 1024, then 20 times back to
#    back: after each, `buckets` reads the new size, `max` is unchanged, and in A and in B
#    the entry count and the table (sorted, without timeouts and counters) are what they
#    were before, no entry twice, and every flow's packet counters (acct on) went up;
#  - traffic stopped, both tables still read as nf_conntrack's (counters included);
#  - resizes racing with the deletion of both namespaces (their entries go, nothing is
#    left behind) and with the module's unload.
# Writes from another netns and invalid sizes are tests/vm/sysctl.sh's.
# Prints "ok"/"not ok" lines and the counts in $RCT_OUT/vm-results-resize.
. "$(dirname "$0")/difflib.sh"

P=/proc/sys/net/rust_conntrack
FLOWS=300

modprobe nf_conntrack enable_hooks=1
check "module loads (hashsize 1024)" sh -c "modprobe -a nf_defrag_ipv4 nf_defrag_ipv6 && insmod $RCT_KO hashsize=1024"
check_eq "buckets is 1024" "$(cat $P/buckets)" 1024
MAX=$(cat $P/max)

ct_fresh_netns || t_fail "netns setup"
for ns in "$NS_A" "$NS_B"; do
	ip netns exec "$ns" sh -c "echo 1 >$P/acct; echo 1 >/proc/sys/net/netfilter/nf_conntrack_acct"
done

STOP=/tmp/resize-stop
rm -f "$STOP"
# B: an echo server for the UDP flows, a sink for the fast flow and the TCP stream.
ip netns exec "$NS_B" /usr/bin/python3 - "$STOP" <<'PY' &
import os, select, socket, sys, time
stop = sys.argv[1]
echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
echo.bind(("10.77.0.2", 5310))
sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sink.bind(("10.77.0.2", 5311))
lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lst.bind(("10.77.0.2", 5312))
lst.listen(1)
socks = [echo, sink, lst]
end = time.time() + 600
while time.time() < end and not os.path.exists(stop):
    r, _, _ = select.select(socks, [], [], 0.2)
    for s in r:
        if s is lst:
            c, _ = lst.accept()
            socks.append(c)
        elif s is echo:
            d, a = echo.recvfrom(2048)
            echo.sendto(d, a)
        else:
            try:
                d = s.recv(65536)
            except OSError:
                d = b""
            if s.type == socket.SOCK_STREAM and not d:
                socks.remove(s)
PY
SERVER=$!
sleep 1
# A: the flows. Every one of FLOWS sockets sends every 0.2 s; the fast one 20 datagrams
# per round; the TCP stream 4 KiB per round.
ip netns exec "$NS_A" /usr/bin/python3 - "$STOP" "$FLOWS" <<'PY' &
import os, socket, sys, time
stop, n = sys.argv[1], int(sys.argv[2])
flows = []
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("10.77.0.1", 31000 + i))
    s.connect(("10.77.0.2", 5310))
    s.setblocking(False)
    flows.append(s)
fast = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
fast.bind(("10.77.0.1", 30999))
fast.connect(("10.77.0.2", 5311))
tcp = socket.create_connection(("10.77.0.2", 5312), timeout=10)
tcp.setblocking(False)
end = time.time() + 600
while time.time() < end and not os.path.exists(stop):
    t0 = time.time()
    for s in flows:
        try:
            s.send(b"keepalive")
        except OSError:
            pass
    for _ in range(20):
        try:
            fast.send(b"f" * 64)
        except OSError:
            pass
    try:
        tcp.send(b"t" * 4096)
    except OSError:
        pass
    for s in flows:
        try:
            while s.recv(64):
                pass
        except OSError:
            pass
    time.sleep(max(0.0, 0.2 - (time.time() - t0)))
tcp.close()
PY
CLIENT=$!
# The initial netns: new UDP flows on lo, 1000 source ports in turn, to a closed port.
/usr/bin/python3 - "$STOP" <<'PY' &
import os, socket, sys, time
stop = sys.argv[1]
end = time.time() + 600
port = 0
while time.time() < end and not os.path.exists(stop):
    for _ in range(50):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(("127.0.0.1", 40000 + port))
            s.sendto(b"new", ("127.0.0.1", 9))
        except OSError:
            pass
        s.close()
        port = (port + 1) % 1000
    time.sleep(0.1)
PY
CHURN=$!
# UDP entries become [ASSURED] 2 s after their reply: wait until every flow is.
sleep 4

# table NS: the table without timeouts and counters, sorted.
table() { ct_raw "$1" rust_conntrack | sed -E 's/ packets=[0-9]+ bytes=[0-9]+//g' | ct_normalise; }
# counters NS: "PROTO SPORT PACKETS" per entry (packets of both directions), sorted.
counters() {
	ct_raw "$1" rust_conntrack | awk '{
		s = 0; line = $0
		while (match(line, /packets=[0-9]+/)) { s += substr(line, RSTART + 8, RLENGTH - 8); line = substr(line, RSTART + RLENGTH) }
		for (i = 1; i <= NF; i++) if ($i ~ /^sport=/) { print $3, $i, s; break }
	}' | LC_ALL=C sort
}
snapshot() { # TAG: the tables, counts and counters of A and B into /tmp/resize-TAG-*
	local ns
	for ns in "$NS_A" "$NS_B"; do
		table "$ns" >"/tmp/resize-$1-$ns.table"
		counters "$ns" >"/tmp/resize-$1-$ns.counters"
		ip netns exec "$ns" cat $P/count >"/tmp/resize-$1-$ns.count"
	done
}
# compare BEFORE AFTER WHAT: the same entries, each once, and counters that went up.
compare() {
	local b=$1 a=$2 what=$3 ns n
	for ns in "$NS_A" "$NS_B"; do
		n=$(wc -l <"/tmp/resize-$a-$ns.table")
		check_ge "$what: $ns: every flow there ($n entries)" "$n" $((FLOWS + 2))
		check_eq "$what: $ns: count = entries, before and after" \
			"$(cat "/tmp/resize-$b-$ns.count") $(cat "/tmp/resize-$a-$ns.count")" \
			"$(wc -l <"/tmp/resize-$b-$ns.table") $n"
		check "$what: $ns: the same table" diff -u "/tmp/resize-$b-$ns.table" "/tmp/resize-$a-$ns.table"
		check_eq "$what: $ns: no entry twice" "$(uniq -d "/tmp/resize-$a-$ns.table")" ""
		check_eq "$what: $ns: every flow's counters went up" "$(join -j 2 -o 1.1,1.2,1.3,2.3 \
			<(awk '{ print $1, $1 "/" $2, $3 }' "/tmp/resize-$b-$ns.counters" | LC_ALL=C sort -k2,2) \
			<(awk '{ print $1, $1 "/" $2, $3 }' "/tmp/resize-$a-$ns.counters" | LC_ALL=C sort -k2,2) |
			awk '$4 <= $3' | head -n 5)" ""
	done
}

prev=1024
step=0
for size in 16384 128 65536 1024; do
	step=$((step + 1))
	snapshot "b$step"
	check "resize $prev -> $size under traffic" sh -c "echo $size >$P/buckets"
	sleep 1.5
	snapshot "a$step"
	check_eq "buckets reads $size" "$(cat $P/buckets)" "$size"
	check_eq "max unchanged ($MAX)" "$(cat $P/max)" "$MAX"
	compare "b$step" "a$step" "$prev -> $size"
	prev=$size
done
snapshot b-many
ok=0
for i in $(seq 1 20); do
	size=$((i % 2 ? 512 : 2048))
	echo "$size" >$P/buckets && ok=$((ok + 1))
done
sleep 1.5
snapshot a-many
check_eq "20 resizes back to back (512 <-> 2048), all written" "$ok $(cat $P/buckets)" "20 2048"
compare b-many a-many "20 resizes"
check_eq "max unchanged ($MAX)" "$(cat $P/max)" "$MAX"
check "the flows ran all along" kill -0 "$CLIENT"

touch "$STOP"
wait "$CLIENT" "$SERVER" "$CHURN"
sleep 1
for ns in "$NS_A" "$NS_B"; do
	check "traffic stopped: $ns: ours = nf_conntrack (counters included)" ct_compare "$ns"
done

# Resizes racing with the namespaces' exit (their entries deleted under the table mutex)
# and then with the unload (the sysctl goes first, waiting for a running write).
(for i in $(seq 1 30); do echo $((i % 2 ? 256 : 8192)) 2>/dev/null >$P/buckets; done) &
RESIZER=$!
netns_del
wait "$RESIZER"
# The namespaces' cleanup runs in a workqueue: wait for their entries to go.
for _ in $(seq 1 100); do
	ip netns list | grep -q rct- || break
	sleep 0.1
done
check_eq "after the namespaces' exit: init_net alone holds entries" \
	"$(grep -c 'dport=5310' /proc/net/rust_conntrack)" 0
(for i in $(seq 1 200); do echo $((i % 2 ? 256 : 8192)) 2>/dev/null >$P/buckets || break; done) &
RESIZER=$!
sleep 0.3
check "module unloads during resizes" rmmod rust_conntrack
wait "$RESIZER"
rm -f "$STOP" /tmp/resize-*
t_done resize
[ "$T_FAIL" -eq 0 ]
