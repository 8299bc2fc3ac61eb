# Differential testing of rust_conntrack against the kernel's nf_conntrack. Sourced (bash),
# inside a VM, after tests/vm/lib.sh (sourced here if it was not).
# shellcheck shell=bash
#
# Both trackers run side by side in the same namespaces and see the same packets, so after
# any traffic /proc/net/rust_conntrack must say what /proc/net/nf_conntrack says (6.12
# line format), up to the `use=N` refcount and a couple of seconds on the timeout column.
#
# Tables:
#   ct_dump NS FILE [FILTER] [TIMEOUTS]   normalised table of /proc/net/FILE in netns NS
#       (FILE: nf_conntrack, rust_conntrack, or an absolute path read as is, outside any
#       netns); lines sorted (LC_ALL=C), ` use=N` dropped, the timeout column (5th field)
#       replaced by the marker `T`, and `delta-time=N` (entries with a timestamp) by
#       `delta-time=D`; spacing otherwise kept as printed (the counters of entries with
#       accounting, `packets=N bytes=N`, stay: compared as they are). FILTER is an ERE
#       matched against the whole l4 name (3rd field): 'udp|icmp|icmpv6' keeps udp, icmp
#       and icmpv6 (not udplite); lines not shaped like "ipv4 2 udp 17 ..." are kept
#       whatever the filter. TIMEOUTS, if given, receives "SECONDS<TAB>LINE" for every
#       normalised LINE, followed by "<TAB>N" when the line had a delta-time=N.
#   ct_compare NS [FILTER]   nf_conntrack vs ours in NS: identical normalised tables,
#       every entry's seconds-left within +-$RCT_DIFF_TOLERANCE (2) of its twin and its
#       delta-time within +-$RCT_DIFF_DT_TOLERANCE (1) (ours is read second: its timeouts
#       may also be lower, its delta-times higher, by the whole seconds between the two
#       reads). On a mismatch prints a unified diff (at most $RCT_DIFF_MAX_LINES lines; the
#       full diff and both raw tables are kept in $RCT_OUT/differential/) and returns 1.
#   ct_count NS FILE ERE / ct_timeouts NS FILE ERE   how many normalised lines match ERE /
#       their timeouts, one a line (for checks on what the reference itself did).
# Environment:
#   RCT_DIFF_OURS   the table under test: rust_conntrack (default); nf_conntrack or an
#                   absolute path to self-test the harness only.
#   RCT_DIFF_FILTER default FILTER of ct_compare when a caller passes none (default: all).
#   CT_CASE         name of the current case, for the files kept on a mismatch.
#   RCT_DIFF_SMP    1: spread the traffic over every online CPU, and check that it was
#                   (for the SMP x86 VM; see "SMP" below). Ignored on a one-CPU guest.
#
# Namespaces: ct_fresh_netns deletes and recreates lib.sh's pair (rct-a 10.77.0.1/fd77::1
# <-> rct-b 10.77.0.2/fd77::2) and waits for both links to be up: new namespaces start with
# empty tables in both trackers (ours cannot be flushed).
#
# Traffic, always from A (rct-a) to B (rct-b); DST is 10.77.0.2 or fd77::2. Every
# generator is bounded in packets and time, and its Python refuses any address outside
# 10.77.0.0/24 and fd77::/64. Each returns non-zero if the traffic did not go as intended.
#   gen_udp_reqrep  DST [SPORT=40000] [DPORT=5300] [COUNT=3]  B echoes every datagram
#   gen_udp_oneway  DST [SPORT=40000] [DPORT=5301] [COUNT=3]  B reads, never replies
#   gen_udp_stream  DST [SPORT=40000] [DPORT=5302] [SECONDS=3] both ways every 0.1 s
#   gen_icmp_echo   DST [COUNT=3]                              ping
#   gen_udp_unreach DST [SPORT=40000] [DPORT=5399]             closed port: B answers with
#                   an ICMP(v6) port unreachable, which A must receive (ECONNREFUSED)
#   gen_generic     DST [PROTO=253] [COUNT=3] [REPLY=1]        raw IP protocol PROTO; B
#                   answers each packet when REPLY=1
#   gen_flows       DST [N=10000] [DPORT=5304] [SPORT_BASE=20000]  N UDP flows, one packet
#                   each from N source ports, one Python process, raw socket, non-blocking
#                   sends; B has a socket on DPORT that never reads (no ICMP errors)

if ! declare -F netns_pair >/dev/null; then
	# shellcheck source=tests/vm/lib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi

RCT_DIFF_TOLERANCE=${RCT_DIFF_TOLERANCE:-2}
RCT_DIFF_DT_TOLERANCE=${RCT_DIFF_DT_TOLERANCE:-1}
RCT_DIFF_MAX_LINES=${RCT_DIFF_MAX_LINES:-60}
CT_PY_BIN=/usr/bin/python3

# --- SMP: traffic on every CPU (RCT_DIFF_SMP=1) ----------------------------------------
#
# rust_conntrack hands a new entry from its tracking hook to its confirm hook through
# per-CPU lists; a one-CPU guest never has two CPUs at work at once. With RCT_DIFF_SMP=1 on
# a guest with several online CPUs:
#  - every traffic process (CT_PY_BIN: the Python roles of difflib, tcplib and natlib) is
#    placed in turn on CPU 0, CPU 1, ..., then on all CPUs (left to the scheduler, which
#    may move it between two hooks). A packet a process sends is tracked at LOCAL_OUT and
#    POST_ROUTING on its CPU, and, veth passing it on to the CPU's own backlog, at
#    PRE_ROUTING, forwarding and LOCAL_IN of the other namespaces on that CPU too: with a
#    client and its server on different CPUs, requests and replies are tracked on two
#    CPUs at once;
#  - on a kernel with RPS (CONFIG_RPS, /proc/sys/net/core/rps_default_mask), every
#    namespace created with `ip netns add` (an `ip` function below) also gets
#    net.core.rps_default_mask = all online CPUs, so every veth made in it afterwards
#    (lib.sh's pair, natlib.sh's router) spreads what it receives over the CPUs by flow
#    hash: the receiving side then runs on another CPU than the sender for about half the
#    flows, even for one process's flows;
#  - case_end adds up, per CPU, rust_conntrack's hook columns (in_pre_routing,
#    in_local_out, confirm_post_routing, confirm_local_in of /proc/net/stat/rust_conntrack)
#    over the case's namespaces and prints them ("# smp: ..."); t_done (lib.sh) then checks
#    that every online CPU tracked packets at PRE_ROUTING and at LOCAL_OUT and confirmed
#    entries (ct_cpu_check).
CT_SMP=
CT_CPU_LIST=()
if [ "${RCT_DIFF_SMP:-}" = 1 ]; then
	# The online CPUs ("0-1", "0,2-3"), one number a line.
	mapfile -t CT_CPU_LIST < <(tr ',' '\n' </sys/devices/system/cpu/online |
		awk -F- '{ for (i = $1; i <= ($2 == "" ? $1 : $2); i++) print i }')
	if [ "${#CT_CPU_LIST[@]}" -ge 2 ]; then
		CT_SMP=1
	else
		echo "# smp: RCT_DIFF_SMP=1 on a guest with ${#CT_CPU_LIST[@]} online CPU: ignored"
	fi
fi
if [ -n "$CT_SMP" ]; then
	CT_RPS_MASK=
	if [ -e /proc/sys/net/core/rps_default_mask ]; then
		CT_RPS_MASK=$(printf '%x' "$(($(printf '(1 << %s) | ' "${CT_CPU_LIST[@]}") 0))")
		# ip netns add NAME: NAME's devices will spread their receive work over every CPU.
		ip() {
			command ip "$@" || return
			if [ "${1:-}" = netns ] && [ "${2:-}" = add ] && [ $# -eq 3 ]; then
				command ip netns exec "$3" sysctl -qw net.core.rps_default_mask="$CT_RPS_MASK" ||
					echo "# smp: cannot set net.core.rps_default_mask in $3" >&2
			fi
			return 0
		}
	fi
	# Where each new traffic process goes, in turn: one CPU each, then all of them.
	CT_PY_BIN=$(mktemp /tmp/ct-py-smp.XXXXXX)
	{
		echo '#!/bin/bash'
		printf 'places=(%s %s)\n' "${CT_CPU_LIST[*]}" "$(IFS=,; echo "${CT_CPU_LIST[*]}")"
		printf 'next=%q\n' "$CT_PY_BIN.next"
		# shellcheck disable=SC2016
		echo 'n=$(cat "$next" 2>/dev/null || echo 0)
echo $(((n + 1) % ${#places[@]})) >"$next"
exec taskset -c "${places[n % ${#places[@]}]}" /usr/bin/python3 "$@"'
	} >"$CT_PY_BIN"
	chmod +x "$CT_PY_BIN"
	if [ -n "$CT_RPS_MASK" ]; then CT_RPS_NOTE="RPS mask $CT_RPS_MASK on every veth"; else
		CT_RPS_NOTE="no RPS in this kernel: receive work stays on the CPU of the sender"
	fi
	echo "# smp: traffic processes on CPU ${CT_CPU_LIST[*]} and all, in turn; $CT_RPS_NOTE"
fi
declare -A CT_CPU_SUM
CT_CPU_COLS="in_pre_routing in_local_out confirm_post_routing confirm_local_in"

# ct_cpu_tally: adds rust_conntrack's per-CPU hook columns in every named namespace to
# CT_CPU_SUM[COLUMN.CPU] and prints the case's counts.
ct_cpu_tally() {
	local ns i cpu col line=
	local -a header row
	local -A idx now
	for ns in $(command ip netns list | awk '{ print $1 }'); do
		{
			read -r -a header || continue
			idx=()
			for i in "${!header[@]}"; do idx[${header[$i]}]=$i; done
			cpu=0
			while read -r -a row; do
				for col in $CT_CPU_COLS; do
					[ -n "${idx[$col]:-}" ] || continue
					now[$col.$cpu]=$((${now[$col.$cpu]:-0} + 16#${row[${idx[$col]}]}))
				done
				cpu=$((cpu + 1))
			done
		} < <(command ip netns exec "$ns" cat /proc/net/stat/rust_conntrack 2>/dev/null)
	done
	for cpu in "${CT_CPU_LIST[@]}"; do
		line="$line; cpu$cpu"
		for col in $CT_CPU_COLS; do
			CT_CPU_SUM[$col.$cpu]=$((${CT_CPU_SUM[$col.$cpu]:-0} + ${now[$col.$cpu]:-0}))
			line="$line ${now[$col.$cpu]:-0}"
		done
	done
	echo "# smp: $CT_CASE: per CPU, $CT_CPU_COLS$line"
}

# ct_cpu_check: every online CPU carried the suite's traffic (t_done calls it).
ct_cpu_check() {
	local cpu col
	[ -n "$CT_SMP" ] && [ "${OURS:-rust_conntrack}" = rust_conntrack ] || return 0
	for cpu in "${CT_CPU_LIST[@]}"; do
		echo "# smp: suite total, cpu$cpu:$(for col in $CT_CPU_COLS; do printf ' %s %s' "$col" "${CT_CPU_SUM[$col.$cpu]:-0}"; done)"
	done
	for cpu in "${CT_CPU_LIST[@]}"; do
		for col in in_pre_routing in_local_out; do
			check_ge "smp: cpu$cpu: packets tracked at ${col#in_}" "${CT_CPU_SUM[$col.$cpu]:-0}" 1
		done
		check_ge "smp: cpu$cpu: entries confirmed" \
			"$((${CT_CPU_SUM[confirm_post_routing.$cpu]:-0} + ${CT_CPU_SUM[confirm_local_in.$cpu]:-0}))" 1
	done
}

# --- tables ---------------------------------------------------------------------------

# ct_raw NS FILE: the table as printed (FILE absolute: that file, read outside any netns).
ct_raw() {
	local ns=$1 file=$2
	case $file in
	/*) cat "$file" ;;
	*) timeout 60 ip netns exec "$ns" cat "/proc/net/$file" ;;
	esac
}

# ct_normalise [FILTER] [TIMEOUTS] <RAW: see ct_dump.
ct_normalise() {
	local filter=${1:-} tfile=${2:-}
	[ -z "$tfile" ] || : >"$tfile"
	awk -v filter="$filter" -v tfile="$tfile" '
	{
		# Lines not in the expected shape are always kept: the filter cannot hide them.
		if (filter != "" && $0 ~ /^ipv[46] +[0-9]+ +[^ ]+ +[0-9]+ / && $3 !~ ("^(" filter ")$")) next
		line = $0; t = "?"
		# "%-8s %u %-8s %u %ld ": the timeout follows the first four fields.
		if (match(line, /^[^ ]+ +[^ ]+ +[^ ]+ +[^ ]+ /)) {
			head = substr(line, 1, RLENGTH); rest = substr(line, RLENGTH + 1)
			if (match(rest, /^-?[0-9]+ /)) {
				t = substr(rest, 1, RLENGTH - 1)
				rest = "T " substr(rest, RLENGTH + 1)
			}
			line = head rest
		}
		sub(/ use=[0-9]+$/, "", line)
		# The age of an entry with a timestamp (6.12 ct_show_delta_time), compared apart.
		dt = ""
		if (match(line, / delta-time=[0-9]+/)) {
			dt = substr(line, RSTART + 12, RLENGTH - 12)
			line = substr(line, 1, RSTART - 1) " delta-time=D" substr(line, RSTART + RLENGTH)
		}
		print line
		if (tfile != "") print t "\t" line (dt != "" ? "\t" dt : "") > tfile
	}' | LC_ALL=C sort
}

ct_dump() {
	local ns=$1 file=$2 filter=${3:-} tfile=${4:-} raw
	raw=$(ct_raw "$ns" "$file") || return 1
	if [ -n "$raw" ]; then printf '%s\n' "$raw"; fi | ct_normalise "$filter" "$tfile"
}

ct_count() {
	local n
	n=$(ct_dump "$1" "$2" | grep -cE -- "$3")
	echo "${n:-0}"
}

ct_timeouts() {
	local tf
	tf=$(mktemp /tmp/ct-timeouts.XXXXXX)
	ct_dump "$1" "$2" "" "$tf" >/dev/null
	awk -F'\t' -v re="$3" '$2 ~ re { print $1 }' "$tf"
	rm -f "$tf"
}

# ct_compare_raw REF_RAW OURS_RAW FILTER REF_LABEL OURS_LABEL KEEP_PREFIX [LAG]: the
# comparison of two captured tables; see ct_compare. LAG (whole seconds, default 0): ours
# was read that much later than the reference, so its timeouts may also be up to LAG s
# lower.
ct_compare_raw() {
	local ref_raw=$1 ours_raw=$2 filter=$3 ref_label=$4 ours_label=$5 keep=$6 lag=${7:-0}
	local d rc=0 nref nours n
	d=$(mktemp -d /tmp/ct-compare.XXXXXX)
	ct_normalise "$filter" "$d/ref.t" <"$ref_raw" >"$d/ref"
	ct_normalise "$filter" "$d/ours.t" <"$ours_raw" >"$d/ours"
	nref=$(wc -l <"$d/ref")
	nours=$(wc -l <"$d/ours")
	diff -u --label "$ref_label" --label "$ours_label" "$d/ref" "$d/ours" >"$d/diff" || rc=1
	# Timeouts, entry by entry (entries present in both tables; the others are in the diff).
	awk -F'\t' -v tol="$RCT_DIFF_TOLERANCE" -v lag="$lag" -v a="$ref_label" -v b="$ours_label" '
		NR == FNR { ref[$2] = $1; next }
		($2 in ref) {
			r = ref[$2]; o = $1; d = r - o
			if (r !~ /^-?[0-9]+$/ || o !~ /^-?[0-9]+$/ || d > tol + lag || d < -tol)
				printf "timeout %s s (%s) vs %s s (%s): %s\n", r, a, o, b, $2
		}' "$d/ref.t" "$d/ours.t" >"$d/timeouts"
	# Ages (delta-time, whole seconds since the entry was confirmed): ours read LAG s later,
	# so up to LAG s older.
	awk -F'\t' -v tol="$RCT_DIFF_DT_TOLERANCE" -v lag="$lag" -v a="$ref_label" -v b="$ours_label" '
		NR == FNR { if ($3 != "") ref[$2] = $3; next }
		($2 in ref) {
			r = ref[$2]; o = $3; d = o - r
			if (o !~ /^[0-9]+$/ || d > tol + lag || d < -tol)
				printf "delta-time %s s (%s) vs %s s (%s): %s\n", r, a, o, b, $2
		}' "$d/ref.t" "$d/ours.t" >"$d/ages"
	[ -s "$d/timeouts" ] && rc=1
	[ -s "$d/ages" ] && rc=1
	if [ "$rc" -ne 0 ]; then
		echo "# tables differ: $ref_label $nref entries, $ours_label $nours${filter:+ (l4 filter: $filter)}"
		if [ -s "$d/diff" ]; then
			n=$(wc -l <"$d/diff")
			head -n "$RCT_DIFF_MAX_LINES" "$d/diff" | sed 's/^/# /'
			[ "$n" -le "$RCT_DIFF_MAX_LINES" ] || echo "# ... $((n - RCT_DIFF_MAX_LINES)) more diff lines"
		fi
		if [ -s "$d/timeouts" ]; then
			n=$(wc -l <"$d/timeouts")
			if [ "$lag" -gt 0 ]; then
				echo "# $n entries whose timeouts differ by more than $RCT_DIFF_TOLERANCE s" \
					"(or $((RCT_DIFF_TOLERANCE + lag)) s lower in ours, read $lag s later):"
			else
				echo "# $n entries whose timeouts differ by more than $RCT_DIFF_TOLERANCE s:"
			fi
			head -n 10 "$d/timeouts" | sed 's/^/# /'
		fi
		if [ -s "$d/ages" ]; then
			n=$(wc -l <"$d/ages")
			if [ "$lag" -gt 0 ]; then
				echo "# $n entries whose delta-time differs by more than $RCT_DIFF_DT_TOLERANCE s" \
					"(or $((RCT_DIFF_DT_TOLERANCE + lag)) s more in ours, read $lag s later):"
			else
				echo "# $n entries whose delta-time differs by more than $RCT_DIFF_DT_TOLERANCE s:"
			fi
			head -n 10 "$d/ages" | sed 's/^/# /'
		fi
		if [ -n "$keep" ]; then
			mkdir -p "$(dirname "$keep")"
			cp "$d/diff" "$keep.diff"
			cat "$d/timeouts" "$d/ages" >>"$keep.diff"
			cp "$ref_raw" "$keep.ref"
			cp "$ours_raw" "$keep.ours"
			echo "# kept: $keep.{diff,ref,ours}"
		fi
	fi
	rm -rf "$d"
	return "$rc"
}

# ct_compare NS [FILTER]: both tables read back to back, then compared.
ct_compare() {
	local ns=$1 filter=${2-${RCT_DIFF_FILTER:-}}
	local ref=nf_conntrack ours=${RCT_DIFF_OURS:-rust_conntrack} d rc=0 keep t0 lag
	d=$(mktemp -d /tmp/ct-raw.XXXXXX)
	t0=$(date +%s.%N)
	if ! ct_raw "$ns" "$ref" >"$d/ref" 2>"$d/err" || ! ct_raw "$ns" "$ours" >"$d/ours" 2>>"$d/err"; then
		echo "# ct_compare $ns: cannot read the tables: $(tr '\n' ' ' <"$d/err")"
		rm -rf "$d"
		return 1
	fi
	keep=${CT_CASE:-compare}-$ns
	keep=${RCT_OUT:-/tmp}/differential/${keep//[^A-Za-z0-9._-]/_}
	# Whole seconds between the start of the first read and the end of the second: a
	# big table read slowly (TCG) ages that much in between (nothing on a fast guest).
	lag=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%d", b - a }')
	ct_compare_raw "$d/ref" "$d/ours" "$filter" "$ref ($ns)" "$ours ($ns)" "$keep" "$lag" || rc=1
	rm -rf "$d"
	return "$rc"
}

# --- namespaces -----------------------------------------------------------------------

ct_links_up() {
	local i
	for i in $(seq 100); do
		if ip -n "$NS_A" -o link show veth-a 2>/dev/null | grep -q 'state UP' &&
			ip -n "$NS_B" -o link show veth-b 2>/dev/null | grep -q 'state UP'; then
			return 0
		fi
		sleep 0.05
	done
	echo "# veth pair not up after 5 s" >&2
	return 1
}

ct_fresh_netns() {
	netns_del
	netns_pair && ct_links_up
}

# --- traffic --------------------------------------------------------------------------

# One Python program for every role; argv[1] is the role. Each role is bounded by a count
# and by a deadline (SIGALRM), and checks every address it is given.
# shellcheck disable=SC2016
CT_PY='
import errno, ipaddress, os, select, signal, socket, struct, sys, time

ALLOWED = (ipaddress.ip_network("10.77.0.0/24"), ipaddress.ip_network("fd77::/64"))

def addr(s):
    a = ipaddress.ip_address(s)
    if not any(a in n for n in ALLOWED):
        sys.exit("difflib: refusing %s: only 10.77.0.0/24 and fd77::/64" % s)
    return a

def family(a):
    return socket.AF_INET6 if a.version == 6 else socket.AF_INET

def deadline(seconds):
    signal.signal(signal.SIGALRM, lambda *_: sys.exit("difflib: %s: time limit reached" % sys.argv[1]))
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

def udp_client(dst, dport, sport, count, expect_reply):
    a = addr(dst)
    deadline(30)
    s = socket.socket(family(a), socket.SOCK_DGRAM)
    s.bind(("::" if a.version == 6 else "0.0.0.0", int(sport)))
    s.settimeout(3)
    for i in range(int(count)):
        s.sendto(b"rct-diff %d" % i, (str(a), int(dport)))
        if expect_reply == "1":
            data, _ = s.recvfrom(2048)
            assert data == b"rct-diff %d" % i, data

def udp_stream(dst, dport, sport, seconds):
    a = addr(dst)
    deadline(float(seconds) + 30)
    s = socket.socket(family(a), socket.SOCK_DGRAM)
    s.bind(("::" if a.version == 6 else "0.0.0.0", int(sport)))
    s.settimeout(3)
    start = time.monotonic()
    for i in range(int(float(seconds) * 10) + 1):
        s.sendto(b"rct-diff stream %d" % i, (str(a), int(dport)))
        s.recvfrom(2048)
        if time.monotonic() - start > float(seconds):
            break
        time.sleep(0.1)
    else:
        sys.exit("difflib: udp-stream: ran out of packets before %s s" % seconds)

def udp_unreach(dst, dport, sport):
    a = addr(dst)
    deadline(30)
    s = socket.socket(family(a), socket.SOCK_DGRAM)
    s.bind(("::" if a.version == 6 else "0.0.0.0", int(sport)))
    s.connect((str(a), int(dport)))
    s.settimeout(3)
    s.send(b"rct-diff unreach")
    try:
        s.recv(2048)
    except ConnectionRefusedError:
        return
    sys.exit("difflib: udp-unreach: a reply instead of a port unreachable")

def raw_server(bind, proto, count, limit, ready_path):
    a = addr(bind)
    deadline(limit)
    s = socket.socket(family(a), socket.SOCK_RAW, int(proto))
    s.bind((str(a), 0))
    ready(ready_path)
    for _ in range(int(count)):
        data, peer = s.recvfrom(2048)
        if a.version == 4:
            data = data[(data[0] & 15) * 4:]
        s.sendto(data, (str(addr(peer[0])), 0))

def raw_client(dst, proto, count, expect_reply, head=""):
    a = addr(dst)
    deadline(30)
    s = socket.socket(family(a), socket.SOCK_RAW, int(proto))
    s.settimeout(3)
    for i in range(int(count)):
        s.sendto(bytes.fromhex(head) + b"rct-diff raw %d" % i, (str(a), 0))
        if expect_reply == "1":
            while True:
                data, peer = s.recvfrom(2048)
                if addr(peer[0]) == a:
                    break

def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

def flows(src, dst, dport, sport_base, n):
    """n UDP datagrams from n source ports: one raw socket, checksums computed here (v4)
    or by the kernel (v6, IPV6_CHECKSUM), non-blocking sends retried on EAGAIN/ENOBUFS."""
    a, b = addr(src), addr(dst)
    n, dport, sport_base = int(n), int(dport), int(sport_base)
    if not (0 < n and sport_base + n <= 65536):
        sys.exit("difflib: flows: bad source port range")
    deadline(120)
    s = socket.socket(family(b), socket.SOCK_RAW, socket.IPPROTO_UDP)
    if b.version == 6:
        s.setsockopt(socket.IPPROTO_IPV6, 7, 6)  # IPV6_CHECKSUM at offset 6
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
    s.setblocking(False)
    payload = b"rct-diff flow"
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
                    sys.exit("difflib: flows: the socket stays full")
                select.select([], [s], [], 0.01)
        if i == 0:
            time.sleep(0.2)  # the neighbour is resolved before the burst, no queue drops
    if retries:
        print("# flows: %d sends retried" % retries, file=sys.stderr)

def stream_socket(a, proto):
    """A connection socket of SCTP (one-to-one) or DCCP (service code 42, as both ends must
    agree on one)."""
    if proto == "sctp":
        return socket.socket(family(a), socket.SOCK_STREAM, socket.IPPROTO_SCTP)
    s = socket.socket(family(a), 6, 33)  # SOCK_DCCP, IPPROTO_DCCP (Python may lack the names)
    s.setsockopt(269, 2, struct.pack("!I", 42))  # SOL_DCCP, DCCP_SOCKOPT_SERVICE
    return s

def stream_server(bind, port, proto, count, close, limit, ready_path):
    """Accepts one connection and echoes count messages; then closes first (close is
    "server") or waits for the client to close or abort."""
    a = addr(bind)
    deadline(limit)
    s = stream_socket(a, proto)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((str(a), int(port)))
    s.listen(1)
    ready(ready_path)
    c, _ = s.accept()
    for _ in range(int(count)):
        data = c.recv(2048)
        if not data:
            break
        c.send(data)
    if close == "server":
        time.sleep(0.2)
        c.close()
        return
    try:
        while c.recv(2048):
            pass
    except OSError:
        pass
    c.close()

def stream_client(dst, port, proto, count, close, idle):
    """Connects, sends count messages and reads their echoes, stays idle seconds (SCTP
    heartbeats meanwhile), then closes (close "client"), waits for the server to close
    ("server"), or aborts (SCTP ABORT, DCCP RESET: "abort")."""
    a = addr(dst)
    deadline(30)
    s = stream_socket(a, proto)
    s.settimeout(5)
    s.connect((str(a), int(port)))
    for i in range(int(count)):
        s.send(b"rct-diff %s %d" % (proto.encode(), i))
        if not s.recv(2048):
            sys.exit("difflib: %s: no echo" % proto)
    time.sleep(float(idle))
    if close == "server":
        try:
            while s.recv(2048):
                pass
        except OSError:
            pass
    elif close == "abort":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    time.sleep(0.5)  # the closing exchange ends before the tables are read

roles = {"udp-server": udp_server, "udp-client": udp_client, "udp-stream": udp_stream,
         "udp-unreach": udp_unreach, "raw-server": raw_server, "raw-client": raw_client,
         "flows": flows, "stream-server": stream_server, "stream-client": stream_client}
roles[sys.argv[1]](*sys.argv[2:])
'

ct_py() { # NS ROLE ARGS...
	local ns=$1
	shift
	ip netns exec "$ns" "$CT_PY_BIN" -c "$CT_PY" "$@"
}

# ct_server ROLE ARGS...: starts a server role in B, with a ready file as last argument;
# waits until it is ready. Sets CT_SERVER_PID.
ct_server() {
	local ready i
	ready=$(mktemp -u /tmp/ct-ready.XXXXXX)
	ct_py "$NS_B" "$@" "$ready" &
	CT_SERVER_PID=$!
	for i in $(seq 200); do
		[ -e "$ready" ] && { rm -f "$ready"; return 0; }
		kill -0 "$CT_SERVER_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "# server $1 in $NS_B did not start" >&2
	kill "$CT_SERVER_PID" 2>/dev/null
	wait "$CT_SERVER_PID" 2>/dev/null
	return 1
}

# ct_client_then_server CLIENT_ARGS...: runs a client role in A, then waits for the server.
ct_client_then_server() {
	local rc=0
	ct_py "$NS_A" "$@" || rc=1
	wait "$CT_SERVER_PID" || rc=1
	return "$rc"
}

gen_udp_reqrep() {
	local dst=$1 sport=${2:-40000} dport=${3:-5300} count=${4:-3}
	ct_server udp-server "$dst" "$dport" echo "$count" 30 || return 1
	ct_client_then_server udp-client "$dst" "$dport" "$sport" "$count" 1
}

gen_udp_oneway() {
	local dst=$1 sport=${2:-40000} dport=${3:-5301} count=${4:-3}
	ct_server udp-server "$dst" "$dport" sink "$count" 30 || return 1
	ct_client_then_server udp-client "$dst" "$dport" "$sport" "$count" 0
}

gen_udp_stream() {
	local dst=$1 sport=${2:-40000} dport=${3:-5302} seconds=${4:-3}
	ct_server udp-server "$dst" "$dport" echo $((seconds * 10 + 10)) $((seconds + 30)) || return 1
	ct_client_then_server udp-stream "$dst" "$dport" "$sport" "$seconds"
}

gen_icmp_echo() {
	local dst=$1 count=${2:-3}
	case $dst in 10.77.0.* | fd77::*) ;; *) echo "# refusing $dst" >&2; return 1 ;; esac
	ip netns exec "$NS_A" ping -q -c "$count" -i 0.2 -W 2 -w $((count + 5)) "$dst" >/dev/null
}

gen_udp_unreach() {
	local dst=$1 sport=${2:-40000} dport=${3:-5399}
	ct_py "$NS_A" udp-unreach "$dst" "$dport" "$sport"
}

# gen_generic DST [PROTO] [COUNT] [REPLY] [HEAD]: COUNT datagrams of IP protocol PROTO from
# A, each starting with the bytes HEAD (hex; a GRE header, say), echoed back by B if REPLY.
gen_generic() {
	local dst=$1 proto=${2:-253} count=${3:-3} reply=${4:-1} head=${5:-}
	if [ "$reply" = 1 ]; then
		ct_server raw-server "$dst" "$proto" "$count" 30 || return 1
		ct_client_then_server raw-client "$dst" "$proto" "$count" 1 "$head"
	else
		ct_py "$NS_A" raw-client "$dst" "$proto" "$count" 0 "$head"
	fi
}

# gen_stream DST PROTO [COUNT] [CLOSE] [IDLE] [PORT]: an SCTP or DCCP connection from A to B,
# COUNT messages echoed, IDLE seconds without data, then closed by CLOSE (client, server or
# abort; see the Python roles).
gen_stream() {
	local dst=$1 proto=$2 count=${3:-3} close=${4:-client} idle=${5:-0} port=${6:-5400}
	ct_server stream-server "$dst" "$port" "$proto" "$count" "$close" 30 || return 1
	ct_client_then_server stream-client "$dst" "$port" "$proto" "$count" "$close" "$idle"
}

gen_flows() {
	local dst=$1 n=${2:-10000} dport=${3:-5304} base=${4:-20000} src
	case $dst in *:*) src=fd77::1 ;; *) src=10.77.0.1 ;; esac
	# B's socket only keeps the port open (no port unreachable errors): it drains what it
	# can and ends 1 s after the burst (datagrams it has no room for are dropped silently).
	ct_server udp-server "$dst" "$dport" sink "$n" $((n / 100 + 60)) || return 1
	ct_client_then_server flows "$src" "$dst" "$dport" "$base" "$n"
}

# --- cases ----------------------------------------------------------------------------

# run_case NAME: true when NAME is selected (RCT_DIFF_CASES, an ERE); then gives it fresh
# namespaces.
run_case() {
	CT_CASE=$1
	if [ -n "${RCT_DIFF_CASES:-}" ] && ! grep -qE -- "$RCT_DIFF_CASES" <<<"$1"; then
		return 1
	fi
	echo "# --- case $1"
	CASE_T0=$(date +%s.%N)
	if ! ct_fresh_netns; then
		t_fail "$1: fresh namespaces"
		return 1
	fi
	CASE_FAIL0=$T_FAIL
}

case_end() {
	local verdict=ok
	[ "$T_FAIL" -eq "$CASE_FAIL0" ] || verdict="FAILED ($((T_FAIL - CASE_FAIL0)) checks)"
	[ -z "$CT_SMP" ] || [ "${OURS:-rust_conntrack}" != rust_conntrack ] || ct_cpu_tally
	echo "# case $CT_CASE: $verdict, $(awk -v a="$CASE_T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
	CASE_SUMMARY+=("$CT_CASE: $verdict")
}
CASE_SUMMARY=()

# compare_both [FILTER] [WHEN]: ours vs nf_conntrack in both namespaces.
compare_both() {
	local ns
	for ns in "$NS_A" "$NS_B"; do
		CT_CASE="$CT_CASE${2:+ $2}" check "$CT_CASE:${2:+ $2:} $ns: $OURS = nf_conntrack${1:+ ($1)}" ct_compare "$ns" "${1:-}"
	done
}

traffic() {
	TRAFFIC_T0=$(date +%s.%N)
	check "$CT_CASE: traffic" "$@"
}

# ref_expect WHAT COUNT ERE [TIMEOUT] [AGE_FROM]: in both namespaces, nf_conntrack holds
# COUNT entries matching ERE; their seconds-left fit an entry of TIMEOUT s last refreshed
# after AGE_FROM (a date +%s.%N, default the start of the case's traffic): between
# TIMEOUT - (seconds since AGE_FROM) - 1 and TIMEOUT.
# One read of each table: the count and the timeouts come from the same dump.
ref_expect() {
	local what=$1 count=$2 re=$3 timeout=${4:-} from=${5:-$TRAFFIC_T0} ns t bad tmin tf n
	tf=$(mktemp /tmp/ct-ref.XXXXXX)
	for ns in "$NS_A" "$NS_B"; do
		if ct_dump "$ns" nf_conntrack "" "$tf" >/dev/null; then
			n=$(RE=$re awk -F'\t' '$2 ~ ENVIRON["RE"] { n++ } END { print n + 0 }' "$tf")
		else
			n="unreadable table"
		fi
		check_eq "$CT_CASE: reference: $ns: $what" "$n" "$count"
		# REF_TOTAL: also how many entries the same read holds in all, for entries too
		# short-lived (TCP CLOSE, 10 s) to read the table twice under a slow VM.
		if [ -n "${REF_TOTAL:-}" ]; then
			check_eq "$CT_CASE: reference: $ns: nothing else" "$(wc -l <"$tf")" "$REF_TOTAL"
		fi
		[ -n "$timeout" ] || continue
		tmin=$(awk -v t="$timeout" -v a="$from" -v b="$(date +%s.%N)" \
			'BEGIN { e = b - a; e = (e == int(e)) ? e : int(e) + 1; print t - e - 1 }')
		bad=
		for t in $(RE=$re awk -F'\t' '$2 ~ ENVIRON["RE"] { print $1 }' "$tf"); do
			[ "$t" -ge "$tmin" ] && [ "$t" -le "$timeout" ] || bad="$bad $t"
		done
		if [ -z "$bad" ]; then
			t_ok "$CT_CASE: reference: $ns: timeout of a $timeout s entry"
		else
			t_fail "$CT_CASE: reference: $ns: timeout of a $timeout s entry" "got$bad, want $tmin..$timeout"
		fi
	done
	rm -f "$tf"
}

# ref_timeout_max WHAT ERE MAX: nf_conntrack's entries matching ERE (in both namespaces)
# have at most MAX seconds left (an entry that must not have been refreshed).
ref_timeout_max() {
	local what=$1 re=$2 max=$3 ns t bad
	for ns in "$NS_A" "$NS_B"; do
		bad=
		for t in $(ct_timeouts "$ns" nf_conntrack "$re"); do
			[ "$t" -le "$max" ] || bad="$bad $t"
		done
		if [ -z "$bad" ]; then t_ok "$CT_CASE: reference: $ns: $what"; else
			t_fail "$CT_CASE: reference: $ns: $what" "got$bad s left, want <= $max"
		fi
	done
}

# --- expiry steps (differential-expiry.sh, differential-tcp-expiry.sh) ----------------

now() { date +%s.%N; }

# entry NAME TIMEOUT ERE GENERATOR...: runs the generator; the entry matching ERE was last
# refreshed between the times before and after it (E_HI may be moved later by entry_seen).
E_NAME=() E_T=() E_RE=() E_LO=() E_HI=()
entry() {
	local name=$1 timeout=$2 re=$3 lo
	shift 3
	lo=$(now)
	check "traffic: $name" "$@"
	E_NAME+=("$name") E_T+=("$timeout") E_RE+=("$re") E_LO+=("$lo") E_HI+=("$(now)")
}

# expect_step STEP NS C_LO C_HI TFILE: nf_conntrack's entries at this step, from a dump
# (TFILE: ct_dump's timeouts) taken between C_LO and C_HI.
expect_step() {
	local step=$1 ns=$2 clo=$3 chi=$4 tfile=$5 i verdict got want n tmin tmax
	for i in "${!E_NAME[@]}"; do
		# present: sure / gone: sure / near: too close to expiry to say;
		# then the printed seconds-left window, floor(T - age) with age in [clo-hi, chi-lo].
		read -r verdict tmin tmax < <(awk -v t="${E_T[$i]}" -v lo="${E_LO[$i]}" -v hi="${E_HI[$i]}" \
			-v clo="$clo" -v chi="$chi" 'BEGIN {
				v = (chi + 1 < lo + t) ? "present" : (clo - 1 > hi + t) ? "gone" : "near"
				a = t - (chi - lo); b = t - (clo - hi)
				printf "%s %d %d\n", v, int(a) - 1, int(b) + 1
			}')
		n=$(RE=${E_RE[$i]} awk -F'\t' '$2 ~ ENVIRON["RE"] { n++ } END { print n + 0 }' "$tfile")
		got=$(RE=${E_RE[$i]} awk -F'\t' '$2 ~ ENVIRON["RE"] { print $1 }' "$tfile" | tr '\n' ' ')
		case $verdict in
		present)
			if [ "$n" -eq 1 ] && [ "${got% }" -ge "$tmin" ] && [ "${got% }" -le "$tmax" ]; then
				t_ok "t+$step: reference: $ns: ${E_NAME[$i]} present, ${got% } s left"
			else
				t_fail "t+$step: reference: $ns: ${E_NAME[$i]} present" "$n entries, timeouts '${got% }', want 1 with $tmin..$tmax s"
			fi
			;;
		gone) check_eq "t+$step: reference: $ns: ${E_NAME[$i]} gone" "$n" 0 ;;
		*) echo "# t+$step: $ns: ${E_NAME[$i]} too close to its expiry to check ($n entries)" ;;
		esac
	done
	want=${#E_NAME[@]}
	n=$(wc -l <"$tfile")
	check "t+$step: reference: $ns: no other entry" test "$n" -le "$want"
}

# expiry_steps PREFIX: at each of $STEPS seconds after $END, compares both tables in both
# namespaces and checks nf_conntrack's entries against the expected ones (expect_step);
# checks are named PREFIX-t<step>.
expiry_steps() {
	local step wait_s ns tfile clo chi
	for step in $STEPS; do
		wait_s=$(awk -v e="$END" -v s="$step" -v n="$(now)" 'BEGIN { d = e + s - n; printf "%.3f", (d > 0 ? d : 0) }')
		sleep "$wait_s"
		CT_CASE=$1-t$step
		echo "# --- t+$step s (after the traffic), waited $wait_s s"
		for ns in "$NS_A" "$NS_B"; do
			tfile=$(mktemp /tmp/ct-expiry.XXXXXX)
			clo=$(now)
			check "t+$step: $ns: $OURS = nf_conntrack" ct_compare "$ns"
			ct_dump "$ns" nf_conntrack "" "$tfile" >/dev/null
			chi=$(now)
			echo "# $ns nf_conntrack:"
			awk -F'\t' '{ sub(/ T /, " " $1 " ", $2); print "#   " $2 }' "$tfile"
			expect_step "$step" "$ns" "$clo" "$chi" "$tfile"
			rm -f "$tfile"
		done
	done
}
