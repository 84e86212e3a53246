//! Integration tests of the compose crate, in one test binary.

mod corpus;
mod errors;
mod props;
mod syntaxes;

use std::path::PathBuf;

/// A temporary project directory with the given files; removed on drop.
pub struct Dir(pub PathBuf);

impl Dir {
    pub fn new(files: &[(&str, &str)]) -> Dir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("orch-compose-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        Dir(dir)
    }

    pub fn options(&self, files: &[&str]) -> compose::Options {
        compose::Options {
            files: files.iter().map(PathBuf::from).collect(),
            working_dir: self.0.clone(),
            ..compose::Options::default()
        }
    }

    pub fn load(&self, files: &[&str]) -> Result<compose::Project, compose::Error> {
        compose::load(&self.options(files))
    }

    /// Load expecting failure; the diagnostics.
    pub fn errors(&self, files: &[&str]) -> Vec<compose::Diagnostic> {
        match self.load(files) {
            Ok(p) => panic!("expected errors, loaded {:#?}", p.spec),
            Err(compose::Error::Invalid { diagnostics }) => diagnostics,
            Err(e) => panic!("unexpected error {e}"),
        }
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}
