//! The dispute round trip in the dashboard: an owner disputes a charge
//! from its task's page, downloads the evidence pack, and sees the
//! operator's decision; the operator decides in the console's queue. A
//! member cannot dispute, a rejection needs a reason, and another
//! account's dispute is not found.

use bounty_store::{Email, UserRole};
use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::seed::{self, PASSWORD};
use crate::support::{Backend, Browser, TestApp, cheap_hasher};

async fn operator_browser(app: &TestApp) -> Browser {
    let hash = cheap_hasher().hash(PASSWORD).unwrap();
    app.store
        .create_operator(&Email::parse("ops@bounty.test").unwrap(), &hash)
        .await
        .unwrap()
        .unwrap();
    let mut b = app.browser();
    let form = b.get("/ops/login").await;
    let csrf = form.csrf();
    let r = b
        .post(
            "/ops/login",
            &[
                ("email", "ops@bounty.test"),
                ("password", PASSWORD),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(r.location(), Some("/ops"));
    b
}

async fn a_dispute_goes_from_the_receipt_to_the_queue_and_back(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let acme = seed::tenant(&app.store, "Acme").await;
    seed::user(&app.store, acme.account, "ann@acme.test", UserRole::Owner).await;
    seed::user(&app.store, acme.account, "bob@acme.test", UserRole::Member).await;
    let kept = seed::resolved_task(&app.store, &acme, "Refund for order 1042").await;
    let reversed = seed::resolved_task(&app.store, &acme, "Cancel order 77").await;
    let failed = seed::failed_task(&app.store, &acme, "Where is my parcel").await;

    // A member reads the receipt but cannot dispute.
    let mut bob = app.logged_in("bob@acme.test", PASSWORD).await;
    bob.get(&format!("/tasks/{kept}"))
        .await
        .assert_lacks("Dispute this charge");
    let csrf = bob.csrf().await;
    bob.post(
        &format!("/tasks/{kept}/dispute"),
        &[("csrf", &csrf), ("reason", "other")],
    )
    .await
    .assert_status(StatusCode::FORBIDDEN);

    let mut ann = app.logged_in("ann@acme.test", PASSWORD).await;
    ann.get(&format!("/tasks/{failed}"))
        .await
        .assert_lacks("Dispute this charge");
    let page = ann.get(&format!("/tasks/{kept}")).await;
    page.assert_contains("Dispute this charge")
        .assert_contains("Charged twice for one ticket");
    let csrf = page.csrf();
    ann.post(
        &format!("/tasks/{kept}/dispute"),
        &[("csrf", &csrf), ("reason", "angry")],
    )
    .await
    .assert_status(StatusCode::BAD_REQUEST)
    .assert_contains("not_resolved");
    for (task, reason) in [(kept, "wrong_answer"), (reversed, "not_resolved")] {
        let r = ann
            .post(
                &format!("/tasks/{task}/dispute"),
                &[
                    ("csrf", &csrf),
                    ("reason", reason),
                    ("comment", "The customer wrote back."),
                ],
            )
            .await;
        r.assert_status(StatusCode::SEE_OTHER);
        assert_eq!(r.location(), Some(format!("/tasks/{task}#dispute").as_str()));
    }
    // Twice is refused.
    ann.post(
        &format!("/tasks/{kept}/dispute"),
        &[("csrf", &csrf), ("reason", "other")],
    )
    .await
    .assert_status(StatusCode::BAD_REQUEST)
    .assert_contains("disputed already");
    let page = ann.get(&format!("/tasks/{kept}")).await;
    page.assert_contains("The answer was wrong")
        .assert_contains("open")
        .assert_lacks("Dispute this charge");
    let href = page
        .body
        .split("href=\"")
        .find_map(|s| s.strip_prefix("/disputes/").and_then(|s| s.split('"').next()))
        .map(|s| format!("/disputes/{s}"))
        .expect("an evidence link");
    let pack = ann.get(&href).await;
    pack.assert_status(StatusCode::OK);
    let sha = pack
        .headers
        .get("x-evidence-sha256")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    page.assert_contains(&sha);
    let json: serde_json::Value = serde_json::from_str(&pack.body).unwrap();
    assert_eq!(json["dispute"]["reason"], "wrong_answer");
    // Another account does not find it.
    let globex = seed::tenant(&app.store, "Globex").await;
    seed::user(&app.store, globex.account, "gil@globex.test", UserRole::Owner).await;
    let mut gil = app.logged_in("gil@globex.test", PASSWORD).await;
    gil.get(&href).await.assert_status(StatusCode::NOT_FOUND);

    // The operator's queue: both open; reject one (a reason is required),
    // accept the other.
    let mut op = operator_browser(&app).await;
    let queue = op.get("/ops/disputes").await;
    queue
        .assert_status(StatusCode::OK)
        .assert_contains("aria-current=\"page\">Disputes</a>")
        .assert_contains("wrong_answer")
        .assert_contains("The customer wrote back.");
    let csrf = queue.csrf();
    let ids: Vec<String> = queue
        .body
        .split("action=\"/ops/disputes/")
        .skip(1)
        .filter_map(|s| s.split('/').next().map(str::to_owned))
        .collect();
    assert_eq!(ids.len(), 4, "accept and reject for two disputes: {ids:?}");
    let store_dispute = |task| {
        let store = app.store.clone();
        let account = acme.account;
        async move {
            let o = store.outcome_of_task(account, task).await.unwrap().unwrap();
            store.dispute_of_outcome(account, o.id).await.unwrap().unwrap()
        }
    };
    let d_kept = store_dispute(kept).await;
    let d_reversed = store_dispute(reversed).await;
    op.post(
        &format!("/ops/disputes/{}/reject", d_kept.id),
        &[("csrf", &csrf), ("reason", " ")],
    )
    .await
    .assert_status(StatusCode::BAD_REQUEST)
    .assert_contains("needs a reason");
    let why = "The transcript shows the refund was issued.";
    op.post(
        &format!("/ops/disputes/{}/reject", d_kept.id),
        &[("csrf", &csrf), ("reason", why)],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    op.post(
        &format!("/ops/disputes/{}/accept", d_reversed.id),
        &[("csrf", &csrf), ("reason", "")],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    op.post(
        &format!("/ops/disputes/{}/accept", d_reversed.id),
        &[("csrf", &csrf)],
    )
    .await
    .assert_status(StatusCode::BAD_REQUEST)
    .assert_contains("accepted already");
    op.get("/ops/disputes").await.assert_contains("No open disputes.");
    op.get("/ops/disputes?status=all")
        .await
        .assert_contains("rejected")
        .assert_contains("accepted")
        .assert_contains(why);
    op.get(&format!("/ops/disputes/{}/evidence.json", d_kept.id))
        .await
        .assert_status(StatusCode::OK);
    // The customer sees both decisions; the accepted one's charge is reversed.
    ann.get(&format!("/tasks/{kept}"))
        .await
        .assert_contains("rejected, decided by the operator")
        .assert_contains(why);
    ann.get(&format!("/tasks/{reversed}"))
        .await
        .assert_contains("accepted, decided by the operator")
        .assert_contains("This charge was reversed")
        .assert_contains("Reversed by the operator on ")
        .assert_contains(": your dispute was accepted. You are not billed for it.")
        .assert_contains("<s>1.00 USD</s>");
    ann.get(&format!("/tasks/{kept}"))
        .await
        .assert_contains("Resolved: the verifiers checked the answer and passed it.")
        .assert_contains("<summary>Rating receipt</summary>");
    // Each side sees the dispute rate: 2 disputes of 2 charged outcomes.
    ann.get("/").await.assert_contains("2 (1 accepted) · 100.0%");
    op.get("/ops").await.assert_contains("2 (1 accepted) · 100.0%");
    op.get(&format!("/ops/accounts/{}", acme.account))
        .await
        .assert_contains("2 (1 accepted) · 100.0%")
        .assert_contains("<dt>Disputes of support</dt><dd>2 (1 accepted) · 100.0%</dd>");
    // A customer never reaches the queue.
    let r = ann.get("/ops/disputes").await;
    assert_eq!(r.location(), Some("/ops/login"));
}

on_both_backends!(a_dispute_goes_from_the_receipt_to_the_queue_and_back);
