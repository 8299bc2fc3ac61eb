#!/bin/bash
# Differential tests of traffic on `lo`: nf_conntrack and rust_conntrack side by side in
# one namespace (rct-a), which talks to itself over 127.0.0.1 and ::1; both tables must
# then read the same (difflib.sh: state names, flags and tuples identical, `use=` ignored,
# timeouts within +-2 s), and both trackers' `invalid` counters must grow alike.
#
#   scripts/vm-run --kernel um-debug -- tests/vm/differential-loopback.sh
#
# What is tested: nf_conntrack skips at PRE_ROUTING only a looped-back packet that carries
# its entry from LOCAL_OUT. A packet that enters on `lo` without having passed LOCAL_OUT
# (written to an AF_PACKET socket on lo) is tracked at PRE_ROUTING; a packet found invalid
# at LOCAL_OUT leaves without an entry, so it is tracked (and found invalid) once more when
# it comes back in. Cases, each in a fresh namespace, IPv4 and IPv6:
#   tw-rst    two connections over lo, each closed by FIN (TIME_WAIT); then an RST for
#             each, its sequence number taken from a capture of the connection: first
#             through a raw IP socket (IPPROTO_RAW: it passes LOCAL_OUT and comes back in
#             carrying nf_conntrack's entry), then through a packet socket on lo
#             (Ether/IP/TCP, never seen at LOCAL_OUT). Each entry goes to CLOSE (10 s),
#             invalid counters unchanged. (Over IPv4, routing drops the packet socket's
#             frames as martians, 127.0.0.1 from outside: after both trackers saw them.)
#   oow-rst   two ESTABLISHED connections; an RST 2^30 beyond the window for each: through
#             a raw IP socket (invalid at LOCAL_OUT and again at PRE_ROUTING: +2), then
#             through a packet socket on lo (tracked once, at PRE_ROUTING: +1). Both
#             entries stay ESTABLISHED, both connections still carry data.
#   traffic   ordinary loopback traffic: a TCP connection with data, half-closed by the
#             client (CLOSE_WAIT; a FIN tracked twice would make it LAST_ACK, then
#             TIME_WAIT once acknowledged) then closed (TIME_WAIT); UDP request/reply;
#             ping. Tables compared after each step, invalid counters unchanged.
# Checks named "reference: ..." look at nf_conntrack (or at the sockets) alone: they say
# the traffic did what the case means.
#
# One Python process per case (CT_LO_PY, scapy for the crafted packets), in rct-a, holding
# both ends of the connections, an AF_PACKET capture on lo and the sending sockets; it stops
# at named checkpoints (tcplib.sh's protocol: tcp_craft_at / tcp_craft_go / tcp_craft_end).
# It refuses any address outside 127.0.0.0/8 and ::1, and is bounded in time.
#
# Environment (through vm-run with `env`): RCT_DIFF_CASES (ERE on case names),
# RCT_DIFF_OURS (harness self-test: nf_conntrack compares the reference with itself; every
# check must pass). Mismatches print a diff; full diffs and raw tables go to
# $RCT_OUT/differential/. Counts in $RCT_OUT/vm-results-differential-loopback; exits
# non-zero if any check failed.
. "$(dirname "$0")/tcplib.sh"

SUITE_T0=$EPOCHREALTIME

# Only rct-a and its lo are used: run_case gets a bare namespace, without lib.sh's veth
# pair to make and wait for.
ct_fresh_netns() {
	netns_del
	ip netns add "$NS_A" && ip -n "$NS_A" link set lo up
}

modprobe nf_conntrack enable_hooks=1
loaded=
if [ -n "${RCT_KO:-}" ] && [ "$OURS" = rust_conntrack ]; then
	check "module loads" load_module && loaded=1
elif [ "$OURS" = rust_conntrack ]; then
	t_fail "module loads" "no module (vm-run --no-module?)"
fi

ASSURED='\[ASSURED\] '

# lo_addr FAMILY: the loopback address as nf_conntrack prints it (an ERE).
lo_addr() {
	if [ "$1" = 6 ]; then echo '0000:0000:0000:0000:0000:0000:0000:0001'; else echo '127\.0\.0\.1'; fi
}

# lo_l3 FAMILY: the normalised line's first fields.
lo_l3() { if [ "$1" = 6 ]; then echo 'ipv6     10'; else echo 'ipv4     2'; fi; }

# lo_tcp_re FAMILY STATE SPORT DPORT [FLAGS_AFTER]: a TCP entry over lo.
lo_tcp_re() {
	local a
	a=$(lo_addr "$1")
	echo "^$(lo_l3 "$1") tcp      6 T $2 src=$a dst=$a sport=$3 dport=$4 src=$a dst=$a sport=$4 dport=$3 ${5:-}mark=0 zone=0$"
}

# lo_udp_re FAMILY SPORT DPORT: a replied UDP entry over lo (not yet assured).
lo_udp_re() {
	local a
	a=$(lo_addr "$1")
	echo "^$(lo_l3 "$1") udp      17 T src=$a dst=$a sport=$2 dport=$3 src=$a dst=$a sport=$3 dport=$2 mark=0 zone=0$"
}

# lo_icmp_re FAMILY: an echo entry over lo.
lo_icmp_re() {
	local a
	a=$(lo_addr "$1")
	if [ "$1" = 6 ]; then
		echo "^ipv6     10 icmpv6   58 T src=$a dst=$a type=128 code=0 id=[0-9]+ src=$a dst=$a type=129 code=0 id=[0-9]+ mark=0 zone=0$"
	else
		echo "^ipv4     2 icmp     1 T src=$a dst=$a type=8 code=0 id=[0-9]+ src=$a dst=$a type=0 code=0 id=[0-9]+ mark=0 zone=0$"
	fi
}

# --- tables and counters, in rct-a ------------------------------------------------------

# lo_read: reads, back to back and in one process in rct-a, both tables and both trackers'
# /proc/net/stat files into $LO_RAW/{ref,ours,sref,sours}; sets LO_READ_T (when) and
# LO_INV_NOW (nf_conntrack's and ours' `invalid` column, summed over CPUs). RCT_DIFF_OURS
# given as an absolute path is read as is (difflib.sh's ct_raw); its counters then are
# nf_conntrack's.
LO_RAW=$(mktemp -d /tmp/lo-raw.XXXXXX)
LO_SNAP=$LO_RAW/snap
LO_READ_T=0
lo_read() {
	local ours=/proc/net/$OURS sours=/proc/net/stat/$OURS
	case $OURS in /*) ours=$OURS sours=/proc/net/stat/nf_conntrack ;; esac
	rm -f "$LO_RAW"/{ref,ours,sref,sours}
	timeout 60 ip netns exec "$NS_A" sh -c 'cat /proc/net/nf_conntrack >"$1/ref" && cat "$2" >"$1/ours" &&
		cat /proc/net/stat/nf_conntrack >"$1/sref" && cat "$3" >"$1/sours"' sh "$LO_RAW" "$ours" "$sours" || return 1
	LO_READ_T=$EPOCHREALTIME
	LO_INV_NOW=$(for f in sref sours; do
		awk 'function hex(s, i, n) {
				for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789abcdef", substr(tolower(s), i, 1)) - 1
				return n
			}
			NR == 1 { for (i = 1; i <= NF; i++) if ($i == "invalid") c = i; next }
			c { n += hex($c) } END { printf "%d ", n }' "$LO_RAW/$f"
	done)
}

# lo_check WHEN: lo_read, then checks that both tables agree (difflib.sh's ct_compare_raw,
# as ct_compare does), and keeps nf_conntrack's, normalised with its timeouts, for lo_ref,
# and the counters for lo_stats_*.
lo_check() {
	local name="$CT_CASE: $1: $NS_A: $OURS = nf_conntrack" keep
	if ! lo_read; then
		t_fail "$name" "cannot read the tables"
		: >"$LO_SNAP"
		LO_INV_NOW=
		return
	fi
	keep="$CT_CASE $1-$NS_A"
	keep=${RCT_OUT:-/tmp}/differential/${keep//[^A-Za-z0-9._-]/_}
	if ct_compare_raw "$LO_RAW/ref" "$LO_RAW/ours" "" "nf_conntrack ($NS_A)" "$OURS ($NS_A)" "$keep"; then
		t_ok "$name"
	else
		t_fail "$name"
	fi
	ct_normalise "" "$LO_SNAP" <"$LO_RAW/ref" >/dev/null
}

# lo_ref WHAT COUNT ERE [TIMEOUT] [AGE_FROM]: in nf_conntrack's table as the last lo_check
# read it, COUNT entries match ERE; their seconds-left fit an entry of TIMEOUT s last
# refreshed after AGE_FROM ($EPOCHREALTIME; default the start of the case's traffic), as
# difflib.sh's ref_expect.
lo_ref() {
	local what=$1 count=$2 re=$3 timeout=${4:-} from=${5:-$TRAFFIC_T0} n bad
	read -r n bad < <(RE=$re awk -F'\t' -v t="$timeout" -v a="$from" -v b="$LO_READ_T" '
		BEGIN { e = b - a; e = (e == int(e)) ? e : int(e) + 1; tmin = t - e - 1 }
		$2 ~ ENVIRON["RE"] { n++; if (t != "" && !($1 >= tmin && $1 <= t)) bad = bad "," $1 }
		END { printf "%d %s want %d..%d\n", n, (bad == "" ? "-" : substr(bad, 2)), tmin, t }' "$LO_SNAP")
	check_eq "$CT_CASE: reference: $NS_A: $what" "$n" "$count"
	[ -n "$timeout" ] || return 0
	if [ "${bad%% *}" = - ]; then
		t_ok "$CT_CASE: reference: $NS_A: $what: timeout of a $timeout s entry"
	else
		t_fail "$CT_CASE: reference: $NS_A: $what: timeout of a $timeout s entry" "got $bad"
	fi
}

# lo_stats_snap / lo_stats_check WHAT WANT: tcplib.sh's stats_snap / stats_check in rct-a
# only, on the counters of the last lo_read (lo_check): since the last snap or check,
# nf_conntrack's invalid counter grew by WANT, and ours by as much. A check is also the
# next one's starting point.
lo_stats_snap() { read -r LO_INV_REF LO_INV_OURS <<<"$LO_INV_NOW"; }
lo_stats_check() {
	local r o
	read -r r o <<<"$LO_INV_NOW"
	check_eq "$CT_CASE: reference: $NS_A: $1: nf_conntrack invalid +$2" "$((r - LO_INV_REF))" "$2"
	check_eq "$CT_CASE: $NS_A: $1: invalid increments, $OURS vs nf_conntrack" \
		"$((o - LO_INV_OURS))" "$((r - LO_INV_REF))"
	LO_INV_REF=$r LO_INV_OURS=$o
}

# --- the Python side --------------------------------------------------------------------

# argv: SCENARIO FAMILY(4|6) SPORT DPORT LIMIT [ARGS]. Scenarios:
#   tw-rst VIA...    one connection per VIA (l3: raw IP socket, l2: packet socket on lo),
#                    client SPORT+i to server DPORT+i; data; client closes first, then the
#                    server; checkpoint timewait; then for each in turn an RST (flags R,
#                    seq = the client's next sequence number, from the capture) through its
#                    VIA, checkpoint rst-VIA (answers= segments from the server since)
#   oow-rst VIA...   the same connections, left open; checkpoint established; for each an
#                    RST+ACK 2^30 beyond the client's next sequence number through its VIA,
#                    checkpoint rst-VIA; then data both ways on each, checkpoint after
#   halfclose        connection, data, client shutdown(SHUT_WR); checkpoint halfclosed; the
#                    server still sends, then both close; checkpoint closed
#   udp              three datagrams from SPORT to DPORT, each echoed
# shellcheck disable=SC2016
CT_LO_PY='
import ipaddress, logging, signal, socket, sys, time

ALLOWED = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4

def addr(s):
    a = ipaddress.ip_address(s)
    if not any(a in n for n in ALLOWED):
        sys.exit("loopback: refusing %s: only 127.0.0.0/8 and ::1" % s)
    return str(a)

def say(*a):
    print(*a, flush=True)

def checkpoint(name, **info):
    say("@checkpoint %s %s" % (name, " ".join("%s=%s" % kv for kv in info.items())))
    line = sys.stdin.readline()
    if line.strip() != "go":
        sys.exit("loopback: stopped at %s" % name)

scenario, fam, SPORT, DPORT, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
args = sys.argv[6:]
signal.signal(signal.SIGALRM, lambda *_: sys.exit("loopback: %s: time limit reached" % scenario))
signal.alarm(limit)
V6 = fam == "6"
HOST = addr("::1" if V6 else "127.0.0.1")
AF = socket.AF_INET6 if V6 else socket.AF_INET

def recv_exact(c, n):
    data = b""
    while len(data) < n:
        d = c.recv(n - len(data))
        if not d:
            sys.exit("loopback: EOF after %d of %d bytes" % (len(data), n))
        data += d
    return data

def recv_eof(c):
    d = c.recv(4096)
    if d:
        sys.exit("loopback: data %r instead of EOF" % d)

def scapy():
    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
    from scapy.layers.l2 import Ether
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    return Ether, IP, IPv6, TCP

CAP = None

def capture():
    """An AF_PACKET socket on lo, opened before the connections."""
    global CAP
    CAP = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    CAP.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    CAP.bind(("lo", ETH_P_ALL))
    CAP.setblocking(False)

def follow(conns):
    """Reads what the capture holds (one copy of each packet: the outgoing one): for each
    connection and direction, the next sequence number after the last segment, and the
    number of segments."""
    Ether, IP, IPv6, TCP = scapy()
    while True:
        try:
            frame, sa = CAP.recvfrom(65535)
        except BlockingIOError:
            return
        if sa[2] != PACKET_OUTGOING:
            continue
        l3 = Ether(frame).getlayer(IPv6 if V6 else IP)
        if l3 is None or l3.src != HOST or l3.dst != HOST or not l3.haslayer(TCP):
            continue
        t = l3[TCP]
        for k in conns:
            if (t.sport, t.dport) == (k.sport, k.dport):
                d = "c2s"
            elif (t.sport, t.dport) == (k.dport, k.sport):
                d = "s2c"
            else:
                continue
            f = int(t.flags)
            k.nxt[d] = (t.seq + len(bytes(t.payload)) + (f & 2 and 1) + (f & 1 and 1)) % (1 << 32)
            k.segs[d] += 1
            say("# captured %d>%d %s seq=%d ack=%d len=%d" % (t.sport, t.dport, t.sprintf("%flags%"), t.seq, t.ack, len(bytes(t.payload))))

class Conn:
    """A TCP connection over lo, both ends here: client sport -> server dport."""
    def __init__(self, sport, dport):
        self.sport, self.dport = sport, dport
        self.srv = socket.socket(AF, socket.SOCK_STREAM)
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind((HOST, dport))
        self.srv.listen(1)
        self.srv.settimeout(10)
        self.cli = socket.socket(AF, socket.SOCK_STREAM)
        self.cli.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.cli.bind((HOST, sport))
        self.cli.settimeout(10)
        self.cli.connect((HOST, dport))
        self.c, _ = self.srv.accept()
        self.c.settimeout(10)
        self.nxt = {}
        self.segs = {"c2s": 0, "s2c": 0}

    def exchange(self, msg):
        self.cli.sendall(msg)
        self.c.sendall(recv_exact(self.c, len(msg)))
        if recv_exact(self.cli, len(msg)) != msg:
            sys.exit("loopback: echo differs")

    def close(self):
        """The client closes first."""
        self.cli.close()
        recv_eof(self.c)
        self.c.close()

    def send(self, via, flags, seq, ack):
        """A segment from the client to the server, through a packet socket on lo (l2) or a
        raw IP socket (l3)."""
        Ether, IP, IPv6, TCP = scapy()
        l3 = IPv6(src=HOST, dst=HOST) if V6 else IP(src=HOST, dst=HOST)
        seg = l3 / TCP(sport=self.sport, dport=self.dport, flags=flags, seq=seq % (1 << 32),
                       ack=ack % (1 << 32), window=0)
        if via == "l2":
            # The address of lo is 00:00:00:00:00:00: to any other, the frame would be
            # PACKET_OTHERHOST, dropped before PRE_ROUTING.
            frame = Ether(src="00:00:00:00:00:00", dst="00:00:00:00:00:00") / seg
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            s.sendto(bytes(frame), ("lo", 0x86DD if V6 else 0x0800))
        elif via == "l3":
            s = socket.socket(AF, socket.SOCK_RAW, socket.IPPROTO_RAW)
            s.sendto(bytes(seg), (HOST, 0))
        else:
            sys.exit("loopback: unknown way " + via)
        s.close()
        say("# sent (%s) %d>%d %s seq=%d ack=%d" % (via, self.sport, self.dport, flags, seq % (1 << 32), ack % (1 << 32)))

    def answers(self, conns):
        """Segments from the server since the last look."""
        before = self.segs["s2c"]
        follow(conns)
        return self.segs["s2c"] - before

def sc_tw_rst(*vias):
    capture()
    conns = [Conn(SPORT + i, DPORT + i) for i in range(len(vias))]
    for k in conns:
        k.exchange(b"rct-lo hello")
        k.close()
    time.sleep(0.3)
    follow(conns)
    checkpoint("timewait")
    for via, k in zip(vias, conns):
        k.send(via, "R", k.nxt["c2s"], 0)
        time.sleep(0.3)
        checkpoint("rst-" + via, answers=k.answers(conns))

def sc_oow_rst(*vias):
    capture()
    conns = [Conn(SPORT + i, DPORT + i) for i in range(len(vias))]
    for k in conns:
        k.exchange(b"rct-lo hello")
    time.sleep(0.3)  # delayed ACKs out
    follow(conns)
    checkpoint("established")
    for via, k in zip(vias, conns):
        k.send(via, "RA", k.nxt["c2s"] + (1 << 30), k.nxt["s2c"])
        time.sleep(0.3)
        checkpoint("rst-" + via, answers=k.answers(conns))
    for k in conns:
        k.exchange(b"rct-lo after the RST")
    time.sleep(0.3)
    checkpoint("after")
    for k in conns:
        k.close()

def sc_halfclose():
    k = Conn(SPORT, DPORT)
    k.exchange(b"rct-lo hello")
    k.cli.shutdown(socket.SHUT_WR)
    recv_eof(k.c)
    time.sleep(0.3)
    checkpoint("halfclosed")
    k.c.sendall(b"after your FIN")
    recv_exact(k.cli, 14)
    k.c.close()
    recv_eof(k.cli)
    k.cli.close()
    time.sleep(0.3)
    checkpoint("closed")

def sc_udp():
    srv = socket.socket(AF, socket.SOCK_DGRAM)
    srv.bind((HOST, DPORT))
    cli = socket.socket(AF, socket.SOCK_DGRAM)
    cli.bind((HOST, SPORT))
    cli.settimeout(3)
    srv.settimeout(3)
    for i in range(3):
        cli.sendto(b"rct-lo %d" % i, (HOST, DPORT))
        data, peer = srv.recvfrom(2048)
        srv.sendto(data, peer)
        if cli.recvfrom(2048)[0] != data:
            sys.exit("loopback: udp: wrong echo")

SCENARIOS = {"tw-rst": sc_tw_rst, "oow-rst": sc_oow_rst, "halfclose": sc_halfclose, "udp": sc_udp}
SCENARIOS[scenario](*args)
say("@end")
'

# lo_start SCENARIO FAMILY SPORT DPORT [ARGS...]: starts a scenario in rct-a, as a
# coprocess driven by tcplib.sh's tcp_craft_at / tcp_craft_go / tcp_craft_end.
lo_start() {
	local scenario=$1 fam=$2 sport=$3 dport=$4
	shift 4
	coproc CRAFT { ip netns exec "$NS_A" "$CT_PY_BIN" -c "$CT_LO_PY" "$scenario" "$fam" "$sport" "$dport" 60 "$@"; }
	CRAFT_P=$CRAFT_PID
	# Copies of the pipes: bash closes the coprocess's own ones when it ends.
	exec {CRAFT_IN}<&"${CRAFT[0]}" {CRAFT_OUT}>&"${CRAFT[1]}"
}

# ct_py_lo SCENARIO FAMILY SPORT DPORT: a scenario without checkpoints (udp), run to its end.
ct_py_lo() {
	local out rc=0
	out=$(ip netns exec "$NS_A" "$CT_PY_BIN" -c "$CT_LO_PY" "$1" "$2" "$3" "$4" 30 </dev/null) || rc=1
	[ -z "$out" ] || grep -v '^@end$' <<<"$out"
	return "$rc"
}

# at NAME: the scenario reached checkpoint NAME (a check).
at() { check "$CT_CASE: reaches $1" tcp_craft_at "$@"; }

lo_finish() {
	check "$CT_CASE: sequence completes" tcp_craft_end
	tcp_craft_abort
}

info() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $CRAFT_INFO"; }

lo_ping() { # FAMILY
	local dst=127.0.0.1
	[ "$1" = 6 ] && dst=::1
	ip netns exec "$NS_A" ping -q -c 3 -i 0.2 -W 2 -w 8 "$dst" >/dev/null
}

via_how() {
	if [ "$1" = l2 ]; then echo "through a packet socket on lo"; else echo "through a raw IP socket"; fi
}

# --- cases --------------------------------------------------------------------------------

# The RSTs, in this order: a raw IP socket's (seen at LOCAL_OUT) first, then a packet
# socket's (seen at PRE_ROUTING only). Connection i: client 4030i (SP + i), server 710i.
VIAS=(l3 l2)
SP=40300 DP=7100

for f in 4 6; do
	# An RST for a TIME_WAIT entry.
	if run_case "tw-rst-v$f"; then
		TRAFFIC_T0=$EPOCHREALTIME
		lo_start tw-rst "$f" "$SP" "$DP" "${VIAS[@]}"
		if at timewait; then
			lo_check "TIME_WAIT"
			lo_ref "${#VIAS[@]} TIME_WAIT entries, assured" "${#VIAS[@]}" \
				"$(lo_tcp_re "$f" TIME_WAIT '4030[0-9]' '710[0-9]' "$ASSURED")" 120
			lo_ref "nothing else" "${#VIAS[@]}" .
			lo_stats_snap
			RST_T0=$EPOCHREALTIME
			tcp_craft_go
		fi
		for i in "${!VIAS[@]}"; do
			via=${VIAS[$i]}
			at "rst-$via" || break
			check_eq "$CT_CASE: reference: no answer to the RST $(via_how "$via")" "$(info answers)" 0
			lo_check "after the RST $(via_how "$via")"
			lo_stats_check "RST $(via_how "$via")" 0
			lo_ref "its entry (:$((SP + i))) CLOSEd, assured" 1 \
				"$(lo_tcp_re "$f" CLOSE $((SP + i)) $((DP + i)) "$ASSURED")" 10 "$RST_T0"
			lo_ref "entries still in TIME_WAIT" $((${#VIAS[@]} - i - 1)) \
				"$(lo_tcp_re "$f" TIME_WAIT '4030[0-9]' '710[0-9]' "$ASSURED")"
			lo_ref "nothing else" "${#VIAS[@]}" .
			RST_T0=$EPOCHREALTIME
			tcp_craft_go
		done
		lo_finish
		case_end
	fi

	# An out-of-window RST for an ESTABLISHED entry.
	if run_case "oow-rst-v$f"; then
		TRAFFIC_T0=$EPOCHREALTIME
		lo_start oow-rst "$f" "$SP" "$DP" "${VIAS[@]}"
		re=$(lo_tcp_re "$f" ESTABLISHED '4030[0-9]' '710[0-9]' "$ASSURED")
		if at established; then
			lo_check "ESTABLISHED"
			lo_ref "${#VIAS[@]} ESTABLISHED entries, assured" "${#VIAS[@]}" "$re" 432000
			lo_ref "nothing else" "${#VIAS[@]}" .
			lo_stats_snap
			tcp_craft_go
		fi
		for via in "${VIAS[@]}"; do
			at "rst-$via" || break
			check_eq "$CT_CASE: reference: the RST $(via_how "$via") is ignored silently" "$(info answers)" 0
			lo_check "after the RST $(via_how "$via")"
			if [ "$via" = l2 ]; then
				# Seen once, at PRE_ROUTING.
				lo_stats_check "RST 2^30 beyond the window $(via_how "$via")" 1
			else
				# Invalid at LOCAL_OUT: it comes back in without an entry, and is tracked again.
				lo_stats_check "RST 2^30 beyond the window $(via_how "$via") (LOCAL_OUT, PRE_ROUTING)" 2
			fi
			lo_ref "all still ESTABLISHED, assured" "${#VIAS[@]}" "$re" 432000
			tcp_craft_go
		done
		if at after; then
			lo_check "data after the RSTs"
			lo_ref "ESTABLISHED, assured (the connections go on)" "${#VIAS[@]}" "$re" 432000
			lo_ref "nothing else" "${#VIAS[@]}" .
			lo_stats_check "data after the RSTs" 0
			tcp_craft_go
		fi
		lo_finish
		case_end
	fi

	# Ordinary loopback traffic: looped packets are tracked once.
	if run_case "traffic-v$f"; then
		check "$CT_CASE: counters read" lo_read
		lo_stats_snap
		TRAFFIC_T0=$EPOCHREALTIME
		lo_start halfclose "$f" "$SP" "$DP"
		if at halfclosed; then
			lo_check "TCP half-closed by the client"
			lo_ref "one CLOSE_WAIT entry, assured" 1 "$(lo_tcp_re "$f" CLOSE_WAIT "$SP" "$DP" "$ASSURED")" 60
			tcp_craft_go
		fi
		if at closed; then
			lo_check "TCP closed"
			lo_ref "one TIME_WAIT entry, assured" 1 "$(lo_tcp_re "$f" TIME_WAIT "$SP" "$DP" "$ASSURED")" 120
			tcp_craft_go
		fi
		lo_finish
		UDP_T0=$EPOCHREALTIME
		check "$CT_CASE: UDP request/reply" ct_py_lo udp "$f" $((SP + 1)) $((DP + 1))
		ICMP_T0=$EPOCHREALTIME
		check "$CT_CASE: ping" lo_ping "$f"
		lo_check "UDP and ping"
		lo_ref "one UDP entry, replied" 1 "$(lo_udp_re "$f" $((SP + 1)) $((DP + 1)))" 30 "$UDP_T0"
		lo_ref "one echo entry" 1 "$(lo_icmp_re "$f")" 30 "$ICMP_T0"
		lo_ref "nothing else" 3 .
		lo_stats_check "ordinary loopback traffic" 0
		case_end
	fi
done

netns_del
rm -rf "$LO_RAW"
[ -n "$loaded" ] && check "module unloads" unload_module
echo "# case summary:"
for s in "${CASE_SUMMARY[@]}"; do echo "#   $s"; done
echo "# suite: $(awk -v a="$SUITE_T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
t_done differential-loopback
[ "$T_FAIL" -eq 0 ]
