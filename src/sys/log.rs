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
    let mut buf = Buf::<96>::new();
    let _ = core::fmt::write(
        &mut buf,
        format_args!("nf_ct_{helper}: dropping packet: {msg}"),
    );
    let s = buf.as_bytes();
    // SAFETY: `s` is readable for `s.len()` bytes; the helper prints them with `%.*s`.
    unsafe { bindings::rct_helper_log(s.as_ptr().cast(), s.len()) }
}

/// A fixed buffer that keeps what fits of what is written to it.
struct Buf<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Buf<N> {
    fn new() -> Self {
        Self {
            bytes: [0; N],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
}

impl<const N: usize> core::fmt::Write for Buf<N> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            let Some(slot) = self.bytes.get_mut(self.len) else {
                break;
            };
            *slot = b;
            self.len += 1;
        }
        Ok(())
    }
}
