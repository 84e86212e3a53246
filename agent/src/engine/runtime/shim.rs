//! `orch shim DIR`: the parent of one container's process. It detaches from the
//! engine (fork, setsid), starts the container (launch, cgroup, go), tells the
//! engine how the start went on fd 3, writes the process's output to the log and to
//! attached clients ([`super::attach`]), waits for the exit and records it in
//! `state.json`. Because it is not the engine's child, an engine restart or crash
//! neither stops the container nor loses a log line.

use super::attach::{Hub, Input, socket_path, split_master};
use super::cgroup::{self, Cgroups, Exit};
use super::container::{
    ContainerRecord, StateFile, read_json, rfc3339_nanos, set_state, start_time,
};
use super::launch::{Stdio, launch, wait};
use super::logs::LogWriter;
use api::container::{ContainerStatus, frame};
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

/// Copy `from` line by line into the log as `stream` and, as it comes, to `hub`.
fn pump(
    mut reader: File,
    stream: &'static str,
    log: Arc<Mutex<LogWriter>>,
    hub: Hub,
) -> std::thread::JoinHandle<()> {
    let kind = if stream == "stderr" {
        frame::STDERR
    } else {
        frame::STDOUT
    };
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        let mut line: Vec<u8> = Vec::new();
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            hub.output(kind, &buf[..n]);
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

/// What a started container needs watched.
struct Started {
    pid: i32,
    started: String,
    pumps: Vec<std::thread::JoinHandle<()>>,
    cgroups: Box<dyn Cgroups>,
    hub: Hub,
}

fn socketpair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: socketpair fills two fds we then own.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    } != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fresh fds from socketpair.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Start the container in `dir`; the error text when it cannot.
fn start(dir: &Path, record: &ContainerRecord) -> Result<Started, String> {
    let e = |what: &'static str| move |err: std::io::Error| format!("{what}: {err}");
    let log = LogWriter::open(dir, record.log)
        .map_err(|err| format!("open the log in {}: {err}", dir.display()))?;
    let log = Arc::new(Mutex::new(log));
    let (out_r, out_w) = pipe().map_err(e("pipe"))?;
    let (err_r, err_w) = pipe().map_err(e("pipe"))?;
    let tty = record.init.tty;
    let (stdin_r, stdin_w) = if record.open_stdin && !tty {
        let (r, w) = pipe().map_err(e("pipe"))?;
        (r, Some(w))
    } else {
        (
            OwnedFd::from(File::open("/dev/null").map_err(e("open /dev/null"))?),
            None,
        )
    };
    let console = if tty {
        Some(socketpair().map_err(e("socketpair"))?)
    } else {
        None
    };
    let stdio = Stdio {
        stdin: stdin_r.as_raw_fd(),
        stdout: out_w.as_raw_fd(),
        stderr: err_w.as_raw_fd(),
        console: console.as_ref().map(|(_, theirs)| theirs.as_raw_fd()),
    };
    let mut launched = launch(
        Path::new("/proc/self/exe"),
        &dir.join("init.json"),
        stdio,
        &record.init.netns,
        record.init.userns.is_some(),
    )
    .map_err(|err| err.to_string())?;
    if let Some(ns) = &record.init.userns {
        launched
            .map_userns(ns, &record.init.overlay)
            .map_err(|err| err.to_string())?;
    }
    drop((out_w, err_w, stdin_r));
    let ours = console.map(|(ours, theirs)| {
        drop(theirs);
        ours
    });
    let cgroups =
        cgroup::probe(Path::new(cgroup::ROOT), cgroup::PARENT).map_err(|err| err.to_string())?;
    cgroups
        .create(&record.id, &record.resources)
        .map_err(|err| err.to_string())?;
    if let Err(err) = launched.join_cgroup(&*cgroups, &record.id) {
        drop(launched);
        let _ = cgroups.remove(&record.id, Duration::from_secs(2));
        return Err(err.to_string());
    }
    let pid = match launched.go() {
        Ok(pid) => pid,
        Err(err) => {
            let _ = cgroups.remove(&record.id, Duration::from_secs(2));
            return Err(err.to_string());
        }
    };
    let (hub, mut pumps) = match ours {
        Some(sock) => {
            let master = super::sys::recv_fd(sock.as_raw_fd())
                .map_err(e("receive the container's terminal"))?;
            let (reader, writer) = split_master(master).map_err(e("the container's terminal"))?;
            let hub = Hub::new(Input::Terminal(writer));
            let pumps = vec![pump(reader, "stdout", log.clone(), hub.clone())];
            (hub, pumps)
        }
        None => (
            Hub::new(stdin_w.map_or(Input::None, |w| Input::Pipe(File::from(w)))),
            Vec::new(),
        ),
    };
    pumps.push(pump(File::from(out_r), "stdout", log.clone(), hub.clone()));
    pumps.push(pump(File::from(err_r), "stderr", log, hub.clone()));
    let data = dir.parent().and_then(Path::parent).unwrap_or(dir);
    hub.serve(&socket_path(data, &record.id))
        .map_err(e("listen for attach"))?;
    let started = rfc3339_nanos(SystemTime::now());
    let running = StateFile {
        status: ContainerStatus::Running {
            pid,
            started_at: started.clone(),
        },
        // SAFETY: getpid has no preconditions.
        shim_pid: Some(unsafe { libc::getpid() }),
        pid_start: start_time(pid),
    };
    if let Err(err) = set_state(dir, &record.id, running) {
        // Someone else moved this container on (a concurrent start): this process
        // must not live on untracked.
        // SAFETY: signalling and reaping our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = wait(pid);
        let _ = cgroups.remove(&record.id, Duration::from_secs(2));
        return Err(err.to_string());
    }
    Ok(Started {
        pid,
        started,
        pumps,
        cgroups,
        hub,
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
    let s = match start(dir, &record) {
        Ok(s) => s,
        Err(e) => {
            let _ = report.write_all(e.as_bytes());
            std::process::exit(1);
        }
    };
    let _ = report.write_all(b"ok");
    drop(report);
    let code = wait(s.pid).unwrap_or(255);
    for p in s.pumps {
        let _ = p.join();
    }
    let exit = Exit::new(code, &s.cgroups.stats(&record.id).unwrap_or_default());
    let _ = s.cgroups.remove(&record.id, Duration::from_secs(5));
    let exited = StateFile {
        status: ContainerStatus::Exited {
            exit_code: exit.code,
            oom_killed: exit.oom_killed,
            started_at: s.started,
            finished_at: rfc3339_nanos(SystemTime::now()),
        },
        shim_pid: None,
        pid_start: None,
    };
    // The socket goes before the exit is recorded: a restart may bind it anew as soon
    // as the state says exited.
    let data = dir.parent().and_then(Path::parent).unwrap_or(dir);
    let _ = std::fs::remove_file(socket_path(data, &record.id));
    let _ = set_state(dir, &record.id, exited);
    s.hub.exit(exit.code);
    std::process::exit(0)
}
