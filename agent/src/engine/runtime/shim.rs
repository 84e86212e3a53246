//! `orch shim DIR`: the parent of one container's process. It detaches from the
//! engine (fork, setsid), starts the container (launch, cgroup, go), tells the
//! engine how the start went on fd 3, writes the process's output to the log and to
//! attached clients ([`super::attach`]), waits for the exit and records it in
//! `state.json`. Because it is not the engine's child, an engine restart or crash
//! neither stops the container nor loses a log line. One thread and a poll loop
//! (output pipes, the process's pidfd, the attach socket and its clients) keep an
//! idle shim small.

use super::attach::{Hub, Input, socket_path, split_master};
use super::cgroup::{self, Cgroups, Exit};
use super::container::{
    ContainerRecord, StateFile, read_json, rfc3339_nanos, set_state, start_time,
};
use super::launch::{Stdio, launch, wait};
use super::logs::LogWriter;
use api::container::{ContainerStatus, frame};
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
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

/// One of the container's output streams: where it is read, its log name and frame
/// kind, and the part of a line not yet logged.
struct Output {
    file: Option<File>,
    stream: &'static str,
    kind: u8,
    line: Vec<u8>,
}

/// Lines longer than this are logged in pieces.
const MAX_LINE: usize = 16 * 1024;

impl Output {
    fn new(file: File, stream: &'static str) -> Output {
        let kind = if stream == "stderr" {
            frame::STDERR
        } else {
            frame::STDOUT
        };
        Output {
            file: Some(file),
            stream,
            kind,
            line: Vec::new(),
        }
    }

    /// Read what is there (the fd polled readable): to the clients and, by whole
    /// lines, to the log; at the end, the last partial line.
    fn pump(&mut self, buf: &mut [u8], log: &mut LogWriter, hub: &mut Hub) {
        let Some(f) = &mut self.file else { return };
        let n = match f.read(buf) {
            Ok(0) => 0,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                return;
            }
            Err(_) => 0,
        };
        if n == 0 {
            self.file = None;
            if !self.line.is_empty() {
                let _ = log.write(self.stream, &self.line, SystemTime::now());
                self.line.clear();
            }
            return;
        }
        hub.output(self.kind, &buf[..n]);
        for &b in &buf[..n] {
            self.line.push(b);
            if b == b'\n' || self.line.len() >= MAX_LINE {
                let _ = log.write(self.stream, &self.line, SystemTime::now());
                self.line.clear();
            }
        }
        if self.line.capacity() > MAX_LINE && self.line.is_empty() {
            self.line = Vec::new();
        }
    }
}

/// What a started container needs watched.
struct Started {
    pid: i32,
    /// Readable when the process has ended.
    pidfd: OwnedFd,
    started: String,
    outputs: Vec<Output>,
    log: LogWriter,
    cgroups: Box<dyn Cgroups>,
    hub: Hub,
    /// The container's cgroup, whose processes left running are killed when the
    /// command ends (`pid: host`, where no namespace ends with it).
    sweep: Option<String>,
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
        &record.init.tuning,
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
    // SAFETY: pidfd_open of our own child, which is not reaped before the fd is.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        return Err(format!(
            "watch the container's process (pidfd_open): {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: a fresh fd from pidfd_open.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    let (mut hub, mut outputs) = match ours {
        Some(sock) => {
            let master = super::sys::recv_fd(sock.as_raw_fd())
                .map_err(e("receive the container's terminal"))?;
            let (reader, writer) = split_master(master).map_err(e("the container's terminal"))?;
            let hub = Hub::new(Input::Terminal(writer));
            (hub, vec![Output::new(reader, "stdout")])
        }
        None => (
            Hub::new(stdin_w.map_or(Input::None, |w| Input::Pipe(File::from(w)))),
            Vec::new(),
        ),
    };
    outputs.push(Output::new(File::from(out_r), "stdout"));
    outputs.push(Output::new(File::from(err_r), "stderr"));
    let data = dir.parent().and_then(Path::parent).unwrap_or(dir);
    hub.listen(&socket_path(data, &record.id))
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
        pidfd,
        started,
        outputs,
        log,
        cgroups,
        hub,
        sweep: record.init.tuning.pid_host.then(|| record.id.clone()),
    })
}

/// The shim's loop: output to the log and clients, clients in, until the process
/// has exited and its output ended; its exit code.
fn serve(s: &mut Started) -> i32 {
    let mut code = None;
    let mut fds: Vec<libc::pollfd> = Vec::with_capacity(8);
    let mut buf = [0u8; 8192];
    loop {
        let open = s.outputs.iter().filter(|o| o.file.is_some()).count();
        if code.is_some() && open == 0 {
            return code.unwrap_or(255);
        }
        fds.clear();
        let watch = |fd: i32| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        fds.extend(
            s.outputs
                .iter()
                .filter_map(|o| o.file.as_ref())
                .map(|f| watch(f.as_raw_fd())),
        );
        if code.is_none() {
            fds.push(watch(s.pidfd.as_raw_fd()));
        }
        s.hub.interest(&mut fds);
        // SAFETY: poll on a live array of pollfds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == ErrorKind::Interrupted {
                continue;
            }
            // Nothing to wait on safely: wait for the exit alone.
            return wait(s.pid).unwrap_or(255);
        }
        let ready = |fd: i32| fds.iter().any(|p| p.fd == fd && p.revents != 0);
        for o in &mut s.outputs {
            if o.file.as_ref().is_some_and(|f| ready(f.as_raw_fd())) {
                o.pump(&mut buf, &mut s.log, &mut s.hub);
            }
        }
        if code.is_none() && ready(s.pidfd.as_raw_fd()) {
            code = Some(wait(s.pid).unwrap_or(255));
            if let Some(id) = &s.sweep {
                kill_leftovers(&*s.cgroups, id);
            }
        }
        s.hub.ready(&fds);
    }
}

/// Kill what the command left running in cgroup `id`: frozen first, so nothing forks
/// past the sweep (runc's way for a container without a PID namespace of its own).
fn kill_leftovers(cgroups: &dyn Cgroups, id: &str) {
    for _ in 0..10 {
        let frozen = cgroups.freeze(id, true).is_ok();
        let pids = cgroups.procs(id).unwrap_or_default();
        for pid in &pids {
            // SAFETY: signalling a process of this container's cgroup.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
        if frozen {
            let _ = cgroups.freeze(id, false);
        }
        if pids.is_empty() || frozen {
            return;
        }
    }
}

/// Let go of the pages of the `orch` binary that starting touched (read-only,
/// unmodified file pages: parsing, the launch, the cgroup set-up). The kernel keeps
/// them in the page cache, shared with the engine; the idle loop faults back in the
/// few it runs, so the shim's resident set is what it uses while it waits.
fn drop_startup_pages() {
    let (Ok(exe), Ok(smaps)) = (
        std::fs::read_link("/proc/self/exe"),
        std::fs::read_to_string("/proc/self/smaps"),
    ) else {
        return;
    };
    let exe = exe.to_string_lossy();
    // (start, end) of each read-only mapping of the binary, and whether the loader
    // wrote to it (relocated RELRO pages are private copies: they must stay).
    let mut ranges: Vec<(usize, usize, bool)> = Vec::with_capacity(8);
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let (Some(first), Some(second)) = (f.next(), f.next()) else {
            continue;
        };
        if let Some((start, end)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            )
        {
            // Writable mappings hold state (.data, .bss): never dropped.
            if !second.contains('w') && f.nth(3) == Some(exe.as_ref()) {
                ranges.push((start, end, false));
            } else {
                ranges.push((0, 0, true));
            }
        } else if first == "Anonymous:"
            && second != "0"
            && let Some(last) = ranges.last_mut()
        {
            last.2 = true;
        }
    }
    drop(smaps);
    // Last, in one tight loop, so that little code runs between the drop and the
    // poll (each page fault maps its 64 KiB neighbourhood back in).
    for (start, end, written) in ranges {
        if !written {
            // SAFETY: a private, read-only, unmodified file mapping of our own binary:
            // dropped pages are read again from the file on their next use.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        }
    }
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
    let mut s = s;
    // What starting took (parsing, the launch) is not needed while it runs.
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
    drop_startup_pages();
    let code = serve(&mut s);
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
