//! A stand-in for the server's `/webhooks/in/{id}`, mounted beside the
//! dashboard in tests of the "send a signed test delivery" button.
//!
//! The real intake lives in `bounty-server`, which this crate may not
//! depend on, so this receiver does the part that proves a test delivery
//! is right: it finds the integration by the URL, opens its inbound
//! secret with the master keys (as the server does), checks the signature
//! with `bounty_integrations::verify` at the store's clock, and parses the
//! body with `bounty_integrations::parse`. It answers 202 and records each
//! delivery it accepted, 401 for a bad signature, 400 for a body that
//! does not parse.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bounty_core::IntegrationId;
use bounty_integrations::{IntegrationKind, Keyring, Parsed, TicketEventKind, parse, verify};
use bounty_store::Store;

/// A delivery the receiver accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub integration: IntegrationId,
    pub kind: IntegrationKind,
    /// The ticket id the body names.
    pub ticket: String,
    pub subject: Option<String>,
    /// Which secret matched: 0 is the current one.
    pub secret_index: usize,
}

/// Every delivery accepted so far.
pub type Received = Arc<Mutex<Vec<Accepted>>>;

#[derive(Clone)]
struct ReceiverState {
    store: Store,
    keys: Arc<Keyring>,
    received: Received,
}

/// The route, and where it records what it accepts.
pub fn route(store: Store, keys: Arc<Keyring>) -> (Router, Received) {
    let received = Received::default();
    let state = ReceiverState {
        store,
        keys,
        received: received.clone(),
    };
    let router = Router::new()
        .route("/webhooks/in/{id}", post(receive))
        .with_state(state);
    (router, received)
}

async fn receive(
    State(s): State<ReceiverState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(id) = id.parse::<IntegrationId>() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(i) = s.store.inbound_integration(id).await.expect("store") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let kind: IntegrationKind = i.kind;
    let aad = |purpose| bounty_core::sealing_aad(i.account_id, i.id, purpose);
    let current = s
        .keys
        .open(
            &i.secret_sealed,
            aad(bounty_core::SealPurpose::Inbound).as_bytes(),
        )
        .expect("the inbound secret opens under the same keys and aad");
    let previous = i.previous_secret_sealed.as_deref().map(|p| {
        s.keys
            .open(p, aad(bounty_core::SealPurpose::Inbound).as_bytes())
            .expect("the previous secret opens")
    });
    let mut secrets: Vec<&[u8]> = vec![&current];
    if let Some(p) = &previous {
        secrets.push(p);
    }
    let pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let verified = match verify(kind, &pairs, &body, &secrets, s.store.now()) {
        Ok(v) => v,
        Err(e) => return (StatusCode::UNAUTHORIZED, e.code()).into_response(),
    };
    let event = match parse(kind, &body) {
        Ok(Parsed::Event(e)) => e,
        Ok(Parsed::Ignored { .. }) => return (StatusCode::BAD_REQUEST, "ignored").into_response(),
        Err(e) => return (StatusCode::BAD_REQUEST, e.code()).into_response(),
    };
    let subject = match &event.kind {
        TicketEventKind::Created(t) => t.subject.clone(),
        _ => None,
    };
    s.received.lock().expect("lock").push(Accepted {
        integration: i.id,
        kind,
        ticket: event.ticket.external_id.clone(),
        subject,
        secret_index: verified.secret_index,
    });
    (
        StatusCode::ACCEPTED,
        format!(
            "{{\"result\":\"task_created\",\"ticket\":\"{}\"}}",
            event.ticket.external_id
        ),
    )
        .into_response()
}
