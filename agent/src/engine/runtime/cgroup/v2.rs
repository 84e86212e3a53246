//! cgroup v2: one unified hierarchy; the controllers a container needs are enabled in
//! `cgroup.subtree_control` of every ancestor of its cgroup.

use super::{
    CgroupError, Cgroups, Resources, Setting, Stats, Version, cpu, display_name, freezer, fs,
    memory, pids,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a freeze or thaw may take.
const FREEZE_WAIT: Duration = Duration::from_secs(5);

/// The controllers every container's cgroup gets.
pub const CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

/// The unified hierarchy at `root`.
#[derive(Debug)]
pub struct V2 {
    root: PathBuf,
    parent: String,
}

impl V2 {
    pub fn new(root: &Path, parent: &str) -> V2 {
        V2 {
            root: root.to_owned(),
            parent: parent.to_owned(),
        }
    }

    /// The cgroup of `id`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(&self.parent).join(id)
    }

    fn settings(&self, id: &str, r: &Resources) -> Result<Vec<Setting>, CgroupError> {
        let err = |source| CgroupError::Resources {
            cgroup: self.name(id),
            source,
        };
        let mut s = memory::v2(r).map_err(err)?;
        s.extend(cpu::v2(r).map_err(err)?);
        s.extend(pids::settings(r));
        Ok(s)
    }

    /// Enable [`CONTROLLERS`] from the root down to the parent, creating the parent's
    /// directories on the way, then create the cgroup.
    fn make_path(&self, id: &str) -> Result<(), CgroupError> {
        let name = self.name(id);
        let enable = CONTROLLERS.map(|c| format!("+{c}")).join(" ");
        let mut level = self.root.clone();
        let parts: Vec<&str> = self.parent.split('/').filter(|p| !p.is_empty()).collect();
        for part in parts.iter().copied().chain([id]) {
            let available = fs::read(&level, &name, "cgroup.controllers")?;
            if let Some(c) = CONTROLLERS
                .iter()
                .find(|c| !available.split_whitespace().any(|a| a == **c))
            {
                return Err(CgroupError::Unavailable {
                    controller: c,
                    cgroup: name,
                    root: self.root.clone(),
                });
            }
            fs::write(&level, &name, "cgroup.subtree_control", &enable)?;
            level.push(part);
            match std::fs::create_dir(&level) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(source) => {
                    return Err(CgroupError::Create {
                        cgroup: name,
                        path: level,
                        source,
                    });
                }
            }
        }
        Ok(())
    }
}

impl Cgroups for V2 {
    fn version(&self) -> Version {
        Version::V2
    }

    fn name(&self, id: &str) -> String {
        display_name(&self.parent, id)
    }

    fn create(&self, id: &str, resources: &Resources) -> Result<(), CgroupError> {
        let settings = self.settings(id, resources)?;
        let dir = self.dir(id);
        let name = self.name(id);
        self.make_path(id)
            .and_then(|()| {
                settings
                    .iter()
                    .filter(|s| !s.optional || dir.join(s.file).exists())
                    .try_for_each(|s| fs::write(&dir, &name, s.file, &s.value))
            })
            .inspect_err(|_| {
                let _ = self.remove(id, Duration::ZERO);
            })
    }

    fn add(&self, id: &str, pid: libc::pid_t) -> Result<(), CgroupError> {
        fs::write(
            &self.dir(id),
            &self.name(id),
            "cgroup.procs",
            &pid.to_string(),
        )
    }

    fn stats(&self, id: &str) -> Result<Stats, CgroupError> {
        let (dir, name) = (self.dir(id), self.name(id));
        let events = fs::read(&dir, &name, "memory.events")?;
        Ok(Stats {
            memory_usage: fs::read_u64(&dir, &name, "memory.current")?,
            memory_limit_hits: fs::keyed(&events, "max").unwrap_or(0),
            oom_kills: memory::oom_kills_v2(&events),
            cpu_usage_ns: cpu::usage_ns_v2(&fs::read(&dir, &name, "cpu.stat")?),
            pids_current: fs::read_u64(&dir, &name, "pids.current")?,
            pids_limit_hits: pids::limit_hits(&fs::read(&dir, &name, "pids.events")?),
        })
    }

    fn procs(&self, id: &str) -> Result<Vec<libc::pid_t>, CgroupError> {
        fs::procs(&self.dir(id), &self.name(id))
    }

    fn freeze(&self, id: &str, frozen: bool) -> Result<(), CgroupError> {
        let name = self.name(id);
        fs::write_and_wait(
            &self.dir(id),
            &name,
            ("cgroup.freeze", freezer::v2_value(frozen)),
            "cgroup.events",
            |t| freezer::v2_reached(t, frozen),
            FREEZE_WAIT,
        )?
        .map_err(|state| CgroupError::Freeze {
            op: if frozen { "freeze" } else { "thaw" },
            cgroup: name,
            state,
            waited: FREEZE_WAIT,
        })
    }

    fn remove(&self, id: &str, wait: Duration) -> Result<(), CgroupError> {
        fs::remove(&[self.dir(id)], &self.name(id), wait)
    }
}
