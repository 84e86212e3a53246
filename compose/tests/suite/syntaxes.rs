//! Short and long syntaxes, merge rules, extends, include, profiles and variables,
//! through the public `load`.

use crate::Dir;
use api::deploy::{DeployMode, EndpointMode, FailureAction, UpdateOrder};
use api::service::{DependsOnCondition, MountType, PortMode, Protocol};

fn svc(p: &compose::Project, name: &str) -> api::ServiceSpec {
    p.spec
        .services
        .get(name)
        .cloned()
        .unwrap_or_else(|| panic!("no service {name}"))
}

#[test]
fn ports_short_and_long() {
    let d = Dir::new(&[(
        "compose.yaml",
        "services:\n  w:\n    image: x\n    ports:\n      - 80\n      - \"8080:80\"\n      - 127.0.0.1:53:53/udp\n      - \"9000-9001:9000-9001\"\n      - target: 443\n        published: \"8443\"\n        mode: host\n        protocol: tcp\n",
    )]);
    let p = d.load(&["compose.yaml"]).unwrap();
    let ports = svc(&p, "w").ports;
    assert_eq!(ports.len(), 6);
    assert_eq!((ports[0].target, ports[0].published.as_deref()), (80, None));
    assert_eq!(
        (ports[1].target, ports[1].published.as_deref()),
        (80, Some("8080"))
    );
    assert_eq!(ports[2].protocol, Protocol::Udp);
    assert_eq!(ports[2].host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(ports[4].published.as_deref(), Some("9001"));
    assert_eq!(ports[5].mode, PortMode::Host);
}

#[test]
fn volumes_short_and_long() {
    let d = Dir::new(&[(
        "compose.yaml",
        "services:\n  w:\n    image: x\n    volumes:\n      - ./data:/data:ro\n      - db:/var/lib/db\n      - /anon\n      - type: tmpfs\n        target: /tmp\n        tmpfs: {size: 64m}\n      - type: bind\n        source: ../up\n        target: /up\nvolumes:\n  db: {}\n",
    )]);
    let p = d.load(&["compose.yaml"]).unwrap();
    let v = svc(&p, "w").volumes;
    assert_eq!(v[0].kind, MountType::Bind);
    assert_eq!(
        v[0].source.as_deref(),
        Some(d.0.join("data").to_str().unwrap())
    );
    assert!(v[0].read_only);
    assert_eq!(v[0].bind.as_ref().unwrap().create_host_path, Some(true));
    assert_eq!(
        (v[1].kind, v[1].source.as_deref()),
        (MountType::Volume, Some("db"))
    );
    assert_eq!(v[2].source, None);
    assert_eq!(v[3].tmpfs.as_ref().unwrap().size.unwrap().0, 64 << 20);
    assert_eq!(
        v[4].source.as_deref(),
        Some(d.0.parent().unwrap().join("up").to_str().unwrap())
    );
    assert_eq!(p.spec.volumes["db"].name, format!("{}_db", p.spec.name));
}

#[test]
fn environment_labels_commands_and_healthcheck() {
    let d = Dir::new(&[
        (
            "compose.yaml",
            "services:\n  w:\n    image: x\n    environment: [A=1, B, C=]\n    env_file: [base.env]\n    labels: {x: y}\n    command: echo \"hello world\" 'a b'\n    entrypoint: [/bin/sh, -c]\n    healthcheck:\n      test: curl -f http://localhost\n      interval: 1m30s\n      start_period: 40s\n      retries: 3\n",
        ),
        ("base.env", "A=from-file\nD=4\n"),
    ]);
    let mut o = d.options(&["compose.yaml"]);
    o.environment.insert("B".into(), "from-shell".into());
    let p = compose::load(&o).unwrap();
    let w = svc(&p, "w");
    assert_eq!(w.environment["A"].as_deref(), Some("1"));
    assert_eq!(w.environment["B"].as_deref(), Some("from-shell"));
    assert_eq!(w.environment["C"].as_deref(), Some(""));
    assert_eq!(w.environment["D"].as_deref(), Some("4"));
    assert_eq!(w.command.unwrap(), ["echo", "hello world", "a b"]);
    assert_eq!(w.entrypoint.unwrap(), ["/bin/sh", "-c"]);
    let hc = w.healthcheck.unwrap();
    assert_eq!(hc.test, ["CMD-SHELL", "curl -f http://localhost"]);
    assert_eq!(hc.interval.unwrap().to_string(), "1m30s");
    assert_eq!(hc.retries, Some(3));
}

#[test]
fn depends_on_networks_and_deploy() {
    let d = Dir::new(&[(
        "compose.yaml",
        "services:\n  w:\n    image: x\n    depends_on:\n      db:\n        condition: service_healthy\n      cache:\n        condition: service_started\n        required: false\n    networks:\n      front:\n        aliases: [www]\n        ipv4_address: 10.0.0.5\n    deploy:\n      mode: replicated\n      replicas: 3\n      endpoint_mode: dnsrr\n      placement:\n        constraints: [node.role == manager]\n        preferences: [{spread: node.labels.zone}]\n        max_replicas_per_node: 2\n      resources:\n        limits: {cpus: '0.5', memory: 512m}\n        reservations: {memory: 1.5gb}\n      restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3, window: 2m}\n      update_config: {parallelism: 2, delay: 10s, order: start-first, failure_action: rollback, monitor: 30s, max_failure_ratio: 0.1}\n      labels: [a=b]\n  db:\n    image: pg\n    depends_on: [w2]\n  w2:\n    image: y\n    deploy: {mode: global}\nnetworks:\n  front: {}\n",
    )]);
    let p = d.load(&["compose.yaml"]).unwrap();
    let w = svc(&p, "w");
    assert_eq!(
        w.depends_on["db"].condition,
        DependsOnCondition::ServiceHealthy
    );
    assert!(!w.depends_on["cache"].required);
    assert_eq!(
        svc(&p, "db").depends_on["w2"].condition,
        DependsOnCondition::ServiceStarted
    );
    let front = w.networks["front"].clone().unwrap();
    assert_eq!(front.aliases, ["www"]);
    assert_eq!(front.ipv4_address.as_deref(), Some("10.0.0.5"));
    let dep = w.deploy.unwrap();
    assert_eq!(dep.replicas, Some(3));
    assert_eq!(dep.endpoint_mode, Some(EndpointMode::Dnsrr));
    let pl = dep.placement.unwrap();
    assert_eq!(pl.constraints, ["node.role == manager"]);
    assert_eq!(pl.preferences[0].spread, "node.labels.zone");
    assert_eq!(pl.max_replicas_per_node, Some(2));
    let r = dep.resources.unwrap();
    assert_eq!(r.limits.as_ref().unwrap().cpus, Some(0.5));
    assert_eq!(r.limits.unwrap().memory.unwrap().0, 512 << 20);
    assert_eq!(r.reservations.unwrap().memory.unwrap().0, 3 << 29);
    let u = dep.update_config.unwrap();
    assert_eq!(
        (u.order, u.failure_action),
        (Some(UpdateOrder::StartFirst), Some(FailureAction::Rollback))
    );
    assert_eq!(dep.labels["a"], "b");
    assert_eq!(svc(&p, "w2").deploy.unwrap().mode, Some(DeployMode::Global));
    // the implicit default network
    assert!(svc(&p, "db").networks.contains_key("default"));
    assert_eq!(
        p.spec.networks["default"].name,
        format!("{}_default", p.spec.name)
    );
}

#[test]
fn misc_service_keys() {
    let d = Dir::new(&[(
        "compose.yaml",
        "services:\n  w:\n    image: x\n    build:\n      context: ./app\n      dockerfile: Dockerfile.dev\n      args: [V=1]\n      target: dev\n      labels: {a: b}\n    user: \"1000:1000\"\n    working_dir: /srv\n    hostname: web\n    extra_hosts: [\"db:10.0.0.2\", \"db=10.0.0.3\"]\n    dns: 1.1.1.1\n    cap_add: [NET_ADMIN]\n    cap_drop: [ALL]\n    ulimits:\n      nproc: 65535\n      nofile: {soft: 20000, hard: 40000}\n    tmpfs: /run\n    read_only: true\n    init: true\n    stop_grace_period: 1m\n    stop_signal: SIGTERM\n    memswap_limit: 1g\n    cpu_rt_runtime: 400ms\n    cpu_quota: 50000\n    sysctls: [net.core.somaxconn=1024]\n    security_opt: [no-new-privileges:true]\n    privileged: false\n    logging: {driver: json-file, options: {max-size: 10m}}\n    profiles: [dev]\n    scale: 2\n    secrets: [s]\n    configs: [{source: c, target: /etc/c, mode: 0440}]\n    x-note: kept\nsecrets:\n  s: {file: ./s.txt}\nconfigs:\n  c: {content: hello}\nx-top: {a: 1}\nmodels:\n  llm: {model: ai/smollm2}\n",
    )]);
    let mut o = d.options(&["compose.yaml"]);
    o.profiles = vec!["dev".into()];
    let p = compose::load(&o).unwrap();
    let w = svc(&p, "w");
    let b = w.build.unwrap();
    assert_eq!(b.context, d.0.join("app").to_str().unwrap());
    assert_eq!(b.args["V"].as_deref(), Some("1"));
    assert_eq!(w.extra_hosts["db"], ["10.0.0.2", "10.0.0.3"]);
    assert_eq!(w.dns, ["1.1.1.1"]);
    assert_eq!(
        (w.ulimits["nproc"].soft, w.ulimits["nofile"].hard),
        (65535, 40000)
    );
    assert_eq!(w.tmpfs, ["/run"]);
    assert_eq!(w.stop_grace_period.unwrap().to_string(), "1m0s");
    assert_eq!(w.memswap_limit, Some(1 << 30));
    assert_eq!(
        (w.cpu_rt_runtime, w.cpu_quota),
        (Some(400_000), Some(50_000))
    );
    assert_eq!(w.sysctls["net.core.somaxconn"], "1024");
    assert_eq!(w.configs[0].mode.unwrap().0, 0o440);
    assert_eq!(w.secrets[0].source, "s");
    assert_eq!(
        p.spec.secrets["s"].file.as_deref(),
        Some(d.0.join("s.txt").to_str().unwrap())
    );
    assert_eq!(w.extensions["x-note"], api::Value::String("kept".into()));
    assert!(p.spec.extensions.contains_key("x-top"));
    assert!(p.spec.models.contains_key("llm"));
}

#[test]
fn multiple_files_merge_by_the_spec() {
    let d = Dir::new(&[
        (
            "compose.yaml",
            "services:\n  w:\n    image: a\n    command: [one]\n    ports: [\"80:80\"]\n    volumes: [\"./a:/data\"]\n    environment: {A: '1'}\n    dns: [1.1.1.1]\n",
        ),
        (
            "override.yaml",
            "services:\n  w:\n    image: b\n    command: two\n    ports: [\"81:81\"]\n    volumes: [\"./b:/data\"]\n    environment: [B=2]\n    dns: [8.8.8.8]\n",
        ),
    ]);
    let p = d.load(&["compose.yaml", "override.yaml"]).unwrap();
    let w = svc(&p, "w");
    assert_eq!(w.image.as_deref(), Some("b"));
    assert_eq!(w.command.unwrap(), ["two"]);
    assert_eq!(w.ports.len(), 2);
    assert_eq!(w.volumes.len(), 1);
    assert!(w.volumes[0].source.as_deref().unwrap().ends_with("/b"));
    assert_eq!(w.environment.len(), 2);
    assert_eq!(w.dns, ["1.1.1.1", "8.8.8.8"]);
    assert_eq!(p.files.len(), 2);
}

#[test]
fn extends_same_file_and_other_file() {
    let d = Dir::new(&[
        (
            "compose.yaml",
            "services:\n  base:\n    image: a\n    environment: {A: '1'}\n  web:\n    extends: base\n    environment: {B: '2'}\n  other:\n    extends:\n      file: sub/common.yaml\n      service: common\n",
        ),
        (
            "sub/common.yaml",
            "services:\n  common:\n    image: c\n    volumes: [./here:/here]\n    env_file: c.env\n",
        ),
        ("sub/c.env", "FROM_C=yes\n"),
    ]);
    let p = d.load(&["compose.yaml"]).unwrap();
    let web = svc(&p, "web");
    assert_eq!(web.image.as_deref(), Some("a"));
    assert_eq!(web.environment.len(), 2);
    let other = svc(&p, "other");
    assert_eq!(other.image.as_deref(), Some("c"));
    assert_eq!(
        other.volumes[0].source.as_deref(),
        Some(d.0.join("sub/here").to_str().unwrap())
    );
    assert_eq!(other.environment["FROM_C"].as_deref(), Some("yes"));
}

#[test]
fn extends_cycle_is_an_error() {
    let d = Dir::new(&[(
        "compose.yaml",
        "services:\n  a:\n    image: x\n    extends: b\n  b:\n    extends: a\n",
    )]);
    let e = d.errors(&["compose.yaml"]);
    assert!(
        e.iter().any(|e| e.message.contains("circular reference")),
        "{e:?}"
    );
}

#[test]
fn include_and_include_cycle() {
    let d = Dir::new(&[
        (
            "compose.yaml",
            "include:\n  - path: lib/db.yaml\nservices:\n  web:\n    image: a\n    depends_on: [db]\n",
        ),
        (
            "lib/db.yaml",
            "services:\n  db:\n    image: pg\n    volumes: [./init:/init]\n    environment: {P: \"${PASS}\"}\n",
        ),
        ("lib/.env", "PASS=from-lib-env\n"),
        (
            "loop.yaml",
            "include: [loop2.yaml]\nservices: {a: {image: x}}\n",
        ),
        (
            "loop2.yaml",
            "include: [loop.yaml]\nservices: {b: {image: x}}\n",
        ),
    ]);
    let p = d.load(&["compose.yaml"]).unwrap();
    let db = svc(&p, "db");
    assert_eq!(
        db.volumes[0].source.as_deref(),
        Some(d.0.join("lib/init").to_str().unwrap())
    );
    assert_eq!(db.environment["P"].as_deref(), Some("from-lib-env"));
    let e = d.errors(&["loop.yaml"]);
    assert!(
        e.iter()
            .any(|e| e.message.starts_with("include cycle detected")),
        "{e:?}"
    );
}

#[test]
fn profiles_select_services() {
    let d = Dir::new(&[(
        "compose.yaml",
        "services:\n  web: {image: a}\n  debug: {image: b, profiles: [debug]}\n  tool: {image: c, profiles: [tools], depends_on: [web]}\n",
    )]);
    let p = d.load(&["compose.yaml"]).unwrap();
    assert_eq!(p.spec.services.keys().collect::<Vec<_>>(), ["web"]);
    let mut o = d.options(&["compose.yaml"]);
    o.profiles = vec!["debug".into()];
    assert_eq!(compose::load(&o).unwrap().spec.services.len(), 2);
    o.environment
        .insert("COMPOSE_PROFILES".into(), "tools,debug".into());
    o.profiles.clear();
    assert_eq!(compose::load(&o).unwrap().spec.services.len(), 3);
    let d2 = Dir::new(&[(
        "compose.yaml",
        "services:\n  web: {image: a, depends_on: [dbg]}\n  dbg: {image: b, profiles: [debug]}\n",
    )]);
    let e = d2.errors(&["compose.yaml"]);
    assert!(
        e[0].message.contains("disabled by its profiles (debug)"),
        "{e:?}"
    );
    assert_eq!(e[0].hint.as_deref(), Some("enable it with --profile debug"));
    // `required: false`: only a warning, as compose does.
    let d3 = Dir::new(&[(
        "compose.yaml",
        "services:\n  web: {image: a, depends_on: {dbg: {condition: service_started, required: false}}}\n  dbg: {image: b, profiles: [debug]}\n",
    )]);
    let p = d3.load(&["compose.yaml"]).unwrap();
    assert_eq!(p.spec.services.keys().collect::<Vec<_>>(), ["web"]);
    assert!(
        p.warnings.iter().any(|w| w
            .message
            .contains("optional dependency \"dbg\" is disabled by its profiles (debug); ignored")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn variables_from_env_dotenv_and_env_files() {
    let d = Dir::new(&[
        (
            "compose.yaml",
            "services:\n  w:\n    image: \"x:${TAG}\"\n    environment: {LEVEL: \"${LEVEL:-info}\", COST: \"$$5\"}\n",
        ),
        (".env", "TAG=from-dotenv\nLEVEL=debug\n"),
        ("other.env", "TAG=from-env-file\n"),
    ]);
    let p = d.load(&["compose.yaml"]).unwrap();
    let w = svc(&p, "w");
    assert_eq!(w.image.as_deref(), Some("x:from-dotenv"));
    assert_eq!(w.environment["LEVEL"].as_deref(), Some("debug"));
    assert_eq!(w.environment["COST"].as_deref(), Some("$5"));
    let mut o = d.options(&["compose.yaml"]);
    o.env_files = vec!["other.env".into()];
    assert_eq!(
        svc(&compose::load(&o).unwrap(), "w").image.as_deref(),
        Some("x:from-env-file")
    );
    o.environment.insert("TAG".into(), "from-shell".into());
    assert_eq!(
        svc(&compose::load(&o).unwrap(), "w").image.as_deref(),
        Some("x:from-shell")
    );
}

#[test]
fn project_name_rules() {
    let d = Dir::new(&[("My Project!/compose.yaml", "services: {a: {image: x}}\n")]);
    let p = d.load(&["My Project!/compose.yaml"]).unwrap();
    assert_eq!(p.spec.name, "myproject");
    let mut o = d.options(&["My Project!/compose.yaml"]);
    o.project_name = Some("given".into());
    assert_eq!(compose::load(&o).unwrap().spec.name, "given");
    o.project_name = Some("-bad".into());
    assert!(compose::load(&o).is_err());
}

#[test]
fn version_is_ignored_with_a_warning_and_default_files_are_found() {
    let d = Dir::new(&[
        (
            "docker-compose.yml",
            "version: '3.8'\nservices: {a: {image: x}}\n",
        ),
        ("docker-compose.override.yml", "services: {a: {image: y}}\n"),
    ]);
    let p = d.load(&[]).unwrap();
    assert_eq!(svc(&p, "a").image.as_deref(), Some("y"));
    assert!(
        p.warnings.iter().any(|w| w.message.contains("obsolete")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn anchors_merge_keys_and_reset() {
    let d = Dir::new(&[
        (
            "compose.yaml",
            "x-base: &base\n  image: x\n  restart: always\nservices:\n  a:\n    <<: *base\n    command: [run]\n",
        ),
        ("reset.yaml", "services:\n  a:\n    command: !reset null\n"),
    ]);
    let p = d.load(&["compose.yaml", "reset.yaml"]).unwrap();
    let a = svc(&p, "a");
    assert_eq!(a.restart.as_deref(), Some("always"));
    assert_eq!(a.command, None);
}

#[test]
fn extensions_where_the_model_has_no_place_warn() {
    let d = Dir::new(&[(
        "compose.yaml",
        "services:\n  w:\n    image: x\n    healthcheck: {test: [\"NONE\"], x-why: none}\n",
    )]);
    let p = d.load(&["compose.yaml"]).unwrap();
    let w = p
        .warnings
        .iter()
        .find(|w| w.path == "services.w.healthcheck.x-why")
        .expect("a warning");
    assert!(w.message.contains("is not kept"), "{w}");
}
