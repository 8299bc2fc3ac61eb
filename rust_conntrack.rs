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
//! - tuple extraction from every packet, with malformed packets counted as `invalid`;
//! - `/proc/net/stat/rust_conntrack` with nf_conntrack's columns plus packets per hook, and
//!   `/proc/net/rust_conntrack` in nf_conntrack's line format.
//!
//! Layout: `src/bindings.rs`, `netns`, `netfilter`, `skb`, `percpu` and `proc` wrap the C
//! API (the only `unsafe` code); `conntrack` is the core; `tuple` and `stat` are pure Rust
//! that also builds on the host (`host/`) for unit tests and fuzzing.

use kernel::prelude::*;

#[path = "src/bindings.rs"]
mod bindings;
#[path = "src/conntrack.rs"]
mod conntrack;
#[cfg(CONFIG_KUNIT)]
#[path = "src/kunit.rs"]
mod kunit;
#[path = "src/netfilter.rs"]
mod netfilter;
#[path = "src/netns.rs"]
mod netns;
#[path = "src/percpu.rs"]
mod percpu;
#[path = "src/proc.rs"]
mod proc;
#[path = "src/skb.rs"]
mod skb;
#[path = "src/stat.rs"]
mod stat;
// The hooks use the packet parsers; inversion, ICMP errors and the /proc text are for the
// connection table.
#[allow(dead_code)]
#[path = "src/tuple.rs"]
mod tuple;

module! {
    type: RustConntrack,
    name: "rust_conntrack",
    author: "rust_conntrack developers",
    description: "Connection tracking (nf_conntrack) in Rust",
    license: "GPL",
}

struct RustConntrack {
    _pernet: netns::PernetRegistration,
}

impl kernel::Module for RustConntrack {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let pernet = netns::PernetRegistration::new()?;
        pr_info!("loaded: tracking IPv4 and IPv6 in every network namespace\n");
        Ok(Self { _pernet: pernet })
    }
}

impl Drop for RustConntrack {
    fn drop(&mut self) {
        pr_info!("unloading\n");
    }
}
