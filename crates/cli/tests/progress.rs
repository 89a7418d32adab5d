//! Progress is drawn on a terminal only: with stderr piped (a CI log), `demo` and `bench`
//! write no carriage return, nothing at all when they succeed; with stderr on a
//! pseudo-terminal they draw indicatif's bar (the frames of the demo, the case of the bench).
#![cfg(target_os = "linux")]

use dmabuf_cli::progress::template_parses;
use rustix::fs::{Mode, OFlags};
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use std::io::Read;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_dmabuf");
/// A short demo run.
#[rustfmt::skip]
const DEMO: [&str; 7] = ["demo", "--frames", "12", "--buffers", "4", "--capacity", "128"];
const BENCH: [&str; 4] = ["bench", "--quick", "--rounds", "1"];

#[test]
fn every_progress_template_parses() {
    for template in [
        dmabuf_cli::demo::progress::FRAMES_TEMPLATE,
        dmabuf_cli::demo::progress::DURATION_TEMPLATE,
        dmabuf_cli::bench::PROGRESS_TEMPLATE,
    ] {
        assert!(template_parses(template), "{template}");
    }
}

#[test]
fn a_piped_stderr_gets_no_progress() {
    for args in [&DEMO[..], &BENCH[..]] {
        let out = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run dmabuf");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains('\r'), "{args:?}: {stderr:?}");
        assert_eq!(stderr, "", "{args:?}");
        assert!(!out.stdout.is_empty(), "{args:?}: the summary or the table");
    }
}

/// Runs `dmabuf args` with stderr on a new pseudo-terminal (stdout piped); returns the
/// output (stderr empty) and what the terminal received.
fn on_a_terminal(args: &[&str]) -> (Output, String) {
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
        .expect("a pseudo-terminal");
    grantpt(&master).expect("grantpt");
    unlockpt(&master).expect("unlockpt");
    let name = ptsname(&master, Vec::new()).expect("ptsname");
    let terminal = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .expect("open the terminal side");
    // Read while the command runs: a full terminal buffer would stop it.
    let reader = std::thread::spawn(move || {
        let mut master = std::fs::File::from(master);
        let mut text = Vec::new();
        let mut chunk = [0u8; 4096];
        // The read fails (EIO) once every descriptor of the terminal side is closed.
        while let Ok(n @ 1..) = master.read(&mut chunk) {
            text.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8_lossy(&text).into_owned()
    });
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stderr(Stdio::from(terminal));
    let out = command.output().expect("run dmabuf");
    drop(command); // closes this process's descriptor of the terminal side
    (out, reader.join().expect("reader"))
}

#[test]
fn a_terminal_gets_a_progress_bar() {
    let (out, text) = on_a_terminal(&DEMO);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("] frame 12/12  "), "{text:?}");
    assert!(text.contains("[=============================="), "{text:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("dmabuf demo summary"),
        "the summary goes to stdout"
    );

    let (out, text) = on_a_terminal(&BENCH);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("] case 1/7: fence create + signal"),
        "{text:?}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("case "));

    // -q draws nothing, even on a terminal.
    let (out, text) = on_a_terminal(&[&DEMO[..], &["-q"]].concat());
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(text, "");
}
