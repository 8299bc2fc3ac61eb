// SPDX-License-Identifier: GPL-2.0

//! Rate-limited kernel messages (`net_warn_ratelimited`), which 6.12's Rust lacks.
//!
//! C header: [`include/linux/net.h`](srctree/include/linux/net.h)

use crate::sys::bindings;

/// `rust_conntrack: table full, dropping packet`, rate-limited as nf_conntrack's.
pub(crate) fn warn_table_full() {
    // SAFETY: FFI call without preconditions.
    unsafe { bindings::rct_warn_table_full() }
}
