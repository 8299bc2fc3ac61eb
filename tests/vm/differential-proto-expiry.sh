#!/bin/bash
# Differential test of SCTP, DCCP and GRE timeouts and expiry: rust_conntrack's entries must
# count down and disappear as nf_conntrack's do. Meant for simulated time (UML time-travel:
# the sleeps below, 250 s in all, pass in moments of wall time):
#
#   scripts/vm-run --kernel um-debug --time-travel -- tests/vm/differential-proto-expiry.sh
#
# In fresh namespaces (tests/vm/difflib.sh) it creates, from A to B: an SCTP association shut
# down by the client (CLOSED, 10 s) and one aborted (CLOSED, 10 s), a DCCP connection closed
# by the server (TIMEWAIT, 240 s), GRE echoed (assured, 180 s) and GRE one way ([UNREPLIED],
# 30 s). Then, 0, 6, 20, 40, 185 and 250 s after the traffic, it compares both tables in both
# namespaces and checks on nf_conntrack alone that each entry is there or gone with the
# seconds-left it should, as tests/vm/differential-expiry.sh does. SCTP heartbeats are off
# (an hour apart), so that only the traffic above refreshes the entries.
#
# Then every other state, from crafted packets (scapy for SCTP, built by hand for DCCP, sent
# from raw sockets in either namespace so that both namespaces' trackers see them; the
# kernels' own answers to them, an SCTP ABORT or a DCCP Reset, are dropped before conntrack
# by an nft rule): SCTP COOKIE_WAIT, COOKIE_ECHOED, ESTABLISHED, SHUTDOWN_SENT,
# SHUTDOWN_RECD, SHUTDOWN_ACK_SENT, CLOSED and HEARTBEAT_SENT; DCCP REQUEST, RESPOND,
# PARTOPEN, OPEN (12 h: only its count-down is seen), CLOSEREQ, CLOSING and TIMEWAIT. The
# short-lived ones (3 s) are made last and looked at 0 and 6 s after the traffic.
#
# Without --time-travel it refuses to run, unless RCT_DIFF_REALTIME=1. RCT_DIFF_OURS and
# RCT_DIFF_STEPS as in tests/vm/differential-expiry.sh.
. "$(dirname "$0")/difflib.sh"

OURS=${RCT_DIFF_OURS:-rust_conntrack}
STEPS=${RCT_DIFF_STEPS:-0 6 20 40 185 250}

if ! grep -q 'time-travel' /proc/cmdline && [ "${RCT_DIFF_REALTIME:-}" != 1 ]; then
	t_fail "simulated time" "boot with scripts/vm-run --time-travel (or set RCT_DIFF_REALTIME=1)"
	t_done differential-proto-expiry
	exit 1
fi

modprobe nf_conntrack enable_hooks=1
modprobe -a sctp dccp_ipv4 dccp_ipv6
loaded=
if [ -n "${RCT_KO:-}" ]; then
	check "module loads" load_module && loaded=1
elif [ "$OURS" = rust_conntrack ]; then
	t_fail "module loads" "no module (vm-run --no-module?)"
fi

# One scenario of crafted packets: craft PROTO FAMILY(4|6) SPORT DPORT STEP,STEP,... where
# a STEP is SIDE:WHAT (a or b: who sends; WHAT: an SCTP chunk or a DCCP packet type).
# shellcheck disable=SC2016
CT_STATE_PY='
import ctypes, logging, os, socket, struct, sys, time
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.packet import Raw
from scapy.layers.sctp import (SCTP, SCTPChunkInit, SCTPChunkInitAck, SCTPChunkCookieEcho,
    SCTPChunkCookieAck, SCTPChunkData, SCTPChunkShutdown, SCTPChunkShutdownAck,
    SCTPChunkShutdownComplete, SCTPChunkHeartbeatReq, SCTPChunkParamHeartbeatInfo)

CLONE_NEWNET, SO_MARK, MARK = 0x40000000, 36, 0x77
libc = ctypes.CDLL(None, use_errno=True)
ns_a, ns_b, proto, fam, sport, dport, steps = sys.argv[1:8]
v6 = fam == "6"
ip = {"a": "fd77::1" if v6 else "10.77.0.1", "b": "fd77::2" if v6 else "10.77.0.2"}
port = {"a": int(sport), "b": int(dport)}
peer = {"a": "b", "b": "a"}

def raw_in(ns):
    here = os.open("/proc/self/ns/net", os.O_RDONLY)
    there = os.open("/run/netns/" + ns, os.O_RDONLY)
    try:
        if libc.setns(there, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + ns)
        s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW,
                          socket.IPPROTO_RAW)
        s.setsockopt(socket.SOL_SOCKET, SO_MARK, MARK)
        return s
    finally:
        libc.setns(here, CLONE_NEWNET)
        os.close(here)
        os.close(there)

sock = {"a": raw_in(ns_a), "b": raw_in(ns_b)}
TAG = {"a": 0x0A0A0A0A, "b": 0x0B0B0B0B}

def sctp(side, what):
    chunk = {
        "init": SCTPChunkInit(init_tag=TAG[side], a_rwnd=65535, n_out_streams=1,
                              n_in_streams=1, init_tsn=1),
        "initack": SCTPChunkInitAck(init_tag=TAG[side], a_rwnd=65535, n_out_streams=1,
                                    n_in_streams=1, init_tsn=1),
        "cookieecho": SCTPChunkCookieEcho(cookie=b"rct-cookie"),
        "cookieack": SCTPChunkCookieAck(),
        "data": SCTPChunkData(tsn=1, data=b"rct-data"),
        "shutdown": SCTPChunkShutdown(cumul_tsn_ack=1),
        "shutdownack": SCTPChunkShutdownAck(),
        "shutdowncomplete": SCTPChunkShutdownComplete(),
        "heartbeat": SCTPChunkHeartbeatReq(params=[SCTPChunkParamHeartbeatInfo(data=b"rct-hb-x")]),
    }[what]
    # INIT carries tag 0; everything else the peer s tag.
    tag = 0 if what == "init" else TAG[peer[side]]
    return bytes(SCTP(sport=port[side], dport=port[peer[side]], tag=tag) / chunk)

SEQ = {"a": 100, "b": 500}
DCCP_TYPES = {"request": 0, "response": 1, "data": 2, "ack": 3, "dataack": 4,
              "closereq": 5, "close": 6, "reset": 7}

def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

def dccp(side, what):
    ty = DCCP_TYPES[what]
    seq = SEQ[side]
    SEQ[side] += 1
    body = b""
    if ty != 0 and ty != 2:  # all but Request and Data acknowledge the peer s last
        ack = SEQ[peer[side]] - 1
        body += struct.pack("!HHI", 0, ack >> 32, ack & 0xFFFFFFFF)
    if ty in (0, 1):
        body += struct.pack("!I", 42)  # service code
    if ty == 7:
        body += bytes([2, 0, 0, 0])  # Reset code: Aborted
    doff = (16 + len(body)) // 4
    hdr = struct.pack("!HHBBHBBHI", port[side], port[peer[side]], doff, 0, 0,
                      (ty << 1) | 1, 0, seq >> 32, seq & 0xFFFFFFFF) + body
    src = socket.inet_pton(socket.AF_INET6 if v6 else socket.AF_INET, ip[side])
    dst = socket.inet_pton(socket.AF_INET6 if v6 else socket.AF_INET, ip[peer[side]])
    if v6:
        pseudo = src + dst + struct.pack("!I3xB", len(hdr), 33)
    else:
        pseudo = src + dst + struct.pack("!xBH", 33, len(hdr))
    c = csum(pseudo + hdr)
    return hdr[:6] + struct.pack("!H", c) + hdr[8:]

for step in steps.split(","):
    side, what = step.split(":")
    l4 = sctp(side, what) if proto == "sctp" else dccp(side, what)
    l3 = (IPv6(src=ip[side], dst=ip[peer[side]], nh=132 if proto == "sctp" else 33) if v6
          else IP(src=ip[side], dst=ip[peer[side]], proto=132 if proto == "sctp" else 33))
    sock[side].sendto(bytes(l3 / Raw(l4)), (ip[peer[side]], 0))
    time.sleep(0.05)
'

craft() {
	/usr/bin/python3 -c "$CT_STATE_PY" "$NS_A" "$NS_B" "$@"
}

CT_CASE=proto-expiry
check "fresh namespaces" ct_fresh_netns
for ns in "$NS_A" "$NS_B"; do
	ip netns exec "$ns" sysctl -qw net.sctp.hb_interval=3600000
	# The kernels' own answers to crafted packets (unmarked) go before conntrack sees them.
	ip netns exec "$ns" nft add table inet rct_craft
	ip netns exec "$ns" nft add chain inet rct_craft out '{ type filter hook output priority -300; }'
	for p in sport dport; do
		ip netns exec "$ns" nft add rule inet rct_craft out \
			meta mark != 0x77 meta l4proto '{ sctp, dccp }' th $p 6000-7999 drop
	done
done

V4='src=10\.77\.0\.1 dst=10\.77\.0\.2 '
V4R='src=10\.77\.0\.2 dst=10\.77\.0\.1 '
V6='src=fd77:0000:0000:0000:0000:0000:0000:0001 dst=fd77:0000:0000:0000:0000:0000:0000:0002 '
V6R='src=fd77:0000:0000:0000:0000:0000:0000:0002 dst=fd77:0000:0000:0000:0000:0000:0000:0001 '
GRE_T='timeout=30, stream_timeout=180 '
K0='srckey=0x0 dstkey=0x0 '

entry sctp-shutdown 10 "^ipv4     2 sctp     132 T CLOSED ${V4}sport=[0-9]+ dport=5400 ${V4R}sport=5400 dport=[0-9]+ \[ASSURED\] " \
	gen_stream 10.77.0.2 sctp 2 client 0 5400
entry sctp-abort 10 "^ipv6     10 sctp     132 T CLOSED ${V6}sport=[0-9]+ dport=5401 ${V6R}sport=5401 dport=[0-9]+ \[ASSURED\] " \
	gen_stream fd77::2 sctp 2 abort 0 5401
entry dccp-timewait 240 "^ipv4     2 dccp     33 T TIMEWAIT ${V4}sport=[0-9]+ dport=5402 ${V4R}sport=5402 dport=[0-9]+ \[ASSURED\] " \
	gen_stream 10.77.0.2 dccp 2 server 0 5402
entry gre-stream 180 "^ipv4     2 gre      47 T ${GRE_T}${V4}${K0}${V4R}${K0}\[ASSURED\] " \
	gen_generic 10.77.0.2 47 3 1 00000800
entry gre-unreplied 30 "^ipv6     10 gre      47 T ${GRE_T}${V6}${K0}\[UNREPLIED\] ${V6R}${K0}mark" \
	gen_generic fd77::2 47 2 0 00000800
# Crafted states, longest-lived first: A (ports 6000+) is the client of B (ports 7000+).
SCTP_ES="a:init,b:initack,a:cookieecho,b:cookieack"
DCCP_OPEN="a:request,b:response,a:ack,b:ack"
st() { # st PROTO NAME STATE SPORT DPORT: the entry's line up to its reply tuple
	echo "^ipv4     2 $1 T $3 ${V4}sport=$4 dport=$5 "
}
entry dccp-open 43200 "$(st 'dccp     33' open OPEN 6010 7010)" craft dccp 4 6010 7010 "$DCCP_OPEN"
entry dccp-respond 480 "$(st 'dccp     33' respond RESPOND 6011 7011)" craft dccp 4 6011 7011 "a:request,b:response"
entry dccp-partopen 480 "$(st 'dccp     33' partopen PARTOPEN 6012 7012)" craft dccp 4 6012 7012 "a:request,b:response,a:ack"
entry dccp-request 240 "$(st 'dccp     33' request REQUEST 6013 7013)" craft dccp 4 6013 7013 "a:request"
entry dccp-timewait-crafted 240 "$(st 'dccp     33' tw TIMEWAIT 6014 7014)" craft dccp 4 6014 7014 "$DCCP_OPEN,a:close,b:reset"
entry sctp-established 210 "$(st 'sctp     132' es ESTABLISHED 6001 7001)" craft sctp 4 6001 7001 "$SCTP_ES,a:data"
entry dccp-closereq 64 "$(st 'dccp     33' creq CLOSEREQ 6015 7015)" craft dccp 4 6015 7015 "$DCCP_OPEN,b:closereq"
entry dccp-closing 64 "$(st 'dccp     33' closing CLOSING 6016 7016)" craft dccp 4 6016 7016 "$DCCP_OPEN,a:close"
entry sctp-heartbeat-sent 30 "$(st 'sctp     132' hs HEARTBEAT_SENT 6002 7002)" craft sctp 4 6002 7002 "a:heartbeat"
entry sctp-closed-crafted 10 "$(st 'sctp     132' cl CLOSED 6003 7003)" craft sctp 4 6003 7003 "$SCTP_ES,a:shutdown,b:shutdownack,a:shutdowncomplete"
entry sctp-cookie-wait 3 "$(st 'sctp     132' cw COOKIE_WAIT 6004 7004)" craft sctp 4 6004 7004 "a:init,b:initack"
entry sctp-cookie-echoed 3 "$(st 'sctp     132' ce COOKIE_ECHOED 6005 7005)" craft sctp 4 6005 7005 "a:init,b:initack,a:cookieecho"
entry sctp-shutdown-sent 3 "$(st 'sctp     132' ss SHUTDOWN_SENT 6006 7006)" craft sctp 4 6006 7006 "$SCTP_ES,a:shutdown"
entry sctp-shutdown-recd 3 "$(st 'sctp     132' sr SHUTDOWN_RECD 6007 7007)" craft sctp 4 6007 7007 "$SCTP_ES,b:shutdown"
entry sctp-shutdown-ack-sent 3 "$(st 'sctp     132' sas SHUTDOWN_ACK_SENT 6008 7008)" craft sctp 4 6008 7008 "$SCTP_ES,a:shutdown,b:shutdownack"
END=$(now)

expiry_steps proto-expiry

netns_del
[ -n "$loaded" ] && check "module unloads" unload_module
t_done differential-proto-expiry
[ "$T_FAIL" -eq 0 ]
