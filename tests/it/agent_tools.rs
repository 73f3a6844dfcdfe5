//! Agents' tools, knowledge, steps and hand-off through `/v1/agents`
//! (issue 17): every bad tool definition is a 422 naming its field; a
//! valid agent round-trips; knowledge must be the account's own; another
//! account sees nothing; header values are sealed, never returned and
//! never logged, and `"[sealed]"` sent back keeps the value, proven by
//! calling the tool against a real server that records the header.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::any;
use bounty_agents::tools::{PreparedTool, ToolOutcome, call_tool};
use bounty_core::tool::tool_header_aad;
use bounty_core::{AgentId, ToolHeader};
use bounty_outbound::{Outbound, OutboundPolicy};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, TestOptions, assert_error, json_of, logged};

backend_tests!(
    bad_tool_definitions_name_their_field,
    a_tool_on_a_private_address_is_refused,
    a_valid_agent_round_trips,
    knowledge_of_another_account_is_refused,
    another_account_cannot_read_the_agent_or_its_tools,
    secrets_are_never_returned_or_logged_and_sealed_round_trips_keep_them,
    a_version_written_without_the_new_columns_reads_the_defaults,
    without_master_keys_a_tool_with_headers_is_refused,
);

const MODEL: &str = "small";

async fn spawn(backend: Backend, allow_private: bool) -> TestApp {
    TestApp::spawn_with(
        backend,
        TestOptions {
            allow_private,
            ..TestOptions::remote_models(&[(MODEL, crate::support::NOWHERE)])
        },
    )
    .await
}

/// A valid tool; tests change one field at a time.
fn tool(name: &str) -> Value {
    json!({
        "name": name,
        "description": "Looks an order up by its id.",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}, "note": {"type": "string"}},
            "required": ["order_id"]
        },
        "method": "GET",
        "url": "https://1.1.1.1/orders/{order_id}",
        "headers": {"Authorization": "Bearer sk-shop-valid"},
        "timeout_ms": 5000,
        "side_effects": false
    })
}

fn agent(name: &str, extra: Value) -> Value {
    let mut body = json!({
        "name": name,
        "instructions": "Resolve the ticket.",
        "model_route": [MODEL],
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// `tool("t")` with `field` set to `value` (`null` removes it).
fn tool_with(field: &str, value: Value) -> Value {
    let mut t = tool("t");
    if value.is_null() {
        t.as_object_mut().unwrap().remove(field);
    } else {
        t[field] = value;
    }
    t
}

async fn bad_tool_definitions_name_their_field(backend: Backend) {
    let app = spawn(backend, false).await;
    let (_, key) = app.create_account("acme").await;
    let long_schema = json!({
        "type": "object",
        "properties": {"order_id": {"type": "string", "description": "x".repeat(17 * 1024)}},
        "required": ["order_id"]
    });
    let headers = |name: &str, value: &str| json!({ name: value });
    let secret_ish = "sk-never-echoed\nX";
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "a name with a space",
            json!({"tools": [tool("bad name")]}),
            "tools[0].name",
        ),
        ("an empty name", json!({"tools": [tool("")]}), "tools[0].name"),
        (
            "a name over 64",
            json!({"tools": [tool(&"n".repeat(65))]}),
            "tools[0].name",
        ),
        (
            "the reserved name",
            json!({"tools": [tool("handoff")]}),
            "tools[0].name",
        ),
        (
            "a repeated name",
            json!({"tools": [tool("a"), tool("b"), tool("a")]}),
            "tools[2].name",
        ),
        (
            "no description",
            json!({"tools": [tool_with("description", json!(""))]}),
            "tools[0].description",
        ),
        (
            "a long description",
            json!({"tools": [tool_with("description", json!("d".repeat(1025)))]}),
            "tools[0].description",
        ),
        (
            "parameters not an object schema",
            json!({"tools": [tool_with("parameters", json!({"type": "string"}))]}),
            "tools[0].parameters",
        ),
        (
            "parameters that do not compile",
            json!({"tools": [tool_with("parameters", json!({"type": "object", "properties": {"a": {"type": 12}}}))]}),
            "tools[0].parameters",
        ),
        (
            "parameters over 16 KiB",
            json!({"tools": [tool_with("parameters", long_schema)]}),
            "tools[0].parameters",
        ),
        (
            "an unknown method",
            json!({"tools": [tool_with("method", json!("FETCH"))]}),
            "tools[0].method",
        ),
        (
            "a lower-case method",
            json!({"tools": [tool_with("method", json!("get"))]}),
            "tools[0].method",
        ),
        (
            "an ftp URL",
            json!({"tools": [tool("a"), tool_with("url", json!("ftp://1.1.1.1/x"))]}),
            "tools[1].url",
        ),
        (
            "a relative URL",
            json!({"tools": [tool_with("url", json!("/orders/{order_id}"))]}),
            "tools[0].url",
        ),
        (
            "credentials in the URL",
            json!({"tools": [tool_with("url", json!("https://u:p@1.1.1.1/{order_id}"))]}),
            "tools[0].url",
        ),
        (
            "a placeholder that is no property",
            json!({"tools": [tool_with("url", json!("https://1.1.1.1/orders/{id}"))]}),
            "tools[0].url",
        ),
        (
            "a placeholder that is not required",
            json!({"tools": [tool_with("url", json!("https://1.1.1.1/orders/{order_id}/{note}"))]}),
            "tools[0].url",
        ),
        (
            "a placeholder in the host",
            json!({"tools": [tool_with("url", json!("https://{order_id}.shop.example/"))]}),
            "tools[0].url",
        ),
        (
            "an unclosed brace",
            json!({"tools": [tool_with("url", json!("https://1.1.1.1/{order_id"))]}),
            "tools[0].url",
        ),
        (
            "a header name that is no token",
            json!({"tools": [tool_with("headers", headers("Bad Name", "v"))]}),
            "tools[0].headers.Bad Name",
        ),
        (
            "the Host header",
            json!({"tools": [tool_with("headers", headers("Host", "v"))]}),
            "tools[0].headers.Host",
        ),
        (
            "Content-Length",
            json!({"tools": [tool_with("headers", headers("content-length", "1"))]}),
            "tools[0].headers.content-length",
        ),
        (
            "Idempotency-Key",
            json!({"tools": [tool_with("headers", headers("Idempotency-Key", "k"))]}),
            "tools[0].headers.Idempotency-Key",
        ),
        (
            "a value with a newline",
            json!({"tools": [tool_with("headers", headers("Authorization", secret_ish))]}),
            "tools[0].headers.Authorization",
        ),
        (
            "a value over 4 KiB",
            json!({"tools": [tool_with("headers", headers("Authorization", &"v".repeat(4097)))]}),
            "tools[0].headers.Authorization",
        ),
        (
            "[sealed] with nothing to keep",
            json!({"tools": [tool_with("headers", headers("Authorization", "[sealed]"))]}),
            "tools[0].headers.Authorization",
        ),
        (
            "a timeout under 100 ms",
            json!({"tools": [tool_with("timeout_ms", json!(99))]}),
            "tools[0].timeout_ms",
        ),
        (
            "a timeout over 30 s",
            json!({"tools": [tool_with("timeout_ms", json!(30_001))]}),
            "tools[0].timeout_ms",
        ),
        (
            "17 tools",
            json!({"tools": (0..17).map(|i| tool(&format!("t{i}"))).collect::<Vec<_>>()}),
            "tools",
        ),
        ("no steps", json!({"max_steps": 0}), "max_steps"),
        ("17 steps", json!({"max_steps": 17}), "max_steps"),
        (
            "a knowledge id that is not one",
            json!({"knowledge": ["faq"]}),
            "knowledge[0]",
        ),
        (
            "a knowledge source that does not exist",
            json!({"knowledge": [bounty_core::KnowledgeSourceId::new().to_string()]}),
            "knowledge[0]",
        ),
    ];
    for (i, (why, extra, param)) in cases.into_iter().enumerate() {
        let resp = app.create_agent(&key, &agent(&format!("bad-{i}"), extra)).await;
        let body = assert_error(resp, 422, "validation_failed").await;
        assert_eq!(body["error"]["param"], param, "{why}: {body}");
        assert!(
            !body.to_string().contains("sk-never-echoed"),
            "{why}: a refused header value is never echoed: {body}"
        );
    }
    // A tool missing a required field is malformed JSON for its type: 400.
    let resp = app
        .create_agent(
            &key,
            &agent("bad-shape", json!({"tools": [tool_with("url", Value::Null)]})),
        )
        .await;
    assert_error(resp, 400, "invalid_request").await;
    // Nothing was stored.
    let list = json_of(app.call(Method::GET, "/v1/agents", &key, None).await, 200).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0, "{list}");
}

async fn a_tool_on_a_private_address_is_refused(backend: Backend) {
    let app = spawn(backend, false).await;
    let (_, key) = app.create_account("acme").await;
    for url in [
        "http://127.0.0.1:8080/orders/{order_id}",
        "http://169.254.169.254/latest/{order_id}",
        "http://localhost/{order_id}",
    ] {
        let resp = app
            .create_agent(
                &key,
                &agent(
                    "private",
                    json!({"tools": [tool("a"), tool_with("url", json!(url))]}),
                ),
            )
            .await;
        let body = assert_error(resp, 422, "outbound_address_refused").await;
        assert_eq!(body["error"]["param"], "tools[1].url", "{url}: {body}");
    }
}

/// Creates an upload knowledge source; returns its id.
async fn knowledge_source(app: &TestApp, key: &str, name: &str) -> String {
    let body = json!({
        "name": name,
        "kind": "upload",
        "documents": [{"name": "faq.md", "format": "markdown", "content": "# Shipping\nThree days."}]
    });
    json_of(
        app.call(Method::POST, "/v1/knowledge", key, Some(&body)).await,
        201,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn a_valid_agent_round_trips(backend: Backend) {
    let app = spawn(backend, false).await;
    let (account, key) = app.create_account("acme").await;
    let ks = knowledge_source(&app, &key, "help center").await;
    let mut refund = tool("issue_refund");
    refund["method"] = json!("POST");
    refund["url"] = json!("https://1.1.1.1/orders/{order_id}/refunds?source=bounty");
    refund["side_effects"] = json!(true);
    refund.as_object_mut().unwrap().remove("timeout_ms");
    let body = agent(
        "support",
        json!({
            "tools": [tool("lookup_order"), refund],
            "knowledge": [ks],
            "max_steps": 6,
            "handoff": true
        }),
    );
    let created = json_of(app.create_agent(&key, &body).await, 201).await;
    assert_eq!(created["max_steps"], 6);
    assert_eq!(created["handoff"], true);
    assert_eq!(created["knowledge"], json!([ks]));
    let tools = created["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 2);
    assert_eq!(tools[0]["name"], "lookup_order");
    assert_eq!(tools[0]["method"], "GET");
    assert_eq!(tools[0]["timeout_ms"], 5000);
    assert_eq!(tools[0]["headers"], json!({"Authorization": "[sealed]"}));
    assert_eq!(tools[0]["parameters"], tool("x")["parameters"]);
    assert_eq!(tools[1]["method"], "POST");
    assert_eq!(tools[1]["side_effects"], true);
    assert_eq!(tools[1]["timeout_ms"], 10_000, "the default timeout");
    assert_eq!(
        tools[1]["url"],
        "https://1.1.1.1/orders/{order_id}/refunds?source=bounty"
    );

    let id = created["id"].as_str().unwrap();
    let shown = json_of(
        app.call(Method::GET, &format!("/v1/agents/{id}"), &key, None)
            .await,
        200,
    )
    .await;
    for field in ["tools", "knowledge", "max_steps", "handoff"] {
        assert_eq!(shown[field], created[field], "{field}");
    }

    // Stored sealed, bound to this account, agent, tool and header.
    let agent_id: AgentId = id.parse().unwrap();
    let stored = app
        .store
        .get_agent(account, agent_id, None)
        .await
        .unwrap()
        .unwrap();
    let ToolHeader::Sealed(sealed) = &stored.tools[0].headers["Authorization"] else {
        panic!("stored unsealed: {:?}", stored.tools[0].headers);
    };
    assert!(!sealed.contains("sk-shop-valid"));
    let keyring = app.keyring.as_ref().unwrap();
    let aad = tool_header_aad(account, agent_id, "lookup_order", "Authorization");
    assert_eq!(
        keyring.open_text(sealed, aad.as_bytes()).as_deref(),
        Some("Bearer sk-shop-valid")
    );
    let other_tool = tool_header_aad(account, agent_id, "issue_refund", "Authorization");
    assert_eq!(keyring.open_text(sealed, other_tool.as_bytes()), None);
    // The store itself refuses a header value that is not sealed.
    let mut unsealed = stored.tools.clone();
    unsealed[0].headers.insert(
        "Authorization".into(),
        ToolHeader::Plain("Bearer sk-plain".into()),
    );
    let patch = bounty_store::AgentPatch {
        tools: Some(unsealed),
        ..Default::default()
    };
    let refused = app
        .store
        .update_agent(account, agent_id, &patch)
        .await
        .unwrap_err();
    assert!(!refused.to_string().contains("sk-plain"), "{refused}");

    // An update of another field keeps them all, in a new version.
    let patched = json_of(
        app.call(
            Method::PATCH,
            &format!("/v1/agents/{id}"),
            &key,
            Some(&json!({"max_steps": 2, "handoff": false})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(patched["version"], 2);
    assert_eq!(patched["max_steps"], 2);
    assert_eq!(patched["handoff"], false);
    assert_eq!(patched["tools"], created["tools"]);
    assert_eq!(patched["knowledge"], created["knowledge"]);
    let v2 = app
        .store
        .get_agent(account, agent_id, Some(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v2.tools, stored.tools, "a new version copies the sealed values");
    let v1 = json_of(
        app.call(Method::GET, &format!("/v1/agents/{id}?version=1"), &key, None)
            .await,
        200,
    )
    .await;
    assert_eq!(v1["max_steps"], 6);

    // An agent that names none of them reads the defaults.
    let plain = json_of(app.create_agent(&key, &agent("plain", json!({}))).await, 201).await;
    assert_eq!(plain["tools"], json!([]));
    assert_eq!(plain["knowledge"], json!([]));
    assert_eq!(plain["max_steps"], 4);
    assert_eq!(plain["handoff"], false);
    // Clearing the lists.
    let cleared = json_of(
        app.call(
            Method::PATCH,
            &format!("/v1/agents/{id}"),
            &key,
            Some(&json!({"tools": [], "knowledge": []})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(cleared["tools"], json!([]));
    assert_eq!(cleared["knowledge"], json!([]));
}

async fn knowledge_of_another_account_is_refused(backend: Backend) {
    let app = spawn(backend, false).await;
    let (_, key_a) = app.create_account("acme").await;
    let (_, key_b) = app.create_account("globex").await;
    let theirs = knowledge_source(&app, &key_b, "globex help").await;
    let mine = knowledge_source(&app, &key_a, "acme help").await;
    let resp = app
        .create_agent(&key_a, &agent("support", json!({"knowledge": [mine, theirs]})))
        .await;
    let body = assert_error(resp, 422, "validation_failed").await;
    assert_eq!(body["error"]["param"], "knowledge[1]");
    let ok = json_of(
        app.create_agent(&key_a, &agent("support", json!({"knowledge": [mine]})))
            .await,
        201,
    )
    .await;
    let id = ok["id"].as_str().unwrap();
    let resp = app
        .call(
            Method::PATCH,
            &format!("/v1/agents/{id}"),
            &key_a,
            Some(&json!({"knowledge": [theirs]})),
        )
        .await;
    let body = assert_error(resp, 422, "validation_failed").await;
    assert_eq!(body["error"]["param"], "knowledge[0]");
    let resp = app
        .call(
            Method::PATCH,
            &format!("/v1/agents/{id}"),
            &key_a,
            Some(&json!({"knowledge": [mine, mine]})),
        )
        .await;
    let body = assert_error(resp, 422, "validation_failed").await;
    assert_eq!(body["error"]["param"], "knowledge[1]");
}

async fn another_account_cannot_read_the_agent_or_its_tools(backend: Backend) {
    let app = spawn(backend, false).await;
    let (_, key_a) = app.create_account("acme").await;
    let (_, key_b) = app.create_account("globex").await;
    let created = json_of(
        app.create_agent(
            &key_a,
            &agent("support", json!({"tools": [tool("lookup_order")]})),
        )
        .await,
        201,
    )
    .await;
    let id = created["id"].as_str().unwrap();
    for (method, path) in [
        (Method::GET, format!("/v1/agents/{id}")),
        (Method::GET, format!("/v1/agents/{id}?version=1")),
    ] {
        let resp = app.call(method, &path, &key_b, None).await;
        assert_error(resp, 404, "not_found").await;
    }
    // B cannot keep A's sealed values by sending `[sealed]` at A's agent.
    let resp = app
        .call(
            Method::PATCH,
            &format!("/v1/agents/{id}"),
            &key_b,
            Some(&json!({"tools": [tool_with("headers", json!({"Authorization": "[sealed]"}))]})),
        )
        .await;
    assert_error(resp, 404, "not_found").await;
    let list = json_of(app.call(Method::GET, "/v1/agents", &key_b, None).await, 200).await;
    assert_eq!(list["data"], json!([]));
    // B's own agent with a tool of the same name gets its own sealed value.
    let mine = json_of(
        app.create_agent(
            &key_b,
            &agent("support", json!({"tools": [tool("lookup_order")]})),
        )
        .await,
        201,
    )
    .await;
    assert_ne!(mine["id"], created["id"]);
}

/// A version row written as code before migration 0023 wrote it (none of
/// its columns) reads as it always ran: no tools, no knowledge, 4 steps,
/// no hand-off.
async fn a_version_written_without_the_new_columns_reads_the_defaults(backend: Backend) {
    use sqlx::Connection;

    let app = spawn(backend, false).await;
    let (account, key) = app.create_account("acme").await;
    let created = json_of(
        app.create_agent(
            &key,
            &agent(
                "support",
                json!({"tools": [tool("t")], "max_steps": 9, "handoff": true}),
            ),
        )
        .await,
        201,
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let old_insert = format!(
        "insert into agent_versions (agent_id, version, account_id, name, instructions, model_route,
             output_schema, outcome_type, verifier_policy, params, routing, created_at)
         select agent_id, 2, account_id, name, instructions, model_route, output_schema, outcome_type,
             verifier_policy, params, routing, created_at
         from agent_versions where agent_id = '{id}' and version = 1"
    );
    let url = app.database_url().to_owned();
    match backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(old_insert))
                .execute(&mut c)
                .await
                .unwrap();
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(old_insert))
                .execute(&mut c)
                .await
                .unwrap();
        }
    }
    let old = app
        .store
        .get_agent(account, id.parse().unwrap(), Some(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (old.tools.len(), old.knowledge.len(), old.max_steps, old.handoff),
        (0, 0, 4, false)
    );
}

async fn without_master_keys_a_tool_with_headers_is_refused(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        TestOptions {
            master_key: false,
            ..TestOptions::remote_models(&[(MODEL, crate::support::NOWHERE)])
        },
    )
    .await;
    let (_, key) = app.create_account("acme").await;
    let resp = app
        .create_agent(&key, &agent("support", json!({"tools": [tool("t")]})))
        .await;
    assert_error(resp, 503, "secrets_not_configured").await;
    // A tool without headers needs no keys.
    let bare = tool_with("headers", json!({}));
    json_of(
        app.create_agent(&key, &agent("support", json!({"tools": [bare]})))
            .await,
        201,
    )
    .await;
}

/// A server that records the `Authorization` header of each request.
async fn recording_server() -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let record = Arc::clone(&seen);
    let app = Router::new().fallback(any(move |headers: HeaderMap| {
        let record = Arc::clone(&record);
        async move {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            record.lock().unwrap().push(auth);
            axum::Json(json!({"order": "A1", "status": "shipped"}))
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

async fn secrets_are_never_returned_or_logged_and_sealed_round_trips_keep_them(backend: Backend) {
    let app = spawn(backend, true).await;
    let (account, key) = app.create_account("acme").await;
    let (base, seen) = recording_server().await;
    let secret = format!("sk-tool-{}", ulid::Ulid::generate());
    let other_secret = format!("sk-other-{}", ulid::Ulid::generate());
    logged::watch(&secret);
    logged::watch(&other_secret);

    let mut t = tool("lookup_order");
    t["url"] = json!(format!("{base}/orders/{{order_id}}"));
    t["headers"] = json!({"Authorization": format!("Bearer {secret}"), "X-Shop": other_secret});
    let mut responses = Vec::new();
    let created = app
        .create_agent(&key, &agent("support", json!({"tools": [t.clone()]})))
        .await;
    let created = json_of(created, 201).await;
    let id = created["id"].as_str().unwrap().to_owned();
    // The log does see this test's events (the canary): the server logs
    // the agent's id when it is created.
    logged::watch(&id);
    responses.push(created.to_string());

    // GET → PATCH round trip: every value sent back as "[sealed]", the
    // tool's description changed.
    let shown = json_of(
        app.call(Method::GET, &format!("/v1/agents/{id}"), &key, None)
            .await,
        200,
    )
    .await;
    responses.push(shown.to_string());
    let mut back = shown["tools"][0].clone();
    assert_eq!(
        back["headers"],
        json!({"Authorization": "[sealed]", "X-Shop": "[sealed]"})
    );
    back["description"] = json!("Looks an order up (v2).");
    let patched = json_of(
        app.call(
            Method::PATCH,
            &format!("/v1/agents/{id}"),
            &key,
            Some(&json!({"tools": [back]})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(patched["version"], 2);
    assert_eq!(patched["tools"][0]["description"], "Looks an order up (v2).");
    responses.push(patched.to_string());
    // "[sealed]" never follows a tool to another origin.
    let mut moved = shown["tools"][0].clone();
    moved["url"] = json!("https://1.1.1.1/orders/{order_id}");
    let resp = app
        .call(
            Method::PATCH,
            &format!("/v1/agents/{id}"),
            &key,
            Some(&json!({"tools": [moved]})),
        )
        .await;
    let body = assert_error(resp, 422, "validation_failed").await;
    assert!(
        body["error"]["param"]
            .as_str()
            .unwrap()
            .starts_with("tools[0].headers."),
        "{body}"
    );
    responses.push(body.to_string());
    // A refused update that names the value: the error never repeats it.
    let mut bad = t.clone();
    bad["headers"] = json!({"Authorization": format!("Bearer {secret}\u{7}")});
    let refused = app
        .call(
            Method::PATCH,
            &format!("/v1/agents/{id}"),
            &key,
            Some(&json!({"tools": [bad]})),
        )
        .await;
    responses.push(assert_error(refused, 422, "validation_failed").await.to_string());
    for v in [1, 2] {
        let version = app
            .call(Method::GET, &format!("/v1/agents/{id}?version={v}"), &key, None)
            .await;
        responses.push(json_of(version, 200).await.to_string());
    }
    let list = app.call(Method::GET, "/v1/agents", &key, None).await;
    responses.push(json_of(list, 200).await.to_string());
    for r in &responses {
        assert!(
            !r.contains(&secret) && !r.contains(&other_secret),
            "a value was returned: {r}"
        );
    }

    // The kept value is the original: call the stored version-2 tool.
    let agent_id: AgentId = id.parse().unwrap();
    let stored = app
        .store
        .get_agent(account, agent_id, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.version, 2);
    let keyring = app.keyring.clone().unwrap();
    let tool = PreparedTool::prepare(stored.tools[0].clone(), account, agent_id, |sealed, aad| {
        keyring.open_text(sealed, aad)
    })
    .unwrap();
    let outbound = Outbound::new(OutboundPolicy {
        allow_private: true,
        ..OutboundPolicy::default()
    })
    .unwrap();
    let result = call_tool(&outbound, &tool, &json!({"order_id": "A1"}), "unused").await;
    assert_eq!(result.outcome, ToolOutcome::Ok, "{}", result.content);
    assert_eq!(*seen.lock().unwrap(), vec![Some(format!("Bearer {secret}"))]);

    assert!(logged::hits(&id) > 0, "the log capture sees the server's events");
    assert_eq!(logged::hits(&secret), 0, "a header value was logged");
    assert_eq!(logged::hits(&other_secret), 0, "a header value was logged");
}
