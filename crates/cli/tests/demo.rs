//! The demo, short: it succeeds with no validator report, its counts repeat for a seed, its
//! trace has a track per device and timeline with every emitted fence signalled, and the
//! scripted fault is recovered with its fence errored.

mod common;
use common::dmabuf;
use dmabuf_cli::demo::{self, Args};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Demo runs share the validator's global report list: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn short(seed: u64) -> Args {
    Args {
        frames: 24,
        buffers: 6,
        capacity: 192,
        seed,
        fault_frame: Some(10),
        timeout_ms: Some(50),
        ..Args::default()
    }
}

#[test]
fn short_run_succeeds_and_repeats_its_counts() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let a = demo::execute(&short(42)).expect("runs");
    let b = demo::execute(&short(42)).expect("runs");
    assert_eq!(a.failure(), None, "{a}");
    assert_eq!(a.counts.validator_reports, 0, "{a}");
    assert_eq!(a.counts.delivered, 24);
    assert!(a.counts.evictions > 0, "device memory under pressure: {a}");
    assert_eq!(a.counts, b.counts, "same seed, same counts");
    let c = demo::execute(&Args {
        no_fault: true,
        fault_frame: None,
        ..short(43)
    })
    .expect("runs");
    assert_eq!(c.failure(), None, "{c}");
    assert_eq!(c.counts.fences_errored, 0);
    assert!(c.fault.is_none());
}

#[test]
fn trace_has_a_track_per_device_and_timeline_and_every_fence_signals() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let path = std::env::temp_dir().join(format!("dmabuf-demo-trace-{}.json", std::process::id()));
    let mut args = short(5);
    args.gpu_threads = 2;
    args.trace = Some(path.clone());
    let summary = demo::execute(&args).expect("runs");
    assert_eq!(summary.failure(), None, "{summary}");
    let text = std::fs::read_to_string(&path).expect("trace written");
    let _ = std::fs::remove_file(&path);
    let doc: Value = serde_json::from_str(&text).expect("valid JSON");
    let events = doc["traceEvents"].as_array().expect("traceEvents");

    let names = |kind: &str| -> HashSet<String> {
        events
            .iter()
            .filter(|e| e["ph"] == "M" && e["name"] == kind)
            .map(|e| e["args"]["name"].as_str().expect("named").to_owned())
            .collect()
    };
    let processes = names("process_name");
    for device in [
        "camera (device memory)",
        "gpu",
        "encoder",
        "usb-gadget",
        "fence timelines",
    ] {
        assert!(
            processes.contains(device),
            "process {device} in {processes:?}"
        );
    }
    let threads = names("thread_name");
    for track in [
        "camera/hw",
        "gpu/worker0",
        "gpu/worker1",
        "encoder/hw",
        "usb-gadget/ep1in",
        "camera/capture0",
        "gpu/ring0",
        "gpu/ring1",
        "encoder/enc0",
        "functionfs/ep1in",
    ] {
        assert!(threads.contains(track), "track {track} in {threads:?}");
    }
    // The document holds the events alone: no `displayTimeUnit`, which some versions of the
    // trace processor read as the unit of `ts`.
    assert_eq!(
        doc.as_object()
            .map(|o| o.keys().map(String::as_str).collect::<Vec<_>>()),
        Some(vec!["traceEvents"])
    );
    for e in events {
        let ph = e["ph"].as_str().expect("ph");
        assert!(["X", "i", "M"].contains(&ph), "{e}");
        // Pids and tids are numbers (the importer makes a string one an interned id).
        assert!(e["pid"].is_u64() && e["tid"].is_u64(), "{e}");
        if ph == "M" {
            continue;
        }
        // Only metadata may omit `ts` (the tokenizer drops any other such event); an `X`
        // without `dur` is dropped; an instant is thread-scoped, on its track.
        assert!(e["ts"].is_number(), "{e}");
        if ph == "X" {
            assert!(e["dur"].is_number(), "{e}");
        } else {
            assert_eq!(e["s"], "t", "{e}");
        }
        // Whole nanoseconds: microseconds with at most three decimals.
        for key in ["ts", "dur"] {
            if let Some(us) = e.get(key).and_then(Value::as_f64) {
                let ns = (us * 1000.0).round();
                assert!((us * 1000.0 - ns).abs() < 1e-3, "{key} in whole ns: {e}");
            }
        }
    }

    // Perfetto's JSON importer (its trace processor) puts the complete ("X") events of one
    // (pid, tid) on one track, where slices must nest: one that starts inside another must
    // end inside it, or it is truncated and counted as a `misplaced_end_event` (data loss).
    // It decides this in whole nanoseconds, rounding `ts` and `dur` (microseconds) each on
    // its own, and takes events in time order, ties in file order; so does this check.
    let nanos = |v: &Value| (v.as_f64().expect("a number") * 1000.0).round() as i64;
    let mut slices: HashMap<(u64, u64), Vec<(i64, i64)>> = HashMap::new();
    for e in events.iter().filter(|e| e["ph"] == "X") {
        let (ts, dur) = (nanos(&e["ts"]), nanos(&e["dur"]));
        assert!(ts >= 0 && dur >= 0, "{e}");
        let track = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
        slices.entry(track).or_default().push((ts, ts + dur));
    }
    for (track, list) in &mut slices {
        list.sort_by_key(|&(start, _)| start); // stable: file order breaks ties
        let mut open: Vec<i64> = Vec::new(); // ends of the enclosing slices
        for &(start, end) in list.iter() {
            while open.last().is_some_and(|&e| e <= start) {
                open.pop();
            }
            if let Some(&outer) = open.last() {
                assert!(
                    end <= outer,
                    "track {track:?}: slice {start}..{end} ns overlaps its enclosing slice's end {outer}"
                );
            }
            open.push(end);
        }
    }
    // Every track with events is named, as the UI labels tracks by these names.
    let named: HashSet<(u64, u64)> = events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .map(|e| (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap()))
        .collect();
    for e in events.iter().filter(|e| e["ph"] != "M") {
        let track = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
        assert!(named.contains(&track), "unnamed track {track:?}: {e}");
    }

    let mut emitted: HashMap<String, u32> = HashMap::new();
    let mut signalled = HashSet::new();
    for e in events.iter().filter(|e| e["ph"] == "i") {
        let fence = e["args"]["fence"].as_str().map(str::to_owned);
        match (e["name"].as_str(), fence) {
            (Some("emit"), Some(f)) => *emitted.entry(f).or_default() += 1,
            (Some("signal"), Some(f)) => {
                assert!(signalled.insert(f.clone()), "{f} signalled once");
            }
            _ => {}
        }
    }
    assert_eq!(emitted.len() as u64, summary.counts.fences_created);
    assert!(emitted.values().all(|&n| n == 1));
    for f in emitted.keys() {
        assert!(
            signalled.contains(f),
            "fence {f} emitted but never signalled"
        );
    }
    assert!(
        events.iter().any(|e| e["name"] == "wait" && e["ph"] == "X"),
        "waits traced"
    );
}

#[test]
fn the_fault_frame_is_recovered_and_its_fence_errored() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let summary = demo::execute(&short(9)).expect("runs");
    assert_eq!(summary.failure(), None, "{summary}");
    let fault = summary.fault.clone().expect("a fault was injected");
    assert_eq!(fault.frame, 10);
    assert_eq!(summary.fault_frame, Some(10));
    assert!(fault.recovered, "{summary}");
    assert_eq!(fault.error, "ETIME");
    assert!(fault.fence.starts_with("gpu/ring"), "{}", fault.fence);
    assert_eq!(summary.counts.fences_errored, 1, "{summary}");
    assert_eq!(summary.counts.rerendered, 1);
    assert_eq!(summary.counts.lost, 0);
    assert!(summary.timeouts >= 1);
    let text = summary.to_string();
    assert!(
        text.contains("frame 10: render hung") && text.contains("recovered"),
        "{text}"
    );
}

#[test]
fn either_reading_stage_alone_runs_recovers_the_fault_and_traces_only_itself() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let both = demo::execute(&short(11)).expect("runs");
    for (stage, own, other) in [
        (demo::Consumer::Encoder, "encoder/hw", "usb-gadget/ep1in"),
        (demo::Consumer::Usb, "usb-gadget/ep1in", "encoder/hw"),
    ] {
        let path = std::env::temp_dir().join(format!(
            "dmabuf-demo-stage-{stage:?}-{}.json",
            std::process::id()
        ));
        let args = Args {
            stages: vec![stage],
            trace: Some(path.clone()),
            ..short(11)
        };
        let summary = demo::execute(&args).expect("runs");
        assert_eq!(summary.failure(), None, "{stage:?}: {summary}");
        assert_eq!(summary.counts.delivered, 24, "{stage:?}");
        // The hang is found by this stage's own timed wait.
        let fault = summary.fault.clone().expect("a fault was injected");
        assert!(fault.recovered, "{stage:?}: {summary}");
        assert_eq!(summary.counts.fences_errored, 1, "{stage:?}");
        assert!(summary.timeouts >= 1, "{stage:?}");
        // One reader's fences fewer per render than with both.
        assert_eq!(
            summary.counts.fences_created,
            both.counts.fences_created - (both.counts.frames + both.counts.rerendered),
            "{stage:?}"
        );
        assert!(
            summary
                .to_string()
                .contains("stages      camera -> gpu x2 -> ")
        );
        let text = std::fs::read_to_string(&path).expect("trace written");
        let _ = std::fs::remove_file(&path);
        assert!(text.contains(own), "{stage:?}: {own} traced");
        assert!(!text.contains(other), "{stage:?}: {other} not traced");
    }
    let none = Args {
        stages: Vec::new(),
        ..short(11)
    };
    let err = demo::execute(&none).expect_err("no reading stage");
    assert!(err.to_string().contains("--stages"), "{err}");
}

#[test]
fn a_run_fails_on_a_validator_report_a_lost_frame_or_an_unsignalled_fence() {
    let summary = |counts: demo::Counts| demo::Summary {
        counts,
        fault: None,
        fault_frame: None,
        elapsed: std::time::Duration::from_secs(1),
        latencies: Vec::new(),
        timeouts: 0,
        reports: Vec::new(),
        seed: 1,
        stages: "camera -> gpu x1 -> usb-gadget".into(),
    };
    let clean = demo::Counts {
        frames: 4,
        delivered: 4,
        fences_created: 9,
        fences_signalled: 9,
        ..demo::Counts::default()
    };
    assert_eq!(summary(clean.clone()).failure(), None);
    let reported = demo::Counts {
        validator_reports: 1,
        ..clean.clone()
    };
    assert_eq!(
        summary(reported).failure().unwrap(),
        "the validator reported 1 problem"
    );
    let lost = demo::Counts {
        delivered: 3,
        lost: 1,
        ..clean.clone()
    };
    assert_eq!(summary(lost).failure().unwrap(), "1 frame lost");
    let unsignalled = demo::Counts {
        fences_signalled: 7,
        ..clean
    };
    assert_eq!(
        summary(unsignalled).failure().unwrap(),
        "2 fences never signalled"
    );
}

#[test]
fn the_summary_says_what_it_measures_and_counts_one_as_one() {
    let summary = |n: u64| demo::Summary {
        counts: demo::Counts {
            frames: 4,
            delivered: 4,
            evictions: n,
            restores: n,
            move_notifies: n,
            fences_created: 9,
            fences_signalled: 9,
            fences_errored: 1,
            validator_reports: n - 1,
            ..demo::Counts::default()
        },
        fault: Some(demo::FaultReport {
            frame: 2,
            fence: "gpu/ring0#3".into(),
            error: "ETIME".into(),
            recovered: true,
        }),
        fault_frame: Some(2),
        elapsed: std::time::Duration::from_secs(1),
        latencies: vec![std::time::Duration::from_millis(2)],
        timeouts: n,
        reports: Vec::new(),
        seed: 1,
        stages: "camera -> gpu x1 -> usb-gadget".into(),
    };
    let one = summary(1).to_string();
    assert!(
        one.contains("\n  latency     capture submitted -> delivered: p50 2.00 ms,"),
        "{one}"
    );
    assert!(
        one.contains("\n  memory      1 eviction, 1 restore, 1 move_notify call\n"),
        "{one}"
    );
    assert!(
        one.contains("recovered (re-rendered) (1 watchdog timeout)\n"),
        "{one}"
    );
    assert!(
        one.ends_with("\n  validator   0 reports (lockdep-style lock and fence checker)"),
        "{one}"
    );
    let two = summary(2).to_string();
    assert!(
        two.contains("\n  memory      2 evictions, 2 restores, 2 move_notify calls\n"),
        "{two}"
    );
    assert!(two.contains("(2 watchdog timeouts)\n"), "{two}");
    assert!(
        two.ends_with("\n  validator   1 report (lockdep-style lock and fence checker)"),
        "{two}"
    );
    for text in [&one, &two] {
        assert!(!text.contains("(s)"), "{text}");
    }
    // A run by duration that ends before the scripted frame says so.
    let unreached = demo::Summary {
        fault: None,
        fault_frame: Some(500),
        ..summary(1)
    };
    assert!(
        unreached
            .to_string()
            .contains("\n  fault       none injected: the run ended before frame 500\n"),
        "{unreached}"
    );
    let none = demo::Summary {
        fault: None,
        fault_frame: None,
        ..summary(1)
    };
    assert!(
        none.to_string()
            .contains("\n  fault       none injected (--no-fault)\n"),
        "{none}"
    );
}

#[test]
fn a_fault_frame_past_the_run_is_refused() {
    let past = |fault_frame, frames| Args {
        frames,
        fault_frame: Some(fault_frame),
        ..Args::default()
    };
    assert_eq!(past(239, 240).check(), Ok(()));
    assert!(past(0, 0).check().unwrap_err().contains("--frames 0"));
    let refused = past(240, 240).check().unwrap_err();
    assert_eq!(
        refused,
        "--fault-frame 240 is past the end of the run: --frames 240 runs frames 0 to 239"
    );
    // By duration the run's end is not known: the summary says if the frame was not reached.
    let by_time = Args {
        duration: Some(1),
        ..past(500, 240)
    };
    assert_eq!(by_time.check(), Ok(()));
    let err = demo::execute(&past(500, 240)).expect_err("refused");
    assert!(matches!(err, demo::DemoError::Options(_)), "{err:?}");
    assert_eq!(err.exit_code(), 2);

    // The binary: a usage error as clap words its own, naming both values; no run.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dmabuf"))
        .args(["demo", "--fault-frame", "500", "--frames", "240"])
        .env("NO_COLOR", "1")
        .output()
        .expect("run dmabuf");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(
            "error: --fault-frame 500 is past the end of the run: --frames 240 runs frames 0 \
             to 239\n"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("\nUsage: dmabuf demo [OPTIONS]"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    // The default run of 240 frames has a default fault frame (100) and any given one
    // short of 240 runs.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dmabuf"))
        .args([
            "demo",
            "-q",
            "--frames",
            "6",
            "--buffers",
            "4",
            "--fault-frame",
            "5",
        ])
        .output()
        .expect("run dmabuf");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("fault       frame 5: render hung"));
}

#[test]
fn the_binary_exits_zero_on_success_and_two_on_bad_options() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A short run, then the options of one test.
    let short = |more: &[&'static str]| {
        let mut args = vec![
            "demo",
            "--frames",
            "12",
            "--buffers",
            "4",
            "--capacity",
            "128",
        ];
        args.extend_from_slice(more);
        dmabuf(&args)
    };
    let ok = short(&["-q"]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        String::from_utf8_lossy(&ok.stdout)
            .contains("validator   0 reports (lockdep-style lock and fence checker)")
    );
    let usb_only = short(&["--stages", "usb", "-q"]);
    assert_eq!(usb_only.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&usb_only.stdout).contains("camera -> gpu x2 -> usb-gadget\n"));
    // Usage errors are clap's whole message: the problem, what is valid, where help is.
    let usage_error = |args: &[&str], needles: &[&str]| {
        let out = dmabuf(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(
            stderr.contains("For more information, try '--help'."),
            "{stderr}"
        );
        for needle in needles {
            assert!(stderr.contains(needle), "{needle:?} in {stderr}");
        }
        assert!(out.stdout.is_empty());
    };
    usage_error(
        &["demo", "--stages", "encoder,printer"],
        &[
            "invalid value 'printer' for '--stages",
            "[possible values: encoder, usb]",
        ],
    );
    usage_error(
        &["demo", "--stages", "gpu"],
        &[
            "invalid value 'gpu' for '--stages",
            "[possible values: encoder, usb]",
        ],
    );
    usage_error(
        &["demo", "--frames", "0"],
        &["invalid value '0' for '--frames <FRAMES>': 0 is not in 1..=1000000"],
    );
}

#[test]
fn a_trace_path_that_cannot_be_written_fails_before_the_run_with_exit_1() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let missing = std::env::temp_dir()
        .join(format!("dmabuf-no-such-dir-{}", std::process::id()))
        .join("demo.json");
    // The library: the error, and no run.
    let err = demo::execute(&Args {
        trace: Some(missing.clone()),
        ..short(3)
    })
    .expect_err("no directory for the trace");
    assert!(
        matches!(
            err,
            demo::DemoError::Trace {
                action: "create",
                ..
            }
        ),
        "{err:?}"
    );
    // The binary: one line naming the path and the OS error, exit code 1 (not the usage code),
    // and no summary: the run never started.
    let dir = std::env::temp_dir();
    for (path, os_error) in [
        (missing.as_path(), "No such file or directory"),
        (dir.as_path(), "Is a directory"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_dmabuf"))
            .args(["demo", "-q", "--trace"])
            .arg(path)
            .output()
            .expect("run dmabuf");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(
            stderr.trim_end(),
            format!(
                "dmabuf: cannot create the trace file {}: {os_error} (os error {})",
                path.display(),
                if os_error == "Is a directory" { 21 } else { 2 }
            )
        );
        assert!(out.stdout.is_empty(), "no run, no summary");
    }
    // A file that opens but cannot take the trace: the summary, then the error, exit code 1.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dmabuf"))
        .args(["demo", "-q", "--frames", "8", "--trace", "/dev/full"])
        .output()
        .expect("run dmabuf");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("dmabuf demo summary"));
    assert_eq!(
        stderr.trim_end(),
        "dmabuf: cannot write the trace file /dev/full: No space left on device (os error 28)"
    );
}

#[test]
fn kernel_mode_names_every_missing_device_with_exit_2_and_refuses_in_process_options() {
    // Options of the in-process pipeline only.
    for option in [
        &["--stages", "usb"][..],
        &["--gpu-threads", "4"],
        &["--duration", "3"],
    ] {
        let mut args = vec!["demo", "--kernel"];
        args.extend_from_slice(option);
        let out = dmabuf(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("cannot be used with"), "{args:?}: {stderr}");
    }
    // A host with every device runs the pipeline instead (demo_kernel_live, in the guest).
    let Err(missing) = dmabuf_cli::demo::kernel::devices::probe() else {
        return;
    };
    let out = dmabuf(&["demo", "--kernel", "-q"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.starts_with("dmabuf: --kernel needs devices this host does not have:\n"),
        "{stderr}"
    );
    for line in &missing {
        assert!(stderr.contains(line.as_str()), "{line:?} in {stderr}");
    }
    assert_eq!(stderr.lines().count(), 1 + missing.len(), "{stderr}");
}
