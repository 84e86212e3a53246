//! Processes and directories of one run, cleaned up on drop (also when the run fails).

use crate::error::BenchError;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A per-run directory under the system temp dir; removed with everything in it on drop.
pub struct RunDir(PathBuf);

impl RunDir {
    /// A fresh directory named after this process.
    pub fn new() -> Result<RunDir, BenchError> {
        let path = std::env::temp_dir().join(format!("store-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).map_err(|source| BenchError::File {
            what: "create the run directory",
            path: path.clone(),
            source,
        })?;
        Ok(RunDir(path))
    }

    /// Where the directory is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if std::env::var_os("STORE_BENCH_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A server process whose stdout and stderr go to `<dir>/<name>.out|err`; killed
/// (SIGKILL) and reaped on drop, and killed by the kernel when the bench dies first.
pub struct Server {
    child: Option<Child>,
}

impl Server {
    /// Start `command` as member `name`, logging into `dir`.
    pub fn spawn(mut command: Command, dir: &Path, name: &str) -> Result<Server, BenchError> {
        let log = |ext: &str| {
            let path = dir.join(format!("{name}.{ext}"));
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|source| BenchError::File {
                    what: "create the log",
                    path,
                    source,
                })
        };
        command
            .stdin(Stdio::null())
            .stdout(log("out")?)
            .stderr(log("err")?);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        let child = command.spawn().map_err(|source| BenchError::Spawn {
            program: command.get_program().to_string_lossy().into_owned(),
            name: name.to_owned(),
            source,
        })?;
        Ok(Server { child: Some(child) })
    }

    /// The process's resident memory in KiB (`VmRSS`), if it still runs.
    pub fn rss_kib(&self) -> Option<u64> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// SIGKILL the process and reap it (its sockets are closed when this returns).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port free right now (the OS picks it).
pub fn free_port() -> Result<u16, BenchError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(BenchError::Port)
}

/// The text of `<dir>/<name>.<ext>` (empty when missing).
pub fn log_text(dir: &Path, name: &str, ext: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.{ext}"))).unwrap_or_default()
}

/// Ask `probe` every 100 ms until it says yes, for at most `secs`; the error says
/// `what` was awaited and `last`, what was seen instead.
pub async fn wait_until<F, Fut>(
    what: &str,
    secs: u64,
    last: &str,
    mut probe: F,
) -> Result<(), BenchError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !probe().await {
        if std::time::Instant::now() > deadline {
            return Err(BenchError::NotReady {
                what: what.to_owned(),
                secs,
                last: last.to_owned(),
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(())
}
