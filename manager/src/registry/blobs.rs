//! Blobs on this manager's disk, by digest (`blobs/sha256/HEX`), and uploads under way
//! (`uploads/ID`). A blob enters only through [`BlobStore::finish`], which checks its
//! digest, syncs it and renames it into place: a blob file is always whole and right.

use super::error::RegistryError;
use axum::body::{Body, Bytes};
use futures_util::{Stream, StreamExt};
use ring::digest::{Context, SHA256};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// The blob and upload directories of one manager.
#[derive(Debug)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// The store under `root` (made if missing).
    pub fn open(root: &Path) -> Result<BlobStore, RegistryError> {
        for dir in ["blobs/sha256", "uploads"] {
            let dir = root.join(dir);
            std::fs::create_dir_all(&dir)
                .map_err(RegistryError::disk(format!("create {}", dir.display())))?;
        }
        Ok(BlobStore { root: root.into() })
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.root.join("blobs/sha256").join(hex)
    }

    fn upload_path(&self, id: &str) -> PathBuf {
        self.root.join("uploads").join(id)
    }

    /// The size of blob `digest`, if this manager has it.
    pub async fn size(&self, digest: &str) -> Option<u64> {
        tokio::fs::metadata(self.blob_path(digest))
            .await
            .ok()
            .map(|m| m.len())
    }

    /// Blob `digest` opened for reading, with its size.
    pub async fn open_blob(&self, digest: &str) -> Option<(tokio::fs::File, u64)> {
        let file = tokio::fs::File::open(self.blob_path(digest)).await.ok()?;
        let size = file.metadata().await.ok()?.len();
        Some((file, size))
    }

    /// Starts an upload; returns its id.
    pub async fn start(&self) -> Result<String, RegistryError> {
        let mut id = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id).map_err(
            |_| RegistryError::Disk {
                what: "draw an upload id".into(),
                source: std::io::Error::other("the system random source failed"),
            },
        )?;
        let id = data_encoding::HEXLOWER.encode(&id);
        let path = self.upload_path(&id);
        tokio::fs::File::create(&path)
            .await
            .map_err(RegistryError::disk(format!("create {}", path.display())))?;
        Ok(id)
    }

    /// The bytes upload `id` holds so far.
    pub async fn uploaded(&self, id: &str) -> Result<u64, RegistryError> {
        tokio::fs::metadata(self.upload_path(id))
            .await
            .map(|m| m.len())
            .map_err(|_| RegistryError::UploadUnknown(format!("upload {id}")))
    }

    /// Appends `body` to upload `id`, which must hold `offset` bytes when given (a
    /// chunk's `Content-Range` start); returns the new size.
    pub async fn append(
        &self,
        id: &str,
        offset: Option<u64>,
        body: Body,
    ) -> Result<u64, RegistryError> {
        let size = self.uploaded(id).await?;
        if let Some(offset) = offset.filter(|o| *o != size) {
            return Err(RegistryError::RangeInvalid(format!(
                "upload {id} holds {size} bytes; a chunk starting at {offset} does not follow on"
            )));
        }
        let stream = body
            .into_data_stream()
            .map(|chunk| chunk.map_err(std::io::Error::other));
        self.append_stream(id, stream).await
    }

    /// Appends the chunks of `stream` to upload `id`; returns the new size.
    pub async fn append_stream<E: Into<std::io::Error>>(
        &self,
        id: &str,
        stream: impl Stream<Item = Result<Bytes, E>>,
    ) -> Result<u64, RegistryError> {
        let path = self.upload_path(id);
        let what = || format!("write upload {}", path.display());
        let mut file = tokio::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .await
            .map_err(|_| RegistryError::UploadUnknown(format!("upload {id}")))?;
        let mut stream = std::pin::pin!(stream);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| RegistryError::Disk {
                what: format!("receive upload {id}"),
                source: e.into(),
            })?;
            file.write_all(&chunk)
                .await
                .map_err(RegistryError::disk(what()))?;
        }
        file.flush().await.map_err(RegistryError::disk(what()))?;
        Ok(file
            .metadata()
            .await
            .map_err(RegistryError::disk(what()))?
            .len())
    }

    /// Ends upload `id` as blob `digest`: its content must hash to it. The blob is
    /// synced to disk before it is renamed into place.
    pub async fn finish(&self, id: &str, digest: &str) -> Result<u64, RegistryError> {
        let upload = self.upload_path(id);
        let blob = self.blob_path(digest);
        let expected = digest.to_owned();
        let result = tokio::task::spawn_blocking(move || -> Result<u64, RegistryError> {
            use std::io::Read;
            let what = || format!("read {}", upload.display());
            let mut file = std::fs::File::open(&upload).map_err(|_| {
                RegistryError::UploadUnknown(format!("upload {}", upload.display()))
            })?;
            let mut hash = Context::new(&SHA256);
            let mut buf = vec![0u8; 1 << 16];
            let mut size = 0u64;
            loop {
                let n = file.read(&mut buf).map_err(RegistryError::disk(what()))?;
                if n == 0 {
                    break;
                }
                hash.update(&buf[..n]);
                size += n as u64;
            }
            let actual = format!(
                "sha256:{}",
                data_encoding::HEXLOWER.encode(hash.finish().as_ref())
            );
            if actual != expected {
                let _ = std::fs::remove_file(&upload);
                return Err(RegistryError::DigestInvalid(format!(
                    "the upload's {size} bytes hash to {actual}, not {expected}"
                )));
            }
            file.sync_all().map_err(RegistryError::disk(what()))?;
            std::fs::rename(&upload, &blob)
                .map_err(RegistryError::disk(format!("store {}", blob.display())))?;
            if let Some(dir) = blob.parent() {
                std::fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(RegistryError::disk(format!("sync {}", dir.display())))?;
            }
            Ok(size)
        })
        .await;
        result.unwrap_or_else(|e| {
            Err(RegistryError::Disk {
                what: format!("finish upload {id}"),
                source: std::io::Error::other(e),
            })
        })
    }

    /// Drops upload `id`.
    pub async fn cancel(&self, id: &str) -> Result<(), RegistryError> {
        tokio::fs::remove_file(self.upload_path(id))
            .await
            .map_err(|_| RegistryError::UploadUnknown(format!("upload {id}")))
    }
}

/// The SHA-256 digest of `bytes`, as `sha256:HEX`.
pub fn digest_of(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&SHA256, bytes);
    format!("sha256:{}", data_encoding::HEXLOWER.encode(d.as_ref()))
}
