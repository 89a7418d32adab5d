//! Priming: recording the canonical order up front (kernel: `dma_resv_lockdep()`).
//!
//! The cross-driver rules only show as cycles once both halves have run. The kernel records
//! one half at boot — reservation lock, then reclaim, then a fence wait — so a single driver
//! that takes the reservation lock inside a signalling section is reported at once. The same
//! happens here on the validator's first use; [`declare_order`] adds a user's own classes
//! (e.g. "my driver's lock is taken inside the reservation lock").

use crate::class::{LockClass, Mode};
use crate::delivery;
use crate::graph::{self, Origin};
use crate::report::{Kind, Report};
use crate::well_known::{FENCE_SIGNALLING, RECLAIM};
use std::sync::Once;

pub use crate::well_known::RESERVATION;

static PRIMED: Once = Once::new();

/// Records the canonical order once (done automatically on first use).
pub fn ensure_primed() {
    PRIMED.call_once(record_canonical);
}

/// Records the canonical order.
pub(crate) fn record_canonical() {
    record(&RESERVATION, &RECLAIM);
    record(&RECLAIM, &FENCE_SIGNALLING);
    record(&RESERVATION, &FENCE_SIGNALLING);
}

/// Declares that each class is taken while the previous ones are held, as if a thread had
/// acquired them in this order (exclusively). A declaration that contradicts a recorded
/// order is reported like any cycle.
///
/// ```
/// use dmabuf_lockdep::{LockClass, prime};
/// static DRIVER_LOCK: LockClass = LockClass::new("doc.prime.driver_lock");
/// prime::declare_order(&[&prime::RESERVATION, &DRIVER_LOCK]);
/// assert!(dmabuf_lockdep::has_dependency(prime::RESERVATION.id(), DRIVER_LOCK.id()));
/// ```
pub fn declare_order(classes: &[&'static LockClass]) {
    ensure_primed();
    for pair in classes.windows(2) {
        record(pair[0], pair[1]);
    }
}

fn record(held: &'static LockClass, next: &'static LockClass) {
    if let Some(cycle) = graph::add_edge(
        held.id(),
        Mode::Exclusive,
        next.id(),
        Mode::Exclusive,
        || Origin::Primed,
    ) {
        delivery::deliver(Report {
            kind: Kind::of_cycle(&cycle),
            class: Some(next.id()),
            cycle,
            held: Vec::new(),
        });
    }
}
