//! Containers as the engine API offers them: create (image, process plan, mounts),
//! start (through a shim), stop, kill, wait, remove, list, inspect, logs.

use super::cgroup::{DeviceAccess, Resources};
use super::container::{
    ContainerRecord, LogOptions, RecordError, StateFile, alive, read_json, rfc3339_nanos,
    same_process, status_name, write_json,
};
use super::init::{InitSpec, Mount, MountKind};
use super::limits::{check_sysctls, parse_ulimit};
use super::policy::{HealthConfig, HealthState, RestartPolicy, RestartState};
use super::shim::REPORT_FD;
use super::spec::{ProcessOptions, SecurityOptions, SpecError, plan, security};
use crate::engine::image::build::tree::{ImageTree, read_text};
use crate::engine::image::manifest::{ImageConfig, ImageManifest, Manifest};
use crate::engine::image::service::{ImageService, ImageServiceError};
use crate::engine::image::snapshot::Snapshots;
use crate::engine::network::service::{NetError, NetworkService, Request as NetRequest};
use crate::engine::volume::Volumes;
use api::container::{ContainerCreate, ContainerDetail, ContainerStatus, ContainerSummary};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

mod create;

/// What went wrong with a container request.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Image(#[from] ImageServiceError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A bad `--uidmap`/`--gidmap` (a request error: set-up failures are `Start`).
    #[error(transparent)]
    Userns(#[from] super::userns::UsernsError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("no container {0}")]
    NotFound(String),
    #[error("{what} matches several containers: {ids}")]
    Ambiguous { what: String, ids: String },
    #[error(transparent)]
    Tuning(#[from] super::tuning::TuningError),
    #[error("the name {0:?} is taken by another container")]
    NameTaken(String),
    #[error("invalid {what} {value:?}: {why}")]
    Invalid {
        what: &'static str,
        value: String,
        why: String,
    },
    #[error("container {id} is {status}; {hint}")]
    State {
        id: String,
        status: &'static str,
        hint: &'static str,
    },
    #[error("start container {id}: {why}")]
    Start { id: String, why: String },
    #[error(transparent)]
    Network(NetError),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ContainerError + use<> {
    let path = path.to_owned();
    move |source| ContainerError::Io { op, path, source }
}

/// The containers of one engine, under `<data>/containers/<id>/`.
pub struct ContainerService {
    root: PathBuf,
    images: Arc<ImageService>,
    volumes: Arc<Volumes>,
    networks: Arc<NetworkService>,
    /// The user namespace of containers that ask for none (`--userns-remap`).
    remap: Option<super::userns::UserNs>,
    /// One lock per container: start, restart and remove never interleave.
    locks: std::sync::Mutex<
        std::collections::HashMap<String, std::sync::Weak<tokio::sync::Mutex<()>>>,
    >,
}

impl ContainerService {
    /// The containers under `root`.
    pub fn open(
        root: &Path,
        images: Arc<ImageService>,
        volumes: Arc<Volumes>,
        networks: Arc<NetworkService>,
        remap: Option<super::userns::UserNs>,
    ) -> Result<ContainerService, ContainerError> {
        std::fs::create_dir_all(root).map_err(io("create", root))?;
        Ok(ContainerService {
            root: root.to_owned(),
            images,
            volumes,
            networks,
            remap,
            locks: Default::default(),
        })
    }

    /// The lock of container `id`.
    fn lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = map.get(id).and_then(std::sync::Weak::upgrade) {
            return l;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let l = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(id.to_owned(), Arc::downgrade(&l));
        l
    }

    /// The named volumes.
    pub fn volumes(&self) -> &Volumes {
        &self.volumes
    }

    /// Containers (ids) that mount volume `name`.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        self.records()
            .into_iter()
            .filter(|r| r.volumes.iter().any(|v| v == name))
            .map(|r| r.id)
            .collect()
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Every container's record, skipping directories that are not (yet) one.
    fn records(&self) -> Vec<ContainerRecord> {
        let mut out: Vec<ContainerRecord> = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| read_json(&e.path().join("config.json")).ok())
            .collect();
        out.sort_by(|a, b| b.created.cmp(&a.created));
        out
    }

    /// The ids of every container whose record reads (whatever its state); an
    /// error when the containers' directory cannot be read at all.
    pub fn ids(&self) -> Result<std::collections::BTreeSet<String>, ContainerError> {
        std::fs::read_dir(&self.root).map_err(io("read", &self.root))?;
        Ok(self.records().into_iter().map(|r| r.id).collect())
    }

    /// The id of the container `what` names: an id, a unique id prefix, or a name.
    pub fn resolve(&self, what: &str) -> Result<String, ContainerError> {
        let records = self.records();
        if let Some(r) = records.iter().find(|r| r.id == what || r.name == what) {
            return Ok(r.id.clone());
        }
        let hits: Vec<&ContainerRecord> =
            records.iter().filter(|r| r.id.starts_with(what)).collect();
        match hits.as_slice() {
            [one] if !what.is_empty() => Ok(one.id.clone()),
            [] | [_] => Err(ContainerError::NotFound(what.to_owned())),
            many => Err(ContainerError::Ambiguous {
                what: what.to_owned(),
                ids: many
                    .iter()
                    .map(|r| &r.id[..12])
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// The state of container `id`, corrected when its shim died with it.
    pub fn state(&self, id: &str) -> Result<StateFile, ContainerError> {
        let dir = self.dir(id);
        let mut s: StateFile = read_json(&dir.join("state.json"))?;
        if let ContainerStatus::Running { pid, started_at } = &s.status
            && !same_process(*pid, s.pid_start)
            && !s.shim_pid.is_some_and(alive)
        {
            s = StateFile {
                status: ContainerStatus::Exited {
                    exit_code: 255,
                    oom_killed: false,
                    started_at: started_at.clone(),
                    finished_at: rfc3339_nanos(SystemTime::now()),
                },
                shim_pid: None,
                pid_start: None,
            };
            write_json(&dir.join("state.json"), &s)?;
        }
        Ok(s)
    }

    /// Start container `id` through its shim; returns once the process runs.
    pub fn start(&self, id: &str) -> Result<(), ContainerError> {
        let lock = self.lock(id);
        let _held = lock.blocking_lock();
        self.start_locked(id)
    }

    fn start_locked(&self, id: &str) -> Result<(), ContainerError> {
        let s = self.state(id)?;
        if !matches!(s.status, ContainerStatus::Created) {
            return Err(ContainerError::State {
                id: id.to_owned(),
                status: status_name(&s.status),
                hint: "only a created container can start",
            });
        }
        let dir = self.dir(id);
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two fds that are owned right below.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io("pipe for", &dir)(std::io::Error::last_os_error()));
        }
        // SAFETY: fresh fds from pipe2.
        let (report_r, report_w) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let w = report_w.as_raw_fd();
        let mut cmd = std::process::Command::new("/proc/self/exe");
        cmd.arg("shim")
            .arg(&dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: dup2 is async-signal-safe; the report pipe becomes the shim's fd 3.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(w, REPORT_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let status = cmd.status().map_err(io("run the shim for", &dir))?;
        drop(report_w);
        let mut report = String::new();
        std::fs::File::from(report_r)
            .read_to_string(&mut report)
            .map_err(io("read the shim's report for", &dir))?;
        if report == "ok" {
            // Its names resolve from now on.
            self.networks
                .set_running(id, true)
                .map_err(ContainerError::Network)?;
            return Ok(());
        }
        let why = if report.is_empty() {
            format!("the shim ended without a report ({status})")
        } else {
            report
        };
        Err(ContainerError::Start {
            id: id.to_owned(),
            why,
        })
    }

    /// Tell the networks whether container `id` runs (its names resolve only then).
    pub fn note_running(&self, id: &str, running: bool) -> Result<(), ContainerError> {
        self.networks
            .set_running(id, running)
            .map_err(ContainerError::Network)
    }

    /// Send `signal` to the process of running container `id` (a paused one is
    /// thawed first, or the signal would wait for the thaw).
    pub fn kill(&self, id: &str, signal: i32) -> Result<(), ContainerError> {
        let state = self.state(id)?;
        match state.status {
            ContainerStatus::Running { pid, .. } => {
                if !same_process(pid, state.pid_start) {
                    return Ok(());
                }
                if self.paused(id) {
                    let _ = self.pause(id, false);
                }
                // SAFETY: kill with a pid read from the container's state.
                if unsafe { libc::kill(pid, signal) } != 0 {
                    let e = std::io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::ESRCH) {
                        return Err(io("signal the process of", &self.dir(id))(e));
                    }
                }
                Ok(())
            }
            other => Err(ContainerError::State {
                id: id.to_owned(),
                status: status_name(&other),
                hint: "only a running container can be signalled",
            }),
        }
    }

    /// Wait until container `id` has exited; its final state. The shim writes the
    /// exit and then ends, so waiting for the shim's end (a pidfd) wakes this at once.
    pub async fn wait(&self, id: &str) -> Result<ContainerStatus, ContainerError> {
        loop {
            let s = self.state(id)?;
            if matches!(s.status, ContainerStatus::Exited { .. }) {
                return Ok(s.status);
            }
            match s.shim_pid.and_then(|pid| pidfd(pid).ok()) {
                // SAFETY: the AsyncFd owns the pidfd, which stays open while it lives.
                Some(fd) => match unsafe {
                    tokio::io::unix::AsyncFd::register_with_interest(
                        fd,
                        tokio::io::Interest::READABLE,
                    )
                } {
                    // Re-read the state after the shim ends, or after a while in case
                    // the shim died without writing it.
                    Ok(fd) => {
                        let _ = tokio::time::timeout(Duration::from_secs(1), fd.readable()).await;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                },
                None => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Stop container `id`: its stop signal (SIGTERM by default), then SIGKILL after
    /// `grace` (default: its stop timeout, else 10 s). Restart policies leave a
    /// container stopped this way alone.
    pub async fn stop(
        &self,
        id: &str,
        grace: Option<Duration>,
    ) -> Result<ContainerStatus, ContainerError> {
        self.set_manually_stopped(id, true)?;
        if !matches!(self.state(id)?.status, ContainerStatus::Running { .. }) {
            return Ok(self.state(id)?.status);
        }
        let record = self.record(id)?;
        let signal = match &record.stop_signal {
            Some(s) => signal_number(s)?,
            None => libc::SIGTERM,
        };
        let grace = grace.unwrap_or(Duration::from_secs(record.stop_timeout.unwrap_or(10)));
        self.kill(id, signal)?;
        match tokio::time::timeout(grace, self.wait(id)).await {
            Ok(s) => s,
            Err(_) => {
                let _ = self.kill(id, libc::SIGKILL);
                self.wait(id).await
            }
        }
    }

    /// Remove container `id` (a running one only with `force`, which kills it).
    pub async fn remove(&self, id: &str, force: bool) -> Result<(), ContainerError> {
        let lock = self.lock(id);
        let _held = lock.lock().await;
        if let ContainerStatus::Running { .. } = self.state(id)?.status {
            if !force {
                return Err(ContainerError::State {
                    id: id.to_owned(),
                    status: "running",
                    hint: "stop it first or remove it with force",
                });
            }
            let _ = self.kill(id, libc::SIGKILL);
            self.wait(id).await?;
        }
        // The shim removes the cgroup when the process ends; one a dead shim left
        // behind goes here.
        if let Ok(cg) = super::cgroup::probe(Path::new(super::cgroup::ROOT), super::cgroup::PARENT)
        {
            let _ = cg.remove(id, Duration::ZERO);
        }
        // Its network setup: endpoints, addresses, ports, namespace (netlink, nft
        // and every DNS table: blocking work, off the runtime's few threads).
        let networks = self.networks.clone();
        let cid = id.to_owned();
        tokio::task::spawn_blocking(move || networks.release(&cid))
            .await
            .map_err(|e| ContainerError::Start {
                id: id.to_owned(),
                why: e.to_string(),
            })?
            .map_err(ContainerError::Network)?;
        // Its anonymous volumes (`-v /PATH`, the image's VOLUMEs) go with it.
        if let Ok(record) = self.record(id) {
            for v in &record.anonymous_volumes {
                let _ = self.volumes.remove(v);
            }
        }
        let dir = self.dir(id);
        tokio::task::spawn_blocking(move || {
            std::fs::remove_dir_all(&dir).map_err(io("remove", &dir))
        })
        .await
        .map_err(|e| ContainerError::Start {
            id: id.to_owned(),
            why: e.to_string(),
        })?
    }

    /// The record of container `id`.
    pub fn record(&self, id: &str) -> Result<ContainerRecord, ContainerError> {
        Ok(read_json(&self.dir(id).join("config.json"))?)
    }

    /// What restart policies know of container `id`.
    pub fn restart_state(&self, id: &str) -> RestartState {
        read_json(&self.dir(id).join("restart.json")).unwrap_or_default()
    }

    /// Keep `state` for container `id`.
    pub fn set_restart_state(&self, id: &str, state: &RestartState) -> Result<(), ContainerError> {
        Ok(write_json(&self.dir(id).join("restart.json"), state)?)
    }

    /// Mark container `id` as stopped (or started) through the API.
    pub fn set_manually_stopped(&self, id: &str, stopped: bool) -> Result<(), ContainerError> {
        let mut s = self.restart_state(id);
        if s.manually_stopped != stopped {
            s.manually_stopped = stopped;
            self.set_restart_state(id, &s)?;
        }
        Ok(())
    }

    /// The health of container `id`, when it has a health check.
    pub fn health(&self, id: &str) -> Option<HealthState> {
        read_json(&self.dir(id).join("health.json")).ok()
    }

    /// Keep the health of container `id`.
    pub fn set_health(&self, id: &str, health: &HealthState) -> Result<(), ContainerError> {
        Ok(write_json(&self.dir(id).join("health.json"), health)?)
    }

    /// Record that created container `id` could not start (exit code 127), so
    /// policies and `--rm` see an exit.
    pub fn fail_start(&self, id: &str) -> Result<(), ContainerError> {
        let now = rfc3339_nanos(SystemTime::now());
        super::container::set_state(
            &self.dir(id),
            id,
            StateFile {
                status: ContainerStatus::Exited {
                    exit_code: 127,
                    oom_killed: false,
                    started_at: now.clone(),
                    finished_at: now,
                },
                shim_pid: None,
                pid_start: None,
            },
        )?;
        Ok(())
    }

    /// Start exited container `id` again (a restart policy's doing).
    pub fn restart(&self, id: &str) -> Result<(), ContainerError> {
        let lock = self.lock(id);
        let _held = lock.blocking_lock();
        // A stop or remove that came first wins.
        if self.restart_state(id).manually_stopped {
            return Ok(());
        }
        let dir = self.dir(id);
        super::container::set_state(
            &dir,
            id,
            StateFile {
                status: ContainerStatus::Created,
                shim_pid: None,
                pid_start: None,
            },
        )?;
        let _ = std::fs::remove_file(dir.join("health.json"));
        self.start_locked(id)
    }

    /// Summaries (running ones only unless `all`), newest first.
    pub fn list(&self, all: bool) -> Result<Vec<ContainerSummary>, ContainerError> {
        let mut out = Vec::new();
        for r in self.records() {
            let Ok(s) = self.state(&r.id) else { continue };
            if all || matches!(s.status, ContainerStatus::Running { .. }) {
                out.push(summary(&r, s.status));
            }
        }
        Ok(out)
    }

    /// Everything about container `id`.
    pub fn inspect(&self, id: &str) -> Result<ContainerDetail, ContainerError> {
        let dir = self.dir(id);
        let r: ContainerRecord = read_json(&dir.join("config.json"))?;
        let s = self.state(id)?;
        let p = &r.init.process;
        let (network_mode, networks, ports) = self.networks.of_container(id);
        Ok(ContainerDetail {
            summary: summary(&r, s.status),
            image_digest: r.image_digest.clone(),
            hostname: r.init.hostname.clone(),
            env: p.env.clone(),
            working_dir: p.cwd.clone(),
            user: format!("{}:{}", p.ids.uid, p.ids.gid),
            read_only: r.init.readonly_rootfs,
            labels: r.labels.clone(),
            dir: dir.display().to_string(),
            capabilities: r
                .init
                .security
                .capabilities
                .iter()
                .filter_map(|c| serde_json::to_value(c).ok()?.as_str().map(str::to_owned))
                .collect(),
            privileged: r.init.security.privileged,
            paused: self.paused(id),
            restart_policy: match r.restart {
                RestartPolicy::No => "no".into(),
                RestartPolicy::OnFailure { max: None } => "on-failure".into(),
                RestartPolicy::OnFailure { max: Some(n) } => format!("on-failure:{n}"),
                RestartPolicy::Always => "always".into(),
                RestartPolicy::UnlessStopped => "unless-stopped".into(),
            },
            restart_count: self.restart_state(id).count,
            health: r.health.as_ref().map(|_| {
                let h = self.health(id).unwrap_or_default();
                serde_json::to_value(h.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            }),
            health_log: self
                .health(id)
                .map(|h| {
                    h.log
                        .into_iter()
                        .map(|p| (p.start, p.exit_code, p.output))
                        .collect()
                })
                .unwrap_or_default(),
            network_mode,
            networks,
            ports,
        })
    }

    /// Where container `id` keeps its files.
    pub fn path(&self, id: &str) -> PathBuf {
        self.dir(id)
    }

    /// Freeze (or thaw) the processes of running container `id`.
    pub fn pause(&self, id: &str, paused: bool) -> Result<(), ContainerError> {
        if !matches!(self.state(id)?.status, ContainerStatus::Running { .. }) {
            return Err(ContainerError::State {
                id: id.to_owned(),
                status: "not running",
                hint: "only a running container can be paused or resumed",
            });
        }
        let cg = super::cgroup::probe(Path::new(super::cgroup::ROOT), super::cgroup::PARENT)
            .map_err(|e| ContainerError::Start {
                id: id.to_owned(),
                why: e.to_string(),
            })?;
        cg.freeze(id, paused).map_err(|e| ContainerError::Start {
            id: id.to_owned(),
            why: e.to_string(),
        })?;
        let marker = self.dir(id).join("paused");
        if paused {
            std::fs::write(&marker, b"").map_err(io("write", &marker))
        } else {
            match std::fs::remove_file(&marker) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", &marker)(e)),
                _ => Ok(()),
            }
        }
    }

    /// Whether container `id` is paused.
    pub fn paused(&self, id: &str) -> bool {
        matches!(
            self.state(id).map(|s| s.status),
            Ok(ContainerStatus::Running { .. })
        ) && self.dir(id).join("paused").exists()
    }

    /// What running container `id` uses now.
    pub fn stats(&self, id: &str) -> Result<api::container::ContainerStats, ContainerError> {
        if !matches!(self.state(id)?.status, ContainerStatus::Running { .. }) {
            return Err(ContainerError::State {
                id: id.to_owned(),
                status: "not running",
                hint: "stats are for running containers",
            });
        }
        let record = self.record(id)?;
        let fail = |e: super::cgroup::CgroupError| ContainerError::Start {
            id: id.to_owned(),
            why: e.to_string(),
        };
        let cg = super::cgroup::probe(Path::new(super::cgroup::ROOT), super::cgroup::PARENT)
            .map_err(fail)?;
        let st = cg.stats(id).map_err(fail)?;
        Ok(api::container::ContainerStats {
            id: id.to_owned(),
            name: record.name,
            memory_usage: st.memory_usage,
            memory_limit: record.resources.memory,
            cpu_usage_ns: st.cpu_usage_ns,
            pids: st.pids_current,
            read_at: rfc3339_nanos(SystemTime::now()),
        })
    }

    /// The images containers use (kept by prune).
    pub fn images_in_use(&self) -> Vec<crate::engine::image::digest::Digest> {
        self.records()
            .iter()
            .filter_map(|r| r.image_digest.parse().ok())
            .collect()
    }
}

/// A signal by name (`TERM`, `SIGKILL`) or number.
pub fn signal_number(text: &str) -> Result<i32, ContainerError> {
    if let Ok(n) = text.parse::<i32>()
        && (1..=64).contains(&n)
    {
        return Ok(n);
    }
    let name = text.trim_start_matches("SIG").to_ascii_uppercase();
    Ok(match name.as_str() {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        "STOP" => libc::SIGSTOP,
        "CONT" => libc::SIGCONT,
        "WINCH" => libc::SIGWINCH,
        "PWR" => libc::SIGPWR,
        _ => {
            return Err(ContainerError::Invalid {
                what: "signal",
                value: text.to_owned(),
                why: "use a name like TERM or a number".into(),
            });
        }
    })
}
/// A pidfd of process `pid` (readable once it ends).
fn pidfd(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open has no wrapper in libc; the result is checked.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd from pidfd_open.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn summary(r: &ContainerRecord, status: ContainerStatus) -> ContainerSummary {
    ContainerSummary {
        id: r.id.clone(),
        name: r.name.clone(),
        image: r.image.clone(),
        command: r.init.process.args.clone(),
        created: r.created.clone(),
        status,
    }
}
