// SPDX-License-Identifier: GPL-2.0

//! Per-CPU lists of new entries waiting for their confirm hook, as the `pcpu_lists` of
//! nf_conntrack before 6.1.
//!
//! An entry's original-direction node links it here until it is confirmed; it is then
//! moved into the table. Each list ends in a nulls value no bucket has, so a table lookup
//! led here by a recycled entry restarts.

use crate::conntrack::entry::{Conn, ConnRef, TupleHash};
use crate::proto::tuple::Dir;
use crate::sys::bindings;
use crate::sys::rcu::{self, ChainPos, RcuGuard};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering::Relaxed};
use kernel::prelude::*;

/// The nulls value ending unconfirmed lists: above any bucket index.
pub(crate) const UNCONFIRMED_NULLS: usize = 1 << 30;

/// Number of counters in an [`Unconfirmed`]'s cookie filter.
const TAG_SLOTS: usize = 256;

/// The filter slot of an skb's cookie (its address): the top bits of a multiplicative hash,
/// which mixes the low bits every slab object shares.
fn tag_slot(cookie: usize) -> usize {
    ((cookie as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize % TAG_SLOTS
}

/// One netns' unconfirmed lists.
///
/// # Invariants
///
/// `lists` is a per-CPU allocation of initialised `rct_pcpu_list`s owned by `self`. Each
/// listed entry holds one reference, owned by the list. `len` counts listed entries, and
/// `tags[tag_slot(c)]` those whose cookie is `c` or shares its slot: a zero there means no
/// listed entry carries `c`.
pub(crate) struct Unconfirmed {
    lists: NonNull<bindings::rct_pcpu_list>,
    len: AtomicU32,
    tags: [AtomicU32; TAG_SLOTS],
}

// SAFETY: Every list is only changed under its own lock.
unsafe impl Send for Unconfirmed {}
// SAFETY: As above.
unsafe impl Sync for Unconfirmed {}

/// What a scan of an unconfirmed list does with one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pick {
    /// Not this one: go on.
    Skip,
    /// Take it off the list and hand it to the caller; the scan ends.
    Take,
    /// Take it off the list and drop it (it will never be confirmed); go on.
    Reap,
}

/// The most entries one CPU's list holds: a new entry listed beyond it pushes out the oldest.
/// An entry normally waits microseconds; only packets queued to user space (NFQUEUE, whose
/// default queue holds 1024) wait long, and there are never that many on one CPU at once.
pub(crate) const UNCONFIRMED_MAX_PER_CPU: u32 = 4096;

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

    fn count(&self) -> u32 {
        // SAFETY: `self.0` is a valid list and we hold its lock, under which `count` changes.
        unsafe { (*self.0).count }
    }

    fn set_count(&self, n: u32) {
        // SAFETY: As in `count`.
        unsafe { (*self.0).count = n };
    }

    /// Unlinks `n`, an entry's node in this list, and returns the list's reference to it.
    fn unlink(&self, n: NonNull<bindings::hlist_nulls_node>, u: &Unconfirmed) -> ConnRef {
        // SAFETY: Only `TupleHash` nodes of entries are listed.
        let conn = unsafe { TupleHash::from_node(n) }.conn();
        // SAFETY: We hold the lock of the list the node is in.
        unsafe { rcu::del(n.as_ptr()) };
        self.set_count(self.count().saturating_sub(1));
        u.len.fetch_sub(1, Relaxed);
        if let Some(tag) = u.tags.get(tag_slot(conn.cookie())) {
            tag.fetch_sub(1, Relaxed);
        }
        // SAFETY: The list owned one reference for the entry; it is the caller's now.
        unsafe { ConnRef::from_raw(NonNull::from(conn)) }
    }

    /// Walks the list, newest first, doing with each entry what `pick` says. Returns the
    /// entry taken, if any, and how many were reaped.
    fn scan(&self, u: &Unconfirmed, mut pick: impl FnMut(&Conn) -> Pick) -> (Option<ConnRef>, u32) {
        let rcu = RcuGuard::new();
        let mut reaped = 0;
        // SAFETY: We hold the list's lock; its nodes are listed entries' original nodes.
        let mut pos = unsafe { rcu::first(self.head(), &rcu) };
        while let ChainPos::Node(n) = pos {
            // Read before `n` may be unlinked and its entry freed and reused.
            // SAFETY: `n` is in the list, which we hold locked.
            let next = unsafe { rcu::next(n, &rcu) };
            // SAFETY: Only `TupleHash` nodes of entries are listed.
            let conn = unsafe { TupleHash::from_node(n) }.conn();
            match pick(conn) {
                Pick::Skip => {}
                Pick::Take => return (Some(self.unlink(n, u)), reaped),
                Pick::Reap => {
                    drop(self.unlink(n, u));
                    reaped += 1;
                }
            }
            pos = next;
        }
        (None, reaped)
    }

    /// Takes the oldest entry (the list's last) off the list.
    fn take_oldest(&self, u: &Unconfirmed) -> Option<ConnRef> {
        let rcu = RcuGuard::new();
        let mut last = None;
        // SAFETY: We hold the list's lock; its nodes are listed entries' original nodes.
        let mut pos = unsafe { rcu::first(self.head(), &rcu) };
        while let ChainPos::Node(n) = pos {
            last = Some(n);
            // SAFETY: `n` is in the list, which we hold locked.
            pos = unsafe { rcu::next(n, &rcu) };
        }
        last.map(|n| self.unlink(n, u))
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
            tags: [const { AtomicU32::new(0) }; TAG_SLOTS],
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

    /// Every possible CPU's list, the running CPU's first.
    fn lists(&self) -> impl Iterator<Item = *mut bindings::rct_pcpu_list> + '_ {
        let here = self.this_cpu();
        Iterator::chain(
            core::iter::once(here),
            (0..crate::sys::percpu::nr_cpu_ids())
                // SAFETY: FFI call without preconditions.
                .filter(|&cpu| unsafe { bindings::rct_cpu_possible(cpu) })
                .map(|cpu| self.cpu(cpu))
                .filter(move |&l| l != here),
        )
    }

    /// Number of listed entries, all CPUs.
    pub(crate) fn len(&self) -> u32 {
        self.len.load(Relaxed)
    }

    /// Number of entries listed on `cpu`'s list, or `None` if `cpu` is not possible.
    pub(crate) fn len_of_cpu(&self, cpu: u32) -> Option<u32> {
        // SAFETY: FFI call without preconditions.
        if !unsafe { bindings::rct_cpu_possible(cpu) } {
            return None;
        }
        Some(Locked::new(self.cpu(cpu)).count())
    }

    /// Lists `conn` on the running CPU's list, which takes over the caller's reference.
    /// First removes the entries `stale` says will never be confirmed, then, if the list is
    /// full, the oldest; returns how many went.
    pub(crate) fn add(&self, conn: ConnRef, mut stale: impl FnMut(&Conn) -> bool) -> u32 {
        let list = Locked::new(self.this_cpu());
        let (_, mut reaped) = list.scan(self, |c| if stale(c) { Pick::Reap } else { Pick::Skip });
        if list.count() >= UNCONFIRMED_MAX_PER_CPU {
            drop(list.take_oldest(self));
            reaped += 1;
        }
        let node = conn.tuplehash(Dir::Original).node();
        let conn_cookie = conn.cookie();
        let _ = conn.into_raw();
        // SAFETY: We hold the list's lock; an entry not yet listed is in no chain.
        unsafe { rcu::add_head(node, list.head()) };
        list.set_count(list.count().saturating_add(1));
        self.len.fetch_add(1, Relaxed);
        if let Some(tag) = self.tags.get(tag_slot(conn_cookie)) {
            tag.fetch_add(1, Relaxed);
        }
        reaped
    }

    /// Whether an entry carrying `cookie` may be listed: false means certainly not. One load,
    /// for the confirm hook's common case (a packet of a confirmed connection).
    pub(crate) fn may_hold(&self, cookie: usize) -> bool {
        self.tags
            .get(tag_slot(cookie))
            .is_some_and(|t| t.load(Relaxed) != 0)
    }

    /// Reaps the entries `old` chooses, on every CPU's list; returns how many went.
    pub(crate) fn reap(&self, old: impl Fn(&Conn) -> bool) -> u32 {
        self.take(|c| if old(c) { Pick::Reap } else { Pick::Skip })
            .1
    }

    /// Scans the lists, this CPU's first (the task may have moved between its hooks, or a
    /// queued packet come back on another CPU), until `pick` takes an entry; returns it and
    /// how many entries `pick` had reaped.
    pub(crate) fn take(&self, mut pick: impl FnMut(&Conn) -> Pick) -> (Option<ConnRef>, u32) {
        let mut reaped = 0;
        if self.len() == 0 {
            return (None, 0);
        }
        for list in self.lists() {
            let (taken, r) = Locked::new(list).scan(self, &mut pick);
            reaped += r;
            if taken.is_some() {
                return (taken, reaped);
            }
        }
        (None, reaped)
    }

    /// Takes the oldest entry of the first list that has one, this CPU's first.
    pub(crate) fn take_oldest(&self) -> Option<ConnRef> {
        if self.len() == 0 {
            return None;
        }
        self.lists()
            .find_map(|list| Locked::new(list).take_oldest(self))
    }

    /// Drops every listed entry (netns exit, after its hooks are gone).
    pub(crate) fn drain(&self) {
        while let Some(c) = self.take_oldest() {
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
