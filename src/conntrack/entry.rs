// SPDX-License-Identifier: GPL-2.0

//! Connection entries (`struct nf_conn`) and references to them.
//!
//! An entry holds one [`TupleHash`] per direction and a chain link per direction, linking it
//! into the hash chain of that direction's tuple, as `nf_conn.tuplehash[]` does. Entries come
//! from a `SLAB_TYPESAFE_BY_RCU` cache ([`TypesafeCache`]): a lockless reader may meet an
//! entry that was freed and reused meanwhile, so every field it reads is an atomic (a racy
//! read is a valid, maybe stale, value) and readers re-check the key after taking a
//! reference, as `__nf_conntrack_find_get` does.

use crate::conntrack::net::NetState;
use crate::proto::conn::{IPS_ASSURED, IPS_CONFIRMED, IPS_DYING};
use crate::proto::handoff::SeqAdj;
use crate::proto::helper::HelperId;
use crate::proto::helper_ftp::FtpState;
use crate::proto::l4proto::{L4Small, L4State};
use crate::proto::proc_line::Counter as ProcCounter;
use crate::proto::tuple::{Dir, Key, Tuple, KEY_LEN};
use crate::sys::hlist_nulls::Link;
use crate::sys::netns::StateRef;
use crate::sys::refcount::{ARef, Refcount};
use crate::sys::slab::{CtorToken, ExtSlot, Released, Typesafe, TypesafeCache, Width};
use crate::sys::sync::{new_spinlock_bh, SpinLockBh};
use core::pin::Pin;
use core::sync::atomic::Ordering::{Acquire, Relaxed};
use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicUsize};
use kernel::prelude::*;

const KEY_WORDS: usize = KEY_LEN / 8;
const _: () = assert!(KEY_LEN % 8 == 0);

/// The last key word without its last byte, which holds the direction; comparisons and
/// hashing leave it out.
const LAST_WORD_MASK: u64 = u64::from_ne_bytes([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0]);

/// An 8-byte chunk of a key as a word.
fn word_of(chunk: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(chunk);
    u64::from_ne_bytes(b)
}

/// One direction of an entry: its tuple's key. The key's last byte is the index of this
/// `TupleHash` in its entry's `tuplehash` array.
#[repr(C)]
pub(crate) struct TupleHash {
    key: [AtomicU64; KEY_WORDS],
}

impl TupleHash {
    const fn new() -> Self {
        Self {
            key: [const { AtomicU64::new(0) }; KEY_WORDS],
        }
    }

    // The direction byte is set and cleared in registers, never by a byte store into a key
    // that is then read by words: such a load waits until the byte store has retired.

    fn store_key(&self, key: &Key, dir: Dir) {
        let dir_word = u64::from_ne_bytes([0, 0, 0, 0, 0, 0, 0, dir as u8]);
        for (i, (word, chunk)) in self.key.iter().zip(key.chunks_exact(8)).enumerate() {
            let mut w = word_of(chunk);
            if i == KEY_WORDS - 1 {
                w = (w & LAST_WORD_MASK) | dir_word;
            }
            word.store(w, Relaxed);
        }
    }

    /// Whether this direction's tuple is `key` (the direction byte aside). Word by word,
    /// stopping at the first difference: most nodes of a chain differ in the first word.
    fn key_is(&self, key: &Key) -> bool {
        self.key
            .iter()
            .zip(key.chunks_exact(8))
            .enumerate()
            .all(|(i, (word, chunk))| {
                let mask = if i == KEY_WORDS - 1 {
                    LAST_WORD_MASK
                } else {
                    u64::MAX
                };
                (word.load(Relaxed) ^ word_of(chunk)) & mask == 0
            })
    }

    /// This direction's key as [`Tuple::key`] makes it (direction byte cleared).
    pub(crate) fn load_key_for_compare(&self) -> Key {
        let mut k = [0u8; KEY_LEN];
        for (i, (chunk, word)) in k.chunks_exact_mut(8).zip(self.key.iter()).enumerate() {
            let mut w = word.load(Relaxed);
            if i == KEY_WORDS - 1 {
                w &= LAST_WORD_MASK;
            }
            chunk.copy_from_slice(&w.to_ne_bytes());
        }
        k
    }

    /// This direction's tuple.
    pub(crate) fn tuple(&self) -> Option<Tuple> {
        Tuple::from_key(&self.load_key_for_compare())
    }
}

/// A tracked connection, `struct nf_conn`.
///
/// Lives in [`EntryCache`]. While `refcount` is non-zero the entry is owned by its holders:
/// the table (or an unconfirmed list) holds one reference, and every [`ConnRef`] one more.
/// Fields are written only by the creator before the entry is published, or by holders of a
/// reference (timeouts, status bits, protocol state).
///
/// Entries whose tracker keeps a large state (TCP, SCTP, DCCP) are wide objects of the cache:
/// the state is in their tail ([`WideL4`]) and `l4` stays unused; the others keep theirs in
/// `l4`, and the entry is a quarter smaller than `nf_conn`.
#[pin_data]
#[repr(C)]
pub(crate) struct Conn {
    /// The chain links of the original and the reply direction (`tuplehash[].hnnode`).
    links: [Link; 2],
    tuplehash: [TupleHash; 2],
    refcount: Refcount,
    /// `IPS_*` bits.
    status: AtomicU32,
    /// Jiffies: relative while unconfirmed, absolute once confirmed (as `ct->timeout`).
    timeout: AtomicU32,
    mark: AtomicU32,
    /// Raw hashes of the original and reply tuples.
    hash: [AtomicU32; 2],
    /// Jiffies at creation, to reap entries that never got confirmed.
    created: AtomicU32,
    zone: AtomicU16,
    /// Whether the entry is a wide one, with a [`WideL4`].
    width: Width,
    /// Address of the skb that created the entry, until confirmed (see `conntrack`).
    cookie: AtomicUsize,
    owner: StateRef,
    /// What only some entries have (`ct->ext`): see [`Ext`].
    ext: ExtSlot<Ext>,
    /// The tracker's state (`ct->proto`) under the entry's lock (`ct->lock`), if it is a
    /// small one.
    #[pin]
    l4: SpinLockBh<L4Small>,
}

/// What a wide entry has after its [`Conn`]: a large tracker state (TCP's, SCTP's, DCCP's)
/// under its own lock, which takes the place of `Conn::l4`'s.
pub(crate) type WideL4 = SpinLockBh<L4State>;

/// What only some entries have, allocated for them alone (`nf_ct_ext`): the counters
/// (`nf_conn_acct`) and start time (`nf_conn_tstamp`) of entries made while `acct` or
/// `timestamp` was on, and the helper part. Its parts are chosen when the entry is made.
pub(crate) struct Ext {
    /// Packets and bytes of the original and reply directions.
    acct: Option<[Counter; 2]>,
    /// `tstamp->start`: wall-clock nanoseconds at confirmation, 0 before.
    tstamp: Option<AtomicU64>,
    /// The helper part, for masters and expected connections.
    help: Option<Pin<KBox<Help>>>,
}

/// One direction's counters (`struct nf_conn_counter`).
struct Counter {
    packets: AtomicU64,
    bytes: AtomicU64,
}

impl Counter {
    const fn new() -> Self {
        Self {
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }
}

/// An entry's helper part (`nf_conn_help`, and `ct->master`): set when the entry is made,
/// never changed until it is freed.
#[pin_data]
pub(crate) struct Help {
    /// `ct->master`: counted, released with the entry (as `nf_ct_put(ct->master)`).
    master: Option<ConnRef>,
    /// `nfct_help(ct)->helper`.
    helper: Option<HelperId>,
    /// The FTP helper's state (`nf_ct_ftp_master`, in `nfct_help(ct)->data`), under its own
    /// lock as 6.12 keeps it under `nf_ftp_lock`, and nf_conntrack's sequence adjustment as
    /// last seen.
    #[pin]
    state: SpinLockBh<HelpState>,
}

/// What a helper's master keeps under its lock.
#[derive(Default)]
struct HelpState {
    ftp: FtpState,
    seqadj: Option<[SeqAdj; 2]>,
}

impl Help {
    /// A new helper part (GFP_ATOMIC), `None` if there is no memory.
    fn new(master: Option<ConnRef>, helper: Option<HelperId>) -> Option<Pin<KBox<Self>>> {
        KBox::pin_init(
            pin_init!(Help {
                master,
                helper,
                state <- new_spinlock_bh(
                    HelpState::default(),
                    kernel::c_str!("rust_conntrack.ftp"),
                    kernel::static_lock_class!()
                ),
            }),
            GFP_ATOMIC,
        )
        .ok()
    }
}

impl Ext {
    /// A new extension with the parts `init` asks for (GFP_ATOMIC); `Ok(None)` if it needs
    /// none, `Err` if there is no memory.
    fn new(init: &mut ConnInit<'_>) -> Result<Option<Pin<KBox<Self>>>, ()> {
        let help = if init.master.is_some() || init.helper.is_some() {
            Some(Help::new(init.master.take(), init.helper).ok_or(())?)
        } else {
            None
        };
        if help.is_none() && !init.acct && !init.tstamp {
            return Ok(None);
        }
        let ext = Ext {
            acct: init.acct.then(|| [Counter::new(), Counter::new()]),
            tstamp: init.tstamp.then(|| AtomicU64::new(0)),
            help,
        };
        KBox::pin(ext, GFP_ATOMIC).map(Some).map_err(|_| ())
    }
}

crate::typesafe_object!(Conn, refcount: refcount, links: links, width: width);

impl Typesafe for Conn {
    const NAME: &'static CStr = kernel::c_str!("rust_conntrack");
    const WIDE_NAME: &'static CStr = kernel::c_str!("rust_conntrack_wide");

    type Tail = WideL4;

    fn init(token: &CtorToken) -> impl PinInit<Self> + '_ {
        pin_init!(Conn {
            links: [Link::new(), Link::new()],
            tuplehash: [TupleHash::new(), TupleHash::new()],
            refcount: Refcount::new_in_ctor(token),
            status: AtomicU32::new(0),
            timeout: AtomicU32::new(0),
            mark: AtomicU32::new(0),
            hash: [AtomicU32::new(0), AtomicU32::new(0)],
            created: AtomicU32::new(0),
            zone: AtomicU16::new(0),
            width: Width::new_in_ctor(token),
            cookie: AtomicUsize::new(0),
            owner: StateRef::none(),
            ext: ExtSlot::new(),
            l4 <- new_spinlock_bh(L4Small::None, kernel::c_str!("rust_conntrack.entry"), kernel::static_lock_class!()),
        })
    }

    fn init_tail() -> impl PinInit<WideL4> {
        new_spinlock_bh(
            L4State::None,
            kernel::c_str!("rust_conntrack.entry_wide"),
            kernel::static_lock_class!(),
        )
    }

    /// The last reference is gone (`nf_ct_put`): back to the cache, through its netns state,
    /// which counts it until then.
    fn release(conn: Released<Self>) {
        // Dropping it may release the master too (its last reference).
        let ext = ExtSlot::take(&conn, |c| &c.ext);
        let helped = ext
            .as_ref()
            .and_then(|e| e.help.as_ref())
            .is_some_and(|h| h.helper.is_some());
        drop(ext);
        StateRef::release_with(
            conn,
            |c| &c.owner,
            |conn, owner| {
                if let Some(owner) = owner {
                    owner.entry_freed(conn, helped);
                }
            },
        )
    }
}

/// What an entry starts with.
pub(crate) struct ConnInit<'a> {
    pub(crate) orig: &'a Key,
    pub(crate) reply: &'a Key,
    pub(crate) hash: [u32; 2],
    pub(crate) timeout: u32,
    pub(crate) now: u32,
    pub(crate) cookie: usize,
    pub(crate) owner: &'a NetState,
    /// The tracker's state after the first packet.
    pub(crate) l4: L4State,
    /// `IPS_*` bits it starts with.
    pub(crate) status: u32,
    /// `ct->mark`.
    pub(crate) mark: u32,
    /// The master, for an expected connection.
    pub(crate) master: Option<ConnRef>,
    /// The helper, for a master.
    pub(crate) helper: Option<HelperId>,
    /// Count packets and bytes (`acct` on).
    pub(crate) acct: bool,
    /// Record the start time (`timestamp` on).
    pub(crate) tstamp: bool,
}

impl Conn {
    /// Direction `dir`'s half.
    pub(crate) fn tuplehash(&self, dir: Dir) -> &TupleHash {
        match dir {
            Dir::Original => &self.tuplehash[0],
            Dir::Reply => &self.tuplehash[1],
        }
    }

    /// Whether `th` of this entry matches `key` in netns `owner` and the entry is in the
    /// table (`nf_ct_key_equal`).
    pub(crate) fn key_equal(&self, th: &TupleHash, key: &Key, owner: &NetState) -> bool {
        th.key_is(key) && self.is_confirmed() && self.owned_by(owner)
    }

    pub(crate) fn owned_by(&self, owner: &NetState) -> bool {
        self.owner.is(owner)
    }

    pub(crate) fn status(&self) -> u32 {
        self.status.load(Acquire)
    }

    /// Sets `bits`; returns whether all of them were set already (`test_and_set_bit`).
    pub(crate) fn set_status(&self, bits: u32) -> bool {
        self.status.fetch_or(bits, Relaxed) & bits == bits
    }

    pub(crate) fn is_confirmed(&self) -> bool {
        self.status() & IPS_CONFIRMED != 0
    }

    pub(crate) fn is_dying(&self) -> bool {
        self.status() & IPS_DYING != 0
    }

    pub(crate) fn is_assured(&self) -> bool {
        self.status() & IPS_ASSURED != 0
    }

    #[cfg(rct_kunit)] // Only the KUnit cases use it.
    pub(crate) fn seen_reply(&self) -> bool {
        self.status() & crate::proto::conn::IPS_SEEN_REPLY != 0
    }

    pub(crate) fn timeout(&self) -> u32 {
        self.timeout.load(Relaxed)
    }

    pub(crate) fn set_timeout(&self, t: u32) {
        self.timeout.store(t, Relaxed)
    }

    /// `nf_ct_is_expired`: only meaningful for confirmed entries.
    pub(crate) fn is_expired(&self, now: u32) -> bool {
        (self.timeout().wrapping_sub(now) as i32) <= 0
    }

    pub(crate) fn mark(&self) -> u32 {
        self.mark.load(Relaxed)
    }

    pub(crate) fn zone(&self) -> u16 {
        self.zone.load(Relaxed)
    }

    /// Gives the entry another reply tuple (`nf_conntrack_alter_reply`), with its raw hash.
    /// Only for an entry nobody else uses: taken off its unconfirmed list, not yet inserted.
    /// Racy readers of a recycled node still see whole atomic words, as with `alloc`.
    pub(crate) fn set_reply(&self, key: &Key, hash: u32) {
        self.tuplehash[1].store_key(key, Dir::Reply);
        self.hash[1].store(hash, Relaxed);
    }

    pub(crate) fn hash(&self, dir: Dir) -> u32 {
        self.hash[dir as usize].load(Relaxed)
    }

    pub(crate) fn created(&self) -> u32 {
        self.created.load(Relaxed)
    }

    pub(crate) fn cookie(&self) -> usize {
        self.cookie.load(Relaxed)
    }

    /// Runs `f` on the tracker's state with the entry's lock held (`spin_lock_bh(&ct->lock)`).
    /// Lock order: a bucket lock may be held when this is called, never the reverse.
    pub(crate) fn with_l4<R>(&self, f: impl FnOnce(&mut L4State) -> R) -> R {
        if let Some(wide) = TypesafeCache::tail(self) {
            return f(&mut wide.lock());
        }
        let mut small = self.l4.lock();
        let mut state = L4State::from(*small);
        let r = f(&mut state);
        // Trackers keep the kind of state an entry was made with, which fitted; the host
        // tests and fuzzer check it on every packet.
        if let Ok(s) = L4Small::try_from(state) {
            *small = s;
        }
        r
    }

    /// Whether the entry is a wide one (a large tracker state).
    #[cfg(rct_kunit)] // Only the KUnit cases use it.
    pub(crate) fn is_wide(&self) -> bool {
        TypesafeCache::tail(self).is_some()
    }

    /// The entry's extension, if it has one.
    pub(crate) fn ext(this: &ConnRef) -> Option<&Ext> {
        ExtSlot::get(this, |c| &c.ext)
    }

    fn help(this: &ConnRef) -> Option<&Help> {
        Self::ext(this).and_then(|e| e.help.as_deref())
    }

    /// Counts a packet of `len` bytes in direction `dir` (`nf_ct_acct_update`), if the
    /// entry counts.
    pub(crate) fn account(this: &ConnRef, dir: Dir, len: usize) {
        if let Some(c) = Self::ext(this)
            .and_then(|e| e.acct.as_ref())
            .and_then(|a| a.get(dir as usize))
        {
            c.packets.fetch_add(1, Relaxed);
            c.bytes.fetch_add(len as u64, Relaxed);
        }
    }

    /// The counters of both directions, if the entry counts.
    pub(crate) fn counters(this: &ConnRef) -> Option<[ProcCounter; 2]> {
        let a = Self::ext(this)?.acct.as_ref()?;
        let read = |c: &Counter| ProcCounter {
            packets: c.packets.load(Relaxed),
            bytes: c.bytes.load(Relaxed),
        };
        Some([read(&a[0]), read(&a[1])])
    }

    /// Records the start time (`tstamp->start`), if the entry has one: the clock is read
    /// only then.
    pub(crate) fn stamp_start(this: &ConnRef, real_ns: impl FnOnce() -> u64) {
        if let Some(t) = Self::ext(this).and_then(|e| e.tstamp.as_ref()) {
            t.store(real_ns(), Relaxed);
        }
    }

    /// The start time, if the entry has one.
    pub(crate) fn start(this: &ConnRef) -> Option<u64> {
        Self::ext(this)
            .and_then(|e| e.tstamp.as_ref())
            .map(|t| t.load(Relaxed))
    }

    /// The helper watching the entry.
    pub(crate) fn helper(this: &ConnRef) -> Option<HelperId> {
        Self::help(this).and_then(|h| h.helper)
    }

    #[cfg(rct_kunit)] // Only the KUnit cases use it.
    /// `ct->master`.
    pub(crate) fn master(this: &ConnRef) -> Option<&ConnRef> {
        Self::help(this).and_then(|h| h.master.as_ref())
    }

    /// Runs `f` on the entry's FTP helper state under its lock; `None` without a helper.
    pub(crate) fn with_ftp<R>(this: &ConnRef, f: impl FnOnce(&mut FtpState) -> R) -> Option<R> {
        let help = Self::help(this)?;
        help.helper?;
        Some(f(&mut help.state.lock().ftp))
    }

    /// nf_conntrack's sequence adjustment as last seen, if the entry is a helper's master.
    pub(crate) fn seqadj(this: &ConnRef) -> Option<[SeqAdj; 2]> {
        Self::help(this)?.state.lock().seqadj
    }

    /// Remembers nf_conntrack's sequence adjustment, if the entry is a helper's master.
    pub(crate) fn set_seqadj(this: &ConnRef, adj: [SeqAdj; 2]) {
        if let Some(h) = Self::help(this) {
            h.state.lock().seqadj = Some(adj);
        }
    }

    /// Runs `f` on the netns state of an entry the caller holds (`nf_ct_net`, `nf_ct_pernet`).
    pub(crate) fn with_owner<R>(conn: &ConnRef, f: impl FnOnce(Option<&NetState>) -> R) -> R {
        StateRef::with_held(conn, |c| &c.owner, f)
    }

    pub(crate) fn refcount(&self) -> u32 {
        self.refcount.read()
    }

    /// Takes a reference unless the entry is being freed (`refcount_inc_not_zero`). On
    /// success the caller must re-check what it looked the entry up by: the slab may have
    /// reused it for another connection.
    pub(crate) fn try_get(&self) -> Option<ConnRef> {
        ARef::try_get(self)
    }
}

/// The slab cache of entries.
pub(crate) struct EntryCache(TypesafeCache<Conn>);

impl EntryCache {
    pub(crate) fn new() -> kernel::error::Result<Self> {
        Ok(Self(TypesafeCache::new()?))
    }

    /// The slab's object size for one entry: a small one, or a wide one if `wide`.
    pub(crate) fn object_size(&self, wide: bool) -> u32 {
        self.0.object_size(wide)
    }

    /// Returns an entry whose last reference is gone to the cache.
    pub(crate) fn free(&self, conn: Released<Conn>) {
        self.0.free(conn);
    }

    /// A new entry holding one reference, which the caller owns (GFP_ATOMIC).
    pub(crate) fn alloc(&self, mut init: ConnInit<'_>) -> Option<ConnRef> {
        // Without memory for its extension there is no entry: an expected connection without
        // its master would not be one, and counters must count from the first packet.
        let ext = Ext::new(&mut init).ok()?;
        let (small, large) = match L4Small::try_from(init.l4) {
            Ok(s) => (s, None),
            Err(l) => (L4Small::None, Some(l)),
        };
        // Lockless readers may still see the object from its previous life: they only read
        // atomic fields, and cannot take a reference before `alloc` publishes it.
        self.0.alloc(large.is_some(), |c, tail, fresh| {
            c.tuplehash[0].store_key(init.orig, Dir::Original);
            c.tuplehash[1].store_key(init.reply, Dir::Reply);
            c.status.store(init.status, Relaxed);
            c.timeout.store(init.timeout, Relaxed);
            c.mark.store(init.mark, Relaxed);
            c.hash[0].store(init.hash[0], Relaxed);
            c.hash[1].store(init.hash[1], Relaxed);
            c.created.store(init.now, Relaxed);
            c.zone.store(0, Relaxed);
            c.cookie.store(init.cookie, Relaxed);
            c.owner.set(init.owner);
            *c.l4.lock() = small;
            if let (Some(tail), Some(l)) = (tail, large) {
                *tail.lock() = l;
            }
            c.ext.set(fresh, ext);
        })
    }
}

/// A counted reference to an entry, dropped with `nf_ct_put` semantics: the last one frees
/// the entry.
pub(crate) type ConnRef = ARef<Conn>;
