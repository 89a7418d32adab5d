//! Seed 004: an invalidation notifier that waits for a fence under a lock its signalling path
//! needs.
//!
//! # The problem
//! A GPU job may use memory that belongs to a process (a "userptr" buffer). When the process
//! unmaps or moves those pages, the kernel's memory management calls the driver's
//! invalidation notifier, and the driver must not return before the GPU has stopped touching
//! them. Drivers do that by taking their notifier lock, marking the range invalid and waiting
//! for the fence of the last job that uses it.
//!
//! Waiting under that lock is allowed, but it makes the lock part of the fence rules: the
//! fence's signalling path must never take it. If the completion worker that signals the job's
//! fence takes the notifier lock — here, to record that the GPU wrote the pages, so that the
//! invalidation writes them back — then a notifier holding the lock waits for a fence that
//! cannot signal until the notifier lets go. The seed's thread goes further (should notifiers
//! wait on fences at all?); the rule the validator enforces is the one drivers live by today:
//! a lock held around a fence wait is never taken inside a signalling section.
//!
//! # The fix
//! The signalling path stays away from the notifier lock. What the completion wanted to record
//! is known at submit time (the job writes the pages), so the submit path records it under the
//! notifier lock, where it takes that lock anyway. The completion worker still takes a lock —
//! the ring's list of jobs in flight — and that is fine: nobody holds it around a fence wait.
//! (The other way out, dropping the notifier lock before waiting, works too, but then the
//! driver must re-check the range afterwards.)
//!
//! # What runs
//! The broken driver runs its two paths one after the other on purpose: a job completes
//! (signalling section → notifier lock), then the notifier waits for it holding the lock
//! (notifier lock → fence wait). Nothing blocks — the job is done before the notifier waits —
//! and the validator still reports the deadlock the other interleaving would hit. The fixed
//! driver then runs exactly that interleaving with real threads: the notifier holds its lock
//! and waits while the completion worker signals, and everything finishes, silently.
//!
//! Run: `cargo run -p dmabuf --features lockdep --example seed_004_notifier_waits_under_lock`.
//! The same code is checked by `tests/seed_004_notifier_waits_under_lock.rs`.

use dmabuf::fence::{Fence, FenceContext, Signaller};
use dmabuf::lockdep::{LockClass, Mutex, Report, capture, signalling};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;

/// The broken driver's notifier lock class.
pub static BROKEN_NOTIFIER_LOCK: LockClass = LockClass::new("seed_004.broken.notifier_lock");
/// The broken driver's in-flight list lock class.
pub static BROKEN_INFLIGHT_LOCK: LockClass = LockClass::new("seed_004.broken.ring_inflight");
/// The fixed driver's notifier lock class.
pub static FIXED_NOTIFIER_LOCK: LockClass = LockClass::new("seed_004.fixed.notifier_lock");
/// The fixed driver's in-flight list lock class.
pub static FIXED_INFLIGHT_LOCK: LockClass = LockClass::new("seed_004.fixed.ring_inflight");

/// Where the driver records that a job wrote the user pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Design {
    /// The completion worker records it, under the notifier lock (broken).
    CompletionTakesNotifierLock,
    /// The submit path records it; the completion worker never takes the notifier lock.
    SubmitRecords,
}

/// A driver with one userptr range and one ring.
pub struct Driver {
    design: Design,
    ring: FenceContext,
    /// The range's state (kernel: amdgpu's `notifier_lock`), held by the notifier around its
    /// fence wait.
    notifier: Mutex<Range>,
    /// The ring's jobs in flight, retired by the completion worker.
    inflight: Mutex<Vec<u64>>,
}

/// What the notifier lock protects.
#[derive(Default)]
struct Range {
    /// Bumped by every invalidation (kernel: `mmu_interval_set_seq()`).
    seq: u64,
    /// The last job that uses the pages.
    last_job: Option<Fence>,
    /// The GPU wrote the pages: an invalidation must write them back.
    dirty: bool,
}

/// A submitted job: the handle the "hardware" signals when it is done.
pub struct Job {
    seqno: u64,
    done: Signaller,
}

impl Driver {
    /// A driver following `design`, with locks of the given classes.
    pub fn new(
        design: Design,
        notifier_class: &'static LockClass,
        inflight_class: &'static LockClass,
    ) -> Arc<Self> {
        Arc::new(Driver {
            design,
            ring: FenceContext::new("seed004-gpu", "gfx"),
            notifier: Mutex::new(notifier_class, Range::default()),
            inflight: Mutex::new(inflight_class, Vec::new()),
        })
    }

    /// Submits a job that writes the user pages: records it as the range's last job, under
    /// the notifier lock, and queues it on the ring.
    pub fn submit(&self) -> Job {
        let (done, fence) = self.ring.next_fence();
        let seqno = fence.seqno();
        {
            let mut range = self.notifier.lock();
            range.last_job = Some(fence);
            if self.design == Design::SubmitRecords {
                range.dirty = true;
            }
        }
        self.inflight.lock().push(seqno);
        Job { seqno, done }
    }

    /// The completion worker: the job is done on the GPU. Everything from here to the signal
    /// is a fence signalling section — a waiter may be stuck until it ends.
    pub fn complete(&self, job: Job) {
        let _section = signalling::begin_signalling();
        self.inflight.lock().retain(|&s| s != job.seqno);
        if self.design == Design::CompletionTakesNotifierLock {
            // The lock the notifier holds while it waits for this very fence.
            self.notifier.lock().dirty = true;
        }
        job.done.signal();
    }

    /// The invalidation notifier (kernel: `mmu_interval_notifier_ops.invalidate`): the
    /// process unmaps the pages. Takes the notifier lock, marks the range invalid, waits for
    /// the last job and reports whether the pages need writing back.
    pub fn invalidate(&self) -> bool {
        self.invalidate_telling(|| {})
    }

    /// [`invalidate`](Self::invalidate) that calls `holding` with the lock held, just before
    /// the wait (the story uses it to let the job complete while the notifier waits).
    pub fn invalidate_telling(&self, holding: impl FnOnce()) -> bool {
        let mut range = self.notifier.lock();
        range.seq += 1;
        holding();
        if let Some(job) = &range.last_job {
            job.wait_for_signal();
        }
        std::mem::take(&mut range.dirty)
    }

    /// Invalidations so far.
    pub fn invalidations(&self) -> u64 {
        self.notifier.lock().seq
    }

    /// Jobs still in flight.
    pub fn in_flight(&self) -> usize {
        self.inflight.lock().len()
    }
}

/// Runs `f` on a thread of its own ("the completion worker", "the notifier") and returns what
/// it returned with the reports found there.
fn on_thread<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> (R, Vec<Report>) {
    thread::spawn(move || capture(f))
        .join()
        .expect("thread panicked")
}

/// The broken driver, its two paths one after the other: the job completes on the
/// completion worker, then the notifier waits for it on this thread. Returns the reports
/// (both threads') and whether the invalidation saw the pages dirty.
pub fn broken() -> (Vec<Report>, bool) {
    let driver = Driver::new(
        Design::CompletionTakesNotifierLock,
        &BROKEN_NOTIFIER_LOCK,
        &BROKEN_INFLIGHT_LOCK,
    );
    let job = driver.submit();
    let ((), mut reports) = on_thread({
        let driver = driver.clone();
        move || driver.complete(job)
    });
    let (dirty, found) = capture(|| driver.invalidate());
    reports.extend(found);
    (reports, dirty)
}

/// The fixed driver in the interleaving that would deadlock the broken one: the notifier
/// holds its lock and waits while the completion worker signals. Returns the reports of all
/// threads, whether the invalidation saw the pages dirty, and the driver.
pub fn fixed() -> (Vec<Report>, bool, Arc<Driver>) {
    let driver = Driver::new(
        Design::SubmitRecords,
        &FIXED_NOTIFIER_LOCK,
        &FIXED_INFLIGHT_LOCK,
    );
    let job = driver.submit();
    let (holding_tx, holding) = mpsc::channel();
    let notifier = thread::spawn({
        let driver = driver.clone();
        move || {
            capture(|| driver.invalidate_telling(|| holding_tx.send(()).expect("main thread gone")))
        }
    });
    // The notifier holds its lock and is about to wait (or waiting) for the running job.
    holding.recv().expect("notifier thread died");
    let ((), completion_reports) = on_thread({
        let driver = driver.clone();
        move || driver.complete(job)
    });
    let (dirty, notifier_reports) = notifier.join().expect("notifier panicked");
    (
        [completion_reports, notifier_reports].concat(),
        dirty,
        driver,
    )
}

fn main() {
    println!("== seed 004, broken: the completion worker takes the notifier lock");
    println!("completion worker:  signalling section -> notifier lock (marks the pages dirty)");
    println!("notifier:           notifier lock -> wait for the last job's fence");
    let (reports, dirty) = broken();
    println!(
        "the job was done before the notifier waited, so nothing blocked (pages dirty: {dirty});\n\
         the validator reports {}:\n",
        reports.len()
    );
    for r in &reports {
        println!("{r}");
    }

    println!("== seed 004, fixed: the signalling path stays away from the notifier lock");
    let (reports, dirty, driver) = fixed();
    println!(
        "the notifier waited under its lock while the job completed: pages dirty: {dirty}, \
         invalidations: {}, jobs in flight: {}, reports: {}",
        driver.invalidations(),
        driver.in_flight(),
        reports.len()
    );
    for r in &reports {
        println!("{r}");
    }
}
