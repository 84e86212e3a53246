//! Stack-file compiler throughput: orch's loader over the whole compose corpus, in
//! process and as `orch config` per file, against Debian's `docker-compose config` on
//! the same files in the same run. Prints files/s and the ratio.
//!
//! Usage: compose-bench [SHARED_DIR] (default ../shared next to the repository).
//! Build the binary first: `cargo build --release -p cli -p bench`.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One load: the files merged together, from their directory.
struct Case {
    files: Vec<PathBuf>,
}

fn cases(corpus: &Path) -> Result<Vec<Case>> {
    let mut out = Vec::new();
    for group in ["awesome-compose", "stacks"] {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus.join(group))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        dirs.sort();
        for dir in dirs {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")))
                .collect();
            files.sort();
            for f in files {
                let name = f
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if name.contains(".override.") || name.contains("full-example") {
                    continue;
                }
                let mut set = vec![f.clone()];
                let over = dir.join(name.replace(".yml", ".override.yml"));
                if name.ends_with(".yml") && over.is_file() {
                    set.push(over);
                }
                out.push(Case { files: set });
            }
        }
    }
    Ok(out)
}

fn env() -> BTreeMap<String, String> {
    [("HOME", "/home/foo"), ("PATH", "/usr/bin:/bin")]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
}

fn dir_of(case: &Case) -> PathBuf {
    case.files[0]
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Run `cmd` once per case; returns (files accepted, elapsed).
fn per_process(cases: &[&Case], make: &dyn Fn(&Case) -> Command) -> (usize, Duration) {
    let start = Instant::now();
    let mut ok = 0;
    for c in cases {
        let status = make(c).stdout(Stdio::null()).stderr(Stdio::null()).status();
        if status.map(|s| s.success()).unwrap_or(false) {
            ok += c.files.len();
        }
    }
    (ok, start.elapsed())
}

fn main() -> Result<()> {
    let shared = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let corpus = shared.join("compose-corpus");
    if !corpus.is_dir() {
        bail!(
            "{} not found: pass the shared/ directory as the first argument",
            corpus.display()
        );
    }
    let cases = cases(&corpus)?;
    let nfiles: usize = cases.iter().map(|c| c.files.len()).sum();

    // 1. In process: the library, repeated for at least 2 s.
    let start = Instant::now();
    let mut rounds = 0u32;
    while start.elapsed() < Duration::from_secs(2) || rounds < 3 {
        for c in &cases {
            let opts = compose::Options {
                files: c.files.clone(),
                working_dir: dir_of(c),
                environment: env(),
                ..compose::Options::default()
            };
            compose::load(&opts)
                .with_context(|| format!("{} no longer loads", c.files[0].display()))?;
        }
        rounds += 1;
    }
    let lib = start.elapsed();
    let lib_rate = f64::from(rounds) * nfiles as f64 / lib.as_secs_f64();
    println!("corpus: {} loads, {nfiles} files", cases.len());
    println!(
        "orch (library, in process): {lib_rate:.0} files/s ({rounds} rounds in {:.2} s)",
        lib.as_secs_f64()
    );

    // 2. Per process: `orch config -q` vs `docker-compose config -q`, on the files both accept.
    let orch = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/orch");
    if !orch.is_file() {
        bail!(
            "{} not built: run cargo build --release -p cli",
            orch.display()
        );
    }
    let orch_cmd = |c: &Case| {
        let mut cmd = Command::new(&orch);
        cmd.arg("config")
            .arg("-q")
            .current_dir(dir_of(c))
            .env_clear()
            .envs(env());
        for f in &c.files {
            cmd.arg("-f").arg(f);
        }
        cmd
    };
    let dc_cmd = |c: &Case| {
        let mut cmd = Command::new("docker-compose");
        cmd.current_dir(dir_of(c)).env_clear().envs(env());
        for f in &c.files {
            cmd.arg("-f").arg(f);
        }
        cmd.arg("config").arg("-q");
        cmd
    };
    if Command::new("docker-compose")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        println!(
            "docker-compose not installed (apt-get install docker-compose): peer comparison skipped"
        );
        return Ok(());
    }
    // Which files docker-compose 1.29 accepts (it predates parts of the current spec).
    let both: Vec<&Case> = cases
        .iter()
        .filter(|c| {
            dc_cmd(c)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        })
        .collect();
    let both_files: usize = both.iter().map(|c| c.files.len()).sum();
    println!("docker-compose accepts {both_files} of {nfiles} files; comparing on those");
    let (orch_ok, orch_t) = per_process(&both, &orch_cmd);
    let (dc_ok, dc_t) = per_process(&both, &dc_cmd);
    let orch_rate = orch_ok as f64 / orch_t.as_secs_f64();
    let dc_rate = dc_ok as f64 / dc_t.as_secs_f64();
    println!(
        "orch config -q, one process per load: {orch_rate:.1} files/s ({orch_ok} accepted, {:.2} s)",
        orch_t.as_secs_f64()
    );
    println!(
        "docker-compose config -q, one process per load: {dc_rate:.1} files/s ({dc_ok} accepted, {:.2} s)",
        dc_t.as_secs_f64()
    );
    println!(
        "ratio orch / docker-compose (per process): {:.1}x",
        orch_rate / dc_rate
    );
    Ok(())
}
