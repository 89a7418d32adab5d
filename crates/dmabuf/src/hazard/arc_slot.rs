//! An `Option<Arc<T>>` that readers borrow without a reference count or a lock while a writer
//! replaces it (kernel: an RCU-protected pointer read under `rcu_read_lock()`, replaced with
//! `rcu_replace_pointer()` and freed after `synchronize_rcu()`). The chain's lookup index
//! lives in one.
//!
//! A reader ([`ArcSlot::read`]) announces the pointer in its thread's reader slot
//! ([`protect`]): one atomic exchange, never a wait. A writer ([`ArcSlot::swap`]) stores the
//! new pointer, then waits until no reader slot names the old one before it hands the old
//! `Arc` back, so nothing a reader borrows is dropped, freed or changed in place under it.
//!
//! # Rules
//! * A read runs only this crate's code, and neither swaps an `ArcSlot` nor waits: the writer
//!   may be waiting for it to end. (Clone what the read finds; look at it afterwards.)
//! * A swap waits only for reads that were under way when it stored: a read takes a handful
//!   of instructions, so the wait is as long as the reader's time slice at worst. It is no
//!   wait the validator models: the reader holds nothing and waits for nothing.

use super::{protect, scan};
use crate::sync::{Arc, AtomicPtr, Ordering, yield_now};
use std::marker::PhantomData;
use std::ptr;

/// An `Option<Arc<T>>` read without a lock or a reference count (see the module).
#[derive(Debug)]
pub(crate) struct ArcSlot<T> {
    /// `Arc::into_raw` of the value the slot owns, or null.
    ptr: AtomicPtr<T>,
    /// The slot owns an `Arc<T>`: `Send` and `Sync` only as that is.
    _owns: PhantomData<Arc<T>>,
}

/// The pointer an `ArcSlot` keeps for `value`: it takes over `value`'s count.
fn into_ptr<T>(value: Option<Arc<T>>) -> *mut T {
    value.map_or(ptr::null_mut(), |v| Arc::into_raw(v).cast_mut())
}

/// Waits until no reader slot names `addr`. The caller has stored over every pointer to it
/// that readers load, so a read that starts now cannot name it.
fn wait_unread(addr: usize) {
    loop {
        let mut named = false;
        scan(|a| named |= a == addr);
        if !named {
            return;
        }
        yield_now();
    }
}

impl<T> ArcSlot<T> {
    /// A slot holding `value`.
    pub(crate) fn new(value: Option<Arc<T>>) -> Self {
        ArcSlot {
            ptr: AtomicPtr::new(into_ptr(value)),
            _owns: PhantomData,
        }
    }

    /// Calls `read` with the value, borrowed: neither dropped nor changed until `read`
    /// returns. `read` follows the module's rules.
    #[inline]
    pub(crate) fn read<R>(&self, read: impl FnOnce(Option<&T>) -> R) -> R {
        protect(&self.ptr, |p| {
            // SAFETY: `p` is null or the `Arc::into_raw` pointer of the value this slot owned
            // when `protect` loaded it; `protect` has announced it, so a `swap` that took it
            // out waits in `wait_unread` until this read returns before it gives the `Arc`
            // back: the value is alive, and nobody holds it mutably (`Arc::get_mut` needs
            // that `Arc`), for the whole borrow.
            #[allow(unsafe_code)]
            read(unsafe { p.as_ref() })
        })
    }

    /// A counted handle to the value.
    pub(crate) fn load_full(&self) -> Option<Arc<T>> {
        protect(&self.ptr, |p| {
            if p.is_null() {
                return None;
            }
            // SAFETY: as in `read`, `p` is an `Arc::into_raw` pointer whose value stays alive
            // while protected, so its count is at least the slot's one: taking one more and
            // making an `Arc` of it hands out a count of its own.
            #[allow(unsafe_code)]
            unsafe {
                Arc::increment_strong_count(p);
                Some(Arc::from_raw(p))
            }
        })
    }

    /// Stores `value` and hands back the value it replaces, once no read of it is under way.
    pub(crate) fn swap(&self, value: Option<Arc<T>>) -> Option<Arc<T>> {
        let old = self.ptr.swap(into_ptr(value), Ordering::AcqRel);
        if old.is_null() {
            return None;
        }
        wait_unread(old.addr());
        // SAFETY: `old` is the `Arc::into_raw` pointer of the value the slot owned, and the
        // swap took it out, so this is the one place its count is handed back.
        #[allow(unsafe_code)]
        Some(unsafe { Arc::from_raw(old) })
    }

    /// The value, taken out by the slot's only user (no reader can be reading it).
    pub(crate) fn take_mut(&mut self) -> Option<Arc<T>> {
        let old = self.ptr.swap(ptr::null_mut(), Ordering::Acquire);
        if old.is_null() {
            return None;
        }
        // SAFETY: as in `swap`; `&mut self` means no read of this slot is under way.
        #[allow(unsafe_code)]
        Some(unsafe { Arc::from_raw(old) })
    }
}

impl<T> Drop for ArcSlot<T> {
    fn drop(&mut self) {
        drop(self.take_mut());
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64};

    #[test]
    fn reads_borrow_swaps_hand_back_and_drop_releases() {
        let first = Arc::new(1u32);
        let slot = ArcSlot::new(Some(first.clone()));
        assert_eq!(slot.read(|v| v.copied()), Some(1));
        assert_eq!(Arc::strong_count(&first), 2, "a read takes no count");
        let full = slot.load_full().expect("a value");
        assert_eq!(Arc::strong_count(&first), 3);
        drop(full);
        let old = slot.swap(Some(Arc::new(2))).expect("the first");
        assert!(Arc::ptr_eq(&old, &first));
        assert_eq!(slot.read(|v| v.copied()), Some(2));
        assert!(slot.swap(None).is_some());
        assert_eq!(slot.read(|v| v.copied()), None);
        assert!(slot.swap(None).is_none());
        let slot = ArcSlot::new(Some(first.clone()));
        drop(slot);
        drop(old);
        assert_eq!(
            Arc::strong_count(&first),
            1,
            "the slot's count went with it"
        );
    }

    /// A value that records when it is dropped, and whether a reader ever saw it dropped.
    struct Probe {
        value: u64,
        dropped: Arc<AtomicBool>,
    }

    impl Drop for Probe {
        fn drop(&mut self) {
            self.dropped.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn readers_never_see_a_value_dropped_while_writers_replace_it() {
        // A stress test beside the loom models: two readers borrow and check the value's
        // drop flag while a writer replaces it as fast as it can.
        let slot = Arc::new(ArcSlot::new(None::<Arc<Probe>>));
        let stop = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicU64::new(0));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (slot, stop, reads) = (slot.clone(), stop.clone(), reads.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        slot.read(|p| {
                            if let Some(p) = p {
                                assert!(!p.dropped.load(Ordering::SeqCst), "read after drop");
                                std::hint::black_box(p.value);
                            }
                        });
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        // The writer goes on until the readers have read as often as it has swapped, so
        // the two overlap however the threads are scheduled.
        let mut flags = Vec::new();
        let mut value = 0u64;
        while value < 20_000 || reads.load(Ordering::Relaxed) < 20_000 {
            let dropped = Arc::new(AtomicBool::new(false));
            let probe = Arc::new(Probe {
                value,
                dropped: dropped.clone(),
            });
            drop(slot.swap(Some(probe)));
            flags.push(dropped);
            value += 1;
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            r.join().expect("no reader saw a dropped value");
        }
        drop(slot.swap(None));
        assert!(
            flags.iter().all(|f| f.load(Ordering::SeqCst)),
            "every value dropped"
        );
    }
}
