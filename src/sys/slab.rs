// SPDX-License-Identifier: GPL-2.0

//! The slab cache entries are allocated from.
//!
//! C header: [`include/linux/slab.h`](srctree/include/linux/slab.h)

use crate::sys::bindings;
use core::ptr::NonNull;
use kernel::prelude::*;
use kernel::str::CStr;

/// A `SLAB_TYPESAFE_BY_RCU` cache of `size`-byte objects: a freed object may be reused at
/// once, but only for an object of the same cache, so lockless readers that still hold a
/// pointer read memory of the right type and re-check what they found under a reference.
///
/// # Invariants
///
/// `cache` is a live cache created by `self` and destroyed on drop.
pub(crate) struct KmemCache {
    cache: NonNull<bindings::kmem_cache>,
}

// SAFETY: The slab allocator is thread-safe.
unsafe impl Send for KmemCache {}
// SAFETY: The slab allocator is thread-safe.
unsafe impl Sync for KmemCache {}

impl KmemCache {
    /// Creates the cache.
    pub(crate) fn new(name: &'static CStr, size: usize, align: usize) -> Result<Self> {
        let (Ok(size), Ok(align)) = (u32::try_from(size), u32::try_from(align)) else {
            return Err(EINVAL);
        };
        // SAFETY: `name` is a static NUL-terminated string.
        let cache = unsafe { bindings::rct_cache_create(name.as_char_ptr(), size, align) };
        // INVARIANT: created here.
        Ok(Self {
            cache: NonNull::new(cache).ok_or(ENOMEM)?,
        })
    }

    /// An uninitialised object (GFP_ATOMIC), or `None` when memory is short.
    pub(crate) fn alloc(&self) -> Option<NonNull<u8>> {
        // SAFETY: The cache is live (type invariant).
        NonNull::new(unsafe { bindings::rct_cache_alloc(self.cache.as_ptr()) }.cast())
    }

    /// Returns an object to the cache.
    ///
    /// # Safety
    ///
    /// `obj` came from [`Self::alloc`] of this cache and is not used after this call, except
    /// by RCU readers that only read it (see the type's documentation).
    pub(crate) unsafe fn free(&self, obj: NonNull<u8>) {
        // SAFETY: Guaranteed by the caller.
        unsafe { bindings::rct_cache_free(self.cache.as_ptr(), obj.as_ptr().cast()) };
    }

    /// The size of one object in the cache, alignment included.
    pub(crate) fn object_size(&self) -> u32 {
        // SAFETY: The cache is live (type invariant).
        unsafe { bindings::rct_cache_object_size(self.cache.as_ptr()) }
    }
}

impl Drop for KmemCache {
    fn drop(&mut self) {
        // SAFETY: The cache is live and, when the module drops it, empty: every entry was
        // freed before. For a SLAB_TYPESAFE_BY_RCU cache this waits for RCU readers.
        unsafe { bindings::kmem_cache_destroy(self.cache.as_ptr()) };
    }
}
