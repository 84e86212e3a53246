//! The bench run for real at its smallest: three `orch manager`s and (when Debian's
//! etcd-server is installed) three etcd members on loopback, one short load run, one
//! leader kill each. It proves the tables come out and that the run leaves no process
//! or directory behind; it asserts no timing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The whole run, start-up and failovers included, in a debug build on a busy machine.
const RUN_LIMIT: Duration = Duration::from_secs(300);

fn bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_store-bench"))
}

/// `orch`, which the bench starts from beside itself by default.
fn orch() -> PathBuf {
    let orch = Path::new(env!("CARGO_BIN_EXE_store-bench")).with_file_name("orch");
    assert!(
        orch.exists(),
        "{} is missing: build it first (`cargo build -p cli`; `cargo test --workspace` does)",
        orch.display()
    );
    orch
}

/// Processes whose command line mentions `needle` (the run's directory).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(cmdline);
            }
        }
    }
    found
}

/// Run the bench with `args`; SIGKILL it after [`RUN_LIMIT`] (its servers die with it).
fn run(args: &[&str]) -> (Output, String) {
    let child = bench()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start store-bench");
    let pid = child.id();
    let run_dir = std::env::temp_dir().join(format!("store-bench-{pid}"));
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let output = match finished.recv_timeout(RUN_LIMIT) {
        Ok(output) => output.expect("wait for store-bench"),
        Err(_) => {
            // SAFETY: kill(2) on the pid of our own child, which has not been reaped.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            let output = finished.recv().expect("the waiter ends").ok();
            let _ = std::fs::remove_dir_all(&run_dir);
            panic!(
                "store-bench ran past {RUN_LIMIT:?}; killed it. Output so far: {:?}",
                output.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            );
        }
    };
    let leftovers = processes_mentioning(&run_dir.to_string_lossy());
    let dir_left = run_dir.exists();
    let _ = std::fs::remove_dir_all(&run_dir);
    assert!(leftovers.is_empty(), "servers left running: {leftovers:?}");
    assert!(!dir_left, "{} left behind", run_dir.display());
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output, stdout)
}

#[test]
fn a_short_run_prints_load_memory_and_failover_for_both_systems() {
    let orch = orch();
    let etcd = Path::new("/usr/bin/etcd").exists();
    let (output, stdout) = run(&[
        "--orch",
        &orch.to_string_lossy(),
        "--seconds",
        "1",
        "--rounds",
        "1",
        "--failovers",
        "1",
        "--concurrency",
        "2",
    ]);
    assert!(
        output.status.success(),
        "store-bench failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let row = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("2 |"))
        .unwrap_or_else(|| panic!("no table row for 2 workers:\n{stdout}"));
    let orch_rate: f64 = row
        .split('|')
        .nth(1)
        .and_then(|c| c.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no orch rate in {row:?}"));
    assert!(orch_rate > 0.0, "orch acknowledged no put: {row:?}");
    assert!(stdout.contains("RSS MiB idle: orch "), "{stdout}");
    assert!(stdout.contains("failover 1 orch: killed "), "{stdout}");
    if etcd {
        assert!(!row.contains("(skipped)"), "etcd did not run: {row:?}");
        assert!(stdout.contains("failover 1 etcd: killed "), "{stdout}");
        assert!(stdout.contains("orch/etcd (medians): "), "{stdout}");
    } else {
        assert!(
            stdout.contains("etcd skipped: /usr/bin/etcd not found"),
            "{stdout}"
        );
    }
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let output = bench()
        .args(["--concurrency", "8,0"])
        .output()
        .expect("run store-bench");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--concurrency: \"0\" is not a whole number of at least 1 (see --help)"),
        "{stderr}"
    );
    let missing = bench()
        .args([
            "--etcd",
            "none",
            "--orch",
            "/nonexistent/orch",
            "--failovers",
            "0",
        ])
        .output()
        .expect("run store-bench");
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("start /nonexistent/orch (m1)"), "{stderr}");
}
