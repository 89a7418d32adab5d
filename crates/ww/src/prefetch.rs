//! Fetching a mutex's cache line for writing before it is locked.
//!
//! [`AcquireCtx::lock_all`](crate::AcquireCtx::lock_all) knows its whole set before it takes
//! the first lock. Asking the CPU for every line at once, before the first lock, lets the
//! transfers overlap instead of paying one cache miss per compare-and-swap while the
//! transaction already holds locks others wait for (measured in `BENCHMARKS.md`). A prefetch
//! is only a hint: it changes no memory and cannot fault, so a wrong guess costs a transfer,
//! never correctness.
//!
//! On x86-64 this is `PREFETCHW` (fetch for ownership) where the CPU has it, else
//! `PREFETCHT0`; elsewhere nothing.

/// Hints that the cache line at `p` is about to be written.
#[inline]
pub(crate) fn for_write<T: ?Sized>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    x86::for_write(std::ptr::from_ref(p).cast::<u8>());
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::sync::atomic::{AtomicU8, Ordering};

    /// 0: not probed yet, 1: `PREFETCHW` available, 2: not available.
    static PREFETCHW: AtomicU8 = AtomicU8::new(0);

    #[inline]
    pub(super) fn for_write(p: *const u8) {
        let mut have = PREFETCHW.load(Ordering::Relaxed);
        if have == 0 {
            have = probe();
            PREFETCHW.store(have, Ordering::Relaxed);
        }
        if have == 1 {
            // SAFETY: PREFETCHW is a hint with a memory operand that it never dereferences
            // architecturally: it does not fault on any address, writes no memory, and
            // leaves every register and flag as it was. The CPU supports it (`probe`).
            #[allow(unsafe_code)]
            unsafe {
                std::arch::asm!(
                    "prefetchw [{p}]",
                    p = in(reg) p,
                    options(nostack, preserves_flags, readonly)
                );
            }
        } else {
            // SAFETY: as above; PREFETCHT0 is part of SSE, which every x86-64 CPU has.
            #[allow(unsafe_code)]
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    p.cast::<i8>(),
                );
            }
        }
    }

    /// Whether the CPU has `PREFETCHW`: CPUID leaf 0x8000_0001, ECX bit 8 (`PRFCHW`, also
    /// called `3DNowPrefetch`).
    #[cold]
    fn probe() -> u8 {
        use std::arch::x86_64::__cpuid;
        // SAFETY: CPUID exists on every x86-64 CPU; the extended leaf is read only if the
        // CPU reports it.
        #[allow(unsafe_code, unused_unsafe)]
        let ecx = unsafe {
            if __cpuid(0x8000_0000).eax >= 0x8000_0001 {
                __cpuid(0x8000_0001).ecx
            } else {
                0
            }
        };
        if ecx & (1 << 8) != 0 { 1 } else { 2 }
    }

    #[cfg(test)]
    mod tests {
        /// The probe answers the same as the kernel's view of the CPU.
        #[test]
        fn probe_matches_proc_cpuinfo() {
            let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
                return;
            };
            let flags = info.lines().find(|l| l.starts_with("flags")).unwrap_or("");
            let listed = flags.split_whitespace().any(|f| f == "3dnowprefetch");
            assert_eq!(super::probe() == 1, listed);
        }

        /// Prefetching any address, even one that is not mapped, is harmless.
        #[test]
        fn prefetch_never_faults() {
            let x = 7u64;
            super::for_write(std::ptr::from_ref(&x).cast());
            super::for_write(std::ptr::null());
            super::for_write(usize::MAX as *const u8);
            assert_eq!(x, 7);
        }
    }
}
