//! The records of helpdesk intake: one row per accepted delivery, and the
//! reads and writes intake makes in its one transaction.
//!
//! What a delivery does is decided above the store, in
//! `bounty_integrations::intake`; these are its repository functions, each
//! with one purpose, all taking the caller's [`Tx`]:
//!
//! - [`insert_delivery`] claims the delivery's dedupe key, under the unique
//!   constraint `(integration_id, dedupe_key)`. Intake calls it first, so a
//!   concurrent duplicate waits on the constraint and then finds the row.
//! - [`delivery_by_dedupe_key`] reads a duplicate's first record, whose
//!   columns hold everything its answer was made of.
//! - [`save_delivery_result`] records what the delivery did.
//! - [`latest_outcome_of_ticket`] serves a resolution
//!   signal: the outcome of the ticket's latest task, and the signal applied
//!   to it inside the same transaction.
//!
//! The `response` column of older rows held the answer as JSON; the answer
//! is now rendered at the HTTP edge from the other columns, which hold the
//! same values, and new rows leave it `{}`.

use bounty_core::{
    AccountId, DeliveryId, DeliveryResult, IntegrationId, OutcomeId, PageLimit, TaskId, TicketEventName,
    Timestamp,
};

use crate::column::Text;
use crate::db::on_pool;
use crate::sql::Sql;
use crate::tx::{Arg, Tx, args};
use crate::{Page, Store, StoreError};

/// One accepted delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: DeliveryId,
    pub event: TicketEventName,
    pub external_ticket: String,
    pub result: DeliveryResult,
    pub reason: Option<String>,
    pub task_id: Option<TaskId>,
    pub received_at: Timestamp,
}

/// A delivery to record: its dedupe key (the vendor's event id, else its
/// delivery id, else the body's hash), its event and its ticket.
#[derive(Debug, Clone, Copy)]
pub struct NewDelivery<'a> {
    pub dedupe_key: &'a str,
    pub event: TicketEventName,
    pub external_ticket: &'a str,
}

type RecordRow = (
    Text<DeliveryId>,
    Text<TicketEventName>,
    String,
    Text<DeliveryResult>,
    Option<String>,
    Option<Text<TaskId>>,
    Timestamp,
);

fn record(row: RecordRow) -> DeliveryRecord {
    let (id, event, external_ticket, result, reason, task, received_at) = row;
    DeliveryRecord {
        id: id.0,
        event: event.0,
        external_ticket,
        result: result.0,
        reason,
        task_id: task.map(Text::into_inner),
        received_at,
    }
}

/// Claims `delivery`'s dedupe key for `integration`: the new record's id,
/// or `None` when an earlier delivery holds the key (nothing is written).
/// Recorded as `recorded` until [`save_delivery_result`] says otherwise.
pub async fn insert_delivery(
    tx: &mut Tx,
    account: AccountId,
    integration: IntegrationId,
    delivery: NewDelivery<'_>,
    now: Timestamp,
) -> Result<Option<DeliveryId>, StoreError> {
    let id = DeliveryId::new();
    let answer = DeliveryAnswer {
        result: DeliveryResult::Recorded,
        reason: None,
        task: None,
    };
    let inserted = insert_answered_delivery(tx, account, integration, id, delivery, answer, now).await?;
    Ok(inserted.then_some(id))
}

/// What a delivery did, when it is known before its record is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryAnswer<'a> {
    pub result: DeliveryResult,
    pub reason: Option<&'a str>,
    pub task: Option<TaskId>,
}

/// Claims `delivery`'s dedupe key as record `id`, with its `answer`
/// already: `false` when an earlier delivery holds the key (nothing is
/// written). One statement where [`insert_delivery`] and
/// [`save_delivery_result`] are two.
pub async fn insert_answered_delivery(
    tx: &mut Tx,
    account: AccountId,
    integration: IntegrationId,
    id: DeliveryId,
    delivery: NewDelivery<'_>,
    answer: DeliveryAnswer<'_>,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let record = DeliveryToInsert {
        id,
        account,
        integration,
        delivery,
        answer,
    };
    Ok(!insert_answered_deliveries(tx, &[record], now).await?.is_empty())
}

/// One delivery for [`insert_answered_deliveries`].
#[derive(Debug, Clone, Copy)]
pub struct DeliveryToInsert<'a> {
    pub id: DeliveryId,
    pub account: AccountId,
    pub integration: IntegrationId,
    pub delivery: NewDelivery<'a>,
    pub answer: DeliveryAnswer<'a>,
}

/// Records `deliveries` with their answers in one statement, each as
/// [`insert_answered_delivery`] would, and answers the ids of those
/// written: one whose dedupe key is held (by an earlier row of the same
/// statement too) is not, and writes nothing.
pub async fn insert_answered_deliveries(
    tx: &mut Tx,
    deliveries: &[DeliveryToInsert<'_>],
    now: Timestamp,
) -> Result<Vec<DeliveryId>, StoreError> {
    if deliveries.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::default();
    sql.push(
        "insert into integration_deliveries (id, account_id, integration_id, dedupe_key, event,
             external_ticket, result, reason, task_id, response, received_at) values ",
        [],
    );
    for (i, d) in deliveries.iter().enumerate() {
        sql.push(
            match i {
                0 => "(?, ?, ?, ?, ?, ?, ?, ?, ?, '{}', ?)",
                _ => ", (?, ?, ?, ?, ?, ?, ?, ?, ?, '{}', ?)",
            },
            [
                Arg::from(d.id.to_string()),
                Arg::from(d.account),
                Arg::from(d.integration.to_string()),
                Arg::from(d.delivery.dedupe_key),
                Arg::from(d.delivery.event.as_str()),
                Arg::from(d.delivery.external_ticket),
                Arg::from(d.answer.result.as_str()),
                Arg::from(d.answer.reason.map(str::to_owned)),
                Arg::from(d.answer.task.map(|t| t.to_string())),
                Arg::from(now),
            ],
        );
    }
    sql.push(
        " on conflict (integration_id, dedupe_key) do nothing returning id",
        [],
    );
    let ids: Vec<(Text<DeliveryId>,)> = sql.fetch_all_in(tx).await?;
    Ok(ids.into_iter().map(|(id,)| id.0).collect())
}

/// The record of the delivery that holds `dedupe_key`.
pub async fn delivery_by_dedupe_key(
    tx: &mut Tx,
    account: AccountId,
    integration: IntegrationId,
    dedupe_key: &str,
) -> Result<Option<DeliveryRecord>, StoreError> {
    let row: Option<RecordRow> = tx
        .fetch_optional(
            "select id, event, external_ticket, result, reason, task_id, received_at
             from integration_deliveries
             where account_id = $1 and integration_id = $2 and dedupe_key = $3",
            args![account.to_string(), integration.to_string(), dedupe_key],
        )
        .await?;
    Ok(row.map(record))
}

/// The records holding any of `keys` (an account's integration and a
/// dedupe key each), read in one statement: each with its integration and
/// dedupe key.
pub async fn deliveries_by_dedupe_keys(
    tx: &mut Tx,
    keys: &[(AccountId, IntegrationId, &str)],
) -> Result<Vec<(IntegrationId, String, DeliveryRecord)>, StoreError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::default();
    sql.push(
        "select integration_id, dedupe_key, id, event, external_ticket, result, reason, task_id, received_at
         from integration_deliveries where ",
        [],
    );
    for (i, &(account, integration, key)) in keys.iter().enumerate() {
        sql.push(
            match i {
                0 => "(account_id = ? and integration_id = ? and dedupe_key = ?)",
                _ => " or (account_id = ? and integration_id = ? and dedupe_key = ?)",
            },
            [
                Arg::from(account),
                Arg::from(integration.to_string()),
                Arg::from(key),
            ],
        );
    }
    type KeyedRow = (
        Text<IntegrationId>,
        String,
        Text<DeliveryId>,
        Text<TicketEventName>,
        String,
        Text<DeliveryResult>,
        Option<String>,
        Option<Text<TaskId>>,
        Timestamp,
    );
    let rows: Vec<KeyedRow> = sql.fetch_all_in(tx).await?;
    Ok(rows
        .into_iter()
        .map(
            |(integration, key, id, event, ticket, result, reason, task, at)| {
                (
                    integration.0,
                    key,
                    record((id, event, ticket, result, reason, task, at)),
                )
            },
        )
        .collect())
}

/// Records what delivery `id` did.
pub async fn save_delivery_result(
    tx: &mut Tx,
    account: AccountId,
    id: DeliveryId,
    result: DeliveryResult,
    reason: Option<&str>,
    task: Option<TaskId>,
) -> Result<(), StoreError> {
    tx.execute(
        "update integration_deliveries set result = $3, reason = $4, task_id = $5
         where account_id = $1 and id = $2",
        args![
            account.to_string(),
            id.to_string(),
            result.as_str(),
            reason.map(str::to_owned),
            task.map(|t| t.to_string())
        ],
    )
    .await?;
    Ok(())
}

/// The outcome of the latest task made for `ticket` of `integration`;
/// `None` while no task of it has finished.
pub async fn latest_outcome_of_ticket(
    tx: &mut Tx,
    account: AccountId,
    integration: IntegrationId,
    ticket: &str,
) -> Result<Option<OutcomeId>, StoreError> {
    let row: Option<(String,)> = tx
        .fetch_optional(
            "select o.id from tasks t join outcomes o on o.task_id = t.id
             where t.account_id = $1 and t.integration_id = $2 and t.external_ref = $3
             order by t.id desc limit 1",
            args![account.to_string(), integration.to_string(), ticket],
        )
        .await?;
    row.map(|(id,)| {
        id.parse()
            .map_err(|e| StoreError::Corrupt(format!("outcomes.id: {e}")))
    })
    .transpose()
}

impl Store {
    /// The integration's accepted deliveries, newest first.
    pub async fn list_deliveries(
        &self,
        account: AccountId,
        integration: IntegrationId,
        limit: PageLimit,
        after: Option<DeliveryId>,
    ) -> Result<Page<DeliveryRecord>, StoreError> {
        let rows: Vec<RecordRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select id, event, external_ticket, result, reason, task_id, received_at
                 from integration_deliveries
                 where account_id = $1 and integration_id = $2 and ($3 is null or id < $3)
                 order by id desc limit $4",
            )
            .bind(account.to_string())
            .bind(integration.to_string())
            .bind(after.map(|a| a.to_string()))
            .bind(i64::from(limit.get()) + 1)
            .fetch_all(pool)
            .await?
        });
        let items = rows.into_iter().map(record).collect();
        Ok(Page::from_overfetch(items, limit.get(), |d| d.id.to_string()))
    }
}
