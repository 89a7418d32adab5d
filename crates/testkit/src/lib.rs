//! Test helpers the workspace's crates share (a development dependency, never published).
//!
//! * [`in_child`] / [`in_child_with`] / [`scenario_in_child`]: run one test of the current
//!   test binary in a child process, for tests whose failure is an abort, whose scenario
//!   changes process-wide state, or that need a second process.
//! * [`within_watchdog`]: run a closure on a helper thread and turn a hang into a failure.
//! * [`bench_filter`] / [`own_pass_wanted`]: the filter a criterion bench was given, and
//!   whether to run a comparison of its own after criterion's groups.
//! * [`rounds`]: that comparison: a value and its baseline in alternating batches, medians
//!   and spread of the rounds.
//! * [`write_curve`]: the points of such a comparison as a file `curves/plot.py --json` draws.

pub mod rounds;

use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Set in the environment of the child process [`in_child`] starts.
const CHILD: &str = "DMABUF_TEST_CHILD";

/// Whether this process is a child [`in_child`] started: the test runs its scenario.
pub fn is_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// Runs the calling test's scenario in a child process. In the test binary's own process:
/// runs `test` (the caller's name) in a child, checks that it passed and returns its standard
/// error. In the child: `None`, and the caller runs its scenario.
pub fn scenario_in_child(test: &str) -> Option<String> {
    if is_child() {
        return None;
    }
    let (status, stderr) = in_child(test);
    assert!(
        status.success(),
        "{test} in its child process: {status}\n{stderr}"
    );
    Some(stderr)
}

/// Runs `test` of this test binary alone in a child process and returns its exit status and
/// standard error; kills it and fails after a minute.
pub fn in_child(test: &str) -> (ExitStatus, String) {
    in_child_with(test, |_| {})
}

/// [`in_child`], with `configure` adding to the child's command line and standard input
/// (e.g. `--include-ignored` for a test ignored unless asked for, or a socket to talk to the
/// parent over, as its stdin).
pub fn in_child_with(test: &str, configure: impl FnOnce(&mut Command)) -> (ExitStatus, String) {
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    command
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    configure(&mut command);
    let mut child = command.spawn().expect("spawn the test binary");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{test} did not finish within a minute in its child process");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, reader.join().unwrap_or_default())
}

/// Runs `f` on a helper thread and returns its result, failing the test if it has not returned
/// within `limit` (a deadlock or lost wake-up in the library); a panic in `f` is re-raised here.
pub fn within_watchdog<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => {
            t.join().unwrap();
            v
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match t.join() {
            Err(p) => std::panic::resume_unwind(p),
            Ok(()) => unreachable!("helper finished without sending"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: hung for {limit:?}"),
    }
}

/// Whether a criterion bench should run its own pass named `name` after criterion's groups:
/// only when benchmarking (`cargo bench` passes `--bench`; `cargo test` runs the benches once
/// as tests, without it), not when criterion only lists or tests them (`--list`, `--test`),
/// and given a filter, only when `name` contains it.
pub fn own_pass_wanted(name: &str) -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let benchmarking = args.iter().any(|a| a == "--bench");
    let listing = args.iter().any(|a| a == "--list" || a == "--test");
    benchmarking && !listing && bench_filter().is_none_or(|f| name.contains(&f))
}

/// The filter `cargo bench -- <filter>` gave a criterion bench, if any: the first argument
/// that is neither an option nor the value of one (`--warm-up-time 1` is no filter).
pub fn bench_filter() -> Option<String> {
    const VALUED: [&str; 13] = [
        "--warm-up-time",
        "--measurement-time",
        "--sample-size",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--save-baseline",
        "--baseline",
        "--load-baseline",
        "--profile-time",
        "--output-format",
        "--color",
    ];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if VALUED.contains(&a.as_str()) {
            args.next();
        } else if !a.starts_with('-') {
            return Some(a);
        }
    }
    None
}

/// One line of a curve: its name and its points, (x, y) each.
pub type Line<'a> = (&'a str, Vec<(f64, f64)>);

/// Writes `lines` as `<target>/curves/<name>.json` for `curves/plot.py --json`, under the
/// chart's `title` and the axes' names `x` and `y`, and prints the file's path; a failure is
/// a warning on standard error. `<target>` is `CARGO_TARGET_DIR` (a relative one taken from
/// the workspace's root, where `cargo` runs), else the workspace's `target`.
pub fn write_curve(name: &str, title: &str, x: &str, y: &str, lines: &[Line]) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().and_then(Path::parent).unwrap_or(manifest);
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or(root.join("target"), |d| root.join(d));
    let dir = target.join("curves");
    let path = dir.join(format!("{name}.json"));
    match std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, curve_json(title, x, y, lines)))
    {
        Ok(()) => println!("curve: {}", path.display()),
        Err(e) => eprintln!("warning: could not write {}: {e}", path.display()),
    }
}

/// The text of a curve file: `{"title": .., "x": .., "y": .., "lines": {name: [[x, y], ..]}}`.
fn curve_json(title: &str, x: &str, y: &str, lines: &[Line]) -> String {
    let string = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let lines: Vec<String> = lines
        .iter()
        .map(|(name, points)| {
            let points: Vec<String> = points
                .iter()
                .map(|(x, y)| format!("[{x}, {y:.3}]"))
                .collect();
            format!("    {}: [{}]", string(name), points.join(", "))
        })
        .collect();
    format!(
        "{{\n  \"title\": {},\n  \"x\": {},\n  \"y\": {},\n  \"lines\": {{\n{}\n  }}\n}}\n",
        string(title),
        string(x),
        string(y),
        lines.join(",\n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_curve_file_names_its_axes_and_lists_each_line_s_points() {
        let text = curve_json(
            "t \"q\"",
            "threads",
            "reads/s",
            &[
                ("a", vec![(1.0, 2.5), (2.0, 3.25)]),
                ("b", vec![(4.0, 0.0)]),
            ],
        );
        assert_eq!(
            text,
            "{\n  \"title\": \"t \\\"q\\\"\",\n  \"x\": \"threads\",\n  \"y\": \"reads/s\",\n  \
             \"lines\": {\n    \"a\": [[1, 2.500], [2, 3.250]],\n    \"b\": [[4, 0.000]]\n  }\n}\n"
        );
    }
}
