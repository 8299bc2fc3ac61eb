// SPDX-License-Identifier: GPL-2.0

//! Connection entries (`struct nf_conn`) and references to them.
//!
//! An entry holds one [`TupleHash`] per direction, each linking it into the hash chain of
//! that direction's tuple, as `nf_conn.tuplehash[]` does. Entries come from a
//! `SLAB_TYPESAFE_BY_RCU` cache: a lockless reader may meet an entry that was freed and
//! reused meanwhile, so every field is an atomic (a racy read is a valid, maybe stale,
//! value) and readers re-check the key after taking a reference, as
//! `__nf_conntrack_find_get` does.

use crate::conntrack::net::NetState;
use crate::proto::conn::{IPS_ASSURED, IPS_CONFIRMED, IPS_DYING};
use crate::proto::l4proto::L4State;
use crate::proto::tuple::{Dir, Key, Tuple, KEY_LEN};
use crate::sys::bindings;
use crate::sys::slab::KmemCache;
use core::cell::UnsafeCell;
use core::ptr::NonNull;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use core::sync::atomic::{fence, AtomicPtr, AtomicU16, AtomicU32, AtomicU64, AtomicUsize};
use kernel::types::Opaque;

const KEY_WORDS: usize = KEY_LEN / 8;
const _: () = assert!(KEY_LEN % 8 == 0);

/// The last key byte holds the direction; comparisons and hashing leave it out.
const DIR_BYTE: usize = KEY_LEN - 1;

/// The last key word without its last byte, the direction.
const LAST_WORD_MASK: u64 = u64::from_ne_bytes([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0]);

/// One direction of an entry: its chain link and its tuple's key.
///
/// # Invariants
///
/// `node` is the first field, so a pointer to it is a pointer to the `TupleHash`; the key's
/// last byte is the index of this `TupleHash` in its entry's `tuplehash` array.
#[repr(C)]
pub(crate) struct TupleHash {
    node: Opaque<bindings::hlist_nulls_node>,
    key: [AtomicU64; KEY_WORDS],
}

impl TupleHash {
    fn store_key(&self, key: &Key, dir: Dir) {
        let mut k = *key;
        k[DIR_BYTE] = dir as u8;
        for (word, chunk) in self.key.iter().zip(k.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            word.store(u64::from_ne_bytes(b), Relaxed);
        }
    }

    fn load_key(&self) -> Key {
        let mut k = [0u8; KEY_LEN];
        for (chunk, word) in k.chunks_exact_mut(8).zip(self.key.iter()) {
            chunk.copy_from_slice(&word.load(Relaxed).to_ne_bytes());
        }
        k
    }

    /// Whether this direction's tuple is `key` (the direction byte aside). Word by word,
    /// stopping at the first difference: most nodes of a chain differ in the first word.
    fn key_is(&self, key: &Key) -> bool {
        self.key
            .iter()
            .zip(key.chunks_exact(8))
            .enumerate()
            .all(|(i, (word, chunk))| {
                let mut b = [0u8; 8];
                b.copy_from_slice(chunk);
                let mask = if i == KEY_WORDS - 1 {
                    LAST_WORD_MASK
                } else {
                    u64::MAX
                };
                (word.load(Relaxed) ^ u64::from_ne_bytes(b)) & mask == 0
            })
    }

    /// This direction's key as [`Tuple::key`] makes it (direction byte cleared).
    pub(crate) fn load_key_for_compare(&self) -> Key {
        let mut k = self.load_key();
        k[DIR_BYTE] = 0;
        k
    }

    /// This direction's tuple.
    pub(crate) fn tuple(&self) -> Option<Tuple> {
        let mut k = self.load_key();
        k[DIR_BYTE] = 0;
        Tuple::from_key(&k)
    }

    /// Which direction of its entry this is.
    pub(crate) fn dir(&self) -> Dir {
        let [.., dir] = self.key[KEY_WORDS - 1].load(Relaxed).to_ne_bytes();
        if dir == Dir::Reply as u8 {
            Dir::Reply
        } else {
            Dir::Original
        }
    }

    pub(crate) fn node(&self) -> *mut bindings::hlist_nulls_node {
        self.node.get()
    }

    /// The `TupleHash` a chain node belongs to.
    ///
    /// # Safety
    ///
    /// `node` must be the `node` of a `TupleHash` inside an entry of the entry cache, and the
    /// caller must be in an RCU read-side section or hold the chain's lock.
    pub(crate) unsafe fn from_node<'a>(node: NonNull<bindings::hlist_nulls_node>) -> &'a Self {
        // SAFETY: `node` is the first field of a `TupleHash` (type invariant), in type-stable
        // memory for the duration of the caller's section.
        unsafe { &*node.as_ptr().cast::<Self>() }
    }

    /// The entry this direction belongs to, as `nf_ct_tuplehash_to_ctrack`.
    pub(crate) fn conn(&self) -> &Conn {
        let offset = match self.dir() {
            Dir::Original => 0,
            Dir::Reply => core::mem::size_of::<TupleHash>(),
        };
        // CAST: `self` is `tuplehash[dir]` of a `Conn` (type invariant), and `tuplehash` is
        // the first field of `Conn`; a racy direction read from a recycled entry still
        // yields one of the two `TupleHash`es of a `Conn`, whose key check then fails.
        let conn = (self as *const Self)
            .cast::<u8>()
            .wrapping_sub(offset)
            .cast::<Conn>();
        // SAFETY: See the CAST above: `conn` is an entry of the entry cache, type-stable
        // memory for at least as long as `self` is borrowed.
        unsafe { &*conn }
    }
}

/// A tracked connection, `struct nf_conn`.
///
/// # Invariants
///
/// Lives in memory from [`EntryCache`]. While `refcount` is non-zero the entry is owned by
/// its holders: the table (or an unconfirmed list) holds one reference, and every
/// [`ConnRef`] one more. Fields are written only by the creator before the entry is
/// published, or by holders of a reference (timeouts, status bits, protocol state).
/// `l4` is accessed only with `lock` held, by holders of a reference (or by the creator).
#[repr(C)]
pub(crate) struct Conn {
    tuplehash: [TupleHash; 2],
    refcount: AtomicU32,
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
    /// Address of the skb that created the entry, until confirmed (see `conntrack`).
    cookie: AtomicUsize,
    owner: AtomicPtr<NetState>,
    /// `ct->lock`: guards `l4`.
    lock: Opaque<bindings::spinlock_t>,
    /// The tracker's state (`ct->proto`).
    l4: UnsafeCell<L4State>,
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
        core::ptr::eq(self.owner.load(Relaxed), owner)
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
        // SAFETY: The lock was initialised at allocation; the caller holds a reference.
        unsafe { bindings::rct_entry_lock(self.lock.get()) };
        // SAFETY: `l4` is only accessed with `lock` held (type invariant), which we hold.
        let r = f(unsafe { &mut *self.l4.get() });
        // SAFETY: Locked above.
        unsafe { bindings::rct_entry_unlock(self.lock.get()) };
        r
    }

    pub(crate) fn refcount(&self) -> u32 {
        self.refcount.load(Relaxed)
    }

    /// Takes a reference unless the entry is being freed (`refcount_inc_not_zero`). On
    /// success the caller must re-check what it looked the entry up by: the slab may have
    /// reused it for another connection.
    pub(crate) fn try_get(&self) -> Option<ConnRef> {
        let mut n = self.refcount.load(Relaxed);
        loop {
            if n == 0 {
                return None;
            }
            // Acquire on success: fields read afterwards are the current owner's
            // (`smp_acquire__after_ctrl_dep`).
            match self
                .refcount
                .compare_exchange_weak(n, n.wrapping_add(1), Acquire, Relaxed)
            {
                // INVARIANT: a reference was just taken.
                Ok(_) => return Some(ConnRef(NonNull::from(self))),
                Err(cur) => n = cur,
            }
        }
    }
}

/// The slab cache of entries.
pub(crate) struct EntryCache(KmemCache);

impl EntryCache {
    pub(crate) fn new() -> kernel::error::Result<Self> {
        Ok(Self(KmemCache::new(
            kernel::c_str!("rust_conntrack"),
            core::mem::size_of::<Conn>(),
            core::mem::align_of::<Conn>(),
        )?))
    }

    /// The slab's object size for one entry.
    pub(crate) fn object_size(&self) -> u32 {
        self.0.object_size()
    }

    /// Returns an entry to the cache.
    ///
    /// # Safety
    ///
    /// `conn` is an entry of this cache whose last reference is gone.
    pub(crate) unsafe fn free(&self, conn: NonNull<u8>) {
        // SAFETY: Guaranteed by the caller.
        unsafe { self.0.free(conn) };
    }

    /// A new entry holding one reference, which the caller owns (GFP_ATOMIC).
    pub(crate) fn alloc(&self, init: &ConnInit<'_>) -> Option<ConnRef> {
        let conn = self.0.alloc()?.cast::<Conn>();
        // Lockless readers may still see the object from its previous life: they only use
        // atomic fields, and cannot take a reference while `refcount` is 0, which it is from
        // its last `put` (a never-used object has no readers at all).
        // SAFETY: `conn` is a suitably sized and aligned object of the entry cache.
        let c = unsafe { &*conn.as_ptr() };
        c.refcount.store(0, Relaxed);
        c.tuplehash[0].store_key(init.orig, Dir::Original);
        c.tuplehash[1].store_key(init.reply, Dir::Reply);
        c.status.store(0, Relaxed);
        c.timeout.store(init.timeout, Relaxed);
        c.mark.store(0, Relaxed);
        c.hash[0].store(init.hash[0], Relaxed);
        c.hash[1].store(init.hash[1], Relaxed);
        c.created.store(init.now, Relaxed);
        c.zone.store(0, Relaxed);
        c.cookie.store(init.cookie, Relaxed);
        c.owner
            .store((init.owner as *const NetState).cast_mut(), Relaxed);
        // SAFETY: Nobody takes the lock of an entry without a reference, and there is none
        // yet: initialising it again on reuse is fine.
        unsafe { bindings::rct_entry_lock_init(c.lock.get()) };
        // SAFETY: As above, nobody else accesses `l4` before the reference is published.
        unsafe { *c.l4.get() = init.l4 };
        // Publish the fields before the reference that lets readers use them.
        c.refcount.store(1, Release);
        // INVARIANT: the caller owns the only reference.
        Some(ConnRef(conn))
    }
}

/// A counted reference to an entry, dropped with `nf_ct_put` semantics: the last one frees
/// the entry.
///
/// # Invariants
///
/// The reference was counted in the entry's `refcount`.
pub(crate) struct ConnRef(NonNull<Conn>);

// SAFETY: Entries are shared between CPUs through atomics only.
unsafe impl Send for ConnRef {}
// SAFETY: As above.
unsafe impl Sync for ConnRef {}

impl ConnRef {
    /// Gives up the reference without dropping it; [`ConnRef::from_raw`] takes it back.
    pub(crate) fn into_raw(self) -> NonNull<Conn> {
        let p = self.0;
        core::mem::forget(self);
        p
    }

    /// Takes back a reference given up by [`ConnRef::into_raw`].
    ///
    /// # Safety
    ///
    /// `conn` must come from `into_raw`, and each such reference be taken back once.
    pub(crate) unsafe fn from_raw(conn: NonNull<Conn>) -> Self {
        // INVARIANT: the reference given up by `into_raw` is taken over.
        Self(conn)
    }
}

impl core::ops::Deref for ConnRef {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        // SAFETY: The reference keeps the entry alive (type invariant).
        unsafe { self.0.as_ref() }
    }
}

impl Drop for ConnRef {
    fn drop(&mut self) {
        if self.refcount.fetch_sub(1, Release) != 1 {
            return;
        }
        // The last reference: see every holder's writes before the entry goes.
        fence(Acquire);
        let owner = self.owner.load(Relaxed);
        // SAFETY: An entry's netns state outlives its entries: the netns' exit waits until
        // its entry count drops to zero, which happens only below.
        if let Some(owner) = unsafe { owner.as_ref() } {
            owner.entry_freed(self.0.cast());
        }
    }
}
