//! A task's secrets and configs as files: each value the task's assignment set
//! carries is written into a tmpfs of the task's own (`<root>/<task id>`, mode 0700,
//! never on disk), with the uid, gid and mode its reference asks for (default root
//! and 0444), and bind-mounted read-only into the container: secrets at
//! `/run/secrets/<target>` (an absolute target as it is), configs at their target.
//! Removing the task unmounts its tmpfs, which takes the values with it.
//!
//! [`of_task`] is pure (which files, from what); [`write`] and [`remove`] touch the
//! node.

use super::ExecutorError;
use api::cluster::Task;
use api::service::FileReference;
use api::session::Assignments;
use base64::Engine as _;
use std::collections::BTreeMap;
use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where secrets are mounted when their target is not absolute.
pub const SECRETS_DIR: &str = "/run/secrets";
/// The mode of a file whose reference gives none.
const DEFAULT_MODE: u32 = 0o444;

/// The secret and config values of an assignment set, decoded, by id (no `Debug`:
/// values stay out of logs).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Values {
    pub secrets: BTreeMap<String, Vec<u8>>,
    pub configs: BTreeMap<String, Vec<u8>>,
}

impl Values {
    /// The values `set` carries (one that is not base64 is left out: its tasks are
    /// refused naming it).
    pub fn of(set: &Assignments) -> Values {
        let decode = |files: &[api::secret::FileData]| {
            files
                .iter()
                .filter_map(|f| {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(&f.data)
                        .ok()?;
                    Some((f.id.clone(), bytes))
                })
                .collect()
        };
        Values {
            secrets: decode(&set.secrets),
            configs: decode(&set.configs),
        }
    }
}

/// One file a task mounts.
#[derive(Clone, PartialEq, Eq)]
pub struct TaskFile {
    /// The path in the container.
    pub target: String,
    pub data: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl std::fmt::Debug for TaskFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskFile")
            .field("target", &self.target)
            .field("size", &self.data.len())
            .field("uid", &self.uid)
            .field("gid", &self.gid)
            .field("mode", &format_args!("{:o}", self.mode))
            .finish()
    }
}

/// The files of `task`, from `values`; refused naming the first secret or config
/// that is missing, or a reference field the node cannot honour.
pub fn of_task(task: &Task, values: &Values) -> Result<Vec<TaskFile>, ExecutorError> {
    let mut files = Vec::new();
    for (i, r) in task.spec.secrets.iter().enumerate() {
        let field = format!("secrets[{i}]");
        let data = values
            .secrets
            .get(&r.source)
            .ok_or_else(|| ExecutorError::MissingFile {
                kind: "secret",
                id: r.source.clone(),
            })?;
        let target = r.target.as_deref().unwrap_or(&r.source);
        let target = if target.starts_with('/') {
            target.to_owned()
        } else {
            format!("{SECRETS_DIR}/{target}")
        };
        files.push(file(&field, r, target, data)?);
    }
    for (i, r) in task.spec.configs.iter().enumerate() {
        let field = format!("configs[{i}]");
        let data = values
            .configs
            .get(&r.source)
            .ok_or_else(|| ExecutorError::MissingFile {
                kind: "config",
                id: r.source.clone(),
            })?;
        let target = r.target.clone().unwrap_or_else(|| format!("/{}", r.source));
        files.push(file(&field, r, target, data)?);
    }
    Ok(files)
}

fn file(
    field: &str,
    r: &FileReference,
    target: String,
    data: &[u8],
) -> Result<TaskFile, ExecutorError> {
    let id = |what: &str, value: &Option<String>| match value.as_deref() {
        None | Some("") => Ok(0),
        Some(v) => v.parse::<u32>().map_err(|_| {
            ExecutorError::unsupported(
                format!("{field}.{what}"),
                format!("{v:?} is not a numeric id (names are not looked up in the image)"),
            )
        }),
    };
    let bad_target = !target.starts_with('/')
        || target.contains(':')
        || target.split('/').any(|part| part == "..");
    if bad_target {
        return Err(ExecutorError::unsupported(
            format!("{field}.target"),
            format!("{target:?} must be an absolute path without `..` or `:`"),
        ));
    }
    Ok(TaskFile {
        target,
        data: data.to_vec(),
        uid: id("uid", &r.uid)?,
        gid: id("gid", &r.gid)?,
        mode: r.mode.map_or(DEFAULT_MODE, |m| m.0 & 0o7777),
    })
}

/// The directory of task `task`'s files under `root`.
pub fn task_dir(root: &Path, task: &str) -> PathBuf {
    root.join(task)
}

/// Writes `files` into a new tmpfs at `dir` and answers the engine's read-only binds
/// (`HOST:TARGET:ro`). Nothing is mounted for a task without files.
pub fn write(dir: &Path, files: &[TaskFile]) -> Result<Vec<String>, ExecutorError> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let failed = |op: &'static str, path: &Path, source: std::io::Error| ExecutorError::TaskFiles {
        op,
        path: path.to_owned(),
        source,
    };
    // A leftover of an earlier run of the task (the agent restarted) goes first.
    remove(dir).map_err(|e| failed("clear", dir, e))?;
    std::fs::create_dir_all(dir).map_err(|e| failed("create", dir, e))?;
    let size: usize = files.iter().map(|f| f.data.len() + 4096).sum::<usize>() + 4096;
    mount_tmpfs(dir, size).map_err(|e| failed("mount a tmpfs on", dir, e))?;
    let mut binds = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let path = dir.join(i.to_string());
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| failed("create", &path, e))?;
        out.write_all(&f.data)
            .map_err(|e| failed("write", &path, e))?;
        std::os::unix::fs::chown(&path, Some(f.uid), Some(f.gid))
            .map_err(|e| failed("chown", &path, e))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(f.mode))
            .map_err(|e| failed("chmod", &path, e))?;
        binds.push(format!("{}:{}:ro", path.display(), f.target));
    }
    Ok(binds)
}

fn mount_tmpfs(dir: &Path, size: usize) -> std::io::Result<()> {
    let target = CString::new(dir.as_os_str().as_bytes())?;
    let options = CString::new(format!("mode=0700,size={size}"))?;
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    // SAFETY: the strings are NUL-terminated and outlive the call.
    let rc = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            flags,
            options.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Unmounts and removes the task directory `dir` (nothing to do when it is gone).
pub fn remove(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let target = CString::new(dir.as_os_str().as_bytes())?;
    // Detached: a container still holding a bind of a file keeps its own copy of the
    // mount until it goes.
    // SAFETY: the string is NUL-terminated and outlives the call.
    let rc = unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        // Not a mount point: a directory left before the tmpfs was mounted.
        if e.raw_os_error() != Some(libc::EINVAL) {
            return Err(e);
        }
    }
    std::fs::remove_dir_all(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::ServiceSpec;
    use api::units::FileMode;

    fn task() -> Task {
        let mut spec = ServiceSpec::default();
        spec.secrets.push(FileReference {
            source: "shop_db".into(),
            target: Some("db_password".into()),
            ..FileReference::default()
        });
        spec.configs.push(FileReference {
            source: "shop_conf".into(),
            target: Some("/etc/app.conf".into()),
            uid: Some("100".into()),
            mode: Some(FileMode(0o440)),
            ..FileReference::default()
        });
        Task {
            spec,
            ..Task::default()
        }
    }

    #[test]
    fn secrets_go_under_run_secrets_and_configs_at_their_target() {
        let values = Values {
            secrets: BTreeMap::from([("shop_db".into(), b"pw".to_vec())]),
            configs: BTreeMap::from([("shop_conf".into(), b"conf".to_vec())]),
        };
        let files = of_task(&task(), &values).unwrap();
        assert_eq!(files[0].target, "/run/secrets/db_password");
        assert_eq!((files[0].uid, files[0].gid, files[0].mode), (0, 0, 0o444));
        assert_eq!(files[1].target, "/etc/app.conf");
        assert_eq!((files[1].uid, files[1].mode), (100, 0o440));
        assert!(
            !format!("{files:?}").contains("pw"),
            "values stay out of logs"
        );
    }

    #[test]
    fn files_are_written_on_a_tmpfs_of_their_own_and_removed_with_it() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIP: mounting a tmpfs needs root");
            return;
        }
        let root = std::env::temp_dir().join(format!("orch-task-files-{}", std::process::id()));
        let dir = task_dir(&root, "t1");
        let files = vec![TaskFile {
            target: "/run/secrets/db".into(),
            data: b"pw".to_vec(),
            uid: 100,
            gid: 101,
            mode: 0o440,
        }];
        let binds = write(&dir, &files).unwrap();
        assert_eq!(binds, [format!("{}/0:/run/secrets/db:ro", dir.display())]);
        let path = dir.join("0");
        assert_eq!(std::fs::read(&path).unwrap(), b"pw");
        let meta = std::fs::metadata(&path).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o7777),
            (100, 101, 0o440)
        );
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let mounted = mountinfo
            .lines()
            .any(|l| l.contains(&format!(" {} ", dir.display())) && l.contains(" - tmpfs "));
        assert!(mounted, "{} is a tmpfs", dir.display());
        // Written again (an agent that restarted): the old tmpfs goes first.
        write(&dir, &files).unwrap();
        remove(&dir).unwrap();
        assert!(!dir.exists());
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mountinfo.contains(&dir.display().to_string()));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_missing_secret_is_named() {
        let err = of_task(&task(), &Values::default()).unwrap_err();
        assert_eq!(err.to_string(), "secret shop_db does not exist");
    }
}
