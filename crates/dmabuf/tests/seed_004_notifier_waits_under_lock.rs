//! Seed 004 (an mmu notifier waiting on a fence under its lock): the exact report for the
//! driver whose completion worker takes the notifier lock, and silence for the one whose
//! signalling path stays away from it. Runs the example's own driver code.
#![cfg(feature = "lockdep")]

#[allow(dead_code)] // the example's `main` is not called here
#[path = "../examples/seed_004_notifier_waits_under_lock.rs"]
mod seed_004;

use dmabuf::lockdep::{Kind, Mode};

#[test]
fn notifier_lock_in_the_signalling_path_and_around_a_wait_is_a_signalling_deadlock() {
    let (reports, dirty) = seed_004::broken();
    assert!(dirty, "the broken completion did record the write");
    assert_eq!(reports.len(), 1, "{reports:#?}");
    let r = &reports[0];
    assert_eq!(r.kind, Kind::SignallingDeadlock);
    // Found at the notifier's wait: the notifier lock held while "acquiring" the signalling
    // pseudo-lock (a wait), closing the cycle the completion worker opened (signalling
    // section held while taking the notifier lock).
    assert_eq!(
        r.cycle_classes(),
        ["seed_004.broken.notifier_lock", "dma_fence_map"]
    );
    assert_eq!(r.cycle[0].next_mode, Mode::Exclusive, "a wait");
    assert_eq!(r.cycle[1].held_mode, Mode::Shared, "a signalling section");
    assert_eq!(r.class.map(|c| c.name()), Some("dma_fence_map"));
    let held: Vec<_> = r.held.iter().map(|&(c, m)| (c.name(), m)).collect();
    assert_eq!(held, [("seed_004.broken.notifier_lock", Mode::Exclusive)]);
}

#[test]
fn notifier_waiting_under_its_lock_while_the_job_completes_is_silent() {
    let (reports, dirty, driver) = seed_004::fixed();
    assert!(reports.is_empty(), "{reports:#?}");
    assert!(dirty, "the submit path recorded the write");
    assert_eq!(driver.invalidations(), 1);
    assert_eq!(driver.in_flight(), 0, "the completion retired the job");
}
