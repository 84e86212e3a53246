//! Printing a stack in the compose model's canonical long form, as YAML or JSON.
//!
//! Strings are escaped for interpolation (`$` -> `$$`), so the output loads back to the
//! same stack.

use api::StackSpec;
use serde_json::Value;
use std::fmt::Write;

/// Output format of `orch config`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

/// Render `spec` in `format`.
pub fn render(spec: &StackSpec, format: Format) -> String {
    let value = escape(serde_json::to_value(spec).unwrap_or(Value::Null));
    match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&value).unwrap_or_default();
            s.push('\n');
            s
        }
        Format::Yaml => {
            let mut out = String::new();
            yaml_map_body(&value, 0, &mut out);
            out
        }
    }
}

fn escape(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace('$', "$$")),
        Value::Array(items) => Value::Array(items.into_iter().map(escape).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, escape(v))).collect()),
        other => other,
    }
}

fn pad(out: &mut String, indent: usize) {
    for _ in 0..indent {
        out.push(' ');
    }
}

fn yaml_map_body(v: &Value, indent: usize, out: &mut String) {
    let Value::Object(map) = v else { return };
    for (k, val) in map {
        pad(out, indent);
        out.push_str(&scalar_text(k));
        out.push(':');
        yaml_value_after_key(val, indent, out);
    }
}

fn yaml_value_after_key(val: &Value, indent: usize, out: &mut String) {
    match val {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            yaml_map_body(val, indent + 2, out);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            yaml_seq_body(items, indent + 2, out);
        }
        other => {
            out.push(' ');
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

fn yaml_seq_body(items: &[Value], indent: usize, out: &mut String) {
    for item in items {
        pad(out, indent);
        out.push_str("- ");
        match item {
            Value::Object(m) if !m.is_empty() => {
                let mut first = true;
                for (k, val) in m {
                    if !first {
                        pad(out, indent + 2);
                    }
                    first = false;
                    out.push_str(&scalar_text(k));
                    out.push(':');
                    yaml_value_after_key(val, indent + 2, out);
                }
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                yaml_seq_body(inner, indent + 2, out);
            }
            other => {
                out.push_str(&inline(other));
                out.push('\n');
            }
        }
    }
}

fn inline(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => scalar_text(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// A string as a YAML scalar: plain when that reads back as the same string, else
/// double-quoted.
pub fn scalar_text(s: &str) -> String {
    if is_plain_safe(s) {
        return s.to_owned();
    }
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            '\r' => q.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(q, "\\x{:02x}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

fn is_plain_safe(s: &str) -> bool {
    if s.is_empty() || s.trim() != s {
        return false;
    }
    let first = s.chars().next().unwrap_or(' ');
    if !(first.is_alphanumeric() || "_./".contains(first)) {
        return false;
    }
    if !s
        .chars()
        .all(|c| c.is_alphanumeric() || "_./@+=:-,".contains(c))
    {
        return false;
    }
    if s.contains(": ") || s.ends_with(':') {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    let ambiguous = matches!(
        lower.as_str(),
        "null" | "~" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
    ) || s.parse::<f64>().is_ok()
        || s.starts_with("0x")
        || s.starts_with("0o")
        || s.chars()
            .all(|c| c.is_ascii_digit() || c == ':' || c == '_' || c == '.');
    !ambiguous
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ambiguous_strings_are_quoted() {
        for s in [
            "80", "true", "null", "", " x", "a: b", "#x", "1.5", "22:22", "$x", "a\nb", "*x", "-x",
        ] {
            assert!(
                scalar_text(s).starts_with('"'),
                "{s:?} -> {}",
                scalar_text(s)
            );
        }
        for s in [
            "nginx:1.27",
            "web",
            "/var/lib/x",
            "node.role==manager",
            "a-b_c.d",
        ] {
            assert_eq!(scalar_text(s), s);
        }
    }
}
