#!/bin/bash
# Differential tests of the connection-tracking helpers and their expectations (FTP, TFTP):
# the same sessions through nf_conntrack (helpers assigned by nft `ct helper` rules, as 6.12
# wants) and rust_conntrack (helpers assigned by port); then both sides' expectations
# (/proc/net/nf_conntrack_expect and /proc/net/rust_conntrack_expect: the same lines,
# timeouts within 2 s), tables (tests/vm/difflib.sh) and statistics (expect_new,
# expect_create, expect_delete, summed over the CPUs: moved the same way) must agree.
#
#   scripts/vm-run --kernel um-debug -- tests/vm/differential-helper.sh
#
# Real clients and servers (tests/vm/helperlib.sh): pyftpdlib, Python's ftplib (which stops
# between the command that makes an expectation and the transfer), curl, tftpd-hpa and
# tftp-hpa. Cases, in two namespaces (difflib.sh's pair, both compared) unless said:
#   ftp-vF        IPv4: PASV (227), EPSV (229), PORT and EPRT; IPv6: EPSV and EPRT; one
#                 after the other: the expectation while the client holds, then the data
#                 connection's entry and no expectation left after the transfer; then a
#                 complete transfer by curl in the same mode. PORT and EPRT are held by
#                 dropping the server's data connection before conntrack until the release
#                 (the server gives up, 421), then sent again: the new expectation replaces
#                 the old (expect_delete).
#   ftp-foreign   PORT and EPRT naming a third address (the server refuses them), and a 227
#                 reply naming one (pyftpdlib's masquerade_address): no expectation anywhere.
#   router-ftp-vF / masq-ftp-vF   across a forwarding router (natlib.sh's three
#                 namespaces, all compared), then through a masquerading router (nft
#                 masquerade on its server side; nf_nat_ftp rewrites PORT and EPRT). The
#                 masquerade case prints nf_conntrack's expectations in every namespace and
#                 the router's table; nf_nat_ftp changes the length of the command (and
#                 nf_conntrack adjusts the sequence numbers after it) with an IPv4 client
#                 address longer than the router's (shorter), with SNAT to a longer address
#                 than the client's (longer), and over IPv6, where it writes the router's
#                 address out in full (longer).
#   tftp-vF       a crafted RRQ to a UDP socket that never answers (the expectation stays),
#                 then DATA from another port of the server, acknowledged; then tftp-hpa's
#                 get and put against tftpd-hpa.
#   helper-sysctl-off   /proc/sys/net/rust_conntrack/helper = 0 in both namespaces and no
#                 nft rule: neither side expects anything (skipped if the file is absent).
#   ports         rust_conntrack reloaded with ftp_ports=2121 tftp_ports=6969, and
#                 nf_conntrack_ftp/nf_conntrack_tftp reloaded with ports=2121 / ports=6969
#                 (their helpers are then named "ftp-2121" and "tftp-0", as 6.12 names
#                 them): an expectation on 2121 and 6969, none on 21 and 69. Last (it
#                 reloads the module).
# Expiry: tests/vm/differential-helper-expiry.sh (simulated time).
# Environment: RCT_DIFF_CASES (an ERE on case names), RCT_DIFF_SKIP (cases not to run),
# RCT_DIFF_OURS=nf_conntrack to check the harness against nf_conntrack alone (ours is then
# nf_conntrack's own files), RCT_DIFF_SMP (difflib.sh).
. "$(dirname "$0")/helperlib.sh"

modprobe nf_conntrack enable_hooks=1
check "nf_conntrack_ftp, nf_conntrack_tftp, nf_nat_ftp and nf_nat_tftp load" \
	modprobe -a nf_conntrack_ftp nf_conntrack_tftp nf_nat_ftp nf_nat_tftp
loaded=
if [ "$OURS" = rust_conntrack ]; then
	if [ -n "${RCT_KO:-}" ]; then
		check "module loads" load_module && loaded=1
	else
		t_fail "module loads" "no module (vm-run --no-module?)"
	fi
fi

A4=10.77.0.1 B4=10.77.0.2 A6=fd77::1 B6=fd77::2
declare -A WANT

# ref_data PORT WHEN: nf_conntrack holds one entry of a TCP connection to PORT in every
# namespace (the data connection), in the snapshot of the last hl_tables.
ref_data() {
	local ns
	for ns in $HL_NS; do
		ct_ref "$ns" "$2: the data connection to port $1" 1 "^ipv[46] +[0-9]+ tcp .* dport=$1 (\\[UNREPLIED\\] )?src="
	done
}

# exp_refs WHEN PROTO PORT HELPER: in every namespace NS, nf_conntrack_expect holds one
# line, the expectation from ${WANT[NS]} ("SRC DST") to PORT (or ${WANT_PORT[NS]}).
declare -A WANT_PORT
exp_refs() {
	local when=$1 proto=$2 port=$3 helper=$4 ns s d re
	for ns in $HL_NS; do
		read -r s d <<<"${WANT[$ns]}"
		exp_re re "$proto" "$s" "$d" "${WANT_PORT[$ns]:-$port}" "$helper"
		exp_ref "$ns" "$when: the expectation $s -> $d port ${WANT_PORT[$ns]:-$port}" 1 "$re" 300
		exp_ref "$ns" "$when: nothing else" 1 .
	done
}

exp_none() { # WHEN
	local ns
	for ns in $HL_NS; do exp_ref_none "$ns" "$1: no expectation"; done
}

# ftp_held MODE CLIENT_NS SERVER_NS SERVER_ADDR [BINDPORT=40021]: one FTP session held
# after MODE (pasv, epsv, port, eprt) and its checks; WANT[NS] is the expectation each
# namespace must show. PORT and EPRT: the client listens on BINDPORT.
ftp_held() {
	local mode=$1 cns=$2 sns=$3 saddr=$4 bport=${5:-40021} active='' port ns M=${1^^}
	case $mode in port | eprt) active=1 ;; esac
	st_begin
	if [ -n "$active" ] && ! step "$M: the server's data connection blocked" hl_block_active "$sns" "$bport"; then
		return 1
	fi
	EXP_T0=$EPOCHREALTIME
	if ! step "$M: the client holds after the reply" hl_ftp_hold "$cns" "$saddr" 21 "$mode" "$bport"; then
		hl_kill_all
		return 1
	fi
	port=$HL_HOLD_INFO
	exp_tables "$M held"
	exp_refs "$M held" tcp "$port" ftp
	[ -z "${HL_SHOW_EXP:-}" ] || for ns in $HL_NS; do echo "# $M held: nf_conntrack_expect in $ns:"; exp_show "$ns"; done
	st_check "$M held" "0 1 0"
	[ -z "$active" ] || step "$M: the server's data connection unblocked" hl_unblock "$sns"
	step "$M: transfer" hl_release
	hl_tables "$M, after the transfer"
	show_ct "$M, after the transfer"
	ref_data "${WANT_PORT[$sns]:-$port}" "$M, after the transfer"
	exp_tables "$M, after the transfer"
	exp_none "$M, after the transfer"
	# PORT and EPRT: the second command's expectation replaced the first.
	if [ -n "$active" ]; then st_check "$M and transfer" "1 2 2"; else st_check "$M and transfer" "1 1 1"; fi
}

# ftp_curl WHAT CLIENT_NS URL CURL_OPTIONS...: a complete transfer and its checks.
ftp_curl() {
	local what=$1 cns=$2 url=$3
	shift 3
	st_begin
	step "curl $what" hl_curl "$cns" "$url" "$@"
	hl_tables "curl $what"
	show_ct "curl $what"
	exp_tables "curl $what"
	exp_none "curl $what"
	st_check "curl $what" "1 1 1"
}

# show_ct WHEN: with HL_SHOW_CT=NS, nf_conntrack's table in NS as hl_tables read it.
show_ct() {
	[ -n "${HL_SHOW_CT:-}" ] || return 0
	echo "# $1: nf_conntrack in $HL_SHOW_CT:"
	printf '%s' "${CT_SNAP[$HL_SHOW_CT]:-}" | sed 's/^/#   /'
}

url_of() { case $1 in *:*) echo "ftp://[$1]/data" ;; *) echo "ftp://$1/data" ;; esac; }

# curl's options for each mode.
declare -A CURL_OPTS=([pasv]="--ftp-pasv --disable-epsv" [epsv]="--ftp-pasv"
	[port]="-P - --disable-eprt" [eprt]="-P -")

# --- FTP between two namespaces -----------------------------------------------------------

# One case per family, the modes one after the other (an active mode's client listens on a
# port of its own: each data connection has an entry of its own).
for fam in 4 6; do
	if [ "$fam" = 4 ]; then a=$A4 b=$B4 modes="pasv epsv port eprt"; else a=$A6 b=$B6 modes="epsv eprt"; fi
	hl_case "ftp-v$fam" pair || continue
	if step "ftp server" hl_ftpd "$NS_B" "$b"; then
		bport=40020
		for mode in $modes; do
			case $mode in
			pasv | epsv) WANT=([$NS_A]="$a $b" [$NS_B]="$a $b") ;;
			*) WANT=([$NS_A]="$b $a" [$NS_B]="$b $a") ;;
			esac
			WANT_PORT=()
			bport=$((bport + 1))
			ftp_held "$mode" "$NS_A" "$NS_B" "$b" "$bport"
			# shellcheck disable=SC2086
			ftp_curl "${mode^^}" "$NS_A" "$(url_of "$b")" -g ${CURL_OPTS[$mode]}
		done
	fi
	hl_case_end
done

if hl_case ftp-foreign pair; then
	if step "ftp servers" hl_ftpd "$NS_B" "$B4" && step "ftp servers" hl_ftpd "$NS_B" "$B6"; then
		st_begin
		step "PORT naming 10.77.0.99 (refused)" hl_ftp_cmd "$NS_A" "$B4" 21 port-foreign 10.77.0.99
		step "EPRT naming 10.77.0.99 (refused)" hl_ftp_cmd "$NS_A" "$B4" 21 eprt-foreign 10.77.0.99
		step "EPRT naming fd77::99 (refused)" hl_ftp_cmd "$NS_A" "$B6" 21 eprt-foreign fd77::99
		exp_tables "PORT/EPRT naming a third address"
		exp_none "PORT/EPRT naming a third address"
		st_check "PORT/EPRT naming a third address" "0 0 0"
		hl_tables "PORT/EPRT naming a third address"
	fi
	hl_kill_all
	# The server's 227 reply names a third address.
	if step "ftp server naming 10.77.0.99 in its 227 replies" hl_ftpd "$NS_B" "$B4" 21 masq=10.77.0.99; then
		st_begin
		step "PASV answered with 10.77.0.99" hl_ftp_cmd "$NS_A" "$B4" 21 pasv-only 10.77.0.99
		exp_tables "227 naming a third address"
		exp_none "227 naming a third address"
		st_check "227 naming a third address" "0 0 0"
		hl_tables "227 naming a third address"
	fi
	hl_case_end
fi

# --- FTP across a router, then through a masquerading one ------------------------------

for fam in 4 6; do
	nat_family "$fam"
	if hl_case "router-ftp-v$fam" router; then
		if step "ftp server" hl_ftpd "$NAT_S" "$S"; then
			WANT=([$NAT_C]="$C $S" [$NAT_R]="$C $S" [$NAT_S]="$C $S") WANT_PORT=()
			ftp_held "$([ "$fam" = 4 ] && echo pasv || echo epsv)" "$NAT_C" "$NAT_S" "$S"
			WANT=([$NAT_C]="$S $C" [$NAT_R]="$S $C" [$NAT_S]="$S $C")
			ftp_held eprt "$NAT_C" "$NAT_S" "$S"
			ftp_curl "PORT/EPRT" "$NAT_C" "$(url_of "$S")" -g -P -
		fi
		hl_case_end
	fi
	if hl_case "masq-ftp-v$fam" router; then
		step "masquerade on the router's server side" nat_nft "$NAT_R" <<EOF
table inet rct_nat {
	chain post {
		type nat hook postrouting priority srcnat;
		oifname "veth-rs" masquerade
	}
}
EOF
		# foreign: pyftpdlib compares the EPRT address with the client's as text, and
		# nf_nat_ftp writes the router's IPv6 address out in full.
		if step "ftp server" hl_ftpd "$NAT_S" "$S" 21 foreign; then
			HL_SHOW_EXP=1 HL_SHOW_CT=$NAT_R
			# The server sees the router: its namespace expects the router.
			WANT=([$NAT_C]="$C $S" [$NAT_R]="$C $S" [$NAT_S]="$RS $S") WANT_PORT=()
			ftp_held "$([ "$fam" = 4 ] && echo pasv || echo epsv)" "$NAT_C" "$NAT_S" "$S"
			# nf_nat_ftp rewrites the address (and keeps the port, free): the router and the
			# server expect the connection to the router's address.
			WANT=([$NAT_C]="$S $C" [$NAT_R]="$S $RS" [$NAT_S]="$S $RS")
			ftp_held "$([ "$fam" = 4 ] && echo port || echo eprt)" "$NAT_C" "$NAT_S" "$S"
			HL_SHOW_EXP=
			# IPv6: nf_nat_ftp writes the router's address out in full ("|2|fd78:0002:...:0001|"):
			# the command grows by 30 bytes, and the router's nf_conntrack adjusts the
			# sequence numbers after it.
			ftp_curl "PORT/EPRT" "$NAT_C" "$(url_of "$S")" -g -P -
			if [ "$fam" = 4 ]; then
				# 10,78,1,102 rewritten as 10,78,2,1: the command shrinks by 2 bytes.
				step "a client address longer than the router's" ip -n "$NAT_C" addr add 10.78.1.102/24 dev veth-c
				ftp_curl "PORT from 10.78.1.102 (PORT shortened by NAT)" "$NAT_C" "$(url_of "$S")" \
					--interface 10.78.1.102 -P - --disable-eprt
				# The server connected to the router (PORT rewritten), which sent it on.
				ct_ref "$NAT_R" "PORT from 10.78.1.102: the data connection to the router, to the client" 1 \
					"^ipv4 +2 tcp .* src=${ARE[$S]} dst=${ARE[$RS]} sport=[0-9]+ dport=[0-9]+ src=10\\.78\\.1\\.102 dst=${ARE[$S]} "
				# SNAT to an address longer than the client's, before the masquerade rule:
				# 10,78,1,2 rewritten as 10,78,2,100, the command grows by 2 bytes.
				step "SNAT to 10.78.2.100 before the masquerade" ip -n "$NAT_R" addr add 10.78.2.100/24 dev veth-rs
				step "SNAT to 10.78.2.100 before the masquerade" ip netns exec "$NAT_R" \
					nft insert rule inet rct_nat post oifname "veth-rs" tcp dport 21 snat ip to 10.78.2.100
				ftp_curl "PORT through SNAT to 10.78.2.100 (PORT lengthened by NAT)" "$NAT_C" "$(url_of "$S")" \
					-P - --disable-eprt
				ct_ref "$NAT_R" "PORT through SNAT to 10.78.2.100: the data connection to the router, to the client" 1 \
					"^ipv4 +2 tcp .* src=${ARE[$S]} dst=10\\.78\\.2\\.100 sport=[0-9]+ dport=[0-9]+ src=${ARE[$C]} dst=${ARE[$S]} "
			fi
			HL_SHOW_CT=
		fi
		hl_case_end
	fi
done

# --- TFTP ---------------------------------------------------------------------------------

for fam in 4 6; do
	if [ "$fam" = 4 ]; then a=$A4 b=$B4; else a=$A6 b=$B6; fi
	hl_case "tftp-v$fam" pair || continue
	if step "a UDP socket on port 69 that never answers" hl_udp_sink "$NS_B" "$b" 69; then
		st_begin
		EXP_T0=$EPOCHREALTIME
		if step "RRQ from port 40069, outstanding" hl_rrq_hold "$NS_A" "$b" 40069; then
			WANT=([$NS_A]="$b $a" [$NS_B]="$b $a") WANT_PORT=()
			exp_tables "RRQ outstanding"
			exp_refs "RRQ outstanding" udp 40069 tftp
			st_check "RRQ outstanding" "0 1 0"
			# The answer comes from another port of the server.
			hl_data_from "$NS_B" "$b" 40070 "$a" 40069 &
			data_pid=$!
			step "RRQ answered from port 40070" hl_release
			step "DATA from port 40070 acknowledged" wait "$data_pid"
			hl_tables "RRQ answered"
			for ns in $HL_NS; do
				ct_ref "$ns" "RRQ answered: the entry of the answer" 1 \
					"^ipv[46] +[0-9]+ udp .* sport=40070 dport=40069 .* sport=40069 dport=40070 "
			done
			exp_tables "RRQ answered"
			exp_none "RRQ answered"
			st_check "RRQ answered" "1 1 1"
		fi
	fi
	hl_kill_all
	if step "tftpd" hl_tftpd "$NS_B" "$b"; then
		for op in get put; do
			st_begin
			step "tftp $op" hl_tftp "$NS_A" "$b" "$op"
			hl_tables "tftp $op"
			exp_tables "tftp $op"
			exp_none "tftp $op"
			st_check "tftp $op" "1 1 1"
		done
	fi
	hl_case_end
done

# --- the switch -------------------------------------------------------------------------

SYSCTL=/proc/sys/net/rust_conntrack/helper
if [ "$OURS" != rust_conntrack ]; then
	echo "# skip - helper-sysctl-off: $SYSCTL is rust_conntrack's"
elif HL_NO_NFT=1 hl_case helper-sysctl-off pair; then
	if ! ip netns exec "$NS_A" test -e "$SYSCTL"; then
		echo "# skip - helper-sysctl-off: no $SYSCTL in this module (not there yet)"
	else
		for ns in $HL_NS; do
			check_eq "$CT_CASE: $ns: $SYSCTL is 1 by default" "$(ip netns exec "$ns" cat "$SYSCTL")" 1
			check "$CT_CASE: $ns: $SYSCTL set to 0" ip netns exec "$ns" sh -c "echo 0 >$SYSCTL"
		done
		if step "ftp server" hl_ftpd "$NS_B" "$B4"; then
			st_begin
			if step "PASV: the client holds" hl_ftp_hold "$NS_A" "$B4" 21 pasv; then
				exp_tables "PASV held, no helper"
				exp_none "PASV held, no helper"
				step "transfer" hl_release
			fi
			hl_tables "after the transfer"
			st_check "no helper" "0 0 0"
		fi
	fi
	hl_case_end
fi

# --- module parameters (last: reloads the module and nf_conntrack's helpers) -------------

# reload_nf_helpers ARGS_FTP ARGS_TFTP: nf_conntrack_ftp and nf_conntrack_tftp reloaded with
# these parameters (the namespaces holding their nft objects are gone first; their cleanup
# runs in the background, so the unload is retried for up to 10 s).
reload_nf_helpers() {
	local i
	for ((i = 0; i < 100; i++)); do
		modprobe -r nf_nat_ftp nf_nat_tftp nf_conntrack_ftp nf_conntrack_tftp 2>/dev/null && break
		nsleep 0.1
	done
	lsmod | grep -qE '^nf_conntrack_t?ftp ' && { echo "# nf_conntrack_ftp/tftp still loaded" >&2; return 1; }
	modprobe nf_conntrack_ftp "$1" && modprobe nf_conntrack_tftp "$2" && modprobe -a nf_nat_ftp nf_nat_tftp
}

if [ -z "${RCT_DIFF_CASES:-}" ] || [[ ports =~ $RCT_DIFF_CASES ]]; then
	hl_kill_all
	netns_del
	nat_netns_del
	ok=1
	if [ -n "$loaded" ]; then
		check "ports: module unloads" unload_module && loaded= || ok=
		if [ -n "$ok" ]; then
			check "ports: module loads with ftp_ports=2121 tftp_ports=6969" \
				insmod "$RCT_KO" ftp_ports=2121 tftp_ports=6969 && loaded=1 || ok=
		fi
	fi
	check "ports: nf_conntrack_ftp ports=2121 and nf_conntrack_tftp ports=6969 load" \
		reload_nf_helpers ports=2121 ports=6969 || ok=
	if [ -n "$ok" ] && HL_NO_NFT=1 hl_case ports pair; then
		# The helpers' names under 6.12 (nf_ct_helper_init): "ftp-PORT", "tftp-INDEX".
		for ns in $HL_NS; do step "nft helper rules for 2121 and 6969 ($ns)" hl_nft "$ns" 2121 6969 ftp-2121 tftp-0; done
		WANT=([$NS_A]="$A4 $B4" [$NS_B]="$A4 $B4") WANT_PORT=()
		if step "ftp server on 2121" hl_ftpd "$NS_B" "$B4" 2121 && step "ftp server on 21" hl_ftpd "$NS_B" "$B4" 21; then
			st_begin
			step "PASV on 21 (no helper)" hl_ftp_cmd "$NS_A" "$B4" 21 pasv-only "$B4"
			exp_tables "PASV on 21"
			exp_none "PASV on 21"
			st_check "PASV on 21" "0 0 0"
			EXP_T0=$EPOCHREALTIME
			if step "PASV on 2121: the client holds" hl_ftp_hold "$NS_A" "$B4" 2121 pasv; then
				port=$HL_HOLD_INFO
				exp_tables "PASV on 2121"
				exp_refs "PASV on 2121" tcp "$port" ftp-2121
				for ns in $HL_NS; do
					check "$CT_CASE: PASV on 2121: $ns: all but the helper name: $OURS_EXP = nf_conntrack_expect" \
						exp_compare "$ns" 's/ [^ ]*$//'
				done
				st_check "PASV on 2121" "0 1 0"
				step "PASV on 2121: transfer" hl_release
				hl_tables "PASV on 2121, after the transfer"
				exp_tables "PASV on 2121, after the transfer"
				exp_none "PASV on 2121, after the transfer"
				st_check "PASV on 2121 and transfer" "1 1 1"
			fi
		fi
		hl_kill_all
		WANT=([$NS_A]="$B4 $A4" [$NS_B]="$B4 $A4")
		if step "UDP sockets on 69 and 6969 that never answer" hl_udp_sink "$NS_B" "$B4" 69 &&
			step "UDP sockets on 69 and 6969 that never answer" hl_udp_sink "$NS_B" "$B4" 6969; then
			st_begin
			step "RRQ to 69 (no helper)" hl_rrq_hold "$NS_A" "$B4" 40069 69
			exp_tables "RRQ to 69"
			exp_none "RRQ to 69"
			st_check "RRQ to 69" "0 0 0"
			EXP_T0=$EPOCHREALTIME
			step "RRQ to 6969, outstanding" hl_rrq_hold "$NS_A" "$B4" 40070 6969
			exp_tables "RRQ to 6969"
			exp_refs "RRQ to 6969" udp 40070 tftp-0
			for ns in $HL_NS; do
				check "$CT_CASE: RRQ to 6969: $ns: all but the helper name: $OURS_EXP = nf_conntrack_expect" \
					exp_compare "$ns" 's/ [^ ]*$//'
			done
			st_check "RRQ to 6969" "0 1 0"
		fi
		hl_case_end
	fi
fi

hl_kill_all
netns_del
nat_netns_del
printf '# %s\n' "${CASE_SUMMARY[@]}"
[ -n "$loaded" ] && check "module unloads" unload_module
t_done differential-helper
[ "$T_FAIL" -eq 0 ]
