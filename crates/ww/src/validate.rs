//! Hooks into the validator (`dmabuf-lockdep`), compiled to nothing without the `lockdep`
//! feature.
//!
//! As in the kernel, a context is itself a lock of the class `<name>_acquire`, held from
//! `new` to drop, and every mutex locked through it is an acquisition of the class's mutex
//! class nested under it (kernel: `nest_lock`), so any number of them may be held at once but
//! their order against other locks is checked. A mutex locked without a context is a plain
//! exclusive lock of the mutex class: two at once is recursive locking.

#[cfg(feature = "lockdep")]
mod imp {
    use crate::class::WwClass;
    use dmabuf_lockdep::ww::{self, WwCtxId};
    use dmabuf_lockdep::{Acquire, Mode};

    /// A context as the validator knows it.
    pub(crate) struct Ctx {
        class: &'static WwClass,
        id: Option<WwCtxId>,
    }

    impl Ctx {
        pub(crate) fn init(class: &'static WwClass) -> Self {
            if !dmabuf_lockdep::is_enabled() {
                return Ctx { class, id: None };
            }
            let id = ww::acquire_init(class.lockdep_mutex_class());
            dmabuf_lockdep::acquire(
                class.lockdep_acquire_class(),
                Mode::Exclusive,
                Acquire::default(),
            );
            Ctx {
                class,
                id: Some(id),
            }
        }

        /// Whether the validator is off for this context.
        #[inline]
        pub(crate) fn is_off(&self) -> bool {
            self.id.is_none()
        }

        pub(crate) fn done(&self) {
            if let Some(id) = self.id {
                ww::acquire_done(id);
            }
        }

        pub(crate) fn fini(&self) {
            if let Some(id) = self.id {
                ww::acquire_fini(id);
                dmabuf_lockdep::release(self.class.lockdep_acquire_class(), 0);
            }
        }

        /// About to lock `instance` through this context (call before blocking).
        pub(crate) fn before_lock(&self, class: &'static WwClass, instance: usize, slow: bool) {
            if let Some(id) = self.id {
                ww::before_lock(id, class.lockdep_mutex_class(), instance, slow);
                dmabuf_lockdep::acquire(
                    class.lockdep_mutex_class(),
                    Mode::Exclusive,
                    Acquire {
                        trylock: false,
                        instance: 0,
                        nest: Some(self.class.lockdep_acquire_class()),
                    },
                );
            }
        }

        /// A context trylock that succeeded. The context rules apply to it as to `lock`
        /// (kernel: `ww_mutex_trylock` with a context goes through `ww_mutex_lock_acquired`,
        /// which checks `done` and the contended lock); it cannot block, so it is checked
        /// only once it succeeded.
        pub(crate) fn trylocked(&self, class: &'static WwClass, instance: usize) {
            if let Some(id) = self.id {
                ww::before_lock(id, class.lockdep_mutex_class(), instance, false);
                dmabuf_lockdep::acquire(
                    class.lockdep_mutex_class(),
                    Mode::Exclusive,
                    Acquire {
                        trylock: true,
                        instance: 0,
                        nest: Some(self.class.lockdep_acquire_class()),
                    },
                );
                ww::locked(id, instance);
            }
        }

        pub(crate) fn locked(&self, instance: usize) {
            if let Some(id) = self.id {
                ww::locked(id, instance);
            }
        }

        /// The attempt did not lock (`deadlock`: it was answered Deadlock).
        pub(crate) fn failed(&self, class: &'static WwClass, instance: usize, deadlock: bool) {
            if let Some(id) = self.id {
                if deadlock {
                    ww::deadlock(id, instance);
                }
                dmabuf_lockdep::release(class.lockdep_mutex_class(), 0);
            }
        }

        pub(crate) fn unlocked(&self, class: &'static WwClass, instance: usize) {
            if let Some(id) = self.id {
                dmabuf_lockdep::release(class.lockdep_mutex_class(), 0);
                ww::unlocked(id, instance);
            }
        }
    }

    /// A lock without a context: a plain exclusive lock of the mutex class.
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
    pub(crate) fn plain_release(class: &'static WwClass, instance: usize) {
        dmabuf_lockdep::release(class.lockdep_mutex_class(), instance);
    }

    /// Whether plain acquisitions are being recorded (so a failed attempt is released).
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
