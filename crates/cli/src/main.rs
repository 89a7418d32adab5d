//! `dmabuf` — the command: a pipeline demo, benchmarks, the system's dma-bufs, kernel
//! sync_files and DRM sync objects.
//!
//! This file parses the command line and dispatches: each subcommand is a module of the
//! `dmabuf_cli` library with its `Args` and a `run(&Args)`, whose `Failure` is printed here
//! as one line `dmabuf: <cause>` with the failure's exit code. Usage errors are clap's: its
//! whole message on stderr and exit code 2.

use clap::{ColorChoice, Parser, Subcommand};
use dmabuf_cli::{bench, demo, inspect, sync_file, syncobj};
use std::process::ExitCode;

/// Work with Linux dma-bufs, sync_files and DRM sync objects.
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
    Demo(demo::Args),
    /// Measure the library's hot paths against their baselines: a table of ratios, in about
    /// 1 second.
    ///
    /// With the default arguments it takes about 1 second in a release build on 2 cores
    /// (a debug build is several times slower); the time grows with --rounds, and --quick
    /// takes a fraction of it. On a terminal a progress bar on stderr names the case being
    /// measured.
    Bench(bench::Args),
    /// Show the system's dma-bufs: size, exporter, name, which processes hold or map each,
    /// totals per process and exporter (like Android's dmabuf_dump).
    Inspect(inspect::Args),
    /// Kernel sync_file tools: info, merge, wait.
    SyncFile(sync_file::Args),
    /// DRM sync object tools, for a syncobj file held by any process: info, wait, signal.
    Syncobj(syncobj::Args),
    /// A stage process of `demo --kernel` (started by it, its standard input a socket to it).
    #[command(name = "__stage", hide = true)]
    Stage {
        /// The role the parent starts it for (shown by `ps`; the setup must name the same).
        role: String,
    },
}

/// Ends the process with a usage error of subcommand `sub` that clap's parser cannot see
/// (options that contradict each other's values), worded and coded as clap's own.
fn usage_error(cmd: &mut clap::Command, sub: &str, problem: &str) -> ! {
    let sub = cmd.find_subcommand_mut(sub).expect("the subcommand exists");
    sub.error(clap::error::ErrorKind::ArgumentConflict, problem)
        .exit()
}

/// The command line, parsed and checked; a usage error ends the process.
fn parse() -> Command {
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
    cli.command
}

fn main() -> ExitCode {
    let result = match parse() {
        Command::Demo(args) => demo::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::SyncFile(args) => sync_file::run(&args),
        Command::Syncobj(args) => syncobj::run(&args),
        Command::Stage { role } => demo::kernel::stage::main(&role),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            // An empty message: the cause is already on stderr (Failure::reported).
            if !f.message.is_empty() {
                eprintln!("dmabuf: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}
