//! Variable interpolation of one string, as the Compose Specification defines it.
//!
//! Forms: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`,
//! `${VAR?err}`, `${VAR:+replacement}`, `${VAR+replacement}`, and `$$` for a literal
//! `$`. Defaults, replacements and messages are interpolated themselves, so
//! expressions nest. A `$` that starts none of these is kept as it is.
//!
//! A string is parsed completely before anything is looked up, so a malformed
//! expression is reported even inside a branch that the values would not select;
//! evaluation then only looks at the branch it needs.

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    /// `${VAR:?msg}` / `${VAR?msg}` with VAR unset (or empty, for `:?`).
    #[error("required variable {name} is missing a value: {message}")]
    Required { name: String, message: String },
    /// Malformed expression, e.g. `${` without `}` or `${}` or `${1abc}`; `offset` is
    /// the byte offset in the input where the bad expression starts.
    #[error("invalid interpolation format at character {offset}: {text}")]
    Syntax { offset: usize, text: String },
}

/// How deeply expressions may nest inside defaults before the input is refused
/// (keeps the recursion bounded whatever the input).
const MAX_DEPTH: usize = 64;

/// What a `${NAME<op>arg}` does when NAME is unset (or empty, with `:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `-`: use the argument instead.
    Default,
    /// `?`: fail with the argument as the message.
    Required,
    /// `+`: use the argument only when the variable *is* set.
    Replace,
}

/// One parsed piece of a string.
#[derive(Debug)]
enum Part<'a> {
    /// Literal text, copied as is.
    Text(&'a str),
    /// A variable reference, with its operator and argument if any.
    Var {
        name: &'a str,
        op: Option<(Op, bool, Vec<Part<'a>>)>,
    },
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Length in bytes of the variable name at the start of `b` (0 if there is none).
fn name_len(b: &[u8]) -> usize {
    match b.first() {
        Some(&c) if is_name_start(c) => b.iter().take_while(|&&c| is_name_char(c)).count(),
        _ => 0,
    }
}

/// Index in `b` of the `}` closing the `${` whose body starts at `from`. Every `{`
/// inside opens a level that a `}` closes (as compose-go counts them), so literal
/// braces in a default stay balanced.
fn closing_brace(b: &[u8], from: usize) -> Option<usize> {
    let mut depth = 1usize;
    for (i, &c) in b.iter().enumerate().skip(from) {
        match c {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Parse `s`, which starts at byte `base` of the caller's input.
fn parse(s: &str, base: usize, depth: usize) -> Result<Vec<Part<'_>>, InterpolateError> {
    let b = s.as_bytes();
    let mut parts = Vec::new();
    let mut text_start = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        let (part, next) = match b.get(i + 1) {
            Some(b'$') => (Part::Text(&s[i..i + 1]), i + 2),
            Some(b'{') => {
                let syntax = |text: &str| InterpolateError::Syntax {
                    offset: base + i,
                    text: text.to_owned(),
                };
                let end = closing_brace(b, i + 2).ok_or_else(|| syntax(&s[i..]))?;
                let whole = &s[i..=end];
                if depth >= MAX_DEPTH {
                    return Err(syntax(whole));
                }
                let body = &s[i + 2..end];
                let n = name_len(body.as_bytes());
                if n == 0 {
                    return Err(syntax(whole));
                }
                let rest = &body[n..];
                let (op, colon, arg_at) = match rest.as_bytes() {
                    [] => (None, false, 0),
                    [b':', b'-', ..] => (Some(Op::Default), true, 2),
                    [b':', b'?', ..] => (Some(Op::Required), true, 2),
                    [b':', b'+', ..] => (Some(Op::Replace), true, 2),
                    [b'-', ..] => (Some(Op::Default), false, 1),
                    [b'?', ..] => (Some(Op::Required), false, 1),
                    [b'+', ..] => (Some(Op::Replace), false, 1),
                    _ => return Err(syntax(whole)),
                };
                let op = match op {
                    Some(op) => {
                        let arg_base = base + i + 2 + n + arg_at;
                        Some((op, colon, parse(&rest[arg_at..], arg_base, depth + 1)?))
                    }
                    None => None,
                };
                let name = &body[..n];
                (Part::Var { name, op }, end + 1)
            }
            _ => match name_len(&b[i + 1..]) {
                0 => {
                    // Not an expression: the `$` stays, as part of the text.
                    i += 1;
                    continue;
                }
                n => (
                    Part::Var {
                        name: &s[i + 1..i + 1 + n],
                        op: None,
                    },
                    i + 1 + n,
                ),
            },
        };
        if text_start < i {
            parts.push(Part::Text(&s[text_start..i]));
        }
        parts.push(part);
        i = next;
        text_start = next;
    }
    if text_start < b.len() {
        parts.push(Part::Text(&s[text_start..]));
    }
    Ok(parts)
}

/// Append the value of `parts` to `out`, evaluating only the branches needed.
fn eval(
    parts: &[Part<'_>],
    lookup: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<(), InterpolateError> {
    for part in parts {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Var { name, op: None } => {
                if let Some(v) = lookup(name) {
                    out.push_str(&v);
                }
            }
            Part::Var {
                name,
                op: Some((op, colon, arg)),
            } => {
                let value = lookup(name);
                // With `:`, an empty value counts as unset.
                let set = value.as_ref().is_some_and(|v| !(*colon && v.is_empty()));
                match (op, set) {
                    (Op::Default | Op::Required, true) => {
                        out.push_str(value.as_deref().unwrap_or_default());
                    }
                    (Op::Default, false) | (Op::Replace, true) => eval(arg, lookup, out)?,
                    (Op::Replace, false) => {}
                    (Op::Required, false) => {
                        let mut message = String::new();
                        eval(arg, lookup, &mut message)?;
                        return Err(InterpolateError::Required {
                            name: (*name).to_owned(),
                            message,
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

/// Interpolate `input`, taking variable values from `lookup` (`None` = unset).
pub fn interpolate(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolateError> {
    if !input.contains('$') {
        return Ok(input.to_owned());
    }
    let parts = parse(input, 0, 0)?;
    let mut out = String::with_capacity(input.len());
    eval(&parts, lookup, &mut out)?;
    Ok(out)
}

/// Names of the variables the string refers to (for diagnostics), in order, without
/// duplicates. Names inside defaults and replacements count; malformed expressions
/// are skipped rather than reported.
pub fn variables(input: &str) -> Vec<String> {
    let b = input.as_bytes();
    let mut names: Vec<String> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        let start = match b.get(i + 1) {
            Some(b'$') => {
                i += 2;
                continue;
            }
            Some(b'{') => i + 2,
            _ => i + 1,
        };
        let n = name_len(&b[start..]);
        let name = &input[start..start + n];
        if n > 0 && !names.iter().any(|known| known == name) {
            names.push(name.to_owned());
        }
        // Continue inside the expression: its default may name more variables.
        i = start + n;
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("value".to_owned()),
            "EMPTY" => Some(String::new()),
            "B" => Some("bee".to_owned()),
            _ => None,
        }
    }

    fn ok(input: &str) -> String {
        match interpolate(input, &env) {
            Ok(s) => s,
            Err(e) => panic!("{input:?}: {e}"),
        }
    }

    fn err(input: &str) -> InterpolateError {
        match interpolate(input, &env) {
            Ok(s) => panic!("{input:?}: expected an error, got {s:?}"),
            Err(e) => e,
        }
    }

    fn syntax(offset: usize, text: &str) -> InterpolateError {
        InterpolateError::Syntax {
            offset,
            text: text.to_owned(),
        }
    }

    fn required(name: &str, message: &str) -> InterpolateError {
        InterpolateError::Required {
            name: name.to_owned(),
            message: message.to_owned(),
        }
    }

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(ok(""), "");
        assert_eq!(ok("no variables here"), "no variables here");
    }

    #[test]
    fn unbraced() {
        assert_eq!(ok("$SET"), "value");
        assert_eq!(ok("$EMPTY"), "");
        assert_eq!(ok("$UNSET"), "");
        // Longest name: `$SETX` is the variable SETX, not SET followed by X.
        assert_eq!(ok("$SETX|$SET.x|$SET-x|x$SET"), "|value.x|value-x|xvalue");
    }

    #[test]
    fn braced() {
        assert_eq!(ok("${SET}"), "value");
        assert_eq!(ok("${EMPTY}"), "");
        assert_eq!(ok("${UNSET}"), "");
        assert_eq!(ok("a${SET}b"), "avalueb");
    }

    #[test]
    fn default_when_unset_or_empty() {
        assert_eq!(ok("${SET:-d}"), "value");
        assert_eq!(ok("${EMPTY:-d}"), "d");
        assert_eq!(ok("${UNSET:-d}"), "d");
        assert_eq!(ok("${UNSET:-}"), "");
    }

    #[test]
    fn default_when_unset() {
        assert_eq!(ok("${SET-d}"), "value");
        assert_eq!(ok("${EMPTY-d}"), "");
        assert_eq!(ok("${UNSET-d}"), "d");
        assert_eq!(ok("${UNSET-}"), "");
    }

    #[test]
    fn required_when_unset_or_empty() {
        assert_eq!(ok("${SET:?boom}"), "value");
        assert_eq!(err("${EMPTY:?boom}"), required("EMPTY", "boom"));
        assert_eq!(err("${UNSET:?boom}"), required("UNSET", "boom"));
        assert_eq!(err("${UNSET:?}"), required("UNSET", ""));
    }

    #[test]
    fn required_when_unset() {
        assert_eq!(ok("${SET?boom}"), "value");
        assert_eq!(ok("${EMPTY?boom}"), "");
        assert_eq!(err("${UNSET?boom}"), required("UNSET", "boom"));
        assert_eq!(err("${UNSET?}"), required("UNSET", ""));
    }

    #[test]
    fn replacement_when_set_and_not_empty() {
        assert_eq!(ok("${SET:+r}"), "r");
        assert_eq!(ok("${EMPTY:+r}"), "");
        assert_eq!(ok("${UNSET:+r}"), "");
    }

    #[test]
    fn replacement_when_set() {
        assert_eq!(ok("${SET+r}"), "r");
        assert_eq!(ok("${EMPTY+r}"), "r");
        assert_eq!(ok("${UNSET+r}"), "");
    }

    #[test]
    fn error_message_text() {
        assert_eq!(
            err("${UNSET:?set it}").to_string(),
            "required variable UNSET is missing a value: set it"
        );
        assert_eq!(
            err("x ${").to_string(),
            "invalid interpolation format at character 2: ${"
        );
    }

    #[test]
    fn dollar_escapes() {
        assert_eq!(ok("$$"), "$");
        assert_eq!(ok("$$SET"), "$SET");
        assert_eq!(ok("$${SET}"), "${SET}");
        assert_eq!(ok("$$$SET"), "$value");
        assert_eq!(ok("$$$$"), "$$");
        assert_eq!(ok("${UNSET:-$$SET}"), "$SET");
    }

    #[test]
    fn lone_dollars_are_literal() {
        assert_eq!(ok("$"), "$");
        assert_eq!(ok("end$"), "end$");
        assert_eq!(ok("$ x"), "$ x");
        assert_eq!(ok("$1 and $-"), "$1 and $-");
        assert_eq!(ok("cost: $5.00"), "cost: $5.00");
    }

    #[test]
    fn bcrypt_like_default() {
        // `$2` and `$0` start no name, so they stay; `$oZcjK` is a variable (unset).
        assert_eq!(ok("${KIBANA_PASSWORD:-$2y$05$oZcjK}"), "$2y$05");
        assert_eq!(ok("${KIBANA_PASSWORD:-$2y$05$.oZcjK}"), "$2y$05$.oZcjK");
        // Doubling every `$` keeps the whole hash.
        assert_eq!(ok("${KIBANA_PASSWORD:-$$2y$$05$$oZcjK}"), "$2y$05$oZcjK");
        let with_var = |k: &str| (k == "oZcjK").then(|| "!".to_owned());
        assert_eq!(
            interpolate("${KIBANA_PASSWORD:-$2y$05$oZcjK}", &with_var),
            Ok("$2y$05!".to_owned())
        );
    }

    #[test]
    fn colon_inside_default() {
        assert_eq!(ok("${REGISTRY-127.0.0.1:5000}/x"), "127.0.0.1:5000/x");
        assert_eq!(ok("${UNSET:-a:b:-c}"), "a:b:-c");
    }

    #[test]
    fn nesting() {
        assert_eq!(ok("${UNSET:-${B:-x}}"), "bee");
        assert_eq!(ok("${UNSET:-${UNSET2:-x}}"), "x");
        assert_eq!(ok("${UNSET:-$B}"), "bee");
        assert_eq!(ok("${UNSET:-prefix-${B}-suffix}"), "prefix-bee-suffix");
        assert_eq!(ok("${SET:+[${B:+${UNSET:-deep}}]}"), "[deep]");
        assert_eq!(ok("${UNSET:-${UNSET:-a}-${B}}!"), "a-bee!");
        assert_eq!(err("${UNSET:?need ${B}}"), required("UNSET", "need bee"));
        // Literal braces in a default stay balanced.
        assert_eq!(ok("${UNSET:-{\"a\":1}}"), "{\"a\":1}");
        assert_eq!(ok("${SET:-{x}}"), "value");
    }

    #[test]
    fn only_the_needed_branch_is_evaluated() {
        assert_eq!(ok("${SET:?boom}"), "value");
        assert_eq!(ok("${SET:-${UNSET:?not evaluated}}"), "value");
        assert_eq!(ok("${UNSET:+${UNSET:?not evaluated}}"), "");
        assert_eq!(ok("${EMPTY-${UNSET:?not evaluated}}x"), "x");
    }

    #[test]
    fn syntax_errors_with_offsets() {
        assert_eq!(err("${"), syntax(0, "${"));
        assert_eq!(err("ab${SET"), syntax(2, "${SET"));
        assert_eq!(err("${}"), syntax(0, "${}"));
        assert_eq!(err("x ${1A}"), syntax(2, "${1A}"));
        assert_eq!(err("${A B}"), syntax(0, "${A B}"));
        assert_eq!(err("${SET:x}"), syntax(0, "${SET:x}"));
        assert_eq!(err("${SET:}"), syntax(0, "${SET:}"));
        assert_eq!(err("${-x}"), syntax(0, "${-x}"));
        // Inside a default, the offset is still the one in the whole input.
        assert_eq!(err("é ${UNSET:-ok ${9}}"), syntax(15, "${9}"));
        // Reported even in a branch the values do not select.
        assert_eq!(err("${SET:-${9}}"), syntax(7, "${9}"));
        // An unclosed inner expression leaves the outer one unclosed.
        assert_eq!(err("${A:-${B}"), syntax(0, "${A:-${B}"));
    }

    #[test]
    fn nesting_depth_is_bounded() {
        let deep = "${A:-".repeat(1000) + &"}".repeat(1000);
        assert!(matches!(err(&deep), InterpolateError::Syntax { .. }));
        let fine = "${A:-".repeat(10) + "x" + &"}".repeat(10);
        assert_eq!(ok(&fine), "x");
    }

    #[test]
    fn utf8_around_expressions() {
        assert_eq!(ok("héllo ${SET}é$B→"), "héllo valueébee→");
        assert_eq!(ok("${UNSET:-ünïcödé}"), "ünïcödé");
        assert_eq!(ok("€$€"), "€$€");
    }

    #[test]
    fn variable_names() {
        assert_eq!(variables("no vars"), Vec::<String>::new());
        assert_eq!(
            variables("$A ${B:-$C} $$D ${A} ${E:?${F}}"),
            ["A", "B", "C", "E", "F"]
        );
        assert_eq!(variables("$1 ${ ${} $_x"), ["_x"]);
        assert_eq!(variables("${A B} ${C"), ["A", "C"]);
    }

    /// A deterministic linear congruential generator (no extra dependencies).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) as usize
        }
    }

    #[test]
    fn never_panics() {
        const ALPHABET: [&str; 14] = [
            "$", "{", "}", ":", "-", "?", "+", "A", "B", "_", "1", "x", " ", "é",
        ];
        let mut rng = Lcg(0x5eed);
        for _ in 0..2000 {
            let len = rng.next() % 16;
            let s: String = (0..len)
                .map(|_| ALPHABET[rng.next() % ALPHABET.len()])
                .collect();
            match interpolate(&s, &env) {
                Ok(_) | Err(InterpolateError::Required { .. }) => {}
                Err(InterpolateError::Syntax { offset, .. }) => {
                    assert!(s.is_char_boundary(offset) && s[offset..].starts_with("${"));
                }
            }
            for name in variables(&s) {
                assert!(s.contains(&name));
            }
        }
    }
}
