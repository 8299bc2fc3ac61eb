# Helpers for the differential tests of connection-tracking helpers and expectations (FTP,
# TFTP): tests/vm/differential-helper.sh and differential-helper-expiry.sh. Sourced (bash),
# inside a VM; sources natlib.sh (and so difflib.sh and lib.sh).
# shellcheck shell=bash
#
# The reference's helpers are assigned the 6.12 way, by nft rules in every namespace of a
# case (hl_nft): a `ct helper` object of type "ftp" (tcp) and "tftp" (udp), set on new
# connections to TCP 21 and UDP 69 in a prerouting and an output chain (priority filter,
# after conntrack). rust_conntrack assigns its own by port (module parameters ftp_ports=,
# tftp_ports=), in every namespace.
#
# Files are read by bash builtins through /proc/PID/net of a sleep in each namespace (see
# hl_read): a process costs 0.1-0.25 s in a UML guest.
# Expectations (/proc/net/nf_conntrack_expect, exp_seq_show's line format:
# "TIMEOUT l3proto = L3 proto=L4 TUPLE [FLAGS ]HELPER"):
#   exp_compare NS [nohelper]   nf_conntrack_expect vs ours ($OURS_EXP) in NS: the same
#       lines (as a multiset; the timeout, the first field, compared apart within
#       +-$RCT_DIFF_TOLERANCE s; nohelper: all but the helper's name, the last field). On a
#       mismatch prints the lines that differ and keeps both files in $RCT_OUT/helper/;
#       fails if ours cannot be read.
#   exp_tables [WHEN]      exp_compare in every namespace of the case ($HL_NS), a check each;
#       nf_conntrack_expect as read there is the snapshot exp_ref checks.
#   exp_ref NS WHAT COUNT ERE [TIMEOUT]   in the snapshot, COUNT lines of NS match ERE (the
#       line with its timeout replaced by T), and with TIMEOUT their timeouts fit an
#       expectation of TIMEOUT s made since $EXP_T0.
#   exp_re VAR PROTO SRC DST DPORT HELPER   VAR = the ERE of an expectation line (ports: EREs).
# Tables: hl_tables WHEN (a check per namespace: nf_conntrack = ours, as difflib.sh's
# ct_compare, which reports any difference), ct_ref NS WHAT COUNT ERE (nf_conntrack's
# table as hl_tables last read it).
# Statistics (expect_new, expect_create, expect_delete of /proc/net/stat/nf_conntrack and
# ours, summed over the CPUs):
#   st_begin               remembers both sides' counters in every namespace of $HL_NS
#   st_check WHAT "N C D" [NS...]   since st_begin, nf_conntrack's counters moved by
#       N C D (reference check) in each NS (default $HL_NS), and ours moved as nf_conntrack's.
# Traffic: one Python program (HL_PY), each role bounded by a deadline; addresses only in
# 10.77.0.0/24, fd77::/64 (the pair of difflib.sh) and 10.78.1.0/24, 10.78.2.0/24,
# fd78:1::/64, fd78:2::/64 (the router of natlib.sh).
#   hl_ftpd NS BIND [PORT=21] [OPTS]   pyftpdlib server (anonymous, read/write, in
#       $HL_DIR/ftp, which holds "data"), with no idle timeouts; an active data connection
#       it cannot make fails after 2 s (421). OPTS, comma-separated: masq=ADDR (the address
#       its 227 replies name), foreign (PORT/EPRT may name another address than the
#       client's: pyftpdlib compares them as text, and nf_nat_ftp writes IPv6 addresses out
#       in full).
#   hl_ftp_hold NS DST PORT MODE [BINDPORT]   ftplib client, in the background: logs in, sends
#       PASV, EPSV, PORT or EPRT, and once the server answered says it holds
#       ($HL_HOLD_INFO: the data port) and waits; hl_release lets it make the transfer
#       (RETR data, checked). PORT and EPRT first meet a block (hl_block_active): the server
#       cannot connect and answers 421; the client holds, and after the release sends the
#       command again, which the server now follows.
#   hl_ftp_cmd NS DST PORT MODE ARG     ftplib client: a command that must be refused or
#       left unused: port-foreign/eprt-foreign (PORT/EPRT naming ARG, which the server
#       refuses: 501), pasv-only (PASV, the reply checked to name ARG; no transfer)
#   hl_curl NS URL OPTIONS...          curl fetches the data file, checked
#   hl_tftpd NS BIND                   tftpd-hpa (in.tftpd) on BIND:69, in $HL_DIR/tftp
#   hl_tftp NS DST get|put             tftp-hpa get of "data" or put of "up-N", checked
#   hl_udp_sink NS BIND PORT           a UDP socket that reads and never answers
#   hl_rrq_hold NS DST SPORT [PORT=69] [KEEPALIVE=0]   a crafted TFTP RRQ from SPORT, then
#       holds (sending an ACK of block 0 to PORT every KEEPALIVE s, if not 0, which keeps
#       the request's entry alive); after hl_release it waits for a DATA packet from any
#       port of DST and acknowledges it
#   hl_data_from NS BIND SPORT DST DPORT  DATA block 1 from BIND:SPORT, waits for its ACK

if ! declare -F nat_fresh_netns >/dev/null; then
	# shellcheck source=tests/vm/natlib.sh
	. "$(dirname "${BASH_SOURCE[0]}")/natlib.sh"
fi

OURS=${RCT_DIFF_OURS:-rust_conntrack}
case $OURS in
nf_conntrack) OURS_EXP=nf_conntrack_expect OURS_STAT=nf_conntrack ;;
*) OURS_EXP=${OURS}_expect OURS_STAT=$OURS ;;
esac
HL_DIR=/tmp/rct-helper
HL_LOG=${RCT_OUT:-/tmp}/helper
HL_NS=
HL_PIDS=()
HL_IP=$(type -P ip)
mkdir -p "$HL_DIR/ftp" "$HL_DIR/tftp" "$HL_LOG"
chmod 777 "$HL_DIR/tftp"
for _i in $(seq 64); do echo "rct-helper data line $_i"; done >"$HL_DIR/ftp/data"
cp "$HL_DIR/ftp/data" "$HL_DIR/tftp/data"
chmod 644 "$HL_DIR/tftp/data"

# --- helpers of the reference -------------------------------------------------------------

# hl_nft NS [FTP_PORT=21] [TFTP_PORT=69] [FTP_TYPE=ftp] [TFTP_TYPE=tftp]
hl_nft() {
	local ns=$1 fp=${2:-21} tp=${3:-69} ft=${4:-ftp} tt=${5:-tftp}
	ip netns exec "$ns" nft -f - <<EOF
table inet rct_helper {
	ct helper ftp-standard { type "$ft" protocol tcp; }
	ct helper tftp-standard { type "$tt" protocol udp; }
	chain pre {
		type filter hook prerouting priority filter;
		tcp dport $fp ct helper set "ftp-standard"
		udp dport $tp ct helper set "tftp-standard"
	}
	chain out {
		type filter hook output priority filter;
		tcp dport $fp ct helper set "ftp-standard"
		udp dport $tp ct helper set "tftp-standard"
	}
}
EOF
}

# hl_nft_all [ARGS of hl_nft...]: the rules in every namespace of the case.
hl_nft_all() {
	local ns
	for ns in $HL_NS; do hl_nft "$ns" "$@" || return 1; done
}

# hl_block_active NS PORT / hl_unblock NS: TCP to PORT leaving NS is dropped before either
# tracker sees it (output, priority raw - 100): an active FTP data connection never starts,
# and the expectations it would use stay.
hl_block_active() {
	ip netns exec "$1" nft -f - <<EOF
table inet rct_block {
	chain out {
		type filter hook output priority -400;
		tcp dport $2 drop
	}
}
EOF
}
hl_unblock() { ip netns exec "$1" nft delete table inet rct_block; }

# --- reading the namespaces' files ---------------------------------------------------------
#
# Starting a process costs 0.1 to 0.25 s in a UML guest: the files are read by bash
# builtins (mapfile), through /proc/PID/net of a process living in the namespace (a sleep
# started by hl_case for each; /proc/PID/net is PID's netns's view of /proc/net). Without
# one (a namespace not made by hl_case), through `ip netns exec NS cat`.

declare -A HL_NSPID
HL_SLEEPERS=()
hl_sleepers() {
	local ns
	for ns in "$@"; do
		"$HL_IP" netns exec "$ns" sleep 100000 &
		HL_NSPID[$ns]=$!
		HL_SLEEPERS+=("$!")
	done
}
hl_sleepers_kill() {
	local p
	for p in "${HL_SLEEPERS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${HL_SLEEPERS[@]}"; do wait "$p" 2>/dev/null; done
	HL_SLEEPERS=()
	HL_NSPID=()
}

# hl_read VAR NS FILE: VAR (an array) = the lines of /proc/net/FILE in NS; false if it
# cannot be read (HL_READ_ERR says why).
hl_read() {
	local -n lines_=$1
	local ns=$2 file=$3 pid=${HL_NSPID[$2]:-}
	HL_READ_ERR=
	lines_=()
	if [ -n "$pid" ] && [ -d "/proc/$pid/net" ]; then
		if [ ! -e "/proc/$pid/net/$file" ]; then
			HL_READ_ERR="no /proc/net/$file in $ns"
			return 1
		fi
		mapfile -t lines_ <"/proc/$pid/net/$file" || { HL_READ_ERR="cannot read /proc/net/$file in $ns"; return 1; }
	else
		local raw
		raw=$(timeout 60 ip netns exec "$ns" cat "/proc/net/$file" 2>&1) || { HL_READ_ERR=$raw; return 1; }
		[ -z "$raw" ] || mapfile -t lines_ <<<"$raw"
	fi
}

# --- expectations -------------------------------------------------------------------------

# exp_key VAR LINE / exp_key_t: VAR = LINE with its timeout (first field) replaced by T;
# EXP_T = the timeout.
exp_key() {
	local -n k_=$1
	if [[ $2 =~ ^(-?[0-9]+)\ (.*)$ ]]; then
		EXP_T=${BASH_REMATCH[1]}
		k_="T ${BASH_REMATCH[2]}"
	else
		EXP_T="?"
		k_=$2
	fi
}

# hl_set_compare WHAT REF_LABEL OURS_LABEL TOL: compares the assoc arrays HL_R and HL_O
# (key -> timeouts, space-separated, one per line with that key); prints the differences.
hl_set_compare() {
	local what=$1 rl=$2 ol=$3 tol=$4 k rc=0 r o i
	local -a rt ot
	for k in "${!HL_R[@]}"; do
		if [ -z "${HL_O[$k]+x}" ]; then
			echo "# - $k   (only in $rl${what:+, $what})"
			rc=1
			continue
		fi
		read -r -a rt <<<"${HL_R[$k]}"
		read -r -a ot <<<"${HL_O[$k]}"
		if [ "${#rt[@]}" -ne "${#ot[@]}" ]; then
			echo "# ! $k   (${#rt[@]} times in $rl, ${#ot[@]} in $ol)"
			rc=1
			continue
		fi
		[ "$tol" = - ] && continue
		for i in "${!rt[@]}"; do
			r=${rt[$i]} o=${ot[$i]}
			if ! [[ $r =~ ^-?[0-9]+$ && $o =~ ^-?[0-9]+$ ]] || ((r - o > tol || o - r > tol)); then
				echo "# timeout $r s ($rl) vs $o s ($ol): $k"
				rc=1
			fi
		done
	done
	for k in "${!HL_O[@]}"; do
		[ -n "${HL_R[$k]+x}" ] || { echo "# + $k   (only in $ol${what:+, $what})"; rc=1; }
	done
	return "$rc"
}

# exp_compare NS [nohelper]: see the header (nohelper: all but the last field, the helper's
# name, and no timeouts). nf_conntrack's lines go to the snapshot exp_ref reads.
EXP_SNAP_NS=() EXP_SNAP_T=() EXP_SNAP_L=()
exp_compare() {
	local ns=$1 mode=${2:-} line k rc=0 keep tol=$RCT_DIFF_TOLERANCE
	local -a ref ours
	local -A HL_R=() HL_O=()
	if ! hl_read ref "$ns" nf_conntrack_expect; then
		echo "# exp_compare $ns: $HL_READ_ERR"
		return 1
	fi
	for line in "${ref[@]}"; do
		exp_key k "$line"
		if [ -z "$mode" ]; then
			EXP_SNAP_NS+=("$ns") EXP_SNAP_T+=("$EXP_T") EXP_SNAP_L+=("$k")
		else
			k=${k% *}
		fi
		HL_R[$k]+="$EXP_T "
	done
	EXP_SNAP_AT=$EPOCHREALTIME
	if ! hl_read ours "$ns" "$OURS_EXP"; then
		echo "# exp_compare $ns: $HL_READ_ERR; nf_conntrack_expect has ${#ref[@]} lines:"
		printf '#   %s\n' "${ref[@]}"
		return 1
	fi
	for line in "${ours[@]}"; do
		exp_key k "$line"
		[ -z "$mode" ] || k=${k% *}
		HL_O[$k]+="$EXP_T "
	done
	[ -z "$mode" ] || tol=-
	if ! hl_set_compare "" nf_conntrack_expect "$OURS_EXP" "$tol"; then
		echo "# expectations differ in $ns${mode:+ ($mode)}: nf_conntrack_expect ${#ref[@]} lines, $OURS_EXP ${#ours[@]}"
		keep=${CT_CASE:-exp}-$ns
		keep=$HL_LOG/${keep//[^A-Za-z0-9._-]/_}
		printf '%s\n' "${ref[@]}" >"$keep.expect.ref"
		printf '%s\n' "${ours[@]}" >"$keep.expect.ours"
		echo "# kept: $keep.expect.{ref,ours}"
		rc=1
	fi
	return "$rc"
}

# exp_tables [WHEN]: exp_compare in every namespace of the case (a check each); the
# snapshot for exp_ref is nf_conntrack_expect as these comparisons read it.
exp_tables() {
	local when=${1:-} ns
	EXP_SNAP_NS=() EXP_SNAP_T=() EXP_SNAP_L=()
	for ns in $HL_NS; do
		check "$CT_CASE:${when:+ $when:} $ns: $OURS_EXP = nf_conntrack_expect" exp_compare "$ns"
	done
}

exp_show() {
	local i n=0
	for i in "${!EXP_SNAP_L[@]}"; do
		[ "${EXP_SNAP_NS[$i]}" = "$1" ] || continue
		n=$((n + 1))
		echo "#   ${EXP_SNAP_L[$i]/#T /${EXP_SNAP_T[$i]} }"
	done
	[ "$n" -gt 0 ] || echo "#   (none)"
}

exp_ref() {
	local ns=$1 what=$2 count=$3 re=$4 timeout=${5:-} n=0 i bad='' tmin
	for i in "${!EXP_SNAP_L[@]}"; do
		[ "${EXP_SNAP_NS[$i]}" = "$ns" ] && [[ ${EXP_SNAP_L[$i]} =~ $re ]] && n=$((n + 1))
	done
	if [ "$n" = "$count" ]; then
		t_ok "$CT_CASE: reference: $ns: $what"
	else
		t_fail "$CT_CASE: reference: $ns: $what" "got '$n', want '$count'"
		echo "# nf_conntrack_expect in $ns:"
		exp_show "$ns"
		echo "#   (wanted: $re)"
	fi
	[ -n "$timeout" ] || return 0
	# Made at most (whole seconds since EXP_T0, rounded up) ago.
	tmin=$((timeout - (${EXP_SNAP_AT%.*} - ${EXP_T0%.*} + 1) - 1))
	for i in "${!EXP_SNAP_L[@]}"; do
		if [ "${EXP_SNAP_NS[$i]}" = "$ns" ] && [[ ${EXP_SNAP_L[$i]} =~ $re ]]; then
			[ "${EXP_SNAP_T[$i]}" -ge "$tmin" ] 2>/dev/null && [ "${EXP_SNAP_T[$i]}" -le "$timeout" ] || bad="$bad ${EXP_SNAP_T[$i]}"
		fi
	done
	if [ -z "$bad" ]; then
		t_ok "$CT_CASE: reference: $ns: $what: timeout of a $timeout s expectation"
	else
		t_fail "$CT_CASE: reference: $ns: $what: timeout of a $timeout s expectation" "got$bad, want $tmin..$timeout"
	fi
}

# --- tables -------------------------------------------------------------------------------

# hl_ct_compare NS: the tables compared as ct_compare (difflib.sh) does, read and compared
# by bash alone; on any difference ct_compare itself reads them again and reports (diff,
# kept files). nf_conntrack's lines (normalised, ct_normalise's format) go to
# CT_SNAP[NS] for ct_ref.
declare -A CT_SNAP
hl_ct_compare() {
	local ns=$1 line k
	local -a ref ours
	local -A HL_R=() HL_O=()
	hl_read ref "$ns" nf_conntrack && hl_read ours "$ns" "$OURS" || { ct_compare "$ns"; return; }
	CT_SNAP[$ns]=
	for line in "${ref[@]}"; do
		ct_key k "$line"
		CT_SNAP[$ns]+="$k"$'\n'
		HL_R[$k]+="$EXP_T "
	done
	for line in "${ours[@]}"; do
		ct_key k "$line"
		HL_O[$k]+="$EXP_T "
	done
	hl_set_compare "" nf_conntrack "$OURS" "$RCT_DIFF_TOLERANCE" >/dev/null && return 0
	ct_compare "$ns"
}

# ct_key VAR LINE: ct_normalise's line (timeout T, no use=); EXP_T = the timeout.
ct_key() {
	local -n c_=$1
	local l=${2% use=*}
	if [[ $l =~ ^([^ ]+ +[^ ]+ +[^ ]+ +[^ ]+ )(-?[0-9]+)( .*)$ ]]; then
		EXP_T=${BASH_REMATCH[2]}
		c_="${BASH_REMATCH[1]}T${BASH_REMATCH[3]}"
	else
		EXP_T="?"
		c_=$l
	fi
}

# ct_ref NS WHAT COUNT ERE: in the snapshot of the last hl_ct_compare of NS, COUNT lines
# match ERE.
ct_ref() {
	local ns=$1 what=$2 count=$3 re=$4 n=0 line
	while IFS= read -r line; do
		[ -n "$line" ] && [[ $line =~ $re ]] && n=$((n + 1))
	done <<<"${CT_SNAP[$ns]:-}"
	if [ "$n" = "$count" ]; then
		t_ok "$CT_CASE: reference: $ns: $what"
	else
		t_fail "$CT_CASE: reference: $ns: $what" "got '$n', want '$count'"
		echo "# nf_conntrack in $ns:"
		printf '%s' "${CT_SNAP[$ns]:-}" | sed 's/^/#   /'
		echo "#   (wanted: $re)"
	fi
}

# hl_tables WHEN: hl_ct_compare in every namespace of the case, a check each.
hl_tables() {
	local ns
	for ns in $HL_NS; do
		check "$CT_CASE: $1: $ns: $OURS = nf_conntrack" hl_ct_compare "$ns"
	done
}

# exp_ref_none NS WHAT: nf_conntrack_expect of NS is empty in the snapshot.
exp_ref_none() { exp_ref "$1" "${2:-no expectation}" 0 .; }

# exp_addr VAR ADDR: ADDR as an ERE of exp_seq_show's output (IPv6 written out in full).
exp_addr() {
	local -n a_=$1
	case $2 in
	*:*) v6_full a_ "$2" ;;
	*) a_=${2//./\\.} ;;
	esac
}

exp_re() {
	local -n r_=$1
	local proto=$2 s d l3 pn
	exp_addr s "$3"
	exp_addr d "$4"
	case $3 in *:*) l3=10 ;; *) l3=2 ;; esac
	case $proto in tcp) pn=6 ;; udp) pn=17 ;; esac
	r_="^T l3proto = $l3 proto=$pn src=$s dst=$d sport=0 dport=$5 $6$"
}

# --- statistics ---------------------------------------------------------------------------

# st_read VAR NS FILE: VAR = "NEW CREATE DELETE" summed over the CPUs, or "unreadable" or
# "no-expect-columns". (No subshell: a fork costs a lot in UML.)
st_read() {
	local -n v_=$1
	local ns=$2 file=$3 i n=0 c=0 x=0 in=-1 ic=-1 id=-1
	local -a rows header row
	hl_read rows "$ns" "stat/$file" || { v_=unreadable; return; }
	if [ "${#rows[@]}" -lt 2 ]; then v_=unreadable; return; fi
	read -r -a header <<<"${rows[0]}"
	for i in "${!header[@]}"; do
		case ${header[$i]} in
		expect_new) in=$i ;;
		expect_create) ic=$i ;;
		expect_delete) id=$i ;;
		esac
	done
	if [ "$in" -lt 0 ] || [ "$ic" -lt 0 ] || [ "$id" -lt 0 ]; then v_=no-expect-columns; return; fi
	for i in "${rows[@]:1}"; do
		read -r -a row <<<"$i"
		n=$((n + 16#${row[$in]})) c=$((c + 16#${row[$ic]})) x=$((x + 16#${row[$id]}))
	done
	v_="$n $c $x"
}

declare -A ST0_REF ST0_OURS
st_begin() {
	local ns
	for ns in $HL_NS; do
		st_read "ST0_REF[$ns]" "$ns" nf_conntrack
		st_read "ST0_OURS[$ns]" "$ns" "$OURS_STAT"
	done
}

# st_delta VAR NOW THEN: VAR = the "N C D" differences, or the unreadable one's word.
st_delta() {
	local -n d_=$1
	local -a a b
	read -r -a a <<<"$2"
	read -r -a b <<<"$3"
	if [ "${#a[@]}" -ne 3 ]; then d_=$2; return; fi
	if [ "${#b[@]}" -ne 3 ]; then d_=$3; return; fi
	d_="$((a[0] - b[0])) $((a[1] - b[1])) $((a[2] - b[2]))"
}

st_check() {
	local what=$1 want=$2 ns dref dours now
	shift 2
	for ns in ${*:-$HL_NS}; do
		st_read now "$ns" nf_conntrack
		st_delta dref "$now" "${ST0_REF[$ns]:-}"
		st_read now "$ns" "$OURS_STAT"
		st_delta dours "$now" "${ST0_OURS[$ns]:-}"
		check_eq "$CT_CASE: reference: $ns: $what: expect_new expect_create expect_delete moved by" "$dref" "$want"
		check_eq "$CT_CASE: $ns: $what: $OURS_STAT expect_new expect_create expect_delete moved as nf_conntrack's" "$dours" "$dref"
	done
}

# --- processes ----------------------------------------------------------------------------

# shellcheck disable=SC2016
HL_PY='
import ftplib, ipaddress, os, signal, socket, struct, sys, time

ALLOWED = tuple(ipaddress.ip_network(n) for n in
                ("10.77.0.0/24", "fd77::/64", "10.78.1.0/24", "10.78.2.0/24",
                 "fd78:1::/64", "fd78:2::/64"))

def addr(s):
    a = ipaddress.ip_address(s)
    if not any(a in n for n in ALLOWED):
        sys.exit("helperlib: refusing %s" % s)
    return a

def family(a):
    return socket.AF_INET6 if a.version == 6 else socket.AF_INET

def deadline(seconds):
    signal.signal(signal.SIGALRM, lambda *_: sys.exit("helperlib: %s: time limit reached" % sys.argv[1]))
    signal.alarm(int(seconds))

def ready(path):
    if path != "-":
        open(path, "w").close()

def hold(sync, info):
    """Says it holds (info: the data port) and waits for the release, a FIFO."""
    if sync == "-":
        return
    with open(os.path.join(sync, "info.tmp"), "w") as f:
        f.write(info)
    os.rename(os.path.join(sync, "info.tmp"), os.path.join(sync, "holding"))
    with open(os.path.join(sync, "release")) as f:
        f.read()

DATA = open("/tmp/rct-helper/ftp/data", "rb").read()

def ftp_server(bind, port, root, opts, limit, ready_path):
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler, ActiveDTP, PassiveDTP
    from pyftpdlib.servers import FTPServer
    a = addr(bind)
    deadline(limit)
    auth = DummyAuthorizer()
    auth.add_anonymous(root, perm="elradfmw")
    FTPHandler.authorizer = auth
    FTPHandler.timeout = 0   # no idle timeout: a held session may wait minutes
    PassiveDTP.timeout = 0
    ActiveDTP.timeout = 2    # a blocked active connection fails fast: 421
    for o in opts.split(","):
        if o.startswith("masq="):  # the address its 227 replies name
            FTPHandler.masquerade_address = str(addr(o[5:]))
        elif o == "foreign":  # PORT and EPRT may name another address than the client
            FTPHandler.permit_foreign_addresses = True
    s = FTPServer((str(a), int(port)), FTPHandler)
    ready(ready_path)
    s.serve_forever(timeout=1, handle_exit=True)

def port_cmd(mode, host, port):
    a = ipaddress.ip_address(host)
    if mode.startswith("port"):
        return "PORT %s,%d,%d" % (str(a).replace(".", ","), port >> 8, port & 255)
    return "EPRT |%d|%s|%d|" % (1 if a.version == 4 else 2, a, port)

def retr(f, conn):
    f.putcmd("RETR data")
    f.getresp()  # 125 or 150; an error reply raises
    got = b""
    while True:
        d = conn.recv(65536)
        if not d:
            break
        got += d
    conn.close()
    f.voidresp()
    if got != DATA:
        sys.exit("helperlib: ftp: %d bytes, not the %d of the file" % (len(got), len(DATA)))

def ftp_login(dst, port):
    f = ftplib.FTP()
    f.connect(str(addr(dst)), int(port), timeout=10)
    f.login()
    f.voidcmd("TYPE I")
    return f

def ftp_client(dst, port, mode, sync, arg, limit):
    deadline(limit)
    f = ftp_login(dst, port)
    local = f.sock.getsockname()[0]
    if mode in ("pasv", "epsv"):
        r = f.sendcmd(mode.upper())
        if mode == "pasv":
            host, dport = ftplib.parse227(r)
        else:
            host, dport = ftplib.parse229(r, f.sock.getpeername())
        hold(sync, "%d" % dport)
        retr(f, socket.create_connection((host, dport), timeout=10))
    elif mode in ("port", "eprt"):
        a = ipaddress.ip_address(local)
        l = socket.socket(family(a), socket.SOCK_STREAM)
        l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        l.bind((local, int(arg)))
        l.listen(1)
        l.settimeout(10)
        cmd = port_cmd(mode, local, l.getsockname()[1])
        if sync != "-":
            # The server cannot connect (blocked): it gives up, the expectation stays.
            try:
                f.sendcmd(cmd)
                sys.exit("helperlib: ftp: the blocked data connection was made")
            except ftplib.error_temp:
                pass
            hold(sync, "%d" % l.getsockname()[1])
        f.sendcmd(cmd)  # 200 once the server is connected
        c, _ = l.accept()
        retr(f, c)
    elif mode in ("port-foreign", "eprt-foreign"):
        try:
            r = f.sendcmd(port_cmd(mode, str(addr(arg)), 40999))
            sys.exit("helperlib: ftp: %s accepted: %s" % (mode, r))
        except ftplib.error_perm:
            pass
    elif mode == "pasv-only":
        host, dport = ftplib.parse227(f.sendcmd("PASV"))
        if host != str(addr(arg)):
            sys.exit("helperlib: ftp: the 227 reply names %s, not %s" % (host, arg))
    else:
        sys.exit("helperlib: ftp: unknown mode " + mode)
    f.quit()
    time.sleep(0.3)  # the last ACKs of the closing exchange

def udp_sink(bind, port, limit, ready_path):
    a = addr(bind)
    deadline(limit)
    s = socket.socket(family(a), socket.SOCK_DGRAM)
    s.bind((str(a), int(port)))
    ready(ready_path)
    while True:
        s.recvfrom(2048)

def rrq_hold(dst, sport, dport, sync, limit, keepalive):
    """A read request; then, while it holds, an ACK of block 0 to the same port every
    keepalive seconds (if not 0): no helper acts on it, but it keeps the request s entry,
    and so its expectation, alive beyond an unreplied UDP entry s 30 s."""
    import threading
    a = addr(dst)
    deadline(limit)
    s = socket.socket(family(a), socket.SOCK_DGRAM)
    s.bind(("::" if a.version == 6 else "0.0.0.0", int(sport)))
    s.sendto(struct.pack("!H", 1) + b"rct-helper\0octet\0", (str(a), int(dport)))
    def refresh():
        while True:
            time.sleep(float(keepalive))
            s.sendto(struct.pack("!HH", 4, 0), (str(a), int(dport)))
    if float(keepalive) > 0:
        threading.Thread(target=refresh, daemon=True).start()
    hold(sync, sport)
    s.settimeout(10)
    while True:
        data, peer = s.recvfrom(2048)
        if ipaddress.ip_address(peer[0]) == a and data[:4] == struct.pack("!HH", 3, 1):
            break
    s.sendto(struct.pack("!HH", 4, 1), peer)

def data_from(bind, sport, dst, dport, limit):
    a = addr(dst)
    deadline(limit)
    s = socket.socket(family(a), socket.SOCK_DGRAM)
    s.bind((str(addr(bind)), int(sport)))
    s.settimeout(5)
    s.sendto(struct.pack("!HH", 3, 1) + b"rct", (str(a), int(dport)))
    data, peer = s.recvfrom(2048)
    if data != struct.pack("!HH", 4, 1):
        sys.exit("helperlib: tftp: no ACK of block 1")

roles = {"ftp-server": ftp_server, "ftp-client": ftp_client, "udp-sink": udp_sink,
         "rrq-hold": rrq_hold, "data-from": data_from}
roles[sys.argv[1]](*sys.argv[2:])
'

hl_py() { # NS ROLE ARGS...
	local ns=$1
	shift
	ip netns exec "$ns" "$CT_PY_BIN" -c "$HL_PY" "$@"
}

# hl_bg NAME CMD...: CMD (an external command: the background job execs it, so that its
# pid is the command's) in the background, output to $HL_LOG/CASE-NAME.log; its pid is
# remembered for hl_kill_all (HL_BG_PID).
hl_bg() {
	local name=$1 log
	shift
	log=$HL_LOG/${CT_CASE//[^A-Za-z0-9._-]/_}-$name.log
	"$@" >>"$log" 2>&1 &
	HL_BG_PID=$!
	HL_PIDS+=("$HL_BG_PID")
}

# hl_wait_file FILE PID [SECONDS=20]: FILE exists (true), or PID ended or time is up (false).
hl_wait_file() {
	local f=$1 pid=$2 n=$((${3:-20} * 20)) i
	for ((i = 0; i < n; i++)); do
		[ -e "$f" ] && return 0
		kill -0 "$pid" 2>/dev/null || { [ -e "$f" ]; return; }
		nsleep 0.05
	done
	return 1
}

# hl_server NAME NS ROLE ARGS...: a server role with a ready file; returns once it is ready.
hl_server() {
	local name=$1 ns=$2 ready
	shift 2
	ready=$HL_DIR/ready.$RANDOM$RANDOM
	hl_bg "$name" "$HL_IP" netns exec "$ns" "$CT_PY_BIN" -c "$HL_PY" "$@" "$ready"
	if hl_wait_file "$ready" "$HL_BG_PID" 30; then
		rm -f "$ready"
		return 0
	fi
	echo "# helperlib: server $name in $ns did not start (log: $HL_LOG)" >&2
	return 1
}

hl_ftpd() {
	local ns=$1 bind=$2 port=${3:-21} opts=${4:--}
	hl_server "ftpd-$port" "$ns" ftp-server "$bind" "$port" "$HL_DIR/ftp" "$opts" "${HL_LIMIT:-120}"
}

hl_udp_sink() {
	hl_server "sink-$3" "$1" udp-sink "$2" "$3" "${HL_LIMIT:-120}"
}

hl_tftpd() {
	local ns=$1 bind=$2 a
	case $bind in *:*) a="[$bind]:69" ;; *) a="$bind:69" ;; esac
	# Foreground (-L) standalone (-l) server, chrooted (-s) in its directory, files may be
	# created (-c); the child answering a request runs as nobody.
	hl_bg tftpd "$HL_IP" netns exec "$ns" /usr/sbin/in.tftpd -L -l -a "$a" -c -s "$HL_DIR/tftp" -v
	# No ready signal: wait until the socket is bound.
	local i
	for ((i = 0; i < 100; i++)); do
		ip netns exec "$ns" ss -Hlun "sport = :69" 2>/dev/null | grep -q . && return 0
		nsleep 0.1
	done
	echo "# helperlib: in.tftpd in $ns is not listening" >&2
	return 1
}

# hl_tftp NS DST get|put
HL_PUT_N=0
hl_tftp() {
	local ns=$1 dst=$2 op=$3 fam=-4 out
	case $dst in *:*) fam=-6 ;; esac
	out=$HL_DIR/tftp-got.$RANDOM
	if [ "$op" = get ]; then
		timeout 30 ip netns exec "$ns" tftp "$fam" -m octet "$dst" -c get data "$out" || return 1
		cmp -s "$out" "$HL_DIR/tftp/data" || { echo "# tftp get: wrong data" >&2; return 1; }
		rm -f "$out"
	else
		HL_PUT_N=$((HL_PUT_N + 1))
		timeout 30 ip netns exec "$ns" tftp "$fam" -m octet "$dst" -c put "$HL_DIR/ftp/data" "up-$HL_PUT_N" || return 1
		nsleep 0.3
		cmp -s "$HL_DIR/tftp/up-$HL_PUT_N" "$HL_DIR/ftp/data" || { echo "# tftp put: wrong data" >&2; return 1; }
	fi
}

hl_curl() {
	local ns=$1 url=$2 out
	shift 2
	out=$HL_DIR/curl-got.$RANDOM
	timeout 30 ip netns exec "$ns" curl -sS --max-time 20 -o "$out" "$@" "$url" || return 1
	cmp -s "$out" "$HL_DIR/ftp/data" || { echo "# curl $*: wrong data" >&2; return 1; }
	rm -f "$out"
	nsleep 0.3 # the last ACKs of the closing exchanges
}

hl_ftp_cmd() {
	local ns=$1 dst=$2 port=$3 mode=$4 arg=$5
	hl_py "$ns" ftp-client "$dst" "$port" "$mode" - "$arg" 30
}

# hl_ftp_hold NS DST PORT MODE [BINDPORT=0]: see the header. Sets HL_HOLD_INFO and
# HL_HOLD_PID; false if the client did not come to hold.
HL_SYNC=
hl_ftp_hold() {
	local ns=$1 dst=$2 port=$3 mode=$4 bport=${5:-0}
	hl_hold_start ftp-client "$ns" ftp-client "$dst" "$port" "$mode" SYNC "$bport" "${HL_LIMIT:-120}"
}

hl_rrq_hold() {
	local ns=$1 dst=$2 sport=$3 port=${4:-69} keepalive=${5:-0}
	hl_hold_start rrq "$ns" rrq-hold "$dst" "$sport" "$port" SYNC "${HL_LIMIT:-120}" "$keepalive"
}

# hl_hold_start NAME NS ROLE ARGS... (SYNC in ARGS: replaced by the sync directory)
hl_hold_start() {
	local name=$1 ns=$2 a
	shift 2
	local -a cmd=("$HL_IP" netns exec "$ns" "$CT_PY_BIN" -c "$HL_PY")
	HL_SYNC=$(mktemp -d "$HL_DIR/sync.XXXXXX")
	mkfifo "$HL_SYNC/release"
	for a in "$@"; do [ "$a" = SYNC ] && cmd+=("$HL_SYNC") || cmd+=("$a"); done
	hl_bg "$name" "${cmd[@]}"
	HL_HOLD_PID=$HL_BG_PID
	HL_HOLD_INFO=
	if hl_wait_file "$HL_SYNC/holding" "$HL_HOLD_PID" 30; then
		read -r HL_HOLD_INFO <"$HL_SYNC/holding" || true
		return 0
	fi
	echo "# helperlib: $name did not come to hold (log: $HL_LOG)" >&2
	return 1
}

# hl_release: lets the held client go on, and waits for it.
hl_release() {
	local rc=0
	[ -n "$HL_SYNC" ] || return 1
	if kill -0 "$HL_HOLD_PID" 2>/dev/null; then
		echo >"$HL_SYNC/release" &
		local w=$!
		wait "$HL_HOLD_PID" || rc=1
		kill "$w" 2>/dev/null
		wait "$w" 2>/dev/null
	else
		wait "$HL_HOLD_PID" || rc=1
	fi
	rm -rf "$HL_SYNC"
	HL_SYNC=
	return "$rc"
}

hl_data_from() {
	hl_py "$1" data-from "$2" "$3" "$4" "$5" 20
}

# hl_kill_all: ends every background process of the case.
hl_kill_all() {
	local p
	for p in "${HL_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${HL_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	HL_PIDS=()
	rm -rf "$HL_DIR"/sync.*
	HL_SYNC=
	return 0
}

# hl_case NAME TOPOLOGY (pair|router): true when selected; fresh namespaces, nft helper
# rules (unless HL_NO_NFT=1), HL_NS set.
hl_case() {
	local name=$1 topo=$2
	hl_kill_all
	hl_sleepers_kill
	if [ "$topo" = pair ]; then
		run_case "$name" || return 1
		HL_NS="$NS_A $NS_B"
	else
		nat_run_case "$name" || return 1
		HL_NS=$NAT_ALL
	fi
	hl_sleepers $HL_NS
	EXP_T0=$EPOCHREALTIME
	TRAFFIC_T0=$EPOCHREALTIME
	if [ "${HL_NO_NFT:-}" != 1 ] && ! hl_nft_all; then
		t_fail "$name: nft helper rules"
		return 1
	fi
}

hl_case_end() {
	hl_kill_all
	hl_sleepers_kill
	case_end
}
