//! The operator console, under `/ops`: every account with its revenue,
//! inference cost and margin, and the pricing-model comparison. Each
//! handler takes the [`CurrentOperator`]; a customer's session is no
//! operator's session and is sent to `/ops/login`.
//!
//! [`CurrentOperator`]: crate::auth::CurrentOperator

pub(crate) mod accounts;
pub(crate) mod actions;
pub(crate) mod disputes;
pub(crate) mod health;
pub(crate) mod margins;
