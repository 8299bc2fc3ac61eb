#!/bin/bash
# Differential tests across a router and through NAT: the same traffic through nf_conntrack
# and rust_conntrack, side by side in three namespaces, client -- router -- server
# (tests/vm/natlib.sh: 10.78.1.0/24 and fd78:1::/64 on the client side, 10.78.2.0/24 and
# fd78:2::/64 on the server side); after the traffic both tables must read the same in
# every namespace (difflib.sh's ct_compare: `use=` ignored, timeouts within +-2 s).
#
#   scripts/vm-run --kernel um-debug -- tests/vm/differential-nat.sh
#
# Every case runs in fresh namespaces, IPv4 and IPv6 (nft `ip` and `ip6` nat tables), and
# compares the three namespaces' tables. Checks named "reference: ..." look at nf_conntrack
# alone: they say the traffic did what the case means, above all that the router's (or
# the namespace's) reply tuples show the translation.
#  1. forward: UDP request/reply, a TCP connection (data, closed: TIME_WAIT) and ICMP echo
#     forwarded without NAT; the same entry in all three namespaces.
#  2. forward-drop: an nft forward rule drops one UDP flow in the router: no entry there in
#     either table (the client has its [UNREPLIED] one), and no unconfirmed rust_conntrack
#     entry is left in the router.
#  3. NAT: snat (`snat to` the router's server-side address), masq (`masquerade`), dnat
#     (to the server, for a router address and port; UDP, TCP, echo), redirect (`redirect
#     to :PORT`, the servers in the router: local delivery), dnat-output (`type nat hook
#     output` in the client: locally generated packets), snat-input (`type nat hook input`
#     in the server: locally delivered packets), port-remap (two client addresses, the same
#     source port, SNAT to one address: nf_nat remaps the second; UDP and TCP), icmp-id
#     (two clients ping with the same echo id through masquerade: the second id remapped),
#     icmp-error (port unreachable from the server for a SNATed and a DNATed UDP flow: the
#     error reaches the client, creates no entry, the UDP entries stay [UNREPLIED]).
#  4. udp-stream: a SNATed UDP flow answered for > 2 s: [ASSURED]; tcp-nat: a connection
#     through DNAT and SNAT at once, compared while ESTABLISHED [ASSURED] and idle, then
#     in TIME_WAIT after the close.
#  5. flood: $RCT_NAT_FLOWS (3000) new SNATed UDP flows, one packet each: the tables agree,
#     and rust_conntrack's unconfirmed count returns to 0 in every namespace.
# The unconfirmed checks read the `unconfirmed` column of /proc/net/stat/rust_conntrack;
# without it they are skipped with a "# skip" line (natlib.sh unconfirmed_zero).
#
# Environment (through vm-run with `env`): RCT_DIFF_CASES (ERE on case names, e.g.
# 'snat|dnat'), RCT_NAT_FLOWS (flows of the flood cases), RCT_NAT_UNCONFIRMED_WAIT (s,
# default 5), RCT_DIFF_OURS (harness self-test: nf_conntrack compares the reference with
# itself, and every check must pass). Mismatches print a diff; full diffs and raw tables go
# to $RCT_OUT/differential/. Counts in $RCT_OUT/vm-results-differential-nat; exits
# non-zero if any check failed.
. "$(dirname "$0")/natlib.sh"

FLOWS=${RCT_NAT_FLOWS:-3000}
SUITE_T0=$EPOCHREALTIME

modprobe nf_conntrack enable_hooks=1
check "NAT modules load" modprobe -a nf_nat nft_chain_nat nft_nat nft_masq nft_redir
loaded=
if [ -n "${RCT_KO:-}" ] && [ "$OURS" = rust_conntrack ]; then
	check "module loads" load_module && loaded=1
elif [ "$OURS" = rust_conntrack ]; then
	t_fail "module loads" "no module (vm-run --no-module?)"
fi

# xre VAR L4 STATE FLAGS TUPLES: VAR = the ERE of an entry of family $F (natlib.sh ent);
# TUPLES "OSRC ODST SPORT DPORT RSRC RDST SPORT DPORT" (udp, tcp) or "OSRC ODST ID RSRC RDST
# ID" (icmp: echo request and reply); ports and ids may be EREs; FLAGS: unreplied, assured.
xre() {
	local var=$1 l4=$2 state=$3 flags=$4
	shift 4
	if [ "$l4" = icmp ]; then
		# shellcheck disable=SC2086
		ent "$var" icmp "$state" "$1" "$2" "$ECHO_REQ$3" "$4" "$5" "$ECHO_REP$6" $flags
	else
		# shellcheck disable=SC2086
		ent "$var" "$l4" "$state" "$1" "$2" "sport=$3 dport=$4" "$5" "$6" "sport=$7 dport=$8" $flags
	fi
}

# x3 WHAT COUNT TIMEOUT L4 STATE FLAGS TUPLES_C TUPLES_R TUPLES_S: ref (natlib.sh) in the
# client, router and server namespaces ("" skips one; TIMEOUT "" checks no timeout).
x3() {
	local what=$1 count=$2 timeout=$3 l4=$4 state=$5 flags=$6 ns i=7 xre_out
	for ns in $NAT_ALL; do
		if [ -n "${!i}" ]; then
			# shellcheck disable=SC2086
			xre xre_out "$l4" "$state" "$flags" ${!i}
			ref "$ns" "$what" "$count" "$xre_out" "$timeout"
		fi
		i=$((i + 1))
	done
}

# x1 NS WHAT COUNT TIMEOUT L4 STATE FLAGS TUPLES: one namespace.
x1() {
	local ns=$1 what=$2 count=$3 timeout=$4 l4=$5 state=$6 flags=$7 xre_out
	# shellcheck disable=SC2086
	xre xre_out "$l4" "$state" "$flags" $8
	ref "$ns" "$what" "$count" "$xre_out" "$timeout"
}

totals() { # CLIENT ROUTER SERVER
	ref_total "$NAT_C" "$1"
	ref_total "$NAT_R" "$2"
	ref_total "$NAT_S" "$3"
}

# snat_case NAME ACTION UDP_PORT TCP_PORT ECHO_ID: UDP, TCP and echo from the client to the
# server, translated by ACTION in the router's postrouting (snat to RS, or masquerade).
snat_case() {
	local name=$1 action=$2 up=$3 tp=$4 id=$5
	nat_run_case "$name-v$F" || return 0
	check "$CT_CASE: nft: $action in the router" nat_nft "$NAT_R" <<EOF
table $IP rct_nat {
	chain post { type nat hook postrouting priority srcnat; policy accept; oifname "veth-rs" $action; }
}
EOF
	step UDP gen_udp "$NAT_S" "$S" "$up" "$C" "$S" "$up" 40000
	step TCP gen_tcp "$NAT_S" "$S" "$tp" "$C" "$S" "$tp" 41000
	step echo gen_echo "$C" "$S" "$id"
	nat_tables
	x3 "UDP entry, replied, reply to $RS" 1 30 udp '' '' \
		"$C $S 40000 $up $S $C $up 40000" "$C $S 40000 $up $S $RS $up 40000" "$RS $S 40000 $up $S $RS $up 40000"
	x3 "TCP entry, TIME_WAIT, assured, reply to $RS" 1 120 tcp TIME_WAIT assured \
		"$C $S 41000 $tp $S $C $tp 41000" "$C $S 41000 $tp $S $RS $tp 41000" "$RS $S 41000 $tp $S $RS $tp 41000"
	id=$((id))
	x3 "echo entry, reply to $RS" 1 30 icmp '' '' "$C $S $id $S $C $id" "$C $S $id $S $RS $id" "$RS $S $id $S $RS $id"
	totals 3 3 3
	case_end
}

ICMP_ANY='^ipv[46] +[0-9]+ icmp'

for F in 4 6; do
	nat_family "$F"
	if [ "$F" = 6 ]; then ICMPT=icmpv6; else ICMPT=icmp; fi

	# --- 1. forwarding without NAT ------------------------------------------------------
	if nat_run_case "forward-v$F"; then
		step UDP gen_udp "$NAT_S" "$S" 5300 "$C" "$S" 5300 40000
		step TCP gen_tcp "$NAT_S" "$S" 7000 "$C" "$S" 7000 41000
		step echo gen_echo "$C" "$S" 0x4201
		nat_tables
		u="$C $S 40000 5300 $S $C 5300 40000"
		t="$C $S 41000 7000 $S $C 7000 41000"
		i="$C $S $((0x4201)) $S $C $((0x4201))"
		x3 "UDP entry, replied" 1 30 udp '' '' "$u" "$u" "$u"
		x3 "TCP entry, TIME_WAIT, assured" 1 120 tcp TIME_WAIT assured "$t" "$t" "$t"
		x3 "echo entry" 1 30 icmp '' '' "$i" "$i" "$i"
		totals 3 3 3
		case_end
	fi

	# --- 2. a forward drop --------------------------------------------------------------
	if nat_run_case "forward-drop-v$F"; then
		check "$CT_CASE: nft: forward drop of UDP port 5310 in the router" nat_nft "$NAT_R" <<EOF
table inet rct_filter {
	chain rct_forward { type filter hook forward priority filter; policy accept; udp dport 5310 drop; }
}
EOF
		step "UDP, another port" gen_udp "$NAT_S" "$S" 5300 "$C" "$S" 5300 40000
		# Last: no later traffic in the router to reap what the drops left.
		step "UDP to the dropped port, one way" gen_udp_send "$C" "$S" 5310 40010 3
		nat_tables
		u="$C $S 40000 5300 $S $C 5300 40000"
		x3 "UDP entry of the other port, replied" 1 30 udp '' '' "$u" "$u" "$u"
		x1 "$NAT_C" "the dropped flow, [UNREPLIED]" 1 30 udp '' unreplied "$C $S 40010 5310 $S $C 5310 40010"
		ref "$NAT_R" "no entry for the dropped flow" 0 'dport=5310 '
		ref "$NAT_S" "the dropped flow never arrived" 0 'dport=5310 '
		totals 2 1 1
		unconfirmed_zero "$NAT_R" "after the drops"
		case_end
	fi

	# --- 3. NAT -------------------------------------------------------------------------
	snat_case snat "snat to $RS" 5320 7020 0x4202
	snat_case masq masquerade 5321 7021 0x4203

	if nat_run_case "dnat-v$F"; then
		check "$CT_CASE: nft: dnat in the router" nat_nft "$NAT_R" <<EOF
table $IP rct_nat {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "veth-rc" $IP daddr $RC udp dport 5330 dnat to $(hostport "$S" 5331)
		iifname "veth-rc" $IP daddr $RC tcp dport 7030 dnat to $(hostport "$S" 7031)
		iifname "veth-rc" $IP daddr $RC $ICMPT type echo-request dnat to $S
	}
}
EOF
		step UDP gen_udp "$NAT_S" "$S" 5331 "$C" "$RC" 5330 40000
		step TCP gen_tcp "$NAT_S" "$S" 7031 "$C" "$RC" 7030 41000
		step echo gen_echo "$C" "$RC" 0x4204
		nat_tables
		x3 "UDP entry, replied, reply from $S port 5331" 1 30 udp '' '' \
			"$C $RC 40000 5330 $RC $C 5330 40000" "$C $RC 40000 5330 $S $C 5331 40000" "$C $S 40000 5331 $S $C 5331 40000"
		x3 "TCP entry, TIME_WAIT, assured, reply from $S port 7031" 1 120 tcp TIME_WAIT assured \
			"$C $RC 41000 7030 $RC $C 7030 41000" "$C $RC 41000 7030 $S $C 7031 41000" "$C $S 41000 7031 $S $C 7031 41000"
		id=$((0x4204))
		x3 "echo entry, reply from $S" 1 30 icmp '' '' "$C $RC $id $RC $C $id" "$C $RC $id $S $C $id" "$C $S $id $S $C $id"
		totals 3 3 3
		case_end
	fi

	if nat_run_case "redirect-v$F"; then
		check "$CT_CASE: nft: redirect in the router" nat_nft "$NAT_R" <<EOF
table $IP rct_nat {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "veth-rc" $IP daddr $S udp dport 5340 redirect to :5341
		iifname "veth-rc" $IP daddr $S tcp dport 7040 redirect to :7041
	}
}
EOF
		# The servers run in the router, on the address redirect picks: the incoming
		# interface's.
		step UDP gen_udp "$NAT_R" "$RC" 5341 "$C" "$S" 5340 40000
		step TCP gen_tcp "$NAT_R" "$RC" 7041 "$C" "$S" 7040 41000
		nat_tables
		x3 "UDP entry, replied, reply from $RC port 5341" 1 30 udp '' '' \
			"$C $S 40000 5340 $S $C 5340 40000" "$C $S 40000 5340 $RC $C 5341 40000" ""
		x3 "TCP entry, TIME_WAIT, assured, reply from $RC port 7041" 1 120 tcp TIME_WAIT assured \
			"$C $S 41000 7040 $S $C 7040 41000" "$C $S 41000 7040 $RC $C 7041 41000" ""
		totals 2 2 0
		case_end
	fi

	if nat_run_case "dnat-output-v$F"; then
		check "$CT_CASE: nft: dnat at output in the client" nat_nft "$NAT_C" <<EOF
table $IP rct_nat {
	chain out {
		type nat hook output priority -100; policy accept;
		$IP daddr $RC udp dport 5350 dnat to $(hostport "$S" 5351)
		$IP daddr $RC tcp dport 7050 dnat to $(hostport "$S" 7051)
	}
}
EOF
		step UDP gen_udp "$NAT_S" "$S" 5351 "$C" "$RC" 5350 40000
		step TCP gen_tcp "$NAT_S" "$S" 7051 "$C" "$RC" 7050 41000
		nat_tables
		u="$C $S 40000 5351 $S $C 5351 40000"
		x3 "UDP entry, replied (client: reply from $S port 5351)" 1 30 udp '' '' \
			"$C $RC 40000 5350 $S $C 5351 40000" "$u" "$u"
		t="$C $S 41000 7051 $S $C 7051 41000"
		x3 "TCP entry, TIME_WAIT, assured (client: reply from $S port 7051)" 1 120 tcp TIME_WAIT assured \
			"$C $RC 41000 7050 $S $C 7051 41000" "$t" "$t"
		totals 2 2 2
		case_end
	fi

	if nat_run_case "snat-input-v$F"; then
		check "$CT_CASE: nft: snat at input in the server" nat_nft "$NAT_S" <<EOF
table $IP rct_nat {
	chain in {
		type nat hook input priority 100; policy accept;
		$IP saddr $C udp dport 5360 snat to $SX
		$IP saddr $C tcp dport 7060 snat to $SX
	}
}
EOF
		step UDP gen_udp "$NAT_S" "$S" 5360 "$C" "$S" 5360 40000
		step TCP gen_tcp "$NAT_S" "$S" 7060 "$C" "$S" 7060 41000
		nat_tables
		u="$C $S 40000 5360 $S $C 5360 40000"
		x3 "UDP entry, replied (server: reply to $SX)" 1 30 udp '' '' "$u" "$u" "$C $S 40000 5360 $S $SX 5360 40000"
		t="$C $S 41000 7060 $S $C 7060 41000"
		x3 "TCP entry, TIME_WAIT, assured (server: reply to $SX)" 1 120 tcp TIME_WAIT assured \
			"$t" "$t" "$C $S 41000 7060 $S $SX 7060 41000"
		totals 2 2 2
		case_end
	fi

	if nat_run_case "port-remap-v$F"; then
		check "$CT_CASE: second client address" nat_add_c2
		check "$CT_CASE: nft: snat to $RS in the router" nat_nft "$NAT_R" <<EOF
table $IP rct_nat {
	chain post { type nat hook postrouting priority srcnat; policy accept; oifname "veth-rs" snat to $RS; }
}
EOF
		step "UDP from $C" gen_udp "$NAT_S" "$S" 5370 "$C" "$S" 5370 40000
		step "UDP from $C2, same port" gen_udp "$NAT_S" "$S" 5370 "$C2" "$S" 5370 40000
		step "TCP from $C" gen_tcp "$NAT_S" "$S" 7070 "$C" "$S" 7070 41000
		step "TCP from $C2, same port" gen_tcp "$NAT_S" "$S" 7070 "$C2" "$S" 7070 41000
		nat_tables
		for c in "$C" "$C2"; do
			x3 "UDP entry from $c, replied" 1 30 udp '' '' \
				"$c $S 40000 5370 $S $c 5370 40000" "$c $S 40000 5370 $S $RS 5370 [0-9]+" ""
			x3 "TCP entry from $c, TIME_WAIT, assured" 1 120 tcp TIME_WAIT assured \
				"$c $S 41000 7070 $S $c 7070 41000" "$c $S 41000 7070 $S $RS 7070 [0-9]+" ""
		done
		x1 "$NAT_R" "UDP: the first flow keeps port 40000" 1 '' udp '' '' "$C $S 40000 5370 $S $RS 5370 40000"
		x1 "$NAT_R" "UDP: the second flow's port remapped" 0 '' udp '' '' "$C2 $S 40000 5370 $S $RS 5370 40000"
		x1 "$NAT_R" "TCP: the first connection keeps port 41000" 1 '' tcp TIME_WAIT assured "$C $S 41000 7070 $S $RS 7070 41000"
		x1 "$NAT_R" "TCP: the second connection's port remapped" 0 '' tcp TIME_WAIT assured "$C2 $S 41000 7070 $S $RS 7070 41000"
		x1 "$NAT_S" "two UDP entries from $RS" 2 30 udp '' '' "$RS $S [0-9]+ 5370 $S $RS 5370 [0-9]+"
		x1 "$NAT_S" "one of them from port 40000" 1 '' udp '' '' "$RS $S 40000 5370 $S $RS 5370 40000"
		x1 "$NAT_S" "two TCP entries from $RS" 2 120 tcp TIME_WAIT assured "$RS $S [0-9]+ 7070 $S $RS 7070 [0-9]+"
		x1 "$NAT_S" "one of them from port 41000" 1 '' tcp TIME_WAIT assured "$RS $S 41000 7070 $S $RS 7070 41000"
		totals 4 4 4
		case_end
	fi

	if nat_run_case "icmp-id-v$F"; then
		check "$CT_CASE: second client address" nat_add_c2
		check "$CT_CASE: nft: masquerade in the router" nat_nft "$NAT_R" <<EOF
table $IP rct_nat {
	chain post { type nat hook postrouting priority srcnat; policy accept; oifname "veth-rs" masquerade; }
}
EOF
		step "echo from $C, id 0x4242" gen_echo "$C" "$S" 0x4242
		step "echo from $C2, id 0x4242" gen_echo "$C2" "$S" 0x4242
		id=$((0x4242))
		nat_tables
		for c in "$C" "$C2"; do
			x3 "echo entry from $c" 1 30 icmp '' '' "$c $S $id $S $c $id" "$c $S $id $S $RS [0-9]+" ""
		done
		x1 "$NAT_R" "the first keeps id $id" 1 '' icmp '' '' "$C $S $id $S $RS $id"
		x1 "$NAT_R" "the second's id remapped" 0 '' icmp '' '' "$C2 $S $id $S $RS $id"
		x1 "$NAT_S" "two echo entries from $RS" 2 30 icmp '' '' "$RS $S [0-9]+ $S $RS [0-9]+"
		x1 "$NAT_S" "one of them with id $id" 1 '' icmp '' '' "$RS $S $id $S $RS $id"
		totals 2 2 2
		case_end
	fi

	if nat_run_case "icmp-error-v$F"; then
		check "$CT_CASE: nft: snat and dnat in the router" nat_nft "$NAT_R" <<EOF
table $IP rct_nat {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "veth-rc" $IP daddr $RC udp dport 5390 dnat to $(hostport "$S" 5391)
	}
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "veth-rs" udp dport 5380 snat to $RS
	}
}
EOF
		step "UDP to a closed port, SNATed: port unreachable" gen_udp_unreach "$C" "$S" 5380 40000
		step "UDP to a closed port, DNATed: port unreachable" gen_udp_unreach "$C" "$RC" 5390 40001
		nat_tables
		x3 "SNATed UDP entry, still [UNREPLIED]" 1 30 udp '' unreplied \
			"$C $S 40000 5380 $S $C 5380 40000" "$C $S 40000 5380 $S $RS 5380 40000" "$RS $S 40000 5380 $S $RS 5380 40000"
		x3 "DNATed UDP entry, still [UNREPLIED]" 1 30 udp '' unreplied \
			"$C $RC 40001 5390 $RC $C 5390 40001" "$C $RC 40001 5390 $S $C 5391 40001" "$C $S 40001 5391 $S $C 5391 40001"
		for ns in $NAT_ALL; do
			ref "$ns" "the errors create no entry" 0 "$ICMP_ANY"
		done
		totals 2 2 2
		case_end
	fi

	# --- 4. assured through NAT ---------------------------------------------------------
	if nat_run_case "udp-stream-v$F"; then
		check "$CT_CASE: nft: snat to $RS in the router" nat_nft "$NAT_R" <<EOF
table $IP rct_nat {
	chain post { type nat hook postrouting priority srcnat; policy accept; oifname "veth-rs" snat to $RS; }
}
EOF
		step "UDP both ways for 3 s" gen_udp_stream "$NAT_S" "$S" 5302 "$C" "$S" 5302 40000 3
		nat_tables
		x3 "UDP entry, [ASSURED]" 1 120 udp '' assured \
			"$C $S 40000 5302 $S $C 5302 40000" "$C $S 40000 5302 $S $RS 5302 40000" "$RS $S 40000 5302 $S $RS 5302 40000"
		totals 1 1 1
		case_end
	fi

	if nat_run_case "tcp-nat-v$F"; then
		check "$CT_CASE: nft: dnat and snat in the router" nat_nft "$NAT_R" <<EOF
table $IP rct_nat {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "veth-rc" $IP daddr $RC tcp dport 7090 dnat to $(hostport "$S" 7091)
	}
	chain post { type nat hook postrouting priority srcnat; policy accept; oifname "veth-rs" snat to $RS; }
}
EOF
		if step "TCP connection, held open" gen_tcp_hold "$NAT_S" "$S" 7091 "$C" "$RC" 7090 41000; then
			nat_tables "" open
			for st in ESTABLISHED TIME_WAIT; do
				if [ "$st" = TIME_WAIT ]; then
					step "close (client first)" nat_tcp_release
					nat_tables "" closed
					timeout=120
				else
					timeout=432000
				fi
				x3 "TCP entry, $st, assured" 1 "$timeout" tcp "$st" assured \
					"$C $RC 41000 7090 $RC $C 7090 41000" "$C $RC 41000 7090 $S $RS 7091 41000" \
					"$RS $S 41000 7091 $S $RS 7091 41000"
				totals 1 1 1
			done
		fi
		case_end
	fi

	# --- 5. a flood of SNATed flows -----------------------------------------------------
	if nat_run_case "flood-$FLOWS-v$F"; then
		check "$CT_CASE: nft: snat to $RS in the router" nat_nft "$NAT_R" <<EOF
table $IP rct_nat {
	chain post { type nat hook postrouting priority srcnat; policy accept; oifname "veth-rs" snat to $RS; }
}
EOF
		step "$FLOWS UDP flows" gen_nat_flows "$NAT_S" "$S" 5304 "$C" "$S" 5304 20000 "$FLOWS"
		nat_tables
		x3 "$FLOWS [UNREPLIED] UDP entries" "$FLOWS" "" udp '' unreplied \
			"$C $S [0-9]+ 5304 $S $C 5304 [0-9]+" "$C $S [0-9]+ 5304 $S $RS 5304 [0-9]+" \
			"$RS $S [0-9]+ 5304 $S $RS 5304 [0-9]+"
		for ns in $NAT_ALL; do
			unconfirmed_zero "$ns" "after the flood"
		done
		case_end
	fi
done

nat_netns_del
rm -f "$NAT_RAW"
[ -n "$loaded" ] && check "module unloads" unload_module
echo "# cases:"
for c in "${CASE_SUMMARY[@]}"; do echo "#   $c"; done
echo "# suite: $(fsub "$EPOCHREALTIME" "$SUITE_T0") s"
t_done differential-nat
[ "$T_FAIL" -eq 0 ]
