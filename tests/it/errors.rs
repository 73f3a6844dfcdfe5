//! Bad input: every case answers a 4xx with a stable code, never a panic.

use bounty_server::Limits;
use reqwest::Method;

use crate::support::{Backend, TestApp, TestOptions, assert_error};

backend_tests!(
    malformed_json_is_400,
    unknown_field_is_400_naming_it,
    wrong_type_is_400_naming_the_field,
    body_over_the_limit_is_413,
    non_json_body_is_415,
    unknown_route_and_method_answer_json,
    hostile_inputs_never_panic,
);

async fn malformed_json_is_400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, key) = app.create_account("Acme").await;
    for body in [
        "{",
        "{\"name\": }",
        "{\"name\": \"a\"",
        "{\"name\":\"a\"} trailing",
    ] {
        let resp = app
            .request(Method::POST, "/v1/api-keys", Some(&key))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_error(resp, 400, "malformed_json").await;
    }
}

async fn unknown_field_is_400_naming_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, key) = app.create_account("Acme").await;
    let body = assert_error(
        app.create_key(&key, &serde_json::json!({"name": "a", "scopes": ["all"]}))
            .await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(body["error"]["param"], "scopes");
    assert!(body["error"]["message"].as_str().unwrap().contains("scopes"));
}

async fn wrong_type_is_400_naming_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, key) = app.create_account("Acme").await;
    let body = assert_error(
        app.create_key(&key, &serde_json::json!({"name": 42})).await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(body["error"]["param"], "name");
    assert_error(
        app.create_key(&key, &serde_json::json!([1, 2])).await,
        400,
        "invalid_request",
    )
    .await;
}

async fn body_over_the_limit_is_413(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        TestOptions {
            limits: Limits {
                body_limit_bytes: 1024,
                ..Limits::default()
            },
            ..TestOptions::default()
        },
    )
    .await;
    let (_, key) = app.create_account("Acme").await;
    let big = format!("{{\"name\":\"{}\"}}", "a".repeat(4096));
    let resp = app
        .request(Method::POST, "/v1/api-keys", Some(&key))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_error(resp, 413, "payload_too_large").await;
}

async fn non_json_body_is_415(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, key) = app.create_account("Acme").await;
    let resp = app
        .request(Method::POST, "/v1/api-keys", Some(&key))
        .header("content-type", "text/plain")
        .body("name=ci")
        .send()
        .await
        .unwrap();
    assert_error(resp, 415, "unsupported_media_type").await;
}

async fn unknown_route_and_method_answer_json(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_error(app.get("/v1/nope").await, 404, "route_not_found").await;
    let resp = app
        .request(Method::PUT, "/v1/account", None)
        .send()
        .await
        .unwrap();
    assert_error(resp, 405, "method_not_allowed").await;
}

async fn hostile_inputs_never_panic(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, key) = app.create_account("Acme").await;
    let bodies: Vec<Vec<u8>> = vec![
        b"\xff\xfe\xfd".to_vec(),
        b"{\"name\":\"\\ud800\"}".to_vec(),
        b"null".to_vec(),
        b"\"string\"".to_vec(),
        "{\"name\":\"𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u{0}\"}".as_bytes().to_vec(),
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
    ];
    for body in bodies {
        let resp = app
            .request(Method::POST, "/v1/api-keys", Some(&key))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        assert!((400..500).contains(&status), "status {status}");
    }
    for path in [
        "/v1/api-keys/%00",
        "/v1/api-keys/..%2F..",
        "/v1/api-keys?limit=%ff",
        "/v1/api-keys?cursor=",
    ] {
        let resp = app.request(Method::GET, path, Some(&key)).send().await.unwrap();
        let status = resp.status().as_u16();
        assert!((400..500).contains(&status), "{path}: status {status}");
    }
    // The server is still healthy after all that.
    assert_eq!(app.get("/readyz").await.status(), 200);
}
