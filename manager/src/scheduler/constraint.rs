//! Placement constraints (`node.labels.zone == east`) and the node attributes they and
//! placement preferences name.

use super::node::NodeInfo;
use api::cluster::NodeRole;
use serde::{Deserialize, Serialize};

/// A node attribute a constraint or preference names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Attribute {
    Id,
    Hostname,
    Role,
    Os,
    Arch,
    /// `node.labels.X`
    NodeLabel(String),
    /// `engine.labels.X`
    EngineLabel(String),
}

impl Attribute {
    /// Parses `node.id`, `node.hostname`, `node.role`, `node.platform.os`,
    /// `node.platform.arch`, `node.labels.X` or `engine.labels.X`.
    pub fn parse(key: &str) -> Result<Attribute, ConstraintError> {
        let lower = key.to_ascii_lowercase();
        let label = |prefix: &str| {
            lower
                .starts_with(prefix)
                .then(|| key[prefix.len()..].to_owned())
        };
        let attribute = match lower.as_str() {
            "" => return Err(ConstraintError::EmptyKey),
            "node.id" => Attribute::Id,
            "node.hostname" => Attribute::Hostname,
            "node.role" => Attribute::Role,
            "node.platform.os" => Attribute::Os,
            "node.platform.arch" => Attribute::Arch,
            _ => match (label("node.labels."), label("engine.labels.")) {
                (Some(name), _) if !name.is_empty() => Attribute::NodeLabel(name),
                (_, Some(name)) if !name.is_empty() => Attribute::EngineLabel(name),
                _ => {
                    return Err(ConstraintError::UnknownKey {
                        key: key.to_owned(),
                    });
                }
            },
        };
        Ok(attribute)
    }

    /// The node's value of the attribute; `None` for a label the node lacks.
    pub fn value<'a>(&self, node: &'a NodeInfo) -> Option<&'a str> {
        match self {
            Attribute::Id => Some(&node.id),
            Attribute::Hostname => Some(&node.hostname),
            Attribute::Role => Some(match node.role {
                NodeRole::Worker => "worker",
                NodeRole::Manager => "manager",
            }),
            Attribute::Os => Some(&node.os),
            Attribute::Arch => Some(&node.arch),
            Attribute::NodeLabel(name) => node.labels.get(name).map(String::as_str),
            Attribute::EngineLabel(name) => node.engine_labels.get(name).map(String::as_str),
        }
    }
}

/// Why a constraint or preference cannot be parsed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum ConstraintError {
    #[error("expected KEY==VALUE or KEY!=VALUE")]
    NoOperator,
    #[error("more than one operator")]
    TwoOperators,
    #[error("the key is empty")]
    EmptyKey,
    #[error("the value is empty")]
    EmptyValue,
    #[error(
        "unknown key {key} (use node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.NAME or engine.labels.NAME)"
    )]
    UnknownKey { key: String },
}

/// `==` or `!=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Operator {
    Equal,
    NotEqual,
}

/// One parsed placement constraint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Constraint {
    pub attribute: Attribute,
    pub operator: Operator,
    pub value: String,
    /// As written (trimmed), for reasons.
    pub text: String,
}

impl Constraint {
    /// Parses `KEY==VALUE` or `KEY!=VALUE`, spaces allowed around the operator.
    pub fn parse(text: &str) -> Result<Constraint, ConstraintError> {
        let text = text.trim();
        let (at, operator) = match (text.find("=="), text.find("!=")) {
            (Some(eq), Some(ne)) if eq < ne => (eq, Operator::Equal),
            (Some(_), Some(ne)) => (ne, Operator::NotEqual),
            (Some(eq), None) => (eq, Operator::Equal),
            (None, Some(ne)) => (ne, Operator::NotEqual),
            (None, None) => return Err(ConstraintError::NoOperator),
        };
        let key = text[..at].trim();
        let value = text[at + 2..].trim();
        if value.contains("==") || value.contains("!=") {
            return Err(ConstraintError::TwoOperators);
        }
        let attribute = Attribute::parse(key)?;
        if value.is_empty() {
            return Err(ConstraintError::EmptyValue);
        }
        Ok(Constraint {
            attribute,
            operator,
            value: value.to_owned(),
            text: text.to_owned(),
        })
    }

    /// Whether the node satisfies the constraint: values compare without regard to
    /// case (as swarm does), architectures by their OCI name (`x86_64` is `amd64`); a
    /// label the node lacks fails `==` and satisfies `!=`.
    pub fn holds(&self, node: &NodeInfo) -> bool {
        let equal = match self.attribute.value(node) {
            None => false,
            Some(actual) if self.attribute == Attribute::Arch => {
                arch_name(actual).eq_ignore_ascii_case(arch_name(&self.value))
            }
            Some(actual) => actual.eq_ignore_ascii_case(&self.value),
        };
        equal == (self.operator == Operator::Equal)
    }
}

/// The OCI name of an architecture spelled the kernel's way.
fn arch_name(arch: &str) -> &str {
    match arch {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "armv7l" | "armhf" => "arm",
        "i386" | "i686" => "386",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeInfo {
        let mut node = api::cluster::Node::default();
        node.meta.id = "n1".into();
        node.meta.labels.insert("zone".into(), "East".into());
        node.description.hostname = "host-1".into();
        node.description.os = "linux".into();
        node.description.arch = "x86_64".into();
        node.description
            .engine_labels
            .insert("disk".into(), "ssd".into());
        node.spec.role = NodeRole::Manager;
        NodeInfo::new(&node)
    }

    #[test]
    fn parses_each_key_and_operator() {
        let cases = [
            ("node.id==n1", Attribute::Id, Operator::Equal, "n1"),
            (
                "node.hostname != host-2",
                Attribute::Hostname,
                Operator::NotEqual,
                "host-2",
            ),
            (
                "node.role == manager",
                Attribute::Role,
                Operator::Equal,
                "manager",
            ),
            (
                "node.platform.os==linux",
                Attribute::Os,
                Operator::Equal,
                "linux",
            ),
            (
                "node.platform.arch==amd64",
                Attribute::Arch,
                Operator::Equal,
                "amd64",
            ),
            (
                " node.labels.zone == east ",
                Attribute::NodeLabel("zone".into()),
                Operator::Equal,
                "east",
            ),
            (
                "engine.labels.disk!=hdd",
                Attribute::EngineLabel("disk".into()),
                Operator::NotEqual,
                "hdd",
            ),
        ];
        for (text, attribute, operator, value) in cases {
            let parsed = Constraint::parse(text).expect(text);
            assert_eq!(parsed.attribute, attribute, "{text}");
            assert_eq!(parsed.operator, operator, "{text}");
            assert_eq!(parsed.value, value, "{text}");
            assert_eq!(parsed.text, text.trim());
        }
    }

    #[test]
    fn malformed_constraints_say_why() {
        let cases = [
            ("node.role=manager", ConstraintError::NoOperator),
            ("node.role", ConstraintError::NoOperator),
            ("==manager", ConstraintError::EmptyKey),
            ("node.role==", ConstraintError::EmptyValue),
            ("node.role==a==b", ConstraintError::TwoOperators),
            (
                "node.labls.zone==a",
                ConstraintError::UnknownKey {
                    key: "node.labls.zone".into(),
                },
            ),
            (
                "node.labels.==a",
                ConstraintError::UnknownKey {
                    key: "node.labels.".into(),
                },
            ),
        ];
        for (text, error) in cases {
            assert_eq!(Constraint::parse(text), Err(error), "{text}");
        }
    }

    #[test]
    fn matches_like_swarm() {
        let node = node();
        let holds = |text: &str| Constraint::parse(text).expect(text).holds(&node);
        assert!(holds("node.id==n1"));
        assert!(holds("node.hostname==HOST-1"));
        assert!(holds("node.role==manager"));
        assert!(!holds("node.role!=manager"));
        assert!(holds("node.platform.arch==amd64"));
        assert!(holds("node.platform.os==linux"));
        assert!(holds("node.labels.zone==east"));
        assert!(holds("engine.labels.disk==ssd"));
        assert!(!holds("node.labels.rack==1"), "a missing label fails ==");
        assert!(holds("node.labels.rack!=1"), "a missing label satisfies !=");
    }
}
