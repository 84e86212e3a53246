//! Round trips through both formats, what `docker save` writes, and refused input.

use super::{ArchiveError, ArchiveFormat, LoadNote, load, save};
use crate::engine::image::digest::Digest;
use crate::engine::image::images::{Images, ImportConfig};
use crate::engine::image::manifest::{ImageConfig, ImageIndex, ImageManifest};
use crate::engine::image::reference::Reference;
use crate::engine::image::snapshot::Snapshots;
use std::fs;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

mod corrupt;

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A per-run temp directory, removed on drop (also when a test fails).
pub(super) struct Tmp(pub PathBuf);

impl Tmp {
    pub fn new() -> Tmp {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let d = std::env::temp_dir().join(format!("orch-archive-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        Tmp(d)
    }
    pub fn images(&self, name: &str) -> Images {
        Images::open(&self.0.join(name)).unwrap()
    }
    pub fn snapshots(&self, name: &str) -> Snapshots {
        Snapshots::open(&self.0.join(name)).unwrap()
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A tar entry for [`tar_of`].
pub(super) enum E<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
}

/// A tar of `entries`, names written raw so hostile ones survive.
pub(super) fn tar_of(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let (name, kind, data, link): (&str, _, &[u8], &str) = match e {
            E::File(n, d) => (n, tar::EntryType::Regular, d, ""),
            E::Dir(n) => (n, tar::EntryType::Directory, b"", ""),
            E::Symlink(n, t) => (n, tar::EntryType::Symlink, b"", t),
        };
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// The regular files of a tar, in order.
pub(super) fn files_of(tar: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(tar);
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push((name, data));
    }
    out
}

/// A tar of regular files.
pub(super) fn retar(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let entries: Vec<E> = files.iter().map(|(n, d)| E::File(n, d)).collect();
    tar_of(&entries)
}

pub(super) fn r(s: &str) -> Reference {
    s.parse().unwrap()
}

/// Import a small root file system as `name`.
pub(super) fn import(images: &Images, name: &str) -> Digest {
    let rootfs = tar_of(&[
        E::Dir("bin/"),
        E::File("bin/hello", b"hi\n"),
        E::File("etc/os-release", b"ID=orch\n"),
    ]);
    let cfg = ImportConfig {
        cmd: vec!["/bin/hello".into()],
        ..ImportConfig::default()
    };
    images.import(&rootfs[..], &r(name), &cfg).unwrap()
}

pub(super) fn blob(images: &Images, d: &Digest) -> Vec<u8> {
    let mut b = Vec::new();
    images
        .content
        .open_verified(d)
        .unwrap()
        .read_to_end(&mut b)
        .unwrap();
    b
}

fn manifest(images: &Images, d: &Digest) -> ImageManifest {
    serde_json::from_slice(&blob(images, d)).unwrap()
}

fn config(images: &Images, d: &Digest) -> (Digest, ImageConfig) {
    let m = manifest(images, d);
    let c = serde_json::from_slice(&blob(images, &m.config.digest)).unwrap();
    (m.config.digest, c)
}

/// Prepare the image's snapshots and read `file` from the topmost layer holding it.
fn file_in(t: &Tmp, images: &Images, d: &Digest, file: &str) -> Vec<u8> {
    let snaps = t.snapshots("snapshots");
    let lowers = snaps.prepare(&images.content, d).unwrap();
    let hit = lowers.iter().map(|l| l.join(file)).find(|p| p.exists());
    fs::read(hit.unwrap_or_else(|| panic!("{file} in no layer"))).unwrap()
}

#[test]
fn oci_layout_round_trip_keeps_every_digest() {
    let t = Tmp::new();
    let a = t.images("a");
    let d = import(&a, "orch-test/app:1");
    let by_digest = r(&format!("orch-test/app@{d}"));
    let mut tar = Vec::new();
    save(
        &a,
        &[r("orch-test/app:1"), by_digest],
        ArchiveFormat::OciLayout,
        &mut tar,
    )
    .unwrap();

    let names: Vec<String> = files_of(&tar).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.first().map(String::as_str), Some("oci-layout"));
    assert_eq!(names.last().map(String::as_str), Some("index.json"));
    let index: ImageIndex = serde_json::from_slice(&files_of(&tar).pop().unwrap().1).unwrap();
    assert_eq!(index.manifests.len(), 2);
    assert_eq!(
        index.manifests[0].annotations["org.opencontainers.image.ref.name"],
        "docker.io/orch-test/app:1"
    );
    assert!(
        index.manifests[1].annotations.is_empty(),
        "by digest: no name"
    );

    let b = t.images("b");
    let loaded = load(&b, &tar[..]).unwrap();
    assert_eq!(loaded.len(), 1, "{loaded:?}");
    assert_eq!(loaded[0].digest, d, "the manifest digest survives");
    assert_eq!(loaded[0].tags, vec![r("orch-test/app:1")]);
    assert_eq!(b.resolve(&r("orch-test/app:1")).unwrap(), d);
    assert_eq!(b.content.list(), a.content.list(), "blobs byte for byte");
    assert_eq!(file_in(&t, &b, &d, "bin/hello"), b"hi\n");
}

#[test]
fn docker_archive_round_trip_keeps_config_and_diff_ids() {
    let t = Tmp::new();
    let a = t.images("a");
    let d = import(&a, "orch-test/app:1");
    a.tag(&r("orch-test/app:2"), &d).unwrap();
    let (config_d, config) = config(&a, &d);
    let mut tar = Vec::new();
    let refs = [r("orch-test/app:1"), r("orch-test/app:2")];
    save(&a, &refs, ArchiveFormat::DockerArchive, &mut tar).unwrap();

    let files = files_of(&tar);
    let diff = &config.rootfs.diff_ids[0];
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("{}.json", config_d.hex()).as_str(),
            &format!("{}/layer.tar", diff.hex()),
            "manifest.json",
            "repositories"
        ]
    );
    assert_eq!(Digest::of(&files[1].1), *diff, "layer.tar is uncompressed");
    let m: serde_json::Value = serde_json::from_slice(&files[2].1).unwrap();
    assert_eq!(
        m[0]["RepoTags"],
        serde_json::json!(["orch-test/app:1", "orch-test/app:2"])
    );
    let repos: serde_json::Value = serde_json::from_slice(&files[3].1).unwrap();
    assert_eq!(repos["orch-test/app"]["1"], diff.hex());

    // Gzip-compressed, as `docker save | gzip` gives it.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    for input in [tar, gz] {
        let b = t.images(&format!("b{}", input.len()));
        let loaded = load(&b, &input[..]).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].config.as_ref(), Some(&config_d), "same image id");
        assert_eq!(loaded[0].tags, refs.to_vec());
        let (c2, config2) = self::config(&b, &loaded[0].digest);
        assert_eq!(
            (c2, config2.rootfs.diff_ids),
            (config_d.clone(), config.rootfs.diff_ids.clone())
        );
        assert_eq!(file_in(&t, &b, &loaded[0].digest, "bin/hello"), b"hi\n");
    }
}

/// Docker's legacy config for layers with these diff ids.
pub(super) fn docker_config(diff_ids: &[Digest], cmd: &str) -> Vec<u8> {
    let ids: Vec<String> = diff_ids.iter().map(ToString::to_string).collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "config": {"Cmd": [cmd], "Env": ["PATH=/bin"], "Image": ""},
        "container_config": {"Cmd": ["/bin/sh", "-c", "#(nop) CMD"]},
        "created": "2024-01-01T00:00:00Z",
        "docker_version": "24.0.7",
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "ADD rootfs /"}],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": ids},
    }))
    .unwrap()
}

#[test]
fn loads_what_docker_save_writes() {
    let t = Tmp::new();
    let l1 = tar_of(&[
        E::Dir("bin/"),
        E::File("bin/sh", b"#!shell\n"),
        E::Dir("etc/"),
        E::File("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
    ]);
    let l2 = tar_of(&[
        E::File("etc/.wh.passwd", b""),
        E::File("etc/motd", b"hello\n"),
    ]);
    let (d1, d2) = (Digest::of(&l1), Digest::of(&l2));
    let c1 = docker_config(&[d1.clone(), d2.clone()], "sh");
    let c2 = docker_config(std::slice::from_ref(&d1), "true");
    let (c1d, c2d) = (Digest::of(&c1), Digest::of(&c2));
    // v1 layer ids are arbitrary in docker's layout.
    let (v1, v2, v3) = (Digest::of(b"v1"), Digest::of(b"v2"), Digest::of(b"v3"));
    let (v1, v2, v3) = (v1.hex(), v2.hex(), v3.hex());
    let manifest_json = format!(
        r#"[{{"Config":"{c1}.json","RepoTags":["busybox:latest"],"Layers":["{v1}/layer.tar","{v2}/layer.tar"]}},
           {{"Config":"{c2}.json","RepoTags":null,"Layers":["{v3}/layer.tar"]}}]"#,
        c1 = c1d.hex(),
        c2 = c2d.hex()
    );
    let repositories = format!(r#"{{"busybox":{{"latest":"{v2}"}}}}"#);
    let p = |a: &str, b: &str| format!("{a}/{b}");
    let (v1d, v2d, v3d) = (format!("{v1}/"), format!("{v2}/"), format!("{v3}/"));
    let (c1n, c2n) = (format!("{}.json", c1d.hex()), format!("{}.json", c2d.hex()));
    let tar = tar_of(&[
        E::Dir(&v1d),
        E::File(&p(v1, "VERSION"), b"1.0"),
        E::File(&p(v1, "json"), br#"{"id":"x"}"#),
        E::File(&p(v1, "layer.tar"), &l1),
        E::Dir(&v2d),
        E::File(&p(v2, "VERSION"), b"1.0"),
        E::File(&p(v2, "layer.tar"), &l2),
        E::Dir(&v3d),
        // Docker writes a layer it already wrote as a link to the first copy.
        E::Symlink(&p(v3, "layer.tar"), &format!("../{v1}/layer.tar")),
        E::File(&c1n, &c1),
        E::File(&c2n, &c2),
        E::File("manifest.json", manifest_json.as_bytes()),
        E::File("repositories", repositories.as_bytes()),
    ]);
    let images = t.images("a");
    let loaded = load(&images, &tar[..]).unwrap();
    assert_eq!(loaded.len(), 2);
    assert_eq!(loaded[0].tags, vec![r("busybox:latest")]);
    assert_eq!(loaded[0].config, Some(c1d));
    assert!(loaded[1].tags.is_empty(), "untagged, reported by digest");
    assert_eq!(loaded[1].config, Some(c2d));
    assert_eq!(images.list().unwrap().len(), 1);
    assert_eq!(images.resolve(&r("busybox")).unwrap(), loaded[0].digest);
    let m = manifest(&images, &loaded[0].digest);
    assert_eq!(m.layers[0].digest, d1, "uncompressed layer.tar is the blob");
    assert_eq!(
        m.layers[0].media_type,
        "application/vnd.oci.image.layer.v1.tar"
    );
    assert!(
        !images.content.contains(&Digest::of(b"1.0")),
        "files the images do not name are not stored"
    );
    assert_eq!(
        file_in(&t, &images, &loaded[0].digest, "etc/motd"),
        b"hello\n"
    );
    assert_eq!(
        file_in(&t, &images, &loaded[1].digest, "bin/sh"),
        b"#!shell\n"
    );
    assert_eq!(
        fs::read_dir(t.0.join("a/content/ingest")).unwrap().count(),
        0,
        "no temp file left"
    );
}

#[test]
fn an_index_saves_the_platforms_that_are_present() {
    let t = Tmp::new();
    let a = t.images("a");
    let m = import(&a, "orch-test/app:1");
    let size = blob(&a, &m).len();
    let absent = Digest::of(b"an arm64 manifest never pulled");
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
        {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{absent}","size":7,"platform":{{"architecture":"arm64","os":"linux"}}}},
        {{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{m}","size":{size},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#
    );
    let id = Digest::of(index.as_bytes());
    a.content.ingest(&id, None, &mut index.as_bytes()).unwrap();
    a.tag(&r("orch-test/multi:1"), &id).unwrap();

    let mut oci = Vec::new();
    save(
        &a,
        &[r("orch-test/multi:1")],
        ArchiveFormat::OciLayout,
        &mut oci,
    )
    .unwrap();
    let b = t.images("b");
    let loaded = load(&b, &oci[..]).unwrap();
    assert_eq!(
        (loaded[0].digest.clone(), loaded[0].config.clone()),
        (id.clone(), None)
    );
    assert_eq!(
        loaded[0].notes,
        vec![LoadNote::PlatformsMissing {
            index: id,
            missing: vec![absent]
        }]
    );

    let mut docker = Vec::new();
    save(
        &a,
        &[r("orch-test/multi:1")],
        ArchiveFormat::DockerArchive,
        &mut docker,
    )
    .unwrap();
    let c = t.images("c");
    let loaded = load(&c, &docker[..]).unwrap();
    assert_eq!(
        loaded[0].config,
        Some(config(&a, &m).0),
        "the present platform"
    );
}

#[test]
fn oci_names_that_are_only_tags_are_reported_not_applied() {
    let t = Tmp::new();
    let a = t.images("a");
    let d = import(&a, "orch-test/app:1");
    let mut tar = Vec::new();
    save(
        &a,
        &[r("orch-test/app:1")],
        ArchiveFormat::OciLayout,
        &mut tar,
    )
    .unwrap();
    let mut files = files_of(&tar);
    let last = files.len() - 1;
    let mut index: serde_json::Value = serde_json::from_slice(&files[last].1).unwrap();
    index["manifests"][0]["annotations"] =
        serde_json::json!({"org.opencontainers.image.ref.name": "1.0"});
    files[last].1 = serde_json::to_vec(&index).unwrap();
    let b = t.images("b");
    let loaded = load(&b, &retar(&files)[..]).unwrap();
    assert_eq!(loaded[0].digest, d);
    assert!(loaded[0].tags.is_empty());
    assert_eq!(
        loaded[0].notes,
        vec![LoadNote::TagOnly { name: "1.0".into() }]
    );
    assert!(b.list().unwrap().is_empty());
    assert!(b.content.contains(&d), "still loaded, by digest");
}

#[test]
fn saving_an_unknown_image_names_it() {
    let t = Tmp::new();
    let a = t.images("a");
    let e = save(&a, &[r("nope:1")], ArchiveFormat::OciLayout, Vec::new()).unwrap_err();
    assert!(
        matches!(e, ArchiveError::Images(_)) && e.to_string().contains("nope:1"),
        "{e}"
    );
}
