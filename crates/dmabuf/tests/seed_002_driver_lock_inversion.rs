//! Seed 002 (i915's `obj->mm.lock` against the reservation lock): the exact report for the
//! broken driver, and silence for the fixed one. Runs the example's own driver code.
#![cfg(feature = "lockdep")]

#[allow(dead_code)] // the example's `main` is not called here
#[path = "../examples/seed_002_driver_lock_inversion.rs"]
mod seed_002;

use dmabuf::lockdep::{Kind, Mode};

#[test]
fn page_lock_outside_the_reservation_lock_is_a_circular_dependency() {
    let (reports, mapped) = seed_002::broken();
    assert!(
        mapped,
        "the broken driver still maps: the problem is only the order"
    );
    assert_eq!(reports.len(), 1, "{reports:#?}");
    let r = &reports[0];
    assert_eq!(r.kind, Kind::CircularDependency);
    // The new dependency first (page lock held, reservation lock taken by the fault path),
    // then the one execbuf recorded (reservation lock held, page lock taken).
    assert_eq!(
        r.cycle_classes(),
        ["seed_002.broken.obj_mm_lock", "reservation_ww_class_mutex"]
    );
    assert_eq!(r.cycle[0].next.name(), "reservation_ww_class_mutex");
    assert_eq!(r.cycle[1].next.name(), "seed_002.broken.obj_mm_lock");
    assert_eq!(
        r.class.map(|c| c.name()),
        Some("reservation_ww_class_mutex")
    );
    let held: Vec<_> = r.held.iter().map(|&(c, m)| (c.name(), m)).collect();
    assert_eq!(held, [("seed_002.broken.obj_mm_lock", Mode::Exclusive)]);
}

#[test]
fn page_lock_nested_inside_the_reservation_lock_is_silent() {
    let (reports, mapped_and_released) = seed_002::fixed();
    assert!(reports.is_empty(), "{reports:#?}");
    assert!(mapped_and_released);
}
