//! The built `dmabuf` binary on bad input: one-line runtime errors that say what the FILE
//! argument was, clap's whole message for usage errors, non-zero exits; `--help` and
//! `--version` everywhere. Real sync_files exist only with a fence driver (vgem in the
//! real-kernel harness); here every FILE is something else.
#![cfg(target_os = "linux")]

mod common;

use common::{
    assert_help, assert_one_line_error, assert_usage_error, dmabuf, regular_file, with_stdin,
};

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
        assert_one_line_error(
            &dmabuf(&args),
            1,
            &format!("{path}: the file is not a sync_file ("),
        );
    }
    std::fs::remove_file(p).unwrap();
}

#[test]
fn an_inherited_descriptor_that_is_not_a_sync_file() {
    let p = regular_file("inherited");
    let out = with_stdin(
        &["sync-file", "info", "0"],
        std::fs::File::open(&p).unwrap(),
    );
    assert_one_line_error(
        &out,
        1,
        "0: descriptor 0 of this process is not a sync_file (",
    );
    let out = with_stdin(
        &["sync-file", "info", "/proc/self/fd/0"],
        std::fs::File::open(&p).unwrap(),
    );
    assert_one_line_error(
        &out,
        1,
        "/proc/self/fd/0: descriptor 0 of this process is not a sync_file (",
    );
    std::fs::remove_file(p).unwrap();
}

#[test]
fn missing_paths_and_descriptors_say_what_the_argument_was() {
    // A path.
    assert_one_line_error(
        &dmabuf(&["sync-file", "info", "/nonexistent/sync_file"]),
        1,
        "/nonexistent/sync_file: cannot open the file: No such file or directory",
    );
    // A number: a descriptor of this process.
    for (cmd, n) in [("wait", "987"), ("info", "4000")] {
        assert_one_line_error(
            &dmabuf(&["sync-file", cmd, n]),
            1,
            &format!("{n}: descriptor {n} of this process is not open"),
        );
    }
    assert_one_line_error(
        &dmabuf(&["sync-file", "info", "/dev/fd/4000"]),
        1,
        "/dev/fd/4000: descriptor 4000 of this process is not open",
    );
    // A number too large for a descriptor is still a number (not a path), refused as usage;
    // so is a negative one.
    assert_usage_error(
        &dmabuf(&["sync-file", "info", "99999999999"]),
        &[
            "invalid value '99999999999' for '<FILE>': descriptor number 99999999999 is out \
             of range (at most 2147483647)",
        ],
    );
    assert_usage_error(
        &dmabuf(&["sync-file", "wait", "--", "-1"]),
        &["invalid value '-1' for '<FILE>': -1 is not a descriptor number (they are 0 or more)"],
    );
    // /proc/PID/fd/N: a descriptor of another process.
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap();
    let gone = format!("/proc/{}/fd/3", pid_max.trim());
    assert_one_line_error(
        &dmabuf(&["sync-file", "info", &gone]),
        1,
        &format!("{gone}: process {} does not exist", pid_max.trim()),
    );
    let me = std::process::id();
    let unopened = format!("/proc/{me}/fd/4000");
    let out = dmabuf(&["sync-file", "info", &unopened]);
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("pidfd_getfd: Operation not permitted") {
        // Without ptrace access to this test (Yama lets a process trace only its descendants).
        assert_one_line_error(
            &out,
            1,
            &format!("; taking a descriptor of process {me} needs ptrace access to it"),
        );
    } else {
        assert_one_line_error(
            &out,
            1,
            &format!("{unopened}: descriptor 4000 of process {me} is not open"),
        );
    }
}

#[test]
fn help_everywhere() {
    assert_help(&[
        &["--help"],
        &["inspect", "--help"],
        &["sync-file", "--help"],
        &["sync-file", "info", "--help"],
        &["sync-file", "merge", "--help"],
        &["sync-file", "wait", "--help"],
    ]);
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
