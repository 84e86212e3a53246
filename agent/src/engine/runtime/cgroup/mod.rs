//! Control groups: a container's resource limits, accounting, OOM kills and freezing.
//!
//! One trait, [`Cgroups`], two implementations chosen by [`probe`]: [`v1::V1`] (one
//! hierarchy per controller, including the hybrid layout with an empty cgroup2 at
//! `unified/`) and [`v2::V2`] (the unified hierarchy, controllers enabled through
//! `cgroup.subtree_control`). The root (`/sys/fs/cgroup`) is a parameter, so the same
//! code is tested on a temp dir shaped like cgroupfs.
//!
//! Per controller, a pure module computes what to write as data ([`Setting`]s) and
//! parses what it reads: [`memory`], [`cpu`], [`pids`], [`devices`], [`freezer`].
//! [`fs`] is the thin reader/writer whose errors name the file, value and cgroup.
//!
//! A container's cgroup is `<root>/<controller>/<parent>/<id>` on v1 and
//! `<root>/<parent>/<id>` on v2, `parent` being `orch` outside tests.

pub mod cpu;
pub mod devices;
pub mod freezer;
pub mod fs;
pub mod memory;
pub mod pids;
pub mod v1;
pub mod v2;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The parent of every container's cgroup.
pub const PARENT: &str = "orch";

/// Where the host mounts its cgroups.
pub const ROOT: &str = "/sys/fs/cgroup";

/// A resource controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Controller {
    Memory,
    Cpu,
    Cpuacct,
    Pids,
    Freezer,
    Devices,
}

impl Controller {
    /// Every controller a container uses on v1.
    pub const V1: [Controller; 6] = [
        Controller::Memory,
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Pids,
        Controller::Freezer,
        Controller::Devices,
    ];

    /// The kernel's name.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Pids => "pids",
            Controller::Freezer => "freezer",
            Controller::Devices => "devices",
        }
    }
}

/// One value to write into one file of a controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub controller: Controller,
    pub file: &'static str,
    pub value: String,
    /// Skipped when the kernel lacks the file (swap accounting off, for instance).
    pub optional: bool,
}

impl Setting {
    fn new(controller: Controller, file: &'static str, value: impl ToString) -> Setting {
        Setting {
            controller,
            file,
            value: value.to_string(),
            optional: false,
        }
    }
}

/// Which device nodes a container may use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceAccess {
    /// Docker's list: create any node, use only the standard ones.
    #[default]
    Default,
    /// Every device (`privileged`).
    All,
}

/// A container's limits, Docker's units and meanings (`docker run` flags).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    /// `--memory`, bytes.
    pub memory: Option<u64>,
    /// `--memory-reservation`, bytes (a soft limit).
    pub memory_reservation: Option<u64>,
    /// `--memory-swap`: memory plus swap in bytes, `-1` unlimited; twice `memory` when
    /// unset (Docker's default).
    pub memory_swap: Option<i64>,
    /// `--cpus`: CPU time as a number of CPUs (a CFS quota over a 100 ms period).
    pub cpus: Option<f64>,
    /// `--cpu-shares`: relative weight, 1024 being the default.
    pub cpu_shares: Option<u64>,
    /// `--pids-limit`; zero or negative is unlimited.
    pub pids_limit: Option<i64>,
    pub devices: DeviceAccess,
    /// Device rules for nodes passed in (`--device`), v1 syntax: `c 10:229 rwm`.
    pub device_rules: Vec<String>,
}

impl Resources {
    /// Check the values before anything is created (the same checks the writers make).
    pub fn validate(&self) -> Result<(), ResourceError> {
        memory::v1(self)?;
        cpu::v1(self)?;
        Ok(())
    }
}

/// Resource values the kernel would refuse or Docker rejects.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResourceError {
    #[error("memory limit {0} bytes is below the minimum of 6 MiB")]
    MemoryTooSmall(u64),
    #[error("memory reservation {reservation} must not exceed the memory limit {limit}")]
    ReservationAboveLimit { reservation: u64, limit: u64 },
    #[error("memory+swap {swap} must not be below the memory limit {limit}")]
    SwapBelowMemory { swap: i64, limit: u64 },
    #[error("memory+swap {0} needs a memory limit too")]
    SwapWithoutMemory(i64),
    #[error("cpus {0} must be a number of at least 0.01")]
    Cpus(f64),
}

/// What a cgroup has used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Bytes charged now.
    pub memory_usage: u64,
    /// How often the limit was hit (v1 `failcnt`, v2 `memory.events` max).
    pub memory_limit_hits: u64,
    /// Processes killed by the kernel's OOM killer inside this cgroup.
    pub oom_kills: u64,
    /// CPU time consumed, nanoseconds.
    pub cpu_usage_ns: u64,
    pub pids_current: u64,
    /// Forks refused by the pids limit.
    pub pids_limit_hits: u64,
}

/// How a container's process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    /// The exit code, or 128 + the signal.
    pub code: i32,
    /// The OOM killer killed a process of the container (Docker's `OOMKilled`).
    pub oom_killed: bool,
}

impl Exit {
    /// From the exit code and the cgroup's counters after the exit.
    pub fn new(code: i32, stats: &Stats) -> Exit {
        Exit {
            code,
            oom_killed: stats.oom_kills > 0,
        }
    }
}

/// Which cgroup version a host runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// A failed cgroup operation: what, on which file of which cgroup, why.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error(
        "no cgroup file system at {root}: neither cgroup.controllers (v2) nor a {controller} hierarchy (v1)"
    )]
    Probe {
        root: PathBuf,
        controller: &'static str,
    },
    #[error("controller {controller} is not available to cgroup {cgroup} (cgroup v2 at {root})")]
    Unavailable {
        controller: &'static str,
        cgroup: String,
        root: PathBuf,
    },
    #[error("create cgroup {cgroup} at {path}: {source}")]
    Create {
        cgroup: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("write {value} to {file} of cgroup {cgroup}: {source}")]
    Write {
        value: String,
        file: &'static str,
        cgroup: String,
        source: std::io::Error,
    },
    #[error("read {file} of cgroup {cgroup}: {source}")]
    Read {
        file: &'static str,
        cgroup: String,
        source: std::io::Error,
    },
    #[error("read {file} of cgroup {cgroup}: unexpected content {text:?}")]
    Parse {
        file: &'static str,
        cgroup: String,
        text: String,
    },
    #[error("remove cgroup {cgroup}: still busy with processes {pids:?} after {waited:?}")]
    Busy {
        cgroup: String,
        pids: Vec<i32>,
        waited: Duration,
    },
    #[error("remove cgroup {cgroup} at {path}: {source}")]
    Remove {
        cgroup: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{op} cgroup {cgroup}: still {state} after {waited:?}")]
    Freeze {
        op: &'static str,
        cgroup: String,
        state: String,
        waited: Duration,
    },
    #[error("resources of cgroup {cgroup}: {source}")]
    Resources {
        cgroup: String,
        source: ResourceError,
    },
}

/// A host's cgroups, addressed by container id under one parent.
pub trait Cgroups: Send + Sync {
    fn version(&self) -> Version;
    /// The cgroup's name in messages (`orch/web.1`).
    fn name(&self, id: &str) -> String;
    /// Create the cgroup of `id` with `resources` (nothing left behind on failure).
    fn create(&self, id: &str, resources: &Resources) -> Result<(), CgroupError>;
    /// Move process `pid` into it.
    fn add(&self, id: &str, pid: libc::pid_t) -> Result<(), CgroupError>;
    /// Its counters.
    fn stats(&self, id: &str) -> Result<Stats, CgroupError>;
    /// The processes in it (none when it is gone).
    fn procs(&self, id: &str) -> Result<Vec<libc::pid_t>, CgroupError>;
    /// Freeze (`true`, for pause) or thaw it, returning once the kernel says so.
    fn freeze(&self, id: &str, frozen: bool) -> Result<(), CgroupError>;
    /// Remove it once empty, waiting up to `wait` for its processes to go; `Busy` names
    /// those left. Removing a cgroup that does not exist is not an error.
    fn remove(&self, id: &str, wait: Duration) -> Result<(), CgroupError>;
}

/// Choose v2 when `root` is a unified hierarchy (has `cgroup.controllers`), else v1
/// with a directory per controller (names split at commas, as in `cpu,cpuacct`).
pub fn probe(root: &Path, parent: &str) -> Result<Box<dyn Cgroups>, CgroupError> {
    if root.join("cgroup.controllers").is_file() {
        return Ok(Box::new(v2::V2::new(root, parent)));
    }
    Ok(Box::new(v1::V1::probe(root, parent)?))
}

/// The cgroup's name in messages.
fn display_name(parent: &str, id: &str) -> String {
    format!("{parent}/{id}")
}
