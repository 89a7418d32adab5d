//! The built `dmabuf` binary on bad input: one-line runtime errors, clap's whole message for
//! usage errors, non-zero exits; `--help` and `--version` everywhere. Real sync_files exist only with a fence driver (vgem in the
//! real-kernel harness); here every FILE is something else.
#![cfg(target_os = "linux")]

use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_dmabuf");

fn dmabuf(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Asserts a failure with `code` and exactly one stderr line `dmabuf: …` holding `needle`.
fn assert_one_line_error(out: &Output, code: i32, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "stderr: {err}");
    assert!(err.starts_with("dmabuf: "), "stderr: {err}");
    assert!(err.contains(needle), "stderr: {err}");
    assert!(out.stdout.is_empty());
}

/// Asserts a usage error as clap words it: exit code 2, nothing on stdout, and on stderr the
/// problem, the pointer to `--help`, and each of `needles`.
fn assert_usage_error(out: &Output, needles: &[&str]) {
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

fn regular_file(test: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("dmabuf-cli-{test}-{}", std::process::id()));
    std::fs::write(&p, "not a fence\n").unwrap();
    p
}

#[test]
fn a_regular_file_is_not_a_sync_file() {
    let p = regular_file("regular");
    let path = p.to_str().unwrap();
    for args in [
        vec!["sync-file", "info", path],
        vec!["sync-file", "info", "--json", path],
        vec!["sync-file", "wait", path],
        vec!["sync-file", "wait", "--timeout", "10", path],
        vec!["sync-file", "merge", path, path],
    ] {
        assert_one_line_error(&dmabuf(&args), 1, "not a sync_file");
    }
    std::fs::remove_file(p).unwrap();
}

#[test]
fn an_inherited_descriptor_that_is_not_a_sync_file() {
    let p = regular_file("inherited");
    let out = Command::new(BIN)
        .args(["sync-file", "info", "0"])
        .stdin(std::fs::File::open(&p).unwrap())
        .output()
        .unwrap();
    assert_one_line_error(&out, 1, "0: not a sync_file");
    let out = Command::new(BIN)
        .args(["sync-file", "info", "/proc/self/fd/0"])
        .stdin(std::fs::File::open(&p).unwrap())
        .output()
        .unwrap();
    assert_one_line_error(&out, 1, "not a sync_file");
    std::fs::remove_file(p).unwrap();
}

#[test]
fn missing_paths_and_descriptors() {
    assert_one_line_error(
        &dmabuf(&["sync-file", "info", "/nonexistent/sync_file"]),
        1,
        "/nonexistent/sync_file: No such file",
    );
    assert_one_line_error(&dmabuf(&["sync-file", "wait", "987"]), 1, "987: ");
    assert_one_line_error(&dmabuf(&["sync-file", "info", "--", "-1"]), 1, "-1: fd: ");
}

#[test]
fn help_everywhere() {
    for args in [
        vec!["--help"],
        vec!["inspect", "--help"],
        vec!["sync-file", "--help"],
        vec!["sync-file", "info", "--help"],
        vec!["sync-file", "merge", "--help"],
        vec!["sync-file", "wait", "--help"],
    ] {
        let out = dmabuf(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("Usage: dmabuf"), "{args:?}: {text}");
        assert!(!text.contains('\x1b'), "NO_COLOR: {text}");
    }
    let wait = String::from_utf8(dmabuf(&["sync-file", "wait", "--help"]).stdout).unwrap();
    assert!(wait.contains("3 when the timeout ran out"));
    let out = dmabuf(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .starts_with("dmabuf ")
    );
}

#[test]
fn bad_usage_is_clap_s_whole_message_and_exit_2() {
    assert_usage_error(
        &dmabuf(&["sync-file", "wait"]),
        &[
            "the following required arguments were not provided:\n  <FILE>",
            "Usage: dmabuf sync-file wait",
        ],
    );
    // The missing argument is named, not only announced.
    assert_usage_error(
        &dmabuf(&["sync-file", "merge", "/dev/null"]),
        &[
            "the following required arguments were not provided:\n  <B>",
            "Usage: dmabuf sync-file merge",
        ],
    );
    assert_usage_error(
        &dmabuf(&["no-such-command"]),
        &["unrecognized subcommand 'no-such-command'", "Usage: dmabuf"],
    );
    assert_usage_error(
        &dmabuf(&["sync-file", "wait", "--timeout", "soon", "3"]),
        &["invalid value 'soon' for '--timeout <MS>'"],
    );
    // A negative number looks like an option: clap's tip says how to pass it.
    assert_usage_error(
        &dmabuf(&["sync-file", "info", "-1"]),
        &[
            "unexpected argument '-1' found",
            "tip: to pass '-1' as a value, use '-- -1'",
            "Usage: dmabuf sync-file info",
        ],
    );
}

#[test]
fn inspect_runs_here_and_prints_json() {
    let out = dmabuf(&["inspect", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["buffers"].is_array());
    assert!(v["processes"].is_array());
    assert!(v["exporters"].is_array());
    let out = dmabuf(&["inspect"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8(out.stdout).unwrap().contains("dma-buf"));
}
