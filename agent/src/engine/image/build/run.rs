//! RUN: the command runs in a real container of the engine (engine/runtime) whose
//! root is an overlay of the stage's layers; what it changed (the overlay's upper
//! directory) becomes the step's layer.
//!
//! The container has its own namespaces like any other, with a network namespace
//! of its own and no interfaces but a down loopback: RUN has no network access.

use super::BuildEvent;
use super::diff::append_upper;
use super::error::BuildError;
use super::inputs::TmpDir;
use super::layer::{self, NewLayer};
use super::state::State;
use crate::engine::image::images::Images;
use crate::engine::image::manifest::RunConfig;
use crate::engine::image::snapshot::Snapshots;
use crate::engine::network::service::NetNs;
use crate::engine::runtime::init::{InitSpec, Tuning};
use crate::engine::runtime::launch::{Stdio, launch, wait};
use crate::engine::runtime::limits::Ulimit;
use crate::engine::runtime::spec::Security;
use crate::engine::runtime::spec::{ProcessOptions, plan};
use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// What RUN needs from the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunEnv {
    /// The `orch` binary, whose `init` command starts containers.
    pub init_exe: PathBuf,
}

/// Limits of every RUN step's container, from the build request (`docker build
/// --shm-size --ulimit`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunLimits {
    /// Size of /dev/shm in bytes (`None`: the containers' default, 64 MiB).
    pub shm_size: Option<u64>,
    /// Rlimits of the step's processes; as for containers, a hard limit above the
    /// engine's own fails the step unless the engine may raise it.
    pub ulimits: Vec<Ulimit>,
}

/// One RUN step to execute.
pub struct RunStep<'a> {
    pub file: &'a str,
    pub line: usize,
    /// The command line (the shell is already prepended for the shell form).
    pub args: Vec<String>,
    /// The stage's environment plus its ARG values.
    pub env: Vec<String>,
    /// The image's /etc/passwd and /etc/group (for USER).
    pub passwd: String,
    pub group: String,
    pub limits: &'a RunLimits,
}

fn io_err(
    step: &RunStep<'_>,
    op: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> BuildError + use<> {
    let (file, line, path) = (step.file.to_owned(), step.line, path.to_owned());
    move |source| BuildError::Source {
        file,
        line,
        op,
        path,
        source,
    }
}

/// Run `step` on `state`; its output goes to `progress`; the new layer is written
/// to the content store.
pub fn execute(
    images: &Images,
    snapshots: &Snapshots,
    env: &RunEnv,
    state: &State,
    step: &RunStep<'_>,
    progress: &mut dyn FnMut(BuildEvent),
) -> Result<NewLayer, BuildError> {
    let store = &images.content;
    let mut lowers = snapshots
        .prepare_layers(store, &state.layers, &state.config.rootfs.diff_ids)
        .map_err(|source| BuildError::Snapshot {
            file: step.file.to_owned(),
            line: step.line,
            source,
        })?;
    let tmp = TmpDir::new(images.root()).map_err(io_err(step, "create", images.root()))?;
    for d in ["rootfs", "upper", "work", "empty"] {
        let p = tmp.0.join(d);
        std::fs::create_dir_all(&p).map_err(io_err(step, "create", &p))?;
    }
    if lowers.is_empty() {
        lowers.push(tmp.0.join("empty"));
    }
    let rc = state.config.config.clone().unwrap_or_default();
    let image = RunConfig {
        user: rc.user.clone(),
        working_dir: rc.working_dir.clone(),
        ..RunConfig::default()
    };
    let opts = ProcessOptions {
        entrypoint: Some(step.args.clone()),
        env: step.env.clone(),
        ..ProcessOptions::default()
    };
    let at = |what: String| BuildError::Dockerfile {
        file: step.file.to_owned(),
        line: step.line,
        what,
    };
    let process = plan(&image, &opts, &step.passwd, &step.group).map_err(|e| at(e.to_string()))?;
    let spec = InitSpec {
        rootfs: tmp.0.join("rootfs"),
        overlay: Snapshots::overlay(&lowers, &tmp.0.join("upper"), &tmp.0.join("work")),
        readonly_rootfs: false,
        hostname: "orch-build".into(),
        process,
        mounts: Vec::new(),
        no_new_privileges: false,
        security: Security::default(),
        tty: false,
        init: false,
        ulimits: step.limits.ulimits.clone(),
        sysctls: Default::default(),
        // RUN steps use the host's network, as BuildKit's default worker does, so
        // package installs can reach their mirrors.
        netns: NetNs::Host,
        userns: None,
        tuning: Tuning {
            shm_size: step.limits.shm_size,
            ..Tuning::default()
        },
    };
    let spec_path = tmp.0.join("init.json");
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap_or_default())
        .map_err(io_err(step, "write", &spec_path))?;
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds that are then owned below.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io_err(step, "pipe for", &spec_path)(
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: fresh fds from pipe2.
    let (out_r, out_w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let null =
        std::fs::File::open("/dev/null").map_err(io_err(step, "open", Path::new("/dev/null")))?;
    let stdio = Stdio {
        stdin: null.as_raw_fd(),
        stdout: out_w.as_raw_fd(),
        stderr: out_w.as_raw_fd(),
        console: None,
    };
    let started = launch(
        &env.init_exe,
        &spec_path,
        stdio,
        &spec.netns,
        false,
        &spec.tuning,
    )
    .and_then(|l| {
        drop(out_w);
        l.go()
    });
    let pid = started.map_err(|e| at(format!("RUN could not start: {e}")))?;
    for line in BufReader::new(std::fs::File::from(out_r)).lines() {
        let Ok(text) = line else { break };
        progress(BuildEvent::Output { text });
    }
    let code = wait(pid).map_err(|e| at(format!("RUN: {e}")))?;
    if code != 0 {
        return Err(BuildError::RunFailed {
            file: step.file.to_owned(),
            line: step.line,
            command: step.args.join(" "),
            code,
        });
    }
    let upper = tmp.0.join("upper");
    layer::write_with(store, &mut |tar| append_upper(tar, &upper)).map_err(|source| {
        BuildError::Layer {
            file: step.file.to_owned(),
            line: step.line,
            source,
        }
    })
}
