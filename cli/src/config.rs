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
    #[command(flatten)]
    stack: StackFileArgs,
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

/// Which stack files to load, and how (shared by `config`, `up`, `down`, `ps`).
#[derive(Args, Clone)]
pub struct StackFileArgs {
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
}

impl StackFileArgs {
    /// The project name given with `-p`.
    pub fn project_name(&self) -> Option<&str> {
        self.project_name.as_deref()
    }

    /// Loads the stack; `Err` carries the diagnostics, already printed.
    pub fn load(
        &self,
        skip_consistency: bool,
    ) -> anyhow::Result<Result<compose::Project, ExitCode>> {
        let opts = compose::Options {
            files: self.files.clone(),
            working_dir: std::env::current_dir().context("cannot read the current directory")?,
            project_directory: self.project_directory.clone(),
            project_name: self.project_name.clone(),
            env_files: self.env_files.clone(),
            profiles: self.profiles.clone(),
            environment: std::env::vars().collect(),
            skip_consistency,
        };
        match compose::load(&opts) {
            Ok(project) => {
                for w in &project.warnings {
                    eprintln!("{w}");
                }
                Ok(Ok(project))
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(Err(ExitCode::FAILURE))
            }
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum OutputFormat {
    Yaml,
    Json,
}

/// Run `orch config`: exit status 0 when valid, 1 with every error on stderr when not.
pub fn run(args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let project = match args.stack.load(args.no_consistency)? {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
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
