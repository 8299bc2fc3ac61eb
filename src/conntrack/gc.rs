// SPDX-License-Identifier: GPL-2.0

//! The collector: reaps expired entries from the table, a few buckets at a time, as
//! `gc_worker` of `net/netfilter/nf_conntrack_core.c` does. Its deferred work runs on the
//! module-wide state ([`crate::sys::work::Published::start_periodic`]).

use crate::conntrack::entry::Conn;
use crate::conntrack::table::{Global, Table};
use crate::proto::l4proto;
use crate::proto::tuple::Dir;
use crate::sys::hlist_nulls::Walk;
use crate::sys::rcu::RcuGuard;
use core::ops::ControlFlow;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};

/// State of the collector between runs (`struct conntrack_gc_work`). Only the collector's
/// work item touches it, one run at a time, but for `early_drop`, which a full table sets.
pub(crate) struct GcState {
    /// A new entry found the table full and nothing to evict: until a whole scan is done,
    /// the collector evicts what early drop may while a netns is 95 % full.
    early_drop: AtomicBool,
    next_bucket: AtomicU32,
    avg_timeout: AtomicU32,
    count: AtomicU32,
    start_time: AtomicU32,
}

impl GcState {
    pub(crate) const fn new() -> Self {
        Self {
            early_drop: AtomicBool::new(false),
            next_bucket: AtomicU32::new(0),
            avg_timeout: AtomicU32::new(0),
            count: AtomicU32::new(0),
            start_time: AtomicU32::new(0),
        }
    }

    fn run(&self, table: &Table, now_fn: impl Fn() -> u32, hz: u32, max: u32) -> u32 {
        let next = self.scan(table, now_fn, hz, max);
        if next != 0 {
            self.early_drop.store(false, Relaxed);
        }
        next
    }

    fn scan(&self, table: &Table, now_fn: impl Fn() -> u32, hz: u32, max: u32) -> u32 {
        let max95 = if self.early_drop.load(Relaxed) {
            max / 100 * 95
        } else {
            0
        };
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

        loop {
            let rcu = RcuGuard::new();
            // The array now: after a resize, the scan goes on in the new one from the same
            // index (entries may be seen twice or missed this round), and ends at its size.
            let view = table.view(rcu.section());
            if i >= view.size() {
                break;
            }
            let now = now_fn();
            let walk = Table::walk(&view, i, |conn, _| {
                if expired > expired_max {
                    return ControlFlow::Break(());
                }
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
                    .max(i64::from(interval_min))
                    .min(i64::from(interval_clamp));
                count += 1;
                // `count` is at least 1; checked so that the collector has no panic path.
                next_run += (left - next_run).checked_div(count).unwrap_or(0);
                if max95 != 0 && !conn.is_dying() && gc_early_drop(table, conn, max95) {
                    expired += 1;
                }
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
            if (now_fn().wrapping_sub(end_time) as i32) > 0 && i < table.size() {
                self.avg_timeout
                    .store(next_run.clamp(0, i64::from(u32::MAX)) as u32, Relaxed);
                self.count
                    .store(count.clamp(0, i64::from(u32::MAX)) as u32, Relaxed);
                self.next_bucket.store(i, Relaxed);
                return 0;
            }
        }
        self.next_bucket.store(0, Relaxed);
        // As `clamp`, without its panic should `hz` make the bounds cross.
        let next_run = next_run
            .max(i64::from(interval_min))
            .min(i64::from(interval_max));
        let delta = i64::from((now_fn().wrapping_sub(self.start_time.load(Relaxed)) as i32).max(1));
        if next_run > delta {
            (next_run - delta) as u32
        } else {
            1
        }
    }
}

/// The collector under pressure: kills `conn` if its netns holds at least `max95` entries
/// and early drop may take it (`gc_worker_can_early_drop`: unassured, or assured but its
/// tracker lets it go, as TCP does for closing connections).
fn gc_early_drop(table: &Table, conn: &Conn, max95: u32) -> bool {
    let Some(c) = conn.try_get() else {
        return false;
    };
    let full = Conn::with_owner(&c, |owner| owner.is_some_and(|o| o.entry_count() >= max95));
    if !full || !c.is_confirmed() || c.is_dying() {
        return false;
    }
    let proto = c.tuplehash(Dir::Original).tuple().map_or(0, |t| t.proto);
    let may = !c.is_assured() || c.with_l4(|st| l4proto::can_early_drop(proto, st));
    may && table.kill(&c)
}

impl Table {
    /// One run of the collector (`gc_worker`): reaps expired entries bucket by bucket for at
    /// most `GC_SCAN_MAX_DURATION`, and returns the jiffies until the next run, adapted to
    /// the timeouts it saw as 6.12 does. After [`Table::gc_early_drop`], and until a whole
    /// scan ends, it also evicts what early drop may from namespaces holding 95 % of `max`.
    pub(crate) fn gc_run(&self, now_fn: impl Fn() -> u32, hz: u32, max: u32) -> u32 {
        self.gc.run(self, now_fn, hz, max)
    }

    /// A new entry found the table full and early drop found nothing to evict
    /// (`conntrack_gc_work.early_drop = true`).
    pub(crate) fn gc_early_drop(&self) {
        self.gc.early_drop.store(true, Relaxed);
    }
}

/// The collector's deferred work (`gc_work`), on the module-wide table.
impl crate::sys::work::Periodic for Global {
    fn run(&self) -> u32 {
        self.table.gc_run(
            crate::sys::time::jiffies32,
            crate::sys::time::hz(),
            self.max(),
        )
    }
}
