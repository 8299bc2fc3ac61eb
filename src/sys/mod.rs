// SPDX-License-Identifier: GPL-2.0

//! The wrapper layer: the only code that sees the C API (`bindings`) and the only `unsafe`.
//!
//! Thin, typed wrappers in the manner of `rust/kernel`, each over one part of the C API:
//!
//! | file | wraps |
//! |---|---|
//! | `bindings`, `glue.c` | the generated bindings; C helpers for `static inline` functions and macros |
//! | `netns` | `struct net`, the pernet operations |
//! | `netfilter` | hook registration, defragmentation |
//! | `skb` | `struct sk_buff`, read-only; checksums; nf_conntrack's `skb->_nfct`, read-only |
//! | `proc` | `/proc` files and `seq_file` |
//! | `percpu` | per-CPU counters and data |
//! | `rcu` | RCU read-side sections |
//! | `sync` | bucket locks, bottom halves, the entry lock |
//! | `hlist_nulls` | `hlist_nulls` chains: the hash table and the per-CPU lists as types |
//! | `refcount` | `refcount_t` and counted references to type-stable objects |
//! | `slab` | `SLAB_TYPESAFE_BY_RCU` caches |
//! | `sysctl` | the sysctls under `net/rust_conntrack`, per netns (`register_net_sysctl_sz`) |
//! | `work` | the module-wide state and the collector's deferred work on it |
//! | `time`, `random`, `params`, `log` | jiffies, random numbers, module parameters, rate-limited messages |

// Private to this layer: nothing above it can name the C API. The KUnit cases, built into
// the test module only, drive it directly.
#[cfg(not(rct_kunit))]
mod bindings;
#[cfg(rct_kunit)]
pub(crate) mod bindings;
pub(crate) mod hlist_nulls;
pub(crate) mod log;
pub(crate) mod netfilter;
pub(crate) mod netns;
pub(crate) mod params;
pub(crate) mod percpu;
pub(crate) mod proc;
pub(crate) mod random;
pub(crate) mod rcu;
pub(crate) mod refcount;
pub(crate) mod skb;
pub(crate) mod slab;
pub(crate) mod sync;
pub(crate) mod sysctl;
pub(crate) mod time;
pub(crate) mod work;
