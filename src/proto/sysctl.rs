// SPDX-License-Identifier: GPL-2.0

//! The sysctls under `/proc/sys/net/rust_conntrack/`: what each is, how a written value is
//! validated and converted, and the per-netns settings they write.
//!
//! C source: [`net/netfilter/nf_conntrack_standalone.c`](srctree/net/netfilter/nf_conntrack_standalone.c)
//! (`nf_ct_sysctl_table`, `nf_conntrack_standalone_init_sysctl`),
//! [`kernel/sysctl.c`](srctree/kernel/sysctl.c) (`proc_dointvec_jiffies`,
//! `proc_dou8vec_minmax`, `proc_dointvec_minmax`).
//!
//! Each sysctl is named as 6.12 names it without the `nf_conntrack_` prefix, and behaves as
//! 6.12's handler does: the same units (timeouts in seconds), ranges and errors (`EINVAL`
//! for anything out of range). The kernel's own parsers read the text (`proc_dointvec` or
//! `proc_douintvec` on a temporary, in `src/sys/glue.c`); everything after that is here:
//! [`Sysctl::store`] validates and converts a parsed value, [`Sysctl::show`] converts back.
//!
//! # Storage, and why atomics
//!
//! Per-netns values live in a [`SettingsCell`], one `AtomicI32` per value. A write stores
//! with a relaxed atomic store, a read loads with a relaxed atomic load: a value written
//! while packets are tracked is seen whole, old or new, never torn, and no C code ever
//! touches the cell (the ctl_table's `.data` points at the netns state, which only the Rust
//! handler dereferences). The trackers take a [`Settings`] snapshot of the cell once per
//! tracked packet ([`SettingsCell::load`]: one relaxed load per value, plain loads on x86
//! and arm64), so they keep reading a plain struct, and a packet sees one consistent set.
//!
//! Timeouts are kept in the seconds written: 6.12 keeps `secs * HZ` and divides by `HZ` on
//! read, which gives back the seconds written for every value it accepts
//! (`|secs| <= INT_MAX / HZ`), and the trackers multiply by `HZ` when they use one
//! ([`crate::proto::conn::secs_to_jiffies`], wrapping as 6.12's `int` arithmetic, so that a
//! negative timeout, which 6.12 accepts, behaves as it does there: entries expire at once).
//!
//! # Adding a sysctl
//!
//! A per-netns setting: one line in the `per_net_sysctls!` invocation below (its variant,
//! name, kind and the [`Settings`] field it sets), once the field exists. A global value: one
//! line in [`GLOBAL`] and a [`Source`] the core knows how to read and write.

use crate::proto::l4proto::Settings;
use core::sync::atomic::{AtomicI32, Ordering::Relaxed};

/// `IPPROTO_RAW`: `log_invalid` set to this logs every protocol.
pub(crate) const LOG_ALL_PROTOCOLS: u8 = 255;

/// Why a write is refused; the errno is what 6.12's handlers return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SysctlError {
    /// `EINVAL`: out of range, or beyond what the jiffies arithmetic holds.
    Invalid,
    /// `EPERM`: a read-only value, or a global one written from another netns (the file's
    /// mode already refuses both with `EACCES` at open: this is the second line).
    ReadOnly,
    /// `ENOMEM`: a table size 6.12 refuses to allocate, or an allocation that failed.
    NoMemory,
}

/// Which kernel parser reads a sysctl's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Parse {
    /// `proc_dointvec`: a signed `int`.
    Int,
    /// `proc_douintvec`: an `unsigned int`, negative numbers refused.
    Uint,
}

/// How a value is validated and converted (6.12's handler).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `proc_dointvec_jiffies`: seconds, at most `INT_MAX / HZ` either way.
    Jiffies,
    /// `proc_dou8vec_minmax` with these bounds (`0..=255` without `extra1`/`extra2`).
    U8 {
        /// `extra1`.
        min: u8,
        /// `extra2`.
        max: u8,
    },
    /// `proc_dointvec_minmax` with these bounds.
    IntMinMax {
        /// `extra1`.
        min: i32,
        /// `extra2`.
        max: i32,
    },
    /// `proc_dointvec`, mode 0444.
    ReadOnly,
    /// `proc_dointvec`, mode 0200: writing 1 runs an action, as writing
    /// `net.ipv4.route.flush` does; nothing to read.
    Action,
    /// `nf_conntrack_hash_sysctl`: `proc_dointvec` into an `unsigned int`, then
    /// `nf_conntrack_hash_resize`: 0 is `EINVAL`, more than [`HASHSIZE_MAX`] (negative
    /// numbers included, as their `unsigned int`) `ENOMEM`.
    HashSize,
}

/// Where a sysctl's value lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// A per-netns setting.
    Net(Field),
    /// `nf_conntrack_max`, global: entries allowed per netns.
    Max,
    /// `nf_conntrack_count`: the netns' entries.
    Count,
    /// `nf_conntrack_buckets`, global: the table's size; writing it resizes the table.
    Buckets,
    /// `nf_conntrack_expect_max`, global: expectations allowed per netns.
    ExpectMax,
    /// `nf_conntrack_acct`: new entries count packets and bytes.
    Acct,
    /// `nf_conntrack_timestamp`: new entries record their start.
    Timestamp,
    /// `helper` (as 6.0's `nf_conntrack_helper`): new connections get helpers by port.
    Helper,
    /// `flush`: writing 1 deletes the netns' entries and expectations, as `conntrack -F`
    /// does for nf_conntrack's (through ctnetlink, which is nf_conntrack's own).
    Flush,
}

/// A sysctl.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sysctl {
    /// The file name, NUL-terminated (the C side takes it as is).
    pub(crate) name_nul: &'static str,
    /// Validation and conversion.
    pub(crate) kind: Kind,
    /// Where the value lives.
    pub(crate) source: Source,
}

/// A boolean as 6.12 has them: `proc_dou8vec_minmax`, 0 or 1.
const BOOL: Kind = Kind::U8 { min: 0, max: 1 };
/// A `u8` over its whole range: `proc_dou8vec_minmax` without bounds.
const U8: Kind = Kind::U8 { min: 0, max: 255 };

impl Sysctl {
    /// The file name.
    #[allow(dead_code)] // The host tests use it.
    pub(crate) fn name(&self) -> &'static str {
        self.name_nul.strip_suffix('\0').unwrap_or(self.name_nul)
    }

    /// Whether the value is global (`nf_conntrack_max`, `nf_conntrack_buckets`): 6.12 makes
    /// those read-only outside the initial netns.
    pub(crate) fn is_global(&self) -> bool {
        matches!(
            self.source,
            Source::Max | Source::Buckets | Source::ExpectMax
        )
    }

    /// The file's mode in a netns (`init_net`: the initial one).
    pub(crate) fn mode(&self, init_net: bool) -> u16 {
        if self.kind == Kind::Action {
            0o200
        } else if self.kind == Kind::ReadOnly || (self.is_global() && !init_net) {
            0o444
        } else {
            0o644
        }
    }

    /// The parser of the value's text.
    pub(crate) fn parse(&self) -> Parse {
        match self.kind {
            Kind::U8 { .. } => Parse::Uint,
            Kind::Jiffies
            | Kind::IntMinMax { .. }
            | Kind::ReadOnly
            | Kind::Action
            | Kind::HashSize => Parse::Int,
        }
    }

    /// Validates a parsed value written in the initial netns or not (`init_net`) and
    /// converts it to what is stored (`hz`: `HZ`): 6.12's handler's checks.
    pub(crate) fn store(&self, value: i64, hz: u32, init_net: bool) -> Result<i32, SysctlError> {
        if self.mode(init_net) & 0o200 == 0 {
            return Err(SysctlError::ReadOnly);
        }
        match self.kind {
            Kind::Jiffies => jiffies_secs(value, hz),
            Kind::U8 { min, max } => match u8::try_from(value) {
                Ok(v) if (min..=max).contains(&v) => Ok(i32::from(v)),
                _ => Err(SysctlError::Invalid),
            },
            Kind::IntMinMax { min, max } => match i32::try_from(value) {
                Ok(v) if (min..=max).contains(&v) => Ok(v),
                _ => Err(SysctlError::Invalid),
            },
            Kind::ReadOnly => Err(SysctlError::ReadOnly),
            Kind::Action => match value {
                1 => Ok(1),
                _ => Err(SysctlError::Invalid),
            },
            Kind::HashSize => hash_size(value).map(|v| v as i32),
        }
    }
}

/// The table size a write of `value` to `buckets` asks for, as 6.12's handler takes it:
/// the `int` parsed, stored into an `unsigned int`, 0 refused with `EINVAL`
/// (`nf_conntrack_hash_resize`), more than [`HASHSIZE_MAX`] with `ENOMEM`
/// (`nf_ct_alloc_hashtable`).
pub(crate) fn hash_size(value: i64) -> Result<u32, SysctlError> {
    let Ok(v) = i32::try_from(value) else {
        return Err(SysctlError::Invalid);
    };
    match v as u32 {
        0 => Err(SysctlError::Invalid),
        n if n > HASHSIZE_MAX => Err(SysctlError::NoMemory),
        n => Ok(n),
    }
}

/// `do_proc_dointvec_jiffies_conv`'s check: seconds whose jiffies fit an `int`, of either
/// sign (6.12 accepts negative timeouts).
pub(crate) fn jiffies_secs(secs: i64, hz: u32) -> Result<i32, SysctlError> {
    let limit = i32::MAX as u64 / u64::from(hz.max(1));
    if secs.unsigned_abs() > limit {
        return Err(SysctlError::Invalid);
    }
    i32::try_from(secs).map_err(|_| SysctlError::Invalid)
}

/// `proc_dointvec_jiffies`' write: the jiffies 6.12 stores for `secs` (validated). The host
/// tests check against it that the module's seconds mean what 6.12's jiffies mean.
#[allow(dead_code)]
pub(crate) fn jiffies_from_secs(secs: i32, hz: u32) -> i32 {
    secs.wrapping_mul(hz as i32)
}

/// `proc_dointvec_jiffies`' read: the seconds 6.12 shows for stored `jiffies`, rounded
/// toward zero (host tests, as above).
#[allow(dead_code)]
pub(crate) fn secs_from_jiffies(jiffies: i32, hz: u32) -> i64 {
    let secs = i64::from(jiffies.unsigned_abs() / hz.max(1));
    if jiffies < 0 {
        -secs
    } else {
        secs
    }
}

/// Whether `nf_conntrack_log_invalid` set to `setting` logs invalid packets of `proto`
/// (`nf_l4proto_log_invalid`: the protocol's number, or `IPPROTO_RAW` for all; 0 for none).
pub(crate) fn log_invalid_wants(setting: u8, proto: u8) -> bool {
    setting != 0 && (setting == proto || setting == LOG_ALL_PROTOCOLS)
}

/// A value as a cell stores it.
trait Raw: Copy {
    fn to_raw(self) -> i32;
    fn from_raw(raw: i32) -> Self;
}

impl Raw for u32 {
    fn to_raw(self) -> i32 {
        // Timeouts: seconds, stored as the `int` 6.12's handler takes (negative ones wrap).
        self as i32
    }
    fn from_raw(raw: i32) -> Self {
        raw as u32
    }
}

impl Raw for u8 {
    fn to_raw(self) -> i32 {
        i32::from(self)
    }
    fn from_raw(raw: i32) -> Self {
        // Stored values passed `Kind::U8`'s bounds.
        raw as u8
    }
}

impl Raw for bool {
    fn to_raw(self) -> i32 {
        i32::from(self)
    }
    fn from_raw(raw: i32) -> Self {
        raw != 0
    }
}

/// Declares the per-netns sysctls: their [`Field`]s, their [`Sysctl`]s ([`PER_NET`]) and how
/// a [`SettingsCell`] maps them to [`Settings`], from one line each:
/// `Variant: "name", kind, settings.path;`.
macro_rules! per_net_sysctls {
    ($($var:ident: $name:literal, $kind:expr, $($path:ident).+;)*) => {
        /// A per-netns setting a sysctl writes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(usize)]
        pub(crate) enum Field {
            $(
                #[doc = concat!("`", $name, "`.")]
                $var,
            )*
        }

        /// The number of per-netns settings.
        pub(crate) const FIELD_COUNT: usize = [$(Field::$var),*].len();

        /// The per-netns sysctls, in 6.12's order.
        pub(crate) const PER_NET: [Sysctl; FIELD_COUNT] = [$(
            Sysctl { name_nul: concat!($name, "\0"), kind: $kind, source: Source::Net(Field::$var) },
        )*];

        impl SettingsCell {
            /// Stores every value of `s`.
            pub(crate) fn store_all(&self, s: &Settings) {
                $( self.vals[Field::$var as usize].store(Raw::to_raw(s.$($path).+), Relaxed); )*
            }

            /// The settings now: one relaxed load per value.
            pub(crate) fn load(&self) -> Settings {
                let mut s = Settings::defaults();
                $( s.$($path).+ = Raw::from_raw(self.vals[Field::$var as usize].load(Relaxed)); )*
                s
            }
        }
    };
}

// What 6.12 has in `nf_ct_sysctl_table` that applies, per netns, for the trackers (`acct`,
// `timestamp` and `expect_max` are in `GLOBAL`). Not here: `events`, as the module sends
// no events, and the flowtable offload timeouts, as it has no flowtable.
per_net_sysctls! {
    Checksum: "checksum", BOOL, checksum;
    LogInvalid: "log_invalid", U8, log_invalid;
    Generic: "generic_timeout", Kind::Jiffies, timeouts.generic;
    TcpSynSent: "tcp_timeout_syn_sent", Kind::Jiffies, timeouts.tcp_syn_sent;
    TcpSynRecv: "tcp_timeout_syn_recv", Kind::Jiffies, timeouts.tcp_syn_recv;
    TcpEstablished: "tcp_timeout_established", Kind::Jiffies, timeouts.tcp_established;
    TcpFinWait: "tcp_timeout_fin_wait", Kind::Jiffies, timeouts.tcp_fin_wait;
    TcpCloseWait: "tcp_timeout_close_wait", Kind::Jiffies, timeouts.tcp_close_wait;
    TcpLastAck: "tcp_timeout_last_ack", Kind::Jiffies, timeouts.tcp_last_ack;
    TcpTimeWait: "tcp_timeout_time_wait", Kind::Jiffies, timeouts.tcp_time_wait;
    TcpClose: "tcp_timeout_close", Kind::Jiffies, timeouts.tcp_close;
    TcpMaxRetransTimeout: "tcp_timeout_max_retrans", Kind::Jiffies, timeouts.tcp_max_retrans;
    TcpUnack: "tcp_timeout_unacknowledged", Kind::Jiffies, timeouts.tcp_unacknowledged;
    TcpLoose: "tcp_loose", BOOL, tcp.loose;
    TcpLiberal: "tcp_be_liberal", BOOL, tcp.be_liberal;
    TcpIgnoreInvalidRst: "tcp_ignore_invalid_rst", BOOL, tcp.ignore_invalid_rst;
    TcpMaxRetrans: "tcp_max_retrans", U8, tcp.max_retrans;
    Udp: "udp_timeout", Kind::Jiffies, timeouts.udp_unreplied;
    UdpStream: "udp_timeout_stream", Kind::Jiffies, timeouts.udp_replied;
    Icmp: "icmp_timeout", Kind::Jiffies, timeouts.icmp;
    Icmpv6: "icmpv6_timeout", Kind::Jiffies, timeouts.icmpv6;
    SctpClosed: "sctp_timeout_closed", Kind::Jiffies, timeouts.sctp_closed;
    SctpCookieWait: "sctp_timeout_cookie_wait", Kind::Jiffies, timeouts.sctp_cookie_wait;
    SctpCookieEchoed: "sctp_timeout_cookie_echoed", Kind::Jiffies, timeouts.sctp_cookie_echoed;
    SctpEstablished: "sctp_timeout_established", Kind::Jiffies, timeouts.sctp_established;
    SctpShutdownSent: "sctp_timeout_shutdown_sent", Kind::Jiffies, timeouts.sctp_shutdown_sent;
    SctpShutdownRecd: "sctp_timeout_shutdown_recd", Kind::Jiffies, timeouts.sctp_shutdown_recd;
    SctpShutdownAckSent: "sctp_timeout_shutdown_ack_sent", Kind::Jiffies, timeouts.sctp_shutdown_ack_sent;
    SctpHeartbeatSent: "sctp_timeout_heartbeat_sent", Kind::Jiffies, timeouts.sctp_heartbeat_sent;
    DccpRequest: "dccp_timeout_request", Kind::Jiffies, timeouts.dccp_request;
    DccpRespond: "dccp_timeout_respond", Kind::Jiffies, timeouts.dccp_respond;
    DccpPartopen: "dccp_timeout_partopen", Kind::Jiffies, timeouts.dccp_partopen;
    DccpOpen: "dccp_timeout_open", Kind::Jiffies, timeouts.dccp_open;
    DccpCloseReq: "dccp_timeout_closereq", Kind::Jiffies, timeouts.dccp_closereq;
    DccpClosing: "dccp_timeout_closing", Kind::Jiffies, timeouts.dccp_closing;
    DccpTimewait: "dccp_timeout_timewait", Kind::Jiffies, timeouts.dccp_timewait;
    DccpLoose: "dccp_loose", BOOL, dccp.loose;
    Gre: "gre_timeout", Kind::Jiffies, timeouts.gre_unreplied;
    GreStream: "gre_timeout_stream", Kind::Jiffies, timeouts.gre_replied;
}

/// The sysctls whose values are not protocol settings: the global ones, the netns' entry
/// count, and the per-netns switches the core reads when it makes an entry (6.12:
/// `nf_conntrack_max`, `nf_conntrack_count`, `nf_conntrack_buckets`,
/// `nf_conntrack_expect_max`, `nf_conntrack_acct`, `nf_conntrack_timestamp`; `helper` is
/// 6.0's `nf_conntrack_helper`, on by default here), and `flush`, this netns' `conntrack -F`.
pub(crate) const GLOBAL: [Sysctl; 8] = [
    Sysctl {
        name_nul: "max\0",
        kind: Kind::IntMinMax {
            min: 0,
            max: i32::MAX,
        },
        source: Source::Max,
    },
    Sysctl {
        name_nul: "count\0",
        kind: Kind::ReadOnly,
        source: Source::Count,
    },
    // Writable in the initial netns: a resize of the table (`nf_conntrack_hash_sysctl`).
    Sysctl {
        name_nul: "buckets\0",
        kind: Kind::HashSize,
        source: Source::Buckets,
    },
    Sysctl {
        name_nul: "expect_max\0",
        kind: Kind::IntMinMax {
            min: 1,
            max: i32::MAX,
        },
        source: Source::ExpectMax,
    },
    Sysctl {
        name_nul: "acct\0",
        kind: BOOL,
        source: Source::Acct,
    },
    Sysctl {
        name_nul: "timestamp\0",
        kind: BOOL,
        source: Source::Timestamp,
    },
    Sysctl {
        name_nul: "helper\0",
        kind: BOOL,
        source: Source::Helper,
    },
    Sysctl {
        name_nul: "flush\0",
        kind: Kind::Action,
        source: Source::Flush,
    },
];

/// The number of sysctls.
pub(crate) const SYSCTL_COUNT: usize = GLOBAL.len() + FIELD_COUNT;

/// Sysctl number `index`: the global ones, then the per-netns ones.
pub(crate) fn sysctl(index: usize) -> Option<&'static Sysctl> {
    match index.checked_sub(GLOBAL.len()) {
        None => GLOBAL.get(index),
        Some(i) => PER_NET.get(i),
    }
}

/// Every sysctl, in registration order.
pub(crate) fn sysctls() -> impl Iterator<Item = &'static Sysctl> {
    GLOBAL.iter().chain(PER_NET.iter())
}

// Only ever copied into a new array, never shared.
#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicI32 = AtomicI32::new(0);

/// A netns' settings as the sysctls write them: one atomic per value.
pub(crate) struct SettingsCell {
    vals: [AtomicI32; FIELD_COUNT],
}

impl SettingsCell {
    /// A cell holding `s`.
    pub(crate) fn new(s: &Settings) -> Self {
        let cell = Self {
            vals: [ZERO; FIELD_COUNT],
        };
        cell.store_all(s);
        cell
    }

    /// The stored value of `f`.
    pub(crate) fn get(&self, f: Field) -> i32 {
        self.vals.get(f as usize).map_or(0, |v| v.load(Relaxed))
    }

    /// Stores a value [`Sysctl::store`] accepted.
    pub(crate) fn set(&self, f: Field, v: i32) {
        if let Some(a) = self.vals.get(f as usize) {
            a.store(v, Relaxed);
        }
    }
}

impl Default for SettingsCell {
    fn default() -> Self {
        Self::new(&Settings::defaults())
    }
}

/// The largest `hashsize` 6.12 takes: `nf_ct_alloc_hashtable` refuses more than
/// `INT_MAX / sizeof(struct hlist_nulls_head)` buckets (8 bytes each on 64-bit) before it
/// allocates, so that `kvcalloc` is never asked for more than `INT_MAX` bytes. Bucket indices
/// then stay below the unconfirmed lists' nulls value (`UNCONFIRMED_NULLS`, 2^30).
pub(crate) const HASHSIZE_MAX: u32 = i32::MAX as u32 / 8;

/// Table size and entry maximum for a `hashsize` parameter (0: from the memory size) and
/// the number of 4 KiB RAM pages, as `nf_conntrack_init_start` computes them on 64-bit, or
/// `None` for a size 6.12 refuses (more than [`HASHSIZE_MAX`]). The table has exactly the
/// buckets asked for: 6.12 rounds a size up to a page of buckets (a multiple of 512), and
/// `max` from it.
pub(crate) fn table_size(param: u32, ram_pages: u64) -> Option<(u32, u32)> {
    if param != 0 {
        if param > HASHSIZE_MAX {
            return None;
        }
        // A size was given: "the old value of 8" as max factor.
        return Some((param, param.saturating_mul(8)));
    }
    let page = 4096u64;
    let mut size = u32::try_from(ram_pages.saturating_mul(page) / 16384 / 8).unwrap_or(u32::MAX);
    if ram_pages > 4 * (1 << 30) / page {
        size = 262144;
    } else if ram_pages > (1 << 30) / page {
        size = 65536;
    }
    let size = size.max(1024);
    Some((size, size))
}
