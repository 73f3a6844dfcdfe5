//! `/integrations`: the account's helpdesk integrations. List them with
//! their inbound URL, status and refused deliveries; create one; show one
//! with its recent deliveries; rotate its secret; delete it; and send it a
//! signed test delivery.
//!
//! What is stored mirrors the API exactly (`bounty-server`'s
//! `routes/integrations.rs`): the same checks ([`integration_form`]), the
//! same sealing ([`crate::sealed`]), the same rotation grace. A secret is
//! shown once, on the page the creating (or rotating) POST answers, with
//! `Cache-Control: no-store`, and never again: the detail page has no way
//! to show it. Without master keys ([`WebState::keyring`]) the pages say
//! so, and nothing can be created, rotated or tested.
//!
//! A test delivery goes to this server's own `/webhooks/in/{id}` over
//! HTTP ([`WebState::self_url`]), so it proves the whole path a real
//! delivery takes; it creates a real task, which is billed if resolved,
//! and the page says so. Every action here is for owners; members see.
//!
//! Status is the API's ([`bounty_integrations::status`]): an integration
//! whose secret no longer opens under the master keys shows `broken`
//! (`secret_unreadable`), says how to mend it, and sends no test delivery.
//!
//! [`integration_form`]: super::integration_form

use std::collections::BTreeMap;
use std::time::Duration;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use bounty_core::{AgentId, IntegrationId, PageLimit, SealPurpose};
use bounty_integrations::IntegrationKind;
use bounty_integrations::status::{IntegrationStatus, status};
use bounty_store::{Integration, NewIntegration};
use serde::Deserialize;

use crate::auth::{CurrentUser, SignedForm};
use crate::error::WebError;
use crate::format::{time, time_or_dash};
use crate::layout::{Chrome, render};
use crate::pages::field_errors::{FieldErrors, SummaryLine};
use crate::pages::integration_form::{self, IntegrationForm, RotateForm, fresh_secret};
use crate::pages::login::NoFields;
use crate::pages::{WebQuery, present};
use crate::sealed::{self, NO_KEYS};
use crate::state::WebState;
use crate::test_delivery;

/// Integrations per page.
const PAGE_SIZE: u32 = 50;
/// Recent deliveries on an integration's page.
const DELIVERIES_SHOWN: u32 = 25;
/// Agents offered in the create form.
const AGENTS_OFFERED: u32 = 100;
/// How long a test delivery may take, end to end.
const TEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Characters of the webhook's answer shown after a test delivery.
const ANSWER_CHARS: usize = 2000;
/// What the pages say of a broken integration.
const BROKEN: &str = "Its inbound secret does not open under this server's master keys (the key that sealed it \
     is no longer configured), so no delivery can be verified: the webhook answers 503 `secret_unreadable`. \
     Restore that key in `secrets.master_keys`, or rotate the secret below and give the helpdesk the new one.";
/// What the pages say when test deliveries cannot be sent.
const NO_SELF_URL: &str = "Test deliveries are sent to this server's own webhook URL, and the server does not \
     know its address: set the dashboard's `self_url` (the base URL this server can reach itself at).";

/// Where the helpdesk sends its webhooks: absolute under `self_url` when
/// it is known, else relative to this server.
fn inbound_url(state: &WebState, id: IntegrationId) -> String {
    match state.base_url() {
        Some(base) => format!("{base}/webhooks/in/{id}"),
        None => format!("/webhooks/in/{id}"),
    }
}

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

struct IntegrationRow {
    id: String,
    name: String,
    kind: String,
    agent: String,
    inbound_url: String,
    status: String,
    /// Why the status is not `active`; empty when it is.
    reason: String,
    rejected: i64,
    last_rejected: String,
}

#[derive(Template)]
#[template(path = "integrations.html")]
struct IntegrationsPage {
    chrome: Chrome,
    owner: bool,
    /// [`NO_KEYS`] when there are no master keys, else empty.
    no_keys: &'static str,
    relative_urls: bool,
    rows: Vec<IntegrationRow>,
    next_href: Option<String>,
}

#[derive(Template)]
#[template(path = "integration_new.html")]
struct NewPage {
    chrome: Chrome,
    csrf: String,
    kinds: Vec<Choice>,
    agents: Vec<Choice>,
    form: IntegrationForm,
    errors: FieldErrors,
    summary: Vec<SummaryLine>,
}

/// The page a secret is shown on, once.
#[derive(Template)]
#[template(path = "integration_secret.html")]
struct SecretPage {
    chrome: Chrome,
    heading: &'static str,
    id: String,
    name: String,
    kind: String,
    inbound_url: String,
    relative_url: bool,
    secret: String,
    reply_secret: Option<String>,
    /// After a rotation: until when the old secret still works.
    previous_until: Option<String>,
}

struct DeliveryRow {
    received: String,
    event: String,
    ticket: String,
    result: String,
    reason: String,
    task: Option<String>,
}

/// What this server's webhook answered a test delivery.
struct TestResult {
    accepted: bool,
    /// `HTTP 202`, or that it could not be reached.
    summary: String,
    ticket: String,
    answer: String,
}

#[derive(Template)]
#[template(path = "integration.html")]
struct DetailPage {
    chrome: Chrome,
    csrf: String,
    owner: bool,
    id: String,
    name: String,
    kind: String,
    agent_id: String,
    agent: String,
    inbound_url: String,
    relative_url: bool,
    status: String,
    /// Why the status is not `active`; empty when it is.
    reason: String,
    /// [`BROKEN`] when it is broken, else empty.
    broken: &'static str,
    reply_url: String,
    rejected: i64,
    last_rejected: String,
    previous_until: String,
    created: String,
    deliveries: Vec<DeliveryRow>,
    /// Why test deliveries are unavailable; empty when they are.
    test_unavailable: &'static str,
    test: Option<TestResult>,
    rotate_error: Option<String>,
    enable_error: Option<String>,
    grace_hours: String,
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    cursor: Option<String>,
}

async fn agent_names(state: &WebState, user: &CurrentUser) -> Result<BTreeMap<AgentId, String>, WebError> {
    let limit = PageLimit::new(AGENTS_OFFERED).map_err(|e| WebError::Internal(e.to_string()))?;
    let page = state.store.list_agents(user.account(), limit, None).await?;
    Ok(page.items.into_iter().map(|a| (a.id, a.name)).collect())
}

/// `GET /integrations`.
pub(crate) async fn list(
    State(state): State<WebState>,
    user: CurrentUser,
    WebQuery(q): WebQuery<ListQuery>,
) -> Result<Response, WebError> {
    let cursor = present(&q.cursor)
        .map(|c| {
            c.parse::<IntegrationId>()
                .map_err(|_| WebError::BadRequest("`cursor` is not an integration id.".into()))
        })
        .transpose()?;
    let limit = PageLimit::new(PAGE_SIZE).map_err(|e| WebError::Internal(e.to_string()))?;
    let page = state
        .store
        .list_integrations(user.account(), limit, cursor)
        .await?;
    let names = agent_names(&state, &user).await?;
    let rows = page
        .items
        .iter()
        .map(|i| (i, status(i, state.keyring.as_deref())))
        .map(|(i, st)| IntegrationRow {
            id: i.id.to_string(),
            name: i.name.clone(),
            kind: i.kind.label().to_owned(),
            agent: names
                .get(&i.agent_id)
                .cloned()
                .unwrap_or_else(|| i.agent_id.to_string()),
            inbound_url: inbound_url(&state, i.id),
            status: st.as_str().to_owned(),
            reason: st.reason().unwrap_or_default(),
            rejected: i.rejected_count,
            last_rejected: match (&i.last_rejected_code, i.last_rejected_at) {
                (Some(code), Some(at)) => format!("last {}: {code}", time(at)),
                _ => String::new(),
            },
        })
        .collect();
    render(&IntegrationsPage {
        chrome: Chrome::for_user(&user, "Integrations", "integrations"),
        owner: user.require_owner().is_ok(),
        no_keys: if state.keyring.is_some() { "" } else { NO_KEYS },
        relative_urls: state.base_url().is_none(),
        rows,
        next_href: page.next_cursor.map(|c| format!("/integrations?cursor={c}")),
    })
}

async fn new_page(
    state: &WebState,
    user: &CurrentUser,
    form: IntegrationForm,
    errors: FieldErrors,
) -> Result<Response, WebError> {
    let names = agent_names(state, user).await?;
    let kinds = IntegrationKind::ALL
        .iter()
        .map(|k| Choice {
            value: k.as_str().to_owned(),
            label: k.label().to_owned(),
            selected: form.kind == k.as_str(),
        })
        .collect();
    let agents = names
        .iter()
        .map(|(id, name)| Choice {
            value: id.to_string(),
            label: name.clone(),
            selected: form.agent == id.to_string(),
        })
        .collect();
    render(&NewPage {
        chrome: Chrome::for_user(user, "New integration", "integrations"),
        csrf: user.session.csrf_secret.clone(),
        kinds,
        agents,
        summary: errors.summary(&integration_form::FIELDS),
        form: form.without_secrets(),
        errors,
    })
}

/// `GET /integrations/new`.
pub(crate) async fn new(State(state): State<WebState>, user: CurrentUser) -> Result<Response, WebError> {
    user.require_owner()?;
    sealed::keyring(&state)?;
    new_page(&state, &user, IntegrationForm::default(), FieldErrors::default()).await
}

/// A secret page: never cached, anywhere.
fn secret_response(page: &SecretPage) -> Result<Response, WebError> {
    let mut r = render(page)?;
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// `POST /integrations`: creates an integration and shows its inbound URL
/// and secret, once.
pub(crate) async fn create(
    State(state): State<WebState>,
    SignedForm { user, form }: SignedForm<IntegrationForm>,
) -> Result<Response, WebError> {
    user.require_owner()?;
    let keys = sealed::keyring(&state)?;
    let mut errors = FieldErrors::default();
    let agent = match form.agent.trim().parse::<AgentId>() {
        Ok(id) => state.store.get_agent(user.account(), id, None).await?,
        Err(_) => None,
    };
    if agent.is_none() {
        errors.add("agent", "must be one of this account's agents");
    }
    let checked = form.check(&mut errors)?;
    let (Some(agent), Some(checked)) = (agent, checked) else {
        let mut r = new_page(&state, &user, form, errors).await?;
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        return Ok(r);
    };
    let account = user.account();
    let id = IntegrationId::new();
    let reply_sealed = match &checked.reply {
        Some(settings) => {
            let json = serde_json::to_vec(settings).map_err(|e| WebError::Internal(e.to_string()))?;
            Some(sealed::seal(keys, account, id, SealPurpose::Reply, &json)?)
        }
        None => None,
    };
    let new = NewIntegration {
        id,
        kind: checked.kind,
        name: checked.name.clone(),
        agent_id: agent.id,
        secret_sealed: sealed::seal(keys, account, id, SealPurpose::Inbound, checked.secret.as_bytes())?,
        reply_sealed,
        mode: user.mode(),
    };
    let created = state.store.create_integration(account, &new).await?;
    tracing::info!(
        account.id = %account, integration.id = %created.id, kind = checked.kind.as_str(),
        "dashboard: integration created"
    );
    secret_response(&SecretPage {
        chrome: Chrome::for_user(&user, "Integration created", "integrations"),
        heading: "Integration created",
        id: created.id.to_string(),
        name: created.name.clone(),
        kind: created.kind.label().to_owned(),
        inbound_url: inbound_url(&state, created.id),
        relative_url: state.base_url().is_none(),
        secret: checked.secret,
        reply_secret: checked.reply_secret,
        previous_until: None,
    })
}

async fn find(state: &WebState, user: &CurrentUser, id: &str) -> Result<Integration, WebError> {
    let id: IntegrationId = id.parse().map_err(|_| WebError::NotFound)?;
    state
        .store
        .get_integration(user.account(), id)
        .await?
        .ok_or(WebError::NotFound)
}

/// What the detail page shows besides the integration itself.
#[derive(Default)]
struct Extras {
    test: Option<TestResult>,
    rotate_error: Option<String>,
    enable_error: Option<String>,
    grace_hours: String,
}

async fn detail_page(
    state: &WebState,
    user: &CurrentUser,
    i: &Integration,
    extras: Extras,
) -> Result<Response, WebError> {
    let account = user.account();
    let agent = state
        .store
        .get_agent(account, i.agent_id, None)
        .await?
        .map(|a| a.name)
        .unwrap_or_else(|| i.agent_id.to_string());
    let limit = PageLimit::new(DELIVERIES_SHOWN).map_err(|e| WebError::Internal(e.to_string()))?;
    let deliveries = state
        .store
        .list_deliveries(account, i.id, limit, None)
        .await?
        .items
        .into_iter()
        .map(|d| DeliveryRow {
            received: time(d.received_at),
            event: d.event.to_string(),
            ticket: d.external_ticket,
            result: d.result.as_str().to_owned(),
            reason: d.reason.unwrap_or_default(),
            task: d.task_id.map(|t| t.to_string()),
        })
        .collect();
    let st = status(i, state.keyring.as_deref());
    let broken = matches!(st, IntegrationStatus::Broken(_));
    let test_unavailable = if state.keyring.is_none() {
        NO_KEYS
    } else if broken {
        BROKEN
    } else if state.base_url().is_none() {
        NO_SELF_URL
    } else {
        ""
    };
    render(&DetailPage {
        chrome: Chrome::for_user(user, format!("Integration {}", i.name), "integrations"),
        csrf: user.session.csrf_secret.clone(),
        owner: user.require_owner().is_ok(),
        id: i.id.to_string(),
        name: i.name.clone(),
        kind: i.kind.label().to_owned(),
        agent_id: i.agent_id.to_string(),
        agent,
        inbound_url: inbound_url(state, i.id),
        relative_url: state.base_url().is_none(),
        status: st.as_str().to_owned(),
        reason: st.reason().unwrap_or_default(),
        broken: if broken { BROKEN } else { "" },
        reply_url: match (&i.reply_sealed, state.keyring.as_deref()) {
            (None, _) => "none: nothing is posted back".to_owned(),
            (Some(_), None) => "set, but the master keys are not configured".to_owned(),
            (Some(_), keys) => bounty_integrations::status::reply_url(keys, i)
                .unwrap_or_else(|| "set, but it does not open under these keys".into()),
        },
        rejected: i.rejected_count,
        last_rejected: match (&i.last_rejected_code, i.last_rejected_at) {
            (Some(code), Some(at)) => format!("{code}, {}", time(at)),
            _ => "—".to_owned(),
        },
        previous_until: time_or_dash(i.previous_secret_expires_at),
        created: time(i.created_at),
        deliveries,
        test_unavailable,
        test: extras.test,
        rotate_error: extras.rotate_error,
        enable_error: extras.enable_error,
        grace_hours: if extras.grace_hours.is_empty() {
            integration_form::DEFAULT_GRACE_HOURS.to_string()
        } else {
            extras.grace_hours
        },
    })
}

/// `GET /integrations/{id}`: the integration (never its secrets) and its
/// recent deliveries.
pub(crate) async fn show(
    State(state): State<WebState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let i = find(&state, &user, &id).await?;
    detail_page(&state, &user, &i, Extras::default()).await
}

/// `POST /integrations/{id}/enable`: an owner turns a disabled
/// integration's replies back on once its helpdesk answers a test ping
/// (or without it, when asked after a failed one); the replies parked
/// meanwhile go out, oldest first.
pub(crate) async fn enable(
    State(state): State<WebState>,
    Path(id): Path<String>,
    SignedForm { user, form }: SignedForm<EnableForm>,
) -> Result<Response, WebError> {
    use bounty_integrations::reenable::{EnableError, enable_integration};
    user.require_owner()?;
    let i = find(&state, &user, &id).await?;
    let http = bounty_integrations::reply::http_client().map_err(|e| WebError::Internal(e.to_string()))?;
    let ping = form.skip_ping.is_none();
    let refused = match enable_integration(
        &state.store,
        state.keyring.as_deref(),
        &http,
        user.account(),
        i.id,
        ping,
    )
    .await
    {
        Ok(enabled) => {
            tracing::info!(account.id = %user.account(), integration.id = %i.id, replies = enabled.replies_queued, "dashboard: integration re-enabled");
            return Ok(Redirect::to(&format!("/integrations/{}", i.id)).into_response());
        }
        Err(EnableError::NotFound) => return Err(WebError::NotFound),
        Err(EnableError::Store(e)) => return Err(e.into()),
        Err(EnableError::PingFailed(why)) => format!(
            "The helpdesk did not answer the test ping ({why}), so replies stay off. Fix the reply \
             settings, or turn replies on without the test."
        ),
        Err(e) => format!("Replies stay off: {e}."),
    };
    let extras = Extras {
        enable_error: Some(refused),
        ..Extras::default()
    };
    let mut response = detail_page(&state, &user, &i, extras).await?;
    *response.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    Ok(response)
}

/// The re-enable form: its CSRF token, and whether to skip the test ping.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct EnableForm {
    #[serde(default)]
    skip_ping: Option<String>,
}

/// `POST /integrations/{id}/rotate-secret`: a new inbound secret, shown
/// once; the old one still works for the grace period.
pub(crate) async fn rotate(
    State(state): State<WebState>,
    Path(id): Path<String>,
    SignedForm { user, form }: SignedForm<RotateForm>,
) -> Result<Response, WebError> {
    user.require_owner()?;
    let i = find(&state, &user, &id).await?;
    let keys = sealed::keyring(&state)?;
    let kind = i.kind;
    let grace = form.grace().map_err(|m| format!("The grace period {m}."));
    let given = form.secret.trim();
    let secret = if given.is_empty() {
        Ok(None)
    } else {
        bounty_integrations::check_given_secret(kind, given)
            .map(Some)
            .map_err(|m| format!("The new secret {m}."))
    };
    let (grace, secret) = match (grace, secret) {
        (Ok(grace), Ok(secret)) => (grace, secret),
        (Err(message), _) | (_, Err(message)) => {
            let extras = Extras {
                rotate_error: Some(message),
                grace_hours: form.grace_hours.clone(),
                ..Extras::default()
            };
            let mut r = detail_page(&state, &user, &i, extras).await?;
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(r);
        }
    };
    let secret = match secret {
        Some(s) => s,
        None => fresh_secret(kind)?,
    };
    let sealed_secret = sealed::seal(keys, i.account_id, i.id, SealPurpose::Inbound, secret.as_bytes())?;
    let until = state.store.now() + chrono::Duration::hours(i64::from(grace));
    let rotated = state
        .store
        .rotate_integration_secret(user.account(), i.id, &sealed_secret, until)
        .await?
        .ok_or(WebError::NotFound)?;
    tracing::info!(
        account.id = %user.account(), integration.id = %rotated.id, grace_hours = grace,
        "dashboard: integration secret rotated"
    );
    secret_response(&SecretPage {
        chrome: Chrome::for_user(&user, "Secret rotated", "integrations"),
        heading: "Secret rotated",
        id: rotated.id.to_string(),
        name: rotated.name.clone(),
        kind: rotated.kind.label().to_owned(),
        inbound_url: inbound_url(&state, rotated.id),
        relative_url: state.base_url().is_none(),
        secret,
        reply_secret: None,
        previous_until: Some(time(until)),
    })
}

/// `POST /integrations/{id}/delete`: its inbound URL answers 404 from now on.
pub(crate) async fn delete(
    State(state): State<WebState>,
    Path(id): Path<String>,
    SignedForm { user, .. }: SignedForm<NoFields>,
) -> Result<Response, WebError> {
    user.require_owner()?;
    let id: IntegrationId = id.parse().map_err(|_| WebError::NotFound)?;
    if !state.store.delete_integration(user.account(), id).await? {
        return Err(WebError::NotFound);
    }
    tracing::info!(account.id = %user.account(), integration.id = %id, "dashboard: integration deleted");
    Ok(Redirect::to("/integrations").into_response())
}

/// `text`, cut to [`ANSWER_CHARS`] characters.
fn cut(text: &str) -> String {
    let mut out: String = text.chars().take(ANSWER_CHARS).collect();
    if text.chars().count() > ANSWER_CHARS {
        out.push('…');
    }
    out
}

/// `POST /integrations/{id}/test-delivery`: a new-ticket event in the
/// integration's vendor format, signed with its current secret, POSTed to
/// this server's webhook URL; the page shows what the webhook answered.
pub(crate) async fn test_delivery(
    State(state): State<WebState>,
    Path(id): Path<String>,
    SignedForm { user, .. }: SignedForm<NoFields>,
) -> Result<Response, WebError> {
    user.require_owner()?;
    let i = find(&state, &user, &id).await?;
    let keys = sealed::keyring(&state)?;
    let base = state.base_url().ok_or(WebError::NotConfigured(NO_SELF_URL))?;
    if let IntegrationStatus::Broken(reason) = status(&i, Some(keys)) {
        // Nothing to sign with: say so on the page, as the webhook would.
        let test = TestResult {
            accepted: false,
            summary: format!(
                "No test delivery was sent: the integration is broken ({}).",
                reason.as_str()
            ),
            ticket: String::new(),
            answer: String::new(),
        };
        let extras = Extras {
            test: Some(test),
            ..Extras::default()
        };
        let mut r = detail_page(&state, &user, &i, extras).await?;
        *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        return Ok(r);
    }
    let secret = sealed::inbound_secret(keys, &i)?;
    let delivery = test_delivery::build(i.kind, &secret, state.store.now())
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let url = format!("{base}/webhooks/in/{}", i.id);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TEST_TIMEOUT)
        .build()
        .map_err(|e| WebError::Internal(format!("building the HTTP client: {e}")))?;
    let mut request = client.post(&url).body(delivery.body);
    for (name, value) in &delivery.headers {
        request = request.header(name, value);
    }
    let test = match request.send().await {
        Ok(r) => {
            let status = r.status();
            let answer = r.text().await.unwrap_or_default();
            tracing::info!(
                account.id = %user.account(), integration.id = %i.id, status = status.as_u16(),
                "dashboard: test delivery sent"
            );
            TestResult {
                accepted: status.is_success(),
                summary: format!("The webhook answered HTTP {}.", status.as_u16()),
                ticket: delivery.ticket,
                answer: cut(&answer),
            }
        }
        Err(e) => {
            tracing::warn!(
                account.id = %user.account(), integration.id = %i.id, error = %e,
                "dashboard: test delivery failed"
            );
            TestResult {
                accepted: false,
                summary: format!("The webhook at {url} could not be reached: {e}."),
                ticket: delivery.ticket,
                answer: String::new(),
            }
        }
    };
    detail_page(
        &state,
        &user,
        &i,
        Extras {
            test: Some(test),
            ..Extras::default()
        },
    )
    .await
}
