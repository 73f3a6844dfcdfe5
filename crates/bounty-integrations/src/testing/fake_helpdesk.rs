//! One fake server on `127.0.0.1:0` playing all four helpdesks at once,
//! told apart by path, as the reply clients call them:
//!
//! - **Zendesk** under `/api/v2/tickets/…`: ticket update (`PUT
//!   {id}.json`), ticket show, and the audits list with cursor pagination;
//!   every update that changes the ticket stores an audit whose
//!   `metadata.custom` is the update's `ticket.metadata`. Basic auth with
//!   `{email}/token:{token}`.
//! - **Intercom** under `/conversations/…`: `reply` (comment or note),
//!   `parts` (close, open, snoozed) and the conversation with its parts.
//!   Bearer auth.
//! - **Chatwoot** under `/api/v1/accounts/{account}/conversations/…`:
//!   messages (create, and list newest-first in pages of 20 with
//!   `?before=`) and `toggle_status`. The `api_access_token` header.
//! - **Standard Webhooks** at `/hooks/standard`: a receiver that verifies
//!   the signature with its secret, against the wall clock as a real
//!   receiver would, and dedupes on `webhook-id`.
//!
//! Wrong credentials get the vendor's real 401 body; errors follow each
//! vendor's error JSON. Any ticket id is accepted and created on first use,
//! unless tickets were registered for that vendor with
//! [`FakeHelpdesk::add_ticket`]: then the others are the vendor's 404.
//!
//! Every request is recorded as it arrived ([`FakeHelpdesk::requests`]),
//! and every effect it had on a ticket ([`FakeHelpdesk::posts`]). Scripted
//! [`Fault`]s are consumed one per request, in order, whatever the
//! endpoint, and before authentication.

mod chatwoot;
mod intercom;
mod standard;
mod zendesk;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::kind::IntegrationKind;
use crate::reply::{ReplyCredentials, ReplyTarget};

/// A fault scripted for a coming request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and the vendor's error JSON, without applying
    /// the request; `Some(d)` also sends `Retry-After` in whole seconds
    /// (and, on Intercom, `X-RateLimit-Reset`).
    Status(u16, Option<Duration>),
    /// Answer 410 Gone without applying the request.
    Gone,
    /// Wait this long, then handle the request normally.
    Delay(Duration),
    /// Apply the request (its effects are recorded and kept), then answer
    /// 500: "the vendor accepted it but we never heard".
    ApplyThenFail,
}

/// What a request did to a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostKind {
    /// A customer-visible reply: a public Zendesk comment, an Intercom
    /// `comment` part, a public Chatwoot message.
    Reply,
    /// An internal note: a private Zendesk comment, an Intercom `note`, a
    /// private Chatwoot message.
    Note,
    /// Zendesk: the status set to `solved`.
    Solve,
    /// Intercom: a `close` part.
    Close,
    /// Chatwoot: the status set to `resolved`.
    Resolve,
    /// Any other status set: Zendesk `pending`, Chatwoot `open`, an Intercom
    /// `open` or `snoozed` part, …
    Status(String),
    /// Zendesk: a tag added.
    Tag(String),
    /// A Standard Webhooks delivery accepted, with its `type`.
    Webhook(String),
}

impl PostKind {
    /// Whether this marks the ticket done: [`PostKind::Solve`],
    /// [`PostKind::Close`] or [`PostKind::Resolve`].
    pub fn is_done(&self) -> bool {
        matches!(self, PostKind::Solve | PostKind::Close | PostKind::Resolve)
    }
}

/// One effect on a ticket, as the fake applied it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedPost {
    /// Which vendor's API it came through.
    pub vendor: IntegrationKind,
    /// The ticket (conversation) id; for Standard, `data.ticket_id`.
    pub ticket: String,
    /// What it did.
    pub kind: PostKind,
    /// The reply or note text exactly as received (an Intercom body still
    /// ends with its marker comment); `None` for status changes and tags.
    pub body: Option<String>,
    /// The marker the request carried: Zendesk `metadata.bounty_reply_id`,
    /// the id in an Intercom body's `<!-- bounty:… -->`, Chatwoot
    /// `content_attributes.bounty_reply_id`, the Standard `webhook-id`.
    pub reply_id: Option<String>,
}

/// A request as it reached the fake, before faults and authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The vendor its path belongs to; `None` for a path none serves.
    pub vendor: Option<IntegrationKind>,
    /// `GET`, `PUT`, `POST`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// Every header, names lower-cased, the first value of each.
    pub headers: BTreeMap<String, String>,
    /// The body, when it was JSON.
    pub body: Option<Value>,
}

impl RecordedRequest {
    /// The value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

/// The running fake. The server stops when this is dropped.
#[derive(Debug)]
pub struct FakeHelpdesk {
    addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeHelpdesk {
    /// Zendesk: the only agent email accepted.
    pub const ZENDESK_EMAIL: &'static str = "agent@acme.example";
    /// Zendesk: the only API token accepted.
    pub const ZENDESK_API_TOKEN: &'static str = "6wiIBWbGkBMo1mRDMuVwkw1EPsNkeUj95PIz2akv";
    /// Intercom: the only access token accepted.
    pub const INTERCOM_ACCESS_TOKEN: &'static str = "dG9rOmZha2VfaW50ZXJjb21fdG9rZW5fMDEyMzQ1Njc4OQ==";
    /// Intercom: the only admin replies may be made as.
    pub const INTERCOM_ADMIN_ID: &'static str = "991267";
    /// Chatwoot: the only access token accepted.
    pub const CHATWOOT_API_ACCESS_TOKEN: &'static str = "Xm2Vq8pLkR4tNw7yBz3cHd6f";
    /// Chatwoot: the only account served.
    pub const CHATWOOT_ACCOUNT_ID: &'static str = "3";
    /// Standard Webhooks: the receiver's default secret.
    pub const STANDARD_SECRET: &'static str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    /// Standard Webhooks: the receiver's path.
    pub const STANDARD_PATH: &'static str = "/hooks/standard";

    /// Starts the fake on an ephemeral port of 127.0.0.1, its Standard
    /// receiver verifying with [`FakeHelpdesk::STANDARD_SECRET`].
    pub async fn start() -> Self {
        Self::start_with_standard_secret(Self::STANDARD_SECRET).await
    }

    /// Starts the fake with a Standard receiver verifying with `secret`
    /// (`whsec_…`).
    ///
    /// # Panics
    /// If the port cannot be bound: test support, where a panic is the
    /// clearest failure.
    pub async fn start_with_standard_secret(secret: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake helpdesk");
        let addr = listener.local_addr().expect("the fake helpdesk's address");
        let state = Arc::new(Mutex::new(FakeState {
            base_url: format!("http://{addr}"),
            standard_secret: secret.to_owned(),
            ..FakeState::default()
        }));
        let app = Router::new().fallback(handle).with_state(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the fake helpdesk server");
        });
        Self { addr, state, server }
    }

    /// `http://127.0.0.1:PORT`: the base URL of every vendor API here.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The Standard Webhooks receiver's URL, to use as a callback URL.
    pub fn standard_url(&self) -> String {
        format!("{}{}", self.base_url(), Self::STANDARD_PATH)
    }

    /// A target for `kind` with the credentials this fake accepts.
    pub fn target(&self, kind: IntegrationKind) -> ReplyTarget {
        let secret = |s: &str| SecretString::from(s.to_owned());
        let (base_url, credentials) = match kind {
            IntegrationKind::Zendesk => (
                self.base_url(),
                ReplyCredentials::Zendesk {
                    email: Self::ZENDESK_EMAIL.to_owned(),
                    api_token: secret(Self::ZENDESK_API_TOKEN),
                },
            ),
            IntegrationKind::Intercom => (
                self.base_url(),
                ReplyCredentials::Intercom {
                    access_token: secret(Self::INTERCOM_ACCESS_TOKEN),
                    admin_id: Self::INTERCOM_ADMIN_ID.to_owned(),
                },
            ),
            IntegrationKind::Chatwoot => (
                self.base_url(),
                ReplyCredentials::Chatwoot {
                    api_access_token: secret(Self::CHATWOOT_API_ACCESS_TOKEN),
                    account_id: Self::CHATWOOT_ACCOUNT_ID.to_owned(),
                },
            ),
            IntegrationKind::Standard => (
                self.standard_url(),
                ReplyCredentials::Standard {
                    secret: secret(&self.lock().standard_secret),
                },
            ),
        };
        ReplyTarget {
            kind,
            base_url,
            credentials,
        }
    }

    /// Scripts a fault for a coming request; faults are consumed in order,
    /// one per request.
    pub fn push_fault(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
    }

    /// Registers ticket `id` of `vendor`. Once any ticket of a vendor is
    /// registered, that vendor answers 404 for every other id.
    pub fn add_ticket(&self, vendor: IntegrationKind, id: &str) {
        let mut state = self.lock();
        state.known.entry(vendor).or_default().insert(id.to_owned());
        state.touch(vendor, id);
    }

    /// Every effect on a ticket, in order.
    pub fn posts(&self) -> Vec<RecordedPost> {
        self.lock().posts.clone()
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// The ticket's status now: Zendesk `status`, Intercom `state`,
    /// Chatwoot `status`; `None` for a ticket never seen (and for Standard,
    /// which has no tickets here). New tickets start `open` (Chatwoot:
    /// `pending`, its bot queue).
    pub fn ticket_status(&self, vendor: IntegrationKind, id: &str) -> Option<String> {
        let state = self.lock();
        match vendor {
            IntegrationKind::Zendesk => state.zendesk.get(id).map(|t| t.status().to_owned()),
            IntegrationKind::Intercom => state.intercom.get(id).map(|c| c.state().to_owned()),
            IntegrationKind::Chatwoot => state.chatwoot.get(id).map(|c| c.status().to_owned()),
            IntegrationKind::Standard => None,
        }
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for FakeHelpdesk {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Debug, Default)]
struct FakeState {
    base_url: String,
    standard_secret: String,
    faults: VecDeque<Fault>,
    requests: Vec<RecordedRequest>,
    posts: Vec<RecordedPost>,
    /// Registered tickets per vendor; a vendor absent here accepts any id.
    known: BTreeMap<IntegrationKind, BTreeSet<String>>,
    zendesk: BTreeMap<String, zendesk::Ticket>,
    intercom: BTreeMap<String, intercom::Conversation>,
    chatwoot: BTreeMap<String, chatwoot::Conversation>,
    /// Standard `webhook-id`s already accepted.
    standard_seen: BTreeSet<String>,
    next_id: u64,
}

impl FakeState {
    /// Whether `vendor` serves ticket `id`.
    fn serves(&self, vendor: IntegrationKind, id: &str) -> bool {
        self.known.get(&vendor).is_none_or(|ids| ids.contains(id))
    }

    /// Creates the ticket's record if it has none yet.
    fn touch(&mut self, vendor: IntegrationKind, id: &str) {
        match vendor {
            IntegrationKind::Zendesk => {
                self.zendesk.entry(id.to_owned()).or_default();
            }
            IntegrationKind::Intercom => {
                self.intercom.entry(id.to_owned()).or_default();
            }
            IntegrationKind::Chatwoot => {
                self.chatwoot.entry(id.to_owned()).or_default();
            }
            IntegrationKind::Standard => {}
        }
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn record(
        &mut self,
        vendor: IntegrationKind,
        ticket: &str,
        kind: PostKind,
        body: Option<&str>,
        reply_id: Option<&str>,
    ) {
        self.posts.push(RecordedPost {
            vendor,
            ticket: ticket.to_owned(),
            kind,
            body: body.map(str::to_owned),
            reply_id: reply_id.map(str::to_owned),
        });
    }
}

/// A request as the vendor handlers see it.
struct Incoming<'a> {
    method: &'a Method,
    /// The path split on `/`, without the leading empty segment.
    segments: Vec<&'a str>,
    query: Vec<(String, String)>,
    headers: &'a HeaderMap,
    body: &'a [u8],
    json: Option<&'a Value>,
}

impl Incoming<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A status, a JSON body and any extra headers.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    body: Value,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Answer {
    fn ok(body: Value) -> Self {
        Self::new(StatusCode::OK, body)
    }

    fn new(status: StatusCode, body: Value) -> Self {
        Self {
            status,
            body,
            headers: Vec::new(),
        }
    }

    fn with_header(mut self, name: HeaderName, value: impl ToString) -> Self {
        if let Ok(value) = HeaderValue::from_str(&value.to_string()) {
            self.headers.push((name, value));
        }
        self
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        response.headers_mut().extend(self.headers);
        response
    }
}

async fn handle(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lock = || state.lock().unwrap_or_else(PoisonError::into_inner);
    let path = uri.path();
    let vendor = vendor_of(path);
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    let fault = {
        let mut state = lock();
        state.requests.push(RecordedRequest {
            vendor,
            method: method.to_string(),
            path: path.to_owned(),
            query: uri.query().map(str::to_owned),
            headers: headers
                .keys()
                .filter_map(|k| Some((k.as_str().to_owned(), headers.get(k)?.to_str().ok()?.to_owned())))
                .collect(),
            body: json.clone(),
        });
        state.faults.pop_front()
    };
    match fault {
        Some(Fault::Status(status, retry_after)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return fault_answer(vendor, status, retry_after).into_response();
        }
        Some(Fault::Gone) => return fault_answer(vendor, StatusCode::GONE, None).into_response(),
        Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::ApplyThenFail) | None => {}
    }
    let incoming = Incoming {
        method: &method,
        segments: path.trim_start_matches('/').split('/').collect(),
        query: form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect(),
        headers: &headers,
        body: &body,
        json: json.as_ref(),
    };
    let answer = {
        let mut state = lock();
        match vendor {
            Some(IntegrationKind::Zendesk) => zendesk::handle(&mut state, &incoming),
            Some(IntegrationKind::Intercom) => intercom::handle(&mut state, &incoming),
            Some(IntegrationKind::Chatwoot) => chatwoot::handle(&mut state, &incoming),
            Some(IntegrationKind::Standard) => standard::handle(&mut state, &incoming),
            None => Answer::new(StatusCode::NOT_FOUND, json!({ "error": "no such endpoint" })),
        }
    };
    if fault == Some(Fault::ApplyThenFail) {
        return fault_answer(vendor, StatusCode::INTERNAL_SERVER_ERROR, None).into_response();
    }
    answer.into_response()
}

/// Which vendor serves `path`.
fn vendor_of(path: &str) -> Option<IntegrationKind> {
    if path.starts_with("/api/v2/") {
        Some(IntegrationKind::Zendesk)
    } else if path.starts_with("/conversations/") || path == "/me" {
        Some(IntegrationKind::Intercom)
    } else if path.starts_with("/api/v1/accounts/") {
        Some(IntegrationKind::Chatwoot)
    } else if path == FakeHelpdesk::STANDARD_PATH {
        Some(IntegrationKind::Standard)
    } else {
        None
    }
}

/// The vendor's answer to a scripted fault.
fn fault_answer(
    vendor: Option<IntegrationKind>,
    status: StatusCode,
    retry_after: Option<Duration>,
) -> Answer {
    let mut answer = match vendor {
        Some(IntegrationKind::Zendesk) => zendesk::fault(status),
        Some(IntegrationKind::Intercom) => intercom::fault(status),
        Some(IntegrationKind::Chatwoot) => chatwoot::fault(status),
        Some(IntegrationKind::Standard) | None => standard::fault(status),
    };
    if let Some(after) = retry_after {
        answer = answer.with_header(header::RETRY_AFTER, after.as_secs());
        if vendor == Some(IntegrationKind::Intercom) {
            let reset = chrono::Utc::now()
                .timestamp()
                .saturating_add_unsigned(after.as_secs());
            answer = answer.with_header(HeaderName::from_static("x-ratelimit-reset"), reset);
        }
    }
    answer
}

/// Now, unix seconds (vendors stamp their objects with the wall clock).
fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Now, RFC 3339 to the second.
fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// An id as the vendor would show it: a number when it is one.
fn id_json(id: &str) -> Value {
    id.parse::<u64>().map_or_else(|_| json!(id), |n| json!(n))
}
