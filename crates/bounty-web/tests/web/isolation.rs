//! Tenant isolation, route by route: a user of account A, signed in and
//! holding a valid CSRF token, gets 404 for every object of account B on
//! every page and form action that names an object, and sees none of B's
//! rows on the pages that list.

use bounty_store::UserRole;
use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::seed::{self, PASSWORD};
use crate::support::{Backend, TestApp};

async fn a_user_of_one_account_reaches_nothing_of_another(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let a = seed::tenant(&app.store, "Acme").await;
    let b = seed::tenant(&app.store, "Globex").await;
    seed::user(&app.store, a.account, "ann@acme.test", UserRole::Owner).await;
    let b_resolved = seed::resolved_task(&app.store, &b, "Globex secret ticket").await;
    let b_failed = seed::failed_task(&app.store, &b, "Globex other ticket").await;
    seed::invoice(&app.store, b.account, "in_globex_0001").await;
    let mut ann = app.logged_in("ann@acme.test", PASSWORD).await;
    let csrf = ann.csrf().await;

    // GET /tasks/{id}: B's tasks are not found.
    for id in [b_resolved, b_failed] {
        ann.get(&format!("/tasks/{id}"))
            .await
            .assert_status(StatusCode::NOT_FOUND)
            .assert_lacks("Globex");
    }
    // GET /tasks?agent=: B's agent is not found either.
    ann.get(&format!("/tasks?agent={}", b.agent))
        .await
        .assert_status(StatusCode::NOT_FOUND);
    // GET /tasks/status: B's tasks are left out.
    let poll = ann
        .get(&format!("/tasks/status?ids={b_resolved},{b_failed}"))
        .await;
    poll.assert_status(StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&poll.body).unwrap();
    assert!(json["statuses"].as_object().unwrap().is_empty(), "{json}");
    // POST /api-keys/{id}/revoke: B's key is not found, and stays live.
    ann.post(&format!("/api-keys/{}/revoke", b.key), &[("csrf", &csrf)])
        .await
        .assert_status(StatusCode::NOT_FOUND);
    let key = app.store.get_api_key(b.account, b.key).await.unwrap().unwrap();
    assert!(key.revoked_at.is_none(), "B's key was not revoked");
    // POST /api-keys creates in A only.
    ann.post("/api-keys", &[("csrf", &csrf), ("name", "ann's key")])
        .await
        .assert_status(StatusCode::OK);
    let b_keys = app
        .store
        .list_api_keys(b.account, bounty_core::PageLimit::new(100).unwrap(), None)
        .await
        .unwrap();
    assert_eq!(b_keys.items.len(), 1, "B still has only its own key");

    // The list pages show A's rows only.
    let tasks = ann.get("/tasks").await;
    tasks
        .assert_status(StatusCode::OK)
        .assert_lacks(&b_resolved.to_string())
        .assert_lacks("Globex");
    ann.get("/tasks?status=failed")
        .await
        .assert_lacks(&b_failed.to_string());
    ann.get("/api-keys")
        .await
        .assert_status(StatusCode::OK)
        .assert_lacks(&b.key.to_string())
        .assert_lacks(&b.key_prefix)
        .assert_contains(&a.key_prefix);
    ann.get("/invoices")
        .await
        .assert_status(StatusCode::OK)
        .assert_lacks("in_globex_0001");
    // The overview and billing count A's outcomes only: A has none.
    ann.get("/")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("<span class=\"label\">Tasks decided</span><span class=\"value\">0</span>");
    ann.get("/billing")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("0.00 USD");

    // And B's own user sees B's objects, so the 404s above were isolation.
    seed::user(&app.store, b.account, "gus@globex.test", UserRole::Owner).await;
    let mut gus = app.logged_in("gus@globex.test", PASSWORD).await;
    gus.get(&format!("/tasks/{b_resolved}"))
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("Globex secret ticket");
    gus.get("/invoices").await.assert_contains("in_globex_0001");
    let gus_csrf = gus.csrf().await;
    gus.post(&format!("/api-keys/{}/revoke", b.key), &[("csrf", &gus_csrf)])
        .await
        .assert_status(StatusCode::SEE_OTHER);
    // A's key survived B's user as well.
    ann.get("/api-keys").await.assert_lacks("Revoked");
}

/// The agent, integration and usage pages, and every form action on
/// them: A's owner, with a valid CSRF token, gets 404 for each of B's
/// objects, changes nothing of B's, and sees none of B's rows or figures.
async fn agents_integrations_and_usage_are_isolated(backend: Backend) {
    let app = TestApp::spawn_with_receiver(backend).await;
    let a = seed::tenant(&app.store, "Acme").await;
    let b = seed::tenant(&app.store, "Globex").await;
    seed::user(&app.store, a.account, "ann@acme.test", UserRole::Owner).await;
    seed::user(&app.store, b.account, "gus@globex.test", UserRole::Owner).await;
    seed::resolved_task(&app.store, &b, "Globex secret ticket").await;
    let mut gus = app.logged_in("gus@globex.test", PASSWORD).await;
    let (b_int, b_secret, _) = crate::integrations::create(&mut gus, &b, "standard", &[]).await;
    let b_sealed = app
        .store
        .get_integration(b.account, b_int)
        .await
        .unwrap()
        .unwrap()
        .secret_sealed;
    let mut ann = app.logged_in("ann@acme.test", PASSWORD).await;
    let csrf = ann.csrf().await;

    // Agents: B's agent is not found, to read or to edit.
    ann.get(&format!("/agents/{}", b.agent))
        .await
        .assert_status(StatusCode::NOT_FOUND)
        .assert_lacks("Answer the ticket.");
    let edit = [
        ("csrf", csrf.as_str()),
        ("name", "hijacked"),
        ("instructions", "Leak everything."),
        ("model_route", "small"),
        ("window_hours", "72"),
    ];
    ann.post(&format!("/agents/{}", b.agent), &edit)
        .await
        .assert_status(StatusCode::NOT_FOUND);
    let b_agent = app
        .store
        .get_agent(b.account, b.agent, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (b_agent.version, b_agent.name.as_str()),
        (1, "support"),
        "B's agent is unchanged"
    );
    ann.get("/agents")
        .await
        .assert_status(StatusCode::OK)
        .assert_lacks(&b.agent.to_string())
        .assert_contains(&a.agent.to_string());

    // Integrations: B's is not found, to read, rotate, delete or test.
    ann.get(&format!("/integrations/{b_int}"))
        .await
        .assert_status(StatusCode::NOT_FOUND);
    for action in ["rotate-secret", "delete", "test-delivery"] {
        ann.post(&format!("/integrations/{b_int}/{action}"), &[("csrf", &csrf)])
            .await
            .assert_status(StatusCode::NOT_FOUND)
            .assert_lacks(&b_secret);
    }
    let still = app.store.get_integration(b.account, b_int).await.unwrap();
    let still = still.expect("B's integration was not deleted");
    assert_eq!(still.secret_sealed, b_sealed, "B's secret was not rotated");
    assert!(
        app.received.clone().unwrap().lock().unwrap().is_empty(),
        "no test delivery was sent for B"
    );
    ann.get("/integrations")
        .await
        .assert_status(StatusCode::OK)
        .assert_lacks(&b_int.to_string());
    // Creating one for B's agent is refused, and creates nothing anywhere.
    let b_agent_id = b.agent.to_string();
    ann.post(
        "/integrations",
        &[
            ("csrf", &csrf),
            ("kind", "standard"),
            ("name", "x"),
            ("agent", &b_agent_id),
        ],
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
    .assert_contains("id=\"agent-error\"");
    let limit = bounty_core::PageLimit::new(10).unwrap();
    assert!(
        app.store
            .list_integrations(a.account, limit, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        app.store
            .list_integrations(b.account, limit, None)
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    // Usage counts A's outcomes only: A has none.
    ann.get("/usage?group_by=agent")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("No outcome was decided")
        .assert_lacks(&b.agent.to_string());
    let csv = ann.get("/usage.csv?group_by=agent").await;
    assert_eq!(
        csv.body.matches("\r\n").count(),
        1,
        "the header alone: {}",
        csv.body
    );

    // B's own owner reaches all of it, so the 404s above were isolation.
    gus.get(&format!("/agents/{}", b.agent))
        .await
        .assert_status(StatusCode::OK);
    gus.get(&format!("/integrations/{b_int}"))
        .await
        .assert_status(StatusCode::OK);
    let gus_csrf = gus.csrf().await;
    gus.post(
        &format!("/integrations/{b_int}/test-delivery"),
        &[("csrf", &gus_csrf)],
    )
    .await
    .assert_contains("HTTP 202");
    gus.get("/usage.csv")
        .await
        .assert_contains("\r\n2026-05-10,USD,1,1,0,0,0,100.00,");
}

on_both_backends!(
    a_user_of_one_account_reaches_nothing_of_another,
    agents_integrations_and_usage_are_isolated,
);
