// SPDX-License-Identifier: GPL-2.0

//! Typed `SLAB_TYPESAFE_BY_RCU` caches.
//!
//! C header: [`include/linux/slab.h`](srctree/include/linux/slab.h)
//!
//! A freed object may be reused at once, but only for an object of the same cache, and its
//! memory stays that cache's until an RCU grace period after its slab is given back. Lockless
//! readers that found an object may therefore still read it after it was freed and reused:
//! they read a valid object of the right type (every field they touch is an atomic, so a racy
//! read is a valid, maybe stale, value), and re-check what they found under a reference.
//!
//! [`TypesafeCache<T>`] makes that a type: its slab constructor initialises every object once,
//! when its slab is made, so every object of the cache is always a valid `T`, allocated or not;
//! objects are handed out as counted references ([`ARef<T>`]) and come back through
//! [`Typesafe::release`] when the last one goes.
//!
//! A `TypesafeCache<T>` is two slab caches: one of plain `T`s, and one of wide objects, a `T`
//! followed by a [`Typesafe::Tail`], for the objects that need more room (as `nf_conn`'s union
//! of protocol states is as large as its largest member, which most entries do not use). An
//! object stays of the kind its slab constructor made it, which its [`Width`] records.

use crate::sys::bindings;
use crate::sys::refcount::{ARef, RefCounted, Refcount};
use core::ffi::c_void;
use core::marker::PhantomData;
use core::pin::Pin;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::prelude::*;
use kernel::str::CStr;

/// Proof that the caller is the slab constructor of a [`TypesafeCache`]: only it makes one, and
/// only it may build objects of a cache's type (their [`Refcount`] and [`Width`] need one). It
/// says which kind of object is being built.
pub(crate) struct CtorToken {
    wide: bool,
}

/// Whether an object of a [`TypesafeCache`] is a wide one, the head of a `T` followed by a
/// [`Typesafe::Tail`]: a field of every `T`, set by the slab constructor.
///
/// # Invariants
///
/// `wide` is what the constructor's [`CtorToken`] said: true if and only if the object is the
/// head of a `Wide<T>` of the cache's wide slab. It never changes (no method writes it), so a
/// racy reader of a reused object reads the same value.
pub(crate) struct Width {
    wide: bool,
}

impl Width {
    /// The width of the object a slab constructor is building.
    pub(crate) fn new_in_ctor(token: &CtorToken) -> Self {
        // INVARIANT: the constructor building a wide object says so in its token.
        Self { wide: token.wide }
    }
}

/// Objects that carry a [`Width`].
///
/// Implemented through [`crate::typesafe_object!`], never by hand.
///
/// # Safety
///
/// `WIDTH` is the byte offset in `Self` of a field of type [`Width`].
pub(crate) unsafe trait Widthed: Sized {
    /// Offset of the width.
    const WIDTH: usize;

    /// Whether `this` is a wide object.
    fn is_wide(this: &Self) -> bool {
        // CAST: `WIDTH` is the offset of a `Width` field (trait's safety requirement).
        let w = core::ptr::from_ref(this)
            .cast::<u8>()
            .wrapping_add(Self::WIDTH)
            .cast::<Width>();
        // SAFETY: `w` points to a field of `*this`, valid for the borrow.
        unsafe { (*w).wide }
    }
}

impl Refcount {
    /// The count of a new object: zero, no reference yet. Only a slab constructor makes one.
    pub(crate) fn new_in_ctor(_token: &CtorToken) -> Self {
        Self::new(0)
    }
}

/// Proof that the caller is [`TypesafeCache::alloc`]'s `init`: the object it is building has no
/// reference yet, so nobody but the caller can use what only holders of a reference use.
pub(crate) struct Fresh(());

/// An optional pinned `KBox<E>` owned by an object of a [`TypesafeCache`]: what `nf_ct_ext` is to an
/// `nf_conn`. Set while the object is being built, used by holders of a reference, taken back
/// when the object is released.
///
/// # Invariants
///
/// `ptr` is NULL or comes from `KBox::into_raw` of a pinned box, is owned by the slot and never
/// moved. It changes only while
/// the object has no reference (in `alloc`'s `init` and on release), so while any reference
/// exists it is not freed.
pub(crate) struct ExtSlot<E> {
    ptr: AtomicPtr<E>,
}

impl<E> ExtSlot<E> {
    /// An empty slot, for a slab constructor.
    pub(crate) const fn new() -> Self {
        Self {
            ptr: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    /// Gives an object being built its extension (`fresh`: no reference exists).
    pub(crate) fn set(&self, _fresh: &Fresh, ext: Option<Pin<KBox<E>>>) {
        let new = match ext {
            // SAFETY: The pointee is never moved: the slot only hands out `&E` and `Pin`s,
            // and frees it in place.
            Some(b) => KBox::into_raw(unsafe { Pin::into_inner_unchecked(b) }),
            None => core::ptr::null_mut(),
        };
        // Published with the object's first reference (`set_release`).
        let old = self.ptr.swap(new, Ordering::Relaxed);
        if !old.is_null() {
            // SAFETY: A non-NULL `ptr` is owned by the slot (type invariant), and no reference
            // to the object exists, so nobody uses it. Dropping the box drops it in place.
            drop(unsafe { KBox::from_raw(old) });
        }
    }

    /// The extension of an object the caller holds (`field` picks the slot of `held`).
    pub(crate) fn get<'a, T: Typesafe>(
        held: &'a ARef<T>,
        field: impl FnOnce(&'a T) -> &'a ExtSlot<E>,
    ) -> Option<&'a E> {
        let p = field(held).ptr.load(Ordering::Relaxed);
        // SAFETY: `p` is NULL or a live `KBox` (type invariant) that stays until the object's
        // count drops to zero, which `held` prevents for `'a`; it was set before the object's
        // first reference was published, which taking `held` acquired.
        unsafe { p.as_ref() }
    }

    /// Takes the extension back from a released object (`field` picks the slot of `obj`).
    pub(crate) fn take<T: Typesafe>(
        obj: &Released<T>,
        field: impl FnOnce(&T) -> &ExtSlot<E>,
    ) -> Option<Pin<KBox<E>>> {
        let p = field(obj)
            .ptr
            .swap(core::ptr::null_mut(), Ordering::Relaxed);
        if p.is_null() {
            return None;
        }
        // SAFETY: `p` is owned by the slot (type invariant), whose object has no reference
        // left (`Released`): nobody else can use it. It was pinned when set.
        Some(unsafe { Pin::new_unchecked(KBox::from_raw(p)) })
    }
}

/// Types whose objects live in a [`TypesafeCache`].
///
/// Every `T` is built by its cache's constructor (its `Refcount` cannot be made elsewhere), is
/// never moved or dropped (its destructor never runs: `T` should own nothing that needs one),
/// and is reached through `&T` only: as an [`ARef<T>`], from a container that holds one, or
/// racily by a lockless reader.
pub(crate) trait Typesafe: RefCounted + Widthed + Send + Sync + 'static {
    /// The cache's name, as `/proc/slabinfo` shows it.
    const NAME: &'static CStr;

    /// The name of the cache of wide objects.
    const WIDE_NAME: &'static CStr;

    /// What a wide object has after its `T`; reached through [`TypesafeCache::tail`].
    type Tail: Send + Sync + 'static;

    /// The initial state of an object, written once by the slab constructor.
    fn init(token: &CtorToken) -> impl PinInit<Self> + '_;

    /// The initial state of a wide object's tail, written once by the slab constructor.
    fn init_tail() -> impl PinInit<Self::Tail>;

    /// Called with the object when its last reference is gone; the object goes back to its
    /// cache through [`TypesafeCache::free`] (or is leaked).
    fn release(obj: Released<Self>);
}

/// An object whose last reference is gone, on its way back to its cache.
///
/// # Invariants
///
/// The pointee is an object of `T`'s cache whose count is zero, so nobody can take a reference
/// to it any more (lockless readers may still read it): it is `self`'s alone to free.
pub(crate) struct Released<T: Typesafe>(NonNull<T>);

impl<T: Typesafe> Released<T> {
    /// # Safety
    ///
    /// `ptr` is an object of `T`'s cache whose count just dropped to zero.
    pub(super) unsafe fn new(ptr: NonNull<T>) -> Self {
        // INVARIANT: guaranteed by the caller.
        Self(ptr)
    }
}

impl<T: Typesafe> core::ops::Deref for Released<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: The object is its cache's and still a valid `T` (type invariant); only shared
        // references to it are ever made.
        unsafe { self.0.as_ref() }
    }
}

/// A wide object: a `T` and its tail, in one object of the wide slab.
#[repr(C)]
struct Wide<T: Typesafe> {
    head: T,
    tail: T::Tail,
}

/// A `SLAB_TYPESAFE_BY_RCU` cache of `T`s: plain ones in `cache`, wide ones in `wide`.
///
/// # Invariants
///
/// `cache` and `wide` are live caches created by `self`, with [`ctor`]`::<T>` and
/// [`ctor_wide`]`::<T>` as their constructors, and destroyed on drop. They are the only caches
/// of `T` the module ever creates (`T::cache_claim()`), so every `T` comes from one of them.
pub(crate) struct TypesafeCache<T: Typesafe> {
    cache: NonNull<bindings::kmem_cache>,
    wide: NonNull<bindings::kmem_cache>,
    _t: PhantomData<T>,
}

// SAFETY: The slab allocator is thread-safe, and `T: Send + Sync`.
unsafe impl<T: Typesafe> Send for TypesafeCache<T> {}
// SAFETY: As above.
unsafe impl<T: Typesafe> Sync for TypesafeCache<T> {}

/// The slab constructor of a [`TypesafeCache<T>`]: builds a `T` in a new object.
///
/// # Safety
///
/// `obj` is a new object of a cache of `size_of::<T>()` bytes aligned for `T`, not yet used.
unsafe extern "C" fn ctor<T: Typesafe>(obj: *mut c_void) {
    let slot = obj.cast::<T>();
    let token = CtorToken { wide: false };
    // SAFETY: `slot` is valid, uninitialised memory for a `T` (precondition), which never moves
    // (slab objects stay where they are) and is never dropped. The initialiser is infallible.
    let Ok(()) = unsafe { T::init(&token).__pinned_init(slot) };
    // No reference until `alloc` hands the object out, whatever `init` set.
    // SAFETY: `slot` is now a valid `T`, not yet shared.
    unsafe { (*slot).refcount().set_relaxed(0) };
}

/// The slab constructor of a [`TypesafeCache<T>`]'s wide objects: builds a `T` and its tail.
///
/// # Safety
///
/// `obj` is a new object of a cache of `size_of::<Wide<T>>()` bytes aligned for it, not yet
/// used.
unsafe extern "C" fn ctor_wide<T: Typesafe>(obj: *mut c_void) {
    let slot = obj.cast::<Wide<T>>();
    let token = CtorToken { wide: true };
    // SAFETY: `slot` is valid, uninitialised memory for a `Wide<T>` (precondition), which never
    // moves and is never dropped; its two fields are built in place. The initialisers are
    // infallible.
    let Ok(()) = unsafe { T::init(&token).__pinned_init(core::ptr::addr_of_mut!((*slot).head)) };
    // SAFETY: As above, for the second field.
    let Ok(()) = unsafe { T::init_tail().__pinned_init(core::ptr::addr_of_mut!((*slot).tail)) };
    // SAFETY: `head` is now a valid `T`, not yet shared.
    unsafe { (*slot).head.refcount().set_relaxed(0) };
}

impl<T: Typesafe> TypesafeCache<T> {
    /// Creates the cache: once per module lifetime for each `T` (`EBUSY` after that).
    pub(crate) fn new() -> Result<Self> {
        if T::cache_claim().swap(true, Ordering::AcqRel) {
            return Err(EBUSY);
        }
        let (Ok(size), Ok(align), Ok(wide_size), Ok(wide_align)) = (
            u32::try_from(core::mem::size_of::<T>()),
            u32::try_from(core::mem::align_of::<T>()),
            u32::try_from(core::mem::size_of::<Wide<T>>()),
            u32::try_from(core::mem::align_of::<Wide<T>>()),
        ) else {
            return Err(EINVAL);
        };
        // SAFETY: `NAME` is a static NUL-terminated string; `ctor::<T>` builds a `T` in objects
        // of this size and alignment.
        let cache = unsafe {
            bindings::rct_cache_create(T::NAME.as_char_ptr(), size, align, Some(ctor::<T>))
        };
        let cache = NonNull::new(cache).ok_or(ENOMEM)?;
        // SAFETY: As above, for `WIDE_NAME` and `ctor_wide::<T>`, which builds a `Wide<T>`.
        let wide = unsafe {
            bindings::rct_cache_create(
                T::WIDE_NAME.as_char_ptr(),
                wide_size,
                wide_align,
                Some(ctor_wide::<T>),
            )
        };
        let Some(wide) = NonNull::new(wide) else {
            // SAFETY: `cache` was just created and holds no object.
            unsafe { bindings::kmem_cache_destroy(cache.as_ptr()) };
            return Err(ENOMEM);
        };
        // INVARIANT: created here, the first and only caches of `T` (claimed above, for ever: a
        // `Released<T>` can only ever belong to these).
        Ok(Self {
            cache,
            wide,
            _t: PhantomData,
        })
    }

    /// A new object holding one reference, which the caller owns (GFP_ATOMIC), after `init` set
    /// its fields. Lockless readers may still be reading the object from its previous life:
    /// `init` should only write what they may read with single atomic stores. They cannot take
    /// a reference while the count is zero, which it is until `init` is done.
    ///
    /// A wide object if `wide`: `init` is then given its tail.
    pub(crate) fn alloc(
        &self,
        wide: bool,
        init: impl FnOnce(&T, Option<&T::Tail>, &Fresh),
    ) -> Option<ARef<T>> {
        let cache = if wide { self.wide } else { self.cache };
        // SAFETY: The cache is live (type invariant).
        let obj = NonNull::new(unsafe { bindings::rct_cache_alloc(cache.as_ptr()) })?;
        // CAST: objects of `cache` are `T`s, or `Wide<T>`s whose `T` is at offset 0 (`repr(C)`),
        // built by the constructor.
        let obj = obj.cast::<T>();
        // SAFETY: Every object of the caches is a valid `T` (built once by `ctor` or
        // `ctor_wide`, only ever changed through `&T`), and memory of a cache stays the
        // cache's while it is live.
        let r = unsafe { obj.as_ref() };
        // Its count is zero: it came back through `release` (or never left the slab).
        init(r, Self::tail(r), &Fresh(()));
        // Publish the fields before the reference that lets readers use them.
        r.refcount().set_release(1);
        // SAFETY: The count was just set to one, for this reference.
        Some(unsafe { ARef::from_new(obj) })
    }

    /// Returns a released object to the cache.
    pub(crate) fn free(&self, obj: Released<T>) {
        // `T`'s only caches are these (type invariant), so the object is ours, and its width
        // says which of the two it belongs to.
        let cache = if T::is_wide(&obj) {
            self.wide
        } else {
            self.cache
        };
        // SAFETY: The cache is live; the object is unreferenced and given up by `obj` (its type
        // invariant), and an object of that cache (`Width` invariant). Lockless readers may
        // still read it: the cache is SLAB_TYPESAFE_BY_RCU.
        unsafe { bindings::rct_cache_free(cache.as_ptr(), obj.0.as_ptr().cast()) };
    }

    /// The tail of `obj`, if it is a wide object.
    pub(crate) fn tail(obj: &T) -> Option<&T::Tail> {
        if !T::is_wide(obj) {
            return None;
        }
        // CAST: a wide `T` is the first field of a `Wide<T>` (`Width` invariant), at offset 0.
        let w = core::ptr::from_ref(obj).cast::<Wide<T>>();
        // SAFETY: `*w` is a `Wide<T>` of the wide slab, whose tail was built by `ctor_wide` and
        // is only ever reached as `&T::Tail`; the slab's memory stays valid while `obj` is
        // borrowed, as `obj` itself is (container_of, as C reaches past an embedded struct).
        Some(unsafe { &(*w).tail })
    }

    /// The size of one object in the cache: plain, or wide if `wide`.
    pub(crate) fn object_size(&self, wide: bool) -> u32 {
        let cache = if wide { self.wide } else { self.cache };
        // SAFETY: The cache is live (type invariant).
        unsafe { bindings::rct_cache_object_size(cache.as_ptr()) }
    }
}

impl<T: Typesafe> Drop for TypesafeCache<T> {
    fn drop(&mut self) {
        // SAFETY: The caches are live. Every object should have been freed; if not, the kernel
        // warns and keeps the cache (it is never freed under its objects). For a
        // SLAB_TYPESAFE_BY_RCU cache this waits for RCU readers first.
        unsafe {
            bindings::kmem_cache_destroy(self.cache.as_ptr());
            bindings::kmem_cache_destroy(self.wide.as_ptr());
        }
    }
}

/// Declares `$t` an object of a [`TypesafeCache`] with its [`Refcount`] in field `$rc`, its
/// two `hlist_nulls` links (a `[Link; 2]`) in field `$links` and its [`Width`] in `$width`:
/// implements [`crate::sys::refcount::RefCounted`], [`crate::sys::hlist_nulls::Linked`] and
/// [`Widthed`], whose offsets it computes and whose field types it checks. `$t` must also
/// implement [`Typesafe`].
#[macro_export]
macro_rules! typesafe_object {
    ($t:ty, refcount: $rc:ident, links: $links:ident, width: $width:ident) => {
        const _: fn(
            &$t,
        ) -> (
            &$crate::sys::refcount::Refcount,
            &[$crate::sys::hlist_nulls::Link; 2],
            &$crate::sys::slab::Width,
        ) = |x| (&x.$rc, &x.$links, &x.$width);
        #[allow(unsafe_code)]
        // SAFETY: `WIDTH` is the offset of `$width`, a `Width` (checked above).
        unsafe impl $crate::sys::slab::Widthed for $t {
            const WIDTH: usize = ::core::mem::offset_of!($t, $width);
        }
        #[allow(unsafe_code)]
        // SAFETY: `REFCOUNT` is the offset of `$rc`, a `Refcount` (checked above), and
        // `cache_claim` returns one static of its own.
        unsafe impl $crate::sys::refcount::RefCounted for $t {
            const REFCOUNT: usize = ::core::mem::offset_of!($t, $rc);

            fn cache_claim() -> &'static ::core::sync::atomic::AtomicBool {
                static CLAIM: ::core::sync::atomic::AtomicBool =
                    ::core::sync::atomic::AtomicBool::new(false);
                &CLAIM
            }
        }
        #[allow(unsafe_code)]
        // SAFETY: `LINKS` is the offset of `$links`, a `[Link; 2]` (checked above).
        unsafe impl $crate::sys::hlist_nulls::Linked for $t {
            const LINKS: usize = ::core::mem::offset_of!($t, $links);
        }
    };
}
