// SPDX-License-Identifier: GPL-2.0

//! RCU read-side sections and `hlist_nulls` chains.
//!
//! C headers: [`include/linux/rcupdate.h`](srctree/include/linux/rcupdate.h),
//! [`include/linux/rculist_nulls.h`](srctree/include/linux/rculist_nulls.h)

use crate::sys::bindings;
use core::marker::PhantomData;
use core::ptr::NonNull;

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

/// Where a walk along a chain stands: at a node, or at the end marker with its nulls value.
#[derive(Clone, Copy)]
pub(crate) enum ChainPos {
    /// A node of the chain.
    Node(NonNull<bindings::hlist_nulls_node>),
    /// The end of the chain and the value it was initialised with.
    End(usize),
}

fn pos_of(node: *mut bindings::hlist_nulls_node) -> ChainPos {
    // SAFETY: `is_a_nulls` and `get_nulls_value` only look at the pointer's bits.
    if unsafe { bindings::rct_is_a_nulls(node) } {
        // SAFETY: As above.
        ChainPos::End(unsafe { bindings::rct_get_nulls_value(node) } as usize)
    } else {
        match NonNull::new(node) {
            Some(n) => ChainPos::Node(n),
            // A chain always ends in a nulls marker; treat anything else as an empty end.
            None => ChainPos::End(usize::MAX),
        }
    }
}

/// The first position of the chain at `head`.
///
/// # Safety
///
/// `head` must be an initialised `hlist_nulls_head` that outlives the RCU section, and
/// its nodes must only be freed after a grace period or be type-stable
/// (`SLAB_TYPESAFE_BY_RCU`).
pub(crate) unsafe fn first(head: *mut bindings::hlist_nulls_head, _rcu: &RcuGuard) -> ChainPos {
    // SAFETY: `head` is valid (function precondition); the read is `rcu_dereference`.
    pos_of(unsafe { bindings::rct_hnulls_first_rcu(head) })
}

/// The position after `node`.
///
/// # Safety
///
/// `node` must come from [`first`] or [`next`] within the same RCU section.
pub(crate) unsafe fn next(node: NonNull<bindings::hlist_nulls_node>, _rcu: &RcuGuard) -> ChainPos {
    // SAFETY: `node` is type-stable memory for the whole section (precondition).
    pos_of(unsafe { bindings::rct_hnulls_next_rcu(node.as_ptr()) })
}

/// Adds `node` at the head of the chain, visible to concurrent RCU readers.
///
/// # Safety
///
/// The caller holds the chain's lock; `node` is in no chain.
pub(crate) unsafe fn add_head(
    node: *mut bindings::hlist_nulls_node,
    head: *mut bindings::hlist_nulls_head,
) {
    // SAFETY: Guaranteed by the caller.
    unsafe { bindings::rct_hnulls_add_head_rcu(node, head) };
}

/// Removes `node` from its chain, leaving its forward link for concurrent readers.
///
/// # Safety
///
/// The caller holds the lock of the chain `node` is in.
pub(crate) unsafe fn del(node: *mut bindings::hlist_nulls_node) {
    // SAFETY: Guaranteed by the caller.
    unsafe { bindings::rct_hnulls_del_rcu(node) };
}
