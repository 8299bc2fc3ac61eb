#!/bin/bash
# Differential tests: the same traffic through nf_conntrack and rust_conntrack, side by side
# in the same namespaces; /proc/net/rust_conntrack must then read as /proc/net/nf_conntrack
# (tests/vm/difflib.sh: normalised tables, `use=` ignored, timeouts within +-2 s).
#
#   scripts/vm-run --kernel um-debug -- tests/vm/differential.sh
#
# Every case runs in fresh namespaces (rct-a 10.77.0.1/fd77::1 -> rct-b 10.77.0.2/fd77::2;
# our table cannot be flushed), sends its traffic from A to B, then compares both tables in
# both namespaces. Cases: UDP request/reply (v4, v6), UDP one-way, UDP stream > 2 s, ICMP
# echo (v4, v6), ICMP port unreachable (v4, v6: the error creates no entry, the UDP entry
# it relates to stays [UNREPLIED]), a generic protocol (IP protocol 253, v4 and v6) and
# 10000 UDP flows. Checks named "reference: ..." look at nf_conntrack alone: they say the
# traffic did what the case means (and catch a change of behaviour in the kernel).
# Timeouts, and the entries disappearing, are tests/vm/differential-expiry.sh's.
#
# Environment (pass it through vm-run with `env`, e.g.
#   scripts/vm-run --kernel um-debug -- env RCT_DIFF_CASES='^udp' tests/vm/differential.sh):
#   RCT_DIFF_CASES     ERE on case names: run only those (default: all)
#   RCT_DIFF_FLOWS     number of flows of the flows case (default 10000)
#   RCT_DIFF_OURS      table under test (default rust_conntrack). Harness self-test only:
#                      RCT_DIFF_OURS=nf_conntrack compares the reference with itself, and
#                      every check must pass (with --no-module the module is not loaded).
#   RCT_DIFF_SELFTEST  1: also check that ct_compare catches altered copies of a real table
#                      (a field, a flag, a line, a timeout, the spacing) and tolerates what
#                      it must (use=, order, +-2 s of timeout, filtered-out protocols).
# Mismatches print a diff; full diffs and raw tables go to $RCT_OUT/differential/. Prints
# "ok"/"not ok" lines, the counts in $RCT_OUT/vm-results-differential (as the other VM
# suites), and exits non-zero if any check failed.
. "$(dirname "$0")/difflib.sh"

OURS=${RCT_DIFF_OURS:-rust_conntrack}
FLOWS=${RCT_DIFF_FLOWS:-10000}

modprobe nf_conntrack enable_hooks=1
loaded=
if [ -n "${RCT_KO:-}" ]; then
	check "module loads" load_module && loaded=1
elif [ "$OURS" = rust_conntrack ]; then
	t_fail "module loads" "no module (vm-run --no-module?)"
fi

V4='src=10\.77\.0\.1 dst=10\.77\.0\.2 '
V4R='src=10\.77\.0\.2 dst=10\.77\.0\.1 '
# nf_conntrack prints IPv6 addresses in full (%pI6).
V6='src=fd77:0000:0000:0000:0000:0000:0000:0001 dst=fd77:0000:0000:0000:0000:0000:0000:0002 '
V6R='src=fd77:0000:0000:0000:0000:0000:0000:0002 dst=fd77:0000:0000:0000:0000:0000:0000:0001 '
TAIL=' mark=0 zone=0$'

if run_case udp-reqrep-v4; then
	traffic gen_udp_reqrep 10.77.0.2 40000 5300 3
	compare_both udp
	ref_expect "one replied UDP entry, not assured" 1 \
		"^ipv4     2 udp      17 T ${V4}sport=40000 dport=5300 ${V4R}sport=5300 dport=40000${TAIL}" 30
	ref_expect "nothing else" 1 .
	case_end
fi

if run_case udp-reqrep-v6; then
	traffic gen_udp_reqrep fd77::2 40000 5300 3
	compare_both udp
	ref_expect "one replied UDP entry, not assured" 1 \
		"^ipv6     10 udp      17 T ${V6}sport=40000 dport=5300 ${V6R}sport=5300 dport=40000${TAIL}" 30
	ref_expect "nothing else" 1 .
	case_end
fi

if run_case udp-oneway; then
	traffic gen_udp_oneway 10.77.0.2 40000 5301 3
	compare_both udp
	ref_expect "one [UNREPLIED] UDP entry" 1 \
		"^ipv4     2 udp      17 T ${V4}sport=40000 dport=5301 \[UNREPLIED\] ${V4R}sport=5301 dport=40000${TAIL}" 30
	ref_expect "nothing else" 1 .
	case_end
fi

if run_case udp-stream; then
	traffic gen_udp_stream 10.77.0.2 40000 5302 3
	compare_both udp
	ref_expect "one [ASSURED] UDP entry" 1 \
		"^ipv4     2 udp      17 T ${V4}sport=40000 dport=5302 ${V4R}sport=5302 dport=40000 \[ASSURED\]${TAIL}" 120
	ref_expect "nothing else" 1 .
	case_end
fi

if run_case icmp-echo-v4; then
	traffic gen_icmp_echo 10.77.0.2 3
	compare_both icmp
	ref_expect "one ICMP echo entry, replied" 1 \
		"^ipv4     2 icmp     1 T ${V4}type=8 code=0 id=[0-9]+ ${V4R}type=0 code=0 id=[0-9]+${TAIL}" 30
	ref_expect "nothing else" 1 .
	case_end
fi

if run_case icmp-echo-v6; then
	traffic gen_icmp_echo fd77::2 3
	compare_both icmpv6
	ref_expect "one ICMPv6 echo entry, replied" 1 \
		"^ipv6     10 icmpv6   58 T ${V6}type=128 code=0 id=[0-9]+ ${V6R}type=129 code=0 id=[0-9]+${TAIL}" 30
	ref_expect "nothing else (neighbour discovery makes no entry)" 1 .
	case_end
fi

if run_case icmp-unreach-v4; then
	traffic gen_udp_unreach 10.77.0.2 40000 5399
	compare_both 'udp|icmp'
	ref_expect "the UDP entry stays [UNREPLIED]" 1 \
		"^ipv4     2 udp      17 T ${V4}sport=40000 dport=5399 \[UNREPLIED\] ${V4R}sport=5399 dport=40000${TAIL}" 30
	ref_expect "the port unreachable creates no entry" 0 ' icmp '
	ref_expect "nothing else" 1 .
	case_end
fi

if run_case icmp-unreach-v6; then
	traffic gen_udp_unreach fd77::2 40000 5399
	compare_both 'udp|icmpv6'
	ref_expect "the UDP entry stays [UNREPLIED]" 1 \
		"^ipv6     10 udp      17 T ${V6}sport=40000 dport=5399 \[UNREPLIED\] ${V6R}sport=5399 dport=40000${TAIL}" 30
	ref_expect "the port unreachable creates no entry" 0 ' icmpv6 '
	ref_expect "nothing else" 1 .
	case_end
fi

if run_case generic-v4; then
	traffic gen_generic 10.77.0.2 253 3 1
	compare_both unknown
	ref_expect "one generic entry, replied" 1 "^ipv4     2 unknown  253 T ${V4}${V4R}mark=0 zone=0$" 600
	ref_expect "nothing else" 1 .
	case_end
fi

if run_case generic-v6; then
	traffic gen_generic fd77::2 253 3 1
	compare_both unknown
	ref_expect "one generic entry, replied" 1 "^ipv6     10 unknown  253 T ${V6}${V6R}mark=0 zone=0$" 600
	ref_expect "nothing else" 1 .
	case_end
fi

if run_case "flows-$FLOWS"; then
	traffic gen_flows 10.77.0.2 "$FLOWS" 5304 20000
	for ns in "$NS_A" "$NS_B"; do
		ref_n=$(ct_count "$ns" nf_conntrack .)
		ours_n=$(ct_count "$ns" "$OURS" .)
		check_eq "$CT_CASE: $ns: entry count ($OURS vs nf_conntrack)" "$ours_n" "$ref_n"
	done
	compare_both udp
	ref_expect "$FLOWS [UNREPLIED] UDP entries" "$FLOWS" \
		"^ipv4     2 udp      17 T ${V4}sport=[0-9]+ dport=5304 \[UNREPLIED\] ${V4R}sport=5304 dport=[0-9]+${TAIL}"
	case_end
fi

# Harness self-test: altered copies of a real table stand in for ours. The variants are
# compared with one snapshot of the reference (ct_compare_raw: no timeout drifts, nothing
# expires meanwhile); two go through ct_compare itself, with the copy as RCT_DIFF_OURS.
# shift_t(D): the timeout column of the current line plus D seconds.
SELFTEST_AWK='function shift_t(d,  h, r) {
	if (!match($0, /^[^ ]+ +[^ ]+ +[^ ]+ +[^ ]+ /)) return
	h = substr($0, 1, RLENGTH); r = substr($0, RLENGTH + 1)
	if (!match(r, /^[0-9]+/)) return
	$0 = h (substr(r, 1, RLENGTH) + d) substr(r, RLENGTH + 1)
}'
selftest_variant() { # live|snapshot NAME WANT(pass|fail) FILTER AWK-PROGRAM (ours from the reference)
	local how=$1 name=$2 want=$3 filter=$4 prog=$5 fake got out keep
	fake=$(mktemp /tmp/ct-fake.XXXXXX)
	awk "$SELFTEST_AWK $prog" "$SNAPSHOT" >"$fake"
	keep=${RCT_OUT:-/tmp}/differential/selftest-${name//[^A-Za-z0-9._-]/_}
	if [ "$how" = live ]; then
		out=$(RCT_DIFF_OURS=$fake CT_CASE=selftest-$name ct_compare "$NS_A" "$filter")
	else
		out=$(ct_compare_raw "$SNAPSHOT" "$fake" "$filter" "nf_conntrack" "altered copy" "$keep")
	fi && got=pass || got=fail
	[ -z "$out" ] || printf '%s\n' "$out"
	check_eq "selftest: $name is a $want" "$got" "$want"
	if [ "$want" = fail ] && [ "$got" = fail ]; then
		# A readable report: the diff, or the timeouts that differ.
		check "selftest: $name: report says why" grep -qE '^# (@@|[0-9]+ entries whose timeouts)' <<<"$out"
	fi
	rm -f "$fake"
}

if [ "${RCT_DIFF_SELFTEST:-}" = 1 ] && run_case selftest; then
	traffic eval 'gen_udp_reqrep 10.77.0.2 40000 5300 1 && gen_udp_oneway 10.77.0.2 40001 5301 1 &&
		gen_udp_reqrep fd77::2 40002 5300 1 && gen_icmp_echo 10.77.0.2 1 &&
		gen_generic 10.77.0.2 253 1 1'
	SNAPSHOT=$(mktemp /tmp/ct-snapshot.XXXXXX)
	ct_raw "$NS_A" nf_conntrack >"$SNAPSHOT"
	check_eq "selftest: table has 5 entries" "$(wc -l <"$SNAPSHOT")" 5
	selftest_variant live "identical copy, through RCT_DIFF_OURS" pass "" '1'
	selftest_variant live "a port altered, through RCT_DIFF_OURS" fail "" '{ sub(/sport=40001 /, "sport=40009 ") } 1'
	selftest_variant snapshot "use= changed, order reversed, timeouts -2 and +2 s" pass "" \
		'{ sub(/use=[0-9]+$/, "use=7"); shift_t(NR % 2 ? -2 : 2); l[NR] = $0 }
		 END { for (i = NR; i > 0; i--) print l[i] }'
	selftest_variant snapshot "[UNREPLIED] missing" fail "" '{ sub(/\[UNREPLIED\] /, "") } 1'
	selftest_variant snapshot "[ASSURED] added" fail "" '/sport=40000/ { sub(/mark=/, "[ASSURED] mark=") } 1'
	selftest_variant snapshot "an entry missing" fail "" '!/ icmp /'
	selftest_variant snapshot "an entry twice" fail "" '{ print } / unknown / { print }'
	selftest_variant snapshot "an extra entry" fail "" \
		'{ print } END { print "ipv4     2 icmp     1 29 src=10.77.0.2 dst=10.77.0.1 type=8 code=0 id=1 src=10.77.0.1 dst=10.77.0.2 type=0 code=0 id=1 mark=0 zone=0 use=2" }'
	selftest_variant snapshot "a timeout 3 s short" fail "" '/sport=40000/ { shift_t(-3) } 1'
	selftest_variant snapshot "a timeout 3 s long" fail "" '/ unknown / { shift_t(3) } 1'
	selftest_variant snapshot "a 30 s entry at 120 s" fail "" '/sport=40001/ { shift_t(90) } 1'
	selftest_variant snapshot "single spaces instead of nf_conntrack's padding" fail "" '{ $1 = $1 } 1'
	selftest_variant snapshot "ipv6 address compressed" fail "" '{ gsub(/fd77:0000:0000:0000:0000:0000:0000:/, "fd77::") } 1'
	selftest_variant snapshot "an icmp difference, filter udp" pass udp '{ sub(/type=8/, "type=13") } 1'
	selftest_variant snapshot "an icmp difference, filter udp|icmp" fail 'udp|icmp' '{ sub(/type=8/, "type=13") } 1'
	selftest_variant snapshot "filter udp does not take udplite" pass udp '/ unknown / { sub(/ unknown  253 /, " udplite  136 ") } 1'
	selftest_variant snapshot "a malformed line, filter udp" fail udp '{ print } END { print "ipv4 garbage" }'
	selftest_variant snapshot "empty table (today's rust_conntrack)" fail "" '0'
	rm -f "$SNAPSHOT"
	case_end
fi

netns_del
[ -n "$loaded" ] && check "module unloads" unload_module
t_done differential
[ "$T_FAIL" -eq 0 ]
