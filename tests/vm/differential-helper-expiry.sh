#!/bin/bash
# Differential test of the expiry of expectations (FTP, TFTP: 300 s): an expectation made
# and left unused must disappear from /proc/net/rust_conntrack_expect when it disappears from
# /proc/net/nf_conntrack_expect, and expect_delete move on both sides. Meant for simulated
# time (UML time-travel: the 310 s below pass in moments of wall time):
#
#   scripts/vm-run --kernel um-debug --time-travel -- tests/vm/differential-helper-expiry.sh
#
# In difflib.sh's two namespaces (tests/vm/helperlib.sh: pyftpdlib, ftplib, nft `ct helper`
# rules for nf_conntrack), left unused: an FTP EPRT expectation (IPv6; the server's data
# connection is dropped before conntrack, so it gives up), a PASV one (IPv4), both with their
# control connections held open, and two TFTP RRQs' (to UDP sockets that never answer): one
# (IPv4) whose request entry the client keeps alive (an ACK of block 0 every 10 s), one
# (IPv6) whose request entry expires after 30 s unreplied and takes its expectation along
# (6.12 removes a master's expectations with it; both collectors run at least every 60 s,
# so it is checked at 100 s). Then, at $RCT_DIFF_STEPS (default 0, 100, 290 and 310 s)
# after they were made: both expect files (timeouts within 2 s) and both tables; on
# nf_conntrack alone, each expectation there with the seconds left it should have, or gone;
# expect_new/expect_create/expect_delete moved the same way on both sides (made: 4,
# deleted: those gone), in both namespaces.
#
# Without --time-travel it refuses to run, unless RCT_DIFF_REALTIME=1. RCT_DIFF_OURS as in
# tests/vm/differential-helper.sh.
. "$(dirname "$0")/helperlib.sh"

if ! grep -q 'time-travel' /proc/cmdline && [ "${RCT_DIFF_REALTIME:-}" != 1 ]; then
	t_fail "simulated time" "boot with scripts/vm-run --time-travel (or set RCT_DIFF_REALTIME=1)"
	t_done differential-helper-expiry
	exit 1
fi

modprobe nf_conntrack enable_hooks=1
check "nf_conntrack_ftp and nf_conntrack_tftp load" modprobe -a nf_conntrack_ftp nf_conntrack_tftp
loaded=
if [ "$OURS" = rust_conntrack ]; then
	if [ -n "${RCT_KO:-}" ]; then
		check "module loads" load_module && loaded=1
	else
		t_fail "module loads" "no module (vm-run --no-module?)"
	fi
fi

# Every process must outlive the 310 s.
HL_LIMIT=600
A4=10.77.0.1 B4=10.77.0.2 A6=fd77::1 B6=fd77::2
STEPS=${RCT_DIFF_STEPS:-0 100 290 310}

# The expectations made: name, ERE, made between LO and HI, and GONE (s after HI by which
# it must be gone for another reason than its own timeout: its master's expiry; 0: none).
X_NAME=() X_RE=() X_LO=() X_HI=() X_GONE=()
made() { # NAME ERE LO GONE
	X_NAME+=("$1") X_RE+=("$2") X_LO+=("$3") X_HI+=("$EPOCHREALTIME") X_GONE+=("$4")
}

if hl_case helper-expiry pair; then
	ok=1
	step "ftp servers" hl_ftpd "$NS_B" "$B4" || ok=
	step "ftp servers" hl_ftpd "$NS_B" "$B6" || ok=
	step "UDP sockets on port 69 that never answer" hl_udp_sink "$NS_B" "$B4" 69 || ok=
	step "UDP sockets on port 69 that never answer" hl_udp_sink "$NS_B" "$B6" 69 || ok=
	step "the server's EPRT connection blocked" hl_block_active "$NS_B" 40021 || ok=
	if [ -n "$ok" ]; then
		st_begin
		EXP_T0=$EPOCHREALTIME
		# EPRT first: the client holds once the server gave up its data connection (2 s).
		lo=$EPOCHREALTIME
		if step "EPRT (IPv6): the client holds" hl_ftp_hold "$NS_A" "$B6" 21 eprt 40021; then
			exp_re re tcp "$B6" "$A6" 40021 ftp
			made "EPRT expectation" "$re" "$lo" 0
		fi
		lo=$EPOCHREALTIME
		if step "PASV (IPv4): the client holds" hl_ftp_hold "$NS_A" "$B4" 21 pasv; then
			exp_re re tcp "$A4" "$B4" "$HL_HOLD_INFO" ftp
			made "PASV expectation" "$re" "$lo" 0
		fi
		lo=$EPOCHREALTIME
		if step "RRQ (IPv4) from port 40069, its entry kept alive" hl_rrq_hold "$NS_A" "$B4" 40069 69 10; then
			exp_re re udp "$B4" "$A4" 40069 tftp
			made "RRQ expectation" "$re" "$lo" 0
		fi
		# Its master, an unreplied UDP entry, expires after 30 s and takes it along; the
		# masters' collectors (nf_conntrack's and ours) run at least every 60 s.
		lo=$EPOCHREALTIME
		if step "RRQ (IPv6) from port 40070, its entry left to expire" hl_rrq_hold "$NS_A" "$B6" 40070 69 0; then
			exp_re re udp "$B6" "$A6" 40070 tftp
			made "RRQ expectation, master expired" "$re" "$lo" 95
		fi
		made_t=$EPOCHREALTIME
		for at in $STEPS; do
			wait_s=$(awk -v m="$made_t" -v s="$at" -v n="$EPOCHREALTIME" 'BEGIN { d = m + s - n; printf "%.3f", (d > 0 ? d : 0) }')
			sleep "$wait_s"
			echo "# --- t+$at s (after the expectations were made), waited $wait_s s"
			clo=$EPOCHREALTIME
			exp_tables "t+$at"
			chi=$EPOCHREALTIME
			hl_tables "t+$at"
			for ns in $HL_NS; do
				gone=0 present=0 near=0
				echo "# t+$at: nf_conntrack_expect in $ns:"
				exp_show "$ns"
				for i in "${!X_NAME[@]}"; do
					# present / gone / near (too close to its end to say); the printed
					# seconds-left window.
					read -r verdict tmin tmax < <(awk -v lo="${X_LO[$i]}" -v hi="${X_HI[$i]}" -v clo="$clo" \
						-v chi="$chi" -v g="${X_GONE[$i]}" 'BEGIN {
						v = (chi + 1 < lo + 300) ? "present" : (clo - 1 > hi + 300) ? "gone" : "near"
						if (g > 0 && v == "present")
							v = (clo > hi + g) ? "gone" : (chi + 1 < lo + 30) ? "present" : "near"
						printf "%s %d %d\n", v, 300 - (chi - lo) - 1, 300 - (clo - hi) + 1
					}')
					case $verdict in
					present)
						exp_ref "$ns" "t+$at: ${X_NAME[$i]}" 1 "${X_RE[$i]}"
						bad=
						for j in "${!EXP_SNAP_L[@]}"; do
							[ "${EXP_SNAP_NS[$j]}" = "$ns" ] && [[ ${EXP_SNAP_L[$j]} =~ ${X_RE[$i]} ]] || continue
							t=${EXP_SNAP_T[$j]}
							[ "$t" -ge "$tmin" ] && [ "$t" -le "$tmax" ] || bad="$bad $t"
						done
						if [ -z "$bad" ]; then
							t_ok "$CT_CASE: reference: $ns: t+$at: ${X_NAME[$i]}: seconds left"
						else
							t_fail "$CT_CASE: reference: $ns: t+$at: ${X_NAME[$i]}: seconds left" "got$bad, want $tmin..$tmax"
						fi
						present=$((present + 1))
						;;
					gone)
						exp_ref "$ns" "t+$at: ${X_NAME[$i]} gone" 0 "${X_RE[$i]}"
						gone=$((gone + 1))
						;;
					*)
						echo "# t+$at: $ns: ${X_NAME[$i]}: too close to its end to check"
						near=$((near + 1))
						;;
					esac
				done
				[ "$near" -gt 0 ] || exp_ref "$ns" "t+$at: nothing else" "$present" .
				# Made: every one; deleted: those gone (when none is near its end).
				[ "$near" -gt 0 ] || st_check "t+$at" "0 ${#X_NAME[@]} $gone" "$ns"
			done
		done
	fi
	hl_case_end
fi

netns_del
[ -n "$loaded" ] && check "module unloads" unload_module
t_done differential-helper-expiry
[ "$T_FAIL" -eq 0 ]
