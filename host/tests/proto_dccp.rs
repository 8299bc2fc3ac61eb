// SPDX-License-Identifier: GPL-2.0

//! Tests of the DCCP tracker (`src/proto/proto_dccp.rs`) against Linux 6.12's
//! `nf_conntrack_proto_dccp.c`: both roles' state tables cell by cell (transcribed here from
//! the C source, apart from the module's table), the header checks on every truncation and
//! malformed field, the checksum coverage, the handshake's sequence check, whole connections
//! through the module's pipeline in both address families, the timeouts of every state and
//! the `/proc` names.

use crate::host_ct::{ctx, receive, HostCt, HostEntry, Pkt};
use crate::pkt::{csum, Ipv4, Ipv6, A4, A6, B4, B6};
use crate::proto::conn::*;
use crate::proto::l4proto::{self, L4Action, L4State, L4Verdict, Settings};
use crate::proto::pipeline::{Conntrack, Entry, Hook, HookRole, Verdict};
use crate::proto::proc_line::{write_line, L4Info, Snapshot};
use crate::proto::proto_dccp::*;
use crate::proto::stat::Stat;
use crate::proto::tuple::{self, Dir, L3};
use std::rc::Rc;

/// The reference kernel's HZ.
const HZ: u32 = 250;
const T: Timeouts = Timeouts::defaults();
const DCCP: u8 = 33;

// ---------------------------------------------------------------------------------------------
// Packets.

/// The kernel's packet type values (`enum dccp_pkt_type`).
const REQUEST: u8 = 0;
const RESPONSE: u8 = 1;
const DATA: u8 = 2;
const ACK: u8 = 3;
const DATAACK: u8 = 4;
const CLOSEREQ: u8 = 5;
const CLOSE: u8 = 6;
const RESET: u8 = 7;
const SYNC: u8 = 8;
const SYNCACK: u8 = 9;

/// `dccp_packet_hdr_len` of uapi/linux/dccp.h, transcribed: reserved types fall through to
/// `sizeof(struct dccp_hdr_reset)`.
fn packet_hdr_len(ty: u8) -> usize {
    match ty {
        DATA => 0,
        DATAACK | ACK | SYNC | SYNCACK | CLOSE | CLOSEREQ => 8,
        REQUEST => 4,
        RESPONSE => 12,
        _ => 12,
    }
}

/// A DCCP header to build, field by field.
#[derive(Clone, Debug)]
struct D {
    sport: u16,
    dport: u16,
    /// Raw type value (reserved values allowed).
    ty: u8,
    /// The X bit: 48-bit sequence numbers.
    x: bool,
    seq: u64,
    ack: u64,
    /// Data offset in words; default the header built.
    doff: Option<u8>,
    /// The CsCov nibble.
    cscov: u8,
    /// The byte after the 16-bit high sequence bits with X set (reserved), or the high byte
    /// of a 24-bit number: overridden when X is clear.
    seq2: u8,
    /// Application data.
    data: Vec<u8>,
    /// Where the checksum is computed over (`None`: 6.12's coverage).
    csum_over: Option<usize>,
    /// Send with a wrong checksum.
    bad_csum: bool,
    v6: bool,
}

impl D {
    fn new(ty: u8, seq: u64) -> D {
        D {
            sport: 40000,
            dport: 5001,
            ty,
            x: true,
            seq,
            ack: 0,
            doff: None,
            cscov: 0,
            seq2: 0xee,
            data: Vec::new(),
            csum_over: None,
            bad_csum: false,
            v6: false,
        }
    }

    fn ack(mut self, ack: u64) -> D {
        self.ack = ack;
        self
    }

    fn x(mut self, x: bool) -> D {
        self.x = x;
        self
    }

    fn data(mut self, n: usize) -> D {
        self.data = (0..n).map(|i| (i * 7 + 3) as u8).collect();
        self
    }

    fn v6(mut self, v6: bool) -> D {
        self.v6 = v6;
        self
    }

    /// The DCCP header and data, checksum zero.
    fn segment(&self) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(&self.sport.to_be_bytes());
        h.extend_from_slice(&self.dport.to_be_bytes());
        h.extend_from_slice(&[
            0,
            self.cscov & 0x0f,
            0,
            0,
            (self.ty << 1) | u8::from(self.x),
        ]);
        if self.x {
            // Reserved byte, then the high 16 of 48 bits, then the low 32.
            h.push(self.seq2);
            h.extend_from_slice(&((self.seq >> 32) as u16).to_be_bytes());
            h.extend_from_slice(&(self.seq as u32).to_be_bytes());
        } else {
            h.extend_from_slice(&(self.seq as u32).to_be_bytes()[1..]);
        }
        let len = packet_hdr_len(self.ty);
        let mut sub = Vec::new();
        if len >= 8 && self.ty != REQUEST {
            sub.extend_from_slice(&[0xab, 0xcd]);
            sub.extend_from_slice(&((self.ack >> 32) as u16).to_be_bytes());
            sub.extend_from_slice(&(self.ack as u32).to_be_bytes());
        }
        // Service code or reset code and data.
        while sub.len() < len {
            sub.push(0x5a);
        }
        h.extend_from_slice(&sub);
        h[4] = self.doff.unwrap_or((h.len() / 4) as u8);
        h.extend_from_slice(&self.data);
        h
    }

    /// The whole IP packet from `from`, with the checksum over 6.12's coverage.
    fn packet_from(&self, from: Side) -> Vec<u8> {
        let mut d = self.clone();
        if from == B {
            (d.sport, d.dport) = (self.dport, self.sport);
        }
        let seg = d.segment();
        let (mut p, dataoff) = if self.v6 {
            let (s, t) = if from == A { (A6, B6) } else { (B6, A6) };
            (Ipv6::new(DCCP, s, t).build(&seg), 40)
        } else {
            let (s, t) = if from == A { (A4, B4) } else { (B4, A4) };
            (Ipv4::new(DCCP, s, t).build(&seg), 20)
        };
        let cov = self.csum_over.unwrap_or(match self.cscov {
            0 => seg.len(),
            c => (usize::from(c) - 1) * 4,
        });
        set_csum(&mut p, self.v6, dataoff, cov.min(seg.len()));
        if self.bad_csum {
            p[dataoff + 6] ^= 0x40;
        }
        p
    }
}

/// Writes the DCCP checksum of the packet `p` over `cov` bytes from `dataoff`, with the
/// pseudo header of the whole segment's length (RFC 4340, 9.1).
fn set_csum(p: &mut [u8], v6: bool, dataoff: usize, cov: usize) {
    p[dataoff + 6] = 0;
    p[dataoff + 7] = 0;
    let mut buf = if v6 {
        p[8..40].to_vec()
    } else {
        p[12..20].to_vec()
    };
    let len = (p.len() - dataoff) as u32;
    buf.extend_from_slice(&[0, DCCP]);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&p[dataoff..dataoff + cov]);
    let c = csum(&buf);
    p[dataoff + 6..dataoff + 8].copy_from_slice(&c.to_be_bytes());
}

/// A checksum test that always passes.
fn any_sum(_: usize) -> bool {
    true
}

// ---------------------------------------------------------------------------------------------
// Names, values, the table.

#[test]
fn values_and_names_match_6_12() {
    let types = [
        (DccpPktType::Request, REQUEST),
        (DccpPktType::Response, RESPONSE),
        (DccpPktType::Data, DATA),
        (DccpPktType::Ack, ACK),
        (DccpPktType::DataAck, DATAACK),
        (DccpPktType::CloseReq, CLOSEREQ),
        (DccpPktType::Close, CLOSE),
        (DccpPktType::Reset, RESET),
        (DccpPktType::Sync, SYNC),
        (DccpPktType::SyncAck, SYNCACK),
    ];
    for (t, v) in types {
        assert_eq!(t as u8, v);
        assert_eq!(DccpPktType::from_u8(v), Some(t));
        assert_eq!(t.hdr_len(), packet_hdr_len(v), "{t:?}");
    }
    assert_eq!(DCCP_PKT_INVALID, 10);
    for v in 10..=255 {
        assert_eq!(DccpPktType::from_u8(v), None);
    }
    // `dccp_state_names`, in `enum ct_dccp_states` order.
    let names = [
        "NONE", "REQUEST", "RESPOND", "PARTOPEN", "OPEN", "CLOSEREQ", "CLOSING", "TIMEWAIT",
        "IGNORE", "INVALID",
    ];
    for (v, name) in names.into_iter().enumerate() {
        let s = DccpState::from_u8(v as u8).unwrap();
        assert_eq!(s as usize, v);
        assert_eq!(s.name(), name);
        let st = L4State::Dccp(DccpConn {
            state: s,
            ..DccpConn::default()
        });
        assert_eq!(l4proto::print(DCCP, &st), L4Info::State(name));
    }
    assert_eq!(DccpState::from_u8(10), None);
    assert_eq!((DccpRole::Client as u8, DccpRole::Server as u8), (0, 1));
    // `struct nf_conntrack_dccp_buf`: 12 + 4 + the largest subheader (12).
    assert_eq!((DCCP_HDR_LEN, DCCP_MAX_HDR_LEN), (12, 28));
    // Kept small: it lives in every entry.
    assert!(core::mem::size_of::<DccpConn>() <= 16);
}

/// 6.12's `dccp_state_table`, transcribed from nf_conntrack_proto_dccp.c as its initializers
/// are written (eight cells a row, nine for the server's Reset: C fills the rest with 0,
/// `sNO`), independently of the module's table.
const KERNEL_TABLE: [[&str; 10]; 2] = [
    [
        // CT_DCCP_ROLE_CLIENT
        /* REQUEST */ "sRQ sRQ sRS sIG sIG sIG sIG sRQ",
        /* RESPONSE */ "sIV sIG sIG sIG sIG sIG sIG sIV",
        /* DATA */ "sIV sIV sIV sIV sOP sCR sCG sIV",
        /* ACK */ "sIV sIV sPO sPO sOP sCR sCG sIV",
        /* DATAACK */ "sIV sIV sPO sPO sOP sCR sCG sIV",
        /* CLOSEREQ */ "sIV sIV sIV sIV sIV sIV sIV sIV",
        /* CLOSE */ "sIV sIV sIV sCG sCG sCG sIV sIV",
        /* RESET */ "sIV sTW sTW sTW sTW sTW sTW sIG",
        /* SYNC */ "sIV sIG sIG sIG sIG sIG sIG sIG",
        /* SYNCACK */ "sIV sIG sIG sIG sIG sIG sIG sIG",
    ],
    [
        // CT_DCCP_ROLE_SERVER
        /* REQUEST */ "sIV sIG sIG sIG sIG sIG sIG sRQ",
        /* RESPONSE */ "sIV sRS sRS sIG sIG sIG sIG sIV",
        /* DATA */ "sIV sIV sIV sOP sOP sIV sCG sIV",
        /* ACK */ "sIV sIV sIV sOP sOP sIV sCG sIV",
        /* DATAACK */ "sIV sIV sIV sOP sOP sIV sCG sIV",
        /* CLOSEREQ */ "sIV sIV sIV sCR sCR sCR sCR sIV",
        /* CLOSE */ "sIV sIV sIV sCG sCG sIV sCG sIV",
        /* RESET */ "sIV sTW sTW sTW sTW sTW sTW sTW sIG",
        /* SYNC */ "sIV sIG sIG sIG sIG sIG sIG sIG",
        /* SYNCACK */ "sIV sIG sIG sIG sIG sIG sIG sIG",
    ],
];

/// The kernel's `#define sXX` names.
fn kernel_letters(s: DccpState) -> &'static str {
    match s {
        DccpState::None => "sNO",
        DccpState::Request => "sRQ",
        DccpState::Respond => "sRS",
        DccpState::PartOpen => "sPO",
        DccpState::Open => "sOP",
        DccpState::CloseReq => "sCR",
        DccpState::Closing => "sCG",
        DccpState::TimeWait => "sTW",
        DccpState::Ignore => "sIG",
        DccpState::Invalid => "sIV",
    }
}

#[test]
fn every_cell_of_both_state_tables() {
    let mut cells = 0;
    for (r, role) in [DccpRole::Client, DccpRole::Server].into_iter().enumerate() {
        for (t, ty) in DccpPktType::ALL.into_iter().enumerate() {
            let mut row: Vec<&str> = KERNEL_TABLE[r][t].split_whitespace().collect();
            assert!(row.len() <= 10);
            row.resize(10, "sNO");
            for (v, want) in row.into_iter().enumerate() {
                let state = DccpState::from_u8(v as u8).unwrap();
                let got = transition(role, ty, state);
                assert_eq!(
                    kernel_letters(got),
                    want,
                    "dccp_state_table[{r}][{ty:?}][{}]",
                    state.name()
                );
                assert_eq!(DCCP_STATE_TABLE[r][t][v], got);
                cells += 1;
            }
        }
    }
    assert_eq!(cells, 2 * 10 * 10);
}

#[test]
fn timeouts_of_every_state() {
    // `nf_conntrack_dccp_init_net`, in seconds: DCCP_MSL is 2 * 60 s.
    let want = [
        (DccpState::None, 240),
        (DccpState::Request, 240),
        (DccpState::Respond, 480),
        (DccpState::PartOpen, 480),
        (DccpState::Open, 43_200),
        (DccpState::CloseReq, 64),
        (DccpState::Closing, 64),
        (DccpState::TimeWait, 240),
        (DccpState::Ignore, 0),
        (DccpState::Invalid, 0),
    ];
    for (s, secs) in want {
        assert_eq!(state_timeout(&T, s), secs, "{s:?}");
    }
    assert_eq!(
        (
            T.dccp_request,
            T.dccp_respond,
            T.dccp_partopen,
            T.dccp_open,
            T.dccp_closereq,
            T.dccp_closing,
            T.dccp_timewait
        ),
        (240, 480, 480, 43_200, 64, 64, 240)
    );
    // Each sysctl drives its own state.
    let t = Timeouts {
        dccp_request: 1,
        dccp_respond: 2,
        dccp_partopen: 3,
        dccp_open: 4,
        dccp_closereq: 5,
        dccp_closing: 6,
        dccp_timewait: 7,
        ..T
    };
    for v in 0..8 {
        let s = DccpState::from_u8(v).unwrap();
        assert_eq!(state_timeout(&t, s), u32::from(v.max(1)));
    }
    assert!(DccpSettings::defaults().loose);
    assert_eq!(Settings::defaults().dccp, DccpSettings { loose: true });
    assert_eq!(Settings::default().dccp, DccpSettings::default());
}

#[test]
fn early_drop_and_clash() {
    for v in 0..10 {
        let s = DccpState::from_u8(v).unwrap();
        let st = L4State::Dccp(DccpConn {
            state: s,
            ..DccpConn::default()
        });
        let want = matches!(
            s,
            DccpState::CloseReq | DccpState::Closing | DccpState::TimeWait
        );
        assert_eq!(dccp_can_early_drop(s), want, "{s:?}");
        assert_eq!(l4proto::can_early_drop(DCCP, &st), want, "{s:?}");
    }
    assert!(!l4proto::can_early_drop(DCCP, &L4State::None));
    assert!(!l4proto::allow_clash(DCCP));
}

// ---------------------------------------------------------------------------------------------
// dccp_error

#[test]
fn header_fields_are_read_as_6_12_reads_them() {
    // 48-bit numbers: the reserved byte after the type is no part of the sequence number.
    let d = D::new(RESPONSE, 0x1234_5678_9abc).ack(0xfedc_ba98_7654);
    let h = dccp_error(&d.segment()[..], 0, any_sum).unwrap();
    assert_eq!(
        h,
        DccpHeader {
            ty: DccpPktType::Response,
            seq: 0x1234_5678_9abc,
            ack: Some(0xfedc_ba98_7654),
        }
    );
    // 24-bit numbers (Data, Ack, DataAck): the ack bits are still read as 8 bytes.
    let d = D::new(ACK, 0xab_cdef).x(false).ack(0x0001_0000_0002);
    let seg = d.segment();
    assert_eq!(seg.len(), 20);
    let h = dccp_error(&seg[..], 0, any_sum).unwrap();
    assert_eq!((h.seq, h.ack), (0xab_cdef, Some(0x0001_0000_0002)));
    // Request and Data carry no acknowledgement number.
    for (ty, x) in [(REQUEST, true), (DATA, false), (DATA, true)] {
        let h = dccp_error(&D::new(ty, 7).x(x).segment()[..], 0, any_sum).unwrap();
        assert_eq!((h.seq, h.ack), (7, None));
    }
    // Every type with X set, at an offset, with data after.
    for ty in REQUEST..=SYNCACK {
        let mut p = vec![0xffu8; 3];
        p.extend_from_slice(&D::new(ty, 99).ack(98).data(5).segment());
        let h = dccp_error(&p[..], 3, any_sum).unwrap();
        assert_eq!(h.ty as u8, ty);
        assert_eq!(h.seq, 99);
        assert_eq!(h.ack.is_some(), ty != REQUEST && ty != DATA);
        assert_eq!(h.ack.unwrap_or(98), 98);
    }
}

#[test]
fn every_truncation_of_every_header() {
    for ty in REQUEST..=SYNCACK {
        for x in [false, true] {
            let full = D::new(ty, 5).x(x).ack(4).segment();
            let hdrlen = 12 + if x { 4 } else { 0 } + packet_hdr_len(ty);
            assert_eq!(full.len(), hdrlen);
            let needs48 = !matches!(ty, DATA | ACK | DATAACK);
            for n in 0..=full.len() {
                // The data offset says the whole header, so a cut one is malformed.
                let got = dccp_error(&full[..n], 0, any_sum);
                let want = if n < 12 {
                    Err(DccpError::Short)
                } else if n < hdrlen {
                    Err(DccpError::Malformed)
                } else if needs48 && !x {
                    Err(DccpError::NoSeq48)
                } else {
                    Ok(())
                };
                assert_eq!(got.map(|_| ()), want, "type {ty} x {x} cut at {n}");
                // A data offset of 3 words passes that check: then the header read fails.
                let mut short = full[..n].to_vec();
                if n > 4 {
                    short[4] = 3;
                }
                let got = dccp_error(&short[..], 0, any_sum);
                let want = if n < 12 {
                    Err(DccpError::Short)
                } else if needs48 && !x {
                    Err(DccpError::NoSeq48)
                } else if n < hdrlen {
                    Err(DccpError::Truncated)
                } else {
                    Ok(())
                };
                assert_eq!(got.map(|_| ()), want, "type {ty} x {x} doff 3 cut at {n}");
            }
        }
    }
    // Offsets at or past the end, up to usize::MAX: short, no panic.
    let seg = D::new(REQUEST, 1).segment();
    for off in [
        seg.len() - 11,
        seg.len(),
        seg.len() + 1,
        usize::MAX - 5,
        usize::MAX,
    ] {
        assert_eq!(dccp_error(&seg[..], off, any_sum), Err(DccpError::Short));
    }
}

#[test]
fn data_offset_bounds() {
    let base = D::new(REQUEST, 1).data(8);
    let len = base.segment().len();
    assert_eq!(len, 28);
    for doff in 0..=255u8 {
        let d = D {
            doff: Some(doff),
            ..base.clone()
        };
        let got = dccp_error(&d.segment()[..], 0, any_sum);
        let bytes = usize::from(doff) * 4;
        if !(12..=len).contains(&bytes) {
            assert_eq!(got, Err(DccpError::Malformed), "doff {doff}");
        } else {
            assert!(got.is_ok(), "doff {doff}");
        }
    }
}

#[test]
fn checksum_coverage_rules() {
    let base = D::new(DATAACK, 1).ack(1).data(13);
    let len = base.segment().len();
    assert_eq!(len, 37);
    for cscov in 0..16u8 {
        let d = D {
            cscov,
            ..base.clone()
        };
        let mut asked = None;
        let got = dccp_error(&d.segment()[..], 0, |c| {
            asked = Some(c);
            true
        });
        // 0: the whole packet; else (CsCov - 1) * 4 bytes from the header's start.
        let cov = if cscov == 0 {
            len
        } else {
            (usize::from(cscov) - 1) * 4
        };
        if cov > len {
            assert_eq!(got, Err(DccpError::BadCoverage), "cscov {cscov}");
            assert_eq!(asked, None, "checksummed a bad coverage");
        } else {
            assert!(got.is_ok(), "cscov {cscov}");
            assert_eq!(asked, Some(cov), "cscov {cscov}");
        }
    }
    // The CCVal nibble is no part of it.
    let d = D {
        cscov: 2,
        ..base.clone()
    };
    let mut seg = d.segment();
    seg[5] |= 0xf0;
    let mut asked = None;
    dccp_error(&seg[..], 0, |c| {
        asked = Some(c);
        true
    })
    .unwrap();
    assert_eq!(asked, Some(4));
}

#[test]
fn checks_run_in_6_12_order() {
    // Malformed before coverage before checksum before type before X before the header read.
    let d = D {
        doff: Some(2),
        cscov: 15,
        ty: 12,
        x: false,
        ..D::new(0, 0)
    };
    let seg = d.segment();
    let never = |_: usize| -> bool { panic!("checksum tested") };
    assert_eq!(dccp_error(&seg[..], 0, never), Err(DccpError::Malformed));
    let d = D { doff: None, ..d };
    assert_eq!(
        dccp_error(&d.segment()[..], 0, never),
        Err(DccpError::BadCoverage)
    );
    let d = D { cscov: 0, ..d };
    assert_eq!(
        dccp_error(&d.segment()[..], 0, |_| false),
        Err(DccpError::BadChecksum)
    );
    assert_eq!(
        dccp_error(&d.segment()[..], 0, any_sum),
        Err(DccpError::ReservedType)
    );
    let d = D { ty: CLOSE, ..d };
    assert_eq!(
        dccp_error(&d.segment()[..], 0, any_sum),
        Err(DccpError::NoSeq48)
    );
    // A data offset of the generic header only: the rest is read past it, and may be cut.
    let seg = D {
        x: true,
        doff: Some(3),
        ..d
    }
    .segment();
    assert_eq!(seg.len(), 24);
    assert!(dccp_error(&seg[..], 0, any_sum).is_ok());
    assert_eq!(
        dccp_error(&seg[..23], 0, any_sum),
        Err(DccpError::Truncated)
    );
    // Messages as 6.12 logs them; the two failed header pulls log nothing.
    assert_eq!(DccpError::Short.msg(), None);
    assert_eq!(DccpError::Truncated.msg(), None);
    assert_eq!(
        DccpError::NoSeq48.msg(),
        Some("nf_ct_dccp: type lacks 48bit sequence numbers")
    );
    assert_eq!(
        DccpError::BadChecksum.msg(),
        Some("nf_ct_dccp: bad checksum ")
    );
}

#[test]
fn reserved_types_and_seq48_for_every_type_byte() {
    for byte in 0..=255u8 {
        let ty = (byte >> 1) & 0x0f;
        let x = byte & 1 != 0;
        let mut seg = D::new(ty.min(SYNCACK), 1).x(true).data(16).segment();
        seg[8] = byte;
        let got = dccp_error(&seg[..], 0, any_sum).map(|h| h.ty as u8);
        if ty >= 10 {
            assert_eq!(got, Err(DccpError::ReservedType), "{byte:#x}");
        } else if !x && !matches!(ty, DATA | ACK | DATAACK) {
            assert_eq!(got, Err(DccpError::NoSeq48), "{byte:#x}");
        } else {
            // The three reserved bits are ignored.
            assert_eq!(got, Ok(ty), "{byte:#x}");
        }
    }
}

/// A small deterministic generator for the robustness tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }
}

#[test]
fn random_headers_never_panic() {
    let mut r = Rng(0xdcc9);
    for _ in 0..20_000 {
        let n = (r.next() % 40) as usize;
        let mut p: Vec<u8> = (0..n).map(|_| r.next() as u8).collect();
        if n > 8 && r.next().is_multiple_of(2) {
            // Mostly valid type bytes and offsets, to get past the first checks.
            p[8] = (((r.next() % 10) as u8) << 1) | 1;
            p[4] = (3 + r.next() % 5) as u8;
            p[5] &= 0xf0;
        }
        let off = (r.next() % 4) as usize;
        if let Ok(h) = dccp_error(&p[..], off, |c| c <= n - off) {
            assert!(h.seq < 1 << 48);
            assert!(h.ack.is_none_or(|a| a < 1 << 48));
            assert_eq!(h.ack.is_some(), h.ty.has_ack());
            let mut conn = DccpConn {
                state: DccpState::from_u8((r.next() % 8) as u8).unwrap(),
                ..DccpConn::default()
            };
            for dir in [Dir::Original, Dir::Reply] {
                let a = dccp_packet(&mut conn, &h, dir, r.next() & 0xffff, HZ, &T);
                assert!(conn.state as u8 <= DccpState::TimeWait as u8);
                if !a.accept {
                    assert!(a.refresh.is_none() && !a.kill && !a.set_assured);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// dccp_new and dccp_packet, directly.

fn hdr(ty: DccpPktType, seq: u64, ack: Option<u64>) -> DccpHeader {
    DccpHeader { ty, seq, ack }
}

#[test]
fn only_a_request_starts_a_connection_loose_or_not() {
    for loose in [false, true] {
        let s = DccpSettings { loose };
        for ty in DccpPktType::ALL {
            let got = dccp_new(&hdr(ty, 1, Some(0)), &s);
            if ty == DccpPktType::Request {
                assert_eq!(got, Ok(DccpConn::default()));
            } else {
                assert_eq!(got, Err("invalid state transition "), "{ty:?}");
            }
        }
    }
    let c = DccpConn::default();
    assert_eq!(c.role, [DccpRole::Client, DccpRole::Server]);
    assert_eq!(
        (c.state, c.last_pkt, c.last_dir, c.handshake_seq),
        (DccpState::None, DccpPktType::Request, Dir::Original, 0)
    );
}

#[test]
fn every_packet_in_every_state_keeps_the_promises() {
    // For both role assignments, every stored state, type, direction and last packet: what
    // changes, and only that.
    for swapped in [false, true] {
        for v in 0..8 {
            for ty in DccpPktType::ALL {
                for dir in [Dir::Original, Dir::Reply] {
                    for last in [DccpPktType::Request, DccpPktType::Data] {
                        for seen in [0, IPS_SEEN_REPLY] {
                            let before = DccpConn {
                                role: if swapped {
                                    [DccpRole::Server, DccpRole::Client]
                                } else {
                                    [DccpRole::Client, DccpRole::Server]
                                },
                                state: DccpState::from_u8(v).unwrap(),
                                last_pkt: last,
                                last_dir: dir.reverse(),
                                handshake_seq: 77,
                            };
                            check_packet(before, ty, dir, seen);
                        }
                    }
                }
            }
        }
    }
}

/// One packet on `before`, against 6.12's code read independently.
fn check_packet(before: DccpConn, ty: DccpPktType, dir: Dir, seen: u32) {
    let h = hdr(ty, 500, ty.has_ack().then_some(77));
    let mut c = before;
    let a = dccp_packet(&mut c, &h, dir, seen, HZ, &T);
    let ctx = format!("{before:?} {ty:?} {dir:?} {seen}");
    if ty == DccpPktType::Reset && seen == 0 {
        assert_eq!(c, before, "{ctx}");
        assert!(a.accept && a.kill && a.refresh.is_none(), "{ctx}");
        return;
    }
    assert!(!a.kill);
    let role = before.role[dir as usize];
    let cell = transition(role, ty, before.state);
    match cell {
        DccpState::Invalid => {
            assert_eq!(c, before, "{ctx}");
            assert!(!a.accept && a.refresh.is_none() && !a.protoinfo, "{ctx}");
            assert_eq!(a.log, Some("invalid state transition"));
        }
        DccpState::Ignore
            if !(before.last_dir == dir.reverse()
                && before.last_pkt == DccpPktType::Request
                && ty == DccpPktType::Response) =>
        {
            let want = DccpConn {
                last_dir: dir,
                last_pkt: ty,
                ..before
            };
            assert_eq!(c, want, "{ctx}");
            assert!(a.accept && a.refresh.is_none() && !a.protoinfo, "{ctx}");
            assert_eq!(a.log, Some("invalid packet"));
        }
        _ => {
            let resync = cell == DccpState::Ignore;
            let new = if resync { DccpState::Respond } else { cell };
            assert_eq!(c.state, new, "{ctx}");
            assert_eq!((c.last_dir, c.last_pkt), (dir, ty), "{ctx}");
            assert!(a.accept, "{ctx}");
            assert_eq!(a.refresh, Some(state_timeout(&T, new) * HZ), "{ctx}");
            assert_eq!(a.protoinfo, new != before.state, "{ctx}");
            let reversed = new == DccpState::Request
                && before.state == DccpState::TimeWait
                && role == DccpRole::Server;
            let client = if resync || reversed {
                Some(if resync { dir.reverse() } else { dir })
            } else {
                None
            };
            match client {
                Some(cl) => {
                    assert_eq!(c.role[cl as usize], DccpRole::Client, "{ctx}");
                    assert_eq!(c.role[cl.reverse() as usize], DccpRole::Server, "{ctx}");
                }
                None => assert_eq!(c.role, before.role, "{ctx}"),
            }
            let stores_seq =
                resync || (new == DccpState::Respond && before.state == DccpState::Request);
            assert_eq!(c.handshake_seq, if stores_seq { 500 } else { 77 }, "{ctx}");
            let assured = new == DccpState::PartOpen
                && before.state == DccpState::Respond
                && ty == DccpPktType::Ack;
            assert_eq!(a.set_assured, assured, "{ctx}");
        }
    }
}

#[test]
fn the_ack_must_acknowledge_the_response() {
    let responded = DccpConn {
        state: DccpState::Respond,
        handshake_seq: 0x0000_1234_5678_9abc,
        ..DccpConn::default()
    };
    for (ack, assured) in [
        (Some(0x0000_1234_5678_9abc), true),
        (Some(0x0000_1234_5678_9abd), false),
        (Some(0x0000_0000_5678_9abc), false),
        (None, false),
    ] {
        let mut c = responded;
        let a = dccp_packet(
            &mut c,
            &hdr(DccpPktType::Ack, 1, ack),
            Dir::Original,
            IPS_SEEN_REPLY,
            HZ,
            &T,
        );
        assert_eq!(c.state, DccpState::PartOpen);
        assert_eq!(a.set_assured, assured, "{ack:?}");
    }
    // A DataAck moves on to PARTOPEN too, never assured; nor is a second Ack in PARTOPEN.
    for (ty, state) in [
        (DccpPktType::DataAck, DccpState::Respond),
        (DccpPktType::Ack, DccpState::PartOpen),
    ] {
        let mut c = DccpConn { state, ..responded };
        let a = dccp_packet(
            &mut c,
            &hdr(ty, 1, Some(responded.handshake_seq)),
            Dir::Original,
            IPS_SEEN_REPLY,
            HZ,
            &T,
        );
        assert_eq!((c.state, a.set_assured), (DccpState::PartOpen, false));
    }
    // The Response's sequence number is what is stored, not its ack.
    let mut c = DccpConn {
        state: DccpState::Request,
        ..DccpConn::default()
    };
    dccp_packet(
        &mut c,
        &hdr(DccpPktType::Response, 900, Some(5)),
        Dir::Reply,
        0,
        HZ,
        &T,
    );
    assert_eq!((c.state, c.handshake_seq), (DccpState::Respond, 900));
    // A retransmitted Response leaves it alone.
    dccp_packet(
        &mut c,
        &hdr(DccpPktType::Response, 901, Some(5)),
        Dir::Reply,
        IPS_SEEN_REPLY,
        HZ,
        &T,
    );
    assert_eq!((c.state, c.handshake_seq), (DccpState::Respond, 900));
}

// ---------------------------------------------------------------------------------------------
// Whole connections through the pipeline.

/// The two endpoints: A sends first in most tests.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    A,
    B,
}

use Side::{A, B};

/// What the core did with a packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Out {
    /// Accepted with the entry.
    Accept,
    /// Counted invalid.
    Invalid,
}

/// Two endpoints and the module's pipeline between them (PRE_ROUTING, then LOCAL_IN).
struct Sim {
    ct: HostCt,
    now: u32,
    v6: bool,
}

impl Sim {
    fn new(v6: bool) -> Sim {
        Sim::with(v6, Settings::defaults())
    }

    fn with(v6: bool, s: Settings) -> Sim {
        Sim {
            ct: HostCt::with(s),
            // 100 s before nfct_time_stamp wraps: the timeouts cross it.
            now: u32::MAX - 100 * HZ,
            v6,
        }
    }

    fn tick(&mut self, secs: u32) {
        self.now = self.now.wrapping_add(secs * HZ);
    }

    fn send(&mut self, from: Side, d: D) -> Out {
        let p = d.v6(self.v6).packet_from(from);
        let l3 = if self.v6 { L3::Ipv6 } else { L3::Ipv4 };
        let invalid = self.ct.stat(Stat::Invalid);
        let v = receive(&self.ct, &p, l3, self.now, HZ);
        assert_eq!(v, (Verdict::Accept, Verdict::Accept));
        if let Some(a) = self.last() {
            if a.verdict != L4Verdict::Accept {
                assert!(a.refresh.is_none() && !a.kill && !a.set_assured);
            }
        }
        if self.ct.stat(Stat::Invalid) > invalid {
            Out::Invalid
        } else {
            Out::Accept
        }
    }

    fn last(&self) -> Option<L4Action> {
        self.ct.seen.borrow().last().map(|s| s.action)
    }

    fn entry(&self) -> Option<Rc<HostEntry>> {
        let table = self.ct.table.borrow();
        assert!(table.len() <= 1, "one connection at a time");
        table.first().cloned()
    }

    fn conn(&self) -> DccpConn {
        match self.entry().expect("no entry").l4() {
            L4State::Dccp(c) => c,
            other => panic!("not a DCCP entry: {other:?}"),
        }
    }

    fn state(&self) -> Option<DccpState> {
        self.entry().map(|_| self.conn().state)
    }

    /// Jiffies left.
    fn left(&self) -> u32 {
        self.entry()
            .expect("no entry")
            .timeout()
            .wrapping_sub(self.now)
    }

    fn status(&self) -> u32 {
        self.entry().expect("no entry").status()
    }

    fn assured(&self) -> bool {
        self.status() & IPS_ASSURED != 0
    }

    /// Sends, then checks the outcome, the state and the timeout that state gives.
    #[track_caller]
    fn expect(&mut self, from: Side, d: D, out: Out, state: DccpState) {
        let before = self.entry().map(|e| e.timeout());
        let got = self.send(from, d.clone());
        assert_eq!(got, out, "{d:?}");
        let refreshed = got == Out::Accept && self.last().is_some_and(|a| a.refresh.is_some());
        assert_eq!(self.state(), Some(state), "{d:?}");
        if refreshed {
            assert_eq!(self.left(), state_timeout(&T, state) * HZ, "{d:?}");
        } else {
            assert_eq!(self.entry().map(|e| e.timeout()), before, "{d:?}");
        }
    }

    /// Request (client seq 100), Response (server seq 500), Ack: PARTOPEN, assured.
    fn handshake(&mut self) {
        self.expect(A, D::new(REQUEST, 100), Out::Accept, DccpState::Request);
        assert!(!self.assured());
        self.expect(
            B,
            D::new(RESPONSE, 500).ack(100),
            Out::Accept,
            DccpState::Respond,
        );
        assert_eq!(self.conn().handshake_seq, 500);
        assert!(!self.assured());
        self.expect(
            A,
            D::new(ACK, 101).ack(500),
            Out::Accept,
            DccpState::PartOpen,
        );
        assert!(self.assured());
    }

    fn open(&mut self) {
        self.handshake();
        self.expect(
            B,
            D::new(DATAACK, 501).ack(101).data(10),
            Out::Accept,
            DccpState::Open,
        );
    }
}

fn both_families(f: impl Fn(&mut Sim)) {
    for v6 in [false, true] {
        let mut sim = Sim::new(v6);
        f(&mut sim);
    }
}

#[test]
fn handshake_data_and_server_close() {
    both_families(|sim| {
        sim.handshake();
        let c = sim.conn();
        assert_eq!(c.role, [DccpRole::Client, DccpRole::Server]);
        assert_eq!((c.last_pkt, c.last_dir), (DccpPktType::Ack, Dir::Original));
        // The client may not send Data in PARTOPEN (8.1.5): DataAck only.
        sim.expect(
            A,
            D::new(DATA, 102).x(false),
            Out::Invalid,
            DccpState::PartOpen,
        );
        sim.expect(
            A,
            D::new(DATAACK, 102).ack(500).data(3),
            Out::Accept,
            DccpState::PartOpen,
        );
        // Any server packet but Response, Reset or Sync opens.
        sim.tick(100);
        sim.expect(
            B,
            D::new(DATA, 501).x(false).data(8),
            Out::Accept,
            DccpState::Open,
        );
        sim.expect(
            A,
            D::new(DATA, 103).x(false).data(8),
            Out::Accept,
            DccpState::Open,
        );
        sim.expect(
            A,
            D::new(ACK, 104).x(false).ack(501),
            Out::Accept,
            DccpState::Open,
        );
        sim.expect(B, D::new(SYNC, 502).ack(104), Out::Accept, DccpState::Open);
        sim.expect(
            A,
            D::new(SYNCACK, 105).ack(502),
            Out::Accept,
            DccpState::Open,
        );
        // The server asks the client to close; the client may not.
        sim.expect(
            A,
            D::new(CLOSEREQ, 106).ack(502),
            Out::Invalid,
            DccpState::Open,
        );
        sim.expect(
            B,
            D::new(CLOSEREQ, 503).ack(105),
            Out::Accept,
            DccpState::CloseReq,
        );
        // Data from the server now is invalid; from the client it may be processed.
        sim.expect(
            B,
            D::new(DATA, 504).x(false),
            Out::Invalid,
            DccpState::CloseReq,
        );
        sim.expect(
            A,
            D::new(DATA, 106).x(false),
            Out::Accept,
            DccpState::CloseReq,
        );
        sim.expect(
            A,
            D::new(CLOSE, 107).ack(503),
            Out::Accept,
            DccpState::Closing,
        );
        sim.expect(
            B,
            D::new(RESET, 504).ack(107),
            Out::Accept,
            DccpState::TimeWait,
        );
        // A server's Reset in TIMEWAIT refreshes it; a client's is ignored.
        sim.tick(10);
        sim.expect(
            B,
            D::new(RESET, 505).ack(107),
            Out::Accept,
            DccpState::TimeWait,
        );
        sim.tick(10);
        sim.expect(
            A,
            D::new(RESET, 108).ack(505),
            Out::Accept,
            DccpState::TimeWait,
        );
        assert_eq!(sim.left(), 230 * HZ);
        // Late Data and a Close after the end are invalid.
        sim.expect(
            A,
            D::new(DATAACK, 109).ack(505),
            Out::Invalid,
            DccpState::TimeWait,
        );
        sim.expect(
            A,
            D::new(CLOSE, 109).ack(505),
            Out::Invalid,
            DccpState::TimeWait,
        );
        assert!(sim.assured());
        // It expires with the TIMEWAIT timeout.
        sim.tick(231);
        sim.send(A, D::new(DATA, 1).x(false));
        assert!(sim.entry().is_none());
    });
}

#[test]
fn client_close() {
    both_families(|sim| {
        sim.open();
        sim.expect(
            A,
            D::new(CLOSE, 110).ack(501),
            Out::Accept,
            DccpState::Closing,
        );
        // The client retransmits its Close: invalid in CLOSING (6.12's cell says sIV).
        sim.expect(
            A,
            D::new(CLOSE, 111).ack(501),
            Out::Invalid,
            DccpState::Closing,
        );
        // The server may still send, and Close too (simultaneous).
        sim.expect(
            B,
            D::new(DATAACK, 502).ack(110),
            Out::Accept,
            DccpState::Closing,
        );
        sim.expect(
            B,
            D::new(CLOSE, 503).ack(110),
            Out::Accept,
            DccpState::Closing,
        );
        sim.expect(
            B,
            D::new(RESET, 504).ack(111),
            Out::Accept,
            DccpState::TimeWait,
        );
    });
}

#[test]
fn server_close_from_partopen_and_closereq_after_close() {
    both_families(|sim| {
        sim.handshake();
        // CloseReq from the server in PARTOPEN goes straight to CLOSEREQ.
        sim.expect(
            B,
            D::new(CLOSEREQ, 501).ack(101),
            Out::Accept,
            DccpState::CloseReq,
        );
        sim.expect(
            A,
            D::new(CLOSE, 102).ack(501),
            Out::Accept,
            DccpState::Closing,
        );
        // The server may repeat its CloseReq in CLOSING.
        sim.expect(
            B,
            D::new(CLOSEREQ, 502).ack(102),
            Out::Accept,
            DccpState::CloseReq,
        );
        // A server's Close after its CloseReq is invalid.
        sim.expect(
            B,
            D::new(CLOSE, 503).ack(102),
            Out::Invalid,
            DccpState::CloseReq,
        );
    });
}

#[test]
fn reset_before_any_reply_kills_the_entry() {
    for (from, ty) in [(B, RESET), (A, RESET)] {
        let mut sim = Sim::new(false);
        sim.expect(A, D::new(REQUEST, 100), Out::Accept, DccpState::Request);
        assert_eq!(sim.send(from, D::new(ty, 500).ack(100)), Out::Accept);
        assert!(sim.entry().is_none(), "{from:?}");
        assert_eq!(sim.ct.kills.get(), 1);
        let a = sim.last().unwrap();
        assert!(a.kill && a.refresh.is_none());
    }
    // After a reply, a Reset is a state transition like any other.
    let mut sim = Sim::new(true);
    sim.expect(A, D::new(REQUEST, 100), Out::Accept, DccpState::Request);
    sim.expect(
        B,
        D::new(RESPONSE, 500).ack(100),
        Out::Accept,
        DccpState::Respond,
    );
    sim.expect(
        A,
        D::new(RESET, 101).ack(500),
        Out::Accept,
        DccpState::TimeWait,
    );
    assert_eq!(sim.ct.kills.get(), 0);
}

#[test]
fn only_a_request_makes_an_entry() {
    for loose in [false, true] {
        for ty in [
            RESPONSE, DATA, ACK, DATAACK, CLOSEREQ, CLOSE, RESET, SYNC, SYNCACK,
        ] {
            let mut sim = Sim::with(
                true,
                Settings {
                    dccp: DccpSettings { loose },
                    ..Settings::defaults()
                },
            );
            assert_eq!(sim.send(A, D::new(ty, 1).ack(1)), Out::Invalid, "{ty}");
            assert!(sim.entry().is_none());
            assert!(sim.ct.unconfirmed.borrow().is_empty());
        }
    }
    let mut sim = Sim::new(false);
    assert_eq!(sim.send(A, D::new(REQUEST, 1)), Out::Accept);
    assert_eq!(sim.state(), Some(DccpState::Request));
    assert_eq!(sim.left(), 240 * HZ);
    assert!(sim.last().unwrap().protoinfo);
}

#[test]
fn handshake_quirks() {
    both_families(|sim| {
        sim.expect(A, D::new(REQUEST, 100), Out::Accept, DccpState::Request);
        // Only the server answers, and the client sends nothing else yet.
        sim.expect(
            A,
            D::new(RESPONSE, 1).ack(1),
            Out::Accept,
            DccpState::Request,
        );
        sim.expect(A, D::new(ACK, 101).ack(1), Out::Invalid, DccpState::Request);
        sim.expect(B, D::new(REQUEST, 1), Out::Accept, DccpState::Request);
        // A retransmitted Request refreshes REQUEST.
        sim.tick(30);
        sim.expect(A, D::new(REQUEST, 101), Out::Accept, DccpState::Request);
        sim.expect(
            B,
            D::new(RESPONSE, 500).ack(101),
            Out::Accept,
            DccpState::Respond,
        );
        // A retransmitted Response keeps the first sequence number.
        sim.expect(
            B,
            D::new(RESPONSE, 501).ack(101),
            Out::Accept,
            DccpState::Respond,
        );
        assert_eq!(sim.conn().handshake_seq, 500);
        // The server sends nothing but Responses before the client's Ack.
        sim.expect(
            B,
            D::new(DATAACK, 502).ack(101),
            Out::Invalid,
            DccpState::Respond,
        );
        // An Ack of the wrong number: PARTOPEN, not assured.
        sim.expect(
            A,
            D::new(ACK, 102).ack(501),
            Out::Accept,
            DccpState::PartOpen,
        );
        assert!(!sim.assured());
        // Nor later by the right one: the handshake is over.
        sim.expect(
            A,
            D::new(ACK, 103).ack(500),
            Out::Accept,
            DccpState::PartOpen,
        );
        assert!(!sim.assured());
        sim.expect(B, D::new(ACK, 502).ack(103), Out::Accept, DccpState::Open);
        assert!(!sim.assured());
    });
}

#[test]
fn ignored_request_then_response_resyncs() {
    both_families(|sim| {
        sim.open();
        let left = sim.left();
        // The client opens again (a reincarnation the tracker did not see end): ignored.
        sim.expect(A, D::new(REQUEST, 7000), Out::Accept, DccpState::Open);
        assert_eq!(sim.left(), left);
        let c = sim.conn();
        assert_eq!(
            (c.last_pkt, c.last_dir),
            (DccpPktType::Request, Dir::Original)
        );
        // The server's Response to it resyncs the tracker.
        sim.expect(
            B,
            D::new(RESPONSE, 9000).ack(7000),
            Out::Accept,
            DccpState::Respond,
        );
        let c = sim.conn();
        assert_eq!(c.role, [DccpRole::Client, DccpRole::Server]);
        assert_eq!(c.handshake_seq, 9000);
        sim.expect(
            A,
            D::new(ACK, 7001).ack(9000),
            Out::Accept,
            DccpState::PartOpen,
        );
    });
}

#[test]
fn ignored_request_from_the_server_reverses_roles() {
    both_families(|sim| {
        sim.open();
        // B opens towards A: a server's Request in OPEN is ignored...
        sim.expect(B, D::new(REQUEST, 7000), Out::Accept, DccpState::Open);
        // ...and a Response from A, in the client's role, is too, but it answers the
        // ignored Request: A becomes the server.
        sim.expect(
            A,
            D::new(RESPONSE, 9000).ack(7000),
            Out::Accept,
            DccpState::Respond,
        );
        let c = sim.conn();
        assert_eq!(c.role, [DccpRole::Server, DccpRole::Client]);
        assert_eq!(c.handshake_seq, 9000);
        // B, the client now, acknowledges; A, the server, opens.
        sim.expect(
            B,
            D::new(ACK, 7001).ack(9000),
            Out::Accept,
            DccpState::PartOpen,
        );
        sim.expect(
            A,
            D::new(DATAACK, 9001).ack(7001),
            Out::Accept,
            DccpState::Open,
        );
        sim.expect(
            A,
            D::new(CLOSEREQ, 9002).ack(7001),
            Out::Accept,
            DccpState::CloseReq,
        );
        sim.expect(
            B,
            D::new(CLOSE, 7002).ack(9002),
            Out::Accept,
            DccpState::Closing,
        );
    });
}

#[test]
fn ignored_packets_that_do_not_resync() {
    both_families(|sim| {
        sim.open();
        // A Sync in between: the Response no longer answers the Request.
        sim.expect(A, D::new(REQUEST, 7000), Out::Accept, DccpState::Open);
        sim.expect(A, D::new(SYNC, 7001).ack(1), Out::Accept, DccpState::Open);
        sim.expect(
            B,
            D::new(RESPONSE, 9000).ack(7000),
            Out::Accept,
            DccpState::Open,
        );
        let c = sim.conn();
        assert_eq!(
            (c.last_pkt, c.last_dir),
            (DccpPktType::Response, Dir::Reply)
        );
        // A Response in the Request's own direction does not either.
        sim.expect(A, D::new(REQUEST, 7002), Out::Accept, DccpState::Open);
        sim.expect(
            A,
            D::new(RESPONSE, 7003).ack(1),
            Out::Accept,
            DccpState::Open,
        );
        // An invalid packet in between is not remembered: the resync still happens.
        sim.expect(B, D::new(REQUEST, 9001), Out::Accept, DccpState::Open);
        sim.expect(
            A,
            D::new(CLOSEREQ, 7004).ack(1),
            Out::Invalid,
            DccpState::Open,
        );
        sim.expect(
            A,
            D::new(RESPONSE, 7005).ack(9001),
            Out::Accept,
            DccpState::Respond,
        );
        assert_eq!(sim.conn().role, [DccpRole::Server, DccpRole::Client]);
        assert_eq!(sim.conn().handshake_seq, 7005);
    });
}

#[test]
fn reincarnation_after_timewait() {
    both_families(|sim| {
        sim.open();
        sim.expect(
            A,
            D::new(CLOSE, 110).ack(501),
            Out::Accept,
            DccpState::Closing,
        );
        sim.expect(
            B,
            D::new(RESET, 502).ack(110),
            Out::Accept,
            DccpState::TimeWait,
        );
        // The client opens again: same roles.
        sim.expect(A, D::new(REQUEST, 2000), Out::Accept, DccpState::Request);
        assert_eq!(sim.conn().role, [DccpRole::Client, DccpRole::Server]);
        sim.expect(
            B,
            D::new(RESPONSE, 3000).ack(2000),
            Out::Accept,
            DccpState::Respond,
        );
        sim.expect(
            A,
            D::new(RESET, 2001).ack(3000),
            Out::Accept,
            DccpState::TimeWait,
        );
        // The server opens: roles reversed.
        sim.expect(B, D::new(REQUEST, 4000), Out::Accept, DccpState::Request);
        assert_eq!(sim.conn().role, [DccpRole::Server, DccpRole::Client]);
        sim.expect(
            B,
            D::new(RESPONSE, 1).ack(1),
            Out::Accept,
            DccpState::Request,
        );
        sim.expect(
            A,
            D::new(RESPONSE, 5000).ack(4000),
            Out::Accept,
            DccpState::Respond,
        );
        assert_eq!(sim.conn().handshake_seq, 5000);
        sim.expect(
            B,
            D::new(ACK, 4001).ack(5000),
            Out::Accept,
            DccpState::PartOpen,
        );
        sim.expect(A, D::new(DATA, 5001).x(false), Out::Accept, DccpState::Open);
    });
}

#[test]
fn timeouts_follow_the_settings() {
    let t = Timeouts {
        dccp_request: 11,
        dccp_respond: 12,
        dccp_partopen: 13,
        dccp_open: 14,
        dccp_closereq: 15,
        dccp_closing: 16,
        dccp_timewait: 17,
        ..T
    };
    let mut sim = Sim::with(
        false,
        Settings {
            timeouts: t,
            ..Settings::defaults()
        },
    );
    let steps = [
        (A, D::new(REQUEST, 100), 11),
        (B, D::new(RESPONSE, 500).ack(100), 12),
        (A, D::new(ACK, 101).ack(500), 13),
        (B, D::new(DATAACK, 501).ack(101), 14),
        (B, D::new(CLOSEREQ, 502).ack(101), 15),
        (A, D::new(CLOSE, 102).ack(502), 16),
        (B, D::new(RESET, 503).ack(102), 17),
    ];
    for (from, d, secs) in steps {
        assert_eq!(sim.send(from, d), Out::Accept);
        assert_eq!(sim.left(), secs * HZ);
    }
}

#[test]
fn checksums_at_pre_routing_with_coverage() {
    for v6 in [false, true] {
        let base = D::new(REQUEST, 100).data(40).v6(v6);
        let l3 = if v6 { L3::Ipv6 } else { L3::Ipv4 };
        let dataoff = if v6 { 40 } else { 20 };
        // Whole, and partial coverages 6.12 counts from the header's start.
        for cscov in [0, 3, 4, 10, 15] {
            let ct = HostCt::default();
            let d = D {
                cscov,
                ..base.clone()
            };
            let p = d.packet_from(A);
            receive(&ct, &p, l3, 1000, HZ);
            assert_eq!(ct.stat(Stat::Invalid), 0, "cscov {cscov}");
            assert_eq!(ct.table.borrow().len(), 1);
            // A byte changed beyond the coverage goes unnoticed; within it, not.
            let cov = if cscov == 0 {
                p.len() - dataoff
            } else {
                (usize::from(cscov) - 1) * 4
            };
            let ct = HostCt::default();
            let mut q = p.clone();
            if dataoff + cov < q.len() {
                *q.last_mut().unwrap() ^= 1;
                receive(&ct, &q, l3, 1000, HZ);
                assert_eq!(ct.stat(Stat::Invalid), 0, "cscov {cscov}");
            }
            let ct = HostCt::default();
            let mut q = p.clone();
            q[dataoff + 6] ^= 0x10;
            receive(&ct, &q, l3, 1000, HZ);
            assert_eq!(ct.stat(Stat::Invalid), 1, "cscov {cscov}");
            assert!(ct.table.borrow().is_empty());
        }
        // A sum over RFC 4340's coverage (past the data offset) fails 6.12's.
        let ct = HostCt::default();
        let d = D {
            cscov: 3,
            csum_over: Some(20 + 8),
            ..base.clone()
        };
        receive(&ct, &d.packet_from(A), l3, 1000, HZ);
        assert_eq!(ct.stat(Stat::Invalid), 1);
        // Outgoing packets' sums are not checked.
        let ct = HostCt::default();
        let d = D {
            bad_csum: true,
            ..base.clone()
        };
        let p = d.packet_from(A);
        let pk = Pkt {
            bytes: &p,
            nf: None,
        };
        let out = ctx(Hook::LocalOut, l3, 0x77, 1000, HZ);
        crate::host_ct::run_hook(&ct, HookRole::Track, &pk, &out);
        assert_eq!(ct.stat(Stat::Invalid), 0);
        receive(&ct, &p, l3, 1000, HZ);
        assert_eq!(ct.stat(Stat::Invalid), 1);
    }
}

#[test]
fn malformed_headers_through_the_pipeline() {
    for v6 in [false, true] {
        let l3 = if v6 { L3::Ipv6 } else { L3::Ipv4 };
        let bad = [
            D {
                doff: Some(2),
                ..D::new(REQUEST, 1)
            },
            D {
                doff: Some(9),
                ..D::new(REQUEST, 1)
            },
            D {
                cscov: 15,
                ..D::new(REQUEST, 1)
            },
            D {
                ty: 11,
                ..D::new(REQUEST, 1)
            },
            D::new(REQUEST, 1).x(false),
            D::new(RESET, 1).x(false),
        ];
        for d in bad {
            let ct = HostCt::default();
            receive(&ct, &d.clone().v6(v6).packet_from(A), l3, 1000, HZ);
            assert_eq!(ct.stat(Stat::Invalid), 1, "{d:?}");
            assert!(ct.table.borrow().is_empty());
        }
        // Cut anywhere in the header (IP lengths consistent): invalid, or no tuple at all.
        let full = D::new(RESPONSE, 1).v6(v6).segment();
        for n in 0..full.len() {
            let ct = HostCt::default();
            let p = if v6 {
                Ipv6::new(DCCP, A6, B6).build(&full[..n])
            } else {
                Ipv4::new(DCCP, A4, B4).build(&full[..n])
            };
            receive(&ct, &p, l3, 1000, HZ);
            assert_eq!(ct.stat(Stat::Invalid), 1, "cut at {n}");
            assert!(ct.table.borrow().is_empty());
        }
    }
}

#[test]
fn established_entry_ignores_malformed_packets() {
    let mut sim = Sim::new(false);
    sim.open();
    let before = (sim.conn(), sim.entry().unwrap().timeout());
    sim.tick(5);
    let bad = D {
        bad_csum: true,
        ..D::new(CLOSE, 110).ack(501)
    };
    assert_eq!(sim.send(A, bad), Out::Invalid);
    assert_eq!(sim.send(A, D::new(CLOSE, 110).x(false)), Out::Invalid);
    assert_eq!((sim.conn(), sim.entry().unwrap().timeout()), before);
}

#[test]
fn proc_line_of_an_open_connection() {
    let mut sim = Sim::new(false);
    sim.open();
    let e = sim.entry().unwrap();
    let original = e.tuple(Dir::Original).unwrap();
    let snap = Snapshot {
        original,
        reply: e.tuple(Dir::Reply).unwrap(),
        status: e.status(),
        secs: expires_in_secs(e.timeout(), sim.now, HZ),
        l4: l4proto::print(original.proto, &e.l4()),
        acct: None,
        mark: 0,
        zone: Zone::DEFAULT,
        delta_time: None,
        use_count: 2,
    };
    let mut line = String::new();
    write_line(&mut line, &snap).unwrap();
    assert_eq!(
        line,
        "ipv4     2 dccp     33 43200 OPEN src=192.168.1.10 dst=10.0.0.1 sport=40000 \
         dport=5001 src=10.0.0.1 dst=192.168.1.10 sport=5001 dport=40000 [ASSURED] mark=0 \
         zone=0 use=2\n"
    );
    assert_eq!(tuple::l4_name(DCCP), "dccp");
}

#[test]
fn early_drop_takes_closing_assured_entries() {
    // A full table: an assured OPEN entry is kept, an assured closing one may go.
    let mut sim = Sim::new(false);
    sim.open();
    assert!(!l4proto::can_early_drop(DCCP, &sim.entry().unwrap().l4()));
    sim.expect(
        B,
        D::new(CLOSEREQ, 502).ack(101),
        Out::Accept,
        DccpState::CloseReq,
    );
    let e = sim.entry().unwrap();
    assert!(e.status() & IPS_ASSURED != 0);
    assert!(l4proto::can_early_drop(DCCP, &e.l4()));
    assert!(sim.ct.with_l4(&e, |st| matches!(st, L4State::Dccp(_))));
}

#[test]
fn fuzz_invariants_hold_on_dccp_packets() {
    // The fuzz target's DCCP checks (host/lib.rs, check_dccp) and pipeline checks on real
    // packets, every truncation of them, and random corruptions.
    let packets = [
        D::new(REQUEST, 100).data(3),
        D::new(RESPONSE, 1 << 47).ack(100).v6(true),
        D::new(ACK, 0xff_ffff).x(false).ack(u64::MAX),
        D {
            cscov: 4,
            ..D::new(DATAACK, 5).ack(6).data(30)
        },
        D::new(RESET, 9).ack(8).v6(true),
        D::new(SYNCACK, 9).ack(8),
    ];
    let mut r = Rng(0x5eed);
    for d in packets {
        let pkt = d.packet_from(A);
        for cut in 0..=pkt.len() {
            crate::fuzz_parse(&pkt[..cut]);
        }
        let dataoff = if d.v6 { 40 } else { 20 };
        for _ in 0..300 {
            let mut q = pkt.clone();
            let i = dataoff + (r.next() as usize) % (q.len() - dataoff);
            q[i] = r.next() as u8;
            crate::fuzz_parse(&q);
        }
    }
}

#[test]
fn the_response_ack_is_not_checked() {
    // 6.12 compares no Response's ack with the Request's sequence number: only the client's
    // Ack is checked, against the Response's.
    both_families(|sim| {
        sim.expect(A, D::new(REQUEST, 100), Out::Accept, DccpState::Request);
        sim.expect(
            B,
            D::new(RESPONSE, 500).ack(12345),
            Out::Accept,
            DccpState::Respond,
        );
        sim.expect(
            A,
            D::new(ACK, 101).ack(500),
            Out::Accept,
            DccpState::PartOpen,
        );
        assert!(sim.assured());
    });
}
