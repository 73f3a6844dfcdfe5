//! `/agents`: list the account's agents, create one, and show one with
//! its current version (its verifier policy in plain words, linked to the
//! policy's history, [`policy`](super::policy)) and an edit form.
//!
//! The agent page also lists, read-only, what the agent may do: its HTTP
//! tools (name, method, host, side effects and the *names* of their
//! headers; a header's value is a sealed secret and never reaches a page),
//! the knowledge sources it searches, its steps per turn and whether it
//! hands off. They are set through the API (`PATCH /v1/agents/{id}`), and
//! the edit form keeps them as they are.
//!
//! An edit never changes a version: like the API's `PATCH`, it adds a
//! version made of the form's fields and makes it current, so tasks keep
//! the version they ran. The form is checked as the API checks its JSON
//! ([`agent_form`](super::agent_form)); a wrong field re-renders the form,
//! as typed, with the message beside the field. Creating and editing are
//! for owners; members see the agents.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use bounty_core::{AgentId, PageLimit};
use bounty_store::{Agent, StoreError};
use serde::Deserialize;

use crate::auth::{CurrentUser, SignedForm};
use crate::error::WebError;
use crate::format::time;
use crate::layout::{Chrome, render};
use crate::pages::agent_form::AgentForm;
use crate::pages::field_errors::{FieldErrors, SummaryLine};
use crate::pages::policy_view::PolicyView;
use crate::pages::{WebQuery, present};
use crate::policy_text::{self, hours};
use crate::state::WebState;

/// Agents per page.
const PAGE_SIZE: u32 = 50;
/// The unique key an agent's name would break.
const NAME_TAKEN: &str = "agents_account_id_name_key";

struct AgentRow {
    id: String,
    name: String,
    version: i32,
    models: String,
    outcome_type: String,
    verifiers: String,
    window: String,
    created: String,
}

#[derive(Template)]
#[template(path = "agents.html")]
struct AgentsPage {
    chrome: Chrome,
    owner: bool,
    agents: Vec<AgentRow>,
    next_href: Option<String>,
}

/// What the shared fields partial (`agent_fields.html`) needs.
struct FormView {
    csrf: String,
    action: String,
    submit: &'static str,
    form: AgentForm,
    errors: FieldErrors,
    summary: Vec<SummaryLine>,
    /// The configured model names, for the route's hint; empty when any
    /// name is accepted.
    models: String,
    /// The verifier policy's fields.
    policy: PolicyView,
    /// Most verifiers in one policy.
    max_verifiers: usize,
}

#[derive(Template)]
#[template(path = "agent_new.html")]
struct NewAgentPage {
    chrome: Chrome,
    view: FormView,
}

/// The current version's settings, as read-only text.
struct Current {
    id: String,
    name: String,
    version: i32,
    created: String,
    version_created: String,
    models: String,
    outcome_type: String,
    output_schema: String,
    /// The verifier policy, one plain-language line per setting.
    policy: Vec<String>,
    window: String,
    tools: Vec<ToolLine>,
    knowledge: Vec<KnowledgeLine>,
    max_steps: u32,
    handoff: bool,
}

/// One tool, as the page shows it: never a header's value.
struct ToolLine {
    name: String,
    method: &'static str,
    host: String,
    side_effects: bool,
    /// Header names, comma-separated; empty when none.
    headers: String,
    timeout: String,
}

impl ToolLine {
    fn of(t: &bounty_core::ToolSpec) -> Self {
        ToolLine {
            name: t.name.clone(),
            method: t.method.as_str(),
            host: t.host().to_owned(),
            side_effects: t.side_effects,
            headers: t.headers.keys().cloned().collect::<Vec<_>>().join(", "),
            timeout: format!("{} s", f64::from(t.timeout_ms) / 1000.0),
        }
    }
}

/// One knowledge source the agent names; `name` is `None` once the source
/// is deleted (it then matches nothing).
struct KnowledgeLine {
    id: String,
    name: Option<String>,
}

/// The knowledge sources `agent` names, with their names where they still
/// exist.
async fn knowledge_lines(
    state: &WebState,
    user: &CurrentUser,
    agent: &Agent,
) -> Result<Vec<KnowledgeLine>, WebError> {
    let mut lines = Vec::with_capacity(agent.knowledge.len());
    for id in &agent.knowledge {
        let source = state.store.get_knowledge_source(user.account(), *id).await?;
        lines.push(KnowledgeLine {
            id: id.to_string(),
            name: source.map(|s| s.name),
        });
    }
    Ok(lines)
}

#[derive(Template)]
#[template(path = "agent.html")]
struct AgentPage {
    chrome: Chrome,
    owner: bool,
    saved: bool,
    agent: Current,
    view: FormView,
}

fn verifiers(a: &Agent) -> String {
    let p = &a.verifier_policy;
    if p.verifiers.is_empty() {
        return "none (every output passes)".to_owned();
    }
    let kinds: Vec<&str> = p.verifiers.iter().map(|v| v.kind()).collect();
    format!("{}: {}", p.mode.as_str(), kinds.join(", "))
}

fn form_view(
    state: &WebState,
    user: &CurrentUser,
    action: String,
    submit: &'static str,
    form: AgentForm,
    errors: FieldErrors,
) -> FormView {
    FormView {
        csrf: user.session.csrf_secret.clone(),
        action,
        submit,
        summary: errors.summary(&form.fields()),
        policy: form.policy.view(&errors, &state.models),
        form,
        errors,
        models: state.models.join(", "),
        max_verifiers: bounty_core::VerificationPolicy::MAX_VERIFIERS,
    }
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    cursor: Option<String>,
}

/// `GET /agents`.
pub(crate) async fn list(
    State(state): State<WebState>,
    user: CurrentUser,
    WebQuery(q): WebQuery<ListQuery>,
) -> Result<Response, WebError> {
    let cursor = present(&q.cursor)
        .map(|c| {
            c.parse::<AgentId>()
                .map_err(|_| WebError::BadRequest("`cursor` is not an agent id.".into()))
        })
        .transpose()?;
    let limit = PageLimit::new(PAGE_SIZE).map_err(|e| WebError::Internal(e.to_string()))?;
    let page = state.store.list_agents(user.account(), limit, cursor).await?;
    let agents = page
        .items
        .iter()
        .map(|a| AgentRow {
            id: a.id.to_string(),
            name: a.name.clone(),
            version: a.current_version,
            models: a.model_route.join(" → "),
            outcome_type: a.outcome_type.to_string(),
            verifiers: verifiers(a),
            window: hours(a.verifier_policy.window_hours),
            created: time(a.created_at),
        })
        .collect();
    render(&AgentsPage {
        chrome: Chrome::for_user(&user, "Agents", "agents"),
        owner: user.require_owner().is_ok(),
        agents,
        next_href: page.next_cursor.map(|c| format!("/agents?cursor={c}")),
    })
}

fn new_page(
    state: &WebState,
    user: &CurrentUser,
    form: AgentForm,
    errors: FieldErrors,
) -> Result<Response, WebError> {
    render(&NewAgentPage {
        chrome: Chrome::for_user(user, "New agent", "agents"),
        view: form_view(state, user, "/agents".to_owned(), "Create agent", form, errors),
    })
}

/// `GET /agents/new`: the empty form.
pub(crate) async fn new(State(state): State<WebState>, user: CurrentUser) -> Result<Response, WebError> {
    user.require_owner()?;
    new_page(&state, &user, AgentForm::blank(), FieldErrors::default())
}

/// The form again, with a status saying why.
fn refused(mut r: Response, status: StatusCode) -> Response {
    *r.status_mut() = status;
    r
}

/// `POST /agents`: creates an agent at version 1 and shows it.
pub(crate) async fn create(
    State(state): State<WebState>,
    SignedForm { user, form }: SignedForm<AgentForm>,
) -> Result<Response, WebError> {
    user.require_owner()?;
    let spec = match form.parse(&state.models) {
        Ok(spec) => spec,
        Err(errors) => {
            return Ok(refused(
                new_page(&state, &user, form, errors)?,
                StatusCode::UNPROCESSABLE_ENTITY,
            ));
        }
    };
    match state.store.create_agent(user.account(), &spec).await {
        Ok(agent) => {
            tracing::info!(account.id = %user.account(), agent.id = %agent.id, "dashboard: agent created");
            Ok(Redirect::to(&format!("/agents/{}", agent.id)).into_response())
        }
        Err(StoreError::Constraint { constraint, .. }) if constraint == NAME_TAKEN => {
            let mut errors = FieldErrors::default();
            errors.add("name", "is already the name of another agent in this account");
            Ok(refused(
                new_page(&state, &user, form, errors)?,
                StatusCode::CONFLICT,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub(crate) struct ShowQuery {
    saved: Option<String>,
}

/// One of the account's agents at its current version, or a 404.
pub(crate) async fn find(state: &WebState, user: &CurrentUser, id: &str) -> Result<Agent, WebError> {
    let id: AgentId = id.parse().map_err(|_| WebError::NotFound)?;
    state
        .store
        .get_agent(user.account(), id, None)
        .await?
        .ok_or(WebError::NotFound)
}

async fn agent_page(
    state: &WebState,
    user: &CurrentUser,
    agent: &Agent,
    form: AgentForm,
    errors: FieldErrors,
    saved: bool,
) -> Result<Response, WebError> {
    let knowledge = knowledge_lines(state, user, agent).await?;
    let current = Current {
        id: agent.id.to_string(),
        name: agent.name.clone(),
        version: agent.version,
        created: time(agent.created_at),
        version_created: time(agent.version_created_at),
        models: agent.model_route.join(" → "),
        outcome_type: agent.outcome_type.to_string(),
        output_schema: agent
            .output_schema
            .as_ref()
            .and_then(|s| serde_json::to_string_pretty(s).ok())
            .unwrap_or_default(),
        policy: policy_text::lines(&agent.verifier_policy),
        window: hours(agent.verifier_policy.window_hours),
        tools: agent.tools.iter().map(ToolLine::of).collect(),
        knowledge,
        max_steps: agent.max_steps,
        handoff: agent.handoff,
    };
    render(&AgentPage {
        chrome: Chrome::for_user(user, format!("Agent {}", agent.name), "agents"),
        owner: user.require_owner().is_ok(),
        saved,
        view: form_view(
            state,
            user,
            format!("/agents/{}", agent.id),
            "Save as a new version",
            form,
            errors,
        ),
        agent: current,
    })
}

/// `GET /agents/{id}`: the current version and, for owners, the edit form.
pub(crate) async fn show(
    State(state): State<WebState>,
    user: CurrentUser,
    Path(id): Path<String>,
    WebQuery(q): WebQuery<ShowQuery>,
) -> Result<Response, WebError> {
    let agent = find(&state, &user, &id).await?;
    let form = AgentForm::of(&agent);
    agent_page(
        &state,
        &user,
        &agent,
        form,
        FieldErrors::default(),
        q.saved.is_some(),
    )
    .await
}

/// `POST /agents/{id}`: adds a version made of the form and makes it
/// current.
pub(crate) async fn update(
    State(state): State<WebState>,
    Path(id): Path<String>,
    SignedForm { user, form }: SignedForm<AgentForm>,
) -> Result<Response, WebError> {
    user.require_owner()?;
    let agent = find(&state, &user, &id).await?;
    let patch = match form.patch(&state.models) {
        Ok(p) => p,
        Err(errors) => {
            return Ok(refused(
                agent_page(&state, &user, &agent, form, errors, false).await?,
                StatusCode::UNPROCESSABLE_ENTITY,
            ));
        }
    };
    match state.store.update_agent(user.account(), agent.id, &patch).await {
        Ok(Some(updated)) => {
            tracing::info!(
                account.id = %user.account(), agent.id = %updated.id, version = updated.version,
                "dashboard: agent updated"
            );
            Ok(Redirect::to(&format!("/agents/{}?saved=1", updated.id)).into_response())
        }
        Ok(None) => Err(WebError::NotFound),
        Err(StoreError::Constraint { constraint, .. }) if constraint == NAME_TAKEN => {
            let mut errors = FieldErrors::default();
            errors.add("name", "is already the name of another agent in this account");
            Ok(refused(
                agent_page(&state, &user, &agent, form, errors, false).await?,
                StatusCode::CONFLICT,
            ))
        }
        Err(e) => Err(e.into()),
    }
}
