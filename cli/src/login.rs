//! `orch login` / `orch logout`, and the credentials file they keep: a docker-style
//! `config.json` (`{"auths": {"host:port": {"auth": base64("user:password")}}}`) in
//! `$ORCH_CONFIG` (default `~/.orch`). Docker's own file (`$DOCKER_CONFIG` or
//! `~/.docker/config.json`) is read as well, so existing logins work.

use anyhow::{Context, bail};
use api::client::EngineClient;
use api::image::{LoginRequest, RegistryAuth};
use base64::Engine as _;
use clap::Args;
use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::ExitCode;

/// Docker Hub, as references name it.
const DOCKER_HUB: &str = "docker.io";

/// Flags of `orch login`.
#[derive(Args)]
pub struct LoginArgs {
    /// Registry host[:port] (default: Docker Hub).
    server: Option<String>,
    /// Username (asked for on a terminal when missing).
    #[arg(short, long)]
    username: Option<String>,
    /// Password (prefer --password-stdin: this one shows in the process list).
    #[arg(short, long)]
    password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    password_stdin: bool,
}

/// Flags of `orch logout`.
#[derive(Args)]
pub struct LogoutArgs {
    /// Registry host[:port] (default: Docker Hub).
    server: Option<String>,
}

fn orch_config() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("ORCH_CONFIG") {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".orch/config.json"))
}

fn docker_config() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// The keys a registry may be stored under (Docker Hub has historic names).
fn keys(registry: &str) -> Vec<String> {
    let mut k = vec![
        registry.to_owned(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ];
    if registry == DOCKER_HUB {
        k.extend(
            [
                "https://index.docker.io/v1/",
                "index.docker.io",
                "registry-1.docker.io",
            ]
            .map(String::from),
        );
    }
    k
}

fn read_file(path: &PathBuf) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a JSON object", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(serde_json::Map::new()),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

/// The registry a config.json key names (`https://index.docker.io/v1/` is `docker.io`).
fn registry_of_key(key: &str) -> String {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or(key);
    match host {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_owned(),
        h => h.to_owned(),
    }
}

fn decode_entry(
    path: &std::path::Path,
    key: &str,
    entry: &serde_json::Value,
) -> anyhow::Result<Option<RegistryAuth>> {
    let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) else {
        return Ok(None);
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .with_context(|| format!("{}: auths.{key}.auth is not base64", path.display()))?;
    let text = String::from_utf8_lossy(&raw);
    let Some((u, p)) = text.split_once(':') else {
        bail!("{}: auths.{key}.auth is not user:password", path.display());
    };
    Ok(Some(RegistryAuth {
        username: u.to_owned(),
        password: p.to_owned(),
    }))
}

/// Every stored credential, by registry (orch's file wins over Docker's).
pub fn all_credentials() -> anyhow::Result<api::image::RegistryConfig> {
    let mut out = api::image::RegistryConfig::new();
    for path in [orch_config(), docker_config()].into_iter().flatten() {
        let file = read_file(&path)?;
        let Some(auths) = file.get("auths").and_then(|a| a.as_object()) else {
            continue;
        };
        for (key, entry) in auths {
            if let Some(auth) = decode_entry(&path, key, entry)? {
                out.entry(registry_of_key(key)).or_insert(auth);
            }
        }
    }
    Ok(out)
}

/// Stored credentials for `registry`, if any.
pub fn credentials(registry: &str) -> anyhow::Result<Option<RegistryAuth>> {
    for path in [orch_config(), docker_config()].into_iter().flatten() {
        let file = read_file(&path)?;
        let Some(auths) = file.get("auths").and_then(|a| a.as_object()) else {
            continue;
        };
        for key in keys(registry) {
            let Some(entry) = auths.get(&key) else {
                continue;
            };
            if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(auth)
                    .with_context(|| {
                        format!("{}: auths.{key}.auth is not base64", path.display())
                    })?;
                let text = String::from_utf8_lossy(&raw);
                let Some((u, p)) = text.split_once(':') else {
                    bail!("{}: auths.{key}.auth is not user:password", path.display());
                };
                return Ok(Some(RegistryAuth {
                    username: u.to_owned(),
                    password: p.to_owned(),
                }));
            }
        }
    }
    Ok(None)
}

fn write_orch_config(
    update: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> anyhow::Result<PathBuf> {
    let path = orch_config().context("neither ORCH_CONFIG nor HOME is set")?;
    let mut file = read_file(&path)?;
    update(&mut file);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("write {}", tmp.display()))?;
    f.write_all(&serde_json::to_vec_pretty(&file)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}

/// Read one line from the terminal, without echo when `secret`.
fn prompt(label: &str, secret: bool) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!("{label} is needed and standard input is not a terminal (use the flags)");
    }
    eprint!("{label}: ");
    let _ = std::io::stderr().flush();
    let fd = 0;
    // SAFETY: termios calls on stdin with a zeroed, then filled, struct.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    let echo_off = secret && unsafe { libc::tcgetattr(fd, &mut saved) } == 0;
    if echo_off {
        let mut t = saved;
        t.c_lflag &= !libc::ECHO;
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) };
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if echo_off {
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
        eprintln!();
    }
    read.context("read from the terminal")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// Run `orch login`: check the credentials through the engine, then keep them.
pub fn login(client: &EngineClient, args: LoginArgs) -> anyhow::Result<ExitCode> {
    let registry = args.server.unwrap_or_else(|| DOCKER_HUB.to_owned());
    let registry = registry
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let username = match args.username {
        Some(u) => u,
        None => prompt("Username", false)?,
    };
    let password = match (args.password, args.password_stdin) {
        (Some(_), true) => bail!("--password and --password-stdin are exclusive"),
        (Some(p), false) => p,
        (None, true) => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("read the password from standard input")?;
            line.trim_end_matches(['\n', '\r']).to_owned()
        }
        (None, false) => prompt("Password", true)?,
    };
    if username.is_empty() || password.is_empty() {
        bail!("username and password must not be empty");
    }
    let req = LoginRequest {
        registry: registry.clone(),
        auth: RegistryAuth {
            username: username.clone(),
            password: password.clone(),
        },
    };
    crate::engine::block_on(client.login(&req))??;
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    let path = write_orch_config(|file| {
        let auths = file
            .entry("auths")
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        if !auths.is_object() {
            *auths = serde_json::Value::Object(Default::default());
        }
        if let Some(a) = auths.as_object_mut() {
            a.insert(registry.clone(), serde_json::json!({ "auth": encoded }));
        }
    })?;
    eprintln!("Credentials for {registry} saved in {}", path.display());
    println!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

/// Run `orch logout`: forget the credentials of a registry.
pub fn logout(args: LogoutArgs) -> anyhow::Result<ExitCode> {
    let registry = args.server.unwrap_or_else(|| DOCKER_HUB.to_owned());
    let mut removed = false;
    write_orch_config(|file| {
        if let Some(a) = file.get_mut("auths").and_then(|a| a.as_object_mut()) {
            for k in keys(&registry) {
                removed |= a.remove(&k).is_some();
            }
        }
    })?;
    if removed {
        println!("Removed login credentials for {registry}");
    } else {
        println!("Not logged in to {registry}");
    }
    Ok(ExitCode::SUCCESS)
}
