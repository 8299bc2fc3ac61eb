// SPDX-License-Identifier: GPL-2.0

//! The SCTP tracker: header and chunk checks, the CRC32c, the association state machine and
//! its verification-tag rules.
//!
//! C source: [`net/netfilter/nf_conntrack_proto_sctp.c`](srctree/net/netfilter/nf_conntrack_proto_sctp.c)
//! (`sctp_error`, `do_basic_checks`, `sctp_new_state`, `sctp_conntracks`, `sctp_new`,
//! `nf_conntrack_sctp_packet`, `sctp_can_early_drop`, `sctp_conntrack_names`,
//! `sctp_timeouts`). C headers: [`include/linux/netfilter/nf_conntrack_sctp.h`](srctree/include/linux/netfilter/nf_conntrack_sctp.h)
//! (`struct ip_ct_sctp`), [`include/uapi/linux/netfilter/nf_conntrack_sctp.h`](srctree/include/uapi/linux/netfilter/nf_conntrack_sctp.h)
//! (`enum sctp_conntrack`), [`include/linux/sctp.h`](srctree/include/linux/sctp.h) (chunk
//! ids, `struct sctp_inithdr`), [`include/net/sctp/checksum.h`](srctree/include/net/sctp/checksum.h)
//! (`sctp_compute_cksum`).
//!
//! Pure `core` code. Every byte is read through [`PacketBytes::read`]; the chunk walk is
//! bounded by the packet's length and never indexes.
//!
//! One packet's processing, as in 6.12: [`sctp_error`] (the header's length, the CRC32c of
//! incoming packets, then `do_basic_checks` on the chunks), which makes the packet invalid
//! before the entry is touched; then [`sctp_packet`] walks the chunks again: an entry's
//! first packet through `sctp_new`, the verification tag, then per chunk the special tag
//! rules, the transition table and the tags INIT and INIT_ACK announce. An entry reaching
//! `ESTABLISHED` is assured. Every accepted packet refreshes the entry to its state's
//! timeout, except a retransmitted INIT on a closed entry and a HEARTBEAT whose tag the
//! entry does not know yet (a path being probed): those pass without refreshing it.
//!
//! SCTP sets no `allow_clash`: racing new entries of one flow are not merged.

use crate::proto::conn::{secs_to_jiffies, CtInfo, Timeouts, IPS_CONFIRMED};
use crate::proto::l4proto::{L4Action, L4Proto, L4State, L4Verdict, Settings};
use crate::proto::pipeline::{Conntrack, Entry, Hook, HookCtx, Packet};
use crate::proto::tuple::{Dir, PacketBytes, Parsed};

/// `sizeof(struct sctphdr)`: ports, verification tag, checksum.
pub(crate) const SCTP_HDR_LEN: usize = 12;
/// `sizeof(struct sctp_chunkhdr)`: type, flags, length.
pub(crate) const SCTP_CHUNK_HDR_LEN: usize = 4;
/// `sizeof(struct sctp_inithdr)`: what INIT and INIT_ACK must carry after their chunk header.
pub(crate) const SCTP_INIT_HDR_LEN: usize = 16;

/// `SCTP_CID_DATA`.
pub(crate) const SCTP_CID_DATA: u8 = 0;
/// `SCTP_CID_INIT`.
pub(crate) const SCTP_CID_INIT: u8 = 1;
/// `SCTP_CID_INIT_ACK`.
pub(crate) const SCTP_CID_INIT_ACK: u8 = 2;
/// `SCTP_CID_SACK`.
pub(crate) const SCTP_CID_SACK: u8 = 3;
/// `SCTP_CID_HEARTBEAT`.
pub(crate) const SCTP_CID_HEARTBEAT: u8 = 4;
/// `SCTP_CID_HEARTBEAT_ACK`.
pub(crate) const SCTP_CID_HEARTBEAT_ACK: u8 = 5;
/// `SCTP_CID_ABORT`.
pub(crate) const SCTP_CID_ABORT: u8 = 6;
/// `SCTP_CID_SHUTDOWN`.
pub(crate) const SCTP_CID_SHUTDOWN: u8 = 7;
/// `SCTP_CID_SHUTDOWN_ACK`.
pub(crate) const SCTP_CID_SHUTDOWN_ACK: u8 = 8;
/// `SCTP_CID_ERROR`.
pub(crate) const SCTP_CID_ERROR: u8 = 9;
/// `SCTP_CID_COOKIE_ECHO`.
pub(crate) const SCTP_CID_COOKIE_ECHO: u8 = 10;
/// `SCTP_CID_COOKIE_ACK`.
pub(crate) const SCTP_CID_COOKIE_ACK: u8 = 11;
/// `SCTP_CID_SHUTDOWN_COMPLETE`.
pub(crate) const SCTP_CID_SHUTDOWN_COMPLETE: u8 = 14;

/// `SCTP_CHUNK_FLAG_T`: ABORT and SHUTDOWN_COMPLETE carry the peer's tag, not their own
/// (the sender had no association: RFC 9260 8.4, 8.5.1).
pub(crate) const SCTP_CHUNK_FLAG_T: u8 = 0x01;

/// `SCTP_FLAG_HEARTBEAT_VTAG_FAILED`: a HEARTBEAT with an unknown tag passed, so a
/// HEARTBEAT_ACK the other way may teach the entry new tags (a secondary path).
pub(crate) const SCTP_FLAG_HEARTBEAT_VTAG_FAILED: u8 = 1;

/// `timeouts[0]`: what a refresh in `NONE` uses. `nf_conntrack_sctp_init_net` copies the
/// default `CLOSED` timeout there, and no sysctl changes it.
pub(crate) const SCTP_NONE_TIMEOUT_SECS: u32 = 10;

/// An SCTP association state, `enum sctp_conntrack` (values as in the uapi header), plus
/// the table's invalid outcome. `SCTP_CONNTRACK_HEARTBEAT_ACKED` (9) is "no longer used"
/// in 6.12 and never produced, so it has no variant.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[repr(u8)]
pub(crate) enum SctpConntrack {
    /// `SCTP_CONNTRACK_NONE`: nothing yet (a new entry while its first packet is walked).
    #[default]
    None = 0,
    /// `SCTP_CONNTRACK_CLOSED`: INIT seen, or the association ended.
    Closed = 1,
    /// `SCTP_CONNTRACK_COOKIE_WAIT`: INIT_ACK seen.
    CookieWait = 2,
    /// `SCTP_CONNTRACK_COOKIE_ECHOED`: COOKIE_ECHO seen.
    CookieEchoed = 3,
    /// `SCTP_CONNTRACK_ESTABLISHED`: COOKIE_ACK seen.
    Established = 4,
    /// `SCTP_CONNTRACK_SHUTDOWN_SENT`: SHUTDOWN seen in the original direction.
    ShutdownSent = 5,
    /// `SCTP_CONNTRACK_SHUTDOWN_RECD`: SHUTDOWN seen in the reply direction.
    ShutdownRecd = 6,
    /// `SCTP_CONNTRACK_SHUTDOWN_ACK_SENT`: SHUTDOWN_ACK seen.
    ShutdownAckSent = 7,
    /// `SCTP_CONNTRACK_HEARTBEAT_SENT`: a HEARTBEAT started the entry (a secondary path of
    /// an association tracked elsewhere).
    HeartbeatSent = 8,
    /// `SCTP_CONNTRACK_MAX` (`sIV` in the table): the chunk is invalid in this state.
    Invalid = 10,
}

impl SctpConntrack {
    /// `sctp_conntrack_names[]`: what `/proc/net/nf_conntrack` prints for the state
    /// (`sctp_print_conntrack`). [`SctpConntrack::Invalid`] is never stored; its name is for
    /// debugging only.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SctpConntrack::None => "NONE",
            SctpConntrack::Closed => "CLOSED",
            SctpConntrack::CookieWait => "COOKIE_WAIT",
            SctpConntrack::CookieEchoed => "COOKIE_ECHOED",
            SctpConntrack::Established => "ESTABLISHED",
            SctpConntrack::ShutdownSent => "SHUTDOWN_SENT",
            SctpConntrack::ShutdownRecd => "SHUTDOWN_RECD",
            SctpConntrack::ShutdownAckSent => "SHUTDOWN_ACK_SENT",
            SctpConntrack::HeartbeatSent => "HEARTBEAT_SENT",
            SctpConntrack::Invalid => "INVALID",
        }
    }

    /// The state with the uapi value `v` (`ct->proto.sctp.state`), if it is one this
    /// tracker produces.
    pub(crate) fn from_u8(v: u8) -> Option<SctpConntrack> {
        STATES.get(usize::from(v)).copied()
    }
}

/// The states by value (`sNO` to `sHS`, the table's columns).
const STATES: [SctpConntrack; 9] = [
    SctpConntrack::None,
    SctpConntrack::Closed,
    SctpConntrack::CookieWait,
    SctpConntrack::CookieEchoed,
    SctpConntrack::Established,
    SctpConntrack::ShutdownSent,
    SctpConntrack::ShutdownRecd,
    SctpConntrack::ShutdownAckSent,
    SctpConntrack::HeartbeatSent,
];

// The table's abbreviations, as in the C source.
const NO: SctpConntrack = SctpConntrack::None;
const CL: SctpConntrack = SctpConntrack::Closed;
const CW: SctpConntrack = SctpConntrack::CookieWait;
const CE: SctpConntrack = SctpConntrack::CookieEchoed;
const ES: SctpConntrack = SctpConntrack::Established;
const SS: SctpConntrack = SctpConntrack::ShutdownSent;
const SR: SctpConntrack = SctpConntrack::ShutdownRecd;
const SA: SctpConntrack = SctpConntrack::ShutdownAckSent;
const HS: SctpConntrack = SctpConntrack::HeartbeatSent;
const IV: SctpConntrack = SctpConntrack::Invalid;

/// `sctp_conntracks[2][11][SCTP_CONNTRACK_MAX]`: the new state by direction, chunk row
/// ([`chunk_index`]) and old state. The HEARTBEAT_ACKED column (unused) is left out.
#[rustfmt::skip]
pub(crate) const SCTP_CONNTRACKS: [[[SctpConntrack; 9]; 11]; 2] = [
    [
        // ORIGINAL
        //                  sNO sCL sCW sCE sES sSS sSR sSA sHS
        /* init */          [CL, CL, CW, CE, ES, CL, CL, SA, CW],
        /* init_ack */      [CL, CL, CW, CE, ES, SS, SR, SA, CL],
        /* abort */         [CL, CL, CL, CL, CL, CL, CL, CL, CL],
        /* shutdown */      [CL, CL, CW, CE, SS, SS, SR, SA, CL],
        /* shutdown_ack */  [SA, CL, CW, CE, ES, SA, SA, SA, SA],
        /* error */         [CL, CL, CW, CE, ES, SS, SR, SA, CL],
        /* cookie_echo */   [CL, CL, CE, CE, ES, SS, SR, SA, CL],
        /* cookie_ack */    [CL, CL, CW, ES, ES, SS, SR, SA, CL],
        /* shutdown_comp */ [CL, CL, CW, CE, ES, SS, SR, CL, CL],
        /* heartbeat */     [HS, CL, CW, CE, ES, SS, SR, SA, HS],
        /* heartbeat_ack */ [CL, CL, CW, CE, ES, SS, SR, SA, HS],
    ],
    [
        // REPLY
        //                  sNO sCL sCW sCE sES sSS sSR sSA sHS
        /* init */          [IV, CL, CW, CE, ES, SS, SR, SA, IV],
        /* init_ack */      [IV, CW, CW, CE, ES, SS, SR, SA, IV],
        /* abort */         [IV, CL, CL, CL, CL, CL, CL, CL, IV],
        /* shutdown */      [IV, CL, CW, CE, SR, SS, SR, SA, IV],
        /* shutdown_ack */  [IV, CL, CW, CE, ES, SA, SA, SA, IV],
        /* error */         [IV, CL, CW, CL, ES, SS, SR, SA, IV],
        /* cookie_echo */   [IV, CL, CE, CE, ES, SS, SR, SA, IV],
        /* cookie_ack */    [IV, CL, CW, ES, ES, SS, SR, SA, IV],
        /* shutdown_comp */ [IV, CL, CW, CE, ES, SS, SR, CL, IV],
        /* heartbeat */     [IV, CL, CW, CE, ES, SS, SR, SA, HS],
        /* heartbeat_ack */ [IV, CL, CW, CE, ES, SS, SR, SA, ES],
    ],
];

/// The table row of a chunk type (`sctp_new_state`'s `switch`); `None` for the chunks that
/// do not change the state (DATA, SACK, ...).
pub(crate) fn chunk_index(ty: u8) -> Option<usize> {
    Some(match ty {
        SCTP_CID_INIT => 0,
        SCTP_CID_INIT_ACK => 1,
        SCTP_CID_ABORT => 2,
        SCTP_CID_SHUTDOWN => 3,
        SCTP_CID_SHUTDOWN_ACK => 4,
        SCTP_CID_ERROR => 5,
        SCTP_CID_COOKIE_ECHO => 6,
        SCTP_CID_COOKIE_ACK => 7,
        SCTP_CID_SHUTDOWN_COMPLETE => 8,
        SCTP_CID_HEARTBEAT => 9,
        SCTP_CID_HEARTBEAT_ACK => 10,
        _ => return None,
    })
}

/// `sctp_new_state`: the state after a chunk of type `ty` in `dir`. Chunks outside the
/// table leave `cur` as it is; an old state that is no state gives
/// [`SctpConntrack::Invalid`].
pub(crate) fn sctp_new_state(dir: Dir, cur: SctpConntrack, ty: u8) -> SctpConntrack {
    let Some(i) = chunk_index(ty) else {
        return cur;
    };
    SCTP_CONNTRACKS
        .get(dir as usize)
        .and_then(|d| d.get(i))
        .and_then(|row| row.get(cur as usize))
        .copied()
        .unwrap_or(SctpConntrack::Invalid)
}

/// `sctp_timeouts[state]` (the sysctls `nf_conntrack_sctp_timeout_*`) in jiffies.
pub(crate) fn sctp_timeout(t: &Timeouts, state: SctpConntrack, hz: u32) -> u32 {
    let secs = match state {
        // Never refreshed to: the table gives no state for it.
        SctpConntrack::None | SctpConntrack::Invalid => SCTP_NONE_TIMEOUT_SECS,
        SctpConntrack::Closed => t.sctp_closed,
        SctpConntrack::CookieWait => t.sctp_cookie_wait,
        SctpConntrack::CookieEchoed => t.sctp_cookie_echoed,
        SctpConntrack::Established => t.sctp_established,
        SctpConntrack::ShutdownSent => t.sctp_shutdown_sent,
        SctpConntrack::ShutdownRecd => t.sctp_shutdown_recd,
        SctpConntrack::ShutdownAckSent => t.sctp_shutdown_ack_sent,
        SctpConntrack::HeartbeatSent => t.sctp_heartbeat_sent,
    };
    secs_to_jiffies(secs, hz)
}

/// `sctp_can_early_drop`: an association shutting down may be evicted even if assured.
pub(crate) fn sctp_can_early_drop(state: SctpConntrack) -> bool {
    matches!(
        state,
        SctpConntrack::ShutdownSent | SctpConntrack::ShutdownRecd | SctpConntrack::ShutdownAckSent
    )
}

// ---------------------------------------------------------------------------------------------
// The CRC32c.

/// The CRC32c (Castagnoli, reflected polynomial `0x82f63b78`) of every byte value.
const CRC32C_TABLE: [u32; 256] = crc32c_table();

const fn crc32c_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82f6_3b78
            } else {
                c >> 1
            };
            k += 1;
        }
        // Evaluated at compile time: an out-of-range index would not build.
        table[i] = c;
        i += 1;
    }
    table
}

/// One byte into a running (inverted) CRC32c.
fn crc32c_byte(crc: u32, b: u8) -> u32 {
    // `crc as u8 ^ b` is below 256: the lookup always hits.
    let t = CRC32C_TABLE
        .get(usize::from(crc as u8 ^ b))
        .copied()
        .unwrap_or(0);
    (crc >> 8) ^ t
}

/// `sctp_compute_cksum(skb, dataoff)` as the header stores it: the CRC32c of the packet
/// from the SCTP header to its end, the checksum field counted as zero, in host order
/// (the header holds it little-endian). `None` if the packet ends before `dataoff`.
pub(crate) fn sctp_crc32c<P: PacketBytes + ?Sized>(pkt: &P, dataoff: usize) -> Option<u32> {
    let len = pkt.len();
    if dataoff > len {
        return None;
    }
    let csum_at = dataoff.checked_add(8)?;
    let mut crc = !0u32;
    let mut off = dataoff;
    let mut buf = [0u8; 128];
    while off < len {
        let n = len.saturating_sub(off).min(buf.len());
        let block = buf.get_mut(..n)?;
        pkt.read(off, block).ok()?;
        // The checksum field is computed as zero.
        for k in 0..4usize {
            let zeroed = csum_at
                .checked_add(k)
                .and_then(|p| p.checked_sub(off))
                .and_then(|i| block.get_mut(i));
            if let Some(byte) = zeroed {
                *byte = 0;
            }
        }
        crc = block.iter().fold(crc, |c, &b| crc32c_byte(c, b));
        off = off.saturating_add(n);
    }
    Some(!crc)
}

// ---------------------------------------------------------------------------------------------
// Header and chunks.

/// Why the header or the chunks make a packet invalid before the entry is looked at
/// (`sctp_error` and `do_basic_checks`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum SctpError {
    /// Fewer than 12 bytes of header in the packet.
    Short,
    /// The CRC32c is wrong (incoming packets only).
    BadCrc,
    /// No chunk header fits after the common header (`do_basic_checks` returns `count ==
    /// 0`, without a log).
    NoChunks,
    /// `do_basic_checks` refuses chunk number `count` of type `ty`: a zero length, a
    /// COOKIE_ECHO or COOKIE_ACK not first, or INIT, INIT_ACK or SHUTDOWN_COMPLETE not
    /// alone (`flag`: one of those was seen).
    BadChunk {
        /// The chunk's position, from 0.
        count: u32,
        /// Its type.
        ty: u8,
        /// Its length field.
        len: u16,
        /// An INIT, INIT_ACK or SHUTDOWN_COMPLETE was seen at or before it.
        flag: bool,
    },
}

impl SctpError {
    /// The kernel's log message (its fixed part), if it logs this error.
    pub(crate) fn msg(self) -> Option<&'static str> {
        match self {
            SctpError::Short => Some("nf_ct_sctp: short packet "),
            SctpError::BadCrc => Some("nf_ct_sctp: bad CRC "),
            SctpError::NoChunks => None,
            SctpError::BadChunk { .. } => Some("do_basic_checks failed."),
        }
    }
}

/// The chunk types present in a packet (`do_basic_checks`' `map`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct ChunkMap([u64; 4]);

impl ChunkMap {
    /// `set_bit(ty, map)`.
    pub(crate) fn set(&mut self, ty: u8) {
        if let Some(w) = self.0.get_mut(usize::from(ty >> 6)) {
            *w |= 1u64 << (ty & 63);
        }
    }

    /// `test_bit(ty, map)`.
    pub(crate) fn has(&self, ty: u8) -> bool {
        self.0
            .get(usize::from(ty >> 6))
            .is_some_and(|w| w & (1u64 << (ty & 63)) != 0)
    }

    /// Whether any of `types` is present.
    pub(crate) fn any(&self, types: &[u8]) -> bool {
        types.iter().any(|&t| self.has(t))
    }
}

/// A chunk header and where it is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Chunk {
    /// Offset of the chunk header in the packet.
    pub(crate) offset: usize,
    /// Chunk type (`SCTP_CID_*`).
    pub(crate) ty: u8,
    /// Chunk flags.
    pub(crate) flags: u8,
    /// Length field: header and value, without padding.
    pub(crate) len: u16,
}

/// `for_each_sctp_chunk`: the chunk headers from `dataoff + 12` on, each found by the last
/// one's length rounded up to 4, while a whole header fits in the packet. A zero length
/// (which `do_basic_checks` refuses) ends the walk after that chunk rather than repeating it.
pub(crate) struct Chunks<'a, P: ?Sized> {
    pkt: &'a P,
    offset: usize,
    done: bool,
}

/// The chunks of the SCTP packet whose header is at `dataoff`.
pub(crate) fn chunks<P: PacketBytes + ?Sized>(pkt: &P, dataoff: usize) -> Chunks<'_, P> {
    match dataoff.checked_add(SCTP_HDR_LEN) {
        Some(offset) => Chunks {
            pkt,
            offset,
            done: false,
        },
        None => Chunks {
            pkt,
            offset: 0,
            done: true,
        },
    }
}

impl<P: PacketBytes + ?Sized> Iterator for Chunks<'_, P> {
    type Item = Chunk;

    fn next(&mut self) -> Option<Chunk> {
        if self.done || self.offset >= self.pkt.len() {
            return None;
        }
        let mut h = [0u8; SCTP_CHUNK_HDR_LEN];
        if self.pkt.read(self.offset, &mut h).is_err() {
            self.done = true;
            return None;
        }
        let [ty, flags, l0, l1] = h;
        let len = u16::from_be_bytes([l0, l1]);
        let chunk = Chunk {
            offset: self.offset,
            ty,
            flags,
            len,
        };
        // `(ntohs(sch->length) + 3) & ~3`.
        let step = (usize::from(len) + 3) & !3;
        match self.offset.checked_add(step) {
            Some(next) if step != 0 => self.offset = next,
            _ => self.done = true,
        }
        Some(chunk)
    }
}

/// `do_basic_checks`: at least one chunk, none of zero length, COOKIE_ECHO and COOKIE_ACK
/// only first, INIT, INIT_ACK and SHUTDOWN_COMPLETE only alone. Returns the chunk types
/// present.
pub(crate) fn do_basic_checks<P: PacketBytes + ?Sized>(
    pkt: &P,
    dataoff: usize,
) -> Result<ChunkMap, SctpError> {
    let mut map = ChunkMap::default();
    let mut flag = false;
    let mut count = 0u32;
    for ch in chunks(pkt, dataoff) {
        if matches!(
            ch.ty,
            SCTP_CID_INIT | SCTP_CID_INIT_ACK | SCTP_CID_SHUTDOWN_COMPLETE
        ) {
            flag = true;
        }
        let first_only = matches!(ch.ty, SCTP_CID_COOKIE_ACK | SCTP_CID_COOKIE_ECHO) || flag;
        if (first_only && count != 0) || ch.len == 0 {
            return Err(SctpError::BadChunk {
                count,
                ty: ch.ty,
                len: ch.len,
                flag,
            });
        }
        map.set(ch.ty);
        count = count.saturating_add(1);
    }
    if count == 0 {
        return Err(SctpError::NoChunks);
    }
    Ok(map)
}

/// What [`sctp_error`] extracts for [`sctp_packet`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct SctpHeader {
    /// Offset of the SCTP header.
    pub(crate) dataoff: usize,
    /// The verification tag, in wire order read as big-endian (only ever compared).
    pub(crate) vtag: u32,
    /// The chunk types present.
    pub(crate) map: ChunkMap,
}

/// `sctp_error` and `do_basic_checks`: the common header at `dataoff`, its CRC32c if
/// `verify_crc` (6.12 verifies incoming packets only, and only if nothing verified them
/// before), then the chunks.
pub(crate) fn sctp_error<P: PacketBytes + ?Sized>(
    pkt: &P,
    dataoff: usize,
    verify_crc: bool,
) -> Result<SctpHeader, SctpError> {
    let mut h = [0u8; SCTP_HDR_LEN];
    pkt.read(dataoff, &mut h).map_err(|_| SctpError::Short)?;
    let [_, _, _, _, v0, v1, v2, v3, c0, c1, c2, c3] = h;
    if verify_crc && sctp_crc32c(pkt, dataoff) != Some(u32::from_le_bytes([c0, c1, c2, c3])) {
        return Err(SctpError::BadCrc);
    }
    let map = do_basic_checks(pkt, dataoff)?;
    Ok(SctpHeader {
        dataoff,
        vtag: u32::from_be_bytes([v0, v1, v2, v3]),
        map,
    })
}

/// The Initiate Tag of the INIT or INIT_ACK chunk at `offset`, if its whole `sctp_inithdr`
/// is in the packet.
fn init_tag<P: PacketBytes + ?Sized>(pkt: &P, offset: usize) -> Option<u32> {
    let mut ih = [0u8; SCTP_INIT_HDR_LEN];
    pkt.read(offset.checked_add(SCTP_CHUNK_HDR_LEN)?, &mut ih)
        .ok()?;
    let [t0, t1, t2, t3, ..] = ih;
    Some(u32::from_be_bytes([t0, t1, t2, t3]))
}

// ---------------------------------------------------------------------------------------------
// The association.

/// SCTP's per-entry state, `struct ip_ct_sctp`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct SctpConn {
    /// `state`: never [`SctpConntrack::Invalid`].
    pub(crate) state: SctpConntrack,
    /// `vtag[dir]`: the tag packets in `dir` must carry (0: not known yet).
    pub(crate) vtag: [u32; 2],
    /// `init[dir]`: an INIT was seen in `dir` and no COOKIE_ACK since.
    pub(crate) init: [bool; 2],
    /// `last_dir`: the direction of the HEARTBEAT that set
    /// [`SCTP_FLAG_HEARTBEAT_VTAG_FAILED`].
    pub(crate) last_dir: Dir,
    /// `flags`: [`SCTP_FLAG_HEARTBEAT_VTAG_FAILED`].
    pub(crate) flags: u8,
}

impl Default for SctpConn {
    fn default() -> Self {
        SctpConn {
            state: SctpConntrack::None,
            vtag: [0; 2],
            init: [false; 2],
            last_dir: Dir::Original,
            flags: 0,
        }
    }
}

impl SctpConn {
    /// `vtag[dir]`.
    pub(crate) fn vtag(&self, dir: Dir) -> u32 {
        match dir {
            Dir::Original => self.vtag[0],
            Dir::Reply => self.vtag[1],
        }
    }

    fn set_vtag(&mut self, dir: Dir, tag: u32) {
        match dir {
            Dir::Original => self.vtag[0] = tag,
            Dir::Reply => self.vtag[1] = tag,
        }
    }

    /// `init[dir]`.
    pub(crate) fn init(&self, dir: Dir) -> bool {
        match dir {
            Dir::Original => self.init[0],
            Dir::Reply => self.init[1],
        }
    }

    fn set_init(&mut self, dir: Dir, v: bool) {
        match dir {
            Dir::Original => self.init[0] = v,
            Dir::Reply => self.init[1] = v,
        }
    }
}

/// Why [`sctp_packet`] finds a packet invalid for its entry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum SctpInvalid {
    /// A first packet with ABORT, SHUTDOWN_COMPLETE or COOKIE_ACK: out of the blue, no
    /// entry (RFC 9260 8.4).
    Ootb,
    /// `sctp_new` refuses a first packet: a chunk that cannot start an entry, an INIT with a
    /// non-zero tag, or an INIT without its whole header.
    New,
    /// No chunk exempts the packet from the tag check (RFC 9260 8.5), and its tag is not
    /// the one of its direction (logged "verification tag check failed").
    Vtag {
        /// The packet's tag.
        vtag: u32,
        /// The direction's.
        expected: u32,
    },
    /// A chunk breaks its own tag rule (RFC 9260 8.5.1): an INIT with a non-zero tag, an
    /// ABORT or SHUTDOWN_COMPLETE without the tag its T flag asks for, a COOKIE_ECHO
    /// without its direction's tag.
    ChunkVtag(u8),
    /// A HEARTBEAT or HEARTBEAT_ACK with an unknown tag that cannot be a secondary path:
    /// with DATA, after another unknown one, or a HEARTBEAT_ACK no HEARTBEAT announced.
    HeartbeatVtag(u8),
    /// The table says `sIV` (logged "Invalid, old_state %d, dir %d, type %d").
    State {
        /// The state before the chunk.
        old: SctpConntrack,
        /// The chunk type.
        ty: u8,
    },
    /// An INIT or INIT_ACK whose `sctp_inithdr` is cut short.
    InitTruncated(u8),
    /// An INIT_ACK whose tag does not answer the INIT seen, or answers neither INIT of a
    /// collision.
    InitAck,
}

/// What the core does after [`sctp_packet`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct SctpAction {
    /// Accept, or why the packet is invalid.
    pub(crate) verdict: Result<(), SctpInvalid>,
    /// `Some(extra_jiffies)`: `nf_ct_refresh_acct`. `None` on an accepted packet: passed
    /// without refreshing the entry.
    pub(crate) refresh: Option<u32>,
    /// The entry reached `ESTABLISHED`: set `IPS_ASSURED`. Also on an invalid packet whose
    /// earlier chunk got there, as 6.12 sets the bit during the walk.
    pub(crate) set_assured: bool,
    /// The state changed (`IPCT_PROTOINFO`), also on an invalid packet.
    pub(crate) protoinfo: bool,
}

impl SctpAction {
    const fn invalid(why: SctpInvalid) -> SctpAction {
        SctpAction {
            verdict: Err(why),
            refresh: None,
            set_assured: false,
            protoinfo: false,
        }
    }
}

impl From<SctpAction> for L4Action {
    fn from(a: SctpAction) -> Self {
        L4Action {
            verdict: match a.verdict {
                Ok(()) => L4Verdict::Accept,
                Err(_) => L4Verdict::Invalid,
            },
            refresh: a.refresh,
            set_assured: a.set_assured,
            protoinfo: a.protoinfo,
            ..L4Action::INVALID
        }
    }
}

/// `sctp_new`: the state of a new entry from its first packet, or `None` if the packet
/// cannot start one. Every chunk must be one the table moves out of `NONE` (so DATA or SACK
/// cannot); an INIT must carry tag 0 and announces the reply direction's tag, a HEARTBEAT
/// its own direction's, a SHUTDOWN_ACK (out of the blue, answered by SHUTDOWN_COMPLETE or
/// ABORT with the T flag) the reply's.
pub(crate) fn sctp_new<P: PacketBytes + ?Sized>(pkt: &P, hdr: &SctpHeader) -> Option<SctpConn> {
    let mut conn = SctpConn::default();
    for ch in chunks(pkt, hdr.dataoff) {
        let new_state = sctp_new_state(Dir::Original, SctpConntrack::None, ch.ty);
        if matches!(new_state, SctpConntrack::None | SctpConntrack::Invalid) {
            return None;
        }
        match ch.ty {
            SCTP_CID_INIT => {
                // RFC 9260 8.5.1 (A).
                if hdr.vtag != 0 {
                    return None;
                }
                conn.set_vtag(Dir::Reply, init_tag(pkt, ch.offset)?);
            }
            SCTP_CID_HEARTBEAT => conn.set_vtag(Dir::Original, hdr.vtag),
            SCTP_CID_SHUTDOWN_ACK => conn.set_vtag(Dir::Reply, hdr.vtag),
            _ => {}
        }
        conn.state = SctpConntrack::None;
    }
    Some(conn)
}

/// Whether an ABORT or SHUTDOWN_COMPLETE carries the tag its T flag asks for: its own
/// direction's without it, the other's with it.
fn t_flag_vtag_ok(conn: &SctpConn, dir: Dir, vtag: u32, flags: u8) -> bool {
    let want = if flags & SCTP_CHUNK_FLAG_T != 0 {
        conn.vtag(dir.reverse())
    } else {
        conn.vtag(dir)
    };
    vtag == want
}

/// `nf_conntrack_sctp_packet` after `sctp_error`: the packet whose header `hdr` describes,
/// in `dir`, on an entry whose state is `conn` (`confirmed`: in the table; otherwise this
/// is its first packet, and `conn` is replaced by what `sctp_new` makes of it).
///
/// The chunks are walked in order; each may change `conn` (tags, `init`, the state) before
/// a later one makes the packet invalid, as in 6.12, which writes the entry as it goes.
pub(crate) fn sctp_packet<P: PacketBytes + ?Sized>(
    conn: &mut SctpConn,
    pkt: &P,
    hdr: &SctpHeader,
    dir: Dir,
    confirmed: bool,
    hz: u32,
    t: &Timeouts,
) -> SctpAction {
    let map = &hdr.map;
    if !confirmed {
        // RFC 9260 8.4: out of the blue, these must not make an entry.
        if map.any(&[
            SCTP_CID_ABORT,
            SCTP_CID_SHUTDOWN_COMPLETE,
            SCTP_CID_COOKIE_ACK,
        ]) {
            return SctpAction::invalid(SctpInvalid::Ootb);
        }
        match sctp_new(pkt, hdr) {
            Some(c) => *conn = c,
            None => return SctpAction::invalid(SctpInvalid::New),
        }
    }

    // RFC 9260 8.5: the tag check, unless a chunk has rules of its own.
    let exempt = map.any(&[
        SCTP_CID_INIT,
        SCTP_CID_SHUTDOWN_COMPLETE,
        SCTP_CID_COOKIE_ECHO,
        SCTP_CID_ABORT,
        SCTP_CID_SHUTDOWN_ACK,
        SCTP_CID_HEARTBEAT,
        SCTP_CID_HEARTBEAT_ACK,
    ]);
    if !exempt && hdr.vtag != conn.vtag(dir) {
        return SctpAction::invalid(SctpInvalid::Vtag {
            vtag: hdr.vtag,
            expected: conn.vtag(dir),
        });
    }

    let vtag = hdr.vtag;
    let mut new_state = SctpConntrack::None;
    let mut ignore = false;
    let mut action = SctpAction {
        verdict: Ok(()),
        refresh: None,
        set_assured: false,
        protoinfo: false,
    };
    let fail = |action: SctpAction, why: SctpInvalid| SctpAction {
        verdict: Err(why),
        refresh: None,
        ..action
    };
    for ch in chunks(pkt, hdr.dataoff) {
        // RFC 9260 8.5.1: the chunks with tag rules of their own.
        match ch.ty {
            // (A) an INIT carries tag 0.
            SCTP_CID_INIT if vtag != 0 => {
                return fail(action, SctpInvalid::ChunkVtag(ch.ty));
            }
            // (B), (C) the T flag says whose tag.
            SCTP_CID_ABORT | SCTP_CID_SHUTDOWN_COMPLETE
                if !t_flag_vtag_ok(conn, dir, vtag, ch.flags) =>
            {
                return fail(action, SctpInvalid::ChunkVtag(ch.ty));
            }
            // (D) the tag the INIT_ACK announced.
            SCTP_CID_COOKIE_ECHO if vtag != conn.vtag(dir) => {
                return fail(action, SctpInvalid::ChunkVtag(ch.ty));
            }
            SCTP_CID_COOKIE_ACK => conn.init = [false; 2],
            SCTP_CID_HEARTBEAT => {
                if conn.vtag(dir) == 0 {
                    conn.set_vtag(dir, vtag);
                } else if vtag != conn.vtag(dir) {
                    // Maybe a secondary path: let it pass, unrefreshed, and let the
                    // HEARTBEAT_ACK the other way teach the tags.
                    if map.has(SCTP_CID_DATA) || ignore {
                        return fail(action, SctpInvalid::HeartbeatVtag(ch.ty));
                    }
                    conn.flags |= SCTP_FLAG_HEARTBEAT_VTAG_FAILED;
                    conn.last_dir = dir;
                    ignore = true;
                    continue;
                } else if conn.flags & SCTP_FLAG_HEARTBEAT_VTAG_FAILED != 0 {
                    conn.flags &= !SCTP_FLAG_HEARTBEAT_VTAG_FAILED;
                }
            }
            SCTP_CID_HEARTBEAT_ACK => {
                if conn.vtag(dir) == 0 {
                    conn.set_vtag(dir, vtag);
                } else if vtag != conn.vtag(dir) {
                    if map.has(SCTP_CID_DATA) || ignore {
                        return fail(action, SctpInvalid::HeartbeatVtag(ch.ty));
                    }
                    // Only as the answer to a HEARTBEAT with an unknown tag the other way.
                    if conn.flags & SCTP_FLAG_HEARTBEAT_VTAG_FAILED == 0 || conn.last_dir == dir {
                        return fail(action, SctpInvalid::HeartbeatVtag(ch.ty));
                    }
                    conn.flags &= !SCTP_FLAG_HEARTBEAT_VTAG_FAILED;
                    conn.set_vtag(dir, vtag);
                    conn.set_vtag(dir.reverse(), 0);
                } else if conn.flags & SCTP_FLAG_HEARTBEAT_VTAG_FAILED != 0 {
                    conn.flags &= !SCTP_FLAG_HEARTBEAT_VTAG_FAILED;
                }
            }
            _ => {}
        }

        let old_state = conn.state;
        new_state = sctp_new_state(dir, old_state, ch.ty);
        if new_state == SctpConntrack::Invalid {
            return fail(
                action,
                SctpInvalid::State {
                    old: old_state,
                    ty: ch.ty,
                },
            );
        }

        // INIT and INIT_ACK announce the tag the other direction will carry.
        if ch.ty == SCTP_CID_INIT {
            let Some(tag) = init_tag(pkt, ch.offset) else {
                return fail(action, SctpInvalid::InitTruncated(ch.ty));
            };
            // A stale or retransmitted INIT (the peer's tag again) is not a new one.
            if old_state == SctpConntrack::None || conn.vtag(dir.reverse()) != tag {
                if conn.init(dir) && conn.init(dir.reverse()) {
                    conn.set_init(dir.reverse(), false);
                }
                conn.set_init(dir, true);
            }
            conn.set_vtag(dir.reverse(), tag);
            // An INIT retransmitted on a closed entry does not keep it alive (port reuse
            // by a client or a NAT middlebox).
            if new_state == SctpConntrack::Closed && old_state == SctpConntrack::Closed && confirmed
            {
                ignore = true;
            }
        } else if ch.ty == SCTP_CID_INIT_ACK {
            let Some(tag) = init_tag(pkt, ch.offset) else {
                return fail(action, SctpInvalid::InitTruncated(ch.ty));
            };
            let peer = conn.vtag(dir.reverse());
            if !conn.init(dir.reverse()) && peer != 0 && peer != tag {
                return fail(action, SctpInvalid::InitAck);
            }
            // INIT collision: the answer must be to one of them.
            if conn.init(dir) && conn.init(dir.reverse()) && peer != tag {
                return fail(action, SctpInvalid::InitAck);
            }
            conn.set_vtag(dir.reverse(), tag);
        }

        conn.state = new_state;
        if old_state != new_state {
            action.protoinfo = true;
            if new_state == SctpConntrack::Established {
                action.set_assured = true;
            }
        }
    }

    // Accepted, but not refreshed.
    if ignore {
        return action;
    }
    SctpAction {
        refresh: Some(sctp_timeout(t, new_state, hz)),
        ..action
    }
}

/// The SCTP tracker (`nf_conntrack_l4proto_sctp`).
pub(crate) struct Sctp;

impl L4Proto for Sctp {
    type Header = SctpHeader;

    fn error<P: Packet + ?Sized>(pkt: &P, parsed: &Parsed, ctx: &HookCtx) -> Option<SctpHeader> {
        // `nf_conntrack_checksum` (on by default), incoming packets nothing verified yet.
        let verify_crc = ctx.hook == Hook::PreRouting && pkt.checksum_none();
        sctp_error(pkt, parsed.dataoff, verify_crc).ok()
    }

    fn new_conn<P: Packet + ?Sized>(
        pkt: &P,
        hdr: &SctpHeader,
        _parsed: &Parsed,
        ctx: &HookCtx,
        s: &Settings,
    ) -> (L4State, L4Action) {
        let mut conn = SctpConn::default();
        let a = sctp_packet(
            &mut conn,
            pkt,
            hdr,
            Dir::Original,
            false,
            ctx.clock.hz,
            &s.timeouts,
        );
        (L4State::Sctp(conn), a.into())
    }

    fn packet<C: Conntrack + ?Sized, P: Packet + ?Sized>(
        ct: &C,
        entry: &C::Ref,
        pkt: &P,
        hdr: &SctpHeader,
        ctinfo: CtInfo,
        ctx: &HookCtx,
        s: &Settings,
    ) -> L4Action {
        let confirmed = entry.status() & IPS_CONFIRMED != 0;
        ct.with_l4(entry, |st| match st {
            L4State::Sctp(conn) => sctp_packet(
                conn,
                pkt,
                hdr,
                ctinfo.dir(),
                confirmed,
                ctx.clock.hz,
                &s.timeouts,
            )
            .into(),
            _ => L4Action::INVALID,
        })
    }

    fn can_early_drop(state: &L4State) -> bool {
        matches!(state, L4State::Sctp(conn) if sctp_can_early_drop(conn.state))
    }

    fn state_name(state: &L4State) -> Option<&'static str> {
        match state {
            L4State::Sctp(conn) => Some(conn.state.name()),
            _ => None,
        }
    }
}
