// SPDX-License-Identifier: GPL-2.0

//! KUnit test cases. The suites are declared in `suites.c`; each case
//! there calls the `rct_kunit_<name>` function of the same name here.
//!
//! These cover what only the kernel can run: tuples read from real skbs (linear and paged)
//! through `skb_header_pointer`, per-CPU counters, the hook path into the core, and the
//! pernet set-up of the initial netns.

use crate::conntrack::entry::{Conn, ConnRef, EntryCache};
use crate::conntrack::net::{clock_now, NetState};
use crate::conntrack::table::{global, Table};
use crate::proto::conn::{IPS_ASSURED, IPS_EXPECTED, IPS_SEEN_REPLY};
use crate::proto::l4proto::L4State;
use crate::proto::pipeline::{Clock, Hook, HookCtx, HookRole, Packet, Verdict};
use crate::proto::stat::Stat;
use crate::proto::tuple::{parse_ipv4, parse_ipv6, Addr, Dir, Tuple, L3, L4};
use crate::sys::bindings;
use crate::sys::netns::{Net, NetHandle};
use crate::sys::percpu::PerCpuCounters;
use crate::sys::rcu::RcuGuard;
use crate::sys::skb::SkBuff;
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
    fn new(data: &[u8], linear: usize, family: L3) -> Option<Self> {
        let proto: u16 = match family {
            L3::Ipv4 => 0x0800,
            L3::Ipv6 => 0x86dd,
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

/// The Internet checksum of `data`, ready to store.
fn csum(data: &[u8]) -> [u8; 2] {
    let mut sum = 0u32;
    for pair in data.chunks(2) {
        let hi = pair.first().copied().unwrap_or(0);
        let lo = pair.get(1).copied().unwrap_or(0);
        sum += u32::from(u16::from_be_bytes([hi, lo]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    (!(sum as u16)).to_be_bytes()
}

/// An IPv4 header for `payload` bytes of `proto` from A4 to B4, checksummed: the
/// transport checksum checks at PRE_ROUTING sum the header too.
fn ipv4_header(proto: u8, payload: usize) -> [u8; 20] {
    let total = (20 + payload as u16).to_be_bytes();
    let mut h = [0u8; 20];
    h[..12].copy_from_slice(&[0x45, 0, total[0], total[1], 0, 1, 0, 0, 64, proto, 0, 0]);
    h[12..16].copy_from_slice(&A4);
    h[16..20].copy_from_slice(&B4);
    let c = csum(&h);
    h[10..12].copy_from_slice(&c);
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
    let c = csum(&p[20..]);
    p[22..24].copy_from_slice(&c);
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
    let Some(skb) = TestSkb::new(&pkt, pkt.len(), L3::Ipv4) else {
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
    let Some(skb) = TestSkb::new(&pkt, 30, L3::Ipv6) else {
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
        let Some(skb) = TestSkb::new(&pkt, linear, L3::Ipv4) else {
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
        let Some(skb) = TestSkb::new(&fixed[..len], len, L3::Ipv4) else {
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
        let Some(skb) = TestSkb::new(&pkt, pkt.len(), L3::Ipv4) else {
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
    expect!(t, c.read_cpu(crate::sys::percpu::nr_cpu_ids()).is_none());
    // An increment lands in the running CPU's row (bottom halves off keep the task there):
    // the inline `%gs`-relative one on x86 SMP too.
    {
        let _bh = crate::sys::sync::BhDisabled::new();
        // SAFETY: FFI call without preconditions.
        let cpu = unsafe { bindings::rct_this_cpu_id() };
        let before = c.read_cpu(cpu).map(|r| r[2]);
        c.inc(2);
        expect_eq!(t, before, Some(0));
        expect_eq!(t, c.read_cpu(cpu).map(|r| r[2]), Some(1));
    }
    expect_eq!(t, c.sum(), [3, 0, 1, 1]);
}

/// KUnit case `bh_locks_leave_bh_as_found`: the bottom-half guard, the entry lock and the
/// unconfirmed list lock turn bottom halves off where they are on (process context) and
/// leave them as they were where they are off already (a hook in softirq), after as during.
///
/// # Safety
///
/// `test` must be the running test, as KUnit passes it.
#[no_mangle]
unsafe extern "C" fn rct_kunit_bh_locks_leave_bh_as_found(test: *mut bindings::kunit) {
    // SAFETY: KUnit passes the running test.
    let Some(t) = (unsafe { Test::from_raw(test) }) else {
        return;
    };
    // SAFETY: FFI call without preconditions.
    let bh_off = || unsafe { bindings::rct_bh_off() };
    expect!(t, !bh_off());
    let Ok(list) = crate::conntrack::unconfirmed::Unconfirmed::new() else {
        return t.fail(concat!(file!(), "\0"), line!(), "allocation failed\0");
    };
    let lock = KBox::pin_init(
        crate::sys::sync::new_spinlock_bh(
            0u32,
            kernel::c_str!("rct_kunit_bh"),
            kernel::static_lock_class!(),
        ),
        GFP_KERNEL,
    );
    let Ok(lock) = lock else {
        return t.fail(concat!(file!(), "\0"), line!(), "allocation failed\0");
    };
    // Each way of locking, first from process context, then inside a guard that turned
    // bottom halves off as softirq has them.
    for outer in [false, true] {
        let guard = outer.then(crate::sys::sync::BhDisabled::new);
        expect!(t, bh_off() == outer);
        {
            let _inner = crate::sys::sync::BhDisabled::new();
            expect!(t, bh_off());
        }
        expect!(t, bh_off() == outer);
        {
            let mut v = lock.lock();
            *v += 1;
            expect!(t, bh_off());
        }
        expect!(t, bh_off() == outer);
        expect_eq!(t, list.len_of_cpu(0), Some(0));
        expect!(t, bh_off() == outer);
        drop(guard);
        expect!(t, !bh_off());
    }
    expect_eq!(t, *lock.lock(), 2);
}

/// A hook context at `hook` for `skb`, at jiffies `now`.
fn ctx(hook: Hook, family: L3, skb: &TestSkb, now: u32) -> HookCtx {
    HookCtx {
        hook,
        l3: family,
        nhoff: 0,
        cookie: skb.0.as_ptr() as usize,
        in_loopback: false,
        out_loopback: false,
        clock: Clock {
            now,
            jiffies: u64::from(now),
            hz: 100,
        },
    }
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
    let Some(ct) = test_state(&t) else {
        return;
    };
    // An ICMPv6 neighbour solicitation: parsed, and untracked as in 6.12.
    let (p4, mut p6) = (ipv4_udp(), ipv6_tcp_syn());
    p6[6] = 58;
    p6[40] = 135;
    p6[41] = 0;
    let (Some(s4), Some(s6)) = (
        TestSkb::new(&p4, p4.len(), L3::Ipv4),
        TestSkb::new(&p6, 20, L3::Ipv6),
    ) else {
        return t.fail(concat!(file!(), "\0"), line!(), "skb allocation failed\0");
    };
    // Untracked: these count only their hook.
    let calls = [
        (HookRole::Track, L3::Ipv6, Hook::LocalOut, Stat::InLocalOut),
        (
            HookRole::Helper,
            L3::Ipv6,
            Hook::PostRouting,
            Stat::HelperPostRouting,
        ),
        (
            HookRole::Helper,
            L3::Ipv6,
            Hook::LocalIn,
            Stat::HelperLocalIn,
        ),
        (
            HookRole::Confirm,
            L3::Ipv6,
            Hook::PostRouting,
            Stat::ConfirmPostRouting,
        ),
        (
            HookRole::Confirm,
            L3::Ipv6,
            Hook::LocalIn,
            Stat::ConfirmLocalIn,
        ),
    ];
    for (i, (role, family, hook, stat)) in calls.into_iter().enumerate() {
        let v = run_hook(&ct, role, s6.skb(), &ctx(hook, family, &s6, 1000));
        expect_eq!(t, v, Verdict::Accept);
        let sum = ct.stats_sum();
        expect_eq!(t, sum[stat as usize], 1);
        // Exactly one counter moved per call, and no packet was invalid.
        expect_eq!(t, sum.iter().sum::<u32>(), i as u32 + 1);
    }
    // A combination that is not one of our registrations counts nothing.
    let before = ct.stats_sum();
    let v = run_hook(
        &ct,
        HookRole::Track,
        s4.skb(),
        &ctx(Hook::LocalIn, L3::Ipv4, &s4, 1000),
    );
    expect_eq!(t, v, Verdict::Accept);
    expect_eq!(t, ct.stats_sum(), before);
    // UDP at PRE_ROUTING, then LOCAL_IN: a new entry, then confirmed.
    run_hook(
        &ct,
        HookRole::Track,
        s4.skb(),
        &ctx(Hook::PreRouting, L3::Ipv4, &s4, 1000),
    );
    expect_eq!(t, ct.stats_sum()[Stat::InPreRouting as usize], 1);
    expect_eq!(t, (ct.entry_count(), ct.unconfirmed_count()), (1, 1));
    // The confirm hook's shortcut must not skip the packet whose new entry waits.
    let c = ctx(Hook::LocalIn, L3::Ipv4, &s4, 1000);
    let before = ct.stats_sum();
    let rcu = RcuGuard::new();
    let idle = ct.hook_idle(HookRole::Confirm, c.hook, c.cookie, || false, rcu.section());
    drop(rcu);
    expect_eq!(t, idle, false);
    expect_eq!(t, ct.stats_sum(), before);
    run_hook(&ct, HookRole::Confirm, s4.skb(), &c);
    expect_eq!(t, (ct.entry_count(), ct.unconfirmed_count()), (1, 0));
    expect_eq!(t, ct.stats_sum()[Stat::Insert as usize], 1);
    // Dropping the state removes its entries from the table.
    drop(ct);
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
    let Some(ct) = test_state(&t) else {
        return;
    };
    let mut bad = ipv4_udp();
    bad[0] = 0x43; // IHL 3.
    let Some(skb) = TestSkb::new(&bad, bad.len(), L3::Ipv4) else {
        return t.fail(concat!(file!(), "\0"), line!(), "skb allocation failed\0");
    };
    // Invalid packets are counted and accepted, never dropped.
    let c = ctx(Hook::PreRouting, L3::Ipv4, &skb, 1000);
    expect_eq!(
        t,
        run_hook(&ct, HookRole::Track, skb.skb(), &c),
        Verdict::Accept
    );
    let sum = ct.stats_sum();
    expect_eq!(t, sum[Stat::Invalid as usize], 1);
    expect_eq!(t, sum[Stat::InPreRouting as usize], 1);
    expect_eq!(t, ct.entry_count(), 0);
    // Only the tracking hooks judge packets.
    let c = ctx(Hook::LocalIn, L3::Ipv4, &skb, 1000);
    run_hook(&ct, HookRole::Confirm, skb.skb(), &c);
    expect_eq!(t, ct.stats_sum()[Stat::Invalid as usize], 1);
    // A UDP length field beyond the packet (`udp_error`): invalid, no entry.
    let mut long = ipv4_udp();
    long[25] = 100;
    let Some(skb) = TestSkb::new(&long, long.len(), L3::Ipv4) else {
        return t.fail(concat!(file!(), "\0"), line!(), "skb allocation failed\0");
    };
    let c = ctx(Hook::PreRouting, L3::Ipv4, &skb, 1000);
    run_hook(&ct, HookRole::Track, skb.skb(), &c);
    expect_eq!(t, ct.stats_sum()[Stat::Invalid as usize], 2);
    expect_eq!(t, ct.entry_count(), 0);
}

/// A netns state for a test, in the initial netns. Boxed, as the module's are: entries
/// point at their state, so it must not move while it has any.
fn test_state(t: &Test) -> Option<KBox<NetState>> {
    let state = NetState::new(NetHandle::init_net()).and_then(|s| Ok(KBox::new(s, GFP_KERNEL)?));
    if state.is_err() {
        t.fail(concat!(file!(), "\0"), line!(), "allocation failed\0");
    }
    state.ok()
}

/// A test table of `size` buckets with the global entry cache.
fn test_table(t: &Test, size: u32) -> Option<(Table, &'static EntryCache)> {
    let (Ok(table), Some(g)) = (Table::new(size), global()) else {
        t.fail(concat!(file!(), "\0"), line!(), "no table\0");
        return None;
    };
    Some((table, &g.cache))
}

/// UDP 10.0.0.1:`sport` -> 10.0.0.2:53, optionally as the reply 10.0.0.2:53 -> 10.0.0.1.
fn udp_flow(sport: u16, reply: bool) -> [u8; 28] {
    let mut p = ipv4_udp();
    p[20..22].copy_from_slice(&sport.to_be_bytes());
    if reply {
        let (src, dst): ([u8; 4], [u8; 4]) = (A4, B4);
        p[12..16].copy_from_slice(&dst);
        p[16..20].copy_from_slice(&src);
        p[20..22].copy_from_slice(&53u16.to_be_bytes());
        p[22..24].copy_from_slice(&sport.to_be_bytes());
    }
    p
}

/// A hook call as netfilter.rs makes it ([`NetState::hook_idle`], then [`NetState::hook`]
/// unless idle), from process context, in a read-side section of its own.
fn run_hook<P: Packet + ?Sized>(ct: &NetState, role: HookRole, pkt: &P, c: &HookCtx) -> Verdict {
    let rcu = RcuGuard::new();
    if role != HookRole::Track
        && ct.hook_idle(role, c.hook, c.cookie, || c.out_loopback, rcu.section())
    {
        return Verdict::Accept;
    }
    ct.hook(role, pkt, c, rcu.section())
}

/// Tracks `pkt` at PRE_ROUTING and confirms it at LOCAL_IN in `table`, at `now`.
fn pass(
    ct: &NetState,
    table: &Table,
    cache: &EntryCache,
    max: u32,
    pkt: &[u8],
    now: u32,
) -> Option<(Verdict, Verdict)> {
    let skb = TestSkb::new(pkt, pkt.len(), L3::Ipv4)?;
    let v1 = ct
        .on(table, cache, max)
        .track(skb.skb(), &ctx(Hook::PreRouting, L3::Ipv4, &skb, now));
    let v2 = ct
        .on(table, cache, 0)
        .confirm(skb.skb(), &ctx(Hook::LocalIn, L3::Ipv4, &skb, now));
    Some((v1, v2))
}

fn find(ct: &NetState, table: &Table, tuple: &Tuple, now: u32) -> Option<(ConnRef, Dir)> {
    let key = tuple.key();
    let rcu = RcuGuard::new();
    table.find(ct, &key, ct.hash(&key), now, rcu.section())
}

/// KUnit case `table_insert_lookup_delete`.
///
/// # Safety
///
/// `test` must be the running test, as KUnit passes it.
#[no_mangle]
unsafe extern "C" fn rct_kunit_table_insert_lookup_delete(test: *mut bindings::kunit) {
    // SAFETY: KUnit passes the running test.
    let Some(t) = (unsafe { Test::from_raw(test) }) else {
        return;
    };
    let (Some((table, cache)), Some(ct)) = (test_table(&t, 16), test_state(&t)) else {
        return;
    };
    let flow = udp4_tuple();
    expect!(t, find(&ct, &table, &flow, 1000).is_none());
    expect_eq!(
        t,
        pass(&ct, &table, cache, 0, &udp_flow(1234, false), 1000),
        Some((Verdict::Accept, Verdict::Accept))
    );
    match find(&ct, &table, &flow, 1000) {
        Some((c, dir)) => {
            expect_eq!(t, dir, Dir::Original);
            // The table's reference and ours.
            expect_eq!(t, c.refcount(), 2);
            expect!(t, c.is_confirmed() && !c.seen_reply() && !c.is_assured());
            // Relative 30 s became absolute at confirmation.
            expect_eq!(t, c.timeout(), 1000 + 30 * 100);
        }
        None => expect!(t, false),
    }
    // The reply finds the same entry in the other direction, and marks it replied.
    expect_eq!(
        t,
        pass(&ct, &table, cache, 0, &udp_flow(1234, true), 1100),
        Some((Verdict::Accept, Verdict::Accept))
    );
    let Some(inverse) = flow.invert() else {
        return expect!(t, false);
    };
    let Some((c, dir)) = find(&ct, &table, &inverse, 1100) else {
        return expect!(t, false);
    };
    expect_eq!(t, dir, Dir::Reply);
    expect!(t, c.seen_reply());
    expect_eq!(t, ct.entry_count(), 1);
    // Delete: gone from lookups at once, freed with the last reference.
    expect!(t, table.kill(&c));
    expect!(t, !table.kill(&c));
    expect!(t, find(&ct, &table, &flow, 1100).is_none());
    expect_eq!(t, (c.refcount(), ct.entry_count()), (1, 1));
    drop(c);
    expect_eq!(t, ct.entry_count(), 0);
    ct.flush(&table);
}

/// KUnit case `unconfirmed_then_confirmed`.
///
/// # Safety
///
/// `test` must be the running test, as KUnit passes it.
#[no_mangle]
unsafe extern "C" fn rct_kunit_unconfirmed_then_confirmed(test: *mut bindings::kunit) {
    // SAFETY: KUnit passes the running test.
    let Some(t) = (unsafe { Test::from_raw(test) }) else {
        return;
    };
    let (Some((table, cache)), Some(ct)) = (test_table(&t, 16), test_state(&t)) else {
        return;
    };
    let pkt = udp_flow(4000, false);
    let (Some(a), Some(b)) = (
        TestSkb::new(&pkt, pkt.len(), L3::Ipv4),
        TestSkb::new(&pkt, pkt.len(), L3::Ipv4),
    ) else {
        return expect!(t, false);
    };
    let ca = ctx(Hook::PreRouting, L3::Ipv4, &a, 500);
    ct.on(&table, cache, 0).track(a.skb(), &ca);
    // Unconfirmed: counted, listed, invisible to lookups.
    expect_eq!(t, (ct.entry_count(), ct.unconfirmed_count()), (1, 1));
    let Ok(parsed) = parse_ipv4(&pkt[..], 0) else {
        return expect!(t, false);
    };
    expect!(t, find(&ct, &table, &parsed.tuple, 500).is_none());
    // Another skb's confirm does not take this packet's entry.
    let cb = ctx(Hook::LocalIn, L3::Ipv4, &b, 500);
    expect_eq!(
        t,
        ct.on(&table, cache, 0).confirm(b.skb(), &cb),
        Verdict::Accept
    );
    expect_eq!(t, ct.unconfirmed_count(), 1);
    // Its own confirm does.
    let ca = ctx(Hook::LocalIn, L3::Ipv4, &a, 500);
    expect_eq!(
        t,
        ct.on(&table, cache, 0).confirm(a.skb(), &ca),
        Verdict::Accept
    );
    expect_eq!(t, (ct.entry_count(), ct.unconfirmed_count()), (1, 0));
    expect!(t, find(&ct, &table, &parsed.tuple, 500).is_some());
    // A new entry whose packet never reaches confirm is reaped when the next one is listed
    // on the CPU: here by age, 30.1 s later. (The confirmed entry expires at 3500: the times
    // stay below that, or a lookup walking its chain would rightly reap it too.)
    let other = udp_flow(4001, false);
    let late = udp_flow(4002, false);
    let (Some(o), Some(l)) = (
        TestSkb::new(&other, other.len(), L3::Ipv4),
        TestSkb::new(&late, late.len(), L3::Ipv4),
    ) else {
        return expect!(t, false);
    };
    ct.on(&table, cache, 0)
        .track(o.skb(), &ctx(Hook::PreRouting, L3::Ipv4, &o, 450));
    expect_eq!(t, ct.unconfirmed_count(), 1);
    ct.on(&table, cache, 0)
        .track(l.skb(), &ctx(Hook::PreRouting, L3::Ipv4, &l, 450 + 3010));
    expect_eq!(t, ct.unconfirmed_count(), 1);
    expect_eq!(t, ct.stats_sum()[Stat::UnconfirmedReaped as usize], 1);
    expect_eq!(t, ct.entry_count(), 2);
    ct.flush(&table);
    expect_eq!(t, ct.entry_count(), 0);
}

/// KUnit case `handoff_rejects_other_packets`: an skb at a freed skb's address never
/// confirms that skb's entry unless it is the same flow; if it is another flow, the entry
/// is known orphaned and reaped. A CPU's list is bounded.
///
/// # Safety
///
/// `test` must be the running test, as KUnit passes it.
#[no_mangle]
unsafe extern "C" fn rct_kunit_handoff_rejects_other_packets(test: *mut bindings::kunit) {
    // SAFETY: KUnit passes the running test.
    let Some(t) = (unsafe { Test::from_raw(test) }) else {
        return;
    };
    let (Some((table, cache)), Some(ct)) = (test_table(&t, 16), test_state(&t)) else {
        return;
    };
    let (pa, pb) = (udp_flow(4200, false), udp_flow(4201, false));
    let (Some(a), Some(b), Some(b2)) = (
        TestSkb::new(&pa, pa.len(), L3::Ipv4),
        TestSkb::new(&pb, pb.len(), L3::Ipv4),
        TestSkb::new(&pa, pa.len(), L3::Ipv4),
    ) else {
        return expect!(t, false);
    };
    let (Ok(ta), Ok(tb)) = (parse_ipv4(&pa[..], 0), parse_ipv4(&pb[..], 0)) else {
        return expect!(t, false);
    };
    let before = ct.stats_sum()[Stat::UnconfirmedReaped as usize];
    ct.on(&table, cache, 0)
        .track(a.skb(), &ctx(Hook::PreRouting, L3::Ipv4, &a, 800));
    expect_eq!(t, ct.unconfirmed_count(), 1);
    // Another flow's packet arrives at confirm with `a`'s address (a freed and reused).
    let mut reused = ctx(Hook::LocalIn, L3::Ipv4, &b, 800);
    reused.cookie = ctx(Hook::LocalIn, L3::Ipv4, &a, 800).cookie;
    expect_eq!(
        t,
        ct.on(&table, cache, 0).confirm(b.skb(), &reused),
        Verdict::Accept
    );
    // Not confirmed (neither flow is in the table), and the orphan is gone.
    expect!(t, find(&ct, &table, &ta.tuple, 800).is_none());
    expect!(t, find(&ct, &table, &tb.tuple, 800).is_none());
    expect_eq!(t, (ct.unconfirmed_count(), ct.entry_count()), (0, 0));
    expect_eq!(
        t,
        ct.stats_sum()[Stat::UnconfirmedReaped as usize] - before,
        1
    );
    // The same flow in another skb at that address confirms it: it is that flow's entry.
    ct.on(&table, cache, 0)
        .track(a.skb(), &ctx(Hook::PreRouting, L3::Ipv4, &a, 800));
    let mut same = ctx(Hook::LocalIn, L3::Ipv4, &b2, 800);
    same.cookie = ctx(Hook::LocalIn, L3::Ipv4, &a, 800).cookie;
    expect_eq!(
        t,
        ct.on(&table, cache, 0).confirm(b2.skb(), &same),
        Verdict::Accept
    );
    expect!(t, find(&ct, &table, &ta.tuple, 800).is_some());
    expect_eq!(t, ct.unconfirmed_count(), 0);
    // Packets that never reach confirm: the CPU's list keeps the newest
    // UNCONFIRMED_MAX_PER_CPU (each here with its own fake address).
    let max = crate::conntrack::unconfirmed::UNCONFIRMED_MAX_PER_CPU;
    let before = ct.stats_sum()[Stat::UnconfirmedReaped as usize];
    for i in 0..=max {
        let mut c = ctx(Hook::PreRouting, L3::Ipv4, &b, 800);
        c.cookie = 0x1000 + i as usize;
        ct.on(&table, cache, 0).track(b.skb(), &c);
    }
    expect_eq!(t, ct.unconfirmed_count(), max);
    expect_eq!(
        t,
        ct.stats_sum()[Stat::UnconfirmedReaped as usize] - before,
        1
    );
    let per_cpu: u32 = (0..crate::sys::percpu::nr_cpu_ids())
        .map(|cpu| ct.unconfirmed_of_cpu(cpu))
        .sum();
    expect_eq!(t, per_cpu, max);
    ct.flush(&table);
    expect_eq!(t, (ct.entry_count(), ct.unconfirmed_count()), (0, 0));
}

/// KUnit case `loopback_skips_only_what_left_on_lo`: a packet tracked at LOCAL_OUT and sent
/// out on `lo` is not tracked again when it comes in on `lo`; another skb coming in on `lo`
/// is, and so is one that was invalid at LOCAL_OUT (as nf_conntrack does).
///
/// # Safety
///
/// `test` must be the running test, as KUnit passes it.
#[no_mangle]
unsafe extern "C" fn rct_kunit_loopback_skips_only_what_left_on_lo(test: *mut bindings::kunit) {
    // SAFETY: KUnit passes the running test.
    let Some(t) = (unsafe { Test::from_raw(test) }) else {
        return;
    };
    let (Some((table, cache)), Some(ct)) = (test_table(&t, 16), test_state(&t)) else {
        return;
    };
    let (out, back) = (udp_flow(4300, false), udp_flow(4300, true));
    let (Some(a), Some(b)) = (
        TestSkb::new(&out, out.len(), L3::Ipv4),
        TestSkb::new(&back, back.len(), L3::Ipv4),
    ) else {
        return expect!(t, false);
    };
    let Ok(flow) = parse_ipv4(&out[..], 0) else {
        return expect!(t, false);
    };
    let lo_in = |s: &TestSkb| {
        let mut c = ctx(Hook::PreRouting, L3::Ipv4, s, 900);
        c.in_loopback = true;
        c
    };
    ct.on(&table, cache, 0)
        .track(a.skb(), &ctx(Hook::LocalOut, L3::Ipv4, &a, 900));
    let mut post = ctx(Hook::PostRouting, L3::Ipv4, &a, 900);
    post.out_loopback = true;
    expect_eq!(
        t,
        ct.on(&table, cache, 0).confirm(a.skb(), &post),
        Verdict::Accept
    );
    expect_eq!(t, ct.loopback_records(), 1);
    // The same skb comes back in: skipped, its record used up.
    let invalid = ct.stats_sum()[Stat::Invalid as usize];
    expect_eq!(
        t,
        ct.on(&table, cache, 0).track(a.skb(), &lo_in(&a)),
        Verdict::Accept
    );
    expect_eq!(t, ct.loopback_records(), 0);
    let seen_reply = |ct: &NetState| {
        find(ct, &table, &flow.tuple, 900).map(|(c, _)| c.status() & IPS_SEEN_REPLY != 0)
    };
    expect_eq!(t, seen_reply(&ct), Some(false));
    // A reply injected on `lo` without passing LOCAL_OUT (a packet socket): tracked.
    expect_eq!(
        t,
        ct.on(&table, cache, 0).track(b.skb(), &lo_in(&b)),
        Verdict::Accept
    );
    expect_eq!(t, seen_reply(&ct), Some(true));
    // Invalid at LOCAL_OUT (its UDP header cut short): not remembered as looped, so counted again when it comes back in.
    let bad = [
        0x45u8, 0, 0, 21, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0,
    ];
    let Some(c) = TestSkb::new(&bad, bad.len(), L3::Ipv4) else {
        return expect!(t, false);
    };
    ct.on(&table, cache, 0)
        .track(c.skb(), &ctx(Hook::LocalOut, L3::Ipv4, &c, 900));
    let mut post = ctx(Hook::PostRouting, L3::Ipv4, &c, 900);
    post.out_loopback = true;
    ct.on(&table, cache, 0).confirm(c.skb(), &post);
    expect_eq!(t, ct.loopback_records(), 0);
    ct.on(&table, cache, 0).track(c.skb(), &lo_in(&c));
    expect_eq!(t, ct.stats_sum()[Stat::Invalid as usize] - invalid, 2);
    ct.flush(&table);
}

/// KUnit case `clash_resolution`.
///
/// # Safety
///
/// `test` must be the running test, as KUnit passes it.
#[no_mangle]
unsafe extern "C" fn rct_kunit_clash_resolution(test: *mut bindings::kunit) {
    // SAFETY: KUnit passes the running test.
    let Some(t) = (unsafe { Test::from_raw(test) }) else {
        return;
    };
    let (Some((table, cache)), Some(ct)) = (test_table(&t, 16), test_state(&t)) else {
        return;
    };
    // Two packets of one new flow race: both create an entry before either is confirmed.
    for (pkt, clash_ok) in [(udp_flow(7000, false), true), (ipv4_icmp_echo(), false)] {
        let (Some(a), Some(b)) = (
            TestSkb::new(&pkt, pkt.len(), L3::Ipv4),
            TestSkb::new(&pkt, pkt.len(), L3::Ipv4),
        ) else {
            return expect!(t, false);
        };
        let before = ct.stats_sum();
        for s in [&a, &b] {
            ct.on(&table, cache, 0)
                .track(s.skb(), &ctx(Hook::PreRouting, L3::Ipv4, s, 700));
        }
        expect_eq!(t, ct.unconfirmed_count(), 2);
        let va = ct
            .on(&table, cache, 0)
            .confirm(a.skb(), &ctx(Hook::LocalIn, L3::Ipv4, &a, 700));
        let vb = ct
            .on(&table, cache, 0)
            .confirm(b.skb(), &ctx(Hook::LocalIn, L3::Ipv4, &b, 700));
        expect_eq!(t, va, Verdict::Accept);
        let after = ct.stats_sum();
        let d = |s: Stat| after[s as usize] - before[s as usize];
        if clash_ok {
            // UDP: the loser merges into the winner (`clash_resolve`), packet accepted.
            expect_eq!(t, vb, Verdict::Accept);
            expect_eq!(
                t,
                (
                    d(Stat::Insert),
                    d(Stat::ClashResolve),
                    d(Stat::InsertFailed)
                ),
                (1, 1, 0)
            );
        } else {
            // ICMP has no `allow_clash`: the loser's packet is dropped.
            expect_eq!(t, vb, Verdict::Drop);
            expect_eq!(
                t,
                (d(Stat::Insert), d(Stat::InsertFailed), d(Stat::Drop)),
                (1, 1, 1)
            );
        }
        expect_eq!(t, ct.unconfirmed_count(), 0);
    }
    // One entry per flow is left.
    expect_eq!(t, ct.entry_count(), 2);
    ct.flush(&table);
}

/// KUnit case `nulls_restart`.
///
/// # Safety
///
/// `test` must be the running test, as KUnit passes it.
#[no_mangle]
unsafe extern "C" fn rct_kunit_nulls_restart(test: *mut bindings::kunit) {
    // SAFETY: KUnit passes the running test.
    let Some(t) = (unsafe { Test::from_raw(test) }) else {
        return;
    };
    let (Some((table, cache)), Some(ct)) = (test_table(&t, 16), test_state(&t)) else {
        return;
    };
    pass(&ct, &table, cache, 0, &udp_flow(9000, false), 800);
    let Some((entry, _)) = find(&ct, &table, &udp4_flow_tuple(9000), 800) else {
        return expect!(t, false);
    };
    // Look up another tuple of the same chain; while the lookup stands on the entry, move
    // it to another chain, as a free and reuse would. The lookup must end in the other
    // chain's nulls, restart, and then find nothing.
    let orig = entry.tuplehash(Dir::Original);
    let bucket = table.bucket_of(entry.hash(Dir::Original));
    let other = (bucket + 1) % table.size();
    let mut probe = udp4_flow_tuple(9000);
    probe.l4 = L4::Ports { src: 1, dst: 1 };
    let key = probe.key();
    let restarts = ct.stats_sum()[Stat::SearchRestart as usize];
    let mut moved = false;
    let found = {
        let rcu = RcuGuard::new();
        let hash = entry.hash(Dir::Original);
        table.find_observed(&ct, &key, hash, 800, rcu.section(), |th| {
            if !moved && core::ptr::eq(th, orig) {
                moved = table.move_for_test(&entry, Dir::Original, bucket, other);
            }
        })
    };
    expect!(t, moved);
    // Back where its hash puts it, so that it can be deleted.
    expect!(t, table.move_for_test(&entry, Dir::Original, other, bucket));
    expect!(t, found.is_none());
    expect_eq!(
        t,
        ct.stats_sum()[Stat::SearchRestart as usize],
        restarts + 1
    );
    drop(entry);
    ct.flush(&table);
    expect_eq!(t, ct.entry_count(), 0);
}

/// IPv4 TCP between A4:40000 and B4:80, `reply` for B to A, with a valid header checksum
/// (the TCP checksum is not checked outside PRE_ROUTING).
fn tcp4(reply: bool, flags: u8, seq: u32, ack: u32) -> [u8; 40] {
    let mut p = [0u8; 40];
    p[..20].copy_from_slice(&ipv4_header(6, 20));
    let (sport, dport) = if reply {
        (80u16, 40000u16)
    } else {
        (40000, 80)
    };
    if reply {
        p[12..16].copy_from_slice(&B4);
        p[16..20].copy_from_slice(&A4);
        p[10..12].copy_from_slice(&[0, 0]);
        let c = csum(&p[..20]);
        p[10..12].copy_from_slice(&c);
    }
    p[20..22].copy_from_slice(&sport.to_be_bytes());
    p[22..24].copy_from_slice(&dport.to_be_bytes());
    p[24..28].copy_from_slice(&seq.to_be_bytes());
    p[28..32].copy_from_slice(&ack.to_be_bytes());
    p[32] = 0x50;
    p[33] = flags;
    p[34..36].copy_from_slice(&64000u16.to_be_bytes());
    p
}

/// TCP header flags, for [`tcp4`].
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const FIN: u8 = 0x01;

/// Sends `pkt` from this host at `now`: tracked at LOCAL_OUT, confirmed at POST_ROUTING
/// (where no transport checksum is verified).
fn send_local(
    ct: &NetState,
    table: &Table,
    cache: &EntryCache,
    pkt: &[u8],
    now: u32,
) -> Option<(Verdict, Verdict)> {
    let skb = TestSkb::new(pkt, pkt.len(), L3::Ipv4)?;
    let v1 = ct
        .on(table, cache, 0)
        .track(skb.skb(), &ctx(Hook::LocalOut, L3::Ipv4, &skb, now));
    let v2 = ct
        .on(table, cache, 0)
        .confirm(skb.skb(), &ctx(Hook::PostRouting, L3::Ipv4, &skb, now));
    Some((v1, v2))
}

/// The entry of the TCP connection `flow`, and the name of its state.
fn tcp_entry(
    ct: &NetState,
    table: &Table,
    flow: &Tuple,
    now: u32,
) -> Option<(ConnRef, &'static str)> {
    let (c, _) = find(ct, table, flow, now)?;
    let state = c.with_l4(|st| match st {
        L4State::Tcp(tcp) => tcp.state.name(),
        _ => "",
    });
    Some((c, state))
}

/// KUnit case `tcp_close_and_reopen`.
///
/// # Safety
///
/// `test` must be the running test, as KUnit passes it.
#[no_mangle]
unsafe extern "C" fn rct_kunit_tcp_close_and_reopen(test: *mut bindings::kunit) {
    // SAFETY: KUnit passes the running test.
    let Some(t) = (unsafe { Test::from_raw(test) }) else {
        return;
    };
    let (Some((table, cache)), Some(ct)) = (test_table(&t, 16), test_state(&t)) else {
        return;
    };
    // Locally generated both ways (LOCAL_OUT then POST_ROUTING).
    let send = |pkt: [u8; 40]| send_local(&ct, &table, cache, &pkt, 1000);
    let Ok(flow) = parse_ipv4(&tcp4(false, SYN, 1000, 0)[..], 0).map(|p| p.tuple) else {
        return expect!(t, false);
    };
    let state = || tcp_entry(&ct, &table, &flow, 1000).map(|(c, s)| (s, c.is_assured()));
    let ok = Some((Verdict::Accept, Verdict::Accept));
    expect_eq!(t, send(tcp4(false, SYN, 1000, 0)), ok);
    expect_eq!(t, state(), Some(("SYN_SENT", false)));
    expect_eq!(t, send(tcp4(true, SYN | ACK, 5000, 1001)), ok);
    expect_eq!(t, state(), Some(("SYN_RECV", false)));
    expect_eq!(t, send(tcp4(false, ACK, 1001, 5001)), ok);
    expect_eq!(t, state(), Some(("ESTABLISHED", true)));
    expect_eq!(t, send(tcp4(false, FIN | ACK, 1001, 5001)), ok);
    expect_eq!(t, send(tcp4(true, FIN | ACK, 5001, 1002)), ok);
    expect_eq!(t, send(tcp4(false, ACK, 1002, 5002)), ok);
    expect_eq!(t, state(), Some(("TIME_WAIT", true)));
    let Some((old, _)) = find(&ct, &table, &flow, 1000) else {
        return expect!(t, false);
    };
    // A new SYN on the TIME_WAIT tuple: the old entry is killed and a new one made.
    expect_eq!(t, send(tcp4(false, SYN, 90000, 0)), ok);
    expect!(t, old.is_dying());
    drop(old);
    expect_eq!(t, state(), Some(("SYN_SENT", false)));
    expect_eq!(t, ct.entry_count(), 1);
    expect_eq!(t, ct.stats_sum()[Stat::Invalid as usize], 0);
    // Out-of-window data is invalid and changes nothing.
    expect_eq!(t, send(tcp4(true, SYN | ACK, 7000, 90001)), ok);
    expect_eq!(t, send(tcp4(false, ACK, 90001 + 3_000_000, 7001)), ok);
    expect_eq!(t, ct.stats_sum()[Stat::Invalid as usize], 1);
    expect_eq!(t, state(), Some(("SYN_RECV", false)));
    ct.flush(&table);
}

/// Nanoseconds per call of `f` over `n` calls (monotonic clock).
fn ns_per_call(n: u32, mut f: impl FnMut() -> bool) -> (u64, bool) {
    // SAFETY: FFI call without preconditions.
    let t0 = unsafe { bindings::rct_ktime_ns() };
    let mut all = true;
    for _ in 0..n {
        all &= f();
    }
    // SAFETY: As above.
    let t1 = unsafe { bindings::rct_ktime_ns() };
    (t1.saturating_sub(t0) / u64::from(n.max(1)), all)
}

/// KUnit case `established_path_cost`: where the time of a packet of an established UDP
/// flow goes, stage by stage, printed to the log (on a debug kernel the figures are
/// KASAN's; `make bench` builds on `um`). Every stage must do its work on every call.
///
/// # Safety
///
/// `test` must be the running test, as KUnit passes it.
#[no_mangle]
unsafe extern "C" fn rct_kunit_established_path_cost(test: *mut bindings::kunit) {
    // SAFETY: KUnit passes the running test.
    let Some(t) = (unsafe { Test::from_raw(test) }) else {
        return;
    };
    let (Some((table, cache)), Some(ct)) = (test_table(&t, 1024), test_state(&t)) else {
        return;
    };
    let pkt = udp_flow(1234, false);
    pass(&ct, &table, cache, 0, &pkt, 1000);
    let Some(skb) = TestSkb::new(&pkt, pkt.len(), L3::Ipv4) else {
        return expect!(t, false);
    };
    let key = udp4_tuple().key();
    let hash = ct.hash(&key);
    let c = ctx(Hook::PreRouting, L3::Ipv4, &skb, 1000);
    const N: u32 = 20_000;
    let (parse, ok1) = ns_per_call(N, || parse_ipv4(skb.skb(), 0).is_ok());
    let (keyhash, ok2) = ns_per_call(N, || {
        parse_ipv4(skb.skb(), 0).is_ok_and(|p| ct.hash(&p.tuple.key()) == hash)
    });
    let (find, ok3) = ns_per_call(N, || {
        let rcu = RcuGuard::new();
        table.find(&ct, &key, hash, 1000, rcu.section()).is_some()
    });
    let (track, ok4) = ns_per_call(N, || {
        ct.on(&table, cache, 0).track(skb.skb(), &c) == Verdict::Accept
    });
    let (confirm, ok5) = ns_per_call(N, || {
        ct.on(&table, cache, 0)
            .confirm(skb.skb(), &ctx(Hook::LocalIn, L3::Ipv4, &skb, 1000))
            == Verdict::Accept
    });
    let (stat, _) = ns_per_call(N, || {
        ct.count_search_restart();
        true
    });
    let (clock, ok6) = ns_per_call(N, || clock_now().hz > 0);
    pr_info!(
        "established UDP packet, ns per call: parse {} | parse+key+hash {} | lookup (ref get/put) {} | whole track {} | confirm (nothing to do) {} | per-CPU stat {} | clock {}\n",
        parse, keyhash, find, track, confirm, stat, clock
    );
    expect!(t, ok1 && ok2 && ok3 && ok4 && ok5 && ok6);
    // The packets all found the one entry: no new entry, nothing invalid.
    expect_eq!(t, ct.entry_count(), 1);
    expect_eq!(t, ct.stats_sum()[Stat::Invalid as usize], 0);
    ct.flush(&table);
}

fn udp4_flow_tuple(sport: u16) -> Tuple {
    let mut t = udp4_tuple();
    t.l4 = L4::Ports {
        src: sport,
        dst: 53,
    };
    t
}

/// KUnit case `gc_reaps_expired`.
///
/// # Safety
///
/// `test` must be the running test, as KUnit passes it.
#[no_mangle]
unsafe extern "C" fn rct_kunit_gc_reaps_expired(test: *mut bindings::kunit) {
    // SAFETY: KUnit passes the running test.
    let Some(t) = (unsafe { Test::from_raw(test) }) else {
        return;
    };
    let (Some((table, cache)), Some(ct)) = (test_table(&t, 16), test_state(&t)) else {
        return;
    };
    // Three unreplied UDP entries (30 s) and one generic (600 s), created at 1000.
    for sport in [1, 2, 3] {
        pass(&ct, &table, cache, 0, &udp_flow(sport, false), 1000);
    }
    let mut gen = ipv4_udp();
    gen[9] = 253;
    pass(&ct, &table, cache, 0, &gen, 1000);
    expect_eq!(t, ct.entry_count(), 4);
    // Before the timeout nothing goes; the next run is due within the clamp.
    let next = table.gc_run(|| 1000 + 29 * 100, 100, 0);
    expect_eq!(t, ct.entry_count(), 4);
    expect!(t, (1..=60 * 100).contains(&next));
    // After 30 s the UDP entries go, the generic one stays.
    while table.gc_run(|| 1000 + 31 * 100, 100, 0) == 0 {}
    expect_eq!(t, ct.entry_count(), 1);
    // Lookups never return an expired entry either: they reap it.
    expect!(
        t,
        find(&ct, &table, &udp4_flow_tuple(1), 1000 + 31 * 100).is_none()
    );
    ct.flush(&table);
}

/// KUnit case `gc_early_drops_under_pressure`.
///
/// # Safety
///
/// `test` must be the running test, as KUnit passes it.
#[no_mangle]
unsafe extern "C" fn rct_kunit_gc_early_drops_under_pressure(test: *mut bindings::kunit) {
    // SAFETY: KUnit passes the running test.
    let Some(t) = (unsafe { Test::from_raw(test) }) else {
        return;
    };
    let (Some((table, cache)), Some(ct)) = (test_table(&t, 64), test_state(&t)) else {
        return;
    };
    // 96 unreplied UDP entries, five of them assured, in a netns allowed 100: 95 %.
    let max = 100;
    for sport in 1..=96 {
        pass(&ct, &table, cache, 0, &udp_flow(sport, false), 1000);
    }
    for sport in 1..=5 {
        if let Some((c, _)) = find(&ct, &table, &udp4_flow_tuple(sport), 1000) {
            c.set_status(IPS_ASSURED);
        }
    }
    expect_eq!(t, ct.entry_count(), 96);
    // Without a full table having asked for it, the collector only reaps what expired.
    while table.gc_run(|| 1100, 100, max) == 0 {}
    expect_eq!(t, ct.entry_count(), 96);
    // Asked: it evicts unassured entries while the netns holds at least 95, as 6.12's
    // gc_worker does, and no assured one.
    table.gc_early_drop();
    while table.gc_run(|| 1100, 100, max) == 0 {}
    expect_eq!(t, ct.entry_count(), 94);
    for sport in 1..=5 {
        expect!(
            t,
            find(&ct, &table, &udp4_flow_tuple(sport), 1100).is_some()
        );
    }
    // A whole scan ended: the request is done with.
    for sport in 200..202 {
        pass(&ct, &table, cache, 0, &udp_flow(sport, false), 1100);
    }
    while table.gc_run(|| 1100, 100, max) == 0 {}
    expect_eq!(t, ct.entry_count(), 96);
    ct.flush(&table);
}

/// KUnit case `early_drop_unassured_only`.
///
/// # Safety
///
/// `test` must be the running test, as KUnit passes it.
#[no_mangle]
unsafe extern "C" fn rct_kunit_early_drop_unassured_only(test: *mut bindings::kunit) {
    // SAFETY: KUnit passes the running test.
    let Some(t) = (unsafe { Test::from_raw(test) }) else {
        return;
    };
    let (Some((table, cache)), Some(ct)) = (test_table(&t, 8), test_state(&t)) else {
        return;
    };
    // With 8 buckets one eviction range (8 buckets) covers the table.
    // A: replied for over 2 s, so assured; B: unreplied.
    pass(&ct, &table, cache, 0, &udp_flow(100, false), 1000);
    pass(&ct, &table, cache, 0, &udp_flow(100, true), 1100);
    pass(&ct, &table, cache, 0, &udp_flow(100, false), 1400);
    pass(&ct, &table, cache, 0, &udp_flow(200, false), 1400);
    let (Some((a, _)), Some((b, _))) = (
        find(&ct, &table, &udp4_flow_tuple(100), 1400),
        find(&ct, &table, &udp4_flow_tuple(200), 1400),
    ) else {
        return expect!(t, false);
    };
    expect!(t, a.is_assured() && !b.is_assured());
    expect_eq!(t, table.early_drop(&ct, 0, 1400), 1);
    expect!(t, !a.is_dying() && b.is_dying());
    // Only assured entries left: nothing to evict.
    expect!(
        t,
        table.early_drop(&ct, 0, 1400) == 0 && table.early_drop(&ct, 1 << 31, 1400) == 0
    );
    drop((a, b));
    ct.flush(&table);
}

/// KUnit case `early_drop_whole_bucket`: as 6.12's `early_drop_list`, every unassured entry
/// of the bucket goes at once, and the count says how many.
///
/// # Safety
///
/// `test` must be the running test, as KUnit passes it.
#[no_mangle]
unsafe extern "C" fn rct_kunit_early_drop_whole_bucket(test: *mut bindings::kunit) {
    // SAFETY: KUnit passes the running test.
    let Some(t) = (unsafe { Test::from_raw(test) }) else {
        return;
    };
    // One bucket: every entry is in it.
    let (Some((table, cache)), Some(ct)) = (test_table(&t, 1), test_state(&t)) else {
        return;
    };
    // One assured flow (replied for over 2 s), three unreplied ones.
    pass(&ct, &table, cache, 0, &udp_flow(100, false), 1000);
    pass(&ct, &table, cache, 0, &udp_flow(100, true), 1100);
    pass(&ct, &table, cache, 0, &udp_flow(100, false), 1400);
    for sport in 200..203 {
        pass(&ct, &table, cache, 0, &udp_flow(sport, false), 1400);
    }
    expect_eq!(t, ct.entry_count(), 4);
    expect_eq!(t, table.early_drop(&ct, 0, 1400), 3);
    expect_eq!(t, ct.entry_count(), 1);
    expect!(t, find(&ct, &table, &udp4_flow_tuple(100), 1400).is_some());
    expect_eq!(t, table.early_drop(&ct, 0, 1400), 0);
    ct.flush(&table);
}

/// KUnit case `full_table_drops`.
///
/// # Safety
///
/// `test` must be the running test, as KUnit passes it.
#[no_mangle]
unsafe extern "C" fn rct_kunit_full_table_drops(test: *mut bindings::kunit) {
    // SAFETY: KUnit passes the running test.
    let Some(t) = (unsafe { Test::from_raw(test) }) else {
        return;
    };
    let (Some((table, cache)), Some(ct)) = (test_table(&t, 8), test_state(&t)) else {
        return;
    };
    // max 1: the second flow evicts the first, which is unassured.
    expect_eq!(
        t,
        pass(&ct, &table, cache, 1, &udp_flow(1, false), 1000),
        Some((Verdict::Accept, Verdict::Accept))
    );
    expect_eq!(
        t,
        pass(&ct, &table, cache, 1, &udp_flow(2, false), 1000),
        Some((Verdict::Accept, Verdict::Accept))
    );
    expect_eq!(t, ct.stats_sum()[Stat::EarlyDrop as usize], 1);
    expect_eq!(t, ct.entry_count(), 1);
    // An unconfirmed entry is not a connection yet: with it alone at max, it makes room for
    // a new flow (counted as reaped) instead of the new flow failing.
    let (p3, p4) = (udp_flow(3, false), udp_flow(4, false));
    ct.flush(&table);
    let (Some(s3), Some(s4)) = (
        TestSkb::new(&p3, p3.len(), L3::Ipv4),
        TestSkb::new(&p4, p4.len(), L3::Ipv4),
    ) else {
        return expect!(t, false);
    };
    let v3 = ct
        .on(&table, cache, 1)
        .track(s3.skb(), &ctx(Hook::PreRouting, L3::Ipv4, &s3, 1000));
    let v4 = ct
        .on(&table, cache, 1)
        .track(s4.skb(), &ctx(Hook::PreRouting, L3::Ipv4, &s4, 1000));
    expect_eq!(t, (v3, v4), (Verdict::Accept, Verdict::Accept));
    expect_eq!(t, ct.stats_sum()[Stat::Drop as usize], 0);
    expect_eq!(t, ct.stats_sum()[Stat::UnconfirmedReaped as usize], 1);
    expect_eq!(t, (ct.entry_count(), ct.unconfirmed_count()), (1, 1));
    // s4's entry is the one left: its confirm takes it, s3's finds nothing.
    let c3 = ct
        .on(&table, cache, 0)
        .confirm(s3.skb(), &ctx(Hook::LocalIn, L3::Ipv4, &s3, 1000));
    expect_eq!(t, (c3, ct.unconfirmed_count()), (Verdict::Accept, 1));
    let c4 = ct
        .on(&table, cache, 0)
        .confirm(s4.skb(), &ctx(Hook::LocalIn, L3::Ipv4, &s4, 1000));
    expect_eq!(t, (c4, ct.unconfirmed_count()), (Verdict::Accept, 0));
    let Ok(p4) = parse_ipv4(&p4[..], 0) else {
        return expect!(t, false);
    };
    expect!(t, find(&ct, &table, &p4.tuple, 1000).is_some());
    expect_eq!(t, ct.entry_count(), 1);
    ct.flush(&table);
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

/// IPv4 UDP from `src`:`sport` to `dst`:`dport` carrying a TFTP header with `opcode`.
fn tftp4(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, opcode: u16) -> [u8; 36] {
    let mut p = [0u8; 36];
    p[..20].copy_from_slice(&ipv4_header(17, 16));
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&dst);
    p[10..12].copy_from_slice(&[0, 0]);
    let c = csum(&p[..20]);
    p[10..12].copy_from_slice(&c);
    p[20..22].copy_from_slice(&sport.to_be_bytes());
    p[22..24].copy_from_slice(&dport.to_be_bytes());
    p[24..26].copy_from_slice(&16u16.to_be_bytes());
    p[28..30].copy_from_slice(&opcode.to_be_bytes());
    p[30..36].copy_from_slice(b"f\0oct\0");
    p
}

/// Tracks `pkt` at PRE_ROUTING, runs the helper hook and confirms it at LOCAL_IN.
fn pass_helped(
    ct: &NetState,
    table: &Table,
    cache: &EntryCache,
    pkt: &[u8],
    now: u32,
) -> Option<[Verdict; 3]> {
    let skb = TestSkb::new(pkt, pkt.len(), L3::Ipv4)?;
    let on = ct.on(table, cache, 0);
    Some([
        on.track(skb.skb(), &ctx(Hook::PreRouting, L3::Ipv4, &skb, now)),
        on.help(skb.skb(), &ctx(Hook::LocalIn, L3::Ipv4, &skb, now)),
        on.confirm(skb.skb(), &ctx(Hook::LocalIn, L3::Ipv4, &skb, now)),
    ])
}

/// KUnit case `expectation_life`: a TFTP read request makes an expectation on its
/// unconfirmed master; the reply from another port matches it and is RELATED to the master;
/// a repeated request replaces it (one per master), it expires after 300 s, and it goes with
/// its master.
///
/// # Safety
///
/// `test` must be the running test, as KUnit passes it.
#[no_mangle]
unsafe extern "C" fn rct_kunit_expectation_life(test: *mut bindings::kunit) {
    // SAFETY: KUnit passes the running test.
    let Some(t) = (unsafe { Test::from_raw(test) }) else {
        return;
    };
    let (Some((table, cache)), Some(ct)) = (test_table(&t, 16), test_state(&t)) else {
        return;
    };
    let stat = |s: Stat| ct.stats_sum()[s as usize];
    const ACCEPTED: Option<[Verdict; 3]> = Some([Verdict::Accept; 3]);
    let rrq = tftp4(A4, 3000, B4, 69, 1);
    expect_eq!(t, pass_helped(&ct, &table, cache, &rrq, 1000), ACCEPTED);
    expect_eq!(t, (ct.expect_count(), stat(Stat::ExpectCreate)), (1, 1));
    let Ok(master_tuple) = parse_ipv4(&rrq[..], 0).map(|p| p.tuple) else {
        return expect!(t, false);
    };
    let Some((master, _)) = find(&ct, &table, &master_tuple, 1000) else {
        return expect!(t, false);
    };
    // The same request again: the master's expectation is replaced, not added.
    expect_eq!(t, pass_helped(&ct, &table, cache, &rrq, 1001), ACCEPTED);
    expect_eq!(t, ct.expect_count(), 1);
    expect_eq!(
        t,
        (stat(Stat::ExpectCreate), stat(Stat::ExpectDelete)),
        (2, 1)
    );
    // The reply, from port 4711: expected, RELATED to the master.
    let data = tftp4(B4, 4711, A4, 3000, 3);
    expect_eq!(t, pass_helped(&ct, &table, cache, &data, 1002), ACCEPTED);
    let Ok(data_tuple) = parse_ipv4(&data[..], 0).map(|p| p.tuple) else {
        return expect!(t, false);
    };
    match find(&ct, &table, &data_tuple, 1002) {
        Some((c, Dir::Original)) => {
            expect!(t, c.status() & IPS_EXPECTED != 0);
            expect!(
                t,
                Conn::master(&c).is_some_and(|m| core::ptr::eq::<Conn>(&**m, &*master))
            );
            expect!(t, Conn::helper(&c).is_none());
        }
        _ => expect!(t, false),
    }
    expect_eq!(
        t,
        (
            ct.expect_count(),
            stat(Stat::ExpectNew),
            stat(Stat::ExpectDelete)
        ),
        (0, 1, 2)
    );
    // Another request; left unused, it expires at 300 s and the sweep unlinks it.
    let rrq2 = tftp4(A4, 3001, B4, 69, 2);
    expect_eq!(t, pass_helped(&ct, &table, cache, &rrq2, 1100), ACCEPTED);
    expect_eq!(t, ct.expect_count(), 1);
    let clock = |now: u32| Clock {
        now,
        jiffies: u64::from(now),
        hz: 100,
    };
    ct.sweep_unconfirmed(&clock(1100 + 299 * 100));
    expect_eq!(t, ct.expect_count(), 1);
    ct.sweep_unconfirmed(&clock(1100 + 300 * 100));
    expect_eq!(t, (ct.expect_count(), stat(Stat::ExpectDelete)), (0, 3));
    // One more, then its master is deleted: the expectation goes with it.
    expect_eq!(t, pass_helped(&ct, &table, cache, &rrq2, 1200), ACCEPTED);
    expect_eq!(t, ct.expect_count(), 1);
    let Ok(m2) = parse_ipv4(&rrq2[..], 0).map(|p| p.tuple) else {
        return expect!(t, false);
    };
    let Some((m2, _)) = find(&ct, &table, &m2, 1200) else {
        return expect!(t, false);
    };
    expect!(t, table.kill(&m2));
    expect_eq!(t, (ct.expect_count(), stat(Stat::ExpectDelete)), (0, 4));
    drop((m2, master));
    ct.flush(&table);
    expect_eq!(t, ct.entry_count(), 0);
}

/// KUnit case `entry_widths`: UDP entries are plain objects keeping their state in the
/// entry, TCP entries wide ones keeping it in their tail; both keep what their tracker
/// writes. Without lock debugging a small entry fits in 192 bytes, a quarter less than
/// `nf_conn`'s 256.
///
/// # Safety
///
/// `test` must be the running test, as KUnit passes it.
#[no_mangle]
unsafe extern "C" fn rct_kunit_entry_widths(test: *mut bindings::kunit) {
    // SAFETY: KUnit passes the running test.
    let Some(t) = (unsafe { Test::from_raw(test) }) else {
        return;
    };
    let (Some((table, cache)), Some(ct)) = (test_table(&t, 16), test_state(&t)) else {
        return;
    };
    expect!(t, cache.object_size(false) < cache.object_size(true));
    #[cfg(not(CONFIG_DEBUG_SPINLOCK))]
    expect!(t, cache.object_size(false) <= 192);

    // UDP: the first packet sets the time it may become a stream (jiffies + 2 s).
    pass(&ct, &table, cache, 0, &udp_flow(7000, false), 1000);
    match find(&ct, &table, &udp4_flow_tuple(7000), 1000) {
        Some((c, _)) => {
            expect!(t, !c.is_wide());
            let stream_ts = c.with_l4(|st| match st {
                L4State::Udp(u) => u.stream_ts,
                _ => 0,
            });
            expect!(t, stream_ts > 1000);
        }
        None => expect!(t, false),
    }

    // TCP: the state machine in the tail, advanced by each segment.
    let Ok(flow) = parse_ipv4(&tcp4(false, SYN, 1000, 0)[..], 0).map(|p| p.tuple) else {
        return expect!(t, false);
    };
    let tcp_state = || tcp_entry(&ct, &table, &flow, 1000).map(|(c, s)| (c.is_wide(), s));
    // Sent locally: the segments carry no checksum.
    let ok = Some((Verdict::Accept, Verdict::Accept));
    expect_eq!(
        t,
        send_local(&ct, &table, cache, &tcp4(false, SYN, 1000, 0), 1000),
        ok
    );
    expect_eq!(t, tcp_state(), Some((true, "SYN_SENT")));
    let syn_ack = tcp4(true, SYN | ACK, 5000, 1001);
    expect_eq!(t, send_local(&ct, &table, cache, &syn_ack, 1000), ok);
    expect_eq!(t, tcp_state(), Some((true, "SYN_RECV")));
    ct.flush(&table);
    expect_eq!(t, ct.entry_count(), 0);
}

/// KUnit case `acct_and_timestamps`: entries made while `acct` and `timestamp` are on count
/// packets and bytes per direction and record when they were confirmed; others have neither.
///
/// # Safety
///
/// `test` must be the running test, as KUnit passes it.
#[no_mangle]
unsafe extern "C" fn rct_kunit_acct_and_timestamps(test: *mut bindings::kunit) {
    // SAFETY: KUnit passes the running test.
    let Some(t) = (unsafe { Test::from_raw(test) }) else {
        return;
    };
    let (Some((table, cache)), Some(ct)) = (test_table(&t, 16), test_state(&t)) else {
        return;
    };
    // Before: no extension.
    pass(&ct, &table, cache, 0, &udp_flow(5000, false), 1000);
    match find(&ct, &table, &udp4_flow_tuple(5000), 1000) {
        Some((c, _)) => expect!(t, Conn::counters(&c).is_none() && Conn::start(&c).is_none()),
        None => expect!(t, false),
    }
    ct.set_acct(true);
    ct.set_tstamp(true);
    let before = crate::sys::time::real_ns();
    for _ in 0..3 {
        pass(&ct, &table, cache, 0, &udp_flow(5001, false), 1000);
    }
    pass(&ct, &table, cache, 0, &udp_flow(5001, true), 1001);
    match find(&ct, &table, &udp4_flow_tuple(5001), 1001) {
        Some((c, _)) => {
            let counters =
                Conn::counters(&c).map(|[o, r]| (o.packets, o.bytes, r.packets, r.bytes));
            expect_eq!(t, counters, Some((3, 3 * 28, 1, 28)));
            expect!(t, Conn::start(&c).is_some_and(|s| s >= before));
        }
        None => expect!(t, false),
    }
    // The entry made before still counts nothing.
    pass(&ct, &table, cache, 0, &udp_flow(5000, false), 1002);
    if let Some((c, _)) = find(&ct, &table, &udp4_flow_tuple(5000), 1002) {
        expect!(t, Conn::counters(&c).is_none());
    }
    ct.flush(&table);
}

/// Every flow of `sports` found in both directions, each direction's lookup giving the same
/// entry, and every entry listed exactly once by a scan of all buckets.
fn all_found(t: &Test, ct: &NetState, table: &Table, sports: core::ops::Range<u16>, now: u32) {
    for sport in sports.clone() {
        let flow = udp4_flow_tuple(sport);
        let Some(inverse) = flow.invert() else {
            return expect!(t, false);
        };
        match (find(ct, table, &flow, now), find(ct, table, &inverse, now)) {
            (Some((a, da)), Some((b, db))) => {
                expect_eq!(t, (da, db), (Dir::Original, Dir::Reply));
                expect!(t, core::ptr::eq::<Conn>(&*a, &*b));
            }
            _ => {
                pr_err!("flow {} lost in a table of {}\n", sport, table.size());
                expect!(t, false);
            }
        }
    }
    let mut listed = 0u32;
    for bucket in 0..table.size() {
        table.for_each_in_bucket(bucket, ct, |_| listed += 1);
    }
    expect_eq!(t, listed, u32::from(sports.end - sports.start));
}

/// KUnit case `table_resize`: a table with entries in both directions resized smaller,
/// larger, to one bucket and back: every entry found afterwards in both directions, listed
/// once, the count unchanged; new entries and clashes as before; the nulls restart still
/// works in the new array; 0 refused, the same size nothing.
///
/// # Safety
///
/// `test` must be the running test, as KUnit passes it.
#[no_mangle]
unsafe extern "C" fn rct_kunit_table_resize(test: *mut bindings::kunit) {
    // SAFETY: KUnit passes the running test.
    let Some(t) = (unsafe { Test::from_raw(test) }) else {
        return;
    };
    // 64 buckets for the 600 links: chains of about 10, well below the shortest chain an
    // insert may walk (`MIN_CHAINLEN`, 50), which a 16-bucket table reached now and then.
    let (Some((table, cache)), Some(ct)) = (test_table(&t, 64), test_state(&t)) else {
        return;
    };
    const FLOWS: u16 = 300;
    let first = 20000u16;
    for sport in first..first + FLOWS {
        pass(&ct, &table, cache, 0, &udp_flow(sport, false), 1000);
        // Half of them replied.
        if sport % 2 == 0 {
            pass(&ct, &table, cache, 0, &udp_flow(sport, true), 1000);
        }
    }
    expect_eq!(t, ct.entry_count(), u32::from(FLOWS));
    all_found(&t, &ct, &table, first..first + FLOWS, 1000);
    for size in [7u32, 1, 97, 1024, 3, 4096, 16] {
        expect!(t, table.resize(size).is_ok());
        expect_eq!(t, table.size(), size);
        expect_eq!(t, ct.entry_count(), u32::from(FLOWS));
        all_found(&t, &ct, &table, first..first + FLOWS, 1000);
    }
    // The same size: nothing; 0: refused, nothing changed.
    expect!(t, table.resize(16).is_ok());
    expect_eq!(t, table.resize(0), Err(EINVAL));
    expect_eq!(t, table.size(), 16);
    all_found(&t, &ct, &table, first..first + FLOWS, 1000);
    // Packets of known flows find their entries (no new ones); new flows insert.
    for sport in first..first + 10 {
        pass(&ct, &table, cache, 0, &udp_flow(sport, true), 1100);
    }
    expect_eq!(t, ct.entry_count(), u32::from(FLOWS));
    expect!(t, table.resize(61).is_ok());
    for sport in first + FLOWS..first + FLOWS + 20 {
        pass(&ct, &table, cache, 0, &udp_flow(sport, false), 1100);
        pass(&ct, &table, cache, 0, &udp_flow(sport, true), 1100);
    }
    expect_eq!(t, ct.entry_count(), u32::from(FLOWS) + 20);
    all_found(&t, &ct, &table, first..first + FLOWS + 20, 1100);
    // The nulls restart in the new array: a lookup standing on an entry moved to another
    // chain ends in that chain's nulls value and restarts.
    let Some((entry, _)) = find(&ct, &table, &udp4_flow_tuple(first), 1100) else {
        return expect!(t, false);
    };
    let orig = entry.tuplehash(Dir::Original);
    let bucket = table.bucket_of(entry.hash(Dir::Original));
    let other = (bucket + 1) % table.size();
    let mut probe = udp4_flow_tuple(first);
    probe.l4 = L4::Ports { src: 1, dst: 1 };
    let key = probe.key();
    let restarts = ct.stats_sum()[Stat::SearchRestart as usize];
    let mut moved = false;
    let found = {
        let rcu = RcuGuard::new();
        let hash = entry.hash(Dir::Original);
        table.find_observed(&ct, &key, hash, 1100, rcu.section(), |th| {
            if !moved && core::ptr::eq(th, orig) {
                moved = table.move_for_test(&entry, Dir::Original, bucket, other);
            }
        })
    };
    expect!(t, moved);
    expect!(t, table.move_for_test(&entry, Dir::Original, other, bucket));
    expect!(t, found.is_none());
    expect_eq!(
        t,
        ct.stats_sum()[Stat::SearchRestart as usize],
        restarts + 1
    );
    drop(entry);
    // Deletes find their entries in the new array.
    ct.flush(&table);
    expect_eq!(t, ct.entry_count(), 0);
}

/// KUnit case `acct_clash_merge`: two packets of one new UDP flow race and the second
/// entry merges into the first (`clash_resolution`); as 6.12's `nf_ct_acct_merge`, the
/// winner then counts the loser's packet too.
///
/// # Safety
///
/// `test` must be the running test, as KUnit passes it.
#[no_mangle]
unsafe extern "C" fn rct_kunit_acct_clash_merge(test: *mut bindings::kunit) {
    // SAFETY: KUnit passes the running test.
    let Some(t) = (unsafe { Test::from_raw(test) }) else {
        return;
    };
    let (Some((table, cache)), Some(ct)) = (test_table(&t, 16), test_state(&t)) else {
        return;
    };
    ct.set_acct(true);
    let pkt = udp_flow(7001, false);
    let (Some(a), Some(b)) = (
        TestSkb::new(&pkt, pkt.len(), L3::Ipv4),
        TestSkb::new(&pkt, pkt.len(), L3::Ipv4),
    ) else {
        return expect!(t, false);
    };
    for s in [&a, &b] {
        ct.on(&table, cache, 0)
            .track(s.skb(), &ctx(Hook::PreRouting, L3::Ipv4, s, 700));
    }
    for s in [&a, &b] {
        let v = ct
            .on(&table, cache, 0)
            .confirm(s.skb(), &ctx(Hook::LocalIn, L3::Ipv4, s, 700));
        expect_eq!(t, v, Verdict::Accept);
    }
    expect_eq!(t, ct.stats_sum()[Stat::ClashResolve as usize], 1);
    match find(&ct, &table, &udp4_flow_tuple(7001), 700) {
        Some((c, _)) => {
            let counters =
                Conn::counters(&c).map(|[o, r]| (o.packets, o.bytes, r.packets, r.bytes));
            expect_eq!(t, counters, Some((2, 2 * 28, 0, 0)));
        }
        None => expect!(t, false),
    }
    expect_eq!(t, ct.entry_count(), 1);
    ct.flush(&table);
}
