// SPDX-License-Identifier: GPL-2.0

//! The tracking core: per-netns state and what each hook does with a packet.
//!
//! Mirrors `net/netfilter/nf_conntrack_core.c`. Hooks reach this through
//! [`crate::netfilter`]; everything here is safe Rust over the wrapper layer.

use crate::netfilter::{Defrag, HookRegistration};
use crate::netns::Net;
use crate::percpu::PerCpuCounters;
use crate::proc::ProcEntry;
use crate::stat::{Stat, StatRow, STAT_COUNT};
use crate::tuple::{self, PacketBytes};
use kernel::prelude::*;

/// The L3 family of a hook (`NFPROTO_IPV4` or `NFPROTO_IPV6`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
}

impl Family {
    /// From a hook state's `pf`.
    pub(crate) fn from_pf(pf: u8) -> Option<Self> {
        match u32::from(pf) {
            crate::bindings::NFPROTO_IPV4 => Some(Self::Ipv4),
            crate::bindings::NFPROTO_IPV6 => Some(Self::Ipv6),
            _ => None,
        }
    }
}

/// The netfilter hook point a packet is at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hook {
    /// `NF_INET_PRE_ROUTING`.
    PreRouting,
    /// `NF_INET_LOCAL_IN`.
    LocalIn,
    /// `NF_INET_LOCAL_OUT`.
    LocalOut,
    /// `NF_INET_POST_ROUTING`.
    PostRouting,
}

impl Hook {
    /// From a hook state's `hook` (`enum nf_inet_hooks`); FORWARD is not one of ours.
    pub(crate) fn from_raw(hook: u8) -> Option<Self> {
        match u32::from(hook) {
            crate::bindings::nf_inet_hooks_NF_INET_PRE_ROUTING => Some(Self::PreRouting),
            crate::bindings::nf_inet_hooks_NF_INET_LOCAL_IN => Some(Self::LocalIn),
            crate::bindings::nf_inet_hooks_NF_INET_LOCAL_OUT => Some(Self::LocalOut),
            crate::bindings::nf_inet_hooks_NF_INET_POST_ROUTING => Some(Self::PostRouting),
            _ => None,
        }
    }
}

/// Which of the three conntrack hook functions runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HookRole {
    /// `nf_conntrack_in`: PRE_ROUTING and LOCAL_OUT, at `NF_IP_PRI_CONNTRACK`.
    Track,
    /// Helpers: POST_ROUTING and LOCAL_IN, at `NF_IP_PRI_CONNTRACK_HELPER`.
    Helper,
    /// `nf_confirm`: POST_ROUTING and LOCAL_IN, at `NF_IP_PRI_CONNTRACK_CONFIRM`.
    Confirm,
}

/// A hook's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// `NF_ACCEPT`.
    Accept,
    /// `NF_DROP`.
    #[allow(dead_code)]
    Drop,
}

/// The module's state in one netns: what the hooks and `/proc` read.
pub(crate) struct NetState {
    stats: PerCpuCounters<STAT_COUNT>,
}

impl NetState {
    /// Fresh state with zeroed statistics.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            stats: PerCpuCounters::new()?,
        })
    }

    fn count(&self, stat: Stat) {
        self.stats.inc(stat as usize);
    }

    /// Counts a packet that could not be tracked.
    pub(crate) fn count_invalid(&self) {
        self.count(Stat::Invalid);
    }

    /// One CPU's statistics, or `None` if the CPU is not possible.
    pub(crate) fn stats_of_cpu(&self, cpu: u32) -> Option<StatRow> {
        self.stats.read_cpu(cpu)
    }

    /// The statistics summed over all CPUs.
    pub(crate) fn stats_sum(&self) -> StatRow {
        self.stats.sum()
    }

    /// Number of entries in the table (the `entries` statistic).
    pub(crate) fn entry_count(&self) -> u32 {
        0
    }

    /// Handles a packet at one of the module's hooks. `nhoff` is the network header's
    /// offset in `pkt`. Packets are never dropped for being malformed: like nf_conntrack,
    /// they are counted as `invalid` and passed on.
    pub(crate) fn hook<P: PacketBytes + ?Sized>(
        &self,
        role: HookRole,
        family: Family,
        hook: Hook,
        pkt: &P,
        nhoff: usize,
    ) -> Verdict {
        let stat = match (role, hook) {
            (HookRole::Track, Hook::PreRouting) => Stat::InPreRouting,
            (HookRole::Track, Hook::LocalOut) => Stat::InLocalOut,
            (HookRole::Helper, Hook::PostRouting) => Stat::HelperPostRouting,
            (HookRole::Helper, Hook::LocalIn) => Stat::HelperLocalIn,
            (HookRole::Confirm, Hook::PostRouting) => Stat::ConfirmPostRouting,
            (HookRole::Confirm, Hook::LocalIn) => Stat::ConfirmLocalIn,
            // Not a registration of ours: leave the packet alone.
            _ => return Verdict::Accept,
        };
        self.count(stat);
        if role == HookRole::Track && self.track(family, pkt, nhoff).is_err() {
            self.count(Stat::Invalid);
        }
        Verdict::Accept
    }

    /// `nf_conntrack_in`: finds the packet's tuple. Entries come with the connection table.
    fn track<P: PacketBytes + ?Sized>(
        &self,
        family: Family,
        pkt: &P,
        nhoff: usize,
    ) -> Result<tuple::Parsed, tuple::ParseError> {
        match family {
            Family::Ipv4 => tuple::parse_ipv4(pkt, nhoff),
            Family::Ipv6 => tuple::parse_ipv6(pkt, nhoff),
        }
    }
}

/// What a netns registers, in drop order: hooks first, so that nothing runs while the
/// `/proc` files and defragmentation go away.
pub(crate) struct NetRegistrations {
    _hooks: HookRegistration,
    _proc_table: ProcEntry,
    _proc_stat: ProcEntry,
    _defrag_ipv6: Defrag,
    _defrag_ipv4: Defrag,
}

impl NetRegistrations {
    /// Sets up `net`; on failure, whatever was set up is undone.
    pub(crate) fn new(net: &Net) -> Result<Self> {
        let defrag_ipv4 = Defrag::enable(net, Family::Ipv4)?;
        let defrag_ipv6 = Defrag::enable(net, Family::Ipv6)?;
        let proc_stat = ProcEntry::stat(net)?;
        let proc_table = ProcEntry::table(net)?;
        let hooks = HookRegistration::new(net)?;
        Ok(Self {
            _hooks: hooks,
            _proc_table: proc_table,
            _proc_stat: proc_stat,
            _defrag_ipv6: defrag_ipv6,
            _defrag_ipv4: defrag_ipv4,
        })
    }
}
