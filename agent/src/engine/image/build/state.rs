//! A stage's image as it is being built: config (with diff ids and history) and layer
//! descriptors, read from a base image, changed by instructions, written as an OCI
//! manifest + config. Serialization is deterministic, so equal states have equal
//! digests.

use crate::engine::image::digest::Digest;
use crate::engine::image::manifest::{
    DOCKER_LAYER_GZIP, Descriptor, ImageConfig, ImageManifest, OCI_LAYER_GZIP, RunConfig,
};
use crate::engine::image::store::{ContentStore, StoreError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Read;

/// The default PATH of images that set none.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One history entry of the image config.
#[derive(Clone, Debug, Serialize)]
struct History<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<&'a str>,
    created_by: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    empty_layer: bool,
    comment: &'a str,
}

/// Why a base image cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("read blob {digest}: {source}")]
    Read {
        digest: Digest,
        source: std::io::Error,
    },
    #[error("image {manifest}: {what}")]
    Invalid { manifest: Digest, what: String },
}

/// An image in the making.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub config: ImageConfig,
    pub layers: Vec<Descriptor>,
}

fn read(store: &ContentStore, d: &Digest) -> Result<Vec<u8>, StateError> {
    let mut bytes = Vec::new();
    store
        .open_verified(d)?
        .read_to_end(&mut bytes)
        .map_err(|source| StateError::Read {
            digest: d.clone(),
            source,
        })?;
    Ok(bytes)
}

impl State {
    /// `FROM scratch`.
    pub fn scratch() -> State {
        let mut s = State {
            config: ImageConfig {
                architecture: "amd64".into(),
                os: "linux".into(),
                ..ImageConfig::default()
            },
            layers: Vec::new(),
        };
        s.defaults();
        s
    }

    /// `FROM image`: the image whose manifest is `manifest` in `store`.
    pub fn from_image(store: &ContentStore, manifest: &Digest) -> Result<State, StateError> {
        let invalid = |what: String| StateError::Invalid {
            manifest: manifest.clone(),
            what,
        };
        let m: ImageManifest = serde_json::from_slice(&read(store, manifest)?)
            .map_err(|e| invalid(format!("not an image manifest: {e}")))?;
        let config: ImageConfig = serde_json::from_slice(&read(store, &m.config.digest)?)
            .map_err(|e| invalid(format!("config {} is not valid: {e}", m.config.digest)))?;
        if config.rootfs.diff_ids.len() != m.layers.len() {
            return Err(invalid(format!(
                "{} layers but {} diff ids",
                m.layers.len(),
                config.rootfs.diff_ids.len()
            )));
        }
        let layers = m
            .layers
            .into_iter()
            .map(|mut l| {
                if l.media_type == DOCKER_LAYER_GZIP {
                    l.media_type = OCI_LAYER_GZIP.into();
                }
                l
            })
            .collect();
        let mut s = State { config, layers };
        s.config.architecture = "amd64".into();
        s.config.os = "linux".into();
        s.defaults();
        Ok(s)
    }

    fn defaults(&mut self) {
        let run = self.run();
        let env = run.env.get_or_insert_with(Vec::new);
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, DEFAULT_PATH.into());
        }
    }

    /// The run config, created when missing.
    pub fn run(&mut self) -> &mut RunConfig {
        self.config.config.get_or_insert_with(RunConfig::default)
    }

    /// The environment (`KEY=value`).
    pub fn env(&self) -> Vec<String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.env.clone())
            .unwrap_or_default()
    }

    /// Set `key=value` in the environment, in place when the key exists.
    pub fn set_env(&mut self, key: &str, value: &str) {
        let env = self.run().env.get_or_insert_with(Vec::new);
        let entry = format!("{key}={value}");
        match env
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |x| x.0) == key)
        {
            Some(e) => *e = entry,
            None => env.push(entry),
        }
    }

    /// The WORKDIR (`/` when unset).
    pub fn workdir(&self) -> String {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into())
    }

    /// The labels, created when missing.
    pub fn labels(&mut self) -> &mut BTreeMap<String, String> {
        self.run().labels.get_or_insert_with(BTreeMap::new)
    }

    /// A digest of the whole state: the cache key of what comes next.
    pub fn digest(&self) -> Digest {
        Digest::of(&self.config_bytes())
    }

    /// Record a metadata-only step.
    pub fn note(&mut self, created_by: &str) {
        let created = self.config.created.clone();
        self.push_history(created.as_deref(), created_by, true);
    }

    /// Add a layer made (or cached) by step `created_by` at `created`.
    pub fn add_layer(
        &mut self,
        layer: Descriptor,
        diff_id: Digest,
        created_by: &str,
        created: &str,
    ) {
        self.layers.push(layer);
        self.config.rootfs.diff_ids.push(diff_id);
        self.config.created = Some(created.to_owned());
        self.push_history(Some(created), created_by, false);
    }

    fn push_history(&mut self, created: Option<&str>, created_by: &str, empty_layer: bool) {
        let h = History {
            created,
            created_by,
            empty_layer,
            comment: "orch build",
        };
        if let Ok(v) = serde_json::to_value(h) {
            self.config.history.push(v);
        }
    }

    fn config_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.config).unwrap_or_default()
    }

    /// Store config and manifest in `store`; (manifest digest, config digest).
    pub fn write(&self, store: &ContentStore) -> Result<(Digest, Digest), StoreError> {
        let config = self.config_bytes();
        let config_d = put(store, &config)?;
        let manifest =
            ImageManifest::oci(config_d.clone(), config.len() as u64, self.layers.clone());
        let bytes = serde_json::to_vec(&manifest).unwrap_or_default();
        Ok((put(store, &bytes)?, config_d))
    }
}

fn put(store: &ContentStore, bytes: &[u8]) -> Result<Digest, StoreError> {
    let d = Digest::of(bytes);
    store.ingest(&d, Some(bytes.len() as u64), &mut &bytes[..])?;
    Ok(d)
}
