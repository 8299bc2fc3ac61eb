// SPDX-License-Identifier: GPL-2.0

//! One line of `/proc/net/nf_conntrack_expect`, as Linux 6.12 prints it.
//!
//! C source: [`net/netfilter/nf_conntrack_expect.c`](srctree/net/netfilter/nf_conntrack_expect.c)
//! (`exp_seq_show`), with `print_tuple` of `nf_conntrack_standalone.c`.
//! C headers: [`include/uapi/linux/netfilter/nf_conntrack_common.h`](srctree/include/uapi/linux/netfilter/nf_conntrack_common.h)
//! (`NF_CT_EXPECT_*`), [`include/net/netfilter/nf_conntrack_expect.h`](srctree/include/net/netfilter/nf_conntrack_expect.h)
//! (`nf_ct_exp_is_expired`).
//!
//! In 6.12.117 an expectation's timeout is a `u32` jiffies stamp, not a timer: there is no
//! line without a timeout, and expired expectations get no line at all.
//!
//! Pure `core` code: the caller takes an [`ExpectSnapshot`] of an expectation and
//! [`write_expect_line`] formats it.

use crate::proto::tuple::{print_tuple, Tuple};
use core::fmt::{self, Write};

/// `NF_CT_EXPECT_PERMANENT`: the expectation stays after a connection matched it.
pub(crate) const NF_CT_EXPECT_PERMANENT: u32 = 0x1;
/// `NF_CT_EXPECT_INACTIVE`: not matched until activated.
pub(crate) const NF_CT_EXPECT_INACTIVE: u32 = 0x2;
/// `NF_CT_EXPECT_USERSPACE`: created through ctnetlink.
pub(crate) const NF_CT_EXPECT_USERSPACE: u32 = 0x4;
/// `NF_CT_EXPECT_DEAD`: being removed (kernel-internal, never printed).
pub(crate) const NF_CT_EXPECT_DEAD: u32 = 0x8;

/// `nf_ct_exp_is_expired`: dead, or `timeout` (jiffies) not after `now` (`nfct_time_stamp`).
/// `exp_seq_show` prints nothing for these.
pub(crate) fn expect_is_expired(flags: u32, timeout: u32, now: u32) -> bool {
    flags & NF_CT_EXPECT_DEAD != 0 || timeout.wrapping_sub(now) as i32 <= 0
}

/// `(__s32)(expect->timeout - nfct_time_stamp) / HZ`: seconds left, truncated toward zero.
/// Negative if the clock passed `timeout` since [`expect_is_expired`] was asked.
pub(crate) fn expect_secs(timeout: u32, now: u32, hz: u32) -> i32 {
    let left = timeout.wrapping_sub(now) as i32;
    // HZ is a small positive int; 0 cannot happen but must not panic.
    i32::try_from(hz)
        .ok()
        .and_then(|hz| left.checked_div(hz))
        .unwrap_or(0)
}

/// What `exp_seq_show` reads from one expectation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct ExpectSnapshot<'a> {
    /// `expect->tuple`, printed as it is (an expected source port left free by the mask
    /// is 0 in the tuple).
    pub(crate) tuple: Tuple,
    /// [`expect_secs`]; printed as 0 when not positive.
    pub(crate) secs: i32,
    /// `expect->flags` (`NF_CT_EXPECT_*`).
    pub(crate) flags: u32,
    /// The name of `expect->helper`, if it has one.
    pub(crate) helper: Option<&'a str>,
    /// That helper's `expect_policy[expect->class].name`, empty if none.
    pub(crate) policy: &'a str,
}

/// Writes the `/proc/net/nf_conntrack_expect` line of `e`, newline included, byte for byte
/// as 6.12's `exp_seq_show`:
///
/// ```text
/// %d                          seconds left, 0 if not positive
/// l3proto = %u proto=%u       the tuple's l3num and protocol
/// tuple                       print_tuple, ends in a space
/// PERMANENT,INACTIVE,USERSPACE  those flags that are set
/// [ ]helper[/policy]          the space if any flag bit at all is set
/// ```
///
/// Without a helper, the line ends right after the flags.
pub(crate) fn write_expect_line<W: Write>(w: &mut W, e: &ExpectSnapshot<'_>) -> fmt::Result {
    write!(
        w,
        "{} l3proto = {} proto={} ",
        e.secs.max(0),
        e.tuple.l3.num(),
        e.tuple.proto
    )?;
    print_tuple(w, &e.tuple)?;
    let mut delim = "";
    for (bit, name) in [
        (NF_CT_EXPECT_PERMANENT, "PERMANENT"),
        (NF_CT_EXPECT_INACTIVE, "INACTIVE"),
        (NF_CT_EXPECT_USERSPACE, "USERSPACE"),
    ] {
        if e.flags & bit != 0 {
            write!(w, "{delim}{name}")?;
            delim = ",";
        }
    }
    if let Some(helper) = e.helper {
        // 6.12 tests `expect->flags`, not whether a flag was printed.
        let sep = if e.flags != 0 { " " } else { "" };
        write!(w, "{sep}{helper}")?;
        if !e.policy.is_empty() {
            write!(w, "/{}", e.policy)?;
        }
    }
    w.write_char('\n')
}
