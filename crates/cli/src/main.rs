//! `dmabuf`: the command-line tool of the dmabuf library.

use clap::{Parser, Subcommand};
use dmabuf_cli::demo;
use std::process::ExitCode;

/// The dmabuf command.
#[derive(Parser)]
#[command(
    name = "dmabuf",
    version,
    about = "The Linux DMA-BUF object model in user space"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Subcommand)]
enum Command {
    /// Runs a multi-device pipeline demo with the validator on.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Demo(args) => demo::run_cli(&args),
    }
}
