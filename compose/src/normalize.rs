//! Short syntax -> long syntax, on the positioned tree of one file.
//!
//! Every value is rewritten into the compose model's canonical long form (ports and
//! volumes as mappings, environment as a map, commands as lists, ...), relative host
//! paths are made absolute against the file's base directory, and keys are checked
//! against the spec. The tree keeps each value's position, so later stages (merge,
//! typing) still point at what the user wrote.

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

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn text(node: &Node) -> Option<String> {
    node.as_str().map(str::to_owned)
}

fn map(pos: &crate::diag::Pos, entries: Vec<(&str, Node)>) -> Node {
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
    fn error(&mut self, node: &Node, path: &str, message: impl Into<String>) {
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

    /// Check that `node` is a mapping with only `obj`'s keys; drop and report others.
    /// Returns false (after reporting) when it is not a mapping.
    fn keys(&mut self, node: &mut Node, obj: Obj, path: &str) -> bool {
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
        entries.retain(|e| {
            let ok = allowed.contains(&e.key.as_str())
                || (obj.allows_extensions() && e.key.starts_with("x-"));
            if !ok {
                bad.push((e.key.clone(), e.key_pos.clone()));
            }
            ok
        });
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

    fn each_value(
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
    fn string_list(&mut self, node: &mut Node, _path: &str) {
        if let Kind::Scalar { .. } = node.kind {
            let item = node.clone();
            node.kind = Kind::Seq(vec![item]);
        }
    }

    /// A list of `KEY=VALUE` becomes a map; `KEY` alone maps to `bare`.
    fn dict(&mut self, node: &mut Node, path: &str, bare_is_null: bool) {
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

    /// A list of names becomes a map from each name to `value`.
    fn names_to_map(
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
    fn command(&mut self, node: &mut Node, path: &str) {
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
    fn items(&mut self, node: &mut Node, path: &str, f: impl Fn(&mut Self, &mut Node, &str)) {
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
    fn values(&mut self, node: &mut Node, path: &str, f: impl Fn(&mut Self, &mut Node, &str)) {
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
                "volumes" => self.items(v, &p, |n, i, p| n.mount(i, p)),
                _ => {}
            }
        }
    }

    fn build(&mut self, v: &mut Node, p: &str) {
        if v.as_str().is_some() {
            let pos = v.pos.clone();
            *v = map(&pos, vec![("context", v.clone())]);
        }
        if !self.keys(v, Obj::Build, p) {
            return;
        }
        if v.get("context").is_none() {
            let pos = v.pos.clone();
            v.set("context", Node::string(".", pos));
        }
        let ctx = v.get("context").and_then(text).unwrap_or_default();
        if !is_remote_context(&ctx) {
            let resolved = self.resolve(&ctx);
            if let Some(c) = v.get_mut("context") {
                let pos = c.pos.clone();
                *c = Node::string(resolved, pos);
            }
        }
        self.each_value(v, "args", p, |n, a, p| n.dict(a, p, true));
        self.each_value(v, "labels", p, |n, a, p| n.dict(a, p, false));
        self.each_value(v, "additional_contexts", p, |n, a, p| n.dict(a, p, false));
        self.each_value(v, "extra_hosts", p, |n, a, p| n.extra_hosts(a, p));
        self.each_value(v, "secrets", p, |n, a, p| {
            n.items(a, p, |n, i, p| n.file_ref(i, p))
        });
        self.each_value(v, "ulimits", p, |n, a, p| {
            n.values(a, p, |n, u, p| n.ulimit(u, p))
        });
        for key in [
            "ssh",
            "cache_from",
            "cache_to",
            "tags",
            "platforms",
            "entitlements",
        ] {
            self.each_value(v, key, p, |n, a, p| n.string_list(a, p));
        }
    }

    fn file_ref(&mut self, item: &mut Node, p: &str) {
        if item.as_str().is_some() {
            let pos = item.pos.clone();
            *item = map(&pos, vec![("source", item.clone())]);
        }
        if self.keys(item, Obj::FileRef, p) && item.get("source").is_none() {
            self.error(item, p, "a secret or config reference needs a `source`");
        }
    }

    fn depends_on(&mut self, v: &mut Node, p: &str) {
        if matches!(v.kind, Kind::Seq(_)) {
            self.names_to_map(v, p, "a service name", |pos| {
                map(
                    pos,
                    vec![
                        ("condition", Node::string("service_started", pos.clone())),
                        ("required", Node::string("true", pos.clone())),
                    ],
                )
            });
            return;
        }
        self.values(v, p, |n, d, p| {
            if n.keys(d, Obj::DependsOn, p) && d.get("condition").is_none() {
                let pos = d.pos.clone();
                d.set("condition", Node::string("service_started", pos));
            }
        });
    }

    fn deploy(&mut self, v: &mut Node, p: &str) {
        if !self.keys(v, Obj::Deploy, p) {
            return;
        }
        self.each_value(v, "labels", p, |n, l, p| n.dict(l, p, false));
        self.each_value(v, "placement", p, |n, pl, p| {
            if n.keys(pl, Obj::Placement, p) {
                n.each_value(pl, "preferences", p, |n, prefs, p| {
                    n.items(prefs, p, |n, pref, p| {
                        n.keys(pref, Obj::Preference, p);
                    })
                });
            }
        });
        self.each_value(v, "resources", p, |n, r, p| {
            if n.keys(r, Obj::Resources, p) {
                n.each_value(r, "limits", p, |n, l, p| {
                    n.keys(l, Obj::Limits, p);
                });
                n.each_value(r, "reservations", p, |n, l, p| {
                    n.keys(l, Obj::Reservations, p);
                });
            }
        });
        self.each_value(v, "restart_policy", p, |n, r, p| {
            n.keys(r, Obj::RestartPolicy, p);
        });
        for key in ["update_config", "rollback_config"] {
            self.each_value(v, key, p, |n, u, p| {
                n.keys(u, Obj::UpdateConfig, p);
            });
        }
    }

    fn device(&mut self, item: &mut Node, p: &str) {
        if let Some(t) = item.as_str() {
            match syntax::parse_device(t) {
                Ok((s, t, perm)) => {
                    let pos = item.pos.clone();
                    *item = map(
                        &pos,
                        vec![
                            ("source", Node::string(s, pos.clone())),
                            ("target", Node::string(t, pos.clone())),
                            ("permissions", Node::string(perm, pos.clone())),
                        ],
                    );
                }
                Err(e) => self.error(item, p, format!("invalid device {t:?}: {e}")),
            }
            return;
        }
        if self.keys(item, Obj::Device, p) {
            if item.get("source").is_none() {
                self.error(item, p, "a device needs a `source`");
            }
            let pos = item.pos.clone();
            if item.get("target").is_none() {
                let s = item
                    .get("source")
                    .cloned()
                    .unwrap_or_else(|| Node::string("", pos.clone()));
                item.set("target", s);
            }
            if item.get("permissions").is_none() {
                item.set("permissions", Node::string("rwm", pos));
            }
        }
    }

    fn env_file(&mut self, item: &mut Node, p: &str) {
        if item.as_str().is_some() {
            let pos = item.pos.clone();
            *item = map(
                &pos,
                vec![
                    ("path", item.clone()),
                    ("required", Node::string("true", pos.clone())),
                ],
            );
        }
        if !self.keys(item, Obj::EnvFile, p) {
            return;
        }
        match item.get("path").and_then(text) {
            Some(path) => {
                let resolved = self.resolve(&path);
                if let Some(n) = item.get_mut("path") {
                    let pos = n.pos.clone();
                    *n = Node::string(resolved, pos);
                }
            }
            None => self.error(item, p, "an env_file entry needs a `path`"),
        }
    }

    fn extra_hosts(&mut self, v: &mut Node, p: &str) {
        match &mut v.kind {
            Kind::Seq(items) => {
                let mut entries: Vec<Entry> = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let parsed = item
                        .as_str()
                        .ok_or_else(|| format!("expected NAME=IP, found {}", item.type_name()))
                        .and_then(syntax::parse_extra_host);
                    match parsed {
                        Ok((host, ip)) => {
                            let ipn = Node::string(ip, item.pos.clone());
                            if let Some(e) = entries.iter_mut().find(|e| e.key == host) {
                                if let Kind::Seq(ips) = &mut e.value.kind {
                                    ips.push(ipn);
                                }
                            } else {
                                entries.push(Entry {
                                    key: host,
                                    key_pos: item.pos.clone(),
                                    value: Node::new(Kind::Seq(vec![ipn]), item.pos.clone()),
                                });
                            }
                        }
                        Err(e) => {
                            self.diags
                                .push(Diagnostic::error(&item.pos, &format!("{p}[{i}]"), e))
                        }
                    }
                }
                v.kind = Kind::Map(entries);
            }
            Kind::Map(entries) => {
                for e in entries.iter_mut() {
                    if let Kind::Scalar { .. } = e.value.kind {
                        let ips = e
                            .value
                            .as_str()
                            .unwrap_or_default()
                            .split(',')
                            .map(|ip| {
                                Node::string(
                                    ip.trim().trim_start_matches('[').trim_end_matches(']'),
                                    e.value.pos.clone(),
                                )
                            })
                            .collect();
                        e.value.kind = Kind::Seq(ips);
                    }
                }
            }
            Kind::Null => {}
            _ => {
                let found = v.type_name();
                self.error(
                    v,
                    p,
                    format!("expected a mapping or a list of NAME=IP, found {found}"),
                );
            }
        }
    }

    fn healthcheck(&mut self, v: &mut Node, p: &str) {
        if !self.keys(v, Obj::Healthcheck, p) {
            return;
        }
        if let Some(test) = v.get_mut("test")
            && let Some(t) = test.as_str()
        {
            let pos = test.pos.clone();
            let items = if t == "NONE" {
                vec![Node::string("NONE", pos.clone())]
            } else {
                vec![
                    Node::string("CMD-SHELL", pos.clone()),
                    Node::string(t, pos.clone()),
                ]
            };
            test.kind = Kind::Seq(items);
        }
    }

    fn hook(&mut self, item: &mut Node, p: &str) {
        if self.keys(item, Obj::Hook, p) {
            self.each_value(item, "command", p, |n, c, p| n.command(c, p));
            self.each_value(item, "environment", p, |n, e, p| n.dict(e, p, true));
        }
    }

    fn service_networks(&mut self, v: &mut Node, p: &str) {
        if matches!(v.kind, Kind::Seq(_)) {
            self.names_to_map(v, p, "a network name", |pos| {
                Node::new(Kind::Null, pos.clone())
            });
            return;
        }
        if let Kind::Map(entries) = &mut v.kind {
            for e in entries.iter_mut() {
                if !e.value.is_null() {
                    let path = child(p, &e.key);
                    if self.keys(&mut e.value, Obj::ServiceNetwork, &path) {
                        self.each_value(&mut e.value, "aliases", &path, |n, a, p| {
                            n.string_list(a, p)
                        });
                        self.each_value(&mut e.value, "driver_opts", &path, |n, a, p| {
                            n.dict(a, p, false)
                        });
                    }
                }
            }
        } else if !v.is_null() {
            let found = v.type_name();
            self.error(
                v,
                p,
                format!("expected a list or mapping of networks, found {found}"),
            );
        }
    }

    fn ports(&mut self, v: &mut Node, p: &str) {
        let Kind::Seq(items) = &mut v.kind else {
            if !v.is_null() {
                let found = v.type_name();
                self.error(v, p, format!("expected a list of ports, found {found}"));
            }
            return;
        };
        let mut out = Vec::new();
        for (i, mut item) in std::mem::take(items).into_iter().enumerate() {
            let ip = format!("{p}[{i}]");
            if let Some(t) = item.as_str() {
                match syntax::parse_port(t) {
                    Ok(ports) => {
                        for port in ports {
                            let pos = item.pos.clone();
                            let mut e = vec![(
                                "target",
                                Node::string(port.target.to_string(), pos.clone()),
                            )];
                            if let Some(pb) = port.published {
                                e.push(("published", Node::string(pb, pos.clone())));
                            }
                            if let Some(h) = port.host_ip {
                                e.push(("host_ip", Node::string(h, pos.clone())));
                            }
                            e.push(("protocol", Node::string(port.protocol, pos.clone())));
                            e.push(("mode", Node::string("ingress", pos.clone())));
                            out.push(map(&pos, e));
                        }
                    }
                    Err(e) => {
                        self.diags.push(
                            Diagnostic::error(&item.pos, &ip, format!("invalid port {t:?}: {e}")).with_hint(
                                "ports are written [HOST_IP:][PUBLISHED:]TARGET[/PROTOCOL], e.g. \"8080:80\" or \"127.0.0.1:53:53/udp\"",
                            ),
                        );
                    }
                }
                continue;
            }
            if self.keys(&mut item, Obj::Port, &ip) {
                if item.get("target").is_none() {
                    self.error(&item, &ip, "a port needs a `target` (the container port)");
                }
                let pos = item.pos.clone();
                if item.get("protocol").is_none() {
                    item.set("protocol", Node::string("tcp", pos.clone()));
                }
                if item.get("mode").is_none() {
                    item.set("mode", Node::string("ingress", pos));
                }
                if let Some(pb) = item.get("published").and_then(Node::as_str) {
                    let valid = pb.split_once('-').map_or_else(
                        || pb.parse::<u16>().is_ok(),
                        |(a, b)| a.parse::<u16>().is_ok() && b.parse::<u16>().is_ok(),
                    );
                    if !valid {
                        let pbn = item.get("published").cloned();
                        if let Some(pbn) = pbn {
                            self.error(&pbn, &child(&ip, "published"), format!("invalid published port {pb:?}: expected a port or a range such as 8000-8010"));
                        }
                    }
                }
            }
            out.push(item);
        }
        *items = out;
    }

    fn ulimit(&mut self, u: &mut Node, p: &str) {
        if u.as_str().is_some() {
            let pos = u.pos.clone();
            *u = map(&pos, vec![("soft", u.clone()), ("hard", u.clone())]);
            return;
        }
        if self.keys(u, Obj::Ulimit, p) && (u.get("soft").is_none() || u.get("hard").is_none()) {
            self.error(
                u,
                p,
                "a ulimit needs both `soft` and `hard` (or a single number)",
            );
        }
    }

    fn mount(&mut self, item: &mut Node, p: &str) {
        if let Some(t) = item.as_str() {
            match syntax::parse_volume(t) {
                Ok(v) => {
                    let pos = item.pos.clone();
                    let s = |x: &str| Node::string(x, pos.clone());
                    let mut e = vec![("type", s(if v.bind { "bind" } else { "volume" }))];
                    if let Some(src) = &v.source {
                        let src = if v.bind { self.resolve(src) } else { src.clone() };
                        e.push(("source", s(&src)));
                    }
                    e.push(("target", s(&self.mount_target(&v.target, &pos, p))));
                    if v.read_only {
                        e.push(("read_only", s("true")));
                    }
                    if let Some(c) = &v.consistency {
                        e.push(("consistency", s(c)));
                    }
                    if v.bind {
                        let mut b = vec![("create_host_path", s("true"))];
                        if let Some(pr) = &v.propagation {
                            b.push(("propagation", s(pr)));
                        }
                        if let Some(se) = &v.selinux {
                            b.push(("selinux", s(se)));
                        }
                        e.push(("bind", map(&pos, b)));
                    } else if v.nocopy {
                        e.push(("volume", map(&pos, vec![("nocopy", s("true"))])));
                    }
                    *item = map(&pos, e);
                }
                Err(e) => self.diags.push(
                    Diagnostic::error(&item.pos, p, format!("invalid volume {t:?}: {e}"))
                        .with_hint("volumes are written [SOURCE:]TARGET[:MODE], e.g. \"./data:/data:ro\" or \"dbdata:/var/lib/db\""),
                ),
            }
            return;
        }
        if !self.keys(item, Obj::Mount, p) {
            return;
        }
        match item.get("target").and_then(text) {
            None => self.error(item, p, "a mount needs a `target`"),
            Some(t) => {
                let pos = item
                    .get("target")
                    .map(|n| n.pos.clone())
                    .unwrap_or_else(|| item.pos.clone());
                let fixed = self.mount_target(&t, &pos, &child(p, "target"));
                item.set("target", Node::string(fixed, pos));
            }
        }
        let kind = item.get("type").and_then(text);
        if kind.is_none() {
            self.error(item, p, "a mount needs a `type` (volume, bind, tmpfs, ...)");
        }
        if kind.as_deref() == Some("bind") {
            match item.get("source").and_then(text) {
                Some(src) => {
                    let resolved = self.resolve(&src);
                    if let Some(n) = item.get_mut("source") {
                        let pos = n.pos.clone();
                        *n = Node::string(resolved, pos);
                    }
                }
                None => self.error(item, p, "a bind mount needs a `source` (the host path)"),
            }
        }
        for (key, obj) in [
            ("bind", Obj::BindOpts),
            ("volume", Obj::VolumeOpts),
            ("tmpfs", Obj::TmpfsOpts),
            ("image", Obj::ImageOpts),
        ] {
            self.each_value(item, key, p, |n, o, p| {
                if n.keys(o, obj, p) && key == "volume" {
                    n.each_value(o, "labels", p, |n, l, p| n.dict(l, p, false));
                }
            });
        }
    }

    /// A container path for a mount; a relative one is taken from `/`, with a warning.
    fn mount_target(&mut self, target: &str, pos: &crate::diag::Pos, p: &str) -> String {
        if target.starts_with('/') || syntax::is_windows_path(target) {
            return target.to_owned();
        }
        let fixed = format!("/{target}");
        self.diags.push(
            Diagnostic::warning(
                pos,
                p,
                format!("mount target {target:?} is not an absolute path; mounted at {fixed:?}"),
            )
            .with_hint(format!("write the target as {fixed:?}")),
        );
        fixed
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
        if let Some(f) = node.get("file").and_then(text) {
            let resolved = self.resolve(&f);
            if let Some(n) = node.get_mut("file") {
                let pos = n.pos.clone();
                *n = Node::string(resolved, pos);
            }
        }
    }
}

/// Build contexts that are not local directories.
pub fn is_remote_context(ctx: &str) -> bool {
    ctx.contains("://") || ctx.starts_with("git@") || ctx.starts_with("github.com/")
}
