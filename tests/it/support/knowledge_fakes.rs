//! Fakes for knowledge tests: an OpenAI-wire embedding server whose
//! vectors mean something ([`ConceptEmbedder`]), and a small web site of
//! help pages ([`HelpSite`]) that URL sources fetch.
//!
//! The concept embedder maps words to a handful of topics (refunds,
//! shipping, accounts, opening hours, gift cards), so "reimbursement" lands
//! near "refunds" although they share no word: what a real embedding model
//! does, deterministically. Other words add a little hashed noise. It can
//! be told to fail (500), to test that retrieval and indexing fall back to
//! keywords.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// Width of the concept embeddings.
pub const CONCEPT_DIM: usize = 16;

const TOPICS: &[&[&str]] = &[
    &[
        "refund",
        "refunds",
        "reimbursement",
        "reimbursed",
        "money",
        "return",
        "returns",
        "repaid",
    ],
    &[
        "shipping",
        "delivery",
        "deliver",
        "delivered",
        "parcel",
        "parcels",
        "arrive",
        "courier",
        "package",
    ],
    &["password", "login", "account", "reset", "credentials"],
    &["open", "hours", "nine", "five", "schedule", "closed"],
    &["gift", "cards", "voucher", "vouchers"],
];

/// The concept embedding of `text`, unit length.
pub fn concept_embedding(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; CONCEPT_DIM];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let w = word.to_lowercase();
        match TOPICS.iter().position(|t| t.contains(&w.as_str())) {
            Some(topic) => v[topic] += 1.0,
            None => {
                let h = w.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
                });
                v[8 + (h % 8) as usize] += 0.2;
            }
        }
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        v[15] = 1.0;
    } else {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

#[derive(Default)]
struct EmbedShared {
    failing: AtomicBool,
    inputs: AtomicUsize,
}

/// The concept embedding server, on `127.0.0.1`.
pub struct ConceptEmbedder {
    addr: SocketAddr,
    shared: Arc<EmbedShared>,
}

async fn embeddings(State(shared): State<Arc<EmbedShared>>, Json(body): Json<Value>) -> Response {
    if shared.failing.load(Ordering::SeqCst) {
        let e = json!({"error": {"message": "the embedder is down", "type": "server_error", "code": null}});
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(e)).into_response();
    }
    let inputs: Vec<String> = match &body["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    };
    shared.inputs.fetch_add(inputs.len(), Ordering::SeqCst);
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, t)| json!({"object": "embedding", "index": index, "embedding": concept_embedding(t)}))
        .collect();
    let words: usize = inputs.iter().map(|t| t.split_whitespace().count()).sum();
    Json(json!({
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": {"prompt_tokens": words.max(1), "total_tokens": words.max(1)},
    }))
    .into_response()
}

impl ConceptEmbedder {
    pub async fn start() -> ConceptEmbedder {
        let shared = Arc::new(EmbedShared::default());
        let app = Router::new()
            .route("/v1/embeddings", post(embeddings))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        ConceptEmbedder { addr, shared }
    }

    /// `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Makes every request fail with 500 (or succeed again).
    pub fn set_failing(&self, failing: bool) {
        self.shared.failing.store(failing, Ordering::SeqCst);
    }

    /// Texts embedded (successfully answered).
    pub fn inputs(&self) -> usize {
        self.shared.inputs.load(Ordering::SeqCst)
    }

    /// An `[embeddings.NAME]` table for this server, without retries.
    pub fn table(&self) -> Value {
        json!({
            "provider": "openai",
            "base_url": self.base_url(),
            "model": "concepts",
            "max_retries": 0,
            "request_timeout_ms": 2000,
        })
    }
}

/// One page of the help site: its content type and body.
pub type Page = (&'static str, String);

#[derive(Default)]
struct SiteShared {
    pages: Mutex<std::collections::HashMap<String, Page>>,
    requests: AtomicUsize,
}

/// A web site of help pages on `127.0.0.1`; an unknown path is a 404.
pub struct HelpSite {
    addr: SocketAddr,
    shared: Arc<SiteShared>,
}

async fn page(State(shared): State<Arc<SiteShared>>, Path(path): Path<String>) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let found = shared.pages.lock().unwrap().get(&path).cloned();
    match found {
        Some((content_type, body)) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        None => (StatusCode::NOT_FOUND, "no such page").into_response(),
    }
}

impl HelpSite {
    pub async fn start() -> HelpSite {
        let shared = Arc::new(SiteShared::default());
        let app = Router::new()
            .route("/{*path}", get(page))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        HelpSite { addr, shared }
    }

    /// Serves `body` as `content_type` at `/path`.
    pub fn set(&self, path: &str, content_type: &'static str, body: &str) {
        self.shared.pages.lock().unwrap().insert(
            path.trim_start_matches('/').to_owned(),
            (content_type, body.to_owned()),
        );
    }

    /// The URL of `/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// Requests received.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }
}
