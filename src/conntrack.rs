// SPDX-License-Identifier: GPL-2.0

//! The tracking core: per-netns state and what each hook does with a packet.
//!
//! Mirrors `net/netfilter/nf_conntrack_core.c`. Hooks reach this through
//! [`crate::netfilter`]; everything here is safe Rust over the wrapper layer.
//!
//! # From the tracking hook to the confirm hook
//!
//! nf_conntrack hands a new entry from `nf_conntrack_in` to `nf_confirm` in `skb->_nfct`.
//! That field is nf_conntrack's, so a new entry waits on a per-CPU unconfirmed list instead,
//! tagged with the address of the skb that created it. The confirm hook takes the entry
//! whose tag is its skb's address *and* whose original tuple is the packet's tuple parsed
//! again: an skb freed between the hooks (dropped, stolen, queued and never re-injected) may
//! see its address reused by another skb, which the tuple check tells apart. Entries whose
//! packet never reaches the confirm hook are reaped when a new entry is listed on the same
//! CPU and they carry the same tag (their skb is gone) or are older than
//! [`UNCONFIRMED_MAX_AGE_SECS`]; they are counted in `unconfirmed_reaped`.

use crate::bindings;
use crate::conn::{
    expires_in_secs, refreshed_timeout, should_gc, CtInfo, PacketAction, Timeouts,
    Verdict as L4Verdict, Zone, IPS_ASSURED, IPS_SEEN_REPLY, NF_CT_DEFAULT_ZONE_DIR,
};
use crate::entry::{Conn, ConnInit, ConnRef, EntryCache};
use crate::netfilter::{Defrag, HookRegistration};
use crate::netns::Net;
use crate::percpu::PerCpuCounters;
use crate::proc::ProcEntry;
use crate::proc_line::{write_line, L4Info, Snapshot};
use crate::proto_generic::generic_packet;
use crate::proto_icmp::{icmp_packet, icmpv6_packet};
use crate::proto_tcp::{
    tcp_error, tcp_packet, TcpAction, TcpConn, TcpPacketCtx, TcpSegment, TcpSettings, TcpVerdict,
};
use crate::proto_udp::{udp_error, udp_packet, udplite_error, udplite_packet, Checksum, UdpState};
use crate::stat::{Stat, StatRow, STAT_COUNT};
use crate::table::{global, Insert, Table};
use crate::tuple::{
    self, icmp_verdict, Dir, IcmpVerdict, PacketBytes, Parsed, IPPROTO_GRE, IPPROTO_ICMP,
    IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_UDPLITE, L3,
};
use core::fmt;
use core::ptr::NonNull;
use core::sync::atomic::{
    AtomicU32,
    Ordering::{Acquire, Relaxed, Release},
};
use kernel::prelude::*;

/// Unconfirmed entries older than this are reaped (see the module docs).
pub(crate) const UNCONFIRMED_MAX_AGE_SECS: u32 = 30;

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
    /// The packet came in on a loopback device: it was tracked on its way out already.
    pub(crate) in_loopback: bool,
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
        // SAFETY: FFI calls without preconditions.
        let (j, hz) = unsafe { (bindings::rct_jiffies64(), bindings::rct_hz()) };
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
    /// The netns, for salting hashes only.
    net: *const bindings::net,
    stats: PerCpuCounters<STAT_COUNT>,
    /// Entries of this netns, listed or in the table (`cnet->count`).
    count: AtomicU32,
    unconfirmed: crate::unconfirmed::Unconfirmed,
    timeouts: Timeouts,
    tcp: TcpSettings,
}

// SAFETY: `net` is only used as a hash salt; everything else is thread-safe.
unsafe impl Send for NetState {}
// SAFETY: As above.
unsafe impl Sync for NetState {}

/// What the protocol trackers keep per entry, packed in the entry's `proto` word.
fn udp_state(conn: &Conn) -> UdpState {
    UdpState {
        stream_ts: conn.proto_state(),
    }
}

impl NetState {
    /// Fresh state for `net`, with zeroed statistics.
    pub(crate) fn new(net: &Net) -> Result<Self> {
        Ok(Self {
            net: net.as_ptr(),
            stats: PerCpuCounters::new()?,
            count: AtomicU32::new(0),
            unconfirmed: crate::unconfirmed::Unconfirmed::new()?,
            timeouts: Timeouts::defaults(),
            tcp: TcpSettings::defaults(),
        })
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

    /// The statistics summed over all CPUs.
    pub(crate) fn stats_sum(&self) -> StatRow {
        self.stats.sum()
    }

    /// Number of entries, unconfirmed ones included (the `entries` statistic).
    pub(crate) fn entry_count(&self) -> u32 {
        self.count.load(Relaxed)
    }

    /// Number of entries waiting for their confirm hook.
    pub(crate) fn unconfirmed_count(&self) -> u32 {
        self.unconfirmed.len()
    }

    /// Called by the last reference of an entry of this netns: returns it to the cache.
    pub(crate) fn entry_freed(&self, conn: NonNull<u8>) {
        if let Some(g) = global() {
            // SAFETY: The entry came from this cache and nothing references it any more.
            unsafe { g.cache.free(conn) };
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
        // "Previously seen (loopback)? Ignore.": tracked at LOCAL_OUT already.
        if ctx.hook == Hook::PreRouting && ctx.in_loopback {
            return Verdict::Accept;
        }
        let Ok(parsed) = Self::parse(pkt, ctx) else {
            self.count_invalid();
            return Verdict::Accept;
        };
        let l3 = ctx.family.l3();
        let proto = parsed.tuple.proto;
        let now = ctx.clock.now;
        if !tracked(proto) {
            return Verdict::Accept;
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
                IcmpVerdict::Untracked => return Verdict::Accept,
                IcmpVerdict::Invalid => {
                    self.count_stat(Stat::IcmpError);
                    return Verdict::Accept;
                }
                IcmpVerdict::Related(inner) => {
                    let key = inner.key();
                    let related = table
                        .find(self, &key, Table::hash(&key, self.net), now)
                        .and_then(|(conn, dir)| conn.tuplehash(dir).tuple())
                        .is_some_and(|t| t.dst == parsed.tuple.dst);
                    if !related {
                        self.count_stat(Stat::IcmpError);
                    }
                    return Verdict::Accept;
                }
            }
        }
        let key = parsed.tuple.key();
        let hash = Table::hash(&key, self.net);
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
                    return Verdict::Accept;
                }
                Outcome::Invalid => {
                    self.count_invalid();
                    return Verdict::Accept;
                }
                Outcome::Drop => {
                    self.count_invalid();
                    self.count_stat(Stat::Drop);
                    return Verdict::Drop;
                }
                Outcome::Repeat => {}
            }
        }
        Verdict::Accept
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
    ) -> Verdict {
        let now = ctx.clock.now;
        let Some(reply) = parsed.tuple.invert() else {
            self.count_invalid();
            return Verdict::Accept;
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
            return Verdict::Accept;
        };
        let timeout = action
            .refresh
            .and_then(|extra| refreshed_timeout(0, now, extra))
            .unwrap_or(0);
        if !self.reserve_entry(table, max, hash, now) {
            // SAFETY: FFI call without preconditions.
            unsafe { bindings::rct_warn_table_full() };
            self.count_stat(Stat::Drop);
            return Verdict::Drop;
        }
        let orig_key = parsed.tuple.key();
        let reply_key = reply.key();
        let init = ConnInit {
            orig: &orig_key,
            reply: &reply_key,
            hash: [hash, Table::hash(&reply_key, self.net)],
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
            return Verdict::Drop;
        };
        let max_age = UNCONFIRMED_MAX_AGE_SECS.saturating_mul(ctx.clock.hz);
        let reaped = self.unconfirmed.add(conn, |old| {
            old.cookie() == ctx.cookie || now.wrapping_sub(old.created()) > max_age
        });
        for _ in 0..reaped {
            self.count_stat(Stat::UnconfirmedReaped);
        }
        Verdict::Accept
    }

    /// Counts a new entry against `max`, evicting an unassured one when full
    /// (`__nf_conntrack_alloc`).
    fn reserve_entry(&self, table: &Table, max: u32, hash: u32, now: u32) -> bool {
        let n = self.count.fetch_add(1, Relaxed).wrapping_add(1);
        if max != 0 && n > max {
            if table.early_drop(self, hash, now) {
                self.count_stat(Stat::EarlyDrop);
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
            p if crate::proto_generic::is_generic(p) => generic_packet(hz, t),
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
    /// table.
    pub(crate) fn confirm<P: Packet + ?Sized>(
        &self,
        table: &Table,
        pkt: &P,
        ctx: &HookCtx,
    ) -> Verdict {
        if self.unconfirmed.len() == 0 {
            return Verdict::Accept;
        }
        // The packet is parsed again only if an entry carries its skb's tag: most packets
        // here belong to confirmed connections and need nothing.
        let mut key = None;
        let Some(conn) = self.unconfirmed.take(|c| {
            c.cookie() == ctx.cookie
                && *key.get_or_insert_with(|| Self::parse(pkt, ctx).ok().map(|p| p.tuple.key()))
                    == Some(c.tuplehash(Dir::Original).load_key_for_compare())
        }) else {
            return Verdict::Accept;
        };
        let clash_ok = match conn.tuplehash(Dir::Original).tuple().map_or(0, |t| t.proto) {
            IPPROTO_UDP | IPPROTO_UDPLITE | IPPROTO_GRE => true,
            p => crate::proto_generic::is_generic(p),
        };
        // SAFETY: FFI call without preconditions.
        let chain_limit = crate::table::MIN_CHAINLEN
            + unsafe { bindings::rct_random_below(crate::table::MAX_CHAINLEN) };
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
            // SAFETY: FFI call without preconditions; process context.
            unsafe { bindings::rct_sleep_jiffies(1) };
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
    ) || crate::proto_generic::is_generic(proto)
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
