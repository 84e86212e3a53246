//! Properties: normalizing twice equals normalizing once, and `orch config` output
//! loads back to the same stack, for stacks generated from every short and long form.

use crate::Dir;
use compose::render::{Format, render};
use proptest::prelude::*;

fn pick(options: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    proptest::sample::select(options)
}

/// One service in YAML, built from random choices of each syntax.
fn service() -> impl Strategy<Value = String> {
    let ports = proptest::collection::vec(
        pick(&[
            "80",
            "\"8080:80\"",
            "127.0.0.1:53:53/udp",
            "\"9000-9001:9000-9001\"",
            "{target: 443, published: \"8443\", mode: host}",
            "\"[::1]:6001:6001\"",
        ]),
        0..3,
    );
    let volumes = proptest::collection::vec(
        pick(&[
            "./data:/data:ro",
            "db:/var/lib/db",
            "/anon",
            "{type: tmpfs, target: /t, tmpfs: {size: 1m}}",
            "{type: bind, source: ../x, target: /x, read_only: true}",
            "~/cache:/cache:z",
        ]),
        0..3,
    );
    let env = pick(&[
        "",
        "environment: [A=1, B=two words, C]",
        "environment: {A: 1, B: \"$$literal\", C: ~}",
        "environment: {X: \"${UNSET:-dflt}\"}",
    ]);
    let command = pick(&[
        "",
        "command: echo \"a b\" c",
        "command: [\"sh\", \"-c\", \"exit 0\"]",
        "command: []",
        "entrypoint: /bin/run --flag",
    ]);
    let misc = pick(&[
        "",
        "deploy: {replicas: 2, resources: {limits: {cpus: \"0.25\", memory: 1.5gb}}}",
        "deploy: {mode: global, restart_policy: {condition: any, delay: 1m30s}}",
        "healthcheck: {test: \"true\", interval: 500ms, retries: 2}",
        "ulimits: {nofile: 1024, nproc: {soft: 1, hard: 2}}",
        "extra_hosts: [\"a:10.0.0.1\", \"b=::1\"]",
        "labels: [a=b, c=d]",
        "stop_grace_period: 2h45m",
        "devices: [\"/dev/fuse\", \"/dev/a:/dev/b:r\"]",
        "x-extra: {n: 1, f: 1.5, b: true, s: \"8080\", l: [a, 2]}",
    ]);
    let nets = pick(&[
        "",
        "networks: [front]",
        "networks: {front: {aliases: [w]}, back: ~}",
        "network_mode: host",
    ]);
    (ports, volumes, env, command, misc, nets).prop_map(
        |(ports, volumes, env, command, misc, nets)| {
            let mut s = String::from("    image: \"busybox:1.36\"\n");
            if !ports.is_empty() {
                s += &format!("    ports: [{}]\n", ports.join(", "));
            }
            if !volumes.is_empty() {
                s += &format!("    volumes: [{}]\n", volumes.join(", "));
            }
            for line in [env, command, misc, nets] {
                if !line.is_empty() {
                    s += &format!("    {line}\n");
                }
            }
            s
        },
    )
}

fn stack() -> impl Strategy<Value = String> {
    proptest::collection::vec(service(), 1..4).prop_map(|services| {
        let mut text = String::from("services:\n");
        for (i, s) in services.iter().enumerate() {
            text += &format!("  s{i}:\n{s}");
        }
        text += "networks:\n  front: {}\n  back: {driver: overlay}\nvolumes:\n  db: {}\n";
        text
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn config_output_round_trips(text in stack()) {
        let d = Dir::new(&[("compose.yaml", &text)]);
        let mut o = d.options(&["compose.yaml"]);
        o.environment.insert("HOME".into(), "/home/u".into());
        let first = compose::load(&o).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        for format in [Format::Yaml, Format::Json] {
            let out = render(&first.spec, format);
            let d2 = Dir::new(&[("compose.yaml", &out)]);
            let second = d2.load(&["compose.yaml"]).map_err(|e| TestCaseError::fail(format!("{e}\n{out}")))?;
            prop_assert_eq!(&second.spec, &first.spec, "{}", out);
            prop_assert_eq!(render(&second.spec, format), out);
        }
    }
}

/// YAML-ish noise: keys of the spec, indicators, variables and numbers.
fn noise() -> impl Strategy<Value = String> {
    let atoms = pick(&[
        "services:",
        "\n",
        "  ",
        "    ",
        "web:",
        "image: x",
        "ports:",
        "- ",
        "\"80:80\"",
        "${A:-",
        "}",
        "$$",
        "&a ",
        "*a",
        "<<: ",
        "{",
        "}",
        "[",
        "]",
        ", ",
        "volumes:",
        "./d:/d",
        "extends: web",
        "depends_on: [web]",
        "!reset ",
        "!override ",
        "networks:",
        "deploy:",
        "replicas: ",
        "-1",
        "1.5gb",
        "10s",
        "include: [x.yaml]",
        "\t",
        "'",
        "\"",
        "#",
        "~",
        "null",
    ]);
    proptest::collection::vec(atoms, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Whatever the input, loading returns a stack or diagnostics; it never panics.
    #[test]
    fn garbage_never_panics(text in noise()) {
        let d = Dir::new(&[("compose.yaml", &text)]);
        let _ = d.load(&["compose.yaml"]);
    }
}
