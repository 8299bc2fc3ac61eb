// SPDX-License-Identifier: GPL-2.0

//! Socket buffers, read-only.
//!
//! C header: [`include/linux/skbuff.h`](srctree/include/linux/skbuff.h)

use crate::proto::handoff::{NfView, SeqAdj};
use crate::proto::pipeline::{Hook, LogInvalid, Packet};
use crate::proto::tuple::{NfTuple, PacketBytes, ParseError, Tuple, L3};
use crate::sys::bindings;
use crate::sys::netfilter::{pf_of_l3, raw_of_hook};
use kernel::types::Opaque;

/// A packet as netfilter hands it to a hook. The module only reads it; it never writes
/// `skb->_nfct`, which belongs to nf_conntrack, and reads it only to learn what nf_nat made of
/// the packet (see [`crate::proto::handoff`]).
///
/// # Invariants
///
/// The wrapped `sk_buff` is valid and not freed for as long as the reference exists.
#[repr(transparent)]
pub(crate) struct SkBuff(Opaque<bindings::sk_buff>);

impl SkBuff {
    /// Wraps a raw `sk_buff`.
    ///
    /// # Safety
    ///
    /// `ptr` must be valid and stay alive, unfreed, for the lifetime `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::sk_buff) -> &'a Self {
        // SAFETY: `SkBuff` is a transparent wrapper of `sk_buff`, and the caller guarantees
        // that `ptr` is valid for `'a`.
        unsafe { &*ptr.cast::<Self>() }
    }

    fn as_ptr(&self) -> *mut bindings::sk_buff {
        self.0.get()
    }
}

impl PacketBytes for SkBuff {
    fn len(&self) -> usize {
        // SAFETY: `self` wraps a valid skb (type invariant).
        unsafe { bindings::rct_skb_len(self.as_ptr()) as usize }
    }

    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), ParseError> {
        let (Ok(off), Ok(len)) = (i32::try_from(offset), i32::try_from(buf.len())) else {
            return Err(ParseError::Truncated);
        };
        // Linear or paged, `skb_header_pointer` bounds-checks against `skb->len`: it returns
        // a pointer into the linear data, or copies into `buf`, or NULL when out of range.
        // SAFETY: `self` wraps a valid skb and `buf` is writable for `len` bytes.
        let src = unsafe {
            bindings::rct_skb_header_pointer(self.as_ptr(), off, len, buf.as_mut_ptr().cast())
        };
        if src.is_null() {
            return Err(ParseError::Truncated);
        }
        if src.cast::<u8>() != buf.as_mut_ptr().cast_const() {
            // SAFETY: `skb_header_pointer` returned a pointer to `len` readable bytes of the
            // skb's linear data, which cannot overlap `buf` (a caller's buffer).
            unsafe {
                core::ptr::copy_nonoverlapping(src.cast::<u8>(), buf.as_mut_ptr(), buf.len())
            };
        }
        Ok(())
    }
}

impl Packet for SkBuff {
    fn l4_checksum_ok(
        &self,
        hook: Hook,
        l3: L3,
        dataoff: usize,
        proto: u8,
        len: Option<usize>,
    ) -> bool {
        let hooknum = raw_of_hook(hook);
        let pf = pf_of_l3(l3);
        let (Ok(dataoff), Ok(len)) = (u32::try_from(dataoff), u32::try_from(len.unwrap_or(0)))
        else {
            return false;
        };
        // SAFETY: `self` wraps a valid skb; the helper checks `dataoff` against it (and may
        // record the verified state in the skb's checksum fields, as nf_conntrack does).
        unsafe { bindings::rct_l4_checksum_ok(self.as_ptr(), hooknum, dataoff, proto, pf, len) }
    }

    fn nf_seqadj(&self) -> Option<[SeqAdj; 2]> {
        let mut this_dir = bindings::rct_seqadj::default();
        let mut other_dir = bindings::rct_seqadj::default();
        // SAFETY: `self` wraps a valid skb, which holds a reference on its nf_conntrack entry
        // for as long as we have it; the helper only reads that entry's sequence adjustment.
        if !unsafe { bindings::rct_nfct_seqadj(self.as_ptr(), &mut this_dir, &mut other_dir) } {
            return None;
        }
        let adj = |a: &bindings::rct_seqadj| SeqAdj {
            correction_pos: a.correction_pos,
            offset_before: a.offset_before,
            offset_after: a.offset_after,
        };
        Some([adj(&this_dir), adj(&other_dir)])
    }

    fn nf_nat_helper(&self) -> bool {
        // SAFETY: `self` wraps a valid skb, which holds a reference on its nf_conntrack entry
        // for as long as we have it; the helper only reads its status and helper extension.
        unsafe { bindings::rct_nfct_nat_helper(self.as_ptr()) }
    }

    fn tail(&self, off: usize) -> Option<&[u8]> {
        let off = u32::try_from(off).ok()?;
        let mut len = 0u32;
        // SAFETY: `self` wraps a valid skb, which the hook owns: making it linear is what
        // nf_conntrack's helpers do to it too.
        let p = unsafe { bindings::rct_skb_tail(self.as_ptr(), off, &mut len) };
        if p.is_null() {
            return None;
        }
        // SAFETY: The helper returned `len` bytes of the skb's linear data, which stay as they
        // are while the hook has the skb, which outlives `&self`.
        Some(unsafe { core::slice::from_raw_parts(p, len as usize) })
    }

    fn checksum_none(&self) -> bool {
        // SAFETY: `self` wraps a valid skb; the helper reads its `ip_summed`.
        unsafe { bindings::rct_skb_csum_none(self.as_ptr()) }
    }

    fn nf_view(&self) -> Option<NfView> {
        let mut this_dir = bindings::rct_nf_tuple::default();
        let mut other_dir = bindings::rct_nf_tuple::default();
        // SAFETY: `self` wraps a valid skb, which holds a reference on its nf_conntrack entry
        // for as long as we have it; the helper only reads that entry's tuples into ours.
        if !unsafe { bindings::rct_nfct_view(self.as_ptr(), &mut this_dir, &mut other_dir) } {
            return None;
        }
        let tuple = |t: &bindings::rct_nf_tuple| {
            Tuple::from_nf(&NfTuple {
                l3num: t.l3num,
                protonum: t.protonum,
                src: t.src,
                dst: t.dst,
                src_u: t.src_u,
                dst_u: t.dst_u,
            })
        };
        Some(NfView {
            this_dir: tuple(&this_dir)?,
            other_dir: tuple(&other_dir)?,
        })
    }
}

/// What a hook call needs of its skb, its hook state and the clock, read in one call
/// (`rct_hook_view`) rather than one call each.
pub(crate) struct HookView {
    raw: bindings::rct_hook_view,
}

impl HookView {
    /// Reads the view of one hook call.
    ///
    /// # Safety
    ///
    /// `skb` and `state` must be the valid pointers netfilter passes to a hook function.
    pub(crate) unsafe fn read(
        skb: *mut bindings::sk_buff,
        state: *const bindings::nf_hook_state,
    ) -> Self {
        let mut raw = bindings::rct_hook_view::default();
        // SAFETY: The caller passes netfilter's valid skb and state; `raw` is writable.
        unsafe { bindings::rct_hook_view(skb, state, &mut raw) };
        Self { raw }
    }

    /// Offset of the network header from `skb->data`, if the header lies at or after it.
    pub(crate) fn network_offset(&self) -> Option<usize> {
        usize::try_from(self.raw.nhoff).ok()
    }

    /// The packet came in on a loopback device.
    pub(crate) fn in_loopback(&self) -> bool {
        self.raw.in_loopback
    }

    /// The packet goes out on a loopback device.
    pub(crate) fn out_loopback(&self) -> bool {
        self.raw.out_loopback
    }

    /// `jiffies` when the hook started.
    pub(crate) fn jiffies(&self) -> u64 {
        self.raw.jiffies
    }

    /// `HZ`.
    pub(crate) fn hz(&self) -> u32 {
        self.raw.hz
    }
}

/// A packet at a hook: the skb, the hook state (its devices, for the log) and the skb's
/// length.
///
/// # Invariants
///
/// `state` is the valid hook state netfilter passed with `skb`, for as long as `self` exists;
/// `len` is `skb->len`, which nothing changes during the hook call (the module never
/// writes the skb; linearizing it keeps its length).
pub(crate) struct HookPacket<'a> {
    skb: &'a SkBuff,
    state: *const bindings::nf_hook_state,
    len: usize,
}

impl<'a> HookPacket<'a> {
    /// The packet of one hook call.
    ///
    /// # Safety
    ///
    /// `state` must be the hook state netfilter passed with `skb`, valid for `'a`, and `view`
    /// read from both in this call.
    pub(crate) unsafe fn new(
        skb: &'a SkBuff,
        state: *const bindings::nf_hook_state,
        view: &HookView,
    ) -> Self {
        // INVARIANT: the caller guarantees `state` valid for `'a`; `view` holds `skb->len`.
        Self {
            skb,
            state,
            len: view.raw.len as usize,
        }
    }
}

impl PacketBytes for HookPacket<'_> {
    fn len(&self) -> usize {
        self.len
    }

    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), ParseError> {
        self.skb.read(offset, buf)
    }
}

impl Packet for HookPacket<'_> {
    fn l4_checksum_ok(
        &self,
        hook: Hook,
        l3: L3,
        dataoff: usize,
        proto: u8,
        len: Option<usize>,
    ) -> bool {
        self.skb.l4_checksum_ok(hook, l3, dataoff, proto, len)
    }

    fn checksum_none(&self) -> bool {
        self.skb.checksum_none()
    }

    fn nf_view(&self) -> Option<NfView> {
        self.skb.nf_view()
    }

    fn tail(&self, off: usize) -> Option<&[u8]> {
        self.skb.tail(off)
    }

    fn nf_seqadj(&self) -> Option<[SeqAdj; 2]> {
        self.skb.nf_seqadj()
    }

    fn nf_nat_helper(&self) -> bool {
        self.skb.nf_nat_helper()
    }

    #[inline(never)] // The buffers only take stack on the (rare, rate-limited) log path.
    fn log_invalid(&self, line: &LogInvalid<'_>) {
        let mut head = crate::sys::log::CBuf::<128>::new();
        let mut tail = crate::sys::log::CBuf::<160>::new();
        // Truncated if longer: the buffers hold what 6.12's messages and fields need.
        let _ = line.write_head(&mut head);
        let _ = line.write_tail(&mut tail);
        // SAFETY: `state` is valid (type invariant); both strings are NUL-terminated.
        unsafe { bindings::rct_log_invalid(self.state, head.as_ptr(), tail.as_ptr()) };
    }
}
