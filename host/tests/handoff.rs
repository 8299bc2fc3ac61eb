//! Tests of the hand-off rules: which unconfirmed entry a packet confirms (NAT included),
//! nf_conntrack's tuples read as ours, and the loopback ring.

use crate::proto::handoff::*;
use crate::proto::tuple::*;

fn v4(a: [u8; 4], b: [u8; 4], proto: u8, l4: L4) -> Tuple {
    Tuple {
        l3: L3::Ipv4,
        proto,
        src: Addr::v4(a),
        dst: Addr::v4(b),
        l4,
    }
}

fn udp(a: [u8; 4], sport: u16, b: [u8; 4], dport: u16) -> Tuple {
    v4(
        a,
        b,
        IPPROTO_UDP,
        L4::Ports {
            src: sport,
            dst: dport,
        },
    )
}

const CLIENT: [u8; 4] = [10, 78, 1, 2];
const ROUTER_IN: [u8; 4] = [10, 78, 1, 1];
const ROUTER_OUT: [u8; 4] = [10, 78, 2, 1];
const SERVER: [u8; 4] = [10, 78, 2, 2];

fn view(this_dir: Tuple, other_dir: Tuple) -> NfView {
    NfView {
        this_dir,
        other_dir,
    }
}

#[test]
fn untranslated_packet_confirms_its_entry() {
    let orig = udp(CLIENT, 4000, SERVER, 53);
    assert_eq!(
        handoff(&orig, Some(&orig), None),
        Handoff::Confirm { reply: None }
    );
    // nf_conntrack tracking it without NAT: its reply is the plain inverse.
    let nf = view(orig, orig.invert().unwrap());
    assert_eq!(
        handoff(&orig, Some(&orig), Some(&nf)),
        Handoff::Confirm {
            reply: orig.invert()
        }
    );
}

#[test]
fn another_flow_at_the_same_address_is_never_confirmed() {
    let orig = udp(CLIENT, 4000, SERVER, 53);
    let other = udp(CLIENT, 4001, SERVER, 53);
    assert_eq!(handoff(&orig, Some(&other), None), Handoff::Orphan);
    assert_eq!(handoff(&orig, None, None), Handoff::Orphan);
    // The other flow is tracked (and even translated) by nf_conntrack: still not ours.
    let translated = udp(SERVER, 53, ROUTER_OUT, 9000);
    let nf = view(other, translated);
    assert_eq!(handoff(&orig, Some(&other), Some(&nf)), Handoff::Orphan);
    assert_eq!(
        handoff(&orig, translated.invert().as_ref(), Some(&nf)),
        Handoff::Orphan
    );
}

#[test]
fn snat_takes_the_translated_reply() {
    // client:4000 -> server:53 leaves the router as router_out:4000 (or a remapped port).
    let orig = udp(CLIENT, 4000, SERVER, 53);
    for port in [4000, 1025] {
        let reply = udp(SERVER, 53, ROUTER_OUT, port);
        let nf = view(orig, reply);
        let now = udp(ROUTER_OUT, port, SERVER, 53);
        assert_eq!(
            handoff(&orig, Some(&now), Some(&nf)),
            Handoff::Confirm { reply: Some(reply) }
        );
    }
}

#[test]
fn dnat_and_redirect_take_the_translated_reply() {
    // client -> router_in:80 sent on to server:8080.
    let orig = udp(CLIENT, 4000, ROUTER_IN, 80);
    let reply = udp(SERVER, 8080, CLIENT, 4000);
    let now = udp(CLIENT, 4000, SERVER, 8080);
    assert_eq!(
        handoff(&orig, Some(&now), Some(&view(orig, reply))),
        Handoff::Confirm { reply: Some(reply) }
    );
    // REDIRECT to a local port, and DNAT plus SNAT at once.
    let reply = udp(ROUTER_IN, 8080, CLIENT, 4000);
    let now = reply.invert().unwrap();
    assert_eq!(
        handoff(&orig, Some(&now), Some(&view(orig, reply))),
        Handoff::Confirm { reply: Some(reply) }
    );
    let reply = udp(SERVER, 8080, ROUTER_OUT, 61000);
    let now = reply.invert().unwrap();
    assert_eq!(
        handoff(&orig, Some(&now), Some(&view(orig, reply))),
        Handoff::Confirm { reply: Some(reply) }
    );
}

#[test]
fn translated_packet_must_match_nf_conntrack_reply_exactly() {
    let orig = udp(CLIENT, 4000, SERVER, 53);
    let reply = udp(SERVER, 53, ROUTER_OUT, 4000);
    let nf = view(orig, reply);
    // One field off: another packet.
    for now in [
        udp(ROUTER_OUT, 4001, SERVER, 53),
        udp(ROUTER_IN, 4000, SERVER, 53),
        udp(ROUTER_OUT, 4000, SERVER, 54),
    ] {
        assert_eq!(handoff(&orig, Some(&now), Some(&nf)), Handoff::Orphan);
    }
    assert_eq!(handoff(&orig, None, Some(&nf)), Handoff::Orphan);
}

#[test]
fn icmp_echo_id_remapped() {
    let echo = |a, b, ty, id| v4(a, b, IPPROTO_ICMP, L4::Icmp { ty, code: 0, id });
    let orig = echo(CLIENT, SERVER, 8, 77);
    let reply = echo(SERVER, ROUTER_OUT, 0, 1234);
    let now = echo(ROUTER_OUT, SERVER, 8, 1234);
    assert_eq!(
        handoff(&orig, Some(&now), Some(&view(orig, reply))),
        Handoff::Confirm { reply: Some(reply) }
    );
    // Same translation, another id: not this packet.
    let now = echo(ROUTER_OUT, SERVER, 8, 1235);
    assert_eq!(
        handoff(&orig, Some(&now), Some(&view(orig, reply))),
        Handoff::Orphan
    );
}

#[test]
fn nf_conntrack_in_the_other_direction() {
    // nf_conntrack saw the flow first the other way round (picked up): the packet's
    // direction is its reply, and what it calls original is what the replies look like.
    let orig = udp(SERVER, 53, ROUTER_OUT, 4000);
    let nf_orig = udp(CLIENT, 4000, SERVER, 53);
    let nf = view(orig, nf_orig);
    let now = udp(SERVER, 53, CLIENT, 4000);
    assert_eq!(
        handoff(&orig, Some(&now), Some(&nf)),
        Handoff::Confirm {
            reply: Some(nf_orig)
        }
    );
}

fn nf(l3num: u16, protonum: u8, src: [u8; 16], dst: [u8; 16], a: [u8; 2], b: [u8; 2]) -> NfTuple {
    NfTuple {
        l3num,
        protonum,
        src,
        dst,
        src_u: a,
        dst_u: b,
    }
}

fn a16(head: &[u8]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..head.len()].copy_from_slice(head);
    a
}

#[test]
fn nf_tuples_read_as_parsed_tuples() {
    // Ports in network order.
    let t = Tuple::from_nf(&nf(
        2,
        IPPROTO_TCP,
        a16(&CLIENT),
        a16(&SERVER),
        [0x0f, 0xa0],
        [0, 80],
    ));
    assert_eq!(
        t,
        Some(v4(
            CLIENT,
            SERVER,
            IPPROTO_TCP,
            L4::Ports { src: 4000, dst: 80 }
        ))
    );
    // ICMP: id in the source slot, type and code in the destination's.
    let t = Tuple::from_nf(&nf(
        2,
        IPPROTO_ICMP,
        a16(&CLIENT),
        a16(&SERVER),
        [0x12, 0x34],
        [8, 0],
    ));
    assert_eq!(
        t,
        Some(v4(
            CLIENT,
            SERVER,
            IPPROTO_ICMP,
            L4::Icmp {
                ty: 8,
                code: 0,
                id: 0x1234
            }
        ))
    );
    // GRE keys, a generic protocol (its transport words ignored), SCTP/DCCP/UDP-Lite ports.
    let t = Tuple::from_nf(&nf(
        2,
        IPPROTO_GRE,
        a16(&CLIENT),
        a16(&SERVER),
        [0, 1],
        [0, 2],
    ));
    assert_eq!(
        t.map(|t| t.l4),
        Some(L4::Gre {
            src_key: 1,
            dst_key: 2
        })
    );
    let t = Tuple::from_nf(&nf(2, 253, a16(&CLIENT), a16(&SERVER), [9, 9], [9, 9]));
    assert_eq!(t, Some(v4(CLIENT, SERVER, 253, L4::Generic)));
    for p in [IPPROTO_SCTP, IPPROTO_DCCP, IPPROTO_UDPLITE] {
        let t = Tuple::from_nf(&nf(2, p, a16(&CLIENT), a16(&SERVER), [0, 1], [0, 2]));
        assert_eq!(t.map(|t| t.l4), Some(L4::Ports { src: 1, dst: 2 }));
    }
    // IPv6 keeps all 16 bytes; IPv4 only the first 4 whatever follows.
    let six = [0xfd, 0x78, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    let t = Tuple::from_nf(&nf(10, IPPROTO_ICMPV6, six, six, [0, 5], [128, 0]));
    assert_eq!(t.map(|t| (t.l3, t.src)), Some((L3::Ipv6, Addr(six))));
    let t = Tuple::from_nf(&nf(2, IPPROTO_UDP, six, six, [0, 1], [0, 2]));
    assert_eq!(t.map(|t| t.src), Some(Addr::v4([0xfd, 0x78, 1, 0])));
    // Families other than IPv4 and IPv6: nothing.
    assert_eq!(
        Tuple::from_nf(&nf(7, IPPROTO_UDP, six, six, [0, 1], [0, 2])),
        None
    );
}

#[test]
fn nf_tuple_of_a_packet_equals_our_parse() {
    // A UDP packet as the parser reads it, and as nf_conntrack would store it.
    let ip = [0x45, 0, 0, 28, 0, 0, 0, 0, 64, IPPROTO_UDP, 0, 0];
    let pkt = [&ip[..], &CLIENT, &SERVER, &[0x0f, 0xa0, 0, 53, 0, 8, 0, 0]].concat();
    let parsed = parse_ipv4(&pkt[..], 0).unwrap().tuple;
    let t = Tuple::from_nf(&nf(
        2,
        IPPROTO_UDP,
        a16(&CLIENT),
        a16(&SERVER),
        [0x0f, 0xa0],
        [0, 53],
    ))
    .unwrap();
    assert_eq!(t, parsed);
    assert_eq!(t.key(), parsed.key());
}

#[test]
fn loopback_ring_finds_exactly_what_left_on_lo() {
    let mut r = LoopbackRing::default();
    r.push(Mark::Looped, 0x1000, 7);
    // Another skb, another fingerprint (same address reused), or a mark of another kind.
    assert!(!r.take(Mark::Looped, 0x2000, 7));
    assert!(!r.take(Mark::Looped, 0x1000, 8));
    assert!(!r.take(Mark::InvalidOut, 0x1000, 7));
    assert!(r.take(Mark::Looped, 0x1000, 7));
    // Used up once.
    assert!(!r.take(Mark::Looped, 0x1000, 7));
    assert_eq!(r.len(), 0);
}

#[test]
fn loopback_ring_frees_from_the_front_only() {
    let mut r = LoopbackRing::default();
    for i in 0..4 {
        r.push(Mark::Looped, 0x100 + i, 1);
    }
    // Delivered out of order: the slot is freed, the front stays.
    assert!(r.take(Mark::Looped, 0x102, 1));
    assert_eq!(r.len(), 4);
    assert!(r.take(Mark::Looped, 0x100, 1));
    assert_eq!(r.len(), 3);
    assert!(r.take(Mark::Looped, 0x101, 1));
    assert_eq!(r.len(), 1);
    assert!(r.take(Mark::Looped, 0x103, 1));
    assert_eq!(r.len(), 0);
}

#[test]
fn loopback_ring_forgets_the_oldest_when_full() {
    let mut r = LoopbackRing::default();
    for i in 0..LOOPBACK_SLOTS + 1 {
        r.push(Mark::Looped, i, 0);
    }
    assert_eq!(r.len(), LOOPBACK_SLOTS);
    assert!(!r.take(Mark::Looped, 0, 0));
    assert!(r.take(Mark::Looped, 1, 0));
    assert!(r.take(Mark::Looped, LOOPBACK_SLOTS, 0));
    // Records never used up are pushed out by newer ones as the ring wraps around.
    for i in 0..10 * LOOPBACK_SLOTS {
        r.push(Mark::InvalidOut, 0x10000 + i, 0);
        assert!(r.take(Mark::InvalidOut, 0x10000 + i, 0));
        assert!(r.len() <= LOOPBACK_SLOTS);
    }
    assert!(!r.take(Mark::Looped, 2, 0));
    assert!(!r.take(Mark::Looped, LOOPBACK_SLOTS - 1, 0));
}

#[test]
fn packet_fingerprint_reads_from_the_network_header() {
    let mut pkt = vec![0xaa; 14];
    pkt.extend(0..100u8);
    let head: Vec<u8> = (0..FINGERPRINT_BYTES as u8).collect();
    assert_eq!(packet_fingerprint(&pkt[..], 14), fingerprint(100, &head));
    // Short packets: what there is; an offset past the end: the length alone.
    assert_eq!(
        packet_fingerprint(&pkt[..20], 14),
        fingerprint(6, &[0, 1, 2, 3, 4, 5])
    );
    assert_eq!(packet_fingerprint(&pkt[..], 500), fingerprint(0, &[]));
}

#[test]
fn fingerprint_covers_length_and_bytes() {
    let a = fingerprint(60, &[1, 2, 3]);
    assert_eq!(a, fingerprint(60, &[1, 2, 3]));
    assert_ne!(a, fingerprint(61, &[1, 2, 3]));
    assert_ne!(a, fingerprint(60, &[1, 2, 4]));
    assert_ne!(a, fingerprint(60, &[1, 2]));
}
