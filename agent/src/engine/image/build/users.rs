//! `--chown=user[:group]` to numeric ids through a stage's `/etc/passwd` and
//! `/etc/group`. Numbers need no files; a user given without a group gets the user's
//! primary group from `/etc/passwd` (a numeric uid without group gets gid = uid, as
//! Docker documents).

use super::tree::{Tree, read_file};
use std::path::Path;

/// Why an owner does not resolve.
#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    #[error("user {0:?} is not in the stage's /etc/passwd")]
    NoUser(String),
    #[error("group {0:?} is not in the stage's /etc/group")]
    NoGroup(String),
    #[error("read {path} of the stage: {source}")]
    Read {
        path: &'static str,
        source: std::io::Error,
    },
}

/// The entries of a passwd-like file: (name, id field 2, field 3).
fn entries(text: &str) -> impl Iterator<Item = (&str, Option<u32>, Option<u32>)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 3).then(|| {
                (
                    f[0],
                    f[2].trim().parse().ok(),
                    f.get(3).and_then(|g| g.trim().parse().ok()),
                )
            })
        })
}

fn file(tree: &dyn Tree, path: &'static str) -> Result<String, OwnerError> {
    read_file(tree, Path::new(path))
        .map(|b| String::from_utf8_lossy(&b.unwrap_or_default()).into_owned())
        .map_err(|source| OwnerError::Read { path, source })
}

/// The (uid, gid) `spec` names in `tree`.
pub fn owner(tree: &dyn Tree, spec: &str) -> Result<(u32, u32), OwnerError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let (uid, primary) = match user.parse::<u32>() {
        Ok(n) => (n, n),
        Err(_) => {
            let passwd = file(tree, "/etc/passwd")?;
            entries(&passwd)
                .find(|(name, _, _)| *name == user)
                .and_then(|(_, uid, gid)| Some((uid?, gid?)))
                .ok_or_else(|| OwnerError::NoUser(user.to_owned()))?
        }
    };
    let gid = match group {
        None | Some("") => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let groups = file(tree, "/etc/group")?;
                entries(&groups)
                    .find(|(name, _, _)| *name == g)
                    .and_then(|(_, gid, _)| gid)
                    .ok_or_else(|| OwnerError::NoGroup(g.to_owned()))?
            }
        },
    };
    Ok((uid, gid))
}
