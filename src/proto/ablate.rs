// SPDX-License-Identifier: GPL-2.0

//! Experimental builds for the benchmark's ablation table: each one removes one suspected
//! cost from the packet path, so that `make bench` (`BENCH_ABLATE=...`) can measure what
//! it saves beside the real module, in the same run. Selected at build time with
//! `RCT_ABLATE=<name>` (`--cfg rct_ablate="<name>"`); a production build has none, and
//! every constant here is `false`, so the branches on them compile away.
//!
//! They change behaviour (that is the point): never load one for anything but a benchmark.

/// `noop_hooks`: every hook returns `NF_ACCEPT` at once, before it reads anything: what
/// is left is the cost of having the module's hooks registered and called.
pub(crate) const NOOP_HOOKS: bool = cfg!(rct_ablate = "noop_hooks");

/// `entry_only`: every hook returns `NF_ACCEPT` once it has its family, hook point and
/// netns state: the cost of the hooks' common entry.
pub(crate) const ENTRY_ONLY: bool = cfg!(rct_ablate = "entry_only");

/// `parse_only`: the tracking hook parses the packet, then stops: no lookup.
pub(crate) const PARSE_ONLY: bool = cfg!(rct_ablate = "parse_only");

/// `no_checksum`: transport checksums are not verified (as `nf_conntrack_checksum=0`).
pub(crate) const NO_CHECKSUM: bool = cfg!(rct_ablate = "no_checksum");

/// `no_helper_hook`: the helper hooks (`NF_IP_PRI_CONNTRACK_HELPER`) are not registered.
pub(crate) const NO_HELPER_HOOK: bool = cfg!(rct_ablate = "no_helper_hook");

/// `no_hook_stats`: the per-hook packet counters are not counted.
pub(crate) const NO_HOOK_STATS: bool = cfg!(rct_ablate = "no_hook_stats");

/// `default_settings`: the trackers read the default settings instead of the netns'
/// snapshot of its sysctls.
pub(crate) const DEFAULT_SETTINGS: bool = cfg!(rct_ablate = "default_settings");

/// `lookup_only`: the tracking hook parses and looks the packet up, then stops: no
/// protocol tracker, no refresh.
pub(crate) const LOOKUP_ONLY: bool = cfg!(rct_ablate = "lookup_only");

/// The names, for the benchmark's checks.
#[allow(dead_code)]
pub(crate) const NAMES: &[&str] = &[
    "noop_hooks",
    "entry_only",
    "parse_only",
    "no_checksum",
    "no_helper_hook",
    "no_hook_stats",
    "default_settings",
    "lookup_only",
];
