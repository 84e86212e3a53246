//! A container on disk: `config.json` (what the engine decided at create, never
//! changed), `init.json` (the spec `orch init` reads) and `state.json` (where it is in
//! its life: written by the engine at create, by the shim at start and exit). State
//! changes are checked in one function.

use super::cgroup::Resources;
use super::init::InitSpec;
use super::policy::{HealthConfig, RestartPolicy};
use api::container::ContainerStatus;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Log rotation of one container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogOptions {
    /// Rotate the log when it grows past this many bytes.
    pub max_size: u64,
    /// Keep this many files (the current one included).
    pub max_files: u32,
}

impl Default for LogOptions {
    fn default() -> LogOptions {
        LogOptions {
            max_size: 10 << 20,
            max_files: 3,
        }
    }
}

/// What the engine decided when it created the container.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    /// The image as the user named it.
    pub image: String,
    /// Its manifest digest.
    pub image_digest: String,
    /// RFC 3339.
    pub created: String,
    pub init: InitSpec,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub auto_remove: bool,
    #[serde(default)]
    pub log: LogOptions,
    #[serde(default)]
    pub restart: RestartPolicy,
    /// The signal `stop` sends first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthConfig>,
    /// Named volumes it mounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// Limits, applied through its cgroup.
    #[serde(default)]
    pub resources: Resources,
    /// Keep stdin open for attached clients.
    #[serde(default)]
    pub open_stdin: bool,
    /// Volumes made for the image's VOLUMEs (removed with the container).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anonymous_volumes: Vec<String>,
    /// Supplementary groups asked for (`--group-add`), which an exec as another user
    /// gets too, as in Docker.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
}

/// `state.json`: the status plus the shim that watches the process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateFile {
    #[serde(flatten)]
    pub status: ContainerStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shim_pid: Option<i32>,
    /// When the container's process started (clock ticks after boot, field 22 of
    /// /proc/PID/stat): a pid reused by another process after a reboot or crash is
    /// not mistaken for the container's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start: Option<u64>,
}

/// Why a container's files could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("container {id}: cannot go from {from} to {to}")]
    Transition {
        id: String,
        from: &'static str,
        to: &'static str,
    },
}

/// The name of a status, for messages.
pub fn status_name(s: &ContainerStatus) -> &'static str {
    match s {
        ContainerStatus::Created => "created",
        ContainerStatus::Running { .. } => "running",
        ContainerStatus::Exited { .. } => "exited",
    }
}

/// Whether a container may go from `from` to `to`: created -> running -> exited,
/// created -> exited (a start that failed), and exited -> created (a restart).
pub fn check_transition(
    id: &str,
    from: &ContainerStatus,
    to: &ContainerStatus,
) -> Result<(), RecordError> {
    use ContainerStatus::*;
    match (from, to) {
        (Created, Running { .. })
        | (Created, Exited { .. })
        | (Running { .. }, Exited { .. })
        | (Exited { .. }, Created) => Ok(()),
        _ => Err(RecordError::Transition {
            id: id.to_owned(),
            from: status_name(from),
            to: status_name(to),
        }),
    }
}

/// Read a JSON file of a container.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, RecordError> {
    let bytes = std::fs::read(path).map_err(|source| RecordError::Io {
        op: "read",
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| RecordError::Corrupt {
        path: path.to_owned(),
        source,
    })
}

/// Write a JSON file of a container atomically (temp file, fsync, rename).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), RecordError> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    let err = |op, source| RecordError::Io {
        op,
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::File::create(&tmp).map_err(|e| err("create", e))?;
    f.write_all(&serde_json::to_vec_pretty(value).unwrap_or_default())
        .map_err(|e| err("write", e))?;
    f.sync_all().map_err(|e| err("sync", e))?;
    std::fs::rename(&tmp, path).map_err(|e| err("rename", e))
}

/// Move the container in `dir` to `to`, checking the transition.
pub fn set_state(dir: &Path, id: &str, to: StateFile) -> Result<(), RecordError> {
    let path = dir.join("state.json");
    let from: StateFile = read_json(&path)?;
    check_transition(id, &from.status, &to.status)?;
    write_json(&path, &to)
}

/// `time` as RFC 3339 with nanoseconds (`2026-11-23T10:00:00.123456789Z`).
pub fn rfc3339_nanos(time: SystemTime) -> String {
    let d = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = crate::engine::image::build::cache::rfc3339(d.as_secs());
    format!("{}.{:09}Z", secs.trim_end_matches('Z'), d.subsec_nanos())
}

/// The time an RFC 3339 string names (`2026-11-23T10:00:00.5Z`, `...+02:00`).
pub fn parse_time(text: &str) -> Option<SystemTime> {
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = text.get(19..)?;
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        nanos = format!("{:0<9}", &frac[..digits]).get(..9)?.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" | "" => 0,
        tz => {
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            sign * (tz.get(1..3)?.parse::<i64>().ok()? * 3600
                + tz.get(4..6)?.parse::<i64>().ok()? * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + (153 * m + 2) / 5 + d - 1;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days * 86_400 + h * 3600 + mi * 60 + s - offset).ok()?;
    Some(SystemTime::UNIX_EPOCH + std::time::Duration::new(secs, nanos))
}

/// When process `pid` started (clock ticks after boot), if it exists.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields after its `)`.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid` is still the process that started at `start` (when known).
pub fn same_process(pid: i32, start: Option<u64>) -> bool {
    alive(pid) && start.is_none_or(|s| start_time(pid) == Some(s))
}

/// Whether process `pid` exists.
pub fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        let running = ContainerStatus::Running {
            pid: 1,
            started_at: String::new(),
        };
        let exited = ContainerStatus::Exited {
            exit_code: 0,
            oom_killed: false,
            started_at: String::new(),
            finished_at: String::new(),
        };
        let c = ContainerStatus::Created;
        assert!(check_transition("x", &c, &running).is_ok());
        assert!(check_transition("x", &running, &exited).is_ok());
        assert!(check_transition("x", &c, &exited).is_ok());
        let e = check_transition("x", &exited, &running)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "container x: cannot go from exited to running");
        assert!(check_transition("x", &exited, &c).is_ok(), "a restart");
        assert!(check_transition("x", &running, &c).is_err());
    }

    #[test]
    fn nanosecond_times() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::new(1_704_164_645, 5);
        assert_eq!(rfc3339_nanos(t), "2024-01-02T03:04:05.000000005Z");
        assert_eq!(parse_time(&rfc3339_nanos(t)), Some(t));
        assert_eq!(parse_time("nonsense"), None);
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_704_164_645);
        assert_eq!(parse_time("2024-01-02T05:04:05+02:00"), Some(t));
    }
}
