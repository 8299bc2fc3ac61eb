// SPDX-License-Identifier: GPL-2.0

//! The protocol tracker interface, `struct nf_conntrack_l4proto`, and the registry of trackers.
//!
//! C headers: [`include/net/netfilter/nf_conntrack_l4proto.h`](srctree/include/net/netfilter/nf_conntrack_l4proto.h).
//! C source: [`net/netfilter/nf_conntrack_proto.c`](srctree/net/netfilter/nf_conntrack_proto.c)
//! (`nf_ct_l4proto_find`), [`net/netfilter/nf_conntrack_core.c`](srctree/net/netfilter/nf_conntrack_core.c)
//! (`nf_conntrack_handle_packet`, which 6.12 writes as a `switch` on the protocol number).
//!
//! A tracker is a type implementing [`L4Proto`] in its own file, registered by one line in
//! [`dispatch`] (and, if it keeps state per entry, a variant of [`L4State`]). Calls are
//! dispatched statically, as 6.12's `switch` does, not through function pointers.

use crate::proto::conn::{CtInfo, PacketAction, Timeouts, Verdict as PacketVerdict};
use crate::proto::pipeline::{Conntrack, HookCtx, Packet};
use crate::proto::proc_line::L4Info;
use crate::proto::proto_dccp::{Dccp, DccpConn, DccpSettings};
use crate::proto::proto_generic::Generic;
use crate::proto::proto_gre::{Gre, GreState};
use crate::proto::proto_icmp::{Icmp, Icmpv6};
use crate::proto::proto_sctp::{Sctp, SctpConn};
use crate::proto::proto_tcp::{Tcp, TcpAction, TcpConn, TcpLog, TcpSettings, TcpVerdict};
use crate::proto::proto_udp::{Udp, UdpLite, UdpState};
use crate::proto::tuple::{
    Parsed, IPPROTO_DCCP, IPPROTO_GRE, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_SCTP, IPPROTO_TCP,
    IPPROTO_UDP, IPPROTO_UDPLITE,
};

/// What a tracker keeps per entry (`union nf_conntrack_proto`), guarded by the entry's lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum L4State {
    /// Nothing (generic, ICMP, ICMPv6, UDP-Lite).
    #[default]
    None,
    /// UDP: when the flow becomes a stream.
    Udp(UdpState),
    /// TCP: the state machine and both windows.
    Tcp(TcpConn),
    /// GRE: its two timeouts.
    Gre(GreState),
    /// DCCP: the state, the roles and the handshake's sequence number.
    Dccp(DccpConn),
    /// SCTP: the association state and its verification tags.
    Sctp(SctpConn),
}

/// The states of the trackers that keep little (`L4State` without TCP's, SCTP's and DCCP's):
/// what most entries (UDP, ICMP, GRE, generic) hold, in an entry with no room for the others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum L4Small {
    /// Nothing (generic, ICMP, ICMPv6, UDP-Lite).
    #[default]
    None,
    /// UDP: when the flow becomes a stream.
    Udp(UdpState),
    /// GRE: its two timeouts.
    Gre(GreState),
}

impl From<L4Small> for L4State {
    fn from(s: L4Small) -> Self {
        match s {
            L4Small::None => L4State::None,
            L4Small::Udp(u) => L4State::Udp(u),
            L4Small::Gre(g) => L4State::Gre(g),
        }
    }
}

impl TryFrom<L4State> for L4Small {
    /// The state itself, when it is one of the large ones.
    type Error = L4State;

    fn try_from(s: L4State) -> Result<Self, L4State> {
        match s {
            L4State::None => Ok(L4Small::None),
            L4State::Udp(u) => Ok(L4Small::Udp(u)),
            L4State::Gre(g) => Ok(L4Small::Gre(g)),
            L4State::Tcp(_) | L4State::Dccp(_) | L4State::Sctp(_) => Err(s),
        }
    }
}

/// The per-netns settings the trackers read (the protocol sysctls).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    /// The timeouts, in seconds.
    pub(crate) timeouts: Timeouts,
    /// TCP's settings.
    pub(crate) tcp: TcpSettings,
    /// DCCP's settings (`nf_conntrack_dccp_loose`).
    pub(crate) dccp: DccpSettings,
    /// `nf_conntrack_checksum`: verify transport checksums (false: every one passes).
    pub(crate) checksum: bool,
    /// `nf_conntrack_log_invalid`: the protocol whose invalid packets are logged (0: none,
    /// 255: all).
    pub(crate) log_invalid: u8,
}

impl Settings {
    /// 6.12's defaults (`nf_conntrack_init_net`: checksum 1, log_invalid 0).
    pub(crate) const fn defaults() -> Self {
        Self {
            timeouts: Timeouts::defaults(),
            tcp: TcpSettings::defaults(),
            dccp: DccpSettings::defaults(),
            checksum: true,
            log_invalid: 0,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self::defaults()
    }
}

/// A tracker's verdict on a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum L4Verdict {
    /// `NF_ACCEPT`.
    Accept,
    /// `-NF_ACCEPT`: invalid for the entry; counted `invalid`, passed on without it.
    Invalid,
    /// Reopening a closed connection: kill the entry and look the packet up again
    /// (`-NF_REPEAT`); if it was dying already, drop the packet.
    Repeat,
}

/// What the core does after a tracker looked at a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct L4Action {
    /// The verdict.
    pub(crate) verdict: L4Verdict,
    /// `Some(extra_jiffies)`: `nf_ct_refresh_acct` (the timeout unless fixed, and the packet
    /// counted).
    pub(crate) refresh: Option<u32>,
    /// `nf_ct_kill_acct`: count the packet, then kill the entry.
    pub(crate) kill: bool,
    /// Set `IPS_ASSURED` (and, if it was clear, raise `IPCT_ASSURED`).
    pub(crate) set_assured: bool,
    /// `Some(t)`: store `t` as the timeout of an entry the packet is invalid for.
    pub(crate) lowered_timeout: Option<u32>,
    /// The protocol state changed: raise `IPCT_PROTOINFO`.
    pub(crate) protoinfo: bool,
    /// What `nf_ct_l4proto_log_invalid` would log, if anything.
    pub(crate) log: Option<TcpLog>,
}

impl L4Action {
    /// Invalid, nothing else.
    pub(crate) const INVALID: L4Action = L4Action {
        verdict: L4Verdict::Invalid,
        refresh: None,
        kill: false,
        set_assured: false,
        lowered_timeout: None,
        protoinfo: false,
        log: None,
    };
}

impl From<PacketAction> for L4Action {
    fn from(a: PacketAction) -> Self {
        L4Action {
            verdict: match a.verdict {
                PacketVerdict::Accept => L4Verdict::Accept,
                PacketVerdict::Invalid => L4Verdict::Invalid,
            },
            refresh: a.refresh,
            set_assured: a.set_assured,
            ..L4Action::INVALID
        }
    }
}

impl From<TcpAction> for L4Action {
    fn from(a: TcpAction) -> Self {
        L4Action {
            verdict: match a.verdict {
                TcpVerdict::Accept => L4Verdict::Accept,
                TcpVerdict::Invalid => L4Verdict::Invalid,
                TcpVerdict::Repeat => L4Verdict::Repeat,
            },
            refresh: a.refresh,
            kill: a.kill,
            set_assured: a.set_assured,
            lowered_timeout: a.lowered_timeout,
            protoinfo: a.protoinfo,
            log: a.log,
        }
    }
}

/// A protocol tracker, in the spirit of `struct nf_conntrack_l4proto`.
pub(crate) trait L4Proto: 'static {
    /// The header facts [`Self::error`] extracts for [`Self::new`] and [`Self::packet`].
    type Header;

    /// `allow_clash`: two new entries of one flow racing to the table may merge.
    const ALLOW_CLASH: bool = false;

    /// The header checks made before lookup (`nf_conntrack_*_error`, the checksum on
    /// incoming packets); `None`: the packet is invalid.
    fn error<P: Packet + ?Sized>(pkt: &P, parsed: &Parsed, ctx: &HookCtx) -> Option<Self::Header>;

    /// A new entry: the state it starts with and the tracker's verdict on its first packet
    /// (6.12's `new`, and the first `packet` on the unconfirmed entry). `pkt` is there for
    /// trackers that read more of the packet than [`Self::Header`] holds (SCTP's chunks).
    fn new_conn<P: Packet + ?Sized>(
        pkt: &P,
        hdr: &Self::Header,
        parsed: &Parsed,
        ctx: &HookCtx,
        s: &Settings,
    ) -> (L4State, L4Action);

    /// A packet of an existing entry (`packet`).
    fn packet<C: Conntrack + ?Sized, P: Packet + ?Sized>(
        ct: &C,
        entry: &C::Ref,
        pkt: &P,
        hdr: &Self::Header,
        ctinfo: CtInfo,
        ctx: &HookCtx,
        s: &Settings,
    ) -> L4Action;

    /// `can_early_drop`: whether an assured entry may still be evicted when the table is
    /// nearly full.
    fn can_early_drop(_state: &L4State) -> bool {
        false
    }

    /// The name of the entry's state, for protocols with a state machine.
    fn state_name(_state: &L4State) -> Option<&'static str> {
        None
    }

    /// `print_conntrack`: what `/proc` shows after the timeout (by default the state's name,
    /// if the protocol has states).
    fn print(state: &L4State) -> L4Info {
        Self::state_name(state).map_or(L4Info::None, L4Info::State)
    }
}

/// Something to do with the tracker of a protocol: [`dispatch`] calls [`Self::visit`] with it.
pub(crate) trait Visit {
    /// What the visit returns.
    type Out;

    /// Runs with the tracker `L`.
    fn visit<L: L4Proto>(self) -> Self::Out;
}

/// Runs `v` with the tracker of `proto` (`nf_ct_l4proto_find`): every tracker is registered
/// here, and every protocol without one of its own is generic's.
pub(crate) fn dispatch<V: Visit>(proto: u8, v: V) -> V::Out {
    match proto {
        IPPROTO_TCP => v.visit::<Tcp>(),
        IPPROTO_UDP => v.visit::<Udp>(),
        IPPROTO_UDPLITE => v.visit::<UdpLite>(),
        IPPROTO_ICMP => v.visit::<Icmp>(),
        IPPROTO_ICMPV6 => v.visit::<Icmpv6>(),
        IPPROTO_SCTP => v.visit::<Sctp>(),
        IPPROTO_DCCP => v.visit::<Dccp>(),
        IPPROTO_GRE => v.visit::<Gre>(),
        _ => v.visit::<Generic>(),
    }
}

/// The tracker's `allow_clash` for `proto`.
pub(crate) fn allow_clash(proto: u8) -> bool {
    struct AllowClash;
    impl Visit for AllowClash {
        type Out = bool;
        fn visit<L: L4Proto>(self) -> bool {
            L::ALLOW_CLASH
        }
    }
    dispatch(proto, AllowClash)
}

/// The tracker's `can_early_drop` for an entry of `proto` in `state`.
pub(crate) fn can_early_drop(proto: u8, state: &L4State) -> bool {
    struct CanEarlyDrop<'a>(&'a L4State);
    impl Visit for CanEarlyDrop<'_> {
        type Out = bool;
        fn visit<L: L4Proto>(self) -> bool {
            L::can_early_drop(self.0)
        }
    }
    dispatch(proto, CanEarlyDrop(state))
}

/// What `/proc` shows of the tracker's state for an entry of `proto` in `state`.
pub(crate) fn print(proto: u8, state: &L4State) -> L4Info {
    struct Print<'a>(&'a L4State);
    impl Visit for Print<'_> {
        type Out = L4Info;
        fn visit<L: L4Proto>(self) -> L4Info {
            L::print(self.0)
        }
    }
    dispatch(proto, Print(state))
}
