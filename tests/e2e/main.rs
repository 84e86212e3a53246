//! End-to-end tests of the `orch` binary: `orch config` on real files, and the
//! engine daemon with its image commands ([`engine`]), the container runtime
//! ([`runtime`]), compose keys honoured inside real containers ([`keys`]), the worker's executor over a real engine ([`worker`]), stacks on
//! a local cluster ([`stack`]) with secrets and configs ([`secrets`]), certificate
//! renewal under a live session ([`renew`]), a worker promoted to manager
//! ([`promote`]) and the routing mesh on two hosts ([`mesh`]).

mod accept;
mod build;
mod cluster;
mod engine;
mod keys;
mod logs;
mod mesh;
mod network;
mod promote;
mod renew;
mod runtime;
mod secrets;
mod stack;
mod userns;
mod volumes;
mod worker;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn orch(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orch"))
        .args(args)
        .current_dir(dir)
        .env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROFILES")
        .env_remove("COMPOSE_PROJECT_NAME")
        .output()
        .expect("run orch")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct Tmp(PathBuf);

impl Tmp {
    fn new(tag: &str, files: &[(&str, &str)]) -> Tmp {
        let d = std::env::temp_dir().join(format!("orch-e2e-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        for (n, t) in files {
            std::fs::write(d.join(n), t).unwrap();
        }
        Tmp(d)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

#[test]
fn config_prints_the_example_in_canonical_form() {
    let out = orch(&repo(), &["config", "-f", "examples/hello/compose.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "name: hello",
        "  web:\n",
        "target: 8080",
        "published: \"8080\"",
        "condition: service_healthy",
        "memory: 67108864",
        "- CMD-SHELL",
        "name: hello_dbdata",
        "mode: 256",
    ] {
        assert!(text.contains(needle), "{needle:?} not in\n{text}");
    }
    // the output is itself a valid stack file that prints the same
    let tmp = Tmp::new("again", &[("compose.yaml", &text)]);
    let again = orch(&tmp.0, &["config"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(String::from_utf8(again.stdout).unwrap(), text);
}

#[test]
fn config_services_and_json() {
    let out = orch(
        &repo(),
        &["config", "-f", "examples/hello/compose.yaml", "--services"],
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "api\ndb\nweb\n");
    let out = orch(
        &repo(),
        &[
            "config",
            "-f",
            "examples/hello/compose.yaml",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.trim_start().starts_with('{') && text.contains("\"replicas\": 2"),
        "{text}"
    );
}

#[test]
fn config_reports_every_error_and_exits_1() {
    let tmp = Tmp::new(
        "bad",
        &[(
            "compose.yaml",
            "services:\n  web:\n    imgae: nginx\n    ports: [\"80:eighty\"]\n",
        )],
    );
    let out = orch(&tmp.0, &["config"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(
            "compose.yaml:3:5: error: services.web.imgae: unknown key \"imgae\" in a service"
        ),
        "{err}"
    );
    assert!(err.contains("hint: did you mean \"image\"?"), "{err}");
    assert!(
        err.contains("compose.yaml:4:13: error: services.web.ports[0]: invalid port"),
        "{err}"
    );
    assert!(err.contains("errors found"), "{err}");
}

#[test]
fn config_env_file_profiles_and_quiet() {
    let tmp = Tmp::new(
        "flags",
        &[
            (
                "compose.yaml",
                "services:\n  a: {image: \"x:${TAG:?TAG is needed}\"}\n  b: {image: y, profiles: [extra]}\n",
            ),
            ("vars.env", "TAG=7\n"),
        ],
    );
    let out = orch(&tmp.0, &["config", "-q"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TAG is needed"));
    let out = orch(
        &tmp.0,
        &[
            "config",
            "--env-file",
            "vars.env",
            "--profile",
            "extra",
            "--services",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "a\nb\n");
    let out = orch(&tmp.0, &["config", "--env-file", "vars.env", "-q"]);
    assert!(out.status.success() && out.stdout.is_empty());
}

#[test]
fn help_for_every_command() {
    for args in [
        &["--help"][..],
        &["config", "--help"],
        &["agent", "--help"],
        &["image", "--help"],
        &["image", "pull", "--help"],
        &["image", "push", "--help"],
        &["image", "ls", "--help"],
        &["image", "inspect", "--help"],
        &["image", "rm", "--help"],
        &["image", "tag", "--help"],
        &["image", "prune", "--help"],
        &["image", "import", "--help"],
        &["image", "load", "--help"],
        &["image", "save", "--help"],
        &["build", "--help"],
        &["container", "--help"],
        &["container", "run", "--help"],
        &["container", "ls", "--help"],
        &["container", "logs", "--help"],
        &["container", "exec", "--help"],
        &["container", "pause", "--help"],
        &["container", "stats", "--help"],
        &["container", "stop", "--help"],
        &["container", "kill", "--help"],
        &["container", "rm", "--help"],
        &["container", "wait", "--help"],
        &["container", "inspect", "--help"],
        &["volume", "--help"],
        &["volume", "create", "--help"],
        &["volume", "ls", "--help"],
        &["volume", "rm", "--help"],
        &["login", "--help"],
        &["logout", "--help"],
    ] {
        let out = orch(&repo(), args);
        assert!(out.status.success());
        assert!(String::from_utf8(out.stdout).unwrap().contains("Usage:"));
    }
}
