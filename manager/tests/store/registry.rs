//! The cluster registry over real TLS on 127.0.0.1, with two managers: an image is
//! pushed to one in chunks (the distribution API as clients speak it) and pulled
//! through the other, which fetches the blobs it lacks from its peer.

use crate::common::TempDir;
use crate::daemon::start;
use manager::ca::{CaCert, NodeIdentity, pinned_client_config};
use manager::server::{Manager, client, node_http_client};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

/// Pseudo-random bytes (a layer nobody can compress away).
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn digest(data: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    format!("sha256:{}", data_encoding::HEXLOWER.encode(d.as_ref()))
}

fn manifest(config: &(String, usize), layer: &(String, usize)) -> String {
    json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config.0, "size": config.1},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": layer.0, "size": layer.1}],
    })
    .to_string()
}

async fn code(response: Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let code = body["errors"][0]["code"].as_str().unwrap_or_default();
    (status, code.to_owned())
}

/// A client that trusts the cluster CA and sends the API token.
struct Pusher {
    http: reqwest::Client,
    token: String,
}

impl Pusher {
    fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        self.http.request(method, url).bearer_auth(&self.token)
    }

    /// A monolithic upload of `data` to `base`; the answer.
    async fn push_blob(&self, base: &str, name: &str, data: &[u8], claimed: &str) -> Response {
        let url = format!("{base}/v2/{name}/blobs/uploads/?digest={claimed}");
        self.request(Method::POST, &url)
            .body(data.to_vec())
            .send()
            .await
            .expect("upload")
    }
}

#[tokio::test]
async fn an_image_pushed_to_one_manager_is_pulled_through_another() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = TempDir::new("registry");
    let (m1, init) = start(&dir).await;
    let config = crate::daemon::loopback(&dir, "m2");
    let m2: Manager = Manager::join(config, m1.advertise(), &init.manager)
        .await
        .expect("a second manager joins");
    let ca = CaCert::from_pem(&m1.ca_cert_pem()).expect("CA certificate");
    let tls = pinned_client_config(ca.digest()).expect("TLS");
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .expect("client");
    let a = format!("https://{}", m1.advertise());
    let b = format!("https://{}", m2.advertise());
    let pusher = Pusher {
        http: http.clone(),
        token: init.api.clone(),
    };

    // Credentials: none gets 401 asking for Basic; the API token as a Basic password
    // (what `docker login` sends) passes.
    let anonymous = http.get(format!("{a}/v2/")).send().await.expect("get");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let challenge = anonymous.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Basic "), "{challenge}");
    let basic = http
        .get(format!("{a}/v2/"))
        .basic_auth("orch", Some(&init.api))
        .send()
        .await
        .expect("get");
    assert_eq!(basic.status(), StatusCode::OK);
    assert_eq!(
        basic.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );

    // A layer in two chunks to manager 1; a chunk that does not follow on is refused.
    let layer_bytes = bytes(300_000, 7);
    let layer = (digest(&layer_bytes), layer_bytes.len());
    let start = pusher
        .request(Method::POST, &format!("{a}/v2/shop/web/blobs/uploads/"))
        .send()
        .await
        .expect("start");
    assert_eq!(start.status(), StatusCode::ACCEPTED);
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    let upload = format!("{a}{location}");
    let (first, second) = layer_bytes.split_at(100_000);
    let chunk = |data: &[u8], from: usize| {
        pusher
            .request(Method::PATCH, &upload)
            .header("content-range", format!("{from}-{}", from + data.len() - 1))
            .body(data.to_vec())
            .send()
    };
    let sent = chunk(first, 0).await.expect("patch");
    assert_eq!(sent.status(), StatusCode::ACCEPTED);
    assert_eq!(sent.headers()["range"], "0-99999");
    assert_eq!(
        code(chunk(second, 5).await.expect("patch")).await,
        (416, "RANGE_INVALID".into())
    );
    assert_eq!(
        chunk(second, 100_000).await.expect("patch").status(),
        StatusCode::ACCEPTED
    );
    let done = pusher
        .request(Method::PUT, &format!("{upload}?digest={}", layer.0))
        .send()
        .await
        .expect("close");
    assert_eq!(done.status(), StatusCode::CREATED);
    assert_eq!(
        done.headers()["docker-content-digest"].to_str().unwrap(),
        layer.0
    );

    // A blob whose content is not its digest is refused, and not kept.
    let config_bytes =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config = (digest(config_bytes), config_bytes.len());
    let lie = pusher
        .push_blob(&a, "shop/web", b"not the config", &config.0)
        .await;
    assert_eq!(code(lie).await, (400, "DIGEST_INVALID".into()));
    let head = pusher
        .request(Method::HEAD, &format!("{a}/v2/shop/web/blobs/{}", config.0))
        .header(manager::registry::LOCAL_ONLY, "1")
        .send()
        .await
        .expect("head");
    assert_eq!(head.status(), StatusCode::NOT_FOUND);

    // A manifest naming a blob nobody pushed is refused by name.
    let early = manifest(&config, &layer);
    let put = |base: &str, tag: &str, body: String| {
        pusher
            .request(Method::PUT, &format!("{base}/v2/shop/web/manifests/{tag}"))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(body)
            .send()
    };
    assert_eq!(
        code(put(&a, "1.0", early.clone()).await.expect("put")).await,
        (400, "MANIFEST_BLOB_UNKNOWN".into())
    );
    let pushed = pusher
        .push_blob(&a, "shop/web", config_bytes, &config.0)
        .await;
    assert_eq!(pushed.status(), StatusCode::CREATED);

    // The manifest goes through manager 2 (a follower: the write is forwarded).
    let answer = put(&b, "1.0", early.clone()).await.expect("put");
    assert_eq!(
        answer.status(),
        StatusCode::CREATED,
        "{:?}",
        answer.text().await
    );
    let manifest_digest = digest(early.as_bytes());

    // Manager 2 serves the tag, and the layer it fetches from manager 1.
    let got = pusher
        .request(Method::GET, &format!("{b}/v2/shop/web/manifests/1.0"))
        .send()
        .await
        .expect("get");
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(
        got.headers()["docker-content-digest"].to_str().unwrap(),
        manifest_digest
    );
    assert_eq!(
        got.headers()["content-type"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(got.text().await.unwrap(), early);
    let hex = layer.0.trim_start_matches("sha256:");
    let on_m2 = dir.path().join("m2/registry/blobs/sha256").join(hex);
    assert!(!on_m2.exists(), "manager 2 has not seen the layer yet");
    let pulled = pusher
        .request(Method::GET, &format!("{b}/v2/shop/web/blobs/{}", layer.0))
        .send()
        .await
        .expect("get");
    assert_eq!(pulled.status(), StatusCode::OK);
    assert_eq!(
        pulled.bytes().await.unwrap().as_ref(),
        layer_bytes.as_slice()
    );
    assert!(on_m2.exists(), "manager 2 keeps what it fetched");
    let part = pusher
        .request(Method::GET, &format!("{b}/v2/shop/web/blobs/{}", layer.0))
        .header("range", "bytes=10-19")
        .send()
        .await
        .expect("get");
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes().await.unwrap().as_ref(), &layer_bytes[10..20]);

    // Pushing 1.0 again with another config moves the tag; the old manifest stays
    // reachable by digest.
    let config2_bytes = br#"{"architecture":"amd64","os":"linux","config":{"Env":["V=2"]},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config2 = (digest(config2_bytes), config2_bytes.len());
    let pushed = pusher
        .push_blob(&a, "shop/web", config2_bytes, &config2.0)
        .await;
    assert_eq!(pushed.status(), StatusCode::CREATED);
    let second = manifest(&config2, &layer);
    assert_eq!(
        put(&a, "1.0", second.clone()).await.expect("put").status(),
        StatusCode::CREATED
    );
    assert_eq!(
        put(&a, "latest", second.clone())
            .await
            .expect("put")
            .status(),
        StatusCode::CREATED
    );
    let tags: Value = pusher
        .request(Method::GET, &format!("{b}/v2/shop/web/tags/list"))
        .send()
        .await
        .expect("tags")
        .json()
        .await
        .expect("json");
    assert_eq!(tags, json!({"name": "shop/web", "tags": ["1.0", "latest"]}));
    let old = pusher
        .request(
            Method::GET,
            &format!("{a}/v2/shop/web/manifests/{manifest_digest}"),
        )
        .send()
        .await
        .expect("get");
    assert_eq!(old.text().await.unwrap(), early);

    // A worker's certificate pulls, and may not push.
    let joined = client::join(m1.advertise(), &init.worker, "w1", None)
        .await
        .expect("join");
    let identity = NodeIdentity::new(joined.key.clone(), &joined.issued()).expect("identity");
    let worker = node_http_client(&identity).expect("client");
    let pull = worker
        .get(format!("{a}/v2/shop/web/manifests/latest"))
        .send()
        .await
        .expect("get");
    assert_eq!(pull.status(), StatusCode::OK);
    let push = worker
        .post(format!("{a}/v2/shop/web/blobs/uploads/"))
        .send()
        .await
        .expect("post");
    assert_eq!(code(push).await, (403, "DENIED".into()));

    // Bad names and unknown things are named.
    let bad = pusher
        .request(Method::GET, &format!("{a}/v2/Shop/manifests/1"))
        .send()
        .await
        .expect("get");
    assert_eq!(code(bad).await, (400, "NAME_INVALID".into()));
    let missing = pusher
        .request(Method::GET, &format!("{a}/v2/shop/web/manifests/2.0"))
        .send()
        .await
        .expect("get");
    assert_eq!(code(missing).await, (404, "MANIFEST_UNKNOWN".into()));
    m2.shutdown().await;
    m1.shutdown().await;
}
