// SPDX-License-Identifier: GPL-2.0

//! Packet builders for the host tests.
//!
//! IPv4 and IPv6 headers come out with consistent length fields, the IPv4 header checksum and
//! the transport checksum (TCP, UDP, DCCP, ICMP, ICMPv6; SCTP carries its own CRC32c) unless
//! the packet is a fragment. Fields are public so that a test can break exactly one thing.

#![allow(dead_code)] // A toolbox: not every test file uses every builder.

/// A private IPv4 client address, 192.168.1.10.
pub(crate) const A4: [u8; 4] = [192, 168, 1, 10];
/// An IPv4 server address, 10.0.0.1.
pub(crate) const B4: [u8; 4] = [10, 0, 0, 1];
/// 2001:db8::1.
pub(crate) const A6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
/// 2001:db8:0:1::ab:cdef.
pub(crate) const B6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0xab, 0xcd, 0xef,
];
/// fe80::1, link-local.
pub(crate) const LL6: [u8; 16] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// IPv4 "more fragments" flag in `frag_off`.
pub(crate) const IP_MF: u16 = 0x2000;
/// IPv4 "don't fragment" flag in `frag_off`.
pub(crate) const IP_DF: u16 = 0x4000;

/// IPv6 extension header numbers.
pub(crate) const HOP: u8 = 0;
pub(crate) const ROUTING: u8 = 43;
pub(crate) const FRAGMENT: u8 = 44;
pub(crate) const ESP: u8 = 50;
pub(crate) const AUTH: u8 = 51;
pub(crate) const NONE: u8 = 59;
pub(crate) const DEST: u8 = 60;

/// TCP flags.
pub(crate) const FIN: u8 = 0x01;
pub(crate) const SYN: u8 = 0x02;
pub(crate) const RST: u8 = 0x04;
pub(crate) const PSH: u8 = 0x08;
pub(crate) const ACK: u8 = 0x10;
pub(crate) const URG: u8 = 0x20;
pub(crate) const ECE: u8 = 0x40;
pub(crate) const CWR: u8 = 0x80;

/// One's complement sum of `data` as big-endian 16-bit words, added to `sum`.
fn sum16(mut sum: u32, data: &[u8]) -> u32 {
    for pair in data.chunks(2) {
        let hi = u32::from(pair[0]) << 8;
        let lo = pair.get(1).copied().map_or(0, u32::from);
        sum += hi | lo;
    }
    sum
}

/// Folds and complements a one's complement sum (RFC 1071).
fn fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The Internet checksum of `data`.
pub(crate) fn csum(data: &[u8]) -> u16 {
    fold(sum16(0, data))
}

/// CRC32c (Castagnoli) as SCTP uses it, reflected, stored little-endian in the header.
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Fills the transport checksum of `seg` given the pseudo-header sum, where the protocol has
/// one and `seg` is long enough to hold it.
fn fill_l4_csum(proto: u8, pseudo: u32, seg: &mut [u8]) {
    let off = match proto {
        6 => 16,
        17 | 33 => 6,
        1 | 58 => 2,
        _ => return,
    };
    if seg.len() < off + 2 {
        return;
    }
    seg[off] = 0;
    seg[off + 1] = 0;
    // ICMP (unlike ICMPv6) has no pseudo header.
    let init = if proto == 1 { 0 } else { pseudo };
    let mut c = fold(sum16(init, seg));
    if c == 0 && proto == 17 {
        c = 0xffff;
    }
    seg[off..off + 2].copy_from_slice(&c.to_be_bytes());
}

/// An IPv4 header. `None` fields are computed.
#[derive(Clone, Debug)]
pub(crate) struct Ipv4 {
    pub(crate) version: u8,
    /// Header length in 32-bit words; default from the options.
    pub(crate) ihl: Option<u8>,
    /// Total length; default header plus payload.
    pub(crate) tot_len: Option<u16>,
    pub(crate) id: u16,
    /// Flags and fragment offset (8-byte units), as on the wire.
    pub(crate) frag_off: u16,
    pub(crate) ttl: u8,
    pub(crate) proto: u8,
    pub(crate) src: [u8; 4],
    pub(crate) dst: [u8; 4],
    /// Options, padded with zeros (end of options) to a multiple of 4.
    pub(crate) options: Vec<u8>,
}

impl Ipv4 {
    /// A plain header: no options, DF clear, TTL 64.
    pub(crate) fn new(proto: u8, src: [u8; 4], dst: [u8; 4]) -> Self {
        Ipv4 {
            version: 4,
            ihl: None,
            tot_len: None,
            id: 0x1c46,
            frag_off: 0,
            ttl: 64,
            proto,
            src,
            dst,
            options: Vec::new(),
        }
    }

    /// Header followed by `payload`, checksums filled.
    pub(crate) fn build(&self, payload: &[u8]) -> Vec<u8> {
        let mut opts = self.options.clone();
        while !opts.len().is_multiple_of(4) {
            opts.push(0);
        }
        let hlen = 20 + opts.len();
        let ihl = self.ihl.unwrap_or((hlen / 4) as u8);
        let tot_len = self.tot_len.unwrap_or(
            (hlen + payload.len())
                .try_into()
                .expect("IPv4 packet too long"),
        );
        let mut p = vec![(self.version << 4) | (ihl & 0x0f), 0];
        p.extend_from_slice(&tot_len.to_be_bytes());
        p.extend_from_slice(&self.id.to_be_bytes());
        p.extend_from_slice(&self.frag_off.to_be_bytes());
        p.extend_from_slice(&[self.ttl, self.proto, 0, 0]);
        p.extend_from_slice(&self.src);
        p.extend_from_slice(&self.dst);
        p.extend_from_slice(&opts);
        let c = csum(&p);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        let mut seg = payload.to_vec();
        if self.frag_off & (IP_MF | 0x1fff) == 0 {
            let mut pseudo = sum16(0, &self.src);
            pseudo = sum16(pseudo, &self.dst);
            pseudo += u32::from(self.proto) + seg.len() as u32;
            fill_l4_csum(self.proto, pseudo, &mut seg);
        }
        p.extend_from_slice(&seg);
        p
    }
}

/// An IPv6 header with a chain of extension headers.
#[derive(Clone, Debug)]
pub(crate) struct Ipv6 {
    pub(crate) version: u8,
    /// Payload length; default extension headers plus payload.
    pub(crate) payload_len: Option<u16>,
    pub(crate) hop_limit: u8,
    pub(crate) src: [u8; 16],
    pub(crate) dst: [u8; 16],
    /// Extension headers as (type, bytes). `build` writes each one's next-header byte.
    pub(crate) exts: Vec<(u8, Vec<u8>)>,
    /// The protocol after the last extension header.
    pub(crate) proto: u8,
}

impl Ipv6 {
    /// A header without extension headers, hop limit 64.
    pub(crate) fn new(proto: u8, src: [u8; 16], dst: [u8; 16]) -> Self {
        Ipv6 {
            version: 6,
            payload_len: None,
            hop_limit: 64,
            src,
            dst,
            exts: Vec::new(),
            proto,
        }
    }

    /// Appends an extension header of type `ty` (bytes from [`opts_hdr`], [`frag_hdr`],
    /// [`auth_hdr`] or hand-made).
    pub(crate) fn ext(mut self, ty: u8, bytes: Vec<u8>) -> Self {
        self.exts.push((ty, bytes));
        self
    }

    /// Header, extension headers and `payload`, the transport checksum filled unless there is
    /// a fragment header.
    pub(crate) fn build(&self, payload: &[u8]) -> Vec<u8> {
        let mut chain = Vec::new();
        for (i, (_, bytes)) in self.exts.iter().enumerate() {
            let mut b = bytes.clone();
            b[0] = self.exts.get(i + 1).map_or(self.proto, |e| e.0);
            chain.extend_from_slice(&b);
        }
        let first = self.exts.first().map_or(self.proto, |e| e.0);
        let payload_len = self.payload_len.unwrap_or(
            (chain.len() + payload.len())
                .try_into()
                .expect("IPv6 payload too long"),
        );
        let mut p = vec![self.version << 4, 0, 0, 0];
        p.extend_from_slice(&payload_len.to_be_bytes());
        p.extend_from_slice(&[first, self.hop_limit]);
        p.extend_from_slice(&self.src);
        p.extend_from_slice(&self.dst);
        p.extend_from_slice(&chain);
        let mut seg = payload.to_vec();
        if !self.exts.iter().any(|e| e.0 == FRAGMENT) {
            let mut pseudo = sum16(0, &self.src);
            pseudo = sum16(pseudo, &self.dst);
            pseudo += seg.len() as u32 + u32::from(self.proto);
            fill_l4_csum(self.proto, pseudo, &mut seg);
        }
        p.extend_from_slice(&seg);
        p
    }
}

/// Hop-by-hop, routing or destination options header of `(hdrlen + 1) * 8` bytes, padded
/// with Pad1 options.
pub(crate) fn opts_hdr(hdrlen: u8) -> Vec<u8> {
    let mut h = vec![0u8; (usize::from(hdrlen) + 1) * 8];
    h[1] = hdrlen;
    h
}

/// Fragment header; `offset` in 8-byte units.
pub(crate) fn frag_hdr(offset: u16, more: bool, id: u32) -> Vec<u8> {
    let fo = (offset << 3) | u16::from(more);
    let mut h = vec![0, 0];
    h.extend_from_slice(&fo.to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h
}

/// Authentication header whose length field is `len`: `(len + 2) * 4` bytes.
pub(crate) fn auth_hdr(len: u8) -> Vec<u8> {
    let mut h = vec![0u8; (usize::from(len) + 2) * 4];
    h[1] = len;
    h[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes()); // SPI
    h[8..12].copy_from_slice(&1u32.to_be_bytes()); // sequence number
    h
}

/// UDP header and `data` (checksum left to the IP builder).
pub(crate) fn udp(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + data.len()).expect("UDP datagram too long");
    let mut h = Vec::new();
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(data);
    h
}

/// A TCP header.
#[derive(Clone, Debug)]
pub(crate) struct Tcp {
    pub(crate) sport: u16,
    pub(crate) dport: u16,
    pub(crate) seq: u32,
    pub(crate) ack: u32,
    pub(crate) flags: u8,
    pub(crate) window: u16,
    /// Options, padded with zeros (end of option list) to a multiple of 4.
    pub(crate) options: Vec<u8>,
}

impl Tcp {
    /// A header with `flags`, sequence number 1000, window 65535, no options.
    pub(crate) fn new(sport: u16, dport: u16, flags: u8) -> Self {
        Tcp {
            sport,
            dport,
            seq: 1000,
            ack: 0,
            flags,
            window: 65535,
            options: Vec::new(),
        }
    }

    /// A header with every field given and `options`.
    pub(crate) fn with(flags: u8, seq: u32, ack: u32, window: u16, options: Vec<u8>) -> Self {
        Tcp {
            sport: 40000,
            dport: 8080,
            seq,
            ack,
            flags,
            window,
            options,
        }
    }

    /// Header and `data` (checksum left to the IP builder).
    pub(crate) fn build(&self, data: &[u8]) -> Vec<u8> {
        let mut opts = self.options.clone();
        while !opts.len().is_multiple_of(4) {
            opts.push(0);
        }
        let doff = ((20 + opts.len()) / 4) as u8;
        let mut h = Vec::new();
        h.extend_from_slice(&self.sport.to_be_bytes());
        h.extend_from_slice(&self.dport.to_be_bytes());
        h.extend_from_slice(&self.seq.to_be_bytes());
        h.extend_from_slice(&self.ack.to_be_bytes());
        h.extend_from_slice(&[doff << 4, self.flags]);
        h.extend_from_slice(&self.window.to_be_bytes());
        h.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
        h.extend_from_slice(&opts);
        h.extend_from_slice(data);
        h
    }
}

/// TCP option builders, each returning the option's bytes (kind, length, value).
pub(crate) mod tcpopt {
    /// End of option list.
    pub(crate) const EOL: u8 = 0;
    /// No-operation (padding).
    pub(crate) const NOP: u8 = 1;

    /// Maximum segment size.
    pub(crate) fn mss(mss: u16) -> Vec<u8> {
        let [a, b] = mss.to_be_bytes();
        vec![2, 4, a, b]
    }

    /// Window scale.
    pub(crate) fn wscale(shift: u8) -> Vec<u8> {
        vec![3, 3, shift]
    }

    /// SACK permitted.
    pub(crate) fn sack_perm() -> Vec<u8> {
        vec![4, 2]
    }

    /// SACK blocks `(left, right)`.
    pub(crate) fn sack(blocks: &[(u32, u32)]) -> Vec<u8> {
        let mut o = vec![
            5,
            u8::try_from(2 + 8 * blocks.len()).expect("too many blocks"),
        ];
        for (l, r) in blocks {
            o.extend_from_slice(&l.to_be_bytes());
            o.extend_from_slice(&r.to_be_bytes());
        }
        o
    }

    /// Timestamps.
    pub(crate) fn ts(val: u32, ecr: u32) -> Vec<u8> {
        let mut o = vec![8, 10];
        o.extend_from_slice(&val.to_be_bytes());
        o.extend_from_slice(&ecr.to_be_bytes());
        o
    }

    /// The options concatenated (callers add NOPs where a real stack would).
    pub(crate) fn list(opts: &[Vec<u8>]) -> Vec<u8> {
        opts.concat()
    }
}

/// ICMP or ICMPv6 message: type, code, the 4 "rest of header" bytes and `data` (checksum left
/// to the IP builder).
pub(crate) fn icmp(ty: u8, code: u8, rest: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut h = vec![ty, code, 0, 0];
    h.extend_from_slice(&rest);
    h.extend_from_slice(data);
    h
}

/// ICMP or ICMPv6 echo request/reply of type `ty`.
pub(crate) fn echo(ty: u8, id: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let [i0, i1] = id.to_be_bytes();
    let [s0, s1] = seq.to_be_bytes();
    icmp(ty, 0, [i0, i1, s0, s1], data)
}

/// SCTP common header and `chunks`, with its CRC32c.
pub(crate) fn sctp(sport: u16, dport: u16, vtag: u32, chunks: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&vtag.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 0]);
    h.extend_from_slice(chunks);
    let c = crc32c(&h);
    h[8..12].copy_from_slice(&c.to_le_bytes());
    h
}

/// SCTP chunk: type, flags, and `value` padded to 4 bytes.
pub(crate) fn sctp_chunk(ty: u8, flags: u8, value: &[u8]) -> Vec<u8> {
    let len = u16::try_from(4 + value.len()).expect("SCTP chunk too long");
    let mut c = vec![ty, flags];
    c.extend_from_slice(&len.to_be_bytes());
    c.extend_from_slice(value);
    while !c.len().is_multiple_of(4) {
        c.push(0);
    }
    c
}

/// DCCP generic header with extended (48-bit) sequence number, packet type `ty`, and `data`
/// (checksum left to the IP builder).
pub(crate) fn dccp(sport: u16, dport: u16, ty: u8, seq: u64, data: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    // Data offset 4 words, CCVal/CsCov 0 (whole packet), checksum, type with X=1, reserved.
    h.extend_from_slice(&[4, 0, 0, 0, (ty << 1) | 1, 0]);
    h.extend_from_slice(&seq.to_be_bytes()[2..]);
    h.extend_from_slice(data);
    h
}

/// GRE header: flags/version word, protocol, then `rest` (key, call id, ...).
pub(crate) fn gre(flags_ver: u16, proto: u16, rest: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&flags_ver.to_be_bytes());
    h.extend_from_slice(&proto.to_be_bytes());
    h.extend_from_slice(rest);
    h
}
