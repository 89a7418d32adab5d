//! # dmabuf-cli — the library half of the `dmabuf` command
//!
//! The binary (`src/main.rs`) is the command; this library holds what is worth reaching from
//! elsewhere:
//! * [`bench`](mod@bench) — the hot paths against their baselines, interleaved;
//! * [`demo`] — the pipeline demo (the tests drive it without the binary) and [`trace`], its
//!   Perfetto/Chrome trace writer;
//! * [`inspect`] — the parsers (debugfs `bufinfo`, `/proc/PID/fdinfo/N`, `/proc/PID/maps`),
//!   pure functions over text that the tests and the fuzz crate (`crates/cli/fuzz`) call
//!   directly, and the report built from them.
#![cfg(target_os = "linux")]

pub mod bench;
pub mod demo;
pub mod inspect;
pub mod trace;
