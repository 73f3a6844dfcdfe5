//! Hostile input on every route that takes a body, on both backends: a
//! NUL character (`\u0000`, which Postgres `text` refuses) and a body over
//! the limit. Each gets a 4xx with its stable code, never a 5xx, and
//! nothing of it is stored.
//!
//! The routes are those of `bounty_server::api()` that read a body (the
//! `/v1` writes and both webhooks) and the dashboard's POST forms
//! (`bounty_web::router`). A NUL is a 422 `validation_failed` naming the
//! field by its JSON path (`input.body`), in a query string a 422 naming
//! the parameter; in a verified helpdesk webhook it is a 400
//! `invalid_payload` naming the field when it is in an identifier, and
//! dropped from message text (a real ticket is still a ticket). A body
//! over the limit is a JSON 413 `payload_too_large` everywhere, the
//! webhooks included; the dashboard answers its forms with a 413 page.
//! A model's answer is hostile input too (under BYOK the endpoint is the
//! customer's): a NUL in it is dropped, and the task still finishes.

use bounty_integrations::{Delivery, IntegrationKind, sign};
use bounty_models::testing::openai::{Behavior, FakeOpenAi};
use bounty_server::Limits;
use bounty_store::{Email, NewSession, SessionTokenHash, UserRole};
use reqwest::{Method, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{Backend, NOWHERE, TestApp, TestOptions, assert_error, json_of, test_worker};

backend_tests!(
    a_nul_in_any_api_field_is_a_422_naming_it,
    a_nul_in_a_query_string_or_path_is_a_4xx,
    webhooks_refuse_a_nul_or_drop_it_never_a_500,
    an_oversized_body_is_a_json_413_on_every_api_route,
    dashboard_forms_refuse_a_nul_and_an_oversized_body,
    integration_names_are_validated_like_other_names,
    a_nul_in_a_model_answer_is_dropped_and_the_task_finishes,
);

/// The body limit of these tests: small, so oversized bodies are cheap.
const LIMIT: usize = 16 * 1024;
/// The Stripe webhook signing secret.
const STRIPE_SECRET: &str = "whsec_hostile_test";
/// The dashboard session's token (43 base64url characters: 32 zero bytes)
/// and CSRF secret.
const SESSION_TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const CSRF: &str = "hostile-test-csrf-secret";

/// The server, an account with an agent, an integration and a dashboard
/// session.
struct World {
    app: TestApp,
    key: String,
    agent: String,
    integration: String,
    secret: String,
    api_key_id: String,
}

async fn world(backend: Backend) -> World {
    let opts = TestOptions {
        limits: Limits {
            body_limit_bytes: LIMIT,
            ..Limits::default()
        },
        stripe_webhook_secrets: vec![STRIPE_SECRET.to_owned()],
        ..TestOptions::remote_models(&[("fast", NOWHERE)])
    };
    let app = TestApp::spawn_with(backend, opts).await;
    let (account, key) = app.create_account("Acme").await;
    let agent = app.agent(&key, "support", &["fast"], None).await;
    let created = json_of(
        app.request(Method::POST, "/v1/integrations", Some(&key))
            .json(&json!({"kind": "standard", "name": "Desk", "agent": "support"}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let keys = json_of(app.list_keys(&key, "").await, 200).await;
    // A dashboard owner with a live session, made in the store.
    let email = Email::parse("owner@example.com").unwrap();
    let user = app
        .store
        .create_user(account, &email, "not-a-real-hash", UserRole::Owner)
        .await
        .unwrap()
        .unwrap();
    let digest: String = Sha256::digest([0u8; 32])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let session = NewSession {
        token_hash: SessionTokenHash::from_hex(digest),
        csrf_secret: CSRF.to_owned(),
        expires_at: app.store.now() + chrono::Duration::hours(1),
    };
    app.store
        .create_session(account, user.id, &session)
        .await
        .unwrap()
        .unwrap();
    World {
        key,
        agent: agent["id"].as_str().unwrap().to_owned(),
        integration: created["id"].as_str().unwrap().to_owned(),
        secret: created["secret"].as_str().unwrap().to_owned(),
        api_key_id: keys["data"][0]["id"].as_str().unwrap().to_owned(),
        app,
    }
}

impl World {
    /// Sends `body` as JSON text (`\u0000` escapes kept as written).
    async fn send(&self, method: Method, path: &str, body: impl Into<reqwest::Body>) -> Response {
        self.app
            .request(method, path, Some(&self.key))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Every `/v1` route that reads a body, with a body holding a NUL in
    /// one field, and that field's path.
    fn api_routes_with_a_nul(&self) -> Vec<(Method, String, &'static str, &'static str)> {
        let agent = format!("/v1/agents/{}", self.agent);
        let rotate = format!("/v1/integrations/{}/rotate-secret", self.integration);
        vec![
            (
                Method::POST,
                "/v1/api-keys".into(),
                r#"{"name": "ci\u0000"}"#,
                "name",
            ),
            (
                Method::POST,
                "/v1/agents".into(),
                r#"{"name": "other", "instructions": "Answer.\u0000", "model_route": ["fast"]}"#,
                "instructions",
            ),
            (
                Method::POST,
                "/v1/agents".into(),
                r#"{"name": "other", "instructions": "x", "model_route": ["fast"],
                    "verifier_policy": {"verifiers": [{"kind": "rules", "forbidden_phrases": ["\u0000"]}]}}"#,
                "verifier_policy.verifiers[0].forbidden_phrases[0]",
            ),
            (
                Method::PATCH,
                agent.clone(),
                r#"{"model_route": ["fa\u0000st"]}"#,
                "model_route[0]",
            ),
            (
                Method::PATCH,
                agent,
                r#"{"output_schema": {"title": "\u0000"}}"#,
                "output_schema.title",
            ),
            (
                Method::POST,
                "/v1/tasks".into(),
                r#"{"agent": "sup\u0000port", "input": {"body": "hi"}}"#,
                "agent",
            ),
            (
                Method::POST,
                "/v1/tasks".into(),
                r#"{"agent": "support", "input": {"subject": "Help", "body": "a\u0000b"}}"#,
                "input.body",
            ),
            (
                Method::POST,
                "/v1/tasks".into(),
                r#"{"agent": "support", "input": {"body": "hi", "customer": {"email": "a\u0000@b.c"}}}"#,
                "input.customer.email",
            ),
            (
                Method::POST,
                "/v1/tasks".into(),
                r#"{"agent": "support", "input": {"body": "hi", "metadata": {"k": ["\u0000"]}}}"#,
                "input.metadata.k[0]",
            ),
            (
                Method::POST,
                "/v1/outcomes/out_01J00000000000000000000000/signals".into(),
                r#"{"kind": "solved\u0000"}"#,
                "kind",
            ),
            (
                Method::POST,
                "/v1/credits/grants".into(),
                r#"{"cu": "1", "memo": "\u0000"}"#,
                "memo",
            ),
            (
                Method::PUT,
                "/v1/byok".into(),
                r#"{"base_url": "https://api.example.com/v1", "api_key": "sk-\u0000"}"#,
                "api_key",
            ),
            (
                Method::POST,
                "/v1/integrations".into(),
                r#"{"kind": "standard", "name": "Desk\u0000", "agent": "support"}"#,
                "name",
            ),
            (Method::POST, rotate, r#"{"secret": "whsec_\u0000"}"#, "secret"),
        ]
    }

    /// Every dashboard POST route, with its form fields.
    fn dashboard_routes(&self) -> Vec<(String, &'static str)> {
        let agent = format!("/agents/{}", self.agent);
        let int = format!("/integrations/{}", self.integration);
        vec![
            ("/logout".into(), "x=1"),
            (
                "/agents".into(),
                "name=other&instructions=x&model_route=fast&window_hours=24",
            ),
            (
                agent,
                "name=support&instructions=x&model_route=fast&window_hours=24",
            ),
            ("/api-keys".into(), "name=ci&mode=test"),
            (format!("/api-keys/{}/revoke", self.api_key_id), "x=1"),
            ("/integrations".into(), "kind=standard&name=Desk&agent=x"),
            (format!("{int}/rotate-secret"), "grace_hours=1"),
            (format!("{int}/delete"), "x=1"),
            (format!("{int}/test-delivery"), "x=1"),
        ]
    }

    /// POSTs a form as the signed-in owner.
    async fn post_form(&self, path: &str, body: impl Into<reqwest::Body>) -> Response {
        self.app
            .request(Method::POST, path, None)
            .header("cookie", format!("bounty_session={SESSION_TOKEN}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// A Standard Webhooks delivery of `body` to the integration.
    async fn helpdesk(&self, body: &str, id: &str) -> Response {
        let headers = sign(
            IntegrationKind::Standard,
            self.secret.as_bytes(),
            body.as_bytes(),
            &Delivery {
                id,
                timestamp: chrono::Utc::now(),
            },
        )
        .unwrap();
        let mut rb = self
            .app
            .request(Method::POST, &format!("/webhooks/in/{}", self.integration), None)
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (k, v) in headers {
            rb = rb.header(k, v);
        }
        rb.send().await.unwrap()
    }

    /// A Stripe delivery of `body`, signed.
    async fn stripe(&self, body: &str) -> Response {
        let t = chrono::Utc::now().timestamp();
        self.app
            .request(Method::POST, "/webhooks/stripe", None)
            .header(
                "stripe-signature",
                bounty_billing::signature::sign(body.as_bytes(), STRIPE_SECRET, t),
            )
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }
}

/// A ticket created event of the Standard contract.
fn ticket(id: &str, body: &str) -> String {
    json!({
        "type": "ticket.created",
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "data": {"ticket_id": id, "subject": "Help", "body": body},
    })
    .to_string()
}

async fn a_nul_in_any_api_field_is_a_422_naming_it(backend: Backend) {
    let w = world(backend).await;
    for (method, path, body, param) in w.api_routes_with_a_nul() {
        let resp = w.send(method.clone(), &path, body).await;
        let e = assert_error(resp, 422, "validation_failed").await;
        assert_eq!(e["error"]["param"], param, "{method} {path}: {e}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains("NUL"),
            "{method} {path}: {e}"
        );
    }
    // Nothing of it was stored.
    let tasks = json_of(
        w.app
            .request(Method::GET, "/v1/tasks", Some(&w.key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(tasks["data"], json!([]), "{tasks}");
    let keys = json_of(w.app.list_keys(&w.key, "").await, 200).await;
    assert_eq!(keys["data"].as_array().unwrap().len(), 1, "{keys}");
    assert_eq!(w.app.get("/readyz").await.status(), 200);
}

async fn a_nul_in_a_query_string_or_path_is_a_4xx(backend: Backend) {
    let w = world(backend).await;
    for (path, param) in [
        ("/v1/tasks?agent=sup%00port", "agent"),
        ("/v1/tasks?status=%00", "status"),
        ("/v1/api-keys?cursor=key_%00", "cursor"),
        ("/v1/outcomes?agent=%00", "agent"),
        ("/v1/agents?limit=1&x%00=1", "x\\u0000"),
    ] {
        let resp = w
            .app
            .request(Method::GET, path, Some(&w.key))
            .send()
            .await
            .unwrap();
        let e = assert_error(resp, 422, "validation_failed").await;
        assert_eq!(e["error"]["param"], param, "{path}: {e}");
    }
    for path in [
        "/v1/tasks/task_%00",
        "/v1/agents/agt_%00",
        "/v1/outcomes/%00",
        "/v1/integrations/int_%00",
        "/v1/integrations/int_%00/deliveries",
        "/v1/api-keys/%00",
    ] {
        let resp = w
            .app
            .request(Method::GET, path, Some(&w.key))
            .send()
            .await
            .unwrap();
        assert_error(resp, 404, "not_found").await;
    }
    let resp = w.send(Method::POST, "/webhooks/in/int_%00", "{}").await;
    assert_error(resp, 404, "not_found").await;
    // The dashboard's queries too.
    for path in ["/tasks?q=%00", "/tasks?agent=%00", "/usage?from=%00"] {
        let resp = w
            .app
            .request(Method::GET, path, None)
            .header("cookie", format!("bounty_session={SESSION_TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 422, "{path}");
    }
    assert_eq!(w.app.get("/readyz").await.status(), 200);
}

async fn webhooks_refuse_a_nul_or_drop_it_never_a_500(backend: Backend) {
    let w = world(backend).await;
    // An identifier holding a NUL cannot be stored or trusted: refused,
    // naming the field.
    let resp = w
        .helpdesk(&ticket("T-\u{0}1", "Where is my refund?"), "msg_nul_1")
        .await;
    let e = assert_error(resp, 400, "invalid_payload").await;
    assert_eq!(e["error"]["param"], "data.ticket_id", "{e}");
    let body = json!({
        "type": "ticket.created",
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "data": {"ticket_id": "T-2", "body": "hi", "customer": {"email": "a\u{0}@example.com"}},
    })
    .to_string();
    let e = assert_error(w.helpdesk(&body, "msg_nul_2").await, 400, "invalid_payload").await;
    assert_eq!(e["error"]["param"], "data.customer.email", "{e}");
    // In message text the NUL is dropped: the ticket is still worked.
    let resp = w
        .helpdesk(&ticket("T-3", "Where is\u{0} my refund?"), "msg_nul_3")
        .await;
    let accepted = json_of(resp, 202).await;
    let task = w
        .app
        .get_task(&w.key, accepted["task_id"].as_str().unwrap())
        .await;
    assert_eq!(task["input"]["body"], "Where is my refund?", "{task}");

    // Stripe: unsigned, refused for the signature; signed, for the field.
    let event = r#"{"id": "evt_1", "type": "invoice.paid", "data": {"object": {"id": "in_\u0000", "customer": "cus_x"}}}"#;
    let unsigned = w.send(Method::POST, "/webhooks/stripe", event).await;
    assert_error(unsigned, 400, "invalid_signature").await;
    let e = assert_error(w.stripe(event).await, 422, "validation_failed").await;
    assert_eq!(e["error"]["param"], "data.object.id", "{e}");
    let e = assert_error(
        w.stripe(r#"{"id": "evt_\u0000", "type": "invoice.paid"}"#).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(e["error"]["param"], "id", "{e}");
    assert_eq!(w.app.get("/readyz").await.status(), 200);
}

async fn an_oversized_body_is_a_json_413_on_every_api_route(backend: Backend) {
    let w = world(backend).await;
    let big = format!(r#"{{"name": "{}"}}"#, "x".repeat(LIMIT * 2));
    let mut routes: Vec<(Method, String)> = w
        .api_routes_with_a_nul()
        .into_iter()
        .map(|(m, p, _, _)| (m, p))
        .collect();
    routes.dedup();
    routes.push((Method::POST, "/webhooks/stripe".into()));
    routes.push((Method::POST, format!("/webhooks/in/{}", w.integration)));
    for (method, path) in routes {
        let resp = w.send(method.clone(), &path, big.clone()).await;
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            content_type.starts_with("application/json"),
            "{method} {path}: {content_type}"
        );
        assert_error(resp, 413, "payload_too_large").await;
    }
    // A signed webhook body over the limit is refused the same way: the
    // limit is read before the signature.
    let resp = w
        .helpdesk(&ticket("T-big", &"x".repeat(LIMIT * 2)), "msg_big")
        .await;
    assert_error(resp, 413, "payload_too_large").await;
    assert_error(w.stripe(&big).await, 413, "payload_too_large").await;
}

async fn dashboard_forms_refuse_a_nul_and_an_oversized_body(backend: Backend) {
    let w = world(backend).await;
    for (path, fields) in w.dashboard_routes() {
        let resp = w
            .post_form(&path, format!("csrf={CSRF}&{fields}&evil=a%00b"))
            .await;
        assert_eq!(resp.status(), 422, "{path}");
        let page = resp.text().await.unwrap();
        assert!(page.contains("`evil`") && page.contains("NUL"), "{path}: {page}");
        let big = format!("csrf={CSRF}&{fields}&name={}", "x".repeat(LIMIT * 2));
        let resp = w.post_form(&path, big).await;
        assert_eq!(resp.status(), 413, "{path}");
    }
    // The login form, before any session.
    for (body, status) in [
        ("csrf=x&email=a%00@example.com&password=p".to_owned(), 422),
        (
            format!("csrf=x&email=a@example.com&password={}", "x".repeat(LIMIT * 2)),
            413,
        ),
    ] {
        let resp = w
            .app
            .request(Method::POST, "/login", None)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status);
    }
    // Nothing was done: the session, the key and the integration are there.
    let keys = json_of(w.app.list_keys(&w.key, "").await, 200).await;
    assert_eq!(keys["data"].as_array().unwrap().len(), 1, "{keys}");
    assert!(keys["data"][0]["revoked_at"].is_null(), "{keys}");
    let resp = w
        .app
        .request(
            Method::GET,
            &format!("/v1/integrations/{}", w.integration),
            Some(&w.key),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = w
        .app
        .request(Method::GET, "/tasks", None)
        .header("cookie", format!("bounty_session={SESSION_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "the session was not logged out");
}

async fn integration_names_are_validated_like_other_names(backend: Backend) {
    let w = world(backend).await;
    for name in [
        json!("   "),
        json!("Desk\nTwo"),
        json!("Desk\u{7}"),
        json!("x".repeat(101)),
    ] {
        let body = json!({"kind": "standard", "name": name, "agent": "support"});
        let resp = w
            .app
            .request(Method::POST, "/v1/integrations", Some(&w.key))
            .json(&body)
            .send()
            .await
            .unwrap();
        let e = assert_error(resp, 422, "validation_failed").await;
        assert_eq!(e["error"]["param"], "name", "{name}: {e}");
    }
    let created: Value = json_of(
        w.app
            .request(Method::POST, "/v1/integrations", Some(&w.key))
            .json(&json!({"kind": "standard", "name": "  Zendesk (EU)  ", "agent": "support"}))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    assert_eq!(created["name"], "Zendesk (EU)", "trimmed");
}

async fn a_nul_in_a_model_answer_is_dropped_and_the_task_finishes(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    fake.push(Behavior::reply("Your refund\u{0} is on its way.", 100, 10));
    let opts = TestOptions {
        worker: Some(test_worker()),
        ..TestOptions::remote_models(&[("fake", &fake.base_url())])
    };
    let app = TestApp::spawn_with(backend, opts).await;
    let (_, key) = app.create_account("Acme").await;
    app.agent(&key, "support", &["fake"], None).await;
    let task = app.task(&key, "support", "Where is my refund?").await;
    let done = app
        .wait_for_task(
            &key,
            task["id"].as_str().unwrap(),
            std::time::Duration::from_secs(30),
        )
        .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["output"]["text"], "Your refund is on its way.", "{done}");
    assert_eq!(done["outcome"]["status"], "resolved", "{done}");
}
