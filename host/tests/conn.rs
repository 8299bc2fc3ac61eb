// SPDX-License-Identifier: GPL-2.0

//! Tests of `src/conn.rs` against Linux 6.12: the uapi status bits and ctinfo values,
//! `resolve_normal_ct`'s ctinfo, the jiffies helpers across wrap-around and the refresh rules
//! of `__nf_ct_refresh_acct` and `__nf_conntrack_confirm`.

use crate::proto::conn::*;
use crate::proto::tuple::Dir;

/// The reference kernel's HZ (Debian's `CONFIG_HZ_250`).
const HZ: u32 = 250;

#[test]
fn status_bits_match_uapi() {
    // (bit number, mask) from include/uapi/linux/netfilter/nf_conntrack_common.h.
    let bits = [
        (0, IPS_EXPECTED),
        (1, IPS_SEEN_REPLY),
        (2, IPS_ASSURED),
        (3, IPS_CONFIRMED),
        (4, IPS_SRC_NAT),
        (5, IPS_DST_NAT),
        (6, IPS_SEQ_ADJUST),
        (7, IPS_SRC_NAT_DONE),
        (8, IPS_DST_NAT_DONE),
        (9, IPS_DYING),
        (10, IPS_FIXED_TIMEOUT),
        (11, IPS_TEMPLATE),
        (12, IPS_NAT_CLASH),
        (13, IPS_HELPER),
        (14, IPS_OFFLOAD),
        (15, IPS_HW_OFFLOAD),
    ];
    let mut all = 0u32;
    for (bit, mask) in bits {
        assert_eq!(mask, 1 << bit, "bit {bit}");
        all |= mask;
    }
    // Sixteen distinct bits, `__IPS_MAX_BIT` = 16.
    assert_eq!(all, 0xffff);
}

#[test]
fn ctinfo_values_match_uapi() {
    assert_eq!(CtInfo::Established as u8, 0);
    assert_eq!(CtInfo::Related as u8, 1);
    assert_eq!(CtInfo::New as u8, 2);
    assert_eq!(CtInfo::EstablishedReply as u8, 3);
    assert_eq!(CtInfo::RelatedReply as u8, 4);
}

#[test]
fn ctinfo_of_match_as_resolve_normal_ct() {
    // Reply direction: always ESTABLISHED_REPLY, whatever the bits.
    for status in [0, IPS_SEEN_REPLY, IPS_EXPECTED, IPS_CONFIRMED | IPS_ASSURED] {
        assert_eq!(
            CtInfo::of_match(Dir::Reply, status),
            CtInfo::EstablishedReply
        );
    }
    assert_eq!(CtInfo::of_match(Dir::Original, 0), CtInfo::New);
    assert_eq!(CtInfo::of_match(Dir::Original, IPS_CONFIRMED), CtInfo::New);
    assert_eq!(
        CtInfo::of_match(Dir::Original, IPS_EXPECTED),
        CtInfo::Related
    );
    assert_eq!(
        CtInfo::of_match(Dir::Original, IPS_SEEN_REPLY),
        CtInfo::Established
    );
    // SEEN_REPLY wins over EXPECTED: an expected connection that got its reply.
    assert_eq!(
        CtInfo::of_match(Dir::Original, IPS_SEEN_REPLY | IPS_EXPECTED),
        CtInfo::Established
    );
}

#[test]
fn ctinfo_related_and_direction() {
    assert_eq!(CtInfo::related(Dir::Original), CtInfo::Related);
    assert_eq!(CtInfo::related(Dir::Reply), CtInfo::RelatedReply);
    // CTINFO2DIR: >= IP_CT_IS_REPLY (3) is the reply direction.
    for (ci, dir) in [
        (CtInfo::Established, Dir::Original),
        (CtInfo::Related, Dir::Original),
        (CtInfo::New, Dir::Original),
        (CtInfo::EstablishedReply, Dir::Reply),
        (CtInfo::RelatedReply, Dir::Reply),
    ] {
        assert_eq!(ci.dir(), dir, "{ci:?}");
        assert_eq!(ci.dir() == Dir::Reply, ci as u8 >= 3);
    }
    // Only ESTABLISHED_REPLY sets SEEN_REPLY, not a related ICMP error in the reply direction.
    assert!(CtInfo::EstablishedReply.sets_seen_reply());
    for ci in [
        CtInfo::Established,
        CtInfo::Related,
        CtInfo::New,
        CtInfo::RelatedReply,
    ] {
        assert!(!ci.sets_seen_reply(), "{ci:?}");
    }
}

#[test]
fn default_timeouts_are_6_12s() {
    let t = Timeouts::defaults();
    assert_eq!(t.generic, 600);
    assert_eq!(t.udp_unreplied, 30);
    assert_eq!(t.udp_replied, 120);
    assert_eq!(t.icmp, 30);
    assert_eq!(t.icmpv6, 30);
    // tcp_timeouts[] of nf_conntrack_proto_tcp.c (2 MINS, 60 SECS, 5 DAYS, ...).
    assert_eq!(t.tcp_syn_sent, 2 * 60);
    assert_eq!(t.tcp_syn_recv, 60);
    assert_eq!(t.tcp_established, 5 * 24 * 60 * 60);
    assert_eq!(t.tcp_fin_wait, 2 * 60);
    assert_eq!(t.tcp_close_wait, 60);
    assert_eq!(t.tcp_last_ack, 30);
    assert_eq!(t.tcp_time_wait, 2 * 60);
    assert_eq!(t.tcp_close, 10);
    assert_eq!(t.tcp_syn_sent2, 2 * 60);
    assert_eq!(t.tcp_max_retrans, 5 * 60);
    assert_eq!(t.tcp_unacknowledged, 5 * 60);
    assert_eq!(Timeouts::default(), t);
    // Usable in a static initialiser.
    const T: Timeouts = Timeouts::defaults();
    assert_eq!(T, t);
}

#[test]
fn secs_to_jiffies_wraps_as_the_kernel_int() {
    assert_eq!(secs_to_jiffies(30, HZ), 7500);
    assert_eq!(secs_to_jiffies(600, 1000), 600_000);
    assert_eq!(secs_to_jiffies(0, HZ), 0);
    // A negative timeout, as the sysctl stores it: the jiffies 6.12 stores (`-5 * HZ`).
    assert_eq!(
        secs_to_jiffies(-5i32 as u32, HZ),
        (-5i32 * HZ as i32) as u32
    );
    // The largest the sysctls accept still fits an int.
    let max = i32::MAX as u32 / HZ;
    assert!(secs_to_jiffies(max, HZ) <= i32::MAX as u32);
}

#[test]
fn nfct_time_stamp_is_low_32_bits() {
    assert_eq!(nfct_time_stamp(0x1_2345_6789), 0x2345_6789);
    assert_eq!(nfct_time_stamp(u64::MAX), u32::MAX);
    // INITIAL_JIFFIES: (unsigned long)(unsigned int)(-300 * HZ).
    let initial = u64::from((-300i32 * HZ as i32) as u32);
    assert_eq!(nfct_time_stamp(initial), u32::MAX - 300 * HZ + 1);
}

#[test]
fn time_after_is_wrapping_signed() {
    assert!(time_after(2, 1));
    assert!(!time_after(1, 2));
    assert!(!time_after(5, 5));
    // Across the wrap: 3 is 8 ticks after u32::MAX - 4.
    assert!(time_after(3, u32::MAX - 4));
    assert!(!time_after(u32::MAX - 4, 3));
    // Half the circle away the sign flips; at exactly 2^31 each is "after" the other.
    assert!(time_after(0x7fff_ffff, 0));
    assert!(!time_after(0x8000_0001, 0));
    assert!(time_after(0, 0x8000_0001));
    assert!(time_after(0x8000_0000, 0) && time_after(0, 0x8000_0000));

    assert!(time_after_long(2, 1));
    assert!(!time_after_long(1, 1));
    assert!(time_after_long(3, u64::MAX - 4));
    // 64-bit jiffies: far beyond 2^32 ticks is still "after".
    assert!(time_after_long(1 << 40, 1));
}

#[test]
fn expiry_near_wrap() {
    // A clock 10 s before u32 wrap; a 30 s timeout ends 20 s after it.
    let now = u32::MAX - 10 * HZ + 1;
    let timeout = confirmed_timeout(30 * HZ, now);
    assert!(timeout < now, "the stamp wrapped");
    assert_eq!(expires(timeout, now), 30 * HZ);
    assert_eq!(expires_in_secs(timeout, now, HZ), 30);
    assert!(!is_expired(timeout, now));
    // Time passes across the wrap.
    let later = now.wrapping_add(29 * HZ + HZ / 2);
    assert_eq!(expires_in_secs(timeout, later, HZ), 0, "rounded down");
    assert_eq!(expires(timeout, later), HZ / 2);
    assert!(!is_expired(timeout, later));
    // Expired exactly at the timeout, and stays expired (no negative seconds).
    assert!(is_expired(timeout, timeout));
    assert_eq!(expires(timeout, timeout), 0);
    let after = timeout.wrapping_add(HZ * 5);
    assert!(is_expired(timeout, after));
    assert_eq!(expires_in_secs(timeout, after, HZ), 0);
}

#[test]
fn expires_rounds_down_and_clamps() {
    assert_eq!(expires_in_secs(1000 + 30 * HZ - 1, 1000, HZ), 29);
    assert_eq!(expires_in_secs(1000 + 30 * HZ, 1000, HZ), 30);
    assert_eq!(expires_in_secs(1000, 1000 + 1, HZ), 0);
    // Far in the "future" by more than 2^31 reads as the past: 0, as s32 arithmetic does.
    assert_eq!(expires(0x8000_0000, 0), 0);
    assert_eq!(expires(0x7fff_ffff, 0), 0x7fff_ffff);
    assert_eq!(expires_in_secs(5000, 0, 0), 0, "no division by zero");
}

#[test]
fn should_gc_needs_confirmed_expired_not_dying() {
    let (timeout, now) = (100, 200);
    assert!(should_gc(IPS_CONFIRMED, timeout, now));
    assert!(!should_gc(0, timeout, now), "unconfirmed: relative timeout");
    assert!(!should_gc(IPS_CONFIRMED | IPS_DYING, timeout, now));
    assert!(!should_gc(IPS_CONFIRMED, now + 1, now));
    assert!(should_gc(IPS_CONFIRMED, now, now));
}

#[test]
fn refresh_unconfirmed_is_relative_confirmed_absolute() {
    let now = 1_000_000;
    let extra = 30 * HZ;
    // Unconfirmed: the relative value, whatever the clock.
    assert_eq!(refreshed_timeout(0, now, extra), Some(extra));
    assert_eq!(refreshed_timeout(IPS_SEEN_REPLY, 7, extra), Some(extra));
    // Confirmed: an absolute stamp.
    assert_eq!(
        refreshed_timeout(IPS_CONFIRMED, now, extra),
        Some(now + extra)
    );
    // Confirmation later makes the relative value absolute from that moment.
    let relative = refreshed_timeout(0, now, extra).unwrap();
    let confirm_at = now + 3 * HZ;
    let t = confirmed_timeout(relative, confirm_at);
    assert_eq!(expires_in_secs(t, confirm_at, HZ), 30);
    // The absolute stamp wraps like the kernel's u32.
    assert_eq!(
        refreshed_timeout(IPS_CONFIRMED, u32::MAX - 1, extra),
        Some(extra - 2)
    );
}

#[test]
fn refresh_leaves_fixed_timeout_alone() {
    for status in [
        IPS_FIXED_TIMEOUT,
        IPS_FIXED_TIMEOUT | IPS_CONFIRMED,
        IPS_FIXED_TIMEOUT | IPS_CONFIRMED | IPS_NAT_CLASH,
    ] {
        assert_eq!(refreshed_timeout(status, 5, 30 * HZ), None, "{status:#x}");
    }
}

#[test]
fn packet_action_constructors() {
    assert_eq!(
        PacketAction::INVALID,
        PacketAction {
            verdict: Verdict::Invalid,
            refresh: None,
            set_assured: false
        }
    );
    assert_eq!(
        PacketAction::refresh(42),
        PacketAction {
            verdict: Verdict::Accept,
            refresh: Some(42),
            set_assured: false
        }
    );
}

#[test]
fn zone_ids_per_direction() {
    assert_eq!(Zone::default(), Zone::DEFAULT);
    assert_eq!(
        Zone::DEFAULT,
        Zone {
            id: 0,
            dir: NF_CT_DEFAULT_ZONE_DIR
        }
    );
    assert_eq!(NF_CT_DEFAULT_ZONE_DIR, 3);
    let both = Zone { id: 7, dir: 3 };
    assert_eq!(both.id_in(Dir::Original), 7);
    assert_eq!(both.id_in(Dir::Reply), 7);
    let orig = Zone {
        id: 7,
        dir: NF_CT_ZONE_DIR_ORIG,
    };
    assert_eq!(orig.id_in(Dir::Original), 7);
    assert_eq!(orig.id_in(Dir::Reply), 0);
    let repl = Zone {
        id: 7,
        dir: NF_CT_ZONE_DIR_REPL,
    };
    assert_eq!(repl.id_in(Dir::Original), 0);
    assert_eq!(repl.id_in(Dir::Reply), 7);
}
