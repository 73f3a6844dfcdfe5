//! `GET /notifications` and `GET /ops/notifications`: the bell's page.
//! An account's notices (a cap threshold, low credits, a webhook endpoint
//! or reply-back disabled, a dispute decided) and the operator's (an
//! outbox row parked), newest first; `POST …/read` marks them read.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use bounty_core::{AccountId, PageLimit};
use serde::Deserialize;

use crate::auth::{CurrentOperator, CurrentUser, SignedForm};
use crate::error::WebError;
use crate::format::time;
use crate::layout::{Chrome, render};
use crate::state::WebState;

/// Notices shown.
const SHOWN: u32 = 50;

struct NoticeRow {
    title: String,
    body: String,
    kind: String,
    created: String,
    email: String,
    unread: bool,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage {
    chrome: Chrome,
    intro: &'static str,
    notices: Vec<NoticeRow>,
    unread: i64,
    can_mark: bool,
    mark_action: &'static str,
    csrf: String,
}

/// The mark-read form: only its CSRF token.
#[derive(Debug, Deserialize)]
pub(crate) struct MarkForm {}

async fn rows(state: &WebState, account: Option<AccountId>) -> Result<Vec<NoticeRow>, WebError> {
    let page = state
        .store
        .list_notifications(account, false, PageLimit::new(SHOWN).unwrap_or_default(), None)
        .await?;
    Ok(page
        .items
        .into_iter()
        .map(|n| NoticeRow {
            title: n.title,
            body: n.body,
            kind: n.kind,
            created: time(n.created_at),
            email: n.email_state,
            unread: n.read_at.is_none(),
        })
        .collect())
}

pub(crate) async fn page(State(state): State<WebState>, user: CurrentUser) -> Result<Response, WebError> {
    let notices = rows(&state, Some(user.account())).await?;
    render(&NotificationsPage {
        chrome: Chrome::for_user(&user, "Notices", "notifications"),
        intro: "Notices to this account's owners: spending cap thresholds, low credits, webhook endpoints or \
                replies turned off, disputes decided. Owners also get them by email when the operator has \
                configured one.",
        notices,
        unread: user.unread,
        can_mark: user.session.role != bounty_store::UserRole::Viewer,
        mark_action: "/notifications/read",
        csrf: user.session.csrf_secret.clone(),
    })
}

pub(crate) async fn mark_read(
    State(state): State<WebState>,
    SignedForm {
        user,
        form: MarkForm {},
    }: SignedForm<MarkForm>,
) -> Result<Response, WebError> {
    state.store.mark_notifications_read(Some(user.account())).await?;
    Ok(Redirect::to("/notifications").into_response())
}

pub(crate) async fn ops_page(
    State(state): State<WebState>,
    op: CurrentOperator,
) -> Result<Response, WebError> {
    let notices = rows(&state, None).await?;
    render(&NotificationsPage {
        chrome: Chrome::for_operator(&op, "Notices", "notifications"),
        intro: "Notices to the operator: outbox rows parked after a permanent error (see `bounty outbox list \
                --status failed`).",
        notices,
        unread: op.unread,
        can_mark: true,
        mark_action: "/ops/notifications/read",
        csrf: op.session.csrf_secret.clone(),
    })
}

pub(crate) async fn ops_mark_read(
    State(state): State<WebState>,
    SignedForm {
        form: MarkForm {}, ..
    }: SignedForm<MarkForm, CurrentOperator>,
) -> Result<Response, WebError> {
    state.store.mark_notifications_read(None).await?;
    Ok(Redirect::to("/ops/notifications").into_response())
}
