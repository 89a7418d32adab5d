//! `dmabuf demo --kernel` on real kernel objects: four stage processes sharing dma-heap
//! buffers, ordered by timeline syncobjs on a render node and by vgem fences in the buffers.
//! Needs `/dev/dma_heap/system` (or `/dev/udmabuf`), a render node with timeline syncobjs and
//! vgem: the workspace's real-kernel harness (`vm/run`) runs it as root in Linux 6.12 with a
//! virtio GPU, puts the `dmabuf` binary at its build path and passes `--include-ignored`; the
//! tests are ignored unless asked for, and then a missing device fails them.
//!
//! The tests run one at a time (each starts five processes, and the kill test looks for
//! stage processes left behind).
#![cfg(target_os = "linux")]

mod common;

use common::BIN;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One run at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Under software emulation a render can take tens of milliseconds: a reader waits this long
/// before it gives up on one, so only the scripted hang times out.
const TIMEOUT_MS: &str = "3000";

fn demo(args: &[&str]) -> Output {
    assert!(
        std::path::Path::new(BIN).exists(),
        "the dmabuf binary is not at its build path, {BIN}"
    );
    Command::new(BIN)
        .args(["demo", "--kernel", "-q", "--timeout-ms", TIMEOUT_MS])
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run dmabuf")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The summary's line that starts with `key` (after the indent).
fn line<'a>(summary: &'a str, key: &str) -> &'a str {
    summary
        .lines()
        .find(|l| l.trim_start().starts_with(key))
        .unwrap_or_else(|| panic!("no {key:?} line in:\n{summary}"))
}

/// The processes whose command line is a stage's.
fn stage_processes() -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let words: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        if words.get(1).is_some_and(|w| w == "__stage") {
            found.push((pid, words.get(2).cloned().unwrap_or_default()));
        }
    }
    found
}

#[test]
#[ignore = "needs a dma-heap, a render node with timeline syncobjs and vgem (runs in the qemu guest)"]
fn every_frame_arrives_intact_through_both_sync_styles_and_the_hang_is_recovered() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let trace = std::env::temp_dir().join(format!("demo-kernel-{}.json", std::process::id()));
    let out = demo(&[
        "--frames",
        "40",
        "--buffers",
        "4",
        "--fault-frame",
        "17",
        "--trace",
        trace.to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        line(&text, "frames").split(',').take(4).collect::<Vec<_>>(),
        [
            "  frames      40 captured",
            " 40 delivered",
            " 0 lost",
            " 1 re-rendered"
        ]
    );
    // The camera's 40 frames checked by the renderer, 41 renders (one reset) minus the hung
    // one checked by both readers: 3 × 40 frames of 64 KiB.
    assert!(line(&text, "frames").ends_with("7.5 MiB checked"), "{text}");
    assert!(
        line(&text, "fault").contains("frame 17: its render hung") && text.contains("(recovered)"),
        "{text}"
    );
    // Both readers' waits on the hung attempt, and nothing else, ran out.
    assert!(line(&text, "waits").contains("(2 timed out)"), "{text}");
    assert!(
        line(&text, "descriptors").contains("no stage leaked any"),
        "{text}"
    );
    assert!(line(&text, "validator").contains("0 reports"), "{text}");
    for role in ["camera", "renderer", "encoder", "display"] {
        assert!(line(&text, role).contains("per attempt: p50"), "{text}");
    }
    assert!(stage_processes().is_empty(), "{:?}", stage_processes());

    // The trace: a track per process, and the fences' flows between them.
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&trace).expect("the trace")).expect("JSON");
    std::fs::remove_file(&trace).unwrap();
    let events = doc["traceEvents"].as_array().expect("events");
    let named = |role: &str| {
        events.iter().any(|e| {
            e["name"] == "process_name" && e["args"]["name"] == role && e["pid"].as_u64().is_some()
        })
    };
    for role in ["camera", "renderer", "encoder", "display"] {
        assert!(named(role), "no {role} process in the trace");
    }
    let pids: std::collections::HashSet<u64> =
        events.iter().filter_map(|e| e["pid"].as_u64()).collect();
    assert_eq!(pids.len(), 4, "{pids:?}");
    let flow_ends = |phase: &str| {
        let mut ids: Vec<u64> = events
            .iter()
            .filter(|e| e["ph"] == phase)
            .map(|e| e["id"].as_u64().expect("an id"))
            .collect();
        ids.sort();
        ids
    };
    // Every capture flows to the renderer (40), every finished render to both readers (80).
    let (starts, ends) = (flow_ends("s"), flow_ends("f"));
    assert_eq!(starts.len(), 120);
    assert_eq!(starts, ends, "every flow that starts ends");
    let count = |name: &str, phase: &str| {
        events
            .iter()
            .filter(|e| e["name"] == name && e["ph"] == phase)
            .count()
    };
    assert_eq!(count("capture", "X"), 40);
    assert_eq!(count("render", "X"), 40);
    assert_eq!(count("render hung, reset", "X"), 1);
    // Each reader saw 41 attempts and gave up on one.
    assert_eq!((count("encode", "X"), count("display", "X")), (41, 41));
    assert_eq!(count("timed out", "i"), 2);
}

#[test]
#[ignore = "needs a dma-heap, a render node with timeline syncobjs and vgem (runs in the qemu guest)"]
fn one_seed_gives_the_same_counts_and_each_stage_closes_what_it_opened() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let counts = |out: &Output| {
        let text = stdout(out);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}\n{err}");
        let waits = line(&text, "waits").split(';').next().unwrap().to_owned();
        let descriptors = line(&text, "descriptors").to_owned();
        // Open at the start -> at the end (peak), per stage: the same at both ends, and a
        // peak (counted at the end of every frame) that a descriptor left open per frame
        // would have taken past any fixed bound over these 72 frames.
        let list = descriptors.split("at end: ").nth(1).expect("the list");
        let mut stages = 0;
        for stage in list.trim_end_matches(')').split("), ") {
            let (before, after) = stage.split_once(" -> ").expect("a -> b");
            let before = before.rsplit(' ').next().unwrap();
            let (after, peak) = after.split_once(" (peak ").expect("the peak");
            assert_eq!(before, after, "{descriptors}");
            let (before, peak): (usize, usize) = (before.parse().unwrap(), peak.parse().unwrap());
            assert!(peak >= before && peak <= before + 32, "{descriptors}");
            stages += 1;
        }
        assert_eq!(stages, 4, "{descriptors}");
        (
            line(&text, "frames").to_owned(),
            waits,
            line(&text, "fences").to_owned(),
        )
    };
    let args = [
        "--frames",
        "72",
        "--buffers",
        "3",
        "--seed",
        "11",
        "--no-fault",
    ];
    let first = counts(&demo(&args));
    assert_eq!(first, counts(&demo(&args)));
    assert!(
        first.0.contains("72 delivered, 0 lost, 0 re-rendered"),
        "{first:?}"
    );
    assert!(first.1.contains("(0 timed out)"), "{first:?}");
}

#[test]
#[ignore = "needs a dma-heap, a render node with timeline syncobjs and vgem (runs in the qemu guest)"]
fn readers_that_give_up_under_load_get_the_frame_again_and_the_run_ends() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A one-millisecond patience under emulation: readers give up on renders that were not
    // hung. Every attempt they gave up on is rendered again (up to four per frame), and the
    // run ends, delivered or counted lost.
    let out = Command::new(BIN)
        .args(["demo", "--kernel", "-q", "--no-fault", "--frames", "12"])
        .args(["--timeout-ms", "1"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run dmabuf");
    let (text, err) = (stdout(&out), String::from_utf8_lossy(&out.stderr));
    let number = |line: &str, after: &str| -> u64 {
        let rest = line.split(after).nth(1).expect(after);
        rest.trim_start()
            .split([' ', ',', '('])
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let frames = line(&text, "frames");
    let (lost, rerendered) = (number(frames, "delivered,"), number(frames, "lost,"));
    let timed_out = number(line(&text, "waits"), "(");
    match out.status.code() {
        Some(0) => assert_eq!(lost, 0, "{text}"),
        Some(1) => assert!(err.contains("lost") && lost > 0, "{text}\n{err}"),
        other => panic!("exit {other:?}: {text}\n{err}"),
    }
    assert!(timed_out == 0 || rerendered > 0, "{text}");
}

/// The in-process demo and the pipeline across processes, one after the other with the same
/// frames, their summaries on the guest's console (`target/vm/console.txt`) for
/// BENCHMARKS.md. Under emulation only the ratio between the two means anything.
#[test]
#[ignore = "needs a dma-heap, a render node with timeline syncobjs and vgem (runs in the qemu guest)"]
fn throughput_beside_the_in_process_demo_in_the_same_guest() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for kernel in [false, true] {
        let mut cmd = Command::new(BIN);
        cmd.args(["demo", "-q", "--frames", "240", "--no-fault"]);
        if kernel {
            cmd.args(["--kernel", "--timeout-ms", TIMEOUT_MS]);
        }
        // The summary goes to the console as it is, past the test's capture.
        let status = cmd.stdin(Stdio::null()).status().expect("run dmabuf");
        assert!(status.success(), "kernel: {kernel}");
    }
}

#[test]
#[ignore = "needs a dma-heap, a render node with timeline syncobjs and vgem (runs in the qemu guest)"]
fn a_stage_killed_mid_run_is_named_and_no_process_is_left_behind() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let run = Command::new(BIN)
        .args([
            "demo",
            "--kernel",
            "-q",
            "--no-fault",
            "--frames",
            "1000000",
        ])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run dmabuf");
    // Wait for the renderer to be up, and some frames to go through.
    let started = Instant::now();
    let renderer = loop {
        if let Some(&(pid, _)) = stage_processes().iter().find(|(_, r)| r == "renderer") {
            break pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no renderer stage started"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(1500));
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(renderer as i32).expect("a pid"),
        rustix::process::Signal::KILL,
    )
    .expect("kill the renderer");
    let killed = Instant::now();
    let out = run.wait_with_output().expect("the demo ends");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert!(
        err.starts_with(&format!(
            "dmabuf: the renderer stage (pid {renderer}) died: killed by signal 9 (SIGKILL)"
        )),
        "stderr: {err}"
    );
    // The neighbours noticed and said so.
    assert!(err.contains("the renderer hung up"), "stderr: {err}");
    assert!(
        killed.elapsed() < Duration::from_secs(20),
        "noticed after {:?}",
        killed.elapsed()
    );
    assert!(out.stdout.is_empty(), "{}", stdout(&out));
    assert!(stage_processes().is_empty(), "{:?}", stage_processes());
}
