//! Memory: limit, reservation and swap, Docker's rules, as settings for v1
//! (`memory.limit_in_bytes`, `memory.soft_limit_in_bytes`, `memory.memsw.limit_in_bytes`)
//! and v2 (`memory.max`, `memory.low`, `memory.swap.max`), and the OOM counters.

use super::{Controller, ResourceError, Resources, Setting};

/// Docker's smallest memory limit.
pub const MIN_LIMIT: u64 = 6 * 1024 * 1024;

/// The memory+swap total to apply: `None` leaves the kernel's (unlimited); `Some(-1)`
/// is explicitly unlimited; unset with a limit is twice the limit (Docker). `swap` 0 is
/// unset, as in Docker.
pub fn swap_total(r: &Resources) -> Result<Option<i64>, ResourceError> {
    if let Some(m) = r.memory {
        if m < MIN_LIMIT {
            return Err(ResourceError::MemoryTooSmall(m));
        }
        if let Some(res) = r.memory_reservation.filter(|res| *res > m) {
            return Err(ResourceError::ReservationAboveLimit {
                reservation: res,
                limit: m,
            });
        }
    }
    match (r.memory, r.memory_swap.filter(|s| *s != 0)) {
        (_, Some(-1)) => Ok(Some(-1)),
        (None, Some(s)) => Err(ResourceError::SwapWithoutMemory(s)),
        (Some(m), Some(s)) if s < 0 || (s as u64) < m => {
            Err(ResourceError::SwapBelowMemory { swap: s, limit: m })
        }
        (Some(_), Some(s)) => Ok(Some(s)),
        (Some(m), None) => Ok(Some(m.saturating_mul(2).min(i64::MAX as u64) as i64)),
        (None, None) => Ok(None),
    }
}

/// v1 settings, in an order a fresh cgroup accepts (the limit before memsw, which must
/// not be below it). The default swap is optional: skipped without swap accounting.
pub fn v1(r: &Resources) -> Result<Vec<Setting>, ResourceError> {
    let swap = swap_total(r)?;
    let mut s = Vec::new();
    let m = Controller::Memory;
    if let Some(limit) = r.memory {
        s.push(Setting::new(m, "memory.limit_in_bytes", limit));
    }
    if let Some(res) = r.memory_reservation {
        s.push(Setting::new(m, "memory.soft_limit_in_bytes", res));
    }
    if let Some(total) = swap {
        s.push(Setting {
            optional: r.memory_swap.is_none(),
            ..Setting::new(m, "memory.memsw.limit_in_bytes", total)
        });
    }
    Ok(s)
}

/// v2 settings: `memory.swap.max` is swap alone (the total less the limit).
pub fn v2(r: &Resources) -> Result<Vec<Setting>, ResourceError> {
    let swap = swap_total(r)?;
    let mut s = Vec::new();
    let m = Controller::Memory;
    if let Some(limit) = r.memory {
        s.push(Setting::new(m, "memory.max", limit));
    }
    if let Some(res) = r.memory_reservation {
        s.push(Setting::new(m, "memory.low", res));
    }
    match (swap, r.memory) {
        (Some(-1), _) => s.push(Setting::new(m, "memory.swap.max", "max")),
        (Some(total), Some(limit)) => s.push(Setting {
            optional: r.memory_swap.is_none(),
            ..Setting::new(m, "memory.swap.max", (total as u64).saturating_sub(limit))
        }),
        _ => {}
    }
    Ok(s)
}

/// OOM kills in v1 `memory.oom_control` (`oom_kill N`, kernel 4.13+).
pub fn oom_kills_v1(oom_control: &str) -> u64 {
    super::fs::keyed(oom_control, "oom_kill").unwrap_or(0)
}

/// OOM kills in v2 `memory.events`.
pub fn oom_kills_v2(events: &str) -> u64 {
    super::fs::keyed(events, "oom_kill").unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn res(memory: Option<u64>, reservation: Option<u64>, swap: Option<i64>) -> Resources {
        Resources {
            memory,
            memory_reservation: reservation,
            memory_swap: swap,
            ..Resources::default()
        }
    }

    /// (file, value, optional)
    type Written = (&'static str, String, bool);

    fn files(s: Vec<Setting>) -> Vec<Written> {
        s.into_iter()
            .map(|s| (s.file, s.value, s.optional))
            .collect()
    }

    #[test]
    fn v1_and_v2_values() {
        let m64 = (64 * MIB).to_string();
        let cases: Vec<(Resources, Vec<Written>, Vec<Written>)> = vec![
            (res(None, None, None), vec![], vec![]),
            (
                res(Some(64 * MIB), None, None),
                vec![
                    ("memory.limit_in_bytes", m64.clone(), false),
                    ("memory.memsw.limit_in_bytes", (128 * MIB).to_string(), true),
                ],
                vec![
                    ("memory.max", m64.clone(), false),
                    ("memory.swap.max", m64.clone(), true),
                ],
            ),
            (
                res(Some(64 * MIB), Some(32 * MIB), Some(96 * MIB as i64)),
                vec![
                    ("memory.limit_in_bytes", m64.clone(), false),
                    ("memory.soft_limit_in_bytes", (32 * MIB).to_string(), false),
                    ("memory.memsw.limit_in_bytes", (96 * MIB).to_string(), false),
                ],
                vec![
                    ("memory.max", m64.clone(), false),
                    ("memory.low", (32 * MIB).to_string(), false),
                    ("memory.swap.max", (32 * MIB).to_string(), false),
                ],
            ),
            (
                res(Some(64 * MIB), None, Some(-1)),
                vec![
                    ("memory.limit_in_bytes", m64.clone(), false),
                    ("memory.memsw.limit_in_bytes", "-1".into(), false),
                ],
                vec![
                    ("memory.max", m64.clone(), false),
                    ("memory.swap.max", "max".into(), false),
                ],
            ),
            (
                res(None, Some(32 * MIB), None),
                vec![("memory.soft_limit_in_bytes", (32 * MIB).to_string(), false)],
                vec![("memory.low", (32 * MIB).to_string(), false)],
            ),
        ];
        for (r, want1, want2) in cases {
            assert_eq!(files(v1(&r).unwrap()), want1, "v1 {r:?}");
            assert_eq!(files(v2(&r).unwrap()), want2, "v2 {r:?}");
        }
    }

    #[test]
    fn docker_rejections() {
        let e = |r| v1(&r).unwrap_err();
        assert_eq!(
            e(res(Some(MIB), None, None)),
            ResourceError::MemoryTooSmall(MIB)
        );
        assert!(matches!(
            e(res(Some(64 * MIB), Some(65 * MIB), None)),
            ResourceError::ReservationAboveLimit { .. }
        ));
        assert!(matches!(
            e(res(Some(64 * MIB), None, Some(32 * MIB as i64))),
            ResourceError::SwapBelowMemory { .. }
        ));
        assert_eq!(
            e(res(None, None, Some(5))),
            ResourceError::SwapWithoutMemory(5)
        );
    }

    #[test]
    fn oom_counters() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(oom_kills_v1(v1), 2);
        assert_eq!(oom_kills_v1("oom_kill_disable 0\nunder_oom 0\n"), 0);
        let v2 = "low 0\nhigh 0\nmax 17\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(oom_kills_v2(v2), 1);
    }
}
