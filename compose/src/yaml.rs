//! YAML documents as a tree of positioned nodes.
//!
//! Scalars stay text (typing happens against the compose model, after interpolation);
//! anchors and aliases are expanded, `<<` merge keys applied and the compose tags
//! `!reset` / `!override` kept on the node they mark.

use crate::diag::{Diagnostic, Pos};
use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span};
use std::collections::HashMap;
use std::sync::Arc;

/// Upper bound on nodes built from one file, aliases expanded (guards against alias bombs).
const MAX_NODES: usize = 1_000_000;

/// A compose-specific tag on a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    /// `!reset`: remove the value inherited from an earlier file or `extends`.
    Reset,
    /// `!override`: replace the inherited value instead of merging with it.
    Override,
}

/// One YAML node and where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub pos: Pos,
    pub tag: Option<Tag>,
}

/// What a node holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// `null`, `~` or an empty value.
    Null,
    /// A scalar's text; `plain` is false for quoted and block scalars.
    Scalar { text: String, plain: bool },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in written order, keys unique.
    Map(Vec<Entry>),
}

/// One key of a mapping.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

impl Node {
    /// A node of `kind` at `pos`, untagged.
    pub fn new(kind: Kind, pos: Pos) -> Node {
        Node {
            kind,
            pos,
            tag: None,
        }
    }

    /// A quoted-string scalar (not re-typed by YAML rules).
    pub fn string(text: impl Into<String>, pos: Pos) -> Node {
        Node::new(
            Kind::Scalar {
                text: text.into(),
                plain: false,
            },
            pos,
        )
    }

    /// The scalar text, if this is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The entries, if this is a mapping.
    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.kind {
            Kind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The entry for `key`, if this is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|e| e.key == key)
            .map(|e| &e.value)
    }

    /// Mutable access to the entry for `key`.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match &mut self.kind {
            Kind::Map(entries) => entries
                .iter_mut()
                .find(|e| e.key == key)
                .map(|e| &mut e.value),
            _ => None,
        }
    }

    /// Remove and return the entry for `key`.
    pub fn remove(&mut self, key: &str) -> Option<Node> {
        match &mut self.kind {
            Kind::Map(entries) => {
                let i = entries.iter().position(|e| e.key == key)?;
                Some(entries.remove(i).value)
            }
            _ => None,
        }
    }

    /// Set `key` to `value`, replacing an existing entry in place or appending.
    pub fn set(&mut self, key: &str, value: Node) {
        if let Kind::Map(entries) = &mut self.kind {
            if let Some(e) = entries.iter_mut().find(|e| e.key == key) {
                e.value = value;
            } else {
                entries.push(Entry {
                    key: key.to_owned(),
                    key_pos: value.pos.clone(),
                    value,
                });
            }
        }
    }

    /// `true` for `null`.
    pub fn is_null(&self) -> bool {
        matches!(self.kind, Kind::Null)
    }

    /// A short name of the node's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            Kind::Null => "null",
            Kind::Scalar { .. } => "a scalar",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }
}

/// Parse `text` (the content of `file`) into its documents.
pub fn parse(file: &Arc<str>, text: &str) -> Result<Vec<Node>, Diagnostic> {
    let mut builder = Builder {
        file: file.clone(),
        text,
        events: Parser::new_from_str(text),
        anchors: HashMap::new(),
        nodes: 0,
    };
    builder.documents()
}

struct Builder<'a> {
    file: Arc<str>,
    text: &'a str,
    events: Parser<'a, saphyr_parser::StrInput<'a>>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
}

impl<'a> Builder<'a> {
    fn pos(&self, span: &Span) -> Pos {
        Pos {
            file: self.file.clone(),
            line: span.start.line() as u32,
            col: span.start.col() as u32 + 1,
        }
    }

    fn next(&mut self) -> Result<(Event<'a>, Span), Diagnostic> {
        match self.events.next() {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => Err(self.scan_error(&e)),
            None => Err(Diagnostic::error(
                &Pos::file(&self.file),
                "",
                "unexpected end of the YAML stream",
            )),
        }
    }

    fn scan_error(&self, e: &ScanError) -> Diagnostic {
        let m = e.marker();
        let pos = Pos {
            file: self.file.clone(),
            line: m.line() as u32,
            col: m.col() as u32 + 1,
        };
        let diag = Diagnostic::error(&pos, "", format!("invalid YAML: {}", e.info()));
        let near = |line: usize| self.text.lines().nth(line.saturating_sub(1)).unwrap_or("");
        let tabbed = [m.line(), m.line().saturating_sub(1), m.line() + 1]
            .iter()
            .any(|l| near(*l).trim_start_matches(' ').starts_with('\t'));
        if tabbed {
            diag.with_hint("YAML does not allow tabs for indentation: indent with spaces")
        } else {
            diag
        }
    }

    fn documents(&mut self) -> Result<Vec<Node>, Diagnostic> {
        let mut docs = Vec::new();
        loop {
            let (ev, span) = self.next()?;
            match ev {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::StreamEnd => return Ok(docs),
                Event::DocumentStart(_) => {
                    let (ev, span) = self.next()?;
                    docs.push(self.node(ev, span)?);
                }
                _ => {
                    return Err(Diagnostic::error(
                        &self.pos(&span),
                        "",
                        "invalid YAML: unexpected content outside a document",
                    ));
                }
            }
        }
    }

    fn count(&mut self, pos: &Pos) -> Result<(), Diagnostic> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(Diagnostic::error(
                pos,
                "",
                format!(
                    "the document expands to more than {MAX_NODES} nodes (aliases of aliases?)"
                ),
            ));
        }
        Ok(())
    }

    fn tag(
        &self,
        tag: Option<&saphyr_parser::Tag>,
        pos: &Pos,
    ) -> Result<(Option<Tag>, bool), Diagnostic> {
        let Some(tag) = tag else {
            return Ok((None, false));
        };
        match (tag.handle.as_str(), tag.suffix.as_str()) {
            ("!", "reset") => Ok((Some(Tag::Reset), false)),
            ("!", "override") => Ok((Some(Tag::Override), false)),
            (_, "str") if tag.handle != "!" => Ok((None, true)),
            (h, _) if h != "!" => Ok((None, false)),
            (_, other) => Err(
                Diagnostic::error(pos, "", format!("unknown YAML tag !{other}"))
                    .with_hint("compose files know the tags !reset and !override"),
            ),
        }
    }

    fn node(&mut self, ev: Event<'a>, span: Span) -> Result<Node, Diagnostic> {
        let pos = self.pos(&span);
        self.count(&pos)?;
        let (node, anchor) = match ev {
            Event::Alias(id) => {
                let Some(node) = self.anchors.get(&id).cloned() else {
                    return Err(Diagnostic::error(
                        &pos,
                        "",
                        "alias refers to an unknown anchor",
                    ));
                };
                self.nodes += weight(&node);
                if self.nodes > MAX_NODES {
                    return Err(Diagnostic::error(
                        &pos,
                        "",
                        format!(
                            "the document expands to more than {MAX_NODES} nodes (aliases of aliases?)"
                        ),
                    ));
                }
                return Ok(node);
            }
            Event::Scalar(text, style, anchor, tag) => {
                let (tag, forced_str) = self.tag(tag.as_deref(), &pos)?;
                let plain = style == ScalarStyle::Plain && !forced_str;
                let kind = if plain && matches!(&*text, "" | "~" | "null" | "Null" | "NULL") {
                    Kind::Null
                } else {
                    Kind::Scalar {
                        text: text.into_owned(),
                        plain,
                    }
                };
                (Node { kind, pos, tag }, anchor)
            }
            Event::SequenceStart(anchor, tag) => {
                let (tag, _) = self.tag(tag.as_deref(), &pos)?;
                let mut items = Vec::new();
                loop {
                    let (ev, span) = self.next()?;
                    if matches!(ev, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(ev, span)?);
                }
                (
                    Node {
                        kind: Kind::Seq(items),
                        pos,
                        tag,
                    },
                    anchor,
                )
            }
            Event::MappingStart(anchor, tag) => {
                let (tag, _) = self.tag(tag.as_deref(), &pos)?;
                let entries = self.mapping()?;
                (
                    Node {
                        kind: Kind::Map(entries),
                        pos,
                        tag,
                    },
                    anchor,
                )
            }
            _ => {
                return Err(Diagnostic::error(
                    &pos,
                    "",
                    "invalid YAML: unexpected event",
                ));
            }
        };
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }

    fn mapping(&mut self) -> Result<Vec<Entry>, Diagnostic> {
        let mut entries: Vec<Entry> = Vec::new();
        let mut merged: Vec<Node> = Vec::new();
        loop {
            let (ev, span) = self.next()?;
            if matches!(ev, Event::MappingEnd) {
                break;
            }
            let key_pos = self.pos(&span);
            let key_node = self.node(ev, span)?;
            let (key, plain) = match &key_node.kind {
                Kind::Scalar { text, plain } => (text.clone(), *plain),
                Kind::Null => ("null".to_owned(), true),
                _ => {
                    return Err(Diagnostic::error(
                        &key_pos,
                        "",
                        format!(
                            "mapping keys must be scalars, found {}",
                            key_node.type_name()
                        ),
                    ));
                }
            };
            let (ev, span) = self.next()?;
            let value = self.node(ev, span)?;
            if plain && key == "<<" {
                match value.kind {
                    Kind::Map(_) => merged.push(value),
                    Kind::Seq(items) => {
                        for item in items {
                            if !matches!(item.kind, Kind::Map(_)) {
                                return Err(Diagnostic::error(
                                    &item.pos,
                                    "",
                                    "a merge key (<<) takes a mapping or a list of mappings",
                                ));
                            }
                            merged.push(item);
                        }
                    }
                    _ => {
                        return Err(Diagnostic::error(
                            &value.pos,
                            "",
                            "a merge key (<<) takes a mapping or a list of mappings",
                        ));
                    }
                }
                continue;
            }
            if let Some(first) = entries.iter().find(|e| e.key == key) {
                return Err(Diagnostic::error(
                    &key_pos,
                    "",
                    format!(
                        "duplicate key {key:?} (first defined at line {})",
                        first.key_pos.line
                    ),
                ));
            }
            entries.push(Entry {
                key,
                key_pos,
                value,
            });
        }
        for source in merged {
            if let Kind::Map(source_entries) = source.kind {
                for entry in source_entries {
                    if !entries.iter().any(|e| e.key == entry.key) {
                        entries.push(entry);
                    }
                }
            }
        }
        Ok(entries)
    }
}

/// Number of nodes in a tree.
fn weight(node: &Node) -> usize {
    match &node.kind {
        Kind::Seq(items) => 1 + items.iter().map(weight).sum::<usize>(),
        Kind::Map(entries) => 1 + entries.iter().map(|e| weight(&e.value)).sum::<usize>(),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Node {
        let file: Arc<str> = Arc::from("t.yaml");
        let mut docs = parse(&file, text).expect("parses");
        assert_eq!(docs.len(), 1);
        docs.remove(0)
    }

    #[test]
    fn positions_are_one_based() {
        let doc = one("services:\n  web:\n    image: nginx\n");
        let web = doc.get("services").and_then(|s| s.get("web")).unwrap();
        let image = web.get("image").unwrap();
        assert_eq!((image.pos.line, image.pos.col), (3, 12));
        assert_eq!(image.as_str(), Some("nginx"));
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let doc = one(
            "x-base: &base\n  restart: always\n  image: a\nservices:\n  web:\n    <<: *base\n    image: b\n",
        );
        let web = doc.get("services").and_then(|s| s.get("web")).unwrap();
        assert_eq!(web.get("image").and_then(Node::as_str), Some("b"));
        assert_eq!(web.get("restart").and_then(Node::as_str), Some("always"));
    }

    #[test]
    fn merge_key_list_first_wins() {
        let doc = one("a: &a {x: 1}\nb: &b {x: 2, y: 3}\nc:\n  <<: [*a, *b]\n");
        let c = doc.get("c").unwrap();
        assert_eq!(c.get("x").and_then(Node::as_str), Some("1"));
        assert_eq!(c.get("y").and_then(Node::as_str), Some("3"));
    }

    #[test]
    fn nulls_and_quoted_scalars() {
        let doc = one("a:\nb: ~\nc: null\nd: 'null'\ne: \"\"\n");
        assert!(doc.get("a").unwrap().is_null());
        assert!(doc.get("b").unwrap().is_null());
        assert!(doc.get("c").unwrap().is_null());
        assert_eq!(doc.get("d").and_then(Node::as_str), Some("null"));
        assert_eq!(doc.get("e").and_then(Node::as_str), Some(""));
    }

    #[test]
    fn compose_tags() {
        let doc = one("command: !reset null\nports: !override [80]\n");
        assert_eq!(doc.get("command").unwrap().tag, Some(Tag::Reset));
        assert_eq!(doc.get("ports").unwrap().tag, Some(Tag::Override));
        let file: Arc<str> = Arc::from("t.yaml");
        let err = parse(&file, "a: !nope x\n").unwrap_err();
        assert!(err.message.contains("unknown YAML tag !nope"), "{err}");
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let file: Arc<str> = Arc::from("t.yaml");
        let err = parse(&file, "a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.pos.line, 3);
        assert!(
            err.message
                .contains("duplicate key \"a\" (first defined at line 1)")
        );
    }

    #[test]
    fn tab_indentation_gets_a_hint() {
        let file: Arc<str> = Arc::from("t.yaml");
        let err = parse(&file, "services:\n\tweb:\n\t\timage: x\n").unwrap_err();
        assert_eq!(err.pos.line, 2, "{err}");
        assert!(err.hint.as_deref().unwrap_or("").contains("tabs"), "{err}");
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let file: Arc<str> = Arc::from("t.yaml");
        let err = parse(&file, &text).unwrap_err();
        assert!(err.message.contains("expands to more than"), "{err}");
    }

    #[test]
    fn empty_stream_has_no_documents() {
        let file: Arc<str> = Arc::from("t.yaml");
        assert!(parse(&file, "# only a comment\n").unwrap().is_empty());
        assert_eq!(parse(&file, "a: 1\n---\nb: 2\n").unwrap().len(), 2);
    }
}
