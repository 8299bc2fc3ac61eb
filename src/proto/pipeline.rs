// SPDX-License-Identifier: GPL-2.0

//! What the hooks do with a packet: `nf_conntrack_in` and `nf_confirm`, written once over
//! traits for the table and its entries ([`Conntrack`], [`Entry`]).
//!
//! C source: [`net/netfilter/nf_conntrack_core.c`](srctree/net/netfilter/nf_conntrack_core.c)
//! (`nf_conntrack_in`, `resolve_normal_ct`, `init_conntrack`, `nf_conntrack_handle_icmp`,
//! `nf_conntrack_handle_packet`, `__nf_conntrack_confirm`),
//! [`net/netfilter/nf_conntrack_proto.c`](srctree/net/netfilter/nf_conntrack_proto.c) (`nf_confirm`).
//!
//! The module runs these functions on its hash table and slab entries
//! (`src/conntrack/net.rs`); the host tests run the very same functions on a table of their
//! own, so what they check is what the module does.
//!
//! # From the tracking hook to the confirm hook
//!
//! nf_conntrack hands a new entry from `nf_conntrack_in` to `nf_confirm` in `skb->_nfct`.
//! That field is nf_conntrack's, so a new entry waits instead on an unconfirmed list, tagged
//! with the address of the skb that made it (its *cookie*). The confirm hook looks only at
//! entries carrying its skb's cookie, and decides with [`crate::proto::handoff::handoff`]:
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
//! is listed with the same cookie, or when they are older than [`UNCONFIRMED_MAX_AGE_SECS`]
//! (the core sweeps them); when the table is full and early drop finds nothing, the oldest
//! unconfirmed entry makes room. All are counted in `unconfirmed_reaped`. Queued packets
//! (NFQUEUE) come back to the confirm hook with their skb, on any CPU: every list is searched.
//!
//! # Loopback
//!
//! nf_conntrack does not track again at PRE_ROUTING a looped-back packet that carries its
//! entry from LOCAL_OUT. The module decides that fact about the skb the same way: the confirm
//! hook remembers, per CPU, the cookie and a fingerprint of each packet leaving on `lo`
//! ([`LoopbackRing`]), unless the packet was invalid at LOCAL_OUT, and PRE_ROUTING skips
//! exactly the packets it finds there. A packet entering on `lo` that never passed LOCAL_OUT
//! (sent through a packet socket) is tracked, as nf_conntrack tracks it.

use crate::proto::ablate;
use crate::proto::conn::{refreshed_timeout, CtInfo, IPS_ASSURED, IPS_EXPECTED, IPS_SEEN_REPLY};
use crate::proto::expect::{ExpectError, Expectation};
use crate::proto::handoff::{
    self, packet_fingerprint, Handoff, LoopbackRing, Mark, NfView, SeqAdj,
};
use crate::proto::helper::HelperId;
use crate::proto::helper_ftp::FtpState;
use crate::proto::l4proto::{self, L4Action, L4Proto, L4State, L4Verdict, Settings, Visit};
use crate::proto::stat::Stat;
use crate::proto::sysctl;
use crate::proto::tuple::{
    self, icmp_verdict, Dir, IcmpVerdict, Key, PacketBytes, Parsed, Tuple, IPPROTO_ICMP,
    IPPROTO_ICMPV6, L3,
};
use core::ops::Deref;

/// Unconfirmed entries older than this are reaped. A packet takes microseconds from the
/// tracking to the confirm hook; only one queued to user space (NFQUEUE) waits longer, and one
/// waiting longer than this finds no entry to confirm: the flow's next packet makes one.
pub(crate) const UNCONFIRMED_MAX_AGE_SECS: u32 = 3;

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

/// Time as the pipeline reads it: once per packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Clock {
    /// `nfct_time_stamp`: the low 32 bits of jiffies.
    pub(crate) now: u32,
    /// Jiffies, full width.
    pub(crate) jiffies: u64,
    /// `HZ`.
    pub(crate) hz: u32,
}

impl Clock {
    /// The clock at `jiffies` with `hz` ticks per second.
    pub(crate) fn at(jiffies: u64, hz: u32) -> Self {
        Self {
            // Truncation is the point: `nfct_time_stamp` is the low 32 bits.
            now: jiffies as u32,
            jiffies,
            hz,
        }
    }
}

/// What a hook knows besides the packet.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HookCtx {
    /// The hook point.
    pub(crate) hook: Hook,
    /// The family of the hook.
    pub(crate) l3: L3,
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

/// A packet as the pipeline sees it: its bytes, plus what needs the skb.
pub(crate) trait Packet: PacketBytes {
    /// Whether the transport checksum is right (`nf_checksum`, or `nf_checksum_partial`
    /// over `len` bytes), as verified at `hook`.
    fn l4_checksum_ok(
        &self,
        hook: Hook,
        l3: L3,
        dataoff: usize,
        proto: u8,
        len: Option<usize>,
    ) -> bool;

    /// nf_conntrack's entry for the packet, if it tracks it (see [`crate::proto::handoff`]).
    fn nf_view(&self) -> Option<NfView>;

    /// The sequence adjustment of nf_conntrack's entry for the packet, the packet's direction
    /// first, if nf_conntrack tracks it already and nf_nat's helpers rewrote a payload of it
    /// to another length. No default: a wrapper that forgot to pass it on would say `None`.
    fn nf_seqadj(&self) -> Option<[SeqAdj; 2]>;

    /// Whether nf_conntrack's entry for the packet is translated and has a helper: then
    /// nf_nat's helper rewrites what nf_conntrack's helper finds in it (`nf_nat_ftp`). No
    /// default, as [`Packet::nf_seqadj`].
    fn nf_nat_helper(&self) -> bool;

    /// The packet's bytes from `off` to its end, in one piece: 6.12's helpers make the skb
    /// linear first (`skb_linearize`). `None` if that fails or `off` is past the end.
    fn tail(&self, off: usize) -> Option<&[u8]>;

    /// `skb->ip_summed == CHECKSUM_NONE`: nothing has verified the transport checksum, nor
    /// will the device fill it in (`CHECKSUM_PARTIAL`). SCTP verifies its CRC32c only then.
    fn checksum_none(&self) -> bool {
        true
    }

    /// Logs an invalid packet, rate-limited (`nf_l4proto_log_invalid`, which hands it to
    /// `nf_log_packet`): the module prints `rust_conntrack: ` and [`LogInvalid::write_head`],
    /// the devices (`IN=... OUT=...`), then [`LogInvalid::write_tail`].
    fn log_invalid(&self, _line: &LogInvalid<'_>) {}
}

/// An invalid packet to log, as 6.12's `nf_l4proto_log_invalid` logs it through
/// `nf_log_packet` and `nf_log_syslog`: `nf_ct_proto_6: invalid rst IN=veth0 OUT= ...
/// SRC=10.0.0.1 DST=10.0.0.2 LEN=40 ... PROTO=TCP SPT=1024 DPT=80 ...`. The module prints
/// the prefix, the message, the devices, the addresses, the length and the protocol with its
/// ports, in that order (not the MAC, TOS, TTL, IP id or TCP header fields).
pub(crate) struct LogInvalid<'a> {
    /// The transport protocol.
    pub(crate) proto: u8,
    /// The tracker's message.
    pub(crate) msg: &'a dyn core::fmt::Display,
    /// The packet's tuple.
    pub(crate) tuple: &'a Tuple,
    /// The IP packet's length.
    pub(crate) len: usize,
}

impl LogInvalid<'_> {
    /// `nf_ct_proto_%d: <message>`.
    pub(crate) fn write_head(&self, w: &mut impl core::fmt::Write) -> core::fmt::Result {
        write!(w, "nf_ct_proto_{}: {}", self.proto, self.msg)
    }

    /// `SRC=... DST=... LEN=... PROTO=... [SPT=... DPT=...]`, as `nf_log_syslog` writes
    /// them (IPv6 addresses in all eight groups, as `%pI6`).
    pub(crate) fn write_tail(&self, w: &mut impl core::fmt::Write) -> core::fmt::Result {
        let t = self.tuple;
        w.write_str("SRC=")?;
        tuple::print_addr(w, t.l3, &t.src)?;
        w.write_str(" DST=")?;
        tuple::print_addr(w, t.l3, &t.dst)?;
        write!(w, " LEN={} ", self.len)?;
        match self.proto {
            tuple::IPPROTO_TCP => w.write_str("PROTO=TCP")?,
            tuple::IPPROTO_UDP => w.write_str("PROTO=UDP")?,
            tuple::IPPROTO_UDPLITE => w.write_str("PROTO=UDPLITE")?,
            IPPROTO_ICMP => w.write_str("PROTO=ICMP")?,
            IPPROTO_ICMPV6 => w.write_str("PROTO=ICMPv6")?,
            p => write!(w, "PROTO={p}")?,
        }
        if let tuple::L4::Ports { src, dst } = t.l4 {
            write!(w, " SPT={src} DPT={dst}")?;
        }
        Ok(())
    }
}

/// The packet as the trackers see it: with `nf_conntrack_checksum` off, every transport
/// checksum passes, as 6.12 tests `state->net->ct.sysctl_checksum` before each verification
/// (TCP, UDP, UDP-Lite, ICMP, ICMPv6, DCCP, SCTP's CRC32c).
struct Checked<'a, P: ?Sized> {
    pkt: &'a P,
    verify: bool,
}

impl<P: Packet + ?Sized> PacketBytes for Checked<'_, P> {
    fn len(&self) -> usize {
        self.pkt.len()
    }

    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), tuple::ParseError> {
        self.pkt.read(offset, buf)
    }
}

impl<P: Packet + ?Sized> Packet for Checked<'_, P> {
    fn l4_checksum_ok(
        &self,
        hook: Hook,
        l3: L3,
        dataoff: usize,
        proto: u8,
        len: Option<usize>,
    ) -> bool {
        !self.verify || self.pkt.l4_checksum_ok(hook, l3, dataoff, proto, len)
    }

    fn nf_view(&self) -> Option<NfView> {
        self.pkt.nf_view()
    }

    fn tail(&self, off: usize) -> Option<&[u8]> {
        self.pkt.tail(off)
    }

    fn nf_seqadj(&self) -> Option<[SeqAdj; 2]> {
        self.pkt.nf_seqadj()
    }

    fn nf_nat_helper(&self) -> bool {
        self.pkt.nf_nat_helper()
    }

    fn checksum_none(&self) -> bool {
        self.verify && self.pkt.checksum_none()
    }

    fn log_invalid(&self, line: &LogInvalid<'_>) {
        self.pkt.log_invalid(line)
    }
}

/// Logs an invalid packet if the tracker says why and `log_invalid` asks for its protocol
/// (`nf_ct_l4proto_log_invalid`).
fn log_invalid<C: Conntrack + ?Sized, P: Packet + ?Sized>(
    ct: &C,
    pkt: &P,
    parsed: &Parsed,
    ctx: &HookCtx,
    action: &L4Action,
) {
    let Some(msg) = &action.log else {
        return;
    };
    let proto = parsed.tuple.proto;
    if !sysctl::log_invalid_wants(ct.settings().log_invalid, proto) {
        return;
    }
    pkt.log_invalid(&LogInvalid {
        proto,
        msg,
        tuple: &parsed.tuple,
        len: pkt.len().saturating_sub(ctx.nhoff),
    });
}

/// What the pipeline reads and writes of an entry. Fields may be read racily by lookups:
/// every value is a whole, maybe stale, value.
pub(crate) trait Entry {
    /// `IPS_*` bits.
    fn status(&self) -> u32;
    /// Sets `bits`; returns whether all of them were set already (`test_and_set_bit`).
    fn set_status(&self, bits: u32) -> bool;
    /// `ct->timeout`: relative while unconfirmed, absolute once confirmed.
    fn timeout(&self) -> u32;
    /// Stores `ct->timeout`.
    fn set_timeout(&self, t: u32);
    /// Direction `dir`'s tuple.
    fn tuple(&self, dir: Dir) -> Option<Tuple>;
    /// The cookie of the skb that made the entry (until confirmed).
    fn cookie(&self) -> usize;
    /// `nfct_time_stamp` when the entry was made.
    fn created(&self) -> u32;
    /// `ct->mark`.
    fn mark(&self) -> u32;
}

/// A new entry, as [`Conntrack::alloc`] makes it.
#[derive(Clone, Debug)]
pub(crate) struct NewEntry<R> {
    /// The original tuple's key.
    pub(crate) orig: Key,
    /// The reply tuple's key.
    pub(crate) reply: Key,
    /// Their raw hashes.
    pub(crate) hash: [u32; 2],
    /// The relative timeout.
    pub(crate) timeout: u32,
    /// `nfct_time_stamp` now.
    pub(crate) now: u32,
    /// The cookie of the packet's skb.
    pub(crate) cookie: usize,
    /// The tracker's state.
    pub(crate) l4: L4State,
    /// `IPS_*` bits it starts with (`IPS_EXPECTED`).
    pub(crate) status: u32,
    /// `ct->mark`.
    pub(crate) mark: u32,
    /// The connection whose expectation it matched (`ct->master`, counted).
    pub(crate) master: Option<R>,
    /// The helper watching it.
    pub(crate) helper: Option<HelperId>,
}

/// What a scan of the unconfirmed lists does with one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pick {
    /// Not this one: go on.
    Skip,
    /// Take it off its list and hand it to the caller; the scan ends.
    Take,
    /// Take it off its list and drop it (it will never be confirmed); go on.
    Reap,
}

/// What inserting an entry into the table came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Insert {
    /// In the table.
    Inserted,
    /// An equal entry was there already and the new one was dropped (`clash_resolve`).
    Merged,
    /// Not inserted; the packet must be dropped (`insert_failed`).
    Failed,
    /// Not inserted: a chain was too long (`chaintoolong`, `insert_failed`).
    ChainTooLong,
}

/// The table, its entries and the per-netns state the pipeline works on.
pub(crate) trait Conntrack {
    /// An entry.
    type Entry: Entry;
    /// A counted reference to an entry.
    type Ref: Deref<Target = Self::Entry> + Clone;

    /// The protocol settings of the netns.
    fn settings(&self) -> &Settings;
    /// Counts `n` events of `stat` on this CPU.
    fn count(&self, stat: Stat, n: u32);
    /// The raw hash of a tuple's key in this netns (`hash_conntrack_raw`).
    fn hash(&self, key: &Key) -> u32;
    /// `__nf_conntrack_find_get`: the confirmed entry with a tuple `key` (raw hash `hash`),
    /// and which of its directions that is.
    fn find(&self, key: &Key, hash: u32, now: u32) -> Option<(Self::Ref, Dir)>;
    /// A hint: the chain of raw hash `hash` is locked or walked soon.
    fn prefetch_chain(&self, _hash: u32) {}
    /// `nf_ct_delete`: takes the entry out of the table; false if someone else did.
    fn kill(&self, entry: &Self::Ref) -> bool;
    /// Runs `f` on the entry's tracker state with its lock held (`spin_lock_bh(&ct->lock)`).
    fn with_l4<R>(&self, entry: &Self::Ref, f: impl FnOnce(&mut L4State) -> R) -> R;
    /// Counts a new entry against the limit, making room if the table is full (early drop,
    /// else the oldest unconfirmed entry); false if there is none.
    fn reserve(&self, hash: u32, now: u32) -> bool;
    /// Gives back what [`Self::reserve`] took, for an entry that was not made.
    fn unreserve(&self);
    /// A new entry (GFP_ATOMIC), counted by [`Self::reserve`] before.
    fn alloc(&self, new: NewEntry<Self::Ref>) -> Option<Self::Ref>;
    /// Lists a new entry as unconfirmed, after reaping the listed entries `stale` says will
    /// never be confirmed; returns how many were reaped.
    fn list_unconfirmed(&self, entry: Self::Ref, stale: impl FnMut(&Self::Entry) -> bool) -> u32;
    /// Whether an entry carrying `cookie` may be listed (false: certainly not).
    fn may_hold_unconfirmed(&self, cookie: usize) -> bool;
    /// Scans the unconfirmed lists until `pick` takes an entry; returns it and how many
    /// entries `pick` reaped.
    fn take_unconfirmed(&self, pick: impl FnMut(&Self::Entry) -> Pick) -> (Option<Self::Ref>, u32);
    /// Gives an entry taken off its list another reply tuple (`nf_conntrack_alter_reply`).
    fn set_reply(&self, entry: &Self::Ref, reply: &Key, hash: u32);
    /// `__nf_conntrack_confirm`'s insertion; the table takes the reference when it keeps
    /// the entry.
    fn insert(&self, entry: Self::Ref, now: u32, allow_clash: bool) -> Insert;
    /// Says the table is full (`table full, dropping packet`, rate-limited).
    fn table_full(&self);
    /// Makes sure unconfirmed entries get swept in `delay` jiffies.
    fn kick_sweep(&self, delay: u32);
    /// Runs `f` on this CPU's loopback ring.
    fn with_loopback<R>(&self, f: impl FnOnce(&mut LoopbackRing) -> R) -> R;
    /// After a tracker's verdict on a packet in state `ctinfo` (`len` bytes) of `entry`
    /// (`None`: a first packet the tracker refused, which makes no entry): where 6.12
    /// accounts the packet (`nf_ct_refresh_acct`), caches events (`IPCT_ASSURED`,
    /// `IPCT_PROTOINFO`) and logs invalid packets. The module does none of these yet; the
    /// host tests record them.
    fn l4_action(&self, _entry: Option<&Self::Ref>, _ctinfo: CtInfo, _len: usize, _a: &L4Action) {}

    /// Expectations in this netns (`cnet->expect_count`), to skip the lookup when none.
    fn expect_count(&self) -> u32;
    /// `nf_ct_find_expectation`: the master of the expectation a new connection with
    /// original tuple `t` matches, the expectation unlinked unless permanent; counts what it
    /// unlinks in `expect_delete`.
    fn take_expectation(&self, t: &Tuple, now: u32) -> Option<Self::Ref>;
    /// `nf_ct_expect_related`: adds an expectation; counts `expect_create` and what it
    /// unlinks in `expect_delete`, and says when the table is full.
    /// The expectation's timeout counts from `clock`.
    fn expect_related(&self, exp: Expectation<Self::Ref>, clock: &Clock)
        -> Result<(), ExpectError>;
    /// The helper a new, unexpected connection with original tuple `t` gets, if any.
    fn assign_helper(&self, t: &Tuple) -> Option<HelperId>;
    /// Entries of this netns with a helper: none, and the helper hook has nothing to do.
    fn helped(&self) -> u32;
    /// The helper watching `entry`.
    fn helper_of(&self, entry: &Self::Ref) -> Option<HelperId>;
    /// Runs `f` on the FTP helper's state of `entry` (`nf_ct_ftp_master`) under the entry's
    /// lock; `None` if the entry has none.
    fn with_ftp<R>(&self, entry: &Self::Ref, f: impl FnOnce(&mut FtpState) -> R) -> Option<R>;
    /// The unconfirmed entry carrying `cookie`, left where it is.
    fn peek_unconfirmed(&self, cookie: usize) -> Option<Self::Ref>;
    /// The last sequence adjustment of nf_conntrack's entry seen for `entry`, by direction.
    fn seqadj(&self, entry: &Self::Ref) -> Option<[SeqAdj; 2]>;
    /// Remembers nf_conntrack's sequence adjustment for `entry` (a helper's master).
    fn set_seqadj(&self, entry: &Self::Ref, adj: [SeqAdj; 2]);
    /// `nf_conntrack_ftp`'s `loose` parameter.
    fn ftp_loose(&self) -> bool {
        false
    }
    /// `nf_ct_helper_log`: a helper's reason for dropping a packet, rate-limited.
    fn helper_log(&self, _helper: HelperId, _msg: &str) {}
}

/// Handles a packet at one of the module's hooks: counts it per hook, then tracks or
/// confirms it. Packets are never dropped for being malformed: like nf_conntrack, they are
/// counted as `invalid` and passed on.
pub(crate) fn hook<C: Conntrack + ?Sized, P: Packet + ?Sized>(
    ct: &C,
    role: HookRole,
    pkt: &P,
    ctx: &HookCtx,
) -> Verdict {
    // Not a registration of ours: leave the packet alone.
    let Some(stat) = hook_stat(role, ctx.hook) else {
        return Verdict::Accept;
    };
    if !ablate::NO_HOOK_STATS {
        ct.count(stat, 1);
    }
    match role {
        HookRole::Track => track(ct, pkt, ctx),
        HookRole::Helper => crate::proto::helper::help(ct, pkt, ctx),
        HookRole::Confirm => confirm(ct, pkt, ctx),
    }
}

/// The per-hook statistic a hook call counts; `None` for a role at a point where none of
/// ours is registered.
fn hook_stat(role: HookRole, hook: Hook) -> Option<Stat> {
    match (role, hook) {
        (HookRole::Track, Hook::PreRouting) => Some(Stat::InPreRouting),
        (HookRole::Track, Hook::LocalOut) => Some(Stat::InLocalOut),
        (HookRole::Helper, Hook::PostRouting) => Some(Stat::HelperPostRouting),
        (HookRole::Helper, Hook::LocalIn) => Some(Stat::HelperLocalIn),
        (HookRole::Confirm, Hook::PostRouting) => Some(Stat::ConfirmPostRouting),
        (HookRole::Confirm, Hook::LocalIn) => Some(Stat::ConfirmLocalIn),
        _ => None,
    }
}

/// The helper and confirm hooks' common case, told before anything of the packet is read
/// (the kernel side then skips reading it): no entry of the netns has a helper, or no new
/// entry waits for the packet with `cookie` and the packet does not leave through a
/// loopback device (where [`confirm`] marks what will loop back; `out_loopback` is asked
/// only then). If so, counts the call as [`hook`] does and returns true: [`hook`] would
/// do nothing more than accept the packet. False: run [`hook`].
pub(crate) fn hook_idle<C: Conntrack + ?Sized>(
    ct: &C,
    role: HookRole,
    hook: Hook,
    cookie: usize,
    out_loopback: impl FnOnce() -> bool,
) -> bool {
    let idle = match role {
        HookRole::Track => false,
        HookRole::Helper => ct.helped() == 0,
        HookRole::Confirm => {
            let busy =
                ct.may_hold_unconfirmed(cookie) || (hook == Hook::PostRouting && out_loopback());
            !busy
        }
    };
    if idle && !ablate::NO_HOOK_STATS {
        if let Some(stat) = hook_stat(role, hook) {
            ct.count(stat, 1);
        }
    }
    idle
}

pub(crate) fn parse<P: Packet + ?Sized>(
    pkt: &P,
    ctx: &HookCtx,
) -> Result<Parsed, tuple::ParseError> {
    match ctx.l3 {
        L3::Ipv4 => tuple::parse_ipv4(pkt, ctx.nhoff),
        L3::Ipv6 => tuple::parse_ipv6(pkt, ctx.nhoff),
    }
}

/// `nf_conntrack_in`.
pub(crate) fn track<C: Conntrack + ?Sized, P: Packet + ?Sized>(
    ct: &C,
    pkt: &P,
    ctx: &HookCtx,
) -> Verdict {
    // "Previously seen (loopback)? Ignore.": only what was tracked at LOCAL_OUT.
    if ctx.hook == Hook::PreRouting && ctx.in_loopback {
        let fp = packet_fingerprint(pkt, ctx.nhoff);
        if ct.with_loopback(|r| r.take(Mark::Looped, ctx.cookie, fp)) {
            return Verdict::Accept;
        }
    }
    let (verdict, tracked) = track_packet(ct, pkt, ctx);
    // nf_conntrack leaves an invalid packet without an entry: if it loops back, it is
    // tracked again at PRE_ROUTING.
    if ctx.hook == Hook::LocalOut && !tracked {
        ct.with_loopback(|r| r.push(Mark::InvalidOut, ctx.cookie, 0));
    }
    verdict
}

const TRACKED: (Verdict, bool) = (Verdict::Accept, true);
const INVALID: (Verdict, bool) = (Verdict::Accept, false);

/// The work of [`track`]; also says whether the packet ends up with an entry (or untracked
/// on purpose), as nf_conntrack's `skb->_nfct` would.
fn track_packet<C: Conntrack + ?Sized, P: Packet + ?Sized>(
    ct: &C,
    pkt: &P,
    ctx: &HookCtx,
) -> (Verdict, bool) {
    // Borrowed where the parse left it: moving it out would copy it by words right after
    // the parse stored it in bytes, and each such load waits for those stores.
    let parsed = parse(pkt, ctx);
    let Ok(parsed) = &parsed else {
        ct.count(Stat::Invalid, 1);
        return INVALID;
    };
    if ablate::PARSE_ONLY {
        return TRACKED;
    }
    let proto = parsed.tuple.proto;
    let pkt = &Checked {
        pkt,
        verify: ct.settings().checksum && !ablate::NO_CHECKSUM,
    };
    if (ctx.l3 == L3::Ipv4 && proto == IPPROTO_ICMP)
        || (ctx.l3 == L3::Ipv6 && proto == IPPROTO_ICMPV6)
    {
        if let Some(done) = handle_icmp(ct, pkt, parsed, ctx) {
            return done;
        }
    }
    let run = Run {
        ct,
        pkt,
        parsed,
        ctx,
    };
    l4proto::dispatch(proto, run)
}

/// `nf_conntrack_handle_icmp`: errors relate to an entry or are counted, and some types are
/// not tracked; `None` for the packets tracked like any other (requests and replies).
fn handle_icmp<C: Conntrack + ?Sized, P: Packet + ?Sized>(
    ct: &C,
    pkt: &P,
    parsed: &Parsed,
    ctx: &HookCtx,
) -> Option<(Verdict, bool)> {
    let bad_sum = ctx.hook == Hook::PreRouting
        && !pkt.l4_checksum_ok(ctx.hook, ctx.l3, parsed.dataoff, parsed.tuple.proto, None);
    let verdict = if bad_sum {
        IcmpVerdict::Invalid
    } else {
        icmp_verdict(pkt, ctx.nhoff, parsed)
    };
    match verdict {
        IcmpVerdict::Track => None,
        IcmpVerdict::Untracked => Some(TRACKED),
        IcmpVerdict::Invalid => {
            ct.count(Stat::IcmpError, 1);
            Some(INVALID)
        }
        IcmpVerdict::Related(inner) => {
            let key = inner.key();
            let related = ct
                .find(&key, ct.hash(&key), ctx.clock.now)
                .and_then(|(entry, dir)| entry.tuple(dir))
                .is_some_and(|t| t.dst == parsed.tuple.dst);
            if related {
                Some(TRACKED)
            } else {
                ct.count(Stat::IcmpError, 1);
                Some(INVALID)
            }
        }
    }
}

/// One packet through its tracker: [`Visit`]ed with the tracker of its protocol.
struct Run<'a, C: ?Sized, P: ?Sized> {
    ct: &'a C,
    pkt: &'a P,
    parsed: &'a Parsed,
    ctx: &'a HookCtx,
}

impl<C: Conntrack + ?Sized, P: Packet + ?Sized> Visit for Run<'_, C, P> {
    type Out = (Verdict, bool);

    fn visit<L: L4Proto>(self) -> (Verdict, bool) {
        let Run {
            ct,
            pkt,
            parsed,
            ctx,
        } = self;
        let Some(hdr) = L::error(pkt, parsed, ctx) else {
            ct.count(Stat::Invalid, 1);
            return INVALID;
        };
        let key = parsed.tuple.key();
        let hash = ct.hash(&key);
        let now = ctx.clock.now;
        // `repeat:` of `nf_conntrack_in`: a SYN reopening a closed TCP connection kills the
        // old entry and is looked up again, which makes a new one.
        for _ in 0..2 {
            let Some((entry, dir)) = ct.find(&key, hash, now) else {
                return new_entry::<L, C, P>(ct, pkt, parsed, &hdr, (key, hash), ctx);
            };
            let ctinfo = CtInfo::of_match(dir, entry.status());
            if ablate::LOOKUP_ONLY {
                return TRACKED;
            }
            let action = L::packet(ct, &entry, pkt, &hdr, ctinfo, ctx, ct.settings());
            ct.l4_action(Some(&entry), ctinfo, pkt.len(), &action);
            log_invalid(ct, pkt, parsed, ctx, &action);
            match action.verdict {
                L4Verdict::Accept => {
                    apply(&*entry, &action, now);
                    if action.kill {
                        ct.kill(&entry);
                    }
                    if ctinfo.sets_seen_reply() {
                        entry.set_status(IPS_SEEN_REPLY);
                    }
                    return TRACKED;
                }
                L4Verdict::Invalid => {
                    if let Some(t) = action.lowered_timeout {
                        entry.set_timeout(t);
                    }
                    // SCTP: a chunk may reach ESTABLISHED before a later one makes the packet
                    // invalid; 6.12 has set the assured bit by then, and keeps it.
                    if action.set_assured {
                        entry.set_status(IPS_ASSURED);
                    }
                    ct.count(Stat::Invalid, 1);
                    return INVALID;
                }
                // Reopening: kill the old entry and look again; if it was dying, drop.
                L4Verdict::Repeat if ct.kill(&entry) => {}
                L4Verdict::Repeat => {
                    ct.count(Stat::Invalid, 1);
                    ct.count(Stat::Drop, 1);
                    return (Verdict::Drop, false);
                }
            }
        }
        INVALID
    }
}

/// Applies an accepted packet's refresh and assurance to its entry.
fn apply<E: Entry + ?Sized>(entry: &E, action: &L4Action, now: u32) {
    if let Some(t) = action
        .refresh
        .and_then(|extra| refreshed_timeout(entry.status(), now, extra))
    {
        entry.set_timeout(t);
    }
    if action.set_assured {
        entry.set_status(IPS_ASSURED);
    }
}

/// `init_conntrack` and the tracker's first look at the packet, whose tuple's key and raw hash
/// the lookup computed.
fn new_entry<L: L4Proto, C: Conntrack + ?Sized, P: Packet + ?Sized>(
    ct: &C,
    pkt: &P,
    parsed: &Parsed,
    hdr: &L::Header,
    (orig, hash): (Key, u32),
    ctx: &HookCtx,
) -> (Verdict, bool) {
    let now = ctx.clock.now;
    let Some(reply) = parsed.tuple.invert() else {
        ct.count(Stat::Invalid, 1);
        return INVALID;
    };
    // 6.12 allocates first and lets the tracker reject the new entry; asking first has the
    // same outcome without the allocation.
    let (l4, action) = L::new_conn(pkt, hdr, parsed, ctx, ct.settings());
    if action.verdict != L4Verdict::Accept {
        ct.l4_action(None, CtInfo::New, pkt.len(), &action);
        log_invalid(ct, pkt, parsed, ctx, &action);
        ct.count(Stat::Invalid, 1);
        return INVALID;
    }
    if !ct.reserve(hash, now) {
        ct.table_full();
        ct.count(Stat::Drop, 1);
        return (Verdict::Drop, false);
    }
    // "Welcome, Mr. Bond.  We've been expecting you...": after the limit, as 6.12 looks
    // after `__nf_conntrack_alloc`; the expectation is used even if the allocation then
    // fails, where 6.12 would not have looked (GFP_ATOMIC failures only).
    let master = if ct.expect_count() != 0 {
        ct.take_expectation(&parsed.tuple, now)
    } else {
        None
    };
    let (status, mark, helper) = match &master {
        Some(m) => {
            ct.count(Stat::ExpectNew, 1);
            (IPS_EXPECTED, m.mark(), None)
        }
        None => (0, 0, ct.assign_helper(&parsed.tuple)),
    };
    let reply = reply.key();
    let reply_hash = ct.hash(&reply);
    // The confirm hook locks and walks the reply chain: its head is a cache miss in a large
    // table, loaded meanwhile (the lookup has just loaded the original chain's).
    ct.prefetch_chain(reply_hash);
    let new = NewEntry {
        orig,
        reply,
        hash: [hash, reply_hash],
        timeout: action
            .refresh
            .and_then(|extra| refreshed_timeout(0, now, extra))
            .unwrap_or(0),
        now,
        cookie: ctx.cookie,
        l4,
        status,
        mark,
        master,
        helper,
    };
    let Some(entry) = ct.alloc(new) else {
        ct.unreserve();
        ct.count(Stat::Drop, 1);
        return (Verdict::Drop, false);
    };
    ct.l4_action(Some(&entry), CtInfo::New, pkt.len(), &action);
    log_invalid(ct, pkt, parsed, ctx, &action);
    if action.set_assured {
        entry.set_status(IPS_ASSURED);
    }
    let max_age = UNCONFIRMED_MAX_AGE_SECS.saturating_mul(ctx.clock.hz);
    let reaped = ct.list_unconfirmed(entry, |old| {
        old.cookie() == ctx.cookie || now.wrapping_sub(old.created()) > max_age
    });
    ct.count(Stat::UnconfirmedReaped, reaped);
    // The sweep reaps it if its packet never comes (a plain read if already armed).
    ct.kick_sweep(ctx.clock.hz);
    TRACKED
}

/// `nf_confirm`: moves the entry this packet created from the unconfirmed list into the
/// table, and remembers packets leaving on `lo`.
pub(crate) fn confirm<C: Conntrack + ?Sized, P: Packet + ?Sized>(
    ct: &C,
    pkt: &P,
    ctx: &HookCtx,
) -> Verdict {
    let verdict = confirm_entry(ct, pkt, ctx);
    if verdict == Verdict::Accept && ctx.hook == Hook::PostRouting && ctx.out_loopback {
        let fp = packet_fingerprint(pkt, ctx.nhoff);
        ct.with_loopback(|r| {
            if !r.take(Mark::InvalidOut, ctx.cookie, 0) {
                r.push(Mark::Looped, ctx.cookie, fp);
            }
        });
    }
    verdict
}

fn confirm_entry<C: Conntrack + ?Sized, P: Packet + ?Sized>(
    ct: &C,
    pkt: &P,
    ctx: &HookCtx,
) -> Verdict {
    if !ct.may_hold_unconfirmed(ctx.cookie) {
        return Verdict::Accept;
    }
    // An entry nearly always carries the cookie when the filter says one may: the packet is
    // parsed again, and nf_conntrack's entry read, before the lists are locked. The parse
    // result is borrowed where it lies, not moved (see `track_packet`).
    let parsed = parse(pkt, ctx);
    let now = parsed.as_ref().ok().map(|p| &p.tuple);
    let nf = pkt.nf_view();
    let mut reply = None;
    let mut proto = 0;
    let (taken, reaped) = ct.take_unconfirmed(|e| {
        if e.cookie() != ctx.cookie {
            return Pick::Skip;
        }
        let Some(orig) = e.tuple(Dir::Original) else {
            return Pick::Reap;
        };
        match handoff::handoff(&orig, now, nf.as_ref()) {
            Handoff::Confirm { reply: r } => {
                reply = r;
                proto = orig.proto;
                Pick::Take
            }
            Handoff::Orphan => Pick::Reap,
        }
    });
    ct.count(Stat::UnconfirmedReaped, reaped);
    let Some(entry) = taken else {
        return Verdict::Accept;
    };
    if let Some(r) = reply {
        if entry.tuple(Dir::Reply) != Some(r) {
            let key = r.key();
            ct.set_reply(&entry, &key, ct.hash(&key));
        }
    }
    match ct.insert(entry, ctx.clock.now, l4proto::allow_clash(proto)) {
        Insert::Inserted => {
            ct.count(Stat::Insert, 1);
            Verdict::Accept
        }
        Insert::Merged => {
            ct.count(Stat::ClashResolve, 1);
            Verdict::Accept
        }
        Insert::Failed => {
            ct.count(Stat::InsertFailed, 1);
            ct.count(Stat::Drop, 1);
            Verdict::Drop
        }
        Insert::ChainTooLong => {
            ct.count(Stat::ChainTooLong, 1);
            ct.count(Stat::InsertFailed, 1);
            Verdict::Drop
        }
    }
}
