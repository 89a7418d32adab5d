//! Data guarded by a reservation object's lock instead of a lock of its own (kernel: state
//! documented as "protected by the dma_resv lock", such as an attachment's mapping; the
//! kernel's Rust bindings call the pattern `LockedBy`).
//!
//! Buffer state that only changes under the buffer's reservation lock needs no second lock:
//! the [`ResvGuard`] a caller already holds is the proof of exclusive access. Reaching the
//! data costs a pointer comparison and a borrow flag, no atomic operation.
//!
//! # Rules
//! * Every access names the guard: [`LockedBy::borrow_mut`] checks that it is the owner's
//!   (a guard of another object is a bug in this crate, and panics), and the borrow lives no
//!   longer than the guard, so the lock cannot be dropped under it.
//! * A second borrow while one is alive (reached again from a callback, say) panics instead
//!   of aliasing: keep borrows short, and never call code outside the crate while holding
//!   one.

use super::{Resv, ResvGuard};
use std::cell::{RefCell, RefMut};

/// `T`, reachable only with the lock of one reservation object held.
pub(crate) struct LockedBy<T> {
    /// The owner's address, compared with the guard's (never dereferenced).
    owner: usize,
    data: RefCell<T>,
}

// SAFETY: `data` is reached only through `borrow_mut`, which needs a `&ResvGuard` of the owner
// (`ResvGuard::new` checks that a guard holds the lock of the object it names). `ResvGuard` is not
// `Sync`, so such a reference exists only on the thread that holds the guard (and `RefMut`
// is not `Send`: it stays there too), and the owner's lock is exclusive: one thread at a
// time touches `data` (its value and the `RefCell`'s flag), and the lock's acquire and release
// order one holder's accesses before the next holder's. The `RefMut` borrows the guard, so the
// lock cannot be released while it lives. The owner outlives the data (its holder keeps both),
// so no other object can take the owner's address meanwhile. `T: Send` because the data is
// handed from thread to thread that way; `&LockedBy` alone gives no access to it.
#[allow(unsafe_code)]
unsafe impl<T: Send> Sync for LockedBy<T> {}

impl<T> LockedBy<T> {
    /// `data`, guarded by `owner`'s lock. The owner must outlive the data.
    pub(crate) fn new(owner: &Resv, data: T) -> Self {
        LockedBy {
            owner: std::ptr::from_ref(owner).addr(),
            data: RefCell::new(data),
        }
    }

    /// The data, exclusively, while `guard` holds the owner's lock.
    ///
    /// # Panics
    /// If `guard` locks another object, or the data is borrowed already (both bugs in this
    /// crate).
    #[track_caller]
    pub(crate) fn borrow_mut<'s>(&'s self, guard: &'s ResvGuard<'_>) -> RefMut<'s, T> {
        assert_eq!(
            std::ptr::from_ref(guard.resv()).addr(),
            self.owner,
            "LockedBy: a guard of another reservation object"
        );
        self.data
            .try_borrow_mut()
            .expect("LockedBy: borrowed twice under one lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owners_guard_reaches_the_data() {
        let resv = Resv::new();
        let cell = LockedBy::new(&resv, 1u32);
        let guard = resv.lock_single();
        *cell.borrow_mut(&guard) += 1;
        assert_eq!(*cell.borrow_mut(&guard), 2);
    }

    #[test]
    #[should_panic(expected = "another reservation object")]
    fn another_objects_guard_is_refused() {
        let (a, b) = (Resv::new(), Resv::new());
        let cell = LockedBy::new(&a, ());
        let guard = b.lock_single();
        let _ = cell.borrow_mut(&guard);
    }

    #[test]
    #[should_panic(expected = "borrowed twice")]
    fn a_second_borrow_panics_instead_of_aliasing() {
        let resv = Resv::new();
        let cell = LockedBy::new(&resv, 0u8);
        let guard = resv.lock_single();
        let _first = cell.borrow_mut(&guard);
        let _second = cell.borrow_mut(&guard);
    }

    #[test]
    fn threads_take_turns_through_the_lock() {
        // ports no kernel test: mutual exclusion of the data under the reservation lock,
        // counted (no lost update).
        let resv = std::sync::Arc::new(Resv::new());
        let cell = std::sync::Arc::new(LockedBy::new(&resv, 0u64));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (resv, cell) = (resv.clone(), cell.clone());
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        let guard = resv.lock_single();
                        *cell.borrow_mut(&guard) += 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let guard = resv.lock_single();
        assert_eq!(*cell.borrow_mut(&guard), 40_000);
    }
}
