//! A reference agent loop, for the self-test: it plays Bounty's part over
//! the same wires (the skill models' OpenAI API, the shop's HTTP tools),
//! with perfect retrieval (the ticket's article goes into the system
//! prompt with made-up chunk ids), and the simulated customer. With
//! nothing lost in between, its resolution rate must equal the world's
//! theoretical maximum exactly, and every refund must be issued once: the
//! check that the world, the models, the shop and the customer agree
//! before Bounty is put between them.

use serde_json::{Value, json};

use super::customer::{Reaction, judge};
use super::rng::hash_str;
use super::shop::Shop;
use super::skill::MODEL;
use super::world::{Ticket, World};

/// How a conversation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Resolved,
    Escalated,
    Failed,
}

/// The tools as OpenAI `tools`.
pub fn openai_tools() -> Value {
    let order = json!({"type": "object", "properties": {"order_id": {"type": "string"}},
        "required": ["order_id"], "additionalProperties": false});
    json!([
        {"type": "function", "function": {"name": "lookup_order", "parameters": order}},
        {"type": "function", "function": {"name": "get_shipment", "parameters": order}},
        {"type": "function", "function": {"name": "issue_refund", "parameters": {"type": "object",
            "properties": {"order_id": {"type": "string"}, "reason": {"type": "string"}},
            "required": ["order_id", "reason"]}}},
        {"type": "function", "function": {"name": "handoff", "parameters": {"type": "object",
            "properties": {"reason": {"type": "string"}}, "required": ["reason"]}}},
    ])
}

fn system_prompt(world: &World, ticket: &Ticket) -> String {
    let mut system = String::from("You are the shop's support agent.\n\nKnowledge:\n");
    let mut articles: Vec<usize> = ticket.article.into_iter().collect();
    articles.push(2 + (ticket.id as usize % (world.articles.len() - 2)));
    for a in articles {
        for (i, section) in world.articles[a].markdown.split("\n## ").enumerate() {
            let id = hash_str(&format!("{}#{i}", world.articles[a].name));
            system.push_str(&format!("[kc_{id:016x}{id:016x}] {section}\n"));
        }
    }
    system
}

/// Plays one conversation of `ticket` in replay `trial`.
pub async fn converse(
    http: &reqwest::Client,
    models: &str,
    shop: &Shop,
    world: &World,
    ticket: &Ticket,
    trial: u32,
) -> End {
    let mut messages = vec![
        json!({"role": "system", "content": system_prompt(world, ticket)}),
        json!({"role": "user", "content": format!("Subject: {}\n\n{}", ticket.subject, ticket.body)}),
    ];
    let tools = openai_tools();
    for turn in 1..=3u32 {
        for step in 0..6 {
            let response: Value = http
                .post(format!("{models}/chat/completions"))
                .json(&json!({"model": MODEL, "messages": messages, "tools": tools}))
                .send()
                .await
                .expect("ask the model")
                .json()
                .await
                .expect("its answer");
            let message = response["choices"][0]["message"].clone();
            messages.push(message.clone());
            let Some(call) = message["tool_calls"].get(0) else {
                let answer = message["content"].as_str().unwrap_or_default();
                let refund = match ticket.order {
                    Some(o) => shop.refund_of(&world.orders[o].id).await.map(|r| r.0),
                    None => None,
                };
                match judge(world, ticket, turn, answer, refund.as_deref()) {
                    Reaction::Solved => return End::Resolved,
                    Reaction::Reject => return End::Failed,
                    Reaction::Reply(text) => {
                        messages.push(json!({"role": "user", "content": text}));
                        break;
                    }
                }
            };
            let name = call["function"]["name"].as_str().unwrap_or_default();
            if name == "handoff" {
                return End::Escalated;
            }
            let args: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap_or("{}"))
                .unwrap_or_default();
            let order = args["order_id"].as_str().unwrap_or_default();
            let base = format!("{}/orders/{order}", shop.base_url());
            let request = match name {
                "lookup_order" => http.get(base),
                "get_shipment" => http.get(format!("{base}/shipment")),
                _ => http
                    .post(format!("{base}/refunds"))
                    .header(
                        "idempotency-key",
                        format!("t{}-r{trial}-turn{turn}-s{step}", ticket.id),
                    )
                    .json(&json!({"reason": args["reason"]})),
            };
            let result = request
                .bearer_auth(shop.secret())
                .send()
                .await
                .expect("call the tool");
            let status = result.status().as_u16();
            let body = result.text().await.unwrap_or_default();
            messages.push(json!({"role": "tool", "tool_call_id": call["id"],
                "content": format!("HTTP {status}\n{body}")}));
        }
    }
    End::Failed
}
