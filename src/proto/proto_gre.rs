// SPDX-License-Identifier: GPL-2.0

//! The GRE tracker, as Linux 6.12 tracks GRE without a PPTP helper attached.
//!
//! C source: [`net/netfilter/nf_conntrack_proto_gre.c`](srctree/net/netfilter/nf_conntrack_proto_gre.c)
//! (`nf_conntrack_gre_packet`, `gre_print_conntrack`, `gre_timeouts`).
//!
//! The tuple (`gre_pkt_to_tuple`, in [`crate::proto::tuple`]) carries keys only for enhanced
//! GRE (version 1, PPTP): the call id as destination key, and as source key what the PPTP
//! helper's keymap says, which is nothing here, as for nf_conntrack on GRE it saw no PPTP
//! control connection for. Version 0 is tracked with both keys 0.
//!
//! Pure `core` code, built into the module and into the host crate for unit tests.

use crate::proto::conn::{
    secs_to_jiffies, CtInfo, PacketAction, Timeouts, IPS_NAT_CLASH, IPS_SEEN_REPLY,
};
use crate::proto::l4proto::{L4Action, L4Proto, L4State, Settings};
use crate::proto::pipeline::{Conntrack, Entry, HookCtx, Packet};
use crate::proto::proc_line::L4Info;
use crate::proto::tuple::Parsed;

/// What a GRE entry keeps (`struct nf_ct_gre`): its two timeouts, set when it is made (a PPTP
/// helper would raise them; without one they stay the netns' values). Seconds, as `/proc`
/// prints them; 6.12 keeps jiffies and prints them divided by `HZ`, the same figures.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct GreState {
    /// Before a reply (`GRE_CT_UNREPLIED`).
    pub(crate) timeout: u32,
    /// Once replied (`GRE_CT_REPLIED`).
    pub(crate) stream_timeout: u32,
}

impl GreState {
    /// An entry's timeouts from the netns' (`nf_conntrack_gre_packet` on an unconfirmed entry).
    pub(crate) fn new(t: &Timeouts) -> Self {
        Self {
            timeout: t.gre_unreplied,
            stream_timeout: t.gre_replied,
        }
    }
}

/// `nf_conntrack_gre_packet` for an entry with `status` and timeouts `st`: refresh to the
/// stream timeout once replied, and assured then (never for a clash loser), else to the
/// unreplied timeout.
pub(crate) fn gre_packet(st: &GreState, status: u32, hz: u32) -> PacketAction {
    if status & IPS_SEEN_REPLY == 0 {
        return PacketAction::refresh(secs_to_jiffies(st.timeout, hz));
    }
    PacketAction {
        set_assured: status & IPS_NAT_CLASH == 0,
        ..PacketAction::refresh(secs_to_jiffies(st.stream_timeout, hz))
    }
}

/// The GRE tracker (`nf_conntrack_l4proto_gre`).
pub(crate) struct Gre;

impl L4Proto for Gre {
    type Header = ();

    const ALLOW_CLASH: bool = true;

    fn error<P: Packet + ?Sized>(_pkt: &P, _parsed: &Parsed, _ctx: &HookCtx) -> Option<()> {
        // The header was read for the tuple; 6.12 checks nothing more.
        Some(())
    }

    fn new_conn<P: Packet + ?Sized>(
        _pkt: &P,
        _hdr: &(),
        _parsed: &Parsed,
        ctx: &HookCtx,
        s: &Settings,
    ) -> (L4State, L4Action) {
        let st = GreState::new(&s.timeouts);
        (L4State::Gre(st), gre_packet(&st, 0, ctx.clock.hz).into())
    }

    fn packet<C: Conntrack + ?Sized, P: Packet + ?Sized>(
        ct: &C,
        entry: &C::Ref,
        _pkt: &P,
        _hdr: &(),
        _ctinfo: CtInfo,
        ctx: &HookCtx,
        _s: &Settings,
    ) -> L4Action {
        let st = ct.with_l4(entry, |st| match st {
            L4State::Gre(g) => Some(*g),
            _ => None,
        });
        match st {
            Some(st) => gre_packet(&st, entry.status(), ctx.clock.hz).into(),
            None => L4Action::INVALID,
        }
    }

    fn print(state: &L4State) -> L4Info {
        match state {
            L4State::Gre(g) => L4Info::Gre {
                timeout: g.timeout,
                stream_timeout: g.stream_timeout,
            },
            _ => L4Info::None,
        }
    }
}
