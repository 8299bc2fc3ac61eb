// SPDX-License-Identifier: GPL-2.0

//! Network namespaces and the module's per-netns lifetime.
//!
//! C header: [`include/net/net_namespace.h`](srctree/include/net/net_namespace.h)
//!
//! Every netns gets a [`NetState`] (what hooks and `/proc` read) and a [`NetRegistrations`]
//! (hooks, `/proc` files, defrag), both created by the pernet `init` callback and destroyed
//! by `exit`. The state is published before anything that reads it is registered and
//! freed only after all of that is unregistered, so a reader never sees it missing or stale.

use crate::conntrack::net::{NetRegistrations, NetState};
use crate::sys::bindings;
use crate::sys::refcount::ARef;
use crate::sys::slab::{Released, Typesafe};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::error::to_result;
use kernel::ffi::{c_int, c_ulong, c_void};
use kernel::prelude::*;
use kernel::types::Opaque;

/// A network namespace (`struct net`).
///
/// # Invariants
///
/// The wrapped `struct net` is alive for as long as the reference exists.
#[repr(transparent)]
pub(crate) struct Net(Opaque<bindings::net>);

impl Net {
    /// Wraps a raw `struct net`.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a `struct net` that stays alive for the lifetime `'a`.
    pub(crate) unsafe fn from_raw<'a>(ptr: *mut bindings::net) -> &'a Self {
        // SAFETY: `Net` is a transparent wrapper of `struct net`, and the caller guarantees
        // that `ptr` is alive for `'a`.
        unsafe { &*ptr.cast::<Self>() }
    }

    #[cfg(rct_kunit)] // Only the KUnit cases use it.
    /// The initial network namespace.
    pub(crate) fn init_net() -> &'static Self {
        // SAFETY: `init_net` is a static that lives as long as the kernel.
        unsafe { Self::from_raw(core::ptr::addr_of_mut!(bindings::init_net)) }
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::net {
        self.0.get()
    }

    /// Whether this is the initial netns (`net_eq(net, &init_net)`).
    pub(crate) fn is_init(&self) -> bool {
        // SAFETY: `self` is a live netns (type invariant); the helper compares addresses.
        unsafe { bindings::rct_net_is_init(self.as_ptr()) }
    }

    /// The module's state for this netns, or `None` outside `init`..`exit`.
    pub(crate) fn ct_state(&self) -> Option<&NetState> {
        // SAFETY: `self` is a live netns (type invariant) and the module's pernet slot exists
        // in every netns while the module is loaded.
        let slot = unsafe { bindings::rct_net_state(self.as_ptr()) };
        // SAFETY: `slot` was just read from `self`, which is alive for the borrow.
        unsafe { state_of_slot(slot) }
    }
}

/// The module's state for a netns, from the value of its pernet slot (or the private
/// pointer its hooks were registered with, which is the same).
///
/// # Safety
///
/// `slot` must be that value for a netns that stays alive for `'a`, used by a reader of the
/// state (a hook, `/proc`) running for `'a`.
pub(crate) unsafe fn state_of_slot<'a>(slot: *mut c_void) -> Option<&'a NetState> {
    // A non-NULL slot holds the `NetState` that `rct_net_init` leaked from a `KBox`;
    // `rct_net_exit` frees it only after its readers (hooks, /proc) are unregistered.
    // SAFETY: The state outlives every such reader, as the caller guarantees.
    unsafe { slot.cast::<NetState>().as_ref() }
}

/// A netns the module is set up in, as its state keeps it: to salt hashes and to kick the
/// netns' sweep of unconfirmed entries.
///
/// # Invariants
///
/// `net` is alive and set up by `rct_net_init` for as long as `self` exists: only
/// `net_init` makes one, and moves it into the netns state that `rct_net_exit` drops (the
/// KUnit cases make one for the initial netns, which lives for ever).
pub(crate) struct NetHandle {
    net: NonNull<bindings::net>,
}

// SAFETY: A netns is shared by all CPUs; `NetHandle` only reads it and queues its work,
// which the kernel allows from any context.
unsafe impl Send for NetHandle {}
// SAFETY: As above.
unsafe impl Sync for NetHandle {}

impl NetHandle {
    #[cfg(rct_kunit)] // Only the KUnit cases use it.
    /// The initial netns, which is never freed.
    pub(crate) fn init_net() -> Self {
        // INVARIANT: `init_net` lives as long as the kernel.
        Self {
            net: NonNull::from(Net::init_net()).cast(),
        }
    }

    /// Whether this is the initial netns.
    pub(crate) fn is_init_net(&self) -> bool {
        // SAFETY: `net` is alive (type invariant); the helper compares addresses.
        unsafe { bindings::rct_net_is_init(self.net.as_ptr()) }
    }

    /// `hash_conntrack_raw` of `key` in zone 0: siphash with the module's random key, salted
    /// with the netns.
    pub(crate) fn hash(&self, key: &[u8]) -> u32 {
        let len = u32::try_from(key.len()).unwrap_or(u32::MAX);
        // SAFETY: `key` is readable for `len` bytes; `net` is alive (type invariant) and only
        // read for its hash mix.
        unsafe { bindings::rct_hash(key.as_ptr().cast(), len, 0, self.net.as_ptr()) }
    }

    /// Queues the netns' sweep in `delay` jiffies, unless it is queued already.
    pub(crate) fn kick_sweep(&self, delay: u32) {
        // SAFETY: `net` is alive and set up (type invariant), so its sweep work is initialised
        // and not yet disabled.
        unsafe { bindings::rct_net_sweep_kick(self.net.as_ptr(), delay as usize) };
    }
}

/// The module's pernet_operations, registered for the module's lifetime.
pub(crate) struct PernetRegistration;

impl PernetRegistration {
    /// Registers the pernet operations: `rct_net_init` runs for every existing and future
    /// netns. On failure, the netns already set up are torn down again by the kernel.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: FFI call without preconditions; registered once, unregistered on drop.
        to_result(unsafe { bindings::rct_register_pernet() })?;
        Ok(Self)
    }
}

impl Drop for PernetRegistration {
    fn drop(&mut self) {
        // SAFETY: `self` exists only after a successful registration. This calls
        // `rct_net_exit` for every netns and waits for it.
        unsafe { bindings::rct_unregister_pernet() };
    }
}

/// The netns' sweep of unconfirmed entries (`src/glue.c`): returns the delay until the next
/// one in jiffies, or 0 when no entry waits.
///
/// # Safety
///
/// `net` must be a netns whose `rct_net_init` succeeded and whose `rct_net_exit` has not
/// started (the work is disabled before it).
#[no_mangle]
unsafe extern "C" fn rct_net_sweep(net: *mut bindings::net) -> c_ulong {
    // SAFETY: The caller guarantees `net` is alive and set up.
    let net = unsafe { Net::from_raw(net) };
    let clock = crate::conntrack::net::clock_now();
    match net.ct_state() {
        Some(ct) if ct.sweep_unconfirmed(&clock) => clock.hz as c_ulong,
        _ => 0,
    }
}

/// Pernet `init`: sets up the module in `net`.
///
/// # Safety
///
/// `net` must be a netns being initialised by the pernet core, alive until `rct_net_exit`.
#[no_mangle]
unsafe extern "C" fn rct_net_init(net: *mut bindings::net) -> c_int {
    // SAFETY: The pernet core passes a netns that is alive until `rct_net_exit` returns.
    let net = unsafe { Net::from_raw(net) };
    match net_init(net) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

fn net_init(net: &Net) -> Result {
    // INVARIANT: `net` is being set up; its state, which takes the handle, goes in `exit`.
    let handle = NetHandle {
        net: NonNull::new(net.as_ptr()).ok_or(EINVAL)?,
    };
    let state = KBox::into_raw(KBox::new(NetState::new(handle)?, GFP_KERNEL)?);
    // SAFETY: `net` is alive; the slot is ours and empty before `init`.
    unsafe { bindings::rct_net_set_state(net.as_ptr(), state.cast()) };
    let regs = match NetRegistrations::new(net).and_then(|r| Ok(KBox::new(r, GFP_KERNEL)?)) {
        Ok(regs) => regs,
        Err(e) => {
            // Nothing that reads the state was left registered: take it back.
            // SAFETY: `net` is alive and the slot is ours.
            unsafe { bindings::rct_net_set_state(net.as_ptr(), core::ptr::null_mut()) };
            // SAFETY: `state` came from `KBox::into_raw` above and is no longer published.
            drop(unsafe { KBox::from_raw(state) });
            return Err(e);
        }
    };
    // SAFETY: `net` is alive; the slot is ours and empty before `init`.
    unsafe { bindings::rct_net_set_regs(net.as_ptr(), KBox::into_raw(regs).cast()) };
    Ok(())
}

/// Pernet `exit`: tears down what `rct_net_init` set up in `net`.
///
/// # Safety
///
/// `net` must be a netns whose `rct_net_init` succeeded, called once by the pernet core.
#[no_mangle]
unsafe extern "C" fn rct_net_exit(net: *mut bindings::net) {
    // SAFETY: The pernet core passes a netns whose `init` succeeded and that is alive.
    let net = unsafe { Net::from_raw(net) };
    // SAFETY: `net` is alive and the slot is ours.
    let regs = unsafe { bindings::rct_net_regs(net.as_ptr()) }.cast::<NetRegistrations>();
    if !regs.is_null() {
        // SAFETY: `regs` came from `KBox::into_raw` in `net_init` and is dropped only here.
        // Dropping it unregisters the hooks (waiting for running ones) and the /proc files.
        drop(unsafe { KBox::from_raw(regs) });
        // SAFETY: As above.
        unsafe { bindings::rct_net_set_regs(net.as_ptr(), core::ptr::null_mut()) };
    }
    // SAFETY: `net` is alive and the slot is ours.
    let state = unsafe { bindings::rct_net_state(net.as_ptr()) }.cast::<NetState>();
    if !state.is_null() {
        // SAFETY: As above.
        unsafe { bindings::rct_net_set_state(net.as_ptr(), core::ptr::null_mut()) };
        // SAFETY: `state` came from `KBox::into_raw` in `net_init`; nothing can reach it any
        // more, since its readers were unregistered above.
        drop(unsafe { KBox::from_raw(state) });
    }
}

/// The netns state an entry belongs to, as the entry keeps it.
///
/// Lockless readers of an entry may see the pointer of a state that is gone (the entry was
/// freed and reused meanwhile): they may compare it ([`StateRef::is`]), and only the holder of
/// the entry's last reference may follow it ([`StateRef::get`]).
///
/// # Invariants
///
/// Set from a live [`NetState`], whose entry count counts the entry from before it is set
/// until the entry's release has returned it to its cache ([`NetState`]'s invariant: its drop
/// waits until that count is zero).
pub(crate) struct StateRef(AtomicPtr<NetState>);

impl StateRef {
    /// Belongs to no state yet.
    pub(crate) const fn none() -> Self {
        Self(AtomicPtr::new(core::ptr::null_mut()))
    }

    /// Makes the entry `state`'s; `state` counts it already.
    pub(crate) fn set(&self, state: &NetState) {
        // INVARIANT: `state` is live and counts the entry (the caller's obligation, kept by
        // `NetState::reserve_entry`).
        self.0
            .store((state as *const NetState).cast_mut(), Ordering::Relaxed)
    }

    /// Whether the entry is `state`'s.
    pub(crate) fn is(&self, state: &NetState) -> bool {
        core::ptr::eq(self.0.load(Ordering::Relaxed), state)
    }

    /// Calls `f` with the state of an entry the caller holds a counted reference to: the
    /// state that `field` (a `StateRef` inside the entry) names, or `None` if it is not inside
    /// the entry or was never set.
    pub(crate) fn with_held<T: Typesafe, R>(
        entry: &ARef<T>,
        field: impl FnOnce(&T) -> &StateRef,
        f: impl FnOnce(Option<&NetState>) -> R,
    ) -> R {
        let start = &**entry as *const T as usize;
        let r = field(entry);
        let me = r as *const Self as usize;
        let ptr = if me < start
            || me + core::mem::size_of::<Self>() > start + core::mem::size_of::<T>()
        {
            core::ptr::null_mut()
        } else {
            r.0.load(Ordering::Relaxed)
        };
        // SAFETY: `ptr` was read from inside an entry the caller holds a reference to, which
        // keeps it from being released, so the state that counts it is live (type invariant)
        // for as long as `entry` is borrowed.
        f(unsafe { ptr.as_ref() })
    }

    /// Calls `f` with a released entry and the state it belonged to: the state that `field`
    /// (a `StateRef` inside the entry) names, or `None` if it is not inside the entry or was
    /// never set. `f` returns the entry to its cache, and tells the state last: after that the
    /// state may go.
    pub(crate) fn release_with<T: Typesafe, R>(
        entry: Released<T>,
        field: impl FnOnce(&T) -> &StateRef,
        f: impl FnOnce(Released<T>, Option<&NetState>) -> R,
    ) -> R {
        let ptr = {
            let start = &*entry as *const T as usize;
            let r = field(&entry);
            let me = r as *const Self as usize;
            if me < start || me + core::mem::size_of::<Self>() > start + core::mem::size_of::<T>() {
                core::ptr::null_mut()
            } else {
                r.0.load(Ordering::Relaxed)
            }
        };
        // SAFETY: `ptr` was read from inside an entry whose last reference is gone but which
        // has not been returned to its cache yet (`Released`), so the state that counts it is
        // live (type invariant) until `f` tells it the entry is gone.
        let state = unsafe { ptr.as_ref() };
        f(entry, state)
    }
}
