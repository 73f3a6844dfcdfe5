//! The load generator: one request of each kind, an open loop at a fixed
//! rate and a closed loop that finds the maximum throughput.
//!
//! The open loop avoids coordinated omission: a dispatcher thread sleeps
//! until each request's scheduled time (`start + i / rate`) and hands it to
//! the client runtime, and latency is measured from that scheduled time,
//! not from when the request really left. A target that falls behind
//! therefore shows its queueing in the latency, instead of silently
//! slowing the schedule down. A target that cannot keep up at all is cut
//! off at [`MAX_IN_FLIGHT`] requests and reported as not sustained.
//!
//! The client runtime has one worker thread and keep-alive connections
//! (HTTP/1.1, `TCP_NODELAY`); the dispatcher only sleeps and spawns.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde_json::Value;
use tokio::runtime::Handle;

/// Requests an open loop lets wait at once before it stops sending.
pub const MAX_IN_FLIGHT: usize = 1024;
/// Longest one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Distinct prompts, so no cache along the way sees the same body twice in a row.
const PROMPTS: usize = 64;
/// Calls per `Bounty-Task` id: a short agent run.
const CALLS_PER_TASK: u64 = 10;
const SYSTEM: &str = "You are a support agent for an online shop. Answer in one short paragraph, \
     politely, and never promise a refund the policy does not allow.";

/// Sequence of every request of the process, so task ids never repeat.
static SEQ: AtomicU64 = AtomicU64::new(0);

/// What a request is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// A non-streaming chat completion.
    Chat,
    /// A streaming chat completion with `stream_options.include_usage`.
    Stream,
}

/// Where requests go: the upstream itself, Bounty or LiteLLM.
pub struct Target {
    pub name: &'static str,
    /// Base URL ending in `/v1`.
    pub base: String,
    /// Bearer key.
    pub key: String,
    client: reqwest::Client,
    chat_url: String,
    chat_bodies: Vec<Bytes>,
    stream_bodies: Vec<Bytes>,
}

impl Target {
    pub fn new(name: &'static str, base: String, key: String) -> Target {
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .timeout(REQUEST_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(300))
            .build()
            .expect("reqwest client");
        let bodies = |stream: bool| -> Vec<Bytes> {
            (0..PROMPTS)
                .map(|i| {
                    let mut body = serde_json::json!({
                        "model": "upstream",
                        "messages": [
                            { "role": "system", "content": SYSTEM },
                            { "role": "user", "content": format!("Ticket {i}: where is my order #45{i:02}? It was due last week.") },
                        ],
                        "max_tokens": 64,
                        "temperature": 0,
                    });
                    if stream {
                        body["stream"] = Value::Bool(true);
                        body["stream_options"] = serde_json::json!({ "include_usage": true });
                    }
                    Bytes::from(serde_json::to_vec(&body).expect("body"))
                })
                .collect()
        };
        Target {
            name,
            chat_url: format!("{base}/chat/completions"),
            base,
            key,
            client,
            chat_bodies: bodies(false),
            stream_bodies: bodies(true),
        }
    }

    fn post(&self, url: &str, body: Bytes) -> reqwest::RequestBuilder {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        self.client
            .post(url)
            .bearer_auth(&self.key)
            .header("content-type", "application/json")
            .header("bounty-task", format!("gwbench-{}", seq / CALLS_PER_TASK))
            .body(body)
    }

    /// One chat completion; `i` picks the prompt.
    pub async fn call(&self, mode: Mode, i: usize) -> Result<Answer, String> {
        let body = match mode {
            Mode::Chat => self.chat_bodies[i % PROMPTS].clone(),
            Mode::Stream => self.stream_bodies[i % PROMPTS].clone(),
        };
        let mut response = self
            .post(&self.chat_url, body)
            .send()
            .await
            .map_err(|e| format!("send: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(format!("HTTP {status}: {}", truncate(&text)));
        }
        match mode {
            Mode::Chat => {
                let bytes = response.bytes().await.map_err(|e| format!("body: {e}"))?;
                let done = Instant::now();
                check_completion(&bytes)?;
                Ok(Answer {
                    done,
                    first_token: None,
                })
            }
            Mode::Stream => {
                let mut sse = SseCheck::default();
                while let Some(chunk) = response.chunk().await.map_err(|e| format!("stream: {e}"))? {
                    sse.feed(&chunk, Instant::now())?;
                }
                let done = Instant::now();
                let first_token = sse.finish()?;
                Ok(Answer {
                    done,
                    first_token: Some(first_token),
                })
            }
        }
    }

    /// `POST /v1/embeddings` with two inputs; checks the answer's shape.
    pub async fn embeddings(&self) -> Result<(), String> {
        let body = serde_json::json!({
            "model": "upstream",
            "input": ["where is my order?", "refund policy"],
            "encoding_format": "float",
        });
        let url = format!("{}/embeddings", self.base);
        let response = self
            .post(&url, Bytes::from(body.to_string()))
            .send()
            .await
            .map_err(|e| format!("send: {e}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| format!("body: {e}"))?;
        if !status.is_success() {
            return Err(format!("HTTP {status}: {}", truncate(&text)));
        }
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
        let data = v["data"].as_array().ok_or("no `data` array")?;
        if v["object"] != "list" || data.len() != 2 {
            return Err(format!("not a list of 2 embeddings: {}", truncate(&text)));
        }
        if !data
            .iter()
            .all(|d| d["embedding"].as_array().is_some_and(|e| !e.is_empty()))
        {
            return Err("an embedding is not a non-empty float array".into());
        }
        if v["usage"]["prompt_tokens"].as_u64().is_none() {
            return Err("no usage.prompt_tokens".into());
        }
        Ok(())
    }

    /// `GET /v1/models`; checks it lists `upstream` in OpenAI's shape.
    pub async fn models(&self) -> Result<(), String> {
        let response = self
            .client
            .get(format!("{}/models", self.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .map_err(|e| format!("send: {e}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| format!("body: {e}"))?;
        if !status.is_success() {
            return Err(format!("HTTP {status}: {}", truncate(&text)));
        }
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
        let listed = v["data"]
            .as_array()
            .is_some_and(|d| d.iter().any(|m| m["id"] == "upstream" && m["object"] == "model"));
        if v["object"] != "list" || !listed {
            return Err(format!(
                "`upstream` not listed in OpenAI's shape: {}",
                truncate(&text)
            ));
        }
        Ok(())
    }
}

/// A successful answer: when it was complete, and (streaming) when its
/// first content delta arrived.
pub struct Answer {
    pub done: Instant,
    pub first_token: Option<Instant>,
}

fn truncate(s: &str) -> String {
    s.chars().take(300).collect()
}

/// Checks a non-streaming completion: an assistant message and a usage
/// with its token details.
fn check_completion(bytes: &[u8]) -> Result<(), String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    if v["object"] != "chat.completion" {
        return Err(format!(
            "object is not chat.completion: {}",
            truncate(&String::from_utf8_lossy(bytes))
        ));
    }
    if v["choices"][0]["message"]["content"]
        .as_str()
        .is_none_or(str::is_empty)
    {
        return Err("no choices[0].message.content".into());
    }
    check_usage(&v["usage"])
}

fn check_usage(usage: &Value) -> Result<(), String> {
    for field in ["prompt_tokens", "completion_tokens", "total_tokens"] {
        if usage[field].as_u64().is_none() {
            return Err(format!("usage.{field} missing: {usage}"));
        }
    }
    Ok(())
}

/// Reads a stream of `data:` events as they arrive.
#[derive(Default)]
struct SseCheck {
    /// The unfinished last line.
    partial: Vec<u8>,
    first_token: Option<Instant>,
    usage: bool,
    done: bool,
    chunks: usize,
}

impl SseCheck {
    fn feed(&mut self, bytes: &[u8], at: Instant) -> Result<(), String> {
        self.partial.extend_from_slice(bytes);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            let Some(data) = line.strip_prefix("data:") else {
                continue; // blank separators, comments, `event:` lines
            };
            let data = data.trim_start();
            if data == "[DONE]" {
                self.done = true;
                continue;
            }
            let v: Value = serde_json::from_str(data)
                .map_err(|e| format!("event is not JSON ({e}): {}", truncate(data)))?;
            if v["object"] != "chat.completion.chunk" {
                return Err(format!("not a chat.completion.chunk: {}", truncate(data)));
            }
            self.chunks += 1;
            let has_content = v["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|c| !c.is_empty());
            if has_content && self.first_token.is_none() {
                self.first_token = Some(at);
            }
            if v["usage"].is_object() {
                check_usage(&v["usage"])?;
                self.usage = true;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Instant, String> {
        if !self.done {
            return Err(format!(
                "stream ended without data: [DONE] after {} chunks",
                self.chunks
            ));
        }
        if !self.usage {
            return Err("stream had no usage chunk despite stream_options.include_usage".into());
        }
        self.first_token
            .ok_or_else(|| "stream had no content delta".into())
    }
}

/// Latencies of one run and what went wrong in it.
#[derive(Default)]
pub struct Run {
    /// From the scheduled send (open loop) or the real send (closed loop)
    /// to the complete answer, of the successful requests.
    pub latency: Vec<Duration>,
    /// Streaming only: to the first content delta.
    pub ttft: Vec<Duration>,
    pub sent: usize,
    pub errors: usize,
    /// Open loop: requests not sent because [`MAX_IN_FLIGHT`] were waiting.
    pub shed: usize,
    pub first_error: Option<String>,
    /// From the first send to the last answer.
    pub wall: Duration,
}

impl Run {
    /// Successful answers per second.
    pub fn throughput(&self) -> f64 {
        self.latency.len() as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// Adds another slice of the same run.
    pub fn absorb(&mut self, other: Run) {
        self.latency.extend(other.latency);
        self.ttft.extend(other.ttft);
        self.sent += other.sent;
        self.errors += other.errors;
        self.shed += other.shed;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.wall += other.wall;
    }

    fn record(&mut self, result: Result<(Duration, Option<Duration>), String>) {
        match result {
            Ok((latency, ttft)) => {
                self.latency.push(latency);
                self.ttft.extend(ttft);
            }
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }
}

/// `rate × duration` requests on a fixed schedule; waits for all answers.
pub fn open_loop(rt: &Handle, target: &Arc<Target>, mode: Mode, rate: f64, duration: Duration) -> Run {
    let n = (rate * duration.as_secs_f64()).round().max(1.0) as usize;
    let (tx, rx) = std::sync::mpsc::channel();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let mut run = Run::default();
    let start = Instant::now() + Duration::from_millis(5);
    for i in 0..n {
        let scheduled = start + Duration::from_secs_f64(i as f64 / rate);
        let now = Instant::now();
        if scheduled > now {
            std::thread::sleep(scheduled - now);
        }
        if in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
            run.shed += 1;
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        run.sent += 1;
        let (target, tx, in_flight) = (target.clone(), tx.clone(), in_flight.clone());
        rt.spawn(async move {
            let result = target
                .call(mode, i)
                .await
                .map(|answer| (answer.done - scheduled, answer.first_token.map(|t| t - scheduled)));
            in_flight.fetch_sub(1, Ordering::Relaxed);
            let _ = tx.send((result, Instant::now()));
        });
    }
    drop(tx);
    let mut last = start;
    for (result, at) in rx {
        last = last.max(at);
        run.record(result);
    }
    run.wall = last.saturating_duration_since(start);
    run
}

/// `concurrency` clients, each sending its next request as soon as the
/// last one is answered, for `duration`.
pub fn closed_loop(
    rt: &Handle,
    target: &Arc<Target>,
    mode: Mode,
    concurrency: usize,
    duration: Duration,
) -> Run {
    let start = Instant::now();
    let deadline = start + duration;
    let results = rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for client in 0..concurrency {
            let target = target.clone();
            tasks.spawn(async move {
                let mut out = Vec::new();
                let mut i = client;
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let result = target
                        .call(mode, i)
                        .await
                        .map(|a| (a.done - sent, a.first_token.map(|t| t - sent)));
                    out.push(result);
                    i += concurrency;
                }
                (out, Instant::now())
            });
        }
        let mut all = Vec::new();
        let mut last = start;
        while let Some(done) = tasks.join_next().await {
            let (out, at) = done.expect("client task");
            all.extend(out);
            last = last.max(at);
        }
        (all, last)
    });
    let mut run = Run::default();
    let (all, last) = results;
    run.sent = all.len();
    for result in all {
        run.record(result);
    }
    run.wall = last.saturating_duration_since(start);
    run
}

/// Percentile `p` (0-100) of `samples`, nearest rank; zero when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// p50, p99 and p99.9 of `samples`.
#[derive(Clone, Copy, Default)]
pub struct Percentiles {
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
}

impl Percentiles {
    pub fn of(samples: &[Duration]) -> Percentiles {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        Percentiles {
            p50: percentile(&sorted, 50.0),
            p99: percentile(&sorted, 99.0),
            p999: percentile(&sorted, 99.9),
        }
    }
}
