//! Containers: processes in their own namespaces on an overlay of an image.
//!
//! - [`spec`] (pure): command, environment, working dir and user from the image's
//!   config, the options and the image's /etc/passwd and /etc/group; the security
//!   settings (capabilities, seccomp, privileged) from the options.
//! - [`init`]: `orch init`, the container's first process: root file system
//!   (overlay, /proc, /dev, /sys, mounts, masked paths), pivot_root, capabilities,
//!   seccomp, user, exec.
//! - [`launch`]: clone into new namespaces, sync and error pipes, wait.
//! - [`cgroup`]: resource limits, accounting, OOM kills and freezing (v1 and v2).
//! - [`caps`]: capability names, Docker's default set, add/drop, applying them.
//! - [`seccomp`]: the default seccomp profile and its BPF.
//! - [`sys`]: checked system call wrappers.
pub mod caps;
pub mod cgroup;
pub mod init;
pub mod launch;
pub mod seccomp;
pub mod spec;
pub mod sys;
