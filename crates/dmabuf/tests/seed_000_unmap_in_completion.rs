//! Seed 000 (functionfs unmapping a dma-buf from its transfer completion): the exact report
//! for the driver that unmaps in the completion handler, and silence for the one that maps
//! for the attachment's life and hands its last reference to a cleanup worker. Runs the
//! example's own driver code.
#![cfg(feature = "lockdep")]

#[allow(dead_code)] // the example's `main` is not called here
#[path = "../examples/seed_000_unmap_in_completion.rs"]
mod seed_000;

use dmabuf::lockdep::{Kind, Mode};
use seed_000::{Design, PAYLOAD, run};

#[test]
fn unmapping_in_the_completion_handler_is_a_signalling_deadlock() {
    let out = run(Design::PerTransfer);
    assert_eq!(out.received, PAYLOAD, "the transfer itself worked");
    assert_eq!(out.reports.len(), 1, "{:#?}", out.reports);
    let r = &out.reports[0];
    assert_eq!(r.kind, Kind::SignallingDeadlock);
    // Found when the completion takes the reservation lock inside its signalling section;
    // the other half (reservation lock held around a fence wait) is primed.
    assert_eq!(
        r.cycle_classes(),
        ["dma_fence_map", "reservation_ww_class_mutex"]
    );
    assert!(matches!(r.cycle[1].origin, dmabuf::lockdep::Origin::Primed));
    assert_eq!(
        r.class.map(|c| c.name()),
        Some("reservation_ww_class_mutex")
    );
    let held: Vec<_> = r.held.iter().map(|&(c, m)| (c.name(), m)).collect();
    assert_eq!(held, [("dma_fence_map", Mode::Shared)]);
    assert_eq!(out.torn_down_by_worker, 0);
    assert_eq!(out.attachments_left, 0);
}

#[test]
fn mapping_for_the_attachments_life_is_silent_even_when_detached_mid_transfer() {
    let out = run(Design::ForTheAttachmentsLife);
    assert!(out.reports.is_empty(), "{:#?}", out.reports);
    assert_eq!(out.received, PAYLOAD);
    assert_eq!(
        out.torn_down_by_worker, 1,
        "the completion held the last reference and handed it off"
    );
    assert_eq!(out.attachments_left, 0, "the worker unmapped and detached");
}
