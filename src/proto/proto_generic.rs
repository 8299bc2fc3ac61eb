// SPDX-License-Identifier: GPL-2.0

//! The generic tracker, for every protocol without a tracker of its own.
//!
//! C sources: [`net/netfilter/nf_conntrack_proto_generic.c`](srctree/net/netfilter/nf_conntrack_proto_generic.c)
//! (`nf_ct_generic_timeout`), and `generic_packet` and `nf_conntrack_handle_packet` in
//! [`net/netfilter/nf_conntrack_core.c`](srctree/net/netfilter/nf_conntrack_core.c).
//!
//! Pure `core` code. 6.12 has no `generic_new` any more: a generic connection is always
//! created (its tuple, addresses and protocol number, always inverts), never assured, and every
//! packet refreshes it.

use crate::proto::conn::{secs_to_jiffies, CtInfo, PacketAction, Timeouts};
use crate::proto::l4proto::{L4Action, L4Proto, L4State, Settings};
use crate::proto::pipeline::{Conntrack, HookCtx, Packet};
use crate::proto::tuple::Parsed;

/// `generic_packet`: accept, and refresh the entry to the generic timeout (600 s), in either
/// direction.
pub(crate) fn generic_packet(hz: u32, t: &Timeouts) -> PacketAction {
    PacketAction::refresh(secs_to_jiffies(t.generic, hz))
}

/// The generic tracker (`nf_conntrack_l4proto_generic`).
pub(crate) struct Generic;

impl L4Proto for Generic {
    type Header = ();

    const ALLOW_CLASH: bool = true;

    fn error<P: Packet + ?Sized>(_pkt: &P, _parsed: &Parsed, _ctx: &HookCtx) -> Option<()> {
        Some(())
    }

    fn new_conn<P: Packet + ?Sized>(
        _pkt: &P,
        _hdr: &(),
        _parsed: &Parsed,
        ctx: &HookCtx,
        s: &Settings,
    ) -> (L4State, L4Action) {
        (
            L4State::None,
            generic_packet(ctx.clock.hz, &s.timeouts).into(),
        )
    }

    fn packet<C: Conntrack + ?Sized, P: Packet + ?Sized>(
        _ct: &C,
        _entry: &C::Ref,
        _pkt: &P,
        _hdr: &(),
        _ctinfo: CtInfo,
        ctx: &HookCtx,
        s: &Settings,
    ) -> L4Action {
        generic_packet(ctx.clock.hz, &s.timeouts).into()
    }
}
