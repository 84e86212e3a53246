//! `orch`: one binary that turns Linux hosts into a cluster and keeps compose stacks
//! running on it. This file parses the command line and dispatches; each command group
//! lives in its own module.

mod config;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// orch — run compose stacks on a cluster of Linux hosts.
#[derive(Parser)]
#[command(name = "orch", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate stack files and print the normalized stack (like `docker compose config`).
    Config(config::ConfigArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Config(args) => config::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("orch: {e:#}");
            ExitCode::FAILURE
        }
    }
}
