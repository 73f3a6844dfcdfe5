//! `GET /tasks`: the account's tasks, newest first, filtered by status,
//! agent, creation date and a search of subject and body, with cursor
//! pagination; and `GET /tasks/status`, the JSON the page's script polls
//! while any task shown is queued or running.
//!
//! Search (`q`) is the store's ([`TaskFilter::search`]): a
//! case-insensitive substring of the task's input, over every task, so
//! pages of a search are pages of its matches and the next-page link
//! keeps `q`.

use std::collections::BTreeMap;

use askama::Template;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bounty_core::{AgentId, PageLimit, TaskId, TaskStatus};
use bounty_store::{Task, TaskFilter};
use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::auth::CurrentUser;
use crate::error::WebError;
use crate::format::time;
use crate::layout::{Chrome, render};
use crate::pages::{WebQuery, day_start, parse_date, present};
use crate::state::WebState;

/// Tasks per page.
const PAGE_SIZE: u32 = 25;
/// The most ids one status poll may ask about.
const MAX_POLL_IDS: usize = 100;
/// Characters of a subject (or body, without one) shown in the list.
const PREVIEW_CHARS: usize = 90;

#[derive(Deserialize, Serialize, Default, Clone)]
pub(crate) struct TaskQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    q: Option<String>,
    /// `charged`, `not_charged`, `reversed` or `pending`.
    #[serde(skip_serializing_if = "Option::is_none")]
    charge: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
    /// The previous page: tasks newer than this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    before: Option<String>,
}

/// The charge filters: `(value, words, the outcome statuses it means)`.
const CHARGE_FILTERS: [(&str, &str, &[bounty_core::outcome::OutcomeStatus]); 5] = {
    use bounty_core::outcome::OutcomeStatus as S;
    [
        ("charged", "Charged", &[S::Resolved]),
        ("not_charged", "Not charged", &[S::Failed]),
        ("reversed", "Reversed", &[S::Reversed]),
        ("escalated", "Handed to a person", &[S::Escalated]),
        (
            "pending",
            "Waiting for a verdict",
            &[S::Verifying, S::Provisional],
        ),
    ]
};

struct TaskRow {
    id: String,
    created: String,
    agent: String,
    preview: String,
    /// The ticket (the task's external reference) and the customer.
    ticket: String,
    customer: String,
    status: &'static str,
    /// The badge's class: a completed task whose outcome was not
    /// resolved is not shown as a success.
    badge: &'static str,
    /// `resolved`, `not resolved`, `reversed`, `waiting` or `—`.
    outcome: &'static str,
    /// The amount charged, `No charge`, or `—` before a verdict.
    charge: String,
    /// The charge was reversed: shown struck through.
    charge_reversed: bool,
}

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "tasks.html")]
struct TasksPage {
    chrome: Chrome,
    statuses: Vec<Choice>,
    agents: Vec<Choice>,
    from: String,
    to: String,
    q: String,
    searching: bool,
    rows: Vec<TaskRow>,
    next_href: Option<String>,
    prev_href: Option<String>,
    first_href: Option<String>,
    /// The charge filters.
    charges: Vec<Choice>,
}

fn preview(t: &Task) -> String {
    let text = if t.input.subject.trim().is_empty() {
        &t.input.body
    } else {
        &t.input.subject
    };
    let mut out: String = text.chars().take(PREVIEW_CHARS).collect();
    if text.chars().count() > PREVIEW_CHARS {
        out.push('…');
    }
    out
}

pub(crate) async fn list(
    State(state): State<WebState>,
    user: CurrentUser,
    WebQuery(q): WebQuery<TaskQuery>,
) -> Result<Response, WebError> {
    let account = user.account();
    let status = present(&q.status)
        .map(|s| {
            s.parse::<TaskStatus>().map_err(|_| {
                WebError::BadRequest("`status` must be queued, running, completed or failed.".into())
            })
        })
        .transpose()?;
    let agent_id = present(&q.agent)
        .map(|s| s.parse::<AgentId>().map_err(|_| WebError::NotFound))
        .transpose()?;
    if let Some(a) = agent_id
        && state.store.get_agent(account, a, None).await?.is_none()
    {
        return Err(WebError::NotFound);
    }
    let from = parse_date("from", &q.from)?;
    let to = parse_date("to", &q.to)?;
    let task_id = |field: &str, v: &Option<String>| {
        present(v)
            .map(|s| {
                s.parse::<TaskId>()
                    .map_err(|_| WebError::BadRequest(format!("`{field}` is not a task id.")))
            })
            .transpose()
    };
    let cursor = match (task_id("cursor", &q.cursor)?, task_id("before", &q.before)?) {
        (Some(after), _) => bounty_store::TaskCursor::After(after),
        (None, Some(before)) => bounty_store::TaskCursor::Before(before),
        (None, None) => bounty_store::TaskCursor::First,
    };
    let charge = present(&q.charge)
        .map(|c| {
            CHARGE_FILTERS.iter().find(|(v, _, _)| *v == c).ok_or_else(|| {
                WebError::BadRequest("`charge` must be charged, not_charged, reversed or pending.".into())
            })
        })
        .transpose()?;
    let filter = TaskFilter {
        mode: user.mode(),
        status,
        agent_id,
        created_from: from.map(day_start),
        created_to: to.map(|d| day_start(d + Duration::days(1))),
        search: present(&q.q).map(str::to_owned),
        outcome_statuses: charge.map(|(_, _, s)| s.to_vec()).unwrap_or_default(),
    };
    let limit = PageLimit::new(PAGE_SIZE).map_err(|e| WebError::Internal(e.to_string()))?;
    let page = state
        .store
        .list_task_page(account, &filter, limit, cursor)
        .await?;
    let agents = state
        .store
        .list_agents(
            account,
            PageLimit::new(100).map_err(|e| WebError::Internal(e.to_string()))?,
            None,
        )
        .await?;
    let names: BTreeMap<String, String> = agents
        .items
        .iter()
        .map(|a| (a.id.to_string(), a.name.clone()))
        .collect();
    let ids: Vec<TaskId> = page.items.iter().map(|t| t.id).collect();
    let outcomes: std::collections::HashMap<TaskId, bounty_store::Outcome> = state
        .store
        .outcomes_of_tasks(account, &ids)
        .await?
        .into_iter()
        .map(|o| (o.task_id, o))
        .collect();
    let rows: Vec<TaskRow> = page
        .items
        .iter()
        .map(|t| row(t, outcomes.get(&t.id), &names))
        .collect();
    let href = |cursor: Option<String>, before: Option<String>| -> Result<String, WebError> {
        let mut next = q.clone();
        next.cursor = cursor;
        next.before = before;
        let qs = serde_urlencoded::to_string(&next).map_err(|e| WebError::Internal(e.to_string()))?;
        Ok(if qs.is_empty() {
            "/tasks".to_owned()
        } else {
            format!("/tasks?{qs}")
        })
    };
    let next_href = page.next_cursor.map(|c| href(Some(c), None)).transpose()?;
    let prev_href = page.prev_cursor.map(|c| href(None, Some(c))).transpose()?;
    let first_href = match cursor {
        bounty_store::TaskCursor::First => None,
        _ => Some(href(None, None)?),
    };
    let charges = CHARGE_FILTERS
        .iter()
        .map(|(value, label, _)| Choice {
            value: (*value).to_owned(),
            label: (*label).to_owned(),
            selected: charge.is_some_and(|(v, _, _)| v == value),
        })
        .collect();
    let statuses = TaskStatus::ALL
        .iter()
        .map(|s| Choice {
            value: s.as_str().to_owned(),
            label: s.as_str().to_owned(),
            selected: status == Some(*s),
        })
        .collect();
    let agent_choices = agents
        .items
        .iter()
        .map(|a| Choice {
            value: a.id.to_string(),
            label: a.name.clone(),
            selected: agent_id == Some(a.id),
        })
        .collect();
    let page = TasksPage {
        chrome: Chrome::for_user(&user, "Tasks", "tasks"),
        statuses,
        agents: agent_choices,
        from: from.map(|d| d.to_string()).unwrap_or_default(),
        to: to.map(|d| d.to_string()).unwrap_or_default(),
        q: present(&q.q).unwrap_or_default().to_owned(),
        searching: filter.search.is_some(),
        rows,
        next_href,
        prev_href,
        first_href,
        charges,
    };
    render(&page)
}

#[derive(Deserialize)]
pub(crate) struct StatusQuery {
    #[serde(default)]
    ids: String,
}

/// The statuses of the asked tasks.
#[derive(Serialize)]
struct Statuses {
    /// Task id → status, for the account's tasks among those asked;
    /// others (unknown, malformed, another account's) are left out.
    statuses: BTreeMap<String, &'static str>,
}

/// `GET /tasks/status?ids=task_…,task_…`: JSON for the list's polling.
pub(crate) async fn statuses(
    State(state): State<WebState>,
    user: CurrentUser,
    WebQuery(q): WebQuery<StatusQuery>,
) -> Result<Response, WebError> {
    let ids: Vec<TaskId> = q
        .ids
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .take(MAX_POLL_IDS)
        .collect();
    let mut out = BTreeMap::new();
    for id in ids {
        if let Some(t) = state.store.get_task(user.account(), id).await? {
            out.insert(t.id.to_string(), t.status.as_str());
        }
    }
    let mut r = Json(Statuses { statuses: out }).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// One line of the ledger of work: the task and what its outcome came to.
fn row(t: &Task, outcome: Option<&bounty_store::Outcome>, names: &BTreeMap<String, String>) -> TaskRow {
    use bounty_core::outcome::OutcomeStatus as S;
    let (outcome_word, charge, charge_reversed) = match outcome.map(|o| (o.status, o)) {
        None => ("—", "—".to_owned(), false),
        Some((S::Verifying | S::Provisional, _)) => ("waiting", "—".to_owned(), false),
        Some((S::Resolved, o)) => (
            "resolved",
            crate::format::micros(o.amount.micros, o.amount.currency.as_str()),
            false,
        ),
        Some((S::Reversed, o)) => (
            "reversed",
            crate::format::micros(o.amount.micros, o.amount.currency.as_str()),
            true,
        ),
        Some((S::Failed, o)) if o.amount.micros > 0 => (
            "not resolved",
            crate::format::micros(o.amount.micros, o.amount.currency.as_str()),
            true,
        ),
        Some((S::Failed, _)) => ("not resolved", "No charge".to_owned(), false),
        Some((S::Escalated, o)) if o.amount.micros > 0 => (
            "handed to a person",
            crate::format::micros(o.amount.micros, o.amount.currency.as_str()),
            true,
        ),
        Some((S::Escalated, _)) => ("handed to a person", "No charge".to_owned(), false),
    };
    let badge = match (t.status, outcome_word) {
        (TaskStatus::Completed, "resolved" | "waiting" | "—") => t.status.as_str(),
        (TaskStatus::Completed, _) => "done",
        (s, _) => s.as_str(),
    };
    TaskRow {
        id: t.id.to_string(),
        created: time(t.created_at),
        agent: names
            .get(&t.agent_id.to_string())
            .cloned()
            .unwrap_or_else(|| t.agent_id.to_string()),
        preview: preview(t),
        ticket: t.external_ref.clone().unwrap_or_default(),
        customer: t
            .input
            .customer
            .as_ref()
            .and_then(|c| {
                c.name
                    .clone()
                    .or_else(|| c.email.clone())
                    .or_else(|| c.id.clone())
            })
            .unwrap_or_default(),
        status: t.status.as_str(),
        badge,
        outcome: outcome_word,
        charge,
        charge_reversed,
    }
}
