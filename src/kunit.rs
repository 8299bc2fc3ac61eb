// SPDX-License-Identifier: GPL-2.0

//! KUnit test cases. The suites are declared in `kunit/rust_conntrack_kunit.c`; each case
//! there calls the `rct_kunit_<name>` function of the same name here.
//!
//! These cover what only the kernel can run: tuples read from real skbs (linear and paged)
//! through `skb_header_pointer`, per-CPU counters, the hook path into the core, and the
//! pernet set-up of the initial netns.

use crate::bindings;
use crate::conntrack::{Family, Hook, HookRole, NetState, Verdict};
use crate::netns::Net;
use crate::percpu::PerCpuCounters;
use crate::skb::SkBuff;
use crate::stat::Stat;
use crate::tuple::{parse_ipv4, parse_ipv6, Addr, Tuple, L3, L4};
use core::ptr::NonNull;
use kernel::prelude::*;

/// The running KUnit test.
///
/// # Invariants
///
/// Wraps the `struct kunit` that KUnit passed to the running case.
struct Test(NonNull<bindings::kunit>);

impl Test {
    /// # Safety
    ///
    /// `ptr` must be the `struct kunit` of the running case.
    unsafe fn from_raw(ptr: *mut bindings::kunit) -> Option<Self> {
        NonNull::new(ptr).map(Self)
    }

    /// Marks the test failed with `msg` (NUL-terminated).
    fn fail(&self, file: &'static str, line: u32, msg: &'static str) {
        // SAFETY: `self.0` is the running test (type invariant); `file` and `msg` are
        // NUL-terminated by the macros below.
        unsafe {
            bindings::rct_kunit_fail(self.0.as_ptr(), file.as_ptr(), line as i32, msg.as_ptr())
        };
    }
}

macro_rules! expect {
    ($t:expr, $cond:expr) => {
        if !$cond {
            $t.fail(
                concat!(file!(), "\0"),
                line!(),
                concat!(stringify!($cond), "\0"),
            );
        }
    };
}

macro_rules! expect_eq {
    ($t:expr, $a:expr, $b:expr) => {{
        let (a, b) = (&$a, &$b);
        if a != b {
            pr_err!("{}:{}: {:?} != {:?}\n", file!(), line!(), a, b);
            $t.fail(
                concat!(file!(), "\0"),
                line!(),
                concat!(stringify!($a), " == ", stringify!($b), "\0"),
            );
        }
    }};
}

/// An skb built for a test, freed on drop.
struct TestSkb(NonNull<bindings::sk_buff>);

impl TestSkb {
    /// An skb holding `data`, the first `linear` bytes in its linear area and the rest in a
    /// page fragment; the network header is at offset 0.
    fn new(data: &[u8], linear: usize, family: Family) -> Option<Self> {
        let proto: u16 = match family {
            Family::Ipv4 => 0x0800,
            Family::Ipv6 => 0x86dd,
        };
        // SAFETY: `data` is readable for its length; the helper copies it.
        let skb = unsafe {
            bindings::rct_kunit_build_skb(
                data.as_ptr(),
                data.len() as u32,
                linear as u32,
                proto.to_be(),
            )
        };
        NonNull::new(skb).map(Self)
    }

    fn skb(&self) -> &SkBuff {
        // SAFETY: `self.0` is a live skb owned by `self`.
        unsafe { SkBuff::from_raw(self.0.as_ptr()) }
    }
}

impl Drop for TestSkb {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from `rct_kunit_build_skb` and is freed only here.
        unsafe { bindings::rct_kunit_free_skb(self.0.as_ptr()) };
    }
}

const A4: [u8; 4] = [10, 0, 0, 1];
const B4: [u8; 4] = [10, 0, 0, 2];
const A6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const B6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/// An IPv4 header for `payload` bytes of `proto` from A4 to B4.
fn ipv4_header(proto: u8, payload: usize) -> [u8; 20] {
    let total = (20 + payload as u16).to_be_bytes();
    let mut h = [0u8; 20];
    h[..12].copy_from_slice(&[0x45, 0, total[0], total[1], 0, 1, 0, 0, 64, proto, 0, 0]);
    h[12..16].copy_from_slice(&A4);
    h[16..20].copy_from_slice(&B4);
    h
}

/// IPv4 UDP 1234 -> 53 with no payload.
fn ipv4_udp() -> [u8; 28] {
    let mut p = [0u8; 28];
    p[..20].copy_from_slice(&ipv4_header(17, 8));
    p[20..].copy_from_slice(&[0x04, 0xd2, 0, 53, 0, 8, 0, 0]);
    p
}

/// IPv4 ICMP echo request, id 0x1234.
fn ipv4_icmp_echo() -> [u8; 28] {
    let mut p = [0u8; 28];
    p[..20].copy_from_slice(&ipv4_header(1, 8));
    p[20..].copy_from_slice(&[8, 0, 0, 0, 0x12, 0x34, 0, 1]);
    p
}

/// IPv6 TCP SYN 40000 -> 80.
fn ipv6_tcp_syn() -> [u8; 60] {
    let mut p = [0u8; 60];
    p[..8].copy_from_slice(&[0x60, 0, 0, 0, 0, 20, 6, 64]);
    p[8..24].copy_from_slice(&A6);
    p[24..40].copy_from_slice(&B6);
    p[40..60].copy_from_slice(&[
        0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    p
}

fn udp4_tuple() -> Tuple {
    Tuple {
        l3: L3::Ipv4,
        proto: 17,
        src: Addr::v4(A4),
        dst: Addr::v4(B4),
        l4: L4::Ports { src: 1234, dst: 53 },
    }
}

/// KUnit case `skb_ipv4_udp_linear`.
///
/// # Safety
///
/// `test` must be the running test, as KUnit passes it.
#[no_mangle]
unsafe extern "C" fn rct_kunit_skb_ipv4_udp_linear(test: *mut bindings::kunit) {
    // SAFETY: KUnit passes the running test.
    let Some(t) = (unsafe { Test::from_raw(test) }) else {
        return;
    };
    let pkt = ipv4_udp();
    let Some(skb) = TestSkb::new(&pkt, pkt.len(), Family::Ipv4) else {
        return t.fail(concat!(file!(), "\0"), line!(), "skb allocation failed\0");
    };
    match parse_ipv4(skb.skb(), 0) {
        Ok(p) => {
            expect_eq!(t, p.tuple, udp4_tuple());
            expect_eq!(t, p.dataoff, 20);
        }
        Err(e) => {
            pr_err!("parse_ipv4: {:?}\n", e);
            expect!(t, false);
        }
    }
}

/// KUnit case `skb_ipv6_tcp_paged`.
///
/// # Safety
///
/// `test` must be the running test, as KUnit passes it.
#[no_mangle]
unsafe extern "C" fn rct_kunit_skb_ipv6_tcp_paged(test: *mut bindings::kunit) {
    // SAFETY: KUnit passes the running test.
    let Some(t) = (unsafe { Test::from_raw(test) }) else {
        return;
    };
    let pkt = ipv6_tcp_syn();
    // The split falls inside the source address: the header must be gathered from both.
    let Some(skb) = TestSkb::new(&pkt, 30, Family::Ipv6) else {
        return t.fail(concat!(file!(), "\0"), line!(), "skb allocation failed\0");
    };
    let want = Tuple {
        l3: L3::Ipv6,
        proto: 6,
        src: Addr(A6),
        dst: Addr(B6),
        l4: L4::Ports {
            src: 40000,
            dst: 80,
        },
    };
    let got = parse_ipv6(skb.skb(), 0);
    expect_eq!(t, got.map(|p| (p.tuple, p.dataoff)), Ok((want, 40)));
}

/// KUnit case `skb_ipv4_icmp_split_everywhere`.
///
/// # Safety
///
/// `test` must be the running test, as KUnit passes it.
#[no_mangle]
unsafe extern "C" fn rct_kunit_skb_ipv4_icmp_split_everywhere(test: *mut bindings::kunit) {
    // SAFETY: KUnit passes the running test.
    let Some(t) = (unsafe { Test::from_raw(test) }) else {
        return;
    };
    let pkt = ipv4_icmp_echo();
    let want = Tuple {
        l3: L3::Ipv4,
        proto: 1,
        src: Addr::v4(A4),
        dst: Addr::v4(B4),
        l4: L4::Icmp {
            ty: 8,
            code: 0,
            id: 0x1234,
        },
    };
    for linear in 0..=pkt.len() {
        let Some(skb) = TestSkb::new(&pkt, linear, Family::Ipv4) else {
            return t.fail(concat!(file!(), "\0"), line!(), "skb allocation failed\0");
        };
        let got = parse_ipv4(skb.skb(), 0).map(|p| p.tuple);
        if got != Ok(want) {
            pr_err!("linear={}: {:?}\n", linear, got);
            expect!(t, false);
        }
    }
}

/// KUnit case `skb_malformed`.
///
/// # Safety
///
/// `test` must be the running test, as KUnit passes it.
#[no_mangle]
unsafe extern "C" fn rct_kunit_skb_malformed(test: *mut bindings::kunit) {
    // SAFETY: KUnit passes the running test.
    let Some(t) = (unsafe { Test::from_raw(test) }) else {
        return;
    };
    let good = ipv4_udp();
    // A prefix parses exactly when it holds the IPv4 header and the 4 bytes of ports,
    // all that `nf_ct_get_tuple_ports` reads.
    for len in 0..good.len() {
        let Some(prefix) = good.get(..len) else {
            continue;
        };
        let mut fixed = [0u8; 28];
        fixed[..len].copy_from_slice(prefix);
        if len >= 4 {
            // Keep the IPv4 length field consistent with what is there.
            fixed[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        }
        let Some(skb) = TestSkb::new(&fixed[..len], len, Family::Ipv4) else {
            return t.fail(concat!(file!(), "\0"), line!(), "skb allocation failed\0");
        };
        let parsed = parse_ipv4(skb.skb(), 0);
        if parsed.is_ok() != (len >= 24) {
            pr_err!("prefix of {} bytes: {:?}\n", len, parsed);
            expect!(t, false);
        }
    }
    // IHL below 5, and a total length beyond the skb.
    let mut bad_ihl = good;
    bad_ihl[0] = 0x44;
    let mut too_long = good;
    too_long[2..4].copy_from_slice(&100u16.to_be_bytes());
    for pkt in [bad_ihl, too_long] {
        let Some(skb) = TestSkb::new(&pkt, pkt.len(), Family::Ipv4) else {
            return t.fail(concat!(file!(), "\0"), line!(), "skb allocation failed\0");
        };
        expect!(t, parse_ipv4(skb.skb(), 0).is_err());
    }
}

/// KUnit case `percpu_counters_sum`.
///
/// # Safety
///
/// `test` must be the running test, as KUnit passes it.
#[no_mangle]
unsafe extern "C" fn rct_kunit_percpu_counters_sum(test: *mut bindings::kunit) {
    // SAFETY: KUnit passes the running test.
    let Some(t) = (unsafe { Test::from_raw(test) }) else {
        return;
    };
    let Ok(c) = PerCpuCounters::<4>::new() else {
        return t.fail(concat!(file!(), "\0"), line!(), "allocation failed\0");
    };
    expect_eq!(t, c.sum(), [0, 0, 0, 0]);
    for _ in 0..3 {
        c.inc(0);
    }
    c.inc(3);
    c.inc(4); // Out of range: ignored.
    expect_eq!(t, c.sum(), [3, 0, 0, 1]);
    expect!(t, c.read_cpu(crate::percpu::nr_cpu_ids()).is_none());
}

/// KUnit case `hooks_count_per_hook`.
///
/// # Safety
///
/// `test` must be the running test, as KUnit passes it.
#[no_mangle]
unsafe extern "C" fn rct_kunit_hooks_count_per_hook(test: *mut bindings::kunit) {
    // SAFETY: KUnit passes the running test.
    let Some(t) = (unsafe { Test::from_raw(test) }) else {
        return;
    };
    let Ok(ct) = NetState::new() else {
        return t.fail(concat!(file!(), "\0"), line!(), "allocation failed\0");
    };
    let (p4, p6) = (ipv4_udp(), ipv6_tcp_syn());
    let (Some(s4), Some(s6)) = (
        TestSkb::new(&p4, p4.len(), Family::Ipv4),
        TestSkb::new(&p6, 20, Family::Ipv6),
    ) else {
        return t.fail(concat!(file!(), "\0"), line!(), "skb allocation failed\0");
    };
    let calls = [
        (
            HookRole::Track,
            Family::Ipv4,
            Hook::PreRouting,
            &s4,
            Stat::InPreRouting,
        ),
        (
            HookRole::Track,
            Family::Ipv6,
            Hook::LocalOut,
            &s6,
            Stat::InLocalOut,
        ),
        (
            HookRole::Helper,
            Family::Ipv4,
            Hook::PostRouting,
            &s4,
            Stat::HelperPostRouting,
        ),
        (
            HookRole::Helper,
            Family::Ipv6,
            Hook::LocalIn,
            &s6,
            Stat::HelperLocalIn,
        ),
        (
            HookRole::Confirm,
            Family::Ipv6,
            Hook::PostRouting,
            &s6,
            Stat::ConfirmPostRouting,
        ),
        (
            HookRole::Confirm,
            Family::Ipv4,
            Hook::LocalIn,
            &s4,
            Stat::ConfirmLocalIn,
        ),
    ];
    for (i, (role, family, hook, skb, stat)) in calls.into_iter().enumerate() {
        expect_eq!(
            t,
            ct.hook(role, family, hook, skb.skb(), 0),
            Verdict::Accept
        );
        let sum = ct.stats_sum();
        expect_eq!(t, sum[stat as usize], 1);
        // Exactly one counter moved per call, and no packet was invalid.
        expect_eq!(t, sum.iter().sum::<u32>(), i as u32 + 1);
    }
    // A combination that is not one of our registrations counts nothing.
    let before = ct.stats_sum();
    expect_eq!(
        t,
        ct.hook(HookRole::Track, Family::Ipv4, Hook::LocalIn, s4.skb(), 0),
        Verdict::Accept
    );
    expect_eq!(t, ct.stats_sum(), before);
}

/// KUnit case `hooks_count_invalid`.
///
/// # Safety
///
/// `test` must be the running test, as KUnit passes it.
#[no_mangle]
unsafe extern "C" fn rct_kunit_hooks_count_invalid(test: *mut bindings::kunit) {
    // SAFETY: KUnit passes the running test.
    let Some(t) = (unsafe { Test::from_raw(test) }) else {
        return;
    };
    let Ok(ct) = NetState::new() else {
        return t.fail(concat!(file!(), "\0"), line!(), "allocation failed\0");
    };
    let mut bad = ipv4_udp();
    bad[0] = 0x43; // IHL 3.
    let Some(skb) = TestSkb::new(&bad, bad.len(), Family::Ipv4) else {
        return t.fail(concat!(file!(), "\0"), line!(), "skb allocation failed\0");
    };
    // Invalid packets are counted and accepted, never dropped.
    let v = ct.hook(
        HookRole::Track,
        Family::Ipv4,
        Hook::PreRouting,
        skb.skb(),
        0,
    );
    expect_eq!(t, v, Verdict::Accept);
    let sum = ct.stats_sum();
    expect_eq!(t, sum[Stat::Invalid as usize], 1);
    expect_eq!(t, sum[Stat::InPreRouting as usize], 1);
    // Only the tracking hooks judge packets.
    ct.hook(HookRole::Confirm, Family::Ipv4, Hook::LocalIn, skb.skb(), 0);
    expect_eq!(t, ct.stats_sum()[Stat::Invalid as usize], 1);
    // A network header before skb->data cannot be read: counted invalid by the hook glue.
    ct.count_invalid();
    expect_eq!(t, ct.stats_sum()[Stat::Invalid as usize], 2);
}

/// KUnit case `init_net_has_state`.
///
/// # Safety
///
/// `test` must be the running test, as KUnit passes it.
#[no_mangle]
unsafe extern "C" fn rct_kunit_init_net_has_state(test: *mut bindings::kunit) {
    // SAFETY: KUnit passes the running test.
    let Some(t) = (unsafe { Test::from_raw(test) }) else {
        return;
    };
    // The module is live when its suites run, so the initial netns is set up.
    expect!(t, Net::init_net().ct_state().is_some());
}
