//! Creating a container: the request checked and turned into its directory, its
//! process plan, its mounts, volumes and network set-up, undone if a step fails.

use super::*;

/// What a create has made so far (to undo when it fails).
#[derive(Default)]
struct Made {
    dir: Option<PathBuf>,
    volumes: Vec<String>,
    /// Its network setup was made (by id).
    network: Option<String>,
}

fn random_id() -> String {
    let mut bytes = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Parse `[SOURCE:]CONTAINER[:ro|rw]` where SOURCE is a host path or a volume name;
/// (source, target, read-only, whether the source is a volume). Without a source it
/// is an anonymous volume (an empty source): one of the container's own.
fn bind(spec: &str) -> Result<(String, String, bool, bool), ContainerError> {
    let bad = |why: &str| ContainerError::Invalid {
        what: "volume",
        value: spec.to_owned(),
        why: why.to_owned(),
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, target, readonly) = match parts.as_slice() {
        // An anonymous volume: `/PATH[:ro]`.
        [t] => ("", *t, false),
        [t, "ro"] if t.starts_with('/') => ("", *t, true),
        [t, "rw"] if t.starts_with('/') => ("", *t, false),
        [h, t] => (*h, *t, false),
        [h, t, "ro"] => (*h, *t, true),
        [h, t, "rw"] => (*h, *t, false),
        _ => {
            return Err(bad(
                "expected HOST-PATH:CONTAINER-PATH[:ro], VOLUME:CONTAINER-PATH[:ro] or CONTAINER-PATH[:ro]",
            ));
        }
    };
    if !target.starts_with('/') {
        return Err(bad("the container path must be absolute"));
    }
    if host.is_empty() {
        return Ok((String::new(), target.to_owned(), readonly, true));
    }
    if host.starts_with('/') {
        if !Path::new(host).exists() {
            return Err(bad("the host path does not exist"));
        }
        return Ok((host.to_owned(), target.to_owned(), readonly, false));
    }
    if !crate::engine::volume::valid_name(host) {
        return Err(bad(
            "a volume name uses letters, digits, _ . - (a host path starts with /)",
        ));
    }
    Ok((host.to_owned(), target.to_owned(), readonly, true))
}

/// Parse `--device HOST[:CONTAINER[:PERMS]]`: the bind mount of the node and its
/// cgroup rule (`c 10:229 rwm`).
fn device(spec: &str) -> Result<(Mount, String), ContainerError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let bad = |why: String| ContainerError::Invalid {
        what: "device",
        value: spec.to_owned(),
        why,
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, target, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, t] => (*h, *t, "rwm"),
        [h, t, p] => (*h, *t, *p),
        _ => return Err(bad("expected HOST[:CONTAINER[:PERMS]]".into())),
    };
    if !perms.chars().all(|c| "rwm".contains(c)) || perms.is_empty() {
        return Err(bad(format!(
            "permissions {perms:?} are a mix of r, w and m"
        )));
    }
    if !target.starts_with("/dev/") {
        return Err(bad("the container path must be under /dev".into()));
    }
    let meta = std::fs::metadata(host).map_err(|e| bad(format!("{host}: {e}")))?;
    let kind = if meta.file_type().is_char_device() {
        'c'
    } else if meta.file_type().is_block_device() {
        'b'
    } else {
        return Err(bad(format!("{host} is not a device node")));
    };
    let rdev = meta.rdev();
    let rule = format!("{kind} {}:{} {perms}", libc::major(rdev), libc::minor(rdev));
    let mount = Mount {
        target: target.to_owned(),
        kind: MountKind::Bind {
            source: PathBuf::from(host),
        },
        readonly: !perms.contains('w'),
    };
    Ok((mount, rule))
}

/// Parse `PATH[:size=BYTES,mode=OCTAL,ro]`.
fn tmpfs(spec: &str) -> Result<Mount, ContainerError> {
    let bad = |why: String| ContainerError::Invalid {
        what: "tmpfs",
        value: spec.to_owned(),
        why,
    };
    let (target, opts) = spec.split_once(':').unwrap_or((spec, ""));
    if !target.starts_with('/') {
        return Err(bad("the path must be absolute".into()));
    }
    let (mut size, mut mode, mut readonly) = (None, None, false);
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o.split_once('=') {
            Some(("size", v)) => {
                let n = api::units::parse_bytes(v).map_err(bad)?;
                size = Some(n.0);
            }
            Some(("mode", v)) => {
                mode = Some(
                    u32::from_str_radix(v, 8)
                        .map_err(|_| bad(format!("mode {v:?} is not octal")))?,
                );
            }
            None if o == "ro" => readonly = true,
            None if o == "rw" => readonly = false,
            _ => return Err(bad(format!("unknown option {o:?}"))),
        }
    }
    Ok(Mount {
        target: target.to_owned(),
        kind: MountKind::Tmpfs { size, mode },
        readonly,
    })
}

impl ContainerService {
    /// Create a container (not started).
    pub fn create(&self, req: &ContainerCreate) -> Result<(String, String), ContainerError> {
        let mut made = Made::default();
        let result = self.create_steps(req, &mut made);
        if result.is_err() {
            // A create that fails late leaves nothing: no directory, no anonymous volume.
            if let Some(dir) = &made.dir {
                let _ = std::fs::remove_dir_all(dir);
            }
            for v in &made.volumes {
                let _ = self.volumes.remove(v);
            }
            if let Some(id) = &made.network {
                let _ = self.networks.release(id);
            }
        }
        result
    }

    fn create_steps(
        &self,
        req: &ContainerCreate,
        made: &mut Made,
    ) -> Result<(String, String), ContainerError> {
        let digest = self.images.resolve(&req.image)?;
        let images = self.images.images();
        let manifest_bytes = {
            let mut b = Vec::new();
            images
                .content
                .open_verified(&digest)
                .map_err(ImageServiceError::from)?
                .read_to_end(&mut b)
                .map_err(io("read", &images.content.path(&digest)))?;
            b
        };
        let manifest: ImageManifest = match Manifest::parse(&manifest_bytes, None) {
            Ok(Manifest::Image(m)) => m,
            _ => {
                return Err(ContainerError::Invalid {
                    what: "image",
                    value: req.image.clone(),
                    why: "it is not a single-platform image manifest".into(),
                });
            }
        };
        let config: ImageConfig = {
            let mut b = Vec::new();
            images
                .content
                .open_verified(&manifest.config.digest)
                .map_err(ImageServiceError::from)?
                .read_to_end(&mut b)
                .map_err(io("read", &images.content.path(&manifest.config.digest)))?;
            serde_json::from_slice(&b).map_err(|e| ContainerError::Invalid {
                what: "image",
                value: req.image.clone(),
                why: format!("its config is not valid JSON: {e}"),
            })?
        };
        let lowers = self
            .images
            .snapshots()
            .prepare(&images.content, &digest)
            .map_err(ImageServiceError::from)?;
        let tree = ImageTree {
            layers: lowers.clone(),
        };
        let text = |p: &str| read_text(&tree, p);
        let opts = ProcessOptions {
            entrypoint: req.entrypoint.clone(),
            cmd: req.cmd.clone(),
            env: req.env.clone(),
            user: req.user.clone(),
            workdir: req.workdir.clone(),
        };
        let group = text("/etc/group");
        let mut process = plan(
            &config.config.clone().unwrap_or_default(),
            &opts,
            &text("/etc/passwd"),
            &group,
        )?;
        super::super::spec::add_groups(&mut process.ids, &req.group_add, &group)?;
        let userns = super::super::userns::for_container(
            &req.uidmap,
            &req.gidmap,
            req.userns_mode.as_deref(),
            self.remap.as_ref(),
        )?;
        if let Some(ns) = &userns {
            let ids = &process.ids;
            if super::super::userns::UserNs::host_id(&ns.uid_map, ids.uid).is_none()
                || super::super::userns::UserNs::host_id(&ns.gid_map, ids.gid).is_none()
            {
                return Err(ContainerError::Invalid {
                    what: "user",
                    value: format!("{}:{}", ids.uid, ids.gid),
                    why: "the container's user namespace does not map it (--uidmap, --gidmap)"
                        .into(),
                });
            }
            if let Some(g) = ids
                .groups
                .iter()
                .find(|g| super::super::userns::UserNs::host_id(&ns.gid_map, **g).is_none())
            {
                return Err(ContainerError::Invalid {
                    what: "supplementary group (group_add, or the user's in /etc/group)",
                    value: g.to_string(),
                    why: "the container's user namespace does not map it (--gidmap)".into(),
                });
            }
        }
        let mut mounts = Vec::new();
        let mut volumes = Vec::new();
        let mut anonymous = Vec::new();
        for b in &req.binds {
            let (mut source, target, readonly, is_volume) = bind(b)?;
            if is_volume && source.is_empty() {
                source = random_id();
                made.volumes.push(source.clone());
                anonymous.push(source.clone());
            }
            let source = if is_volume {
                volumes.push(source.clone());
                self.volumes
                    .mount_source(&source, &tree, Path::new(&target))
                    .map_err(|e| ContainerError::Invalid {
                        what: "volume",
                        value: b.clone(),
                        why: e.to_string(),
                    })?
            } else {
                PathBuf::from(source)
            };
            mounts.push(Mount {
                target,
                kind: MountKind::Bind { source },
                readonly,
            });
        }
        for t in &req.tmpfs {
            mounts.push(tmpfs(t)?);
        }
        // The image's VOLUMEs that no mount covers get anonymous volumes, as in Docker.
        let declared = config
            .config
            .as_ref()
            .and_then(|c| c.volumes.clone())
            .unwrap_or_default();
        for path in declared.keys() {
            let target = Path::new("/").join(path.trim_start_matches('/'));
            let target = target.display().to_string();
            if mounts.iter().any(|m| m.target == target) {
                continue;
            }
            let name = random_id();
            let source = self
                .volumes
                .mount_source(&name, &tree, Path::new(&target))
                .map_err(|e| ContainerError::Invalid {
                    what: "image volume",
                    value: target.clone(),
                    why: e.to_string(),
                })?;
            made.volumes.push(name.clone());
            volumes.push(name.clone());
            anonymous.push(name);
            mounts.push(Mount {
                target,
                kind: MountKind::Bind { source },
                readonly: false,
            });
        }
        let records = self.records();
        let id = random_id();
        let name = match &req.name {
            Some(n) if !valid_name(n) => {
                return Err(ContainerError::Invalid {
                    what: "name",
                    value: n.clone(),
                    why: "use letters, digits, _ . - (starting with a letter or digit)".into(),
                });
            }
            Some(n) if records.iter().any(|r| r.name == *n) => {
                return Err(ContainerError::NameTaken(n.clone()));
            }
            Some(n) => n.clone(),
            None => format!("orch-{}", &id[..12]),
        };
        let hostname = if super::super::tuning::uts_host(req.uts_mode.as_deref())? {
            // The host's UTS namespace: its name, in /etc/hostname and /etc/hosts too.
            let p = Path::new("/proc/sys/kernel/hostname");
            std::fs::read_to_string(p)
                .map_err(io("read", p))?
                .trim()
                .to_owned()
        } else {
            req.hostname.clone().unwrap_or_else(|| id[..12].to_owned())
        };
        let dir = self.dir(&id);
        made.dir = Some(dir.clone());
        for d in ["rootfs", "upper", "work"] {
            let p = dir.join(d);
            std::fs::create_dir_all(&p).map_err(io("create", &p))?;
        }
        let resolve = |what: &str| self.resolve(what).ok();
        let prepared = self
            .networks
            .prepare(
                &id,
                &name,
                &NetRequest {
                    mode: req.network_mode.as_deref(),
                    networks: &req.networks,
                    publish: &req.publish,
                    hostname: &hostname,
                },
                resolve,
            )
            .map_err(ContainerError::Network)?;
        made.network = Some(id.clone());
        let gateway = self
            .networks
            .inspect(crate::engine::network::service::DEFAULT_NETWORK)
            .ok()
            .map(|n| n.gateway)
            .filter(|g| !g.is_empty());
        let hosts = super::super::hosts::hosts_file(
            &hostname,
            &prepared.hosts,
            &req.extra_hosts,
            gateway.as_deref(),
        )
        .map_err(|e| ContainerError::Invalid {
            what: "extra host",
            value: e.entry,
            why: e.why,
        })?;
        let files = [
            ("hostname", format!("{hostname}\n")),
            ("hosts", hosts),
            (
                "resolv.conf",
                super::super::resolv::resolv_conf(
                    &prepared.resolv_conf,
                    &req.dns_search,
                    &req.dns_options,
                )?,
            ),
        ];
        for (name, text) in &files {
            let p = dir.join(name);
            std::fs::write(&p, text).map_err(io("write", &p))?;
            mounts.insert(
                0,
                Mount {
                    target: format!("/etc/{name}"),
                    kind: MountKind::Bind { source: p },
                    readonly: false,
                },
            );
        }
        let devices = req
            .devices
            .iter()
            .map(|d| device(d))
            .collect::<Result<Vec<_>, _>>()?;
        let security = security(&SecurityOptions {
            cap_add: req.cap_add.clone(),
            cap_drop: req.cap_drop.clone(),
            privileged: req.privileged,
            seccomp_unconfined: false,
        })?;
        let resources = Resources {
            memory: req.memory,
            memory_reservation: req.memory_reservation,
            memory_swap: req.memory_swap,
            cpus: req.cpus,
            cpu_shares: req.cpu_shares,
            pids_limit: req.pids_limit,
            devices: if req.privileged {
                DeviceAccess::All
            } else {
                DeviceAccess::Default
            },
            device_rules: devices.iter().map(|(_, rule)| rule.clone()).collect(),
        };
        for (m, _) in devices {
            mounts.push(m);
        }
        resources.validate().map_err(|e| ContainerError::Invalid {
            what: "resources",
            value: format!("{resources:?}"),
            why: e.to_string(),
        })?;
        let ulimits = req
            .ulimits
            .iter()
            .map(|u| parse_ulimit(u))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ContainerError::Invalid {
                what: "ulimit",
                value: req.ulimits.join(" "),
                why: e.to_string(),
            })?;
        check_sysctls(&req.sysctls).map_err(|e| ContainerError::Invalid {
            what: "sysctl",
            value: format!("{:?}", req.sysctls),
            why: e.to_string(),
        })?;
        let tuning = super::super::tuning::tuning(req, userns.is_some())?;
        let init = InitSpec {
            ulimits,
            sysctls: req.sysctls.clone(),
            tty: req.tty,
            init: req.init,
            security,
            rootfs: dir.join("rootfs"),
            overlay: Snapshots::overlay(&lowers, &dir.join("upper"), &dir.join("work")),
            readonly_rootfs: req.read_only,
            hostname,
            process,
            mounts,
            no_new_privileges: req.no_new_privileges,
            netns: prepared.netns.clone(),
            userns,
            tuning,
        };
        let restart: RestartPolicy =
            req.restart
                .as_deref()
                .unwrap_or("no")
                .parse()
                .map_err(|why| ContainerError::Invalid {
                    what: "restart policy",
                    value: req.restart.clone().unwrap_or_default(),
                    why,
                })?;
        let image_rc = config.config.clone().unwrap_or_default();
        let stop_signal = req.stop_signal.clone().or(image_rc.stop_signal.clone());
        if let Some(sig) = &stop_signal {
            signal_number(sig)?;
        }
        let health = match &req.healthcheck {
            Some(h) => health_from_spec(h)?,
            None => image_rc.healthcheck.as_ref().and_then(health_from_image),
        };
        let record = ContainerRecord {
            id: id.clone(),
            name: name.clone(),
            image: req.image.clone(),
            image_digest: digest.to_string(),
            created: rfc3339_nanos(SystemTime::now()),
            init: init.clone(),
            labels: req.labels.clone(),
            auto_remove: req.auto_remove,
            log: LogOptions::default(),
            restart,
            stop_signal,
            stop_timeout: req.stop_timeout,
            health,
            volumes,
            resources,
            open_stdin: req.open_stdin,
            anonymous_volumes: anonymous,
            group_add: req.group_add.clone(),
        };
        write_json(&dir.join("init.json"), &init)?;
        write_json(
            &dir.join("state.json"),
            &StateFile {
                status: ContainerStatus::Created,
                shim_pid: None,
                pid_start: None,
            },
        )?;
        // config.json last: a directory without it is not a container yet.
        write_json(&dir.join("config.json"), &record)?;
        Ok((id, name))
    }
}

/// The command a health check's `test` runs (`CMD ...`, `CMD-SHELL cmd`); `None`
/// for `NONE` or an empty test.
fn health_test(test: &[String]) -> Option<Vec<String>> {
    match test.split_first() {
        Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
        Some((kind, rest)) if kind == "CMD-SHELL" && !rest.is_empty() => {
            Some(vec!["/bin/sh".into(), "-c".into(), rest.join(" ")])
        }
        _ => None,
    }
}

/// A health check from the API's (compose's) form.
fn health_from_spec(h: &api::service::Healthcheck) -> Result<Option<HealthConfig>, ContainerError> {
    if h.disable {
        return Ok(None);
    }
    let ns = |d: Option<api::units::Duration>, default: u64| {
        Duration::from_nanos(d.map_or(default, |d| d.as_nanos()))
    };
    let Some(test) = health_test(&h.test) else {
        return Ok(None);
    };
    Ok(Some(HealthConfig {
        test,
        interval: ns(h.interval, 30_000_000_000),
        timeout: ns(h.timeout, 30_000_000_000),
        retries: h.retries.map_or(3, |r| r as u32),
        start_period: ns(h.start_period, 0),
        start_interval: ns(h.start_interval, 5_000_000_000),
    }))
}

/// A health check from an image config's `Healthcheck` (durations in nanoseconds).
fn health_from_image(v: &serde_json::Value) -> Option<HealthConfig> {
    let test: Vec<String> = serde_json::from_value(v.get("Test")?.clone()).ok()?;
    let ns = |key: &str, default: u64| {
        Duration::from_nanos(
            v.get(key)
                .and_then(|x| x.as_u64())
                .filter(|n| *n > 0)
                .unwrap_or(default),
        )
    };
    Some(HealthConfig {
        test: health_test(&test)?,
        interval: ns("Interval", 30_000_000_000),
        timeout: ns("Timeout", 30_000_000_000),
        retries: v
            .get("Retries")
            .and_then(|x| x.as_u64())
            .filter(|n| *n > 0)
            .unwrap_or(3) as u32,
        start_period: ns("StartPeriod", 0),
        start_interval: ns("StartInterval", 5_000_000_000),
    })
}
