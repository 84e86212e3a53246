//! Authentication: no token and a wrong token get 401, the bearer token passes, local
//! callers and managers pass without one, worker nodes get 403.

use super::{Api, CALLER, TOKEN};
use reqwest::Method;

#[tokio::test]
async fn callers_need_a_token_a_manager_certificate_or_the_local_socket() {
    let api = Api::start().await;
    for path in [
        "/v1/stacks",
        "/v1/cluster",
        "/metrics",
        "/v1/openapi.json",
        "/v1/nope",
    ] {
        let none = api.call_with(Method::GET, path, None, &[]).await;
        assert_eq!((none.status, none.code()), (401, "unauthorized"), "{path}");
        assert_eq!(
            none.headers["www-authenticate"].to_str().ok(),
            Some("Bearer")
        );
    }
    let wrong = api
        .call_with(
            Method::GET,
            "/v1/stacks",
            None,
            &[("authorization", "Bearer nope")],
        )
        .await;
    assert_eq!((wrong.status, wrong.code()), (401, "unauthorized"));
    let basic = api
        .call_with(
            Method::GET,
            "/v1/stacks",
            None,
            &[("authorization", "Basic dTpw")],
        )
        .await;
    assert_eq!(basic.status, 401);
    let bearer = format!("Bearer {TOKEN}");
    let ok = api
        .call_with(
            Method::GET,
            "/v1/stacks",
            None,
            &[("authorization", &bearer)],
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);

    let local = api
        .call_with(Method::GET, "/v1/stacks", None, &[(CALLER, "local")])
        .await;
    assert_eq!(local.status, 200);
    let manager = api
        .call_with(Method::GET, "/v1/stacks", None, &[(CALLER, "manager")])
        .await;
    assert_eq!(manager.status, 200);
    let worker = api
        .call_with(
            Method::GET,
            "/v1/stacks",
            None,
            &[(CALLER, "worker"), ("authorization", &bearer)],
        )
        .await;
    assert_eq!((worker.status, worker.code()), (403, "permission_denied"));
    assert_eq!(worker.body["error"]["details"]["node"], "w1");
    api.node.stop().await;
}
