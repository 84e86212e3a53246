//! The logs of task containers that are gone. A task's container is removed when the
//! task is done with (it ended, or it was stopped), but its output is what a user
//! reads to learn why a task failed or what a one-shot printed — `docker service
//! logs` shows it for the tasks in a service's history. So before a runner removes a
//! container that ran, it keeps the container's log here, one file per task
//! (`ROOT/TASK.ndjson`, the engine's own line format), and the log readers fall back
//! to it for a task whose container no longer exists.
//!
//! Bounded: the last [`MAX_BYTES`] of each log, and the [`MAX_FILES`] most recent
//! tasks on the node (the oldest files go first).

use api::client::EngineClient;
use api::container::LogLine;
use std::collections::VecDeque;
use std::fs;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// The most bytes of one task's log that are kept (its last ones).
pub const MAX_BYTES: usize = 1 << 20;
/// The most task logs a node keeps.
pub const MAX_FILES: usize = 512;

/// Kept logs of the tasks of this node, under one directory.
#[derive(Clone, Debug)]
pub struct LogArchive {
    root: PathBuf,
}

impl LogArchive {
    /// The archive under `root` (made when the first log is kept).
    pub fn new(root: PathBuf) -> LogArchive {
        LogArchive { root }
    }

    fn path(&self, task: &str) -> Option<PathBuf> {
        // Task ids are the manager's; one that could leave the directory is not a
        // file name here.
        let plain = !task.is_empty() && task.bytes().all(|b| b.is_ascii_alphanumeric());
        plain.then(|| self.root.join(format!("{task}.ndjson")))
    }

    /// Keep the log of `container`, the container of `task`, as the engine has it
    /// now. A container the engine does not know has nothing to keep.
    pub async fn keep(
        &self,
        engine: &EngineClient,
        container: &str,
        task: &str,
    ) -> Result<(), String> {
        let Some(path) = self.path(task) else {
            return Err(format!("task id {task:?} is not a file name"));
        };
        let mut events = match engine.logs(container, false, None).await {
            Ok(events) => events,
            Err(e) if e.code() == Some(api::error::ErrorCode::NotFound) => return Ok(()),
            Err(e) => return Err(format!("read the logs of container {container}: {e}")),
        };
        let mut lines: VecDeque<Vec<u8>> = VecDeque::new();
        let mut bytes = 0;
        while let Some(line) = events.next().await {
            let line = line.map_err(|e| format!("read the logs of container {container}: {e}"))?;
            let mut text = serde_json::to_vec(&line).map_err(|e| e.to_string())?;
            text.push(b'\n');
            bytes += text.len();
            lines.push_back(text);
            while bytes > MAX_BYTES {
                match lines.pop_front() {
                    Some(old) => bytes -= old.len(),
                    None => break,
                }
            }
        }
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || write(&root, &path, &lines))
            .await
            .map_err(|e| e.to_string())?
    }

    /// The kept log of `task` (its last `tail` lines), if there is one.
    pub fn read(&self, task: &str, tail: Option<usize>) -> Option<Vec<LogLine>> {
        let file = fs::File::open(self.path(task)?).ok()?;
        let mut lines: VecDeque<LogLine> = VecDeque::new();
        for line in std::io::BufReader::new(file).lines() {
            let Ok(line) = line else { break };
            let Ok(parsed) = serde_json::from_str::<LogLine>(&line) else {
                continue;
            };
            lines.push_back(parsed);
            if tail.is_some_and(|n| lines.len() > n) {
                lines.pop_front();
            }
        }
        Some(lines.into())
    }
}

/// Write `lines` to `path` whole (a temporary file renamed over it), then drop the
/// oldest files beyond [`MAX_FILES`].
fn write(root: &Path, path: &Path, lines: &VecDeque<Vec<u8>>) -> Result<(), String> {
    let fail = |what: &str, p: &Path| {
        let p = p.display().to_string();
        let what = what.to_owned();
        move |e: std::io::Error| format!("{what} {p}: {e}")
    };
    fs::create_dir_all(root).map_err(fail("create", root))?;
    let tmp = path.with_extension("tmp");
    let mut file = fs::File::create(&tmp).map_err(fail("create", &tmp))?;
    for line in lines {
        file.write_all(line).map_err(fail("write", &tmp))?;
    }
    drop(file);
    fs::rename(&tmp, path).map_err(fail("rename", &tmp))?;
    prune(root, MAX_FILES);
    Ok(())
}

/// Remove the oldest kept logs (by modification time) beyond `keep`.
fn prune(root: &Path, keep: usize) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "ndjson"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if files.len() <= keep {
        return;
    }
    files.sort();
    for (_, path) in &files[..files.len() - keep] {
        let _ = fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: usize) -> LogLine {
        LogLine {
            time: format!("2026-11-23T10:00:{:02}Z", n % 60),
            stream: "stdout".into(),
            log: format!("line {n}\n"),
        }
    }

    /// A scratch directory, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("orch-archive-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn archive_with(task: &str, lines: &[LogLine]) -> (Scratch, LogArchive) {
        let dir = Scratch::new(task);
        let archive = LogArchive::new(dir.path().join("logs"));
        let encoded: VecDeque<Vec<u8>> = lines
            .iter()
            .map(|l| {
                let mut v = serde_json::to_vec(l).unwrap();
                v.push(b'\n');
                v
            })
            .collect();
        write(&archive.root, &archive.path(task).unwrap(), &encoded).unwrap();
        (dir, archive)
    }

    #[test]
    fn a_kept_log_reads_back_whole_or_its_tail() {
        let lines: Vec<LogLine> = (0..5).map(line).collect();
        let (_dir, archive) = archive_with("abc123", &lines);
        assert_eq!(archive.read("abc123", None).unwrap(), lines);
        assert_eq!(archive.read("abc123", Some(2)).unwrap(), lines[3..]);
        assert_eq!(archive.read("other", None), None);
    }

    #[test]
    fn ids_that_are_not_file_names_are_refused() {
        let archive = LogArchive::new(PathBuf::from("/nonexistent"));
        assert_eq!(archive.path("../etc/passwd"), None);
        assert_eq!(archive.path(""), None);
        assert!(archive.read("../x", None).is_none());
    }

    #[test]
    fn only_the_newest_files_are_kept() {
        let dir = Scratch::new("prune");
        for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
            let path = dir.path().join(format!("{name}.ndjson"));
            fs::write(&path, "{}\n").unwrap();
            let t =
                std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000 + i as u64);
            fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        prune(dir.path(), 2);
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["c.ndjson", "d.ndjson"]);
    }
}
