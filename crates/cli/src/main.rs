//! `dmabuf` — the command: a pipeline demo, benchmarks, the system's dma-bufs, kernel
//! sync_files.
//!
//! Each subcommand lives in its module with a `run(args)`; errors come back as [`Failure`],
//! printed as one line `dmabuf: <cause>` with the failure's exit code. Usage errors are
//! clap's: its whole message on stderr and exit code 2.

mod sync_file;

use clap::{ColorChoice, Parser, Subcommand};
use std::process::ExitCode;

/// Work with Linux dma-bufs and sync_files.
#[derive(Debug, Parser)]
#[command(name = "dmabuf", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run a multi-device pipeline demo on simulated devices, validator on (camera → GPU →
    /// encoder and USB gadget, evictions, a scripted hang and its recovery).
    Demo(dmabuf_cli::demo::DemoArgs),
    /// Measure the library's hot paths against their baselines: a table of ratios, in about
    /// 0.6 seconds.
    ///
    /// With the default arguments it takes about 0.6 seconds in a release build on 2 cores
    /// (a debug build is several times slower); the time grows with --rounds, and --quick
    /// takes a fraction of it. On a terminal a progress bar on stderr names the case being
    /// measured.
    Bench(dmabuf_cli::bench::BenchArgs),
    /// Show the system's dma-bufs: size, exporter, name, which processes hold or map each,
    /// totals per process and exporter (like Android's dmabuf_dump).
    Inspect(InspectArgs),
    /// Kernel sync_file tools: info, merge, wait.
    #[command(subcommand)]
    SyncFile(sync_file::SyncFileCommand),
}

/// Options of `dmabuf inspect`.
#[derive(Debug, clap::Args)]
struct InspectArgs {
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

/// A failed command: the one-line cause and the exit code.
#[derive(Debug)]
pub struct Failure {
    /// The cause, printed after `dmabuf: `.
    pub message: String,
    /// The process's exit code (not 0).
    pub code: u8,
}

impl Failure {
    /// A failure with exit code 1.
    pub fn new(message: impl std::fmt::Display) -> Failure {
        Failure {
            message: message.to_string(),
            code: 1,
        }
    }
}

/// `dmabuf bench`.
fn bench(args: &dmabuf_cli::bench::BenchArgs) -> Result<(), Failure> {
    let rows = dmabuf_cli::bench::run(args);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).map_err(Failure::new)?
        );
    } else {
        print!("{}", dmabuf_cli::bench::table(&rows));
    }
    Ok(())
}

/// `dmabuf inspect`.
fn inspect(args: &InspectArgs) -> Result<(), Failure> {
    let report = dmabuf_cli::inspect::collect(&dmabuf_cli::inspect::Roots::default());
    if args.json {
        let json = serde_json::to_string_pretty(&report).map_err(Failure::new)?;
        println!("{json}");
    } else {
        print!("{report}");
    }
    Ok(())
}

/// Ends the process with a usage error of subcommand `sub` that clap's parser cannot see
/// (options that contradict each other's values), worded and coded as clap's own.
fn usage_error(cmd: &mut clap::Command, sub: &str, problem: &str) -> ! {
    let sub = cmd.find_subcommand_mut(sub).expect("the subcommand exists");
    sub.error(clap::error::ErrorKind::ArgumentConflict, problem)
        .exit()
}

fn main() -> ExitCode {
    let color = if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        ColorChoice::Never
    } else {
        ColorChoice::Auto
    };
    let mut cmd = <Cli as clap::CommandFactory>::command().color(color);
    // Help and version go to stdout with exit code 0; a usage error goes to stderr as clap
    // words it (the problem, the usage line, a tip or the valid values) with exit code 2.
    let matches = cmd
        .try_get_matches_from_mut(std::env::args_os())
        .unwrap_or_else(|e| e.exit());
    let cli = <Cli as clap::FromArgMatches>::from_arg_matches(&matches)
        .unwrap_or_else(|e| e.format(&mut cmd).exit());
    if let Command::Demo(args) = &cli.command
        && let Err(problem) = args.check()
    {
        usage_error(&mut cmd, "demo", &problem);
    }
    let result = match cli.command {
        Command::Demo(args) => return dmabuf_cli::demo::run_cli(&args),
        Command::Bench(args) => bench(&args),
        Command::Inspect(args) => inspect(&args),
        Command::SyncFile(cmd) => sync_file::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            // An empty message: a child's exit code passed on, already explained by the child.
            if !f.message.is_empty() {
                eprintln!("dmabuf: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}
