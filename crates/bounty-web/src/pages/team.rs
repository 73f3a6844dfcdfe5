//! `/team`: the account's users (email, role, last login) and its pending
//! invites. Everyone in the account sees it; owners manage it: invite by
//! email and role, change a role, remove a user (signed out at once), and
//! revoke a pending invite.
//!
//! An invite is a one-time link whose random token only the inviting
//! owner's answer page shows, once; the store keeps its SHA-256. Bounty has
//! no mailer yet, so the link is also written to the server's log, the only
//! other place it appears. It works once, for [`INVITE_TTL`]. An account
//! never loses its last owner: the store refuses the change atomically, and
//! the page says why.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use bounty_core::{InviteId, UserId};
use bounty_store::{Email, InviteCreated, NewInvite, TeamChange, UserRole};
use chrono::Duration;
use serde::Deserialize;

use crate::auth::{CurrentUser, SignedForm};
use crate::error::WebError;
use crate::format::{time, time_or_dash};
use crate::layout::{Chrome, render};
use crate::pages::login::NoFields;
use crate::state::WebState;
use crate::token::new_token;

/// How long an invite link works.
pub(crate) const INVITE_TTL: Duration = Duration::days(7);

/// What refusing to leave the account without an owner says.
const LAST_OWNER: &str = "That would leave the account without an owner. Make another user an owner first.";

/// One role in a `<select>`: its name and whether it is chosen.
struct RoleOption {
    value: &'static str,
    selected: bool,
}

fn role_options(chosen: UserRole) -> Vec<RoleOption> {
    UserRole::ALL
        .into_iter()
        .map(|r| RoleOption {
            value: r.as_str(),
            selected: r == chosen,
        })
        .collect()
}

struct UserView {
    id: String,
    email: String,
    role: &'static str,
    roles: Vec<RoleOption>,
    last_login: String,
    you: bool,
}

struct InviteView {
    id: String,
    email: String,
    role: &'static str,
    invited_by: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "team.html")]
struct TeamPage {
    chrome: Chrome,
    csrf: String,
    owner: bool,
    users: Vec<UserView>,
    invites: Vec<InviteView>,
    error: Option<String>,
    /// The invite form's values, kept after a refusal.
    email: String,
    roles: Vec<RoleOption>,
}

#[derive(Template)]
#[template(path = "invite_created.html")]
struct InviteCreatedPage {
    chrome: Chrome,
    email: String,
    role: &'static str,
    link: String,
    expires: String,
}

/// The team page; `error` (with the invite form's values) after a refusal.
async fn team_page(
    state: &WebState,
    user: &CurrentUser,
    status: StatusCode,
    error: Option<String>,
    email: String,
    role: UserRole,
) -> Result<Response, WebError> {
    let account = user.account();
    let users = state
        .store
        .list_users(account)
        .await?
        .into_iter()
        .map(|u| UserView {
            id: u.id.to_string(),
            email: u.email.as_str().to_owned(),
            role: u.role.as_str(),
            roles: role_options(u.role),
            last_login: time_or_dash(u.last_login_at),
            you: u.id == user.session.user_id,
        })
        .collect();
    let invites = state
        .store
        .list_pending_invites(account)
        .await?
        .into_iter()
        .map(|i| InviteView {
            id: i.id.to_string(),
            email: i.email.as_str().to_owned(),
            role: i.role.as_str(),
            invited_by: i
                .invited_by
                .map_or_else(|| "a removed user".to_owned(), |e| e.as_str().to_owned()),
            expires: time(i.expires_at),
        })
        .collect();
    let page = TeamPage {
        chrome: Chrome::for_user(user, "Team", "team"),
        csrf: user.session.csrf_secret.clone(),
        owner: user.require_owner().is_ok(),
        users,
        invites,
        error,
        email,
        roles: role_options(role),
    };
    let mut r = render(&page)?;
    *r.status_mut() = status;
    Ok(r)
}

/// `GET /team`.
pub(crate) async fn page(State(state): State<WebState>, user: CurrentUser) -> Result<Response, WebError> {
    team_page(
        &state,
        &user,
        StatusCode::OK,
        None,
        String::new(),
        UserRole::Member,
    )
    .await
}

/// A role field: one of the three, or a message naming the field.
fn parse_role(raw: &str) -> Result<UserRole, String> {
    raw.parse()
        .map_err(|_| "`role` must be owner, member or viewer.".to_owned())
}

#[derive(Deserialize)]
pub(crate) struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

/// `POST /team/invites`: creates an invite and shows its link, once.
pub(crate) async fn invite(
    State(state): State<WebState>,
    SignedForm { user, form }: SignedForm<InviteForm>,
) -> Result<Response, WebError> {
    user.require_owner()?;
    let invalid = StatusCode::UNPROCESSABLE_ENTITY;
    let role = match parse_role(&form.role) {
        Ok(r) => r,
        Err(m) => return team_page(&state, &user, invalid, Some(m), form.email, UserRole::Member).await,
    };
    let Ok(email) = Email::parse(&form.email) else {
        let m = "`email` is not an email address.".to_owned();
        return team_page(&state, &user, invalid, Some(m), form.email, role).await;
    };
    let (token, hash) = new_token()?;
    let new = NewInvite {
        email: email.clone(),
        role,
        token_hash: hash,
        invited_by: user.session.user_id,
        expires_at: state.store.now() + INVITE_TTL,
    };
    let invite = match state.store.create_invite(user.account(), &new).await? {
        InviteCreated::Created(invite) => invite,
        InviteCreated::EmailTaken => {
            let m = format!(
                "`email`: {email} already has a Bounty login, in this account or another, and an email can belong to one user only."
            );
            return team_page(&state, &user, StatusCode::CONFLICT, Some(m), form.email, role).await;
        }
    };
    let link = state.link(&format!("/invite/{token}"));
    tracing::info!(
        account.id = %user.account(), invite.id = %invite.id, role = %role, link,
        "team: invite created; no mailer is configured, so its one-time link is logged here (works once, for 7 days)"
    );
    let page = InviteCreatedPage {
        chrome: Chrome::for_user(&user, "Invite created", "team"),
        email: email.as_str().to_owned(),
        role: role.as_str(),
        link,
        expires: time(invite.expires_at),
    };
    let mut r = render(&page)?;
    // The link is on this page only: keep it out of every cache.
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// `POST /team/invites/{id}/revoke`: revokes one of the account's pending
/// invites.
pub(crate) async fn revoke_invite(
    State(state): State<WebState>,
    Path(id): Path<String>,
    SignedForm { user, .. }: SignedForm<NoFields>,
) -> Result<Response, WebError> {
    user.require_owner()?;
    let id: InviteId = id.parse().map_err(|_| WebError::NotFound)?;
    if !state.store.revoke_invite(user.account(), id).await? {
        return Err(WebError::NotFound);
    }
    tracing::info!(account.id = %user.account(), invite.id = %id, "team: invite revoked");
    Ok(Redirect::to("/team").into_response())
}

#[derive(Deserialize)]
pub(crate) struct RoleForm {
    #[serde(default)]
    role: String,
}

/// What a refused or missing team change answers.
async fn changed(
    state: &WebState,
    user: &CurrentUser,
    change: TeamChange,
    done: &'static str,
    id: UserId,
) -> Result<Response, WebError> {
    match change {
        TeamChange::Done => {
            tracing::info!(account.id = %user.account(), user.id = %id, by = %user.session.user_id, "team: {done}");
            Ok(Redirect::to("/team").into_response())
        }
        TeamChange::NotFound => Err(WebError::NotFound),
        TeamChange::LastOwner => {
            let (m, role) = (LAST_OWNER.to_owned(), UserRole::Member);
            team_page(state, user, StatusCode::CONFLICT, Some(m), String::new(), role).await
        }
    }
}

/// `POST /team/users/{id}/role`: gives one of the account's users another
/// role.
pub(crate) async fn set_role(
    State(state): State<WebState>,
    Path(id): Path<String>,
    SignedForm { user, form }: SignedForm<RoleForm>,
) -> Result<Response, WebError> {
    user.require_owner()?;
    let id: UserId = id.parse().map_err(|_| WebError::NotFound)?;
    let role = parse_role(&form.role).map_err(WebError::BadRequest)?;
    let change = state.store.set_user_role(user.account(), id, role).await?;
    changed(&state, &user, change, "role changed", id).await
}

/// `POST /team/users/{id}/remove`: removes one of the account's users and
/// ends their sessions.
pub(crate) async fn remove(
    State(state): State<WebState>,
    Path(id): Path<String>,
    SignedForm { user, .. }: SignedForm<NoFields>,
) -> Result<Response, WebError> {
    user.require_owner()?;
    let id: UserId = id.parse().map_err(|_| WebError::NotFound)?;
    let change = state.store.remove_user(user.account(), id).await?;
    changed(&state, &user, change, "user removed", id).await
}
