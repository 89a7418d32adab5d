//! Where reports go: the calling thread's [`capture`], else the global [`ReportMode`]: panic
//! (the default in debug builds, so tests fail at the bad acquisition), log once per distinct
//! problem (the default in release builds), or collect for [`take_reports`].
//!
//! # Rules
//! * A report never panics a thread that is already unwinding from a panic (a second panic
//!   would abort the process): in panic mode it is written to standard error instead.
//! * The validator's own state is consistent before a report goes out, so the unwinding a
//!   panicking report starts finds held what is really held (see [`crate::held`]).
//! * On a thread whose thread-locals are being destroyed, [`capture`] may find its own state
//!   gone: it then runs its closure without capturing, and reports follow the global mode.

use crate::report::{ProblemKey, Report};
use parking_lot::Mutex;
use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU8, Ordering};

/// What happens to a report nobody [`capture`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportMode {
    /// Panic at the offending call (default with debug assertions).
    Panic,
    /// Log each distinct problem once through `tracing::error!` (default without).
    LogOnce,
    /// Keep them for [`take_reports`].
    Collect,
}

static MODE: AtomicU8 = AtomicU8::new(if cfg!(debug_assertions) { 0 } else { 1 });
static COLLECTED: Mutex<Vec<Report>> = Mutex::new(Vec::new());
static LOGGED: Mutex<Option<HashSet<ProblemKey>>> = Mutex::new(None);

std::thread_local! {
    static CAPTURE: RefCell<Option<Vec<Report>>> = const { RefCell::new(None) };
}

/// Sets the global report mode; returns the previous one.
pub fn set_report_mode(mode: ReportMode) -> ReportMode {
    let v = match mode {
        ReportMode::Panic => 0,
        ReportMode::LogOnce => 1,
        ReportMode::Collect => 2,
    };
    match MODE.swap(v, Ordering::AcqRel) {
        0 => ReportMode::Panic,
        1 => ReportMode::LogOnce,
        _ => ReportMode::Collect,
    }
}

/// Takes the reports collected in [`ReportMode::Collect`].
pub fn take_reports() -> Vec<Report> {
    std::mem::take(&mut *COLLECTED.lock())
}

/// Runs `f` and returns what it returned with every report found on this thread meanwhile,
/// whatever the global mode. Reports found on other threads are not captured.
///
/// ```
/// use dmabuf_lockdep::{LockClass, Mutex, Kind, capture};
/// static A: LockClass = LockClass::new("doc.capture.A");
/// static B: LockClass = LockClass::new("doc.capture.B");
/// let a = Mutex::new(&A, ());
/// let b = Mutex::new(&B, ());
/// let ((), reports) = capture(|| {
///     { let _a = a.lock(); let _b = b.lock(); }
///     { let _b = b.lock(); let _a = a.lock(); } // ABBA
/// });
/// assert_eq!(reports.len(), 1);
/// assert_eq!(reports[0].kind, Kind::CircularDependency);
/// ```
pub fn capture<R>(f: impl FnOnce() -> R) -> (R, Vec<Report>) {
    let Ok(outer) = CAPTURE.try_with(|c| c.borrow_mut().replace(Vec::new())) else {
        // This thread's capture state is gone (a thread-local destructor): nothing to
        // capture into.
        return (f(), Vec::new());
    };
    /// Restores the outer capture even if `f` panics.
    struct Restore(Option<Option<Vec<Report>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(outer) = self.0.take() {
                let _ = CAPTURE.try_with(|c| *c.borrow_mut() = outer);
            }
        }
    }
    let mut restore = Restore(Some(outer));
    let r = f();
    let outer = restore.0.take().unwrap_or(None);
    let found = CAPTURE
        .try_with(|c| std::mem::replace(&mut *c.borrow_mut(), outer))
        .ok()
        .flatten();
    (r, found.unwrap_or_default())
}

/// Delivers a report. Must be called with no validator lock held and the validator's state
/// consistent (it may panic).
pub(crate) fn deliver(report: Report) {
    let captured = CAPTURE
        .try_with(|c| match c.borrow_mut().as_mut() {
            Some(v) => {
                v.push(report.clone());
                true
            }
            None => false,
        })
        .unwrap_or(false);
    if captured {
        return;
    }
    match MODE.load(Ordering::Acquire) {
        0 if std::thread::panicking() => {
            eprintln!(
                "dmabuf-lockdep: found while this thread unwinds from a panic (not raised: a \
                 second panic would abort)\n{report}"
            );
        }
        0 => panic!("{report}"),
        1 => {
            let mut logged = LOGGED.lock();
            if logged.get_or_insert_with(HashSet::new).insert(report.key()) {
                drop(logged);
                tracing::error!(target: "dmabuf::lockdep", "{report}");
            }
        }
        _ => COLLECTED.lock().push(report),
    }
}
