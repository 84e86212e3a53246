//! Manifests and image configs in the OCI and Docker schema 2 formats, and choosing
//! the manifest of a platform from an index / manifest list.

use super::digest::Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// What a client accepts when it asks a registry for a manifest.
pub const ACCEPT: [&str; 4] = [
    OCI_INDEX,
    OCI_MANIFEST,
    DOCKER_MANIFEST_LIST,
    DOCKER_MANIFEST,
];

/// A pointer to content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    #[serde(with = "digest_text")]
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An operating system and CPU architecture.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

impl Descriptor {
    /// A descriptor without platform or annotations.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size,
            platform: None,
            annotations: BTreeMap::new(),
        }
    }
}

impl ImageManifest {
    /// An OCI image manifest for an OCI config blob and `layers`.
    pub fn oci(config: Digest, config_size: u64, layers: Vec<Descriptor>) -> ImageManifest {
        ImageManifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.into()),
            config: Descriptor::new(OCI_CONFIG, config, config_size),
            layers,
            annotations: BTreeMap::new(),
        }
    }
}

impl Platform {
    /// `linux/amd64`, orch's default.
    pub fn linux_amd64() -> Platform {
        Platform {
            architecture: "amd64".into(),
            os: "linux".into(),
            variant: None,
            os_version: None,
        }
    }
}

/// One image for one platform: a config and its layers, bottom first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Manifests of several platforms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// What a manifest request returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Manifest {
    Image(ImageManifest),
    Index(ImageIndex),
}

/// Why manifest bytes are not a manifest orch can use.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest of type {media_type:?} is not valid JSON of that type: {source}")]
    Json {
        media_type: String,
        source: serde_json::Error,
    },
    #[error(
        "unsupported manifest type {media_type:?} (orch reads OCI manifests and indexes and Docker schema 2 manifests and lists)"
    )]
    Unsupported { media_type: String },
    #[error("no manifest for {os}/{architecture} in the index (it has: {available})")]
    NoPlatform {
        os: String,
        architecture: String,
        available: String,
    },
}

impl Manifest {
    /// Parse `bytes` served with `content_type` (the `mediaType` field decides when
    /// the content type is missing or generic).
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Manifest, ManifestError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Probe {
            media_type: Option<String>,
            manifests: Option<serde_json::Value>,
        }
        let probe: Option<Probe> = serde_json::from_slice(bytes).ok();
        let declared = content_type
            .map(|c| c.split(';').next().unwrap_or(c).trim().to_owned())
            .filter(|c| ACCEPT.contains(&c.as_str()));
        let media_type = declared
            .or_else(|| probe.as_ref().and_then(|p| p.media_type.clone()))
            .or_else(|| {
                probe
                    .as_ref()
                    .and_then(|p| p.manifests.as_ref())
                    .map(|_| OCI_INDEX.to_owned())
            })
            .unwrap_or_else(|| OCI_MANIFEST.to_owned());
        let json = |source| ManifestError::Json {
            media_type: media_type.clone(),
            source,
        };
        match media_type.as_str() {
            OCI_MANIFEST | DOCKER_MANIFEST => Ok(Manifest::Image(
                serde_json::from_slice(bytes).map_err(json)?,
            )),
            OCI_INDEX | DOCKER_MANIFEST_LIST => Ok(Manifest::Index(
                serde_json::from_slice(bytes).map_err(json)?,
            )),
            _ => Err(ManifestError::Unsupported { media_type }),
        }
    }
}

impl ImageIndex {
    /// The manifest for `want`: same os and architecture, and the same variant when
    /// `want` names one (an entry without variant matches any).
    pub fn select(&self, want: &Platform) -> Result<&Descriptor, ManifestError> {
        let candidates = self.manifests.iter().filter(|d| {
            d.platform.as_ref().is_some_and(|p| {
                p.os == want.os
                    && p.architecture == want.architecture
                    && (want.variant.is_none() || p.variant.is_none() || p.variant == want.variant)
            })
        });
        candidates
            .max_by_key(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.variant == want.variant)
            })
            .ok_or_else(|| ManifestError::NoPlatform {
                os: want.os.clone(),
                architecture: want.architecture.clone(),
                available: self
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref())
                    .map(|p| match &p.variant {
                        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
                        None => format!("{}/{}", p.os, p.architecture),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// The image config: how to run the image, and the layers' uncompressed digests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<RunConfig>,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

/// The defaults a container of the image runs with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
}

/// The uncompressed digests of the layers, bottom first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(with = "digest_list")]
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".into(),
            diff_ids: Vec::new(),
        }
    }
}

mod digest_text {
    use super::Digest;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(d: &Digest, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&d.to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

mod digest_list {
    use super::Digest;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[Digest], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(ToString::to_string))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Digest>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| s.parse().map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn index() -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[
            {{"mediaType":"{DOCKER_MANIFEST}","digest":"{D1}","size":1,"platform":{{"architecture":"arm","os":"linux","variant":"v7"}}}},
            {{"mediaType":"{DOCKER_MANIFEST}","digest":"{D2}","size":2,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#
        )
    }

    #[test]
    fn lists_select_the_platform() {
        let Manifest::Index(idx) = Manifest::parse(index().as_bytes(), None).unwrap() else {
            panic!("not an index")
        };
        assert_eq!(
            idx.select(&Platform::linux_amd64())
                .unwrap()
                .digest
                .to_string(),
            D2
        );
        let arm = Platform {
            architecture: "arm".into(),
            os: "linux".into(),
            variant: Some("v7".into()),
            os_version: None,
        };
        assert_eq!(idx.select(&arm).unwrap().digest.to_string(), D1);
        let s390 = Platform {
            architecture: "s390x".into(),
            ..Platform::linux_amd64()
        };
        let e = idx.select(&s390).unwrap_err().to_string();
        assert!(
            e.contains("linux/s390x") && e.contains("linux/arm/v7, linux/amd64"),
            "{e}"
        );
    }

    #[test]
    fn image_manifests_and_configs() {
        let m = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{D1}","size":10}},"layers":[{{"mediaType":"{OCI_LAYER_GZIP}","digest":"{D2}","size":20}}]}}"#
        );
        let Manifest::Image(img) = Manifest::parse(
            m.as_bytes(),
            Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
        )
        .unwrap() else {
            panic!("not an image")
        };
        assert_eq!(img.layers[0].size, 20);
        let cfg: ImageConfig = serde_json::from_str(&format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["sh"],"Env":["PATH=/bin"],"WorkingDir":"/"}},"rootfs":{{"type":"layers","diff_ids":["{D1}"]}}}}"#
        ))
        .unwrap();
        assert_eq!(cfg.config.unwrap().cmd.unwrap(), ["sh"]);
        assert_eq!(cfg.rootfs.diff_ids[0].to_string(), D1);
        assert!(matches!(
            Manifest::parse(br#"{"mediaType":"application/x-nope"}"#, None),
            Err(ManifestError::Unsupported { .. })
        ));
        assert!(
            Manifest::parse(
                br#"{"schemaVersion":2,"config":{"digest":"bad"}}"#,
                Some(OCI_MANIFEST)
            )
            .is_err()
        );
    }
}
