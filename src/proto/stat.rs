// SPDX-License-Identifier: GPL-2.0

//! Per-CPU statistics and their `/proc/net/stat/rust_conntrack` rows.
//!
//! The columns are `/proc/net/stat/nf_conntrack`'s (`ct_cpu_seq_show` in
//! `net/netfilter/nf_conntrack_standalone.c`), so tools that read that file read this one;
//! the columns after `search_restart` count packets seen by each of the module's hooks and
//! new entries reaped because their packet never reached the confirm hook, and show how many
//! new entries wait for it on each CPU.

use core::fmt;

/// One per-CPU counter. The first group mirrors `struct ip_conntrack_stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum Stat {
    /// A lookup found an entry.
    Found,
    /// A packet could not be tracked (malformed, or rejected by its protocol tracker).
    Invalid,
    /// An entry was inserted into the table.
    Insert,
    /// An entry could not be inserted (clash, or dying).
    InsertFailed,
    /// A clash between two new entries was resolved.
    ClashResolve,
    /// A packet was dropped (table full, or its protocol tracker said so).
    Drop,
    /// An unassured entry was evicted to make room.
    EarlyDrop,
    /// An ICMP error could not be matched (`icmp_error`).
    IcmpError,
    /// An expected connection arrived.
    ExpectNew,
    /// An expectation was created.
    ExpectCreate,
    /// An expectation was removed.
    ExpectDelete,
    /// A lookup restarted because it ended in another bucket's chain.
    SearchRestart,
    /// A hash chain was too long to insert into.
    ChainTooLong,
    /// Packets seen by the PRE_ROUTING tracking hook.
    InPreRouting,
    /// Packets seen by the LOCAL_OUT tracking hook.
    InLocalOut,
    /// Packets seen by the POST_ROUTING helper hook.
    HelperPostRouting,
    /// Packets seen by the LOCAL_IN helper hook.
    HelperLocalIn,
    /// Packets seen by the POST_ROUTING confirm hook.
    ConfirmPostRouting,
    /// Packets seen by the LOCAL_IN confirm hook.
    ConfirmLocalIn,
    /// New entries whose packet never reached the confirm hook, reaped.
    UnconfirmedReaped,
}

/// Number of per-CPU counters.
pub(crate) const STAT_COUNT: usize = Stat::UnconfirmedReaped as usize + 1;

/// The per-CPU counters of one CPU, or their sum.
pub(crate) type StatRow = [u32; STAT_COUNT];

/// The header line: nf_conntrack's, then the hook columns.
pub(crate) const STAT_HEADER: &str = "entries  clashres found new invalid ignore delete \
chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create \
expect_delete search_restart  in_pre_routing in_local_out helper_post_routing \
helper_local_in confirm_post_routing confirm_local_in unconfirmed_reaped unconfirmed\n";

/// Writes one CPU's row as nf_conntrack does (`%08x`, with its double spaces), then
/// the hook columns and the CPU's `unconfirmed` entries. `new`, `ignore` and `delete` are
/// always 0, as in 6.12.
pub(crate) fn write_stat_row(
    w: &mut impl fmt::Write,
    entries: u32,
    row: &StatRow,
    unconfirmed: u32,
) -> fmt::Result {
    let s = |stat: Stat| row[stat as usize];
    write!(
        w,
        "{:08x}  {:08x} {:08x} {:08x} {:08x} {:08x} {:08x} {:08x} \
         {:08x} {:08x} {:08x} {:08x} {:08x}  {:08x} {:08x} {:08x} {:08x}",
        entries,
        s(Stat::ClashResolve),
        s(Stat::Found),
        0,
        s(Stat::Invalid),
        0,
        0,
        s(Stat::ChainTooLong),
        s(Stat::Insert),
        s(Stat::InsertFailed),
        s(Stat::Drop),
        s(Stat::EarlyDrop),
        s(Stat::IcmpError),
        s(Stat::ExpectNew),
        s(Stat::ExpectCreate),
        s(Stat::ExpectDelete),
        s(Stat::SearchRestart),
    )?;
    writeln!(
        w,
        "  {:08x} {:08x} {:08x} {:08x} {:08x} {:08x} {:08x} {:08x}",
        s(Stat::InPreRouting),
        s(Stat::InLocalOut),
        s(Stat::HelperPostRouting),
        s(Stat::HelperLocalIn),
        s(Stat::ConfirmPostRouting),
        s(Stat::ConfirmLocalIn),
        s(Stat::UnconfirmedReaped),
        unconfirmed,
    )
}
