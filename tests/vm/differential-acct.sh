#!/bin/bash
# Differential tests of accounting and timestamps: nf_conntrack with
# net.netfilter.nf_conntrack_acct=1 and nf_conntrack_timestamp=1, rust_conntrack with
# /proc/sys/net/rust_conntrack/acct=1 and timestamp=1, in the namespaces compared; the same
# traffic through both, side by side; both tables must then read the same, `packets=N
# bytes=N` of each direction included (difflib.sh: compared as printed), and each entry's
# `delta-time=N` within 1 s of nf_conntrack's (RCT_DIFF_DT_TOLERANCE).
#
#   scripts/vm-run --kernel um-debug -- tests/vm/differential-acct.sh
#
# 6.12 counts a packet (packets +1, bytes + skb->len at the tracking hook) where a tracker
# calls nf_ct_refresh_acct or nf_ct_kill_acct, and stamps an entry when it is confirmed.
# Checks named "reference: ..." look at nf_conntrack alone: they say the traffic did what
# the case means and pin 6.12's counts (exact where the traffic is fixed: UDP, ICMP).
#  1. Local, rct-a 10.77.0.1/fd77::1 -> rct-b 10.77.0.2/fd77::2 (difflib.sh), IPv4 and
#     IPv6: UDP request/reply and one way; ICMP(v6) echo; a UDP datagram to a closed port
#     (the port unreachable is not counted: RELATED, no tracker call); a TCP connection
#     (data both ways, closed by FIN); a bulk TCP transfer (256 KiB each way: GSO packets,
#     bytes = skb->len); a TCP connection closed by RST; SYN retransmissions (not counted:
#     tcp_packet returns before nf_ct_refresh_acct on a SYN in SYN_SENT); a simultaneous
#     close (each side's first FIN dropped before the peer's trackers, then retransmitted);
#     crafted TCP (tcplib.sh): an out-of-window RST and data beyond a scaled window, both
#     invalid (-NF_ACCEPT, not counted); SCTP and DCCP connections; a generic protocol
#     (253) and GRE.
#  2. Forwarded, client -- router -- server (natlib.sh), IPv4 and IPv6: UDP request/reply
#     and one way, TCP, ICMP echo, forwarded as they are, then through masquerade: the
#     router counts what the client and the server count.
#  3. The switches: entries made before acct and timestamp were turned on show neither
#     counters nor delta-time, even with traffic after (6.12 adds the extensions when an
#     entry is made); entries made while on keep counting once turned off; acct on in A
#     only with timestamp on in B only (per netns: each namespace's entries as its own
#     settings say).
#  4. Harness: altered copies of a real table with counters and delta-times (a count, a
#     byte count, a delta-time 1 s and 2 s off, missing fields) through ct_compare_raw.
#
# Environment (through vm-run with `env`): RCT_DIFF_CASES (ERE on case names), RCT_DIFF_SMP
# (difflib.sh), RCT_DIFF_OURS (harness self-test: nf_conntrack compares the reference with
# itself; every check must pass). Counts in $RCT_OUT/vm-results-differential-acct; exits
# non-zero if any check failed.
. "$(dirname "$0")/tcplib.sh"
# natlib.sh has generators of its own by these names: difflib's, kept under another.
eval "$(declare -f gen_udp_unreach | sed '1s/^gen_udp_unreach/ct_udp_unreach/')"
. "$(dirname "$0")/natlib.sh"

SUITE_T0=$(date +%s.%N)

modprobe nf_conntrack enable_hooks=1
modprobe -a sctp dccp_ipv4 dccp_ipv6
check "NAT modules load" modprobe -a nf_nat nft_chain_nat nft_nat nft_masq
loaded=
if [ -n "${RCT_KO:-}" ] && [ "$OURS" = rust_conntrack ]; then
	check "module loads" load_module && loaded=1
elif [ "$OURS" = rust_conntrack ]; then
	t_fail "module loads" "no module (vm-run --no-module?)"
fi

# --- settings -----------------------------------------------------------------------------

# acct_set NS ACCT TIMESTAMP: both trackers' settings in NS (ours only when it is the table
# under test), read back.
acct_set() {
	local ns=$1 a=$2 t=$3 got
	ip netns exec "$ns" sysctl -qw net.netfilter.nf_conntrack_acct="$a" \
		net.netfilter.nf_conntrack_timestamp="$t" || return 1
	got=$(ip netns exec "$ns" cat /proc/sys/net/netfilter/nf_conntrack_acct /proc/sys/net/netfilter/nf_conntrack_timestamp | tr '\n' ' ')
	[ "$got" = "$a $t " ] || return 1
	[ "$OURS" = rust_conntrack ] || return 0
	ip netns exec "$ns" sh -c "echo $a >/proc/sys/net/rust_conntrack/acct && echo $t >/proc/sys/net/rust_conntrack/timestamp" || return 1
	got=$(ip netns exec "$ns" cat /proc/sys/net/rust_conntrack/acct /proc/sys/net/rust_conntrack/timestamp | tr '\n' ' ')
	[ "$got" = "$a $t " ]
}

# acct_on NS...: acct and timestamp on in each NS (a check each).
acct_on() {
	local ns
	for ns in "$@"; do
		check "$CT_CASE: $ns: acct=1 timestamp=1 in both trackers" acct_set "$ns" 1 1
	done
}

# --- reading the counters -----------------------------------------------------------------

# acct_get NS FILE ERE: for each line of /proc/net/FILE in NS matching ERE (as printed),
# "OP OB RP RB DT": packets and bytes of the original and reply directions and the
# delta-time, "-" for what the line does not have.
acct_get() {
	ct_raw "$1" "$2" | RE=$3 awk '$0 ~ ENVIRON["RE"] {
		out = ""; n = 0; s = $0
		while (match(s, /packets=[0-9]+ bytes=[0-9]+ /)) {
			split(substr(s, RSTART, RLENGTH), kv, /[= ]/)
			out = out kv[2] " " kv[4] " "; n++
			s = substr(s, RSTART + RLENGTH)
		}
		if (n == 0) out = "- - - - "
		dt = "-"
		if (match($0, /delta-time=[0-9]+ /)) dt = substr($0, RSTART + 11, RLENGTH - 12)
		print out dt
	}'
}

# acct_match GOT WANT: GOT's fields against WANT's, one by one: a number or "-" must be
# equal, "*" takes any number, "+N" any number >= N, "age" a delta-time of at most the
# seconds since the case began (rounded up) + 1.
acct_match() {
	local age
	age=$(awk -v a="$CASE_T0" -v b="$(date +%s.%N)" 'BEGIN { e = b - a; print int(e) + 2 }')
	awk -v got="$1" -v want="$2" -v age="$age" 'BEGIN {
		ng = split(got, g, " "); nw = split(want, w, " ")
		if (ng != nw) exit 1
		for (i = 1; i <= nw; i++) {
			if (w[i] == "*") { if (g[i] !~ /^[0-9]+$/) exit 1 }
			else if (w[i] ~ /^\+/) { if (g[i] !~ /^[0-9]+$/ || g[i] + 0 < substr(w[i], 2) + 0) exit 1 }
			else if (w[i] == "age") { if (g[i] !~ /^[0-9]+$/ || g[i] + 0 > age) exit 1 }
			else if (g[i] != w[i]) exit 1
		}
	}'
}

# ref_acct NS WHAT ERE WANT: nf_conntrack in NS has one entry matching ERE, whose "OP OB RP
# RB DT" (acct_get) match WANT (acct_match). Sets REF_ACCT to what it read.
ref_acct() {
	local ns=$1 what=$2 re=$3 want=$4 got n
	got=$(acct_get "$ns" nf_conntrack "$re")
	n=$(grep -c . <<<"$got")
	REF_ACCT=$got
	if [ "$n" != 1 ]; then
		t_fail "$CT_CASE: reference: $ns: $what" "$n entries match '$re', want 1"
		ct_raw "$ns" nf_conntrack | head -n 10 | sed 's/^/#   /'
		return
	fi
	if acct_match "$got" "$want"; then
		t_ok "$CT_CASE: reference: $ns: $what ($got)"
	else
		t_fail "$CT_CASE: reference: $ns: $what" "got '$got', want '$want'"
	fi
}

# ref_same WHAT ERE NS...: nf_conntrack's counters of the entry matching ERE are the same
# in every NS (the packets crossed them all).
ref_same() {
	local what=$1 re=$2 ns first= got
	shift 2
	for ns in "$@"; do
		got=$(acct_get "$ns" nf_conntrack "$re" | cut -d' ' -f1-4)
		if [ -z "$first" ]; then first="$got ($ns)"; continue; fi
		check_eq "$CT_CASE: reference: $what: counters in $ns as in ${first#* (}" "$got" "${first% (*}"
	done
}

# Entries of the local cases (EREs on nf_conntrack's lines as printed).
l4re() { # FAMILY L4 MORE: "^ipv4 ... udp ... MORE"
	local l3=ipv4 name=$2
	[ "$1" = 6 ] && l3=ipv6
	[ "$1" = 6 ] && [ "$2" = icmp ] && name=icmpv6
	echo "^$l3 +[0-9]+ $name +[0-9]+ .*$3"
}

# --- traffic of our own: a bulk TCP transfer ------------------------------------------------

# shellcheck disable=SC2016
ACCT_PY='
import ipaddress, os, signal, socket, sys

ALLOWED = (ipaddress.ip_network("10.77.0.0/24"), ipaddress.ip_network("fd77::/64"))

def addr(s):
    a = ipaddress.ip_address(s)
    if not any(a in n for n in ALLOWED):
        sys.exit("acct: refusing %s: only 10.77.0.0/24 and fd77::/64" % s)
    return a

def family(a):
    return socket.AF_INET6 if a.version == 6 else socket.AF_INET

def recv_n(c, n):
    got = 0
    while got < n:
        d = c.recv(65536)
        if not d:
            sys.exit("acct: EOF after %d of %d bytes" % (got, n))
        got += len(d)

role, host, port, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
signal.signal(signal.SIGALRM, lambda *_: sys.exit("acct: %s: time limit reached" % role))
signal.alarm(60)
a = addr(host)
if role == "bulk-server":
    s = socket.socket(family(a), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((str(a), port))
    s.listen(1)
    open(sys.argv[5], "w").close()
    c, _ = s.accept()
    recv_n(c, size)
    c.sendall(b"b" * size)
    while c.recv(65536):
        pass
    c.close()
else:
    c = socket.create_connection((str(a), port), timeout=30)
    c.sendall(b"a" * size)
    recv_n(c, size)
    c.close()
'

# gen_tcp_bulk DST PORT SIZE: A sends SIZE bytes, B answers with SIZE bytes, A closes, B
# closes on EOF.
gen_tcp_bulk() {
	local dst=$1 port=$2 size=$3 ready srv i rc=0
	ready=$(mktemp -u /tmp/acct-ready.XXXXXX)
	ip netns exec "$NS_B" "$CT_PY_BIN" -c "$ACCT_PY" bulk-server "$dst" "$port" "$size" "$ready" &
	srv=$!
	for ((i = 0; i < 200; i++)); do
		[ -e "$ready" ] && break
		sleep 0.05
	done
	rm -f "$ready"
	ip netns exec "$NS_A" "$CT_PY_BIN" -c "$ACCT_PY" bulk-client "$dst" "$port" "$size" || rc=1
	wait "$srv" || rc=1
	return "$rc"
}

fam_dst() { if [ "$1" = 6 ]; then echo fd77::2; else echo 10.77.0.2; fi; }

# settle: the last ACKs of a closed connection reach both namespaces before the reads.
settle() { sleep 0.5; }

# --- 1. local traffic ---------------------------------------------------------------------

for f in 4 6; do
	dst=$(fam_dst "$f")
	# IP header, then 8 (UDP) or 8 + 56 (ping's default payload).
	if [ "$f" = 6 ]; then iph=40; else iph=20; fi
	udp10=$((iph + 8 + 10)) # "rct-diff N"
	echo64=$((iph + 8 + 56))
	unreach=$((iph + 8 + 16)) # "rct-diff unreach"

	if run_case "udp-v$f"; then
		acct_on "$NS_A" "$NS_B"
		traffic eval "gen_udp_reqrep $dst 40000 5300 3 && gen_udp_oneway $dst 40001 5301 3"
		compare_both
		for ns in "$NS_A" "$NS_B"; do
			ref_acct "$ns" "request/reply: 3 packets each way" "$(l4re "$f" udp 'sport=40000 dport=5300 ')" \
				"3 $((3 * udp10)) 3 $((3 * udp10)) age"
			ref_acct "$ns" "one way: 3 packets, none back" "$(l4re "$f" udp 'sport=40001 dport=5301 ')" \
				"3 $((3 * udp10)) 0 0 age"
		done
		case_end
	fi

	if run_case "icmp-echo-v$f"; then
		acct_on "$NS_A" "$NS_B"
		traffic gen_icmp_echo "$dst" 3
		compare_both
		for ns in "$NS_A" "$NS_B"; do
			ref_acct "$ns" "3 echo requests and 3 replies" "$(l4re "$f" icmp 'type=(8|128) ')" \
				"3 $((3 * echo64)) 3 $((3 * echo64)) age"
		done
		case_end
	fi

	if run_case "udp-unreach-v$f"; then
		acct_on "$NS_A" "$NS_B"
		traffic ct_udp_unreach "$dst" 40000 5399
		compare_both
		for ns in "$NS_A" "$NS_B"; do
			ref_acct "$ns" "the datagram counted, not the port unreachable" \
				"$(l4re "$f" udp 'sport=40000 dport=5399 ')" "1 $unreach 0 0 age"
		done
		case_end
	fi

	if run_case "tcp-fin-v$f"; then
		acct_on "$NS_A" "$NS_B"
		traffic tcp_conn fin-client "$dst" 7001
		settle
		compare_both
		for ns in "$NS_A" "$NS_B"; do
			ref_acct "$ns" "SYN, ACK, data, FIN, ACK; SYN-ACK, data, FIN" \
				"$(l4re "$f" tcp 'TIME_WAIT .*dport=7001 ')" "+5 * +3 * age"
		done
		ref_same "TCP" "$(l4re "$f" tcp 'dport=7001 ')" "$NS_A" "$NS_B"
		case_end
	fi

	if run_case "tcp-bulk-v$f"; then
		acct_on "$NS_A" "$NS_B"
		traffic gen_tcp_bulk "$dst" 7002 262144
		settle
		compare_both
		for ns in "$NS_A" "$NS_B"; do
			ref_acct "$ns" "256 KiB each way, and headers" \
				"$(l4re "$f" tcp 'TIME_WAIT .*dport=7002 ')" "+5 +262144 +4 +262144 age"
		done
		case_end
	fi

	if run_case "tcp-rst-v$f"; then
		acct_on "$NS_A" "$NS_B"
		traffic tcp_conn rst "$dst" 7003
		settle
		compare_both
		for ns in "$NS_A" "$NS_B"; do
			ref_acct "$ns" "closed by RST (counted)" "$(l4re "$f" tcp 'CLOSE .*dport=7003 ')" "+4 * +2 * age"
		done
		case_end
	fi

	if run_case "tcp-syn-retrans-v$f"; then
		acct_on "$NS_A" "$NS_B"
		# B's trackers see the SYNs (and count them in nft first); B answers none.
		check "$CT_CASE: count SYNs in B, drop B's answers" eval \
			"tcp_nft $NS_B prerouting tcp dport 7004 counter && tcp_nft $NS_B output tcp sport 7004 meta mark != $CT_MARK drop"
		# The client gives up after 6 s (its socket goes without a word: SYN_SENT).
		traffic tcp_conn connect-only "$dst" 7004 0 1 6
		sleep 3.5 # SYNs at 0, 1 and 3 s
		compare_both
		syns=$(ip netns exec "$NS_B" nft list chain inet rct_tcp prerouting | sed -n 's/.*counter packets \([0-9]*\) .*/\1/p')
		check_ge "$CT_CASE: reference: $NS_B: the SYN was sent again" "${syns:-0}" 2
		for ns in "$NS_A" "$NS_B"; do
			ref_acct "$ns" "SYN_SENT: the first SYN only (retransmissions not counted)" \
				"$(l4re "$f" tcp 'SYN_SENT .*dport=7004 ')" "1 * 0 0 age"
		done
		wait "$TCP_CLI_PID" 2>/dev/null
		TCP_CLI_PID=
		case_end
	fi

	if run_case "tcp-simclose-v$f"; then
		acct_on "$NS_A" "$NS_B"
		traffic tcp_conn simclose "$dst" 7005
		check "$CT_CASE: FINs cross (the first ones dropped, then sent again)" tcp_simclose 7005
		settle
		compare_both
		ref_acct "$NS_A" "TIME_WAIT" "$(l4re "$f" tcp 'TIME_WAIT .*dport=7005 ')" "+4 * +3 * age"
		check "$CT_CASE: both sides end" tcp_conn_release
		tcp_nft_flush "$NS_A" prerouting 2>/dev/null
		case_end
	fi

	sp=40100
	if run_case "tcp-oow-rst-v$f"; then
		acct_on "$NS_A" "$NS_B"
		check "$CT_CASE: listener in B" tcp_sink_start "$dst" 7020
		tcp_nft_drop_rst "$NS_A" "$sp"
		tcp_craft_start oow-rst "$f" "$sp" 7020
		re=$(l4re "$f" tcp "ESTABLISHED .*sport=$sp dport=7020 ")
		declare -A before=()
		if check "$CT_CASE: reaches established" tcp_craft_at established; then
			compare_both "" "established"
			for ns in "$NS_A" "$NS_B"; do
				ref_acct "$ns" "established" "$re" "3 * 2 * age"
				before[$ns]=$(cut -d' ' -f1-4 <<<"$REF_ACCT")
			done
			tcp_craft_go
		fi
		if check "$CT_CASE: reaches rst" tcp_craft_at rst; then
			compare_both "" "after the RST"
			for ns in "$NS_A" "$NS_B"; do
				read -r op ob rp rb <<<"${before[$ns]:-x x x x}"
				ref_acct "$ns" "the RST 2^30 beyond the window is not counted" "$re" "$op $ob * * age"
			done
			tcp_craft_go
		fi
		if check "$CT_CASE: reaches after" tcp_craft_at after; then
			compare_both "" "data after the RST"
			for ns in "$NS_A" "$NS_B"; do
				read -r op ob rp rb <<<"${before[$ns]:-0 0 0 0}"
				ref_acct "$ns" "the data after it is" "$re" "$((op + 1)) $((ob + iph + 20 + 100)) +$((rp + 1)) * age"
			done
			tcp_craft_go
		fi
		check "$CT_CASE: sequence completes" tcp_craft_end
		tcp_craft_abort
		tcp_sink_stop
		case_end
	fi

	if run_case "tcp-wscale-v$f"; then
		acct_on "$NS_A" "$NS_B"
		# Both ends crafted: neither kernel (no socket) may answer with a RST.
		check "$CT_CASE: drop B's and A's RSTs" eval "tcp_nft_drop_rst $NS_B 7025 && tcp_nft_drop_rst $NS_A $sp"
		tcp_craft_start wscale "$f" "$sp" 7025
		re=$(l4re "$f" tcp "ESTABLISHED .*sport=$sp dport=7025 ")
		declare -A before=()
		if check "$CT_CASE: reaches established" tcp_craft_at established; then
			compare_both "" "established"
			for ns in "$NS_A" "$NS_B"; do
				ref_acct "$ns" "SYN, ACK, data; SYN-ACK, ACK" "$re" "3 * 2 * age"
				before[$ns]=$(cut -d' ' -f1-4 <<<"$REF_ACCT")
			done
			tcp_craft_go
		fi
		if check "$CT_CASE: reaches in-scaled-window" tcp_craft_at in-scaled-window; then
			compare_both "" "data inside the scaled window"
			for ns in "$NS_A" "$NS_B"; do
				read -r op ob rp rb <<<"${before[$ns]:-0 0 0 0}"
				ref_acct "$ns" "data inside the scaled window is counted" "$re" \
					"$((op + 1)) $((ob + iph + 20 + 1000)) $rp $rb age"
				before[$ns]=$(cut -d' ' -f1-4 <<<"$REF_ACCT")
			done
			tcp_craft_go
		fi
		if check "$CT_CASE: reaches beyond-window" tcp_craft_at beyond-window; then
			compare_both "" "data beyond the window"
			for ns in "$NS_A" "$NS_B"; do
				ref_acct "$ns" "data beyond the window is not (invalid)" "$re" "${before[$ns]:-x} age"
			done
			tcp_craft_go
		fi
		check "$CT_CASE: sequence completes" tcp_craft_end
		tcp_craft_abort
		case_end
	fi

	for proto in sctp dccp; do
		if run_case "$proto-v$f"; then
			acct_on "$NS_A" "$NS_B"
			traffic gen_stream "$dst" "$proto" 3 client 0
			compare_both
			ref_acct "$NS_A" "an association or connection, 3 messages echoed" \
				"$(l4re "$f" "$proto" 'dport=5400 ')" "+3 * +3 * age"
			ref_same "$proto" "$(l4re "$f" "$proto" 'dport=5400 ')" "$NS_A" "$NS_B"
			case_end
		fi
	done

	if run_case "generic-gre-v$f"; then
		acct_on "$NS_A" "$NS_B"
		traffic eval "gen_generic $dst 253 3 1 && gen_generic $dst 47 3 1 00000800"
		compare_both
		# "rct-diff raw N" (14 bytes); GRE: its 4-byte header first.
		for ns in "$NS_A" "$NS_B"; do
			ref_acct "$ns" "protocol 253: 3 packets each way" "$(l4re "$f" unknown '')" \
				"3 $((3 * (iph + 14))) 3 $((3 * (iph + 14))) age"
			ref_acct "$ns" "GRE: 3 packets each way" "$(l4re "$f" gre '')" \
				"3 $((3 * (iph + 18))) 3 $((3 * (iph + 18))) age"
		done
		case_end
	fi
done

# --- 2. forwarded ---------------------------------------------------------------------------

for F in 4 6; do
	nat_family "$F"
	for how in fwd masq; do
		nat_run_case "$how-v$F" || continue
		acct_on $NAT_ALL
		if [ "$how" = masq ]; then
			check "$CT_CASE: nft: masquerade in the router" nat_nft "$NAT_R" <<EOF
table $IP rct_nat {
	chain post { type nat hook postrouting priority srcnat; policy accept; oifname "veth-rs" masquerade; }
}
EOF
		fi
		step UDP gen_udp "$NAT_S" "$S" 5300 "$C" "$S" 5300 40000
		step "UDP one way" gen_udp_send "$C" "$S" 5310 40010 3
		step TCP gen_tcp "$NAT_S" "$S" 7000 "$C" "$S" 7000 41000
		step echo gen_echo "$C" "$S" 0x4201 3
		nat_tables
		if [ "$F" = 6 ]; then l3=ipv6 icmp=icmpv6; else l3=ipv4 icmp=icmp; fi
		for ns in $NAT_ALL; do
			ref_acct "$ns" "UDP request/reply: 3 each way" "^$l3 .* udp .*sport=40000 dport=5300 " "3 * 3 * age"
			ref_acct "$ns" "UDP one way: 3, none back (port unreachables not counted)" \
				"^$l3 .* udp .*sport=40010 dport=5310 " "3 * 0 0 age"
		done
		ref_same "UDP" "^$l3 .* udp .*sport=40000 dport=5300 " $NAT_ALL
		ref_same "TCP" "^$l3 .* tcp .*dport=7000 " $NAT_ALL
		ref_same "echo" "^$l3 .* $icmp .*id=$((0x4201)) " $NAT_ALL
		ref_acct "$NAT_R" "echo: 3 each way" "^$l3 .* $icmp .*id=$((0x4201)) " "3 * 3 * age"
		case_end
	done
done
nat_netns_del

# --- 3. the switches ----------------------------------------------------------------------

V4UDP=$(l4re 4 udp '')
if run_case "before-on-v4"; then
	# Protocol 253: an entry that lives 600 s (an ICMP one might expire on a slow guest).
	traffic eval "gen_udp_reqrep 10.77.0.2 40000 5300 2 && gen_generic 10.77.0.2 253 1 1"
	compare_both "" "acct off"
	for ns in "$NS_A" "$NS_B"; do
		ref_acct "$ns" "acct off: no counters, no delta-time" "${V4UDP}sport=40000 " "- - - - -"
	done
	acct_on "$NS_A" "$NS_B"
	# The same flows again (their entries, made while off), a new flow, a ping.
	traffic eval "gen_udp_reqrep 10.77.0.2 40000 5300 2 && gen_generic 10.77.0.2 253 2 1 &&
		gen_udp_reqrep 10.77.0.2 40001 5300 2 && gen_icmp_echo 10.77.0.2 2"
	compare_both "" "acct on"
	for ns in "$NS_A" "$NS_B"; do
		ref_acct "$ns" "the entry made while off still has none" "${V4UDP}sport=40000 " "- - - - -"
		ref_acct "$ns" "a new entry has them" "${V4UDP}sport=40001 " "2 76 2 76 age"
		ref_acct "$ns" "protocol 253, made while off: none" "$(l4re 4 unknown '')" "- - - - -"
		ref_acct "$ns" "the ping has them" "$(l4re 4 icmp '')" "2 168 2 168 age"
	done
	case_end
fi

if run_case "on-then-off-v4"; then
	acct_on "$NS_A" "$NS_B"
	traffic gen_udp_reqrep 10.77.0.2 40000 5300 2
	for ns in "$NS_A" "$NS_B"; do
		check "$CT_CASE: $ns: acct=0 timestamp=0 in both trackers" acct_set "$ns" 0 0
	done
	traffic eval "gen_udp_reqrep 10.77.0.2 40000 5300 2 && gen_udp_reqrep 10.77.0.2 40001 5300 2"
	compare_both
	for ns in "$NS_A" "$NS_B"; do
		ref_acct "$ns" "an entry made while on goes on counting" "${V4UDP}sport=40000 " "4 152 4 152 age"
		ref_acct "$ns" "a new entry has no counters" "${V4UDP}sport=40001 " "- - - - -"
	done
	case_end
fi

for f in 4 6; do
	dst=$(fam_dst "$f")
	if [ "$f" = 6 ]; then iph=40; else iph=20; fi
	if run_case "per-netns-v$f"; then
		# A counts (no timestamps), B stamps (no counters); in v6 the other way round.
		if [ "$f" = 4 ]; then cnt=$NS_A stp=$NS_B; else cnt=$NS_B stp=$NS_A; fi
		check "$CT_CASE: $cnt: acct=1 timestamp=0" acct_set "$cnt" 1 0
		check "$CT_CASE: $stp: acct=0 timestamp=1" acct_set "$stp" 0 1
		traffic eval "gen_udp_reqrep $dst 40000 5300 3 && gen_icmp_echo $dst 2"
		compare_both
		u=$(l4re "$f" udp 'sport=40000 ')
		ref_acct "$cnt" "counters, no delta-time" "$u" "3 $((3 * (iph + 18))) 3 $((3 * (iph + 18))) -"
		ref_acct "$stp" "delta-time, no counters" "$u" "- - - - age"
		ref_acct "$cnt" "echo: counters, no delta-time" "$(l4re "$f" icmp '')" "2 $((2 * (iph + 64))) 2 $((2 * (iph + 64))) -"
		ref_acct "$stp" "echo: delta-time, no counters" "$(l4re "$f" icmp '')" "- - - - age"
		case_end
	fi
done

# --- 4. harness -----------------------------------------------------------------------------

# variant NAME WANT(pass|fail) SED: ct_compare_raw of the snapshot against a copy altered by
# SED (on the raw lines).
variant() {
	local name=$1 want=$2 fake out got
	fake=$(mktemp /tmp/acct-fake.XXXXXX)
	sed -E "$3" "$SNAPSHOT" >"$fake"
	out=$(ct_compare_raw "$SNAPSHOT" "$fake" "" nf_conntrack "altered copy" "") && got=pass || got=fail
	[ -z "$out" ] || printf '%s\n' "$out"
	check_eq "selftest: $name is a $want" "$got" "$want"
	if [ "$want" = fail ] && [ "$got" = fail ]; then
		check "selftest: $name: report says why" grep -qE '^# (@@|[0-9]+ entries whose (timeouts|delta-time))' <<<"$out"
	fi
	rm -f "$fake"
}

if run_case "selftest"; then
	acct_on "$NS_A"
	traffic eval "gen_udp_reqrep 10.77.0.2 40000 5300 1 && gen_icmp_echo 10.77.0.2 1"
	SNAPSHOT=$(mktemp /tmp/acct-snapshot.XXXXXX)
	ct_raw "$NS_A" nf_conntrack | sed -E 's/delta-time=[0-9]+ /delta-time=5 /' >"$SNAPSHOT"
	check_eq "selftest: 2 entries with counters and delta-time" "$(grep -c 'packets=.*delta-time=5 ' "$SNAPSHOT")" 2
	variant "identical copy" pass ''
	variant "delta-time +1 s" pass 's/delta-time=5 /delta-time=6 /'
	variant "delta-time -1 s" pass 's/delta-time=5 /delta-time=4 /'
	variant "delta-time +2 s" fail '/ udp /s/delta-time=5 /delta-time=7 /'
	variant "delta-time -2 s" fail '/ icmp /s/delta-time=5 /delta-time=3 /'
	variant "delta-time missing" fail '/ udp /s/delta-time=5 //'
	variant "a packet count off by one" fail '/ udp /s/packets=1 /packets=2 /'
	variant "a byte count altered" fail '/ icmp /s/bytes=84 /bytes=85 /'
	variant "reply counters missing" fail '/ udp /s/(dport=40000 )packets=[0-9]+ bytes=[0-9]+ /\1/'
	variant "no counters" fail 's/packets=[0-9]+ bytes=[0-9]+ //g'
	variant "counters in the other order" fail 's/packets=([0-9]+) bytes=([0-9]+) /bytes=\2 packets=\1 /g'
	rm -f "$SNAPSHOT"
	case_end
fi

netns_del
[ -n "$loaded" ] && check "module unloads" unload_module
echo "# case summary:"
for c in "${CASE_SUMMARY[@]}"; do echo "#   $c"; done
echo "# suite: $(awk -v a="$SUITE_T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
t_done differential-acct
[ "$T_FAIL" -eq 0 ]
