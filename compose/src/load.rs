//! Loading a project: files -> one normalized, merged tree.
//!
//! Each file is parsed, interpolated and normalized on its own (relative paths against
//! the project directory, or against its own directory for `extends` and `include`
//! targets), its `include`s and `extends` resolved, and then the files are merged in
//! order.

use crate::diag::{Diagnostic, Pos};
use crate::env::{Env, interpolate_tree};
use crate::merge::merge;
use crate::normalize::{Normalizer, clean};
use crate::yaml::{self, Entry, Kind, Node};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Sections whose entries are named resources.
pub const SECTIONS: [&str; 5] = ["services", "networks", "volumes", "secrets", "configs"];

/// Loads files and keeps what it found wrong.
pub struct Loader {
    pub diags: Vec<Diagnostic>,
    /// `extends` targets in other files, loaded once.
    cache: HashMap<PathBuf, Option<Node>>,
    home: Option<String>,
    cwd: PathBuf,
}

/// How a file is named in diagnostics: relative to `cwd` when below it.
fn display(path: &Path, cwd: &Path) -> Arc<str> {
    let shown = path.strip_prefix(cwd).unwrap_or(path);
    Arc::from(shown.display().to_string())
}

/// Make `p` absolute against `dir`.
pub fn absolute(dir: &Path, p: &Path) -> PathBuf {
    clean(&dir.join(p))
}

impl Loader {
    /// A loader; `home` expands `~` in host paths; files below `cwd` are named
    /// relative to it in diagnostics.
    pub fn new(home: Option<String>, cwd: &Path) -> Loader {
        Loader {
            diags: Vec::new(),
            cache: HashMap::new(),
            home,
            cwd: cwd.to_owned(),
        }
    }

    /// Read, parse, interpolate and normalize one file, without resolving includes or
    /// extends. Multiple YAML documents in the file are merged in order.
    fn read(&mut self, path: &Path, base_dir: &Path, env: &Env) -> Option<Node> {
        let file = display(path, &self.cwd);
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                self.diags.push(Diagnostic::error(
                    &Pos::file(&file),
                    "",
                    format!("cannot read the compose file: {e}"),
                ));
                return None;
            }
        };
        let docs = match yaml::parse(&file, &text) {
            Ok(d) => d,
            Err(d) => {
                self.diags.push(d);
                return None;
            }
        };
        let mut merged: Option<Node> = None;
        for mut doc in docs {
            if !matches!(doc.kind, Kind::Map(_)) {
                let found = doc.type_name();
                self.diags.push(Diagnostic::error(
                    &doc.pos,
                    "",
                    format!("a compose file must be a mapping, found {found}"),
                ));
                continue;
            }
            interpolate_tree(&mut doc, env, "", &mut self.diags);
            let mut n = Normalizer {
                base_dir,
                home: self.home.as_deref(),
                diags: &mut self.diags,
            };
            n.file(&mut doc);
            merged = Some(match merged {
                Some(m) => merge(m, doc, ""),
                None => doc,
            });
        }
        if merged.is_none() && !self.diags.iter().any(|d| d.pos.file == file) {
            self.diags.push(Diagnostic::error(
                &Pos::file(&file),
                "",
                "empty compose file",
            ));
        }
        merged
    }

    /// Load one file of a project with its includes and extends resolved.
    pub fn file(
        &mut self,
        path: &Path,
        base_dir: &Path,
        env: &Env,
        chain: &mut Vec<PathBuf>,
    ) -> Option<Node> {
        let mut doc = self.read(path, base_dir, env)?;
        if let Some(include) = doc.remove("include") {
            chain.push(path.to_owned());
            self.include(&mut doc, include, path, env, chain);
            chain.pop();
        }
        self.resolve_extends(&mut doc, path, env);
        Some(doc)
    }

    fn include(
        &mut self,
        doc: &mut Node,
        include: Node,
        path: &Path,
        env: &Env,
        chain: &mut Vec<PathBuf>,
    ) {
        let dir = path.parent().unwrap_or(Path::new("/")).to_owned();
        let items = match include.kind {
            Kind::Seq(items) => items,
            Kind::Null => Vec::new(),
            _ => vec![include],
        };
        for (i, item) in items.into_iter().enumerate() {
            let p = format!("include[{i}]");
            let (paths, env_files, project_dir) = match &item.kind {
                Kind::Scalar { text, .. } => (vec![text.clone()], Vec::new(), None),
                Kind::Map(entries) => {
                    let mut paths = Vec::new();
                    let mut env_files = Vec::new();
                    let mut project_dir = None;
                    for e in entries {
                        let strings = match &e.value.kind {
                            Kind::Scalar { text, .. } => vec![text.clone()],
                            Kind::Seq(v) => v
                                .iter()
                                .filter_map(|n| n.as_str().map(str::to_owned))
                                .collect(),
                            _ => Vec::new(),
                        };
                        match e.key.as_str() {
                            "path" => paths = strings,
                            "env_file" => env_files = strings,
                            "project_directory" => project_dir = strings.into_iter().next(),
                            other => {
                                let mut d = Diagnostic::error(
                                    &e.key_pos,
                                    &format!("{p}.{other}"),
                                    format!("unknown key {other:?} in an include entry"),
                                );
                                if let Some(s) = crate::diag::did_you_mean(
                                    other,
                                    crate::schema::Obj::Include.keys().iter().copied(),
                                ) {
                                    d = d.with_hint(format!("did you mean {s:?}?"));
                                }
                                self.diags.push(d);
                            }
                        }
                    }
                    (paths, env_files, project_dir)
                }
                _ => {
                    self.diags.push(Diagnostic::error(
                        &item.pos,
                        &p,
                        "an include entry is a path or a mapping with `path`",
                    ));
                    continue;
                }
            };
            if paths.is_empty() {
                self.diags.push(Diagnostic::error(
                    &item.pos,
                    &p,
                    "an include entry needs a `path`",
                ));
                continue;
            }
            if let Some(remote) = paths
                .iter()
                .find(|p| p.contains("://") || p.starts_with("git@") || p.starts_with("oci:"))
            {
                self.diags.push(
                    Diagnostic::error(
                        &item.pos,
                        &p,
                        format!("remote include {remote:?} cannot be loaded"),
                    )
                    .with_hint(
                        "orch includes local files only: check the file out and include its path",
                    ),
                );
                continue;
            }
            let files: Vec<PathBuf> = paths.iter().map(|f| absolute(&dir, Path::new(f))).collect();
            if let Some(cycle_at) = chain.iter().position(|c| files.contains(c)) {
                let mut names: Vec<String> = chain[cycle_at..]
                    .iter()
                    .map(|c| c.display().to_string())
                    .collect();
                names.push(chain[cycle_at].display().to_string());
                self.diags.push(Diagnostic::error(
                    &item.pos,
                    &p,
                    format!("include cycle detected: {}", names.join(" -> ")),
                ));
                continue;
            }
            let sub_dir = match &project_dir {
                Some(d) => absolute(&dir, Path::new(d)),
                None => files[0].parent().unwrap_or(Path::new("/")).to_owned(),
            };
            let mut sub_env = Env {
                process: env.process.clone(),
                files: env.files.clone(),
            };
            let dotenvs: Vec<PathBuf> = if env_files.is_empty() {
                let default = sub_dir.join(".env");
                if default.is_file() {
                    vec![default]
                } else {
                    Vec::new()
                }
            } else {
                env_files
                    .iter()
                    .map(|f| absolute(&dir, Path::new(f)))
                    .collect()
            };
            for f in dotenvs {
                sub_env.read_dotenv(&f, &mut self.diags);
            }
            let mut sub: Option<Node> = None;
            for f in &files {
                if let Some(n) = self.file(f, &sub_dir, &sub_env, chain) {
                    sub = Some(match sub {
                        Some(s) => merge(s, n, ""),
                        None => n,
                    });
                }
            }
            if let Some(sub) = sub {
                self.import(doc, sub, &files[0], &item.pos, &p);
            }
        }
    }

    /// Add the resources of an included project to `doc`; a resource defined on both
    /// sides must be identical.
    fn import(&mut self, doc: &mut Node, sub: Node, from: &Path, pos: &Pos, path: &str) {
        let Kind::Map(sub_entries) = sub.kind else {
            return;
        };
        for section in sub_entries {
            if !SECTIONS.contains(&section.key.as_str()) {
                continue;
            }
            let Kind::Map(resources) = section.value.kind else {
                continue;
            };
            if doc.get(&section.key).is_none() {
                doc.set(
                    &section.key,
                    Node::new(Kind::Map(Vec::new()), section.key_pos.clone()),
                );
            }
            let Some(target) = doc.get_mut(&section.key) else {
                continue;
            };
            if target.is_null() {
                target.kind = Kind::Map(Vec::new());
            }
            let Kind::Map(existing) = &mut target.kind else {
                continue;
            };
            for r in resources {
                match existing.iter().find(|e| e.key == r.key) {
                    Some(e) if same(&e.value, &r.value) => {}
                    Some(e) => self.diags.push(
                        Diagnostic::error(&e.key_pos, &format!("{}.{}", section.key, r.key), format!(
                            "{} {:?} is also defined by the included file {} ({path}), differently",
                            &section.key[..section.key.len() - 1],
                            r.key,
                            from.display()
                        ))
                        .with_hint(format!("included at {pos}: rename one of them, or extend the included one instead")),
                    ),
                    None => existing.push(r),
                }
            }
        }
    }

    /// Resolve `extends` of every service of `doc` (a file at `path`).
    fn resolve_extends(&mut self, doc: &mut Node, path: &Path, env: &Env) {
        let names: Vec<String> = doc
            .get("services")
            .and_then(Node::as_map)
            .map(|e| {
                e.iter()
                    .filter(|e| e.value.get("extends").is_some())
                    .map(|e| e.key.clone())
                    .collect()
            })
            .unwrap_or_default();
        for name in names {
            let mut chain = vec![(path.to_owned(), name.clone())];
            if let Some(resolved) = self.extended(doc, path, &name, &mut chain, env)
                && let Some(s) = doc.get_mut("services").and_then(|s| s.get_mut(&name))
            {
                *s = resolved;
            }
        }
    }

    /// The service `name` of `doc` with its `extends` chain merged in.
    fn extended(
        &mut self,
        doc: &Node,
        path: &Path,
        name: &str,
        chain: &mut Vec<(PathBuf, String)>,
        env: &Env,
    ) -> Option<Node> {
        let service = doc.get("services")?.get(name)?.clone();
        let Some(ext) = service.get("extends").cloned() else {
            return Some(service);
        };
        let mut service = service;
        service.remove("extends");
        let spath = format!("services.{name}.extends");
        let Some(base_name) = ext.get("service").and_then(Node::as_str).map(str::to_owned) else {
            self.diags.push(Diagnostic::error(
                &ext.pos,
                &spath,
                "extends needs a `service`",
            ));
            return None;
        };
        let (base_doc, base_path) = match ext.get("file").and_then(Node::as_str) {
            Some(f) => {
                let dir = path.parent().unwrap_or(Path::new("/"));
                let fpath = absolute(dir, Path::new(f));
                if !self.cache.contains_key(&fpath) {
                    self.cache.insert(fpath.clone(), None);
                    let fdir = fpath.parent().unwrap_or(Path::new("/")).to_owned();
                    let before = self.diags.len();
                    let loaded = self.read(&fpath, &fdir, env);
                    if loaded.is_none() && self.diags.len() > before {
                        let last = self.diags.len() - 1;
                        let d = &mut self.diags[last];
                        if d.pos.line == 0 {
                            *d = Diagnostic::error(
                                &ext.pos,
                                &spath,
                                format!("{} ({})", d.message, fpath.display()),
                            );
                        }
                    }
                    self.cache.insert(fpath.clone(), loaded);
                }
                (self.cache.get(&fpath).cloned().flatten()?, fpath)
            }
            None => (doc.clone(), path.to_owned()),
        };
        let key = (base_path.clone(), base_name.clone());
        if chain.contains(&key) {
            let mut names: Vec<String> = chain.iter().map(|(_, s)| s.clone()).collect();
            names.push(base_name.clone());
            self.diags.push(Diagnostic::error(
                &ext.pos,
                &spath,
                format!("circular reference with extends: {}", names.join(" -> ")),
            ));
            return None;
        }
        if base_doc
            .get("services")
            .and_then(|s| s.get(&base_name))
            .is_none()
        {
            let mut d = Diagnostic::error(
                &ext.pos,
                &spath,
                format!(
                    "extends names service {base_name:?}, which is not defined in {}",
                    base_path.display()
                ),
            );
            let names: Vec<&str> = base_doc
                .get("services")
                .and_then(Node::as_map)
                .map(|e| e.iter().map(|e| e.key.as_str()).collect())
                .unwrap_or_default();
            if let Some(s) = crate::diag::did_you_mean(&base_name, names) {
                d = d.with_hint(format!("did you mean {s:?}?"));
            }
            self.diags.push(d);
            return None;
        }
        chain.push(key);
        let base = self.extended(&base_doc, &base_path, &base_name, chain, env);
        chain.pop();
        let base = base?;
        Some(merge(base, service, "services.*"))
    }
}

/// Whether two trees are equal, positions aside.
pub fn same(a: &Node, b: &Node) -> bool {
    match (&a.kind, &b.kind) {
        (Kind::Null, Kind::Null) => true,
        (Kind::Scalar { text: x, .. }, Kind::Scalar { text: y, .. }) => x == y,
        (Kind::Seq(x), Kind::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Kind::Map(x), Kind::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|e: &Entry| y.iter().any(|f| f.key == e.key && same(&e.value, &f.value)))
        }
        _ => false,
    }
}
