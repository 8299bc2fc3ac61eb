// SPDX-License-Identifier: GPL-2.0

//! Tests of `src/tuple.rs` against the behaviour of Linux 6.12's nf_conntrack
//! (`nf_ct_get_tuple`, `nf_ct_invert_tuple`, the ICMP error handlers and `print_tuple`).

use crate::pkt::*;
use crate::proto::tuple::*;
use std::collections::HashSet;

fn v4(proto: u8, l4: L4) -> Tuple {
    Tuple {
        l3: L3::Ipv4,
        proto,
        src: Addr::v4(A4),
        dst: Addr::v4(B4),
        l4,
    }
}

fn v6(proto: u8, l4: L4) -> Tuple {
    Tuple {
        l3: L3::Ipv6,
        proto,
        src: Addr(A6),
        dst: Addr(B6),
        l4,
    }
}

fn ports(src: u16, dst: u16) -> L4 {
    L4::Ports { src, dst }
}

fn icmp_l4(ty: u8, code: u8, id: u16) -> L4 {
    L4::Icmp { ty, code, id }
}

fn text(t: &Tuple) -> String {
    let mut s = String::new();
    print_tuple(&mut s, t).unwrap();
    s
}

fn p4(pkt: &[u8]) -> Result<Parsed, ParseError> {
    parse_ipv4(pkt, 0)
}

fn p6(pkt: &[u8]) -> Result<Parsed, ParseError> {
    parse_ipv6(pkt, 0)
}

fn udp4() -> Vec<u8> {
    Ipv4::new(IPPROTO_UDP, A4, B4).build(&udp(40000, 53, b"query"))
}

fn udp6() -> Vec<u8> {
    Ipv6::new(IPPROTO_UDP, A6, B6).build(&udp(40000, 53, b"query"))
}

/// A packet that claims `len` bytes, all zero, without storing them.
struct Zeros(usize);

impl PacketBytes for Zeros {
    fn len(&self) -> usize {
        self.0
    }

    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), ParseError> {
        match offset.checked_add(buf.len()) {
            Some(end) if end <= self.0 => {
                buf.fill(0);
                Ok(())
            }
            _ => Err(ParseError::Truncated),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Packet bytes

#[test]
fn slice_reads_are_bounds_checked() {
    let data = [1u8, 2, 3, 4];
    let mut buf = [0u8; 2];
    assert_eq!(data[..].read(2, &mut buf), Ok(()));
    assert_eq!(buf, [3, 4]);
    assert_eq!(data[..].read(3, &mut buf), Err(ParseError::Truncated));
    assert_eq!(
        data[..].read(usize::MAX, &mut buf),
        Err(ParseError::Truncated)
    );
    assert_eq!(data[..].read(4, &mut []), Ok(()));
    assert_eq!(data[..].read(5, &mut []), Err(ParseError::Truncated));
    assert_eq!(PacketBytes::len(&data[..]), 4);
}

#[test]
fn builders_make_valid_checksums() {
    let pkt = udp4();
    assert_eq!(csum(&pkt[..20]), 0);
    let t = Ipv4::new(IPPROTO_TCP, A4, B4).build(&Tcp::new(1, 2, SYN).build(&[]));
    assert_eq!(t.len(), 40);
    assert_eq!(csum(&t[..20]), 0);
    let e = Ipv4::new(IPPROTO_ICMP, A4, B4).build(&echo(8, 1, 1, b"ping"));
    assert_eq!(csum(&e[20..]), 0);
}

// ---------------------------------------------------------------------------------------------
// Good packets

#[test]
fn ipv4_udp() {
    let p = p4(&udp4()).unwrap();
    assert_eq!(p.tuple, v4(IPPROTO_UDP, ports(40000, 53)));
    assert_eq!(p.dataoff, 20);
    assert_eq!(p.tuple.l3.num(), NFPROTO_IPV4);
}

#[test]
fn ipv4_at_network_offset() {
    let mut pkt = vec![0xaa; 14];
    pkt.extend_from_slice(&udp4());
    let p = parse_ipv4(&pkt[..], 14).unwrap();
    assert_eq!(p.tuple, v4(IPPROTO_UDP, ports(40000, 53)));
    assert_eq!(p.dataoff, 34);
    // The IPv4 length check counts from the network header.
    assert_eq!(
        parse_ipv4(&pkt[..pkt.len() - 1], 14),
        Err(ParseError::Malformed)
    );
}

#[test]
fn ipv4_tcp_with_options() {
    let mut ip = Ipv4::new(IPPROTO_TCP, A4, B4);
    ip.options = vec![0x94, 0x04, 0, 0, 1, 1, 1, 0]; // router alert, NOPs, EOL
    let pkt = ip.build(&Tcp::new(51000, 443, SYN).build(&[]));
    let p = p4(&pkt).unwrap();
    assert_eq!(p.tuple, v4(IPPROTO_TCP, ports(51000, 443)));
    assert_eq!(p.dataoff, 28);
}

#[test]
fn ipv4_max_ihl() {
    let mut ip = Ipv4::new(IPPROTO_UDP, A4, B4);
    ip.options = vec![1; 40];
    let p = p4(&ip.build(&udp(7, 9, &[]))).unwrap();
    assert_eq!(p.dataoff, 60);
    assert_eq!(p.tuple.l4, ports(7, 9));
}

#[test]
fn ipv4_port_based_protocols() {
    let cases: [(u8, Vec<u8>); 5] = [
        (IPPROTO_TCP, Tcp::new(1024, 22, ACK).build(b"x")),
        (IPPROTO_UDP, udp(1025, 123, &[])),
        (IPPROTO_UDPLITE, udp(1026, 5004, b"rtp")),
        (
            IPPROTO_SCTP,
            sctp(1027, 38412, 0, &sctp_chunk(1, 0, &[0; 16])),
        ),
        (IPPROTO_DCCP, dccp(1028, 5001, 0, 1, &[0; 4])),
    ];
    for (proto, seg) in cases {
        let sport = u16::from_be_bytes([seg[0], seg[1]]);
        let dport = u16::from_be_bytes([seg[2], seg[3]]);
        let p = p4(&Ipv4::new(proto, A4, B4).build(&seg)).unwrap();
        assert_eq!(p.tuple, v4(proto, ports(sport, dport)), "proto {proto}");
        let p = p6(&Ipv6::new(proto, A6, B6).build(&seg)).unwrap();
        assert_eq!(p.tuple, v6(proto, ports(sport, dport)), "proto {proto}");
        assert_eq!(p.dataoff, 40);
    }
}

#[test]
fn ipv4_icmp_echo() {
    let pkt = Ipv4::new(IPPROTO_ICMP, A4, B4).build(&echo(8, 0x1234, 7, b"abcdefgh"));
    let p = p4(&pkt).unwrap();
    assert_eq!(p.tuple, v4(IPPROTO_ICMP, icmp_l4(8, 0, 0x1234)));
    assert_eq!(p.dataoff, 20);
}

#[test]
fn icmp_id_is_taken_for_every_type() {
    // icmp_pkt_to_tuple copies un.echo.id whatever the type.
    let pkt = Ipv4::new(IPPROTO_ICMP, A4, B4).build(&icmp(3, 4, [0, 0, 0x05, 0xdc], &[]));
    assert_eq!(p4(&pkt).unwrap().tuple.l4, icmp_l4(3, 4, 0));
    let pkt = Ipv4::new(IPPROTO_ICMP, A4, B4).build(&icmp(13, 0, [0xbe, 0xef, 0, 1], &[0; 12]));
    assert_eq!(p4(&pkt).unwrap().tuple.l4, icmp_l4(13, 0, 0xbeef));
}

#[test]
fn ipv6_udp_tcp_icmpv6() {
    let p = p6(&udp6()).unwrap();
    assert_eq!(p.tuple, v6(IPPROTO_UDP, ports(40000, 53)));
    assert_eq!(p.dataoff, 40);
    assert_eq!(p.tuple.l3.num(), NFPROTO_IPV6);

    let pkt = Ipv6::new(IPPROTO_TCP, A6, B6).build(&Tcp::new(33000, 80, SYN).build(&[]));
    assert_eq!(p6(&pkt).unwrap().tuple, v6(IPPROTO_TCP, ports(33000, 80)));

    let pkt = Ipv6::new(IPPROTO_ICMPV6, A6, B6).build(&echo(128, 0xabcd, 1, b"ping"));
    let p = p6(&pkt).unwrap();
    assert_eq!(p.tuple, v6(IPPROTO_ICMPV6, icmp_l4(128, 0, 0xabcd)));
}

#[test]
fn ipv6_at_network_offset() {
    let mut pkt = vec![0; 18];
    pkt.extend_from_slice(&udp6());
    let p = parse_ipv6(&pkt[..], 18).unwrap();
    assert_eq!(p.tuple, v6(IPPROTO_UDP, ports(40000, 53)));
    assert_eq!(p.dataoff, 58);
}

#[test]
fn generic_protocols() {
    // ESP, OSPF, an experimental number: addresses and protocol only.
    for proto in [50u8, 89, 253] {
        let p = p4(&Ipv4::new(proto, A4, B4).build(&[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1])).unwrap();
        assert_eq!(p.tuple, v4(proto, L4::Generic));
        let p = p6(&Ipv6::new(proto, A6, B6).build(&[1, 2, 3])).unwrap();
        assert_eq!(p.tuple, v6(proto, L4::Generic));
    }
    // No payload at all is fine for them (the kernel tracks dataoff == skb->len).
    let pkt = Ipv4::new(ESP, A4, B4).build(&[]);
    assert_eq!(p4(&pkt).unwrap().dataoff, pkt.len());
    let pkt = Ipv6::new(ESP, A6, B6).build(&[]);
    assert_eq!(p6(&pkt).unwrap().dataoff, pkt.len());
}

#[test]
fn gre_without_pptp_has_zero_keys() {
    let no_keys = L4::Gre {
        src_key: 0,
        dst_key: 0,
    };
    // Plain GRE (version 0) with a key: the key is not part of the tuple.
    let seg = gre(0x2000, 0x0800, &[0, 0, 0, 42]);
    assert_eq!(
        p4(&Ipv4::new(IPPROTO_GRE, A4, B4).build(&seg))
            .unwrap()
            .tuple,
        v4(IPPROTO_GRE, no_keys)
    );
    assert_eq!(
        p6(&Ipv6::new(IPPROTO_GRE, A6, B6).build(&seg))
            .unwrap()
            .tuple,
        v6(IPPROTO_GRE, no_keys)
    );
    // Shorter than the base header: still tracked, like the generic protocol.
    for n in 0..4 {
        let pkt = Ipv4::new(IPPROTO_GRE, A4, B4).build(&seg[..n]);
        assert_eq!(p4(&pkt).unwrap().tuple.l4, no_keys, "{n} bytes");
    }
}

#[test]
fn gre_pptp_call_id() {
    // Enhanced GRE: key present, version 1, PPP, payload length, call id.
    let seg = gre(0x3001, 0x880b, &[0, 0, 0x1a, 0x2b, 0, 0, 0, 1]);
    let p = p4(&Ipv4::new(IPPROTO_GRE, A4, B4).build(&seg)).unwrap();
    assert_eq!(
        p.tuple.l4,
        L4::Gre {
            src_key: 0,
            dst_key: 0x1a2b
        }
    );
    // Truncated before the call id: keys stay 0 and the packet is still tracked.
    for n in 4..8 {
        let pkt = Ipv4::new(IPPROTO_GRE, A4, B4).build(&seg[..n]);
        assert_eq!(
            p4(&pkt).unwrap().tuple.l4,
            L4::Gre {
                src_key: 0,
                dst_key: 0
            }
        );
    }
    // Version 1 that is not PPP: gre_pkt_to_tuple fails.
    let bad = gre(0x3001, 0x0800, &[0, 0, 0x1a, 0x2b]);
    assert_eq!(
        p4(&Ipv4::new(IPPROTO_GRE, A4, B4).build(&bad)),
        Err(ParseError::Malformed)
    );
    // ... but only once 8 bytes are there, as in the kernel.
    assert!(p4(&Ipv4::new(IPPROTO_GRE, A4, B4).build(&bad[..7])).is_ok());
}

#[test]
fn packets_of_one_flow_share_a_tuple() {
    let a = Ipv4::new(IPPROTO_TCP, A4, B4).build(&Tcp::new(5000, 80, SYN).build(&[]));
    let mut ip = Ipv4::new(IPPROTO_TCP, A4, B4);
    ip.ttl = 3;
    ip.id = 99;
    ip.frag_off = IP_DF;
    let mut tcp = Tcp::new(5000, 80, ACK | PSH);
    tcp.seq = 7;
    let b = ip.build(&tcp.build(b"GET / HTTP/1.0\r\n\r\n"));
    let (ta, tb) = (p4(&a).unwrap().tuple, p4(&b).unwrap().tuple);
    assert_eq!(ta, tb);
    let set: HashSet<Tuple> = [ta, tb, ta.invert().unwrap()].into_iter().collect();
    assert_eq!(set.len(), 2);
    // Same ports, other protocol: another flow.
    let u = p4(&Ipv4::new(IPPROTO_UDP, A4, B4).build(&udp(5000, 80, &[])))
        .unwrap()
        .tuple;
    assert_ne!(ta, u);
}

// ---------------------------------------------------------------------------------------------
// Inversion

#[test]
fn invert_swaps_addresses_and_ports() {
    let t = v4(IPPROTO_UDP, ports(40000, 53));
    let r = t.invert().unwrap();
    assert_eq!(r.src, Addr::v4(B4));
    assert_eq!(r.dst, Addr::v4(A4));
    assert_eq!(r.l4, ports(53, 40000));
    assert_eq!((r.l3, r.proto), (L3::Ipv4, IPPROTO_UDP));
    assert_eq!(r.invert(), Some(t));

    let t = v6(IPPROTO_SCTP, ports(1, 2));
    let r = t.invert().unwrap();
    assert_eq!((r.src, r.dst, r.l4), (Addr(B6), Addr(A6), ports(2, 1)));

    let g = v4(
        IPPROTO_GRE,
        L4::Gre {
            src_key: 0,
            dst_key: 7,
        },
    );
    assert_eq!(
        g.invert().unwrap().l4,
        L4::Gre {
            src_key: 7,
            dst_key: 0
        }
    );
    let e = v6(ESP, L4::Generic);
    assert_eq!(e.invert().unwrap(), v6(ESP, L4::Generic).invert().unwrap());
    assert_eq!(e.invert().unwrap().src, Addr(B6));
}

#[test]
fn reply_packet_matches_inverted_tuple() {
    let orig = p4(&udp4()).unwrap().tuple;
    let reply = p4(&Ipv4::new(IPPROTO_UDP, B4, A4).build(&udp(53, 40000, b"answer")))
        .unwrap()
        .tuple;
    assert_eq!(orig.invert(), Some(reply));

    let ping = Ipv6::new(IPPROTO_ICMPV6, A6, B6).build(&echo(128, 9, 1, &[]));
    let pong = Ipv6::new(IPPROTO_ICMPV6, B6, A6).build(&echo(129, 9, 1, &[]));
    assert_eq!(
        p6(&ping).unwrap().tuple.invert(),
        Some(p6(&pong).unwrap().tuple)
    );
}

#[test]
fn icmp_inverse_types() {
    let pairs = [
        (8u8, 0u8),
        (0, 8),
        (13, 14),
        (14, 13),
        (15, 16),
        (16, 15),
        (17, 18),
        (18, 17),
    ];
    for ty in 0..=255u8 {
        let t = v4(IPPROTO_ICMP, icmp_l4(ty, 5, 0x4242));
        let want = pairs.iter().find(|p| p.0 == ty).map(|p| p.1);
        match t.invert() {
            Some(r) => {
                assert_eq!(Some(r.l4), want.map(|w| icmp_l4(w, 5, 0x4242)), "type {ty}");
                assert_eq!((r.src, r.dst), (t.dst, t.src));
            }
            None => assert_eq!(want, None, "type {ty}"),
        }
    }
}

#[test]
fn icmpv6_inverse_types() {
    let pairs = [(128u8, 129u8), (129, 128), (139, 140), (140, 139)];
    for ty in 0..=255u8 {
        let t = v6(IPPROTO_ICMPV6, icmp_l4(ty, 1, 77));
        let want = pairs
            .iter()
            .find(|p| p.0 == ty)
            .map(|p| icmp_l4(p.1, 1, 77));
        assert_eq!(t.invert().map(|r| r.l4), want, "type {ty}");
    }
}

#[test]
fn invert_table_follows_protocol_not_family() {
    // nf_ct_invert_tuple switches on protonum: ICMP inside IPv6 uses the IPv4 table.
    let t = v6(IPPROTO_ICMP, icmp_l4(8, 0, 1));
    assert_eq!(t.invert().unwrap().l4, icmp_l4(0, 0, 1));
    assert_eq!(v6(IPPROTO_ICMP, icmp_l4(128, 0, 1)).invert(), None);
    assert_eq!(
        v4(IPPROTO_ICMPV6, icmp_l4(128, 0, 1)).invert().unwrap().l4,
        icmp_l4(129, 0, 1)
    );
}

#[test]
fn directions() {
    assert_eq!(Dir::Original as u8, 0);
    assert_eq!(Dir::Reply as u8, 1);
    assert_eq!(Dir::Original.reverse(), Dir::Reply);
    assert_eq!(Dir::Reply.reverse(), Dir::Original);
}

// ---------------------------------------------------------------------------------------------
// Truncated and malformed packets

/// Every proper prefix of `pkt` fails, and `pkt` parses.
fn check_prefixes(pkt: &[u8], parse: fn(&[u8]) -> Result<Parsed, ParseError>) {
    for n in 0..pkt.len() {
        assert!(
            parse(&pkt[..n]).is_err(),
            "prefix of {n} bytes of {}",
            pkt.len()
        );
    }
    assert!(parse(pkt).is_ok());
}

#[test]
fn every_prefix_fails() {
    let v4_pkts = [
        udp4(),
        Ipv4::new(IPPROTO_TCP, A4, B4).build(&Tcp::new(1, 2, SYN).build(&[])),
        Ipv4::new(IPPROTO_ICMP, A4, B4).build(&echo(8, 1, 1, &[])),
        Ipv4::new(IPPROTO_SCTP, A4, B4).build(&sctp(1, 2, 3, &[])),
        Ipv4::new(ESP, A4, B4).build(&[9; 12]),
    ];
    for pkt in &v4_pkts {
        check_prefixes(pkt, p4);
    }
    let v6_pkts = [
        udp6(),
        Ipv6::new(IPPROTO_UDP, A6, B6)
            .ext(HOP, opts_hdr(0))
            .ext(AUTH, auth_hdr(4))
            .ext(DEST, opts_hdr(1))
            .build(&udp(1, 2, &[])),
        Ipv6::new(IPPROTO_ICMPV6, A6, B6).build(&echo(128, 1, 1, &[])),
        Ipv6::new(IPPROTO_TCP, A6, B6)
            .ext(FRAGMENT, frag_hdr(0, true, 1))
            .build(&Tcp::new(1, 2, SYN).build(&[])),
    ];
    for pkt in &v6_pkts {
        check_prefixes(pkt, p6);
    }
}

/// Cuts the transport header short while keeping the IP length fields consistent: the
/// transport bytes the tuple needs are then the only thing missing.
#[test]
fn transport_header_needs() {
    let segs: [(u8, Vec<u8>, usize); 7] = [
        (IPPROTO_TCP, Tcp::new(1, 2, SYN).build(&[]), 4),
        (IPPROTO_UDP, udp(1, 2, &[]), 4),
        (IPPROTO_UDPLITE, udp(1, 2, &[]), 4),
        (IPPROTO_SCTP, sctp(1, 2, 3, &[]), 4),
        (IPPROTO_DCCP, dccp(1, 2, 0, 0, &[]), 4),
        (IPPROTO_ICMP, echo(8, 1, 1, &[]), 8),
        (IPPROTO_ICMPV6, echo(128, 1, 1, &[]), 8),
    ];
    for (proto, seg, need) in segs {
        for n in 0..=seg.len() {
            let r4 = p4(&Ipv4::new(proto, A4, B4).build(&seg[..n]));
            let r6 = p6(&Ipv6::new(proto, A6, B6).build(&seg[..n]));
            if n < need {
                assert_eq!(r4, Err(ParseError::Truncated), "proto {proto}, {n} bytes");
                assert_eq!(r6, Err(ParseError::Truncated), "proto {proto}, {n} bytes");
            } else {
                assert!(r4.is_ok() && r6.is_ok(), "proto {proto}, {n} bytes");
            }
        }
    }
}

#[test]
fn ipv4_header_checks() {
    let base = Ipv4::new(IPPROTO_UDP, A4, B4);
    let seg = udp(1, 2, &[0; 8]);
    for ihl in 0..5 {
        let mut ip = base.clone();
        ip.ihl = Some(ihl);
        assert_eq!(p4(&ip.build(&seg)), Err(ParseError::Malformed), "ihl {ihl}");
    }
    for version in [0, 6, 15] {
        let mut ip = base.clone();
        ip.version = version;
        assert_eq!(
            p4(&ip.build(&seg)),
            Err(ParseError::Malformed),
            "version {version}"
        );
    }
    // Total length shorter than the header, longer than the packet.
    for tot_len in [1u16, 19, 37, 1500, 65535] {
        let mut ip = base.clone();
        ip.tot_len = Some(tot_len);
        assert_eq!(
            p4(&ip.build(&seg)),
            Err(ParseError::Malformed),
            "tot_len {tot_len}"
        );
    }
    let mut ip = base.clone();
    ip.options = vec![1; 4];
    ip.tot_len = Some(20);
    assert_eq!(p4(&ip.build(&seg)), Err(ParseError::Malformed));
    // IHL pointing past the packet (inconsistent with any valid total length).
    let mut ip = base.clone();
    ip.ihl = Some(15);
    ip.tot_len = Some(60);
    assert_eq!(p4(&ip.build(&seg)), Err(ParseError::Malformed));
    // Total length exactly the header: no transport header, so no ports ...
    let mut ip = base.clone();
    ip.tot_len = Some(20);
    assert_eq!(p4(&ip.build(&[])), Err(ParseError::Truncated));
    // ... which a protocol without ports does not need.
    let mut gen = Ipv4::new(ESP, A4, B4);
    gen.tot_len = Some(20);
    assert_eq!(p4(&gen.build(&[])).map(|p| p.dataoff), Ok(20));
}

#[test]
fn ipv4_length_edge_cases() {
    // Trailing bytes after tot_len (link-layer padding) are fine.
    let mut pkt = udp4();
    pkt.extend_from_slice(&[0; 10]);
    assert_eq!(p4(&pkt).unwrap().tuple, v4(IPPROTO_UDP, ports(40000, 53)));
    // tot_len 0 is what BIG TCP GSO packets carry; the skb length rules then.
    let mut ip = Ipv4::new(IPPROTO_TCP, A4, B4);
    ip.tot_len = Some(0);
    let pkt = ip.build(&Tcp::new(1, 2, ACK).build(&[0; 100]));
    assert_eq!(p4(&pkt).unwrap().tuple.l4, ports(1, 2));
}

#[test]
fn ipv4_fragments() {
    let seg = udp(1, 2, &[0; 16]);
    let frag = |frag_off: u16| {
        let mut ip = Ipv4::new(IPPROTO_UDP, A4, B4);
        ip.frag_off = frag_off;
        p4(&ip.build(&seg))
    };
    // First fragment (MF, offset 0) and DF packets are tracked.
    assert!(frag(IP_MF).is_ok());
    assert!(frag(IP_DF).is_ok());
    // Any non-zero offset is not.
    for off in [1u16, 2, 185, 0x1fff] {
        assert_eq!(frag(off), Err(ParseError::Fragment), "offset {off}");
        assert_eq!(
            frag(off | IP_MF),
            Err(ParseError::Fragment),
            "offset {off} + MF"
        );
    }
    // Even when the fragment is too short to hold ports.
    let mut ip = Ipv4::new(IPPROTO_TCP, A4, B4);
    ip.frag_off = 3;
    assert_eq!(p4(&ip.build(&[1])), Err(ParseError::Fragment));
}

#[test]
fn ipv6_header_checks() {
    let seg = udp(1, 2, &[]);
    let mut ip = Ipv6::new(IPPROTO_UDP, A6, B6);
    ip.version = 4;
    assert_eq!(p6(&ip.build(&seg)), Err(ParseError::Malformed));
    let mut ip = Ipv6::new(IPPROTO_UDP, A6, B6);
    ip.payload_len = Some(9);
    assert_eq!(p6(&ip.build(&seg)), Err(ParseError::Malformed));
    // A shorter payload length leaves trailing bytes, which are ignored.
    ip.payload_len = Some(4);
    assert_eq!(p6(&ip.build(&seg)).unwrap().tuple.l4, ports(1, 2));
    // 0 is a jumbogram's payload length.
    ip.payload_len = Some(0);
    assert_eq!(p6(&ip.build(&seg)).unwrap().tuple.l4, ports(1, 2));
}

// ---------------------------------------------------------------------------------------------
// IPv6 extension headers

#[test]
fn ipv6_extension_chain() {
    let pkt = Ipv6::new(IPPROTO_UDP, A6, B6)
        .ext(HOP, opts_hdr(0))
        .ext(ROUTING, opts_hdr(1))
        .ext(DEST, opts_hdr(2))
        .build(&udp(5353, 5353, b"mdns"));
    let p = p6(&pkt).unwrap();
    assert_eq!(p.dataoff, 40 + 8 + 16 + 24);
    assert_eq!(p.tuple, v6(IPPROTO_UDP, ports(5353, 5353)));
}

#[test]
fn ipv6_auth_header_counts_words() {
    // AH length 4 means (4 + 2) * 4 = 24 bytes, not (4 + 1) * 8 = 40.
    let pkt = Ipv6::new(IPPROTO_TCP, A6, B6)
        .ext(AUTH, auth_hdr(4))
        .build(&Tcp::new(4000, 22, SYN).build(&[]));
    let p = p6(&pkt).unwrap();
    assert_eq!(p.dataoff, 64);
    assert_eq!(p.tuple.l4, ports(4000, 22));
    // AH and ESP: the chain stops at ESP, which is tracked as a generic protocol.
    let pkt = Ipv6::new(ESP, A6, B6)
        .ext(AUTH, auth_hdr(1))
        .build(&[0; 16]);
    let p = p6(&pkt).unwrap();
    assert_eq!(
        (p.tuple.proto, p.tuple.l4, p.dataoff),
        (ESP, L4::Generic, 52)
    );
}

#[test]
fn ipv6_fragment_header() {
    let seg = udp(1, 2, &[0; 8]);
    let first = Ipv6::new(IPPROTO_UDP, A6, B6)
        .ext(FRAGMENT, frag_hdr(0, true, 0x42))
        .build(&seg);
    let p = p6(&first).unwrap();
    assert_eq!((p.dataoff, p.tuple.l4), (48, ports(1, 2)));
    // An atomic fragment (offset 0, no M flag) as well.
    let atomic = Ipv6::new(IPPROTO_UDP, A6, B6)
        .ext(FRAGMENT, frag_hdr(0, false, 1))
        .build(&seg);
    assert!(p6(&atomic).is_ok());
    for (off, more) in [(1, true), (1, false), (185, true), (0x1fff, false)] {
        let pkt = Ipv6::new(IPPROTO_UDP, A6, B6)
            .ext(HOP, opts_hdr(0))
            .ext(FRAGMENT, frag_hdr(off, more, 1))
            .build(&seg);
        assert_eq!(p6(&pkt), Err(ParseError::Fragment), "offset {off}");
    }
    // The reserved bits next to M do not make a later fragment.
    let mut h = frag_hdr(0, false, 1);
    h[3] |= 0x06;
    let pkt = Ipv6::new(IPPROTO_UDP, A6, B6).ext(FRAGMENT, h).build(&seg);
    assert!(p6(&pkt).is_ok());
}

#[test]
fn ipv6_no_next_header() {
    let pkt = Ipv6::new(NONE, A6, B6).build(&[]);
    assert_eq!(p6(&pkt), Err(ParseError::NoNextHeader));
    let pkt = Ipv6::new(NONE, A6, B6)
        .ext(HOP, opts_hdr(0))
        .ext(DEST, opts_hdr(0))
        .build(&[]);
    assert_eq!(p6(&pkt), Err(ParseError::NoNextHeader));
}

#[test]
fn ipv6_long_chain() {
    // 8000 destination options headers: 64000 bytes, near the maximum payload length.
    let mut ip = Ipv6::new(IPPROTO_UDP, A6, B6);
    for _ in 0..8000 {
        ip = ip.ext(DEST, opts_hdr(0));
    }
    let pkt = ip.build(&udp(1, 2, &[]));
    let p = p6(&pkt).unwrap();
    assert_eq!((p.dataoff, p.tuple.l4), (40 + 64000, ports(1, 2)));
    // A chain that never ends within the packet.
    let mut pkt = Ipv6::new(IPPROTO_UDP, A6, B6)
        .ext(HOP, opts_hdr(0))
        .build(&[]);
    pkt[40] = HOP; // The hop-by-hop header names itself as next.
    pkt.extend_from_slice(&[0; 4096]); // Hop-by-hop headers for the rest of the packet.
    let payload_len = u16::try_from(pkt.len() - 40).unwrap();
    pkt[4..6].copy_from_slice(&payload_len.to_be_bytes());
    assert_eq!(p6(&pkt), Err(ParseError::Truncated));
    // The same on a huge (virtual) packet of zeros: version 0 is refused as an outer header,
    // and as a quoted header it walks hop-by-hop headers to the end.
    assert_eq!(parse_ipv6(&Zeros(1 << 20), 0), Err(ParseError::Malformed));
    assert_eq!(
        inner_tuple(&Zeros(1 << 20), L3::Ipv6, 0),
        Err(ParseError::Truncated)
    );
}

#[test]
fn ipv6_truncated_extension_header() {
    // The hop-by-hop header claims 2048 bytes and the packet ends after 8.
    let mut ip = Ipv6::new(IPPROTO_UDP, A6, B6).ext(HOP, opts_hdr(0));
    ip.exts[0].1[1] = 255;
    let pkt = ip.build(&udp(1, 2, &[]));
    assert_eq!(p6(&pkt), Err(ParseError::Truncated));
    // A too-short last extension header followed by a protocol without tuple fields: the
    // kernel does not notice either and tracks it, its dataoff past the end.
    let mut ip = Ipv6::new(ESP, A6, B6).ext(DEST, opts_hdr(0));
    ip.exts[0].1[1] = 255;
    let pkt = ip.build(&[]);
    let p = p6(&pkt).unwrap();
    assert_eq!((p.tuple.proto, p.dataoff), (ESP, 40 + 2048));
    assert!(p.dataoff > pkt.len());
}

#[test]
fn offsets_never_overflow() {
    let huge = Zeros(usize::MAX);
    for nhoff in [usize::MAX, usize::MAX - 1, usize::MAX - 19, usize::MAX - 40] {
        assert!(parse_ipv4(&huge, nhoff).is_err());
        assert!(parse_ipv6(&huge, nhoff).is_err());
        // Quoted headers are not checked like outer ones (all-zero IHL 0 is accepted, as
        // in the kernel); what matters is that nothing overflows.
        let _ = inner_tuple(&huge, L3::Ipv4, nhoff);
        assert!(inner_tuple(&huge, L3::Ipv6, nhoff).is_err());
    }
    let pkt = udp4();
    assert_eq!(parse_ipv4(&pkt[..], usize::MAX), Err(ParseError::Truncated));
    assert_eq!(
        parse_ipv6(&pkt[..], usize::MAX - 3),
        Err(ParseError::Truncated)
    );
}

// ---------------------------------------------------------------------------------------------
// ICMP errors

/// An ICMP error from B to A quoting A's packet `quoted`.
fn icmp4_error(ty: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
    Ipv4::new(IPPROTO_ICMP, B4, A4).build(&icmp(ty, code, [0; 4], quoted))
}

fn icmp6_error(ty: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
    Ipv6::new(IPPROTO_ICMPV6, B6, A6).build(&icmp(ty, code, [0; 4], quoted))
}

fn verdict4(pkt: &[u8]) -> IcmpVerdict {
    icmp_verdict(pkt, 0, &p4(pkt).unwrap())
}

fn verdict6(pkt: &[u8]) -> IcmpVerdict {
    icmp_verdict(pkt, 0, &p6(pkt).unwrap())
}

#[test]
fn icmp_port_unreachable_is_related() {
    let quoted = udp4();
    let pkt = icmp4_error(3, 3, &quoted);
    let p = p4(&pkt).unwrap();
    assert_eq!(
        p.tuple,
        Tuple {
            src: Addr::v4(B4),
            dst: Addr::v4(A4),
            ..v4(IPPROTO_ICMP, icmp_l4(3, 3, 0))
        }
    );
    // The quoted packet's own tuple is the connection's original tuple ...
    let inner = inner_tuple(&pkt[..], L3::Ipv4, 28).unwrap();
    assert_eq!(inner, v4(IPPROTO_UDP, ports(40000, 53)));
    // ... and the lookup key its inverse, the reply tuple, whose destination is the outer one.
    let key = inner.invert().unwrap();
    assert_eq!(verdict4(&pkt), IcmpVerdict::Related(key));
    assert_eq!(key.dst, p.tuple.dst);
}

#[test]
fn icmp_error_types() {
    let quoted = udp4();
    for ty in 0..=255u8 {
        let pkt = icmp4_error(ty, 0, &quoted);
        let want = match ty {
            3 | 4 | 5 | 11 | 12 => {
                IcmpVerdict::Related(v4(IPPROTO_UDP, ports(40000, 53)).invert().unwrap())
            }
            0..=18 => IcmpVerdict::Track,
            _ => IcmpVerdict::Invalid,
        };
        assert_eq!(verdict4(&pkt), want, "type {ty}");
        assert_eq!(icmp_is_error(ty), matches!(ty, 3 | 4 | 5 | 11 | 12));
    }
}

#[test]
fn icmp_error_with_truncated_quote() {
    let quoted = Ipv4::new(IPPROTO_TCP, A4, B4).build(&Tcp::new(5000, 80, SYN).build(&[0; 20]));
    for n in 0..=quoted.len() {
        let v = verdict4(&icmp4_error(11, 0, &quoted[..n]));
        if n < 24 {
            assert_eq!(v, IcmpVerdict::Invalid, "{n} bytes quoted");
        } else {
            assert_eq!(
                v,
                IcmpVerdict::Related(v4(IPPROTO_TCP, ports(5000, 80)).invert().unwrap()),
                "{n}"
            );
        }
    }
}

#[test]
fn icmp_error_quoting_icmp() {
    // Time exceeded for a ping: related to the echo connection, looked up as the echo reply.
    let ping = Ipv4::new(IPPROTO_ICMP, A4, B4).build(&echo(8, 0x77, 3, &[0; 8]));
    let v = verdict4(&icmp4_error(11, 0, &ping));
    assert_eq!(
        v,
        IcmpVerdict::Related(Tuple {
            src: Addr::v4(B4),
            dst: Addr::v4(A4),
            ..v4(IPPROTO_ICMP, icmp_l4(0, 0, 0x77))
        })
    );
    // An ICMP header cut short in the quote.
    assert_eq!(
        verdict4(&icmp4_error(11, 0, &ping[..27])),
        IcmpVerdict::Invalid
    );
    // An error about an error cannot be inverted.
    let err = icmp4_error(3, 1, &udp4());
    assert_eq!(verdict4(&icmp4_error(3, 3, &err)), IcmpVerdict::Invalid);
}

#[test]
fn icmp_error_quote_rules() {
    // Quoted headers are taken as the kernel takes them: the total length may exceed what
    // was quoted, and the quoted IP header's options move the transport header.
    let mut ip = Ipv4::new(IPPROTO_UDP, A4, B4);
    ip.options = vec![1; 8];
    ip.tot_len = Some(1500);
    let quoted = ip.build(&udp(1234, 5678, &[]));
    let want = IcmpVerdict::Related(v4(IPPROTO_UDP, ports(1234, 5678)).invert().unwrap());
    assert_eq!(verdict4(&icmp4_error(3, 4, &quoted[..32])), want);
    // A quoted non-first fragment is no use.
    let mut ip = Ipv4::new(IPPROTO_UDP, A4, B4);
    ip.frag_off = 100;
    assert_eq!(
        verdict4(&icmp4_error(3, 4, &ip.build(&udp(1, 2, &[])))),
        IcmpVerdict::Invalid
    );
    // A quoted generic protocol needs no transport bytes.
    let esp = Ipv4::new(ESP, A4, B4).build(&[]);
    assert_eq!(
        verdict4(&icmp4_error(3, 3, &esp)),
        IcmpVerdict::Related(v4(ESP, L4::Generic).invert().unwrap())
    );
}

#[test]
fn icmp_verdict_other_packets() {
    assert_eq!(verdict4(&udp4()), IcmpVerdict::Track);
    assert_eq!(verdict6(&udp6()), IcmpVerdict::Track);
    let ping = Ipv4::new(IPPROTO_ICMP, A4, B4).build(&echo(8, 1, 1, &[]));
    assert_eq!(verdict4(&ping), IcmpVerdict::Track);
    // ICMP in IPv6 and ICMPv6 in IPv4 skip the error handlers.
    let pkt = Ipv6::new(IPPROTO_ICMP, A6, B6).build(&icmp(3, 3, [0; 4], &udp6()));
    assert_eq!(verdict6(&pkt), IcmpVerdict::Track);
    let pkt = Ipv4::new(IPPROTO_ICMPV6, A4, B4).build(&icmp(1, 4, [0; 4], &udp4()));
    assert_eq!(verdict4(&pkt), IcmpVerdict::Track);
}

#[test]
fn icmpv6_error_is_related() {
    let quoted = Ipv6::new(IPPROTO_UDP, A6, B6)
        .ext(HOP, opts_hdr(0))
        .build(&udp(40000, 53, b"q"));
    let key = v6(IPPROTO_UDP, ports(40000, 53)).invert().unwrap();
    for ty in 0..=255u8 {
        let pkt = icmp6_error(ty, 0, &quoted);
        let want = match ty {
            0..=127 => IcmpVerdict::Related(key),
            130..=136 | 143 | 151 | 152 => IcmpVerdict::Untracked,
            // A redirect, but not from a router on the link (hop limit 64).
            137 => IcmpVerdict::Invalid,
            _ => IcmpVerdict::Track,
        };
        assert_eq!(verdict6(&pkt), want, "type {ty}");
    }
    assert_eq!(
        inner_tuple(&icmp6_error(1, 4, &quoted)[..], L3::Ipv6, 48),
        Ok(v6(IPPROTO_UDP, ports(40000, 53)))
    );
}

#[test]
fn icmpv6_error_with_truncated_quote() {
    let quoted = Ipv6::new(IPPROTO_TCP, A6, B6).build(&Tcp::new(5000, 80, SYN).build(&[]));
    for n in 0..=quoted.len() {
        let v = verdict6(&icmp6_error(2, 0, &quoted[..n]));
        if n < 44 {
            assert_eq!(v, IcmpVerdict::Invalid, "{n} bytes quoted");
        } else {
            assert_eq!(
                v,
                IcmpVerdict::Related(v6(IPPROTO_TCP, ports(5000, 80)).invert().unwrap()),
                "{n}"
            );
        }
    }
    // The echo request quoted in a "packet too big".
    let ping = Ipv6::new(IPPROTO_ICMPV6, A6, B6).build(&echo(128, 5, 1, &[]));
    assert_eq!(
        verdict6(&icmp6_error(2, 0, &ping)),
        IcmpVerdict::Related(v6(IPPROTO_ICMPV6, icmp_l4(128, 0, 5)).invert().unwrap())
    );
    let frag = Ipv6::new(IPPROTO_UDP, A6, B6)
        .ext(FRAGMENT, frag_hdr(3, true, 1))
        .build(&[0; 8]);
    assert_eq!(verdict6(&icmp6_error(3, 1, &frag)), IcmpVerdict::Invalid);
}

/// An ICMPv6 redirect from router `src` with `hop_limit`, code, and options `opts`.
fn redirect(src: [u8; 16], hop_limit: u8, code: u8, opts: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&LL6); // target
    body.extend_from_slice(&B6); // destination
    body.extend_from_slice(opts);
    let mut ip = Ipv6::new(IPPROTO_ICMPV6, src, A6);
    ip.hop_limit = hop_limit;
    ip.build(&icmp(137, code, [0; 4], &body))
}

/// A Redirected Header option quoting `quoted`, padded to 8 bytes.
fn rd_header_opt(quoted: &[u8]) -> Vec<u8> {
    let mut o = vec![4, 0, 0, 0, 0, 0, 0, 0];
    o.extend_from_slice(quoted);
    while !o.len().is_multiple_of(8) {
        o.push(0);
    }
    o[1] = (o.len() / 8) as u8;
    o
}

#[test]
fn icmpv6_redirect() {
    let quoted = Ipv6::new(IPPROTO_UDP, A6, B6).build(&udp(40000, 53, b"q"));
    let key = v6(IPPROTO_UDP, ports(40000, 53)).invert().unwrap();
    let opt = rd_header_opt(&quoted);
    assert_eq!(
        verdict6(&redirect(LL6, 255, 0, &opt)),
        IcmpVerdict::Related(key)
    );
    // Link-scope multicast counts as link-local for ipv6_addr_type.
    let mut mc = [0u8; 16];
    mc[0] = 0xff;
    mc[1] = 0x02;
    mc[15] = 1;
    assert_eq!(
        verdict6(&redirect(mc, 255, 0, &opt)),
        IcmpVerdict::Related(key)
    );
    // Only a router on the link may redirect.
    assert_eq!(verdict6(&redirect(LL6, 254, 0, &opt)), IcmpVerdict::Invalid);
    assert_eq!(verdict6(&redirect(B6, 255, 0, &opt)), IcmpVerdict::Invalid);
    mc[1] = 0x05;
    assert_eq!(verdict6(&redirect(mc, 255, 0, &opt)), IcmpVerdict::Invalid);
    // Other codes are tracked like any informational message (and fail to invert later).
    assert_eq!(verdict6(&redirect(B6, 64, 1, &opt)), IcmpVerdict::Track);
    // Options: none, zero length, other first option.
    assert_eq!(verdict6(&redirect(LL6, 255, 0, &[])), IcmpVerdict::Invalid);
    assert_eq!(verdict6(&redirect(LL6, 255, 0, &[4])), IcmpVerdict::Invalid);
    assert_eq!(
        verdict6(&redirect(LL6, 255, 0, &[4, 0, 0, 0, 0, 0, 0, 0])),
        IcmpVerdict::Invalid
    );
    let lladdr = [2, 1, 0x52, 0x54, 0, 0x12, 0x34, 0x56];
    assert_eq!(
        verdict6(&redirect(LL6, 255, 0, &[&lladdr[..], &opt].concat())),
        IcmpVerdict::Track
    );
    // Quote cut short.
    assert_eq!(
        verdict6(&redirect(LL6, 255, 0, &opt[..8 + 43])),
        IcmpVerdict::Invalid
    );
    assert_eq!(
        verdict6(&redirect(LL6, 255, 0, &opt[..8 + 44])),
        IcmpVerdict::Related(key)
    );
    // Shorter than the fixed part of the message.
    let mut ip = Ipv6::new(IPPROTO_ICMPV6, LL6, A6);
    ip.hop_limit = 255;
    let pkt = ip.build(&icmp(137, 0, [0; 4], &LL6));
    assert_eq!(verdict6(&pkt), IcmpVerdict::Invalid);
}

#[test]
fn icmp_type_predicates() {
    for ty in 0..=255u8 {
        assert_eq!(
            icmp_valid_new(ty),
            matches!(ty, 8 | 13 | 15 | 17),
            "type {ty}"
        );
        assert_eq!(icmpv6_valid_new(ty), matches!(ty, 128 | 139), "type {ty}");
        assert_eq!(icmpv6_is_error(ty), ty < 128, "type {ty}");
        assert_eq!(
            icmpv6_untracked(ty),
            matches!(ty, 130..=136 | 143 | 151 | 152),
            "type {ty}"
        );
        // A type that may start a connection can always be inverted.
        if icmp_valid_new(ty) {
            assert!(v4(IPPROTO_ICMP, icmp_l4(ty, 0, 0)).invert().is_some());
        }
        if icmpv6_valid_new(ty) {
            assert!(v6(IPPROTO_ICMPV6, icmp_l4(ty, 0, 0)).invert().is_some());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// /proc text

#[test]
fn proc_text_ipv4() {
    let t = v4(IPPROTO_UDP, ports(40000, 53));
    assert_eq!(
        text(&t),
        "src=192.168.1.10 dst=10.0.0.1 sport=40000 dport=53 "
    );
    assert_eq!(
        text(&t.invert().unwrap()),
        "src=10.0.0.1 dst=192.168.1.10 sport=53 dport=40000 "
    );
    let t = Tuple {
        src: Addr::v4([0, 0, 0, 0]),
        dst: Addr::v4([255, 255, 255, 255]),
        ..v4(IPPROTO_TCP, ports(0, 65535))
    };
    assert_eq!(
        text(&t),
        "src=0.0.0.0 dst=255.255.255.255 sport=0 dport=65535 "
    );
    let t = v4(IPPROTO_ICMP, icmp_l4(8, 0, 0x1234));
    assert_eq!(
        text(&t),
        "src=192.168.1.10 dst=10.0.0.1 type=8 code=0 id=4660 "
    );
    assert_eq!(
        text(&t.invert().unwrap()),
        "src=10.0.0.1 dst=192.168.1.10 type=0 code=0 id=4660 "
    );
    let t = v4(
        IPPROTO_GRE,
        L4::Gre {
            src_key: 0,
            dst_key: 0x1a2b,
        },
    );
    assert_eq!(
        text(&t),
        "src=192.168.1.10 dst=10.0.0.1 srckey=0x0 dstkey=0x1a2b "
    );
    assert_eq!(
        text(&v4(ESP, L4::Generic)),
        "src=192.168.1.10 dst=10.0.0.1 "
    );
}

#[test]
fn proc_text_ipv6_is_uncompressed() {
    // print_tuple uses %pI6: eight groups of four lowercase hex digits, no "::".
    let t = v6(IPPROTO_TCP, ports(33000, 80));
    assert_eq!(
        text(&t),
        "src=2001:0db8:0000:0000:0000:0000:0000:0001 dst=2001:0db8:0000:0001:0000:0000:00ab:cdef sport=33000 dport=80 "
    );
    let t = Tuple {
        src: Addr([0; 16]),
        dst: Addr([0xff; 16]),
        ..v6(IPPROTO_ICMPV6, icmp_l4(128, 0, 65535))
    };
    assert_eq!(
        text(&t),
        "src=0000:0000:0000:0000:0000:0000:0000:0000 dst=ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff type=128 code=0 id=65535 "
    );
}

#[test]
fn proc_text_of_parsed_packets() {
    let pkt = Ipv4::new(IPPROTO_SCTP, A4, B4).build(&sctp(5060, 5061, 1, &[]));
    assert_eq!(
        text(&p4(&pkt).unwrap().tuple),
        "src=192.168.1.10 dst=10.0.0.1 sport=5060 dport=5061 "
    );
    let pkt = Ipv6::new(IPPROTO_UDPLITE, LL6, B6).build(&udp(1, 2, &[]));
    assert_eq!(
        text(&p6(&pkt).unwrap().tuple),
        "src=fe80:0000:0000:0000:0000:0000:0000:0001 dst=2001:0db8:0000:0001:0000:0000:00ab:cdef sport=1 dport=2 "
    );
}

#[test]
fn protocol_names() {
    assert_eq!(l3_name(NFPROTO_IPV4), "ipv4");
    assert_eq!(l3_name(NFPROTO_IPV6), "ipv6");
    assert_eq!(l3_name(0), "unknown");
    assert_eq!(l3_name(7), "unknown");
    let names = [
        (IPPROTO_ICMP, "icmp"),
        (IPPROTO_TCP, "tcp"),
        (IPPROTO_UDP, "udp"),
        (IPPROTO_DCCP, "dccp"),
        (IPPROTO_GRE, "gre"),
        (IPPROTO_SCTP, "sctp"),
        (IPPROTO_UDPLITE, "udplite"),
        (IPPROTO_ICMPV6, "icmpv6"),
    ];
    for proto in 0..=255u8 {
        let want = names
            .iter()
            .find(|n| n.0 == proto)
            .map_or("unknown", |n| n.1);
        assert_eq!(l4_name(proto), want, "proto {proto}");
    }
}

mod key {
    use crate::proto::tuple::*;

    fn tuples() -> Vec<Tuple> {
        let v4 = |a: [u8; 4]| Addr::v4(a);
        let mut v6a = [0u8; 16];
        v6a[0] = 0xfd;
        v6a[15] = 1;
        vec![
            Tuple {
                l3: L3::Ipv4,
                proto: IPPROTO_UDP,
                src: v4([10, 0, 0, 1]),
                dst: v4([10, 0, 0, 2]),
                l4: L4::Ports { src: 1234, dst: 53 },
            },
            Tuple {
                l3: L3::Ipv6,
                proto: IPPROTO_ICMPV6,
                src: Addr(v6a),
                dst: Addr([0xff; 16]),
                l4: L4::Icmp {
                    ty: 128,
                    code: 0,
                    id: 0xbeef,
                },
            },
            Tuple {
                l3: L3::Ipv4,
                proto: IPPROTO_GRE,
                src: v4([1, 2, 3, 4]),
                dst: v4([5, 6, 7, 8]),
                l4: L4::Gre {
                    src_key: 0,
                    dst_key: 77,
                },
            },
            Tuple {
                l3: L3::Ipv6,
                proto: 253,
                src: Addr(v6a),
                dst: Addr(v6a),
                l4: L4::Generic,
            },
        ]
    }

    #[test]
    fn key_round_trips() {
        for t in tuples() {
            assert_eq!(Tuple::from_key(&t.key()), Some(t));
            assert_eq!(
                t.key()[KEY_LEN - 1],
                0,
                "the last byte is left to the table"
            );
        }
    }

    #[test]
    fn key_layout_is_the_documented_one() {
        // Built from words, so the byte positions are checked on their own.
        let t = Tuple {
            l3: L3::Ipv4,
            proto: 17,
            src: Addr::v4([10, 0, 0, 1]),
            dst: Addr::v4([192, 168, 1, 2]),
            l4: L4::Ports {
                src: 0x1234,
                dst: 53,
            },
        };
        let mut want = [0u8; KEY_LEN];
        want[..4].copy_from_slice(&[10, 0, 0, 1]);
        want[16..20].copy_from_slice(&[192, 168, 1, 2]);
        want[32..].copy_from_slice(&[0x12, 0x34, 0, 53, 17, 2, 1, 0]);
        assert_eq!(t.key(), want);
        let icmp = Tuple {
            l3: L3::Ipv6,
            proto: 58,
            src: Addr([0xfe; 16]),
            dst: Addr([1; 16]),
            l4: L4::Icmp {
                ty: 128,
                code: 3,
                id: 0xabcd,
            },
        };
        let k = icmp.key();
        assert_eq!(k[..16], [0xfe; 16]);
        assert_eq!(k[16..32], [1; 16]);
        assert_eq!(k[32..], [0xab, 0xcd, 128, 3, 58, 10, 2, 0]);
    }

    #[test]
    fn keys_are_equal_exactly_when_tuples_are() {
        let ts = tuples();
        for a in &ts {
            for b in &ts {
                assert_eq!(a == b, a.key() == b.key());
            }
            // Any single field change changes the key.
            let mut c = *a;
            c.proto = c.proto.wrapping_add(1);
            assert_ne!(a.key(), c.key());
            if let Some(inv) = a.invert() {
                if inv != *a {
                    assert_ne!(a.key(), inv.key());
                }
            }
        }
    }

    #[test]
    fn every_key_decodes_or_is_refused_without_panic() {
        let mut k = tuples()[0].key();
        for kind in 0..=255u8 {
            k[38] = kind;
            for l3 in [0u8, 2, 10, 255] {
                k[37] = l3;
                let t = Tuple::from_key(&k);
                assert_eq!(t.is_some(), kind <= 3 && (l3 == 2 || l3 == 10));
                // Decoding may drop bytes a kind does not use; what it returns round-trips.
                if let Some(t) = t {
                    assert_eq!(Tuple::from_key(&t.key()), Some(t));
                }
            }
        }
    }
}
