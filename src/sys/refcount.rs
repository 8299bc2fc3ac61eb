// SPDX-License-Identifier: GPL-2.0

//! `refcount_t` and counted references to objects of a [`TypesafeCache`].
//!
//! C header: [`include/linux/refcount.h`](srctree/include/linux/refcount.h)
//!
//! [`Refcount`] has `refcount_t`'s semantics, inline: it saturates at `REFCOUNT_SATURATED`
//! (and warns, through the kernel's own `refcount_warn_saturate`) instead of wrapping, so a
//! counting bug leaks an object instead of freeing it under its users. [`ARef`] is a counted
//! reference in the manner of `rust/kernel/types.rs`'s `ARef`: the last one hands the object
//! to [`Typesafe::release`], and its final decrement works on a raw pointer to the count, never
//! on a reference to the object, which another CPU may free right after the decrement.
//!
//! [`TypesafeCache`]: crate::sys::slab::TypesafeCache

use crate::sys::slab::{Released, Typesafe};
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{fence, AtomicU32, Ordering};

/// A reference count with `refcount_t` semantics.
///
/// # Invariants
///
/// Has the layout of `refcount_t` (an `atomic_t`), so the kernel's saturation helper can work
/// on it. A value with the sign bit set is saturated (the kernel's helper stores
/// `REFCOUNT_SATURATED`) and stays so.
#[repr(transparent)]
pub(crate) struct Refcount(AtomicU32);

const _: () = assert!(
    core::mem::size_of::<Refcount>() == core::mem::size_of::<kernel::bindings::refcount_t>()
        && core::mem::align_of::<Refcount>()
            == core::mem::align_of::<kernel::bindings::refcount_t>()
);

impl Refcount {
    /// A count of `n`; see [`Refcount::new_in_ctor`].
    pub(super) const fn new(n: u32) -> Self {
        Self(AtomicU32::new(n))
    }

    /// `refcount_read`.
    pub(crate) fn read(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }

    /// Sets the count with release ordering: for a count nobody can change meanwhile (zero,
    /// which [`Self::inc_not_zero`] leaves alone), to publish an object's fields with it.
    pub(super) fn set_release(&self, n: u32) {
        self.0.store(n, Ordering::Release)
    }

    /// Sets the count (relaxed); same condition as [`Self::set_release`].
    pub(super) fn set_relaxed(&self, n: u32) {
        self.0.store(n, Ordering::Relaxed)
    }

    /// Saturates the count and warns once, as `refcount_warn_saturate` does.
    #[cold]
    fn saturate(ptr: *const Self, how: kernel::bindings::refcount_saturation_type) {
        // CAST: `Refcount` has the layout of `refcount_t` (type invariant).
        let r = ptr.cast_mut().cast::<kernel::bindings::refcount_t>();
        // SAFETY: `r` points to a live count (the callers' object is type-stable or referenced);
        // the helper stores `REFCOUNT_SATURATED` with `atomic_set` and warns.
        unsafe { kernel::bindings::refcount_warn_saturate(r, how) };
    }

    /// `refcount_inc_not_zero`: takes a reference unless the count is zero. Acquire on success,
    /// so what the object's previous holders wrote is seen (`smp_acquire__after_ctrl_dep`).
    pub(crate) fn inc_not_zero(&self) -> bool {
        let mut old = self.0.load(Ordering::Relaxed);
        loop {
            if old == 0 {
                return false;
            }
            match self.0.compare_exchange_weak(
                old,
                old.wrapping_add(1),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(cur) => old = cur,
            }
        }
        if (old as i32) < 0 || (old.wrapping_add(1) as i32) < 0 {
            Self::saturate(
                self,
                kernel::bindings::refcount_saturation_type_REFCOUNT_ADD_NOT_ZERO_OVF,
            );
        }
        true
    }

    /// `refcount_dec_and_test`: drops a reference with release ordering; true for the last
    /// one, after an acquire fence, so that every holder's writes are seen before the object
    /// is released.
    ///
    /// # Safety
    ///
    /// `ptr` points to a live count on which the caller owns one reference.
    unsafe fn dec_and_test(ptr: *const Self) -> bool {
        // SAFETY: `ptr` is live (precondition); `Refcount` is a transparent `AtomicU32`. The
        // atomic reference lives for this one operation only: once it is done another CPU may
        // free the object, and nothing here touches it again.
        let old = unsafe { AtomicU32::from_ptr(ptr.cast_mut().cast::<u32>()) }
            .fetch_sub(1, Ordering::Release);
        if old == 1 {
            fence(Ordering::Acquire);
            return true;
        }
        if (old as i32) <= 0 || (old.wrapping_sub(1) as i32) < 0 {
            Self::saturate(
                ptr,
                kernel::bindings::refcount_saturation_type_REFCOUNT_SUB_UAF,
            );
        }
        false
    }
}

/// Objects that embed a [`Refcount`] counting the references to them.
///
/// Implemented through [`crate::typesafe_object!`], never by hand.
///
/// # Safety
///
/// `REFCOUNT` is the byte offset in `Self` of a field of type [`Refcount`].
pub(crate) unsafe trait RefCounted: Sized {
    /// Offset of the count.
    const REFCOUNT: usize;

    /// A flag of `Self`'s own, set once its cache is created (one cache per type).
    fn cache_claim() -> &'static core::sync::atomic::AtomicBool;

    /// The object's count.
    fn refcount(&self) -> &Refcount {
        // SAFETY: See `refcount_ptr`; `self` is valid for the borrow.
        unsafe { &*Self::refcount_ptr(self) }
    }

    /// The object's count, computed without making a reference to the object.
    fn refcount_ptr(this: *const Self) -> *const Refcount {
        // CAST: `REFCOUNT` is the offset of a `Refcount` field (trait's safety requirement).
        this.cast::<u8>()
            .wrapping_add(Self::REFCOUNT)
            .cast::<Refcount>()
    }
}

/// A counted reference to an object of a [`crate::sys::slab::TypesafeCache`].
///
/// # Invariants
///
/// The pointee is an object of `T`'s cache, and `self` owns one reference counted in its
/// [`Refcount`]: the object is `T`'s until that reference is dropped.
pub(crate) struct ARef<T: Typesafe> {
    ptr: NonNull<T>,
    _p: PhantomData<T>,
}

// SAFETY: A reference may be dropped on any CPU (the release path is thread-safe: `T: Sync`
// and `Typesafe::release` takes an owned object), and it only gives out `&T`.
unsafe impl<T: Typesafe> Send for ARef<T> {}
// SAFETY: Shared, an `ARef<T>` only gives out `&T`, and `T: Sync`.
unsafe impl<T: Typesafe> Sync for ARef<T> {}

impl<T: Typesafe> ARef<T> {
    /// Takes a reference to `obj` unless it is being released (`refcount_inc_not_zero`). The
    /// object may have been reused for another one since the caller found it: callers check
    /// again what they looked it up by.
    pub(crate) fn try_get(obj: &T) -> Option<Self> {
        if !obj.refcount().inc_not_zero() {
            return None;
        }
        // INVARIANT: a reference was just counted; `obj` is an object of `T`'s cache, the only
        // place `&T`s come from (see `Typesafe`).
        Some(Self {
            ptr: NonNull::from(obj),
            _p: PhantomData,
        })
    }

    /// Gives up the reference without dropping it, for a container that takes it over.
    pub(super) fn into_raw(self) -> NonNull<T> {
        let p = self.ptr;
        core::mem::forget(self);
        p
    }

    /// Takes back a reference given up by [`ARef::into_raw`].
    ///
    /// # Safety
    ///
    /// `ptr` comes from `into_raw`, and each such reference is taken back once.
    pub(super) unsafe fn from_raw(ptr: NonNull<T>) -> Self {
        // INVARIANT: the reference given up by `into_raw` is taken over.
        Self {
            ptr,
            _p: PhantomData,
        }
    }

    /// Wraps the first reference of a new object.
    ///
    /// # Safety
    ///
    /// `ptr` is an object of `T`'s cache whose count the caller set to one, for this reference.
    pub(super) unsafe fn from_new(ptr: NonNull<T>) -> Self {
        // INVARIANT: guaranteed by the caller.
        Self {
            ptr,
            _p: PhantomData,
        }
    }
}

impl<T: Typesafe> Clone for ARef<T> {
    /// Another reference (`refcount_inc`, as `nf_conntrack_get`).
    fn clone(&self) -> Self {
        // The count is at least one (ours), so this never revives a released object.
        if !self.refcount().inc_not_zero() {
            // Cannot happen while `self` is counted; saturation has warned if it did.
            Refcount::saturate(
                self.refcount(),
                kernel::bindings::refcount_saturation_type_REFCOUNT_ADD_UAF,
            );
        }
        // INVARIANT: one more reference was counted.
        Self {
            ptr: self.ptr,
            _p: PhantomData,
        }
    }
}

impl<T: Typesafe> core::ops::Deref for ARef<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: The counted reference keeps the object `T`'s (type invariant).
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: Typesafe> Drop for ARef<T> {
    fn drop(&mut self) {
        // The count is reached without a `&T`: if this is not the last reference, another CPU
        // may release and reuse the object as soon as the decrement is done.
        let count = T::refcount_ptr(self.ptr.as_ptr());
        // SAFETY: We own one reference (type invariant), so the count is live.
        if unsafe { Refcount::dec_and_test(count) } {
            // SAFETY: That was the last reference: nobody else can take one (the count is zero)
            // and the object is still `T`'s cache's.
            T::release(unsafe { Released::new(self.ptr) });
        }
    }
}
