// SPDX-License-Identifier: GPL-2.0

//! The FTP helper's protocol part: finding PORT, EPRT, 227 and 229 in the control connection
//! and the per-direction record of where lines start.
//!
//! C source: [`net/netfilter/nf_conntrack_ftp.c`](srctree/net/netfilter/nf_conntrack_ftp.c)
//! (`help`, `find_pattern`, `try_number`, `try_rfc959`, `try_rfc1123`, `try_eprt`,
//! `try_epsv_response`, `get_port`, `find_nl_seq`, `update_nl_seq`, `nf_ct_ftp_from_nlattr`),
//! with `in4_pton` and `in6_pton` from [`net/core/utils.c`](srctree/net/core/utils.c).
//! C headers: [`include/linux/netfilter/nf_conntrack_ftp.h`](srctree/include/linux/netfilter/nf_conntrack_ftp.h),
//! [`include/uapi/linux/netfilter/nf_conntrack_ftp.h`](srctree/include/uapi/linux/netfilter/nf_conntrack_ftp.h).
//!
//! Pure `core` code: [`help`] takes the TCP sequence number and payload of a packet and says
//! what 6.12's `help()` would do with it; creating the expectation is the caller's. Every
//! quirk of 6.12's parsers is kept (numbers wrap instead of being range checked, a PORT
//! command must end in `\r`, a segment that is a prefix of a pattern is dropped), since the
//! packets this helper drops or lets through must be the same as nf_conntrack's.

use crate::proto::tuple::{Addr, Dir, Tuple, IPPROTO_TCP, L3, L4};

/// `NF_CT_FTP_SEQ_PICKUP`: take the next packet of this direction as starting a line, even
/// if its sequence number is not one recorded. Set for connections injected by ctnetlink.
pub(crate) const NF_CT_FTP_SEQ_PICKUP: u16 = 1 << 0;

/// `NUM_SEQ_TO_REMEMBER`: line starts recorded per direction.
pub(crate) const NUM_SEQ_TO_REMEMBER: usize = 2;

/// `FTP_PORT`, the helper's default port.
pub(crate) const FTP_PORT: u16 = 21;

/// `enum nf_ct_ftp_type` (userspace ABI): what kind of command announced the data connection.
/// The NAT helper rewrites each in its own syntax.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(crate) enum FtpType {
    /// `NF_CT_FTP_PORT`: PORT command from the client.
    Port = 0,
    /// `NF_CT_FTP_PASV`: 227 reply to PASV from the server.
    Pasv = 1,
    /// `NF_CT_FTP_EPRT`: EPRT command from the client.
    Eprt = 2,
    /// `NF_CT_FTP_EPSV`: 229 reply to EPSV from the server.
    Epsv = 3,
}

/// `struct nf_ct_ftp_master`: the helper's per-connection data.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct FtpState {
    /// `seq_aft_nl`: per direction, sequence numbers just after a `\n`.
    pub(crate) seq_aft_nl: [[u32; NUM_SEQ_TO_REMEMBER]; 2],
    /// `seq_aft_nl_num`: how many of `seq_aft_nl` are set, per direction.
    pub(crate) seq_aft_nl_num: [u16; 2],
    /// `flags`: [`NF_CT_FTP_SEQ_PICKUP`] per direction.
    pub(crate) flags: [u16; 2],
}

impl FtpState {
    /// `nf_ct_ftp_from_nlattr`: a connection injected from userspace (conntrackd failover)
    /// has no record of line starts, so the next packet of each direction is parsed anyway.
    pub(crate) fn pickup(&mut self) {
        for f in &mut self.flags {
            *f |= NF_CT_FTP_SEQ_PICKUP;
        }
    }

    /// The recorded line starts of `dir`.
    fn recorded(&self, dir: Dir) -> &[u32] {
        let d = dir as usize;
        // Never above NUM_SEQ_TO_REMEMBER unless someone wrote it so; then all slots count.
        let num = usize::from(self.seq_aft_nl_num.get(d).copied().unwrap_or(0));
        self.seq_aft_nl
            .get(d)
            .and_then(|s| s.get(..num.min(NUM_SEQ_TO_REMEMBER)))
            .unwrap_or(&[])
    }

    /// `find_nl_seq`: whether `seq` is a recorded line start of `dir`.
    pub(crate) fn find_nl_seq(&self, seq: u32, dir: Dir) -> bool {
        self.recorded(dir).contains(&seq)
    }

    /// `update_nl_seq`: records `nl_seq`, the sequence number after a packet of `dir` that
    /// ended in `\n`. Once both slots are taken, it replaces the older one, and only if
    /// `nl_seq` is after it.
    pub(crate) fn update_nl_seq(&mut self, nl_seq: u32, dir: Dir) {
        if self.find_nl_seq(nl_seq, dir) {
            return;
        }
        let d = dir as usize;
        let (Some(seqs), Some(num)) = (self.seq_aft_nl.get_mut(d), self.seq_aft_nl_num.get_mut(d))
        else {
            return;
        };
        if let Some(slot) = seqs.get_mut(usize::from(*num)) {
            *slot = nl_seq;
            *num += 1;
            return;
        }
        let [a, b] = seqs;
        let oldest = if seq_before(*a, *b) { a } else { b };
        if seq_before(*oldest, nl_seq) {
            *oldest = nl_seq;
        }
    }
}

/// `before()` of `net/tcp.h`: `a` is earlier than `b` in sequence space.
fn seq_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// The parts of `struct nf_conntrack_man` the parsers fill: the family (which they read),
/// the address and the port (host byte order).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct FtpCmd {
    /// `l3num`: the control connection's family; EPRT must name the same one.
    pub(crate) l3: L3,
    /// `u3`: all 16 bytes. IPv4 forms (PORT, 227, EPRT `|1|`) write only the first 4, even
    /// on an IPv6 connection.
    pub(crate) u3: Addr,
    /// `u.tcp.port`.
    pub(crate) port: u16,
}

/// A `getnum` parser: `(data, cmd, term, offset)` to the length matched, `None` for C's 0.
/// `offset` is `*numoff`, which `try_rfc1123` moves to where the numbers start.
pub(crate) type GetNum = fn(&[u8], &mut FtpCmd, u8, &mut usize) -> Option<usize>;

/// `try_number`: `N` decimal numbers separated by `sep`, then `term` (or, with `term` 0,
/// any other character). Returns the numbers and the terminator's offset.
///
/// As in 6.12, numbers wrap at 2^32, empty numbers count as 0, and running out of data
/// before the terminator fails.
pub(crate) fn try_number<const N: usize>(
    data: &[u8],
    sep: u8,
    term: u8,
) -> Option<([u32; N], usize)> {
    let mut array = [0u32; N];
    let mut i = 0;
    for (len, &c) in data.iter().enumerate() {
        let Some(n) = array.get_mut(i) else {
            // More separators than numbers.
            return None;
        };
        if c.is_ascii_digit() {
            *n = n.wrapping_mul(10).wrapping_add(u32::from(c - b'0'));
        } else if c == sep {
            i += 1;
        } else {
            // Unexpected character: the end if it is the terminator and all are there.
            return ((c == term || term == 0) && i + 1 == N).then_some((array, len));
        }
    }
    None
}

/// The IPv4 address of `h1..h4` as `try_rfc959` and `try_eprt` assemble it: shifted and
/// ORed, so that a number over 255 spills into its neighbour's bits.
fn assemble_ip(a: [u32; 4]) -> [u8; 4] {
    let [a0, a1, a2, a3] = a;
    ((a0 << 24) | (a1 << 16) | (a2 << 8) | a3).to_be_bytes()
}

/// Writes an IPv4 address into the first 4 bytes of `u3`, as `cmd->u3.ip = ...` does.
fn set_ip(u3: &mut Addr, ip: [u8; 4]) {
    for (dst, src) in u3.0.iter_mut().zip(ip) {
        *dst = src;
    }
}

/// `try_rfc959`: `h1,h2,h3,h4,p1,p2` then `term`. The port is `p1 << 8 | p2` truncated to
/// 16 bits; port 0 is accepted.
pub(crate) fn try_rfc959(
    data: &[u8],
    cmd: &mut FtpCmd,
    term: u8,
    _offset: &mut usize,
) -> Option<usize> {
    let ([a0, a1, a2, a3, p1, p2], len) = try_number::<6>(data, b',', term)?;
    set_ip(&mut cmd.u3, assemble_ip([a0, a1, a2, a3]));
    // `htons()` of an int: the low 16 bits.
    cmd.port = ((p1 << 8) | p2) as u16;
    Some(len)
}

/// `try_rfc1123`: the 227 reply. RFC 1123 says to scan for the first digit, so whatever
/// precedes it is skipped (and added to `offset`); the numbers may end in any character.
pub(crate) fn try_rfc1123(
    data: &[u8],
    cmd: &mut FtpCmd,
    _term: u8,
    offset: &mut usize,
) -> Option<usize> {
    let i = data.iter().position(u8::is_ascii_digit)?;
    *offset = offset.wrapping_add(i);
    try_rfc959(data.get(i..)?, cmd, 0, offset)
}

/// `get_port`: a decimal port from `start` up to `delim`. Returns the offset after the
/// delimiter. The port wraps at 2^16 and 0 (or no digits) fails.
pub(crate) fn get_port(data: &[u8], start: usize, delim: u8, port: &mut u16) -> Option<usize> {
    let mut tmp: u16 = 0;
    for (i, &c) in data.iter().enumerate().skip(start) {
        if c == delim {
            if tmp == 0 {
                return None;
            }
            *port = tmp;
            return i.checked_add(1);
        } else if c.is_ascii_digit() {
            tmp = tmp.wrapping_mul(10).wrapping_add(u16::from(c - b'0'));
        } else {
            return None;
        }
    }
    None
}

/// A delimiter `try_eprt` and `try_epsv_response` accept: printable ASCII but no digit.
fn eprt_delim(c: u8) -> bool {
    (33..=126).contains(&c) && !c.is_ascii_digit()
}

/// `get_ipv6_addr`: `in6_pton` on at most 0xffff bytes; the length up to where the address
/// ended (normally at `term`), and the address.
fn get_ipv6_addr(src: &[u8], term: u8) -> Option<(usize, [u8; 16])> {
    let src = src.get(..src.len().min(0xffff)).unwrap_or(src);
    in6_pton(src, term).map(|(a, end)| (end, a))
}

/// `try_eprt`: `<d>1<d>h1.h2.h3.h4<d>port<d>` or `<d>2<d>ipv6<d>port<d>` with any printable
/// non-digit delimiter `<d>`. The protocol number must be the control connection's family;
/// IPv4 is read by `try_number` (wrapping, empty numbers are 0), IPv6 by `in6_pton`. Returns
/// the length up to and including the last delimiter.
pub(crate) fn try_eprt(
    data: &[u8],
    cmd: &mut FtpCmd,
    _term: u8,
    _offset: &mut usize,
) -> Option<usize> {
    let [delim, proto, d2, ..] = *data else {
        return None;
    };
    // "too short": the C wants more than the three bytes of `|1|`.
    if data.len() <= 3 || !eprt_delim(delim) || d2 != delim {
        return None;
    }
    let want = match cmd.l3 {
        L3::Ipv4 => b'1',
        L3::Ipv6 => b'2',
    };
    if proto != want {
        return None;
    }
    let rest = data.get(3..)?;
    let length = if proto == b'1' {
        let (a, len) = try_number::<4>(rest, b'.', delim)?;
        set_ip(&mut cmd.u3, assemble_ip(a));
        len
    } else {
        let (len, a) = get_ipv6_addr(rest, delim)?;
        cmd.u3 = Addr(a);
        len
    };
    if length == 0 {
        return None;
    }
    // The port starts after the delimiter that ended the address (whatever ended it).
    let start = length.checked_add(4)?;
    get_port(data, start, delim, &mut cmd.port)
}

/// `try_epsv_response`: `<d><d><d>port<d>`, the address being the control connection's.
pub(crate) fn try_epsv_response(
    data: &[u8],
    cmd: &mut FtpCmd,
    _term: u8,
    _offset: &mut usize,
) -> Option<usize> {
    let [delim, d1, d2, ..] = *data else {
        return None;
    };
    if data.len() <= 3 || !eprt_delim(delim) || d1 != delim || d2 != delim {
        return None;
    }
    get_port(data, 3, delim, &mut cmd.port)
}

/// What `find_pattern` found.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Find {
    /// C's 1: the pattern and its numbers, at `off` for `len` bytes (`*numoff`, `*numlen`).
    Match {
        /// Offset of the numbers in the payload.
        off: usize,
        /// Their length.
        len: usize,
    },
    /// C's 0: not this pattern.
    NoMatch,
    /// C's -1: the payload is a prefix of the pattern, or the pattern is there but not what
    /// must follow it. The helper drops such packets.
    Partial,
}

/// `strncasecmp(a, b, n) == 0` over `a`'s bytes, for a pattern `b` without NUL and at least
/// as long: the kernel's `tolower` only maps non-ASCII letters to non-ASCII ones, and a NUL
/// in `a` never equals a pattern byte.
fn prefix_eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    b.get(..a.len()).is_some_and(|b| a.eq_ignore_ascii_case(b))
}

/// `find_pattern`: whether `data` starts with `pattern` (ignoring ASCII case), then after
/// the first `skip` (if `skip` is not 0) holds what `getnum` parses into `cmd`.
///
/// Anything may stand between the pattern and `skip` (`PORTX 1,2,3,4,5,6` matches). Data
/// no longer than the pattern is [`Find::Partial`] if it is a prefix of it.
pub(crate) fn find_pattern(
    data: &[u8],
    pattern: &[u8],
    skip: u8,
    term: u8,
    cmd: &mut FtpCmd,
    getnum: GetNum,
) -> Find {
    let plen = pattern.len();
    if data.len() <= plen {
        return if prefix_eq_ignore_case(data, pattern) {
            Find::Partial
        } else {
            Find::NoMatch
        };
    }
    if !data
        .get(..plen)
        .is_some_and(|d| prefix_eq_ignore_case(d, pattern))
    {
        return Find::NoMatch;
    }
    let mut i = plen;
    if skip != 0 {
        // No skip character: partial. As the last byte, it leaves no numbers: partial too.
        match data
            .get(plen..)
            .and_then(|d| d.iter().position(|&c| c == skip))
        {
            Some(k) => i = plen + k + 1,
            None => return Find::Partial,
        }
    }
    let mut off = i;
    match data.get(i..).and_then(|d| getnum(d, cmd, term, &mut off)) {
        Some(len) if len != 0 => Find::Match { off, len },
        _ => Find::Partial,
    }
}

/// One row of `search[][]`.
struct FtpSearch {
    pattern: &'static [u8],
    skip: u8,
    term: u8,
    ftptype: FtpType,
    getnum: GetNum,
    /// `nf_ct_helper_log`'s text for a partial match.
    partial: &'static str,
}

/// `search[dir][]`: PORT and EPRT from the client, 227 and 229 from the server.
const SEARCH: [[FtpSearch; 2]; 2] = [
    [
        FtpSearch {
            pattern: b"PORT",
            skip: b' ',
            term: b'\r',
            ftptype: FtpType::Port,
            getnum: try_rfc959,
            partial: "partial matching of `PORT'",
        },
        FtpSearch {
            pattern: b"EPRT",
            skip: b' ',
            term: b'\r',
            ftptype: FtpType::Eprt,
            getnum: try_eprt,
            partial: "partial matching of `EPRT'",
        },
    ],
    [
        FtpSearch {
            pattern: b"227 ",
            skip: 0,
            term: 0,
            ftptype: FtpType::Pasv,
            getnum: try_rfc1123,
            partial: "partial matching of `227 '",
        },
        FtpSearch {
            pattern: b"229 ",
            skip: b'(',
            term: b')',
            ftptype: FtpType::Epsv,
            getnum: try_epsv_response,
            partial: "partial matching of `229 '",
        },
    ],
];

/// The expectation `help()` initialises (`nf_ct_expect_init`): a TCP connection from `src`
/// (any port) to `dst` port `port`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct FtpExpect {
    /// Family: the control connection's.
    pub(crate) l3: L3,
    /// `ct->tuplehash[!dir].tuple.src.u3`.
    pub(crate) src: Addr,
    /// `ct->tuplehash[!dir].tuple.dst.u3`, or with `loose` the command's address when it
    /// differs from the sender's.
    pub(crate) dst: Addr,
    /// Destination port, from the command.
    pub(crate) port: u16,
}

impl FtpExpect {
    /// The expected tuple; the source port is 0 and left free by the mask.
    pub(crate) fn tuple(&self) -> Tuple {
        Tuple {
            l3: self.l3,
            proto: IPPROTO_TCP,
            src: self.src,
            dst: self.dst,
            l4: L4::Ports {
                src: 0,
                dst: self.port,
            },
        }
    }
}

/// A command or reply [`help`] found.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct FtpMatch {
    /// Which pattern matched, for the NAT helper (`search[dir][i].ftptype`).
    pub(crate) ftptype: FtpType,
    /// Offset of the numbers in the payload (`matchoff`).
    pub(crate) matchoff: usize,
    /// Their length (`matchlen`).
    pub(crate) matchlen: usize,
    /// The expectation to create; `None` when the command names an address other than its
    /// sender's and `loose` is off ("NOT RECORDING": accept, expect nothing).
    pub(crate) expect: Option<FtpExpect>,
    /// The sequence number for [`FtpState::update_nl_seq`] if the payload ended in `\n`;
    /// see [`FtpMatch::commit`].
    pub(crate) nl_seq: Option<u32>,
}

impl FtpMatch {
    /// The state update 6.12 makes at the end of this path. Call it, under the same lock as
    /// [`help`], once the expectation is allocated, whether or not it is then added: 6.12
    /// skips the update only when `nf_ct_expect_alloc` fails.
    pub(crate) fn commit(&self, state: &mut FtpState, dir: Dir) {
        if let Some(seq) = self.nl_seq {
            state.update_nl_seq(seq, dir);
        }
    }
}

/// What [`help`] says to do with a packet.
#[must_use]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum FtpOutcome {
    /// Accept; nothing to expect. The state is already updated.
    Accept,
    /// Drop the packet and log this text (`nf_ct_helper_log`), e.g.
    /// "partial matching of `PORT'". The state is left as it was.
    Drop(&'static str),
    /// A command or reply matched. 6.12 allocates an expectation (`nf_ct_expect_alloc`;
    /// failure: drop, log "cannot alloc expectation", no state update), then, if
    /// [`FtpMatch::expect`] is set, initialises it and hands it to the NAT hook or
    /// `nf_ct_expect_related` (failure: drop, log "cannot add expectation"); in every case
    /// after the allocation it calls [`FtpMatch::commit`].
    Match(FtpMatch),
}

/// `help()` of nf_conntrack_ftp once it has the TCP payload: looks for a PORT or EPRT
/// command (`dir` original) or a 227 or 229 reply (`dir` reply) at the start of `payload`,
/// if the packet starts a line, and keeps the record of line starts up to date.
///
/// `tcp_seq` is the packet's sequence number, `orig` and `reply` the control connection's
/// tuples, `loose` the module parameter. The caller must hold one lock over this and what
/// the outcome asks for (`nf_ftp_lock`).
///
/// The caller does what 6.12 does before: only packets with `ctinfo` `IP_CT_ESTABLISHED` or
/// `IP_CT_ESTABLISHED_REPLY` reach here ("until there's been traffic both ways, don't look
/// in packets"; a RELATED or NEW packet is accepted untouched), a packet whose TCP header
/// cannot be read is accepted, and one without payload is accepted (an empty `payload` here
/// does the same).
pub(crate) fn help(
    state: &mut FtpState,
    dir: Dir,
    tcp_seq: u32,
    payload: &[u8],
    orig: &Tuple,
    reply: &Tuple,
    loose: bool,
) -> FtpOutcome {
    let Some(&last) = payload.last() else {
        return FtpOutcome::Accept;
    };
    // `datalen` is an unsigned int: the sequence space wraps as it does.
    let seq = tcp_seq.wrapping_add(payload.len() as u32);
    let nl_seq = (last == b'\n').then_some(seq);
    let finish = |state: &mut FtpState| {
        if let Some(seq) = nl_seq {
            state.update_nl_seq(seq, dir);
        }
        FtpOutcome::Accept
    };

    if !state.find_nl_seq(tcp_seq, dir) {
        let flags = state.flags.get_mut(dir as usize);
        match flags {
            Some(f) if *f & NF_CT_FTP_SEQ_PICKUP != 0 => *f ^= NF_CT_FTP_SEQ_PICKUP,
            // Not at a line start: nothing to parse.
            _ => return finish(state),
        }
    }

    let (this, other) = match dir {
        Dir::Original => (orig, reply),
        Dir::Reply => (reply, orig),
    };
    // EPSV names no address: the sender's is expected.
    let mut cmd = FtpCmd {
        l3: orig.l3,
        u3: this.src,
        port: 0,
    };
    let Some(row) = SEARCH.get(dir as usize) else {
        return FtpOutcome::Accept;
    };
    let mut found = None;
    for s in row {
        match find_pattern(payload, s.pattern, s.skip, s.term, &mut cmd, s.getnum) {
            Find::NoMatch => {}
            // "We don't usually drop packets ... necessary for accurate tracking."
            Find::Partial => return FtpOutcome::Drop(s.partial),
            Find::Match { off, len } => {
                found = Some((s.ftptype, off, len));
                break;
            }
        }
    }
    let Some((ftptype, matchoff, matchlen)) = found else {
        return finish(state);
    };

    // The data connection comes the other way: `!dir`'s tuple.
    let mut dst = other.dst;
    let mut expect = true;
    // 6.12 compares the families too, but `cmd.l3num` is always the connection's.
    if cmd.u3 != this.src {
        // Only with `loose` may a command send the data connection elsewhere (a DMZ host
        // opening holes to internal networks otherwise).
        if loose {
            dst = cmd.u3;
        } else {
            expect = false;
        }
    }
    // `nf_ct_expect_init` copies 4 bytes of an IPv4 address and zeroes the rest.
    let norm = |a: Addr| match cmd.l3 {
        L3::Ipv4 => Addr::v4(a.ip4()),
        L3::Ipv6 => a,
    };
    FtpOutcome::Match(FtpMatch {
        ftptype,
        matchoff,
        matchlen,
        expect: expect.then(|| FtpExpect {
            l3: cmd.l3,
            src: norm(other.src),
            dst: norm(dst),
            port: cmd.port,
        }),
        nl_seq,
    })
}

// `xdigit2bin`'s classes (`IN6PTON_*` of net/core/utils.c).
const IN6PTON_XDIGIT: u32 = 0x0001_0000;
const IN6PTON_DIGIT: u32 = 0x0002_0000;
const IN6PTON_COLON_MASK: u32 = 0x0070_0000;
const IN6PTON_COLON_1: u32 = 0x0010_0000;
const IN6PTON_COLON_2: u32 = 0x0020_0000;
const IN6PTON_COLON_1_2: u32 = 0x0040_0000;
const IN6PTON_DOT: u32 = 0x0080_0000;
const IN6PTON_DELIM: u32 = 0x1000_0000;
const IN6PTON_NULL: u32 = 0x2000_0000;
const IN6PTON_UNKNOWN: u32 = 0x4000_0000;

/// `xdigit2bin` with a delimiter (never -1 here): the class of `c`, and a hex digit's value
/// in the low bits. NUL, like the end of the data, counts as the delimiter.
fn xdigit2bin(c: u8, delim: u8) -> u32 {
    if c == delim || c == 0 {
        return IN6PTON_DELIM;
    }
    if c == b':' {
        return IN6PTON_COLON_MASK;
    }
    if c == b'.' {
        return IN6PTON_DOT;
    }
    match (c as char).to_digit(16) {
        Some(v) if c.is_ascii_digit() => v | IN6PTON_XDIGIT | IN6PTON_DIGIT,
        Some(v) => v | IN6PTON_XDIGIT,
        None => IN6PTON_UNKNOWN,
    }
}

/// `in4_pton` with a delimiter: a dotted quad ended by `delim`, NUL, `:` or the end of
/// `src`. Returns the address and the offset where parsing stopped (`*end`).
///
/// Each number needs a digit and at most 255; leading zeros are free.
pub(crate) fn in4_pton(src: &[u8], delim: u8) -> Option<([u8; 4], usize)> {
    let mut dbuf = [0u8; 4];
    let mut i = 0usize;
    // As the C: the class bits ride along in `w`, so `w == 0` means "no digit yet".
    let mut w: u32 = 0;
    let mut s = 0usize;
    loop {
        let c = xdigit2bin(src.get(s).copied().unwrap_or(0), delim);
        if c & (IN6PTON_DIGIT | IN6PTON_DOT | IN6PTON_DELIM | IN6PTON_COLON_MASK) == 0 {
            return None;
        }
        if c & (IN6PTON_DOT | IN6PTON_DELIM | IN6PTON_COLON_MASK) != 0 {
            if w == 0 {
                return None;
            }
            *dbuf.get_mut(i)? = (w & 0xff) as u8;
            w = 0;
            i += 1;
            if c & (IN6PTON_DELIM | IN6PTON_COLON_MASK) != 0 {
                if i != 4 {
                    return None;
                }
                return Some((dbuf, s));
            }
        } else {
            w = w.wrapping_mul(10).wrapping_add(c);
            if w & 0xffff > 255 {
                return None;
            }
        }
        if i >= 4 {
            return None;
        }
        s += 1;
    }
}

/// `in6_pton` with a delimiter: an IPv6 address, `::` and a trailing dotted quad allowed,
/// ended by `delim`, NUL or the end of `src` (or by `:` right after a dotted quad). Returns
/// the address and the offset where parsing stopped (`*end`).
///
/// A literal port of the C state machine, quirks included: a group may have any number of
/// leading zeros, and a dotted quad may follow `::` anywhere the remaining room allows.
pub(crate) fn in6_pton(src: &[u8], delim: u8) -> Option<([u8; 16], usize)> {
    const LEN: usize = 16;
    let mut dbuf = [0u8; LEN];
    let mut d = 0usize;
    let mut dc: Option<usize> = None;
    let mut tok: Option<usize> = None;
    let mut state = IN6PTON_COLON_1_2 | IN6PTON_XDIGIT | IN6PTON_NULL;
    let mut w: u32 = 0;
    let mut s = 0usize;
    loop {
        let c = xdigit2bin(src.get(s).copied().unwrap_or(0), delim);
        if c & state == 0 {
            return None;
        }
        if c & (IN6PTON_DELIM | IN6PTON_COLON_MASK) != 0 {
            // One 16-bit word done.
            if state & IN6PTON_NULL == 0 {
                *dbuf.get_mut(d)? = (w >> 8) as u8;
                *dbuf.get_mut(d + 1)? = w as u8;
                d += 2;
            }
            w = 0;
            if c & IN6PTON_DELIM != 0 {
                break;
            }
            state = match state & IN6PTON_COLON_MASK {
                IN6PTON_COLON_2 => {
                    dc = Some(d);
                    if d >= LEN {
                        IN6PTON_XDIGIT | IN6PTON_DELIM | IN6PTON_NULL
                    } else {
                        IN6PTON_XDIGIT | IN6PTON_DELIM
                    }
                }
                x if x == IN6PTON_COLON_1 | IN6PTON_COLON_1_2 => IN6PTON_XDIGIT | IN6PTON_COLON_2,
                IN6PTON_COLON_1 => IN6PTON_XDIGIT,
                IN6PTON_COLON_1_2 => IN6PTON_COLON_2,
                _ => 0,
            };
            tok = Some(s + 1);
        } else if c & IN6PTON_DOT != 0 {
            let start = tok.unwrap_or(s);
            let (v4, end) = in4_pton(src.get(start..)?, delim)?;
            dbuf.get_mut(d..d + 4)?.copy_from_slice(&v4);
            d += 4;
            s = start + end;
            break;
        } else {
            w = (w << 4) | (c & 0xff);
            state = IN6PTON_COLON_1 | IN6PTON_DELIM;
            if w & 0xf000 == 0 {
                state |= IN6PTON_XDIGIT;
            }
            if dc.is_none() && d + 2 < LEN {
                state |= IN6PTON_COLON_1_2;
                state &= !IN6PTON_DELIM;
            }
            if d + 2 >= LEN {
                state &= !(IN6PTON_COLON_1 | IN6PTON_COLON_1_2);
            }
        }
        if (dc.is_some() && d + 4 < LEN) || d + 4 == LEN {
            state |= IN6PTON_DOT;
        }
        if d >= LEN {
            state &= !(IN6PTON_XDIGIT | IN6PTON_COLON_MASK);
        }
        s += 1;
    }

    let Some(dc) = dc else {
        // No `::`: the state machine only lets a full address end.
        return Some((dbuf, s));
    };
    // Move the words after `::` to the end and zero the gap, as the C's three loops.
    let mut dst = [0u8; LEN];
    let tail = dbuf.get(dc..d)?;
    let head = dbuf.get(..dc)?;
    // `d <= 16`, so the head and the tail never overlap.
    dst.get_mut(LEN.checked_sub(tail.len())?..)?
        .copy_from_slice(tail);
    dst.get_mut(..dc)?.copy_from_slice(head);
    Some((dst, s))
}
