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
pub mod health;
pub mod models;
pub mod outcomes;
pub mod pagination;
pub mod tasks;
