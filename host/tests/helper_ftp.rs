// SPDX-License-Identifier: GPL-2.0

//! Tests of the FTP helper (`src/proto/helper_ftp.rs`) against Linux 6.12's
//! `nf_conntrack_ftp.c`: every command and reply form, the parsers' quirks, the address
//! check with and without `loose`, and the record of line starts. The `in6_pton` and
//! `in4_pton` vectors, and the quirky cases marked so, were checked against the C code
//! compiled in userspace.

use crate::pkt::{A4, A6, B4, B6};
use crate::proto::helper_ftp::*;
use crate::proto::tuple::{Addr, Dir, Tuple, IPPROTO_TCP, L3, L4};
use std::net::Ipv6Addr;

const CPORT: u16 = 40000;
/// The server as the client sees it through NAT in [`nat_tuples`].
const NAT4: [u8; 4] = [203, 0, 113, 5];
/// A third host.
const C4: [u8; 4] = [10, 9, 9, 9];
/// The first sequence number used, a recorded line start in both directions.
const SEQ: u32 = 1000;

fn tcp(l3: L3, src: Addr, dst: Addr, sport: u16, dport: u16) -> Tuple {
    Tuple {
        l3,
        proto: IPPROTO_TCP,
        src,
        dst,
        l4: L4::Ports {
            src: sport,
            dst: dport,
        },
    }
}

/// A control connection from A4 to B4:21, no NAT: (original, reply).
fn tuples4() -> (Tuple, Tuple) {
    let o = tcp(L3::Ipv4, Addr::v4(A4), Addr::v4(B4), CPORT, FTP_PORT);
    (o, o.invert().unwrap())
}

/// A control connection from A6 to B6 port 21.
fn tuples6() -> (Tuple, Tuple) {
    let o = tcp(L3::Ipv6, Addr(A6), Addr(B6), CPORT, FTP_PORT);
    (o, o.invert().unwrap())
}

/// A4 to B4:21, source NATed: the server answers NAT4:61000.
fn nat_tuples() -> (Tuple, Tuple) {
    let o = tcp(L3::Ipv4, Addr::v4(A4), Addr::v4(B4), CPORT, FTP_PORT);
    let r = tcp(L3::Ipv4, Addr::v4(B4), Addr::v4(NAT4), FTP_PORT, 61000);
    (o, r)
}

/// A state where [`SEQ`] starts a line in both directions.
fn primed() -> FtpState {
    let mut st = FtpState::default();
    st.update_nl_seq(SEQ, Dir::Original);
    st.update_nl_seq(SEQ, Dir::Reply);
    st
}

/// `help` on `payload` at [`SEQ`] of a primed IPv4 connection.
fn run4(dir: Dir, payload: &[u8], loose: bool) -> (FtpOutcome, FtpState) {
    let (o, r) = tuples4();
    let mut st = primed();
    let out = help(&mut st, dir, SEQ, payload, &o, &r, loose);
    (out, st)
}

/// The match `out` must be.
fn matched(out: FtpOutcome) -> FtpMatch {
    match out {
        FtpOutcome::Match(m) => m,
        other => panic!("expected a match, got {other:?}"),
    }
}

/// The expectation of a match.
fn expected(out: FtpOutcome) -> FtpExpect {
    matched(out).expect.expect("an expectation")
}

fn exp4(src: [u8; 4], dst: [u8; 4], port: u16) -> FtpExpect {
    FtpExpect {
        l3: L3::Ipv4,
        src: Addr::v4(src),
        dst: Addr::v4(dst),
        port,
    }
}

const DROP_PORT: FtpOutcome = FtpOutcome::Drop("partial matching of `PORT'");
const DROP_EPRT: FtpOutcome = FtpOutcome::Drop("partial matching of `EPRT'");
const DROP_227: FtpOutcome = FtpOutcome::Drop("partial matching of `227 '");
const DROP_229: FtpOutcome = FtpOutcome::Drop("partial matching of `229 '");

// PORT

#[test]
fn port_expects_the_client_address_from_the_server() {
    let p = b"PORT 192,168,1,10,4,1\r\n";
    let (out, st) = run4(Dir::Original, p, false);
    let m = matched(out);
    assert_eq!(m.ftptype, FtpType::Port);
    assert_eq!((m.matchoff, m.matchlen), (5, 16));
    // From the reply tuple: the server to the client.
    assert_eq!(m.expect, Some(exp4(B4, A4, 1025)));
    assert_eq!(m.nl_seq, Some(SEQ + p.len() as u32));
    assert_eq!(st, primed(), "the state waits for commit");
    assert_eq!(
        m.expect.unwrap().tuple(),
        tcp(L3::Ipv4, Addr::v4(B4), Addr::v4(A4), 0, 1025)
    );
    assert_eq!(FtpType::Port as u8, 0);
    assert_eq!(FtpType::Pasv as u8, 1);
    assert_eq!(FtpType::Eprt as u8, 2);
    assert_eq!(FtpType::Epsv as u8, 3);
}

#[test]
fn commands_are_case_insensitive_and_may_run_on_before_the_space() {
    for p in [
        &b"port 192,168,1,10,4,1\r\n"[..],
        b"PoRt 192,168,1,10,4,1\r\n",
        // Anything between the pattern and the first space is skipped.
        b"PORTX 192,168,1,10,4,1\r\n",
        b"portable 192,168,1,10,4,1\r\n",
    ] {
        let (out, _) = run4(Dir::Original, p, false);
        assert_eq!(expected(out), exp4(B4, A4, 1025), "{p:?}");
    }
    let (out, _) = run4(Dir::Original, b"ePrT |1|192.168.1.10|1025|\r\n", false);
    assert_eq!(expected(out), exp4(B4, A4, 1025));
    let (out, _) = run4(
        Dir::Reply,
        b"227 entering passive mode 10,0,0,1,4,2\r\n",
        false,
    );
    assert_eq!(expected(out), exp4(A4, B4, 1026));
}

#[test]
fn port_must_end_in_cr() {
    for p in [
        &b"PORT 192,168,1,10,4,1\n"[..],
        b"PORT 192,168,1,10,4,1 \r\n",
        b"PORT 192,168,1,10,4,1",
        b"PORT 192,168,1,10,4,1,7\r\n",
        b"PORT 192,168,1,10,4\r\n",
        b"PORT 192.168.1.10,4,1\r\n",
        b"PORT  192,168,1,10,4,1\r\n",
        b"PORT 0x1,168,1,10,4,1\r\n",
    ] {
        let (out, st) = run4(Dir::Original, p, false);
        assert_eq!(out, DROP_PORT, "{p:?}");
        assert_eq!(st, primed(), "a dropped packet leaves the state: {p:?}");
    }
}

#[test]
fn truncated_commands_are_dropped() {
    // Shorter than or as long as the pattern, and a prefix of it: partial.
    for p in [&b"P"[..], b"Po", b"POR", b"PORT", b"port"] {
        assert_eq!(run4(Dir::Original, p, false).0, DROP_PORT, "{p:?}");
    }
    for p in [&b"E"[..], b"EP", b"EPR", b"EPRT"] {
        assert_eq!(run4(Dir::Original, p, false).0, DROP_EPRT, "{p:?}");
    }
    // No space after the pattern, or nothing after it.
    for p in [&b"PORT\r\n"[..], b"PORT ", b"PORT 192,168,1"] {
        assert_eq!(run4(Dir::Original, p, false).0, DROP_PORT, "{p:?}");
    }
    // Not a prefix: not this pattern.
    let (out, st) = run4(Dir::Original, b"PX", false);
    assert_eq!(out, FtpOutcome::Accept);
    assert_eq!(st, primed());
    let (out, _) = run4(Dir::Original, b"USER anonymous\r\n", false);
    assert_eq!(out, FtpOutcome::Accept);
}

#[test]
fn port_numbers_are_not_range_checked() {
    // Shifted and ORed: 266 spills its 1 into the third byte (verified against the C).
    let (out, _) = run4(Dir::Original, b"PORT 192,168,0,266,4,1\r\n", false);
    assert_eq!(expected(out), exp4(B4, A4, 1025));
    // The port is (p1 << 8 | p2) truncated: 256,1 is port 1.
    let (out, _) = run4(Dir::Original, b"PORT 192,168,1,10,256,1\r\n", false);
    assert_eq!(expected(out), exp4(B4, A4, 1));
    // Numbers wrap at 2^32; port 0 is accepted.
    let (out, _) = run4(Dir::Original, b"PORT 4294967488,168,1,10,0,0\r\n", false);
    assert_eq!(expected(out), exp4(B4, A4, 0));
    // Empty numbers are 0: this names 0.0.0.0, not the client.
    let (out, _) = run4(Dir::Original, b"PORT ,,,,4,1\r\n", false);
    assert_eq!(matched(out).expect, None);
    let (out, _) = run4(Dir::Original, b"PORT ,,,,4,1\r\n", true);
    assert_eq!(expected(out), exp4(B4, [0; 4], 1025));
}

// EPRT

#[test]
fn eprt_ipv4_any_delimiter() {
    for (p, off, len) in [
        (&b"EPRT |1|192.168.1.10|1025|\r\n"[..], 5, 21),
        (b"EPRT !1!192.168.1.10!1025!\r\n", 5, 21),
        (b"EPRT ~1~192.168.1.10~1025~", 5, 21),
        // What follows the last delimiter is not looked at.
        (b"EPRT |1|192.168.1.10|1025|junk", 5, 21),
        (b"EPRTX |1|192.168.1.10|1025|\r\n", 6, 21),
    ] {
        let m = matched(run4(Dir::Original, p, false).0);
        assert_eq!(m.ftptype, FtpType::Eprt);
        assert_eq!((m.matchoff, m.matchlen), (off, len), "{p:?}");
        assert_eq!(m.expect, Some(exp4(B4, A4, 1025)), "{p:?}");
    }
}

#[test]
fn eprt_ports_and_numbers() {
    let port = |p: &[u8]| match run4(Dir::Original, p, true).0 {
        FtpOutcome::Match(m) => Some(m.expect.unwrap().port),
        FtpOutcome::Drop(msg) => {
            assert_eq!(msg, "partial matching of `EPRT'");
            None
        }
        FtpOutcome::Accept => panic!("{p:?} not seen"),
    };
    assert_eq!(port(b"EPRT |1|192.168.1.10|65535|\r\n"), Some(65535));
    // The port wraps at 2^16 and 0 fails, so 65536 fails and 70000 is 4464.
    assert_eq!(port(b"EPRT |1|192.168.1.10|65536|\r\n"), None);
    assert_eq!(port(b"EPRT |1|192.168.1.10|65537|\r\n"), Some(1));
    assert_eq!(port(b"EPRT |1|192.168.1.10|70000|\r\n"), Some(4464));
    assert_eq!(port(b"EPRT |1|192.168.1.10|0|\r\n"), None);
    assert_eq!(port(b"EPRT |1|192.168.1.10||\r\n"), None);
    assert_eq!(port(b"EPRT |1|192.168.1.10|1025\r\n"), None);
    assert_eq!(port(b"EPRT |1|192.168.1.10|10x25|\r\n"), None);
    // The address is read by try_number: out-of-range and empty numbers as for PORT.
    let (out, _) = run4(Dir::Original, b"EPRT |1|192.168.0.266|70000|\r\n", false);
    assert_eq!(expected(out), exp4(B4, A4, 4464));
    let (out, _) = run4(Dir::Original, b"EPRT |1|...|21|\r\n", true);
    assert_eq!(expected(out), exp4(B4, [0; 4], 21));
}

#[test]
fn eprt_malformed() {
    for p in [
        // A digit, a space, a control or a non-ASCII byte cannot delimit.
        &b"EPRT 111192.168.1.101102511\r\n"[..],
        b"EPRT \x7f1\x7f192.168.1.10\x7f1025\x7f\r\n",
        b"EPRT \x801\x80192.168.1.10\x801025\x80\r\n",
        b"EPRT |1!192.168.1.10|1025|\r\n",
        // The family must be the connection's.
        b"EPRT |2|192.168.1.10|1025|\r\n",
        b"EPRT |3|192.168.1.10|1025|\r\n",
        b"EPRT |1|192.168.1|1025|\r\n",
        b"EPRT |1|192.168.1.10.5|1025|\r\n",
        b"EPRT |1|",
        b"EPRT |1",
        b"EPRT",
    ] {
        assert_eq!(run4(Dir::Original, p, false).0, DROP_EPRT, "{p:?}");
    }
    let (o, r) = tuples6();
    let mut st = primed();
    let out = help(
        &mut st,
        Dir::Original,
        SEQ,
        b"EPRT |1|192.168.1.10|1025|\r\n",
        &o,
        &r,
        true,
    );
    assert_eq!(out, DROP_EPRT);
}

/// `help` on `payload` at [`SEQ`] of a primed IPv6 connection.
fn run6(dir: Dir, payload: &[u8], loose: bool) -> FtpOutcome {
    let (o, r) = tuples6();
    help(&mut primed(), dir, SEQ, payload, &o, &r, loose)
}

fn exp6(src: [u8; 16], dst: [u8; 16], port: u16) -> FtpExpect {
    FtpExpect {
        l3: L3::Ipv6,
        src: Addr(src),
        dst: Addr(dst),
        port,
    }
}

#[test]
fn eprt_ipv6_forms() {
    for p in [
        &b"EPRT |2|2001:db8::1|1025|\r\n"[..],
        b"EPRT |2|2001:DB8:0:0:0:0:0:1|1025|\r\n",
        b"EPRT |2|2001:0db8:0000:0000:0000:0000:0000:0001|1025|\r\n",
        b"EPRT |2|2001:db8:0::0:1|1025|\r\n",
        // Any number of leading zeros in a group.
        b"EPRT |2|2001:00000db8::1|1025|\r\n",
        b"EPRT |2|2001:db8::0.0.0.1|1025|\r\n",
        b"EPRT #2#2001:db8::1#1025#\r\n",
    ] {
        assert_eq!(
            expected(run6(Dir::Original, p, false)),
            exp6(B6, A6, 1025),
            "{p:?}"
        );
    }
    // v4-mapped: another address than the client's, so only with loose.
    let p = b"EPRT |2|::ffff:192.0.2.1|1025|\r\n";
    assert_eq!(matched(run6(Dir::Original, p, false)).expect, None);
    let mapped = Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201).octets();
    assert_eq!(
        expected(run6(Dir::Original, p, true)),
        exp6(B6, mapped, 1025)
    );
    for p in [
        &b"EPRT |2|2001:db8:::1|1025|\r\n"[..],
        b"EPRT |2|2001:db8::1::2|1025|\r\n",
        b"EPRT |2|1:2:3:4:5:6:7:8:9|1025|\r\n",
        b"EPRT |2|1:2:3:4:5:6:7|1025|\r\n",
        b"EPRT |2|12345::|1025|\r\n",
        b"EPRT |2|fe80::1%eth0|1025|\r\n",
        b"EPRT |2|::256.1.1.1|1025|\r\n",
        b"EPRT |2||1025|\r\n",
        b"EPRT |2|2001:db8::1|0|\r\n",
    ] {
        assert_eq!(run6(Dir::Original, p, true), DROP_EPRT, "{p:?}");
    }
}

#[test]
fn eprt_ipv6_address_end_quirks() {
    // Whatever ends the address is taken for the delimiter (verified against the C): a
    // colon after a dotted quad, or a NUL.
    let m = matched(run6(Dir::Original, b"EPRT |2|::1.2.3.4:1025|\r\n", true));
    let v4c = Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0x0102, 0x0304).octets();
    assert_eq!(m.expect, Some(exp6(B6, v4c, 1025)));
    assert_eq!(m.matchlen, 18);
    let m = matched(run6(Dir::Original, b"EPRT |2|::1\x001025|", true));
    assert_eq!(m.expect, Some(exp6(B6, Ipv6Addr::LOCALHOST.octets(), 1025)));
    assert_eq!(m.matchlen, 12);
}

/// An address parser's input and its result: where it stopped and the address.
type Pton<const N: usize> = (&'static [u8], Option<(usize, [u8; N])>);

#[test]
fn in6_pton_as_6_12() {
    // (input, Some((end, address))), checked against the C.
    let v = |s: &str| s.parse::<Ipv6Addr>().unwrap().octets();
    let cases: &[Pton<16>] = &[
        (b"::1|", Some((3, v("::1")))),
        (b"::|", Some((2, v("::")))),
        (b"1::|", Some((3, v("1::")))),
        (b"1:2:3:4:5:6:7:8|", Some((15, v("1:2:3:4:5:6:7:8")))),
        // An 8th group before a trailing `::` is accepted.
        (b"1:2:3:4:5:6:7::|", Some((15, v("1:2:3:4:5:6:7:0")))),
        (b"::2:3:4:5:6:7:8|", Some((15, v("0:2:3:4:5:6:7:8")))),
        (b"1::8|", Some((4, v("1::8")))),
        (b"::ffff:192.0.2.1|", Some((16, v("::ffff:192.0.2.1")))),
        (b"::192.0.2.1|", Some((11, v("::192.0.2.1")))),
        (
            b"1:2:3:4:5:6:1.2.3.4|",
            Some((19, v("1:2:3:4:5:6:102:304"))),
        ),
        (b"00000000001::|", Some((13, v("1::")))),
        (b"ABCD:ef01::|", Some((11, v("abcd:ef01::")))),
        (b"::1.2.3.4:|", Some((9, v("::102:304")))),
        (b"::001.002.003.004|", Some((17, v("::102:304")))),
        // The end of the data ends the address too.
        (b"::1", Some((3, v("::1")))),
        (b"1:2:3:4:5:6:7:1.2.3.4|", None),
        (b"1:2:3:4:5:6:7:8:9|", None),
        (b"1:::2|", None),
        (b":1::|", None),
        (b"12345::|", None),
        (b"::256.1.1.1|", None),
        (b"1:2|", None),
        (b"::1 ", None),
        (b"fe80::1%eth0|", None),
        (b"::1.2.3|", None),
        (b"g::|", None),
        (b"|", None),
        (b"", None),
    ];
    for (input, want) in cases {
        let got = in6_pton(input, b'|').map(|(a, end)| (end, a));
        assert_eq!(got, *want, "{:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn in6_pton_reads_every_printed_address() {
    // Rust's `Display` (compressed, v4-mapped as a dotted quad) is one of the forms clients
    // send; each must read back.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..2000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut a = [0u8; 16];
        for (k, b) in a.iter_mut().enumerate() {
            // Zero runs, so that `::` appears in many places.
            if (x >> (k * 4 % 64)) & 3 != 0 || i % 7 == 0 {
                *b = (x >> (k * 3 % 56)) as u8;
            }
        }
        let text = format!("{}|", Ipv6Addr::from(a));
        assert_eq!(
            in6_pton(text.as_bytes(), b'|'),
            Some((a, text.len() - 1)),
            "{text}"
        );
    }
}

#[test]
fn in4_pton_as_6_12() {
    let cases: &[Pton<4>] = &[
        (b"1.2.3.4|", Some((7, [1, 2, 3, 4]))),
        (b"255.255.255.255|", Some((15, [255; 4]))),
        (b"0001.2.3.4|", Some((10, [1, 2, 3, 4]))),
        (b"1.2.3.4:", Some((7, [1, 2, 3, 4]))),
        (b"1.2.3.4", Some((7, [1, 2, 3, 4]))),
        (b"1.2.3.4\0", Some((7, [1, 2, 3, 4]))),
        (b"256.1.1.1|", None),
        (b"1.2.3|", None),
        (b"1.2.3.4.5|", None),
        (b"1..2.3|", None),
        (b"1.2.3.a|", None),
        (b"1.2.3.4 ", None),
        (b"", None),
    ];
    for (input, want) in cases {
        assert_eq!(
            in4_pton(input, b'|'),
            want.map(|(e, a)| (a, e)),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

// 227 and 229

#[test]
fn pasv_reply_forms() {
    for (p, off, len) in [
        (
            &b"227 Entering Passive Mode (10,0,0,1,4,2).\r\n"[..],
            27,
            12,
        ),
        (b"227 Entering Passive Mode (10,0,0,1,4,2)\r\n", 27, 12),
        (b"227 Entering Passive Mode 10,0,0,1,4,2\r\n", 26, 12),
        (b"227 =10,0,0,1,4,2\r\n", 5, 12),
        (b"227 10,0,0,1,4,2\n", 4, 12),
        // Any character ends the numbers.
        (b"227 (10,0,0,1,4,2x", 5, 12),
    ] {
        let m = matched(run4(Dir::Reply, p, false).0);
        assert_eq!(m.ftptype, FtpType::Pasv);
        assert_eq!((m.matchoff, m.matchlen), (off, len), "{p:?}");
        // From the original tuple: the client to the server.
        assert_eq!(m.expect, Some(exp4(A4, B4, 1026)), "{p:?}");
    }
}

#[test]
fn pasv_reply_malformed() {
    for p in [
        // The first digit is taken for the address.
        &b"227 Entering Passive Mode 1 (10,0,0,1,4,2)\r\n"[..],
        b"227 ok\r\n",
        // The data ends with the numbers.
        b"227 (10,0,0,1,4,2",
        b"227 (10,0,0,1,4)\r\n",
        b"227",
        b"2",
        b"227 ",
    ] {
        assert_eq!(run4(Dir::Reply, p, false).0, DROP_227, "{p:?}");
    }
    // "227" without the space is no 227 reply.
    assert_eq!(
        run4(Dir::Reply, b"227-Entering (10,0,0,1,4,2)\r\n", false).0,
        FtpOutcome::Accept
    );
}

#[test]
fn epsv_reply_forms() {
    for (p, d) in [
        (&b"229 Entering Extended Passive Mode (|||6446|)\r\n"[..], 1),
        (b"229 Entering Extended Passive Mode (!!!6446!)\r\n", 1),
        (b"229 (###6446#)\r\n", 1),
        (b"229 x(~~~6446~", 1),
    ] {
        let m = matched(run4(Dir::Reply, p, false).0);
        assert_eq!(m.ftptype, FtpType::Epsv);
        assert_eq!(m.matchlen, 8 * d);
        assert_eq!(m.expect, Some(exp4(A4, B4, 6446)));
    }
    for p in [
        &b"229 Entering Extended Passive Mode (111644611)\r\n"[..],
        b"229 (|!|6446|)\r\n",
        b"229 (|||6446)\r\n",
        b"229 (|||0|)\r\n",
        b"229 (|||65536|)\r\n",
        b"229 (|||)\r\n",
        b"229 no parenthesis\r\n",
        b"229 (",
        b"229",
        b"229 ",
    ] {
        assert_eq!(run4(Dir::Reply, p, false).0, DROP_229, "{p:?}");
    }
}

#[test]
fn epsv_expects_the_server_even_through_nat() {
    let (o, r) = nat_tuples();
    let mut st = primed();
    let out = help(
        &mut st,
        Dir::Reply,
        SEQ,
        b"229 (|||6446|)\r\n",
        &o,
        &r,
        false,
    );
    // No address in the reply: the server's (reply source) matches, and the expectation
    // is for the original direction's tuple.
    assert_eq!(expected(out), exp4(A4, B4, 6446));
}

#[test]
fn port_through_nat_uses_the_reply_tuple() {
    let (o, r) = nat_tuples();
    let mut st = primed();
    let out = help(
        &mut st,
        Dir::Original,
        SEQ,
        b"PORT 192,168,1,10,4,1\r\n",
        &o,
        &r,
        false,
    );
    assert_eq!(expected(out), exp4(B4, NAT4, 1025));
}

// Directions

#[test]
fn commands_only_from_the_client_replies_only_from_the_server() {
    for (dir, p) in [
        (Dir::Reply, &b"PORT 192,168,1,10,4,1\r\n"[..]),
        (Dir::Reply, b"EPRT |1|192.168.1.10|1025|\r\n"),
        (
            Dir::Original,
            b"227 Entering Passive Mode (10,0,0,1,4,2)\r\n",
        ),
        (Dir::Original, b"229 (|||6446|)\r\n"),
    ] {
        let (out, st) = run4(dir, p, false);
        assert_eq!(out, FtpOutcome::Accept, "{p:?}");
        // Not a match, but it ends a line.
        assert!(st.find_nl_seq(SEQ + p.len() as u32, dir));
        assert!(!st.find_nl_seq(SEQ + p.len() as u32, dir.reverse()));
    }
    // Short prefixes of the other direction's patterns are no partial match either.
    assert_eq!(run4(Dir::Reply, b"POR", false).0, FtpOutcome::Accept);
    assert_eq!(run4(Dir::Original, b"22", false).0, FtpOutcome::Accept);
}

// The address check

#[test]
fn another_address_only_with_loose() {
    let port = b"PORT 10,9,9,9,4,1\r\n";
    let m = matched(run4(Dir::Original, port, false).0);
    assert_eq!(m.expect, None, "NOT RECORDING");
    assert_eq!(m.nl_seq, Some(SEQ + port.len() as u32));
    assert_eq!(
        expected(run4(Dir::Original, port, true).0),
        exp4(B4, C4, 1025)
    );

    let eprt = b"EPRT |1|10.9.9.9|1025|\r\n";
    assert_eq!(matched(run4(Dir::Original, eprt, false).0).expect, None);
    assert_eq!(
        expected(run4(Dir::Original, eprt, true).0),
        exp4(B4, C4, 1025)
    );

    let pasv = b"227 Entering Passive Mode (10,9,9,9,4,2)\r\n";
    assert_eq!(matched(run4(Dir::Reply, pasv, false).0).expect, None);
    assert_eq!(expected(run4(Dir::Reply, pasv, true).0), exp4(A4, C4, 1026));

    // Through NAT, the address the client names is its own, not the translated one.
    let (o, r) = nat_tuples();
    let out = help(&mut primed(), Dir::Original, SEQ, port, &o, &r, true);
    assert_eq!(expected(out), exp4(B4, C4, 1025));
    let out = help(
        &mut primed(),
        Dir::Reply,
        SEQ,
        b"227 (203,0,113,5,4,2)\r\n",
        &o,
        &r,
        false,
    );
    // The server's address is B4 in the reply tuple; NAT4 is another one.
    assert_eq!(matched(out).expect, None);
}

#[test]
fn ipv4_forms_on_ipv6_replace_the_first_four_bytes() {
    // 32.1.13.184 is 2001:db8 as bytes: with the rest taken from the client's address, the
    // PORT names the client (verified against the C).
    let m = matched(run6(Dir::Original, b"PORT 32,1,13,184,4,1\r\n", false));
    assert_eq!(m.ftptype, FtpType::Port);
    assert_eq!(m.expect, Some(exp6(B6, A6, 1025)));
    // Another prefix: not the client; with loose, a hybrid address.
    let p = b"PORT 10,0,0,1,4,1\r\n";
    assert_eq!(matched(run6(Dir::Original, p, false)).expect, None);
    let mut hybrid = A6;
    hybrid[..4].copy_from_slice(&[10, 0, 0, 1]);
    assert_eq!(
        expected(run6(Dir::Original, p, true)),
        exp6(B6, hybrid, 1025)
    );
    // 227 likewise, with the server's address.
    let mut hybrid = B6;
    hybrid[..4].copy_from_slice(&[10, 0, 0, 1]);
    assert_eq!(
        expected(run6(Dir::Reply, b"227 (10,0,0,1,4,2)\r\n", true)),
        exp6(A6, hybrid, 1026)
    );
    assert_eq!(
        expected(run6(Dir::Reply, b"229 (|||6446|)\r\n", false)),
        exp6(A6, B6, 6446)
    );
}

// Line starts

#[test]
fn empty_payload_does_nothing() {
    let (o, r) = tuples4();
    let mut st = primed();
    st.pickup();
    let before = st;
    assert_eq!(
        help(&mut st, Dir::Original, 5, b"", &o, &r, true),
        FtpOutcome::Accept
    );
    assert_eq!(st, before);
}

#[test]
fn the_first_segment_of_a_direction_is_never_parsed() {
    let (o, r) = tuples4();
    let mut st = FtpState::default();
    let p = b"PORT 192,168,1,10,4,1\r\n";
    assert_eq!(
        help(&mut st, Dir::Original, 1, p, &o, &r, false),
        FtpOutcome::Accept
    );
    let next = 1 + p.len() as u32;
    assert_eq!(st.seq_aft_nl[0], [next, 0]);
    assert_eq!(st.seq_aft_nl_num, [1, 0]);
    let m = matched(help(&mut st, Dir::Original, next, p, &o, &r, false));
    assert_eq!(m.nl_seq, Some(next + p.len() as u32));
    m.commit(&mut st, Dir::Original);
    assert_eq!(st.seq_aft_nl[0], [next, next + p.len() as u32]);
    assert_eq!(st.seq_aft_nl_num, [2, 0]);
}

#[test]
fn a_segment_not_after_a_newline_is_not_parsed_but_recorded() {
    let (o, r) = tuples4();
    let mut st = primed();
    let p = b"PORT 192,168,1,10,4,1\r\n";
    // Not a recorded line start.
    assert_eq!(
        help(&mut st, Dir::Original, SEQ + 1, p, &o, &r, false),
        FtpOutcome::Accept
    );
    let end = SEQ + 1 + p.len() as u32;
    assert!(st.find_nl_seq(end, Dir::Original));
    // Without a newline at its end, nothing is recorded.
    let before = st;
    assert_eq!(
        help(
            &mut st,
            Dir::Original,
            7,
            b"PORT 192,168,1,10,4,1\r",
            &o,
            &r,
            false
        ),
        FtpOutcome::Accept
    );
    assert_eq!(st, before);
    // Only a newline as the very last byte counts.
    let mut st = primed();
    let _ = help(&mut st, Dir::Original, SEQ, b"NOOP\r\nx", &o, &r, false);
    assert_eq!(st, primed());
}

#[test]
fn a_command_split_over_two_segments() {
    let (o, r) = tuples4();
    // The segment with the start of the command is dropped: the client retransmits, and
    // the retransmission (with the whole command, once the peer's window allows) is parsed.
    let mut st = primed();
    assert_eq!(
        help(&mut st, Dir::Original, SEQ, b"PORT 192,168,", &o, &r, false),
        DROP_PORT
    );
    assert_eq!(st, primed());
    let p = b"PORT 192,168,1,10,4,1\r\n";
    let m = matched(help(&mut st, Dir::Original, SEQ, p, &o, &r, false));
    assert_eq!(m.expect, Some(exp4(B4, A4, 1025)));

    // After another command in the same segment, the command is not at a line start and
    // its second half is not at one either: missed, as in 6.12.
    let mut st = primed();
    let a = b"NOOP\r\nPORT 192,168,";
    assert_eq!(
        help(&mut st, Dir::Original, SEQ, a, &o, &r, false),
        FtpOutcome::Accept
    );
    let b = b"1,10,4,1\r\n";
    let seq_b = SEQ + a.len() as u32;
    assert_eq!(
        help(&mut st, Dir::Original, seq_b, b, &o, &r, false),
        FtpOutcome::Accept
    );
    assert!(st.find_nl_seq(seq_b + b.len() as u32, Dir::Original));
}

#[test]
fn a_retransmitted_command_is_parsed_again() {
    let (o, r) = tuples4();
    let mut st = primed();
    let p = b"PORT 192,168,1,10,4,1\r\n";
    let m = matched(help(&mut st, Dir::Original, SEQ, p, &o, &r, false));
    m.commit(&mut st, Dir::Original);
    let after = st;
    let m2 = matched(help(&mut st, Dir::Original, SEQ, p, &o, &r, false));
    assert_eq!(m, m2);
    m2.commit(&mut st, Dir::Original);
    assert_eq!(st, after, "the same line end is recorded once");
}

#[test]
fn seq_pickup_parses_the_next_packet_of_each_direction() {
    let (o, r) = tuples4();
    let mut st = FtpState::default();
    st.pickup();
    assert_eq!(st.flags, [NF_CT_FTP_SEQ_PICKUP; 2]);
    let p = b"PORT 192,168,1,10,4,1\r\n";
    let m = matched(help(&mut st, Dir::Original, 77, p, &o, &r, false));
    assert_eq!(st.flags, [0, NF_CT_FTP_SEQ_PICKUP]);
    m.commit(&mut st, Dir::Original);
    // Once only.
    assert_eq!(
        help(&mut st, Dir::Original, 5000, p, &o, &r, false),
        FtpOutcome::Accept
    );
    // The reply direction's flag is still set; a partial match clears it too, since the
    // flag goes before the parsing.
    assert_eq!(
        help(&mut st, Dir::Reply, 9, b"227 (10,0", &o, &r, false),
        DROP_227
    );
    assert_eq!(st.flags, [0, 0]);

    // At a recorded line start the flag is not needed and stays.
    let mut st = primed();
    st.pickup();
    let _ = help(&mut st, Dir::Original, SEQ, p, &o, &r, false);
    assert_eq!(st.flags, [NF_CT_FTP_SEQ_PICKUP; 2]);
}

#[test]
fn update_nl_seq_replaces_the_oldest_if_newer() {
    let mut st = FtpState::default();
    st.update_nl_seq(100, Dir::Reply);
    st.update_nl_seq(100, Dir::Reply);
    assert_eq!(st.seq_aft_nl_num, [0, 1]);
    st.update_nl_seq(200, Dir::Reply);
    assert_eq!(st.seq_aft_nl[1], [100, 200]);
    st.update_nl_seq(300, Dir::Reply);
    assert_eq!(st.seq_aft_nl[1], [300, 200]);
    st.update_nl_seq(250, Dir::Reply);
    assert_eq!(st.seq_aft_nl[1], [300, 250]);
    // Older than the oldest: ignored.
    st.update_nl_seq(50, Dir::Reply);
    assert_eq!(st.seq_aft_nl[1], [300, 250]);
    assert_eq!(st.seq_aft_nl_num, [0, 2]);
    assert_eq!(st.seq_aft_nl[0], [0, 0]);

    // Sequence numbers compare modulo 2^32.
    let mut st = FtpState::default();
    st.update_nl_seq(0xffff_fff0, Dir::Original);
    st.update_nl_seq(0x10, Dir::Original);
    st.update_nl_seq(0x20, Dir::Original);
    assert_eq!(st.seq_aft_nl[0], [0x20, 0x10]);
    st.update_nl_seq(0xffff_ff00, Dir::Original);
    assert_eq!(st.seq_aft_nl[0], [0x20, 0x10]);
    // Equal slots: the second is taken as the oldest.
    let mut st = FtpState {
        seq_aft_nl: [[5, 5], [0, 0]],
        seq_aft_nl_num: [2, 0],
        flags: [0, 0],
    };
    st.update_nl_seq(6, Dir::Original);
    assert_eq!(st.seq_aft_nl[0], [5, 6]);
}

#[test]
fn the_line_end_wraps_with_the_sequence_space() {
    let (o, r) = tuples4();
    let mut st = FtpState::default();
    st.update_nl_seq(u32::MAX - 3, Dir::Original);
    let p = b"PORT 192,168,1,10,4,1\r\n";
    let m = matched(help(&mut st, Dir::Original, u32::MAX - 3, p, &o, &r, false));
    assert_eq!(m.nl_seq, Some(p.len() as u32 - 4));
}

#[test]
fn which_paths_update_the_state() {
    let (o, r) = tuples4();
    let end = |p: &[u8]| SEQ + p.len() as u32;
    // No match: updated by help.
    let p = b"LIST\r\n";
    let mut st = primed();
    assert_eq!(
        help(&mut st, Dir::Original, SEQ, p, &o, &r, false),
        FtpOutcome::Accept
    );
    assert!(st.find_nl_seq(end(p), Dir::Original));
    // A match, with or without an expectation: by commit, which the caller makes once the
    // expectation is allocated.
    for p in [&b"PORT 192,168,1,10,4,1\r\n"[..], b"PORT 10,9,9,9,4,1\r\n"] {
        let mut st = primed();
        let m = matched(help(&mut st, Dir::Original, SEQ, p, &o, &r, false));
        assert_eq!(st, primed());
        m.commit(&mut st, Dir::Original);
        assert!(st.find_nl_seq(end(p), Dir::Original));
    }
    // A match not ending a line: nothing to commit.
    let m = matched(run4(Dir::Original, b"PORT 192,168,1,10,4,1\r", false).0);
    assert_eq!(m.nl_seq, None);
    // A partial match: not updated, although it ends in a newline.
    let (out, st) = run4(Dir::Original, b"PORT 192,168,1,10,4,1\n", false);
    assert_eq!(out, DROP_PORT);
    assert_eq!(st, primed());
}

// The parts

#[test]
fn find_pattern_semantics() {
    let mut cmd = FtpCmd {
        l3: L3::Ipv4,
        u3: Addr::v4(A4),
        port: 0,
    };
    let f = |d: &[u8], cmd: &mut FtpCmd| find_pattern(d, b"PORT", b' ', b'\r', cmd, try_rfc959);
    assert_eq!(f(b"", &mut cmd), Find::Partial, "an empty prefix");
    assert_eq!(f(b"pOr", &mut cmd), Find::Partial);
    assert_eq!(f(b"PORT", &mut cmd), Find::Partial);
    assert_eq!(f(b"POX", &mut cmd), Find::NoMatch);
    assert_eq!(f(b"PORX 1,2,3,4,5,6\r", &mut cmd), Find::NoMatch);
    assert_eq!(f(b"P\0RT 1,2,3,4,5,6\r", &mut cmd), Find::NoMatch);
    assert_eq!(f(b"PORTXXXX", &mut cmd), Find::Partial, "no skip char");
    assert_eq!(f(b"PORT ", &mut cmd), Find::Partial, "skip char last");
    assert_eq!(
        f(b"PORT 1,2,3,4,5,6\r", &mut cmd),
        Find::Match { off: 5, len: 11 }
    );
    assert_eq!(cmd.u3, Addr::v4([1, 2, 3, 4]));
    assert_eq!(cmd.port, 0x0506);
    // Without a skip character the numbers start right after the pattern, and try_rfc1123
    // moves the offset to the first digit.
    assert_eq!(
        find_pattern(
            b"227 abc 1,2,3,4,5,6)",
            b"227 ",
            0,
            0,
            &mut cmd,
            try_rfc1123
        ),
        Find::Match { off: 8, len: 11 }
    );
    // Non-ASCII bytes never match ASCII letters, whatever their case.
    assert_eq!(
        find_pattern(
            b"\xd0ORT 1,2,3,4,5,6\r",
            b"PORT",
            b' ',
            b'\r',
            &mut cmd,
            try_rfc959
        ),
        Find::NoMatch
    );
}

#[test]
fn try_number_semantics() {
    assert_eq!(
        try_number::<6>(b"1,2,3,4,5,6\r", b',', b'\r'),
        Some(([1, 2, 3, 4, 5, 6], 11))
    );
    assert_eq!(
        try_number::<6>(b"1,2,3,4,5,6x", b',', 0),
        Some(([1, 2, 3, 4, 5, 6], 11))
    );
    assert_eq!(try_number::<6>(b"1,2,3,4,5,6x", b',', b'\r'), None);
    assert_eq!(
        try_number::<6>(b"1,2,3,4,5,6", b',', 0),
        None,
        "no terminator"
    );
    assert_eq!(try_number::<6>(b"1,2,3,4,5,6,\r", b',', b'\r'), None);
    assert_eq!(try_number::<6>(b"1,2,3,4,5\r", b',', b'\r'), None);
    assert_eq!(try_number::<4>(b"...|", b'.', b'|'), Some(([0; 4], 3)));
    assert_eq!(
        try_number::<4>(b"4294967297.0.0.99999999999|", b'.', b'|'),
        Some(([1, 0, 0, 99_999_999_999u64 as u32], 26))
    );
    assert_eq!(try_number::<4>(b"", b'.', b'|'), None);
}

#[test]
fn get_port_semantics() {
    let mut port = 7;
    assert_eq!(get_port(b"|||21|", 3, b'|', &mut port), Some(6));
    assert_eq!(port, 21);
    assert_eq!(get_port(b"|||0|", 3, b'|', &mut port), None);
    assert_eq!(get_port(b"|||00000|", 3, b'|', &mut port), None);
    assert_eq!(get_port(b"|||131072|", 3, b'|', &mut port), None, "2^17");
    assert_eq!(get_port(b"|||131073|", 3, b'|', &mut port), Some(10));
    assert_eq!(port, 1);
    assert_eq!(get_port(b"|||21", 3, b'|', &mut port), None);
    assert_eq!(get_port(b"|||2 1|", 3, b'|', &mut port), None);
    assert_eq!(get_port(b"|||21|", 30, b'|', &mut port), None);
    assert_eq!(port, 1, "failures leave the port");
}

#[test]
fn the_fuzz_entry_holds_on_the_test_payloads() {
    // The fuzz target's invariants (host/lib.rs, fuzz_ftp) on payloads from these tests,
    // under every header the fuzzer could put before them.
    let payloads: &[&[u8]] = &[
        b"PORT 192,168,1,10,4,1\r\n",
        b"EPRT |1|192.168.1.10|1025|\r\n",
        b"EPRT |2|2001:db8::1|1025|\r\n",
        b"227 Entering Passive Mode (10,0,0,1,4,2).\r\n",
        b"229 (|||6446|)\r\n",
        b"PORT 10,9,9,9,4,1\r\n",
        b"PORT 192,168",
        b"22",
    ];
    for p in payloads {
        for head in 0..64u8 {
            let mut data = vec![head, head.wrapping_mul(37), 0, 0, 3, 0xe8];
            data.extend_from_slice(&[0; 24]);
            data.extend_from_slice(p);
            crate::fuzz_ftp(&data);
        }
    }
}
