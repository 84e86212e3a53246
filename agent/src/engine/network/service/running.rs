//! Which containers run, as the container runtime reports it: a created or exited
//! container keeps its endpoints (a restart finds them again) but its names leave
//! every DNS table until it runs again.

use super::{NetError, NetworkService};
use std::collections::BTreeSet;
use std::sync::MutexGuard;

impl NetworkService {
    pub(super) fn stopped_lock(&self) -> MutexGuard<'_, BTreeSet<String>> {
        self.stopped.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Container `cid` runs (or not) now; the DNS tables change only when that is
    /// news, so calling this on every look at the container is cheap.
    pub fn set_running(&self, cid: &str, running: bool) -> Result<(), NetError> {
        let changed = {
            let mut stopped = self.stopped_lock();
            if running {
                stopped.remove(cid)
            } else {
                stopped.insert(cid.to_owned())
            }
        };
        if !changed {
            return Ok(());
        }
        let st = self.lock();
        self.refresh(&st)
    }
}
