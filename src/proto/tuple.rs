// SPDX-License-Identifier: GPL-2.0

//! Connection tracking tuples: extraction from packets, inversion and `/proc` text.
//!
//! C headers: [`include/net/netfilter/nf_conntrack_tuple.h`](srctree/include/net/netfilter/nf_conntrack_tuple.h),
//! [`include/uapi/linux/netfilter/nf_conntrack_tuple_common.h`](srctree/include/uapi/linux/netfilter/nf_conntrack_tuple_common.h).
//! C sources: [`net/netfilter/nf_conntrack_core.c`](srctree/net/netfilter/nf_conntrack_core.c)
//! (`nf_ct_get_tuple`, `ipv4_get_l4proto`, `ipv6_get_l4proto`, `nf_ct_invert_tuple`),
//! `nf_conntrack_proto_icmp.c`, `nf_conntrack_proto_icmpv6.c`, `nf_conntrack_proto_gre.c`,
//! `nf_conntrack_standalone.c` (`print_tuple`) and `net/ipv6/exthdrs_core.c`.
//!
//! This file is pure `core` code: the module builds it, and so does the host crate in `host/`
//! for unit tests. Packet bytes are reached only through [`PacketBytes`], every offset is
//! computed with checked arithmetic, and nothing here can panic.

use core::fmt::{self, Write};

/// `NFPROTO_IPV4` (= `AF_INET`), the kernel's `l3num` for IPv4.
pub(crate) const NFPROTO_IPV4: u16 = 2;
/// `NFPROTO_IPV6` (= `AF_INET6`), the kernel's `l3num` for IPv6.
pub(crate) const NFPROTO_IPV6: u16 = 10;

/// `IPPROTO_ICMP`.
pub(crate) const IPPROTO_ICMP: u8 = 1;
/// `IPPROTO_TCP`.
pub(crate) const IPPROTO_TCP: u8 = 6;
/// `IPPROTO_UDP`.
pub(crate) const IPPROTO_UDP: u8 = 17;
/// `IPPROTO_DCCP`.
pub(crate) const IPPROTO_DCCP: u8 = 33;
/// `IPPROTO_GRE`.
pub(crate) const IPPROTO_GRE: u8 = 47;
/// `IPPROTO_ICMPV6`.
pub(crate) const IPPROTO_ICMPV6: u8 = 58;
/// `IPPROTO_SCTP`.
pub(crate) const IPPROTO_SCTP: u8 = 132;
/// `IPPROTO_UDPLITE`.
pub(crate) const IPPROTO_UDPLITE: u8 = 136;

// IPv6 extension headers that `ipv6_skip_exthdr` walks (`ipv6_ext_hdr`).
const NEXTHDR_HOP: u8 = 0;
const NEXTHDR_ROUTING: u8 = 43;
const NEXTHDR_FRAGMENT: u8 = 44;
const NEXTHDR_AUTH: u8 = 51;
const NEXTHDR_NONE: u8 = 59;
const NEXTHDR_DEST: u8 = 60;

const IPV4_HDR_LEN: usize = 20;
const IPV6_HDR_LEN: usize = 40;
/// `struct icmphdr` and `struct icmp6hdr` are both 8 bytes.
const ICMP_HDR_LEN: usize = 8;
/// `IP_OFFSET`: the fragment offset bits of `iphdr.frag_off`.
const IP_OFFSET: u16 = 0x1fff;

// ICMP types with an inverse (`invmap` in nf_conntrack_proto_icmp.c) and `NR_ICMP_TYPES`.
const ICMP_ECHOREPLY: u8 = 0;
const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_SOURCE_QUENCH: u8 = 4;
const ICMP_REDIRECT: u8 = 5;
const ICMP_ECHO: u8 = 8;
const ICMP_TIME_EXCEEDED: u8 = 11;
const ICMP_PARAMETERPROB: u8 = 12;
const ICMP_TIMESTAMP: u8 = 13;
const ICMP_TIMESTAMPREPLY: u8 = 14;
const ICMP_INFO_REQUEST: u8 = 15;
const ICMP_INFO_REPLY: u8 = 16;
const ICMP_ADDRESS: u8 = 17;
const ICMP_ADDRESSREPLY: u8 = 18;
const NR_ICMP_TYPES: u8 = 18;

const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;
const ICMPV6_NI_QUERY: u8 = 139;
const ICMPV6_NI_REPLY: u8 = 140;
const NDISC_REDIRECT: u8 = 137;
/// `ND_OPT_REDIRECT_HDR`: the neighbour discovery option quoting the redirected packet.
const ND_OPT_REDIRECT_HDR: u8 = 4;
/// `struct rd_msg` without options: ICMPv6 header, target and destination address.
const RD_MSG_LEN: usize = ICMP_HDR_LEN + 16 + 16;

/// `GRE_VERSION` mask and `GRE_VERSION_1` (PPTP's enhanced GRE) in the GRE flags word.
const GRE_VERSION_MASK: u16 = 0x0007;
const GRE_VERSION_1: u16 = 0x0001;
/// `GRE_PROTO_PPP`.
const GRE_PROTO_PPP: u16 = 0x880b;

/// Why no tuple could be taken from a packet. nf_conntrack leaves all of these untracked
/// (the packet is accepted without a conntrack and counts as `invalid`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ParseError {
    /// A header the tuple needs lies (partly) beyond the end of the packet.
    Truncated,
    /// A header field is inconsistent: IP version, IPv4 IHL, an IP length field, or GRE
    /// version 1 carrying something other than PPP.
    Malformed,
    /// A non-first fragment. Conntrack runs after defragmentation and ignores these.
    Fragment,
    /// The IPv6 header chain ends in `NEXTHDR_NONE`, so there is no transport protocol.
    NoNextHeader,
}

/// Read access to the bytes of a packet, linear or not.
///
/// Offsets count from the start of the packet data (`skb->data` in the kernel).
pub(crate) trait PacketBytes {
    /// Number of bytes in the packet (`skb->len`).
    fn len(&self) -> usize;

    /// Copies `buf.len()` bytes starting at `offset` into `buf`, like `skb_header_pointer`.
    /// Fails with [`ParseError::Truncated`] when any of them is beyond the packet.
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), ParseError>;
}

impl PacketBytes for [u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }

    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), ParseError> {
        let end = offset.checked_add(buf.len()).ok_or(ParseError::Truncated)?;
        let src = self.get(offset..end).ok_or(ParseError::Truncated)?;
        // Cannot panic: `src` has exactly `buf.len()` bytes.
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// Reads a fixed number of bytes at `off`.
fn read_array<const N: usize, P: PacketBytes + ?Sized>(
    pkt: &P,
    off: usize,
) -> Result<[u8; N], ParseError> {
    let mut buf = [0u8; N];
    pkt.read(off, &mut buf)?;
    Ok(buf)
}

/// `a + b` for packet offsets; an overflow can only mean "beyond the packet".
fn add(a: usize, b: usize) -> Result<usize, ParseError> {
    a.checked_add(b).ok_or(ParseError::Truncated)
}

/// Direction of a tuple within its connection (`enum ip_conntrack_dir`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(u8)]
pub(crate) enum Dir {
    /// `IP_CT_DIR_ORIGINAL`: as seen in the packet that created the connection.
    Original = 0,
    /// `IP_CT_DIR_REPLY`: the inverse of the original direction.
    Reply = 1,
}

impl Dir {
    /// The other direction (`!dir` in `nf_ct_invert_tuple`).
    pub(crate) fn reverse(self) -> Dir {
        match self {
            Dir::Original => Dir::Reply,
            Dir::Reply => Dir::Original,
        }
    }
}

/// Network layer protocol of a tuple (`src.l3num`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum L3 {
    /// IPv4, `NFPROTO_IPV4`.
    Ipv4,
    /// IPv6, `NFPROTO_IPV6`.
    Ipv6,
}

impl L3 {
    /// The kernel's `l3num` (`NFPROTO_*`) for this protocol.
    pub(crate) fn num(self) -> u16 {
        match self {
            L3::Ipv4 => NFPROTO_IPV4,
            L3::Ipv6 => NFPROTO_IPV6,
        }
    }
}

/// An IPv4 or IPv6 address as 16 bytes in network order, like `union nf_inet_addr`: an IPv4
/// address takes the first 4 bytes and the rest stays zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub(crate) struct Addr(pub(crate) [u8; 16]);

impl Addr {
    /// An IPv4 address.
    pub(crate) fn v4(ip: [u8; 4]) -> Addr {
        // Built as 8-byte words, so that it is stored as words: the key copies and hashes
        // it by words, and a word load of bytes stored one by one stalls the CPU.
        let lo = u64::from(u32::from_le_bytes(ip)).to_le_bytes();
        let mut a = [0u8; 16];
        let (first, _) = a.split_at_mut(8);
        first.copy_from_slice(&lo);
        Addr(a)
    }

    /// The IPv4 address held in the first 4 bytes.
    pub(crate) fn ip4(&self) -> [u8; 4] {
        let [a, b, c, d, ..] = self.0;
        [a, b, c, d]
    }
}

/// The transport part of a tuple, chosen by the protocol number like the unions in
/// `struct nf_conntrack_tuple`. All 16-bit values are in host byte order (the kernel keeps
/// them in network order and applies `ntohs` when printing).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum L4 {
    /// TCP, UDP, UDP-Lite, SCTP and DCCP: the source and destination ports.
    Ports {
        /// Source port (`src.u.all`).
        src: u16,
        /// Destination port (`dst.u.all`).
        dst: u16,
    },
    /// ICMP and ICMPv6. The kernel keeps `id` in the source slot (`src.u.icmp.id`) and
    /// type/code in the destination slot (`dst.u.icmp`); `id` is bytes 4-5 of the header
    /// whatever the type, as `icmp_pkt_to_tuple` reads it.
    Icmp {
        /// ICMP type.
        ty: u8,
        /// ICMP code.
        code: u8,
        /// Echo identifier.
        id: u16,
    },
    /// GRE: PPTP call ids (`src.u.gre.key`, `dst.u.gre.key`); zero for plain GRE.
    Gre {
        /// Source key. Only the PPTP helper's keymap fills it, so it is always 0 here.
        src_key: u16,
        /// Destination key: the call id of an enhanced (version 1) GRE header.
        dst_key: u16,
    },
    /// Any other protocol: the tuple is the addresses and the protocol number.
    Generic,
}

/// A connection tracking tuple, `struct nf_conntrack_tuple` without `dst.dir`.
///
/// The direction is left out on purpose: the kernel excludes it from tuple equality and from
/// the hash (`__nfct_hash_offsetend`), so the derived `Eq` and `Hash` here are exactly the
/// kernel's `nf_ct_tuple_equal` and a valid hash key. Whoever stores a tuple in the table keeps
/// its [`Dir`] next to it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Tuple {
    /// Network layer protocol (`src.l3num`).
    pub(crate) l3: L3,
    /// Transport protocol number (`dst.protonum`).
    pub(crate) proto: u8,
    /// Source address (`src.u3`).
    pub(crate) src: Addr,
    /// Destination address (`dst.u3`).
    pub(crate) dst: Addr,
    /// Transport part (`src.u`, `dst.u`).
    pub(crate) l4: L4,
}

impl Tuple {
    /// The tuple of the opposite direction, as `nf_ct_invert_tuple`.
    ///
    /// Addresses and ports (or GRE keys) swap. ICMP and ICMPv6 keep id and code and map the
    /// type to its reply (or request); types without one return `None`, which makes the
    /// kernel refuse to create a connection (`init_conntrack`) or to relate an ICMP error.
    pub(crate) fn invert(&self) -> Option<Tuple> {
        let l4 = match self.l4 {
            L4::Ports { src, dst } => L4::Ports { src: dst, dst: src },
            L4::Gre { src_key, dst_key } => L4::Gre {
                src_key: dst_key,
                dst_key: src_key,
            },
            // The protocol number picks the table, as in the kernel's switch on protonum.
            L4::Icmp { ty, code, id } => L4::Icmp {
                ty: if self.proto == IPPROTO_ICMPV6 {
                    icmpv6_inverse_type(ty)?
                } else {
                    icmp_inverse_type(ty)?
                },
                code,
                id,
            },
            L4::Generic => L4::Generic,
        };
        Some(Tuple {
            l3: self.l3,
            proto: self.proto,
            src: self.dst,
            dst: self.src,
            l4,
        })
    }
}

/// A `struct nf_conntrack_tuple` as nf_conntrack keeps it, copied field by field: the
/// addresses and the two transport words in network byte order, as raw bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct NfTuple {
    /// `src.l3num`.
    pub(crate) l3num: u16,
    /// `dst.protonum`.
    pub(crate) protonum: u8,
    /// `src.u3`.
    pub(crate) src: [u8; 16],
    /// `dst.u3`.
    pub(crate) dst: [u8; 16],
    /// `src.u.all`: source port, ICMP id or GRE key.
    pub(crate) src_u: [u8; 2],
    /// `dst.u.all`: destination port, ICMP type and code, or GRE key.
    pub(crate) dst_u: [u8; 2],
}

impl Tuple {
    /// The tuple nf_conntrack's `t` describes, read as [`parse_ipv4`] and [`parse_ipv6`]
    /// read a packet (the protocol number picks the transport part); `None` for a family
    /// other than IPv4 and IPv6.
    pub(crate) fn from_nf(t: &NfTuple) -> Option<Tuple> {
        let l3 = match t.l3num {
            NFPROTO_IPV4 => L3::Ipv4,
            NFPROTO_IPV6 => L3::Ipv6,
            _ => return None,
        };
        let (a, b) = (u16::from_be_bytes(t.src_u), u16::from_be_bytes(t.dst_u));
        let l4 = match t.protonum {
            IPPROTO_ICMP | IPPROTO_ICMPV6 => {
                let [ty, code] = t.dst_u;
                L4::Icmp { ty, code, id: a }
            }
            IPPROTO_TCP | IPPROTO_UDP | IPPROTO_UDPLITE | IPPROTO_SCTP | IPPROTO_DCCP => {
                L4::Ports { src: a, dst: b }
            }
            IPPROTO_GRE => L4::Gre {
                src_key: a,
                dst_key: b,
            },
            _ => L4::Generic,
        };
        // An IPv4 address is the first 4 bytes; nf_conntrack zeroes the rest.
        let addr = |bytes: [u8; 16]| match l3 {
            L3::Ipv4 => {
                let [a, b, c, d, ..] = bytes;
                Addr::v4([a, b, c, d])
            }
            L3::Ipv6 => Addr(bytes),
        };
        Some(Tuple {
            l3,
            proto: t.protonum,
            src: addr(t.src),
            dst: addr(t.dst),
            l4,
        })
    }
}

/// Length of a tuple's key: what the table hashes and compares.
pub(crate) const KEY_LEN: usize = 40;

/// A tuple encoded as fixed bytes, the form the connection table stores, hashes and compares
/// (`nf_conntrack_tuple` up to `__nfct_hash_offsetend`). Every byte pattern decodes, so racy
/// readers of a recycled entry can compare keys without ever seeing an invalid value.
///
/// Layout: source address (16), destination address (16), source port, ICMP id or GRE key
/// (2, big-endian), destination port or GRE key, or ICMP type and code (2), protocol, l3
/// family, transport kind, and a last byte that is always 0 (the table keeps the direction
/// there, outside the compared and hashed part).
pub(crate) type Key = [u8; KEY_LEN];

const KIND_GENERIC: u8 = 0;
const KIND_PORTS: u8 = 1;
const KIND_ICMP: u8 = 2;
const KIND_GRE: u8 = 3;

impl Tuple {
    /// The key of this tuple.
    pub(crate) fn key(&self) -> Key {
        let (kind, a, b) = match self.l4 {
            L4::Ports { src, dst } => (KIND_PORTS, src.to_be_bytes(), dst.to_be_bytes()),
            L4::Icmp { ty, code, id } => (KIND_ICMP, id.to_be_bytes(), [ty, code]),
            L4::Gre { src_key, dst_key } => {
                (KIND_GRE, src_key.to_be_bytes(), dst_key.to_be_bytes())
            }
            L4::Generic => (KIND_GENERIC, [0, 0], [0, 0]),
        };
        // `l3.num()` fits in a byte (2 or 10).
        let l3 = self.l3.num() as u8;
        // The last word is made in a register and stored whole, as the addresses are.
        // Bytes: a (2), b (2), protocol, l3, kind, 0.
        let tail = u64::from(u16::from_le_bytes(a))
            | u64::from(u16::from_le_bytes(b)) << 16
            | u64::from(self.proto) << 32
            | u64::from(l3) << 40
            | u64::from(kind) << 48;
        let mut k = [0u8; KEY_LEN];
        let (addrs, rest) = k.split_at_mut(32);
        let (src, dst) = addrs.split_at_mut(16);
        src.copy_from_slice(&self.src.0);
        dst.copy_from_slice(&self.dst.0);
        rest.copy_from_slice(&tail.to_le_bytes());
        k
    }

    /// The tuple a key encodes, or `None` for bytes no tuple encodes to.
    pub(crate) fn from_key(k: &Key) -> Option<Tuple> {
        let mut src = [0u8; 16];
        let mut dst = [0u8; 16];
        let (addrs, rest) = k.split_at(32);
        let (s, d) = addrs.split_at(16);
        src.copy_from_slice(s);
        dst.copy_from_slice(d);
        let [a0, a1, b0, b1, proto, l3, kind, _] = <[u8; 8]>::try_from(rest).ok()?;
        let l3 = match u16::from(l3) {
            NFPROTO_IPV4 => L3::Ipv4,
            NFPROTO_IPV6 => L3::Ipv6,
            _ => return None,
        };
        let l4 = match kind {
            KIND_PORTS => L4::Ports {
                src: u16::from_be_bytes([a0, a1]),
                dst: u16::from_be_bytes([b0, b1]),
            },
            KIND_ICMP => L4::Icmp {
                ty: b0,
                code: b1,
                id: u16::from_be_bytes([a0, a1]),
            },
            KIND_GRE => L4::Gre {
                src_key: u16::from_be_bytes([a0, a1]),
                dst_key: u16::from_be_bytes([b0, b1]),
            },
            KIND_GENERIC => L4::Generic,
            _ => return None,
        };
        Some(Tuple {
            l3,
            proto,
            src: Addr(src),
            dst: Addr(dst),
            l4,
        })
    }
}

/// `invmap` of nf_conntrack_proto_icmp.c.
fn icmp_inverse_type(ty: u8) -> Option<u8> {
    match ty {
        ICMP_ECHO => Some(ICMP_ECHOREPLY),
        ICMP_ECHOREPLY => Some(ICMP_ECHO),
        ICMP_TIMESTAMP => Some(ICMP_TIMESTAMPREPLY),
        ICMP_TIMESTAMPREPLY => Some(ICMP_TIMESTAMP),
        ICMP_INFO_REQUEST => Some(ICMP_INFO_REPLY),
        ICMP_INFO_REPLY => Some(ICMP_INFO_REQUEST),
        ICMP_ADDRESS => Some(ICMP_ADDRESSREPLY),
        ICMP_ADDRESSREPLY => Some(ICMP_ADDRESS),
        _ => None,
    }
}

/// `invmap` of nf_conntrack_proto_icmpv6.c.
fn icmpv6_inverse_type(ty: u8) -> Option<u8> {
    match ty {
        ICMPV6_ECHO_REQUEST => Some(ICMPV6_ECHO_REPLY),
        ICMPV6_ECHO_REPLY => Some(ICMPV6_ECHO_REQUEST),
        ICMPV6_NI_QUERY => Some(ICMPV6_NI_REPLY),
        ICMPV6_NI_REPLY => Some(ICMPV6_NI_QUERY),
        _ => None,
    }
}

/// A packet's tuple and where its transport header starts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Parsed {
    /// The original-direction tuple of the packet; `tuple.proto` is the transport protocol.
    pub(crate) tuple: Tuple,
    /// Offset of the transport header in the packet (`dataoff`/`protoff`). For IPv6 it may
    /// point at or, for protocols without a tuple part, past the end of the packet, as the
    /// kernel's does.
    pub(crate) dataoff: usize,
}

/// Network header fields conntrack needs.
struct L3Info {
    src: Addr,
    dst: Addr,
    proto: u8,
    dataoff: usize,
}

/// The IPv4 header at `nhoff`, as `ipv4_get_l4proto`.
///
/// With `outer`, it also checks what `ip_rcv` guarantees for packets reaching the hooks:
/// version 4, IHL >= 5 and a total length covering the header and within the packet. A total
/// length of 0 is allowed, as `iph_totlen` does for BIG TCP packets. The header quoted in an
/// ICMP error is taken as the kernel takes it, without these checks: it is usually cut short.
fn ipv4_l3<P: PacketBytes + ?Sized>(
    pkt: &P,
    nhoff: usize,
    outer: bool,
) -> Result<L3Info, ParseError> {
    let hdr: [u8; IPV4_HDR_LEN] = read_array(pkt, nhoff)?;
    let [vihl, _, tl0, tl1, _, _, fo0, fo1, _, proto, _, _, s0, s1, s2, s3, d0, d1, d2, d3] = hdr;
    let hdr_len = usize::from(vihl & 0x0f) * 4;
    if outer {
        let tot_len = usize::from(u16::from_be_bytes([tl0, tl1]));
        let avail = pkt.len().checked_sub(nhoff).ok_or(ParseError::Truncated)?;
        if vihl >> 4 != 4
            || hdr_len < IPV4_HDR_LEN
            || (tot_len != 0 && (tot_len < hdr_len || tot_len > avail))
        {
            return Err(ParseError::Malformed);
        }
    }
    if u16::from_be_bytes([fo0, fo1]) & IP_OFFSET != 0 {
        return Err(ParseError::Fragment);
    }
    let dataoff = add(nhoff, hdr_len)?;
    // "bogus IPv4 packet" in the kernel.
    if dataoff > pkt.len() {
        return Err(ParseError::Truncated);
    }
    Ok(L3Info {
        src: Addr::v4([s0, s1, s2, s3]),
        dst: Addr::v4([d0, d1, d2, d3]),
        proto,
        dataoff,
    })
}

/// The IPv6 header at `nhoff` and its extension headers, as `ipv6_get_l4proto` and
/// `ipv6_skip_exthdr`.
///
/// With `outer`, it also checks version 6 and, unless it is 0 (jumbogram), that the payload
/// length fits in the packet, as `ip6_rcv` does.
fn ipv6_l3<P: PacketBytes + ?Sized>(
    pkt: &P,
    nhoff: usize,
    outer: bool,
) -> Result<L3Info, ParseError> {
    let [vtc, _, _, _, pl0, pl1, nexthdr, _] = read_array(pkt, nhoff)?;
    let src = Addr(read_array(pkt, add(nhoff, 8)?)?);
    let dst = Addr(read_array(pkt, add(nhoff, 24)?)?);
    let start = add(nhoff, IPV6_HDR_LEN)?;
    if outer {
        let payload_len = usize::from(u16::from_be_bytes([pl0, pl1]));
        if vtc >> 4 != 6 || (payload_len != 0 && add(start, payload_len)? > pkt.len()) {
            return Err(ParseError::Malformed);
        }
    }
    let (proto, dataoff) = skip_exthdr(pkt, start, nexthdr)?;
    Ok(L3Info {
        src,
        dst,
        proto,
        dataoff,
    })
}

/// Skips IPv6 extension headers from `off`, where a header of type `next` starts, and returns
/// the transport protocol and its offset, as `ipv6_skip_exthdr`.
///
/// Every header is at least 8 bytes and must be readable before it is skipped, so the walk
/// ends after at most `len / 8` steps however long the chain is. Like the kernel, it does not
/// check that the last header skipped fits in the packet.
fn skip_exthdr<P: PacketBytes + ?Sized>(
    pkt: &P,
    mut off: usize,
    mut next: u8,
) -> Result<(u8, usize), ParseError> {
    loop {
        let len = match next {
            NEXTHDR_NONE => return Err(ParseError::NoNextHeader),
            NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST | NEXTHDR_AUTH | NEXTHDR_FRAGMENT => {
                let [nh, hdrlen] = read_array(pkt, off)?;
                let len = match next {
                    NEXTHDR_FRAGMENT => {
                        let fo = u16::from_be_bytes(read_array(pkt, add(off, 2)?)?);
                        // Non-first fragment: the kernel stops here and conntrack gives up.
                        if fo & !0x7 != 0 {
                            return Err(ParseError::Fragment);
                        }
                        8
                    }
                    // `ipv6_authlen`: AH counts 4-byte words, minus 2. From a u8, neither
                    // length can exceed 2048.
                    NEXTHDR_AUTH => (usize::from(hdrlen) + 2) * 4,
                    // `ipv6_optlen`: 8-byte units, minus 1.
                    _ => (usize::from(hdrlen) + 1) * 8,
                };
                next = nh;
                len
            }
            _ => return Ok((next, off)),
        };
        off = add(off, len)?;
    }
}

/// The transport part of the tuple for `proto` at `dataoff`, as the switch in
/// `nf_ct_get_tuple` with the `*_pkt_to_tuple` functions.
fn l4_part<P: PacketBytes + ?Sized>(pkt: &P, proto: u8, dataoff: usize) -> Result<L4, ParseError> {
    Ok(match proto {
        IPPROTO_ICMP | IPPROTO_ICMPV6 => {
            // The whole 8-byte header must be there, though only 6 bytes are used.
            let [ty, code, _, _, id0, id1, _, _] = read_array::<ICMP_HDR_LEN, P>(pkt, dataoff)?;
            L4::Icmp {
                ty,
                code,
                id: u16::from_be_bytes([id0, id1]),
            }
        }
        // `nf_ct_get_tuple_ports` reads exactly the 4 bytes of ports.
        IPPROTO_TCP | IPPROTO_UDP | IPPROTO_UDPLITE | IPPROTO_SCTP | IPPROTO_DCCP => {
            let [s0, s1, d0, d1] = read_array(pkt, dataoff)?;
            L4::Ports {
                src: u16::from_be_bytes([s0, s1]),
                dst: u16::from_be_bytes([d0, d1]),
            }
        }
        IPPROTO_GRE => gre_part(pkt, dataoff)?,
        _ => L4::Generic,
    })
}

/// `gre_pkt_to_tuple`: only enhanced GRE (PPTP) has keys; anything else, even a truncated
/// header, is tracked like a generic protocol with both keys 0.
fn gre_part<P: PacketBytes + ?Sized>(pkt: &P, dataoff: usize) -> Result<L4, ParseError> {
    const NO_KEYS: L4 = L4::Gre {
        src_key: 0,
        dst_key: 0,
    };
    let Ok([f0, f1, p0, p1]) = read_array(pkt, dataoff) else {
        return Ok(NO_KEYS);
    };
    if u16::from_be_bytes([f0, f1]) & GRE_VERSION_MASK != GRE_VERSION_1 {
        return Ok(NO_KEYS);
    }
    // `struct pptp_gre_header` up to the call id.
    let Ok([_, _, _, _, _, _, c0, c1]) = read_array::<8, P>(pkt, dataoff) else {
        return Ok(NO_KEYS);
    };
    if u16::from_be_bytes([p0, p1]) != GRE_PROTO_PPP {
        return Err(ParseError::Malformed);
    }
    Ok(L4::Gre {
        src_key: 0,
        dst_key: u16::from_be_bytes([c0, c1]),
    })
}

/// `nf_ct_get_tuplepr`, optionally with the outer-header checks.
fn get_tuple<P: PacketBytes + ?Sized>(
    pkt: &P,
    l3: L3,
    nhoff: usize,
    outer: bool,
) -> Result<Parsed, ParseError> {
    let info = match l3 {
        L3::Ipv4 => ipv4_l3(pkt, nhoff, outer)?,
        L3::Ipv6 => ipv6_l3(pkt, nhoff, outer)?,
    };
    Ok(Parsed {
        tuple: Tuple {
            l3,
            proto: info.proto,
            src: info.src,
            dst: info.dst,
            l4: l4_part(pkt, info.proto, info.dataoff)?,
        },
        dataoff: info.dataoff,
    })
}

/// Tuple and transport offset of the IPv4 packet whose header starts at `nhoff`.
pub(crate) fn parse_ipv4<P: PacketBytes + ?Sized>(
    pkt: &P,
    nhoff: usize,
) -> Result<Parsed, ParseError> {
    get_tuple(pkt, L3::Ipv4, nhoff, true)
}

/// Tuple and transport offset of the IPv6 packet whose header starts at `nhoff`.
pub(crate) fn parse_ipv6<P: PacketBytes + ?Sized>(
    pkt: &P,
    nhoff: usize,
) -> Result<Parsed, ParseError> {
    get_tuple(pkt, L3::Ipv6, nhoff, true)
}

/// The tuple of the packet quoted in an ICMP error, whose network header starts at `nhoff`
/// (right after the 8-byte ICMP header). As the kernel does, the quote may be cut anywhere
/// after the bytes the tuple needs: the IP header and the first 4 (ports) or 8 (ICMP) bytes of
/// the transport header.
pub(crate) fn inner_tuple<P: PacketBytes + ?Sized>(
    pkt: &P,
    l3: L3,
    nhoff: usize,
) -> Result<Tuple, ParseError> {
    Ok(get_tuple(pkt, l3, nhoff, false)?.tuple)
}

/// `icmp_is_err`: ICMP types that quote the packet they are about.
pub(crate) fn icmp_is_error(ty: u8) -> bool {
    matches!(
        ty,
        ICMP_DEST_UNREACH
            | ICMP_SOURCE_QUENCH
            | ICMP_REDIRECT
            | ICMP_TIME_EXCEEDED
            | ICMP_PARAMETERPROB
    )
}

/// ICMPv6 types conntrack treats as errors: every type below 128 (the check in
/// `nf_conntrack_icmpv6_error`, wider than `icmpv6_is_err`'s 1-4).
pub(crate) fn icmpv6_is_error(ty: u8) -> bool {
    ty < ICMPV6_ECHO_REQUEST
}

/// ICMPv6 types conntrack leaves untracked (`noct_valid_new`): MLD and neighbour discovery
/// except redirects.
pub(crate) fn icmpv6_untracked(ty: u8) -> bool {
    matches!(ty, 130..=136 | 143 | 151 | 152)
}

/// ICMP types that may create a connection (`valid_new` in `nf_conntrack_icmp_packet`).
pub(crate) fn icmp_valid_new(ty: u8) -> bool {
    matches!(
        ty,
        ICMP_ECHO | ICMP_TIMESTAMP | ICMP_INFO_REQUEST | ICMP_ADDRESS
    )
}

/// ICMPv6 types that may create a connection (`valid_new` in `nf_conntrack_icmpv6_packet`).
pub(crate) fn icmpv6_valid_new(ty: u8) -> bool {
    matches!(ty, ICMPV6_ECHO_REQUEST | ICMPV6_NI_QUERY)
}

/// What nf_conntrack's ICMP error handling (`nf_conntrack_handle_icmp`) makes of a packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum IcmpVerdict {
    /// Not an error message: track the packet by its own tuple.
    Track,
    /// ICMPv6 MLD or neighbour discovery: mark the packet untracked (`IP_CT_UNTRACKED`).
    Untracked,
    /// An error message. Look up this tuple, the quoted packet's tuple inverted; if it is
    /// found and the found direction's destination equals the outer destination address, the
    /// packet is RELATED to that connection, otherwise it is invalid.
    Related(Tuple),
    /// Invalid: accept without a conntrack (`-NF_ACCEPT`) and count an error.
    Invalid,
}

/// Classifies a parsed ICMP or ICMPv6 packet, whose network header starts at `nhoff`, as
/// `nf_conntrack_icmpv4_error` and `nf_conntrack_icmpv6_error` do.
///
/// The checksum test those functions make first (in PRE_ROUTING, when the `nf_conntrack_checksum`
/// sysctl is on) is left to the caller: a bad checksum makes any verdict [`IcmpVerdict::Invalid`].
/// Packets that are not ICMP over IPv4 or ICMPv6 over IPv6 get [`IcmpVerdict::Track`].
pub(crate) fn icmp_verdict<P: PacketBytes + ?Sized>(
    pkt: &P,
    nhoff: usize,
    parsed: &Parsed,
) -> IcmpVerdict {
    let t = &parsed.tuple;
    let L4::Icmp { ty, code, .. } = t.l4 else {
        return IcmpVerdict::Track;
    };
    let Ok(inner) = add(parsed.dataoff, ICMP_HDR_LEN) else {
        return IcmpVerdict::Invalid;
    };
    match (t.l3, t.proto) {
        (L3::Ipv4, IPPROTO_ICMP) => {
            // RFC 1122 3.2.2: unknown types are discarded.
            if ty > NR_ICMP_TYPES {
                IcmpVerdict::Invalid
            } else if icmp_is_error(ty) {
                related(pkt, L3::Ipv4, inner)
            } else {
                IcmpVerdict::Track
            }
        }
        (L3::Ipv6, IPPROTO_ICMPV6) => {
            if icmpv6_untracked(ty) {
                IcmpVerdict::Untracked
            } else if ty == NDISC_REDIRECT {
                icmpv6_redirect(pkt, nhoff, parsed.dataoff, code, &t.src)
            } else if icmpv6_is_error(ty) {
                related(pkt, L3::Ipv6, inner)
            } else {
                IcmpVerdict::Track
            }
        }
        _ => IcmpVerdict::Track,
    }
}

/// First half of `nf_conntrack_inet_error`: the lookup key for the packet quoted at `nhoff`.
fn related<P: PacketBytes + ?Sized>(pkt: &P, l3: L3, nhoff: usize) -> IcmpVerdict {
    match inner_tuple(pkt, l3, nhoff).ok().and_then(|t| t.invert()) {
        Some(key) => IcmpVerdict::Related(key),
        None => IcmpVerdict::Invalid,
    }
}

/// `nf_conntrack_icmpv6_redirect`: a redirect is related to the connection of the packet
/// it quotes in its Redirected Header option, if it is one the router may send.
fn icmpv6_redirect<P: PacketBytes + ?Sized>(
    pkt: &P,
    nhoff: usize,
    dataoff: usize,
    code: u8,
    saddr: &Addr,
) -> IcmpVerdict {
    let Ok(opt) = add(dataoff, RD_MSG_LEN) else {
        return IcmpVerdict::Invalid;
    };
    // "short redirect"
    if opt > pkt.len() {
        return IcmpVerdict::Invalid;
    }
    if code != 0 {
        return IcmpVerdict::Track;
    }
    let hop_limit = add(nhoff, 7).and_then(|off| read_array::<1, P>(pkt, off));
    if hop_limit != Ok([255]) || !ipv6_linklocal(saddr) {
        return IcmpVerdict::Invalid;
    }
    match read_array::<2, P>(pkt, opt) {
        // "redirect without options"
        Err(_) | Ok([_, 0]) => IcmpVerdict::Invalid,
        Ok([ND_OPT_REDIRECT_HDR, _]) => match add(opt, 8) {
            // Skip the option's type, length and 6 reserved bytes.
            Ok(inner) => related(pkt, L3::Ipv6, inner),
            Err(_) => IcmpVerdict::Invalid,
        },
        Ok(_) => IcmpVerdict::Track,
    }
}

/// Whether `ipv6_addr_type` reports `IPV6_ADDR_LINKLOCAL`: unicast `fe80::/10` or a multicast
/// address of link-local scope.
fn ipv6_linklocal(addr: &Addr) -> bool {
    match addr.0 {
        [0xfe, b, ..] => b & 0xc0 == 0x80,
        [0xff, b, ..] => b & 0x0f == 0x02,
        _ => false,
    }
}

/// Writes one direction's tuple in `/proc/net/nf_conntrack` format, as `print_tuple`:
/// `src=%pI4 dst=%pI4 ` or `src=%pI6 dst=%pI6 ` (all eight groups, four lowercase hex digits
/// each), then `sport=%hu dport=%hu `, `type=%u code=%u id=%u ` or
/// `srckey=0x%x dstkey=0x%x `, and nothing more for other protocols.
pub(crate) fn print_tuple<W: Write>(w: &mut W, t: &Tuple) -> fmt::Result {
    w.write_str("src=")?;
    print_addr(w, t.l3, &t.src)?;
    w.write_str(" dst=")?;
    print_addr(w, t.l3, &t.dst)?;
    w.write_char(' ')?;
    match t.l4 {
        L4::Ports { src, dst } => write!(w, "sport={src} dport={dst} "),
        L4::Icmp { ty, code, id } => write!(w, "type={ty} code={code} id={id} "),
        L4::Gre { src_key, dst_key } => write!(w, "srckey=0x{src_key:x} dstkey=0x{dst_key:x} "),
        L4::Generic => Ok(()),
    }
}

/// `%pI4` or `%pI6`.
pub(crate) fn print_addr<W: Write>(w: &mut W, l3: L3, addr: &Addr) -> fmt::Result {
    match l3 {
        L3::Ipv4 => {
            let [a, b, c, d] = addr.ip4();
            write!(w, "{a}.{b}.{c}.{d}")
        }
        L3::Ipv6 => {
            for (i, group) in addr.0.chunks_exact(2).enumerate() {
                if i != 0 {
                    w.write_char(':')?;
                }
                if let [hi, lo] = group {
                    write!(w, "{hi:02x}{lo:02x}")?;
                }
            }
            Ok(())
        }
    }
}

/// `l3proto_name`: the protocol name in the first column of `/proc/net/nf_conntrack`.
pub(crate) fn l3_name(l3num: u16) -> &'static str {
    match l3num {
        NFPROTO_IPV4 => "ipv4",
        NFPROTO_IPV6 => "ipv6",
        _ => "unknown",
    }
}

/// `l4proto_name`: the protocol name in the third column of `/proc/net/nf_conntrack`.
pub(crate) fn l4_name(proto: u8) -> &'static str {
    match proto {
        IPPROTO_ICMP => "icmp",
        IPPROTO_TCP => "tcp",
        IPPROTO_UDP => "udp",
        IPPROTO_DCCP => "dccp",
        IPPROTO_GRE => "gre",
        IPPROTO_SCTP => "sctp",
        IPPROTO_UDPLITE => "udplite",
        IPPROTO_ICMPV6 => "icmpv6",
        _ => "unknown",
    }
}
