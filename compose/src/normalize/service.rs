//! Rewrites of service keys: short syntax to long syntax, host paths made absolute.

use super::{Normalizer, child, is_remote_context, map, text};
use crate::diag::Diagnostic;
use crate::schema::Obj;
use crate::syntax;
use crate::yaml::{Entry, Kind, Node};

impl Normalizer<'_> {
    pub(super) fn build(&mut self, v: &mut Node, p: &str) {
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
            self.resolve_at(v, "context");
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

    pub(super) fn file_ref(&mut self, item: &mut Node, p: &str) {
        if item.as_str().is_some() {
            let pos = item.pos.clone();
            *item = map(&pos, vec![("source", item.clone())]);
        }
        if self.keys(item, Obj::FileRef, p) && item.get("source").is_none() {
            self.error(item, p, "a secret or config reference needs a `source`");
        }
    }

    pub(super) fn depends_on(&mut self, v: &mut Node, p: &str) {
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

    pub(super) fn deploy(&mut self, v: &mut Node, p: &str) {
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

    pub(super) fn device(&mut self, item: &mut Node, p: &str) {
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

    pub(super) fn env_file(&mut self, item: &mut Node, p: &str) {
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
        if !self.resolve_at(item, "path") {
            self.error(item, p, "an env_file entry needs a `path`");
        }
    }

    pub(super) fn extra_hosts(&mut self, v: &mut Node, p: &str) {
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

    pub(super) fn healthcheck(&mut self, v: &mut Node, p: &str) {
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

    pub(super) fn hook(&mut self, item: &mut Node, p: &str) {
        if self.keys(item, Obj::Hook, p) {
            self.each_value(item, "command", p, |n, c, p| n.command(c, p));
            self.each_value(item, "environment", p, |n, e, p| n.dict(e, p, true));
        }
    }

    pub(super) fn service_networks(&mut self, v: &mut Node, p: &str) {
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

    pub(super) fn ports(&mut self, v: &mut Node, p: &str) {
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

    pub(super) fn ulimit(&mut self, u: &mut Node, p: &str) {
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

    pub(super) fn mount(&mut self, item: &mut Node, p: &str) {
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
        if kind.as_deref() == Some("bind") && !self.resolve_at(item, "source") {
            self.error(item, p, "a bind mount needs a `source` (the host path)");
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
    pub(super) fn mount_target(&mut self, target: &str, pos: &crate::diag::Pos, p: &str) -> String {
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
}
