// SPDX-License-Identifier: GPL-2.0

//! One line of `/proc/net/nf_conntrack`, as Linux 6.12 prints it.
//!
//! C source: [`net/netfilter/nf_conntrack_standalone.c`](srctree/net/netfilter/nf_conntrack_standalone.c)
//! (`ct_seq_show`, `print_tuple`, `seq_print_acct`, `ct_show_zone`, `ct_show_delta_time`),
//! for the reference kernel's configuration: `CONFIG_NF_CONNTRACK_MARK`,
//! `CONFIG_NF_CONNTRACK_ZONES` and `CONFIG_NF_CONNTRACK_TIMESTAMP` on,
//! `CONFIG_NF_CONNTRACK_SECMARK` off (so no `secctx=`).
//!
//! Pure `core` code: the caller takes a [`Snapshot`] of an entry and [`write_line`] formats it.
//!
//! Which entries get a line is the caller's business, as in `ct_seq_show`: one line per
//! connection, from its original-direction hash node only; none for entries of another netns,
//! for entries whose refcount already dropped to zero, and none for
//! [`crate::proto::conn::should_gc`] entries (confirmed, expired, not dying), which the reader kills
//! instead.

use crate::proto::conn::{
    Zone, IPS_ASSURED, IPS_HW_OFFLOAD, IPS_OFFLOAD, IPS_SEEN_REPLY, NF_CT_DEFAULT_ZONE_DIR,
    NF_CT_ZONE_DIR_ORIG, NF_CT_ZONE_DIR_REPL,
};
use crate::proto::tuple::{l3_name, l4_name, print_tuple, Tuple};
use core::fmt::{self, Write};

/// One direction's accounting counters (`struct nf_conn_counter`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct Counter {
    /// Packets.
    pub(crate) packets: u64,
    /// Bytes (`skb->len` of each packet).
    pub(crate) bytes: u64,
}

/// What the protocol's `print_conntrack` writes after the timeout.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum L4Info {
    /// Nothing: UDP, UDP-Lite, ICMP, ICMPv6 and generic have no `print_conntrack`; TCP prints
    /// nothing for offloaded entries.
    None,
    /// A state name and a space: TCP (`tcp_conntrack_names`), SCTP and DCCP.
    State(&'static str),
    /// GRE: `timeout=%u, stream_timeout=%u ` in seconds.
    Gre {
        /// `ct->proto.gre.timeout / HZ`.
        timeout: u32,
        /// `ct->proto.gre.stream_timeout / HZ`.
        stream_timeout: u32,
    },
}

/// What `ct_seq_show` reads from one entry.
///
/// The first columns, the l3 and l4 names and numbers, come from the original tuple
/// (`nf_ct_l3num`, `nf_ct_protonum`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Snapshot {
    /// The original-direction tuple.
    pub(crate) original: Tuple,
    /// The reply-direction tuple.
    pub(crate) reply: Tuple,
    /// Status bits (`IPS_*`).
    pub(crate) status: u32,
    /// Seconds left, `nf_ct_expires(ct) / HZ` ([`crate::proto::conn::expires_in_secs`]); printed
    /// with `%ld`, and not at all with `IPS_OFFLOAD`.
    pub(crate) secs: i64,
    /// The protocol's own part.
    pub(crate) l4: L4Info,
    /// Counters of the original and reply directions, if the entry has the acct extension
    /// (`nf_conntrack_acct` was on when it was created).
    pub(crate) acct: Option<[Counter; 2]>,
    /// `ct->mark`.
    pub(crate) mark: u32,
    /// The entry's zone.
    pub(crate) zone: Zone,
    /// Seconds since the entry was confirmed, if it has the timestamp extension
    /// (`nf_conntrack_timestamp` was on); see [`delta_time_secs`].
    pub(crate) delta_time: Option<u64>,
    /// The refcount, including the reference the reader holds while printing.
    pub(crate) use_count: u32,
}

/// `ct_show_zone`: prints the zone at the place for `place`, which is one of the three
/// `NF_CT_ZONE_DIR_*` values; the zone appears at exactly one place, the one equal to its
/// `dir`. Zone 0 in both directions prints `zone=0 `.
fn write_zone<W: Write>(w: &mut W, zone: &Zone, place: u8) -> fmt::Result {
    if zone.dir != place {
        return Ok(());
    }
    match place {
        NF_CT_DEFAULT_ZONE_DIR => write!(w, "zone={} ", zone.id),
        NF_CT_ZONE_DIR_ORIG => write!(w, "zone-orig={} ", zone.id),
        NF_CT_ZONE_DIR_REPL => write!(w, "zone-reply={} ", zone.id),
        _ => Ok(()),
    }
}

/// `seq_print_acct`.
fn write_acct<W: Write>(w: &mut W, counter: Option<&Counter>) -> fmt::Result {
    match counter {
        Some(c) => write!(w, "packets={} bytes={} ", c.packets, c.bytes),
        None => Ok(()),
    }
}

/// Writes the `/proc/net/nf_conntrack` line of `s`, newline included, byte for byte as
/// 6.12's `ct_seq_show`:
///
/// ```text
/// %-8s %u %-8s %u  l3 name, l3num, l4 name, protonum
/// %ld              seconds left (not with IPS_OFFLOAD)
/// [state]          L4Info
/// original tuple   then zone-orig=, packets= bytes=
/// [UNREPLIED]      without IPS_SEEN_REPLY
/// reply tuple      then zone-reply=, packets= bytes=
/// [HW_OFFLOAD] or [OFFLOAD] or [ASSURED]
/// mark=%u zone=%u delta-time=%llu use=%u
/// ```
///
/// Every field ends in a space, except `use=`, which ends the line.
pub(crate) fn write_line<W: Write>(w: &mut W, s: &Snapshot) -> fmt::Result {
    let l3num = s.original.l3.num();
    let proto = s.original.proto;
    write!(
        w,
        "{:<8} {} {:<8} {} ",
        l3_name(l3num),
        l3num,
        l4_name(proto),
        proto
    )?;
    if s.status & IPS_OFFLOAD == 0 {
        write!(w, "{} ", s.secs)?;
    }
    match s.l4 {
        L4Info::None => {}
        L4Info::State(name) => write!(w, "{name} ")?,
        L4Info::Gre {
            timeout,
            stream_timeout,
        } => write!(w, "timeout={timeout}, stream_timeout={stream_timeout} ")?,
    }
    let [orig_acct, reply_acct] = match &s.acct {
        Some([o, r]) => [Some(o), Some(r)],
        None => [None, None],
    };
    print_tuple(w, &s.original)?;
    write_zone(w, &s.zone, NF_CT_ZONE_DIR_ORIG)?;
    write_acct(w, orig_acct)?;
    if s.status & IPS_SEEN_REPLY == 0 {
        w.write_str("[UNREPLIED] ")?;
    }
    print_tuple(w, &s.reply)?;
    write_zone(w, &s.zone, NF_CT_ZONE_DIR_REPL)?;
    write_acct(w, reply_acct)?;
    if s.status & IPS_HW_OFFLOAD != 0 {
        w.write_str("[HW_OFFLOAD] ")?;
    } else if s.status & IPS_OFFLOAD != 0 {
        w.write_str("[OFFLOAD] ")?;
    } else if s.status & IPS_ASSURED != 0 {
        w.write_str("[ASSURED] ")?;
    }
    write!(w, "mark={} ", s.mark)?;
    write_zone(w, &s.zone, NF_CT_DEFAULT_ZONE_DIR)?;
    if let Some(secs) = s.delta_time {
        write!(w, "delta-time={secs} ")?;
    }
    writeln!(w, "use={}", s.use_count)
}

/// `ct_show_delta_time`: whole seconds from `start_ns` (the timestamp extension's `start`,
/// set at confirmation) to `now_ns` (`ktime_get_real_ns()` when the read began), 0 if the
/// clock went backwards.
pub(crate) fn delta_time_secs(now_ns: u64, start_ns: u64) -> u64 {
    // The kernel subtracts into an s64 and clamps non-positive values to 0.
    let delta = now_ns.wrapping_sub(start_ns) as i64;
    if delta > 0 {
        delta.unsigned_abs() / 1_000_000_000
    } else {
        0
    }
}
