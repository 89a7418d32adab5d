//! The fence signalling pseudo-lock (kernel: `dma_fence_begin_signalling()`,
//! `dma_fence_end_signalling()`, `__dma_fence_might_wait()`, `dma_fence_lockdep_map`).
//!
//! Everything between "a fence is visible to others" and "it is signalled" is a *signalling
//! section*: a read acquisition of one global pseudo-lock. Every blocking fence wait is a write
//! acquisition and release of the same pseudo-lock. So a lock `L` taken inside a section
//! records `section -> L`, and `L` held around a wait records `L -> section`: together a cycle,
//! reported though no thread ever deadlocked. Sections nest: an inner `begin` finds the
//! pseudo-lock held and acquires nothing.
//!
//! Starting a section never blocks, so it is recorded as a successful read *trylock* (as in
//! mainline since Hellström's "dma-fence: Use a trylock for the signalling annotation"): locks
//! held when a section starts gain no order before it. That is what makes opportunistic
//! signalling fine — a waiter that polls a fence and signals it on the spot while holding its
//! own locks records nothing against fence waits.
//!
//! # Rules
//! * No lock inside a signalling section that is held anywhere around a fence wait (the
//!   reservation lock is primed to be one).
//! * No blocking fence wait inside a signalling section ([`Kind::WaitInSignalling`]).
//! * No allocation that may reclaim inside a section (see [`crate::reclaim`]).
//!
//! # Differences from the kernel
//! * A wait inside a section is reported directly, not only through a cycle.

use crate::class::Mode;
use crate::delivery;
use crate::held::{self, Acquire};
use crate::report::{Kind, Report};
use std::marker::PhantomData;

pub use crate::well_known::FENCE_SIGNALLING;

/// How a section acquires the pseudo-lock: a read trylock, which cannot block.
const SECTION: Acquire = Acquire {
    trylock: true,
    instance: 0,
    nest: None,
};

/// A signalling section; ends when dropped (kernel: the cookie of
/// `dma_fence_begin_signalling()`). Not `Send`: a section belongs to its thread.
#[must_use = "the section ends when the guard is dropped"]
#[derive(Debug)]
pub struct SignallingSection {
    /// `true` if this guard acquired the pseudo-lock (the outermost section).
    owner: bool,
    _not_send: PhantomData<*const ()>,
}

/// Starts a signalling section (kernel: `dma_fence_begin_signalling()`).
///
/// ```
/// use dmabuf_lockdep::signalling::{begin_signalling, in_signalling_section};
/// {
///     let _s = begin_signalling();
///     let _nested = begin_signalling(); // nesting is free
///     assert!(in_signalling_section());
/// }
/// assert!(!in_signalling_section());
/// ```
#[inline]
pub fn begin_signalling() -> SignallingSection {
    SignallingSection {
        owner: held::is_enabled() && enter_section(),
        _not_send: PhantomData,
    }
}

/// Acquires the pseudo-lock for a section unless one is open; answers whether it did.
fn enter_section() -> bool {
    held::acquire_unless_held(&FENCE_SIGNALLING, Mode::Shared, SECTION)
}

impl Drop for SignallingSection {
    #[inline]
    fn drop(&mut self) {
        if self.owner {
            held::release(&FENCE_SIGNALLING, 0);
        }
    }
}

/// Whether this thread is inside a signalling section.
pub fn in_signalling_section() -> bool {
    held::is_held(&FENCE_SIGNALLING)
}

/// Annotates a blocking fence wait (kernel: `__dma_fence_might_wait()`): records "every lock
/// held here is held around a fence wait", and reports a wait inside a signalling section.
#[inline]
pub fn might_wait() {
    if held::is_enabled() {
        might_wait_enabled();
    }
}

/// [`might_wait`] with validation on.
fn might_wait_enabled() {
    // Outside a section, on a stack whose wait was validated before: nothing to do.
    if held::momentary_exclusive_known(&FENCE_SIGNALLING) {
        return;
    }
    // Reported while the stack is untouched: a report that panics leaves the section held
    // for its guard to end.
    if held::is_held(&FENCE_SIGNALLING) {
        delivery::deliver(Report {
            kind: Kind::WaitInSignalling,
            class: Some(FENCE_SIGNALLING.id()),
            cycle: Vec::new(),
            held: held::held_classes(),
        });
    }
    held::momentary_exclusive(&FENCE_SIGNALLING);
}
