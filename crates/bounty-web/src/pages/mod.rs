//! One module per page. Each handler takes the [`CurrentUser`] (or a
//! [`SignedForm`] for a POST), calls store functions with the user's
//! account, turns the results into display strings, and renders one
//! template. A bad id in a path, or another account's id, is a 404 page.
//!
//! [`CurrentUser`]: crate::auth::CurrentUser
//! [`SignedForm`]: crate::auth::SignedForm

pub(crate) mod agent_form;
pub(crate) mod agents;
pub(crate) mod api_keys;
pub(crate) mod billing;
pub(crate) mod charges;
pub(crate) mod disputes;
pub(crate) mod field_errors;
pub(crate) mod integration_form;
pub(crate) mod integrations;
pub(crate) mod invite;
pub(crate) mod invoices;
pub(crate) mod knowledge;
pub(crate) mod login;
pub(crate) mod mode;
pub(crate) mod new_password;
pub(crate) mod notifications;
pub(crate) mod ops;
pub(crate) mod overview;
pub(crate) mod password_reset;
pub(crate) mod period;
pub(crate) mod policy;
pub(crate) mod policy_form;
pub(crate) mod policy_view;
pub(crate) mod task_detail;
pub(crate) mod tasks;
pub(crate) mod team;
pub(crate) mod usage;
pub(crate) mod webhooks;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use chrono::{NaiveDate, TimeZone, Utc};
use serde::de::DeserializeOwned;

use crate::error::WebError;
use crate::state::WebState;

/// A query string parsed into `T`, or a 400 page naming what is wrong (a
/// 422 for a NUL character, which no query may carry to the database).
pub(crate) struct WebQuery<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequestParts<WebState> for WebQuery<T> {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _: &WebState) -> Result<Self, Self::Rejection> {
        if let Some(field) = crate::auth::nul_field(parts.uri.query().unwrap_or_default().as_bytes()) {
            return Err(crate::auth::nul_error(&field));
        }
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(q)| WebQuery(q))
            .map_err(|e| {
                WebError::BadRequest(format!("The address's query is not valid: {}.", e.body_text()))
            })
    }
}

/// An optional form or query value: absent and empty are the same.
pub(crate) fn present(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A `YYYY-MM-DD` date field, or a 400 naming the field.
pub(crate) fn parse_date(field: &str, v: &Option<String>) -> Result<Option<NaiveDate>, WebError> {
    present(v)
        .map(|s| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| WebError::BadRequest(format!("`{field}` must be a date like 2026-05-01.")))
        })
        .transpose()
}

/// Midnight UTC at the start of `d`.
pub(crate) fn day_start(d: NaiveDate) -> bounty_core::Timestamp {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
}
