#!/bin/bash
# Differential tests of the trackers with protocol state of their own beyond TCP: SCTP, DCCP
# and GRE, the same traffic through nf_conntrack and rust_conntrack side by side; the tables
# must then read the same (tests/vm/difflib.sh: `use=` aside, timeouts within +-2 s).
#
#   scripts/vm-run --kernel um-debug -- tests/vm/differential-proto.sh
#
# GRE: the test kernels build the PPTP helper, which brings nf_conntrack's GRE tracker, as
# distribution kernels do; no PPTP control connection is made, so GRE is tracked as 6.12
# tracks it without one. Cases: GREv0 echoed (one entry, replied, assured by the packet after
# the first reply: 180 s), the same with a key (version 0 keys are not tracked: keys 0), GREv0
# one way (30 s, [UNREPLIED]), enhanced GRE (PPTP, version 1,
# PPP payload) keyed by call id, echoed with the same call id (two entries, one per
# direction: a reply carries the peer's call id, which no keymap links), IPv4 and IPv6.
# SCTP and DCCP: real sockets of the kernel's own SCTP and DCCP (DCCP with service code 42):
# an association or connection set up, three messages echoed, then closed by the client, by
# the server, or aborted (SCTP ABORT, DCCP RESET); SCTP also idle for 2 s with heartbeats
# every 200 ms. IPv4 and IPv6 each.
# Environment: RCT_DIFF_CASES (an ERE on case names), as tests/vm/differential.sh.
. "$(dirname "$0")/difflib.sh"

OURS=${RCT_DIFF_OURS:-rust_conntrack}

modprobe nf_conntrack enable_hooks=1
modprobe -a sctp dccp_ipv4 dccp_ipv6
loaded=
if [ -n "${RCT_KO:-}" ]; then
	check "module loads" load_module && loaded=1
elif [ "$OURS" = rust_conntrack ]; then
	t_fail "module loads" "no module (vm-run --no-module?)"
fi

V4='src=10\.77\.0\.1 dst=10\.77\.0\.2 '
V4R='src=10\.77\.0\.2 dst=10\.77\.0\.1 '
V6='src=fd77:0000:0000:0000:0000:0000:0000:0001 dst=fd77:0000:0000:0000:0000:0000:0000:0002 '
V6R='src=fd77:0000:0000:0000:0000:0000:0000:0002 dst=fd77:0000:0000:0000:0000:0000:0000:0001 '
TAIL=' mark=0 zone=0$'
# GRE version 0 carrying IPv4 (no key), and enhanced GRE (version 1, key bit, PPP) with call
# id 0x1234 (payload length 0, as the raw socket's payload follows it).
GRE0=00000800
# GRE version 0 with a key (K bit, key 0xabcd): 6.12 keys only enhanced GRE, so keys 0.
GRE0K=200008000000abcd
GRE1=2001880b00001234
GRE_T='timeout=30, stream_timeout=180 '

for fam in v4 v6; do
	if [ $fam = v4 ]; then
		dst=10.77.0.2 l3='ipv4     2' fwd=$V4 rev=$V4R
	else
		dst=fd77::2 l3='ipv6     10' fwd=$V6 rev=$V6R
	fi
	if run_case gre0-echo-$fam; then
		traffic gen_generic "$dst" 47 3 1 "$GRE0"
		compare_both gre
		ref_expect "one GRE entry, replied and assured" 1 \
			"^$l3 gre      47 T ${GRE_T}${fwd}srckey=0x0 dstkey=0x0 ${rev}srckey=0x0 dstkey=0x0 \[ASSURED\]${TAIL}" 180
		ref_expect "nothing else" 1 .
		case_end
	fi
	if run_case gre0-key-$fam; then
		traffic gen_generic "$dst" 47 3 1 "$GRE0K"
		compare_both gre
		ref_expect "one GRE entry, keys 0, assured" 1 \
			"^$l3 gre      47 T ${GRE_T}${fwd}srckey=0x0 dstkey=0x0 ${rev}srckey=0x0 dstkey=0x0 \[ASSURED\]${TAIL}" 180
		ref_expect "nothing else" 1 .
		case_end
	fi
	if run_case gre0-oneway-$fam; then
		traffic gen_generic "$dst" 47 2 0 "$GRE0"
		compare_both gre
		ref_expect "one GRE entry, unreplied" 1 \
			"^$l3 gre      47 T ${GRE_T}${fwd}srckey=0x0 dstkey=0x0 \[UNREPLIED\] ${rev}srckey=0x0 dstkey=0x0${TAIL}" 30
		ref_expect "nothing else" 1 .
		case_end
	fi
	if run_case gre1-echo-$fam; then
		traffic gen_generic "$dst" 47 3 1 "$GRE1"
		compare_both gre
		ref_expect "an entry per direction, keyed by the call id" 1 \
			"^$l3 gre      47 T ${GRE_T}${fwd}srckey=0x0 dstkey=0x1234 \[UNREPLIED\] ${rev}srckey=0x1234 dstkey=0x0${TAIL}" 30
		ref_expect "and the other direction's" 1 \
			"^$l3 gre      47 T ${GRE_T}${rev}srckey=0x0 dstkey=0x1234 \[UNREPLIED\] ${fwd}srckey=0x1234 dstkey=0x0${TAIL}" 30
		ref_expect "nothing else" 2 .
		case_end
	fi
	for proto in sctp dccp; do
		if [ $proto = sctp ]; then
			name='sctp     132'
		else
			name='dccp     33'
		fi
		for close in client server abort; do
			if run_case $proto-$close-$fam; then
				traffic gen_stream "$dst" $proto 3 $close 0
				compare_both $proto
				ref_expect "one $proto entry" 1 \
					"^$l3 $name T [A-Z_]+ ${fwd}sport=[0-9]+ dport=5400 ${rev}sport=5400 dport=[0-9]+ "
				ref_expect "nothing else" 1 .
				case_end
			fi
		done
	done
	if run_case sctp-heartbeat-$fam; then
		for ns in "$NS_A" "$NS_B"; do
			ip netns exec "$ns" sysctl -qw net.sctp.hb_interval=200
		done
		traffic gen_stream "$dst" sctp 2 client 2
		compare_both sctp
		ref_expect "one sctp entry" 1 "^$l3 sctp     132 T [A-Z_]+ ${fwd}"
		ref_expect "nothing else" 1 .
		case_end
	fi
done

netns_del
[ -n "$loaded" ] && check "module unloads" unload_module
t_done differential-proto
[ "$T_FAIL" -eq 0 ]
