//! The events billing writes, and the objects they carry: what the
//! customer sees of an outcome, a charge, a task, a cap alert, an
//! invoice. Each is written by [`bounty_store::webhooks::emit_event`] in
//! the transaction of its change (settlement, a dispute's decision, a cap
//! alert, a Stripe invoice event). None carries inference cost or margin.

use bounty_core::event::EventType;
use bounty_core::outcome::OutcomeStatus;
use bounty_core::{AccountId, ApiKeyMode, Money, Timestamp};
use bounty_store::notifications::{Audience, Notice, notify};
use bounty_store::webhooks::emit_event;
use bounty_store::{Outcome, StoreError, Tx};
use serde_json::{Value, json};

/// `12.50 USD`: money for a person to read.
fn major(m: &Money) -> String {
    let abs = m.micros.unsigned_abs();
    let sign = if m.micros < 0 { "-" } else { "" };
    let (whole, frac) = (abs / 1_000_000, abs % 1_000_000);
    let frac = format!("{frac:06}");
    format!("{sign}{whole}.{} {}", &frac[..2], m.currency)
}

/// `2.5`: milli-CU as CU.
fn cu(milli: i64) -> String {
    let s = format!("{}.{:03}", milli / 1000, (milli % 1000).abs());
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn money(m: &Money) -> Value {
    json!({ "micros": m.micros, "currency": m.currency.as_str() })
}

/// An outcome as an event shows it: never its inference cost.
pub fn outcome_object(o: &Outcome) -> Value {
    json!({
        "id": o.id.to_string(),
        "object": "outcome",
        "task_id": o.task_id.to_string(),
        "agent_id": o.agent_id.to_string(),
        "outcome_type": o.outcome_type.as_str(),
        "status": o.status.as_str(),
        "cu_milli": o.cu.milli(),
        "amount": money(&o.amount),
        "window_ends_at": o.window_ends_at.timestamp(),
        "decided_at": o.decided_at.map(|t| t.timestamp()),
        "created": o.created_at.timestamp(),
    })
}

/// The outcome event of a move from `from` to `to`, if it is one.
pub fn outcome_event_type(from: Option<OutcomeStatus>, to: OutcomeStatus) -> Option<EventType> {
    if from == Some(to) {
        return None;
    }
    match to {
        OutcomeStatus::Resolved => Some(EventType::OutcomeResolved),
        OutcomeStatus::Failed => Some(EventType::OutcomeFailed),
        OutcomeStatus::Escalated => Some(EventType::OutcomeEscalated),
        OutcomeStatus::Reversed => Some(EventType::OutcomeReversed),
        _ => None,
    }
}

/// Writes the outcome event of a move from `from` to the outcome's status,
/// when it is one.
pub async fn outcome_moved(
    tx: &mut Tx,
    from: Option<OutcomeStatus>,
    outcome: &Outcome,
    now: Timestamp,
) -> Result<(), StoreError> {
    if let Some(kind) = outcome_event_type(from, outcome.status) {
        emit_event(
            tx,
            outcome.account_id,
            outcome.mode,
            kind,
            outcome_object(outcome),
            now,
        )
        .await?;
    }
    Ok(())
}

/// `charge.created` or `charge.reversed` of an outcome: its CU and money.
pub async fn charge_event(
    tx: &mut Tx,
    kind: EventType,
    outcome: &Outcome,
    cu_milli: i64,
    amount: &Money,
    now: Timestamp,
) -> Result<(), StoreError> {
    let object = json!({
        "object": "charge",
        "outcome_id": outcome.id.to_string(),
        "task_id": outcome.task_id.to_string(),
        "outcome_type": outcome.outcome_type.as_str(),
        "cu_milli": cu_milli,
        "amount": money(amount),
    });
    emit_event(tx, outcome.account_id, outcome.mode, kind, object, now).await?;
    Ok(())
}

/// `task.completed`: a task (or a turn of its conversation) finished, with
/// its outcome's status.
pub async fn task_completed(tx: &mut Tx, outcome: &Outcome, now: Timestamp) -> Result<(), StoreError> {
    let object = json!({
        "id": outcome.task_id.to_string(),
        "object": "task",
        "agent_id": outcome.agent_id.to_string(),
        "outcome_id": outcome.id.to_string(),
        "outcome_status": outcome.status.as_str(),
    });
    emit_event(
        tx,
        outcome.account_id,
        outcome.mode,
        EventType::TaskCompleted,
        object,
        now,
    )
    .await?;
    Ok(())
}

/// `budget.threshold_reached`: live spend this month reached `percent` of
/// the cap.
pub async fn threshold_reached(
    tx: &mut Tx,
    account: AccountId,
    percent: u32,
    spend: &Money,
    cap: &Money,
    now: Timestamp,
) -> Result<(), StoreError> {
    let object = json!({
        "object": "budget",
        "percent": percent,
        "period": bounty_store::ledger::period_name(now),
        "spend": money(spend),
        "cap": money(cap),
    });
    emit_event(
        tx,
        account,
        ApiKeyMode::Live,
        EventType::BudgetThresholdReached,
        object,
        now,
    )
    .await?;
    let notice = Notice {
        audience: Audience::Account(account),
        kind: "budget.threshold_reached",
        title: format!("Spend reached {percent}% of your monthly cap"),
        body: format!(
            "This month's spend is {} of your {} cap. New tasks are refused once the cap is reached; \
             change it on the Billing page.",
            major(spend),
            major(cap)
        ),
    };
    notify(tx, &notice, now).await?;
    Ok(())
}

/// `credits.low`: prepaid credits fell below a fifth of the last grant.
pub async fn credits_low(
    tx: &mut Tx,
    account: AccountId,
    mode: ApiKeyMode,
    balance_milli: i64,
    last_grant_milli: i64,
    now: Timestamp,
) -> Result<(), StoreError> {
    let object = json!({
        "object": "credits",
        "balance_cu_milli": balance_milli,
        "last_grant_cu_milli": last_grant_milli,
    });
    emit_event(tx, account, mode, EventType::CreditsLow, object, now).await?;
    if mode.livemode() {
        let notice = Notice {
            audience: Audience::Account(account),
            kind: "credits.low",
            title: "Your prepaid credits are running low".to_owned(),
            body: format!(
                "{} CU of prepaid credits are left, under a fifth of your last grant ({} CU). \
                 Outcomes past them are billed at your plan's price.",
                cu(balance_milli),
                cu(last_grant_milli)
            ),
        };
        notify(tx, &notice, now).await?;
    }
    Ok(())
}

/// `dispute.opened`, `dispute.accepted` or `dispute.rejected`.
#[allow(clippy::too_many_arguments)] // the dispute's fields, each its own
pub async fn dispute_event(
    tx: &mut Tx,
    kind: EventType,
    account: AccountId,
    mode: ApiKeyMode,
    dispute: bounty_core::DisputeId,
    outcome: bounty_core::OutcomeId,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let status = match kind {
        EventType::DisputeAccepted => "accepted",
        EventType::DisputeRejected => "rejected",
        _ => "open",
    };
    let object = json!({
        "id": dispute.to_string(),
        "object": "dispute",
        "outcome_id": outcome.to_string(),
        "status": status,
        "reason": reason,
    });
    emit_event(tx, account, mode, kind, object, now).await?;
    if kind != EventType::DisputeOpened {
        let notice = Notice {
            audience: Audience::Account(account),
            kind: "dispute.decided",
            title: format!("Your dispute {dispute} was {status}"),
            body: match (kind, reason) {
                (EventType::DisputeAccepted, _) => format!("The charge for outcome {outcome} is reversed."),
                (_, Some(why)) => format!("The charge for outcome {outcome} stands: {why}"),
                (_, None) => format!("The charge for outcome {outcome} stands."),
            },
        };
        notify(tx, &notice, now).await?;
    }
    Ok(())
}

/// `invoice.finalized` or `invoice.paid`: Stripe's invoice, in minor
/// units as Stripe gives them. Once per Stripe event (a redelivery is
/// recorded as a duplicate before this runs).
pub async fn invoice_event(
    tx: &mut Tx,
    kind: EventType,
    account: AccountId,
    invoice: &bounty_store::stripe_events::StripeInvoice,
    now: Timestamp,
) -> Result<(), StoreError> {
    let object = json!({
        "id": invoice.id,
        "object": "invoice",
        "status": invoice.status.as_str(),
        "currency": invoice.currency.as_str().to_ascii_lowercase(),
        "amount_due": invoice.amount_due,
        "amount_paid": invoice.amount_paid,
        "total": invoice.total,
        "period_start": invoice.period_start.map(|t| t.timestamp()),
        "period_end": invoice.period_end.map(|t| t.timestamp()),
        "hosted_invoice_url": invoice.hosted_invoice_url,
    });
    emit_event(tx, account, ApiKeyMode::Live, kind, object, now).await?;
    Ok(())
}

/// Whether a balance going from `before` to `after` crossed below a fifth
/// of the last grant.
pub fn crossed_low(before: i64, after: i64, last_grant: i64) -> bool {
    let line = last_grant / 5;
    last_grant > 0 && before >= line && after < line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_final_and_resolved_moves_are_outcome_events() {
        use OutcomeStatus::*;
        assert_eq!(
            outcome_event_type(Some(Verifying), Resolved),
            Some(EventType::OutcomeResolved)
        );
        assert_eq!(outcome_event_type(None, Failed), Some(EventType::OutcomeFailed));
        assert_eq!(
            outcome_event_type(Some(Resolved), Reversed),
            Some(EventType::OutcomeReversed)
        );
        assert_eq!(
            outcome_event_type(Some(Verifying), Escalated),
            Some(EventType::OutcomeEscalated)
        );
        assert_eq!(outcome_event_type(Some(Resolved), Resolved), None);
        assert_eq!(outcome_event_type(None, Verifying), None);
    }

    #[test]
    fn credits_are_low_below_a_fifth_of_the_last_grant_once() {
        assert!(crossed_low(2_000, 1_999, 10_000));
        assert!(!crossed_low(1_999, 1_000, 10_000));
        assert!(!crossed_low(5_000, 2_000, 10_000));
        assert!(!crossed_low(5_000, 0, 0));
    }
}
