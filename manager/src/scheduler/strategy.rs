//! The strategies that rank the nodes a task fits on, each as one sortable number per
//! node (smaller is better).

use super::hash::scramble;
use super::node::{LOAD_SCALE, NodeInfo};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How the scheduler picks among the nodes a task fits on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Fewest tasks of the task's service, then fewest tasks, then most free resources.
    #[default]
    Spread,
    /// The most used node that still fits.
    Binpack,
    /// Any node that fits, chosen by the seed.
    Random,
}

/// The service label that overrides the cluster's strategy for one service.
pub const STRATEGY_LABEL: &str = "orch.strategy";

impl Strategy {
    /// The lowercase name (`spread`, `binpack`, `random`).
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Spread => "spread",
            Strategy::Binpack => "binpack",
            Strategy::Random => "random",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a strategy.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown strategy {0:?} (use spread, binpack or random)")]
pub struct UnknownStrategy(pub String);

impl FromStr for Strategy {
    type Err = UnknownStrategy;

    fn from_str(text: &str) -> Result<Strategy, UnknownStrategy> {
        match text.trim().to_ascii_lowercase().as_str() {
            "spread" => Ok(Strategy::Spread),
            "binpack" => Ok(Strategy::Binpack),
            "random" => Ok(Strategy::Random),
            _ => Err(UnknownStrategy(text.to_owned())),
        }
    }
}

// Bit layout of a rank, most significant first: soft affinities missed (4 bits), then
// the strategy's order in the remaining 60 bits.
const MISSES_SHIFT: u32 = 60;
const COUNT_BITS: u32 = 16;
const TASKS_BITS: u32 = 20;
const LOAD_BITS: u32 = 24;

fn capped(value: u64, bits: u32) -> u64 {
    value.min((1 << bits) - 1)
}

/// The rank of a node for a task under `strategy` (smaller is better): the node runs
/// `of_service` tasks of the task's service, and misses `soft_misses` of the task's
/// soft affinities. Ties are broken by node index by the caller. Under `spread`, the
/// rank never falls as tasks are placed; `random` draws from `seed`, which the caller
/// varies per service.
pub(super) fn rank(
    strategy: Strategy,
    node: &NodeInfo,
    index: u32,
    of_service: u32,
    soft_misses: u32,
    seed: u64,
) -> u64 {
    let misses = capped(u64::from(soft_misses), 4) << MISSES_SHIFT;
    let tasks = capped(u64::from(node.tasks), TASKS_BITS);
    let order = match strategy {
        Strategy::Spread => {
            (capped(u64::from(of_service), COUNT_BITS) << (TASKS_BITS + LOAD_BITS))
                | (tasks << LOAD_BITS)
                | capped(node.load(), LOAD_BITS)
        }
        Strategy::Binpack => {
            let idle = LOAD_SCALE - node.load().min(LOAD_SCALE);
            let room = ((1 << TASKS_BITS) - 1) - tasks;
            (idle << TASKS_BITS) | room
        }
        Strategy::Random => {
            // Drawn anew each time the service gets a task on the node; placements of
            // other services leave it be.
            scramble(seed ^ (u64::from(index) << 32) ^ u64::from(of_service)) >> 4
        }
    };
    misses | order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for strategy in [Strategy::Spread, Strategy::Binpack, Strategy::Random] {
            assert_eq!(strategy.to_string().parse::<Strategy>(), Ok(strategy));
            let json = serde_json::to_string(&strategy).expect("serializes");
            assert_eq!(json, format!("\"{strategy}\""));
            let back: Strategy = serde_json::from_str(&json).expect("deserializes");
            assert_eq!(back, strategy);
        }
        assert_eq!(" BinPack ".parse::<Strategy>(), Ok(Strategy::Binpack));
        let error = "pack".parse::<Strategy>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown strategy \"pack\" (use spread, binpack or random)"
        );
    }

    fn node(tasks: u32, cpu_used: u64) -> NodeInfo {
        let mut node = api::cluster::Node::default();
        node.description.cpus = 4;
        node.description.memory_bytes = 1 << 30;
        let mut info = NodeInfo::new(&node);
        info.tasks = tasks;
        info.cpu_used = cpu_used;
        info
    }

    #[test]
    fn spread_prefers_fewer_of_the_service_then_fewer_tasks_then_free_room() {
        let idle = node(0, 0);
        let busy = node(3, 0);
        let full = node(3, 3000);
        let rank = |n: &NodeInfo, of_service| rank(Strategy::Spread, n, 0, of_service, 0, 0);
        assert!(rank(&busy, 0) < rank(&idle, 1));
        assert!(rank(&idle, 0) < rank(&busy, 0));
        assert!(rank(&busy, 0) < rank(&full, 0));
    }

    #[test]
    fn binpack_prefers_the_most_used() {
        let rank = |n: &NodeInfo| rank(Strategy::Binpack, n, 0, 0, 0, 0);
        assert!(rank(&node(3, 3000)) < rank(&node(3, 0)));
        assert!(rank(&node(3, 0)) < rank(&node(1, 0)));
    }

    #[test]
    fn soft_affinities_come_first() {
        let idle = node(0, 0);
        let full = node(9, 3000);
        for strategy in [Strategy::Spread, Strategy::Binpack, Strategy::Random] {
            assert!(rank(strategy, &full, 0, 5, 0, 1) < rank(strategy, &idle, 1, 0, 1, 1));
        }
    }
}
