//! `/invite/{token}`: accepting an invite. The invitee, who has no session
//! yet, chooses a password; the store marks the invite accepted and creates
//! the user in one transaction (so the link works once), and the new user
//! is signed in with the invited role. A link that was never issued, was
//! used or revoked, or has expired is a dead-link page, whichever it was.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use bounty_store::{Invite, InviteAccepted, TokenHash};

use crate::auth::{AnonymousForm, anonymous_csrf};
use crate::error::WebError;
use crate::layout::{Chrome, render};
use crate::pages::login::{Found, sign_in};
use crate::pages::new_password::NewPasswordForm;
use crate::state::WebState;
use crate::token::token_hash;

/// The path every invite's form is under (its double-submit cookie's).
const INVITE_PATH: &str = "/invite";

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage {
    chrome: Chrome,
    account: String,
    role: &'static str,
    email: String,
    action: String,
    csrf: String,
    error: Option<String>,
}

/// The pending invite a link names, or a dead-link page.
async fn pending(state: &WebState, token: &str) -> Result<(TokenHash, Invite), WebError> {
    let hash = token_hash(token).ok_or(WebError::DeadLink)?;
    let invite = state
        .store
        .invite_by_token_hash(&hash)
        .await?
        .ok_or(WebError::DeadLink)?;
    Ok((hash, invite))
}

async fn invite_page(
    state: &WebState,
    status: StatusCode,
    token: &str,
    invite: &Invite,
    error: Option<String>,
) -> Result<Response, WebError> {
    let account = state
        .store
        .get_account(invite.account_id)
        .await?
        .ok_or(WebError::DeadLink)?;
    let (csrf, cookie) = anonymous_csrf(INVITE_PATH, state)?;
    let page = InvitePage {
        chrome: Chrome::bare(format!("Join {}", account.name)),
        account: account.name,
        role: invite.role.as_str(),
        email: invite.email.as_str().to_owned(),
        action: format!("{INVITE_PATH}/{token}"),
        csrf,
        error,
    };
    let mut r = render(&page)?;
    *r.status_mut() = status;
    r.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(r)
}

/// `GET /invite/{token}`: the invite, and the form to accept it.
pub(crate) async fn form(
    State(state): State<WebState>,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let (_, invite) = pending(&state, &token).await?;
    invite_page(&state, StatusCode::OK, &token, &invite, None).await
}

/// `POST /invite/{token}`: accepts the invite with the chosen password and
/// signs the new user in.
pub(crate) async fn accept(
    State(state): State<WebState>,
    Path(token): Path<String>,
    AnonymousForm { form, .. }: AnonymousForm<NewPasswordForm>,
) -> Result<Response, WebError> {
    let (hash, invite) = pending(&state, &token).await?;
    let phc = match form.hash(&state).await? {
        Ok(phc) => phc,
        Err(e) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return invite_page(&state, status, &token, &invite, Some(e.to_string())).await;
        }
    };
    match state.store.accept_invite(&hash, &phc).await? {
        InviteAccepted::Accepted(user) => {
            tracing::info!(
                account.id = %user.account_id, user.id = %user.id, invite.id = %invite.id, role = %user.role,
                "team: invite accepted"
            );
            sign_in(&state, Found::User(user), INVITE_PATH).await
        }
        InviteAccepted::Dead => Err(WebError::DeadLink),
        InviteAccepted::EmailTaken => Err(WebError::Conflict(format!(
            "`email`: {} has had a Bounty login since this invite was made, and an email can belong to one user only. Log in with it, or ask for an invite to another email.",
            invite.email
        ))),
    }
}
