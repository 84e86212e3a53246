//! An `orch agent` process for tests and benchmarks: its own data dir and socket
//! under a directory, optionally inside a test host's network namespace. On drop its
//! containers and their shims are killed (they outlive an engine by design), the
//! agent is stopped and the namespaces it held are let go.

use super::lan;
use crate::engine::network::netns;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running engine.
pub struct EngineProcess {
    child: Child,
    orch: PathBuf,
    pub dir: PathBuf,
}

impl EngineProcess {
    /// Start `orch agent` with its data under `dir`, inside the namespace held at
    /// `host` (or this process' own); returns once its socket answers.
    pub fn start(orch: &Path, dir: &Path, host: Option<&Path>) -> io::Result<EngineProcess> {
        std::fs::create_dir_all(dir.join("home"))?;
        let log = std::fs::File::create(dir.join("agent.log"))?;
        let mut cmd = Command::new(orch);
        cmd.args(["agent", "--data-dir"])
            .arg(dir.join("data"))
            .arg("--socket")
            .arg(dir.join("engine.sock"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(host) = host {
            lan::enter(host, &mut cmd)?;
        }
        let child = cmd.spawn().map_err(|e| {
            io::Error::new(e.kind(), format!("start {} agent: {e}", orch.display()))
        })?;
        let mut engine = EngineProcess {
            child,
            orch: orch.to_owned(),
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(engine.socket()).is_err() {
            if let Some(status) = engine.child.try_wait()? {
                let log = std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default();
                return Err(io::Error::other(format!(
                    "orch agent exited ({status}): {}",
                    log.trim()
                )));
            }
            if Instant::now() > deadline {
                return Err(io::Error::other("orch agent did not listen within 20 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(engine)
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("engine.sock")
    }

    /// `unix://SOCKET`, for an `EngineClient`.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// A command that talks to this engine (`ORCH_ENGINE`, `ORCH`, and its own
    /// client configuration).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("ORCH_ENGINE", self.endpoint())
            .env("ORCH", &self.orch)
            .env("ORCH_CONFIG", self.dir.join("home/.orch"))
            .env("DOCKER_CONFIG", self.dir.join("home/.docker"));
        cmd
    }

    /// `orch ARGS` against this engine; an error names the command and its stderr.
    pub fn orch(&self, args: &[&str]) -> io::Result<String> {
        let mut cmd = self.command(&self.orch);
        cmd.args(args);
        checked(cmd, &format!("orch {}", args.join(" ")))
    }

    /// The busybox image, made by `script` (scripts/busybox-image).
    pub fn busybox_image(&self, script: &Path) -> io::Result<()> {
        let mut cmd = self.command("bash");
        cmd.arg(script);
        checked(cmd, "scripts/busybox-image").map(|_| ())
    }

    /// The network namespace of container `what` (a name or id).
    pub fn container_netns(&self, what: &str) -> io::Result<PathBuf> {
        let text = self.orch(&["container", "inspect", what])?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| io::Error::other(format!("inspect {what}: {e}")))?;
        let id = v[0]["id"]
            .as_str()
            .ok_or_else(|| io::Error::other(format!("inspect {what}: no id")))?;
        Ok(self.dir.join("data/netns").join(id))
    }
}

fn checked(mut cmd: Command, what: &str) -> io::Result<String> {
    let out: Output = cmd.stdin(Stdio::null()).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{what}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn kill(pid: i64, signal: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: signalling a process this engine started for the caller.
        unsafe { libc::kill(pid, signal) };
    }
}

impl Drop for EngineProcess {
    fn drop(&mut self) {
        for entry in std::fs::read_dir(self.dir.join("data/containers"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let Ok(text) = std::fs::read_to_string(entry.path().join("state.json")) else {
                continue;
            };
            let state: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            for key in ["pid", "shim_pid"] {
                if let Some(pid) = state[key].as_i64() {
                    kill(pid, libc::SIGKILL);
                }
            }
        }
        kill(i64::from(self.child.id()), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for entry in std::fs::read_dir(self.dir.join("data/netns"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = netns::remove(&entry.path());
        }
    }
}
