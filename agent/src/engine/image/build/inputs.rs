//! What a build reads besides its stages: the Dockerfile (from the context, a path or
//! text) and the ignore file (`<Dockerfile>.dockerignore`, else the context's
//! `.dockerignore`), plus the scratch directory ADD extracts archives into, and the
//! clock (read only for new layers).

use super::cache::rfc3339;
use super::error::BuildError;
use super::ignore::Ignore;
use super::{BuildRequest, DockerfileSource};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The Dockerfile's name for messages, its text, and where its ignore file may be.
pub fn read_dockerfile(req: &BuildRequest) -> Result<(String, String, Vec<PathBuf>), BuildError> {
    let in_context = req.context.join(".dockerignore");
    let path = match &req.dockerfile {
        DockerfileSource::Text(t) => return Ok(("Dockerfile".into(), t.clone(), vec![in_context])),
        DockerfileSource::Default => req.context.join("Dockerfile"),
        DockerfileSource::Path(p) => req.context.join(p),
    };
    let text = fs::read_to_string(&path).map_err(|source| BuildError::ReadDockerfile {
        path: path.clone(),
        source,
    })?;
    let name = match &req.dockerfile {
        DockerfileSource::Path(p) => p.display().to_string(),
        _ => "Dockerfile".into(),
    };
    let mut own = path.into_os_string();
    own.push(".dockerignore");
    Ok((name, text, vec![PathBuf::from(own), in_context]))
}

/// The first ignore file that exists (`<Dockerfile>.dockerignore`, then the context's).
pub fn read_ignore(candidates: &[PathBuf]) -> Result<Option<Ignore>, BuildError> {
    for path in candidates {
        match fs::read_to_string(path) {
            Ok(text) => {
                return Ignore::parse(&text)
                    .map(Some)
                    .map_err(|source| BuildError::Ignore {
                        path: path.clone(),
                        source,
                    });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(BuildError::Context {
                    path: path.clone(),
                    source,
                });
            }
        }
    }
    Ok(None)
}

/// The current time, RFC 3339 (for the history of new layers).
pub fn now() -> String {
    rfc3339(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

/// A scratch directory removed on drop.
pub struct TmpDir(pub PathBuf);

impl TmpDir {
    /// A fresh directory under `<root>/build-tmp/`.
    pub fn new(root: &Path) -> io::Result<TmpDir> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let d = root
            .join("build-tmp")
            .join(format!("{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d)?;
        Ok(TmpDir(d))
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
