//! A bearer-token service on loopback for a registry configured with `auth: token`
//! (distribution's token authentication): it answers `GET /token?scope=...&service=...`
//! with a JWT signed ES256 by a fresh self-signed certificate, which the registry
//! trusts as its `rootcertbundle` (the certificate rides in the token's `x5c`).
//!
//! Policy: user [`USER`] with password [`PASSWORD`] gets every action asked for;
//! anonymous callers get `pull` on [`PUBLIC_REPO`] and nothing else; any other
//! credentials are answered 401. Every request is recorded for tests to count.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `service` the registry names in its challenge and expects as `aud`.
pub const SERVICE: &str = "orch-test";
/// The `iss` of issued tokens, which the registry must trust.
pub const ISSUER: &str = "orch-test-issuer";
/// The one known user.
pub const USER: &str = "tester";
/// [`USER`]'s password.
pub const PASSWORD: &str = "orch-secret";
/// The repository anonymous callers may pull.
pub const PUBLIC_REPO: &str = "orch-test/public";

/// How long an issued token lives, in seconds.
const LIFETIME: u64 = 300;

/// One request the token service answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// The basic-auth user, `None` for an anonymous request.
    pub user: Option<String>,
    /// The `service` query parameter.
    pub service: Option<String>,
    /// The scopes asked for (each `scope` parameter, split on spaces).
    pub scopes: Vec<String>,
    /// The HTTP status answered: 200 with a token, 401 for refused credentials,
    /// 400 or 404 for a malformed request.
    pub status: u16,
}

/// The certificate and key that sign tokens.
struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    /// The certificate, DER, standard base64 (the `x5c` entry).
    x5c: String,
}

impl Signer {
    fn new() -> io::Result<(Signer, String)> {
        let err = |e: &dyn std::fmt::Display| io::Error::other(format!("token signer: {e}"));
        let key =
            rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| err(&e))?;
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| err(&e))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "orch-test token signer");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyCertSign,
        ];
        let cert = params.self_signed(&key).map_err(|e| err(&e))?;
        let rng = SystemRandom::new();
        let signing =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, key.serialized_der(), &rng)
                .map_err(|e| err(&e))?;
        let signer = Signer {
            key: signing,
            rng,
            x5c: STANDARD.encode(cert.der()),
        };
        Ok((signer, cert.pem()))
    }

    /// A compact JWS of `claims`, signed ES256, with the certificate in `x5c`.
    fn sign(&self, claims: &serde_json::Value) -> io::Result<String> {
        let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [self.x5c]});
        let mut jwt = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self
            .key
            .sign(&self.rng, jwt.as_bytes())
            .map_err(|e| io::Error::other(format!("sign a token: {e}")))?;
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(sig.as_ref()));
        Ok(jwt)
    }
}

/// A running token service and the PEM of its signing certificate; stops and
/// removes its directory on drop.
pub struct TokenServer {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// `http://127.0.0.1:PORT/token`, the registry's `realm`.
    pub realm: String,
    /// The signing certificate (PEM), the registry's `rootcertbundle`.
    pub cert_pem: PathBuf,
    dir: PathBuf,
    requests: Arc<Mutex<Vec<TokenRequest>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TokenServer {
    /// Start a token service on a free loopback port; `tag` names its temp directory.
    pub fn start(tag: &str) -> io::Result<TokenServer> {
        let (signer, pem) = Signer::new()?;
        let dir = std::env::temp_dir().join(format!("orch-token-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let cert_pem = dir.join("token-cert.pem");
        std::fs::write(&cert_pem, pem)?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?.to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (reqs, halt) = (requests.clone(), stop.clone());
        let signer = Arc::new(signer);
        let serial = Arc::new(AtomicU64::new(0));
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (reqs, signer, serial) = (reqs.clone(), signer.clone(), serial.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &signer, &serial, &reqs);
                });
            }
        });
        Ok(TokenServer {
            realm: format!("http://{addr}/token"),
            addr,
            cert_pem,
            dir,
            requests,
            stop,
            thread: Some(thread),
        })
    }

    /// The requests answered so far, in order.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The actions granted on `scope` (`repository:NAME:ACTIONS`) to `user`.
fn grant(user: Option<&str>, scope: &str) -> Option<serde_json::Value> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let asked = actions.split(',').filter(|a| !a.is_empty());
    let granted: Vec<&str> = match user {
        Some(_) => asked.collect(),
        None if kind == "repository" && name == PUBLIC_REPO => {
            asked.filter(|a| *a == "pull").collect()
        }
        None => Vec::new(),
    };
    Some(serde_json::json!({"type": kind, "name": name, "actions": granted}))
}

/// The user of a `Basic` authorization value: `Ok(None)` without one, `Err` for
/// credentials other than [`USER`]/[`PASSWORD`].
fn authenticate(authorization: Option<&str>) -> Result<Option<String>, Option<String>> {
    let Some(value) = authorization else {
        return Ok(None);
    };
    let decoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let Some((user, password)) = decoded.as_deref().and_then(|s| s.split_once(':')) else {
        return Err(None);
    };
    if user == USER && password == PASSWORD {
        Ok(Some(user.to_owned()))
    } else {
        Err(Some(user.to_owned()))
    }
}

/// Answer one request on `conn`, then close it.
fn serve(
    conn: TcpStream,
    signer: &Signer,
    serial: &AtomicU64,
    requests: &Mutex<Vec<TokenRequest>>,
) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let target = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut authorization = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.trim().eq_ignore_ascii_case("authorization")
        {
            authorization = Some(v.trim().to_owned());
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut service = None;
    let mut scopes = Vec::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "service" => service = Some(v.into_owned()),
            "scope" => scopes.extend(v.split_whitespace().map(str::to_owned)),
            _ => {}
        }
    }
    let auth = authenticate(authorization.as_deref());
    let user = match &auth {
        Ok(u) | Err(u) => u.clone(),
    };
    let (status, body) = if path != "/token" {
        (404, r#"{"errors":[{"code":"NOT_FOUND"}]}"#.to_owned())
    } else if service.as_deref() != Some(SERVICE) {
        (400, r#"{"errors":[{"code":"UNKNOWN_SERVICE"}]}"#.to_owned())
    } else if auth.is_err() {
        (401, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#.to_owned())
    } else {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let access: Vec<_> = scopes
            .iter()
            .filter_map(|s| grant(user.as_deref(), s))
            .collect();
        let claims = serde_json::json!({
            "iss": ISSUER,
            "sub": user.clone().unwrap_or_default(),
            "aud": SERVICE,
            "exp": now + LIFETIME,
            "nbf": now.saturating_sub(1),
            "iat": now,
            "jti": format!("orch-test-{}", serial.fetch_add(1, Ordering::SeqCst)),
            "access": access,
        });
        let token = signer.sign(&claims)?;
        let body = serde_json::json!({"token": token, "expires_in": LIFETIME});
        (200, body.to_string())
    };
    requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(TokenRequest {
            user,
            service,
            scopes,
            status,
        });
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    let challenge = if status == 401 {
        "WWW-Authenticate: Basic realm=\"orch-test-token\"\r\n"
    } else {
        ""
    };
    let mut out = reader.into_inner();
    write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n{challenge}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()
}
