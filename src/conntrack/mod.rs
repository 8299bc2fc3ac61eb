// SPDX-License-Identifier: GPL-2.0

//! The core: the module's state and the data structures it tracks connections in.
//!
//! Safe Rust over the wrapper layer ([`crate::sys`]); the per-packet decisions themselves
//! are [`crate::proto::pipeline`]'s, which `net` runs on the structures here.
//!
//! | file | what | nf_conntrack |
//! |---|---|---|
//! | `net` | per-netns state: statistics, settings, what each hook runs | `nf_conntrack_core.c`, `struct nf_conntrack_net` |
//! | `table` | the hash table shared by all namespaces, early drop | `nf_conntrack_core.c` (`nf_conntrack_hash`, `__nf_conntrack_find_get`, `__nf_conntrack_confirm`, `early_drop`) |
//! | `gc` | the collector | `nf_conntrack_core.c` (`gc_worker`) |
//! | `entry` | entries and references to them | `struct nf_conn`, `nf_conntrack_alloc`, `nf_ct_put` |
//! | `unconfirmed` | new entries waiting for their confirm hook | the per-CPU `pcpu_lists` of 6.0 and earlier |
#![deny(unsafe_code)]

pub(crate) mod entry;
pub(crate) mod gc;
pub(crate) mod net;
pub(crate) mod table;
pub(crate) mod unconfirmed;

use kernel::prelude::*;

/// The module: its state for its lifetime.
// Fields drop in order: every netns (hooks, /proc, entries) goes before the table.
pub(crate) struct RustConntrack {
    _pernet: crate::sys::netns::PernetRegistration,
    _global: crate::conntrack::table::GlobalRegistration,
}

impl kernel::Module for RustConntrack {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let global = crate::conntrack::table::GlobalRegistration::new()?;
        let pernet = crate::sys::netns::PernetRegistration::new()?;
        if let Some(g) = crate::conntrack::table::global() {
            pr_info!(
                "loaded: {} buckets, max {} entries per netns, entry {} bytes (slab object {}; {} with a TCP, SCTP or DCCP state), extension {} bytes, helper part {} bytes\n",
                g.table.size(),
                g.max(),
                core::mem::size_of::<crate::conntrack::entry::Conn>(),
                g.cache.object_size(false),
                g.cache.object_size(true),
                core::mem::size_of::<crate::conntrack::entry::Ext>(),
                core::mem::size_of::<crate::conntrack::entry::Help>()
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
