// SPDX-License-Identifier: GPL-2.0

//! Netfilter hooks and defragmentation, per network namespace.
//!
//! C headers: [`include/linux/netfilter.h`](srctree/include/linux/netfilter.h),
//! [`include/net/netfilter/ipv4/nf_defrag_ipv4.h`](srctree/include/net/netfilter/ipv4/nf_defrag_ipv4.h)
//!
//! The hook table mirrors nf_conntrack's (`ipv4_conntrack_ops` in
//! `net/netfilter/nf_conntrack_proto.c`), plus the helper hooks at
//! `NF_IP_PRI_CONNTRACK_HELPER`: tracking on PRE_ROUTING and LOCAL_OUT, helper and confirm on
//! POST_ROUTING and LOCAL_IN, for IPv4 and IPv6.

use crate::conntrack::net::NetState;
use crate::proto::ablate;
use crate::proto::pipeline::{Clock, Hook, HookCtx, HookRole, Verdict};
use crate::proto::tuple::L3;
use crate::sys::bindings;
use crate::sys::netns::{self, Net};
use crate::sys::rcu::RcuSection;
use crate::sys::skb::{HookPacket, HookView, SkBuff};
use core::ptr::NonNull;
use kernel::error::to_result;
use kernel::ffi::{c_uint, c_void};
use kernel::prelude::*;

/// `NF_IP_PRI_CONNTRACK` (equal to `NF_IP6_PRI_CONNTRACK`).
pub(crate) const PRI_CONNTRACK: i32 = bindings::nf_ip_hook_priorities_NF_IP_PRI_CONNTRACK;
/// `NF_IP_PRI_CONNTRACK_HELPER` (equal to `NF_IP6_PRI_CONNTRACK_HELPER`).
pub(crate) const PRI_CONNTRACK_HELPER: i32 =
    bindings::nf_ip_hook_priorities_NF_IP_PRI_CONNTRACK_HELPER;
/// `NF_IP_PRI_CONNTRACK_CONFIRM` (equal to `NF_IP6_PRI_LAST`).
pub(crate) const PRI_CONNTRACK_CONFIRM: i32 =
    bindings::nf_ip_hook_priorities_NF_IP_PRI_CONNTRACK_CONFIRM;

const _: () = {
    assert!(PRI_CONNTRACK == bindings::nf_ip6_hook_priorities_NF_IP6_PRI_CONNTRACK);
    assert!(PRI_CONNTRACK_HELPER == bindings::nf_ip6_hook_priorities_NF_IP6_PRI_CONNTRACK_HELPER);
    assert!(PRI_CONNTRACK_CONFIRM == bindings::nf_ip6_hook_priorities_NF_IP6_PRI_LAST);
    assert!(
        PRI_CONNTRACK == -200 && PRI_CONNTRACK_HELPER == 300 && PRI_CONNTRACK_CONFIRM == i32::MAX
    );
};

type HookFn = unsafe extern "C" fn(
    *mut c_void,
    *mut bindings::sk_buff,
    *const bindings::nf_hook_state,
) -> c_uint;

const fn hook_ops(hook: HookFn, pf: u32, hooknum: u32, priority: i32) -> bindings::nf_hook_ops {
    // INVARIANT: `dev` and `priv_` stay NULL: the hooks find their netns in the hook state.
    // `hook_ops_type` is 0, `NF_HOOK_OP_UNDEFINED`, as for every non-nftables hook.
    bindings::nf_hook_ops {
        rcu: bindings::callback_head {
            next: core::ptr::null_mut(),
            func: None,
        },
        hook: Some(hook),
        dev: core::ptr::null_mut(),
        priv_: core::ptr::null_mut(),
        pf: pf as u8,
        _bitfield_1: bindings::__BindgenBitfieldUnit::new([0; 1]),
        hooknum,
        priority,
    }
}

/// The hook table registered in every netns.
///
/// # Invariants
///
/// The entries are never modified and their `dev`/`priv_` pointers are NULL: each netns
/// registers a copy with its state as `priv_`.
struct HookTable([bindings::nf_hook_ops; 12]);

// SAFETY: The table is immutable (type invariant) and its pointers are NULL or point to
// functions, so sharing it between threads is safe.
unsafe impl Sync for HookTable {}

const V4: u32 = bindings::NFPROTO_IPV4;
const V6: u32 = bindings::NFPROTO_IPV6;
const PRE_ROUTING: u32 = bindings::nf_inet_hooks_NF_INET_PRE_ROUTING;
const LOCAL_IN: u32 = bindings::nf_inet_hooks_NF_INET_LOCAL_IN;
const LOCAL_OUT: u32 = bindings::nf_inet_hooks_NF_INET_LOCAL_OUT;
const POST_ROUTING: u32 = bindings::nf_inet_hooks_NF_INET_POST_ROUTING;

static HOOKS: HookTable = HookTable([
    hook_ops(rct_conntrack_in, V4, PRE_ROUTING, PRI_CONNTRACK),
    hook_ops(rct_conntrack_in, V4, LOCAL_OUT, PRI_CONNTRACK),
    hook_ops(rct_helper, V4, POST_ROUTING, PRI_CONNTRACK_HELPER),
    hook_ops(rct_confirm, V4, POST_ROUTING, PRI_CONNTRACK_CONFIRM),
    hook_ops(rct_helper, V4, LOCAL_IN, PRI_CONNTRACK_HELPER),
    hook_ops(rct_confirm, V4, LOCAL_IN, PRI_CONNTRACK_CONFIRM),
    hook_ops(rct_conntrack_in, V6, PRE_ROUTING, PRI_CONNTRACK),
    hook_ops(rct_conntrack_in, V6, LOCAL_OUT, PRI_CONNTRACK),
    hook_ops(rct_helper, V6, POST_ROUTING, PRI_CONNTRACK_HELPER),
    hook_ops(rct_confirm, V6, POST_ROUTING, PRI_CONNTRACK_CONFIRM),
    hook_ops(rct_helper, V6, LOCAL_IN, PRI_CONNTRACK_HELPER),
    hook_ops(rct_confirm, V6, LOCAL_IN, PRI_CONNTRACK_CONFIRM),
]);

/// The hooks a netns gets: all of them, or (an ablation build) all but the helpers'.
fn hooks() -> &'static [bindings::nf_hook_ops] {
    if ablate::NO_HELPER_HOOK {
        &HOOKS_NO_HELPER.0
    } else {
        &HOOKS.0
    }
}

/// [`HOOKS`] without the helper hooks, for [`ablate::NO_HELPER_HOOK`].
struct HookTableNoHelper([bindings::nf_hook_ops; 8]);

// SAFETY: As for `HookTable`.
unsafe impl Sync for HookTableNoHelper {}

static HOOKS_NO_HELPER: HookTableNoHelper = HookTableNoHelper([
    HOOKS.0[0],
    HOOKS.0[1],
    HOOKS.0[3],
    HOOKS.0[5],
    HOOKS.0[6],
    HOOKS.0[7],
    HOOKS.0[9],
    HOOKS.0[11],
]);

/// The family of a hook state's `pf`, if IPv4 or IPv6.
fn l3_of_pf(pf: u8) -> Option<L3> {
    match u32::from(pf) {
        V4 => Some(L3::Ipv4),
        V6 => Some(L3::Ipv6),
        _ => None,
    }
}

/// `pf` of a family.
pub(crate) fn pf_of_l3(l3: L3) -> u8 {
    // The values are small constants (2 and 10).
    (match l3 {
        L3::Ipv4 => V4,
        L3::Ipv6 => V6,
    }) as u8
}

/// The hook point of a hook state's `hook` (`enum nf_inet_hooks`); FORWARD is not one of ours.
fn hook_of_raw(hook: u8) -> Option<Hook> {
    match u32::from(hook) {
        PRE_ROUTING => Some(Hook::PreRouting),
        LOCAL_IN => Some(Hook::LocalIn),
        LOCAL_OUT => Some(Hook::LocalOut),
        POST_ROUTING => Some(Hook::PostRouting),
        _ => None,
    }
}

/// `enum nf_inet_hooks` of a hook point.
pub(crate) fn raw_of_hook(hook: Hook) -> u32 {
    match hook {
        Hook::PreRouting => PRE_ROUTING,
        Hook::LocalIn => LOCAL_IN,
        Hook::LocalOut => LOCAL_OUT,
        Hook::PostRouting => POST_ROUTING,
    }
}

/// Runs one hook: hands the packet to the netns state the hook was registered with.
///
/// # Safety
///
/// `priv_`, `skb` and `state` must be the valid pointers netfilter passes to a hook function
/// registered by [`HookRegistration`].
unsafe fn run_hook(
    role: HookRole,
    priv_: *mut c_void,
    skb: *mut bindings::sk_buff,
    state: *const bindings::nf_hook_state,
) -> c_uint {
    if ablate::NOOP_HOOKS {
        return bindings::NF_ACCEPT;
    }
    // SAFETY: netfilter passes a valid hook state for the duration of the call.
    let st = unsafe { &*state };
    let (Some(l3), Some(hook)) = (l3_of_pf(st.pf), hook_of_raw(st.hook)) else {
        return bindings::NF_ACCEPT;
    };
    // The registration's private pointer is the netns state: no per-packet lookup of it.
    // SAFETY: `priv_` is the state `HookRegistration` registered the hook with, which
    // outlives the registration (its type invariant), and the hook runs while registered.
    let Some(ct) = (unsafe { netns::state_of_slot(priv_) }) else {
        return bindings::NF_ACCEPT;
    };
    if ablate::ENTRY_ONLY {
        return bindings::NF_ACCEPT;
    }
    // SAFETY: netfilter runs its hooks inside an RCU read-side section (`nf_hook`), which
    // lasts for this call.
    let rcu = unsafe { RcuSection::assume() };
    // The skb's address tells the confirm hook which new entry is this packet's.
    let cookie = skb as usize;
    // Most helper and confirm calls have nothing to do: told before the packet is read.
    // SAFETY: netfilter passes a valid hook state for the duration of the call.
    let out_loopback = || unsafe { bindings::rct_hook_out_loopback(state) };
    if role != HookRole::Track && ct.hook_idle(role, hook, cookie, out_loopback, rcu) {
        return bindings::NF_ACCEPT;
    }
    // One call reads what the hook needs of the skb, the state and the clock.
    // SAFETY: netfilter passes a valid skb and hook state for the duration of the call.
    let view = unsafe { HookView::read(skb, state) };
    let Some(nhoff) = view.network_offset() else {
        ct.count_invalid();
        return bindings::NF_ACCEPT;
    };
    // SAFETY: netfilter owns `skb` for the duration of the call and does not free it.
    let skb = unsafe { SkBuff::from_raw(skb) };
    let ctx = HookCtx {
        hook,
        l3,
        nhoff,
        cookie,
        in_loopback: view.in_loopback(),
        out_loopback: view.out_loopback(),
        clock: Clock::at(view.jiffies(), view.hz()),
    };
    // SAFETY: `state` is the hook state netfilter passed with `skb`, valid for the call, and
    // `view` was read from both in this call.
    let pkt = unsafe { HookPacket::new(skb, state, &view) };
    match ct.hook(role, &pkt, &ctx, rcu) {
        Verdict::Accept => bindings::NF_ACCEPT,
        Verdict::Drop => bindings::NF_DROP,
    }
}

/// Tracking hook (PRE_ROUTING, LOCAL_OUT), as `ipv4_conntrack_in`.
///
/// # Safety
///
/// `skb` and `state` must be the valid skb and hook state netfilter passes to a hook.
// Exported under a stable name: `nft list hooks` shows it.
#[no_mangle]
unsafe extern "C" fn rct_conntrack_in(
    priv_: *mut c_void,
    skb: *mut bindings::sk_buff,
    state: *const bindings::nf_hook_state,
) -> c_uint {
    // SAFETY: Called by netfilter with the registration's private pointer, a valid skb and
    // hook state.
    unsafe { run_hook(HookRole::Track, priv_, skb, state) }
}

/// Helper hook (POST_ROUTING, LOCAL_IN).
///
/// # Safety
///
/// `skb` and `state` must be the valid skb and hook state netfilter passes to a hook.
// Exported under a stable name: `nft list hooks` shows it.
#[no_mangle]
unsafe extern "C" fn rct_helper(
    priv_: *mut c_void,
    skb: *mut bindings::sk_buff,
    state: *const bindings::nf_hook_state,
) -> c_uint {
    // SAFETY: As for `rct_conntrack_in`.
    unsafe { run_hook(HookRole::Helper, priv_, skb, state) }
}

/// Confirm hook (POST_ROUTING, LOCAL_IN), as `nf_confirm`.
///
/// # Safety
///
/// `skb` and `state` must be the valid skb and hook state netfilter passes to a hook.
// Exported under a stable name: `nft list hooks` shows it.
#[no_mangle]
unsafe extern "C" fn rct_confirm(
    priv_: *mut c_void,
    skb: *mut bindings::sk_buff,
    state: *const bindings::nf_hook_state,
) -> c_uint {
    // SAFETY: As for `rct_conntrack_in`.
    unsafe { run_hook(HookRole::Confirm, priv_, skb, state) }
}

/// The module's hooks, registered in one netns, each with the netns state as its private
/// pointer (as nf_tables registers its chains'), so that a hook needs no lookup to find it.
///
/// # Invariants
///
/// `net` is the netns the hooks are registered in; it outlives `self` because the
/// registration is dropped by the netns' pernet `exit` at the latest. `ops` is the table
/// registered, never changed while it is: netfilter keeps pointers to its entries. Their
/// private pointer is the netns' state, which the pernet `exit` frees only after dropping
/// `self`.
pub(crate) struct HookRegistration {
    net: NonNull<bindings::net>,
    ops: KVec<bindings::nf_hook_ops>,
}

impl HookRegistration {
    /// Registers every hook in `net`, whose state must be set up; all or none.
    pub(crate) fn new(net: &Net) -> Result<Self> {
        let ptr = NonNull::new(net.as_ptr()).ok_or(EINVAL)?;
        let state = net.ct_state().ok_or(EINVAL)?;
        let mut ops = KVec::with_capacity(hooks().len(), GFP_KERNEL)?;
        for o in hooks() {
            ops.push(
                bindings::nf_hook_ops {
                    priv_: (state as *const NetState).cast_mut().cast(),
                    ..*o
                },
                GFP_KERNEL,
            )?;
        }
        // SAFETY: `net` is alive and `ops` is a table of valid ops that stays where it is
        // until unregistered; `nf_register_net_hooks` undoes a partial registration itself.
        to_result(unsafe {
            bindings::nf_register_net_hooks(ptr.as_ptr(), ops.as_ptr(), ops.len() as u32)
        })?;
        // INVARIANT: registered in `net`, which the caller keeps alive (see the type docs),
        // with its state, which the pernet `exit` frees after dropping `self`.
        Ok(Self { net: ptr, ops })
    }
}

impl Drop for HookRegistration {
    fn drop(&mut self) {
        // SAFETY: `self.ops` were registered in `self.net`, which is alive (type invariant).
        // This waits until no CPU runs one of them any more.
        unsafe {
            bindings::nf_unregister_net_hooks(
                self.net.as_ptr(),
                self.ops.as_ptr(),
                self.ops.len() as u32,
            )
        };
    }
}

/// IPv4 or IPv6 defragmentation enabled in one netns, so that the tracking hooks see whole
/// datagrams, as nf_conntrack's do (`nf_defrag_ipv4_enable` and `nf_defrag_ipv6_enable`).
///
/// # Invariants
///
/// Defragmentation of `family` is enabled once in `net` by `self`, which outlives it as
/// [`HookRegistration`]'s netns does.
pub(crate) struct Defrag {
    net: NonNull<bindings::net>,
    family: L3,
}

impl Defrag {
    /// Enables defragmentation of `family` in `net`.
    pub(crate) fn enable(net: &Net, family: L3) -> Result<Self> {
        let ptr = NonNull::new(net.as_ptr()).ok_or(EINVAL)?;
        // SAFETY: `net` is alive; each enable is paired with one disable in `drop`.
        to_result(unsafe {
            match family {
                L3::Ipv4 => bindings::nf_defrag_ipv4_enable(ptr.as_ptr()),
                L3::Ipv6 => bindings::nf_defrag_ipv6_enable(ptr.as_ptr()),
            }
        })?;
        // INVARIANT: enabled once in `net`.
        Ok(Self { net: ptr, family })
    }
}

impl Drop for Defrag {
    fn drop(&mut self) {
        // SAFETY: Enabled once in `self.net`, which is alive (type invariant).
        unsafe {
            match self.family {
                L3::Ipv4 => bindings::nf_defrag_ipv4_disable(self.net.as_ptr()),
                L3::Ipv6 => bindings::nf_defrag_ipv6_disable(self.net.as_ptr()),
            }
        }
    }
}
