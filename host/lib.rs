// SPDX-License-Identifier: GPL-2.0

//! Host build of the kernel module's kernel-independent protocol code.
//!
//! The files under `../src/` that use nothing but `core` are compiled here as ordinary Rust so
//! that they can be unit tested and fuzzed with `cargo` on the build machine; the module
//! compiles the very same files into `rust_conntrack.ko`.

// Outside `cargo test` nothing in this crate calls the module code yet.
#[cfg_attr(not(test), allow(dead_code))]
#[path = "../src/tuple.rs"]
pub(crate) mod tuple;

#[cfg_attr(not(test), allow(dead_code))]
#[path = "../src/stat.rs"]
pub(crate) mod stat;

#[cfg(test)]
#[path = "tests/pkt.rs"]
mod pkt;
#[cfg(test)]
#[path = "tests/stat.rs"]
mod stat_tests;
#[cfg(test)]
#[path = "tests/tuple.rs"]
mod tuple_tests;
