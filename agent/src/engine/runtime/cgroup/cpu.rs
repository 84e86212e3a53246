//! CPU: `cpus` as a CFS quota over a 100 ms period, `cpu_shares` as v1 shares or the v2
//! weight (runc's conversion), and usage accounting.

use super::{Controller, ResourceError, Resources, Setting};

/// The CFS period Docker uses, microseconds.
pub const PERIOD_US: u64 = 100_000;

/// The quota for `cpus` CPUs over [`PERIOD_US`], microseconds (at least 1 ms).
pub fn quota(cpus: f64) -> Result<u64, ResourceError> {
    if !cpus.is_finite() || cpus < 0.01 {
        return Err(ResourceError::Cpus(cpus));
    }
    Ok((cpus * PERIOD_US as f64).round() as u64)
}

/// v1 shares (2..=262144) to the v2 weight (1..=10000), as runc converts; 0 is unset.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9_999) / 262_142
}

/// The v2 weight back to v1 shares; 0 is unset.
pub fn weight_to_shares(weight: u64) -> u64 {
    if weight == 0 {
        return 0;
    }
    let w = weight.clamp(1, 10_000);
    2 + ((w - 1) * 262_142) / 9_999
}

/// v1: `cpu.cfs_period_us` before `cpu.cfs_quota_us`, and `cpu.shares`.
pub fn v1(r: &Resources) -> Result<Vec<Setting>, ResourceError> {
    let c = Controller::Cpu;
    let mut s = Vec::new();
    if let Some(cpus) = r.cpus {
        s.push(Setting::new(c, "cpu.cfs_period_us", PERIOD_US));
        s.push(Setting::new(c, "cpu.cfs_quota_us", quota(cpus)?));
    }
    if let Some(shares) = r.cpu_shares.filter(|s| *s > 0) {
        s.push(Setting::new(c, "cpu.shares", shares.clamp(2, 262_144)));
    }
    Ok(s)
}

/// v2: `cpu.max` ("quota period") and `cpu.weight`.
pub fn v2(r: &Resources) -> Result<Vec<Setting>, ResourceError> {
    let c = Controller::Cpu;
    let mut s = Vec::new();
    if let Some(cpus) = r.cpus {
        s.push(Setting::new(
            c,
            "cpu.max",
            format!("{} {PERIOD_US}", quota(cpus)?),
        ));
    }
    if let Some(shares) = r.cpu_shares.filter(|s| *s > 0) {
        s.push(Setting::new(c, "cpu.weight", shares_to_weight(shares)));
    }
    Ok(s)
}

/// v2 CPU time in nanoseconds from `cpu.stat` (`usage_usec`).
pub fn usage_ns_v2(cpu_stat: &str) -> u64 {
    super::fs::keyed(cpu_stat, "usage_usec")
        .unwrap_or(0)
        .saturating_mul(1_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quotas() {
        for (cpus, want) in [(1.5, 150_000), (0.5, 50_000), (2.0, 200_000), (0.01, 1_000)] {
            assert_eq!(quota(cpus), Ok(want), "{cpus}");
        }
        for bad in [0.0, 0.001, -1.0, f64::NAN, f64::INFINITY] {
            assert!(quota(bad).is_err(), "{bad}");
        }
        let r = Resources {
            cpus: Some(1.5),
            cpu_shares: Some(512),
            ..Resources::default()
        };
        let files = |s: Vec<Setting>| s.into_iter().map(|s| (s.file, s.value)).collect::<Vec<_>>();
        assert_eq!(
            files(v1(&r).unwrap()),
            [
                ("cpu.cfs_period_us", "100000".to_string()),
                ("cpu.cfs_quota_us", "150000".into()),
                ("cpu.shares", "512".into())
            ]
        );
        assert_eq!(
            files(v2(&r).unwrap()),
            [
                ("cpu.max", "150000 100000".to_string()),
                ("cpu.weight", "20".into())
            ]
        );
    }

    #[test]
    fn shares_and_weights_like_runc() {
        for (shares, weight) in [
            (0, 0),
            (1, 1),
            (2, 1),
            (512, 20),
            (1024, 39),
            (2048, 79),
            (262_144, 10_000),
            (1_000_000, 10_000),
        ] {
            assert_eq!(shares_to_weight(shares), weight, "shares {shares}");
        }
        for (weight, shares) in [(0, 0), (1, 2), (39, 998), (100, 2597), (10_000, 262_144)] {
            assert_eq!(weight_to_shares(weight), shares, "weight {weight}");
        }
    }

    proptest! {
        #[test]
        fn weights_stay_in_range_and_nearly_round_trip(shares in 2u64..262_144) {
            let w = shares_to_weight(shares);
            prop_assert!((1..=10_000).contains(&w));
            prop_assert!(shares_to_weight(shares + 1) >= w, "monotonic");
            prop_assert!(w.abs_diff(shares_to_weight(weight_to_shares(w))) <= 1);
        }
    }

    #[test]
    fn usage() {
        assert_eq!(usage_ns_v2("usage_usec 1500\nuser_usec 1000\n"), 1_500_000);
    }
}
