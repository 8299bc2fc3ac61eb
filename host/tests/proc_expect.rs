// SPDX-License-Identifier: GPL-2.0

//! Tests of `src/proto/proc_expect.rs` against Linux 6.12's `exp_seq_show`: the timeout
//! column, the tuple, the flags and the helper and policy names.

use crate::pkt::{A4, A6, B4, B6};
use crate::proto::expect::*;
use crate::proto::proc_expect::*;
use crate::proto::tuple::{Addr, Tuple, IPPROTO_TCP, IPPROTO_UDP, L3, L4};

const HZ: u32 = 250;

fn line(e: &ExpectSnapshot<'_>) -> String {
    let mut s = String::new();
    write_expect_line(&mut s, e).unwrap();
    s
}

/// The expectation of an active FTP data connection: the server to the client's port.
fn ftp4() -> ExpectSnapshot<'static> {
    ExpectSnapshot {
        tuple: Tuple {
            l3: L3::Ipv4,
            proto: IPPROTO_TCP,
            src: Addr::v4(B4),
            dst: Addr::v4(A4),
            l4: L4::Ports { src: 0, dst: 1025 },
        },
        secs: 299,
        flags: 0,
        helper: Some(&"ftp"),
        policy: "",
    }
}

#[test]
fn ipv4_ftp_expectation() {
    assert_eq!(
        line(&ftp4()),
        "299 l3proto = 2 proto=6 src=10.0.0.1 dst=192.168.1.10 sport=0 dport=1025 ftp\n"
    );
}

#[test]
fn ipv6_expectation_prints_every_group() {
    let e = ExpectSnapshot {
        tuple: Tuple {
            l3: L3::Ipv6,
            proto: IPPROTO_TCP,
            src: Addr(B6),
            dst: Addr(A6),
            l4: L4::Ports { src: 0, dst: 6446 },
        },
        ..ftp4()
    };
    assert_eq!(
        line(&e),
        "299 l3proto = 10 proto=6 \
         src=2001:0db8:0000:0001:0000:0000:00ab:cdef \
         dst=2001:0db8:0000:0000:0000:0000:0000:0001 sport=0 dport=6446 ftp\n"
    );
}

#[test]
fn flags_and_policy_names() {
    let tail = |flags: u32, helper: Option<&'static str>, policy: &'static str| {
        let helper = helper.as_ref().map(|h| h as &dyn core::fmt::Display);
        let s = line(&ExpectSnapshot {
            flags,
            helper,
            policy,
            ..ftp4()
        });
        let (_, t) = s.split_once("dport=1025 ").unwrap();
        t.to_owned()
    };
    assert_eq!(tail(0, Some("ftp"), ""), "ftp\n");
    assert_eq!(
        tail(NF_CT_EXPECT_PERMANENT, Some("ftp"), ""),
        "PERMANENT ftp\n"
    );
    assert_eq!(
        tail(NF_CT_EXPECT_INACTIVE, Some("ftp"), ""),
        "INACTIVE ftp\n"
    );
    assert_eq!(
        tail(NF_CT_EXPECT_USERSPACE, Some("sip"), "audio"),
        "USERSPACE sip/audio\n"
    );
    assert_eq!(
        tail(
            NF_CT_EXPECT_PERMANENT | NF_CT_EXPECT_INACTIVE | NF_CT_EXPECT_USERSPACE,
            Some("sip"),
            "signalling"
        ),
        "PERMANENT,INACTIVE,USERSPACE sip/signalling\n"
    );
    assert_eq!(
        tail(
            NF_CT_EXPECT_PERMANENT | NF_CT_EXPECT_USERSPACE,
            Some("h245"),
            ""
        ),
        "PERMANENT,USERSPACE h245\n"
    );
    assert_eq!(
        tail(NF_CT_EXPECT_INACTIVE | NF_CT_EXPECT_USERSPACE, None, "x"),
        "INACTIVE,USERSPACE\n"
    );
    // Without a helper nothing follows the flags; without either, the tuple's space ends
    // the line.
    assert_eq!(tail(0, None, ""), "\n");
    assert_eq!(tail(0, None, "audio"), "\n");
    // The space before the helper depends on the flags word, not on what was printed.
    assert_eq!(tail(0x10, Some("ftp"), ""), " ftp\n");
    assert_eq!(
        (
            NF_CT_EXPECT_PERMANENT,
            NF_CT_EXPECT_INACTIVE,
            NF_CT_EXPECT_USERSPACE,
            NF_CT_EXPECT_DEAD
        ),
        (1, 2, 4, 8)
    );
}

#[test]
fn udp_expectation_with_a_fixed_source_port() {
    let e = ExpectSnapshot {
        tuple: Tuple {
            l3: L3::Ipv4,
            proto: IPPROTO_UDP,
            src: Addr::v4(B4),
            dst: Addr::v4(A4),
            l4: L4::Ports {
                src: 5060,
                dst: 49170,
            },
        },
        secs: 179,
        flags: 0,
        helper: Some(&"sip"),
        policy: "audio",
    };
    assert_eq!(
        line(&e),
        "179 l3proto = 2 proto=17 src=10.0.0.1 dst=192.168.1.10 sport=5060 dport=49170 sip/audio\n"
    );
}

#[test]
fn timeouts() {
    let now = 0xffff_ff00u32;
    // 300 s from now, across the jiffies wrap, one jiffy gone.
    let t = now.wrapping_add(300 * HZ);
    assert_eq!(expect_secs(t, now.wrapping_add(1), HZ), 299);
    assert_eq!(expect_secs(t, now, HZ), 300);
    // Toward zero, as C's division.
    assert_eq!(expect_secs(now.wrapping_sub(249), now, HZ), 0);
    assert_eq!(expect_secs(now.wrapping_sub(251), now, HZ), -1);
    assert_eq!(expect_secs(now, now, HZ), 0);
    assert_eq!(expect_secs(now.wrapping_add(0x8000_0000), now, 1), i32::MIN);
    assert_eq!(expect_secs(now.wrapping_add(5), now, 0), 0);
    // A line shows 0 for anything not positive.
    for secs in [0, -1, i32::MIN] {
        assert!(line(&ExpectSnapshot { secs, ..ftp4() }).starts_with("0 l3proto = 2 "));
    }
    assert!(line(&ExpectSnapshot { secs: 1, ..ftp4() }).starts_with("1 l3proto"));
    assert!(line(&ExpectSnapshot {
        secs: i32::MAX,
        ..ftp4()
    })
    .starts_with("2147483647 l3proto"));
}

#[test]
fn expired_expectations_have_no_line() {
    let now = 1000;
    assert!(expect_is_expired(0, now, now));
    assert!(expect_is_expired(0, now - 1, now));
    assert!(!expect_is_expired(0, now + 1, now));
    assert!(expect_is_expired(NF_CT_EXPECT_DEAD, now + 100, now));
    assert!(!expect_is_expired(NF_CT_EXPECT_PERMANENT, now + 100, now));
    // Across the wrap.
    assert!(!expect_is_expired(5, 5, u32::MAX));
    assert!(expect_is_expired(0, u32::MAX, 5));
}
