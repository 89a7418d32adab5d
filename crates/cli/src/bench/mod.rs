//! `dmabuf bench`: the library's hot paths against their baselines, as a table of ratios.
//!
//! Each case times the library's operation and a baseline doing the nearest plain-Rust
//! equivalent, back to back, for several rounds; a case reports the median of each and the
//! median over rounds of each round's own ratio, with the range of those ratios. The ratio is
//! a cost: value / baseline time, lower is better, 1.0 is as fast as the baseline (the
//! interleaved table of `crates/ww/benches/transactions.rs` prints throughput / baseline's,
//! the reciprocal). Interleaving keeps a noisy stretch of a shared machine from landing on
//! one side only; the range shows how noisy the rounds were. The criterion benches under
//! `crates/*/benches` measure the same paths with more statistics (`BENCHMARKS.md`); this is
//! the quick look.
//!
//! The binary carries the validator (for `demo`); `bench` switches it off first, so the
//! numbers are those of a production build plus one relaxed load per hook. The last case
//! switches it on for its value side: an acquisition the validator has seen before, against
//! the same with the validator off.

mod cases;

use crate::Failure;
use indicatif::ProgressBar;
use serde::Serialize;
use std::time::Duration;

/// Options of `dmabuf bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Print JSON: an array of rows (`name`, `value_ns`, `baseline`, `baseline_ns`, `ratio`,
    /// `ratio_min`, `ratio_max`).
    #[arg(long)]
    pub json: bool,
    /// Rounds per case (each round times both sides once).
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rounds: u32,
    /// Fewer operations per round (for a smoke test; the numbers get noisier).
    #[arg(long)]
    pub quick: bool,
    /// No progress bar (it is drawn only when stderr is a terminal).
    #[arg(long, short)]
    pub quiet: bool,
}

impl Default for Args {
    /// The command line's defaults, without a progress bar.
    fn default() -> Self {
        Args {
            json: false,
            rounds: 7,
            quick: false,
            quiet: true,
        }
    }
}

/// The progress bar: one step per round of every case, the case being measured.
pub const PROGRESS_TEMPLATE: &str = "  [{bar:30}] {msg}";

/// One case's result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    /// What the library does.
    pub name: &'static str,
    /// The library's median time per operation.
    pub value_ns: f64,
    /// What the baseline does.
    pub baseline: &'static str,
    /// The baseline's median time per operation.
    pub baseline_ns: f64,
    /// The median over rounds of value / baseline.
    pub ratio: f64,
    /// The lowest round's value / baseline.
    pub ratio_min: f64,
    /// The highest round's value / baseline.
    pub ratio_max: f64,
}

/// A case: the library's operation and its baseline, each timed over `n` operations.
pub(crate) struct Case {
    name: &'static str,
    baseline: &'static str,
    /// Operations per round at full size.
    ops: u64,
    value: fn(u64) -> Duration,
    base: fn(u64) -> Duration,
}

/// `dmabuf bench`: measures every case and prints the table (or, with `--json`, the rows as
/// JSON) on stdout.
///
/// # Errors
/// The rows could not be written as JSON.
pub fn run(args: &Args) -> Result<(), Failure> {
    let rows = measure(args);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).map_err(Failure::new)?
        );
    } else {
        print!("{}", table(&rows));
    }
    Ok(())
}

/// Measures every case and returns the rows; on a terminal (and not `quiet`) a progress bar
/// on stderr names the case being measured.
pub fn measure(args: &Args) -> Vec<Row> {
    dmabuf::lockdep::set_enabled(false);
    let cases = cases::all();
    let progress = crate::progress::bar(
        crate::progress::shown(args.quiet),
        Some(cases.len() as u64 * u64::from(args.rounds)),
        PROGRESS_TEMPLATE,
    );
    let rows = cases
        .iter()
        .enumerate()
        .map(|(i, case)| {
            progress.set_message(format!("case {}/{}: {}", i + 1, cases.len(), case.name));
            let ops = if args.quick {
                (case.ops / 100).max(1)
            } else {
                case.ops
            };
            measure_case(case, ops, args.rounds, &progress)
        })
        .collect();
    progress.finish_and_clear();
    rows
}

/// Times `case` for `rounds` interleaved rounds of `ops` operations per side, a step of
/// `progress` per round.
fn measure_case(case: &Case, ops: u64, rounds: u32, progress: &ProgressBar) -> Row {
    let per_op = |d: Duration| d.as_nanos() as f64 / ops as f64;
    let (mut values, mut bases, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate who goes first.
        let (v, b) = if round % 2 == 0 {
            let v = per_op((case.value)(ops));
            (v, per_op((case.base)(ops)))
        } else {
            let b = per_op((case.base)(ops));
            (per_op((case.value)(ops)), b)
        };
        values.push(v);
        bases.push(b);
        ratios.push(v / b.max(f64::MIN_POSITIVE));
        progress.inc(1);
    }
    Row {
        name: case.name,
        value_ns: median(values),
        baseline: case.baseline,
        baseline_ns: median(bases),
        ratio_min: ratios.iter().copied().fold(f64::INFINITY, f64::min),
        ratio_max: ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        ratio: median(ratios),
    }
}

/// The median of `v` (not empty).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The table `dmabuf bench` prints.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<34} {:>11}  {:<34} {:>11} {:>7} {:>11}\n",
        "case", "ns/op", "baseline", "ns/op", "ratio", "range"
    );
    for r in rows {
        out += &format!(
            "{:<34} {:>11.1}  {:<34} {:>11.1} {:>6.2}x {:>11}\n",
            r.name,
            r.value_ns,
            r.baseline,
            r.baseline_ns,
            r.ratio,
            format!("{:.2}-{:.2}", r.ratio_min, r.ratio_max)
        );
    }
    out
}
