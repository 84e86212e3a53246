//! Checks across a whole stack: references between services and top-level resources,
//! dependency cycles, and settings that contradict each other.

use crate::diag::{Diagnostic, Pos, did_you_mean};
use crate::yaml::Node;
use api::StackSpec;
use api::service::MountType;
use std::collections::BTreeMap;

/// Where `path` (keys) was written, or the closest enclosing place.
pub fn pos_of(root: &Node, keys: &[&str]) -> Pos {
    let mut node = root;
    let mut pos = root.pos.clone();
    for k in keys {
        let Some(entries) = node.as_map() else { break };
        let Some(e) = entries.iter().find(|e| e.key == *k) else {
            break;
        };
        pos = e.key_pos.clone();
        node = &e.value;
    }
    pos
}

struct Check<'a> {
    root: &'a Node,
    diags: Vec<Diagnostic>,
}

impl Check<'_> {
    fn undefined(
        &mut self,
        keys: &[&str],
        what: &str,
        name: &str,
        defined: Vec<&str>,
        section: &str,
    ) {
        let path = keys.join(".");
        let mut d = Diagnostic::error(
            &pos_of(self.root, keys),
            &path,
            format!("{what} {name:?} is not defined"),
        );
        d = match did_you_mean(name, defined.iter().copied()) {
            Some(s) => d.with_hint(format!("did you mean {s:?}?")),
            None => d.with_hint(format!("declare it under the top-level `{section}:` key")),
        };
        self.diags.push(d);
    }
}

/// Check `spec` (typed from `root`); returns errors and warnings.
pub fn validate(
    spec: &StackSpec,
    root: &Node,
    disabled: &BTreeMap<String, Vec<String>>,
) -> Vec<Diagnostic> {
    let mut c = Check {
        root,
        diags: Vec::new(),
    };
    let networks: Vec<&str> = spec.networks.keys().map(String::as_str).collect();
    let volumes: Vec<&str> = spec.volumes.keys().map(String::as_str).collect();
    let secrets: Vec<&str> = spec.secrets.keys().map(String::as_str).collect();
    let configs: Vec<&str> = spec.configs.keys().map(String::as_str).collect();
    let services: Vec<&str> = spec.services.keys().map(String::as_str).collect();
    for (name, s) in &spec.services {
        let n = name.as_str();
        if s.image.is_none() && s.build.is_none() {
            c.diags.push(
                Diagnostic::error(
                    &pos_of(root, &["services", n]),
                    &format!("services.{n}"),
                    "the service has neither an image nor a build context",
                )
                .with_hint("add `image:` (e.g. image: nginx:1.27) or `build:`"),
            );
        }
        for net in s.networks.keys() {
            if !spec.networks.contains_key(net) {
                c.undefined(
                    &["services", n, "networks", net],
                    "network",
                    net,
                    networks.clone(),
                    "networks",
                );
            }
        }
        if let Some(mode) = &s.network_mode {
            if !s.networks.is_empty() {
                c.diags.push(Diagnostic::error(
                    &pos_of(root, &["services", n, "network_mode"]),
                    &format!("services.{n}.network_mode"),
                    "network_mode and networks cannot be used together",
                ));
            }
            if let Some(other) = mode.strip_prefix("service:")
                && !spec.services.contains_key(other)
            {
                c.undefined(
                    &["services", n, "network_mode"],
                    "service",
                    other,
                    services.clone(),
                    "services",
                );
            }
        }
        for (i, v) in s.volumes.iter().enumerate() {
            if v.kind == MountType::Volume
                && let Some(src) = &v.source
                && !spec.volumes.contains_key(src)
            {
                let idx = format!("volumes[{i}]");
                let path = format!("services.{n}.{idx}");
                let mut d = Diagnostic::error(
                    &pos_of(root, &["services", n, "volumes"]),
                    &path,
                    format!("volume {src:?} is not defined"),
                );
                d = match did_you_mean(src, volumes.iter().copied()) {
                            Some(s) => d.with_hint(format!("did you mean {s:?}?")),
                            None => d.with_hint("declare it under the top-level `volumes:` key, or write a path (./dir) for a bind mount"),
                        };
                c.diags.push(d);
            }
        }
        for r in &s.secrets {
            if !spec.secrets.contains_key(&r.source) {
                c.undefined(
                    &["services", n, "secrets"],
                    "secret",
                    &r.source,
                    secrets.clone(),
                    "secrets",
                );
            }
        }
        for r in &s.configs {
            if !spec.configs.contains_key(&r.source) {
                c.undefined(
                    &["services", n, "configs"],
                    "config",
                    &r.source,
                    configs.clone(),
                    "configs",
                );
            }
        }
        for (dep, d) in &s.depends_on {
            if spec.services.contains_key(dep) {
                continue;
            }
            let keys = ["services", n, "depends_on", dep.as_str()];
            let path = keys.join(".");
            let pos = pos_of(root, &keys);
            if let Some(profiles) = disabled.get(dep).filter(|_| d.required) {
                let diag = Diagnostic::error(
                    &pos,
                    &path,
                    format!(
                        "service {n:?} depends on {dep:?}, which is disabled by its profiles ({})",
                        profiles.join(", ")
                    ),
                )
                .with_hint(format!(
                    "enable it with --profile {}",
                    profiles.first().map(String::as_str).unwrap_or_default()
                ));
                c.diags.push(diag);
            } else if d.required {
                c.undefined(&keys, "service", dep, services.clone(), "services");
            } else {
                // `required: false`: compose only warns when the dependency is missing.
                let why = match disabled.get(dep) {
                    Some(profiles) => {
                        format!("is disabled by its profiles ({})", profiles.join(", "))
                    }
                    None => "is not defined".to_owned(),
                };
                c.diags.push(Diagnostic::warning(
                    &pos,
                    &path,
                    format!("optional dependency {dep:?} {why}; ignored"),
                ));
            }
        }
        if let (Some(scale), Some(replicas)) = (s.scale, s.deploy.as_ref().and_then(|d| d.replicas))
            && scale != replicas
        {
            c.diags.push(
                Diagnostic::error(
                    &pos_of(root, &["services", n, "scale"]),
                    &format!("services.{n}.scale"),
                    format!("scale ({scale}) and deploy.replicas ({replicas}) disagree"),
                )
                .with_hint("keep only deploy.replicas"),
            );
        }
        let replicas = s.deploy.as_ref().and_then(|d| d.replicas).or(s.scale);
        if let (Some(container), Some(count @ 2..)) = (&s.container_name, replicas) {
            c.diags.push(
                Diagnostic::error(
                    &pos_of(root, &["services", n, "container_name"]),
                    &format!("services.{n}.container_name"),
                    format!(
                        "container_name {container:?} names one container, but the service has {count} replicas"
                    ),
                )
                .with_hint("leave container_name out (each replica gets a name of its own), or run one replica"),
            );
        }
        if let Some(r) = &s.restart {
            let ok = matches!(
                r.as_str(),
                "no" | "always" | "unless-stopped" | "on-failure"
            ) || r
                .strip_prefix("on-failure:")
                .is_some_and(|n| n.parse::<u32>().is_ok());
            if !ok {
                c.diags.push(
                    Diagnostic::error(
                        &pos_of(root, &["services", n, "restart"]),
                        &format!("services.{n}.restart"),
                        format!("invalid restart policy {r:?}"),
                    )
                    .with_hint("use no, always, on-failure[:MAX] or unless-stopped"),
                );
            }
        }
    }
    cycles(spec, root, &mut c.diags);
    c.diags
}

/// Report each `depends_on` cycle once.
fn cycles(spec: &StackSpec, root: &Node, diags: &mut Vec<Diagnostic>) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut marks: BTreeMap<&str, Mark> = spec
        .services
        .keys()
        .map(|k| (k.as_str(), Mark::New))
        .collect();
    fn visit<'a>(
        name: &'a str,
        spec: &'a StackSpec,
        marks: &mut BTreeMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
        root: &Node,
        diags: &mut Vec<Diagnostic>,
    ) {
        marks.insert(name, Mark::Active);
        stack.push(name);
        if let Some(s) = spec.services.get(name) {
            for dep in s.depends_on.keys() {
                match marks.get(dep.as_str()).copied() {
                    Some(Mark::New) => visit(dep, spec, marks, stack, root, diags),
                    Some(Mark::Active) => {
                        let start = stack.iter().position(|s| s == dep).unwrap_or(0);
                        let mut cycle: Vec<&str> = stack[start..].to_vec();
                        cycle.push(dep);
                        let keys = ["services", name, "depends_on", dep.as_str()];
                        diags.push(Diagnostic::error(
                            &pos_of(root, &keys),
                            &keys.join("."),
                            format!("dependency cycle detected: {}", cycle.join(" -> ")),
                        ));
                    }
                    _ => {}
                }
            }
        }
        stack.pop();
        marks.insert(name, Mark::Done);
    }
    let names: Vec<&str> = spec.services.keys().map(String::as_str).collect();
    for name in names {
        if marks.get(name) == Some(&Mark::New) {
            visit(name, spec, &mut marks, &mut Vec::new(), root, diags);
        }
    }
}
