// SPDX-License-Identifier: GPL-2.0

//! Tests of the SCTP tracker (`src/proto/proto_sctp.rs`) against Linux 6.12's
//! `nf_conntrack_proto_sctp.c`: the transition table cell by cell against a transcription of
//! `sctp_conntracks` made here from the C source, the chunk walk on every truncation of valid
//! packets, `do_basic_checks`, the CRC32c, the verification-tag rules, and whole associations
//! (setup, data, shutdown, abort, a secondary path through HEARTBEAT) sent as real packets
//! through the module's pipeline on a host table (`host/ct.rs`), with the timeouts and
//! `/proc` state names their entries get.

use crate::host_ct::{ctx, receive, HostCt, HostEntry};
use crate::pkt::{crc32c, sctp, sctp_chunk, Ipv4, Ipv6, A4, A6, B4, B6};
use crate::proto::conn::*;
use crate::proto::handoff::NfView;
use crate::proto::l4proto::{self, L4State, L4Verdict, Settings};
use crate::proto::pipeline::{Entry, Hook, HookRole, Packet, Verdict};
use crate::proto::proc_line::L4Info;
use crate::proto::proto_sctp::*;
use crate::proto::stat::Stat;
use crate::proto::tuple::{Dir, PacketBytes, ParseError, L3};
use std::rc::Rc;

/// The reference kernel's HZ.
const HZ: u32 = 250;
const T: Timeouts = Timeouts::defaults();

// Chunk types, written out again from include/linux/sctp.h.
const DATA: u8 = 0;
const INIT: u8 = 1;
const INIT_ACK: u8 = 2;
const SACK: u8 = 3;
const HEARTBEAT: u8 = 4;
const HEARTBEAT_ACK: u8 = 5;
const ABORT: u8 = 6;
const SHUTDOWN: u8 = 7;
const SHUTDOWN_ACK: u8 = 8;
const ERROR: u8 = 9;
const COOKIE_ECHO: u8 = 10;
const COOKIE_ACK: u8 = 11;
const SHUTDOWN_COMPLETE: u8 = 14;
/// The T flag.
const TF: u8 = 1;

// ---------------------------------------------------------------------------------------------
// The table, transcribed from nf_conntrack_proto_sctp.c independently of the tracker.

// enum sctp_conntrack, by value.
const S_NO: u8 = 0;
const S_CL: u8 = 1;
const S_CW: u8 = 2;
const S_CE: u8 = 3;
const S_ES: u8 = 4;
const S_SS: u8 = 5;
const S_SR: u8 = 6;
const S_SA: u8 = 7;
const S_HS: u8 = 8;
/// `sIV`, `SCTP_CONNTRACK_MAX`.
const S_IV: u8 = 10;

/// The chunk type of each row of `sctp_conntracks`, as `sctp_new_state` maps them.
const ROWS: [u8; 11] = [
    INIT,
    INIT_ACK,
    ABORT,
    SHUTDOWN,
    SHUTDOWN_ACK,
    ERROR,
    COOKIE_ECHO,
    COOKIE_ACK,
    SHUTDOWN_COMPLETE,
    HEARTBEAT,
    HEARTBEAT_ACK,
];

/// `sctp_conntracks[2][11][SCTP_CONNTRACK_MAX]` of 6.12 (the unused HEARTBEAT_ACKED column
/// left out), copied cell by cell from the C source.
#[rustfmt::skip]
const EXPECTED: [[[u8; 9]; 11]; 2] = [
    [
        // ORIGINAL: sNO   sCL   sCW   sCE   sES   sSS   sSR   sSA   sHS
        /* init */ [S_CL, S_CL, S_CW, S_CE, S_ES, S_CL, S_CL, S_SA, S_CW],
        /* i_ack */[S_CL, S_CL, S_CW, S_CE, S_ES, S_SS, S_SR, S_SA, S_CL],
        /* abort */[S_CL, S_CL, S_CL, S_CL, S_CL, S_CL, S_CL, S_CL, S_CL],
        /* shut */ [S_CL, S_CL, S_CW, S_CE, S_SS, S_SS, S_SR, S_SA, S_CL],
        /* s_ack */[S_SA, S_CL, S_CW, S_CE, S_ES, S_SA, S_SA, S_SA, S_SA],
        /* error */[S_CL, S_CL, S_CW, S_CE, S_ES, S_SS, S_SR, S_SA, S_CL],
        /* c_echo*/[S_CL, S_CL, S_CE, S_CE, S_ES, S_SS, S_SR, S_SA, S_CL],
        /* c_ack */[S_CL, S_CL, S_CW, S_ES, S_ES, S_SS, S_SR, S_SA, S_CL],
        /* s_comp*/[S_CL, S_CL, S_CW, S_CE, S_ES, S_SS, S_SR, S_CL, S_CL],
        /* hb */   [S_HS, S_CL, S_CW, S_CE, S_ES, S_SS, S_SR, S_SA, S_HS],
        /* hb_ack*/[S_CL, S_CL, S_CW, S_CE, S_ES, S_SS, S_SR, S_SA, S_HS],
    ],
    [
        // REPLY:    sNO   sCL   sCW   sCE   sES   sSS   sSR   sSA   sHS
        /* init */ [S_IV, S_CL, S_CW, S_CE, S_ES, S_SS, S_SR, S_SA, S_IV],
        /* i_ack */[S_IV, S_CW, S_CW, S_CE, S_ES, S_SS, S_SR, S_SA, S_IV],
        /* abort */[S_IV, S_CL, S_CL, S_CL, S_CL, S_CL, S_CL, S_CL, S_IV],
        /* shut */ [S_IV, S_CL, S_CW, S_CE, S_SR, S_SS, S_SR, S_SA, S_IV],
        /* s_ack */[S_IV, S_CL, S_CW, S_CE, S_ES, S_SA, S_SA, S_SA, S_IV],
        /* error */[S_IV, S_CL, S_CW, S_CL, S_ES, S_SS, S_SR, S_SA, S_IV],
        /* c_echo*/[S_IV, S_CL, S_CE, S_CE, S_ES, S_SS, S_SR, S_SA, S_IV],
        /* c_ack */[S_IV, S_CL, S_CW, S_ES, S_ES, S_SS, S_SR, S_SA, S_IV],
        /* s_comp*/[S_IV, S_CL, S_CW, S_CE, S_ES, S_SS, S_SR, S_CL, S_IV],
        /* hb */   [S_IV, S_CL, S_CW, S_CE, S_ES, S_SS, S_SR, S_SA, S_HS],
        /* hb_ack*/[S_IV, S_CL, S_CW, S_CE, S_ES, S_SS, S_SR, S_SA, S_ES],
    ],
];

/// `sctp_conntrack_names[]`, by value.
const NAMES: [&str; 9] = [
    "NONE",
    "CLOSED",
    "COOKIE_WAIT",
    "COOKIE_ECHOED",
    "ESTABLISHED",
    "SHUTDOWN_SENT",
    "SHUTDOWN_RECD",
    "SHUTDOWN_ACK_SENT",
    "HEARTBEAT_SENT",
];

fn state(v: u8) -> SctpConntrack {
    SctpConntrack::from_u8(v).unwrap_or_else(|| panic!("no state {v}"))
}

fn dirs() -> [Dir; 2] {
    [Dir::Original, Dir::Reply]
}

#[test]
fn every_cell_of_the_table_is_6_12s() {
    for (d, dir) in dirs().into_iter().enumerate() {
        for (i, &ty) in ROWS.iter().enumerate() {
            for s in 0..9u8 {
                let got = sctp_new_state(dir, state(s), ty) as u8;
                assert_eq!(
                    got,
                    EXPECTED[d][i][usize::from(s)],
                    "sctp_conntracks[{d}][{i}][{s}] (chunk {ty})"
                );
            }
        }
    }
}

#[test]
fn other_chunks_leave_the_state_alone() {
    for ty in 0..=255u8 {
        if ROWS.contains(&ty) {
            continue;
        }
        assert_eq!(chunk_index(ty), None, "chunk {ty}");
        for dir in dirs() {
            for s in 0..9u8 {
                assert_eq!(sctp_new_state(dir, state(s), ty), state(s), "chunk {ty}");
            }
        }
    }
    // The rows, by type, as `sctp_new_state`'s switch.
    for (i, &ty) in ROWS.iter().enumerate() {
        assert_eq!(chunk_index(ty), Some(i));
    }
}

#[test]
fn states_names_timeouts_and_early_drop() {
    // Values as in the uapi enum; 9 (HEARTBEAT_ACKED) is no longer used.
    for v in 0..9u8 {
        assert_eq!(state(v) as u8, v);
        assert_eq!(state(v).name(), NAMES[usize::from(v)]);
    }
    assert_eq!(SctpConntrack::from_u8(9), None);
    assert_eq!(state(S_NO), SctpConntrack::None);
    assert_eq!(SctpConntrack::Invalid as u8, 10);
    // sctp_timeouts[], in seconds; timeouts[0] is CLOSED's default.
    let secs = [10, 10, 3, 3, 210, 3, 3, 3, 30];
    for v in 0..9u8 {
        assert_eq!(
            sctp_timeout(&T, state(v), HZ),
            secs[usize::from(v)] * HZ,
            "{}",
            NAMES[usize::from(v)]
        );
    }
    // The sysctls move their state's timeout; NONE keeps the default.
    let t = Timeouts {
        sctp_closed: 1,
        sctp_cookie_wait: 2,
        sctp_cookie_echoed: 4,
        sctp_established: 5,
        sctp_shutdown_sent: 6,
        sctp_shutdown_recd: 7,
        sctp_shutdown_ack_sent: 8,
        sctp_heartbeat_sent: 9,
        ..T
    };
    let secs = [10, 1, 2, 4, 5, 6, 7, 8, 9];
    for v in 0..9u8 {
        assert_eq!(sctp_timeout(&t, state(v), HZ), secs[usize::from(v)] * HZ);
    }
    // sctp_can_early_drop: the shutdown states only.
    for v in 0..9u8 {
        let conn = SctpConn {
            state: state(v),
            ..SctpConn::default()
        };
        let st = L4State::Sctp(conn);
        assert_eq!(
            l4proto::can_early_drop(132, &st),
            matches!(v, S_SS | S_SR | S_SA),
            "{}",
            NAMES[usize::from(v)]
        );
        assert_eq!(
            l4proto::print(132, &st),
            L4Info::State(NAMES[usize::from(v)])
        );
    }
    // No allow_clash for SCTP.
    assert!(!l4proto::allow_clash(132));
    // Small and copied around freely.
    assert!(core::mem::size_of::<SctpConn>() <= 16);
}

// ---------------------------------------------------------------------------------------------
// Chunks and packets.

/// A chunk with `value` (padded).
fn chunk(ty: u8, flags: u8, value: &[u8]) -> Vec<u8> {
    sctp_chunk(ty, flags, value)
}

/// An INIT or INIT_ACK chunk announcing `tag`, with `params` after its 16-byte header.
fn init_chunk(ty: u8, tag: u32, params: &[u8]) -> Vec<u8> {
    let mut v = tag.to_be_bytes().to_vec();
    v.extend_from_slice(&65535u32.to_be_bytes()); // a_rwnd
    v.extend_from_slice(&[0, 10, 0, 10]); // streams
    v.extend_from_slice(&0x1000u32.to_be_bytes()); // initial TSN
    v.extend_from_slice(params);
    chunk(ty, 0, &v)
}

fn data_chunk(tsn: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = tsn.to_be_bytes().to_vec();
    v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]); // stream, ssn, ppid
    v.extend_from_slice(payload);
    chunk(DATA, 3, &v)
}

fn hb_chunk(ty: u8) -> Vec<u8> {
    // Heartbeat info parameter.
    chunk(ty, 0, &[0, 1, 0, 8, 1, 2, 3, 4])
}

fn simple(ty: u8) -> Vec<u8> {
    chunk(ty, 0, &[])
}

/// An SCTP segment alone (no IP header): `dataoff` 0.
fn seg(vtag: u32, chunks: &[Vec<u8>]) -> Vec<u8> {
    sctp(5000, 38412, vtag, &chunks.concat())
}

#[test]
fn crc32c_is_castagnoli() {
    // The check value of CRC-32C (RFC 3720 B.4 and every CRC catalogue).
    assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    // RFC 3720 B.4: 32 bytes of zeros.
    assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
    // The tracker's, over a packet whose checksum field it counts as zero, at every offset
    // and across its 128-byte blocks.
    for len in [0usize, 1, 100, 127, 128, 129, 300, 1500] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        let s = seg(0x1234_5678, &[data_chunk(1, &payload)]);
        let stored = u32::from_le_bytes([s[8], s[9], s[10], s[11]]);
        assert_eq!(sctp_crc32c(&s[..], 0), Some(stored), "len {len}");
        for pad in [1usize, 20, 40, 116, 118, 119, 120, 122, 127] {
            let mut p = vec![0xeeu8; pad];
            p.extend_from_slice(&s);
            assert_eq!(
                sctp_crc32c(&p[..], pad),
                Some(stored),
                "pad {pad} len {len}"
            );
        }
    }
    // Beyond the packet: nothing to compute.
    assert_eq!(sctp_crc32c(&[0u8; 4][..], 5), None);
    assert_eq!(sctp_crc32c(&[0u8; 4][..], 4), Some(crc32c(&[])));
}

#[test]
fn crc_good_and_bad() {
    let s = seg(
        0,
        &[init_chunk(INIT, 0xa1a1_a1a1, &[0, 5, 0, 8, 10, 0, 0, 1])],
    );
    assert!(sctp_error(&s[..], 0, true).is_ok());
    // Any byte changed: the CRC says so, but only when it is verified.
    for i in 0..s.len() {
        for bit in [0x01u8, 0x80] {
            let mut b = s.clone();
            b[i] ^= bit;
            assert_eq!(
                sctp_error(&b[..], 0, true).err(),
                Some(SctpError::BadCrc),
                "byte {i}"
            );
            // Unverified, the same bytes pass unless they broke the chunk itself.
            if !(12..16).contains(&i) {
                assert!(sctp_error(&b[..], 0, false).is_ok(), "byte {i}");
            }
        }
    }
    // A big-endian CRC (the wrong byte order) is wrong.
    let mut b = s.clone();
    b[8..12].reverse();
    assert_eq!(sctp_error(&b[..], 0, true).err(), Some(SctpError::BadCrc));
}

/// Valid packets of every kind, as segments.
fn valid_segments() -> Vec<Vec<u8>> {
    vec![
        seg(
            0,
            &[init_chunk(INIT, 0xa1a1_a1a1, &[0, 5, 0, 8, 10, 0, 0, 1])],
        ),
        seg(
            0xa1a1_a1a1,
            &[init_chunk(INIT_ACK, 0xb2b2_b2b2, &[0, 7, 0, 8, 1, 2, 3, 4])],
        ),
        seg(
            0xb2b2_b2b2,
            &[chunk(COOKIE_ECHO, 0, &[9; 24]), data_chunk(1, b"hello")],
        ),
        seg(0xa1a1_a1a1, &[simple(COOKIE_ACK), chunk(SACK, 0, &[0; 12])]),
        seg(
            0xb2b2_b2b2,
            &[
                data_chunk(2, b"x"),
                data_chunk(3, b"yz"),
                hb_chunk(HEARTBEAT),
            ],
        ),
        seg(0xb2b2_b2b2, &[chunk(SHUTDOWN, 0, &[0, 0, 0, 3])]),
        seg(0xa1a1_a1a1, &[simple(SHUTDOWN_ACK)]),
        seg(0xb2b2_b2b2, &[simple(SHUTDOWN_COMPLETE)]),
        seg(0xb2b2_b2b2, &[chunk(ABORT, 0, &[0, 1, 0, 4])]),
    ]
}

#[test]
fn every_truncation_is_refused_rightly_and_never_panics() {
    for s in valid_segments() {
        let full = sctp_error(&s[..], 0, false).expect("valid segment");
        for cut in 0..s.len() {
            let b = &s[..cut];
            let got = sctp_error(b, 0, false);
            if cut < 12 {
                assert_eq!(got.err(), Some(SctpError::Short), "cut {cut}");
            } else if cut < 16 {
                assert_eq!(got.err(), Some(SctpError::NoChunks), "cut {cut}");
            } else {
                // The first chunk header is there: later chunks cut off are simply not
                // walked, as `for_each_sctp_chunk` stops where no header fits.
                let h = got.unwrap_or_else(|e| panic!("cut {cut}: {e:?}"));
                assert!(h.map.has(s[12]));
                assert_eq!(h.vtag, full.vtag);
            }
            // Verified, a cut packet fails its CRC (or is short).
            assert!(sctp_error(b, 0, true).is_err(), "cut {cut}");
            // The chunks a truncated packet yields all lie within it.
            for ch in chunks(b, 0) {
                assert!(ch.offset + 4 <= cut);
            }
            // The tracker on it, new or established, never panics and never accepts a
            // packet sctp_error refused.
            if let Ok(h) = got {
                let mut fresh = SctpConn::default();
                let a = sctp_packet(&mut fresh, b, &h, Dir::Original, false, HZ, &T);
                if s[12] == INIT && cut < 12 + 4 + 16 {
                    assert_eq!(a.verdict, Err(SctpInvalid::New), "cut {cut}");
                }
                let mut est = established();
                for dir in dirs() {
                    let a = sctp_packet(&mut est, b, &h, dir, true, HZ, &T);
                    if a.verdict.is_err() {
                        assert_eq!(a.refresh, None);
                    }
                    assert_ne!(est.state, SctpConntrack::Invalid);
                }
            }
        }
    }
    // An INIT_ACK cut inside its header, on the entry its INIT made.
    let init = seg(0, &[init_chunk(INIT, 0xa1a1_a1a1, &[])]);
    let ack = seg(0xa1a1_a1a1, &[init_chunk(INIT_ACK, 0xb2b2_b2b2, &[])]);
    for cut in 16..12 + 4 + 16 {
        let mut c = SctpConn::default();
        let h = sctp_error(&init[..], 0, false).unwrap();
        assert!(
            sctp_packet(&mut c, &init[..], &h, Dir::Original, false, HZ, &T)
                .verdict
                .is_ok()
        );
        let h = sctp_error(&ack[..cut], 0, false).unwrap();
        let a = sctp_packet(&mut c, &ack[..cut], &h, Dir::Reply, true, HZ, &T);
        assert_eq!(
            a.verdict,
            Err(SctpInvalid::InitTruncated(INIT_ACK)),
            "cut {cut}"
        );
    }
}

#[test]
fn basic_checks_refuse_what_6_12_refuses() {
    let bad = |chunks: &[Vec<u8>]| sctp_error(&seg(7, chunks)[..], 0, true).err();
    // A zero length.
    let mut zero = simple(DATA);
    zero[2..4].copy_from_slice(&[0, 0]);
    assert_eq!(
        bad(&[zero.clone()]),
        Some(SctpError::BadChunk {
            count: 0,
            ty: DATA,
            len: 0,
            flag: false
        })
    );
    assert!(matches!(
        bad(&[data_chunk(1, b"a"), zero]),
        Some(SctpError::BadChunk { count: 1, .. })
    ));
    // COOKIE_ECHO and COOKIE_ACK only first.
    for ty in [COOKIE_ECHO, COOKIE_ACK] {
        assert!(bad(&[simple(ty), data_chunk(1, b"a")]).is_none());
        assert_eq!(
            bad(&[data_chunk(1, b"a"), simple(ty)]),
            Some(SctpError::BadChunk {
                count: 1,
                ty,
                len: 4,
                flag: false
            })
        );
    }
    // INIT, INIT_ACK and SHUTDOWN_COMPLETE only alone.
    for ty in [INIT, INIT_ACK, SHUTDOWN_COMPLETE] {
        let c = if ty == SHUTDOWN_COMPLETE {
            simple(ty)
        } else {
            init_chunk(ty, 1, &[])
        };
        assert!(bad(std::slice::from_ref(&c)).is_none());
        assert!(matches!(
            bad(&[c.clone(), simple(SACK)]),
            Some(SctpError::BadChunk {
                count: 1,
                ty: SACK,
                flag: true,
                ..
            })
        ));
        assert!(matches!(
            bad(&[simple(SACK), c]),
            Some(SctpError::BadChunk {
                count: 1,
                flag: true,
                ..
            })
        ));
    }
    // No chunk at all, or three bytes of one.
    assert_eq!(bad(&[]), Some(SctpError::NoChunks));
    assert_eq!(bad(&[vec![0, 0, 0]]), Some(SctpError::NoChunks));
    // Lengths 1 to 3 step 4 bytes, as `(len + 3) & ~3`; a length beyond the packet ends it.
    let mut short = simple(SACK);
    short[3] = 1;
    let h = sctp_error(&seg(7, &[short, simple(HEARTBEAT)])[..], 0, true).unwrap();
    assert!(h.map.has(SACK) && h.map.has(HEARTBEAT));
    let mut long = simple(SACK);
    long[2] = 0xff;
    let h = sctp_error(&seg(7, &[long, simple(ABORT)])[..], 0, true).unwrap();
    assert!(h.map.has(SACK) && !h.map.has(ABORT));
    // The map holds every type, 0 to 255.
    for ty in [0u8, 63, 64, 127, 128, 191, 192, 255] {
        let h = sctp_error(&seg(7, &[simple(ty)])[..], 0, true).unwrap();
        assert!(h.map.has(ty));
        assert!(!h.map.has(ty.wrapping_add(1)));
    }
    // Short header.
    assert_eq!(
        sctp_error(&[0u8; 11][..], 0, false).err(),
        Some(SctpError::Short)
    );
    for e in [SctpError::Short, SctpError::BadCrc] {
        assert!(e.msg().is_some_and(|m| m.starts_with("nf_ct_sctp: ")));
    }
    assert_eq!(SctpError::NoChunks.msg(), None);
}

// ---------------------------------------------------------------------------------------------
// Verification tags, on the tracker directly.

const TAG_A: u32 = 0xa1a1_a1a1;
const TAG_B: u32 = 0xb2b2_b2b2;

/// An established association: packets from A carry B's tag and the other way round.
fn established() -> SctpConn {
    SctpConn {
        state: SctpConntrack::Established,
        vtag: [TAG_B, TAG_A],
        ..SctpConn::default()
    }
}

fn run(conn: &mut SctpConn, dir: Dir, vtag: u32, chunks: &[Vec<u8>]) -> SctpAction {
    let s = seg(vtag, chunks);
    let h = sctp_error(&s[..], 0, true).expect("well-formed");
    sctp_packet(conn, &s[..], &h, dir, true, HZ, &T)
}

#[test]
fn a_wrong_tag_is_invalid() {
    let mut c = established();
    let a = run(&mut c, Dir::Original, TAG_B, &[data_chunk(1, b"a")]);
    assert_eq!(a.verdict, Ok(()));
    assert_eq!(a.refresh, Some(210 * HZ));
    let a = run(&mut c, Dir::Reply, TAG_A, &[chunk(SACK, 0, &[0; 12])]);
    assert_eq!(a.refresh, Some(210 * HZ));
    for (dir, tag) in [
        (Dir::Original, TAG_A),
        (Dir::Reply, TAG_B),
        (Dir::Original, 0),
    ] {
        let a = run(&mut c, dir, tag, &[data_chunk(1, b"a")]);
        assert!(
            matches!(a.verdict, Err(SctpInvalid::Vtag { .. })),
            "{dir:?} {tag:x}"
        );
        assert_eq!(a.refresh, None);
        // SHUTDOWN and ERROR have no rule of their own either.
        for ty in [SHUTDOWN, ERROR] {
            let before = c;
            let a = run(&mut c, dir, tag, &[simple(ty)]);
            assert!(matches!(a.verdict, Err(SctpInvalid::Vtag { .. })));
            assert_eq!(c, before);
        }
    }
    assert_eq!(c, established());
}

#[test]
fn init_needs_tag_zero() {
    let mut c = established();
    let a = run(&mut c, Dir::Original, 5, &[init_chunk(INIT, 9, &[])]);
    assert_eq!(a.verdict, Err(SctpInvalid::ChunkVtag(INIT)));
    // A new entry: sctp_new refuses it before.
    let s = seg(5, &[init_chunk(INIT, 9, &[])]);
    let h = sctp_error(&s[..], 0, true).unwrap();
    let a = sctp_packet(
        &mut SctpConn::default(),
        &s[..],
        &h,
        Dir::Original,
        false,
        HZ,
        &T,
    );
    assert_eq!(a.verdict, Err(SctpInvalid::New));
    // With tag 0 on an established association: it stays ESTABLISHED and learns the tag.
    let a = run(&mut c, Dir::Original, 0, &[init_chunk(INIT, 0x1111, &[])]);
    assert_eq!(a.verdict, Ok(()));
    assert_eq!(c.state, SctpConntrack::Established);
    assert_eq!(c.vtag(Dir::Reply), 0x1111);
    assert!(c.init(Dir::Original));
}

#[test]
fn abort_and_shutdown_complete_follow_the_t_flag() {
    for ty in [ABORT, SHUTDOWN_COMPLETE] {
        for dir in dirs() {
            let own = established().vtag(dir);
            let peer = established().vtag(dir.reverse());
            // Without T: the direction's own tag; with T: the peer's.
            for (flags, good, bad) in [(0, own, peer), (TF, peer, own)] {
                let mut c = established();
                if ty == SHUTDOWN_COMPLETE {
                    c.state = SctpConntrack::ShutdownAckSent;
                }
                let before = c;
                let a = run(&mut c, dir, bad, &[chunk(ty, flags, &[])]);
                assert_eq!(a.verdict, Err(SctpInvalid::ChunkVtag(ty)), "{ty} {dir:?}");
                assert_eq!(c, before);
                let a = run(&mut c, dir, good, &[chunk(ty, flags, &[])]);
                assert_eq!(a.verdict, Ok(()), "{ty} {dir:?} {flags}");
                assert_eq!(c.state, SctpConntrack::Closed);
                assert_eq!(a.refresh, Some(10 * HZ));
            }
        }
    }
}

#[test]
fn cookie_echo_needs_the_tag_of_its_direction() {
    let mut c = SctpConn {
        state: SctpConntrack::CookieWait,
        ..established()
    };
    let a = run(
        &mut c,
        Dir::Original,
        TAG_A,
        &[chunk(COOKIE_ECHO, 0, &[1; 8])],
    );
    assert_eq!(a.verdict, Err(SctpInvalid::ChunkVtag(COOKIE_ECHO)));
    let a = run(
        &mut c,
        Dir::Original,
        TAG_B,
        &[chunk(COOKIE_ECHO, 0, &[1; 8])],
    );
    assert_eq!(a.verdict, Ok(()));
    assert_eq!(c.state, SctpConntrack::CookieEchoed);
    assert_eq!(a.refresh, Some(3 * HZ));
}

#[test]
fn init_ack_must_answer_the_init() {
    // Tags known without an INIT (an out-of-the-blue SHUTDOWN_ACK made the entry): an
    // INIT_ACK announcing another tag than the one known is refused.
    let mut c = SctpConn {
        state: SctpConntrack::Closed,
        vtag: [0, 0x1111],
        ..SctpConn::default()
    };
    let a = run(
        &mut c,
        Dir::Original,
        0,
        &[init_chunk(INIT_ACK, 0x2222, &[])],
    );
    assert_eq!(a.verdict, Err(SctpInvalid::InitAck));
    let a = run(
        &mut c,
        Dir::Original,
        0,
        &[init_chunk(INIT_ACK, 0x1111, &[])],
    );
    assert_eq!(a.verdict, Ok(()));
    // A collision: INITs both ways; the INIT_ACK must repeat the tag the other INIT
    // announced.
    let mut c = SctpConn::default();
    let s = seg(0, &[init_chunk(INIT, TAG_A, &[])]);
    let h = sctp_error(&s[..], 0, true).unwrap();
    assert_eq!(
        sctp_packet(&mut c, &s[..], &h, Dir::Original, false, HZ, &T).verdict,
        Ok(())
    );
    assert_eq!(
        (c.state, c.vtag, c.init),
        (SctpConntrack::Closed, [0, TAG_A], [true, false])
    );
    let a = run(&mut c, Dir::Reply, 0, &[init_chunk(INIT, TAG_B, &[])]);
    // INIT on CLOSED, confirmed: passes, unrefreshed.
    assert_eq!((a.verdict, a.refresh), (Ok(()), None));
    assert_eq!((c.vtag, c.init), ([TAG_B, TAG_A], [true, true]));
    let a = run(
        &mut c,
        Dir::Reply,
        TAG_A,
        &[init_chunk(INIT_ACK, 0x3333, &[])],
    );
    assert_eq!(a.verdict, Err(SctpInvalid::InitAck));
    let a = run(
        &mut c,
        Dir::Reply,
        TAG_A,
        &[init_chunk(INIT_ACK, TAG_B, &[])],
    );
    assert_eq!(a.verdict, Ok(()));
    assert_eq!(c.state, SctpConntrack::CookieWait);
    // A retransmitted INIT (announcing the tag known) leaves `init` alone.
    let mut c = SctpConn {
        state: SctpConntrack::CookieWait,
        vtag: [TAG_B, TAG_A],
        init: [true, false],
        ..SctpConn::default()
    };
    let a = run(&mut c, Dir::Original, 0, &[init_chunk(INIT, TAG_A, &[])]);
    assert_eq!(a.verdict, Ok(()));
    assert_eq!(c.init, [true, false]);
    // A COOKIE_ACK clears both.
    c.state = SctpConntrack::CookieEchoed;
    c.init = [true, true];
    let a = run(&mut c, Dir::Reply, TAG_A, &[simple(COOKIE_ACK)]);
    assert!(a.set_assured && a.protoinfo);
    assert_eq!(
        (c.init, c.state),
        ([false, false], SctpConntrack::Established)
    );
}

#[test]
fn heartbeat_with_an_unknown_tag_teaches_the_other_direction() {
    // An association restarted under the same addresses and ports: new tags.
    let mut c = established();
    let a = run(&mut c, Dir::Original, 0x7777, &[hb_chunk(HEARTBEAT)]);
    assert_eq!((a.verdict, a.refresh), (Ok(()), None));
    assert_eq!(c.flags, SCTP_FLAG_HEARTBEAT_VTAG_FAILED);
    assert_eq!(c.last_dir, Dir::Original);
    // The same direction cannot answer it.
    let before = c;
    let a = run(&mut c, Dir::Original, 0x8888, &[hb_chunk(HEARTBEAT_ACK)]);
    assert_eq!(a.verdict, Err(SctpInvalid::HeartbeatVtag(HEARTBEAT_ACK)));
    assert_eq!(c, before);
    // The other does: its tag is learnt, the first direction's forgotten.
    let a = run(&mut c, Dir::Reply, 0x8888, &[hb_chunk(HEARTBEAT_ACK)]);
    assert_eq!(a.verdict, Ok(()));
    assert_eq!(a.refresh, Some(210 * HZ));
    assert_eq!((c.vtag, c.flags), ([0, 0x8888], 0));
    // The next HEARTBEAT teaches it.
    let a = run(&mut c, Dir::Original, 0x7777, &[hb_chunk(HEARTBEAT)]);
    assert_eq!(a.refresh, Some(210 * HZ));
    assert_eq!(c.vtag, [0x7777, 0x8888]);
    // Without a HEARTBEAT before it, a HEARTBEAT_ACK with an unknown tag is refused.
    let mut c = established();
    let a = run(&mut c, Dir::Reply, 0x8888, &[hb_chunk(HEARTBEAT_ACK)]);
    assert_eq!(a.verdict, Err(SctpInvalid::HeartbeatVtag(HEARTBEAT_ACK)));
    // Nor with DATA, nor twice in one packet.
    let a = run(
        &mut c,
        Dir::Original,
        0x7777,
        &[data_chunk(1, b"a"), hb_chunk(HEARTBEAT)],
    );
    assert_eq!(a.verdict, Err(SctpInvalid::HeartbeatVtag(HEARTBEAT)));
    let a = run(
        &mut c,
        Dir::Original,
        0x7777,
        &[hb_chunk(HEARTBEAT), hb_chunk(HEARTBEAT)],
    );
    assert_eq!(a.verdict, Err(SctpInvalid::HeartbeatVtag(HEARTBEAT)));
    // A HEARTBEAT with the known tag clears a failure noted before.
    let mut c = established();
    run(&mut c, Dir::Original, 0x7777, &[hb_chunk(HEARTBEAT)]);
    let a = run(&mut c, Dir::Original, TAG_B, &[hb_chunk(HEARTBEAT)]);
    assert_eq!((a.refresh, c.flags), (Some(210 * HZ), 0));
}

// ---------------------------------------------------------------------------------------------
// Whole associations through the pipeline.

/// Two endpoints, A (client) and B (server), and the table between them.
struct Assoc {
    ct: HostCt,
    now: u32,
    v6: bool,
    /// A's address (the secondary path changes it).
    a: [u8; 16],
}

/// What one packet did.
#[derive(Debug, PartialEq, Eq)]
enum Out {
    /// Tracked.
    Ok,
    /// Counted invalid.
    Invalid,
}

impl Assoc {
    fn new() -> Self {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&A4);
        Assoc {
            ct: HostCt::with(Settings::defaults()),
            now: 10_000,
            v6: false,
            a,
        }
    }

    fn v6() -> Self {
        Assoc {
            v6: true,
            a: A6,
            ..Assoc::new()
        }
    }

    fn packet(&self, from_a: bool, vtag: u32, chunks: &[Vec<u8>]) -> Vec<u8> {
        let (sport, dport) = if from_a { (5000, 38412) } else { (38412, 5000) };
        let s = sctp(sport, dport, vtag, &chunks.concat());
        if self.v6 {
            let (src, dst) = if from_a { (self.a, B6) } else { (B6, self.a) };
            Ipv6::new(132, src, dst).build(&s)
        } else {
            let mut a = [0u8; 4];
            a.copy_from_slice(&self.a[..4]);
            let (src, dst) = if from_a { (a, B4) } else { (B4, a) };
            Ipv4::new(132, src, dst).build(&s)
        }
    }

    fn l3(&self) -> L3 {
        if self.v6 {
            L3::Ipv6
        } else {
            L3::Ipv4
        }
    }

    /// Sends a packet one tick after the last.
    fn send(&mut self, from_a: bool, vtag: u32, chunks: &[Vec<u8>]) -> Out {
        self.now += 1;
        let p = self.packet(from_a, vtag, chunks);
        let invalid = self.ct.stat(Stat::Invalid);
        let v = receive(&self.ct, &p, self.l3(), self.now, HZ);
        assert_eq!(v, (Verdict::Accept, Verdict::Accept));
        if self.ct.stat(Stat::Invalid) > invalid {
            Out::Invalid
        } else {
            Out::Ok
        }
    }

    fn a(&mut self, vtag: u32, chunks: &[Vec<u8>]) -> Out {
        self.send(true, vtag, chunks)
    }

    fn b(&mut self, vtag: u32, chunks: &[Vec<u8>]) -> Out {
        self.send(false, vtag, chunks)
    }

    fn entries(&self) -> usize {
        self.ct.table.borrow().len()
    }

    fn entry(&self) -> Rc<HostEntry> {
        let t = self.ct.table.borrow();
        assert_eq!(t.len(), 1, "one entry");
        t[0].clone()
    }

    fn conn(&self) -> SctpConn {
        match self.entry().l4() {
            L4State::Sctp(c) => c,
            other => panic!("not SCTP: {other:?}"),
        }
    }

    /// The entry's state, `/proc` name and seconds left.
    fn check(&self, state: SctpConntrack, secs: u32) {
        let e = self.entry();
        let c = self.conn();
        assert_eq!(c.state, state);
        assert_eq!(
            l4proto::print(132, &e.l4()),
            L4Info::State(NAMES[state as usize])
        );
        assert_eq!(e.timeout(), self.now + secs * HZ, "{state:?}");
    }
}

#[test]
fn association_setup_data_and_shutdown() {
    for mut s in [Assoc::new(), Assoc::v6()] {
        // INIT: CLOSED, 10 s; B's packets must carry A's tag.
        assert_eq!(
            s.a(0, &[init_chunk(INIT, TAG_A, &[0, 5, 0, 8, 10, 0, 0, 1])]),
            Out::Ok
        );
        s.check(SctpConntrack::Closed, 10);
        assert_eq!(s.conn().vtag, [0, TAG_A]);
        assert_eq!(s.entry().status(), IPS_CONFIRMED);
        // INIT_ACK: COOKIE_WAIT, 3 s.
        assert_eq!(s.b(TAG_A, &[init_chunk(INIT_ACK, TAG_B, &[])]), Out::Ok);
        s.check(SctpConntrack::CookieWait, 3);
        assert_eq!(s.conn().vtag, [TAG_B, TAG_A]);
        // COOKIE_ECHO (with DATA bundled): COOKIE_ECHOED, 3 s.
        let echo = [chunk(COOKIE_ECHO, 0, &[7; 32]), data_chunk(1, b"early")];
        assert_eq!(s.a(TAG_B, &echo), Out::Ok);
        s.check(SctpConntrack::CookieEchoed, 3);
        assert_eq!(s.entry().status() & IPS_ASSURED, 0);
        // COOKIE_ACK: ESTABLISHED, 210 s, assured.
        assert_eq!(s.b(TAG_A, &[simple(COOKIE_ACK)]), Out::Ok);
        s.check(SctpConntrack::Established, 210);
        assert_eq!(
            s.entry().status(),
            IPS_CONFIRMED | IPS_SEEN_REPLY | IPS_ASSURED
        );
        // DATA and SACK both ways.
        assert_eq!(s.a(TAG_B, &[data_chunk(2, b"hello")]), Out::Ok);
        s.check(SctpConntrack::Established, 210);
        assert_eq!(
            s.b(
                TAG_A,
                &[chunk(SACK, 0, &[0, 0, 0, 2, 0, 1, 0, 0, 0, 0, 0, 0])]
            ),
            Out::Ok
        );
        s.check(SctpConntrack::Established, 210);
        // A wrong tag: invalid, the entry untouched.
        let t = s.entry().timeout();
        assert_eq!(s.a(TAG_A, &[data_chunk(3, b"x")]), Out::Invalid);
        assert_eq!(s.b(TAG_B, &[data_chunk(3, b"x")]), Out::Invalid);
        assert_eq!(s.entry().timeout(), t);
        assert_eq!(s.conn().state, SctpConntrack::Established);
        // A bad CRC: invalid before the entry is looked at.
        let mut p = s.packet(true, TAG_B, &[data_chunk(3, b"x")]);
        let last = p.len() - 1;
        p[last] ^= 1;
        let inv = s.ct.stat(Stat::Invalid);
        receive(&s.ct, &p, s.l3(), s.now, HZ);
        assert_eq!(s.ct.stat(Stat::Invalid), inv + 1);
        // SHUTDOWN from A: SHUTDOWN_SENT, 3 s, and early drop may take it.
        assert_eq!(s.a(TAG_B, &[chunk(SHUTDOWN, 0, &[0, 0, 0, 2])]), Out::Ok);
        s.check(SctpConntrack::ShutdownSent, 3);
        assert!(l4proto::can_early_drop(132, &s.entry().l4()));
        // SHUTDOWN_ACK from B: SHUTDOWN_ACK_SENT, 3 s.
        assert_eq!(s.b(TAG_A, &[simple(SHUTDOWN_ACK)]), Out::Ok);
        s.check(SctpConntrack::ShutdownAckSent, 3);
        // SHUTDOWN_COMPLETE from A, its own tag: CLOSED, 10 s.
        assert_eq!(s.a(TAG_A, &[simple(SHUTDOWN_COMPLETE)]), Out::Invalid);
        assert_eq!(s.a(TAG_B, &[simple(SHUTDOWN_COMPLETE)]), Out::Ok);
        s.check(SctpConntrack::Closed, 10);
        assert!(!l4proto::can_early_drop(132, &s.entry().l4()));
        // A new INIT on the closed entry: accepted, not refreshed (port reuse must not keep
        // it alive), and it learns the new tag.
        let t = s.entry().timeout();
        assert_eq!(s.a(0, &[init_chunk(INIT, 0x5555, &[])]), Out::Ok);
        assert_eq!(s.entry().timeout(), t);
        assert_eq!(s.conn().vtag(Dir::Reply), 0x5555);
        // It expires 10 s after SHUTDOWN_COMPLETE; the next INIT makes a new entry.
        s.now = t;
        assert_eq!(s.a(0, &[init_chunk(INIT, 0x6666, &[])]), Out::Ok);
        s.check(SctpConntrack::Closed, 10);
        assert_eq!(s.ct.stat(Stat::Insert), 2);
    }
}

#[test]
fn shutdown_from_the_server_and_cross_shutdown() {
    let mut s = Assoc::new();
    s.a(0, &[init_chunk(INIT, TAG_A, &[])]);
    s.b(TAG_A, &[init_chunk(INIT_ACK, TAG_B, &[])]);
    s.a(TAG_B, &[chunk(COOKIE_ECHO, 0, &[1; 4])]);
    s.b(TAG_A, &[simple(COOKIE_ACK)]);
    // SHUTDOWN from B: SHUTDOWN_RECD, 3 s.
    assert_eq!(s.b(TAG_A, &[chunk(SHUTDOWN, 0, &[0; 4])]), Out::Ok);
    s.check(SctpConntrack::ShutdownRecd, 3);
    // A's SHUTDOWN crosses it: still SHUTDOWN_RECD.
    assert_eq!(s.a(TAG_B, &[chunk(SHUTDOWN, 0, &[0; 4])]), Out::Ok);
    s.check(SctpConntrack::ShutdownRecd, 3);
    assert_eq!(s.a(TAG_B, &[simple(SHUTDOWN_ACK)]), Out::Ok);
    s.check(SctpConntrack::ShutdownAckSent, 3);
    // SHUTDOWN_COMPLETE with the T flag: the peer's tag.
    assert_eq!(s.b(TAG_B, &[chunk(SHUTDOWN_COMPLETE, TF, &[])]), Out::Ok);
    s.check(SctpConntrack::Closed, 10);
}

#[test]
fn abort_closes() {
    for (from_a, flags, tag, ok) in [
        (true, 0, TAG_B, true),
        (true, 0, TAG_A, false),
        (true, TF, TAG_A, true),
        (false, 0, TAG_A, true),
        (false, TF, TAG_B, true),
        (false, TF, TAG_A, false),
    ] {
        let mut s = Assoc::new();
        s.a(0, &[init_chunk(INIT, TAG_A, &[])]);
        s.b(TAG_A, &[init_chunk(INIT_ACK, TAG_B, &[])]);
        s.a(TAG_B, &[chunk(COOKIE_ECHO, 0, &[1; 4])]);
        s.b(TAG_A, &[simple(COOKIE_ACK)]);
        let abort = [data_chunk(9, b"last"), chunk(ABORT, flags, &[0, 12, 0, 4])];
        let out = s.send(from_a, tag, &abort);
        if ok {
            assert_eq!(out, Out::Ok);
            s.check(SctpConntrack::Closed, 10);
        } else {
            assert_eq!(out, Out::Invalid);
            // Untouched since the COOKIE_ACK, one tick before.
            s.now -= 1;
            s.check(SctpConntrack::Established, 210);
        }
    }
    // During setup too: an ABORT answering the INIT.
    let mut s = Assoc::new();
    s.a(0, &[init_chunk(INIT, TAG_A, &[])]);
    assert_eq!(s.b(TAG_A, &[simple(ABORT)]), Out::Ok);
    s.check(SctpConntrack::Closed, 10);
}

#[test]
fn first_packets_that_make_no_entry() {
    let bad: [(u32, Vec<Vec<u8>>); 8] = [
        // Out of the blue: ABORT, SHUTDOWN_COMPLETE, COOKIE_ACK.
        (0, vec![simple(ABORT)]),
        (0, vec![chunk(SHUTDOWN_COMPLETE, TF, &[])]),
        (0, vec![simple(COOKIE_ACK)]),
        // Chunks that cannot start an entry.
        (TAG_B, vec![data_chunk(1, b"a")]),
        (TAG_B, vec![chunk(SACK, 0, &[0; 12])]),
        (TAG_B, vec![hb_chunk(HEARTBEAT), data_chunk(1, b"a")]),
        // INIT with a tag, or without its whole header.
        (1, vec![init_chunk(INIT, TAG_A, &[])]),
        (0, vec![chunk(INIT, 0, &[0; 8])]),
    ];
    for (tag, chunks) in bad {
        let mut s = Assoc::new();
        assert_eq!(s.a(tag, &chunks), Out::Invalid, "{chunks:?}");
        assert_eq!(s.entries(), 0);
        assert!(s.ct.unconfirmed.borrow().is_empty());
    }
    // Chunks without a tag rule of their own are checked against the tag a new entry knows
    // for its direction: none (0), unless a HEARTBEAT taught it.
    for chunks in [
        vec![init_chunk(INIT_ACK, TAG_B, &[])],
        vec![chunk(SHUTDOWN, 0, &[0; 4])],
        vec![simple(ERROR)],
        // COOKIE_ECHO's rule (D): the tag of its direction, unknown here.
        vec![chunk(COOKIE_ECHO, 0, &[1; 4])],
    ] {
        let mut s = Assoc::new();
        assert_eq!(s.a(TAG_A, &chunks), Out::Invalid, "{chunks:?}");
        assert_eq!(s.entries(), 0);
    }
    // The chunks the table moves out of NONE do.
    for (tag, chunks, state, secs) in [
        (
            0,
            vec![init_chunk(INIT, TAG_A, &[])],
            SctpConntrack::Closed,
            10,
        ),
        (
            0,
            vec![init_chunk(INIT_ACK, TAG_B, &[])],
            SctpConntrack::Closed,
            10,
        ),
        (
            0,
            vec![chunk(COOKIE_ECHO, 0, &[1; 4])],
            SctpConntrack::Closed,
            10,
        ),
        (
            0,
            vec![chunk(SHUTDOWN, 0, &[0; 4])],
            SctpConntrack::Closed,
            10,
        ),
        (
            TAG_B,
            vec![simple(SHUTDOWN_ACK)],
            SctpConntrack::ShutdownAckSent,
            3,
        ),
        (0, vec![simple(ERROR)], SctpConntrack::Closed, 10),
        (
            TAG_B,
            vec![hb_chunk(HEARTBEAT)],
            SctpConntrack::HeartbeatSent,
            30,
        ),
        (
            TAG_B,
            vec![hb_chunk(HEARTBEAT_ACK)],
            SctpConntrack::Closed,
            10,
        ),
    ] {
        let mut s = Assoc::new();
        assert_eq!(s.a(tag, &chunks), Out::Ok, "{chunks:?}");
        s.check(state, secs);
        assert_eq!(s.entry().status() & IPS_ASSURED, 0);
    }
    // An out-of-the-blue SHUTDOWN_ACK expects a SHUTDOWN_COMPLETE with the T flag and the
    // same tag back.
    let mut s = Assoc::new();
    assert_eq!(s.a(TAG_B, &[simple(SHUTDOWN_ACK)]), Out::Ok);
    assert_eq!(s.conn().vtag, [0, TAG_B]);
    assert_eq!(
        s.b(TAG_B, &[chunk(SHUTDOWN_COMPLETE, TF, &[])]),
        Out::Invalid
    );
    assert_eq!(s.b(TAG_B, &[simple(SHUTDOWN_COMPLETE)]), Out::Ok);
    s.check(SctpConntrack::Closed, 10);
}

#[test]
fn init_retransmissions_do_not_refresh() {
    let mut s = Assoc::new();
    s.a(0, &[init_chunk(INIT, TAG_A, &[])]);
    let t = s.entry().timeout();
    // Retransmitted (CLOSED to CLOSED on a confirmed entry): accepted, not refreshed.
    assert_eq!(s.a(0, &[init_chunk(INIT, TAG_A, &[])]), Out::Ok);
    assert_eq!(s.entry().timeout(), t);
    assert_eq!(s.ct.seen.borrow().last().unwrap().action.refresh, None);
    // In COOKIE_WAIT it is refreshed to 3 s.
    s.b(TAG_A, &[init_chunk(INIT_ACK, TAG_B, &[])]);
    assert_eq!(s.a(0, &[init_chunk(INIT, TAG_A, &[])]), Out::Ok);
    s.check(SctpConntrack::CookieWait, 3);
}

#[test]
fn a_secondary_path_through_heartbeat() {
    let mut s = Assoc::new();
    s.a(0, &[init_chunk(INIT, TAG_A, &[])]);
    s.b(TAG_A, &[init_chunk(INIT_ACK, TAG_B, &[])]);
    s.a(TAG_B, &[chunk(COOKIE_ECHO, 0, &[1; 4])]);
    s.b(TAG_A, &[simple(COOKIE_ACK)]);
    // A's second address probes B: a new entry in HEARTBEAT_SENT, 30 s, knowing A's tag for
    // B (the one A's packets carry).
    s.a = {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[192, 168, 2, 10]);
        a
    };
    assert_eq!(s.a(TAG_B, &[hb_chunk(HEARTBEAT)]), Out::Ok);
    assert_eq!(s.ct.table.borrow().len(), 2);
    let second = s.ct.table.borrow()[1].clone();
    let conn = |e: &HostEntry| match e.l4() {
        L4State::Sctp(c) => c,
        _ => panic!("not SCTP"),
    };
    assert_eq!(conn(&second).state, SctpConntrack::HeartbeatSent);
    assert_eq!(conn(&second).vtag, [TAG_B, 0]);
    assert_eq!(second.timeout(), s.now + 30 * HZ);
    assert_eq!(
        l4proto::print(132, &second.l4()),
        L4Info::State("HEARTBEAT_SENT")
    );
    // Nothing else but heartbeats before the answer: DATA from B is checked against tag 0.
    let now = s.now;
    assert_eq!(s.b(TAG_A, &[data_chunk(1, b"a")]), Out::Invalid);
    // The HEARTBEAT_ACK: ESTABLISHED, assured, B's tag learnt.
    assert_eq!(s.b(TAG_A, &[hb_chunk(HEARTBEAT_ACK)]), Out::Ok);
    assert_eq!(conn(&second).state, SctpConntrack::Established);
    assert_eq!(conn(&second).vtag, [TAG_B, TAG_A]);
    assert_eq!(second.timeout(), now + 2 + 210 * HZ);
    assert_eq!(
        second.status(),
        IPS_CONFIRMED | IPS_SEEN_REPLY | IPS_ASSURED
    );
    // Data on the path, both ways, with the association's tags.
    assert_eq!(s.a(TAG_B, &[data_chunk(5, b"via 2")]), Out::Ok);
    assert_eq!(s.b(TAG_A, &[chunk(SACK, 0, &[0; 12])]), Out::Ok);
    assert_eq!(s.a(TAG_A, &[data_chunk(6, b"bad")]), Out::Invalid);
    // A heartbeat answered from HEARTBEAT_SENT in the original direction stays there.
    let mut s = Assoc::new();
    s.a(TAG_B, &[hb_chunk(HEARTBEAT)]);
    assert_eq!(s.a(TAG_B, &[hb_chunk(HEARTBEAT)]), Out::Ok);
    s.check(SctpConntrack::HeartbeatSent, 30);
    // The reply direction may not start anything else there.
    for ty in [INIT_ACK, ABORT, SHUTDOWN, SHUTDOWN_ACK, ERROR, COOKIE_ACK] {
        let c = if ty == INIT_ACK {
            init_chunk(ty, 1, &[])
        } else {
            simple(ty)
        };
        assert_eq!(s.b(0, &[c]), Out::Invalid, "chunk {ty}");
    }
}

#[test]
fn an_invalid_packet_may_still_assure() {
    // COOKIE_ACK reaches ESTABLISHED; the HEARTBEAT with an unknown tag bundled with DATA
    // after it makes the packet invalid. 6.12 keeps the state and the assured bit.
    let mut s = Assoc::new();
    s.a(0, &[init_chunk(INIT, TAG_A, &[])]);
    s.b(TAG_A, &[init_chunk(INIT_ACK, TAG_B, &[])]);
    s.a(TAG_B, &[chunk(COOKIE_ECHO, 0, &[1; 4])]);
    let t = s.entry().timeout();
    let out = s.b(
        0x9999,
        &[simple(COOKIE_ACK), data_chunk(1, b"a"), hb_chunk(HEARTBEAT)],
    );
    assert_eq!(out, Out::Invalid);
    assert_eq!(s.conn().state, SctpConntrack::Established);
    assert_eq!(s.entry().status() & IPS_ASSURED, IPS_ASSURED);
    assert_eq!(s.entry().timeout(), t);
    let seen = s.ct.seen.borrow();
    let a = seen.last().unwrap().action;
    assert_eq!(a.verdict, L4Verdict::Invalid);
    assert!(a.set_assured && a.protoinfo);
}

/// A packet whose checksum the device verified (`CHECKSUM_UNNECESSARY`), or will fill in.
struct Offloaded<'a>(&'a [u8]);

impl PacketBytes for Offloaded<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), ParseError> {
        self.0.read(offset, buf)
    }
}

impl Packet for Offloaded<'_> {
    fn l4_checksum_ok(&self, _: Hook, _: L3, _: usize, _: u8, _: Option<usize>) -> bool {
        true
    }

    fn nf_view(&self) -> Option<NfView> {
        None
    }

    fn checksum_none(&self) -> bool {
        false
    }

    fn tail(&self, off: usize) -> Option<&[u8]> {
        self.0.get(off..)
    }

    fn nf_seqadj(&self) -> Option<[crate::proto::handoff::SeqAdj; 2]> {
        None
    }

    fn nf_nat_helper(&self) -> bool {
        false
    }
}

#[test]
fn the_crc_is_verified_where_6_12_does() {
    let s = Assoc::new();
    let mut p = s.packet(true, 0, &[init_chunk(INIT, TAG_A, &[])]);
    p[20 + 8] ^= 0xff;
    // PRE_ROUTING, nothing verified before: invalid.
    let ct = HostCt::with(Settings::defaults());
    receive(&ct, &p, L3::Ipv4, 100, HZ);
    assert_eq!((ct.stat(Stat::Invalid), ct.table.borrow().len()), (1, 0));
    // PRE_ROUTING, verified by the device: tracked.
    let c = ctx(Hook::PreRouting, L3::Ipv4, 7, 100, HZ);
    crate::host_ct::run_hook(&ct, HookRole::Track, &Offloaded(&p), &c);
    let c = ctx(Hook::LocalIn, L3::Ipv4, 7, 100, HZ);
    crate::host_ct::run_hook(&ct, HookRole::Confirm, &Offloaded(&p), &c);
    assert_eq!((ct.stat(Stat::Invalid), ct.table.borrow().len()), (1, 1));
    // LOCAL_OUT: never verified.
    let ct = HostCt::with(Settings::defaults());
    let pk = crate::host_ct::Pkt {
        bytes: &p,
        nf: None,
    };
    let c = ctx(Hook::LocalOut, L3::Ipv4, 8, 100, HZ);
    crate::host_ct::run_hook(&ct, HookRole::Track, &pk, &c);
    let c = ctx(Hook::PostRouting, L3::Ipv4, 8, 100, HZ);
    crate::host_ct::run_hook(&ct, HookRole::Confirm, &pk, &c);
    assert_eq!((ct.stat(Stat::Invalid), ct.table.borrow().len()), (0, 1));
}

#[test]
fn early_drop_may_take_an_assured_association_shutting_down() {
    let mut s = Assoc::new();
    s.a(0, &[init_chunk(INIT, TAG_A, &[])]);
    s.b(TAG_A, &[init_chunk(INIT_ACK, TAG_B, &[])]);
    s.a(TAG_B, &[chunk(COOKIE_ECHO, 0, &[1; 4])]);
    s.b(TAG_A, &[simple(COOKIE_ACK)]);
    assert!(!l4proto::can_early_drop(132, &s.entry().l4()));
    s.a(TAG_B, &[chunk(SHUTDOWN, 0, &[0; 4])]);
    assert!(l4proto::can_early_drop(132, &s.entry().l4()));
    let e = s.entry();
    assert_eq!(e.status() & IPS_ASSURED, IPS_ASSURED);
}

#[test]
fn the_fuzz_entry_runs_the_sctp_tracker() {
    // Whole packets of both families, every truncation, and deterministic mutations of
    // chunk headers and tags: the fuzzer's invariants (`check_sctp` in host/lib.rs) hold.
    let mut packets = Vec::new();
    for s in valid_segments() {
        packets.push(Ipv4::new(132, A4, B4).build(&s));
        packets.push(Ipv6::new(132, A6, B6).build(&s));
    }
    let mut x = 0x2545_f491u32;
    for p in &packets {
        for cut in 0..=p.len() {
            crate::fuzz_parse(&p[..cut]);
        }
        for _ in 0..200 {
            // xorshift32
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let mut m = p.clone();
            let l4 = if m[0] >> 4 == 4 { 20 } else { 40 };
            let i = l4 + 4 + (x as usize >> 8) % (m.len() - l4 - 4);
            m[i] = x as u8;
            crate::fuzz_parse(&m);
        }
    }
}
