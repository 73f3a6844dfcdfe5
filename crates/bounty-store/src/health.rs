//! The operator's health reads: every account together, never one
//! tenant's data in isolation. They back the console's Health page and
//! `/v1/ops/health`; none is tenant-scoped, since the operator runs every
//! account.

use bounty_core::outbox::OutboxKind;
use bounty_core::{AccountId, IntegrationId, Timestamp};

use crate::column::Text;
use crate::db::on_pool;
use crate::{Store, StoreError};

/// One kind of outbox row: waiting, parked, and the oldest waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxHealth {
    pub kind: OutboxKind,
    pub pending: i64,
    /// Parked after a permanent error (or a disabled integration).
    pub failed: i64,
    pub oldest_pending: Option<Timestamp>,
}

/// An integration that refused deliveries for their signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedDeliveries {
    pub account_id: AccountId,
    pub integration_id: IntegrationId,
    pub name: String,
    pub refused: i64,
    pub last_refused_at: Option<Timestamp>,
    /// Why the last one was refused (`signature_mismatch`, …).
    pub last_code: Option<String>,
}

/// The task queue as the workers see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerActivity {
    pub queued: i64,
    pub running: i64,
    /// When the oldest queued task became due.
    pub oldest_due: Option<Timestamp>,
    /// Tasks finished (completed or failed) since the given instant.
    pub finished_recently: i64,
    pub last_finished_at: Option<Timestamp>,
}

impl Store {
    /// Live outbox rows by kind.
    pub async fn admin_outbox_health(&self) -> Result<Vec<OutboxHealth>, StoreError> {
        let rows: Vec<(Text<OutboxKind>, i64, i64, Option<Timestamp>)> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select kind,
                     cast(sum(case when status = 'pending' then 1 else 0 end) as bigint),
                     cast(sum(case when status = 'failed' then 1 else 0 end) as bigint),
                     min(case when status = 'pending' then created_at end)
                 from outbox where livemode and status in ('pending', 'failed')
                 group by kind order by kind",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(kind, pending, failed, oldest_pending)| OutboxHealth {
                kind: kind.0,
                pending,
                failed,
                oldest_pending,
            })
            .collect())
    }

    /// Integrations that refused deliveries, most refusals first.
    pub async fn admin_refused_deliveries(&self, limit: i64) -> Result<Vec<RefusedDeliveries>, StoreError> {
        type Row = (
            Text<AccountId>,
            Text<IntegrationId>,
            String,
            i64,
            Option<Timestamp>,
            Option<String>,
        );
        let rows: Vec<Row> = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select account_id, id, name, rejected_count, last_rejected_at, last_rejected_code
                 from integrations where rejected_count > 0
                 order by rejected_count desc, id limit $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(a, i, name, refused, last_refused_at, last_code)| RefusedDeliveries {
                    account_id: a.0,
                    integration_id: i.0,
                    name,
                    refused,
                    last_refused_at,
                    last_code,
                },
            )
            .collect())
    }

    /// The queue: queued and running tasks, the oldest due, and what was
    /// finished since `since`.
    pub async fn admin_worker_activity(&self, since: Timestamp) -> Result<WorkerActivity, StoreError> {
        let (queued, running, oldest_due, finished, last): (
            i64,
            i64,
            Option<Timestamp>,
            i64,
            Option<Timestamp>,
        ) = on_pool!(&self.db, pool => {
            sqlx::query_as(
                "select
                         (select count(*) from tasks where status = 'queued'),
                         (select count(*) from tasks where status = 'running'),
                         (select min(run_at) from tasks where status = 'queued'),
                         (select count(*) from tasks where finished_at >= $1),
                         (select max(finished_at) from tasks where finished_at is not null)",
            )
            .bind(since)
            .fetch_one(pool)
            .await?
        });
        Ok(WorkerActivity {
            queued,
            running,
            oldest_due,
            finished_recently: finished,
            last_finished_at: last,
        })
    }
}
