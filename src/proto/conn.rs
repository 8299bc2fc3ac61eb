// SPDX-License-Identifier: GPL-2.0

//! What the core needs to describe a connection: status bits, packet states (`ctinfo`),
//! timeouts, zones and jiffies arithmetic.
//!
//! C headers: [`include/uapi/linux/netfilter/nf_conntrack_common.h`](srctree/include/uapi/linux/netfilter/nf_conntrack_common.h)
//! (`enum ip_conntrack_status`, `enum ip_conntrack_info`),
//! [`include/net/netfilter/nf_conntrack.h`](srctree/include/net/netfilter/nf_conntrack.h)
//! (`nfct_time_stamp`, `nf_ct_expires`, `nf_ct_is_expired`, `nf_ct_should_gc`),
//! [`include/net/netfilter/nf_conntrack_zones.h`](srctree/include/net/netfilter/nf_conntrack_zones.h).
//! C source: [`net/netfilter/nf_conntrack_core.c`](srctree/net/netfilter/nf_conntrack_core.c)
//! (`resolve_normal_ct`, `__nf_ct_refresh_acct`, `__nf_conntrack_confirm`, `nf_conntrack_in`).
//!
//! Pure `core` code, built into the module and into the host crate for unit tests.
//!
//! Two clocks appear here, as in the kernel: `jiffies` (`unsigned long`, 64 bits on the
//! architectures this module supports), and `nfct_time_stamp`, its low 32 bits, in which
//! `ct->timeout` is kept. The latter wraps (5 minutes after boot, as jiffies start at
//! `INITIAL_JIFFIES`), so it is only ever compared through a signed 32-bit difference.

use crate::proto::tuple::Dir;

/// `IPS_EXPECTED`: the connection was created by an expectation (a helper's child).
pub(crate) const IPS_EXPECTED: u32 = 1 << 0;
/// `IPS_SEEN_REPLY`: a packet was seen in the reply direction. Set once, never cleared.
pub(crate) const IPS_SEEN_REPLY: u32 = 1 << 1;
/// `IPS_ASSURED`: the protocol tracker judged the connection worth keeping; early drop
/// skips it.
pub(crate) const IPS_ASSURED: u32 = 1 << 2;
/// `IPS_CONFIRMED`: the entry is in the hash table; its timeout is absolute.
pub(crate) const IPS_CONFIRMED: u32 = 1 << 3;
/// `IPS_SRC_NAT`: source NAT in the original direction.
pub(crate) const IPS_SRC_NAT: u32 = 1 << 4;
/// `IPS_DST_NAT`: destination NAT in the original direction.
pub(crate) const IPS_DST_NAT: u32 = 1 << 5;
/// `IPS_SEQ_ADJUST`: TCP sequence numbers need adjusting.
pub(crate) const IPS_SEQ_ADJUST: u32 = 1 << 6;
/// `IPS_SRC_NAT_DONE`: source NAT set up.
pub(crate) const IPS_SRC_NAT_DONE: u32 = 1 << 7;
/// `IPS_DST_NAT_DONE`: destination NAT set up.
pub(crate) const IPS_DST_NAT_DONE: u32 = 1 << 8;
/// `IPS_DYING`: being removed. Set once, never cleared.
pub(crate) const IPS_DYING: u32 = 1 << 9;
/// `IPS_FIXED_TIMEOUT`: refreshes leave the timeout alone (see [`refreshed_timeout`]).
pub(crate) const IPS_FIXED_TIMEOUT: u32 = 1 << 10;
/// `IPS_TEMPLATE`: a template, never a real connection.
pub(crate) const IPS_TEMPLATE: u32 = 1 << 11;
/// `IPS_NAT_CLASH`: the entry lost an insertion race (clash resolution); it lives a second
/// and is never assured. The uapi header calls this bit `IPS_UNTRACKED` (obsolete there).
pub(crate) const IPS_NAT_CLASH: u32 = 1 << 12;
/// `IPS_HELPER`: a helper was attached explicitly (ruleset, ctnetlink).
pub(crate) const IPS_HELPER: u32 = 1 << 13;
/// `IPS_OFFLOAD`: offloaded to a flow table; `/proc` then shows no timeout.
pub(crate) const IPS_OFFLOAD: u32 = 1 << 14;
/// `IPS_HW_OFFLOAD`: offloaded to hardware.
pub(crate) const IPS_HW_OFFLOAD: u32 = 1 << 15;

/// What a packet is to its connection, `enum ip_conntrack_info` (values as in the uapi).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(crate) enum CtInfo {
    /// `IP_CT_ESTABLISHED`: original direction of a connection that has seen a reply.
    Established = 0,
    /// `IP_CT_RELATED`: original direction, related to another connection (expected
    /// connection before its first reply, or an ICMP error about the original direction).
    Related = 1,
    /// `IP_CT_NEW`: original direction, no reply seen yet.
    New = 2,
    /// `IP_CT_ESTABLISHED_REPLY`: reply direction.
    EstablishedReply = 3,
    /// `IP_CT_RELATED_REPLY`: an ICMP error about the reply direction.
    RelatedReply = 4,
}

impl CtInfo {
    /// The state of a packet whose tuple matched the entry's `dir` tuple, from the entry's
    /// status bits, as `resolve_normal_ct` assigns it.
    pub(crate) fn of_match(dir: Dir, status: u32) -> CtInfo {
        match dir {
            Dir::Reply => CtInfo::EstablishedReply,
            // "Once we've had two way comms, always ESTABLISHED."
            Dir::Original if status & IPS_SEEN_REPLY != 0 => CtInfo::Established,
            Dir::Original if status & IPS_EXPECTED != 0 => CtInfo::Related,
            Dir::Original => CtInfo::New,
        }
    }

    /// The state of an ICMP error related to the entry's `dir` tuple, as
    /// `nf_conntrack_inet_error` assigns it.
    pub(crate) fn related(dir: Dir) -> CtInfo {
        match dir {
            Dir::Original => CtInfo::Related,
            Dir::Reply => CtInfo::RelatedReply,
        }
    }

    /// The direction the packet travels, `CTINFO2DIR`: this picks the accounting counter.
    pub(crate) fn dir(self) -> Dir {
        match self {
            CtInfo::Established | CtInfo::Related | CtInfo::New => Dir::Original,
            CtInfo::EstablishedReply | CtInfo::RelatedReply => Dir::Reply,
        }
    }

    /// Whether an accepted packet in this state sets `IPS_SEEN_REPLY` (the end of
    /// `nf_conntrack_in`). Only [`CtInfo::EstablishedReply`] does: an ICMP error in the
    /// reply direction is no reply. The core raises `IPCT_REPLY` only if the bit was clear.
    pub(crate) fn sets_seen_reply(self) -> bool {
        self == CtInfo::EstablishedReply
    }
}

/// `DCCP_MSL` of nf_conntrack_proto_dccp.c in seconds: the maximum segment lifetime the
/// DCCP timeouts are multiples of (RFC 4340).
const DCCP_MSL: u32 = 2 * 60;

/// Per-netns default timeouts, in seconds (the sysctls `nf_conntrack_*_timeout`). The
/// kernel keeps them in jiffies; [`secs_to_jiffies`] converts.
///
/// Per-connection timeout policies (`nf_ct_timeout_lookup`, the `CT` target's `timeout`)
/// are not modelled: every connection uses its netns' values.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Timeouts {
    /// `nf_conntrack_generic_timeout`: protocols without a tracker.
    pub(crate) generic: u32,
    /// `nf_conntrack_udp_timeout`: UDP and UDP-Lite before they count as a stream.
    pub(crate) udp_unreplied: u32,
    /// `nf_conntrack_udp_timeout_stream`: UDP streams and replied UDP-Lite.
    pub(crate) udp_replied: u32,
    /// `nf_conntrack_icmp_timeout`.
    pub(crate) icmp: u32,
    /// `nf_conntrack_icmpv6_timeout`.
    pub(crate) icmpv6: u32,
    /// `nf_conntrack_tcp_timeout_syn_sent`: TCP `SYN_SENT`, and `NONE` (`timeouts[0]`).
    pub(crate) tcp_syn_sent: u32,
    /// `nf_conntrack_tcp_timeout_syn_recv`: TCP `SYN_RECV`.
    pub(crate) tcp_syn_recv: u32,
    /// `nf_conntrack_tcp_timeout_established`: TCP `ESTABLISHED`.
    pub(crate) tcp_established: u32,
    /// `nf_conntrack_tcp_timeout_fin_wait`: TCP `FIN_WAIT`.
    pub(crate) tcp_fin_wait: u32,
    /// `nf_conntrack_tcp_timeout_close_wait`: TCP `CLOSE_WAIT`.
    pub(crate) tcp_close_wait: u32,
    /// `nf_conntrack_tcp_timeout_last_ack`: TCP `LAST_ACK`.
    pub(crate) tcp_last_ack: u32,
    /// `nf_conntrack_tcp_timeout_time_wait`: TCP `TIME_WAIT`.
    pub(crate) tcp_time_wait: u32,
    /// `nf_conntrack_tcp_timeout_close`: TCP `CLOSE`, and any state after a RST.
    pub(crate) tcp_close: u32,
    /// TCP `SYN_SENT2` (simultaneous open). 6.12 has no sysctl for it.
    pub(crate) tcp_syn_sent2: u32,
    /// `nf_conntrack_tcp_timeout_max_retrans`: the cap once `nf_conntrack_tcp_max_retrans`
    /// retransmissions were seen, or when the receiver's window is zero.
    pub(crate) tcp_max_retrans: u32,
    /// `nf_conntrack_tcp_timeout_unacknowledged`: the cap while data is unacknowledged,
    /// and for connections picked up mid-stream until a reply is seen.
    pub(crate) tcp_unacknowledged: u32,
    /// `nf_conntrack_gre_timeout`: GRE before a reply.
    pub(crate) gre_unreplied: u32,
    /// `nf_conntrack_gre_timeout_stream`: GRE once replied.
    pub(crate) gre_replied: u32,
    /// `nf_conntrack_dccp_timeout_request`: DCCP `REQUEST`, and `NONE` (`timeouts[0]`).
    pub(crate) dccp_request: u32,
    /// `nf_conntrack_dccp_timeout_respond`: DCCP `RESPOND`.
    pub(crate) dccp_respond: u32,
    /// `nf_conntrack_dccp_timeout_partopen`: DCCP `PARTOPEN`.
    pub(crate) dccp_partopen: u32,
    /// `nf_conntrack_dccp_timeout_open`: DCCP `OPEN`.
    pub(crate) dccp_open: u32,
    /// `nf_conntrack_dccp_timeout_closereq`: DCCP `CLOSEREQ`.
    pub(crate) dccp_closereq: u32,
    /// `nf_conntrack_dccp_timeout_closing`: DCCP `CLOSING`.
    pub(crate) dccp_closing: u32,
    /// `nf_conntrack_dccp_timeout_timewait`: DCCP `TIMEWAIT`.
    pub(crate) dccp_timewait: u32,
    /// `nf_conntrack_sctp_timeout_closed`: SCTP `CLOSED`.
    pub(crate) sctp_closed: u32,
    /// `nf_conntrack_sctp_timeout_cookie_wait`: SCTP `COOKIE_WAIT`.
    pub(crate) sctp_cookie_wait: u32,
    /// `nf_conntrack_sctp_timeout_cookie_echoed`: SCTP `COOKIE_ECHOED`.
    pub(crate) sctp_cookie_echoed: u32,
    /// `nf_conntrack_sctp_timeout_established`: SCTP `ESTABLISHED`.
    pub(crate) sctp_established: u32,
    /// `nf_conntrack_sctp_timeout_shutdown_sent`: SCTP `SHUTDOWN_SENT`.
    pub(crate) sctp_shutdown_sent: u32,
    /// `nf_conntrack_sctp_timeout_shutdown_recd`: SCTP `SHUTDOWN_RECD`.
    pub(crate) sctp_shutdown_recd: u32,
    /// `nf_conntrack_sctp_timeout_shutdown_ack_sent`: SCTP `SHUTDOWN_ACK_SENT`.
    pub(crate) sctp_shutdown_ack_sent: u32,
    /// `nf_conntrack_sctp_timeout_heartbeat_sent`: SCTP `HEARTBEAT_SENT` (a secondary path
    /// seen through its HEARTBEAT).
    pub(crate) sctp_heartbeat_sent: u32,
}

impl Timeouts {
    /// Linux 6.12's defaults: `nf_ct_generic_timeout`, `udp_timeouts[]`,
    /// `nf_ct_icmp_timeout`, `nf_ct_icmpv6_timeout`, `tcp_timeouts[]`, `gre_timeouts[]`,
    /// `sctp_timeouts[]` and `nf_conntrack_dccp_init_net` (`DCCP_MSL` is 2 minutes).
    pub(crate) const fn defaults() -> Timeouts {
        Timeouts {
            generic: 600,
            udp_unreplied: 30,
            udp_replied: 120,
            icmp: 30,
            icmpv6: 30,
            tcp_syn_sent: 120,
            tcp_syn_recv: 60,
            tcp_established: 432_000,
            tcp_fin_wait: 120,
            tcp_close_wait: 60,
            tcp_last_ack: 30,
            tcp_time_wait: 120,
            tcp_close: 10,
            tcp_syn_sent2: 120,
            tcp_max_retrans: 300,
            tcp_unacknowledged: 300,
            gre_unreplied: 30,
            gre_replied: 180,
            dccp_request: 2 * DCCP_MSL,
            dccp_respond: 4 * DCCP_MSL,
            dccp_partopen: 4 * DCCP_MSL,
            dccp_open: 12 * 3600,
            dccp_closereq: 64,
            dccp_closing: 64,
            dccp_timewait: 2 * DCCP_MSL,
            sctp_closed: 10,
            sctp_cookie_wait: 3,
            sctp_cookie_echoed: 3,
            sctp_established: 210,
            sctp_shutdown_sent: 3,
            sctp_shutdown_recd: 3,
            sctp_shutdown_ack_sent: 3,
            sctp_heartbeat_sent: 30,
        }
    }
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts::defaults()
    }
}

/// `secs * HZ` as the kernel's timeout tables hold it. The sysctls refuse more than
/// `INT_MAX / HZ` seconds either way (`proc_dointvec_jiffies`), so this never overflows an
/// `int`; it wraps as 6.12's `int` arithmetic does, so that a negative timeout (6.12 accepts
/// them; `secs` holds it as the `int` written, cast) gives the jiffies 6.12 stores.
pub(crate) fn secs_to_jiffies(secs: u32, hz: u32) -> u32 {
    secs.wrapping_mul(hz)
}

/// A protocol tracker's verdict on a packet of a connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Verdict {
    /// `NF_ACCEPT`: the packet belongs to the connection.
    Accept,
    /// `-NF_ACCEPT`: invalid for this connection. The core detaches the packet from it
    /// (a new, unconfirmed entry is thereby freed), counts `invalid` and lets the packet pass.
    Invalid,
}

/// What the core must do after a protocol tracker looked at a packet (the effects of an
/// `nf_conntrack_*_packet` function).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct PacketAction {
    /// Accept or invalid.
    pub(crate) verdict: Verdict,
    /// `Some(extra_jiffies)`: call `nf_ct_refresh_acct(ct, ctinfo, skb, extra_jiffies)`,
    /// i.e. store [`refreshed_timeout`] (unless it is `None`) and, even with a fixed
    /// timeout, count the packet (one packet and `skb->len` bytes in `ctinfo`'s direction).
    pub(crate) refresh: Option<u32>,
    /// Set `IPS_ASSURED` with a test-and-set; if the bit was clear, cache `IPCT_ASSURED`.
    pub(crate) set_assured: bool,
}

impl PacketAction {
    /// Invalid: no refresh, no accounting, no status change.
    pub(crate) const INVALID: PacketAction = PacketAction {
        verdict: Verdict::Invalid,
        refresh: None,
        set_assured: false,
    };

    /// Accept and refresh the timeout to `extra_jiffies` from now.
    pub(crate) const fn refresh(extra_jiffies: u32) -> PacketAction {
        PacketAction {
            verdict: Verdict::Accept,
            refresh: Some(extra_jiffies),
            set_assured: false,
        }
    }
}

/// `nfct_time_stamp`: the low 32 bits of `jiffies`, the clock of `ct->timeout`.
pub(crate) fn nfct_time_stamp(jiffies: u64) -> u32 {
    // Truncation is the point: the kernel casts to u32.
    jiffies as u32
}

/// `time_after(a, b)` on 32-bit stamps: whether `a` is later than `b`, correct across
/// wrap-around as long as they are less than 2^31 apart.
pub(crate) fn time_after(a: u32, b: u32) -> bool {
    // The sign of the wrapping difference, as the kernel's `(long)((b) - (a)) < 0`.
    (b.wrapping_sub(a) as i32) < 0
}

/// `time_after(a, b)` on `unsigned long` jiffies (64 bits), as used for UDP's `stream_ts`.
pub(crate) fn time_after_long(a: u64, b: u64) -> bool {
    (b.wrapping_sub(a) as i64) < 0
}

/// `nf_ct_expires`: jiffies until a confirmed entry's `timeout` passes at `now`
/// (`nfct_time_stamp`), 0 if it has.
pub(crate) fn expires(timeout: u32, now: u32) -> u32 {
    let left = timeout.wrapping_sub(now) as i32;
    // `max(timeout, 0)` on the s32 difference: never negative.
    left.max(0).unsigned_abs()
}

/// `nf_ct_expires(ct) / HZ`: the seconds `/proc/net/nf_conntrack` shows, rounded down and
/// never negative. `hz` is `HZ` (0 yields 0 rather than a division by zero).
pub(crate) fn expires_in_secs(timeout: u32, now: u32, hz: u32) -> i64 {
    i64::from(expires(timeout, now).checked_div(hz).unwrap_or(0))
}

/// `nf_ct_is_expired`: whether a confirmed entry's `timeout` has passed at `now`. An entry
/// expires at its timeout exactly (the difference is `<= 0`).
pub(crate) fn is_expired(timeout: u32, now: u32) -> bool {
    timeout.wrapping_sub(now) as i32 <= 0
}

/// `nf_ct_should_gc`: confirmed, expired and not already dying. Such an entry is killed by
/// whoever finds it (lookup, GC, `/proc` reader) instead of being used or shown.
pub(crate) fn should_gc(status: u32, timeout: u32, now: u32) -> bool {
    status & IPS_CONFIRMED != 0 && status & IPS_DYING == 0 && is_expired(timeout, now)
}

/// The timeout an unconfirmed entry gets when it is confirmed at `now`
/// (`__nf_conntrack_confirm`: `ct->timeout += nfct_time_stamp`). Until then it holds the
/// relative value of its last refresh, so the clock starts at confirmation.
pub(crate) fn confirmed_timeout(relative: u32, now: u32) -> u32 {
    relative.wrapping_add(now)
}

/// The new `ct->timeout` after a refresh by `extra_jiffies` at `now` (`nfct_time_stamp`),
/// as `__nf_ct_refresh_acct`; `None` with `IPS_FIXED_TIMEOUT`, which leaves it unchanged.
///
/// A confirmed entry stores an absolute stamp, `now + extra_jiffies` (wrapping, like the
/// kernel's u32). An unconfirmed one stores `extra_jiffies` itself: it is not in the table,
/// so nothing expires it, and [`confirmed_timeout`] makes it absolute later.
pub(crate) fn refreshed_timeout(status: u32, now: u32, extra_jiffies: u32) -> Option<u32> {
    if status & IPS_FIXED_TIMEOUT != 0 {
        None
    } else if status & IPS_CONFIRMED != 0 {
        Some(extra_jiffies.wrapping_add(now))
    } else {
        Some(extra_jiffies)
    }
}

/// `NF_CT_ZONE_DIR_ORIG`: the zone applies to the original direction.
pub(crate) const NF_CT_ZONE_DIR_ORIG: u8 = 1 << 0;
/// `NF_CT_ZONE_DIR_REPL`: the zone applies to the reply direction.
pub(crate) const NF_CT_ZONE_DIR_REPL: u8 = 1 << 1;
/// `NF_CT_DEFAULT_ZONE_DIR`: both directions.
pub(crate) const NF_CT_DEFAULT_ZONE_DIR: u8 = NF_CT_ZONE_DIR_ORIG | NF_CT_ZONE_DIR_REPL;

/// A conntrack zone, `struct nf_conntrack_zone` without `flags` (the mark-derived zone
/// is resolved before an entry exists).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Zone {
    /// Zone id.
    pub(crate) id: u16,
    /// Directions the id applies to (`NF_CT_ZONE_DIR_*`); other directions use zone 0.
    pub(crate) dir: u8,
}

impl Zone {
    /// `nf_ct_zone_dflt`: zone 0 in both directions.
    pub(crate) const DEFAULT: Zone = Zone {
        id: 0,
        dir: NF_CT_DEFAULT_ZONE_DIR,
    };

    /// `nf_ct_zone_id`: the zone id that counts for `dir`'s tuple (hashing and lookups).
    pub(crate) fn id_in(&self, dir: Dir) -> u16 {
        let bit = match dir {
            Dir::Original => NF_CT_ZONE_DIR_ORIG,
            Dir::Reply => NF_CT_ZONE_DIR_REPL,
        };
        if self.dir & bit != 0 {
            self.id
        } else {
            0
        }
    }
}

impl Default for Zone {
    fn default() -> Zone {
        Zone::DEFAULT
    }
}
