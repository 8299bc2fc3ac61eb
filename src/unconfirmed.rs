// SPDX-License-Identifier: GPL-2.0

//! Per-CPU lists of new entries waiting for their confirm hook, as the `pcpu_lists` of
//! nf_conntrack before 6.1.
//!
//! An entry's original-direction node links it here until it is confirmed; it is then
//! moved into the table. Each list ends in a nulls value no bucket has, so a table lookup
//! led here by a recycled entry restarts.

use crate::bindings;
use crate::entry::{Conn, ConnRef, TupleHash};
use crate::rcu::{self, ChainPos, RcuGuard};
use crate::tuple::Dir;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering::Relaxed};
use kernel::prelude::*;

/// The nulls value ending unconfirmed lists: above any bucket index.
pub(crate) const UNCONFIRMED_NULLS: usize = 1 << 30;

/// One netns' unconfirmed lists.
///
/// # Invariants
///
/// `lists` is a per-CPU allocation of initialised `rct_pcpu_list`s owned by `self`. Each
/// listed entry holds one reference, owned by the list. `len` counts listed entries.
pub(crate) struct Unconfirmed {
    lists: NonNull<bindings::rct_pcpu_list>,
    len: AtomicU32,
}

// SAFETY: Every list is only changed under its own lock.
unsafe impl Send for Unconfirmed {}
// SAFETY: As above.
unsafe impl Sync for Unconfirmed {}

/// A list locked with bottom halves disabled.
struct Locked(*mut bindings::rct_pcpu_list);

impl Locked {
    fn new(list: *mut bindings::rct_pcpu_list) -> Self {
        // SAFETY: `list` is one of our initialised lists.
        unsafe { bindings::rct_pcpu_list_lock(list) };
        Self(list)
    }

    fn head(&self) -> *mut bindings::hlist_nulls_head {
        // SAFETY: `self.0` is a valid list; this takes the address of its head.
        unsafe { core::ptr::addr_of_mut!((*self.0).head) }
    }

    /// Removes and returns the first entry for which `pick` says true.
    fn take(&self, len: &AtomicU32, mut pick: impl FnMut(&Conn) -> bool) -> Option<ConnRef> {
        let rcu = RcuGuard::new();
        // SAFETY: We hold the list's lock; its nodes are listed entries' original nodes.
        let mut pos = unsafe { rcu::first(self.head(), &rcu) };
        while let ChainPos::Node(n) = pos {
            // SAFETY: Only `TupleHash` nodes of entries are listed.
            let conn = unsafe { TupleHash::from_node(n) }.conn();
            if pick(conn) {
                // SAFETY: We hold the lock of the list the node is in.
                unsafe { rcu::del(n.as_ptr()) };
                len.fetch_sub(1, Relaxed);
                // SAFETY: The list owned one reference for the entry; it is the caller's now.
                return Some(unsafe { ConnRef::from_raw(NonNull::from(conn)) });
            }
            // SAFETY: `n` is in the list, which we hold locked.
            pos = unsafe { rcu::next(n, &rcu) };
        }
        None
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        // SAFETY: Locked in `new`.
        unsafe { bindings::rct_pcpu_list_unlock(self.0) };
    }
}

impl Unconfirmed {
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: FFI call without preconditions; the result is checked.
        let lists = unsafe { bindings::rct_pcpu_lists_alloc(UNCONFIRMED_NULLS as _) };
        // INVARIANT: allocated and initialised, empty.
        Ok(Self {
            lists: NonNull::new(lists).ok_or(ENOMEM)?,
            len: AtomicU32::new(0),
        })
    }

    fn this_cpu(&self) -> *mut bindings::rct_pcpu_list {
        // SAFETY: `lists` is live. If the task migrates afterwards, it simply uses another
        // CPU's list, under that list's lock.
        unsafe { bindings::rct_pcpu_list_this(self.lists.as_ptr()) }
    }

    fn cpu(&self, cpu: u32) -> *mut bindings::rct_pcpu_list {
        // SAFETY: `lists` is live; `cpu` is checked possible by the callers.
        unsafe { bindings::rct_per_cpu_ptr(self.lists.as_ptr().cast(), cpu) }.cast()
    }

    /// Number of listed entries, all CPUs.
    pub(crate) fn len(&self) -> u32 {
        self.len.load(Relaxed)
    }

    /// Lists `conn` on the running CPU's list, which takes over the caller's reference.
    /// First removes entries `stale` says will never be confirmed; returns how many.
    pub(crate) fn add(&self, conn: ConnRef, mut stale: impl FnMut(&Conn) -> bool) -> u32 {
        let list = Locked::new(self.this_cpu());
        let mut reaped = 0;
        while let Some(old) = list.take(&self.len, &mut stale) {
            drop(old);
            reaped += 1;
        }
        let node = conn.tuplehash(Dir::Original).node();
        let _ = conn.into_raw();
        // SAFETY: We hold the list's lock; an entry not yet listed is in no chain.
        unsafe { rcu::add_head(node, list.head()) };
        self.len.fetch_add(1, Relaxed);
        reaped
    }

    /// Takes the first entry `pick` chooses off the lists, this CPU's first.
    pub(crate) fn take(&self, mut pick: impl FnMut(&Conn) -> bool) -> Option<ConnRef> {
        if self.len() == 0 {
            return None;
        }
        let here = self.this_cpu();
        if let Some(c) = Locked::new(here).take(&self.len, &mut pick) {
            return Some(c);
        }
        // The task moved to another CPU between its hooks (process context), or a packet
        // crossed CPUs: look everywhere.
        for cpu in 0..crate::percpu::nr_cpu_ids() {
            // SAFETY: FFI call without preconditions.
            if !unsafe { bindings::rct_cpu_possible(cpu) } {
                continue;
            }
            let list = self.cpu(cpu);
            if list == here {
                continue;
            }
            if let Some(c) = Locked::new(list).take(&self.len, &mut pick) {
                return Some(c);
            }
        }
        None
    }

    /// Drops every listed entry (netns exit, after its hooks are gone).
    pub(crate) fn drain(&self) {
        while let Some(c) = self.take(|_| true) {
            drop(c);
        }
    }
}

impl Drop for Unconfirmed {
    fn drop(&mut self) {
        self.drain();
        // SAFETY: Allocated in `new` with `alloc_percpu`; the lists are empty.
        unsafe { bindings::free_percpu(self.lists.as_ptr().cast()) };
    }
}
