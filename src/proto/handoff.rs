// SPDX-License-Identifier: GPL-2.0

//! How a packet finds, at a later hook, what the module did with it at an earlier one,
//! without `skb->_nfct`. Pure Rust: the kernel side (`conntrack`, `unconfirmed`) supplies
//! the packets' tags and tuples; these rules decide.
//!
//! nf_conntrack carries its entry in `skb->_nfct` from `nf_conntrack_in` to `nf_confirm`, and
//! a packet looped back through `lo` still carries it at PRE_ROUTING, which is how it knows
//! the packet was tracked at LOCAL_OUT. That field is nf_conntrack's. The module tags what it
//! remembers about a packet with the skb's address instead (the *cookie*), and because an skb
//! freed between two hooks may see its address reused by another, every match also checks
//! what the packet is:
//!
//! - [`handoff`]: at the confirm hook, a new entry tagged with the skb's cookie is this
//!   packet's if the packet is still the flow the entry was made for. Between the hooks NAT
//!   may have rewritten it (DNAT at PRE_ROUTING/LOCAL_OUT, SNAT at POST_ROUTING/LOCAL_IN); it
//!   can only do so where nf_conntrack tracks the packet, and then nf_conntrack's entry (read,
//!   never written) says both what the flow was and what NAT made of it.
//! - [`LoopbackRing`]: packets tracked at LOCAL_OUT and sent out on `lo` are remembered, by
//!   cookie and a fingerprint of their bytes as they left, so that PRE_ROUTING skips exactly
//!   those when they come back in, and tracks anything else arriving on `lo` (a packet socket's
//!   packets, which never passed LOCAL_OUT).

use crate::proto::tuple::{PacketBytes, Tuple};

/// nf_conntrack's entry for a packet, from `skb->_nfct`: its tuple in the packet's direction
/// and its tuple in the other direction (the reply as NAT arranged it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NfView {
    /// `ct->tuplehash[CTINFO2DIR(ctinfo)].tuple`.
    pub(crate) this_dir: Tuple,
    /// `ct->tuplehash[!CTINFO2DIR(ctinfo)].tuple`.
    pub(crate) other_dir: Tuple,
}

/// One direction's sequence adjustment in nf_conntrack's entry (`struct nf_ct_seqadj`): how
/// far nf_nat's helpers moved that direction's sequence numbers by rewriting payloads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SeqAdj {
    /// Where the last rewrite was.
    pub(crate) correction_pos: u32,
    /// The offset before it.
    pub(crate) offset_before: i32,
    /// The offset after it.
    pub(crate) offset_after: i32,
}

impl SeqAdj {
    /// `nf_ct_seqadj_set`: a payload at `seq` was rewritten `off` bytes longer.
    pub(crate) fn set(&mut self, seq: u32, off: i32) {
        if off == 0 {
            return;
        }
        if self.offset_before == self.offset_after
            || (self.correction_pos.wrapping_sub(seq) as i32) < 0
        {
            self.correction_pos = seq;
            self.offset_before = self.offset_after;
            self.offset_after = self.offset_after.wrapping_add(off);
        }
    }

    /// `nf_ct_seq_offset` for `seq`.
    pub(crate) fn offset(&self, seq: u32) -> i32 {
        if (self.correction_pos.wrapping_sub(seq) as i32) < 0 {
            self.offset_after
        } else {
            self.offset_before
        }
    }
}

/// What the confirm hook does with an unconfirmed entry carrying its packet's cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Handoff {
    /// The entry is this packet's: confirm it, with `reply` as its reply tuple if given
    /// (the flow is translated), else with the reply tuple it was made with.
    Confirm {
        /// The reply tuple as translated replies will arrive.
        reply: Option<Tuple>,
    },
    /// The packet is another flow's: the entry's own skb is gone (its address is this
    /// skb's now), so the entry can never be confirmed.
    Orphan,
}

/// The confirm hook's decision for an entry whose original tuple is `orig` and whose cookie is
/// the packet's, the packet reading as `now` at the confirm hook (`None`: it cannot be parsed)
/// and nf_conntrack's entry for it being `nf` (`None`: nf_conntrack does not track it).
///
/// - nf_conntrack tracks the packet as the same flow (`nf.this_dir == orig`, both trackers
///   having read the same bytes at the same priority): the packet now reads either as `orig`
///   (not translated) or as the inverse of nf_conntrack's other direction (translated, which
///   is what the replies will look like). The entry takes that other direction as its reply
///   tuple: ports remapped by nf_nat, ICMP ids remapped, addresses masqueraded all included.
/// - Otherwise no NAT applies (nf_nat cannot translate without nf_conntrack): the packet must
///   read as `orig`.
///
/// Anything else is a different flow, so a different skb at the same address: the entry's
/// packet is gone.
pub(crate) fn handoff(orig: &Tuple, now: Option<&Tuple>, nf: Option<&NfView>) -> Handoff {
    if let Some(nf) = nf.filter(|nf| nf.this_dir == *orig) {
        let translated = nf.other_dir.invert();
        let same = now.is_some_and(|n| n == orig || translated.as_ref() == Some(n));
        return if same {
            Handoff::Confirm {
                reply: Some(nf.other_dir),
            }
        } else {
            Handoff::Orphan
        };
    }
    if now == Some(orig) {
        Handoff::Confirm { reply: None }
    } else {
        Handoff::Orphan
    }
}

/// The number of packets a CPU remembers between the hooks of the loopback path.
///
/// `lo` hands packets to the receive path through the CPU's backlog (`netif_rx`), which
/// normally drains right after the send; 256 covers a full burst of the sending side's
/// softirq work with room to spare. Records of packets lost on the way are pushed out by
/// newer ones.
pub(crate) const LOOPBACK_SLOTS: usize = 256;

/// A fingerprint of a packet's bytes: FNV-1a over its length and its first bytes.
pub(crate) fn fingerprint(len: u32, head: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in len.to_ne_bytes().iter().chain(head) {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// How many bytes from the network header a fingerprint covers: an IPv4 header with its
/// transport ports and more, or the IPv6 header and 8 more.
pub(crate) const FINGERPRINT_BYTES: usize = 48;

/// The fingerprint of a packet from its network header at `nhoff`: its length from there and
/// its first [`FINGERPRINT_BYTES`] (fewer if it is shorter).
pub(crate) fn packet_fingerprint<P: PacketBytes + ?Sized>(pkt: &P, nhoff: usize) -> u32 {
    let len = pkt.len().saturating_sub(nhoff);
    let mut head = [0u8; FINGERPRINT_BYTES];
    let n = len.min(FINGERPRINT_BYTES);
    let head: &[u8] = match head.get_mut(..n) {
        Some(h) => match pkt.read(nhoff, h) {
            Ok(()) => h,
            Err(_) => &[],
        },
        None => &[],
    };
    fingerprint(u32::try_from(len).unwrap_or(u32::MAX), head)
}

/// What a [`LoopbackRing`] record says about its packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Mark {
    /// A free slot (zero: a zeroed ring is empty).
    #[default]
    Free = 0,
    /// Found invalid at LOCAL_OUT: nf_conntrack leaves such a packet without an entry, so
    /// tracks it again if it comes back in on `lo`.
    InvalidOut,
    /// Left on `lo` after being tracked at LOCAL_OUT: PRE_ROUTING skips it.
    Looped,
}

/// One remembered packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Slot {
    cookie: usize,
    fingerprint: u32,
    mark: Mark,
}

/// One CPU's memory of packets on the loopback path (all zero bytes: empty): those found invalid at LOCAL_OUT, and
/// those that left on `lo` at POST_ROUTING. A FIFO ring, oldest first, like the backlog the
/// packets go through, so a packet coming back finds its record at the front.
///
/// Used only by its CPU with bottom halves disabled, so it needs no lock. A packet that
/// moves to another CPU between hooks (a preempted sender) is not found there, and is then
/// tracked at PRE_ROUTING as nf_conntrack tracks a looped packet that carries no entry.
pub(crate) struct LoopbackRing {
    slots: [Slot; LOOPBACK_SLOTS],
    /// Index of the oldest slot.
    head: usize,
    /// Number of slots from `head` that may be in use.
    len: usize,
}

impl Default for LoopbackRing {
    fn default() -> Self {
        Self {
            slots: [Slot::default(); LOOPBACK_SLOTS],
            head: 0,
            len: 0,
        }
    }
}

impl LoopbackRing {
    fn at(&self, i: usize) -> usize {
        (self.head + i) % LOOPBACK_SLOTS
    }

    /// Remembers the skb `cookie` with `mark`. When the ring is full the oldest record goes:
    /// its packet has long been delivered or lost.
    pub(crate) fn push(&mut self, mark: Mark, cookie: usize, fingerprint: u32) {
        if self.len == LOOPBACK_SLOTS {
            self.head = self.at(1);
            self.len -= 1;
        }
        let i = self.at(self.len);
        self.slots[i] = Slot {
            cookie,
            fingerprint,
            mark,
        };
        self.len += 1;
    }

    /// Uses up the oldest record of `cookie` with `mark` and `fingerprint`; false if there
    /// is none.
    pub(crate) fn take(&mut self, mark: Mark, cookie: usize, fingerprint: u32) -> bool {
        let Some(n) = (0..self.len).find(|&n| {
            let s = &self.slots[self.at(n)];
            s.mark == mark && s.cookie == cookie && s.fingerprint == fingerprint
        }) else {
            return false;
        };
        let i = self.at(n);
        self.slots[i].mark = Mark::Free;
        // Free slots at the front are done with.
        while self.len > 0 && self.slots[self.at(0)].mark == Mark::Free {
            self.head = self.at(1);
            self.len -= 1;
        }
        true
    }

    /// Records in use, free slots between them included.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}
