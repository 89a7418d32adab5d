//! Reports: what the validator found (kernel: a lockdep splat). Where a report goes is
//! [`crate::delivery`]'s business.
//!
//! A [`Report`] names the rule broken ([`Kind`]), the classes involved and, for a cycle, every
//! dependency in it with where it was first recorded.
//!
//! # Rules
//! * Where a dependency was first recorded is shown as the frames that matter: the caller's,
//!   with the library's entry point for each run of library frames, and none of the standard
//!   library's, the test harness's or the thread start's. Set `DMABUF_LOCKDEP_FULL_BACKTRACE`
//!   to see every frame.

use crate::class::{ClassId, Mode};
use crate::graph::{Hop, Origin};
use crate::well_known::{FENCE_SIGNALLING, RECLAIM};
use std::fmt;

/// The rule a report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A lock order cycle among ordinary locks ("possible circular locking dependency").
    CircularDependency,
    /// A cycle through the fence signalling pseudo-lock: a lock taken inside a signalling
    /// section is also held around a fence wait (or is ordered before one, e.g. the
    /// reservation lock).
    SignallingDeadlock,
    /// A cycle through both reclaim and the fence signalling pseudo-lock: an allocation that may
    /// reclaim (and so wait on fences) inside a signalling section.
    ReclaimInSignalling,
    /// A cycle through reclaim alone (kernel: fs_reclaim inversions).
    ReclaimDeadlock,
    /// A lock class acquired while already held by this thread ("possible recursive locking").
    RecursiveLocking,
    /// A blocking fence wait inside a fence signalling section.
    WaitInSignalling,
    /// A release of a lock this thread does not hold ("bad unlock balance").
    BadUnlock,
    /// A nested acquisition whose nest lock is not held.
    NestLockNotHeld,
    /// A ww_mutex acquire-context rule broken.
    WwMisuse(WwRule),
}

impl Kind {
    /// The kind of a cycle, named by the pseudo-locks it runs through.
    pub(crate) fn of_cycle(cycle: &[Hop]) -> Kind {
        let has = |c: ClassId| cycle.iter().any(|h| h.held == c || h.next == c);
        match (has(FENCE_SIGNALLING.id()), has(RECLAIM.id())) {
            (true, true) => Kind::ReclaimInSignalling,
            (true, false) => Kind::SignallingDeadlock,
            (false, true) => Kind::ReclaimDeadlock,
            (false, false) => Kind::CircularDependency,
        }
    }
}

/// The ww_mutex rules the validator checks (kernel: `CONFIG_DEBUG_WW_MUTEX_SLOWPATH` and
/// lockdep's ww checks; lib/locking-selftest ww cases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WwRule {
    /// A second acquire context on a thread that already has one.
    TwoContexts,
    /// A lock of another ww class taken with this context.
    DifferentClass,
    /// A lock taken after `done`.
    LockAfterDone,
    /// `done` called twice.
    DoneTwice,
    /// `fini` with locks still held.
    FiniWithLocksHeld,
    /// A context used after `fini`, or on a thread it does not belong to.
    StaleContext,
    /// After a Deadlock answer, another lock taken before all held ones were released.
    LockAfterDeadlock,
    /// `lock_slow` on a lock other than the contended one.
    SlowOnWrongLock,
    /// `lock_slow` while still holding locks of the context.
    SlowWithLocksHeld,
    /// `lock_slow` without a preceding Deadlock answer.
    UnneededSlow,
}

/// Identifies "the same problem": kind, class and the cycle's classes (sorted).
pub(crate) type ProblemKey = (Kind, Option<ClassId>, Vec<ClassId>);

/// What the validator found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The rule broken.
    pub kind: Kind,
    /// The class being acquired (or released, or waited on) when it was found.
    pub class: Option<ClassId>,
    /// For cycles: every dependency of the cycle, the new one first.
    pub cycle: Vec<Hop>,
    /// The classes this thread held at the time, outermost first.
    pub held: Vec<(ClassId, Mode)>,
}

impl Report {
    /// The class names of the cycle, in order (empty if not a cycle).
    pub fn cycle_classes(&self) -> Vec<&'static str> {
        self.cycle.iter().map(|h| h.held.name()).collect()
    }

    /// A key identifying "the same problem" for log-once.
    pub(crate) fn key(&self) -> ProblemKey {
        let mut c: Vec<ClassId> = self.cycle.iter().map(|h| h.held).collect();
        c.sort();
        (self.kind, self.class, c)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let title = match self.kind {
            Kind::CircularDependency => "possible circular locking dependency detected",
            Kind::SignallingDeadlock => {
                "possible deadlock: lock taken inside a fence signalling section is held around a fence wait"
            }
            Kind::ReclaimInSignalling => {
                "possible deadlock: memory reclaim (which waits on fences) inside a fence signalling section"
            }
            Kind::ReclaimDeadlock => "possible deadlock through memory reclaim",
            Kind::RecursiveLocking => "possible recursive locking detected",
            Kind::WaitInSignalling => "fence wait inside a fence signalling section",
            Kind::BadUnlock => "bad unlock balance detected",
            Kind::NestLockNotHeld => "nested lock acquired without its nest lock held",
            Kind::WwMisuse(_) => "ww_mutex acquire context misuse",
        };
        writeln!(f, "======================================================")?;
        write!(f, "WARNING: {title}")?;
        if let Kind::WwMisuse(rule) = self.kind {
            write!(f, " ({rule:?})")?;
        }
        writeln!(f)?;
        writeln!(f, "------------------------------------------------------")?;
        if let Some(c) = self.class {
            writeln!(f, "while acquiring: {}", c.name())?;
        }
        if !self.held.is_empty() {
            writeln!(f, "locks held by this thread:")?;
            for (i, (c, m)) in self.held.iter().enumerate() {
                writeln!(f, "  #{i}: {} ({m})", c.name())?;
            }
        }
        if !self.cycle.is_empty() {
            writeln!(f, "the dependency chain:")?;
            for (i, hop) in self.cycle.iter().enumerate() {
                writeln!(
                    f,
                    "-> #{i} {} ({}) held while acquiring {} ({})",
                    hop.held.name(),
                    hop.held_mode,
                    hop.next.name(),
                    hop.next_mode
                )?;
                match &hop.origin {
                    Origin::Primed => writeln!(f, "     recorded by priming")?,
                    Origin::Acquired(bt) => {
                        writeln!(f, "     first recorded at:")?;
                        for line in caller_frames(&bt.to_string()).into_iter().take(40) {
                            writeln!(f, "       {line}")?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// The crates of the library itself: a run of their frames is shown as its outermost frame,
/// the call the user's code made.
const LIBRARY: [&str; 4] = [
    "dmabuf::",
    "dmabuf_ww::",
    "dmabuf_linux::",
    "dmabuf_lockdep::",
];

/// Symbols of the language runtime, the test harness and the C library: never shown.
fn is_runtime(symbol: &str) -> bool {
    let symbol = symbol.trim_start_matches('<');
    [
        "std::",
        "core::",
        "alloc::",
        "test::",
        "__rust",
        "__libc_",
        "_start",
        "start_thread",
    ]
    .iter()
    .any(|p| symbol.starts_with(p))
        || matches!(symbol, "main" | "clone" | "clone3")
}

/// The frames of a printed backtrace worth reading in a report: from the first frame outside
/// the validator's own machinery (this crate, the standard library, and the `validate` hook
/// modules of the crates that call it), the user's frames with, for each run of library frames,
/// only the library's entry point (the outermost frame of the run); the runtime's frames
/// (standard library, test harness, thread start) are left out. With the environment variable
/// `DMABUF_LOCKDEP_FULL_BACKTRACE` set, every frame after the machinery is shown.
fn caller_frames(bt: &str) -> Vec<&str> {
    let full = std::env::var_os("DMABUF_LOCKDEP_FULL_BACKTRACE").is_some();
    let internal = |symbol: &str| {
        let symbol = symbol.trim_start_matches('<');
        ["dmabuf_lockdep::", "std::", "core::", "alloc::"]
            .iter()
            .any(|p| symbol.starts_with(p))
            || symbol.contains("::validate::")
    };
    let library = |symbol: &str| {
        let symbol = symbol.trim_start_matches('<');
        LIBRARY.iter().any(|p| symbol.starts_with(p))
    };
    // Frames: a numbered symbol line and the location lines under it.
    let mut frames: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in bt.lines() {
        let t = line.trim_start();
        match t.split_once(": ") {
            Some((n, symbol)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                frames.push((symbol, vec![line]));
            }
            _ => {
                if let Some((_, lines)) = frames.last_mut() {
                    lines.push(line);
                }
            }
        }
    }
    let start = frames
        .iter()
        .position(|(symbol, _)| !internal(symbol))
        .unwrap_or(frames.len());
    let frames = &frames[start..];
    let mut kept = Vec::new();
    for (i, (symbol, lines)) in frames.iter().enumerate() {
        if !full {
            if is_runtime(symbol) {
                continue;
            }
            // Inside a run of library frames: only the outermost one (the next frame that is
            // shown belongs to someone else).
            let next_shown = frames[i + 1..].iter().find(|(s, _)| !is_runtime(s));
            if library(symbol) && next_shown.is_some_and(|(s, _)| library(s)) {
                continue;
            }
        }
        kept.extend(lines.iter().copied());
    }
    kept
}

#[cfg(test)]
mod tests {
    #[test]
    fn printed_backtraces_start_at_the_caller_and_leave_out_the_runtime() {
        let bt = "   0: dmabuf_lockdep::held::validate\n             at ./held.rs:1:1\n   1: std::thread::local::LocalKey<T>::with\n   2: dmabuf::validate::imp::acquire\n   3: driver::submit\n             at ./driver.rs:9:9\n   4: std::rt::lang_start\n";
        let kept = super::caller_frames(bt);
        assert_eq!(
            kept,
            ["   3: driver::submit", "             at ./driver.rs:9:9"]
        );
    }

    #[test]
    fn a_run_of_library_frames_shows_its_entry_point_only() {
        let bt = [
            "   0: dmabuf_lockdep::held::validate",
            "  12: dmabuf_ww::mutex::WwMutex<T>::lock_plain",
            "             at ./crates/ww/src/mutex.rs:193:9",
            "  13: dmabuf::resv::Resv::lock_single",
            "             at ./crates/dmabuf/src/resv/mod.rs:225:40",
            "  14: seed::FunctionFs::complete",
            "             at ./examples/seed.rs:216:44",
            "  15: seed::run_controller::{{closure}}",
            "  16: dmabuf_lockdep::delivery::capture",
            "             at ./crates/lockdep/src/delivery.rs:72:13",
            "  17: seed::run_controller",
            "  18: std::sys::backtrace::__rust_begin_short_backtrace",
            "  19: <core::panic::unwind_safe::AssertUnwindSafe<F> as core::ops::function::FnOnce<()>>::call_once",
            "  22: __rust_try",
            "  28: <std::sys::thread::unix::Thread>::new::thread_start",
            "  29: start_thread",
            "             at ./nptl/pthread_create.c:442:8",
            "  30: clone3",
            "  31: test::run_test::{{closure}}",
        ]
        .join("\n");
        let kept = super::caller_frames(&bt);
        // Frames 13 (the library's entry point) to 17, the user's, and nothing else.
        let lines: Vec<&str> = bt.lines().collect();
        assert_eq!(kept, lines[3..11]);
    }
}
