//! Disputes: the one home of opening and deciding one.
//!
//! [`open_dispute`] fixes the evidence pack, records the dispute and its
//! receipt event, and, when the plan's dispute policy says so
//! (`bounty_core::dispute::auto_accepts`), accepts it at once. That all
//! happens in one transaction under the account's billing lock.
//! [`decide_dispute`] is the operator's accept or reject. Accepting goes
//! through settlement's ordinary reversal path
//! ([`settle_event`](crate::settle::settle_event) with
//! `OutcomeEvent::DisputeAccepted`). Its transfers reverse the charge, and
//! its outbox row cancels the meter event in Stripe within 24 hours, or
//! credits the customer's balance after. A second acceptance finds the
//! dispute decided and the outcome reversed, so nothing is charged back
//! twice.
//!
//! The evidence pack is one JSON document, the same for both sides:
//! - the dispute;
//! - the outcome, with its policy and policy hash;
//! - the task's input, output and transcript;
//! - every receipt event, with its verdicts, signal, inputs hash and maker;
//! - the rating with its formula;
//! - the ledger transfers.
//!
//! It never holds our inference cost or margin. Its SHA-256 is stored
//! beside it, and the database refuses any change to either.

use bounty_core::dispute::{DisputeMonth, DisputeReason, DisputeStatus, auto_accepts};
use bounty_core::outcome::{ChargeEffect, OutcomeEvent, OutcomeStatus, ReceiptEvent};
use bounty_core::{AccountId, Actor, DisputeId, OutcomeId, Timestamp};
use bounty_store::disputes::{
    Dispute, NewDispute, accepted_disputes_since, charged_outcomes_since, decide_dispute as write_decision,
    dispute_in, insert_dispute,
};
use bounty_store::ledger::{lock_billing, period_start};
use bounty_store::outcomes::{NewOutcomeEvent, insert_outcome_event, outcome_in};
use bounty_store::{EventEvidence, Outcome, Store, StoreError};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::settle::{OutcomeError, settle_event};

/// The longest comment a dispute keeps.
pub const MAX_COMMENT_CHARS: usize = 2_000;

/// Why a dispute was not opened or decided.
#[derive(Debug, thiserror::Error)]
pub enum DisputeError {
    #[error("no such outcome")]
    OutcomeNotFound,
    #[error("no such dispute")]
    NotFound,
    /// Only a charged (resolved) outcome can be disputed.
    #[error("the outcome is {0}: only a charged (resolved) outcome can be disputed")]
    NotDisputable(OutcomeStatus),
    /// The outcome has a dispute already.
    #[error("the outcome has been disputed already ({0})")]
    AlreadyDisputed(DisputeId),
    /// The dispute was decided already.
    #[error("the dispute was {0} already")]
    AlreadyDecided(DisputeStatus),
    /// A rejection must say why: the customer reads it.
    #[error("a rejection needs a reason, which the customer reads")]
    ReasonRequired,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<OutcomeError> for DisputeError {
    fn from(e: OutcomeError) -> Self {
        match e {
            OutcomeError::Store(e) => DisputeError::Store(e),
            OutcomeError::NotFound => DisputeError::OutcomeNotFound,
            // Under the billing lock the outcome was read resolved; a
            // refusal now means the store changed beneath the lock.
            other => DisputeError::Store(StoreError::Corrupt(format!(
                "dispute acceptance refused: {other}"
            ))),
        }
    }
}

/// The customer's side of a dispute.
#[derive(Debug, Clone)]
pub struct DisputeRequest<'a> {
    pub reason: DisputeReason,
    pub comment: Option<&'a str>,
    /// Who opens it: the customer's API key, or an operator.
    pub actor: Actor,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The evidence pack of `outcome` (see the module docs), as read now.
async fn evidence(store: &Store, outcome: &Outcome, dispute: &Value) -> Result<Value, StoreError> {
    let account = outcome.account_id;
    let task = store.get_task(account, outcome.task_id).await?;
    let events = store.outcome_events(account, outcome.id).await?;
    let transfers = store.transfers(account, Some(outcome.id), None).await?;
    Ok(json!({
        "format": "bounty.dispute_evidence.v1",
        "dispute": dispute,
        "outcome": {
            "id": outcome.id,
            "task_id": outcome.task_id,
            "agent": {"id": outcome.agent_id, "version": outcome.agent_version},
            "outcome_type": outcome.outcome_type,
            "status": outcome.status.as_str(),
            "livemode": outcome.mode.livemode(),
            "cu": outcome.cu.decimal(),
            "amount_micros": outcome.amount.micros,
            "currency": outcome.amount.currency.as_str(),
            "policy": outcome.policy,
            "policy_hash": outcome.policy_hash,
            "window_ends_at": outcome.window_ends_at,
            "created_at": outcome.created_at,
            "decided_at": outcome.decided_at,
        },
        "task": task.map(|t| json!({
            "id": t.id,
            "input": t.input,
            "external_ref": t.external_ref,
            "output": t.output,
            "output_model": t.output_model,
            "transcript": t.transcript,
            "created_at": t.created_at,
            "finished_at": t.finished_at,
        })),
        "receipt": events.iter().map(|e| json!({
            "seq": e.seq,
            "event": e.event.as_str(),
            "from_status": e.from_status.map(|s| s.as_str()),
            "to_status": e.to_status.as_str(),
            "effect": e.effect,
            "verdicts": e.verdicts,
            "signal": e.signal,
            "policy_version": e.policy_version,
            "policy_hash": e.policy_hash,
            "inputs_hash": e.inputs_hash,
            "reason": e.reason,
            "actor": e.actor.as_ref().map(|a| a.to_string()),
            "created_at": e.created_at,
        })).collect::<Vec<_>>(),
        "rating": outcome.rating,
        "transfers": transfers.iter().map(|t| json!({
            "id": t.id,
            "kind": t.kind.as_str(),
            "debit": t.debit.as_str(),
            "credit": t.credit.as_str(),
            "amount": t.amount,
            "unit": t.unit.as_str(),
            "reverses_id": t.reverses_id,
            "created_at": t.created_at,
        })).collect::<Vec<_>>(),
    }))
}

/// The receipt entry of a dispute's opening or rejection: no change.
async fn note_on_receipt(
    tx: &mut bounty_store::Tx,
    outcome: &Outcome,
    event: ReceiptEvent,
    evidence: &EventEvidence,
    reason: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let record = NewOutcomeEvent {
        event,
        from: Some(outcome.status),
        to: outcome.status,
        effect: ChargeEffect::None,
        evidence,
        reason,
    };
    insert_outcome_event(tx, outcome, record, now).await
}

/// What a dispute event records beside its transition.
fn dispute_evidence(dispute: DisputeId, actor: Actor, extra: Value) -> EventEvidence {
    let mut signal = json!({"kind": "dispute", "dispute_id": dispute});
    if let (Some(s), Some(e)) = (signal.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    EventEvidence {
        verdicts: None,
        signal: Some(signal),
        actor,
    }
}

/// Opens a dispute of one of the account's charged outcomes, accepting it
/// at once when the plan's dispute policy says so.
pub async fn open_dispute(
    store: &Store,
    account: AccountId,
    outcome_id: OutcomeId,
    request: &DisputeRequest<'_>,
) -> Result<Dispute, DisputeError> {
    // The evidence is read before the transaction and checked under the
    // billing lock: an outcome that changed meanwhile is read again.
    for _ in 0..3 {
        let outcome = store
            .get_outcome(account, outcome_id)
            .await?
            .ok_or(DisputeError::OutcomeNotFound)?;
        if outcome.status != OutcomeStatus::Resolved {
            return Err(DisputeError::NotDisputable(outcome.status));
        }
        let id = DisputeId::new();
        let now = store.now();
        let header = json!({
            "id": id,
            "outcome_id": outcome_id,
            "reason": request.reason.as_str(),
            "comment": request.comment,
            "opened_by": request.actor.to_string(),
            "opened_at": now,
        });
        let pack = serde_json::to_string(&evidence(store, &outcome, &header).await?)
            .map_err(|e| StoreError::Corrupt(format!("evidence pack: {e}")))?;
        let hash = sha256_hex(pack.as_bytes());
        let mut tx = store.begin().await?;
        let billing = lock_billing(&mut tx, account, now).await?;
        let current = outcome_in(&mut tx, account, outcome_id)
            .await?
            .ok_or(DisputeError::OutcomeNotFound)?;
        if current.updated_at != outcome.updated_at || current.status != outcome.status {
            continue;
        }
        let new = NewDispute {
            id,
            account,
            outcome: outcome_id,
            mode: outcome.mode,
            reason: request.reason,
            comment: request.comment,
            evidence: &pack,
            evidence_sha256: &hash,
            opened_by: &request.actor,
        };
        if !insert_dispute(&mut tx, &new, now).await? {
            drop(tx);
            let existing = store
                .dispute_of_outcome(account, outcome_id)
                .await?
                .ok_or_else(|| StoreError::Corrupt("a dispute conflicted but is not there".into()))?;
            return Err(DisputeError::AlreadyDisputed(existing.id));
        }
        let opened = dispute_evidence(
            id,
            request.actor.clone(),
            json!({"reason": request.reason.as_str()}),
        );
        let why = format!("disputed by {}: {}", request.actor.describe(), request.reason);
        note_on_receipt(&mut tx, &outcome, ReceiptEvent::DisputeOpened, &opened, &why, now).await?;
        crate::events::dispute_event(
            &mut tx,
            bounty_core::event::EventType::DisputeOpened,
            account,
            outcome.mode,
            id,
            outcome_id,
            Some(request.reason.as_str()),
            now,
        )
        .await?;
        let month_start = period_start(now);
        let month = DisputeMonth {
            accepted: accepted_disputes_since(&mut tx, account, outcome.mode, month_start).await?,
            charged: charged_outcomes_since(&mut tx, account, outcome.mode, month_start).await?,
        };
        let charged_at = outcome.decided_at.unwrap_or(outcome.created_at);
        if auto_accepts(billing.plan.disputes.as_ref(), charged_at, now, month) {
            accept(&mut tx, account, outcome_id, id, &Actor::DisputePolicy, None, now).await?;
            tracing::info!(dispute.id = %id, outcome.id = %outcome_id, "dispute accepted by the plan's policy");
        }
        tx.commit().await?;
        return store
            .get_dispute(account, id)
            .await?
            .ok_or(DisputeError::NotFound);
    }
    Err(DisputeError::Store(StoreError::Corrupt(
        "the outcome kept changing while its dispute was opened; try again".into(),
    )))
}

/// Accepts an open dispute inside the caller's transaction: the decision,
/// then the reversal through settlement.
async fn accept(
    tx: &mut bounty_store::Tx,
    account: AccountId,
    outcome: OutcomeId,
    dispute: DisputeId,
    by: &Actor,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<(), DisputeError> {
    if !write_decision(tx, account, dispute, DisputeStatus::Accepted, by, reason, now).await? {
        return Err(DisputeError::AlreadyDecided(DisputeStatus::Accepted));
    }
    let extra = json!({"decision": "accepted", "reason": reason});
    let applied = settle_event(
        tx,
        account,
        outcome,
        OutcomeEvent::DisputeAccepted,
        dispute_evidence(dispute, by.clone(), extra),
        now,
    )
    .await?;
    crate::events::dispute_event(
        tx,
        bounty_core::event::EventType::DisputeAccepted,
        account,
        applied.outcome.mode,
        dispute,
        outcome,
        reason,
        now,
    )
    .await?;
    Ok(())
}

/// The operator's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Accept,
    Reject,
}

/// Accepts or rejects one of the account's open disputes, as `operator`;
/// a rejection needs a reason, which the customer reads.
pub async fn decide_dispute(
    store: &Store,
    account: AccountId,
    id: DisputeId,
    decision: Decision,
    operator: &Actor,
    reason: Option<&str>,
) -> Result<Dispute, DisputeError> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    if decision == Decision::Reject && reason.is_none() {
        return Err(DisputeError::ReasonRequired);
    }
    let now = store.now();
    let mut tx = store.begin().await?;
    lock_billing(&mut tx, account, now).await?;
    let dispute = dispute_in(&mut tx, account, id)
        .await?
        .ok_or(DisputeError::NotFound)?;
    if dispute.status != DisputeStatus::Open {
        return Err(DisputeError::AlreadyDecided(dispute.status));
    }
    match decision {
        Decision::Accept => accept(&mut tx, account, dispute.outcome_id, id, operator, reason, now).await?,
        Decision::Reject => {
            if !write_decision(
                &mut tx,
                account,
                id,
                DisputeStatus::Rejected,
                operator,
                reason,
                now,
            )
            .await?
            {
                return Err(DisputeError::AlreadyDecided(DisputeStatus::Rejected));
            }
            let outcome = outcome_in(&mut tx, account, dispute.outcome_id)
                .await?
                .ok_or(DisputeError::OutcomeNotFound)?;
            let why = format!(
                "dispute rejected by {}: {}; the charge stands",
                operator.describe(),
                reason.unwrap_or_default()
            );
            let evidence = dispute_evidence(
                id,
                operator.clone(),
                json!({"decision": "rejected", "reason": reason}),
            );
            note_on_receipt(
                &mut tx,
                &outcome,
                ReceiptEvent::DisputeRejected,
                &evidence,
                &why,
                now,
            )
            .await?;
            crate::events::dispute_event(
                &mut tx,
                bounty_core::event::EventType::DisputeRejected,
                account,
                outcome.mode,
                id,
                dispute.outcome_id,
                reason,
                now,
            )
            .await?;
        }
    }
    tx.commit().await?;
    store
        .get_dispute(account, id)
        .await?
        .ok_or(DisputeError::NotFound)
}
