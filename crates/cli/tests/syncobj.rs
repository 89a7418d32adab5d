//! `dmabuf syncobj` on bad input: one-line runtime errors that say what the FILE argument was,
//! clap's whole message for usage errors, non-zero exits; `--help` everywhere; the message and
//! exit code when there is no DRM device to import a syncobj into. Real syncobjs exist only on
//! a render node with timeline syncobjs (the virtio GPU in the real-kernel harness,
//! `tests/syncobj_live.rs`); here every FILE is something else.
#![cfg(target_os = "linux")]

mod common;

use common::{
    assert_help, assert_one_line_error, assert_usage_error, dmabuf, regular_file, with_stdin,
};
use dmabuf_cli::Failure;
use dmabuf_cli::syncobj::{EXIT_NO_DEVICE, find_device};
use std::path::Path;

#[test]
fn a_regular_file_is_not_a_syncobj() {
    let p = regular_file("syncobj-regular");
    let path = p.to_str().unwrap();
    for args in [
        vec!["syncobj", "info", path],
        vec!["syncobj", "info", "--json", path],
        vec!["syncobj", "wait", path, "1"],
        vec![
            "syncobj",
            "wait",
            "--for-submit",
            "--timeout",
            "10",
            path,
            "1",
        ],
        vec!["syncobj", "signal", path, "1"],
        // The FILE is looked at before any device.
        vec!["syncobj", "--device", "/dev/null", "info", path],
        vec!["syncobj", "signal", "--device", "/nonexistent", path, "1"],
    ] {
        assert_one_line_error(
            &dmabuf(&args),
            1,
            &format!("{path}: the file is not a syncobj file"),
        );
    }
    std::fs::remove_file(p).unwrap();
}

#[test]
fn an_inherited_descriptor_that_is_not_a_syncobj() {
    let p = regular_file("syncobj-inherited");
    for (file, named) in [
        ("0", "0: descriptor 0 of this process"),
        ("/dev/fd/0", "/dev/fd/0: descriptor 0 of this process"),
    ] {
        let out = with_stdin(
            &["syncobj", "wait", file, "3"],
            std::fs::File::open(&p).unwrap(),
        );
        assert_one_line_error(&out, 1, &format!("{named} is not a syncobj file"));
    }
    std::fs::remove_file(p).unwrap();
}

#[test]
fn missing_paths_descriptors_and_processes_say_what_the_argument_was() {
    assert_one_line_error(
        &dmabuf(&["syncobj", "info", "/nonexistent/syncobj"]),
        1,
        "/nonexistent/syncobj: cannot open the file: No such file or directory",
    );
    assert_one_line_error(
        &dmabuf(&["syncobj", "signal", "4000", "1"]),
        1,
        "4000: descriptor 4000 of this process is not open",
    );
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap();
    let gone = format!("/proc/{}/fd/3", pid_max.trim());
    assert_one_line_error(
        &dmabuf(&["syncobj", "wait", &gone, "1"]),
        1,
        &format!("{gone}: process {} does not exist", pid_max.trim()),
    );
}

#[test]
fn no_device_is_exit_5_naming_what_was_tried() {
    let failure = |given: Option<&Path>, dir: &Path| -> Failure {
        find_device(given, None, dir)
            .expect_err("no DRM device here")
            .into()
    };
    // A directory without render nodes.
    let dir = std::env::temp_dir().join(format!("dmabuf-cli-no-dri-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = failure(None, &dir);
    assert_eq!(f.code, EXIT_NO_DEVICE);
    assert_eq!(
        f.message,
        format!(
            "no DRM render node supports timeline syncobjs (checked: no render node under {}); \
             name a render node with --device",
            dir.display()
        )
    );
    // One that only looks like a render node.
    let fake = dir.join("renderD128");
    std::fs::write(&fake, "").unwrap();
    let f = failure(None, &dir);
    assert_eq!(f.code, EXIT_NO_DEVICE);
    assert!(
        f.message
            .contains(&format!("(checked: {} (not a DRM device))", fake.display())),
        "{}",
        f.message
    );
    // A process holding no render node changes nothing.
    let held = find_device(None, Some(std::process::id() as i32), &dir).unwrap_err();
    assert_eq!(held.to_string(), f.message);
    std::fs::remove_dir_all(&dir).unwrap();
    // --device that is no DRM device, or none at all.
    let f = failure(Some(Path::new("/dev/null")), &dir);
    assert_eq!(f.code, EXIT_NO_DEVICE);
    assert_eq!(f.message, "--device /dev/null: not a DRM device");
    let f = failure(Some(Path::new("/nonexistent/renderD128")), &dir);
    assert_eq!(f.code, EXIT_NO_DEVICE);
    assert!(
        f.message.starts_with(
            "--device /nonexistent/renderD128: cannot open the file: No such file or directory"
        ),
        "{}",
        f.message
    );
}

#[test]
fn help_everywhere() {
    assert_help(&[
        &["syncobj", "--help"],
        &["syncobj", "info", "--help"],
        &["syncobj", "wait", "--help"],
        &["syncobj", "signal", "--help"],
    ]);
    let wait = String::from_utf8(dmabuf(&["syncobj", "wait", "--help"]).stdout).unwrap();
    for code in [
        "Exits 0 when it signalled",
        "3 when the timeout ran out",
        "4 when it signalled with an error",
        "5 when there is no DRM device",
        "--for-submit",
        "--available",
        "--device <PATH>",
    ] {
        assert!(wait.contains(code), "{code:?} in {wait}");
    }
}

#[test]
fn bad_usage_is_clap_s_whole_message_and_exit_2() {
    assert_usage_error(
        &dmabuf(&["syncobj", "wait", "3"]),
        &[
            "the following required arguments were not provided:\n  <POINT>",
            "Usage: dmabuf syncobj wait",
        ],
    );
    assert_usage_error(
        &dmabuf(&["syncobj", "signal"]),
        &["<FILE>", "<POINT>", "Usage: dmabuf syncobj signal"],
    );
    assert_usage_error(
        &dmabuf(&["syncobj", "wait", "3", "soon"]),
        &["invalid value 'soon' for '<POINT>'"],
    );
    assert_usage_error(
        &dmabuf(&["syncobj", "signal", "3", "18446744073709551616"]),
        &["invalid value '18446744073709551616' for '<POINT>'"],
    );
    assert_usage_error(
        &dmabuf(&["syncobj", "wait", "--timeout", "-5", "3", "1"]),
        &["unexpected argument '-5' found"],
    );
    assert_usage_error(
        &dmabuf(&["syncobj", "info", "--", "-1"]),
        &["invalid value '-1' for '<FILE>': -1 is not a descriptor number (they are 0 or more)"],
    );
    assert_usage_error(
        &dmabuf(&["syncobj", "frobnicate"]),
        &[
            "unrecognized subcommand 'frobnicate'",
            "Usage: dmabuf syncobj",
        ],
    );
    assert_usage_error(
        &dmabuf(&["syncobj", "info", "--device"]),
        &["a value is required for '--device <PATH>'"],
    );
}
