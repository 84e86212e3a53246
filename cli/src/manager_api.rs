//! A client of one manager's REST API, found from `--host`/`ORCH_HOST` (with the saved
//! context's CA and token), else the saved context, else the local manager's
//! root-only socket.

use crate::context::Context as CliContext;
use crate::manager_cmd::DEFAULT_SOCKET;
use anyhow::{Context, bail};
use api::error::ErrorEnvelope;
use clap::Args;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Where the manager is (`--host` is shared by every cluster command).
#[derive(Args, Clone)]
pub struct HostArgs {
    /// A manager's `host:port` (default: the saved context, else the local socket).
    #[arg(long, env = "ORCH_HOST", value_name = "HOST:PORT", global = true)]
    pub host: Option<String>,
}

/// A client of one manager's REST API.
pub struct ManagerApi {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl ManagerApi {
    pub fn connect(host: &HostArgs) -> anyhow::Result<ManagerApi> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let context = CliContext::load()?;
        let remote = host
            .host
            .clone()
            .map(|h| (h, context.clone()))
            .or_else(|| context.clone().map(|c| (c.host.clone(), Some(c))));
        match remote {
            Some((addr, Some(context))) => {
                let ca = manager::ca::CaCert::from_pem(&context.ca_cert_pem)
                    .context("the saved context's CA certificate")?;
                let mut tls = manager::ca::pinned_client_config(ca.digest())?;
                tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
                let http = reqwest::Client::builder()
                    .tls_backend_preconfigured(tls)
                    .connect_timeout(std::time::Duration::from_secs(5))
                    .build()?;
                Ok(ManagerApi {
                    http,
                    base: format!("https://{addr}"),
                    token: Some(context.token),
                })
            }
            Some((addr, None)) => bail!(
                "no saved context with the CA certificate and token for {addr}: run the command on a manager, or copy {} from one",
                crate::context::path().display()
            ),
            None => {
                let http = reqwest::Client::builder()
                    .unix_socket(DEFAULT_SOCKET)
                    .tls_certs_only([])
                    .build()?;
                Ok(ManagerApi {
                    http,
                    base: "http://manager".to_owned(),
                    token: None,
                })
            }
        }
    }

    /// A request without a body.
    pub async fn call<T: DeserializeOwned>(&self, method: Method, path: &str) -> anyhow::Result<T> {
        self.send(method, path, None::<&()>).await
    }

    /// A request with a JSON body; a refusal is an error with the API's message.
    pub async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> anyhow::Result<T> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(body);
        }
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let answer = self.answer(req).await?;
        let bytes = answer.bytes().await?;
        if bytes.is_empty() {
            return serde_json::from_slice(b"null").context("empty answer");
        }
        serde_json::from_slice(&bytes).with_context(|| format!("decode the answer of {path}"))
    }

    /// A `GET` whose answer is read as it streams (logs, events); a refusal is an
    /// error with the API's message.
    pub async fn stream(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        self.answer(req).await
    }

    /// Sends `req`; a refusal is an error with the API's message.
    async fn answer(&self, req: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let answer = req.send().await.with_context(|| {
            format!(
                "cannot reach the manager at {} (is `orch manager` running? pick one with --host or ORCH_HOST)",
                self.base
            )
        })?;
        let status = answer.status();
        if status.is_success() {
            return Ok(answer);
        }
        let bytes = answer.bytes().await?;
        match serde_json::from_slice::<ErrorEnvelope>(&bytes) {
            Ok(e) => Err(anyhow::Error::new(e.error)),
            Err(_) => bail!("HTTP {status}: {}", String::from_utf8_lossy(&bytes)),
        }
    }
}

/// Whether `error` is the manager saying "no such object".
pub fn is_not_found(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<api::error::ApiError>()
        .is_some_and(|e| e.code == api::error::ErrorCode::NotFound)
}

/// A list answer of the API (`{"version", "items"}`).
#[derive(Deserialize)]
pub struct List<T> {
    pub items: Vec<T>,
}

/// A single-threaded runtime for a command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")
}
