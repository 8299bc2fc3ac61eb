// SPDX-License-Identifier: GPL-2.0

//! The TCP tracker: header checks, the state machine and window tracking.
//!
//! C source: [`net/netfilter/nf_conntrack_proto_tcp.c`](srctree/net/netfilter/nf_conntrack_proto_tcp.c)
//! (`tcp_error`, `tcp_new`, `tcp_options`, `tcp_sack`, `tcp_in_window`,
//! `nf_tcp_handle_invalid`, `nf_conntrack_tcp_packet`, `tcp_can_early_drop`).
//! C headers: [`include/uapi/linux/netfilter/nf_conntrack_tcp.h`](srctree/include/uapi/linux/netfilter/nf_conntrack_tcp.h)
//! (`enum tcp_conntrack`, `IP_CT_TCP_FLAG_*`),
//! [`include/linux/netfilter/nf_conntrack_tcp.h`](srctree/include/linux/netfilter/nf_conntrack_tcp.h)
//! (`struct ip_ct_tcp`, `struct ip_ct_tcp_state`).
//!
//! Pure `core` code, built into the module and into the host crate for unit tests. What
//! needs the skb, the netns or the entry (checksum, logging, events, killing, refreshing)
//! is left to the caller: [`tcp_error`] says which checksum test remains, and
//! [`tcp_packet`] returns a [`TcpAction`] saying what to do.
//!
//! One packet, in 6.12's order:
//!
//! 1. [`tcp_error`] parses the header at `dataoff` (lengths, flags, options). An error
//!    makes the packet invalid before the entry is touched.
//! 2. The checksum, only on `NF_INET_PRE_ROUTING` with the `nf_conntrack_checksum` sysctl
//!    on (see [`tcp_error`] for where 6.12 checks it).
//! 3. Under the entry's lock: copy its [`TcpConn`] out, call [`tcp_packet`], copy it back
//!    (always, whatever the verdict: 6.12 updates the state of ignored and invalid packets
//!    too), unlock, then carry out the [`TcpAction`].
//!
//! For the first packet of a new entry the state is [`TcpConn::default`] and the status 0;
//! an invalid verdict means no entry is created.

use crate::proto::conn::{
    expires, secs_to_jiffies, CtInfo, Timeouts, IPS_ASSURED, IPS_CONFIRMED, IPS_FIXED_TIMEOUT,
    IPS_SEEN_REPLY,
};
use crate::proto::l4proto::{L4Action, L4Proto, L4State, Settings};
use crate::proto::pipeline::{Conntrack, Entry, Hook, HookCtx, Packet as PipelinePacket};
use crate::proto::proto_udp::Checksum;
use crate::proto::tuple::{Dir, PacketBytes, Parsed, IPPROTO_TCP};
use core::fmt;

/// `sizeof(struct tcphdr)`: the header without options.
pub(crate) const TCP_HDR_LEN: usize = 20;
/// Most option bytes a header can carry: `15 * 4 - sizeof(struct tcphdr)`.
pub(crate) const TCP_MAX_OPT_LEN: usize = 40;

/// `TCPHDR_FIN`, bit 0 of the flag byte (`tcp_flag_byte`).
pub(crate) const TCPHDR_FIN: u8 = 0x01;
/// `TCPHDR_SYN`.
pub(crate) const TCPHDR_SYN: u8 = 0x02;
/// `TCPHDR_RST`.
pub(crate) const TCPHDR_RST: u8 = 0x04;
/// `TCPHDR_PSH`.
pub(crate) const TCPHDR_PSH: u8 = 0x08;
/// `TCPHDR_ACK`.
pub(crate) const TCPHDR_ACK: u8 = 0x10;
/// `TCPHDR_URG`.
pub(crate) const TCPHDR_URG: u8 = 0x20;
/// `TCPHDR_ECE`.
pub(crate) const TCPHDR_ECE: u8 = 0x40;
/// `TCPHDR_CWR`.
pub(crate) const TCPHDR_CWR: u8 = 0x80;

/// `TCPOPT_EOL`: end of the option list.
pub(crate) const TCPOPT_EOL: u8 = 0;
/// `TCPOPT_NOP`: one byte of padding.
pub(crate) const TCPOPT_NOP: u8 = 1;
/// `TCPOPT_WINDOW`: window scale.
pub(crate) const TCPOPT_WINDOW: u8 = 3;
/// `TCPOPT_SACK_PERM`: SACK permitted.
pub(crate) const TCPOPT_SACK_PERM: u8 = 4;
/// `TCPOPT_SACK`: SACK blocks.
pub(crate) const TCPOPT_SACK: u8 = 5;
/// `TCPOPT_TIMESTAMP`.
pub(crate) const TCPOPT_TIMESTAMP: u8 = 8;
/// `TCPOLEN_WINDOW`.
const TCPOLEN_WINDOW: usize = 3;
/// `TCPOLEN_SACK_PERM`.
const TCPOLEN_SACK_PERM: usize = 2;
/// `TCPOLEN_TIMESTAMP`.
const TCPOLEN_TIMESTAMP: u8 = 10;
/// `TCPOLEN_TSTAMP_ALIGNED`: NOP, NOP, timestamp.
const TCPOLEN_TSTAMP_ALIGNED: usize = 12;
/// `TCPOLEN_SACK_BASE`: kind and length.
const TCPOLEN_SACK_BASE: usize = 2;
/// `TCPOLEN_SACK_PERBLOCK`: left and right edge.
const TCPOLEN_SACK_PERBLOCK: usize = 8;
/// `TCP_MAX_WSCALE`: larger advertised scales are clamped to this (RFC 7323).
pub(crate) const TCP_MAX_WSCALE: u8 = 14;

/// `IP_CT_TCP_FLAG_WINDOW_SCALE`: the sender advertised window scaling.
pub(crate) const IP_CT_TCP_FLAG_WINDOW_SCALE: u8 = 0x01;
/// `IP_CT_TCP_FLAG_SACK_PERM`: the sender permits SACK.
pub(crate) const IP_CT_TCP_FLAG_SACK_PERM: u8 = 0x02;
/// `IP_CT_TCP_FLAG_CLOSE_INIT`: this sender sent the first FIN.
pub(crate) const IP_CT_TCP_FLAG_CLOSE_INIT: u8 = 0x04;
/// `IP_CT_TCP_FLAG_BE_LIBERAL`: window checks never make this sender's packets invalid.
pub(crate) const IP_CT_TCP_FLAG_BE_LIBERAL: u8 = 0x08;
/// `IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED`: this sender has data not acknowledged yet.
pub(crate) const IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED: u8 = 0x10;
/// `IP_CT_TCP_FLAG_MAXACK_SET`: `td_maxack` holds a value.
pub(crate) const IP_CT_TCP_FLAG_MAXACK_SET: u8 = 0x20;
/// `IP_CT_EXP_CHALLENGE_ACK`: an RFC 5961 challenge ACK may answer the last SYN
/// (in `last_flags`).
pub(crate) const IP_CT_EXP_CHALLENGE_ACK: u8 = 0x40;
/// `IP_CT_TCP_SIMULTANEOUS_OPEN`: simultaneous open seen (in `last_flags`).
pub(crate) const IP_CT_TCP_SIMULTANEOUS_OPEN: u8 = 0x80;

/// `MAXACKWINCONST`: the least window below `td_end` in which an ACK is not too old.
const MAXACKWINCONST: u32 = 66000;

/// A TCP connection state, `enum tcp_conntrack`, plus the two outcomes of the transition
/// table that are no state (values as in the uapi header).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[repr(u8)]
pub(crate) enum TcpConntrack {
    /// `TCP_CONNTRACK_NONE`: before the first packet.
    #[default]
    None = 0,
    /// `TCP_CONNTRACK_SYN_SENT`: SYN seen.
    SynSent = 1,
    /// `TCP_CONNTRACK_SYN_RECV`: SYN/ACK seen.
    SynRecv = 2,
    /// `TCP_CONNTRACK_ESTABLISHED`: ACK seen.
    Established = 3,
    /// `TCP_CONNTRACK_FIN_WAIT`: FIN seen.
    FinWait = 4,
    /// `TCP_CONNTRACK_CLOSE_WAIT`: ACK seen after the FIN.
    CloseWait = 5,
    /// `TCP_CONNTRACK_LAST_ACK`: FIN seen both ways.
    LastAck = 6,
    /// `TCP_CONNTRACK_TIME_WAIT`: last ACK seen.
    TimeWait = 7,
    /// `TCP_CONNTRACK_CLOSE`: RST seen.
    Close = 8,
    /// `TCP_CONNTRACK_SYN_SENT2` (`TCP_CONNTRACK_LISTEN`): SYN seen from the reply
    /// direction after one from the original (simultaneous open).
    SynSent2 = 9,
    /// `TCP_CONNTRACK_MAX` (`sIV` in the table): the packet is invalid in this state.
    Invalid = 10,
    /// `TCP_CONNTRACK_IGNORE` (`sIG`): the packet may be valid but is ignored.
    Ignore = 11,
}

impl TcpConntrack {
    /// `tcp_conntrack_names[]`: what `/proc/net/nf_conntrack` prints for the state
    /// (`tcp_print_conntrack`, which prints nothing for `IPS_OFFLOAD` entries). The two
    /// table outcomes are never stored; they get names for debugging only.
    pub(crate) fn name(self) -> &'static str {
        match self {
            TcpConntrack::None => "NONE",
            TcpConntrack::SynSent => "SYN_SENT",
            TcpConntrack::SynRecv => "SYN_RECV",
            TcpConntrack::Established => "ESTABLISHED",
            TcpConntrack::FinWait => "FIN_WAIT",
            TcpConntrack::CloseWait => "CLOSE_WAIT",
            TcpConntrack::LastAck => "LAST_ACK",
            TcpConntrack::TimeWait => "TIME_WAIT",
            TcpConntrack::Close => "CLOSE",
            TcpConntrack::SynSent2 => "SYN_SENT2",
            TcpConntrack::Invalid => "INVALID",
            TcpConntrack::Ignore => "IGNORE",
        }
    }

    /// Whether this is a connection state (below `TCP_CONNTRACK_MAX`).
    pub(crate) fn is_state(self) -> bool {
        (self as u8) < (TcpConntrack::Invalid as u8)
    }

    /// The state with the uapi value `v` (`ct->proto.tcp.state`), if it is one.
    pub(crate) fn from_u8(v: u8) -> Option<TcpConntrack> {
        STATES.get(usize::from(v)).copied()
    }
}

/// The connection states by value.
const STATES: [TcpConntrack; 10] = [
    TcpConntrack::None,
    TcpConntrack::SynSent,
    TcpConntrack::SynRecv,
    TcpConntrack::Established,
    TcpConntrack::FinWait,
    TcpConntrack::CloseWait,
    TcpConntrack::LastAck,
    TcpConntrack::TimeWait,
    TcpConntrack::Close,
    TcpConntrack::SynSent2,
];

/// The class of a packet for the transition table, `enum tcp_bit_set`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[repr(u8)]
pub(crate) enum TcpIndex {
    /// `TCP_SYN_SET`: SYN without ACK. Also what a zeroed `last_index` reads as.
    #[default]
    Syn = 0,
    /// `TCP_SYNACK_SET`.
    SynAck = 1,
    /// `TCP_FIN_SET`: FIN (without SYN or RST).
    Fin = 2,
    /// `TCP_ACK_SET`: ACK without SYN, FIN or RST.
    Ack = 3,
    /// `TCP_RST_SET`: RST, whatever else is set.
    Rst = 4,
    /// `TCP_NONE_SET`: none of the above.
    None = 5,
}

impl TcpIndex {
    /// `get_conntrack_index` on the flag byte.
    pub(crate) fn of_flags(flags: u8) -> TcpIndex {
        if flags & TCPHDR_RST != 0 {
            TcpIndex::Rst
        } else if flags & TCPHDR_SYN != 0 {
            if flags & TCPHDR_ACK != 0 {
                TcpIndex::SynAck
            } else {
                TcpIndex::Syn
            }
        } else if flags & TCPHDR_FIN != 0 {
            TcpIndex::Fin
        } else if flags & TCPHDR_ACK != 0 {
            TcpIndex::Ack
        } else {
            TcpIndex::None
        }
    }
}

// The table's abbreviations, as in the C source (sSS, ...; sNO never appears).
const SS: TcpConntrack = TcpConntrack::SynSent;
const SR: TcpConntrack = TcpConntrack::SynRecv;
const ES: TcpConntrack = TcpConntrack::Established;
const FW: TcpConntrack = TcpConntrack::FinWait;
const CW: TcpConntrack = TcpConntrack::CloseWait;
const LA: TcpConntrack = TcpConntrack::LastAck;
const TW: TcpConntrack = TcpConntrack::TimeWait;
const CL: TcpConntrack = TcpConntrack::Close;
const S2: TcpConntrack = TcpConntrack::SynSent2;
const IV: TcpConntrack = TcpConntrack::Invalid;
const IG: TcpConntrack = TcpConntrack::Ignore;

/// `tcp_conntracks[2][6][TCP_CONNTRACK_MAX]`: the new state by direction, packet class
/// ([`TcpIndex`]) and old state. The C source explains every cell.
#[rustfmt::skip]
pub(crate) const TCP_CONNTRACKS: [[[TcpConntrack; 10]; 6]; 2] = [
    [
        // ORIGINAL
        //           sNO sSS sSR sES sFW sCW sLA sTW sCL sS2
        /* syn */    [SS, SS, IG, IG, IG, IG, IG, SS, SS, S2],
        /* synack */ [IV, IV, SR, IV, IV, IV, IV, IV, IV, SR],
        /* fin */    [IV, IV, FW, FW, LA, LA, LA, TW, CL, IV],
        /* ack */    [ES, IV, ES, ES, CW, CW, TW, TW, CL, IV],
        /* rst */    [IV, CL, CL, CL, CL, CL, CL, CL, CL, CL],
        /* none */   [IV, IV, IV, IV, IV, IV, IV, IV, IV, IV],
    ],
    [
        // REPLY
        //           sNO sSS sSR sES sFW sCW sLA sTW sCL sS2
        /* syn */    [IV, S2, IV, IV, IV, IV, IV, SS, IV, S2],
        /* synack */ [IV, SR, IG, IG, IG, IG, IG, IG, IG, SR],
        /* fin */    [IV, IV, FW, FW, LA, LA, LA, TW, CL, IV],
        /* ack */    [IV, IG, SR, ES, CW, CW, TW, TW, CL, IG],
        /* rst */    [IV, CL, CL, CL, CL, CL, CL, CL, CL, CL],
        /* none */   [IV, IV, IV, IV, IV, IV, IV, IV, IV, IV],
    ],
];

/// `tcp_conntracks[dir][index][state]`; [`TcpConntrack::Invalid`] for an old state that
/// is no state (never stored).
pub(crate) fn transition(dir: Dir, index: TcpIndex, state: TcpConntrack) -> TcpConntrack {
    TCP_CONNTRACKS
        .get(dir as usize)
        .and_then(|d| d.get(index as usize))
        .and_then(|row| row.get(state as usize))
        .copied()
        .unwrap_or(TcpConntrack::Invalid)
}

/// `before(seq1, seq2)`: `seq1` precedes `seq2` in sequence space (mod 2^32).
pub(crate) fn before(seq1: u32, seq2: u32) -> bool {
    // The sign of the wrapping difference, as the kernel's `(__s32)(seq1 - seq2) < 0`.
    (seq1.wrapping_sub(seq2) as i32) < 0
}

/// `after(seq2, seq1)`: `seq2` follows `seq1` in sequence space.
pub(crate) fn after(seq2: u32, seq1: u32) -> bool {
    before(seq1, seq2)
}

/// `win << scale` as the kernel's `u32` shift; `scale` never exceeds [`TCP_MAX_WSCALE`].
fn scaled(win: u32, scale: u8) -> u32 {
    win.checked_shl(u32::from(scale)).unwrap_or(0)
}

/// `tcp_valid_flags[]`: whether the flag byte, PSH, ECE and CWR aside, is a combination
/// 6.12 accepts.
pub(crate) fn tcp_valid_flags(flags: u8) -> bool {
    const VALID: [u8; 9] = [
        TCPHDR_SYN,
        TCPHDR_SYN | TCPHDR_URG,
        TCPHDR_SYN | TCPHDR_ACK,
        TCPHDR_RST,
        TCPHDR_RST | TCPHDR_ACK,
        TCPHDR_FIN | TCPHDR_ACK,
        TCPHDR_FIN | TCPHDR_ACK | TCPHDR_URG,
        TCPHDR_ACK,
        TCPHDR_ACK | TCPHDR_URG,
    ];
    VALID.contains(&(flags & !(TCPHDR_ECE | TCPHDR_CWR | TCPHDR_PSH)))
}

/// Why a TCP header makes a packet invalid (before the checksum test, which is the
/// caller's).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum TcpError {
    /// Fewer than 20 bytes from `dataoff` (`skb_header_pointer` fails; not logged).
    Short,
    /// The data offset is below 5 words or beyond the packet.
    Truncated,
    /// A flag combination `tcp_valid_flags` refuses.
    InvalidFlags,
}

impl TcpError {
    /// The kernel's log message, if it logs this error.
    pub(crate) fn msg(self) -> Option<&'static str> {
        match self {
            TcpError::Short => None,
            TcpError::Truncated => Some("truncated packet"),
            TcpError::InvalidFlags => Some("invalid tcp flag combination"),
        }
    }
}

/// What the tracker needs of a TCP segment: its header fields, options and data length.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct TcpSegment {
    /// The flag byte (`tcp_flag_byte`): CWR ECE URG ACK PSH RST SYN FIN.
    pub(crate) flags: u8,
    /// Sequence number.
    pub(crate) seq: u32,
    /// Acknowledgement number (read whether or not ACK is set, as the kernel does).
    pub(crate) ack_seq: u32,
    /// Window field, unscaled.
    pub(crate) window: u16,
    /// Data bytes: `skb->len - dataoff - doff * 4`, modulo 2^32.
    pub(crate) payload_len: u32,
    /// Option bytes in [`TcpSegment::opts`] (`doff * 4 - 20`).
    pub(crate) opt_len: u8,
    /// The options, `opt_len` bytes followed by zeros.
    pub(crate) opts: [u8; TCP_MAX_OPT_LEN],
    /// `nf_ct_seq_offset(ct, !dir, ack - 1)`: how far NAT moved the receiver's sequence
    /// numbers, which its acknowledgements count in.
    pub(crate) receiver_offset: i32,
}

impl TcpSegment {
    /// A segment without options or data.
    pub(crate) const fn new(flags: u8, seq: u32, ack_seq: u32, window: u16) -> TcpSegment {
        TcpSegment {
            flags,
            seq,
            ack_seq,
            window,
            payload_len: 0,
            opt_len: 0,
            opts: [0; TCP_MAX_OPT_LEN],
            receiver_offset: 0,
        }
    }

    /// The option bytes.
    pub(crate) fn options(&self) -> &[u8] {
        self.opts.get(..usize::from(self.opt_len)).unwrap_or(&[])
    }

    /// The packet class, `get_conntrack_index`.
    pub(crate) fn index(&self) -> TcpIndex {
        TcpIndex::of_flags(self.flags)
    }

    /// SYN set.
    pub(crate) fn syn(&self) -> bool {
        self.flags & TCPHDR_SYN != 0
    }

    /// ACK set.
    pub(crate) fn ack(&self) -> bool {
        self.flags & TCPHDR_ACK != 0
    }

    /// RST set.
    pub(crate) fn rst(&self) -> bool {
        self.flags & TCPHDR_RST != 0
    }

    /// FIN set.
    pub(crate) fn fin(&self) -> bool {
        self.flags & TCPHDR_FIN != 0
    }

    /// `segment_seq_plus_len`: the sequence number after this segment (SYN and FIN count
    /// one each), wrapping as the kernel's `u32`.
    pub(crate) fn end(&self) -> u32 {
        self.seq
            .wrapping_add(self.payload_len)
            .wrapping_add(u32::from(self.syn()))
            .wrapping_add(u32::from(self.fin()))
    }
}

/// `tcp_error` without the checksum test: checks the TCP header at `dataoff` and reads
/// what the tracker needs. The remaining checksum test is always [`Checksum::Full`]
/// (`nf_checksum(skb, hook, dataoff, IPPROTO_TCP, pf)`; TCP has no "no checksum" value).
///
/// 6.12 tests the checksum between the length and the flag checks: both failures make the
/// packet invalid, so only the logged message can differ. A caller that logs should, on
/// [`TcpError::InvalidFlags`], test the checksum first and log "bad checksum" if it fails.
pub(crate) fn tcp_error<P: PacketBytes + ?Sized>(
    pkt: &P,
    dataoff: usize,
) -> Result<(TcpSegment, Checksum), TcpError> {
    let mut hdr = [0u8; TCP_HDR_LEN];
    pkt.read(dataoff, &mut hdr).map_err(|_| TcpError::Short)?;
    let [_, _, _, _, s0, s1, s2, s3, a0, a1, a2, a3, off, flags, w0, w1, _, _, _, _] = hdr;
    let hdr_len = usize::from(off >> 4) * 4;
    // The read succeeded, so `dataoff + 20 <= len` and this cannot fail.
    let tcplen = pkt.len().checked_sub(dataoff).ok_or(TcpError::Short)?;
    // Not the whole header, or a data offset inside the fixed header.
    if hdr_len < TCP_HDR_LEN || tcplen < hdr_len {
        return Err(TcpError::Truncated);
    }
    if !tcp_valid_flags(flags) {
        return Err(TcpError::InvalidFlags);
    }
    let mut opts = [0u8; TCP_MAX_OPT_LEN];
    // At most 60 - 20 = 40 bytes, all within the packet (checked above).
    let opt_len = hdr_len.saturating_sub(TCP_HDR_LEN);
    let dst = opts.get_mut(..opt_len).ok_or(TcpError::Truncated)?;
    let opt_off = dataoff.checked_add(TCP_HDR_LEN).ok_or(TcpError::Short)?;
    pkt.read(opt_off, dst).map_err(|_| TcpError::Truncated)?;
    let seg = TcpSegment {
        flags,
        seq: u32::from_be_bytes([s0, s1, s2, s3]),
        ack_seq: u32::from_be_bytes([a0, a1, a2, a3]),
        window: u16::from_be_bytes([w0, w1]),
        // `skb->len` is 32 bits in the kernel: the truncation is its arithmetic.
        payload_len: tcplen.saturating_sub(hdr_len) as u32,
        // At most 40.
        opt_len: opt_len as u8,
        opts,
        receiver_offset: 0,
    };
    Ok((seg, Checksum::Full))
}

/// What one direction of a connection has shown, `struct ip_ct_tcp_state`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct TcpPeer {
    /// `td_end`: max of seq + len sent.
    pub(crate) td_end: u32,
    /// `td_maxend`: max of ack + max(win, 1) received (the right edge this sender may reach).
    pub(crate) td_maxend: u32,
    /// `td_maxwin`: max window advertised (scaled), 0 until this direction was seen.
    pub(crate) td_maxwin: u32,
    /// `td_maxack`: max ack sent (valid with [`IP_CT_TCP_FLAG_MAXACK_SET`]).
    pub(crate) td_maxack: u32,
    /// `td_scale`: window scale factor.
    pub(crate) td_scale: u8,
    /// `flags`: `IP_CT_TCP_FLAG_*`.
    pub(crate) flags: u8,
}

impl TcpPeer {
    /// `nf_ct_tcp_state_reset`: forget everything but [`IP_CT_TCP_FLAG_BE_LIBERAL`].
    pub(crate) fn reset(&mut self) {
        *self = TcpPeer {
            flags: self.flags & IP_CT_TCP_FLAG_BE_LIBERAL,
            ..TcpPeer::default()
        };
    }
}

/// TCP's per-connection state, `struct ip_ct_tcp`. All zero ([`Default`]) before the
/// first packet, as the kernel's is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct TcpConn {
    /// `seen[dir]`: per direction.
    pub(crate) seen: [TcpPeer; 2],
    /// `state`: the connection state (never [`TcpConntrack::Invalid`] or `Ignore`).
    pub(crate) state: TcpConntrack,
    /// `last_dir`: direction of the last packet that got past the checks.
    pub(crate) last_dir: Dir,
    /// `retrans`: identical ACK segments seen in a row (wraps at 256, as the kernel's u8).
    pub(crate) retrans: u8,
    /// `last_index`: class of the last packet.
    pub(crate) last_index: TcpIndex,
    /// `last_seq`: sequence number of the last ACK (or ignored packet).
    pub(crate) last_seq: u32,
    /// `last_ack`: ack of the last ACK, or of a possible challenge ACK in `SYN_SENT`.
    pub(crate) last_ack: u32,
    /// `last_end`: end of the last ACK (or ignored packet).
    pub(crate) last_end: u32,
    /// `last_win`: window field of the last ACK (or ignored packet), unscaled.
    pub(crate) last_win: u16,
    /// `last_wscale`: window scale of the last ignored SYN.
    pub(crate) last_wscale: u8,
    /// `last_flags`: options of the last ignored SYN, [`IP_CT_EXP_CHALLENGE_ACK`] and
    /// [`IP_CT_TCP_SIMULTANEOUS_OPEN`].
    pub(crate) last_flags: u8,
}

impl Default for TcpConn {
    fn default() -> TcpConn {
        TcpConn {
            seen: [TcpPeer::default(); 2],
            state: TcpConntrack::None,
            last_dir: Dir::Original,
            retrans: 0,
            last_index: TcpIndex::Syn,
            last_seq: 0,
            last_ack: 0,
            last_end: 0,
            last_win: 0,
            last_wscale: 0,
            last_flags: 0,
        }
    }
}

impl TcpConn {
    /// `seen[dir]`.
    pub(crate) fn peer(&self, dir: Dir) -> &TcpPeer {
        let [orig, reply] = &self.seen;
        match dir {
            Dir::Original => orig,
            Dir::Reply => reply,
        }
    }

    /// `seen[dir]`, mutable.
    pub(crate) fn peer_mut(&mut self, dir: Dir) -> &mut TcpPeer {
        let [orig, reply] = &mut self.seen;
        match dir {
            Dir::Original => orig,
            Dir::Reply => reply,
        }
    }

    /// `(sender, receiver)` for a packet in `dir`: `seen[dir]` and `seen[!dir]`.
    fn sender_receiver(&mut self, dir: Dir) -> (&mut TcpPeer, &mut TcpPeer) {
        let [orig, reply] = &mut self.seen;
        match dir {
            Dir::Original => (orig, reply),
            Dir::Reply => (reply, orig),
        }
    }

    /// `nf_ct_set_tcp_be_liberal`: no window check will make a packet invalid any more
    /// (what flow offload and Open vSwitch do).
    pub(crate) fn set_be_liberal(&mut self) {
        for p in &mut self.seen {
            p.flags |= IP_CT_TCP_FLAG_BE_LIBERAL;
        }
    }

    /// `nf_conntrack_tcp_established`: `ESTABLISHED` and assured.
    pub(crate) fn established(&self, status: u32) -> bool {
        self.state == TcpConntrack::Established && status & IPS_ASSURED != 0
    }
}

/// `tcp_can_early_drop`: whether an assured entry in `state` may still be evicted when the
/// table is nearly full (the connection is closing).
pub(crate) fn tcp_can_early_drop(state: TcpConntrack) -> bool {
    matches!(
        state,
        TcpConntrack::FinWait
            | TcpConntrack::LastAck
            | TcpConntrack::TimeWait
            | TcpConntrack::Close
            | TcpConntrack::CloseWait
    )
}

/// Walks an option list as `tcp_options` and `tcp_sack` do, calling `f` with each option
/// other than EOL and NOP (kind, and the whole option including kind and length). Stops at
/// EOL, at a truncated or "silly" (length below 2) option, or when `f` returns true.
fn walk_options(opts: &[u8], mut f: impl FnMut(u8, &[u8]) -> bool) {
    let mut rest = opts;
    while let Some((&opcode, tail)) = rest.split_first() {
        match opcode {
            TCPOPT_EOL => return,
            TCPOPT_NOP => rest = tail,
            _ => {
                // No length byte left.
                let Some(&opsize) = tail.first() else {
                    return;
                };
                let opsize = usize::from(opsize);
                // "Silly options", and partial options, end the walk.
                let (Some(opt), Some(next)) = (rest.get(..opsize), rest.get(opsize..)) else {
                    return;
                };
                if opsize < 2 || f(opcode, opt) {
                    return;
                }
                rest = next;
            }
        }
    }
}

/// `tcp_options`: window scale and SACK-permitted from a SYN's (or SYN/ACK's) option list
/// into `state`. An empty list changes nothing; otherwise the scale and every flag but
/// [`IP_CT_TCP_FLAG_BE_LIBERAL`] are reset first.
pub(crate) fn tcp_options(opts: &[u8], state: &mut TcpPeer) {
    if opts.is_empty() {
        return;
    }
    state.td_scale = 0;
    state.flags &= IP_CT_TCP_FLAG_BE_LIBERAL;
    walk_options(opts, |kind, opt| {
        if kind == TCPOPT_SACK_PERM && opt.len() == TCPOLEN_SACK_PERM {
            state.flags |= IP_CT_TCP_FLAG_SACK_PERM;
        } else if kind == TCPOPT_WINDOW && opt.len() == TCPOLEN_WINDOW {
            if let Some(&scale) = opt.get(2) {
                state.td_scale = scale.min(TCP_MAX_WSCALE);
            }
            state.flags |= IP_CT_TCP_FLAG_WINDOW_SCALE;
        }
        false
    });
}

/// `tcp_sack`: raises `sack` to the highest right edge of the first well-formed SACK
/// option's blocks (sequence-space comparison).
pub(crate) fn tcp_sack(opts: &[u8], sack: &mut u32) {
    if opts.is_empty() {
        return;
    }
    // Fast path for the timestamp-only list.
    if opts.len() == TCPOLEN_TSTAMP_ALIGNED
        && opts.get(..4) == Some(&[TCPOPT_NOP, TCPOPT_NOP, TCPOPT_TIMESTAMP, TCPOLEN_TIMESTAMP])
    {
        return;
    }
    walk_options(opts, |kind, opt| {
        let Some(blocks) = opt.get(TCPOLEN_SACK_BASE..) else {
            return false;
        };
        if kind != TCPOPT_SACK
            || blocks.len() < TCPOLEN_SACK_PERBLOCK
            || blocks.len() % TCPOLEN_SACK_PERBLOCK != 0
        {
            return false;
        }
        for block in blocks.chunks_exact(TCPOLEN_SACK_PERBLOCK) {
            if let Ok([_, _, _, _, r0, r1, r2, r3]) = <[u8; 8]>::try_from(block) {
                let right = u32::from_be_bytes([r0, r1, r2, r3]);
                if after(right, *sack) {
                    *sack = right;
                }
            }
        }
        // Only the first SACK option counts.
        true
    });
}

/// `tcp_init_sender`: (re)initialises the sender's window data from a SYN or SYN/ACK. In
/// the reply direction, window scaling stays on only if both sides offered it.
fn tcp_init_sender(
    sender: &mut TcpPeer,
    receiver: &mut TcpPeer,
    seg: &TcpSegment,
    end: u32,
    win: u32,
    dir: Dir,
) {
    sender.td_end = end;
    sender.td_maxend = end;
    sender.td_maxwin = if win == 0 { 1 } else { win };
    tcp_options(seg.options(), sender);
    if dir == Dir::Reply
        && !(sender.flags & IP_CT_TCP_FLAG_WINDOW_SCALE != 0
            && receiver.flags & IP_CT_TCP_FLAG_WINDOW_SCALE != 0)
    {
        sender.td_scale = 0;
        receiver.td_scale = 0;
    }
}

/// `enum nf_ct_tcp_action`: the outcome of [`tcp_in_window`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum TcpWindowAction {
    /// `NFCT_TCP_IGNORE`: out of window but harmless; accepted without a state change.
    Ignore,
    /// `NFCT_TCP_INVALID`: out of window.
    Invalid,
    /// `NFCT_TCP_ACCEPT`: in window.
    Accept,
}

/// What the kernel logs about an invalid or ignored packet (`nf_ct_l4proto_log_invalid`,
/// `nf_tcp_log_invalid`, when `nf_conntrack_log_invalid` asks for TCP). [`fmt::Display`]
/// writes the kernel's message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum TcpLog {
    /// The first packet cannot start a connection.
    InvalidNew,
    /// The table says `sIG`.
    Ignored {
        /// Packet class.
        index: TcpIndex,
        /// Packet direction.
        dir: Dir,
        /// State before the packet.
        state: TcpConntrack,
    },
    /// The table says `sIV`.
    InvalidState {
        /// Packet class.
        index: TcpIndex,
        /// Packet direction.
        dir: Dir,
        /// State before the packet.
        state: TcpConntrack,
    },
    /// An RFC 5961 challenge ACK in `LAST_ACK`, not taken for the last ACK.
    ChallengeAck,
    /// A RST below the peer's highest ack.
    InvalidRst,
    /// `NF_TCP_LOG_OVERSHOT`: data beyond the window by this many bytes (ignored).
    Overshot(u32),
    /// `NF_TCP_LOG_SEQ_OVER`: sequence number above this bound.
    SeqOver(u32),
    /// `NF_TCP_LOG_ACK_OVER`: ack above this bound.
    AckOver(u32),
    /// `NF_TCP_LOG_SEQ_UNDER`: end below this bound (ignored).
    SeqUnder(u32),
    /// `NF_TCP_LOG_ACK_UNDER`: ack below this bound (ignored).
    AckUnder(u32),
}

impl fmt::Display for TcpLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TcpLog::InvalidNew => f.write_str("invalid new"),
            TcpLog::Ignored { index, dir, state } => write!(
                f,
                "packet (index {}) in dir {} ignored, state {}",
                index as u8,
                dir as u8,
                state.name()
            ),
            TcpLog::InvalidState { index, dir, state } => write!(
                f,
                "packet (index {}) in dir {} invalid, state {}",
                index as u8,
                dir as u8,
                state.name()
            ),
            TcpLog::ChallengeAck => f.write_str("challenge-ack ignored"),
            TcpLog::InvalidRst => f.write_str("invalid rst"),
            TcpLog::Overshot(v) => write!(f, "{} bytes more than expected", v),
            TcpLog::SeqOver(v) => write!(
                f,
                "SEQ is over upper bound {} (over the window of the receiver)",
                v
            ),
            TcpLog::AckOver(v) => {
                write!(f, "ACK is over upper bound {} (ACKed data not seen yet)", v)
            }
            TcpLog::SeqUnder(v) => write!(
                f,
                "SEQ is under lower bound {} (already ACKed data retransmitted)",
                v
            ),
            TcpLog::AckUnder(v) => write!(
                f,
                "ignored ACK under lower bound {} (possible overly delayed)",
                v
            ),
        }
    }
}

/// `MAXACKWINDOW(sender)`.
fn max_ack_window(sender: &TcpPeer) -> u32 {
    sender.td_maxwin.max(MAXACKWINCONST)
}

/// `nf_tcp_store_invalid`: a liberal sender (or the `nf_conntrack_tcp_be_liberal` sysctl)
/// turns any failure into acceptance, without a log.
fn store_invalid(
    sender: &TcpPeer,
    be_liberal: bool,
    ret: TcpWindowAction,
    log: TcpLog,
) -> (TcpWindowAction, Option<TcpLog>) {
    if sender.flags & IP_CT_TCP_FLAG_BE_LIBERAL != 0 || be_liberal {
        (TcpWindowAction::Accept, None)
    } else {
        (ret, Some(log))
    }
}

/// `tcp_in_window`: checks a packet in `dir` of class `index` against the windows and
/// updates them (RFC 793 bounds, "Real Stateful TCP Packet Filtering in IP Filter"):
///
/// - I. `seq <= sender.td_maxend`
/// - II. `seq + len >= sender.td_end - receiver.td_maxwin`
/// - III. `sack <= receiver.td_end`
/// - IV. `sack >= receiver.td_end - MAXACKWINDOW`
///
/// `sack` is the highest SACK right edge if the receiver permits SACK, else the ack.
/// `be_liberal` is the `nf_conntrack_tcp_be_liberal` sysctl. Returns the verdict and, for
/// a failure that is not excused, what the kernel logs.
///
/// NAT's sequence adjustment (`nf_ct_seq_offset`) is applied to the acknowledgement as
/// 6.12 applies it, from [`TcpSegment::receiver_offset`].
pub(crate) fn tcp_in_window(
    conn: &mut TcpConn,
    dir: Dir,
    index: TcpIndex,
    seg: &TcpSegment,
    be_liberal: bool,
) -> (TcpWindowAction, Option<TcpLog>) {
    let state = conn.state;
    let (sender, receiver) = conn.sender_receiver(dir);
    let mut seq = seg.seq;
    let mut ack = seg.ack_seq;
    let mut sack = ack;
    let win_raw = seg.window;
    let mut win = u32::from(win_raw);
    let mut end = seg.end();

    if receiver.flags & IP_CT_TCP_FLAG_SACK_PERM != 0 {
        tcp_sack(seg.options(), &mut sack);
    }

    // "Take into account NAT sequence number mangling."
    ack = ack.wrapping_sub(seg.receiver_offset as u32);
    sack = sack.wrapping_sub(seg.receiver_offset as u32);

    if sender.td_maxwin == 0 {
        // First packet in this direction.
        if seg.syn() {
            tcp_init_sender(sender, receiver, seg, end, win, dir);
            if !seg.ack() {
                // Simultaneous open.
                return (TcpWindowAction::Accept, None);
            }
        } else {
            // Mid-connection: the history is lost, take what the packet shows.
            sender.td_end = end;
            let swin = scaled(win, sender.td_scale);
            sender.td_maxwin = if swin == 0 { 1 } else { swin };
            sender.td_maxend = end.wrapping_add(sender.td_maxwin);
            if receiver.td_maxwin == 0 {
                // Nothing seen the other way yet: let III and IV pass until it is.
                receiver.td_end = sack;
                receiver.td_maxend = sack;
            } else if sack == receiver.td_end.wrapping_add(1) {
                // Likely a reply to a keepalive; needed for III.
                receiver.td_end = receiver.td_end.wrapping_add(1);
            }
        }
    } else if seg.syn()
        && after(end, sender.td_end)
        && (state == TcpConntrack::SynSent || state == TcpConntrack::SynRecv)
    {
        // A reinitialised sender (RFC 793): start over as for its first SYN(/ACK).
        tcp_init_sender(sender, receiver, seg, end, win, dir);
        if dir == Dir::Reply && !seg.ack() {
            return (TcpWindowAction::Accept, None);
        }
    }

    if !seg.ack() {
        // No ACK: pretend it acknowledged what the receiver sent.
        ack = receiver.td_end;
        sack = ack;
    } else if seg.flags & (TCPHDR_ACK | TCPHDR_RST) == (TCPHDR_ACK | TCPHDR_RST) && ack == 0 {
        // Broken stacks send RST+ACK with a zero ack.
        ack = receiver.td_end;
        sack = ack;
    }

    if seg.rst() && seq == 0 && state == TcpConntrack::SynSent {
        // RST answering a SYN.
        seq = sender.td_end;
        end = seq;
    }

    if !before(seq, sender.td_maxend.wrapping_add(1)) {
        let overshot = end.wrapping_sub(sender.td_maxend).wrapping_add(1);
        let ack_ok = after(
            sack,
            receiver
                .td_end
                .wrapping_sub(max_ack_window(sender))
                .wrapping_sub(1),
        );
        let in_recv_win = receiver.td_maxwin != 0
            && after(
                end,
                sender
                    .td_end
                    .wrapping_sub(receiver.td_maxwin)
                    .wrapping_sub(1),
            );
        if in_recv_win
            && ack_ok
            && overshot <= receiver.td_maxwin
            && before(sack, receiver.td_end.wrapping_add(1))
        {
            // A sender exceeding the receive window: if the peer acks the data anyway,
            // later acks must not fail III, so remember the data.
            sender.td_end = end;
            sender.flags |= IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED;
            return store_invalid(
                sender,
                be_liberal,
                TcpWindowAction::Ignore,
                TcpLog::Overshot(overshot),
            );
        }
        let bound = sender.td_maxend.wrapping_add(1);
        return store_invalid(
            sender,
            be_liberal,
            TcpWindowAction::Invalid,
            TcpLog::SeqOver(bound),
        );
    }

    if !before(sack, receiver.td_end.wrapping_add(1)) {
        let bound = receiver.td_end.wrapping_add(1);
        return store_invalid(
            sender,
            be_liberal,
            TcpWindowAction::Invalid,
            TcpLog::AckOver(bound),
        );
    }

    // Is the ending sequence in the receive window (if known)?
    let lower = sender
        .td_end
        .wrapping_sub(receiver.td_maxwin)
        .wrapping_sub(1);
    if receiver.td_maxwin != 0 && !after(end, lower) {
        return store_invalid(
            sender,
            be_liberal,
            TcpWindowAction::Ignore,
            TcpLog::SeqUnder(lower),
        );
    }
    let ack_lower = receiver
        .td_end
        .wrapping_sub(max_ack_window(sender))
        .wrapping_sub(1);
    if !after(sack, ack_lower) {
        return store_invalid(
            sender,
            be_liberal,
            TcpWindowAction::Ignore,
            TcpLog::AckUnder(ack_lower),
        );
    }

    // Window scaling (RFC 1323) never applies to SYNs.
    if !seg.syn() {
        win = scaled(win, sender.td_scale);
    }

    // Update sender data.
    let swin = win.wrapping_add(sack.wrapping_sub(ack));
    if sender.td_maxwin < swin {
        sender.td_maxwin = swin;
    }
    if after(end, sender.td_end) {
        sender.td_end = end;
        sender.flags |= IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED;
    }
    if seg.ack() {
        if sender.flags & IP_CT_TCP_FLAG_MAXACK_SET == 0 {
            sender.td_maxack = ack;
            sender.flags |= IP_CT_TCP_FLAG_MAXACK_SET;
        } else if after(ack, sender.td_maxack) {
            sender.td_maxack = ack;
        }
    }

    // Update receiver data.
    if receiver.td_maxwin != 0 && after(end, sender.td_maxend) {
        receiver.td_maxwin = receiver
            .td_maxwin
            .wrapping_add(end.wrapping_sub(sender.td_maxend));
    }
    if after(sack.wrapping_add(win), receiver.td_maxend.wrapping_sub(1)) {
        receiver.td_maxend = sack.wrapping_add(win);
        if win == 0 {
            receiver.td_maxend = receiver.td_maxend.wrapping_add(1);
        }
    }
    if ack == receiver.td_end {
        receiver.flags &= !IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED;
    }

    // Count retransmissions: the same ACK segment again.
    if index == TcpIndex::Ack {
        if conn.last_dir == dir
            && conn.last_seq == seq
            && conn.last_ack == ack
            && conn.last_end == end
            && conn.last_win == win_raw
        {
            conn.retrans = conn.retrans.wrapping_add(1);
        } else {
            conn.last_dir = dir;
            conn.last_seq = seq;
            conn.last_ack = ack;
            conn.last_end = end;
            conn.last_win = win_raw;
            conn.retrans = 0;
        }
    }

    (TcpWindowAction::Accept, None)
}

/// `tcp_new`: sets up `conn` from the first packet of a connection. A SYN starts it in
/// `NONE` with the original direction's window; with `loose` (`nf_conntrack_tcp_loose`),
/// an ACK picks up a connection in mid-stream, with SACK assumed and liberal window
/// checks both ways. False if the packet cannot create an entry.
pub(crate) fn tcp_new(conn: &mut TcpConn, seg: &TcpSegment, loose: bool) -> bool {
    let new_state = transition(Dir::Original, seg.index(), TcpConntrack::None);
    if !new_state.is_state() {
        return false;
    }
    let syn = new_state == TcpConntrack::SynSent;
    if !syn && !loose {
        // Don't try to pick up connections.
        return false;
    }
    *conn = TcpConn::default();
    let maxwin = u32::from(seg.window).max(1);
    let end = seg.end();
    let orig = conn.peer_mut(Dir::Original);
    orig.td_end = end;
    orig.td_maxwin = maxwin;
    if syn {
        orig.td_maxend = end;
        tcp_options(seg.options(), orig);
    } else {
        orig.td_maxend = end.wrapping_add(maxwin);
        // SACK and liberal window checks: the options (window scale) were not seen.
        for p in &mut conn.seen {
            p.flags = IP_CT_TCP_FLAG_SACK_PERM | IP_CT_TCP_FLAG_BE_LIBERAL;
        }
    }
    // tcp_packet sets them.
    conn.last_index = TcpIndex::None;
    true
}

/// The `nf_conntrack_tcp_*` sysctls that steer the tracker.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct TcpSettings {
    /// `nf_conntrack_tcp_loose`: pick up connections in mid-stream.
    pub(crate) loose: bool,
    /// `nf_conntrack_tcp_be_liberal`: only out-of-window RSTs are invalid.
    pub(crate) be_liberal: bool,
    /// `nf_conntrack_tcp_max_retrans`: retransmissions before the shorter timeout.
    pub(crate) max_retrans: u8,
    /// `nf_conntrack_tcp_ignore_invalid_rst`: don't mark RSTs below the ack as invalid.
    pub(crate) ignore_invalid_rst: bool,
}

impl TcpSettings {
    /// 6.12's defaults (`nf_conntrack_tcp_init_net`): loose 1, be_liberal 0,
    /// max_retrans 3, ignore_invalid_rst 0.
    pub(crate) const fn defaults() -> TcpSettings {
        TcpSettings {
            loose: true,
            be_liberal: false,
            max_retrans: 3,
            ignore_invalid_rst: false,
        }
    }
}

impl Default for TcpSettings {
    fn default() -> TcpSettings {
        TcpSettings::defaults()
    }
}

/// What [`tcp_packet`] needs to know of the entry and the time.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct TcpPacketCtx {
    /// Direction of the packet (`CTINFO2DIR(ctinfo)`).
    pub(crate) dir: Dir,
    /// The entry's status bits, read before the call (`IPS_CONFIRMED`, `IPS_SEEN_REPLY`,
    /// `IPS_ASSURED` and `IPS_FIXED_TIMEOUT` matter).
    pub(crate) status: u32,
    /// `ct->timeout` as stored (absolute `nfct_time_stamp` once confirmed).
    pub(crate) ct_timeout: u32,
    /// `nfct_time_stamp` now.
    pub(crate) now: u32,
    /// `HZ`.
    pub(crate) hz: u32,
    /// The entry has a SYN proxy extension (`nfct_synproxy`); never, in this module.
    pub(crate) synproxy: bool,
}

/// The verdict of [`tcp_packet`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum TcpVerdict {
    /// `NF_ACCEPT`.
    Accept,
    /// `-NF_ACCEPT`: invalid; detach the packet from the entry, count `invalid`, let it
    /// pass.
    Invalid,
    /// An attempt to reopen a closed connection: `nf_ct_kill` the entry; if that killed
    /// it, `-NF_REPEAT` (look the packet up again, which creates a new entry); if it was
    /// already dying, `NF_DROP` (count `invalid` and `drop`, drop the packet).
    Repeat,
}

/// What the core must do after [`tcp_packet`] (besides writing the [`TcpConn`] back,
/// which it must always do).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct TcpAction {
    /// The verdict.
    pub(crate) verdict: TcpVerdict,
    /// `Some(extra_jiffies)`: `nf_ct_refresh_acct(ct, ctinfo, skb, extra_jiffies)` (the new
    /// timeout unless `IPS_FIXED_TIMEOUT`, and the packet counted). `None`: neither.
    pub(crate) refresh: Option<u32>,
    /// `nf_ct_kill_acct`: count the packet, then kill the entry (a RST before any reply).
    /// The verdict stays [`TcpVerdict::Accept`].
    pub(crate) kill: bool,
    /// Set `IPS_ASSURED` and, if it was clear, cache `IPCT_ASSURED`.
    pub(crate) set_assured: bool,
    /// `Some(t)`: store `t` in `ct->timeout` (`nf_tcp_handle_invalid` shortening an assured
    /// entry's timeout after out-of-window FIN/RSTs both ways); comes with
    /// [`TcpVerdict::Invalid`] and the extra log line "lowered timeout to UNACK".
    pub(crate) lowered_timeout: Option<u32>,
    /// The state changed: cache `IPCT_PROTOINFO`.
    pub(crate) protoinfo: bool,
    /// What to log with `nf_ct_l4proto_log_invalid`, if anything.
    pub(crate) log: Option<TcpLog>,
}

impl TcpAction {
    /// `verdict`, nothing else.
    const fn bare(verdict: TcpVerdict) -> TcpAction {
        TcpAction {
            verdict,
            refresh: None,
            kill: false,
            set_assured: false,
            lowered_timeout: None,
            protoinfo: false,
            log: None,
        }
    }

    /// Invalid, with `log`.
    const fn invalid(log: Option<TcpLog>) -> TcpAction {
        TcpAction {
            log,
            ..TcpAction::bare(TcpVerdict::Invalid)
        }
    }

    /// Accepted without a refresh, with `log`.
    const fn ignored(log: Option<TcpLog>) -> TcpAction {
        TcpAction {
            log,
            ..TcpAction::bare(TcpVerdict::Accept)
        }
    }
}

/// Timeout slots beyond the states (`TCP_CONNTRACK_RETRANS`, `TCP_CONNTRACK_UNACK`).
#[derive(Clone, Copy)]
enum Slot {
    State(TcpConntrack),
    Retrans,
    Unack,
}

/// `timeouts[slot]` in jiffies.
fn timeout(t: &Timeouts, slot: Slot, hz: u32) -> u32 {
    let secs = match slot {
        Slot::Retrans => t.tcp_max_retrans,
        Slot::Unack => t.tcp_unacknowledged,
        Slot::State(s) => match s {
            // `timeouts[0]` is SYN_SENT's (nf_conntrack_tcp_init_net); the table never
            // leads to NONE, nor to a timeout for its two outcomes.
            TcpConntrack::None
            | TcpConntrack::SynSent
            | TcpConntrack::Invalid
            | TcpConntrack::Ignore => t.tcp_syn_sent,
            TcpConntrack::SynRecv => t.tcp_syn_recv,
            TcpConntrack::Established => t.tcp_established,
            TcpConntrack::FinWait => t.tcp_fin_wait,
            TcpConntrack::CloseWait => t.tcp_close_wait,
            TcpConntrack::LastAck => t.tcp_last_ack,
            TcpConntrack::TimeWait => t.tcp_time_wait,
            TcpConntrack::Close => t.tcp_close,
            TcpConntrack::SynSent2 => t.tcp_syn_sent2,
        },
    };
    secs_to_jiffies(secs, hz)
}

/// `nf_tcp_handle_invalid`: after an out-of-window FIN or RST on an assured entry, if the
/// last accepted packet was a FIN or RST the other way and the entry has 120 s or more
/// left, shorten it to the unacknowledged timeout. Returns the new `ct->timeout`, if any;
/// otherwise remembers this packet as the last one.
fn handle_invalid(
    conn: &mut TcpConn,
    dir: Dir,
    index: TcpIndex,
    ctx: &TcpPacketCtx,
    t: &Timeouts,
) -> Option<u32> {
    if ctx.status & IPS_ASSURED == 0 || ctx.status & IPS_FIXED_TIMEOUT != 0 {
        return None;
    }
    if index != TcpIndex::Rst && index != TcpIndex::Fin {
        return None;
    }
    if conn.last_dir != dir && matches!(conn.last_index, TcpIndex::Fin | TcpIndex::Rst) {
        let left = expires(ctx.ct_timeout, ctx.now);
        if left < 120u32.saturating_mul(ctx.hz) {
            return None;
        }
        let unack = timeout(t, Slot::Unack, ctx.hz);
        if left > unack {
            return Some(unack.wrapping_add(ctx.now));
        }
    } else {
        conn.last_index = index;
        conn.last_dir = dir;
    }
    None
}

/// The `TCP_CONNTRACK_IGNORE` case (also reached from `SYN_SENT` on a closed connection
/// that is not reopened). `None` when the packet is a SYN/ACK answering a SYN ignored
/// earlier: the state is then resynchronised from that SYN and the packet goes on to the
/// window check as a `SYN_SENT` to `SYN_RECV` transition.
fn ignore(
    conn: &mut TcpConn,
    dir: Dir,
    index: TcpIndex,
    seg: &TcpSegment,
    old_state: TcpConntrack,
) -> Option<TcpAction> {
    if index == TcpIndex::SynAck
        && conn.last_index == TcpIndex::Syn
        && conn.last_dir != dir
        && seg.ack_seq == conn.last_end
    {
        // Client and server are in sync, we are not: take the SYN we let through.
        conn.last_flags &= !IP_CT_EXP_CHALLENGE_ACK;
        let (end, win, wscale, flags) = (
            conn.last_end,
            conn.last_win,
            conn.last_wscale,
            conn.last_flags,
        );
        let last = conn.peer_mut(conn.last_dir);
        last.td_end = end;
        last.td_maxend = end;
        last.td_maxwin = u32::from(win).max(1);
        last.td_scale = wscale;
        last.flags = flags;
        conn.peer_mut(dir).reset();
        return None;
    }
    conn.last_index = index;
    conn.last_dir = dir;
    conn.last_seq = seg.seq;
    conn.last_end = seg.end();
    conn.last_win = seg.window;

    if index == TcpIndex::Syn && dir == Dir::Original {
        // Maybe a new connection the server will answer with a SYN/ACK (or a challenge
        // ACK): note its options.
        let mut seen = TcpPeer::default();
        conn.last_flags = 0;
        conn.last_wscale = 0;
        tcp_options(seg.options(), &mut seen);
        if seen.flags & IP_CT_TCP_FLAG_WINDOW_SCALE != 0 {
            conn.last_flags |= IP_CT_TCP_FLAG_WINDOW_SCALE;
            conn.last_wscale = seen.td_scale;
        }
        if seen.flags & IP_CT_TCP_FLAG_SACK_PERM != 0 {
            conn.last_flags |= IP_CT_TCP_FLAG_SACK_PERM;
        }
        // In LAST_ACK, a challenge ACK would look like the last ACK.
        if old_state == TcpConntrack::LastAck {
            conn.last_flags |= IP_CT_EXP_CHALLENGE_ACK;
        }
    }

    // Possibly a challenge ACK answering the SYN.
    if old_state == TcpConntrack::SynSent && index == TcpIndex::Ack && dir == Dir::Reply {
        conn.last_ack = seg.ack_seq;
    }

    Some(TcpAction::ignored(Some(TcpLog::Ignored {
        index,
        dir,
        state: old_state,
    })))
}

/// The `TCP_CONNTRACK_CLOSE` case: validates a RST. `Ok((new_state, check_window))`, or
/// the action for an invalid RST.
fn close_case(
    conn: &TcpConn,
    dir: Dir,
    index: TcpIndex,
    seg: &TcpSegment,
    old_state: TcpConntrack,
    status: u32,
    s: &TcpSettings,
) -> Result<(TcpConntrack, bool), TcpAction> {
    let mut new_state = TcpConntrack::Close;
    if index != TcpIndex::Rst {
        return Ok((new_state, true));
    }
    // Closing already: the tuple may be reused and the window data stale.
    if tcp_can_early_drop(conn.state) {
        return Ok((new_state, false));
    }
    let established = conn.established(status);
    let other = conn.peer(dir.reverse());
    // td_maxack is stale if a SYN went through since.
    if other.flags & IP_CT_TCP_FLAG_MAXACK_SET != 0 && conn.last_index != TcpIndex::Syn {
        let seq = seg.seq;
        // Most likely the answer to a SYN we let through.
        if seq == 0 && !established {
            return Ok((new_state, true));
        }
        if before(seq, other.td_maxack) && !s.ignore_invalid_rst {
            return Err(TcpAction::invalid(Some(TcpLog::InvalidRst)));
        }
        if !established || seq == other.td_maxack {
            return Ok((new_state, true));
        }
        // Part of a train: data, then a RST right after it.
        if conn.last_index == TcpIndex::Ack && conn.last_dir == dir && seq == conn.last_end {
            return Ok((new_state, true));
        }
        // Not exact: stay established, the peer may send a challenge ACK.
        new_state = old_state;
    }
    // A RST answering a SYN (a) or an ACK (c) we let through: skip the window check, the
    // RST may acknowledge what we ignored.
    let syn_answered =
        status & IPS_SEEN_REPLY != 0 && conn.last_index == TcpIndex::Syn && conn.last_dir != dir;
    let ack_answered = status & IPS_ASSURED == 0 && conn.last_index == TcpIndex::Ack;
    if (syn_answered || ack_answered) && seg.ack_seq == conn.last_end {
        return Ok((new_state, false));
    }
    // A RST answering a challenge ACK we let through.
    if old_state == TcpConntrack::SynSent
        && conn.last_index == TcpIndex::Ack
        && conn.last_dir == Dir::Reply
        && seg.seq == conn.last_ack
    {
        return Ok((new_state, false));
    }
    Ok((new_state, true))
}

/// `nf_conntrack_tcp_packet` after `tcp_error` (and the checksum): `seg` in `ctx.dir` on a
/// connection whose state is `conn`.
///
/// Unconfirmed entries go through [`tcp_new`] first. Then the transition table decides,
/// with 6.12's special cases: reopening a closed connection ([`TcpVerdict::Repeat`]),
/// ignored packets (accepted without refresh, and a SYN/ACK answering an ignored SYN
/// resynchronising the connection), RFC 5961 challenge ACKs, simultaneous open, RST
/// validation; then the window check ([`tcp_in_window`]), the new state and its timeout:
///
/// - the retransmission timeout once `retrans` reached `max_retrans`, if shorter;
/// - else the unacknowledged timeout for a RST keeping the connection established, or
///   while either side has unacknowledged data, if shorter;
/// - else the retransmission timeout if the last window was zero, if shorter;
/// - else the state's.
///
/// Before any reply, a RST kills the entry, a retransmitted SYN does not refresh it, and
/// an established (picked up) connection gets at most the unacknowledged timeout. After
/// one, reaching `ESTABLISHED` from `SYN_RECV` or `ESTABLISHED` assures the entry.
pub(crate) fn tcp_packet(
    conn: &mut TcpConn,
    seg: &TcpSegment,
    ctx: &TcpPacketCtx,
    s: &TcpSettings,
    t: &Timeouts,
) -> TcpAction {
    let index = seg.index();
    if ctx.status & IPS_CONFIRMED == 0 && !tcp_new(conn, seg, s.loose) {
        let invalid = !transition(Dir::Original, index, TcpConntrack::None).is_state();
        return TcpAction::invalid(invalid.then_some(TcpLog::InvalidNew));
    }

    let dir = ctx.dir;
    let mut old_state = conn.state;
    let mut new_state = transition(dir, index, old_state);
    let hz = ctx.hz;

    let check_window = match new_state {
        TcpConntrack::SynSent | TcpConntrack::Ignore => {
            if new_state == TcpConntrack::SynSent
                && (old_state as u8) < (TcpConntrack::TimeWait as u8)
            {
                true
            } else {
                // A SYN on TIME_WAIT or CLOSE: a closed (FIN) or aborted (RST from this
                // side) connection is reopened; kill the entry and start over.
                let closed = (conn.peer(dir).flags | conn.peer(dir.reverse()).flags)
                    & IP_CT_TCP_FLAG_CLOSE_INIT
                    != 0;
                let aborted = conn.last_dir == dir && conn.last_index == TcpIndex::Rst;
                if new_state == TcpConntrack::SynSent && (closed || aborted) {
                    return TcpAction::bare(TcpVerdict::Repeat);
                }
                match ignore(conn, dir, index, seg, old_state) {
                    Some(action) => return action,
                    None => {
                        old_state = TcpConntrack::SynSent;
                        new_state = TcpConntrack::SynRecv;
                        true
                    }
                }
            }
        }
        TcpConntrack::Invalid => {
            // SYN proxy: a client keep-alive while the SYN or SYN/ACK was lost.
            if ctx.synproxy
                && old_state == TcpConntrack::SynSent
                && index == TcpIndex::Ack
                && dir == Dir::Original
                && conn.last_dir == Dir::Original
                && conn.peer(dir).td_end.wrapping_sub(1) == seg.seq
            {
                return TcpAction::ignored(None);
            }
            return TcpAction::invalid(Some(TcpLog::InvalidState {
                index,
                dir,
                state: old_state,
            }));
        }
        TcpConntrack::TimeWait => {
            // An RFC 5961 challenge ACK (to a SYN in LAST_ACK) is not the last ACK.
            if old_state == TcpConntrack::LastAck
                && index == TcpIndex::Ack
                && conn.last_dir != dir
                && conn.last_index == TcpIndex::Syn
                && conn.last_flags & IP_CT_EXP_CHALLENGE_ACK != 0
            {
                conn.last_flags &= !IP_CT_EXP_CHALLENGE_ACK;
                return TcpAction::ignored(Some(TcpLog::ChallengeAck));
            }
            true
        }
        TcpConntrack::SynSent2 => {
            // The table alone cannot follow a simultaneous open.
            conn.last_flags |= IP_CT_TCP_SIMULTANEOUS_OPEN;
            true
        }
        TcpConntrack::SynRecv => {
            if dir == Dir::Reply
                && index == TcpIndex::Ack
                && conn.last_flags & IP_CT_TCP_SIMULTANEOUS_OPEN != 0
            {
                new_state = TcpConntrack::Established;
            }
            true
        }
        TcpConntrack::Close => match close_case(conn, dir, index, seg, old_state, ctx.status, s) {
            Ok((state, check)) => {
                new_state = state;
                check
            }
            Err(action) => return action,
        },
        _ => true,
    };

    if check_window {
        let (res, log) = tcp_in_window(conn, dir, index, seg, s.be_liberal);
        match res {
            TcpWindowAction::Ignore => return TcpAction::ignored(log),
            TcpWindowAction::Invalid => {
                return TcpAction {
                    lowered_timeout: handle_invalid(conn, dir, index, ctx, t),
                    ..TcpAction::invalid(log)
                };
            }
            TcpWindowAction::Accept => {}
        }
    }

    // In window from here on.
    conn.last_index = index;
    conn.last_dir = dir;
    conn.state = new_state;
    if old_state != new_state && new_state == TcpConntrack::FinWait {
        conn.peer_mut(dir).flags |= IP_CT_TCP_FLAG_CLOSE_INIT;
    }

    let state_timeout = timeout(t, Slot::State(new_state), hz);
    let retrans = timeout(t, Slot::Retrans, hz);
    let unack = timeout(t, Slot::Unack, hz);
    let unacked =
        (conn.seen[0].flags | conn.seen[1].flags) & IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED != 0;
    let mut extra = if conn.retrans >= s.max_retrans && state_timeout > retrans {
        retrans
    } else if ((index == TcpIndex::Rst && new_state == TcpConntrack::Established) || unacked)
        && state_timeout > unack
    {
        // A RST that left the connection established, or unacknowledged data.
        unack
    } else if conn.last_win == 0 && state_timeout > retrans {
        retrans
    } else {
        state_timeout
    };

    let mut action = TcpAction {
        protoinfo: new_state != old_state,
        ..TcpAction::bare(TcpVerdict::Accept)
    };
    if ctx.status & IPS_SEEN_REPLY == 0 {
        // Only a RST as reply: no connection, delete the entry at once.
        if seg.rst() {
            action.kill = true;
            return action;
        }
        // A retransmitted SYN does not extend the entry (port reuse would keep it alive).
        if index == TcpIndex::Syn && old_state == TcpConntrack::SynSent {
            return action;
        }
        // Picked up mid-stream: no five days before the other side answered.
        if new_state == TcpConntrack::Established && extra > unack {
            extra = unack;
        }
    } else if ctx.status & IPS_ASSURED == 0
        && (old_state == TcpConntrack::SynRecv || old_state == TcpConntrack::Established)
        && new_state == TcpConntrack::Established
    {
        // The handshake completed, or a picked-up connection was answered.
        action.set_assured = true;
    }
    action.refresh = Some(extra);
    action
}

/// The TCP tracker (`nf_conntrack_l4proto_tcp`).
pub(crate) struct Tcp;

impl L4Proto for Tcp {
    type Header = TcpSegment;

    fn error<P: PipelinePacket + ?Sized>(
        pkt: &P,
        parsed: &Parsed,
        ctx: &HookCtx,
    ) -> Option<TcpSegment> {
        let (seg, _full) = tcp_error(pkt, parsed.dataoff).ok()?;
        // The checksum of incoming packets only (`nf_conntrack_checksum`, on by default).
        let sum_ok = ctx.hook != Hook::PreRouting
            || pkt.l4_checksum_ok(ctx.hook, ctx.l3, parsed.dataoff, IPPROTO_TCP, None);
        sum_ok.then_some(seg)
    }

    fn new_conn<P: PipelinePacket + ?Sized>(
        _pkt: &P,
        seg: &TcpSegment,
        _parsed: &Parsed,
        ctx: &HookCtx,
        s: &Settings,
    ) -> (L4State, L4Action) {
        let mut conn = TcpConn::default();
        let tctx = TcpPacketCtx {
            dir: Dir::Original,
            status: 0,
            ct_timeout: 0,
            now: ctx.clock.now,
            hz: ctx.clock.hz,
            synproxy: false,
        };
        let a = tcp_packet(&mut conn, seg, &tctx, &s.tcp, &s.timeouts);
        (L4State::Tcp(conn), a.into())
    }

    fn packet<C: Conntrack + ?Sized, P: PipelinePacket + ?Sized>(
        ct: &C,
        entry: &C::Ref,
        pkt: &P,
        seg: &TcpSegment,
        ctinfo: CtInfo,
        ctx: &HookCtx,
        s: &Settings,
    ) -> L4Action {
        let tctx = TcpPacketCtx {
            dir: ctinfo.dir(),
            status: entry.status(),
            ct_timeout: entry.timeout(),
            now: ctx.clock.now,
            hz: ctx.clock.hz,
            synproxy: false,
        };
        // Only nf_nat's helpers move sequence numbers (nf_conntrack's synproxy aside), and
        // only on connections with a helper: the module's helper hints at nf_nat's. Where
        // nf_conntrack has not seen the packet yet (its hook after ours at this priority),
        // the adjustment the helper hook last saw for the connection stands in.
        let adjusted;
        let seg = match ct.helper_of(entry) {
            None => seg,
            Some(_) => {
                let receiver = match pkt.nf_seqadj() {
                    Some([_, other]) => Some(other),
                    None => ct
                        .seqadj(entry)
                        .and_then(|a| a.get(tctx.dir.reverse() as usize).copied()),
                };
                let mut copy = *seg;
                if let Some(r) = receiver {
                    copy.receiver_offset = r.offset(seg.ack_seq.wrapping_sub(1));
                }
                adjusted = copy;
                &adjusted
            }
        };
        ct.with_l4(entry, |st| match st {
            L4State::Tcp(conn) => tcp_packet(conn, seg, &tctx, &s.tcp, &s.timeouts).into(),
            _ => L4Action::INVALID,
        })
    }

    fn can_early_drop(state: &L4State) -> bool {
        matches!(state, L4State::Tcp(conn) if tcp_can_early_drop(conn.state))
    }

    fn state_name(state: &L4State) -> Option<&'static str> {
        match state {
            L4State::Tcp(conn) => Some(conn.state.name()),
            _ => None,
        }
    }
}
