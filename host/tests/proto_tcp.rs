// SPDX-License-Identifier: GPL-2.0

//! Tests of the TCP tracker (`src/proto_tcp.rs`) against Linux 6.12's
//! `nf_conntrack_proto_tcp.c`: the transition table cell by cell, `get_conntrack_index`,
//! `tcp_valid_flags`, `tcp_error`, option parsing on malformed lists, `tcp_in_window`'s
//! bounds across sequence wrap-around and with window scaling, whole sessions, and the
//! kernel's packetdrill selftests (`tools/testing/selftests/net/netfilter/packetdrill/
//! conntrack_*.pkt`) re-expressed as packet sequences.
//!
//! [`Sim`] sends real packets between two endpoints through the module's own pipeline
//! (`src/proto/pipeline.rs`: lookup, new entries confirmed as they arrive, the tracker's
//! action applied as `nf_conntrack_in` does, `IPS_SEEN_REPLY`, expiry, and `-NF_REPEAT`, a
//! kill then a new entry from the same packet) on a host table (`host/ct.rs`).

use crate::host_ct::{receive, HostCt, HostEntry, Seen};
use crate::pkt::{tcpopt, Ipv4, Ipv6, Tcp, A4, A6, ACK, B4, B6, CWR, ECE, FIN, PSH, RST, SYN, URG};
use crate::proto::conn::*;
use crate::proto::l4proto::{L4Action, L4State, L4Verdict, Settings};
use crate::proto::pipeline::{Conntrack, Entry, Verdict};
use crate::proto::proto_tcp::*;
use crate::proto::proto_udp::Checksum;
use crate::proto::stat::Stat;
use crate::proto::tuple::{self, Addr, Dir, L3};
use std::rc::Rc;

/// The reference kernel's HZ.
const HZ: u32 = 250;
const T: Timeouts = Timeouts::defaults();
const S: TcpSettings = TcpSettings::defaults();

// ---------------------------------------------------------------------------------------------
// Segments, built as real packets and parsed back with tcp_error.

/// A TCP segment to build: flags, numbers, options and data length.
#[derive(Clone, Debug)]
struct P {
    flags: u8,
    seq: u32,
    ack: u32,
    win: u16,
    opts: Vec<u8>,
    len: usize,
    v6: bool,
}

impl P {
    fn new(flags: u8, seq: u32, ack: u32, win: u16) -> P {
        P {
            flags,
            seq,
            ack,
            win,
            opts: Vec::new(),
            len: 0,
            v6: false,
        }
    }

    fn opts(mut self, opts: &[Vec<u8>]) -> P {
        self.opts = tcpopt::list(opts);
        self
    }

    fn len(mut self, len: usize) -> P {
        self.len = len;
        self
    }

    fn v6(mut self) -> P {
        self.v6 = true;
        self
    }

    /// The IP packet from A to B and its transport offset.
    fn packet(&self) -> (Vec<u8>, usize) {
        self.packet_from(A)
    }

    /// The IP packet from `side` to the other one and its transport offset.
    fn packet_from(&self, side: Side) -> (Vec<u8>, usize) {
        let mut tcp = Tcp::with(self.flags, self.seq, self.ack, self.win, self.opts.clone());
        let (a4, b4, a6, b6) = match side {
            A => (A4, B4, A6, B6),
            B => {
                core::mem::swap(&mut tcp.sport, &mut tcp.dport);
                (B4, A4, B6, A6)
            }
        };
        let data = vec![0x5a; self.len];
        let seg = tcp.build(&data);
        if self.v6 {
            let p = Ipv6::new(6, a6, b6).build(&seg);
            let parsed = tuple::parse_ipv6(&p[..], 0).expect("IPv6 packet");
            (p, parsed.dataoff)
        } else {
            let p = Ipv4::new(6, a4, b4).build(&seg);
            let parsed = tuple::parse_ipv4(&p[..], 0).expect("IPv4 packet");
            (p, parsed.dataoff)
        }
    }

    /// The segment as `tcp_error` reads it.
    fn seg(&self) -> TcpSegment {
        let (p, off) = self.packet();
        let (seg, ck) = tcp_error(&p[..], off).expect("valid TCP header");
        assert_eq!(ck, Checksum::Full);
        seg
    }
}

/// SYN options as Linux sends them: mss, sackOK, timestamps, nop, wscale.
fn linux_syn_opts(wscale: u8) -> Vec<Vec<u8>> {
    vec![
        tcpopt::mss(1460),
        tcpopt::sack_perm(),
        tcpopt::ts(1, 0),
        vec![tcpopt::NOP],
        tcpopt::wscale(wscale),
    ]
}

// ---------------------------------------------------------------------------------------------
// The core, simulated.

/// The two endpoints. Which one is the original direction depends on who sent first.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    /// The client in most tests; the kernel under test in the packetdrill ones.
    A,
    /// The server in most tests; packetdrill's remote end.
    B,
}

use Side::{A, B};

/// What the core did with a packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Out {
    /// `NF_ACCEPT` with the packet attached to a connection.
    Accept,
    /// `-NF_ACCEPT`: counted invalid, passed without a connection.
    Invalid,
}

/// The entry as the tests look at it.
#[derive(Clone, Debug)]
struct Ct {
    /// The side whose packet created the entry.
    orig: Side,
    status: u32,
    timeout: u32,
    tcp: TcpConn,
    /// Packets accounted per direction (`nf_ct_refresh_acct`, `nf_ct_kill_acct`).
    packets: [u64; 2],
    /// `IPCT_ASSURED` and `IPCT_PROTOINFO` events raised.
    assured_events: u32,
    protoinfo_events: u32,
}

/// Two endpoints and the module's pipeline between them: every packet is tracked at
/// PRE_ROUTING and confirmed at LOCAL_IN by `src/proto/pipeline.rs` on a host table, as the
/// module does on its own. The tests read the entry it leaves, and what the tracker said.
struct Sim {
    ct: HostCt,
    now: u32,
    /// Invalid packets by sending side (A, B).
    invalid: [u32; 2],
    /// Entries created, killed by a RST, and reopened (`-NF_REPEAT`).
    created: u32,
    killed: u32,
    repeats: u32,
    /// The tracker's last action, and every log line.
    last: Option<L4Action>,
    logs: Vec<TcpLog>,
    /// What was accounted and raised, per entry (by address).
    counted: Vec<(*const HostEntry, [u64; 2], u32, u32)>,
}

impl Sim {
    fn new() -> Sim {
        Sim::with(S)
    }

    fn with(s: TcpSettings) -> Sim {
        Sim {
            ct: HostCt::with(Settings {
                timeouts: T,
                tcp: s,
                ..Settings::defaults()
            }),
            // 100 s before nfct_time_stamp wraps: the timeouts cross it.
            now: u32::MAX - 100 * HZ,
            invalid: [0, 0],
            created: 0,
            killed: 0,
            repeats: 0,
            last: None,
            logs: Vec::new(),
            counted: Vec::new(),
        }
    }

    fn tick(&mut self, secs: u32) {
        self.now = self.now.wrapping_add(secs * HZ);
    }

    /// One packet from `from`, through the module's pipeline.
    fn send(&mut self, from: Side, p: &P) -> Out {
        let (bytes, _) = p.packet_from(from);
        let l3 = if p.v6 { L3::Ipv6 } else { L3::Ipv4 };
        let seen = self.ct.seen.borrow().len();
        let invalid = self.ct.stat(Stat::Invalid);
        let inserted = self.ct.stat(Stat::Insert);
        let verdicts = receive(&self.ct, &bytes, l3, self.now, HZ);
        assert_eq!(verdicts, (Verdict::Accept, Verdict::Accept), "{p:?}");
        self.created += self.ct.stat(Stat::Insert) - inserted;
        let actions: Vec<Seen> = self.ct.seen.borrow()[seen..].to_vec();
        for s in actions {
            let a = s.action;
            self.last = Some(a);
            self.logs.extend(a.log);
            if a.verdict == L4Verdict::Invalid {
                assert_eq!(a.refresh, None);
            }
            let Some(entry) = s.entry else {
                continue;
            };
            let dir = s.ctinfo.dir() as usize;
            let key: *const HostEntry = &*entry;
            let i = match self.counted.iter().position(|c| c.0 == key) {
                Some(i) => i,
                None => {
                    self.counted.push((key, [0, 0], 0, 0));
                    self.counted.len() - 1
                }
            };
            let c = &mut self.counted[i];
            if let L4State::Tcp(tcp) = entry.l4() {
                assert!(tcp.state.is_state(), "{:?}", tcp.state);
            }
            // What `tcp_packet` promises of its actions.
            let fresh = s.status & IPS_CONFIRMED == 0;
            match a.verdict {
                L4Verdict::Repeat => {
                    assert!(!fresh, "REPEAT on a new entry");
                    assert!(a.refresh.is_none() && !a.kill);
                    self.repeats += 1;
                }
                L4Verdict::Invalid => {}
                L4Verdict::Accept => {
                    assert!(a.lowered_timeout.is_none());
                    assert!(!a.kill || a.refresh.is_none());
                    if fresh {
                        assert!(!a.kill && !a.set_assured);
                    }
                    if a.refresh.is_some() || a.kill {
                        c.1[dir] += 1;
                    }
                    if a.kill {
                        self.killed += 1;
                    }
                    // Raised only when the bit was clear (the entry is read before the
                    // pipeline applies the action).
                    if a.set_assured && s.status & IPS_ASSURED == 0 {
                        c.2 += 1;
                    }
                }
            }
            if a.protoinfo {
                c.3 += 1;
            }
        }
        if self.ct.stat(Stat::Invalid) > invalid {
            self.invalid[from as usize] += 1;
            return Out::Invalid;
        }
        Out::Accept
    }

    /// The live entry, if any.
    fn entry(&self) -> Option<Rc<HostEntry>> {
        let table = self.ct.table.borrow();
        assert!(table.len() <= 1, "one connection at a time");
        table.first().cloned()
    }

    fn ct(&self) -> Ct {
        let e = self.entry().expect("no entry");
        let key: *const HostEntry = &*e;
        let (packets, assured_events, protoinfo_events) = self
            .counted
            .iter()
            .find(|c| c.0 == key)
            .map_or(([0, 0], 0, 0), |c| (c.1, c.2, c.3));
        let orig = match e.tuple(Dir::Original).map(|t| t.src) {
            Some(a) if a == Addr::v4(A4) || a == Addr(A6) => A,
            _ => B,
        };
        Ct {
            orig,
            status: e.status(),
            timeout: e.timeout(),
            tcp: match e.l4() {
                L4State::Tcp(tcp) => tcp,
                other => panic!("not a TCP entry: {other:?}"),
            },
            packets,
            assured_events,
            protoinfo_events,
        }
    }

    /// Changes the live entry's TCP state, as with its lock held.
    fn with_tcp(&self, f: impl FnOnce(&mut TcpConn)) {
        let e = self.entry().expect("no entry");
        self.ct.with_l4(&e, |st| match st {
            L4State::Tcp(tcp) => f(tcp),
            other => panic!("not a TCP entry: {other:?}"),
        });
    }

    fn state(&self) -> Option<TcpConntrack> {
        self.entry().map(|_| self.ct().tcp.state)
    }

    fn tcp(&self) -> TcpConn {
        self.ct().tcp
    }

    fn status(&self) -> u32 {
        self.ct().status
    }

    fn assured(&self) -> bool {
        self.status() & IPS_ASSURED != 0
    }

    fn unreplied(&self) -> bool {
        self.status() & IPS_SEEN_REPLY == 0
    }

    /// Seconds left, as `/proc` shows them.
    fn secs(&self) -> i64 {
        expires_in_secs(self.ct().timeout, self.now, HZ)
    }

    /// Sends and checks the outcome and the resulting state.
    #[track_caller]
    fn expect(&mut self, from: Side, p: P, out: Out, state: TcpConntrack) {
        assert_eq!(self.send(from, &p), out, "{p:?}");
        assert_eq!(self.state(), Some(state), "{p:?}");
    }

    /// A classic handshake: A SYN (isn `a`), B SYN/ACK (isn `b`), A ACK, with Linux's
    /// options and window scale `ws` both ways.
    fn handshake(&mut self, a: u32, b: u32, ws: u8) {
        self.expect(
            A,
            P::new(SYN, a, 0, 64240).opts(&linux_syn_opts(ws)),
            Out::Accept,
            TcpConntrack::SynSent,
        );
        self.expect(
            B,
            P::new(SYN | ACK, b, a.wrapping_add(1), 65160).opts(&linux_syn_opts(ws)),
            Out::Accept,
            TcpConntrack::SynRecv,
        );
        self.expect(
            A,
            P::new(ACK, a.wrapping_add(1), b.wrapping_add(1), 502),
            Out::Accept,
            TcpConntrack::Established,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Names, values, the table.

#[test]
fn states_and_names_match_6_12() {
    // enum tcp_conntrack (uapi) and tcp_conntrack_names[].
    let expect = [
        (TcpConntrack::None, 0, "NONE"),
        (TcpConntrack::SynSent, 1, "SYN_SENT"),
        (TcpConntrack::SynRecv, 2, "SYN_RECV"),
        (TcpConntrack::Established, 3, "ESTABLISHED"),
        (TcpConntrack::FinWait, 4, "FIN_WAIT"),
        (TcpConntrack::CloseWait, 5, "CLOSE_WAIT"),
        (TcpConntrack::LastAck, 6, "LAST_ACK"),
        (TcpConntrack::TimeWait, 7, "TIME_WAIT"),
        (TcpConntrack::Close, 8, "CLOSE"),
        (TcpConntrack::SynSent2, 9, "SYN_SENT2"),
    ];
    for (s, v, name) in expect {
        assert_eq!(s as u8, v);
        assert_eq!(s.name(), name);
        assert!(s.is_state());
        assert_eq!(TcpConntrack::from_u8(v), Some(s));
    }
    // TCP_CONNTRACK_MAX (sIV) and TCP_CONNTRACK_IGNORE (sIG).
    assert_eq!(TcpConntrack::Invalid as u8, 10);
    assert_eq!(TcpConntrack::Ignore as u8, 11);
    assert!(!TcpConntrack::Invalid.is_state() && !TcpConntrack::Ignore.is_state());
    for v in 10..=255u8 {
        assert_eq!(TcpConntrack::from_u8(v), None);
    }
    assert_eq!(TcpConntrack::default(), TcpConntrack::None);
}

#[test]
fn flag_and_index_values_match_6_12() {
    assert_eq!(
        [
            TcpIndex::Syn,
            TcpIndex::SynAck,
            TcpIndex::Fin,
            TcpIndex::Ack,
            TcpIndex::Rst,
            TcpIndex::None
        ]
        .map(|i| i as u8),
        [0, 1, 2, 3, 4, 5]
    );
    // include/uapi/linux/netfilter/nf_conntrack_tcp.h
    assert_eq!(IP_CT_TCP_FLAG_WINDOW_SCALE, 0x01);
    assert_eq!(IP_CT_TCP_FLAG_SACK_PERM, 0x02);
    assert_eq!(IP_CT_TCP_FLAG_CLOSE_INIT, 0x04);
    assert_eq!(IP_CT_TCP_FLAG_BE_LIBERAL, 0x08);
    assert_eq!(IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED, 0x10);
    assert_eq!(IP_CT_TCP_FLAG_MAXACK_SET, 0x20);
    assert_eq!(IP_CT_EXP_CHALLENGE_ACK, 0x40);
    assert_eq!(IP_CT_TCP_SIMULTANEOUS_OPEN, 0x80);
    // include/net/tcp.h
    assert_eq!(
        [
            TCPHDR_FIN, TCPHDR_SYN, TCPHDR_RST, TCPHDR_PSH, TCPHDR_ACK, TCPHDR_URG, TCPHDR_ECE,
            TCPHDR_CWR
        ],
        [1, 2, 4, 8, 16, 32, 64, 128]
    );
    assert_eq!(
        (FIN, SYN, RST, PSH, ACK, URG, ECE, CWR),
        (1, 2, 4, 8, 16, 32, 64, 128)
    );
}

/// The kernel's `tcp_conntracks[2][6][10]`, transcribed from nf_conntrack_proto_tcp.c in its
/// own notation, independently of the module's table.
const KERNEL_TABLE: [[&str; 6]; 2] = [
    [
        // ORIGINAL   sNO, sSS, sSR, sES, sFW, sCW, sLA, sTW, sCL, sS2
        /*syn*/
        "sSS sSS sIG sIG sIG sIG sIG sSS sSS sS2",
        /*synack*/ "sIV sIV sSR sIV sIV sIV sIV sIV sIV sSR",
        /*fin*/ "sIV sIV sFW sFW sLA sLA sLA sTW sCL sIV",
        /*ack*/ "sES sIV sES sES sCW sCW sTW sTW sCL sIV",
        /*rst*/ "sIV sCL sCL sCL sCL sCL sCL sCL sCL sCL",
        /*none*/ "sIV sIV sIV sIV sIV sIV sIV sIV sIV sIV",
    ],
    [
        // REPLY      sNO, sSS, sSR, sES, sFW, sCW, sLA, sTW, sCL, sS2
        /*syn*/
        "sIV sS2 sIV sIV sIV sIV sIV sSS sIV sS2",
        /*synack*/ "sIV sSR sIG sIG sIG sIG sIG sIG sIG sSR",
        /*fin*/ "sIV sIV sFW sFW sLA sLA sLA sTW sCL sIV",
        /*ack*/ "sIV sIG sSR sES sCW sCW sTW sTW sCL sIG",
        /*rst*/ "sIV sCL sCL sCL sCL sCL sCL sCL sCL sCL",
        /*none*/ "sIV sIV sIV sIV sIV sIV sIV sIV sIV sIV",
    ],
];

/// The kernel's `#define sXX` names.
fn kernel_letters(s: TcpConntrack) -> &'static str {
    match s {
        TcpConntrack::None => "sNO",
        TcpConntrack::SynSent => "sSS",
        TcpConntrack::SynRecv => "sSR",
        TcpConntrack::Established => "sES",
        TcpConntrack::FinWait => "sFW",
        TcpConntrack::CloseWait => "sCW",
        TcpConntrack::LastAck => "sLA",
        TcpConntrack::TimeWait => "sTW",
        TcpConntrack::Close => "sCL",
        TcpConntrack::SynSent2 => "sS2",
        TcpConntrack::Invalid => "sIV",
        TcpConntrack::Ignore => "sIG",
    }
}

const INDICES: [TcpIndex; 6] = [
    TcpIndex::Syn,
    TcpIndex::SynAck,
    TcpIndex::Fin,
    TcpIndex::Ack,
    TcpIndex::Rst,
    TcpIndex::None,
];

#[test]
fn every_cell_of_the_transition_table() {
    let mut cells = 0;
    for (d, dir) in [Dir::Original, Dir::Reply].into_iter().enumerate() {
        for (i, index) in INDICES.into_iter().enumerate() {
            let row: Vec<&str> = KERNEL_TABLE[d][i].split_whitespace().collect();
            assert_eq!(row.len(), 10);
            for (v, want) in row.into_iter().enumerate() {
                let state = TcpConntrack::from_u8(v as u8).unwrap();
                let got = transition(dir, index, state);
                assert_eq!(
                    kernel_letters(got),
                    want,
                    "tcp_conntracks[{d}][{i}][{}]",
                    state.name()
                );
                assert_eq!(TCP_CONNTRACKS[d][i][v], got);
                cells += 1;
            }
        }
    }
    assert_eq!(cells, 2 * 6 * 10);
    // Old states that are no state never transition.
    for s in [TcpConntrack::Invalid, TcpConntrack::Ignore] {
        assert_eq!(
            transition(Dir::Original, TcpIndex::Ack, s),
            TcpConntrack::Invalid
        );
    }
}

#[test]
fn get_conntrack_index_for_every_flag_byte() {
    for f in 0..=255u8 {
        // RST first, then SYN (with or without ACK), FIN, ACK.
        let want = if f & RST != 0 {
            TcpIndex::Rst
        } else if f & SYN != 0 && f & ACK != 0 {
            TcpIndex::SynAck
        } else if f & SYN != 0 {
            TcpIndex::Syn
        } else if f & FIN != 0 {
            TcpIndex::Fin
        } else if f & ACK != 0 {
            TcpIndex::Ack
        } else {
            TcpIndex::None
        };
        assert_eq!(TcpIndex::of_flags(f), want, "{f:#04x}");
        assert_eq!(TcpSegment::new(f, 0, 0, 0).index(), want);
    }
}

#[test]
fn tcp_valid_flags_for_every_flag_byte() {
    // tcp_valid_flags[]: SYN, SYN|URG, SYN|ACK, RST, RST|ACK, FIN|ACK, FIN|ACK|URG, ACK,
    // ACK|URG; PSH, ECE and CWR never matter.
    let valid = [0x02, 0x22, 0x12, 0x04, 0x14, 0x11, 0x31, 0x10, 0x30];
    let mut n = 0;
    for f in 0..=255u8 {
        let want = valid.contains(&(f & !(PSH | ECE | CWR)));
        assert_eq!(tcp_valid_flags(f), want, "{f:#04x}");
        n += usize::from(want);
    }
    // 9 combinations times the 8 settings of PSH, ECE and CWR.
    assert_eq!(n, 9 * 8);
    // A few the kernel refuses: SYN|FIN, SYN|RST, FIN alone, nothing, XMAS.
    for f in [
        SYN | FIN,
        SYN | RST,
        FIN,
        0,
        FIN | PSH | URG,
        0xff,
        RST | FIN,
    ] {
        assert!(!tcp_valid_flags(f), "{f:#04x}");
    }
}

// ---------------------------------------------------------------------------------------------
// tcp_error

#[test]
fn tcp_error_reads_the_header() {
    let p = P::new(PSH | ACK, 0xdead_beef, 0x0102_0304, 0xabcd)
        .opts(&[tcpopt::mss(1460), tcpopt::wscale(7)])
        .len(123);
    for p in [p.clone(), p.v6()] {
        let s = p.seg();
        assert_eq!(s.flags, PSH | ACK);
        assert_eq!(
            (s.seq, s.ack_seq, s.window),
            (0xdead_beef, 0x0102_0304, 0xabcd)
        );
        assert_eq!(s.payload_len, 123);
        // 7 option bytes padded with an EOL to 8.
        assert_eq!(s.opt_len, 8);
        assert_eq!(s.options(), &[2, 4, 0x05, 0xb4, 3, 3, 7, 0]);
        assert_eq!(s.index(), TcpIndex::Ack);
        assert_eq!(s.end(), 0xdead_beef_u32.wrapping_add(123));
    }
    // SYN and FIN count one each, modulo 2^32.
    let s = P::new(SYN, u32::MAX, 0, 1).seg();
    assert_eq!(s.end(), 0);
    let s = P::new(FIN | ACK, u32::MAX - 9, 0, 1).len(10).seg();
    assert_eq!(s.end(), 1);
}

#[test]
fn tcp_error_rejects_short_truncated_and_bad_flags() {
    let (p, off) = P::new(ACK, 1, 2, 3).packet();
    // Fewer than 20 bytes: skb_header_pointer fails, nothing logged.
    for cut in off..off + 20 {
        assert_eq!(tcp_error(&p[..cut], off), Err(TcpError::Short), "{cut}");
    }
    assert_eq!(tcp_error(&p[..], p.len()), Err(TcpError::Short));
    assert_eq!(tcp_error(&p[..], usize::MAX), Err(TcpError::Short));
    // Data offset below 5 words.
    for doff in 0..5u8 {
        let mut q = p.clone();
        q[off + 12] = doff << 4;
        assert_eq!(tcp_error(&q[..], off), Err(TcpError::Truncated), "{doff}");
    }
    // Data offset beyond the packet (20 bytes there, 24..60 claimed).
    for doff in 6..16u8 {
        let mut q = p.clone();
        q[off + 12] = doff << 4;
        assert_eq!(tcp_error(&q[..], off), Err(TcpError::Truncated), "{doff}");
    }
    // Data offset exactly the packet: fine.
    let (p2, off2) = P::new(ACK, 1, 2, 3)
        .opts(&[tcpopt::ts(1, 2), vec![1, 1]])
        .packet();
    assert!(tcp_error(&p2[..], off2).is_ok());
    assert_eq!(
        tcp_error(&p2[..p2.len() - 1], off2),
        Err(TcpError::Truncated)
    );
    // Every invalid flag combination.
    for f in 0..=255u8 {
        let mut q = p.clone();
        q[off + 13] = f;
        let r = tcp_error(&q[..], off);
        if tcp_valid_flags(f) {
            assert!(r.is_ok(), "{f:#04x}");
        } else {
            assert_eq!(r, Err(TcpError::InvalidFlags), "{f:#04x}");
        }
    }
    assert_eq!(TcpError::Short.msg(), None);
    assert_eq!(TcpError::Truncated.msg(), Some("truncated packet"));
    assert_eq!(
        TcpError::InvalidFlags.msg(),
        Some("invalid tcp flag combination")
    );
}

// ---------------------------------------------------------------------------------------------
// Options

/// A peer state with every flag and a scale set, to see what `tcp_options` resets.
fn dirty_peer() -> TcpPeer {
    TcpPeer {
        td_scale: 9,
        flags: 0xff,
        ..TcpPeer::default()
    }
}

#[test]
fn tcp_options_reads_wscale_and_sack_perm() {
    let opts = tcpopt::list(&linux_syn_opts(7));
    assert_eq!(opts.len(), 20);
    let mut p = TcpPeer::default();
    tcp_options(&opts, &mut p);
    assert_eq!(p.td_scale, 7);
    assert_eq!(
        p.flags,
        IP_CT_TCP_FLAG_WINDOW_SCALE | IP_CT_TCP_FLAG_SACK_PERM
    );
    // Scales above 14 are clamped (RFC 7323).
    for (ws, want) in [(0, 0), (14, 14), (15, 14), (255, 14)] {
        let mut p = TcpPeer::default();
        tcp_options(&tcpopt::wscale(ws), &mut p);
        assert_eq!((p.td_scale, p.flags), (want, IP_CT_TCP_FLAG_WINDOW_SCALE));
    }
    // Options reset scale and flags, BE_LIBERAL aside.
    let mut p = dirty_peer();
    tcp_options(&tcpopt::mss(1460), &mut p);
    assert_eq!((p.td_scale, p.flags), (0, IP_CT_TCP_FLAG_BE_LIBERAL));
    // No options: nothing changes at all.
    let mut p = dirty_peer();
    tcp_options(&[], &mut p);
    assert_eq!(p, dirty_peer());
}

#[test]
fn tcp_options_on_every_truncation_of_a_valid_list() {
    // mss(0..4) sackOK(4..6) ts(6..16) nop(16) wscale(17..20)
    let opts = tcpopt::list(&linux_syn_opts(8));
    for k in 0..=opts.len() {
        let mut p = dirty_peer();
        tcp_options(&opts[..k], &mut p);
        if k == 0 {
            assert_eq!(p, dirty_peer());
            continue;
        }
        let mut want = IP_CT_TCP_FLAG_BE_LIBERAL;
        if k >= 6 {
            want |= IP_CT_TCP_FLAG_SACK_PERM;
        }
        // The partial wscale option at the end is not parsed.
        let scale = if k == 20 {
            want |= IP_CT_TCP_FLAG_WINDOW_SCALE;
            8
        } else {
            0
        };
        assert_eq!((p.flags, p.td_scale), (want, scale), "{k} bytes");
        assert_eq!(
            (p.td_end, p.td_maxend, p.td_maxwin, p.td_maxack),
            (0, 0, 0, 0)
        );
    }
}

#[test]
fn tcp_options_on_malformed_lists() {
    let ws = IP_CT_TCP_FLAG_WINDOW_SCALE;
    let sp = IP_CT_TCP_FLAG_SACK_PERM;
    let cases: &[(&[u8], u8, u8)] = &[
        // Zero and one as lengths: "silly options" end the walk.
        (&[3, 0, 7], 0, 0),
        (&[3, 1, 7], 0, 0),
        (&[4, 0, 4, 2], 0, 0),
        (&[4, 2, 3, 1, 3, 3, 7], 0, sp),
        // Length beyond the list: partial options are not parsed.
        (&[3, 4, 7], 0, 0),
        (&[4, 2, 3, 3], 0, sp),
        (&[4, 2, 3, 255, 9], 0, sp),
        // A kind without its length byte.
        (&[1, 1, 3], 0, 0),
        (&[4], 0, 0),
        // EOL ends the list.
        (&[0, 3, 3, 7], 0, 0),
        (&[4, 2, 0, 3, 3, 7], 0, sp),
        // Wrong sizes are skipped, the walk goes on.
        (&[3, 4, 7, 0, 4, 2], 0, sp),
        (&[4, 3, 0, 3, 3, 5], 5, ws),
        (&[3, 2, 3, 3, 6], 6, ws),
        // The last wscale wins.
        (&[3, 3, 2, 3, 3, 12], 12, ws),
        // Unknown kinds are skipped by their length.
        (&[99, 5, 3, 3, 1, 4, 2], 0, sp),
        (&[1, 1, 1, 1, 1, 1, 1, 1], 0, 0),
    ];
    for &(opts, scale, flags) in cases {
        let mut p = TcpPeer::default();
        tcp_options(opts, &mut p);
        assert_eq!((p.td_scale, p.flags), (scale, flags), "{opts:?}");
    }
}

#[test]
fn tcp_sack_takes_the_highest_right_edge() {
    let run = |opts: &[u8], start: u32| {
        let mut s = start;
        tcp_sack(opts, &mut s);
        s
    };
    let two = tcpopt::list(&[vec![1, 1], tcpopt::sack(&[(100, 200), (300, 400)])]);
    assert_eq!(run(&two, 50), 400);
    // Only raised, in sequence space: 400 is before 0x9000_0000 + 50.
    assert_eq!(run(&two, 500), 500);
    assert_eq!(run(&two, 0x8000_0190), 400);
    // Across zero: a right edge of 5 is after u32::MAX - 5.
    let wrap = tcpopt::sack(&[(u32::MAX - 10, 5)]);
    assert_eq!(run(&wrap, u32::MAX - 5), 5);
    // Four blocks, the highest in the middle.
    let four = tcpopt::sack(&[(1, 10), (20, 4000), (30, 300), (40, 50)]);
    assert_eq!(run(&four, 0), 4000);
    // Only the first well-formed SACK option counts.
    let twice = tcpopt::list(&[tcpopt::sack(&[(1, 10)]), tcpopt::sack(&[(1, 99)])]);
    assert_eq!(run(&twice, 0), 10);
    // A malformed one (not whole blocks, or none) is skipped and the next one counts.
    let bad_then_good = [
        &[5u8, 9, 0, 0, 0, 0, 0, 0, 0][..],
        &tcpopt::sack(&[(1, 77)]),
    ]
    .concat();
    assert_eq!(run(&bad_then_good, 0), 77);
    let empty_then_good = [&[5u8, 2][..], &tcpopt::sack(&[(1, 78)])].concat();
    assert_eq!(run(&empty_then_good, 0), 78);
    // The timestamp-only fast path.
    let ts = tcpopt::list(&[vec![1, 1], tcpopt::ts(5, 6)]);
    assert_eq!(ts.len(), 12);
    assert_eq!(run(&ts, 3), 3);
    assert_eq!(run(&[], 3), 3);
}

#[test]
fn tcp_sack_on_every_truncation_and_malformed_lengths() {
    let opts = tcpopt::list(&[vec![1, 1], tcpopt::sack(&[(1000, 2000), (3000, 9000)])]);
    assert_eq!(opts.len(), 20);
    for k in 0..=opts.len() {
        let mut s = 10;
        tcp_sack(&opts[..k], &mut s);
        assert_eq!(s, if k == 20 { 9000 } else { 10 }, "{k} bytes");
    }
    // Lengths 0 and 1 end the walk; lengths beyond the list are not parsed.
    for len in [0u8, 1, 19, 200, 255] {
        let mut o = opts.clone();
        o[3] = len;
        let mut s = 10;
        tcp_sack(&o, &mut s);
        assert_eq!(s, 10, "length {len}");
    }
}

/// A small deterministic generator for the robustness tests.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }

    fn coin(&mut self) -> bool {
        self.next() & 1 == 0
    }
}

#[test]
fn random_option_lists_and_headers_never_panic() {
    let mut r = Lcg(0x5eed);
    let kinds = [0u8, 1, 2, 3, 4, 5, 8, 30, 254];
    for _ in 0..20_000 {
        let n = (r.next() % 41) as usize;
        let opts: Vec<u8> = (0..n)
            .map(|_| match r.next() % 3 {
                0 => kinds[(r.next() % kinds.len() as u32) as usize],
                1 => (r.next() % 12) as u8,
                _ => r.byte(),
            })
            .collect();
        let mut p = dirty_peer();
        tcp_options(&opts, &mut p);
        assert!(p.td_scale <= TCP_MAX_WSCALE || opts.is_empty());
        let mut s = r.next();
        tcp_sack(&opts, &mut s);

        // A raw header with these options and random fields and lengths.
        let mut h = vec![0u8; 20];
        for b in h.iter_mut() {
            *b = r.byte();
        }
        h.extend_from_slice(&opts);
        let extra = (r.next() % 8) as usize;
        h.extend((0..extra).map(|_| r.byte()));
        let cut = (r.next() as usize) % (h.len() + 1);
        let pkt = &h[..if r.coin() { h.len() } else { cut }];
        match tcp_error(pkt, 0) {
            Ok((seg, _)) => {
                let hlen = usize::from(pkt[12] >> 4) * 4;
                assert!((20..=pkt.len()).contains(&hlen));
                assert_eq!(usize::from(seg.opt_len), hlen - 20);
                assert_eq!(seg.payload_len as usize, pkt.len() - hlen);
                assert!(tcp_valid_flags(seg.flags));
                // The tracker on any state: never panics, never stores a non-state.
                let mut conn = TcpConn::default();
                for dir in [Dir::Original, Dir::Reply] {
                    for status in [
                        0,
                        IPS_CONFIRMED,
                        IPS_CONFIRMED | IPS_SEEN_REPLY | IPS_ASSURED,
                    ] {
                        let ctx = TcpPacketCtx {
                            dir,
                            status,
                            ct_timeout: r.next(),
                            now: r.next(),
                            hz: HZ,
                            synproxy: r.coin(),
                        };
                        let a = tcp_packet(&mut conn, &seg, &ctx, &S, &T);
                        assert!(conn.state.is_state());
                        if a.verdict != TcpVerdict::Accept {
                            assert!(a.refresh.is_none() && !a.kill && !a.set_assured);
                        }
                    }
                }
            }
            Err(e) => assert!(e == TcpError::Short || e.msg().is_some()),
        }
    }
}

#[test]
fn random_connection_states_never_panic() {
    let mut r = Lcg(42);
    for _ in 0..20_000 {
        let mut conn = TcpConn::default();
        for p in conn.seen.iter_mut() {
            *p = TcpPeer {
                td_end: r.next(),
                td_maxend: r.next(),
                td_maxwin: if r.next() & 3 == 0 { 0 } else { r.next() },
                td_maxack: r.next(),
                td_scale: (r.next() % 16) as u8,
                flags: r.byte(),
            };
        }
        conn.state = TcpConntrack::from_u8((r.next() % 10) as u8).unwrap();
        conn.last_dir = if r.coin() { Dir::Original } else { Dir::Reply };
        conn.retrans = r.byte();
        conn.last_index = INDICES[(r.next() % 6) as usize];
        conn.last_seq = r.next();
        conn.last_ack = r.next();
        conn.last_end = r.next();
        conn.last_win = r.next() as u16;
        conn.last_wscale = (r.next() % 15) as u8;
        conn.last_flags = r.byte();
        let valid = [0x02, 0x22, 0x12, 0x04, 0x14, 0x11, 0x31, 0x10, 0x30];
        let mut seg = TcpSegment::new(
            valid[(r.next() % 9) as usize] | (r.byte() & (PSH | ECE | CWR)),
            r.next(),
            r.next(),
            r.next() as u16,
        );
        seg.payload_len = r.next() % 70_000;
        let dir = if r.coin() { Dir::Original } else { Dir::Reply };
        let ctx = TcpPacketCtx {
            dir,
            status: IPS_CONFIRMED | (r.next() & (IPS_SEEN_REPLY | IPS_ASSURED | IPS_FIXED_TIMEOUT)),
            ct_timeout: r.next(),
            now: r.next(),
            hz: HZ,
            synproxy: r.coin(),
        };
        let s = TcpSettings {
            loose: r.coin(),
            be_liberal: r.coin(),
            max_retrans: r.byte(),
            ignore_invalid_rst: r.coin(),
        };
        let before = conn;
        let a = tcp_packet(&mut conn, &seg, &ctx, &s, &T);
        assert!(conn.state.is_state());
        match a.verdict {
            TcpVerdict::Repeat => assert_eq!(conn, before, "REPEAT changes nothing"),
            TcpVerdict::Invalid => assert!(a.refresh.is_none() && !a.set_assured),
            TcpVerdict::Accept => {
                assert!(a.lowered_timeout.is_none());
                if a.set_assured {
                    assert_eq!(conn.state, TcpConntrack::Established);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// tcp_in_window

#[test]
fn window_bounds_across_sequence_wrap() {
    // Both ISNs just below 2^32: everything after the handshake wraps.
    let (a, b) = (0xffff_ff00u32, 0xffff_fff0u32);
    let mut sim = Sim::new();
    sim.handshake(a, b, 7);
    // 1000 bytes from A cross zero.
    sim.expect(
        A,
        P::new(PSH | ACK, a.wrapping_add(1), b.wrapping_add(1), 502).len(1000),
        Out::Accept,
        TcpConntrack::Established,
    );
    let a_end = a.wrapping_add(1001);
    assert!(a_end < 1000, "wrapped");
    assert_eq!(sim.tcp().peer(Dir::Original).td_end, a_end);
    assert_ne!(
        sim.tcp().peer(Dir::Original).flags & IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED,
        0
    );
    // Unacknowledged data: 300 s instead of 5 days.
    assert_eq!(sim.secs(), 300);
    // B acks all of it (III: ack <= td_end), across zero.
    sim.expect(
        B,
        P::new(ACK, b.wrapping_add(1), a_end, 509),
        Out::Accept,
        TcpConntrack::Established,
    );
    assert_eq!(
        sim.tcp().peer(Dir::Original).flags & IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED,
        0
    );
    assert_eq!(sim.secs(), 432_000);
    assert_eq!(sim.tcp().peer(Dir::Reply).td_maxack, a_end);
    // An ack one beyond what A sent: over the upper bound (III).
    sim.expect(
        B,
        P::new(ACK, b.wrapping_add(1), a_end.wrapping_add(1), 509),
        Out::Invalid,
        TcpConntrack::Established,
    );
    assert_eq!(
        sim.logs.last(),
        Some(&TcpLog::AckOver(a_end.wrapping_add(1)))
    );
    // I: A may send up to td_maxend (ack + scaled window of B): exactly there is fine.
    let maxend = sim.tcp().peer(Dir::Original).td_maxend;
    assert_eq!(maxend, a_end.wrapping_add(509 << 7));
    sim.expect(
        A,
        P::new(ACK, maxend, b.wrapping_add(1), 502).len(10),
        Out::Accept,
        TcpConntrack::Established,
    );
    // One byte beyond, more than a receive window ahead: over the upper bound (I).
    let far = maxend.wrapping_add(1).wrapping_add(200_000);
    sim.expect(
        A,
        P::new(ACK, far, b.wrapping_add(1), 502).len(10),
        Out::Invalid,
        TcpConntrack::Established,
    );
    let bound = sim.tcp().peer(Dir::Original).td_maxend.wrapping_add(1);
    assert_eq!(sim.logs.last(), Some(&TcpLog::SeqOver(bound)));
    // Old data from before zero, more than a window back: ignored, not invalid (II).
    let invalid = sim.invalid;
    let lower = sim
        .tcp()
        .peer(Dir::Original)
        .td_end
        .wrapping_sub(sim.tcp().peer(Dir::Reply).td_maxwin)
        .wrapping_sub(1);
    let old = lower.wrapping_sub(100);
    let timeout = sim.ct().timeout;
    sim.tick(1);
    sim.expect(
        A,
        P::new(ACK, old, b.wrapping_add(1), 502).len(100),
        Out::Accept,
        TcpConntrack::Established,
    );
    assert_eq!(sim.logs.last(), Some(&TcpLog::SeqUnder(lower)));
    assert_eq!(sim.last.unwrap().refresh, None, "ignored: no refresh");
    assert_eq!(sim.ct().timeout, timeout);
    assert_eq!(sim.invalid, invalid);
}

#[test]
fn window_scaled_data_beyond_the_window_is_invalid() {
    // With scaling (both offer 7), B's window 502 means 64256 bytes.
    let (a, b) = (1000u32, 5000u32);
    let mut scaled = Sim::new();
    scaled.handshake(a, b, 7);
    assert_eq!(scaled.tcp().peer(Dir::Original).td_scale, 7);
    assert_eq!(scaled.tcp().peer(Dir::Reply).td_scale, 7);
    // A's ACK of the handshake set B's right edge: 5001 + 502 << 7.
    assert_eq!(scaled.tcp().peer(Dir::Reply).td_maxend, 5001 + (502 << 7));
    // Without: A offered no window scale, so B's is off too.
    let mut plain = Sim::new();
    plain.expect(
        A,
        P::new(SYN, a, 0, 64240).opts(&[tcpopt::mss(1460), tcpopt::sack_perm()]),
        Out::Accept,
        TcpConntrack::SynSent,
    );
    plain.expect(
        B,
        P::new(SYN | ACK, b, a + 1, 65160).opts(&linux_syn_opts(7)),
        Out::Accept,
        TcpConntrack::SynRecv,
    );
    assert_eq!(
        plain.tcp().peer(Dir::Reply).td_scale,
        0,
        "RFC 1323: both or none"
    );
    plain.expect(
        A,
        P::new(ACK, a + 1, b + 1, 502),
        Out::Accept,
        TcpConntrack::Established,
    );
    assert_eq!(plain.tcp().peer(Dir::Reply).td_maxend, 5001 + 502);
    // B sends at the right edge of the scaled window.
    let seg = P::new(PSH | ACK, 5001 + (502 << 7), a + 1, 509).len(1000);
    scaled.expect(B, seg.clone(), Out::Accept, TcpConntrack::Established);
    plain.expect(B, seg, Out::Invalid, TcpConntrack::Established);
    assert_eq!(plain.logs.last(), Some(&TcpLog::SeqOver(5001 + 502 + 1)));
    // Far beyond even the scaled window: invalid there too.
    let far = P::new(PSH | ACK, 5001 + (502 << 7) + 200_000, a + 1, 509).len(1000);
    scaled.expect(B, far, Out::Invalid, TcpConntrack::Established);
    assert_eq!(scaled.invalid, [0, 1]);
}

#[test]
fn overshooting_the_window_a_little_is_ignored() {
    // Beyond td_maxend by less than the receiver's window: ignored, and remembered.
    let mut sim = Sim::new();
    sim.handshake(1000, 5000, 0);
    let maxend = sim.tcp().peer(Dir::Reply).td_maxend;
    assert_eq!(maxend, 5001 + 502);
    sim.expect(
        B,
        P::new(PSH | ACK, maxend + 1, 1001, 509).len(100),
        Out::Accept,
        TcpConntrack::Established,
    );
    assert_eq!(sim.logs.last(), Some(&TcpLog::Overshot(100 + 1 + 1)));
    assert_eq!(sim.last.unwrap().refresh, None);
    let tcp = sim.tcp();
    let b = tcp.peer(Dir::Reply);
    assert_eq!(b.td_end, maxend + 101);
    assert_ne!(b.flags & IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED, 0);
    // A acks it: fine now (III uses the remembered td_end).
    sim.expect(
        A,
        P::new(ACK, 1001, maxend + 101, 502),
        Out::Accept,
        TcpConntrack::Established,
    );
    assert_eq!(sim.invalid, [0, 0]);
}

#[test]
fn ack_far_below_the_window_is_ignored() {
    let mut sim = Sim::new();
    sim.handshake(1000, 5000, 0);
    // B's ack more than MAXACKWINDOW (66000) below A's td_end.
    let a_end = sim.tcp().peer(Dir::Original).td_end;
    let ack = a_end.wrapping_sub(70_000);
    sim.expect(
        B,
        P::new(ACK, 5001, ack, 509),
        Out::Accept,
        TcpConntrack::Established,
    );
    assert_eq!(
        sim.logs.last(),
        Some(&TcpLog::AckUnder(
            a_end.wrapping_sub(66_000).wrapping_sub(1)
        ))
    );
}

#[test]
fn be_liberal_accepts_what_the_window_refuses() {
    for liberal in [false, true] {
        let mut sim = Sim::with(TcpSettings {
            be_liberal: liberal,
            ..S
        });
        sim.handshake(1000, 5000, 7);
        let far = P::new(PSH | ACK, 5001 + 10_000_000, 1001, 509).len(1000);
        let out = if liberal { Out::Accept } else { Out::Invalid };
        sim.expect(B, far.clone(), out, TcpConntrack::Established);
        // An ack of data never sent, too.
        sim.expect(
            A,
            P::new(ACK, 1001, 99_999_999, 502),
            out,
            TcpConntrack::Established,
        );
        if liberal {
            // Accepted without a log, but the windows are left as they were (6.12 returns
            // before updating them); the packet still counts as the last one.
            assert_eq!(sim.tcp().peer(Dir::Reply).td_end, 5001);
            assert_eq!(sim.tcp().peer(Dir::Original).td_maxack, 5001);
            assert_eq!(sim.tcp().last_dir, Dir::Original);
            assert!(sim.logs.is_empty());
        }
    }
    // The per-connection flag (nf_ct_set_tcp_be_liberal) does the same for one entry.
    let mut sim = Sim::new();
    sim.handshake(1000, 5000, 7);
    sim.with_tcp(|tcp| tcp.set_be_liberal());
    let far = P::new(PSH | ACK, 5001 + 10_000_000, 1001, 509).len(1000);
    sim.expect(B, far, Out::Accept, TcpConntrack::Established);
}

#[test]
fn tcp_in_window_directly() {
    // The first SYN of a simultaneous open returns at once.
    let mut c = TcpConn::default();
    let syn = TcpSegment::new(SYN, 7, 0, 100);
    assert_eq!(
        tcp_in_window(&mut c, Dir::Reply, TcpIndex::Syn, &syn, false),
        (TcpWindowAction::Accept, None)
    );
    assert_eq!(c.peer(Dir::Reply).td_end, 8);
    assert_eq!(c.peer(Dir::Reply).td_maxwin, 100);
    assert_eq!(c.peer(Dir::Reply).flags & IP_CT_TCP_FLAG_MAXACK_SET, 0);
    // Zero windows count as 1.
    let mut c = TcpConn::default();
    let syn0 = TcpSegment::new(SYN, 7, 0, 0);
    tcp_in_window(&mut c, Dir::Reply, TcpIndex::Syn, &syn0, false);
    assert_eq!(c.peer(Dir::Reply).td_maxwin, 1);
    // A mid-stream packet with nothing seen the other way: III and IV are tweaked to pass.
    let mut c = TcpConn::default();
    let ack = TcpSegment {
        payload_len: 10,
        ..TcpSegment::new(ACK, 100, 5000, 20)
    };
    assert_eq!(
        tcp_in_window(&mut c, Dir::Original, TcpIndex::Ack, &ack, false).0,
        TcpWindowAction::Accept
    );
    let (o, r) = (c.peer(Dir::Original), c.peer(Dir::Reply));
    assert_eq!((o.td_end, o.td_maxwin, o.td_maxack), (110, 20, 5000));
    // (td_maxend then moves to sack + win, as for any accepted packet.)
    assert_eq!((r.td_end, r.td_maxend), (5000, 5020));
    // The receiver's keepalive answer bumps its td_end by one.
    let mut c = TcpConn::default();
    c.seen[1] = TcpPeer {
        td_end: 4999,
        td_maxend: 9999,
        td_maxwin: 50,
        ..TcpPeer::default()
    };
    tcp_in_window(&mut c, Dir::Original, TcpIndex::Ack, &ack, false);
    assert_eq!(c.peer(Dir::Reply).td_end, 5000);
}

// ---------------------------------------------------------------------------------------------
// Sessions

#[test]
fn three_way_handshake_established_and_assured() {
    let mut sim = Sim::new();
    sim.expect(
        A,
        P::new(SYN, 1000, 0, 64240).opts(&linux_syn_opts(7)),
        Out::Accept,
        TcpConntrack::SynSent,
    );
    assert!(sim.unreplied());
    assert_eq!(sim.secs(), 120);
    assert!(sim.last.unwrap().protoinfo);
    let o = *sim.tcp().peer(Dir::Original);
    assert_eq!(
        (o.td_end, o.td_maxend, o.td_maxwin, o.td_scale),
        (1001, 1001, 64240, 7)
    );
    assert_eq!(
        o.flags,
        IP_CT_TCP_FLAG_WINDOW_SCALE | IP_CT_TCP_FLAG_SACK_PERM
    );
    sim.tick(1);
    sim.expect(
        B,
        P::new(SYN | ACK, 5000, 1001, 65160).opts(&linux_syn_opts(7)),
        Out::Accept,
        TcpConntrack::SynRecv,
    );
    assert!(!sim.unreplied());
    assert!(!sim.assured());
    assert_eq!(sim.secs(), 60);
    sim.tick(1);
    sim.expect(
        A,
        P::new(ACK, 1001, 5001, 502),
        Out::Accept,
        TcpConntrack::Established,
    );
    assert!(sim.assured());
    assert_eq!(sim.ct().assured_events, 1);
    assert_eq!(sim.secs(), 432_000);
    assert_eq!(sim.ct().protoinfo_events, 3);
    // Data both ways: unacknowledged data shortens the timeout until acked.
    sim.expect(
        A,
        P::new(PSH | ACK, 1001, 5001, 502).len(500),
        Out::Accept,
        TcpConntrack::Established,
    );
    assert_eq!(sim.secs(), 300);
    assert!(!sim.last.unwrap().set_assured, "assured once");
    sim.expect(
        B,
        P::new(PSH | ACK, 5001, 1501, 509).len(1400),
        Out::Accept,
        TcpConntrack::Established,
    );
    assert_eq!(sim.secs(), 300);
    sim.expect(
        A,
        P::new(ACK, 1501, 6401, 501),
        Out::Accept,
        TcpConntrack::Established,
    );
    assert_eq!(sim.secs(), 432_000);
    assert_eq!(sim.ct().assured_events, 1);
    assert_eq!(sim.ct().packets, [4, 2]);
    assert_eq!(sim.invalid, [0, 0]);
    assert_eq!(sim.ct().protoinfo_events, 3);
}

/// An established connection between A (1000) and B (5000), no data in flight.
fn established() -> Sim {
    let mut sim = Sim::new();
    sim.handshake(1000, 5000, 7);
    sim
}

#[test]
fn fin_from_the_client_to_time_wait() {
    let mut sim = established();
    sim.expect(
        A,
        P::new(FIN | ACK, 1001, 5001, 502),
        Out::Accept,
        TcpConntrack::FinWait,
    );
    assert_eq!(sim.secs(), 120);
    assert_ne!(
        sim.tcp().peer(Dir::Original).flags & IP_CT_TCP_FLAG_CLOSE_INIT,
        0
    );
    assert_eq!(
        sim.tcp().peer(Dir::Reply).flags & IP_CT_TCP_FLAG_CLOSE_INIT,
        0
    );
    sim.expect(
        B,
        P::new(ACK, 5001, 1002, 509),
        Out::Accept,
        TcpConntrack::CloseWait,
    );
    assert_eq!(sim.secs(), 60);
    sim.expect(
        B,
        P::new(FIN | ACK, 5001, 1002, 509),
        Out::Accept,
        TcpConntrack::LastAck,
    );
    assert_eq!(sim.secs(), 30);
    sim.expect(
        A,
        P::new(ACK, 1002, 5002, 502),
        Out::Accept,
        TcpConntrack::TimeWait,
    );
    assert_eq!(sim.secs(), 120);
    // A retransmitted last ACK stays in TIME_WAIT.
    sim.expect(
        A,
        P::new(ACK, 1002, 5002, 502),
        Out::Accept,
        TcpConntrack::TimeWait,
    );
    assert_eq!(sim.invalid, [0, 0]);
    // 120 s later the entry is gone.
    sim.tick(120);
    assert!(should_gc(sim.status(), sim.ct().timeout, sim.now));
}

#[test]
fn fin_from_the_server_to_time_wait() {
    let mut sim = established();
    sim.expect(
        B,
        P::new(FIN | ACK, 5001, 1001, 509),
        Out::Accept,
        TcpConntrack::FinWait,
    );
    assert_ne!(
        sim.tcp().peer(Dir::Reply).flags & IP_CT_TCP_FLAG_CLOSE_INIT,
        0
    );
    sim.expect(
        A,
        P::new(ACK, 1001, 5002, 502),
        Out::Accept,
        TcpConntrack::CloseWait,
    );
    sim.expect(
        A,
        P::new(FIN | ACK, 1001, 5002, 502),
        Out::Accept,
        TcpConntrack::LastAck,
    );
    // A retransmitted FIN stays in LAST_ACK.
    sim.expect(
        A,
        P::new(FIN | ACK, 1001, 5002, 502),
        Out::Accept,
        TcpConntrack::LastAck,
    );
    sim.expect(
        B,
        P::new(ACK, 5002, 1002, 509),
        Out::Accept,
        TcpConntrack::TimeWait,
    );
    assert_eq!(sim.secs(), 120);
}

#[test]
fn simultaneous_close() {
    let mut sim = established();
    sim.expect(
        A,
        P::new(FIN | ACK, 1001, 5001, 502),
        Out::Accept,
        TcpConntrack::FinWait,
    );
    sim.expect(
        B,
        P::new(FIN | ACK, 5001, 1001, 509),
        Out::Accept,
        TcpConntrack::LastAck,
    );
    sim.expect(
        A,
        P::new(ACK, 1002, 5002, 502),
        Out::Accept,
        TcpConntrack::TimeWait,
    );
    sim.expect(
        B,
        P::new(ACK, 5002, 1002, 509),
        Out::Accept,
        TcpConntrack::TimeWait,
    );
}

#[test]
fn half_close_keeps_data_flowing() {
    let mut sim = established();
    sim.expect(
        A,
        P::new(FIN | ACK, 1001, 5001, 502),
        Out::Accept,
        TcpConntrack::FinWait,
    );
    sim.expect(
        B,
        P::new(ACK, 5001, 1002, 509),
        Out::Accept,
        TcpConntrack::CloseWait,
    );
    // B goes on sending, A acks: CLOSE_WAIT, 60 s (shorter than the unacked 300 s).
    let mut seq = 5001;
    for _ in 0..5 {
        sim.expect(
            B,
            P::new(PSH | ACK, seq, 1002, 509).len(1000),
            Out::Accept,
            TcpConntrack::CloseWait,
        );
        assert_eq!(sim.secs(), 60);
        seq += 1000;
        sim.expect(
            A,
            P::new(ACK, 1002, seq, 502),
            Out::Accept,
            TcpConntrack::CloseWait,
        );
    }
    sim.expect(
        B,
        P::new(FIN | ACK, seq, 1002, 509),
        Out::Accept,
        TcpConntrack::LastAck,
    );
    sim.expect(
        A,
        P::new(ACK, 1002, seq + 1, 502),
        Out::Accept,
        TcpConntrack::TimeWait,
    );
    assert_eq!(sim.invalid, [0, 0]);
}

#[test]
fn rst_in_window_closes() {
    // Exactly at the next sequence number.
    let mut sim = established();
    sim.expect(
        B,
        P::new(RST | ACK, 5001, 1001, 0),
        Out::Accept,
        TcpConntrack::Close,
    );
    assert_eq!(sim.secs(), 10);
    assert_eq!(sim.killed, 0, "replied: not killed, CLOSE for 10 s");
    // Part of a train: data, then a RST right after it.
    let mut sim = established();
    sim.expect(
        B,
        P::new(PSH | ACK, 5001, 1001, 509).len(19),
        Out::Accept,
        TcpConntrack::Established,
    );
    sim.expect(B, P::new(RST, 5020, 0, 0), Out::Accept, TcpConntrack::Close);
    // A RST with seq 0 before the connection is established skips the RST checks
    // ("most likely an answer to a SYN we let go through"), but then fails II: ignored.
    let mut sim = Sim::new();
    sim.expect(
        A,
        P::new(SYN, 1000, 0, 100),
        Out::Accept,
        TcpConntrack::SynSent,
    );
    sim.expect(
        B,
        P::new(SYN | ACK, 5000, 1001, 100),
        Out::Accept,
        TcpConntrack::SynRecv,
    );
    sim.expect(A, P::new(RST, 0, 0, 0), Out::Accept, TcpConntrack::SynRecv);
    assert_eq!(sim.logs.last(), Some(&TcpLog::SeqUnder(1001 - 100 - 1)));
    // At the right sequence number it closes.
    sim.expect(A, P::new(RST, 1001, 0, 0), Out::Accept, TcpConntrack::Close);
}

#[test]
fn rst_out_of_window_is_invalid_then_lowers_the_timeout() {
    let mut sim = established();
    // Below the peer's highest ack: "invalid rst", state kept.
    sim.expect(
        B,
        P::new(RST, 4000, 0, 0),
        Out::Invalid,
        TcpConntrack::Established,
    );
    assert_eq!(sim.logs.last(), Some(&TcpLog::InvalidRst));
    // Above it but not exact: established kept, then the window check refuses it.
    sim.expect(
        B,
        P::new(RST, 5001 + 10_000_000, 0, 0),
        Out::Invalid,
        TcpConntrack::Established,
    );
    assert!(matches!(sim.logs.last(), Some(TcpLog::SeqOver(_))));
    // That RST is now "the last" (nf_tcp_handle_invalid) ...
    assert_eq!(sim.tcp().last_index, TcpIndex::Rst);
    assert_eq!(sim.tcp().last_dir, Dir::Reply);
    assert_eq!(sim.last.unwrap().lowered_timeout, None);
    assert_eq!(sim.secs(), 432_000);
    // ... so an out-of-window FIN the other way lowers the timeout to 300 s.
    sim.expect(
        A,
        P::new(FIN | ACK, 1001 + 10_000_000, 5001, 502),
        Out::Invalid,
        TcpConntrack::Established,
    );
    let lowered = sim.last.unwrap().lowered_timeout;
    assert_eq!(lowered, Some(sim.now.wrapping_add(300 * HZ)));
    assert_eq!(sim.secs(), 300);
    // Not again below 120 s... nor when the entry has less than the UNACK timeout left.
    sim.tick(200);
    sim.expect(
        B,
        P::new(RST, 5001 + 10_000_000, 0, 0),
        Out::Invalid,
        TcpConntrack::Established,
    );
    assert_eq!(sim.last.unwrap().lowered_timeout, None);
    assert_eq!(sim.secs(), 100);
    assert_eq!(sim.invalid, [1, 3]);
    // ignore_invalid_rst: the RST below the ack passes to the window check.
    let mut sim = Sim::with(TcpSettings {
        ignore_invalid_rst: true,
        ..S
    });
    sim.handshake(1000, 5000, 7);
    sim.expect(
        B,
        P::new(RST, 4000, 0, 0),
        Out::Accept,
        TcpConntrack::Established,
    );
    assert!(sim.logs.is_empty());
    assert_eq!(sim.secs(), 300);
    // A RST inside the window but not exact keeps ESTABLISHED, with 300 s.
    let mut sim = established();
    sim.expect(
        B,
        P::new(RST, 5001 + 100, 0, 0),
        Out::Accept,
        TcpConntrack::Established,
    );
    assert_eq!(sim.secs(), 300);
    assert_eq!(sim.tcp().last_index, TcpIndex::Rst);
}

#[test]
fn fixed_timeout_is_never_lowered() {
    let mut conn = TcpConn::default();
    let mut sim = established();
    sim.expect(
        B,
        P::new(RST, 5001 + 10_000_000, 0, 0),
        Out::Invalid,
        TcpConntrack::Established,
    );
    conn.clone_from(&sim.tcp());
    let seg = P::new(FIN | ACK, 1001 + 10_000_000, 5001, 502).seg();
    let ctx = TcpPacketCtx {
        dir: Dir::Original,
        status: sim.status() | IPS_FIXED_TIMEOUT,
        ct_timeout: sim.ct().timeout,
        now: sim.now,
        hz: HZ,
        synproxy: false,
    };
    let a = tcp_packet(&mut conn, &seg, &ctx, &S, &T);
    assert_eq!(a.verdict, TcpVerdict::Invalid);
    assert_eq!(a.lowered_timeout, None);
    // Without the bit, the same packet lowers it.
    let mut conn = sim.tcp();
    let a = tcp_packet(
        &mut conn,
        &seg,
        &TcpPacketCtx {
            status: sim.status(),
            ..ctx
        },
        &S,
        &T,
    );
    assert!(a.lowered_timeout.is_some());
}

#[test]
fn rst_before_any_reply_kills_the_entry() {
    for flags in [RST | ACK, RST] {
        let mut sim = Sim::new();
        sim.expect(
            A,
            P::new(SYN, 1000, 0, 100),
            Out::Accept,
            TcpConntrack::SynSent,
        );
        let ack = if flags & ACK != 0 { 1001 } else { 0 };
        assert_eq!(sim.send(B, &P::new(flags, 0, ack, 0)), Out::Accept);
        assert_eq!(sim.state(), None, "killed");
        assert_eq!(sim.killed, 1);
        let a = sim.last.unwrap();
        assert!(a.kill && a.refresh.is_none() && a.protoinfo);
    }
    // The client's own RST before a reply, too.
    let mut sim = Sim::new();
    sim.expect(
        A,
        P::new(SYN, 1000, 0, 100),
        Out::Accept,
        TcpConntrack::SynSent,
    );
    assert_eq!(sim.send(A, &P::new(RST, 1001, 0, 0)), Out::Accept);
    assert_eq!(sim.state(), None);
}

#[test]
fn retransmitted_syn_does_not_refresh() {
    let mut sim = Sim::new();
    sim.expect(
        A,
        P::new(SYN, 1000, 0, 100),
        Out::Accept,
        TcpConntrack::SynSent,
    );
    let timeout = sim.ct().timeout;
    sim.tick(3);
    sim.expect(
        A,
        P::new(SYN, 1000, 0, 100),
        Out::Accept,
        TcpConntrack::SynSent,
    );
    assert_eq!(sim.last.unwrap().refresh, None);
    assert_eq!(sim.ct().timeout, timeout);
    assert_eq!(sim.secs(), 117);
    // A SYN with a new ISN (port reuse) re-initialises the window data, still no refresh.
    sim.expect(
        A,
        P::new(SYN, 90_000, 0, 200),
        Out::Accept,
        TcpConntrack::SynSent,
    );
    assert_eq!(sim.tcp().peer(Dir::Original).td_end, 90_001);
    assert_eq!(sim.ct().timeout, timeout);
}

#[test]
fn retransmitted_syn_ack_is_ignored() {
    let mut sim = Sim::new();
    sim.expect(
        A,
        P::new(SYN, 1000, 0, 100),
        Out::Accept,
        TcpConntrack::SynSent,
    );
    sim.expect(
        B,
        P::new(SYN | ACK, 5000, 1001, 100),
        Out::Accept,
        TcpConntrack::SynRecv,
    );
    let timeout = sim.ct().timeout;
    sim.tick(1);
    sim.expect(
        B,
        P::new(SYN | ACK, 5000, 1001, 100),
        Out::Accept,
        TcpConntrack::SynRecv,
    );
    assert_eq!(sim.ct().timeout, timeout, "ignored: not refreshed");
    assert_eq!(
        sim.logs.last(),
        Some(&TcpLog::Ignored {
            index: TcpIndex::SynAck,
            dir: Dir::Reply,
            state: TcpConntrack::SynRecv
        })
    );
    assert_eq!(
        sim.logs.last().unwrap().to_string(),
        "packet (index 1) in dir 1 ignored, state SYN_RECV"
    );
    sim.expect(
        A,
        P::new(ACK, 1001, 5001, 100),
        Out::Accept,
        TcpConntrack::Established,
    );
    assert!(sim.assured());
}

#[test]
fn syn_ack_answering_an_ignored_syn_resynchronises() {
    // A's SYN/ACK was lost; A retransmits its SYN with other options (ignored in SYN_RECV);
    // B's SYN/ACK acking that SYN brings conntrack back in sync.
    let mut sim = Sim::new();
    sim.expect(
        A,
        P::new(SYN, 1000, 0, 100),
        Out::Accept,
        TcpConntrack::SynSent,
    );
    sim.expect(
        B,
        P::new(SYN | ACK, 5000, 1001, 100),
        Out::Accept,
        TcpConntrack::SynRecv,
    );
    sim.expect(
        A,
        P::new(SYN, 3000, 0, 300).opts(&linux_syn_opts(5)),
        Out::Accept,
        TcpConntrack::SynRecv,
    );
    let t = sim.tcp();
    assert_eq!(
        (t.last_index, t.last_dir, t.last_end),
        (TcpIndex::Syn, Dir::Original, 3001)
    );
    assert_eq!(t.last_wscale, 5);
    assert_eq!(
        t.last_flags,
        IP_CT_TCP_FLAG_WINDOW_SCALE | IP_CT_TCP_FLAG_SACK_PERM
    );
    sim.tick(1);
    sim.expect(
        B,
        P::new(SYN | ACK, 7000, 3001, 400).opts(&linux_syn_opts(6)),
        Out::Accept,
        TcpConntrack::SynRecv,
    );
    assert!(sim.last.unwrap().refresh.is_some());
    let o = *sim.tcp().peer(Dir::Original);
    assert_eq!((o.td_end, o.td_maxwin, o.td_scale), (3001, 300, 5));
    let r = *sim.tcp().peer(Dir::Reply);
    assert_eq!((r.td_end, r.td_scale), (7001, 6));
    sim.expect(
        A,
        P::new(ACK, 3001, 7001, 100),
        Out::Accept,
        TcpConntrack::Established,
    );
    assert!(sim.assured());
    assert_eq!(sim.invalid, [0, 0]);
}

#[test]
fn lost_ack_and_late_syn_ack() {
    // The handshake's ACK never reached us: the first data packet establishes.
    let mut sim = Sim::new();
    sim.expect(
        A,
        P::new(SYN, 1000, 0, 100),
        Out::Accept,
        TcpConntrack::SynSent,
    );
    sim.expect(
        B,
        P::new(SYN | ACK, 5000, 1001, 100),
        Out::Accept,
        TcpConntrack::SynRecv,
    );
    sim.expect(
        A,
        P::new(PSH | ACK, 1001, 5001, 100).len(50),
        Out::Accept,
        TcpConntrack::Established,
    );
    assert!(sim.assured());
    // The ACK reached us but not B: B retransmits the SYN/ACK, ignored in ESTABLISHED.
    let mut sim = established();
    sim.expect(
        B,
        P::new(SYN | ACK, 5000, 1001, 100),
        Out::Accept,
        TcpConntrack::Established,
    );
    assert_eq!(sim.last.unwrap().refresh, None);
    sim.expect(
        A,
        P::new(ACK, 1001, 5001, 502),
        Out::Accept,
        TcpConntrack::Established,
    );
    // An ACK from B in SYN_RECV (answering a late SYN) stays SYN_RECV.
    let mut sim = Sim::new();
    sim.expect(
        A,
        P::new(SYN, 1000, 0, 100),
        Out::Accept,
        TcpConntrack::SynSent,
    );
    sim.expect(
        B,
        P::new(SYN | ACK, 5000, 1001, 100),
        Out::Accept,
        TcpConntrack::SynRecv,
    );
    sim.expect(
        B,
        P::new(ACK, 5001, 1001, 100),
        Out::Accept,
        TcpConntrack::SynRecv,
    );
    assert!(!sim.assured());
    // An ACK from B in SYN_SENT (half-open connection) is ignored.
    let mut sim = Sim::new();
    sim.expect(
        A,
        P::new(SYN, 1000, 0, 100),
        Out::Accept,
        TcpConntrack::SynSent,
    );
    sim.expect(
        B,
        P::new(ACK, 777, 888, 100),
        Out::Accept,
        TcpConntrack::SynSent,
    );
    assert_eq!(sim.tcp().last_ack, 888, "possible challenge ACK noted");
}

#[test]
fn simultaneous_open_and_close() {
    let mut sim = Sim::new();
    sim.expect(
        A,
        P::new(SYN, 1000, 0, 100).opts(&linux_syn_opts(7)),
        Out::Accept,
        TcpConntrack::SynSent,
    );
    sim.expect(
        B,
        P::new(SYN, 5000, 0, 200).opts(&linux_syn_opts(7)),
        Out::Accept,
        TcpConntrack::SynSent2,
    );
    assert_ne!(sim.tcp().last_flags & IP_CT_TCP_SIMULTANEOUS_OPEN, 0);
    assert_eq!(sim.secs(), 120);
    // A late retransmitted SYN from either side stays in SYN_SENT2.
    sim.expect(
        A,
        P::new(SYN, 1000, 0, 100),
        Out::Accept,
        TcpConntrack::SynSent2,
    );
    sim.expect(
        B,
        P::new(SYN, 5000, 0, 200).opts(&linux_syn_opts(7)),
        Out::Accept,
        TcpConntrack::SynSent2,
    );
    // A answers B's SYN: SYN_RECV.
    sim.expect(
        A,
        P::new(SYN | ACK, 1000, 5001, 100).opts(&linux_syn_opts(7)),
        Out::Accept,
        TcpConntrack::SynRecv,
    );
    assert_eq!(sim.secs(), 60);
    // B's SYN/ACK is ignored in SYN_RECV.
    sim.expect(
        B,
        P::new(SYN | ACK, 5000, 1001, 200).opts(&linux_syn_opts(7)),
        Out::Accept,
        TcpConntrack::SynRecv,
    );
    // B's ACK: established thanks to the simultaneous open flag.
    sim.expect(
        B,
        P::new(ACK, 5001, 1001, 200),
        Out::Accept,
        TcpConntrack::Established,
    );
    assert!(sim.assured());
    sim.expect(
        A,
        P::new(ACK, 1001, 5001, 100),
        Out::Accept,
        TcpConntrack::Established,
    );
    // Both close at once.
    sim.expect(
        A,
        P::new(FIN | ACK, 1001, 5001, 100),
        Out::Accept,
        TcpConntrack::FinWait,
    );
    sim.expect(
        B,
        P::new(FIN | ACK, 5001, 1001, 200),
        Out::Accept,
        TcpConntrack::LastAck,
    );
    sim.expect(
        A,
        P::new(ACK, 1002, 5002, 100),
        Out::Accept,
        TcpConntrack::TimeWait,
    );
    sim.expect(
        B,
        P::new(ACK, 5002, 1002, 200),
        Out::Accept,
        TcpConntrack::TimeWait,
    );
    assert_eq!(sim.invalid, [0, 0]);
    // Without the flag, a reply ACK in SYN_RECV stays SYN_RECV (see lost_ack_...).
}

#[test]
fn syn_on_time_wait_reopens() {
    let mut sim = established();
    sim.expect(
        A,
        P::new(FIN | ACK, 1001, 5001, 502),
        Out::Accept,
        TcpConntrack::FinWait,
    );
    sim.expect(
        B,
        P::new(FIN | ACK, 5001, 1002, 509),
        Out::Accept,
        TcpConntrack::LastAck,
    );
    sim.expect(
        A,
        P::new(ACK, 1002, 5002, 502),
        Out::Accept,
        TcpConntrack::TimeWait,
    );
    assert!(sim.assured());
    // A new SYN from the client: REPEAT, a fresh entry.
    sim.expect(
        A,
        P::new(SYN, 90_000, 0, 64240).opts(&linux_syn_opts(7)),
        Out::Accept,
        TcpConntrack::SynSent,
    );
    assert_eq!((sim.repeats, sim.created), (1, 2));
    assert!(sim.unreplied() && !sim.assured());
    assert_eq!(sim.ct().orig, A);
    assert_eq!(sim.secs(), 120);
    // A SYN from the server on TIME_WAIT also reopens, with the server as original.
    let mut sim = established();
    sim.expect(
        B,
        P::new(FIN | ACK, 5001, 1001, 509),
        Out::Accept,
        TcpConntrack::FinWait,
    );
    sim.expect(
        A,
        P::new(FIN | ACK, 1001, 5002, 502),
        Out::Accept,
        TcpConntrack::LastAck,
    );
    sim.expect(
        B,
        P::new(ACK, 5002, 1002, 509),
        Out::Accept,
        TcpConntrack::TimeWait,
    );
    sim.expect(
        B,
        P::new(SYN, 70_000, 0, 100),
        Out::Accept,
        TcpConntrack::SynSent,
    );
    assert_eq!(sim.repeats, 1);
    assert_eq!(sim.ct().orig, B);
}

#[test]
fn syn_on_close_reopens_only_after_own_rst() {
    // The client aborted (RST), then opens again: REPEAT.
    let mut sim = established();
    sim.expect(
        A,
        P::new(RST | ACK, 1001, 5001, 0),
        Out::Accept,
        TcpConntrack::Close,
    );
    sim.expect(
        A,
        P::new(SYN, 9000, 0, 100),
        Out::Accept,
        TcpConntrack::SynSent,
    );
    assert_eq!(sim.repeats, 1);
    // The server reset it: the client's SYN is ignored (in CLOSE, nothing closed by FIN).
    let mut sim = established();
    sim.expect(
        B,
        P::new(RST | ACK, 5001, 1001, 0),
        Out::Accept,
        TcpConntrack::Close,
    );
    sim.expect(
        A,
        P::new(SYN, 9000, 0, 100),
        Out::Accept,
        TcpConntrack::Close,
    );
    assert_eq!(sim.repeats, 0);
    assert!(matches!(sim.logs.last(), Some(TcpLog::Ignored { .. })));
    // ... and the server's SYN/ACK to it resynchronises: SYN_RECV.
    sim.expect(
        B,
        P::new(SYN | ACK, 20_000, 9001, 100),
        Out::Accept,
        TcpConntrack::SynRecv,
    );
    sim.expect(
        A,
        P::new(ACK, 9001, 20_001, 100),
        Out::Accept,
        TcpConntrack::Established,
    );
    assert_eq!(sim.invalid, [0, 0]);
}

#[test]
fn rst_answering_an_ignored_syn_skips_the_window_check() {
    // A new SYN on an established connection is ignored; the server answers it with a RST
    // whose ack is that SYN's end: accepted without window check, CLOSE.
    let mut sim = established();
    sim.expect(
        A,
        P::new(SYN, 777_777, 0, 100),
        Out::Accept,
        TcpConntrack::Established,
    );
    sim.expect(
        B,
        P::new(RST | ACK, 3_000_000_000, 777_778, 0),
        Out::Accept,
        TcpConntrack::Close,
    );
    assert_eq!(sim.secs(), 10);
    // The client's retransmitted SYN then reopens? No: the RST was the server's.
    // An ACK answering a half-open connection (c): unassured entry, RST acking it.
    let mut sim = Sim::new();
    sim.expect(
        A,
        P::new(ACK, 100, 200, 100),
        Out::Accept,
        TcpConntrack::Established,
    );
    assert_eq!(
        sim.send(B, &P::new(RST | ACK, 3_000_000_000, 100, 0)),
        Out::Accept
    );
    assert!(sim.last.unwrap().protoinfo, "to CLOSE");
    // Not replied before: killed.
    assert_eq!(sim.state(), None);
    assert_eq!(sim.killed, 1);
}

#[test]
fn challenge_ack_in_last_ack_is_not_the_last_ack() {
    let mut sim = established();
    sim.expect(
        B,
        P::new(FIN | ACK, 5001, 1001, 509),
        Out::Accept,
        TcpConntrack::FinWait,
    );
    sim.expect(
        A,
        P::new(FIN | ACK, 1001, 5002, 502),
        Out::Accept,
        TcpConntrack::LastAck,
    );
    // The client, having closed, reuses the port: a SYN, ignored in LAST_ACK.
    sim.expect(
        A,
        P::new(SYN, 50_000, 0, 100).opts(&linux_syn_opts(2)),
        Out::Accept,
        TcpConntrack::LastAck,
    );
    assert_ne!(sim.tcp().last_flags & IP_CT_EXP_CHALLENGE_ACK, 0);
    // The server answers with a challenge ACK: not the last ACK.
    sim.expect(
        B,
        P::new(ACK, 5002, 1002, 509),
        Out::Accept,
        TcpConntrack::LastAck,
    );
    assert_eq!(sim.logs.last(), Some(&TcpLog::ChallengeAck));
    assert_eq!(
        sim.logs.last().unwrap().to_string(),
        "challenge-ack ignored"
    );
    assert_eq!(sim.tcp().last_flags & IP_CT_EXP_CHALLENGE_ACK, 0);
    // The real last ACK then moves to TIME_WAIT.
    sim.expect(
        B,
        P::new(ACK, 5002, 1002, 509),
        Out::Accept,
        TcpConntrack::TimeWait,
    );
}

#[test]
fn synproxy_keepalive_in_syn_sent() {
    let mut sim = Sim::new();
    sim.expect(
        A,
        P::new(SYN, 1000, 0, 100),
        Out::Accept,
        TcpConntrack::SynSent,
    );
    sim.expect(
        A,
        P::new(SYN, 1000, 0, 100),
        Out::Accept,
        TcpConntrack::SynSent,
    );
    let keepalive = P::new(ACK, 1000, 0, 100).seg();
    for synproxy in [false, true] {
        let mut conn = sim.tcp();
        let ctx = TcpPacketCtx {
            dir: Dir::Original,
            status: sim.status(),
            ct_timeout: sim.ct().timeout,
            now: sim.now,
            hz: HZ,
            synproxy,
        };
        let a = tcp_packet(&mut conn, &keepalive, &ctx, &S, &T);
        if synproxy {
            assert_eq!(
                (a.verdict, a.refresh, a.log),
                (TcpVerdict::Accept, None, None)
            );
        } else {
            assert_eq!(a.verdict, TcpVerdict::Invalid);
            assert_eq!(
                a.log.unwrap().to_string(),
                "packet (index 3) in dir 0 invalid, state SYN_SENT"
            );
        }
    }
}

#[test]
fn midstream_pickup_with_loose() {
    let mut sim = Sim::new();
    sim.expect(
        A,
        P::new(PSH | ACK, 1_000_000, 2_000_000, 1000).len(100),
        Out::Accept,
        TcpConntrack::Established,
    );
    let o = *sim.tcp().peer(Dir::Original);
    assert_eq!(
        (o.td_end, o.td_maxwin, o.td_maxend),
        (1_000_100, 1000, 1_001_100)
    );
    let liberal = IP_CT_TCP_FLAG_SACK_PERM | IP_CT_TCP_FLAG_BE_LIBERAL;
    assert_eq!(o.flags & liberal, liberal);
    assert_eq!(sim.tcp().peer(Dir::Reply).flags & liberal, liberal);
    assert_eq!(sim.tcp().last_index, TcpIndex::Ack);
    // Not replied yet: at most the unacknowledged timeout.
    assert!(sim.unreplied());
    assert_eq!(sim.secs(), 300);
    // The answer, still before SEEN_REPLY is set: 300 s, not assured.
    sim.expect(
        B,
        P::new(ACK, 2_000_000, 1_000_100, 1000),
        Out::Accept,
        TcpConntrack::Established,
    );
    assert!(!sim.assured());
    assert_eq!(sim.secs(), 300);
    // The next packet: a valid answer for a picked-up connection, assured.
    sim.expect(
        A,
        P::new(ACK, 1_000_100, 2_000_000, 1000),
        Out::Accept,
        TcpConntrack::Established,
    );
    assert!(sim.assured());
    assert_eq!(sim.secs(), 432_000);
    // Liberal: a wild sequence number is still accepted.
    sim.expect(
        B,
        P::new(ACK, 2_000_000 + 50_000_000, 1_000_100, 1000),
        Out::Accept,
        TcpConntrack::Established,
    );
    assert_eq!(sim.invalid, [0, 0]);
}

#[test]
fn midstream_pickup_refused_without_loose() {
    for loose in [true, false] {
        let mut sim = Sim::with(TcpSettings { loose, ..S });
        let out = if loose { Out::Accept } else { Out::Invalid };
        assert_eq!(sim.send(A, &P::new(ACK, 1, 2, 3)), out);
        if !loose {
            assert_eq!(sim.state(), None);
            // Refused without a log line (only the table's "invalid new" logs).
            assert_eq!(sim.last.unwrap().log, None);
        }
        // FIN, RST, SYN/ACK and no flag never create an entry.
        for flags in [FIN | ACK, RST, RST | ACK, SYN | ACK] {
            let mut sim = Sim::with(TcpSettings { loose, ..S });
            assert_eq!(sim.send(A, &P::new(flags, 1, 2, 3)), Out::Invalid);
            assert_eq!(sim.state(), None);
            assert_eq!(sim.last.unwrap().log, Some(TcpLog::InvalidNew));
        }
        // A SYN always does.
        let mut sim = Sim::with(TcpSettings { loose, ..S });
        sim.expect(A, P::new(SYN, 1, 0, 3), Out::Accept, TcpConntrack::SynSent);
    }
    // tcp_new directly.
    let mut c = TcpConn {
        retrans: 9,
        ..TcpConn::default()
    };
    assert!(!tcp_new(&mut c, &TcpSegment::new(ACK, 1, 2, 3), false));
    assert_eq!(c.retrans, 9, "untouched when refused");
    assert!(tcp_new(&mut c, &TcpSegment::new(ACK, 1, 2, 0), true));
    assert_eq!(c.retrans, 0);
    assert_eq!(c.peer(Dir::Original).td_maxwin, 1);
    assert_eq!(c.last_index, TcpIndex::None);
    assert_eq!(c.state, TcpConntrack::None);
}

#[test]
fn max_retrans_gives_the_retrans_timeout() {
    let t = Timeouts {
        tcp_max_retrans: 200,
        tcp_unacknowledged: 250,
        ..T
    };
    for (timeouts, retrans_secs) in [(T, 300), (t, 200)] {
        let mut sim = established();
        sim.ct.settings.timeouts = timeouts;
        // The same ACK, again and again (a retransmitting, unanswered sender).
        let dup = P::new(ACK, 1001, 5001, 502);
        let mut seen = Vec::new();
        for _ in 0..6 {
            sim.expect(A, dup.clone(), Out::Accept, TcpConntrack::Established);
            seen.push((sim.tcp().retrans, sim.secs()));
        }
        // The handshake's ACK was the first: the first dup is retrans 1. From 3 on: RETRANS.
        let big = 432_000;
        assert_eq!(
            seen,
            [
                (1, big),
                (2, big),
                (3, retrans_secs),
                (4, retrans_secs),
                (5, retrans_secs),
                (6, retrans_secs)
            ]
        );
        // Something new resets the count.
        sim.expect(
            A,
            P::new(ACK, 1001, 5001, 501),
            Out::Accept,
            TcpConntrack::Established,
        );
        assert_eq!((sim.tcp().retrans, sim.secs()), (0, big));
    }
    // max_retrans 0: every packet gets the shorter timeout.
    let mut sim = Sim::with(TcpSettings {
        max_retrans: 0,
        ..S
    });
    sim.handshake(1000, 5000, 7);
    assert_eq!(sim.secs(), 300);
}

#[test]
fn zero_window_gives_the_retrans_timeout() {
    let mut sim = established();
    sim.expect(
        B,
        P::new(ACK, 5001, 1001, 0),
        Out::Accept,
        TcpConntrack::Established,
    );
    assert_eq!(sim.tcp().last_win, 0);
    assert_eq!(sim.secs(), 300);
    // The window opens again.
    sim.expect(
        B,
        P::new(ACK, 5001, 1001, 10),
        Out::Accept,
        TcpConntrack::Established,
    );
    assert_eq!(sim.secs(), 432_000);
    // Shorter state timeouts are not raised to it.
    sim.expect(
        A,
        P::new(FIN | ACK, 1001, 5001, 0),
        Out::Accept,
        TcpConntrack::FinWait,
    );
    sim.expect(
        B,
        P::new(ACK, 5001, 1002, 0),
        Out::Accept,
        TcpConntrack::CloseWait,
    );
    assert_eq!(sim.secs(), 60);
}

#[test]
fn first_packet_timeout_is_relative() {
    let seg = P::new(SYN, 1, 0, 100).seg();
    let mut conn = TcpConn::default();
    let ctx = TcpPacketCtx {
        dir: Dir::Original,
        status: 0,
        ct_timeout: 0,
        now: 12345,
        hz: 1000,
        synproxy: false,
    };
    let a = tcp_packet(&mut conn, &seg, &ctx, &S, &T);
    assert_eq!(
        a,
        TcpAction {
            verdict: TcpVerdict::Accept,
            refresh: Some(120 * 1000),
            kill: false,
            set_assured: false,
            lowered_timeout: None,
            protoinfo: true,
            log: None,
        }
    );
    assert_eq!(conn.state, TcpConntrack::SynSent);
}

#[test]
fn early_drop_of_closing_states() {
    for s in 0..10u8 {
        let s = TcpConntrack::from_u8(s).unwrap();
        let want = matches!(
            s,
            TcpConntrack::FinWait
                | TcpConntrack::CloseWait
                | TcpConntrack::LastAck
                | TcpConntrack::TimeWait
                | TcpConntrack::Close
        );
        assert_eq!(tcp_can_early_drop(s), want, "{}", s.name());
    }
}

#[test]
fn log_messages_match_6_12() {
    let cases = [
        (TcpLog::InvalidNew, "invalid new"),
        (TcpLog::InvalidRst, "invalid rst"),
        (TcpLog::ChallengeAck, "challenge-ack ignored"),
        (TcpLog::Overshot(12), "12 bytes more than expected"),
        (
            TcpLog::SeqOver(7),
            "SEQ is over upper bound 7 (over the window of the receiver)",
        ),
        (
            TcpLog::AckOver(8),
            "ACK is over upper bound 8 (ACKed data not seen yet)",
        ),
        (
            TcpLog::SeqUnder(9),
            "SEQ is under lower bound 9 (already ACKed data retransmitted)",
        ),
        (
            TcpLog::AckUnder(4294967295),
            "ignored ACK under lower bound 4294967295 (possible overly delayed)",
        ),
        (
            TcpLog::InvalidState {
                index: TcpIndex::Fin,
                dir: Dir::Reply,
                state: TcpConntrack::SynSent2,
            },
            "packet (index 2) in dir 1 invalid, state SYN_SENT2",
        ),
    ];
    for (l, s) in cases {
        assert_eq!(l.to_string(), s);
    }
}

#[test]
fn ipv6_session() {
    let mut sim = Sim::new();
    let v6 = |p: P| p.v6();
    sim.expect(
        A,
        v6(P::new(SYN, 1000, 0, 64800).opts(&linux_syn_opts(7))),
        Out::Accept,
        TcpConntrack::SynSent,
    );
    sim.expect(
        B,
        v6(P::new(SYN | ACK, 5000, 1001, 64800).opts(&linux_syn_opts(7))),
        Out::Accept,
        TcpConntrack::SynRecv,
    );
    sim.expect(
        A,
        v6(P::new(ACK, 1001, 5001, 507).len(1200)),
        Out::Accept,
        TcpConntrack::Established,
    );
    sim.expect(
        B,
        v6(P::new(FIN | ACK, 5001, 2201, 507)),
        Out::Accept,
        TcpConntrack::FinWait,
    );
    assert!(sim.assured());
}

// ---------------------------------------------------------------------------------------------
// The kernel's packetdrill selftests (tools/testing/selftests/net/netfilter/packetdrill/).
//
// packetdrill runs a real socket (A here, the kernel under test) against scripted packets
// from B. Sequence numbers in SYN segments are absolute; in the others they are relative to
// the sender's ISN: A's is chosen by the kernel (LISN below), B's is the sequence number of
// B's first SYN or SYN/ACK. "<" lines are B's packets (in at PRE_ROUTING), ">" lines A's.
// The scripts drop every packet conntrack marks INVALID and count them; each test checks
// the states the script greps for and the same counts.

/// The kernel's ISN in the tests: close below 2^32, so that its numbers wrap.
const LISN: u32 = 0xffff_fe00;

/// A's sequence number `rel` (script) to live.
fn l(rel: u32) -> u32 {
    LISN.wrapping_add(rel)
}

#[test]
fn packetdrill_conntrack_ack_loss_stall() {
    // An already-acked, retransmitted segment is let through, not tagged INVALID.
    let mut sim = Sim::new();
    // +0 < S 0:0(0) win 32792 <mss 1000>
    sim.expect(
        B,
        P::new(SYN, 0, 0, 32792).opts(&[tcpopt::mss(1000)]),
        Out::Accept,
        TcpConntrack::SynSent,
    );
    // +0 > S. 0:0(0) ack 1 <mss 1460>
    sim.expect(
        A,
        P::new(SYN | ACK, LISN, 1, 65535).opts(&[tcpopt::mss(1460)]),
        Out::Accept,
        TcpConntrack::SynRecv,
    );
    // +.01 < . 1:1(0) ack 1 win 65535
    sim.expect(
        B,
        P::new(ACK, 1, l(1), 65535),
        Out::Accept,
        TcpConntrack::Established,
    );
    // 46 times: < P. x:x+1460(1460) ack 1 win 257, > . 1:1(0) ack x+1460 win 65535
    let mut x = 1u32;
    while x < 67161 {
        sim.expect(
            B,
            P::new(PSH | ACK, x, l(1), 257).len(1460),
            Out::Accept,
            TcpConntrack::Established,
        );
        x += 1460;
        sim.expect(
            A,
            P::new(ACK, l(1), x, 65535),
            Out::Accept,
            TcpConntrack::Established,
        );
    }
    assert_eq!(x, 67161);
    // +0.0001 < P. 1:1461(1460) ack 1 win 257: "SEQ is under the lower bound" is logged but
    // the packet must pass (the ack below is "only sent if above packet isn't flagged as
    // invalid").
    sim.expect(
        B,
        P::new(PSH | ACK, 1, l(1), 257).len(1460),
        Out::Accept,
        TcpConntrack::Established,
    );
    assert_eq!(sim.logs.last(), Some(&TcpLog::SeqUnder(67161 - 65535 - 1)));
    // +.0 > . 1:1(0) ack 67161 win 65535
    sim.expect(
        A,
        P::new(ACK, l(1), 67161, 65535),
        Out::Accept,
        TcpConntrack::Established,
    );
    assert!(sim.assured());
    assert_eq!(sim.invalid, [0, 0]);
}

/// The start of conntrack_inexact_rst.pkt and conntrack_rst_invalid.pkt: A connects, B
/// (ISN 1) sends 3000 bytes, A acks and writes 1000 bytes.
fn packetdrill_connect_and_exchange(sim: &mut Sim) {
    // 0.1 > S 0:0(0) win 65535 <mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 8>
    sim.expect(
        A,
        P::new(SYN, LISN, 0, 65535).opts(&linux_syn_opts(8)),
        Out::Accept,
        TcpConntrack::SynSent,
    );
    // +0.1 < S. 1:1(0) ack 1 win 65535 <mss 1460>: B's ISN is 1, no window scaling.
    sim.expect(
        B,
        P::new(SYN | ACK, 1, l(1), 65535).opts(&[tcpopt::mss(1460)]),
        Out::Accept,
        TcpConntrack::SynRecv,
    );
    assert_eq!(sim.tcp().peer(Dir::Original).td_scale, 0);
    // +0 > . 1:1(0) ack 1 win 65535
    sim.expect(
        A,
        P::new(ACK, l(1), 2, 65535),
        Out::Accept,
        TcpConntrack::Established,
    );
    // < . 1:1001(1000) ack 1 win 65535, twice more
    for rel in [1, 1001, 2001] {
        sim.expect(
            B,
            P::new(ACK, 1 + rel, l(1), 65535).len(1000),
            Out::Accept,
            TcpConntrack::Established,
        );
    }
    // > . 1:1(0) ack 1001 / 2001 / 3001 win 65535
    for rel in [1001, 2001, 3001] {
        sim.expect(
            A,
            P::new(ACK, l(1), 1 + rel, 65535),
            Out::Accept,
            TcpConntrack::Established,
        );
    }
    // +0 write(3, ..., 1000) = 1000, sent at once:
    // > P. 1:1001(1000) ack 3001 win 65535
    sim.expect(
        A,
        P::new(PSH | ACK, l(1), 3002, 65535).len(1000),
        Out::Accept,
        TcpConntrack::Established,
    );
}

#[test]
fn packetdrill_conntrack_inexact_rst() {
    // A RST not exactly at the next sequence number still closes the connection if it is
    // in CLOSE_WAIT already; a spurious RST in CLOSE is not INVALID.
    let mut sim = Sim::new();
    packetdrill_connect_and_exchange(&mut sim);
    // +0 < F. 3001:3001(0) ack 1001 win 65535: "FIN_WAIT, then CLOSE_WAIT"
    sim.expect(
        B,
        P::new(FIN | ACK, 3002, l(1001), 65535),
        Out::Accept,
        TcpConntrack::FinWait,
    );
    // +0 > . 1001:1001(0) ack 3002 win 65535
    sim.expect(
        A,
        P::new(ACK, l(1001), 3003, 65535),
        Out::Accept,
        TcpConntrack::CloseWait,
    );
    // grep -q CLOSE_WAIT
    assert_eq!(sim.state().unwrap().name(), "CLOSE_WAIT");
    // +1 close(3): +0 > R. 1001:1001(0) ack 3002 win 65535
    sim.tick(1);
    sim.expect(
        A,
        P::new(RST | ACK, l(1001), 3003, 65535),
        Out::Accept,
        TcpConntrack::Close,
    );
    // grep -q "CLOSE "
    assert_eq!(sim.state().unwrap().name(), "CLOSE");
    // +0.1 < R 2001:2001(0) win 0: spurious, must not be INVALID.
    sim.expect(B, P::new(RST, 2002, 0, 0), Out::Accept, TcpConntrack::Close);
    // No packets marked INVALID, either way.
    assert_eq!(sim.invalid, [0, 0]);
}

#[test]
fn packetdrill_conntrack_rst_invalid() {
    // Out-of-window RSTs are INVALID and the connection stays ESTABLISHED.
    let mut sim = Sim::new();
    packetdrill_connect_and_exchange(&mut sim);
    // +0.0 < R 0:0(0) win 0: out of window
    sim.expect(
        B,
        P::new(RST, 1, 0, 0),
        Out::Invalid,
        TcpConntrack::Established,
    );
    // +0.0 < R 1000000:1000000(0) win 0: out of window
    sim.expect(
        B,
        P::new(RST, 1_000_001, 0, 0),
        Out::Invalid,
        TcpConntrack::Established,
    );
    // +0.0 < R 42:42(0) win 0: in-window but not exact
    sim.expect(
        B,
        P::new(RST, 43, 0, 0),
        Out::Invalid,
        TcpConntrack::Established,
    );
    // (> P. 1:1001(1000) ack 3001, the write's data, went out above.)
    // +0 < . 3001:3001(0) ack 1001 win 65535
    sim.expect(
        B,
        P::new(ACK, 3002, l(1001), 65535),
        Out::Accept,
        TcpConntrack::Established,
    );
    // +0.0 < R. 3000:3000(0) ack 1001 win 0
    sim.expect(
        B,
        P::new(RST | ACK, 3001, l(1001), 0),
        Out::Invalid,
        TcpConntrack::Established,
    );
    assert_eq!(sim.logs.last(), Some(&TcpLog::InvalidRst));
    // +0.0 < R. 3001:3001(0) ack 1001 win 0: exact next sequence, CLOSE.
    sim.expect(
        B,
        P::new(RST | ACK, 3002, l(1001), 0),
        Out::Accept,
        TcpConntrack::Close,
    );
    // Four invalid RSTs in, nothing out.
    assert_eq!(sim.invalid, [0, 4]);
}

#[test]
fn packetdrill_conntrack_syn_challenge_ack() {
    // A's SYN is answered by a challenge ACK of an old incarnation; A resets and
    // retransmits its SYN; everything passes and a new connection is established.
    let mut sim = Sim::new();
    let syn = || P::new(SYN, LISN, 0, 65535).opts(&linux_syn_opts(8));
    // 0.1 > S 0:0(0) win 65535 <mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 8>
    sim.expect(A, syn(), Out::Accept, TcpConntrack::SynSent);
    // 0.1 < . 145824453:145824453(0) ack 643160523 win 240
    //     <mss 1460,nop,nop,TS val 1 ecr 1,nop,wscale 0>
    let old_opts = [
        tcpopt::mss(1460),
        vec![1, 1],
        tcpopt::ts(1, 1),
        vec![1],
        tcpopt::wscale(0),
    ];
    sim.expect(
        B,
        P::new(ACK, 145824453, l(643160523), 240).opts(&old_opts),
        Out::Accept,
        TcpConntrack::SynSent,
    );
    // +0.01 > R 643160523:643160523(0) win 0: answers the challenge ACK (its seq is that
    // ACK's ack), accepted without window check.
    sim.expect(
        A,
        P::new(RST, l(643160523), 0, 0),
        Out::Accept,
        TcpConntrack::Close,
    );
    // +0.01 > S 0:0(0) ...: the kernel retransmits the SYN TCP_TIMEOUT_MIN after the bad
    // ACK, i.e. before the conntrack -L below. "Must go through": a new entry.
    sim.tick(0);
    sim.expect(A, syn(), Out::Accept, TcpConntrack::SynSent);
    assert_eq!(sim.repeats, 1);
    // +0.1 `conntrack -L | grep UNREPLIED | grep -q SYN_SENT`
    assert!(sim.unreplied());
    // +0.1 < S. 0:0(0) ack 1 win 250 <mss 1460,nop,nop,TS val 1 ecr 1,nop,wscale 0>
    let synack_opts = [
        tcpopt::mss(1460),
        vec![1, 1],
        tcpopt::ts(1, 1),
        vec![1],
        tcpopt::wscale(0),
    ];
    sim.expect(
        B,
        P::new(SYN | ACK, 0, l(1), 250).opts(&synack_opts),
        Out::Accept,
        TcpConntrack::SynRecv,
    );
    // +0.01 > . 1:1(0) ack 1 win 256 <nop,nop,TS val 1 ecr 1>
    sim.expect(
        A,
        P::new(ACK, l(1), 1, 256).opts(&[vec![1, 1], tcpopt::ts(1, 1)]),
        Out::Accept,
        TcpConntrack::Established,
    );
    // grep ESTABLISHED | grep -q ASSURED
    assert!(sim.assured());
    // No packets marked INVALID.
    assert_eq!(sim.invalid, [0, 0]);
}

#[test]
fn packetdrill_conntrack_synack_old() {
    // A SYN/ACK for an old incarnation is INVALID; the right one after A's retransmitted SYN
    // is accepted (the bug was "SEQ is over the upper bound" on it).
    let mut sim = Sim::new();
    let syn = || P::new(SYN, LISN, 0, 65535).opts(&linux_syn_opts(8));
    // 0.1 > S 0:0(0) win 65535 <mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 8>
    sim.expect(A, syn(), Out::Accept, TcpConntrack::SynSent);
    // 0.1 < S. 145824453:145824453(0) ack 643160523 win 240
    //     <mss 1440,nop,nop,TS val 1 ecr 1,nop,wscale 0>
    let opts = |mss| {
        [
            tcpopt::mss(mss),
            vec![1, 1],
            tcpopt::ts(1, 1),
            vec![1],
            tcpopt::wscale(0),
        ]
    };
    sim.expect(
        B,
        P::new(SYN | ACK, 145824453, l(643160523), 240).opts(&opts(1440)),
        Out::Invalid,
        TcpConntrack::SynSent,
    );
    assert_eq!(
        sim.logs.last(),
        Some(&TcpLog::AckOver(l(1).wrapping_add(1)))
    );
    // 1.01 > S 0:0(0) win 65535 <mss 1460,sackOK,TS val 1015 ecr 0,nop,wscale 8>
    sim.tick(1);
    sim.expect(A, syn(), Out::Accept, TcpConntrack::SynSent);
    // grep UNREPLIED | grep -q SYN_SENT
    assert!(sim.unreplied());
    // +0 < S. 145758918:145758918(0) ack 1 win 250
    //     <mss 1460,nop,nop,TS val 1 ecr 1,nop,wscale 0>
    sim.expect(
        B,
        P::new(SYN | ACK, 145758918, l(1), 250).opts(&opts(1460)),
        Out::Accept,
        TcpConntrack::SynRecv,
    );
    // +0 write(3, ..., 1) = 1, sent at once:
    // +0 > P. 1:2(1) ack 4294901762 win 256 <nop,nop,TS val 1067 ecr 1>
    // (acks are relative to the first SYN/ACK's 145824453: this is 145758919)
    let ack = 4294901762u32.wrapping_add(145824453);
    assert_eq!(ack, 145758919);
    sim.expect(
        A,
        P::new(PSH | ACK, l(1), ack, 256)
            .opts(&[vec![1, 1], tcpopt::ts(1067, 1)])
            .len(1),
        Out::Accept,
        TcpConntrack::Established,
    );
    // grep ESTABLISHED | grep -q ASSURED
    assert!(sim.assured());
    // Nothing INVALID out, one in.
    assert_eq!(sim.invalid, [0, 1]);
}

#[test]
fn packetdrill_conntrack_synack_reuse() {
    // Another SYN on an established connection: the challenge ACK passes, the RST answering
    // it clears the state and the retransmitted SYN gives a new SYN_RECV connection.
    let mut sim = Sim::new();
    let syn_opts = |ws| {
        [
            tcpopt::mss(1000),
            vec![1],
            tcpopt::wscale(ws),
            tcpopt::ts(1, 0),
            vec![1, 1],
        ]
    };
    // +0 < S 0:0(0) win 32792 <mss 1000,nop,wscale 7, TS val 1 ecr 0,nop,nop>
    sim.expect(
        B,
        P::new(SYN, 0, 0, 32792).opts(&syn_opts(7)),
        Out::Accept,
        TcpConntrack::SynSent,
    );
    // +0 > S. 0:0(0) ack 1 <mss 1460,nop,nop,TS val 100 ecr 1,nop,wscale 8>
    let synack_opts = [
        tcpopt::mss(1460),
        vec![1, 1],
        tcpopt::ts(100, 1),
        vec![1],
        tcpopt::wscale(8),
    ];
    sim.expect(
        A,
        P::new(SYN | ACK, LISN, 1, 65535).opts(&synack_opts),
        Out::Accept,
        TcpConntrack::SynRecv,
    );
    // +.01 < . 1:1(0) ack 1 win 257 <TS val 1 ecr 100,nop,nop>
    let ts = |v, e| [tcpopt::ts(v, e), vec![1, 1]];
    sim.expect(
        B,
        P::new(ACK, 1, l(1), 257).opts(&ts(1, 100)),
        Out::Accept,
        TcpConntrack::Established,
    );
    // +0 < P. 1:101(100) ack 1 win 257 <TS val 2 ecr 100,nop,nop>
    sim.expect(
        B,
        P::new(PSH | ACK, 1, l(1), 257).opts(&ts(2, 100)).len(100),
        Out::Accept,
        TcpConntrack::Established,
    );
    // +.001 > . 1:1(0) ack 101 win 256 <nop,nop,TS val 110 ecr 2>
    sim.expect(
        A,
        P::new(ACK, l(1), 101, 256).opts(&[vec![1, 1], tcpopt::ts(110, 2)]),
        Out::Accept,
        TcpConntrack::Established,
    );
    assert!(sim.assured());
    // 1.0 < S 2000:2000(0) win 32792 <mss 1000,nop,wscale 7, TS val 233 ecr 0,nop,nop>
    sim.tick(1);
    sim.expect(
        B,
        P::new(SYN, 2000, 0, 32792).opts(&syn_opts(7)),
        Out::Accept,
        TcpConntrack::Established,
    );
    // +0 > . 1:1(0) ack 101 win 256 <nop,nop,TS val 112 ecr 2>: the challenge ACK
    sim.expect(
        A,
        P::new(ACK, l(1), 101, 256).opts(&[vec![1, 1], tcpopt::ts(112, 2)]),
        Out::Accept,
        TcpConntrack::Established,
    );
    // +0 < R. 101:101(0) ack 1 win 257
    sim.expect(
        B,
        P::new(RST | ACK, 101, l(1), 257),
        Out::Accept,
        TcpConntrack::Close,
    );
    // 1.5 < S 2000:2000(0) win 32792 <mss 1000,nop,wscale 0, TS val 233 ecr 0,nop,nop>
    sim.tick(1);
    sim.expect(
        B,
        P::new(SYN, 2000, 0, 32792).opts(&syn_opts(0)),
        Out::Accept,
        TcpConntrack::SynSent,
    );
    assert_eq!(sim.repeats, 1);
    // The listener answers it at once (not in the script, which checks the state after):
    // a SYN/ACK with a new ISN.
    sim.expect(
        A,
        P::new(SYN | ACK, 0x1234_5678, 2001, 65535).opts(&synack_opts),
        Out::Accept,
        TcpConntrack::SynRecv,
    );
    // grep -q SYN_RECV; no INVALID packets (the script counts SYN/ACKs in INPUT).
    assert_eq!(sim.state().unwrap().name(), "SYN_RECV");
    assert_eq!(sim.invalid, [0, 0]);
}

#[test]
fn fuzz_invariants_hold_on_tcp_packets() {
    // The fuzz target's TCP checks (host/lib.rs, check_tcp) on real packets and every
    // truncation of them.
    let packets = [
        P::new(SYN, 1, 0, 100).opts(&linux_syn_opts(7)),
        P::new(SYN | ACK, u32::MAX, 2, 0)
            .opts(&[vec![1, 1], tcpopt::sack(&[(1, 2), (3, 4)])])
            .v6(),
        P::new(PSH | ACK, 5, 6, 7).len(40),
        P::new(RST, 0, 0, 0),
    ];
    for p in packets {
        let (pkt, _) = p.packet();
        for cut in 0..=pkt.len() {
            crate::fuzz_parse(&pkt[..cut]);
        }
    }
}
