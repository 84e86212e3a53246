//! Freezing a cgroup (pause): v1 `freezer.state` (`FROZEN`, `THAWED`, with `FREEZING`
//! in between), v2 `cgroup.freeze` and the `frozen` key of `cgroup.events`.

/// What to write to v1 `freezer.state`.
pub fn v1_value(frozen: bool) -> &'static str {
    if frozen { "FROZEN" } else { "THAWED" }
}

/// Whether v1 `freezer.state` reached the wanted state.
pub fn v1_reached(state: &str, frozen: bool) -> bool {
    state.trim() == v1_value(frozen)
}

/// What to write to v2 `cgroup.freeze`.
pub fn v2_value(frozen: bool) -> &'static str {
    if frozen { "1" } else { "0" }
}

/// Whether v2 `cgroup.events` says the wanted state.
pub fn v2_reached(events: &str, frozen: bool) -> bool {
    super::fs::keyed(events, "frozen") == Some(u64::from(frozen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        assert!(v1_reached("FROZEN\n", true));
        assert!(!v1_reached("FREEZING\n", true));
        assert!(v1_reached("THAWED\n", false));
        assert!(v2_reached("populated 1\nfrozen 1\n", true));
        assert!(!v2_reached("populated 1\nfrozen 0\n", true));
        assert!(v2_reached("populated 1\nfrozen 0\n", false));
    }
}
