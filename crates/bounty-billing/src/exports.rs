//! The per-charge export: one line per outcome charged in a period, as
//! JSON or CSV, for the customer's finance team and for reconciling with
//! Stripe's invoice.
//!
//! A line shows:
//! - the outcome and its task's ticket;
//! - when it was resolved and charged;
//! - its CU: those the plan's allowance covered, those paid from credits,
//!   and those metered to Stripe;
//! - the plan's price per CU;
//! - the amount;
//! - the verdicts and the signals;
//! - the receipt's hash;
//! - its reversal, if any, and how Stripe undid it: the meter event
//!   cancelled within 24 h, or a balance credit after.
//!
//! A buyer can recompute every amount from the line alone: `amount_micros`
//! is `metered_mcu × price_per_cu_micros / 1000`, rounded half up.
//!
//! The totals say what Stripe's invoice for the period holds:
//! - the metered milli-CU less those whose meter event was cancelled;
//! - that quantity priced the way Stripe prices it, at the catalogue's
//!   `unit_amount_decimal` per milli-CU, rounded once, to minor units;
//! - the credits applied to a later invoice.
//!
//! The receipt hash is the SHA-256 of the receipt's events, one line each:
//! `seq|event|to_status|effect|policy_hash|inputs_hash|created_at`
//! (RFC 3339, UTC), joined by `\n`. The JSON export carries every event,
//! so it can be checked from the export alone.

use bounty_core::ledger::price_of;
use bounty_core::outcome::{ChargeEffect, ReceiptEvent};
use bounty_core::text::csv_cell;
use std::collections::HashMap;

use bounty_core::{AccountId, ApiKeyMode, ComputeUnits, Currency, OutcomeId, TaskId, Timestamp};
use bounty_store::{OutcomeEventRecord, Store, StoreError};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::outbox::reversal_credits;

/// The most lines one export holds; a longer period is split.
pub const MAX_LINES: usize = 10_000;

/// One receipt event, as exported.
#[derive(Debug, Clone, Serialize)]
pub struct ExportEvent {
    pub seq: i32,
    pub event: String,
    pub to_status: String,
    pub effect: String,
    pub policy_hash: String,
    pub inputs_hash: String,
    pub created_at: Timestamp,
}

/// One charged outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ChargeLine {
    pub outcome_id: String,
    pub task_id: String,
    /// The ticket: the task's external reference, else its subject.
    pub ticket: String,
    pub resolved_at: Option<Timestamp>,
    pub charged_at: Timestamp,
    /// Every CU the outcome came to, as a decimal string.
    pub cu: String,
    pub included_mcu: i64,
    pub credit_mcu: i64,
    /// Milli-CU metered to Stripe: what the invoice counts.
    pub metered_mcu: i64,
    pub price_per_cu_micros: i64,
    /// `metered_mcu × price_per_cu_micros / 1000`, rounded half up.
    pub amount_micros: i64,
    pub currency: String,
    /// `resolved`, or `reversed`/`failed` when the charge was reversed.
    pub status: String,
    pub reversed_at: Option<Timestamp>,
    /// `cancel` (the meter event removed within 24 h), `credit` (a balance
    /// credit on a later invoice) or empty.
    pub reversal: String,
    /// `verifier version: decision`, `; `-separated.
    pub verdicts: String,
    /// The ticket source's signals, `; `-separated.
    pub signals: String,
    pub receipt_sha256: String,
    pub receipt: Vec<ExportEvent>,
}

/// The period's totals, as Stripe's invoice counts them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChargeTotals {
    pub lines: usize,
    pub metered_mcu: i64,
    pub amount_micros: i64,
    /// Metered milli-CU whose meter event was cancelled (reversed within
    /// 24 h): not on the invoice.
    pub cancelled_mcu: i64,
    /// What the invoice's usage line counts: `metered_mcu − cancelled_mcu`.
    pub invoiced_mcu: i64,
    /// The invoice's usage line: `invoiced_mcu` at the catalogue's price
    /// per milli-CU, rounded once, in minor units of `currency`.
    pub invoiced_amount_minor: i64,
    /// Reversed after 24 h: credited to the customer's balance, taken off a
    /// later invoice.
    pub credited_amount_micros: i64,
    pub currency: String,
}

/// The export.
#[derive(Debug, Clone, Serialize)]
pub struct ChargeExport {
    pub from: Timestamp,
    pub to: Timestamp,
    pub livemode: bool,
    pub lines: Vec<ChargeLine>,
    pub totals: ChargeTotals,
}

/// Why there is no export.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the period holds more than {MAX_LINES} charges; export a shorter one")]
    TooLarge,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The receipt's hash (see the module docs).
pub fn receipt_sha256(events: &[ExportEvent]) -> String {
    let text = events
        .iter()
        .map(|e| {
            format!(
                "{}|{}|{}|{}|{}|{}|{}",
                e.seq,
                e.event,
                e.to_status,
                e.effect,
                e.policy_hash,
                e.inputs_hash,
                e.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

/// `mcu` at `price_per_cu_micros`, the way Stripe's invoice prices it: to
/// minor units of `currency`, rounded half up, once for the whole quantity.
pub fn stripe_amount_minor(mcu: i64, price_per_cu_micros: i64, currency: Currency) -> i64 {
    // micros per CU ÷ 1000 = micros per mCU; ÷ 10^(6 − exp) = minor units.
    let divisor = 1000_i128 * 10_i128.pow(6 - currency.minor_exponent().min(6));
    let x = i128::from(mcu) * i128::from(price_per_cu_micros);
    i64::try_from((2 * x + divisor).div_euclid(2 * divisor)).unwrap_or(i64::MAX)
}

fn line_of_events(events: &[OutcomeEventRecord]) -> (Vec<ExportEvent>, String, String, Option<Timestamp>) {
    let exported: Vec<ExportEvent> = events
        .iter()
        .map(|e| ExportEvent {
            seq: e.seq,
            event: e.event.as_str().to_owned(),
            to_status: e.to_status.as_str().to_owned(),
            effect: e.effect.to_string(),
            policy_hash: e.policy_hash.clone(),
            inputs_hash: e.inputs_hash.clone(),
            created_at: e.created_at,
        })
        .collect();
    let verdicts = events
        .iter()
        .flat_map(|e| e.verdicts.iter().flatten())
        .map(|v| format!("{}: {}", v.version, v.decision))
        .collect::<Vec<_>>()
        .join("; ");
    let signals = events
        .iter()
        .filter(|e| e.event == ReceiptEvent::Signal)
        .filter_map(|e| e.signal.as_ref().map(|s| (s, e.created_at)))
        .map(|(s, at)| {
            let kind = s["kind"].as_str().unwrap_or("signal");
            match s["score"].as_u64() {
                Some(score) => format!("{kind} {score} at {}", at.format("%Y-%m-%dT%H:%M:%SZ")),
                None => format!("{kind} at {}", at.format("%Y-%m-%dT%H:%M:%SZ")),
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    let reversed_at = events
        .iter()
        .find(|e| e.effect == ChargeEffect::Reverse)
        .map(|e| e.created_at);
    (exported, verdicts, signals, reversed_at)
}

/// Outcomes read per statement.
const BATCH: usize = 500;

/// The account's charges of `mode` in `[from, to)`.
pub async fn charge_export(
    store: &Store,
    account: AccountId,
    mode: ApiKeyMode,
    from: Timestamp,
    to: Timestamp,
) -> Result<ChargeExport, ExportError> {
    let charged = store.charged_outcomes(account, mode, from, to).await?;
    if charged.len() > MAX_LINES {
        return Err(ExportError::TooLarge);
    }
    let plan = store.plan(account).await?;
    let mut totals = ChargeTotals {
        currency: plan.currency().to_string(),
        ..Default::default()
    };
    let mut lines = Vec::with_capacity(charged.len());
    // Outcomes, tasks and receipt events are read a batch at a time: three
    // statements per batch, not three per line.
    let mut outcomes = HashMap::new();
    let mut tasks = HashMap::new();
    let mut events: HashMap<OutcomeId, Vec<OutcomeEventRecord>> = HashMap::new();
    for batch in charged.chunks(BATCH) {
        let ids: Vec<OutcomeId> = batch.iter().map(|c| c.outcome).collect();
        let found = store.outcomes_by_ids(account, &ids).await?;
        let task_ids: Vec<TaskId> = found.iter().map(|o| o.task_id).collect();
        for t in store.tasks_by_ids(account, &task_ids).await? {
            tasks.insert(t.id, t);
        }
        for o in found {
            outcomes.insert(o.id, o);
        }
        for (id, e) in store.events_of_outcomes(account, &ids).await? {
            events.entry(id).or_default().push(e);
        }
    }
    for c in charged {
        let Some(outcome) = outcomes.remove(&c.outcome) else {
            continue;
        };
        let task = tasks.remove(&outcome.task_id);
        let events = events.remove(&outcome.id).unwrap_or_default();
        let (receipt, verdicts, signals, reversed_at) = line_of_events(&events);
        let rating = outcome.rating.as_ref();
        let price = rating.map_or(plan.price_per_cu, |r| r.plan.price_per_cu);
        let amount =
            price_of(ComputeUnits::from_milli(c.metered_mcu), price.micros).unwrap_or(c.amount_micros);
        let reversal = match reversed_at {
            Some(at) if reversal_credits(c.charged_at.timestamp(), at.timestamp()) => "credit",
            Some(_) => "cancel",
            None => "",
        };
        totals.lines += 1;
        totals.metered_mcu += c.metered_mcu;
        totals.amount_micros += amount;
        match reversal {
            "cancel" => totals.cancelled_mcu += c.metered_mcu,
            "credit" => totals.credited_amount_micros += amount,
            _ => {}
        }
        lines.push(ChargeLine {
            outcome_id: outcome.id.to_string(),
            task_id: outcome.task_id.to_string(),
            ticket: task
                .map(|t| t.external_ref.unwrap_or(t.input.subject))
                .unwrap_or_default(),
            resolved_at: outcome.decided_at,
            charged_at: c.charged_at,
            cu: ComputeUnits::from_milli(c.included_mcu + c.credit_mcu + c.metered_mcu).decimal(),
            included_mcu: c.included_mcu,
            credit_mcu: c.credit_mcu,
            metered_mcu: c.metered_mcu,
            price_per_cu_micros: price.micros,
            amount_micros: amount,
            currency: c.currency.unwrap_or_else(|| price.currency.to_string()),
            status: outcome.status.as_str().to_owned(),
            reversed_at,
            reversal: reversal.to_owned(),
            verdicts,
            signals,
            receipt_sha256: receipt_sha256(&receipt),
            receipt,
        });
    }
    totals.invoiced_mcu = totals.metered_mcu - totals.cancelled_mcu;
    totals.invoiced_amount_minor =
        stripe_amount_minor(totals.invoiced_mcu, plan.price_per_cu.micros, plan.currency());
    Ok(ChargeExport {
        from,
        to,
        livemode: mode.livemode(),
        lines,
        totals,
    })
}

/// The export as CSV: a header, one row per line, then a `total` row.
pub fn to_csv(export: &ChargeExport) -> String {
    let mut out = String::from(
        "outcome_id,task_id,ticket,resolved_at,charged_at,cu,included_mcu,credit_mcu,metered_mcu,\
         price_per_cu_micros,amount_micros,currency,status,reversed_at,reversal,verdicts,signals,receipt_sha256\r\n",
    );
    let time = |t: Option<Timestamp>| {
        t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    };
    for l in &export.lines {
        let cells = [
            csv_cell(&l.outcome_id),
            csv_cell(&l.task_id),
            csv_cell(&l.ticket),
            time(l.resolved_at),
            time(Some(l.charged_at)),
            l.cu.clone(),
            l.included_mcu.to_string(),
            l.credit_mcu.to_string(),
            l.metered_mcu.to_string(),
            l.price_per_cu_micros.to_string(),
            l.amount_micros.to_string(),
            csv_cell(&l.currency),
            l.status.clone(),
            time(l.reversed_at),
            l.reversal.clone(),
            csv_cell(&l.verdicts),
            csv_cell(&l.signals),
            l.receipt_sha256.clone(),
        ];
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    let t = &export.totals;
    out.push_str(&format!(
        "total,,,,,,,,{},,{},{},,,,invoiced_mcu={} invoiced_amount_minor={} cancelled_mcu={} credited_amount_micros={},,\r\n",
        t.metered_mcu,
        t.amount_micros,
        csv_cell(&t.currency),
        t.invoiced_mcu,
        t.invoiced_amount_minor,
        t.cancelled_mcu,
        t.credited_amount_micros,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_rounds_the_whole_quantity_once() {
        let usd = Currency::USD;
        // 1 CU at 1 USD: 1000 mCU at 0.1 cent each.
        assert_eq!(stripe_amount_minor(1_000, 1_000_000, usd), 100);
        // 0.5 cent rounds half up; 0.4 cent rounds down.
        assert_eq!(stripe_amount_minor(5, 1_000_000, usd), 1);
        assert_eq!(stripe_amount_minor(4, 1_000_000, usd), 0);
        // Three lines of 4 mCU are 1.2 cents together: 1 cent, not 0.
        assert_eq!(stripe_amount_minor(12, 1_000_000, usd), 1);
        let jpy: Currency = "jpy".parse().unwrap();
        assert_eq!(stripe_amount_minor(1_000, 150_000_000, jpy), 150);
    }

    #[test]
    fn the_receipt_hash_covers_every_event_in_order() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-05-01T10:00:00Z")
            .unwrap()
            .to_utc();
        let e = |seq, event: &str| ExportEvent {
            seq,
            event: event.into(),
            to_status: "resolved".into(),
            effect: "charge".into(),
            policy_hash: "p".into(),
            inputs_hash: "i".into(),
            created_at: at,
        };
        let one = receipt_sha256(&[e(1, "verified")]);
        assert_eq!(
            one,
            format!(
                "{:x}",
                Sha256::digest(b"1|verified|resolved|charge|p|i|2026-05-01T10:00:00.000000Z")
            )
        );
        assert_ne!(receipt_sha256(&[e(1, "verified"), e(2, "signal")]), one);
    }
}
