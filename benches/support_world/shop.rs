//! The fake shop: a real HTTP API (axum on `127.0.0.1:0`) over its own
//! SQLite database (sqlx), holding the world's orders, their shipments and
//! the refunds issued. The agent's tools call it.
//!
//! - `GET /orders/{id}`: the order, its delivery date, its refund (if any)
//!   and the last day the refund policy allows one.
//! - `GET /orders/{id}/shipment`: carrier, tracking number, status.
//! - `POST /orders/{id}/refunds` `{"reason"}`: needs an `Idempotency-Key`
//!   (400 without). A key seen before answers the refund it made (200,
//!   `Idempotent-Replayed: true`), whatever the order's state now. Else the
//!   policy: 404 for an unknown order, 409 `already_refunded`, 422
//!   `outside_refund_window` (not delivered, or delivered more than 30
//!   days ago); otherwise 201 with the new refund.
//!
//! Every request needs `Authorization: Bearer <secret>` (401 without),
//! which proves the agent's sealed tool headers reach it. Every refund
//! request is logged with its key, so a run can count refunds per order
//! and the distinct keys that asked for them: a retried step that sent a
//! new key would show as a second key even though the policy refused it.
//!
//! One connection serializes the writes: a refund's check and insert are
//! one transaction that nothing can interleave with.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path as FsPath;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use tokio::sync::oneshot;

use super::timeline::{Kind, Timeline};
use super::world::{REFUND_WINDOW_DAYS, World, today};

/// When a kill hook fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// A new refund was committed; its response is held for the hook's
    /// `hold`: the moment a worker is most dangerous to kill.
    RefundCommitted,
    /// A request of any kind was answered: a kill somewhere in a turn.
    Request,
}

/// Fires at the `after`-th [`Moment`] from when it was armed.
struct KillHook {
    moment: Moment,
    after: usize,
    hold: Duration,
    fire: oneshot::Sender<()>,
}

struct Shared {
    pool: SqlitePool,
    world: Arc<World>,
    secret: String,
    timeline: Arc<Timeline>,
    /// Order id to the ticket it belongs to.
    tickets: HashMap<String, u32>,
    refunds_committed: AtomicUsize,
    requests_answered: AtomicUsize,
    kill: Mutex<Option<KillHook>>,
}

/// The running shop; stops with the process.
#[derive(Clone)]
pub struct Shop {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

/// Refund counts after a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefundAudit {
    /// Refunds issued.
    pub refunds: usize,
    /// Orders with more than one refund row.
    pub orders_refunded_twice: usize,
    /// Orders asked to refund under more than one distinct key.
    pub orders_with_several_keys: usize,
    /// Requests answered from an idempotency key already seen.
    pub replays: usize,
    /// Refund requests, all outcomes.
    pub requests: usize,
}

const SCHEMA: &[&str] = &[
    "create table orders (id text primary key, item text not null, amount_cents integer not null, \
     ordered_on text not null, delivered_on text, carrier text not null, tracking text not null, \
     eta text not null)",
    "create table refunds (id text primary key, order_id text not null references orders (id), \
     amount_cents integer not null, idempotency_key text not null unique, reason text not null)",
    "create table refund_requests (seq integer primary key autoincrement, order_id text not null, \
     idempotency_key text, outcome text not null)",
];

impl Shop {
    /// Creates the database under `dir`, seeds it and serves.
    pub async fn start(dir: &FsPath, world: Arc<World>, timeline: Arc<Timeline>) -> Shop {
        let options = SqliteConnectOptions::new()
            .filename(dir.join("shop.db"))
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("open the shop database");
        for statement in SCHEMA {
            sqlx::query(*statement).execute(&pool).await.expect("shop schema");
        }
        let tickets = world
            .tickets
            .iter()
            .filter_map(|t| Some((world.orders[t.order?].id.clone(), t.id)))
            .collect();
        let shared = Arc::new(Shared {
            pool,
            world,
            secret: format!("shop-{:016x}", super::rng::hash_str(&dir.display().to_string())),
            timeline,
            tickets,
            refunds_committed: AtomicUsize::new(0),
            requests_answered: AtomicUsize::new(0),
            kill: Mutex::new(None),
        });
        let shop = Shop {
            addr: "127.0.0.1:0".parse().expect("an address"),
            shared,
        };
        shop.reset().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the shop");
        let addr = listener.local_addr().expect("the shop's address");
        let app = Router::new()
            .route("/orders/{id}", get(order))
            .route("/orders/{id}/shipment", get(shipment))
            .route("/orders/{id}/refunds", post(refund))
            .with_state(shop.shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Shop { addr, ..shop }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bearer token the shop wants.
    pub fn secret(&self) -> &str {
        &self.shared.secret
    }

    /// Back to the world's seeded state: every order, no refund.
    pub async fn reset(&self) {
        let mut tx = self.shared.pool.begin().await.expect("begin");
        for table in ["refund_requests", "refunds", "orders"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("delete from {table}")))
                .execute(&mut *tx)
                .await
                .expect("clear the shop");
        }
        for o in &self.shared.world.orders {
            sqlx::query("insert into orders values ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(&o.id)
                .bind(&o.item)
                .bind(o.amount_cents)
                .bind(o.ordered_on.to_string())
                .bind(o.delivered_on.map(|d| d.to_string()))
                .bind(&o.carrier)
                .bind(&o.tracking)
                .bind(o.eta.to_string())
                .execute(&mut *tx)
                .await
                .expect("seed an order");
        }
        tx.commit().await.expect("commit the seed");
        self.shared.refunds_committed.store(0, Ordering::SeqCst);
        self.shared.requests_answered.store(0, Ordering::SeqCst);
    }

    /// Arms the kill hook: `fire` is sent at the `after`-th `moment` from
    /// now, and that response is then held for `hold`.
    pub fn arm_kill(&self, moment: Moment, after: usize, hold: Duration) -> oneshot::Receiver<()> {
        let (fire, fired) = oneshot::channel();
        let after = self.shared.counter(moment).load(Ordering::SeqCst) + after;
        let hook = KillHook {
            moment,
            after,
            hold,
            fire,
        };
        *self.shared.kill.lock().unwrap_or_else(|p| p.into_inner()) = Some(hook);
        fired
    }

    pub fn disarm_kill(&self) {
        self.shared.kill.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// The refund of `order`, if any: `(refund id, amount in cents)`.
    pub async fn refund_of(&self, order: &str) -> Option<(String, i64)> {
        sqlx::query("select id, amount_cents from refunds where order_id = $1")
            .bind(order)
            .fetch_optional(&self.shared.pool)
            .await
            .expect("read a refund")
            .map(|r| (r.get(0), r.get(1)))
    }

    /// Counts refunds, double refunds and keys.
    pub async fn audit(&self) -> RefundAudit {
        let pool = &self.shared.pool;
        let count = |sql: &'static str| async move {
            let n: i64 = sqlx::query_scalar(sql)
                .fetch_one(pool)
                .await
                .expect("audit the shop");
            n as usize
        };
        RefundAudit {
            refunds: count("select count(*) from refunds").await,
            orders_refunded_twice: count(
                "select count(*) from (select order_id from refunds group by order_id having count(*) > 1)",
            )
            .await,
            orders_with_several_keys: count(
                "select count(*) from (select order_id from refund_requests \
                 where outcome in ('refunded', 'replayed', 'already_refunded') \
                 group by order_id having count(distinct idempotency_key) > 1)",
            )
            .await,
            replays: count("select count(*) from refund_requests where outcome = 'replayed'").await,
            requests: count("select count(*) from refund_requests").await,
        }
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": {"code": code, "message": message}}))).into_response()
}

impl Shared {
    fn authorized(&self, headers: &HeaderMap) -> bool {
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            == Some(self.secret.as_str())
    }

    fn record(&self, order: &str, start: Instant) {
        if let Some(&ticket) = self.tickets.get(order) {
            self.timeline.record(ticket, Kind::Tool, start);
        }
        self.count(Moment::Request);
    }

    fn counter(&self, moment: Moment) -> &AtomicUsize {
        match moment {
            Moment::RefundCommitted => &self.refunds_committed,
            Moment::Request => &self.requests_answered,
        }
    }

    /// Counts a moment; fires the hook when it is the one: how long to
    /// hold the response then.
    fn count(&self, moment: Moment) -> Option<Duration> {
        let n = self.counter(moment).fetch_add(1, Ordering::SeqCst) + 1;
        let mut kill = self.kill.lock().unwrap_or_else(|p| p.into_inner());
        match kill.take() {
            Some(hook) if hook.moment == moment && hook.after == n => {
                let _ = hook.fire.send(());
                Some(hook.hold)
            }
            other => {
                *kill = other;
                None
            }
        }
    }

    /// A read's response: 401 without the token, 404 for an unknown
    /// order, else the body; recorded on the timeline.
    fn answer(&self, id: &str, headers: &HeaderMap, start: Instant, body: Option<Value>) -> Response {
        let response = match (self.authorized(headers), body) {
            (false, _) => error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a bearer token is required",
            ),
            (true, Some(body)) => Json(body).into_response(),
            (true, None) => error(StatusCode::NOT_FOUND, "order_not_found", "no such order"),
        };
        self.record(id, start);
        response
    }

    async fn shipment_json(&self, id: &str) -> Option<Value> {
        let r = sqlx::query("select carrier, tracking, delivered_on, eta from orders where id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .expect("read a shipment")?;
        let delivered: Option<String> = r.get(2);
        Some(json!({
            "order_id": id,
            "carrier": r.get::<String, _>(0),
            "tracking_number": r.get::<String, _>(1),
            "status": if delivered.is_some() { "delivered" } else { "in_transit" },
            "expected_on": if delivered.is_none() { Some(r.get::<String, _>(3)) } else { None },
            "delivered_on": delivered,
        }))
    }

    async fn order_json(&self, id: &str) -> Option<Value> {
        let row =
            sqlx::query("select item, amount_cents, ordered_on, delivered_on from orders where id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .expect("read an order")?;
        let refund = sqlx::query("select id, amount_cents from refunds where order_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .expect("read a refund")
            .map(|r| json!({"refund_id": r.get::<String, _>(0), "amount_cents": r.get::<i64, _>(1)}));
        let delivered: Option<String> = row.get(3);
        let window_ends = delivered
            .as_deref()
            .and_then(|d| d.parse::<chrono::NaiveDate>().ok())
            .map(|d| (d + chrono::Duration::days(REFUND_WINDOW_DAYS)).to_string());
        Some(json!({
            "order_id": id,
            "item": row.get::<String, _>(0),
            "amount_cents": row.get::<i64, _>(1),
            "currency": "EUR",
            "ordered_on": row.get::<String, _>(2),
            "delivered_on": delivered,
            "refund": refund,
            "refund_window_ends_on": window_ends,
            "today": today().to_string(),
        }))
    }
}

async fn order(State(s): State<Arc<Shared>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let start = Instant::now();
    let body = match s.authorized(&headers) {
        true => s.order_json(&id).await,
        false => None,
    };
    s.answer(&id, &headers, start, body)
}

async fn shipment(State(s): State<Arc<Shared>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let start = Instant::now();
    let body = match s.authorized(&headers) {
        true => s.shipment_json(&id).await,
        false => None,
    };
    s.answer(&id, &headers, start, body)
}

async fn refund(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let start = Instant::now();
    let (response, hold) = refund_inner(&s, &id, &headers, &body).await;
    s.record(&id, start);
    if let Some(hold) = hold {
        tokio::time::sleep(hold).await;
    }
    response
}

/// What a refund request came to, decided inside its transaction.
enum RefundDecision {
    /// The key was seen: the refund it made.
    Replayed(Value),
    NotFound,
    /// Refunded before, under another key.
    Already(String),
    OutsideWindow,
    Refunded(Value),
}

impl RefundDecision {
    /// Its name in the request log.
    fn outcome(&self) -> &'static str {
        match self {
            RefundDecision::Replayed(_) => "replayed",
            RefundDecision::NotFound => "not_found",
            RefundDecision::Already(_) => "already_refunded",
            RefundDecision::OutsideWindow => "outside_window",
            RefundDecision::Refunded(_) => "refunded",
        }
    }
}

fn refund_body(refund_id: &str, order: &str, amount: i64) -> Value {
    json!({"refund_id": refund_id, "order_id": order, "amount_cents": amount, "status": "issued"})
}

/// The idempotency key, then the policy; writes the refund when it is due.
async fn decide_refund(tx: &mut sqlx::SqliteConnection, id: &str, key: &str, reason: &str) -> RefundDecision {
    let seen = sqlx::query("select id, order_id, amount_cents from refunds where idempotency_key = $1")
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .expect("look the key up");
    if let Some(r) = seen {
        return RefundDecision::Replayed(refund_body(
            &r.get::<String, _>(0),
            &r.get::<String, _>(1),
            r.get(2),
        ));
    }
    let order = sqlx::query("select amount_cents, delivered_on from orders where id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .expect("read the order");
    let Some(order) = order else {
        return RefundDecision::NotFound;
    };
    let already: Option<String> = sqlx::query_scalar("select id from refunds where order_id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .expect("read the refunds");
    if let Some(previous) = already {
        return RefundDecision::Already(previous);
    }
    let delivered: Option<String> = order.get(1);
    let in_window = delivered
        .as_deref()
        .and_then(|d| d.parse::<chrono::NaiveDate>().ok())
        .is_some_and(|d| (today() - d).num_days() <= REFUND_WINDOW_DAYS);
    if !in_window {
        return RefundDecision::OutsideWindow;
    }
    let amount: i64 = order.get(0);
    let refund_id = format!("rf_{:012x}", super::rng::hash_str(&format!("{id}/{key}")) >> 16);
    sqlx::query("insert into refunds values ($1, $2, $3, $4, $5)")
        .bind(&refund_id)
        .bind(id)
        .bind(amount)
        .bind(key)
        .bind(reason)
        .execute(&mut *tx)
        .await
        .expect("insert the refund");
    RefundDecision::Refunded(refund_body(&refund_id, id, amount))
}

async fn refund_inner(
    s: &Shared,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (Response, Option<Duration>) {
    if !s.authorized(headers) {
        let response = error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a bearer token is required",
        );
        return (response, None);
    }
    let Some(key) = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty())
    else {
        let response = error(
            StatusCode::BAD_REQUEST,
            "idempotency_key_required",
            "a refund needs an Idempotency-Key header",
        );
        return (response, None);
    };
    let reason = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("reason").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    let mut tx = s.pool.begin().await.expect("begin a refund");
    let decision = decide_refund(&mut tx, id, key, &reason).await;
    sqlx::query("insert into refund_requests (order_id, idempotency_key, outcome) values ($1, $2, $3)")
        .bind(id)
        .bind(key)
        .bind(decision.outcome())
        .execute(&mut *tx)
        .await
        .expect("log a refund request");
    tx.commit().await.expect("commit a refund request");
    match decision {
        RefundDecision::Replayed(body) => {
            let mut response = (StatusCode::OK, Json(body)).into_response();
            let replayed = axum::http::HeaderValue::from_static("true");
            response.headers_mut().insert("idempotent-replayed", replayed);
            (response, None)
        }
        RefundDecision::NotFound => (
            error(StatusCode::NOT_FOUND, "order_not_found", "no such order"),
            None,
        ),
        RefundDecision::Already(previous) => {
            let message = format!("the order was refunded already ({previous})");
            (error(StatusCode::CONFLICT, "already_refunded", &message), None)
        }
        RefundDecision::OutsideWindow => {
            let message = "an order is refunded only within 30 days of its delivery";
            (
                error(StatusCode::UNPROCESSABLE_ENTITY, "outside_refund_window", message),
                None,
            )
        }
        RefundDecision::Refunded(body) => {
            let hold = s.count(Moment::RefundCommitted);
            ((StatusCode::CREATED, Json(body)).into_response(), hold)
        }
    }
}
