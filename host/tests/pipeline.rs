// SPDX-License-Identifier: GPL-2.0

//! Tests of the pipeline (`src/proto/pipeline.rs`) and the tracker registry
//! (`src/proto/l4proto.rs`): real packets through `track` and `confirm` on a host table
//! (`host/ct.rs`), for what the module does around the trackers: UDP flows becoming streams,
//! ICMP errors related or counted, invalid packets counted and passed, the hand-off under
//! NAT and to another flow at a reused address, loopback, the table limit, clashes.

use crate::host_ct::{ctx, l4_csum_ok, receive, HostCt, Pkt};
use crate::pkt::{echo, icmp, udp, Ipv4, A4, B4};
use crate::proto::conn::{Timeouts, IPS_ASSURED, IPS_CONFIRMED, IPS_SEEN_REPLY};
use crate::proto::handoff::NfView;
use crate::proto::l4proto::{self, L4Small, L4State, Settings};
use crate::proto::pipeline::{self, Conntrack, Entry, Hook, HookRole, Verdict};
use crate::proto::proc_line::L4Info;
use crate::proto::proto_gre::GreState;
use crate::proto::proto_tcp::{TcpConn, TcpConntrack};
use crate::proto::proto_udp::UdpState;
use crate::proto::stat::Stat;
use crate::proto::tuple::{self, Dir, Tuple, L3};

const HZ: u32 = 250;
const ACCEPT: (Verdict, Verdict) = (Verdict::Accept, Verdict::Accept);

fn udp4(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
    Ipv4::new(17, src, dst).build(&udp(sport, dport, b"data"))
}

fn tuple_of(p: &[u8]) -> Tuple {
    tuple::parse_ipv4(p, 0).expect("IPv4 packet").tuple
}

fn ct() -> HostCt {
    HostCt::with(Settings::defaults())
}

#[test]
fn udp_flow_becomes_a_stream_after_two_seconds() {
    let ct = ct();
    let req = udp4(A4, 5000, B4, 53);
    let rep = udp4(B4, 53, A4, 5000);
    let t0 = 1000;
    assert_eq!(receive(&ct, &req, L3::Ipv4, t0, HZ), ACCEPT);
    let e = ct.table.borrow()[0].clone();
    assert_eq!(e.status(), IPS_CONFIRMED);
    // Relative 30 s made absolute at confirmation.
    assert_eq!(e.timeout(), t0 + 30 * HZ);
    // The tracker's state: stream 2 s after the first packet.
    assert_eq!(
        e.l4(),
        L4State::Udp(UdpState {
            stream_ts: u64::from(t0 + 2 * HZ)
        })
    );
    assert_eq!(receive(&ct, &rep, L3::Ipv4, t0 + HZ, HZ), ACCEPT);
    assert_eq!(e.status(), IPS_CONFIRMED | IPS_SEEN_REPLY);
    assert_eq!(e.timeout(), t0 + HZ + 30 * HZ);
    // After 2 s: a stream, assured, 120 s.
    let t = t0 + 3 * HZ;
    assert_eq!(receive(&ct, &req, L3::Ipv4, t, HZ), ACCEPT);
    assert_eq!(e.status() & IPS_ASSURED, IPS_ASSURED);
    assert_eq!(e.timeout(), t + 120 * HZ);
    // Assured: still 120 s (the state is no longer read, and need not be).
    assert_eq!(receive(&ct, &rep, L3::Ipv4, t + HZ, HZ), ACCEPT);
    assert_eq!(e.timeout(), t + HZ + 120 * HZ);
    assert_eq!(ct.table.borrow().len(), 1);
    assert_eq!(ct.stat(Stat::Insert), 1);
    assert_eq!(ct.stat(Stat::Invalid), 0);
}

#[test]
fn invalid_packets_are_counted_and_passed() {
    let ct = ct();
    // UDP length beyond the packet.
    let mut bad = udp4(A4, 5000, B4, 53);
    bad[25] = 100;
    assert_eq!(receive(&ct, &bad, L3::Ipv4, 1000, HZ), ACCEPT);
    // A corrupted UDP checksum, received.
    let mut sum = udp4(A4, 5001, B4, 53);
    sum[26] ^= 0x55;
    assert_eq!(receive(&ct, &sum, L3::Ipv4, 1000, HZ), ACCEPT);
    // Not even IPv4.
    assert_eq!(receive(&ct, &[0x45, 0, 0], L3::Ipv4, 1000, HZ), ACCEPT);
    assert_eq!(ct.stat(Stat::Invalid), 3);
    assert!(ct.table.borrow().is_empty() && ct.unconfirmed.borrow().is_empty());
    // A bad checksum sent from this host (LOCAL_OUT) is not verified, as in 6.12.
    let p = pkt_of(&sum);
    let c = ctx(Hook::LocalOut, L3::Ipv4, 7, 1000, HZ);
    assert_eq!(
        crate::host_ct::run_hook(&ct, HookRole::Track, &p, &c),
        Verdict::Accept
    );
    assert_eq!(ct.unconfirmed.borrow().len(), 1);
}

fn pkt_of(bytes: &[u8]) -> Pkt<'_> {
    Pkt { bytes, nf: None }
}

#[test]
fn icmp_errors_relate_or_count() {
    let ct = ct();
    let req = udp4(A4, 5000, B4, 53);
    assert_eq!(receive(&ct, &req, L3::Ipv4, 1000, HZ), ACCEPT);
    // Port unreachable from B quoting A's datagram: related, no entry.
    let quoted = &req[..28];
    let err = Ipv4::new(1, B4, A4).build(&icmp(3, 3, [0; 4], quoted));
    assert_eq!(receive(&ct, &err, L3::Ipv4, 1100, HZ), ACCEPT);
    assert_eq!(ct.stat(Stat::IcmpError), 0);
    assert_eq!(ct.table.borrow().len(), 1);
    // Quoting a flow nobody tracks: counted in icmp_error.
    let other = udp4(A4, 6000, B4, 53);
    let err = Ipv4::new(1, B4, A4).build(&icmp(3, 3, [0; 4], &other[..28]));
    assert_eq!(receive(&ct, &err, L3::Ipv4, 1100, HZ), ACCEPT);
    assert_eq!(ct.stat(Stat::IcmpError), 1);
    // An echo request is tracked; its reply finds it.
    let ping = Ipv4::new(1, A4, B4).build(&echo(8, 77, 1, b"x"));
    let pong = Ipv4::new(1, B4, A4).build(&echo(0, 77, 1, b"x"));
    assert_eq!(receive(&ct, &ping, L3::Ipv4, 1200, HZ), ACCEPT);
    assert_eq!(receive(&ct, &pong, L3::Ipv4, 1210, HZ), ACCEPT);
    assert_eq!(ct.table.borrow().len(), 2);
    let e = ct.table.borrow()[1].clone();
    assert_eq!(e.status(), IPS_CONFIRMED | IPS_SEEN_REPLY);
    assert_eq!(e.timeout(), 1210 + 30 * HZ);
}

#[test]
fn other_protocols_are_tracked_generically() {
    let ct = ct();
    let p = Ipv4::new(99, A4, B4).build(&[0u8; 16]);
    assert_eq!(receive(&ct, &p, L3::Ipv4, 1000, HZ), ACCEPT);
    assert_eq!(ct.table.borrow()[0].timeout(), 1000 + 600 * HZ);
    assert_eq!(ct.stat(Stat::Invalid), 0);
}

#[test]
fn snat_hands_the_translated_reply_to_the_entry() {
    let ct = ct();
    let out = udp4(A4, 5000, B4, 53);
    let orig = tuple_of(&out);
    // nf_nat rewrote the source to 203.0.113.1:61000 between the hooks.
    let nat_src = [203, 0, 113, 1];
    let translated = udp4(nat_src, 61000, B4, 53);
    let reply = tuple_of(&udp4(B4, 53, nat_src, 61000));
    let nf = NfView {
        this_dir: orig,
        other_dir: reply,
    };
    let cookie = 0x1000;
    let c = ctx(Hook::PreRouting, L3::Ipv4, cookie, 1000, HZ);
    assert_eq!(
        crate::host_ct::run_hook(&ct, HookRole::Track, &pkt_of(&out), &c),
        Verdict::Accept
    );
    let c = ctx(Hook::PostRouting, L3::Ipv4, cookie, 1000, HZ);
    let p = Pkt {
        bytes: &translated,
        nf: Some(nf),
    };
    assert_eq!(
        crate::host_ct::run_hook(&ct, HookRole::Confirm, &p, &c),
        Verdict::Accept
    );
    let e = ct.table.borrow()[0].clone();
    assert_eq!(e.tuple(Dir::Original), Some(orig));
    assert_eq!(e.tuple(Dir::Reply), Some(reply));
    // The translated reply finds it.
    let back = udp4(B4, 53, nat_src, 61000);
    assert_eq!(receive(&ct, &back, L3::Ipv4, 1100, HZ), ACCEPT);
    assert_eq!(e.status() & IPS_SEEN_REPLY, IPS_SEEN_REPLY);
}

#[test]
fn another_flow_at_a_reused_address_reaps_the_orphan() {
    let ct = ct();
    let a = udp4(A4, 5000, B4, 53);
    let b = udp4(A4, 5001, B4, 53);
    let cookie = 0x2000;
    let pre = ctx(Hook::PreRouting, L3::Ipv4, cookie, 1000, HZ);
    crate::host_ct::run_hook(&ct, HookRole::Track, &pkt_of(&a), &pre);
    assert_eq!(ct.unconfirmed.borrow().len(), 1);
    // `a` was dropped between the hooks; `b` now has its skb's address and is confirmed
    // at LOCAL_IN without having been tracked: `a`'s entry is reaped, nothing confirmed.
    let post = ctx(Hook::LocalIn, L3::Ipv4, cookie, 1000, HZ);
    crate::host_ct::run_hook(&ct, HookRole::Confirm, &pkt_of(&b), &post);
    assert!(ct.unconfirmed.borrow().is_empty() && ct.table.borrow().is_empty());
    assert_eq!(ct.stat(Stat::UnconfirmedReaped), 1);
}

#[test]
fn loopback_packets_are_tracked_once() {
    let ct = ct();
    let p = udp4([127, 0, 0, 1], 5000, [127, 0, 0, 1], 53);
    let cookie = 0x3000;
    let out = ctx(Hook::LocalOut, L3::Ipv4, cookie, 1000, HZ);
    crate::host_ct::run_hook(&ct, HookRole::Track, &pkt_of(&p), &out);
    let mut post = ctx(Hook::PostRouting, L3::Ipv4, cookie, 1000, HZ);
    post.out_loopback = true;
    crate::host_ct::run_hook(&ct, HookRole::Confirm, &pkt_of(&p), &post);
    assert_eq!(ct.table.borrow().len(), 1);
    // Back in on lo: skipped (the entry is not refreshed).
    let mut pre = ctx(Hook::PreRouting, L3::Ipv4, cookie, 1200, HZ);
    pre.in_loopback = true;
    crate::host_ct::run_hook(&ct, HookRole::Track, &pkt_of(&p), &pre);
    assert_eq!(ct.table.borrow()[0].timeout(), 1000 + 30 * HZ);
    assert!(ct.unconfirmed.borrow().is_empty());
    // The same packet again on lo without having left (a packet socket): tracked.
    pre.clock = ctx(Hook::PreRouting, L3::Ipv4, cookie, 1500, HZ).clock;
    crate::host_ct::run_hook(&ct, HookRole::Track, &pkt_of(&p), &pre);
    assert_eq!(ct.table.borrow()[0].timeout(), 1500 + 30 * HZ);
}

#[test]
fn full_table_evicts_unassured_then_drops() {
    let mut ct = ct();
    ct.max = 2;
    for sport in [1, 2] {
        assert_eq!(
            receive(&ct, &udp4(A4, sport, B4, 53), L3::Ipv4, 1000, HZ),
            ACCEPT
        );
    }
    // Full: the unassured entries make room, one at a time.
    assert_eq!(
        receive(&ct, &udp4(A4, 3, B4, 53), L3::Ipv4, 1000, HZ),
        ACCEPT
    );
    assert_eq!(ct.stat(Stat::EarlyDrop), 1);
    assert_eq!(ct.table.borrow().len(), 2);
    // Assure both: now nothing can go and a new flow is dropped.
    for e in ct.table.borrow().iter() {
        e.set_status(IPS_ASSURED);
    }
    let v = receive(&ct, &udp4(A4, 4, B4, 53), L3::Ipv4, 1000, HZ);
    assert_eq!(v.0, Verdict::Drop);
    assert_eq!((ct.stat(Stat::Drop), ct.full.get()), (1, 1));
}

#[test]
fn clashes_merge_only_where_the_protocol_allows() {
    // Two packets of one new flow tracked before either is confirmed.
    for (proto, merged) in [(17u8, true), (1, false)] {
        let ct = ct();
        let payload = if proto == 17 {
            udp(5000, 53, b"x")
        } else {
            echo(8, 9, 1, b"x")
        };
        let p = Ipv4::new(proto, A4, B4).build(&payload);
        let (c1, c2) = (0x10, 0x20);
        for c in [c1, c2] {
            let pre = ctx(Hook::PreRouting, L3::Ipv4, c, 1000, HZ);
            crate::host_ct::run_hook(&ct, HookRole::Track, &pkt_of(&p), &pre);
        }
        assert_eq!(ct.unconfirmed.borrow().len(), 2);
        let mut verdicts = Vec::new();
        for c in [c1, c2] {
            let post = ctx(Hook::LocalIn, L3::Ipv4, c, 1000, HZ);
            verdicts.push(crate::host_ct::run_hook(
                &ct,
                HookRole::Confirm,
                &pkt_of(&p),
                &post,
            ));
        }
        assert_eq!(ct.table.borrow().len(), 1);
        if merged {
            assert_eq!(verdicts, [Verdict::Accept, Verdict::Accept]);
            assert_eq!(ct.stat(Stat::ClashResolve), 1);
        } else {
            assert_eq!(verdicts, [Verdict::Accept, Verdict::Drop]);
            assert_eq!(ct.stat(Stat::InsertFailed), 1);
        }
    }
}

#[test]
fn settings_reach_the_trackers() {
    let ct = HostCt::with(Settings {
        timeouts: Timeouts {
            udp_unreplied: 7,
            ..Timeouts::defaults()
        },
        ..Settings::defaults()
    });
    receive(&ct, &udp4(A4, 1, B4, 53), L3::Ipv4, 1000, HZ);
    assert_eq!(ct.table.borrow()[0].timeout(), 1000 + 7 * HZ);
}

#[test]
fn registry_matches_6_12() {
    // allow_clash: generic, UDP, UDP-Lite (and GRE, not tracked yet); not TCP, SCTP nor
    // ICMP.
    for (proto, clash) in [
        (6, false),
        (17, true),
        (136, true),
        (1, false),
        (58, false),
        (132, false),
        (99, true),
    ] {
        assert_eq!(l4proto::allow_clash(proto), clash, "proto {proto}");
    }
    // TCP (and SCTP: see proto_sctp.rs) have state names, and can drop assured entries early
    // while closing.
    let mut tcp = TcpConn::default();
    for (state, early) in [
        (TcpConntrack::Established, false),
        (TcpConntrack::SynSent, false),
        (TcpConntrack::FinWait, true),
        (TcpConntrack::TimeWait, true),
        (TcpConntrack::Close, true),
        (TcpConntrack::LastAck, true),
    ] {
        tcp.state = state;
        let st = L4State::Tcp(tcp);
        assert_eq!(l4proto::print(6, &st), L4Info::State(state.name()));
        assert_eq!(l4proto::can_early_drop(6, &st), early);
    }
    let udp = L4State::Udp(UdpState::default());
    assert_eq!(l4proto::print(17, &udp), L4Info::None);
    assert!(!l4proto::can_early_drop(17, &udp));
    assert!(!l4proto::can_early_drop(132, &L4State::None));
}

#[test]
fn small_states_fit_the_small_form_and_large_ones_do_not() {
    let gre = GreState {
        timeout: 30,
        stream_timeout: 180,
    };
    for st in [
        L4State::None,
        L4State::Udp(UdpState {
            stream_ts: u64::MAX - 1,
        }),
        L4State::Gre(gre),
    ] {
        let small = L4Small::try_from(st).expect("a small state fits");
        assert_eq!(L4State::from(small), st);
    }
    let tcp = L4State::Tcp(TcpConn::default());
    assert_eq!(L4Small::try_from(tcp), Err(tcp));
    // What lets entries without a large state be a quarter smaller.
    assert!(core::mem::size_of::<L4Small>() <= 16);
    assert!(core::mem::size_of::<L4State>() >= 48);
}

#[test]
fn checksums_are_verified_for_real() {
    let p = udp4(A4, 5000, B4, 53);
    assert!(l4_csum_ok(&p, false, 20, 17, None));
    let mut bad = p.clone();
    bad[30] ^= 1;
    assert!(!l4_csum_ok(&bad, false, 20, 17, None));
    let _ = ct().settings();
}

#[test]
fn helper_and_confirm_hooks_skip_only_what_has_nothing_to_do() {
    let ct = ct();
    let req = udp4(A4, 5000, B4, 53);
    let p = Pkt {
        bytes: &req,
        nf: None,
    };
    let cookie = req.as_ptr() as usize;
    let idle = |role, hook, out_loopback: bool| {
        pipeline::hook_idle(&ct, role, hook, cookie, || out_loopback)
    };
    // The tracking hook always reads the packet.
    assert!(!idle(HookRole::Track, Hook::PreRouting, false));
    assert_eq!(ct.stat(Stat::InPreRouting), 0);
    // No entry has a helper, none waits: the others have nothing to do, and count the call.
    assert!(idle(HookRole::Helper, Hook::LocalIn, false));
    assert!(idle(HookRole::Confirm, Hook::LocalIn, false));
    assert_eq!(ct.stat(Stat::HelperLocalIn), 1);
    assert_eq!(ct.stat(Stat::ConfirmLocalIn), 1);
    // Out through loopback, the confirm hook marks the packet: not skipped, nothing counted.
    assert!(!idle(HookRole::Confirm, Hook::PostRouting, true));
    assert_eq!(ct.stat(Stat::ConfirmPostRouting), 0);
    // A new entry waits for this packet: the confirm hook must run.
    let c = ctx(Hook::PreRouting, L3::Ipv4, cookie, 1000, HZ);
    assert_eq!(
        pipeline::hook(&ct, HookRole::Track, &p, &c),
        Verdict::Accept
    );
    assert_eq!(ct.unconfirmed.borrow().len(), 1);
    assert!(!idle(HookRole::Confirm, Hook::LocalIn, false));
    assert_eq!(ct.stat(Stat::ConfirmLocalIn), 1);
    // An FTP control connection has a helper: the helper hook must run.
    let ftp = HostCt::with(Settings::defaults());
    let syn = Ipv4::new(6, A4, B4).build(&crate::pkt::Tcp::new(40000, 21, 0x02).build(b""));
    assert_eq!(receive(&ftp, &syn, L3::Ipv4, 1000, HZ), ACCEPT);
    assert!(ftp.helped() > 0);
    assert!(!pipeline::hook_idle(
        &ftp,
        HookRole::Helper,
        Hook::LocalIn,
        0,
        || false
    ));
}
