//! The registry client against a real registry: Debian's `docker-registry`
//! (distribution v2) on a loopback port with a temp storage directory.

use super::digest::Digest;
use super::manifest::{DOCKER_MANIFEST_LIST, OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, Platform};
use super::reference::Reference;
use super::registry::Transfer;
use super::registry::{ClientOptions, RegistryClient};
use super::store::ContentStore;
use crate::testing::proxy::CutProxy;
use crate::testing::registry::{
    HTPASSWD, Registry, start_registry, start_registry_with, start_registry_with_token,
};
use crate::testing::token::{PASSWORD, PUBLIC_REPO, TokenServer, USER};
use std::io::{Read, Write};
use std::path::PathBuf;

struct Store(ContentStore, PathBuf);

impl Store {
    fn new(tag: &str) -> Store {
        let p = std::env::temp_dir().join(format!("orch-regstore-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        Store(ContentStore::open(&p).unwrap(), p)
    }
    fn put(&self, bytes: &[u8]) -> Digest {
        let d = Digest::of(bytes);
        self.0
            .ingest(&d, Some(bytes.len() as u64), &mut &bytes[..])
            .unwrap();
        d
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

/// A one-layer image for `arch`; returns (manifest digest, manifest size, layer digest).
fn image(store: &Store, arch: &str) -> (Digest, usize, Digest) {
    let mut tar = tar::Builder::new(Vec::new());
    let content = format!("hello from {arch}\n");
    let mut h = tar::Header::new_gnu();
    h.set_path("hello.txt").unwrap();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append(&h, content.as_bytes()).unwrap();
    let raw = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).unwrap();
    let layer = gz.finish().unwrap();
    let layer_d = store.put(&layer);
    let config = format!(
        r#"{{"architecture":"{arch}","os":"linux","config":{{"Cmd":["cat","/hello.txt"]}},"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        Digest::of(&raw)
    );
    let config_d = store.put(config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{config_d}","size":{}}},"layers":[{{"mediaType":"{OCI_LAYER_GZIP}","digest":"{layer_d}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    );
    (store.put(manifest.as_bytes()), manifest.len(), layer_d)
}

#[tokio::test]
async fn push_then_pull_on_a_fresh_store() {
    let Some(reg) = start_registry("roundtrip") else {
        return;
    };
    let a = Store::new("push");
    let (manifest, _, layer) = image(&a, "amd64");
    let client = RegistryClient::new(ClientOptions::default()).unwrap();
    let r: Reference = format!("{}/orch-test/img:v1", reg.addr).parse().unwrap();
    assert_eq!(
        client.push(&r, &manifest, &a.0, &[], &()).await.unwrap(),
        manifest
    );
    // A second push finds every blob already there.
    assert!(!client.push_blob(&r, &layer, &a.0, &[], &()).await.unwrap());

    let b = Store::new("pull");
    let pulled = client
        .pull(&r, &b.0, &Platform::linux_amd64(), &())
        .await
        .unwrap();
    assert_eq!(
        pulled.digest, manifest,
        "registry digest differs from the pushed manifest"
    );
    assert_eq!(pulled.manifest_digest, manifest);
    for d in [&manifest, &pulled.manifest.config.digest, &layer] {
        b.0.open_verified(d).unwrap();
    }
    // By digest too.
    let by_digest: Reference = format!("{}/orch-test/img@{manifest}", reg.addr)
        .parse()
        .unwrap();
    let c = Store::new("pull-digest");
    assert_eq!(
        client
            .pull(&by_digest, &c.0, &Platform::linux_amd64(), &())
            .await
            .unwrap()
            .digest,
        manifest
    );
    // A tag that is not there is an error naming it.
    let missing: Reference = format!("{}/orch-test/img:nope", reg.addr).parse().unwrap();
    let e = client
        .pull(&missing, &c.0, &Platform::linux_amd64(), &())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("orch-test/img:nope") && e.contains("not found"),
        "{e}"
    );
}

#[tokio::test]
async fn manifest_list_selects_the_platform() {
    let Some(reg) = start_registry("list") else {
        return;
    };
    let a = Store::new("list-push");
    let (amd, amd_size, amd_layer) = image(&a, "amd64");
    let (arm, arm_size, arm_layer) = image(&a, "arm64");
    let list = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[
        {{"mediaType":"{OCI_MANIFEST}","digest":"{amd}","size":{amd_size},"platform":{{"architecture":"amd64","os":"linux"}}}},
        {{"mediaType":"{OCI_MANIFEST}","digest":"{arm}","size":{arm_size},"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}}]}}"#
    );
    let list_d = a.put(list.as_bytes());
    let client = RegistryClient::new(ClientOptions::default()).unwrap();
    let r: Reference = format!("{}/orch-test/multi:1", reg.addr).parse().unwrap();
    client.push(&r, &list_d, &a.0, &[], &()).await.unwrap();

    let b = Store::new("list-pull");
    let arm64 = Platform {
        architecture: "arm64".into(),
        ..Platform::linux_amd64()
    };
    let pulled = client.pull(&r, &b.0, &arm64, &()).await.unwrap();
    assert_eq!(pulled.digest, list_d);
    assert_eq!(pulled.manifest_digest, arm);
    assert!(b.0.contains(&arm_layer));
    assert!(
        !b.0.contains(&amd_layer),
        "pulled the other platform's layer"
    );
    let s390 = Platform {
        architecture: "s390x".into(),
        ..Platform::linux_amd64()
    };
    let e = client
        .pull(&r, &b.0, &s390, &())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no manifest for linux/s390x"), "{e}");
}

#[tokio::test]
async fn basic_auth_registry() {
    let Some(reg) = start_registry_with("auth", Some(HTPASSWD)) else {
        return;
    };
    let a = Store::new("auth-push");
    let (manifest, _, _) = image(&a, "amd64");
    let r: Reference = format!("{}/orch-test/private:1", reg.addr).parse().unwrap();
    let anonymous = RegistryClient::new(ClientOptions::default()).unwrap();
    let e = anonymous
        .push(&r, &manifest, &a.0, &[], &())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("wants a username and password"), "{e}");

    let with = |password: &str| {
        let mut opts = ClientOptions::default();
        let creds = super::registry::Credentials {
            username: "tester".into(),
            password: password.into(),
        };
        opts.credentials.insert(reg.addr.clone(), creds);
        RegistryClient::new(opts).unwrap()
    };
    let e = with("wrong")
        .push(&r, &manifest, &a.0, &[], &())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("credentials refused"), "{e}");
    let client = with("orch-secret");
    client.push(&r, &manifest, &a.0, &[], &()).await.unwrap();
    let b = Store::new("auth-pull");
    assert_eq!(
        client
            .pull(&r, &b.0, &Platform::linux_amd64(), &())
            .await
            .unwrap()
            .digest,
        manifest
    );
}

/// A layer of `len` bytes that do not compress, in a one-layer image; returns
/// (manifest digest, layer digest, layer bytes).
fn noise_image(store: &Store, len: usize) -> (Digest, Digest, Vec<u8>) {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let layer = store.put(&data);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer}"]}}}}"#
    );
    let config_d = store.put(config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{config_d}","size":{}}},"layers":[{{"mediaType":"{OCI_LAYER_GZIP}","digest":"{layer}","size":{len}}}]}}"#,
        config.len()
    );
    (store.put(manifest.as_bytes()), layer, data)
}

#[tokio::test]
async fn chunked_upload_cross_mount_and_resumed_download() {
    let Some(reg) = start_registry("chunks") else {
        return;
    };
    let a = Store::new("chunks-push");
    let (manifest, layer, data) = noise_image(&a, 300 * 1024);
    let client = RegistryClient::new(ClientOptions {
        upload_chunk: Some(64 * 1024),
        ..ClientOptions::default()
    })
    .unwrap();
    let steps = std::sync::Mutex::new(Vec::new());
    let record = |t: Transfer<'_>| {
        let step = match t {
            Transfer::Start { total, .. } => format!("start {total}"),
            Transfer::Bytes { current, .. } => format!("bytes {current}"),
            Transfer::Exists { .. } => "exists".into(),
            Transfer::Mounted { .. } => "mounted".into(),
            Transfer::Done { .. } => "done".into(),
        };
        steps.lock().unwrap().push(step);
    };
    let first: Reference = format!("{}/orch-test/chunks-a:1", reg.addr)
        .parse()
        .unwrap();
    client
        .push(&first, &manifest, &a.0, &[], &record)
        .await
        .unwrap();
    assert_eq!(
        *steps.lock().unwrap(),
        [
            "start 307200",
            "bytes 65536",
            "bytes 131072",
            "bytes 196608",
            "bytes 262144",
            "bytes 307200",
            "done"
        ],
        "five PATCH chunks, then the closing PUT"
    );

    // Another repository of the same registry mounts the blob instead of uploading it.
    steps.lock().unwrap().clear();
    let second: Reference = format!("{}/orch-test/chunks-b:1", reg.addr)
        .parse()
        .unwrap();
    let from = ["orch-test/chunks-a".to_owned()];
    client
        .push(&second, &manifest, &a.0, &from, &record)
        .await
        .unwrap();
    assert_eq!(*steps.lock().unwrap(), ["mounted"]);

    // A download broken off after 100,000 bytes resumes with a Range request.
    let proxy = CutProxy::start(&reg.addr, 100_000).unwrap();
    let via: Reference = format!("{}/orch-test/chunks-b:1", proxy.addr)
        .parse()
        .unwrap();
    let c = Store::new("chunks-pull");
    client
        .pull(&via, &c.0, &Platform::linux_amd64(), &())
        .await
        .unwrap();
    let mut got = Vec::new();
    c.0.open_verified(&layer)
        .unwrap()
        .read_to_end(&mut got)
        .unwrap();
    assert!(got == data, "the resumed blob has the pushed bytes");
    let ranged = proxy
        .requests()
        .iter()
        .any(|h| h.to_ascii_lowercase().contains("range: bytes=100000-"));
    assert!(ranged, "no Range request in {:#?}", proxy.requests());
}

#[tokio::test]
async fn concurrent_pulls_of_one_blob_download_it_once() {
    let Some(reg) = start_registry("once") else {
        return;
    };
    let a = Store::new("once-push");
    let (manifest, layer, _) = noise_image(&a, 2 << 20);
    let client = RegistryClient::new(ClientOptions::default()).unwrap();
    let r: Reference = format!("{}/orch-test/once:1", reg.addr).parse().unwrap();
    client.push(&r, &manifest, &a.0, &[], &()).await.unwrap();
    // A proxy that never cuts counts the requests.
    let counter = CutProxy::start(&reg.addr, u64::MAX).unwrap();
    let via: Reference = format!("{}/orch-test/once:1", counter.addr)
        .parse()
        .unwrap();
    let b = Store::new("once-pull");
    let amd64 = Platform::linux_amd64();
    let (x, y) = tokio::join!(
        client.pull(&via, &b.0, &amd64, &()),
        client.pull(&via, &b.0, &amd64, &())
    );
    assert_eq!(x.unwrap().manifest_digest, y.unwrap().manifest_digest);
    let gets = counter
        .requests()
        .iter()
        .filter(|h| h.starts_with(&format!("GET /v2/orch-test/once/blobs/{layer}")))
        .count();
    assert_eq!(gets, 1, "{:#?}", counter.requests());
}

/// A token service and a registry that trusts it; `None` without docker-registry.
fn token_registry(tag: &str) -> Option<(TokenServer, Registry)> {
    let tokens = TokenServer::start(tag).unwrap();
    let reg = start_registry_with_token(tag, &tokens.realm, &tokens.cert_pem)?;
    Some((tokens, reg))
}

/// A client with `password` for [`USER`] on `registry`, or anonymous.
fn client_as(registry: &str, password: Option<&str>) -> RegistryClient {
    let mut opts = ClientOptions::default();
    if let Some(password) = password {
        let creds = super::registry::Credentials {
            username: USER.into(),
            password: password.into(),
        };
        opts.credentials.insert(registry.to_owned(), creds);
    }
    RegistryClient::new(opts).unwrap()
}

#[tokio::test]
async fn bearer_token_registry_grants_by_scope() {
    let Some((tokens, reg)) = token_registry("bearer") else {
        return;
    };
    let a = Store::new("bearer-push");
    let (manifest, _, layer) = image(&a, "amd64");
    let public: Reference = format!("{}/{PUBLIC_REPO}:1", reg.addr).parse().unwrap();
    let private: Reference = format!("{}/orch-test/private:1", reg.addr).parse().unwrap();
    let amd64 = Platform::linux_amd64();

    // The tester pushes both repositories and pulls one back.
    let tester = client_as(&reg.addr, Some(PASSWORD));
    for r in [&public, &private] {
        let pushed = tester.push(r, &manifest, &a.0, &[], &()).await;
        assert_eq!(pushed.unwrap(), manifest, "registry log:\n{}", reg.log());
    }
    let b = Store::new("bearer-pull-tester");
    let pulled = tester.pull(&private, &b.0, &amd64, &()).await.unwrap();
    assert_eq!(pulled.digest, manifest);
    b.0.open_verified(&layer).unwrap();

    // Anyone pulls the public repository, with an anonymous token.
    let anonymous = client_as(&reg.addr, None);
    let c = Store::new("bearer-pull-anonymous");
    let pulled = anonymous.pull(&public, &c.0, &amd64, &()).await.unwrap();
    assert_eq!(pulled.digest, manifest);
    c.0.open_verified(&layer).unwrap();
    let anonymous_requests: Vec<_> = tokens
        .requests()
        .into_iter()
        .filter(|t| t.user.is_none())
        .collect();
    assert_eq!(anonymous_requests.len(), 1, "{anonymous_requests:#?}");
    assert_eq!(
        anonymous_requests[0].scopes,
        [format!("repository:{PUBLIC_REPO}:pull")]
    );

    // ... but neither pulls the private one nor pushes anywhere: the token it gets
    // grants nothing there, and the client says credentials are needed.
    let needs_login = "authentication failed: the registry wants a username and password";
    let e = anonymous
        .pull(&private, &c.0, &amd64, &())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(needs_login), "{e}");
    let again: Reference = format!("{}/{PUBLIC_REPO}:2", reg.addr).parse().unwrap();
    let e = anonymous
        .push(&again, &manifest, &a.0, &[], &())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(needs_login) && e.contains("/manifests/2"), "{e}");
    let refused_scope = tokens.requests().pop().unwrap();
    assert_eq!((refused_scope.user, refused_scope.status), (None, 200));
    assert!(
        refused_scope.scopes[0].contains("push"),
        "{:?}",
        refused_scope.scopes
    );

    // A wrong password gets no token at all (the token service answers 401).
    let e = client_as(&reg.addr, Some("wrong"))
        .push(&again, &manifest, &a.0, &[], &())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("credentials refused"), "{e}");
    assert!(e.contains(&tokens.realm), "names the token service: {e}");
    assert_eq!(tokens.requests().pop().unwrap().status, 401);
    // Nothing was tagged by the refused pushes.
    let e = tester
        .pull(&again, &c.0, &amd64, &())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not found"), "{e}");
}

#[tokio::test]
async fn bearer_login_checks_credentials() {
    let Some((tokens, reg)) = token_registry("bearer-login") else {
        return;
    };
    let client = client_as(&reg.addr, None);
    let creds = |password: &str| super::registry::Credentials {
        username: USER.into(),
        password: password.into(),
    };
    client.login(&reg.addr, &creds(PASSWORD)).await.unwrap();
    let e = client
        .login(&reg.addr, &creds("wrong"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("credentials refused"), "{e}");
    let statuses: Vec<_> = tokens
        .requests()
        .iter()
        .map(|t| (t.user.clone(), t.status))
        .collect();
    let tester = Some(USER.to_owned());
    assert_eq!(statuses, [(tester.clone(), 200), (tester, 401)]);
}

#[tokio::test]
async fn bearer_token_is_fetched_once_per_scope() {
    let Some((tokens, reg)) = token_registry("bearer-cache") else {
        return;
    };
    let a = Store::new("bearer-cache-push");
    let (amd, amd_size, _) = image(&a, "amd64");
    let (arm, arm_size, _) = image(&a, "arm64");
    let list = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[
        {{"mediaType":"{OCI_MANIFEST}","digest":"{amd}","size":{amd_size},"platform":{{"architecture":"amd64","os":"linux"}}}},
        {{"mediaType":"{OCI_MANIFEST}","digest":"{arm}","size":{arm_size},"platform":{{"architecture":"arm64","os":"linux"}}}}]}}"#
    );
    let list_d = a.put(list.as_bytes());
    // Through a counting proxy: two images' four blobs and three manifests go up.
    let counter = CutProxy::start(&reg.addr, u64::MAX).unwrap();
    let r: Reference = format!("{}/{PUBLIC_REPO}:1", counter.addr).parse().unwrap();
    client_as(&counter.addr, Some(PASSWORD))
        .push(&r, &list_d, &a.0, &[], &())
        .await
        .unwrap();
    let scopes = |user: Option<&str>| {
        let mut s: Vec<String> = tokens
            .requests()
            .into_iter()
            .filter(|t| t.user.as_deref() == user)
            .flat_map(|t| t.scopes)
            .map(|scope| {
                // The registry lists a scope's actions in no fixed order.
                let (resource, actions) = scope.rsplit_once(':').unwrap_or((&scope, ""));
                let mut actions: Vec<&str> = actions.split(',').collect();
                actions.sort_unstable();
                format!("{resource}:{}", actions.join(","))
            })
            .collect();
        s.sort();
        s
    };
    // The first check of a blob asks for pull, the first upload for pull and push;
    // every later request reuses those tokens.
    assert_eq!(
        scopes(Some(USER)),
        [
            format!("repository:{PUBLIC_REPO}:pull"),
            format!("repository:{PUBLIC_REPO}:pull,push")
        ]
    );
    let bearer = |heads: &[String]| {
        heads
            .iter()
            .filter(|h| h.to_ascii_lowercase().contains("authorization: bearer "))
            .count()
    };
    let pushes = counter.requests();
    assert!(bearer(&pushes) >= 10, "{pushes:#?}");

    // An anonymous pull: one token for the manifest, config and layer requests.
    let b = Store::new("bearer-cache-pull");
    let anonymous = client_as(&counter.addr, None);
    let amd64 = Platform::linux_amd64();
    assert_eq!(
        anonymous.pull(&r, &b.0, &amd64, &()).await.unwrap().digest,
        list_d
    );
    // A second pull into a fresh store needs no new token.
    let c = Store::new("bearer-cache-pull-again");
    anonymous.pull(&r, &c.0, &amd64, &()).await.unwrap();
    assert_eq!(scopes(None), [format!("repository:{PUBLIC_REPO}:pull")]);
    let pulls = &counter.requests()[pushes.len()..];
    let blob_gets = pulls
        .iter()
        .filter(|h| h.starts_with(&format!("GET /v2/{PUBLIC_REPO}/blobs/")))
        .count();
    assert_eq!(blob_gets, 4, "config and layer, twice: {pulls:#?}");
    // Only the very first request went without a token.
    assert_eq!(bearer(pulls), pulls.len() - 1, "{pulls:#?}");
}

#[tokio::test]
async fn bearer_token_from_an_untrusted_signer_is_refused() {
    // The registry trusts `trusted`'s certificate but sends clients to `other`,
    // whose tokens are well formed and signed, by a key it does not know.
    let trusted = TokenServer::start("bearer-trusted").unwrap();
    let other = TokenServer::start("bearer-other").unwrap();
    let Some(reg) = start_registry_with_token("bearer-untrusted", &other.realm, &trusted.cert_pem)
    else {
        return;
    };
    let a = Store::new("bearer-untrusted-push");
    let (manifest, _, _) = image(&a, "amd64");
    let r: Reference = format!("{}/{PUBLIC_REPO}:1", reg.addr).parse().unwrap();
    let e = client_as(&reg.addr, Some(PASSWORD))
        .push(&r, &manifest, &a.0, &[], &())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("credentials refused"), "{e}");
    assert_eq!(other.requests().last().map(|t| t.status), Some(200));
    let log = reg.log();
    assert!(log.contains("unable to verify certificate chain"), "{log}");
}
