// SPDX-License-Identifier: GPL-2.0

//! The connection table: `hlist_nulls` buckets shared by all network namespaces, as
//! `nf_conntrack_hash` (`net/netfilter/nf_conntrack_core.c`).
//!
//! Lookups walk a chain under RCU without locks. An entry that is freed and reused while a
//! lookup stands on it may lead the lookup into another chain; every chain ends in a nulls
//! marker holding its bucket index, so the lookup notices and restarts (`search_restart`).
//! Inserts and deletes take the bucket locks of both directions' chains, lower index first.
//!
//! Lock order: bucket locks (two at most, `rct_double_lock`), then nothing else; a
//! per-CPU unconfirmed list lock is never held together with a bucket lock.

use crate::conntrack::entry::{Conn, ConnRef, EntryCache, TupleHash};
use crate::conntrack::net::NetState;
use crate::proto::tuple::{Dir, Key};
use crate::sys::bindings;
use crate::sys::rcu::{self, ChainPos, RcuGuard};
use core::ops::ControlFlow;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, AtomicU32, Ordering::Relaxed};
use kernel::prelude::*;

/// Bucket locks of one or two chains, held with bottom halves disabled.
struct BucketLocks(u32, u32);

impl BucketLocks {
    fn new(a: u32, b: u32) -> Self {
        // SAFETY: FFI calls without preconditions; undone in `drop` in reverse order.
        unsafe {
            bindings::rct_local_bh_disable();
            bindings::rct_double_lock(a, b);
        }
        Self(a, b)
    }
}

impl Drop for BucketLocks {
    fn drop(&mut self) {
        // SAFETY: Taken in `new`.
        unsafe {
            bindings::rct_double_unlock(self.0, self.1);
            bindings::rct_local_bh_enable();
        }
    }
}

/// How a walk along a chain ended.
enum Walk<T> {
    /// The visitor stopped it with a value.
    Found(T),
    /// It reached the end of the chain it started in.
    End,
    /// It ended in another chain: a recycled entry led it astray.
    Restart,
}

/// What [`Table::insert`] did with an entry.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Insert {
    /// In the table.
    Inserted,
    /// An equal entry was there already and the new one was dropped (`clash_resolve`).
    Merged,
    /// Not inserted; the packet must be dropped (`insert_failed`).
    Failed,
    /// Not inserted: a chain was too long (`chaintoolong`, `insert_failed`).
    ChainTooLong,
}

/// `MIN_CHAINLEN` and `MAX_CHAINLEN` of nf_conntrack: a chain may hold 50 plus a random
/// number below 30 entries before inserts into it fail.
pub(crate) const MIN_CHAINLEN: u32 = 50;
pub(crate) const MAX_CHAINLEN: u32 = 80 - MIN_CHAINLEN;

/// The hash table.
///
/// # Invariants
///
/// `buckets` points to `size` initialised chain heads, chain `i` ending in nulls value `i`,
/// owned by `self` and freed on drop, when no entry is linked any more.
pub(crate) struct Table {
    buckets: NonNull<bindings::hlist_nulls_head>,
    size: u32,
    gc: GcState,
}

// SAFETY: Chains are changed under the bucket locks only and read under RCU.
unsafe impl Send for Table {}
// SAFETY: As above.
unsafe impl Sync for Table {}

impl Table {
    /// An empty table of `size` buckets.
    pub(crate) fn new(size: u32) -> Result<Self> {
        if size == 0 {
            return Err(EINVAL);
        }
        // SAFETY: FFI call without preconditions; the result is checked.
        let buckets = NonNull::new(unsafe { bindings::rct_alloc_hashtable(size) }).ok_or(ENOMEM)?;
        // INVARIANT: `rct_alloc_hashtable` initialised `size` heads, chain `i` ending in `i`.
        Ok(Self {
            buckets,
            size,
            gc: GcState::new(),
        })
    }

    pub(crate) fn size(&self) -> u32 {
        self.size
    }

    /// The bucket of a raw hash (`reciprocal_scale`).
    pub(crate) fn bucket_of(&self, hash: u32) -> u32 {
        ((u64::from(hash) * u64::from(self.size)) >> 32) as u32
    }

    fn head(&self, bucket: u32) -> *mut bindings::hlist_nulls_head {
        // `bucket_of` and the walks below keep `bucket < size`.
        self.buckets
            .as_ptr()
            .wrapping_add(bucket.min(self.size - 1) as usize)
    }

    /// Walks chain `bucket` under RCU until `visit` breaks.
    fn walk_rcu<'g, T>(
        &self,
        bucket: u32,
        rcu: &'g RcuGuard,
        mut visit: impl FnMut(&'g TupleHash) -> ControlFlow<T>,
    ) -> Walk<T> {
        // SAFETY: The head is one of ours (type invariant) and entries are type-stable.
        let mut pos = unsafe { rcu::first(self.head(bucket), rcu) };
        loop {
            match pos {
                ChainPos::Node(n) => {
                    // SAFETY: Chains only link `TupleHash` nodes of entries; we are in an RCU
                    // section.
                    let th = unsafe { TupleHash::from_node(n) };
                    if let ControlFlow::Break(v) = visit(th) {
                        return Walk::Found(v);
                    }
                    // SAFETY: `n` was reached in this section.
                    pos = unsafe { rcu::next(n, rcu) };
                }
                ChainPos::End(nulls) if nulls == bucket as usize => return Walk::End,
                ChainPos::End(_) => return Walk::Restart,
            }
        }
    }

    /// Walks chain `bucket` with its lock held; nothing can change it meanwhile.
    fn walk_locked(&self, bucket: u32, visit: impl FnMut(&TupleHash) -> ControlFlow<()>) {
        let rcu = RcuGuard::new();
        // Under the lock the walk cannot be led astray: entries only leave a chain with it.
        let _ = self.walk_rcu(bucket, &rcu, visit);
    }

    /// `__nf_conntrack_find_get`: the entry with a direction whose tuple is `key`, in
    /// netns `owner`, with a reference, and that direction. Expired entries met on the way
    /// are reaped.
    pub(crate) fn find(
        &self,
        owner: &NetState,
        key: &Key,
        hash: u32,
        now: u32,
    ) -> Option<(ConnRef, Dir)> {
        self.find_observed(owner, key, hash, now, |_| {})
    }

    /// [`Table::find`], calling `observe` on every node visited: KUnit uses it to move an
    /// entry under a running lookup.
    pub(crate) fn find_observed(
        &self,
        owner: &NetState,
        key: &Key,
        hash: u32,
        now: u32,
        mut observe: impl FnMut(&TupleHash),
    ) -> Option<(ConnRef, Dir)> {
        let bucket = self.bucket_of(hash);
        loop {
            let rcu = RcuGuard::new();
            let walk = self.walk_rcu(bucket, &rcu, |th| {
                observe(th);
                let conn = th.conn();
                if conn.is_confirmed() && conn.is_expired(now) {
                    self.gc_expired(conn, now);
                    return ControlFlow::Continue(());
                }
                if conn.key_equal(th, key, owner) {
                    return ControlFlow::Break(th);
                }
                ControlFlow::Continue(())
            });
            let th = match walk {
                Walk::Found(th) => th,
                Walk::End => return None,
                Walk::Restart => {
                    owner.count_search_restart();
                    continue;
                }
            };
            // A candidate: take a reference, then check again that it is still what we
            // looked for (the slab may have reused it).
            let conn = th.conn().try_get()?;
            if conn.key_equal(th, key, owner) {
                let dir = th.dir();
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
        let (bo, br) = (
            self.bucket_of(conn.hash(Dir::Original)),
            self.bucket_of(conn.hash(Dir::Reply)),
        );
        {
            let _locks = BucketLocks::new(bo, br);
            // SAFETY: A confirmed entry is linked in exactly these two chains, whose locks we
            // hold; DYING (set above, once) makes this the only unlink.
            unsafe {
                rcu::del(conn.tuplehash(Dir::Original).node());
                rcu::del(conn.tuplehash(Dir::Reply).node());
            }
        }
        // SAFETY: The table held one reference for the entry while it was linked.
        drop(unsafe { ConnRef::from_raw(NonNull::from(&**conn)) });
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
        let (bo, br) = (
            self.bucket_of(conn.hash(Dir::Original)),
            self.bucket_of(conn.hash(Dir::Reply)),
        );
        let locks = BucketLocks::new(bo, br);
        if conn.is_dying() {
            return Insert::Failed;
        }
        let orig_key = conn.tuplehash(Dir::Original).load_key_for_compare();
        let reply_key = conn.tuplehash(Dir::Reply).load_key_for_compare();
        let mut clash = None;
        let mut too_long = false;
        for (bucket, key) in [(bo, &orig_key), (br, &reply_key)] {
            let mut len = 0;
            self.walk_locked(bucket, |th| {
                let other = th.conn();
                if other.key_equal(th, key, owner) {
                    clash = Some(NonNull::from(other));
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
            // SAFETY: `other` is linked in a chain whose lock we hold, so it is a live entry.
            let other = unsafe { other.as_ref() };
            // Without NAT, an equal original or reply tuple means the same flow
            // (`nf_ct_can_merge`): the packet joins the entry already there.
            return if clash_ok && can_merge(other, &conn) {
                Insert::Merged
            } else {
                Insert::Failed
            };
        }
        // Relative timeout becomes absolute (`ct->timeout += nfct_time_stamp`).
        conn.set_timeout(crate::proto::conn::confirmed_timeout(conn.timeout(), now));
        conn.set_status(crate::proto::conn::IPS_CONFIRMED);
        let conn = conn.into_raw();
        // SAFETY: We hold both chains' locks; the entry is in no list (the caller took it off
        // its unconfirmed list) and the table now owns the caller's reference.
        unsafe {
            let c = conn.as_ref();
            rcu::add_head(c.tuplehash(Dir::Original).node(), self.head(bo));
            rcu::add_head(c.tuplehash(Dir::Reply).node(), self.head(br));
        }
        drop(locks);
        Insert::Inserted
    }

    /// `early_drop`: deletes one unassured entry of `owner` from the 8 buckets starting at
    /// `hash`'s.
    pub(crate) fn early_drop(&self, owner: &NetState, hash: u32, now: u32) -> bool {
        let mut bucket = self.bucket_of(hash);
        for _ in 0..EVICTION_RANGE {
            let rcu = RcuGuard::new();
            let walk = self.walk_rcu(bucket, &rcu, |th| {
                let conn = th.conn();
                if conn.is_confirmed() && conn.is_expired(now) {
                    self.gc_expired(conn, now);
                    return ControlFlow::Continue(());
                }
                if conn.is_assured() || !conn.owned_by(owner) || conn.is_dying() {
                    return ControlFlow::Continue(());
                }
                let Some(c) = conn.try_get() else {
                    return ControlFlow::Continue(());
                };
                if c.owned_by(owner) && c.is_confirmed() && !c.is_assured() && self.kill(&c) {
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            });
            drop(rcu);
            if let Walk::Found(()) = walk {
                return true;
            }
            bucket = (bucket + 1) % self.size;
        }
        false
    }

    /// Calls `f` for every entry of `owner` in `bucket`, original direction, with the bucket
    /// locked: nothing enters or leaves the chain meanwhile, so `f` sees each entry once.
    pub(crate) fn for_each_in_bucket(
        &self,
        bucket: u32,
        owner: &NetState,
        mut f: impl FnMut(&ConnRef),
    ) {
        if bucket >= self.size {
            return;
        }
        // An empty chain needs no lock: the peek is a plain read of its head.
        {
            let rcu = RcuGuard::new();
            // SAFETY: The head is ours.
            if let ChainPos::End(_) = unsafe { rcu::first(self.head(bucket), &rcu) } {
                return;
            }
        }
        let _locks = BucketLocks::new(bucket, bucket);
        self.walk_locked(bucket, |th| {
            let conn = th.conn();
            if th.dir() == Dir::Original && conn.owned_by(owner) {
                if let Some(c) = conn.try_get() {
                    f(&c);
                }
            }
            ControlFlow::Continue(())
        });
    }

    /// Deletes every entry of `owner` (netns exit).
    pub(crate) fn kill_all(&self, owner: &NetState) {
        for bucket in 0..self.size {
            loop {
                let rcu = RcuGuard::new();
                let walk = self.walk_rcu(bucket, &rcu, |th| {
                    let conn = th.conn();
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

    /// One run of the collector (`gc_worker`): reaps expired entries bucket by bucket for at
    /// most `GC_SCAN_MAX_DURATION`, and returns the jiffies until the next run, adapted to
    /// the timeouts it saw as 6.12 does.
    pub(crate) fn gc_run(&self, now_fn: impl Fn() -> u32, hz: u32) -> u32 {
        self.gc.run(self, now_fn, hz)
    }
}

#[cfg(CONFIG_KUNIT)]
impl Table {
    #[cfg(rct_kunit)] // Only the KUnit cases use it.
    /// Moves one direction of an entry into chain `bucket`, as a free and reuse by the slab
    /// would while a lookup stands on it.
    pub(crate) fn move_for_test(&self, th: &TupleHash, bucket: u32) {
        let from = self.bucket_of(th.conn().hash(th.dir()));
        let _locks = BucketLocks::new(from, bucket);
        // SAFETY: The node is in chain `from`, whose lock we hold with `bucket`'s.
        unsafe {
            rcu::del(th.node());
            rcu::add_head(th.node(), self.head(bucket));
        }
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        // SAFETY: Allocated by `rct_alloc_hashtable`; every entry was removed before.
        unsafe { bindings::rct_free_hashtable(self.buckets.as_ptr()) };
    }
}

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

/// State of the collector between runs (`struct conntrack_gc_work`). Only the collector's
/// work item touches it, one run at a time.
struct GcState {
    next_bucket: AtomicU32,
    avg_timeout: AtomicU32,
    count: AtomicU32,
    start_time: AtomicU32,
}

impl GcState {
    const fn new() -> Self {
        Self {
            next_bucket: AtomicU32::new(0),
            avg_timeout: AtomicU32::new(0),
            count: AtomicU32::new(0),
            start_time: AtomicU32::new(0),
        }
    }

    fn run(&self, table: &Table, now_fn: impl Fn() -> u32, hz: u32) -> u32 {
        let interval_max = 60 * hz;
        let interval_min = hz;
        let interval_clamp = 300 * hz;
        let max_duration = (hz / 100).max(1);
        let expired_max = 64000 / hz.max(1);

        let start_time = now_fn();
        let mut i = self.next_bucket.load(Relaxed);
        if i == 0 {
            self.avg_timeout.store(interval_max, Relaxed);
            self.count.store(100, Relaxed);
            self.start_time.store(start_time, Relaxed);
        }
        let mut next_run = i64::from(self.avg_timeout.load(Relaxed));
        let mut count = i64::from(self.count.load(Relaxed));
        let end_time = start_time.wrapping_add(max_duration);
        let mut expired = 0u32;

        while i < table.size {
            let rcu = RcuGuard::new();
            let now = now_fn();
            let walk = table.walk_rcu(i, &rcu, |th| {
                if expired > expired_max {
                    return ControlFlow::Break(());
                }
                let conn = th.conn();
                if !conn.is_confirmed() {
                    return ControlFlow::Continue(());
                }
                if conn.is_expired(now) {
                    table.gc_expired(conn, now);
                    expired += 1;
                    return ControlFlow::Continue(());
                }
                // Average the time left, to run again when entries will have expired.
                let left = i64::from(conn.timeout().wrapping_sub(now) as i32)
                    .clamp(i64::from(interval_min), i64::from(interval_clamp));
                count += 1;
                next_run += (left - next_run) / count;
                ControlFlow::Continue(())
            });
            drop(rcu);
            if let Walk::Found(()) = walk {
                // Too many expired at once: continue soon.
                self.next_bucket.store(i, Relaxed);
                self.avg_timeout
                    .store(next_run.clamp(0, i64::from(u32::MAX)) as u32, Relaxed);
                self.count
                    .store(count.clamp(0, i64::from(u32::MAX)) as u32, Relaxed);
                let delta = now_fn().wrapping_sub(self.start_time.load(Relaxed)) as i32;
                return u32::from(delta < interval_max as i32);
            }
            crate::sys::time::cond_resched();
            i += 1;
            if (now_fn().wrapping_sub(end_time) as i32) > 0 && i < table.size {
                self.avg_timeout
                    .store(next_run.clamp(0, i64::from(u32::MAX)) as u32, Relaxed);
                self.count
                    .store(count.clamp(0, i64::from(u32::MAX)) as u32, Relaxed);
                self.next_bucket.store(i, Relaxed);
                return 0;
            }
        }
        self.next_bucket.store(0, Relaxed);
        let next_run = next_run.clamp(i64::from(interval_min), i64::from(interval_max));
        let delta = i64::from((now_fn().wrapping_sub(self.start_time.load(Relaxed)) as i32).max(1));
        if next_run > delta {
            (next_run - delta) as u32
        } else {
            1
        }
    }
}

/// Module-wide state: the table and the entry cache.
pub(crate) struct Global {
    pub(crate) table: Table,
    pub(crate) cache: EntryCache,
    /// `nf_conntrack_max`: entries allowed per netns.
    pub(crate) max: u32,
}

static GLOBAL: AtomicPtr<Global> = AtomicPtr::new(core::ptr::null_mut());

/// The module-wide state, between module init and exit.
pub(crate) fn global() -> Option<&'static Global> {
    // SAFETY: `GLOBAL` is set by `GlobalRegistration::new` before anything that calls this
    // is registered, and cleared and freed by its drop after all of them are gone.
    unsafe { GLOBAL.load(Relaxed).as_ref() }
}

/// Owns the module-wide state and the collector for the module's lifetime.
pub(crate) struct GlobalRegistration;

impl GlobalRegistration {
    /// Sizes the table as nf_conntrack does (`nf_conntrack_init_start`), creates the cache
    /// and starts the collector.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: FFI calls without preconditions.
        let (param, pages) = unsafe {
            (
                bindings::rct_htable_size_param(),
                bindings::rct_totalram_pages(),
            )
        };
        let (size, max) = table_size(param, pages as u64);
        let global = KBox::new(
            Global {
                table: Table::new(size)?,
                cache: EntryCache::new()?,
                max,
            },
            GFP_KERNEL,
        )?;
        // SAFETY: FFI calls without preconditions, done once before any use.
        unsafe {
            bindings::rct_locks_init();
            bindings::rct_hash_init();
        }
        GLOBAL.store(KBox::into_raw(global), Relaxed);
        // SAFETY: The collector only runs while `GLOBAL` is set; stopped in `drop`.
        unsafe { bindings::rct_gc_start() };
        Ok(Self)
    }
}

impl Drop for GlobalRegistration {
    fn drop(&mut self) {
        // SAFETY: Started in `new`; waits for a running collector.
        unsafe { bindings::rct_gc_stop() };
        let g = GLOBAL.swap(core::ptr::null_mut(), Relaxed);
        if !g.is_null() {
            // SAFETY: From `KBox::into_raw` in `new`; nothing uses it any more (hooks, /proc
            // and every netns are gone, the collector is stopped).
            drop(unsafe { KBox::from_raw(g) });
        }
    }
}

/// The most buckets a table may have: below [`crate::conntrack::unconfirmed::UNCONFIRMED_NULLS`].
const MAX_BUCKETS: u32 = 1 << 28;

/// Table size and entry maximum for a `hashsize` parameter (0: from the memory size) and
/// the number of RAM pages, as `nf_conntrack_init_start` computes them on 64-bit.
pub(crate) fn table_size(param: u32, ram_pages: u64) -> (u32, u32) {
    if param != 0 {
        // A size was given: "the old value of 8" as max factor. Bucket indices stay below
        // the unconfirmed lists' nulls value.
        let size = param.min(MAX_BUCKETS);
        return (size, size.saturating_mul(8));
    }
    let page = 4096u64;
    let mut size = (ram_pages * page / 16384 / 8) as u32;
    if ram_pages > 4 * (1 << 30) / page {
        size = 262144;
    } else if ram_pages > (1 << 30) / page {
        size = 65536;
    }
    let size = size.max(1024);
    (size, size)
}

/// The collector's entry point, called by its deferred work (`src/glue.c`).
#[no_mangle]
extern "C" fn rct_gc_run() -> core::ffi::c_ulong {
    let Some(g) = global() else {
        return 0;
    };
    let next = g
        .table
        .gc_run(crate::sys::time::jiffies32, crate::sys::time::hz());
    next.into()
}
