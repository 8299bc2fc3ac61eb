// SPDX-License-Identifier: GPL-2.0

//! Module parameters and what the table is sized from.
//!
//! C headers: [`include/linux/moduleparam.h`](srctree/include/linux/moduleparam.h),
//! [`include/linux/mm.h`](srctree/include/linux/mm.h)

use crate::sys::bindings;

/// The `hashsize` parameter: buckets wanted, 0 to size the table from the memory size.
pub(crate) fn hashsize() -> u32 {
    // SAFETY: FFI call without preconditions (reads a parameter set at load).
    unsafe { bindings::rct_htable_size_param() }
}

/// `totalram_pages()`.
pub(crate) fn totalram_pages() -> u64 {
    // SAFETY: FFI call without preconditions.
    let pages = unsafe { bindings::rct_totalram_pages() };
    pages as u64
}
