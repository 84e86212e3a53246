//! Container start-to-exit latency: `orch container run --rm busybox /bin/true` (the
//! CLI end to end, and the engine API in process, phase by phase) against `runc run`
//! and `crun run` of the same busybox root file system in the same run; then the
//! memory of idle containers' shims and of the engine. Each round runs every variant
//! once (so load from elsewhere hits them alike); prints median, p90 and min of each
//! and the ratios.
//!
//! Usage: container-bench [RUNS] (default 30, after 3 warm-ups). As root, from
//! target/release (it starts the `orch` next to it: `cargo build --release -p cli -p
//! bench`). Needs busybox-static and runc; crun is optional (`apt-get install crun`,
//! a SKIP line says when it is missing). crun 1.8.1 refuses cgroup v1 "hybrid" hosts,
//! so it runs in a private mount namespace without /sys/fs/cgroup/unified.
//!
//! Measured on this machine (2 vCPU VM shared with other builds; medians, the
//! numbers move with the load): after the engine's wait moved from polling to the
//! shim's pidfd, `orch container run --rm` 15.8-29.3 ms against `crun run` 7.7-14.9
//! ms (1.06x-2.48x). Later, under a load average of 7, create and remove took 30 and
//! 37 ms each (CLI 123 ms, 5.9x crun): both ran `nft` for the host's rules even when
//! nothing changed. With the rules applied only on change, 4 runs of 15: on a quiet
//! machine (load 3) CLI 28.8 / 30.6 ms, API create+start+wait 19.1 / 19.9 ms (create
//! 4.0-4.6, start 13.2-13.4, exit recorded 1.4-1.6, remove 2.5-2.7), runc 27.7 / 28.6
//! ms, crun 16.1 / 16.2 ms: CLI / crun 1.78x / 1.90x, API / crun 1.18x / 1.23x, CLI /
//! runc 1.04x / 1.07x; with other builds saturating both CPUs, CLI 82.7 / 92.6 ms
//! against crun 24.0 / 21.6 ms: 3.45x / 4.28x (orch's path crosses four processes and
//! seven fsyncs, so it waits longer for CPU and disk than crun's one process). The
//! start (shim spawn, init's clone and exec, mounts) is the largest phase. A user
//! namespace (`--uidmap`, idmapped layers) costs nothing measurable (0.98x-1.09x).
//! Idle shim (one thread and a poll loop, `orch` linked without PIE, start-up pages
//! dropped): VmRSS 1.3 MiB, of which 0.21 MiB private (PSS 0.31-0.33 MiB); it was
//! 4.6 MiB with five threads and a PIE's relocated .data.rel.ro. Agent 16 MiB idle,
//! +0.3-0.4 MiB per idle container.

use agent::engine::runtime::container::{StateFile, read_json, write_json};
use anyhow::{Context, Result, bail};
use api::client::EngineClient;
use api::container::{ContainerCreate, ContainerStatus};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const WARMUP: usize = 3;
const IDLE_CONTAINERS: usize = 5;
const BUSYBOX: &str = "/bin/busybox";
const IMAGE_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/busybox-image");

/// A directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Timings of one variant.
#[derive(Default)]
struct Series(Vec<Duration>);

impl Series {
    /// Record `t` unless it is a warm-up.
    fn add(&mut self, keep: bool, t: Duration) {
        if keep {
            self.0.push(t);
        }
    }

    fn median(&self) -> Duration {
        percentile(&self.0, 50)
    }

    /// Print one row: median, p90, min; the median.
    fn row(&self, name: &str) -> Duration {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{name:<46} median {:7.2} ms   p90 {:7.2} ms   min {:7.2} ms",
            ms(self.median()),
            ms(percentile(&self.0, 90)),
            ms(percentile(&self.0, 0))
        );
        self.median()
    }
}

/// The `p`th percentile (nearest rank; the median averages the middle two).
fn percentile(times: &[Duration], p: usize) -> Duration {
    let mut v = times.to_vec();
    v.sort();
    let n = v.len();
    let at = |i: usize| v.get(i).copied().unwrap_or_default();
    match p {
        50 if n.is_multiple_of(2) && n > 0 => (at(n / 2 - 1) + at(n / 2)) / 2,
        _ => at((n * p).div_ceil(100).saturating_sub(1)),
    }
}

/// Run `cmd` to its end: wall time from spawn until reaped. (No peak RSS: wait4's
/// ru_maxrss of a child spawned by vfork or fork never reads below the spawner's own
/// RSS, here several MB, so it would not tell crun from the bench.)
fn timed(cmd: &mut Command) -> Result<Duration> {
    let start = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("start {cmd:?}"))?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(took)
}

/// A value of `key` in KiB from a /proc file of `Key:   123 kB` lines.
fn proc_kb(path: &str, key: &str) -> Result<u64> {
    let text = fs::read_to_string(path).with_context(|| format!("read {path}"))?;
    text.lines()
        .find_map(|l| {
            let v = l.strip_prefix(key)?.strip_prefix(':')?.trim();
            v.strip_suffix("kB")?.trim().parse().ok()
        })
        .with_context(|| format!("no {key} in {path}"))
}

/// `orch agent` on a data dir and socket under `dir`. On drop the containers it
/// started and their shims are killed, then the agent is stopped.
struct Agent {
    child: Child,
    orch: PathBuf,
    dir: PathBuf,
}

impl Agent {
    fn start(orch: &Path, dir: &Path) -> Result<Agent> {
        fs::create_dir_all(dir.join("home"))?;
        let log = fs::File::create(dir.join("agent.log"))?;
        let child = Command::new(orch)
            .args(["agent", "--data-dir"])
            .arg(dir.join("data"))
            .arg("--socket")
            .arg(dir.join("engine.sock"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {} agent", orch.display()))?;
        let mut agent = Agent {
            child,
            orch: orch.to_owned(),
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(agent.socket()).is_err() {
            if let Some(st) = agent.child.try_wait()? {
                let log = fs::read_to_string(dir.join("agent.log")).unwrap_or_default();
                bail!("orch agent exited ({st}): {}", log.trim());
            }
            if Instant::now() > deadline {
                bail!("orch agent did not listen within 20 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(agent)
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("engine.sock")
    }

    fn endpoint(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn containers(&self) -> PathBuf {
        self.dir.join("data/containers")
    }

    /// `orch` against this engine, with its configuration kept under `dir`.
    fn orch(&self) -> Command {
        let mut cmd = Command::new(&self.orch);
        cmd.env("ORCH_ENGINE", self.endpoint())
            .env("ORCH", &self.orch)
            .env("ORCH_CONFIG", self.dir.join("home/.orch"))
            .env("DOCKER_CONFIG", self.dir.join("home/.docker"))
            .env("TMPDIR", &self.dir);
        cmd
    }

    fn state(&self, id: &str) -> Result<StateFile> {
        Ok(read_json(&self.containers().join(id).join("state.json"))?)
    }

    fn rss_kb(&self) -> Result<u64> {
        proc_kb(&format!("/proc/{}/status", self.child.id()), "VmRSS")
    }
}

fn kill(pid: i32, signal: i32) {
    // SAFETY: signalling a process this bench started (the agent, or a container or
    // shim the agent started for it).
    unsafe { libc::kill(pid, signal) };
}

impl Drop for Agent {
    fn drop(&mut self) {
        // Containers outlive their engine by design: kill them and their shims.
        for entry in fs::read_dir(self.containers())
            .into_iter()
            .flatten()
            .flatten()
        {
            let Ok(s) = read_json::<StateFile>(&entry.path().join("state.json")) else {
                continue;
            };
            if let ContainerStatus::Running { pid, .. } = s.status {
                kill(pid, libc::SIGKILL);
            }
            if let Some(pid) = s.shim_pid {
                kill(pid, libc::SIGKILL);
            }
        }
        if let Ok(pid) = i32::try_from(self.child.id()) {
            kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The busybox root file system exactly as scripts/busybox-image builds it.
fn busybox_root(root: &Path) -> Result<()> {
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "home", "tmp", "var/tmp", "proc",
        "sys", "dev", "run",
    ] {
        fs::create_dir_all(root.join(d))?;
    }
    fs::copy(BUSYBOX, root.join("bin/busybox")).context("copy /bin/busybox")?;
    let list = Command::new(BUSYBOX).arg("--list").output()?;
    for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        let link = root.join("bin").join(applet);
        if !link.exists() {
            symlink("busybox", link)?;
        }
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
    )?;
    fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    for (d, mode) in [("tmp", 0o1777), ("var/tmp", 0o1777), ("root", 0o700)] {
        fs::set_permissions(root.join(d), fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// An OCI bundle in `dir`: the busybox root and `runc spec` running /bin/true.
fn oci_bundle(dir: &Path) -> Result<()> {
    busybox_root(&dir.join("rootfs"))?;
    let out = Command::new("runc")
        .args(["spec", "--bundle"])
        .arg(dir)
        .output()
        .context("runc spec (is runc installed?)")?;
    if !out.status.success() {
        bail!("runc spec: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let path = dir.join("config.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&fs::read(&path)?)?;
    let process = spec
        .get_mut("process")
        .and_then(|p| p.as_object_mut())
        .context("runc spec wrote no process object")?;
    process.insert("terminal".into(), false.into());
    process.insert("args".into(), serde_json::json!(["/bin/true"]));
    fs::write(&path, serde_json::to_vec_pretty(&spec)?)?;
    Ok(())
}

/// An OCI runtime running the bundle, a fresh container id each time; on drop, the
/// containers a run left behind are deleted.
struct OciRuntime {
    name: &'static str,
    bundle: PathBuf,
    tag: String,
    ids: Vec<String>,
}

impl OciRuntime {
    fn new(name: &'static str, bundle: &Path, tag: &str) -> OciRuntime {
        OciRuntime {
            name,
            bundle: bundle.to_owned(),
            tag: tag.to_owned(),
            ids: Vec::new(),
        }
    }

    /// `RUNTIME run --bundle BUNDLE ID`, timed.
    fn run(&mut self) -> Result<Duration> {
        let id = format!("{}-{}-{}", self.tag, self.name, self.ids.len());
        self.ids.push(id.clone());
        timed(
            Command::new(self.name)
                .args(["run", "--bundle"])
                .arg(&self.bundle)
                .arg(&id),
        )
    }
}

impl Drop for OciRuntime {
    fn drop(&mut self) {
        for id in &self.ids {
            if Path::new("/run").join(self.name).join(id).exists() {
                let _ = Command::new(self.name)
                    .args(["delete", "-f", id])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

/// crun in a private mount namespace without the cgroup2 mount: a child process of
/// this binary (`--crun-worker`) that runs crun once per line it reads and answers
/// `NANOS` or `error WHY`. Only crun is timed, by the worker.
struct CrunWorker {
    child: Child,
    to: Option<ChildStdin>,
    from: BufReader<ChildStdout>,
}

impl CrunWorker {
    fn start(bundle: &Path, tag: &str) -> Result<CrunWorker> {
        let script = r#"umount /sys/fs/cgroup/unified 2>/dev/null; exec "$0" --crun-worker "$@""#;
        let mut child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", script])
            .arg(std::env::current_exe()?)
            .arg(bundle)
            .arg(tag)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("start unshare -m")?;
        let (to, from) = (child.stdin.take(), child.stdout.take());
        Ok(CrunWorker {
            child,
            to,
            from: BufReader::new(from.context("the worker's stdout")?),
        })
    }

    fn run(&mut self) -> Result<Duration> {
        let to = self.to.as_mut().context("the crun worker is closed")?;
        writeln!(to, "run")?;
        to.flush()?;
        let mut line = String::new();
        if self.from.read_line(&mut line)? == 0 {
            bail!("the crun worker ended");
        }
        match line.trim().split_once(' ') {
            Some(("error", why)) => bail!("{why}"),
            _ => {
                Ok(Duration::from_nanos(line.trim().parse().with_context(
                    || format!("the crun worker said {line:?}"),
                )?))
            }
        }
    }
}

impl Drop for CrunWorker {
    fn drop(&mut self) {
        // End of input: the worker deletes what its runs left behind and exits.
        drop(self.to.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The worker side of [`CrunWorker`].
fn crun_worker(args: &[String]) -> Result<()> {
    let [bundle, tag] = args else {
        bail!("usage: container-bench --crun-worker BUNDLE TAG");
    };
    let mut crun = OciRuntime::new("crun", Path::new(bundle), tag);
    for line in std::io::stdin().lock().lines() {
        line?;
        match crun.run() {
            Ok(t) => println!("{}", t.as_nanos()),
            Err(e) => println!("error {}", format!("{e:#}").replace('\n', " ")),
        }
    }
    Ok(())
}

/// The engine API in process: what the CLI asks for, without its process and its
/// log follow.
struct Api {
    rt: tokio::runtime::Runtime,
    client: EngineClient,
    endpoint: String,
    req: ContainerCreate,
}

impl Api {
    fn new(agent: &Agent) -> Result<Api> {
        Ok(Api {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
            client: EngineClient::new(&agent.endpoint())?,
            endpoint: agent.endpoint(),
            req: ContainerCreate {
                image: "busybox".into(),
                cmd: vec!["/bin/true".into()],
                // Like the peers' bundles: a network namespace with loopback only.
                network_mode: Some("none".into()),
                ..ContainerCreate::default()
            },
        })
    }

    /// `EngineClient::new` (the CLI's set-up), then one list call on a warm client.
    fn client_costs(&self) -> Result<(Duration, Duration)> {
        let t0 = Instant::now();
        let fresh = EngineClient::new(&self.endpoint)?;
        let t1 = Instant::now();
        self.rt.block_on(self.client.containers(false))?;
        let t2 = Instant::now();
        drop(fresh);
        Ok((t1 - t0, t2 - t1))
    }

    /// create + start + wait (the engine's wait sees the exit); then remove, untimed.
    fn to_exit(&self) -> Result<Duration> {
        let c = &self.client;
        self.rt.block_on(async {
            let t0 = Instant::now();
            let id = c.create_container(&self.req).await?.id;
            c.start_container(&id).await?;
            let exit = c.wait_container(&id).await?;
            let took = t0.elapsed();
            if exit.exit_code != 0 {
                bail!("/bin/true in {id} exited with {}", exit.exit_code);
            }
            c.remove_container(&id, false).await?;
            Ok(took)
        })
    }

    /// The phases create, start, exit recorded in state.json (the bench reads it
    /// every 0.1 ms instead of calling wait), remove.
    fn phases(&self, agent: &Agent) -> Result<[Duration; 4]> {
        let t0 = Instant::now();
        let id = self
            .rt
            .block_on(self.client.create_container(&self.req))?
            .id;
        let t1 = Instant::now();
        self.rt.block_on(self.client.start_container(&id))?;
        let t2 = Instant::now();
        while !matches!(
            agent.state(&id).map(|s| s.status),
            Ok(ContainerStatus::Exited { .. })
        ) {
            if t2.elapsed() > Duration::from_secs(10) {
                bail!("{id} did not exit within 10 s");
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        let t3 = Instant::now();
        self.rt.block_on(self.client.remove_container(&id, false))?;
        Ok([t1 - t0, t2 - t1, t3 - t2, t3.elapsed()])
    }
}

/// One atomic JSON write as the engine does them (temp file, fsync, rename).
fn json_write(dir: &Path) -> Result<Duration> {
    let state = StateFile {
        status: ContainerStatus::Created,
        shim_pid: None,
        pid_start: None,
    };
    let path = dir.join("bench-state.json");
    let t = Instant::now();
    write_json(&path, &state)?;
    let took = t.elapsed();
    fs::remove_file(&path)?;
    Ok(took)
}

/// Idle containers: shim VmRSS / PSS (KiB) each, and the agent's VmRSS with them.
fn idle_memory(agent: &Agent) -> Result<()> {
    let mut ids = Vec::new();
    let result = (|| -> Result<()> {
        for _ in 0..IDLE_CONTAINERS {
            let out = agent
                .orch()
                .args([
                    "container",
                    "run",
                    "-d",
                    "--network",
                    "none",
                    "busybox",
                    "sleep",
                    "1000",
                ])
                .output()?;
            if !out.status.success() {
                bail!(
                    "orch container run -d: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            ids.push(String::from_utf8(out.stdout)?.trim().to_owned());
        }
        let (mut rss, mut anon, mut file, mut pss, mut private) = (0, 0, 0, 0, 0);
        for id in &ids {
            let shim = agent
                .state(id)?
                .shim_pid
                .context("no shim_pid in state.json")?;
            let status = format!("/proc/{shim}/status");
            rss += proc_kb(&status, "VmRSS")?;
            anon += proc_kb(&status, "RssAnon")?;
            file += proc_kb(&status, "RssFile")?;
            let rollup = format!("/proc/{shim}/smaps_rollup");
            pss += proc_kb(&rollup, "Pss")?;
            private += proc_kb(&rollup, "Private_Clean")? + proc_kb(&rollup, "Private_Dirty")?;
        }
        let n = ids.len() as u64;
        println!(
            "shim of an idle container (avg of {n}): VmRSS {} KiB = anon {} + file {} (target < 2048); PSS {} KiB, private {} KiB",
            rss / n,
            anon / n,
            file / n,
            pss / n,
            private / n
        );
        println!(
            "orch agent with {n} idle containers:   VmRSS {} KiB",
            agent.rss_kb()?
        );
        Ok(())
    })();
    if !ids.is_empty() {
        let out = agent
            .orch()
            .args(["container", "rm", "-f"])
            .args(&ids)
            .output()?;
        if !out.status.success() && result.is_ok() {
            bail!(
                "orch container rm -f: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    result
}

/// Every measured variant.
#[derive(Default)]
struct Rounds {
    spawn_true: Series,
    orch_help: Series,
    orch_ls: Series,
    json_write: Series,
    client_new: Series,
    list_call: Series,
    cli: Series,
    cli_userns: Series,
    api: Series,
    create: Series,
    start: Series,
    exit_recorded: Series,
    remove: Series,
    runc: Series,
    crun: Series,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--crun-worker") {
        return crun_worker(&args[1..]);
    }
    let runs: usize = args
        .first()
        .map(|s| s.parse().context("RUNS is a number"))
        .transpose()?
        .unwrap_or(30);
    let orch = std::env::current_exe()?.with_file_name("orch");
    if !orch.exists() {
        bail!(
            "{} is missing: cargo build --release -p cli -p bench",
            orch.display()
        );
    }
    if !Path::new(BUSYBOX).exists() {
        bail!("{BUSYBOX} is missing (scripts/setup installs busybox-static)");
    }
    let tag = format!("cbench-{}", std::process::id());
    let scratch = Scratch(std::env::temp_dir().join(format!("orch-{tag}")));
    let agent = Agent::start(&orch, &scratch.0.join("orch"))?;
    let out = Command::new("bash")
        .arg(IMAGE_SCRIPT)
        .envs(agent.orch().get_envs().filter_map(|(k, v)| Some((k, v?))))
        .output()?;
    if !out.status.success() {
        bail!(
            "scripts/busybox-image: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let agent_idle = agent.rss_kb()?;
    let bundle = scratch.0.join("bundle");
    oci_bundle(&bundle)?;
    let api = Api::new(&agent)?;
    let mut runc = OciRuntime::new("runc", &bundle, &tag);
    let mut crun = if Command::new("crun").arg("--version").output().is_ok() {
        Some(CrunWorker::start(&bundle, &tag)?)
    } else {
        println!("SKIP crun: not installed (apt-get install crun)");
        None
    };
    let orch_cmd = |args: &[&str]| {
        let mut c = agent.orch();
        c.args(args);
        c
    };

    let mut m = Rounds::default();
    for round in 0..WARMUP + runs {
        let keep = round >= WARMUP;
        m.spawn_true
            .add(keep, timed(&mut Command::new("/bin/true"))?);
        m.orch_help.add(keep, timed(&mut orch_cmd(&["--help"]))?);
        m.orch_ls
            .add(keep, timed(&mut orch_cmd(&["container", "ls", "-q"]))?);
        m.json_write.add(keep, json_write(&agent.containers())?);
        let (new, list) = api.client_costs()?;
        m.client_new.add(keep, new);
        m.list_call.add(keep, list);
        // `orch container run --rm --network none [extra] busybox /bin/true`.
        let run_true = |extra: &[&str]| {
            let mut args = vec!["container", "run", "--rm", "--network", "none"];
            args.extend(extra);
            args.extend(["busybox", "/bin/true"]);
            timed(&mut orch_cmd(&args))
        };
        m.cli.add(keep, run_true(&[])?);
        m.cli_userns
            .add(keep, run_true(&["--uidmap", "0:100000:65536"])?);
        m.api.add(keep, api.to_exit()?);
        let [create, start, exited, remove] = api.phases(&agent)?;
        m.create.add(keep, create);
        m.start.add(keep, start);
        m.exit_recorded.add(keep, exited);
        m.remove.add(keep, remove);
        m.runc.add(keep, runc.run()?);
        if let Some(w) = crun.as_mut() {
            match w.run() {
                Ok(t) => m.crun.add(keep, t),
                Err(e) if round == 0 => {
                    println!("SKIP crun: {e:#}");
                    crun = None;
                }
                Err(e) => return Err(e.context("crun run")),
            }
        }
    }

    println!("{runs} rounds after {WARMUP} warm-ups; /bin/true in the same busybox root");
    m.spawn_true.row("baseline: spawn /bin/true");
    m.orch_help.row("exec of the orch binary (orch --help)");
    m.orch_ls.row("CLI + 1 API call (orch container ls -q)");
    m.client_new.row("  in process: EngineClient::new");
    m.list_call.row("  in process: 1 list call (warm client)");
    m.json_write.row("engine write_json (write, fsync, rename)");
    println!();
    let orch_cli = m.cli.row("orch container run --rm busybox /bin/true");
    let userns = m
        .cli_userns
        .row("  the same in a user namespace (idmapped layers)");
    let orch_api = m.api.row("orch API create+start+wait (in process)");
    m.create.row("  phase: create");
    m.start.row("  phase: start (returns when /bin/true runs)");
    m.exit_recorded
        .row("  phase: start returned -> exit in state.json");
    m.remove.row("  phase: remove");
    let runc_m = m.runc.row("runc run /bin/true");
    println!();
    if crun.is_some() {
        let crun_m = m.crun.row("crun run /bin/true (no-cgroup2 mount ns)");
        let engine = m.create.median() + m.start.median() + m.exit_recorded.median();
        println!(
            "ratio to crun: orch CLI {:.2}x, orch API {:.2}x, engine phases create+start+exit {:.2}x",
            ratio(orch_cli, crun_m),
            ratio(orch_api, crun_m),
            ratio(engine, crun_m)
        );
    }
    println!(
        "ratio to runc: orch CLI {:.2}x, orch API {:.2}x",
        ratio(orch_cli, runc_m),
        ratio(orch_api, runc_m)
    );
    println!(
        "user namespace cost: {:.2}x the CLI run without",
        ratio(userns, orch_cli)
    );
    println!();
    drop(crun);
    drop(runc);
    println!("orch agent idle after the image import: VmRSS {agent_idle} KiB");
    idle_memory(&agent)?;
    drop(agent);
    Ok(())
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}
