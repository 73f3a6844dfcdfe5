//! The live/test switch: the dashboard shows one mode's data at a time,
//! as API keys see it, with a banner over test data; the switch returns
//! only to a page of this dashboard.

use bounty_core::ApiKeyMode;
use bounty_store::UserRole;
use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::seed::{self, PASSWORD};
use crate::support::{Backend, TestApp};

on_both_backends!(the_switch_shows_one_mode_at_a_time);

const BANNER: &str = "class=\"test-banner\"";

async fn the_switch_shows_one_mode_at_a_time(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let tenant = seed::tenant(&app.store, "Acme").await;
    seed::user(&app.store, tenant.account, "ann@acme.test", UserRole::Owner).await;
    seed::queued_task_in(
        &app.store,
        &tenant,
        "Live ticket about a refund",
        ApiKeyMode::Live,
    )
    .await;
    let test_task = seed::queued_task_in(
        &app.store,
        &tenant,
        "Test ticket from the sandbox",
        ApiKeyMode::Test,
    )
    .await;
    let mut b = app.logged_in("ann@acme.test", PASSWORD).await;

    // Live by default: no test data, no banner, a way to switch.
    b.get("/tasks")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("Live ticket about a refund")
        .assert_lacks("Test ticket from the sandbox")
        .assert_lacks(BANNER)
        .assert_contains("View test data");
    // A test task's own page is not there in live mode.
    b.get(&format!("/tasks/{test_task}"))
        .await
        .assert_status(StatusCode::NOT_FOUND);

    let csrf = b.csrf().await;
    let switched = b
        .post("/mode", &[("csrf", &csrf), ("mode", "test"), ("back", "/tasks")])
        .await;
    assert_eq!(switched.status, StatusCode::SEE_OTHER);
    assert_eq!(switched.location(), Some("/tasks"));
    b.get("/tasks")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("Test ticket from the sandbox")
        .assert_lacks("Live ticket about a refund")
        .assert_contains(BANNER)
        .assert_contains("View live data");
    // Every page carries the banner in test mode, the task's own included.
    b.get("/billing").await.assert_contains(BANNER);
    b.get(&format!("/tasks/{test_task}"))
        .await
        .assert_status(StatusCode::OK)
        .assert_contains(BANNER);

    // Only local pages are returned to; a bad mode or token changes nothing.
    let away = b
        .post(
            "/mode",
            &[("csrf", &csrf), ("mode", "live"), ("back", "//evil.example/")],
        )
        .await;
    assert_eq!(away.location(), Some("/"));
    b.get("/tasks").await.assert_lacks(BANNER);
    b.post("/mode", &[("csrf", &csrf), ("mode", "sandbox")])
        .await
        .assert_status(StatusCode::BAD_REQUEST);
    b.post("/mode", &[("csrf", "forged"), ("mode", "test")])
        .await
        .assert_status(StatusCode::FORBIDDEN);
    b.get("/tasks").await.assert_lacks(BANNER);
}
