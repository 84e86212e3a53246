//! Archives that must be refused: the error names the entry, and the store is left
//! without tags, without temp files and without the offending content.

use super::super::{ArchiveError, ArchiveFormat, load, save};
use super::{E, Tmp, docker_config, files_of, import, r, retar, tar_of};
use crate::engine::image::digest::Digest;
use crate::engine::image::images::Images;
use std::fs;

/// Load `tar` into a fresh store; the error, after checking nothing was tagged and
/// no temp file stayed.
fn refused(t: &Tmp, name: &str, tar: &[u8]) -> (Images, ArchiveError) {
    let images = t.images(name);
    let e = load(&images, tar).expect_err(name);
    assert!(
        images.list().unwrap().is_empty(),
        "{name}: tagged after {e}"
    );
    let ingest = t.0.join(name).join("content/ingest");
    assert_eq!(
        fs::read_dir(ingest).unwrap().count(),
        0,
        "{name}: temp files"
    );
    (images, e)
}

fn saved(t: &Tmp, format: ArchiveFormat) -> (Digest, Vec<(String, Vec<u8>)>) {
    let a = t.images("source");
    let d = import(&a, "orch-test/app:1");
    let mut tar = Vec::new();
    save(&a, &[r("orch-test/app:1")], format, &mut tar).unwrap();
    (d, files_of(&tar))
}

#[test]
fn neither_format() {
    let t = Tmp::new();
    let (_, e) = refused(&t, "empty", &tar_of(&[E::File("hello.txt", b"hi")]));
    assert!(matches!(e, ArchiveError::UnknownFormat), "{e}");
    assert!(e.to_string().contains("manifest.json"), "{e}");
    let (_, e) = refused(
        &t,
        "garbage",
        b"this is not a tar archive at all, not even close......",
    );
    assert!(
        matches!(e, ArchiveError::Read(_) | ArchiveError::UnknownFormat),
        "{e}"
    );
}

#[test]
fn an_oci_blob_that_does_not_match_its_name() {
    let t = Tmp::new();
    let (_, mut files) = saved(&t, ArchiveFormat::OciLayout);
    // The largest blob is the layer.
    let (i, _) = files
        .iter()
        .enumerate()
        .max_by_key(|(_, (_, b))| b.len())
        .unwrap();
    files[i].1.push(0);
    let tampered = Digest::of(&files[i].1);
    let (images, e) = refused(&t, "b", &retar(&files));
    match &e {
        ArchiveError::BlobMismatch { entry, actual, .. } => {
            assert_eq!(entry, &files[i].0);
            assert_eq!(actual, &tampered);
        }
        _ => panic!("{e}"),
    }
    assert!(e.to_string().contains(&files[i].0), "{e}");
    let named: Digest = format!("sha256:{}", files[i].0.rsplit('/').next().unwrap())
        .parse()
        .unwrap();
    assert!(!images.content.contains(&named) && !images.content.contains(&tampered));
}

#[test]
fn an_oci_layout_missing_a_blob() {
    let t = Tmp::new();
    let (d, files) = saved(&t, ArchiveFormat::OciLayout);
    let manifest = format!("blobs/sha256/{}", d.hex());
    let without = |name: &str| -> Vec<(String, Vec<u8>)> {
        files.iter().filter(|(n, _)| n != name).cloned().collect()
    };
    let (_, e) = refused(&t, "m", &retar(&without(&manifest)));
    assert!(matches!(e, ArchiveError::Missing { .. }), "{e}");
    assert!(e.to_string().contains(&d.to_string()), "{e}");
    let layer = files.iter().max_by_key(|(_, b)| b.len()).unwrap().0.clone();
    let (_, e) = refused(&t, "l", &retar(&without(&layer)));
    assert!(
        e.to_string()
            .contains(layer.trim_start_matches("blobs/sha256/")),
        "{e}"
    );
    let (_, e) = refused(&t, "i", &retar(&without("index.json")));
    assert!(matches!(e, ArchiveError::UnknownFormat), "{e}");
}

#[test]
fn docker_archives_with_missing_or_wrong_files() {
    let t = Tmp::new();
    let (_, files) = saved(&t, ArchiveFormat::DockerArchive);
    let config = files[0].0.clone();
    let layer = files[1].0.clone();

    let no_config: Vec<_> = files
        .iter()
        .filter(|(n, _)| *n != config)
        .cloned()
        .collect();
    let (_, e) = refused(&t, "config", &retar(&no_config));
    assert!(
        matches!(e, ArchiveError::Missing { what: "config", .. }),
        "{e}"
    );
    assert!(e.to_string().contains(&config), "{e}");

    let mut bad_layer = files.clone();
    let mut l = tar_of(&[E::File("bin/hello", b"pwned\n")]);
    l.truncate(bad_layer[1].1.len());
    bad_layer[1].1 = l;
    let (images, e) = refused(&t, "layer", &retar(&bad_layer));
    assert!(matches!(e, ArchiveError::DiffId { .. }), "{e}");
    assert!(e.to_string().contains(&layer), "{e}");
    assert!(
        !images.content.contains(&Digest::of(&bad_layer[1].1)),
        "the refused layer stayed in the store"
    );

    let mut bad_config = files.clone();
    bad_config[0].1 = docker_config(&[Digest::of(&files[1].1)], "other");
    let (_, e) = refused(&t, "renamed", &retar(&bad_config));
    assert!(matches!(e, ArchiveError::BlobMismatch { .. }), "{e}");
    assert!(e.to_string().contains(&config), "{e}");
}

#[test]
fn paths_that_climb_out() {
    let t = Tmp::new();
    let (_, e) = refused(
        &t,
        "entry",
        &tar_of(&[E::File("../evil", b"x"), E::File("manifest.json", b"[]")]),
    );
    assert!(matches!(e, ArchiveError::UnsafePath { .. }), "{e}");
    assert!(e.to_string().contains("../evil"), "{e}");

    let (_, files) = saved(&t, ArchiveFormat::DockerArchive);
    let mut climbing = files.clone();
    let m = climbing.len() - 2;
    let text = String::from_utf8(climbing[m].1.clone()).unwrap();
    climbing[m].1 = text
        .replace("\"Layers\":[\"", "\"Layers\":[\"../../")
        .into_bytes();
    let (_, e) = refused(&t, "manifest", &retar(&climbing));
    assert!(matches!(e, ArchiveError::UnsafePath { .. }), "{e}");

    let link = tar_of(&[
        E::Symlink("a/layer.tar", "../../../etc/passwd"),
        E::File("manifest.json", b"[]"),
    ]);
    let (_, e) = refused(&t, "link", &link);
    assert!(matches!(e, ArchiveError::UnsafePath { .. }), "{e}");
}
