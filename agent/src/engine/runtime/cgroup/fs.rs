//! The thin shell over cgroupfs files: write a value, read a file, list processes,
//! remove a directory once empty. Every error names the file and the cgroup.

use super::CgroupError;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often waits look again.
const POLL: Duration = Duration::from_millis(10);

/// Write `value` to `dir/file` (which must exist: a missing controller file is an error,
/// not a new file).
pub fn write(dir: &Path, cgroup: &str, file: &'static str, value: &str) -> Result<(), CgroupError> {
    fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(dir.join(file))
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|source| CgroupError::Write {
            value: value.to_owned(),
            file,
            cgroup: cgroup.to_owned(),
            source,
        })
}

/// The text of `dir/file`.
pub fn read(dir: &Path, cgroup: &str, file: &'static str) -> Result<String, CgroupError> {
    fs::read_to_string(dir.join(file)).map_err(|source| CgroupError::Read {
        file,
        cgroup: cgroup.to_owned(),
        source,
    })
}

fn parse_error(file: &'static str, cgroup: &str, text: &str) -> CgroupError {
    CgroupError::Parse {
        file,
        cgroup: cgroup.to_owned(),
        text: text.chars().take(200).collect(),
    }
}

/// `dir/file` as one number.
pub fn read_u64(dir: &Path, cgroup: &str, file: &'static str) -> Result<u64, CgroupError> {
    let text = read(dir, cgroup, file)?;
    text.trim()
        .parse()
        .map_err(|_| parse_error(file, cgroup, &text))
}

/// The value of `key` in a flat keyed file (`key value` lines), if present.
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(char::is_whitespace)?;
        if k == key {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

/// `key` of the keyed file `dir/file`; absent keys count as zero (older kernels).
pub fn read_keyed(
    dir: &Path,
    cgroup: &str,
    file: &'static str,
    key: &str,
) -> Result<u64, CgroupError> {
    Ok(keyed(&read(dir, cgroup, file)?, key).unwrap_or(0))
}

/// The processes in the cgroup at `dir` (none when it has just gone).
pub fn procs(dir: &Path, cgroup: &str) -> Result<Vec<libc::pid_t>, CgroupError> {
    let text = match fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CgroupError::Read {
                file: "cgroup.procs",
                cgroup: cgroup.to_owned(),
                source,
            });
        }
    };
    text.split_whitespace()
        .map(|p| {
            p.parse()
                .map_err(|_| parse_error("cgroup.procs", cgroup, &text))
        })
        .collect()
}

/// Remove the cgroup directories `dirs` (those that exist) once they have no process,
/// waiting up to `wait`; `Busy` names the processes left.
pub fn remove(dirs: &[PathBuf], cgroup: &str, wait: Duration) -> Result<(), CgroupError> {
    let deadline = Instant::now() + wait;
    for dir in dirs {
        loop {
            if !dir.exists() {
                break;
            }
            let pids = procs(dir, cgroup)?;
            let result = if pids.is_empty() {
                fs::remove_dir(dir)
            } else {
                Err(std::io::Error::from_raw_os_error(libc::EBUSY))
            };
            match result {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                    std::thread::sleep(POLL);
                }
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    return Err(CgroupError::Busy {
                        cgroup: cgroup.to_owned(),
                        pids,
                        waited: wait,
                    });
                }
                Err(source) => {
                    return Err(CgroupError::Remove {
                        cgroup: cgroup.to_owned(),
                        path: dir.clone(),
                        source,
                    });
                }
            }
        }
    }
    Ok(())
}

/// Write `value` to `file`, then read `state_file` until `done` says so or `wait` ends;
/// the last text read otherwise.
pub fn write_and_wait(
    dir: &Path,
    cgroup: &str,
    (file, value): (&'static str, &str),
    state_file: &'static str,
    done: impl Fn(&str) -> bool,
    wait: Duration,
) -> Result<Result<(), String>, CgroupError> {
    write(dir, cgroup, file, value)?;
    let deadline = Instant::now() + wait;
    loop {
        let text = read(dir, cgroup, state_file)?;
        if done(&text) {
            return Ok(Ok(()));
        }
        if Instant::now() >= deadline {
            return Ok(Err(text.trim().to_owned()));
        }
        std::thread::sleep(POLL);
    }
}
