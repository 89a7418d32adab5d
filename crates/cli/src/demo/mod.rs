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
//! * [`rng`] — the seeded random numbers behind every scheduling decision;
//! * [`progress`] — the progress bar on a terminal;
//! * [`summary`] — what a run reports;
//! * [`kernel`] — `--kernel`: the pipeline across processes on real kernel objects.

pub mod fault;
pub mod frames;
pub mod imports;
pub mod kernel;
pub mod pipeline;
pub mod progress;
pub mod rings;
pub mod rng;
pub mod stages;
pub mod summary;

use crate::Failure;
use crate::trace::Trace;
pub use stages::Consumer;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
pub use summary::{Counts, FaultReport, Summary};

/// Options of `dmabuf demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
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
    /// The frame whose render hangs, counted from 0 (default: frame 100, or the middle of a
    /// shorter run); it must be one of the run's --frames.
    #[arg(long, value_name = "FRAME")]
    pub fault_frame: Option<u64>,
    /// Inject no fault.
    #[arg(long, conflicts_with = "fault_frame")]
    pub no_fault: bool,
    /// How long a consumer waits for a render before the watchdog resets it, in ms (default:
    /// 100; with --kernel 1000, since a frame there crosses processes and the kernel).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub timeout_ms: Option<u64>,
    /// Write a Chrome/Perfetto trace (JSON) to FILE (created before the run starts, so a
    /// path that cannot be written fails at once; the trace is written after the run).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// No progress bar (it is drawn only when stderr is a terminal).
    #[arg(long, short)]
    pub quiet: bool,
    /// Run the pipeline across processes on real kernel objects: a camera, a renderer, an
    /// encoder and a display process sharing dma-heap buffers, ordered by timeline syncobjs
    /// and by the fences in the buffers (implicit sync). Needs /dev/dma_heap/system (or
    /// /dev/udmabuf), a render node with timeline syncobjs and vgem.
    #[arg(long, conflicts_with_all = ["duration", "stages", "gpu_threads", "capacity"])]
    pub kernel: bool,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            frames: 240,
            duration: None,
            stages: vec![Consumer::Encoder, Consumer::Usb],
            gpu_threads: 2,
            buffers: 8,
            capacity: 320,
            seed: 7,
            fault_frame: None,
            no_fault: false,
            timeout_ms: None,
            trace: None,
            quiet: true,
            kernel: false,
        }
    }
}

impl Args {
    /// Whether the reading stage `c` runs (`--stages`).
    pub fn runs(&self, c: Consumer) -> bool {
        self.stages.contains(&c)
    }

    /// Whether the options can run together: some reading stage, some frame, and a
    /// `--fault-frame` the run reaches (with `--frames`; a run by `--duration` says in its
    /// summary if it ended before the frame).
    ///
    /// # Errors
    /// What is wrong, naming the options and their values.
    pub fn check(&self) -> Result<(), String> {
        if self.stages.is_empty() {
            return Err("no reading stage: --stages takes encoder, usb or both".into());
        }
        if self.duration.is_none() && self.frames == 0 {
            return Err("--frames 0: a run needs at least one frame".into());
        }
        if self.kernel {
            use kernel::stage::{MAX_BUFFERS, MAX_TIMEOUT};
            if self.buffers > MAX_BUFFERS as u64 {
                return Err(format!(
                    "--buffers {} with --kernel: at most {MAX_BUFFERS} (each edge's buffers and \
                     timelines go to the next stage in one message)",
                    self.buffers
                ));
            }
            if self.timeout() > MAX_TIMEOUT {
                return Err(format!(
                    "--timeout-ms {} with --kernel: at most {} (vgem signals a pending fence \
                     by itself after 10 s, which a longer wait would take for the render)",
                    self.timeout().as_millis(),
                    MAX_TIMEOUT.as_millis()
                ));
            }
        }
        if let Some(frame) = self.fault_frame
            && self.duration.is_none()
            && frame >= self.frames
        {
            return Err(format!(
                "--fault-frame {frame} is past the end of the run: --frames {} runs frames 0 \
                 to {}",
                self.frames,
                self.frames - 1
            ));
        }
        Ok(())
    }

    /// How long a consumer waits for a render: `--timeout-ms`, else 100 ms, or 1000 ms with
    /// `--kernel`.
    pub fn timeout(&self) -> std::time::Duration {
        let default = if self.kernel { 1000 } else { 100 };
        std::time::Duration::from_millis(self.timeout_ms.unwrap_or(default))
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

/// Why a demo could not run at all, or its trace could not be written (not a failed run:
/// see [`Summary::failure`]).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Options that cannot run together (the command line refuses them as a usage error).
    #[error("{0}")]
    Options(String),
    /// The trace file could not be created (before the run) or written (after it).
    #[error("cannot {action} the trace file {}: {source}", path.display())]
    Trace {
        /// `create` or `write`.
        action: &'static str,
        /// The file, as given to `--trace`.
        path: PathBuf,
        /// The operating system's answer.
        source: io::Error,
    },
    /// The library refused to set the pipeline up (an allocation, attachment or mapping).
    #[error(transparent)]
    Setup(#[from] dmabuf::Error),
    /// `--kernel` on a host without a device it needs: one line each.
    #[error("--kernel needs devices this host does not have:\n  {}", .0.join("\n  "))]
    Devices(Vec<String>),
    /// `--kernel`: a stage process died or stopped early.
    #[error("{0}")]
    Stages(String),
}

impl DemoError {
    /// The process's exit code for this error: 2 for options (a usage error), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            DemoError::Options(_) | DemoError::Devices(_) => 2,
            DemoError::Trace { .. } | DemoError::Setup(_) | DemoError::Stages(_) => 1,
        }
    }
}

/// The `--trace` file, created before the run starts so that a path that cannot be written
/// fails at once rather than after the run.
#[derive(Debug)]
pub struct TraceFile {
    path: PathBuf,
    file: File,
    /// Whether this run created it (a run that fails removes it again).
    created: bool,
}

impl TraceFile {
    /// Creates `path`, or opens it for writing if it exists (its contents are replaced only
    /// when the trace is written).
    ///
    /// # Errors
    /// [`DemoError::Trace`] naming the path and the operating system's answer.
    pub fn create(path: &Path) -> Result<TraceFile, DemoError> {
        let error = |source| DemoError::Trace {
            action: "create",
            path: path.to_owned(),
            source,
        };
        let (file, created) = match OpenOptions::new().write(true).create_new(true).open(path) {
            Ok(file) => (file, true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => (
                OpenOptions::new().write(true).open(path).map_err(error)?,
                false,
            ),
            Err(e) => return Err(error(e)),
        };
        Ok(TraceFile {
            path: path.to_owned(),
            file,
            created,
        })
    }

    /// The path, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file's contents with `trace`.
    ///
    /// # Errors
    /// [`DemoError::Trace`] naming the path and the operating system's answer.
    pub fn write(self, trace: &Trace) -> Result<(), DemoError> {
        let error = |source| DemoError::Trace {
            action: "write",
            path: self.path.clone(),
            source,
        };
        // A regular file that existed keeps nothing of its old contents; a pipe or a device
        // (`/dev/stdout`) has no length to cut.
        if self.file.metadata().map_err(error)?.is_file() {
            self.file.set_len(0).map_err(error)?;
        }
        trace.write(&self.file).map_err(error)
    }

    /// Gives the file up unwritten: removes it if this run created it.
    pub fn discard(self) {
        if self.created {
            drop(self.file);
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A finished run whose trace, if one was asked for, is still to be written.
struct Ran {
    summary: Summary,
    trace: Option<(TraceFile, Arc<Trace>)>,
}

/// Creates the trace file (if asked for) and runs the pipeline.
fn run_pipeline(args: &Args) -> Result<Ran, DemoError> {
    args.check().map_err(DemoError::Options)?;
    let file = args.trace.as_deref().map(TraceFile::create).transpose()?;
    let trace = Arc::new(Trace::new(file.is_some()));
    match pipeline::run(args, &trace) {
        Ok(summary) => Ok(Ran {
            summary,
            trace: file.map(|f| (f, trace)),
        }),
        Err(e) => {
            if let Some(f) = file {
                f.discard();
            }
            Err(e)
        }
    }
}

/// Runs the demo and writes the trace if asked; prints nothing. The tests drive the demo
/// through this.
///
/// The trace file is created before the run: a path that cannot be written fails at once.
///
/// # Errors
/// Creating the trace file, setting up (buffers, mappings) or writing the trace failed.
pub fn execute(args: &Args) -> Result<Summary, DemoError> {
    let Ran { summary, trace } = run_pipeline(args)?;
    if let Some((file, trace)) = trace {
        file.write(&trace)?;
    }
    Ok(summary)
}

/// `dmabuf demo`: runs the demo, prints the summary on stdout, then writes the trace.
///
/// # Errors
/// A failed run (exit code 1), whose cause this prints on stderr as `dmabuf demo: FAILED:
/// <cause>`; an error ([`DemoError`], its [exit code](DemoError::exit_code)): 1 for a trace
/// file or a setup that failed, 2 for options that cannot run together.
pub fn run(args: &Args) -> Result<(), Failure> {
    if args.kernel {
        return kernel::run(args);
    }
    let outcome = run_pipeline(args).and_then(|Ran { summary, trace }| {
        // A closed stdout (`| head`) is not an error worth a panic.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{summary}");
        if let Some((file, trace)) = trace {
            let path = file.path().to_owned();
            file.write(&trace)?;
            let _ = writeln!(
                out,
                "trace written to {} (open it in ui.perfetto.dev)",
                path.display()
            );
        }
        Ok(summary.failure())
    });
    match outcome {
        Ok(None) => Ok(()),
        Ok(Some(cause)) => {
            eprintln!("dmabuf demo: FAILED: {cause}");
            Err(Failure::reported(1))
        }
        Err(e) => Err(Failure {
            message: e.to_string(),
            code: e.exit_code(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::{DemoError, TraceFile};
    use crate::trace::{Trace, Track};
    use serde_json::json;

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("dmabuf-tracefile-{name}-{}", std::process::id()))
    }

    #[test]
    fn a_trace_file_replaces_what_was_there_and_a_discarded_one_leaves_no_trace() {
        let trace = Trace::new(true);
        trace.instant(Track { pid: 1, tid: 1 }, "mark", json!({}));

        let old = temp("old");
        std::fs::write(&old, "x".repeat(100_000)).unwrap();
        TraceFile::create(&old).unwrap().write(&trace).unwrap();
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&old).unwrap()).expect("only JSON");
        assert_eq!(doc["traceEvents"][0]["name"], "mark");
        // Discarded: a file that was there keeps its contents.
        TraceFile::create(&old).unwrap().discard();
        assert!(std::fs::read_to_string(&old).unwrap().contains("mark"));
        std::fs::remove_file(&old).unwrap();

        // Discarded: a file this run created is removed.
        let new = temp("new");
        let _ = std::fs::remove_file(&new);
        TraceFile::create(&new).unwrap().discard();
        assert!(!new.exists());
    }

    #[test]
    fn a_trace_file_that_cannot_be_created_names_the_path_and_the_os_error() {
        let path = temp("no-such-dir").join("trace.json");
        let e = TraceFile::create(&path).unwrap_err();
        assert!(
            matches!(
                e,
                DemoError::Trace {
                    action: "create",
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            format!(
                "cannot create the trace file {}: No such file or directory (os error 2)",
                path.display()
            )
        );
        assert_eq!(e.exit_code(), 1);
        let e = TraceFile::create(&std::env::temp_dir()).unwrap_err();
        assert!(e.to_string().contains("Is a directory"), "{e}");
    }
}
