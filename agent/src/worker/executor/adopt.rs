//! What an executor finds on the engine when it starts: the containers of tasks (by
//! their `orch.task` label), which it takes over without restarting them, and the
//! cluster networks it made before (by [`NETWORK_LABEL`]); and, before each
//! reconcile, the named volumes and their users.

use super::ExecutorError;
use super::reconcile::{LocalNetwork, NETWORK_LABEL};
use super::spec::TASK_LABEL;
use api::client::EngineClient;
use api::error::ErrorCode;
use std::collections::BTreeMap;

/// The task containers on the engine: task id -> container id. Of two containers of
/// one task (which the executor does not make), the newer is kept.
pub async fn containers(engine: &EngineClient) -> Result<BTreeMap<String, String>, ExecutorError> {
    let all = engine
        .containers(true)
        .await
        .map_err(ExecutorError::engine("list containers"))?;
    let mut found: BTreeMap<String, (String, String)> = BTreeMap::new();
    for c in all {
        let detail = match engine.container(&c.id).await {
            Ok(d) => d,
            // Removed since the list.
            Err(e) if e.code() == Some(ErrorCode::NotFound) => continue,
            Err(e) => return Err(ExecutorError::engine(format!("inspect container {}", c.id))(e)),
        };
        let Some(task) = detail.labels.get(TASK_LABEL) else {
            continue;
        };
        let newer = found
            .get(task)
            .is_none_or(|(created, _)| *created < c.created);
        if newer {
            found.insert(task.clone(), (c.created.clone(), c.id.clone()));
        }
    }
    Ok(found.into_iter().map(|(t, (_, id))| (t, id)).collect())
}

/// The named volumes on the engine, by name, with how many containers mount each.
pub async fn volumes(engine: &EngineClient) -> Result<BTreeMap<String, usize>, ExecutorError> {
    let all = engine
        .volumes()
        .await
        .map_err(ExecutorError::engine("list volumes"))?;
    Ok(all.into_iter().map(|v| (v.name, v.used_by.len())).collect())
}

/// The cluster networks on the engine, by name.
pub async fn networks(
    engine: &EngineClient,
) -> Result<BTreeMap<String, LocalNetwork>, ExecutorError> {
    let all = engine
        .networks()
        .await
        .map_err(ExecutorError::engine("list networks"))?;
    Ok(all
        .into_iter()
        .filter(|n| n.labels.contains_key(NETWORK_LABEL))
        .map(|n| {
            let local = LocalNetwork {
                subnet: n.subnet,
                vni: n.vni,
                endpoints: n.endpoints.len(),
            };
            (n.name, local)
        })
        .collect())
}
