//! cgroup v1: a hierarchy per controller (`<root>/memory`, `<root>/cpu,cpuacct` ...),
//! the container's cgroup created in each. Also the hybrid layout, whose cgroup2 mount
//! at `<root>/unified` holds no controllers.

use super::{
    CgroupError, Cgroups, Controller, Resources, Setting, Stats, Version, cpu, devices,
    display_name, freezer, fs, memory, pids,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a freeze or thaw may take.
const FREEZE_WAIT: Duration = Duration::from_secs(5);

/// The v1 hierarchies, one mount per controller of [`Controller::V1`].
#[derive(Debug)]
pub struct V1 {
    /// Indexed by `Controller as usize`.
    mounts: Vec<PathBuf>,
    parent: String,
}

impl V1 {
    /// Find each controller's hierarchy under `root` (a directory whose name, split at
    /// commas, includes the controller's).
    pub fn probe(root: &Path, parent: &str) -> Result<V1, CgroupError> {
        let missing = |c: Controller| CgroupError::Probe {
            root: root.to_owned(),
            controller: c.name(),
        };
        let mut found: Vec<Option<PathBuf>> = vec![None; Controller::V1.len()];
        let entries = std::fs::read_dir(root).map_err(|_| missing(Controller::Memory))?;
        let mut names: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        names.sort();
        for path in names {
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            for part in name.split(',') {
                if let Some(c) = Controller::V1.iter().find(|c| c.name() == part) {
                    found[*c as usize].get_or_insert_with(|| path.clone());
                }
            }
        }
        let mut mounts = Vec::with_capacity(found.len());
        for (c, m) in Controller::V1.iter().zip(found) {
            mounts.push(m.ok_or_else(|| missing(*c))?);
        }
        Ok(V1 {
            mounts,
            parent: parent.to_owned(),
        })
    }

    /// The cgroup of `id` in controller `c`'s hierarchy.
    pub fn dir(&self, c: Controller, id: &str) -> PathBuf {
        self.mounts[c as usize].join(&self.parent).join(id)
    }

    /// Its directories, one per distinct hierarchy.
    fn dirs(&self, id: &str) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = Controller::V1.iter().map(|c| self.dir(*c, id)).collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }

    fn settings(&self, id: &str, r: &Resources) -> Result<Vec<Setting>, CgroupError> {
        let err = |source| CgroupError::Resources {
            cgroup: self.name(id),
            source,
        };
        let mut s = memory::v1(r).map_err(err)?;
        s.extend(cpu::v1(r).map_err(err)?);
        s.extend(pids::settings(r));
        s.extend(devices::v1(r.devices, &r.device_rules));
        Ok(s)
    }

    fn create_and_write(&self, id: &str, settings: &[Setting]) -> Result<(), CgroupError> {
        let name = self.name(id);
        for dir in self.dirs(id) {
            std::fs::create_dir_all(&dir).map_err(|source| CgroupError::Create {
                cgroup: name.clone(),
                path: dir.clone(),
                source,
            })?;
        }
        for s in settings {
            let dir = self.dir(s.controller, id);
            if s.optional && !dir.join(s.file).exists() {
                continue;
            }
            fs::write(&dir, &name, s.file, &s.value)?;
        }
        Ok(())
    }
}

impl Cgroups for V1 {
    fn version(&self) -> Version {
        Version::V1
    }

    fn name(&self, id: &str) -> String {
        display_name(&self.parent, id)
    }

    fn create(&self, id: &str, resources: &Resources) -> Result<(), CgroupError> {
        let settings = self.settings(id, resources)?;
        self.create_and_write(id, &settings).inspect_err(|_| {
            let _ = self.remove(id, Duration::ZERO);
        })
    }

    fn add(&self, id: &str, pid: libc::pid_t) -> Result<(), CgroupError> {
        let name = self.name(id);
        self.dirs(id)
            .iter()
            .try_for_each(|d| fs::write(d, &name, "cgroup.procs", &pid.to_string()))
    }

    fn stats(&self, id: &str) -> Result<Stats, CgroupError> {
        let name = self.name(id);
        let mem = self.dir(Controller::Memory, id);
        let pids_dir = self.dir(Controller::Pids, id);
        let pids_limit_hits = if pids_dir.join("pids.events").exists() {
            pids::limit_hits(&fs::read(&pids_dir, &name, "pids.events")?)
        } else {
            0
        };
        Ok(Stats {
            memory_usage: fs::read_u64(&mem, &name, "memory.usage_in_bytes")?,
            memory_limit_hits: fs::read_u64(&mem, &name, "memory.failcnt")?,
            oom_kills: memory::oom_kills_v1(&fs::read(&mem, &name, "memory.oom_control")?),
            cpu_usage_ns: fs::read_u64(&self.dir(Controller::Cpuacct, id), &name, "cpuacct.usage")?,
            pids_current: fs::read_u64(&pids_dir, &name, "pids.current")?,
            pids_limit_hits,
        })
    }

    fn procs(&self, id: &str) -> Result<Vec<libc::pid_t>, CgroupError> {
        fs::procs(&self.dir(Controller::Freezer, id), &self.name(id))
    }

    fn freeze(&self, id: &str, frozen: bool) -> Result<(), CgroupError> {
        let name = self.name(id);
        let value = freezer::v1_value(frozen);
        fs::write_and_wait(
            &self.dir(Controller::Freezer, id),
            &name,
            ("freezer.state", value),
            "freezer.state",
            |t| freezer::v1_reached(t, frozen),
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
        fs::remove(&self.dirs(id), &self.name(id), wait)
    }
}
