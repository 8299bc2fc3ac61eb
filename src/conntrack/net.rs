// SPDX-License-Identifier: GPL-2.0

//! The tracking core: per-netns state and what each hook does with a packet.
//!
//! Mirrors `net/netfilter/nf_conntrack_core.c`. Hooks reach this through
//! [`crate::sys::netfilter`]; everything here is safe Rust over the wrapper layer.
//!
//! # From the tracking hook to the confirm hook
//!
//! nf_conntrack hands a new entry from `nf_conntrack_in` to `nf_confirm` in `skb->_nfct`.
//! That field is nf_conntrack's, so a new entry waits instead on a per-CPU unconfirmed list,
//! tagged with the address of the skb that made it (its *cookie*). The confirm hook looks
//! only at entries carrying its skb's cookie, and decides with [`crate::proto::handoff::handoff`]:
//!
//! - the packet still reads as the entry's original tuple: no NAT, confirm it;
//! - nf_conntrack tracks the packet (its `skb->_nfct`, read and never written) as the same
//!   flow, and the packet reads as the inverse of nf_conntrack's other direction: nf_nat
//!   translated it between the hooks (DNAT, REDIRECT, SNAT, MASQUERADE, SNAT at LOCAL_IN,
//!   remapped ports and ICMP ids). The entry takes that direction as its reply tuple before
//!   it is inserted, so that replies, which arrive translated, find it, exactly as they find
//!   nf_conntrack's;
//! - anything else is another flow, so another skb at the address of the entry's freed
//!   one: the entry can never be confirmed and is reaped. This is also why a reused address
//!   never confirms the wrong entry: the flow must be the same.
//!
//! Entries whose packet never reaches the confirm hook (dropped in FORWARD or INPUT, stolen)
//! go when their skb's address comes back, at the confirm hook as above or when a new entry
//! is listed on the CPU with the same cookie, or when they are older than
//! [`UNCONFIRMED_MAX_AGE_SECS`] (a per-netns work sweeps every second while any entry
//! waits, so they go even when no packet follows); a CPU's list holds at most
//! [`crate::conntrack::unconfirmed::UNCONFIRMED_MAX_PER_CPU`], and when the table is full and early drop
//! finds nothing, the oldest unconfirmed entry makes room. All are counted in
//! `unconfirmed_reaped`; the `unconfirmed` column shows how many wait. Queued packets
//! (NFQUEUE) come back to the confirm hook with their skb, on any CPU: every list is
//! searched.
//!
//! # Loopback
//!
//! nf_conntrack does not track again at PRE_ROUTING a looped-back packet that carries its
//! entry from LOCAL_OUT. The module decides that fact about the skb the same way: the confirm
//! hook remembers, per CPU, the cookie and a fingerprint of each packet leaving on `lo`
//! ([`crate::proto::handoff::LoopbackRing`]), unless the packet was invalid at LOCAL_OUT, and
//! PRE_ROUTING skips exactly the packets it finds there. A packet entering on `lo` that never
//! passed LOCAL_OUT (sent through a packet socket) is tracked, as nf_conntrack tracks it.

use crate::conntrack::entry::{Conn, ConnInit, ConnRef, EntryCache};
use crate::conntrack::table::{global, Insert, Table};
use crate::conntrack::unconfirmed::Pick;
use crate::proto::conn::{
    expires_in_secs, refreshed_timeout, should_gc, CtInfo, PacketAction, Timeouts,
    Verdict as L4Verdict, Zone, IPS_ASSURED, IPS_SEEN_REPLY, NF_CT_DEFAULT_ZONE_DIR,
};
use crate::proto::handoff::{self, packet_fingerprint, Handoff, LoopbackRing, Mark, NfView};
use crate::proto::proc_line::{write_line, L4Info, Snapshot};
use crate::proto::proto_generic::generic_packet;
use crate::proto::proto_icmp::{icmp_packet, icmpv6_packet};
use crate::proto::proto_tcp::{
    tcp_error, tcp_packet, TcpAction, TcpConn, TcpPacketCtx, TcpSegment, TcpSettings, TcpVerdict,
};
use crate::proto::proto_udp::{
    udp_error, udp_packet, udplite_error, udplite_packet, Checksum, UdpState,
};
use crate::proto::stat::{Stat, StatRow, STAT_COUNT};
use crate::proto::tuple::{
    self, icmp_verdict, Dir, IcmpVerdict, Key, PacketBytes, Parsed, IPPROTO_GRE, IPPROTO_ICMP,
    IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE, KEY_LEN, L3,
};
use crate::sys::bindings;
use crate::sys::netfilter::{Defrag, HookRegistration};
use crate::sys::netns::{Net, NetHandle};
use crate::sys::percpu::{PerCpuBh, PerCpuCounters};
use crate::sys::proc::ProcEntry;
use crate::sys::slab::Released;
use core::fmt;
use core::sync::atomic::{
    AtomicU32,
    Ordering::{Acquire, Relaxed, Release},
};
use kernel::prelude::*;

/// Unconfirmed entries older than this are reaped (see the module docs). A packet takes
/// microseconds from the tracking to the confirm hook; only one queued to user space
/// (NFQUEUE) waits longer, and one waiting longer than this finds no entry to confirm: the
/// flow's next packet makes one.
pub(crate) const UNCONFIRMED_MAX_AGE_SECS: u32 = 3;

/// The L3 family of a hook (`NFPROTO_IPV4` or `NFPROTO_IPV6`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
}

impl Family {
    /// From a hook state's `pf`.
    pub(crate) fn from_pf(pf: u8) -> Option<Self> {
        match u32::from(pf) {
            bindings::NFPROTO_IPV4 => Some(Self::Ipv4),
            bindings::NFPROTO_IPV6 => Some(Self::Ipv6),
            _ => None,
        }
    }

    fn l3(self) -> L3 {
        match self {
            Self::Ipv4 => L3::Ipv4,
            Self::Ipv6 => L3::Ipv6,
        }
    }
}

/// The netfilter hook point a packet is at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hook {
    /// `NF_INET_PRE_ROUTING`.
    PreRouting,
    /// `NF_INET_LOCAL_IN`.
    LocalIn,
    /// `NF_INET_LOCAL_OUT`.
    LocalOut,
    /// `NF_INET_POST_ROUTING`.
    PostRouting,
}

impl Hook {
    /// From a hook state's `hook` (`enum nf_inet_hooks`); FORWARD is not one of ours.
    pub(crate) fn from_raw(hook: u8) -> Option<Self> {
        match u32::from(hook) {
            bindings::nf_inet_hooks_NF_INET_PRE_ROUTING => Some(Self::PreRouting),
            bindings::nf_inet_hooks_NF_INET_LOCAL_IN => Some(Self::LocalIn),
            bindings::nf_inet_hooks_NF_INET_LOCAL_OUT => Some(Self::LocalOut),
            bindings::nf_inet_hooks_NF_INET_POST_ROUTING => Some(Self::PostRouting),
            _ => None,
        }
    }
}

/// Which of the three conntrack hook functions runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HookRole {
    /// `nf_conntrack_in`: PRE_ROUTING and LOCAL_OUT, at `NF_IP_PRI_CONNTRACK`.
    Track,
    /// Helpers: POST_ROUTING and LOCAL_IN, at `NF_IP_PRI_CONNTRACK_HELPER`.
    Helper,
    /// `nf_confirm`: POST_ROUTING and LOCAL_IN, at `NF_IP_PRI_CONNTRACK_CONFIRM`.
    Confirm,
}

/// A hook's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// `NF_ACCEPT`.
    Accept,
    /// `NF_DROP`.
    Drop,
}

/// A packet as the core sees it: its bytes, plus the checks that need the skb.
pub(crate) trait Packet: PacketBytes {
    /// Whether the transport checksum is right (`nf_checksum`, or `nf_checksum_partial`
    /// over `len` bytes), as verified at `hook`.
    fn l4_checksum_ok(
        &self,
        hook: Hook,
        family: Family,
        dataoff: usize,
        proto: u8,
        len: Option<usize>,
    ) -> bool;

    /// nf_conntrack's entry for the packet, if it tracks it (see [`crate::proto::handoff`]).
    fn nf_view(&self) -> Option<NfView>;
}

/// What a hook knows besides the packet.
pub(crate) struct HookCtx {
    /// The hook point.
    pub(crate) hook: Hook,
    /// The family of the hook.
    pub(crate) family: Family,
    /// Offset of the network header in the packet.
    pub(crate) nhoff: usize,
    /// Identifies the skb between the tracking and the confirm hook (its address).
    pub(crate) cookie: usize,
    /// The packet came in on a loopback device (PRE_ROUTING).
    pub(crate) in_loopback: bool,
    /// The packet goes out on a loopback device (POST_ROUTING).
    pub(crate) out_loopback: bool,
    /// The clock.
    pub(crate) clock: Clock,
}

/// Time as the core reads it.
#[derive(Clone, Copy)]
pub(crate) struct Clock {
    /// `nfct_time_stamp`: the low 32 bits of jiffies.
    pub(crate) now: u32,
    /// Jiffies, full width.
    pub(crate) jiffies: u64,
    /// `HZ`.
    pub(crate) hz: u32,
}

impl Clock {
    /// The kernel's clock now.
    pub(crate) fn now() -> Self {
        let (j, hz) = (crate::sys::time::jiffies64(), crate::sys::time::hz());
        Self {
            now: j as u32,
            jiffies: j,
            hz,
        }
    }
}

/// The module's state in one netns: what the hooks and `/proc` read.
///
/// # Invariants
///
/// Outlives every entry it owns: dropping it waits until `count` is zero. Entries point at
/// their state, so it does not move while it has any: the module keeps it in a `KBox`.
pub(crate) struct NetState {
    /// The netns, to salt hashes and kick the sweep.
    net: NetHandle,
    stats: PerCpuCounters<STAT_COUNT>,
    /// Entries of this netns, listed or in the table (`cnet->count`).
    count: AtomicU32,
    unconfirmed: crate::conntrack::unconfirmed::Unconfirmed,
    loopback: PerCpuBh<LoopbackRing>,
    timeouts: Timeouts,
    tcp: TcpSettings,
}

/// What the protocol trackers keep per entry, packed in the entry's `proto` word.
fn udp_state(conn: &Conn) -> UdpState {
    UdpState {
        stream_ts: conn.proto_state(),
    }
}

impl NetState {
    /// Fresh state for `net`, with zeroed statistics.
    pub(crate) fn new(net: NetHandle) -> Result<Self> {
        Ok(Self {
            net,
            stats: PerCpuCounters::new()?,
            count: AtomicU32::new(0),
            unconfirmed: crate::conntrack::unconfirmed::Unconfirmed::new()?,
            loopback: PerCpuBh::new()?,
            timeouts: Timeouts::defaults(),
            tcp: TcpSettings::defaults(),
        })
    }

    /// The raw hash of a tuple's key in this netns (`hash_conntrack_raw`, zone 0); the key's
    /// last byte, the direction, is left out.
    pub(crate) fn hash(&self, key: &Key) -> u32 {
        self.net.hash(key.get(..KEY_LEN - 1).unwrap_or(key))
    }

    fn count_stat(&self, stat: Stat) {
        self.stats.inc(stat as usize);
    }

    /// Counts a packet that could not be tracked.
    pub(crate) fn count_invalid(&self) {
        self.count_stat(Stat::Invalid);
    }

    /// Counts a lookup restarted on a nulls mismatch.
    pub(crate) fn count_search_restart(&self) {
        self.count_stat(Stat::SearchRestart);
    }

    /// One CPU's statistics, or `None` if the CPU is not possible.
    pub(crate) fn stats_of_cpu(&self, cpu: u32) -> Option<StatRow> {
        self.stats.read_cpu(cpu)
    }

    #[cfg(rct_kunit)] // Only the KUnit cases use it.
    /// The statistics summed over all CPUs.
    pub(crate) fn stats_sum(&self) -> StatRow {
        self.stats.sum()
    }

    /// Number of entries, unconfirmed ones included (the `entries` statistic).
    pub(crate) fn entry_count(&self) -> u32 {
        self.count.load(Relaxed)
    }

    #[cfg(rct_kunit)] // Only the KUnit cases use it.
    /// Number of entries waiting for their confirm hook.
    pub(crate) fn unconfirmed_count(&self) -> u32 {
        self.unconfirmed.len()
    }

    /// Number of entries waiting for their confirm hook on `cpu`'s list.
    pub(crate) fn unconfirmed_of_cpu(&self, cpu: u32) -> u32 {
        self.unconfirmed.len_of_cpu(cpu).unwrap_or(0)
    }

    #[cfg(rct_kunit)] // Only the KUnit cases use it.
    /// Records in the running CPU's loopback ring.
    pub(crate) fn loopback_records(&self) -> usize {
        self.loopback.with_this_cpu(|r| r.len())
    }

    /// Called by the last reference of an entry of this netns: returns it to the cache.
    pub(crate) fn entry_freed(&self, conn: Released<Conn>) {
        if let Some(g) = global() {
            g.cache.free(conn);
        }
        // Last: after this the netns state may go away (see `Drop`).
        self.count.fetch_sub(1, Release);
    }

    /// Handles a packet at one of the module's hooks. Packets are never dropped for being
    /// malformed: like nf_conntrack, they are counted as `invalid` and passed on.
    pub(crate) fn hook<P: Packet + ?Sized>(
        &self,
        role: HookRole,
        pkt: &P,
        ctx: &HookCtx,
    ) -> Verdict {
        let stat = match (role, ctx.hook) {
            (HookRole::Track, Hook::PreRouting) => Stat::InPreRouting,
            (HookRole::Track, Hook::LocalOut) => Stat::InLocalOut,
            (HookRole::Helper, Hook::PostRouting) => Stat::HelperPostRouting,
            (HookRole::Helper, Hook::LocalIn) => Stat::HelperLocalIn,
            (HookRole::Confirm, Hook::PostRouting) => Stat::ConfirmPostRouting,
            (HookRole::Confirm, Hook::LocalIn) => Stat::ConfirmLocalIn,
            // Not a registration of ours: leave the packet alone.
            _ => return Verdict::Accept,
        };
        self.count_stat(stat);
        let Some(g) = global() else {
            return Verdict::Accept;
        };
        match role {
            HookRole::Track => self.track(&g.table, &g.cache, g.max, pkt, ctx),
            HookRole::Helper => Verdict::Accept,
            HookRole::Confirm => self.confirm(&g.table, pkt, ctx),
        }
    }

    fn parse<P: Packet + ?Sized>(pkt: &P, ctx: &HookCtx) -> Result<Parsed, tuple::ParseError> {
        match ctx.family {
            Family::Ipv4 => tuple::parse_ipv4(pkt, ctx.nhoff),
            Family::Ipv6 => tuple::parse_ipv6(pkt, ctx.nhoff),
        }
    }

    /// `nf_conntrack_in`.
    pub(crate) fn track<P: Packet + ?Sized>(
        &self,
        table: &Table,
        cache: &EntryCache,
        max: u32,
        pkt: &P,
        ctx: &HookCtx,
    ) -> Verdict {
        // "Previously seen (loopback)? Ignore.": only what was tracked at LOCAL_OUT.
        if ctx.hook == Hook::PreRouting && ctx.in_loopback {
            let fp = packet_fingerprint(pkt, ctx.nhoff);
            if self
                .loopback
                .with_this_cpu(|r| r.take(Mark::Looped, ctx.cookie, fp))
            {
                return Verdict::Accept;
            }
        }
        let (verdict, tracked) = self.track_packet(table, cache, max, pkt, ctx);
        // nf_conntrack leaves an invalid packet without an entry: if it loops back, it is
        // tracked again at PRE_ROUTING.
        if ctx.hook == Hook::LocalOut && !tracked {
            self.loopback
                .with_this_cpu(|r| r.push(Mark::InvalidOut, ctx.cookie, 0));
        }
        verdict
    }

    /// The work of [`Self::track`]; also says whether the packet ends up with an entry (or
    /// untracked on purpose), as nf_conntrack's `skb->_nfct` would.
    fn track_packet<P: Packet + ?Sized>(
        &self,
        table: &Table,
        cache: &EntryCache,
        max: u32,
        pkt: &P,
        ctx: &HookCtx,
    ) -> (Verdict, bool) {
        const TRACKED: (Verdict, bool) = (Verdict::Accept, true);
        const INVALID: (Verdict, bool) = (Verdict::Accept, false);
        let Ok(parsed) = Self::parse(pkt, ctx) else {
            self.count_invalid();
            return INVALID;
        };
        let l3 = ctx.family.l3();
        let proto = parsed.tuple.proto;
        let now = ctx.clock.now;
        if !tracked(proto) {
            return TRACKED;
        }
        if (l3 == L3::Ipv4 && proto == IPPROTO_ICMP) || (l3 == L3::Ipv6 && proto == IPPROTO_ICMPV6)
        {
            // `nf_conntrack_handle_icmp`: errors relate to an entry or are counted.
            let bad_sum = ctx.hook == Hook::PreRouting
                && !pkt.l4_checksum_ok(ctx.hook, ctx.family, parsed.dataoff, proto, None);
            let verdict = if bad_sum {
                IcmpVerdict::Invalid
            } else {
                icmp_verdict(pkt, ctx.nhoff, &parsed)
            };
            match verdict {
                IcmpVerdict::Track => {}
                IcmpVerdict::Untracked => return TRACKED,
                IcmpVerdict::Invalid => {
                    self.count_stat(Stat::IcmpError);
                    return INVALID;
                }
                IcmpVerdict::Related(inner) => {
                    let key = inner.key();
                    let related = table
                        .find(self, &key, self.hash(&key), now)
                        .and_then(|(conn, dir)| conn.tuplehash(dir).tuple())
                        .is_some_and(|t| t.dst == parsed.tuple.dst);
                    if !related {
                        self.count_stat(Stat::IcmpError);
                        return INVALID;
                    }
                    return TRACKED;
                }
            }
        }
        let key = parsed.tuple.key();
        let hash = self.hash(&key);
        // `repeat:` of `nf_conntrack_in`: a SYN reopening a closed TCP connection kills the
        // old entry and is looked up again, which makes a new one.
        for _ in 0..2 {
            let Some((conn, dir)) = table.find(self, &key, hash, now) else {
                return self.new_entry(table, cache, max, pkt, &parsed, hash, ctx);
            };
            let ctinfo = CtInfo::of_match(dir, conn.status());
            let outcome = if proto == IPPROTO_TCP {
                self.tcp_existing(table, &conn, pkt, &parsed, ctinfo, ctx)
            } else {
                let action = self.l4_packet(&conn, pkt, &parsed, ctx);
                if self.apply(&conn, action, now) {
                    Outcome::Accept
                } else {
                    Outcome::Invalid
                }
            };
            match outcome {
                Outcome::Accept => {
                    if ctinfo.sets_seen_reply() {
                        conn.set_status(IPS_SEEN_REPLY);
                    }
                    return TRACKED;
                }
                Outcome::Invalid => {
                    self.count_invalid();
                    return INVALID;
                }
                Outcome::Drop => {
                    self.count_invalid();
                    self.count_stat(Stat::Drop);
                    return (Verdict::Drop, false);
                }
                Outcome::Repeat => {}
            }
        }
        INVALID
    }

    /// The TCP segment at `parsed.dataoff`, checked as `tcp_error` does (the checksum on
    /// incoming packets only).
    fn tcp_segment<P: Packet + ?Sized>(
        pkt: &P,
        parsed: &Parsed,
        ctx: &HookCtx,
    ) -> Option<TcpSegment> {
        let (seg, _full) = tcp_error(pkt, parsed.dataoff).ok()?;
        let sum_ok = ctx.hook != Hook::PreRouting
            || pkt.l4_checksum_ok(ctx.hook, ctx.family, parsed.dataoff, IPPROTO_TCP, None);
        sum_ok.then_some(seg)
    }

    /// `nf_conntrack_tcp_packet` on an entry in the table.
    fn tcp_existing<P: Packet + ?Sized>(
        &self,
        table: &Table,
        conn: &ConnRef,
        pkt: &P,
        parsed: &Parsed,
        ctinfo: CtInfo,
        ctx: &HookCtx,
    ) -> Outcome {
        let Some(seg) = Self::tcp_segment(pkt, parsed, ctx) else {
            return Outcome::Invalid;
        };
        let now = ctx.clock.now;
        let tctx = TcpPacketCtx {
            dir: ctinfo.dir(),
            status: conn.status(),
            ct_timeout: conn.timeout(),
            now,
            hz: ctx.clock.hz,
            synproxy: false,
        };
        let action: TcpAction =
            conn.with_tcp(|tcp| tcp_packet(tcp, &seg, &tctx, &self.tcp, &self.timeouts));
        match action.verdict {
            TcpVerdict::Invalid => {
                if let Some(t) = action.lowered_timeout {
                    conn.set_timeout(t);
                }
                Outcome::Invalid
            }
            // Reopening: kill the old entry and look again; if it was dying, drop.
            TcpVerdict::Repeat if table.kill(conn) => Outcome::Repeat,
            TcpVerdict::Repeat => Outcome::Drop,
            TcpVerdict::Accept => {
                if let Some(t) = action
                    .refresh
                    .and_then(|extra| refreshed_timeout(conn.status(), now, extra))
                {
                    conn.set_timeout(t);
                }
                if action.set_assured {
                    conn.set_status(IPS_ASSURED);
                }
                if action.kill {
                    table.kill(conn);
                }
                Outcome::Accept
            }
        }
    }

    /// `init_conntrack` and the protocol's first look at the packet.
    #[allow(clippy::too_many_arguments)]
    fn new_entry<P: Packet + ?Sized>(
        &self,
        table: &Table,
        cache: &EntryCache,
        max: u32,
        pkt: &P,
        parsed: &Parsed,
        hash: u32,
        ctx: &HookCtx,
    ) -> (Verdict, bool) {
        let now = ctx.clock.now;
        let Some(reply) = parsed.tuple.invert() else {
            self.count_invalid();
            return (Verdict::Accept, false);
        };
        // 6.12 allocates first and lets the protocol reject the new entry; asking first has
        // the same outcome without the allocation.
        let mut udp = UdpState::default();
        let mut tcp = TcpConn::default();
        let action = if parsed.tuple.proto == IPPROTO_TCP {
            // `tcp_new` and the first `nf_conntrack_tcp_packet` on an unconfirmed entry.
            Self::tcp_segment(pkt, parsed, ctx).and_then(|seg| {
                let tctx = TcpPacketCtx {
                    dir: Dir::Original,
                    status: 0,
                    ct_timeout: 0,
                    now,
                    hz: ctx.clock.hz,
                    synproxy: false,
                };
                let a = tcp_packet(&mut tcp, &seg, &tctx, &self.tcp, &self.timeouts);
                (a.verdict == TcpVerdict::Accept).then_some(PacketAction {
                    verdict: L4Verdict::Accept,
                    refresh: a.refresh,
                    set_assured: a.set_assured,
                })
            })
        } else {
            self.l4_verdict(pkt, parsed, 0, parsed.tuple.l4, &mut udp, ctx)
        };
        let Some(action) = action else {
            self.count_invalid();
            return (Verdict::Accept, false);
        };
        let timeout = action
            .refresh
            .and_then(|extra| refreshed_timeout(0, now, extra))
            .unwrap_or(0);
        if !self.reserve_entry(table, max, hash, now) {
            crate::sys::log::warn_table_full();
            self.count_stat(Stat::Drop);
            return (Verdict::Drop, false);
        }
        let orig_key = parsed.tuple.key();
        let reply_key = reply.key();
        let init = ConnInit {
            orig: &orig_key,
            reply: &reply_key,
            hash: [hash, self.hash(&reply_key)],
            timeout,
            proto: udp.stream_ts,
            now,
            cookie: ctx.cookie,
            owner: self,
            tcp,
        };
        let Some(conn) = cache.alloc(&init) else {
            self.count.fetch_sub(1, Relaxed);
            self.count_stat(Stat::Drop);
            return (Verdict::Drop, false);
        };
        let max_age = UNCONFIRMED_MAX_AGE_SECS.saturating_mul(ctx.clock.hz);
        let reaped = self.unconfirmed.add(conn, |old| {
            old.cookie() == ctx.cookie || now.wrapping_sub(old.created()) > max_age
        });
        self.count_reaped(reaped);
        // The sweep reaps it if its packet never comes (one atomic if already armed).
        self.net.kick_sweep(ctx.clock.hz);
        (Verdict::Accept, true)
    }

    /// The sweep (a deferred work of the netns, about once a second while entries wait):
    /// reaps unconfirmed entries older than [`UNCONFIRMED_MAX_AGE_SECS`]. Returns whether
    /// any still wait.
    pub(crate) fn sweep_unconfirmed(&self, clock: &Clock) -> bool {
        let max_age = UNCONFIRMED_MAX_AGE_SECS.saturating_mul(clock.hz);
        let reaped = self
            .unconfirmed
            .reap(|c| clock.now.wrapping_sub(c.created()) > max_age);
        self.count_reaped(reaped);
        self.unconfirmed.len() != 0
    }

    fn count_reaped(&self, n: u32) {
        for _ in 0..n {
            self.count_stat(Stat::UnconfirmedReaped);
        }
    }

    /// Counts a new entry against `max`, evicting an unassured one when full
    /// (`__nf_conntrack_alloc`).
    fn reserve_entry(&self, table: &Table, max: u32, hash: u32, now: u32) -> bool {
        let n = self.count.fetch_add(1, Relaxed).wrapping_add(1);
        if max != 0 && n > max {
            if table.early_drop(self, hash, now) {
                self.count_stat(Stat::EarlyDrop);
            } else if let Some(old) = self.unconfirmed.take_oldest() {
                // An entry waiting for its confirm hook is not a connection yet, and most
                // likely its packet is gone: it makes room before a new flow fails.
                drop(old);
                self.count_reaped(1);
            } else {
                self.count.fetch_sub(1, Relaxed);
                return false;
            }
        }
        true
    }

    /// The protocol's verdict on a packet of `conn`.
    fn l4_packet<P: Packet + ?Sized>(
        &self,
        conn: &Conn,
        pkt: &P,
        parsed: &Parsed,
        ctx: &HookCtx,
    ) -> PacketAction {
        // Only ICMP needs the entry's original tuple (its request type); decoding it for
        // every packet of every protocol would be wasted.
        let orig_l4 = match parsed.tuple.l4 {
            tuple::L4::Icmp { .. } => match conn.tuplehash(Dir::Original).tuple() {
                Some(orig) => orig.l4,
                None => return PacketAction::INVALID,
            },
            l4 => l4,
        };
        let mut udp = udp_state(conn);
        self.l4_verdict(pkt, parsed, conn.status(), orig_l4, &mut udp, ctx)
            .unwrap_or(PacketAction::INVALID)
    }

    /// `nf_conntrack_handle_packet` for an entry with `status` whose original tuple's
    /// transport part is `orig_l4`; `None` if the packet is invalid for it.
    fn l4_verdict<P: Packet + ?Sized>(
        &self,
        pkt: &P,
        parsed: &Parsed,
        status: u32,
        orig_l4: tuple::L4,
        udp: &mut UdpState,
        ctx: &HookCtx,
    ) -> Option<PacketAction> {
        let (t, hz, l3) = (&self.timeouts, ctx.clock.hz, ctx.family.l3());
        let proto = parsed.tuple.proto;
        let action = match proto {
            IPPROTO_UDP | IPPROTO_UDPLITE => {
                let check = if proto == IPPROTO_UDP {
                    udp_error(pkt, parsed.dataoff)
                } else {
                    udplite_error(pkt, parsed.dataoff)
                }
                .ok()?;
                // Incoming checksums only (`nf_conntrack_checksum`, on by default).
                if ctx.hook == Hook::PreRouting {
                    let ok = match check {
                        Checksum::None => true,
                        Checksum::Full => pkt.l4_checksum_ok(
                            ctx.hook,
                            ctx.family,
                            parsed.dataoff,
                            IPPROTO_UDP,
                            None,
                        ),
                        Checksum::Partial(len) => pkt.l4_checksum_ok(
                            ctx.hook,
                            ctx.family,
                            parsed.dataoff,
                            IPPROTO_UDP,
                            Some(len),
                        ),
                    };
                    if !ok {
                        return None;
                    }
                }
                if proto == IPPROTO_UDP {
                    udp_packet(udp, status, ctx.clock.jiffies, hz, t)
                } else {
                    udplite_packet(status, hz, t)
                }
            }
            IPPROTO_ICMP | IPPROTO_ICMPV6 => {
                let tuple::L4::Icmp { ty, .. } = orig_l4 else {
                    return None;
                };
                if proto == IPPROTO_ICMP {
                    icmp_packet(l3, ty, hz, t)
                } else {
                    icmpv6_packet(l3, ty, status, hz, t)
                }
            }
            p if crate::proto::proto_generic::is_generic(p) => generic_packet(hz, t),
            // Not tracked (see `tracked`): never reached.
            _ => return None,
        };
        (action.verdict == L4Verdict::Accept).then_some(action)
    }

    /// Applies a protocol's action to an entry; false if the packet is invalid.
    fn apply(&self, conn: &Conn, action: PacketAction, now: u32) -> bool {
        if action.verdict != L4Verdict::Accept {
            return false;
        }
        if let Some(t) = action
            .refresh
            .and_then(|extra| refreshed_timeout(conn.status(), now, extra))
        {
            conn.set_timeout(t);
        }
        if action.set_assured {
            conn.set_status(IPS_ASSURED);
        }
        true
    }

    /// `nf_confirm`: moves the entry this packet created from the unconfirmed list into the
    /// table (see the module docs), and remembers packets leaving on `lo`.
    pub(crate) fn confirm<P: Packet + ?Sized>(
        &self,
        table: &Table,
        pkt: &P,
        ctx: &HookCtx,
    ) -> Verdict {
        let verdict = self.confirm_entry(table, pkt, ctx);
        if verdict == Verdict::Accept && ctx.hook == Hook::PostRouting && ctx.out_loopback {
            let fp = packet_fingerprint(pkt, ctx.nhoff);
            self.loopback.with_this_cpu(|r| {
                if !r.take(Mark::InvalidOut, ctx.cookie, 0) {
                    r.push(Mark::Looped, ctx.cookie, fp);
                }
            });
        }
        verdict
    }

    fn confirm_entry<P: Packet + ?Sized>(&self, table: &Table, pkt: &P, ctx: &HookCtx) -> Verdict {
        if !self.unconfirmed.may_hold(ctx.cookie) {
            return Verdict::Accept;
        }
        // The packet is parsed again, and nf_conntrack's entry read, only if an entry carries
        // its skb's cookie: most packets here belong to confirmed connections.
        let mut now = None;
        let mut nf = None;
        let mut reply = None;
        let (taken, reaped) = self.unconfirmed.take(|c| {
            if c.cookie() != ctx.cookie {
                return Pick::Skip;
            }
            let Some(orig) = c.tuplehash(Dir::Original).tuple() else {
                return Pick::Reap;
            };
            let now = now.get_or_insert_with(|| Self::parse(pkt, ctx).ok().map(|p| p.tuple));
            let nf = nf.get_or_insert_with(|| pkt.nf_view());
            match handoff::handoff(&orig, now.as_ref(), nf.as_ref()) {
                Handoff::Confirm { reply: r } => {
                    reply = r;
                    Pick::Take
                }
                Handoff::Orphan => Pick::Reap,
            }
        });
        self.count_reaped(reaped);
        let Some(conn) = taken else {
            return Verdict::Accept;
        };
        if let Some(r) = reply {
            let key = r.key();
            if key != conn.tuplehash(Dir::Reply).load_key_for_compare() {
                conn.set_reply(&key, self.hash(&key));
            }
        }
        let clash_ok = match conn.tuplehash(Dir::Original).tuple().map_or(0, |t| t.proto) {
            IPPROTO_UDP | IPPROTO_UDPLITE | IPPROTO_GRE => true,
            p => crate::proto::proto_generic::is_generic(p),
        };
        let chain_limit = crate::conntrack::table::MIN_CHAINLEN
            + crate::sys::random::below(crate::conntrack::table::MAX_CHAINLEN);
        match table.insert(conn, self, ctx.clock.now, clash_ok, chain_limit) {
            Insert::Inserted => {
                self.count_stat(Stat::Insert);
                Verdict::Accept
            }
            Insert::Merged => {
                self.count_stat(Stat::ClashResolve);
                Verdict::Accept
            }
            Insert::Failed => {
                self.count_stat(Stat::InsertFailed);
                self.count_stat(Stat::Drop);
                Verdict::Drop
            }
            Insert::ChainTooLong => {
                self.count_stat(Stat::ChainTooLong);
                self.count_stat(Stat::InsertFailed);
                Verdict::Drop
            }
        }
    }

    /// Writes the `/proc/net/rust_conntrack` lines of this netns' entries in `bucket`.
    pub(crate) fn show_bucket(
        &self,
        table: &Table,
        bucket: u32,
        clock: &Clock,
        w: &mut impl fmt::Write,
    ) {
        table.for_each_in_bucket(bucket, self, |conn| {
            let _ = write_conn(w, conn, clock);
        });
    }

    /// Removes every entry of this netns from `table` and its unconfirmed lists, and waits
    /// until the last reference to each is gone.
    pub(crate) fn flush(&self, table: &Table) {
        self.unconfirmed.drain();
        table.kill_all(self);
        let mut waited = 0u32;
        while self.count.load(Acquire) != 0 {
            // Someone (the collector, a lookup) still holds a reference for a moment.
            crate::sys::time::sleep_jiffies(1);
            waited = waited.wrapping_add(1);
            if waited == 10_000 {
                pr_warn!(
                    "netns exit: still waiting for {} entries\n",
                    self.entry_count()
                );
            }
        }
    }
}

impl Drop for NetState {
    fn drop(&mut self) {
        // INVARIANT: no entry of ours outlives us.
        if let Some(g) = global() {
            self.flush(&g.table);
        }
    }
}

/// Whether the module tracks `proto` yet: SCTP, DCCP and GRE have trackers of their own in
/// 6.12, which the module does not have yet; their packets pass untracked.
fn tracked(proto: u8) -> bool {
    matches!(
        proto,
        IPPROTO_TCP | IPPROTO_UDP | IPPROTO_UDPLITE | IPPROTO_ICMP | IPPROTO_ICMPV6
    ) || crate::proto::proto_generic::is_generic(proto)
}

/// What a packet of an existing entry comes to.
enum Outcome {
    /// Part of the connection.
    Accept,
    /// Invalid for it: counted, passed on.
    Invalid,
    /// Invalid and dropped.
    Drop,
    /// The entry was killed: look the packet up again.
    Repeat,
}

/// One `/proc/net/nf_conntrack` line for `conn`, unless it has expired.
fn write_conn(w: &mut impl fmt::Write, conn: &ConnRef, clock: &Clock) -> fmt::Result {
    let status = conn.status();
    if should_gc(status, conn.timeout(), clock.now) {
        return Ok(());
    }
    let (Some(original), Some(reply)) = (
        conn.tuplehash(Dir::Original).tuple(),
        conn.tuplehash(Dir::Reply).tuple(),
    ) else {
        return Ok(());
    };
    write_line(
        w,
        &Snapshot {
            original,
            reply,
            status,
            secs: expires_in_secs(conn.timeout(), clock.now, clock.hz),
            l4: if original.proto == IPPROTO_TCP {
                L4Info::State(conn.with_tcp(|tcp| tcp.state).name())
            } else {
                L4Info::None
            },
            acct: None,
            mark: conn.mark(),
            zone: Zone {
                id: conn.zone(),
                dir: NF_CT_DEFAULT_ZONE_DIR,
            },
            delta_time: None,
            use_count: conn.refcount(),
        },
    )
}

/// What a netns registers, in drop order: hooks first, so that nothing runs while the
/// `/proc` files and defragmentation go away.
pub(crate) struct NetRegistrations {
    _hooks: HookRegistration,
    _proc_table: ProcEntry,
    _proc_stat: ProcEntry,
    _defrag_ipv6: Defrag,
    _defrag_ipv4: Defrag,
}

impl NetRegistrations {
    /// Sets up `net`; on failure, whatever was set up is undone.
    pub(crate) fn new(net: &Net) -> Result<Self> {
        let defrag_ipv4 = Defrag::enable(net, Family::Ipv4)?;
        let defrag_ipv6 = Defrag::enable(net, Family::Ipv6)?;
        let proc_stat = ProcEntry::stat(net)?;
        let proc_table = ProcEntry::table(net)?;
        let hooks = HookRegistration::new(net)?;
        Ok(Self {
            _hooks: hooks,
            _proc_table: proc_table,
            _proc_stat: proc_stat,
            _defrag_ipv6: defrag_ipv6,
            _defrag_ipv4: defrag_ipv4,
        })
    }
}
