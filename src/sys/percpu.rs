// SPDX-License-Identifier: GPL-2.0

//! Per-CPU counters.
//!
//! C header: [`include/linux/percpu.h`](srctree/include/linux/percpu.h)

use crate::sys::bindings;
use core::ptr::NonNull;
use kernel::prelude::*;

/// `this_cpu_inc` of a per-CPU `u32`, inline where it is one instruction: on x86-64 SMP, an
/// increment through `%gs` (the running CPU's per-CPU base), as the kernel's own; on UML, which
/// is uniprocessor, an increment of the one copy. One instruction is never split by preemption
/// or an interrupt (a signal, on UML). Elsewhere `rct_this_cpu_inc_u32`, a C call.
///
/// # Safety
///
/// `counter` must be a per-CPU pointer to a `u32` of a live per-CPU allocation.
#[inline(always)]
unsafe fn this_cpu_inc_u32(counter: *mut u32) {
    #[cfg(all(target_arch = "x86_64", CONFIG_X86, CONFIG_SMP))]
    // SAFETY: `%gs:counter` is the running CPU's copy of the per-CPU `u32` (the caller's
    // pointer), as `this_cpu_inc` addresses it; the instruction touches nothing else.
    unsafe {
        core::arch::asm!("inc dword ptr gs:[{0}]", in(reg) counter, options(nostack))
    };
    #[cfg(all(target_arch = "x86_64", CONFIG_UML, not(CONFIG_SMP)))]
    // SAFETY: On a uniprocessor kernel a per-CPU pointer is the address of the only copy
    // (`raw_cpu_ptr(p) == p`); the caller's is live.
    unsafe {
        core::arch::asm!("inc dword ptr [{0}]", in(reg) counter, options(nostack))
    };
    #[cfg(not(any(
        all(target_arch = "x86_64", CONFIG_X86, CONFIG_SMP),
        all(target_arch = "x86_64", CONFIG_UML, not(CONFIG_SMP))
    )))]
    // SAFETY: `counter` is a per-CPU pointer into a live allocation (the caller's promise).
    unsafe {
        bindings::rct_this_cpu_inc_u32(counter)
    };
}

/// `N` 32-bit counters per possible CPU, like nf_conntrack's `net->ct.stat`.
///
/// # Invariants
///
/// `base` is a per-CPU pointer returned by `__alloc_percpu` for `N` `u32`s, owned by `self`
/// and freed on drop. It is never dereferenced directly, only through `per_cpu_ptr` and
/// [`this_cpu_inc_u32`].
pub(crate) struct PerCpuCounters<const N: usize> {
    base: NonNull<u32>,
}

// SAFETY: The counters are per-CPU memory: increments go to the running CPU's copy through
// `this_cpu_inc_u32`, which is safe against preemption and interrupts, and reads of
// other CPUs' copies are plain racy snapshots, as nf_conntrack's are.
unsafe impl<const N: usize> Send for PerCpuCounters<N> {}
// SAFETY: See `Send`; no method hands out references into the per-CPU area.
unsafe impl<const N: usize> Sync for PerCpuCounters<N> {}

impl<const N: usize> PerCpuCounters<N> {
    /// Allocates zeroed counters for every possible CPU.
    pub(crate) fn new() -> Result<Self> {
        let size = core::mem::size_of::<[u32; N]>();
        let align = core::mem::align_of::<u32>();
        // SAFETY: FFI call without preconditions; the result is checked for NULL.
        let ptr = unsafe { bindings::rct_alloc_percpu(size, align) };
        let base = NonNull::new(ptr.cast::<u32>()).ok_or(ENOMEM)?;
        // INVARIANT: `base` was just returned by `__alloc_percpu` for `N` `u32`s.
        Ok(Self { base })
    }

    /// Increments counter `idx` on the running CPU; an index out of range is ignored.
    pub(crate) fn inc(&self, idx: usize) {
        if idx >= N {
            return;
        }
        // CAST: the per-CPU area holds `N` consecutive `u32`s and `idx < N`, so this is the
        // per-CPU address of counter `idx`, as `&stats->field` would be in C.
        let counter = self.base.as_ptr().wrapping_add(idx);
        // SAFETY: `counter` is a per-CPU pointer into our allocation (type invariant).
        unsafe { this_cpu_inc_u32(counter) };
    }

    /// A snapshot of one CPU's counters, or `None` if `cpu` is not a possible CPU.
    pub(crate) fn read_cpu(&self, cpu: u32) -> Option<[u32; N]> {
        // SAFETY: FFI call without preconditions.
        if !unsafe { bindings::rct_cpu_possible(cpu) } {
            return None;
        }
        // SAFETY: `base` is a live per-CPU pointer (type invariant) and `cpu` is possible.
        let ptr = unsafe { bindings::rct_per_cpu_ptr(self.base.as_ptr().cast(), cpu) };
        let ptr = ptr.cast::<u32>();
        let mut row = [0u32; N];
        for (i, v) in row.iter_mut().enumerate() {
            // SAFETY: `ptr` is `cpu`'s copy of our `N` counters and `i < N`. The read is
            // volatile (READ_ONCE) because that CPU may be incrementing it.
            *v = unsafe { core::ptr::read_volatile(ptr.add(i)) };
        }
        Some(row)
    }

    #[cfg(rct_kunit)] // Only the KUnit cases use it.
    /// The sum of every possible CPU's counters.
    pub(crate) fn sum(&self) -> [u32; N] {
        let mut total = [0u32; N];
        for cpu in 0..nr_cpu_ids() {
            if let Some(row) = self.read_cpu(cpu) {
                for (t, v) in total.iter_mut().zip(row) {
                    *t = t.wrapping_add(v);
                }
            }
        }
        total
    }
}

impl<const N: usize> Drop for PerCpuCounters<N> {
    fn drop(&mut self) {
        // SAFETY: `base` came from `__alloc_percpu` and is freed only here (type invariant).
        unsafe { bindings::free_percpu(self.base.as_ptr().cast()) };
    }
}

/// One more than the highest possible CPU number.
pub(crate) fn nr_cpu_ids() -> u32 {
    // SAFETY: FFI call without preconditions.
    unsafe { bindings::rct_nr_cpu_ids() }
}

/// Types whose all-zero bytes are a valid value, their initial one: what `__alloc_percpu`
/// returns can be used as such without building a `T` anywhere (large `T`s would not fit on
/// a kernel stack).
///
/// # Safety
///
/// The all-zero bit pattern must be a valid `T`.
pub(crate) unsafe trait Zeroed {}

// SAFETY: `LoopbackRing` is integers and `Mark`s, whose zero is `Mark::Free` (`repr(u8)`);
// all zero is an empty ring.
unsafe impl Zeroed for crate::proto::handoff::LoopbackRing {}

/// A `T` per possible CPU, used by each CPU on its own with bottom halves disabled, so that
/// neither a softirq on the same CPU nor a migration can come between.
///
/// # Invariants
///
/// `base` is a per-CPU pointer returned by `__alloc_percpu` for one `T`, zeroed (a valid `T`,
/// see [`Zeroed`]) on every possible CPU, owned by `self` and freed on drop. A CPU's `T` is
/// only accessed by that CPU with bottom halves disabled.
pub(crate) struct PerCpuBh<T: Zeroed> {
    base: NonNull<T>,
}

// SAFETY: Each CPU's `T` is used only by that CPU with bottom halves disabled (type
// invariant), so no two contexts ever use the same `T` at once.
unsafe impl<T: Zeroed + Send> Send for PerCpuBh<T> {}
// SAFETY: See `Send`: shared access never yields two live references to one CPU's `T`.
unsafe impl<T: Zeroed + Send> Sync for PerCpuBh<T> {}

impl<T: Zeroed> PerCpuBh<T> {
    /// A zeroed `T` for every possible CPU.
    pub(crate) fn new() -> Result<Self> {
        // `__alloc_percpu` zeroes what it returns: nothing to initialise.
        // SAFETY: FFI call without preconditions; the result is checked for NULL.
        let ptr = unsafe {
            bindings::rct_alloc_percpu(core::mem::size_of::<T>(), core::mem::align_of::<T>())
        };
        // INVARIANT: allocated and zeroed on every possible CPU, a valid `T` (`T: Zeroed`).
        Ok(Self {
            base: NonNull::new(ptr.cast::<T>()).ok_or(ENOMEM)?,
        })
    }

    /// Runs `f` on the running CPU's `T`, with bottom halves disabled.
    pub(crate) fn with_this_cpu<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let _bh = crate::sys::sync::BhDisabled::new();
        // SAFETY: `base` is live (type invariant); with bottom halves off (`_bh`) the task
        // stays on this CPU and no softirq runs on it, so this is the only reference to its
        // `T`, and it does not outlive `_bh`.
        f(unsafe { &mut *bindings::rct_this_cpu_ptr(self.base.as_ptr().cast()).cast::<T>() })
    }
}

impl<T: Zeroed> Drop for PerCpuBh<T> {
    fn drop(&mut self) {
        // `T: Zeroed` types own nothing to drop (plain data): freeing the memory is enough.
        // SAFETY: `base` came from `__alloc_percpu` and is freed only here (type invariant).
        unsafe { bindings::free_percpu(self.base.as_ptr().cast()) };
    }
}
