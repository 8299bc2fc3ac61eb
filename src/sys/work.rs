// SPDX-License-Identifier: GPL-2.0

//! The module-wide state, and the collector's deferred work that runs on it.
//!
//! C header: [`include/linux/workqueue.h`](srctree/include/linux/workqueue.h)
//!
//! [`GlobalSlot::publish`] moves the module-wide state into a [`Published`], which the module
//! owns until it exits; [`Published::start_periodic`] runs a delayed work on it (nf_conntrack's
//! `gc_work`), which reaches the state through the work's own pointer, not through the slot.
//! Hooks, `/proc` and the pernet callbacks, which C calls without a context of ours, read the
//! slot ([`GlobalSlot::get`]).

use crate::sys::bindings;
use core::ffi::c_void;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::ffi::c_ulong;
use kernel::prelude::*;

/// Work run again and again, after the delay each run returns.
pub(crate) trait Periodic: Sync + 'static {
    /// One run; returns the jiffies until the next one.
    fn run(&self) -> u32;
}

/// Where the module-wide state is published, for code the kernel calls without a context.
///
/// # Invariants
///
/// `ptr` is NULL or comes from `KBox::into_raw` in [`GlobalSlot::publish`], owned by the
/// [`Published`] that frees it on drop, after clearing the slot.
pub(crate) struct GlobalSlot<T: Sync + 'static> {
    ptr: AtomicPtr<T>,
}

impl<T: Sync + 'static> GlobalSlot<T> {
    /// An empty slot.
    pub(crate) const fn new() -> Self {
        Self {
            ptr: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    /// Publishes `value` (release): readers see it whole. `EBUSY` if something is published.
    pub(crate) fn publish(&'static self, value: KBox<T>) -> Result<Published<T>> {
        let raw = KBox::into_raw(value);
        if self
            .ptr
            .compare_exchange(
                core::ptr::null_mut(),
                raw,
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_err()
        {
            // SAFETY: From `KBox::into_raw` just above, not published.
            drop(unsafe { KBox::from_raw(raw) });
            return Err(EBUSY);
        }
        // INVARIANT: published, owned by the `Published`.
        Ok(Published {
            slot: self,
            ptr: raw,
            work: false,
        })
    }

    /// The published state (acquire), while the module lives.
    ///
    /// The state is freed only when its [`Published`] drops, at module exit, after everything
    /// that calls this (hooks, `/proc` files, pernet callbacks) has been unregistered and has
    /// returned: the module's fields drop in that order (see `RustConntrack`).
    pub(crate) fn get(&self) -> Option<&'static T> {
        // SAFETY: A non-NULL pointer is a live published state (type invariant), which lives
        // until module exit, after every caller (see above).
        unsafe { self.ptr.load(Ordering::Acquire).as_ref() }
    }
}

/// The module-wide state, published in a [`GlobalSlot`]; unpublished and freed on drop, after
/// its periodic work is stopped.
///
/// # Invariants
///
/// `ptr` came from `KBox::into_raw` and is published in `slot`; if `work`, the collector work
/// runs on it.
pub(crate) struct Published<T: Sync + 'static> {
    slot: &'static GlobalSlot<T>,
    ptr: *mut T,
    work: bool,
}

// SAFETY: `Published` only hands out `&T`, and `T: Sync`; dropping it frees a `KBox<T>`, which
// may happen on any thread for `T: Send`.
unsafe impl<T: Sync + Send + 'static> Send for Published<T> {}
// SAFETY: As above.
unsafe impl<T: Sync + 'static> Sync for Published<T> {}

/// The collector work's entry point: one run on `ctx`, returns the next delay.
///
/// # Safety
///
/// `ctx` is the state of a [`Published<T>`] whose work is running.
unsafe extern "C" fn periodic_run<T: Periodic>(ctx: *mut c_void) -> c_ulong {
    // SAFETY: The state outlives its work: `Published::drop` stops the work (waiting for a
    // running one) before it frees the state.
    let state = unsafe { &*ctx.cast::<T>() };
    state.run() as c_ulong
}

impl<T: Periodic> Published<T> {
    /// Starts the collector work (nf_conntrack's `gc_work`, one per module) on the state: its
    /// first run in a second. `EBUSY` if it runs already.
    pub(crate) fn start_periodic(&mut self) -> Result {
        if self.work {
            return Err(EBUSY);
        }
        // SAFETY: `ptr` is live until `drop`, which stops the work first.
        kernel::error::to_result(unsafe {
            bindings::rct_gc_start(self.ptr.cast(), Some(periodic_run::<T>))
        })?;
        // INVARIANT: started.
        self.work = true;
        Ok(())
    }
}

impl<T: Sync + 'static> core::ops::Deref for Published<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: `ptr` is live until `drop` (type invariant).
        unsafe { &*self.ptr }
    }
}

impl<T: Sync + 'static> Drop for Published<T> {
    fn drop(&mut self) {
        if self.work {
            // SAFETY: Started by `start_periodic`; waits for a running collector.
            unsafe { bindings::rct_gc_stop() };
        }
        self.slot
            .ptr
            .store(core::ptr::null_mut(), Ordering::Release);
        // SAFETY: From `KBox::into_raw` in `publish` (type invariant); the collector is stopped
        // and the slot's readers are gone (see `GlobalSlot::get`).
        drop(unsafe { KBox::from_raw(self.ptr) });
    }
}
