//! Short syntax -> long syntax, on the positioned tree of one file.
//!
//! Every value is rewritten into the compose model's canonical long form (ports and
//! volumes as mappings, environment as a map, commands as lists, ...), relative host
//! paths are made absolute against the file's base directory, and keys are checked
//! against the spec. The tree keeps each value's position, so later stages (merge,
//! typing) still point at what the user wrote.
//!
//! [`service`] holds the rewrites of service keys; this file the machinery and the
//! top-level resources.

mod service;

use crate::diag::{Diagnostic, did_you_mean};
use crate::schema::Obj;
use crate::syntax;
use crate::yaml::{Entry, Kind, Node};
use std::path::{Component, Path, PathBuf};

/// Rewrites one file's tree; collects what it finds wrong.
pub struct Normalizer<'a> {
    /// Directory relative host paths are resolved against.
    pub base_dir: &'a Path,
    /// `$HOME`, for `~` in paths.
    pub home: Option<&'a str>,
    pub diags: &'a mut Vec<Diagnostic>,
}

pub(super) fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

pub(super) fn text(node: &Node) -> Option<String> {
    node.as_str().map(str::to_owned)
}

pub(super) fn map(pos: &crate::diag::Pos, entries: Vec<(&str, Node)>) -> Node {
    Node::new(
        Kind::Map(
            entries
                .into_iter()
                .map(|(k, v)| Entry {
                    key: k.to_owned(),
                    key_pos: pos.clone(),
                    value: v,
                })
                .collect(),
        ),
        pos.clone(),
    )
}

/// Lexically clean an absolute path (`a/./b/../c` -> `a/c`).
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

impl Normalizer<'_> {
    pub(super) fn error(&mut self, node: &Node, path: &str, message: impl Into<String>) {
        self.diags.push(Diagnostic::error(&node.pos, path, message));
    }

    /// Resolve a host path written in this file.
    pub fn resolve(&self, p: &str) -> String {
        if let Some(rest) = p.strip_prefix('~')
            && let Some(home) = self.home
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return format!("{home}{rest}");
        }
        if p.starts_with('/') || syntax::is_windows_path(p) {
            return p.to_owned();
        }
        clean(&self.base_dir.join(p)).to_string_lossy().into_owned()
    }

    /// Make the host path under `key` of `node` absolute, in place; false when there is
    /// no such scalar.
    pub(super) fn resolve_at(&self, node: &mut Node, key: &str) -> bool {
        let Some(n) = node.get_mut(key) else {
            return false;
        };
        let Some(resolved) = n.as_str().map(|t| self.resolve(t)) else {
            return false;
        };
        let pos = n.pos.clone();
        *n = Node::string(resolved, pos);
        true
    }

    /// Check that `node` is a mapping with only `obj`'s keys; drop and report others.
    /// Returns false (after reporting) when it is not a mapping.
    pub(super) fn keys(&mut self, node: &mut Node, obj: Obj, path: &str) -> bool {
        if node.is_null() {
            node.kind = Kind::Map(Vec::new());
        }
        let Kind::Map(entries) = &mut node.kind else {
            let found = node.type_name();
            self.error(
                node,
                path,
                format!("{} must be a mapping, found {found}", obj.noun()),
            );
            return false;
        };
        let allowed = obj.keys();
        let mut bad = Vec::new();
        let mut dropped = Vec::new();
        entries.retain(|e| {
            let extension = obj.allows_extensions() && e.key.starts_with("x-");
            if extension && !obj.keeps_extensions() {
                dropped.push((e.key.clone(), e.key_pos.clone()));
                return false;
            }
            let ok = allowed.contains(&e.key.as_str()) || extension;
            if !ok {
                bad.push((e.key.clone(), e.key_pos.clone()));
            }
            ok
        });
        for (key, pos) in dropped {
            self.diags.push(Diagnostic::warning(
                &pos,
                &child(path, &key),
                format!("extension {key:?} in {} is not kept (orch keeps x-* keys at the top level and in services, build, deploy, mounts, networks, volumes, secrets and configs)", obj.noun()),
            ));
        }
        for (key, pos) in bad {
            let mut d = Diagnostic::error(
                &pos,
                &child(path, &key),
                format!("unknown key {key:?} in {}", obj.noun()),
            );
            if let Some(s) = did_you_mean(&key, allowed.iter().copied()) {
                d = d.with_hint(format!("did you mean {s:?}?"));
            } else if key.starts_with('x') || key.starts_with('X') {
                d = d.with_hint("extension keys start with \"x-\"");
            }
            self.diags.push(d);
        }
        true
    }

    pub(super) fn each_value(
        &mut self,
        node: &mut Node,
        key: &str,
        path: &str,
        f: impl Fn(&mut Self, &mut Node, &str),
    ) {
        if let Some(v) = node.get_mut(key) {
            f(self, v, &child(path, key));
        }
    }

    /// A scalar becomes a one-item list.
    pub(super) fn string_list(&mut self, node: &mut Node, _path: &str) {
        if let Kind::Scalar { .. } = node.kind {
            let item = node.clone();
            node.kind = Kind::Seq(vec![item]);
        }
    }

    /// A list of `KEY=VALUE` becomes a map; `KEY` alone maps to `bare`.
    pub(super) fn dict(&mut self, node: &mut Node, path: &str, bare_is_null: bool) {
        match &mut node.kind {
            Kind::Seq(items) => {
                let mut entries: Vec<Entry> = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let Some(t) = item.as_str() else {
                        let p = format!("{path}[{i}]");
                        self.diags.push(Diagnostic::error(
                            &item.pos,
                            &p,
                            format!("expected KEY=VALUE, found {}", item.type_name()),
                        ));
                        continue;
                    };
                    let (k, value) = match t.split_once('=') {
                        Some((k, v)) => (k.to_owned(), Node::string(v, item.pos.clone())),
                        None if bare_is_null => {
                            (t.to_owned(), Node::new(Kind::Null, item.pos.clone()))
                        }
                        None => (t.to_owned(), Node::string("", item.pos.clone())),
                    };
                    entries.retain(|e| e.key != k);
                    entries.push(Entry {
                        key: k,
                        key_pos: item.pos.clone(),
                        value,
                    });
                }
                node.kind = Kind::Map(entries);
            }
            Kind::Map(entries) => {
                if !bare_is_null {
                    for e in entries.iter_mut().filter(|e| e.value.is_null()) {
                        let pos = e.value.pos.clone();
                        e.value = Node::string("", pos);
                    }
                }
            }
            Kind::Null => {}
            _ => {
                let found = node.type_name();
                self.error(
                    node,
                    path,
                    format!("expected a mapping or a list of KEY=VALUE, found {found}"),
                );
            }
        }
    }

    /// A scalar that is not already an integer is converted with `convert` (a size or a
    /// duration into its integer form).
    pub(super) fn number_from(
        &mut self,
        v: &mut Node,
        p: &str,
        expected: &str,
        convert: impl Fn(&str) -> Option<String>,
    ) {
        let Some(t) = v.as_str() else { return };
        if t.trim().parse::<i64>().is_ok() {
            return;
        }
        match convert(t) {
            Some(n) => {
                let pos = v.pos.clone();
                *v = Node::string(n, pos);
            }
            None => self.error(v, p, format!("expected {expected}, found {t:?}")),
        }
    }

    /// A list of names becomes a map from each name to `value`.
    pub(super) fn names_to_map(
        &mut self,
        v: &mut Node,
        p: &str,
        what: &str,
        value: impl Fn(&crate::diag::Pos) -> Node,
    ) {
        let Kind::Seq(items) = &v.kind else { return };
        let mut entries = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item.as_str() {
                Some(name) => entries.push(Entry {
                    key: name.to_owned(),
                    key_pos: item.pos.clone(),
                    value: value(&item.pos),
                }),
                None => self.diags.push(Diagnostic::error(
                    &item.pos,
                    &format!("{p}[{i}]"),
                    format!("expected {what}, found {}", item.type_name()),
                )),
            }
        }
        v.kind = Kind::Map(entries);
    }

    /// A string command becomes its shell words.
    pub(super) fn command(&mut self, node: &mut Node, path: &str) {
        if let Kind::Scalar { text, .. } = &node.kind {
            match syntax::split_shell(text) {
                Ok(words) => {
                    let pos = node.pos.clone();
                    node.kind = Kind::Seq(
                        words
                            .into_iter()
                            .map(|w| Node::string(w, pos.clone()))
                            .collect(),
                    );
                }
                Err(e) => self.error(node, path, format!("cannot split the command: {e}")),
            }
        }
    }

    /// Apply `f` to each item of a list (reporting a non-list).
    pub(super) fn items(
        &mut self,
        node: &mut Node,
        path: &str,
        f: impl Fn(&mut Self, &mut Node, &str),
    ) {
        match &mut node.kind {
            Kind::Seq(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    f(self, item, &format!("{path}[{i}]"));
                }
            }
            Kind::Null => {}
            _ => {
                let found = node.type_name();
                self.error(node, path, format!("expected a list, found {found}"));
            }
        }
    }

    /// Apply `f` to each value of a mapping.
    pub(super) fn values(
        &mut self,
        node: &mut Node,
        path: &str,
        f: impl Fn(&mut Self, &mut Node, &str),
    ) {
        if node.is_null() {
            node.kind = Kind::Map(Vec::new());
        }
        match &mut node.kind {
            Kind::Map(entries) => {
                for e in entries.iter_mut() {
                    f(self, &mut e.value, &child(path, &e.key));
                }
            }
            _ => {
                let found = node.type_name();
                self.error(node, path, format!("expected a mapping, found {found}"));
            }
        }
    }

    /// Normalize a whole compose file.
    pub fn file(&mut self, doc: &mut Node) {
        if !self.keys(doc, Obj::Top, "") {
            return;
        }
        if let Some(v) = doc.get("version") {
            let d = Diagnostic::warning(
                &v.pos,
                "version",
                "the top-level `version` key is obsolete and is ignored",
            );
            self.diags.push(d);
        }
        doc.remove("version");
        self.each_value(doc, "services", "", |n, v, p| {
            n.values(v, p, |n, s, p| n.service(s, p))
        });
        self.each_value(doc, "networks", "", |n, v, p| {
            n.values(v, p, |n, s, p| n.network(s, p))
        });
        self.each_value(doc, "volumes", "", |n, v, p| {
            n.values(v, p, |n, s, p| n.volume(s, p))
        });
        self.each_value(doc, "secrets", "", |n, v, p| {
            n.values(v, p, |n, s, p| n.file_object(s, p, Obj::Secret))
        });
        self.each_value(doc, "configs", "", |n, v, p| {
            n.values(v, p, |n, s, p| n.file_object(s, p, Obj::Config))
        });
    }

    /// Normalize one service.
    pub fn service(&mut self, node: &mut Node, path: &str) {
        if !self.keys(node, Obj::Service, path) {
            return;
        }
        let Kind::Map(entries) = &mut node.kind else {
            return;
        };
        for e in entries.iter_mut() {
            let p = child(path, &e.key);
            let v = &mut e.value;
            if v.tag == Some(crate::yaml::Tag::Reset) {
                continue;
            }
            match e.key.as_str() {
                "build" => self.build(v, &p),
                "command" | "entrypoint" => self.command(v, &p),
                "configs" | "secrets" => self.items(v, &p, |n, i, p| n.file_ref(i, p)),
                "depends_on" => self.depends_on(v, &p),
                "deploy" => self.deploy(v, &p),
                "devices" => self.items(v, &p, |n, i, p| n.device(i, p)),
                "dns" | "dns_search" | "dns_opt" | "tmpfs" => self.string_list(v, &p),
                "label_file" => {
                    self.string_list(v, &p);
                    if let Kind::Seq(items) = &mut v.kind {
                        for item in items.iter_mut() {
                            if let Some(t) = item.as_str() {
                                let resolved = self.resolve(t);
                                let pos = item.pos.clone();
                                *item = Node::string(resolved, pos);
                            }
                        }
                    }
                }
                "env_file" => {
                    self.string_list(v, &p);
                    self.items(v, &p, |n, i, p| n.env_file(i, p));
                }
                "environment" => self.dict(v, &p, true),
                "labels" | "annotations" | "sysctls" | "storage_opt" => self.dict(v, &p, false),
                "extends" => {
                    if v.as_str().is_some() {
                        let pos = v.pos.clone();
                        *v = map(&pos, vec![("service", v.clone())]);
                    }
                    self.keys(v, Obj::Extends, &p);
                }
                "extra_hosts" => self.extra_hosts(v, &p),
                "healthcheck" => self.healthcheck(v, &p),
                "logging" if self.keys(v, Obj::Logging, &p) => {
                    self.each_value(v, "options", &p, |n, o, p| n.dict(o, p, false));
                }
                "networks" => self.service_networks(v, &p),
                "ports" => self.ports(v, &p),
                "post_start" | "pre_stop" => self.items(v, &p, |n, i, p| n.hook(i, p)),
                "ulimits" => self.values(v, &p, |n, u, p| n.ulimit(u, p)),
                "memswap_limit" => self.number_from(v, &p, "a size such as 1g, or -1", |t| {
                    api::units::parse_bytes(t).map(|b| b.0.to_string()).ok()
                }),
                "cpu_period" | "cpu_quota" | "cpu_rt_period" | "cpu_rt_runtime" => self
                    .number_from(v, &p, "microseconds or a duration such as 400ms", |t| {
                        api::units::parse_duration(t)
                            .map(|d| (d.0 / 1_000).to_string())
                            .ok()
                    }),
                "volumes" => self.items(v, &p, |n, i, p| n.mount(i, p)),
                _ => {}
            }
        }
    }

    /// `external: {name: x}` (old syntax) becomes `external: true` plus `name: x`.
    fn external(&mut self, node: &mut Node, p: &str) {
        let Some(ext) = node.get_mut("external") else {
            return;
        };
        if ext.as_map().is_none() {
            return;
        }
        let path = child(p, "external");
        if !self.keys(ext, Obj::External, &path) {
            return;
        }
        let name = ext.get("name").cloned();
        let pos = ext.pos.clone();
        *ext = Node::string("true", pos);
        if let Some(name) = name
            && node.get("name").is_none()
        {
            node.set("name", name);
        }
    }

    fn network(&mut self, node: &mut Node, p: &str) {
        if !self.keys(node, Obj::Network, p) {
            return;
        }
        self.external(node, p);
        self.each_value(node, "labels", p, |n, l, p| n.dict(l, p, false));
        self.each_value(node, "driver_opts", p, |n, l, p| n.dict(l, p, false));
        self.each_value(node, "ipam", p, |n, ipam, p| {
            if n.keys(ipam, Obj::Ipam, p) {
                n.each_value(ipam, "config", p, |n, c, p| {
                    n.items(c, p, |n, pool, p| {
                        n.keys(pool, Obj::IpamPool, p);
                    })
                });
            }
        });
    }

    fn volume(&mut self, node: &mut Node, p: &str) {
        if !self.keys(node, Obj::Volume, p) {
            return;
        }
        self.external(node, p);
        self.each_value(node, "labels", p, |n, l, p| n.dict(l, p, false));
        self.each_value(node, "driver_opts", p, |n, l, p| n.dict(l, p, false));
    }

    fn file_object(&mut self, node: &mut Node, p: &str, obj: Obj) {
        if !self.keys(node, obj, p) {
            return;
        }
        self.external(node, p);
        self.each_value(node, "labels", p, |n, l, p| n.dict(l, p, false));
        self.each_value(node, "driver_opts", p, |n, l, p| n.dict(l, p, false));
        self.resolve_at(node, "file");
    }
}

/// Build contexts that are not local directories.
pub fn is_remote_context(ctx: &str) -> bool {
    ctx.contains("://") || ctx.starts_with("git@") || ctx.starts_with("github.com/")
}
