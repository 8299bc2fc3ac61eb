# Helpers for tests that run inside a VM (scripts/vm-run). Sourced.
# shellcheck shell=bash
# Each check prints "ok - NAME" or "not ok - NAME"; t_done writes the counts where the
# host-side runner (scripts/test) reads them.

T_PASS=0
T_FAIL=0
NS_A=rct-a
NS_B=rct-b

t_ok() {
	T_PASS=$((T_PASS + 1))
	echo "ok - $1"
}

t_fail() {
	T_FAIL=$((T_FAIL + 1))
	echo "not ok - $1${2:+: $2}"
}

# check NAME CMD...: passes when CMD exits 0.
check() {
	local name=$1
	shift
	if "$@"; then t_ok "$name"; else t_fail "$name"; fi
}

# check_eq NAME GOT WANT
check_eq() {
	if [ "$2" = "$3" ]; then t_ok "$1"; else t_fail "$1" "got '$2', want '$3'"; fi
}

# check_ge NAME GOT MIN
check_ge() {
	if [ "$2" -ge "$3" ] 2>/dev/null; then t_ok "$1"; else t_fail "$1" "got '$2', want >= $3"; fi
}

t_done() {
	# Suite-wide checks of the libraries, if any (difflib.sh: traffic on every CPU).
	if declare -F ct_cpu_check >/dev/null; then ct_cpu_check; fi
	echo "$T_PASS $T_FAIL" >"$RCT_OUT/vm-results-$1"
	echo "$1: $T_PASS passed, $T_FAIL failed"
}

# Loads the module (production: it runs no test).
load_module() {
	modprobe -a nf_defrag_ipv4 nf_defrag_ipv6 || return 1
	insmod "$RCT_KO"
}

# TAINT_TEST (bit 18, N): set by loading a module with KUnit suites.
TAINT_TEST=262144
taint_test_clear() { [ $(($(cat /proc/sys/kernel/tainted) & TAINT_TEST)) -eq 0 ]; }

# Loads and unloads the test module (rust_conntrack.ko must not be loaded): its KUnit
# suites run at load, after a marker the host uses to find their output in the kernel log.
run_kunit() {
	modprobe -a nf_defrag_ipv4 nf_defrag_ipv6 || return 1
	echo "rct-test: kunit $RCT_KO_TEST" >/dev/kmsg
	insmod "$RCT_KO_TEST" || return 1
	rmmod rust_conntrack_test
}

unload_module() {
	rmmod rust_conntrack
}

# Two namespaces joined by a veth pair, IPv4 and IPv6.
netns_pair() {
	ip netns add "$NS_A" && ip netns add "$NS_B" &&
		ip link add veth-a netns "$NS_A" type veth peer name veth-b netns "$NS_B" &&
		ip -n "$NS_A" addr add 10.77.0.1/24 dev veth-a &&
		ip -n "$NS_B" addr add 10.77.0.2/24 dev veth-b &&
		ip -n "$NS_A" addr add fd77::1/64 dev veth-a nodad &&
		ip -n "$NS_B" addr add fd77::2/64 dev veth-b nodad &&
		ip -n "$NS_A" link set lo up && ip -n "$NS_B" link set lo up &&
		ip -n "$NS_A" link set veth-a up && ip -n "$NS_B" link set veth-b up
}

netns_del() {
	ip netns del "$NS_A" 2>/dev/null
	ip netns del "$NS_B" 2>/dev/null
	true
}

# stat_sum NETNS FILE COLUMN: a /proc/net/stat column summed over CPUs, in decimal
# (NETNS "" is the initial netns).
stat_sum() {
	local ns=$1 file=$2 col=$3 idx=-1 i sum=0 header row
	{
		read -r -a header
		for i in "${!header[@]}"; do
			[ "${header[$i]}" = "$col" ] && idx=$i
		done
		[ "$idx" -ge 0 ] || { echo "no column $col" >&2; return 1; }
		while read -r -a row; do
			sum=$((sum + 16#${row[$idx]}))
		done
	} < <(if [ -n "$ns" ]; then ip netns exec "$ns" cat "/proc/net/stat/$file"; else cat "/proc/net/stat/$file"; fi)
	echo "$sum"
}

# A UDP datagram and a TCP connection with a little data, from A to B.
send_udp() {
	local dst=$1 port=$2
	ip netns exec "$NS_A" /usr/bin/python3 - "$dst" "$port" <<'PY'
import socket, sys
dst, port = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
for _ in range(3):
    s.sendto(b"rust_conntrack", (dst, port))
PY
}

tcp_exchange() {
	local dst=$1 port=$2
	ip netns exec "$NS_B" /usr/bin/python3 - "$dst" "$port" <<'PY' &
import socket, sys
dst, port = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
srv = socket.socket(fam, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((dst, port))
srv.listen(1)
srv.settimeout(10)
c, _ = srv.accept()
c.sendall(c.recv(100))
c.close()
PY
	local srv=$!
	ip netns exec "$NS_A" /usr/bin/python3 - "$dst" "$port" <<'PY'
import socket, sys, time
dst, port = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
for _ in range(50):
    try:
        c = socket.create_connection((dst, port), timeout=5)
        break
    except ConnectionRefusedError:
        time.sleep(0.1)
c.sendall(b"hello")
assert c.recv(100) == b"hello"
c.close()
PY
	local rc=$?
	wait "$srv" || rc=1
	return $rc
}
