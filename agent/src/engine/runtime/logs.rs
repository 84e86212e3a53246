//! Container logs: one JSON document per line (`{"time", "stream", "log"}`), in
//! `container.log`, rotated by size into `container.log.1`, `.2`, ... (oldest has
//! the highest number). The shim writes; the engine reads, tails and follows.

use super::container::{LogOptions, rfc3339_nanos};
use api::container::LogLine;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The current log file of the container in `dir`.
pub fn log_path(dir: &Path) -> PathBuf {
    dir.join("container.log")
}

fn rotated(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("container.log.{n}"))
}

/// Appends log lines, rotating by size.
pub struct LogWriter {
    dir: PathBuf,
    opts: LogOptions,
    file: File,
    size: u64,
}

impl LogWriter {
    /// Open (appending to) the log of the container in `dir`.
    pub fn open(dir: &Path, opts: LogOptions) -> io::Result<LogWriter> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path(dir))?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            dir: dir.to_owned(),
            opts,
            file,
            size,
        })
    }

    /// Write one line of `stream` (`stdout` / `stderr`) at `time`.
    pub fn write(&mut self, stream: &str, text: &[u8], time: SystemTime) -> io::Result<()> {
        let line = LogLine {
            time: rfc3339_nanos(time),
            stream: stream.to_owned(),
            log: String::from_utf8_lossy(text).into_owned(),
        };
        let mut bytes = serde_json::to_vec(&line).map_err(io::Error::other)?;
        bytes.push(b'\n');
        if self.size > 0 && self.size + bytes.len() as u64 > self.opts.max_size {
            self.rotate()?;
        }
        self.file.write_all(&bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let keep = self.opts.max_files.max(1);
        if keep == 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        let _ = fs::remove_file(rotated(&self.dir, keep - 1));
        for n in (1..keep - 1).rev() {
            let _ = fs::rename(rotated(&self.dir, n), rotated(&self.dir, n + 1));
        }
        fs::rename(log_path(&self.dir), rotated(&self.dir, 1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path(&self.dir))?;
        self.size = 0;
        Ok(())
    }
}

/// Every stored line, oldest first; the last `tail` lines when given.
pub fn read_all(dir: &Path, tail: Option<usize>) -> io::Result<Vec<LogLine>> {
    let mut files = rotated_files(dir);
    files.push(log_path(dir));
    let mut out = read_files(&files)?;
    if let Some(n) = tail {
        let skip = out.len().saturating_sub(n);
        out.drain(..skip);
    }
    Ok(out)
}

/// The rotated files of `dir`, oldest first.
fn rotated_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = (1..64)
        .map(|n| rotated(dir, n))
        .take_while(|p| p.exists())
        .collect();
    files.reverse();
    files
}

/// The lines of the rotated files only, oldest first (the current file is what a
/// [`Follower::from_start`] reads).
pub fn read_rotated(dir: &Path) -> io::Result<Vec<LogLine>> {
    read_files(&rotated_files(dir))
}

fn read_files(files: &[PathBuf]) -> io::Result<Vec<LogLine>> {
    let mut out = Vec::new();
    for f in files {
        match File::open(f) {
            Ok(file) => {
                for line in BufReader::new(file).lines() {
                    if let Ok(l) = serde_json::from_str::<LogLine>(&line?) {
                        out.push(l);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Follows the current log file from its end (or an offset), across rotations.
pub struct Follower {
    path: PathBuf,
    reader: BufReader<File>,
    inode: u64,
    partial: String,
}

impl Follower {
    /// Follow the log of `dir` from its current end.
    pub fn new(dir: &Path) -> io::Result<Follower> {
        Follower::open(dir, SeekFrom::End(0))
    }

    /// Follow the log of `dir` from the start of its current file.
    pub fn from_start(dir: &Path) -> io::Result<Follower> {
        Follower::open(dir, SeekFrom::Start(0))
    }

    fn open(dir: &Path, at: SeekFrom) -> io::Result<Follower> {
        let path = log_path(dir);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)?;
        let inode = file.metadata()?.ino();
        file.seek(at)?;
        Ok(Follower {
            path,
            reader: BufReader::new(file),
            inode,
            partial: String::new(),
        })
    }

    /// Read whole lines from the current reader to its end into `out`.
    fn drain(&mut self, out: &mut Vec<LogLine>) -> io::Result<()> {
        loop {
            let mut buf = String::new();
            if self.reader.read_line(&mut buf)? == 0 {
                return Ok(());
            }
            self.partial.push_str(&buf);
            if self.partial.ends_with('\n') {
                if let Ok(l) = serde_json::from_str::<LogLine>(self.partial.trim_end()) {
                    out.push(l);
                }
                self.partial.clear();
            }
        }
    }

    /// Lines written since the last call (none when nothing new).
    pub fn poll(&mut self) -> io::Result<Vec<LogLine>> {
        let mut out = Vec::new();
        self.drain(&mut out)?;
        // Rotated: drain what reached the old file after the read above, then go on
        // with the new one from its start.
        if let Ok(m) = fs::metadata(&self.path)
            && m.ino() != self.inode
        {
            self.drain(&mut out)?;
            self.reader = BufReader::new(File::open(&self.path)?);
            self.inode = m.ino();
            self.partial.clear();
            out.extend(self.poll()?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_newest_lines_in_order() {
        let dir = std::env::temp_dir().join(format!("orch-logs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let opts = LogOptions {
            max_size: 400,
            max_files: 3,
        };
        let mut w = LogWriter::open(&dir, opts).unwrap();
        let mut follow = Follower::new(&dir).unwrap();
        let mut followed = Vec::new();
        for i in 0..40 {
            w.write(
                "stdout",
                format!("line {i}\n").as_bytes(),
                SystemTime::now(),
            )
            .unwrap();
            followed.extend(follow.poll().unwrap());
        }
        let all = read_all(&dir, None).unwrap();
        assert!(all.len() < 40, "old lines were rotated away");
        assert_eq!(all.last().unwrap().log, "line 39\n");
        let numbers: Vec<usize> = all
            .iter()
            .map(|l| l.log.trim().trim_start_matches("line ").parse().unwrap())
            .collect();
        assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
        assert_eq!(read_all(&dir, Some(2)).unwrap().len(), 2);
        assert_eq!(
            followed.len(),
            40,
            "the follower saw every line across rotations"
        );
        assert!(!rotated(&dir, 3).exists(), "at most 3 files");
        fs::remove_dir_all(&dir).unwrap();
    }
}
