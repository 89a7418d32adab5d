//! # dmabuf-cli — the library half of the `dmabuf` command
//!
//! The binary (`src/main.rs`) is the command; this library holds what is worth reaching from
//! elsewhere:
//! * [`bench`](mod@bench) — the hot paths against their baselines, interleaved;
//! * [`demo`] — the pipeline demo (the tests drive it without the binary) and [`trace`], its
//!   Perfetto/Chrome trace writer;
//! * [`inspect`] — the parsers (debugfs `bufinfo`, `/proc/PID/fdinfo/N`, `/proc/PID/maps`),
//!   pure functions over text that the tests and the fuzz crate (`crates/cli/fuzz`) call
//!   directly, and the report built from them;
//! * [`progress`] — the progress bars of `demo` and `bench`, on a terminal only.
#![cfg(target_os = "linux")]

pub mod bench;
pub mod demo;
pub mod inspect;
pub mod progress;
pub mod trace;

/// `n` and the noun for it, singular for exactly one: `plural(1, "report", "reports")` is
/// `1 report`, `plural(0, "report", "reports")` is `0 reports`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
