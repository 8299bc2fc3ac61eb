// SPDX-License-Identifier: GPL-2.0

//! Random numbers.
//!
//! C header: [`include/linux/random.h`](srctree/include/linux/random.h)

use crate::sys::bindings;

/// A random number below `ceil` (`get_random_u32_below`); 0 when `ceil` is 0.
pub(crate) fn below(ceil: u32) -> u32 {
    if ceil == 0 {
        return 0;
    }
    // SAFETY: FFI call without preconditions.
    unsafe { bindings::rct_random_below(ceil) }
}
