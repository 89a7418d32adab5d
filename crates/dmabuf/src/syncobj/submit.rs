//! Waiting for a point to be submitted: the waiters a syncobj keeps until its fence covers
//! their point (kernel: the `syncobj_wait_entry` and `syncobj_eventfd_entry` lists of a
//! `drm_syncobj`, `drm_syncobj_fence_add_wait()`, `syncobj_wait_syncobj_func()`,
//! `syncobj_eventfd_entry_func()`).
//!
//! # Rules
//! * A waiter is told once, with the fence for its point (the signalled stub for a point
//!   already collected): at registration if the syncobj's fence covers the point then, else
//!   by the first replacement or added point that makes it so. A reset tells nobody.
//! * Nothing is looked up, and no waiter is told, under the syncobj's lock: the list is taken
//!   under it, the points are looked up outside, and the waiters still uncovered go back —
//!   unless the fence changed meanwhile, in which case they are looked up again against the
//!   new one. So a waiter is never lost between two fence changes.
//! * Every waiter that is due is told, also when telling one panics (a notification runs its
//!   owner's callback); the first panic then continues in the thread that changed the fence,
//!   or is logged if that thread is already unwinding.
//!
//! # Differences from the kernel
//! * The kernel looks points up and wakes waiters under the syncobj's spinlock, so a fence
//!   signalled by that lookup runs its callbacks with the lock held.

use super::{Point, Syncobj, locate_in};
use crate::fence::{Fence, drop_quietly};
use crate::sync::Mutex;
use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

/// What a waiter does once its point has a fence.
type OnSubmit = Box<dyn FnOnce(Fence) + Send>;

/// A waiter for a point to be submitted.
pub(super) struct SubmitWaiter {
    point: Point,
    /// Taken by the one who tells the waiter, or by its owner withdrawing it.
    on_submit: Mutex<Option<OnSubmit>>,
}

impl SubmitWaiter {
    /// A waiter for `point` that runs `on_submit` with the point's fence.
    pub(super) fn new(point: Point, on_submit: impl FnOnce(Fence) + Send + 'static) -> Arc<Self> {
        Arc::new(SubmitWaiter {
            point,
            on_submit: Mutex::new(Some(Box::new(on_submit))),
        })
    }

    /// Tells the waiter its fence, unless it was told or withdrawn before.
    pub(super) fn tell(&self, fence: Fence) {
        let on_submit = self.on_submit.lock().take();
        if let Some(f) = on_submit {
            f(fence);
        }
    }

    /// Takes the action out unrun, so it never runs; dropped by the caller, outside any lock.
    pub(super) fn withdraw(&self) -> Option<impl FnOnce(Fence) + Send + use<>> {
        self.on_submit.lock().take()
    }

    fn is_withdrawn(&self) -> bool {
        self.on_submit.lock().is_none()
    }
}

impl Syncobj {
    /// Registers `waiter` for its point, or answers the fence for the point if the syncobj
    /// has one now (then the waiter is not registered; the caller tells it).
    pub(super) fn register(&self, waiter: &Arc<SubmitWaiter>) -> Option<Fence> {
        loop {
            let (fence, generation) = {
                let st = self.lock();
                (st.fence.clone(), st.generation)
            };
            if let Some(found) = fence.as_ref().and_then(|f| locate_in(f, waiter.point)) {
                return Some(found);
            }
            let mut st = self.lock();
            if st.generation == generation {
                st.waiters.push(waiter.clone());
                return None;
            }
            // The fence changed while the point was looked up: look again.
        }
    }

    /// Takes `waiter` off the list if it is still on it.
    pub(super) fn deregister(&self, waiter: &Arc<SubmitWaiter>) {
        let removed = {
            let mut st = self.lock();
            let at = st.waiters.iter().position(|w| Arc::ptr_eq(w, waiter));
            at.map(|i| st.waiters.remove(i))
        };
        drop(removed);
    }
}

/// Tells the `waiters` taken off `syncobj` whose point `fence` (installed as `generation`)
/// covers, and puts the others back (see the module's rules).
///
/// # Panics
/// With the first panic of a waiter told, once all due were told.
pub(super) fn settle(
    syncobj: &Syncobj,
    mut waiters: Vec<Arc<SubmitWaiter>>,
    mut fence: Option<Fence>,
    mut generation: u64,
) {
    if waiters.is_empty() {
        return;
    }
    let mut panics = Panics::default();
    let mut due = Vec::new();
    loop {
        let mut uncovered = Vec::new();
        for w in waiters.drain(..) {
            if w.is_withdrawn() {
                continue;
            }
            let found = fence.as_ref().and_then(|f| panics.locate(f, w.point));
            match found {
                Some(found) => due.push((w, found)),
                None => uncovered.push(w),
            }
        }
        let mut st = syncobj.lock();
        if st.generation == generation {
            // Back at the front: they came before any waiter registered meanwhile.
            st.waiters.splice(0..0, uncovered);
            break;
        }
        fence = st.fence.clone();
        generation = st.generation;
        drop(st);
        waiters = uncovered;
    }
    for (w, found) in due {
        panics.run(|| w.tell(found));
    }
    panics.resume();
}

/// A panic caught from other people's code, resumed later.
type Payload = Box<dyn Any + Send>;

/// Runs other people's code to the end of a batch: the first panic is kept and resumed by
/// [`resume`](Self::resume), later ones are logged.
#[derive(Default)]
pub(super) struct Panics {
    first: Option<Payload>,
}

impl Panics {
    /// Runs `f`, catching a panic.
    pub(super) fn run(&mut self, f: impl FnOnce()) {
        if let Err(p) = panic::catch_unwind(AssertUnwindSafe(f)) {
            self.keep(p);
        }
    }

    fn keep(&mut self, payload: Payload) {
        if self.first.is_none() {
            self.first = Some(payload);
        } else {
            tracing::error!(target: "dmabuf::syncobj", "another callback panicked; only the first panic is resumed");
            drop_quietly(payload);
        }
    }

    /// The fence for `point` in `fence`. A lookup polls fences, and one that completes
    /// signals and runs its callbacks, which may panic: the panic is kept and the lookup made
    /// again (each fence signals once). A lookup that keeps panicking counts as uncovered.
    fn locate(&mut self, fence: &Fence, point: Point) -> Option<Fence> {
        for _ in 0..8 {
            match panic::catch_unwind(AssertUnwindSafe(|| locate_in(fence, point))) {
                Ok(found) => return found,
                Err(p) => self.keep(p),
            }
        }
        None
    }

    /// Continues the first panic caught, or logs it if this thread is already unwinding (a
    /// second unwind out of a destructor would abort the process).
    pub(super) fn resume(self) {
        let Some(payload) = self.first else { return };
        if std::thread::panicking() {
            tracing::error!(target: "dmabuf::syncobj", "a syncobj callback panicked while the thread was unwinding; the panic is not resumed");
            drop_quietly(payload);
        } else {
            panic::resume_unwind(payload);
        }
    }
}
