//! A conversation over Bounty's API, driven the way a helpdesk and its
//! customer drive one: the ticket is submitted (`POST /v1/tasks`), each
//! answer is read from the task, and the customer reacts: `solved` or a
//! 1-star `csat` on the outcome (`POST /v1/outcomes/{id}/signals`), or a
//! reply that continues the task as a new turn (`POST
//! /v1/tasks/{id}/messages`). The skill models count their final answers
//! per ticket, so a conversation waits on that instead of polling hard,
//! then reads the task until the worker has finished the turn.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::bounty::Api;
use super::customer::{Reaction, judge};
use super::driver::End;
use super::shop::Shop;
use super::timeline::Timeline;
use super::world::{Ticket, World};

/// How one conversation went.
#[derive(Debug, Clone)]
pub struct Conversation {
    pub ticket: u32,
    pub end: End,
    pub turns: u32,
    /// Charged, in micros (0 unless resolved).
    pub amount_micros: i64,
    /// Why it failed without a customer's verdict (an error code, a timeout).
    pub error: Option<String>,
}

const TURN_TIMEOUT: Duration = Duration::from_secs(90);
const MAX_TURNS: u32 = 4;

fn busy(task: &Value) -> bool {
    matches!(task["status"].as_str(), Some("queued" | "running") | None)
}

/// Reads the task until its turn is over: not queued or running.
pub async fn settled(api: &Api, id: &str, timeout: Duration) -> Option<Value> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    loop {
        let (status, task) = api.get(&format!("/v1/tasks/{id}")).await;
        if status == 200 && !busy(&task) {
            return Some(task);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Submits `ticket` to `agent` and plays the customer to the end.
pub async fn converse(
    api: &Api,
    agent: &str,
    world: &World,
    shop: &Shop,
    timeline: &Timeline,
    ticket: &Ticket,
    trial: u32,
) -> Conversation {
    let mut conv = Conversation {
        ticket: ticket.id,
        end: End::Failed,
        turns: 0,
        amount_micros: 0,
        error: None,
    };
    let fail = |mut conv: Conversation, why: String| {
        conv.error = Some(why);
        conv
    };
    let mut seen = timeline.answers(ticket.id);
    let (status, task) = api
        .post(
            "/v1/tasks",
            &json!({"agent": agent, "input": {"subject": ticket.subject, "body": ticket.body},
                "external_ref": format!("T{:05}/r{trial}", ticket.id)}),
        )
        .await;
    let Some(id) = task["id"].as_str().filter(|_| status < 300).map(str::to_owned) else {
        return fail(conv, format!("POST /v1/tasks: {status} {task}"));
    };
    loop {
        conv.turns += 1;
        timeline.wait_answer(ticket.id, seen, TURN_TIMEOUT).await;
        seen = timeline.answers(ticket.id);
        let Some(task) = settled(api, &id, TURN_TIMEOUT).await else {
            let why = format!("turn {} timed out", conv.turns);
            return fail(conv, why);
        };
        if task["status"] == "failed" {
            let code = task["error"]["code"].as_str().unwrap_or("failed").to_owned();
            return fail(conv, code);
        }
        let outcome_id = task["outcome"]["id"].as_str().map(str::to_owned);
        match task["outcome"]["status"].as_str() {
            Some("escalated") => {
                conv.end = End::Escalated;
                return conv;
            }
            Some("failed") => return conv,
            Some("resolved") => {
                conv.end = End::Resolved;
                return conv;
            }
            _ => {}
        }
        let answer = task["output"]["text"].as_str().unwrap_or_default();
        let refund = match ticket.order {
            Some(o) => shop.refund_of(&world.orders[o].id).await.map(|r| r.0),
            None => None,
        };
        let signal = match judge(world, ticket, conv.turns, answer, refund.as_deref()) {
            Reaction::Reply(text) if conv.turns < MAX_TURNS => {
                let (status, body) = api
                    .post(&format!("/v1/tasks/{id}/messages"), &json!({"body": text}))
                    .await;
                if status >= 300 {
                    return fail(conv, format!("POST messages: {status} {body}"));
                }
                continue;
            }
            Reaction::Solved => json!({"kind": "solved"}),
            Reaction::Reply(_) | Reaction::Reject => json!({"kind": "csat", "score": 1}),
        };
        let Some(outcome) = outcome_id else {
            return fail(conv, "no outcome to signal".to_owned());
        };
        let (status, body) = api
            .post(&format!("/v1/outcomes/{outcome}/signals"), &signal)
            .await;
        if status >= 300 {
            return fail(conv, format!("signal: {status} {body}"));
        }
        if body["status"] == "resolved" {
            conv.end = End::Resolved;
            conv.amount_micros = body["amount_micros"].as_i64().unwrap_or(0);
        }
        return conv;
    }
}
