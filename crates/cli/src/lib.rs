//! # dmabuf-cli — the `dmabuf` command, as a library
//!
//! Every subcommand is a module with the same shape: its options as a clap `Args` and
//! `run(&Args) -> Result<(), Failure>`, which prints the subcommand's output and returns a
//! [`Failure`] for the binary (`src/main.rs`, which only parses the command line and
//! dispatches) to report. Besides `run`, each module offers what the tests and the fuzz crate
//! reach without the binary:
//! * [`bench`](mod@bench) — the hot paths against their baselines, interleaved
//!   ([`bench::measure`]);
//! * [`demo`] — the pipeline demo ([`demo::execute`] returns its summary) and [`trace`], its
//!   Perfetto/Chrome trace writer;
//! * [`inspect`] — the parsers (debugfs `bufinfo`, `/proc/PID/fdinfo/N`, `/proc/PID/maps`),
//!   pure functions over text that the tests and the fuzz crate (`crates/cli/fuzz`) call
//!   directly, and the report built from them;
//! * [`sync_file`] — kernel sync_files named by a descriptor number or a path: info, merge,
//!   wait;
//! * [`syncobj`] — DRM sync objects held by any process, named as sync_files are: info
//!   (points and status), wait for a point, CPU-signal a point;
//! * [`file_arg`] — what such a FILE argument names and the descriptor it gives, for
//!   `sync-file` and `syncobj`;
//! * [`progress`] — the progress bars of `demo` and `bench`, on a terminal only.
#![cfg(target_os = "linux")]

pub mod bench;
pub mod demo;
pub mod file_arg;
pub mod inspect;
pub mod progress;
pub mod sync_file;
pub mod syncobj;
pub mod trace;

/// A failed subcommand: the one-line cause and the exit code. The binary prints the cause as
/// `dmabuf: <cause>` on stderr and exits with the code.
#[derive(Debug)]
pub struct Failure {
    /// The cause, printed after `dmabuf: `; empty for a failure already reported (see
    /// [`reported`](Self::reported)).
    pub message: String,
    /// The process's exit code (not 0).
    pub code: u8,
}

impl Failure {
    /// A failure with exit code 1.
    pub fn new(message: impl std::fmt::Display) -> Failure {
        Failure {
            message: message.to_string(),
            code: 1,
        }
    }

    /// A failure whose cause is already on stderr (a failed demo run's own line, the output
    /// of a command `sync-file merge` ran): only the exit code is left to give.
    pub fn reported(code: u8) -> Failure {
        Failure {
            message: String::new(),
            code,
        }
    }
}

/// `n` and the noun for it, singular for exactly one: `plural(1, "report", "reports")` is
/// `1 report`, `plural(0, "report", "reports")` is `0 reports`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
