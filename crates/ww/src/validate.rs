//! Hooks into the validator (`dmabuf-lockdep`), compiled to nothing without the `lockdep`
//! feature.
//!
//! As in the kernel, a context is itself a lock of the class `<name>_acquire`, held from
//! `new` to drop, and every mutex locked through it is an acquisition of the class's mutex
//! class nested under it (kernel: `nest_lock`), so any number of them may be held at once but
//! their order against other locks is checked. A mutex locked without a context is a plain
//! exclusive lock of the mutex class: two at once is recursive locking.
//!
//! A hook that makes two calls into the validator makes the second even when the first
//! reports by panicking, so the validator's picture (its held stack, this thread's context)
//! stays what the unwinding will release.

#[cfg(feature = "lockdep")]
mod imp {
    use crate::class::WwClass;
    use dmabuf_lockdep::ww::{self, WwCtxId};
    use dmabuf_lockdep::{Acquire, Mode};

    /// Runs its closure when dropped, unless defused: the second half of a pair of
    /// validator calls, which must run even when the first half panics with a report.
    struct Finally<F: FnOnce()>(Option<F>);

    impl<F: FnOnce()> Finally<F> {
        fn defuse(mut self) {
            self.0 = None;
        }
    }

    impl<F: FnOnce()> Drop for Finally<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }

    /// A context as the validator knows it.
    ///
    /// Each hook is inlined as far as its check that the validator is on for this context;
    /// what it does then is a call, so a context made while the validator is off costs its
    /// caller a test of `id` per hook and nothing else.
    pub(crate) struct Ctx {
        class: &'static WwClass,
        id: Option<WwCtxId>,
    }

    impl Ctx {
        #[inline]
        pub(crate) fn init(class: &'static WwClass) -> Self {
            if !dmabuf_lockdep::is_enabled() {
                return Ctx { class, id: None };
            }
            Ctx {
                class,
                id: Some(init(class)),
            }
        }

        /// Whether the validator is off for this context.
        #[inline]
        pub(crate) fn is_off(&self) -> bool {
            self.id.is_none()
        }

        #[inline]
        pub(crate) fn done(&self) {
            if let Some(id) = self.id {
                ww::acquire_done(id);
            }
        }

        #[inline]
        pub(crate) fn fini(&self) {
            if let Some(id) = self.id {
                fini(self.class, id);
            }
        }

        /// About to lock `instance` through this context (call before blocking).
        #[inline]
        pub(crate) fn before_lock(&self, class: &'static WwClass, instance: usize, slow: bool) {
            if let Some(id) = self.id {
                before_lock(self.class, id, class, instance, slow);
            }
        }

        /// A context trylock that succeeded. The context rules apply to it as to `lock`
        /// (kernel: `ww_mutex_trylock` with a context goes through `ww_mutex_lock_acquired`,
        /// which checks `done` and the contended lock); it cannot block, so it is checked
        /// only once it succeeded.
        #[inline]
        pub(crate) fn trylocked(&self, class: &'static WwClass, instance: usize) {
            if let Some(id) = self.id {
                trylocked(self.class, id, class, instance);
            }
        }

        #[inline]
        pub(crate) fn locked(&self, instance: usize) {
            if let Some(id) = self.id {
                ww::locked(id, instance);
            }
        }

        /// The attempt did not lock (`deadlock`: it was answered Deadlock).
        #[inline]
        pub(crate) fn failed(&self, class: &'static WwClass, instance: usize, deadlock: bool) {
            if let Some(id) = self.id {
                failed(id, class, instance, deadlock);
            }
        }

        #[inline]
        pub(crate) fn unlocked(&self, class: &'static WwClass, instance: usize) {
            if let Some(id) = self.id {
                unlocked(id, class, instance);
            }
        }
    }

    /// A new context of `class` on this thread, acquired as a lock of its acquire class.
    fn init(class: &'static WwClass) -> WwCtxId {
        let id = ww::acquire_init(class.lockdep_mutex_class());
        // No context is made if the acquisition reports by panicking: end it.
        let end = Finally(Some(move || ww::acquire_fini(id)));
        dmabuf_lockdep::acquire(
            class.lockdep_acquire_class(),
            Mode::Exclusive,
            Acquire::default(),
        );
        end.defuse();
        id
    }

    /// The end of context `id` of `class`, and the release of its acquire class.
    fn fini(class: &'static WwClass, id: WwCtxId) {
        let _release = Finally(Some(move || {
            dmabuf_lockdep::release(class.lockdep_acquire_class(), 0);
        }));
        ww::acquire_fini(id);
    }

    /// A lock of `class` through context `id` of `ctx_class`, nested under the context.
    fn before_lock(
        ctx_class: &'static WwClass,
        id: WwCtxId,
        class: &'static WwClass,
        instance: usize,
        slow: bool,
    ) {
        ww::before_lock(id, class.lockdep_mutex_class(), instance, slow);
        dmabuf_lockdep::acquire(
            class.lockdep_mutex_class(),
            Mode::Exclusive,
            Acquire {
                trylock: false,
                instance: 0,
                nest: Some(ctx_class.lockdep_acquire_class()),
            },
        );
    }

    /// A trylock of `class` through context `id` of `ctx_class` that succeeded.
    fn trylocked(
        ctx_class: &'static WwClass,
        id: WwCtxId,
        class: &'static WwClass,
        instance: usize,
    ) {
        ww::before_lock(id, class.lockdep_mutex_class(), instance, false);
        dmabuf_lockdep::acquire(
            class.lockdep_mutex_class(),
            Mode::Exclusive,
            Acquire {
                trylock: true,
                instance: 0,
                nest: Some(ctx_class.lockdep_acquire_class()),
            },
        );
        ww::locked(id, instance);
    }

    /// An attempt through context `id` that did not lock.
    fn failed(id: WwCtxId, class: &'static WwClass, instance: usize, deadlock: bool) {
        let _release = Finally(Some(move || {
            dmabuf_lockdep::release(class.lockdep_mutex_class(), 0);
        }));
        if deadlock {
            ww::deadlock(id, instance);
        }
    }

    /// An unlock through context `id`.
    fn unlocked(id: WwCtxId, class: &'static WwClass, instance: usize) {
        let _forget = Finally(Some(move || ww::unlocked(id, instance)));
        dmabuf_lockdep::release(class.lockdep_mutex_class(), 0);
    }

    /// A lock without a context: a plain exclusive lock of the mutex class.
    #[inline]
    pub(crate) fn plain_acquire(class: &'static WwClass, instance: usize, trylock: bool) {
        dmabuf_lockdep::acquire(
            class.lockdep_mutex_class(),
            Mode::Exclusive,
            Acquire {
                trylock,
                instance,
                nest: None,
            },
        );
    }

    /// The release of a lock taken without a context (or of a failed attempt).
    #[inline]
    pub(crate) fn plain_release(class: &'static WwClass, instance: usize) {
        dmabuf_lockdep::release(class.lockdep_mutex_class(), instance);
    }

    /// Whether plain acquisitions are being recorded (so a failed attempt is released).
    #[inline]
    pub(crate) fn recording() -> bool {
        dmabuf_lockdep::is_enabled()
    }
}

#[cfg(not(feature = "lockdep"))]
mod imp {
    use crate::class::WwClass;

    /// Nothing to track without the validator.
    pub(crate) struct Ctx;

    impl Ctx {
        #[inline]
        pub(crate) fn init(_class: &'static WwClass) -> Self {
            Ctx
        }
        /// Always off.
        #[inline]
        pub(crate) fn is_off(&self) -> bool {
            true
        }
        #[inline]
        pub(crate) fn done(&self) {}
        #[inline]
        pub(crate) fn fini(&self) {}
        #[inline]
        pub(crate) fn before_lock(&self, _: &'static WwClass, _: usize, _: bool) {}
        #[inline]
        pub(crate) fn trylocked(&self, _: &'static WwClass, _: usize) {}
        #[inline]
        pub(crate) fn locked(&self, _: usize) {}
        #[inline]
        pub(crate) fn failed(&self, _: &'static WwClass, _: usize, _: bool) {}
        #[inline]
        pub(crate) fn unlocked(&self, _: &'static WwClass, _: usize) {}
    }

    #[inline]
    pub(crate) fn plain_acquire(_: &'static WwClass, _: usize, _: bool) {}
    #[inline]
    pub(crate) fn plain_release(_: &'static WwClass, _: usize) {}
    #[inline]
    pub(crate) fn recording() -> bool {
        false
    }
}

pub(crate) use imp::*;

#[cfg(all(test, feature = "lockdep"))]
mod tests {
    use crate::{AcquireCtx, WwClass, WwMutex};
    use std::panic::{AssertUnwindSafe, catch_unwind};

    #[test]
    fn a_context_trylock_whose_report_panics_leaves_the_mutex_unlocked() {
        static C: WwClass = WwClass::wait_die("test.validate.trylock_after_done");
        dmabuf_lockdep::set_report_mode(dmabuf_lockdep::ReportMode::Panic);
        let m = WwMutex::new(&C, ());
        let ctx = AcquireCtx::new(&C);
        ctx.done();
        let payload = catch_unwind(AssertUnwindSafe(|| m.try_lock(&ctx))).expect_err("reported");
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(message.contains("LockAfterDone"), "{message}");
        assert!(
            !m.is_locked(),
            "no guard was made, so nothing holds the mutex"
        );
        assert_eq!(ctx.acquired(), 0);
        let ((), reports) = dmabuf_lockdep::capture(|| drop(ctx));
        assert!(reports.is_empty(), "{reports:?}");
        assert!(dmabuf_lockdep::held_classes().is_empty());
    }
}
