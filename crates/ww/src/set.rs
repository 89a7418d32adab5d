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
                // Back to the caller's order: each guard to the slot of its object's index.
                let mut slots: Vec<Option<WwGuard<'a, T>>> = Vec::new();
                slots.resize_with(objects.len(), || None);
                for (i, g) in order.drain(..).zip(guards.drain(..)) {
                    slots[i] = Some(g);
                }
                guards.extend(slots.into_iter().flatten());
            }
            return Ok(guards);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WwClass;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    static WW: WwClass = WwClass::wound_wait("set.test.ww");
    static WD: WwClass = WwClass::wait_die("set.test.wd");

    #[test]
    fn guards_come_back_in_caller_order_once_each() {
        let m: Vec<_> = (0..5).map(|i| WwMutex::new(&WW, i)).collect();
        let ctx = AcquireCtx::new(&WW);
        let g = ctx.lock_all(&[&m[3], &m[0], &m[3], &m[4], &m[1]]).unwrap();
        let got: Vec<i32> = g.iter().map(|g| **g).collect();
        assert_eq!(got, [3, 0, 4, 1]);
        assert_eq!(ctx.acquired(), 4);
    }

    #[test]
    fn after_back_offs_the_guards_still_come_back_in_caller_order() {
        let m: Vec<_> = (0..16).map(|i| WwMutex::new(&WD, i)).collect();
        let set: Vec<&WwMutex<i32>> = m.iter().rev().chain(m.iter().step_by(3)).collect();
        // The injector is random: retry until a transaction backed off at least once.
        for _ in 0..1000 {
            let ctx = AcquireCtx::new(&WD);
            ctx.inject_deadlocks(std::num::NonZeroU32::new(4));
            let g = ctx.lock_all(&set).unwrap();
            let got: Vec<i32> = g.iter().map(|g| **g).collect();
            assert_eq!(
                got,
                (0..16).rev().collect::<Vec<_>>(),
                "caller order, duplicates once"
            );
            assert_eq!(ctx.acquired(), 16);
            if ctx.backoffs() > 0 {
                return;
            }
        }
        panic!("the injector never forced a back-off");
    }

    /// Threads lock random overlapping sets through `lock_all`, backing off as they collide;
    /// per-object counters prove that no increment is lost and a per-object `busy` flag
    /// that no two hold one at once.
    fn stress(class: &'static WwClass) {
        const OBJECTS: usize = 24;
        let m: Vec<_> = (0..OBJECTS)
            .map(|_| WwMutex::new(class, (AtomicBool::new(false), 0u64)))
            .collect();
        let total = AtomicU64::new(0);
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(600);
        std::thread::scope(|s| {
            for t in 0..3u64 {
                let (m, total) = (&m, &total);
                s.spawn(move || {
                    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (t + 1);
                    let mut done = 0u64;
                    while std::time::Instant::now() < deadline {
                        let set: Vec<&WwMutex<(AtomicBool, u64)>> = (0..6)
                            .map(|_| {
                                x ^= x << 13;
                                x ^= x >> 7;
                                x ^= x << 17;
                                &m[(x % OBJECTS as u64) as usize]
                            })
                            .collect();
                        let ctx = AcquireCtx::new(class);
                        let mut g = ctx.lock_all(&set).unwrap();
                        ctx.done();
                        for g in &mut g {
                            assert!(!g.0.swap(true, Ordering::Relaxed), "two holders");
                        }
                        for g in &mut g {
                            g.1 += 1;
                            done += 1;
                        }
                        std::thread::yield_now();
                        for g in &mut g {
                            g.0.store(false, Ordering::Relaxed);
                        }
                    }
                    total.fetch_add(done, Ordering::Relaxed);
                });
            }
        });
        let sum: u64 = m.into_iter().map(|m| m.into_inner().1).sum();
        assert_eq!(sum, total.load(Ordering::Relaxed), "lost increments");
    }

    #[test]
    fn stress_lock_all_wound_wait() {
        stress(&WW);
    }

    #[test]
    fn stress_lock_all_wait_die() {
        stress(&WD);
    }
}
