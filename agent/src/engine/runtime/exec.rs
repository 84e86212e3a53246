//! Starting a process in a running container (the engine's side of `exec`): the
//! process plan from the container's and the request's settings, `orch enter`
//! spawned with pipes or a pseudo-terminal.

use super::container::{ContainerRecord, read_json};
use super::enter::EnterSpec;
use super::service::{ContainerError, ContainerService};
use super::spec::resolve_user;
use crate::engine::image::build::tree::{ImageTree, read_text};
use api::container::{ContainerStatus, ExecCreate};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// The process's end of the conversation.
pub enum ExecIo {
    /// Three pipes.
    Pipes {
        stdin: tokio::process::ChildStdin,
        stdout: tokio::process::ChildStdout,
        stderr: tokio::process::ChildStderr,
    },
    /// The master side of the process's terminal.
    Pty { master: OwnedFd },
}

/// A started exec.
pub struct ExecProcess {
    pub child: tokio::process::Child,
    pub io: ExecIo,
}

/// Set the size of the terminal whose master is `master`.
pub fn resize(master: &OwnedFd, rows: u16, cols: u16) {
    use std::os::fd::AsRawFd;
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ with a valid winsize on a pty master we own.
    unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}

/// A terminal from the container's own devpts (so that the process sees it as
/// `/dev/pts/N` inside), opened through `/proc/PID/root`: (master, slave).
fn container_pty(pid: i32) -> std::io::Result<(OwnedFd, OwnedFd)> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let root = format!("/proc/{pid}/root/dev/pts");
    let master = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(format!("{root}/ptmx"))?;
    let fd = master.as_raw_fd();
    let mut unlock: libc::c_int = 0;
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCSPTLCK and TIOCGPTN on a ptmx we opened, with valid pointers.
    unsafe {
        if libc::ioctl(fd, libc::TIOCSPTLCK, &mut unlock) != 0
            || libc::ioctl(fd, libc::TIOCGPTN, &mut n) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(format!("{root}/{n}"))?;
    Ok((OwnedFd::from(master), OwnedFd::from(slave)))
}

impl ContainerService {
    /// Start `req` in running container `id`.
    pub fn exec(&self, id: &str, req: &ExecCreate) -> Result<ExecProcess, ContainerError> {
        let invalid = |why: &str| ContainerError::Invalid {
            what: "exec",
            value: req.cmd.join(" "),
            why: why.to_owned(),
        };
        if req.cmd.is_empty() {
            return Err(invalid("a command is needed"));
        }
        let ContainerStatus::Running { pid, .. } = self.state(id)?.status else {
            return Err(ContainerError::State {
                id: id.to_owned(),
                status: "not running",
                hint: "exec needs a running container",
            });
        };
        let dir = self.path(id);
        let record: ContainerRecord = read_json(&dir.join("config.json"))?;
        let mut process = record.init.process.clone();
        process.args = req.cmd.clone();
        for kv in &req.env {
            let key = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
            process
                .env
                .retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
            process.env.push(kv.clone());
        }
        if let Some(w) = &req.workdir {
            if !w.starts_with('/') {
                return Err(invalid("the working directory must be absolute"));
            }
            process.cwd = w.clone();
        }
        if let Some(user) = &req.user {
            // The container's files as it sees them: its upper layer over the image.
            let mut layers = vec![dir.join("upper")];
            layers.extend(
                record
                    .init
                    .overlay
                    .options
                    .iter()
                    .filter_map(|o| o.strip_prefix("lowerdir="))
                    .flat_map(|l| l.split(':').map(PathBuf::from)),
            );
            let tree = ImageTree { layers };
            let group = read_text(&tree, "/etc/group");
            process.ids = resolve_user(user, &read_text(&tree, "/etc/passwd"), &group)?;
            super::spec::add_groups(&mut process.ids, &record.group_add, &group)?;
        }
        let spec = EnterSpec {
            pid,
            process,
            tty: req.tty,
            no_new_privileges: record.init.no_new_privileges,
            security: record.init.security.clone(),
            cgroup: record.id.clone(),
        };
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let path = dir.join(format!(
            "exec-{}-{}.json",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        super::container::write_json(&path, &spec)?;
        let io_err = |op, source| ContainerError::Io {
            op,
            path: path.clone(),
            source,
        };
        let mut cmd = tokio::process::Command::new("/proc/self/exe");
        cmd.arg("enter").arg(&path).kill_on_drop(true);
        let started = if req.tty {
            let (master, slave) =
                container_pty(pid).map_err(|e| io_err("open a terminal for", e))?;
            let out = slave
                .try_clone()
                .map_err(|e| io_err("dup a terminal for", e))?;
            let err = slave
                .try_clone()
                .map_err(|e| io_err("dup a terminal for", e))?;
            cmd.stdin(std::process::Stdio::from(slave))
                .stdout(std::process::Stdio::from(out))
                .stderr(std::process::Stdio::from(err));
            cmd.spawn().map(|child| ExecProcess {
                child,
                io: ExecIo::Pty { master },
            })
        } else {
            cmd.stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().and_then(|mut child| {
                let missing = || std::io::Error::other("no pipe");
                let stdin = child.stdin.take().ok_or_else(missing)?;
                let stdout = child.stdout.take().ok_or_else(missing)?;
                let stderr = child.stderr.take().ok_or_else(missing)?;
                Ok(ExecProcess {
                    child,
                    io: ExecIo::Pipes {
                        stdin,
                        stdout,
                        stderr,
                    },
                })
            })
        };
        started.map_err(|e| {
            let _ = std::fs::remove_file(&path);
            io_err("start exec with", e)
        })
    }
}
