// SPDX-License-Identifier: GPL-2.0

//! Per-CPU lists of new entries waiting for their confirm hook, as the `pcpu_lists` of
//! nf_conntrack before 6.1.
//!
//! An entry's original-direction node links it here until it is confirmed; it is then
//! moved into the table. Each list ends in a nulls value no bucket has, so a table lookup
//! led here by a recycled entry restarts.

use crate::conntrack::entry::{Conn, ConnRef};
use crate::sys::hlist_nulls::{PerCpuLists, Scan};
use core::ops::ControlFlow;
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
/// Each listed entry holds one reference, owned by its list. `tags[tag_slot(c)]` counts the
/// listed entries whose cookie is `c` or shares its slot: a zero there means no listed entry
/// carries `c`. Their sum is the number of listed entries.
pub(crate) struct Unconfirmed {
    lists: PerCpuLists<Conn>,
    tags: [AtomicU32; TAG_SLOTS],
}

pub(crate) use crate::proto::pipeline::Pick;

/// The most entries one CPU's list holds: a new entry listed beyond it pushes out the oldest.
/// An entry normally waits microseconds; only packets queued to user space (NFQUEUE, whose
/// default queue holds 1024) wait long, and there are never that many on one CPU at once.
pub(crate) const UNCONFIRMED_MAX_PER_CPU: u32 = 4096;

/// One CPU's list, locked.
type Locked<'a> = crate::sys::hlist_nulls::LockedList<'a, Conn>;

impl Unconfirmed {
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            lists: PerCpuLists::new(UNCONFIRMED_NULLS)?,
            tags: [const { AtomicU32::new(0) }; TAG_SLOTS],
        })
    }

    /// Books an entry taken off a list.
    fn unlisted(&self, conn: &Conn) {
        if let Some(tag) = self.tags.get(tag_slot(conn.cookie())) {
            tag.fetch_sub(1, Relaxed);
        }
    }

    /// Walks `list`, newest first, doing with each entry what `pick` says. Returns the entry
    /// taken, if any, and how many were reaped.
    fn scan(
        &self,
        list: &mut Locked<'_>,
        mut pick: impl FnMut(&Conn) -> Pick,
    ) -> (Option<ConnRef>, u32) {
        let mut reaped = 0;
        let taken = list.scan(
            |c| match pick(c) {
                Pick::Skip => Scan::Skip,
                Pick::Take => Scan::Take,
                Pick::Reap => Scan::Remove,
            },
            |c| {
                self.unlisted(&c);
                reaped += 1;
                drop(c);
            },
        );
        if let Some(c) = &taken {
            self.unlisted(c);
        }
        (taken, reaped)
    }

    /// Takes the oldest entry (the list's last) off `list`.
    fn take_last(&self, list: &mut Locked<'_>) -> Option<ConnRef> {
        let c = list.take_last()?;
        self.unlisted(&c);
        Some(c)
    }

    /// Number of listed entries, all CPUs: the sum of the filter's counters, which the packet
    /// path keeps instead of one more shared count.
    pub(crate) fn len(&self) -> u32 {
        self.tags
            .iter()
            .fold(0u32, |n, t| n.wrapping_add(t.load(Relaxed)))
    }

    /// Number of entries listed on `cpu`'s list, or `None` if `cpu` is not possible.
    pub(crate) fn len_of_cpu(&self, cpu: u32) -> Option<u32> {
        Some(self.lists.lock_cpu(cpu)?.len())
    }

    /// Lists `conn` on the running CPU's list, which takes over the caller's reference.
    /// First removes the entries `stale` says will never be confirmed, then, if the list is
    /// full, the oldest; returns how many went.
    pub(crate) fn add(&self, conn: ConnRef, mut stale: impl FnMut(&Conn) -> bool) -> u32 {
        let mut list = self.lists.lock_this_cpu();
        let (_, mut reaped) = self.scan(
            &mut list,
            |c| if stale(c) { Pick::Reap } else { Pick::Skip },
        );
        if list.len() >= UNCONFIRMED_MAX_PER_CPU {
            drop(self.take_last(&mut list));
            reaped += 1;
        }
        let conn_cookie = conn.cookie();
        // Booked before it is listed: `unlisted` never sees it uncounted.
        if let Some(tag) = self.tags.get(tag_slot(conn_cookie)) {
            tag.fetch_add(1, Relaxed);
        }
        if let Err(conn) = list.push(conn) {
            // Linked somewhere already: never expected. Not listed, so not booked.
            self.unlisted(&conn);
            drop(list);
            drop(conn);
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
        if self.len() == 0 {
            return 0;
        }
        self.take(|c| if old(c) { Pick::Reap } else { Pick::Skip })
            .1
    }

    /// Scans the lists, this CPU's first (the task may have moved between its hooks, or a
    /// queued packet come back on another CPU), until `pick` takes an entry; returns it and
    /// how many entries `pick` had reaped.
    pub(crate) fn take(&self, mut pick: impl FnMut(&Conn) -> Pick) -> (Option<ConnRef>, u32) {
        let mut reaped = 0;
        let taken = self.lists.each_this_cpu_first(|list| {
            let (taken, r) = self.scan(list, &mut pick);
            reaped += r;
            match taken {
                Some(c) => ControlFlow::Break(c),
                None => ControlFlow::Continue(()),
            }
        });
        (taken, reaped)
    }

    /// Takes the oldest entry of the first list that has one, this CPU's first.
    /// A new reference to the entry carrying `cookie`, left on its list.
    pub(crate) fn peek(&self, cookie: usize) -> Option<ConnRef> {
        if !self.may_hold(cookie) {
            return None;
        }
        let mut found = None;
        let _ = self.take(|c| {
            if found.is_none() && c.cookie() == cookie {
                found = c.try_get();
            }
            Pick::Skip
        });
        found
    }

    pub(crate) fn take_oldest(&self) -> Option<ConnRef> {
        if self.len() == 0 {
            return None;
        }
        self.lists
            .each_this_cpu_first(|list| match self.take_last(list) {
                Some(c) => ControlFlow::Break(c),
                None => ControlFlow::Continue(()),
            })
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
    }
}
