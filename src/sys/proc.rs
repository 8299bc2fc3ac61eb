// SPDX-License-Identifier: GPL-2.0

//! `/proc/net/rust_conntrack`, `/proc/net/rust_conntrack_expect` and
//! `/proc/net/stat/rust_conntrack`, per network namespace.
//!
//! C headers: [`include/linux/proc_fs.h`](srctree/include/linux/proc_fs.h),
//! [`include/linux/seq_file.h`](srctree/include/linux/seq_file.h)
//!
//! Created like nf_conntrack's files (`nf_conntrack_standalone_init_proc`): the table
//! 0440 in `/proc/net`, the statistics 0444 in `/proc/net/stat`, one row per possible CPU.

use crate::conntrack::net::clock_now;
use crate::proto::stat::{write_stat_row, STAT_HEADER};
use crate::sys::bindings;
use crate::sys::netns::Net;
use crate::sys::percpu::nr_cpu_ids;
use core::fmt;
use core::ptr::NonNull;
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::types::Opaque;

/// `SEQ_START_TOKEN`: the iterator value of a seq_file's header line.
const SEQ_START_TOKEN: *mut c_void = 1 as *mut c_void;

/// A seq_file being shown.
///
/// # Invariants
///
/// The wrapped `seq_file` is valid for as long as the reference exists, and is only used
/// from its own `show` callback's thread.
#[repr(transparent)]
struct SeqFile(Opaque<bindings::seq_file>);

impl SeqFile {
    /// # Safety
    ///
    /// `ptr` must be a seq_file passed to one of its callbacks, valid for `'a`.
    unsafe fn from_raw<'a>(ptr: *mut bindings::seq_file) -> &'a Self {
        // SAFETY: Transparent wrapper; validity is guaranteed by the caller.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// The netns of a `proc_create_net` file.
    fn net(&self) -> &Net {
        // SAFETY: All our seq_files are created with `proc_create_net_data`, whose private
        // data is a `seq_net_private` holding a reference on the netns for as long as the
        // file is open, which covers `self`'s lifetime.
        unsafe { Net::from_raw(bindings::rct_seq_file_net(self.0.get())) }
    }
}

impl fmt::Write for &SeqFile {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // An overflow is recorded in the seq_file, which retries `show` with a larger buffer.
        // SAFETY: `self` is valid (type invariant) and `s` is readable for `s.len()` bytes.
        unsafe { bindings::seq_write(self.0.get(), s.as_ptr().cast(), s.len()) };
        Ok(())
    }
}

/// A `/proc` file in a netns directory, removed on drop.
///
/// # Invariants
///
/// `parent` is a netns `/proc` directory holding an entry `name` created by `self`; the
/// directory outlives `self` (it goes away with the netns, after pernet `exit`).
pub(crate) struct ProcEntry {
    name: &'static CStr,
    parent: NonNull<bindings::proc_dir_entry>,
}

impl ProcEntry {
    fn create(
        name: &'static CStr,
        mode: u16,
        parent: *mut bindings::proc_dir_entry,
        ops: &'static bindings::seq_operations,
    ) -> Result<Self> {
        let parent = NonNull::new(parent).ok_or(ENOENT)?;
        // SAFETY: `name` is NUL-terminated and static, `parent` is a live netns directory and
        // `ops` is static. `seq_net_private` is what `proc_create_net` expects as state.
        let pde = unsafe {
            bindings::proc_create_net_data(
                name.as_char_ptr(),
                mode,
                parent.as_ptr(),
                ops,
                core::mem::size_of::<bindings::seq_net_private>() as u32,
                core::ptr::null_mut(),
            )
        };
        if pde.is_null() {
            return Err(ENOMEM);
        }
        // INVARIANT: created `name` in `parent`.
        Ok(Self { name, parent })
    }

    /// Creates `/proc/net/rust_conntrack` in `net`.
    pub(crate) fn table(net: &Net) -> Result<Self> {
        // SAFETY: `net` is alive.
        let dir = unsafe { bindings::rct_proc_net(net.as_ptr()) };
        Self::create(kernel::c_str!("rust_conntrack"), 0o440, dir, &TABLE_SEQ_OPS)
    }

    /// Creates `/proc/net/rust_conntrack_expect` in `net` (0440, as `nf_conntrack_expect`).
    pub(crate) fn expect(net: &Net) -> Result<Self> {
        // SAFETY: `net` is alive.
        let dir = unsafe { bindings::rct_proc_net(net.as_ptr()) };
        Self::create(
            kernel::c_str!("rust_conntrack_expect"),
            0o440,
            dir,
            &EXPECT_SEQ_OPS,
        )
    }

    /// Creates `/proc/net/stat/rust_conntrack` in `net`.
    pub(crate) fn stat(net: &Net) -> Result<Self> {
        // SAFETY: `net` is alive.
        let dir = unsafe { bindings::rct_proc_net_stat(net.as_ptr()) };
        Self::create(kernel::c_str!("rust_conntrack"), 0o444, dir, &STAT_SEQ_OPS)
    }
}

impl Drop for ProcEntry {
    fn drop(&mut self) {
        // SAFETY: The entry exists in `parent`, which is alive (type invariant).
        // `remove_proc_entry` waits for running readers before it returns.
        unsafe { bindings::remove_proc_entry(self.name.as_char_ptr(), self.parent.as_ptr()) };
    }
}

// The connection table, one bucket per iterator step: `show` prints a whole bucket under
// its lock, so however the table changes meanwhile, and however often seq_file restarts a
// step to grow its buffer, an entry is printed at most once per read, unless the table is
// resized during the read (entries then change buckets: one may be printed twice or missed,
// as with 6.12's iterator). Steps go to the next bucket that has entries (the position is the
// bucket index): a table of a million buckets is read without a million empty steps. The
// iterator value is the bucket index plus one (NULL ends).
static TABLE_SEQ_OPS: bindings::seq_operations = bindings::seq_operations {
    start: Some(table_seq_start),
    stop: Some(seq_stop_nothing),
    next: Some(table_seq_next),
    show: Some(table_seq_show),
};

/// The iterator value for the first bucket with entries at or after `*pos`, which moves
/// there, or NULL past the last.
fn table_seq_at(pos: &mut i64) -> *mut c_void {
    let Some(g) = crate::conntrack::table::global() else {
        return core::ptr::null_mut();
    };
    let Ok(from) = u32::try_from(*pos) else {
        return core::ptr::null_mut();
    };
    match g.table.next_nonempty(from) {
        Some(b) => {
            *pos = i64::from(b);
            // CAST: an opaque iterator value, never dereferenced (see `table_seq_show`).
            (b as usize + 1) as *mut c_void
        }
        None => core::ptr::null_mut(),
    }
}

/// seq_file `start` of the table.
///
/// # Safety
///
/// Called by the seq_file core with the file being read and a valid position.
unsafe extern "C" fn table_seq_start(_seq: *mut bindings::seq_file, pos: *mut i64) -> *mut c_void {
    // SAFETY: seq_file passes a valid position.
    table_seq_at(unsafe { &mut *pos })
}

/// seq_file `next` of the table.
///
/// # Safety
///
/// Called by the seq_file core with the file being read and a valid position.
unsafe extern "C" fn table_seq_next(
    _seq: *mut bindings::seq_file,
    _v: *mut c_void,
    pos: *mut i64,
) -> *mut c_void {
    // SAFETY: seq_file passes a valid position.
    let pos = unsafe { &mut *pos };
    *pos += 1;
    table_seq_at(pos)
}

/// seq_file `show` of the table.
///
/// # Safety
///
/// Called by the seq_file core with the file being read.
unsafe extern "C" fn table_seq_show(seq: *mut bindings::seq_file, v: *mut c_void) -> c_int {
    // SAFETY: seq_file passes the file being shown.
    let seq = unsafe { SeqFile::from_raw(seq) };
    let (Some(g), Some(ct)) = (crate::conntrack::table::global(), seq.net().ct_state()) else {
        return 0;
    };
    // CAST: `v` is a value made by `table_seq_at`: bucket index + 1.
    let Ok(bucket) = u32::try_from((v as usize).wrapping_sub(1)) else {
        return 0;
    };
    let mut out = seq;
    ct.show_bucket(&g.table, bucket, &clock_now(), &mut out);
    0
}

// The expectations, one bucket of the netns' expectation table per step, printed under the
// table's lock (as the connection table). The iterator value is the bucket index plus one.
static EXPECT_SEQ_OPS: bindings::seq_operations = bindings::seq_operations {
    start: Some(expect_seq_start),
    stop: Some(seq_stop_nothing),
    next: Some(expect_seq_next),
    show: Some(expect_seq_show),
};

/// The iterator value for expectation bucket `pos` of `seq`'s netns, or NULL past the last.
fn expect_seq_at(seq: &SeqFile, pos: i64) -> *mut c_void {
    let size = seq.net().ct_state().map_or(0, |ct| ct.expect_buckets());
    match u32::try_from(pos) {
        // CAST: an opaque iterator value, never dereferenced (see `expect_seq_show`).
        Ok(b) if b < size => (b as usize + 1) as *mut c_void,
        _ => core::ptr::null_mut(),
    }
}

/// seq_file `start` of the expectations.
///
/// # Safety
///
/// Called by the seq_file core with the file being read and a valid position.
unsafe extern "C" fn expect_seq_start(seq: *mut bindings::seq_file, pos: *mut i64) -> *mut c_void {
    // SAFETY: seq_file passes the file being read and a valid position.
    let (seq, pos) = unsafe { (SeqFile::from_raw(seq), *pos) };
    expect_seq_at(seq, pos)
}

/// seq_file `next` of the expectations.
///
/// # Safety
///
/// Called by the seq_file core with the file being read and a valid position.
unsafe extern "C" fn expect_seq_next(
    seq: *mut bindings::seq_file,
    _v: *mut c_void,
    pos: *mut i64,
) -> *mut c_void {
    // SAFETY: seq_file passes the file being read and a valid position.
    let (seq, pos) = unsafe { (SeqFile::from_raw(seq), &mut *pos) };
    *pos += 1;
    expect_seq_at(seq, *pos)
}

/// seq_file `show` of the expectations.
///
/// # Safety
///
/// Called by the seq_file core with the file being read.
unsafe extern "C" fn expect_seq_show(seq: *mut bindings::seq_file, v: *mut c_void) -> c_int {
    // SAFETY: seq_file passes the file being shown.
    let seq = unsafe { SeqFile::from_raw(seq) };
    let Some(ct) = seq.net().ct_state() else {
        return 0;
    };
    // CAST: `v` is a value made by `expect_seq_at`: bucket index + 1.
    let Ok(bucket) = u32::try_from((v as usize).wrapping_sub(1)) else {
        return 0;
    };
    let mut out = seq;
    ct.show_expect_bucket(bucket, &clock_now(), &mut out);
    0
}

/// seq_file `stop`: nothing to release.
///
/// # Safety
///
/// Called by the seq_file core with the file being read.
unsafe extern "C" fn seq_stop_nothing(_seq: *mut bindings::seq_file, _v: *mut c_void) {}

// The statistics: a header, then one row per possible CPU. The iterator value encodes the
// CPU number plus 2 (0 ends, 1 is the header), like nf_conntrack's `ct_cpu_seq_*`.
static STAT_SEQ_OPS: bindings::seq_operations = bindings::seq_operations {
    start: Some(stat_seq_start),
    stop: Some(seq_stop_nothing),
    next: Some(stat_seq_next),
    show: Some(stat_seq_show),
};

/// The iterator value for the first possible CPU at or after `*pos - 1`, advancing `*pos`.
fn stat_seq_cpu_from(pos: &mut i64) -> *mut c_void {
    let first = u32::try_from(*pos - 1).unwrap_or(u32::MAX);
    for cpu in first..nr_cpu_ids() {
        // SAFETY: FFI call without preconditions.
        if unsafe { bindings::rct_cpu_possible(cpu) } {
            *pos = i64::from(cpu) + 1;
            // CAST: an opaque iterator value, never dereferenced (see `stat_seq_show`).
            return (cpu as usize + 2) as *mut c_void;
        }
    }
    *pos += 1;
    core::ptr::null_mut()
}

/// seq_file `start` of the statistics.
///
/// # Safety
///
/// Called by the seq_file core with the file being read and a valid position.
unsafe extern "C" fn stat_seq_start(_seq: *mut bindings::seq_file, pos: *mut i64) -> *mut c_void {
    // SAFETY: seq_file passes a valid position.
    let pos = unsafe { &mut *pos };
    if *pos == 0 {
        return SEQ_START_TOKEN;
    }
    stat_seq_cpu_from(pos)
}

/// seq_file `next` of the statistics.
///
/// # Safety
///
/// Called by the seq_file core with the file being read and a valid position.
unsafe extern "C" fn stat_seq_next(
    _seq: *mut bindings::seq_file,
    _v: *mut c_void,
    pos: *mut i64,
) -> *mut c_void {
    // SAFETY: seq_file passes a valid position.
    let pos = unsafe { &mut *pos };
    *pos += 1;
    stat_seq_cpu_from(pos)
}

/// seq_file `show` of the statistics.
///
/// # Safety
///
/// Called by the seq_file core with the file being read and a value from `start`/`next`.
unsafe extern "C" fn stat_seq_show(seq: *mut bindings::seq_file, v: *mut c_void) -> c_int {
    // SAFETY: seq_file passes the file being shown.
    let seq = unsafe { SeqFile::from_raw(seq) };
    let mut out = seq;
    if v == SEQ_START_TOKEN {
        let _ = fmt::Write::write_str(&mut out, STAT_HEADER);
        return 0;
    }
    let Some(ct) = seq.net().ct_state() else {
        return 0;
    };
    // CAST: `v` is a value made by `stat_seq_cpu_from`: CPU number + 2.
    let Ok(cpu) = u32::try_from((v as usize).wrapping_sub(2)) else {
        return 0;
    };
    if let Some(row) = ct.stats_of_cpu(cpu) {
        let _ = write_stat_row(&mut out, ct.entry_count(), &row, ct.unconfirmed_of_cpu(cpu));
    }
    0
}
