//! What a manager keeps in its data directory:
//!
//! ```text
//! DATA/node.json      who this manager is (node id, raft id, cluster id)
//! DATA/node/key.pem   its private key (0600), never sent anywhere
//! DATA/node/cert.pem  its node certificate
//! DATA/node/*.next.pem a renewed key and certificate while they replace the two above
//! DATA/node/ca.pem    the cluster CA certificate
//! DATA/node/data.key  the cluster's data key (0600): seals secrets (see keyring)
//! DATA/raft/          the replicated store (log/: the raft log, state.redb)
//! ```

use super::error::ServerError;
use crate::ca::{IssuedCert, NodeIdentity, NodeKey};
use crate::keyring::Keyring;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Who this manager is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeFile {
    pub node_id: String,
    pub raft_id: u64,
    pub cluster_id: String,
}

/// The raft id of a manager: the first 8 bytes of the SHA-256 of its node id, so every
/// manager derives the same id for a node without asking.
pub fn raft_id(node_id: &str) -> u64 {
    let digest = ring::digest::digest(&ring::digest::SHA256, node_id.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest.as_ref()[..8]);
    u64::from_be_bytes(bytes).max(1)
}

/// The data directory of a manager.
#[derive(Clone, Debug)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        Layout {
            dir: dir.to_owned(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the store lives.
    pub fn raft_dir(&self) -> PathBuf {
        self.dir.join("raft")
    }

    /// Where the cluster registry keeps this manager's blobs.
    pub fn registry_dir(&self) -> PathBuf {
        self.dir.join("registry")
    }

    fn node_file(&self) -> PathBuf {
        self.dir.join("node.json")
    }

    fn identity_dir(&self) -> PathBuf {
        self.dir.join("node")
    }

    /// Who this manager is, if it was initialized or joined.
    pub fn node(&self) -> Result<Option<NodeFile>, ServerError> {
        let path = self.node_file();
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(ServerError::Io {
                    op: "read",
                    path,
                    source,
                });
            }
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|source| ServerError::Decode { path, source })
    }

    /// Refuses a directory that already holds a manager.
    pub fn check_empty(&self) -> Result<(), ServerError> {
        match self.node()? {
            Some(node) => Err(ServerError::AlreadyInitialized {
                dir: self.dir.clone(),
                node: node.node_id,
            }),
            None => Ok(()),
        }
    }

    /// Keeps the identity, then `node.json` last: a directory with `node.json` is
    /// complete.
    pub fn save(
        &self,
        node: &NodeFile,
        key: &NodeKey,
        issued: &IssuedCert,
    ) -> Result<(), ServerError> {
        let dir = self.identity_dir();
        std::fs::create_dir_all(&dir).map_err(|source| ServerError::Io {
            op: "create",
            path: dir.clone(),
            source,
        })?;
        write_file(&dir.join("key.pem"), key.pem().as_bytes(), 0o600)?;
        write_file(&dir.join("cert.pem"), issued.cert_pem.as_bytes(), 0o644)?;
        write_file(&dir.join("ca.pem"), issued.ca_cert_pem.as_bytes(), 0o644)?;
        let json = serde_json::to_vec_pretty(node).map_err(|source| ServerError::Decode {
            path: self.node_file(),
            source,
        })?;
        write_file(&self.node_file(), &json, 0o644)
    }

    fn data_key_file(&self) -> PathBuf {
        self.identity_dir().join("data.key")
    }

    /// Keeps the cluster's data key (0600), before `node.json` is written.
    pub fn save_data_key(&self, keyring: &Keyring) -> Result<(), ServerError> {
        let dir = self.identity_dir();
        std::fs::create_dir_all(&dir).map_err(|source| ServerError::Io {
            op: "create",
            path: dir.clone(),
            source,
        })?;
        write_file(&self.data_key_file(), keyring.to_base64().as_bytes(), 0o600)
    }

    /// The data key kept by [`Layout::save_data_key`].
    pub fn data_key(&self) -> Result<Keyring, ServerError> {
        let path = self.data_key_file();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ServerError::NoDataKey { path });
            }
            Err(source) => {
                return Err(ServerError::Io {
                    op: "read",
                    path,
                    source,
                });
            }
        };
        Keyring::from_base64(&text).map_err(|source| ServerError::DataKey { path, source })
    }

    /// Keeps the managers a node last heard of (`managers.json`).
    pub fn save_managers(&self, managers: &[String]) -> Result<(), ServerError> {
        let path = self.dir.join("managers.json");
        let json = serde_json::to_vec(managers).map_err(|source| ServerError::Decode {
            path: path.clone(),
            source,
        })?;
        write_file(&path, &json, 0o644)
    }

    /// The managers kept by [`Layout::save_managers`] (none if never kept).
    pub fn managers(&self) -> Result<Vec<String>, ServerError> {
        let path = self.dir.join("managers.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| ServerError::Decode { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(ServerError::Io {
                op: "read",
                path,
                source,
            }),
        }
    }

    /// The cluster CA certificate kept by [`Layout::save`] (PEM).
    pub fn ca_cert_pem(&self) -> Result<String, ServerError> {
        let path = self.identity_dir().join("ca.pem");
        std::fs::read_to_string(&path).map_err(|source| ServerError::Io {
            op: "read",
            path,
            source,
        })
    }

    /// Keeps a renewed key and certificate in place of the old ones. Both are written
    /// whole beside them first (`key.next.pem`, `cert.next.pem`), then renamed over them,
    /// the certificate last: a crash in between is finished by the next read
    /// ([`Layout::identity`]), so the key and certificate kept always match.
    pub fn save_renewed(&self, key: &NodeKey, issued: &IssuedCert) -> Result<(), ServerError> {
        let dir = self.identity_dir();
        write_file(&dir.join("key.next.pem"), key.pem().as_bytes(), 0o600)?;
        write_file(
            &dir.join("cert.next.pem"),
            issued.cert_pem.as_bytes(),
            0o644,
        )?;
        self.finish_renewal()
    }

    /// Moves a renewed key and certificate into place if a renewal left them: only once
    /// the certificate is complete (it is written last); a lone new key is dropped.
    fn finish_renewal(&self) -> Result<(), ServerError> {
        let dir = self.identity_dir();
        let (next_key, next_cert) = (dir.join("key.next.pem"), dir.join("cert.next.pem"));
        let rename = |from: &Path, to: &Path| {
            std::fs::rename(from, to).map_err(|source| ServerError::Io {
                op: "rename into place",
                path: to.to_owned(),
                source,
            })
        };
        if next_cert.exists() {
            if next_key.exists() {
                rename(&next_key, &dir.join("key.pem"))?;
            }
            rename(&next_cert, &dir.join("cert.pem"))?;
        } else if next_key.exists() {
            std::fs::remove_file(&next_key).map_err(|source| ServerError::Io {
                op: "remove",
                path: next_key.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// The identity kept by [`Layout::save`].
    pub fn identity(&self, node: &NodeFile) -> Result<NodeIdentity, ServerError> {
        let dir = self.identity_dir();
        self.finish_renewal()?;
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| ServerError::Io {
                op: "read",
                path,
                source,
            })
        };
        let key = NodeKey::from_pem(&read("key.pem")?)?;
        let cert_pem = read("cert.pem")?;
        let ca_cert_pem = read("ca.pem")?;
        let der = crate::ca::identity::cert_from_pem(&cert_pem, "node certificate")?;
        let peer = crate::ca::PeerIdentity::read(&der)?;
        let issued = IssuedCert {
            node_id: node.node_id.clone(),
            role: peer.role,
            cert_pem,
            ca_cert_pem,
            not_after: peer.not_after,
        };
        Ok(NodeIdentity::new(key, &issued)?)
    }
}

/// Writes a file whole: a temporary file with `mode`, synced, renamed into place.
pub(crate) fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ServerError> {
    let tmp = path.with_extension("tmp");
    let io = |op, source| ServerError::Io {
        op,
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| io("create", e))?;
    file.write_all(bytes).map_err(|e| io("write", e))?;
    file.sync_all().map_err(|e| io("sync", e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("rename into place", e))
}

/// `bytes` random bytes as lowercase base32 (ids, secrets).
pub fn random_id(bytes: usize, what: &'static str) -> Result<String, ServerError> {
    let mut buf = vec![0u8; bytes];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut buf)
        .map_err(|_| ServerError::Random { what })?;
    Ok(data_encoding::BASE32_NOPAD
        .encode(&buf)
        .to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_key_is_kept_0600_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("orch-layout-key-{}", std::process::id()));
        let layout = Layout::new(&dir);
        assert!(matches!(
            layout.data_key(),
            Err(ServerError::NoDataKey { .. })
        ));
        let keyring = Keyring::generate().unwrap();
        layout.save_data_key(&keyring).unwrap();
        assert_eq!(layout.data_key().unwrap().bytes(), keyring.bytes());
        let mode = std::fs::metadata(dir.join("node/data.key")).unwrap();
        assert_eq!(mode.permissions().mode() & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_interrupted_renewal_is_finished_or_dropped_at_the_next_read() {
        use crate::ca::{CaConfig, init};
        use api::cluster::NodeRole;
        let dir = std::env::temp_dir().join(format!("orch-layout-renew-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let _cleanup = Cleanup(dir.clone());
        let layout = Layout::new(&dir);
        let now = std::time::SystemTime::now();
        let mut ca = init("c1", &CaConfig::default(), now).unwrap();
        let token = ca.token(NodeRole::Worker).unwrap();
        let mut make = || {
            let key = NodeKey::generate().unwrap();
            let issued = ca.issue(&token, &key.csr().unwrap(), "n1", now).unwrap();
            (key, issued)
        };
        let (key, issued) = make();
        let node = NodeFile {
            node_id: "n1".into(),
            raft_id: raft_id("n1"),
            cluster_id: "c1".into(),
        };
        layout.save(&node, &key, &issued).unwrap();
        let ids = dir.join("node");
        // Crashed after the new key was written, before the certificate was: dropped.
        let (next_key, next) = make();
        write_file(&ids.join("key.next.pem"), next_key.pem().as_bytes(), 0o600).unwrap();
        assert_eq!(layout.identity(&node).unwrap().key().pem(), key.pem());
        assert!(!ids.join("key.next.pem").exists());
        // Crashed after the key was moved, before the certificate was: finished.
        write_file(&ids.join("key.next.pem"), next_key.pem().as_bytes(), 0o600).unwrap();
        write_file(&ids.join("cert.next.pem"), next.cert_pem.as_bytes(), 0o644).unwrap();
        std::fs::rename(ids.join("key.next.pem"), ids.join("key.pem")).unwrap();
        let read = layout.identity(&node).unwrap();
        assert_eq!(read.key().pem(), next_key.pem());
        assert!(!ids.join("cert.next.pem").exists());
    }

    /// Removes a test directory, also when the test fails.
    struct Cleanup(PathBuf);

    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn raft_ids_are_stable_and_never_zero() {
        assert_eq!(raft_id("abc"), raft_id("abc"));
        assert_ne!(raft_id("abc"), raft_id("abd"));
        assert_ne!(raft_id(""), 0);
    }
}
