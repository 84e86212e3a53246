//! `orch build` with the settings of RUN steps' containers (`--shm-size`,
//! `--ulimit`) and image labels (`--label`), as compose's `build:` keys reach them.

use super::engine::{Agent, fails, ok};

#[test]
fn build_sets_run_limits_and_labels() {
    let a = Agent::start("buildkeys");
    if !a.busybox() {
        return;
    }
    let ctx = a.dir.join("limits-ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\n\
         LABEL com.example.tier=dockerfile com.example.kept=yes\n\
         RUN { grep ' /dev/shm ' /proc/mounts | grep -o 'size=[0-9]*k'; \
         ulimit -n; ulimit -Hn; } | tee /limits\n",
    )
    .unwrap();
    let ctx = ctx.to_str().unwrap();
    let out = ok(&a.orch(
        &[
            "build",
            "-t",
            "limits:1",
            "--shm-size",
            "96m",
            "--ulimit",
            "nofile=512:1024",
            "--label",
            "com.example.tier=cli",
            "--label",
            "com.example.new=1",
            ctx,
        ],
        None,
    ));
    assert!(out.contains("size=98304k\n512\n1024\n"), "{out}");
    // The file the RUN step wrote is in the image.
    let limits = ok(&a.orch(
        &["container", "run", "--rm", "limits:1", "cat", "/limits"],
        None,
    ));
    assert_eq!(limits, "size=98304k\n512\n1024\n");
    let detail: serde_json::Value =
        serde_json::from_str(&ok(&a.orch(&["image", "inspect", "limits:1"], None))).unwrap();
    assert_eq!(
        detail[0]["config"]["labels"],
        serde_json::json!({
            "com.example.kept": "yes",
            "com.example.new": "1",
            "com.example.tier": "cli",
        }),
        "build labels win over the Dockerfile's"
    );

    // Without them (--shm-size 0 is the default): the containers' defaults (64 MiB
    // /dev/shm), not the cached step.
    let out = ok(&a.orch(&["build", "-t", "limits:2", "--shm-size", "0", ctx], None));
    assert!(!out.contains("Using cache"), "{out}");
    assert!(out.contains("size=65536k\n"), "{out}");

    // Bad values are refused before anything is sent (clap's usage error: exit 2).
    for (flag, value, why) in [
        ("--ulimit", "files=1", "unknown limit"),
        ("--shm-size", "lots", "invalid size"),
    ] {
        let out = a.orch(&["build", flag, value, ctx], None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.code() == Some(2) && err.contains(why), "{out:?}");
    }
    // A hard limit above the engine's own fails the step as it fails a container
    // (raising it needs CAP_SYS_RESOURCE), naming the limit.
    let above = format!("nofile=64:{}", hard_nofile() + 1);
    let out = a.orch(&["build", "--ulimit", &above, ctx], None);
    if !out.status.success() {
        fails(&out, "nofile");
    }
}

fn hard_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills a valid struct.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim.rlim_max
}
