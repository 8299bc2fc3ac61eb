#!/bin/bash
# Load, traffic and unload on any kernel (run by scripts/test on x86 and um): loading the
# module runs no test and taints only O; both tables are shown for the same ICMP, TCP and
# UDP traffic; then the test module runs the KUnit suites.
. "$(dirname "$0")/lib.sh"

modprobe nf_conntrack enable_hooks=1
check "module loads" load_module
check "loading taints no TAINT_TEST" taint_test_clear
check "netns pair" netns_pair
check "ICMP echo" ip netns exec "$NS_A" ping -c 2 -i 0.2 -W 2 10.77.0.2
check "ICMPv6 echo" ip netns exec "$NS_A" ping -6 -c 2 -i 0.2 -W 2 fd77::2
check "TCP exchange" tcp_exchange 10.77.0.2 8080
check "UDP datagrams" send_udp 10.77.0.2 5353
check_ge "hooks saw the traffic" "$(stat_sum "$NS_B" rust_conntrack in_pre_routing)" 8
for ns in "$NS_A" "$NS_B"; do
	echo "--- $ns: /proc/net/stat/rust_conntrack"
	ip netns exec "$ns" cat /proc/net/stat/rust_conntrack
	echo "--- $ns: /proc/net/nf_conntrack"
	ip netns exec "$ns" cat /proc/net/nf_conntrack
done
netns_del
check "module unloads" unload_module
check "no TAINT_TEST after load and unload" taint_test_clear
check "test module: KUnit suites run" run_kunit
t_done smoke
