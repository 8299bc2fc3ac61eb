#!/bin/bash
# Differential test of TCP timeouts and expiry: rust_conntrack's TCP entries must count
# down and disappear as nf_conntrack's do. Meant for simulated time (UML time-travel: the
# 125 s of sleeps pass in moments):
#
#   scripts/vm-run --kernel um-debug --time-travel --timeout 900 -- tests/vm/differential-tcp-expiry.sh
#
# In fresh namespaces (tests/vm/difflib.sh, tests/vm/tcplib.sh) it creates, from A to B:
#   syn-sent-v4    connect() to a port whose answers (B's RSTs) nft drops in B before its
#                  trackers: SYN_SENT 120 s; the SYN retransmissions (1, 3, 7, 15, 31, 63 s)
#                  must not renew it
#   syn-sent-v6    one crafted SYN (scapy, raw socket) to such a port: SYN_SENT 120 s
#   syn-recv-v4/6  a crafted SYN to a listener, never acknowledged (A's kernel RSTs dropped):
#                  SYN_RECV 60 s, not renewed by B's SYN-ACK retransmissions (1..31 s)
#   close-wait-v4  half-closed by A, both sockets held open: CLOSE_WAIT 60 s
#   time-wait-v4/6 closed by A's FIN first: TIME_WAIT 120 s
#   close-v4/6     closed by A's RST (SO_LINGER 0): CLOSE 10 s
# Then 5, 15, 45, 70, 115 and 125 s after the traffic it compares both tables in both
# namespaces (ct_compare: same entries, timeouts within +-2 s) and checks on nf_conntrack
# alone that each entry is there or gone with the seconds-left it should show (computed
# from when its traffic ran; a step within 1 s of an entry's expiry skips that entry's
# presence check, which never happens with time-travel).
#
# Without --time-travel it refuses to run (over 2 minutes of sleeps) unless
# RCT_DIFF_REALTIME=1. RCT_DIFF_OURS as in tests/vm/differential.sh; RCT_DIFF_STEPS
# overrides the steps. Counts in $RCT_OUT/vm-results-differential-tcp-expiry; exits
# non-zero if any check failed.
. "$(dirname "$0")/tcplib.sh"

STEPS=${RCT_DIFF_STEPS:-5 15 45 70 115 125}
SUITE_T0=$(date +%s.%N)

if ! grep -q 'time-travel' /proc/cmdline && [ "${RCT_DIFF_REALTIME:-}" != 1 ]; then
	t_fail "simulated time" "boot with scripts/vm-run --time-travel (or set RCT_DIFF_REALTIME=1)"
	t_done differential-tcp-expiry
	exit 1
fi

modprobe nf_conntrack enable_hooks=1
loaded=
if [ -n "${RCT_KO:-}" ] && [ "$OURS" = rust_conntrack ]; then
	check "module loads" load_module && loaded=1
elif [ "$OURS" = rust_conntrack ]; then
	t_fail "module loads" "no module (vm-run --no-module?)"
fi


CT_CASE=tcp-expiry
check "fresh namespaces" ct_fresh_netns

ASSURED='\[ASSURED\] '
UNREPLIED='\[UNREPLIED\] '

# Processes left running (held connections, a connect() retrying, listeners) and the sync
# directories of the held connections; all ended after the last step.
BG_PIDS=() HOLD_SYNCS=()
keep_bg() {
	BG_PIDS+=($TCP_CLI_PID $TCP_SRV_PID)
	[ -n "$1" ] && HOLD_SYNCS+=("$TCP_SYNC")
	TCP_CLI_PID= TCP_SRV_PID=
}

# entry_seen: waits (5 s at most) until the last entry shows in nf_conntrack in A, for a
# generator that returns before its first packet is sure to be out; then its E_HI.
entry_seen() {
	local i=$((${#E_NAME[@]} - 1)) k
	for k in $(seq 100); do
		[ "$(ct_count "$NS_A" nf_conntrack "${E_RE[$i]}")" -ge 1 ] && break
		sleep 0.05
	done
	E_HI[$i]=$(now)
}

# craft_one SCENARIO CHECKPOINT FAMILY SPORT DPORT: a crafted scenario run through its only
# checkpoint.
craft_one() {
	local at=$2
	tcp_craft_start "$1" "$3" "$4" "$5" 60 && tcp_craft_at "$at" 60 && tcp_craft_go && tcp_craft_end
	local rc=$?
	tcp_craft_abort
	return "$rc"
}

# SYN_SENT: B's answers (RSTs: no listener) never leave B, never reach a tracker.
check "drop B's answers on 7101, 7102" eval "tcp_nft $NS_B output tcp sport 7101 meta mark != $CT_MARK drop &&
	tcp_nft $NS_B output tcp sport 7102 meta mark != $CT_MARK drop"
entry syn-sent-v4 120 "$(tcp_re 4 SYN_SENT '[0-9]+' 7101 "$UNREPLIED" '')" \
	tcp_conn connect-only 10.77.0.2 7101 0 1 300
entry_seen
keep_bg
entry syn-sent-v6 120 "$(tcp_re 6 SYN_SENT 40200 7102 "$UNREPLIED" '')" \
	craft_one syn syn 6 40200 7102

# SYN_RECV: listeners in B; A's kernel RSTs (no socket) dropped.
check "drop A's RSTs from 40201" tcp_nft_drop_rst "$NS_A" 40201
for f in 4 6; do
	dst=10.77.0.2
	[ "$f" = 6 ] && dst=fd77::2
	check "listener in B ($dst)" tcp_sink_start "$dst" 7103 1 300
	keep_bg
	entry "syn-recv-v$f" 60 "$(tcp_re "$f" SYN_RECV 40201 7103 '' '')" craft_one synrecv synack "$f" 40201 7103
done

entry close-wait-v4 60 "$(tcp_re 4 CLOSE_WAIT '[0-9]+' 7104 '' "$ASSURED")" \
	tcp_conn halfclose-client 10.77.0.2 7104 0 1 400
keep_bg hold
entry time-wait-v4 120 "$(tcp_re 4 TIME_WAIT '[0-9]+' 7105 '' "$ASSURED")" tcp_conn fin-client 10.77.0.2 7105
entry time-wait-v6 120 "$(tcp_re 6 TIME_WAIT '[0-9]+' 7105 '' "$ASSURED")" tcp_conn fin-client fd77::2 7105
entry close-v4 10 "$(tcp_re 4 CLOSE '[0-9]+' 7107 '' "$ASSURED")" tcp_conn rst 10.77.0.2 7107
entry close-v6 10 "$(tcp_re 6 CLOSE '[0-9]+' 7107 '' "$ASSURED")" tcp_conn rst fd77::2 7107
END=$(now)
echo "# traffic: $(awk -v a="${E_LO[0]}" -v b="$END" 'BEGIN { printf "%.1f", b - a }') s (simulated)"

expiry_steps tcp-expiry

for d in "${HOLD_SYNCS[@]}"; do : >"$d/release"; done
for p in "${BG_PIDS[@]}"; do
	kill "$p" 2>/dev/null
	wait "$p" 2>/dev/null
done
netns_del
[ -n "$loaded" ] && check "module unloads" unload_module
echo "# suite: $(awk -v a="$SUITE_T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s (simulated)"
t_done differential-tcp-expiry
[ "$T_FAIL" -eq 0 ]
