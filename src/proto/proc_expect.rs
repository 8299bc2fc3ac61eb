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

use crate::proto::expect::{NF_CT_EXPECT_INACTIVE, NF_CT_EXPECT_PERMANENT, NF_CT_EXPECT_USERSPACE};

/// What `exp_seq_show` reads from one expectation.
#[derive(Clone, Copy)]
pub(crate) struct ExpectSnapshot<'a> {
    /// `expect->tuple`, printed as it is (an expected source port left free by the mask
    /// is 0 in the tuple).
    pub(crate) tuple: Tuple,
    /// [`crate::proto::expect::expect_secs`]; printed as 0 when not positive.
    pub(crate) secs: i32,
    /// `expect->flags` (`NF_CT_EXPECT_*`).
    pub(crate) flags: u32,
    /// `expect->helper`, if it has one: its name (`ftp`, `ftp-2121`).
    pub(crate) helper: Option<&'a dyn fmt::Display>,
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
