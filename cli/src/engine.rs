//! Reaching the engine: the `--engine` endpoint and a runtime for async calls.

use anyhow::Context;
use api::client::{DEFAULT_ENGINE, EngineClient};

/// The client of the engine `endpoint` names (`--engine`, `ORCH_ENGINE`, or the default).
pub fn client(endpoint: Option<&str>) -> anyhow::Result<EngineClient> {
    Ok(EngineClient::new(endpoint.unwrap_or(DEFAULT_ENGINE))?)
}

/// Run `fut` to completion on a single-threaded runtime.
pub fn block_on<T>(fut: impl std::future::Future<Output = T>) -> anyhow::Result<T> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let out = rt.block_on(fut);
    // A read of stdin may still block a thread of the runtime: do not wait for it.
    rt.shutdown_background();
    Ok(out)
}
