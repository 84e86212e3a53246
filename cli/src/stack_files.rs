//! The values of a stack's secrets and configs, read on the CLI's host: `orch up`
//! puts each `file` and `environment` source inline (`content`) before it sends the
//! stack, since the files are here and not on the managers. The managers seal
//! secrets as they take the stack.

use anyhow::{Context, bail};
use api::StackSpec;
use api::secret::MAX_SIZE;
use api::stack::FileObjectSpec;

/// Puts the value of every secret and config of `spec` that has a `file` or
/// `environment` source into its `content`.
pub fn inline(spec: &mut StackSpec) -> anyhow::Result<()> {
    for (key, secret) in &mut spec.secrets {
        inline_one("secret", key, secret)?;
    }
    for (key, config) in &mut spec.configs {
        inline_one("config", key, config)?;
    }
    Ok(())
}

fn inline_one(kind: &str, key: &str, object: &mut FileObjectSpec) -> anyhow::Result<()> {
    if object.external {
        return Ok(());
    }
    let value = if let Some(path) = object.file.take() {
        let bytes = std::fs::read(&path).with_context(|| format!("{kind} {key}: read {path}"))?;
        if bytes.len() > MAX_SIZE {
            bail!(
                "{kind} {key}: {path} has {} bytes; a {kind} holds at most {} KiB",
                bytes.len(),
                MAX_SIZE / 1024
            );
        }
        String::from_utf8(bytes)
            .with_context(|| format!("{kind} {key}: {path} is not UTF-8 text"))?
    } else if let Some(var) = object.environment.take() {
        let value = std::env::var(&var)
            .with_context(|| format!("{kind} {key}: environment variable {var} is not set"))?;
        if value.len() > MAX_SIZE {
            bail!(
                "{kind} {key}: ${var} has {} bytes; a {kind} holds at most {} KiB",
                value.len(),
                MAX_SIZE / 1024
            );
        }
        value
    } else {
        return Ok(());
    };
    object.content = Some(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with_file(path: &str) -> StackSpec {
        let mut spec = StackSpec::default();
        spec.secrets.insert(
            "db".into(),
            FileObjectSpec {
                name: "shop_db".into(),
                file: Some(path.into()),
                ..FileObjectSpec::default()
            },
        );
        spec
    }

    #[test]
    fn a_file_source_is_put_inline() {
        let dir = std::env::temp_dir().join(format!("orch-stack-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let small = dir.join("small");
        std::fs::write(&small, "s3cret").unwrap();
        let mut spec = spec_with_file(small.to_str().unwrap());
        inline(&mut spec).unwrap();
        assert_eq!(spec.secrets["db"].content.as_deref(), Some("s3cret"));
        assert_eq!(spec.secrets["db"].file, None);

        let big = dir.join("big");
        std::fs::write(&big, vec![b'x'; MAX_SIZE + 1]).unwrap();
        let mut spec = spec_with_file(big.to_str().unwrap());
        let e = inline(&mut spec).unwrap_err().to_string();
        assert!(
            e.contains("secret db") && e.contains("big") && e.contains("500 KiB"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
