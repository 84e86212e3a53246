//! The layer cache: which layer a step made, keyed by a digest of (the state before
//! the step, the instruction after substitution, the content of its sources), in
//! `<images root>/build-cache/index.json`, written atomically. An entry whose blob has
//! left the content store is a miss.

use super::error::BuildError;
use crate::engine::image::digest::Digest;
use crate::engine::image::store::ContentStore;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A cached step result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cached {
    pub layer: String,
    pub size: u64,
    pub diff_id: String,
    /// When the layer was first made (RFC 3339); the history entry keeps it.
    pub created: String,
}

/// The build cache of one image store.
pub struct Cache {
    index: PathBuf,
    seq: AtomicU64,
}

impl Cache {
    /// The cache under `root` (created on first write).
    pub fn open(root: &Path) -> Cache {
        Cache {
            index: root.join("build-cache").join("index.json"),
            seq: AtomicU64::new(0),
        }
    }

    fn err(&self, op: &'static str) -> impl FnOnce(io::Error) -> BuildError + use<> {
        let path = self.index.clone();
        move |source| BuildError::Cache { path, op, source }
    }

    fn load(&self) -> Result<BTreeMap<String, Cached>, BuildError> {
        match fs::read(&self.index) {
            // A corrupt index is an empty cache, rewritten on the next store.
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(self.err("read")(e)),
        }
    }

    /// The result cached for `key`, if its layer blob is still in `store`.
    pub fn get(&self, key: &Digest, store: &ContentStore) -> Result<Option<Cached>, BuildError> {
        let hit = self.load()?.remove(key.hex());
        Ok(hit.filter(|c| {
            c.layer.parse::<Digest>().is_ok_and(|d| store.contains(&d))
                && c.diff_id.parse::<Digest>().is_ok()
        }))
    }

    /// Remember `value` for `key`.
    pub fn put(&self, key: &Digest, value: Cached) -> Result<(), BuildError> {
        let mut all = self.load()?;
        all.insert(key.hex().to_owned(), value);
        let dir = self.index.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(self.err("create directory"))?;
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!("index.json.tmp-{}-{n}", std::process::id()));
        let bytes = serde_json::to_vec_pretty(&all).unwrap_or_default();
        let result = (|| {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &self.index)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(self.err("write"))
    }
}

/// `secs` since the Unix epoch as RFC 3339 UTC (`2024-05-01T12:00:00Z`).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_714_564_800), "2024-05-01T12:00:00Z");
    }

    #[test]
    fn missing_blobs_are_misses() {
        let root = std::env::temp_dir().join(format!("orch-build-{}-cache", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let store = ContentStore::open(&root.join("content")).unwrap();
        let cache = Cache::open(&root);
        let blob = b"layer".to_vec();
        let d = Digest::of(&blob);
        let key = Digest::of(b"key");
        let entry = Cached {
            layer: d.to_string(),
            size: 5,
            diff_id: d.to_string(),
            created: rfc3339(0),
        };
        cache.put(&key, entry.clone()).unwrap();
        assert_eq!(
            cache.get(&key, &store).unwrap(),
            None,
            "blob not in the store"
        );
        store.ingest(&d, None, &mut &blob[..]).unwrap();
        assert_eq!(cache.get(&key, &store).unwrap(), Some(entry));
        store.remove(&d).unwrap();
        assert_eq!(cache.get(&key, &store).unwrap(), None);
        fs::remove_dir_all(&root).unwrap();
    }
}
