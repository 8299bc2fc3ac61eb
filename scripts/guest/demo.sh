#!/bin/bash
# Guest side of `make demo`.
. "$RCT_ROOT/tests/vm/lib.sh"
set -e
echo "== $(uname -r) on $RCT_KERNEL: loading nf_conntrack (enable_hooks=1) and rust_conntrack"
modprobe nf_conntrack enable_hooks=1
load_module
grep -h 'rust_conntrack' /proc/modules
netns_pair
echo "== traffic from $NS_A (10.77.0.1, fd77::1) to $NS_B (10.77.0.2, fd77::2)"
ip netns exec "$NS_A" ping -c 2 -i 0.2 10.77.0.2 | tail -n 2
ip netns exec "$NS_A" ping -6 -c 2 -i 0.2 fd77::2 | tail -n 2
tcp_exchange 10.77.0.2 8080 && echo "TCP 10.77.0.1 -> 10.77.0.2:8080: exchanged 5 bytes"
send_udp 10.77.0.2 5353 && echo "UDP 10.77.0.1 -> 10.77.0.2:5353: 3 datagrams"
for ns in "$NS_A" "$NS_B"; do
	echo
	echo "== $ns: /proc/net/rust_conntrack"
	ip netns exec "$ns" cat /proc/net/rust_conntrack
	echo "== $ns: /proc/net/nf_conntrack"
	ip netns exec "$ns" cat /proc/net/nf_conntrack
	echo "== $ns: /proc/net/stat/rust_conntrack"
	ip netns exec "$ns" cat /proc/net/stat/rust_conntrack
done
netns_del
rmmod rust_conntrack
echo "== rust_conntrack unloaded"
