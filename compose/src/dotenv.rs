//! `.env` and `env_file` files, read the way compose-go's `dotenv` package (itself
//! derived from joho/godotenv) reads them.
//!
//! One statement per line: `KEY=VALUE` or `KEY: VALUE`, optionally after `export `;
//! a bare `KEY` takes its value from outside. Unquoted values end at the line's end
//! or at an inline ` #` comment; single-quoted values are literal; double-quoted
//! values know backslash escapes. Quoted values may span lines. Unquoted and
//! double-quoted values are interpolated (see [`crate::interpolate`]).

use crate::interpolate::interpolate;
use std::collections::HashMap;

/// Why dotenv text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct DotenvError {
    /// 1-based line of the statement at fault (where its value starts, for values
    /// spanning lines).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Parse dotenv text. `lookup` supplies values from outside (the OS environment) for
/// bare `KEY` lines and, before the file's earlier keys, for `${VAR}` references.
///
/// Returns the pairs in file order without duplicates: a key defined again keeps its
/// first position and takes the later value. Keys starting with a digit are dropped.
pub fn parse(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, DotenvError> {
    let mut rest = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut line = 1;
    let mut vars = Vars::default();
    while !rest.is_empty() {
        let (this, next) = split_line(rest);
        let start = line;
        let fail = |message: String| DotenvError {
            line: start,
            message,
        };
        let statement = this.trim_start();
        if statement.is_empty() || statement.starts_with('#') {
            rest = next;
            line += 1;
            continue;
        }
        let (key, value) = split_key(strip_export(statement)).map_err(fail)?;
        let value = match value {
            None => {
                rest = next;
                line += 1;
                lookup(key)
            }
            Some(value) => {
                let value = value.trim_start();
                match value.chars().next() {
                    Some(quote @ ('"' | '\'')) => {
                        // `value` is a suffix of `this`, hence of `rest`: the quoted
                        // text runs on from there, possibly over several lines.
                        let body = &rest[this.len() - value.len() + 1..];
                        let Some((raw, close)) = scan_quoted(body, quote) else {
                            return Err(fail(format!("unterminated quoted value for {key}")));
                        };
                        let (after, following) = split_line(&body[close + 1..]);
                        let after = after.trim();
                        if !after.is_empty() && !after.starts_with('#') {
                            return Err(fail(format!(
                                "unexpected text after the quoted value of {key}"
                            )));
                        }
                        rest = following;
                        line += 1 + body[..close].matches('\n').count();
                        if quote == '"' {
                            Some(vars.substitute(&raw, lookup).map_err(fail)?)
                        } else {
                            Some(raw)
                        }
                    }
                    _ => {
                        rest = next;
                        line += 1;
                        let value = strip_comment(value).trim_end();
                        Some(vars.substitute(value, lookup).map_err(fail)?)
                    }
                }
            }
        };
        if let Some(value) = value
            && !key.starts_with(|c: char| c.is_numeric())
        {
            vars.set(key, value);
        }
    }
    Ok(vars.pairs)
}

/// The variables read so far, in order of first definition.
#[derive(Default)]
struct Vars {
    pairs: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl Vars {
    fn set(&mut self, key: &str, value: String) {
        match self.index.get(key) {
            Some(&i) => {
                if let Some(pair) = self.pairs.get_mut(i) {
                    pair.1 = value;
                }
            }
            None => {
                self.index.insert(key.to_owned(), self.pairs.len());
                self.pairs.push((key.to_owned(), value));
            }
        }
    }

    fn get(&self, key: &str) -> Option<String> {
        let &i = self.index.get(key)?;
        self.pairs.get(i).map(|(_, v)| v.clone())
    }

    /// Interpolate `value`: the outside environment (`lookup`) first, then earlier
    /// keys of the file, as compose-go does (a shell variable overrides the file).
    fn substitute(
        &self,
        value: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<String, String> {
        interpolate(value, &|name| lookup(name).or_else(|| self.get(name)))
            .map_err(|e| e.to_string())
    }
}

/// `s` up to its first newline (excluded), and what follows that newline.
fn split_line(s: &str) -> (&str, &str) {
    match s.split_once('\n') {
        Some((line, rest)) => (line, rest),
        None => (s, ""),
    }
}

/// `statement` without a leading `export` keyword (which needs blanks after it).
fn strip_export(statement: &str) -> &str {
    match statement.strip_prefix("export") {
        Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start(),
        _ => statement,
    }
}

/// Characters allowed in a key, besides letters and digits.
fn is_key_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '[' | ']')
}

/// Split a statement at its first `=` or `:` into the key and the rest of the line
/// (`None` for a bare key).
fn split_key(statement: &str) -> Result<(&str, Option<&str>), String> {
    let mut split = (statement, None);
    for (i, c) in statement.char_indices() {
        if c == '=' || c == ':' {
            split = (&statement[..i], Some(&statement[i + 1..]));
            break;
        }
        if !c.is_whitespace() && !is_key_char(c) {
            return Err(format!(
                "unexpected character {c:?} in variable name {:?}",
                statement[..i].trim()
            ));
        }
    }
    let key = split.0.trim_end();
    if key.contains(char::is_whitespace) {
        return Err("key cannot contain a space".to_owned());
    }
    if key.is_empty() {
        return Err("missing variable name before the value".to_owned());
    }
    Ok((key, split.1))
}

/// An unquoted value without its inline comment (a `#` after a blank).
fn strip_comment(value: &str) -> &str {
    let b = value.as_bytes();
    match (1..b.len()).find(|&i| b[i] == b'#' && matches!(b[i - 1], b' ' | b'\t')) {
        Some(i) => &value[..i],
        None => value,
    }
}

/// Read a quoted value from `body` (the text after the opening `quote`). Returns the
/// value and the index of the closing quote in `body`, or `None` if it never closes.
///
/// In both kinds a backslash escapes the quote; other backslashes stay as written
/// in single quotes. Double-quoted values get their escapes replaced and are ready
/// for interpolation (`\$` becomes `$$`).
fn scan_quoted(body: &str, quote: char) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == quote {
            return Some((out, i));
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let (_, e) = chars.next()?;
        if e == quote {
            out.push(e);
            continue;
        }
        if quote == '\'' {
            out.push('\\');
            out.push(e);
            continue;
        }
        match e {
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '$' => out.push_str("$$"),
            '0' => {
                // `\0` and three octal digits (XSI echo); anything else stays as is.
                let mut digits = String::new();
                while digits.len() < 3 {
                    match chars.peek() {
                        Some(&(_, d)) if d.is_ascii_digit() => {
                            digits.push(d);
                            chars.next();
                        }
                        _ => break,
                    }
                }
                match u8::from_str_radix(&digits, 8) {
                    Ok(byte) if digits.len() == 3 => out.push(char::from(byte)),
                    _ => {
                        out.push_str("\\0");
                        out.push_str(&digits);
                    }
                }
            }
            _ => {
                out.push('\\');
                out.push(e);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn os_env(name: &str) -> Option<String> {
        match name {
            "VAR_TO_BE_LOADED_FROM_OS_ENV" => Some("SOME_RANDOM_VALUE".to_owned()),
            "OPTION_A" => Some("5".to_owned()),
            _ => None,
        }
    }

    fn read(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Vec<(String, String)> {
        match parse(text, lookup) {
            Ok(pairs) => pairs,
            Err(e) => panic!("{text:?}: {e}"),
        }
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn fails(text: &str) -> DotenvError {
        match parse(text, &no_env) {
            Ok(p) => panic!("{text:?}: expected an error, got {p:?}"),
            Err(e) => e,
        }
    }

    /// The value of one single-statement text.
    fn one(text: &str) -> String {
        match read(text, &no_env).as_slice() {
            [(_, v)] => v.clone(),
            other => panic!("{text:?}: {other:?}"),
        }
    }

    const PLAIN: &str = "OPTION_A=1\nOPTION_B=2\nOPTION_C= 3\nOPTION_D =4\nOPTION_E = 5\n\
        456 = ABC\nOPTION_F = \nOPTION_G=\nOPTION_H = my string # Inline comment\n";

    const PLAIN_EXPECTED: [(&str, &str); 8] = [
        ("OPTION_A", "1"),
        ("OPTION_B", "2"),
        ("OPTION_C", "3"),
        ("OPTION_D", "4"),
        ("OPTION_E", "5"),
        ("OPTION_F", ""),
        ("OPTION_G", ""),
        ("OPTION_H", "my string"),
    ];

    #[test]
    fn fixture_plain() {
        assert_eq!(read(PLAIN, &no_env), pairs(&PLAIN_EXPECTED));
    }

    #[test]
    fn fixture_utf8_bom() {
        let text = "\u{feff}OPTION_A=1\nOPTION_B=2\nOPTION_C= 3\nOPTION_D =4\nOPTION_E = 5\n\
            456 = ABC\nOPTION_F =\nOPTION_G=\nOPTION_H = my string # Inline comment\n";
        assert_eq!(read(text, &no_env), pairs(&PLAIN_EXPECTED));
    }

    #[test]
    fn fixture_quoted() {
        let text = "OPTION_A='1'\nOPTION_B='2'\nOPTION_C=''\nOPTION_D='\\n'\nOPTION_E=\"1\"\n\
            OPTION_F=\"2\"\nOPTION_G=\"\"\nOPTION_H=\"\\n\"\n\
            OPTION_I = \"echo 'asd'\" # Inline comment\n\
            OPTION_J = 'first line\nsecond line\nthird line\nand so on'\n\
            OPTION_K='Let\\'s go!'\nOPTION_Z = \"last value\"\n";
        let expected = pairs(&[
            ("OPTION_A", "1"),
            ("OPTION_B", "2"),
            ("OPTION_C", ""),
            ("OPTION_D", "\\n"),
            ("OPTION_E", "1"),
            ("OPTION_F", "2"),
            ("OPTION_G", ""),
            ("OPTION_H", "\n"),
            ("OPTION_I", "echo 'asd'"),
            ("OPTION_J", "first line\nsecond line\nthird line\nand so on"),
            ("OPTION_K", "Let's go!"),
            ("OPTION_Z", "last value"),
        ]);
        assert_eq!(read(text, &no_env), expected);
    }

    #[test]
    fn fixture_exported() {
        let text = "export OPTION_A=2\nexport OPTION_B='\\n'\n";
        let expected = pairs(&[("OPTION_A", "2"), ("OPTION_B", "\\n")]);
        assert_eq!(read(text, &no_env), expected);
    }

    #[test]
    fn fixture_equals() {
        let text = "export OPTION_A='postgres://localhost:5432/database?sslmode=disable'\n\n";
        let expected = pairs(&[(
            "OPTION_A",
            "postgres://localhost:5432/database?sslmode=disable",
        )]);
        assert_eq!(read(text, &no_env), expected);
    }

    #[test]
    fn fixture_special() {
        let text = "VAR.WITH.DOTS=dots\nVAR_WITH_UNDERSCORES=underscores\nVAR-WITH-DASHES=dashes\n";
        let expected = pairs(&[
            ("VAR.WITH.DOTS", "dots"),
            ("VAR_WITH_UNDERSCORES", "underscores"),
            ("VAR-WITH-DASHES", "dashes"),
        ]);
        assert_eq!(read(text, &no_env), expected);
    }

    #[test]
    fn fixture_unquoted() {
        let text = "OPTION_A = \"some quoted phrase\"\n\
            OPTION_B=first one with an unquoted phrase\n\
            OPTION_C = then another one with an unquoted phrase\n\
            OPTION_D = then another one with an unquoted phrase special è char\n\
            OPTION_E = \"then another one quoted phrase\"\n";
        let expected = pairs(&[
            ("OPTION_A", "some quoted phrase"),
            ("OPTION_B", "first one with an unquoted phrase"),
            ("OPTION_C", "then another one with an unquoted phrase"),
            (
                "OPTION_D",
                "then another one with an unquoted phrase special è char",
            ),
            ("OPTION_E", "then another one quoted phrase"),
        ]);
        assert_eq!(read(text, &no_env), expected);
    }

    #[test]
    fn fixture_inherited_multi_var() {
        let text = "foo=bar\nVAR_TO_BE_LOADED_FROM_OS_ENV\nbar=baz\n";
        let expected = pairs(&[
            ("foo", "bar"),
            ("VAR_TO_BE_LOADED_FROM_OS_ENV", "SOME_RANDOM_VALUE"),
            ("bar", "baz"),
        ]);
        assert_eq!(read(text, &os_env), expected);
    }

    #[test]
    fn fixture_inherited_single_var() {
        let text = "VAR_TO_BE_LOADED_FROM_OS_ENV\n";
        let expected = pairs(&[("VAR_TO_BE_LOADED_FROM_OS_ENV", "SOME_RANDOM_VALUE")]);
        assert_eq!(read(text, &os_env), expected);
        assert_eq!(read(text, &no_env), []);
    }

    #[test]
    fn fixture_inherited_not_found() {
        assert_eq!(read("VARIABLE_NOT_FOUND\n", &os_env), []);
        // Also without a final newline, and after `export`.
        assert_eq!(read("export VARIABLE_NOT_FOUND", &os_env), []);
        assert_eq!(
            read("VAR_TO_BE_LOADED_FROM_OS_ENV", &os_env),
            pairs(&[("VAR_TO_BE_LOADED_FROM_OS_ENV", "SOME_RANDOM_VALUE")])
        );
    }

    const SUBSTITUTIONS: &str = "OPTION_A=1\nOPTION_B=${OPTION_A}\nOPTION_C=$OPTION_B\n\
        OPTION_D=${OPTION_A}_${OPTION_B}\nOPTION_E=${OPTION_NOT_DEFINED}\n";

    const SUBSTITUTIONS_DEFAULT: &str = "OPTION_A=${OPTION_A:-1}\nOPTION_B=${OPTION_A}\n\
        OPTION_C=$OPTION_B\nOPTION_D=${OPTION_A}_${OPTION_B}\nOPTION_E=${OPTION_NOT_DEFINED}\n";

    fn options(a: &str, b: &str, c: &str, d: &str) -> Vec<(String, String)> {
        pairs(&[
            ("OPTION_A", a),
            ("OPTION_B", b),
            ("OPTION_C", c),
            ("OPTION_D", d),
            ("OPTION_E", ""),
        ])
    }

    #[test]
    fn fixture_substitutions() {
        assert_eq!(read(SUBSTITUTIONS, &no_env), options("1", "1", "1", "1_1"));
        // The outside environment comes before keys defined earlier in the file;
        // the file's own OPTION_A keeps the file's value.
        assert_eq!(read(SUBSTITUTIONS, &os_env), options("1", "5", "5", "5_5"));
    }

    #[test]
    fn fixture_substitutions_default() {
        let text = SUBSTITUTIONS_DEFAULT;
        assert_eq!(read(text, &no_env), options("1", "1", "1", "1_1"));
        assert_eq!(read(text, &os_env), options("5", "5", "5", "5_5"));
    }

    #[test]
    fn fixture_custom_format() {
        // Not meant as dotenv upstream, but it is the `KEY:VALUE` form.
        let expected = pairs(&[("FOO", "BAR"), ("ZOT", "QIX")]);
        assert_eq!(read("FOO:BAR\nZOT:QIX", &no_env), expected);
    }

    #[test]
    fn fixture_invalid1() {
        let text = "# some comments\nfoo=\"\n  a\n  multine\n  value\n\"\nINVALID LINE\nzot=qix";
        let e = fails(text);
        assert_eq!(e.line, 7);
        assert_eq!(e.message, "key cannot contain a space");
        assert_eq!(e.to_string(), "line 7: key cannot contain a space");
    }

    #[test]
    fn separators_and_export() {
        assert_eq!(one("OPTION_A: Foo=bar"), "Foo=bar");
        assert_eq!(one("OPTION_A=1:B"), "1:B");
        assert_eq!(one("FOO=foobar="), "foobar=");
        assert_eq!(read("exportFOO=2", &no_env), pairs(&[("exportFOO", "2")]));
        assert_eq!(
            read("export.FOO= 2", &no_env),
            pairs(&[("export.FOO", "2")])
        );
        assert_eq!(read("\texport\tA=2", &no_env), pairs(&[("A", "2")]));
        assert_eq!(one("export A=\"export A\""), "export A");
        assert_eq!(read("A[0]=x", &no_env), pairs(&[("A[0]", "x")]));
    }

    #[test]
    fn comments_and_blank_lines() {
        let text = "\n  # comment\n\t\n A=1 # c\n#B=2\nC=3#not-a-comment\nD=x\t#tab\nE=#x\n";
        let expected = pairs(&[
            ("A", "1"),
            ("C", "3#not-a-comment"),
            ("D", "x"),
            ("E", "#x"),
        ]);
        assert_eq!(read(text, &no_env), expected);
        assert_eq!(one("A=\"b#c\"#"), "b#c");
        assert_eq!(one("A='b#c' # comment"), "b#c");
    }

    #[test]
    fn double_quote_escapes() {
        assert_eq!(one(r#"A="escaped\"bar""#), "escaped\"bar");
        assert_eq!(one(r#"A="a\tb\r\\c""#), "a\tb\r\\c");
        assert_eq!(one(r#"A="\a\b\f\v""#), "\u{7}\u{8}\u{c}\u{b}");
        assert_eq!(one(r#"A="\0123\08\x07\ b\c""#), "S\\08\\x07\\ b\\c");
        assert_eq!(one(r#"A="it\'s""#), "it\\'s");
        // Single quotes keep backslashes, except before a single quote.
        assert_eq!(one(r"A='a\tb\\c\'d'"), "a\\tb\\\\c'd");
        // Unquoted values have no escapes.
        assert_eq!(one(r"A=a\tb"), "a\\tb");
    }

    #[test]
    fn substitution_rules() {
        let env = |k: &str| (k == "OUT").then(|| "outside".to_owned());
        let text =
            "A=x\nB=\"$A ${OUT} \\$A \\${A}\"\nC='$A'\nD=$$A\nE=${NONE:-d}\nF=\"${A:+set}\"\n";
        let expected = pairs(&[
            ("A", "x"),
            ("B", "x outside $A ${A}"),
            ("C", "$A"),
            ("D", "$A"),
            ("E", "d"),
            ("F", "set"),
        ]);
        assert_eq!(read(text, &env), expected);
    }

    #[test]
    fn duplicates_keep_first_position_and_last_value() {
        let text = "A=1\nB=2\nA=3\nC=$A\n";
        let expected = pairs(&[("A", "3"), ("B", "2"), ("C", "3")]);
        assert_eq!(read(text, &no_env), expected);
    }

    #[test]
    fn multi_line_values_and_line_numbers() {
        let text = "A=\"one\ntwo\"\nB='x\n\ny'\nC=3\nD=${\n";
        let e = fails(text);
        assert_eq!(e.line, 7, "{e}");
        assert!(e.message.contains("invalid interpolation format"), "{e}");
        let text = "A=\"one\ntwo\"\nB='x\n\ny'\nC=3\n";
        let expected = pairs(&[("A", "one\ntwo"), ("B", "x\n\ny"), ("C", "3")]);
        assert_eq!(read(text, &no_env), expected);
    }

    #[test]
    fn errors() {
        for (text, line, message) in [
            ("A=1\nB=\"open\nC=3\n", 2, "unterminated quoted value for B"),
            ("A='it\\'", 1, "unterminated quoted value for A"),
            (
                "\n\nA=\"x\" B=y\n",
                3,
                "unexpected text after the quoted value of A",
            ),
            (
                "lol$wut",
                1,
                "unexpected character '$' in variable name \"lol\"",
            ),
            ("A B=1", 1, "key cannot contain a space"),
            ("=value", 1, "missing variable name before the value"),
            (
                "A=${X:?needed}",
                1,
                "required variable X is missing a value: needed",
            ),
        ] {
            let e = fails(text);
            assert_eq!((e.line, e.message.as_str()), (line, message), "{text:?}");
        }
    }

    #[test]
    fn crlf_line_ends() {
        let text = "A=1\r\nB=\"2\"\r\n# c\r\nC='x'  \r\n";
        let expected = pairs(&[("A", "1"), ("B", "2"), ("C", "x")]);
        assert_eq!(read(text, &no_env), expected);
    }

    #[test]
    fn never_panics() {
        const ALPHABET: [&str; 16] = [
            "A", "=", ":", "\"", "'", "\\", "#", " ", "\n", "$", "{", "}", "export ", "1", "é",
            "\r",
        ];
        let mut seed: u64 = 7;
        for _ in 0..3000 {
            let mut text = String::new();
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            for _ in 0..(seed >> 60) + 1 {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                text.push_str(ALPHABET[(seed >> 33) as usize % ALPHABET.len()]);
            }
            if let Err(e) = parse(&text, &os_env) {
                assert!(
                    e.line >= 1 && e.line <= text.split('\n').count(),
                    "{text:?}"
                );
            }
        }
    }
}
