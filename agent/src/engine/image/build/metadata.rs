//! Instructions that change only the image config: ENV, ARG, LABEL, USER, CMD,
//! ENTRYPOINT, EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK, SHELL, ONBUILD, MAINTAINER
//! (and WORKDIR's config half). Pure over the state and the variable scope.

use super::instruction::{Command, CommandLine, Health};
use super::scope::Scope;
use super::state::State;
use std::collections::BTreeMap;

/// What a stage remembers between instructions.
#[derive(Clone, Debug, Default)]
pub struct StageFlags {
    /// CMD was set in this stage (ENTRYPOINT then keeps it).
    pub cmd_set: bool,
}

/// What [`apply`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The config changed (or ARG was declared); history noted where Docker notes it.
    Done,
    /// Not a metadata instruction.
    NotMetadata,
}

/// The argv of `line` in exec form, or run by the stage's shell.
fn argv(state: &State, line: &CommandLine) -> Vec<String> {
    match line {
        CommandLine::Exec(v) => v.clone(),
        CommandLine::Shell(s) => {
            let mut shell = state
                .config
                .config
                .as_ref()
                .and_then(|c| c.shell.clone())
                .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
            shell.push(s.clone());
            shell
        }
    }
}

/// `80`, `80/udp`, `8000-8002/tcp` as `port/proto` keys.
pub fn ports(word: &str) -> Result<Vec<String>, String> {
    let (range, proto) = match word.split_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (word, "tcp".to_owned()),
    };
    if !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
        return Err(format!("EXPOSE {word}: protocol must be tcp, udp or sctp"));
    }
    let port = |p: &str| -> Result<u16, String> {
        p.parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("EXPOSE {word}: {p:?} is not a port number (1-65535)"))
    };
    let (lo, hi) = match range.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(range)?, port(range)?),
    };
    if hi < lo {
        return Err(format!("EXPOSE {word}: the range ends before it starts"));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

fn health_json(h: Option<&Health>) -> serde_json::Value {
    let Some(h) = h else {
        return serde_json::json!({"Test": ["NONE"]});
    };
    let test: Vec<String> = match &h.test {
        CommandLine::Exec(v) => std::iter::once("CMD".to_owned()).chain(v.clone()).collect(),
        CommandLine::Shell(s) => vec!["CMD-SHELL".into(), s.clone()],
    };
    let mut m = serde_json::Map::new();
    m.insert("Test".into(), test.into());
    for (k, v) in [
        ("Interval", h.interval),
        ("Timeout", h.timeout),
        ("StartPeriod", h.start_period),
        ("StartInterval", h.start_interval),
        ("Retries", h.retries),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), v.into());
        }
    }
    serde_json::Value::Object(m)
}

fn valid_signal(s: &str) -> bool {
    !s.is_empty()
        && (s.bytes().all(|b| b.is_ascii_digit())
            || s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'+' || b == b'-'))
}

/// Apply metadata instruction `cmd` (its text `text`) to `state`; `Err` says what is
/// wrong with it.
pub fn apply(
    state: &mut State,
    scope: &mut Scope,
    flags: &mut StageFlags,
    cmd: &Command,
    text: &str,
) -> Result<Applied, String> {
    let x = |w: &str, scope: &Scope| scope.expand(w).map_err(|e| e.to_string());
    match cmd {
        Command::Arg(decls) => {
            for (name, default) in decls {
                scope
                    .declare(name, default.as_deref())
                    .map_err(|e| e.to_string())?;
            }
            return Ok(Applied::Done);
        }
        Command::Env(pairs) => {
            for (k, v) in pairs {
                let (k, v) = (x(k, scope)?, x(v, scope)?);
                if k.is_empty() || k.contains(char::is_whitespace) {
                    return Err(format!("ENV name {k:?} is not valid"));
                }
                scope.set_env(&k, &v);
                state.set_env(&k, &v);
            }
        }
        Command::Label(pairs) => {
            for (k, v) in pairs {
                let (k, v) = (x(k, scope)?, x(v, scope)?);
                state.labels().insert(k, v);
            }
        }
        Command::User(u) => {
            let u = x(u, scope)?;
            if u.is_empty() || u.starts_with(':') {
                return Err("USER needs a user name or id".into());
            }
            state.run().user = Some(u);
        }
        Command::Cmd(line) => {
            let v = argv(state, line);
            state.run().cmd = Some(v);
            flags.cmd_set = true;
        }
        Command::Entrypoint(line) => {
            let v = argv(state, line);
            let run = state.run();
            run.entrypoint = Some(v);
            if !flags.cmd_set {
                run.cmd = None;
            }
        }
        Command::Expose(words) => {
            let mut keys = Vec::new();
            for w in words {
                keys.extend(ports(&x(w, scope)?)?);
            }
            let map = state.run().exposed_ports.get_or_insert_with(BTreeMap::new);
            for k in keys {
                map.insert(k, serde_json::json!({}));
            }
        }
        Command::Volume(paths) => {
            let mut keys = Vec::new();
            for p in paths {
                let p = x(p, scope)?;
                if p.trim().is_empty() {
                    return Err("VOLUME paths must not be empty".into());
                }
                keys.push(p);
            }
            let map = state.run().volumes.get_or_insert_with(BTreeMap::new);
            for k in keys {
                map.insert(k, serde_json::json!({}));
            }
        }
        Command::StopSignal(s) => {
            let s = x(s, scope)?;
            if !valid_signal(&s) {
                return Err(format!("STOPSIGNAL {s:?} is not a signal name or number"));
            }
            state.run().stop_signal = Some(s);
        }
        Command::Healthcheck(h) => {
            let j = health_json(h.as_ref());
            state.run().healthcheck = Some(j);
        }
        Command::Shell(v) => state.run().shell = Some(v.clone()),
        Command::OnBuild(t) => state
            .run()
            .on_build
            .get_or_insert_with(Vec::new)
            .push(t.clone()),
        Command::Maintainer(m) => state.config.author = Some(x(m, scope)?),
        _ => return Ok(Applied::NotMetadata),
    }
    state.note(text);
    Ok(Applied::Done)
}

#[cfg(test)]
mod tests {
    use super::super::dockerfile::parse;
    use super::*;

    fn run(text: &str) -> Result<State, String> {
        let df = parse(text).map_err(|e| e.to_string())?;
        let args: BTreeMap<String, String> = [("V".to_owned(), "cli".to_owned())].into();
        let mut state = State::scratch();
        let mut scope = Scope::stage(&args, BTreeMap::new(), &state.env(), df.escape);
        let mut flags = StageFlags::default();
        for ins in &df.stages[0].instructions {
            let r = apply(&mut state, &mut scope, &mut flags, &ins.command, &ins.text)?;
            assert_eq!(r, Applied::Done, "{}", ins.text);
        }
        Ok(state)
    }

    #[test]
    fn config_fields() {
        let s = run(concat!(
            "FROM scratch\n",
            "ARG V=default\nARG W=w-$V\n",
            "ENV A=$W B=\"two words\"\nENV PATH=/opt:$PATH\n",
            "LABEL \"com.x\"=\"$A\"\n",
            "USER app:app\n",
            "CMD [\"serve\"]\n",
            "ENTRYPOINT exec app\n",
            "EXPOSE 80 53/udp 8000-8001\n",
            "VOLUME [\"/data\"]\n",
            "STOPSIGNAL SIGINT\n",
            "HEALTHCHECK --interval=5s CMD curl -f localhost\n",
            "SHELL [\"/bin/bash\", \"-c\"]\n",
            "ONBUILD COPY . /src\n",
        ))
        .unwrap();
        let c = s.config.config.clone().unwrap();
        let env = c.env.unwrap();
        assert!(env.contains(&"A=w-cli".to_owned()), "{env:?}");
        assert!(env.contains(&"B=two words".to_owned()));
        assert!(env[0].starts_with("PATH=/opt:/usr/local/sbin"), "{env:?}");
        assert_eq!(c.labels.unwrap()["com.x"], "w-cli");
        assert_eq!(c.user.as_deref(), Some("app:app"));
        assert_eq!(
            c.cmd.unwrap(),
            ["serve"],
            "CMD set in the stage survives ENTRYPOINT"
        );
        assert_eq!(c.entrypoint.unwrap(), ["/bin/sh", "-c", "exec app"]);
        let ports: Vec<&String> = c.exposed_ports.as_ref().unwrap().keys().collect();
        assert_eq!(ports, ["53/udp", "80/tcp", "8000/tcp", "8001/tcp"]);
        assert!(c.volumes.unwrap().contains_key("/data"));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(
            c.healthcheck.unwrap(),
            serde_json::json!({"Test": ["CMD-SHELL", "curl -f localhost"], "Interval": 5_000_000_000u64})
        );
        assert_eq!(c.shell.unwrap(), ["/bin/bash", "-c"]);
        assert_eq!(c.on_build.unwrap(), ["COPY . /src"]);
        assert!(s.layers.is_empty());
        assert!(s.config.history.iter().all(|h| h["empty_layer"] == true));
    }

    #[test]
    fn bad_values() {
        for (text, want) in [
            ("FROM scratch\nEXPOSE 70000\n", "not a port number"),
            ("FROM scratch\nEXPOSE 80/icmp\n", "protocol"),
            ("FROM scratch\nEXPOSE 90-80\n", "ends before"),
            ("FROM scratch\nSTOPSIGNAL kill me\n", "exactly one"),
            ("FROM scratch\nSTOPSIGNAL sig$x\n", "not a signal"),
            ("FROM scratch\nENV A=${B:?needed}\n", "B: needed"),
        ] {
            let e = run(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}
