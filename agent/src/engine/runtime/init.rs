//! `orch init`: the first process of a container, already inside its new namespaces
//! (mount, pid — as pid 1 —, uts, ipc, net). It waits for the launcher's go (by then
//! it is in its cgroup), enters a new cgroup namespace rooted there, builds the root
//! file system (overlay, /proc, /dev, /sys, mounts, masked paths), pivots into it,
//! drops capabilities, becomes the container's user, installs the seccomp filter and
//! executes the command. Errors before the exec are written to the launcher's error
//! pipe.
//!
//! The order around the exec follows runc: without `no_new_privileges` the filter goes
//! in while init still holds `CAP_SYS_ADMIN` (the kernel's condition for a filter
//! without no_new_privs), before capabilities are dropped; with it, the filter is the
//! very last step. So a container keeps Docker's `NoNewPrivs: 0` unless asked.

use super::caps;
use super::seccomp::{self, Seccomp, SeccompError};
use super::spec::{ProcessPlan, Security};
use super::sys::{self, SysError};
use crate::engine::image::snapshot::MountSpec;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

/// The fd on which init waits for the launcher's go (one byte).
pub const SYNC_FD: i32 = 3;
/// The fd on which init reports a failure before exec (closed by a successful exec).
pub const ERROR_FD: i32 = 4;
/// The unix socket on which init sends its terminal's master (containers with a tty).
pub const CONSOLE_FD: i32 = 5;
/// The unix socket on which init receives its root file system, a detached idmapped
/// overlay (containers with a user namespace).
pub const ROOTFS_FD: i32 = 6;

/// A mount inside the container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Absolute path inside the container.
    pub target: String,
    pub kind: MountKind,
    pub readonly: bool,
}

/// What is mounted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MountKind {
    /// A host file or directory.
    Bind { source: PathBuf },
    /// A fresh tmpfs.
    Tmpfs {
        size: Option<u64>,
        mode: Option<u32>,
    },
}

/// Everything init needs, decided by the engine beforehand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitSpec {
    /// The directory the root file system is mounted on.
    pub rootfs: PathBuf,
    /// The overlay to mount there.
    pub overlay: MountSpec,
    pub readonly_rootfs: bool,
    pub hostname: String,
    pub process: ProcessPlan,
    /// Mounted in order, after /proc, /dev and /sys.
    pub mounts: Vec<Mount>,
    pub no_new_privileges: bool,
    pub security: Security,
    /// Give the process a terminal (its master goes to the launcher on [`CONSOLE_FD`]).
    #[serde(default)]
    pub tty: bool,
    /// Keep orch's init as pid 1 to forward signals to the command and reap orphans
    /// (Docker's `--init`; see [`super::reaper`]).
    #[serde(default)]
    pub init: bool,
    /// rlimits of the process.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<super::limits::Ulimit>,
    /// Namespaced kernel settings, written under /proc/sys before it is read-only.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub sysctls: std::collections::BTreeMap<String, String>,
    /// The network namespace to be in.
    #[serde(default)]
    pub netns: crate::engine::network::service::NetNs,
    /// The id maps of the container's own user namespace, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns: Option<super::userns::UserNs>,
    /// What the user set beyond the defaults.
    #[serde(default)]
    pub tuning: Tuning,
}

/// Settings of the container beyond the engine's defaults (compose's `shm_size`, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tuning {
    /// Size of /dev/shm in bytes (default: [`DEFAULT_SHM_SIZE`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<u64>,
    /// Written to init's `/proc/self/oom_score_adj` before the command runs (its
    /// processes inherit it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i32>,
    /// The NIS domain name of its UTS namespace (default: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    /// Share the host's IPC namespace and /dev/shm instead of having its own
    /// (`ipc: host`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ipc_host: bool,
    /// Share the host's PID namespace instead of having its own (`pid: host`): the
    /// command is not pid 1, and what it leaves running is killed when it ends.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pid_host: bool,
    /// Share the host's UTS namespace (`uts: host`): its host and domain names, which
    /// init then leaves alone.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub uts_host: bool,
}

/// Docker's size of /dev/shm: 64 MiB.
pub const DEFAULT_SHM_SIZE: u64 = 64 << 20;

/// Why init failed.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("read the container spec {path}: {why}")]
    Spec { path: PathBuf, why: String },
    #[error(transparent)]
    Sys(#[from] SysError),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error(transparent)]
    Userns(#[from] super::userns::UsernsError),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error(
        "oom_score_adj: write {value} to /proc/self/oom_score_adj: {source} (a value below the engine's own needs CAP_SYS_RESOURCE)"
    )]
    OomScoreAdj { value: i32, source: std::io::Error },
    #[error("mount target {0:?} must be an absolute path without ..")]
    Target(String),
    #[error("exec {0:?}: executable file not found in $PATH")]
    NotFound(String),
    #[error("exec {what:?}: {source}")]
    Exec {
        what: String,
        source: std::io::Error,
    },
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> InitError + use<> {
    let path = path.display().to_string();
    move |source| InitError::Io { op, path, source }
}

/// Files whose content is hidden (bind-mounted /dev/null) and directories replaced by
/// an empty read-only tmpfs, as Docker does.
pub const MASKED: [&str; 9] = [
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

/// Paths made read-only, as Docker does.
pub const READ_ONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// `target` (absolute, inside the container) under `root`, refusing `..`.
fn inside(root: &Path, target: &str) -> Result<PathBuf, InitError> {
    let p = Path::new(target);
    if !p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(InitError::Target(target.to_owned()));
    }
    let rel = p.strip_prefix("/").unwrap_or(p);
    // The image is untrusted and this runs before pivot_root: its parent directories
    // are resolved inside the root, so a symlink in the image cannot lead the mount
    // (or the directories made for it) out to the host.
    let parent = rel.parent().unwrap_or(Path::new(""));
    let dir =
        crate::engine::image::unpack::resolve_in_root(root, parent).map_err(|e| InitError::Io {
            op: "resolve",
            path: target.to_owned(),
            source: std::io::Error::other(e.to_string()),
        })?;
    Ok(match rel.file_name() {
        Some(name) => dir.join(name),
        None => dir,
    })
}

fn mkdirs(path: &Path) -> Result<(), InitError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        .map_err(io("create", path))
}

/// Make `path` exist as the same kind (file or directory) as `like`.
fn make_target(path: &Path, dir: bool) -> Result<(), InitError> {
    match path.symlink_metadata() {
        // A symlink at the mount point is replaced, never followed (it could point
        // anywhere on the host).
        Ok(m) if m.file_type().is_symlink() => {
            fs::remove_file(path).map_err(io("replace the symlink", path))?;
        }
        Ok(_) => return Ok(()),
        Err(_) => {}
    }
    if dir {
        mkdirs(path)
    } else {
        if let Some(parent) = path.parent() {
            mkdirs(parent)?;
        }
        fs::File::create(path).map(drop).map_err(io("create", path))
    }
}

const DEVICES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// /dev as a small tmpfs with the standard nodes, pts, shm (of the size asked for, or
/// the host's with `ipc: host`) and mqueue. In a user
/// namespace, where mknod is refused, the nodes are bind mounts of the host's.
fn setup_dev(root: &Path, userns: bool, tuning: &Tuning) -> Result<(), InitError> {
    let dev = inside(root, "/dev")?;
    make_target(&dev, true)?;
    let nosuid = libc::MS_NOSUID;
    sys::mount(
        "tmpfs",
        &dev,
        Some("tmpfs"),
        nosuid | libc::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    for (name, major, minor) in DEVICES {
        let p = dev.join(name);
        if userns {
            make_target(&p, false)?;
            let host = format!("/dev/{name}");
            sys::mount(&host, &p, None, libc::MS_BIND, None)?;
            continue;
        }
        sys::mknod_char(&p, 0o666, major, minor)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o666)).map_err(io("chmod", &p))?;
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
        ("core", "/proc/kcore"),
    ] {
        let p = dev.join(link);
        symlink(to, &p).map_err(io("symlink", &p))?;
    }
    let pts = dev.join("pts");
    mkdirs(&pts)?;
    sys::mount(
        "devpts",
        &pts,
        Some("devpts"),
        nosuid | libc::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    let shm = dev.join("shm");
    mkdirs(&shm)?;
    if tuning.ipc_host {
        // Before pivot_root, /dev/shm is still the host's.
        sys::mount("/dev/shm", &shm, None, libc::MS_BIND | libc::MS_REC, None)?;
    } else {
        sys::mount(
            "shm",
            &shm,
            Some("tmpfs"),
            nosuid | libc::MS_NOEXEC | libc::MS_NODEV,
            Some(&format!(
                "mode=1777,size={}",
                tuning.shm_size.unwrap_or(DEFAULT_SHM_SIZE)
            )),
        )?;
    }
    let mq = dev.join("mqueue");
    mkdirs(&mq)?;
    sys::mount(
        "mqueue",
        &mq,
        Some("mqueue"),
        nosuid | libc::MS_NOEXEC | libc::MS_NODEV,
        None,
    )?;
    Ok(())
}

fn setup_mount(root: &Path, m: &Mount) -> Result<(), InitError> {
    let target = inside(root, &m.target)?;
    match &m.kind {
        MountKind::Bind { source } => {
            let is_dir = fs::metadata(source)
                .map_err(io("bind-mount source", source))?
                .is_dir();
            make_target(&target, is_dir)?;
            let src = source.display().to_string();
            sys::mount(&src, &target, None, libc::MS_BIND | libc::MS_REC, None)?;
            if m.readonly {
                let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
                sys::mount("", &target, None, flags, None)?;
            }
        }
        MountKind::Tmpfs { size, mode } => {
            make_target(&target, true)?;
            let mut data = format!("mode={:o}", mode.unwrap_or(0o1777));
            if let Some(s) = size {
                data.push_str(&format!(",size={s}"));
            }
            let mut flags = libc::MS_NOSUID | libc::MS_NODEV;
            if m.readonly {
                flags |= libc::MS_RDONLY;
            }
            sys::mount("tmpfs", &target, Some("tmpfs"), flags, Some(&data))?;
        }
    }
    Ok(())
}

/// After pivot_root: hide and freeze the kernel's sensitive paths.
fn mask_paths() -> Result<(), InitError> {
    for p in MASKED {
        let path = Path::new(p);
        match fs::metadata(path) {
            Ok(m) if m.is_dir() => {
                sys::mount(
                    "tmpfs",
                    path,
                    Some("tmpfs"),
                    libc::MS_RDONLY,
                    Some("size=0"),
                )?;
            }
            Ok(_) => sys::mount("/dev/null", path, None, libc::MS_BIND, None)?,
            Err(_) => {}
        }
    }
    for p in READ_ONLY {
        let path = Path::new(p);
        if path.exists() {
            sys::mount(p, path, None, libc::MS_BIND | libc::MS_REC, None)?;
            let flags = libc::MS_BIND
                | libc::MS_REMOUNT
                | libc::MS_RDONLY
                | libc::MS_REC
                | libc::MS_NOSUID
                | libc::MS_NODEV
                | libc::MS_NOEXEC;
            sys::mount("", path, None, flags, None)?;
        }
    }
    Ok(())
}

/// The program `name` resolves to with `PATH` from `env`, inside the new root.
pub fn find_program(name: &str, env: &[String]) -> Result<PathBuf, InitError> {
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(super::spec::DEFAULT_PATH);
    path.split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
        .ok_or_else(|| InitError::NotFound(name.to_owned()))
}

/// Enter the network namespace held at `path` (before the root changes).
fn join_netns(path: &Path) -> Result<(), InitError> {
    use std::os::fd::AsRawFd;
    let ns = fs::File::open(path).map_err(io("open the network namespace", path))?;
    // SAFETY: setns on a namespace fd we hold.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io("join the network namespace", path)(
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Build the container's root and execute its process (returns only on failure).
fn setup_and_exec(spec: &InitSpec) -> Result<(), InitError> {
    let root = &spec.rootfs;
    let security = &spec.security;
    let userns = spec.userns.is_some();
    // In a user namespace, the launcher joined the network namespace.
    if let (false, crate::engine::network::service::NetNs::Join(path)) = (userns, &spec.netns) {
        join_netns(path)?;
    }
    sys::unshare(libc::CLONE_NEWCGROUP)?;
    let filter = seccomp_filter(security)?;
    sys::mount(
        "",
        Path::new("/"),
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
    )?;
    let o = &spec.overlay;
    if userns {
        let tree = sys::recv_fd(ROOTFS_FD).map_err(|source| InitError::Io {
            op: "receive the root file system on",
            path: "fd 6".into(),
            source,
        })?;
        super::userns::attach(&tree, root)?;
    } else {
        sys::mount(
            &o.source,
            root,
            Some(&o.fstype),
            0,
            Some(&o.options.join(",")),
        )?;
    }
    // SAFETY: closing an fd nothing else uses any more.
    unsafe { libc::close(ROOTFS_FD) };
    let proc_dir = inside(root, "/proc")?;
    make_target(&proc_dir, true)?;
    let safe = libc::MS_NOSUID | libc::MS_NOEXEC | libc::MS_NODEV;
    sys::mount("proc", &proc_dir, Some("proc"), safe, None)?;
    setup_dev(root, userns, &spec.tuning)?;
    let sys_dir = inside(root, "/sys")?;
    make_target(&sys_dir, true)?;
    let sys_ro = if security.privileged {
        0
    } else {
        libc::MS_RDONLY
    };
    match sys::mount("sysfs", &sys_dir, Some("sysfs"), safe | sys_ro, None) {
        // sysfs needs the network namespace to be the user namespace's own; in a
        // joined one, the host's /sys is bound instead (as runc does).
        Err(e) if userns && e.source.raw_os_error() == Some(libc::EPERM) => {
            let rbind = libc::MS_BIND | libc::MS_REC;
            sys::mount("/sys", &sys_dir, None, rbind, None)?;
            let ro = libc::MS_BIND | libc::MS_REMOUNT | safe | sys_ro;
            sys::mount("", &sys_dir, None, ro, None)?;
        }
        other => other?,
    }
    for m in &spec.mounts {
        setup_mount(root, m)?;
    }
    sys::pivot_root_here(root)?;
    for (key, value) in &spec.sysctls {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        fs::write(&path, value).map_err(io("write a sysctl to", &path))?;
    }
    if let Some(value) = spec.tuning.oom_score_adj {
        fs::write("/proc/self/oom_score_adj", value.to_string())
            .map_err(|source| InitError::OomScoreAdj { value, source })?;
    }
    for u in &spec.ulimits {
        let Some(res) = super::limits::resource(&u.name) else {
            continue;
        };
        let lim = libc::rlimit {
            rlim_cur: u.soft,
            rlim_max: u.hard,
        };
        // SAFETY: setrlimit with a valid struct.
        if unsafe { libc::setrlimit(res, &lim) } != 0 {
            return Err(InitError::Io {
                op: "set the rlimit",
                path: format!("{} ({}:{})", u.name, u.soft, u.hard),
                source: std::io::Error::last_os_error(),
            });
        }
    }
    if !security.privileged {
        mask_paths()?;
    }
    if spec.readonly_rootfs {
        let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
        sys::mount("", Path::new("/"), None, flags, None)?;
    }
    if !spec.tuning.uts_host {
        sys::sethostname(&spec.hostname)?;
        if let Some(name) = &spec.tuning.domainname {
            sys::setdomainname(name)?;
        }
    }
    let p = &spec.process;
    if spec.tty {
        let master = sys::console(p.ids.uid)?;
        sys::send_fd(CONSOLE_FD, std::os::fd::AsRawFd::as_raw_fd(&master)).map_err(|source| {
            InitError::Io {
                op: "send the terminal to the shim over",
                path: "fd 5".into(),
                source,
            }
        })?;
    }
    // SAFETY: closing an fd nothing else uses any more.
    unsafe { libc::close(CONSOLE_FD) };
    let program = find_program(&p.args[0], &p.env)?;
    if spec.init {
        become_user(p, security, filter.as_deref(), spec.no_new_privileges)?;
        super::reaper::fork_command()?;
        return exec(&program, p);
    }
    become_user_and_exec(
        &program,
        p,
        security,
        filter.as_deref(),
        spec.no_new_privileges,
    )
}

/// The last steps before a container's command runs (init's, and exec's): the
/// seccomp filter, capabilities, user, no_new_privs, working directory, exec — in
/// runc's order (without no_new_privs the filter goes in while `CAP_SYS_ADMIN` is
/// still held; with it, last). Returns only on failure.
pub fn become_user_and_exec(
    program: &Path,
    p: &ProcessPlan,
    security: &super::spec::Security,
    filter: Option<&[Vec<libc::sock_filter>]>,
    nnp: bool,
) -> Result<(), InitError> {
    become_user(p, security, filter, nnp)?;
    exec(program, p)
}

/// The steps of [`become_user_and_exec`] before the exec.
fn become_user(
    p: &ProcessPlan,
    security: &super::spec::Security,
    filter: Option<&[Vec<libc::sock_filter>]>,
    nnp: bool,
) -> Result<(), InitError> {
    if let Some(f) = filter.filter(|_| !nnp) {
        seccomp::install(f)?;
    }
    caps::drop_bounding(&security.capabilities)?;
    sys::set_ids(p.ids.uid, p.ids.gid, &p.ids.groups)?;
    caps::apply(&security.capabilities, p.ids.uid)?;
    if nnp {
        sys::no_new_privs()?;
    }
    std::env::set_current_dir(&p.cwd).map_err(io("chdir", Path::new(&p.cwd)))?;
    if let Some(f) = filter.filter(|_| nnp) {
        seccomp::install(f)?;
    }
    Ok(())
}

/// `execve` of the container's command; returns only on failure.
fn exec(program: &Path, p: &ProcessPlan) -> Result<(), InitError> {
    Err(InitError::Exec {
        what: p.args[0].clone(),
        source: super::sys::execve(program, &p.args, &p.env),
    })
}

/// The seccomp programs `security` asks for.
pub fn seccomp_filter(
    security: &super::spec::Security,
) -> Result<Option<Vec<Vec<libc::sock_filter>>>, InitError> {
    Ok(match security.seccomp {
        Seccomp::Default => Some(seccomp::compile(&seccomp::denials(&security.capabilities))?),
        Seccomp::Unconfined => None,
    })
}

/// The body of `orch init SPEC`: never returns when the command starts; exits 127
/// after reporting the error otherwise.
pub fn run(spec_path: &Path) -> ! {
    // SAFETY: the launcher hands these two fds over; nothing else owns them.
    let mut sync = unsafe { fs::File::from_raw_fd(SYNC_FD) };
    let mut errors = unsafe { fs::File::from_raw_fd(ERROR_FD) };
    // SAFETY: fcntl on an fd we own: a successful exec closes the error pipe.
    unsafe { libc::fcntl(ERROR_FD, libc::F_SETFD, libc::FD_CLOEXEC) };
    let mut go = [0u8; 1];
    if sync.read_exact(&mut go).is_err() {
        std::process::exit(127);
    }
    drop(sync);
    let result = fs::read(spec_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice::<InitSpec>(&b).map_err(|e| e.to_string()))
        .map_err(|why| InitError::Spec {
            path: spec_path.to_owned(),
            why,
        })
        .and_then(|spec| setup_and_exec(&spec));
    if let Err(e) = result {
        let _ = errors.write_all(e.to_string().as_bytes());
    }
    std::process::exit(127)
}
