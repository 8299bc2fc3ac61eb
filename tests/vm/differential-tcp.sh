#!/bin/bash
# Differential tests of TCP: the same connections through nf_conntrack and rust_conntrack,
# side by side in the same namespaces; both tables must then read the same (difflib.sh:
# state names, flags and tuples identical, `use=` ignored, timeouts within +-2 s).
#
#   scripts/vm-run --kernel um-debug --timeout 900 -- tests/vm/differential-tcp.sh
#
# Every case runs in fresh namespaces (rct-a 10.77.0.1/fd77::1 -> rct-b 10.77.0.2/fd77::2),
# IPv4 and IPv6, and compares both tables in both namespaces after its traffic (and at
# each step of a crafted sequence). Checks named "reference: ..." look at nf_conntrack (or
# at the sockets) alone: they say the traffic did what the case means.
#
# 1. Real connections (tcplib.sh tcp_conn, Python sockets): close by FIN from the client,
#    from the server; close by RST (SO_LINGER 0); half-close from either side, the other
#    side still sending (CLOSE_WAIT, sockets held open while the tables are read);
#    simultaneous close (each side's first FIN dropped by nft before the peer's trackers,
#    so that the retransmitted FINs cross: both sockets end in TIME_WAIT); 200 connections
#    in a row (whole tables compared).
# 2. Mid-stream pickup: a connection opened and used with rust_conntrack unloaded, the
#    module loaded while it is idle, then data both ways, A first (6.12's loose pickup, so
#    both trackers agree on the direction); compared while open and after the close. The
#    module is unloaded and reloaded around it.
# 3. Crafted sequences (tcplib.sh tcp_craft_*, scapy over raw sockets; kernel RSTs of a
#    socketless end dropped by nft before conntrack): an out-of-window RST (invalid, the
#    entry stays ESTABLISHED, the connection still works), an in-window RST that is not
#    exact (challenge ACK; ESTABLISHED with the 300 s UNACK timeout), a SYN reusing a
#    TIME_WAIT tuple (the entry is recreated: SYN_SENT), retransmitted SYN-ACKs (ignored,
#    SYN_RECV not refreshed), a lost handshake ACK (data first), window-scaled data inside
#    the scaled window only (valid) then beyond it (invalid, state unchanged). Each
#    compares the increments of the `invalid` column of /proc/net/stat/nf_conntrack and
#    /proc/net/stat/rust_conntrack in both namespaces.
# Expiry (SYN_SENT, SYN_RECV, CLOSE_WAIT, TIME_WAIT, CLOSE) is in
# tests/vm/differential-tcp-expiry.sh.
#
# Environment (through vm-run with `env`): RCT_DIFF_CASES (ERE on case names),
# RCT_DIFF_TCP_MANY (connections of the many case, default 200), RCT_DIFF_OURS (harness
# self-test: nf_conntrack compares the reference with itself; every check must pass; the
# pickup case then skips the reload). Mismatches print a diff; full diffs and raw tables go
# to $RCT_OUT/differential/. Counts in $RCT_OUT/vm-results-differential-tcp; exits non-zero
# if any check failed.
. "$(dirname "$0")/tcplib.sh"

MANY=${RCT_DIFF_TCP_MANY:-200}
SUITE_T0=$(date +%s.%N)

modprobe nf_conntrack enable_hooks=1
loaded=
if [ -n "${RCT_KO:-}" ] && [ "$OURS" = rust_conntrack ]; then
	check "module loads" load_module && loaded=1
elif [ "$OURS" = rust_conntrack ]; then
	t_fail "module loads" "no module (vm-run --no-module?)"
fi

fam_dst() { if [ "$1" = 6 ]; then echo fd77::2; else echo 10.77.0.2; fi; }

ASSURED='\[ASSURED\] '
UNREPLIED='\[UNREPLIED\] '

# --- 1. real connections ----------------------------------------------------------------

for f in 4 6; do
	dst=$(fam_dst "$f")

	if run_case "fin-client-v$f"; then
		traffic tcp_conn fin-client "$dst" 7001
		compare_both
		ref_expect "one TIME_WAIT entry, assured" 1 "$(tcp_re "$f" TIME_WAIT '[0-9]+' 7001 '' "$ASSURED")" 120
		ref_expect "nothing else" 1 .
		case_end
	fi

	if run_case "fin-server-v$f"; then
		traffic tcp_conn fin-server "$dst" 7002
		compare_both
		ref_expect "one TIME_WAIT entry, assured" 1 "$(tcp_re "$f" TIME_WAIT '[0-9]+' 7002 '' "$ASSURED")" 120
		ref_expect "nothing else" 1 .
		case_end
	fi

	if run_case "rst-v$f"; then
		traffic tcp_conn rst "$dst" 7003
		compare_both
		REF_TOTAL=1 ref_expect "one CLOSE entry, assured" 1 \
			"$(tcp_re "$f" CLOSE '[0-9]+' 7003 '' "$ASSURED")" 10
		case_end
	fi

	for side in client server; do
		if run_case "halfclose-$side-v$f"; then
			traffic tcp_conn "halfclose-$side" "$dst" 7004
			compare_both "" "half-closed, sockets open"
			ref_expect "one CLOSE_WAIT entry, assured" 1 "$(tcp_re "$f" CLOSE_WAIT '[0-9]+' 7004 '' "$ASSURED")" 60
			ref_expect "nothing else" 1 .
			check "$CT_CASE: both sides close" tcp_conn_release
			case_end
		fi
	done

	if run_case "simclose-v$f"; then
		traffic tcp_conn simclose "$dst" 7005
		check "$CT_CASE: FINs cross" tcp_simclose 7005
		sleep 0.5
		for ns in "$NS_A" "$NS_B"; do
			# Only a simultaneous close leaves both sockets in TIME_WAIT.
			n=$(ip netns exec "$ns" ss -Htan state time-wait "( sport = :7005 or dport = :7005 )" | wc -l)
			check_eq "$CT_CASE: reference: $ns: a socket in TIME_WAIT" "$n" 1
		done
		compare_both
		ref_expect "one TIME_WAIT entry, assured" 1 "$(tcp_re "$f" TIME_WAIT '[0-9]+' 7005 '' "$ASSURED")" 120
		ref_expect "nothing else" 1 .
		check "$CT_CASE: both sides end" tcp_conn_release
		tcp_nft_flush "$NS_A" prerouting 2>/dev/null
		case_end
	fi

	if run_case "many-$MANY-v$f"; then
		traffic tcp_conn many "$dst" 7006 0 "$MANY" 300
		for ns in "$NS_A" "$NS_B"; do
			check_eq "$CT_CASE: $ns: entry count ($OURS vs nf_conntrack)" \
				"$(ct_count "$ns" "$OURS" .)" "$(ct_count "$ns" nf_conntrack .)"
		done
		compare_both
		ref_expect "$MANY TIME_WAIT entries, assured" "$MANY" "$(tcp_re "$f" TIME_WAIT '[0-9]+' 7006 '' "$ASSURED")" 120
		ref_expect "nothing else" "$MANY" .
		case_end
	fi
done

# --- 2. mid-stream pickup ---------------------------------------------------------------

for f in 4 6; do
	dst=$(fam_dst "$f")
	if run_case "pickup-v$f"; then
		reload=
		if [ -n "$loaded" ]; then
			if unload_module; then t_ok "$CT_CASE: module unloads"; loaded= reload=1; else t_fail "$CT_CASE: module unloads"; fi
			check "$CT_CASE: reference: no $OURS table while unloaded" test ! -e /proc/net/rust_conntrack
		fi
		traffic tcp_conn pickup "$dst" 7010
		sleep 1 # the connection idles: no delayed ACK left in flight
		if [ -n "$reload" ]; then
			check "$CT_CASE: module loads, connection idle" load_module && loaded=1
		fi
		PICKUP_T0=$(date +%s.%N)
		tcp_sync_touch go
		check "$CT_CASE: data both ways after the load" eval 'tcp_sync_wait client-holding 60 && tcp_sync_wait server-holding 60'
		compare_both "" "picked up, open"
		ref_expect "one ESTABLISHED entry, assured" 1 "$(tcp_re "$f" ESTABLISHED '[0-9]+' 7010 '' "$ASSURED")" 432000 "$PICKUP_T0"
		ref_expect "nothing else" 1 .
		check "$CT_CASE: close (A first)" tcp_conn_release
		sleep 0.5
		compare_both "" "closed"
		ref_expect "one TIME_WAIT entry, assured" 1 "$(tcp_re "$f" TIME_WAIT '[0-9]+' 7010 '' "$ASSURED")" 120 "$PICKUP_T0"
		case_end
	fi
done
if [ -n "${RCT_KO:-}" ] && [ "$OURS" = rust_conntrack ] && [ -z "$loaded" ]; then
	check "module loads again" load_module && loaded=1
fi

# --- 3. crafted sequences ---------------------------------------------------------------

# craft_start SCENARIO FAMILY SPORT DPORT: starts the scenario; kernel RSTs from A's SPORT
# never leave A.
craft_start() {
	tcp_nft_drop_rst "$NS_A" "$3" || return 1
	tcp_craft_start "$@"
}

# at NAME: the scenario reached checkpoint NAME (a check).
at() { check "$CT_CASE: reaches $1" tcp_craft_at "$@"; }

craft_finish() {
	check "$CT_CASE: sequence completes" tcp_craft_end
	tcp_craft_abort
}

info() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $CRAFT_INFO"; }

for f in 4 6; do
	dst=$(fam_dst "$f")
	sp=40100

	if run_case "oow-rst-v$f"; then
		check "$CT_CASE: listener in B" tcp_sink_start "$dst" 7020
		TRAFFIC_T0=$(date +%s.%N)
		craft_start oow-rst "$f" "$sp" 7020
		re=$(tcp_re "$f" ESTABLISHED "$sp" 7020 '' "$ASSURED")
		if at established; then
			compare_both "" "established"
			ref_expect "one ESTABLISHED entry, assured" 1 "$re" 432000
			stats_snap
			tcp_craft_go
		fi
		if at rst; then
			stats_check "RST 2^30 beyond the window" 1 1
			check_eq "$CT_CASE: reference: B's kernel ignores the RST silently" "$(info answers)" 0
			compare_both "" "after the RST"
			ref_expect "still ESTABLISHED, assured" 1 "$re" 432000
			tcp_craft_go
		fi
		if at after; then
			compare_both "" "data after the RST"
			ref_expect "ESTABLISHED, assured (B kept the connection)" 1 "$re" 432000
			ref_expect "nothing else" 1 .
			tcp_craft_go
		fi
		craft_finish
		tcp_sink_stop
		case_end
	fi

	if run_case "rst-inexact-v$f"; then
		check "$CT_CASE: listener in B" tcp_sink_start "$dst" 7021
		TRAFFIC_T0=$(date +%s.%N)
		craft_start rst-inexact "$f" "$sp" 7021
		re=$(tcp_re "$f" ESTABLISHED "$sp" 7021 '' "$ASSURED")
		if at established; then
			compare_both "" "established"
			stats_snap
			tcp_craft_go
		fi
		if at rst; then
			stats_check "RST in the window, 1000 bytes ahead" 0 0
			compare_both "" "after the RST and B's challenge ACK"
			ref_expect "still ESTABLISHED, assured, UNACK timeout" 1 "$re" 300 "$TRAFFIC_T0"
			tcp_craft_go
		fi
		craft_finish
		tcp_sink_stop
		case_end
	fi

	if run_case "tw-syn-v$f"; then
		traffic tcp_conn fin-client "$dst" 7022 "$sp"
		compare_both "" "TIME_WAIT"
		ref_expect "one TIME_WAIT entry, assured" 1 "$(tcp_re "$f" TIME_WAIT "$sp" 7022 '' "$ASSURED")" 120
		# B's answers to the new SYN (a RST: its listener is gone) never leave B.
		check "$CT_CASE: drop B's answers" tcp_nft "$NS_B" output tcp sport 7022 meta mark != "$CT_MARK" drop
		stats_snap
		TRAFFIC_T0=$(date +%s.%N)
		craft_start syn "$f" "$sp" 7022
		if at syn; then
			stats_check "SYN on the TIME_WAIT tuple" 0 0
			compare_both "" "new SYN"
			ref_expect "the entry recreated: SYN_SENT, unreplied, not assured" 1 \
				"$(tcp_re "$f" SYN_SENT "$sp" 7022 "$UNREPLIED" '')" 120
			ref_expect "nothing else" 1 .
			tcp_craft_go
		fi
		craft_finish
		case_end
	fi

	if run_case "synack-retrans-v$f"; then
		check "$CT_CASE: listener in B" tcp_sink_start "$dst" 7023
		TRAFFIC_T0=$(date +%s.%N)
		craft_start synack-retrans "$f" "$sp" 7023
		re_sr=$(tcp_re "$f" SYN_RECV "$sp" 7023 '' '')
		if at synack; then
			SA_T=$(info t)
			compare_both "" "after the SYN-ACK"
			ref_expect "one SYN_RECV entry" 1 "$re_sr" 60
			stats_snap
			tcp_craft_go
		fi
		if at retrans 20; then
			check_ge "$CT_CASE: reference: B sent its SYN-ACK 3 times" "$(info synacks)" 3
			stats_check "retransmitted SYN-ACKs" 0 0
			compare_both "" "after retransmitted SYN-ACKs"
			max=$(awk -v a="${SA_T:-0}" -v b="$(date +%s.%N)" 'BEGIN { print 60 - int(b - a) }')
			ref_expect "still one SYN_RECV entry" 1 "$re_sr"
			ref_timeout_max "SYN_RECV not refreshed by the retransmissions" "$re_sr" "$max"
			tcp_craft_go
		fi
		if at established; then
			compare_both "" "established"
			ref_expect "one ESTABLISHED entry, assured" 1 "$(tcp_re "$f" ESTABLISHED "$sp" 7023 '' "$ASSURED")" 432000
			ref_expect "nothing else" 1 .
			tcp_craft_go
		fi
		craft_finish
		tcp_sink_stop
		case_end
	fi

	if run_case "lost-ack-v$f"; then
		check "$CT_CASE: listener in B" tcp_sink_start "$dst" 7024
		TRAFFIC_T0=$(date +%s.%N)
		craft_start lost-ack "$f" "$sp" 7024
		re=$(tcp_re "$f" ESTABLISHED "$sp" 7024 '' "$ASSURED")
		if at data; then
			compare_both "" "data instead of the last ACK"
			ref_expect "one ESTABLISHED entry, assured" 1 "$re" 432000
			stats_snap
			tcp_craft_go
		fi
		if at late-ack; then
			stats_check "the late ACK" 0 0
			compare_both "" "late ACK"
			ref_expect "one ESTABLISHED entry, assured" 1 "$re" 432000
			ref_expect "nothing else" 1 .
			tcp_craft_go
		fi
		craft_finish
		tcp_sink_stop
		case_end
	fi

	if run_case "wscale-v$f"; then
		# Both ends crafted: B's kernel RSTs to A's segments (no socket) never leave B.
		check "$CT_CASE: drop B's RSTs" tcp_nft_drop_rst "$NS_B" 7025
		TRAFFIC_T0=$(date +%s.%N)
		craft_start wscale "$f" "$sp" 7025
		re=$(tcp_re "$f" ESTABLISHED "$sp" 7025 '' "$ASSURED")
		if at established; then
			compare_both "" "established, B's window 4000 << 7"
			ref_expect "one ESTABLISHED entry, assured" 1 "$re" 432000
			stats_snap
			tcp_craft_go
		fi
		if at in-scaled-window; then
			stats_check "data 400000 bytes ahead, inside the scaled window" 0 0
			compare_both "" "data inside the scaled window"
			ref_expect "ESTABLISHED, assured, data unacknowledged (UNACK timeout)" 1 "$re" 300
			stats_snap
			tcp_craft_go
		fi
		if at beyond-window; then
			stats_check "data 1536000 bytes ahead, beyond the scaled window" 1 1
			compare_both "" "data beyond the window"
			ref_expect "state unchanged: ESTABLISHED, assured" 1 "$re" 300
			ref_expect "nothing else" 1 .
			tcp_craft_go
		fi
		craft_finish
		case_end
	fi
done

netns_del
[ -n "$loaded" ] && check "module unloads" unload_module
echo "# case summary:"
for s in "${CASE_SUMMARY[@]}"; do echo "#   $s"; done
echo "# suite: $(awk -v a="$SUITE_T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
t_done differential-tcp
[ "$T_FAIL" -eq 0 ]
