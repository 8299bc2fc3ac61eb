#!/bin/bash
# Differential test of SCTP, DCCP and GRE timeouts and expiry: rust_conntrack's entries must
# count down and disappear as nf_conntrack's do. Meant for simulated time (UML time-travel:
# the sleeps below, 250 s in all, pass in moments of wall time):
#
#   scripts/vm-run --kernel um-debug --time-travel -- tests/vm/differential-proto-expiry.sh
#
# In fresh namespaces (tests/vm/difflib.sh) it creates, from A to B: an SCTP association shut
# down by the client (CLOSED, 10 s) and one aborted (CLOSED, 10 s), a DCCP connection closed
# by the server (TIMEWAIT, 240 s), GRE echoed (assured, 180 s) and GRE one way ([UNREPLIED],
# 30 s). Then, 5, 20, 40, 185 and 250 s after the traffic, it compares both tables in both
# namespaces and checks on nf_conntrack alone that each entry is there or gone with the
# seconds-left it should, as tests/vm/differential-expiry.sh does. SCTP heartbeats are off
# (an hour apart), so that only the traffic above refreshes the entries.
#
# Without --time-travel it refuses to run, unless RCT_DIFF_REALTIME=1. RCT_DIFF_OURS and
# RCT_DIFF_STEPS as in tests/vm/differential-expiry.sh.
. "$(dirname "$0")/difflib.sh"

OURS=${RCT_DIFF_OURS:-rust_conntrack}
STEPS=${RCT_DIFF_STEPS:-5 20 40 185 250}

if ! grep -q 'time-travel' /proc/cmdline && [ "${RCT_DIFF_REALTIME:-}" != 1 ]; then
	t_fail "simulated time" "boot with scripts/vm-run --time-travel (or set RCT_DIFF_REALTIME=1)"
	t_done differential-proto-expiry
	exit 1
fi

modprobe nf_conntrack enable_hooks=1
modprobe -a sctp dccp_ipv4 dccp_ipv6
loaded=
if [ -n "${RCT_KO:-}" ]; then
	check "module loads" load_module && loaded=1
elif [ "$OURS" = rust_conntrack ]; then
	t_fail "module loads" "no module (vm-run --no-module?)"
fi

CT_CASE=proto-expiry
check "fresh namespaces" ct_fresh_netns
for ns in "$NS_A" "$NS_B"; do
	ip netns exec "$ns" sysctl -qw net.sctp.hb_interval=3600000
done

V4='src=10\.77\.0\.1 dst=10\.77\.0\.2 '
V4R='src=10\.77\.0\.2 dst=10\.77\.0\.1 '
V6='src=fd77:0000:0000:0000:0000:0000:0000:0001 dst=fd77:0000:0000:0000:0000:0000:0000:0002 '
V6R='src=fd77:0000:0000:0000:0000:0000:0000:0002 dst=fd77:0000:0000:0000:0000:0000:0000:0001 '
GRE_T='timeout=30, stream_timeout=180 '
K0='srckey=0x0 dstkey=0x0 '

entry sctp-shutdown 10 "^ipv4     2 sctp     132 T CLOSED ${V4}sport=[0-9]+ dport=5400 ${V4R}sport=5400 dport=[0-9]+ \[ASSURED\] " \
	gen_stream 10.77.0.2 sctp 2 client 0 5400
entry sctp-abort 10 "^ipv6     10 sctp     132 T CLOSED ${V6}sport=[0-9]+ dport=5401 ${V6R}sport=5401 dport=[0-9]+ \[ASSURED\] " \
	gen_stream fd77::2 sctp 2 abort 0 5401
entry dccp-timewait 240 "^ipv4     2 dccp     33 T TIMEWAIT ${V4}sport=[0-9]+ dport=5402 ${V4R}sport=5402 dport=[0-9]+ \[ASSURED\] " \
	gen_stream 10.77.0.2 dccp 2 server 0 5402
entry gre-stream 180 "^ipv4     2 gre      47 T ${GRE_T}${V4}${K0}${V4R}${K0}\[ASSURED\] " \
	gen_generic 10.77.0.2 47 3 1 00000800
entry gre-unreplied 30 "^ipv6     10 gre      47 T ${GRE_T}${V6}${K0}\[UNREPLIED\] ${V6R}${K0}mark" \
	gen_generic fd77::2 47 2 0 00000800
END=$(now)

expiry_steps proto-expiry

netns_del
[ -n "$loaded" ] && check "module unloads" unload_module
t_done differential-proto-expiry
[ "$T_FAIL" -eq 0 ]
