//! The variables an instruction sees: ENV of the stage (base image's and the
//! Dockerfile's) over the ARGs the stage declared, which take `--build-arg` values,
//! their defaults or the global ARG of the same name. Pure.

use super::words::{WordError, expand};
use std::collections::{BTreeMap, BTreeSet};

/// The build's platform, as BuildKit's automatic platform ARGs give it.
pub const PLATFORM_ARGS: [(&str, &str); 8] = [
    ("TARGETPLATFORM", "linux/amd64"),
    ("TARGETOS", "linux"),
    ("TARGETARCH", "amd64"),
    ("TARGETVARIANT", ""),
    ("BUILDPLATFORM", "linux/amd64"),
    ("BUILDOS", "linux"),
    ("BUILDARCH", "amd64"),
    ("BUILDVARIANT", ""),
];

/// Variables in scope at one point of a stage (or of the global ARGs).
#[derive(Clone, Debug)]
pub struct Scope<'a> {
    build_args: &'a BTreeMap<String, String>,
    globals: BTreeMap<String, String>,
    args: BTreeMap<String, String>,
    env: Vec<(String, String)>,
    /// Build args some ARG consumed.
    pub used: BTreeSet<String>,
    escape: char,
}

impl<'a> Scope<'a> {
    /// The global scope (before the first FROM): only the platform args are known.
    pub fn global(build_args: &'a BTreeMap<String, String>, escape: char) -> Scope<'a> {
        let mut s = Scope::stage(build_args, BTreeMap::new(), &[], escape);
        for (k, v) in PLATFORM_ARGS {
            s.args.insert(k.into(), v.into());
        }
        s
    }

    /// A stage's scope: `globals` are the values of global ARGs, `env` the base image's.
    pub fn stage(
        build_args: &'a BTreeMap<String, String>,
        globals: BTreeMap<String, String>,
        env: &[String],
        escape: char,
    ) -> Scope<'a> {
        Scope {
            build_args,
            globals,
            args: BTreeMap::new(),
            env: env
                .iter()
                .map(|e| match e.split_once('=') {
                    Some((k, v)) => (k.to_owned(), v.to_owned()),
                    None => (e.clone(), String::new()),
                })
                .collect(),
            used: BTreeSet::new(),
            escape,
        }
    }

    /// The value of variable `name`.
    pub fn get(&self, name: &str) -> Option<String> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| self.args.get(name).cloned())
    }

    /// Substitute variables in `word` and remove its quotes.
    pub fn expand(&self, word: &str) -> Result<String, WordError> {
        expand(word, self.escape, &|n| self.get(n))
    }

    /// `ARG name[=default]`.
    pub fn declare(&mut self, name: &str, default: Option<&str>) -> Result<(), WordError> {
        let value = if let Some(v) = self.build_args.get(name) {
            self.used.insert(name.to_owned());
            Some(v.clone())
        } else if let Some(d) = default {
            Some(self.expand(d)?)
        } else {
            self.globals.get(name).cloned().or_else(|| {
                PLATFORM_ARGS
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            })
        };
        match value {
            Some(v) => {
                self.args.insert(name.to_owned(), v);
            }
            None => {
                self.args.remove(name);
            }
        }
        Ok(())
    }

    /// `ENV key=value` (already expanded).
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Every ARG value declared here (for the global scope: the globals).
    pub fn args(&self) -> BTreeMap<String, String> {
        self.args.clone()
    }

    /// The environment as `KEY=value` strings, in order of first definition.
    pub fn env(&self) -> Vec<String> {
        self.env.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence() {
        let build_args: BTreeMap<String, String> = [("A".to_owned(), "from-cli".to_owned())].into();
        let mut g = Scope::global(&build_args, '\\');
        g.declare("A", Some("default")).unwrap();
        g.declare("G", Some("g-$A")).unwrap();
        assert_eq!(g.get("G").as_deref(), Some("g-from-cli"));
        assert_eq!(g.get("TARGETARCH").as_deref(), Some("amd64"));
        let mut s = Scope::stage(&build_args, g.args(), &["PATH=/bin".into()], '\\');
        assert_eq!(s.get("G"), None, "globals must be redeclared in a stage");
        s.declare("G", None).unwrap();
        assert_eq!(s.get("G").as_deref(), Some("g-from-cli"));
        s.declare("N", Some("${G}-x")).unwrap();
        assert_eq!(s.get("N").as_deref(), Some("g-from-cli-x"));
        s.set_env("N", "env-wins");
        assert_eq!(s.expand("$N:$PATH").unwrap(), "env-wins:/bin");
        assert_eq!(g.used, ["A".to_owned()].into());
    }
}
