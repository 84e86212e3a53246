//! Starting a container's first process: `clone(2)` into new mount, pid, uts, ipc and
//! net namespaces, executing `orch init` there with the spec, a sync pipe (init waits
//! until the launcher says go: the launcher places it in its cgroup and sets up
//! networks in between) and an error pipe (what init reports before its exec). init
//! enters its cgroup namespace itself after the go, so the namespace is rooted at the
//! container's cgroup rather than the launcher's.
//!
//! With a user namespace ([`super::userns`]) the clone adds `CLONE_NEWUSER`, so every
//! other new namespace is owned by it; a network namespace to join is joined by the
//! launcher around the clone (init, root only in its own user namespace, could not),
//! and [`Launched::map_userns`] writes the id maps and hands init its idmapped root
//! file system before the go.

use super::cgroup::{CgroupError, Cgroups};
use super::init::{CONSOLE_FD, ERROR_FD, ROOTFS_FD, SYNC_FD};
use super::userns::{self, UserNs, UsernsError};
use crate::engine::image::snapshot::MountSpec;
use crate::engine::network::service::NetNs;
use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The namespaces every container is cloned into (plus a cgroup namespace init
/// unshares once placed).
pub const NAMESPACES: libc::c_int = libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWNET;

/// Why a container could not start.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{op}: {source}")]
    Sys { op: &'static str, source: io::Error },
    /// init reported this before executing the command.
    #[error("{0}")]
    Init(String),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Userns(#[from] UsernsError),
}

fn sys(op: &'static str) -> impl FnOnce(io::Error) -> LaunchError {
    move |source| LaunchError::Sys { op, source }
}

/// The file descriptors a container's process gets as 0, 1 and 2.
#[derive(Clone, Copy, Debug)]
pub struct Stdio {
    pub stdin: RawFd,
    pub stdout: RawFd,
    pub stderr: RawFd,
    /// A unix socket on which init sends the master of the container's terminal
    /// (for containers with a terminal).
    pub console: Option<RawFd>,
}

/// A cloned init, waiting for [`Launched::go`].
pub struct Launched {
    /// Its pid in the launcher's pid namespace.
    pub pid: libc::pid_t,
    sync: File,
    errors: File,
    /// Where init receives its root file system (with a user namespace).
    rootfs: Option<OwnedFd>,
    /// Tells the child its id maps are written (with a user namespace).
    maps: Option<File>,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), LaunchError> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(sys("pipe")(io::Error::last_os_error()));
    }
    // SAFETY: fresh fds from pipe2.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// What the cloned child needs, prepared before the clone (it may only make
/// async-signal-safe calls).
struct ChildArgs {
    exe: CString,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    /// Sources for the fds of [`TARGETS`], in order.
    fds: [RawFd; 7],
    /// With a user namespace: where the child waits for its id maps, to become the
    /// namespace's root before it executes init (an exec as an unmapped user would
    /// drop every capability).
    maps: RawFd,
}

/// Where the child's fds go: stdio, then init's sync and error pipes, console socket
/// and root file system socket.
const TARGETS: [RawFd; 7] = [0, 1, 2, SYNC_FD, ERROR_FD, CONSOLE_FD, ROOTFS_FD];

extern "C" fn child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` points at the ChildArgs the parent keeps alive across clone.
    let a = unsafe { &*(arg as *const ChildArgs) };
    if a.maps >= 0 {
        let mut byte = 0u8;
        // SAFETY: async-signal-safe read, setgroups, setresgid and setresuid.
        unsafe {
            if libc::read(a.maps, (&mut byte as *mut u8).cast(), 1) != 1
                || libc::setgroups(0, std::ptr::null()) != 0
                || libc::setresgid(0, 0, 0) != 0
                || libc::setresuid(0, 0, 0) != 0
            {
                return 126;
            }
        }
    }
    let mut high = [0; 7];
    for (i, fd) in a.fds.iter().enumerate() {
        // SAFETY: async-signal-safe fcntl; moves each source above the targets.
        high[i] = unsafe { libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 10) };
        if high[i] < 0 {
            return 126;
        }
    }
    for (target, fd) in TARGETS.iter().zip(high) {
        // SAFETY: dup2 is async-signal-safe; the new fd has no CLOEXEC.
        if unsafe { libc::dup2(fd, *target) } < 0 {
            return 126;
        }
    }
    // SAFETY: NUL-terminated arrays of C strings owned by the parent's ChildArgs.
    unsafe { libc::execve(a.exe.as_ptr(), a.argv.as_ptr(), a.envp.as_ptr()) };
    127
}

/// Run `f` in the network namespace held at `path`, then return to this one (the
/// calling thread only).
fn in_netns<T>(path: &Path, f: impl FnOnce() -> T) -> Result<T, LaunchError> {
    let open = |p: &Path| {
        File::open(p).map_err(|source| LaunchError::Sys {
            op: "open a network namespace",
            source,
        })
    };
    let (ours, theirs) = (open(Path::new("/proc/thread-self/ns/net"))?, open(path)?);
    // SAFETY: setns with a namespace fd we hold.
    if unsafe { libc::setns(theirs.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(sys("join the container's network namespace")(
            io::Error::last_os_error(),
        ));
    }
    let out = f();
    // SAFETY: as above, back to where this thread was.
    if unsafe { libc::setns(ours.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        // This process must not go on in the container's network namespace.
        std::process::abort();
    }
    Ok(out)
}

/// Clone `init_exe init SPEC` into new namespaces with `stdio`; a new network
/// namespace only when `net` asks for one, new IPC, PID and UTS namespaces unless
/// `tuning` shares the host's (init joins a held one itself, unless in a
/// user namespace: then the launcher joins around the clone, and must be
/// single-threaded).
pub fn launch(
    init_exe: &Path,
    spec: &Path,
    stdio: Stdio,
    net: &NetNs,
    userns: bool,
    tuning: &super::init::Tuning,
) -> Result<Launched, LaunchError> {
    let mut flags = match net {
        NetNs::New => NAMESPACES,
        NetNs::Join(_) | NetNs::Host => NAMESPACES & !libc::CLONE_NEWNET,
    };
    if tuning.ipc_host {
        flags &= !libc::CLONE_NEWIPC;
    }
    if tuning.pid_host {
        flags &= !libc::CLONE_NEWPID;
    }
    if tuning.uts_host {
        flags &= !libc::CLONE_NEWUTS;
    }
    if userns {
        flags |= libc::CLONE_NEWUSER;
    }
    let (rootfs, maps) = if userns {
        (Some(socketpair()?), Some(pipe()?))
    } else {
        (None, None)
    };
    let (sync_r, sync_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let c = |b: &[u8]| CString::new(b).unwrap_or_else(|_| CString::from(c"?"));
    let exe = c(init_exe.as_os_str().as_bytes());
    let strings = [c(b"orch"), c(b"init"), c(spec.as_os_str().as_bytes())];
    let env = [c(
        b"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    )];
    let mut argv: Vec<*const libc::c_char> = strings.iter().map(|s| s.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|s| s.as_ptr()).collect();
    envp.push(std::ptr::null());
    let args = ChildArgs {
        exe,
        argv,
        envp,
        fds: [
            stdio.stdin,
            stdio.stdout,
            stdio.stderr,
            sync_r.as_raw_fd(),
            err_w.as_raw_fd(),
            // Without a terminal, fd 5 is a harmless second stdin; so is fd 6
            // without a user namespace.
            stdio.console.unwrap_or(stdio.stdin),
            rootfs
                .as_ref()
                .map_or(stdio.stdin, |(_, theirs)| theirs.as_raw_fd()),
        ],
        maps: maps.as_ref().map_or(-1, |(r, _)| r.as_raw_fd()),
    };
    const STACK: usize = 256 * 1024;
    let mut stack = vec![0u8; STACK];
    // SAFETY: the stack grows down from its end, 16-byte aligned; the child only
    // makes async-signal-safe calls before execve; `args` outlives the clone call
    // (the child has its own copy of the address space).
    let mut clone = move || unsafe {
        let top = stack.as_mut_ptr().add(STACK) as usize & !15;
        libc::clone(
            child,
            top as *mut libc::c_void,
            flags | libc::SIGCHLD,
            &args as *const ChildArgs as *mut libc::c_void,
        )
    };
    let pid = match net {
        NetNs::Join(path) if userns => in_netns(path, clone)?,
        _ => clone(),
    };
    if pid < 0 {
        return Err(sys("clone into new namespaces")(io::Error::last_os_error()));
    }
    drop((sync_r, err_w));
    Ok(Launched {
        pid,
        sync: File::from(sync_w),
        errors: File::from(err_r),
        rootfs: rootfs.map(|(ours, _)| ours),
        maps: maps.map(|(_, w)| File::from(w)),
    })
}

fn socketpair() -> Result<(OwnedFd, OwnedFd), LaunchError> {
    let mut fds = [0; 2];
    let kind = libc::SOCK_STREAM | libc::SOCK_CLOEXEC;
    // SAFETY: socketpair fills two fds we then own.
    if unsafe { libc::socketpair(libc::AF_UNIX, kind, 0, fds.as_mut_ptr()) } != 0 {
        return Err(sys("socketpair")(io::Error::last_os_error()));
    }
    // SAFETY: fresh fds from socketpair.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

impl Launched {
    /// Place init (still waiting for [`Launched::go`], so before anything of the
    /// container runs) in the cgroup of container `id`; its cgroup namespace will be
    /// rooted there.
    pub fn join_cgroup(&self, cgroups: &dyn Cgroups, id: &str) -> Result<(), LaunchError> {
        Ok(cgroups.add(id, self.pid)?)
    }

    /// Write the id maps of init's user namespace and send init its root file system:
    /// `overlay` with idmapped layers (before [`Launched::go`]; only for a launch with
    /// a user namespace).
    pub fn map_userns(&mut self, ns: &UserNs, overlay: &MountSpec) -> Result<(), LaunchError> {
        userns::write_maps(self.pid, ns)?;
        if let Some(mut maps) = self.maps.take() {
            maps.write_all(b"m")
                .map_err(sys("tell init its id maps are written"))?;
        }
        let host = |map| UserNs::host_id(map, 0).unwrap_or(0);
        let tree =
            userns::idmapped_overlay(self.pid, overlay, host(&ns.uid_map), host(&ns.gid_map))?;
        let sock = self.rootfs.as_ref().ok_or(LaunchError::Sys {
            op: "send the root file system",
            source: io::Error::other("launched without a user namespace"),
        })?;
        super::sys::send_fd(sock.as_raw_fd(), tree.as_raw_fd())
            .map_err(sys("send init its root file system"))
    }

    /// Let init proceed; returns once the command runs, or with init's error.
    pub fn go(mut self) -> Result<libc::pid_t, LaunchError> {
        self.sync.write_all(b"g").map_err(sys("signal init"))?;
        drop(self.sync);
        let mut report = String::new();
        self.errors
            .read_to_string(&mut report)
            .map_err(sys("read init's report"))?;
        if report.is_empty() {
            Ok(self.pid)
        } else {
            let _ = wait(self.pid);
            Err(LaunchError::Init(report))
        }
    }
}

/// Wait for `pid` to end: its exit code, or 128 + the signal that killed it.
pub fn wait(pid: libc::pid_t) -> Result<i32, LaunchError> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(sys("wait")(e));
        }
    }
    Ok(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    })
}
