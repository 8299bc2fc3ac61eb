// SPDX-License-Identifier: GPL-2.0

//! Fuzzes the packet parsers and everything downstream of them: ICMP error classification,
//! inner tuples, inversion, the UDP/UDP-Lite header checks, the protocol trackers, `/proc`
//! text and the jiffies helpers. Invariant violations panic inside
//! `rust_conntrack_host::fuzz_parse`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rust_conntrack_host::fuzz_parse(data);
});
