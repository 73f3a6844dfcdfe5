//! The operator's API, `/v1/ops/*`, on both backends: a `bk_op_` key sees
//! every account with its live revenue, inference cost and margin; to a
//! customer's key, or no key, the routes do not exist (404); an unknown
//! operator key is a 401, and an operator key is no customer key. The
//! operator and its key are made with the real `bounty` binary.

use std::time::Duration;

use bounty_models::testing::openai::{Behavior, FakeOpenAi};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, TestOptions, assert_error, json_of, test_worker, verified_at_once};

backend_tests!(
    an_operator_key_sees_every_account_and_its_margin,
    the_operator_routes_do_not_exist_for_anyone_else,
);

const WAIT: Duration = Duration::from_secs(30);

async fn app(backend: Backend, fake: &FakeOpenAi) -> TestApp {
    let opts = TestOptions {
        worker: Some(test_worker()),
        ..TestOptions::remote_models(&[("fake", &fake.base_url())])
    };
    TestApp::spawn_with(backend, opts).await
}

/// `bounty users create --operator`, then `bounty api-keys create
/// --operator`: the key's secret.
fn operator_key(app: &TestApp) -> String {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = crate::support::bounty_command(dir.path())
            .args(["--database-url", app.database_url()])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let created = run(&["users", "create", "--operator", "--email", "Ops@Bounty.test"]);
    assert!(created.contains("Created operator op_"), "{created}");
    assert!(created.contains("signs in at /ops"), "{created}");
    let key: Value = serde_json::from_str(&run(&[
        "api-keys",
        "create",
        "--operator",
        "--email",
        "ops@bounty.test",
        "--name",
        "console",
        "--json",
    ]))
    .unwrap();
    assert!(key["prefix"].as_str().unwrap().starts_with("bk_op_"), "{key}");
    key["secret"].as_str().unwrap().to_owned()
}

async fn ops_get(app: &TestApp, path: &str, key: Option<&str>) -> reqwest::Response {
    app.request(Method::GET, path, key).send().await.unwrap()
}

async fn an_operator_key_sees_every_account_and_its_margin(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    fake.set_default(Behavior::reply("Done.", 1000, 100));
    let app = app(backend, &fake).await;
    let (acme, key) = app.create_account("Acme").await;
    let (globex, _) = app.create_account("Globex").await;
    let body = json!({"name": "support", "instructions": "Answer.", "model_route": ["fake"],
                      "verifier_policy": verified_at_once()});
    json_of(app.create_agent(&key, &body).await, 201).await;
    let task = app.task(&key, "support", "Where is my refund?").await;
    let done = app.wait_for_task(&key, task["id"].as_str().unwrap(), WAIT).await;
    assert_eq!(done["status"], "completed", "{done}");
    let op = operator_key(&app);

    let list = json_of(ops_get(&app, "/v1/ops/accounts", Some(&op)).await, 200).await;
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{list}");
    let a = data.iter().find(|a| a["id"] == acme.to_string()).unwrap();
    assert_eq!(a["name"], "Acme");
    assert_eq!(a["status"], "active");
    let f = &a["figures"];
    assert_eq!(f["outcomes_resolved"], 1, "{a}");
    assert_eq!(f["charges_micros"]["USD"], 1_000_000);
    // 1000 × 0.15 + 100 × 0.60 per million = 210 micros of inference.
    assert_eq!(f["inference_cost_micros"]["USD"], 210);
    assert_eq!(f["gross_margin_micros"]["USD"], 1_000_000 - 210);
    assert_eq!(f["gross_margin_pct"]["USD"], 100.0);
    let g = data.iter().find(|a| a["id"] == globex.to_string()).unwrap();
    assert_eq!(g["figures"]["outcomes_resolved"], 0);

    let one = json_of(
        ops_get(&app, &format!("/v1/ops/accounts/{acme}"), Some(&op)).await,
        200,
    )
    .await;
    assert_eq!(one["figures"]["inference_cost_micros"]["USD"], 210, "{one}");
    assert_error(
        ops_get(&app, "/v1/ops/accounts/acct_nope", Some(&op)).await,
        404,
        "not_found",
    )
    .await;
    let paged = json_of(ops_get(&app, "/v1/ops/accounts?limit=1", Some(&op)).await, 200).await;
    assert_eq!(paged["data"].as_array().unwrap().len(), 1);
    let cursor = paged["next_cursor"].as_str().unwrap();
    let rest = json_of(
        ops_get(
            &app,
            &format!("/v1/ops/accounts?limit=1&cursor={cursor}"),
            Some(&op),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert_ne!(rest["data"][0]["id"], paged["data"][0]["id"]);
    assert_error(
        ops_get(&app, "/v1/ops/accounts?from=yesterday", Some(&op)).await,
        400,
        "invalid_request",
    )
    .await;
}

async fn the_operator_routes_do_not_exist_for_anyone_else(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (acme, key) = app.create_account("Acme").await;
    let op = operator_key(&app);
    for path in ["/v1/ops/accounts".to_owned(), format!("/v1/ops/accounts/{acme}")] {
        // A customer key (live or test), no key, a malformed key: no such route.
        assert_error(ops_get(&app, &path, Some(&key)).await, 404, "route_not_found").await;
        assert_error(ops_get(&app, &path, None).await, 404, "route_not_found").await;
        assert_error(
            ops_get(&app, &path, Some("bk_op_nope")).await,
            404,
            "route_not_found",
        )
        .await;
        // An operator key nobody holds: refused.
        let unknown = format!("bk_op_{}", "A".repeat(32));
        assert_error(ops_get(&app, &path, Some(&unknown)).await, 401, "invalid_api_key").await;
        // A customer key with a bad query still learns nothing.
        assert_error(
            ops_get(&app, &format!("{path}?from=yesterday"), Some(&key)).await,
            404,
            "route_not_found",
        )
        .await;
    }
    // An operator key is no customer key.
    assert_error(
        ops_get(&app, "/v1/tasks", Some(&op)).await,
        401,
        "invalid_api_key",
    )
    .await;
    assert_error(
        ops_get(&app, "/v1/account", Some(&op)).await,
        401,
        "invalid_api_key",
    )
    .await;
}
