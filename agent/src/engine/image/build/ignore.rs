//! `.dockerignore`: which files of the build context COPY and ADD may see.
//!
//! Patterns are Go `filepath.Match` globs over slash-separated paths relative to the
//! context (`*`, `?`, `[a-z]`, `[^x]`, `\` escapes) plus `**` for any number of
//! directories; a pattern that matches a directory matches everything below it.
//! `!pattern` re-includes; the last pattern that matches decides. Leading `/` and `./`
//! are dropped, `#` lines are comments. Pure.

/// A malformed pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(".dockerignore line {line}: bad pattern {pattern:?}: {what}")]
pub struct IgnoreError {
    pub line: usize,
    pub pattern: String,
    pub what: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `?`
    One,
    /// `*`
    Star,
    /// `**` not followed by `/`: anything, slashes included.
    Anything,
    /// `**/`: zero or more whole directories.
    Dirs,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// One compiled glob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
}

impl Glob {
    /// Compile `pattern`; `Err` says what is malformed.
    pub fn new(pattern: &str) -> Result<Glob, &'static str> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' if chars.get(i + 1) == Some(&'*') => {
                    if chars.get(i + 2) == Some(&'/') {
                        tokens.push(Token::Dirs);
                        i += 3;
                    } else {
                        tokens.push(Token::Anything);
                        i += 2;
                        while chars.get(i) == Some(&'*') {
                            i += 1;
                        }
                    }
                }
                '*' => {
                    tokens.push(Token::Star);
                    i += 1;
                }
                '?' => {
                    tokens.push(Token::One);
                    i += 1;
                }
                '\\' => {
                    let c = *chars.get(i + 1).ok_or("trailing backslash")?;
                    tokens.push(Token::Char(c));
                    i += 2;
                }
                '[' => {
                    i += 1;
                    let negated = matches!(chars.get(i), Some('^') | Some('!'));
                    if negated {
                        i += 1;
                    }
                    let mut ranges = Vec::new();
                    let mut first = true;
                    loop {
                        let mut c = *chars.get(i).ok_or("unterminated [")?;
                        if c == ']' && !first {
                            i += 1;
                            break;
                        }
                        first = false;
                        if c == '\\' {
                            i += 1;
                            c = *chars.get(i).ok_or("unterminated [")?;
                        }
                        i += 1;
                        let mut hi = c;
                        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&n| n != ']')
                        {
                            hi = chars[i + 1];
                            if hi == '\\' {
                                hi = *chars.get(i + 2).ok_or("unterminated [")?;
                                i += 1;
                            }
                            i += 2;
                            if hi < c {
                                return Err("character range out of order");
                            }
                        }
                        ranges.push((c, hi));
                    }
                    tokens.push(Token::Class { negated, ranges });
                }
                c => {
                    tokens.push(Token::Char(c));
                    i += 1;
                }
            }
        }
        Ok(Glob { tokens })
    }

    /// Whether the whole of `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        let s: Vec<char> = path.chars().collect();
        matches(&self.tokens, &s)
    }
}

fn matches(t: &[Token], s: &[char]) -> bool {
    let Some((first, rest)) = t.split_first() else {
        return s.is_empty();
    };
    match first {
        Token::Char(c) => s.first() == Some(c) && matches(rest, &s[1..]),
        Token::One => s.first().is_some_and(|&c| c != '/') && matches(rest, &s[1..]),
        Token::Class { negated, ranges } => {
            s.first().is_some_and(|&c| {
                c != '/' && ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }) && matches(rest, &s[1..])
        }
        Token::Star => {
            let limit = s.iter().position(|&c| c == '/').unwrap_or(s.len());
            (0..=limit).any(|k| matches(rest, &s[k..]))
        }
        Token::Anything => (0..=s.len()).any(|k| matches(rest, &s[k..])),
        Token::Dirs => {
            matches(rest, s)
                || s.iter()
                    .enumerate()
                    .any(|(k, &c)| c == '/' && matches(rest, &s[k + 1..]))
        }
    }
}

#[derive(Clone, Debug)]
struct Rule {
    glob: Glob,
    exception: bool,
}

/// The rules of one `.dockerignore`.
#[derive(Clone, Debug, Default)]
pub struct Ignore {
    rules: Vec<Rule>,
}

/// `path` cleaned like Go's `filepath.Clean`, relative, without leading `/` or `./`.
fn clean(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

impl Ignore {
    /// Parse `.dockerignore` text.
    pub fn parse(text: &str) -> Result<Ignore, IgnoreError> {
        let mut rules = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.starts_with('#') {
                continue;
            }
            let mut p = line.trim();
            let exception = p.starts_with('!');
            if exception {
                p = p[1..].trim();
            }
            let p = clean(p);
            if p.is_empty() {
                continue;
            }
            let glob = Glob::new(&p).map_err(|what| IgnoreError {
                line: i + 1,
                pattern: line.to_owned(),
                what,
            })?;
            rules.push(Rule { glob, exception });
        }
        Ok(Ignore { rules })
    }

    /// Whether `path` (relative to the context, `/`-separated) is excluded.
    pub fn excludes(&self, path: &str) -> bool {
        let path = clean(path);
        if path.is_empty() {
            return false;
        }
        let parents: Vec<&str> = path.match_indices('/').map(|(i, _)| &path[..i]).collect();
        let mut excluded = false;
        for r in &self.rules {
            if r.exception != excluded {
                continue;
            }
            if r.glob.matches(&path) || parents.iter().any(|p| r.glob.matches(p)) {
                excluded = !r.exception;
            }
        }
        excluded
    }

    /// Whether something below an excluded directory may be included again (so the
    /// directory must still be walked).
    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|r| r.exception)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (pattern, path, want) in [
            ("*.txt", "a.txt", true),
            ("*.txt", "d/a.txt", false),
            ("*/a.txt", "d/a.txt", true),
            ("a?c", "abc", true),
            ("a?c", "a/c", false),
            ("[a-c]x", "bx", true),
            ("[^a-c]x", "bx", false),
            ("[!a-c]x", "dx", true),
            ("\\*x", "*x", true),
            ("\\*x", "ax", false),
            ("**/*.go", "a.go", true),
            ("**/*.go", "x/y/a.go", true),
            ("**", "x/y/z", true),
            ("a/**/b", "a/b", true),
            ("a/**/b", "a/x/y/b", true),
            ("a/**", "a/x/y", true),
            ("a**b", "a/x/b", true),
            ("[]]", "]", true),
            ("[a-]", "-", true),
        ] {
            assert_eq!(
                Glob::new(pattern).unwrap().matches(path),
                want,
                "{pattern} ~ {path}"
            );
        }
        for bad in ["[abc", "x\\", "[z-a]"] {
            assert!(Glob::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rules() {
        let ig = Ignore::parse(
            "# comment\n/secret\n./build/\n*.log\n!keep.log\nnode_modules\n**/*.tmp\ndocs\n!docs/README.md\n\n",
        )
        .unwrap();
        for (path, want) in [
            ("secret", true),
            ("secret/x", true),
            ("a/secret", false),
            ("build/out.o", true),
            ("debug.log", true),
            ("keep.log", false),
            ("sub/debug.log", false),
            ("node_modules/x/y.js", true),
            ("src/a.tmp", true),
            ("a.tmp", true),
            ("docs/intro.md", true),
            ("docs/README.md", false),
            ("src/main.rs", false),
            ("", false),
        ] {
            assert_eq!(ig.excludes(path), want, "{path}");
        }
        assert!(ig.has_exceptions());
        // The last matching rule wins.
        let ig = Ignore::parse("!a\na\n").unwrap();
        assert!(ig.excludes("a"));
        let ig = Ignore::parse("*\n!src\nsrc/gen\n").unwrap();
        assert!(ig.excludes("Dockerfile"));
        assert!(!ig.excludes("src/lib.rs"));
        assert!(ig.excludes("src/gen/x.rs"));
        let e = Ignore::parse("ok\n[bad\n").unwrap_err();
        assert_eq!(e.line, 2);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "(?s).{0,80}", path in "[a-z/.*]{0,20}") {
            if let Ok(ig) = Ignore::parse(&text) {
                let _ = ig.excludes(&path);
            }
        }
    }
}
