//! Capabilities, seccomp and `privileged`, seen from inside a container.

use super::{Case, can_run, run_case, scratch};
use agent::engine::runtime::spec::SecurityOptions;

/// What a container reports about itself, and the results of denied operations.
const PROBE: &str = "grep -E '^(CapEff|CapPrm|CapBnd|Seccomp|NoNewPrivs):' /proc/1/status; \
    mount -t tmpfs none /scratch 2>&1 && echo mount-ok; \
    unshare -u true 2>&1 && echo unshare-ok; \
    chown 1000 /tmp 2>&1 && echo chown-ok; \
    [ $(head -c 1 /proc/timer_list | wc -c) = 1 ] && echo timers-visible || echo timers-masked; \
    grep -q '^sysfs /sys sysfs rw' /proc/mounts && echo sys-rw || echo sys-ro; \
    true";

fn probe(tag: &str, user: &str, security: SecurityOptions) -> String {
    let dir = scratch(tag);
    let case = Case {
        name: tag,
        args: &["sh", "-c", PROBE],
        user,
        security,
        ..Case::default()
    };
    let o = run_case(&dir.0, &case).unwrap();
    assert_eq!(o.exit.code, 0, "{}", o.out);
    o.out
}

fn has(out: &str, needles: &[&str]) {
    for n in needles {
        assert!(out.contains(n), "{n:?} not in:\n{out}");
    }
}

fn lacks(out: &str, needles: &[&str]) {
    for n in needles {
        assert!(!out.contains(n), "{n:?} in:\n{out}");
    }
}

#[test]
fn runtime_root_gets_dockers_default_capabilities_and_seccomp() {
    if !can_run() {
        return;
    }
    let out = probe("sec-default", "0", SecurityOptions::default());
    has(
        &out,
        &[
            "CapEff:\t00000000a80425fb",
            "CapPrm:\t00000000a80425fb",
            "CapBnd:\t00000000a80425fb",
            "Seccomp:\t2",
            // Docker's default: no_new_privs only on request.
            "NoNewPrivs:\t0",
            // busybox words mount's EPERM so.
            "mount: permission denied (are you root?)",
            "unshare(0x4000000): Operation not permitted",
            "chown-ok",
            "timers-masked",
            "sys-ro",
        ],
    );
    lacks(&out, &["mount-ok", "unshare-ok"]);
}

#[test]
fn runtime_non_root_gets_no_capabilities() {
    if !can_run() {
        return;
    }
    let out = probe("sec-user", "app", SecurityOptions::default());
    has(
        &out,
        &[
            "CapEff:\t0000000000000000",
            "CapPrm:\t0000000000000000",
            "CapBnd:\t00000000a80425fb",
            "Seccomp:\t2",
            "Operation not permitted",
        ],
    );
    lacks(&out, &["chown-ok", "mount-ok"]);
}

#[test]
fn runtime_cap_drop_chown_denies_chown_and_privileged_lifts_everything() {
    if !can_run() {
        return;
    }
    let drop = SecurityOptions {
        cap_drop: vec!["CHOWN".into()],
        ..SecurityOptions::default()
    };
    let out = probe("sec-drop", "0", drop.clone());
    has(
        &out,
        &[
            "CapEff:\t00000000a80425fa",
            "chown: /tmp: Operation not permitted",
        ],
    );
    lacks(&out, &["chown-ok"]);

    // cap_add SYS_ADMIN lifts the seccomp denials of mount and unshare too.
    let admin = SecurityOptions {
        cap_add: vec!["cap_sys_admin".into()],
        ..SecurityOptions::default()
    };
    let out = probe("sec-admin", "0", admin);
    has(
        &out,
        &["CapEff:\t00000000a82425fb", "mount-ok", "unshare-ok"],
    );

    let privileged = SecurityOptions {
        privileged: true,
        ..drop
    };
    let out = probe("sec-priv", "0", privileged);
    // Every capability the engine itself holds.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let mine = status
        .lines()
        .find_map(|l| l.strip_prefix("CapPrm:\t"))
        .unwrap();
    has(
        &out,
        &[
            &format!("CapEff:\t{mine}"),
            &format!("CapBnd:\t{mine}"),
            "Seccomp:\t0",
            "mount-ok",
            "unshare-ok",
            "chown-ok",
            "timers-visible",
            "sys-rw",
        ],
    );
}
