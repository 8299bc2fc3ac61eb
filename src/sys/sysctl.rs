// SPDX-License-Identifier: GPL-2.0

//! The sysctls under `/proc/sys/net/rust_conntrack/`, registered per network namespace.
//!
//! C headers: [`include/linux/sysctl.h`](srctree/include/linux/sysctl.h),
//! [`include/net/net_namespace.h`](srctree/include/net/net_namespace.h)
//! (`register_net_sysctl_sz`).
//!
//! `src/sys/glue.c` builds the `ctl_table` from the descriptors here (one per
//! [`crate::proto::sysctl::sysctls`] entry, in that order) and registers it with
//! `register_net_sysctl_sz`, as `nf_conntrack_standalone_init_sysctl` registers 6.12's. Every
//! entry has the same handler: the kernel's parser reads the text into a temporary, and
//! [`rct_sysctl_read`] and [`rct_sysctl_write`] move values between it and the netns' state
//! (atomics: see [`crate::proto::sysctl`]). The table's `.data` is the netns' [`NetState`],
//! which no C code dereferences.

use crate::conntrack::net::NetState;
use crate::proto::sysctl::{sysctls, Parse, SysctlError, SYSCTL_COUNT};
use crate::sys::bindings;
use crate::sys::netns::Net;
use core::ptr::NonNull;
use kernel::ffi::{c_int, c_longlong, c_uint, c_void};
use kernel::prelude::*;

/// The errno of a refused write.
fn errno(e: SysctlError) -> c_int {
    match e {
        SysctlError::Invalid => EINVAL.to_errno(),
        SysctlError::ReadOnly => EPERM.to_errno(),
        SysctlError::NoMemory => ENOMEM.to_errno(),
    }
}

/// The sysctls registered in one netns; unregistered on drop.
///
/// # Invariants
///
/// `hdr` is the header `rct_sysctl_register` returned for a table whose `.data` is the
/// netns' [`NetState`]; the registration is dropped before that state (it is part of the
/// netns' registrations, which `rct_net_exit` drops first).
pub(crate) struct SysctlRegistration {
    hdr: NonNull<bindings::ctl_table_header>,
}

// SAFETY: The header is only handed back to the kernel, from any thread.
unsafe impl Send for SysctlRegistration {}
// SAFETY: `&SysctlRegistration` gives access to nothing.
unsafe impl Sync for SysctlRegistration {}

impl SysctlRegistration {
    /// Registers the sysctls of `net`, whose state is published already; global values are
    /// read-only outside the initial netns, as 6.12 makes them.
    pub(crate) fn new(net: &Net) -> Result<Self> {
        let state = net.ct_state().ok_or(EINVAL)?;
        let init = net.is_init();
        let mut descs = KVec::with_capacity(SYSCTL_COUNT, GFP_KERNEL)?;
        for ctl in sysctls() {
            descs.push(
                bindings::rct_sysctl_desc {
                    name: ctl.name_nul.as_ptr().cast(),
                    mode: ctl.mode(init),
                    is_unsigned: ctl.parse() == Parse::Uint,
                },
                GFP_KERNEL,
            )?;
        }
        let n = u32::try_from(descs.len()).map_err(|_| EINVAL)?;
        // SAFETY: `net` is alive; the descriptors are valid for the call and their names are
        // NUL-terminated statics of this module, which outlive the registration. `state`
        // outlives it too (type invariant, kept by `NetRegistrations`).
        let hdr = unsafe {
            bindings::rct_sysctl_register(
                net.as_ptr(),
                descs.as_ptr(),
                n,
                (state as *const NetState).cast_mut().cast(),
            )
        };
        // INVARIANT: registered with `state` as `.data`.
        Ok(Self {
            hdr: NonNull::new(hdr).ok_or(ENOMEM)?,
        })
    }
}

impl Drop for SysctlRegistration {
    fn drop(&mut self) {
        // SAFETY: `hdr` came from `rct_sysctl_register` and is unregistered once, here; this
        // waits for running handlers.
        unsafe { bindings::rct_sysctl_unregister(self.hdr.as_ptr()) };
    }
}

/// Reads sysctl `index` of the netns whose state is `state` into `val`; 0 or `-errno`.
///
/// # Safety
///
/// `state` must be the `.data` of a registered table (a live [`NetState`]) and `val` valid
/// for a write.
#[no_mangle]
unsafe extern "C" fn rct_sysctl_read(
    state: *mut c_void,
    index: c_uint,
    val: *mut c_longlong,
) -> c_int {
    // SAFETY: The table's `.data` is the netns' state, alive while the table is registered
    // (`SysctlRegistration`'s invariant), which covers every handler call.
    let state = unsafe { &*state.cast::<NetState>() };
    match state.sysctl_read(index as usize) {
        Ok(v) => {
            // SAFETY: The caller passes a valid pointer.
            unsafe { *val = v };
            0
        }
        Err(e) => errno(e),
    }
}

/// Writes `val` to sysctl `index` of the netns whose state is `state`; 0 or `-errno`.
///
/// # Safety
///
/// `state` must be the `.data` of a registered table (a live [`NetState`]).
#[no_mangle]
unsafe extern "C" fn rct_sysctl_write(state: *mut c_void, index: c_uint, val: c_longlong) -> c_int {
    // SAFETY: As in `rct_sysctl_read`.
    let state = unsafe { &*state.cast::<NetState>() };
    match state.sysctl_write(index as usize, val) {
        Ok(()) => 0,
        Err(e) => errno(e),
    }
}
