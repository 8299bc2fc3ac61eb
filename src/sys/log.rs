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

/// `rust_conntrack: expectation table full`, rate-limited as nf_conntrack's.
pub(crate) fn warn_expect_table_full() {
    // SAFETY: FFI call without preconditions.
    unsafe { bindings::rct_warn_expect_table_full() }
}

/// A helper's message about a packet it drops (`nf_ct_helper_log`), rate-limited.
pub(crate) fn helper_log(helper: &dyn core::fmt::Display, msg: &str) {
    let mut buf = CBuf::<128>::new();
    // Cut if longer: the helpers' names and messages are short.
    let _ = core::fmt::write(
        &mut buf,
        format_args!("nf_ct_{helper}: dropping packet: {msg}"),
    );
    // SAFETY: `buf` holds a NUL-terminated string.
    unsafe { bindings::rct_helper_log(buf.as_ptr()) }
}

/// A NUL-terminated string built with `fmt::Write` in a fixed buffer, cut at `N - 1` bytes.
pub(crate) struct CBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> CBuf<N> {
    pub(crate) fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }

    /// The string, NUL-terminated (the buffer starts zeroed and the last byte stays 0).
    pub(crate) fn as_ptr(&self) -> *const kernel::ffi::c_char {
        self.buf.as_ptr().cast()
    }
}

impl<const N: usize> core::fmt::Write for CBuf<N> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = N.saturating_sub(1).saturating_sub(self.len);
        let n = s.len().min(room);
        if let (Some(dst), Some(src)) = (
            self.buf.get_mut(self.len..self.len + n),
            s.as_bytes().get(..n),
        ) {
            dst.copy_from_slice(src);
            self.len += n;
        }
        if n < s.len() {
            Err(core::fmt::Error)
        } else {
            Ok(())
        }
    }
}
