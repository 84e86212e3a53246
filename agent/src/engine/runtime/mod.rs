//! Containers: processes in their own namespaces on an overlay of an image.
//!
//! - [`container`]: a container on disk (config, init spec, state) and its state
//!   transitions.
//! - [`logs`]: JSON-lines logs, rotated by size; read, tail, follow.
//! - [`policy`] (pure): restart decisions with back-off, health from probes.
//! - [`service`]: containers as the engine API offers them.
//! - [`shim`]: `orch shim`, the container's parent that outlives engine restarts.
//! - [`spec`] (pure): command, environment, working dir and user from the image's
//!   config, the options and the image's /etc/passwd and /etc/group.
//! - [`enter`]: `orch enter`, a process joining a running container (exec).
//! - [`exec`]: the engine's side of exec: plan, spawn `orch enter`, pipes or a pty.
//! - [`init`]: `orch init`, the container's first process: root file system
//!   (overlay, /proc, /dev, /sys, mounts, masked paths), pivot_root, user, exec.
//! - [`launch`]: clone into new namespaces, sync and error pipes, wait.
//! - [`supervisor`]: restart policies, health probes and `--rm`, as a loop.
//! - [`sys`]: checked system call wrappers.
pub mod container;
pub mod enter;
pub mod exec;
pub mod init;
pub mod launch;
pub mod logs;
pub mod policy;
pub mod service;
pub mod shim;
pub mod spec;
pub mod supervisor;
pub mod sys;
