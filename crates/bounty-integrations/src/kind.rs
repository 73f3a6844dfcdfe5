//! Which helpdesk an integration talks to.
//!
//! [`IntegrationKind`] lives in `bounty-core` (every crate names it: the
//! store's rows, the API, the dashboard) and is re-exported here, where it
//! picks both halves of an inbound webhook: how its signature is checked
//! ([`crate::signature`]) and how its body is read
//! ([`crate::parse`](mod@crate::parse)).

pub use bounty_core::integration::{IntegrationKind, UnknownIntegrationKind};
