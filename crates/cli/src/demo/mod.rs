//! `dmabuf demo`: a multi-device pipeline on the library's public API, with the validator on.
//!
//! A camera fills buffers of its device memory (small, so buffers are evicted and restored);
//! a pool of GPU workers imports them dynamically and renders into system-heap buffers; an
//! encoder (explicit sync: it gets a sync file) and a USB gadget (implicit sync through the
//! reservation object, functionfs-style completions) read the results (`--stages` picks
//! either or both). At a scripted frame the render hangs: a reader's timed wait runs out,
//! the watchdog signals the hung fence with `ETIME`, and the frame is rendered again. Any
//! validator report or lost frame fails the run.
//!
//! * [`pipeline`] — devices, buffers and the submitting thread;
//! * [`stages`] — the devices' worker threads;
//! * [`imports`] — the devices' dynamic and static imports of the buffers;
//! * [`frames`] — which frames are in flight, finished, delivered or lost;
//! * [`fault`] — the hang and its watchdog;
//! * [`rings`] — fence timelines that count and trace;
//! * [`summary`] — what a run reports.

pub mod fault;
pub mod frames;
pub mod imports;
pub mod pipeline;
pub mod progress;
pub mod rings;
pub mod rng;
pub mod stages;
pub mod summary;

use clap::Args;
pub use stages::Consumer;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
pub use summary::{Counts, FaultReport, Summary};

/// Options of `dmabuf demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Frames to run (ignored when --duration is given).
    #[arg(long, default_value_t = 240, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub frames: u64,
    /// Run for this many seconds instead of a frame count (counts then depend on timing).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration: Option<u64>,
    /// The stages that read each rendered frame, comma-separated: `encoder` (explicit sync
    /// through a sync file), `usb` (implicit sync through the reservation object). The
    /// camera and the GPU always run.
    #[arg(long, value_enum, value_delimiter = ',', num_args = 1..,
          default_values_t = [Consumer::Encoder, Consumer::Usb])]
    pub stages: Vec<Consumer>,
    /// GPU worker threads.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=32))]
    pub gpu_threads: u64,
    /// Camera buffers (in device memory) and as many render targets.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(2..=256))]
    pub buffers: u64,
    /// Device memory capacity in KiB (a frame is 64 KiB; fewer than --buffers frames evict).
    #[arg(long, value_name = "KIB", default_value_t = 320,
          value_parser = clap::value_parser!(u64).range(64..=1_048_576))]
    pub capacity: u64,
    /// Seed of every scheduling decision: one seed, the same summary counts.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// The frame whose render hangs (default: frame 100, or the middle of a shorter run).
    #[arg(long, value_name = "FRAME")]
    pub fault_frame: Option<u64>,
    /// Inject no fault.
    #[arg(long, conflicts_with = "fault_frame")]
    pub no_fault: bool,
    /// How long a consumer waits for a render before the watchdog resets it, in ms.
    #[arg(long, value_name = "MS", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub timeout_ms: u64,
    /// Write a Chrome/Perfetto trace (JSON) to FILE.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// No progress line.
    #[arg(long, short)]
    pub quiet: bool,
}

impl Default for DemoArgs {
    fn default() -> Self {
        DemoArgs {
            frames: 240,
            duration: None,
            stages: vec![Consumer::Encoder, Consumer::Usb],
            gpu_threads: 2,
            buffers: 8,
            capacity: 320,
            seed: 7,
            fault_frame: None,
            no_fault: false,
            timeout_ms: 100,
            trace: None,
            quiet: true,
        }
    }
}

impl DemoArgs {
    /// Whether the reading stage `c` runs (`--stages`).
    pub fn runs(&self, c: Consumer) -> bool {
        self.stages.contains(&c)
    }

    /// The frame to hang, if any: `--fault-frame`, else 100, else the middle of the run.
    pub fn fault(&self) -> Option<u64> {
        if self.no_fault {
            return None;
        }
        match self.fault_frame {
            Some(f) => Some(f),
            None if self.duration.is_some() || self.frames > 100 => Some(100),
            None => Some(self.frames / 2),
        }
    }
}

/// Why a demo could not run at all (not a failed run: see [`Summary::failure`]).
#[derive(Debug)]
pub struct DemoError(pub String);

impl std::fmt::Display for DemoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DemoError {}

impl From<dmabuf::Error> for DemoError {
    fn from(e: dmabuf::Error) -> Self {
        DemoError(e.to_string())
    }
}

/// Runs the demo; writes the trace if asked.
///
/// # Errors
/// Setting up (buffers, mappings) or writing the trace failed.
pub fn run(args: &DemoArgs) -> Result<Summary, DemoError> {
    let trace = std::sync::Arc::new(crate::trace::Trace::new(args.trace.is_some()));
    let summary = pipeline::run(args, &trace)?;
    if let Some(path) = &args.trace {
        trace
            .write_to(path)
            .map_err(|e| DemoError(format!("writing {}: {e}", path.display())))?;
    }
    Ok(summary)
}

/// `dmabuf demo` from the command line: prints the summary; non-zero exit on failure.
pub fn run_cli(args: &DemoArgs) -> ExitCode {
    match run(args) {
        Ok(summary) => {
            // A closed stdout (`| head`) is not an error worth a panic.
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{summary}");
            if let Some(path) = &args.trace {
                let _ = writeln!(
                    out,
                    "trace written to {} (open it in ui.perfetto.dev)",
                    path.display()
                );
            }
            match summary.failure() {
                Some(cause) => {
                    eprintln!("dmabuf demo: FAILED: {cause}");
                    ExitCode::FAILURE
                }
                None => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            eprintln!("dmabuf demo: error: {e}");
            ExitCode::from(2)
        }
    }
}
