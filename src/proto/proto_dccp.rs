// SPDX-License-Identifier: GPL-2.0

//! The DCCP tracker: header checks, the per-role state table and the handshake check.
//!
//! C source: [`net/netfilter/nf_conntrack_proto_dccp.c`](srctree/net/netfilter/nf_conntrack_proto_dccp.c)
//! (`dccp_state_table`, `dccp_new`, `dccp_ack_seq`, `dccp_error`, `dccp_header_pointer`,
//! `nf_conntrack_dccp_packet`, `dccp_can_early_drop`, `dccp_print_conntrack`,
//! `nf_conntrack_dccp_init_net`).
//! C headers: [`include/linux/netfilter/nf_conntrack_dccp.h`](srctree/include/linux/netfilter/nf_conntrack_dccp.h)
//! (`enum ct_dccp_states`, `enum ct_dccp_roles`, `struct nf_ct_dccp`),
//! [`include/uapi/linux/dccp.h`](srctree/include/uapi/linux/dccp.h) (`struct dccp_hdr`,
//! `enum dccp_pkt_type`, `dccp_packet_hdr_len`),
//! [`include/linux/dccp.h`](srctree/include/linux/dccp.h) (`__dccp_basic_hdr_len`,
//! `__dccp_hdr_len`, `dccp_hdr_seq`).
//!
//! Pure `core` code. One packet, in 6.12's order:
//!
//! 1. [`dccp_error`]: the 12-byte generic header, data offset, checksum coverage, the
//!    checksum (a test the caller supplies: PRE_ROUTING only), packet type, 48-bit sequence
//!    numbers where required, then the whole header for the type. Any failure makes the
//!    packet invalid before the entry is touched.
//! 2. A new entry: [`dccp_new`] decides whether the packet may start one (only a Request
//!    does: 6.12's `nf_conntrack_dccp_loose` cannot change that, see [`dccp_new`]).
//! 3. Under the entry's lock: [`dccp_packet`] runs the state table for the sender's role
//!    and says what to do ([`DccpAction`]).
//!
//! 6.12 checks one sequence number: the client's Ack answering the Response must acknowledge
//! the Response's sequence number (`handshake_seq`) for the entry to be assured. It checks
//! no other sequence or acknowledgement number, no reset code and no option.

use crate::proto::conn::{secs_to_jiffies, CtInfo, Timeouts, IPS_SEEN_REPLY};
use crate::proto::l4proto::{L4Action, L4Proto, L4State, L4Verdict, Settings};
use crate::proto::pipeline::{Conntrack, Entry, Hook, HookCtx, Packet};
use crate::proto::tuple::{Dir, PacketBytes, Parsed, IPPROTO_DCCP};

/// `sizeof(struct dccp_hdr)`: the generic header with a 24-bit sequence number.
pub(crate) const DCCP_HDR_LEN: usize = 12;
/// `sizeof(struct dccp_hdr_ext)`: the low 32 bits of a 48-bit sequence number.
pub(crate) const DCCP_HDR_EXT_LEN: usize = 4;
/// `sizeof(struct dccp_hdr_ack_bits)`: reserved, then the 48-bit acknowledgement number.
pub(crate) const DCCP_ACK_BITS_LEN: usize = 8;
/// `sizeof(struct nf_conntrack_dccp_buf)`: the longest header 6.12 reads (a Response or
/// Reset with a 48-bit sequence number).
pub(crate) const DCCP_MAX_HDR_LEN: usize = DCCP_HDR_LEN + DCCP_HDR_EXT_LEN + 12;

/// A DCCP packet type, `enum dccp_pkt_type` (values as on the wire).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[repr(u8)]
pub(crate) enum DccpPktType {
    /// `DCCP_PKT_REQUEST`: the client opens.
    #[default]
    Request = 0,
    /// `DCCP_PKT_RESPONSE`: the server answers the Request.
    Response = 1,
    /// `DCCP_PKT_DATA`.
    Data = 2,
    /// `DCCP_PKT_ACK`.
    Ack = 3,
    /// `DCCP_PKT_DATAACK`.
    DataAck = 4,
    /// `DCCP_PKT_CLOSEREQ`: the server asks the client to close.
    CloseReq = 5,
    /// `DCCP_PKT_CLOSE`.
    Close = 6,
    /// `DCCP_PKT_RESET`.
    Reset = 7,
    /// `DCCP_PKT_SYNC`.
    Sync = 8,
    /// `DCCP_PKT_SYNCACK`.
    SyncAck = 9,
}

/// `DCCP_PKT_INVALID`: types from here on are reserved.
pub(crate) const DCCP_PKT_INVALID: u8 = 10;

impl DccpPktType {
    /// Every type, in value order.
    pub(crate) const ALL: [DccpPktType; 10] = [
        DccpPktType::Request,
        DccpPktType::Response,
        DccpPktType::Data,
        DccpPktType::Ack,
        DccpPktType::DataAck,
        DccpPktType::CloseReq,
        DccpPktType::Close,
        DccpPktType::Reset,
        DccpPktType::Sync,
        DccpPktType::SyncAck,
    ];

    /// The type of value `v`; `None` for the reserved values (10 to 15).
    pub(crate) fn from_u8(v: u8) -> Option<DccpPktType> {
        Self::ALL.get(usize::from(v)).copied()
    }

    /// `dccp_packet_hdr_len`: the bytes of the type's own header after the generic one.
    pub(crate) fn hdr_len(self) -> usize {
        match self {
            DccpPktType::Data => 0,
            DccpPktType::DataAck
            | DccpPktType::Ack
            | DccpPktType::Sync
            | DccpPktType::SyncAck
            | DccpPktType::Close
            | DccpPktType::CloseReq => DCCP_ACK_BITS_LEN,
            // `struct dccp_hdr_request`: the service code.
            DccpPktType::Request => 4,
            // `struct dccp_hdr_response` and `struct dccp_hdr_reset`: ack bits and 4 bytes.
            DccpPktType::Response | DccpPktType::Reset => DCCP_ACK_BITS_LEN + 4,
        }
    }

    /// Whether the type carries an acknowledgement number, at the end of the generic header.
    pub(crate) fn has_ack(self) -> bool {
        !matches!(self, DccpPktType::Request | DccpPktType::Data)
    }

    /// `require_seq48` of `dccp_error`: only Data, Ack and DataAck may use 24-bit sequence
    /// numbers (RFC 4340, 5.1).
    pub(crate) fn requires_seq48(self) -> bool {
        !matches!(
            self,
            DccpPktType::Data | DccpPktType::Ack | DccpPktType::DataAck
        )
    }
}

/// A DCCP connection state, `enum ct_dccp_states`, with the two table outcomes that are no
/// state (values as in the header, which exposes them to user space over nfnetlink).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[repr(u8)]
pub(crate) enum DccpState {
    /// `CT_DCCP_NONE`: before the first packet.
    #[default]
    None = 0,
    /// `CT_DCCP_REQUEST`: Request seen, waiting for the Response.
    Request = 1,
    /// `CT_DCCP_RESPOND`: Response seen, waiting for the client's Ack.
    Respond = 2,
    /// `CT_DCCP_PARTOPEN`: the client acknowledged the Response.
    PartOpen = 3,
    /// `CT_DCCP_OPEN`: the server sent something after the handshake.
    Open = 4,
    /// `CT_DCCP_CLOSEREQ`: the server asked the client to close.
    CloseReq = 5,
    /// `CT_DCCP_CLOSING`: Close seen, waiting for the Reset.
    Closing = 6,
    /// `CT_DCCP_TIMEWAIT`: Reset seen.
    TimeWait = 7,
    /// `CT_DCCP_IGNORE` (`sIG`): maybe valid, maybe a connection the tracker missed; the
    /// packet passes without changing the state.
    Ignore = 8,
    /// `CT_DCCP_INVALID` (`sIV`, `CT_DCCP_MAX`): invalid in this state.
    Invalid = 9,
}

impl DccpState {
    /// Every value, in order.
    pub(crate) const ALL: [DccpState; 10] = [
        DccpState::None,
        DccpState::Request,
        DccpState::Respond,
        DccpState::PartOpen,
        DccpState::Open,
        DccpState::CloseReq,
        DccpState::Closing,
        DccpState::TimeWait,
        DccpState::Ignore,
        DccpState::Invalid,
    ];

    /// The state of value `v`, if any.
    pub(crate) fn from_u8(v: u8) -> Option<DccpState> {
        Self::ALL.get(usize::from(v)).copied()
    }

    /// `dccp_state_names`: what `/proc` shows.
    pub(crate) fn name(self) -> &'static str {
        match self {
            DccpState::None => "NONE",
            DccpState::Request => "REQUEST",
            DccpState::Respond => "RESPOND",
            DccpState::PartOpen => "PARTOPEN",
            DccpState::Open => "OPEN",
            DccpState::CloseReq => "CLOSEREQ",
            DccpState::Closing => "CLOSING",
            DccpState::TimeWait => "TIMEWAIT",
            DccpState::Ignore => "IGNORE",
            DccpState::Invalid => "INVALID",
        }
    }
}

/// Which end of the connection sent a packet, `enum ct_dccp_roles`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(crate) enum DccpRole {
    /// `CT_DCCP_ROLE_CLIENT`: the end that sent the Request.
    Client = 0,
    /// `CT_DCCP_ROLE_SERVER`.
    Server = 1,
}

const NO: DccpState = DccpState::None;
const RQ: DccpState = DccpState::Request;
const RS: DccpState = DccpState::Respond;
const PO: DccpState = DccpState::PartOpen;
const OP: DccpState = DccpState::Open;
const CR: DccpState = DccpState::CloseReq;
const CG: DccpState = DccpState::Closing;
const TW: DccpState = DccpState::TimeWait;
const IG: DccpState = DccpState::Ignore;
const IV: DccpState = DccpState::Invalid;

/// `dccp_state_table[CT_DCCP_ROLE_MAX + 1][DCCP_PKT_SYNCACK + 1][CT_DCCP_MAX + 1]`: the new
/// state by the sender's role, the packet type and the old state. The C source explains
/// every cell.
///
/// As in C, rows hold ten columns and the initializers only eight (nine for the server's
/// Reset): the columns of `IGNORE` and `INVALID`, which are never a connection's state, are
/// `sNO`. Two cells differ from 6.12's comments: a client's Close in `CLOSING` is `sIV`, and
/// a server's Reset in `TIMEWAIT` is `sTW` (refreshing the timer), the ninth initializer
/// filling the `IGNORE` column.
#[rustfmt::skip]
pub(crate) const DCCP_STATE_TABLE: [[[DccpState; 10]; 10]; 2] = [
    [
        // CT_DCCP_ROLE_CLIENT
        //             sNO sRQ sRS sPO sOP sCR sCG sTW sIG sIV
        /* request */  [RQ, RQ, RS, IG, IG, IG, IG, RQ, NO, NO],
        /* response */ [IV, IG, IG, IG, IG, IG, IG, IV, NO, NO],
        /* data */     [IV, IV, IV, IV, OP, CR, CG, IV, NO, NO],
        /* ack */      [IV, IV, PO, PO, OP, CR, CG, IV, NO, NO],
        /* dataack */  [IV, IV, PO, PO, OP, CR, CG, IV, NO, NO],
        /* closereq */ [IV, IV, IV, IV, IV, IV, IV, IV, NO, NO],
        /* close */    [IV, IV, IV, CG, CG, CG, IV, IV, NO, NO],
        /* reset */    [IV, TW, TW, TW, TW, TW, TW, IG, NO, NO],
        /* sync */     [IV, IG, IG, IG, IG, IG, IG, IG, NO, NO],
        /* syncack */  [IV, IG, IG, IG, IG, IG, IG, IG, NO, NO],
    ],
    [
        // CT_DCCP_ROLE_SERVER
        //             sNO sRQ sRS sPO sOP sCR sCG sTW sIG sIV
        /* request */  [IV, IG, IG, IG, IG, IG, IG, RQ, NO, NO],
        /* response */ [IV, RS, RS, IG, IG, IG, IG, IV, NO, NO],
        /* data */     [IV, IV, IV, OP, OP, IV, CG, IV, NO, NO],
        /* ack */      [IV, IV, IV, OP, OP, IV, CG, IV, NO, NO],
        /* dataack */  [IV, IV, IV, OP, OP, IV, CG, IV, NO, NO],
        /* closereq */ [IV, IV, IV, CR, CR, CR, CR, IV, NO, NO],
        /* close */    [IV, IV, IV, CG, CG, IV, CG, IV, NO, NO],
        /* reset */    [IV, TW, TW, TW, TW, TW, TW, TW, IG, NO],
        /* sync */     [IV, IG, IG, IG, IG, IG, IG, IG, NO, NO],
        /* syncack */  [IV, IG, IG, IG, IG, IG, IG, IG, NO, NO],
    ],
];

/// The table's cell for a packet of type `ty` from `role` in state `state`.
pub(crate) fn transition(role: DccpRole, ty: DccpPktType, state: DccpState) -> DccpState {
    DCCP_STATE_TABLE
        .get(role as usize)
        .and_then(|r| r.get(ty as usize))
        .and_then(|row| row.get(state as usize))
        .copied()
        .unwrap_or(DccpState::Invalid)
}

/// Why a DCCP header makes a packet invalid.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum DccpError {
    /// Fewer than 12 bytes of generic header (`skb_header_pointer` fails; not logged).
    Short,
    /// The data offset is below the generic header or beyond the packet.
    Malformed,
    /// The checksum coverage reaches beyond the packet.
    BadCoverage,
    /// The checksum is wrong.
    BadChecksum,
    /// A reserved packet type (10 to 15).
    ReservedType,
    /// A type that requires 48-bit sequence numbers has `X` clear.
    NoSeq48,
    /// The header for the type does not fit in the packet (`dccp_header_pointer` fails;
    /// not logged).
    Truncated,
}

impl DccpError {
    /// The message 6.12 logs (`nf_l4proto_log_invalid`), if it logs one.
    pub(crate) fn msg(self) -> Option<&'static str> {
        match self {
            DccpError::Short | DccpError::Truncated => None,
            DccpError::Malformed => Some("nf_ct_dccp: truncated/malformed packet "),
            DccpError::BadCoverage => Some("nf_ct_dccp: bad checksum coverage "),
            DccpError::BadChecksum => Some("nf_ct_dccp: bad checksum "),
            DccpError::ReservedType => Some("nf_ct_dccp: reserved packet type "),
            DccpError::NoSeq48 => Some("nf_ct_dccp: type lacks 48bit sequence numbers"),
        }
    }
}

/// What the tracker needs of a header that passed [`dccp_error`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct DccpHeader {
    /// The packet type.
    pub(crate) ty: DccpPktType,
    /// `dccp_hdr_seq`: the sequence number, 24 or 48 bits.
    pub(crate) seq: u64,
    /// `dccp_ack_seq`: the acknowledgement number, for the types that carry one.
    pub(crate) ack: Option<u64>,
}

/// `N` bytes of `buf` at `off`, if there.
fn bytes_at<const N: usize>(buf: &[u8], off: usize) -> Option<[u8; N]> {
    buf.get(off..off.checked_add(N)?)?.try_into().ok()
}

/// `dccp_error` and the header reads around it in `nf_conntrack_dccp_packet`: checks the
/// DCCP header at `dataoff` in 6.12's order and returns what the tracker needs.
///
/// `checksum_ok(cscov)` verifies the checksum over the first `cscov` bytes from `dataoff`
/// (`nf_checksum_partial`); the caller makes it true where 6.12 makes no test (not at
/// PRE_ROUTING). 6.12 takes the coverage as `(CsCov - 1) * 4` bytes from the start of the
/// header, not past the data offset as RFC 4340 (9.2) and the DCCP stack do; so does this.
///
/// The header for the type is read from the packet, not bounded by the data offset: a data
/// offset covering only the generic header passes if the packet holds the rest.
pub(crate) fn dccp_error<P: PacketBytes + ?Sized>(
    pkt: &P,
    dataoff: usize,
    checksum_ok: impl FnOnce(usize) -> bool,
) -> Result<DccpHeader, DccpError> {
    let mut base = [0u8; DCCP_HDR_LEN];
    pkt.read(dataoff, &mut base).map_err(|_| DccpError::Short)?;
    let [_, _, _, _, doff, cc, _, _, tx, seq2, s0, s1] = base;
    // The read succeeded, so the packet reaches past `dataoff`.
    let dccp_len = pkt.len().checked_sub(dataoff).ok_or(DccpError::Short)?;
    let doff = usize::from(doff) * 4;
    if doff < DCCP_HDR_LEN || doff > dccp_len {
        return Err(DccpError::Malformed);
    }
    // CsCov is the low nibble; 0 means the whole packet.
    let cscov = match usize::from(cc & 0x0f) {
        0 => dccp_len,
        c => (c - 1) * 4,
    };
    if cscov > dccp_len {
        return Err(DccpError::BadCoverage);
    }
    if !checksum_ok(cscov) {
        return Err(DccpError::BadChecksum);
    }
    // Reserved (3 bits), type (4 bits), X (1 bit), from the most significant bit.
    let ty = DccpPktType::from_u8((tx >> 1) & 0x0f).ok_or(DccpError::ReservedType)?;
    let x = tx & 1 != 0;
    if ty.requires_seq48() && !x {
        return Err(DccpError::NoSeq48);
    }

    // "pull again, including possible 48 bit sequences and subtype header"
    let basic = if x {
        DCCP_HDR_LEN + DCCP_HDR_EXT_LEN
    } else {
        DCCP_HDR_LEN
    };
    let hdrlen = basic + ty.hdr_len();
    let mut buf = [0u8; DCCP_MAX_HDR_LEN];
    let hdr = buf.get_mut(..hdrlen).ok_or(DccpError::Truncated)?;
    pkt.read(dataoff, hdr).map_err(|_| DccpError::Truncated)?;
    let hdr = &*hdr;

    let seq16 = u64::from(u16::from_be_bytes([s0, s1]));
    let seq = if x {
        let low = bytes_at::<4>(hdr, DCCP_HDR_LEN).ok_or(DccpError::Truncated)?;
        (seq16 << 32) + u64::from(u32::from_be_bytes(low))
    } else {
        seq16 + (u64::from(seq2) << 16)
    };
    let ack = if ty.has_ack() {
        // `struct dccp_hdr_ack_bits`, 8 bytes even with 24-bit numbers, as 6.12 reads it.
        let [_, _, h0, h1, l0, l1, l2, l3] =
            bytes_at::<DCCP_ACK_BITS_LEN>(hdr, basic).ok_or(DccpError::Truncated)?;
        Some(
            (u64::from(u16::from_be_bytes([h0, h1])) << 32)
                + u64::from(u32::from_be_bytes([l0, l1, l2, l3])),
        )
    } else {
        None
    };
    Ok(DccpHeader { ty, seq, ack })
}

/// The DCCP settings (the `nf_conntrack_dccp_*` sysctls other than timeouts).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct DccpSettings {
    /// `nf_conntrack_dccp_loose`: pick up connections already established.
    pub(crate) loose: bool,
}

impl DccpSettings {
    /// 6.12's defaults (`nf_conntrack_dccp_init_net`): loose 1.
    pub(crate) const fn defaults() -> DccpSettings {
        DccpSettings { loose: true }
    }
}

impl Default for DccpSettings {
    fn default() -> DccpSettings {
        DccpSettings::defaults()
    }
}

/// DCCP's per-connection state, `struct nf_ct_dccp`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct DccpConn {
    /// The role of each direction's sender (`role[IP_CT_DIR_MAX]`), by [`Dir`].
    pub(crate) role: [DccpRole; 2],
    /// The state.
    pub(crate) state: DccpState,
    /// The type of the last packet that changed or was ignored in the state.
    pub(crate) last_pkt: DccpPktType,
    /// Its direction.
    pub(crate) last_dir: Dir,
    /// The Response's sequence number, which the client's Ack must acknowledge.
    pub(crate) handshake_seq: u64,
}

impl Default for DccpConn {
    /// What `dccp_new` sets: the original direction is the client, as if after a Request.
    fn default() -> DccpConn {
        DccpConn {
            role: [DccpRole::Client, DccpRole::Server],
            state: DccpState::None,
            last_pkt: DccpPktType::Request,
            last_dir: Dir::Original,
            handshake_seq: 0,
        }
    }
}

impl DccpConn {
    /// The role of `dir`'s sender.
    pub(crate) fn role_of(&self, dir: Dir) -> DccpRole {
        match dir {
            Dir::Original => self.role[0],
            Dir::Reply => self.role[1],
        }
    }

    /// Makes `client` the client's direction and the other the server's.
    fn set_client(&mut self, client: Dir) {
        self.role = match client {
            Dir::Original => [DccpRole::Client, DccpRole::Server],
            Dir::Reply => [DccpRole::Server, DccpRole::Client],
        };
    }
}

/// The timeout of `state`, in seconds: `timeouts[state]`. `NONE` shares `REQUEST`'s; the
/// two outcomes that are no state have none (6.12's array holds 0 there, never used).
pub(crate) fn state_timeout(t: &Timeouts, state: DccpState) -> u32 {
    match state {
        DccpState::None | DccpState::Request => t.dccp_request,
        DccpState::Respond => t.dccp_respond,
        DccpState::PartOpen => t.dccp_partopen,
        DccpState::Open => t.dccp_open,
        DccpState::CloseReq => t.dccp_closereq,
        DccpState::Closing => t.dccp_closing,
        DccpState::TimeWait => t.dccp_timewait,
        DccpState::Ignore | DccpState::Invalid => 0,
    }
}

/// `dccp_new`: whether a packet may create an entry, and the state it starts with.
///
/// 6.12 looks the packet up in the client's row for `NONE`: a Request makes a connection, an
/// `sIV` cell refuses it, and any other cell makes one only with `nf_conntrack_dccp_loose`.
/// Every other type's cell for `NONE` is `sIV`, so the loose setting changes nothing: only
/// a Request opens a DCCP connection, whatever the sysctl says. `Err` carries the message
/// 6.12 logs.
pub(crate) fn dccp_new(hdr: &DccpHeader, s: &DccpSettings) -> Result<DccpConn, &'static str> {
    match transition(DccpRole::Client, hdr.ty, DccpState::None) {
        DccpState::Request => {}
        DccpState::Invalid => return Err("invalid state transition "),
        _ if !s.loose => return Err("not picking up existing connection "),
        _ => {}
    }
    Ok(DccpConn::default())
}

/// What the core must do after [`dccp_packet`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct DccpAction {
    /// Accept (`NF_ACCEPT`) or invalid (`-NF_ACCEPT`).
    pub(crate) accept: bool,
    /// `Some(extra_jiffies)`: `nf_ct_refresh_acct`.
    pub(crate) refresh: Option<u32>,
    /// `nf_ct_kill_acct`: count the packet, then kill the entry.
    pub(crate) kill: bool,
    /// Set `IPS_ASSURED`. 6.12 sets the bit with `set_bit` and raises no `IPCT_ASSURED`.
    pub(crate) set_assured: bool,
    /// The state changed: `IPCT_PROTOINFO`.
    pub(crate) protoinfo: bool,
    /// What `nf_ct_l4proto_log_invalid` logs, if anything.
    pub(crate) log: Option<&'static str>,
}

impl DccpAction {
    const fn bare(accept: bool) -> DccpAction {
        DccpAction {
            accept,
            refresh: None,
            kill: false,
            set_assured: false,
            protoinfo: false,
            log: None,
        }
    }
}

impl From<DccpAction> for L4Action {
    fn from(a: DccpAction) -> L4Action {
        L4Action {
            verdict: if a.accept {
                L4Verdict::Accept
            } else {
                L4Verdict::Invalid
            },
            refresh: a.refresh,
            kill: a.kill,
            set_assured: a.set_assured,
            protoinfo: a.protoinfo,
            // The pipeline's log carries TCP's messages only.
            ..L4Action::INVALID
        }
    }
}

/// `nf_conntrack_dccp_packet` after the header checks (and [`dccp_new`] for a new entry): a
/// packet `hdr` from `dir` of a connection in `conn` whose status bits are `status`.
///
/// - A Reset before any reply kills the entry at once, whatever the state.
/// - Otherwise the sender's role, the type and the state pick the new state. `sIV`: invalid,
///   nothing changes. `sIG`: accepted without refresh, remembered as the last packet,
///   unless it is a Response answering a Request the other way that was ignored: then the
///   tracker takes the Response's sender for the server and resynchronises to `RESPOND`.
/// - A Request in `TIMEWAIT` from the server reopens the connection with the roles
///   reversed; a Response to the Request stores its sequence number, and the client's Ack
///   acknowledging exactly that number assures the entry.
/// - Every other outcome is stored and refreshes the entry to the new state's timeout.
pub(crate) fn dccp_packet(
    conn: &mut DccpConn,
    hdr: &DccpHeader,
    dir: Dir,
    status: u32,
    hz: u32,
    t: &Timeouts,
) -> DccpAction {
    let ty = hdr.ty;
    // "Tear down connection immediately if only reply is a RESET"
    if ty == DccpPktType::Reset && status & IPS_SEEN_REPLY == 0 {
        return DccpAction {
            kill: true,
            ..DccpAction::bare(true)
        };
    }

    let role = conn.role_of(dir);
    let old_state = conn.state;
    let mut new_state = transition(role, ty, old_state);
    let mut set_assured = false;
    match new_state {
        // Reincarnation in the reverse direction: reopen, roles reversed.
        DccpState::Request if old_state == DccpState::TimeWait && role == DccpRole::Server => {
            conn.set_client(dir);
        }
        DccpState::Respond if old_state == DccpState::Request => conn.handshake_seq = hdr.seq,
        DccpState::PartOpen => {
            set_assured = old_state == DccpState::Respond
                && ty == DccpPktType::Ack
                && hdr.ack == Some(conn.handshake_seq);
        }
        DccpState::Ignore => {
            // Out of sync, maybe: a valid Response to the Request ignored before resyncs.
            if conn.last_dir == dir.reverse()
                && conn.last_pkt == DccpPktType::Request
                && ty == DccpPktType::Response
            {
                conn.set_client(dir.reverse());
                conn.handshake_seq = hdr.seq;
                new_state = DccpState::Respond;
            } else {
                conn.last_dir = dir;
                conn.last_pkt = ty;
                return DccpAction {
                    log: Some("invalid packet"),
                    ..DccpAction::bare(true)
                };
            }
        }
        DccpState::Invalid => {
            return DccpAction {
                log: Some("invalid state transition"),
                ..DccpAction::bare(false)
            };
        }
        _ => {}
    }

    conn.last_dir = dir;
    conn.last_pkt = ty;
    conn.state = new_state;
    DccpAction {
        refresh: Some(secs_to_jiffies(state_timeout(t, new_state), hz)),
        set_assured,
        protoinfo: new_state != old_state,
        ..DccpAction::bare(true)
    }
}

/// `dccp_can_early_drop`: an assured connection that is closing may still be evicted.
pub(crate) fn dccp_can_early_drop(state: DccpState) -> bool {
    matches!(
        state,
        DccpState::CloseReq | DccpState::Closing | DccpState::TimeWait
    )
}

/// The DCCP tracker (`nf_conntrack_l4proto_dccp`). 6.12 sets no `allow_clash`.
pub(crate) struct Dccp;

impl L4Proto for Dccp {
    type Header = DccpHeader;

    fn error<P: Packet + ?Sized>(pkt: &P, parsed: &Parsed, ctx: &HookCtx) -> Option<DccpHeader> {
        // The checksum of incoming packets only (`nf_conntrack_checksum`, on by default).
        dccp_error(pkt, parsed.dataoff, |cscov| {
            ctx.hook != Hook::PreRouting
                || pkt.l4_checksum_ok(ctx.hook, ctx.l3, parsed.dataoff, IPPROTO_DCCP, Some(cscov))
        })
        .ok()
    }

    fn new_conn<P: Packet + ?Sized>(
        _pkt: &P,
        hdr: &DccpHeader,
        _parsed: &Parsed,
        ctx: &HookCtx,
        s: &Settings,
    ) -> (L4State, L4Action) {
        let Ok(mut conn) = dccp_new(hdr, &s.dccp) else {
            return (L4State::None, L4Action::INVALID);
        };
        let a = dccp_packet(&mut conn, hdr, Dir::Original, 0, ctx.clock.hz, &s.timeouts);
        (L4State::Dccp(conn), a.into())
    }

    fn packet<C: Conntrack + ?Sized, P: Packet + ?Sized>(
        ct: &C,
        entry: &C::Ref,
        _pkt: &P,
        hdr: &DccpHeader,
        ctinfo: CtInfo,
        ctx: &HookCtx,
        s: &Settings,
    ) -> L4Action {
        let status = entry.status();
        ct.with_l4(entry, |st| match st {
            L4State::Dccp(conn) => {
                dccp_packet(conn, hdr, ctinfo.dir(), status, ctx.clock.hz, &s.timeouts).into()
            }
            _ => L4Action::INVALID,
        })
    }

    fn can_early_drop(state: &L4State) -> bool {
        matches!(state, L4State::Dccp(conn) if dccp_can_early_drop(conn.state))
    }

    fn state_name(state: &L4State) -> Option<&'static str> {
        match state {
            L4State::Dccp(conn) => Some(conn.state.name()),
            _ => None,
        }
    }
}
