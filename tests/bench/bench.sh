#!/bin/bash
# Guest side of `make bench` (scripts/bench runs it in a `um` VM): measures rust_conntrack
# beside nf_conntrack with pktgen traffic between two namespaces, in rounds that
# interleave the configurations. Writes raw figures to $RCT_OUT/bench/; scripts/bench
# turns them into the report (bench/README.md says what each figure means).
#
# Settings (environment; scripts/bench passes them on the command line with env):
#   BENCH_ROUNDS   rounds (default 3); every round measures every configuration
#   BENCH_A_REPS   part A passes per round (default 3): each measures the four
#                  configurations once, in an order rotated from pass to pass
#   BENCH_B_RUNS   established-flow runs per table size in part B (default 2)
#   BENCH_PKTS     packets per established-flow run (default 1000000)
#   BENCH_TCP_PKTS segments per TCP established-flow run in part A (default 200000;
#                  0: no TCP figure)
#   BENCH_NEW_PKTS new tuples per paired new-flow run in part A (default 250000; 0: none):
#                  each configuration but "both" fills its empty table in every pass
#   BENCH_SIZES    table sizes for the lookup-cost runs, ascending (default
#                  "10000 100000 1000000"); the last one is also the new-flow, memory and
#                  GC size
#   BENCH_HASHSIZE buckets for both trackers (default 1048576)
#   BENCH_PARTS    AB (default) or A: part A alone, for a quick established-flow figure
#   BENCH_GC_MAX   seconds to wait for the count to reach 0 after the last entry's expiry
#                  (default 150)
#
# Output, in $RCT_OUT/bench/:
#   raw.tsv     ROUND PART CONFIG METRIC VALUE, tab-separated (PART A: one flow, four
#               configurations, ROUND is round.pass; B: one tracker with a table of
#               BENCH_SIZES entries; a METRIC may repeat within a round)
#   notes.txt   anything that looked wrong (drops, insert_failed, entries not created...)
#   meta.txt    kernel, module and table sizes
#   gc-*.txt    the GC samples (seconds from the last entry's expiry, count)
#
# The traffic never leaves the two namespaces (rctb-a 10.77.0.1 -> rctb-b 10.77.0.2 over
# a veth pair): pktgen in rctb-a, a UDP socket in rctb-b that never reads (the packets
# end as RcvbufErrors, after both trackers' confirm hooks). The TCP figure: a connection
# from rctb-a to a reading socket in rctb-b, opened with a real handshake through the
# configuration's trackers, then continued by trafgen (netsniff-ng) with in-order 16-byte
# segments; rctb-b's ACKs go back through its trackers and are dropped in rctb-a before
# its own (tests/bench/tcpflow.py). Every loop is bounded.
set -u
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3

ROUNDS=${BENCH_ROUNDS:-3}
A_REPS=${BENCH_A_REPS:-3}
B_RUNS=${BENCH_B_RUNS:-2}
PKTS=${BENCH_PKTS:-1000000}
TCP_PKTS=${BENCH_TCP_PKTS:-200000}
NEW_PKTS=${BENCH_NEW_PKTS:-250000}
read -r -a SIZES <<<"${BENCH_SIZES:-10000 100000 1000000}"
HS=${BENCH_HASHSIZE:-1048576}
GC_MAX=${BENCH_GC_MAX:-150}
PARTS=${BENCH_PARTS:-AB}
# BENCH_ABLATE_KOS (set by scripts/bench from BENCH_ABLATE): "NAME=PATH ..." experimental
# builds, each without one cost (src/proto/ablate.rs); part A measures each as one more
# configuration, abl-NAME, alone in the namespace as "ours" is.
declare -A ABL_KO=()
ABL_NAMES=()
for kv in ${BENCH_ABLATE_KOS:-}; do
	ABL_KO[${kv%%=*}]=${kv#*=}
	ABL_NAMES+=("${kv%%=*}")
done
WARM=100000          # packets before each measured run (creates the flow's entry)
TCP_WARM=20000       # segments before each measured TCP run
TCP_LEN=16           # TCP payload bytes per segment
TCP_PORT=5001        # the TCP server's port in rctb-b
TCP_SPORT=40000      # the next connection's source port (one connection per measurement)
UDP_TIMEOUT=30       # an unreplied UDP entry's timeout, both trackers
NA=rctb-a
NB=rctb-b
OUT=$RCT_OUT/bench
RAW=$OUT/raw.tsv
NOTES=$OUT/notes.txt
META=$OUT/meta.txt
ROUND=0
CTX=setup            # what is being measured, for the notes
SINK_PID=
TCP_SERVER_PID=
mkdir -p "$OUT"
: >"$RAW"
: >"$NOTES"
: >"$META"

now() { date +%s.%N; }
log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }
raw() { printf '%s\t%s\t%s\t%s\t%s\n' "$ROUND" "$1" "$2" "$3" "$4" >>"$RAW"; }
note() {
	echo "round $ROUND: $*" >>"$NOTES"
	log "NOTE: $*"
}
meta() { echo "$1: $2" >>"$META"; }
# sections MODULE KO: where MODULE's code lies now ("TIME MODULE KO SECTION ADDRESS" lines),
# for the host's profile (tests/bench/profile.py, BENCH_PROFILE=1) to name its samples.
sections() {
	local f t
	t=$(now)
	for f in .text .ltext .ltext.unlikely.; do
		[ -e "/sys/module/$1/sections/$f" ] &&
			echo "$t $1 $2 $f $(cat "/sys/module/$1/sections/$f")" >>"$OUT/sections.txt"
	done
	true
}

# --- trackers --------------------------------------------------------------------------

ours_loaded() { grep -q '^rust_conntrack ' /proc/modules; }
LOADED_KO=
# ours_load [KO]: rust_conntrack, or an experimental build of it (one at a time: they
# share the module's name).
ours_load() {
	local ko=${1:-$RCT_KO}
	if ours_loaded; then
		[ "$LOADED_KO" = "$ko" ] && return 0
		ours_unload
	fi
	insmod "$ko" hashsize="$HS" || { note "insmod $ko failed"; return 1; }
	LOADED_KO=$ko
	sections rust_conntrack "$ko"
}
ours_unload() {
	ours_loaded || return 0
	rmmod rust_conntrack || note "rmmod rust_conntrack failed"
	LOADED_KO=
}

# nf_conntrack hooks a namespace only when something asks for it (it was loaded without
# enable_hooks): a `ct` expression in an nft rule does (nf_ct_netns_get), even in a
# regular chain that no hook calls, so the rule itself costs nothing per packet. Deleting
# the table drops the last reference and unregisters the hooks.
nf_on() {
	local ns
	for ns in "$NA" "$NB"; do
		ip netns exec "$ns" nft list table inet rctbench >/dev/null 2>&1 && continue
		ip netns exec "$ns" nft -f - <<<'table inet rctbench { chain keep { ct state new counter; }; }' ||
			note "nft: cannot enable nf_conntrack in $ns"
	done
}
nf_off() {
	local ns
	for ns in "$NA" "$NB"; do
		ip netns exec "$ns" nft list table inet rctbench >/dev/null 2>&1 || continue
		ip netns exec "$ns" nft delete table inet rctbench || note "nft: cannot delete the table in $ns"
	done
}

# The hooks registered in the receiving namespace must be the configuration's.
check_hooks() {
	local want_nf=$1 want_ours=$2 hooks nf ours
	hooks=$(ip netns exec "$NB" nft list hooks 2>&1)
	nf=$(grep -c 'nf_conntrack\]' <<<"$hooks")
	# Any of ours: in an experimental build the hook functions may fold into one symbol.
	ours=$(grep -c '\brct_\(conntrack_in\|helper\|confirm\)' <<<"$hooks")
	if { [ "$want_nf" = 1 ] && [ "$nf" -eq 0 ]; } || { [ "$want_nf" = 0 ] && [ "$nf" -ne 0 ]; } ||
		{ [ "$want_ours" = 1 ] && [ "$ours" -eq 0 ]; } || { [ "$want_ours" = 0 ] && [ "$ours" -ne 0 ]; }; then
		note "hooks in $NB: want nf_conntrack=$want_nf rust_conntrack=$want_ours, see $nf/$ours hook lines"
		return 1
	fi
}

# set_config none|nf|ours|both: trackers on the current namespace pair.
set_config() {
	case $1 in
	none) ours_unload; nf_off ;;
	nf) ours_unload; nf_on ;;
	ours) ours_load; nf_off ;;
	both) ours_load; nf_on ;;
	abl-*) ours_load "${ABL_KO[${1#abl-}]}"; nf_off ;;
	esac
	case $1 in
	none) check_hooks 0 0 ;;
	nf) check_hooks 1 0 ;;
	ours | abl-*) check_hooks 0 1 ;;
	both) check_hooks 1 1 ;;
	esac
}

# --- namespaces and traffic ------------------------------------------------------------

ns_down() {
	local pid
	for pid in "$SINK_PID" "$TCP_SERVER_PID"; do
		[ -n "$pid" ] || continue
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	SINK_PID= TCP_SERVER_PID=
	ip netns del "$NA" 2>/dev/null
	ip netns del "$NB" 2>/dev/null
	true
}

# wait_ready FILE WHAT: waits (at most 5 s) for a server to touch FILE, then removes it.
wait_ready() {
	local i
	for i in $(seq 100); do
		[ -e "$1" ] && break
		sleep 0.05
	done
	[ -e "$1" ] || note "$2 did not start"
	rm -f "$1"
}

ns_up() {
	local i ready
	ns_down
	# IPv4 only: no IPv6 autoconfiguration or MLD packets, whose entries would linger in
	# the tables beside the benchmark's own.
	ip netns add "$NA" && ip netns add "$NB" &&
		ip netns exec "$NA" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 &&
		ip netns exec "$NB" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 &&
		ip link add va netns "$NA" type veth peer name vb netns "$NB" &&
		ip -n "$NA" addr add 10.77.0.1/24 dev va && ip -n "$NB" addr add 10.77.0.2/24 dev vb &&
		ip -n "$NA" link set lo up && ip -n "$NB" link set lo up &&
		ip -n "$NA" link set va up && ip -n "$NB" link set vb up || { note "netns setup failed"; return 1; }
	for i in $(seq 100); do
		ip -n "$NB" -o link show vb | grep -q 'state UP' && ip -n "$NA" -o link show va | grep -q 'state UP' && break
		sleep 0.05
	done
	MAC_A=$(ip -n "$NA" -o link show va | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
	MAC_B=$(ip -n "$NB" -o link show vb | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
	# The sink: a UDP socket on 10.77.0.2:9 with a tiny buffer that never reads, so every
	# packet is delivered (no ICMP port unreachable) and dropped by UDP. Lives at most 2 h.
	ready=/tmp/rctb-sink.$$
	rm -f "$ready"
	ip netns exec "$NB" "$PY" -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.bind(("10.77.0.2", 9))
open(sys.argv[1], "w").close()
time.sleep(7200)' "$ready" &
	SINK_PID=$!
	wait_ready "$ready" "the UDP sink"
	if [ "$TCP_PKTS" -gt 0 ]; then
		# rctb-a has no socket for the TCP connections: what comes back is dropped before
		# the trackers and its stack, which would answer with a reset (AF_PACKET taps,
		# tcpflow.py's among them, still see it).
		ip netns exec "$NA" nft -f - <<<'table inet rctb_tcp { chain pre { type filter hook prerouting priority -300; policy accept; ip protocol tcp drop; }; }' ||
			note "nft: cannot add the TCP drop in $NA"
		ip netns exec "$NB" "$PY" "$BENCH_DIR/tcpflow.py" server 10.77.0.2 "$TCP_PORT" "$ready" &
		TCP_SERVER_PID=$!
		wait_ready "$ready" "the TCP server"
	fi
	pg kpktgend_0 "rem_device_all" "add_device va"
}

# pg FILE CMD...: pktgen commands, written one by one to /proc/net/pktgen/FILE in rctb-a.
pg() {
	ip netns exec "$NA" /bin/bash -c 'f=/proc/net/pktgen/$1; shift
		for c; do echo "$c" >"$f" || { echo "pktgen: \"$c\" > $f failed" >&2; exit 1; }; done' _ "$@" ||
		note "pktgen configuration failed: $*"
}

# snap ARRAY: the receiving namespace's counters (tests/bench/snap.py) into ARRAY.
snap() {
	local -n _s=$1
	local k v
	_s=()
	while read -r k v; do _s[$k]=$v; done < <(ip netns exec "$NB" "$PY" "$BENCH_DIR/snap.py" vb)
}

# pg_run N FLOW [warm]: sends N packets, FLOW "one" (10.77.0.1:9 -> 10.77.0.2:9) or "range:B"
# (sources 10.77.B.0-15, source ports 1-65533 both advancing every packet: 1 048 528
# distinct tuples, all new). Sets PG_USEC, PG_SENT, PG_ERR and the deltas of the
# receiver's counters in D[...] (not for a warm-up run); returns non-zero if pktgen did not
# report a result.
declare -A S0 S1 D
pg_run() {
	local n=$1 flow=$2 warm=${3:-} src_min src_max sp_min sp_max res k
	case $flow in
	one) src_min=10.77.0.1 src_max=10.77.0.1 sp_min=9 sp_max=9 ;;
	range:*) src_min=10.77.${flow#range:}.0 src_max=10.77.${flow#range:}.15 sp_min=1 sp_max=65534 ;;
	esac
	pg va "count $n" "clone_skb 0" "burst 1" "pkt_size 60" "delay 0" \
		"dst_min 10.77.0.2" "dst_max 10.77.0.2" "dst_mac $MAC_B" \
		"src_min $src_min" "src_max $src_max" "udp_src_min $sp_min" "udp_src_max $sp_max" \
		"udp_dst_min 9" "udp_dst_max 9"
	[ -n "$warm" ] || snap S0
	# pgctrl "start" returns when the run ends; a signal (the timeout) stops it. The wall
	# clock times (the host's clock too) let scripts/bench tell how much of the run the VM
	# spent waiting for its host CPU.
	PG_T0=$(now)
	timeout 300 ip netns exec "$NA" /bin/bash -c 'echo start >/proc/net/pktgen/pgctrl' ||
		note "$CTX: pktgen run ($n packets, $flow) ended with an error or timed out"
	PG_T1=$(now)
	if [ -n "$warm" ]; then
		ip netns exec "$NA" grep -q '^Result: OK' /proc/net/pktgen/va || note "$CTX: pktgen warm-up run failed"
		return 0
	fi
	snap S1
	D=()
	for k in "${!S1[@]}"; do D[$k]=$((S1[$k] - ${S0[$k]:-0})); done
	res=$(ip netns exec "$NA" grep -A1 '^Result:' /proc/net/pktgen/va)
	PG_USEC=$(sed -nE 's/^Result: OK: ([0-9]+)\(.*/\1/p' <<<"$res")
	PG_SENT=$(sed -nE 's/^Result: OK: [0-9]+\(.*usec, ([0-9]+) .*/\1/p' <<<"$res")
	PG_ERR=$(sed -nE 's/.*errors: ([0-9]+).*/\1/p' <<<"$res")
	if [ -z "$PG_USEC" ] || [ -z "$PG_SENT" ]; then
		note "$CTX: pktgen gave no result: $(tr '\n' ' ' <<<"$res")"
		return 1
	fi
	[ "${PG_ERR:-0}" -eq 0 ] || note "$CTX: pktgen: $PG_ERR transmit errors ($n packets, $flow)"
	[ "$PG_SENT" -eq "$n" ] || note "$CTX: pktgen sent $PG_SENT of $n packets ($flow)"
	[ "${D[rx]:-0}" -ge "$PG_SENT" ] || note "$CTX: vb received ${D[rx]:-?} of $PG_SENT packets ($flow)"
	[ "${D[ip.InDelivers]:-0}" -ge "$PG_SENT" ] ||
		note "$CTX: IP delivered ${D[ip.InDelivers]:-0} of $PG_SENT packets ($flow): $((PG_SENT - ${D[ip.InDelivers]:-0})) lost on the way"
	return 0
}

# check_stats TRACKERS WHAT [NEW]: notes any trouble counter that moved in the last run
# (TRACKERS: "nf", "rct" or both), and, with NEW, entries or inserts short of NEW.
check_stats() {
	local trs=$1 what=$2 new=${3:-} tr c
	for tr in $trs; do
		for c in invalid insert_failed drop early_drop icmp_error chainlength search_restart clashres unconfirmed_reaped; do
			[ -n "${D[$tr.$c]:-}" ] || continue
			[ "${D[$tr.$c]}" -eq 0 ] || note "$what: $tr $c +${D[$tr.$c]}"
		done
		[ "$tr" = rct ] && [ "${D[rct.in_pre_routing]:-0}" -lt "$PG_SENT" ] &&
			note "$what: rct in_pre_routing saw ${D[rct.in_pre_routing]:-0} of $PG_SENT packets"
		if [ -n "$new" ]; then
			[ "${D[$tr.entries]:-0}" -ge "$new" ] || note "$what: $tr entries +${D[$tr.entries]:-0}, want +$new"
		elif [ "${D[$tr.insert]:-0}" -gt 1 ]; then
			note "$what: $tr inserted ${D[$tr.insert]} entries on a one-flow run"
		fi
	done
}

trackers_of() {
	# Experimental builds skip the checks: some count nothing, by design.
	case $1 in none | abl-*) echo "" ;; nf) echo nf ;; ours) echo rct ;; both) echo "nf rct" ;; esac
}

# est CONFIG PART KEY: one established-flow measurement (after a warm-up run).
est() {
	local cfg=$1 part=$2 key=$3
	CTX="$part $cfg $key"
	pg_run "$WARM" one warm
	pg_run "$PKTS" one || return 1
	check_stats "$(trackers_of "$cfg")" "$part $cfg $key"
	raw "$part" "$cfg" "${key}_usec" "$PG_USEC"
	raw "$part" "$cfg" "${key}_pkts" "$PG_SENT"
	raw "$part" "$cfg" "${key}_t" "$PG_T0,$PG_T1"
	log "$part $cfg $key: $PG_SENT packets in $PG_USEC us: $((PG_SENT * 1000000 / PG_USEC)) pps, $((PG_USEC * 1000 / PG_SENT)) ns/packet"
}

# est_tcp CONFIG PART: one TCP established-flow measurement on a new connection: the
# handshake, TCP_WARM segments, then TCP_PKTS measured ones, all in order.
est_tcp() {
	local cfg=$1 part=$2 sport=$TCP_SPORT seq ack conf=$OUT/tcp.cfg res usec sent trs tr k
	CTX="$part $cfg tcp"
	TCP_SPORT=$((TCP_SPORT + 1))
	read -r seq ack < <(ip netns exec "$NA" "$PY" "$BENCH_DIR/tcpflow.py" connect 10.77.0.1 "$sport" 10.77.0.2 "$TCP_PORT")
	if [ -z "$ack" ]; then
		note "$CTX: no TCP connection"
		return 1
	fi
	# tcp_run N: N segments from sequence number $seq on; advances seq.
	tcp_run() {
		local n=$1
		echo "{ eth(da=$MAC_B, sa=$MAC_A), ipv4(sa=10.77.0.1, da=10.77.0.2, ttl=64, df)," \
			"tcp(sp=$sport, dp=$TCP_PORT, seq=dinc($seq, $((seq + (n - 1) * TCP_LEN)), $TCP_LEN)," \
			"aseq=$ack, ack, psh, win=65535), fill('x', $TCP_LEN) }" >"$conf"
		# (From $OUT: trafgen writes a temporary file beside it.)
		res=$(cd "$OUT" && timeout 300 ip netns exec "$NA" trafgen --dev va --conf "$conf" --num "$n" \
			--cpus 1 --no-sock-mem --notouch-irq 2>&1)
		res=${res//$'\r'/$'\n'} # its summary lines start with a carriage return
		seq=$((seq + n * TCP_LEN))
	}
	tcp_run "$TCP_WARM"
	snap S0
	PG_T0=$(now)
	tcp_run "$TCP_PKTS"
	PG_T1=$(now)
	# Let the receiver read what is queued, so that the counters below are complete.
	sleep 0.2
	snap S1
	D=()
	for k in "${!S1[@]}"; do D[$k]=$((S1[$k] - ${S0[$k]:-0})); done
	# "  1 sec, 65690 usec on CPU0 (200000 packets)": trafgen's own clock over the run.
	read -r usec sent < <(sed -nE 's/^ *([0-9]+) sec, ([0-9]+) usec on CPU[0-9]+ \(([0-9]+) packets\).*/\1 \2 \3/p' <<<"$res" |
		awk '{ print $1 * 1000000 + $2, $3 }')
	if [ -z "$sent" ] || [ "$sent" -eq 0 ]; then
		note "$CTX: trafgen gave no result: $(tr '\n' ' ' <<<"$res")"
		return 1
	fi
	[ "$sent" -eq "$TCP_PKTS" ] || note "$CTX: trafgen sent $sent of $TCP_PKTS segments"
	[ "${D[tcp.InSegs]:-0}" -ge "$sent" ] || note "$CTX: TCP took in ${D[tcp.InSegs]:-0} of $sent segments"
	for k in tcp.InErrs tcp.OutRsts tcpext.PruneCalled tcpext.TCPRcvQDrop tcpext.TCPOFOQueue \
		tcpext.TCPOFODrop tcpext.TCPZeroWindowDrop; do
		[ "${D[$k]:-0}" -eq 0 ] || note "$CTX: $k +${D[$k]}"
	done
	trs=$(trackers_of "$cfg")
	for tr in $trs; do
		for k in invalid insert_failed drop early_drop; do
			[ "${D[$tr.$k]:-0}" -eq 0 ] || note "$CTX: $tr $k +${D[$tr.$k]}"
		done
	done
	# The connection is tracked where it should be: ESTABLISHED, replied, assured.
	for tr in $trs; do
		case $tr in nf) k=/proc/net/nf_conntrack ;; rct) k=/proc/net/rust_conntrack ;; esac
		ip netns exec "$NB" grep -q "ESTABLISHED src=10.77.0.1 dst=10.77.0.2 sport=$sport dport=$TCP_PORT .*\[ASSURED\]" "$k" ||
			note "$CTX: $tr has no ESTABLISHED [ASSURED] entry for the connection: $(ip netns exec "$NB" grep "sport=$sport " "$k")"
	done
	raw "$part" "$cfg" tcp_usec "$usec"
	raw "$part" "$cfg" tcp_pkts "$sent"
	raw "$part" "$cfg" tcp_t "$PG_T0,$PG_T1"
	log "$part $cfg tcp: $sent segments in $usec us: $((usec * 1000 / sent)) ns/segment"
}

slab_line() { grep -E "^$1 " /proc/slabinfo; }
meminfo_kb() { sed -nE "s/^$1: +([0-9]+) kB/\1/p" /proc/meminfo; }
# Waits (at most 120 s) until a cache has fewer than 1000 live objects (netns cleanup).
wait_slab_drain() {
	local cache=$1 i a
	for i in $(seq 240); do
		a=$(slab_line "$cache" | awk '{print $2}')
		[ "${a:-0}" -lt 1000 ] && return 0
		sleep 0.5
	done
	note "$cache: still $a live objects 120 s after its namespace was deleted"
}

# --- part A: one established flow, four configurations ---------------------------------

# flush CONFIG: empties the configuration's table in the receiving namespace, each the way
# its users do: nf_conntrack's with conntrack -F, rust_conntrack's with its flush sysctl.
# Both keep their table and slab cache, warm for the next run.
flush() {
	case $1 in
	nf) ip netns exec "$NB" conntrack -F >/dev/null 2>&1 || note "conntrack -F failed in $NB" ;;
	ours) ip netns exec "$NB" sh -c 'echo 1 >/proc/sys/net/rust_conntrack/flush' ||
		note "rust_conntrack flush failed in $NB" ;;
	esac
}

# est_new CONFIG: one paired new-flow measurement: NEW_PKTS new tuples into the
# configuration's empty table (none: the same tuples untracked), then the table emptied.
est_new() {
	local cfg=$1 trs
	trs=$(trackers_of "$cfg")
	CTX="A $cfg new flows"
	pg_run "$NEW_PKTS" range:21 || return 1
	check_stats "$trs" "$CTX" ${trs:+"$NEW_PKTS"}
	raw A "$cfg" newa_usec "$PG_USEC"
	raw A "$cfg" newa_pkts "$PG_SENT"
	raw A "$cfg" newa_t "$PG_T0,$PG_T1"
	[ -n "$trs" ] && raw A "$cfg" newa_new "${D[$trs.entries]:-0}"
	log "$CTX: $PG_SENT packets in $PG_USEC us: $((PG_USEC * 1000 / PG_SENT)) ns/packet"
	flush "$cfg"
}

part_a() {
	local configs=(none nf ours both) i cfg pass=$1 round=$ROUND n name
	for name in "${ABL_NAMES[@]}"; do configs+=("abl-$name"); done
	n=${#configs[@]}
	ROUND=$round.$pass
	log "part A, round $ROUND"
	ns_up || { ROUND=$round; return 1; }
	# Every pass starts one configuration later, so that each takes every place in turn.
	for ((i = 0; i < n; i++)); do
		cfg=${configs[$(((i + (round - 1) * A_REPS + pass - 1) % n))]}
		set_config "$cfg"
		est "$cfg" A est
		[ "$TCP_PKTS" -gt 0 ] && est_tcp "$cfg" A
		case $cfg in none | nf | ours) [ "$NEW_PKTS" -gt 0 ] && est_new "$cfg" ;; esac
		if [ "$cfg" = none ]; then
			# The new-flow reference: the same distinct tuples as part B, no tracker.
			CTX="A none new flows"
			pg_run "${SIZES[-1]}" range:20 || continue
			raw A none newflow_usec "$PG_USEC"
			raw A none newflow_pkts "$PG_SENT"
			raw A none newflow_t "$PG_T0,$PG_T1"
		fi
	done
	ns_down
	ROUND=$round
}

# --- part B: one tracker with a large table ---------------------------------------------

part_b() {
	local tr=$1 key cache stats prev=0 size n i k t_first t_last slab0 line res samples
	log "part B, round $ROUND: $tr"
	case $tr in
	nf) key=nf cache=nf_conntrack stats=nf; ours_unload ;;
	ours) key=ours cache=rust_conntrack stats=rct; ours_load ;;
	esac
	ns_up || return 1
	[ "$tr" = nf ] && nf_on
	if [ "$tr" = nf ]; then check_hooks 1 0; else check_hooks 0 1; fi
	CTX="B $tr warm-up"
	pg_run "$WARM" one warm
	slab0=$(meminfo_kb Slab)
	t_first=$(now)
	t_last=$t_first
	for i in "${!SIZES[@]}"; do
		size=${SIZES[$i]}
		n=$((size - prev))
		prev=$size
		CTX="B $tr fill to $size"
		pg_run "$n" "range:$((16 + i))" || continue
		t_last=$(now)
		check_stats "$stats" "B $tr fill to $size" "$n"
		raw B "$key" "fill_usec_$size" "$PG_USEC"
		raw B "$key" "fill_t_$size" "$PG_T0,$PG_T1"
		raw B "$key" "fill_new_$size" "${D[$stats.entries]:-0}"
		raw B "$key" "entries_$size" "${S1[$stats.entries]:-0}"
		log "B $tr fill to $size: ${D[$stats.entries]:-0} new entries in $PG_USEC us, table ${S1[$stats.entries]:-?}"
		CTX="B $tr established at $size"
		for k in $(seq "$B_RUNS"); do
			pg_run "$PKTS" one || continue
			t_last=$(now)
			check_stats "$stats" "B $tr established at $size"
			raw B "$key" "est_usec_$size" "$PG_USEC"
			raw B "$key" "est_pkts_$size" "$PG_SENT"
			raw B "$key" "est_t_$size" "$PG_T0,$PG_T1"
			log "B $tr established at $size: $((PG_USEC * 1000 / PG_SENT)) ns/packet"
		done
	done
	# Memory at the largest size.
	line=$(slab_line "$cache")
	raw B "$key" slabinfo "$(tr -s ' ' <<<"$line" | tr ' ' ,)"
	# Entries with a TCP, SCTP or DCCP state are the wide objects of a cache of their own.
	if [ "$key" = ours ]; then
		raw B "$key" slabinfo_wide "$(slab_line rust_conntrack_wide | tr -s ' ' | tr ' ' ,)"
	fi
	raw B "$key" mem_entries "${S1[$stats.entries]:-0}"
	raw B "$key" meminfo_slab_delta_kb $(($(meminfo_kb Slab) - slab0))
	log "B $tr memory: $line"
	# GC: the last entry (the established flow's) expires UDP_TIMEOUT after the last
	# packet; the first ones UDP_TIMEOUT after the first fill began.
	local expire_at deadline start_at
	expire_at=$(awk -v t="$t_last" -v u="$UDP_TIMEOUT" 'BEGIN { printf "%.3f", t + u }')
	start_at=$(awk -v t="$t_first" -v u="$UDP_TIMEOUT" 'BEGIN { printf "%.3f", t + u - 1 }')
	deadline=$(awk -v t="$expire_at" -v m="$GC_MAX" 'BEGIN { printf "%.3f", t + m }')
	raw B "$key" gc_spread_s "$(awk -v a="$t_first" -v b="$t_last" 'BEGIN { printf "%.3f", b - a }')"
	samples=$OUT/gc-$key-round$ROUND.txt
	log "B $tr GC: waiting for the entries to expire (last at +$UDP_TIMEOUT s, then at most $GC_MAX s)"
	res=$(ip netns exec "$NB" "$PY" -c "
import time, sys
time.sleep(max(0.0, $start_at - time.time()))
sys.argv = ['gc-sample.py', '$stats', '$expire_at', '$deadline', '$samples']
exec(open('$BENCH_DIR/gc-sample.py').read())")
	log "B $tr GC: $res"
	local kv
	for kv in $res; do raw B "$key" "gc_${kv%%=*}" "${kv#*=}"; done
	case " $res " in *" zero=-1 "*)
		ip netns exec "$NB" cat "/proc/net/$cache" >"$OUT/gc-left-$key-round$ROUND.txt" 2>&1
		note "B $tr: $(grep -o 'final_count=[0-9]*' <<<"$res" | cut -d= -f2) entries left $GC_MAX s after the last one's expiry, e.g. $(head -n1 "$OUT/gc-left-$key-round$ROUND.txt")" ;;
	esac
	ns_down
	wait_slab_drain "$cache"
}

# --- main -------------------------------------------------------------------------------

t0=$(now)
# Without these there is nothing to measure: stop at once.
fatal() {
	note "$*"
	exit 1
}
# nf_conntrack first (nft_ct depends on it and would load it with the default size),
# without enable_hooks: namespaces are hooked on demand (nf_on).
modprobe nf_conntrack hashsize="$HS" || fatal "modprobe nf_conntrack failed"
[ "$(cat /proc/sys/net/netfilter/nf_conntrack_buckets)" -eq "$HS" ] ||
	echo "$HS" >/sys/module/nf_conntrack/parameters/hashsize
[ "$(cat /proc/sys/net/netfilter/nf_conntrack_buckets)" -eq "$HS" ] ||
	note "nf_conntrack has $(cat /proc/sys/net/netfilter/nf_conntrack_buckets) buckets, not $HS"
modprobe -a nf_defrag_ipv4 nf_defrag_ipv6 pktgen nf_tables nft_ct nfnetlink_hook || fatal "modprobe failed"
sysctl -qw net.netfilter.nf_conntrack_max=$((HS * 2))
# The TCP server's 64 MiB receive buffer (tcpflow.py).
sysctl -qw net.core.rmem_max=$((64 << 20))
for m in nf_conntrack nf_defrag_ipv4 nf_tables nft_ct; do
	ko=$(modinfo -n "$m" 2>/dev/null) || ko=
	[ -n "$ko" ] || ko=$(find "${RCT_KMODS:-/lib/modules/$(uname -r)}" -name "$m.ko" 2>/dev/null | head -n1)
	sections "$m" "${ko:-unknown}"
done
ours_load || fatal "rust_conntrack does not load"
meta kernel "$(uname -r) ($RCT_KERNEL), $(nproc) CPU, $(sed -n 's/MemTotal: *//p' /proc/meminfo)"
meta nf_conntrack "$(cat /proc/sys/net/netfilter/nf_conntrack_buckets) buckets, nf_conntrack_max $(cat /proc/sys/net/netfilter/nf_conntrack_max)"
meta rust_conntrack "$(dmesg | grep -o 'rust_conntrack: loaded: .*' | tail -n1 | sed 's/^rust_conntrack: //')"
meta settings "rounds $ROUNDS (part A $A_REPS passes, part B $B_RUNS runs per size), $PKTS packets per run (+$WARM warm-up in part A), TCP $TCP_PKTS segments of $TCP_LEN B per run (+$TCP_WARM), $NEW_PKTS new flows per paired run, sizes ${SIZES[*]}, hashsize $HS, GC wait $GC_MAX s"
meta module "$RCT_KO (sha256 $(sha256sum "$RCT_KO" | cut -c1-12))"

for ROUND in $(seq "$ROUNDS"); do
	for pass in $(seq "$A_REPS"); do
		part_a "$pass"
	done
	if [ "$PARTS" = A ]; then
		:
	elif [ $((ROUND % 2)) -eq 1 ]; then
		part_b nf
		part_b ours
	else
		part_b ours
		part_b nf
	fi
done
ROUND=0
ours_unload
meta duration "$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.0f s", b - a }')"
log "done; $(wc -l <"$NOTES") notes"
cat "$NOTES"
