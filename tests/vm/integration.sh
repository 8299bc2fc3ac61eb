#!/bin/bash
# Integration tests of the module in a VM (run by scripts/test on um-debug):
# load, /proc files, hook registration and priorities, counters under real traffic
# between namespaces, invalid packets beside nf_conntrack, unload and reload; then the
# KUnit suites, from the test module.
. "$(dirname "$0")/lib.sh"

modprobe nf_conntrack enable_hooks=1
modprobe nfnetlink_hook

check "module loads" load_module
check "loading taints no TAINT_TEST" taint_test_clear
check_eq "module name" "$(cat /sys/module/rust_conntrack/initstate 2>/dev/null)" live

check_eq "/proc/net/rust_conntrack is 0440" "$(stat -c %a /proc/net/rust_conntrack 2>&1)" 440
check_eq "/proc/net/stat/rust_conntrack is 0444" "$(stat -c %a /proc/net/stat/rust_conntrack 2>&1)" 444
check_eq "/proc/net/rust_conntrack is empty without a table" "$(wc -c </proc/net/rust_conntrack)" 0

ours=$(head -n1 /proc/net/stat/rust_conntrack)
theirs=$(head -n1 /proc/net/stat/nf_conntrack)
check "stat header starts with nf_conntrack's columns" test "${ours#"$theirs"}" != "$ours"
possible=$(awk -F, '{n=0; for (i=1;i<=NF;i++) { split($i,r,"-"); n += (r[2]==""?1:r[2]-r[1]+1) } print n}' \
	/sys/devices/system/cpu/possible)
check_eq "one stat row per possible CPU" "$(($(wc -l </proc/net/stat/rust_conntrack) - 1))" "$possible"
rows_ok=1
while read -r -a row; do
	[ "${#row[@]}" -eq 25 ] || rows_ok=0
	for v in "${row[@]}"; do [[ $v =~ ^[0-9a-f]{8}$ ]] || rows_ok=0; done
done < <(tail -n +2 /proc/net/stat/rust_conntrack)
check "stat rows are 25 columns of %08x" test "$rows_ok" = 1

netns_pair || t_fail "netns setup"

for ns in "" "$NS_A"; do
	where=${ns:-init_net}
	x() { if [ -n "$ns" ]; then ip netns exec "$ns" "$@"; else "$@"; fi; }
	check "$where: /proc/net/rust_conntrack exists" x test -f /proc/net/rust_conntrack
	check "$where: /proc/net/stat/rust_conntrack exists" x test -f /proc/net/stat/rust_conntrack
	hooks=$(x nft list hooks 2>&1)
	check "$where: hooks at nf_conntrack's priorities" /usr/bin/python3 - "$hooks" <<'PY'
import re, sys
text = sys.argv[1]
want = {
    (fam, hook, fn, prio)
    for fam in ("ip", "ip6")
    for hook, fn, prio in (
        ("prerouting", "rct_conntrack_in", -200),
        ("output", "rct_conntrack_in", -200),
        ("postrouting", "rct_helper", 300),
        ("postrouting", "rct_confirm", 2**31 - 1),
        ("input", "rct_helper", 300),
        ("input", "rct_confirm", 2**31 - 1),
    )
}
got, fam, hook = set(), None, None
for line in text.splitlines():
    if m := re.match(r"\s*family (\S+) \{", line):
        fam = m.group(1)
    elif m := re.match(r"\s*hook (\S+) \{", line):
        hook = m.group(1)
    elif m := re.match(r"\s*([+-]\d+) (rct_\w+) \[rust_conntrack\]", line):
        got.add((fam, hook, m.group(2), int(m.group(1))))
if got != want:
    print("missing:", sorted(want - got), "unexpected:", sorted(got - want))
    print(text)
    sys.exit(1)
PY
done

counters=(in_pre_routing in_local_out helper_post_routing helper_local_in confirm_post_routing confirm_local_in)
snapshot() {
	local ns c
	for ns in "$NS_A" "$NS_B"; do
		for c in "${counters[@]}"; do printf '%s ' "$(stat_sum "$ns" rust_conntrack "$c")"; done
	done
}
# Sender A sees its packets at LOCAL_OUT and POST_ROUTING, receiver B at PRE_ROUTING and
# LOCAL_IN; replies go the other way. Every hook of both namespaces sees >= N packets.
check_traffic() {
	local name=$1 n=$2
	shift 2
	local -a before after
	read -r -a before <<<"$(snapshot)"
	if ! "$@" >/dev/null 2>&1; then
		t_fail "$name: traffic"
		return
	fi
	read -r -a after <<<"$(snapshot)"
	local i bad=
	for i in "${!before[@]}"; do
		[ $((after[i] - before[i])) -ge "$n" ] || bad="$bad ${counters[i % 6]}@$((i / 6))+$((after[i] - before[i]))"
	done
	if [ -z "$bad" ]; then t_ok "$name: every hook counts it"; else t_fail "$name: every hook counts it" "$bad"; fi
}
check_traffic "ICMP echo over IPv4" 3 ip netns exec "$NS_A" ping -c 3 -i 0.2 -W 2 10.77.0.2
check_traffic "ICMPv6 echo" 3 ip netns exec "$NS_A" ping -6 -c 3 -i 0.2 -W 2 fd77::2
check_traffic "TCP over IPv4" 3 tcp_exchange 10.77.0.2 8080
check_traffic "TCP over IPv6" 3 tcp_exchange fd77::2 8080

# Counters are per netns: traffic between A and B leaves the initial netns alone.
init_before=$(stat_sum "" rust_conntrack in_pre_routing 2>/dev/null || true)
ip netns exec "$NS_A" ping -c 2 -i 0.2 -W 2 10.77.0.2 >/dev/null
init_after=$(stat_sum "" rust_conntrack in_pre_routing 2>/dev/null || true)
check_eq "counters are per netns" "$init_after" "$init_before"

# A UDP datagram cut after 2 bytes of its header: invalid for both trackers, and passed on.
ours_before=$(stat_sum "$NS_B" rust_conntrack invalid)
theirs_before=$(stat_sum "$NS_B" nf_conntrack invalid)
ip netns exec "$NS_A" /usr/bin/python3 - <<'PY'
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 22, 1, 0, 64, 17, 0,
                  socket.inet_aton("10.77.0.1"), socket.inet_aton("10.77.0.2"))
s.sendto(hdr + b"\x04\xd2", ("10.77.0.2", 0))
PY
sleep 0.2
ours=$(($(stat_sum "$NS_B" rust_conntrack invalid) - ours_before))
theirs=$(($(stat_sum "$NS_B" nf_conntrack invalid) - theirs_before))
check_eq "truncated UDP: invalid counted once, as nf_conntrack does" "$ours/$theirs" "1/1"

# The table holds the traffic's entries; /proc shows them in nf_conntrack's format.
check_ge "entries in the table" "$(ip netns exec "$NS_A" cat /proc/net/rust_conntrack | wc -l)" 2
check "slab cache of plain entries in use" grep -q '^rust_conntrack ' /proc/slabinfo
check "slab cache of wide entries (TCP, SCTP, DCCP)" grep -q '^rust_conntrack_wide ' /proc/slabinfo
grep -E '^(rust_conntrack|rust_conntrack_wide|nf_conntrack) ' /proc/slabinfo >"$RCT_OUT/slabinfo.txt"

# Unload with namespaces alive, entries in the table and traffic flowing: every netns is
# torn down and the slab caches destroyed with no object left (else the kernel log says so).
ip netns exec "$NS_A" ping -q -i 0.02 -c 500 10.77.0.2 >/dev/null 2>&1 &
pinger=$!
sleep 0.5
check "module unloads under traffic" unload_module
kill "$pinger" 2>/dev/null
wait "$pinger" 2>/dev/null
check "slab caches destroyed" sh -c "! grep -qE '^rust_conntrack(_wide)? ' /proc/slabinfo"
check "init_net: /proc files removed" test ! -e /proc/net/rust_conntrack -a ! -e /proc/net/stat/rust_conntrack
check "netns: /proc files removed" ip netns exec "$NS_A" test ! -e /proc/net/rust_conntrack
check "module reloads" load_module
ip netns add rct-c
check "netns created after load gets the files" ip netns exec rct-c test -f /proc/net/stat/rust_conntrack
ip netns del rct-c
check "module unloads again" unload_module
netns_del
check "no TAINT_TEST after two loads and unloads" taint_test_clear
check "test module: KUnit suites run" run_kunit
t_done integration
