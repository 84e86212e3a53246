//! Removing images and pruning against a real store and real snapshot directories.

use super::digest::Digest;
use super::gc::{GcError, PruneMode, prune, remove};
use super::images::{Images, ImagesError, ImportConfig};
use super::reference::Reference;
use super::snapshot::{Snapshots, chain_ids};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A per-run temp directory, removed on drop.
struct Tmp(PathBuf);

impl Tmp {
    fn new() -> Tmp {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let d = std::env::temp_dir().join(format!("orch-gc-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        Tmp(d)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        // Snapshots may hold read-only directories; open them up first.
        let _ = std::process::Command::new("chmod")
            .args(["-R", "u+rwx"])
            .arg(&self.0)
            .status();
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn r(s: &str) -> Reference {
    s.parse().unwrap()
}

/// A layer tar; `(name, data, mode)`, a name ending in `/` is a directory.
fn layer(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data, mode) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_entry_type(if name.ends_with('/') {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        h.set_size(data.len() as u64);
        h.set_mode(*mode);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn put(images: &Images, bytes: &[u8]) -> Digest {
    let d = Digest::of(bytes);
    images.content.ingest(&d, None, &mut &bytes[..]).unwrap();
    d
}

/// An image of uncompressed `layers`; (manifest, config).
fn image(images: &Images, layers: &[&[u8]], cmd: &str) -> (Digest, Digest) {
    let descs: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": put(images, l).to_string(), "size": l.len()}))
        .collect();
    let ids: Vec<String> = layers.iter().map(|l| Digest::of(l).to_string()).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": [cmd]},
        "rootfs": {"type": "layers", "diff_ids": ids},
    }))
    .unwrap();
    let c = put(images, &config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c.to_string(), "size": config.len()},
        "layers": descs,
    }))
    .unwrap();
    (put(images, &manifest), c)
}

#[test]
fn prune_after_rmi_keeps_the_shared_base_and_the_other_image() {
    if !is_root() {
        eprintln!("SKIP prune with whiteouts: unpacking a whiteout needs root (mknod)");
        return;
    }
    let t = Tmp::new();
    let images = Images::open(&t.0.join("images")).unwrap();
    let snaps = Snapshots::open(&t.0.join("snapshots")).unwrap();
    let base = layer(&[("bin/", b"", 0o755), ("bin/sh", b"#!sh\n", 0o755)]);
    let one = layer(&[
        ("bin/.wh.sh", b"", 0o644),
        ("ro/", b"", 0o555),
        ("ro/inside", b"x", 0o444),
        ("one", b"1", 0o644),
    ]);
    let two = layer(&[("two", b"2", 0o644)]);
    let (m1, c1) = image(&images, &[&base, &one], "one");
    let (m2, c2) = image(&images, &[&base, &two], "two");
    images.tag(&r("orch-test/one:1"), &m1).unwrap();
    images.tag(&r("orch-test/two:1"), &m2).unwrap();
    snaps.prepare(&images.content, &m1).unwrap();
    let lowers2 = snaps.prepare(&images.content, &m2).unwrap();
    let chains1 = chain_ids(&[Digest::of(&base), Digest::of(&one)]);
    let chains2 = chain_ids(&[Digest::of(&base), Digest::of(&two)]);
    // What a pull interrupted after one blob leaves, and a crashed ingest's temp file.
    let orphan = put(&images, b"a layer of an image never tagged");
    let stale = t.0.join("images/content/ingest/crashed-1");
    fs::write(&stale, b"partial").unwrap();

    let removal = remove(&images, "orch-test/one:1", false).unwrap();
    assert_eq!(
        (removal.digest.clone(), removal.dangling),
        (m1.clone(), true)
    );

    // Fresh ingest files survive a prune.
    let now = SystemTime::now();
    let hour = Duration::from_secs(3600);
    let report = prune(&images, &snaps, &[], PruneMode::Dangling, now, hour).unwrap();
    assert!(report.ingests.is_empty() && stale.exists());
    let mut gone = vec![m1.clone(), c1, Digest::of(&one), orphan];
    gone.sort();
    assert_eq!(report.blobs, gone);
    assert_eq!(report.snapshots, vec![chains1[1].clone()]);
    assert!(report.bytes > one.len() as u64);
    for d in &gone {
        assert!(!images.content.contains(d), "{d} survived");
    }
    for d in [&m2, &c2, &Digest::of(&base), &Digest::of(&two)] {
        assert!(
            images.content.contains(d),
            "{d} of the kept image was removed"
        );
    }
    assert_eq!(snaps.list().unwrap(), {
        let mut v = chains2.clone();
        v.sort();
        v
    });
    assert!(!t.0.join("snapshots").join(chains1[1].hex()).exists());
    assert_eq!(
        fs::read_dir(t.0.join("snapshots")).unwrap().count(),
        2,
        "no tmp- leftover"
    );
    assert_eq!(snaps.prepare(&images.content, &m2).unwrap(), lowers2);
    assert_eq!(fs::read(lowers2[1].join("bin/sh")).unwrap(), b"#!sh\n");

    // Later, the temp file is stale; a second prune finds nothing else.
    let later = now + 2 * hour;
    let report = prune(&images, &snaps, &[], PruneMode::Dangling, later, hour).unwrap();
    assert_eq!(report.ingests, ["crashed-1"]);
    assert!(report.blobs.is_empty() && report.snapshots.is_empty());
    assert!(!stale.exists());
}

#[test]
fn snapshot_removal_opens_read_only_directories() {
    let t = Tmp::new();
    let snaps = Snapshots::open(&t.0.join("snapshots")).unwrap();
    let chain = Digest::of(b"chain");
    let dir = t.0.join("snapshots").join(chain.hex());
    fs::create_dir_all(dir.join("ro/deeper")).unwrap();
    fs::write(dir.join("ro/deeper/f"), b"x").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("ro/link")).unwrap();
    fs::set_permissions(dir.join("ro/deeper"), fs::Permissions::from_mode(0o500)).unwrap();
    fs::set_permissions(dir.join("ro"), fs::Permissions::from_mode(0o500)).unwrap();
    assert_eq!(snaps.list().unwrap(), vec![chain.clone()]);
    snaps.remove(&chain).unwrap();
    assert!(!dir.exists());
    assert!(snaps.list().unwrap().is_empty());
    assert!(
        std::path::Path::new("/etc/passwd").exists(),
        "followed a symlink"
    );
    snaps.remove(&chain).unwrap();
}

#[test]
fn rmi_by_tag_digest_and_id() {
    let t = Tmp::new();
    let images = Images::open(&t.0.join("images")).unwrap();
    let rootfs = layer(&[("hello", b"hi", 0o644)]);
    let m = images
        .import(&rootfs[..], &r("orch-test/a:1"), &ImportConfig::default())
        .unwrap();
    images.tag(&r("orch-test/a:2"), &m).unwrap();

    let e = images.untag(&r("orch-test/nope:1")).unwrap_err();
    assert!(
        matches!(e, ImagesError::NotFound { .. }) && e.to_string().contains("orch-test/nope:1"),
        "{e}"
    );
    let e = remove(&images, "orch-test/nope:1", false).unwrap_err();
    assert!(
        matches!(e, GcError::NotFound { .. }) && e.to_string().contains("orch-test/nope:1"),
        "{e}"
    );

    // By id (a prefix of the config digest) with two tags: refused, naming both.
    let bytes = fs::read(images.content.path(&m)).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let id = manifest["config"]["digest"].as_str().unwrap()[7..19].to_owned();
    let e = remove(&images, &id, false).unwrap_err();
    assert!(matches!(e, GcError::Tagged { .. }), "{e}");
    assert!(
        e.to_string().contains("orch-test/a:1, orch-test/a:2"),
        "{e}"
    );
    assert_eq!(images.list().unwrap().len(), 2, "refused means untouched");

    // By tag: only that tag; the image is still tagged.
    let one = remove(&images, "orch-test/a:2", false).unwrap();
    assert_eq!(
        (one.untagged, one.dangling),
        (vec!["orch-test/a:2".to_owned()], false)
    );
    images.tag(&r("orch-test/a:2"), &m).unwrap();

    // By digest with force: every tag.
    let all = remove(&images, &m.to_string(), true).unwrap();
    assert_eq!(all.untagged, ["orch-test/a:1", "orch-test/a:2"]);
    assert!(all.dangling && images.list().unwrap().is_empty());
    assert!(
        images.content.contains(&m),
        "content goes at the next prune"
    );
}

#[test]
fn prune_all_removes_every_image_not_kept() {
    let t = Tmp::new();
    let images = Images::open(&t.0.join("images")).unwrap();
    let snaps = Snapshots::open(&t.0.join("snapshots")).unwrap();
    let (a, _) = image(&images, &[&layer(&[("a", b"a", 0o644)])], "a");
    let (b, _) = image(&images, &[&layer(&[("b", b"b", 0o644)])], "b");
    images.tag(&r("orch-test/a:1"), &a).unwrap();
    images.tag(&r("orch-test/b:1"), &b).unwrap();
    snaps.prepare(&images.content, &a).unwrap();
    snaps.prepare(&images.content, &b).unwrap();
    let hour = Duration::from_secs(3600);
    let now = SystemTime::now();
    let report = prune(
        &images,
        &snaps,
        std::slice::from_ref(&b),
        PruneMode::Dangling,
        now,
        hour,
    )
    .unwrap();
    assert!(report.blobs.is_empty(), "both tagged: nothing dangling");
    let report = prune(
        &images,
        &snaps,
        std::slice::from_ref(&b),
        PruneMode::All,
        now,
        hour,
    )
    .unwrap();
    assert_eq!(report.untagged, ["orch-test/a:1"]);
    assert_eq!(report.blobs.len(), 3);
    assert_eq!(report.snapshots.len(), 1);
    assert!(!images.content.contains(&a) && images.content.contains(&b));
    assert_eq!(images.resolve(&r("orch-test/b:1")).unwrap(), b);
    snaps.prepare(&images.content, &b).unwrap();
}

/// The pure core against random stores.
mod plan_props {
    use super::super::digest::Digest;
    use super::super::gc::{Inventory, Node, plan};
    use super::super::snapshot::chain_ids;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};
    use std::convert::Infallible;
    use std::time::{Duration, SystemTime};

    fn d(i: usize) -> Digest {
        Digest::of(format!("blob {i}").as_bytes())
    }

    fn diff(k: u8) -> Digest {
        Digest::of(format!("diff {k}").as_bytes())
    }

    /// A random store: for each blob, what it is (0 leaf, 1 index, 2 image) with
    /// random references; which blobs are present; roots; extra snapshots.
    #[allow(clippy::type_complexity)]
    fn store() -> impl Strategy<
        Value = (
            Vec<(u8, Vec<usize>, Vec<u8>)>,
            Vec<bool>,
            Vec<usize>,
            Vec<Vec<u8>>,
        ),
    > {
        (2usize..24).prop_flat_map(|n| {
            (
                proptest::collection::vec(
                    (
                        0u8..3,
                        proptest::collection::vec(0..n, 0..5),
                        proptest::collection::vec(0u8..4, 0..4),
                    ),
                    n,
                ),
                proptest::collection::vec(proptest::bool::weighted(0.85), n),
                proptest::collection::vec(0..n, 0..4),
                proptest::collection::vec(proptest::collection::vec(0u8..4, 1..4), 0..4),
            )
        })
    }

    fn node(kind: u8, refs: &[usize], diffs: &[u8]) -> Node {
        match (kind, refs.split_first()) {
            (1, _) => Node::Index {
                manifests: refs.iter().map(|&i| d(i)).collect(),
            },
            (2, Some((config, layers))) => Node::Image {
                config: d(*config),
                layers: layers.iter().map(|&i| d(i)).collect(),
                diff_ids: diffs.iter().map(|&k| diff(k)).collect(),
            },
            _ => Node::Opaque,
        }
    }

    proptest! {
        #[test]
        fn reachable_stays_and_unreachable_goes((graph, present, roots, extra) in store()) {
            let n = graph.len();
            let nodes: BTreeMap<Digest, Node> =
                (0..n).map(|i| (d(i), node(graph[i].0, &graph[i].1, &graph[i].2))).collect();
            let mut snapshots: Vec<Digest> = graph
                .iter()
                .flat_map(|(_, _, diffs)| chain_ids(&diffs.iter().map(|&k| diff(k)).collect::<Vec<_>>()))
                .chain(extra.iter().flat_map(|e| chain_ids(&e.iter().map(|&k| diff(k)).collect::<Vec<_>>())))
                .collect();
            snapshots.sort();
            snapshots.dedup();
            let inv = Inventory {
                roots: roots.iter().map(|&i| d(i)).collect(),
                blobs: (0..n).filter(|&i| present[i]).map(|i| (d(i), i as u64 + 1)).collect(),
                snapshots: snapshots.clone(),
                ingests: Vec::new(),
            };
            let mut reads = Vec::new();
            let p = plan(&inv, SystemTime::UNIX_EPOCH, Duration::ZERO, |x| {
                reads.push(x.clone());
                Ok::<_, Infallible>(nodes[x].clone())
            })
            .unwrap();

            // Reachability by fixpoint, independently of the core's walk.
            let mut visited: BTreeSet<Digest> =
                inv.roots.iter().filter(|r| inv.blobs.contains_key(*r)).cloned().collect();
            loop {
                let more: Vec<Digest> = visited
                    .iter()
                    .flat_map(|m| match &nodes[m] {
                        Node::Index { manifests } => manifests.clone(),
                        _ => Vec::new(),
                    })
                    .filter(|c| inv.blobs.contains_key(c) && !visited.contains(c))
                    .collect();
                if more.is_empty() {
                    break;
                }
                visited.extend(more);
            }
            let mut keep = visited.clone();
            let mut chains = BTreeSet::new();
            for m in &visited {
                if let Node::Image { config, layers, diff_ids } = &nodes[m] {
                    keep.insert(config.clone());
                    keep.extend(layers.iter().cloned());
                    chains.extend(chain_ids(diff_ids));
                }
            }
            for b in &p.blobs {
                prop_assert!(!keep.contains(b), "reachable blob {b} planned for removal");
            }
            for b in inv.blobs.keys() {
                prop_assert!(keep.contains(b) || p.blobs.contains(b), "unreachable {b} kept");
            }
            for s in &p.snapshots {
                prop_assert!(!chains.contains(s), "reachable snapshot {s} planned");
            }
            for s in &snapshots {
                prop_assert!(chains.contains(s) || p.snapshots.contains(s), "unreachable snapshot {s} kept");
            }
            prop_assert_eq!(p.bytes, p.blobs.iter().map(|b| inv.blobs[b]).sum::<u64>());
            let read_set: BTreeSet<&Digest> = reads.iter().collect();
            prop_assert_eq!(read_set.len(), reads.len(), "a manifest was read twice");
            prop_assert!(reads.iter().all(|r| inv.blobs.contains_key(r)), "read an absent blob");
        }
    }

    #[test]
    fn only_old_ingest_files_go() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let inv = Inventory {
            ingests: vec![
                ("old".into(), t0 - Duration::from_secs(7200)),
                ("fresh".into(), t0 - Duration::from_secs(60)),
                ("future".into(), t0 + Duration::from_secs(60)),
            ],
            ..Inventory::default()
        };
        let p = plan(&inv, t0, Duration::from_secs(3600), |_| {
            Ok::<_, Infallible>(Node::Opaque)
        })
        .unwrap();
        assert_eq!(p.ingests, ["old"]);
    }
}
