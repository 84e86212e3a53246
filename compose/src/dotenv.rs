//! `.env` and `env_file` files: `KEY=VALUE` lines with quotes, comments, `export`
//! prefixes and `${VAR}` substitution, as Docker Compose reads them.

use crate::interpolate::interpolate;

/// A line that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct DotenvError {
    pub line: usize,
    pub message: String,
}

/// Parse dotenv `text`. `lookup` supplies outside values for bare `KEY` lines and for
/// references to variables not defined earlier in the file. Later keys replace
/// earlier ones; the result keeps the order of first definition.
pub fn parse(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, DotenvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line_no = i + 1;
        let line = lines[i].trim_start();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export ")
            .map(str::trim_start)
            .unwrap_or(line);
        let sep = line.find(['=', ':']);
        let Some(sep) = sep else {
            let key = line.trim_end();
            if key.contains(char::is_whitespace) {
                return Err(DotenvError {
                    line: line_no,
                    message: format!("key cannot contain a space: {key:?}"),
                });
            }
            check_key(key, line_no)?;
            if let Some(v) = lookup(key) {
                set(&mut out, key, v);
            }
            continue;
        };
        let key = line[..sep].trim();
        if key.contains(char::is_whitespace) {
            return Err(DotenvError {
                line: line_no,
                message: format!("key cannot contain a space: {key:?}"),
            });
        }
        check_key(key, line_no)?;
        let raw = line[sep + 1..].trim_start();
        let value = match raw.chars().next() {
            Some(q @ ('\'' | '"')) => {
                // The value may continue on the following lines until its closing quote.
                let mut buf = raw[1..].to_owned();
                let close = loop {
                    if let Some(pos) = find_close(&buf, q) {
                        break pos;
                    }
                    if i >= lines.len() {
                        return Err(DotenvError {
                            line: line_no,
                            message: format!("unterminated quoted value of {key}"),
                        });
                    }
                    buf.push('\n');
                    buf.push_str(lines[i]);
                    i += 1;
                };
                let after = buf[close + 1..].trim();
                if !after.is_empty() && !after.starts_with('#') {
                    return Err(DotenvError {
                        line: line_no,
                        message: format!(
                            "unexpected text after the quoted value of {key}: {after:?}"
                        ),
                    });
                }
                let inner = &buf[..close];
                if q == '\'' {
                    inner.replace("\\'", "'")
                } else {
                    substitute(&unescape(inner), &out, lookup, line_no)?
                }
            }
            _ => {
                let v = match raw.find(" #").or_else(|| raw.find("\t#")) {
                    Some(c) => &raw[..c],
                    None if raw.starts_with('#') => "",
                    None => raw,
                };
                substitute(v.trim_end(), &out, lookup, line_no)?
            }
        };
        if key.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        set(&mut out, key, value);
    }
    Ok(out)
}

fn check_key(key: &str, line: usize) -> Result<(), DotenvError> {
    if key.is_empty() {
        return Err(DotenvError {
            line,
            message: "missing key before '='".into(),
        });
    }
    if let Some(c) = key
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(DotenvError {
            line,
            message: format!(
                "key {key:?} contains {c:?}; keys are letters, digits, '_', '.' and '-'"
            ),
        });
    }
    Ok(())
}

fn set(out: &mut Vec<(String, String)>, key: &str, value: String) {
    match out.iter_mut().find(|(k, _)| k == key) {
        Some(e) => e.1 = value,
        None => out.push((key.to_owned(), value)),
    }
}

/// Index of the closing quote `q` in `s` (not escaped by a backslash).
fn find_close(s: &str, q: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == q {
            return Some(i);
        }
    }
    None
}

/// Escapes of double-quoted values.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('$') => out.push_str("$$"),
            Some(c @ ('"' | '\\' | '\'')) => out.push(c),
            Some(c) => {
                out.push('\\');
                out.push(c);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn substitute(
    v: &str,
    defined: &[(String, String)],
    lookup: &dyn Fn(&str) -> Option<String>,
    line: usize,
) -> Result<String, DotenvError> {
    if !v.contains('$') {
        return Ok(v.to_owned());
    }
    let find = |k: &str| {
        defined
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .or_else(|| lookup(k))
    };
    interpolate(v, &find).map_err(|e| DotenvError {
        line,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    fn map(text: &str) -> Vec<(String, String)> {
        parse(text, &none).unwrap()
    }

    fn get<'a>(pairs: &'a [(String, String)], k: &str) -> &'a str {
        pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {k}"))
    }

    #[test]
    fn plain() {
        let p = map(
            "OPTION_A=1\nOPTION_B=2\nOPTION_C= 3\nOPTION_D =4\nOPTION_E = 5\n456 = ABC\nOPTION_F = \nOPTION_G=\nOPTION_H = my string # Inline comment\n",
        );
        assert_eq!(p.len(), 8);
        assert_eq!(get(&p, "OPTION_C"), "3");
        assert_eq!(get(&p, "OPTION_E"), "5");
        assert_eq!(get(&p, "OPTION_F"), "");
        assert_eq!(get(&p, "OPTION_H"), "my string");
    }

    #[test]
    fn quoted() {
        let p = map(
            "OPTION_A='1'\nOPTION_C=''\nOPTION_D='\\n'\nOPTION_G=\"\"\nOPTION_H=\"\\n\"\nOPTION_I = \"echo 'asd'\" # Inline comment\nOPTION_J = 'first line\nsecond line\nthird line\nand so on'\nOPTION_K='Let\\'s go!'\nOPTION_Z = \"last value\"\n",
        );
        assert_eq!(get(&p, "OPTION_A"), "1");
        assert_eq!(get(&p, "OPTION_C"), "");
        assert_eq!(get(&p, "OPTION_D"), "\\n");
        assert_eq!(get(&p, "OPTION_H"), "\n");
        assert_eq!(get(&p, "OPTION_I"), "echo 'asd'");
        assert_eq!(
            get(&p, "OPTION_J"),
            "first line\nsecond line\nthird line\nand so on"
        );
        assert_eq!(get(&p, "OPTION_K"), "Let's go!");
        assert_eq!(get(&p, "OPTION_Z"), "last value");
    }

    #[test]
    fn export_bom_colon_and_special_keys() {
        let p = map(
            "\u{feff}export OPTION_A=2\nexport OPTION_B='\\n'\nFOO: BAR\nVAR.WITH.DOTS=1\nVAR-WITH-DASHES=2\n",
        );
        assert_eq!(get(&p, "OPTION_A"), "2");
        assert_eq!(get(&p, "OPTION_B"), "\\n");
        assert_eq!(get(&p, "FOO"), "BAR");
        assert_eq!(get(&p, "VAR.WITH.DOTS"), "1");
        assert_eq!(get(&p, "VAR-WITH-DASHES"), "2");
        let p = map("export OPTION_A='postgres://localhost:5432/database?sslmode=disable'\n");
        assert_eq!(
            get(&p, "OPTION_A"),
            "postgres://localhost:5432/database?sslmode=disable"
        );
    }

    #[test]
    fn substitution_and_inheritance() {
        let p = parse(
            "OPTION_A=1\nOPTION_B=${OPTION_A}\nOPTION_C=$OPTION_B\nOPTION_D=${OPTION_A}_${OPTION_B}\nOPTION_E=${OPTION_NOT_DEFINED}\nF=${NOPE:-dflt}\nINHERITED\nMISSING\n",
            &|k| (k == "INHERITED").then(|| "from-os".to_owned()),
        )
        .unwrap();
        assert_eq!(get(&p, "OPTION_C"), "1");
        assert_eq!(get(&p, "OPTION_D"), "1_1");
        assert_eq!(get(&p, "OPTION_E"), "");
        assert_eq!(get(&p, "F"), "dflt");
        assert_eq!(get(&p, "INHERITED"), "from-os");
        assert!(!p.iter().any(|(k, _)| k == "MISSING"));
    }

    #[test]
    fn invalid_line() {
        let e = parse(
            "# some comments\nfoo=\"\n  a\n  multine\n  value\n\"\nINVALID LINE\nzot=qix",
            &none,
        )
        .unwrap_err();
        assert_eq!(e.line, 7);
        assert!(e.message.contains("key cannot contain a space"), "{e}");
        assert!(
            parse("A=\"open\n", &none)
                .unwrap_err()
                .message
                .contains("unterminated")
        );
    }
}
