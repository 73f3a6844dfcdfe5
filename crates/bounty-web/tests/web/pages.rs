//! Every page, rendered for a seeded account: the overview's figures and
//! chart, the task list with its filters and pages, a task's receipt or
//! its absence, API keys, invoices, billing, static files and error pages.

use bounty_core::PageLimit;
use bounty_store::UserRole;
use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::seed::{self, PASSWORD, Tenant};
use crate::support::{Backend, Browser, TestApp};

struct Seeded {
    app: TestApp,
    tenant: Tenant,
    resolved: bounty_core::TaskId,
    failed: bounty_core::TaskId,
    browser: Browser,
}

async fn seeded(backend: Backend) -> Seeded {
    let app = TestApp::spawn(backend).await;
    let tenant = seed::tenant(&app.store, "Acme").await;
    seed::user(&app.store, tenant.account, "ann@acme.test", UserRole::Owner).await;
    let resolved = seed::resolved_task(&app.store, &tenant, "Refund for order 1042").await;
    let failed = seed::failed_task(&app.store, &tenant, "Where is my parcel").await;
    seed::invoice(&app.store, tenant.account, "in_acme_0001").await;
    let browser = app.logged_in("ann@acme.test", PASSWORD).await;
    Seeded {
        app,
        tenant,
        resolved,
        failed,
        browser,
    }
}

async fn every_page_renders_for_a_seeded_account(backend: Backend) {
    let mut s = seeded(backend).await;
    let outcome = s
        .app
        .store
        .outcome_of_task(s.tenant.account, s.resolved)
        .await
        .unwrap()
        .unwrap();
    let b = &mut s.browser;
    let overview = b.get("/").await;
    overview
        .assert_status(StatusCode::OK)
        .assert_contains("From 2026-05-01 to 2026-05-10")
        .assert_contains("Resolution rate")
        .assert_contains("50.0%")
        .assert_contains("<svg")
        // A customer's page: nothing of what the work cost us.
        .assert_lacks("margin-line")
        .assert_lacks("argin")
        .assert_lacks("nference cost")
        .assert_contains("class=\"rate-chart wide\"")
        .assert_contains("class=\"rate-chart narrow\"")
        // This month against the cap, and the price of a resolved ticket
        // (1 resolved, charged 1 USD).
        .assert_contains("Spent this month")
        .assert_contains("no monthly cap")
        .assert_contains("Projected for the month")
        .assert_contains("Waiting for a verdict")
        .assert_contains("<span class=\"label\">Price per resolved ticket</span><span class=\"value\">1.00 USD</span>")
        .assert_contains("1 resolved · 1 not resolved · 0 reversed")
        .assert_contains(
            "aria-label=\"Resolution rate per day from 2026-05-01 to 2026-05-10: 1 of 2 decided tasks resolved, 50.0% overall.\"",
        )
        .assert_contains("1 resolved · 1 not resolved · 0 reversed · 0 handed to a person")
        .assert_contains("<text class=\"tick\" font-size=\"13\" x=\"58\" y=\"16\" text-anchor=\"end\">100%</text>")
        .assert_contains("<text class=\"tick\" font-size=\"13\" x=\"56\" y=\"16\" text-anchor=\"end\">100%</text>");
    assert_eq!(overview.headers.get("cache-control").unwrap(), "no-store");
    assert!(overview.headers.get("content-security-policy").is_some());
    // A period with nothing in it.
    b.get("/?from=2026-04-01&to=2026-04-30")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("From 2026-04-01 to 2026-04-30")
        .assert_lacks("50.0%");
    let charged = bounty_web_format_micros(outcome.amount.micros);
    overview.assert_contains(&charged);

    b.get("/tasks")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains(&s.resolved.to_string())
        .assert_contains(&s.failed.to_string())
        .assert_contains("Refund for order 1042")
        // A ledger of work: the outcome and the charge of each task; a
        // completed task whose outcome was not resolved is no success.
        .assert_contains("<th scope=\"col\">Outcome</th><th scope=\"col\" class=\"num\">Charge</th>")
        .assert_contains(
            "<td data-label=\"Outcome\">resolved</td>\n      <td class=\"num\" data-label=\"Charge\">1.00 USD</td>",
        )
        .assert_contains(
            "<td data-label=\"Outcome\">not resolved</td>\n      <td class=\"num\" data-label=\"Charge\">No charge</td>",
        );
    b.get(&format!("/tasks/{}", s.resolved))
        .await
        .assert_status(StatusCode::OK);
    b.get(&format!("/tasks/{}", s.failed))
        .await
        .assert_status(StatusCode::OK);
    b.get("/api-keys")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("first key")
        .assert_contains(&s.tenant.key_prefix);
    b.get("/invoices")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("in_acme_0001")
        .assert_contains("href=\"https://invoice.stripe.com/i/in_acme_0001\"")
        .assert_contains("12.50 USD");
    b.get("/billing")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("Price per CU")
        .assert_contains("active")
        .assert_contains("not created yet")
        .assert_contains("none (PUT /v1/byok sets your own endpoint and key)")
        .assert_contains("none: rated like any outcome");
    // The pricing comparison is the operator's: not a customer page.
    b.get("/margins").await.assert_status(StatusCode::NOT_FOUND);
}

/// What the page shows for an amount: trailing zeros trimmed to two decimals.
fn bounty_web_format_micros(micros: i64) -> String {
    let mut frac = format!("{:06}", micros % 1_000_000);
    while frac.len() > 2 && frac.ends_with('0') {
        frac.pop();
    }
    format!("{}.{frac} USD", micros / 1_000_000)
}

async fn a_failed_task_shows_no_charge(backend: Backend) {
    let mut s = seeded(backend).await;
    let page = s.browser.get(&format!("/tasks/{}", s.failed)).await;
    page.assert_status(StatusCode::OK)
        .assert_contains("No charge — not resolved")
        .assert_contains("provider_error: the model was unreachable")
        .assert_contains("the task failed")
        .assert_lacks("Rating receipt");
}

async fn a_resolved_task_shows_its_receipt(backend: Backend) {
    let mut s = seeded(backend).await;
    let outcome = s
        .app
        .store
        .outcome_of_task(s.tenant.account, s.resolved)
        .await
        .unwrap()
        .unwrap();
    let rating = outcome.rating.clone().expect("a resolved outcome is rated");
    let page = s.browser.get(&format!("/tasks/{}", s.resolved)).await;
    page.assert_status(StatusCode::OK)
        .assert_lacks("No charge")
        .assert_contains("Rating receipt")
        .assert_contains(&html_escape(&rating.formula))
        .assert_contains(&rating.plan.name)
        .assert_contains(&bounty_web_format_micros(outcome.amount.micros))
        // The input and the transcript.
        .assert_contains("Refund for order 1042")
        .assert_contains("Your refund is on its way.")
        // The model call, with its flags.
        .assert_contains("small-model-q4")
        .assert_contains("250 ms")
        // What the call cost us is not the customer's to see.
        .assert_lacks("0.0025 USD")
        .assert_lacks("nference cost")
        .assert_lacks("paid by you")
        // Each verifier's decision and reason.
        .assert_contains("rules/1")
        .assert_contains("the reply names the refund")
        .assert_contains("decision-pass");
}

async fn a_task_shows_its_conversation(backend: Backend) {
    let mut s = seeded(backend).await;
    // A queued task the customer wrote to again before it ran.
    let queued = seed::queued_task(&s.app.store, &s.tenant, "Late parcel").await;
    let message = bounty_agents::conversation::CustomerMessage {
        body: "It was due <Monday>.",
        source: bounty_core::conversation::MessageSource::Api,
        actor: bounty_core::Actor::Worker,
        idempotency: None,
    };
    bounty_agents::conversation::post_message(&s.app.store, s.tenant.account, queued, &message)
        .await
        .unwrap();
    s.browser
        .get(&format!("/tasks/{queued}"))
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("Conversation")
        .assert_contains("Turn 1.")
        .assert_contains("turn 1 · API")
        .assert_contains("It was due &#60;Monday&#62;.");
    // A finished task's answer is the agent's message of its turn.
    s.browser
        .get(&format!("/tasks/{}", s.resolved))
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("class=\"msg role-agent\"")
        .assert_contains("turn 1 · answer");
}

async fn a_task_shows_its_tool_calls(backend: Backend) {
    let mut s = seeded(backend).await;
    let store = &s.app.store;
    let id = seed::queued_task(store, &s.tenant, "Refund A1").await;
    let claimed = store
        .claim_tasks("test-worker", 1, std::time::Duration::from_secs(3600))
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(claimed.task.id, id);
    let end = bounty_store::AttemptEnd::Retry {
        error: bounty_store::TaskError {
            code: "tool_unavailable".into(),
            message: "a tool is unavailable".into(),
        },
        run_at: store.now(),
    };
    let refund = bounty_store::NewToolCall {
        turn: 1,
        tool: "issue_refund".into(),
        call_id: "call_1".into(),
        arguments: r#"{"order_id":"A1"}"#.into(),
        status: Some(201),
        outcome: bounty_store::ToolCallOutcome::Ok,
        latency_us: 42_000,
        response: serde_json::json!({"body": "{\"refund\":\"re_1\"}", "error": null}),
        idempotency_key: Some("bounty_0123456789abcdef0123456789abcdef".into()),
        step_overhead_us: Some(310),
    };
    assert!(
        bounty_agents::finish::finish_attempt_with_tools(store, &claimed, &end, &[], &[refund])
            .await
            .unwrap()
    );
    s.browser
        .get(&format!("/tasks/{id}"))
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("Tool calls")
        .assert_contains("issue_refund")
        .assert_contains("bounty_0123456789abcdef0123456789abcdef")
        .assert_contains("42 ms")
        .assert_contains("re_1");
}

/// askama's HTML escaping of the characters a formula may hold.
fn html_escape(s: &str) -> String {
    s.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

async fn task_list_filters_and_pages(backend: Backend) {
    let mut s = seeded(backend).await;
    for i in 0..26 {
        seed::queued_task(&s.app.store, &s.tenant, &format!("Queued ticket {i:02}")).await;
    }
    let b = &mut s.browser;
    let first = b.get("/tasks").await;
    first.assert_status(StatusCode::OK);
    assert_eq!(first.body.matches("<tr data-task-id=").count(), 25);
    first
        .assert_contains("Queued ticket 25")
        .assert_contains("data-poll=\"/tasks/status\"");
    let next = first
        .body
        .split("href=\"/tasks?cursor=")
        .nth(1)
        .expect("a next page link");
    let next = &next[..next.find('"').unwrap()];
    let second = b.get(&format!("/tasks?cursor={next}")).await;
    second
        .assert_status(StatusCode::OK)
        .assert_contains("First page")
        .assert_contains("Where is my parcel");
    assert_eq!(second.body.matches("<tr data-task-id=").count(), 3);
    // The previous page of the second is the first again.
    let prev = second
        .body
        .split("href=\"/tasks?before=")
        .nth(1)
        .expect("a previous page link");
    let prev = &prev[..prev.find('"').unwrap()];
    let back = b.get(&format!("/tasks?before={prev}")).await;
    assert_eq!(back.body.matches("<tr data-task-id=").count(), 25);
    back.assert_contains("Queued ticket 25")
        .assert_lacks("rel=\"prev\"")
        .assert_contains("rel=\"next\"");
    // Filters by what the outcome came to.
    let charged = b.get("/tasks?charge=charged").await;
    assert_eq!(charged.body.matches("<tr data-task-id=").count(), 1);
    charged.assert_contains(&s.resolved.to_string());
    let not_charged = b.get("/tasks?charge=not_charged").await;
    assert_eq!(not_charged.body.matches("<tr data-task-id=").count(), 1);
    not_charged.assert_contains(&s.failed.to_string());
    b.get("/tasks?charge=reversed")
        .await
        .assert_contains("No tasks match.");
    b.get("/tasks?charge=free")
        .await
        .assert_status(StatusCode::BAD_REQUEST)
        .assert_contains("`charge`");
    let failed = b.get("/tasks?status=failed").await;
    assert_eq!(failed.body.matches("<tr data-task-id=").count(), 1);
    failed.assert_contains(&s.failed.to_string());
    b.get(&format!("/tasks?agent={}&status=completed", s.tenant.agent))
        .await
        .assert_contains(&s.resolved.to_string())
        .assert_lacks(&s.failed.to_string());
    b.get("/tasks?from=2026-05-11")
        .await
        .assert_contains("No tasks match.");
    let searched = b.get("/tasks?q=queued+TICKET+07").await;
    assert_eq!(searched.body.matches("<tr data-task-id=").count(), 1);
    searched.assert_lacks("among the tasks of the page shown");
    // The search covers every task, not just the first page's.
    b.get("/tasks?q=PARCEL")
        .await
        .assert_contains(&s.failed.to_string())
        .assert_lacks("Queued ticket");
    b.get("/tasks?q=nothing+like+this")
        .await
        .assert_contains("No task matches the search.");
    // Its pages are pages of matches, and the next-page link keeps `q`.
    let matches = b.get("/tasks?q=queued+ticket").await;
    assert_eq!(matches.body.matches("<tr data-task-id=").count(), 25);
    let next = matches
        .body
        .split("href=\"/tasks?q=queued+ticket&#38;cursor=")
        .nth(1)
        .expect("a next page link that keeps the search");
    let next = &next[..next.find('"').unwrap()];
    let rest = b.get(&format!("/tasks?q=queued+ticket&cursor={next}")).await;
    assert_eq!(rest.body.matches("<tr data-task-id=").count(), 1);
    rest.assert_contains("Queued ticket 00")
        .assert_lacks("Where is my parcel");
    // Back to the first page of matches, the search kept.
    let prev = rest
        .body
        .split("href=\"/tasks?q=queued+ticket&#38;before=")
        .nth(1)
        .expect("a previous page link that keeps the search");
    let prev = &prev[..prev.find('"').unwrap()];
    let again = b.get(&format!("/tasks?q=queued+ticket&before={prev}")).await;
    assert_eq!(again.body.matches("<tr data-task-id=").count(), 25);
    again
        .assert_contains("Queued ticket 25")
        .assert_lacks("Queued ticket 00");
    b.get("/tasks?status=bogus")
        .await
        .assert_status(StatusCode::BAD_REQUEST)
        .assert_contains("`status`");
    b.get("/tasks?from=yesterday")
        .await
        .assert_status(StatusCode::BAD_REQUEST)
        .assert_contains("`from`");
    b.get("/tasks?cursor=nope")
        .await
        .assert_status(StatusCode::BAD_REQUEST);
    // Polling: the statuses of the account's tasks among those asked.
    let queued = s
        .app
        .store
        .list_tasks(
            s.tenant.account,
            &bounty_store::TaskFilter {
                status: Some(bounty_core::TaskStatus::Queued),
                ..Default::default()
            },
            PageLimit::new(1).unwrap(),
            None,
        )
        .await
        .unwrap()
        .items[0]
        .id;
    let poll = b
        .get(&format!("/tasks/status?ids={queued},{},garbage", s.failed))
        .await;
    poll.assert_status(StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&poll.body).unwrap();
    assert_eq!(json["statuses"][queued.to_string()], "queued");
    assert_eq!(json["statuses"][s.failed.to_string()], "failed");
    assert_eq!(json["statuses"].as_object().unwrap().len(), 2);
}

async fn api_keys_are_created_once_and_revoked(backend: Backend) {
    let mut s = seeded(backend).await;
    let b = &mut s.browser;
    let csrf = b.csrf().await;
    let created = b
        .post(
            "/api-keys",
            &[("csrf", &csrf), ("name", "ci runner"), ("mode", "test")],
        )
        .await;
    created
        .assert_status(StatusCode::OK)
        .assert_contains("shown only once");
    assert_eq!(created.headers.get("cache-control").unwrap(), "no-store");
    let marker = "value=\"bk_test_";
    let at = created.body.find(marker).expect("the secret is shown") + "value=\"".len();
    let secret = &created.body[at..at + created.body[at..].find('"').unwrap()];
    let (parsed, _) = bounty_core::ApiKeySecret::parse(secret).expect("a well-formed key");
    let auth = s
        .app
        .store
        .authenticate(&parsed.hash())
        .await
        .unwrap()
        .expect("the key works");
    assert_eq!(auth.account_id, s.tenant.account);
    // The list shows it, without its secret.
    let list = b.get("/api-keys").await;
    list.assert_contains("ci runner").assert_lacks(secret);
    // An invalid name re-renders the form with the reason.
    b.post("/api-keys", &[("csrf", &csrf), ("name", "   ")])
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("Name:");
    let r = b
        .post(&format!("/api-keys/{}/revoke", auth.key_id), &[("csrf", &csrf)])
        .await;
    r.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/api-keys"));
    assert!(
        s.app.store.authenticate(&parsed.hash()).await.unwrap().is_none(),
        "a revoked key authenticates nothing"
    );
    b.get("/api-keys").await.assert_contains("Revoked 2026-05-10");
    b.post("/api-keys/key_nonsense/revoke", &[("csrf", &csrf)])
        .await
        .assert_status(StatusCode::NOT_FOUND);
}

async fn members_see_keys_but_cannot_manage_them(backend: Backend) {
    let s = seeded(backend).await;
    seed::user(&s.app.store, s.tenant.account, "max@acme.test", UserRole::Member).await;
    let mut m = s.app.logged_in("max@acme.test", PASSWORD).await;
    m.get("/api-keys")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("first key")
        .assert_contains("Only an owner")
        .assert_lacks("/revoke");
    let csrf = m.csrf().await;
    m.post("/api-keys", &[("csrf", &csrf), ("name", "nope")])
        .await
        .assert_status(StatusCode::FORBIDDEN);
    m.post(&format!("/api-keys/{}/revoke", s.tenant.key), &[("csrf", &csrf)])
        .await
        .assert_status(StatusCode::FORBIDDEN);
    let key = s
        .app
        .store
        .get_api_key(s.tenant.account, s.tenant.key)
        .await
        .unwrap()
        .unwrap();
    assert!(key.revoked_at.is_none());
}

async fn static_files_are_cached_by_content_hash(backend: Backend) {
    let mut s = seeded(backend).await;
    let page = s.browser.get("/").await;
    let href = page
        .body
        .split("href=\"/static/app.css?v=")
        .nth(1)
        .expect("the stylesheet link");
    let version = &href[..href.find('"').unwrap()];
    assert_eq!(version.len(), 16);
    let mut anon = s.app.browser();
    let css = anon.get(&format!("/static/app.css?v={version}")).await;
    css.assert_status(StatusCode::OK)
        .assert_contains(":focus-visible");
    assert_eq!(
        css.headers.get("content-type").unwrap(),
        "text/css; charset=utf-8"
    );
    assert_eq!(
        css.headers.get("cache-control").unwrap(),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(
        css.headers.get("etag").unwrap().to_str().unwrap(),
        format!("\"{version}\"")
    );
    let etag = format!("\"{version}\"");
    let again = anon
        .get_with("/static/app.css", &[("if-none-match", &etag)])
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    anon.get("/static/app.js")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("/tasks/status");
    anon.get("/static/nope.css")
        .await
        .assert_status(StatusCode::NOT_FOUND)
        .assert_contains("Not found");
}

async fn errors_are_pages(backend: Backend) {
    let mut s = seeded(backend).await;
    let b = &mut s.browser;
    for path in [
        "/tasks/nonsense",
        "/tasks/task_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "/no/such/page",
    ] {
        let r = b.get(path).await;
        r.assert_status(StatusCode::NOT_FOUND)
            .assert_contains("<h1 id=\"error-heading\">Not found</h1>");
        assert_eq!(r.headers.get("content-type").unwrap(), "text/html; charset=utf-8");
    }
    b.get("/logout")
        .await
        .assert_status(StatusCode::METHOD_NOT_ALLOWED)
        .assert_contains("Method not allowed");
    b.get("/?from=2026-05-10&to=2026-05-01")
        .await
        .assert_status(StatusCode::BAD_REQUEST)
        .assert_contains("must not be before");
    // Signed out, every page sends you to the login form.
    let mut anon = s.app.browser();
    for path in [
        "/",
        "/tasks",
        "/api-keys",
        "/invoices",
        "/billing",
        &format!("/tasks/{}", s.resolved),
    ] {
        let r = anon.get(path).await;
        r.assert_status(StatusCode::SEE_OTHER);
        assert_eq!(r.location(), Some("/login"), "{path}");
    }
}

on_both_backends!(
    every_page_renders_for_a_seeded_account,
    a_failed_task_shows_no_charge,
    a_resolved_task_shows_its_receipt,
    a_task_shows_its_conversation,
    a_task_shows_its_tool_calls,
    task_list_filters_and_pages,
    api_keys_are_created_once_and_revoked,
    members_see_keys_but_cannot_manage_them,
    static_files_are_cached_by_content_hash,
    errors_are_pages,
);
