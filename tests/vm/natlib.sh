# Helpers for the differential tests across a router and through NAT
# (tests/vm/differential-nat.sh). Sourced (bash), inside a VM, after difflib.sh (sourced
# here if it was not).
# shellcheck shell=bash
#
# Topology (nat_fresh_netns): three namespaces, two veth pairs.
#
#   rct-nc (client)            rct-nr (router)                     rct-ns (server)
#   veth-c 10.78.1.2/24  <->  veth-rc 10.78.1.1/24 | veth-rs 10.78.2.1/24  <->  veth-s 10.78.2.2/24
#          fd78:1::2/64               fd78:1::1/64 | fd78:2::1/64                   fd78:2::2/64
#
# The router forwards (net.ipv4.ip_forward=1, net.ipv6.conf.all.forwarding=1); client
# and server have their default routes through it. nat_add_c2 gives the client a second
# address (10.78.1.3, fd78:1::3) for the cases where two clients must look alike.
# nf_conntrack (modprobe nf_conntrack enable_hooks=1) and rust_conntrack track in all
# three; nft rules (nat_nft) add NAT or drops where a case wants them.
#
# Family (nat_family 4|6) sets, for the traffic: C C2 RC RS S SX (client, its second
# address, the router's client-side and server-side addresses, the server, and an unused
# server-side address for SNAT at input), IP (nft family: ip or ip6), ECHO_REQ/ECHO_REP
# ("type=8 code=0 id=" ...), and ARE[ADDR], each address as an ERE of nf_conntrack's output
# (IPv6 written out in full); hostport ADDR PORT renders ADDR:PORT or [ADDR]:PORT for nft.
#
# Traffic: the client side always runs in rct-nc; servers in NS (rct-ns, or rct-nr for
# local delivery in the router). One Python program (NAT_PY), each role bounded in packets
# and by a deadline, refusing any address outside 10.78.1.0/24, 10.78.2.0/24, fd78:1::/64
# and fd78:2::/64 ("any", the wildcard, is accepted as a client's bind address only).
# SRC is the client's bind address (or any); the server binds BIND:PORT, the client sends
# to DST:DPORT (they differ when the router translates).
#   gen_udp        NS BIND PORT SRC DST DPORT SPORT [COUNT=3]   request/reply, echoed
#   gen_udp_send   SRC DST DPORT SPORT [COUNT=3]                one way, no server
#   gen_udp_stream NS BIND PORT SRC DST DPORT SPORT [SECONDS=3] both ways every 0.1 s
#   gen_udp_unreach SRC DST DPORT SPORT                         closed port: the client
#                  must get ECONNREFUSED (the ICMP error made it back through the router)
#   gen_tcp        NS BIND PORT SRC DST DPORT SPORT             connect, data both ways,
#                  the client closes first (its socket ends in TIME_WAIT)
#   gen_tcp_hold   NS BIND PORT SRC DST DPORT SPORT             the same, but returns while
#                  the connection is open and idle; nat_tcp_release closes it
#   gen_echo       SRC DST ID [COUNT=2]                          ICMP(v6) echo with id ID
#                  (raw socket): every reply must come back, with ID and from DST
#   gen_nat_flows  NS BIND PORT SRC DST DPORT BASE N           N one-packet UDP flows
#                  from ports BASE..BASE+N-1 (raw socket), a sink server on BIND:PORT
#
# Tables:
#   nat_tables [FILTER] [WHEN]   ct_compare (difflib.sh) in the three namespaces (a check
#       each), then a snapshot of nf_conntrack's tables for the ref checks
#   ref NS WHAT COUNT ERE [TIMEOUT]   in the snapshot, nf_conntrack in NS has COUNT
#       entries matching ERE, and (with TIMEOUT) their seconds-left fit an entry of TIMEOUT
#       s refreshed since the case's traffic began
#   ref_total NS COUNT           ... and COUNT entries in all
#   nat_show NS [MAX]            the snapshot of NS, as comments (printed by a failing ref)
#   ent VAR L4 STATE OSRC ODST OL4 RSRC RDST RL4 [unreplied] [assured]   VAR = the ERE of
#       a normalised line (difflib.sh's ct_normalise) of family $F; L4 udp, tcp or icmp
#       (icmpv6 for family 6); addresses as given to the traffic; OL4/RL4 the layer 4 part
#       ("sport=1 dport=2", "${ECHO_REQ}ID"; ports and ids may be EREs)
#   unconfirmed_zero NS WHAT     rust_conntrack's `unconfirmed` column of
#       /proc/net/stat/rust_conntrack (summed over CPUs) is 0 within
#       $RCT_NAT_UNCONFIRMED_WAIT s (default 5); skipped, with a message, when the column
#       does not exist or the table under test is not rust_conntrack
#
# Cases: nat_run_case NAME (RCT_DIFF_CASES selects, as run_case; fresh namespaces), step
# WHAT CMD... for each traffic step (a check), then difflib's case_end.
#
# SMP (difflib.sh, RCT_DIFF_SMP=1): namespaces are added through `ip netns add` and Python
# runs as $CT_PY_BIN, so difflib's RPS and CPU placement apply here too.

if ! declare -F ct_compare >/dev/null; then
	# shellcheck source=tests/vm/difflib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/difflib.sh"
fi

OURS=${RCT_DIFF_OURS:-rust_conntrack}
NAT_C=rct-nc
NAT_R=rct-nr
NAT_S=rct-ns
NAT_ALL="$NAT_C $NAT_R $NAT_S"
RCT_NAT_UNCONFIRMED_WAIT=${RCT_NAT_UNCONFIRMED_WAIT:-5}

# --- processes ----------------------------------------------------------------------------
#
# Starting a process costs a lot in a UML guest (hundreds of ms on um-debug), so the
# helpers below keep to bash builtins where they can: nsleep instead of sleep(1), $EPOCHREALTIME
# instead of date(1), regex matches instead of grep(1), ip -batch.

# nsleep SECONDS: sleeps without a process (read's timeout on a pipe nobody writes to).
NAT_SLEEP_FD=
nsleep() {
	[ -n "$NAT_SLEEP_FD" ] || exec {NAT_SLEEP_FD}<> <(:)
	read -r -t "$1" -u "$NAT_SLEEP_FD" || true
}

# fsub A B: A - B for $EPOCHREALTIME-style decimals, printed with 3 decimals (no process).
fsub() {
	local a=${1/./} b=${2/./} d
	# Both have 6 decimals ($EPOCHREALTIME); strip leading zeros for bash arithmetic.
	d=$((10#$a - 10#$b))
	printf '%d.%03d' $((d / 1000000)) $(((d < 0 ? -d : d) % 1000000 / 1000))
}

# --- namespaces -----------------------------------------------------------------------

nat_netns_del() {
	local ns
	for ns in $NAT_ALL; do ip netns del "$ns" 2>/dev/null; done
	true
}

nat_netns() {
	local ns
	# One at a time, through `ip` (difflib.sh may wrap `ip netns add` for SMP runs).
	for ns in $NAT_ALL; do ip netns add "$ns" || return 1; done
	ip -batch - <<EOF || return 1
link add veth-c netns $NAT_C type veth peer name veth-rc netns $NAT_R
link add veth-s netns $NAT_S type veth peer name veth-rs netns $NAT_R
EOF
	ip netns exec "$NAT_R" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 || return 1
	ip -n "$NAT_C" -batch - <<EOF || return 1
addr add 10.78.1.2/24 dev veth-c
addr add fd78:1::2/64 dev veth-c nodad
link set lo up
link set veth-c up
route add default via 10.78.1.1
route add ::/0 via fd78:1::1
EOF
	ip -n "$NAT_R" -batch - <<EOF || return 1
addr add 10.78.1.1/24 dev veth-rc
addr add fd78:1::1/64 dev veth-rc nodad
addr add 10.78.2.1/24 dev veth-rs
addr add fd78:2::1/64 dev veth-rs nodad
link set lo up
link set veth-rc up
link set veth-rs up
EOF
	ip -n "$NAT_S" -batch - <<EOF
addr add 10.78.2.2/24 dev veth-s
addr add fd78:2::2/64 dev veth-s nodad
link set lo up
link set veth-s up
route add default via 10.78.2.1
route add ::/0 via fd78:2::1
EOF
}

nat_links_up() {
	local i c r s
	for ((i = 0; i < 100; i++)); do
		c=$(ip -n "$NAT_C" -o link show veth-c 2>/dev/null)
		r=$(ip -n "$NAT_R" -o link show 2>/dev/null)
		s=$(ip -n "$NAT_S" -o link show veth-s 2>/dev/null)
		if [[ $c == *"state UP"* && $s == *"state UP"* && $r =~ veth-rc[^$'\n']*state\ UP && $r =~ veth-rs[^$'\n']*state\ UP ]]; then
			return 0
		fi
		nsleep 0.05
	done
	echo "# natlib: veth pairs not up after 5 s" >&2
	return 1
}

# nat_static_neigh: permanent neighbour entries for every address the cases reach (the
# second client address included), so that no first packet waits for ARP or neighbour
# discovery: a probe lost while a fresh link comes up is retried after 1 s, which would
# stretch a UDP exchange past the 2 s after which both trackers mark the entry ASSURED.
nat_static_neigh() {
	local mc mrc mrs ms
	mc=$(ip -n "$NAT_C" -br link show veth-c | awk '{print $3}')
	mrc=$(ip -n "$NAT_R" -br link show veth-rc | awk '{print $3}')
	mrs=$(ip -n "$NAT_R" -br link show veth-rs | awk '{print $3}')
	ms=$(ip -n "$NAT_S" -br link show veth-s | awk '{print $3}')
	[ -n "$mc" ] && [ -n "$mrc" ] && [ -n "$mrs" ] && [ -n "$ms" ] || return 1
	ip -n "$NAT_C" -batch - <<EOF || return 1
neigh replace 10.78.1.1 lladdr $mrc dev veth-c nud permanent
neigh replace fd78:1::1 lladdr $mrc dev veth-c nud permanent
EOF
	ip -n "$NAT_R" -batch - <<EOF || return 1
neigh replace 10.78.1.2 lladdr $mc dev veth-rc nud permanent
neigh replace fd78:1::2 lladdr $mc dev veth-rc nud permanent
neigh replace 10.78.1.3 lladdr $mc dev veth-rc nud permanent
neigh replace fd78:1::3 lladdr $mc dev veth-rc nud permanent
neigh replace 10.78.2.2 lladdr $ms dev veth-rs nud permanent
neigh replace fd78:2::2 lladdr $ms dev veth-rs nud permanent
EOF
	ip -n "$NAT_S" -batch - <<EOF
neigh replace 10.78.2.1 lladdr $mrs dev veth-s nud permanent
neigh replace fd78:2::1 lladdr $mrs dev veth-s nud permanent
EOF
}

nat_fresh_netns() {
	nat_netns_del
	nat_netns && nat_links_up && nat_static_neigh
}

nat_add_c2() {
	ip -n "$NAT_C" -batch - <<EOF
addr add 10.78.1.3/24 dev veth-c
addr add fd78:1::3/64 dev veth-c nodad
EOF
}

# nat_nft NS <RULESET: loads an nft ruleset (stdin) in NS.
nat_nft() {
	ip netns exec "$1" nft -f -
}

# --- families and expected lines -------------------------------------------------------

# v6_full VAR ADDR: VAR = ADDR with every group written out, as nf_conntrack prints it
# (%pI6).
v6_full() {
	local -n out_=$1
	local a=$2 head tail x n i g
	local -a h=() t=() all=()
	if [[ $a == *::* ]]; then head=${a%%::*} tail=${a#*::}; else head=$a tail=; fi
	[ -z "$head" ] || IFS=: read -r -a h <<<"$head"
	[ -z "$tail" ] || IFS=: read -r -a t <<<"$tail"
	n=$((8 - ${#h[@]} - ${#t[@]}))
	for x in "${h[@]}"; do printf -v g %04x $((16#$x)); all+=("$g"); done
	for ((i = 0; i < n; i++)); do all+=(0000); done
	for x in "${t[@]}"; do printf -v g %04x $((16#$x)); all+=("$g"); done
	local IFS=:
	out_="${all[*]}"
}

# ARE[ADDR]: ADDR as an ERE of nf_conntrack's output (filled by nat_family).
declare -A ARE
nat_are() {
	local a
	for a in "$@"; do
		case $a in
		*:*) v6_full "ARE[$a]" "$a" ;;
		*) ARE[$a]=${a//./\\.} ;;
		esac
	done
}

nat_family() {
	F=$1
	if [ "$F" = 6 ]; then
		IP=ip6 C=fd78:1::2 C2=fd78:1::3 RC=fd78:1::1 RS=fd78:2::1 S=fd78:2::2 SX=fd78:2::100
		ECHO_REQ='type=128 code=0 id=' ECHO_REP='type=129 code=0 id='
	else
		IP=ip C=10.78.1.2 C2=10.78.1.3 RC=10.78.1.1 RS=10.78.2.1 S=10.78.2.2 SX=10.78.2.100
		ECHO_REQ='type=8 code=0 id=' ECHO_REP='type=0 code=0 id='
	fi
	nat_are "$C" "$C2" "$RC" "$RS" "$S" "$SX"
}

hostport() { case $1 in *:*) echo "[$1]:$2" ;; *) echo "$1:$2" ;; esac; }

# ent VAR L4 STATE OSRC ODST OL4 RSRC RDST RL4 [unreplied] [assured]: VAR = the ERE.
ent() {
	local -n re_=$1
	local l4=$2 state=$3 os=$4 od=$5 ol4=$6 rs=$7 rd=$8 rl4=$9 unrep='' assured='' hdr fl
	shift 9
	for fl in "$@"; do
		case $fl in
		unreplied) unrep='\[UNREPLIED\] ' ;;
		assured) assured='\[ASSURED\] ' ;;
		*) echo "ent: unknown flag $fl" >&2 ;;
		esac
	done
	case $F/$l4 in
	4/udp) hdr='ipv4     2 udp      17' ;;
	6/udp) hdr='ipv6     10 udp      17' ;;
	4/tcp) hdr='ipv4     2 tcp      6' ;;
	6/tcp) hdr='ipv6     10 tcp      6' ;;
	4/icmp) hdr='ipv4     2 icmp     1' ;;
	6/icmp) hdr='ipv6     10 icmpv6   58' ;;
	*) echo "ent: unknown l4 $F/$l4" >&2 ;;
	esac
	[ -n "${ARE[$os]:-}" ] && [ -n "${ARE[$od]:-}" ] && [ -n "${ARE[$rs]:-}" ] && [ -n "${ARE[$rd]:-}" ] ||
		echo "ent: an address not from nat_family: $os $od $rs $rd" >&2
	re_="^$hdr T ${state:+$state }src=${ARE[$os]} dst=${ARE[$od]} $ol4 ${unrep}src=${ARE[$rs]} dst=${ARE[$rd]} $rl4 ${assured}mark=0 zone=0$"
}

# --- traffic ----------------------------------------------------------------------------

# shellcheck disable=SC2016
NAT_PY='
import errno, ipaddress, os, select, signal, socket, struct, sys, time

ALLOWED = tuple(ipaddress.ip_network(n) for n in
                ("10.78.1.0/24", "10.78.2.0/24", "fd78:1::/64", "fd78:2::/64"))

def addr(s):
    a = ipaddress.ip_address(s)
    if not any(a in n for n in ALLOWED):
        sys.exit("natlib: refusing %s: only %s" % (s, ", ".join(map(str, ALLOWED))))
    return a

def local(s, peer):
    """A client bind address: any (the wildcard) or a test address of peer s family."""
    if s == "any":
        return "::" if peer.version == 6 else "0.0.0.0"
    a = addr(s)
    if a.version != peer.version:
        sys.exit("natlib: %s and %s: families differ" % (a, peer))
    return str(a)

def family(a):
    return socket.AF_INET6 if a.version == 6 else socket.AF_INET

def deadline(seconds):
    signal.signal(signal.SIGALRM, lambda *_: sys.exit("natlib: %s: time limit reached" % sys.argv[1]))
    signal.alarm(int(seconds))

def ready(path):
    if path != "-":
        open(path, "w").close()

def udp_server(bind, port, mode, count, limit, ready_path):
    """Receives up to count datagrams (echoing them if mode is echo); ends after count, or
    1 s without traffic once some came, or after limit seconds."""
    a = addr(bind)
    deadline(limit)
    s = socket.socket(family(a), socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind((str(a), int(port)))
    ready(ready_path)
    got = 0
    while got < int(count):
        if got:
            s.settimeout(1.0)
        try:
            data, peer = s.recvfrom(2048)
        except socket.timeout:
            break
        got += 1
        if mode == "echo":
            s.sendto(data, peer)

def udp_socket(src, a, sport):
    s = socket.socket(family(a), socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((local(src, a), int(sport)))
    # Generous: on a loaded host the first reply to a new address may wait for neighbour
    # discovery; the entries checked live 30 s.
    s.settimeout(10)
    return s

def udp_client(src, dst, dport, sport, count, expect_reply):
    a = addr(dst)
    deadline(30)
    s = udp_socket(src, a, sport)
    for i in range(int(count)):
        s.sendto(b"rct-nat %d" % i, (str(a), int(dport)))
        if expect_reply == "1":
            data, peer = s.recvfrom(2048)
            assert data == b"rct-nat %d" % i, data
            # The router (or our own output NAT) must have undone its translation.
            if (ipaddress.ip_address(peer[0]), peer[1]) != (a, int(dport)):
                sys.exit("natlib: udp-client: reply from %s port %d, not %s port %s" % (peer[0], peer[1], a, dport))

def udp_stream(src, dst, dport, sport, seconds):
    a = addr(dst)
    deadline(float(seconds) + 30)
    s = udp_socket(src, a, sport)
    start = time.monotonic()
    for i in range(int(float(seconds) * 10) + 1):
        s.sendto(b"rct-nat stream %d" % i, (str(a), int(dport)))
        s.recvfrom(2048)
        if time.monotonic() - start > float(seconds):
            break
        time.sleep(0.1)
    else:
        sys.exit("natlib: udp-stream: ran out of packets before %s s" % seconds)

def udp_unreach(src, dst, dport, sport):
    a = addr(dst)
    deadline(30)
    s = udp_socket(src, a, sport)
    s.connect((str(a), int(dport)))
    s.send(b"rct-nat unreach")
    try:
        s.recv(2048)
    except ConnectionRefusedError:
        return
    sys.exit("natlib: udp-unreach: a reply instead of a port unreachable")

def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

def icmp_echo(src, dst, ident, count):
    """count echo requests with identifier ident, one at a time; each reply must come back
    from dst with ident and its sequence number (any translation undone)."""
    b = addr(dst)
    deadline(30)
    ident = int(ident, 0)
    if b.version == 4:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        req, rep = 8, 0
    else:  # the kernel computes ICMPv6 checksums of raw sockets
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        req, rep = 128, 129
    if src != "any":
        s.bind((local(src, b), 0))
    s.settimeout(3)
    for seq in range(1, int(count) + 1):
        payload = b"rct-nat echo %d" % seq
        hdr = struct.pack("!BBHHH", req, 0, 0, ident, seq)
        if b.version == 4:
            hdr = struct.pack("!BBHHH", req, 0, csum(hdr + payload), ident, seq)
        s.sendto(hdr + payload, (str(b), 0))
        while True:
            data, peer = s.recvfrom(2048)  # a timeout ends the role with an error
            if b.version == 4:
                data = data[(data[0] & 15) * 4:]
            if len(data) < 8:
                continue
            t, _, _, i, sq = struct.unpack("!BBHHH", data[:8])
            if t == rep and i == ident and sq == seq and ipaddress.ip_address(peer[0].split("%")[0]) == b:
                break
        time.sleep(0.1)

def flows(src, dst, dport, sport_base, n):
    """n UDP datagrams from n source ports: one raw socket, checksums computed here (v4)
    or by the kernel (v6, IPV6_CHECKSUM), non-blocking sends retried on EAGAIN/ENOBUFS."""
    a, b = addr(src), addr(dst)
    n, dport, sport_base = int(n), int(dport), int(sport_base)
    if not (0 < n and sport_base + n <= 65536):
        sys.exit("natlib: flows: bad source port range")
    deadline(120)
    s = socket.socket(family(b), socket.SOCK_RAW, socket.IPPROTO_UDP)
    if b.version == 6:
        s.setsockopt(socket.IPPROTO_IPV6, 7, 6)  # IPV6_CHECKSUM at offset 6
    s.bind((str(a), 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
    s.setblocking(False)
    payload = b"rct-nat flow"
    length = 8 + len(payload)
    pseudo = a.packed + b.packed + (struct.pack("!BBH", 0, 17, length) if b.version == 4
                                     else struct.pack("!IxxxB", length, 17))
    retries = 0
    for i in range(n):
        sport = sport_base + i
        hdr = struct.pack("!HHHH", sport, dport, length, 0)
        if b.version == 4:
            c = csum(pseudo + hdr + payload) or 0xFFFF
            hdr = struct.pack("!HHHH", sport, dport, length, c)
        while True:
            try:
                s.sendto(hdr + payload, (str(b), 0))
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.ENOBUFS):
                    raise
                retries += 1
                if retries > 100000:
                    sys.exit("natlib: flows: the socket stays full")
                select.select([], [s], [], 0.01)
        if i == 0:
            time.sleep(0.2)  # neighbours resolved before the burst
        elif i % 32 == 0:
            time.sleep(0.001)  # let the router and server softirqs keep up: no backlog drops
    if retries:
        print("# flows: %d sends retried" % retries, file=sys.stderr)

MSG = b"rct-nat tcp hello"

def recv_exact(c, n):
    data = b""
    while len(data) < n:
        d = c.recv(n - len(data))
        if not d:
            sys.exit("natlib: tcp: EOF after %d of %d bytes" % (len(data), n))
        data += d
    return data

def tcp_server(bind, port, count, limit, ready_path):
    """Accepts count connections; echoes the message, then closes on EOF."""
    a = addr(bind)
    deadline(limit)
    srv = socket.socket(family(a), socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((str(a), int(port)))
    srv.listen(16)
    ready(ready_path)
    for _ in range(int(count)):
        c, _ = srv.accept()
        c.sendall(recv_exact(c, len(MSG)))
        d = c.recv(100)
        if d:
            sys.exit("natlib: tcp-server: data %r instead of EOF" % d)
        c.close()

def tcp_client(src, dst, dport, sport, sync, limit):
    """Connects from src:sport, sends the message, reads it back; with a sync directory,
    then says holding and waits for release; closes first."""
    a = addr(dst)
    deadline(limit)
    c = socket.socket(family(a), socket.SOCK_STREAM)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c.bind((local(src, a), int(sport)))
    c.settimeout(10)
    c.connect((str(a), int(dport)))
    c.sendall(MSG)
    if recv_exact(c, len(MSG)) != MSG:
        sys.exit("natlib: tcp-client: wrong data")
    if sync != "-":
        time.sleep(0.5)  # delayed ACKs go out before the tables are read
        open(os.path.join(sync, "holding"), "w").close()
        while not os.path.exists(os.path.join(sync, "release")):
            time.sleep(0.02)
    c.close()

roles = {"udp-server": udp_server, "udp-client": udp_client, "udp-stream": udp_stream,
         "udp-unreach": udp_unreach, "icmp-echo": icmp_echo, "flows": flows,
         "tcp-server": tcp_server, "tcp-client": tcp_client}
roles[sys.argv[1]](*sys.argv[2:])
'

nat_py() { # NS ROLE ARGS...
	local ns=$1
	shift
	ip netns exec "$ns" "$CT_PY_BIN" -c "$NAT_PY" "$@"
}

# nat_server NS ROLE ARGS...: starts a server role in NS with a ready file as last
# argument; returns once it is ready. Sets NAT_SRV_PID.
NAT_SRV_PID=
nat_server() {
	local ns=$1 ready i
	shift
	ready=/tmp/nat-ready.$$.$RANDOM$RANDOM
	nat_py "$ns" "$@" "$ready" &
	NAT_SRV_PID=$!
	for ((i = 0; i < 200; i++)); do
		[ -e "$ready" ] && { rm -f "$ready"; return 0; }
		kill -0 "$NAT_SRV_PID" 2>/dev/null || break
		nsleep 0.05
	done
	echo "# natlib: server $1 in $ns did not start" >&2
	nat_server_kill
	return 1
}

nat_server_kill() {
	if [ -n "$NAT_SRV_PID" ]; then
		kill "$NAT_SRV_PID" 2>/dev/null
		wait "$NAT_SRV_PID" 2>/dev/null
	fi
	NAT_SRV_PID=
	return 0
}

# nat_client_then_server ROLE ARGS...: a client role in the client namespace, then waits
# for the server.
nat_client_then_server() {
	local rc=0
	nat_py "$NAT_C" "$@" || rc=1
	if [ "$rc" -ne 0 ]; then nat_server_kill; return 1; fi
	wait "$NAT_SRV_PID" || rc=1
	NAT_SRV_PID=
	return "$rc"
}

gen_udp() {
	local ns=$1 bind=$2 port=$3 src=$4 dst=$5 dport=$6 sport=$7 count=${8:-3}
	nat_server "$ns" udp-server "$bind" "$port" echo "$count" 30 || return 1
	nat_client_then_server udp-client "$src" "$dst" "$dport" "$sport" "$count" 1
}

gen_udp_send() {
	nat_py "$NAT_C" udp-client "$1" "$2" "$3" "$4" "${5:-3}" 0
}

gen_udp_stream() {
	local ns=$1 bind=$2 port=$3 src=$4 dst=$5 dport=$6 sport=$7 seconds=${8:-3}
	nat_server "$ns" udp-server "$bind" "$port" echo $((seconds * 10 + 10)) $((seconds + 30)) || return 1
	nat_client_then_server udp-stream "$src" "$dst" "$dport" "$sport" "$seconds"
}

gen_udp_unreach() {
	nat_py "$NAT_C" udp-unreach "$@"
}

gen_echo() {
	nat_py "$NAT_C" icmp-echo "$1" "$2" "$3" "${4:-2}"
}

gen_tcp() {
	local ns=$1 bind=$2 port=$3 src=$4 dst=$5 dport=$6 sport=$7 rc
	nat_server "$ns" tcp-server "$bind" "$port" 1 30 || return 1
	nat_client_then_server tcp-client "$src" "$dst" "$dport" "$sport" - 30
	rc=$?
	nsleep 0.3 # the client's last ACK crosses the router
	return "$rc"
}

NAT_SYNC=
NAT_CLI_PID=
gen_tcp_hold() {
	local ns=$1 bind=$2 port=$3 src=$4 dst=$5 dport=$6 sport=$7 i
	nat_server "$ns" tcp-server "$bind" "$port" 1 120 || return 1
	NAT_SYNC=/tmp/nat-sync.$$.$RANDOM$RANDOM
	mkdir "$NAT_SYNC" || return 1
	nat_py "$NAT_C" tcp-client "$src" "$dst" "$dport" "$sport" "$NAT_SYNC" 120 &
	NAT_CLI_PID=$!
	for ((i = 0; i < 600; i++)); do
		[ -e "$NAT_SYNC/holding" ] && return 0
		kill -0 "$NAT_CLI_PID" 2>/dev/null || break
		nsleep 0.05
	done
	echo "# natlib: the TCP client is not holding its connection" >&2
	nat_tcp_release
	return 1
}

nat_tcp_release() {
	local rc=0
	[ -n "$NAT_SYNC" ] && : >"$NAT_SYNC/release"
	if [ -n "$NAT_CLI_PID" ]; then wait "$NAT_CLI_PID" || rc=1; fi
	if [ -n "$NAT_SRV_PID" ]; then wait "$NAT_SRV_PID" || rc=1; fi
	NAT_CLI_PID= NAT_SRV_PID=
	[ -z "$NAT_SYNC" ] || rm -rf "$NAT_SYNC"
	NAT_SYNC=
	nsleep 0.3
	return "$rc"
}

gen_nat_flows() {
	local ns=$1 bind=$2 port=$3 src=$4 dst=$5 dport=$6 base=$7 n=$8
	# The server's socket only keeps the port open (no port unreachable errors).
	nat_server "$ns" udp-server "$bind" "$port" sink "$n" $((n / 100 + 60)) || return 1
	nat_client_then_server flows "$src" "$dst" "$dport" "$base" "$n"
}

# --- tables -------------------------------------------------------------------------------

# nat_tables [FILTER] [WHEN]: ct_compare in the three namespaces, then nf_conntrack's tables
# read once more into SNAP_NS/SNAP_T/SNAP_L (namespace, seconds left, normalised line as
# ct_normalise writes it) for the ref checks.
SNAP_NS=() SNAP_T=() SNAP_L=()
NAT_RAW=/tmp/nat-raw.$$
nat_tables() {
	local filter=${1:-} when=${2:-} ns line
	local -a raw
	for ns in $NAT_ALL; do
		CT_CASE="$CT_CASE${when:+ $when}" check "$CT_CASE:${when:+ $when:} $ns: $OURS = nf_conntrack${filter:+ ($filter)}" ct_compare "$ns" "$filter"
	done
	SNAP_NS=() SNAP_T=() SNAP_L=()
	for ns in $NAT_ALL; do
		# Through a file: bash reads a pipe one byte per system call.
		ip netns exec "$ns" cat /proc/net/nf_conntrack >"$NAT_RAW"
		mapfile -t raw <"$NAT_RAW"
		for line in "${raw[@]}"; do
			line=${line% use=*}
			SNAP_NS+=("$ns")
			# "%-8s %u %-8s %u %ld ": the timeout follows the first four fields.
			if [[ $line =~ ^([^ ]+ +[^ ]+ +[^ ]+ +[^ ]+ )(-?[0-9]+)( .*)$ ]]; then
				SNAP_T+=("${BASH_REMATCH[2]}")
				SNAP_L+=("${BASH_REMATCH[1]}T${BASH_REMATCH[3]}")
			else
				SNAP_T+=("?")
				SNAP_L+=("$line")
			fi
		done
	done
	NAT_SNAP_T=$EPOCHREALTIME
}

# nat_show NS [MAX]: nf_conntrack's snapshot of NS (at most MAX lines), as comments.
nat_show() {
	local i n=0 max=${2:-1000000}
	echo "# nf_conntrack in $1 (snapshot):"
	for i in "${!SNAP_L[@]}"; do
		[ "${SNAP_NS[$i]}" = "$1" ] || continue
		n=$((n + 1))
		[ "$n" -le "$max" ] && echo "#   ${SNAP_L[$i]/ T / ${SNAP_T[$i]} }"
	done
	[ "$n" -le "$max" ] || echo "#   ... $((n - max)) more"
}

ref() {
	local ns=$1 what=$2 count=$3 re=$4 timeout=${5:-} n=0 i bad='' tmin
	for i in "${!SNAP_L[@]}"; do
		if [ "${SNAP_NS[$i]}" = "$ns" ] && [[ ${SNAP_L[$i]} =~ $re ]]; then
			n=$((n + 1))
		fi
	done
	if [ "$n" != "$count" ]; then
		t_fail "$CT_CASE: reference: $ns: $what" "got '$n', want '$count'"
		nat_show "$ns" 6
		echo "#   (wanted: $re)"
	else
		t_ok "$CT_CASE: reference: $ns: $what"
	fi
	[ -n "$timeout" ] || return 0
	# Refreshed at most `elapsed` s ago (whole seconds, rounded up), so at least
	# TIMEOUT - elapsed - 1 s left.
	tmin=$(fsub "$NAT_SNAP_T" "$TRAFFIC_T0")
	tmin=$((timeout - ${tmin%.*} - 2))
	for i in "${!SNAP_L[@]}"; do
		if [ "${SNAP_NS[$i]}" = "$ns" ] && [[ ${SNAP_L[$i]} =~ $re ]]; then
			[ "${SNAP_T[$i]}" -ge "$tmin" ] 2>/dev/null && [ "${SNAP_T[$i]}" -le "$timeout" ] || bad="$bad ${SNAP_T[$i]}"
		fi
	done
	if [ -z "$bad" ]; then
		t_ok "$CT_CASE: reference: $ns: $what: timeout of a $timeout s entry"
	else
		t_fail "$CT_CASE: reference: $ns: $what: timeout of a $timeout s entry" "got$bad, want $tmin..$timeout"
	fi
}

ref_total() {
	local i n=0
	for i in "${!SNAP_NS[@]}"; do [ "${SNAP_NS[$i]}" = "$1" ] && n=$((n + 1)); done
	check_eq "$CT_CASE: reference: $1: $2 entries in all" "$n" "$2"
}

# unconfirmed NS: rust_conntrack's unconfirmed column in NS, summed over the CPUs; fails
# (quietly) when the table under test is not rust_conntrack or has no such column.
unconfirmed() {
	local idx=-1 i sum=0 line
	local -a rows header row
	[ "$OURS" = rust_conntrack ] || return 1
	mapfile -t rows < <(ip netns exec "$1" cat /proc/net/stat/rust_conntrack 2>/dev/null)
	[ "${#rows[@]}" -ge 2 ] || return 1
	read -r -a header <<<"${rows[0]}"
	for i in "${!header[@]}"; do [ "${header[$i]}" = unconfirmed ] && idx=$i; done
	[ "$idx" -ge 0 ] || return 1
	for line in "${rows[@]:1}"; do
		read -r -a row <<<"$line"
		sum=$((sum + 16#${row[$idx]}))
	done
	echo "$sum"
}

unconfirmed_zero() {
	local ns=$1 what=$2 n first t0
	local name="$CT_CASE: $ns: $what: no unconfirmed $OURS entry left within $RCT_NAT_UNCONFIRMED_WAIT s"
	if ! first=$(unconfirmed "$ns"); then
		echo "# skip - $name: /proc/net/stat/$OURS has no unconfirmed column"
		return 0
	fi
	n=$first
	t0=$EPOCHREALTIME
	while [ "$n" != 0 ]; do
		t=$(fsub "$EPOCHREALTIME" "$t0")
		[ "${t%.*}" -lt "$RCT_NAT_UNCONFIRMED_WAIT" ] || break
		nsleep 0.2
		n=$(unconfirmed "$ns") || n=unreadable
	done
	if [ "$n" = 0 ]; then
		t_ok "$name"
		[ "$first" = 0 ] || echo "# $ns: $first unconfirmed at first, 0 after $(fsub "$EPOCHREALTIME" "$t0") s"
	else
		t_fail "$name" "still $n (at first $first)"
	fi
}

# --- cases --------------------------------------------------------------------------------

nat_run_case() {
	CT_CASE=$1
	if [ -n "${RCT_DIFF_CASES:-}" ] && ! [[ $1 =~ $RCT_DIFF_CASES ]]; then
		return 1
	fi
	# RCT_DIFF_SKIP: cases not to run (an ERE), e.g. those whose reference entries outlive
	# the case only on a fast machine.
	if [ -n "${RCT_DIFF_SKIP:-}" ] && [[ $1 =~ $RCT_DIFF_SKIP ]]; then
		echo "# skip - $1 (RCT_DIFF_SKIP)"
		return 1
	fi
	echo "# --- case $1"
	CASE_T0=$(date +%s.%N)
	TRAFFIC_T0=$EPOCHREALTIME
	CASE_FAIL0=$T_FAIL
	if ! nat_fresh_netns; then
		t_fail "$1: fresh namespaces"
		case_end
		return 1
	fi
}

# step WHAT CMD...: a traffic step of the case (a check).
step() {
	local what=$1
	shift
	check "$CT_CASE: traffic: $what" "$@"
}
