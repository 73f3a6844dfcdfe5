//! Health, readiness through a database outage, timeouts, metrics and
//! request ids.

use std::time::Duration;

use bounty_server::Limits;

use crate::support::{Backend, TestApp, TestOptions, assert_error, json_of};

backend_tests!(
    healthz_and_readyz_answer,
    metrics_count_requests_by_route,
    request_ids_are_set_and_echoed
);

async fn healthz_and_readyz_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(json_of(app.get("/healthz").await, 200).await["status"], "ok");
    let ready = json_of(app.get("/readyz").await, 200).await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(
        ready["detail"]["billing"], "ledger_only",
        "flagged until a Stripe sender runs"
    );
    assert_eq!(ready["detail"]["outbox_pending"], 0);
}

async fn metrics_count_requests_by_route(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, key) = app.create_account("Acme").await;
    for _ in 0..3 {
        app.get_account(&key).await;
    }
    let other = json_of(app.create_key(&key, &serde_json::json!({})).await, 201).await;
    app.get_key(&key, other["id"].as_str().unwrap()).await;
    app.get("/v1/account").await;
    app.get("/nowhere/123").await;
    let resp = app.get("/metrics").await;
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    assert!(
        text.contains(r#"bounty_http_requests_total{method="GET",route="/v1/account",status="200"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(r#"bounty_http_requests_total{method="GET",route="/v1/account",status="401"} 1"#),
        "{text}"
    );
    // Route templates, never raw ids.
    assert!(text.contains(r#"route="/v1/api-keys/{id}""#), "{text}");
    assert!(!text.contains("key_0"), "{text}");
    assert!(text.contains(r#"route="unmatched",status="404""#), "{text}");
    assert!(
        text.contains(r#"bounty_http_request_duration_seconds_count{method="GET",route="/v1/account"} 4"#),
        "{text}"
    );
    // The account's Stripe customer, subscription and the gateway price
    // on it wait in the outbox (ledger-only).
    assert!(text.contains("bounty_outbox_pending 3\n"), "{text}");
    assert!(
        text.contains("bounty_outbox_oldest_pending_age_seconds "),
        "{text}"
    );
}

async fn request_ids_are_set_and_echoed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let resp = app.get("/healthz").await;
    let id = resp.headers()["x-request-id"].to_str().unwrap();
    assert!(id.starts_with("req_") && id.len() == 30, "{id}");
    let resp = app
        .request(reqwest::Method::GET, "/healthz", None)
        .header("x-request-id", "caller-trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "caller-trace-42");
    // An absurd or binary id from a caller is replaced, never logged.
    for bad in ["x".repeat(200), "has space".to_owned()] {
        let resp = app
            .request(reqwest::Method::GET, "/healthz", None)
            .header("x-request-id", bad.as_str())
            .send()
            .await
            .unwrap();
        assert!(
            resp.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .starts_with("req_")
        );
    }
}

/// The database goes away: readiness and API calls say 503 with a clear
/// code, nothing panics, and everything recovers on its own when the
/// database returns. Postgres only: an embedded SQLite file cannot vanish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_is_503_and_recovers_by_itself() {
    let app = TestApp::spawn_with(
        Backend::Postgres,
        TestOptions {
            acquire_timeout: Duration::from_millis(500),
            proxy: true,
            ..TestOptions::default()
        },
    )
    .await;
    let (_, key) = app.create_account("Acme").await;
    assert_eq!(app.get("/readyz").await.status(), 200);

    let proxy = app.proxy.as_ref().unwrap();
    proxy.cut();
    let resp = app.get("/readyz").await;
    assert_eq!(resp.headers()["retry-after"], "1");
    assert_error(resp, 503, "database_unavailable").await;
    assert_error(app.get_account(&key).await, 503, "database_unavailable").await;
    assert_eq!(
        app.get("/healthz").await.status(),
        200,
        "liveness does not depend on the database"
    );

    proxy.restore();
    let mut ready = false;
    for _ in 0..50 {
        if app.get("/readyz").await.status() == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "readyz recovers without a restart");
    assert_eq!(json_of(app.get_account(&key).await, 200).await["name"], "Acme");
}

/// A request stuck on a hung database is answered 503 `request_timeout`
/// at the configured limit instead of hanging the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_hang_hits_the_request_timeout() {
    let app = TestApp::spawn_with(
        Backend::Postgres,
        TestOptions {
            acquire_timeout: Duration::from_secs(30),
            proxy: true,
            limits: Limits {
                request_timeout: Duration::from_millis(300),
                readiness_timeout: Duration::from_secs(30),
                ..Limits::default()
            },
            ..TestOptions::default()
        },
    )
    .await;
    let (_, key) = app.create_account("Acme").await;
    app.proxy.as_ref().unwrap().stall();
    let started = std::time::Instant::now();
    assert_error(app.get_account(&key).await, 503, "request_timeout").await;
    assert!(started.elapsed() < Duration::from_secs(5));
}
