#!/bin/bash
# Differential test of timeouts and expiry: rust_conntrack's entries must count down and
# disappear as nf_conntrack's do. Meant for simulated time (UML time-travel: the sleeps
# below, 605 s in all, pass in about a second of wall time):
#
#   scripts/vm-run --kernel um-debug --time-travel -- tests/vm/differential-expiry.sh
#
# In fresh namespaces (tests/vm/difflib.sh) it creates, from A to B: a UDP stream (3 s of
# packets both ways: [ASSURED], 120 s), a UDP one-way flow ([UNREPLIED], 30 s), a UDP
# request/reply done in < 2 s (replied, not assured, 30 s), ICMP and ICMPv6 echo (30 s)
# and a generic protocol 253 exchange (600 s). Then, 10, 25, 35, 125 and 605 s after the
# traffic, it compares both tables in both namespaces (ct_compare: same entries, timeouts
# within +-2 s), and checks on nf_conntrack alone that each entry is there or gone and
# shows the seconds-left it should ("reference: ..." checks, computed from when each
# entry's traffic ran). A step too close to an entry's expiry to say (never with
# time-travel) skips that entry's presence check.
#
# Without --time-travel it refuses to run (it would take over 10 minutes), unless
# RCT_DIFF_REALTIME=1. RCT_DIFF_OURS as in tests/vm/differential.sh (nf_conntrack:
# harness self-test, every check must pass); RCT_DIFF_STEPS overrides the steps (seconds
# after the traffic, ascending). Counts in $RCT_OUT/vm-results-differential-expiry; exits
# non-zero if any check failed.
. "$(dirname "$0")/difflib.sh"

OURS=${RCT_DIFF_OURS:-rust_conntrack}
STEPS=${RCT_DIFF_STEPS:-10 25 35 125 605}

if ! grep -q 'time-travel' /proc/cmdline && [ "${RCT_DIFF_REALTIME:-}" != 1 ]; then
	t_fail "simulated time" "boot with scripts/vm-run --time-travel (or set RCT_DIFF_REALTIME=1)"
	t_done differential-expiry
	exit 1
fi

modprobe nf_conntrack enable_hooks=1
loaded=
if [ -n "${RCT_KO:-}" ]; then
	check "module loads" load_module && loaded=1
elif [ "$OURS" = rust_conntrack ]; then
	t_fail "module loads" "no module (vm-run --no-module?)"
fi


CT_CASE=expiry
check "fresh namespaces" ct_fresh_netns

V4='src=10\.77\.0\.1 dst=10\.77\.0\.2 '
V4R='src=10\.77\.0\.2 dst=10\.77\.0\.1 '
V6='src=fd77:0000:0000:0000:0000:0000:0000:0001 dst=fd77:0000:0000:0000:0000:0000:0000:0002 '
V6R='src=fd77:0000:0000:0000:0000:0000:0000:0002 dst=fd77:0000:0000:0000:0000:0000:0000:0001 '

entry udp-stream 120 "^ipv4     2 udp      17 T ${V4}sport=41002 dport=5302 ${V4R}sport=5302 dport=41002 \[ASSURED\] " \
	gen_udp_stream 10.77.0.2 41002 5302 3
entry udp-unreplied 30 "^ipv4     2 udp      17 T ${V4}sport=41000 dport=5301 \[UNREPLIED\] ${V4R}sport=5301 dport=41000 mark" \
	gen_udp_oneway 10.77.0.2 41000 5301 1
entry udp-replied 30 "^ipv4     2 udp      17 T ${V4}sport=41001 dport=5300 ${V4R}sport=5300 dport=41001 mark" \
	gen_udp_reqrep 10.77.0.2 41001 5300 2
entry icmp 30 "^ipv4     2 icmp     1 T ${V4}type=8 code=0 id=[0-9]+ ${V4R}type=0 code=0 id=[0-9]+ mark" \
	gen_icmp_echo 10.77.0.2 2
entry icmpv6 30 "^ipv6     10 icmpv6   58 T ${V6}type=128 code=0 id=[0-9]+ ${V6R}type=129 code=0 id=[0-9]+ mark" \
	gen_icmp_echo fd77::2 2
entry generic 600 "^ipv4     2 unknown  253 T ${V4}${V4R}mark" \
	gen_generic 10.77.0.2 253 2 1
END=$(now)

expiry_steps expiry

netns_del
[ -n "$loaded" ] && check "module unloads" unload_module
t_done differential-expiry
[ "$T_FAIL" -eq 0 ]
