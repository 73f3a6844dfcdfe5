//! `/v1/api-keys`: create, list with cursors, show, revoke, tenancy.

use std::collections::HashSet;

use serde_json::json;

use crate::support::{Backend, TestApp, assert_error, json_of};

backend_tests!(
    created_key_is_shown_once_and_works,
    empty_body_takes_defaults,
    cursor_pagination_walks_every_key_once,
    bad_pagination_params_are_400_naming_them,
    another_accounts_key_is_404,
    revoke_is_idempotent,
    name_is_validated,
    unknown_ids_are_404,
    concurrent_creates_all_succeed,
);

async fn created_key_is_shown_once_and_works(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (account, key) = app.create_account("Acme").await;
    let created = json_of(
        app.create_key(&key, &json!({"name": "ci", "mode": "test"})).await,
        201,
    )
    .await;
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("bk_test_"));
    assert!(secret.starts_with(created["prefix"].as_str().unwrap()));
    assert_eq!(created["name"], "ci");
    assert_eq!(created["mode"], "test");
    assert!(created["revoked_at"].is_null());

    // The new key authenticates as the same account.
    let me = json_of(app.get_account(secret).await, 200).await;
    assert_eq!(me["id"], account.to_string());

    // No other view shows the secret.
    let id = created["id"].as_str().unwrap();
    let shown = json_of(app.get_key(&key, id).await, 200).await;
    assert!(shown.get("secret").is_none(), "{shown}");
    let list = app.list_keys(&key, "").await.text().await.unwrap();
    assert!(!list.contains(secret));
    assert!(!list.contains("secret"));
}

async fn empty_body_takes_defaults(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, key) = app.create_account("Acme").await;
    let resp = app
        .request(reqwest::Method::POST, "/v1/api-keys", Some(&key))
        .send()
        .await
        .unwrap();
    let created = json_of(resp, 201).await;
    assert_eq!(created["name"], "default");
    assert_eq!(created["mode"], "live");
}

async fn cursor_pagination_walks_every_key_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, key) = app.create_account("Acme").await;
    for i in 0..6 {
        json_of(app.create_key(&key, &json!({"name": format!("k{i}")})).await, 201).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("limit=3&cursor={c}"),
            None => "limit=3".to_owned(),
        };
        let page = json_of(app.list_keys(&key, &query).await, 200).await;
        pages += 1;
        for k in page["data"].as_array().unwrap() {
            seen.push(k["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7, "6 created + the account's first key");
    assert_eq!(pages, 3);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 7, "no key twice");
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first");
}

async fn bad_pagination_params_are_400_naming_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, key) = app.create_account("Acme").await;
    for (query, param) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("cursor=acct_01JD3K8Q9V7Y2X4W6T5R3P1N0M", "cursor"),
        ("cursor=nonsense", "cursor"),
        ("colour=blue", "colour"),
    ] {
        let body = assert_error(app.list_keys(&key, query).await, 400, "invalid_request").await;
        assert_eq!(body["error"]["param"], param, "{query}: {body}");
    }
}

async fn another_accounts_key_is_404(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, acme) = app.create_account("Acme").await;
    let (_, globex) = app.create_account("Globex").await;
    let theirs = json_of(app.create_key(&globex, &json!({})).await, 201).await;
    let id = theirs["id"].as_str().unwrap();
    assert_error(app.get_key(&acme, id).await, 404, "not_found").await;
    assert_error(app.revoke_key(&acme, id).await, 404, "not_found").await;
    // Still active for its owner.
    let still = json_of(app.get_key(&globex, id).await, 200).await;
    assert!(still["revoked_at"].is_null());
    // And Acme's listing never shows it.
    let list = json_of(app.list_keys(&acme, "limit=100").await, 200).await;
    assert!(list["data"].as_array().unwrap().iter().all(|k| k["id"] != id));
}

async fn revoke_is_idempotent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, key) = app.create_account("Acme").await;
    let other = json_of(app.create_key(&key, &json!({})).await, 201).await;
    let id = other["id"].as_str().unwrap();
    let first = json_of(app.revoke_key(&key, id).await, 200).await;
    let second = json_of(app.revoke_key(&key, id).await, 200).await;
    assert!(first["revoked_at"].is_string());
    assert_eq!(
        first["revoked_at"], second["revoked_at"],
        "the first revocation time stays"
    );
}

async fn name_is_validated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, key) = app.create_account("Acme").await;
    for name in ["   ", "a\nb", &"x".repeat(101)] {
        let body = assert_error(
            app.create_key(&key, &json!({"name": name})).await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(body["error"]["param"], "name");
    }
    let body = assert_error(
        app.create_key(&key, &json!({"mode": "prod"})).await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(body["error"]["param"], "mode");
}

async fn unknown_ids_are_404(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, key) = app.create_account("Acme").await;
    for id in [
        "key_01JD3K8Q9V7Y2X4W6T5R3P1N0M",
        "nonsense",
        "acct_01JD3K8Q9V7Y2X4W6T5R3P1N0M",
    ] {
        assert_error(app.get_key(&key, id).await, 404, "not_found").await;
        assert_error(app.revoke_key(&key, id).await, 404, "not_found").await;
    }
}

async fn concurrent_creates_all_succeed(backend: Backend) {
    let app = std::sync::Arc::new(TestApp::spawn(backend).await);
    let (_, key) = app.create_account("Acme").await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (app, key) = (std::sync::Arc::clone(&app), key.clone());
        tasks.push(tokio::spawn(async move {
            app.create_key(&key, &json!({"name": format!("k{i}")}))
                .await
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(
            t.await.unwrap(),
            201,
            "concurrent writers wait for each other, never fail"
        );
    }
    let list = json_of(app.list_keys(&key, "limit=100").await, 200).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 21);
}
