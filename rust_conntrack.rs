// SPDX-License-Identifier: GPL-2.0

//! Connection tracking for netfilter, in Rust.
//!
//! This is a Rust implementation of the kernel's nf_conntrack
//! (`net/netfilter/nf_conntrack_core.c`), built to run beside it: it keeps its own table,
//! never touches `skb->_nfct`, and names everything `rust_conntrack`.
//!
//! Supported so far:
//! - per network namespace: the tracking hooks for IPv4 and IPv6 at nf_conntrack's
//!   priorities (PRE_ROUTING and LOCAL_OUT at -200, helpers at 300 and confirm at `INT_MAX`
//!   on POST_ROUTING and LOCAL_IN), with defragmentation enabled;
//! - one hash table of `hlist_nulls` chains read under RCU, entries from a type-stable slab,
//!   per-CPU unconfirmed lists, a collector, early drop;
//! - trackers for TCP (state machine and windows), UDP, UDP-Lite, ICMP, ICMPv6, SCTP, DCCP,
//!   GRE and any other protocol generically;
//! - helpers and expectations (FTP, TFTP), accounting, timestamps, the sysctls;
//! - flows translated by nf_nat beside it, forwarded and local traffic, loopback;
//! - `/proc/net/rust_conntrack` in nf_conntrack's line format and
//!   `/proc/net/stat/rust_conntrack` with its columns plus packets per hook.
//!
//! Layout: `src/proto/` is the protocol layer, pure Rust with no kernel dependency that the
//! host crate (`host/`) also builds for unit tests and fuzzing; `src/conntrack/` is the core,
//! safe Rust; `src/sys/` wraps the C API and holds the only `unsafe` code; `src/kunit/` holds
//! the KUnit cases, built into the test module `rust_conntrack_test.ko` only.

use conntrack::RustConntrack;
use kernel::prelude::*;

#[path = "src/conntrack/mod.rs"]
mod conntrack;
#[cfg(rct_kunit)]
#[path = "src/kunit/mod.rs"]
mod kunit;
#[path = "src/proto/mod.rs"]
mod proto;
#[path = "src/sys/mod.rs"]
mod sys;

module! {
    type: RustConntrack,
    name: "rust_conntrack",
    author: "rust_conntrack developers",
    description: "Connection tracking (nf_conntrack) in Rust",
    license: "GPL",
}
