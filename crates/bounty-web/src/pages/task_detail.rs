//! `GET /tasks/{id}`: everything about one task, so every charge can be
//! traced to its verdict: the input, the conversation after it (each
//! customer message and each turn's answer, with its turn), the
//! transcript, each model call with its cost, each verifier's decision and
//! reason, and the charge with its rating receipt, or "No charge — not
//! resolved".

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use bounty_core::outcome::ReceiptEvent;
use bounty_core::{OutcomeStatus, TaskId};
use bounty_store::{Outcome, OutcomeEventRecord};

use crate::auth::CurrentUser;
use crate::error::WebError;
use crate::format::{cu, micros, time, time_or_dash};
use crate::layout::{Chrome, render};
use crate::state::WebState;

/// The words of an uncharged outcome; tests and customers look for them.
pub(crate) const NO_CHARGE: &str = "No charge — not resolved";
/// What a task handed to a person says where a charge would be.
pub(crate) const ESCALATED: &str = "No charge — handed to a person (escalation is never charged)";

struct Message {
    role: String,
    content: String,
}

/// One message of the conversation after the ticket.
struct ConversationRow {
    /// `Customer` or `Agent`.
    who: &'static str,
    /// `customer` or `agent`, for the row's class.
    role: &'static str,
    turn: i32,
    /// Where it came in: the API, the helpdesk, or the agent's answer.
    source: &'static str,
    at: String,
    body: String,
}

fn conversation(messages: Vec<bounty_store::ConversationMessage>) -> Vec<ConversationRow> {
    use bounty_core::conversation::{MessageRole, MessageSource};
    messages
        .into_iter()
        .map(|m| ConversationRow {
            who: match m.role {
                MessageRole::Customer => "Customer",
                MessageRole::Agent => "Agent",
            },
            role: m.role.as_str(),
            turn: m.turn,
            source: match m.source {
                MessageSource::Api => "API",
                MessageSource::Helpdesk => "helpdesk",
                MessageSource::Agent => "answer",
            },
            at: time(m.created_at),
            body: m.body,
        })
        .collect()
}

struct CallRow {
    attempt: i32,
    model: String,
    provider: String,
    prompt_tokens: i64,
    completion_tokens: i64,
    latency: String,
    /// What a BYOK call cost the account; `—` for every other call.
    byok_cost: String,
    cache_hit: bool,
    byok: bool,
    /// The verifiers' decision on this call's answer, or `—`.
    verdict: String,
    error: String,
}

struct VerdictRow {
    verifier: String,
    version: String,
    decision: String,
    reason: String,
    confidence: String,
}

struct EventRow {
    seq: i32,
    event: String,
    transition: String,
    effect: String,
    reason: String,
    at: String,
    policy: String,
    verdicts: Vec<VerdictRow>,
}

/// The charge and how it was computed.
struct ChargeView {
    /// Why, in plain words: "Resolved: the helpdesk marked the ticket
    /// solved."; for a reversal, also who reversed it and why.
    summary: String,
    reversal: String,
    plan: String,
    formula: String,
    cu: String,
    included: String,
    billable: String,
    amount: String,
    reversed: bool,
}

struct AttemptRow {
    attempt: i32,
    worker: String,
    started: String,
    finished: String,
    outcome: String,
    error: String,
}

#[derive(Template)]
#[template(path = "task.html")]
struct TaskPage {
    chrome: Chrome,
    id: String,
    status: &'static str,
    agent: String,
    created: String,
    finished: String,
    subject: String,
    body: String,
    customer: String,
    metadata: String,
    external_ref: String,
    output: String,
    last_error: String,
    /// The conversation's turn the task is on.
    turn: i32,
    /// The conversation after the ticket, in order.
    conversation: Vec<ConversationRow>,
    transcript: Vec<Message>,
    calls: Vec<CallRow>,
    /// Calls on the account's own key, paid by the customer; empty without.
    byok_cost: String,
    attempts: Vec<AttemptRow>,
    outcome_status: String,
    events: Vec<EventRow>,
    charge: Option<ChargeView>,
    /// When there is no charge: why, in words.
    no_charge: String,
    /// The charge's dispute, once there is one.
    dispute: Option<DisputeView>,
    /// The charge can be disputed by this user (resolved, not disputed,
    /// an owner).
    can_dispute: bool,
    /// The reasons a dispute may give: `(value, words)`.
    dispute_reasons: Vec<(&'static str, &'static str)>,
    csrf: String,
}

/// A dispute as its account sees it.
struct DisputeView {
    id: String,
    status: String,
    reason: String,
    comment: String,
    /// "the operator" or "the plan's dispute policy"; empty while open.
    decided_by: String,
    decision_reason: String,
    evidence_sha256: String,
}

/// The reasons a dispute may give, in words.
const DISPUTE_REASONS: [(&str, &str); 4] = [
    ("not_resolved", "The ticket was not resolved"),
    ("wrong_answer", "The answer was wrong"),
    ("duplicate", "Charged twice for one ticket"),
    ("other", "Something else (say what below)"),
];

fn transcript(v: &Option<serde_json::Value>) -> Vec<Message> {
    let Some(serde_json::Value::Array(items)) = v else {
        return Vec::new();
    };
    items
        .iter()
        .map(|m| Message {
            role: m["role"].as_str().unwrap_or("message").to_owned(),
            content: match &m["content"] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            },
        })
        .collect()
}

fn events(records: Vec<OutcomeEventRecord>) -> Vec<EventRow> {
    records
        .into_iter()
        .map(|e| EventRow {
            seq: e.seq,
            transition: match &e.from_status {
                Some(from) => format!("{from} → {}", e.to_status),
                None => e.to_status.to_string(),
            },
            event: e.event.to_string(),
            effect: e.effect.to_string(),
            reason: e.reason,
            at: time(e.created_at),
            policy: format!("version {}, sha256 {}", e.policy_version, e.policy_hash),
            verdicts: e
                .verdicts
                .unwrap_or_default()
                .into_iter()
                .map(|v| VerdictRow {
                    verifier: v.verifier,
                    version: v.version,
                    decision: v.decision.as_str().to_owned(),
                    reason: v.reason,
                    confidence: v
                        .confidence
                        .map(|c| format!("{c:.2}"))
                        .unwrap_or_else(|| "—".into()),
                })
                .collect(),
        })
        .collect()
}

/// Why the outcome was charged, in the customer's words, from the receipt
/// event that resolved it.
fn plain_summary(o: &Outcome, events: &[OutcomeEventRecord]) -> String {
    let resolving = events.iter().find(|e| {
        e.to_status == OutcomeStatus::Resolved && e.effect == bounty_core::outcome::ChargeEffect::Charge
    });
    let why = match resolving.map(|e| (e.event, e.signal.as_ref())) {
        Some((ReceiptEvent::Verified, _)) => "the verifiers checked the answer and passed it".to_owned(),
        Some((ReceiptEvent::Signal, Some(s))) => match s["kind"].as_str() {
            Some("solved") => "the helpdesk marked the ticket solved".to_owned(),
            Some("customer_confirmed") => "the customer confirmed it was solved".to_owned(),
            Some("csat") => format!("the customer rated the help {} of 5", s["score"]),
            _ => "the ticket source confirmed it".to_owned(),
        },
        Some((ReceiptEvent::WindowLapsed, _)) => format!(
            "the customer did not reopen the ticket within {} h",
            o.policy.window_hours
        ),
        _ => "the outcome was resolved".to_owned(),
    };
    format!("Resolved: {why}.")
}

/// Who reversed the charge and why, in plain words; empty when it stands.
fn plain_reversal(events: &[OutcomeEventRecord]) -> String {
    events
        .iter()
        .find(|e| e.effect == bounty_core::outcome::ChargeEffect::Reverse)
        .map(|e| {
            let who = e.actor.as_ref().map_or_else(
                || "Bounty".to_owned(),
                |a| match a {
                    bounty_core::Actor::Operator(_) => "the operator".to_owned(),
                    bounty_core::Actor::DisputePolicy => "your plan's dispute policy".to_owned(),
                    bounty_core::Actor::Integration(_) => "the helpdesk".to_owned(),
                    other => other.describe(),
                },
            );
            let why = match e.event {
                ReceiptEvent::Signal
                    if e.signal.as_ref().and_then(|s| s["kind"].as_str()) == Some("escalated") =>
                {
                    "the ticket was handed to a person inside the window".to_owned()
                }
                ReceiptEvent::Signal => "the ticket was reopened inside the window".to_owned(),
                ReceiptEvent::DisputeAccepted => "your dispute was accepted".to_owned(),
                ReceiptEvent::GoodwillReversal => "a goodwill reversal".to_owned(),
                _ => e.reason.clone(),
            };
            format!(
                "Reversed by {who} on {}: {why}. You are not billed for it.",
                time(e.created_at)
            )
        })
        .unwrap_or_default()
}

fn charge(o: &Outcome, events: &[OutcomeEventRecord]) -> Option<ChargeView> {
    if !matches!(o.status, OutcomeStatus::Resolved | OutcomeStatus::Reversed) {
        return None;
    }
    let r = o.rating.as_ref()?;
    Some(ChargeView {
        summary: plain_summary(o, events),
        reversal: plain_reversal(events),
        plan: format!("{} ({} plan)", r.plan.name, r.plan.kind.as_str()),
        formula: r.formula.clone(),
        cu: cu(r.cu.milli()),
        included: cu(r.included_applied.milli()),
        billable: cu(r.billable_cu.milli()),
        amount: micros(o.amount.micros, o.amount.currency.as_str()),
        reversed: o.status == OutcomeStatus::Reversed,
    })
}

fn no_charge_reason(o: Option<&Outcome>) -> String {
    match o.map(|o| o.status) {
        Some(OutcomeStatus::Failed) => NO_CHARGE.to_owned(),
        Some(OutcomeStatus::Escalated) => ESCALATED.to_owned(),
        Some(OutcomeStatus::Verifying | OutcomeStatus::Provisional) => {
            "No charge yet — the verdict is pending.".to_owned()
        }
        Some(OutcomeStatus::Resolved | OutcomeStatus::Reversed) => {
            "Resolved, but no rating receipt was recorded.".to_owned()
        }
        None => "No charge yet — the task has no outcome.".to_owned(),
    }
}

pub(crate) async fn page(
    State(state): State<WebState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let account = user.account();
    let id: TaskId = id.parse().map_err(|_| WebError::NotFound)?;
    let task = state
        .store
        .get_task(account, id)
        .await?
        // Another mode's task is not there, as in the list and the API.
        .filter(|t| t.mode == user.mode())
        .ok_or(WebError::NotFound)?;
    let calls = state.store.model_calls(account, id).await?;
    let attempts = state.store.task_attempts(account, id).await?;
    let messages = state.store.conversation(account, id).await?;
    let agent = state
        .store
        .get_agent(account, task.agent_id, Some(task.agent_version))
        .await?
        .map(|a| format!("{} (version {})", a.name, a.version))
        .unwrap_or_else(|| task.agent_id.to_string());
    let outcome = state.store.outcome_of_task(account, id).await?;
    let dispute = match &outcome {
        Some(o) => state.store.dispute_of_outcome(account, o.id).await?,
        None => None,
    };
    let can_dispute = dispute.is_none()
        && user.session.role == bounty_store::UserRole::Owner
        && outcome
            .as_ref()
            .is_some_and(|o| o.status == bounty_core::outcome::OutcomeStatus::Resolved);
    let dispute = dispute.map(|d| DisputeView {
        id: d.id.to_string(),
        status: d.status.to_string(),
        reason: DISPUTE_REASONS
            .iter()
            .find(|(v, _)| *v == d.reason.as_str())
            .map_or_else(|| d.reason.to_string(), |(_, words)| (*words).to_owned()),
        comment: d.comment.unwrap_or_default(),
        decided_by: match d.decided_by {
            Some(bounty_core::Actor::DisputePolicy) => "the plan's dispute policy".to_owned(),
            Some(_) => "the operator".to_owned(),
            None => String::new(),
        },
        decision_reason: d.decision_reason.unwrap_or_default(),
        evidence_sha256: d.evidence_sha256,
    });
    let receipt = match &outcome {
        Some(o) => state.store.outcome_events(account, o.id).await?,
        None => Vec::new(),
    };
    // The customer pays for calls on its own key (BYOK) and sees what they
    // cost; what every other call cost us is never shown here. Shadow
    // students are ours too, and not part of the task.
    let mut byok_by_currency: std::collections::BTreeMap<String, i64> = Default::default();
    for c in calls.iter().filter(|c| !c.call.shadow && c.call.byok) {
        let e = byok_by_currency
            .entry(c.call.cost.currency.to_string())
            .or_insert(0);
        *e = e.saturating_add(c.call.cost.micros);
    }
    let byok_cost = byok_by_currency
        .iter()
        .map(|(c, m)| micros(*m, c))
        .collect::<Vec<_>>()
        .join(" + ");
    let title = match task.input.subject.trim() {
        "" => format!("Task {id}"),
        subject => subject.chars().take(80).collect(),
    };
    let page = TaskPage {
        chrome: Chrome::for_user(&user, title, "tasks"),
        id: id.to_string(),
        status: task.status.as_str(),
        agent,
        created: time(task.created_at),
        finished: time_or_dash(task.finished_at),
        subject: task.input.subject.clone(),
        body: task.input.body.clone(),
        customer: task
            .input
            .customer
            .as_ref()
            .map(|c| {
                [c.name.as_deref(), c.email.as_deref(), c.id.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" · ")
            })
            .unwrap_or_default(),
        metadata: if task.input.metadata.is_empty() {
            String::new()
        } else {
            serde_json::to_string_pretty(&task.input.metadata).unwrap_or_default()
        },
        external_ref: task.external_ref.clone().unwrap_or_default(),
        output: task.output.clone().unwrap_or_default(),
        last_error: task
            .last_error
            .as_ref()
            .map(|e| format!("{}: {}", e.code, e.message))
            .unwrap_or_default(),
        turn: task.turn,
        conversation: conversation(messages),
        transcript: transcript(&task.transcript),
        calls: calls
            .iter()
            .filter(|c| !c.call.shadow)
            .map(|c| CallRow {
                attempt: c.attempt,
                model: c.call.model.clone(),
                provider: c.call.provider.clone().unwrap_or_else(|| "—".into()),
                prompt_tokens: c.call.prompt_tokens,
                completion_tokens: c.call.completion_tokens,
                latency: format!("{} ms", c.call.latency_us / 1000),
                byok_cost: if c.call.byok {
                    micros(c.call.cost.micros, c.call.cost.currency.as_str())
                } else {
                    "—".to_owned()
                },
                cache_hit: c.call.cache_hit,
                byok: c.call.byok,
                verdict: c.call.verdict.map_or("—", |d| d.as_str()).to_owned(),
                error: c
                    .call
                    .error
                    .as_ref()
                    .map(|e| format!("{}: {}", e.code, e.message))
                    .unwrap_or_default(),
            })
            .collect(),
        byok_cost,
        attempts: attempts
            .into_iter()
            .map(|a| AttemptRow {
                attempt: a.attempt,
                worker: a.worker,
                started: time(a.started_at),
                finished: time_or_dash(a.finished_at),
                outcome: a.outcome.map_or_else(|| "running".to_owned(), |o| o.to_string()),
                error: a
                    .error
                    .map(|e| format!("{}: {}", e.code, e.message))
                    .unwrap_or_default(),
            })
            .collect(),
        outcome_status: outcome
            .as_ref()
            .map(|o| o.status.as_str().to_owned())
            .unwrap_or_else(|| "none yet".into()),
        charge: outcome.as_ref().and_then(|o| charge(o, &receipt)),
        events: events(receipt),
        no_charge: no_charge_reason(outcome.as_ref()),
        dispute,
        can_dispute,
        dispute_reasons: DISPUTE_REASONS.to_vec(),
        csrf: user.session.csrf_secret.clone(),
    };
    render(&page)
}
