// SPDX-License-Identifier: GPL-2.0

//! Fuzzes the FTP helper: `help` on an arbitrary payload, direction, sequence number and
//! record of line starts, the address parsers and the expectation's `/proc` line.
//! Invariant violations panic inside `rust_conntrack_host::fuzz_ftp`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rust_conntrack_host::fuzz_ftp(data);
});
