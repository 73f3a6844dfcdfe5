//! The upstream every target calls: a minimal, fast fake of OpenAI's API.
//!
//! It answers `POST /v1/chat/completions` (a JSON completion, or Server-Sent
//! Events when `stream` is true), `POST /v1/embeddings` and `GET
//! /v1/models` in OpenAI's exact wire format, with a realistic `usage`
//! (cached prompt tokens and reasoning tokens included, so a gateway's
//! pricing has every field to read). It runs on its own thread with a
//! one-thread tokio runtime: on a 2-core machine the upstream must not
//! take cores from the gateway it measures, and one thread answers far more
//! than any target here can send (≥ 9k requests/s alone).
//!
//! A stream sends the role chunk and the first content delta at once, then
//! one delta per [`TOKEN_GAP`], so time to first token and total time are
//! distinct figures. Every call is counted, so a run can check that each
//! request through a gateway really reached the upstream.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

/// The answer, one streamed delta per piece.
const PIECES: [&str; 8] = [
    "Your order",
    " #4521",
    " shipped",
    " yesterday",
    " and should",
    " arrive",
    " by Tuesday",
    ".",
];
/// Time between two streamed deltas after the first: a fast model.
pub const TOKEN_GAP: Duration = Duration::from_millis(1);
/// Tokens the completion reports: the answer's pieces plus hidden reasoning.
const REASONING_TOKENS: u64 = 8;
const COMPLETION_TOKENS: u64 = PIECES.len() as u64 * 2 + REASONING_TOKENS;
/// Dimensions of an embedding when the request names none.
const DEFAULT_DIMENSIONS: usize = 256;

/// Calls the upstream answered, per endpoint.
#[derive(Default)]
pub struct Calls {
    pub chat: AtomicU64,
    pub chat_stream: AtomicU64,
    pub embeddings: AtomicU64,
    pub models: AtomicU64,
}

impl Calls {
    /// Chat completions of both kinds.
    pub fn chat_total(&self) -> u64 {
        self.chat.load(Ordering::Relaxed) + self.chat_stream.load(Ordering::Relaxed)
    }
}

/// A running upstream; it lives as long as the process.
pub struct Upstream {
    /// `http://127.0.0.1:PORT/v1`.
    pub base_url: String,
    pub calls: Arc<Calls>,
}

/// Starts the upstream on its own thread and one-thread runtime.
pub fn start() -> Upstream {
    let calls = Arc::new(Calls::default());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the upstream");
    listener.set_nonblocking(true).expect("nonblocking listener");
    let base_url = format!("http://{}/v1", listener.local_addr().expect("upstream address"));
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(models))
        .with_state(calls.clone());
    std::thread::Builder::new()
        .name("upstream".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("upstream runtime");
            rt.block_on(async move {
                // Without TCP_NODELAY a streamed event written after the
                // headers waits for the client's delayed ACK (40 ms).
                let listener = tokio::net::TcpListener::from_std(listener)
                    .expect("tokio listener")
                    .tap_io(|tcp| {
                        let _ = tcp.set_nodelay(true);
                    });
                axum::serve(listener, app).await.expect("upstream serve");
            });
        })
        .expect("upstream thread");
    Upstream { base_url, calls }
}

#[derive(Deserialize)]
struct ChatIn {
    model: String,
    messages: Vec<serde_json::Value>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// OpenAI's error shape, with its status.
fn openai_error(status: StatusCode, message: &str, param: Option<&str>) -> Response {
    let body = serde_json::json!({
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": null,
        }
    });
    (status, axum::Json(body)).into_response()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The `usage` object of a completion whose prompt was `body_len` bytes.
fn usage_json(body_len: usize) -> String {
    // About four bytes a token; half the prompt (the system message) cached.
    let prompt = (body_len as u64 / 4).max(1);
    let cached = prompt / 2;
    format!(
        r#"{{"prompt_tokens":{prompt},"completion_tokens":{COMPLETION_TOKENS},"total_tokens":{total},"prompt_tokens_details":{{"cached_tokens":{cached},"audio_tokens":0}},"completion_tokens_details":{{"reasoning_tokens":{REASONING_TOKENS},"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}}"#,
        total = prompt + COMPLETION_TOKENS,
    )
}

async fn chat(State(calls): State<Arc<Calls>>, body: Bytes) -> Response {
    let request: ChatIn = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return openai_error(StatusCode::BAD_REQUEST, &format!("invalid body: {e}"), None);
        }
    };
    if request.messages.is_empty() {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "[] is too short - 'messages'",
            Some("messages"),
        );
    }
    // The model name is echoed as JSON, so it is escaped as JSON.
    let model = serde_json::to_string(&request.model).unwrap_or_else(|_| "\"upstream\"".into());
    let usage = usage_json(body.len());
    if request.stream {
        let n = calls.chat_stream.fetch_add(1, Ordering::Relaxed);
        let include_usage = request.stream_options.is_some_and(|o| o.include_usage);
        return stream(n, model, usage, include_usage);
    }
    let n = calls.chat.fetch_add(1, Ordering::Relaxed);
    let content: String = PIECES.concat();
    let json = format!(
        r#"{{"id":"chatcmpl-bench{n:012}","object":"chat.completion","created":{created},"model":{model},"choices":[{{"index":0,"message":{{"role":"assistant","content":"{content}","refusal":null,"annotations":[]}},"logprobs":null,"finish_reason":"stop"}}],"usage":{usage},"service_tier":"default","system_fingerprint":"fp_bench"}}"#,
        created = now_secs(),
    );
    ([(header::CONTENT_TYPE, "application/json")], json).into_response()
}

/// A streamed completion: `data: {chunk}` events, then `data: [DONE]`.
fn stream(n: u64, model: String, usage: String, include_usage: bool) -> Response {
    let (mut tx, rx) = tokio::io::duplex(16 * 1024);
    tokio::spawn(async move {
        let id = format!("chatcmpl-bench{n:012}");
        let created = now_secs();
        // With `include_usage`, OpenAI sends `"usage":null` on every chunk
        // but the last, which carries the usage and no choices.
        let usage_null = if include_usage { r#","usage":null"# } else { "" };
        let chunk = |delta: &str, finish: &str| {
            format!(
                "data: {{\"id\":\"{id}\",\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":{model},\"service_tier\":\"default\",\"system_fingerprint\":\"fp_bench\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\"finish_reason\":{finish}}}]{usage_null}}}\n\n"
            )
        };
        let mut first = chunk(r#"{"role":"assistant","content":"","refusal":null}"#, "null");
        first.push_str(&chunk(&format!(r#"{{"content":"{}"}}"#, PIECES[0]), "null"));
        if tx.write_all(first.as_bytes()).await.is_err() {
            return;
        }
        for piece in &PIECES[1..] {
            tokio::time::sleep(TOKEN_GAP).await;
            let event = chunk(&format!(r#"{{"content":"{piece}"}}"#), "null");
            if tx.write_all(event.as_bytes()).await.is_err() {
                return;
            }
        }
        let mut last = chunk("{}", "\"stop\"");
        if include_usage {
            last.push_str(&format!(
                "data: {{\"id\":\"{id}\",\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":{model},\"service_tier\":\"default\",\"system_fingerprint\":\"fp_bench\",\"choices\":[],\"usage\":{usage}}}\n\n"
            ));
        }
        last.push_str("data: [DONE]\n\n");
        let _ = tx.write_all(last.as_bytes()).await;
        let _ = tx.shutdown().await;
    });
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(rx));
    (
        [
            (header::CONTENT_TYPE, "text/event-stream; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

#[derive(Deserialize)]
struct EmbeddingsIn {
    model: String,
    input: EmbeddingInput,
    #[serde(default)]
    dimensions: Option<usize>,
    #[serde(default)]
    encoding_format: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum EmbeddingInput {
    One(String),
    Many(Vec<String>),
}

async fn embeddings(State(calls): State<Arc<Calls>>, body: Bytes) -> Response {
    let request: EmbeddingsIn = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return openai_error(StatusCode::BAD_REQUEST, &format!("invalid body: {e}"), None);
        }
    };
    calls.embeddings.fetch_add(1, Ordering::Relaxed);
    let inputs = match request.input {
        EmbeddingInput::One(s) => vec![s],
        EmbeddingInput::Many(v) => v,
    };
    let dims = request.dimensions.unwrap_or(DEFAULT_DIMENSIONS).clamp(1, 3072);
    // The official Python client asks for base64 by default: little-endian
    // f32s, base64-encoded.
    let base64 = request.encoding_format.as_deref() == Some("base64");
    let mut tokens = 0;
    let data: Vec<serde_json::Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            tokens += (text.len() / 4).max(1);
            let vector: Vec<f32> = (0..dims)
                .map(|d| (((d + text.len()) % 17) as f32 - 8.0) / 64.0)
                .collect();
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
                serde_json::Value::String(base64_encode(&bytes))
            } else {
                serde_json::json!(vector)
            };
            serde_json::json!({ "object": "embedding", "index": i, "embedding": embedding })
        })
        .collect();
    axum::Json(serde_json::json!({
        "object": "list",
        "data": data,
        "model": request.model,
        "usage": { "prompt_tokens": tokens, "total_tokens": tokens },
    }))
    .into_response()
}

async fn models(State(calls): State<Arc<Calls>>) -> Response {
    calls.models.fetch_add(1, Ordering::Relaxed);
    axum::Json(serde_json::json!({
        "object": "list",
        "data": [
            { "id": "upstream", "object": "model", "created": 1_700_000_000, "owned_by": "bench" },
        ],
    }))
    .into_response()
}

/// Standard base64 with padding (RFC 4648), for `encoding_format: base64`.
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> shift) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
