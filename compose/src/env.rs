//! The variables a project is interpolated with: the process environment over the
//! project's `.env` (or `--env-file` files).

use crate::diag::{Diagnostic, Pos};
use crate::dotenv;
use crate::interpolate::{self, InterpolateError};
use crate::yaml::{Kind, Node};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Variables for interpolation; `process` always wins over `files`.
#[derive(Clone, Debug, Default)]
pub struct Env {
    pub process: BTreeMap<String, String>,
    pub files: BTreeMap<String, String>,
}

impl Env {
    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<String> {
        self.process
            .get(name)
            .or_else(|| self.files.get(name))
            .cloned()
    }

    /// Read a dotenv file into the file layer (later files override earlier ones).
    pub fn read_dotenv(&mut self, path: &Path, diags: &mut Vec<Diagnostic>) {
        let file: Arc<str> = Arc::from(path.display().to_string());
        match std::fs::read_to_string(path) {
            Ok(text) => match dotenv::parse(&text, &|k| self.get(k)) {
                Ok(pairs) => self.files.extend(pairs),
                Err(e) => diags.push(Diagnostic::error(
                    &Pos {
                        file,
                        line: e.line as u32,
                        col: 1,
                    },
                    "",
                    format!("invalid env file: {}", e.message),
                )),
            },
            Err(e) => diags.push(Diagnostic::error(
                &Pos::file(&file),
                "",
                format!("cannot read env file: {e}"),
            )),
        }
    }
}

/// Interpolate every scalar value of `node` (keys are left alone).
pub fn interpolate_tree(node: &mut Node, env: &Env, path: &str, diags: &mut Vec<Diagnostic>) {
    match &mut node.kind {
        Kind::Scalar { text, .. } if text.contains('$') => {
            match interpolate::interpolate(text, &|k| env.get(k)) {
                Ok(v) => *text = v,
                Err(InterpolateError::Required { name, message }) => {
                    let msg = if message.is_empty() {
                        format!("required variable {name} is missing a value")
                    } else {
                        format!("required variable {name} is missing a value: {message}")
                    };
                    diags.push(
                        Diagnostic::error(&node.pos, path, msg)
                            .with_hint(format!("set {name} in the environment, in the project's .env file or with --env-file")),
                    );
                }
                Err(e @ InterpolateError::Syntax { .. }) => {
                    diags.push(
                        Diagnostic::error(&node.pos, path, e.to_string())
                            .with_hint("write $$ for a literal dollar sign"),
                    );
                }
            }
        }
        Kind::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate_tree(item, env, &format!("{path}[{i}]"), diags);
            }
        }
        Kind::Map(entries) => {
            for e in entries.iter_mut() {
                let p = if path.is_empty() {
                    e.key.clone()
                } else {
                    format!("{path}.{}", e.key)
                };
                interpolate_tree(&mut e.value, env, &p, diags);
            }
        }
        _ => {}
    }
}
