# TCP helpers for the differential tests (tests/vm/differential-tcp.sh and
# tests/vm/differential-tcp-expiry.sh). Sourced (bash), inside a VM, after difflib.sh
# (sourced here if it was not).
# shellcheck shell=bash
#
# Real connections (tcp_conn, CT_TCP_PY): a server in B (rct-b) and a client in A (rct-a),
# Python sockets, one MODE saying what both do; they meet through files in a sync
# directory, and the "hold" modes keep their sockets open until the test says stop, so the
# tables can be read while a connection is half-closed or idle. Every role is bounded by a
# deadline and refuses any address outside 10.77.0.0/24 and fd77::/64.
#   tcp_conn MODE DST PORT [SPORT] [COUNT]   runs both sides; for the hold modes returns
#       once both are holding (then tcp_conn_release). Modes:
#       fin-client        A sends, B echoes, A closes first (FIN), B closes on EOF
#       fin-server        B answers and closes first, A closes on EOF
#       rst               A closes with SO_LINGER {1, 0}: a RST; B sees ECONNRESET
#       halfclose-client  A shutdown(SHUT_WR); B, on EOF, still sends; both hold
#       halfclose-server  B shutdown(SHUT_WR); A, on EOF, still sends; both hold
#       simclose          both hold; tcp_simclose makes their FINs cross
#       many              COUNT connections in a row, each as fin-client
#       pickup            one exchange, then idle until tcp_sync_touch go; then more data
#                         both ways, A first; holds until release (then A closes first)
#       sink              B only: accepts COUNT connections and reads each until EOF or
#                         error (for crafted clients); tcp_sink_start / tcp_sink_stop
#       connect-only      A connects and waits (no reply expected: the SYN-ACK never
#                         comes); runs in the background, tcp_conn_release ends it
#   tcp_conn_release   tells holding sides to go on (close), waits for both; non-zero if
#       either failed.
#
# Crafted packets (tcp_craft_*, CT_CRAFT_PY): one Python process with scapy, started in
# A, holding raw sockets in A and, through setns(2), in B. It sends crafted segments from
# either side (IPPROTO_RAW, so they pass the sender's LOCAL_OUT hooks: both namespaces'
# trackers see them) and reads what arrives in A (a raw IPPROTO_TCP socket), to follow B's
# kernel. Its packets carry SO_MARK $CT_MARK; kernel RSTs (mark 0) on the crafted ports are
# dropped before conntrack by nft rules (tcp_nft_*), so an endpoint without a socket cannot
# disturb a case. The scenario (CT_CRAFT_PY's SCENARIOS) stops at named checkpoints:
#   tcp_craft_start SCENARIO FAMILY(4|6) SPORT DPORT   starts it (a coprocess)
#   tcp_craft_at NAME     waits until it stops at checkpoint NAME (prints what it says)
#   tcp_craft_go          lets it go on from the current checkpoint
#   tcp_craft_end         waits for its end; non-zero if it failed
#
# Case structure (as tests/vm/differential.sh): run_case, traffic, compare_both, ref_expect,
# case_end; stats_snap / stats_check compare the `invalid` column's increments.

if ! declare -F ct_compare >/dev/null; then
	# shellcheck source=tests/vm/difflib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/difflib.sh"
fi

OURS=${RCT_DIFF_OURS:-rust_conntrack}
CT_MARK=0x77

V4='src=10\.77\.0\.1 dst=10\.77\.0\.2 '
V4R='src=10\.77\.0\.2 dst=10\.77\.0\.1 '
# nf_conntrack prints IPv6 addresses in full (%pI6).
V6='src=fd77:0000:0000:0000:0000:0000:0000:0001 dst=fd77:0000:0000:0000:0000:0000:0000:0002 '
V6R='src=fd77:0000:0000:0000:0000:0000:0000:0002 dst=fd77:0000:0000:0000:0000:0000:0000:0001 '
TAIL=' mark=0 zone=0$'

# tcp_re FAMILY STATE SPORT DPORT [FLAGS_BEFORE_REPLY] [FLAGS_AFTER]: the normalised line of
# a TCP entry from A to B (SPORT may be an ERE such as [0-9]+). FLAGS_BEFORE_REPLY is
# '\[UNREPLIED\] ' or empty, FLAGS_AFTER '\[ASSURED\] ' or empty.
tcp_re() {
	local fam=$1 state=$2 sp=$3 dp=$4 unrep=${5:-} assured=${6:-}
	if [ "$fam" = 6 ]; then
		echo "^ipv6     10 tcp      6 T $state ${V6}sport=$sp dport=$dp ${unrep}${V6R}sport=$dp dport=$sp ${assured}mark=0 zone=0$"
	else
		echo "^ipv4     2 tcp      6 T $state ${V4}sport=$sp dport=$dp ${unrep}${V4R}sport=$dp dport=$sp ${assured}mark=0 zone=0$"
	fi
}

# --- /proc/net/stat: the invalid column -----------------------------------------------

# stats_snap: the invalid counters of both trackers in both namespaces, read back to back.
declare -A STAT0
stats_read() { # NS -> "REF OURS"
	echo "$(stat_sum "$1" nf_conntrack invalid) $(stat_sum "$1" "$OURS" invalid)"
}
stats_snap() {
	local ns r o
	for ns in "$NS_A" "$NS_B"; do
		read -r r o < <(stats_read "$ns")
		STAT0[$ns.ref]=$r STAT0[$ns.ours]=$o
	done
}

# stats_check WHAT REF_A REF_B: since stats_snap, nf_conntrack's invalid counter grew by
# REF_A in A and REF_B in B (reference checks; "-" skips one), and ours by as much as
# nf_conntrack's in each namespace.
stats_check() {
	local what=$1 want_a=$2 want_b=$3 ns r o dr do want
	for ns in "$NS_A" "$NS_B"; do
		read -r r o < <(stats_read "$ns")
		dr=$((r - STAT0[$ns.ref]))
		do=$((o - STAT0[$ns.ours]))
		want=$want_a
		[ "$ns" = "$NS_B" ] && want=$want_b
		[ "$want" = - ] || check_eq "$CT_CASE: reference: $ns: $what: nf_conntrack invalid +$want" "$dr" "$want"
		check_eq "$CT_CASE: $ns: $what: invalid increments, $OURS vs nf_conntrack" "$do" "$dr"
	done
}

# --- nft: drops before conntrack ------------------------------------------------------

# tcp_nft NS HOOK RULE...: adds RULE to table inet rct_tcp, chain HOOK (output or
# prerouting) at priority -350, ahead of both trackers (-200): what it drops neither sees.
tcp_nft() {
	local ns=$1 hook=$2
	shift 2
	ip netns exec "$ns" nft -f - <<EOF || return 1
table inet rct_tcp {
	chain $hook { type filter hook $hook priority -350; policy accept; }
}
EOF
	ip netns exec "$ns" nft add rule inet rct_tcp "$hook" "$@"
}

# tcp_nft_drop_rst NS PORT: NS's kernel RSTs from local PORT never leave, and are never seen
# (the crafted packets, marked $CT_MARK, pass).
tcp_nft_drop_rst() {
	tcp_nft "$1" output tcp sport "$2" tcp flags \& rst == rst meta mark != "$CT_MARK" drop
}

tcp_nft_flush() { # NS HOOK
	ip netns exec "$1" nft flush chain inet rct_tcp "$2"
}

# --- real connections -----------------------------------------------------------------

# shellcheck disable=SC2016
CT_TCP_PY='
import ipaddress, os, signal, socket, struct, sys, time

ALLOWED = (ipaddress.ip_network("10.77.0.0/24"), ipaddress.ip_network("fd77::/64"))

def addr(s):
    a = ipaddress.ip_address(s)
    if not any(a in n for n in ALLOWED):
        sys.exit("tcplib: refusing %s: only 10.77.0.0/24 and fd77::/64" % s)
    return a

def family(a):
    return socket.AF_INET6 if a.version == 6 else socket.AF_INET

role, mode, sync = sys.argv[1], sys.argv[2], sys.argv[3]
signal.signal(signal.SIGALRM, lambda *_: sys.exit("tcplib: %s %s: time limit reached" % (role, mode)))
LIMIT = int(sys.argv[4])
signal.alarm(LIMIT)

def touch(name):
    open(os.path.join(sync, name), "w").close()

def wait(name, limit=None):
    limit = limit or LIMIT
    end = time.monotonic() + limit
    while not os.path.exists(os.path.join(sync, name)):
        if time.monotonic() > end:
            sys.exit("tcplib: %s %s: no %s after %d s" % (role, mode, name, limit))
        time.sleep(0.02)

def recv_exact(c, n):
    data = b""
    while len(data) < n:
        d = c.recv(n - len(data))
        if not d:
            sys.exit("tcplib: %s %s: EOF after %d of %d bytes" % (role, mode, len(data), n))
        data += d
    return data

def recv_eof(c):
    d = c.recv(4096)
    if d:
        sys.exit("tcplib: %s %s: data %r instead of EOF" % (role, mode, d))

MSG = b"rct-tcp hello"

def server(bind, port, count):
    a = addr(bind)
    srv = socket.socket(family(a), socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((str(a), int(port)))
    srv.listen(16)
    touch("server-ready")
    for i in range(int(count)):
        c, _ = srv.accept()
        serve(c)
    srv.close()

def serve(c):
    if mode in ("fin-client", "many"):
        d = recv_exact(c, len(MSG))
        c.sendall(d)
        recv_eof(c)
        c.close()
    elif mode == "fin-server":
        recv_exact(c, len(MSG))
        c.sendall(b"bye")
        c.close()
    elif mode == "rst":
        c.sendall(recv_exact(c, len(MSG)))
        try:
            d = c.recv(100)
        except ConnectionResetError:
            return
        sys.exit("tcplib: server rst: %r instead of a reset" % d)
    elif mode == "halfclose-client":
        recv_exact(c, len(MSG))
        recv_eof(c)
        c.sendall(b"still talking after your FIN")
        touch("server-holding")
        wait("release")
        c.close()
    elif mode == "halfclose-server":
        recv_exact(c, len(MSG))
        c.sendall(b"bye")
        c.shutdown(socket.SHUT_WR)
        recv_exact(c, 30)
        touch("server-holding")
        wait("release")
        c.close()
    elif mode == "simclose":
        c.sendall(recv_exact(c, len(MSG)))
        touch("server-holding")
        wait("close")
        c.shutdown(socket.SHUT_WR)
        touch("server-shut")
        recv_eof(c)
        touch("server-eof")
        wait("release")
        c.close()
    elif mode == "sink":
        try:
            while c.recv(65536):
                pass
        except OSError:
            pass
    elif mode == "pickup":
        c.sendall(recv_exact(c, len(MSG)))
        recv_exact(c, 3)  # "two", the first packet after the pickup
        c.sendall(b"two")
        time.sleep(0.2)
        c.sendall(b"three")
        touch("server-holding")
        recv_eof(c)
        c.close()
    else:
        sys.exit("tcplib: unknown mode " + mode)

def client(dst, port, sport, count):
    a = addr(dst)
    for i in range(int(count)):
        c = socket.socket(family(a), socket.SOCK_STREAM)
        if int(sport):
            c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            c.bind(("::" if a.version == 6 else "0.0.0.0", int(sport)))
        if mode == "connect-only":
            c.settimeout(300)
            try:
                c.connect((str(a), int(port)))
            except (socket.timeout, OSError):
                return
            sys.exit("tcplib: connect-only: connected")
        c.connect((str(a), int(port)))
        talk(c)

def talk(c):
    if mode in ("fin-client", "many"):
        c.sendall(MSG)
        recv_exact(c, len(MSG))
        c.close()
    elif mode == "fin-server":
        c.sendall(MSG)
        recv_exact(c, 3)
        recv_eof(c)
        c.close()
    elif mode == "rst":
        c.sendall(MSG)
        recv_exact(c, len(MSG))
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
    elif mode == "halfclose-client":
        c.sendall(MSG)
        c.shutdown(socket.SHUT_WR)
        recv_exact(c, 28)
        touch("client-holding")
        wait("release")
        c.close()
    elif mode == "halfclose-server":
        c.sendall(MSG)
        recv_exact(c, 3)
        recv_eof(c)
        c.sendall(b"more data after your FIN (30) ")
        touch("client-holding")
        wait("release")
        c.close()
    elif mode == "simclose":
        c.sendall(MSG)
        recv_exact(c, len(MSG))
        touch("client-holding")
        wait("close")
        c.shutdown(socket.SHUT_WR)
        touch("client-shut")
        recv_eof(c)
        touch("client-eof")
        wait("release")
        c.close()
    elif mode == "pickup":
        c.sendall(MSG)
        recv_exact(c, len(MSG))
        touch("client-idle")
        wait("go")
        c.sendall(b"two")
        if recv_exact(c, 8) != b"twothree":
            sys.exit("tcplib: client pickup: wrong data")
        time.sleep(0.5)  # delayed ACKs go out before the tables are read
        touch("client-holding")
        wait("release")
        c.close()
    else:
        sys.exit("tcplib: unknown mode " + mode)

if role == "server":
    server(*sys.argv[5:])
else:
    client(*sys.argv[5:])
'

TCP_SYNC=
TCP_SRV_PID=
TCP_CLI_PID=

tcp_sync_touch() { : >"$TCP_SYNC/$1"; }

tcp_sync_wait() { # NAME [SECONDS=60]: non-zero if NAME did not appear in time
	local i n=$((${2:-60} * 20))
	for ((i = 0; i < n; i++)); do
		[ -e "$TCP_SYNC/$1" ] && return 0
		sleep 0.05
	done
	echo "# tcplib: no $1 after ${2:-60} s" >&2
	return 1
}

tcp_py() { # NS ARGS...
	local ns=$1
	shift
	ip netns exec "$ns" "$CT_PY_BIN" -c "$CT_TCP_PY" "$@"
}

# tcp_conn MODE DST PORT [SPORT=0] [COUNT=1] [LIMIT=120]
tcp_conn() {
	local mode=$1 dst=$2 port=$3 sport=${4:-0} count=${5:-1} limit=${6:-120} rc=0 bind=10.77.0.2
	case $dst in *:*) bind=fd77::2 ;; esac
	TCP_SYNC=$(mktemp -d /tmp/tcp-sync.XXXXXX)
	TCP_SRV_PID= TCP_CLI_PID=
	if [ "$mode" != connect-only ]; then
		tcp_py "$NS_B" server "$mode" "$TCP_SYNC" "$limit" "$bind" "$port" "$count" &
		TCP_SRV_PID=$!
		tcp_sync_wait server-ready 30 || { tcp_conn_kill; return 1; }
	fi
	tcp_py "$NS_A" client "$mode" "$TCP_SYNC" "$limit" "$dst" "$port" "$sport" "$count" &
	TCP_CLI_PID=$!
	case $mode in
	halfclose-* | simclose)
		tcp_sync_wait server-holding 60 && tcp_sync_wait client-holding 60 || rc=1
		;;
	pickup)
		tcp_sync_wait client-idle 60 || rc=1
		;;
	connect-only) ;;
	*)
		wait "$TCP_CLI_PID" || rc=1
		wait "$TCP_SRV_PID" || rc=1
		TCP_SRV_PID= TCP_CLI_PID=
		;;
	esac
	[ "$rc" = 0 ] || tcp_conn_kill
	return "$rc"
}

tcp_conn_release() {
	local rc=0
	[ -n "$TCP_SYNC" ] && tcp_sync_touch release
	if [ -n "$TCP_CLI_PID" ]; then wait "$TCP_CLI_PID" || rc=1; fi
	if [ -n "$TCP_SRV_PID" ]; then wait "$TCP_SRV_PID" || rc=1; fi
	TCP_SRV_PID= TCP_CLI_PID=
	return "$rc"
}

# tcp_sink_start DST PORT [COUNT=1] [LIMIT=120]: a sink server in B (no client).
tcp_sink_start() {
	local bind=$1
	TCP_SYNC=$(mktemp -d /tmp/tcp-sync.XXXXXX)
	TCP_CLI_PID=
	tcp_py "$NS_B" server sink "$TCP_SYNC" "${4:-120}" "$bind" "$2" "${3:-1}" &
	TCP_SRV_PID=$!
	tcp_sync_wait server-ready 30 || { tcp_conn_kill; return 1; }
}

tcp_sink_stop() { tcp_conn_kill; }

# tcp_conn_kill: ends the sides still running (the processes this library started).
tcp_conn_kill() {
	local p
	for p in $TCP_CLI_PID $TCP_SRV_PID; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	TCP_SRV_PID= TCP_CLI_PID=
	return 0
}

# tcp_simclose: both sides of a simclose connection shut down their sending side while
# each one's first FIN is dropped before the other's trackers (nft, prerouting); the drops
# are lifted once both have sent theirs, and the retransmitted FINs cross. FAMILY and PORT
# select the drop rules.
tcp_simclose() {
	local port=$1
	tcp_nft "$NS_A" prerouting tcp sport "$port" tcp flags \& fin == fin drop &&
		tcp_nft "$NS_B" prerouting tcp dport "$port" tcp flags \& fin == fin drop || return 1
	tcp_sync_touch close
	tcp_sync_wait client-shut 30 && tcp_sync_wait server-shut 30 || return 1
	tcp_nft_flush "$NS_A" prerouting && tcp_nft_flush "$NS_B" prerouting || return 1
	tcp_sync_wait client-eof 30 && tcp_sync_wait server-eof 30
}

# --- crafted packets ------------------------------------------------------------------

# shellcheck disable=SC2016
CT_CRAFT_PY='
import ctypes, ipaddress, logging, os, random, select, signal, socket, sys, time
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw

ALLOWED = (ipaddress.ip_network("10.77.0.0/24"), ipaddress.ip_network("fd77::/64"))
SO_MARK = 36
MARK = int(os.environ.get("CT_MARK", "0x77"), 0)
CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)

def addr(s):
    a = ipaddress.ip_address(s)
    if not any(a in n for n in ALLOWED):
        sys.exit("tcplib: refusing %s: only 10.77.0.0/24 and fd77::/64" % s)
    return str(a)

def say(*a):
    print(*a, flush=True)

def checkpoint(name, **info):
    say("@checkpoint %s %s" % (name, " ".join("%s=%s" % kv for kv in info.items())))
    line = sys.stdin.readline()
    if line.strip() != "go":
        sys.exit("tcplib: craft: stopped at %s" % name)

def in_netns(name, fn):
    here = os.open("/proc/self/ns/net", os.O_RDONLY)
    there = os.open("/run/netns/" + name, os.O_RDONLY)
    try:
        if libc.setns(there, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + name)
        return fn()
    finally:
        if libc.setns(here, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns back")
        os.close(here)
        os.close(there)

FLAGS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10}

class Side:
    """One end of a crafted connection: sends from its namespace, reads (A only) what the
    other end sends to it."""
    def __init__(self, ns, me, peer, port, peer_port, listen):
        self.me, self.peer, self.port, self.peer_port = addr(me), addr(peer), port, peer_port
        self.v6 = ":" in self.me
        fam = socket.AF_INET6 if self.v6 else socket.AF_INET
        def mk():
            tx = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_RAW)
            tx.setsockopt(socket.SOL_SOCKET, SO_MARK, MARK)
            rx = None
            if listen:
                rx = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_TCP)
                rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            return tx, rx
        self.tx, self.rx = in_netns(ns, mk)
        self.seen = []

    def send(self, flags, seq, ack=0, data=b"", win=64240, options=()):
        l3 = IPv6(src=self.me, dst=self.peer) if self.v6 else IP(src=self.me, dst=self.peer)
        t = TCP(sport=self.port, dport=self.peer_port, flags=flags, seq=seq % (1 << 32),
                ack=ack % (1 << 32), window=win, options=list(options))
        pkt = l3 / t / Raw(data) if data else l3 / t
        self.tx.sendto(bytes(pkt), (self.peer, 0))
        say("# %s:%d > %s:%d %s seq=%d ack=%d win=%d len=%d%s" % (
            self.me, self.port, self.peer, self.peer_port, flags, seq % (1 << 32),
            ack % (1 << 32), win, len(data), " " + repr(list(options)) if options else ""))

    def poll(self, timeout):
        """Segments from the peer to this side that arrive within timeout s."""
        out = []
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.rx], [], [], left)[0]:
                return out
            data, peer = self.rx.recvfrom(65535)
            if self.v6:
                if peer[0] != self.peer:
                    continue
                t = TCP(data)
            else:
                ip = IP(data)
                if ip.src != self.peer:
                    continue
                t = ip[TCP]
            if t.sport != self.peer_port or t.dport != self.port:
                continue
            say("# %s:%d < %s:%d %s seq=%d ack=%d win=%d len=%d" % (
                self.me, self.port, self.peer, self.peer_port, t.sprintf("%flags%"), t.seq,
                t.ack, t.window, len(bytes(t.payload))))
            self.seen.append(t)
            out.append(t)

    def expect(self, what, pred, timeout=10):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for t in self.poll(min(0.2, max(0.01, end - time.monotonic()))):
                if pred(t):
                    return t
        sys.exit("tcplib: craft: no %s within %d s" % (what, timeout))

def has(t, flags):
    return all(int(t.flags) & FLAGS[f] for f in flags)

def isn():
    return random.randrange(1 << 20, 1 << 31)

SYN_OPTS = [("MSS", 1460), ("SAckOK", b""), ("WScale", 7)]

def handshake(a, x):
    """A: SYN; B (kernel): SYN-ACK; returns B initial sequence number."""
    a.send("S", x, 0, options=SYN_OPTS)
    sa = a.expect("SYN-ACK", lambda t: has(t, "SA") and t.ack == (x + 1) % (1 << 32))
    return sa.seq

def sc_oow_rst(a, b):
    x = isn()
    y = handshake(a, x)
    a.send("A", x + 1, y + 1, win=502)
    a.send("PA", x + 1, y + 1, b"d" * 100, win=502)
    a.expect("ACK of the data", lambda t: t.ack == (x + 101) % (1 << 32))
    checkpoint("established")
    a.send("RA", x + 101 + (1 << 30), y + 1, win=502)
    silent = [t for t in a.poll(0.5)]
    checkpoint("rst", answers=len(silent))
    a.send("PA", x + 101, y + 1, b"e" * 100, win=502)
    a.expect("ACK of data sent after the RST", lambda t: t.ack == (x + 201) % (1 << 32))
    checkpoint("after")

def sc_rst_inexact(a, b):
    x = isn()
    y = handshake(a, x)
    a.send("A", x + 1, y + 1, win=502)
    a.send("PA", x + 1, y + 1, b"d" * 100, win=502)
    a.expect("ACK of the data", lambda t: t.ack == (x + 101) % (1 << 32))
    checkpoint("established")
    a.send("RA", x + 101 + 1000, y + 1, win=502)
    a.expect("challenge ACK", lambda t: has(t, "A") and not has(t, "R") and t.ack == (x + 101) % (1 << 32))
    time.sleep(0.2)
    checkpoint("rst")

def sc_syn(a, b):
    """One SYN (to reuse a TIME_WAIT tuple, or to a port whose answers are dropped)."""
    a.send("S", isn(), 0, options=SYN_OPTS)
    time.sleep(0.3)
    checkpoint("syn")

def sc_synack_retrans(a, b):
    x = isn()
    y = handshake(a, x)
    checkpoint("synack", t=time.time())
    a.expect("two SYN-ACK retransmissions", lambda t: has(t, "SA") and
             sum(1 for s in a.seen if has(s, "SA") and s.seq == y) >= 3, timeout=15)
    checkpoint("retrans", synacks=sum(1 for s in a.seen if has(s, "SA")), t=time.time())
    a.send("A", x + 1, y + 1, win=502)
    a.send("PA", x + 1, y + 1, b"d" * 100, win=502)
    a.expect("ACK of the data", lambda t: t.ack == (x + 101) % (1 << 32))
    checkpoint("established")

def sc_synrecv(a, b):
    """SYN, SYN-ACK, and nothing more from A: B retransmits its SYN-ACK."""
    x = isn()
    handshake(a, x)
    checkpoint("synack")

def sc_lost_ack(a, b):
    x = isn()
    y = handshake(a, x)
    # The handshake s last ACK is lost: the first data segment completes it.
    a.send("PA", x + 1, y + 1, b"d" * 100, win=502)
    a.expect("ACK of the data", lambda t: t.ack == (x + 101) % (1 << 32))
    time.sleep(0.2)
    checkpoint("data")
    a.send("A", x + 1, y + 1, win=502)  # the lost ACK, late
    a.expect("B s duplicate ACK", lambda t: has(t, "A") and t.ack == (x + 101) % (1 << 32))
    time.sleep(0.2)
    checkpoint("late-ack")

def sc_wscale(a, b):
    """Both sides crafted. B advertises window scale 7 and then a 4000 << 7 = 512000 byte
    window: A data 400000 bytes ahead is inside the scaled window only; data 1536000 bytes
    ahead is beyond it by more than the largest window (invalid)."""
    x, y = isn(), isn()
    a.send("S", x, 0, win=64240, options=SYN_OPTS)
    b.send("SA", y, x + 1, win=65535, options=[("MSS", 1460), ("WScale", 7)])
    a.send("A", x + 1, y + 1, win=502)
    a.send("PA", x + 1, y + 1, b"d" * 1000, win=502)
    b.send("A", y + 1, x + 1001, win=4000)
    time.sleep(0.2)
    checkpoint("established")
    a.send("PA", x + 1001 + 400000, y + 1, b"s" * 1000, win=502)
    time.sleep(0.2)
    checkpoint("in-scaled-window")
    a.send("PA", x + 1001 + 3 * 512000, y + 1, b"f" * 100, win=502)
    time.sleep(0.2)
    checkpoint("beyond-window")

SCENARIOS = {"oow-rst": sc_oow_rst, "rst-inexact": sc_rst_inexact, "syn": sc_syn,
             "synack-retrans": sc_synack_retrans, "synrecv": sc_synrecv,
             "lost-ack": sc_lost_ack, "wscale": sc_wscale}

def main():
    scenario, fam, sport, dport, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    signal.signal(signal.SIGALRM, lambda *_: sys.exit("tcplib: craft %s: time limit reached" % scenario))
    signal.alarm(limit)
    ha, hb = ("fd77::1", "fd77::2") if fam == "6" else ("10.77.0.1", "10.77.0.2")
    a = Side("rct-a", ha, hb, sport, dport, True)
    b = Side("rct-b", hb, ha, dport, sport, False)
    SCENARIOS[scenario](a, b)
    say("@end")

main()
'

CRAFT_P=

tcp_craft_start() { # SCENARIO FAMILY SPORT DPORT [LIMIT=120]
	coproc CRAFT { ip netns exec "$NS_A" env CT_MARK="$CT_MARK" "$CT_PY_BIN" -c "$CT_CRAFT_PY" "$1" "$2" "$3" "$4" "${5:-120}"; }
	CRAFT_P=$CRAFT_PID
	# Copies of the pipes: bash closes the coprocess's own ones when it ends.
	exec {CRAFT_IN}<&"${CRAFT[0]}" {CRAFT_OUT}>&"${CRAFT[1]}"
}

# tcp_craft_at NAME [SECONDS=60]: reads the scenario's output until checkpoint NAME; its
# "key=value" words land in CRAFT_INFO.
tcp_craft_at() {
	local line
	CRAFT_INFO=
	while read -r -t "${2:-60}" line <&"$CRAFT_IN"; do
		case $line in
		"@checkpoint $1"*)
			CRAFT_INFO=${line#"@checkpoint $1"}
			echo "# craft: at $1$CRAFT_INFO"
			return 0
			;;
		@*) echo "# craft: $line (waiting for $1)"; return 1 ;;
		*) echo "$line" ;;
		esac
	done
	echo "# craft: no checkpoint $1"
	return 1
}

tcp_craft_go() { echo go >&"$CRAFT_OUT"; }

tcp_craft_end() {
	local line rc=0
	if [ -n "${CRAFT_IN:-}" ]; then
		while read -r -t 30 line <&"$CRAFT_IN"; do
			case $line in @end) ;; *) echo "$line" ;; esac
		done
	fi
	tcp_craft_close
	if [ -n "$CRAFT_P" ]; then
		wait "$CRAFT_P" || rc=1
	fi
	CRAFT_P=
	return "$rc"
}

# tcp_craft_abort: ends a scenario left at a checkpoint.
tcp_craft_abort() {
	tcp_craft_close
	if [ -n "$CRAFT_P" ]; then
		kill "$CRAFT_P" 2>/dev/null
		wait "$CRAFT_P" 2>/dev/null
	fi
	CRAFT_P=
	return 0
}

tcp_craft_close() {
	if [ -n "${CRAFT_IN:-}" ]; then exec {CRAFT_IN}<&-; fi
	if [ -n "${CRAFT_OUT:-}" ]; then exec {CRAFT_OUT}>&-; fi
	CRAFT_IN= CRAFT_OUT=
}
