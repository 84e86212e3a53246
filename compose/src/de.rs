//! Typing a positioned YAML tree against the compose model.
//!
//! A serde `Deserializer` over [`Node`]: scalars are typed on demand (a port is an
//! integer where the model wants one, text where it wants text), and a value of the
//! wrong type is recorded as a diagnostic at its own position and replaced by a default,
//! so one pass reports every type error of a file instead of stopping at the first.

use crate::diag::{Diagnostic, Pos, did_you_mean};
use crate::yaml::{Entry, Kind, Node};
use api::units::{
    BYTES_NAME, DURATION_NAME, FILE_MODE_NAME, parse_bytes, parse_duration, parse_file_mode,
};
use serde::de::value::StrDeserializer;
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use std::cell::RefCell;
use std::fmt;

/// Collected diagnostics of one typing pass.
#[derive(Default)]
pub struct Sink {
    diags: RefCell<Vec<Diagnostic>>,
}

impl Sink {
    fn push(&self, d: Diagnostic) {
        self.diags.borrow_mut().push(d);
    }
    /// The diagnostics recorded so far.
    pub fn into_inner(self) -> Vec<Diagnostic> {
        self.diags.into_inner()
    }
}

/// An error that stopped typing a value; carries where it happened once known.
#[derive(Debug)]
pub struct DeError {
    message: String,
    at: Option<(Pos, String)>,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            at: None,
        }
    }
}

/// Type `node` as a `T`; problems go to `sink`. `None` only when typing could not finish.
pub fn from_node<T: de::DeserializeOwned>(node: &Node, path: &str, sink: &Sink) -> Option<T> {
    let de = De {
        node,
        path: path.to_owned(),
        sink,
    };
    match T::deserialize(de) {
        Ok(v) => Some(v),
        Err(e) => {
            let (pos, path) = e.at.unwrap_or_else(|| (node.pos.clone(), path.to_owned()));
            sink.push(Diagnostic::error(&pos, &path, e.message));
            None
        }
    }
}

struct De<'a> {
    node: &'a Node,
    path: String,
    sink: &'a Sink,
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl<'a> De<'a> {
    fn wrong(&self, expected: &str) {
        let found = match &self.node.kind {
            Kind::Scalar { text, .. } => format!("{text:?}"),
            _ => self.node.type_name().to_owned(),
        };
        self.sink.push(Diagnostic::error(
            &self.node.pos,
            &self.path,
            format!("expected {expected}, found {found}"),
        ));
    }

    fn text(&self, expected: &str) -> Option<&'a str> {
        match &self.node.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => {
                self.wrong(expected);
                None
            }
        }
    }

    fn locate(&self, mut e: DeError) -> DeError {
        if e.at.is_none() {
            e.at = Some((self.node.pos.clone(), self.path.clone()));
        }
        e
    }

    fn int(&self, min: i128, max: i128, what: &str) -> i128 {
        let Some(text) = self.text(what) else {
            return min.max(0);
        };
        match parse_int(text) {
            Some(v) if v >= min && v <= max => v,
            _ => {
                self.wrong(what);
                min.max(0)
            }
        }
    }
}

fn parse_int(text: &str) -> Option<i128> {
    let t = text.trim().replace('_', "");
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest.to_owned()),
        None => (false, t.strip_prefix('+').unwrap_or(&t).to_owned()),
    };
    let v = if let Some(hex) = digits.strip_prefix("0x") {
        i128::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = digits.strip_prefix("0o") {
        i128::from_str_radix(oct, 8).ok()?
    } else {
        digits.parse::<i128>().ok()?
    };
    Some(if neg { -v } else { v })
}

fn parse_bool(text: &str, yaml11: bool) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ if yaml11 => match text.to_ascii_lowercase().as_str() {
            "yes" | "y" | "on" => Some(true),
            "no" | "n" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn parse_float(text: &str) -> Option<f64> {
    match text {
        ".inf" | ".Inf" | ".INF" | "+.inf" => Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Some(f64::NAN),
        _ => {
            let t = text.trim();
            if t.is_empty()
                || !t
                    .chars()
                    .all(|c| c.is_ascii_digit() || "+-.eE_".contains(c))
            {
                return None;
            }
            t.replace('_', "").parse().ok()
        }
    }
}

macro_rules! ints {
    ($($method:ident $visit:ident $ty:ty, $what:expr;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let v = self.int(<$ty>::MIN as i128, <$ty>::MAX as i128, $what);
            visitor.$visit(v as $ty)
        }
    )*};
}

impl<'de, 'a> de::Deserializer<'de> for De<'a> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            Kind::Null => visitor.visit_unit(),
            Kind::Scalar { text, plain: true } => {
                if let Some(b) = parse_bool(text, false) {
                    visitor.visit_bool(b)
                } else if let Some(i) = parse_int(text).and_then(|v| i64::try_from(v).ok()) {
                    visitor.visit_i64(i)
                } else if let Some(f) = parse_float(text).filter(|_| text.contains('.')) {
                    visitor.visit_f64(f)
                } else {
                    visitor.visit_str(text)
                }
            }
            Kind::Scalar { text, .. } => visitor.visit_str(text),
            Kind::Seq(_) => self.deserialize_seq(visitor),
            Kind::Map(_) => self.deserialize_map(visitor),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let b = match self.text("true or false") {
            Some(text) => parse_bool(text, true).unwrap_or_else(|| {
                self.wrong("true or false");
                false
            }),
            None => false,
        };
        visitor.visit_bool(b)
    }

    ints! {
        deserialize_i8 visit_i8 i8, "an integer";
        deserialize_i16 visit_i16 i16, "an integer";
        deserialize_i32 visit_i32 i32, "an integer";
        deserialize_i64 visit_i64 i64, "an integer";
        deserialize_u8 visit_u8 u8, "an integer from 0 to 255";
        deserialize_u16 visit_u16 u16, "an integer from 0 to 65535";
        deserialize_u32 visit_u32 u32, "a non-negative integer";
        deserialize_u64 visit_u64 u64, "a non-negative integer";
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let f = match self.text("a number") {
            Some(text) => parse_float(text).unwrap_or_else(|| {
                self.wrong("a number");
                0.0
            }),
            None => 0.0,
        };
        visitor.visit_f64(f)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.text("a string") {
            Some(text) => visitor.visit_str(text),
            None => visitor.visit_str(""),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        type Check = fn(&str) -> Result<(), String>;
        let check: Option<(Check, &str)> = match name {
            DURATION_NAME => Some((|t| parse_duration(t).map(drop), "0s")),
            BYTES_NAME => Some((|t| parse_bytes(t).map(drop), "0")),
            FILE_MODE_NAME => Some((|t| parse_file_mode(t).map(drop), "0")),
            _ => None,
        };
        let Some((check, fallback)) = check else {
            return visitor.visit_newtype_struct(self);
        };
        let Some(text) = self.text("a scalar") else {
            return visitor.visit_str(fallback);
        };
        match check(text) {
            Ok(()) => visitor.visit_str(text),
            Err(message) => {
                self.sink
                    .push(Diagnostic::error(&self.node.pos, &self.path, message));
                visitor.visit_str(fallback)
            }
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let items: &[Node] = match &self.node.kind {
            Kind::Seq(items) => items,
            Kind::Null => &[],
            _ => {
                self.wrong("a list");
                &[]
            }
        };
        let access = Seq {
            items: items.iter(),
            index: 0,
            path: &self.path,
            sink: self.sink,
        };
        visitor.visit_seq(access).map_err(|e| self.locate(e))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let entries: &[Entry] = match &self.node.kind {
            Kind::Map(entries) => entries,
            Kind::Null => &[],
            _ => {
                self.wrong("a mapping");
                &[]
            }
        };
        let access = Map {
            entries: entries.iter(),
            current: None,
            path: &self.path,
            sink: self.sink,
        };
        visitor.visit_map(access).map_err(|e| self.locate(e))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let fallback = variants.first().copied().unwrap_or("");
        let text = self.text("a scalar").unwrap_or(fallback);
        let chosen = if variants.contains(&text) {
            text
        } else {
            let mut d = Diagnostic::error(
                &self.node.pos,
                &self.path,
                format!(
                    "invalid value {text:?}: expected one of {}",
                    variants.join(", ")
                ),
            );
            if let Some(s) = did_you_mean(text, variants.iter().copied()) {
                d = d.with_hint(format!("did you mean {s:?}?"));
            }
            self.sink.push(d);
            fallback
        };
        visitor.visit_enum(StrDeserializer::<DeError>::new(chosen))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

struct Seq<'a, I> {
    items: I,
    index: usize,
    path: &'a str,
    sink: &'a Sink,
}

impl<'de, 'a, I: Iterator<Item = &'a Node>> SeqAccess<'de> for Seq<'a, I> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(node) = self.items.next() else {
            return Ok(None);
        };
        let path = format!("{}[{}]", self.path, self.index);
        self.index += 1;
        seed.deserialize(De {
            node,
            path,
            sink: self.sink,
        })
        .map(Some)
    }
}

struct Map<'a, I> {
    entries: I,
    current: Option<&'a Entry>,
    path: &'a str,
    sink: &'a Sink,
}

impl<'de, 'a, I: Iterator<Item = &'a Entry>> MapAccess<'de> for Map<'a, I> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        self.current = Some(entry);
        let key: StrDeserializer<'_, DeError> = entry.key.as_str().into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some(entry) = self.current.take() else {
            return Err(de::Error::custom("value without a key"));
        };
        seed.deserialize(De {
            node: &entry.value,
            path: child_path(self.path, &entry.key),
            sink: self.sink,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml;
    use std::sync::Arc;

    fn node(text: &str) -> Node {
        let file: Arc<str> = Arc::from("t.yaml");
        yaml::parse(&file, text).unwrap().remove(0)
    }

    #[test]
    fn types_scalars_on_demand() {
        let n = node("target: '80'\nprotocol: udp\nmode: host\n");
        let sink = Sink::default();
        let p: api::service::PortSpec = from_node(&n, "p", &sink).unwrap();
        assert!(sink.into_inner().is_empty());
        assert_eq!(p.target, 80);
        assert_eq!(p.protocol, api::service::Protocol::Udp);
    }

    #[test]
    fn records_every_type_error_with_its_position() {
        let n = node("target: eighty\nprotocol: tpc\nmode: [x]\n");
        let sink = Sink::default();
        let _p: Option<api::service::PortSpec> = from_node(&n, "services.web.ports[0]", &sink);
        let diags = sink.into_inner();
        assert_eq!(diags.len(), 3, "{diags:?}");
        assert_eq!(diags[0].path, "services.web.ports[0].target");
        assert_eq!(diags[0].pos.line, 1);
        assert!(
            diags[0]
                .message
                .contains("expected an integer from 0 to 65535")
        );
        assert_eq!(diags[1].hint.as_deref(), Some("did you mean \"tcp\"?"));
        assert_eq!(diags[2].pos.line, 3);
    }

    #[test]
    fn units_are_checked() {
        let n = node("interval: 10\ntimeout: 5s\n");
        let sink = Sink::default();
        let h: api::service::Healthcheck = from_node(&n, "hc", &sink).unwrap();
        let diags = sink.into_inner();
        assert_eq!(diags.len(), 1);
        assert!(diags[0].message.contains("missing unit"));
        assert_eq!(h.timeout.unwrap().0, 5_000_000_000);
    }
}
