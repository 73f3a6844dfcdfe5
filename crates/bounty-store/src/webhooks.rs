//! Events and webhook endpoints: the rows behind `GET /v1/events`,
//! `/v1/webhook-endpoints` and the webhook sender.
//!
//! [`emit_event`] is what a change calls inside its own transaction: it
//! writes the event and, for each of the account's enabled endpoints in
//! the same mode that subscribes to its type, one `webhook_event` outbox
//! row. So an event exists exactly when its change does, and each
//! endpoint's delivery exactly when the event does; the sender delivers
//! the row later, never in the change's transaction.

use bounty_core::event::{EventType, subscribes};
use bounty_core::{
    AccountId, ApiKeyMode, EventId, OutboxId, PageLimit, Timestamp, WebhookAttemptId, WebhookEndpointId,
};

use crate::db::on_pool;
use crate::page::Page;
use crate::tx::{Tx, args};
use crate::{Store, StoreError};

fn corrupt(column: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{column}: {e}"))
}

/// Events listed are at most this old.
pub const EVENT_RETENTION_DAYS: i64 = 30;

/// An event of the account's `mode` book, with its delivery to every
/// enabled endpoint of that mode subscribed to its type, written with the
/// caller's transaction. Returns its id.
///
/// The rows are written when the transaction commits, all of its events
/// together ([`write_events`]): a change that emits three events pays one
/// statement for them and their deliveries, not one per event and
/// endpoint. A transaction dropped uncommitted writes none.
pub async fn emit_event(
    tx: &mut Tx,
    account: AccountId,
    mode: ApiKeyMode,
    kind: EventType,
    object: serde_json::Value,
    now: Timestamp,
) -> Result<EventId, StoreError> {
    let id = EventId::new();
    if tx.events_on {
        tx.events.push(PendingEvent {
            id,
            account,
            livemode: mode.livemode(),
            kind,
            object: object.to_string(),
            at: now,
        });
    }
    Ok(id)
}

/// An event emitted in a transaction, not written yet.
#[derive(Debug, Clone)]
pub(crate) struct PendingEvent {
    id: EventId,
    account: AccountId,
    livemode: bool,
    kind: EventType,
    object: String,
    at: Timestamp,
}

/// An endpoint's id and the types it takes (none: every type).
type Subscribed = (String, Vec<String>);

/// Most webhook endpoints an account has in one mode (Stripe's own limit).
pub const MAX_ENDPOINTS: i64 = 16;

/// Outbox ids minted per event for its deliveries: one per endpoint it may
/// go to, with room for endpoints created at once past the limit.
const IDS_PER_EVENT: usize = 2 * MAX_ENDPOINTS as usize;

/// Writes a transaction's events and their deliveries, just before it
/// commits. On Postgres one statement: the events from arrays, and one
/// `webhook_event` outbox row per event and subscribed endpoint, joined in
/// SQL (the endpoints' `event_types` is a JSON array of type names, `[]`
/// or `"*"` for all). On SQLite, where a statement is a function call, a
/// statement per row.
pub(crate) async fn write_events(tx: &mut Tx, events: Vec<PendingEvent>) -> Result<(), StoreError> {
    if let Some(pg) = tx.postgres() {
        let outbox: Vec<String> = bounty_core::id::new_ulids(events.len() * IDS_PER_EVENT)
            .into_iter()
            .map(|u| OutboxId::from_ulid(u).to_string())
            .collect();
        sqlx::query(
            "with e as (
                 select * from unnest($1::text[], $2::text[], $3::bool[], $4::text[], $5::text[], $6::timestamptz[])
                     with ordinality as e(id, account_id, livemode, type, object, created_at, ord)
             ),
             written as (
                 insert into events (id, account_id, livemode, type, object, created_at)
                 select id, account_id, livemode, type, object, created_at from e
             ),
             d as (
                 select e.id as event_id, e.account_id, e.livemode, e.created_at, w.id as endpoint_id,
                        row_number() over (order by e.ord, w.id) as n
                 from e join webhook_endpoints w
                   on w.account_id = e.account_id and w.livemode = e.livemode and w.enabled
                 where w.event_types = '[]' or strpos(w.event_types, '\"*\"') > 0
                    or strpos(w.event_types, '\"' || e.type || '\"') > 0
             )
             insert into outbox (id, account_id, kind, transfer_id, payload, idempotency_key, status, attempts,
                                 next_attempt_at, created_at, livemode)
             select ($7::text[])[d.n], d.account_id, 'webhook_event', null,
                    json_build_object('endpoint_id', d.endpoint_id, 'event_id', d.event_id)::text,
                    'webhook_event:' || d.endpoint_id || ':' || d.event_id, 'pending', 0,
                    d.created_at, d.created_at, d.livemode
             from d",
        )
        .bind(events.iter().map(|e| e.id.to_string()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.account.to_string()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.livemode).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.object.clone()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.at).collect::<Vec<_>>())
        .bind(outbox)
        .execute(&mut **pg)
        .await?;
        return Ok(());
    }
    // The endpoints of each (account, mode), read once.
    let mut endpoints: Vec<((AccountId, bool), Vec<Subscribed>)> = Vec::new();
    for e in events {
        tx.execute(
            "insert into events (id, account_id, livemode, type, object, created_at) values ($1, $2, $3, $4, $5, $6)",
            args![e.id.to_string(), e.account, e.livemode, e.kind.as_str(), e.object, e.at],
        )
        .await?;
        let key = (e.account, e.livemode);
        let at = match endpoints.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                let rows: Vec<(String, String)> = tx
                    .fetch_all(
                        "select id, event_types from webhook_endpoints
                         where account_id = $1 and livemode = $2 and enabled order by id",
                        args![e.account, e.livemode],
                    )
                    .await?;
                let mut read = Vec::with_capacity(rows.len());
                for (id, types) in rows {
                    let types: Vec<String> = serde_json::from_str(&types)
                        .map_err(|e| corrupt("webhook_endpoints.event_types", e))?;
                    read.push((id, types));
                }
                endpoints.push((key, read));
                endpoints.len() - 1
            }
        };
        let mode = if e.livemode {
            ApiKeyMode::Live
        } else {
            ApiKeyMode::Test
        };
        for (endpoint, types) in endpoints[at].1.clone() {
            if subscribes(&types, e.kind) {
                queue_delivery(tx, e.account, mode, &endpoint, &e.id.to_string(), None, e.at).await?;
            }
        }
    }
    Ok(())
}

/// One `webhook_event` outbox row: `event` to `endpoint`. `resend` makes
/// an operator's or customer's resend a row of its own.
async fn queue_delivery(
    tx: &mut Tx,
    account: AccountId,
    mode: ApiKeyMode,
    endpoint: &str,
    event: &str,
    resend: Option<&str>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let payload = serde_json::json!({ "endpoint_id": endpoint, "event_id": event });
    let key = match resend {
        None => format!("webhook_event:{endpoint}:{event}"),
        Some(r) => format!("webhook_event:{endpoint}:{event}:resend:{r}"),
    };
    tx.execute(
        "insert into outbox (id, account_id, kind, transfer_id, payload, idempotency_key, status, attempts,
             next_attempt_at, created_at, livemode)
         values ($1, $2, 'webhook_event', null, $3, $4, 'pending', 0, $5, $5, $6)",
        args![
            OutboxId::new().to_string(),
            account,
            payload.to_string(),
            key,
            now,
            mode.livemode()
        ],
    )
    .await?;
    Ok(())
}

/// A webhook endpoint, as stored. Its secrets are sealed.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEndpoint {
    pub id: WebhookEndpointId,
    pub account_id: AccountId,
    pub mode: ApiKeyMode,
    pub url: String,
    pub description: Option<String>,
    /// Empty: every type.
    pub event_types: Vec<String>,
    pub secret_sealed: String,
    pub previous_secret_sealed: Option<String>,
    pub previous_expires_at: Option<Timestamp>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

macro_rules! endpoint_columns {
    () => {
        "id, account_id, livemode, url, description, event_types, secret_sealed, previous_secret_sealed,
         previous_expires_at, enabled, disabled_reason, failing_since, created_at, updated_at"
    };
}

#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: String,
    account_id: String,
    livemode: bool,
    url: String,
    description: Option<String>,
    event_types: String,
    secret_sealed: String,
    previous_secret_sealed: Option<String>,
    previous_expires_at: Option<Timestamp>,
    enabled: bool,
    disabled_reason: Option<String>,
    failing_since: Option<Timestamp>,
    created_at: Timestamp,
    updated_at: Timestamp,
}

impl TryFrom<EndpointRow> for WebhookEndpoint {
    type Error = StoreError;

    fn try_from(r: EndpointRow) -> Result<Self, StoreError> {
        Ok(WebhookEndpoint {
            id: r.id.parse().map_err(|e| corrupt("webhook_endpoints.id", e))?,
            account_id: r
                .account_id
                .parse()
                .map_err(|e| corrupt("webhook_endpoints.account_id", e))?,
            mode: ApiKeyMode::from_livemode(r.livemode),
            url: r.url,
            description: r.description,
            event_types: serde_json::from_str(&r.event_types)
                .map_err(|e| corrupt("webhook_endpoints.event_types", e))?,
            secret_sealed: r.secret_sealed,
            previous_secret_sealed: r.previous_secret_sealed,
            previous_expires_at: r.previous_expires_at,
            enabled: r.enabled,
            disabled_reason: r.disabled_reason,
            failing_since: r.failing_since,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// A new endpoint; its secret sealed by the caller.
#[derive(Debug, Clone)]
pub struct NewWebhookEndpoint {
    pub id: WebhookEndpointId,
    pub mode: ApiKeyMode,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub secret_sealed: String,
}

/// A change to an endpoint: each `Some` field is set.
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub description: Option<Option<String>>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub id: EventId,
    pub mode: ApiKeyMode,
    pub kind: EventType,
    pub object: serde_json::Value,
    pub created_at: Timestamp,
}

impl StoredEvent {
    /// The event as delivered and listed.
    pub fn to_event(&self) -> bounty_core::event::Event {
        bounty_core::event::Event::new(
            self.id,
            self.kind,
            self.created_at,
            self.mode.livemode(),
            self.object.clone(),
        )
    }
}

type EventRow = (String, bool, String, String, Timestamp);

fn event_of(r: EventRow) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        id: r.0.parse().map_err(|e| corrupt("events.id", e))?,
        mode: ApiKeyMode::from_livemode(r.1),
        kind: r.2.parse().map_err(|e| corrupt("events.type", e))?,
        object: serde_json::from_str(&r.3).map_err(|e| corrupt("events.object", e))?,
        created_at: r.4,
    })
}

/// One try at delivering an event to an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAttempt {
    pub id: WebhookAttemptId,
    pub endpoint_id: WebhookEndpointId,
    pub event_id: EventId,
    pub outbox_id: String,
    /// The endpoint's HTTP status; `None` when no answer came.
    pub status: Option<i32>,
    pub latency_ms: i64,
    /// The start of the endpoint's answer.
    pub response: Option<String>,
    pub error: Option<String>,
    pub created_at: Timestamp,
}

type AttemptRow = (
    String,
    String,
    String,
    String,
    Option<i32>,
    i64,
    Option<String>,
    Option<String>,
    Timestamp,
);

impl Store {
    /// Creates an endpoint of the account.
    /// How many endpoints the account has in `mode`'s book (at most
    /// [`MAX_ENDPOINTS`] are made).
    pub async fn count_webhook_endpoints(
        &self,
        account: AccountId,
        mode: ApiKeyMode,
    ) -> Result<i64, StoreError> {
        let (n,): (i64,) = on_pool!(&self.db, pool => {
            sqlx::query_as("select count(*) from webhook_endpoints where account_id = $1 and livemode = $2")
                .bind(account.to_string())
                .bind(mode.livemode())
                .fetch_one(pool)
                .await?
        });
        Ok(n)
    }

    pub async fn create_webhook_endpoint(
        &self,
        account: AccountId,
        new: &NewWebhookEndpoint,
    ) -> Result<WebhookEndpoint, StoreError> {
        let now = self.now();
        let row: EndpointRow = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "insert into webhook_endpoints (id, account_id, livemode, url, description, event_types, secret_sealed,
                     enabled, created_at, updated_at)
                 values ($1, $2, $3, $4, $5, $6, $7, true, $8, $8)
                 returning ", endpoint_columns!()
            ))
            .bind(new.id.to_string())
            .bind(account.to_string())
            .bind(new.mode.livemode())
            .bind(new.url.clone())
            .bind(new.description.clone())
            .bind(serde_json::to_string(&new.event_types).unwrap_or_else(|_| "[]".to_owned()))
            .bind(new.secret_sealed.clone())
            .bind(now)
            .fetch_one(pool)
            .await?
        });
        WebhookEndpoint::try_from(row)
    }

    /// One of the account's endpoints in `mode`'s book.
    pub async fn get_webhook_endpoint(
        &self,
        account: AccountId,
        mode: ApiKeyMode,
        id: WebhookEndpointId,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        self.endpoint_in(account, Some(mode), id).await
    }

    /// An endpoint by id, whatever its mode (the sender's read).
    pub async fn webhook_endpoint_of(
        &self,
        account: AccountId,
        id: WebhookEndpointId,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        self.endpoint_in(account, None, id).await
    }

    async fn endpoint_in(
        &self,
        account: AccountId,
        mode: Option<ApiKeyMode>,
        id: WebhookEndpointId,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        let row: Option<EndpointRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "select ", endpoint_columns!(),
                " from webhook_endpoints where account_id = $1 and ($2 is null or livemode = $2) and id = $3"
            ))
            .bind(account.to_string())
            .bind(mode.map(|m| m.livemode()))
            .bind(id.to_string())
            .fetch_optional(pool)
            .await?
        });
        row.map(WebhookEndpoint::try_from).transpose()
    }

    /// The account's endpoints in `mode`'s book, newest first.
    pub async fn list_webhook_endpoints(
        &self,
        account: AccountId,
        mode: ApiKeyMode,
        limit: PageLimit,
        after: Option<WebhookEndpointId>,
    ) -> Result<Page<WebhookEndpoint>, StoreError> {
        let rows: Vec<EndpointRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(concat!(
                "select ", endpoint_columns!(),
                " from webhook_endpoints where account_id = $1 and livemode = $2 and ($3 is null or id < $3)
                  order by id desc limit $4"
            ))
            .bind(account.to_string())
            .bind(mode.livemode())
            .bind(after.map(|a| a.to_string()))
            .bind(i64::from(limit.get()) + 1)
            .fetch_all(pool)
            .await?
        });
        let items = rows
            .into_iter()
            .map(WebhookEndpoint::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(items, limit.get(), |e| e.id.to_string()))
    }

    /// Changes an endpoint; `None` when the account has no such endpoint.
    /// Enabling clears its failure record.
    pub async fn update_webhook_endpoint(
        &self,
        account: AccountId,
        mode: ApiKeyMode,
        id: WebhookEndpointId,
        change: &EndpointChange,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        let Some(current) = self.get_webhook_endpoint(account, mode, id).await? else {
            return Ok(None);
        };
        let url = change.url.clone().unwrap_or(current.url);
        let description = change.description.clone().unwrap_or(current.description);
        let types = change.event_types.clone().unwrap_or(current.event_types);
        let enabled = change.enabled.unwrap_or(current.enabled);
        let (reason, failing) = if enabled {
            (None, None)
        } else {
            (
                current
                    .disabled_reason
                    .or_else(|| Some("disabled by the account".to_owned())),
                current.failing_since,
            )
        };
        let now = self.now();
        on_pool!(&self.db, pool => {
            sqlx::query(
                "update webhook_endpoints set url = $3, description = $4, event_types = $5, enabled = $6,
                     disabled_reason = $7, failing_since = $8, updated_at = $9
                 where account_id = $1 and id = $2",
            )
            .bind(account.to_string())
            .bind(id.to_string())
            .bind(url)
            .bind(description)
            .bind(serde_json::to_string(&types).unwrap_or_else(|_| "[]".to_owned()))
            .bind(enabled)
            .bind(reason)
            .bind(failing)
            .bind(now)
            .execute(pool)
            .await?;
        });
        self.get_webhook_endpoint(account, mode, id).await
    }

    /// Deletes an endpoint; its deliveries still pending are parked.
    /// `false` when the account has no such endpoint.
    pub async fn delete_webhook_endpoint(
        &self,
        account: AccountId,
        mode: ApiKeyMode,
        id: WebhookEndpointId,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let deleted = tx
            .execute(
                "delete from webhook_endpoints where account_id = $1 and livemode = $2 and id = $3",
                args![account, mode.livemode(), id.to_string()],
            )
            .await?;
        if deleted > 0 {
            park_pending(&mut tx, account, id, "the webhook endpoint was deleted").await?;
        }
        tx.commit().await?;
        Ok(deleted > 0)
    }

    /// Replaces an endpoint's secret; the previous one keeps signing until
    /// `previous_expires_at`.
    pub async fn rotate_webhook_secret(
        &self,
        account: AccountId,
        mode: ApiKeyMode,
        id: WebhookEndpointId,
        secret_sealed: &str,
        previous_expires_at: Timestamp,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        let now = self.now();
        let changed = on_pool!(&self.db, pool => {
            sqlx::query(
                "update webhook_endpoints set previous_secret_sealed = secret_sealed, previous_expires_at = $4,
                     secret_sealed = $5, updated_at = $6
                 where account_id = $1 and livemode = $2 and id = $3",
            )
            .bind(account.to_string())
            .bind(mode.livemode())
            .bind(id.to_string())
            .bind(previous_expires_at)
            .bind(secret_sealed.to_owned())
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if changed == 0 {
            return Ok(None);
        }
        self.get_webhook_endpoint(account, mode, id).await
    }

    /// A delivery failed: the endpoint is failing since then, unless it
    /// already was. Returns since when.
    pub async fn webhook_endpoint_failed(
        &self,
        account: AccountId,
        id: WebhookEndpointId,
    ) -> Result<Option<Timestamp>, StoreError> {
        let now = self.now();
        let row: Option<(Option<Timestamp>,)> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "update webhook_endpoints set failing_since = coalesce(failing_since, $3)
                 where account_id = $1 and id = $2 returning failing_since",
            )
            .bind(account.to_string())
            .bind(id.to_string())
            .bind(now)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.and_then(|(t,)| t))
    }

    /// A delivery succeeded: the endpoint is not failing.
    pub async fn webhook_endpoint_succeeded(
        &self,
        account: AccountId,
        id: WebhookEndpointId,
    ) -> Result<(), StoreError> {
        on_pool!(&self.db, pool => {
            sqlx::query(
                "update webhook_endpoints set failing_since = null
                 where account_id = $1 and id = $2 and failing_since is not null",
            )
            .bind(account.to_string())
            .bind(id.to_string())
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Disables an endpoint (a 410, or five days failing) and parks its
    /// pending deliveries with `reason`.
    pub async fn disable_webhook_endpoint(
        &self,
        account: AccountId,
        id: WebhookEndpointId,
        reason: &str,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let changed = tx
            .execute(
                "update webhook_endpoints set enabled = false, disabled_reason = $3, updated_at = $4
                 where account_id = $1 and id = $2 and enabled",
                args![account, id.to_string(), reason, now],
            )
            .await?;
        park_pending(&mut tx, account, id, reason).await?;
        if changed == 0 {
            return tx.commit().await;
        }
        let notice = crate::notifications::Notice {
            audience: crate::notifications::Audience::Account(account),
            kind: "webhook_endpoint.disabled",
            title: format!("Webhook endpoint {id} was disabled"),
            body: format!(
                "{reason}. Its events are kept (GET /v1/events); re-enable it on its page or with \
                 PATCH /v1/webhook-endpoints/{id} {{\"enabled\": true}}."
            ),
        };
        crate::notifications::notify(&mut tx, &notice, now).await?;
        tx.commit().await
    }

    /// Records one delivery try.
    pub async fn record_webhook_attempt(
        &self,
        account: AccountId,
        a: &WebhookAttempt,
    ) -> Result<(), StoreError> {
        on_pool!(&self.db, pool => {
            sqlx::query(
                "insert into webhook_attempts (id, account_id, endpoint_id, event_id, outbox_id, status, latency_ms,
                     response, error, created_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(a.id.to_string())
            .bind(account.to_string())
            .bind(a.endpoint_id.to_string())
            .bind(a.event_id.to_string())
            .bind(a.outbox_id.clone())
            .bind(a.status)
            .bind(a.latency_ms)
            .bind(a.response.clone())
            .bind(a.error.clone())
            .bind(a.created_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// An endpoint's delivery tries, newest first.
    pub async fn webhook_attempts(
        &self,
        account: AccountId,
        endpoint: WebhookEndpointId,
        limit: PageLimit,
        after: Option<WebhookAttemptId>,
    ) -> Result<Page<WebhookAttempt>, StoreError> {
        let rows: Vec<AttemptRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select id, endpoint_id, event_id, outbox_id, status, latency_ms, response, error, created_at
                 from webhook_attempts where account_id = $1 and endpoint_id = $2 and ($3 is null or id < $3)
                 order by id desc limit $4",
            )
            .bind(account.to_string())
            .bind(endpoint.to_string())
            .bind(after.map(|a| a.to_string()))
            .bind(i64::from(limit.get()) + 1)
            .fetch_all(pool)
            .await?
        });
        let items = rows
            .into_iter()
            .map(|r| {
                Ok(WebhookAttempt {
                    id: r.0.parse().map_err(|e| corrupt("webhook_attempts.id", e))?,
                    endpoint_id: r
                        .1
                        .parse()
                        .map_err(|e| corrupt("webhook_attempts.endpoint_id", e))?,
                    event_id: r.2.parse().map_err(|e| corrupt("webhook_attempts.event_id", e))?,
                    outbox_id: r.3,
                    status: r.4,
                    latency_ms: r.5,
                    response: r.6,
                    error: r.7,
                    created_at: r.8,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Page::from_overfetch(items, limit.get(), |a| a.id.to_string()))
    }

    /// Queues `event` to `endpoint` again (a resend): a row of its own,
    /// delivered under the event's id so the receiver can dedupe it.
    /// `false` when either is not the account's in `mode`'s book.
    pub async fn resend_event(
        &self,
        account: AccountId,
        mode: ApiKeyMode,
        endpoint: WebhookEndpointId,
        event: EventId,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let found: Option<(i64,)> = tx
            .fetch_optional(
                "select cast(1 as bigint) from webhook_endpoints e join events v on v.account_id = e.account_id and v.livemode = e.livemode
                 where e.account_id = $1 and e.livemode = $2 and e.id = $3 and v.id = $4",
                args![account, mode.livemode(), endpoint.to_string(), event.to_string()],
            )
            .await?;
        if found.is_none() {
            return Ok(false);
        }
        let resend = OutboxId::new().to_string();
        queue_delivery(
            &mut tx,
            account,
            mode,
            &endpoint.to_string(),
            &event.to_string(),
            Some(&resend),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The account's events in `mode`'s book from the last
    /// [`EVENT_RETENTION_DAYS`], newest first, of one type if given.
    pub async fn list_events(
        &self,
        account: AccountId,
        mode: ApiKeyMode,
        kind: Option<EventType>,
        limit: PageLimit,
        after: Option<EventId>,
    ) -> Result<Page<StoredEvent>, StoreError> {
        let since = self.now() - chrono::Duration::days(EVENT_RETENTION_DAYS);
        let rows: Vec<EventRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select id, livemode, type, object, created_at from events
                 where account_id = $1 and livemode = $2 and ($3 is null or type = $3) and ($4 is null or id < $4)
                   and created_at >= $5
                 order by id desc limit $6",
            )
            .bind(account.to_string())
            .bind(mode.livemode())
            .bind(kind.map(|k| k.as_str().to_owned()))
            .bind(after.map(|a| a.to_string()))
            .bind(since)
            .bind(i64::from(limit.get()) + 1)
            .fetch_all(pool)
            .await?
        });
        let items = rows.into_iter().map(event_of).collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_overfetch(items, limit.get(), |e| e.id.to_string()))
    }

    /// One of the account's events, in any mode (the sender's read) when
    /// `mode` is `None`.
    pub async fn get_event(
        &self,
        account: AccountId,
        mode: Option<ApiKeyMode>,
        id: EventId,
    ) -> Result<Option<StoredEvent>, StoreError> {
        let row: Option<EventRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select id, livemode, type, object, created_at from events
                 where account_id = $1 and id = $2 and ($3 is null or livemode = $3)",
            )
            .bind(account.to_string())
            .bind(id.to_string())
            .bind(mode.map(|m| m.livemode()))
            .fetch_optional(pool)
            .await?
        });
        row.map(event_of).transpose()
    }
}

/// Parks the endpoint's pending deliveries with `reason`.
async fn park_pending(
    tx: &mut Tx,
    account: AccountId,
    endpoint: WebhookEndpointId,
    reason: &str,
) -> Result<(), StoreError> {
    let rows: Vec<(String, String)> = tx
        .fetch_all(
            "select id, payload from outbox where account_id = $1 and kind = 'webhook_event' and status = 'pending'",
            args![account],
        )
        .await?;
    let endpoint = endpoint.to_string();
    for (id, payload) in rows {
        let payload: serde_json::Value =
            serde_json::from_str(&payload).map_err(|e| corrupt("outbox.payload", e))?;
        if payload["endpoint_id"].as_str() == Some(endpoint.as_str()) {
            tx.execute(
                "update outbox set status = 'failed', last_error = $2, lease_until = null
                 where id = $1 and status = 'pending'",
                args![id, reason],
            )
            .await?;
        }
    }
    Ok(())
}
