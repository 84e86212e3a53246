//! Words of an instruction: splitting on unquoted whitespace, then quote removal and
//! variable substitution the way Docker's shell lexer does it (`$VAR`, `${VAR}`,
//! `${VAR:-default}`, `${VAR:+alternative}`, `${VAR-x}`, `${VAR+x}`, `${VAR:?msg}`,
//! `${VAR?msg}`). Pure: variables come from a lookup function.

/// Why a word does not expand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WordError {
    #[error("unterminated {what} in {word:?}")]
    Unterminated { what: &'static str, word: String },
    #[error("bad substitution {text:?}")]
    BadSubstitution { text: String },
    #[error("{name}: {message}")]
    Required { name: String, message: String },
}

/// Split `raw` into words on whitespace outside quotes; quotes and escapes stay in the
/// words (for [`expand`] to process).
pub fn split(raw: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == escape && q == '"' {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == q {
                    quote = None;
                }
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                in_word = true;
                cur.push(c);
                if c == escape {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == '"' || c == '\'' {
                    quote = Some(c);
                }
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// Remove quotes and escapes from `word` and substitute variables from `lookup`.
pub fn expand(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, WordError> {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let unterminated = |what| WordError::Unterminated {
        what,
        word: word.to_owned(),
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let end = find(&chars, i + 1, '\'').ok_or_else(|| unterminated("single quote"))?;
            out.extend(&chars[i + 1..end]);
            i = end + 1;
        } else if c == '"' {
            i += 1;
            loop {
                let Some(&d) = chars.get(i) else {
                    return Err(unterminated("double quote"));
                };
                if d == '"' {
                    i += 1;
                    break;
                }
                if d == escape {
                    match chars.get(i + 1) {
                        Some(&n) if n == '"' || n == '$' || n == escape => {
                            out.push(n);
                            i += 2;
                        }
                        _ => {
                            out.push(d);
                            i += 1;
                        }
                    }
                } else if d == '$' {
                    i = dollar(&chars, i, escape, lookup, &mut out, word)?;
                } else {
                    out.push(d);
                    i += 1;
                }
            }
        } else if c == escape {
            match chars.get(i + 1) {
                Some(&n) => out.push(n),
                None => out.push(c),
            }
            i += 2;
        } else if c == '$' {
            i = dollar(&chars, i, escape, lookup, &mut out, word)?;
        } else {
            out.push(c);
            i += 1;
        }
    }
    Ok(out)
}

fn find(chars: &[char], from: usize, c: char) -> Option<usize> {
    (from..chars.len()).find(|&j| chars[j] == c)
}

fn is_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Substitute the variable at `chars[i] == '$'`; returns the index after it.
fn dollar(
    chars: &[char],
    i: usize,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
    word: &str,
) -> Result<usize, WordError> {
    match chars.get(i + 1) {
        Some('{') => {
            let mut depth = 1;
            let mut j = i + 2;
            while j < chars.len() {
                match chars[j] {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    c if c == escape => j += 1,
                    _ => {}
                }
                j += 1;
            }
            if j >= chars.len() {
                return Err(WordError::Unterminated {
                    what: "${",
                    word: word.to_owned(),
                });
            }
            let inner: String = chars[i + 2..j].iter().collect();
            out.push_str(&braced(&inner, escape, lookup)?);
            Ok(j + 1)
        }
        Some(&c) if is_name(c) => {
            let mut j = i + 1;
            while j < chars.len() && is_name(chars[j]) {
                j += 1;
            }
            let name: String = chars[i + 1..j].iter().collect();
            out.push_str(&lookup(&name).unwrap_or_default());
            Ok(j)
        }
        _ => {
            out.push('$');
            Ok(i + 1)
        }
    }
}

/// The value of `${inner}`.
fn braced(
    inner: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, WordError> {
    let name_end = inner.find(|c: char| !is_name(c)).unwrap_or(inner.len());
    let (name, rest) = inner.split_at(name_end);
    let bad = || WordError::BadSubstitution {
        text: format!("${{{inner}}}"),
    };
    if name.is_empty() {
        return Err(bad());
    }
    let value = lookup(name);
    if rest.is_empty() {
        return Ok(value.unwrap_or_default());
    }
    let (colon, rest) = match rest.strip_prefix(':') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let mut it = rest.chars();
    let op = it.next().ok_or_else(bad)?;
    let arg = it.as_str();
    // With a colon an empty value counts as unset.
    let set = value.as_ref().is_some_and(|v| !colon || !v.is_empty());
    match op {
        '-' if set => Ok(value.unwrap_or_default()),
        '-' => expand(arg, escape, lookup),
        '+' if set => expand(arg, escape, lookup),
        '+' => Ok(String::new()),
        '?' if set => Ok(value.unwrap_or_default()),
        '?' => Err(WordError::Required {
            name: name.to_owned(),
            message: if arg.is_empty() {
                "is not set".into()
            } else {
                expand(arg, escape, lookup)?
            },
        }),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("alpha".into()),
            "E" => Some(String::new()),
            "SP" => Some("a b".into()),
            _ => None,
        }
    }

    fn x(w: &str) -> String {
        expand(w, '\\', &env).unwrap()
    }

    #[test]
    fn substitution_table() {
        for (word, want) in [
            ("$A", "alpha"),
            ("${A}x", "alphax"),
            ("$Ax", ""),
            ("${A:-d}", "alpha"),
            ("${NO:-d}", "d"),
            ("${E:-d}", "d"),
            ("${E-d}", ""),
            ("${NO-d}", "d"),
            ("${A:+set}", "set"),
            ("${NO:+set}", ""),
            ("${E:+set}", ""),
            ("${E+set}", "set"),
            ("${NO:-${A}}", "alpha"),
            ("'$A'", "$A"),
            ("\"$A b\"", "alpha b"),
            ("\\$A", "$A"),
            ("\"\\$A\"", "$A"),
            ("\"a\\b\"", "a\\b"),
            ("a\\ b", "a b"),
            ("$", "$"),
            ("$1x", ""),
            ("cost$", "cost$"),
            ("${SP}", "a b"),
        ] {
            assert_eq!(x(word), want, "{word}");
        }
        assert_eq!(expand("`$A", '`', &env).unwrap(), "$A");
    }

    #[test]
    fn errors() {
        assert!(matches!(
            expand("${A", '\\', &env),
            Err(WordError::Unterminated { .. })
        ));
        assert!(matches!(
            expand("\"abc", '\\', &env),
            Err(WordError::Unterminated { .. })
        ));
        assert!(matches!(
            expand("${:-x}", '\\', &env),
            Err(WordError::BadSubstitution { .. })
        ));
        assert!(matches!(
            expand("${A%x}", '\\', &env),
            Err(WordError::BadSubstitution { .. })
        ));
        let e = expand("${NO:?must be given}", '\\', &env).unwrap_err();
        assert_eq!(e.to_string(), "NO: must be given");
    }

    #[test]
    fn splitting_keeps_quotes() {
        assert_eq!(
            split(r#"a "b c"  'd e' f\ g h"#, '\\'),
            [r#"a"#, r#""b c""#, "'d e'", r"f\ g", "h"]
        );
        assert_eq!(split("  ", '\\'), Vec::<String>::new());
        assert_eq!(split(r#"k="v w" x=1"#, '\\'), [r#"k="v w""#, "x=1"]);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(word in "(?s).{0,60}", esc in proptest::sample::select(vec!['\\', '`'])) {
            let _ = expand(&word, esc, &env);
            let _ = split(&word, esc);
        }
    }
}
