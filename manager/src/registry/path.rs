//! `/v2/...` paths of the distribution API, parsed: repository names contain `/`, so
//! a path is read from its end.

use super::error::RegistryError;

/// What a `/v2/` path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`: the API version check.
    Base,
    /// `/v2/NAME/blobs/DIGEST`.
    Blob { name: String, digest: String },
    /// `/v2/NAME/blobs/uploads/`: start an upload.
    Uploads { name: String },
    /// `/v2/NAME/blobs/uploads/ID`: an upload under way.
    Upload { name: String, id: String },
    /// `/v2/NAME/manifests/REFERENCE` (a tag or a digest).
    Manifest { name: String, reference: String },
    /// `/v2/NAME/tags/list`.
    Tags { name: String },
}

/// Parses the part of the path after `/v2/`.
pub fn parse(rest: &str) -> Result<Route, RegistryError> {
    let rest = rest.trim_start_matches('/');
    if rest.is_empty() {
        return Ok(Route::Base);
    }
    let route = if let Some(name) = rest.strip_suffix("/tags/list") {
        Route::Tags { name: name.into() }
    } else if let Some((name, reference)) = rest.rsplit_once("/manifests/") {
        check_reference(reference)?;
        Route::Manifest {
            name: name.into(),
            reference: reference.into(),
        }
    } else if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        Route::Uploads { name: name.into() }
    } else if let Some((name, id)) = rest.rsplit_once("/blobs/uploads/") {
        check_upload_id(id)?;
        Route::Upload {
            name: name.into(),
            id: id.into(),
        }
    } else if let Some((name, digest)) = rest.rsplit_once("/blobs/") {
        check_digest(digest)?;
        Route::Blob {
            name: name.into(),
            digest: digest.into(),
        }
    } else {
        return Err(RegistryError::NotFound(format!(
            "/v2/{rest} is not a path of the distribution API"
        )));
    };
    check_name(route_name(&route))?;
    Ok(route)
}

fn route_name(route: &Route) -> &str {
    match route {
        Route::Base => "",
        Route::Blob { name, .. }
        | Route::Uploads { name }
        | Route::Upload { name, .. }
        | Route::Manifest { name, .. }
        | Route::Tags { name } => name,
    }
}

/// A repository name: path components of lowercase letters and digits, separated
/// inside by `.`, `_`, `__` or dashes (the distribution spec's grammar).
pub fn check_name(name: &str) -> Result<(), RegistryError> {
    let bad = |why: &str| Err(RegistryError::NameInvalid(format!("{name:?}: {why}")));
    if name.is_empty() || name.len() > 255 {
        return bad("a repository name has 1 to 255 characters");
    }
    for component in name.split('/') {
        let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
        let mut separators = component.split(alnum).filter(|s| !s.is_empty());
        if !component.starts_with(alnum) || !component.ends_with(alnum) {
            return bad("each component starts and ends with a lowercase letter or digit");
        }
        if let Some(sep) = separators
            .find(|sep| !matches!(*sep, "." | "_" | "__") && !sep.chars().all(|c| c == '-'))
        {
            return bad(&format!(
                "{sep:?} cannot separate letters and digits (use '.', '_', '__' or dashes)"
            ));
        }
    }
    Ok(())
}

/// `sha256:` and 64 lowercase hex digits (the only algorithm the registry stores).
pub fn check_digest(digest: &str) -> Result<(), RegistryError> {
    let hex = digest.strip_prefix("sha256:").unwrap_or("");
    let ok = hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(RegistryError::DigestInvalid(format!(
            "{digest:?} is not sha256:<64 lowercase hex digits>"
        )))
    }
}

/// A tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`) or a digest.
fn check_reference(reference: &str) -> Result<(), RegistryError> {
    if reference.contains(':') {
        return check_digest(reference);
    }
    let bytes = reference.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(RegistryError::TagInvalid(format!(
            "{reference:?} is not a tag (letters, digits, '_', '.', '-'; at most 128) or a digest"
        )))
    }
}

/// Upload ids are the registry's own: 32 lowercase hex digits.
fn check_upload_id(id: &str) -> Result<(), RegistryError> {
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(RegistryError::UploadUnknown(format!("upload {id:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn paths_are_read_from_their_end() {
        assert_eq!(parse("").unwrap(), Route::Base);
        assert_eq!(
            parse("shop/web/manifests/1.0").unwrap(),
            Route::Manifest {
                name: "shop/web".into(),
                reference: "1.0".into()
            }
        );
        assert_eq!(
            parse(&format!("a/blobs/{D}")).unwrap(),
            Route::Blob {
                name: "a".into(),
                digest: D.into()
            }
        );
        assert_eq!(
            parse("a/b/blobs/uploads/").unwrap(),
            Route::Uploads { name: "a/b".into() }
        );
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            parse(&format!("a/blobs/uploads/{id}")).unwrap(),
            Route::Upload {
                name: "a".into(),
                id: id.into()
            }
        );
        assert_eq!(
            parse("x/tags/list").unwrap(),
            Route::Tags { name: "x".into() }
        );
        // A repository may itself be called "manifests" or "blobs".
        assert_eq!(
            parse("blobs/manifests/latest").unwrap(),
            Route::Manifest {
                name: "blobs".into(),
                reference: "latest".into()
            }
        );
    }

    #[test]
    fn bad_names_digests_and_tags_are_named() {
        for name in ["Web", "-a", "a-", "a//b", "a..b", "a/", "a b"] {
            let e = parse(&format!("{name}/manifests/x")).unwrap_err();
            assert!(
                matches!(
                    e,
                    RegistryError::NameInvalid(_) | RegistryError::TagInvalid(_)
                ),
                "{name}: {e:?}"
            );
        }
        for name in [
            "a",
            "a.b",
            "a_b",
            "a__b",
            "a--b",
            "a-b/c9",
            "library/busybox",
        ] {
            check_name(name).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
        assert!(matches!(
            parse("a/blobs/sha256:xyz"),
            Err(RegistryError::DigestInvalid(_))
        ));
        assert!(matches!(
            parse("a/manifests/-x"),
            Err(RegistryError::TagInvalid(_))
        ));
        assert!(matches!(
            parse("a/blobs/uploads/../../etc"),
            Err(RegistryError::UploadUnknown(_)) | Err(RegistryError::NameInvalid(_))
        ));
        assert!(matches!(
            parse("a/nothing"),
            Err(RegistryError::NotFound(_))
        ));
    }
}
