//! `GET /v1/account` and authentication.

use reqwest::Method;

use crate::support::{Backend, TestApp, assert_error, json_of};

backend_tests!(
    shows_the_keys_account,
    missing_key_is_401,
    malformed_unknown_and_wrong_scheme_keys_are_401,
    revoked_key_stops_working_at_once,
    use_is_recorded_as_last_used,
);

async fn shows_the_keys_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (account, key) = app.create_account("Acme").await;
    let body = json_of(app.get_account(&key).await, 200).await;
    assert_eq!(body["id"], account.to_string());
    assert_eq!(body["name"], "Acme");
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
}

async fn missing_key_is_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let resp = app.get("/v1/account").await;
    assert_error(resp, 401, "missing_api_key").await;
}

async fn malformed_unknown_and_wrong_scheme_keys_are_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, key) = app.create_account("Acme").await;
    for bad in [
        "nonsense",
        "bk_live_short",
        "bk_live_00000000000000000000000000000000",
    ] {
        assert_error(app.get_account(bad).await, 401, "invalid_api_key").await;
    }
    let basic = app
        .request(Method::GET, "/v1/account", None)
        .header("authorization", format!("Basic {key}"))
        .send()
        .await
        .unwrap();
    assert_error(basic, 401, "invalid_api_key").await;
    let lower = app
        .request(Method::GET, "/v1/account", None)
        .header("authorization", format!("bearer {key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status(), 200, "the auth scheme is case-insensitive");
}

async fn revoked_key_stops_working_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, key) = app.create_account("Acme").await;
    let second = json_of(
        app.create_key(&key, &serde_json::json!({"name": "second"})).await,
        201,
    )
    .await;
    let second_key = second["secret"].as_str().unwrap();
    assert_eq!(app.get_account(second_key).await.status(), 200);
    json_of(app.revoke_key(&key, second["id"].as_str().unwrap()).await, 200).await;
    assert_error(app.get_account(second_key).await, 401, "invalid_api_key").await;
    // The revoking key itself still works.
    assert_eq!(app.get_account(&key).await.status(), 200);
}

async fn use_is_recorded_as_last_used(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, key) = app.create_account("Acme").await;
    let list = json_of(app.list_keys(&key, "").await, 200).await;
    // The listing request itself authenticated with this key.
    assert!(list["data"][0]["last_used_at"].is_string(), "{list}");
}
