// SPDX-License-Identifier: GPL-2.0

//! The UDP and UDP-Lite trackers: header checks, timeouts and when a flow is assured.
//!
//! C source: [`net/netfilter/nf_conntrack_proto_udp.c`](srctree/net/netfilter/nf_conntrack_proto_udp.c)
//! (`udp_error`, `nf_conntrack_udp_packet`, `udplite_error`, `nf_conntrack_udplite_packet`).
//!
//! Pure `core` code. The checksum test needs the skb and stays with the caller: see
//! [`Checksum`].
//!
//! The order of one packet's processing, as in 6.12: [`udp_error`] (or [`udplite_error`]),
//! then the checksum if [`Checksum`] says so; any failure makes the packet invalid before the
//! entry is touched. Then [`udp_packet`] (or [`udplite_packet`]) says how to refresh the
//! entry. UDP and UDP-Lite never refuse to create an entry beyond that.

use crate::proto::conn::{
    secs_to_jiffies, time_after_long, CtInfo, PacketAction, Timeouts, IPS_ASSURED, IPS_CONFIRMED,
    IPS_NAT_CLASH, IPS_SEEN_REPLY,
};
use crate::proto::l4proto::{L4Action, L4Proto, L4State, Settings};
use crate::proto::pipeline::{Conntrack, Entry, Hook, HookCtx, Packet};
use crate::proto::tuple::{PacketBytes, Parsed, IPPROTO_UDP};

/// `sizeof(struct udphdr)`.
pub(crate) const UDP_HDR_LEN: usize = 8;

/// Why a UDP or UDP-Lite header makes a packet invalid. The kernel logs each with
/// `nf_l4proto_log_invalid`; [`UdpError::msg`] is its text.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum UdpError {
    /// Fewer than 8 bytes of header in the packet.
    Short,
    /// UDP: the length field is below 8 or beyond the end of the packet.
    Malformed,
    /// UDP-Lite: the checksum coverage is below 8 or beyond the end of the packet.
    BadCoverage,
    /// UDP-Lite: a zero checksum (UDP-Lite mandates one).
    NoChecksum,
}

impl UdpError {
    /// The kernel's log message for this error.
    pub(crate) fn msg(self) -> &'static str {
        match self {
            UdpError::Short => "short packet",
            UdpError::Malformed => "truncated/malformed packet",
            UdpError::BadCoverage => "invalid checksum coverage",
            UdpError::NoChecksum => "checksum missing",
        }
    }
}

/// The checksum test a header that passed [`udp_error`] or [`udplite_error`] still needs.
///
/// The caller makes it only where 6.12 does: on `NF_INET_PRE_ROUTING` (outgoing checksums are
/// trusted) and when the netns' `nf_conntrack_checksum` sysctl is on. A non-zero result makes
/// the packet invalid ("bad checksum").
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Checksum {
    /// UDP with a zero checksum field: there is none to verify.
    None,
    /// UDP: `nf_checksum(skb, hook, dataoff, IPPROTO_UDP, pf)` over the whole datagram.
    Full,
    /// UDP-Lite: `nf_checksum_partial(skb, hook, dataoff, len, IPPROTO_UDP, pf)` over the
    /// first `len` bytes from the header (the coverage, or all of it when the field is 0).
    /// 6.12 passes `IPPROTO_UDP`, not `IPPROTO_UDPLITE`, for the pseudo-header; pass the
    /// same to agree with it.
    Partial(usize),
}

/// The UDP header at `dataoff`: its length field, the bytes from `dataoff` to the end of the
/// packet (`udplen`) and whether the checksum field is non-zero.
fn udp_header<P: PacketBytes + ?Sized>(
    pkt: &P,
    dataoff: usize,
) -> Result<(usize, usize, bool), UdpError> {
    let mut hdr = [0u8; UDP_HDR_LEN];
    pkt.read(dataoff, &mut hdr).map_err(|_| UdpError::Short)?;
    let [_, _, _, _, l0, l1, c0, c1] = hdr;
    // The read succeeded, so `dataoff + 8 <= len` and this cannot fail.
    let udplen = pkt.len().checked_sub(dataoff).ok_or(UdpError::Short)?;
    let has_csum = c0 != 0 || c1 != 0;
    Ok((usize::from(u16::from_be_bytes([l0, l1])), udplen, has_csum))
}

/// `udp_error` without the checksum test: checks the UDP header at `dataoff` and says
/// which checksum test remains.
pub(crate) fn udp_error<P: PacketBytes + ?Sized>(
    pkt: &P,
    dataoff: usize,
) -> Result<Checksum, UdpError> {
    let (len, udplen, has_csum) = udp_header(pkt, dataoff)?;
    // Truncated, or a length field too small to hold the header.
    if len > udplen || len < UDP_HDR_LEN {
        return Err(UdpError::Malformed);
    }
    Ok(if has_csum {
        Checksum::Full
    } else {
        Checksum::None
    })
}

/// `udplite_error` without the checksum test: checks the UDP-Lite header at `dataoff` (whose
/// length field is the checksum coverage) and says which checksum test remains.
pub(crate) fn udplite_error<P: PacketBytes + ?Sized>(
    pkt: &P,
    dataoff: usize,
) -> Result<Checksum, UdpError> {
    let (cscov, udplen, has_csum) = udp_header(pkt, dataoff)?;
    // Coverage 0 means the whole datagram.
    let cscov = if cscov == 0 { udplen } else { cscov };
    if cscov < UDP_HDR_LEN || cscov > udplen {
        return Err(UdpError::BadCoverage);
    }
    if !has_csum {
        return Err(UdpError::NoChecksum);
    }
    Ok(Checksum::Partial(cscov))
}

/// UDP's per-connection state, `struct nf_ct_udp`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct UdpState {
    /// `stream_ts`: `jiffies` (full width, `unsigned long`) after which traffic in both
    /// directions makes the flow a stream: 2 s after the last packet seen unconfirmed.
    pub(crate) stream_ts: u64,
}

/// `nf_conntrack_udp_packet` after `udp_error`, for a packet of a connection whose status
/// bits were `status` (read once, before the call) at `jiffies`.
///
/// While the entry is unconfirmed (its first packet), it sets `state.stream_ts` to 2 s
/// later; it never writes `state` afterwards, so a confirmed entry's state may be read
/// without a lock.
///
/// - No reply seen yet: refresh to the unreplied timeout (30 s).
/// - Reply seen, within 2 s of creation: still the unreplied timeout.
/// - Reply seen, later: the stream timeout (120 s), and assured if it was not (once: the
///   caller's test-and-set raises `IPCT_ASSURED` the first time only).
/// - `IPS_NAT_CLASH` entries are refreshed like the others but never assured: they are
///   meant to be evicted soon (and have a fixed 1 s timeout anyway).
pub(crate) fn udp_packet(
    state: &mut UdpState,
    status: u32,
    jiffies: u64,
    hz: u32,
    t: &Timeouts,
) -> PacketAction {
    if status & IPS_CONFIRMED == 0 {
        state.stream_ts = jiffies.wrapping_add(2u64.saturating_mul(u64::from(hz)));
    }
    if status & IPS_SEEN_REPLY == 0 {
        return PacketAction::refresh(secs_to_jiffies(t.udp_unreplied, hz));
    }
    // "Still active after two seconds? Extend timeout."
    let stream = time_after_long(jiffies, state.stream_ts);
    let extra = if stream {
        t.udp_replied
    } else {
        t.udp_unreplied
    };
    PacketAction {
        set_assured: stream && status & (IPS_ASSURED | IPS_NAT_CLASH) == 0,
        ..PacketAction::refresh(secs_to_jiffies(extra, hz))
    }
}

/// `nf_conntrack_udplite_packet` after `udplite_error`, for a packet of a connection whose
/// status bits are `status`.
///
/// Unlike UDP, UDP-Lite has no 2-second rule: once a reply has been seen, every packet
/// refreshes to the stream timeout (120 s) and asks for the assured bit (unless
/// `IPS_NAT_CLASH`); the caller's test-and-set raises `IPCT_ASSURED` only the first time.
pub(crate) fn udplite_packet(status: u32, hz: u32, t: &Timeouts) -> PacketAction {
    if status & IPS_SEEN_REPLY == 0 {
        return PacketAction::refresh(secs_to_jiffies(t.udp_unreplied, hz));
    }
    PacketAction {
        set_assured: status & IPS_NAT_CLASH == 0,
        ..PacketAction::refresh(secs_to_jiffies(t.udp_replied, hz))
    }
}

/// Verifies an incoming datagram's checksum as `udp_error` and `udplite_error` do
/// (`nf_conntrack_checksum`, on by default: PRE_ROUTING only).
fn checksum_ok<P: Packet + ?Sized>(pkt: &P, parsed: &Parsed, ctx: &HookCtx, ck: Checksum) -> bool {
    if ctx.hook != Hook::PreRouting {
        return true;
    }
    // 6.12 passes IPPROTO_UDP for UDP-Lite's pseudo-header too.
    match ck {
        Checksum::None => true,
        Checksum::Full => pkt.l4_checksum_ok(ctx.hook, ctx.l3, parsed.dataoff, IPPROTO_UDP, None),
        Checksum::Partial(len) => {
            pkt.l4_checksum_ok(ctx.hook, ctx.l3, parsed.dataoff, IPPROTO_UDP, Some(len))
        }
    }
}

/// The UDP tracker (`nf_conntrack_l4proto_udp`).
pub(crate) struct Udp;

impl L4Proto for Udp {
    type Header = ();

    const ALLOW_CLASH: bool = true;

    fn error<P: Packet + ?Sized>(pkt: &P, parsed: &Parsed, ctx: &HookCtx) -> Option<()> {
        let ck = udp_error(pkt, parsed.dataoff).ok()?;
        checksum_ok(pkt, parsed, ctx, ck).then_some(())
    }

    fn new_conn<P: Packet + ?Sized>(
        _pkt: &P,
        _hdr: &(),
        _parsed: &Parsed,
        ctx: &HookCtx,
        s: &Settings,
    ) -> (L4State, L4Action) {
        let mut st = UdpState::default();
        let a = udp_packet(&mut st, 0, ctx.clock.jiffies, ctx.clock.hz, &s.timeouts);
        (L4State::Udp(st), a.into())
    }

    fn packet<C: Conntrack + ?Sized, P: Packet + ?Sized>(
        ct: &C,
        entry: &C::Ref,
        _pkt: &P,
        _hdr: &(),
        _ctinfo: CtInfo,
        ctx: &HookCtx,
        s: &Settings,
    ) -> L4Action {
        let status = entry.status();
        // `stream_ts` matters only to a replied flow not yet assured: an assured flow is a
        // stream already (assured is set only once `stream_ts` has passed, and jiffies only
        // grow), so its packets leave the entry's lock alone.
        let mut st = if status & IPS_SEEN_REPLY != 0 && status & IPS_ASSURED == 0 {
            ct.with_l4(entry, |st| match st {
                L4State::Udp(u) => *u,
                _ => UdpState::default(),
            })
        } else {
            UdpState {
                stream_ts: ctx.clock.jiffies.wrapping_sub(1),
            }
        };
        // A confirmed entry's state is not written: nothing to store back.
        udp_packet(
            &mut st,
            status,
            ctx.clock.jiffies,
            ctx.clock.hz,
            &s.timeouts,
        )
        .into()
    }
}

/// The UDP-Lite tracker (`nf_conntrack_l4proto_udplite`).
pub(crate) struct UdpLite;

impl L4Proto for UdpLite {
    type Header = ();

    const ALLOW_CLASH: bool = true;

    fn error<P: Packet + ?Sized>(pkt: &P, parsed: &Parsed, ctx: &HookCtx) -> Option<()> {
        let ck = udplite_error(pkt, parsed.dataoff).ok()?;
        checksum_ok(pkt, parsed, ctx, ck).then_some(())
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
            udplite_packet(0, ctx.clock.hz, &s.timeouts).into(),
        )
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
        udplite_packet(entry.status(), ctx.clock.hz, &s.timeouts).into()
    }
}
