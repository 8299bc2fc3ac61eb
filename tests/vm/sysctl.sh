#!/bin/bash
# The sysctls under /proc/sys/net/rust_conntrack (run by scripts/test on um-debug), against
# nf_conntrack's under /proc/sys/net/netfilter (same names with the nf_conntrack_ prefix):
#  - every file there, in the initial netns and in others, with 6.12's modes;
#  - every value nf_conntrack takes or refuses, ours takes or refuses with the same errno and
#    reads back the same (written in a netns of their own);
#  - per netns: a write in one netns changes nothing in another;
#  - global: max, expect_max and buckets writable in the initial netns only, count
#    read-only; buckets refuses what nf_conntrack_buckets refuses, with its errno (a write
#    resizes the table: tests/vm/resize.sh);
#  - the settings act: udp_timeout on new entries, checksum=0 tracks a packet with a bad
#    checksum, log_invalid logs TCP's "invalid new" with the packet;
#  - flush (ours alone, write-only): writing 1 deletes the netns' entries, as conntrack -F
#    deletes nf_conntrack's, and no other netns';
#  - the limit, differentially: the same SYNs from more ports than the limit, once with
#    nf_conntrack limited (ours unlimited) and once the other way round, leave the same
#    entries, drop and early_drop counts and a "table full, dropping packet" line.
# Prints "ok"/"not ok" lines and the counts in $RCT_OUT/vm-results-sysctl.
. "$(dirname "$0")/difflib.sh"

P=/proc/sys/net/rust_conntrack
NF=/proc/sys/net/netfilter

# Both tables large, so that with a handful of entries early drop finds nothing to evict in
# either (see the limit case). nf_conntrack rounds its size up to 512 buckets at least.
HS=1048576
modprobe nf_conntrack enable_hooks=1 hashsize=$HS
check "module loads (hashsize $HS)" sh -c "modprobe -a nf_defrag_ipv4 nf_defrag_ipv6 && insmod $RCT_KO hashsize=$HS"
check_eq "nf_conntrack has $HS buckets" "$(cat $NF/nf_conntrack_buckets)" "$HS"
check_eq "buckets is hashsize" "$(cat $P/buckets 2>&1)" "$HS"
check_eq "max is 8 * hashsize, as 6.12 with a hashsize" "$(cat $P/max 2>&1)" "$((8 * HS))"

NAMES="max count buckets checksum log_invalid generic_timeout
tcp_timeout_syn_sent tcp_timeout_syn_recv tcp_timeout_established tcp_timeout_fin_wait
tcp_timeout_close_wait tcp_timeout_last_ack tcp_timeout_time_wait tcp_timeout_close
tcp_timeout_max_retrans tcp_timeout_unacknowledged tcp_loose tcp_be_liberal
tcp_ignore_invalid_rst tcp_max_retrans udp_timeout udp_timeout_stream icmp_timeout
icmpv6_timeout sctp_timeout_closed sctp_timeout_cookie_wait sctp_timeout_cookie_echoed
sctp_timeout_established sctp_timeout_shutdown_sent sctp_timeout_shutdown_recd
sctp_timeout_shutdown_ack_sent sctp_timeout_heartbeat_sent dccp_timeout_request
dccp_timeout_respond dccp_timeout_partopen dccp_timeout_open dccp_timeout_closereq
dccp_timeout_closing dccp_timeout_timewait dccp_loose gre_timeout gre_timeout_stream
expect_max acct timestamp"
# Ours alone: 6.0's nf_conntrack_helper, automatic helper assignment (6.12 has none), and
# flush, the netns' conntrack -F (ctnetlink is nf_conntrack's).
OURS_ONLY="helper flush"
PER_NET=$(tr ' ' '\n' <<<"$NAMES" | grep -vxE 'max|count|buckets|expect_max' | tr '\n' ' ')
want=$(tr ' ' '\n' <<<"$NAMES $OURS_ONLY" | grep . | sort | tr '\n' ' ')

netns_pair || t_fail "netns setup"
x() { local ns=$1; shift; if [ -n "$ns" ]; then ip netns exec "$ns" "$@"; else "$@"; fi; }

for ns in "" "$NS_A"; do
	where=${ns:-init_net}
	check_eq "$where: the files" "$(x "$ns" ls $P | sort | tr '\n' ' ')" "$want"
	modes=$(x "$ns" stat -c '%n %a' $P/* | sed "s|$P/||" | sort)
	wmodes=$(for n in $NAMES $OURS_ONLY; do
		case $n in
		count) m=444 ;;
		flush) m=200 ;;
		max | expect_max | buckets) if [ -z "$ns" ]; then m=644; else m=444; fi ;;
		*) m=644 ;;
		esac
		echo "$n $m"
	done | sort)
	check_eq "$where: modes as 6.12 (max, expect_max, buckets 0444 outside the initial netns)" "$modes" "$wmodes"
	# nf_conntrack's modes for the same names.
	nfmodes=$(for n in $NAMES; do echo "$n $(x "$ns" stat -c %a $NF/nf_conntrack_$n)"; done | sort)
	check_eq "$where: modes = nf_conntrack's" "$(grep -vE '^(helper|flush) ' <<<"$modes")" "$nfmodes"
done

# sysctl_py NS ARGS: one Python for many reads and writes; each line of its output is
# "name value nf_result ours_result nf_after ours_after" for a write, results being OK or
# the errno name.
SYSCTL_PY='
import errno, os, sys
P, NF = "/proc/sys/net/rust_conntrack/", "/proc/sys/net/netfilter/nf_conntrack_"
def read(path):
    try:
        with open(path) as f:
            return f.read().strip().replace("\t", ",")
    except OSError as e:
        return errno.errorcode[e.errno]
def write(path, val):
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as e:
        return errno.errorcode[e.errno]
    try:
        os.write(fd, val.encode())
        return "OK"
    except OSError as e:
        return errno.errorcode[e.errno]
    finally:
        os.close(fd)
mode = sys.argv[1]
if mode == "read":
    for n in sys.argv[2:]:
        print(n, read(P + n))
elif mode == "write":
    # name=value pairs: write both, read both back, restore both.
    for pair in sys.argv[2:]:
        n, v = pair.split("=", 1)
        old_nf, old_ours = read(NF + n), read(P + n)
        r_nf, r_ours = write(NF + n, v), write(P + n, v)
        print(n, repr(v), r_nf, r_ours, read(NF + n), read(P + n))
        write(NF + n, old_nf)
        write(P + n, old_ours)
elif mode == "set":
    for pair in sys.argv[2:]:
        n, v = pair.split("=", 1)
        print(n, write(P + n, v))
'
sysctl_py() { local ns=$1; shift; x "$ns" /usr/bin/python3 -c "$SYSCTL_PY" "$@"; }

# Every value 6.12 takes or refuses, per kind (HZ 100 on UML: 21474836 s is the most a
# jiffies value takes); in A, with nf_conntrack's answer as the reference.
jiffies_vals=(7 0 -5 21474836 21474837 -21474837 2147483648 abc "" "7 8" " 9")
bool_vals=(0 1 2 -1 256 x)
u8_vals=(0 6 255 256 -1)
args=()
for n in $PER_NET; do
	case $n in
	*timeout*) vals=("${jiffies_vals[@]}") ;;
	log_invalid | tcp_max_retrans) vals=("${u8_vals[@]}") ;;
	*) vals=("${bool_vals[@]}") ;;
	esac
	for v in "${vals[@]}"; do args+=("$n=$v"); done
done
out=$(sysctl_py "$NS_A" write "${args[@]}")
for n in $PER_NET; do
	bad=$(awk -v n="$n" '$1 == n && ($(NF-3) != $(NF-2) || $(NF-1) != $NF)' <<<"$out")
	check "$n: every write answered and read back as nf_conntrack's" test -z "$bad" ||
		printf '# %s\n' "$bad"
done
check_ge "writes compared" "$(wc -l <<<"$out")" 300
check_eq "some writes refused (EINVAL)" "$(grep -c "EINVAL EINVAL" <<<"$out")" \
	"$(grep -c "EINVAL" <<<"$out")"

# Isolation: a value written in A only; B and the initial netns keep the defaults.
defaults=$(sysctl_py "" read $PER_NET)
sets=()
i=0
for n in $PER_NET; do
	case $n in
	*timeout*) sets+=("$n=$((100 + i))") ;;
	log_invalid | tcp_max_retrans) sets+=("$n=$((10 + i))") ;;
	*) sets+=("$n=$((1 - $(awk -v n="$n" '$1 == n { print $2 }' <<<"$defaults")))") ;;
	esac
	i=$((i + 1))
done
check "A: every per-netns value written" test -z "$(sysctl_py "$NS_A" set "${sets[@]}" | grep -v ' OK$')"
a=$(sysctl_py "$NS_A" read $PER_NET)
check_eq "A: reads back what was written" "$(tr '\n' ' ' <<<"$a")" "$(tr '=' ' ' < <(printf '%s\n' "${sets[@]}") | tr '\n' ' ')"
check_eq "B: still the defaults" "$(sysctl_py "$NS_B" read $PER_NET)" "$defaults"
check_eq "init_net: still the defaults" "$(sysctl_py "" read $PER_NET)" "$defaults"
a=$(sysctl_py "$NS_A" read $PER_NET)
sets=()
i=0
for n in $PER_NET; do
	case $n in
	*timeout*) sets+=("$n=$((200 + i))") ;;
	log_invalid | tcp_max_retrans) sets+=("$n=$((100 + i))") ;;
	*) continue ;;
	esac
	i=$((i + 1))
done
sysctl_py "$NS_B" set "${sets[@]}" >/dev/null
check_eq "B: its own values" "$(sysctl_py "$NS_B" read $PER_NET | grep -E 'timeout|log_invalid|max_retrans' | tr '\n' ' ')" \
	"$(printf '%s\n' "${sets[@]}" | tr '=' ' ' | tr '\n' ' ')"
check_eq "A: unchanged by B's" "$(sysctl_py "$NS_A" read $PER_NET)" "$a"

# Global values.
check_eq "init_net: max written, as nf_conntrack_max" "$(sysctl_py "" write max=1000 max=-1 max=2147483647 max=2147483648 | cut -d' ' -f2-)" \
	"$(printf "'1000' OK OK 1000 1000\n'-1' EINVAL EINVAL %s %s\n'2147483647' OK OK 2147483647 2147483647\n'2147483648' EINVAL EINVAL %s %s" \
		"$(cat $NF/nf_conntrack_max)" "$(cat $P/max)" "$(cat $NF/nf_conntrack_max)" "$(cat $P/max)")"
check_eq "A: max refused (EACCES), as nf_conntrack_max" "$(sysctl_py "$NS_A" write max=5 | cut -d' ' -f3,4)" "EACCES EACCES"
check_eq "A: count and buckets read-only" "$(sysctl_py "$NS_A" set count=1 buckets=1 | tr '\n' ' ')" "count EACCES buckets EACCES "
check_eq "A: buckets refused (EACCES), as nf_conntrack_buckets, and reads the global value" \
	"$(sysctl_py "$NS_A" write buckets=1024 | cut -d' ' -f3-)" "EACCES EACCES $HS $HS"
check_eq "init_net: count read-only" "$(sysctl_py "" set count=1)" "count EACCES"
# buckets: nf_conntrack_hash_sysctl's proc_dointvec, then nf_conntrack_hash_resize: 0
# EINVAL, more than hashsize's limit (INT_MAX / 8 buckets; negative numbers as their
# unsigned int) ENOMEM, beyond an int EINVAL. 4096 (a multiple of 512, which 6.12 rounds
# to) resizes both tables; each write is undone (a resize back to $HS).
check_eq "init_net: buckets written, as nf_conntrack_buckets" \
	"$(sysctl_py "" write buckets=0 buckets=-1 buckets=4096 buckets=268435456 buckets=2147483647 \
		buckets=2147483648 buckets=-2147483648 buckets=abc | cut -d' ' -f2-)" \
	"$(printf "'%s' %s %s %s %s\n" 0 EINVAL EINVAL $HS $HS -1 ENOMEM ENOMEM $HS $HS 4096 OK OK 4096 4096 \
		268435456 ENOMEM ENOMEM $HS $HS 2147483647 ENOMEM ENOMEM $HS $HS 2147483648 EINVAL EINVAL $HS $HS \
		-2147483648 ENOMEM ENOMEM $HS $HS abc EINVAL EINVAL $HS $HS)"
check_eq "init_net: buckets back to $HS, max unchanged" "$(cat $P/buckets) $(cat $P/max)" "$HS $((8 * HS))"
check_eq "A: max reads the global value" "$(ip netns exec "$NS_A" cat $P/max)" "$(cat $P/max)"
exp_max=$(cat $P/expect_max)
check_eq "expect_max: 6.12's default, buckets / 256 * 4, as nf_conntrack's" "$exp_max $(cat $NF/nf_conntrack_expect_max)" \
	"$((HS / 256 * 4)) $((HS / 256 * 4))"
check_eq "init_net: expect_max written, as nf_conntrack_expect_max" \
	"$(sysctl_py "" write expect_max=0 expect_max=7 expect_max=-3 | cut -d' ' -f2-4 | tr '\n' ' ')" \
	"'0' EINVAL EINVAL '7' OK OK '-3' EINVAL EINVAL "
check_eq "A: expect_max refused (EACCES) and reads the global value" \
	"$(sysctl_py "$NS_A" write expect_max=5 | cut -d' ' -f3,4) $(ip netns exec "$NS_A" cat $P/expect_max)" \
	"EACCES EACCES $(cat $P/expect_max)"
echo "$exp_max" >$P/expect_max
echo "$exp_max" >$NF/nf_conntrack_expect_max
check_eq "helper: on by default, a boolean, per netns" \
	"$(cat $P/helper) $(ip netns exec "$NS_A" sh -c "echo 0 >$P/helper; cat $P/helper; echo 2 >$P/helper 2>/dev/null || echo EINVAL" | tr '\n' ' ')$(cat $P/helper)" \
	"1 0 EINVAL 1"

# --- the settings act -------------------------------------------------------------------
ct_fresh_netns
ip netns exec "$NS_A" sh -c "echo 7 >$P/udp_timeout"
ip netns exec "$NS_A" /usr/bin/python3 -c '
import socket
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("10.77.0.2", 5307))'
t=$(ip netns exec "$NS_A" cat /proc/net/rust_conntrack | awk '/dport=5307/ { print $5 }')
check "udp_timeout 7: a new UDP entry's timeout is 7 or 6 (got '$t')" test "$t" = 7 -o "$t" = 6
t=$(ip netns exec "$NS_B" cat /proc/net/rust_conntrack | awk '/dport=5307/ { print $5 }')
# (B's table is read after A's: a slow guest may take a second or two.)
check "udp_timeout 7 in A only: B's entry has 30 to 27 (got '$t')" test "${t:-0}" -le 30 -a "${t:-0}" -ge 27
check_eq "count: B's entries, as nf_conntrack_count" "$(ip netns exec "$NS_B" cat $P/count)" \
	"$(ip netns exec "$NS_B" cat $NF/nf_conntrack_count)"

# flush: B's entries go, as conntrack -F takes nf_conntrack's; A's stay. Only 1 is taken,
# and there is nothing to read.
a_before=$(ip netns exec "$NS_A" cat $P/count)
check_eq "flush: 0 and 2 refused (EINVAL), nothing to read (EACCES)" \
	"$(sysctl_py "$NS_B" set flush=0 flush=2 | tr '\n' ' ')$(sysctl_py "$NS_B" read flush)" \
	"flush EINVAL flush EINVAL flush EACCES"
check "flush: B has entries before" test "$(ip netns exec "$NS_B" cat $P/count)" -gt 0
check_eq "flush: written in B" "$(sysctl_py "$NS_B" set flush=1)" "flush OK"
ip netns exec "$NS_B" conntrack -F >/dev/null 2>&1
check_eq "flush: B's table empty, as nf_conntrack's after conntrack -F" \
	"$(ip netns exec "$NS_B" sh -c "cat $P/count; wc -l </proc/net/rust_conntrack" | tr '\n' ' ')" \
	"$(ip netns exec "$NS_B" sh -c "cat $NF/nf_conntrack_count; wc -l </proc/net/nf_conntrack" | tr '\n' ' ')"
check_eq "flush: A's entries left alone" "$(ip netns exec "$NS_A" cat $P/count)" "$a_before"
ip netns exec "$NS_A" /usr/bin/python3 -c '
import socket
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("10.77.0.2", 5308))'
check_eq "flush: B tracks again afterwards" "$(ct_count "$NS_B" rust_conntrack 'dport=5308')" 1

# bad_udp PORT: a UDP datagram from A to B with a wrong checksum (raw socket).
bad_udp() {
	ip netns exec "$NS_A" /usr/bin/python3 - "$1" <<'PY'
import socket, struct, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
payload = b"bad checksum"
s.sendto(struct.pack("!HHHH", port, port, 8 + len(payload), 0x1234) + payload, ("10.77.0.2", 0))
PY
}
# veth marks what it passes on CHECKSUM_UNNECESSARY unless its peer's RX checksumming is
# off (ETHTOOL_SRXCSUM through SIOCETHTOOL: no ethtool binary needed).
ip netns exec "$NS_B" /usr/bin/python3 - <<'PY'
import array, fcntl, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
ev = array.array("I", [0x15, 0])  # ETHTOOL_SRXCSUM, off
ifr = struct.pack("16sP", b"veth-b", ev.buffer_info()[0])
fcntl.ioctl(s, 0x8946, ifr)  # SIOCETHTOOL
PY
bad_udp 41001
check_eq "checksum 1: B does not track a bad checksum" "$(ct_count "$NS_B" rust_conntrack 'sport=41001')" 0
check_eq "checksum 1: nf_conntrack neither" "$(ct_count "$NS_B" nf_conntrack 'sport=41001')" 0
ip netns exec "$NS_B" sh -c "echo 0 >$P/checksum; echo 0 >$NF/nf_conntrack_checksum"
bad_udp 41002
check_eq "checksum 0: B tracks it" "$(ct_count "$NS_B" rust_conntrack 'sport=41002')" 1
check_eq "checksum 0: as nf_conntrack" "$(ct_count "$NS_B" nf_conntrack 'sport=41002')" 1

# log_invalid: a SYN-ACK out of the blue is TCP's "invalid new" at B's PRE_ROUTING.
ip netns exec "$NS_B" sh -c "echo 6 >$P/log_invalid"
ip netns exec "$NS_A" /usr/bin/python3 - <<'PY'
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
src, dst = socket.inet_aton("10.77.0.1"), socket.inet_aton("10.77.0.2")
def csum(d):
    s = sum(struct.unpack("!%dH" % (len(d) // 2), d))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
hdr = struct.pack("!HHIIBBHHH", 42424, 80, 1, 1, 5 << 4, 0x12, 65535, 0, 0)
c = csum(src + dst + struct.pack("!BBH", 0, 6, len(hdr)) + hdr)
hdr = hdr[:16] + struct.pack("!H", c) + hdr[18:]
s.sendto(hdr, ("10.77.0.2", 0))
PY
sleep 0.2
# B's stack answers with a RST, itself an "invalid new" at B's LOCAL_OUT.
dmesg | grep 'rust_conntrack: nf_ct_proto_6:' | sed 's/^/# /'
check "log_invalid 6: the SYN-ACK logged at PRE_ROUTING with the tracker's reason" grep -qE \
	'\] rust_conntrack: nf_ct_proto_6: invalid new IN=veth-b OUT= SRC=10\.77\.0\.1 DST=10\.77\.0\.2 LEN=40 PROTO=TCP SPT=42424 DPT=80$' \
	<(dmesg)
check_eq "log_invalid 0 in A: nothing logged there (LOCAL_OUT)" \
	"$(dmesg | grep -c 'nf_ct_proto_6: invalid new IN= OUT=veth-a')" 0

# --- the limit, differentially ------------------------------------------------------------
# With both trackers limited at once the first to drop a packet hides it from the other
# (same hook, same priority), so each is limited in turn, the other unlimited (max 0), on
# the same traffic in fresh namespaces: LIMIT entries, then SYNs from SYNS ports in all,
# from A to an address no one answers (a static neighbour whose frames B discards: only
# A tracks them, at LOCAL_OUT, and confirms them at POST_ROUTING).
# Both tables have $HS buckets: with LIMIT entries, the chance that early drop finds one
# of them in the 8 buckets it scans is 2 * LIMIT * 8 / $HS per SYN (both directions
# hash), about 1 in 16000 here, so in both trackers every SYN beyond the limit is dropped
# and early drop evicts nothing: the same entries, the same counts. (Which entries early
# drop evicts depends on each tracker's random hash key, so a table where it does find some
# cannot compare entry by entry; KUnit's early_drop_whole_bucket checks that it evicts the
# whole bucket.)
LIMIT=4
SYNS=16
syns() {
	ip -n "$NS_A" neigh replace 10.77.0.99 lladdr 02:00:00:00:00:99 dev veth-a
	ip netns exec "$NS_A" /usr/bin/python3 - "$SYNS" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
src, dst = socket.inet_aton("10.77.0.1"), socket.inet_aton("10.77.0.99")
def csum(d):
    s = sum(struct.unpack("!%dH" % (len(d) // 2), d))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
for port in range(30000, 30000 + int(sys.argv[1])):
    hdr = struct.pack("!HHIIBBHHH", port, 80, 1000, 0, 5 << 4, 0x02, 65535, 0, 0)
    c = csum(src + dst + struct.pack("!BBH", 0, 6, len(hdr)) + hdr)
    try:
        s.sendto(hdr[:16] + struct.pack("!H", c) + hdr[18:], ("10.77.0.99", 0))
    except PermissionError:
        pass  # EPERM: the packet was dropped (table full)
PY
}
limit_run() { # TRACKER: the table, drop, early_drop and "table full" lines after the SYNs
	local file=$1 before after
	ct_fresh_netns
	before=$(dmesg | grep -c "$file: table full, dropping packet")
	syns
	ct_raw "$NS_A" "$file" >"/tmp/limit-$file"
	LIMIT_DROP=$(stat_sum "$NS_A" "$file" drop)
	LIMIT_EARLY=$(stat_sum "$NS_A" "$file" early_drop)
	after=$(dmesg | grep -c "$file: table full, dropping packet")
	LIMIT_LOG=$((after - before))
	LIMIT_T=$(date +%s)
}
nf_max=$(cat $NF/nf_conntrack_max)
our_max=$(cat $P/max)
echo "$LIMIT" >$NF/nf_conntrack_max
echo 0 >$P/max
limit_run nf_conntrack
read -r nf_drop nf_early nf_log nf_t <<<"$LIMIT_DROP $LIMIT_EARLY $LIMIT_LOG $LIMIT_T"
echo 0 >$NF/nf_conntrack_max
echo "$LIMIT" >$P/max
limit_run rust_conntrack
echo "$nf_max" >$NF/nf_conntrack_max
echo "$our_max" >$P/max
echo "# nf_conntrack: drop $nf_drop early_drop $nf_early, $nf_log log lines; rust_conntrack: drop $LIMIT_DROP early_drop $LIMIT_EARLY, $LIMIT_LOG"
check_eq "limit: reference: nf_conntrack keeps $LIMIT entries" "$(wc -l </tmp/limit-nf_conntrack)" "$LIMIT"
check_eq "limit: reference: nf_conntrack drops the other SYNs" "$nf_drop $nf_early" "$((SYNS - LIMIT)) 0"
CT_CASE=limit check "limit: the same entries as nf_conntrack's" ct_compare_raw /tmp/limit-nf_conntrack \
	/tmp/limit-rust_conntrack "" "nf_conntrack (limited)" "rust_conntrack (limited)" \
	"$RCT_OUT/differential/limit" $((LIMIT_T - nf_t))
check_eq "limit: the same drop and early_drop counts" "$LIMIT_DROP $LIMIT_EARLY" "$nf_drop $nf_early"
check "limit: both log 'table full, dropping packet' (nf $nf_log, ours $LIMIT_LOG lines)" \
	test "$nf_log" -ge 1 -a "$LIMIT_LOG" -ge 1
dmesg | grep 'table full, dropping packet' | sed 's/^/# /' | head -n 4

netns_del
check "module unloads" rmmod rust_conntrack
t_done sysctl
[ "$T_FAIL" -eq 0 ]
