//! Settlement: the one home of every change to an outcome. It opens a
//! finished task's outcome, and it charges, reverses or only records what
//! happens to one after: the verifiers' verdict, a signal from the ticket
//! source, the window's lapse, an operator's goodwill reversal.
//!
//! Each change is one transaction: the account's billing lock (its
//! `account_billing` row; on SQLite the write lock), the pure transition
//! (`bounty_core::outcome::transition`), the receipt event, the ledger
//! transfers `bounty_core::ledger` decides, the meter event in the outbox,
//! the usage rollup and the verified-answer cache. A crash at any point
//! leaves either all of it or none, and an account's changes never
//! interleave their balance reads and writes. The store only reads and
//! writes the rows; every rule is here or in core.
//!
//! The worker's finish (bounty-agents) calls [`settle_completed`] and
//! [`settle_failed`] inside its own transaction; helpdesk intake
//! (`bounty_integrations::intake`) calls [`settle_event`] inside the
//! delivery's; the API, the CLI and the
//! lapse sweep use [`apply_signal`], [`goodwill_reversal`] and
//! [`lapse_outcomes`], which make their own.

use bounty_core::conversation::reopen_resumes;
use bounty_core::ledger::{
    BaseKind, ChargeBalances, LedgerAccount, TransferKind, TransferUnit, alerts_crossed, plan_charge,
    plan_reversal,
};
use bounty_core::outbox::{MeterEventPayload, MeterEventReversalPayload, OutboxKind};
use bounty_core::outcome::{
    ChargeEffect, OutcomeContext, OutcomeEvent, OutcomeStatus, ReceiptEvent, Signal, Transition,
    TransitionError, transition,
};
use bounty_core::plan::{RatingInput, RatingReceipt, rate};
use bounty_core::{
    AccountId, Actor, AgentId, ApiKeyMode, ComputeUnits, Decision, Money, OutcomeId, TaskId, Timestamp,
    VerificationPolicy, VerifierVerdict,
};
use bounty_store::answer_cache::{forget_answer, remember_answer};
use bounty_store::conversation::queue_next_turn;
use bounty_store::ledger::{
    Billing, balance, insert_cap_alert, insert_transfer, lock_billing, money_spent_since, net_since,
    period_start, read_billing, release_reservation, unreversed_transfers,
};
use bounty_store::outbox::{enqueue, ensure_test_customer};
use bounty_store::outcomes::{
    NewOutcomeEvent, OutcomeSource, insert_outcome, insert_outcome_event, outcome_in, outcome_of_task_in,
    outcome_source, rated_usage, set_outcome_rating, set_outcome_status, set_outcome_turn,
};
use bounty_store::usage::{UsageKey, move_usage};
use bounty_store::{EventEvidence, Outcome, Store, StoreError, Tx};
use sha2::{Digest, Sha256};

/// What an outcome event did.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub outcome: Outcome,
    pub from: OutcomeStatus,
    pub effect: ChargeEffect,
    pub reason: String,
    /// A reopen resumed the conversation: its task is queued for a new
    /// turn, worked for free (the caller may wake a worker).
    pub resumed: bool,
}

/// Why an outcome event was not applied.
#[derive(Debug, thiserror::Error)]
pub enum OutcomeError {
    #[error("no such outcome")]
    NotFound,
    /// The event makes no sense in the outcome's status.
    #[error("{0}")]
    NotAllowed(String),
    /// A ticket-source signal for an outcome that does not await one (no
    /// `external` verifier, or its window is over). It is recorded on the
    /// receipt as `signal_refused` and changes nothing.
    #[error("{0}")]
    NotApplicable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The task whose attempt just ended, as its outcome needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskKey {
    pub account: AccountId,
    pub task: TaskId,
    pub agent_id: AgentId,
    pub agent_version: i32,
    /// Live or test: the outcome is of its task's mode.
    pub mode: ApiKeyMode,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn to_value(v: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(v).expect("serializes to JSON")
}

/// Rates a resolved outcome and writes the transfers `plan_charge`
/// decides, its meter event and its cap alerts. The caller holds the
/// billing lock.
async fn charge(
    tx: &mut Tx,
    billing: &Billing,
    outcome: &Outcome,
    now: Timestamp,
) -> Result<RatingReceipt, StoreError> {
    let (account, mode) = (outcome.account_id, outcome.mode);
    let month = period_start(now);
    let included_used = net_since(tx, account, mode, BaseKind::Included, month).await?;
    let (usage, byok) = rated_usage(tx, account, outcome.task_id).await?;
    let input = RatingInput {
        outcome_type: outcome.outcome_type.clone(),
        resolved: true,
        usage,
        // Every attempt's tool time, like every attempt's tokens.
        tool_ms: bounty_store::tool_calls::task_tool_ms(tx, account, outcome.task_id).await?,
        included_used: ComputeUnits::from_milli(included_used),
        byok,
    };
    let receipt = rate(&billing.plan, &input).map_err(|e| corrupt("rating", e))?;
    let credits = balance(tx, account, mode, LedgerAccount::Credits, &TransferUnit::MilliCu).await?;
    let balances = ChargeBalances {
        credits: ComputeUnits::from_milli(credits),
    };
    let transfers = plan_charge(&receipt, balances, billing.plan.price_per_cu)
        .map_err(|e| corrupt(&format!("charging outcome {}", outcome.id), e))?;
    // The cap and its alerts are live money; alerts follow money charged,
    // not reservations.
    let cap = billing.monthly_cap_micros.filter(|_| mode.livemode());
    let spend_before = match cap {
        Some(_) => money_spent_since(tx, account, mode, month).await?,
        None => 0,
    };
    let oid = outcome.id.to_string();
    for t in &transfers {
        let id = insert_transfer(tx, account, t, Some(&oid), None, None, mode, now).await?;
        if t.kind == TransferKind::Charge {
            // Metered CU become a meter event, sent later, exactly once: a
            // test charge's only by a test-mode sender, to Stripe's test
            // mode, and never by the live one.
            if !mode.livemode() {
                ensure_test_customer(tx, account, now).await?;
            }
            let payload = to_value(&MeterEventPayload::of_charge(id, t.amount, now));
            let id = id.to_string();
            enqueue(tx, account, mode, OutboxKind::MeterEvent, Some(&id), payload, now).await?;
        }
    }
    release_reservation(tx, account, outcome.task_id).await?;
    let drawn: i64 = transfers
        .iter()
        .filter(|t| t.kind == TransferKind::CreditDraw)
        .map(|t| t.amount)
        .sum();
    if drawn > 0 {
        let last_grant = bounty_store::ledger::last_credit_grant(tx, account, mode).await?;
        if crate::events::crossed_low(credits, credits - drawn, last_grant) {
            crate::events::credits_low(tx, account, mode, credits - drawn, last_grant, now).await?;
        }
    }
    if let Some(cap) = cap {
        cap_alerts(tx, billing, account, cap, spend_before, now).await?;
    }
    set_outcome_rating(tx, account, outcome.id, &receipt).await?;
    Ok(receipt)
}

/// Records the cap alerts that live spend crossed since it was
/// `spend_before` (read under the same billing lock), each once a month.
pub(crate) async fn cap_alerts(
    tx: &mut Tx,
    billing: &Billing,
    account: AccountId,
    cap: i64,
    spend_before: i64,
    now: Timestamp,
) -> Result<(), StoreError> {
    let spend_after = money_spent_since(tx, account, ApiKeyMode::Live, period_start(now)).await?;
    for pct in alerts_crossed(cap, &billing.alert_percents, spend_before, spend_after) {
        let detail = format!("spend reached {pct}% of the monthly cap ({spend_after} of {cap} micros)");
        tracing::warn!(account.id = %account, percent = pct, "spending cap alert");
        if insert_cap_alert(tx, account, pct, &detail, now).await? {
            let currency = billing.plan.currency();
            crate::events::threshold_reached(
                tx,
                account,
                pct,
                &Money::from_micros(spend_after, currency),
                &Money::from_micros(cap, currency),
                now,
            )
            .await?;
        }
    }
    Ok(())
}

/// Reverses every transfer of the outcome not yet reversed, as
/// `plan_reversal` decides, and undoes its meter event.
async fn reverse(tx: &mut Tx, outcome: &Outcome, memo: &str, now: Timestamp) -> Result<(), StoreError> {
    let account = outcome.account_id;
    let originals = unreversed_transfers(tx, account, outcome.id).await?;
    let specs: Vec<_> = originals.iter().map(|o| o.spec.clone()).collect();
    let reversals =
        plan_reversal(&specs).map_err(|e| corrupt(&format!("reversing outcome {}", outcome.id), e))?;
    let oid = outcome.id.to_string();
    for (original, t) in originals.iter().zip(&reversals) {
        let original_id = original.id.to_string();
        let reversal = insert_transfer(
            tx,
            account,
            t,
            Some(&oid),
            Some(&original_id),
            Some(memo.to_owned()),
            outcome.mode,
            now,
        )
        .await?;
        if original.spec.kind == TransferKind::Charge {
            // Cancelled inside Stripe's window, else credited; the sender
            // decides from the original's timestamp.
            let payload = to_value(&MeterEventReversalPayload::of_reversal(
                &original_id,
                t.amount,
                original.created_at,
                reversal,
            ));
            let reversal = reversal.to_string();
            enqueue(
                tx,
                account,
                outcome.mode,
                OutboxKind::MeterEventReversal,
                Some(&reversal),
                payload,
                now,
            )
            .await?;
        }
    }
    Ok(())
}

/// A reversal always says whose decision it was, and why.
fn with_maker(mut t: Transition, evidence: &EventEvidence) -> Transition {
    if t.effect == ChargeEffect::Reverse {
        let why = evidence
            .signal
            .as_ref()
            .and_then(|s| s["reason"].as_str())
            .filter(|r| !r.trim().is_empty())
            .map(|r| format!(": {}", r.trim()))
            .unwrap_or_default();
        t.reason = format!("{} (by {}{why})", t.reason, evidence.actor.describe());
    }
    t
}

/// Applies `event` to `outcome` (read under the caller's billing lock):
/// the transition, its receipt event, its ledger effect, the rollup and
/// the answer cache. A refused signal is recorded as `signal_refused`.
async fn apply(
    tx: &mut Tx,
    billing: &Billing,
    mut outcome: Outcome,
    event: &OutcomeEvent,
    evidence: &EventEvidence,
    now: Timestamp,
) -> Result<Applied, OutcomeError> {
    let ctx = OutcomeContext::new(
        &outcome.policy,
        now < outcome.window_ends_at,
        now < outcome.goodwill_ends_at,
    );
    let t = match transition(outcome.status, event, &ctx) {
        Ok(t) => with_maker(t, evidence),
        Err(e @ TransitionError::SignalNotApplicable { .. }) => {
            let why = e.to_string();
            let refused = NewOutcomeEvent {
                event: ReceiptEvent::SignalRefused,
                from: Some(outcome.status),
                to: outcome.status,
                effect: ChargeEffect::None,
                evidence,
                reason: &why,
            };
            insert_outcome_event(tx, &outcome, refused, now).await?;
            return Err(OutcomeError::NotApplicable(why));
        }
        Err(e) => return Err(OutcomeError::NotAllowed(e.to_string())),
    };
    let usage_before = UsageKey::of(&outcome);
    let record = NewOutcomeEvent {
        event: ReceiptEvent::of(event),
        from: Some(t.from),
        to: t.to,
        effect: t.effect,
        evidence,
        reason: &t.reason,
    };
    insert_outcome_event(tx, &outcome, record, now).await?;
    match t.effect {
        ChargeEffect::Charge => {
            let receipt = charge(tx, billing, &outcome, now).await?;
            outcome.cu = receipt.cu;
            outcome.amount = receipt.amount;
            crate::events::charge_event(
                tx,
                bounty_core::event::EventType::ChargeCreated,
                &outcome,
                receipt.cu.milli(),
                &receipt.amount,
                now,
            )
            .await?;
            outcome.rating = Some(receipt);
        }
        ChargeEffect::Reverse => {
            reverse(tx, &outcome, &t.reason, now).await?;
            crate::events::charge_event(
                tx,
                bounty_core::event::EventType::ChargeReversed,
                &outcome,
                outcome.cu.milli(),
                &outcome.amount,
                now,
            )
            .await?;
        }
        ChargeEffect::None => {}
    }
    if t.to.is_final() {
        // Failed, reversed or escalated: never charged, so release what
        // the task held against the cap.
        release_reservation(tx, outcome.account_id, outcome.task_id).await?;
    }
    let decided = t.to.decided();
    set_outcome_status(tx, outcome.account_id, outcome.id, t.to, decided, now).await?;
    outcome.status = t.to;
    outcome.updated_at = now;
    if decided && outcome.decided_at.is_none() {
        outcome.decided_at = Some(now);
    }
    move_usage(tx, outcome.account_id, usage_before, UsageKey::of(&outcome)).await?;
    crate::events::outcome_moved(tx, Some(t.from), &outcome, now).await?;
    match (t.from, t.to) {
        (from, OutcomeStatus::Resolved) if from != OutcomeStatus::Resolved => {
            remember_answer(tx, &outcome, now).await?;
        }
        (OutcomeStatus::Resolved, to) if to != OutcomeStatus::Resolved => forget_answer(tx, &outcome).await?,
        _ => {}
    }
    // A reopen resumes the conversation: its task is queued for another
    // turn, worked for free (the outcome stays final).
    let resumed = reopen_resumes(event, &t)
        && queue_next_turn(tx, outcome.account_id, outcome.task_id, now)
            .await?
            .is_some();
    Ok(Applied {
        outcome,
        from: t.from,
        effect: t.effect,
        reason: t.reason,
        resumed,
    })
}

/// Applies an event to one of the account's outcomes inside the caller's
/// transaction, under the account's billing lock; nothing is committed. A
/// refused signal ([`OutcomeError::NotApplicable`]) has written its
/// `signal_refused` receipt event: the caller commits that too.
pub async fn settle_event(
    tx: &mut Tx,
    account: AccountId,
    id: OutcomeId,
    event: OutcomeEvent,
    evidence: EventEvidence,
    now: Timestamp,
) -> Result<Applied, OutcomeError> {
    let billing = lock_billing(tx, account, now).await?;
    let outcome = outcome_in(tx, account, id).await?.ok_or(OutcomeError::NotFound)?;
    apply(tx, &billing, outcome, &event, &evidence, now).await
}

/// Creates the outcome of a finished task, in `status`, judged under its
/// agent version's policy, with the task's inference cost.
async fn open_outcome(
    tx: &mut Tx,
    billing: &Billing,
    key: &TaskKey,
    status: OutcomeStatus,
    now: Timestamp,
) -> Result<Outcome, StoreError> {
    let source = outcome_source(tx, key.account, key.task, key.agent_id, key.agent_version).await?;
    let policy: VerificationPolicy = serde_json::from_str(&source.policy_json)
        .map_err(|e| corrupt("agent_versions.verifier_policy", e))?;
    let (window_ends_at, goodwill_ends_at) = window_from(&policy, now);
    let plan_currency = billing.plan.price_per_cu.currency;
    let inference_cost = inference_cost_of(&source, plan_currency, key.task);
    let outcome = Outcome {
        id: OutcomeId::new(),
        account_id: key.account,
        task_id: key.task,
        agent_id: key.agent_id,
        agent_version: key.agent_version,
        outcome_type: source.outcome_type,
        status,
        policy_hash: hex::encode(Sha256::digest(source.policy_json.as_bytes())),
        policy,
        window_ends_at,
        goodwill_ends_at,
        rating: None,
        cu: ComputeUnits::ZERO,
        amount: Money::zero(plan_currency),
        inference_cost,
        created_at: now,
        updated_at: now,
        decided_at: status.decided().then_some(now),
        mode: key.mode,
    };
    insert_outcome(tx, &outcome, &source.policy_json).await?;
    Ok(outcome)
}

/// The verification window (and the goodwill days after it) of an answer
/// given `now` under `policy`.
fn window_from(policy: &VerificationPolicy, now: Timestamp) -> (Timestamp, Timestamp) {
    let window_ends_at = now + chrono::Duration::hours(i64::from(policy.window_hours));
    (
        window_ends_at,
        window_ends_at + chrono::Duration::days(i64::from(policy.goodwill_days)),
    )
}

/// What a task's model calls cost us, in the plan's currency when they
/// used several.
fn inference_cost_of(source: &OutcomeSource, plan_currency: bounty_core::Currency, task: TaskId) -> Money {
    match source.costs.as_slice() {
        [] => Money::zero(plan_currency),
        [one] => *one,
        many => {
            tracing::warn!(task.id = %task, "model calls in several currencies; margin uses the plan's");
            many.iter()
                .find(|c| c.currency == plan_currency)
                .copied()
                .unwrap_or(many[0])
        }
    }
}

/// A later turn of a conversation ended on its open outcome: the outcome
/// takes every turn's inference cost (moving its usage when it is decided
/// already), and, when it is still to be decided, a fresh window from
/// `now` for the new answer.
async fn refresh_for_turn(
    tx: &mut Tx,
    billing: &Billing,
    key: &TaskKey,
    mut outcome: Outcome,
    now: Timestamp,
) -> Result<Outcome, StoreError> {
    let source = outcome_source(tx, key.account, key.task, key.agent_id, key.agent_version).await?;
    let usage_before = UsageKey::of(&outcome);
    outcome.inference_cost = inference_cost_of(&source, billing.plan.price_per_cu.currency, key.task);
    if !outcome.status.decided() {
        (outcome.window_ends_at, outcome.goodwill_ends_at) = window_from(&outcome.policy, now);
    }
    outcome.updated_at = now;
    set_outcome_turn(tx, &outcome).await?;
    move_usage(tx, key.account, usage_before, UsageKey::of(&outcome)).await?;
    Ok(outcome)
}

/// Applies the end of a turn (the worker's event) to `outcome`, which a
/// new outcome never refuses; a refusal is a broken invariant.
async fn apply_turn(
    tx: &mut Tx,
    billing: &Billing,
    outcome: Outcome,
    event: &OutcomeEvent,
    evidence: &EventEvidence,
    now: Timestamp,
) -> Result<Outcome, StoreError> {
    match apply(tx, billing, outcome, event, evidence, now).await {
        Ok(applied) => Ok(applied.outcome),
        Err(OutcomeError::Store(e)) => Err(e),
        Err(e) => Err(corrupt("an outcome refused the end of its turn", e)),
    }
}

/// A turn of the task's conversation completed: the verifiers' decision
/// (charging when it passes) or, when the agent handed the ticket to a
/// person (`handoff`, its reason), `escalated`, never charged, inside the
/// finish's transaction.
///
/// The first turn to settle opens the outcome. A later turn settles the
/// outcome its conversation continued (`verifying` again). A turn of a
/// resumed conversation (a reopen made the outcome final) leaves the
/// outcome as it is: it is worked for free and never charged again; only
/// a hand-off there is recorded on the receipt.
pub async fn settle_completed(
    tx: &mut Tx,
    key: &TaskKey,
    decision: Decision,
    verdicts: &[VerifierVerdict],
    handoff: Option<&str>,
    now: Timestamp,
) -> Result<Outcome, StoreError> {
    // Only a charge reads and changes balances: lock the account for it
    // alone, so an account's uncharged outcomes never queue on its lock.
    let charges = decision == Decision::Pass && handoff.is_none();
    let billing = read_billing(tx, key.account, now, charges).await?;
    let event = match handoff {
        Some(reason) => OutcomeEvent::HandedOff {
            reason: reason.to_owned(),
        },
        None => OutcomeEvent::Verified(decision),
    };
    let evidence = EventEvidence {
        verdicts: Some(verdicts.to_vec()),
        signal: handoff.map(|reason| serde_json::json!({"kind": "handoff", "reason": reason})),
        actor: Actor::Worker,
    };
    let outcome = match outcome_of_task_in(tx, key.account, key.task).await? {
        None => open_outcome(tx, &billing, key, OutcomeStatus::Verifying, now).await?,
        Some(o) if o.status == OutcomeStatus::Verifying => {
            refresh_for_turn(tx, &billing, key, o, now).await?
        }
        Some(o) if o.status.is_final() => {
            let o = refresh_for_turn(tx, &billing, key, o, now).await?;
            if handoff.is_none() {
                return Ok(o);
            }
            o
        }
        Some(o) => {
            tracing::warn!(task.id = %key.task, status = %o.status, "a turn ended on an outcome that was not waiting for it; left as it is");
            return Ok(o);
        }
    };
    let outcome = apply_turn(tx, &billing, outcome, &event, &evidence, now).await?;
    crate::events::task_completed(tx, &outcome, now).await?;
    Ok(outcome)
}

/// The task (or a turn of its conversation) failed: its outcome is failed,
/// never charged, and its budget reservation is released, inside the
/// finish's transaction. A later turn fails the outcome its conversation
/// continued; a resumed conversation's final outcome only records it.
pub async fn settle_failed(
    tx: &mut Tx,
    key: &TaskKey,
    reason: &str,
    now: Timestamp,
) -> Result<Outcome, StoreError> {
    let billing = read_billing(tx, key.account, now, false).await?;
    if let Some(outcome) = outcome_of_task_in(tx, key.account, key.task).await? {
        if !(outcome.status == OutcomeStatus::Verifying || outcome.status.is_final()) {
            tracing::warn!(task.id = %key.task, status = %outcome.status, "a turn failed on an outcome that was not waiting for it; left as it is");
            return Ok(outcome);
        }
        let outcome = refresh_for_turn(tx, &billing, key, outcome, now).await?;
        let evidence = EventEvidence {
            verdicts: None,
            signal: Some(serde_json::json!({"kind": "turn_failed", "reason": reason})),
            actor: Actor::Worker,
        };
        let outcome = apply_turn(tx, &billing, outcome, &OutcomeEvent::TurnFailed, &evidence, now).await?;
        crate::events::task_completed(tx, &outcome, now).await?;
        return Ok(outcome);
    }
    let outcome = open_outcome(tx, &billing, key, OutcomeStatus::Failed, now).await?;
    move_usage(tx, key.account, None, UsageKey::of(&outcome)).await?;
    let record = NewOutcomeEvent {
        event: ReceiptEvent::TaskFailed,
        from: None,
        to: OutcomeStatus::Failed,
        effect: ChargeEffect::None,
        evidence: &EventEvidence::by(Actor::Worker),
        reason,
    };
    insert_outcome_event(tx, &outcome, record, now).await?;
    release_reservation(tx, key.account, key.task).await?;
    crate::events::outcome_moved(tx, None, &outcome, now).await?;
    crate::events::task_completed(tx, &outcome, now).await?;
    Ok(outcome)
}

/// [`settle_event`] in a transaction of its own; a refused signal's
/// receipt event is committed too.
async fn settle_alone(
    store: &Store,
    account: AccountId,
    id: OutcomeId,
    event: OutcomeEvent,
    evidence: EventEvidence,
) -> Result<Applied, OutcomeError> {
    let now = store.now();
    let mut tx = store.begin().await?;
    match settle_event(&mut tx, account, id, event, evidence, now).await {
        Ok(applied) => {
            tx.commit().await?;
            Ok(applied)
        }
        Err(OutcomeError::NotApplicable(why)) => {
            tx.commit().await?;
            Err(OutcomeError::NotApplicable(why))
        }
        Err(e) => Err(e),
    }
}

/// Evidence of a ticket-source signal sent by `actor`.
fn signal_evidence(signal: Signal, actor: Actor) -> EventEvidence {
    EventEvidence {
        verdicts: None,
        signal: Some(to_value(&signal)),
        actor,
    }
}

/// Records a resolution signal from the ticket source, sent by `actor`
/// (the account's API key, or one of its integrations), and applies it.
/// It applies only to an outcome whose policy has an `external` verifier,
/// inside its window; otherwise it is refused
/// ([`OutcomeError::NotApplicable`]) and the refusal recorded.
pub async fn apply_signal(
    store: &Store,
    account: AccountId,
    id: OutcomeId,
    signal: Signal,
    actor: Actor,
) -> Result<Applied, OutcomeError> {
    settle_alone(
        store,
        account,
        id,
        OutcomeEvent::Signal(signal),
        signal_evidence(signal, actor),
    )
    .await
}

/// Reverses a resolved outcome as goodwill (inside its window or its
/// goodwill days). An operator's decision only: `operator` is kept on the
/// receipt, and `reason` on the receipt and the reversing transfers.
pub async fn goodwill_reversal(
    store: &Store,
    account: AccountId,
    id: OutcomeId,
    operator: Actor,
    reason: &str,
) -> Result<Applied, OutcomeError> {
    let evidence = EventEvidence {
        verdicts: None,
        signal: Some(serde_json::json!({"kind": "goodwill_reversal", "reason": reason})),
        actor: operator,
    };
    settle_alone(store, account, id, OutcomeEvent::GoodwillReversal, evidence).await
}

/// Applies the lapse decision to provisional outcomes whose window has
/// ended (up to `limit`); returns them. Every worker runs this as it polls.
pub async fn lapse_outcomes(store: &Store, limit: u32) -> Result<Vec<(AccountId, OutcomeId)>, StoreError> {
    let mut lapsed = Vec::new();
    for (account, id) in store.due_lapses(limit).await? {
        let evidence = EventEvidence::by(Actor::Window);
        match settle_alone(store, account, id, OutcomeEvent::WindowLapsed, evidence).await {
            Ok(_) => lapsed.push((account, id)),
            // Another worker got there first.
            Err(OutcomeError::NotAllowed(_) | OutcomeError::NotApplicable(_) | OutcomeError::NotFound) => {}
            Err(OutcomeError::Store(e)) => return Err(e),
        }
    }
    Ok(lapsed)
}
