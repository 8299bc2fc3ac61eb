// SPDX-License-Identifier: GPL-2.0

//! Tests of the GRE tracker (`src/proto/proto_gre.rs`) against Linux 6.12's
//! `nf_conntrack_gre_packet`: the timeouts before and after a reply, assurance, the keys of
//! enhanced GRE in the tuple, and whole exchanges through the pipeline (`host/ct.rs`).

use crate::host_ct::{receive, HostCt};
use crate::pkt::{Ipv4, Ipv6, A4, A6, B4, B6};
use crate::proto::conn::{Timeouts, IPS_ASSURED, IPS_CONFIRMED, IPS_NAT_CLASH, IPS_SEEN_REPLY};
use crate::proto::l4proto::{self, L4State, Settings};
use crate::proto::pipeline::{Entry, Verdict};
use crate::proto::proc_line::L4Info;
use crate::proto::proto_gre::{gre_packet, GreState};
use crate::proto::stat::Stat;
use crate::proto::tuple::{Dir, L3, L4};

const HZ: u32 = 250;
const ACCEPT: (Verdict, Verdict) = (Verdict::Accept, Verdict::Accept);

/// A GRE version 0 header (no key) and a payload.
fn gre0() -> Vec<u8> {
    vec![0x00, 0x00, 0x08, 0x00, 0x45, 0, 0, 0]
}

/// An enhanced GRE (version 1, PPTP) header with `call_id`, key bit set, as PPTP sends it.
fn gre1(call_id: u16) -> Vec<u8> {
    let mut h = vec![0x20, 0x01, 0x88, 0x0b, 0x00, 0x00];
    h.extend_from_slice(&call_id.to_be_bytes());
    h
}

#[test]
fn timeouts_and_assurance_as_6_12() {
    let st = GreState::new(&Timeouts::defaults());
    assert_eq!(
        st,
        GreState {
            timeout: 30,
            stream_timeout: 180
        }
    );
    let a = gre_packet(&st, 0, HZ);
    assert_eq!((a.refresh, a.set_assured), (Some(30 * HZ), false));
    let a = gre_packet(&st, IPS_CONFIRMED, HZ);
    assert_eq!((a.refresh, a.set_assured), (Some(30 * HZ), false));
    let a = gre_packet(&st, IPS_CONFIRMED | IPS_SEEN_REPLY, HZ);
    assert_eq!((a.refresh, a.set_assured), (Some(180 * HZ), true));
    // A clash loser lives on, never assured.
    let a = gre_packet(&st, IPS_CONFIRMED | IPS_SEEN_REPLY | IPS_NAT_CLASH, HZ);
    assert_eq!((a.refresh, a.set_assured), (Some(180 * HZ), false));
}

#[test]
fn grev0_exchange_through_the_pipeline() {
    let ct = HostCt::with(Settings::defaults());
    let out = Ipv4::new(47, A4, B4).build(&gre0());
    let back = Ipv4::new(47, B4, A4).build(&gre0());
    assert_eq!(receive(&ct, &out, L3::Ipv4, 1000, HZ), ACCEPT);
    let e = ct.table.borrow()[0].clone();
    let orig = e.tuple(Dir::Original).expect("tuple");
    assert_eq!(
        orig.l4,
        L4::Gre {
            src_key: 0,
            dst_key: 0
        }
    );
    assert_eq!(e.timeout(), 1000 + 30 * HZ);
    assert_eq!(
        l4proto::print(47, &e.l4()),
        L4Info::Gre {
            timeout: 30,
            stream_timeout: 180
        }
    );
    // Out again: still unreplied.
    assert_eq!(receive(&ct, &out, L3::Ipv4, 1100, HZ), ACCEPT);
    assert_eq!(e.timeout(), 1100 + 30 * HZ);
    assert_eq!(e.status() & IPS_ASSURED, 0);
    // The reply makes it a stream: 180 s, and assured by the next packet.
    assert_eq!(receive(&ct, &back, L3::Ipv4, 1200, HZ), ACCEPT);
    assert_eq!(e.status() & IPS_SEEN_REPLY, IPS_SEEN_REPLY);
    assert_eq!(e.timeout(), 1200 + 30 * HZ);
    assert_eq!(receive(&ct, &out, L3::Ipv4, 1300, HZ), ACCEPT);
    assert_eq!(e.timeout(), 1300 + 180 * HZ);
    assert_eq!(e.status() & IPS_ASSURED, IPS_ASSURED);
    assert_eq!(ct.table.borrow().len(), 1);
    assert_eq!(ct.stat(Stat::Invalid), 0);
}

#[test]
fn pptp_gre_is_keyed_by_call_id() {
    let ct = HostCt::with(Settings::defaults());
    // Each side sends with its peer's call id: without the PPTP helper's keymap (no control
    // connection seen), the two directions are two entries, as in nf_conntrack.
    let out = Ipv6::new(47, A6, B6).build(&gre1(0x1234));
    let back = Ipv6::new(47, B6, A6).build(&gre1(0x4321));
    assert_eq!(receive(&ct, &out, L3::Ipv6, 1000, HZ), ACCEPT);
    assert_eq!(receive(&ct, &back, L3::Ipv6, 1000, HZ), ACCEPT);
    let table = ct.table.borrow();
    assert_eq!(table.len(), 2);
    let keys: Vec<_> = table
        .iter()
        .map(|e| {
            let t = e.tuple(Dir::Original).expect("tuple");
            let r = e.tuple(Dir::Reply).expect("tuple");
            (t.l4, r.l4)
        })
        .collect();
    assert_eq!(
        keys[0],
        (
            L4::Gre {
                src_key: 0,
                dst_key: 0x1234
            },
            L4::Gre {
                src_key: 0x1234,
                dst_key: 0
            }
        )
    );
    assert_eq!(
        keys[1].0,
        L4::Gre {
            src_key: 0,
            dst_key: 0x4321
        }
    );
    // Enhanced GRE that is not PPP cannot be tracked: invalid.
    drop(table);
    let mut other = gre1(7);
    other[2..4].copy_from_slice(&0x0800u16.to_be_bytes());
    let p = Ipv4::new(47, A4, B4).build(&other);
    assert_eq!(receive(&ct, &p, L3::Ipv4, 1000, HZ), ACCEPT);
    assert_eq!(ct.stat(Stat::Invalid), 1);
    assert_eq!(ct.table.borrow().len(), 2);
}

#[test]
fn gre_settings_reach_the_tracker() {
    let ct = HostCt::with(Settings {
        timeouts: Timeouts {
            gre_unreplied: 5,
            gre_replied: 50,
            ..Timeouts::defaults()
        },
        ..Settings::defaults()
    });
    let out = Ipv4::new(47, A4, B4).build(&gre0());
    receive(&ct, &out, L3::Ipv4, 1000, HZ);
    let e = ct.table.borrow()[0].clone();
    assert_eq!(e.timeout(), 1000 + 5 * HZ);
    assert_eq!(
        e.l4(),
        L4State::Gre(GreState {
            timeout: 5,
            stream_timeout: 50
        })
    );
}
