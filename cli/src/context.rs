//! The CLI's context: which manager to talk to and how (like a docker context). Written
//! by `orch manager init` to `~/.orch/context.json` (0600): the manager's address, the
//! cluster CA certificate (to pin the server) and an API bearer token.

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A saved context.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Context {
    /// `host:port` of a manager.
    pub host: String,
    /// The cluster CA certificate (PEM).
    pub ca_cert_pem: String,
    /// An API bearer token.
    pub token: String,
}

/// `~/.orch/context.json` (or `$ORCH_CONFIG_DIR/context.json`).
pub fn path() -> PathBuf {
    let dir = std::env::var_os("ORCH_CONFIG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/root"))
                .join(".orch")
        });
    dir.join("context.json")
}

impl Context {
    /// Keep this context; returns where.
    pub fn save(&self) -> anyhow::Result<PathBuf> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = path();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        let json = serde_json::to_vec_pretty(self)?;
        let tmp = path.with_extension("tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("create {}", tmp.display()))?;
        file.write_all(&json)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path).with_context(|| format!("write {}", path.display()))?;
        Ok(path)
    }

    /// The saved context, if any.
    pub fn load() -> anyhow::Result<Option<Context>> {
        let path = path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .with_context(|| format!("read the CLI context {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
        }
    }
}
