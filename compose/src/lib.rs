//! Compose stack files -> [`api::StackSpec`].
//!
//! `parse -> interpolate -> normalize -> merge -> type -> validate`, each a function
//! over a positioned YAML tree, collecting every diagnostic (file, line, column, key
//! path, hint) instead of stopping at the first. Reads files; no network.
//!
//! Modules:
//! - [`yaml`]: YAML documents as positioned trees (anchors, merge keys, tags).
//! - [`interpolate`], [`dotenv`], [`env`]: variables and `${VAR:-default}`.
//! - [`syntax`]: short syntaxes (ports, volumes, devices, hosts, shell words).
//! - [`schema`]: allowed keys per object; [`normalize`]: short -> long form.
//! - [`merge`]: multi-file, `extends` and `include` merge rules; [`load`]: files.
//! - [`de`]: typing a tree into api types; [`validate`]: cross-references.
//! - [`project`]: the whole pipeline; [`render`]: canonical YAML/JSON output.

pub mod de;
pub mod diag;
pub mod dotenv;
pub mod env;
pub mod interpolate;
pub mod load;
pub mod merge;
pub mod normalize;
pub mod project;
pub mod render;
pub mod schema;
pub mod syntax;
pub mod validate;
pub mod yaml;

pub use diag::{Diagnostic, Severity};
pub use project::{Options, Project, load};

use std::path::PathBuf;

/// Why a project could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No file was given and none of the default names exists.
    #[error(
        "no compose file found in {} or its parents (tried compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml); pass one with -f",
        dir.display()
    )]
    NoFile { dir: PathBuf },
    /// The files are invalid; every problem found is listed.
    #[error("{}", render_diagnostics(diagnostics))]
    Invalid { diagnostics: Vec<Diagnostic> },
}

fn render_diagnostics(diags: &[Diagnostic]) -> String {
    let errors = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let mut out: Vec<String> = diags.iter().map(ToString::to_string).collect();
    out.push(format!(
        "{errors} error{} found",
        if errors == 1 { "" } else { "s" }
    ));
    out.join("\n")
}
