//! The executor against a real HTTP server on loopback (axum), through
//! the real outbound client: with `allow_private` where the point is what
//! the call sends, without it where the point is the refusal.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use bounty_core::tool::DEFAULT_TIMEOUT_MS;
use bounty_core::{AccountId, AgentId, ToolHeader, ToolMethod, ToolSpec};
use bounty_outbound::{Outbound, OutboundPolicy};
use serde_json::{Value, json};

use super::*;

const TOKEN: &str = "Bearer sk-shop-0123456789";

/// Echoes what it received as JSON: method, path, query, the headers that
/// matter, and the body.
async fn echo(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    axum::Json(json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        // Whether the token arrived: the token itself would be redacted.
        "authorized": header("authorization").as_deref() == Some(TOKEN),
        "idempotency_key": header("idempotency-key"),
        "content_type": header("content-type"),
        "body": String::from_utf8_lossy(&body),
    }))
}

async fn status(Path(code): Path<u16>) -> impl IntoResponse {
    (
        StatusCode::from_u16(code).unwrap(),
        format!("status {code}, token {TOKEN}"),
    )
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(5)).await;
    "late"
}

async fn big() -> String {
    "x".repeat(64 * 1024)
}

async fn server() -> SocketAddr {
    let app = Router::new()
        .route("/status/{code}", get(status))
        .route("/slow", get(slow))
        .route("/big", get(big))
        .fallback(any(echo));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn outbound(allow_private: bool) -> Outbound {
    Outbound::new(OutboundPolicy {
        allow_private,
        max_response_bytes: 32 * 1024,
        ..OutboundPolicy::default()
    })
    .unwrap()
}

fn spec(method: ToolMethod, url: String, side_effects: bool) -> ToolSpec {
    ToolSpec {
        name: "shop".into(),
        description: "The shop API.".into(),
        parameters: json!({
            "type": "object",
            "properties": {
                "order_id": {"type": "string"},
                "verbose": {"type": "boolean"},
                "amount": {"type": "integer", "minimum": 1}
            },
            "required": ["order_id"]
        }),
        method,
        url,
        headers: BTreeMap::from([("Authorization".to_owned(), ToolHeader::Plain(TOKEN.to_owned()))]),
        timeout_ms: DEFAULT_TIMEOUT_MS,
        side_effects,
    }
}

fn prepared(spec: ToolSpec) -> PreparedTool {
    PreparedTool::prepare(spec, AccountId::new(), AgentId::new(), |_, _| None).unwrap()
}

fn body_of(result: &ToolResult) -> Value {
    serde_json::from_str(&result.content).unwrap_or_else(|e| panic!("{e}: {}", result.content))
}

#[tokio::test]
async fn get_fills_the_path_and_puts_the_rest_in_the_query() {
    let addr = server().await;
    let tool = prepared(spec(
        ToolMethod::Get,
        format!("http://{addr}/orders/{{order_id}}/status"),
        false,
    ));
    let result = call_tool(
        &outbound(true),
        &tool,
        &json!({"order_id": "A/1 ?#..", "verbose": true}),
        "key-1",
    )
    .await;
    assert_eq!(result.outcome, ToolOutcome::Ok, "{}", result.content);
    assert_eq!(result.status, Some(200));
    let seen = body_of(&result);
    assert_eq!(seen["method"], "GET");
    // The argument stays one path segment, whatever it holds.
    assert_eq!(seen["path"], "/orders/A%2F1%20%3F%23../status");
    assert_eq!(seen["query"], "verbose=true");
    // The header reached the tool, but no side effects: no key.
    assert_eq!(seen["authorized"], true);
    assert_eq!(seen["idempotency_key"], Value::Null);
    let record = &result.redacted;
    assert_eq!(record["tool"], "shop");
    assert_eq!(record["method"], "GET");
    assert_eq!(record["host"], "127.0.0.1");
    assert_eq!(record["status"], 200);
    assert_eq!(record["outcome"], "ok");
    assert_eq!(record["error"], Value::Null);
    assert_eq!(record["truncated"], false);
    assert!(record["latency_ms"].is_u64());
    assert!(!record.to_string().contains("sk-shop"));
}

#[tokio::test]
async fn post_sends_a_json_body_and_a_stable_idempotency_key_when_it_has_side_effects() {
    let addr = server().await;
    let tool = prepared(spec(
        ToolMethod::Post,
        format!("http://{addr}/orders/{{order_id}}/refund"),
        true,
    ));
    let args = json!({"order_id": "A1", "amount": 250});
    let first = call_tool(&outbound(true), &tool, &args, "task_1/turn_0/step_2").await;
    let again = call_tool(&outbound(true), &tool, &args, "task_1/turn_0/step_2").await;
    for result in [&first, &again] {
        assert_eq!(result.outcome, ToolOutcome::Ok, "{}", result.content);
        let seen = body_of(result);
        assert_eq!(seen["method"], "POST");
        assert_eq!(seen["path"], "/orders/A1/refund");
        assert_eq!(seen["query"], Value::Null);
        assert_eq!(seen["idempotency_key"], "task_1/turn_0/step_2");
        assert_eq!(seen["content_type"], "application/json");
        let sent: Value = serde_json::from_str(seen["body"].as_str().unwrap()).unwrap();
        assert_eq!(sent, json!({"amount": 250}));
    }
    // Without side effects, a POST carries no key.
    let plain = prepared(spec(
        ToolMethod::Post,
        format!("http://{addr}/notes/{{order_id}}"),
        false,
    ));
    let seen = body_of(&call_tool(&outbound(true), &plain, &args, "k").await);
    assert_eq!(seen["idempotency_key"], Value::Null);
}

#[tokio::test]
async fn invalid_arguments_are_shown_to_the_model_and_nothing_is_sent() {
    let tool = prepared(spec(
        ToolMethod::Get,
        "http://127.0.0.1:9/o/{order_id}".into(),
        false,
    ));
    for bad in [
        json!({"amount": 3}),
        json!({"order_id": 7}),
        json!({"order_id": "a", "amount": 0}),
        json!([1]),
    ] {
        let result = call_tool(&outbound(true), &tool, &bad, "k").await;
        assert_eq!(result.outcome, ToolOutcome::ClientError, "{bad}");
        assert_eq!(result.status, None);
        assert!(
            result.content.starts_with("invalid arguments for tool \"shop\""),
            "{}",
            result.content
        );
        assert_eq!(result.latency, Duration::ZERO);
        assert_eq!(result.redacted["outcome"], "client_error");
        assert_eq!(result.redacted["error"], result.content.as_str());
    }
    let dots = call_tool(&outbound(true), &tool, &json!({"order_id": ".."}), "k").await;
    assert_eq!(dots.outcome, ToolOutcome::ClientError);
    assert!(
        dots.content.contains("may not be `.` or `..`"),
        "{}",
        dots.content
    );
}

#[tokio::test]
async fn statuses_map_to_outcomes() {
    let addr = server().await;
    let tool = prepared(spec(
        ToolMethod::Get,
        format!("http://{addr}/status/{{order_id}}"),
        false,
    ));
    for (code, want) in [
        ("200", ToolOutcome::Ok),
        ("204", ToolOutcome::Ok),
        ("404", ToolOutcome::ClientError),
        ("422", ToolOutcome::ClientError),
        ("429", ToolOutcome::Down),
        ("500", ToolOutcome::Down),
        ("503", ToolOutcome::Down),
    ] {
        let result = call_tool(&outbound(true), &tool, &json!({"order_id": code}), "k").await;
        assert_eq!(result.outcome, want, "{code}");
        assert_eq!(result.status, Some(code.parse().unwrap()));
        assert_eq!(result.redacted["status"], code.parse::<u16>().unwrap());
        // The body echoes the token: the model and the record see it redacted.
        assert!(!result.content.contains("sk-shop"), "{}", result.content);
        assert!(
            code == "204" || result.content.contains(REDACTED),
            "{}",
            result.content
        );
        assert!(!result.redacted.to_string().contains("sk-shop"));
    }
    assert!(ToolOutcome::Down.is_transient());
    assert!(!ToolOutcome::Refused.is_transient());
    assert!(ToolOutcome::ClientError.continues());
}

#[tokio::test]
async fn a_timeout_an_oversized_body_and_a_dead_port_are_down() {
    let addr = server().await;
    let mut slow = spec(
        ToolMethod::Get,
        format!("http://{addr}/slow?id={{order_id}}"),
        false,
    );
    slow.timeout_ms = 200;
    let result = call_tool(&outbound(true), &prepared(slow), &json!({"order_id": "1"}), "k").await;
    assert_eq!(result.outcome, ToolOutcome::Down);
    assert_eq!(result.status, None);
    assert!(
        result.content.contains("within its timeout of 200 ms"),
        "{}",
        result.content
    );
    assert!(result.latency < Duration::from_secs(2));

    let big = prepared(spec(
        ToolMethod::Get,
        format!("http://{addr}/big?id={{order_id}}"),
        false,
    ));
    let result = call_tool(&outbound(true), &big, &json!({"order_id": "1"}), "k").await;
    assert_eq!(result.outcome, ToolOutcome::Down);
    assert_eq!(
        result.redacted["error"].as_str().map(|e| e.contains("more than")),
        Some(true)
    );

    let dead = prepared(spec(
        ToolMethod::Get,
        "http://127.0.0.1:9/o/{order_id}".into(),
        false,
    ));
    let result = call_tool(&outbound(true), &dead, &json!({"order_id": "1"}), "k").await;
    assert_eq!(result.outcome, ToolOutcome::Down, "{}", result.content);
}

#[tokio::test]
async fn long_bodies_are_cut_for_the_model_and_for_the_record() {
    let addr = server().await;
    let tool = prepared(spec(
        ToolMethod::Post,
        format!("http://{addr}/echo/{{order_id}}"),
        false,
    ));
    let long = "é".repeat(2000);
    let result = call_tool(&outbound(true), &tool, &json!({"order_id": long}), "k").await;
    assert_eq!(result.outcome, ToolOutcome::Ok);
    assert!(result.content.len() <= MAX_CONTENT_BYTES + 64);
    assert!(
        result.content.ends_with("bytes]"),
        "{}",
        &result.content[result.content.len() - 40..]
    );
    assert!(result.redacted["body"].as_str().unwrap().len() <= MAX_REDACTED_BODY_BYTES);
    assert_eq!(result.redacted["truncated"], true);
}

#[tokio::test]
async fn a_private_address_is_refused_without_allow_private() {
    let addr = server().await;
    let tool = prepared(spec(
        ToolMethod::Get,
        format!("http://{addr}/o/{{order_id}}"),
        true,
    ));
    let result = call_tool(&outbound(false), &tool, &json!({"order_id": "1"}), "k").await;
    assert_eq!(result.outcome, ToolOutcome::Refused);
    assert!(!result.outcome.is_transient());
    assert!(result.content.contains("loopback"), "{}", result.content);
    let localhost = prepared(spec(
        ToolMethod::Get,
        format!("http://localhost:{}/o/{{order_id}}", addr.port()),
        false,
    ));
    let result = call_tool(&outbound(false), &localhost, &json!({"order_id": "1"}), "k").await;
    assert_eq!(result.outcome, ToolOutcome::Refused, "{}", result.content);
}

#[tokio::test]
async fn sealed_values_are_opened_with_their_binding_and_a_value_that_does_not_open_refuses_the_call() {
    let addr = server().await;
    let account = AccountId::new();
    let agent = AgentId::new();
    let mut sealed = spec(ToolMethod::Get, format!("http://{addr}/o/{{order_id}}"), false);
    sealed.headers = BTreeMap::from([(
        "Authorization".to_owned(),
        ToolHeader::Sealed("v1.k1.opaque".into()),
    )]);
    let want_aad = bounty_core::tool::tool_header_aad(account, agent, "shop", "Authorization");
    let tool = PreparedTool::prepare(sealed.clone(), account, agent, |s, aad| {
        (s == "v1.k1.opaque" && aad == want_aad.as_bytes()).then(|| TOKEN.to_owned())
    })
    .unwrap();
    let result = call_tool(&outbound(true), &tool, &json!({"order_id": "1"}), "k").await;
    assert_eq!(body_of(&result)["authorized"], true);
    assert!(!format!("{tool:?}").contains("sk-shop"));

    let broken = PreparedTool::prepare(sealed, account, agent, |_, _| None).unwrap();
    let result = call_tool(&outbound(true), &broken, &json!({"order_id": "1"}), "k").await;
    assert_eq!(result.outcome, ToolOutcome::Refused);
    assert!(
        result.content.contains("`Authorization` does not open"),
        "{}",
        result.content
    );
    assert!(!result.content.contains("v1.k1"));
}

#[test]
fn idempotency_keys_are_stable_per_step() {
    let task = bounty_core::TaskId::new();
    assert_eq!(idempotency_key(task, 0, 2), idempotency_key(task, 0, 2));
    assert_ne!(idempotency_key(task, 0, 2), idempotency_key(task, 1, 2));
    assert_ne!(idempotency_key(task, 0, 2), idempotency_key(task, 0, 3));
    assert_ne!(
        idempotency_key(task, 0, 2),
        idempotency_key(bounty_core::TaskId::new(), 0, 2)
    );
    assert!(idempotency_key(task, 0, 2).starts_with("task_"));
}
