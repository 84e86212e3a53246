//! Affinities between services (from `orch.affinity*` labels) and dependencies on other
//! services' tasks (`volumes_from`, `network_mode`, `ipc`, `pid`).

use serde::{Deserialize, Serialize};

/// The label that holds affinity expressions; `orch.affinity.NAME` labels too.
pub(super) const AFFINITY_LABEL: &str = "orch.affinity";

/// One affinity expression: `service==web`, `service!=web`, `service==~web`, `service!=~web`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Affinity {
    /// The service name (within the task's stack) or id.
    pub service: String,
    /// `==`: run beside a task of the service; `!=`: never beside one.
    pub together: bool,
    /// `~`: only a preference that orders nodes, never a rejection.
    pub soft: bool,
}

impl Affinity {
    /// Whether a node where the service runs `present` satisfies the affinity.
    pub fn holds(&self, present: bool) -> bool {
        present == self.together
    }
}

/// Why an affinity label cannot be parsed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum AffinityError {
    #[error("expected service==NAME, service!=NAME, service==~NAME or service!=~NAME")]
    NoOperator,
    #[error("unknown kind {kind} (only service is known)")]
    UnknownKind { kind: String },
    #[error("the service name is empty")]
    EmptyService,
}

/// The affinities in the labels, in label order; the first malformed label is returned
/// with its key.
pub(super) fn parse_affinities<'a>(
    labels: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<Vec<Affinity>, (String, AffinityError)> {
    let mut affinities = Vec::new();
    for (key, value) in labels {
        let ours = key == AFFINITY_LABEL
            || key
                .strip_prefix(AFFINITY_LABEL)
                .is_some_and(|rest| rest.starts_with('.'));
        if !ours {
            continue;
        }
        for expression in value.split(',').filter(|e| !e.trim().is_empty()) {
            let affinity = parse_expression(expression).map_err(|e| (key.clone(), e))?;
            affinities.push(affinity);
        }
    }
    Ok(affinities)
}

fn parse_expression(expression: &str) -> Result<Affinity, AffinityError> {
    let expression = expression.trim();
    let operators = [
        ("==~", true, true),
        ("!=~", false, true),
        ("==", true, false),
        ("!=", false, false),
    ];
    let (at, operator, together, soft) = operators
        .iter()
        .filter_map(|(op, together, soft)| {
            expression.find(op).map(|at| (at, *op, *together, *soft))
        })
        // The earliest operator; at one position the longer (soft) spelling wins.
        .min_by_key(|(at, op, ..)| (*at, usize::MAX - op.len()))
        .ok_or(AffinityError::NoOperator)?;
    let kind = expression[..at].trim();
    if !kind.eq_ignore_ascii_case("service") {
        return Err(AffinityError::UnknownKind {
            kind: kind.to_owned(),
        });
    }
    let service = expression[at + operator.len()..].trim();
    if service.is_empty() {
        return Err(AffinityError::EmptyService);
    }
    Ok(Affinity {
        service: service.to_owned(),
        together,
        soft,
    })
}

/// The services whose tasks the spec must run beside: `volumes_from` entries (`NAME`,
/// `service:NAME`, `container:NAME`, each with an optional `:ro`/`:rw`) and
/// `network_mode`, `ipc`, `pid` of the form `service:NAME` or `container:NAME`. A
/// container is named by the service that runs it. Without duplicates, in order.
pub(super) fn dependencies(spec: &api::ServiceSpec) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |name: &str| {
        if !name.is_empty() && !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    };
    for entry in &spec.volumes_from {
        let entry = entry.trim();
        let entry = entry
            .strip_suffix(":ro")
            .or_else(|| entry.strip_suffix(":rw"))
            .unwrap_or(entry);
        let name = entry
            .strip_prefix("service:")
            .or_else(|| entry.strip_prefix("container:"))
            .unwrap_or(entry);
        add(name);
    }
    for mode in [&spec.network_mode, &spec.ipc, &spec.pid]
        .into_iter()
        .flatten()
    {
        let mode = mode.trim();
        if let Some(name) = mode
            .strip_prefix("service:")
            .or_else(|| mode.strip_prefix("container:"))
        {
            add(name);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_hard_and_soft_expressions() {
        let labels = labels(&[
            ("orch.affinity", "service==db, service!=web"),
            ("orch.affinity.cache", "service==~redis,service !=~ batch"),
            ("orch.affinityx", "ignored"),
            ("other", "service==x"),
        ]);
        let parsed = parse_affinities(&labels).expect("valid");
        let expect = |service: &str, together, soft| Affinity {
            service: service.into(),
            together,
            soft,
        };
        assert_eq!(
            parsed,
            vec![
                expect("db", true, false),
                expect("web", false, false),
                expect("redis", true, true),
                expect("batch", false, true),
            ]
        );
    }

    #[test]
    fn malformed_affinities_name_their_label() {
        for (value, error) in [
            ("service=db", AffinityError::NoOperator),
            (
                "image==redis",
                AffinityError::UnknownKind {
                    kind: "image".into(),
                },
            ),
            ("service==", AffinityError::EmptyService),
            ("service==~ ", AffinityError::EmptyService),
        ] {
            let labels = labels(&[("orch.affinity.x", value)]);
            assert_eq!(
                parse_affinities(&labels),
                Err(("orch.affinity.x".to_owned(), error)),
                "{value}"
            );
        }
    }

    #[test]
    fn finds_dependencies_in_every_spelling() {
        let spec = api::ServiceSpec {
            volumes_from: vec![
                "data".into(),
                "service:logs:ro".into(),
                "container:cache:rw".into(),
                "data:ro".into(),
            ],
            network_mode: Some("service:proxy".into()),
            ipc: Some("shareable".into()),
            pid: Some("container:init".into()),
            ..api::ServiceSpec::default()
        };
        assert_eq!(
            dependencies(&spec),
            ["data", "logs", "cache", "proxy", "init"]
        );
    }
}
