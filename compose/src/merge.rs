//! Merging normalized trees: several `-f` files, `extends` and `include`, by the
//! Compose Specification's rules. Mappings merge key by key; sequences append, except
//! those that name a unique resource (ports, mounts, devices, secrets, configs: the
//! later entry for the same target wins) and commands, which replace. `!reset` removes
//! an inherited value, `!override` replaces it whole.

use crate::yaml::{Kind, Node, Tag};

/// How a sequence at some path merges.
enum SeqRule {
    Replace,
    Append,
    /// Entries with the same key (from the function) replace each other.
    Keyed(fn(&Node) -> String),
}

fn field(node: &Node, key: &str) -> String {
    node.get(key)
        .and_then(Node::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn port_key(n: &Node) -> String {
    ["host_ip", "published", "target", "protocol", "mode"]
        .map(|k| field(n, k))
        .join("|")
}

fn target_key(n: &Node) -> String {
    field(n, "target")
}

fn file_ref_key(n: &Node) -> String {
    let t = field(n, "target");
    if t.is_empty() { field(n, "source") } else { t }
}

fn env_file_key(n: &Node) -> String {
    field(n, "path")
}

fn seq_rule(path: &str) -> SeqRule {
    match path {
        "services.*.command" | "services.*.entrypoint" | "services.*.healthcheck.test" => {
            SeqRule::Replace
        }
        "services.*.post_start.*.command" | "services.*.pre_stop.*.command" => SeqRule::Replace,
        "services.*.ports" => SeqRule::Keyed(port_key),
        "services.*.volumes" | "services.*.devices" => SeqRule::Keyed(target_key),
        "services.*.secrets" | "services.*.configs" | "services.*.build.secrets" => {
            SeqRule::Keyed(file_ref_key)
        }
        "services.*.env_file" => SeqRule::Keyed(env_file_key),
        _ => SeqRule::Append,
    }
}

fn child_path(path: &str, key: &str) -> String {
    let named = matches!(
        path,
        "services" | "networks" | "volumes" | "secrets" | "configs"
    );
    let seg = if named { "*" } else { key };
    if path.is_empty() {
        seg.to_owned()
    } else {
        format!("{path}.{seg}")
    }
}

/// Merge `over` onto `base`; `path` is the dotted key path with resource names as `*`
/// (`services.*.ports`), empty for a whole file.
pub fn merge(base: Node, over: Node, path: &str) -> Node {
    if over.tag == Some(Tag::Override) {
        return Node { tag: None, ..over };
    }
    match (base.kind, over.kind) {
        (Kind::Map(mut entries), Kind::Map(over_entries)) => {
            for oe in over_entries {
                let i = entries.iter().position(|e| e.key == oe.key);
                if oe.value.tag == Some(Tag::Reset) {
                    if let Some(i) = i {
                        entries.remove(i);
                    }
                    continue;
                }
                match i {
                    Some(i) => {
                        let b = std::mem::replace(
                            &mut entries[i].value,
                            Node::new(Kind::Null, oe.value.pos.clone()),
                        );
                        entries[i].value = merge(b, oe.value, &child_path(path, &oe.key));
                    }
                    None => entries.push(oe),
                }
            }
            Node::new(Kind::Map(entries), base.pos)
        }
        (Kind::Seq(mut items), Kind::Seq(over_items)) => {
            match seq_rule(path) {
                SeqRule::Replace => return Node::new(Kind::Seq(over_items), over.pos),
                SeqRule::Append => {
                    for o in over_items {
                        let dup =
                            o.as_str().is_some() && items.iter().any(|i| i.as_str() == o.as_str());
                        if !dup {
                            items.push(o);
                        }
                    }
                }
                SeqRule::Keyed(key) => {
                    for o in over_items {
                        let k = key(&o);
                        match items.iter().position(|i| key(i) == k) {
                            Some(i) => items[i] = o,
                            None => items.push(o),
                        }
                    }
                }
            }
            Node::new(Kind::Seq(items), base.pos)
        }
        (_, kind) => Node {
            kind,
            pos: over.pos,
            tag: over.tag,
        },
    }
}

/// Drop `!reset` values and clear tags once all merging is done.
pub fn finish(node: &mut Node) {
    node.tag = None;
    match &mut node.kind {
        Kind::Map(entries) => {
            entries.retain(|e| e.value.tag != Some(Tag::Reset));
            for e in entries.iter_mut() {
                finish(&mut e.value);
            }
        }
        Kind::Seq(items) => {
            items.retain(|i| i.tag != Some(Tag::Reset));
            items.iter_mut().for_each(finish);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml;
    use std::sync::Arc;

    fn doc(text: &str) -> Node {
        let file: Arc<str> = Arc::from("t.yaml");
        yaml::parse(&file, text).unwrap().remove(0)
    }

    fn merged(a: &str, b: &str) -> Node {
        let mut m = merge(doc(a), doc(b), "");
        finish(&mut m);
        m
    }

    fn strs(n: &Node) -> Vec<String> {
        match &n.kind {
            Kind::Seq(items) => items
                .iter()
                .map(|i| i.as_str().unwrap_or("?").to_owned())
                .collect(),
            _ => vec![],
        }
    }

    #[test]
    fn maps_deep_merge_and_scalars_replace() {
        let m = merged(
            "services: {web: {image: a, environment: {A: '1', B: '2'}}}",
            "services: {web: {image: b, environment: {B: '3'}}}",
        );
        let web = m.get("services").unwrap().get("web").unwrap();
        assert_eq!(web.get("image").unwrap().as_str(), Some("b"));
        let env = web.get("environment").unwrap();
        assert_eq!(env.get("A").unwrap().as_str(), Some("1"));
        assert_eq!(env.get("B").unwrap().as_str(), Some("3"));
    }

    #[test]
    fn commands_replace_and_lists_append_without_duplicates() {
        let m = merged(
            "services: {w: {command: [a, b], cap_add: [X, Y]}}",
            "services: {w: {command: [c], cap_add: [Y, Z]}}",
        );
        let w = m.get("services").unwrap().get("w").unwrap();
        assert_eq!(strs(w.get("command").unwrap()), ["c"]);
        assert_eq!(strs(w.get("cap_add").unwrap()), ["X", "Y", "Z"]);
    }

    #[test]
    fn mounts_merge_by_target() {
        let m = merged(
            "services: {w: {volumes: [{type: volume, source: a, target: /d}, {type: volume, source: b, target: /e}]}}",
            "services: {w: {volumes: [{type: bind, source: /h, target: /d}]}}",
        );
        let vols = m
            .get("services")
            .unwrap()
            .get("w")
            .unwrap()
            .get("volumes")
            .unwrap();
        let Kind::Seq(items) = &vols.kind else {
            panic!()
        };
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].get("source").unwrap().as_str(), Some("/h"));
    }

    #[test]
    fn ports_union_by_their_fields() {
        let m = merged(
            "services: {w: {ports: [{target: '80', published: '8080'}]}}",
            "services: {w: {ports: [{target: '80', published: '8080'}, {target: '81'}]}}",
        );
        let ports = m
            .get("services")
            .unwrap()
            .get("w")
            .unwrap()
            .get("ports")
            .unwrap();
        let Kind::Seq(items) = &ports.kind else {
            panic!()
        };
        assert_eq!(items.len(), 2);
    }

    #[test]
    fn reset_and_override_tags() {
        let m = merged(
            "services: {w: {image: a, command: [x], ports: [{target: '1'}], labels: {a: b}}}",
            "services: {w: {command: !reset null, ports: !override [{target: '2'}], labels: !reset {}}}",
        );
        let w = m.get("services").unwrap().get("w").unwrap();
        assert!(w.get("command").is_none());
        assert!(w.get("labels").is_none());
        let Kind::Seq(items) = &w.get("ports").unwrap().kind else {
            panic!()
        };
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].get("target").unwrap().as_str(), Some("2"));
    }
}
