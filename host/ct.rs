// SPDX-License-Identifier: GPL-2.0

//! A table for the pipeline on the host: [`HostCt`] implements
//! [`crate::proto::pipeline::Conntrack`] with plain collections, so that host tests (and the
//! fuzzer) run the module's own `track` and `confirm` (`src/proto/pipeline.rs`) on real
//! packets and look at the entries they leave. The module runs the same functions on its
//! hash table.

use crate::proto::conn::{confirmed_timeout, is_expired, CtInfo, IPS_CONFIRMED, IPS_DYING};
use crate::proto::expect::{dst_key, Bucket, ExpectError, ExpectStats, ExpectTable, Expectation};
use crate::proto::handoff::{LoopbackRing, NfView, SeqAdj};
use crate::proto::helper::{HelperId, HelperPorts};
use crate::proto::helper_ftp::FtpState;
use crate::proto::l4proto::{L4Action, L4Small, L4State, Settings};
use crate::proto::pipeline::{
    self, Clock, Conntrack, Entry, Hook, HookCtx, Insert, NewEntry, Packet, Pick, Verdict,
};
use crate::proto::stat::{Stat, STAT_COUNT};
use crate::proto::tuple::{Dir, Key, PacketBytes, ParseError, Tuple, L3};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// An entry.
#[derive(Debug)]
pub(crate) struct HostEntry {
    tuples: [Cell<Option<Tuple>>; 2],
    status: Cell<u32>,
    timeout: Cell<u32>,
    cookie: usize,
    created: u32,
    l4: RefCell<L4State>,
    mark: Cell<u32>,
    /// `ct->master`.
    pub(crate) master: Option<Rc<HostEntry>>,
    /// The helper watching it.
    pub(crate) helper: Option<HelperId>,
    ftp: RefCell<FtpState>,
    seqadj: Cell<Option<[SeqAdj; 2]>>,
}

impl HostEntry {
    /// The tracker's state.
    pub(crate) fn l4(&self) -> L4State {
        *self.l4.borrow()
    }

    /// Sets `ct->mark`, as a rule would.
    pub(crate) fn set_mark(&self, mark: u32) {
        self.mark.set(mark);
    }
}

impl Entry for HostEntry {
    fn status(&self) -> u32 {
        self.status.get()
    }

    fn set_status(&self, bits: u32) -> bool {
        let old = self.status.get();
        self.status.set(old | bits);
        old & bits == bits
    }

    fn timeout(&self) -> u32 {
        self.timeout.get()
    }

    fn set_timeout(&self, t: u32) {
        self.timeout.set(t);
    }

    fn tuple(&self, dir: Dir) -> Option<Tuple> {
        self.tuples[dir as usize].get()
    }

    fn cookie(&self) -> usize {
        self.cookie
    }

    fn created(&self) -> u32 {
        self.created
    }

    fn mark(&self) -> u32 {
        self.mark.get()
    }
}

/// A bucket of the host's expectation table.
pub(crate) type HostBucket = Vec<Option<Expectation<Rc<HostEntry>>>>;

impl Bucket<Expectation<Rc<HostEntry>>> for HostBucket {
    fn slots(&self) -> &[Option<Expectation<Rc<HostEntry>>>] {
        self
    }

    fn slots_mut(&mut self) -> &mut [Option<Expectation<Rc<HostEntry>>>] {
        self
    }

    fn grow(&mut self, t: Expectation<Rc<HostEntry>>) -> bool {
        self.push(Some(t));
        true
    }
}

/// The host's expectation table: 4 buckets, so that collisions happen.
pub(crate) struct HostExpect(pub(crate) ExpectTable<Rc<HostEntry>, HostBucket, Vec<HostBucket>>);

impl Default for HostExpect {
    fn default() -> Self {
        HostExpect(ExpectTable::new(vec![Vec::new(); 4]))
    }
}

/// What the pipeline told the table about one packet (`Conntrack::l4_action`).
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    /// The entry it was about (`None`: a refused first packet).
    pub(crate) entry: Option<Rc<HostEntry>>,
    /// The entry's status bits before the action was applied.
    pub(crate) status: u32,
    /// The packet's state.
    pub(crate) ctinfo: CtInfo,
    /// The tracker's action.
    pub(crate) action: L4Action,
}

/// A table of confirmed entries, unconfirmed ones, statistics and a record of the trackers'
/// actions.
#[derive(Default)]
pub(crate) struct HostCt {
    /// The protocol settings.
    pub(crate) settings: Settings,
    /// Entries allowed (0: no limit).
    pub(crate) max: u32,
    /// The table, oldest first.
    pub(crate) table: RefCell<Vec<Rc<HostEntry>>>,
    /// Unconfirmed entries, oldest first.
    pub(crate) unconfirmed: RefCell<Vec<Rc<HostEntry>>>,
    /// Statistics.
    pub(crate) stats: RefCell<[u32; STAT_COUNT]>,
    /// Every tracker action, in order.
    pub(crate) seen: RefCell<Vec<Seen>>,
    /// Entries killed.
    pub(crate) kills: Cell<u32>,
    /// Times the table said it was full.
    pub(crate) full: Cell<u32>,
    loopback: RefCell<LoopbackRing>,
    /// Expectations.
    pub(crate) expect: RefCell<HostExpect>,
    /// `nf_ct_expect_max` (0: 4 per bucket, as 6.12's default).
    pub(crate) expect_max: u32,
    /// The ports helpers are assigned by (`None`: the defaults).
    pub(crate) helper_ports: Option<HelperPorts>,
    /// Automatic helper assignment off (the `helper` sysctl at 0).
    pub(crate) no_auto_helper: bool,
    /// `nf_conntrack_ftp`'s `loose`.
    pub(crate) loose: bool,
    /// What helpers logged, in order.
    pub(crate) helper_logs: RefCell<Vec<String>>,
}

impl HostCt {
    /// An empty table with `settings`.
    pub(crate) fn with(settings: Settings) -> Self {
        HostCt {
            settings,
            ..Default::default()
        }
    }

    /// A statistic.
    pub(crate) fn stat(&self, stat: Stat) -> u32 {
        self.stats.borrow()[stat as usize]
    }

    fn entries(&self) -> u32 {
        (self.table.borrow().len() + self.unconfirmed.borrow().len()) as u32
    }
}

impl Conntrack for HostCt {
    type Entry = HostEntry;
    type Ref = Rc<HostEntry>;

    fn settings(&self) -> &Settings {
        &self.settings
    }

    fn count(&self, stat: Stat, n: u32) {
        self.stats.borrow_mut()[stat as usize] += n;
    }

    fn hash(&self, key: &Key) -> u32 {
        // FNV-1a: the host table does not hash, but the pipeline hands hashes around.
        key.iter().fold(0x811c_9dc5u32, |h, &b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        })
    }

    fn find(&self, key: &Key, _hash: u32, now: u32) -> Option<(Rc<HostEntry>, Dir)> {
        // Expired entries met on the way are reaped, as `nf_ct_gc_expired` does.
        self.table
            .borrow_mut()
            .retain(|e| !is_expired(e.timeout(), now));
        self.table.borrow().iter().find_map(|e| {
            [Dir::Original, Dir::Reply]
                .into_iter()
                .find(|&d| e.tuple(d).is_some_and(|t| t.key() == *key))
                .map(|d| (e.clone(), d))
        })
    }

    fn kill(&self, entry: &Rc<HostEntry>) -> bool {
        if entry.set_status(IPS_DYING) {
            return false;
        }
        self.table.borrow_mut().retain(|e| !Rc::ptr_eq(e, entry));
        self.kills.set(self.kills.get() + 1);
        if entry.helper.is_some() {
            let stats = self.expect.borrow_mut().0.remove_master(entry);
            self.expect_stats(&stats);
        }
        true
    }

    fn with_l4<R>(&self, entry: &Rc<HostEntry>, f: impl FnOnce(&mut L4State) -> R) -> R {
        let mut st = entry.l4.borrow_mut();
        let small = L4Small::try_from(*st).is_ok();
        let r = f(&mut st);
        // The module keeps small states in entries with no room for the others: a tracker
        // must never change an entry's kind of state.
        assert_eq!(
            L4Small::try_from(*st).is_ok(),
            small,
            "state changed kind: {st:?}"
        );
        r
    }

    fn reserve(&self, _hash: u32, _now: u32) -> bool {
        if self.max == 0 || self.entries() < self.max {
            return true;
        }
        let victim = self
            .table
            .borrow()
            .iter()
            .find(|e| e.status() & crate::proto::conn::IPS_ASSURED == 0)
            .cloned();
        if let Some(v) = victim {
            self.kill(&v);
            self.count(Stat::EarlyDrop, 1);
            return true;
        }
        let mut unconfirmed = self.unconfirmed.borrow_mut();
        if unconfirmed.is_empty() {
            return false;
        }
        unconfirmed.remove(0);
        self.count(Stat::UnconfirmedReaped, 1);
        true
    }

    fn unreserve(&self) {}

    fn alloc(&self, new: NewEntry<Rc<HostEntry>>) -> Option<Rc<HostEntry>> {
        Some(Rc::new(HostEntry {
            tuples: [
                Cell::new(Tuple::from_key(&new.orig)),
                Cell::new(Tuple::from_key(&new.reply)),
            ],
            status: Cell::new(new.status),
            timeout: Cell::new(new.timeout),
            cookie: new.cookie,
            created: new.now,
            l4: RefCell::new(new.l4),
            mark: Cell::new(new.mark),
            master: new.master,
            helper: new.helper,
            ftp: RefCell::new(FtpState::default()),
            seqadj: Cell::new(None),
        }))
    }

    fn list_unconfirmed(
        &self,
        entry: Rc<HostEntry>,
        mut stale: impl FnMut(&HostEntry) -> bool,
    ) -> u32 {
        let mut list = self.unconfirmed.borrow_mut();
        let before = list.len();
        list.retain(|e| !stale(e));
        let reaped = (before - list.len()) as u32;
        list.push(entry);
        reaped
    }

    fn may_hold_unconfirmed(&self, cookie: usize) -> bool {
        self.unconfirmed.borrow().iter().any(|e| e.cookie == cookie)
    }

    fn take_unconfirmed(
        &self,
        mut pick: impl FnMut(&HostEntry) -> Pick,
    ) -> (Option<Rc<HostEntry>>, u32) {
        let mut list = self.unconfirmed.borrow_mut();
        let mut reaped = 0;
        // Newest first, as the module's lists.
        let mut i = list.len();
        while i > 0 {
            i -= 1;
            match pick(&list[i]) {
                Pick::Skip => {}
                Pick::Take => return (Some(list.remove(i)), reaped),
                Pick::Reap => {
                    list.remove(i);
                    reaped += 1;
                }
            }
        }
        (None, reaped)
    }

    fn set_reply(&self, entry: &Rc<HostEntry>, reply: &Key, _hash: u32) {
        entry.tuples[Dir::Reply as usize].set(Tuple::from_key(reply));
    }

    fn insert(&self, entry: Rc<HostEntry>, now: u32, allow_clash: bool) -> Insert {
        if entry.status() & IPS_DYING != 0 {
            return Insert::Failed;
        }
        let mine = [entry.tuple(Dir::Original), entry.tuple(Dir::Reply)];
        let clash = self
            .table
            .borrow()
            .iter()
            .find(|e| {
                let theirs = [e.tuple(Dir::Original), e.tuple(Dir::Reply)];
                mine.iter().any(|t| theirs.contains(t))
            })
            .cloned();
        if let Some(other) = clash {
            let theirs = [other.tuple(Dir::Original), other.tuple(Dir::Reply)];
            let same = theirs == mine || theirs == [mine[1], mine[0]];
            return if allow_clash && same {
                Insert::Merged
            } else {
                Insert::Failed
            };
        }
        entry.set_timeout(confirmed_timeout(entry.timeout(), now));
        entry.set_status(IPS_CONFIRMED);
        self.table.borrow_mut().push(entry);
        Insert::Inserted
    }

    fn table_full(&self) {
        self.full.set(self.full.get() + 1);
    }

    fn kick_sweep(&self, _delay: u32) {}

    fn with_loopback<R>(&self, f: impl FnOnce(&mut LoopbackRing) -> R) -> R {
        f(&mut self.loopback.borrow_mut())
    }

    fn l4_action(&self, entry: Option<&Rc<HostEntry>>, ctinfo: CtInfo, _len: usize, a: &L4Action) {
        self.seen.borrow_mut().push(Seen {
            entry: entry.cloned(),
            status: entry.map_or(0, |e| e.status()),
            ctinfo,
            action: *a,
        });
    }

    fn expect_count(&self) -> u32 {
        self.expect.borrow().0.count()
    }

    fn take_expectation(&self, t: &Tuple, now: u32) -> Option<Rc<HostEntry>> {
        let hash = self.expect_hash(t);
        let (m, stats) = self.expect.borrow_mut().0.find_take(t, hash, now);
        self.expect_stats(&stats);
        m
    }

    fn expect_related(
        &self,
        exp: Expectation<Rc<HostEntry>>,
        clock: &Clock,
    ) -> Result<(), ExpectError> {
        let policy = exp.helper.policy(exp.class).ok_or(ExpectError::Full)?;
        let hash = self.expect_hash(&exp.tuple);
        let max = if self.expect_max == 0 {
            16
        } else {
            self.expect_max
        };
        let (res, stats) = self
            .expect
            .borrow_mut()
            .0
            .insert(exp, hash, policy, max, clock.now, clock.hz);
        self.expect_stats(&stats);
        res
    }

    fn assign_helper(&self, t: &Tuple) -> Option<HelperId> {
        if self.no_auto_helper {
            return None;
        }
        self.helper_ports
            .unwrap_or(HelperPorts::defaults())
            .assign(t)
    }

    fn helped(&self) -> u32 {
        let count = |v: &Vec<Rc<HostEntry>>| v.iter().filter(|e| e.helper.is_some()).count();
        (count(&self.table.borrow()) + count(&self.unconfirmed.borrow())) as u32
    }

    fn helper_of(&self, entry: &Rc<HostEntry>) -> Option<HelperId> {
        entry.helper
    }

    fn with_ftp<R>(&self, entry: &Rc<HostEntry>, f: impl FnOnce(&mut FtpState) -> R) -> Option<R> {
        entry.helper?;
        Some(f(&mut entry.ftp.borrow_mut()))
    }

    fn seqadj(&self, entry: &Rc<HostEntry>) -> Option<[SeqAdj; 2]> {
        entry.seqadj.get()
    }

    fn set_seqadj(&self, entry: &Rc<HostEntry>, adj: [SeqAdj; 2]) {
        if entry.helper.is_some() {
            entry.seqadj.set(Some(adj));
        }
    }

    fn peek_unconfirmed(&self, cookie: usize) -> Option<Rc<HostEntry>> {
        self.unconfirmed
            .borrow()
            .iter()
            .rev()
            .find(|e| e.cookie == cookie)
            .cloned()
    }

    fn ftp_loose(&self) -> bool {
        self.loose
    }

    fn helper_log(&self, helper: HelperId, msg: &str) {
        self.helper_logs
            .borrow_mut()
            .push(format!("nf_ct_{helper}: dropping packet: {msg}"));
    }
}

/// `HZ` of the host tests' expectations.
pub(crate) const HOST_HZ: u32 = 100;

impl HostCt {
    fn expect_hash(&self, t: &Tuple) -> u32 {
        dst_key(t).iter().fold(0x811c_9dc5u32, |h, &b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        })
    }

    fn expect_stats(&self, s: &ExpectStats) {
        self.count(Stat::ExpectDelete, s.deleted);
        self.count(Stat::ExpectCreate, s.created);
    }

    /// The collector's pass over the expectations at `now`.
    pub(crate) fn sweep_expectations(&self, now: u32) {
        let stats = self
            .expect
            .borrow_mut()
            .0
            .sweep(now, |m| m.status() & IPS_DYING != 0);
        self.expect_stats(&stats);
    }

    /// The live expectations at `now`: (tuple, master, seconds left).
    pub(crate) fn expectations(&self, now: u32) -> Vec<(Tuple, Rc<HostEntry>, i32)> {
        let mut v = Vec::new();
        self.expect.borrow().0.for_each_live(now, |e| {
            v.push((e.tuple, e.master.clone(), e.secs_left(now, HOST_HZ)))
        });
        v
    }
}

/// A packet on the host: its bytes (network header first) and what nf_conntrack would say
/// of it.
pub(crate) struct Pkt<'a> {
    /// The bytes.
    pub(crate) bytes: &'a [u8],
    /// nf_conntrack's entry for it, if any.
    pub(crate) nf: Option<NfView>,
}

impl PacketBytes for Pkt<'_> {
    fn len(&self) -> usize {
        self.bytes.len()
    }

    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), ParseError> {
        self.bytes.read(offset, buf)
    }
}

impl Packet for Pkt<'_> {
    fn l4_checksum_ok(
        &self,
        _hook: Hook,
        l3: L3,
        dataoff: usize,
        proto: u8,
        len: Option<usize>,
    ) -> bool {
        l4_csum_ok(self.bytes, l3 == L3::Ipv6, dataoff, proto, len)
    }

    fn nf_view(&self) -> Option<NfView> {
        self.nf
    }

    fn tail(&self, off: usize) -> Option<&[u8]> {
        self.bytes.get(off..)
    }

    fn nf_seqadj(&self) -> Option<[crate::proto::handoff::SeqAdj; 2]> {
        None
    }

    fn nf_nat_helper(&self) -> bool {
        false
    }
}

/// One's complement sum of `data` as big-endian 16-bit words, added to `sum`.
fn sum16(mut sum: u64, data: &[u8]) -> u64 {
    for pair in data.chunks(2) {
        let hi = u64::from(pair[0]) << 8;
        let lo = pair.get(1).copied().map_or(0, u64::from);
        sum += hi | lo;
    }
    sum
}

/// Whether the transport checksum of an IP packet (network header at 0, IPv6 if `v6`) is
/// right, over `len` bytes from `dataoff` (all of them if `None`), as `nf_checksum` and
/// `nf_checksum_partial` verify it: ICMP has no pseudo header, every other protocol one with
/// the addresses, the protocol and the transport length.
pub(crate) fn l4_csum_ok(
    p: &[u8],
    v6: bool,
    dataoff: usize,
    proto: u8,
    len: Option<usize>,
) -> bool {
    let Some(l4) = p.get(dataoff..) else {
        return false;
    };
    let covered = match len {
        Some(n) => match l4.get(..n) {
            Some(c) => c,
            None => return false,
        },
        None => l4,
    };
    let pseudo = if proto == 1 && !v6 {
        0
    } else {
        let addrs = if v6 { p.get(8..40) } else { p.get(12..20) };
        let Some(addrs) = addrs else {
            return false;
        };
        sum16(0, addrs) + u64::from(proto) + l4.len() as u64
    };
    let mut sum = sum16(pseudo, covered);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}

/// A hook context for `hook` at `now` (`HZ` `hz`), the packet's skb at address `cookie`.
pub(crate) fn ctx(hook: Hook, l3: L3, cookie: usize, now: u32, hz: u32) -> HookCtx {
    HookCtx {
        hook,
        l3,
        nhoff: 0,
        cookie,
        in_loopback: false,
        out_loopback: false,
        clock: Clock {
            now,
            jiffies: u64::from(now),
            hz,
        },
    }
}

/// One hook call as the module's netfilter glue makes it: [`pipeline::hook_idle`] first,
/// then, unless idle, [`pipeline::hook`].
pub(crate) fn run_hook<P: Packet + ?Sized>(
    ct: &HostCt,
    role: pipeline::HookRole,
    pkt: &P,
    ctx: &HookCtx,
) -> Verdict {
    if role != pipeline::HookRole::Track
        && pipeline::hook_idle(ct, role, ctx.hook, ctx.cookie, || ctx.out_loopback)
    {
        return Verdict::Accept;
    }
    pipeline::hook(ct, role, pkt, ctx)
}

/// A packet received: tracked at PRE_ROUTING, confirmed at LOCAL_IN.
pub(crate) fn receive(ct: &HostCt, bytes: &[u8], l3: L3, now: u32, hz: u32) -> (Verdict, Verdict) {
    let p = Pkt { bytes, nf: None };
    let cookie = bytes.as_ptr() as usize;
    let v1 = run_hook(
        ct,
        pipeline::HookRole::Track,
        &p,
        &ctx(Hook::PreRouting, l3, cookie, now, hz),
    );
    let v2 = run_hook(
        ct,
        pipeline::HookRole::Helper,
        &p,
        &ctx(Hook::LocalIn, l3, cookie, now, hz),
    );
    if v2 == Verdict::Drop {
        return (v1, v2);
    }
    let v2 = run_hook(
        ct,
        pipeline::HookRole::Confirm,
        &p,
        &ctx(Hook::LocalIn, l3, cookie, now, hz),
    );
    (v1, v2)
}
