//! Builds run for real: a base image imported into a real image store, real
//! snapshots, a context directory on disk; results checked through the snapshot
//! layers of the built image.

use super::tree::{ImageTree, Kind, Node, resolve};
use super::{BuildEvent, BuildRequest, Built, DockerfileSource, build};
use crate::engine::image::images::{Images, ImportConfig};
use crate::engine::image::manifest::{ImageConfig, ImageManifest};
use crate::engine::image::snapshot::Snapshots;
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

/// Source files get this mtime, so layers can be checked for it.
pub const MTIME: u64 = 1_700_000_000;

/// An image store, snapshots and a build context under a per-run temp dir.
pub struct Env {
    pub root: PathBuf,
    pub images: Images,
    pub snapshots: Snapshots,
    pub ctx: PathBuf,
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn base_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add =
        |path: &str, kind: tar::EntryType, mode: u32, uid: u64, data: &[u8], link: &str| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_uid(uid);
            h.set_gid(uid);
            h.set_mtime(1_600_000_000);
            h.set_size(data.len() as u64);
            if kind == tar::EntryType::Symlink {
                b.append_link(&mut h, path, link).unwrap();
            } else {
                b.append_data(&mut h, path, data).unwrap();
            }
        };
    let dir = tar::EntryType::Directory;
    let file = tar::EntryType::Regular;
    for d in ["bin/", "etc/", "usr/", "usr/lib/", "home/"] {
        add(d, dir, 0o755, 0, b"", "");
    }
    add("srv/", dir, 0o750, 0, b"", "");
    add("home/app/", dir, 0o700, 1000, b"", "");
    add("lib", tar::EntryType::Symlink, 0o777, 0, b"", "usr/lib");
    add(
        "etc/passwd",
        file,
        0o644,
        0,
        b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n",
        "",
    );
    add(
        "etc/group",
        file,
        0o644,
        0,
        b"root:x:0:\napp:x:1001:\nstaff:x:50:app\n",
        "",
    );
    add("bin/sh", file, 0o755, 0, b"#!fake shell\n", "");
    b.into_inner().unwrap()
}

impl Env {
    /// A fresh store with `orch-test/base:1` imported.
    pub fn new(tag: &str) -> Env {
        let root = std::env::temp_dir().join(format!("orch-build-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let images = Images::open(&root.join("images")).unwrap();
        let snapshots = Snapshots::open(&root.join("snapshots")).unwrap();
        let ctx = root.join("ctx");
        fs::create_dir_all(&ctx).unwrap();
        images
            .import(
                &base_tar()[..],
                &"orch-test/base:1".parse().unwrap(),
                &ImportConfig::default(),
            )
            .unwrap();
        Env {
            root,
            images,
            snapshots,
            ctx,
        }
    }

    /// Write a context file with `mode` and the fixed mtime.
    pub fn file(&self, rel: &str, content: &[u8], mode: u32) {
        let p = self.ctx.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        let f = fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(UNIX_EPOCH + Duration::from_secs(MTIME))
            .unwrap();
    }

    pub fn request(&self, dockerfile: &str) -> BuildRequest {
        BuildRequest {
            context: self.ctx.clone(),
            dockerfile: DockerfileSource::Text(dockerfile.into()),
            ..BuildRequest::default()
        }
    }

    pub fn run(&self, req: &BuildRequest) -> (Result<Built, super::BuildError>, Vec<BuildEvent>) {
        let mut events = Vec::new();
        let r = build(&self.images, &self.snapshots, req, &mut |e| events.push(e));
        (r, events)
    }

    pub fn json<T: serde::de::DeserializeOwned>(
        &self,
        d: &crate::engine::image::digest::Digest,
    ) -> T {
        let mut b = Vec::new();
        self.images
            .content
            .open_verified(d)
            .unwrap()
            .read_to_end(&mut b)
            .unwrap();
        serde_json::from_slice(&b).unwrap()
    }

    pub fn config(&self, built: &Built) -> ImageConfig {
        let m: ImageManifest = self.json(&built.manifest);
        assert_eq!(m.config.digest, built.config);
        self.json(&built.config)
    }

    /// The built image's file system, unpacked by `Snapshots::prepare`.
    pub fn tree(&self, built: &Built) -> ImageTree {
        let layers = self
            .snapshots
            .prepare(&self.images.content, &built.manifest)
            .unwrap();
        ImageTree { layers }
    }
}

/// The entry at `path`, symlinks followed; panics when missing.
pub fn stat(t: &ImageTree, path: &str) -> Node {
    resolve(t, Path::new(path), true)
        .unwrap()
        .1
        .unwrap_or_else(|| panic!("{path} is not in the image"))
}

pub fn exists(t: &ImageTree, path: &str) -> bool {
    resolve(t, Path::new(path), true).is_ok_and(|(_, n)| n.is_some())
}

pub fn layers_made(events: &[BuildEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, BuildEvent::Layer { .. }))
        .count()
}

const TWO_STAGES: &str = r#"# syntax=docker/dockerfile:1
ARG BASE=orch-test/base:1
FROM ${BASE} AS builder
ARG GREETING=hello
ARG SUFFIX=dflt
ENV APPDIR=/opt/app
WORKDIR $APPDIR
COPY --chown=app src/ ./src/
COPY --chown=app:staff --chmod=0640 config.txt conf/
COPY hello.txt /srv/greeting-${GREETING}.txt
COPY hello.txt /srv/hello-$SUFFIX.txt
LABEL stage=builder

FROM orch-test/base:1
ARG GREETING
COPY --from=builder /opt/app /app
COPY --from=builder /srv/greeting-${GREETING}.txt /srv/
COPY --chown=app:staff hello.txt /home/app/
COPY hello.txt /lib/
WORKDIR /app
USER app
ENV MODE=prod
ENTRYPOINT ["/bin/app"]
CMD ["--mode", "$MODE"]
LABEL org.opencontainers.image.title="demo app" version=1
EXPOSE 8080 9000/udp
STOPSIGNAL SIGTERM
"#;

fn two_stage_env(tag: &str) -> (Env, BuildRequest) {
    let env = Env::new(tag);
    env.file("src/main.rs", b"fn main() {}\n", 0o644);
    env.file("src/run.sh", b"#!/bin/sh\n", 0o755);
    env.file("config.txt", b"mode=1\n", 0o600);
    env.file("hello.txt", b"hello\n", 0o644);
    let mut req = env.request(TWO_STAGES);
    req.build_args = BTreeMap::from([("GREETING".to_owned(), "world".to_owned())]);
    req.tags = vec![
        "orch-test/app:1".parse().unwrap(),
        "orch-test/app:latest".parse().unwrap(),
    ];
    (env, req)
}

#[test]
fn two_stage_build_config_files_modes_owners() {
    let (env, req) = two_stage_env("two");
    let (built, events) = env.run(&req);
    let built = built.unwrap();
    assert_eq!(env.images.resolve(&req.tags[0]).unwrap(), built.manifest);
    assert_eq!(env.images.resolve(&req.tags[1]).unwrap(), built.manifest);
    assert!(events.contains(&BuildEvent::Step {
        stage: "builder".into(),
        index: 1,
        total: 24,
        instruction: "FROM ${BASE} AS builder".into(),
    }));

    let c = env.config(&built);
    assert_eq!((c.architecture.as_str(), c.os.as_str()), ("amd64", "linux"));
    let rc = c.config.clone().unwrap();
    let envs = rc.env.unwrap();
    assert!(envs.iter().any(|e| e.starts_with("PATH=")), "{envs:?}");
    assert!(envs.contains(&"MODE=prod".to_owned()));
    assert!(
        !envs.iter().any(|e| e.starts_with("APPDIR=")),
        "no ENV from the other stage"
    );
    assert_eq!(rc.working_dir.as_deref(), Some("/app"));
    assert_eq!(rc.user.as_deref(), Some("app"));
    assert_eq!(rc.entrypoint.unwrap(), ["/bin/app"]);
    assert_eq!(
        rc.cmd.unwrap(),
        ["--mode", "$MODE"],
        "exec form is not substituted"
    );
    let labels = rc.labels.unwrap();
    assert_eq!(labels["org.opencontainers.image.title"], "demo app");
    assert_eq!(labels["version"], "1");
    assert!(!labels.contains_key("stage"));
    let ports: Vec<&String> = rc.exposed_ports.as_ref().unwrap().keys().collect();
    assert_eq!(ports, ["8080/tcp", "9000/udp"]);
    assert_eq!(rc.stop_signal.as_deref(), Some("SIGTERM"));
    // base + 4 COPYs; WORKDIR /app exists (made by COPY) so it adds none.
    assert_eq!(c.rootfs.diff_ids.len(), 5);
    let layered: Vec<bool> = c
        .history
        .iter()
        .map(|h| h.get("empty_layer").is_none())
        .collect();
    assert_eq!(layered.iter().filter(|l| **l).count(), 4, "{:?}", c.history);
    assert!(c.created.is_some());

    let t = env.tree(&built);
    let main = stat(&t, "/app/src/main.rs");
    assert_eq!(
        (main.kind.clone(), main.mode, main.uid, main.gid),
        (Kind::File, 0o644, 0, 0)
    );
    assert_eq!(main.mtime, MTIME, "mtime from the source file");
    assert_eq!(fs::read(&main.host).unwrap(), b"fn main() {}\n");
    assert_eq!(stat(&t, "/app/src/run.sh").mode, 0o755);
    assert_eq!(
        stat(&t, "/app/conf/config.txt").mode,
        0o640,
        "--chmod kept by COPY --from"
    );
    assert!(
        exists(&t, "/srv/greeting-world.txt"),
        "--build-arg overrides the default"
    );
    assert!(
        !exists(&t, "/srv/hello-dflt.txt"),
        "only what stage 2 copies"
    );
    let home = stat(&t, "/home/app/hello.txt");
    assert_eq!(
        (home.uid, home.gid),
        (1000, 50),
        "--chown=app:staff by name"
    );
    assert_eq!(
        stat(&t, "/home/app").mode,
        0o700,
        "existing parent keeps its mode"
    );
    assert_eq!(stat(&t, "/srv").mode, 0o750);
    assert_eq!(
        stat(&t, "/usr/lib/hello.txt").kind,
        Kind::File,
        "/lib/ resolved through its symlink"
    );
    assert!(matches!(stat(&t, "/lib").kind, Kind::Dir));
    assert!(
        exists(&t, "/etc/passwd") && exists(&t, "/bin/sh"),
        "base layer below"
    );

    // The builder stage alone: owners from --chown and the WORKDIR layer.
    let mut req_b = req.clone();
    req_b.target = Some("builder".into());
    req_b.tags = vec!["orch-test/app:builder".parse().unwrap()];
    let (b, events) = env.run(&req_b);
    let b = b.unwrap();
    assert!(
        events
            .iter()
            .all(|e| !matches!(e, BuildEvent::Step { stage, .. } if stage != "builder"))
    );
    let t = env.tree(&b);
    let main = stat(&t, "/opt/app/src/main.rs");
    assert_eq!(
        (main.uid, main.gid),
        (1000, 1001),
        "--chown=app: primary group"
    );
    let conf = stat(&t, "/opt/app/conf/config.txt");
    assert_eq!((conf.uid, conf.gid, conf.mode), (1000, 50, 0o640));
    let conf_dir = stat(&t, "/opt/app/conf");
    assert_eq!(
        (conf_dir.uid, conf_dir.gid, conf_dir.mode),
        (1000, 50, 0o755)
    );
    let app = stat(&t, "/opt/app");
    assert_eq!((app.uid, app.mode), (0, 0o755), "made by WORKDIR");
    assert!(exists(&t, "/srv/hello-dflt.txt"), "ARG default");
    let bc = env.config(&b);
    assert_eq!(bc.rootfs.diff_ids.len(), 6, "base + WORKDIR + 4 COPYs");
    assert_eq!(bc.config.unwrap().labels.unwrap()["stage"], "builder");
}

#[test]
fn rebuild_reuses_layers_and_changes_rebuild_from_the_copy() {
    let (env, req) = two_stage_env("cache");
    let first = env.run(&req).0.unwrap();
    let blobs = env.images.content.list();
    let (again, events) = env.run(&req);
    assert_eq!(again.unwrap(), first, "same manifest and config digests");
    assert_eq!(layers_made(&events), 0, "{events:?}");
    assert_eq!(env.images.content.list(), blobs, "no new blobs");

    // Change config.txt: builder's 3rd step onwards is rebuilt, earlier ones cached.
    env.file("config.txt", b"mode=2\n", 0o600);
    let (changed, events) = env.run(&req);
    let changed = changed.unwrap();
    assert_ne!(changed.manifest, first.manifest);
    let steps: Vec<(usize, bool)> = events
        .windows(2)
        .filter_map(|w| match (&w[0], &w[1]) {
            (BuildEvent::Step { index, .. }, BuildEvent::Layer { .. }) => Some((*index, true)),
            (BuildEvent::Step { index, .. }, BuildEvent::Cached { .. }) => Some((*index, false)),
            _ => None,
        })
        .collect();
    // Steps: 5 WORKDIR, 6 COPY src, 7 COPY config.txt, ...
    assert_eq!(steps[..3], [(5, false), (6, false), (7, true)], "{steps:?}");
    assert!(
        steps.iter().filter(|s| s.0 > 7).all(|s| s.1),
        "later layers rebuilt"
    );

    // A cached layer whose blob left the store is made again.
    let c = env.config(&changed);
    let m: ImageManifest = env.json(&changed.manifest);
    let gone = m.layers[1].digest.clone();
    assert_eq!(c.rootfs.diff_ids.len(), m.layers.len());
    env.images.content.remove(&gone).unwrap();
    let (again, events) = env.run(&req);
    assert_eq!(again.unwrap(), changed);
    assert_eq!(layers_made(&events), 1, "{events:?}");
    assert!(env.images.content.contains(&gone));

    // --no-cache makes every layer anew.
    let mut nc = req.clone();
    nc.no_cache = true;
    let (_, events) = env.run(&nc);
    assert_eq!(layers_made(&events), 9);
}
