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

now() { date +%s.%N; }

CT_CASE=expiry
check "fresh namespaces" ct_fresh_netns

V4='src=10\.77\.0\.1 dst=10\.77\.0\.2 '
V4R='src=10\.77\.0\.2 dst=10\.77\.0\.1 '
V6='src=fd77:0000:0000:0000:0000:0000:0000:0001 dst=fd77:0000:0000:0000:0000:0000:0000:0002 '
V6R='src=fd77:0000:0000:0000:0000:0000:0000:0002 dst=fd77:0000:0000:0000:0000:0000:0000:0001 '

# entry NAME TIMEOUT ERE GENERATOR...: runs the generator; the entry matching ERE was last
# refreshed between the times before and after it.
E_NAME=() E_T=() E_RE=() E_LO=() E_HI=()
entry() {
	local name=$1 timeout=$2 re=$3 lo
	shift 3
	lo=$(now)
	check "traffic: $name" "$@"
	E_NAME+=("$name") E_T+=("$timeout") E_RE+=("$re") E_LO+=("$lo") E_HI+=("$(now)")
}

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

# expect_step STEP NS C_LO C_HI TFILE: nf_conntrack's entries at this step, from a dump
# (TFILE: ct_dump's timeouts) taken between C_LO and C_HI.
expect_step() {
	local step=$1 ns=$2 clo=$3 chi=$4 tfile=$5 i verdict got want n
	for i in "${!E_NAME[@]}"; do
		# present: sure / gone: sure / near: too close to expiry to say;
		# then the printed seconds-left window, floor(T - age) with age in [clo-hi, chi-lo].
		read -r verdict tmin tmax < <(awk -v t="${E_T[$i]}" -v lo="${E_LO[$i]}" -v hi="${E_HI[$i]}" \
			-v clo="$clo" -v chi="$chi" 'BEGIN {
				v = (chi + 1 < lo + t) ? "present" : (clo - 1 > hi + t) ? "gone" : "near"
				a = t - (chi - lo); b = t - (clo - hi)
				printf "%s %d %d\n", v, int(a) - 1, int(b) + 1
			}')
		n=$(awk -F'\t' -v re="${E_RE[$i]}" '$2 ~ re { n++ } END { print n + 0 }' "$tfile")
		got=$(awk -F'\t' -v re="${E_RE[$i]}" '$2 ~ re { print $1 }' "$tfile" | tr '\n' ' ')
		case $verdict in
		present)
			if [ "$n" -eq 1 ] && [ "${got% }" -ge "$tmin" ] && [ "${got% }" -le "$tmax" ]; then
				t_ok "t+$step: reference: $ns: ${E_NAME[$i]} present, ${got% } s left"
			else
				t_fail "t+$step: reference: $ns: ${E_NAME[$i]} present" "$n entries, timeouts '${got% }', want 1 with $tmin..$tmax s"
			fi
			;;
		gone) check_eq "t+$step: reference: $ns: ${E_NAME[$i]} gone" "$n" 0 ;;
		*) echo "# t+$step: $ns: ${E_NAME[$i]} too close to its expiry to check ($n entries)" ;;
		esac
	done
	want=${#E_NAME[@]}
	n=$(wc -l <"$tfile")
	check "t+$step: reference: $ns: no other entry" test "$n" -le "$want"
}

for step in $STEPS; do
	wait_s=$(awk -v e="$END" -v s="$step" -v n="$(now)" 'BEGIN { d = e + s - n; printf "%.3f", (d > 0 ? d : 0) }')
	sleep "$wait_s"
	CT_CASE=expiry-t$step
	echo "# --- t+$step s (after the traffic), waited $wait_s s"
	for ns in "$NS_A" "$NS_B"; do
		tfile=$(mktemp /tmp/ct-expiry.XXXXXX)
		clo=$(now)
		check "t+$step: $ns: $OURS = nf_conntrack" ct_compare "$ns"
		ct_dump "$ns" nf_conntrack "" "$tfile" >/dev/null
		chi=$(now)
		echo "# $ns nf_conntrack:"
		awk -F'\t' '{ sub(/ T /, " " $1 " ", $2); print "#   " $2 }' "$tfile"
		expect_step "$step" "$ns" "$clo" "$chi" "$tfile"
		rm -f "$tfile"
	done
done

netns_del
[ -n "$loaded" ] && check "module unloads" unload_module
t_done differential-expiry
[ "$T_FAIL" -eq 0 ]
