//! The agent pages: list, create, show and edit (each edit a new
//! version), with every wrong field named beside it.

use bounty_store::UserRole;
use reqwest::StatusCode;

use crate::on_both_backends;
use crate::support::seed::{self, PASSWORD};
use crate::support::{Backend, Browser, TestApp};

/// An app whose configured models are `small` and `large`, with an owner.
pub async fn app(backend: Backend) -> (TestApp, seed::Tenant, Browser) {
    let app = TestApp::spawn_with(backend, |s| s.models = vec!["small".into(), "large".into()]).await;
    let t = seed::tenant(&app.store, "Acme").await;
    seed::user(&app.store, t.account, "ann@acme.test", UserRole::Owner).await;
    let b = app.logged_in("ann@acme.test", PASSWORD).await;
    (app, t, b)
}

/// The agent form as posted: a rules verifier that wants a reply that is
/// not empty, then an empty row; a 48-hour window.
fn fields<'a>(csrf: &'a str, name: &'a str, route: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("name", name),
        ("instructions", "Answer billing tickets politely."),
        ("model_route", route),
        ("outcome_type", "ticket.resolved"),
        ("output_schema", ""),
        ("mode", "all_of"),
        ("verifiers[0].kind", "rules"),
        ("verifiers[0].non_empty", "true"),
        ("verifiers[1].kind", ""),
        ("window_hours", "48"),
        ("lapse_decision", "pass"),
        ("csat_threshold", "4"),
        ("goodwill_days", "0"),
    ]
}

/// Sets `field` in a posted form, adding it when absent.
pub fn set<'a>(form: &mut Vec<(&'a str, &'a str)>, field: &'a str, value: &'a str) {
    match form.iter_mut().find(|(k, _)| *k == field) {
        Some(f) => f.1 = value,
        None => form.push((field, value)),
    }
}

async fn agents_are_listed_created_and_shown(backend: Backend) {
    let (app, t, mut b) = app(backend).await;
    b.get("/agents")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains(&format!("href=\"/agents/{}\"", t.agent))
        .assert_contains(">support</a>")
        .assert_contains("href=\"/agents/new\"")
        .assert_contains("aria-current=\"page\">Agents</a>");
    let form = b.get("/agents/new").await;
    form.assert_status(StatusCode::OK)
        .assert_contains("<label for=\"model_route\">Model route</label>")
        .assert_contains("Configured: small, large.")
        .assert_contains("<label for=\"window_hours\">Window (hours)</label>")
        .assert_contains("<select id=\"verifiers[0].kind\" name=\"verifiers[0].kind\"")
        .assert_contains("<label for=\"verifiers[0].non_empty\">The reply must not be empty</label>")
        .assert_lacks("name=\"verifier_policy\"");
    let csrf = form.csrf();
    let created = b.post("/agents", &fields(&csrf, "billing", "small, large")).await;
    created.assert_status(StatusCode::SEE_OTHER);
    let location = created.location().expect("a redirect to the agent").to_owned();
    assert!(location.starts_with("/agents/agt_"), "{location}");
    let id: bounty_core::AgentId = location.trim_start_matches("/agents/").parse().unwrap();
    let stored = app.store.get_agent(t.account, id, None).await.unwrap().unwrap();
    assert_eq!(stored.model_route, ["small", "large"]);
    assert_eq!(stored.verifier_policy.window_hours, 48);
    assert_eq!(stored.verifier_policy.verifiers.len(), 1);
    b.get(&location)
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("<h1>Agent billing</h1>")
        .assert_contains("small → large")
        .assert_contains("48 hours")
        .assert_contains("Answer billing tickets politely.")
        .assert_lacks("window_hours&#34;");
    // The name is unique in the account.
    b.post("/agents", &fields(&csrf, "billing", "small"))
        .await
        .assert_status(StatusCode::CONFLICT)
        .assert_contains("id=\"name-error\"")
        .assert_contains("already the name of another agent");
}

async fn a_wrong_field_is_named_beside_it(backend: Backend) {
    let (app, t, mut b) = app(backend).await;
    let csrf = b.csrf().await;
    let mut f = fields(&csrf, "billing", "small, gigantic");
    set(&mut f, "output_schema", "{not json");
    let r = b.post("/agents", &f).await;
    r.assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("role=\"alert\"")
        .assert_contains("<a href=\"#model_route\">Model route</a>")
        .assert_contains(
            "id=\"model_route-error\">Model route: model 2 (&#34;gigantic&#34;) is not a configured model",
        )
        .assert_contains("id=\"output_schema-error\">Output schema: is not valid JSON")
        .assert_contains("aria-invalid=\"true\"")
        // What was typed is kept.
        .assert_contains("value=\"small, gigantic\"")
        .assert_lacks("id=\"name-error\"");
    // A judge must name a configured model, and the window is checked too.
    let mut f = fields(&csrf, "billing", "small");
    set(&mut f, "verifiers[1].kind", "judge");
    set(&mut f, "verifiers[1].model", "gigantic");
    set(&mut f, "verifiers[1].rubric", "Resolved?");
    set(&mut f, "window_hours", "0");
    b.post("/agents", &f)
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains(
            "id=\"verifiers[1].model-error\">Judge model: names no configured model (&#34;gigantic&#34;)",
        )
        .assert_contains("<a href=\"#verifiers[1].model\">Verifier 2: judge model</a>")
        .assert_contains("<option value=\"gigantic\" selected>gigantic (not configured)</option>")
        .assert_contains("id=\"window_hours-error\"");
    let agents = app
        .store
        .list_agents(t.account, bounty_core::PageLimit::new(10).unwrap(), None)
        .await
        .unwrap();
    assert_eq!(agents.items.len(), 1, "nothing was created");
}

async fn an_edit_adds_a_version(backend: Backend) {
    let (app, t, mut b) = app(backend).await;
    let path = format!("/agents/{}", t.agent);
    let page = b.get(&path).await;
    page.assert_status(StatusCode::OK)
        .assert_contains("<h2 id=\"form-heading\">Edit</h2>")
        .assert_contains("Answer the ticket.");
    let csrf = page.csrf();
    // A validation error re-renders the edit form and saves nothing.
    b.post(&path, &fields(&csrf, "support", "nonexistent"))
        .await
        .assert_status(StatusCode::UNPROCESSABLE_ENTITY)
        .assert_contains("id=\"model_route-error\"")
        .assert_contains("<h1>Agent support</h1>");
    assert_eq!(
        app.store
            .get_agent(t.account, t.agent, None)
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
    let mut f = fields(&csrf, "support", "large");
    set(
        &mut f,
        "output_schema",
        r#"{"type": "object", "required": ["reply"]}"#,
    );
    let r = b.post(&path, &f).await;
    r.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some(format!("{path}?saved=1").as_str()));
    b.get(&format!("{path}?saved=1"))
        .await
        .assert_contains("Saved as version 2.")
        .assert_contains("Answer billing tickets politely.")
        .assert_contains("&#34;required&#34;");
    let current = app
        .store
        .get_agent(t.account, t.agent, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (current.version, current.model_route.clone()),
        (2, vec!["large".to_owned()])
    );
    assert!(current.output_schema.is_some());
    let first = app
        .store
        .get_agent(t.account, t.agent, Some(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first.instructions, "Answer the ticket.",
        "version 1 is never edited"
    );
    b.post("/agents/agt_nonsense", &fields(&csrf, "support", "large"))
        .await
        .assert_status(StatusCode::NOT_FOUND);
}

async fn members_see_agents_but_cannot_change_them(backend: Backend) {
    let (app, t, _) = app(backend).await;
    seed::user(&app.store, t.account, "max@acme.test", UserRole::Member).await;
    let mut m = app.logged_in("max@acme.test", PASSWORD).await;
    m.get("/agents")
        .await
        .assert_status(StatusCode::OK)
        .assert_contains("Only an owner")
        .assert_lacks("href=\"/agents/new\"");
    m.get(&format!("/agents/{}", t.agent))
        .await
        .assert_status(StatusCode::OK)
        .assert_lacks("form-heading");
    m.get("/agents/new").await.assert_status(StatusCode::FORBIDDEN);
    let csrf = m.csrf().await;
    m.post("/agents", &fields(&csrf, "mine", "small"))
        .await
        .assert_status(StatusCode::FORBIDDEN);
    m.post(
        &format!("/agents/{}", t.agent),
        &fields(&csrf, "support", "small"),
    )
    .await
    .assert_status(StatusCode::FORBIDDEN);
    // Without the CSRF token nothing is accepted, even from an owner.
    let mut ann = app.logged_in("ann@acme.test", PASSWORD).await;
    let mut f = fields("wrong", "other", "small");
    f.remove(0);
    ann.post("/agents", &f).await.assert_status(StatusCode::FORBIDDEN);
}

/// A sealed header value, as the store holds it: the page must show
/// neither it nor anything of it.
const SEALED: &str = "v1.k1.SEALED-sk-web-0123456789";

async fn tools_and_knowledge_are_listed_without_header_values(backend: Backend) {
    use bounty_core::knowledge::KnowledgeKind;
    use bounty_core::{KnowledgeName, KnowledgeSourceId, ToolHeader, ToolMethod, ToolSpec};

    let (app, t, mut b) = app(backend).await;
    let source = KnowledgeSourceId::new();
    app.store
        .create_knowledge_source(
            t.account,
            &bounty_store::NewKnowledgeSource {
                id: source,
                mode: bounty_core::ApiKeyMode::Live,
                name: &KnowledgeName::parse("Help center").unwrap(),
                kind: KnowledgeKind::Upload,
                urls: &[],
            },
        )
        .await
        .unwrap();
    let deleted = KnowledgeSourceId::new();
    let tool = ToolSpec {
        name: "issue_refund".into(),
        description: "Refunds an order.".into(),
        parameters: serde_json::json!({"type": "object"}),
        method: ToolMethod::Post,
        url: "https://shop.example/orders/{order_id}/refunds".into(),
        headers: [("Authorization".to_owned(), ToolHeader::Sealed(SEALED.into()))].into(),
        timeout_ms: 2500,
        side_effects: true,
    };
    let patch = bounty_store::AgentPatch {
        tools: Some(vec![tool]),
        knowledge: Some(vec![source, deleted]),
        max_steps: Some(7),
        handoff: Some(true),
        ..Default::default()
    };
    app.store
        .update_agent(t.account, t.agent, &patch)
        .await
        .unwrap()
        .unwrap();
    let path = format!("/agents/{}", t.agent);
    let page = b.get(&path).await;
    page.assert_status(StatusCode::OK)
        .assert_contains("<code>issue_refund</code>: POST <code class=\"url\">shop.example</code>")
        .assert_contains("has side effects")
        .assert_contains("headers Authorization (values sealed)")
        .assert_contains("timeout 2.5 s")
        .assert_contains("at most 7")
        .assert_contains("offered: the agent may hand the conversation to a person")
        .assert_contains(&format!("Help center <code>{source}</code>"))
        .assert_contains(&format!("<code>{deleted}</code> (deleted: matches nothing)"))
        .assert_lacks("SEALED")
        .assert_lacks("sk-web");
    b.get(&format!("{path}/policy"))
        .await
        .assert_status(StatusCode::OK)
        .assert_lacks("SEALED")
        .assert_lacks("sk-web");
    // Saving the form keeps what only the API sets.
    let csrf = page.csrf();
    b.post(&path, &fields(&csrf, "support", "small"))
        .await
        .assert_status(StatusCode::SEE_OTHER);
    let current = app
        .store
        .get_agent(t.account, t.agent, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.version, 3);
    assert_eq!(
        current.tools[0].headers["Authorization"],
        ToolHeader::Sealed(SEALED.into())
    );
    assert_eq!(
        (current.max_steps, current.handoff, current.knowledge.len()),
        (7, true, 2)
    );
}

on_both_backends!(
    tools_and_knowledge_are_listed_without_header_values,
    agents_are_listed_created_and_shown,
    a_wrong_field_is_named_beside_it,
    an_edit_adds_a_version,
    members_see_agents_but_cannot_change_them,
);
