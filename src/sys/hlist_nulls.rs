// SPDX-License-Identifier: GPL-2.0

//! `hlist_nulls` chains as types: a hash table's buckets ([`Buckets`]) and per-CPU lists
//! ([`PerCpuLists`]) of objects of a [`TypesafeCache`](crate::sys::slab::TypesafeCache).
//!
//! C header: [`include/linux/rculist_nulls.h`](srctree/include/linux/rculist_nulls.h)
//!
//! The operations are those of `rculist_nulls.h` (`hlist_nulls_add_head_rcu`,
//! `hlist_nulls_del_init_rcu`, `hlist_nulls_for_each_entry_rcu`), written with atomics. Readers
//! walk chains under RCU without locks; an object that is freed and reused while a reader
//! stands on it may lead the reader into another chain, so every chain ends in a nulls marker
//! holding a value of its own (a bucket's index), and a walk that ends in another value reports
//! [`Walk::Restart`].
//!
//! Each object has two links, `[Link; 2]` (an entry's original and reply direction). A pointer
//! to a link carries the link's index in its bit 1 (links are 8-byte aligned, bit 0 marks the
//! nulls value), so a reader maps a link to its object without reading the object, whatever
//! reuse happened meanwhile.
//!
//! Soundness of changes from safe code:
//! - a link is in no chain exactly when its `pprev` is NULL; an insert claims each link by
//!   turning that NULL into its new chain with one compare-and-exchange, so a link is never
//!   added twice, and only the claimer writes it until it is linked;
//! - a link is unlinked only when found in a chain whose lock the caller holds: by the walk of
//!   that chain itself ([`LockedList::scan`]), or by searching the locked chain
//!   ([`LockedBuckets::remove`]);
//! - a container holds one counted reference per object ([`ARef`]) while the object's links
//!   are in it: an insert consumes one, a removal gives it back;
//! - a table's bucket array is an RCU-protected pointer that a resize ([`Buckets::resize`])
//!   replaces with every bucket lock held, moving each link without unclaiming it; lockers
//!   check the generation ([`crate::sys::sync::generation_begin`]) once they hold their locks,
//!   so they never change chains of a replaced array.

use crate::sys::bindings;
use crate::sys::rcu::{RcuGuard, RcuSection};
use crate::sys::refcount::ARef;
use crate::sys::slab::Typesafe;
use crate::sys::sync::BucketLocks;
use core::marker::PhantomData;
use core::ops::ControlFlow;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use kernel::prelude::*;

/// A chain link, `struct hlist_nulls_node`.
///
/// # Invariants
///
/// `pprev` is NULL while the link is in no chain; otherwise it points to the forward pointer
/// that points to this link (the chain head's or the previous link's `next`), and `next` holds
/// the next link (tagged with its index, see the module docs) or the chain's nulls marker.
/// Both change only under the lock of the chain the link is in, or, for a link in no chain, by
/// the one thread that claimed it.
#[repr(C)]
pub(crate) struct Link {
    next: AtomicUsize,
    pprev: AtomicPtr<AtomicUsize>,
}

const _: () = assert!(core::mem::align_of::<Link>() >= 4);

impl Link {
    /// A link in no chain.
    pub(crate) const fn new() -> Self {
        // INVARIANT: `pprev` is NULL: in no chain.
        Self {
            next: AtomicUsize::new(0),
            pprev: AtomicPtr::new(core::ptr::null_mut()),
        }
    }
}

/// Objects with two [`Link`]s, one per chain they can be in at once. Implemented through
/// [`crate::typesafe_object!`], never by hand.
///
/// # Safety
///
/// `LINKS` is the byte offset in `Self` of a field of type `[Link; 2]`.
pub(crate) unsafe trait Linked: Sized {
    /// Offset of the links.
    const LINKS: usize;
}

fn link_of<T: Linked>(obj: &T, idx: usize) -> &Link {
    // CAST: `LINKS` is the offset of a `[Link; 2]` in `T` (trait requirement); `idx < 2`.
    let p = (obj as *const T)
        .cast::<u8>()
        .wrapping_add(T::LINKS + (idx & 1) * core::mem::size_of::<Link>())
        .cast::<Link>();
    // SAFETY: `p` is a field of `*obj`, borrowed as long as `obj`.
    unsafe { &*p }
}

/// A forward pointer to link `idx` of an object.
fn encode(link: &Link, idx: usize) -> usize {
    link as *const Link as usize | ((idx & 1) << 1)
}

/// A decoded forward pointer.
enum Raw {
    /// Link `idx` at this address.
    Node(NonNull<Link>, usize),
    /// The end of the chain, and its nulls value.
    End(usize),
}

fn decode(v: usize) -> Raw {
    if v & 1 != 0 {
        return Raw::End(v >> 1);
    }
    match NonNull::new((v & !3) as *mut Link) {
        Some(p) => Raw::Node(p, (v >> 1) & 1),
        // A link that was never linked: not a chain of ours. A walk treats it as the end of
        // another chain.
        None => Raw::End(usize::MAX),
    }
}

/// The object that `link`, its link `idx`, belongs to (`hlist_nulls_entry`).
///
/// # Safety
///
/// `link` was read from a chain of objects of `T`'s cache, within an RCU read-side section (or
/// under the chain's lock) that lasts for `'a`.
unsafe fn object_of<'a, T: Typesafe + Linked>(link: NonNull<Link>, idx: usize) -> &'a T {
    // CAST: chains only link the `[Link; 2]` field of `T`s (at offset `LINKS`), and `idx` is the
    // link's index, carried by the pointer itself: a reused object is still a `T` of the cache.
    let obj = link
        .as_ptr()
        .cast::<u8>()
        .wrapping_sub(T::LINKS + (idx & 1) * core::mem::size_of::<Link>())
        .cast::<T>();
    // SAFETY: `obj` is an object of `T`'s cache (see the CAST), always a valid `T`, whose memory
    // stays the cache's for the RCU section (SLAB_TYPESAFE_BY_RCU).
    unsafe { &*obj }
}

/// How a walk along a chain ended.
pub(crate) enum Walk<R> {
    /// The visitor stopped it with a value.
    Found(R),
    /// It reached the end of the chain it started in.
    End,
    /// It ended in another chain: a reused object led it astray.
    Restart,
}

/// Walks the chain at `head`, whose nulls value is `value`, until `visit` breaks.
///
/// # Safety
///
/// `head` is a chain head of objects of `T`'s cache, live for `'a`, and the caller is in an RCU
/// read-side section for `'a`.
unsafe fn walk<'a, T: Typesafe + Linked, R>(
    head: &'a AtomicUsize,
    value: usize,
    mut visit: impl FnMut(&'a T, usize) -> ControlFlow<R>,
) -> Walk<R> {
    let mut pos = head.load(Ordering::Acquire);
    loop {
        match decode(pos) {
            Raw::Node(link, idx) => {
                // SAFETY: `link` was read from the chain within the caller's RCU section.
                let obj = unsafe { object_of::<T>(link, idx) };
                if let ControlFlow::Break(r) = visit(obj, idx) {
                    return Walk::Found(r);
                }
                // `rcu_dereference` of the next pointer.
                pos = link_of(obj, idx).next.load(Ordering::Acquire);
            }
            Raw::End(v) if v == value => return Walk::End,
            Raw::End(_) => return Walk::Restart,
        }
    }
}

/// Adds link `idx` of `obj`, already claimed for `head` (its `pprev` points to `head`), at the
/// head of the chain (`hlist_nulls_add_head_rcu`).
///
/// # Safety
///
/// The caller holds the chain's lock and claimed the link for it.
unsafe fn add_head<T: Linked>(head: &AtomicUsize, obj: &T, idx: usize) {
    let link = link_of(obj, idx);
    let first = head.load(Ordering::Relaxed);
    link.next.store(first, Ordering::Relaxed);
    // `rcu_assign_pointer`: the link's `next` before the link.
    head.store(encode(link, idx), Ordering::Release);
    if let Raw::Node(next, _) = decode(first) {
        // SAFETY: `next` is linked in the chain, whose lock we hold: it stays there.
        let next = unsafe { next.as_ref() };
        next.pprev.store(
            (&link.next as *const AtomicUsize).cast_mut(),
            Ordering::Relaxed,
        );
    }
}

/// Claims link `idx` of `obj` for the chain at `head`: succeeds if the link was in no chain.
fn claim<T: Linked>(head: &AtomicUsize, obj: &T, idx: usize) -> bool {
    link_of(obj, idx)
        .pprev
        .compare_exchange(
            core::ptr::null_mut(),
            (head as *const AtomicUsize).cast_mut(),
            Ordering::Acquire,
            Ordering::Relaxed,
        )
        .is_ok()
}

/// Gives up a claim that was not followed by [`add_head`].
fn unclaim<T: Linked>(obj: &T, idx: usize) {
    link_of(obj, idx)
        .pprev
        .store(core::ptr::null_mut(), Ordering::Release);
}

/// Removes `link` from its chain, leaving its forward pointer for readers standing on it
/// (`hlist_nulls_del_init_rcu`).
///
/// # Safety
///
/// `link` is in a chain whose lock the caller holds.
unsafe fn unlink(link: &Link) {
    let next = link.next.load(Ordering::Relaxed);
    let pprev = link.pprev.load(Ordering::Relaxed);
    // SAFETY: The link is in a chain (precondition), so `pprev` points to the forward pointer
    // that points to it, in the chain head or the previous link, which the lock keeps in place.
    unsafe { (*pprev).store(next, Ordering::Relaxed) };
    if let Raw::Node(n, _) = decode(next) {
        // SAFETY: `n` is the next link of the locked chain.
        unsafe { n.as_ref() }.pprev.store(pprev, Ordering::Relaxed);
    }
    // Last: from here on another thread may claim the link.
    link.pprev.store(core::ptr::null_mut(), Ordering::Release);
}

/// Moves link `idx` of `obj` from the chain it is in to the head of the chain at `to`
/// (`hlist_nulls_del_rcu`, then `hlist_nulls_add_head_rcu`). The link stays claimed all along
/// (its `pprev` is never NULL), so no one else can claim it meanwhile. A reader standing on it
/// goes on into `to`'s chain and ends in that chain's nulls value.
///
/// # Safety
///
/// The link is in a chain whose lock the caller holds, and the caller holds `to`'s lock.
unsafe fn move_link<T: Linked>(obj: &T, idx: usize, to: &AtomicUsize) {
    let link = link_of(obj, idx);
    let next = link.next.load(Ordering::Relaxed);
    let pprev = link.pprev.load(Ordering::Relaxed);
    // SAFETY: The link is in a locked chain (precondition), so `pprev` points to the forward
    // pointer that points to it, which the lock keeps in place.
    unsafe { (*pprev).store(next, Ordering::Relaxed) };
    if let Raw::Node(n, _) = decode(next) {
        // SAFETY: `n` is the next link of the locked chain.
        unsafe { n.as_ref() }.pprev.store(pprev, Ordering::Relaxed);
    }
    // Claimed for `to` without passing through NULL.
    link.pprev
        .store((to as *const AtomicUsize).cast_mut(), Ordering::Relaxed);
    // SAFETY: We hold `to`'s lock and the link is claimed for it.
    unsafe { add_head(to, obj, idx) };
}

/// Starts loading the cache line at `p` into every cache level: `prefetcht0` on x86 (inline:
/// the packet path's hint should cost less than the miss it hides), `rct_prefetch` elsewhere.
/// A hint only: it never faults, whatever `p` is.
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` reads no memory architecturally, writes nothing, changes no flag
    // and never faults, even for an invalid address.
    unsafe {
        core::arch::asm!(
            "prefetcht0 [{0}]",
            in(reg) p,
            options(nostack, readonly, preserves_flags)
        )
    };
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: FFI call; a prefetch never faults.
    unsafe {
        bindings::rct_prefetch(p.cast::<core::ffi::c_void>())
    };
}

/// `reciprocal_scale`: the bucket of a raw hash in `size` buckets.
pub(crate) fn reciprocal_scale(hash: u32, size: u32) -> u32 {
    ((u64::from(hash) * u64::from(size)) >> 32) as u32
}

/// Chain `bucket` of bucket array `arr`, if in range.
///
/// # Safety
///
/// `arr` was allocated by `rct_alloc_hashtable` and is live for `'a`.
unsafe fn head_in(arr: &bindings::rct_htable, bucket: u32) -> Option<&AtomicUsize> {
    if bucket >= arr.size {
        return None;
    }
    // CAST: a `struct hlist_nulls_head` is one pointer, as an `AtomicUsize`.
    // SAFETY: `heads` holds `size` initialised heads (`rct_alloc_hashtable`), as long as `arr`.
    Some(unsafe { &*arr.heads.cast::<AtomicUsize>().add(bucket as usize) })
}

/// The buckets of a hash table of `T`s: an array of chains, chain `i` ending in nulls value
/// `i`, locked by the striped bucket locks ([`BucketLocks`]), which a resize replaces by a
/// larger or smaller one (`nf_conntrack_hash_resize`).
///
/// # Invariants
///
/// `array` points to a bucket array allocated by `rct_alloc_hashtable` (its size, not zero,
/// and its initialised heads), owned by `self`: the current one. It is replaced only by
/// [`Buckets::resize`], under the table mutex, all bucket locks held and the generation odd
/// ([`AllBucketsLocked`]), and the array it replaces is freed only after an RCU grace period:
/// an array loaded within an RCU read-side section stays valid until the section ends, and one
/// loaded with a bucket lock held, the generation unchanged, stays current while the lock is
/// held. Chains of the current array link objects of `T`'s cache only, both links of an object
/// in chains of it at once (within a resize, of it or of the array it replaces), and hold one
/// reference to each.
pub(crate) struct Buckets<T: Typesafe + Linked> {
    array: AtomicPtr<bindings::rct_htable>,
    _t: PhantomData<ARef<T>>,
}

// SAFETY: Chains are changed under the bucket locks only and read under RCU; they hold
// `ARef<T>`s, which are `Send` and `Sync`.
unsafe impl<T: Typesafe + Linked> Send for Buckets<T> {}
// SAFETY: As above.
unsafe impl<T: Typesafe + Linked> Sync for Buckets<T> {}

/// A bucket array of `size` empty chains, or `ENOMEM`; `nowarn`: no allocation failure
/// warning (a size asked for at run time).
fn alloc_array(size: u32, nowarn: bool) -> Result<NonNull<bindings::rct_htable>> {
    if size == 0 {
        return Err(EINVAL);
    }
    // SAFETY: FFI call without preconditions; the result is checked.
    NonNull::new(unsafe { bindings::rct_alloc_hashtable(size, nowarn) }).ok_or(ENOMEM)
}

impl<T: Typesafe + Linked> Buckets<T> {
    /// `size` empty chains (`nf_ct_alloc_hashtable`); not zero.
    pub(crate) fn new(size: u32) -> Result<Self> {
        crate::sys::sync::tables_init_once();
        let arr = alloc_array(size, false)?;
        // INVARIANT: a new array of `size` empty chains, chain `i` ending in `i`.
        Ok(Self {
            array: AtomicPtr::new(arr.as_ptr()),
            _t: PhantomData,
        })
    }

    /// The bucket array current now, for the RCU section `_rcu`, and the generation read
    /// before it (`nf_conntrack_get_ht`). Waits while a resize moves entries.
    pub(crate) fn view<'a>(&'a self, _rcu: RcuSection<'a>) -> View<'a, T> {
        let seq = crate::sys::sync::generation_begin();
        // `rcu_dereference`.
        let arr = self.array.load(Ordering::Acquire);
        // SAFETY: Always a live array (type invariant), which stays valid for the RCU section.
        let arr = unsafe { &*arr };
        // INVARIANT: loaded within `_rcu`, after `seq` was read.
        View {
            arr,
            seq,
            _t: PhantomData,
        }
    }

    /// Starts loading the head of the chain of raw hash `hash` into the cache, for a walk or a
    /// lock of it soon (a new entry's reply chain, which its confirm hook locks). A hint only:
    /// no generation read, as a head of an array just replaced is harmless to prefetch.
    #[inline]
    pub(crate) fn prefetch(&self, hash: u32, _rcu: RcuSection<'_>) {
        // `rcu_dereference`.
        let arr = self.array.load(Ordering::Acquire);
        // SAFETY: Always a live array (type invariant), valid for the RCU section `_rcu`.
        let arr = unsafe { &*arr };
        // SAFETY: `arr` is live for the section.
        if let Some(head) = unsafe { head_in(arr, reciprocal_scale(hash, arr.size)) } {
            prefetch(head.as_ptr().cast_const());
        }
    }

    /// The number of chains now.
    pub(crate) fn size(&self) -> u32 {
        let rcu = RcuGuard::new();
        self.view(rcu.section()).size()
    }

    /// Locks the chains of raw hashes `hashes[0]` and `hashes[1]` in the current array, with
    /// bottom halves disabled (`nf_conntrack_double_lock` in its loop): if a resize ran between
    /// reading the array and taking the locks, the buckets are computed again in the new one.
    /// [`LockedBuckets::buckets`] tells which.
    pub(crate) fn lock_hashes(&self, hashes: [u32; 2]) -> LockedBuckets<'_, T> {
        loop {
            let rcu = RcuGuard::new();
            let view = self.view(rcu.section());
            let buckets = hashes.map(|h| view.bucket_of(h));
            let (arr, seq) = (NonNull::from(view.arr), view.seq);
            if let Some(locks) = BucketLocks::new(buckets[0], buckets[1], seq) {
                // INVARIANT: the generation did not change since `arr` was loaded: it is the
                // current array, and stays so while the locks are held.
                return LockedBuckets {
                    arr,
                    buckets,
                    _rcu: rcu,
                    locks,
                    _t: PhantomData,
                };
            }
        }
    }

    /// Locks chains `a` and `b` of the current array, or `None` if either is out of its range.
    pub(crate) fn lock_buckets(&self, a: u32, b: u32) -> Option<LockedBuckets<'_, T>> {
        loop {
            let rcu = RcuGuard::new();
            let view = self.view(rcu.section());
            if a >= view.size() || b >= view.size() {
                return None;
            }
            let (arr, seq) = (NonNull::from(view.arr), view.seq);
            if let Some(locks) = BucketLocks::new(a, b, seq) {
                // INVARIANT: as in `lock_hashes`.
                return Some(LockedBuckets {
                    arr,
                    buckets: [a, b],
                    _rcu: rcu,
                    locks,
                    _t: PhantomData,
                });
            }
        }
    }

    /// Replaces the bucket array by one of `size` chains and moves every object into it, each
    /// link into the chain of its raw hash, `hash(object, link index)`
    /// (`nf_conntrack_hash_resize`). Nothing if the table has `size` chains already; `EINVAL`
    /// for 0, `ENOMEM` if the array cannot be allocated. Process context: it sleeps (the table
    /// mutex, an RCU grace period before the old array is freed). `hash` runs with every bucket
    /// lock held and bottom halves disabled.
    ///
    /// Readers cope as with 6.12's: the generation is odd during the move, so lookups and
    /// locks started before retry in the new array; a reader walking the old one meanwhile
    /// follows moved objects into chains of the new one and ends in their nulls values.
    pub(crate) fn resize(&self, size: u32, hash: impl Fn(&T, usize) -> u32) -> Result {
        let new = alloc_array(size, true)?;
        let mutex = crate::sys::sync::TableMutex::lock();
        // Only a resize replaces it, and we hold the mutex: it stays current.
        let old = self.array.load(Ordering::Relaxed);
        // SAFETY: Always a live array (type invariant).
        let old_ref = unsafe { &*old };
        if old_ref.size == size {
            drop(mutex);
            // SAFETY: Allocated above, never published.
            unsafe { bindings::rct_free_hashtable(new.as_ptr()) };
            return Ok(());
        }
        {
            let _rcu = RcuGuard::new();
            let _all = crate::sys::sync::AllBucketsLocked::new(&mutex);
            // SAFETY: Allocated above, live until we free or publish it.
            let new_ref = unsafe { new.as_ref() };
            for bucket in 0..old_ref.size {
                // SAFETY: `old_ref` is live (see above).
                let Some(head) = (unsafe { head_in(old_ref, bucket) }) else {
                    break;
                };
                while let Raw::Node(link, idx) = decode(head.load(Ordering::Relaxed)) {
                    // SAFETY: `link` is in a chain of the table, which we hold locked (all of
                    // them), within `_rcu`.
                    let obj: &T = unsafe { object_of(link, idx) };
                    let to = reciprocal_scale(hash(obj, idx), size);
                    // SAFETY: `to < size`: in range of the new array, live.
                    let Some(to_head) = (unsafe { head_in(new_ref, to) }) else {
                        break;
                    };
                    // SAFETY: The link is in chain `bucket` of the old array and `to_head` is
                    // a chain of the new one: every bucket lock is held (`_all`).
                    unsafe { move_link(obj, idx, to_head) };
                }
            }
            // `rcu_assign_pointer`; readers that started before the write section retry.
            // INVARIANT: every object is now linked in the new array only; the old one is
            // freed below, after a grace period.
            self.array.store(new.as_ptr(), Ordering::Release);
        }
        drop(mutex);
        // SAFETY: FFI call without preconditions; process context.
        unsafe { bindings::rct_synchronize_net() };
        // SAFETY: Replaced above; every reader that could have loaded it has finished its RCU
        // section (the grace period), and every lock holder saw the new generation. Its chains
        // are empty.
        unsafe { bindings::rct_free_hashtable(old) };
        Ok(())
    }
}

impl<T: Typesafe + Linked> Drop for Buckets<T> {
    fn drop(&mut self) {
        let arr = *self.array.get_mut();
        // SAFETY: Always a live array (type invariant); nothing else uses it any more.
        let arr_ref = unsafe { &*arr };
        // Objects still linked would point into the heads: keep them, then (never expected:
        // every object is removed before).
        let linked = (0..arr_ref.size).any(|b| {
            // SAFETY: `arr_ref` is live.
            let head = unsafe { head_in(arr_ref, b) };
            head.is_some_and(|h| matches!(decode(h.load(Ordering::Relaxed)), Raw::Node(..)))
        });
        if linked {
            pr_warn!("hash table dropped with entries linked: leaking it\n");
            return;
        }
        // SAFETY: Allocated by `rct_alloc_hashtable` (type invariant); no link points into it.
        unsafe { bindings::rct_free_hashtable(arr) };
    }
}

/// The bucket array of a [`Buckets`] a reader found current, for its RCU section
/// (`nf_conntrack_get_ht`).
///
/// # Invariants
///
/// `arr` is a bucket array of the `Buckets` (current when loaded, or replaced since), valid
/// for `'a`, an RCU read-side section; `seq` is the generation read before it was loaded.
pub(crate) struct View<'a, T: Typesafe + Linked> {
    arr: &'a bindings::rct_htable,
    seq: u32,
    _t: PhantomData<&'a Buckets<T>>,
}

impl<'a, T: Typesafe + Linked> View<'a, T> {
    /// The number of chains.
    pub(crate) fn size(&self) -> u32 {
        self.arr.size
    }

    /// The chain of a raw hash (`reciprocal_scale`).
    pub(crate) fn bucket_of(&self, hash: u32) -> u32 {
        reciprocal_scale(hash, self.arr.size)
    }

    fn head(&self, bucket: u32) -> Option<&'a AtomicUsize> {
        // SAFETY: `arr` is live for `'a` (type invariant).
        unsafe { head_in(self.arr, bucket) }
    }

    /// Walks chain `bucket` until `visit` breaks; `visit` gets each object and the index of its
    /// link in the chain. A bucket out of range is an empty chain.
    pub(crate) fn walk<R>(
        &self,
        bucket: u32,
        visit: impl FnMut(&'a T, usize) -> ControlFlow<R>,
    ) -> Walk<R> {
        let Some(head) = self.head(bucket) else {
            return Walk::End;
        };
        // SAFETY: `head` is a chain of the table, whose chains link objects of `T`'s cache
        // (type invariant of `Buckets`); we are in an RCU section for `'a`.
        unsafe { walk(head, bucket as usize, visit) }
    }

    /// Whether chain `bucket` is empty: one read of its head, no lock.
    pub(crate) fn is_empty(&self, bucket: u32) -> bool {
        self.head(bucket).map_or(true, |h| {
            matches!(decode(h.load(Ordering::Relaxed)), Raw::End(_))
        })
    }

    /// Whether a resize ran since the array was loaded (`read_seqcount_retry`): a walk that
    /// found nothing may have missed an object being moved.
    pub(crate) fn changed(&self) -> bool {
        crate::sys::sync::generation_changed(self.seq)
    }
}

/// Two chains of the current array of a [`Buckets`] locked: nothing enters or leaves them
/// meanwhile, and no resize runs.
///
/// # Invariants
///
/// `locks` holds the locks of chains `buckets[0]` and `buckets[1]` (and every chain sharing
/// their stripes) of `arr`, the current array of the `Buckets` borrowed for `'a`, taken with
/// the generation unchanged since `arr` was loaded: `arr` stays current and live while they are
/// held. `_rcu` keeps objects found in any chain valid while `self` is borrowed.
pub(crate) struct LockedBuckets<'a, T: Typesafe + Linked> {
    arr: NonNull<bindings::rct_htable>,
    buckets: [u32; 2],
    _rcu: RcuGuard,
    locks: BucketLocks,
    _t: PhantomData<&'a Buckets<T>>,
}

impl<'a, T: Typesafe + Linked> LockedBuckets<'a, T> {
    /// The two chains locked, as asked for (the chain of each hash for
    /// [`Buckets::lock_hashes`]).
    pub(crate) fn buckets(&self) -> [u32; 2] {
        self.buckets
    }

    fn head(&self, bucket: u32) -> Option<&AtomicUsize> {
        // SAFETY: `arr` is live while the locks are held (type invariant), as long as `self`.
        unsafe { head_in(self.arr.as_ref(), bucket) }
    }

    fn locked_head(&self, bucket: u32) -> Option<&AtomicUsize> {
        if !self.locks.holds(bucket) {
            return None;
        }
        self.head(bucket)
    }

    /// Walks chain `bucket` until `visit` breaks, and returns the value it broke with. For a
    /// locked chain, `visit` sees each object exactly once.
    pub(crate) fn walk<'l, R>(
        &'l self,
        bucket: u32,
        visit: impl FnMut(&'l T, usize) -> ControlFlow<R>,
    ) -> Option<R> {
        let head = self.head(bucket)?;
        // SAFETY: `head` is a chain of the current array, linking objects of `T`'s cache
        // (type invariant of `Buckets`); `self._rcu` is an RCU section for the borrow.
        match unsafe { walk(head, bucket as usize, visit) } {
            Walk::Found(r) => Some(r),
            Walk::End | Walk::Restart => None,
        }
    }

    /// Adds `obj` to the table, link `i` into chain `buckets[i]`; the table takes over the
    /// reference. Both chains must be locked and both links in no chain, else `obj` comes back.
    pub(crate) fn insert(&self, obj: ARef<T>, buckets: [u32; 2]) -> Result<(), ARef<T>> {
        let (Some(h0), Some(h1)) = (self.locked_head(buckets[0]), self.locked_head(buckets[1]))
        else {
            return Err(obj);
        };
        if !claim(h0, &*obj, 0) {
            return Err(obj);
        }
        if !claim(h1, &*obj, 1) {
            unclaim(&*obj, 0);
            return Err(obj);
        }
        // SAFETY: We hold both chains' locks and claimed both links for them.
        unsafe {
            add_head(h0, &*obj, 0);
            add_head(h1, &*obj, 1);
        }
        // INVARIANT: both links are in chains of the current array, which holds the reference.
        let _ = obj.into_raw();
        Ok(())
    }

    /// Whether link `idx` of `obj` is in chain `bucket`, which must be locked.
    fn contains(&self, bucket: u32, obj: &T, idx: usize) -> bool {
        let Some(head) = self.locked_head(bucket) else {
            return false;
        };
        let target = link_of(obj, idx) as *const Link;
        // SAFETY: `head` is a chain of the table; `self._rcu` is an RCU section for the borrow.
        let walk = unsafe {
            walk(head, bucket as usize, |o: &T, i| {
                if core::ptr::eq(link_of(o, i), target) {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
        };
        matches!(walk, Walk::Found(()))
    }

    /// Removes `obj` from the table if its link `i` is in chain `buckets[i]` (both locked), and
    /// returns the reference the table held; `None` (and nothing changed) otherwise.
    pub(crate) fn remove(&self, obj: &T, buckets: [u32; 2]) -> Option<ARef<T>> {
        if !self.contains(buckets[0], obj, 0) || !self.contains(buckets[1], obj, 1) {
            return None;
        }
        // SAFETY: Both links were just found in chains whose locks we hold.
        unsafe {
            unlink(link_of(obj, 0));
            unlink(link_of(obj, 1));
        }
        // SAFETY: Both links were in the table's chains, which held one reference for them
        // (type invariant of `Buckets`), handed over here.
        Some(unsafe { ARef::from_raw(NonNull::from(obj)) })
    }

    /// Moves link `idx` of `obj` from chain `from` to chain `to` (both locked), as a free and
    /// reuse by the slab would while a reader stands on it. Returns whether it moved.
    #[cfg(rct_kunit)] // Only the KUnit cases use it.
    pub(crate) fn relink(&self, obj: &T, idx: usize, from: u32, to: u32) -> bool {
        let Some(to_head) = self.locked_head(to) else {
            return false;
        };
        if !self.contains(from, obj, idx) {
            return false;
        }
        // SAFETY: Found in chain `from`, whose lock we hold, and we hold `to`'s. The table keeps
        // holding the object's reference: its links are still both in the table.
        unsafe { move_link(obj, idx, to_head) };
        true
    }
}

/// One list per possible CPU of `T`s, each with a lock and a count, linked through their link
/// 0, all ending in the same nulls value.
///
/// # Invariants
///
/// `lists` is a per-CPU allocation of `rct_pcpu_list`s initialised by `rct_pcpu_lists_alloc`
/// with nulls value `nulls`, owned by `self`. Lists link objects of `T`'s cache only, by their
/// link 0, and hold one reference to each; `count` is the number linked, changed under the lock.
pub(crate) struct PerCpuLists<T: Typesafe + Linked> {
    lists: NonNull<bindings::rct_pcpu_list>,
    _t: PhantomData<ARef<T>>,
}

// SAFETY: Every list is only changed under its own lock; they hold `ARef<T>`s.
unsafe impl<T: Typesafe + Linked> Send for PerCpuLists<T> {}
// SAFETY: As above.
unsafe impl<T: Typesafe + Linked> Sync for PerCpuLists<T> {}

/// What [`LockedList::scan`] does with an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scan {
    /// Leave it; go on.
    Skip,
    /// Remove it and return it; the scan ends.
    Take,
    /// Remove it, hand it to the scan's `removed`; go on.
    Remove,
}

impl<T: Typesafe + Linked> PerCpuLists<T> {
    /// Empty lists ending in nulls value `nulls`.
    pub(crate) fn new(nulls: usize) -> Result<Self> {
        // SAFETY: FFI call without preconditions; the result is checked.
        let lists = unsafe { bindings::rct_pcpu_lists_alloc(nulls as _) };
        // INVARIANT: allocated and initialised, empty.
        Ok(Self {
            lists: NonNull::new(lists).ok_or(ENOMEM)?,
            _t: PhantomData,
        })
    }

    fn lock_raw(&self, list: *mut bindings::rct_pcpu_list) -> LockedList<'_, T> {
        // SAFETY: `list` is one of our initialised lists.
        let bh = unsafe { bindings::rct_pcpu_list_lock(list) };
        // INVARIANT: locked just now; `bh` is what the lock returned.
        LockedList {
            list,
            bh,
            _rcu: RcuGuard::new(),
            _lists: PhantomData,
        }
    }

    fn this_cpu_raw(&self) -> *mut bindings::rct_pcpu_list {
        // SAFETY: `lists` is live. If the task migrates afterwards, it simply uses another
        // CPU's list, under that list's lock.
        unsafe { bindings::rct_pcpu_list_this(self.lists.as_ptr()) }
    }

    fn cpu_raw(&self, cpu: u32) -> Option<*mut bindings::rct_pcpu_list> {
        // SAFETY: FFI call without preconditions.
        if !unsafe { bindings::rct_cpu_possible(cpu) } {
            return None;
        }
        // SAFETY: `lists` is live and `cpu` possible.
        Some(unsafe { bindings::rct_per_cpu_ptr(self.lists.as_ptr().cast(), cpu) }.cast())
    }

    /// The running CPU's list, locked (bottom halves disabled).
    pub(crate) fn lock_this_cpu(&self) -> LockedList<'_, T> {
        self.lock_raw(self.this_cpu_raw())
    }

    /// `cpu`'s list, locked, or `None` if `cpu` is not possible.
    pub(crate) fn lock_cpu(&self, cpu: u32) -> Option<LockedList<'_, T>> {
        self.cpu_raw(cpu).map(|l| self.lock_raw(l))
    }

    /// Calls `f` on every possible CPU's list in turn, locked, the running CPU's first, until
    /// it breaks.
    pub(crate) fn each_this_cpu_first<R>(
        &self,
        mut f: impl FnMut(&mut LockedList<'_, T>) -> ControlFlow<R>,
    ) -> Option<R> {
        let here = self.this_cpu_raw();
        if let ControlFlow::Break(r) = f(&mut self.lock_raw(here)) {
            return Some(r);
        }
        for cpu in 0..crate::sys::percpu::nr_cpu_ids() {
            match self.cpu_raw(cpu) {
                Some(l) if l != here => {
                    if let ControlFlow::Break(r) = f(&mut self.lock_raw(l)) {
                        return Some(r);
                    }
                }
                _ => {}
            }
        }
        None
    }
}

impl<T: Typesafe + Linked> Drop for PerCpuLists<T> {
    fn drop(&mut self) {
        // The lists' references go with them.
        self.each_this_cpu_first(|l| {
            while l.take_last().is_some() {}
            ControlFlow::<()>::Continue(())
        });
        // SAFETY: Allocated in `new` with `alloc_percpu`; the lists are empty.
        unsafe { bindings::free_percpu(self.lists.as_ptr().cast()) };
    }
}

/// One CPU's list of a [`PerCpuLists`], locked with bottom halves disabled.
///
/// # Invariants
///
/// `list` is a list of the `PerCpuLists` borrowed for `'a`, locked by this thread (not
/// `Send`), the lock having returned `bh`; `rcu` keeps objects found valid while `self` is
/// borrowed.
pub(crate) struct LockedList<'a, T: Typesafe + Linked> {
    list: *mut bindings::rct_pcpu_list,
    bh: bool,
    _rcu: RcuGuard,
    _lists: PhantomData<&'a PerCpuLists<T>>,
}

impl<T: Typesafe + Linked> LockedList<'_, T> {
    fn head(&self) -> &AtomicUsize {
        // CAST: a `struct hlist_nulls_head` is one pointer, as an `AtomicUsize`.
        // SAFETY: `list` is live (type invariant); this is its head, borrowed with `self`.
        unsafe { &*core::ptr::addr_of_mut!((*self.list).head).cast::<AtomicUsize>() }
    }

    /// The number of objects listed.
    pub(crate) fn len(&self) -> u32 {
        // SAFETY: `list` is live and we hold its lock, under which `count` changes.
        unsafe { (*self.list).count }
    }

    fn set_len(&mut self, n: u32) {
        // SAFETY: As in `len`.
        unsafe { (*self.list).count = n };
    }

    /// Lists `obj` first; the list takes over the reference. `obj` comes back if its link 0 is
    /// in a chain already.
    pub(crate) fn push(&mut self, obj: ARef<T>) -> Result<(), ARef<T>> {
        let head = self.head();
        if !claim(head, &*obj, 0) {
            return Err(obj);
        }
        // SAFETY: We hold the list's lock and claimed the link for it.
        unsafe { add_head(head, &*obj, 0) };
        // INVARIANT: listed, with the reference.
        let _ = obj.into_raw();
        self.set_len(self.len().saturating_add(1));
        Ok(())
    }

    /// Removes `obj`, found in this list by a walk under its lock, and returns the list's
    /// reference.
    ///
    /// # Safety
    ///
    /// `obj`'s link 0 is in this list.
    unsafe fn remove_found(&mut self, obj: &T) -> ARef<T> {
        // SAFETY: In this list (precondition), whose lock we hold.
        unsafe { unlink(link_of(obj, 0)) };
        self.set_len(self.len().saturating_sub(1));
        // SAFETY: The list held one reference for the object (type invariant of
        // `PerCpuLists`), handed over here.
        unsafe { ARef::from_raw(NonNull::from(obj)) }
    }

    /// Walks the list, newest first, doing with each object what `pick` says; objects removed
    /// with [`Scan::Remove`] go to `removed`. Returns the object taken, if any.
    pub(crate) fn scan(
        &mut self,
        mut pick: impl FnMut(&T) -> Scan,
        mut removed: impl FnMut(ARef<T>),
    ) -> Option<ARef<T>> {
        let mut pos = self.head().load(Ordering::Relaxed);
        while let Raw::Node(link, idx) = decode(pos) {
            // SAFETY: `link` is in this list, which we hold locked, within `self._rcu`.
            let obj: &T = unsafe { object_of(link, idx) };
            // Read before the object may be removed and released.
            pos = link_of(obj, idx).next.load(Ordering::Relaxed);
            match pick(obj) {
                Scan::Skip => {}
                // SAFETY: `obj` was reached by walking this list under its lock.
                Scan::Take => return Some(unsafe { self.remove_found(obj) }),
                // SAFETY: As above.
                Scan::Remove => removed(unsafe { self.remove_found(obj) }),
            }
        }
        None
    }

    /// Removes the oldest object (the list's last) and returns it.
    pub(crate) fn take_last(&mut self) -> Option<ARef<T>> {
        let mut last = None;
        let mut pos = self.head().load(Ordering::Relaxed);
        while let Raw::Node(link, idx) = decode(pos) {
            // SAFETY: `link` is in this list, which we hold locked, within `self._rcu`.
            let obj: &T = unsafe { object_of(link, idx) };
            pos = link_of(obj, idx).next.load(Ordering::Relaxed);
            last = Some(obj);
        }
        // SAFETY: `obj` was reached by walking this list under its lock.
        last.map(|obj| unsafe { self.remove_found(obj) })
    }
}

impl<T: Typesafe + Linked> Drop for LockedList<'_, T> {
    fn drop(&mut self) {
        // SAFETY: Locked when `self` was made, the lock returning `bh` (type invariant).
        unsafe { bindings::rct_pcpu_list_unlock(self.list, self.bh) };
    }
}
