//! Containers as the engine API offers them: create (image, process plan, mounts),
//! start (through a shim), stop, kill, wait, remove, list, inspect, logs.

use super::cgroup::{DeviceAccess, Resources};
use super::container::{
    ContainerRecord, LogOptions, RecordError, StateFile, alive, read_json, rfc3339_nanos,
    same_process, status_name, write_json,
};
use super::init::{InitSpec, Mount, MountKind};
use super::limits::{check_sysctls, parse_ulimit};
use super::policy::{HealthConfig, HealthState, RestartPolicy, RestartState};
use super::shim::REPORT_FD;
use super::spec::{ProcessOptions, SecurityOptions, SpecError, plan, security};
use crate::engine::image::build::tree::{ImageTree, read_text};
use crate::engine::image::manifest::{ImageConfig, ImageManifest, Manifest};
use crate::engine::image::service::{ImageService, ImageServiceError};
use crate::engine::image::snapshot::Snapshots;
use crate::engine::network::service::{NetError, NetworkService, Request as NetRequest};
use crate::engine::volume::Volumes;
use api::container::{ContainerCreate, ContainerDetail, ContainerStatus, ContainerSummary};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What went wrong with a container request.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Image(#[from] ImageServiceError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A bad `--uidmap`/`--gidmap` (a request error: set-up failures are `Start`).
    #[error(transparent)]
    Userns(#[from] super::userns::UsernsError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("no container {0}")]
    NotFound(String),
    #[error("{what} matches several containers: {ids}")]
    Ambiguous { what: String, ids: String },
    #[error(transparent)]
    Tuning(#[from] super::tuning::TuningError),
    #[error("the name {0:?} is taken by another container")]
    NameTaken(String),
    #[error("invalid {what} {value:?}: {why}")]
    Invalid {
        what: &'static str,
        value: String,
        why: String,
    },
    #[error("container {id} is {status}; {hint}")]
    State {
        id: String,
        status: &'static str,
        hint: &'static str,
    },
    #[error("start container {id}: {why}")]
    Start { id: String, why: String },
    #[error(transparent)]
    Network(NetError),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ContainerError + use<> {
    let path = path.to_owned();
    move |source| ContainerError::Io { op, path, source }
}

/// What a create has made so far (to undo when it fails).
#[derive(Default)]
struct Made {
    dir: Option<PathBuf>,
    volumes: Vec<String>,
    /// Its network setup was made (by id).
    network: Option<String>,
}

/// The containers of one engine, under `<data>/containers/<id>/`.
pub struct ContainerService {
    root: PathBuf,
    images: Arc<ImageService>,
    volumes: Arc<Volumes>,
    networks: Arc<NetworkService>,
    /// The user namespace of containers that ask for none (`--userns-remap`).
    remap: Option<super::userns::UserNs>,
    /// One lock per container: start, restart and remove never interleave.
    locks: std::sync::Mutex<
        std::collections::HashMap<String, std::sync::Weak<tokio::sync::Mutex<()>>>,
    >,
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
    /// The containers under `root`.
    pub fn open(
        root: &Path,
        images: Arc<ImageService>,
        volumes: Arc<Volumes>,
        networks: Arc<NetworkService>,
        remap: Option<super::userns::UserNs>,
    ) -> Result<ContainerService, ContainerError> {
        std::fs::create_dir_all(root).map_err(io("create", root))?;
        Ok(ContainerService {
            root: root.to_owned(),
            images,
            volumes,
            networks,
            remap,
            locks: Default::default(),
        })
    }

    /// The lock of container `id`.
    fn lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = map.get(id).and_then(std::sync::Weak::upgrade) {
            return l;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let l = Arc::new(tokio::sync::Mutex::new(()));
        map.insert(id.to_owned(), Arc::downgrade(&l));
        l
    }

    /// The named volumes.
    pub fn volumes(&self) -> &Volumes {
        &self.volumes
    }

    /// Containers (ids) that mount volume `name`.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        self.records()
            .into_iter()
            .filter(|r| r.volumes.iter().any(|v| v == name))
            .map(|r| r.id)
            .collect()
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Every container's record, skipping directories that are not (yet) one.
    fn records(&self) -> Vec<ContainerRecord> {
        let mut out: Vec<ContainerRecord> = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| read_json(&e.path().join("config.json")).ok())
            .collect();
        out.sort_by(|a, b| b.created.cmp(&a.created));
        out
    }

    /// The ids of every container whose record reads (whatever its state); an
    /// error when the containers' directory cannot be read at all.
    pub fn ids(&self) -> Result<std::collections::BTreeSet<String>, ContainerError> {
        std::fs::read_dir(&self.root).map_err(io("read", &self.root))?;
        Ok(self.records().into_iter().map(|r| r.id).collect())
    }

    /// The id of the container `what` names: an id, a unique id prefix, or a name.
    pub fn resolve(&self, what: &str) -> Result<String, ContainerError> {
        let records = self.records();
        if let Some(r) = records.iter().find(|r| r.id == what || r.name == what) {
            return Ok(r.id.clone());
        }
        let hits: Vec<&ContainerRecord> =
            records.iter().filter(|r| r.id.starts_with(what)).collect();
        match hits.as_slice() {
            [one] if !what.is_empty() => Ok(one.id.clone()),
            [] | [_] => Err(ContainerError::NotFound(what.to_owned())),
            many => Err(ContainerError::Ambiguous {
                what: what.to_owned(),
                ids: many
                    .iter()
                    .map(|r| &r.id[..12])
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// The state of container `id`, corrected when its shim died with it.
    pub fn state(&self, id: &str) -> Result<StateFile, ContainerError> {
        let dir = self.dir(id);
        let mut s: StateFile = read_json(&dir.join("state.json"))?;
        if let ContainerStatus::Running { pid, started_at } = &s.status
            && !same_process(*pid, s.pid_start)
            && !s.shim_pid.is_some_and(alive)
        {
            s = StateFile {
                status: ContainerStatus::Exited {
                    exit_code: 255,
                    oom_killed: false,
                    started_at: started_at.clone(),
                    finished_at: rfc3339_nanos(SystemTime::now()),
                },
                shim_pid: None,
                pid_start: None,
            };
            write_json(&dir.join("state.json"), &s)?;
        }
        Ok(s)
    }

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
        super::spec::add_groups(&mut process.ids, &req.group_add, &group)?;
        let userns = super::userns::for_container(
            &req.uidmap,
            &req.gidmap,
            req.userns_mode.as_deref(),
            self.remap.as_ref(),
        )?;
        if let Some(ns) = &userns {
            let ids = &process.ids;
            if super::userns::UserNs::host_id(&ns.uid_map, ids.uid).is_none()
                || super::userns::UserNs::host_id(&ns.gid_map, ids.gid).is_none()
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
                .find(|g| super::userns::UserNs::host_id(&ns.gid_map, **g).is_none())
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
        let hostname = if super::tuning::uts_host(req.uts_mode.as_deref())? {
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
        let hosts = super::hosts::hosts_file(
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
                super::resolv::resolv_conf(
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
        let tuning = super::tuning::tuning(req, userns.is_some())?;
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

    /// Start container `id` through its shim; returns once the process runs.
    pub fn start(&self, id: &str) -> Result<(), ContainerError> {
        let lock = self.lock(id);
        let _held = lock.blocking_lock();
        self.start_locked(id)
    }

    fn start_locked(&self, id: &str) -> Result<(), ContainerError> {
        let s = self.state(id)?;
        if !matches!(s.status, ContainerStatus::Created) {
            return Err(ContainerError::State {
                id: id.to_owned(),
                status: status_name(&s.status),
                hint: "only a created container can start",
            });
        }
        let dir = self.dir(id);
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two fds that are owned right below.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io("pipe for", &dir)(std::io::Error::last_os_error()));
        }
        // SAFETY: fresh fds from pipe2.
        let (report_r, report_w) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let w = report_w.as_raw_fd();
        let mut cmd = std::process::Command::new("/proc/self/exe");
        cmd.arg("shim")
            .arg(&dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: dup2 is async-signal-safe; the report pipe becomes the shim's fd 3.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(w, REPORT_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let status = cmd.status().map_err(io("run the shim for", &dir))?;
        drop(report_w);
        let mut report = String::new();
        std::fs::File::from(report_r)
            .read_to_string(&mut report)
            .map_err(io("read the shim's report for", &dir))?;
        if report == "ok" {
            // Its names resolve from now on.
            self.networks
                .set_running(id, true)
                .map_err(ContainerError::Network)?;
            return Ok(());
        }
        let why = if report.is_empty() {
            format!("the shim ended without a report ({status})")
        } else {
            report
        };
        Err(ContainerError::Start {
            id: id.to_owned(),
            why,
        })
    }

    /// Tell the networks whether container `id` runs (its names resolve only then).
    pub fn note_running(&self, id: &str, running: bool) -> Result<(), ContainerError> {
        self.networks
            .set_running(id, running)
            .map_err(ContainerError::Network)
    }

    /// Send `signal` to the process of running container `id` (a paused one is
    /// thawed first, or the signal would wait for the thaw).
    pub fn kill(&self, id: &str, signal: i32) -> Result<(), ContainerError> {
        let state = self.state(id)?;
        match state.status {
            ContainerStatus::Running { pid, .. } => {
                if !same_process(pid, state.pid_start) {
                    return Ok(());
                }
                if self.paused(id) {
                    let _ = self.pause(id, false);
                }
                // SAFETY: kill with a pid read from the container's state.
                if unsafe { libc::kill(pid, signal) } != 0 {
                    let e = std::io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::ESRCH) {
                        return Err(io("signal the process of", &self.dir(id))(e));
                    }
                }
                Ok(())
            }
            other => Err(ContainerError::State {
                id: id.to_owned(),
                status: status_name(&other),
                hint: "only a running container can be signalled",
            }),
        }
    }

    /// Wait until container `id` has exited; its final state. The shim writes the
    /// exit and then ends, so waiting for the shim's end (a pidfd) wakes this at once.
    pub async fn wait(&self, id: &str) -> Result<ContainerStatus, ContainerError> {
        loop {
            let s = self.state(id)?;
            if matches!(s.status, ContainerStatus::Exited { .. }) {
                return Ok(s.status);
            }
            match s.shim_pid.and_then(|pid| pidfd(pid).ok()) {
                // SAFETY: the AsyncFd owns the pidfd, which stays open while it lives.
                Some(fd) => match unsafe {
                    tokio::io::unix::AsyncFd::register_with_interest(
                        fd,
                        tokio::io::Interest::READABLE,
                    )
                } {
                    // Re-read the state after the shim ends, or after a while in case
                    // the shim died without writing it.
                    Ok(fd) => {
                        let _ = tokio::time::timeout(Duration::from_secs(1), fd.readable()).await;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                },
                None => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Stop container `id`: its stop signal (SIGTERM by default), then SIGKILL after
    /// `grace` (default: its stop timeout, else 10 s). Restart policies leave a
    /// container stopped this way alone.
    pub async fn stop(
        &self,
        id: &str,
        grace: Option<Duration>,
    ) -> Result<ContainerStatus, ContainerError> {
        self.set_manually_stopped(id, true)?;
        if !matches!(self.state(id)?.status, ContainerStatus::Running { .. }) {
            return Ok(self.state(id)?.status);
        }
        let record = self.record(id)?;
        let signal = match &record.stop_signal {
            Some(s) => signal_number(s)?,
            None => libc::SIGTERM,
        };
        let grace = grace.unwrap_or(Duration::from_secs(record.stop_timeout.unwrap_or(10)));
        self.kill(id, signal)?;
        match tokio::time::timeout(grace, self.wait(id)).await {
            Ok(s) => s,
            Err(_) => {
                let _ = self.kill(id, libc::SIGKILL);
                self.wait(id).await
            }
        }
    }

    /// Remove container `id` (a running one only with `force`, which kills it).
    pub async fn remove(&self, id: &str, force: bool) -> Result<(), ContainerError> {
        let lock = self.lock(id);
        let _held = lock.lock().await;
        if let ContainerStatus::Running { .. } = self.state(id)?.status {
            if !force {
                return Err(ContainerError::State {
                    id: id.to_owned(),
                    status: "running",
                    hint: "stop it first or remove it with force",
                });
            }
            let _ = self.kill(id, libc::SIGKILL);
            self.wait(id).await?;
        }
        // The shim removes the cgroup when the process ends; one a dead shim left
        // behind goes here.
        if let Ok(cg) = super::cgroup::probe(Path::new(super::cgroup::ROOT), super::cgroup::PARENT)
        {
            let _ = cg.remove(id, Duration::ZERO);
        }
        // Its network setup: endpoints, addresses, ports, namespace (netlink, nft
        // and every DNS table: blocking work, off the runtime's few threads).
        let networks = self.networks.clone();
        let cid = id.to_owned();
        tokio::task::spawn_blocking(move || networks.release(&cid))
            .await
            .map_err(|e| ContainerError::Start {
                id: id.to_owned(),
                why: e.to_string(),
            })?
            .map_err(ContainerError::Network)?;
        // Its anonymous volumes (`-v /PATH`, the image's VOLUMEs) go with it.
        if let Ok(record) = self.record(id) {
            for v in &record.anonymous_volumes {
                let _ = self.volumes.remove(v);
            }
        }
        let dir = self.dir(id);
        tokio::task::spawn_blocking(move || {
            std::fs::remove_dir_all(&dir).map_err(io("remove", &dir))
        })
        .await
        .map_err(|e| ContainerError::Start {
            id: id.to_owned(),
            why: e.to_string(),
        })?
    }

    /// The record of container `id`.
    pub fn record(&self, id: &str) -> Result<ContainerRecord, ContainerError> {
        Ok(read_json(&self.dir(id).join("config.json"))?)
    }

    /// What restart policies know of container `id`.
    pub fn restart_state(&self, id: &str) -> RestartState {
        read_json(&self.dir(id).join("restart.json")).unwrap_or_default()
    }

    /// Keep `state` for container `id`.
    pub fn set_restart_state(&self, id: &str, state: &RestartState) -> Result<(), ContainerError> {
        Ok(write_json(&self.dir(id).join("restart.json"), state)?)
    }

    /// Mark container `id` as stopped (or started) through the API.
    pub fn set_manually_stopped(&self, id: &str, stopped: bool) -> Result<(), ContainerError> {
        let mut s = self.restart_state(id);
        if s.manually_stopped != stopped {
            s.manually_stopped = stopped;
            self.set_restart_state(id, &s)?;
        }
        Ok(())
    }

    /// The health of container `id`, when it has a health check.
    pub fn health(&self, id: &str) -> Option<HealthState> {
        read_json(&self.dir(id).join("health.json")).ok()
    }

    /// Keep the health of container `id`.
    pub fn set_health(&self, id: &str, health: &HealthState) -> Result<(), ContainerError> {
        Ok(write_json(&self.dir(id).join("health.json"), health)?)
    }

    /// Record that created container `id` could not start (exit code 127), so
    /// policies and `--rm` see an exit.
    pub fn fail_start(&self, id: &str) -> Result<(), ContainerError> {
        let now = rfc3339_nanos(SystemTime::now());
        super::container::set_state(
            &self.dir(id),
            id,
            StateFile {
                status: ContainerStatus::Exited {
                    exit_code: 127,
                    oom_killed: false,
                    started_at: now.clone(),
                    finished_at: now,
                },
                shim_pid: None,
                pid_start: None,
            },
        )?;
        Ok(())
    }

    /// Start exited container `id` again (a restart policy's doing).
    pub fn restart(&self, id: &str) -> Result<(), ContainerError> {
        let lock = self.lock(id);
        let _held = lock.blocking_lock();
        // A stop or remove that came first wins.
        if self.restart_state(id).manually_stopped {
            return Ok(());
        }
        let dir = self.dir(id);
        super::container::set_state(
            &dir,
            id,
            StateFile {
                status: ContainerStatus::Created,
                shim_pid: None,
                pid_start: None,
            },
        )?;
        let _ = std::fs::remove_file(dir.join("health.json"));
        self.start_locked(id)
    }

    /// Summaries (running ones only unless `all`), newest first.
    pub fn list(&self, all: bool) -> Result<Vec<ContainerSummary>, ContainerError> {
        let mut out = Vec::new();
        for r in self.records() {
            let Ok(s) = self.state(&r.id) else { continue };
            if all || matches!(s.status, ContainerStatus::Running { .. }) {
                out.push(summary(&r, s.status));
            }
        }
        Ok(out)
    }

    /// Everything about container `id`.
    pub fn inspect(&self, id: &str) -> Result<ContainerDetail, ContainerError> {
        let dir = self.dir(id);
        let r: ContainerRecord = read_json(&dir.join("config.json"))?;
        let s = self.state(id)?;
        let p = &r.init.process;
        let (network_mode, networks, ports) = self.networks.of_container(id);
        Ok(ContainerDetail {
            summary: summary(&r, s.status),
            image_digest: r.image_digest.clone(),
            hostname: r.init.hostname.clone(),
            env: p.env.clone(),
            working_dir: p.cwd.clone(),
            user: format!("{}:{}", p.ids.uid, p.ids.gid),
            read_only: r.init.readonly_rootfs,
            labels: r.labels.clone(),
            dir: dir.display().to_string(),
            capabilities: r
                .init
                .security
                .capabilities
                .iter()
                .filter_map(|c| serde_json::to_value(c).ok()?.as_str().map(str::to_owned))
                .collect(),
            privileged: r.init.security.privileged,
            paused: self.paused(id),
            restart_policy: match r.restart {
                RestartPolicy::No => "no".into(),
                RestartPolicy::OnFailure { max: None } => "on-failure".into(),
                RestartPolicy::OnFailure { max: Some(n) } => format!("on-failure:{n}"),
                RestartPolicy::Always => "always".into(),
                RestartPolicy::UnlessStopped => "unless-stopped".into(),
            },
            restart_count: self.restart_state(id).count,
            health: r.health.as_ref().map(|_| {
                let h = self.health(id).unwrap_or_default();
                serde_json::to_value(h.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            }),
            health_log: self
                .health(id)
                .map(|h| {
                    h.log
                        .into_iter()
                        .map(|p| (p.start, p.exit_code, p.output))
                        .collect()
                })
                .unwrap_or_default(),
            network_mode,
            networks,
            ports,
        })
    }

    /// Where container `id` keeps its files.
    pub fn path(&self, id: &str) -> PathBuf {
        self.dir(id)
    }

    /// Freeze (or thaw) the processes of running container `id`.
    pub fn pause(&self, id: &str, paused: bool) -> Result<(), ContainerError> {
        if !matches!(self.state(id)?.status, ContainerStatus::Running { .. }) {
            return Err(ContainerError::State {
                id: id.to_owned(),
                status: "not running",
                hint: "only a running container can be paused or resumed",
            });
        }
        let cg = super::cgroup::probe(Path::new(super::cgroup::ROOT), super::cgroup::PARENT)
            .map_err(|e| ContainerError::Start {
                id: id.to_owned(),
                why: e.to_string(),
            })?;
        cg.freeze(id, paused).map_err(|e| ContainerError::Start {
            id: id.to_owned(),
            why: e.to_string(),
        })?;
        let marker = self.dir(id).join("paused");
        if paused {
            std::fs::write(&marker, b"").map_err(io("write", &marker))
        } else {
            match std::fs::remove_file(&marker) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", &marker)(e)),
                _ => Ok(()),
            }
        }
    }

    /// Whether container `id` is paused.
    pub fn paused(&self, id: &str) -> bool {
        matches!(
            self.state(id).map(|s| s.status),
            Ok(ContainerStatus::Running { .. })
        ) && self.dir(id).join("paused").exists()
    }

    /// What running container `id` uses now.
    pub fn stats(&self, id: &str) -> Result<api::container::ContainerStats, ContainerError> {
        if !matches!(self.state(id)?.status, ContainerStatus::Running { .. }) {
            return Err(ContainerError::State {
                id: id.to_owned(),
                status: "not running",
                hint: "stats are for running containers",
            });
        }
        let record = self.record(id)?;
        let fail = |e: super::cgroup::CgroupError| ContainerError::Start {
            id: id.to_owned(),
            why: e.to_string(),
        };
        let cg = super::cgroup::probe(Path::new(super::cgroup::ROOT), super::cgroup::PARENT)
            .map_err(fail)?;
        let st = cg.stats(id).map_err(fail)?;
        Ok(api::container::ContainerStats {
            id: id.to_owned(),
            name: record.name,
            memory_usage: st.memory_usage,
            memory_limit: record.resources.memory,
            cpu_usage_ns: st.cpu_usage_ns,
            pids: st.pids_current,
            read_at: rfc3339_nanos(SystemTime::now()),
        })
    }

    /// The images containers use (kept by prune).
    pub fn images_in_use(&self) -> Vec<crate::engine::image::digest::Digest> {
        self.records()
            .iter()
            .filter_map(|r| r.image_digest.parse().ok())
            .collect()
    }
}

/// A signal by name (`TERM`, `SIGKILL`) or number.
pub fn signal_number(text: &str) -> Result<i32, ContainerError> {
    if let Ok(n) = text.parse::<i32>()
        && (1..=64).contains(&n)
    {
        return Ok(n);
    }
    let name = text.trim_start_matches("SIG").to_ascii_uppercase();
    Ok(match name.as_str() {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        "STOP" => libc::SIGSTOP,
        "CONT" => libc::SIGCONT,
        "WINCH" => libc::SIGWINCH,
        "PWR" => libc::SIGPWR,
        _ => {
            return Err(ContainerError::Invalid {
                what: "signal",
                value: text.to_owned(),
                why: "use a name like TERM or a number".into(),
            });
        }
    })
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

/// A pidfd of process `pid` (readable once it ends).
fn pidfd(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open has no wrapper in libc; the result is checked.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd from pidfd_open.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn summary(r: &ContainerRecord, status: ContainerStatus) -> ContainerSummary {
    ContainerSummary {
        id: r.id.clone(),
        name: r.name.clone(),
        image: r.image.clone(),
        command: r.init.process.args.clone(),
        created: r.created.clone(),
        status,
    }
}
