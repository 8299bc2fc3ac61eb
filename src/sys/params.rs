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

/// The `ftp_ports=` and `tftp_ports=` parameters (zeroes: unused slots).
pub(crate) fn helper_ports() -> crate::proto::helper::HelperPorts {
    const N: usize = bindings::RCT_HELPER_MAX_PORTS as usize;
    let mut ftp = [0u16; N];
    let mut tftp = [0u16; N];
    // SAFETY: Both arrays hold `RCT_HELPER_MAX_PORTS` ports, as the helper writes.
    unsafe { bindings::rct_helper_ports(ftp.as_mut_ptr(), tftp.as_mut_ptr()) };
    crate::proto::helper::HelperPorts::from_params(&ftp, &tftp)
}

/// The `ftp_loose` parameter (writable at run time, as nf_conntrack_ftp's `loose`).
pub(crate) fn ftp_loose() -> bool {
    // SAFETY: FFI call without preconditions (reads the parameter once).
    unsafe { bindings::rct_ftp_loose_param() }
}
