//! `orch config`: load, validate and print a stack.

use anyhow::Context;
use clap::{Args, ValueEnum};
use compose::render::{Format, render};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags of `orch config`.
#[derive(Args)]
pub struct ConfigArgs {
    /// Stack file(s), merged in order; default: compose.yaml, compose.yml,
    /// docker-compose.yaml or docker-compose.yml in this directory or a parent.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Project name (default: `name:` in the file, else the directory's name).
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    project_name: Option<String>,
    /// Directory relative paths are resolved against (default: the first file's).
    #[arg(long, value_name = "DIR")]
    project_directory: Option<PathBuf>,
    /// Variables for interpolation, instead of the project's .env (repeatable).
    #[arg(long = "env-file", value_name = "FILE")]
    env_files: Vec<PathBuf>,
    /// Enable services of this profile (repeatable; `*` enables all).
    #[arg(long = "profile", value_name = "PROFILE")]
    profiles: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Yaml)]
    format: OutputFormat,
    /// Print only the service names, one per line.
    #[arg(long)]
    services: bool,
    /// Only validate: print nothing when the stack is valid.
    #[arg(short, long)]
    quiet: bool,
    /// Report references to undefined services, networks, volumes, secrets and
    /// configs as warnings (for fragments meant to be merged with other files).
    #[arg(long)]
    no_consistency: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum OutputFormat {
    Yaml,
    Json,
}

/// Run `orch config`: exit status 0 when valid, 1 with every error on stderr when not.
pub fn run(args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let opts = compose::Options {
        files: args.files,
        working_dir: std::env::current_dir().context("cannot read the current directory")?,
        project_directory: args.project_directory,
        project_name: args.project_name,
        env_files: args.env_files,
        profiles: args.profiles,
        environment: std::env::vars().collect(),
        skip_consistency: args.no_consistency,
    };
    let project = match compose::load(&opts) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    for w in &project.warnings {
        eprintln!("{w}");
    }
    let out = if args.quiet {
        String::new()
    } else if args.services {
        project
            .spec
            .services
            .keys()
            .map(|s| format!("{s}\n"))
            .collect()
    } else {
        let format = match args.format {
            OutputFormat::Yaml => Format::Yaml,
            OutputFormat::Json => Format::Json,
        };
        render(&project.spec, format)
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .context("cannot write to stdout")?;
    Ok(ExitCode::SUCCESS)
}
