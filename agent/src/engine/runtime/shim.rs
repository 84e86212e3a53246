//! `orch shim DIR`: the parent of one container's process. It detaches from the
//! engine (fork, setsid), starts the container (launch + go), tells the engine how the
//! start went on fd 3, writes the process's stdout and stderr to the log, waits for the
//! exit and records it in `state.json`. Because it is not the engine's child, an
//! engine restart or crash neither stops the container nor loses a log line.

use super::cgroup::{self, Cgroups, Exit};
use super::container::{ContainerRecord, StateFile, read_json, rfc3339_nanos, set_state};
use super::launch::{Stdio, launch, wait};
use super::logs::LogWriter;
use api::container::ContainerStatus;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// The fd on which the shim reports the start (`ok` or the error), then closes.
pub const REPORT_FD: i32 = 3;

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fresh fds from pipe2.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Copy `from` line by line into the log as `stream`.
fn pump(
    from: OwnedFd,
    stream: &'static str,
    log: Arc<Mutex<LogWriter>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = File::from(from);
        let mut buf = vec![0u8; 64 * 1024];
        let mut line: Vec<u8> = Vec::new();
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for &b in &buf[..n] {
                line.push(b);
                if b == b'\n' || line.len() >= 16 * 1024 {
                    if let Ok(mut w) = log.lock() {
                        let _ = w.write(stream, &line, SystemTime::now());
                    }
                    line.clear();
                }
            }
        }
        if !line.is_empty()
            && let Ok(mut w) = log.lock()
        {
            let _ = w.write(stream, &line, SystemTime::now());
        }
    })
}

/// What a started container needs watched: its pid, start time, log pumps and cgroups.
struct Started {
    pid: i32,
    started: String,
    pumps: Vec<std::thread::JoinHandle<()>>,
    cgroups: Box<dyn Cgroups>,
}

/// Start the container in `dir`; the shim's report on success, or the error text.
fn start(dir: &Path, record: &ContainerRecord) -> Result<Started, String> {
    let log = LogWriter::open(dir, record.log)
        .map_err(|e| format!("open the log in {}: {e}", dir.display()))?;
    let log = Arc::new(Mutex::new(log));
    let (out_r, out_w) = pipe().map_err(|e| format!("pipe: {e}"))?;
    let (err_r, err_w) = pipe().map_err(|e| format!("pipe: {e}"))?;
    let null = File::open("/dev/null").map_err(|e| format!("open /dev/null: {e}"))?;
    let stdio = Stdio {
        stdin: null.as_raw_fd(),
        stdout: out_w.as_raw_fd(),
        stderr: err_w.as_raw_fd(),
    };
    let launched = launch(Path::new("/proc/self/exe"), &dir.join("init.json"), stdio)
        .map_err(|e| e.to_string())?;
    drop((out_w, err_w, null));
    let pumps = vec![
        pump(out_r, "stdout", log.clone()),
        pump(err_r, "stderr", log),
    ];
    let cgroups =
        cgroup::probe(Path::new(cgroup::ROOT), cgroup::PARENT).map_err(|e| e.to_string())?;
    cgroups
        .create(&record.id, &record.resources)
        .map_err(|e| e.to_string())?;
    if let Err(e) = launched.join_cgroup(&*cgroups, &record.id) {
        drop(launched);
        let _ = cgroups.remove(&record.id, Duration::from_secs(2));
        return Err(e.to_string());
    }
    let pid = match launched.go() {
        Ok(pid) => pid,
        Err(e) => {
            let _ = cgroups.remove(&record.id, Duration::from_secs(2));
            return Err(e.to_string());
        }
    };
    let started = rfc3339_nanos(SystemTime::now());
    let running = StateFile {
        status: ContainerStatus::Running {
            pid,
            started_at: started.clone(),
        },
        // SAFETY: getpid has no preconditions.
        shim_pid: Some(unsafe { libc::getpid() }),
    };
    set_state(dir, &record.id, running).map_err(|e| e.to_string())?;
    Ok(Started {
        pid,
        started,
        pumps,
        cgroups,
    })
}

/// The body of `orch shim DIR` (never returns).
pub fn run(dir: &Path) -> ! {
    // Detach: the engine waits for this first process only; the shim lives on.
    // SAFETY: fork in a single-threaded process; the parent exits at once.
    match unsafe { libc::fork() } {
        0 => {}
        -1 => std::process::exit(1),
        _ => std::process::exit(0),
    }
    // SAFETY: setsid has no preconditions; the child is not a group leader.
    unsafe { libc::setsid() };
    // SAFETY: the engine hands fd 3 over; nothing else owns it.
    let mut report = unsafe { File::from_raw_fd(REPORT_FD) };
    let record: ContainerRecord = match read_json(&dir.join("config.json")) {
        Ok(r) => r,
        Err(e) => {
            let _ = report.write_all(e.to_string().as_bytes());
            std::process::exit(1);
        }
    };
    let Started {
        pid,
        started,
        pumps,
        cgroups,
    } = match start(dir, &record) {
        Ok(s) => s,
        Err(e) => {
            let _ = report.write_all(e.as_bytes());
            std::process::exit(1);
        }
    };
    let _ = report.write_all(b"ok");
    drop(report);
    let code = wait(pid).unwrap_or(255);
    for p in pumps {
        let _ = p.join();
    }
    let exit = Exit::new(code, &cgroups.stats(&record.id).unwrap_or_default());
    let _ = cgroups.remove(&record.id, Duration::from_secs(5));
    let exited = StateFile {
        status: ContainerStatus::Exited {
            exit_code: exit.code,
            oom_killed: exit.oom_killed,
            started_at: started,
            finished_at: rfc3339_nanos(SystemTime::now()),
        },
        shim_pid: None,
    };
    let _ = set_state(dir, &record.id, exited);
    std::process::exit(0)
}
