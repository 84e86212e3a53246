use super::*;
use api::cluster::{Meta, TaskNetwork};
use api::deploy::{DeploySpec, ResourceLimits, ResourceReservations, Resources};
use api::service::{
    BindOptions, DeviceMapping, Healthcheck, MountType, PortMode, PortSpec, ServiceVolume,
    TmpfsOptions, Ulimit,
};
use api::units::{Bytes, Duration, FileMode};

pub(super) fn task(spec: ServiceSpec) -> Task {
    Task {
        meta: Meta::new("t9x"),
        service: "svc1".into(),
        stack: "shop".into(),
        name: "web".into(),
        slot: 2,
        spec,
        ..Task::default()
    }
}

pub(super) fn image(spec: ServiceSpec) -> ServiceSpec {
    ServiceSpec {
        image: Some("busybox:1".into()),
        ..spec
    }
}

pub(super) fn refused(spec: ServiceSpec) -> String {
    match container_create(&task(image(spec))) {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn names_and_labels_say_which_task_it_is() {
    let mut spec = image(ServiceSpec::default());
    spec.labels.insert("team".into(), "a".into());
    spec.labels.insert(TASK_LABEL.into(), "forged".into());
    let c = container_create(&task(spec)).unwrap();
    assert_eq!(c.name.as_deref(), Some("shop_web.2.t9x"));
    assert_eq!(c.image, "busybox:1");
    assert_eq!(c.restart.as_deref(), Some("no"));
    assert_eq!(c.stop_timeout, Some(DEFAULT_GRACE_SECS));
    let labels: Vec<(&str, &str)> = c
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("orch.service", "svc1"),
            ("orch.slot", "2"),
            ("orch.stack", "shop"),
            ("orch.task", "t9x"),
            ("team", "a"),
        ]
    );
    // A global task's slot is its node; no stack, no prefix.
    let mut t = task(image(ServiceSpec::default()));
    t.slot = 0;
    t.stack.clear();
    t.node = Some("n1".into());
    assert_eq!(container_name(&t), "web.n1.t9x");
}

#[test]
fn process_fields_map_one_to_one() {
    let spec = ServiceSpec {
        command: Some(vec!["httpd".into(), "-f".into()]),
        entrypoint: Some(vec!["/bin/env".into()]),
        environment: [
            ("A".to_owned(), Some("1".to_owned())),
            ("UNSET".to_owned(), None),
            ("E".to_owned(), Some(String::new())),
        ]
        .into(),
        user: Some("nobody".into()),
        working_dir: Some("/srv".into()),
        hostname: Some("h".into()),
        read_only: Some(true),
        tty: Some(true),
        init: Some(true),
        extra_hosts: [(
            "db".to_owned(),
            vec!["10.1.2.3".to_owned(), "::1".to_owned()],
        )]
        .into(),
        stdin_open: Some(true),
        privileged: Some(true),
        cap_add: vec!["NET_ADMIN".into()],
        cap_drop: vec!["CHOWN".into()],
        sysctls: [("net.ipv4.ip_forward".to_owned(), "1".to_owned())].into(),
        stop_signal: Some("SIGQUIT".into()),
        stop_grace_period: Some(Duration(1_500_000_000)),
        security_opt: vec!["no-new-privileges:true".into()],
        healthcheck: Some(Healthcheck {
            test: vec!["CMD".into(), "true".into()],
            ..Healthcheck::default()
        }),
        ..ServiceSpec::default()
    };
    let c = container_create(&task(image(spec))).unwrap();
    assert_eq!(c.cmd, ["httpd", "-f"]);
    assert_eq!(c.entrypoint, Some(vec!["/bin/env".to_owned()]));
    assert_eq!(c.env, ["A=1", "E="]);
    assert_eq!(c.user.as_deref(), Some("nobody"));
    assert_eq!(c.workdir.as_deref(), Some("/srv"));
    assert_eq!(c.hostname.as_deref(), Some("h"));
    assert!(c.read_only && c.tty && c.init && c.open_stdin && c.privileged && c.no_new_privileges);
    assert_eq!((c.cap_add.len(), c.cap_drop.len()), (1, 1));
    assert_eq!(c.sysctls.len(), 1);
    assert_eq!(c.extra_hosts, ["db:10.1.2.3", "db:::1"]);
    assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
    assert_eq!(c.stop_timeout, Some(2), "1.5 s rounds up");
    assert_eq!(c.healthcheck.unwrap().test, ["CMD", "true"]);
}

#[test]
fn limits_prefer_deploy_resources_then_service_keys() {
    let spec = ServiceSpec {
        deploy: Some(DeploySpec {
            resources: Some(Resources {
                limits: Some(ResourceLimits {
                    cpus: Some(0.5),
                    memory: Some(Bytes(64 << 20)),
                    pids: Some(100),
                }),
                reservations: Some(ResourceReservations {
                    memory: Some(Bytes(32 << 20)),
                    ..ResourceReservations::default()
                }),
            }),
            ..DeploySpec::default()
        }),
        mem_limit: Some(Bytes(1 << 30)),
        cpus: Some(2.0),
        ulimits: [(
            "nofile".to_owned(),
            Ulimit {
                soft: 1024,
                hard: 2048,
            },
        )]
        .into(),
        ..ServiceSpec::default()
    };
    let c = container_create(&task(image(spec))).unwrap();
    assert_eq!(c.memory, Some(64 << 20));
    assert_eq!(c.memory_reservation, Some(32 << 20));
    assert_eq!(c.cpus, Some(0.5));
    assert_eq!(c.pids_limit, Some(100));
    assert_eq!(c.ulimits, ["nofile=1024:2048"]);

    let spec = ServiceSpec {
        mem_limit: Some(Bytes(1 << 30)),
        mem_reservation: Some(Bytes(1 << 20)),
        memswap_limit: Some(-1),
        cpu_quota: Some(50_000),
        pids_limit: Some(7),
        cpu_shares: Some(512),
        ..ServiceSpec::default()
    };
    let c = container_create(&task(image(spec))).unwrap();
    assert_eq!(
        (c.memory, c.memory_reservation, c.memory_swap),
        (Some(1 << 30), Some(1 << 20), Some(-1))
    );
    assert_eq!(
        (c.cpus, c.pids_limit, c.cpu_shares),
        (Some(0.5), Some(7), Some(512))
    );
    assert!(
        refused(ServiceSpec {
            cpus: Some(-1.0),
            ..ServiceSpec::default()
        })
        .starts_with("cpus: ")
    );
}

#[test]
fn mounts_become_binds_tmpfs_and_devices() {
    let vol = |kind, source: Option<&str>, target: &str| ServiceVolume {
        kind,
        source: source.map(str::to_owned),
        target: target.into(),
        ..ServiceVolume::default()
    };
    let mut ro_bind = vol(MountType::Bind, Some("/srv/www"), "/www");
    ro_bind.read_only = true;
    ro_bind.bind = Some(BindOptions {
        create_host_path: Some(true),
        ..BindOptions::default()
    });
    let mut sized = vol(MountType::Tmpfs, None, "/scratch");
    sized.tmpfs = Some(TmpfsOptions {
        size: Some(Bytes(1 << 20)),
        mode: Some(FileMode(0o1777)),
    });
    let spec = ServiceSpec {
        volumes: vec![
            ro_bind,
            vol(MountType::Volume, Some("shop_data"), "/data"),
            sized,
        ],
        tmpfs: vec!["/run:size=64k".into()],
        devices: vec![DeviceMapping {
            source: "/dev/fuse".into(),
            target: String::new(),
            permissions: String::new(),
        }],
        ..ServiceSpec::default()
    };
    let c = container_create(&task(image(spec))).unwrap();
    assert_eq!(c.binds, ["/srv/www:/www:ro", "shop_data:/data"]);
    assert_eq!(
        c.tmpfs,
        ["/scratch:size=1048576,mode=1777", "/run:size=64k"]
    );
    assert_eq!(c.devices, ["/dev/fuse:/dev/fuse:rwm"]);

    let anonymous = container_create(&task(image(ServiceSpec {
        volumes: vec![vol(MountType::Volume, None, "/data")],
        ..ServiceSpec::default()
    })))
    .unwrap();
    assert_eq!(anonymous.binds, ["/data"], "the container's own volume");
    let sourceless = refused(ServiceSpec {
        volumes: vec![vol(MountType::Bind, None, "/data")],
        ..ServiceSpec::default()
    });
    assert!(
        sourceless.starts_with("volumes[0].source: a bind mount needs"),
        "{sourceless}"
    );
    let npipe = refused(ServiceSpec {
        volumes: vec![vol(MountType::Npipe, Some("x"), "/x")],
        ..ServiceSpec::default()
    });
    assert!(
        npipe.starts_with("volumes[0].type: npipe mounts"),
        "{npipe}"
    );
}

#[test]
fn networks_join_with_fixed_addresses_then_the_gateway() {
    let mut t = task(image(ServiceSpec {
        container_name: Some("legacy".into()),
        ..ServiceSpec::default()
    }));
    t.networks = vec![TaskNetwork {
        network: "shop_front".into(),
        address: "10.0.1.5/24".into(),
        aliases: vec!["www".into()],
    }];
    let c = container_create(&t).unwrap();
    assert_eq!(c.networks.len(), 2);
    assert_eq!(c.networks[0].network, "shop_front");
    assert_eq!(c.networks[0].ipv4.as_deref(), Some("10.0.1.5"));
    assert_eq!(c.networks[0].aliases, ["www", "legacy"]);
    assert_eq!(c.networks[1].network, GATEWAY_NETWORK);
    assert_eq!(c.networks[1].ipv4, None);
    assert_eq!(c.network_mode, None);

    t.spec.network_mode = Some("host".into());
    let e = container_create(&t).unwrap_err().to_string();
    assert!(e.starts_with("network_mode: "), "{e}");
    t.networks.clear();
    assert_eq!(
        container_create(&t).unwrap().network_mode.as_deref(),
        Some("host")
    );
    assert!(container_create(&t).unwrap().networks.is_empty());
}

#[test]
fn ports_publish_on_the_node() {
    let port = |mode, ip: Option<&str>, published: Option<&str>, protocol| PortSpec {
        mode,
        host_ip: ip.map(str::to_owned),
        target: 80,
        published: published.map(str::to_owned),
        protocol,
        ..PortSpec::default()
    };
    let spec = ServiceSpec {
        ports: vec![
            port(PortMode::Ingress, None, Some("8080"), Protocol::Tcp),
            port(PortMode::Host, Some("127.0.0.1"), None, Protocol::Udp),
            port(
                PortMode::Host,
                Some("127.0.0.1"),
                Some("9000-9001"),
                Protocol::Tcp,
            ),
        ],
        ..ServiceSpec::default()
    };
    let mut t = task(image(spec));
    let c = container_create(&t).unwrap();
    assert_eq!(
        c.publish,
        [
            "8080:80/tcp",
            "127.0.0.1::80/udp",
            "127.0.0.1:9000-9001:80/tcp"
        ],
        "not on the mesh: every port is the node's"
    );
    t.networks = vec![TaskNetwork {
        network: INGRESS_NETWORK.into(),
        address: "10.0.0.5/24".into(),
        aliases: Vec::new(),
    }];
    let c = container_create(&t).unwrap();
    assert_eq!(
        c.publish,
        ["127.0.0.1::80/udp", "127.0.0.1:9000-9001:80/tcp"],
        "on the mesh: the mesh publishes 8080 on every node"
    );
    let e = refused(ServiceSpec {
        ports: vec![port(PortMode::Host, None, None, Protocol::Sctp)],
        ..ServiceSpec::default()
    });
    assert!(e.starts_with("ports[0].protocol: sctp"), "{e}");
}

#[test]
fn what_the_engine_cannot_honour_is_refused_by_name() {
    let cases: Vec<(&str, ServiceSpec)> = vec![
        (
            "storage_opt",
            ServiceSpec {
                storage_opt: [("size".to_owned(), "1g".to_owned())].into(),
                ..ServiceSpec::default()
            },
        ),
        (
            "pid",
            ServiceSpec {
                pid: Some("service:db".into()),
                ..ServiceSpec::default()
            },
        ),
        (
            "security_opt[0]",
            ServiceSpec {
                security_opt: vec!["seccomp=unconfined".into()],
                ..ServiceSpec::default()
            },
        ),
        (
            "pull_policy",
            ServiceSpec {
                pull_policy: Some("sometimes".into()),
                ..ServiceSpec::default()
            },
        ),
        (
            "logging.driver",
            ServiceSpec {
                logging: Some(api::service::Logging {
                    driver: Some("syslog".into()),
                    ..Default::default()
                }),
                ..ServiceSpec::default()
            },
        ),
        (
            "command",
            ServiceSpec {
                command: Some(Vec::new()),
                ..ServiceSpec::default()
            },
        ),
        (
            "deploy.resources.reservations.devices",
            ServiceSpec {
                deploy: Some(DeploySpec {
                    resources: Some(Resources {
                        reservations: Some(ResourceReservations {
                            devices: vec![api::Value::Null],
                            ..Default::default()
                        }),
                        ..Resources::default()
                    }),
                    ..DeploySpec::default()
                }),
                ..ServiceSpec::default()
            },
        ),
    ];
    for (field, spec) in cases {
        let e = refused(spec);
        assert!(e.starts_with(&format!("{field}: ")), "{field}: {e}");
    }
    // Harmless or someone else's: accepted.
    let fine = ServiceSpec {
        init: Some(false),
        ipc: Some("private".into()),
        restart: Some("always".into()),
        dns: vec!["1.1.1.1".into()],
        pull_policy: Some("always".into()),
        ..ServiceSpec::default()
    };
    assert!(container_create(&task(image(fine))).is_ok());
    let e = container_create(&task(ServiceSpec::default()))
        .unwrap_err()
        .to_string();
    assert_eq!(e, "task t9x: the service has no image");
}

#[test]
fn userns_mode_host_opts_out_of_the_engines_remap_and_nothing_else_is_taken() {
    let spec = image(ServiceSpec {
        userns_mode: Some("host".into()),
        ..ServiceSpec::default()
    });
    let c = container_create(&task(spec)).unwrap();
    assert_eq!(c.userns_mode.as_deref(), Some("host"));
    assert!(c.uidmap.is_empty() && c.gidmap.is_empty());
    let none = container_create(&task(image(ServiceSpec::default()))).unwrap();
    assert_eq!(none.userns_mode, None);
    let e = refused(ServiceSpec {
        userns_mode: Some("keep-id".into()),
        ..ServiceSpec::default()
    });
    assert!(
        e.contains("userns_mode") && e.contains("--userns-remap"),
        "{e}"
    );
}
