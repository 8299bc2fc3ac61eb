// SPDX-License-Identifier: GPL-2.0

//! The module's state in one netns, and the pipeline run on it.
//!
//! Mirrors the per-netns part of `net/netfilter/nf_conntrack_core.c` (`struct
//! nf_conntrack_net`, the statistics, the settings). What a hook does with a packet is
//! [`crate::proto::pipeline`]'s; [`NetCt`] gives it this netns' state, the table and the
//! entries. Hooks reach this through [`crate::sys::netfilter`]; everything here is safe Rust
//! over the wrapper layer.

use crate::conntrack::entry::{Conn, ConnInit, ConnRef, EntryCache};
use crate::conntrack::table::{global, Table};
use crate::conntrack::unconfirmed::Unconfirmed;
use crate::proto::ablate;
use crate::proto::conn::CtInfo;
use crate::proto::conn::{expires_in_secs, should_gc, Zone, NF_CT_DEFAULT_ZONE_DIR};
use crate::proto::expect::{dst_key, Bucket, ExpectError, ExpectStats, ExpectTable, Expectation};
use crate::proto::handoff::{LoopbackRing, SeqAdj};
use crate::proto::helper::HelperId;
use crate::proto::helper_ftp::FtpState;
use crate::proto::l4proto::L4Action;
use crate::proto::l4proto::{self, L4State, Settings};
use crate::proto::pipeline::{
    self, Clock, Conntrack, Entry, Hook, HookCtx, HookRole, Insert, NewEntry, Packet, Pick,
    Verdict, UNCONFIRMED_MAX_AGE_SECS,
};
use crate::proto::proc_expect::{write_expect_line, ExpectSnapshot};
use crate::proto::proc_line::{delta_time_secs, write_line, Snapshot};
use crate::proto::stat::{Stat, StatRow, STAT_COUNT};
use crate::proto::sysctl::{self, SettingsCell, Source, SysctlError};
use crate::proto::tuple::{Dir, Key, Tuple, KEY_LEN, L3};
use crate::sys::netfilter::{Defrag, HookRegistration};
use crate::sys::netns::{Net, NetHandle};
use crate::sys::percpu::{PerCpuBh, PerCpuCounters};
use crate::sys::proc::ProcEntry;
#[cfg(rct_kunit)]
use crate::sys::rcu::RcuGuard;
use crate::sys::rcu::{RcuBox, RcuSection};
use crate::sys::slab::Released;
use crate::sys::sync::{new_spinlock_bh, SpinLockBh};
use crate::sys::sysctl::SysctlRegistration;
use core::fmt;
use core::pin::Pin;
use core::sync::atomic::{
    AtomicBool, AtomicU32,
    Ordering::{Acquire, Relaxed, Release},
};
use kernel::prelude::*;

/// The settings an ablation build reads ([`ablate::DEFAULT_SETTINGS`]).
static DEFAULT_SETTINGS: Settings = Settings::defaults();

/// The clock now.
pub(crate) fn clock_now() -> Clock {
    Clock::at(crate::sys::time::jiffies64(), crate::sys::time::hz())
}

/// The module's state in one netns: what the hooks and `/proc` read.
///
/// # Invariants
///
/// Outlives every entry it owns: dropping it waits until `count` is zero. Entries point at
/// their state, so it does not move while it has any: the module keeps it in a `KBox`.
pub(crate) struct NetState {
    /// The netns, to salt hashes and kick the sweep.
    net: NetHandle,
    stats: PerCpuCounters<STAT_COUNT>,
    /// Entries of this netns, listed or in the table (`cnet->count`).
    count: AtomicU32,
    unconfirmed: Unconfirmed,
    loopback: PerCpuBh<LoopbackRing>,
    /// The settings the sysctls write (`net/rust_conntrack/*`).
    settings: SettingsCell,
    /// Their snapshot, which packets read in place, replaced on every write.
    published: RcuBox<Settings>,
    /// The expectations (`nf_ct_expect_hash`'s part for this netns), under
    /// `nf_conntrack_expect_lock`'s counterpart.
    expect: Pin<KBox<SpinLockBh<NetExpectations>>>,
    /// Their number (`cnet->expect_count`), read without the lock.
    expect_count: AtomicU32,
    /// Entries with a helper, listed or in the table.
    helped: AtomicU32,
    /// Whether new connections get helpers by port (the `helper` sysctl).
    auto_helper: AtomicBool,
    /// Whether new entries count packets and bytes (`acct`).
    acct: AtomicBool,
    /// Whether new entries record their start time (`timestamp`).
    tstamp: AtomicBool,
}

/// A bucket of expectations.
type ExpectBucket = KVec<Option<Expectation<ConnRef>>>;

/// One netns' expectation table.
pub(crate) type NetExpectations = ExpectTable<ConnRef, ExpectBucket, KVec<ExpectBucket>>;

impl Bucket<Expectation<ConnRef>> for ExpectBucket {
    fn slots(&self) -> &[Option<Expectation<ConnRef>>] {
        self.as_slice()
    }

    fn slots_mut(&mut self) -> &mut [Option<Expectation<ConnRef>>] {
        self.as_mut_slice()
    }

    fn grow(&mut self, t: Expectation<ConnRef>) -> bool {
        self.push(Some(t), GFP_ATOMIC).is_ok()
    }
}

impl NetState {
    /// Fresh state for `net`, with zeroed statistics.
    pub(crate) fn new(net: NetHandle) -> Result<Self> {
        let hsize = global().map_or(1, |g| g.expect_hsize).max(1);
        let mut buckets = KVec::with_capacity(hsize as usize, GFP_KERNEL)?;
        for _ in 0..hsize {
            buckets.push(KVec::new(), GFP_KERNEL)?;
        }
        let expect = KBox::pin_init(
            new_spinlock_bh(
                ExpectTable::new(buckets),
                kernel::c_str!("rust_conntrack.expect"),
                kernel::static_lock_class!(),
            ),
            GFP_KERNEL,
        )?;
        Ok(Self {
            net,
            stats: PerCpuCounters::new()?,
            count: AtomicU32::new(0),
            unconfirmed: Unconfirmed::new()?,
            loopback: PerCpuBh::new()?,
            settings: SettingsCell::new(&Settings::defaults()),
            published: RcuBox::new(Settings::defaults())?,
            expect,
            expect_count: AtomicU32::new(0),
            helped: AtomicU32::new(0),
            auto_helper: AtomicBool::new(true),
            acct: AtomicBool::new(false),
            tstamp: AtomicBool::new(false),
        })
    }

    /// Counts what an expectation table operation did, and keeps the lockless count.
    fn expect_done(&self, table: &NetExpectations, stats: &ExpectStats) {
        self.expect_count.store(table.count(), Relaxed);
        for _ in 0..stats.deleted {
            self.count_stat(Stat::ExpectDelete);
        }
        for _ in 0..stats.created {
            self.count_stat(Stat::ExpectCreate);
        }
    }

    /// `nf_ct_remove_expectations`: the master is going.
    pub(crate) fn remove_expectations(&self, master: &Conn) {
        if self.expect_count.load(Relaxed) == 0 {
            return;
        }
        let mut table = self.expect.lock();
        let stats = table.remove_master(master);
        self.expect_done(&table, &stats);
    }

    /// Number of expectations (the lockless count).
    pub(crate) fn expect_count(&self) -> u32 {
        self.expect_count.load(Relaxed)
    }

    /// Buckets of the expectation table.
    pub(crate) fn expect_buckets(&self) -> u32 {
        global().map_or(1, |g| g.expect_hsize)
    }

    /// Writes the `/proc/net/rust_conntrack_expect` lines of `bucket`.
    pub(crate) fn show_expect_bucket(&self, bucket: u32, clock: &Clock, w: &mut impl fmt::Write) {
        if self.expect_count() == 0 {
            return;
        }
        let table = self.expect.lock();
        table.for_each_live_in(bucket as usize, clock.now, |e| {
            let _ = write_expect(w, e, clock);
        });
    }

    #[cfg(rct_kunit)] // Only the KUnit cases use it; the sysctl writes the flag directly.
    /// Turns accounting of new entries on or off (the `acct` sysctl).
    pub(crate) fn set_acct(&self, on: bool) {
        self.acct.store(on, Relaxed);
    }

    #[cfg(rct_kunit)] // Only the KUnit cases use it; the sysctl writes the flag directly.
    /// Turns start times of new entries on or off (the `timestamp` sysctl).
    pub(crate) fn set_tstamp(&self, on: bool) {
        self.tstamp.store(on, Relaxed);
    }

    /// Whether this is the initial netns, where the global sysctls are writable.
    pub(crate) fn is_init_net(&self) -> bool {
        self.net.is_init_net()
    }

    /// Reads sysctl number `index` (see [`sysctl::sysctl`]) in this netns.
    pub(crate) fn sysctl_read(&self, index: usize) -> Result<i64, SysctlError> {
        let ctl = sysctl::sysctl(index).ok_or(SysctlError::Invalid)?;
        Ok(match ctl.source {
            Source::Net(f) => i64::from(self.settings.get(f)),
            Source::Max => global().map_or(0, |g| i64::from(g.max())),
            Source::Count => i64::from(self.entry_count()),
            Source::Buckets => global().map_or(0, |g| i64::from(g.table.size())),
            Source::ExpectMax => global().map_or(0, |g| i64::from(g.expect_max())),
            Source::Acct => i64::from(self.acct.load(Relaxed)),
            Source::Timestamp => i64::from(self.tstamp.load(Relaxed)),
            Source::Helper => i64::from(self.auto_helper.load(Relaxed)),
            // An action: what a write starts from (the file's mode 0200 refuses reads).
            Source::Flush => 0,
        })
    }

    /// Writes `value` (as the kernel's parser read it) to sysctl number `index` in this netns,
    /// after the checks of 6.12's handler.
    pub(crate) fn sysctl_write(&self, index: usize, value: i64) -> Result<(), SysctlError> {
        let ctl = sysctl::sysctl(index).ok_or(SysctlError::Invalid)?;
        let v = ctl.store(value, crate::sys::time::hz(), self.is_init_net())?;
        match ctl.source {
            Source::Net(f) => {
                let old = self.settings.get(f);
                self.settings.set(f, v);
                if self.publish_settings().is_err() {
                    self.settings.set(f, old);
                    return Err(SysctlError::NoMemory);
                }
            }
            Source::Max => {
                if let Some(g) = global() {
                    g.set_max(v.unsigned_abs());
                }
            }
            Source::ExpectMax => {
                if let Some(g) = global() {
                    g.set_expect_max(v.unsigned_abs());
                }
            }
            Source::Acct => self.acct.store(v != 0, Relaxed),
            Source::Timestamp => self.tstamp.store(v != 0, Relaxed),
            Source::Helper => self.auto_helper.store(v != 0, Relaxed),
            // `nf_conntrack_hash_resize`, here in process context; `max` stays as it is.
            Source::Buckets => {
                let g = global().ok_or(SysctlError::Invalid)?;
                g.table.resize(v as u32).map_err(|e| {
                    if e == ENOMEM {
                        SysctlError::NoMemory
                    } else {
                        SysctlError::Invalid
                    }
                })?;
            }
            Source::Count => return Err(SysctlError::ReadOnly),
            Source::Flush => {
                let g = global().ok_or(SysctlError::Invalid)?;
                self.flush_table(&g.table);
            }
        }
        Ok(())
    }

    /// The raw hash of a tuple's key in this netns (`hash_conntrack_raw`, zone 0); the key's
    /// last byte, the direction, is left out.
    pub(crate) fn hash(&self, key: &Key) -> u32 {
        self.net.hash(key.get(..KEY_LEN - 1).unwrap_or(key))
    }

    fn count_stat(&self, stat: Stat) {
        self.stats.inc(stat as usize);
    }

    /// Counts a packet that could not be tracked.
    pub(crate) fn count_invalid(&self) {
        self.count_stat(Stat::Invalid);
    }

    /// Counts a lookup restarted on a nulls mismatch.
    pub(crate) fn count_search_restart(&self) {
        self.count_stat(Stat::SearchRestart);
    }

    /// One CPU's statistics, or `None` if the CPU is not possible.
    pub(crate) fn stats_of_cpu(&self, cpu: u32) -> Option<StatRow> {
        self.stats.read_cpu(cpu)
    }

    #[cfg(rct_kunit)] // Only the KUnit cases use it.
    /// The statistics summed over all CPUs.
    pub(crate) fn stats_sum(&self) -> StatRow {
        self.stats.sum()
    }

    /// Number of entries, unconfirmed ones included (the `entries` statistic).
    pub(crate) fn entry_count(&self) -> u32 {
        self.count.load(Relaxed)
    }

    #[cfg(rct_kunit)] // Only the KUnit cases use it.
    /// Number of entries waiting for their confirm hook.
    pub(crate) fn unconfirmed_count(&self) -> u32 {
        self.unconfirmed.len()
    }

    /// Number of entries waiting for their confirm hook on `cpu`'s list.
    pub(crate) fn unconfirmed_of_cpu(&self, cpu: u32) -> u32 {
        self.unconfirmed.len_of_cpu(cpu).unwrap_or(0)
    }

    #[cfg(rct_kunit)] // Only the KUnit cases use it.
    /// Records in the running CPU's loopback ring.
    pub(crate) fn loopback_records(&self) -> usize {
        self.loopback.with_this_cpu(|r| r.len())
    }

    /// Called by the last reference of an entry of this netns (`helped`: it had a helper):
    /// returns it to the cache.
    pub(crate) fn entry_freed(&self, conn: Released<Conn>, helped: bool) {
        if helped {
            self.helped.fetch_sub(1, Relaxed);
        }
        if let Some(g) = global() {
            g.cache.free(conn);
        }
        // Last: after this the netns state may go away (see `Drop`).
        self.count.fetch_sub(1, Release);
    }

    /// Publishes the settings as the cell holds them now. Writers may race: each publishes
    /// until what it published is what the cell holds, so the last snapshot has every
    /// write. Sleeps.
    fn publish_settings(&self) -> Result {
        loop {
            let s = self.settings.load();
            self.published.replace(s)?;
            if self.settings.load() == s {
                return Ok(());
            }
        }
    }

    /// Handles a packet at one of the module's hooks ([`pipeline::hook`]), on the module's
    /// table, inside the hook's RCU read-side section.
    pub(crate) fn hook<P: Packet + ?Sized>(
        &self,
        role: HookRole,
        pkt: &P,
        ctx: &HookCtx,
        rcu: RcuSection<'_>,
    ) -> Verdict {
        match global() {
            Some(g) => {
                let ct = self.on_rcu(&g.table, &g.cache, g.max(), rcu);
                pipeline::hook(&ct, role, pkt, ctx)
            }
            None => Verdict::Accept,
        }
    }

    /// [`pipeline::hook_idle`] for a hook call about to read the packet with `cookie`.
    pub(crate) fn hook_idle(
        &self,
        role: HookRole,
        hook: Hook,
        cookie: usize,
        out_loopback: impl FnOnce() -> bool,
        rcu: RcuSection<'_>,
    ) -> bool {
        match global() {
            Some(g) => {
                let ct = self.on_rcu(&g.table, &g.cache, g.max(), rcu);
                pipeline::hook_idle(&ct, role, hook, cookie, out_loopback)
            }
            // As `hook`: nothing to do.
            None => true,
        }
    }

    /// This netns' state on `table`, with entries from `cache` and at most `max` of them
    /// (0: no limit), inside the read-side section `rcu`.
    pub(crate) fn on_rcu<'a>(
        &'a self,
        table: &'a Table,
        cache: &'a EntryCache,
        max: u32,
        rcu: RcuSection<'a>,
    ) -> NetCt<'a> {
        NetCt {
            net: self,
            table,
            cache,
            max,
            rcu: Rcu::Section(rcu),
        }
    }

    /// As [`Self::on_rcu`], in a read-side section of its own.
    #[cfg(rct_kunit)] // The KUnit cases run the hooks from process context.
    pub(crate) fn on<'a>(&'a self, table: &'a Table, cache: &'a EntryCache, max: u32) -> NetCt<'a> {
        NetCt {
            net: self,
            table,
            cache,
            max,
            rcu: Rcu::Guard(RcuGuard::new()),
        }
    }

    /// The sweep (a deferred work of the netns, about once a second while entries wait):
    /// reaps unconfirmed entries older than [`UNCONFIRMED_MAX_AGE_SECS`]. Returns whether
    /// any still wait.
    pub(crate) fn sweep_unconfirmed(&self, clock: &Clock) -> bool {
        let max_age = UNCONFIRMED_MAX_AGE_SECS.saturating_mul(clock.hz);
        let reaped = self
            .unconfirmed
            .reap(|c| clock.now.wrapping_sub(c.created()) > max_age);
        self.count_reaped(reaped);
        // Dead expectations, and those of masters that will never be confirmed (reaped while
        // unconfirmed, or dying).
        if self.expect_count() != 0 {
            let mut table = self.expect.lock();
            let stats = table.sweep(clock.now, |m| {
                m.is_dying() || (!m.is_confirmed() && clock.now.wrapping_sub(m.created()) > max_age)
            });
            self.expect_done(&table, &stats);
        }
        self.unconfirmed.len() != 0 || self.expect_count() != 0
    }

    fn count_reaped(&self, n: u32) {
        for _ in 0..n {
            self.count_stat(Stat::UnconfirmedReaped);
        }
    }

    /// Writes the `/proc/net/rust_conntrack` lines of this netns' entries in `bucket`.
    pub(crate) fn show_bucket(
        &self,
        table: &Table,
        bucket: u32,
        clock: &Clock,
        w: &mut impl fmt::Write,
    ) {
        table.for_each_in_bucket(bucket, self, |conn| {
            let _ = write_conn(w, conn, clock);
        });
    }

    /// `conntrack -F` for this netns (the `flush` sysctl): deletes its confirmed entries and
    /// its expectations. New entries waiting for their confirm hook are left to it, as
    /// nf_conntrack's flush leaves its unconfirmed ones. Process context (it sleeps).
    pub(crate) fn flush_table(&self, table: &Table) {
        table.kill_all(self);
        // Expectations hold their masters: all go, whatever is left.
        let mut exp = self.expect.lock();
        let stats = exp.sweep(0, |_| true);
        self.expect_done(&exp, &stats);
    }

    /// Removes every entry of this netns from `table` and its unconfirmed lists, and waits
    /// until the last reference to each is gone.
    pub(crate) fn flush(&self, table: &Table) {
        self.unconfirmed.drain();
        self.flush_table(table);
        let mut waited = 0u32;
        while self.count.load(Acquire) != 0 {
            // Someone (the collector, a lookup) still holds a reference for a moment.
            crate::sys::time::sleep_jiffies(1);
            waited = waited.wrapping_add(1);
            if waited == 10_000 {
                pr_warn!(
                    "netns exit: still waiting for {} entries\n",
                    self.entry_count()
                );
            }
        }
    }
}

impl Drop for NetState {
    fn drop(&mut self) {
        // INVARIANT: no entry of ours outlives us.
        if let Some(g) = global() {
            self.flush(&g.table);
        }
    }
}

/// One netns' state on a table: what the pipeline runs on.
pub(crate) struct NetCt<'a> {
    net: &'a NetState,
    table: &'a Table,
    cache: &'a EntryCache,
    /// `nf_conntrack_max`: entries allowed per netns (0: no limit).
    max: u32,
    /// The read-side section the settings are read in.
    rcu: Rcu<'a>,
}

/// The RCU read-side section of a [`NetCt`]: a hook's, or one of its own.
enum Rcu<'a> {
    Section(RcuSection<'a>),
    #[cfg(rct_kunit)]
    Guard(RcuGuard),
}

impl Rcu<'_> {
    fn section(&self) -> RcuSection<'_> {
        match self {
            Rcu::Section(s) => *s,
            #[cfg(rct_kunit)]
            Rcu::Guard(g) => g.section(),
        }
    }
}

#[cfg(rct_kunit)] // The KUnit cases run the hooks on tables of their own.
impl NetCt<'_> {
    /// `nf_conntrack_in` ([`pipeline::track`]).
    pub(crate) fn track<P: Packet + ?Sized>(&self, pkt: &P, ctx: &HookCtx) -> Verdict {
        pipeline::track(self, pkt, ctx)
    }

    /// `nf_confirm` ([`pipeline::confirm`]).
    pub(crate) fn confirm<P: Packet + ?Sized>(&self, pkt: &P, ctx: &HookCtx) -> Verdict {
        pipeline::confirm(self, pkt, ctx)
    }

    /// The helper hook ([`crate::proto::helper::help`]).
    pub(crate) fn help<P: Packet + ?Sized>(&self, pkt: &P, ctx: &HookCtx) -> Verdict {
        crate::proto::helper::help(self, pkt, ctx)
    }
}

impl Entry for Conn {
    fn status(&self) -> u32 {
        Conn::status(self)
    }

    fn set_status(&self, bits: u32) -> bool {
        Conn::set_status(self, bits)
    }

    fn timeout(&self) -> u32 {
        Conn::timeout(self)
    }

    fn set_timeout(&self, t: u32) {
        Conn::set_timeout(self, t)
    }

    fn tuple(&self, dir: Dir) -> Option<Tuple> {
        self.tuplehash(dir).tuple()
    }

    fn cookie(&self) -> usize {
        Conn::cookie(self)
    }

    fn created(&self) -> u32 {
        Conn::created(self)
    }

    fn mark(&self) -> u32 {
        Conn::mark(self)
    }
}

impl Conntrack for NetCt<'_> {
    type Entry = Conn;
    type Ref = ConnRef;

    fn settings(&self) -> &Settings {
        if ablate::DEFAULT_SETTINGS {
            return &DEFAULT_SETTINGS;
        }
        // In place: a sysctl write publishes a new snapshot and frees this one only after
        // the hook's section ends.
        self.net.published.get(self.rcu.section())
    }

    fn count(&self, stat: Stat, n: u32) {
        for _ in 0..n {
            self.net.count_stat(stat);
        }
    }

    fn hash(&self, key: &Key) -> u32 {
        self.net.hash(key)
    }

    fn find(&self, key: &Key, hash: u32, now: u32) -> Option<(ConnRef, Dir)> {
        self.table
            .find(self.net, key, hash, now, self.rcu.section())
    }

    #[inline]
    fn prefetch_chain(&self, hash: u32) {
        self.table.prefetch(hash, self.rcu.section());
    }

    fn kill(&self, entry: &ConnRef) -> bool {
        self.table.kill(entry)
    }

    fn with_l4<R>(&self, entry: &ConnRef, f: impl FnOnce(&mut L4State) -> R) -> R {
        entry.with_l4(f)
    }

    /// `__nf_conntrack_alloc`'s limit: above `max`, early drop evicts the unassured entries
    /// of the first of 8 buckets that has any (each counted in `early_drop`); when it finds
    /// none, the oldest unconfirmed entry makes room, as an entry waiting for its confirm
    /// hook is not a connection yet, and most likely its packet is gone. When nothing can go,
    /// the collector is asked to evict what it may on its next scans.
    fn reserve(&self, hash: u32, now: u32) -> bool {
        let n = self.net.count.fetch_add(1, Relaxed).wrapping_add(1);
        if self.max != 0 && n > self.max {
            let drops = self.table.early_drop(self.net, hash, now);
            if drops != 0 {
                self.count(Stat::EarlyDrop, drops);
            } else if let Some(old) = self.net.unconfirmed.take_oldest() {
                drop(old);
                self.net.count_stat(Stat::UnconfirmedReaped);
            } else {
                self.table.gc_early_drop();
                self.unreserve();
                return false;
            }
        }
        true
    }

    fn unreserve(&self) {
        self.net.count.fetch_sub(1, Relaxed);
    }

    fn alloc(&self, new: NewEntry<ConnRef>) -> Option<ConnRef> {
        let helped = new.helper.is_some();
        let entry = self.cache.alloc(ConnInit {
            orig: &new.orig,
            reply: &new.reply,
            hash: new.hash,
            timeout: new.timeout,
            now: new.now,
            cookie: new.cookie,
            owner: self.net,
            l4: new.l4,
            status: new.status,
            mark: new.mark,
            master: new.master,
            helper: new.helper,
            acct: self.net.acct.load(Relaxed),
            tstamp: self.net.tstamp.load(Relaxed),
        })?;
        if helped {
            self.net.helped.fetch_add(1, Relaxed);
        }
        Some(entry)
    }

    fn list_unconfirmed(&self, entry: ConnRef, stale: impl FnMut(&Conn) -> bool) -> u32 {
        self.net.unconfirmed.add(entry, stale)
    }

    fn may_hold_unconfirmed(&self, cookie: usize) -> bool {
        self.net.unconfirmed.may_hold(cookie)
    }

    fn take_unconfirmed(&self, pick: impl FnMut(&Conn) -> Pick) -> (Option<ConnRef>, u32) {
        self.net.unconfirmed.take(pick)
    }

    fn set_reply(&self, entry: &ConnRef, reply: &Key, hash: u32) {
        entry.set_reply(reply, hash);
    }

    fn insert(&self, entry: ConnRef, now: u32, allow_clash: bool) -> Insert {
        let chain_limit = crate::conntrack::table::MIN_CHAINLEN
            + crate::sys::random::below(crate::conntrack::table::MAX_CHAINLEN);
        // `__nf_conntrack_confirm` stamps before it inserts; nobody reads the stamp of an
        // entry that is not in the table.
        Conn::stamp_start(&entry, crate::sys::time::real_ns);
        self.table
            .insert(entry, self.net, now, allow_clash, chain_limit)
    }

    /// Where the tracker called `nf_ct_refresh_acct` or `nf_ct_kill_acct`: the packet is
    /// counted in its direction.
    fn l4_action(&self, entry: Option<&ConnRef>, ctinfo: CtInfo, len: usize, a: &L4Action) {
        if let Some(e) = entry {
            if a.refresh.is_some() || a.kill {
                Conn::account(e, ctinfo.dir(), len);
            }
        }
    }

    fn table_full(&self) {
        crate::sys::log::warn_table_full();
    }

    fn kick_sweep(&self, delay: u32) {
        self.net.net.kick_sweep(delay);
    }

    fn with_loopback<R>(&self, f: impl FnOnce(&mut LoopbackRing) -> R) -> R {
        self.net.loopback.with_this_cpu(f)
    }

    fn expect_count(&self) -> u32 {
        self.net.expect_count()
    }

    fn take_expectation(&self, t: &Tuple, now: u32) -> Option<ConnRef> {
        let hash = self.net.net.hash(&dst_key(t));
        let mut table = self.net.expect.lock();
        let (master, stats) = table.find_take(t, hash, now);
        self.net.expect_done(&table, &stats);
        master
    }

    fn expect_related(&self, exp: Expectation<ConnRef>, clock: &Clock) -> Result<(), ExpectError> {
        let policy = exp.helper.policy(exp.class).ok_or(ExpectError::Full)?;
        let hash = self.net.net.hash(&dst_key(&exp.tuple));
        let max = global().map_or(0, |g| g.expect_max());
        let mut table = self.net.expect.lock();
        let (res, stats) = table.insert(exp, hash, policy, max, clock.now, clock.hz);
        self.net.expect_done(&table, &stats);
        drop(table);
        if stats.table_full {
            crate::sys::log::warn_expect_table_full();
        }
        if res.is_ok() {
            // The sweep unlinks it once dead.
            self.net.net.kick_sweep(clock.hz);
        }
        res
    }

    fn assign_helper(&self, t: &Tuple) -> Option<HelperId> {
        if !self.net.auto_helper.load(Relaxed) {
            return None;
        }
        global()?.helper_ports.assign(t)
    }

    fn helped(&self) -> u32 {
        self.net.helped.load(Relaxed)
    }

    fn helper_of(&self, entry: &ConnRef) -> Option<HelperId> {
        Conn::helper(entry)
    }

    fn with_ftp<R>(&self, entry: &ConnRef, f: impl FnOnce(&mut FtpState) -> R) -> Option<R> {
        Conn::with_ftp(entry, f)
    }

    fn seqadj(&self, entry: &ConnRef) -> Option<[SeqAdj; 2]> {
        Conn::seqadj(entry)
    }

    fn set_seqadj(&self, entry: &ConnRef, adj: [SeqAdj; 2]) {
        Conn::set_seqadj(entry, adj);
    }

    fn peek_unconfirmed(&self, cookie: usize) -> Option<ConnRef> {
        self.net.unconfirmed.peek(cookie)
    }

    fn ftp_loose(&self) -> bool {
        crate::sys::params::ftp_loose()
    }

    fn helper_log(&self, helper: HelperId, msg: &str) {
        crate::sys::log::helper_log(&helper, msg);
    }
}

/// One `/proc/net/nf_conntrack_expect` line for `e`.
fn write_expect(w: &mut impl fmt::Write, e: &Expectation<ConnRef>, clock: &Clock) -> fmt::Result {
    write_expect_line(
        w,
        &ExpectSnapshot {
            tuple: e.tuple,
            secs: e.secs_left(clock.now, clock.hz),
            flags: e.flags,
            helper: Some(&e.helper),
            policy: e.helper.policy(e.class).map_or("", |p| p.name),
        },
    )
}

/// One `/proc/net/nf_conntrack` line for `conn`, unless it has expired.
fn write_conn(w: &mut impl fmt::Write, conn: &ConnRef, clock: &Clock) -> fmt::Result {
    let status = conn.status();
    if should_gc(status, conn.timeout(), clock.now) {
        return Ok(());
    }
    let (Some(original), Some(reply)) = (
        conn.tuplehash(Dir::Original).tuple(),
        conn.tuplehash(Dir::Reply).tuple(),
    ) else {
        return Ok(());
    };
    write_line(
        w,
        &Snapshot {
            original,
            reply,
            status,
            secs: expires_in_secs(conn.timeout(), clock.now, clock.hz),
            l4: conn.with_l4(|st| l4proto::print(original.proto, st)),
            acct: Conn::counters(conn),
            mark: conn.mark(),
            zone: Zone {
                id: conn.zone(),
                dir: NF_CT_DEFAULT_ZONE_DIR,
            },
            delta_time: Conn::start(conn)
                .map(|start| delta_time_secs(crate::sys::time::real_ns(), start)),
            use_count: conn.refcount(),
        },
    )
}

/// What a netns registers, in drop order: hooks first, so that nothing runs while the
/// `/proc` files and defragmentation go away; the sysctls next.
pub(crate) struct NetRegistrations {
    _hooks: HookRegistration,
    _sysctl: SysctlRegistration,
    _proc_table: ProcEntry,
    _proc_expect: ProcEntry,
    _proc_stat: ProcEntry,
    _defrag_ipv6: Defrag,
    _defrag_ipv4: Defrag,
}

impl NetRegistrations {
    /// Sets up `net`; on failure, whatever was set up is undone.
    pub(crate) fn new(net: &Net) -> Result<Self> {
        let defrag_ipv4 = Defrag::enable(net, L3::Ipv4)?;
        let defrag_ipv6 = Defrag::enable(net, L3::Ipv6)?;
        let proc_stat = ProcEntry::stat(net)?;
        let proc_table = ProcEntry::table(net)?;
        let sysctl = SysctlRegistration::new(net)?;
        let proc_expect = ProcEntry::expect(net)?;
        let hooks = HookRegistration::new(net)?;
        Ok(Self {
            _hooks: hooks,
            _sysctl: sysctl,
            _proc_table: proc_table,
            _proc_expect: proc_expect,
            _proc_stat: proc_stat,
            _defrag_ipv6: defrag_ipv6,
            _defrag_ipv4: defrag_ipv4,
        })
    }
}
