//! Builds run for real, by behaviour: `.dockerignore`, `--target`, errors with their
//! line, ADD of archives, whiteouts in stage views.

use super::BuildEvent;
use super::DockerfileSource;
use super::tests::{Env, exists, stat};
use super::tree::{ImageTree, Tree};
use std::fs;
use std::path::Path;

#[test]
fn dockerignored_files_are_invisible() {
    let env = Env::new("ignore");
    env.file("app.txt", b"a", 0o644);
    env.file("secret.txt", b"s", 0o600);
    env.file("logs/a.log", b"l", 0o644);
    env.file("keep.log", b"k", 0o644);
    env.file("docs/x.md", b"x", 0o644);
    env.file("docs/README.md", b"r", 0o644);
    env.file(
        ".dockerignore",
        b"# secrets\nsecret.txt\n**/*.log\n!keep.log\ndocs\n!docs/README.md\n",
        0o644,
    );
    let built = env
        .run(&env.request("FROM scratch\nCOPY . /ctx/\n"))
        .0
        .unwrap();
    let t = env.tree(&built);
    assert!(exists(&t, "/ctx/app.txt"));
    assert!(exists(&t, "/ctx/keep.log"));
    assert!(exists(&t, "/ctx/docs/README.md"));
    for hidden in ["/ctx/secret.txt", "/ctx/logs/a.log", "/ctx/docs/x.md"] {
        assert!(!exists(&t, hidden), "{hidden} was ignored");
    }
    let e = env
        .run(&env.request("FROM scratch\n\nCOPY secret.txt /s\n"))
        .0
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "Dockerfile:3: secret.txt: not found in the build context"
    );
    let e = env
        .run(&env.request("FROM scratch\nCOPY *.nothing /s/\n"))
        .0
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("Dockerfile:2: *.nothing: no file"), "{e}");
}

#[test]
fn target_builds_only_needed_stages() {
    let env = Env::new("target");
    env.file("a.txt", b"a", 0o644);
    let df = "FROM scratch AS one\nCOPY a.txt /one\nFROM scratch AS broken\nRUN make\nFROM scratch AS two\nCOPY --from=one /one /two\n";
    let mut req = env.request(df);
    req.target = Some("two".into());
    let (built, events) = env.run(&req);
    let built = built.unwrap();
    let stages: std::collections::BTreeSet<String> = events
        .iter()
        .filter_map(|e| match e {
            BuildEvent::Step { stage, .. } => Some(stage.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(stages, ["one".to_owned(), "two".to_owned()].into());
    assert!(exists(&env.tree(&built), "/two"));
    req.target = Some("three".into());
    let e = env.run(&req).0.unwrap_err().to_string();
    assert_eq!(
        e,
        "target stage \"three\" not found; the stages are: one, broken, two"
    );
    req.target = Some("broken".into());
    let e = env.run(&req).0.unwrap_err().to_string();
    assert!(
        e.starts_with("Dockerfile:4: RUN needs the container runtime"),
        "{e}"
    );
}

#[test]
fn errors_name_the_line() {
    let env = Env::new("errors");
    env.file("a", b"a", 0o644);
    env.file("b", b"b", 0o644);
    for (df, want) in [
        (
            "FROM scratch\nCOPY\n",
            "Dockerfile:2: COPY requires at least one source and a destination",
        ),
        (
            "FROM scratch\nFROBNICATE x\n",
            "Dockerfile:2: unknown instruction: FROBNICATE",
        ),
        (
            "FROM scratch\n\nRUN echo hi\n",
            "Dockerfile:3: RUN needs the container runtime",
        ),
        (
            "FROM orch-test/absent\n",
            "Dockerfile:1: image orch-test/absent:latest is not in the image store",
        ),
        (
            "FROM scratch\nCOPY a b /file\n",
            "Dockerfile:2: copying more than one source needs a destination directory",
        ),
        (
            "FROM scratch\nCOPY --chown=nobody a /a\n",
            "Dockerfile:2: --chown=nobody: user \"nobody\" is not in",
        ),
        (
            "FROM scratch\nCOPY --chmod=u+x a /a\n",
            "Dockerfile:2: --chmod=u+x: not an octal mode",
        ),
        (
            "FROM scratch\nADD https://example.com/x.tgz /x\n",
            "Dockerfile:2: ADD https://example.com/x.tgz: fetching URLs is not supported",
        ),
        (
            "FROM scratch\nCOPY a /a\nWORKDIR /a/b\n",
            "Dockerfile:3: WORKDIR /a/b: a file of that name is in the image",
        ),
        (
            "FROM scratch\nEXPOSE http\n",
            "Dockerfile:2: EXPOSE http: \"http\" is not a port number",
        ),
        (
            "FROM scratch\nCOPY --from=later /a /a\nFROM scratch AS later\n",
            "Dockerfile:2: --from=later: stage later is not defined before",
        ),
    ] {
        let e = env.run(&env.request(df)).0.unwrap_err().to_string();
        assert!(e.starts_with(want), "{df:?}: {e}");
    }
    let mut req = env.request("");
    req.dockerfile = DockerfileSource::Default;
    let e = env.run(&req).0.unwrap_err().to_string();
    assert!(e.starts_with("read the Dockerfile "), "{e}");
}

#[test]
fn add_extracts_local_archives() {
    let env = Env::new("add");
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    for (path, mode, data) in [
        ("pkg/bin/tool", 0o755, &b"tool"[..]),
        ("pkg/README", 0o644, &b"read me"[..]),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_mode(mode);
        h.set_uid(7);
        h.set_gid(8);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, path, data).unwrap();
    }
    let tgz = b.into_inner().unwrap().finish().unwrap();
    env.file("bundle.tar.gz", &tgz, 0o644);
    env.file("plain.txt", b"not an archive", 0o644);
    let df = "FROM orch-test/base:1\nWORKDIR /opt\nADD bundle.tar.gz plain.txt ./\nADD --chown=app bundle.tar.gz /owned/\n";
    let built = env.run(&env.request(df)).0.unwrap();
    let t = env.tree(&built);
    let tool = stat(&t, "/opt/pkg/bin/tool");
    assert_eq!(
        (tool.mode, tool.uid, tool.gid),
        (0o755, 7, 8),
        "archive metadata kept"
    );
    assert_eq!(
        fs::read(stat(&t, "/opt/pkg/README").host).unwrap(),
        b"read me"
    );
    assert_eq!(
        fs::read(stat(&t, "/opt/plain.txt").host).unwrap(),
        b"not an archive"
    );
    assert!(!exists(&t, "/opt/bundle.tar.gz"));
    let owned = stat(&t, "/owned/pkg/README");
    assert_eq!((owned.uid, owned.gid), (1000, 1001));
    // Nothing left behind in the scratch area.
    let tmp = env.images.root().join("build-tmp");
    assert_eq!(fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0), 0);
}

#[test]
fn stage_views_honour_whiteouts_and_opaque_dirs() {
    let env = Env::new("whiteout");
    let (upper, lower) = (env.root.join("upper"), env.root.join("lower"));
    for d in ["a", "b", "c"] {
        fs::create_dir_all(lower.join(d)).unwrap();
    }
    for f in ["a/x", "a/y", "b/z", "c/old"] {
        fs::write(lower.join(f), f).unwrap();
    }
    fs::create_dir_all(upper.join("a")).unwrap();
    fs::create_dir_all(upper.join("c")).unwrap();
    fs::write(upper.join("c/new"), "new").unwrap();
    let wh = std::ffi::CString::new(upper.join("a/x").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(
        unsafe { libc::mknod(wh.as_ptr(), libc::S_IFCHR, 0) },
        0,
        "mknod needs root"
    );
    let c = std::ffi::CString::new(upper.join("c").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid NUL-terminated strings and a 1-byte value.
    let rc = unsafe {
        libc::setxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            b"y".as_ptr().cast(),
            1,
            0,
        )
    };
    assert_eq!(rc, 0, "trusted xattrs need root");
    let t = ImageTree {
        layers: vec![upper, lower],
    };
    let names = |p: &str| -> Vec<String> {
        t.list(Path::new(p))
            .unwrap()
            .iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(""), ["a", "b", "c"]);
    assert_eq!(names("a"), ["y"]);
    assert_eq!(names("c"), ["new"]);
    assert!(t.stat(Path::new("a/x")).unwrap().is_none());
    assert!(t.stat(Path::new("c/old")).unwrap().is_none());
    assert!(t.stat(Path::new("b/z")).unwrap().is_some());
}

#[test]
fn copy_rules_wildcards_dirs_and_images() {
    let env = Env::new("rules");
    env.file("src/a.rs", b"a", 0o644);
    env.file("src/b.rs", b"b", 0o644);
    env.file("src/notes.txt", b"n", 0o644);
    env.file("src/deep/c.rs", b"c", 0o644);
    env.file("one.txt", b"1", 0o644);
    let df = r#"FROM orch-test/base:1
COPY src/*.rs /code/
COPY src /tree
COPY one.txt /renamed.txt
COPY one.txt /etc
COPY ["one.txt", "/with space/"]
COPY --from=orch-test/base:1 --chown=1234 /etc/group /copied/group
COPY --chown=5:6 src/deep /made/by/copy/
"#;
    let built = env.run(&env.request(df)).0.unwrap();
    let t = env.tree(&built);
    for p in [
        "/code/a.rs",
        "/code/b.rs",
        "/tree/a.rs",
        "/tree/deep/c.rs",
        "/tree/notes.txt",
    ] {
        assert!(exists(&t, p), "{p}");
    }
    assert!(!exists(&t, "/code/notes.txt") && !exists(&t, "/code/deep"));
    assert!(
        !exists(&t, "/tree/src"),
        "a directory source copies its contents"
    );
    assert_eq!(fs::read(stat(&t, "/renamed.txt").host).unwrap(), b"1");
    assert!(
        exists(&t, "/etc/one.txt"),
        "an existing directory gets the file inside"
    );
    assert!(exists(&t, "/with space/one.txt"));
    let g = stat(&t, "/copied/group");
    assert_eq!(
        (g.uid, g.gid),
        (1234, 1234),
        "numeric uid without group: gid = uid"
    );
    assert!(fs::read_to_string(&g.host).unwrap().contains("staff"));
    let made = stat(&t, "/made/by");
    assert_eq!(
        (made.uid, made.gid, made.mode),
        (5, 6, 0o755),
        "new parents get the owner"
    );
    assert!(exists(&t, "/made/by/copy/c.rs"));
    assert_eq!(
        super::base_images(df, None, &Default::default()).unwrap(),
        ["orch-test/base:1".parse().unwrap()],
        "one base image, listed once"
    );
}

#[test]
fn symlinks_resolve_inside_the_context_and_the_image() {
    let env = Env::new("contain");
    env.file("inside/passwd", b"context copy", 0o644);
    std::os::unix::fs::symlink("/etc", env.ctx.join("abs")).unwrap();
    std::os::unix::fs::symlink("../../../../../../etc", env.ctx.join("up")).unwrap();
    std::os::unix::fs::symlink("/inside", env.ctx.join("rooted")).unwrap();
    for src in ["abs/passwd", "up/passwd"] {
        let e = env
            .run(&env.request(&format!("FROM scratch\nCOPY {src} /x\n")))
            .0
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("not found in the build context"), "{src}: {e}");
    }
    // An absolute link means the context's root, and the image's root for destinations.
    let df = "FROM orch-test/base:1\nCOPY rooted/passwd /lib/../../../../escaped\n";
    let built = env.run(&env.request(df)).0.unwrap();
    let t = env.tree(&built);
    assert_eq!(
        fs::read(stat(&t, "/escaped").host).unwrap(),
        b"context copy"
    );
    assert!(!Path::new("/escaped").exists());
}
