//! Gateway calls made without a task, on a plan whose gateway terms bill
//! them at cost plus a markup (`gateway.unattributed = "cost_plus"`).
//!
//! Each call records its charge (`ceil(cost × (1 + markup))`) when it is
//! made. A sweep ([`bill_cost_plus`], run by the worker) then bills them
//! in batches: per account, book and currency, one transaction takes the
//! account's billing lock, marks up to [`BATCH_CALLS`] unbilled calls
//! with a new `cost_plus` transfer (receivable → revenue, their charges'
//! sum), writes that transfer, and queues its meter event on the
//! gateway's Stripe meter ([`GATEWAY_METER_EVENT_NAME`], valued in
//! micros). So a call is billed once or not yet: a crash leaves the whole
//! batch unbilled, and a second sweep waits on the lock and finds the
//! calls marked. A test-mode key's calls go to the test-mode book and
//! Stripe's test mode, like its outcomes; the live book never sees them.
//!
//! The money counts toward the account's spending cap and its alerts,
//! like outcomes' charges.

use bounty_core::ledger::plan_cost_plus;
use bounty_core::outbox::{GATEWAY_METER_EVENT_NAME, MeterEventPayload, OutboxKind};
use bounty_core::{AccountId, ApiKeyMode, Currency, Money, TransferId};
use bounty_store::gateway_billing::{UnbilledGroup, mark_cost_plus_calls};
use bounty_store::ledger::{insert_transfer_as, lock_billing, money_spent_since, period_start};
use bounty_store::outbox::{enqueue, ensure_test_customer};
use bounty_store::{Store, StoreError};

use crate::settle::cap_alerts;

/// Most calls one `cost_plus` transfer bills.
pub const BATCH_CALLS: u32 = 1_000;
/// Most groups (account, book, currency) one sweep bills.
pub const SWEEP_GROUPS: u32 = 100;

/// One `cost_plus` transfer written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Billed {
    pub transfer: TransferId,
    pub account: AccountId,
    pub mode: ApiKeyMode,
    pub amount: Money,
    pub calls: i64,
}

/// Bills every unbilled cost-plus call, [`BATCH_CALLS`] to a transfer, up
/// to [`SWEEP_GROUPS`] groups a sweep. Returns what it wrote.
pub async fn bill_cost_plus(store: &Store) -> Result<Vec<Billed>, StoreError> {
    let mut billed = Vec::new();
    for group in store.unbilled_cost_plus(SWEEP_GROUPS).await? {
        // A group with more calls than a batch takes several transfers.
        while let Some(b) = bill_group(store, &group).await? {
            let full = b.calls >= i64::from(BATCH_CALLS);
            tracing::info!(account.id = %b.account, transfer.id = %b.transfer, calls = b.calls,
                amount_micros = b.amount.micros, currency = %b.amount.currency, livemode = b.mode.livemode(),
                "gateway calls billed at cost plus markup");
            billed.push(b);
            if !full {
                break;
            }
        }
    }
    Ok(billed)
}

/// Bills one batch of the group's calls in one transaction; `None` when
/// it had none left.
async fn bill_group(store: &Store, group: &UnbilledGroup) -> Result<Option<Billed>, StoreError> {
    let currency: Currency = group
        .currency
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("gateway_calls.currency {:?}: {e}", group.currency)))?;
    let (account, mode) = (group.account, group.mode);
    let now = store.now();
    let mut tx = store.begin().await?;
    let billing = lock_billing(&mut tx, account, now).await?;
    let cap = billing.monthly_cap_micros.filter(|_| mode.livemode());
    let spend_before = match cap {
        Some(_) => money_spent_since(&mut tx, account, mode, period_start(now)).await?,
        None => 0,
    };
    let transfer = TransferId::new();
    let marked = mark_cost_plus_calls(&mut tx, group, transfer, BATCH_CALLS).await?;
    let amount = Money::from_micros(marked.charge_micros, currency);
    let Some(spec) = plan_cost_plus(amount) else {
        // Nothing left: another sweep billed them first.
        return Ok(None);
    };
    let memo = format!("{} gateway call(s) at cost plus markup", marked.calls);
    insert_transfer_as(
        &mut tx,
        transfer,
        account,
        &spec,
        None,
        None,
        Some(memo),
        mode,
        now,
    )
    .await?;
    if !mode.livemode() {
        ensure_test_customer(&mut tx, account, now).await?;
    }
    let payload = serde_json::to_value(MeterEventPayload::of_cost_plus(transfer, amount.micros, now))
        .map_err(|e| StoreError::Corrupt(format!("meter event payload: {e}")))?;
    debug_assert_eq!(payload["event_name"], GATEWAY_METER_EVENT_NAME);
    let id = transfer.to_string();
    enqueue(
        &mut tx,
        account,
        mode,
        OutboxKind::MeterEvent,
        Some(&id),
        payload,
        now,
    )
    .await?;
    if let Some(cap) = cap {
        cap_alerts(&mut tx, &billing, account, cap, spend_before, now).await?;
    }
    tx.commit().await?;
    Ok(Some(Billed {
        transfer,
        account,
        mode,
        amount,
        calls: marked.calls,
    }))
}
