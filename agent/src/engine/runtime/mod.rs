//! Containers: processes in their own namespaces on an overlay of an image.
//!
//! - [`attach`]: the shim's attach socket: output to clients, their input in.
//! - [`caps`]: capability names, Docker's default set, add/drop, applying them.
//! - [`cgroup`]: resource limits, accounting, OOM kills and freezing (v1 and v2).
//! - [`container`]: a container on disk (config, init spec, state) and its state
//!   transitions.
//! - [`enter`]: `orch enter`, a process joining a running container (exec).
//! - [`exec`]: the engine's side of exec: plan, spawn `orch enter`, pipes or a pty.
//! - [`hosts`] (pure): a container's /etc/hosts, with extra entries.
//! - [`init`]: `orch init`, the container's first process: root file system
//!   (overlay, /proc, /dev, /sys, mounts, masked paths), pivot_root, capabilities,
//!   seccomp, user, exec.
//! - [`launch`]: clone into new namespaces, sync and error pipes, wait.
//! - [`limits`] (pure): `--ulimit` as rlimits, `--sysctl` kept to namespaced keys.
//! - [`logs`]: JSON-lines logs, rotated by size; read, tail, follow.
//! - [`reaper`]: `init: true`, pid 1 forwarding signals to the command and reaping
//!   orphans (Docker's `--init`).
//! - [`policy`] (pure): restart decisions with back-off, health from probes.
//! - [`resolv`] (pure): a container's /etc/resolv.conf, with search domains and
//!   options.
//! - [`seccomp`]: the default seccomp profile and its BPF.
//! - [`service`]: containers as the engine API offers them.
//! - [`shim`]: `orch shim`, the container's parent that outlives engine restarts.
//! - [`spec`] (pure): command, environment, working dir and user from the image's
//!   config, the options and the image's /etc/passwd and /etc/group; the security
//!   settings (capabilities, seccomp, privileged) from the options.
//! - [`supervisor`]: restart policies, health probes and `--rm`, as a loop.
//! - [`sys`]: checked system call wrappers.
//! - [`syscalls`] (pure): system call numbers by name for x86_64 and aarch64.
//! - [`tuning`] (pure): settings beyond the defaults (`--shm-size`, ...), checked.
//! - [`userns`]: user namespaces: id maps, idmapped root file systems.
pub mod attach;
pub mod caps;
pub mod cgroup;
pub mod container;
pub mod enter;
pub mod exec;
pub mod hosts;
pub mod init;
pub mod launch;
pub mod limits;
pub mod logs;
pub mod policy;
pub mod reaper;
pub mod resolv;
pub mod seccomp;
pub mod service;
pub mod shim;
pub mod spec;
pub mod supervisor;
pub mod sys;
pub mod syscalls;
pub mod tuning;
pub mod userns;
