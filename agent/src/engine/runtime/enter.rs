//! `orch enter SPEC`: a process started inside a running container (`exec`). It
//! joins the namespaces of the container's first process (ipc, uts, net, pid,
//! cgroup, mount — which also moves it onto the container's root), forks so that the
//! child is in the container's pid namespace, and the child becomes the requested
//! user and executes the command; the parent passes the exit status on.

use super::init::InitError;
use super::spec::ProcessPlan;
use serde::{Deserialize, Serialize};
use std::os::fd::AsRawFd;
use std::path::Path;

/// What `orch enter` runs, and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnterSpec {
    /// The container's first process (its pid on the host).
    pub pid: i32,
    pub process: ProcessPlan,
    /// stdin is a terminal to make the controlling terminal of a new session.
    pub tty: bool,
    pub no_new_privileges: bool,
    /// The container's capabilities and seccomp profile, which exec'd processes get
    /// too.
    pub security: super::spec::Security,
    /// The container's cgroup (its id), which the process joins before anything else.
    pub cgroup: String,
}

/// The namespaces joined, in order (mount last: it changes what /proc shows).
const NAMESPACES: [(&str, libc::c_int); 6] = [
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("pid", libc::CLONE_NEWPID),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("mnt", libc::CLONE_NEWNS),
];

fn fail(message: String) -> ! {
    eprintln!("orch exec: {message}");
    std::process::exit(126)
}

fn join(pid: i32) -> Result<(), String> {
    let mut files = Vec::new();
    for (name, flag) in NAMESPACES {
        let path = format!("/proc/{pid}/ns/{name}");
        let f = std::fs::File::open(&path).map_err(|e| format!("open {path}: {e}"))?;
        files.push((path, f, flag));
    }
    // A container with a user namespace of its own: joined last, once the namespaces
    // owned by the host's (its joined network namespace) are entered as the host's root.
    let theirs = format!("/proc/{pid}/ns/user");
    let ino = |p: &str| std::fs::metadata(p).map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    if ino(&theirs).map_err(|e| format!("stat {theirs}: {e}"))?
        != ino("/proc/self/ns/user").unwrap_or(0)
    {
        let f = std::fs::File::open(&theirs).map_err(|e| format!("open {theirs}: {e}"))?;
        files.push((theirs, f, libc::CLONE_NEWUSER));
    }
    for (path, f, flag) in &files {
        // SAFETY: setns with an fd we hold open.
        if unsafe { libc::setns(f.as_raw_fd(), *flag) } != 0 {
            return Err(format!("join {path}: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

fn exec(spec: &EnterSpec) -> Result<(), InitError> {
    let p = &spec.process;
    // SAFETY: prctl with integer arguments: die with the `orch enter` parent.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    if spec.tty {
        // SAFETY: a new session whose controlling terminal is stdin (the pty).
        unsafe {
            libc::setsid();
            libc::ioctl(0, libc::TIOCSCTTY, 0);
        }
    }
    let program = super::init::find_program(&p.args[0], &p.env)?;
    let filter = super::init::seccomp_filter(&spec.security)?;
    super::init::become_user_and_exec(
        &program,
        p,
        &spec.security,
        filter.as_deref(),
        spec.no_new_privileges,
    )
}

/// The body of `orch enter SPEC` (never returns): exits with the command's status.
pub fn run(spec_path: &Path) -> ! {
    let spec: EnterSpec = match std::fs::read(spec_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => fail(format!("read {}: {e}", spec_path.display())),
    };
    let _ = std::fs::remove_file(spec_path);
    // Into the container's cgroup first (its limits, its freezer), through the
    // host's view of the hierarchy.
    let joined = super::cgroup::probe(Path::new(super::cgroup::ROOT), super::cgroup::PARENT)
        .and_then(|cg| cg.add(&spec.cgroup, std::process::id() as i32));
    if let Err(e) = joined {
        fail(format!("join the container's cgroup: {e}"));
    }
    // SAFETY: prctl with integer arguments: no core dumps or ptrace of this process
    // while it holds the host's view.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if let Err(e) = join(spec.pid) {
        fail(e);
    }
    // SAFETY: fork in a single-threaded process.
    match unsafe { libc::fork() } {
        -1 => fail(format!("fork: {}", std::io::Error::last_os_error())),
        0 => {
            if let Err(e) = exec(&spec) {
                eprintln!("orch exec: {e}");
                std::process::exit(if matches!(e, InitError::NotFound(_)) {
                    127
                } else {
                    126
                });
            }
            std::process::exit(126)
        }
        child => match super::launch::wait(child) {
            Ok(code) => std::process::exit(code),
            Err(e) => fail(e.to_string()),
        },
    }
}
