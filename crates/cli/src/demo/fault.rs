//! The scripted fault: a stage that hangs parks its job's signaller here instead of
//! signalling; a waiter whose timed wait runs out resets the hung jobs, which signals their
//! fences with `ETIME` (what a GPU scheduler's timeout handler does after a reset).

use dmabuf::{Errno, Signaller};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The hung jobs and what was done about them.
#[derive(Debug, Default)]
pub struct Watchdog {
    hung: Mutex<Vec<(u64, Signaller)>>,
    reset: AtomicU64,
    timeouts: AtomicU64,
}

impl Watchdog {
    /// A stage hangs on `frame`: its fence will not signal until a reset.
    pub fn hang(&self, frame: u64, done: Signaller) {
        self.hung
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((frame, done));
    }

    /// A timed wait ran out: signals every hung job's fence with `ETIME`; returns their
    /// frames (empty if the wait was merely slow).
    pub fn timed_out(&self) -> Vec<u64> {
        self.timeouts.fetch_add(1, Ordering::Relaxed);
        let hung = std::mem::take(&mut *self.hung.lock().unwrap_or_else(|e| e.into_inner()));
        let mut frames = Vec::new();
        for (frame, done) in hung {
            done.signal_with_error(Errno::ETIME);
            self.reset.fetch_add(1, Ordering::Relaxed);
            frames.push(frame);
        }
        frames
    }

    /// Jobs reset so far.
    pub fn resets(&self) -> u64 {
        self.reset.load(Ordering::Relaxed)
    }

    /// Timed waits that ran out (timing-dependent: a slow job can also trip it).
    pub fn timeouts(&self) -> u64 {
        self.timeouts.load(Ordering::Relaxed)
    }

    /// Signals whatever is still hung (teardown after an aborted run), so nothing waits forever.
    pub fn release_all(&self) {
        let hung = std::mem::take(&mut *self.hung.lock().unwrap_or_else(|e| e.into_inner()));
        for (_, done) in hung {
            done.signal_with_error(Errno::ECANCELED);
        }
    }
}
