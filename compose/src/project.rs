//! A project: which files, which variables, which name, which profiles — and the
//! whole pipeline from files to a validated [`StackSpec`].

use crate::de::{Sink, from_node};
use crate::diag::{Diagnostic, Pos, Severity};
use crate::env::Env;
use crate::load::{Loader, SECTIONS, absolute};
use crate::merge::{finish, merge};
use crate::validate::{pos_of, validate};
use crate::yaml::{Kind, Node};
use crate::{Error, dotenv};
use api::StackSpec;
use api::stack::{FileObjectSpec, NetworkSpec};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// File names tried, in order, when no file is given.
pub const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];
/// Override files loaded after a default file found in the same directory.
pub const OVERRIDE_FILES: [&str; 4] = [
    "compose.override.yaml",
    "compose.override.yml",
    "docker-compose.override.yaml",
    "docker-compose.override.yml",
];

/// What to load and with which settings (`orch config` flags).
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `-f` files, in order; empty: `COMPOSE_FILE` or the default names.
    pub files: Vec<PathBuf>,
    /// Directory relative paths on the command line are taken against.
    pub working_dir: PathBuf,
    /// `--project-directory`; default: the first file's directory.
    pub project_directory: Option<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--env-file`s; default: the project directory's `.env`.
    pub env_files: Vec<PathBuf>,
    /// `--profile`s; default: `COMPOSE_PROFILES`.
    pub profiles: Vec<String>,
    /// The process environment.
    pub environment: BTreeMap<String, String>,
    /// Report references to undefined networks, volumes, secrets, configs and
    /// services as warnings instead of errors (for fragments and loader fixtures).
    pub skip_consistency: bool,
}

/// A loaded, valid project.
#[derive(Clone, Debug)]
pub struct Project {
    pub spec: StackSpec,
    /// Files loaded, in order.
    pub files: Vec<PathBuf>,
    pub warnings: Vec<Diagnostic>,
}

fn fail(diags: Vec<Diagnostic>) -> Error {
    Error::Invalid { diagnostics: diags }
}

/// Lowercase, keep `[a-z0-9_-]`, drop leading `-`/`_` (compose's rule for names
/// derived from directories).
pub fn normalize_project_name(raw: &str) -> String {
    let s: String = raw
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    s.trim_start_matches(['_', '-']).to_owned()
}

/// Why a project name is not valid, if it is not.
pub fn check_project_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("project name must not be empty".into());
    }
    let first = name.chars().next().unwrap_or('-');
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !ok_chars || !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err(format!(
            "invalid project name {name:?}: use lowercase letters, digits, '-' and '_', starting with a letter or digit"
        ));
    }
    Ok(())
}

fn find_default(dir: &Path) -> Option<(PathBuf, Option<PathBuf>)> {
    let mut d = Some(dir);
    while let Some(dir) = d {
        for name in DEFAULT_FILES {
            let f = dir.join(name);
            if f.is_file() {
                let over = OVERRIDE_FILES
                    .iter()
                    .map(|o| dir.join(o))
                    .find(|o| o.is_file());
                return Some((f, over));
            }
        }
        d = dir.parent();
    }
    None
}

/// Load, merge, type and validate a project.
pub fn load(opts: &Options) -> Result<Project, Error> {
    let mut diags = Vec::new();
    let cwd = &opts.working_dir;
    // Variables from the working directory's .env may name the files (COMPOSE_FILE).
    let mut pre_env = Env {
        process: opts.environment.clone(),
        files: BTreeMap::new(),
    };
    if opts.files.is_empty() && opts.env_files.is_empty() && cwd.join(".env").is_file() {
        pre_env.read_dotenv(&cwd.join(".env"), &mut diags);
    }
    let files: Vec<PathBuf> = if !opts.files.is_empty() {
        opts.files.iter().map(|f| absolute(cwd, f)).collect()
    } else if let Some(list) = pre_env.get("COMPOSE_FILE").filter(|l| !l.is_empty()) {
        let sep = pre_env
            .get("COMPOSE_PATH_SEPARATOR")
            .unwrap_or_else(|| ":".into());
        list.split(sep.as_str())
            .map(|f| absolute(cwd, Path::new(f)))
            .collect()
    } else {
        match find_default(cwd) {
            Some((f, over)) => std::iter::once(f).chain(over).collect(),
            None => return Err(Error::NoFile { dir: cwd.clone() }),
        }
    };
    let project_dir = match &opts.project_directory {
        Some(d) => absolute(cwd, d),
        None => files[0].parent().unwrap_or(Path::new("/")).to_owned(),
    };
    let mut env = Env {
        process: opts.environment.clone(),
        files: BTreeMap::new(),
    };
    if opts.env_files.is_empty() {
        let dotenv = project_dir.join(".env");
        if dotenv.is_file() {
            env.read_dotenv(&dotenv, &mut diags);
        }
    } else {
        for f in &opts.env_files {
            env.read_dotenv(&absolute(cwd, f), &mut diags);
        }
    }
    let mut loader = Loader::new(env.get("HOME"), cwd);
    let mut root: Option<Node> = None;
    for f in &files {
        if let Some(doc) = loader.file(f, &project_dir, &env, &mut Vec::new()) {
            root = Some(match root {
                Some(r) => merge(r, doc, ""),
                None => doc,
            });
        }
    }
    diags.append(&mut loader.diags);
    let Some(mut root) = root else {
        return Err(fail(diags));
    };
    finish(&mut root);

    let name = project_name(opts, &env, &root, &project_dir, &mut diags);
    let profiles: Vec<String> = if opts.profiles.is_empty() {
        env.get("COMPOSE_PROFILES")
            .map(|p| {
                p.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    } else {
        opts.profiles.clone()
    };
    let disabled = apply_profiles(&mut root, &profiles);
    resolve_environment(&mut root, &env, &mut diags);

    let sink = Sink::default();
    let mut spec = StackSpec {
        name: name.clone(),
        ..StackSpec::default()
    };
    if let Some(entries) = root.as_map() {
        for e in entries {
            let section = e.key.as_str();
            if section == "models" {
                if let Some(v) = from_node(&e.value, section, &sink) {
                    spec.models = v;
                }
                continue;
            }
            if section.starts_with("x-") {
                if let Some(v) = from_node(&e.value, section, &sink) {
                    spec.extensions.insert(e.key.clone(), v);
                }
                continue;
            }
            if !SECTIONS.contains(&section) {
                continue;
            }
            let Some(items) = e.value.as_map() else {
                if !e.value.is_null() {
                    diags.push(Diagnostic::error(
                        &e.value.pos,
                        section,
                        format!(
                            "expected a mapping of {section}, found {}",
                            e.value.type_name()
                        ),
                    ));
                }
                continue;
            };
            for item in items {
                let path = format!("{section}.{}", item.key);
                let k = item.key.clone();
                match section {
                    "services" => {
                        if let Some(v) = from_node(&item.value, &path, &sink) {
                            spec.services.insert(k, v);
                        }
                    }
                    "networks" => {
                        if let Some(v) = from_node(&item.value, &path, &sink) {
                            spec.networks.insert(k, v);
                        }
                    }
                    "volumes" => {
                        if let Some(v) = from_node(&item.value, &path, &sink) {
                            spec.volumes.insert(k, v);
                        }
                    }
                    "secrets" => {
                        if let Some(v) = from_node(&item.value, &path, &sink) {
                            spec.secrets.insert(k, v);
                        }
                    }
                    _ => {
                        if let Some(v) = from_node(&item.value, &path, &sink) {
                            spec.configs.insert(k, v);
                        }
                    }
                }
            }
        }
    }
    diags.extend(sink.into_inner());
    apply_defaults(&mut spec);
    let mut checks = validate(&spec, &root, &disabled);
    checks.extend(check_resources(&spec, &root));
    if opts.skip_consistency {
        for d in &mut checks {
            d.severity = Severity::Warning;
        }
    }
    diags.extend(checks);
    if diags.iter().any(|d| d.severity == Severity::Error) {
        return Err(fail(diags));
    }
    Ok(Project {
        spec,
        files,
        warnings: diags,
    })
}

fn project_name(
    opts: &Options,
    env: &Env,
    root: &Node,
    project_dir: &Path,
    diags: &mut Vec<Diagnostic>,
) -> String {
    let explicit = opts.project_name.clone().map(|n| (n, "-p")).or_else(|| {
        env.get("COMPOSE_PROJECT_NAME")
            .filter(|n| !n.is_empty())
            .map(|n| (n, "COMPOSE_PROJECT_NAME"))
    });
    if let Some((n, source)) = explicit {
        if let Err(e) = check_project_name(&n) {
            diags.push(Diagnostic::error(&Pos::file(&Arc::from(source)), "", e));
        }
        return n;
    }
    if let Some(node) = root.get("name") {
        let n = node.as_str().unwrap_or_default().to_owned();
        if let Err(e) = check_project_name(&n) {
            diags.push(Diagnostic::error(&node.pos, "name", e));
        }
        return n;
    }
    let dir = project_dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = normalize_project_name(&dir);
    if let Err(e) = check_project_name(&n) {
        diags.push(
            Diagnostic::error(
                &Pos::file(&Arc::from(project_dir.display().to_string())),
                "",
                format!("cannot derive a project name from the directory: {e}"),
            )
            .with_hint("set `name:` in the compose file or pass -p NAME"),
        );
    }
    n
}

/// Remove services whose profiles are all inactive; returns them with their profiles.
fn apply_profiles(root: &mut Node, active: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut disabled = BTreeMap::new();
    let Some(Kind::Map(services)) = root.get_mut("services").map(|s| &mut s.kind) else {
        return disabled;
    };
    services.retain(|e| {
        let profiles: Vec<String> = match e.value.get("profiles").map(|p| &p.kind) {
            Some(Kind::Seq(items)) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        let enabled =
            profiles.is_empty() || active.iter().any(|a| a == "*" || profiles.contains(a));
        if !enabled {
            disabled.insert(e.key.clone(), profiles);
        }
        enabled
    });
    disabled
}

/// Fold `env_file` into `environment`, `label_file` into `labels`, and resolve bare
/// `environment` keys from the project's variables.
fn resolve_environment(root: &mut Node, env: &Env, diags: &mut Vec<Diagnostic>) {
    let Some(Kind::Map(services)) = root.get_mut("services").map(|s| &mut s.kind) else {
        return;
    };
    for svc in services.iter_mut() {
        let name = svc.key.clone();
        let s = &mut svc.value;
        let mut from_files: Vec<(String, String, Pos)> = Vec::new();
        if let Some(files) = s.remove("env_file")
            && let Kind::Seq(items) = &files.kind
        {
            for (i, item) in items.iter().enumerate() {
                let Some(path) = item.get("path").and_then(Node::as_str) else {
                    continue;
                };
                let required = item
                    .get("required")
                    .and_then(Node::as_str)
                    .is_none_or(|r| r != "false");
                let p = format!("services.{name}.env_file[{i}]");
                match std::fs::read_to_string(path) {
                    Ok(text) => match dotenv::parse(&text, &|k| env.get(k)) {
                        Ok(pairs) => from_files
                            .extend(pairs.into_iter().map(|(k, v)| (k, v, item.pos.clone()))),
                        Err(e) => diags.push(Diagnostic::error(
                            &item.pos,
                            &p,
                            format!("invalid env file {path}: line {}: {}", e.line, e.message),
                        )),
                    },
                    Err(_) if !required => {}
                    Err(e) => diags.push(
                        Diagnostic::error(&item.pos, &p, format!("env file {path} not found: {e}"))
                            .with_hint("create it, or mark it optional with `required: false`"),
                    ),
                }
            }
        }
        let mut labels_from_files: Vec<(String, String, Pos)> = Vec::new();
        if let Some(files) = s.remove("label_file")
            && let Kind::Seq(items) = &files.kind
        {
            for item in items {
                let Some(p) = item.as_str() else { continue };
                let path = PathBuf::from(p);
                match std::fs::read_to_string(&path) {
                    Ok(text) => match dotenv::parse(&text, &|_| None) {
                        Ok(pairs) => labels_from_files
                            .extend(pairs.into_iter().map(|(k, v)| (k, v, item.pos.clone()))),
                        Err(e) => diags.push(Diagnostic::error(
                            &item.pos,
                            &format!("services.{name}.label_file"),
                            format!("invalid label file {p}: line {}: {}", e.line, e.message),
                        )),
                    },
                    Err(e) => diags.push(Diagnostic::error(
                        &item.pos,
                        &format!("services.{name}.label_file"),
                        format!("label file {p} not found: {e}"),
                    )),
                }
            }
        }
        fold(s, "environment", from_files);
        fold(s, "labels", labels_from_files);
        if let Some(Kind::Map(vars)) = s.get_mut("environment").map(|e| &mut e.kind) {
            for v in vars.iter_mut() {
                if v.value.is_null()
                    && let Some(val) = env.get(&v.key)
                {
                    let pos = v.value.pos.clone();
                    v.value = Node::string(val, pos);
                }
            }
        }
    }
}

/// Put `pairs` under `key` of `service` without overriding what is already there.
fn fold(service: &mut Node, key: &str, pairs: Vec<(String, String, Pos)>) {
    if pairs.is_empty() {
        return;
    }
    if service.get(key).is_none_or(Node::is_null) {
        service.set(key, Node::new(Kind::Map(Vec::new()), service.pos.clone()));
    }
    let Some(target) = service.get_mut(key) else {
        return;
    };
    let Kind::Map(entries) = &mut target.kind else {
        return;
    };
    let explicit: Vec<String> = entries.iter().map(|e| e.key.clone()).collect();
    for (k, v, pos) in pairs {
        if explicit.contains(&k) {
            continue;
        }
        let value = Node::string(v, pos.clone());
        match entries.iter_mut().find(|e| e.key == k) {
            Some(e) => e.value = value,
            None => entries.push(crate::yaml::Entry {
                key: k,
                key_pos: pos,
                value,
            }),
        }
    }
}

/// Resource names (`<project>_<key>`), and the implicit `default` network.
fn apply_defaults(spec: &mut StackSpec) {
    let mut uses_default = false;
    for s in spec.services.values_mut() {
        if s.network_mode.is_none() && s.networks.is_empty() {
            s.networks.insert("default".into(), None);
        }
        uses_default |= s.networks.contains_key("default");
    }
    if uses_default && !spec.networks.contains_key("default") {
        spec.networks
            .insert("default".into(), NetworkSpec::default());
    }
    let project = spec.name.clone();
    let name = |key: &str, current: &mut String, external: bool| {
        if current.is_empty() {
            *current = if external {
                key.to_owned()
            } else {
                format!("{project}_{key}")
            };
        }
    };
    for (k, n) in &mut spec.networks {
        name(k, &mut n.name, n.external);
    }
    for (k, v) in &mut spec.volumes {
        name(k, &mut v.name, v.external);
    }
    for (k, o) in spec.secrets.iter_mut().chain(spec.configs.iter_mut()) {
        name(k, &mut o.name, o.external);
    }
}

/// Top-level resources that contradict themselves.
fn check_resources(spec: &StackSpec, root: &Node) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut external_only = |section: &str, key: &str, external: bool, configured: bool| {
        if external && configured {
            let keys = [section, key];
            diags.push(
                Diagnostic::error(
                    &pos_of(root, &keys),
                    &keys.join("."),
                    "an external resource cannot also be configured here",
                )
                .with_hint("keep `external: true` and `name:` only"),
            );
        }
    };
    for (k, n) in &spec.networks {
        let configured = n.driver.is_some() || n.ipam.is_some() || !n.driver_opts.is_empty();
        external_only("networks", k, n.external, configured);
    }
    for (k, v) in &spec.volumes {
        external_only(
            "volumes",
            k,
            v.external,
            v.driver.is_some() || !v.driver_opts.is_empty(),
        );
    }
    for (section, objects) in [("secrets", &spec.secrets), ("configs", &spec.configs)] {
        for (k, o) in objects {
            let FileObjectSpec {
                file,
                environment,
                content,
                external,
                ..
            } = o;
            let sources = [
                file.is_some(),
                environment.is_some(),
                content.is_some(),
                *external,
            ]
            .iter()
            .filter(|b| **b)
            .count();
            let keys = [section, k.as_str()];
            if sources == 0 {
                diags.push(Diagnostic::error(
                    &pos_of(root, &keys),
                    &keys.join("."),
                    "no content: set one of `file`, `environment`, `external`".to_string()
                        + if section == "configs" {
                            " or `content`"
                        } else {
                            ""
                        },
                ));
            } else if sources > 1 {
                diags.push(Diagnostic::error(
                    &pos_of(root, &keys),
                    &keys.join("."),
                    "set only one of `file`, `environment`, `content`, `external`",
                ));
            } else if section == "secrets" && content.is_some() {
                diags.push(Diagnostic::error(
                    &pos_of(root, &keys),
                    &keys.join("."),
                    "secrets take no inline `content`; use `file` or `environment`",
                ));
            }
        }
    }
    diags
}
