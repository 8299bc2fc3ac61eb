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

// `conn`, `proc_line`, `proto_*`, `stat` and `tuple` are pure Rust shared with the host crate
// (`host/`), where every item is tested; items the module does not use yet (NAT status bits,
// accounting and TCP state columns) serve the trackers still to come.

#[path = "src/bindings.rs"]
mod bindings;
#[allow(dead_code)] // Shared pure code; see below.
#[path = "src/conn.rs"]
mod conn;
#[path = "src/conntrack.rs"]
mod conntrack;
#[path = "src/entry.rs"]
mod entry;
#[cfg(CONFIG_KUNIT)]
#[allow(dead_code)] // Shared pure code; see below.
#[path = "src/handoff.rs"]
mod handoff;
#[cfg(rct_kunit)]
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
#[allow(dead_code)] // Shared pure code; see below.
#[path = "src/proc_line.rs"]
mod proc_line;
#[path = "src/proto_generic.rs"]
mod proto_generic;
#[allow(dead_code)] // Shared pure code; see below.
#[path = "src/proto_icmp.rs"]
mod proto_icmp;
#[allow(dead_code)] // Shared pure code; see below.
#[path = "src/proto_tcp.rs"]
mod proto_tcp;
#[allow(dead_code)] // Shared pure code; see below.
#[path = "src/proto_udp.rs"]
mod proto_udp;
#[path = "src/rcu.rs"]
mod rcu;
#[path = "src/skb.rs"]
mod skb;
#[path = "src/slab.rs"]
mod slab;
#[path = "src/stat.rs"]
mod stat;
#[path = "src/table.rs"]
mod table;
#[allow(dead_code)] // Shared pure code; see below.
#[path = "src/tuple.rs"]
mod tuple;
#[path = "src/unconfirmed.rs"]
mod unconfirmed;

module! {
    type: RustConntrack,
    name: "rust_conntrack",
    author: "rust_conntrack developers",
    description: "Connection tracking (nf_conntrack) in Rust",
    license: "GPL",
}

// Fields drop in order: every netns (hooks, /proc, entries) goes before the table.
struct RustConntrack {
    _pernet: netns::PernetRegistration,
    _global: table::GlobalRegistration,
}

impl kernel::Module for RustConntrack {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let global = table::GlobalRegistration::new()?;
        let pernet = netns::PernetRegistration::new()?;
        if let Some(g) = table::global() {
            pr_info!(
                "loaded: {} buckets, max {} entries per netns, entry {} bytes (slab object {})\n",
                g.table.size(),
                g.max,
                core::mem::size_of::<entry::Conn>(),
                g.cache.object_size()
            );
        }
        Ok(Self {
            _pernet: pernet,
            _global: global,
        })
    }
}

impl Drop for RustConntrack {
    fn drop(&mut self) {
        pr_info!("unloading\n");
    }
}
