//! A fake OpenAI-compatible server, for tests and benchmarks across the
//! workspace.
//!
//! [`FakeOpenAi::start`] binds `127.0.0.1:0` and serves
//! `POST /v1/chat/completions` and `POST /v1/embeddings` with OpenAI's wire
//! shapes: the success objects, and errors as
//! `{"error":{"message","type","param","code"}}` with their status. Each
//! request takes the next scripted [`Behavior`] from a queue
//! ([`FakeOpenAi::push`]), or the default one ([`FakeOpenAi::set_default`])
//! once the queue is empty. The default is [`Behavior::Echo`]: the reply
//! is the last user message, so a test can tell tasks apart.
//!
//! Every request is recorded with its JSON body, the time it arrived and
//! its `Authorization` header. Chat requests are also counted while in
//! flight, per distinct last user message, and the highest count ever seen
//! is kept. A test can then assert that no task ran twice at once.
//!
//! `/v1/embeddings` answers like OpenAI's: `input` as a string or an array
//! of strings, `dimensions` honoured (the vector cut to that length and
//! normalised again, as `text-embedding-3-*` do), and a 400
//! `invalid_request_error` naming the parameter for an empty string, more
//! than 2048 inputs, or more dimensions than the model has
//! ([`EMBEDDING_DIM`]).
//!
//! The echo path has no sleeps and no logging: benchmarks use this server
//! as an instant model. Turn recording off ([`FakeOpenAi::set_recording`])
//! for long load runs.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::watch;

/// Dimension of the fake embeddings.
pub const EMBEDDING_DIM: usize = 16;

/// Most inputs one `/v1/embeddings` request may carry (OpenAI's limit).
pub const MAX_EMBEDDING_INPUTS: usize = 2048;

/// What the server does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behavior {
    /// A 200 whose reply is the last user message. Token counts are word
    /// counts: of every message for the prompt, of the reply for the
    /// completion (at least 1 each). Embeddings of the inputs on
    /// `/v1/embeddings`.
    Echo,
    /// 200 with this text and usage, `finish_reason: "stop"` (on
    /// `/v1/embeddings`: the echo embeddings, with `prompt_tokens`).
    Reply {
        text: String,
        prompt_tokens: u64,
        completion_tokens: u64,
    },
    /// Like `Reply`, with `finish_reason: "length"`.
    Truncated {
        text: String,
        prompt_tokens: u64,
        completion_tokens: u64,
    },
    /// This status, with `Retry-After` when set. The body is `body` when
    /// set, else an OpenAI error object that matches the status.
    Status {
        code: u16,
        retry_after: Option<String>,
        body: Option<String>,
    },
    /// Waits, then answers as [`Behavior::Echo`].
    Delay(Duration),
    /// 200 whose body is not JSON.
    Malformed,
    /// Never answers, until the server is dropped.
    Hang,
    /// Answers like a model of some skill, for workloads with a difficulty
    /// mix: the last user message names the ticket's `difficulty: N` and
    /// `answer: WORD`; a model (by the `model` it was asked as) whose skill
    /// here is at least N replies `The answer is WORD.`, any other model
    /// `I am not sure.` Token counts as for [`Behavior::Echo`].
    Skilled(std::collections::BTreeMap<String, u8>),
    /// 200 with this text and a usage that has OpenAI's details: the
    /// cached share of the prompt and the reasoning share of the
    /// completion.
    Detailed {
        text: String,
        prompt_tokens: u64,
        completion_tokens: u64,
        cached_tokens: u64,
        reasoning_tokens: u64,
    },
    /// 200 with this text and no `usage` at all (streaming: no usage
    /// chunk even when asked for), as some compatible servers answer.
    NoUsage(String),
    /// 200 with an assistant message that calls these tools (name,
    /// arguments as JSON text), `content: null` and
    /// `finish_reason: "tool_calls"`; ids are `call_fakeN_I`. Token counts as
    /// for [`Behavior::Echo`].
    ToolCalls(Vec<(String, String)>),
}

impl Behavior {
    /// A 200 with this text and usage.
    pub fn reply(text: impl Into<String>, prompt_tokens: u64, completion_tokens: u64) -> Self {
        Behavior::Reply {
            text: text.into(),
            prompt_tokens,
            completion_tokens,
        }
    }

    /// This status with the default OpenAI error body.
    pub fn status(code: u16) -> Self {
        Behavior::Status {
            code,
            retry_after: None,
            body: None,
        }
    }

    /// A 429 with `Retry-After: retry_after`.
    pub fn rate_limited(retry_after: impl Into<String>) -> Self {
        Behavior::Status {
            code: 429,
            retry_after: Some(retry_after.into()),
            body: None,
        }
    }

    /// This status with an OpenAI error object carrying `message`.
    pub fn error(code: u16, message: &str) -> Self {
        let body = error_body(code, message).to_string();
        Behavior::Status {
            code,
            retry_after: None,
            body: Some(body),
        }
    }
}

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// `/v1/chat/completions` or `/v1/embeddings`.
    pub path: String,
    /// The JSON body; `Value::Null` when it was not JSON.
    pub body: Value,
    /// The `Authorization` header, verbatim.
    pub authorization: Option<String>,
    pub received_at: Instant,
}

impl RecordedRequest {
    /// Content of the last user message of a chat request.
    pub fn last_user_message(&self) -> Option<&str> {
        last_user_message(&self.body)
    }
}

/// A running fake server; stops when dropped.
pub struct FakeOpenAi {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FakeOpenAi {
    /// Binds `127.0.0.1:0` and serves in the background.
    pub async fn start() -> FakeOpenAi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake OpenAI server");
        let addr = listener
            .local_addr()
            .expect("local address of the fake OpenAI server");
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            script: Mutex::new(Script {
                queue: VecDeque::new(),
                default: Behavior::Echo,
            }),
            requests: Mutex::new(Vec::new()),
            recording: AtomicBool::new(true),
            count: AtomicUsize::new(0),
            ids: AtomicU64::new(0),
            in_flight: Mutex::new(HashMap::new()),
            in_flight_total: AtomicUsize::new(0),
            max_in_flight_per_prompt: AtomicUsize::new(0),
            shutdown,
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/embeddings", post(embeddings))
            .with_state(shared.clone());
        let mut stop = shared.shutdown.subscribe();
        tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            };
            // An error here only means the listener went away with the test.
            let _ = axum::serve(listener, app).with_graceful_shutdown(stopped).await;
        });
        FakeOpenAi { addr, shared }
    }

    /// `http://127.0.0.1:PORT/v1`, a `base_url` for `RemoteModelConfig`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues a behaviour for the next request that has none yet.
    pub fn push(&self, behavior: Behavior) {
        lock(&self.shared.script).queue.push_back(behavior);
    }

    /// What requests get once the queue is empty.
    pub fn set_default(&self, behavior: Behavior) {
        lock(&self.shared.script).default = behavior;
    }

    /// Every request recorded so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Requests received, recorded or not.
    pub fn request_count(&self) -> usize {
        self.shared.count.load(Ordering::SeqCst)
    }

    /// Chat requests being answered right now.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight_total.load(Ordering::SeqCst)
    }

    /// The most chat requests ever in flight at once with the same last
    /// user message.
    pub fn max_in_flight_per_prompt(&self) -> usize {
        self.shared.max_in_flight_per_prompt.load(Ordering::SeqCst)
    }

    /// Whether requests are recorded (default: yes). Counting and in-flight
    /// tracking go on either way.
    pub fn set_recording(&self, on: bool) {
        self.shared.recording.store(on, Ordering::SeqCst);
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        // Ends hanging requests and the accept loop.
        self.shared.shutdown.send_replace(true);
    }
}

struct Script {
    queue: VecDeque<Behavior>,
    default: Behavior,
}

struct Shared {
    script: Mutex<Script>,
    requests: Mutex<Vec<RecordedRequest>>,
    recording: AtomicBool,
    count: AtomicUsize,
    ids: AtomicU64,
    in_flight: Mutex<HashMap<String, usize>>,
    in_flight_total: AtomicUsize,
    max_in_flight_per_prompt: AtomicUsize,
    shutdown: watch::Sender<bool>,
}

/// A panic in one test's handler must not poison the server for the rest.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Chat,
    Embeddings,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "/v1/chat/completions",
            Endpoint::Embeddings => "/v1/embeddings",
        }
    }
}

async fn chat(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    shared.handle(Endpoint::Chat, &headers, &body).await
}

async fn embeddings(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    shared.handle(Endpoint::Embeddings, &headers, &body).await
}

/// Counts one chat request in flight for its prompt until dropped.
struct InFlight<'a> {
    shared: &'a Shared,
    prompt: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut map = lock(&self.shared.in_flight);
        if let Some(n) = map.get_mut(&self.prompt) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.prompt);
            }
        }
        self.shared.in_flight_total.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What an answer needs from the request, read before the body is recorded.
struct Asked {
    model: String,
    echo: String,
    prompt_words: u64,
    inputs: Vec<String>,
    /// `dimensions` of an embeddings request.
    dimensions: Option<u64>,
    /// `stream: true`: the answer goes out as server-sent events.
    stream: bool,
    /// `stream_options.include_usage`.
    include_usage: bool,
}

impl Shared {
    async fn handle(&self, endpoint: Endpoint, headers: &HeaderMap, raw: &[u8]) -> Response {
        self.count.fetch_add(1, Ordering::SeqCst);
        let body: Option<Value> = serde_json::from_slice(raw).ok();
        let asked = body.as_ref().map(|body| Asked::read(endpoint, body));
        let refusal = match (&body, endpoint) {
            (Some(body), Endpoint::Chat) => tool_message_refusal(body),
            _ => None,
        };
        let _in_flight = match (&asked, endpoint) {
            (Some(asked), Endpoint::Chat) => Some(self.enter(asked.echo.clone())),
            _ => None,
        };
        if self.recording.load(Ordering::Relaxed) {
            let authorization = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            lock(&self.requests).push(RecordedRequest {
                path: endpoint.path().to_owned(),
                body: body.unwrap_or(Value::Null),
                authorization,
                received_at: Instant::now(),
            });
        }
        let Some(asked) = asked else {
            return json_response(
                StatusCode::BAD_REQUEST,
                &error_body(400, "the body is not valid JSON"),
            );
        };
        if let Some(refusal) = refusal {
            return refusal;
        }
        let behavior = {
            let mut script = lock(&self.script);
            script.queue.pop_front().unwrap_or_else(|| script.default.clone())
        };
        match behavior {
            Behavior::Echo => self.success(endpoint, &asked, None),
            Behavior::Skilled(skills) => {
                let field = |name: &str| {
                    asked
                        .echo
                        .split(name)
                        .nth(1)
                        .and_then(|rest| rest.split_whitespace().next())
                        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_owned())
                };
                let difficulty: u8 = field("difficulty:")
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(u8::MAX);
                let skill = skills.get(&asked.model).copied().unwrap_or(0);
                let text = match field("answer:") {
                    Some(answer) if skill >= difficulty => format!("The answer is {answer}."),
                    _ => "I am not sure.".to_owned(),
                };
                let completion = word_count(&text).max(1);
                self.success(
                    endpoint,
                    &asked,
                    Some((text, asked.prompt_words.max(1), completion, "stop")),
                )
            }
            Behavior::ToolCalls(calls) => {
                let id = self.ids.fetch_add(1, Ordering::Relaxed);
                let tool_calls: Vec<Value> = calls
                    .iter()
                    .enumerate()
                    .map(|(i, (name, arguments))| {
                        json!({
                            "id": format!("call_fake{id}_{i}"),
                            "type": "function",
                            "function": {"name": name, "arguments": arguments},
                        })
                    })
                    .collect();
                let completion = calls.iter().map(|(_, a)| word_count(a)).sum::<u64>().max(1);
                let prompt = asked.prompt_words.max(1);
                let message = json!({"role": "assistant", "content": null, "tool_calls": tool_calls});
                asked.respond(chat_completion(
                    id,
                    &asked.model,
                    message,
                    "tool_calls",
                    prompt,
                    completion,
                ))
            }
            Behavior::Reply {
                text,
                prompt_tokens,
                completion_tokens,
            } => self.success(
                endpoint,
                &asked,
                Some((text, prompt_tokens, completion_tokens, "stop")),
            ),
            Behavior::Detailed {
                text,
                prompt_tokens,
                completion_tokens,
                cached_tokens,
                reasoning_tokens,
            } => {
                let id = self.ids.fetch_add(1, Ordering::Relaxed);
                let message = json!({ "role": "assistant", "content": text });
                let mut body = chat_completion(
                    id,
                    &asked.model,
                    message,
                    "stop",
                    prompt_tokens,
                    completion_tokens,
                );
                body["usage"]["prompt_tokens_details"] =
                    json!({"cached_tokens": cached_tokens, "audio_tokens": 0});
                body["usage"]["completion_tokens_details"] =
                    json!({"reasoning_tokens": reasoning_tokens, "audio_tokens": 0});
                asked.respond(body)
            }
            Behavior::NoUsage(text) => {
                let id = self.ids.fetch_add(1, Ordering::Relaxed);
                let message = json!({ "role": "assistant", "content": text });
                let mut body = chat_completion(id, &asked.model, message, "stop", 0, 0);
                if let Some(object) = body.as_object_mut() {
                    object.remove("usage");
                }
                asked.respond(body)
            }
            Behavior::Truncated {
                text,
                prompt_tokens,
                completion_tokens,
            } => self.success(
                endpoint,
                &asked,
                Some((text, prompt_tokens, completion_tokens, "length")),
            ),
            Behavior::Status {
                code,
                retry_after,
                body,
            } => status_response(code, retry_after, body),
            Behavior::Delay(delay) => {
                tokio::time::sleep(delay).await;
                self.success(endpoint, &asked, None)
            }
            Behavior::Malformed => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{\"id\": \"chatcmpl-broken\", \"choices\": [{\"index\": 0, \"mess",
            )
                .into_response(),
            Behavior::Hang => {
                let mut stop = self.shutdown.subscribe();
                let _ = stop.wait_for(|stopped| *stopped).await;
                json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &error_body(503, "the fake server stopped"),
                )
            }
        }
    }

    fn enter(&self, prompt: String) -> InFlight<'_> {
        let now = {
            let mut map = lock(&self.in_flight);
            let n = map.entry(prompt.clone()).or_insert(0);
            *n += 1;
            *n
        };
        self.in_flight_total.fetch_add(1, Ordering::SeqCst);
        self.max_in_flight_per_prompt.fetch_max(now, Ordering::SeqCst);
        InFlight { shared: self, prompt }
    }

    fn success(
        &self,
        endpoint: Endpoint,
        asked: &Asked,
        reply: Option<(String, u64, u64, &str)>,
    ) -> Response {
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        let body = match endpoint {
            Endpoint::Chat => {
                let (text, prompt, completion, finish) = reply.unwrap_or_else(|| {
                    (
                        asked.echo.clone(),
                        asked.prompt_words.max(1),
                        word_count(&asked.echo).max(1),
                        "stop",
                    )
                });
                let message = json!({ "role": "assistant", "content": text });
                return asked.respond(chat_completion(
                    id,
                    &asked.model,
                    message,
                    finish,
                    prompt,
                    completion,
                ));
            }
            Endpoint::Embeddings => {
                if let Some(refusal) = asked.embeddings_refusal() {
                    return refusal;
                }
                let dimensions = asked.dimensions.map_or(EMBEDDING_DIM, |d| d as usize);
                let prompt = reply.map_or(asked.prompt_words.max(1), |(_, prompt, _, _)| prompt);
                let data: Vec<Value> = asked
                    .inputs
                    .iter()
                    .enumerate()
                    .map(|(index, text)| {
                        let embedding = embedding_with_dimensions(text, dimensions);
                        json!({ "object": "embedding", "index": index, "embedding": embedding })
                    })
                    .collect();
                json!({
                    "object": "list",
                    "data": data,
                    "model": asked.model,
                    "usage": { "prompt_tokens": prompt, "total_tokens": prompt },
                })
            }
        };
        json_response(StatusCode::OK, &body)
    }
}

/// A `chat.completion` object with one choice.
fn chat_completion(
    id: u64,
    model: &str,
    message: Value,
    finish: &str,
    prompt: u64,
    completion: u64,
) -> Value {
    json!({
        "id": format!("chatcmpl-fake{id}"),
        "object": "chat.completion",
        "created": unix_seconds(),
        "model": model,
        "choices": [{ "index": 0, "message": message, "finish_reason": finish }],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    })
}

/// OpenAI's 400 for a `tool` message that answers no call of an earlier
/// assistant message, or an assistant call left unanswered before the
/// next non-tool message.
fn tool_message_refusal(body: &Value) -> Option<Response> {
    let messages = body.get("messages")?.as_array()?;
    let mut open: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        if role == "tool" {
            let id = m.get("tool_call_id").and_then(Value::as_str).unwrap_or_default();
            let Some(at) = open.iter().position(|o| o == id) else {
                return Some(invalid_message(
                    i,
                    "messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
                ));
            };
            open.remove(at);
            continue;
        }
        if !open.is_empty() {
            return Some(invalid_message(
                i,
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'.",
            ));
        }
        if role == "assistant" {
            open = m
                .get("tool_calls")
                .and_then(Value::as_array)
                .map(|calls| {
                    calls
                        .iter()
                        .filter_map(|c| c.get("id").and_then(Value::as_str).map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
        }
    }
    None
}

fn invalid_message(index: usize, message: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"error": {
            "message": message,
            "type": "invalid_request_error",
            "param": format!("messages.[{index}].role"),
            "code": null,
        }}),
    )
}

impl Asked {
    fn read(endpoint: Endpoint, body: &Value) -> Asked {
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("fake")
            .to_owned();
        match endpoint {
            Endpoint::Chat => {
                let prompt_words = body
                    .get("messages")
                    .and_then(Value::as_array)
                    .map(|messages| {
                        messages
                            .iter()
                            .filter_map(|m| m.get("content").and_then(Value::as_str))
                            .map(word_count)
                            .sum()
                    })
                    .unwrap_or(0);
                let echo = last_user_message(body).unwrap_or_default().to_owned();
                Asked {
                    model,
                    echo,
                    prompt_words,
                    inputs: Vec::new(),
                    dimensions: None,
                    stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
                    include_usage: body
                        .pointer("/stream_options/include_usage")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                }
            }
            Endpoint::Embeddings => {
                let inputs: Vec<String> = match body.get("input") {
                    Some(Value::String(text)) => vec![text.clone()],
                    Some(Value::Array(items)) => items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect(),
                    _ => Vec::new(),
                };
                let prompt_words = inputs.iter().map(|t| word_count(t)).sum();
                Asked {
                    model,
                    echo: String::new(),
                    prompt_words,
                    inputs,
                    dimensions: body.get("dimensions").and_then(Value::as_u64),
                    stream: false,
                    include_usage: false,
                }
            }
        }
    }

    /// A chat completion as JSON, or, for `stream: true`, as OpenAI's
    /// server-sent events: a role chunk, one chunk per word of the
    /// content (or per tool call), a finish chunk, then (with
    /// `stream_options.include_usage`) a chunk with no choices and the
    /// usage, and `data: [DONE]`. With `include_usage`, every other chunk
    /// carries `"usage": null`.
    fn respond(&self, completion: Value) -> Response {
        if !self.stream {
            return json_response(StatusCode::OK, &completion);
        }
        let choice = &completion["choices"][0];
        let chunk = |choices: Value| {
            let mut c = json!({
                "id": completion["id"],
                "object": "chat.completion.chunk",
                "created": completion["created"],
                "model": completion["model"],
                "system_fingerprint": null,
                "choices": choices,
            });
            if self.include_usage {
                c["usage"] = Value::Null;
            }
            c
        };
        let delta = |delta: Value, finish: Value| json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);
        let mut events = vec![chunk(delta(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        ))];
        if let Some(text) = choice["message"]["content"].as_str() {
            let mut rest = text;
            while !rest.is_empty() {
                let cut = rest
                    .char_indices()
                    .skip(1)
                    .find(|(_, c)| *c == ' ')
                    .map_or(rest.len(), |(i, _)| i);
                events.push(chunk(delta(json!({"content": &rest[..cut]}), Value::Null)));
                rest = &rest[cut..];
            }
        }
        if let Some(calls) = choice["message"]["tool_calls"].as_array() {
            for (i, call) in calls.iter().enumerate() {
                let mut call = call.clone();
                call["index"] = json!(i);
                events.push(chunk(delta(json!({"tool_calls": [call]}), Value::Null)));
            }
        }
        events.push(chunk(delta(json!({}), choice["finish_reason"].clone())));
        if self.include_usage && completion.get("usage").is_some() {
            let mut last = chunk(json!([]));
            last["usage"] = completion["usage"].clone();
            events.push(last);
        }
        let mut body = String::new();
        for event in events {
            body.push_str("data: ");
            body.push_str(&event.to_string());
            body.push_str("\n\n");
        }
        body.push_str("data: [DONE]\n\n");
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/event-stream")],
            body,
        )
            .into_response()
    }

    /// The 400 OpenAI answers to embeddings input it refuses.
    fn embeddings_refusal(&self) -> Option<Response> {
        let (param, message) = if self.inputs.is_empty() || self.inputs.iter().any(String::is_empty) {
            ("input", "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.".to_owned())
        } else if self.inputs.len() > MAX_EMBEDDING_INPUTS {
            (
                "input",
                format!("'$.input' is invalid: at most {MAX_EMBEDDING_INPUTS} inputs"),
            )
        } else if self
            .dimensions
            .is_some_and(|d| d == 0 || d > EMBEDDING_DIM as u64)
        {
            (
                "dimensions",
                format!("This model does not support specifying dimensions outside 1-{EMBEDDING_DIM}."),
            )
        } else {
            return None;
        };
        let mut body = error_body(400, &message);
        body["error"]["param"] = Value::from(param);
        Some(json_response(StatusCode::BAD_REQUEST, &body))
    }
}

fn last_user_message(body: &Value) -> Option<&str> {
    body.get("messages")?
        .as_array()?
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))?
        .get("content")?
        .as_str()
}

fn word_count(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The fake embedding of `text`: hashed bag of lower-cased words,
/// L2-normalised, so texts that share words are close.
pub fn embedding_of(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; EMBEDDING_DIM];
    for word in text.split_whitespace() {
        // FNV-1a
        let hash = word
            .to_lowercase()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        let sign = if (hash >> 32) & 1 == 0 { 1.0 } else { -1.0 };
        v[(hash % EMBEDDING_DIM as u64) as usize] += sign;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        v[0] = 1.0;
    } else {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// [`embedding_of`] cut to its first `dimensions` components and
/// normalised again, as OpenAI shortens `text-embedding-3-*` vectors.
pub fn embedding_with_dimensions(text: &str, dimensions: usize) -> Vec<f32> {
    let mut v = embedding_of(text);
    if dimensions >= EMBEDDING_DIM {
        return v;
    }
    v.truncate(dimensions);
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        if let Some(first) = v.first_mut() {
            *first = 1.0;
        }
    } else {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// OpenAI's error object for `code`.
fn error_body(code: u16, message: &str) -> Value {
    let (kind, error_code) = match code {
        401 => ("invalid_request_error", Value::from("invalid_api_key")),
        404 => ("invalid_request_error", Value::from("model_not_found")),
        429 => ("rate_limit_error", Value::from("rate_limit_exceeded")),
        500..=599 => ("server_error", Value::Null),
        _ => ("invalid_request_error", Value::Null),
    };
    json!({ "error": { "message": message, "type": kind, "param": null, "code": error_code } })
}

fn status_response(code: u16, retry_after: Option<String>, body: Option<String>) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = body.unwrap_or_else(|| {
        let reason = status.canonical_reason().unwrap_or("error");
        error_body(code, &format!("fake {code}: {reason}")).to_string()
    });
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
