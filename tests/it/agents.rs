//! `/v1/agents`: create, list, show, update (versioned), and the errors;
//! an agent given no verifier policy gets the default, which charges
//! nothing until the ticket is solved, and one given no verifiers at all
//! is refused.

use bounty_models::testing::openai::FakeOpenAi;
use reqwest::Method;
use serde_json::json;

use crate::support::{Backend, NOWHERE, TestApp, TestOptions, assert_error, json_of, test_worker};

backend_tests!(
    create_show_and_list_agents,
    updates_add_versions_and_keep_old_ones,
    bad_agents_are_refused_naming_the_field,
    agents_are_private_to_their_account,
    an_agent_without_a_policy_is_charged_only_once_solved,
    an_empty_verifier_list_is_refused,
);

async fn app(backend: Backend) -> TestApp {
    TestApp::spawn_with(
        backend,
        TestOptions::remote_models(&[("fast", NOWHERE), ("smart", NOWHERE)]),
    )
    .await
}

async fn create_show_and_list_agents(backend: Backend) {
    let app = app(backend).await;
    let (_, key) = app.create_account("Acme").await;
    let body = json!({
        "name": "support",
        "instructions": "Answer politely.",
        "model_route": ["fast", "smart"],
        "output_schema": {"type": "object", "properties": {"reply": {"type": "string"}}, "required": ["reply"]},
        "params": {"max_tokens": 64, "temperature": 0.2}
    });
    let agent = json_of(app.create_agent(&key, &body).await, 201).await;
    assert!(agent["id"].as_str().unwrap().starts_with("agt_"));
    assert_eq!(agent["version"], 1);
    assert_eq!(agent["current_version"], 1);
    assert_eq!(agent["outcome_type"], "ticket.resolved");
    assert_eq!(
        agent["verifier_policy"]["verifiers"],
        json!([{"kind": "rules", "schema": false, "non_empty": true}, {"kind": "external"}]),
        "no policy: the assumed resolution"
    );
    assert_eq!(agent["verifier_policy"]["window_hours"], 24);
    assert_eq!(agent["verifier_policy"]["lapse_decision"], "pass");
    assert_eq!(agent["model_route"], json!(["fast", "smart"]));
    assert_eq!(agent["params"]["max_tokens"], 64);
    let id = agent["id"].as_str().unwrap();
    let shown = json_of(
        app.request(Method::GET, &format!("/v1/agents/{id}"), Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(shown, agent);

    for i in 0..4 {
        app.agent(&key, &format!("a{i}"), &["fast"], None).await;
    }
    let page1 = json_of(
        app.request(Method::GET, "/v1/agents?limit=3", Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(page1["data"].as_array().unwrap().len(), 3);
    assert_eq!(page1["data"][0]["name"], "a3", "newest first");
    let cursor = page1["next_cursor"].as_str().unwrap();
    let page2 = json_of(
        app.request(
            Method::GET,
            &format!("/v1/agents?limit=3&cursor={cursor}"),
            Some(&key),
        )
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    assert_eq!(page2["data"].as_array().unwrap().len(), 2);
    assert!(page2["next_cursor"].is_null());

    let models = json_of(
        app.request(Method::GET, "/v1/catalog/models", Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let names: Vec<_> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("fast"), json!("smart")]);
    assert_eq!(models["data"][0]["provider"], "openai");
    assert_eq!(models["data"][0]["price"]["input"]["micros"], 150_000);
    assert!(
        !models.to_string().contains("sk-test-secret"),
        "a model's API key is never returned"
    );
}

async fn updates_add_versions_and_keep_old_ones(backend: Backend) {
    let app = app(backend).await;
    let (account, key) = app.create_account("Acme").await;
    let agent = app
        .agent(&key, "support", &["fast"], Some(json!({"type": "object"})))
        .await;
    let id = agent["id"].as_str().unwrap();
    let patch = |body: serde_json::Value| {
        app.request(Method::PATCH, &format!("/v1/agents/{id}"), Some(&key))
            .json(&body)
            .send()
    };
    let v2 = json_of(
        patch(json!({"instructions": "Be brief.", "model_route": ["smart", "fast"]}))
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["instructions"], "Be brief.");
    assert_eq!(v2["model_route"], json!(["smart", "fast"]));
    assert_eq!(
        v2["output_schema"],
        json!({"type": "object"}),
        "unchanged fields carry over"
    );
    let v3 = json_of(
        patch(json!({"output_schema": null, "name": "helpdesk"}))
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(v3["version"], 3);
    assert!(v3["output_schema"].is_null());
    assert_eq!(v3["name"], "helpdesk");

    let v1 = json_of(
        app.request(Method::GET, &format!("/v1/agents/{id}?version=1"), Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["current_version"], 3);
    assert_eq!(v1["instructions"], "You are a helpful support agent.");
    assert_eq!(v1["name"], "support");
    let missing = app
        .request(Method::GET, &format!("/v1/agents/{id}?version=9"), Some(&key))
        .send()
        .await
        .unwrap();
    assert_error(missing, 404, "not_found").await;

    // A task records the version it was created with.
    let task = app.task(&key, "helpdesk", "hello").await;
    assert_eq!(task["agent"]["version"], 3);

    // The store lists the versions newest first, a page at a time, and
    // only to the agent's own account.
    let agent_id: bounty_core::AgentId = id.parse().unwrap();
    let two = bounty_core::PageLimit::new(2).unwrap();
    let page = app
        .store
        .list_agent_versions(account, agent_id, two, None)
        .await
        .unwrap();
    let versions: Vec<i32> = page.items.iter().map(|a| a.version).collect();
    assert_eq!(versions, [3, 2]);
    assert_eq!(page.items[1].model_route, ["smart", "fast"]);
    assert_eq!(page.next_cursor.as_deref(), Some("2"));
    let rest = app
        .store
        .list_agent_versions(account, agent_id, two, Some(2))
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!((rest.items[0].version, rest.next_cursor), (1, None));
    let (other, _) = app.create_account("Globex").await;
    let none = app
        .store
        .list_agent_versions(other, agent_id, two, None)
        .await
        .unwrap();
    assert!(none.items.is_empty(), "another account sees no version");
}

async fn bad_agents_are_refused_naming_the_field(backend: Backend) {
    let app = app(backend).await;
    let (_, key) = app.create_account("Acme").await;
    let base = json!({"name": "support", "instructions": "x", "model_route": ["fast"]});
    let with = |k: &str, v: serde_json::Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let e = assert_error(
        app.create_agent(&key, &with("model_route", json!(["fast", "gpt-9"])))
            .await,
        422,
        "unknown_model",
    )
    .await;
    assert_eq!(e["error"]["param"], "model_route[1]");
    assert!(e["error"]["message"].as_str().unwrap().contains("gpt-9"));
    let e = assert_error(
        app.create_agent(&key, &with("model_route", json!([]))).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(e["error"]["param"], "model_route");
    let e = assert_error(
        app.create_agent(&key, &with("output_schema", json!({"type": 5})))
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(e["error"]["param"], "output_schema");
    let e = assert_error(
        app.create_agent(&key, &with("name", json!("Agt With Spaces")))
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(e["error"]["param"], "name");
    let e = assert_error(
        app.create_agent(&key, &with("params", json!({"temperature": 7})))
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(e["error"]["param"], "params.temperature");
    let e = assert_error(
        app.create_agent(&key, &with("outcome_type", json!("Ticket Resolved")))
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(e["error"]["param"], "outcome_type");
    let e = assert_error(
        app.create_agent(&key, &with("colour", json!("red"))).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(e["error"]["message"].as_str().unwrap().contains("colour"));
    assert_error(
        app.create_agent(&key, &json!({"name": "x"})).await,
        400,
        "invalid_request",
    )
    .await;

    app.agent(&key, "support", &["fast"], None).await;
    let e = assert_error(app.create_agent(&key, &base).await, 409, "agent_name_taken").await;
    assert_eq!(e["error"]["param"], "name");
    let other = app.agent(&key, "other", &["fast"], None).await;
    let resp = app
        .request(
            Method::PATCH,
            &format!("/v1/agents/{}", other["id"].as_str().unwrap()),
            Some(&key),
        )
        .json(&json!({"name": "support"}))
        .send()
        .await
        .unwrap();
    assert_error(resp, 409, "agent_name_taken").await;
    let resp = app
        .request(
            Method::PATCH,
            &format!("/v1/agents/{}", other["id"].as_str().unwrap()),
            Some(&key),
        )
        .json(&json!({"model_route": ["nope"]}))
        .send()
        .await
        .unwrap();
    assert_error(resp, 422, "unknown_model").await;
    let still = app
        .get(&format!("/v1/agents/{}", other["id"].as_str().unwrap()))
        .await;
    assert_eq!(still.status(), 401);
}

async fn agents_are_private_to_their_account(backend: Backend) {
    let app = app(backend).await;
    let (_, alice) = app.create_account("Alice").await;
    let (_, bob) = app.create_account("Bob").await;
    let agent = app.agent(&alice, "support", &["fast"], None).await;
    let id = agent["id"].as_str().unwrap();
    let resp = app
        .request(Method::GET, &format!("/v1/agents/{id}"), Some(&bob))
        .send()
        .await
        .unwrap();
    assert_error(resp, 404, "not_found").await;
    let resp = app
        .request(Method::PATCH, &format!("/v1/agents/{id}"), Some(&bob))
        .json(&json!({"instructions": "hijack"}))
        .send()
        .await
        .unwrap();
    assert_error(resp, 404, "not_found").await;
    let listed = json_of(
        app.request(Method::GET, "/v1/agents", Some(&bob))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert!(listed["data"].as_array().unwrap().is_empty());
    // Bob may use the same name; names are per account.
    app.agent(&bob, "support", &["fast"], None).await;
    // Nor can Bob queue work for Alice's agent, by id or by name.
    let req = json!({"agent": id, "input": {"body": "hi"}});
    assert_error(app.create_task(&bob, &req, None).await, 422, "unknown_agent").await;
}

async fn an_agent_without_a_policy_is_charged_only_once_solved(backend: Backend) {
    let fake = FakeOpenAi::start().await;
    let opts = TestOptions {
        worker: Some(test_worker()),
        ..TestOptions::remote_models(&[("fake", &fake.base_url())])
    };
    let app = TestApp::spawn_with(backend, opts).await;
    let (_, key) = app.create_account("Acme").await;
    let body = json!({"name": "support", "instructions": "Answer.", "model_route": ["fake"]});
    let created = json_of(app.create_agent(&key, &body).await, 201).await;
    let id = created["id"].as_str().unwrap();
    // The default policy is stored, and shown as such.
    let shown = json_of(
        app.request(Method::GET, &format!("/v1/agents/{id}"), Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let policy = &shown["verifier_policy"];
    assert_eq!(policy["verifiers"][0]["kind"], "rules", "{policy}");
    assert_eq!(policy["verifiers"][0]["non_empty"], true, "{policy}");
    assert_eq!(policy["verifiers"][1]["kind"], "external", "{policy}");
    assert_eq!(policy["window_hours"], 24);
    assert_eq!(policy["lapse_decision"], "pass");

    // Any non-empty answer, noise included, waits on the ticket: no charge.
    let task = app.task(&key, "support", "Where is my refund?").await;
    let task = app
        .wait_for_task(
            &key,
            task["id"].as_str().unwrap(),
            std::time::Duration::from_secs(30),
        )
        .await;
    let outcome = app
        .get_outcome(&key, task["outcome"]["id"].as_str().unwrap())
        .await;
    assert_eq!(outcome["status"], "provisional", "{outcome}");
    assert_eq!(outcome["transfers"], json!([]), "nothing is charged yet");
    // The ticket is solved: now it is resolved, and charged once.
    let solved = json_of(
        app.request(
            Method::POST,
            &format!("/v1/outcomes/{}/signals", outcome["id"].as_str().unwrap()),
            Some(&key),
        )
        .json(&json!({"kind": "solved"}))
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    assert_eq!(solved["status"], "resolved", "{solved}");
    assert_eq!(
        crate::support::transfer_kinds(&solved),
        vec!["charge", "charge_money"]
    );
}

async fn an_empty_verifier_list_is_refused(backend: Backend) {
    let app = app(backend).await;
    let (_, key) = app.create_account("Acme").await;
    let empty = json!({
        "name": "support",
        "instructions": "x",
        "model_route": ["fast"],
        "verifier_policy": {"verifiers": []},
    });
    let e = assert_error(app.create_agent(&key, &empty).await, 422, "validation_failed").await;
    assert_eq!(e["error"]["param"], "verifier_policy.verifiers", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at least one verifier"),
        "{e}"
    );
    // The same rule holds for an update; the agent keeps its policy.
    let agent = app.agent(&key, "support", &["fast"], None).await;
    let id = agent["id"].as_str().unwrap();
    let resp = app
        .request(Method::PATCH, &format!("/v1/agents/{id}"), Some(&key))
        .json(&json!({"verifier_policy": {"verifiers": [], "window_hours": 48}}))
        .send()
        .await
        .unwrap();
    let e = assert_error(resp, 422, "validation_failed").await;
    assert_eq!(e["error"]["param"], "verifier_policy.verifiers", "{e}");
    let still = json_of(
        app.request(Method::GET, &format!("/v1/agents/{id}"), Some(&key))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(still["version"], 1);
    assert_eq!(still["verifier_policy"], agent["verifier_policy"]);
    // A policy that leaves `verifiers` out gets the default ones.
    let resp = app
        .request(Method::PATCH, &format!("/v1/agents/{id}"), Some(&key))
        .json(&json!({"verifier_policy": {"window_hours": 48}}))
        .send()
        .await
        .unwrap();
    let v2 = json_of(resp, 200).await;
    assert_eq!(v2["verifier_policy"]["verifiers"][1]["kind"], "external", "{v2}");
    assert_eq!(v2["verifier_policy"]["window_hours"], 48);
}
