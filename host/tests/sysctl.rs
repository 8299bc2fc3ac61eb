// SPDX-License-Identifier: GPL-2.0

//! Tests of the sysctls (`src/proto/sysctl.rs`): names and modes as 6.12 registers them, each
//! handler's validation and conversion against 6.12's (`proc_dointvec_jiffies`,
//! `proc_dou8vec_minmax`, `proc_dointvec_minmax`), the settings cell, the `hashsize` limit,
//! and what the settings do to packets: a timeout, `checksum` off, `log_invalid`.

use crate::host_ct::{ctx, receive, HostCt, Pkt};
use crate::pkt::{udp, Ipv4, Tcp, A4, ACK, B4, SYN};
use crate::proto::conn::secs_to_jiffies;
use crate::proto::handoff::NfView;
use crate::proto::l4proto::Settings;
use crate::proto::pipeline::{Entry, Hook, HookRole, LogInvalid, Packet, Verdict};
use crate::proto::stat::Stat;
use crate::proto::sysctl::{
    jiffies_from_secs, jiffies_secs, log_invalid_wants, secs_from_jiffies, sysctl, sysctls,
    table_size, Field, Kind, Parse, SettingsCell, Source, SysctlError, FIELD_COUNT, HASHSIZE_MAX,
    SYSCTL_COUNT,
};
use crate::proto::tuple::{PacketBytes, ParseError, L3};
use std::cell::RefCell;

/// 6.12's `nf_ct_sysctl_table` names (without `nf_conntrack_`) the module registers, that is
/// all but `expect_max`, `acct`, `events`, `timestamp` and the flowtable timeouts.
const NAMES: &[&str] = &[
    "max",
    "count",
    "buckets",
    "checksum",
    "log_invalid",
    "generic_timeout",
    "tcp_timeout_syn_sent",
    "tcp_timeout_syn_recv",
    "tcp_timeout_established",
    "tcp_timeout_fin_wait",
    "tcp_timeout_close_wait",
    "tcp_timeout_last_ack",
    "tcp_timeout_time_wait",
    "tcp_timeout_close",
    "tcp_timeout_max_retrans",
    "tcp_timeout_unacknowledged",
    "tcp_loose",
    "tcp_be_liberal",
    "tcp_ignore_invalid_rst",
    "tcp_max_retrans",
    "udp_timeout",
    "udp_timeout_stream",
    "icmp_timeout",
    "icmpv6_timeout",
    "sctp_timeout_closed",
    "sctp_timeout_cookie_wait",
    "sctp_timeout_cookie_echoed",
    "sctp_timeout_established",
    "sctp_timeout_shutdown_sent",
    "sctp_timeout_shutdown_recd",
    "sctp_timeout_shutdown_ack_sent",
    "sctp_timeout_heartbeat_sent",
    "dccp_timeout_request",
    "dccp_timeout_respond",
    "dccp_timeout_partopen",
    "dccp_timeout_open",
    "dccp_timeout_closereq",
    "dccp_timeout_closing",
    "dccp_timeout_timewait",
    "dccp_loose",
    "gre_timeout",
    "gre_timeout_stream",
    "expect_max",
    "acct",
    "timestamp",
    "helper",
    "flush",
];

fn by_name(name: &str) -> &'static crate::proto::sysctl::Sysctl {
    sysctls().find(|s| s.name() == name).expect(name)
}

#[test]
fn every_applicable_sysctl_of_6_12_is_there_once() {
    let mut names: Vec<&str> = sysctls().map(|s| s.name()).collect();
    assert_eq!(names.len(), SYSCTL_COUNT);
    let mut want = NAMES.to_vec();
    names.sort_unstable();
    want.sort_unstable();
    assert_eq!(names, want);
    for (i, s) in sysctls().enumerate() {
        assert!(s.name_nul.ends_with('\0') && !s.name().contains('\0'));
        assert_eq!(sysctl(i), Some(s));
    }
    assert_eq!(sysctl(SYSCTL_COUNT), None);
}

#[test]
fn modes_as_6_12_sets_them() {
    for s in sysctls() {
        let (init, other) = (s.mode(true), s.mode(false));
        match s.name() {
            // Global: writable in the initial netns only.
            "max" | "expect_max" | "buckets" => assert_eq!((init, other), (0o644, 0o444)),
            // Read-only everywhere.
            "count" => assert_eq!((init, other), (0o444, 0o444)),
            // An action in every netns, nothing to read (as `net.ipv4.route.flush`).
            "flush" => assert_eq!((init, other), (0o200, 0o200)),
            // Per netns: writable in every one.
            _ => assert_eq!((init, other), (0o644, 0o644), "{}", s.name()),
        }
    }
}

#[test]
fn flush_takes_only_1_and_has_nothing_to_read() {
    let flush = by_name("flush");
    assert_eq!(flush.source, Source::Flush);
    for init in [true, false] {
        assert_eq!(flush.store(1, 100, init), Ok(1));
        for v in [0, 2, -1, i64::from(i32::MAX)] {
            assert_eq!(flush.store(v, 100, init), Err(SysctlError::Invalid), "{v}");
        }
    }
}

#[test]
fn parsers_as_6_12_handlers() {
    for s in sysctls() {
        let want = match s.kind {
            Kind::U8 { .. } => Parse::Uint,
            _ => Parse::Int,
        };
        assert_eq!(s.parse(), want, "{}", s.name());
    }
    // The booleans, as `proc_dou8vec_minmax` with `SYSCTL_ZERO`/`SYSCTL_ONE`.
    for name in [
        "checksum",
        "tcp_loose",
        "tcp_be_liberal",
        "tcp_ignore_invalid_rst",
        "dccp_loose",
    ] {
        assert_eq!(by_name(name).kind, Kind::U8 { min: 0, max: 1 }, "{name}");
    }
    // Without bounds: the whole u8.
    for name in ["log_invalid", "tcp_max_retrans"] {
        assert_eq!(by_name(name).kind, Kind::U8 { min: 0, max: 255 }, "{name}");
    }
    assert_eq!(
        by_name("max").kind,
        Kind::IntMinMax {
            min: 0,
            max: i32::MAX
        }
    );
    let timeouts = sysctls().filter(|s| s.name().contains("timeout")).count();
    assert_eq!(timeouts, 32);
    assert!(sysctls()
        .filter(|s| s.name().contains("timeout"))
        .all(|s| s.kind == Kind::Jiffies));
}

#[test]
fn jiffies_handler_limits_and_signs() {
    // `*lvalp > INT_MAX / HZ` refused, either sign, for each HZ the kernels use.
    for hz in [100u32, 250, 300, 1000] {
        let lim = i64::from(i32::MAX as u32 / hz);
        assert_eq!(jiffies_secs(lim, hz), Ok(lim as i32));
        assert_eq!(jiffies_secs(-lim, hz), Ok(-lim as i32));
        assert_eq!(jiffies_secs(lim + 1, hz), Err(SysctlError::Invalid));
        assert_eq!(jiffies_secs(-lim - 1, hz), Err(SysctlError::Invalid));
        assert_eq!(jiffies_secs(0, hz), Ok(0));
        assert_eq!(
            jiffies_secs(i64::from(i32::MAX), hz),
            Err(SysctlError::Invalid)
        );
        assert_eq!(
            jiffies_secs(i64::from(i32::MIN), hz),
            Err(SysctlError::Invalid)
        );
    }
    let udp = by_name("udp_timeout");
    assert_eq!(udp.store(7, 100, false), Ok(7));
    assert_eq!(udp.store(21_474_837, 100, true), Err(SysctlError::Invalid));
}

#[test]
fn seconds_kept_mean_what_6_12_jiffies_mean() {
    // 6.12 stores `secs * HZ` and shows `jiffies / HZ`; the module stores the seconds and the
    // trackers multiply: for every accepted value, the same reading and the same jiffies.
    for hz in [100u32, 250, 1000] {
        let lim = (i32::MAX as u32 / hz) as i32;
        for secs in [0, 1, 7, 30, 120, 432_000, lim, -1, -5, -lim] {
            let stored = jiffies_secs(i64::from(secs), hz).expect("accepted");
            let kernel = jiffies_from_secs(stored, hz);
            assert_eq!(secs_from_jiffies(kernel, hz), i64::from(secs));
            assert_eq!(
                secs_to_jiffies(stored as u32, hz),
                kernel as u32,
                "{secs} s at {hz}"
            );
        }
    }
    // 6.12's read of jiffies that are no whole number of seconds rounds toward zero.
    assert_eq!(secs_from_jiffies(199, 100), 1);
    assert_eq!(secs_from_jiffies(-199, 100), -1);
}

#[test]
fn u8_and_int_handlers() {
    let b = by_name("tcp_be_liberal");
    assert_eq!(b.store(0, 100, false), Ok(0));
    assert_eq!(b.store(1, 100, false), Ok(1));
    assert_eq!(b.store(2, 100, false), Err(SysctlError::Invalid));
    assert_eq!(b.store(-1, 100, false), Err(SysctlError::Invalid));
    let l = by_name("log_invalid");
    assert_eq!(l.store(6, 100, false), Ok(6));
    assert_eq!(l.store(255, 100, false), Ok(255));
    assert_eq!(l.store(256, 100, false), Err(SysctlError::Invalid));
    let r = by_name("tcp_max_retrans");
    assert_eq!(r.store(0, 100, true), Ok(0));
    assert_eq!(r.store(255, 100, true), Ok(255));
    assert_eq!(r.store(4_294_967_295, 100, true), Err(SysctlError::Invalid));
    let m = by_name("max");
    assert_eq!(m.source, Source::Max);
    assert_eq!(m.store(0, 100, true), Ok(0));
    assert_eq!(m.store(i64::from(i32::MAX), 100, true), Ok(i32::MAX));
    assert_eq!(m.store(-1, 100, true), Err(SysctlError::Invalid));
    assert_eq!(
        m.store(i64::from(i32::MAX) + 1, 100, true),
        Err(SysctlError::Invalid)
    );
    // Global: not from another netns.
    assert_eq!(m.store(100, 100, false), Err(SysctlError::ReadOnly));
    assert_eq!(
        by_name("count").store(1, 100, true),
        Err(SysctlError::ReadOnly)
    );
}

/// `buckets` as `nf_conntrack_hash_sysctl` and `nf_conntrack_hash_resize` take a write: an
/// `int` into an `unsigned int`, 0 `EINVAL`, beyond the `hashsize` limit (negative numbers
/// included) `ENOMEM`; only in the initial netns.
#[test]
fn buckets_handler() {
    let b = by_name("buckets");
    assert_eq!(b.source, Source::Buckets);
    assert_eq!(b.kind, Kind::HashSize);
    assert_eq!(b.parse(), Parse::Int);
    assert_eq!(b.store(1, 100, true), Ok(1));
    assert_eq!(b.store(16384, 100, true), Ok(16384));
    assert_eq!(
        b.store(i64::from(HASHSIZE_MAX), 100, true),
        Ok(HASHSIZE_MAX as i32)
    );
    assert_eq!(b.store(0, 100, true), Err(SysctlError::Invalid));
    assert_eq!(
        b.store(i64::from(HASHSIZE_MAX) + 1, 100, true),
        Err(SysctlError::NoMemory)
    );
    assert_eq!(
        b.store(i64::from(i32::MAX), 100, true),
        Err(SysctlError::NoMemory)
    );
    assert_eq!(b.store(-1, 100, true), Err(SysctlError::NoMemory));
    assert_eq!(
        b.store(i64::from(i32::MIN), 100, true),
        Err(SysctlError::NoMemory)
    );
    // Beyond an `int`: proc_dointvec refuses it before the handler.
    assert_eq!(
        b.store(i64::from(i32::MAX) + 1, 100, true),
        Err(SysctlError::Invalid)
    );
    assert_eq!(b.store(1024, 100, false), Err(SysctlError::ReadOnly));
}

#[test]
fn settings_cell_holds_the_defaults_and_each_write() {
    let d = Settings::defaults();
    let cell = SettingsCell::new(&d);
    assert_eq!(cell.load(), d);
    assert!(d.checksum && d.log_invalid == 0);
    // Every field reaches a setting of its own: writing a value no default has changes the
    // snapshot, and in one place only.
    for i in 0..FIELD_COUNT {
        let ctl = sysctl(crate::proto::sysctl::GLOBAL.len() + i).expect("per netns");
        let Source::Net(f) = ctl.source else {
            panic!("{} is not per netns", ctl.name());
        };
        let cell = SettingsCell::new(&d);
        let v = match ctl.kind {
            Kind::U8 { max: 1, .. } => 1 - cell.get(f),
            Kind::U8 { .. } => 77,
            _ => 4242,
        };
        cell.set(f, v);
        assert_eq!(cell.get(f), v);
        assert_ne!(cell.load(), d, "{}", ctl.name());
        cell.set(
            f,
            ctl.store(i64::from(SettingsCell::new(&d).get(f)), 100, true)
                .unwrap(),
        );
        assert_eq!(cell.load(), d, "{}", ctl.name());
    }
    let cell = SettingsCell::new(&d);
    cell.set(Field::Udp, 7);
    cell.set(Field::TcpLoose, 0);
    cell.set(Field::Checksum, 0);
    cell.set(Field::LogInvalid, 6);
    cell.set(Field::GreStream, -5);
    let s = cell.load();
    assert_eq!(s.timeouts.udp_unreplied, 7);
    assert!(!s.tcp.loose && !s.checksum);
    assert_eq!(s.log_invalid, 6);
    assert_eq!(s.timeouts.gre_replied, -5i32 as u32);
}

#[test]
fn log_invalid_picks_a_protocol_or_all() {
    assert!(!log_invalid_wants(0, 6));
    assert!(log_invalid_wants(6, 6));
    assert!(!log_invalid_wants(17, 6));
    assert!(log_invalid_wants(255, 6) && log_invalid_wants(255, 17));
    // Protocol 0 (IPv6 hop-by-hop as a transport) is never logged: 0 means off.
    assert!(!log_invalid_wants(0, 0));
}

#[test]
fn hashsize_as_6_12_sizes_and_refuses() {
    assert_eq!(HASHSIZE_MAX, 268_435_455);
    assert_eq!(table_size(16, 1 << 20), Some((16, 128)));
    assert_eq!(
        table_size(HASHSIZE_MAX, 1 << 20),
        Some((HASHSIZE_MAX, HASHSIZE_MAX * 8))
    );
    assert_eq!(table_size(HASHSIZE_MAX + 1, 1 << 20), None);
    assert_eq!(table_size(u32::MAX, 1 << 20), None);
    // From the memory size: 2 GiB -> 65536, small machines 1024, more than 4 GiB 262144.
    assert_eq!(table_size(0, (2u64 << 30) / 4096), Some((65536, 65536)));
    assert_eq!(table_size(0, (64u64 << 20) / 4096), Some((1024, 1024)));
    assert_eq!(table_size(0, (8u64 << 30) / 4096), Some((262144, 262144)));
    assert_eq!(table_size(0, (1u64 << 30) / 4096), Some((8192, 8192)));
}

const HZ: u32 = 100;

fn host(f: impl FnOnce(&mut Settings)) -> HostCt {
    let mut s = Settings::defaults();
    f(&mut s);
    HostCt::with(s)
}

#[test]
fn a_written_udp_timeout_is_what_new_entries_get() {
    let ct = host(|s| s.timeouts.udp_unreplied = 7);
    let p = Ipv4::new(17, A4, B4).build(&udp(5000, 53, b"x"));
    assert_eq!(
        receive(&ct, &p, L3::Ipv4, 1000, HZ),
        (Verdict::Accept, Verdict::Accept)
    );
    let e = ct.table.borrow()[0].clone();
    assert_eq!(e.timeout(), 1000 + 7 * HZ);
}

#[test]
fn checksum_off_tracks_a_packet_with_a_bad_checksum() {
    let mut p = Ipv4::new(17, A4, B4).build(&udp(5000, 53, b"x"));
    // The UDP checksum (bytes 26-27 after a 20-byte IP header), broken.
    p[26] ^= 0xff;
    let on = host(|_| {});
    receive(&on, &p, L3::Ipv4, 1000, HZ);
    assert_eq!(on.table.borrow().len(), 0);
    assert_eq!(on.stat(Stat::Invalid), 1);
    let off = host(|s| s.checksum = false);
    receive(&off, &p, L3::Ipv4, 1000, HZ);
    assert_eq!(off.table.borrow().len(), 1);
    assert_eq!(off.stat(Stat::Invalid), 0);
}

/// A packet that keeps what the pipeline logs of it.
struct Logged<'a> {
    pkt: Pkt<'a>,
    logs: RefCell<Vec<String>>,
}

impl PacketBytes for Logged<'_> {
    fn len(&self) -> usize {
        self.pkt.len()
    }
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), ParseError> {
        self.pkt.read(offset, buf)
    }
}

impl Packet for Logged<'_> {
    fn l4_checksum_ok(&self, h: Hook, l3: L3, off: usize, proto: u8, len: Option<usize>) -> bool {
        self.pkt.l4_checksum_ok(h, l3, off, proto, len)
    }
    fn nf_view(&self) -> Option<NfView> {
        None
    }
    fn tail(&self, off: usize) -> Option<&[u8]> {
        self.pkt.tail(off)
    }

    fn nf_seqadj(&self) -> Option<[crate::proto::handoff::SeqAdj; 2]> {
        None
    }

    fn nf_nat_helper(&self) -> bool {
        false
    }
    fn log_invalid(&self, line: &LogInvalid<'_>) {
        let (mut head, mut tail) = (String::new(), String::new());
        line.write_head(&mut head).unwrap();
        line.write_tail(&mut tail).unwrap();
        self.logs.borrow_mut().push(format!("{head} | {tail}"));
    }
}

/// A SYN-ACK with nothing before it: TCP's "invalid new".
fn logs_of_synack(log_invalid: u8) -> Vec<String> {
    let ct = host(|s| s.log_invalid = log_invalid);
    let bytes = Ipv4::new(6, A4, B4).build(&Tcp::new(40000, 80, SYN | ACK).build(b""));
    let p = Logged {
        pkt: Pkt {
            bytes: &bytes,
            nf: None,
        },
        logs: RefCell::new(Vec::new()),
    };
    let c = ctx(Hook::PreRouting, L3::Ipv4, 1, 1000, HZ);
    assert_eq!(
        crate::host_ct::run_hook(&ct, HookRole::Track, &p, &c),
        Verdict::Accept
    );
    assert_eq!(ct.stat(Stat::Invalid), 1);
    p.logs.into_inner()
}

#[test]
fn log_invalid_logs_the_trackers_reason_as_6_12() {
    assert_eq!(
        logs_of_synack(6),
        ["nf_ct_proto_6: invalid new | SRC=192.168.1.10 DST=10.0.0.1 LEN=40 PROTO=TCP SPT=40000 DPT=80"]
    );
    assert_eq!(logs_of_synack(255).len(), 1);
    assert!(logs_of_synack(0).is_empty());
    assert!(logs_of_synack(17).is_empty());
}
