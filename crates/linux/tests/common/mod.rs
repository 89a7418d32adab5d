//! Helpers shared by the test programs: descriptor counting, serial execution, loud skips.
// Each test program uses a different subset.
#![allow(dead_code)]

use std::sync::Mutex;

/// Tests that count `/proc/self/fd` run one at a time.
pub static SERIAL: Mutex<()> = Mutex::new(());

/// Descriptors open in this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// Runs `body` alone and asserts it closed every descriptor it opened.
pub fn no_leak(body: impl FnOnce()) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = open_fds();
    body();
    assert_eq!(open_fds(), before, "descriptors leaked");
}

/// Prints `SKIPPED: why` straight to stderr, past libtest's capture, so a skip is never silent.
pub fn skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}
