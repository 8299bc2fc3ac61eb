// SPDX-License-Identifier: GPL-2.0

//! The ICMP and ICMPv6 trackers: which messages may create a connection, and its timeout.
//!
//! C sources: [`net/netfilter/nf_conntrack_proto_icmp.c`](srctree/net/netfilter/nf_conntrack_proto_icmp.c)
//! (`nf_conntrack_icmp_packet`),
//! [`net/netfilter/nf_conntrack_proto_icmpv6.c`](srctree/net/netfilter/nf_conntrack_proto_icmpv6.c)
//! (`nf_conntrack_icmpv6_packet`).
//!
//! Pure `core` code. Error messages (RELATED or invalid), the checksum and the untracked
//! ICMPv6 types are decided before a connection is looked up, by
//! [`crate::proto::tuple::icmp_verdict`]; what is left here applies to queries and replies.
//!
//! An entry for a type without an inverse (`nf_ct_invert_tuple` fails in `init_conntrack`,
//! [`crate::proto::tuple::Tuple::invert`] returns `None`) is never created; of the invertible types
//! only the requests pass [`icmp_new_ok`] / [`icmpv6_new_ok`]. A reply without a connection
//! (echo reply, say) therefore gets an entry that its packet function rejects at once.

use crate::proto::conn::{secs_to_jiffies, CtInfo, PacketAction, Timeouts, IPS_CONFIRMED};
use crate::proto::l4proto::{L4Action, L4Proto, L4State, Settings};
use crate::proto::pipeline::{Conntrack, Entry, HookCtx, Packet};
use crate::proto::tuple::{icmp_valid_new, icmpv6_valid_new, Dir, Parsed, L3, L4};

/// Whether 6.12 keeps a new ICMP connection whose original tuple has type `ty`, for a packet
/// of family `pf` (`state->pf`): only over IPv4, and only for echo, timestamp, information
/// and address mask requests (`valid_new`).
pub(crate) fn icmp_new_ok(pf: L3, ty: u8) -> bool {
    pf == L3::Ipv4 && icmp_valid_new(ty)
}

/// `nf_conntrack_icmp_packet` for a packet of family `pf` whose connection's original tuple
/// has type `orig_type`.
///
/// The test of [`icmp_new_ok`] is made on every packet, confirmed entry or not (it cannot
/// change once the entry exists). Accepted packets, either direction, refresh the entry to the
/// ICMP timeout (30 s): it is not deleted after the first reply, so that duplicate replies
/// still match.
pub(crate) fn icmp_packet(pf: L3, orig_type: u8, hz: u32, t: &Timeouts) -> PacketAction {
    if !icmp_new_ok(pf, orig_type) {
        return PacketAction::INVALID;
    }
    PacketAction::refresh(secs_to_jiffies(t.icmp, hz))
}

/// Whether 6.12 keeps a new ICMPv6 connection whose original tuple has type `ty`, for a packet
/// of family `pf`: only over IPv6, and only for echo requests and node information queries.
pub(crate) fn icmpv6_new_ok(pf: L3, ty: u8) -> bool {
    pf == L3::Ipv6 && icmpv6_valid_new(ty)
}

/// `nf_conntrack_icmpv6_packet` for a packet of family `pf` whose connection has status bits
/// `status` and an original tuple of type `orig_type`.
///
/// Unlike ICMP, the type is checked only while the entry is unconfirmed; the family always.
/// Accepted packets refresh the entry to the ICMPv6 timeout (30 s).
pub(crate) fn icmpv6_packet(
    pf: L3,
    orig_type: u8,
    status: u32,
    hz: u32,
    t: &Timeouts,
) -> PacketAction {
    if pf != L3::Ipv6 || (status & IPS_CONFIRMED == 0 && !icmpv6_valid_new(orig_type)) {
        return PacketAction::INVALID;
    }
    PacketAction::refresh(secs_to_jiffies(t.icmpv6, hz))
}

/// The type of an ICMP or ICMPv6 tuple's request.
fn icmp_type(l4: L4) -> Option<u8> {
    match l4 {
        L4::Icmp { ty, .. } => Some(ty),
        _ => None,
    }
}

/// The ICMP tracker (`nf_conntrack_l4proto_icmp`). Errors never reach it: the core relates
/// them to the connection they quote first (`nf_conntrack_handle_icmp`).
pub(crate) struct Icmp;

impl L4Proto for Icmp {
    type Header = ();

    fn error<P: Packet + ?Sized>(_pkt: &P, _parsed: &Parsed, _ctx: &HookCtx) -> Option<()> {
        Some(())
    }

    fn new_conn<P: Packet + ?Sized>(
        _pkt: &P,
        _hdr: &(),
        parsed: &Parsed,
        ctx: &HookCtx,
        s: &Settings,
    ) -> (L4State, L4Action) {
        let action = match icmp_type(parsed.tuple.l4) {
            Some(ty) => icmp_packet(ctx.l3, ty, ctx.clock.hz, &s.timeouts).into(),
            None => L4Action::INVALID,
        };
        (L4State::None, action)
    }

    fn packet<C: Conntrack + ?Sized, P: Packet + ?Sized>(
        _ct: &C,
        entry: &C::Ref,
        _pkt: &P,
        _hdr: &(),
        _ctinfo: CtInfo,
        ctx: &HookCtx,
        s: &Settings,
    ) -> L4Action {
        match entry.tuple(Dir::Original).and_then(|t| icmp_type(t.l4)) {
            Some(ty) => icmp_packet(ctx.l3, ty, ctx.clock.hz, &s.timeouts).into(),
            None => L4Action::INVALID,
        }
    }
}

/// The ICMPv6 tracker (`nf_conntrack_l4proto_icmpv6`).
pub(crate) struct Icmpv6;

impl L4Proto for Icmpv6 {
    type Header = ();

    fn error<P: Packet + ?Sized>(_pkt: &P, _parsed: &Parsed, _ctx: &HookCtx) -> Option<()> {
        Some(())
    }

    fn new_conn<P: Packet + ?Sized>(
        _pkt: &P,
        _hdr: &(),
        parsed: &Parsed,
        ctx: &HookCtx,
        s: &Settings,
    ) -> (L4State, L4Action) {
        let action = match icmp_type(parsed.tuple.l4) {
            Some(ty) => icmpv6_packet(ctx.l3, ty, 0, ctx.clock.hz, &s.timeouts).into(),
            None => L4Action::INVALID,
        };
        (L4State::None, action)
    }

    fn packet<C: Conntrack + ?Sized, P: Packet + ?Sized>(
        _ct: &C,
        entry: &C::Ref,
        _pkt: &P,
        _hdr: &(),
        _ctinfo: CtInfo,
        ctx: &HookCtx,
        s: &Settings,
    ) -> L4Action {
        match entry.tuple(Dir::Original).and_then(|t| icmp_type(t.l4)) {
            Some(ty) => icmpv6_packet(ctx.l3, ty, entry.status(), ctx.clock.hz, &s.timeouts).into(),
            None => L4Action::INVALID,
        }
    }
}
