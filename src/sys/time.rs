// SPDX-License-Identifier: GPL-2.0

//! Jiffies, `HZ`, and giving up the CPU.
//!
//! C header: [`include/linux/jiffies.h`](srctree/include/linux/jiffies.h)

use crate::sys::bindings;

/// `jiffies`, full width (`get_jiffies_64`).
pub(crate) fn jiffies64() -> u64 {
    // SAFETY: FFI call without preconditions.
    unsafe { bindings::rct_jiffies64() }
}

/// `nfct_time_stamp`: the low 32 bits of `jiffies`.
pub(crate) fn jiffies32() -> u32 {
    // SAFETY: FFI call without preconditions.
    unsafe { bindings::rct_jiffies32() }
}

/// `ktime_get_real_ns`: wall-clock time, for connection timestamps.
pub(crate) fn real_ns() -> u64 {
    // SAFETY: FFI call without preconditions.
    unsafe { bindings::rct_ktime_real_ns() }
}

/// `HZ`.
pub(crate) fn hz() -> u32 {
    // SAFETY: FFI call without preconditions.
    unsafe { bindings::rct_hz() }
}

/// `cond_resched`: lets others run during a long loop. Process context only.
pub(crate) fn cond_resched() {
    // SAFETY: FFI call without preconditions; callers run in process context.
    unsafe { bindings::rct_cond_resched() }
}

/// Sleeps for `j` jiffies (`schedule_timeout_uninterruptible`). Process context only.
pub(crate) fn sleep_jiffies(j: u32) {
    // SAFETY: FFI call without preconditions; callers run in process context.
    unsafe { bindings::rct_sleep_jiffies(j as usize) }
}
