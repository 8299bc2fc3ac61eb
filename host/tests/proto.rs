// SPDX-License-Identifier: GPL-2.0

//! Tests of the protocol trackers (`src/proto_udp.rs`, `src/proto_icmp.rs`,
//! `src/proto_generic.rs`) against Linux 6.12's `nf_conntrack_udp_packet`, `udp_error`,
//! `nf_conntrack_udplite_packet`, `udplite_error`, `nf_conntrack_icmp_packet`,
//! `nf_conntrack_icmpv6_packet` and `generic_packet`.
//!
//! [`Entry`] plays the core: it derives ctinfo, applies each [`PacketAction`] as
//! `nf_conntrack_in` and `__nf_ct_refresh_acct` do, sets `IPS_SEEN_REPLY` and confirms the
//! entry after its first packet, so that whole packet sequences can be checked.

use crate::pkt::*;
use crate::proto::conn::*;
use crate::proto::proto_generic::*;
use crate::proto::proto_icmp::*;
use crate::proto::proto_udp::*;
use crate::proto::tuple::*;

/// The reference kernel's HZ.
const HZ: u32 = 250;
const T: Timeouts = Timeouts::defaults();

/// A connection as the core keeps it, reduced to what the trackers touch.
#[derive(Debug, Default)]
struct Entry {
    status: u32,
    /// `ct->timeout`: relative before confirmation, absolute (`nfct_time_stamp`) after.
    timeout: u32,
    udp: UdpState,
    /// `IPCT_ASSURED` events raised.
    assured_events: u32,
    /// Packets counted per direction.
    packets: [u64; 2],
}

impl Entry {
    /// Runs the core's part for one packet in `dir` at `jiffies`; `f` is the tracker, called
    /// with the entry's state, status bits and the packet's ctinfo.
    fn packet(
        &mut self,
        dir: Dir,
        jiffies: u64,
        f: impl FnOnce(&mut UdpState, u32) -> PacketAction,
    ) -> Verdict {
        let ci = CtInfo::of_match(dir, self.status);
        let now = nfct_time_stamp(jiffies);
        let a = f(&mut self.udp, self.status);
        if a.verdict == Verdict::Invalid {
            assert_eq!(a, PacketAction::INVALID);
            return Verdict::Invalid;
        }
        if let Some(extra) = a.refresh {
            if let Some(t) = refreshed_timeout(self.status, now, extra) {
                self.timeout = t;
            }
            self.packets[ci.dir() as usize] += 1;
        }
        if a.set_assured {
            // test_and_set_bit(IPS_ASSURED_BIT): the event only the first time.
            if self.status & IPS_ASSURED == 0 {
                self.assured_events += 1;
            }
            self.status |= IPS_ASSURED;
        }
        if ci.sets_seen_reply() {
            self.status |= IPS_SEEN_REPLY;
        }
        if self.status & IPS_CONFIRMED == 0 {
            self.timeout = confirmed_timeout(self.timeout, now);
            self.status |= IPS_CONFIRMED;
        }
        Verdict::Accept
    }

    /// A UDP packet.
    fn udp(&mut self, dir: Dir, jiffies: u64) -> Verdict {
        self.packet(dir, jiffies, |st, status| {
            udp_packet(st, status, jiffies, HZ, &T)
        })
    }

    /// Seconds left at `jiffies`, as `/proc` shows them.
    fn secs(&self, jiffies: u64) -> i64 {
        expires_in_secs(self.timeout, nfct_time_stamp(jiffies), HZ)
    }
}

/// Jiffies 1 s after boot with the kernel's `INITIAL_JIFFIES` (5 minutes before the low 32
/// bits wrap).
const J0: u64 = (u32::MAX - 300 * HZ + 1) as u64 + HZ as u64;
const SEC: u64 = HZ as u64;

// ---------------------------------------------------------------------------------------------
// UDP

#[test]
fn udp_unreplied_is_30s() {
    let mut e = Entry::default();
    assert_eq!(e.udp(Dir::Original, J0), Verdict::Accept);
    assert_eq!(e.status, IPS_CONFIRMED);
    assert_eq!(e.secs(J0), 30);
    assert_eq!(e.secs(J0 + 10 * SEC), 20);
    // More packets one way: 30 s from each, never assured.
    e.udp(Dir::Original, J0 + 10 * SEC);
    assert_eq!(e.secs(J0 + 10 * SEC), 30);
    e.udp(Dir::Original, J0 + 100 * SEC);
    assert_eq!(e.secs(J0 + 100 * SEC), 30);
    assert_eq!(e.status & (IPS_SEEN_REPLY | IPS_ASSURED), 0);
    assert_eq!(e.packets, [3, 0]);
}

#[test]
fn udp_first_packet_sets_stream_ts_relative_timeout() {
    let mut st = UdpState::default();
    let a = udp_packet(&mut st, 0, J0, HZ, &T);
    assert_eq!(a, PacketAction::refresh(30 * HZ));
    assert_eq!(st.stream_ts, J0 + 2 * SEC);
    // A second packet before confirmation (queued skb) moves it again.
    let a = udp_packet(&mut st, 0, J0 + 5, HZ, &T);
    assert_eq!(a.refresh, Some(30 * HZ));
    assert_eq!(st.stream_ts, J0 + 5 + 2 * SEC);
    // Once confirmed it is never written.
    let before = st;
    for status in [IPS_CONFIRMED, IPS_CONFIRMED | IPS_SEEN_REPLY] {
        udp_packet(&mut st, status, J0 + 100 * SEC, HZ, &T);
        assert_eq!(st, before);
    }
}

#[test]
fn udp_reply_becomes_stream_after_2s_assured_once() {
    let mut e = Entry::default();
    e.udp(Dir::Original, J0);
    // The reply itself: SEEN_REPLY is set only after the tracker ran, so still unreplied.
    e.udp(Dir::Reply, J0 + SEC);
    assert_eq!(e.status & IPS_SEEN_REPLY, IPS_SEEN_REPLY);
    assert_eq!(e.secs(J0 + SEC), 30);
    // Within 2 s of creation: replied, but not a stream yet: 30 s, not assured.
    e.udp(Dir::Original, J0 + SEC + SEC / 2);
    assert_eq!(e.secs(J0 + SEC + SEC / 2), 30);
    // Exactly at stream_ts: time_after is strict.
    e.udp(Dir::Reply, J0 + 2 * SEC);
    assert_eq!(e.secs(J0 + 2 * SEC), 30);
    assert_eq!(e.status & IPS_ASSURED, 0);
    assert_eq!(e.assured_events, 0);
    // One jiffy later: 120 s and assured.
    e.udp(Dir::Original, J0 + 2 * SEC + 1);
    assert_eq!(e.secs(J0 + 2 * SEC + 1), 120);
    assert_eq!(e.status & IPS_ASSURED, IPS_ASSURED);
    assert_eq!(e.assured_events, 1);
    // Further packets, both ways: 120 s each time, the event never again.
    for (i, dir) in [Dir::Reply, Dir::Original, Dir::Reply]
        .into_iter()
        .enumerate()
    {
        let j = J0 + (10 + i as u64) * SEC;
        let mut st = e.udp;
        assert!(!udp_packet(&mut st, e.status, j, HZ, &T).set_assured);
        e.udp(dir, j);
        assert_eq!(e.secs(j), 120);
    }
    assert_eq!(e.assured_events, 1);
    assert_eq!(e.packets, [4, 4]);
}

#[test]
fn udp_replied_entry_seen_again_late_is_stream() {
    // A reply at once, then silence for 25 s: the next packet makes it a stream.
    let mut e = Entry::default();
    e.udp(Dir::Original, J0);
    e.udp(Dir::Reply, J0 + 1);
    e.udp(Dir::Original, J0 + 25 * SEC);
    assert_eq!(e.secs(J0 + 25 * SEC), 120);
    assert_eq!(e.assured_events, 1);
}

#[test]
fn udp_stream_survives_2_pow_31_jiffies() {
    // stream_ts is an unsigned long: 64-bit jiffies do not wrap, so a stream created long ago
    // stays a stream (a 32-bit stamp would flip back to "not after" past 2^31 jiffies).
    let mut st = UdpState {
        stream_ts: J0 + 2 * SEC,
    };
    let status = IPS_CONFIRMED | IPS_SEEN_REPLY | IPS_ASSURED;
    for later in [1u64 << 31, (1 << 32) + 7, 1 << 40] {
        let a = udp_packet(&mut st, status, J0 + later, HZ, &T);
        assert_eq!(a.refresh, Some(120 * HZ), "{later:#x}");
    }
}

#[test]
fn udp_across_32_bit_wrap() {
    // Created 1 s before nfct_time_stamp wraps; the stream begins after the wrap.
    let j = u64::from(u32::MAX) - SEC + 1;
    let mut e = Entry::default();
    e.udp(Dir::Original, j);
    e.udp(Dir::Reply, j + 1);
    assert_eq!(e.secs(j + 1), 30);
    let after = j + 3 * SEC;
    assert_eq!(nfct_time_stamp(after), (2 * SEC) as u32, "wrapped");
    e.udp(Dir::Original, after);
    assert_eq!(e.secs(after), 120);
    assert!(!is_expired(e.timeout, nfct_time_stamp(after + 119 * SEC)));
    assert!(is_expired(e.timeout, nfct_time_stamp(after + 120 * SEC)));
    assert_eq!(e.assured_events, 1);
}

#[test]
fn udp_nat_clash_never_assured() {
    let status = IPS_CONFIRMED | IPS_SEEN_REPLY | IPS_NAT_CLASH;
    let mut st = UdpState { stream_ts: J0 };
    // Past stream_ts: the stream timeout is still asked for, but never ASSURED.
    let a = udp_packet(&mut st, status, J0 + 10 * SEC, HZ, &T);
    assert_eq!(a, PacketAction::refresh(120 * HZ));
    // As clash resolution leaves it: fixed 1 s timeout, which the refresh does not touch.
    let now = nfct_time_stamp(J0 + 10 * SEC);
    let mut e = Entry {
        status: status | IPS_FIXED_TIMEOUT,
        timeout: now.wrapping_add(HZ),
        udp: st,
        ..Entry::default()
    };
    for k in 0..3u64 {
        e.udp(Dir::Reply, J0 + 10 * SEC + k);
    }
    assert_eq!(e.timeout, now.wrapping_add(HZ));
    assert_eq!(e.status & IPS_ASSURED, 0);
    assert_eq!(e.assured_events, 0);
    // Accounting still happens with a fixed timeout.
    assert_eq!(e.packets, [0, 3]);
}

#[test]
fn udp_uses_the_netns_timeouts() {
    let t = Timeouts {
        udp_unreplied: 10,
        udp_replied: 180,
        ..Timeouts::defaults()
    };
    let mut st = UdpState::default();
    assert_eq!(udp_packet(&mut st, 0, J0, HZ, &t).refresh, Some(10 * HZ));
    let replied = IPS_CONFIRMED | IPS_SEEN_REPLY;
    assert_eq!(
        udp_packet(&mut st, replied, J0 + SEC, HZ, &t).refresh,
        Some(10 * HZ)
    );
    assert_eq!(
        udp_packet(&mut st, replied, J0 + 3 * SEC, HZ, &t).refresh,
        Some(180 * HZ)
    );
    // HZ=1000 kernels: the 2 s rule scales with HZ.
    let mut st = UdpState::default();
    udp_packet(&mut st, 0, 0, 1000, &t);
    assert_eq!(st.stream_ts, 2000);
}

/// An IPv4 UDP datagram from [`crate::pkt`] and its transport offset.
fn udp4(payload: &[u8]) -> (Vec<u8>, usize) {
    (
        Ipv4::new(IPPROTO_UDP, A4, B4).build(&udp(40000, 53, payload)),
        20,
    )
}

/// Sets the UDP length field of the datagram at `off`.
fn set_len(p: &mut [u8], off: usize, len: u16) {
    p[off + 4..off + 6].copy_from_slice(&len.to_be_bytes());
}

/// Sets the UDP checksum field of the datagram at `off`.
fn set_check(p: &mut [u8], off: usize, check: u16) {
    p[off + 6..off + 8].copy_from_slice(&check.to_be_bytes());
}

#[test]
fn udp_error_accepts_well_formed() {
    let (p, off) = udp4(b"query");
    assert_ne!(&p[off + 6..off + 8], &[0, 0]);
    assert_eq!(udp_error(&p[..], off), Ok(Checksum::Full));
    // Header only, no payload.
    let (p, off) = udp4(b"");
    assert_eq!(udp_error(&p[..], off), Ok(Checksum::Full));
    // IPv6.
    let p = Ipv6::new(IPPROTO_UDP, A6, B6).build(&udp(1, 2, b"x"));
    assert_eq!(udp_error(&p[..], 40), Ok(Checksum::Full));
}

#[test]
fn udp_error_zero_checksum_means_none_to_check() {
    let (mut p, off) = udp4(b"query");
    set_check(&mut p, off, 0);
    assert_eq!(udp_error(&p[..], off), Ok(Checksum::None));
}

#[test]
fn udp_error_length_larger_than_packet() {
    let (mut p, off) = udp4(b"query");
    let udplen = (p.len() - off) as u16;
    set_len(&mut p, off, udplen + 1);
    assert_eq!(udp_error(&p[..], off), Err(UdpError::Malformed));
    set_len(&mut p, off, u16::MAX);
    assert_eq!(udp_error(&p[..], off), Err(UdpError::Malformed));
    // Exactly the datagram: fine.
    set_len(&mut p, off, udplen);
    assert_eq!(udp_error(&p[..], off), Ok(Checksum::Full));
    // Shorter than the packet (trailing bytes) but at least a header: fine too; only the
    // checksum (if enabled) can object.
    set_len(&mut p, off, 8);
    assert_eq!(udp_error(&p[..], off), Ok(Checksum::Full));
}

#[test]
fn udp_error_length_smaller_than_header() {
    let (mut p, off) = udp4(b"query");
    for len in [0, 1, 7] {
        set_len(&mut p, off, len);
        assert_eq!(udp_error(&p[..], off), Err(UdpError::Malformed), "{len}");
        // With or without a checksum.
        set_check(&mut p, off, 0);
        assert_eq!(udp_error(&p[..], off), Err(UdpError::Malformed), "{len}");
        set_check(&mut p, off, 0x1234);
    }
}

#[test]
fn udp_error_short_header() {
    let (p, off) = udp4(b"");
    for cut in 1..=UDP_HDR_LEN {
        let short = &p[..p.len() - cut];
        assert_eq!(udp_error(short, off), Err(UdpError::Short), "cut {cut}");
        assert_eq!(udplite_error(short, off), Err(UdpError::Short), "cut {cut}");
    }
    // Transport offset past the end (possible for IPv6).
    assert_eq!(udp_error(&p[..], p.len() + 4), Err(UdpError::Short));
    assert_eq!(udp_error(&p[..], usize::MAX), Err(UdpError::Short));
}

#[test]
fn udp_error_messages_are_the_kernels() {
    assert_eq!(UdpError::Short.msg(), "short packet");
    assert_eq!(UdpError::Malformed.msg(), "truncated/malformed packet");
    assert_eq!(UdpError::BadCoverage.msg(), "invalid checksum coverage");
    assert_eq!(UdpError::NoChecksum.msg(), "checksum missing");
}

// ---------------------------------------------------------------------------------------------
// UDP-Lite

/// An IPv4 UDP-Lite datagram with coverage `cscov` and checksum field `check`, and its
/// transport offset.
fn udplite4(payload: &[u8], cscov: u16, check: u16) -> (Vec<u8>, usize) {
    let mut seg = udp(40000, 5000, payload);
    set_len(&mut seg, 0, cscov);
    set_check(&mut seg, 0, check);
    (Ipv4::new(IPPROTO_UDPLITE, A4, B4).build(&seg), 20)
}

#[test]
fn udplite_coverage_rules() {
    let payload = [0u8; 32];
    let udplen = 8 + payload.len();
    // 0 = whole datagram.
    let (p, off) = udplite4(&payload, 0, 0xabcd);
    assert_eq!(udplite_error(&p[..], off), Ok(Checksum::Partial(udplen)));
    // The header only, the whole datagram, anything between.
    for cov in [8, 20, udplen] {
        let (p, off) = udplite4(&payload, cov as u16, 0xabcd);
        assert_eq!(
            udplite_error(&p[..], off),
            Ok(Checksum::Partial(cov)),
            "{cov}"
        );
    }
    // Below the header or beyond the datagram.
    for cov in [1, 7, udplen as u16 + 1, u16::MAX] {
        let (p, off) = udplite4(&payload, cov, 0xabcd);
        assert_eq!(
            udplite_error(&p[..], off),
            Err(UdpError::BadCoverage),
            "{cov}"
        );
    }
}

#[test]
fn udplite_checksum_is_mandatory() {
    let (p, off) = udplite4(b"data", 0, 0);
    assert_eq!(udplite_error(&p[..], off), Err(UdpError::NoChecksum));
    let (p, off) = udplite4(b"data", 8, 0);
    assert_eq!(udplite_error(&p[..], off), Err(UdpError::NoChecksum));
    // The coverage is checked first.
    let (p, off) = udplite4(b"data", 3, 0);
    assert_eq!(udplite_error(&p[..], off), Err(UdpError::BadCoverage));
    // Plain UDP with the same bytes: a zero checksum is allowed, and a zero length is not.
    let (p, off) = udplite4(b"data", 12, 0);
    assert_eq!(udp_error(&p[..], off), Ok(Checksum::None));
    let (p, off) = udplite4(b"data", 0, 1);
    assert_eq!(udp_error(&p[..], off), Err(UdpError::Malformed));
}

#[test]
fn udplite_timeouts_and_assured() {
    let mut e = Entry::default();
    let lite = |e: &mut Entry, dir: Dir, j: u64| {
        e.packet(dir, j, |_, status| udplite_packet(status, HZ, &T))
    };
    lite(&mut e, Dir::Original, J0);
    assert_eq!(e.secs(J0), 30);
    lite(&mut e, Dir::Original, J0 + SEC);
    assert_eq!(e.secs(J0 + SEC), 30);
    lite(&mut e, Dir::Reply, J0 + SEC);
    assert_eq!(e.secs(J0 + SEC), 30, "the reply itself is still unreplied");
    // No 2 s rule: the next packet, even at once, is 120 s and assured.
    lite(&mut e, Dir::Original, J0 + SEC + 1);
    assert_eq!(e.secs(J0 + SEC + 1), 120);
    assert_eq!(e.assured_events, 1);
    // Asked for on every packet; the test-and-set raises the event once.
    assert!(udplite_packet(e.status, HZ, &T).set_assured);
    lite(&mut e, Dir::Reply, J0 + 5 * SEC);
    assert_eq!(e.assured_events, 1);
    assert_eq!(e.udp, UdpState::default(), "UDP-Lite has no stream_ts");
}

#[test]
fn udplite_nat_clash_never_assured() {
    let status = IPS_CONFIRMED | IPS_SEEN_REPLY | IPS_NAT_CLASH;
    assert_eq!(
        udplite_packet(status, HZ, &T),
        PacketAction::refresh(120 * HZ)
    );
}

// ---------------------------------------------------------------------------------------------
// ICMP and ICMPv6

#[test]
fn icmp_valid_new_types() {
    for ty in 0..=255u8 {
        let ok = matches!(ty, 8 | 13 | 15 | 17);
        assert_eq!(icmp_new_ok(L3::Ipv4, ty), ok, "type {ty}");
        // Never over IPv6 (state->pf != NFPROTO_IPV4).
        assert!(!icmp_new_ok(L3::Ipv6, ty), "type {ty}");
        let a = icmp_packet(L3::Ipv4, ty, HZ, &T);
        if ok {
            assert_eq!(a, PacketAction::refresh(30 * HZ));
        } else {
            assert_eq!(a, PacketAction::INVALID, "type {ty}");
        }
        assert_eq!(icmp_packet(L3::Ipv6, ty, HZ, &T), PacketAction::INVALID);
    }
}

#[test]
fn icmp_echo_exchange() {
    let req = Ipv4::new(IPPROTO_ICMP, A4, B4).build(&echo(8, 0x1234, 1, b"ping"));
    let p = parse_ipv4(&req[..], 0).unwrap();
    assert_eq!(icmp_verdict(&req[..], 0, &p), IcmpVerdict::Track);
    let L4::Icmp { ty, .. } = p.tuple.l4 else {
        panic!("not ICMP");
    };
    assert!(p.tuple.invert().is_some());
    let mut e = Entry::default();
    let icmp = |e: &mut Entry, dir: Dir, j: u64| {
        e.packet(dir, j, |_, _| icmp_packet(L3::Ipv4, ty, HZ, &T))
    };
    assert_eq!(icmp(&mut e, Dir::Original, J0), Verdict::Accept);
    assert_eq!(e.secs(J0), 30);
    // The reply: the entry's original type is still 8. Refreshed, not deleted.
    assert_eq!(icmp(&mut e, Dir::Reply, J0 + SEC), Verdict::Accept);
    assert_eq!(e.secs(J0 + SEC), 30);
    assert_eq!(e.status & IPS_SEEN_REPLY, IPS_SEEN_REPLY);
    // A duplicate reply later still matches and refreshes.
    assert_eq!(icmp(&mut e, Dir::Reply, J0 + 20 * SEC), Verdict::Accept);
    assert_eq!(e.secs(J0 + 20 * SEC), 30);
    // ICMP never assures.
    assert_eq!(e.status & IPS_ASSURED, 0);
}

#[test]
fn icmp_reply_without_request_is_invalid() {
    let rep = Ipv4::new(IPPROTO_ICMP, B4, A4).build(&echo(0, 0x1234, 1, b"pong"));
    let p = parse_ipv4(&rep[..], 0).unwrap();
    let L4::Icmp { ty, .. } = p.tuple.l4 else {
        panic!("not ICMP");
    };
    assert_eq!(ty, 0);
    // Invertible, so init_conntrack allocates; the packet function rejects it.
    assert!(p.tuple.invert().is_some());
    assert!(!icmp_new_ok(L3::Ipv4, ty));
    let mut e = Entry::default();
    assert_eq!(
        e.packet(Dir::Original, J0, |_, _| icmp_packet(L3::Ipv4, ty, HZ, &T)),
        Verdict::Invalid
    );
    assert_eq!(e.status, 0, "never confirmed");
}

#[test]
fn icmp_over_ipv6_is_invalid() {
    // IPv6 carrying protocol 1: tracked by tuple, refused by the tracker.
    let pkt = Ipv6::new(IPPROTO_ICMP, A6, B6).build(&echo(8, 1, 1, b""));
    let p = parse_ipv6(&pkt[..], 0).unwrap();
    assert_eq!(p.tuple.proto, IPPROTO_ICMP);
    assert_eq!(icmp_packet(L3::Ipv6, 8, HZ, &T), PacketAction::INVALID);
}

#[test]
fn icmp_timeout_from_netns() {
    let t = Timeouts {
        icmp: 5,
        icmpv6: 7,
        ..Timeouts::defaults()
    };
    assert_eq!(icmp_packet(L3::Ipv4, 8, HZ, &t).refresh, Some(5 * HZ));
    assert_eq!(
        icmpv6_packet(L3::Ipv6, 128, 0, HZ, &t).refresh,
        Some(7 * HZ)
    );
}

#[test]
fn icmpv6_valid_new_types() {
    for ty in 0..=255u8 {
        let ok = matches!(ty, 128 | 139);
        assert_eq!(icmpv6_new_ok(L3::Ipv6, ty), ok, "type {ty}");
        assert!(!icmpv6_new_ok(L3::Ipv4, ty), "type {ty}");
        let a = icmpv6_packet(L3::Ipv6, ty, 0, HZ, &T);
        if ok {
            assert_eq!(a, PacketAction::refresh(30 * HZ));
        } else {
            assert_eq!(a, PacketAction::INVALID, "type {ty}");
        }
    }
}

#[test]
fn icmpv6_type_checked_only_while_unconfirmed() {
    // Unlike ICMP, a confirmed entry is not re-checked (the type cannot change anyway).
    assert_eq!(
        icmpv6_packet(L3::Ipv6, 129, IPS_CONFIRMED, HZ, &T),
        PacketAction::refresh(30 * HZ)
    );
    // The family is checked always.
    assert_eq!(
        icmpv6_packet(L3::Ipv4, 128, IPS_CONFIRMED, HZ, &T),
        PacketAction::INVALID
    );
}

#[test]
fn icmpv6_echo_exchange() {
    let req = Ipv6::new(IPPROTO_ICMPV6, A6, B6).build(&echo(128, 7, 1, b"ping"));
    let p = parse_ipv6(&req[..], 0).unwrap();
    assert_eq!(icmp_verdict(&req[..], 0, &p), IcmpVerdict::Track);
    let L4::Icmp { ty, .. } = p.tuple.l4 else {
        panic!("not ICMPv6");
    };
    let mut e = Entry::default();
    let v6 = |e: &mut Entry, dir: Dir, j: u64| {
        e.packet(dir, j, |_, status| {
            icmpv6_packet(L3::Ipv6, ty, status, HZ, &T)
        })
    };
    assert_eq!(v6(&mut e, Dir::Original, J0), Verdict::Accept);
    assert_eq!(v6(&mut e, Dir::Reply, J0 + 2 * SEC), Verdict::Accept);
    assert_eq!(e.secs(J0 + 2 * SEC), 30);
    assert_eq!(e.status, IPS_CONFIRMED | IPS_SEEN_REPLY);
    // An echo reply alone cannot start one.
    assert!(!icmpv6_new_ok(L3::Ipv6, 129));
    // ICMPv6 over IPv4 (protocol 58 in an IPv4 header): refused.
    assert_eq!(
        icmpv6_packet(L3::Ipv4, 128, 0, HZ, &T),
        PacketAction::INVALID
    );
}

// ---------------------------------------------------------------------------------------------
// Generic

#[test]
fn generic_is_600s_both_ways_never_assured() {
    let mut e = Entry::default();
    let gen = |e: &mut Entry, dir: Dir, j: u64| e.packet(dir, j, |_, _| generic_packet(HZ, &T));
    assert_eq!(gen(&mut e, Dir::Original, J0), Verdict::Accept);
    assert_eq!(e.secs(J0), 600);
    gen(&mut e, Dir::Reply, J0 + 100 * SEC);
    assert_eq!(e.secs(J0 + 100 * SEC), 600);
    gen(&mut e, Dir::Original, J0 + 700 * SEC);
    assert_eq!(e.secs(J0 + 700 * SEC), 600);
    assert_eq!(e.status, IPS_CONFIRMED | IPS_SEEN_REPLY);
    let t = Timeouts {
        generic: 60,
        ..Timeouts::defaults()
    };
    assert_eq!(generic_packet(HZ, &t), PacketAction::refresh(60 * HZ));
}

/// Whether the registry sends `proto` to the generic tracker.
fn is_generic(proto: u8) -> bool {
    use crate::proto::l4proto::{dispatch, L4Proto, Visit};
    use crate::proto::proto_generic::Generic;
    use core::any::TypeId;
    struct IsGeneric;
    impl Visit for IsGeneric {
        type Out = bool;
        fn visit<L: L4Proto>(self) -> bool {
            TypeId::of::<L>() == TypeId::of::<Generic>()
        }
    }
    dispatch(proto, IsGeneric)
}

#[test]
fn generic_dispatch() {
    for proto in [
        IPPROTO_TCP,
        IPPROTO_UDP,
        IPPROTO_ICMP,
        IPPROTO_ICMPV6,
        IPPROTO_UDPLITE,
        IPPROTO_SCTP,
        IPPROTO_DCCP,
        IPPROTO_GRE,
    ] {
        assert!(!is_generic(proto), "{proto}");
    }
    // ESP, AH, OSPF, IPIP, protocol 0, 255.
    for proto in [50, 51, 89, 4, 0, 255] {
        assert!(is_generic(proto), "{proto}");
    }
    // A generic tuple always inverts, so generic entries are always created.
    let pkt = Ipv4::new(50, A4, B4).build(&[0u8; 16]);
    let p = parse_ipv4(&pkt[..], 0).unwrap();
    assert_eq!(p.tuple.l4, L4::Generic);
    assert!(p.tuple.invert().is_some());
}
