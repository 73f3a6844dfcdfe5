//! Simulated models of fixed skill on the OpenAI wire: an axum server
//! answering `POST /v1/chat/completions` the way a tool-calling model does.
//!
//! It reads the whole request, as a model would: the ticket (by the tag in
//! the first user message), the tools offered (`tools[].function.name`),
//! the knowledge chunks in the system prompt (`[kc_…]` ids followed by
//! their text), the assistant's earlier `tool_calls` and the `tool`
//! results. Whether it handles the ticket well is drawn once per (model,
//! ticket, replay) from the seed, with the model's skill for the ticket's
//! class as the probability; the draw is a pure function, so the
//! theoretical maximum resolution rate of a run is known before it starts
//! ([`Skills::succeeds`]).
//!
//! A model that succeeds does what the ticket needs, one step per request:
//! looks the order up, reads the shipment, issues the refund when the
//! policy allows it (and not when it does not), asks for a missing order
//! number, hands an unsolvable ticket off, and answers with the facts it
//! read from the tool results, citing the chunk that holds the policy or
//! the article. One that fails answers at once, vaguely, without tools or
//! citations (and never hands off), which a customer rejects.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};

use super::rng::{draw, hash_str};
use super::timeline::{Kind, Timeline};
use super::world::{Class, Ticket, World, order_ids};

/// The model's name on the wire (and in Bounty's config).
pub const MODEL: &str = "support-llm";

/// The probability of handling a ticket of each class well, in
/// [`Class::ALL`] order.
#[derive(Debug, Clone, Copy)]
pub struct Skills(pub [f64; 5]);

/// The skills of [`MODEL`]: FAQ, order status, refund, multi-turn, and
/// handing off the unsolvable.
pub const SKILLS: Skills = Skills([0.95, 0.92, 0.90, 0.85, 0.90]);

impl Skills {
    /// Whether `model` handles `ticket` well in replay `trial`.
    pub fn succeeds(&self, seed: u64, model: &str, ticket: &Ticket, trial: u32) -> bool {
        draw(&[seed, hash_str(model), u64::from(ticket.id), u64::from(trial)]) < self.0[ticket.class.index()]
    }
}

struct Shared {
    world: Arc<World>,
    skills: Skills,
    trial: AtomicU32,
    timeline: Arc<Timeline>,
    ids: AtomicU64,
    /// Final answers of good draws that found no chunk to cite, by class:
    /// retrieval did not put the article in the prompt.
    misses: std::sync::Mutex<[usize; 5]>,
}

/// The running server.
pub struct SkillModels {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl SkillModels {
    pub async fn start(world: Arc<World>, skills: Skills, timeline: Arc<Timeline>) -> SkillModels {
        let shared = Arc::new(Shared {
            world,
            skills,
            trial: AtomicU32::new(0),
            timeline,
            ids: AtomicU64::new(0),
            misses: std::sync::Mutex::new([0; 5]),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the skill models");
        let addr = listener.local_addr().expect("their address");
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/embeddings", post(embeddings))
            .with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        SkillModels { addr, shared }
    }

    /// `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Takes the retrieval misses counted so far, by class.
    pub fn take_misses(&self) -> [usize; 5] {
        std::mem::take(&mut *self.shared.misses.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The replay the next requests belong to.
    pub fn set_trial(&self, trial: u32) {
        self.shared.trial.store(trial, Ordering::SeqCst);
    }
}

/// The text of a message's `content`: a string, or the text parts.
fn content(message: &Value) -> String {
    match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// What the request holds, read as a model reads it.
pub struct Conversation {
    pub system: String,
    /// The user messages, in order.
    pub users: Vec<String>,
    /// Tool names offered.
    pub tools: Vec<String>,
    /// `(tool name, result text)` of each answered tool call, in order.
    pub results: Vec<(String, String)>,
    pub prompt_words: u64,
}

impl Conversation {
    pub fn read(body: &Value) -> Conversation {
        let messages = body
            .get("messages")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut calls: Vec<(String, String)> = Vec::new();
        let mut c = Conversation {
            system: String::new(),
            users: Vec::new(),
            tools: body
                .get("tools")
                .and_then(Value::as_array)
                .map(|ts| {
                    ts.iter()
                        .filter_map(|t| t.pointer("/function/name").and_then(Value::as_str))
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            results: Vec::new(),
            prompt_words: 0,
        };
        for m in &messages {
            let text = content(m);
            c.prompt_words += text.split_whitespace().count() as u64;
            match m.get("role").and_then(Value::as_str) {
                Some("system") => {
                    c.system.push_str(&text);
                    c.system.push('\n');
                }
                Some("user") => c.users.push(text),
                Some("assistant") => {
                    for call in m
                        .get("tool_calls")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let id = call.get("id").and_then(Value::as_str).unwrap_or_default();
                        let name = call
                            .pointer("/function/name")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        calls.push((id.to_owned(), name.to_owned()));
                    }
                }
                Some("tool") => {
                    let id = m.get("tool_call_id").and_then(Value::as_str).unwrap_or_default();
                    let name = calls
                        .iter()
                        .find(|(i, _)| i == id)
                        .map(|(_, n)| n.clone())
                        .unwrap_or_default();
                    c.results.push((name, text));
                }
                _ => {}
            }
        }
        c
    }

    /// The last result of tool `name`, parsed from its first `{`.
    fn result(&self, name: &str) -> Option<Value> {
        let (_, text) = self.results.iter().rev().find(|(n, _)| n == name)?;
        let start = text.find('{')?;
        serde_json::Deserializer::from_str(&text[start..])
            .into_iter::<Value>()
            .next()?
            .ok()
            .or(Some(Value::Null))
    }

    fn offers(&self, tool: &str) -> bool {
        self.tools.iter().any(|t| t == tool)
    }

    /// The id of the first chunk in the system prompt whose text holds
    /// every one of `needles` (lower case).
    pub fn chunk_with(&self, needles: &[&str]) -> Option<(String, String)> {
        let mut parts = self.system.split("[kc_").skip(1);
        parts.find_map(|part| {
            let end = part.find(']')?;
            let text = part[end + 1..].to_lowercase();
            needles
                .iter()
                .all(|n| text.contains(n))
                .then(|| (format!("kc_{}", &part[..end]), part[end + 1..].to_owned()))
        })
    }
}

/// One step of a model.
#[derive(Debug, Clone, PartialEq)]
pub enum Act {
    Call { name: String, arguments: Value },
    Answer(String),
}

fn call(name: &str, arguments: Value) -> Act {
    Act::Call {
        name: name.to_owned(),
        arguments,
    }
}

fn cite(c: &Conversation, needles: &[&str]) -> String {
    c.chunk_with(needles)
        .map(|(id, _)| format!(" [{id}]"))
        .unwrap_or_default()
}

/// What a model does next with `ticket`, given whether it handles it well.
pub fn decide(world: &World, ticket: &Ticket, good: bool, c: &Conversation) -> Act {
    if !good {
        let vague = match ticket.class {
            Class::Faq => "You can usually find this under Settings. Let me know if that helps.",
            Class::OrderStatus | Class::MultiTurn => "Your parcel is on its way and should arrive soon.",
            Class::Refund => "I have passed your refund request on; you will hear from us.",
            Class::Unsolvable => "I have taken care of that for you.",
        };
        return Act::Answer(vague.to_owned());
    }
    let not_found = || Act::Answer("I could not find what I need to answer this; I am not sure.".to_owned());
    match ticket.class {
        Class::Faq => {
            let keyword = &world.articles[ticket.article.unwrap_or_default()].keyword;
            let Some((id, text)) = c.chunk_with(&[keyword, "confirmation code"]) else {
                return not_found();
            };
            let code: String = text
                .split("confirmation code ")
                .nth(1)
                .unwrap_or_default()
                .chars()
                .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '-')
                .collect();
            Act::Answer(format!(
                "Open Settings, choose the feature, and when asked enter the confirmation code {code}. [{id}]"
            ))
        }
        Class::Unsolvable if c.offers("handoff") => call(
            "handoff",
            json!({"reason": "The customer needs a person: this is outside what I can do."}),
        ),
        Class::Unsolvable => Act::Answer("A colleague will have to help you with this.".to_owned()),
        Class::OrderStatus | Class::MultiTurn | Class::Refund => {
            let Some(order) = c.users.iter().flat_map(|u| order_ids(u)).last() else {
                return Act::Answer(format!(
                    "I can look that up for you. Could you tell me your order number? It looks like ORD-12345.{}",
                    cite(c, &["parcel"])
                ));
            };
            let needed = if ticket.class == Class::Refund {
                "issue_refund"
            } else {
                "get_shipment"
            };
            if !c.offers("lookup_order") || !c.offers(needed) {
                return Act::Answer("I cannot look orders up right now.".to_owned());
            }
            let Some(looked) = c.result("lookup_order") else {
                return call("lookup_order", json!({"order_id": order}));
            };
            if looked.get("order_id").is_none() {
                return not_found();
            }
            if ticket.class == Class::Refund {
                refund_step(c, &order, &looked)
            } else {
                let Some(shipment) = c.result("get_shipment") else {
                    return call("get_shipment", json!({"order_id": order}));
                };
                let (Some(status), Some(tracking)) = (
                    shipment.get("status").and_then(Value::as_str),
                    shipment.get("tracking_number").and_then(Value::as_str),
                ) else {
                    return not_found();
                };
                let carrier = shipment
                    .get("carrier")
                    .and_then(Value::as_str)
                    .unwrap_or("the courier");
                let when = match status {
                    "delivered" => format!(
                        "was delivered on {}",
                        shipment
                            .get("delivered_on")
                            .and_then(Value::as_str)
                            .unwrap_or("?")
                    ),
                    _ => format!(
                        "is in transit, expected on {}",
                        shipment.get("expected_on").and_then(Value::as_str).unwrap_or("?")
                    ),
                };
                Act::Answer(format!(
                    "Your parcel for order {order} {when}. It travels with {carrier}, tracking number {tracking}.{}",
                    cite(c, &["parcel"])
                ))
            }
        }
    }
}

fn refund_step(c: &Conversation, order: &str, looked: &Value) -> Act {
    let policy = cite(c, &["refund", "30 days"]);
    if let Some(done) = c.result("issue_refund") {
        return match done.get("refund_id").and_then(Value::as_str) {
            Some(id) => Act::Answer(format!(
                "I have refunded order {order} in full: refund {id}, back on your card within five working days.{policy}"
            )),
            None => Act::Answer(format!(
                "I could not refund order {order}: the shop refused it.{policy}"
            )),
        };
    }
    // Eligibility is read from the delivery window only: whether the order
    // was refunded before is left to the shop, which dedupes by the
    // idempotency key, so a step retried after a crash asks again with the
    // same key (what the kill runs prove).
    let today = looked.get("today").and_then(Value::as_str).unwrap_or_default();
    match looked.get("refund_window_ends_on").and_then(Value::as_str) {
        Some(ends) if ends >= today => call(
            "issue_refund",
            json!({"order_id": order, "reason": "The item is not what the customer expected."}),
        ),
        _ => Act::Answer(format!(
            "Order {order} is outside our refund window: we refund within 30 days of delivery, so I cannot refund it.{policy}"
        )),
    }
}

/// Width of the simulated embeddings.
pub const EMBEDDING_DIM: usize = 256;

/// Words too common to say what a text is about.
const STOPWORDS: &[&str] = &[
    "about", "after", "also", "been", "cannot", "could", "does", "each", "every", "from", "have", "hello",
    "into", "just", "like", "more", "once", "only", "please", "should", "some", "than", "that", "their",
    "them", "then", "there", "these", "they", "this", "what", "when", "where", "which", "while", "will",
    "with", "within", "would", "your",
];

/// A simulated sentence embedding: the text's content words (four letters
/// or more, not a stopword, lower case), hashed into [`EMBEDDING_DIM`]
/// signed buckets with a sublinear count, L2-normalized. Texts sharing
/// their rarer words end up close, which is what a real embedding model
/// gives retrieval here; the workspace fake's 16 buckets are too few for
/// 220 articles.
pub fn embed(text: &str) -> Vec<f32> {
    let mut counts: std::collections::HashMap<String, f32> = std::collections::HashMap::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        let w = word.to_lowercase();
        if w.chars().count() >= 4 && !STOPWORDS.contains(&w.as_str()) {
            *counts.entry(w).or_insert(0.0) += 1.0;
        }
    }
    let mut v = vec![0f32; EMBEDDING_DIM];
    for (word, n) in counts {
        let h = hash_str(&word);
        let sign = if (h >> 40) & 1 == 0 { 1.0 } else { -1.0 };
        v[(h % EMBEDDING_DIM as u64) as usize] += sign * (1.0 + n.ln());
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        v[0] = 1.0;
    } else {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// `POST /v1/embeddings` for hybrid retrieval: [`embed`] of each input,
/// as OpenAI shapes the answer.
async fn embeddings(Json(body): Json<Value>) -> Json<Value> {
    let inputs: Vec<String> = match body.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    let words: usize = inputs.iter().map(|t| t.split_whitespace().count()).sum();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| json!({"object": "embedding", "index": index, "embedding": embed(text)}))
        .collect();
    Json(json!({"object": "list", "data": data, "model": body.get("model"),
        "usage": {"prompt_tokens": words, "total_tokens": words}}))
}

async fn chat(State(s): State<Arc<Shared>>, Json(body): Json<Value>) -> Json<Value> {
    let start = Instant::now();
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(MODEL)
        .to_owned();
    let c = Conversation::read(&body);
    let ticket = c
        .users
        .iter()
        .find_map(|u| s.world.ticket_in(u))
        .or_else(|| s.world.ticket_in(&c.system));
    let trial = s.trial.load(Ordering::SeqCst);
    let act = match ticket {
        Some(t) => {
            let good = s.skills.succeeds(s.world.seed, &model, t, trial);
            let act = decide(&s.world, t, good, &c);
            if good && t.article.is_some() && matches!(&act, Act::Answer(a) if !a.contains("[kc_")) {
                s.misses.lock().unwrap_or_else(|p| p.into_inner())[t.class.index()] += 1;
            }
            act
        }
        None => Act::Answer("I am not sure which ticket this is.".to_owned()),
    };
    let n = s.ids.fetch_add(1, Ordering::Relaxed);
    let (message, finish, words) = match &act {
        Act::Call { name, arguments } => {
            let arguments = arguments.to_string();
            let words = arguments.split_whitespace().count() as u64;
            (
                json!({"role": "assistant", "content": null, "tool_calls": [{
                    "id": format!("call_{n}"), "type": "function",
                    "function": {"name": name, "arguments": arguments}}]}),
                "tool_calls",
                words,
            )
        }
        Act::Answer(text) => (
            json!({"role": "assistant", "content": text}),
            "stop",
            text.split_whitespace().count() as u64,
        ),
    };
    let (prompt, completion) = (c.prompt_words.max(1), words.max(1));
    let response = json!({
        "id": format!("chatcmpl-sw{n}"),
        "object": "chat.completion",
        "created": 1_780_000_000u64,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    });
    if let Some(t) = ticket {
        let is_call = matches!(act, Act::Call { ref name, .. } if name != "handoff");
        s.timeline
            .record(t.id, Kind::Model { tool_calls: is_call }, start);
        if !is_call {
            s.timeline.answered(t.id);
        }
    }
    Json(response)
}
