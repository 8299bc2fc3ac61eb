// SPDX-License-Identifier: GPL-2.0

//! Host build of the kernel module's kernel-independent protocol code.
//!
//! The protocol layer, `../src/proto/`, which uses nothing but `core`, is compiled here as
//! ordinary Rust so that it can be unit tested and fuzzed with `cargo` on the build machine; the module
//! compiles the very same files into `rust_conntrack.ko`.

// Outside `cargo test` only the fuzz entry point below calls the module code.
#[cfg_attr(not(test), allow(dead_code))]
#[path = "../src/proto/mod.rs"]
pub(crate) mod proto;

#[cfg(test)]
#[path = "tests/conn.rs"]
mod conn_tests;
#[cfg(test)]
#[path = "tests/handoff.rs"]
mod handoff_tests;
#[cfg(test)]
#[path = "tests/helper_ftp.rs"]
mod helper_ftp_tests;
#[cfg(test)]
#[path = "tests/helper.rs"]
mod helper_tests;
#[cfg(test)]
#[path = "tests/pipeline.rs"]
mod pipeline_tests;
#[cfg(test)]
#[path = "tests/pkt.rs"]
mod pkt;
#[cfg(test)]
#[path = "tests/proc_expect.rs"]
mod proc_expect_tests;
#[cfg(test)]
#[path = "tests/proc_line.rs"]
mod proc_line_tests;
#[cfg(test)]
#[path = "tests/proto_dccp.rs"]
mod proto_dccp_tests;
#[cfg(test)]
#[path = "tests/proto_gre.rs"]
mod proto_gre_tests;
#[cfg(test)]
#[path = "tests/proto_sctp.rs"]
mod proto_sctp_tests;
#[cfg(test)]
#[path = "tests/proto_tcp.rs"]
mod proto_tcp_tests;
#[cfg(test)]
#[path = "tests/proto.rs"]
mod proto_tests;
#[cfg(test)]
#[path = "tests/stat.rs"]
mod stat_tests;
#[cfg(test)]
#[path = "tests/sysctl.rs"]
mod sysctl_tests;
// The host table the pipeline runs on in tests and in the fuzzer.
#[cfg_attr(not(test), allow(dead_code))]
#[path = "ct.rs"]
mod host_ct;
#[cfg(test)]
#[path = "tests/tuple.rs"]
mod tuple_tests;

use core::fmt::{self, Write};
use proto::proc_line::{self, Counter, L4Info, Snapshot};
use proto::tuple::{self, Parsed, Tuple, L3, L4};
use proto::{
    conn, proto_dccp, proto_generic, proto_gre, proto_icmp, proto_sctp, proto_tcp, proto_udp,
};

/// A `fmt::Write` into a fixed array that fails once full, like a `seq_file` page.
struct FixedBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> FixedBuf<N> {
    fn new() -> Self {
        FixedBuf {
            buf: [0; N],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in, so the prefix is valid UTF-8.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl<const N: usize> Write for FixedBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// A 32-bit value taken from `data` at `i` (cyclically; 0 for empty input), to drive the
/// non-packet inputs (status bits, clocks) from the fuzzer's bytes.
fn word(data: &[u8], i: usize) -> u32 {
    if data.is_empty() {
        return 0;
    }
    let b = |k: usize| data[(i + k) % data.len()];
    u32::from_be_bytes([b(0), b(1), b(2), b(3)])
}

/// Fuzz entry point (`host/fuzz`, target `parse`): runs the packet parsers on `data` with the
/// network header at offsets 0 and 1, then everything that consumes their results, and
/// asserts the invariants the kernel module relies on. Panics on a violation.
pub fn fuzz_parse(data: &[u8]) {
    for nhoff in [0, 1] {
        if let Ok(p) = tuple::parse_ipv4(data, nhoff) {
            check_parsed(data, nhoff, &p, 20);
        }
        if let Ok(p) = tuple::parse_ipv6(data, nhoff) {
            check_parsed(data, nhoff, &p, 40);
        }
        for l3 in [L3::Ipv4, L3::Ipv6] {
            if let Ok(t) = tuple::inner_tuple(data, l3, nhoff) {
                check_tuple(data, &t);
            }
        }
    }
    check_clock(data);
    check_pipeline(data);
}

/// Invariants of the pipeline (`src/proto/pipeline.rs`) on `data` as a packet of either
/// family, received twice and then sent from this host over `lo`: no panic, at most one entry
/// per flow, every entry with both tuples and the first direction's tuple the packet's, no
/// entry left unconfirmed once its packet passed the confirm hook, expectations only from
/// masters with a helper.
fn check_pipeline(data: &[u8]) {
    use proto::pipeline::{self as pl, Entry, Hook, HookRole};
    use proto::tuple::Dir;
    for l3 in [L3::Ipv4, L3::Ipv6] {
        let mut ct = host_ct::HostCt::default();
        ct.max = 1 + word(data, 0) % 3;
        let hz = 100 + word(data, 4) % 900;
        let now = word(data, 8);
        for i in 0..2 {
            host_ct::receive(&ct, data, l3, now.wrapping_add(i * hz), hz);
        }
        let p = host_ct::Pkt {
            bytes: data,
            nf: None,
        };
        let cookie = 0x5a5a;
        let out = host_ct::ctx(Hook::LocalOut, l3, cookie, now, hz);
        pl::hook(&ct, HookRole::Track, &p, &out);
        let mut post = host_ct::ctx(Hook::PostRouting, l3, cookie, now, hz);
        post.out_loopback = true;
        if pl::hook(&ct, HookRole::Helper, &p, &post) == pl::Verdict::Accept {
            pl::hook(&ct, HookRole::Confirm, &p, &post);
        } else {
            // A packet the helper drops never reaches the confirm hook: its entry is reaped.
            ct.unconfirmed.borrow_mut().clear();
        }
        let mut pre = host_ct::ctx(Hook::PreRouting, l3, cookie, now, hz);
        pre.in_loopback = true;
        pl::hook(&ct, HookRole::Track, &p, &pre);
        // Every expectation's master has a helper, and expects what its helper may.
        for (t, master, secs) in ct.expectations(now) {
            assert!(master.helper.is_some(), "an expectation without a helper");
            assert!(secs <= 300, "expectation timeout beyond the policy");
            assert!(t.proto == 6 || t.proto == 17);
        }
        let table = ct.table.borrow();
        assert!(
            table.len() <= 1,
            "one packet, one flow: {} entries",
            table.len()
        );
        assert!(
            ct.unconfirmed.borrow().is_empty(),
            "an entry left unconfirmed"
        );
        for e in table.iter() {
            let (Some(orig), Some(reply)) = (e.tuple(Dir::Original), e.tuple(Dir::Reply)) else {
                panic!("an entry without its tuples");
            };
            assert_eq!(orig.invert(), Some(reply));
            let parsed = match l3 {
                L3::Ipv4 => tuple::parse_ipv4(data, 0),
                L3::Ipv6 => tuple::parse_ipv6(data, 0),
            };
            assert_eq!(parsed.map(|p| p.tuple).ok(), Some(orig));
        }
    }
}

/// Invariants of a parsed packet whose network header (of at least `min_hdr` bytes) starts
/// at `nhoff`.
fn check_parsed(data: &[u8], nhoff: usize, p: &Parsed, min_hdr: usize) {
    assert!(
        p.dataoff >= nhoff + min_hdr,
        "transport header inside the IP header"
    );
    let need = match p.tuple.l4 {
        L4::Ports { .. } => 4,
        L4::Icmp { .. } => 8,
        L4::Gre { .. } | L4::Generic => 0,
    };
    if need != 0 {
        assert!(
            p.dataoff + need <= data.len(),
            "tuple read beyond the packet"
        );
    }
    if p.tuple.l3 == L3::Ipv4 {
        assert!(
            p.dataoff <= data.len(),
            "IPv4 transport offset beyond the packet"
        );
    }
    match tuple::icmp_verdict(data, nhoff, p) {
        tuple::IcmpVerdict::Related(key) => {
            assert!(matches!(p.tuple.l4, L4::Icmp { .. }));
            assert!(key.invert().is_some(), "related key not invertible");
            check_tuple(data, &key);
        }
        tuple::IcmpVerdict::Track | tuple::IcmpVerdict::Untracked => {}
        tuple::IcmpVerdict::Invalid => assert!(matches!(p.tuple.l4, L4::Icmp { .. })),
    }
    check_l4(data, p);
    check_tuple(data, &p.tuple);
}

/// Invariants of the UDP/UDP-Lite header checks and of the protocol trackers.
fn check_l4(data: &[u8], p: &Parsed) {
    use proto_udp::Checksum;
    let udplen = data.len().saturating_sub(p.dataoff);
    let checked = match p.tuple.proto {
        tuple::IPPROTO_UDP => Some(proto_udp::udp_error(data, p.dataoff)),
        tuple::IPPROTO_UDPLITE => Some(proto_udp::udplite_error(data, p.dataoff)),
        _ => None,
    };
    match checked {
        Some(Ok(ck)) => {
            assert!(udplen >= proto_udp::UDP_HDR_LEN);
            if let Checksum::Partial(cov) = ck {
                assert!((proto_udp::UDP_HDR_LEN..=udplen).contains(&cov));
            }
        }
        Some(Err(e)) => assert!(!e.msg().is_empty()),
        None => {}
    }

    let t = conn::Timeouts::defaults();
    let status = word(data, 0) & 0xffff;
    let jiffies = (u64::from(word(data, 4)) << 8) | u64::from(word(data, 8) & 0xff);
    let hz = 1 + (word(data, 12) % 1000);
    let mut st = proto_udp::UdpState {
        stream_ts: u64::from(word(data, 16)),
    };
    let before = st;
    let a = proto_udp::udp_packet(&mut st, status, jiffies, hz, &t);
    assert_eq!(a.verdict, conn::Verdict::Accept);
    assert!(a.refresh.is_some());
    if a.set_assured {
        assert_eq!(status & conn::IPS_SEEN_REPLY, conn::IPS_SEEN_REPLY);
        assert_eq!(status & (conn::IPS_ASSURED | conn::IPS_NAT_CLASH), 0);
    }
    if status & conn::IPS_CONFIRMED != 0 {
        assert_eq!(st, before, "confirmed UDP state written");
    }
    let a = proto_udp::udplite_packet(status, hz, &t);
    assert!(!a.set_assured || status & conn::IPS_NAT_CLASH == 0);
    if let L4::Icmp { ty, .. } = p.tuple.l4 {
        let a = proto_icmp::icmp_packet(p.tuple.l3, ty, hz, &t);
        assert_eq!(
            a.verdict == conn::Verdict::Accept,
            proto_icmp::icmp_new_ok(p.tuple.l3, ty)
        );
        let a = proto_icmp::icmpv6_packet(p.tuple.l3, ty, status, hz, &t);
        if status & conn::IPS_CONFIRMED == 0 {
            assert_eq!(
                a.verdict == conn::Verdict::Accept,
                proto_icmp::icmpv6_new_ok(p.tuple.l3, ty)
            );
        }
    }
    assert!(proto_generic::generic_packet(hz, &t).refresh.is_some());
    let a = proto_gre::gre_packet(&proto_gre::GreState::new(&t), status, hz);
    assert!(a.refresh.is_some());
    if a.set_assured {
        assert_eq!(
            status & (conn::IPS_SEEN_REPLY | conn::IPS_NAT_CLASH),
            conn::IPS_SEEN_REPLY
        );
    }
    if p.tuple.proto == tuple::IPPROTO_TCP {
        check_tcp(data, p, status, hz, &t);
    }
    if p.tuple.proto == tuple::IPPROTO_DCCP {
        check_dccp(data, p, status, hz, &t);
    }
    if p.tuple.proto == tuple::IPPROTO_SCTP {
        check_sctp(data, p, hz, &t);
    }
}

/// Invariants of the DCCP header check and tracker: the checksum coverage asked about lies
/// within the packet, the header read fits in it, and the tracker, on a new and on a
/// data-driven state, only ever stores a state and leaves the state alone when it refuses
/// or kills.
fn check_dccp(data: &[u8], p: &Parsed, status: u32, hz: u32, t: &conn::Timeouts) {
    use proto_dccp::*;
    let len = data.len().saturating_sub(p.dataoff);
    let mut asked = None;
    let res = dccp_error(data, p.dataoff, |cov| {
        asked = Some(cov);
        word(data, 104) & 1 == 0
    });
    assert!(asked.is_none_or(|c| c <= len), "coverage beyond the packet");
    let hdr = match res {
        Ok(h) => h,
        Err(e) => {
            assert!(matches!(e, DccpError::Short | DccpError::Truncated) || e.msg().is_some());
            return;
        }
    };
    assert!(asked.is_some(), "checksum never asked about");
    assert!(DCCP_HDR_LEN + hdr.ty.hdr_len() <= len);
    assert!(hdr.seq < 1 << 48 && hdr.ack.is_none_or(|a| a < 1 << 48));
    assert_eq!(hdr.ack.is_some(), hdr.ty.has_ack());

    let fresh = dccp_new(&hdr, &DccpSettings::defaults());
    assert_eq!(fresh.is_ok(), hdr.ty == DccpPktType::Request);
    let w = word(data, 108);
    let driven = DccpConn {
        role: if w & 1 == 0 {
            [DccpRole::Client, DccpRole::Server]
        } else {
            [DccpRole::Server, DccpRole::Client]
        },
        state: DccpState::from_u8(((w >> 1) % 8) as u8).unwrap_or_default(),
        last_pkt: DccpPktType::from_u8(((w >> 4) % 10) as u8).unwrap_or_default(),
        last_dir: if w & 0x100 == 0 {
            tuple::Dir::Original
        } else {
            tuple::Dir::Reply
        },
        handshake_seq: u64::from(word(data, 112)) << 16 | u64::from(w >> 16),
    };
    for mut conn in fresh.into_iter().chain([driven]) {
        for dir in [tuple::Dir::Original, tuple::Dir::Reply] {
            let before = conn;
            let a = dccp_packet(&mut conn, &hdr, dir, status, hz, t);
            assert!(conn.state as u8 <= DccpState::TimeWait as u8, "{conn:?}");
            if !a.accept || a.kill {
                assert_eq!(conn, before, "state changed by a refused or killing packet");
            }
            if !a.accept {
                assert!(a.refresh.is_none() && !a.kill && !a.set_assured);
            }
        }
    }
}

/// Invariants of the SCTP header and chunk checks and of the tracker: the CRC32c and the
/// walk stay within the packet, a header that passed has a chunk, and the tracker on a
/// fresh and on a data-driven association never stores a non-state, never refreshes an
/// invalid packet, and refreshes an accepted one to its new state's timeout.
fn check_sctp(data: &[u8], p: &Parsed, hz: u32, t: &conn::Timeouts) {
    use proto_sctp::*;
    let len = data.len();
    assert!(sctp_crc32c(data, p.dataoff).is_some());
    for ch in chunks(data, p.dataoff) {
        assert!(ch.offset >= p.dataoff + SCTP_HDR_LEN && ch.offset + SCTP_CHUNK_HDR_LEN <= len);
    }
    let _ = sctp_error(data, p.dataoff, true);
    let hdr = match sctp_error(data, p.dataoff, false) {
        Ok(h) => h,
        Err(e) => {
            assert_ne!(e, SctpError::BadCrc);
            return;
        }
    };
    assert!(p.dataoff + SCTP_HDR_LEN + SCTP_CHUNK_HDR_LEN <= len);
    assert!(chunks(data, p.dataoff)
        .next()
        .is_some_and(|c| hdr.map.has(c.ty)));

    let mut fresh = SctpConn::default();
    let a = sctp_packet(&mut fresh, data, &hdr, tuple::Dir::Original, false, hz, t);
    check_sctp_action(&fresh, &a, hz, t);
    if a.verdict.is_ok() {
        assert_ne!(fresh.state, SctpConntrack::None);
    }
    let mut driven = SctpConn {
        state: SctpConntrack::from_u8((word(data, 48) % 9) as u8).unwrap_or_default(),
        vtag: [word(data, 52), word(data, 56)],
        init: [word(data, 60) & 1 != 0, word(data, 60) & 2 != 0],
        last_dir: if word(data, 60) & 4 != 0 {
            tuple::Dir::Reply
        } else {
            tuple::Dir::Original
        },
        flags: (word(data, 60) >> 3 & 1) as u8,
    };
    for dir in [tuple::Dir::Original, tuple::Dir::Reply] {
        let a = sctp_packet(&mut driven, data, &hdr, dir, true, hz, t);
        check_sctp_action(&driven, &a, hz, t);
    }
}

fn check_sctp_action(
    c: &proto_sctp::SctpConn,
    a: &proto_sctp::SctpAction,
    hz: u32,
    t: &conn::Timeouts,
) {
    use proto_sctp::*;
    assert!(
        SctpConntrack::from_u8(c.state as u8).is_some(),
        "stored {:?}",
        c.state
    );
    match a.verdict {
        Ok(()) => {
            if let Some(r) = a.refresh {
                assert_eq!(r, sctp_timeout(t, c.state, hz));
            }
        }
        Err(_) => assert!(a.refresh.is_none()),
    }
    if a.set_assured {
        assert!(a.protoinfo);
    }
}

/// Invariants of the TCP header check and tracker: the header and its options are read
/// within the packet, and the tracker on a fresh and on a data-driven state never stores a
/// non-state nor refreshes an invalid packet.
fn check_tcp(data: &[u8], p: &Parsed, status: u32, hz: u32, t: &conn::Timeouts) {
    use proto_tcp::*;
    let seg = match tcp_error(data, p.dataoff) {
        Ok((seg, _)) => seg,
        Err(e) => {
            assert!(e == TcpError::Short || e.msg().is_some());
            return;
        }
    };
    let tcplen = data.len() - p.dataoff;
    let hlen = 20 + usize::from(seg.opt_len);
    assert!(hlen <= tcplen && usize::from(seg.opt_len) <= TCP_MAX_OPT_LEN);
    assert_eq!(seg.payload_len as usize, tcplen - hlen);
    assert!(tcp_valid_flags(seg.flags));
    let mut peer = TcpPeer::default();
    tcp_options(seg.options(), &mut peer);
    assert!(peer.td_scale <= TCP_MAX_WSCALE);
    let mut sack = word(data, 44);
    tcp_sack(seg.options(), &mut sack);

    let mut fresh = TcpConn::default();
    let mut driven = TcpConn::default();
    for (i, peer) in driven.seen.iter_mut().enumerate() {
        let k = 48 + 20 * i;
        *peer = TcpPeer {
            td_end: word(data, k),
            td_maxend: word(data, k + 4),
            td_maxwin: word(data, k + 8),
            td_maxack: word(data, k + 12),
            td_scale: (word(data, k + 16) % 15) as u8,
            flags: word(data, k + 17) as u8,
        };
    }
    driven.state = TcpConntrack::from_u8((word(data, 88) % 10) as u8).unwrap_or_default();
    driven.last_flags = word(data, 92) as u8;
    let s = TcpSettings::defaults();
    for conn in [&mut fresh, &mut driven] {
        for dir in [tuple::Dir::Original, tuple::Dir::Reply] {
            let ctx = TcpPacketCtx {
                dir,
                status,
                ct_timeout: word(data, 96),
                now: word(data, 100),
                hz,
                synproxy: false,
            };
            let a = tcp_packet(conn, &seg, &ctx, &s, t);
            assert!(conn.state.is_state(), "stored {:?}", conn.state);
            if a.verdict != TcpVerdict::Accept {
                assert!(a.refresh.is_none() && !a.kill && !a.set_assured);
            }
        }
    }
}

/// Invariants of a tuple: inversion is an involution, printing and the `/proc` line never
/// fail and have the expected shape.
fn check_tuple(data: &[u8], t: &Tuple) {
    let mut b = FixedBuf::<256>::new();
    tuple::print_tuple(&mut b, t).expect("print_tuple overflowed 256 bytes");
    let s = b.as_str();
    assert!(s.starts_with("src=") && s.ends_with(' ') && s.is_ascii());

    let Some(reply) = t.invert() else {
        return;
    };
    assert_eq!(reply.invert(), Some(*t), "invert is not an involution");

    let status = word(data, 20) & 0xffff;
    let now = word(data, 24);
    let timeout = word(data, 28);
    let secs = conn::expires_in_secs(timeout, now, 250);
    assert!(secs >= 0);
    let acct = (status & 1 != 0).then(|| {
        let c = Counter {
            packets: u64::from(word(data, 32)),
            bytes: u64::MAX,
        };
        [c, c]
    });
    let snap = Snapshot {
        original: *t,
        reply,
        status,
        secs: if status & 2 != 0 { i64::MIN } else { secs },
        l4: match status & 0x3000 {
            0 => L4Info::None,
            0x1000 => L4Info::State("ESTABLISHED"),
            _ => L4Info::Gre {
                timeout: u32::MAX,
                stream_timeout: now,
            },
        },
        acct,
        mark: word(data, 36),
        zone: conn::Zone {
            id: (word(data, 40) >> 16) as u16,
            dir: (word(data, 40) & 3) as u8,
        },
        delta_time: (status & 4 != 0).then_some(u64::MAX),
        use_count: u32::MAX,
    };
    let mut line = FixedBuf::<1024>::new();
    proc_line::write_line(&mut line, &snap).expect("proc line overflowed 1024 bytes");
    let l = line.as_str();
    assert!(l.starts_with(tuple::l3_name(t.l3.num())));
    assert!(l.ends_with('\n') && l.matches('\n').count() == 1);
    assert!(l.contains(" use=4294967295\n"));
    assert_eq!(
        l.contains("[UNREPLIED] "),
        status & conn::IPS_SEEN_REPLY == 0
    );
}

/// Invariants of the jiffies helpers.
fn check_clock(data: &[u8]) {
    let (a, b) = (word(data, 0), word(data, 4));
    // Exactly 2^31 apart, each is "after" the other, as in the kernel.
    if a.wrapping_sub(b) != 0x8000_0000 {
        assert!(!(conn::time_after(a, b) && conn::time_after(b, a)));
    }
    assert_eq!(conn::is_expired(a, b), conn::expires(a, b) == 0);
    let extra = word(data, 8) & 0x7fff_ffff;
    let confirmed = conn::refreshed_timeout(conn::IPS_CONFIRMED, b, extra);
    assert_eq!(confirmed.map(|t| conn::expires(t, b)), Some(extra));
    assert_eq!(
        conn::refreshed_timeout(0, b, extra).map(|t| conn::confirmed_timeout(t, b)),
        confirmed
    );
    assert_eq!(
        conn::refreshed_timeout(conn::IPS_FIXED_TIMEOUT | conn::IPS_CONFIRMED, b, extra),
        None
    );
}

/// Fuzz entry point (`host/fuzz`, target `ftp`): runs the FTP helper on the payload at
/// `data[30..]` with a direction, `loose`, family, sequence number, addresses and record
/// of line starts taken from the first 30 bytes, then the address parsers on the payload,
/// and asserts the helper's invariants. Panics on a violation.
///
/// Header: byte 0 bit 0 reply direction, bit 1 `loose`, bit 2 IPv6, bit 3 the packet at
/// the direction's first recorded line start, bits 4-5 `NF_CT_FTP_SEQ_PICKUP` per
/// direction, bit 6 a NATed reply tuple; byte 1 the two `seq_aft_nl_num` (mod 3); bytes
/// 2-5 the sequence number; 6-21 `seq_aft_nl`; 22-29 address bytes.
pub fn fuzz_ftp(data: &[u8]) {
    use proto::helper_ftp::{self as ftp, FtpOutcome, FtpState, FtpType, NF_CT_FTP_SEQ_PICKUP};
    use proto::tuple::{Addr, Dir};
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let payload = data.get(30..).unwrap_or(&[]);
    let flags = byte(0);
    let dir = if flags & 1 == 0 {
        Dir::Original
    } else {
        Dir::Reply
    };
    let loose = flags & 2 != 0;
    let mut st = FtpState {
        seq_aft_nl: [
            [word(data, 6), word(data, 10)],
            [word(data, 14), word(data, 18)],
        ],
        seq_aft_nl_num: [u16::from(byte(1) % 3), u16::from(byte(1) / 3 % 3)],
        flags: [
            u16::from(flags >> 4 & 1) * NF_CT_FTP_SEQ_PICKUP,
            u16::from(flags >> 5 & 1) * NF_CT_FTP_SEQ_PICKUP,
        ],
    };
    let d = dir as usize;
    let seq = if flags & 8 != 0 && st.seq_aft_nl_num[d] > 0 {
        st.seq_aft_nl[d][0]
    } else {
        word(data, 2)
    };
    let ab: [u8; 8] = core::array::from_fn(|i| byte(22 + i));
    let (l3, client, server) = if flags & 4 == 0 {
        let v4 = |a: &[u8]| Addr::v4([a[0], a[1], a[2], a[3]]);
        (L3::Ipv4, v4(&ab[..4]), v4(&ab[4..]))
    } else {
        let mut c = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        c[8..].copy_from_slice(&ab);
        let mut s = c;
        s[15] ^= 0xff;
        (L3::Ipv6, Addr(c), Addr(s))
    };
    let orig = Tuple {
        l3,
        proto: tuple::IPPROTO_TCP,
        src: client,
        dst: server,
        l4: L4::Ports {
            src: 40000,
            dst: 21,
        },
    };
    let mut reply = orig.invert().expect("TCP inverts");
    if flags & 0x40 != 0 {
        // SNAT: the server answers another address and port.
        reply.dst.0[0] ^= 0x80;
        reply.l4 = L4::Ports {
            src: 21,
            dst: 61000,
        };
    }

    let before = st;
    let out = ftp::help(&mut st, dir, seq, payload, &orig, &reply, loose);
    let other = dir.reverse() as usize;
    assert_eq!(
        st.seq_aft_nl[other], before.seq_aft_nl[other],
        "other direction's record"
    );
    assert_eq!(st.seq_aft_nl_num[other], before.seq_aft_nl_num[other]);
    assert_eq!(st.flags[other], before.flags[other]);
    let at_line_start = before.find_nl_seq(seq, dir);
    let picked = !at_line_start && before.flags[d] & NF_CT_FTP_SEQ_PICKUP != 0;
    let parsed = !payload.is_empty() && (at_line_start || picked);
    assert_eq!(
        st.flags[d] == before.flags[d],
        !picked || payload.is_empty()
    );
    let ends_nl = payload.last() == Some(&b'\n');
    let line_end = seq.wrapping_add(payload.len() as u32);
    if payload.is_empty() {
        assert_eq!((out, st), (FtpOutcome::Accept, before));
    }
    match out {
        FtpOutcome::Accept => {
            if ends_nl && st.seq_aft_nl_num[d] < 2 {
                assert!(st.find_nl_seq(line_end, dir), "line end not recorded");
            }
            if !ends_nl {
                assert_eq!(st.seq_aft_nl, before.seq_aft_nl);
            }
        }
        FtpOutcome::Drop(msg) => {
            assert!(parsed);
            assert!(msg.starts_with("partial matching of `"));
            assert_eq!(
                st.seq_aft_nl, before.seq_aft_nl,
                "a drop updated the record"
            );
            assert_eq!(st.seq_aft_nl_num, before.seq_aft_nl_num);
        }
        FtpOutcome::Match(m) => {
            assert!(parsed);
            assert_eq!(st.seq_aft_nl, before.seq_aft_nl, "updated before commit");
            assert_eq!(m.nl_seq, ends_nl.then_some(line_end));
            assert_eq!(
                matches!(m.ftptype, FtpType::Port | FtpType::Eprt),
                dir == Dir::Original
            );
            let pattern: &[u8] = match m.ftptype {
                FtpType::Port => b"PORT",
                FtpType::Eprt => b"EPRT",
                FtpType::Pasv => b"227 ",
                FtpType::Epsv => b"229 ",
            };
            assert!(payload[..4].eq_ignore_ascii_case(pattern));
            let text = &payload[m.matchoff..m.matchoff + m.matchlen];
            // The port as the payload spells it, with 6.12's wrapping.
            let num = |s: &[u8]| {
                s.iter().fold(0u32, |n, c| {
                    n.wrapping_mul(10).wrapping_add(u32::from(c - b'0'))
                })
            };
            let port = match m.ftptype {
                FtpType::Port | FtpType::Pasv => {
                    let nums: Vec<u32> = text.split(|&c| c == b',').map(num).collect();
                    assert_eq!(nums.len(), 6, "{text:?}");
                    ((nums[4] << 8) | nums[5]) as u16
                }
                FtpType::Eprt | FtpType::Epsv => {
                    let (delim, body) = text.split_last().expect("a delimiter");
                    let digits = body.iter().rev().take_while(|c| c.is_ascii_digit()).count();
                    assert!(digits > 0 && body.len() >= 3 + digits && body[0] == *delim);
                    num(&body[body.len() - digits..]) as u16
                }
            };
            if let Some(e) = m.expect {
                assert_eq!(e.port, port);
                // get_port refuses 0; PORT and 227 do not.
                assert!(e.port != 0 || matches!(m.ftptype, FtpType::Port | FtpType::Pasv));
                let other = match dir {
                    Dir::Original => &reply,
                    Dir::Reply => &orig,
                };
                assert_eq!(e.l3, l3);
                assert_eq!(e.src, other.src);
                assert!(e.dst == other.dst || loose, "another address without loose");
                if m.ftptype == FtpType::Epsv {
                    assert_eq!(e.dst, other.dst);
                }
                let line = expect_line(&e.tuple(), word(data, 2) as i32, u32::from(flags));
                assert!(line.as_str().ends_with('\n'));
                let dport = format!("sport=0 dport={port} ");
                assert!(line.as_str().contains(&dport), "{}", line.as_str());
            } else {
                assert!(!loose, "loose expects any address");
                assert!(matches!(
                    m.ftptype,
                    FtpType::Port | FtpType::Eprt | FtpType::Pasv
                ));
            }
            m.commit(&mut st, dir);
            if ends_nl && before.seq_aft_nl_num[d] < 2 {
                assert!(st.find_nl_seq(line_end, dir));
            }
        }
    }

    // The address parsers: anything Rust prints reads back, and what the standard library
    // reads, in6_pton reads the same.
    if let Ok(s) = core::str::from_utf8(payload) {
        if let Ok(a) = s.parse::<std::net::Ipv6Addr>() {
            assert_eq!(
                ftp::in6_pton(payload, b'|'),
                Some((a.octets(), payload.len())),
                "{s}"
            );
        }
    }
    let a16: [u8; 16] = core::array::from_fn(|i| byte(6 + i));
    let text = format!("{}|", std::net::Ipv6Addr::from(a16));
    assert_eq!(
        ftp::in6_pton(text.as_bytes(), b'|'),
        Some((a16, text.len() - 1))
    );
    let a4 = [byte(22), byte(23), byte(24), byte(25)];
    let text = format!("{}|", std::net::Ipv4Addr::from(a4));
    assert_eq!(
        ftp::in4_pton(text.as_bytes(), b'|'),
        Some((a4, text.len() - 1))
    );
    if let Some((_, end)) = ftp::in6_pton(payload, b'|') {
        assert!(end <= payload.len());
    }
}

/// The `/proc/net/nf_conntrack_expect` line of an FTP expectation.
fn expect_line(t: &Tuple, secs: i32, flags: u32) -> FixedBuf<512> {
    use proto::proc_expect::{write_expect_line, ExpectSnapshot};
    let mut b = FixedBuf::<512>::new();
    let e = ExpectSnapshot {
        tuple: *t,
        secs,
        flags,
        helper: Some(&"ftp"),
        policy: "",
    };
    write_expect_line(&mut b, &e).expect("expect line overflowed 512 bytes");
    b
}
