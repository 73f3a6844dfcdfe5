//! `GET /charges.csv` and `GET /charges.json`: the per-charge export of a
//! period (`?from&to`, dates, both included, as the usage page reads
//! them), the same as the API's `/v1/exports/charges`: one line per
//! charged outcome, recomputable from the line alone, with totals that
//! reconcile with Stripe's invoice. The usage page and every invoice link
//! here.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bounty_billing::exports::{ExportError, charge_export, to_csv};

use crate::auth::CurrentUser;
use crate::error::WebError;
use crate::pages::WebQuery;
use crate::pages::overview::PeriodQuery;
use crate::pages::period::Period;
use crate::state::WebState;

async fn export(
    state: &WebState,
    user: &CurrentUser,
    q: &PeriodQuery,
    csv: bool,
) -> Result<Response, WebError> {
    let period = Period::parse(state, &q.from, &q.to)?;
    let (from, to) = period.bounds();
    let export = charge_export(&state.store, user.account(), user.mode(), from, to)
        .await
        .map_err(|e| match e {
            ExportError::Store(e) => e.into(),
            e @ ExportError::TooLarge => {
                WebError::BadRequest(format!("{}.", e.to_string().replace("the period", "The period")))
            }
        })?;
    let (body, kind, ext) = if csv {
        (to_csv(&export), "text/csv; charset=utf-8", "csv")
    } else {
        (
            serde_json::to_string_pretty(&export).map_err(|e| WebError::Internal(e.to_string()))?,
            "application/json",
            "json",
        )
    };
    let name = format!("bounty-charges-{}-to-{}.{ext}", period.from, period.to);
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .map_err(|e| WebError::Internal(e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// `GET /charges.csv`.
pub(crate) async fn csv(
    State(state): State<WebState>,
    user: CurrentUser,
    WebQuery(q): WebQuery<PeriodQuery>,
) -> Result<Response, WebError> {
    export(&state, &user, &q, true).await
}

/// `GET /charges.json`.
pub(crate) async fn json(
    State(state): State<WebState>,
    user: CurrentUser,
    WebQuery(q): WebQuery<PeriodQuery>,
) -> Result<Response, WebError> {
    export(&state, &user, &q, false).await
}
