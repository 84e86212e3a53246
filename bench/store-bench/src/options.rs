//! The command line: what to run and how long.

use crate::error::BenchError;
use std::path::PathBuf;

/// The `--help` text.
pub const HELP: &str = "store-bench [--orch PATH] [--etcd PATH|none] [--seconds N] [--rounds N]
            [--failovers N] [--concurrency 1,8,32]

  --orch         the orch binary (default: `orch` beside this binary)
  --etcd         the etcd binary (default: /usr/bin/etcd; `none` skips etcd)
  --seconds      length of each timed load run (default 5)
  --rounds       rounds of every concurrency, orch and etcd in turns (default 3)
  --failovers    leader kills per system (default 3)
  --concurrency  workers, each with one keep-alive connection (default 1,8,32)

Set STORE_BENCH_KEEP=1 to keep the run directory (logs, data) under $TMPDIR.";

/// What to run.
#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    pub orch: PathBuf,
    pub etcd: Option<PathBuf>,
    pub seconds: u64,
    pub rounds: usize,
    pub failovers: usize,
    pub concurrency: Vec<usize>,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Run(Options),
    Help,
}

/// Parse `args` (without the program name); `orch` is the default orch binary.
pub fn parse(args: impl IntoIterator<Item = String>, orch: PathBuf) -> Result<Command, BenchError> {
    let mut options = Options {
        orch,
        etcd: Some(PathBuf::from("/usr/bin/etcd")),
        seconds: 5,
        rounds: 3,
        failovers: 3,
        concurrency: vec![1, 8, 32],
    };
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(Command::Help);
        }
        let value = args
            .next()
            .ok_or_else(|| BenchError::Usage(format!("{flag} needs a value")))?;
        let number = |v: &str, least: u64| match v.parse::<u64>() {
            Ok(n) if n >= least => Ok(n),
            _ => Err(BenchError::Usage(format!(
                "{flag}: {v:?} is not a whole number of at least {least}"
            ))),
        };
        match flag.as_str() {
            "--orch" => options.orch = PathBuf::from(value),
            "--etcd" if value == "none" => options.etcd = None,
            "--etcd" => options.etcd = Some(PathBuf::from(value)),
            "--seconds" => options.seconds = number(&value, 1)?,
            "--rounds" => options.rounds = number(&value, 1)? as usize,
            "--failovers" => options.failovers = number(&value, 0)? as usize,
            "--concurrency" => {
                options.concurrency = value
                    .split(',')
                    .map(|v| number(v.trim(), 1).map(|n| n as usize))
                    .collect::<Result<_, _>>()?
            }
            other => return Err(BenchError::Usage(format!("unknown flag {other}"))),
        }
    }
    Ok(Command::Run(options))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Command, BenchError> {
        parse(args.iter().map(|a| a.to_string()), PathBuf::from("orch"))
    }

    #[test]
    fn defaults_and_flags() {
        let Ok(Command::Run(defaults)) = run(&[]) else {
            panic!("no flags should run with the defaults");
        };
        assert_eq!(defaults.concurrency, vec![1, 8, 32]);
        assert_eq!(defaults.etcd, Some(PathBuf::from("/usr/bin/etcd")));
        let Ok(Command::Run(o)) = run(&[
            "--orch",
            "/x/orch",
            "--etcd",
            "none",
            "--seconds",
            "2",
            "--rounds",
            "1",
            "--failovers",
            "0",
            "--concurrency",
            "4, 16",
        ]) else {
            panic!("valid flags refused");
        };
        assert_eq!(
            o,
            Options {
                orch: PathBuf::from("/x/orch"),
                etcd: None,
                seconds: 2,
                rounds: 1,
                failovers: 0,
                concurrency: vec![4, 16],
            }
        );
        assert_eq!(run(&["--rounds", "1", "-h"]).ok(), Some(Command::Help));
    }

    #[test]
    fn bad_flags_are_named() {
        for (args, says) in [
            (&["--seconds"][..], "--seconds needs a value"),
            (
                &["--seconds", "0"],
                "--seconds: \"0\" is not a whole number of at least 1",
            ),
            (&["--concurrency", "8,x"], "--concurrency: \"x\" is not"),
            (&["--rounds", "-1"], "--rounds: \"-1\" is not"),
            (&["--fast", "1"], "unknown flag --fast"),
        ] {
            let error = run(args)
                .expect_err("bad flags must be refused")
                .to_string();
            assert!(error.contains(says), "{args:?}: {error}");
        }
    }
}
