// SPDX-License-Identifier: GPL-2.0

//! Expectations: connections a helper predicts, and the table they wait in.
//!
//! C source: [`net/netfilter/nf_conntrack_expect.c`](srctree/net/netfilter/nf_conntrack_expect.c)
//! (`nf_ct_expect_init`, `nf_ct_find_expectation`, `__nf_ct_expect_check`,
//! `evict_oldest_expect`, `nf_ct_expect_insert`, `nf_ct_remove_expectations`,
//! `nf_ct_expectation_gc`).
//!
//! 6.12 keeps one global hash of expectations under one global lock, each netns counting its
//! own against `nf_ct_expect_max`, and each master listing its own. [`ExpectTable`] is one
//! netns' part of that hash, with the same rules; the caller holds its lock (the module: a
//! spinlock per netns, `nf_conntrack_expect_lock`'s role) and hashes the destination
//! ([`dst_key`]). A master's expectations are found by scanning: a netns holds at most
//! `expect_max` of them, and masters look for theirs only when they die or expect more.
//!
//! As in 6.12.117, expectations have no timer: one is dead once its time has passed
//! ([`Expectation::is_expired`]), is not shown nor matched from then on, and is unlinked (and
//! counted in `expect_delete`) by the next lookup of its bucket, the next expectation its
//! master makes, or the collector ([`ExpectTable::sweep`]).

use crate::proto::conn::{IPS_CONFIRMED, IPS_DYING};
use crate::proto::helper::HelperId;
use crate::proto::pipeline::Entry;
use crate::proto::tuple::{Addr, Tuple, L3, L4};
use core::ops::{Deref, DerefMut};

/// `NF_CT_EXPECT_PERMANENT`: the expectation stays after a connection matched it.
pub(crate) const NF_CT_EXPECT_PERMANENT: u32 = 0x1;
/// `NF_CT_EXPECT_INACTIVE`: not matched until activated.
pub(crate) const NF_CT_EXPECT_INACTIVE: u32 = 0x2;
/// `NF_CT_EXPECT_USERSPACE`: created through ctnetlink.
pub(crate) const NF_CT_EXPECT_USERSPACE: u32 = 0x4;
/// `NF_CT_EXPECT_DEAD`: being removed (kernel-internal, never printed).
pub(crate) const NF_CT_EXPECT_DEAD: u32 = 0x8;

/// `nf_ct_exp_is_expired`: dead, or `timeout` (jiffies) not after `now` (`nfct_time_stamp`).
/// `exp_seq_show` prints nothing for these.
pub(crate) fn expect_is_expired(flags: u32, timeout: u32, now: u32) -> bool {
    flags & NF_CT_EXPECT_DEAD != 0 || timeout.wrapping_sub(now) as i32 <= 0
}

/// `(__s32)(expect->timeout - nfct_time_stamp) / HZ`: seconds left, truncated toward zero.
/// Negative if the clock passed `timeout` since [`expect_is_expired`] was asked.
pub(crate) fn expect_secs(timeout: u32, now: u32, hz: u32) -> i32 {
    let left = timeout.wrapping_sub(now) as i32;
    // HZ is a small positive int; 0 cannot happen but must not panic.
    i32::try_from(hz)
        .ok()
        .and_then(|hz| left.checked_div(hz))
        .unwrap_or(0)
}

/// `NF_CT_EXPECT_CLASS_DEFAULT`.
pub(crate) const NF_CT_EXPECT_CLASS_DEFAULT: u8 = 0;
/// `NF_CT_MAX_EXPECT_CLASSES`.
pub(crate) const NF_CT_MAX_EXPECT_CLASSES: usize = 4;

/// `struct nf_conntrack_expect_policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ExpectPolicy {
    /// Expectations of this class one master may have at once (0: no limit).
    pub(crate) max_expected: u32,
    /// Seconds an expectation waits.
    pub(crate) timeout: u32,
    /// Shown after the helper's name in the expectation listing, if not empty.
    pub(crate) name: &'static str,
}

/// The part of the source a helper leaves free (`struct nf_conntrack_tuple_mask`, as
/// `nf_ct_expect_init` fills it: each part all ones or all zeroes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mask {
    /// The source address must match.
    pub(crate) src_addr: bool,
    /// The source port must match.
    pub(crate) src_port: bool,
}

/// `struct nf_conntrack_expect`: a connection `master`'s helper predicts.
#[derive(Clone, Debug)]
pub(crate) struct Expectation<R> {
    /// The expected original tuple; parts the mask leaves free are zero.
    pub(crate) tuple: Tuple,
    /// What of the source must match.
    pub(crate) mask: Mask,
    /// The connection that expects it; counted, so it lives while this does.
    pub(crate) master: R,
    /// The helper of the master, for the listing.
    pub(crate) helper: HelperId,
    /// The policy class.
    pub(crate) class: u8,
    /// `NF_CT_EXPECT_*` flags.
    pub(crate) flags: u32,
    /// `nfct_time_stamp` at which it expires.
    pub(crate) timeout: u32,
    /// Order of creation in the table: the oldest of a master's goes first.
    pub(crate) serial: u64,
}

/// `nf_ct_expect_init` for a transport with ports: from `src` (any source port when `sport`
/// is `None`) to `dst`:`dport`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn expectation<R>(
    master: R,
    helper: HelperId,
    class: u8,
    l3: L3,
    proto: u8,
    src: Option<Addr>,
    dst: Addr,
    sport: Option<u16>,
    dport: u16,
) -> Expectation<R> {
    Expectation {
        tuple: Tuple {
            l3,
            proto,
            src: src.unwrap_or(Addr([0; 16])),
            dst,
            l4: L4::Ports {
                src: sport.unwrap_or(0),
                dst: dport,
            },
        },
        mask: Mask {
            src_addr: src.is_some(),
            src_port: sport.is_some(),
        },
        master,
        helper,
        class,
        flags: 0,
        timeout: 0,
        serial: 0,
    }
}

/// The ports of a tuple, or `None` for transports without (which no helper expects).
fn ports(t: &Tuple) -> Option<(u16, u16)> {
    match t.l4 {
        L4::Ports { src, dst } => Some((src, dst)),
        _ => None,
    }
}

/// `nf_ct_tuple_mask_cmp(t, tuple, mask)`.
fn mask_cmp(t: &Tuple, tuple: &Tuple, mask: Mask) -> bool {
    let (Some((ts, td)), Some((es, ed))) = (ports(t), ports(tuple)) else {
        return false;
    };
    t.l3 == tuple.l3
        && t.proto == tuple.proto
        && t.dst == tuple.dst
        && td == ed
        && (!mask.src_addr || t.src == tuple.src)
        && (!mask.src_port || ts == es)
}

impl<R> Expectation<R> {
    /// `nf_ct_exp_is_expired`.
    pub(crate) fn is_expired(&self, now: u32) -> bool {
        expect_is_expired(self.flags, self.timeout, now)
    }

    /// `nf_ct_exp_equal`: whether a new connection with original tuple `t` is this one.
    pub(crate) fn matches(&self, t: &Tuple) -> bool {
        mask_cmp(t, &self.tuple, self.mask)
    }

    /// `expect_matches`: the same tuple under the same mask.
    fn same_as(&self, other: &Expectation<R>) -> bool {
        self.tuple == other.tuple && self.mask == other.mask
    }

    /// `expect_clash`: the part both masks cover is equal, so one connection could match both.
    fn clashes(&self, other: &Expectation<R>) -> bool {
        let both = Mask {
            src_addr: self.mask.src_addr && other.mask.src_addr,
            src_port: self.mask.src_port && other.mask.src_port,
        };
        mask_cmp(&self.tuple, &other.tuple, both)
    }

    /// Seconds left ([`expect_secs`]).
    pub(crate) fn secs_left(&self, now: u32, hz: u32) -> i32 {
        expect_secs(self.timeout, now, hz)
    }
}

/// What an expectation's hash covers (`nf_ct_expect_dst_hash`): the destination, the ports'
/// destination, the families and the protocol. The caller hashes it with its netns' salt.
pub(crate) fn dst_key(t: &Tuple) -> [u8; 20] {
    let mut k = [0u8; 20];
    let dport = ports(t).map_or(0, |(_, d)| d);
    let head = t.dst.0;
    for (d, s) in k.iter_mut().zip(head.iter()) {
        *d = *s;
    }
    let [p0, p1] = dport.to_be_bytes();
    // `NFPROTO_*` numbers fit a byte.
    let tail = [p0, p1, t.l3.num() as u8, t.proto];
    for (d, s) in k.iter_mut().skip(16).zip(tail.iter()) {
        *d = *s;
    }
    k
}

/// `nf_ct_expect_hsize` and `nf_ct_expect_max` for a connection table of `htable_size`
/// buckets (`nf_conntrack_expect_init`).
pub(crate) fn expect_sizes(htable_size: u32) -> (u32, u32) {
    let hsize = (htable_size / 256).max(1);
    (hsize, hsize.saturating_mul(4))
}

/// A bucket of the table: slots, some empty, that it may grow (GFP_ATOMIC in the module).
pub(crate) trait Bucket<T> {
    /// The slots.
    fn slots(&self) -> &[Option<T>];
    /// The slots, to change.
    fn slots_mut(&mut self) -> &mut [Option<T>];
    /// Adds a slot holding `t`; false (and `t` dropped) if there is no memory for it.
    fn grow(&mut self, t: T) -> bool;
}

/// Why an expectation was not made (`nf_ct_expect_related`'s errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExpectError {
    /// `-EALREADY`: the master expects the same connection in another class.
    Already,
    /// `-EBUSY`: another master expects a connection this one would match too.
    Busy,
    /// `-EMFILE`: the class is full and nothing could be evicted, or the netns holds
    /// `expect_max` expectations (`expectation table full`).
    Full,
    /// `-ENOMEM`.
    NoMem,
}

/// What a table operation did besides its result: expectations unlinked
/// (`expect_delete`) and created (`expect_create`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ExpectStats {
    /// Unlinked.
    pub(crate) deleted: u32,
    /// Created.
    pub(crate) created: u32,
    /// The table was full (`expectation table full`, to be logged).
    pub(crate) table_full: bool,
}

/// One netns' expectations, in buckets by [`dst_key`]'s hash.
///
/// # Invariants
///
/// `count` is the number of occupied slots.
pub(crate) struct ExpectTable<R, B, O> {
    buckets: O,
    count: u32,
    serial: u64,
    _r: core::marker::PhantomData<(R, B)>,
}

impl<R, B, O> ExpectTable<R, B, O>
where
    R: Deref + Clone,
    R::Target: Entry,
    B: Bucket<Expectation<R>>,
    O: DerefMut<Target = [B]>,
{
    /// A table over `buckets` (`nf_ct_expect_hsize` of them, at least one).
    pub(crate) fn new(buckets: O) -> Self {
        Self {
            buckets,
            count: 0,
            serial: 0,
            _r: core::marker::PhantomData,
        }
    }

    /// Expectations in the table, dead ones not yet unlinked included (`expect_count`).
    pub(crate) fn count(&self) -> u32 {
        self.count
    }

    /// The bucket for `hash` (`reciprocal_scale`).
    fn index(&self, hash: u32) -> usize {
        ((u64::from(hash) * self.buckets.len() as u64) >> 32) as usize
    }

    /// Unlinks slot `s`'s expectation (`nf_ct_unlink_expect`).
    fn unlink(count: &mut u32, stats: &mut ExpectStats, s: &mut Option<Expectation<R>>) {
        if s.take().is_some() {
            *count = count.saturating_sub(1);
            stats.deleted += 1;
        }
    }

    /// `nf_ct_find_expectation`: the master of the live, active expectation a new connection
    /// with original tuple `t` (destination hash `hash`) matches. Dead expectations of the
    /// bucket are unlinked on the way. Unless permanent, the expectation is unlinked. An
    /// expectation whose master is not confirmed yet, or dying, matches nothing and stays.
    pub(crate) fn find_take(&mut self, t: &Tuple, hash: u32, now: u32) -> (Option<R>, ExpectStats) {
        let mut stats = ExpectStats::default();
        if self.count == 0 {
            return (None, stats);
        }
        let i = self.index(hash);
        let count = &mut self.count;
        let Some(bucket) = self.buckets.get_mut(i) else {
            return (None, stats);
        };
        let mut found = None;
        for s in bucket.slots_mut().iter_mut() {
            let Some(e) = s else { continue };
            if e.is_expired(now) {
                Self::unlink(count, &mut stats, s);
                continue;
            }
            if e.flags & NF_CT_EXPECT_INACTIVE == 0 && e.matches(t) {
                found = Some(s);
                break;
            }
        }
        let Some(s) = found else {
            return (None, stats);
        };
        let Some(e) = s.as_ref() else {
            return (None, stats);
        };
        // "If master is not in hash table yet (ie. packet hasn't left this machine yet), how
        // can other end know about expected?"
        let status = e.master.status();
        if status & IPS_CONFIRMED == 0 || status & IPS_DYING != 0 {
            return (None, stats);
        }
        let master = e.master.clone();
        if e.flags & NF_CT_EXPECT_PERMANENT == 0 {
            Self::unlink(count, &mut stats, s);
        }
        (Some(master), stats)
    }

    /// `nf_ct_expect_related`: adds `exp` (destination hash `hash`) with its class'
    /// `policy`, the netns holding at most `max`; its timeout starts now. As
    /// `__nf_ct_expect_check`: the master's own equal expectation is replaced, one another
    /// master's expectation clashes with refuses it, a full class evicts the master's oldest.
    pub(crate) fn insert(
        &mut self,
        mut exp: Expectation<R>,
        hash: u32,
        policy: &ExpectPolicy,
        max: u32,
        now: u32,
        hz: u32,
    ) -> (Result<(), ExpectError>, ExpectStats) {
        let mut stats = ExpectStats::default();
        if self.buckets.is_empty() {
            return (Err(ExpectError::NoMem), stats);
        }
        let i = self.index(hash);
        let count = &mut self.count;
        let Some(bucket) = self.buckets.get_mut(i) else {
            return (Err(ExpectError::NoMem), stats);
        };
        for s in bucket.slots_mut().iter_mut() {
            let Some(e) = s else { continue };
            if e.is_expired(now) {
                Self::unlink(count, &mut stats, s);
                continue;
            }
            if same_master(&e.master, &exp.master) && e.same_as(&exp) {
                if e.class != exp.class {
                    return (Err(ExpectError::Already), stats);
                }
                Self::unlink(count, &mut stats, s);
                break;
            } else if e.clashes(&exp) {
                return (Err(ExpectError::Busy), stats);
            }
        }
        if policy.max_expected != 0
            && self.expecting(&exp.master, exp.class, now) >= policy.max_expected
        {
            self.evict_oldest(&exp.master, exp.class, policy, now, &mut stats);
        }
        if self.count >= max {
            stats.table_full = true;
            return (Err(ExpectError::Full), stats);
        }
        // `nf_ct_expect_insert`: the timeout counts from the expectation's allocation, which
        // is now.
        exp.timeout = now.wrapping_add(policy.timeout.saturating_mul(hz));
        self.serial = self.serial.wrapping_add(1);
        exp.serial = self.serial;
        let i = self.index(hash);
        let Some(bucket) = self.buckets.get_mut(i) else {
            return (Err(ExpectError::NoMem), stats);
        };
        let placed = match bucket.slots_mut().iter_mut().find(|s| s.is_none()) {
            Some(free) => {
                *free = Some(exp);
                true
            }
            None => bucket.grow(exp),
        };
        if !placed {
            return (Err(ExpectError::NoMem), stats);
        }
        self.count += 1;
        stats.created += 1;
        (Ok(()), stats)
    }

    /// `master_help->expecting[class]`: the master's expectations of `class`, dead ones not
    /// yet unlinked included.
    fn expecting(&self, master: &R, class: u8, _now: u32) -> u32 {
        let mut n = 0u32;
        for b in self.buckets.iter() {
            for e in b.slots().iter().flatten() {
                if e.class == class && same_master(&e.master, master) {
                    n = n.saturating_add(1);
                }
            }
        }
        n
    }

    /// `evict_oldest_expect`: unlinks the master's dead expectations, then, if the class is
    /// still full, its oldest of the class.
    fn evict_oldest(
        &mut self,
        master: &R,
        class: u8,
        policy: &ExpectPolicy,
        now: u32,
        stats: &mut ExpectStats,
    ) {
        let count = &mut self.count;
        let mut oldest: Option<(usize, usize, u64)> = None;
        let mut live = 0u32;
        for (bi, b) in self.buckets.iter_mut().enumerate() {
            for (si, s) in b.slots_mut().iter_mut().enumerate() {
                let Some(e) = s else { continue };
                if !same_master(&e.master, master) {
                    continue;
                }
                if e.is_expired(now) {
                    Self::unlink(count, stats, s);
                    continue;
                }
                if e.class == class {
                    live += 1;
                    if oldest.map_or(true, |(_, _, serial)| e.serial < serial) {
                        oldest = Some((bi, si, e.serial));
                    }
                }
            }
        }
        if let Some((bi, si, _)) = oldest {
            if live >= policy.max_expected {
                if let Some(s) = self
                    .buckets
                    .get_mut(bi)
                    .and_then(|b| b.slots_mut().get_mut(si))
                {
                    Self::unlink(&mut self.count, stats, s);
                }
            }
        }
    }

    /// `nf_ct_remove_expectations`: unlinks every expectation of `master`.
    pub(crate) fn remove_master(&mut self, master: &R::Target) -> ExpectStats {
        self.remove_where(|e| core::ptr::eq(&*e.master, master))
    }

    /// The collector's pass (`nf_ct_expectation_gc` for every master at once): unlinks dead
    /// expectations and those whose master `gone` says will never see them used.
    pub(crate) fn sweep(&mut self, now: u32, gone: impl Fn(&R::Target) -> bool) -> ExpectStats {
        self.remove_where(|e| e.is_expired(now) || gone(&e.master))
    }

    fn remove_where(&mut self, mut f: impl FnMut(&Expectation<R>) -> bool) -> ExpectStats {
        let mut stats = ExpectStats::default();
        if self.count == 0 {
            return stats;
        }
        let count = &mut self.count;
        for b in self.buckets.iter_mut() {
            for s in b.slots_mut().iter_mut() {
                if s.as_ref().is_some_and(&mut f) {
                    Self::unlink(count, &mut stats, s);
                }
            }
        }
        stats
    }

    /// Calls `f` for every live expectation of bucket `bucket`.
    pub(crate) fn for_each_live_in(
        &self,
        bucket: usize,
        now: u32,
        mut f: impl FnMut(&Expectation<R>),
    ) {
        if let Some(b) = self.buckets.get(bucket) {
            for e in b.slots().iter().flatten() {
                if !e.is_expired(now) {
                    f(e);
                }
            }
        }
    }

    /// Calls `f` for every live expectation, in bucket order, as the listing shows them.
    pub(crate) fn for_each_live(&self, now: u32, mut f: impl FnMut(&Expectation<R>)) {
        for b in self.buckets.iter() {
            for e in b.slots().iter().flatten() {
                if !e.is_expired(now) {
                    f(e);
                }
            }
        }
    }
}

/// `master_matches`: the same connection.
fn same_master<R: Deref>(a: &R, b: &R) -> bool {
    core::ptr::eq(&**a, &**b)
}
