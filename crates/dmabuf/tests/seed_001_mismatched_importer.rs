//! Seed 001 (the dynamic/static locking convention and the mapping cached at attach): the
//! exact report for a static importer that maps under its driver lock, silence for one that
//! takes the cached mapping at import, and the pin that cached mapping holds on a dynamic
//! exporter. Runs the example's own driver code.
#![cfg(feature = "lockdep")]

#[allow(dead_code)] // the example's `main` is not called here
#[path = "../examples/seed_001_mismatched_importer.rs"]
mod seed_001;

use dmabuf::buf::Direction;
use dmabuf::buf::exporters::Placement;
use dmabuf::lockdep::{Kind, Mode};

#[test]
fn mapping_under_the_driver_lock_is_a_circular_dependency() {
    let out = seed_001::broken();
    assert_eq!(out.scanned_out, b"frame 2", "the flip itself worked");
    assert_eq!(out.reports.len(), 1, "{:#?}", out.reports);
    let r = &out.reports[0];
    assert_eq!(r.kind, Kind::CircularDependency);
    // Found at the flip: driver lock held, reservation lock taken to map; closed by the
    // eviction's invalidation (reservation lock held, driver lock taken).
    assert_eq!(
        r.cycle_classes(),
        ["seed_001.broken.driver_lock", "reservation_ww_class_mutex"]
    );
    assert_eq!(r.cycle[1].next.name(), "seed_001.broken.driver_lock");
    assert_eq!(
        r.class.map(|c| c.name()),
        Some("reservation_ww_class_mutex")
    );
    let held: Vec<_> = r.held.iter().map(|&(c, m)| (c.name(), m)).collect();
    assert_eq!(held, [("seed_001.broken.driver_lock", Mode::Exclusive)]);
}

#[test]
fn mapping_once_at_import_is_silent_and_the_cached_mapping_is_pinned() {
    let out = seed_001::fixed();
    assert!(out.reports.is_empty(), "{:#?}", out.reports);
    assert_eq!(out.scanned_out, b"frame 2");
    assert_eq!(out.flips, 1);
    // The reservation lock -> driver lock order still ran: it is the only order now.
    assert_eq!(out.invalidations, 2);
    // Static importer, dynamic exporter: mapped at attach, bidirectionally, and cached.
    assert!(out.scanout_cached);
    assert_eq!(out.import_mapping, Some((true, Direction::Bidirectional)));
    // The cached mapping pins the buffer: eviction moves the other frame, not the scanout.
    assert_eq!(out.evicted_after_flip, 1);
    assert_eq!(out.scanout_placement, Some(Placement::Device));
}
