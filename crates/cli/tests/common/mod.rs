//! Helpers shared by the test programs that run the built `dmabuf` binary: running it, and
//! what its output must look like.
// Each test program uses a different subset.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};

/// The `dmabuf` binary at its build path.
pub const BIN: &str = env!("CARGO_BIN_EXE_dmabuf");

/// Runs `dmabuf args…` without colours and with no stdin, to its end.
pub fn dmabuf(args: &[&str]) -> Output {
    with_stdin(args, Stdio::null())
}

/// Runs `dmabuf args…` without colours and with `stdin` as its standard input, to its end.
pub fn with_stdin(args: &[&str], stdin: impl Into<Stdio>) -> Output {
    Command::new(BIN)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(stdin)
        .output()
        .expect("run dmabuf")
}

/// The JSON a successful run printed.
pub fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// Asserts a failure with `code` and exactly one stderr line `dmabuf: …` holding `needle`.
pub fn assert_one_line_error(out: &Output, code: i32, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "stderr: {err}");
    assert!(err.starts_with("dmabuf: "), "stderr: {err}");
    assert!(err.contains(needle), "stderr: {err}");
    assert!(out.stdout.is_empty());
}

/// Asserts a usage error as clap words it: exit code 2, nothing on stdout, and on stderr the
/// problem, the pointer to `--help`, and each of `needles`.
pub fn assert_usage_error(out: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(err.starts_with("error: "), "stderr: {err}");
    assert!(
        err.contains("For more information, try '--help'."),
        "stderr: {err}"
    );
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} in stderr: {err}");
    }
    assert!(out.stdout.is_empty());
}

/// Asserts each of `args` prints its help on stdout with exit code 0, without colours.
pub fn assert_help(args: &[&[&str]]) {
    for args in args {
        let out = dmabuf(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage: dmabuf"), "{args:?}: {text}");
        assert!(!text.contains('\x1b'), "NO_COLOR: {text}");
    }
}

/// A regular file for test `test` to name as FILE; the caller removes it.
pub fn regular_file(test: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("dmabuf-cli-{test}-{}", std::process::id()));
    std::fs::write(&p, "not a fence\n").unwrap();
    p
}
