//! Locking a set of objects with back-off: the loop every driver writes by hand (kernel
//! drivers: `drm_exec`, `ttm_eu_reserve_buffers`).

use crate::ctx::{AcquireCtx, CancelToken};
use crate::error::WwError;
use crate::mutex::{WwGuard, WwMutex};

impl AcquireCtx {
    /// Locks every mutex in `objects`, in any order, backing off and retrying on Deadlock,
    /// and returns one guard per distinct mutex in order of first appearance (a mutex listed
    /// twice is locked once).
    ///
    /// On a Deadlock answer every guard taken so far is dropped, the contended mutex is
    /// locked with [`lock_slow`](WwMutex::lock_slow) and the rest is taken again.
    ///
    /// ```
    /// use dmabuf_ww::{AcquireCtx, WwClass, WwMutex};
    /// static C: WwClass = WwClass::wound_wait("doc.set");
    /// let bufs: Vec<_> = (0..4).map(|i| WwMutex::new(&C, i)).collect();
    /// let ctx = AcquireCtx::new(&C);
    /// let guards = ctx.lock_all(&[&bufs[3], &bufs[1]])?;
    /// assert_eq!((*guards[0], *guards[1]), (3, 1));
    /// # Ok::<(), dmabuf_ww::WwError>(())
    /// ```
    ///
    /// # Errors
    /// [`WwError::ClassMismatch`] if a mutex is of another class than the context; nothing
    /// stays locked.
    pub fn lock_all<'a, T: ?Sized>(
        &'a self,
        objects: &[&'a WwMutex<T>],
    ) -> Result<Vec<WwGuard<'a, T>>, WwError> {
        self.lock_all_inner(objects, None)
    }

    /// [`lock_all`](Self::lock_all) that gives up once `cancel` is cancelled.
    ///
    /// # Errors
    /// As [`lock_all`](Self::lock_all), plus [`WwError::Interrupted`].
    pub fn lock_all_interruptible<'a, T: ?Sized>(
        &'a self,
        objects: &[&'a WwMutex<T>],
        cancel: &CancelToken,
    ) -> Result<Vec<WwGuard<'a, T>>, WwError> {
        self.lock_all_inner(objects, Some(cancel))
    }

    fn lock_all_inner<'a, T: ?Sized>(
        &'a self,
        objects: &[&'a WwMutex<T>],
        cancel: Option<&CancelToken>,
    ) -> Result<Vec<WwGuard<'a, T>>, WwError> {
        let mut guards: Vec<WwGuard<'a, T>> = Vec::with_capacity(objects.len());
        // After a back-off the contended mutex is locked first; `order[k]` is then the index
        // in `objects` of `guards[k]`, to hand the guards back in order of first appearance.
        let mut order: Vec<usize> = Vec::new();
        let mut contended: Option<usize> = None;
        'retry: loop {
            if let Some(i) = contended {
                let g = match cancel {
                    Some(c) => objects[i].lock_slow_interruptible(self, c)?,
                    None => objects[i].lock_slow(self)?,
                };
                guards.push(g);
                order.clear();
                order.push(i);
            }
            for (i, m) in objects.iter().enumerate() {
                if contended == Some(i) {
                    continue;
                }
                let r = match cancel {
                    Some(c) => m.lock_interruptible(self, c),
                    None => m.lock(self),
                };
                match r {
                    Ok(g) => {
                        guards.push(g);
                        if contended.is_some() {
                            order.push(i);
                        }
                    }
                    Err(WwError::AlreadyHeld) => {} // listed twice
                    Err(WwError::Deadlock) => {
                        guards.clear();
                        contended = Some(i);
                        continue 'retry;
                    }
                    Err(e) => return Err(e),
                }
            }
            if contended.is_some() {
                let mut paired: Vec<(usize, WwGuard<'a, T>)> =
                    order.drain(..).zip(guards.drain(..)).collect();
                paired.sort_unstable_by_key(|(i, _)| *i);
                guards.extend(paired.into_iter().map(|(_, g)| g));
            }
            return Ok(guards);
        }
    }
}
