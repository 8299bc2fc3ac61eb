// SPDX-License-Identifier: GPL-2.0

//! Lock guards: bottom halves disabled, the striped bucket locks of the hash tables, and the
//! spinlock-with-data of an entry.
//!
//! C headers: [`include/linux/bottom_half.h`](srctree/include/linux/bottom_half.h),
//! [`include/linux/spinlock.h`](srctree/include/linux/spinlock.h)
//!
//! Lock order: the table mutex, then the bucket locks (two at most, lower stripe first, or
//! all of them for a resize), then an entry lock. A per-CPU list lock is never held together
//! with a bucket lock.

use crate::sys::bindings;
use core::marker::PhantomData;
use kernel::sync::lock::{Backend, Lock};

/// Bottom halves disabled on this CPU (`local_bh_disable`) until dropped.
///
/// A hook run from softirq has them disabled already; then nothing is done, either way.
///
/// # Invariants
///
/// Bottom halves are off on the thread that owns the guard, which is not `Send`; the flag
/// says whether `local_bh_disable` was called for the guard.
pub(crate) struct BhDisabled(bool, PhantomData<*mut ()>);

impl BhDisabled {
    /// Disables bottom halves, if they are not already.
    pub(crate) fn new() -> Self {
        // SAFETY: FFI call without preconditions; undone in `drop` on this thread.
        let disabled = unsafe { bindings::rct_local_bh_disable() };
        // INVARIANT: off now, on this thread; `disabled` says whether by this call.
        Self(disabled, PhantomData)
    }
}

impl Drop for BhDisabled {
    fn drop(&mut self) {
        // SAFETY: `self.0` says whether `new` disabled them, on this thread (type invariant).
        unsafe { bindings::rct_local_bh_enable(self.0) };
    }
}

/// Readies the striped bucket locks and the hash key, once: the first table does it, before
/// anything can take a bucket lock.
pub(crate) fn tables_init_once() {
    // SAFETY: FFI call without preconditions: it initialises the locks and the key only the
    // first time, under a mutex, before any table (and so any bucket lock user) exists.
    unsafe { bindings::rct_tables_init_once() };
}

/// The table generation (`nf_conntrack_generation`): a sequence count, odd while a resize
/// moves entries from one bucket array to another. Waits while it is odd (as
/// `read_seqcount_begin`), then returns it.
pub(crate) fn generation_begin() -> u32 {
    // SAFETY: FFI call without preconditions (the count is static, initialised before any
    // table exists, and reading it before is harmless).
    unsafe { bindings::rct_generation_begin() }
}

/// Whether the generation moved on from `seq` (`read_seqcount_retry`): a resize ran since.
pub(crate) fn generation_changed(seq: u32) -> bool {
    // SAFETY: FFI call without preconditions.
    unsafe { bindings::rct_generation_retry(seq) }
}

/// The bucket locks of chains `a` and `b` (`nf_conntrack_double_lock`; the same lock once when
/// they share a stripe), taken with bottom halves disabled, lower stripe first.
///
/// # Invariants
///
/// The stripes of `a` and `b` are locked by this thread, which is not `Send`, with bottom halves
/// disabled; the locks were initialised (`tables_init_once`) before. The table generation was
/// still the one the caller read when they were taken: no resize ran meanwhile, and none runs
/// until they are released.
pub(crate) struct BucketLocks {
    a: u32,
    b: u32,
    _bh: BhDisabled,
}

impl BucketLocks {
    /// Locks the stripes of `a` and `b`, or returns `None` (nothing locked) if the table
    /// generation is no longer `seq` ([`generation_begin`]): the caller's buckets may be
    /// those of a replaced array. Only for a table's chains: the first table
    /// ([`crate::sys::hlist_nulls::Buckets::new`]) initialised the locks.
    pub(super) fn new(a: u32, b: u32, seq: u32) -> Option<Self> {
        let bh = BhDisabled::new();
        // SAFETY: The locks are initialised: a table exists; undone in `drop`, in reverse
        // order, or by the call itself when it returns true.
        if unsafe { bindings::rct_double_lock(a, b, seq) } {
            return None;
        }
        // INVARIANT: locked just now, bottom halves disabled, generation still `seq`.
        Some(Self { a, b, _bh: bh })
    }

    /// Whether chain `bucket`'s lock is held.
    pub(crate) fn holds(&self, bucket: u32) -> bool {
        let stripe = |b: u32| b % bindings::RCT_LOCKS;
        stripe(bucket) == stripe(self.a) || stripe(bucket) == stripe(self.b)
    }
}

impl Drop for BucketLocks {
    fn drop(&mut self) {
        // SAFETY: Locked by `new` on this thread (type invariant); bottom halves are enabled
        // again afterwards, when `_bh` drops.
        unsafe { bindings::rct_double_unlock(self.a, self.b) };
    }
}

/// Every bucket lock at once (`nf_conntrack_all_lock`), bottom halves disabled, inside the
/// generation's write section (`write_seqcount_begin`): no chain of any table changes but
/// by the holder, and readers that started before retry.
///
/// # Invariants
///
/// `rct_all_lock` was called by this thread (not `Send`) with bottom halves disabled, under
/// the table mutex ([`TableMutex`], borrowed for `'a`).
pub(crate) struct AllBucketsLocked<'a> {
    _bh: BhDisabled,
    _mutex: PhantomData<&'a TableMutex>,
}

impl<'a> AllBucketsLocked<'a> {
    /// Takes every bucket lock and opens the write section. Only for tables: the first table
    /// initialised the locks.
    pub(super) fn new(_mutex: &'a TableMutex) -> Self {
        let bh = BhDisabled::new();
        // SAFETY: The locks are initialised (a table exists), bottom halves are disabled and
        // we hold the table mutex, so no other writer exists; undone in `drop`.
        unsafe { bindings::rct_all_lock() };
        // INVARIANT: locked just now.
        Self {
            _bh: bh,
            _mutex: PhantomData,
        }
    }
}

impl Drop for AllBucketsLocked<'_> {
    fn drop(&mut self) {
        // SAFETY: Locked by `new` on this thread (type invariant); bottom halves are enabled
        // again afterwards.
        unsafe { bindings::rct_all_unlock() };
    }
}

/// The table mutex (`nf_conntrack_mutex`), held until dropped: one resize at a time, and
/// none while a netns' entries are being deleted. Process context: it may sleep.
///
/// # Invariants
///
/// The mutex is held by this thread, which is not `Send`.
pub(crate) struct TableMutex(PhantomData<*mut ()>);

impl TableMutex {
    /// Takes the mutex (may sleep).
    pub(crate) fn lock() -> Self {
        // SAFETY: FFI call without preconditions (process context, as the callers are);
        // released in `drop`.
        unsafe { bindings::rct_table_mutex_lock() };
        // INVARIANT: held just now.
        Self(PhantomData)
    }
}

impl Drop for TableMutex {
    fn drop(&mut self) {
        // SAFETY: Held by this thread (type invariant).
        unsafe { bindings::rct_table_mutex_unlock() };
    }
}

/// The backend of [`SpinLockBh`]: `spin_lock_bh` and `spin_unlock_bh`, leaving bottom halves
/// alone when they are off already (as [`BhDisabled`]).
pub(crate) struct SpinLockBhBackend;

// SAFETY: `spin_lock` with bottom halves off gives one CPU at a time the data up to
// `spin_unlock`, and `relock` (the default) locks the same way. The guard state says whether
// the lock turned bottom halves off, which the unlock undoes.
unsafe impl Backend for SpinLockBhBackend {
    type State = kernel::bindings::spinlock_t;
    type GuardState = bool;

    unsafe fn init(
        ptr: *mut Self::State,
        name: *const kernel::ffi::c_char,
        key: *mut kernel::bindings::lock_class_key,
    ) {
        // SAFETY: `ptr` is valid for writes and `name` and `key` live for ever (the caller's
        // obligations).
        unsafe { kernel::bindings::__spin_lock_init(ptr, name, key) }
    }

    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // CAST: the kernel's `spinlock_t` and the module bindings' are the same C type.
        // SAFETY: The lock was initialised (the caller's obligation).
        unsafe { bindings::rct_spin_lock_bh(ptr.cast()) }
    }

    unsafe fn unlock(ptr: *mut Self::State, guard_state: &Self::GuardState) {
        // CAST: as in `lock`.
        // SAFETY: The caller owns the lock, taken by `lock`, which returned `guard_state`.
        unsafe { bindings::rct_spin_unlock_bh(ptr.cast(), *guard_state) }
    }
}

/// A spinlock taken with bottom halves disabled (`spin_lock_bh`), holding the data it guards:
/// the data is only reachable through [`Lock::lock`]'s guard. Built in place, once, by
/// [`new_spinlock_bh`]; for objects of a [`crate::sys::slab::TypesafeCache`] that is the slab
/// constructor, so it is never initialised again while a lockless reader may be using it.
pub(crate) type SpinLockBh<T> = Lock<T, SpinLockBhBackend>;

/// An initialiser of a [`SpinLockBh`] holding `data`, in lock class `name` with `key`: one
/// per lock class, e.g. `kernel::static_lock_class!()` at the call site (a key made here
/// would put every lock of the module in one class).
pub(crate) fn new_spinlock_bh<T>(
    data: T,
    name: &'static kernel::str::CStr,
    key: &'static kernel::sync::LockClassKey,
) -> impl kernel::init::PinInit<SpinLockBh<T>> {
    Lock::new(data, name, key)
}
