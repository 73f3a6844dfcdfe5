//! The endpoints, one file per resource.
//!
//! Every `/v1` route is registered through `utoipa_axum::routes!`, which
//! takes the path from the handler's own `#[utoipa::path]` attribute: the
//! router and the OpenAPI document are built from the same declaration
//! and cannot drift apart.

pub mod account;
pub mod agents;
pub mod api_keys;
pub mod billing;
pub mod byok;
pub mod disputes;
pub mod exports;
pub mod gateway_charges;
pub mod gateway_limits;
pub mod health;
pub mod helpdesk_webhooks;
pub mod integrations;
pub mod invoices;
pub mod knowledge;
pub mod models;
pub mod openai;
pub mod ops;
pub mod outcomes;
pub mod pagination;
pub mod stripe_webhooks;
pub mod tasks;
pub mod webhooks;

/// An id from a path: one that does not parse names nothing of this
/// account, so it answers 404 like a missing one.
pub(crate) fn path_id<Id: std::str::FromStr>(
    kind: &'static str,
    id: &str,
) -> Result<Id, crate::error::ApiError> {
    id.parse().map_err(|_| crate::error::ApiError::NotFound {
        kind,
        id: id.to_owned(),
    })
}
