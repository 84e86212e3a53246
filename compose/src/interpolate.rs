//! Variable interpolation in one string, as the Compose Specification defines it:
//! `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`, `${VAR?err}`,
//! `${VAR:+replacement}`, `${VAR+replacement}`, `$$` for a literal `$`; defaults,
//! replacements and messages are interpolated themselves (nesting).

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    /// `${VAR:?msg}` / `${VAR?msg}` with VAR unset (or empty, for `:?`).
    #[error("required variable {name} is missing a value: {message}")]
    Required { name: String, message: String },
    /// A malformed expression; `offset` is where it starts (bytes).
    #[error("invalid interpolation format at character {offset}: {text}")]
    Syntax { offset: usize, text: String },
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The index of the `}` closing the `${` whose content starts at `from`.
fn closing_brace(s: &str, from: usize) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = 0usize;
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'$' if b.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if b.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Interpolate `input`, looking variables up with `lookup`.
pub fn interpolate(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolateError> {
    let b = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    let mut literal_start = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        out.push_str(&input[literal_start..i]);
        match b.get(i + 1) {
            Some(b'$') => {
                out.push('$');
                i += 2;
            }
            Some(b'{') => {
                let start = i;
                let Some(end) = closing_brace(input, i + 2) else {
                    return Err(InterpolateError::Syntax {
                        offset: start,
                        text: input[start..].to_owned(),
                    });
                };
                out.push_str(&expression(
                    &input[i + 2..end],
                    start,
                    &input[start..=end],
                    lookup,
                )?);
                i = end + 1;
            }
            Some(&c) if is_name_start(c) => {
                let mut j = i + 1;
                while j < b.len() && is_name_char(b[j]) {
                    j += 1;
                }
                out.push_str(&lookup(&input[i + 1..j]).unwrap_or_default());
                i = j;
            }
            _ => {
                out.push('$');
                i += 1;
            }
        }
        literal_start = i;
    }
    out.push_str(&input[literal_start..]);
    Ok(out)
}

/// Evaluate the inside of `${...}`.
fn expression(
    body: &str,
    offset: usize,
    whole: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, InterpolateError> {
    let syntax = || InterpolateError::Syntax {
        offset,
        text: whole.to_owned(),
    };
    let b = body.as_bytes();
    let mut n = 0;
    while n < b.len() && is_name_char(b[n]) {
        n += 1;
    }
    let name = &body[..n];
    if name.is_empty() || !is_name_start(b[0]) {
        return Err(syntax());
    }
    let rest = &body[n..];
    let value = lookup(name);
    if rest.is_empty() {
        return Ok(value.unwrap_or_default());
    }
    let (colon, op, arg) = match rest.as_bytes() {
        [b':', op @ (b'-' | b'?' | b'+'), ..] => (true, *op, &rest[2..]),
        [op @ (b'-' | b'?' | b'+'), ..] => (false, *op, &rest[1..]),
        _ => return Err(syntax()),
    };
    // With ':', an empty value counts as unset.
    let set = match &value {
        Some(v) => !(colon && v.is_empty()),
        None => false,
    };
    match op {
        b'-' if set => Ok(value.unwrap_or_default()),
        b'-' => interpolate(arg, lookup),
        b'?' if set => Ok(value.unwrap_or_default()),
        b'?' => Err(InterpolateError::Required {
            name: name.to_owned(),
            message: interpolate(arg, lookup)?,
        }),
        _ if set => interpolate(arg, lookup),
        _ => Ok(String::new()),
    }
}

/// Names of the variables `input` refers to, in order, without duplicates.
pub fn variables(input: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let record = |name: &str, names: &mut Vec<String>| {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    };
    let b = input.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'$') => i += 2,
            Some(b'{') => {
                let mut j = i + 2;
                while j < b.len() && is_name_char(b[j]) {
                    j += 1;
                }
                if j > i + 2 {
                    record(&input[i + 2..j], &mut names);
                }
                i = j;
            }
            Some(&c) if is_name_start(c) => {
                let mut j = i + 1;
                while j < b.len() && is_name_char(b[j]) {
                    j += 1;
                }
                record(&input[i + 1..j], &mut names);
                i = j;
            }
            _ => i += 1,
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "SET" => Some("value".into()),
            "EMPTY" => Some(String::new()),
            "B" => Some("bee".into()),
            _ => None,
        }
    }

    fn i(s: &str) -> Result<String, InterpolateError> {
        interpolate(s, &env)
    }

    #[test]
    fn plain_and_braced() {
        assert_eq!(i("$SET ${SET} x$SET.y").unwrap(), "value value xvalue.y");
        assert_eq!(i("$UNSET|${UNSET}|").unwrap(), "||");
        assert_eq!(i("héllo ${SET}é").unwrap(), "héllo valueé");
    }

    #[test]
    fn defaults() {
        assert_eq!(i("${SET:-d}|${EMPTY:-d}|${UNSET:-d}").unwrap(), "value|d|d");
        assert_eq!(i("${SET-d}|${EMPTY-d}|${UNSET-d}").unwrap(), "value||d");
        assert_eq!(
            i("${REGISTRY-127.0.0.1:5000}/x").unwrap(),
            "127.0.0.1:5000/x"
        );
    }

    #[test]
    fn required() {
        assert_eq!(i("${SET:?no}").unwrap(), "value");
        assert_eq!(i("${EMPTY?no}").unwrap(), "");
        assert_eq!(
            i("${EMPTY:?must be set}").unwrap_err(),
            InterpolateError::Required {
                name: "EMPTY".into(),
                message: "must be set".into()
            }
        );
        assert!(matches!(
            i("${UNSET?x}"),
            Err(InterpolateError::Required { .. })
        ));
        assert!(
            matches!(i("${UNSET:?}"), Err(InterpolateError::Required { message, .. }) if message.is_empty())
        );
    }

    #[test]
    fn replacements() {
        assert_eq!(i("${SET:+r}|${EMPTY:+r}|${UNSET:+r}").unwrap(), "r||");
        assert_eq!(i("${SET+r}|${EMPTY+r}|${UNSET+r}").unwrap(), "r|r|");
    }

    #[test]
    fn escapes_and_lone_dollars() {
        assert_eq!(i("$$SET $${SET} $$").unwrap(), "$SET ${SET} $");
        assert_eq!(i("cost: $5, $ and end$").unwrap(), "cost: $5, $ and end$");
        assert_eq!(i("${KIBANA_PASSWORD:-$2y$05$.x}").unwrap(), "$2y$05$.x");
        assert_eq!(i("${P:-$2y$05$oZcj}").unwrap(), "$2y$05");
    }

    #[test]
    fn nesting() {
        assert_eq!(i("${UNSET:-${B:-x}}").unwrap(), "bee");
        assert_eq!(i("${UNSET:-${UNSET2:-x}}").unwrap(), "x");
        assert_eq!(i("${UNSET:-$B}").unwrap(), "bee");
        assert_eq!(i("${UNSET:-pre-${B}-post}").unwrap(), "pre-bee-post");
        assert_eq!(i("${SET:-${UNSET:?not evaluated}}").unwrap(), "value");
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(
            i("ab${SET").unwrap_err(),
            InterpolateError::Syntax {
                offset: 2,
                text: "${SET".into()
            }
        );
        assert!(matches!(
            i("${}"),
            Err(InterpolateError::Syntax { offset: 0, .. })
        ));
        assert!(matches!(i("${1A}"), Err(InterpolateError::Syntax { .. })));
        assert!(matches!(i("${A B}"), Err(InterpolateError::Syntax { .. })));
        assert!(matches!(
            i("${SET:x}"),
            Err(InterpolateError::Syntax { .. })
        ));
    }

    #[test]
    fn variable_names() {
        assert_eq!(variables("$A ${B:-$C} $$D ${A}"), ["A", "B", "C"]);
    }

    #[test]
    fn never_panics() {
        let alphabet = b"${}:-?+AB_1x ";
        let mut seed: u64 = 42;
        for _ in 0..2000 {
            let mut s = String::new();
            for _ in 0..(seed % 12) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                s.push(alphabet[(seed >> 33) as usize % alphabet.len()] as char);
            }
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            let _ = i(&s);
            let _ = variables(&s);
        }
    }
}
