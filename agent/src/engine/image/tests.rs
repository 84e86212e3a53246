//! Layer unpacking against hostile and real-world layers, run for real (root for
//! device nodes, xattrs and the overlay mount; a test the host cannot run skips with
//! the reason).

use super::unpack::{UnpackError, unpack};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A temp directory removed (and unmounted) on drop.
struct Tmp(PathBuf);

impl Tmp {
    fn new(tag: &str) -> Tmp {
        let d = std::env::temp_dir().join(format!("orch-unpack-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        Tmp(d)
    }
    fn dir(&self, name: &str) -> PathBuf {
        let d = self.0.join(name);
        fs::create_dir_all(&d).unwrap();
        d
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A tar entry written with raw header bytes, so hostile names survive.
enum E<'a> {
    File(&'a str, &'a [u8], u32),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Char(&'a str, u32, u32),
    Fifo(&'a str),
}

fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        let (name, kind, data, link, mode): (&str, tar::EntryType, &[u8], &str, u32) = match e {
            E::File(n, d, m) => (n, tar::EntryType::Regular, d, "", *m),
            E::Dir(n) => (n, tar::EntryType::Directory, b"", "", 0o755),
            E::Symlink(n, t) => (n, tar::EntryType::Symlink, b"", t, 0o777),
            E::Hardlink(n, t) => (n, tar::EntryType::Link, b"", t, 0o644),
            E::Char(n, _, _) => (n, tar::EntryType::Char, b"", "", 0o666),
            E::Fifo(n) => (n, tar::EntryType::Fifo, b"", "", 0o600),
        };
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_uid(1000);
        h.set_gid(1001);
        if let E::Char(_, major, minor) = e {
            h.set_device_major(*major).unwrap();
            h.set_device_minor(*minor).unwrap();
        }
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn file_digest(p: &Path) -> Option<(Vec<u8>, u64)> {
    let m = fs::symlink_metadata(p).ok()?;
    Some((fs::read(p).unwrap_or_default(), m.nlink()))
}

#[test]
fn dotdot_cannot_climb_out() {
    let t = Tmp::new("dotdot");
    let snap = t.dir("snap");
    let err = unpack(
        &layer(&[E::File("a/../../escape.txt", b"x", 0o644)])[..],
        &snap,
    )
    .unwrap_err();
    assert!(matches!(err, UnpackError::Escapes { .. }), "{err}");
    assert!(!t.0.join("escape.txt").exists());
}

#[test]
fn absolute_names_stay_inside() {
    let t = Tmp::new("abs");
    let snap = t.dir("snap");
    let marker = format!("orch-unpack-abs-{}", std::process::id());
    let name = format!("/tmp/{marker}");
    unpack(&layer(&[E::File(&name, b"inside", 0o644)])[..], &snap).unwrap();
    assert_eq!(fs::read(snap.join("tmp").join(&marker)).unwrap(), b"inside");
    assert!(!Path::new(&name).exists(), "wrote to the host's {name}");
}

#[test]
fn symlink_out_then_write_through_it_stays_inside() {
    let t = Tmp::new("symlink");
    let snap = t.dir("snap");
    let outside = t.dir("outside");
    let link_target = outside.to_str().unwrap().to_owned();
    let l = layer(&[
        E::Symlink("link", &link_target),
        E::File("link/pwned", b"x", 0o644),
    ]);
    unpack(&l[..], &snap).unwrap();
    assert!(
        !outside.join("pwned").exists(),
        "wrote through a symlink onto the host"
    );
    // The write landed where the container will see it: inside the snapshot.
    let inside = snap.join(link_target.trim_start_matches('/')).join("pwned");
    assert!(inside.is_file(), "{}", inside.display());
    assert!(
        fs::symlink_metadata(snap.join("link"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn a_file_replaces_a_symlink_instead_of_following_it() {
    let t = Tmp::new("replace");
    let snap = t.dir("snap");
    let victim = t.0.join("victim");
    fs::write(&victim, b"original").unwrap();
    let l = layer(&[
        E::Symlink("evil", victim.to_str().unwrap()),
        E::File("evil", b"overwritten", 0o644),
    ]);
    unpack(&l[..], &snap).unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"original");
    assert_eq!(fs::read(snap.join("evil")).unwrap(), b"overwritten");
}

#[test]
fn hard_link_to_a_host_file_is_refused() {
    let t = Tmp::new("hardlink");
    let snap = t.dir("snap");
    let before = file_digest(Path::new("/etc/shadow"));
    let err = unpack(&layer(&[E::Hardlink("shadow", "/etc/shadow")])[..], &snap).unwrap_err();
    assert!(
        err.to_string().contains("not a file of this layer"),
        "{err}"
    );
    assert!(!snap.join("shadow").exists());
    assert_eq!(
        file_digest(Path::new("/etc/shadow")),
        before,
        "host /etc/shadow changed"
    );
    // ... and a hard link climbing out with .. is refused as an escape.
    let err = unpack(
        &layer(&[E::Hardlink("x", "../../../../etc/passwd")])[..],
        &snap,
    )
    .unwrap_err();
    assert!(matches!(err, UnpackError::Escapes { .. }), "{err}");
}

#[test]
fn metadata_links_and_devices_are_preserved() {
    let t = Tmp::new("meta");
    let snap = t.dir("snap");
    let l = layer(&[
        E::Dir("etc"),
        E::File("etc/conf", b"k=v\n", 0o640),
        E::Hardlink("etc/conf2", "etc/conf"),
        E::Symlink("etc/rel", "conf"),
        E::File("bin/tool", b"#!/bin/sh\n", 0o4755),
        E::Char("dev/null", 1, 3),
        E::Fifo("run/pipe"),
    ]);
    let stats = unpack(&l[..], &snap).unwrap();
    assert_eq!(stats.entries, 7);
    let conf = fs::metadata(snap.join("etc/conf")).unwrap();
    assert_eq!(conf.permissions().mode() & 0o7777, 0o640);
    assert_eq!(conf.nlink(), 2);
    assert_eq!(
        fs::read_link(snap.join("etc/rel")).unwrap(),
        Path::new("conf")
    );
    assert_eq!(
        fs::metadata(snap.join("bin/tool"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o4755
    );
    if is_root() {
        assert_eq!((conf.uid(), conf.gid()), (1000, 1001));
        let null = fs::metadata(snap.join("dev/null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), libc::makedev(1, 3));
        assert!(
            fs::metadata(snap.join("run/pipe"))
                .unwrap()
                .file_type()
                .is_fifo()
        );
    } else {
        eprintln!("SKIP ownership and device checks: not root");
    }
}

#[test]
fn gzip_and_zstd_layers() {
    let t = Tmp::new("compressed");
    let raw = layer(&[E::File("hello", b"world", 0o644)]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    let gz = gz.finish().unwrap();
    let zst =
        ruzstd::encoding::compress_to_vec(&raw[..], ruzstd::encoding::CompressionLevel::Fastest);
    for (name, blob) in [("gz", gz), ("zst", zst)] {
        let snap = t.dir(name);
        unpack(&blob[..], &snap).unwrap();
        assert_eq!(fs::read(snap.join("hello")).unwrap(), b"world", "{name}");
    }
}

/// Unmounts on drop.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let p = std::ffi::CString::new(self.0.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) };
    }
}

mod snapshots {
    use super::super::digest::Digest;
    use super::super::snapshot::{SnapshotError, Snapshots, chain_ids, mount};
    use super::super::store::ContentStore;
    use super::{E, Mount, Tmp, is_root, layer};
    use std::fs;

    fn put(store: &ContentStore, bytes: &[u8]) -> Digest {
        let d = Digest::of(bytes);
        store.ingest(&d, None, &mut &bytes[..]).unwrap();
        d
    }

    /// An image of `layers` (bottom first) whose config claims `diff_ids` (default: the real ones).
    fn image(store: &ContentStore, layers: &[Vec<u8>], diff_ids: Option<Vec<Digest>>) -> Digest {
        let descs: Vec<String> = layers
            .iter()
            .map(|l| format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}"#, put(store, l), l.len()))
            .collect();
        let diff_ids = diff_ids.unwrap_or_else(|| layers.iter().map(|l| Digest::of(l)).collect());
        let ids: Vec<String> = diff_ids.iter().map(|d| format!("\"{d}\"")).collect();
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
            ids.join(",")
        );
        let cd = put(store, config.as_bytes());
        let manifest = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{}]}}"#,
            config.len(),
            descs.join(",")
        );
        put(store, manifest.as_bytes())
    }

    #[test]
    fn chain_ids_follow_the_oci_rule() {
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(c[1], Digest::of(format!("{a} {b}").as_bytes()));
    }

    #[test]
    fn prepare_and_mount_an_image() {
        let t = Tmp::new("snap-image");
        let store = ContentStore::open(&t.dir("content")).unwrap();
        let snaps = Snapshots::open(&t.dir("snapshots")).unwrap();
        let l1 = layer(&[
            E::File("a/file1", b"1", 0o644),
            E::File("a/keep", b"k", 0o644),
            E::File("d/x", b"x", 0o644),
        ]);
        let l2 = layer(&[
            E::File("a/.wh.file1", b"", 0o644),
            E::File("d/.wh..wh..opq", b"", 0o644),
            E::File("d/y", b"y", 0o644),
        ]);
        let m = image(&store, &[l1, l2], None);
        let lowers = snaps.prepare(&store, &m).unwrap();
        assert_eq!(lowers.len(), 2);
        assert!(lowers[1].join("a/file1").is_file(), "bottom layer last");
        assert_eq!(
            snaps.prepare(&store, &m).unwrap(),
            lowers,
            "layers are unpacked once"
        );
        if !is_root() {
            eprintln!("SKIP overlay mount of an image: needs root");
            return;
        }
        let (upper, work, root) = (t.dir("upper"), t.dir("work"), t.dir("rootfs"));
        if let Err(e) = mount(&Snapshots::overlay(&lowers, &upper, &work), &root) {
            eprintln!("SKIP overlay mount of an image: {e}");
            return;
        }
        let _m = Mount(root.clone());
        assert!(
            !root.join("a/file1").exists(),
            "whited-out file visible in the rootfs"
        );
        assert!(root.join("a/keep").is_file());
        assert!(
            !root.join("d/x").exists(),
            "opaque dir shows the lower layer"
        );
        fs::write(root.join("new"), b"w").unwrap();
        assert!(upper.join("new").is_file(), "writes land in the upper dir");
        assert!(
            !lowers.iter().any(|l| l.join("new").exists()),
            "a write reached a shared layer"
        );
    }

    #[test]
    fn a_layer_that_does_not_match_its_diff_id_is_refused() {
        let t = Tmp::new("snap-diffid");
        let store = ContentStore::open(&t.dir("content")).unwrap();
        let snaps_dir = t.dir("snapshots");
        let snaps = Snapshots::open(&snaps_dir).unwrap();
        let l = layer(&[E::File("f", b"data", 0o644)]);
        let m = image(&store, &[l], Some(vec![Digest::of(b"something else")]));
        let e = snaps.prepare(&store, &m).unwrap_err();
        assert!(matches!(e, SnapshotError::DiffId { .. }), "{e}");
        assert_eq!(
            fs::read_dir(&snaps_dir).unwrap().count(),
            0,
            "a refused layer left a directory"
        );
    }
}
