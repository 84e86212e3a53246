//! One Dockerfile instruction parsed into its form (flags, JSON or shell form, words).
//! Words keep their quotes and `$` references: they are substituted when the
//! instruction runs, with the ARG and ENV values in scope then. Pure.

use super::words::split;

/// An instruction, with its arguments still unsubstituted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    From {
        image: String,
        name: Option<String>,
        platform: Option<String>,
    },
    Run(CommandLine),
    Copy(CopyArgs),
    Add(CopyArgs),
    /// `(key, value)` words.
    Env(Vec<(String, String)>),
    /// `(name, default)` words.
    Arg(Vec<(String, Option<String>)>),
    Workdir(String),
    User(String),
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    Expose(Vec<String>),
    Label(Vec<(String, String)>),
    Volume(Vec<String>),
    StopSignal(String),
    /// `None` is `HEALTHCHECK NONE`.
    Healthcheck(Option<Health>),
    Shell(Vec<String>),
    /// The trigger instruction's text, kept for the image config.
    OnBuild(String),
    Maintainer(String),
}

/// A command in exec (JSON) or shell form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandLine {
    Exec(Vec<String>),
    Shell(String),
}

/// The arguments of COPY and ADD.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyArgs {
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    /// Sources, then the destination last; quotes kept unless `json`.
    pub sources: Vec<String>,
    pub dest: String,
    /// The JSON form: words are literal strings, but still substituted.
    pub json: bool,
}

/// HEALTHCHECK options and test; durations in nanoseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    pub test: CommandLine,
    pub interval: Option<u64>,
    pub timeout: Option<u64>,
    pub start_period: Option<u64>,
    pub start_interval: Option<u64>,
    pub retries: Option<u64>,
}

/// What is wrong with one instruction (the caller adds file and line).
pub type Malformed = String;

/// Parse the arguments `rest` of instruction `keyword` (any case).
pub fn parse(keyword: &str, rest: &str, escape: char) -> Result<Command, Malformed> {
    let kw = keyword.to_ascii_uppercase();
    let rest = rest.trim();
    let need = |what: &str| -> Result<(), Malformed> {
        if rest.is_empty() {
            Err(format!("{kw} requires {what}"))
        } else {
            Ok(())
        }
    };
    match kw.as_str() {
        "FROM" => {
            let (flags, words) = flags(&split(rest, escape), &["platform"], &kw)?;
            let platform = flag(&flags, "platform");
            match words.as_slice() {
                [image] => Ok(Command::From {
                    image: image.clone(),
                    name: None,
                    platform,
                }),
                [image, as_, name] if as_.eq_ignore_ascii_case("as") => {
                    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
                    if !valid {
                        return Err(format!("invalid stage name {name:?}: use letters, digits, '_', '-', '.', starting with a letter"));
                    }
                    Ok(Command::From {
                        image: image.clone(),
                        name: Some(name.to_ascii_lowercase()),
                        platform,
                    })
                }
                _ => Err("FROM takes an image and optionally AS <name>: FROM [--platform=<p>] <image> [AS <name>]".into()),
            }
        }
        "RUN" => {
            need("a command")?;
            Ok(Command::Run(command_line(rest)))
        }
        "CMD" => Ok(Command::Cmd(command_line(rest))),
        "ENTRYPOINT" => Ok(Command::Entrypoint(command_line(rest))),
        "COPY" | "ADD" => {
            let args = copy_args(rest, escape, &kw)?;
            Ok(if kw == "COPY" {
                Command::Copy(args)
            } else {
                Command::Add(args)
            })
        }
        "ENV" | "LABEL" => {
            need("at least one key=value pair")?;
            let pairs = pairs(rest, escape, &kw)?;
            Ok(if kw == "ENV" {
                Command::Env(pairs)
            } else {
                Command::Label(pairs)
            })
        }
        "ARG" => {
            need("a name")?;
            let mut out = Vec::new();
            for w in split(rest, escape) {
                let (name, default) = match w.split_once('=') {
                    Some((n, d)) => (n.to_owned(), Some(d.to_owned())),
                    None => (w.clone(), None),
                };
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!("ARG name {name:?} is not a valid variable name"));
                }
                out.push((name, default));
            }
            Ok(Command::Arg(out))
        }
        "WORKDIR" => {
            need("a path")?;
            Ok(Command::Workdir(rest.to_owned()))
        }
        "USER" => {
            need("a user")?;
            match split(rest, escape).as_slice() {
                [one] => Ok(Command::User(one.clone())),
                _ => Err("USER takes exactly one argument: USER <user>[:<group>]".into()),
            }
        }
        "EXPOSE" => {
            need("at least one port")?;
            Ok(Command::Expose(split(rest, escape)))
        }
        "VOLUME" => {
            need("at least one path")?;
            let paths = json_array(rest).unwrap_or_else(|| split(rest, escape));
            if paths.iter().any(|p| p.trim().is_empty()) {
                return Err("VOLUME paths must not be empty".into());
            }
            Ok(Command::Volume(paths))
        }
        "STOPSIGNAL" => match split(rest, escape).as_slice() {
            [one] => Ok(Command::StopSignal(one.clone())),
            _ => Err("STOPSIGNAL takes exactly one signal".into()),
        },
        "HEALTHCHECK" => healthcheck(rest, escape),
        "SHELL" => match json_array(rest) {
            Some(v) if !v.is_empty() => Ok(Command::Shell(v)),
            _ => Err(r#"SHELL requires the JSON form, e.g. SHELL ["/bin/bash", "-c"]"#.into()),
        },
        "ONBUILD" => {
            let (k, r) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let ku = k.to_ascii_uppercase();
            if ku.is_empty() {
                return Err("ONBUILD requires an instruction".into());
            }
            if ["ONBUILD", "FROM", "MAINTAINER"].contains(&ku.as_str()) {
                return Err(format!("{ku} is not allowed as an ONBUILD trigger"));
            }
            parse(k, r, escape)?;
            Ok(Command::OnBuild(format!("{ku} {}", r.trim())))
        }
        "MAINTAINER" => {
            need("a name")?;
            Ok(Command::Maintainer(rest.to_owned()))
        }
        _ => Err(format!("unknown instruction: {keyword}")),
    }
}

/// `--name=value` flags at the start of `words`, then the remaining words.
type Flags = Vec<(String, Option<String>)>;

fn flags(words: &[String], known: &[&str], kw: &str) -> Result<(Flags, Vec<String>), Malformed> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(w) = words.get(i).and_then(|w| w.strip_prefix("--")) {
        if w.is_empty() {
            i += 1;
            break;
        }
        let (name, value) = match w.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (w, None),
        };
        if !known.contains(&name) {
            return Err(format!("unknown flag --{name} for {kw}"));
        }
        out.push((name.to_owned(), value));
        i += 1;
    }
    Ok((out, words[i..].to_vec()))
}

fn flag(flags: &Flags, name: &str) -> Option<String> {
    flags
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.clone())
}

/// A JSON array of strings, if `rest` is one.
pub fn json_array(rest: &str) -> Option<Vec<String>> {
    if !rest.trim_start().starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(rest).ok()
}

/// Exec form when `rest` is a JSON array of strings, shell form otherwise (as Docker).
fn command_line(rest: &str) -> CommandLine {
    match json_array(rest) {
        Some(v) => CommandLine::Exec(v),
        None => CommandLine::Shell(rest.to_owned()),
    }
}

fn copy_args(rest: &str, escape: char, kw: &str) -> Result<CopyArgs, Malformed> {
    let words = split(rest, escape);
    let known: &[&str] = if kw == "COPY" {
        &["from", "chown", "chmod", "link", "parents", "exclude"]
    } else {
        &[
            "chown",
            "chmod",
            "link",
            "checksum",
            "keep-git-dir",
            "exclude",
        ]
    };
    let (flags, words) = flags(&words, known, kw)?;
    for (n, v) in &flags {
        let needs_value = ["from", "chown", "chmod", "checksum", "exclude"].contains(&n.as_str());
        if needs_value && v.as_deref().is_none_or(str::is_empty) {
            return Err(format!("{kw} --{n} needs a value (--{n}=...)"));
        }
        if ["parents", "checksum", "exclude", "keep-git-dir"].contains(&n.as_str()) {
            return Err(format!("{kw} --{n} is not supported by orch"));
        }
    }
    // The JSON form starts after the flags.
    let after_flags = skip_words(rest, flags.len());
    let (mut list, json) = match json_array(after_flags) {
        Some(v) => (v, true),
        None => (words, false),
    };
    if list.len() < 2 {
        return Err(format!(
            "{kw} requires at least one source and a destination"
        ));
    }
    let dest = list.pop().unwrap_or_default();
    Ok(CopyArgs {
        from: flag(&flags, "from"),
        chown: flag(&flags, "chown"),
        chmod: flag(&flags, "chmod"),
        sources: list,
        dest,
        json,
    })
}

/// `k=v k2=v2` or the legacy `k value with spaces` (ENV and LABEL).
fn pairs(rest: &str, escape: char, kw: &str) -> Result<Vec<(String, String)>, Malformed> {
    let words = split(rest, escape);
    let first_has_eq = words.first().is_some_and(|w| w.contains('='));
    if !first_has_eq {
        let (k, v) = rest
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("{kw} {rest} needs a value: {kw} <key>=<value> ..."))?;
        return Ok(vec![(k.to_owned(), v.trim().to_owned())]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => Err(format!("{kw} key missing in {w:?}")),
            Some((k, v)) => Ok((k.to_owned(), v.to_owned())),
            None => Err(format!("{kw} {w:?} is not of the form <key>=<value>")),
        })
        .collect()
}

/// `text` after its first `n` whitespace-separated words.
fn skip_words(text: &str, n: usize) -> &str {
    let mut r = text.trim_start();
    for _ in 0..n {
        r = r
            .split_once(char::is_whitespace)
            .map_or("", |x| x.1)
            .trim_start();
    }
    r
}

/// A Go-style duration: `30s`, `1m30s`, `500ms`, `1h`; in nanoseconds.
pub fn duration(text: &str) -> Option<u64> {
    if text == "0" {
        return Some(0);
    }
    let mut total: u64 = 0;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale: f64 = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add((number * scale) as u64)?;
    }
    Some(total)
}

fn healthcheck(rest: &str, escape: char) -> Result<Command, Malformed> {
    let words = split(rest, escape);
    if words.len() == 1 && words[0].eq_ignore_ascii_case("none") {
        return Ok(Command::Healthcheck(None));
    }
    let known = [
        "interval",
        "timeout",
        "start-period",
        "start-interval",
        "retries",
    ];
    let (flags, words) = flags(&words, &known, "HEALTHCHECK")?;
    if !words.first().is_some_and(|w| w.eq_ignore_ascii_case("cmd")) {
        return Err("HEALTHCHECK takes NONE or [options] CMD <command>".into());
    }
    // The text after the flags and the CMD word.
    let cmd_text = skip_words(rest, flags.len() + 1);
    let cmd = cmd_text.trim();
    if cmd.is_empty() {
        return Err("HEALTHCHECK CMD requires a command".into());
    }
    let mut h = Health {
        test: command_line(cmd),
        interval: None,
        timeout: None,
        start_period: None,
        start_interval: None,
        retries: None,
    };
    for (name, value) in flags {
        let v = value.unwrap_or_default();
        if name == "retries" {
            h.retries = Some(
                v.parse()
                    .map_err(|_| format!("HEALTHCHECK --retries={v}: not a whole number"))?,
            );
            continue;
        }
        let d = duration(&v).ok_or_else(|| {
            format!("HEALTHCHECK --{name}={v}: not a duration (like 30s, 1m30s, 500ms)")
        })?;
        match name.as_str() {
            "interval" => h.interval = Some(d),
            "timeout" => h.timeout = Some(d),
            "start-period" => h.start_period = Some(d),
            _ => h.start_interval = Some(d),
        }
    }
    Ok(Command::Healthcheck(Some(h)))
}
