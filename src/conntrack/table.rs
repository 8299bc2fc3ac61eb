// SPDX-License-Identifier: GPL-2.0

//! The connection table: `hlist_nulls` buckets shared by all network namespaces, as
//! `nf_conntrack_hash` (`net/netfilter/nf_conntrack_core.c`).
//!
//! Lookups walk a chain under RCU without locks. An entry that is freed and reused while a
//! lookup stands on it may lead the lookup into another chain; every chain ends in a nulls
//! marker holding its bucket index, so the lookup notices and restarts (`search_restart`).
//! Inserts and deletes take the bucket locks of both directions' chains, lower index first.
//!
//! The bucket array can be replaced at run time ([`Table::resize`], the `buckets` sysctl), as
//! `nf_conntrack_hash_resize` replaces it: with every bucket lock held, inside a write section
//! of the table generation (`nf_conntrack_generation`). Lockers compute their buckets again if
//! the generation moved on before they held their locks; a lookup that finds nothing retries
//! if it moved on meanwhile (it may have walked the old array while entries left it); early
//! drop, the collector and `/proc` use the array they read, bucket by bucket, and tolerate a
//! change between two buckets.
//!
//! Lock order: the table mutex ([`crate::sys::sync::TableMutex`]: resize, netns cleanup),
//! bucket locks (two at most, [`crate::sys::sync::BucketLocks`], or all of them for a resize),
//! then an entry lock; a per-CPU unconfirmed list lock is never held together with a bucket
//! lock.

use crate::conntrack::entry::{Conn, ConnRef, EntryCache, TupleHash};
use crate::conntrack::gc::GcState;
use crate::conntrack::net::NetState;
use crate::proto::sysctl::table_size;
use crate::proto::tuple::{Dir, Key};
use crate::sys::hlist_nulls::{reciprocal_scale, Buckets, View, Walk};
use crate::sys::rcu::{RcuGuard, RcuSection};
use crate::sys::work::{GlobalSlot, Published};
use core::ops::ControlFlow;
use core::sync::atomic::{AtomicU32, Ordering::Relaxed};
use kernel::prelude::*;

/// The direction of an entry's link `idx` (0: original, 1: reply).
fn dir_of(idx: usize) -> Dir {
    if idx == 0 {
        Dir::Original
    } else {
        Dir::Reply
    }
}

pub(crate) use crate::proto::pipeline::Insert;

/// `MIN_CHAINLEN` and `MAX_CHAINLEN` of nf_conntrack: a chain may hold 50 plus a random
/// number below 30 entries before inserts into it fail.
pub(crate) const MIN_CHAINLEN: u32 = 50;
pub(crate) const MAX_CHAINLEN: u32 = 80 - MIN_CHAINLEN;

/// The hash table.
pub(crate) struct Table {
    buckets: Buckets<Conn>,
    pub(super) gc: GcState,
}

impl Table {
    /// An empty table of `size` buckets.
    pub(crate) fn new(size: u32) -> Result<Self> {
        Ok(Self {
            buckets: Buckets::new(size)?,
            gc: GcState::new(),
        })
    }

    /// The number of buckets now (`nf_conntrack_htable_size`).
    pub(crate) fn size(&self) -> u32 {
        self.buckets.size()
    }

    /// The bucket of a raw hash in the table as it is now (`reciprocal_scale`).
    #[allow(dead_code)] // The KUnit cases use it.
    pub(crate) fn bucket_of(&self, hash: u32) -> u32 {
        reciprocal_scale(hash, self.size())
    }

    /// The bucket array now, for the RCU section `rcu` (`nf_conntrack_get_ht`).
    pub(super) fn view<'g>(&'g self, rcu: RcuSection<'g>) -> View<'g, Conn> {
        self.buckets.view(rcu)
    }

    /// Walks chain `bucket` of `view` until `visit` breaks; `visit` gets each entry and the
    /// direction it is linked by.
    pub(super) fn walk<'g, T>(
        view: &View<'g, Conn>,
        bucket: u32,
        mut visit: impl FnMut(&'g Conn, Dir) -> ControlFlow<T>,
    ) -> Walk<T> {
        view.walk(bucket, |conn, idx| visit(conn, dir_of(idx)))
    }

    /// `nf_conntrack_hash_resize`: moves every entry into a new array of `size` buckets.
    /// Nothing if the table has that many; `EINVAL` for 0, `ENOMEM` if the array cannot be
    /// allocated. Process context (it sleeps). The entry limit does not change.
    pub(crate) fn resize(&self, size: u32) -> Result {
        self.buckets
            .resize(size, |conn, idx| conn.hash(dir_of(idx)))
    }

    /// Starts loading the head of the chain of raw hash `hash` (see [`Buckets::prefetch`]).
    #[inline]
    pub(crate) fn prefetch(&self, hash: u32, rcu: RcuSection<'_>) {
        self.buckets.prefetch(hash, rcu);
    }

    /// `__nf_conntrack_find_get`: the entry with a direction whose tuple is `key`, in
    /// netns `owner`, with a reference, and that direction. Expired entries met on the way
    /// are reaped. Runs in the caller's read-side section `rcu` (a hook's), as
    /// `nf_conntrack_in` runs in `nf_hook`'s.
    pub(crate) fn find(
        &self,
        owner: &NetState,
        key: &Key,
        hash: u32,
        now: u32,
        rcu: RcuSection<'_>,
    ) -> Option<(ConnRef, Dir)> {
        self.find_observed(owner, key, hash, now, rcu, |_| {})
    }

    /// [`Table::find`], calling `observe` on every node visited: KUnit uses it to move an
    /// entry under a running lookup.
    pub(crate) fn find_observed(
        &self,
        owner: &NetState,
        key: &Key,
        hash: u32,
        now: u32,
        rcu: RcuSection<'_>,
        mut observe: impl FnMut(&TupleHash),
    ) -> Option<(ConnRef, Dir)> {
        loop {
            let view = self.view(rcu);
            let bucket = view.bucket_of(hash);
            let walk = Self::walk(&view, bucket, |conn, dir| {
                let th = conn.tuplehash(dir);
                observe(th);
                if conn.is_confirmed() && conn.is_expired(now) {
                    self.gc_expired(conn, now);
                    return ControlFlow::Continue(());
                }
                if conn.key_equal(th, key, owner) {
                    return ControlFlow::Break((conn, dir));
                }
                ControlFlow::Continue(())
            });
            let (found, dir) = match walk {
                Walk::Found(f) => f,
                // A resize ran meanwhile: the entry may have left the chain walked for the
                // new array before the walk reached it. Look again, in the new array.
                Walk::End if view.changed() => continue,
                Walk::End => return None,
                Walk::Restart => {
                    owner.count_search_restart();
                    continue;
                }
            };
            // A candidate: take a reference, then check again that it is still what we
            // looked for (the slab may have reused it).
            let conn = found.try_get()?;
            if conn.key_equal(conn.tuplehash(dir), key, owner) {
                return Some((conn, dir));
            }
            return None;
        }
    }

    /// `nf_ct_gc_expired`: deletes `conn` if it is still an expired entry of the table.
    pub(crate) fn gc_expired(&self, conn: &Conn, now: u32) -> bool {
        let Some(conn) = conn.try_get() else {
            return false;
        };
        conn.is_confirmed() && !conn.is_dying() && conn.is_expired(now) && self.kill(&conn)
    }

    /// `nf_ct_delete`: unlinks `conn` from the table and drops the table's reference.
    /// Returns false if someone else got there first.
    pub(crate) fn kill(&self, conn: &ConnRef) -> bool {
        if conn.set_status(crate::proto::conn::IPS_DYING) {
            return false;
        }
        // A confirmed entry is linked in exactly the two chains of its hashes (in the array
        // current once they are locked); DYING (set above, once) makes this the only unlink.
        let locked = self
            .buckets
            .lock_hashes([conn.hash(Dir::Original), conn.hash(Dir::Reply)]);
        let table_ref = locked.remove(conn, locked.buckets());
        drop(locked);
        // The table's reference, after the locks.
        drop(table_ref);
        // `nf_ct_remove_expectations`: "most connection never expect any others".
        if Conn::helper(conn).is_some() {
            Conn::with_owner(conn, |owner| {
                if let Some(owner) = owner {
                    owner.remove_expectations(conn);
                }
            });
        }
        true
    }

    /// `__nf_conntrack_confirm`'s insertion: adds `conn`, which is in no list, with both
    /// directions, unless an equal entry is there. `clash_ok` is the protocol's
    /// `allow_clash`. `chain_limit` is `MIN_CHAINLEN` plus a random number below
    /// `MAX_CHAINLEN`. The table takes over the caller's reference on success.
    pub(crate) fn insert(
        &self,
        conn: ConnRef,
        owner: &NetState,
        now: u32,
        clash_ok: bool,
        chain_limit: u32,
    ) -> Insert {
        // The buckets in the array current once locked: a resize before computes them again.
        let locked = self
            .buckets
            .lock_hashes([conn.hash(Dir::Original), conn.hash(Dir::Reply)]);
        let [bo, br] = locked.buckets();
        if conn.is_dying() {
            return Insert::Failed;
        }
        let orig_key = conn.tuplehash(Dir::Original).load_key_for_compare();
        let reply_key = conn.tuplehash(Dir::Reply).load_key_for_compare();
        let mut clash = None;
        let mut too_long = false;
        for (bucket, key) in [(bo, &orig_key), (br, &reply_key)] {
            let mut len = 0;
            locked.walk(bucket, |other, idx| {
                if other.key_equal(other.tuplehash(dir_of(idx)), key, owner) {
                    clash = Some(other);
                    return ControlFlow::Break(());
                }
                len += 1;
                if len > chain_limit {
                    too_long = true;
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            });
            if clash.is_some() || too_long {
                break;
            }
        }
        if too_long {
            return Insert::ChainTooLong;
        }
        if let Some(other) = clash {
            // Without NAT, an equal original or reply tuple means the same flow
            // (`nf_ct_can_merge`): the packet joins the entry already there.
            if !(clash_ok && can_merge(other, &conn)) {
                return Insert::Failed;
            }
            // `nf_ct_acct_merge`: the winner counts the loser's packet, as one packet of the
            // bytes the loser counted in the packet's direction (the original one: the
            // packet made the loser), truncated to 32 bits as 6.12 does.
            // The winner is in the table (its reference holds it) while the lock is held.
            let loser = Conn::counters(&conn);
            let winner = loser.as_ref().and_then(|_| other.try_get());
            drop(locked);
            if let (Some(w), Some([orig, _])) = (winner, loser) {
                Conn::account(&w, Dir::Original, orig.bytes as u32 as usize);
            }
            return Insert::Merged;
        }
        // Relative timeout becomes absolute (`ct->timeout += nfct_time_stamp`).
        conn.set_timeout(crate::proto::conn::confirmed_timeout(conn.timeout(), now));
        conn.set_status(crate::proto::conn::IPS_CONFIRMED);
        // The entry is in no list (the caller took it off its unconfirmed list): the table
        // takes over the caller's reference.
        let inserted = locked.insert(conn, [bo, br]);
        drop(locked);
        match inserted {
            Ok(()) => Insert::Inserted,
            // Still linked somewhere: never expected. The reference goes after the locks.
            Err(_conn) => Insert::Failed,
        }
    }

    /// `early_drop`: scans up to `NF_CT_EVICTION_RANGE` (8) buckets from `hash`'s, and in
    /// the first that has any, deletes every unassured entry of `owner`
    /// (`early_drop_list`). Returns how many went (0: none; the caller counts them in
    /// `early_drop`). Expired entries met on the way are reaped, as 6.12 does.
    pub(crate) fn early_drop(&self, owner: &NetState, hash: u32, now: u32) -> u32 {
        let mut bucket = 0;
        for i in 0..EVICTION_RANGE {
            let mut drops = 0u32;
            let rcu = RcuGuard::new();
            // The array now, each time: after a resize, the next bucket is one of the new.
            let view = self.view(rcu.section());
            bucket = if i == 0 {
                view.bucket_of(hash)
            } else {
                // A table has at least one bucket; checked so that no panic path is left.
                (bucket + 1).checked_rem(view.size()).unwrap_or(0)
            };
            // A nulls mismatch (`Walk::Restart`) ends the scan of this chain, as 6.12's
            // `hlist_nulls_for_each_entry_rcu` ends it.
            let _ = Self::walk(&view, bucket, |conn, _| {
                if conn.is_confirmed() && conn.is_expired(now) {
                    self.gc_expired(conn, now);
                    return ControlFlow::<()>::Continue(());
                }
                if conn.is_assured() || !conn.owned_by(owner) || conn.is_dying() {
                    return ControlFlow::Continue(());
                }
                let Some(c) = conn.try_get() else {
                    return ControlFlow::Continue(());
                };
                // Still ours and in the table after the reference (the slab may have reused
                // it); 6.12 does not look at the assured bit again.
                if c.owned_by(owner) && c.is_confirmed() && self.kill(&c) {
                    drops += 1;
                }
                ControlFlow::Continue(())
            });
            drop(rcu);
            if drops != 0 {
                return drops;
            }
        }
        0
    }

    /// Calls `f` for every entry of `owner` in `bucket` of the array now, original direction,
    /// with the bucket locked: nothing enters or leaves the chain meanwhile, so `f` sees each
    /// entry once. Nothing for a bucket beyond the array's size. (A resize between two calls
    /// moves entries between buckets: a caller iterating may then see one twice or miss it,
    /// as 6.12's `/proc` iterator may.)
    pub(crate) fn for_each_in_bucket(
        &self,
        bucket: u32,
        owner: &NetState,
        mut f: impl FnMut(&ConnRef),
    ) {
        // An empty chain needs no lock: the peek is a plain read of its head.
        {
            let rcu = RcuGuard::new();
            if self.view(rcu.section()).is_empty(bucket) {
                return;
            }
        }
        let Some(locked) = self.buckets.lock_buckets(bucket, bucket) else {
            return;
        };
        locked.walk(bucket, |conn, idx| {
            if dir_of(idx) == Dir::Original && conn.owned_by(owner) {
                if let Some(c) = conn.try_get() {
                    f(&c);
                }
            }
            ControlFlow::<()>::Continue(())
        });
    }

    /// The first bucket at or after `from` whose chain is not empty in the array now, if any
    /// (`/proc` steps over empty buckets with it). Reads heads only, in RCU sections of
    /// [`PEEK_CHUNK`] buckets at most, and may sleep between two.
    pub(crate) fn next_nonempty(&self, from: u32) -> Option<u32> {
        let mut bucket = from;
        loop {
            let rcu = RcuGuard::new();
            let view = self.view(rcu.section());
            let end = view.size().min(bucket.saturating_add(PEEK_CHUNK));
            while bucket < end {
                if !view.is_empty(bucket) {
                    return Some(bucket);
                }
                bucket += 1;
            }
            if bucket >= view.size() {
                return None;
            }
            drop(rcu);
            crate::sys::time::cond_resched();
        }
    }

    /// Deletes every entry of `owner` (netns exit). Under the table mutex, as 6.12's
    /// `nf_ct_iterate_cleanup` runs under `nf_conntrack_mutex`: no resize moves entries
    /// between buckets behind the scan. Process context (it sleeps).
    pub(crate) fn kill_all(&self, owner: &NetState) {
        let _mutex = crate::sys::sync::TableMutex::lock();
        let size = self.size();
        for bucket in 0..size {
            loop {
                let rcu = RcuGuard::new();
                let view = self.view(rcu.section());
                let walk = Self::walk(&view, bucket, |conn, _| {
                    if !conn.owned_by(owner) || conn.is_dying() || !conn.is_confirmed() {
                        return ControlFlow::Continue(());
                    }
                    match conn.try_get() {
                        Some(c) if c.owned_by(owner) => ControlFlow::Break(c),
                        _ => ControlFlow::Continue(()),
                    }
                });
                drop(rcu);
                match walk {
                    Walk::Found(c) => {
                        self.kill(&c);
                    }
                    Walk::End => break,
                    Walk::Restart => continue,
                }
            }
            if bucket % 1024 == 0 {
                crate::sys::time::cond_resched();
            }
        }
    }
}

#[cfg(CONFIG_KUNIT)]
impl Table {
    #[cfg(rct_kunit)] // Only the KUnit cases use it.
    /// Moves direction `dir` of an entry from chain `from` into chain `to`, as a free and reuse
    /// by the slab would while a lookup stands on it. Returns whether it moved.
    pub(crate) fn move_for_test(&self, conn: &Conn, dir: Dir, from: u32, to: u32) -> bool {
        self.buckets
            .lock_buckets(from, to)
            .is_some_and(|l| l.relink(conn, dir as usize, from, to))
    }
}

/// Buckets [`Table::next_nonempty`] peeks at in one RCU section.
const PEEK_CHUNK: u32 = 4096;

/// `NF_CT_EVICTION_RANGE`.
const EVICTION_RANGE: u32 = 8;

/// `nf_ct_can_merge` without NAT: the two entries are the same flow, either way round.
fn can_merge(a: &Conn, b: &Conn) -> bool {
    let (ao, ar) = (
        a.tuplehash(Dir::Original).load_key_for_compare(),
        a.tuplehash(Dir::Reply).load_key_for_compare(),
    );
    let (bo, br) = (
        b.tuplehash(Dir::Original).load_key_for_compare(),
        b.tuplehash(Dir::Reply).load_key_for_compare(),
    );
    (ao == bo && ar == br) || (ao == br && ar == bo)
}

/// Module-wide state: the table and the entry cache.
pub(crate) struct Global {
    pub(crate) table: Table,
    pub(crate) cache: EntryCache,
    /// `nf_conntrack_max`: entries allowed per netns (0: no limit); the `max` sysctl writes
    /// it, every new entry reads it.
    max: AtomicU32,
    /// `nf_ct_expect_hsize`: buckets of each netns' expectation table.
    pub(crate) expect_hsize: u32,
    /// `nf_ct_expect_max`: expectations allowed per netns (the `expect_max` sysctl).
    expect_max: AtomicU32,
    /// The ports helpers are assigned by.
    pub(crate) helper_ports: crate::proto::helper::HelperPorts,
}

impl Global {
    /// `nf_conntrack_max`.
    pub(crate) fn max(&self) -> u32 {
        self.max.load(Relaxed)
    }

    /// Sets `nf_conntrack_max` (the `max` sysctl, in the initial netns).
    pub(crate) fn set_max(&self, max: u32) {
        self.max.store(max, Relaxed);
    }

    /// `nf_ct_expect_max`.
    pub(crate) fn expect_max(&self) -> u32 {
        self.expect_max.load(Relaxed)
    }

    /// Sets `nf_ct_expect_max` (the `expect_max` sysctl, in the initial netns).
    pub(crate) fn set_expect_max(&self, max: u32) {
        self.expect_max.store(max, Relaxed);
    }
}

static GLOBAL: GlobalSlot<Global> = GlobalSlot::new();

/// The module-wide state, between module init and exit.
pub(crate) fn global() -> Option<&'static Global> {
    GLOBAL.get()
}

/// Owns the module-wide state and the collector for the module's lifetime.
pub(crate) struct GlobalRegistration {
    _published: Published<Global>,
}

impl GlobalRegistration {
    /// Sizes the table as nf_conntrack does (`nf_conntrack_init_start`), creates the cache
    /// and starts the collector.
    pub(crate) fn new() -> Result<Self> {
        let param = crate::sys::params::hashsize();
        // 6.12 fails to load with ENOMEM (`nf_ct_alloc_hashtable` refuses the size before it
        // allocates); the message says why.
        let Some((size, max)) = table_size(param, crate::sys::params::totalram_pages()) else {
            pr_err!(
                "hashsize {} is too large: at most {}\n",
                param,
                crate::proto::sysctl::HASHSIZE_MAX
            );
            return Err(ENOMEM);
        };
        let (expect_hsize, expect_max) = crate::proto::expect::expect_sizes(size);
        let global = KBox::new(
            Global {
                table: Table::new(size)?,
                cache: EntryCache::new()?,
                max: AtomicU32::new(max),
                expect_hsize,
                expect_max: AtomicU32::new(expect_max),
                helper_ports: crate::sys::params::helper_ports(),
            },
            GFP_KERNEL,
        )?;
        let mut published = GLOBAL.publish(global)?;
        published.start_periodic()?;
        Ok(Self {
            _published: published,
        })
    }
}
