//! Graceful shutdown: in-flight requests finish, new connections are refused.

use std::time::Duration;

use bounty_server::{AppState, Limits};
use tokio_util::sync::CancellationToken;

use crate::support::{Backend, TestDatabase};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_requests_finish_after_the_signal() {
    let db = TestDatabase::create(Backend::Sqlite).await;
    let store = bounty_store::Store::connect(
        &bounty_store::DatabaseOptions {
            url: db.url().to_owned(),
            max_connections: 2,
            acquire_timeout: Duration::from_secs(5),
            sqlite_busy_timeout: Duration::from_secs(5),
        },
        std::sync::Arc::new(bounty_core::SystemClock),
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    // The real app plus one slow route, standing in for a long request:
    // it says when it has started, then waits to be released.
    let started = std::sync::Arc::new(tokio::sync::Notify::new());
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let (s, r) = (started.clone(), release.clone());
    let app = bounty_server::app(AppState::new(store, Limits::default())).route(
        "/slow",
        axum::routing::get(move || async move {
            s.notify_one();
            r.notified().await;
            "done"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(bounty_server::serve(
        listener,
        app,
        shutdown.clone(),
        Duration::from_secs(10),
    ));

    let slow = tokio::spawn(async move { reqwest::get(format!("http://{addr}/slow")).await });
    started.notified().await;
    shutdown.cancel();
    // The server has stopped accepting, yet the request is still running.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !server.is_finished(),
        "the server waits for the in-flight request"
    );
    release.notify_one();

    let resp = slow.await.unwrap().expect("the in-flight request completes");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "done");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server stops once idle")
        .unwrap()
        .unwrap();
    assert!(
        reqwest::get(format!("http://{addr}/healthz")).await.is_err(),
        "no new connections"
    );
}
