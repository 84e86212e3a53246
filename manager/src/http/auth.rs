//! Who calls and whether they may: the daemon puts a [`Caller`] into each request's
//! extensions (from the TLS client certificate or the unix socket); [`authenticate`]
//! lets local callers and managers through, turns workers away (403) and asks everyone
//! else for a bearer token from the [`Tokens`] set (401).

use super::ApiState;
use super::error::HttpError;
use api::cluster::NodeRole;
use api::error::ErrorCode;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ring::digest::{SHA256, digest};
use std::sync::{Arc, RwLock, RwLockReadGuard};

/// Who sent a request, as the daemon established it.
#[derive(Clone, Debug)]
pub enum Caller {
    /// The local unix socket (protected by file permissions).
    Local,
    /// A node with a certificate signed by the cluster CA.
    Node { id: String, role: NodeRole },
    /// Nobody known: needs a bearer token. A request without a `Caller` is this.
    Anonymous,
}

/// The accepted bearer tokens, kept as SHA-256 digests (ring) and compared in constant
/// time.
/// Replaceable at run time (rotation) through [`Tokens::replace`].
#[derive(Debug, Default)]
pub struct Tokens {
    digests: RwLock<Vec<[u8; 32]>>,
}

fn sha256(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    out
}

/// Compare two digests without stopping at the first difference (ring's helper for
/// this is deprecated). Comparing digests, not tokens, already hides the token's bytes.
fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

impl Tokens {
    /// A set accepting each of `tokens`.
    pub fn new<I, S>(tokens: I) -> Tokens
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let set = Tokens::default();
        set.replace(tokens);
        set
    }

    /// Accept exactly `tokens` from now on (empty tokens are ignored: they would match
    /// a bare `Bearer`).
    pub fn replace<I, S>(&self, tokens: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let digests: Vec<[u8; 32]> = tokens
            .into_iter()
            .filter(|t| !t.as_ref().is_empty())
            .map(|t| sha256(t.as_ref()))
            .collect();
        *self.digests.write().unwrap_or_else(|e| e.into_inner()) = digests;
    }

    /// Accept exactly the tokens whose SHA-256 digests (lowercase hex) are given, as the
    /// cluster record keeps them; malformed digests are skipped.
    pub fn replace_digests<I, S>(&self, digests: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let digests: Vec<[u8; 32]> = digests
            .into_iter()
            .filter_map(|hex| {
                let bytes = data_encoding::HEXLOWER_PERMISSIVE
                    .decode(hex.as_ref().as_bytes())
                    .ok()?;
                <[u8; 32]>::try_from(bytes.as_slice()).ok()
            })
            .collect();
        *self.digests.write().unwrap_or_else(|e| e.into_inner()) = digests;
    }

    fn read(&self) -> RwLockReadGuard<'_, Vec<[u8; 32]>> {
        // Digests are replaced whole: a panicked writer left a consistent list.
        self.digests.read().unwrap_or_else(|e| e.into_inner())
    }

    /// `true` when `token` is one of the set. Every digest is compared, in constant
    /// time, so the answer's timing says nothing about which bytes matched.
    pub fn accepts(&self, token: &str) -> bool {
        let presented = sha256(token);
        self.read()
            .iter()
            .fold(false, |found, known| same_digest(known, &presented) | found)
    }
}

/// Why a request is turned away; `None`: it may go on.
pub fn refusal(
    caller: &Caller,
    authorization: Option<&[u8]>,
    tokens: &Tokens,
) -> Option<HttpError> {
    match caller {
        Caller::Local
        | Caller::Node {
            role: NodeRole::Manager,
            ..
        } => None,
        Caller::Node {
            id,
            role: NodeRole::Worker,
        } => Some(
            HttpError::new(
                ErrorCode::PermissionDenied,
                format!("node {id} is a worker: workers may not use the control API"),
            )
            .with("node", id.clone()),
        ),
        Caller::Anonymous => {
            let Some(value) = authorization else {
                return Some(HttpError::new(
                    ErrorCode::Unauthorized,
                    "no credentials: send `Authorization: Bearer <token>` or a client certificate of the cluster",
                ));
            };
            let token = std::str::from_utf8(value)
                .ok()
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(str::trim);
            match token {
                Some(token) if tokens.accepts(token) => None,
                Some(_) => Some(HttpError::new(
                    ErrorCode::Unauthorized,
                    "the bearer token was refused",
                )),
                None => Some(HttpError::new(
                    ErrorCode::Unauthorized,
                    "the Authorization header is not `Bearer <token>`",
                )),
            }
        }
    }
}

/// Who the daemon says sent `request`, and the `Authorization` header it carries.
pub fn credentials(request: &Request) -> (Caller, Option<&header::HeaderValue>) {
    let caller = request
        .extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or(Caller::Anonymous);
    (caller, request.headers().get(header::AUTHORIZATION))
}

/// The authentication middleware of every API route.
pub async fn authenticate(
    State(api): State<Arc<ApiState>>,
    request: Request,
    next: Next,
) -> Response {
    let (caller, authorization) = credentials(&request);
    match refusal(&caller, authorization.map(|v| v.as_bytes()), &api.tokens) {
        Some(e) => e.into_response(),
        None => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_themselves() {
        let tokens = Tokens::new(["s3cret", ""]);
        assert!(tokens.accepts("s3cret"));
        assert!(!tokens.accepts("s3cre"));
        assert!(!tokens.accepts(""));
        tokens.replace(["other"]);
        assert!(!tokens.accepts("s3cret"));
        assert!(tokens.accepts("other"));
    }

    #[test]
    fn callers_are_sorted_out() {
        let tokens = Tokens::new(["t"]);
        assert!(refusal(&Caller::Local, None, &tokens).is_none());
        let manager = Caller::Node {
            id: "m1".into(),
            role: NodeRole::Manager,
        };
        assert!(refusal(&manager, None, &tokens).is_none());
        let worker = Caller::Node {
            id: "w1".into(),
            role: NodeRole::Worker,
        };
        let code = |e: Option<HttpError>| e.map(|e| e.0.code);
        assert_eq!(
            code(refusal(&worker, Some(b"Bearer t"), &tokens)),
            Some(ErrorCode::PermissionDenied)
        );
        assert_eq!(
            code(refusal(&Caller::Anonymous, None, &tokens)),
            Some(ErrorCode::Unauthorized)
        );
        assert_eq!(
            code(refusal(&Caller::Anonymous, Some(b"Bearer x"), &tokens)),
            Some(ErrorCode::Unauthorized)
        );
        assert_eq!(
            code(refusal(&Caller::Anonymous, Some(b"Basic dDp0"), &tokens)),
            Some(ErrorCode::Unauthorized)
        );
        assert!(refusal(&Caller::Anonymous, Some(b"Bearer t"), &tokens).is_none());
    }
}
