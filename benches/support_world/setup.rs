//! The tenant's side of the world in Bounty: the help center uploaded as a
//! knowledge source, and the support agent with the shop's tools, the
//! knowledge, hand-off and its verifiers, through the public API.

use serde_json::{Value, json};

use super::bounty::Api;
use super::world::World;

/// Documents per upload request (the API's limit).
const BATCH: usize = 50;

/// Uploads every article; the knowledge source's id.
pub async fn knowledge(api: &Api, world: &World) -> Result<String, String> {
    let docs: Vec<Value> = world
        .articles
        .iter()
        .map(|a| json!({"name": a.name, "format": "markdown", "content": a.markdown}))
        .collect();
    let mut batches = docs.chunks(BATCH);
    let first = batches.next().unwrap_or_default();
    let (status, body) = api
        .post(
            "/v1/knowledge",
            &json!({"name": "Help center", "kind": "upload", "documents": first}),
        )
        .await;
    let id = body["id"]
        .as_str()
        .filter(|_| status == 201)
        .ok_or_else(|| format!("POST /v1/knowledge: {status} {body}"))?
        .to_owned();
    for batch in batches {
        let (status, body) = api
            .post(
                &format!("/v1/knowledge/{id}/documents"),
                &json!({"documents": batch}),
            )
            .await;
        if status >= 300 {
            return Err(format!("POST /v1/knowledge/{id}/documents: {status} {body}"));
        }
    }
    Ok(id)
}

const INSTRUCTIONS: &str = "You are the support agent of an online shop. Answer the customer's \
ticket from the help-center articles below and the shop's tools. Cite the article you rely on by \
its chunk id in square brackets. Look orders up before you say anything about them; issue a \
refund only when the refund policy allows it. If the ticket lacks the order number, ask for it. \
If only a person can help, hand the ticket off.";

/// The shop's tools, in the agent's definition.
pub fn tools(shop_url: &str, secret: &str) -> Value {
    let order = json!({"type": "object", "properties": {"order_id": {"type": "string",
        "pattern": "^ORD-[0-9]{5}$", "description": "The order number, ORD- and five digits"}},
        "required": ["order_id"], "additionalProperties": false});
    let auth = json!({"Authorization": format!("Bearer {secret}")});
    json!([
        {"name": "lookup_order", "description": "Look an order up: item, amount, delivery date, \
            refund, and the last day of its refund window.",
         "parameters": order, "method": "GET", "url": format!("{shop_url}/orders/{{order_id}}"),
         "headers": auth, "timeout_ms": 5000, "side_effects": false},
        {"name": "get_shipment", "description": "The shipment of an order: carrier, tracking number, status.",
         "parameters": order, "method": "GET", "url": format!("{shop_url}/orders/{{order_id}}/shipment"),
         "headers": auth, "timeout_ms": 5000, "side_effects": false},
        {"name": "issue_refund", "description": "Refund an order in full to the original payment method.",
         "parameters": {"type": "object", "properties": {
             "order_id": {"type": "string", "pattern": "^ORD-[0-9]{5}$"},
             "reason": {"type": "string", "maxLength": 200}},
            "required": ["order_id", "reason"], "additionalProperties": false},
         "method": "POST", "url": format!("{shop_url}/orders/{{order_id}}/refunds"),
         "headers": auth, "timeout_ms": 5000, "side_effects": true},
    ])
}

/// The verifier policy: every answer cites what it retrieved (when
/// `grounded`), and the customer's signal decides.
pub fn policy(grounded: bool) -> Value {
    let first = if grounded {
        json!({"kind": "grounded"})
    } else {
        json!({"kind": "rules", "non_empty": true})
    };
    json!({"mode": "all_of", "verifiers": [first, {"kind": "external"}], "window_hours": 72})
}

/// The refund agent's policy: the refund tool returned 2xx, and the
/// customer's signal.
pub fn refund_policy() -> Value {
    json!({"mode": "all_of", "verifiers": [{"kind": "tool_succeeded", "tools": ["issue_refund"]},
        {"kind": "external"}], "window_hours": 72})
}

/// Creates the agent; its id.
pub async fn agent(
    api: &Api,
    name: &str,
    model: &str,
    tools: &Value,
    knowledge: &str,
    policy: &Value,
) -> Result<String, String> {
    let body = json!({
        "name": name,
        "instructions": INSTRUCTIONS,
        "model_route": [model],
        "tools": tools,
        "knowledge": [knowledge],
        "max_steps": 6,
        "handoff": true,
        "verifier_policy": policy,
    });
    let (status, out) = api.post("/v1/agents", &body).await;
    out["id"]
        .as_str()
        .filter(|_| status == 201)
        .map(str::to_owned)
        .ok_or_else(|| format!("POST /v1/agents: {status} {out}"))
}
