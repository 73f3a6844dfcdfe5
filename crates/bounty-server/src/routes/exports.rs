//! `GET /v1/exports/charges`: the per-charge export of a period, as JSON
//! or CSV (`bounty_billing::exports`): one line per charged outcome, its
//! CU, amount, verdicts, signals and receipt hash, and totals that say
//! what Stripe's invoice for the period holds.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bounty_billing::exports::{ExportError, charge_export, to_csv};
use serde::Deserialize;

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiQuery;
use crate::routes::pagination::parse_time;
use crate::state::AppState;

/// The period and format of `GET /v1/exports/charges`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// Start of the period, RFC 3339 (default: the start of this month).
    pub from: Option<String>,
    /// End of the period, RFC 3339, excluded (default: now).
    pub to: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// Every outcome the key's account (of the key's mode) was charged for in
/// a period: one line each, recomputable from the line alone, and totals
/// that reconcile with Stripe's invoice of the period.
#[utoipa::path(
    get,
    path = "/v1/exports/charges",
    tag = "billing",
    security(("api_key" = [])),
    params(ExportParams),
    responses(
        (status = 200, description = "The export: JSON (`lines`, `totals`) or CSV, as a download"),
        (status = 400, description = "A bad `from`, `to` or `format`, or a period of over 10,000 charges", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
    )
)]
pub async fn charges(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<ExportParams>,
) -> ApiResult<Response> {
    let now = state.store.now();
    let from = parse_time("from", q.from.as_deref())?.unwrap_or_else(|| bounty_store::period_start(now));
    let to = parse_time("to", q.to.as_deref())?.unwrap_or(now);
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::InvalidRequest {
                message: format!("`format` is `json` or `csv`, not `{other}`"),
                param: Some("format".to_owned()),
            });
        }
    };
    let export = charge_export(&state.store, auth.account_id, auth.mode, from, to)
        .await
        .map_err(|e| match e {
            ExportError::Store(e) => e.into(),
            e @ ExportError::TooLarge => ApiError::InvalidRequest {
                message: e.to_string(),
                param: Some("from".to_owned()),
            },
        })?;
    let name = format!(
        "bounty-charges-{}-to-{}",
        from.format("%Y-%m-%d"),
        to.format("%Y-%m-%d")
    );
    let (body, kind, ext) = if csv {
        (to_csv(&export), "text/csv; charset=utf-8", "csv")
    } else {
        (
            serde_json::to_string(&export).map_err(|e| ApiError::Internal(e.to_string()))?,
            "application/json",
            "json",
        )
    };
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{name}.{ext}\""))
            .map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    Ok(r)
}
