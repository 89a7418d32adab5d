//! Being told when a syncobj point is available or signalled (kernel:
//! `DRM_IOCTL_SYNCOBJ_EVENTFD`, `drm_syncobj_add_eventfd()`, `syncobj_eventfd_entry_func()`).
//!
//! [`Syncobj::notify`] runs a callback once, [`Syncobj::notified`] is a future; both wait for
//! a point to have a fence ([`NotifyWhen::Available`]) or for that fence to signal
//! ([`NotifyWhen::Signaled`]).
//!
//! # Rules
//! * A registration is told once. If the point is available (or signalled) already, the
//!   callback runs before [`Syncobj::notify`] returns.
//! * For [`NotifyWhen::Available`] the callback runs in the thread that submits the point
//!   (a replacement, an added point, a transfer), after the syncobj's lock is released; for
//!   [`NotifyWhen::Signaled`] it runs in the thread that signals the point's fence, inside
//!   its signalling section, as a fence callback (no fence waits there, no locks a waiter
//!   may hold).
//! * A point that has signalled and been collected is available and signalled (the kernel
//!   gives such a registration the stub fence); a point whose fence the registration has
//!   taken is not affected by later replacements or resets.
//! * A callback may use the syncobj (add a point, notify again, drop the last handle). A
//!   panicking one does not keep the others from running: the panic continues in the
//!   thread that ran it once they have.
//!
//! # Differences from the kernel
//! * A callback or a future instead of an eventfd; the flags are an enum, so an unknown flag
//!   cannot be passed.
//! * A registration can be cancelled ([`Notification::cancel`]); the kernel's lives until
//!   its eventfd fires or its syncobj goes. As in the kernel, a registration whose syncobj
//!   goes before the point is available never runs; a [`NotifyFuture`] keeps its syncobj
//!   alive, so it cannot be stranded that way.

use super::submit::SubmitWaiter;
use super::{Point, Shared, Syncobj};
use crate::error::AlreadySignaled;
use crate::fence::{CallbackHandle, Fence};
use crate::sync::Mutex;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};

/// What a notification waits for (kernel: the `flags` of `DRM_IOCTL_SYNCOBJ_EVENTFD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotifyWhen {
    /// The point's fence has signalled (kernel: flags 0).
    Signaled,
    /// The point has a fence, signalled or not (kernel: `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE`).
    Available,
}

/// The callback of a notification.
type Callback = Box<dyn FnOnce(&Fence) + Send>;

/// Where a registration is.
enum Stage {
    /// The point has no fence yet.
    Waiting(Callback),
    /// Queued on the point's fence, waiting for it to signal.
    Armed(CallbackHandle),
    /// Run, running, or cancelled.
    Finished,
}

/// What the registration and its handle share.
struct Note {
    when: NotifyWhen,
    stage: Mutex<Stage>,
}

impl Note {
    /// The point has a fence.
    fn submitted(&self, fence: Fence) {
        if self.when == NotifyWhen::Signaled {
            // The issuer's hook runs here, before the note's lock is taken.
            fence.enable_sw_signaling();
        }
        let mut stage = self.stage.lock();
        let Stage::Waiting(callback) = std::mem::replace(&mut *stage, Stage::Finished) else {
            return;
        };
        match self.when {
            NotifyWhen::Available => {
                drop(stage);
                callback(&fence);
            }
            NotifyWhen::Signaled => match fence.add_callback(callback) {
                Ok(handle) => *stage = Stage::Armed(handle),
                Err(AlreadySignaled(callback)) => {
                    drop(stage);
                    callback(&fence);
                }
            },
        }
    }
}

/// A registration made by [`Syncobj::notify`]. Dropping the handle leaves it registered.
pub struct Notification {
    note: Arc<Note>,
    syncobj: Weak<Shared>,
    waiter: Arc<SubmitWaiter>,
}

impl Notification {
    /// Cancels the registration: `true` if the callback will never run, `false` if it has
    /// been called (it may still be running in the thread that made the point available).
    /// A callback queued on the point's fence is taken off it as
    /// [`CallbackHandle::remove`] does, which waits for it if it is running on another
    /// thread.
    ///
    /// # Signalling context
    /// That wait is a fence wait for the validator.
    ///
    /// ```
    /// use dmabuf::syncobj::{NotifyWhen, Point, Syncobj};
    /// let s = Syncobj::new();
    /// let n = s.notify(Point(1), NotifyWhen::Available, |_| unreachable!("cancelled first"));
    /// assert!(n.cancel());
    /// s.timeline_signal(Point(1));
    /// ```
    pub fn cancel(self) -> bool {
        let stage = std::mem::replace(&mut *self.note.stage.lock(), Stage::Finished);
        match stage {
            Stage::Waiting(callback) => {
                self.withdraw();
                drop(callback);
                true
            }
            Stage::Armed(handle) => handle.remove(),
            Stage::Finished => false,
        }
    }

    /// Cancels without ever waiting: for callbacks that own everything they touch.
    fn cancel_quietly(self) {
        let stage = std::mem::replace(&mut *self.note.stage.lock(), Stage::Finished);
        match stage {
            Stage::Waiting(callback) => {
                self.withdraw();
                drop(callback);
            }
            Stage::Armed(handle) => handle.cancel(),
            Stage::Finished => {}
        }
    }

    /// Takes the waiter off its syncobj, if the syncobj is still there.
    fn withdraw(&self) {
        if let Some(shared) = self.syncobj.upgrade() {
            Syncobj(shared).deregister(&self.waiter);
        }
        drop(self.waiter.withdraw());
    }
}

impl fmt::Debug for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notification")
            .field("when", &self.note.when)
            .finish_non_exhaustive()
    }
}

impl Syncobj {
    /// Runs `callback` once `point` is available or its fence has signalled (kernel:
    /// `DRM_IOCTL_SYNCOBJ_EVENTFD`), with the point's fence (the stub for a point collected).
    /// At once, before this returns, if that is so already.
    ///
    /// # Signalling context
    /// For [`NotifyWhen::Signaled`], `callback` is a fence callback: it runs inside the
    /// signalling thread's signalling section. See the module docs.
    ///
    /// ```
    /// use dmabuf::syncobj::{NotifyWhen, Point, Syncobj};
    /// use dmabuf::Timeline;
    /// use std::sync::{Arc, atomic::{AtomicU32, Ordering}};
    /// let gpu = Timeline::new("gpu");
    /// let s = Syncobj::new();
    /// let told = Arc::new(AtomicU32::new(0));
    /// for when in [NotifyWhen::Available, NotifyWhen::Signaled] {
    ///     let told = told.clone();
    ///     s.notify(Point(1), when, move |_| { told.fetch_add(1, Ordering::SeqCst); });
    /// }
    /// s.add_point(gpu.create_fence(1).unwrap(), Point(1));
    /// assert_eq!(told.load(Ordering::SeqCst), 1); // available
    /// gpu.inc(1);
    /// assert_eq!(told.load(Ordering::SeqCst), 2); // and signalled
    /// ```
    #[doc(alias = "DRM_IOCTL_SYNCOBJ_EVENTFD")]
    pub fn notify<F>(&self, point: Point, when: NotifyWhen, callback: F) -> Notification
    where
        F: FnOnce(&Fence) + Send + 'static,
    {
        let note = Arc::new(Note {
            when,
            stage: Mutex::new(Stage::Waiting(Box::new(callback))),
        });
        let waiter = {
            let note = note.clone();
            SubmitWaiter::new(point, move |fence| note.submitted(fence))
        };
        if let Some(fence) = self.register(&waiter) {
            waiter.tell(fence);
        }
        Notification {
            note,
            syncobj: Arc::downgrade(&self.0),
            waiter,
        }
    }

    /// A future that resolves, with the point's fence, once `point` is available or its fence
    /// has signalled; runtime-agnostic. It holds a handle to the syncobj; dropping it cancels
    /// the registration without waiting.
    ///
    /// ```
    /// use dmabuf::syncobj::{NotifyWhen, Point, Syncobj};
    /// use std::future::Future;
    /// use std::task::{Context, Waker};
    /// let s = Syncobj::new();
    /// let mut fut = Box::pin(s.notified(Point(2), NotifyWhen::Signaled));
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert!(fut.as_mut().poll(&mut cx).is_pending());
    /// s.timeline_signal(Point(2));
    /// assert!(fut.as_mut().poll(&mut cx).is_ready());
    /// ```
    pub fn notified(&self, point: Point, when: NotifyWhen) -> NotifyFuture {
        NotifyFuture {
            syncobj: self.clone(),
            point,
            when,
            armed: None,
        }
    }
}

/// What a [`NotifyFuture`]'s callback hands over.
#[derive(Default)]
struct Outcome {
    fence: Option<Fence>,
    waker: Option<Waker>,
}

/// Future returned by [`Syncobj::notified`].
#[must_use = "futures do nothing unless polled"]
pub struct NotifyFuture {
    syncobj: Syncobj,
    point: Point,
    when: NotifyWhen,
    armed: Option<(Arc<Mutex<Outcome>>, Notification)>,
}

impl Future for NotifyFuture {
    /// The point's fence (the stub for a point collected).
    type Output = Fence;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Fence> {
        let outcome = match &self.armed {
            Some((outcome, _)) => outcome.clone(),
            None => {
                let outcome = Arc::new(Mutex::new(Outcome {
                    fence: None,
                    waker: Some(cx.waker().clone()),
                }));
                let told = outcome.clone();
                let n = self.syncobj.notify(self.point, self.when, move |fence| {
                    let waker = {
                        let mut o = told.lock();
                        o.fence = Some(fence.clone());
                        o.waker.take()
                    };
                    if let Some(w) = waker {
                        w.wake();
                    }
                });
                self.armed = Some((outcome.clone(), n));
                outcome
            }
        };
        let mut o = outcome.lock();
        match &o.fence {
            Some(fence) => Poll::Ready(fence.clone()),
            None => {
                match &o.waker {
                    Some(old) if old.will_wake(cx.waker()) => {}
                    _ => o.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for NotifyFuture {
    fn drop(&mut self) {
        if let Some((_, n)) = self.armed.take() {
            n.cancel_quietly();
        }
    }
}

impl fmt::Debug for NotifyFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifyFuture")
            .field("point", &self.point)
            .field("when", &self.when)
            .finish_non_exhaustive()
    }
}
