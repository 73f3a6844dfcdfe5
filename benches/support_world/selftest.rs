//! `--self-test`: the world, the shop, the skill models, the customer and
//! the report checked without Bounty (a harness-less bench has no
//! `#[test]`s; this is where its unit tests live).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::report::{self, pass_hat, percentile};
use super::runs;
use super::shop::{Moment, Shop};
use super::skill::{Act, Conversation, SKILLS};
use super::timeline::{Event, Kind, Timeline, step_overheads};
use super::world::{Class, World};
use crate::Args;

async fn json_of(request: reqwest::RequestBuilder) -> Result<Value, String> {
    let response = request.send().await.map_err(|e| e.to_string())?;
    response.json().await.map_err(|e| e.to_string())
}

fn ensure(ok: bool, what: impl Into<String>) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what.into()) }
}

/// Runs every check; a line saying what was checked.
pub async fn run(args: &Args, world: Arc<World>) -> Result<String, String> {
    report_math()?;
    transcript_tools()?;
    overhead_math()?;
    models(&world)?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let shop = Shop::start(dir.path(), world.clone(), Arc::new(Timeline::default())).await;
    shop_rules(&shop, &world).await?;
    let summary = runs::reference(args, world.clone()).await;
    ensure(
        summary.resolution == summary.max_resolution,
        format!(
            "the reference loop resolves {} but the draws allow {}",
            summary.resolution, summary.max_resolution
        ),
    )?;
    ensure(
        (summary.max_resolution - summary.expected_max).abs() < 0.05,
        format!(
            "the draws ({}) stray from the skills' expectation ({})",
            summary.max_resolution, summary.expected_max
        ),
    )?;
    Ok(format!(
        "world of {} articles and {} tickets; shop rules; models; report; reference loop {} conversations at \
         the maximum {}",
        world.articles.len(),
        world.tickets.len(),
        summary.conversations,
        report::pct(summary.max_resolution)
    ))
}

fn report_math() -> Result<(), String> {
    // Two tickets, four tries: 4/4 and 2/4 succeed.
    let p = pass_hat(&[4, 2], 4);
    ensure((p[0] - 0.75).abs() < 1e-9, format!("pass^1 {p:?}"))?;
    ensure(
        (p[1] - (1.0 + 1.0 / 6.0) / 2.0).abs() < 1e-9,
        format!("pass^2 {p:?}"),
    )?;
    ensure((p[3] - 0.5).abs() < 1e-9, format!("pass^4 {p:?}"))?;
    let v: Vec<u64> = (1..=100).collect();
    ensure(
        percentile(&v, 0.5) == 50 && percentile(&v, 0.99) == 99,
        "percentiles",
    )?;
    ensure(percentile(&[], 0.5) == 0, "empty percentile")
}

fn transcript_tools() -> Result<(), String> {
    let transcript = json!([
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "lookup_order", "arguments": "{}"}}]},
        {"step": 2, "tool": "issue_refund", "arguments": {"order_id": "ORD-10001"}, "status": 201},
        {"role": "tool", "content": "{\"tool\": \"not a call\"}"},
        {"tool_calls": [{"attempt": 1, "turn": 1, "seq": 3, "tool": "handoff", "arguments": {}}]},
    ]);
    let mut names = Vec::new();
    runs::tool_calls(&transcript, &mut names);
    ensure(
        names == ["lookup_order", "issue_refund", "handoff"],
        format!("tool calls in a transcript: {names:?}"),
    )
}

fn overhead_math() -> Result<(), String> {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let ev = |ticket, kind, s, e| Event {
        ticket,
        kind,
        start: at(s),
        end: at(e),
    };
    let events = vec![
        ev(1, Kind::Model { tool_calls: true }, 0, 10),
        ev(2, Kind::Model { tool_calls: true }, 1, 5),
        ev(1, Kind::Tool, 12, 20),
        ev(1, Kind::Model { tool_calls: false }, 23, 30),
        ev(2, Kind::Tool, 6, 7),
    ];
    let mut o = step_overheads(&events);
    o.sort_unstable();
    // Ticket 1: 23 - 10 - 8 = 5 ms; ticket 2 never asked the model again.
    ensure(o == vec![5_000], format!("overheads {o:?}"))
}

fn models(world: &World) -> Result<(), String> {
    let faq = world
        .tickets
        .iter()
        .find(|t| t.class == Class::Faq)
        .ok_or("a faq ticket")?;
    let article = &world.articles[faq.article.unwrap_or_default()];
    let system = format!(
        "Be kind.\n[kc_{0}] unrelated text\n[kc_{1}] {2}",
        "0".repeat(32),
        "a".repeat(32),
        article.markdown
    );
    let body = json!({"messages": [{"role": "system", "content": system},
        {"role": "user", "content": format!("Subject: {}\n\n{}", faq.subject, faq.body)}]});
    let c = Conversation::read(&body);
    match super::skill::decide(world, faq, true, &c) {
        Act::Answer(a) => ensure(
            a.contains(article.code.as_deref().unwrap_or("?"))
                && a.contains(&format!("[kc_{}]", "a".repeat(32))),
            format!("a good FAQ answer cites and carries the code: {a}"),
        )?,
        other => return Err(format!("a FAQ needs no tool: {other:?}")),
    }
    let multi = world
        .tickets
        .iter()
        .find(|t| t.class == Class::MultiTurn)
        .ok_or("a multi-turn ticket")?;
    let mut body = json!({"messages": [{"role": "user", "content": format!("Subject: {}\n\n{}", multi.subject, multi.body)}],
        "tools": [{"type": "function", "function": {"name": "lookup_order"}},
                  {"type": "function", "function": {"name": "get_shipment"}}]});
    let ask = super::skill::decide(world, multi, true, &Conversation::read(&body));
    ensure(
        matches!(&ask, Act::Answer(a) if a.contains("order number")),
        format!("asks for the order number: {ask:?}"),
    )?;
    body["messages"]
        .as_array_mut()
        .ok_or("messages")?
        .push(json!({"role": "user", "content": multi.reply}));
    let order = &world.orders[multi.order.unwrap_or_default()].id;
    let next = super::skill::decide(world, multi, true, &Conversation::read(&body));
    ensure(
        next == Act::Call {
            name: "lookup_order".into(),
            arguments: json!({"order_id": order}),
        },
        format!("looks the order up: {next:?}"),
    )?;
    let unsolvable = world
        .tickets
        .iter()
        .find(|t| t.class == Class::Unsolvable)
        .ok_or("an unsolvable ticket")?;
    let body = json!({"messages": [{"role": "user", "content": unsolvable.subject}],
        "tools": [{"type": "function", "function": {"name": "handoff"}}]});
    let act = super::skill::decide(world, unsolvable, true, &Conversation::read(&body));
    ensure(
        matches!(&act, Act::Call { name, .. } if name == "handoff"),
        format!("hands off: {act:?}"),
    )?;
    // Draws are fixed by (seed, model, ticket, trial), and near the skill.
    let t = &world.tickets[0];
    ensure(
        (0..8).all(|r| SKILLS.succeeds(1, "m", t, r) == SKILLS.succeeds(1, "m", t, r)),
        "draws are pure",
    )
}

async fn shop_rules(shop: &Shop, world: &World) -> Result<(), String> {
    shop.reset().await;
    let http = reqwest::Client::new();
    let base = shop.base_url();
    let eligible = world
        .orders
        .iter()
        .find(|o| o.refundable())
        .ok_or("a refundable order")?;
    let late = world
        .orders
        .iter()
        .find(|o| o.delivered_on.is_some() && !o.refundable())
        .ok_or("a late order")?;
    let get = |path: String, auth: bool| {
        let r = http.get(format!("{base}{path}"));
        if auth { r.bearer_auth(shop.secret()) } else { r }
    };
    let refund = |order: &str, key: Option<&str>| {
        let mut r = http
            .post(format!("{base}/orders/{order}/refunds"))
            .bearer_auth(shop.secret())
            .json(&json!({"reason": "test"}));
        if let Some(k) = key {
            r = r.header("idempotency-key", k);
        }
        r.send()
    };
    let status = |r: Result<reqwest::Response, reqwest::Error>| r.map(|r| r.status().as_u16()).unwrap_or(0);
    ensure(
        status(get(format!("/orders/{}", eligible.id), false).send().await) == 401,
        "401 without the token",
    )?;
    let order = json_of(get(format!("/orders/{}", eligible.id), true)).await?;
    ensure(
        order["order_id"] == eligible.id.as_str() && order["refund"].is_null(),
        format!("the order: {order}"),
    )?;
    let ship = json_of(get(format!("/orders/{}/shipment", eligible.id), true)).await?;
    ensure(
        ship["tracking_number"] == eligible.tracking.as_str(),
        format!("the shipment: {ship}"),
    )?;
    ensure(
        status(refund(&eligible.id, None).await) == 400,
        "a refund needs a key",
    )?;
    let first = refund(&eligible.id, Some("k1"))
        .await
        .map_err(|e| e.to_string())?;
    ensure(first.status() == 201, format!("refund: {}", first.status()))?;
    let first: Value = first.json().await.map_err(|e| e.to_string())?;
    let again = refund(&eligible.id, Some("k1"))
        .await
        .map_err(|e| e.to_string())?;
    ensure(
        again.status() == 200 && again.headers().get("idempotent-replayed").is_some(),
        "the same key replays",
    )?;
    let again: Value = again.json().await.map_err(|e| e.to_string())?;
    ensure(again["refund_id"] == first["refund_id"], "the same refund")?;
    ensure(
        status(refund(&eligible.id, Some("k2")).await) == 409,
        "refunded once only",
    )?;
    ensure(
        status(refund(&late.id, Some("k3")).await) == 422,
        "outside the window",
    )?;
    ensure(
        status(refund("ORD-99999", Some("k4")).await) == 404,
        "unknown order",
    )?;
    let audit = shop.audit().await;
    ensure(
        audit.refunds == 1
            && audit.orders_refunded_twice == 0
            && audit.orders_with_several_keys == 1
            && audit.replays == 1
            && audit.requests == 5,
        format!("the audit sees the second key: {audit:?}"),
    )?;
    shop.reset().await;
    ensure(shop.audit().await.refunds == 0, "reset forgets refunds")?;
    let fired = shop.arm_kill(Moment::RefundCommitted, 1, Duration::from_millis(50));
    ensure(
        status(refund(&eligible.id, Some("k5")).await) == 201,
        "refund after reset",
    )?;
    ensure(fired.await.is_ok(), "the kill hook fires on the first refund")?;
    shop.reset().await;
    Ok(())
}
