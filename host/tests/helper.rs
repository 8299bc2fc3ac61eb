// SPDX-License-Identifier: GPL-2.0

//! Tests of helpers and expectations (`src/proto/helper.rs`, `src/proto/expect.rs`) through
//! the pipeline on a host table: FTP and TFTP sessions whose packets go through the tracking,
//! helper and confirm hooks, and the expectations they leave: matched by the data connection
//! (RELATED, with its master and mark), replaced, evicted, expired, removed with their master,
//! refused when the table is full or another master expects the same.

use crate::host_ct::{ctx, receive, HostCt, Pkt, HOST_HZ};
use crate::pkt::{udp, Ipv4, Ipv6, Tcp, A4, A6, ACK, B4, B6, PSH, SYN};
use crate::proto::conn::{CtInfo, IPS_CONFIRMED, IPS_DYING, IPS_EXPECTED};
use crate::proto::expect::{expect_sizes, expectation, ExpectError, NF_CT_EXPECT_PERMANENT};
use crate::proto::helper::{HelperId, HelperKind, HelperPorts};
use crate::proto::l4proto::Settings;
use crate::proto::pipeline::{Clock, Conntrack, Entry, Hook, HookRole, Verdict};
use crate::proto::stat::Stat;
use crate::proto::tuple::{Addr, Dir, Tuple, IPPROTO_TCP, IPPROTO_UDP, L3, L4};
use std::rc::Rc;

const HZ: u32 = HOST_HZ;
const T0: u32 = 1000;

/// A TCP connection between a client and a server, packets built with running sequence
/// numbers and pushed through the hooks of a host table.
struct Session<'a> {
    ct: &'a HostCt,
    v6: bool,
    client: (Addr, u16),
    server: (Addr, u16),
    seq: [u32; 2],
    now: u32,
}

fn addr4(a: [u8; 4]) -> Addr {
    Addr::v4(a)
}

impl<'a> Session<'a> {
    fn new(ct: &'a HostCt, v6: bool, cport: u16, sport: u16) -> Self {
        let (c, s) = if v6 {
            (Addr(A6), Addr(B6))
        } else {
            (addr4(A4), addr4(B4))
        };
        Session {
            ct,
            v6,
            client: (c, cport),
            server: (s, sport),
            seq: [100, 5000],
            now: T0,
        }
    }

    fn l3(&self) -> L3 {
        if self.v6 {
            L3::Ipv6
        } else {
            L3::Ipv4
        }
    }

    /// A packet from the client (`from_client`) or the server with `flags` and `data`.
    fn packet(&mut self, from_client: bool, flags: u8, data: &[u8]) -> Vec<u8> {
        let (d, o) = if from_client { (0, 1) } else { (1, 0) };
        let ((src, sp), (dst, dp)) = if from_client {
            (self.client, self.server)
        } else {
            (self.server, self.client)
        };
        let ack = if flags & ACK != 0 { self.seq[o] } else { 0 };
        let tcp = Tcp {
            sport: sp,
            dport: dp,
            seq: self.seq[d],
            ack,
            flags,
            window: 65535,
            options: Vec::new(),
        }
        .build(data);
        let mut adv = data.len() as u32;
        if flags & SYN != 0 {
            adv += 1;
        }
        self.seq[d] = self.seq[d].wrapping_add(adv);
        build(self.v6, src, dst, IPPROTO_TCP, &tcp)
    }

    fn send(&mut self, from_client: bool, flags: u8, data: &[u8]) -> (Verdict, Verdict) {
        let p = self.packet(from_client, flags, data);
        self.now += 1;
        receive(self.ct, &p, self.l3(), self.now, HZ)
    }

    /// The three-way handshake, then the server's greeting and the client's login: after
    /// them, each direction has a line start recorded.
    fn open(&mut self) {
        assert_eq!(self.send(true, SYN, b"").1, Verdict::Accept);
        self.send(false, SYN | ACK, b"");
        self.send(true, ACK, b"");
        self.send(false, PSH | ACK, b"220 ready\r\n");
        self.send(true, PSH | ACK, b"USER anonymous\r\n");
        self.send(false, PSH | ACK, b"331 password\r\n");
    }

    fn master(&self) -> Rc<crate::host_ct::HostEntry> {
        let key = Tuple {
            l3: self.l3(),
            proto: IPPROTO_TCP,
            src: self.client.0,
            dst: self.server.0,
            l4: L4::Ports {
                src: self.client.1,
                dst: self.server.1,
            },
        }
        .key();
        self.ct
            .find(&key, 0, self.now)
            .map(|(e, _)| e)
            .expect("control connection tracked")
    }
}

fn build(v6: bool, src: Addr, dst: Addr, proto: u8, l4: &[u8]) -> Vec<u8> {
    if v6 {
        Ipv6::new(proto, src.0, dst.0).build(l4)
    } else {
        Ipv4::new(proto, src.ip4(), dst.ip4()).build(l4)
    }
}

fn ct() -> HostCt {
    HostCt::with(Settings::defaults())
}

fn tcp_syn(v6: bool, src: (Addr, u16), dst: (Addr, u16)) -> Vec<u8> {
    build(
        v6,
        src.0,
        dst.0,
        IPPROTO_TCP,
        &Tcp::new(src.1, dst.1, SYN).build(b""),
    )
}

fn only_expectation(ct: &HostCt, now: u32) -> Tuple {
    let e = ct.expectations(now);
    assert_eq!(e.len(), 1, "one expectation: {e:?}");
    e[0].0
}

fn ports_tuple(l3: L3, proto: u8, src: Addr, dst: Addr, sport: u16, dport: u16) -> Tuple {
    Tuple {
        l3,
        proto,
        src,
        dst,
        l4: L4::Ports {
            src: sport,
            dst: dport,
        },
    }
}

#[test]
fn pasv_reply_expects_the_data_connection_which_is_related() {
    let ct = ct();
    let mut s = Session::new(&ct, false, 40000, 21);
    s.open();
    let master = s.master();
    assert_eq!(
        ct.helper_of(&master),
        Some(HelperId {
            kind: HelperKind::Ftp,
            port: 21,
            index: 0,
        })
    );
    s.send(true, PSH | ACK, b"PASV\r\n");
    assert!(
        ct.expectations(s.now).is_empty(),
        "a command expects nothing"
    );
    let v = s.send(
        false,
        PSH | ACK,
        b"227 Entering Passive Mode (10,0,0,1,195,80).\r\n",
    );
    assert_eq!(v, (Verdict::Accept, Verdict::Accept));
    // From the client, any port, to the address and port the server named.
    assert_eq!(
        only_expectation(&ct, s.now),
        ports_tuple(L3::Ipv4, IPPROTO_TCP, addr4(A4), addr4(B4), 0, 50000)
    );
    assert_eq!(ct.expectations(s.now)[0].2, 300);
    assert_eq!(ct.stat(Stat::ExpectCreate), 1);
    master.set_mark(7);
    // The data connection.
    let syn = tcp_syn(false, (addr4(A4), 40001), (addr4(B4), 50000));
    assert_eq!(
        receive(&ct, &syn, L3::Ipv4, s.now + 5, HZ).1,
        Verdict::Accept
    );
    let data = ct
        .table
        .borrow()
        .iter()
        .find(|e| e.tuple(Dir::Original) == Some(tuple_of(&syn)))
        .cloned()
        .expect("data connection tracked");
    assert_eq!(data.status(), IPS_EXPECTED | IPS_CONFIRMED);
    assert!(Rc::ptr_eq(data.master.as_ref().expect("master"), &master));
    assert_eq!(data.mark(), 7, "mark inherited");
    assert_eq!(data.helper, None, "the data connection has no helper");
    assert_eq!(
        CtInfo::of_match(Dir::Original, data.status()),
        CtInfo::Related
    );
    assert_eq!(
        (
            ct.stat(Stat::ExpectNew),
            ct.stat(Stat::ExpectDelete),
            ct.expect_count()
        ),
        (1, 1, 0),
        "used once and gone"
    );
    // A second connection to the same port is not expected.
    let syn2 = tcp_syn(false, (addr4(A4), 40002), (addr4(B4), 50000));
    receive(&ct, &syn2, L3::Ipv4, s.now + 6, HZ);
    assert_eq!(ct.stat(Stat::ExpectNew), 1);
}

fn tuple_of(p: &[u8]) -> Tuple {
    if p.first().is_some_and(|b| b >> 4 == 6) {
        crate::proto::tuple::parse_ipv6(p, 0).expect("IPv6").tuple
    } else {
        crate::proto::tuple::parse_ipv4(p, 0).expect("IPv4").tuple
    }
}

#[test]
fn port_and_eprt_expect_the_server_to_connect_back() {
    let ct = ct();
    let mut s = Session::new(&ct, false, 40000, 21);
    s.open();
    s.send(true, PSH | ACK, b"PORT 192,168,1,10,156,64\r\n");
    // From the server, any port, to the client's port 40000.
    assert_eq!(
        only_expectation(&ct, s.now),
        ports_tuple(L3::Ipv4, IPPROTO_TCP, addr4(B4), addr4(A4), 0, 40000)
    );
    let syn = tcp_syn(false, (addr4(B4), 20), (addr4(A4), 40000));
    receive(&ct, &syn, L3::Ipv4, s.now + 1, HZ);
    assert_eq!(ct.stat(Stat::ExpectNew), 1);

    let ct6 = self::ct();
    let mut s = Session::new(&ct6, true, 40000, 21);
    s.open();
    s.send(true, PSH | ACK, b"EPRT |2|2001:db8::1|40100|\r\n");
    assert_eq!(
        only_expectation(&ct6, s.now),
        ports_tuple(L3::Ipv6, IPPROTO_TCP, Addr(B6), Addr(A6), 0, 40100)
    );
}

#[test]
fn epsv_reply_over_ipv6() {
    let ct = ct();
    let mut s = Session::new(&ct, true, 40000, 21);
    s.open();
    s.send(true, PSH | ACK, b"EPSV\r\n");
    s.send(
        false,
        PSH | ACK,
        b"229 Entering Extended Passive Mode (|||50001|)\r\n",
    );
    assert_eq!(
        only_expectation(&ct, s.now),
        ports_tuple(L3::Ipv6, IPPROTO_TCP, Addr(A6), Addr(B6), 0, 50001)
    );
    let syn = tcp_syn(true, (Addr(A6), 40003), (Addr(B6), 50001));
    receive(&ct, &syn, L3::Ipv6, s.now + 1, HZ);
    assert_eq!(ct.stat(Stat::ExpectNew), 1);
}

#[test]
fn a_port_naming_another_address_expects_nothing_unless_loose() {
    for loose in [false, true] {
        let mut ct = ct();
        ct.loose = loose;
        let mut s = Session::new(&ct, false, 40000, 21);
        s.open();
        let v = s.send(true, PSH | ACK, b"PORT 10,9,9,9,156,64\r\n");
        assert_eq!(v.1, Verdict::Accept);
        let e = ct.expectations(s.now);
        if loose {
            assert_eq!(e.len(), 1);
            assert_eq!(e[0].0.dst, addr4([10, 9, 9, 9]));
        } else {
            assert!(e.is_empty(), "{e:?}");
        }
    }
}

#[test]
fn nothing_is_parsed_before_both_directions_have_spoken() {
    let ct = ct();
    let mut s = Session::new(&ct, false, 40000, 21);
    s.send(true, SYN, b"");
    // Data on an unreplied connection: NEW, not looked at.
    s.send(true, PSH | ACK, b"PORT 192,168,1,10,156,64\r\n");
    assert!(ct.expectations(s.now).is_empty());
}

#[test]
fn a_partial_command_drops_the_packet() {
    let ct = ct();
    let mut s = Session::new(&ct, false, 40000, 21);
    s.open();
    let v = s.send(true, PSH | ACK, b"PORT 192,168,1");
    assert_eq!(v.1, Verdict::Drop);
    assert_eq!(
        ct.helper_logs.borrow().as_slice(),
        ["nf_ct_ftp: dropping packet: partial matching of `PORT'"]
    );
    assert!(ct.expectations(s.now).is_empty());
}

#[test]
fn a_new_command_replaces_the_masters_expectation() {
    // The policy allows one: the older goes (`evict_oldest_expect`), counted as deleted.
    let ct = ct();
    let mut s = Session::new(&ct, false, 40000, 21);
    s.open();
    s.send(true, PSH | ACK, b"PORT 192,168,1,10,156,64\r\n");
    s.send(false, PSH | ACK, b"200 ok\r\n");
    s.send(true, PSH | ACK, b"PORT 192,168,1,10,156,65\r\n");
    assert_eq!(
        only_expectation(&ct, s.now),
        ports_tuple(L3::Ipv4, IPPROTO_TCP, addr4(B4), addr4(A4), 0, 40001)
    );
    assert_eq!(
        (ct.stat(Stat::ExpectCreate), ct.stat(Stat::ExpectDelete)),
        (2, 1)
    );
    // The same command again replaces the equal expectation.
    s.send(false, PSH | ACK, b"200 ok\r\n");
    s.send(true, PSH | ACK, b"PORT 192,168,1,10,156,65\r\n");
    assert_eq!(ct.expect_count(), 1);
    assert_eq!(
        (ct.stat(Stat::ExpectCreate), ct.stat(Stat::ExpectDelete)),
        (3, 2)
    );
}

#[test]
fn expectations_expire_after_five_minutes() {
    let ct = ct();
    let mut s = Session::new(&ct, false, 40000, 21);
    s.open();
    s.send(true, PSH | ACK, b"PORT 192,168,1,10,156,64\r\n");
    let made = s.now;
    assert_eq!(ct.expectations(made + 299 * HZ).len(), 1);
    assert_eq!(ct.expectations(made + 299 * HZ)[0].2, 1);
    // Dead at 300 s: not shown, not matched; unlinked by the next lookup of its bucket.
    let late = made + 300 * HZ;
    assert!(ct.expectations(late).is_empty());
    let syn = tcp_syn(false, (addr4(B4), 20), (addr4(A4), 40000));
    receive(&ct, &syn, L3::Ipv4, late, HZ);
    assert_eq!(ct.stat(Stat::ExpectNew), 0);
    assert_eq!((ct.stat(Stat::ExpectDelete), ct.expect_count()), (1, 0));
}

#[test]
fn the_collector_unlinks_dead_expectations() {
    let ct = ct();
    let mut s = Session::new(&ct, false, 40000, 21);
    s.open();
    s.send(true, PSH | ACK, b"PORT 192,168,1,10,156,64\r\n");
    ct.sweep_expectations(s.now + 10);
    assert_eq!(ct.expect_count(), 1);
    ct.sweep_expectations(s.now + 301 * HZ);
    assert_eq!((ct.expect_count(), ct.stat(Stat::ExpectDelete)), (0, 1));
}

#[test]
fn killing_the_master_removes_its_expectations() {
    let ct = ct();
    let mut s = Session::new(&ct, false, 40000, 21);
    s.open();
    s.send(true, PSH | ACK, b"PORT 192,168,1,10,156,64\r\n");
    let master = s.master();
    assert!(ct.kill(&master));
    assert_eq!(master.status() & IPS_DYING, IPS_DYING);
    assert_eq!((ct.expect_count(), ct.stat(Stat::ExpectDelete)), (0, 1));
    let syn = tcp_syn(false, (addr4(B4), 20), (addr4(A4), 40000));
    receive(&ct, &syn, L3::Ipv4, s.now + 1, HZ);
    assert_eq!(ct.stat(Stat::ExpectNew), 0);
}

#[test]
fn tftp_read_request_expects_the_reply_from_any_server_port() {
    let ct = ct();
    let rrq = Ipv4::new(17, A4, B4).build(&udp(3000, 69, b"\x00\x01file\x00octet\x00"));
    // The first packet: the expectation is made on the unconfirmed master.
    assert_eq!(
        receive(&ct, &rrq, L3::Ipv4, T0, HZ),
        (Verdict::Accept, Verdict::Accept)
    );
    assert_eq!(
        only_expectation(&ct, T0),
        ports_tuple(L3::Ipv4, IPPROTO_UDP, addr4(B4), addr4(A4), 0, 3000)
    );
    let data = Ipv4::new(17, B4, A4).build(&udp(4711, 3000, b"\x00\x03\x00\x01data"));
    receive(&ct, &data, L3::Ipv4, T0 + 1, HZ);
    assert_eq!(ct.stat(Stat::ExpectNew), 1);
    let entry = ct
        .table
        .borrow()
        .iter()
        .find(|e| e.tuple(Dir::Original) == Some(tuple_of(&data)))
        .cloned()
        .expect("reply tracked");
    assert_eq!(entry.status() & IPS_EXPECTED, IPS_EXPECTED);
    // Data and acknowledgements expect nothing.
    let ack = Ipv4::new(17, A4, B4).build(&udp(3000, 69, b"\x00\x04\x00\x01"));
    receive(&ct, &ack, L3::Ipv4, T0 + 2, HZ);
    assert_eq!(ct.stat(Stat::ExpectCreate), 1);
}

#[test]
fn an_unconfirmed_master_is_not_expected_yet() {
    // "If master is not in hash table yet ... how can other end know about expected?"
    let ct = ct();
    let rrq = Ipv4::new(17, A4, B4).build(&udp(3000, 69, b"\x00\x02file\x00octet\x00"));
    let p = Pkt {
        bytes: &rrq,
        nf: None,
    };
    let cookie = 0x1000;
    crate::host_ct::run_hook(
        &ct,
        HookRole::Track,
        &p,
        &ctx(Hook::PreRouting, L3::Ipv4, cookie, T0, HZ),
    );
    crate::host_ct::run_hook(
        &ct,
        HookRole::Helper,
        &p,
        &ctx(Hook::LocalIn, L3::Ipv4, cookie, T0, HZ),
    );
    assert_eq!(ct.expect_count(), 1);
    let data = Ipv4::new(17, B4, A4).build(&udp(4711, 3000, b"\x00\x03\x00\x01data"));
    receive(&ct, &data, L3::Ipv4, T0 + 1, HZ);
    assert_eq!((ct.stat(Stat::ExpectNew), ct.expect_count()), (0, 1));
}

#[test]
fn helpers_follow_the_ports_and_the_switch() {
    let mut ct = ct();
    ct.helper_ports = Some(HelperPorts::from_params(&[2121, 0], &[]));
    let t = |port| ports_tuple(L3::Ipv4, IPPROTO_TCP, addr4(A4), addr4(B4), 40000, port);
    assert_eq!(ct.assign_helper(&t(21)), None);
    let h = ct.assign_helper(&t(2121)).expect("ftp on 2121");
    assert_eq!(h.to_string(), "ftp-2121");
    let u = ports_tuple(L3::Ipv4, IPPROTO_UDP, addr4(A4), addr4(B4), 4000, 69);
    assert_eq!(
        ct.assign_helper(&u).map(|h| h.to_string()),
        Some("tftp".into())
    );
    ct.no_auto_helper = true;
    assert_eq!(ct.assign_helper(&t(2121)), None);
    // With the switch off, a session expects nothing.
    let mut s = Session::new(&ct, false, 40000, 2121);
    s.open();
    s.send(true, PSH | ACK, b"PORT 192,168,1,10,156,64\r\n");
    assert_eq!(ct.expect_count(), 0);
}

#[test]
fn a_full_table_refuses_and_the_packet_is_dropped() {
    let mut ct = ct();
    ct.expect_max = 1;
    let mut a = Session::new(&ct, false, 40000, 21);
    a.open();
    a.send(true, PSH | ACK, b"PORT 192,168,1,10,156,64\r\n");
    let mut b = Session::new(&ct, false, 40010, 21);
    b.open();
    let v = b.send(true, PSH | ACK, b"PORT 192,168,1,10,156,65\r\n");
    assert_eq!(v.1, Verdict::Drop);
    assert_eq!(
        ct.helper_logs.borrow().as_slice(),
        ["nf_ct_ftp: dropping packet: cannot add expectation"]
    );
    assert_eq!(ct.expect_count(), 1);
}

#[test]
fn expectations_of_two_masters_clash() {
    let ct = ct();
    let mut a = Session::new(&ct, false, 40000, 21);
    a.open();
    a.send(true, PSH | ACK, b"PORT 192,168,1,10,156,64\r\n");
    let master_a = a.master();
    let mut b = Session::new(&ct, false, 40010, 21);
    b.open();
    let master_b = b.master();
    // The same tuple from another master: busy.
    let same = expectation(
        master_b.clone(),
        HelperId {
            kind: HelperKind::Ftp,
            port: 21,
            index: 0,
        },
        0,
        L3::Ipv4,
        IPPROTO_TCP,
        Some(addr4(B4)),
        addr4(A4),
        None,
        40000,
    );
    assert_eq!(
        ct.expect_related(same.clone(), &Clock::at(u64::from(b.now), HZ)),
        Err(ExpectError::Busy)
    );
    // From the same master in another class: already.
    let mut other_class = same;
    other_class.master = master_a;
    other_class.class = 1;
    assert_eq!(
        ct.expect_related(other_class, &Clock::at(u64::from(b.now), HZ)),
        Err(ExpectError::Full),
        "FTP has no class 1"
    );
}

#[test]
fn a_permanent_expectation_stays_after_use() {
    let ct = ct();
    let mut s = Session::new(&ct, false, 40000, 21);
    s.open();
    let mut e = expectation(
        s.master(),
        HelperId {
            kind: HelperKind::Ftp,
            port: 21,
            index: 0,
        },
        0,
        L3::Ipv4,
        IPPROTO_TCP,
        None,
        addr4(A4),
        None,
        7000,
    );
    e.flags = NF_CT_EXPECT_PERMANENT;
    assert_eq!(
        ct.expect_related(e, &Clock::at(u64::from(s.now), HZ)),
        Ok(())
    );
    for port in [1, 2] {
        let syn = tcp_syn(false, (addr4([10, 1, 1, port]), 99), (addr4(A4), 7000));
        receive(&ct, &syn, L3::Ipv4, s.now + 1, HZ);
    }
    assert_eq!((ct.stat(Stat::ExpectNew), ct.expect_count()), (2, 1));
}

#[test]
fn expectation_table_sizes_follow_the_connection_table() {
    assert_eq!(expect_sizes(16384), (64, 256));
    assert_eq!(expect_sizes(100), (1, 4));
    assert_eq!(expect_sizes(262144), (1024, 4096));
}

/// A packet for which nf_conntrack's entry says NAT moved the sequence numbers of the
/// direction `.1` (0: the packet's, 1: the other) by 4 from position 0 on, and (`.2`) that
/// it is translated and has a helper.
struct Shifted<'a>(&'a [u8], Option<usize>, bool);

impl crate::proto::tuple::PacketBytes for Shifted<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), crate::proto::tuple::ParseError> {
        self.0.read(offset, buf)
    }
}

impl crate::proto::pipeline::Packet for Shifted<'_> {
    fn l4_checksum_ok(&self, _: Hook, _: L3, _: usize, _: u8, _: Option<usize>) -> bool {
        true
    }

    fn nf_view(&self) -> Option<crate::proto::handoff::NfView> {
        None
    }

    fn tail(&self, off: usize) -> Option<&[u8]> {
        self.0.get(off..)
    }

    fn nf_seqadj(&self) -> Option<[crate::proto::handoff::SeqAdj; 2]> {
        let moved = crate::proto::handoff::SeqAdj {
            correction_pos: 0,
            offset_before: 0,
            offset_after: 4,
        };
        let mut adj = [crate::proto::handoff::SeqAdj::default(); 2];
        *adj.get_mut(self.1?)? = moved;
        Some(adj)
    }

    fn nf_nat_helper(&self) -> bool {
        self.2
    }
}

#[test]
fn acknowledgements_of_a_rewritten_command_count_in_nat_sequence_space() {
    // nf_nat_ftp made the client's PORT 4 bytes longer on its way out: the server
    // acknowledges 4 bytes more than the client sent, and nf_conntrack subtracts the offset
    // its seqadj extension records (`tcp_in_window`). Ours reads that offset: from the
    // packet when nf_conntrack tracked it before us, else as the helper hook last saw it.
    for case in ["none", "live", "remembered"] {
        let ct = ct();
        let mut s = Session::new(&ct, false, 40000, 21);
        s.open();
        s.send(true, PSH | ACK, b"PORT 192,168,1,10,156,64\r\n");
        if case == "remembered" {
            // The command passing the helper hook, nf_conntrack's entry rewritten.
            let cmd = s.packet(true, PSH | ACK, b"NOOP\r\n");
            let p = Shifted(&cmd, Some(0), false);
            let pre = ctx(Hook::PreRouting, L3::Ipv4, 0x66, s.now, HZ);
            crate::host_ct::run_hook(&ct, HookRole::Track, &Shifted(&cmd, None, false), &pre);
            let post = ctx(Hook::PostRouting, L3::Ipv4, 0x66, s.now, HZ);
            crate::host_ct::run_hook(&ct, HookRole::Helper, &p, &post);
            assert_eq!(ct.seqadj(&s.master()).map(|a| a[0].offset_after), Some(4));
        }
        let invalid = ct.stat(Stat::Invalid);
        s.seq[0] = s.seq[0].wrapping_add(4);
        let reply = s.packet(false, PSH | ACK, b"200 ok\r\n");
        let p = Shifted(&reply, (case == "live").then_some(1), false);
        let c = ctx(Hook::PreRouting, L3::Ipv4, 0x77, s.now + 1, HZ);
        crate::host_ct::run_hook(&ct, HookRole::Track, &p, &c);
        let counted = ct.stat(Stat::Invalid) - invalid;
        assert_eq!(counted, u32::from(case == "none"), "{case}");
    }
}

#[test]
fn a_rewrite_nf_nat_ftp_will_make_is_expected_before_nf_conntrack_records_it() {
    // The control connection is translated to 10.100.200.250, so nf_nat_ftp rewrites the
    // client's "192,168,1,10,156,64" as "10,100,200,250,156,64", 2 bytes longer. The server's
    // acknowledgement of it comes before nf_conntrack has shown any adjustment to us.
    let ct = ct();
    let mut s = Session::new(&ct, false, 40000, 21);
    s.open();
    let master = s.master();
    let snat = ports_tuple(
        L3::Ipv4,
        IPPROTO_TCP,
        addr4(B4),
        addr4([10, 100, 200, 250]),
        21,
        40000,
    );
    ct.set_reply(&master, &snat.key(), 0);
    let port = s.packet(true, PSH | ACK, b"PORT 192,168,1,10,156,64\r\n");
    let pre = ctx(Hook::PreRouting, L3::Ipv4, 0x55, s.now, HZ);
    crate::host_ct::run_hook(&ct, HookRole::Track, &Shifted(&port, None, true), &pre);
    let post = ctx(Hook::PostRouting, L3::Ipv4, 0x55, s.now, HZ);
    crate::host_ct::run_hook(&ct, HookRole::Helper, &Shifted(&port, None, true), &post);
    let adj = ct.seqadj(&master).expect("adjustment expected");
    assert_eq!((adj[0].offset_before, adj[0].offset_after), (0, 2));
    assert_eq!(adj[1], Default::default());
    let invalid = ct.stat(Stat::Invalid);
    s.seq[0] = s.seq[0].wrapping_add(2);
    let reply = s.packet(false, PSH | ACK, b"200 ok\r\n");
    let c = ctx(Hook::PreRouting, L3::Ipv4, 0x56, s.now + 1, HZ);
    crate::host_ct::run_hook(&ct, HookRole::Track, &Shifted(&reply, None, false), &c);
    assert_eq!(
        ct.stat(Stat::Invalid),
        invalid,
        "the acknowledgement is in window"
    );
}

#[test]
fn nf_nat_ftp_text_lengths() {
    use crate::proto::helper::nat_ftp_len;
    use crate::proto::helper_ftp::FtpType;
    let v4 = addr4([10, 78, 2, 100]);
    assert_eq!(
        nat_ftp_len(FtpType::Port, L3::Ipv4, &v4, 40021),
        "10,78,2,100,156,85".len()
    );
    assert_eq!(
        nat_ftp_len(FtpType::Eprt, L3::Ipv4, &v4, 40021),
        "|1|10.78.2.100|40021|".len()
    );
    assert_eq!(
        nat_ftp_len(FtpType::Eprt, L3::Ipv6, &Addr(B6), 40021),
        "|2|fd78:0002:0000:0000:0000:0000:0000:0001|40021|".len()
    );
    assert_eq!(
        nat_ftp_len(FtpType::Epsv, L3::Ipv6, &Addr(B6), 7),
        "|||7|".len()
    );
}
