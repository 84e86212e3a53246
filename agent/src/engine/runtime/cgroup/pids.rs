//! Pids: the `pids.max` limit (same file on v1 and v2) and its counters.

use super::{Controller, Resources, Setting};

/// `pids.max` when a positive limit is set (zero or negative is unlimited: the
/// kernel's default, nothing written).
pub fn settings(r: &Resources) -> Vec<Setting> {
    r.pids_limit
        .filter(|n| *n > 0)
        .map(|n| Setting::new(Controller::Pids, "pids.max", n))
        .into_iter()
        .collect()
}

/// Forks refused by the limit, from `pids.events` (`max N`).
pub fn limit_hits(events: &str) -> u64 {
    super::fs::keyed(events, "max").unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        let r = |n| Resources {
            pids_limit: n,
            ..Resources::default()
        };
        assert_eq!(settings(&r(Some(20)))[0].value, "20");
        assert!(settings(&r(Some(0))).is_empty());
        assert!(settings(&r(Some(-1))).is_empty());
        assert!(settings(&r(None)).is_empty());
        assert_eq!(limit_hits("max 81\n"), 81);
    }
}
