//! Pure decisions about a container's life after start: whether and when to restart
//! it (restart policies with back-off), and its health from probe results. No clock
//! reads here: times are passed in.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// When a container is started again after it exits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "name")]
pub enum RestartPolicy {
    /// Never.
    #[default]
    No,
    /// After a non-zero exit, at most `max` times when given.
    OnFailure { max: Option<u32> },
    /// Always, unless stopped by hand.
    Always,
    /// Always, unless stopped by hand (also across engine restarts).
    UnlessStopped,
}

impl std::str::FromStr for RestartPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<RestartPolicy, String> {
        match s {
            "" | "no" => Ok(RestartPolicy::No),
            "always" => Ok(RestartPolicy::Always),
            "unless-stopped" => Ok(RestartPolicy::UnlessStopped),
            "on-failure" => Ok(RestartPolicy::OnFailure { max: None }),
            other => match other.strip_prefix("on-failure:") {
                Some(n) => n
                    .parse()
                    .map(|max| RestartPolicy::OnFailure { max: Some(max) })
                    .map_err(|_| format!("restart policy {s:?}: {n:?} is not a number of retries")),
                None => Err(format!(
                    "restart policy {s:?}: expected no, on-failure[:N], always or unless-stopped"
                )),
            },
        }
    }
}

/// What the engine remembers between restarts (in `restart.json`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartState {
    /// Restarts so far.
    pub count: u32,
    /// Stopped or killed through the API: policies leave it alone.
    pub manually_stopped: bool,
    /// The back-off before the next restart, in milliseconds.
    pub delay_ms: u64,
}

/// What to do with an exited container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing.
    Leave,
    /// Start it again after this delay.
    Restart(Duration),
}

/// First back-off, doubled on each quick exit up to [`MAX_DELAY`].
pub const FIRST_DELAY: Duration = Duration::from_millis(100);
/// The longest back-off.
pub const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run this long resets the back-off.
pub const STABLE_RUN: Duration = Duration::from_secs(10);

/// Decide about a container that exited with `exit_code` after running `ran_for`;
/// the new restart state to keep when it restarts.
pub fn decide(
    policy: RestartPolicy,
    exit_code: i32,
    ran_for: Duration,
    state: &RestartState,
) -> (Decision, RestartState) {
    let restart = !state.manually_stopped
        && match policy {
            RestartPolicy::No => false,
            RestartPolicy::OnFailure { max } => {
                exit_code != 0 && max.is_none_or(|m| state.count < m)
            }
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        };
    if !restart {
        return (Decision::Leave, state.clone());
    }
    let previous = Duration::from_millis(state.delay_ms);
    let delay = if ran_for >= STABLE_RUN || previous.is_zero() {
        FIRST_DELAY
    } else {
        (previous * 2).min(MAX_DELAY)
    };
    let next = RestartState {
        count: state.count + 1,
        manually_stopped: false,
        delay_ms: delay.as_millis() as u64,
    };
    (Decision::Restart(delay), next)
}

/// A container's health check, decided at create.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthConfig {
    /// The command line to run in the container (`CMD-SHELL` already expanded).
    pub test: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
    /// Between probes during the start period while not yet healthy (Docker's
    /// `--health-start-interval`, default 5 s); zero: `interval`.
    #[serde(default)]
    pub start_interval: Duration,
}

/// When the next probe is due after one at `since_start` into the container's life
/// that left it `status`: every `start_interval` during the start period while not
/// yet healthy, else every `interval`.
pub fn probe_interval(cfg: &HealthConfig, since_start: Duration, status: Health) -> Duration {
    if since_start < cfg.start_period && status == Health::Starting && !cfg.start_interval.is_zero()
    {
        cfg.start_interval
    } else {
        cfg.interval
    }
}

/// Health as Docker reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    #[default]
    Starting,
    Healthy,
    Unhealthy,
}

/// One probe's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// RFC 3339.
    pub start: String,
    pub exit_code: i32,
    /// The first KiB of its output.
    pub output: String,
}

/// Health state (in `health.json`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthState {
    pub status: Health,
    pub failing_streak: u32,
    /// The last five probes, oldest first.
    pub log: Vec<Probe>,
}

/// The health after `probe`, for a container started `since_start` ago.
pub fn record(
    cfg: &HealthConfig,
    state: &HealthState,
    probe: Probe,
    since_start: Duration,
) -> HealthState {
    let mut next = state.clone();
    if probe.exit_code == 0 {
        next.status = Health::Healthy;
        next.failing_streak = 0;
    } else if since_start >= cfg.start_period || state.status != Health::Starting {
        next.failing_streak += 1;
        if next.failing_streak >= cfg.retries.max(1) {
            next.status = Health::Unhealthy;
        }
    }
    next.log.push(probe);
    let extra = next.log.len().saturating_sub(5);
    next.log.drain(..extra);
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(count: u32, delay_ms: u64) -> RestartState {
        RestartState {
            count,
            manually_stopped: false,
            delay_ms,
        }
    }

    #[test]
    fn policies_parse_and_decide() {
        let p: RestartPolicy = "on-failure:2".parse().unwrap();
        assert_eq!(p, RestartPolicy::OnFailure { max: Some(2) });
        assert!("sometimes".parse::<RestartPolicy>().is_err());
        assert!("on-failure:x".parse::<RestartPolicy>().is_err());
        let quick = Duration::from_millis(10);
        assert_eq!(
            decide(p, 0, quick, &state(0, 0)).0,
            Decision::Leave,
            "success"
        );
        let (d, s1) = decide(p, 3, quick, &state(0, 0));
        assert_eq!(d, Decision::Restart(FIRST_DELAY));
        let (d, s2) = decide(p, 3, quick, &s1);
        assert_eq!(d, Decision::Restart(FIRST_DELAY * 2), "back-off doubles");
        assert_eq!(
            decide(p, 3, quick, &s2).0,
            Decision::Leave,
            "at most 2 restarts"
        );
        let stopped = RestartState {
            manually_stopped: true,
            ..state(0, 0)
        };
        assert_eq!(
            decide(RestartPolicy::Always, 0, quick, &stopped).0,
            Decision::Leave
        );
        let (d, _) = decide(RestartPolicy::Always, 0, STABLE_RUN, &state(9, 40_000));
        assert_eq!(
            d,
            Decision::Restart(FIRST_DELAY),
            "a long run resets the back-off"
        );
        let (d, _) = decide(RestartPolicy::Always, 1, quick, &state(9, 40_000));
        assert_eq!(d, Decision::Restart(MAX_DELAY));
    }

    #[test]
    fn health_follows_probes() {
        let cfg = HealthConfig {
            test: vec!["true".into()],
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            retries: 2,
            start_period: Duration::from_secs(5),
            start_interval: Duration::from_millis(500),
        };
        let probe = |code| Probe {
            start: String::new(),
            exit_code: code,
            output: String::new(),
        };
        let s = HealthState::default();
        let s = record(&cfg, &s, probe(1), Duration::from_secs(1));
        assert_eq!(
            (s.status, s.failing_streak),
            (Health::Starting, 0),
            "start period"
        );
        let s = record(&cfg, &s, probe(0), Duration::from_secs(2));
        assert_eq!(s.status, Health::Healthy);
        let s = record(&cfg, &s, probe(1), Duration::from_secs(3));
        assert_eq!((s.status, s.failing_streak), (Health::Healthy, 1));
        let s = record(&cfg, &s, probe(1), Duration::from_secs(4));
        assert_eq!(s.status, Health::Unhealthy);
        let mut s = s;
        for _ in 0..10 {
            s = record(&cfg, &s, probe(1), Duration::from_secs(9));
        }
        assert_eq!(s.log.len(), 5);
    }

    #[test]
    fn probes_come_every_start_interval_during_the_start_period_until_healthy() {
        let cfg = HealthConfig {
            test: vec!["true".into()],
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(1),
            retries: 3,
            start_period: Duration::from_secs(10),
            start_interval: Duration::from_secs(1),
        };
        let at = Duration::from_secs;
        assert_eq!(probe_interval(&cfg, at(0), Health::Starting), at(1));
        assert_eq!(probe_interval(&cfg, at(9), Health::Starting), at(1));
        assert_eq!(probe_interval(&cfg, at(3), Health::Healthy), at(30));
        assert_eq!(probe_interval(&cfg, at(10), Health::Starting), at(30));
        let unset = HealthConfig {
            start_interval: Duration::ZERO,
            ..cfg
        };
        assert_eq!(probe_interval(&unset, at(0), Health::Starting), at(30));
    }
}
