//! # dmabuf-cli — the library half of the `dmabuf` command
//!
//! The binary (`src/main.rs`) is the command; this library holds what is worth reaching from
//! elsewhere: the [`inspect`] parsers (debugfs `bufinfo`, `/proc/PID/fdinfo/N`,
//! `/proc/PID/maps`), pure functions over text that the tests and the fuzz crate
//! (`crates/cli/fuzz`) call directly, and the report built from them.
#![cfg(target_os = "linux")]

pub mod inspect;
