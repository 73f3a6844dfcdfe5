//! What every handler can reach: the store, metrics and request limits.

use std::sync::Arc;
use std::time::Duration;

use bounty_store::Store;

use crate::metrics::Metrics;

/// Limits applied to every request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// How long a request may take before it is answered 503.
    pub request_timeout: Duration,
    /// How long `/readyz` waits for the database.
    pub readiness_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_limit_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            readiness_timeout: Duration::from_secs(2),
        }
    }
}

/// Shared state of the HTTP server; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Store,
    /// Request metrics.
    pub metrics: Arc<Metrics>,
    /// Request limits.
    pub limits: Limits,
}

impl AppState {
    /// State over `store` with the given limits and fresh metrics.
    pub fn new(store: Store, limits: Limits) -> Self {
        AppState {
            store,
            metrics: Arc::new(Metrics::default()),
            limits,
        }
    }
}
