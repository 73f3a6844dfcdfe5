//! `/agents/{id}/policy`: an agent's verification policy over time. The
//! versions whose policy changed, newest first, each with its date and a
//! one-line summary; and the difference between two versions
//! (`?from=N&to=M`; by default the version before the current one
//! against the current one), each policy written as plain-language lines
//! ([`crate::policy_text`]) and compared line by line
//! ([`crate::line_diff`]).
//!
//! Every version comes from the store under the session's account: another
//! account's agent, or a version the agent does not have, is a 404 page. A
//! `from`, `to` or `before` that is not a version number is a 400 naming
//! it. The history is read a page of versions at a time (`before`: the
//! oldest version of the page shown).

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use bounty_core::PageLimit;
use bounty_store::Agent;
use serde::Deserialize;

use crate::auth::CurrentUser;
use crate::error::WebError;
use crate::format::time;
use crate::layout::{Chrome, render};
use crate::line_diff::{self, DiffLine};
use crate::pages::{WebQuery, present};
use crate::policy_text;
use crate::state::WebState;

/// Versions read per page of the history.
const PAGE_SIZE: u32 = 50;

#[derive(Deserialize)]
pub(crate) struct PolicyQuery {
    from: Option<String>,
    to: Option<String>,
    before: Option<String>,
}

/// A version number parameter: a whole number from 1, or a 400 naming it.
fn version_param(name: &str, raw: &Option<String>) -> Result<Option<i32>, WebError> {
    present(raw)
        .map(|v| {
            v.parse::<i32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                WebError::BadRequest(format!(
                    "`{name}` must be a version number: a whole number from 1."
                ))
            })
        })
        .transpose()
}

/// One version of the history.
struct HistoryRow {
    version: i32,
    date: String,
    summary: String,
    /// The diff against the version before; `None` for version 1.
    changes_href: Option<String>,
}

/// One side of the diff.
struct Side {
    version: i32,
    date: String,
}

#[derive(Template)]
#[template(path = "agent_policy.html")]
struct PolicyPage {
    chrome: Chrome,
    agent_id: String,
    agent_name: String,
    current_version: i32,
    from: Side,
    to: Side,
    diff: Vec<DiffLine>,
    changed: bool,
    history: Vec<HistoryRow>,
    /// Versions of this page of the history that changed other settings
    /// only.
    unchanged: usize,
    older_href: Option<String>,
}

async fn version(state: &WebState, user: &CurrentUser, agent: &Agent, v: i32) -> Result<Agent, WebError> {
    if v == agent.version {
        return Ok(agent.clone());
    }
    state
        .store
        .get_agent(user.account(), agent.id, Some(v))
        .await?
        .ok_or(WebError::NotFound)
}

/// The history's page: each version whose policy differs from the one
/// before it (version 1 always), and how many others the page holds.
async fn history(
    state: &WebState,
    user: &CurrentUser,
    agent: &Agent,
    before: Option<i32>,
) -> Result<(Vec<HistoryRow>, usize, Option<String>), WebError> {
    let limit = PageLimit::new(PAGE_SIZE).map_err(|e| WebError::Internal(e.to_string()))?;
    let page = state
        .store
        .list_agent_versions(user.account(), agent.id, limit, before)
        .await?;
    // The version just older than the page, to tell whether its oldest
    // changed the policy.
    let older = match page.items.last() {
        Some(last) if last.version > 1 => {
            state
                .store
                .get_agent(user.account(), agent.id, Some(last.version - 1))
                .await?
        }
        _ => None,
    };
    let mut rows = Vec::new();
    let mut unchanged = 0;
    for (i, v) in page.items.iter().enumerate() {
        let previous = page.items.get(i + 1).or(older.as_ref());
        if previous.is_some_and(|p| p.verifier_policy == v.verifier_policy) {
            unchanged += 1;
            continue;
        }
        rows.push(HistoryRow {
            version: v.version,
            date: time(v.version_created_at),
            summary: policy_text::summary(&v.verifier_policy),
            changes_href: previous
                .map(|p| format!("/agents/{}/policy?from={}&to={}", agent.id, p.version, v.version)),
        });
    }
    let older_href = page
        .next_cursor
        .map(|c| format!("/agents/{}/policy?before={c}", agent.id));
    Ok((rows, unchanged, older_href))
}

/// `GET /agents/{id}/policy`.
pub(crate) async fn page(
    State(state): State<WebState>,
    user: CurrentUser,
    Path(id): Path<String>,
    WebQuery(q): WebQuery<PolicyQuery>,
) -> Result<Response, WebError> {
    let from = version_param("from", &q.from)?;
    let to = version_param("to", &q.to)?;
    let before = version_param("before", &q.before)?;
    let agent = crate::pages::agents::find(&state, &user, &id).await?;
    let to = to.unwrap_or(agent.current_version);
    let from = from.unwrap_or((to - 1).max(1));
    let new = version(&state, &user, &agent, to).await?;
    let old = version(&state, &user, &agent, from).await?;
    let diff = line_diff::diff(
        &policy_text::lines(&old.verifier_policy),
        &policy_text::lines(&new.verifier_policy),
    );
    let changed = diff.iter().any(|l| l.change != line_diff::Change::Same);
    let (history, unchanged, older_href) = history(&state, &user, &agent, before).await?;
    render(&PolicyPage {
        chrome: Chrome::for_user(&user, format!("Policy of {}", agent.name), "agents"),
        agent_id: agent.id.to_string(),
        agent_name: agent.name.clone(),
        current_version: agent.current_version,
        from: Side {
            version: old.version,
            date: time(old.version_created_at),
        },
        to: Side {
            version: new.version,
            date: time(new.version_created_at),
        },
        diff,
        changed,
        history,
        unchanged,
        older_href,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_parameter_is_a_whole_number_from_one() {
        assert_eq!(version_param("from", &None).unwrap(), None);
        assert_eq!(version_param("from", &Some(" ".into())).unwrap(), None);
        assert_eq!(version_param("from", &Some("3".into())).unwrap(), Some(3));
        for bad in ["0", "-1", "two", "1.5", "99999999999"] {
            let e = version_param("to", &Some(bad.into())).unwrap_err();
            assert!(e.to_string().contains("`to`"), "{bad}: {e}");
        }
    }
}
