// SPDX-License-Identifier: GPL-2.0

//! RCU read-side sections.
//!
//! C header: [`include/linux/rcupdate.h`](srctree/include/linux/rcupdate.h)

use crate::sys::bindings;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::prelude::*;

/// An RCU read-side critical section, ended on drop.
///
/// # Invariants
///
/// `rcu_read_lock` was called by the thread that owns the guard, which is not `Send`.
pub(crate) struct RcuGuard(PhantomData<*mut ()>);

impl RcuGuard {
    /// Enters a read-side critical section.
    pub(crate) fn new() -> Self {
        // SAFETY: FFI call without preconditions; paired with the unlock in `drop`.
        unsafe { bindings::rct_rcu_read_lock() };
        // INVARIANT: the lock was just taken on this thread.
        Self(PhantomData)
    }
}

impl RcuGuard {
    /// The section this guard holds, as a token readers take.
    pub(crate) fn section(&self) -> RcuSection<'_> {
        // INVARIANT: the guard holds the section for as long as it is borrowed.
        RcuSection(PhantomData)
    }
}

impl Drop for RcuGuard {
    fn drop(&mut self) {
        // SAFETY: The section was entered by `new` on this thread (type invariant).
        unsafe { bindings::rct_rcu_read_unlock() };
    }
}

/// Proof that the thread is inside an RCU read-side critical section for `'a`.
///
/// # Invariants
///
/// The thread that holds the token is inside a read-side section that lasts at least `'a`;
/// the token is not `Send`.
#[derive(Clone, Copy)]
pub(crate) struct RcuSection<'a>(PhantomData<(&'a (), *mut ())>);

impl RcuSection<'_> {
    /// The section the caller is in.
    ///
    /// # Safety
    ///
    /// The caller must be inside an RCU read-side section for the token's lifetime: a
    /// netfilter hook is, for its call (`nf_hook` runs the hooks under `rcu_read_lock`).
    pub(crate) unsafe fn assume() -> Self {
        // INVARIANT: the caller guarantees the section.
        RcuSection(PhantomData)
    }
}

/// A value that readers reach under RCU, without a lock or a copy, and that a writer
/// replaces (`rcu_assign_pointer`, then `synchronize_rcu` before freeing the old one).
///
/// # Invariants
///
/// `ptr` always points to a value leaked from a `KBox`, owned by `self`; a value replaced is
/// freed only after a grace period, so a reader inside a read-side section that began
/// before the replacement may still use it.
pub(crate) struct RcuBox<T> {
    ptr: AtomicPtr<T>,
}

// SAFETY: Readers on any thread get `&T`, and the writer moves `T`s between threads: as
// `KBox<T>` shared between threads needs.
unsafe impl<T: Send + Sync> Sync for RcuBox<T> {}
// SAFETY: As above.
unsafe impl<T: Send + Sync> Send for RcuBox<T> {}

impl<T> RcuBox<T> {
    /// A box holding `v`.
    pub(crate) fn new(v: T) -> Result<Self> {
        let ptr = KBox::into_raw(KBox::new(v, GFP_KERNEL)?);
        // INVARIANT: `ptr` was just leaked from a `KBox`.
        Ok(Self {
            ptr: AtomicPtr::new(ptr),
        })
    }

    /// The current value, for as long as the read-side section lasts.
    pub(crate) fn get<'a>(&'a self, _rcu: RcuSection<'a>) -> &'a T {
        // SAFETY: `ptr` points to a live value (type invariant); one replaced after this load
        // is freed only after a grace period, which cannot end before the section `_rcu`
        // does, and `'a` ends with it.
        unsafe { &*self.ptr.load(Ordering::Acquire) }
    }

    /// Replaces the value; returns once no reader can see the old one, which it frees.
    /// Sleeps: process context only.
    pub(crate) fn replace(&self, v: T) -> Result {
        let new = KBox::into_raw(KBox::new(v, GFP_KERNEL)?);
        // Release: a reader that loads `new` sees it initialised.
        let old = self.ptr.swap(new, Ordering::AcqRel);
        // SAFETY: FFI call without preconditions; the caller may sleep.
        unsafe { bindings::rct_synchronize_rcu() };
        // SAFETY: `old` was leaked from a `KBox` (type invariant), is no longer reachable,
        // and every reader that could have loaded it has left its section.
        drop(unsafe { KBox::from_raw(old) });
        Ok(())
    }
}

impl<T> Drop for RcuBox<T> {
    fn drop(&mut self) {
        // SAFETY: `ptr` was leaked from a `KBox` (type invariant); readers borrow `self`,
        // so none is left.
        drop(unsafe { KBox::from_raw(*self.ptr.get_mut()) });
    }
}
