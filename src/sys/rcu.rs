// SPDX-License-Identifier: GPL-2.0

//! RCU read-side sections.
//!
//! C header: [`include/linux/rcupdate.h`](srctree/include/linux/rcupdate.h)

use crate::sys::bindings;
use core::marker::PhantomData;

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

impl Drop for RcuGuard {
    fn drop(&mut self) {
        // SAFETY: The section was entered by `new` on this thread (type invariant).
        unsafe { bindings::rct_rcu_read_unlock() };
    }
}
