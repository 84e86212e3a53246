//! A real registry for tests: Debian's `docker-registry` (distribution v2) on a
//! free loopback port with a temp storage directory, gone on drop; open, or with
//! basic auth, or with bearer tokens from a [`TokenServer`](super::token::TokenServer).

use super::token;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An htpasswd file: user `tester`, password `orch-secret` (bcrypt).
pub const HTPASSWD: &str = "tester:$2b$12$4ez7shHdFB1lCVs/XsMd6uJMztA4aPRQxKjlTU4OX0ZOTOI1aorGO\n";

/// A registry process and its directory; both gone on drop.
pub struct Registry {
    child: Child,
    dir: PathBuf,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Registry {
    /// What the registry has logged so far (its stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Start a registry without auth; `None` (after saying why) when docker-registry is
/// not installed.
pub fn start_registry(tag: &str) -> Option<Registry> {
    start_registry_with(tag, None)
}

/// Start a registry; with `htpasswd`, it requires basic auth for those users.
pub fn start_registry_with(tag: &str, htpasswd: Option<&str>) -> Option<Registry> {
    start_registry_auth(
        tag,
        htpasswd.map_or(RegistryAuth::None, RegistryAuth::Htpasswd),
    )
}

/// Start a registry that wants bearer tokens from `realm` (a
/// [`TokenServer`](super::token::TokenServer)'s), issued by [`token::ISSUER`] for
/// [`token::SERVICE`] and signed under the certificate(s) in `cert_pem`.
pub fn start_registry_with_token(tag: &str, realm: &str, cert_pem: &Path) -> Option<Registry> {
    start_registry_auth(
        tag,
        RegistryAuth::Token {
            realm,
            service: token::SERVICE,
            issuer: token::ISSUER,
            rootcertbundle: cert_pem,
        },
    )
}

/// How a test registry authenticates its clients.
#[derive(Clone, Copy, Debug)]
pub enum RegistryAuth<'a> {
    /// Everyone may do everything.
    None,
    /// Basic auth against these htpasswd lines.
    Htpasswd(&'a str),
    /// Bearer tokens (distribution's `auth: token`).
    Token {
        /// Where clients get tokens.
        realm: &'a str,
        /// The `service` of the challenge; tokens must have it as `aud`.
        service: &'a str,
        /// The `iss` tokens must carry.
        issuer: &'a str,
        /// PEM certificates that sign tokens (their `x5c` must chain to one).
        rootcertbundle: &'a Path,
    },
}

/// Start a registry with `auth`; `None` (after saying why) when docker-registry is
/// not installed. With token auth it logs at info level to [`Registry::log`].
pub fn start_registry_auth(tag: &str, auth: RegistryAuth<'_>) -> Option<Registry> {
    let bin = ["/usr/bin/docker-registry", "/usr/sbin/docker-registry"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(bin) = bin else {
        eprintln!(
            "SKIP registry tests: docker-registry is not installed (scripts/setup installs it)"
        );
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let dir = std::env::temp_dir().join(format!("orch-registry-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let level = match auth {
        RegistryAuth::Token { .. } => "info",
        _ => "error",
    };
    let config = format!(
        "version: 0.1\nlog:\n  level: {level}\nstorage:\n  filesystem:\n    rootdirectory: {}/data\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
        dir.display()
    );
    let mut config = config;
    match auth {
        RegistryAuth::None => {}
        RegistryAuth::Htpasswd(users) => {
            std::fs::write(dir.join("htpasswd"), users).ok()?;
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: orch-test\n    path: {}/htpasswd\n",
                dir.display()
            ));
        }
        RegistryAuth::Token {
            realm,
            service,
            issuer,
            rootcertbundle,
        } => config.push_str(&format!(
            "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
            rootcertbundle.display()
        )),
    }
    std::fs::write(dir.join("config.yml"), config).ok()?;
    let child = Command::new(bin)
        .arg("serve")
        .arg(dir.join("config.yml"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("registry.log")).ok()?)
        .spawn()
        .ok()?;
    let reg = Registry {
        child,
        dir,
        addr: format!("127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect(&reg.addr) {
            let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
            let mut buf = [0u8; 12];
            if s.read_exact(&mut buf).is_ok()
                && (buf.starts_with(b"HTTP/1.0 200") || buf.starts_with(b"HTTP/1.0 401"))
            {
                return Some(reg);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("docker-registry did not answer on {} within 15 s", reg.addr);
}
