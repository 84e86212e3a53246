//! The main job's speed: `orch up` of one service with REPLICAS replicas on a
//! single-node cluster — from the command to every task running — against
//! `docker stack deploy` of the same stack on dockerd in swarm mode, in the same run
//! (rounds alternate orch and docker, so load from elsewhere hits both alike); then
//! the time to remove it (`orch down` / `docker stack rm` until no container is
//! left) and the control plane's memory with the stack running.
//!
//! Usage: up-bench [REPLICAS] [ROUNDS] (default 100 and 3). As root, from
//! target/release (it starts the `orch` next to it: `cargo build --release -p cli -p
//! bench`). Needs busybox-static; docker is optional (Debian's docker.io; a SKIP line
//! says when it is missing). Each side runs in a network namespace of its own (dockerd
//! rewrites iptables where it runs); all of it is removed at the end.
//!
//! The stack: `sh -c "trap 'exit 0' TERM; sleep 3600 & wait"` — it stops on SIGTERM,
//! so removal measures the control planes, not the 10 s stop grace period.

use agent::testing::lan::Host;
use anyhow::{Context, Result, bail};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const IMAGE_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/busybox-image");
const DEADLINE: Duration = Duration::from_secs(600);

fn stack(replicas: u64) -> String {
    format!(
        r#"version: "3.8"
services:
  sleeper:
    image: busybox:latest
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
    deploy:
      replicas: {replicas}
"#
    )
}

fn run(mut cmd: Command, what: &str) -> Result<String> {
    let out: Output = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what}: {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) -> Result<()> {
    let start = Instant::now();
    while !f() {
        if start.elapsed() > DEADLINE {
            bail!("{what}: not within {}s", DEADLINE.as_secs());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// VmRSS of `pid` in MiB.
fn rss_mib(pid: u32) -> f64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A local orch cluster (one `orch manager init --agent`) in a namespace of its own.
struct Orch {
    orch: PathBuf,
    dir: PathBuf,
    host: Host,
    manager: Option<Child>,
}

impl Orch {
    fn start(orch: &Path, dir: &Path) -> Result<Orch> {
        fs::create_dir_all(dir)?;
        let host = Host::create(&dir.join("host.netns"))?;
        let mut o = Orch {
            orch: orch.to_owned(),
            dir: dir.to_owned(),
            host,
            manager: None,
        };
        let p = |n: &str| dir.join(n).display().to_string();
        let mut cmd = o.command(&o.orch);
        cmd.args(["manager", "init", "--agent", "--listen", "127.0.0.1:4242"])
            .args(["--advertise", "127.0.0.1:4242", "--data-dir", &p("manager")])
            .args([
                "--socket",
                &p("manager.sock"),
                "--engine-data-dir",
                &p("engine"),
            ])
            .args(["--engine-socket", &p("engine.sock")])
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.join("manager.log"))?)
            .stderr(fs::File::create(dir.join("manager.err"))?);
        o.manager = Some(cmd.spawn().context("start orch manager")?);
        wait_until("the orch node is ready", || {
            o.cli(&["node", "ls"])
                .is_ok_and(|ls| ls.contains(" ready "))
        })?;
        let mut import = o.command("bash");
        import.arg(IMAGE_SCRIPT);
        run(import, "scripts/busybox-image")?;
        Ok(o)
    }

    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("ORCH_CONFIG_DIR", self.dir.join("cfg"))
            .env(
                "ORCH_ENGINE",
                format!("unix://{}", self.dir.join("engine.sock").display()),
            )
            .env("ORCH", &self.orch)
            .env_remove("ORCH_HOST")
            .current_dir(&self.dir);
        // The command runs in the cluster's namespace (its API is on that loopback).
        let _ = self.host.enter(&mut cmd);
        cmd
    }

    fn cli(&self, args: &[&str]) -> Result<String> {
        let mut cmd = self.command(&self.orch);
        cmd.args(args);
        run(cmd, &format!("orch {}", args.join(" ")))
    }

    fn up(&self, file: &Path) -> Result<Duration> {
        let start = Instant::now();
        let file = file.display().to_string();
        self.cli(&["up", "-f", &file, "-p", "bench", "--timeout", "600"])?;
        Ok(start.elapsed())
    }

    fn down(&self) -> Result<Duration> {
        let start = Instant::now();
        self.cli(&["down", "-p", "bench", "--timeout", "600"])?;
        Ok(start.elapsed())
    }

    fn rss(&self) -> f64 {
        self.manager.as_ref().map_or(0.0, |m| rss_mib(m.id()))
    }
}

impl Drop for Orch {
    fn drop(&mut self) {
        let _ = self.cli(&["down", "-p", "bench", "--timeout", "60"]);
        if let Some(mut m) = self.manager.take() {
            // SAFETY: signalling the manager this bench started.
            unsafe { libc::kill(m.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && matches!(m.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = m.kill();
            let _ = m.wait();
        }
        for entry in fs::read_dir(self.dir.join("engine/netns"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = agent::engine::network::netns::remove(&entry.path());
        }
    }
}

/// dockerd in swarm mode, in a namespace of its own.
struct Docker {
    dir: PathBuf,
    host: Host,
    daemon: Option<Child>,
}

impl Docker {
    fn start(dir: &Path, image_tar: &Path) -> Result<Docker> {
        fs::create_dir_all(dir)?;
        let host = Host::create(&dir.join("host.netns"))?;
        let mut d = Docker {
            dir: dir.to_owned(),
            host,
            daemon: None,
        };
        let mut cmd = Command::new("dockerd");
        cmd.arg("--data-root")
            .arg(dir.join("root"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", dir.join("docker.sock").display()))
            .args(["--storage-driver", "overlay2"])
            .env("DOCKER_SERVICE_PREFER_OFFLINE_IMAGE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("dockerd.log"))?);
        d.host.enter(&mut cmd)?;
        d.daemon = Some(cmd.spawn().context("start dockerd")?);
        wait_until("dockerd answers", || d.cli(&["version"]).is_ok())?;
        d.cli(&["load", "-i", &image_tar.display().to_string()])?;
        d.cli(&[
            "swarm",
            "init",
            "--advertise-addr",
            "127.0.0.1",
            "--listen-addr",
            "127.0.0.1:2377",
        ])?;
        Ok(d)
    }

    fn cli(&self, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new("docker");
        cmd.args(args)
            .env(
                "DOCKER_HOST",
                format!("unix://{}", self.dir.join("docker.sock").display()),
            )
            .env("DOCKER_CONFIG", self.dir.join("config"));
        run(cmd, &format!("docker {}", args.join(" ")))
    }

    fn up(&self, file: &Path, replicas: u64) -> Result<Duration> {
        let start = Instant::now();
        let file = file.display().to_string();
        self.cli(&[
            "stack",
            "deploy",
            "--resolve-image",
            "never",
            "-c",
            &file,
            "bench",
        ])?;
        let want = format!("{replicas}/{replicas}");
        wait_until("docker: every replica running", || {
            self.cli(&[
                "service",
                "ls",
                "--filter",
                "name=bench_sleeper",
                "--format",
                "{{.Replicas}}",
            ])
            .is_ok_and(|r| r.trim() == want)
        })?;
        Ok(start.elapsed())
    }

    fn down(&self) -> Result<Duration> {
        let start = Instant::now();
        self.cli(&["stack", "rm", "bench"])?;
        wait_until("docker: no container left", || {
            self.cli(&["ps", "-aq"])
                .is_ok_and(|ps| ps.trim().is_empty())
        })?;
        Ok(start.elapsed())
    }

    /// dockerd + containerd.
    fn rss(&self) -> f64 {
        let mut total = self.daemon.as_ref().map_or(0.0, |d| rss_mib(d.id()));
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            if cmdline.starts_with("containerd\0")
                && cmdline.contains(&self.dir.display().to_string())
            {
                total += rss_mib(pid);
            }
        }
        total
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        let _ = self.cli(&["stack", "rm", "bench"]);
        let _ = self.cli(&["swarm", "leave", "--force"]);
        if let Some(mut d) = self.daemon.take() {
            // SAFETY: signalling the dockerd this bench started; it stops containerd.
            unsafe { libc::kill(d.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline && matches!(d.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = d.kill();
            let _ = d.wait();
        }
        // Its overlay/layer mounts are in its data root.
        let root = self.dir.join("root");
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "grep -o ' {}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l",
                root.display()
            ))
            .status();
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let replicas: u64 = args
        .next()
        .map_or(Ok(100), |a| a.parse())
        .context("REPLICAS")?;
    let rounds: usize = args.next().map_or(Ok(3), |a| a.parse()).context("ROUNDS")?;
    let exe = std::env::current_exe()?;
    let orch = exe.with_file_name("orch");
    if !orch.exists() {
        bail!(
            "{} is missing: cargo build --release -p cli -p bench",
            orch.display()
        );
    }
    let scratch = std::env::temp_dir().join(format!("orch-up-bench-{}", std::process::id()));
    fs::create_dir_all(&scratch)?;
    let file = scratch.join("stack.yml");
    fs::write(&file, stack(replicas))?;
    let result = bench(&orch, &scratch, &file, replicas, rounds);
    let _ = fs::remove_dir_all(&scratch);
    result
}

fn bench(orch_bin: &Path, scratch: &Path, file: &Path, replicas: u64, rounds: usize) -> Result<()> {
    let orch = Orch::start(orch_bin, &scratch.join("orch"))?;
    let docker = if Command::new("dockerd").arg("--version").output().is_ok() {
        let tar = scratch.join("busybox.tar");
        orch.cli(&[
            "image",
            "save",
            "-o",
            &tar.display().to_string(),
            "busybox:latest",
        ])?;
        Some(Docker::start(&scratch.join("docker"), &tar)?)
    } else {
        println!("SKIP docker: dockerd is missing (apt-get install docker.io)");
        None
    };
    let (mut o_up, mut o_down, mut d_up, mut d_down) = (vec![], vec![], vec![], vec![]);
    let (mut o_rss, mut d_rss) = (0.0f64, 0.0f64);
    for round in 1..=rounds {
        let up = orch.up(file)?;
        o_rss = o_rss.max(orch.rss());
        let down = orch.down()?;
        println!(
            "round {round}: orch up {:.2}s, down {:.2}s",
            up.as_secs_f64(),
            down.as_secs_f64()
        );
        o_up.push(up);
        o_down.push(down);
        if let Some(d) = &docker {
            let up = d.up(file, replicas)?;
            d_rss = d_rss.max(d.rss());
            let down = d.down()?;
            println!(
                "round {round}: docker up {:.2}s, down {:.2}s",
                up.as_secs_f64(),
                down.as_secs_f64()
            );
            d_up.push(up);
            d_down.push(down);
        }
    }
    let (ou, od) = (median(&mut o_up), median(&mut o_down));
    println!("\n{replicas} replicas, {rounds} rounds, medians:");
    println!(
        "  orch   up {:>6.2}s  down {:>6.2}s  control plane RSS {:.1} MiB (manager + engine, one process)",
        ou.as_secs_f64(),
        od.as_secs_f64(),
        o_rss
    );
    if docker.is_some() {
        let (du, dd) = (median(&mut d_up), median(&mut d_down));
        println!(
            "  docker up {:>6.2}s  down {:>6.2}s  control plane RSS {:.1} MiB (dockerd + containerd)",
            du.as_secs_f64(),
            dd.as_secs_f64(),
            d_rss
        );
        println!(
            "  orch/docker: up {:.2}x, down {:.2}x, RSS {:.2}x (below 1: orch is faster / smaller)",
            ou.as_secs_f64() / du.as_secs_f64().max(1e-9),
            od.as_secs_f64() / dd.as_secs_f64().max(1e-9),
            o_rss / d_rss.max(1e-9)
        );
    }
    Ok(())
}
