//! Loom models of `hazard::ArcSlot`, the chain index's lock-free `Option<Arc<T>>`: readers that
//! borrow the value without a count against a writer that replaces it and drops the old one.
//!
//! What they check, in every interleaving loom explores:
//! * nothing a reader borrows is dropped under it: the value's word is a loom cell that its
//!   drop writes, so a drop that may overlap a read is a reported race;
//! * a reader sees the old value or the new one, never anything else, and never waits (its
//!   path has no lock and no wait; the writer's wait for it is a yield loop loom explores);
//! * every value is released exactly once (loom reports a leaked `Arc`, and a double release
//!   panics).
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p dmabuf --lib --release -- tests::loom`.

use crate::hazard::ArcSlot;
use crate::sync::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

/// A value whose word its drop overwrites.
struct Probe(UnsafeCell<u64>);

impl Probe {
    fn new(value: u64) -> Arc<Probe> {
        Arc::new(Probe(UnsafeCell::new(value)))
    }

    fn get(&self) -> u64 {
        // SAFETY: a shared read of the word; loom reports a write that may overlap it.
        #[allow(unsafe_code)]
        self.0.with(|p| unsafe { *p })
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: nobody else may read the word now, which loom checks.
        #[allow(unsafe_code)]
        self.0.with_mut(|p| unsafe { *p = 0 });
    }
}

/// A reader borrows while the writer swaps the value out and drops it.
#[test]
fn a_read_against_a_swap_and_drop() {
    loom::model(|| {
        let slot = Arc::new(ArcSlot::new(Some(Probe::new(1))));
        let reader = {
            let slot = slot.clone();
            thread::spawn(move || slot.read(|v| v.map(Probe::get)))
        };
        drop(slot.swap(Some(Probe::new(2))));
        let seen = reader.join().unwrap();
        assert!(matches!(seen, Some(1 | 2)), "{seen:?}");
        assert_eq!(slot.read(|v| v.map(Probe::get)), Some(2));
    });
}

/// A reader takes a counted handle while the writer empties the slot: the handle keeps the
/// old value alive past the swap, and whoever drops last releases it.
#[test]
fn a_counted_load_against_a_swap_to_none() {
    loom::model(|| {
        let slot = Arc::new(ArcSlot::new(Some(Probe::new(1))));
        let reader = {
            let slot = slot.clone();
            thread::spawn(move || slot.load_full().map(|p| p.get()))
        };
        let old = slot.swap(None).expect("the first value");
        assert_eq!(old.get(), 1);
        drop(old);
        assert_eq!(reader.join().unwrap().unwrap_or(1), 1);
        assert!(slot.read(|v| v.is_none()));
    });
}

/// Two readers against two swaps in a row: each read sees one of the three values, whole.
#[test]
fn two_reads_against_two_swaps() {
    loom::model(|| {
        let slot = Arc::new(ArcSlot::new(Some(Probe::new(1))));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let slot = slot.clone();
                thread::spawn(move || slot.read(|v| v.map(Probe::get)))
            })
            .collect();
        drop(slot.swap(Some(Probe::new(2))));
        drop(slot.swap(Some(Probe::new(3))));
        for r in readers {
            let seen = r.join().unwrap();
            assert!(matches!(seen, Some(1..=3)), "{seen:?}");
        }
    });
}
